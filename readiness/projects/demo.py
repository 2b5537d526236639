"""The demo portfolio's data: who works on what (``demo_portfolio.yaml``), the checks-as-code document
each project is imported from, and the weeks of metric history its criteria read.

Everything here is a pure function of the portfolio file and an *anchor* (the moment the demo is
loaded): the history is told in "days ago", so a demo loaded today looks as lived-in as one loaded a
year from now, and the same anchor always gives the same points (a seeded RNG per project).
``readiness_demo`` plays the stories through the product's own services.
"""

from __future__ import annotations

import copy
import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from readiness.telemetry.models import MetricPoint
from readiness.telemetry.provenance import is_reserved

PORTFOLIO_FILE = Path(__file__).with_name("demo_portfolio.yaml")
DEMO_PASSWORD = "readiness-demo"  # noqa: S105 -- the documented password of a local demo

HOUR = 3600.0
DAY = 24 * HOUR
# The drift criteria compare the last 7 days with the first week of the history, when every model
# behaved as validated.
REFERENCE_DAYS_AGO = (28, 21)
HEALTH_LABELS = {"target": "api"}
# Provenance of the history (PRODUCT.md §8): the probes' points come from the "api" health check, the
# rest as if pushed by the team's pipeline token.
PROBE_SOURCE = "probe:api"
PUSH_SOURCE = "push:demo"
# A failed probe is recorded with the probe's timeout as its latency (PRODUCT.md §4 probes).
PROBE_TIMEOUT_MS = 5000.0

# The telemetry of a project past its prototype, unless its `demo.metrics` says otherwise. Points per
# hour are chosen so every window the baseline template reads holds enough samples: latency p99 over
# 24h needs ≥ 100 (6/h gives 144), availability over 30d ≥ 100 probes (4/h), drift ≥ 10 per side.
METRIC_DEFAULTS: dict[str, Any] = {
    "days": 28,  # history starts this many days before the anchor
    "end_days_ago": 0,  # and ends here (a retired project stopped sending)
    "latency": {"median": 90.0, "sigma": 0.32, "per_hour": 6},  # latency_ms, lognormal per request
    "accuracy": {"mean": 0.93, "sd": 0.006},  # hourly evaluation on labelled traffic
    "error_rate": {"mean": 0.002},  # hourly fraction of failed requests
    "throughput": {"mean": 50.0},  # hourly requests per second, with a daily cycle
    "loadtest_rps": 100.0,  # loadtest.sustained_rps, one load test a week
    "cost": 0.002,  # cost_per_prediction, daily from billing
    "prediction_score": {"mean": 0.35, "concentration": 12.0, "per_hour": 4},  # beta-distributed
    "health_latency": {"median": 25.0},  # health.latency_ms of the probes, 4/h like health.up
    "outage": None,  # {hours_ago, hours}: health.up is 0 for that stretch
    "changes": [],  # [{metric, hours_ago, <params>}]: new parameters for points newer than hours_ago
}
# A prototype sends only what its owners wire up by hand: these families, when its file names them.
PROTOTYPE_FAMILIES = ("latency", "accuracy")
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    name: value for name, value in METRIC_DEFAULTS.items() if isinstance(value, dict)
}


@dataclass(frozen=True)
class DemoProject:
    slug: str
    entry: dict[str, Any]  # the project as checks-as-code (PRODUCT.md §6), without its story
    story: dict[str, Any]  # the `demo` section

    @property
    def stages(self) -> list[tuple[str, float]]:
        """(stage, days ago it began), oldest first; the first is when the project was created."""
        return list(self.story["stages"].items())

    @property
    def stage(self) -> str:
        return self.stages[-1][0]

    def metric_profile(self) -> dict[str, Any]:
        own: dict[str, Any] = self.story.get("metrics") or {}
        if self.stage == "prototype":
            base = {"days": 7, "end_days_ago": 0, "outage": None, "changes": []}
            base |= {"cost": None, "loadtest_rps": None}
            base |= {name: None for name in FAMILY_DEFAULTS}
            base |= {name: FAMILY_DEFAULTS[name] for name in PROTOTYPE_FAMILIES if name in own}
        else:
            base = copy.deepcopy(METRIC_DEFAULTS)
        profile = base | {name: value for name, value in own.items() if name not in FAMILY_DEFAULTS}
        for name, defaults in FAMILY_DEFAULTS.items():
            if name in own:  # `latency: null` switches a family off
                profile[name] = None if own[name] is None else defaults | own[name]
        return profile


@dataclass(frozen=True)
class Portfolio:
    users: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    projects: list[DemoProject]

    def people_document(self) -> dict[str, Any]:
        return {"users": self.users, "teams": self.teams}


def portfolio_read(path: Path = PORTFOLIO_FILE) -> Portfolio:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    projects = []
    for entry in data["projects"]:
        entry = dict(entry)
        story = entry.pop("demo")
        projects.append(DemoProject(slug=entry["slug"], entry=entry, story=story))
    return Portfolio(users=data["users"], teams=data["teams"], projects=projects)


def project_document(project: DemoProject, *, anchor: datetime) -> dict[str, Any]:
    """The checks-as-code document that creates the project as it was on its first day: still a
    prototype (the stage history is played afterwards), with its dates placed around the anchor."""
    entry = copy.deepcopy(project.entry)
    entry["stage"] = project.stages[0][0]
    if project.story.get("target_date") is not None:
        entry["target_date"] = (anchor + timedelta(days=project.story["target_date"])).date()
    criteria: list[dict[str, Any]] = entry.setdefault("criteria", [])
    drift = next((item for item in criteria if item["key"] == "drift"), None)
    if drift is None:
        drift = {"key": "drift"}
        criteria.append(drift)
    # The baseline template ships a placeholder reference period; the demo's is inside its history.
    drift["reference_start"] = anchor - timedelta(days=REFERENCE_DAYS_AGO[0])
    drift["reference_end"] = anchor - timedelta(days=REFERENCE_DAYS_AGO[1])
    return {"projects": [entry]}


