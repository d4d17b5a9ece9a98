"""Fixtures for the lab runner tests: the lab forge, the lab docker daemon, runners and repositories
that are removed after each test."""

from __future__ import annotations

import pytest
from lablib.forge import LabForge
from lablib.runner import LabRunnerProcess
from lablib.shell import LAB, lab_env


@pytest.fixture(scope="session")
def lab() -> dict[str, str]:
    env = lab_env([str(LAB / "forge"), "env", "gitea"])
    if not env.get("FORGE_GITEA_URL"):
        pytest.fail("the lab forge is not up (tests/lab/forge up, as make test-runner does)")
    return env


@pytest.fixture(scope="session")
def forge(lab) -> LabForge:
    return LabForge(lab["FORGE_GITEA_URL"], lab["FORGE_GITEA_TOKEN_OWNER"], lab["FORGE_GITEA_TOKEN_WRITE_ADMIN"])


@pytest.fixture
def repos(forge):
    made = []

    def make(prefix: str = "rn"):
        repo = forge.create_repo(prefix)
        made.append(repo)
        return repo

    yield make
    for repo in made:
        repo.delete()


@pytest.fixture
def runners(lab, forge, tmp_path):
    made: list[LabRunnerProcess] = []

    def make(labels: list[str], **config) -> LabRunnerProcess:
        runner = LabRunnerProcess(lab["LAB_RUNNER"], forge, tmp_path / f"runner{len(made)}", labels)
        runner.configure(**config)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.remove()
