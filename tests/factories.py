"""factory_boy factories for the domain model."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from readiness.projects.models import Project, Team
from readiness.scoring.models import Attestation, Criterion, Waiver
from readiness.telemetry.models import MetricPoint


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").capitalize())
    team = factory.SubFactory(TeamFactory)
    stage = "pilot"
    risk_tier = "limited"


class MetricCriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Criterion

    project = factory.SubFactory(ProjectFactory)
    key = factory.Sequence(lambda n: f"metric_check_{n}")
    title = factory.LazyAttribute(lambda o: o.key.replace("_", " ").capitalize())
    dimension = "engineering"
    kind = "metric"
    severity = "blocker"
    stage = "pilot"
    metric = "latency_ms"
    aggregation = "p99"
    window = "24h"
    op = "<="
    threshold = 300.0


class AttestationCriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Criterion

    project = factory.SubFactory(ProjectFactory)
    key = factory.Sequence(lambda n: f"attested_check_{n}")
    title = factory.LazyAttribute(lambda o: o.key.replace("_", " ").capitalize())
    dimension = "security"
    kind = "attestation"
    severity = "blocker"
    stage = "pilot"


class AttestationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attestation

    criterion = factory.SubFactory(AttestationCriterionFactory)
    attested_by = factory.SubFactory(UserFactory)
    evidence_url = "https://wiki.example.com/evidence"


class WaiverFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Waiver

    criterion = factory.SubFactory(MetricCriterionFactory)
    reason = "Load test scheduled next sprint"
    requested_by = factory.SubFactory(UserFactory)
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))


class MetricPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MetricPoint

    project = factory.SubFactory(ProjectFactory)
    metric = "latency_ms"
    ts = factory.LazyFunction(timezone.now)
    value = 100.0
    labels = factory.LazyFunction(dict)
    source = "push:ci"
