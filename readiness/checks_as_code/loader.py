"""Reading a checks-as-code file: YAML with every syntax problem reported by line and column.

Plain ``yaml.safe_load`` keeps the last of two equal keys in a mapping without a word, so a file with
``threshold`` written twice would silently apply one of them; this loader refuses duplicate keys.
"""

from __future__ import annotations

from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


class ChecksSyntaxError(ValueError):
    """The text is not YAML (or repeats a key); the message says where."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *defaults` may be overridden by explicit keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                continue  # unhashable: the base class reports it with its position
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first on line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def document_load(text: str) -> Any:
    """Parse one YAML document; ``ChecksSyntaxError`` says at which line and column it is wrong."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        message = f"YAML syntax error{where}: {exc.problem or exc.context}"
        if exc.context and exc.problem and exc.context_mark is not None:
            context = exc.context_mark
            message += f" ({exc.context} started at line {context.line + 1}, column {context.column + 1})"
        raise ChecksSyntaxError(message) from exc
    except yaml.YAMLError as exc:
        raise ChecksSyntaxError(f"YAML syntax error: {exc}") from exc
    except RecursionError:
        # PyYAML composes nested collections recursively: a few hundred levels exhaust Python's stack.
        raise ChecksSyntaxError("YAML syntax error: the document nests too deeply") from None
    except ValueError as exc:
        # A constructor's own refusal, e.g. an integer of more than 4,300 digits (Python's limit).
        raise ChecksSyntaxError(f"YAML syntax error: {exc}") from None
