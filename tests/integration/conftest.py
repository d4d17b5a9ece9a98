"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest
from lab_support import Ansible


@pytest.fixture(scope="session")
def ansible() -> Ansible:
    return Ansible()
