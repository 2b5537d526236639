"""Request ids: accepted or created, returned, and on every JSON log line of the request."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.test import Client

from readiness.observability.context import request_id_var
from readiness.observability.logs import JsonFormatter, RequestContextFilter, TextFormatter


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger's lines as the production handler writes them (filter + JSON formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_a_request_id_sent_by_the_caller_comes_back(client: Client) -> None:
    response = client.get("/login/", headers={"X-Request-ID": "ci-run-42.step:7"})
    assert response["X-Request-ID"] == "ci-run-42.step:7"


@pytest.mark.django_db
def test_a_request_without_an_id_gets_a_new_one_each_time(client: Client) -> None:
    first = client.get("/login/")["X-Request-ID"]
    second = client.get("/login/")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


@pytest.mark.django_db
@pytest.mark.parametrize("unsafe", ["with spaces", "line\r\nbreak", "x" * 129, "<script>"])
def test_an_unsafe_request_id_is_replaced_not_echoed(client: Client, unsafe: str) -> None:
    response = client.get("/login/", HTTP_X_REQUEST_ID=unsafe)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_every_log_line_of_a_request_carries_its_id(client: Client, json_log: io.StringIO) -> None:
    # A 404 is logged by Django after the middlewares returned: the id must still be on it.
    response = client.get("/no/such/page", headers={"X-Request-ID": "trace-404"})
    assert response.status_code == 404
    logged = [line for line in lines(json_log) if line["logger"] == "django.request"]
    assert logged and all(line["request_id"] == "trace-404" for line in logged)
    # After the request, the thread logs under no request.
    logging.getLogger("readiness.test").warning("between requests")
    assert "request_id" not in lines(json_log)[-1]


@pytest.mark.django_db
def test_json_log_lines_have_utc_timestamps_level_logger_and_message(
    client: Client, json_log: io.StringIO
) -> None:
    client.get("/missing", headers={"X-Request-ID": "ts-check"})
    line = next(line for line in lines(json_log) if line.get("request_id") == "ts-check")
    assert set(line) >= {"ts", "level", "logger", "message", "request_id"}
    assert str(line["ts"]).endswith("Z")
    stamp = datetime.fromisoformat(str(line["ts"]).replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert line["level"] == "WARNING" and line["message"] == "Not Found: /missing"


def test_an_exception_is_one_json_line_with_its_traceback(json_log: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("readiness.test").exception("it failed")
    (line,) = lines(json_log)
    assert line["message"] == "it failed"
    assert "ValueError: boom" in str(line["exc"])


def test_a_token_in_a_log_message_is_masked(json_log: io.StringIO) -> None:
    secret = "rdy_" + "S3cr3tT0k3nValue_abcdefghijklmnop"
    logging.getLogger("some.library").warning("sent Authorization: Bearer %s", secret)
    (line,) = lines(json_log)
    assert secret not in json_log.getvalue()
    assert line["message"] == "sent Authorization: Bearer rdy_[redacted]"


def test_text_format_has_the_same_fields_for_a_terminal() -> None:
    record = logging.LogRecord("readiness.x", logging.INFO, __file__, 1, "hello", None, None)
    token = request_id_var.set("term-1")
    try:
        RequestContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    text = TextFormatter().format(record)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}Z INFO readiness\.x \[term-1\] hello", text)
