"""CI skips nothing: a test whose command is missing skips on a workstation but fails when ``CI`` is set
(.ci/run installs what the tests need). Checked by running one TLS probe test in a pytest of its own
whose PATH holds no openssl."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.ops.conftest import ROOT

TLS_TEST = "tests/telemetry/healthchecks/test_probes.py::test_https_to_the_vetted_address_verifies_the_name"


def pytest_without_openssl(*, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    # Only the virtualenv's programs: python and pytest are there, openssl is not.
    env["PATH"] = os.path.dirname(sys.executable)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", TLS_TEST, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("ci", [True, False], ids=["in-ci", "on-a-workstation"])
def test_a_missing_openssl_fails_the_tls_tests_in_ci_and_skips_them_elsewhere(ci: bool) -> None:
    result = pytest_without_openssl(ci=ci)
    summary = result.stdout.strip().splitlines()[-1]
    assert "needs the openssl command" in result.stdout
    if ci:
        assert result.returncode != 0, result.stdout
        assert "skipped" not in summary and "error" in summary, summary
    else:
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in summary, summary
