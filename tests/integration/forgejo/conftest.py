"""Fixtures for the forgejo_* integration tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from forgejo_lab import FLAVOURS, SUMMARY, Flavour, Runners
from lablib.shell import LAB, lab_env


@pytest.fixture(scope="session")
def lab() -> dict[str, str]:
    """The environment of the running lab forges (`tests/lab/forge up`, as `make test-forgejo` does)."""
    return lab_env([str(LAB / "forge"), "env"])


@pytest.fixture(scope="session", params=FLAVOURS)
def forge(request, lab) -> Flavour:
    if not lab.get(f"FORGE_{request.param.upper()}_URL"):
        pytest.skip(f"{request.param} is not running in the lab (tests/lab/build-forge explains why it was not built)")
    return Flavour(request.param, lab)


@pytest.fixture
def runners():
    started = Runners()
    yield started
    started.purge_all()


def pytest_sessionfinish(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    passed = len(reporter.stats.get("passed", []))
    failed = len(reporter.stats.get("failed", [])) + len(reporter.stats.get("error", []))
    try:
        env = lab_env([str(LAB / "forge"), "env"])
        forgejo = env.get("FORGE_FORGEJO_VERSION") or "not built: its Go modules are refused by the proxy"
        gitea = env.get("FORGE_GITEA_VERSION") or "not running"
        runner = Path(env["LAB_RUNNER"]).name
        versions = f"forgejo {forgejo}; gitea {gitea} as the stop-gap; runner {runner}, the lab runner (act engine)"
    except (subprocess.CalledProcessError, KeyError, OSError):
        versions = "lab not available"
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(f"forgejo integration: {passed} passed, {failed} failed ({versions})\n")
