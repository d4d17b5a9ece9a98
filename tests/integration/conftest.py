"""Fixtures shared by the integration tests."""

from __future__ import annotations

import subprocess

import pytest
from lablib.ansible import Ansible
from lablib.shell import LAB, lab_env
from lablib.tiers import EXTENDED, REASON


def pytest_collection_modifyitems(config, items):
    """The tests marked ``extended`` are skipped in the gate (lablib.tiers)."""
    if EXTENDED:
        return
    for item in items:
        if item.get_closest_marker("extended"):
            item.add_marker(pytest.mark.skip(reason=REASON))


@pytest.fixture(scope="session")
def ansible() -> Ansible:
    return Ansible()


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The lab docker daemon's socket, with the lab image imported; the test is skipped, with dockerd's own
    error, where docker cannot run."""
    proc = subprocess.run([str(LAB / "docker"), "up"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"docker cannot run here: {proc.stderr.strip()[-1500:]}")
    return lab_env([str(LAB / "docker"), "env"])["LAB_DOCKER_HOST"]
