"""fenced_runner's job fence unit, its commands run by real iptables in network namespaces made here: a VM with
Docker's default bridge, a per-job bridge and a LAN uplink; a job container on each bridge; a LAN host. The jobs
reach the VM's cache port and nothing else of the VM; the LAN reaches the VM's sshd but not its cache; the denied
networks are cut for the jobs only; the stop removes every rule."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time

import pytest
from local_playbook import ROOT, role_vars_play, run_local_playbook

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables"), reason="needs root and iptables (network namespaces)"
)

NS = {"vm": "frjf-vm", "job": "frjf-job", "job2": "frjf-job2", "lan": "frjf-lan"}
# TEST-NET-3 (RFC 5737) in namespaces joined to nothing else: docker0, the job's bridge, the LAN.
VM_LAN, LAN_HOST = "203.0.113.129", "203.0.113.130"
CACHE = 40400
# The VM's listeners: its sshd, the runner's cache; the LAN host's, for the jobs' way out.
LISTEN = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", port)); s.listen()
    while True: s.accept()[0].close()
for port in sys.argv[1:]: threading.Thread(target=serve, args=(int(port),), daemon=True).start()
threading.Event().wait()
"""
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print("open")
except ConnectionRefusedError: print("refused")
except OSError as e: print("rejected" if e.errno in (113, 101) else type(e).__name__)
"""


def ns(name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", NS[name], *argv], capture_output=True, text=True, check=check)


def connect(src: str, addr: str, port: int) -> str:
    return ns(src, "python3", "-c", CONNECT, addr, str(port)).stdout.strip()


def render(tmp_path, denied: list[str]) -> list[tuple[str, list[str]]]:
    """The unit's ExecStart and ExecStop commands, as systemd would run them ($$ is $)."""
    unit = tmp_path / "job-fence.service"
    task = {
        "ansible.builtin.copy": {"content": "{{ __fenced_runner_job_fence_content }}", "dest": str(unit)},
        "vars": {"fenced_runner_job_denied_networks": denied},  # over the role's defaults
    }
    (tmp_path / "templates").symlink_to(ROOT / "roles" / "fenced_runner" / "templates")
    play = role_vars_play(tmp_path, "fenced_runner", [task])
    out = run_local_playbook(play)
    assert out.returncode == 0, out.stdout + out.stderr
    commands = []
    for key, value in re.findall(r"^(ExecStart|ExecStop)=-?(.+)$", unit.read_text(), re.M):
        commands.append((key, shlex.split(value.replace("$$", "$"))))
    return commands


def run_all(commands, key: str) -> None:
    for kind, argv in commands:
        if kind == key:
            ns("vm", *argv)


def link(ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
    subprocess.run(
        ["ip", "link", "add", if_a, "netns", NS[ns_a], "type", "veth", "peer", if_b, "netns", NS[ns_b]], check=True
    )
    for name, iface in ((ns_a, if_a), (ns_b, if_b)):
        ns(name, "ip", "link", "set", iface, "up")


@pytest.fixture
def lab():
    for name in NS.values():
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "add", name], check=True)
    ns("vm", "ip", "link", "set", "lo", "up")
    for bridge, addr, job, job_addr in (
        ("docker0", "203.0.113.1/26", "job", "203.0.113.2/26"),
        ("br-0a1b2c", "203.0.113.65/26", "job2", "203.0.113.66/26"),
    ):
        ns("vm", "ip", "link", "add", bridge, "type", "bridge")
        ns("vm", "ip", "addr", "add", addr, "dev", bridge)
        ns("vm", "ip", "link", "set", bridge, "up")
        link("vm", f"p-{job}", job, "eth0")
        ns("vm", "ip", "link", "set", f"p-{job}", "master", bridge)
        ns(job, "ip", "addr", "add", job_addr, "dev", "eth0")
        ns(job, "ip", "route", "add", "default", "via", addr.split("/", maxsplit=1)[0])
    link("vm", "lan0", "lan", "eth0")
    ns("vm", "ip", "addr", "add", f"{VM_LAN}/26", "dev", "lan0")
    ns("lan", "ip", "addr", "add", f"{LAN_HOST}/26", "dev", "eth0")
    ns("lan", "ip", "route", "add", "default", "via", VM_LAN)
    ns("vm", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # What Docker makes: DOCKER-USER, jumped to first from FORWARD.
    ns("vm", "iptables", "-w", "-N", "DOCKER-USER")
    ns("vm", "iptables", "-w", "-I", "FORWARD", "-j", "DOCKER-USER")
    servers = [
        subprocess.Popen(["ip", "netns", "exec", NS["vm"], "python3", "-c", LISTEN, "22", str(CACHE)]),
        subprocess.Popen(["ip", "netns", "exec", NS["lan"], "python3", "-c", LISTEN, "22", "80"]),
    ]
    for name, port in (("vm", CACHE), ("lan", 80)):
        for _attempt in range(50):
            if f":{port} " in ns(name, "ss", "-ltn").stdout:
                break
            time.sleep(0.1)
    yield
    for server in servers:
        server.kill()
    for name in NS.values():
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def reach() -> dict[str, str]:
    return {
        "job->vm:22": connect("job", "203.0.113.1", 22),
        "job->vm:cache": connect("job", "203.0.113.1", CACHE),
        "job->vm-lan:22": connect("job", VM_LAN, 22),
        "job2->vm:22": connect("job2", "203.0.113.65", 22),
        "job2->vm:cache": connect("job2", "203.0.113.65", CACHE),
        "job->lan:80": connect("job", LAN_HOST, 80),
        "lan->vm:22": connect("lan", VM_LAN, 22),
        "lan->vm:cache": connect("lan", VM_LAN, CACHE),
    }


def test_the_jobs_reach_the_cache_and_nothing_else_of_the_vm(lab, tmp_path):
    before = reach()
    assert set(before.values()) == {"open"}, before
    commands = render(tmp_path, denied=[f"{LAN_HOST}"])
    run_all(commands, "ExecStart")
    run_all(commands, "ExecStart")  # a restart without a stop between: still one jump each
    fenced = reach()
    assert fenced == {
        "job->vm:22": "rejected",
        "job->vm:cache": "open",
        "job->vm-lan:22": "rejected",
        "job2->vm:22": "rejected",
        "job2->vm:cache": "open",
        "job->lan:80": "rejected",
        "lan->vm:22": "open",
        "lan->vm:cache": "refused",
    }, fenced
    rules = ns("vm", "iptables", "-w", "-S").stdout
    assert rules.count("-A INPUT -j FR-JOB-VM") == 1 and rules.count("-A DOCKER-USER -j FR-JOB-FENCE") == 1, rules
    run_all(commands, "ExecStop")
    assert "FR-JOB" not in ns("vm", "iptables", "-w", "-S").stdout
    assert set(reach().values()) == {"open"}


def test_without_denied_networks_only_the_vm_is_closed(lab, tmp_path):
    commands = render(tmp_path, denied=[])
    assert not any("DOCKER-USER" in " ".join(argv) for kind, argv in commands if kind == "ExecStart")
    run_all(commands, "ExecStart")
    found = reach()
    assert found["job->vm:22"] == "rejected" and found["job->lan:80"] == "open", found
    run_all(commands, "ExecStop")
    assert "FR-JOB" not in ns("vm", "iptables", "-w", "-S").stdout
