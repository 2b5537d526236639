"""Pull sources in checks as code (PRODUCT.md §8): PRODUCT.md's example imports, is audited, exports
back identically; bad configuration is refused with YAML paths and changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError

from readiness.audit.models import AuditEntry
from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.telemetry.models import MetricSource
from tests.checks_as_code.conftest import db_snapshot, run_command

P99 = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{job="fraud"}[5m]))) * 1000'
)
# PRODUCT.md §8's example.
SOURCES: list[dict[str, Any]] = [
    {
        "name": "prod-prometheus",
        "kind": "prometheus",
        "url": "http://prometheus.internal:9090",
        "interval": 60,
        "auth": {"bearer_token_env": "PROM_TOKEN"},
        "queries": {
            "latency_ms": P99,
            "error_rate": 'sum(rate(http_requests_total{job="fraud",code=~"5.."}[5m])) '
            '/ sum(rate(http_requests_total{job="fraud"}[5m]))',
        },
    },
    {
        "name": "registry",
        "kind": "mlflow",
        "url": "http://mlflow.internal:5000",
        "interval": 300,
        "model": "fraud-detector",
        "alias": "champion",
        "metrics": {"accuracy": "accuracy", "auc": "val_auc"},
    },
]


@pytest.fixture(autouse=True)
def prom_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers' environment (the secret's value is never stored nor shown).
    monkeypatch.setenv("PROM_TOKEN", "s3cret-token")


@pytest.fixture
def with_sources(fraud: dict) -> dict:
    fraud["projects"][0]["metric_sources"] = copy.deepcopy(SOURCES)
    return fraud


def test_product_example_sources_import_audited_and_round_trip(
    people: None, with_sources: dict, write_yaml: Callable
) -> None:
    report = run_command("readiness_import", write_yaml(with_sources)).stdout

    assert "fraud-detector.metric_sources.prod-prometheus" in report
    prometheus = MetricSource.objects.get(name="prod-prometheus")
    assert (prometheus.kind, prometheus.interval, prometheus.auth) == (
        "prometheus",
        60,
        {"bearer_token_env": "PROM_TOKEN"},
    )
    assert prometheus.queries["latency_ms"] == P99
    registry = MetricSource.objects.get(name="registry")
    assert (registry.model, registry.alias, registry.version) == ("fraud-detector", "champion", "")
    created = AuditEntry.objects.filter(action="metric_source.create")
    assert created.count() == 2 and "s3cret-token" not in str(list(created.values()))

    first = run_command("readiness_export").stdout
    again = run_command("readiness_import", write_yaml(first, "export.yaml")).stdout
    second = run_command("readiness_export").stdout

    assert second == first
    assert "No changes" in again
    assert "metric_sources:" in first and "bearer_token_env: PROM_TOKEN" in first


def test_a_changed_source_is_updated_and_audited_with_before_and_after(
    people: None, with_sources: dict, write_yaml: Callable
) -> None:
    run_command("readiness_import", write_yaml(with_sources))
    with_sources["projects"][0]["metric_sources"][1].pop("alias")
    with_sources["projects"][0]["metric_sources"][1]["version"] = 3

    dry = run_command("readiness_import", write_yaml(with_sources), "--dry-run").stdout
    assert MetricSource.objects.get(name="registry").alias == "champion"
    run_command("readiness_import", write_yaml(with_sources))

    registry = MetricSource.objects.get(name="registry")
    assert (registry.alias, registry.version) == ("", "3")
    assert "registry" in dry
    entry = AuditEntry.objects.get(action="metric_source.update")
    assert (entry.before["alias"], entry.after["version"]) == ("champion", "3")


def _source(index: int, **changes: Any) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        entry = document["projects"][0]["metric_sources"][index]
        for key, value in changes.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value

    return mutate


S = "projects[0].metric_sources"
INVALID = [
    ("unknown kind", _source(0, kind="graphite"), f"{S}[0].kind", "unknown kind 'graphite'"),
    ("interval below 30", _source(0, interval=10), f"{S}[0].interval", "at least 30 seconds"),
    (
        "missing env var",
        _source(0, auth={"bearer_token_env": "NOT_SET_ANYWHERE"}),
        f"{S}[0].auth.bearer_token_env",
        "environment variable NOT_SET_ANYWHERE is not set",
    ),
    (
        "denied URL",
        _source(1, url="http://169.254.169.254/latest"),
        f"{S}[1].url",
        "in the denied network 169.254.0.0/16",
    ),
    ("not http", _source(1, url="ftp://mlflow.internal/"), f"{S}[1].url", "ftp is not http or https"),
    ("alias and version", _source(1, version=2), f"{S}[1].alias", "exactly one of alias and version"),
    ("queries on mlflow", _source(1, queries={"x": "up"}), f"{S}[1].queries", "not used by mlflow sources"),
    ("no queries", _source(0, queries={}), f"{S}[0].queries", "at least one metric name"),
    ("bad metric", _source(0, queries={"Latency": "up"}), f"{S}[0].queries.Latency", "not a metric name"),
    ("secret in auth", _source(0, auth={"bearer_token": "abc"}), f"{S}[0].auth", "bearer_token_env"),
    ("unknown key", _source(0, timeout=5), f"{S}[0].timeout", "unknown key"),
    ("no model", _source(1, model=None), f"{S}[1].model", "required"),
    ("duplicate name", _source(1, name="prod-prometheus"), f"{S}[1].name", "duplicate"),
]


@pytest.mark.parametrize(("mutate", "path", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_bad_source_configuration_is_refused_with_its_yaml_path_and_nothing_applied(
    people: None, with_sources: dict, write_yaml: Callable, mutate: Callable, path: str, message: str
) -> None:
    mutate(with_sources)
    before = db_snapshot()

    with pytest.raises(CommandError, match="nothing was applied"):
        run_command("readiness_import", write_yaml(with_sources))
    with pytest.raises(ChecksInvalid) as refused:
        checks_import(document=with_sources, dry_run=False, actor=None)

    assert db_snapshot() == before
    paths = [p for p, _ in refused.value.errors]
    assert path in paths, refused.value.errors
    assert message in dict(refused.value.errors)[path]
