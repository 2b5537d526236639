"""No secret is ever logged, every token action leaves an audit entry without its secret, and every
way of starting Readiness has a secret key of its own."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.management import call_command
from django.test import Client

from readiness.api.tokens import push_callers
from readiness.audit.models import AuditEntry
from readiness.projects.models import ProjectToken
from readiness.telemetry.services import batches_drain
from tests.conftest import Cast
from tests.ops.conftest import ROOT, STRONG_KEY

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
    # As PUSH_CALLER_SECONDS later, when no process keeps the token it looked up any more.
    push_callers.entries.clear()
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


# --- The secret key: everything that starts Readiness without one gets one -----------------------

FAKE_TOOL = """#!/bin/sh
echo "$(basename "$0") key_file=${DJANGO_SECRET_KEY_FILE:-none} key=${DJANGO_SECRET_KEY:+set} $*" >> "$CALLS"
"""


def make_run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``make run`` with a stand-in virtualenv whose python and honcho record what they were started
    with: the Makefile's own logic runs, nothing is installed or served."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    for tool in ("python", "honcho", "uv"):
        script = venv / "bin" / tool
        script.write_text(FAKE_TOOL)
        script.chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml and uv.lock: make installs nothing
    calls = tmp_path / "calls"
    calls.unlink(missing_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [
            "make", "--no-print-directory", "run", f"VENV={venv}", f"PYTHON={sys.executable}",
            f"SECRET_KEY_FILE={tmp_path / 'var' / 'secret_key'}",
        ],
        cwd=ROOT,
        env={**clean, "CALLS": str(calls), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_make_run_generates_a_key_once_and_passes_it_by_file(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret_key"
    first, calls = make_run(tmp_path)
    assert first.returncode == 0, first.stderr
    key = key_file.read_text().strip()
    assert len(key) >= 50 and len(set(key)) >= 5
    assert key_file.stat().st_mode & 0o777 == 0o600  # readable by its owner only
    assert key not in first.stdout + first.stderr  # printed nowhere
    # migrate, collectstatic, readiness_templates, readiness_demo and honcho (web, worker, beat).
    assert len(calls) == 5
    assert all(f"key_file={key_file} " in call for call in calls), calls

    second, _ = make_run(tmp_path)
    assert second.returncode == 0, second.stderr
    assert key_file.read_text().strip() == key  # sessions survive a restart
    assert "Generated a secret key" not in second.stdout


def test_make_run_keeps_a_key_set_in_the_environment(tmp_path: Path) -> None:
    result, calls = make_run(tmp_path, DJANGO_SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr
    assert calls and all("key_file=none key=set" in call for call in calls), calls
    assert not (tmp_path / "var" / "secret_key").exists()


def test_the_image_build_collects_static_files_with_no_key_given(tmp_path: Path) -> None:
    # The Dockerfile's collectstatic runs the settings at build, where no key exists: its command
    # line, run as written in a shell with nothing of ours in the environment, must work.
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    command = next(line for line in lines if "manage.py collectstatic" in line)
    command = command.strip().removeprefix("&&").removesuffix("\\").strip()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env={
            **clean,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "READINESS_VAR_DIR": str(tmp_path),
            "DJANGO_STATIC_MANIFEST": "true",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles" / "staticfiles.json").exists()
