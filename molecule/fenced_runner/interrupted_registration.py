"""Side effect of the fenced_runner scenario: the registration of a new runner killed (SIGKILL to the whole
process group of ansible-playbook) at each task of the registration phase, and at a random point within the
register call. After each kill the next converge must bring the runner online with one forge record of its
name and a .runner private to the runner user. Prints one line per kill point; exits non-zero on the first
that does not converge."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import requests

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
sys.path.insert(0, str(PROJECT / "tests"))

from lablib.interrupt import run_killed  # noqa: E402
from lablib.shell import lab_env  # noqa: E402
from lablib.tiers import EXTENDED  # noqa: E402

HOST = "fr-vm"
NAME = "frmol-fenced-01"
HOME = "/var/lib/forgejo-runner"
ROLE = "fenced_runner : "
POINTS = [
    ("Register the runner from the controller", 0.0),
    ("Register the runner from the controller", random.uniform(0.2, 1.2)),
    ("Check that the forge handed out the runner's token", 0.0),
    ("Write the VM's .runner", 0.0),
    ("Write the VM's .runner", random.uniform(0.1, 0.8)),
    ("Keep the new identity", 0.0),
]
# make test kills the register call at a random point within it; make test-extended (FR_EXTENDED=1) at every point.
GATE = [POINTS[1]]
PHASES = "fenced_runner_register,fenced_runner_online"
FORGE = lab_env([str(PROJECT / "tests" / "lab" / "forge"), "env"])


def in_vm(*argv: str) -> str:
    pid = subprocess.run(
        [str(PROJECT / "tests" / "lab" / "nspawn"), "pid", HOST], capture_output=True, text=True, check=True
    )
    command = ["nsenter", "-t", pid.stdout.strip(), "-m", "-u", "-i", "-n", "-p", "--", *argv]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def records() -> list[dict]:
    url = f"{FORGE['FORGE_GITEA_URL']}/api/v1/admin/actions/runners?limit=50"
    headers = {"Authorization": f"token {FORGE['FORGE_GITEA_TOKEN_WRITE_ADMIN']}"}
    body = requests.get(url, headers=headers, timeout=30).json()
    runners = body["runners"] if isinstance(body, dict) else body
    return [r for r in runners if r["name"] == NAME]


def new_vm() -> None:
    """The runner as on a VM that was never registered: no .runner, the service stopped, no forge record."""
    in_vm("systemctl", "stop", "forgejo-runner.service")
    in_vm("rm", "-f", f"{HOME}/.runner")
    headers = {"Authorization": f"token {FORGE['FORGE_GITEA_TOKEN_WRITE_ADMIN']}"}
    for record in records():
        url = f"{FORGE['FORGE_GITEA_URL']}/api/v1/admin/actions/runners/{record['id']}"
        requests.delete(url, headers=headers, timeout=30).raise_for_status()


def converge() -> list[str]:
    """The converge of the phases a kill can interrupt (register, online), as an operator re-runs them; the whole
    role's converge and idempotence are the scenario's own steps."""
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    playbook = str(scenario / "converge.yml")
    return ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook, "--tags", PHASES]


def check_converged() -> str:
    found = records()
    assert len(found) == 1, f"{len(found)} records named {NAME}: {found}"
    assert found[0]["status"] in ("idle", "active", "online"), found[0]
    owner, mode = in_vm("stat", "-c", "%U %a", f"{HOME}/.runner").split()
    assert (owner, mode) == ("runner", "600"), (owner, mode)
    ids = in_vm("python3", "-c", f"import json; print(json.load(open('{HOME}/.runner'))['id'])").strip()
    assert int(ids) == found[0]["id"], (ids, found[0]["id"])
    return f"record {found[0]['id']} {found[0]['status']}"


def main() -> int:
    env = dict(os.environ)
    points = POINTS if EXTENDED else GATE
    for task, delay in points:
        new_vm()
        start = time.monotonic()
        killed = run_killed(converge(), env, ROLE + task, delay)
        if not killed.killed:
            print(killed.output[-3000:])
            print(f"FAILED: the run ended before {task!r}")
            return 1
        again = subprocess.run(converge(), env=env, capture_output=True, text=True, check=False)
        if again.returncode:
            print(again.stdout[-5000:])
            print(f"FAILED: the run after a kill at {task!r} (+{delay:.2f} s) failed")
            return 1
        state = check_converged()
        took = time.monotonic() - start
        print(
            f"killed at {task!r} +{delay:.2f} s ({killed.seconds:.0f} s in): next run converged, {state} ({took:.0f} s)"
        )
    print(json.dumps({"kill_points": len(points), "of": len(POINTS)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
