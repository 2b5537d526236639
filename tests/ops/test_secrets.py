"""No secret is ever logged, and every token action leaves an audit entry without its secret."""

from __future__ import annotations

import logging
import re
from io import StringIO
from typing import Any

import orjson
import pytest
from django.core.management import call_command
from django.test import Client

from readiness.audit.models import AuditEntry
from readiness.projects.models import ProjectToken
from readiness.telemetry.services import batches_drain
from tests.conftest import Cast

SECRET_RE = re.compile(r"rdy_[A-Za-z0-9_-]{20,}")


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and arguments, formatted and raw, with tracebacks."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


def admin_created_secret(admin_client: Client, project_pk: int) -> str:
    response = admin_client.post(
        "/admin/projects/projecttoken/add/",
        {"project": project_pk, "name": "from-admin", "scopes": ["metrics:write"]},
        follow=True,
    )
    assert response.status_code == 200
    shown = SECRET_RE.findall(response.content.decode())
    assert len(set(shown)) == 1, "the admin shows the new secret exactly once"
    return shown[0]


def test_token_secrets_never_reach_the_logs(
    cast: Cast, admin_client: Client, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    settings.DEBUG = False
    caplog.set_level(logging.DEBUG)  # every logger, every level, SQL included where Django logs it
    out = StringIO()
    call_command(
        "readiness_token",
        "create",
        cast.project.slug,
        "--scopes",
        "metrics:write,scorecard:read",
        "--name",
        "from-cli",
        stdout=out,
    )
    cli_secret = out.getvalue().strip().splitlines()[-1]
    admin_secret = admin_created_secret(admin_client, cast.project.pk)
    client = Client()
    for secret in (cli_secret, admin_secret):
        headers = {"Authorization": f"Bearer {secret}"}
        good = client.post(
            "/api/v1/metrics",
            orjson.dumps({"points": [{"metric": "m", "value": 1.0}]}),
            content_type="application/json",
            headers=headers,
        )
        assert good.status_code == 202
        # A rejected push is logged by Django ("Bad Request: ..."): with its path, not its headers.
        bad = client.post("/api/v1/metrics", b"{not json", content_type="application/json", headers=headers)
        assert bad.status_code == 400
        assert client.get(f"/api/v1/projects/{cast.project.slug}/scorecard", headers=headers).status_code in (
            200,
            403,
        )
    batches_drain()
    call_command("readiness_token", "revoke", cast.project.slug, "from-cli", stdout=StringIO())
    assert (
        Client()
        .post(
            "/api/v1/metrics",
            b"{}",
            content_type="application/json",
            headers={"Authorization": f"Bearer {cli_secret}"},
        )
        .status_code
        == 401
    )

    logged = everything_logged(caplog)
    assert caplog.records, "nothing was logged: the capture is not listening"
    for secret in (cli_secret, admin_secret):
        assert secret not in logged
        assert secret[4:] not in logged  # nor the random part alone


def test_token_actions_are_audited_without_the_secret(cast: Cast, admin_client: Client) -> None:
    out = StringIO()
    call_command(
        "readiness_token",
        "create",
        cast.project.slug,
        "--scopes",
        "metrics:write",
        "--name",
        "cli",
        stdout=out,
    )
    cli_secret = out.getvalue().strip().splitlines()[-1]
    admin_secret = admin_created_secret(admin_client, cast.project.pk)
    admin_client.post(
        "/admin/projects/projecttoken/",
        {
            "action": "revoke_selected",
            "_selected_action": [ProjectToken.objects.get(name="from-admin").pk],
        },
    )
    call_command("readiness_token", "revoke", cast.project.slug, "cli", stdout=StringIO())

    actions = sorted(
        AuditEntry.objects.filter(action__startswith="token.").values_list("action", "actor_label")
    )
    assert actions == [
        ("token.create", "admin"),
        ("token.create", "cli"),
        ("token.revoke", "admin"),
        ("token.revoke", "cli"),
    ]
    stored = orjson.dumps(
        list(AuditEntry.objects.values("before", "after", "object_repr", "object_id", "actor_label"))
    ).decode()
    hashes = list(ProjectToken.objects.values_list("hashed_secret", flat=True))
    for secret in (cli_secret, admin_secret):
        assert secret not in stored and secret[4:] not in stored
    assert not any(hashed in stored for hashed in hashes)
