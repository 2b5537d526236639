"""version_metrics against a real MLflow tracking server (tests/mlflow pins it; `make mlflow-env`):
runs logged, versions registered and aliases moved through MLflow's REST API, as a training pipeline
does."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from readiness.telemetry.sources.mlflow import MlflowError, ModelMetric, model_version, version_metrics
from tests.pull_servers import MlflowRegistry, MlflowServer
from tests.servers import free_port

METRICS = {"accuracy": "accuracy", "auc": "val_auc"}


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def train(registry: MlflowRegistry, model: str, *, logged_at: datetime, accuracy: list[float]) -> str:
    """A run logging ``accuracy`` and ``val_auc`` over several steps, a minute apart from ``logged_at``,
    registered as a new version of ``model``; returns the version."""
    run_id = registry.create_run()
    for step, value in enumerate(accuracy):
        at = ms(logged_at + timedelta(minutes=step))
        registry.log_metric(run_id, "accuracy", value, timestamp_ms=at, step=step)
        registry.log_metric(run_id, "val_auc", value + 0.05, timestamp_ms=at + 500, step=step)
    return registry.create_model_version(model, run_id)


@pytest.fixture
def logged_at() -> datetime:
    # Whole milliseconds, as MLflow keeps them; an hour ago, so "now" cannot pass for the metric's time.
    return datetime.fromtimestamp(int(time.time() - 3600), UTC)


def test_the_champion_s_latest_values_come_with_their_own_timestamps(
    client: httpx.Client, mlflow_server: MlflowServer, mlflow_registry: MlflowRegistry, logged_at: datetime
) -> None:
    model = mlflow_registry.create_registered_model()
    version = train(mlflow_registry, model, logged_at=logged_at, accuracy=[0.81, 0.88, 0.93])
    mlflow_registry.set_alias(model, "champion", version)

    pulled = version_metrics(client, url=mlflow_server.url, model=model, alias="champion", metrics=METRICS)

    assert pulled.version.model == model
    assert pulled.version.version == version == "1"
    assert pulled.version.run_id
    last = logged_at + timedelta(minutes=2)
    assert pulled.metrics == (
        ModelMetric(metric="accuracy", key="accuracy", value=0.93, ts=last, step=2),
        ModelMetric(
            metric="auc",
            key="val_auc",
            value=pytest.approx(0.98),
            ts=last + timedelta(milliseconds=500),
            step=2,
        ),
    )
    assert pulled.missing == ()


def test_a_moved_alias_is_followed_to_the_new_version(
    client: httpx.Client, mlflow_server: MlflowServer, mlflow_registry: MlflowRegistry, logged_at: datetime
) -> None:
    model = mlflow_registry.create_registered_model()
    first = train(mlflow_registry, model, logged_at=logged_at, accuracy=[0.90])
    mlflow_registry.set_alias(model, "champion", first)
    before = version_metrics(client, url=mlflow_server.url, model=model, alias="champion", metrics=METRICS)
    second = train(mlflow_registry, model, logged_at=logged_at + timedelta(minutes=30), accuracy=[0.91, 0.95])

    mlflow_registry.set_alias(model, "champion", second)
    after = version_metrics(client, url=mlflow_server.url, model=model, alias="champion", metrics=METRICS)

    assert (before.version.version, after.version.version) == ("1", "2")
    assert before.version.run_id != after.version.run_id
    assert [m.value for m in before.metrics if m.metric == "accuracy"] == [0.90]
    assert [(m.value, m.ts) for m in after.metrics if m.metric == "accuracy"] == [
        (0.95, logged_at + timedelta(minutes=31))
    ]


def test_a_fixed_version_is_read_whatever_the_alias_says(
    client: httpx.Client, mlflow_server: MlflowServer, mlflow_registry: MlflowRegistry, logged_at: datetime
) -> None:
    model = mlflow_registry.create_registered_model()
    train(mlflow_registry, model, logged_at=logged_at, accuracy=[0.70])
    mlflow_registry.set_alias(
        model, "champion", train(mlflow_registry, model, logged_at=logged_at, accuracy=[0.99])
    )

    pulled = version_metrics(
        client, url=mlflow_server.url, model=model, version="1", metrics={"accuracy": "accuracy"}
    )

    assert pulled.version.version == "1"
    assert [m.value for m in pulled.metrics] == [0.70]


def test_a_metric_the_run_never_logged_or_logged_as_nan_is_missing(
    client: httpx.Client, mlflow_server: MlflowServer, mlflow_registry: MlflowRegistry, logged_at: datetime
) -> None:
    model = mlflow_registry.create_registered_model()
    run_id = mlflow_registry.create_run()
    mlflow_registry.log_metric(run_id, "accuracy", 0.9, timestamp_ms=ms(logged_at), step=0)
    mlflow_registry.log_metric(run_id, "val_auc", "NaN", timestamp_ms=ms(logged_at), step=0)
    mlflow_registry.set_alias(model, "champion", mlflow_registry.create_model_version(model, run_id))

    pulled = version_metrics(
        client,
        url=mlflow_server.url,
        model=model,
        alias="champion",
        metrics={"accuracy": "accuracy", "auc": "val_auc", "f1": "f1_score"},
    )

    assert [m.metric for m in pulled.metrics] == ["accuracy"]
    assert pulled.missing == ("auc", "f1")


def test_an_unknown_alias_is_a_typed_error_naming_alias_and_model(
    client: httpx.Client, mlflow_server: MlflowServer, mlflow_registry: MlflowRegistry, logged_at: datetime
) -> None:
    model = mlflow_registry.create_registered_model()
    mlflow_registry.set_alias(
        model, "champion", train(mlflow_registry, model, logged_at=logged_at, accuracy=[0.9])
    )

    with pytest.raises(MlflowError, match=rf"^alias challenger not found for model {model}$"):
        version_metrics(client, url=mlflow_server.url, model=model, alias="challenger", metrics=METRICS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "no-such-model", "alias": "champion"}, "model no-such-model not found"),
        ({"model": "no-such-model", "version": "1"}, "model no-such-model not found"),
        ({"version": "9"}, "version 9 not found for model {model}"),
        ({"version": "nine"}, "HTTP 400: Parameter 'version' must be an integer, got 'nine'."),
    ],
    ids=["unknown-model-alias", "unknown-model-version", "unknown-version", "bad-version"],
)
def test_an_unknown_model_or_version_is_a_typed_error(
    client: httpx.Client,
    mlflow_server: MlflowServer,
    mlflow_registry: MlflowRegistry,
    logged_at: datetime,
    kwargs: dict[str, str],
    message: str,
) -> None:
    model = mlflow_registry.create_registered_model()
    train(mlflow_registry, model, logged_at=logged_at, accuracy=[0.9])

    with pytest.raises(MlflowError) as refused:
        model_version(client, url=mlflow_server.url, **{"model": model, **kwargs})

    assert str(refused.value) == message.format(model=model)


def test_a_url_that_is_not_mlflow_is_a_typed_error(client: httpx.Client, mlflow_server: MlflowServer) -> None:
    # A source URL with a wrong path: a plain 404, not MLflow saying the model is missing.
    with pytest.raises(MlflowError, match=r"^HTTP 404 Not Found$"):
        model_version(client, url=f"{mlflow_server.url}/nowhere", model="fraud-detector", alias="champion")


def test_nothing_listening_is_a_connection_error(client: httpx.Client) -> None:
    with pytest.raises(MlflowError, match=r"^connection refused$"):
        model_version(client, url=f"http://127.0.0.1:{free_port()}", model="fraud-detector", alias="champion")
