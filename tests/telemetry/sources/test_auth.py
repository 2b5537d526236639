"""Request headers of a source's ``auth``, from the worker's environment (a real protected server is
opened with them in test_prometheus.py)."""

from __future__ import annotations

import base64

import pytest

from readiness.telemetry.sources.auth import auth_headers
from readiness.telemetry.sources.exchange import SourceError


def test_no_auth_sends_no_header() -> None:
    assert auth_headers(auth=None, environ={}) == {}


def test_a_bearer_token_comes_from_the_named_variable() -> None:
    headers = auth_headers(
        auth={"bearer_token_env": "PROM_TOKEN"}, environ={"PROM_TOKEN": "abc.DEF-123_~+/="}
    )

    assert headers == {"Authorization": "Bearer abc.DEF-123_~+/="}


def test_basic_credentials_take_the_password_from_the_named_variable() -> None:
    auth = {"basic": {"username": "readiness", "password_env": "MLFLOW_PASSWORD"}}

    headers = auth_headers(auth=auth, environ={"MLFLOW_PASSWORD": "pä:ss word"})

    scheme, encoded = headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "readiness:pä:ss word"


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READINESS_TEST_PROM_TOKEN", "from-the-worker")

    headers = auth_headers(auth={"bearer_token_env": "READINESS_TEST_PROM_TOKEN"})

    assert headers == {"Authorization": "Bearer from-the-worker"}


@pytest.mark.parametrize(
    ("auth", "environ", "message"),
    [
        ({"bearer_token_env": "PROM_TOKEN"}, {}, "environment variable PROM_TOKEN is not set"),
        ({"bearer_token_env": "PROM_TOKEN"}, {"PROM_TOKEN": ""}, "environment variable PROM_TOKEN is empty"),
        (
            {"basic": {"username": "readiness", "password_env": "MLFLOW_PASSWORD"}},
            {},
            "environment variable MLFLOW_PASSWORD is not set",
        ),
        (
            {"bearer_token_env": "PROM_TOKEN"},
            {"PROM_TOKEN": "abc\r\nX-Injected: 1"},
            "environment variable PROM_TOKEN holds a character a token cannot",
        ),
        (
            {"basic": {"username": "a:b", "password_env": "P"}},
            {"P": "x"},
            "auth.basic.username may not hold a colon or a control character",
        ),
        (
            {"basic": {"username": "", "password_env": "P"}},
            {"P": "x"},
            "auth.basic.username must be a non-empty text",
        ),
        ({"basic": {"username": "readiness", "password": "inline"}}, {}, "auth must be"),
        ({"bearer_token": "inline-secret"}, {}, "auth must be"),
        ({"bearer_token_env": "A", "basic": {}}, {"A": "x"}, "auth must be"),
        ({"bearer_token_env": 7}, {}, "auth must be"),
    ],
    ids=[
        "token-unset",
        "token-empty",
        "password-unset",
        "token-line-break",
        "username-colon",
        "username-empty",
        "inline-password",
        "inline-token",
        "both",
        "not-a-name",
    ],
)
def test_a_bad_auth_is_a_clear_error_naming_what_is_wrong(
    auth: dict[str, object], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SourceError) as refused:
        auth_headers(auth=auth, environ=environ)

    assert str(refused.value).startswith(message)
    # The secret never appears in the message.
    assert all(value not in str(refused.value) for value in environ.values() if len(value) > 1)
