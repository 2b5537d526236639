from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from readiness.audit.models import AuditEntry
from readiness.projects.models import ProjectToken, hash_token_secret
from readiness.projects.services import token_create, token_revoke
from tests.conftest import Cast


def test_token_secret_is_never_stored(cast: Cast) -> None:
    token, secret = token_create(project=cast.project, name="ci", scopes=["metrics:write"])
    assert secret.startswith("rdy_") and len(secret) > 40
    stored = ProjectToken.objects.get(pk=token.pk)
    assert stored.hashed_secret == hash_token_secret(secret) != secret
    columns = [str(v) for v in ProjectToken.objects.values_list().get(pk=token.pk)]
    assert not any(secret in column for column in columns)
    assert not any(secret in str(entry.after) for entry in AuditEntry.objects.all())


def test_token_is_found_by_its_secret_only(cast: Cast) -> None:
    token, secret = token_create(project=cast.project, name="ci", scopes=["scorecard:read"])
    assert ProjectToken.objects.for_secret(secret) == token
    assert ProjectToken.objects.for_secret(secret + "x") is None
    assert ProjectToken.objects.for_secret("not-a-token") is None


def test_revoked_token_is_refused(cast: Cast) -> None:
    token, secret = token_create(project=cast.project, name="ci", scopes=["scorecard:read"])
    assert token_revoke(token=token) is True
    assert ProjectToken.objects.for_secret(secret) is None
    assert token_revoke(token=token) is False
    assert AuditEntry.objects.filter(action="token.revoke").count() == 1


@pytest.mark.parametrize("scopes", [[], ["metrics:read"], ["attest", "admin"]])
def test_unknown_or_no_scopes_are_refused(cast: Cast, scopes: list[str]) -> None:
    with pytest.raises(ValidationError) as err:
        token_create(project=cast.project, name="ci", scopes=scopes)
    assert "scopes" in err.value.message_dict
    assert not ProjectToken.objects.exists()


def test_token_names_are_unique_per_project(cast: Cast) -> None:
    token_create(project=cast.project, name="ci", scopes=["attest"])
    with pytest.raises(ValidationError):
        token_create(project=cast.project, name="ci", scopes=["attest"])
    assert ProjectToken.objects.count() == 1


def test_command_prints_the_secret_alone_on_the_last_line(
    cast: Cast, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command(
        "readiness_token",
        "create",
        "fraud-detector",
        "--scopes",
        "metrics:write,scorecard:read",
        "--name",
        "ci",
    )
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith("rdy_")
    token = ProjectToken.objects.get(name="ci")
    assert token.hashed_secret == hash_token_secret(last_line)
    assert token.scopes == ["metrics:write", "scorecard:read"]


def test_command_lists_and_revokes(cast: Cast, capsys: pytest.CaptureFixture[str]) -> None:
    token_create(project=cast.project, name="ci", scopes=["attest"])
    call_command("readiness_token", "list", "fraud-detector")
    assert "ci\t" in capsys.readouterr().out
    call_command("readiness_token", "revoke", "fraud-detector", "ci")
    assert ProjectToken.objects.get(name="ci").is_revoked
    with pytest.raises(CommandError, match="already revoked"):
        call_command("readiness_token", "revoke", "fraud-detector", "ci")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "nope", "--scopes", "attest"], "unknown project"),
        (["create", "fraud-detector", "--scopes", "root"], "unknown scope"),
        (["revoke", "fraud-detector", "ghost"], "no token named"),
    ],
)
def test_command_errors_are_clear_and_change_nothing(cast: Cast, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("readiness_token", *args)
    assert not ProjectToken.objects.exists()
