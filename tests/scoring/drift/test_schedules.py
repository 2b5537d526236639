"""Beat schedules: defined once in code (CELERY_BEAT_SCHEDULE), stored by django-celery-beat's database
scheduler, tuned by admins in the console, and every periodic task bounded by time limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from celery import schedules
from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from readiness.beat import CodeDefaultsScheduler, beat_schedule_install, periodic_task_fields
from readiness.celery import app
from tests.conftest import Cast

SCHEDULE: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
EVERY_FEW_SECONDS = sorted(
    name for name, entry in SCHEDULE.items() if isinstance(entry["schedule"], float | int)
)
# The scheduler closes connections it finds inside a transaction (close_old_connections), as it must in
# a long-running beat: tests that run it use real transactions.
beat_db = pytest.mark.django_db(transaction=True)


def beat() -> CodeDefaultsScheduler:
    """A beat scheduler as ``celery beat`` starts it (its setup runs in the constructor)."""
    return CodeDefaultsScheduler(app=app)


def run_every(scheduler: CodeDefaultsScheduler, name: str) -> dt.timedelta:
    return scheduler.schedule[name].schedule.run_every


def same_schedule(stored: schedules.BaseSchedule, code: object) -> bool:
    code = schedules.maybe_schedule(code)
    if isinstance(code, schedules.crontab):
        fields = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
        return all(getattr(stored, f) == getattr(code, f) for f in fields)
    return isinstance(stored, schedules.schedule) and stored.run_every == code.run_every


def admin_form_data(form: forms.ModelForm) -> dict[str, Any]:
    """What the browser would post back for the admin's form as it was rendered."""
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    return data


@pytest.fixture
def console(client: Client, cast: Cast) -> Client:
    client.force_login(cast.admin)
    return client


def test_the_code_schedule_holds_evaluation_drift_ingest_and_probe_jobs() -> None:
    assert {"evaluate-active-projects", "compute-drift", "sweep-ingest-batches", "run-health-checks"} <= set(
        SCHEDULE
    )


@beat_db
def test_beat_setup_writes_one_periodic_task_per_entry() -> None:
    scheduler = beat()
    for name, entry in SCHEDULE.items():
        stored = PeriodicTask.objects.get(name=name)
        assert stored.task == entry["task"] and stored.enabled
        assert same_schedule(stored.schedule, entry["schedule"])
        assert same_schedule(scheduler.schedule[name].schedule, entry["schedule"])


@beat_db
def test_beat_installs_no_result_cleanup_job_without_a_result_backend() -> None:
    beat()
    assert not PeriodicTask.objects.filter(task="celery.backend_cleanup").exists()
    assert set(PeriodicTask.objects.values_list("name", flat=True)) == set(SCHEDULE)


@beat_db
def test_an_entrys_expiry_is_stored_so_beat_sends_it() -> None:
    # django-celery-beat drops Celery's "expires" option; it must land in expire_seconds instead.
    scheduler = beat()
    for name, entry in SCHEDULE.items():
        expires = entry.get("options", {}).get("expires")
        assert PeriodicTask.objects.get(name=name).expire_seconds == expires
        assert scheduler.schedule[name].options.get("expires") == expires


@beat_db
def test_admin_edit_of_an_interval_is_what_beat_uses_now_and_after_a_restart(console: Client) -> None:
    running = beat()
    running.schedule  # noqa: B018 - a beat tick: it notes the schedule's change counter
    task = PeriodicTask.objects.get(name="evaluate-active-projects")
    faster = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    data = admin_form_data(console.get(url).context["adminform"].form) | {"interval": faster.pk}

    response = console.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert PeriodicTask.objects.get(pk=task.pk).interval == faster
    assert run_every(running, "evaluate-active-projects") == dt.timedelta(seconds=60)
    # A restart (a deploy) seeds from the code again, and keeps what the admin set.
    assert run_every(beat(), "evaluate-active-projects") == dt.timedelta(seconds=60)
    assert PeriodicTask.objects.get(pk=task.pk).interval == faster


@beat_db
def test_admin_disabling_a_job_survives_a_restart() -> None:
    beat()
    PeriodicTask.objects.filter(name="compute-drift").update(enabled=False)
    assert "compute-drift" not in beat().schedule


@beat_db
def test_a_deleted_job_comes_back_with_the_code_default() -> None:
    beat()
    PeriodicTask.objects.filter(name="compute-drift").delete()
    assert run_every(beat(), "compute-drift") == dt.timedelta(seconds=SCHEDULE["compute-drift"]["schedule"])


@pytest.mark.django_db
def test_a_renamed_task_in_code_follows_into_the_stored_entry() -> None:
    beat_schedule_install({"nightly": {"task": "scoring.old_name", "schedule": 3600.0}})
    beat_schedule_install({"nightly": {"task": "scoring.compute_drift", "schedule": 60.0}})
    stored = PeriodicTask.objects.get(name="nightly")
    assert (stored.task, stored.interval.every) == ("scoring.compute_drift", 3600)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"task": "scoring.compute_drift", "schedule": 60.0, "options": {"soft_time_limit": 5}}, "soft_time"),
        ({"schedule": 60.0}, "needs task and schedule"),
        ({"task": "scoring.compute_drift", "schedule": 60.0, "relative": True}, "relative"),
        ({"task": "scoring.compute_drift", "schedule": 60.0, "options": {"expires": "soon"}}, "seconds"),
    ],
)
def test_an_entry_the_database_cannot_store_is_refused_loudly(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        periodic_task_fields("bad", entry)


@pytest.mark.parametrize("name", sorted(SCHEDULE))
def test_every_periodic_task_has_a_soft_and_a_hard_time_limit(name: str) -> None:
    app.loader.import_default_modules()  # what a worker does at start: autodiscovers every tasks module
    task = app.tasks[SCHEDULE[name]["task"]]
    assert task.soft_time_limit and task.time_limit
    assert task.soft_time_limit < task.time_limit


@pytest.mark.parametrize("name", EVERY_FEW_SECONDS)
def test_a_tick_expires_before_the_next_one_is_due(name: str) -> None:
    entry = SCHEDULE[name]
    assert 0 < entry["options"]["expires"] < entry["schedule"]


def test_the_drift_job_ends_before_its_next_tick() -> None:
    app.loader.import_default_modules()
    assert app.tasks["scoring.compute_drift"].time_limit < SCHEDULE["compute-drift"]["schedule"]


def test_beat_uses_the_code_defaults_scheduler() -> None:
    assert app.conf.beat_scheduler == "readiness.beat:CodeDefaultsScheduler"


@beat_db
def test_periodic_task_changelist_answers_200_for_staff_and_lists_the_jobs(console: Client) -> None:
    beat()
    response = console.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert response.status_code == 200
    assert "compute-drift" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["member", "leader"])
def test_periodic_task_changelist_sends_non_staff_to_the_admin_login(
    client: Client, cast: Cast, who: str
) -> None:
    client.force_login(getattr(cast, who))
    response = client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
