"""The one read of a VM's .runner (__fenced_runner_read_ids): whether it exists, its owner and mode, its id, uuid and
name, never its token; and the same ids from the tar archive that a runner container's .runner arrives in."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

VARS = Path(__file__).resolve().parents[3] / "roles" / "fenced_runner" / "vars" / "main.yml"
READ = yaml.safe_load(VARS.read_text())["__fenced_runner_read_ids"]
DOT_RUNNER = {"id": 7, "uuid": "0f0e", "name": "runner-02", "token": "s3cret", "address": "http://forge"}


def read(*argv: str, stdin: bytes = b"") -> dict:
    done = subprocess.run([sys.executable, "-c", READ, *argv], input=stdin, capture_output=True, check=True)
    return json.loads(done.stdout)


def test_a_private_runner_file(tmp_path):
    path = tmp_path / ".runner"
    path.write_text(json.dumps(DOT_RUNNER))
    os.chmod(path, 0o600)
    found = read(str(path))
    assert found["exists"] and found["mode"] == "0600" and found["owner"] and found["group"]
    assert {k: found[k] for k in ("id", "uuid", "name")} == {"id": 7, "uuid": "0f0e", "name": "runner-02"}
    assert "s3cret" not in json.dumps(found)


def test_no_runner_file(tmp_path):
    assert read(str(tmp_path / ".runner")) == {"exists": False}


def test_a_broken_runner_file_still_shows_its_mode(tmp_path):
    path = tmp_path / ".runner"
    path.write_text("{half")
    os.chmod(path, 0o644)
    found = read(str(path))
    assert found["exists"] and found["mode"] == "0644" and "uuid" not in found


def test_from_a_container_archive():
    data = json.dumps(DOT_RUNNER).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo(".runner")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    assert read(stdin=archive.getvalue()) == {"id": 7, "uuid": "0f0e", "name": "runner-02"}
