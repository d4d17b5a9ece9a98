"""Fixtures for the k3s_heavy_runner tests: the lab control plane (tests/lab/k8s) and the lab forge."""

from __future__ import annotations

import pytest
from heavy_lab import HeavyLab
from lablib.forge import LabForge
from lablib.shell import LAB, lab_env


@pytest.fixture(scope="session")
def k8s_env() -> dict[str, str]:
    """The running lab control plane (`tests/lab/k8s up`, as `make test-k8s` does)."""
    return lab_env([str(LAB / "k8s"), "env"])


@pytest.fixture(scope="session")
def forge_env() -> dict[str, str]:
    env = lab_env([str(LAB / "forge"), "env"])
    if not env.get("FORGE_GITEA_URL"):
        pytest.skip("the lab forge is not running (tests/lab/forge up)")
    return env


@pytest.fixture(scope="module")
def heavy(k8s_env, forge_env):
    lab = HeavyLab(k8s_env, forge_env)
    lab.clean()
    yield lab
    lab.clean()


@pytest.fixture(scope="module")
def heavy_job(k8s_env, forge_env):
    """A second runner set of its own, whose one replica runs a job."""
    lab = HeavyLab(k8s_env, forge_env, name="frk8s-job")
    lab.clean()
    yield lab
    lab.clean()


@pytest.fixture(scope="module")
def workflows(forge_env) -> LabForge:
    return LabForge(
        forge_env["FORGE_GITEA_URL"], forge_env["FORGE_GITEA_TOKEN_OWNER"], forge_env["FORGE_GITEA_TOKEN_WRITE_ADMIN"]
    )
