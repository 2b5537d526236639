"""Input and output serializers of the API views, one pair per operation (STYLE.md).

They live here, not nested in the views, because the OpenAPI schema names its components after the
serializer classes: a dozen nested ``InputSerializer`` classes would collide there.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from readiness.projects.vocabulary import Dimension, RiskTier, Stage
from readiness.scoring.engine import STATUSES, TARGETS
from readiness.scoring.models import KEY_PATTERN, METRIC_PATTERN, Decision
from readiness.telemetry.aggregates import AGGREGATIONS
from readiness.telemetry.provenance import SOURCE_KINDS

# An unescaped "+" in a query string arrives as a space: "2026-01-01T00:00:00 00:00" meant "+00:00".
_SPACE_FOR_PLUS_OFFSET = re.compile(r"^(.*\d) (\d\d(?::?\d\d)?)$")
WINDOW_PATTERN = r"^[1-9][0-9]*[mhd]$"


class QueryDateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            value = _SPACE_FOR_PLUS_OFFSET.sub(r"\1+\2", value.strip())
        return super().to_internal_value(value)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error = ErrorDetailSerializer()


# --- Push -----------------------------------------------------------------------------------------


class PushProblemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="the point's index in points; -1 for a field of the body")
    field = serializers.CharField(
        allow_blank=True, help_text='"metric", "labels.<key>", ...; empty for the point as a whole'
    )
    message = serializers.CharField()


class PushErrorDetailSerializer(ErrorDetailSerializer):
    details = PushProblemSerializer(
        many=True,
        help_text="the first 100 problems (the message counts the rest); empty for a problem of the "
        "whole body (not JSON, not an object, too many points)",
    )


class PushErrorSerializer(serializers.Serializer):
    """A refused push: every problem at its point's index and field, all-or-nothing."""

    error = PushErrorDetailSerializer()


# --- Read -----------------------------------------------------------------------------------------


class ProjectListOutputSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    stage = serializers.ChoiceField(choices=Stage.values)
    risk_tier = serializers.ChoiceField(choices=RiskTier.values)
    decision = serializers.ChoiceField(
        choices=Decision.values,
        source="latest_decision",
        allow_null=True,
        help_text="The decision of the latest stored scorecard; null before the first evaluation.",
    )


class OwnersSerializer(serializers.Serializer):
    data_science = serializers.CharField(allow_null=True)
    engineering = serializers.CharField(allow_null=True)
    product = serializers.CharField(allow_null=True)
    security = serializers.CharField(allow_null=True)


class ProjectDetailOutputSerializer(ProjectListOutputSerializer):
    description = serializers.CharField()
    team = serializers.SlugField(source="team.slug")
    team_name = serializers.CharField(source="team.name")
    target_date = serializers.DateField(allow_null=True)
    require_signoff_for_pilot = serializers.BooleanField()
    owners = serializers.SerializerMethodField(
        help_text="The responsible person (username) of each dimension, or null."
    )

    @extend_schema_field(OwnersSerializer)
    def get_owners(self, project: Any) -> dict[str, str | None]:
        return project.owner_usernames()


class TargetQuerySerializer(serializers.Serializer):
    target = serializers.ChoiceField(
        choices=list(TARGETS),
        required=False,
        help_text="Evaluate now for this target stage instead of returning the latest stored scorecard.",
    )


class SignOffStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["valid", "stale", "missing"])
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)


class DimensionResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    score = serializers.FloatField()
    signoff = SignOffStateSerializer()


class DimensionsSerializer(serializers.Serializer):
    data_science = DimensionResultSerializer()
    engineering = DimensionResultSerializer()
    product = DimensionResultSerializer()
    security = DimensionResultSerializer()


class CriterionResultSerializer(serializers.Serializer):
    key = serializers.CharField()
    dimension = serializers.ChoiceField(choices=Dimension.values)
    kind = serializers.ChoiceField(choices=["metric", "drift", "attestation"])
    severity = serializers.ChoiceField(choices=["blocker", "advisory"])
    status = serializers.ChoiceField(choices=list(STATUSES))
    value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    warn_threshold = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()
    as_of = serializers.DateTimeField(allow_null=True)
    title = serializers.CharField()
    remediation = serializers.CharField()
    applies = serializers.BooleanField()
    sources = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text='The distinct sources ("kind:name", e.g. "probe:api") of the points the value used; '
        "empty for attestations. Absent from scorecards stored before provenance was recorded.",
    )


class BlockerSerializer(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=Dimension.values, allow_null=True)
    criterion = serializers.CharField(allow_null=True)
    status = serializers.CharField(
        help_text="A criterion status (fail, missing), signoff_missing, signoff_stale or prohibited."
    )
    reason = serializers.CharField()
    owner = serializers.CharField(allow_null=True)


