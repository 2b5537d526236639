"""Bad drift definitions — a reference period that ends before it starts, an unknown method — are
refused clearly wherever criteria are created: the admin console, checks-as-code imports, template
data files, the model itself and, last line of defence, the database; and nothing is stored."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.projects.models import Project
from readiness.scoring.drift.stats import drift_statistic, reference_profile
from readiness.scoring.models import Criterion, Template, TemplateCriterion
from readiness.scoring.templates import TemplateDataError, template_read_file
from tests.conftest import Cast
from tests.scoring.drift.conftest import REFERENCE_END, REFERENCE_START

BACKWARDS = {"reference_start": "2026-02-01T00:00:00Z", "reference_end": "2026-01-01T00:00:00Z"}
EMPTY = {"reference_start": "2026-01-01T00:00:00Z", "reference_end": "2026-01-01T00:00:00Z"}
UNKNOWN_METHOD = {"method": "kl"}
BAD = {"backwards": BACKWARDS, "empty period": EMPTY, "unknown method": UNKNOWN_METHOD}
# Where each mistake is reported, and what the message says.
EXPECTED = {
    "backwards": ("reference_end", "after"),
    "empty period": ("reference_end", "after"),
    "unknown method": ("method", "kl"),
}

DRIFT = {
    "key": "score_drift",
    "title": "Scores have not drifted",
    "dimension": "data_science",
    "kind": "drift",
    "severity": "blocker",
    "stage": "pilot",
    "metric": "prediction_score",
    "window": "7d",
    "method": "psi",
    "reference_start": "2026-01-01T00:00:00Z",
    "reference_end": "2026-02-01T00:00:00Z",
}


@pytest.fixture
def console(client: Client, cast: Cast) -> Client:
    client.force_login(cast.admin)
    return client


def admin_criterion_form(cast: Cast, **changes: str) -> dict[str, Any]:
    definition = DRIFT | changes
    start, end = definition.pop("reference_start"), definition.pop("reference_end")
    return definition | {
        "project": cast.project.pk,
        "position": 0,
        "labels": "{}",
        "min_samples": 1,
        "reference_start_0": start[:10],
        "reference_start_1": start[11:19],
        "reference_end_0": end[:10],
        "reference_end_1": end[11:19],
    }


def test_admin_form_creates_a_well_formed_drift_criterion(console: Client, cast: Cast) -> None:
    response = console.post(reverse("admin:scoring_criterion_add"), admin_criterion_form(cast))
    assert response.status_code == 302
    assert Criterion.objects.get(project=cast.project, key="score_drift").method == "psi"


@pytest.mark.parametrize("mistake", BAD)
def test_admin_criterion_form_refuses_a_bad_drift_definition(
    console: Client, cast: Cast, mistake: str
) -> None:
    response = console.post(
        reverse("admin:scoring_criterion_add"), admin_criterion_form(cast, **BAD[mistake])
    )
    assert response.status_code == 200
    field, words = EXPECTED[mistake]
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert words in " ".join(errors[field])
    assert not Criterion.objects.exists()


@pytest.mark.parametrize("mistake", BAD)
def test_admin_template_inline_refuses_a_bad_drift_definition(
    console: Client, cast: Cast, mistake: str
) -> None:
    definition = DRIFT | BAD[mistake]
    start, end = definition.pop("reference_start"), definition.pop("reference_end")
    inline = {f"criteria-0-{name}": value for name, value in definition.items()} | {
        "criteria-0-position": 0,
        "criteria-0-labels": "{}",
        "criteria-0-min_samples": 1,
        "criteria-0-reference_start_0": start[:10],
        "criteria-0-reference_start_1": start[11:19],
        "criteria-0-reference_end_0": end[:10],
        "criteria-0-reference_end_1": end[11:19],
    }
    data = {
        "key": "house",
        "name": "House rules",
        "version": 1,
        "criteria-TOTAL_FORMS": 1,
        "criteria-INITIAL_FORMS": 0,
        **inline,
    }
    response = console.post(reverse("admin:scoring_template_add"), data)
    assert response.status_code == 200
    field, words = EXPECTED[mistake]
    formset_errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert words in " ".join(formset_errors[field])
    assert not Template.objects.filter(key="house").exists()


def import_document(definition: dict[str, Any]) -> dict[str, Any]:
    return {
        "users": [{"username": "alice"}],
        "teams": [{"slug": "ml", "name": "ML", "members": ["alice"]}],
        "projects": [
            {
                "slug": "scorer",
                "name": "Scorer",
                "team": "ml",
                "owners": {"data_science": "alice"},
                "criteria": [definition],
            },
        ],
    }


@pytest.mark.parametrize("mistake", BAD)
def test_import_refuses_a_bad_drift_definition_at_its_path_and_applies_nothing(
    db: None, tmp_path: Path, mistake: str
) -> None:
    document = import_document(DRIFT | BAD[mistake])
    field, words = EXPECTED[mistake]
    with pytest.raises(ChecksInvalid) as refused:
        checks_import(document=copy.deepcopy(document), dry_run=False, actor=None)
    [(path, message)] = refused.value.errors
    assert path == f"projects[0].criteria[0].{field}" and words in message

    file = tmp_path / "checks.yaml"
    file.write_text(yaml.safe_dump(document))
    with pytest.raises(CommandError, match="nothing was applied"):
        call_command("readiness_import", str(file), stdout=None)
    assert not Project.objects.filter(slug="scorer").exists()
    assert not Criterion.objects.exists()


def test_import_accepts_the_well_formed_drift_definition(db: None) -> None:
    checks_import(document=import_document(dict(DRIFT)), dry_run=False, actor=None)
    assert Criterion.objects.get(key="score_drift").reference_end.isoformat() == "2026-02-01T00:00:00+00:00"


@pytest.mark.parametrize("mistake", BAD)
def test_template_data_file_with_a_bad_drift_definition_is_refused_by_name(
    db: None, tmp_path: Path, mistake: str
) -> None:
    definition = DRIFT | BAD[mistake]
    file = tmp_path / "house.yaml"
    file.write_text(yaml.safe_dump({"key": "house", "name": "House", "version": 1, "criteria": [definition]}))
    field, words = EXPECTED[mistake]
    with pytest.raises(TemplateDataError) as refused:
        template_read_file(path=file)
    message = str(refused.value)
    assert message.startswith("house.yaml: criterion 'score_drift': ") and f"{field}:" in message
    assert words in message
    assert not TemplateCriterion.objects.filter(template__key="house").exists()


def model_fields(project: Project, **changes: Any) -> dict[str, Any]:
    fields = DRIFT | {"reference_start": REFERENCE_START, "reference_end": REFERENCE_END}
    return fields | {"project": project} | changes


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reference_end": REFERENCE_START}, "reference_end"),
        ({"reference_start": REFERENCE_END}, "reference_end"),
        ({"method": "kl"}, "method"),
    ],
)
def test_model_validation_names_the_bad_field(cast: Cast, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Criterion(**model_fields(cast.project, **changes)).full_clean()
    assert list(refused.value.message_dict) == [field]


@pytest.mark.parametrize("changes", [{"reference_end": REFERENCE_START}, {"method": "kl"}, {"method": ""}])
def test_database_refuses_a_bad_drift_criterion_written_past_validation(
    cast: Cast, changes: dict[str, Any]
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Criterion.objects.create(**model_fields(cast.project, **changes))
    assert not Criterion.objects.exists()


def test_pure_statistics_refuse_an_unknown_method() -> None:
    profile = reference_profile(np.arange(100.0))
    with pytest.raises(ValueError, match="drift method must be one of psi, ks; got 'kl'"):
        drift_statistic("kl", profile, np.arange(50.0))
