"""The validated, normalized form of a checks-as-code document: what the importer applies.

Every value here is already checked and shaped for the models (floats, aware datetimes, dates), and
every item keeps the YAML ``path`` it came from so later messages can point back into the file.

Absent and present keys mean different things, and the plan keeps the difference: a project field or
owner that the file does not mention is left as it is on an existing project (``None`` / missing from
``fields``), while criteria, health checks and channels are definitions written out whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UserPlan:
    path: str
    username: str
    email: str | None = None  # None: not in the file, left as it is
    name: str | None = None


@dataclass(frozen=True)
class TeamPlan:
    path: str
    slug: str
    name: str
    members: tuple[str, ...] | None = None  # None: not in the file, membership left as it is


@dataclass(frozen=True)
class CriterionPlan:
    path: str
    key: str
    # Every definition field, merged over the template's definition when the key comes from one.
    fields: dict[str, Any]
    template_key: str | None = None
    given: tuple[str, ...] = ()  # the fields written in the file, in file order


@dataclass(frozen=True)
class HealthCheckPlan:
    path: str
    name: str
    url: str
    method: str = "GET"
    expected_status: int = 200
    timeout: float = 5.0
    interval: int = 60
    expected_body_contains: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "expected_status": self.expected_status,
            "timeout": self.timeout,
            "interval": self.interval,
            "expected_body_contains": self.expected_body_contains,
        }


@dataclass(frozen=True)
class MetricSourcePlan:
    path: str
    name: str
    # Every configured field as the model stores it (version as text, auth {} when absent); the fields
    # another kind uses are written empty, so switching a source's kind clears them.
    fields: dict[str, Any]


@dataclass(frozen=True)
class ChannelPlan:
    path: str
    kind: str
    url: str = ""
    to: tuple[str, ...] = ()
    # A daily summary instead of a message per evaluation; None when the file does not say.
    digest: bool | None = None

    @property
    def identity(self) -> tuple[str, str, tuple[str, ...]]:
        """A channel is its destination: kind and URL, or kind and the set of addresses."""
        return (self.kind, self.url, tuple(sorted(self.to)))

    def label(self) -> str:
        return f"{self.kind} {self.url}" if self.kind == "webhook" else f"{self.kind} {', '.join(self.to)}"


@dataclass(frozen=True)
class ProjectPlan:
    path: str
    slug: str
    # Scalar fields present in the file (name, team, description, risk_tier, target_date,
    # require_signoff_for_pilot, definitions); absent keys are not in the dict.
    fields: dict[str, Any]
    stage: str | None = None
    owners: dict[str, str | None] = field(default_factory=dict)  # dimension → username (None clears)
    templates: tuple[str, ...] = ()
    criteria: tuple[CriterionPlan, ...] = ()
    health_checks: tuple[HealthCheckPlan, ...] = ()
    channels: tuple[ChannelPlan, ...] = ()
    metric_sources: tuple[MetricSourcePlan, ...] = ()


@dataclass(frozen=True)
class ImportPlan:
    users: tuple[UserPlan, ...] = ()
    teams: tuple[TeamPlan, ...] = ()
    projects: tuple[ProjectPlan, ...] = ()