class MLTestScoreSerializer(serializers.Serializer):
    score = serializers.FloatField()
    band = serializers.CharField()
    sections = serializers.DictField(child=serializers.FloatField())


class ScorecardSerializer(serializers.Serializer):
    """The scorecard JSON of PRODUCT.md §3 (scorecard, history items and the gate's body)."""

    project = serializers.SlugField()
    target = serializers.ChoiceField(choices=list(TARGETS))
    decision = serializers.ChoiceField(choices=Decision.values)
    computed_at = serializers.DateTimeField()
    dimensions = DimensionsSerializer()
    criteria = CriterionResultSerializer(many=True)
    blockers = BlockerSerializer(many=True)
    ml_test_score = MLTestScoreSerializer(allow_null=True)


class ScorecardHistoryQuerySerializer(serializers.Serializer):
    since = QueryDateTimeField(
        required=False, help_text="Only scorecards computed at or after this time (ISO 8601)."
    )
    page = serializers.IntegerField(required=False, min_value=1)


class ScorecardPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ScorecardSerializer(many=True)


class MetricQuerySerializer(serializers.Serializer):
    window = serializers.RegexField(
        WINDOW_PATTERN,
        required=False,
        default="24h",
        max_length=8,
        help_text="A whole number and a unit m, h or d (15m, 24h, 30d): "
        "the points with now - window < ts <= now.",
    )
    aggregation = serializers.ChoiceField(choices=list(AGGREGATIONS), required=False, default="latest")
    source = serializers.ChoiceField(
        choices=list(SOURCE_KINDS),
        required=False,
        help_text="Only points of this source kind, as a criterion with `sources: [<kind>]` sees them.",
    )


class MetricPathSerializer(serializers.Serializer):
    metric = serializers.RegexField(METRIC_PATTERN, max_length=100)


class SeriesPointSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    value = serializers.FloatField()


class MetricOutputSerializer(serializers.Serializer):
    metric = serializers.CharField()
    window = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=list(AGGREGATIONS))
    value = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()
    approximate = serializers.BooleanField(
        help_text="True when the percentile comes from the merged rollup sketches (relative error at most "
        "1%): the window holds more than 100,000 points, or points older than raw retention."
    )
    series = SeriesPointSerializer(
        many=True, help_text="At most 500 points: the raw points, or bucket averages when there are more."
    )
    sources = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='The window\'s points per source ("kind:name"), e.g. {"probe:api": 120}.',
    )


# --- Act ------------------------------------------------------------------------------------------


class AttestationInputSerializer(serializers.Serializer):
    criterion = serializers.RegexField(KEY_PATTERN, max_length=80, help_text="The criterion's key.")
    evidence_url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class AttestationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    criterion = serializers.CharField(source="criterion.key")
    by = serializers.CharField(help_text="A username, or token:<name> for a pipeline.")
    automated = serializers.BooleanField()
    evidence_url = serializers.CharField()
    note = serializers.CharField()
    attested_at = serializers.DateTimeField()


class SignOffInputSerializer(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=Dimension.values)
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class SignOffOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.SlugField(source="project.slug")
    dimension = serializers.ChoiceField(choices=Dimension.values)
    by = serializers.CharField(source="signed_by.username")
    note = serializers.CharField()
    signed_at = serializers.DateTimeField()


class WaiverInputSerializer(serializers.Serializer):
    criterion = serializers.RegexField(KEY_PATTERN, max_length=80, help_text="The criterion's key.")
    reason = serializers.CharField(max_length=5000)
    expires_at = serializers.DateTimeField(help_text="In the future, at most 90 days away.")


class WaiverOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.SlugField(source="criterion.project.slug")
    criterion = serializers.CharField(source="criterion.key")
    dimension = serializers.ChoiceField(choices=Dimension.values, source="criterion.dimension")
    reason = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["pending", "approved", "rejected", "expired"], source="display_status"
    )
    requested_by = serializers.CharField(source="requested_by.username")
    requested_at = serializers.DateTimeField()
    approved_by = serializers.SerializerMethodField()
    decided_by = serializers.CharField(source="approved_by.username", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()

    def get_approved_by(self, waiver: Any) -> str | None:
        # The model keeps whoever decided in approved_by; only an approval is an approval.
        if waiver.status == waiver.Status.APPROVED and waiver.approved_by is not None:
            return waiver.approved_by.get_username()
        return None


class NotApplicableInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class CriterionApplicabilityOutputSerializer(serializers.Serializer):
    criterion = serializers.CharField(source="key")
    dimension = serializers.ChoiceField(choices=Dimension.values)
    not_applicable = serializers.SerializerMethodField()
    reason = serializers.CharField(source="not_applicable_reason", allow_null=True)

    def get_not_applicable(self, criterion: Any) -> bool:
        return criterion.not_applicable_reason is not None
