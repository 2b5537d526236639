"""Fixtures of the checks-as-code tests: the PRODUCT.md §6 example, a way to run the commands, and a
picture of the whole database to prove that a refused import changed nothing."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from readiness.checks_as_code.loader import document_load
from readiness.scoring.templates import template_load_builtin
from tests.factories import UserFactory

FRAUD_YAML = Path(__file__).with_name("fraud.yaml")


@dataclass
class Run:
    stdout: str
    stderr: str


def run_command(name: str, *args: str) -> Run:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return Run(stdout=out.getvalue(), stderr=err.getvalue())


def db_snapshot() -> str:
    """Every row of every table, as dumpdata writes them."""
    out = StringIO()
    call_command("dumpdata", format="json", indent=0, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def builtin_templates(db: None) -> None:
    """The built-in templates come with the migrations, but a transactional test elsewhere in the
    session flushes every table; loading them again is idempotent."""
    template_load_builtin()


@pytest.fixture
def people(db: None) -> None:
    """The users the example file refers to without defining them (it defines only alice)."""
    for username in ("bob", "carol", "dave"):
        UserFactory(username=username)


@pytest.fixture
def fraud() -> dict[str, Any]:
    """A fresh copy of the PRODUCT.md §6 example, parsed, for a test to change."""
    return copy.deepcopy(document_load(FRAUD_YAML.read_text(encoding="utf-8")))


@pytest.fixture
def write_yaml(tmp_path: Path) -> Any:
    def write(document: Any, name: str = "checks.yaml") -> str:
        path = tmp_path / name
        text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write
