"""Shared fixtures: the collection on sys.path, a module runner and an in-process fake Forgejo."""

from __future__ import annotations

import json
import subprocess
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


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory):
    """A PEM file with a self-signed certificate for 127.0.0.1 and its key."""
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    bundle = directory / "bundle.pem"
    bundle.write_text(cert.read_text() + key.read_text())
    return bundle


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
