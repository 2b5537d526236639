"""Who may import checks as code and what no file may change: only a staff user or the command line
imports; a file never rewrites a superuser's email or name; team membership and project owners, which
decide who reads a project and who signs it off, are audited with before and after."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from readiness.audit.models import AuditEntry
from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from tests.checks_as_code.conftest import FRAUD_YAML, db_snapshot, run_command
from tests.conftest import Cast
from tests.factories import UserFactory

# --- who may import -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["member", "leader", "outsider", "inactive_staff"])
def test_only_staff_or_the_command_line_may_import_and_a_refusal_changes_nothing(
    cast: Cast, fraud: dict, who: str
) -> None:
    actor = (
        UserFactory(username="former-admin", is_staff=True, is_active=False)
        if who == "inactive_staff"
        else getattr(cast, who)
    )
    before = db_snapshot()

    for dry_run in (False, True):
        with pytest.raises(PermissionDenied, match="only a staff user or the command line"):
            checks_import(document=fraud, dry_run=dry_run, actor=actor)

    assert db_snapshot() == before


def test_a_staff_user_imports_and_the_audit_log_names_them(cast: Cast, fraud: dict) -> None:
    staff = UserFactory(username="sam", is_staff=True)  # staff, not a superuser

    report = checks_import(document=fraud, dry_run=False, actor=staff)

    assert report.changed_projects == ["fraud-detector"]
    entries = AuditEntry.objects.filter(action__in=["team.update", "project.owners", "criterion.create"])
    assert entries.exists()
    assert {(e.actor, e.actor_label) for e in entries} == {(staff, "sam")}


def test_the_command_line_imports_as_import(cast: Cast) -> None:
    run_command("readiness_import", str(FRAUD_YAML))
    entry = AuditEntry.objects.get(action="team.update")
    assert (entry.actor, entry.actor_label) == (None, "import")


# --- superusers -------------------------------------------------------------------------------------


@pytest.fixture
def superuser(cast: Cast) -> Any:
    admin = cast.admin
    admin.email, admin.first_name, admin.last_name = "admin@example.com", "Ada", "Admin"
    admin.save()
    return admin


def test_a_file_may_not_change_a_superuser_s_email_or_name(
    superuser: Any, fraud: dict, write_yaml: Callable
) -> None:
    # Whoever reads the new mailbox could reset the superuser's password.
    fraud["users"].append({"username": "admin", "email": "admin@attacker.test", "name": "Mallory"})
    file = write_yaml(fraud)
    before = db_snapshot()

    err = StringIO()
    with pytest.raises(CommandError, match="2 errors; nothing was applied"):
        call_command("readiness_import", file, stdout=StringIO(), stderr=err)

    assert (
        "users[1].email: 'admin' is a superuser: a file may not change a superuser's email" in err.getvalue()
    )
    assert "users[1].name: 'admin' is a superuser: a file may not change a superuser's name" in err.getvalue()
    assert db_snapshot() == before
    with pytest.raises(ChecksInvalid) as refused:
        checks_import(document=fraud, dry_run=True, actor=superuser)  # not even the superuser's own file
    assert [path for path, _ in refused.value.errors] == ["users[1].email", "users[1].name"]


def test_a_file_may_list_a_superuser_as_they_are(superuser: Any, fraud: dict) -> None:
    fraud["users"].append({"username": "admin", "email": "admin@example.com", "name": "Ada Admin"})
    fraud["teams"][0]["members"].append("admin")

    report = checks_import(document=fraud, dry_run=False, actor=None)

    assert "= user admin unchanged" in report.lines
    superuser.refresh_from_db()
    assert (superuser.email, superuser.get_full_name()) == ("admin@example.com", "Ada Admin")


def test_a_file_still_changes_other_people_s_email(cast: Cast, fraud: dict) -> None:
    fraud["users"].append({"username": "mia", "email": "mia@new.example.com"})

    checks_import(document=fraud, dry_run=False, actor=None)

    cast.member.refresh_from_db()
    assert cast.member.email == "mia@new.example.com"


# --- audited: team membership and project owners ------------------------------------------------


def test_team_membership_changes_are_audited_with_before_and_after(cast: Cast, fraud: dict) -> None:
    fraud["teams"].append({"slug": "risk", "name": "Risk", "members": ["mia", "oscar"]})

    checks_import(document=fraud, dry_run=False, actor=None)

    updated = AuditEntry.objects.get(action="team.update", object_repr="Fraud")
    assert updated.before == {
        "slug": "fraud",
        "name": "Fraud",
        "members": ["alice", "bob", "carol", "dave", "mia"],
    }
    assert updated.after["members"] == ["alice", "bob", "carol", "dave"]
    created = AuditEntry.objects.get(action="team.create")
    assert (created.before, created.after) == (
        None,
        {"slug": "risk", "name": "Risk", "members": ["mia", "oscar"]},
    )

    checks_import(document=fraud, dry_run=False, actor=None)  # the same file again: nothing to record
    assert AuditEntry.objects.filter(action__startswith="team.").count() == 2


def test_project_owner_changes_are_audited_by_username(cast: Cast, fraud: dict, write_yaml: Callable) -> None:
    run_command("readiness_import", write_yaml(fraud))
    fraud["projects"][0]["owners"]["security"] = "carol"
    fraud["projects"][0]["owners"]["product"] = None

    run_command("readiness_import", write_yaml(fraud))

    entry = AuditEntry.objects.get(action="project.owners")
    assert entry.project == cast.project
    assert entry.before == {
        "data_science": "alice",
        "engineering": "bob",
        "product": "carol",
        "security": "dave",
    }
    assert entry.after == {
        "data_science": "alice",
        "engineering": "bob",
        "product": None,
        "security": "carol",
    }


def test_a_dry_run_audits_nothing(cast: Cast, fraud: dict) -> None:
    fraud["projects"][0]["owners"]["security"] = "carol"

    checks_import(document=fraud, dry_run=True, actor=None)

    assert not AuditEntry.objects.exists()
