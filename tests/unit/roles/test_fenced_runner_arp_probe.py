"""fenced_runner's address probe, in a network namespace of its own: a live neighbour answers, a cached
entry of a host that is gone does not (a VM deleted minutes before must be recreatable)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

VARS = Path(__file__).resolve().parents[3] / "roles" / "fenced_runner" / "vars" / "main.yml"
PROBE = yaml.safe_load(VARS.read_text())["__fenced_runner_arp_probe"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2 for a network namespace"
)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def segment():
    """Namespaces A and B joined by a veth pair: A is 192.0.2.1/24, B answers at 192.0.2.2."""
    a, b = f"frunit-{uuid.uuid4().hex[:6]}", f"frunit-{uuid.uuid4().hex[:6]}"
    ip("netns", "add", a)
    ip("netns", "add", b)
    try:
        ip("-n", a, "link", "add", "lan", "type", "veth", "peer", "name", "peer", "netns", b)
        ip("-n", a, "addr", "add", "192.0.2.1/24", "dev", "lan")
        ip("-n", b, "addr", "add", "192.0.2.2/24", "dev", "peer")
        ip("-n", a, "link", "set", "lan", "up")
        ip("-n", b, "link", "set", "peer", "up")
        yield a
    finally:
        ip("netns", "del", a)
        ip("netns", "del", b)


def probe(netns: str, address: str) -> subprocess.CompletedProcess:
    argv = ["ip", "netns", "exec", netns, "python3", "-c", PROBE, address]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_a_live_host_answers(segment):
    found = probe(segment, "192.0.2.2")
    assert found.returncode == 0, found.stderr
    assert found.stdout.count(":") == 5


def test_a_cached_entry_of_a_gone_host_is_no_answer(segment):
    ip("-n", segment, "neigh", "replace", "192.0.2.9", "lladdr", "52:54:00:97:4d:d7", "dev", "lan", "nud", "stale")
    found = probe(segment, "192.0.2.9")
    assert found.returncode == 1, found.stdout
