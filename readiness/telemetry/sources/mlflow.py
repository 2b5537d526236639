"""MLflow as a pull source, through its REST API 2.0 (httpx only: the product never imports mlflow).

registered model + alias (``registered-models/alias``) or a fixed version (``model-versions/get``)
    → the model version → its run (``runs/get``) → the latest value of each mapped metric, with the
    timestamp MLflow logged it at (not the time we read it), so a point is stored once per version and
    metric, and ``latest`` follows the champion when the alias moves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from readiness.telemetry.sources.exchange import SourceError, fetch

API = "api/2.0/mlflow"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MlflowError(SourceError):
    """The model version or its metrics could not be read (unknown model, alias or version, unreachable,
    refused, nonsense)."""


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: str
    run_id: str


@dataclass(frozen=True)
class ModelMetric:
    metric: str  # our metric name (a key of the source's ``metrics`` mapping)
    key: str  # the MLflow metric key it maps to
    value: float
    ts: datetime  # when MLflow logged this value
    step: int


@dataclass(frozen=True)
class VersionMetrics:
    version: ModelVersion
    metrics: tuple[ModelMetric, ...]
    # Our metric names whose MLflow key the run never logged, or last logged as NaN or ±Inf: nothing to
    # store for them, which is not an error of the source (their criteria go missing on their own).
    missing: tuple[str, ...]


# Not frozen: raising an exception sets its __traceback__.
@dataclass(eq=False)
class _Refusal(Exception):
    status: int
    reason: str
    code: str
    message: str

    @property
    def not_found(self) -> bool:
        # Only MLflow's own error says what is missing: a bare 404 (a wrong path, a proxy) is no
        # evidence that the model is. MLflow answers an unknown model or version 404
        # RESOURCE_DOES_NOT_EXIST, but an unknown alias 400 INVALID_PARAMETER_VALUE "Registered model
        # alias x not found." (2.x and 3.x alike).
        return self.code == "RESOURCE_DOES_NOT_EXIST" or (
            self.code == "INVALID_PARAMETER_VALUE" and "not found" in self.message.lower()
        )

    def describe(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.message else f"HTTP {self.status} {self.reason}"


def model_version(
    client: httpx.Client,
    *,
    url: str,
    model: str,
    alias: str | None = None,
    version: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ModelVersion:
    """The version of ``model`` that ``alias`` points to now, or the fixed ``version`` (exactly one)."""
    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias and version")
    if not model:
        raise ValueError("model is empty")
    headers = headers or {}
    try:
        if alias is not None:
            document = _ask(client, url, "registered-models/alias", {"name": model, "alias": alias}, headers)
        else:
            document = _ask(
                client, url, "model-versions/get", {"name": model, "version": str(version)}, headers
            )
    except _Refusal as refusal:
        if not refusal.not_found:
            raise MlflowError(refusal.describe()) from None
        if not _model_exists(client, url, model, headers):
            raise MlflowError(f"model {model} not found") from None
        missing = f"alias {alias}" if alias is not None else f"version {version}"
        raise MlflowError(f"{missing} not found for model {model}") from None
    try:
        found = document["model_version"]
        return ModelVersion(model=model, version=str(found["version"]), run_id=str(found.get("run_id") or ""))
    except (KeyError, TypeError, AttributeError):
        raise MlflowError("unexpected answer: no model version in it") from None


def version_metrics(
    client: httpx.Client,
    *,
    url: str,
    model: str,
    metrics: Mapping[str, str],
    alias: str | None = None,
    version: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> VersionMetrics:
    """The latest value of each mapped metric (our name → MLflow key) in the run of the model version that
    ``alias`` (or the fixed ``version``) designates. "Latest" is MLflow's: the value at the highest step,
    the newest of that step, as ``runs/get`` reports it."""
    if not metrics:
        raise ValueError("metrics maps no metric")
    headers = headers or {}
    found = model_version(client, url=url, model=model, alias=alias, version=version, headers=headers)
    if not found.run_id:
        raise MlflowError(f"version {found.version} of model {model} has no run to read metrics from")
    try:
        document = _ask(client, url, "runs/get", {"run_id": found.run_id}, headers)
    except _Refusal as refusal:
        if refusal.not_found:
            raise MlflowError(
                f"run {found.run_id} of model {model} version {found.version} not found"
            ) from None
        raise MlflowError(refusal.describe()) from None
    latest = _latest_by_key(document)
    read, missing = [], []
    for metric, key in metrics.items():
        entry = latest.get(key)
        if entry is None or not math.isfinite(entry.value):
            missing.append(metric)
        else:
            read.append(ModelMetric(metric=metric, key=key, value=entry.value, ts=entry.ts, step=entry.step))
    return VersionMetrics(version=found, metrics=tuple(read), missing=tuple(missing))


@dataclass(frozen=True)
class _Logged:
    value: float
    ts: datetime
    step: int


def _latest_by_key(document: dict[str, object]) -> dict[str, _Logged]:
    try:
        entries = document["run"]["data"].get("metrics", [])  # type: ignore[index,union-attr]
        latest = {}
        for entry in entries:
            value = entry["value"]
            # MLflow writes a NaN it was given as the string "NaN" (protobuf's JSON), Infinity likewise.
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise TypeError
            latest[str(entry["key"])] = _Logged(
                value=float(value),
                ts=EPOCH + timedelta(milliseconds=int(entry["timestamp"])),
                step=int(entry.get("step") or 0),
            )
        return latest
    except (KeyError, TypeError, ValueError, AttributeError):
        raise MlflowError("unexpected answer: no run metrics in it") from None


def _model_exists(client: httpx.Client, url: str, model: str, headers: Mapping[str, str]) -> bool:
    try:
        _ask(client, url, "registered-models/get", {"name": model}, headers)
    except _Refusal as refusal:
        if refusal.not_found:
            return False
        raise MlflowError(refusal.describe()) from None
    return True


def _ask(
    client: httpx.Client, url: str, endpoint: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> dict[str, object]:
    """MLflow's JSON object for a GET of ``endpoint``; ``_Refusal`` for an error status."""
    answer = fetch(
        client, f"{url.rstrip('/')}/{API}/{endpoint}", params=params, headers=headers, error=MlflowError
    )
    try:
        document = answer.json()
    except ValueError:
        document = None
    if answer.ok:
        if isinstance(document, dict):
            return document
        raise MlflowError("the answer is not JSON: is the URL an MLflow tracking server?")
    error = document if isinstance(document, dict) else {}
    raise _Refusal(
        status=answer.status,
        reason=answer.reason,
        code=str(error.get("error_code") or ""),
        message=str(error.get("message") or "")[:300],
    )
