"""Typed reads of the environment that fail loudly.

Twelve-factor settings are only as good as their parsing: a typo such as ``DJANGO_DEBUG=ture`` must
stop the process at start with the variable's name, not silently run with a default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import dj_database_url

T = TypeVar("T")


class ImproperlyConfiguredEnv(RuntimeError):
    """A malformed environment variable; the message names it."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or the contents of the file named by ``<NAME>_FILE`` (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfiguredEnv(f"{name}_FILE: cannot read {file_name!r}: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfiguredEnv(f"{name}: expected true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}: expected a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfiguredEnv(f"{name}: must be at least {minimum}, got {value}")
    return value


def env_retention_days(
    raw_name: str, raw_default: int, rollup_name: str, rollup_default: int
) -> tuple[int, int]:
    """How many days raw points and their rollups are kept: raw at least a day, and rollups at least as
    long as raw points, or a window could reach back past the rollups into raw points already gone."""
    raw = env_int(raw_name, raw_default, minimum=1)
    rollup = env_int(rollup_name, rollup_default, minimum=1)
    if rollup < raw:
        raise ImproperlyConfiguredEnv(
            f"{rollup_name}: must be at least {raw_name} ({raw} days), got {rollup}: rollups replace raw "
            "points once these are dropped"
        )
    return raw, rollup


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_parsed(name: str, default: str, parse: Callable[[str], T]) -> T:
    """The variable read by ``parse`` (the default when unset or empty); a ``ValueError`` of the
    parser stops the start with the variable's name."""
    raw = env_str(name) or default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name}: {exc}") from None


def env_choice(
    name: str, default: str, choices: Collection[str], *, expected: str, upper: bool = False
) -> str:
    """One of ``choices``, compared in lower case (upper case with ``upper``)."""
    raw = (env_str(name) or default).strip()
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        raise ImproperlyConfiguredEnv(f"{name}: expected {expected}, got {value!r}")
    return value


def env_url(name: str, *, schemes: Collection[str], expected: str) -> str:
    """A URL whose scheme is one of ``schemes`` (``redis``, ``amqp``...), or "" when unset."""
    url = env_str(name) or ""
    if url and url.split("://", 1)[0] not in schemes:
        raise ImproperlyConfiguredEnv(f"{name}: expected {expected}, got {url!r}")
    return url


def env_database(name: str, *, conn_max_age: int) -> dict[str, Any] | None:
    """Django's database settings from a ``postgres://`` or ``sqlite://`` URL, or None when unset."""
    url = env_str(name)
    if not url:
        return None
    try:
        database = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name}: {exc}") from exc
    if not database.get("ENGINE"):
        raise ImproperlyConfiguredEnv(f"{name}: unsupported scheme in {url!r}")
    options = database.get("OPTIONS") or {}
    threshold = options.get("prepare_threshold")
    if isinstance(threshold, str):
        # The URL gives a number as an int; psycopg would take any other text and fail at the first
        # statement. "off" is psycopg's None: nothing prepared (a transaction-pooling PgBouncer < 1.21).
        if threshold.lower() != "off":
            raise ImproperlyConfiguredEnv(f"{name}: prepare_threshold is a number or off, not {threshold!r}")
        options["prepare_threshold"] = None
    return dict(database)


def env_networks(name: str) -> list[str]:
    """Comma-separated IP networks (``10.0.0.0/8,fd00::/8``), each checked to be one."""
    networks = env_list(name, [])
    for network in networks:
        try:
            ipaddress.ip_network(network)
        except ValueError as exc:
            raise ImproperlyConfiguredEnv(f"{name}: {exc}") from None
    return networks


def env_token(name: str, *, min_length: int) -> str:
    """A shared secret a caller must present, or "" (the feature is off): a short one is guessable."""
    token = env_str(name) or ""
    if token and len(token) < min_length:
        raise ImproperlyConfiguredEnv(f"{name}: use at least {min_length} characters (a random string)")
    return token


def env_signing_key(name: str, *, required: bool, public_key: str, howto: str) -> str | None:
    """A signing key (sessions, CSRF, password resets): with ``required``, a missing key, the
    ``public_key`` everyone can read or a short, repetitive one stops the start and ``howto`` says
    how to make one."""
    key = env_str(name)
    if required:
        if not key or key == public_key:
            raise ImproperlyConfiguredEnv(
                f"{name}: required when DJANGO_DEBUG is false (the default); {howto}"
            )
        if len(key) < 50 or len(set(key)) < 5:
            raise ImproperlyConfiguredEnv(f"{name}: too weak (at least 50 characters, 5 different); {howto}")
    return key


def env_writable_dir(name: str) -> str | None:
    """A folder this process can write in, or None when unset."""
    folder = os.environ.get(name)
    if folder and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        raise ImproperlyConfiguredEnv(f"{name}: {folder!r} is not a writable folder")
    return folder
