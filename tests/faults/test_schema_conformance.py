"""schemathesis against the served OpenAPI schema over real HTTP (gunicorn, the whole middleware
stack, a real worker behind the push), with one token holding every scope: no 5xx, and every answer
is one the schema documents, with a body that matches it.

tests/api/test_schema.py fuzzes the read and act endpoints in process for 5xx and JSON bodies; this
adds the push endpoint, the status-code and response-schema conformance checks, and the live server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.checks import Failure, FailureGroup, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from readiness.projects.services import token_create
from tests.api.conftest import ALL_SCOPES, World
from tests.servers import WebServer, Worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
EXAMPLES_PER_OPERATION = 20  # about 14 operations: under 300 cases in all
SEED = 20261122


def test_every_answer_to_a_fuzzed_request_with_a_valid_token_conforms_to_the_schema(
    world: World, worker: Worker, web: WebServer, report: Callable[[str], None]
) -> None:
    _, secret = token_create(project=world.project, name="schemathesis", scopes=ALL_SCOPES)
    schema = schemathesis.openapi.from_url(f"{web.url}/api/v1/schema/")
    # Aim the path parameters at real objects so requests get past the 404s into the views.
    real = {"slug": world.project.slug, "key": world.model_card.key, "waiver_id": world.waiver.pk}
    operations = [result.ok() for result in schema.get_all_operations()]
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for operation in operations:

        @seed(SEED)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            label = case.operation.label
            if case.path_parameters:
                fixed = {name: value for name, value in real.items() if name in case.path_parameters}
                case.path_parameters = {**case.path_parameters, **fixed}
            cases[label] += 1
            response = case.call(base_url=web.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (Failure, FailureGroup) as exc:  # keep every failure, not only the first
                for failure in exc.exceptions if isinstance(exc, FailureGroup) else [exc]:
                    failures.append(f"{label} -> {response.status_code}: {failure.title}: {failure.message}")

        call()
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    report(
        f"schemathesis: {sum(cases.values())} cases over {len(operations)} operations, "
        f"{server_errors} 5xx, {len(failures)} non-conforming answers; statuses "
        + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    )
    assert "POST /api/v1/metrics" in cases  # the push is fuzzed too
    assert "POST /api/v1/otlp/v1/metrics" in cases  # and the OTLP receiver
    assert len(operations) >= 14
    assert failures == []
    assert server_errors == 0
