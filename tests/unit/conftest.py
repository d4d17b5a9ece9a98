"""Shared fixtures: the collection on sys.path, a module runner and an in-process fake Forgejo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[2] / ".ansible" / "collections"
sys.path.insert(0, str(COLLECTIONS))

from fake_forgejo import FakeForgejo  # noqa: E402


@pytest.fixture
def forge():
    server = FakeForgejo()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def run_module(capsys):
    """Run a module's main() with args; returns its JSON result (failed results have 'failed': True)."""
    from ansible.module_utils.testing import patch_module_args

    def runner(main, args, check_mode=False, diff=False):
        full = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(full), pytest.raises(SystemExit):
            main()
        return json.loads(capsys.readouterr().out)

    return runner
