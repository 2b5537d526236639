"""The rules of a pull source's configuration (PRODUCT.md §8), one implementation for checks as code
and the admin console: ``source_problems`` judges a source written as YAML writes it and returns every
problem with its path inside the entry (``auth.bearer_token_env``, ``queries.latency_ms``).

Two rules look outside the entry, because a source that breaks them could only ever fail:
- the URL's host must not be in a denied network (readiness/security/egress.py, the rules of probes and
  webhooks); a name that does not resolve here is accepted, since it may resolve where workers run,
  and is judged again at every pull;
- every environment variable ``auth`` names must be set (to something) in this process, which runs
  with the workers' environment in every deployment Readiness ships.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from readiness.security.egress import (
    DeniedDestination,
    InvalidDestination,
    UnresolvedDestination,
    deny_networks,
    destination,
)
from readiness.telemetry.push_rules import METRIC_RE, METRIC_RULE

KINDS = ("prometheus", "mlflow")
KEYS = ("name", "kind", "url", "interval", "auth", "queries", "model", "alias", "version", "metrics")
KIND_KEYS = {"prometheus": ("queries",), "mlflow": ("model", "alias", "version", "metrics")}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NAME_RULE = "1-100 characters of letters, digits, _ . and -, starting with a letter or digit"
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
MIN_INTERVAL = 30
MAX_QUERY = 4000
MAX_MLFLOW_NAME = 250

Problem = tuple[str, str]


def source_problems(entry: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem of one source entry, as (path inside the entry, message); [] when it is valid."""
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    add = lambda path, message: problems.append((path, message))  # noqa: E731

    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        add("name", "required" if name in (None, "") else f"{name!r} is not a valid name: {NAME_RULE}")
    kind = entry.get("kind")
    if kind not in KINDS:
        add(
            "kind",
            "required" if kind in (None, "") else f"unknown kind {kind!r}; expected prometheus or mlflow",
        )
    url_problem = url_refusal(entry.get("url"))
    if url_problem:
        add("url", url_problem)
    interval = entry.get("interval", 60)
    if isinstance(interval, bool) or not isinstance(interval, int):
        add("interval", "must be a whole number of seconds")
    elif interval < MIN_INTERVAL:
        add("interval", f"must be at least {MIN_INTERVAL} seconds, not {interval}")
    problems += _auth_problems(entry.get("auth"), environ)
    if kind in KINDS:
        for other, keys in KIND_KEYS.items():
            if other != kind:
                problems += [(key, f"not used by {kind} sources") for key in keys if key in entry]
    if kind == "prometheus":
        problems += _mapping_problems("queries", entry.get("queries"), "a PromQL expression", MAX_QUERY)
    elif kind == "mlflow":
        model = entry.get("model")
        if not isinstance(model, str) or not model.strip() or len(model) > MAX_MLFLOW_NAME:
            add(
                "model",
                "required: the registered model's name"
                if not model
                else "must be a name of at most 250 characters",
            )
        alias, version = entry.get("alias"), entry.get("version")
        if (alias is None) == (version is None):
            add("alias", "give exactly one of alias and version")
        elif alias is not None and (
            not isinstance(alias, str) or not alias.strip() or len(alias) > MAX_MLFLOW_NAME
        ):
            add("alias", "must be an alias name of at most 250 characters")
        elif version is not None and not _is_version(version):
            add("version", "must be a model version number (1, 2, ...)")
        problems += _mapping_problems(
            "metrics", entry.get("metrics"), "an MLflow metric key", MAX_MLFLOW_NAME
        )
    return problems


def url_refusal(url: Any) -> str:
    """Why ``url`` cannot be a source's URL ("" when it can), by the address rules of egress.py."""
    if not isinstance(url, str) or not url:
        return "required: the server's http(s) URL"
    if len(url) > 500:
        return "at most 500 characters"
    try:
        destination(url, deny=deny_networks())
    except UnresolvedDestination:
        return ""
    except (InvalidDestination, DeniedDestination) as exc:
        return str(exc)
    return ""


def _is_version(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 1
    return isinstance(value, str) and value.isdigit() and int(value) >= 1 and len(value) <= 20


def _auth_problems(auth: Any, environ: Mapping[str, str]) -> list[Problem]:
    if auth is None or auth == {}:
        return []
    shape = "must be {bearer_token_env: NAME} or {basic: {username: NAME, password_env: NAME}}"
    if not isinstance(auth, Mapping) or len(auth) != 1:
        return [("auth", shape)]
    if "bearer_token_env" in auth:
        return _env_problems("auth.bearer_token_env", auth["bearer_token_env"], environ)
    if "basic" in auth:
        basic = auth["basic"]
        if not isinstance(basic, Mapping) or set(basic) != {"username", "password_env"}:
            return [("auth.basic", "must be {username: NAME, password_env: NAME}")]
        problems: list[Problem] = []
        username = basic["username"]
        if not isinstance(username, str) or not username or ":" in username or not username.isprintable():
            problems.append(("auth.basic.username", "must be a user name without a colon"))
        return problems + _env_problems("auth.basic.password_env", basic["password_env"], environ)
    return [("auth", shape)]


def _env_problems(path: str, name: Any, environ: Mapping[str, str]) -> list[Problem]:
    # Only the variable's name is ever stored or shown, never its value.
    if not isinstance(name, str) or not ENV_RE.fullmatch(name):
        return [(path, "must be the name of an environment variable (letters, digits and _)")]
    if not environ.get(name):
        return [(path, f"environment variable {name} is not set (the workers read the secret from it)")]
    return []


def _mapping_problems(key: str, value: Any, what: str, max_length: int) -> list[Problem]:
    if value is None:
        return [(key, f"required: a mapping of metric name to {what}")]
    if not isinstance(value, Mapping) or not value:
        return [(key, f"must map at least one metric name to {what}")]
    problems: list[Problem] = []
    for metric, text in value.items():
        path = f"{key}.{metric}"
        if not isinstance(metric, str) or not METRIC_RE.fullmatch(metric):
            problems.append((path, f"{metric!r} is not a metric name: {METRIC_RULE}"))
        if not isinstance(text, str) or not text.strip():
            problems.append((path, f"must be {what}"))
        elif len(text) > max_length:
            problems.append((path, f"at most {max_length} characters"))
    return problems