# --- Metric history -------------------------------------------------------------------------------


class _Series:
    """Points of one project at fixed steps back from the anchor, with their age in hours."""

    def __init__(self, *, project_id: int, anchor: datetime, profile: dict[str, Any]) -> None:
        self.project_id = project_id
        self.anchor = anchor
        self.start = float(profile["days"]) * DAY
        self.end = float(profile["end_days_ago"]) * DAY
        self.changes: list[dict[str, Any]] = profile["changes"] or []
        self.points: list[MetricPoint] = []

    def ages(self, step_seconds: float) -> np.ndarray:
        """Ages in seconds of the points `end <= age < start`, oldest first, on a grid of `step`."""
        first = math.ceil(self.end / step_seconds)
        last = math.ceil(self.start / step_seconds)
        return (np.arange(last - 1, first - 1, -1) * step_seconds).astype(float)

    def param(self, metric: str, params: dict[str, Any], name: str, ages: np.ndarray) -> np.ndarray:
        """A parameter per point: the profile's, or a change's for points newer than its start."""
        values = np.full(len(ages), float(params[name]))
        for change in self.changes:
            if change["metric"] == metric and name in change:
                values[ages < float(change["hours_ago"]) * HOUR] = float(change[name])
        return values

    def add(
        self, metric: str, ages: np.ndarray, values: np.ndarray, labels: dict[str, str] | None = None
    ) -> None:
        anchor, project_id = self.anchor, self.project_id
        source = PROBE_SOURCE if is_reserved(metric) else PUSH_SOURCE
        self.points.extend(
            MetricPoint(
                project_id=project_id,
                source=source,
                metric=metric,
                ts=anchor - timedelta(seconds=float(age)),
                value=float(value),
                labels=dict(labels or {}),
            )
            for age, value in zip(ages, values, strict=True)
        )


def _daily_cycle(ages: np.ndarray, anchor: datetime) -> np.ndarray:
    """-1..1 over the day, peaking mid-afternoon UTC: traffic (and with it latency) follows people."""
    hour_of_day = (anchor.hour + anchor.minute / 60 - ages / HOUR) % 24
    return np.sin(2 * np.pi * (hour_of_day - 9) / 24)


def metric_points(*, project: DemoProject, project_id: int, anchor: datetime) -> list[MetricPoint]:
    """The project's metric history, unsaved, deterministic for one anchor (seeded by the slug)."""
    profile = project.metric_profile()
    rng = np.random.default_rng(zlib.crc32(project.slug.encode()))
    series = _Series(project_id=project_id, anchor=anchor, profile=profile)

    if (p := profile["latency"]) is not None:
        ages = series.ages(HOUR / p["per_hour"])
        median = series.param("latency_ms", p, "median", ages)
        sigma = series.param("latency_ms", p, "sigma", ages)
        median = median * (1 + 0.08 * _daily_cycle(ages, anchor))
        series.add("latency_ms", ages, median * np.exp(sigma * rng.standard_normal(len(ages))))
    if (p := profile["accuracy"]) is not None:
        ages = series.ages(HOUR)
        mean = series.param("accuracy", p, "mean", ages)
        series.add("accuracy", ages, np.clip(rng.normal(mean, p["sd"]), 0, 1))
    if (p := profile["error_rate"]) is not None:
        ages = series.ages(HOUR)
        mean = series.param("error_rate", p, "mean", ages)
        series.add("error_rate", ages, np.clip(rng.normal(mean, mean * 0.3), 0, 1))
    if (p := profile["throughput"]) is not None:
        ages = series.ages(HOUR)
        mean = series.param("throughput", p, "mean", ages)
        noise = np.exp(0.08 * rng.standard_normal(len(ages)))
        series.add("throughput", ages, mean * (1 + 0.45 * _daily_cycle(ages, anchor)) * noise)
    if profile["cost"] is not None:
        ages = series.ages(DAY)
        series.add("cost_per_prediction", ages, profile["cost"] * rng.normal(1, 0.04, len(ages)))
    if profile["loadtest_rps"] is not None:
        # One load test a week, the first a day into the history.
        ages = np.arange(series.start - DAY, series.end - 1, -7 * DAY)
        series.add("loadtest.sustained_rps", ages, profile["loadtest_rps"] * rng.normal(1, 0.03, len(ages)))
    if (p := profile["prediction_score"]) is not None:
        ages = series.ages(HOUR / p["per_hour"])
        mean = series.param("prediction_score", p, "mean", ages)
        kappa = float(p["concentration"])
        series.add("prediction_score", ages, rng.beta(mean * kappa, (1 - mean) * kappa))
    if (p := profile["health_latency"]) is not None:
        ages = series.ages(HOUR / 4)
        up = np.ones(len(ages))
        if outage := profile["outage"]:
            began = float(outage["hours_ago"]) * HOUR
            up[(ages <= began) & (ages > began - float(outage["hours"]) * HOUR)] = 0
        latency = p["median"] * np.exp(0.25 * rng.standard_normal(len(ages)))
        series.add("health.up", ages, up, HEALTH_LABELS)
        series.add("health.latency_ms", ages, np.where(up == 1, latency, PROBE_TIMEOUT_MS), HEALTH_LABELS)
    return series.points
