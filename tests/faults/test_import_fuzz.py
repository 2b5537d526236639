"""Hypothesis against the YAML importer at the text level, where tests/checks_as_code fuzzes parsed
documents: YAML's own hazards (tags, anchors and aliases, alias bombs, self-referencing collections,
deep nesting, enormous numbers, duplicate keys, broken indentation) in the PRODUCT.md §6 example.
``readiness_import`` either applies the file or stops with every problem as ``path: message`` and
changes nothing; never a traceback, never a hang."""

from __future__ import annotations

import re
import signal
from collections import Counter
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.checks_as_code.loader import ChecksSyntaxError, document_load
from readiness.checks_as_code.plan import ImportPlan
from readiness.checks_as_code.schema import TOP_KEYS, checks_validate
from readiness.scoring.templates import template_load_builtin
from tests.checks_as_code.conftest import FRAUD_YAML
from tests.factories import UserFactory

FRAUD_TEXT = FRAUD_YAML.read_text(encoding="utf-8")
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Each refusal must come this fast: a validation that walks an alias bomb or a cycle never would.
BOUND_SECONDS = 10.0

BOMB = "\n".join(
    ["bomb:", "  - &b0 [x, x, x, x, x, x, x, x, x]"]
    + [f"  - &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, 9)]
)
HAZARDS = [
    "~", ".nan", ".inf", "-.inf", "0x1F", "0o17", "1_000", "1e400", "9" * 30, "9" * 5000, "yes", "off",
    "2026-13-45", "2026-02-30", "2026-01-01T00:00:00", "!!binary aGk=", "!!str 12", "!!set {a: null}",
    "!!omap [a: 1]", "!!python/object:os.system x", "!!float x", "&anchor x", "*undefined", "'open",
    '"\\x00"', '"\\ud800"', "[" * 300 + "]" * 300, "{a: 1}", "[1, 2]", "|\n  block", "a\tb", "é🙂", "''",
    "- a", "? a", "%YAML 1.1", "---", "...", "*b8", "&self [*self]", "&m {a: *m}", "\ufeff", "\x85",
]  # fmt: skip
SCALAR_AFTER_KEY = re.compile(r"(?<=: )[^,{}\[\]\n#]+")
VALUE_SPANS = [match.span() for match in SCALAR_AFTER_KEY.finditer(FRAUD_TEXT)]
LINES = FRAUD_TEXT.splitlines()


def with_values(spans_and_values: list[tuple[tuple[int, int], str]]) -> str:
    text, shift = FRAUD_TEXT, 0
    for (start, end), value in sorted(spans_and_values, key=lambda item: item[0][0]):
        text = text[: start + shift] + value + text[end + shift :]
        shift += len(value) - (end - start)
    return text


def with_line(index: int, operation: str, extra: str) -> str:
    lines = list(LINES)
    index %= len(lines)
    if operation == "delete":
        del lines[index]
    elif operation == "duplicate":
        lines.insert(index, lines[index])
    elif operation == "indent":
        lines[index] = " " + lines[index]
    elif operation == "dedent":
        lines[index] = lines[index][1:]
    else:
        lines.insert(index, extra)
    return "\n".join(lines) + "\n"


values_replaced = st.lists(
    st.tuples(st.sampled_from(VALUE_SPANS), st.sampled_from(HAZARDS) | st.text(max_size=10)),
    min_size=1,
    max_size=3,
    unique_by=lambda item: item[0],
).map(with_values)
lines_changed = st.builds(
    with_line,
    st.integers(0, len(LINES) - 1),
    st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert"]),
    st.sampled_from([*HAZARDS, BOMB, "users: []", "projects: &p [*p]", "\t- x"]),
)
mutated = values_replaced | lines_changed
yaml_alphabet = st.sampled_from([*"abkey:-[]{},&*!|>'\"#?%@`~<.0123456789\n\t ", "é", "\x00", "\ufeff"])
garbage = st.text(alphabet=yaml_alphabet, max_size=80) | st.lists(st.sampled_from(HAZARDS), max_size=5).map(
    "\n".join
)


def within(seconds: float, work: Callable[[], Any]) -> Any:
    """Run ``work`` here (the test's database connection is this thread's), interrupted by an alarm
    after ``seconds``: a validation caught in a loop fails the test instead of hanging the suite."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still working after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def table_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


@pytest.fixture
def people(db: None) -> None:
    template_load_builtin()  # a transactional test elsewhere may have flushed the built-in templates
    for username in ("bob", "carol", "dave"):  # those the example names without defining them
        UserFactory(username=username)


@FUZZ
@given(text=mutated)
def test_a_mutated_file_is_imported_or_refused_with_paths_and_changes_nothing(
    people: None, tmp_path: Path, cases: Counter[str], text: str
) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = table_counts()
    out, err = StringIO(), StringIO()
    try:
        within(BOUND_SECONDS, lambda: call_command("readiness_import", str(path), stdout=out, stderr=err))
    except CommandError as exc:
        cases["refused"] += 1
        assert str(exc).startswith(f"{path}: ") and "nothing was applied" in str(exc)
        for line in err.getvalue().splitlines():
            place, _, message = line.partition(": ")
            assert place and message, line
        assert table_counts() == before
    else:
        cases["applied"] += 1
        assert "Dry run" not in out.getvalue()


YAML_PATH = re.compile(r"(?:[^.\[\]]+)(?:\[\d+\]|\.[^.\[\]]+)*")


@FUZZ
@given(text=mutated | garbage)
def test_any_text_loads_and_validates_or_says_where_it_is_wrong(
    people: None, cases: Counter[str], text: str
) -> None:
    try:
        document = within(BOUND_SECONDS, lambda: document_load(text))
    except ChecksSyntaxError as exc:
        cases["not YAML"] += 1
        assert str(exc).startswith("YAML syntax error")
        return
    try:
        plan = within(BOUND_SECONDS, lambda: checks_validate(document))
    except ChecksInvalid as exc:
        cases["invalid"] += 1
        assert exc.errors
        for place, message in exc.errors:
            assert isinstance(message, str) and message
            assert place == "document" or YAML_PATH.fullmatch(place), place
            if isinstance(document, dict) and place.split(".")[0].split("[")[0] in TOP_KEYS:
                assert place.split(".")[0].split("[")[0] in document
    else:
        cases["valid"] += 1
        assert isinstance(plan, ImportPlan)


# --- Regressions: each of these crashed or hung the import before ------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5_000 + "]" * 5_000,
        "{a: " * 3_000 + "1" + "}" * 3_000,
        f"teams: [{{slug: t, name: {'1' * 5_000}}}]",
    ],
    ids=["deep list", "deep mapping", "5000-digit integer"],
)
def test_yaml_python_cannot_build_is_a_syntax_error(text: str) -> None:
    with pytest.raises(ChecksSyntaxError, match=r"^YAML syntax error"):
        document_load(text)


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("projects: &p [*p]", "projects[0]"),
        ("teams: [&t {slug: t, name: T, members: [*t]}]", "teams[0].members[0]"),
        (BOMB + "\nprojects: [{slug: x, name: X, team: t, criteria: [{key: k, threshold: *b8}]}]", "bomb"),
    ],
    ids=["list that contains itself", "mapping that contains itself", "alias bomb"],
)
def test_self_referencing_and_exploding_aliases_are_refused_at_once(
    people: None, text: str, place: str
) -> None:
    with pytest.raises(ChecksInvalid) as refused:
        within(BOUND_SECONDS, lambda: checks_validate(document_load(text)))
    assert place in [where for where, _ in refused.value.errors]
    assert all(len(message) < 300 for _, message in refused.value.errors)


def test_half_a_surrogate_pair_is_refused_with_its_path_before_the_database(
    people: None, tmp_path: Path
) -> None:
    # YAML decodes "\ud800" to a lone surrogate, which PostgreSQL (UTF-8) cannot store: it once
    # reached the INSERT and crashed the import with a UnicodeEncodeError.
    path = tmp_path / "checks.yaml"
    path.write_text(FRAUD_TEXT.replace("name: Alice Moreau", r'name: "Alice \ud800"'), encoding="utf-8")
    before, err = table_counts(), StringIO()
    with pytest.raises(CommandError, match="nothing was applied"):
        call_command("readiness_import", str(path), stdout=StringIO(), stderr=err)
    assert err.getvalue().strip() == (
        "users[0].name: must be valid unicode: '\\ud800' at character 6 is half a surrogate pair"
    )
    assert table_counts() == before
