"""The request headers of a pull source's ``auth``, read from the worker's environment.

A source names environment variables, never secrets (PRODUCT.md §8: credentials are never stored), so
the headers are built at each run from the environment of the worker that runs it:

    auth: {bearer_token_env: PROM_TOKEN}                             → Authorization: Bearer <PROM_TOKEN>
    auth: {basic: {username: readiness, password_env: MLFLOW_PASS}}  → Authorization: Basic <base64>

A variable that is missing is a ``SourceError`` naming it, so the source shows "failing: environment
variable PROM_TOKEN is not set" instead of pulling anonymously and failing with a bare 401.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from readiness.telemetry.sources.exchange import SourceError

SHAPE = "auth must be {bearer_token_env: NAME} or {basic: {username: NAME, password_env: NAME}}"


def auth_headers(
    *, auth: Mapping[str, object] | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The headers for ``auth`` (none without it); ``environ`` defaults to this process's environment."""
    if not auth:
        return {}
    environ = os.environ if environ is None else environ
    if not isinstance(auth, Mapping) or len(auth) != 1:
        raise SourceError(SHAPE)
    if "bearer_token_env" in auth:
        token = _secret(environ, auth["bearer_token_env"])
        # A bearer token travels as is in the header: a space, a line break or a non-ASCII character
        # would split or break the header, and no real token has one.
        if not all("!" <= char <= "~" for char in token):
            raise SourceError(
                f"environment variable {auth['bearer_token_env']} holds a character a token cannot"
            )
        return {"Authorization": f"Bearer {token}"}
    if "basic" in auth:
        basic = auth["basic"]
        if not isinstance(basic, Mapping) or set(basic) != {"username", "password_env"}:
            raise SourceError(SHAPE)
        username = basic["username"]
        if not isinstance(username, str) or not username:
            raise SourceError("auth.basic.username must be a non-empty text")
        # RFC 7617: the user-id ends at the first colon, so one inside it would change who logs in.
        if ":" in username or not username.isprintable():
            raise SourceError("auth.basic.username may not hold a colon or a control character")
        password = _secret(environ, basic["password_env"])
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {credentials}"}
    raise SourceError(SHAPE)


def _secret(environ: Mapping[str, str], name: object) -> str:
    if not isinstance(name, str) or not name:
        raise SourceError(SHAPE)
    value = environ.get(name)
    if value is None:
        raise SourceError(f"environment variable {name} is not set")
    if not value:
        raise SourceError(f"environment variable {name} is empty")
    return value
