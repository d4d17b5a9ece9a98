"""The site lab: playbooks/site.yml against inventory/lab, with crunchy01 a Debian 13 systemd container
running libvirtd and the runner VM a TCG guest on its br0. Commands reach crunchy01 by nsenter and
the VM by ssh, as the playbooks do."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from lablib.ansible import PlaybookRun
from lablib.forge import LabForge, Run
from lablib.shell import LAB, ROOT, env_file, lab_env, sh

HOST = "crunchy"  # the lab namespace and container of crunchy01
HOST_IP = "198.51.100.30"
VM = "runner-02"
VM_IP = "198.51.100.32"
OLD_VM = "runner-01"
# The e2e part's own forge, Vault and control plane, beside the default ones that other parts use meanwhile: set
# in the environment of every lab command and playbook of this folder (the lab fixture).
INSTANCES = env_file(LAB / "e2e.env")
FORGE_IP = INSTANCES["FRLAB_FORGE_ADDR"]
FORGE_NS = "frlab-" + INSTANCES["FRLAB_FORGE_HOST"]
OUTPUT = ROOT / "tests" / "output" / "e2e"
# The lab forge's own tokens (tests/lab/forge env): for the tests' checks, never for the playbooks.
FORGE_TOKENS = "FORGE_GITEA_TOKEN_"
# Every run's log ends with its slowest tasks, and each task banner is followed by the run's time so far.
PROFILE = {
    "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
    "PROFILE_TASKS_SORT_ORDER": "descending",
    "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "12",
}
ONLINE = {"online", "idle", "active"}
# Seconds per step, written to OUTPUT/timings.json when the session ends.
TIMINGS: dict[str, float] = {}
PROBE = """\
on: push
jobs:
  probe:
    runs-on: fenced
    steps:
      - run: |
          echo "probe kernel=$(uname -r)"
          echo "probe hostname=$(cat /proc/sys/kernel/hostname)"
          echo "probe machine-id=$(cat /etc/machine-id 2>/dev/null || echo none)"
          if [ -e /.dockerenv ]; then echo "probe dockerenv=yes"; else echo "probe dockerenv=no"; fi
          sleep {sleep}
"""


def probe(run: Run) -> dict[str, str]:
    """What the PROBE workflow saw: kernel, hostname, machine-id, dockerenv."""
    return dict(re.findall(r"Z probe (\S+?)=(\S*)$", run.log, re.M))


def push_probe(repo, name: str, sleep: int = 1):
    return repo.push({f".gitea/workflows/{name}.yml": PROBE.format(sleep=sleep)}, message=name)


def job_runners(repo, run_id: int) -> list[str]:
    """The names of the runners that took the jobs of run RUN_ID."""
    return [
        j["runner_name"]
        for j in repo.forge.call("GET", f"/repos/{repo.full_name}/actions/runs/{run_id}/jobs").json()["jobs"]
    ]


def register_elsewhere(env: dict[str, str], forge: LabForge, name: str) -> None:
    """A record with label fenced that no runner of the lab uses (the lab runner registers in a scratch folder and
    never starts): an old fleet's or an earlier attempt's."""
    with tempfile.TemporaryDirectory() as workdir:
        sh(
            env["LAB_RUNNER"], "register", "--no-interactive", "--instance", env["FORGE_GITEA_URL"],
            "--token", forge.registration_token(), "--name", name, "--labels", "fenced", cwd=workdir,
        )  # fmt: skip


def lab_up() -> dict[str, str]:
    """Starts the forge, the mirror, crunchy01's container, the Vault (waiting for its build on a fresh
    machine), the log receiver and Prometheus; returns the environment of site.yml."""
    sh(str(LAB / "forge"), "up")
    sh(str(LAB / "mirror"), "up", timeout=1800)
    sh(str(LAB / "kvm-host"), "up", HOST, HOST_IP)
    sh(str(LAB / "vault"), "up", timeout=3600)
    sh(str(LAB / "logs"), "up")
    sh(str(LAB / "prometheus"), "up")
    return site_env()


def site_env() -> dict[str, str]:
    """The lab's values, the Vault login of the playbooks among them. It holds the forge's own tokens for the
    tests' checks; Site keeps them from the playbooks, which read theirs from Vault."""
    env = {}
    commands = (["forge", "env"], ["mirror", "env"], ["kvm-host", "env", HOST], ["vault", "login-env"], ["logs", "env"])
    commands += (["prometheus", "env"],)
    for command in commands:
        env.update(lab_env([str(LAB / command[0]), *command[1:]]))
    return env


class Site:
    """Runs the playbooks of the collection against the lab inventory and keeps every output."""

    def __init__(
        self, env: dict[str, str], root: Path = ROOT, extra: dict[str, str] | None = None, inventory: str = "lab"
    ):
        """ROOT: the controller's checkout (its inventory, playbooks and linked collection); inventory: which of
        its inventories (lab, or replica: inventory/production's shape)."""
        self.root = root
        self.inventory = inventory
        self.env = {
            **os.environ,
            **{k: v for k, v in env.items() if not k.startswith(FORGE_TOKENS)},
            "ANSIBLE_COLLECTIONS_PATH": str(root / ".ansible" / "collections"),
            "ANSIBLE_CONFIG": str(root / "tests" / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_TIMEOUT": "30",
            **PROFILE,
            **(extra or {}),
        }
        self.logs: list[Path] = []
        OUTPUT.mkdir(parents=True, exist_ok=True)

    def playbook(self, name: str, *options: str, label: str, extra_env: dict | None = None) -> PlaybookRun:
        command = [
            str(ROOT / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            str(self.root / "inventory" / self.inventory),
        ]
        command += [str(self.root / "playbooks" / name), *options]  # an absolute name stays as it is
        start = time.monotonic()
        proc = subprocess.run(
            command, capture_output=True, text=True, env={**self.env, **(extra_env or {})}, check=False, cwd=self.root
        )
        run = PlaybookRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start)
        log = OUTPUT / f"{label}.log"
        log.write_text(run.output)
        self.logs.append(log)
        return run

    def store_forge_tokens(self) -> None:
        """forge_tokens.yml: the fleet's scoped token derived from the admin password in the lab Vault and stored
        there, where the inventory reads it (a no-op when Vault holds it already)."""
        run = self.playbook("forge_tokens.yml", label="00-forge-tokens")
        assert run.rc == 0, run.tail()


def host(*command: str, check: bool = True, stdin: str | None = None, name: str = HOST) -> subprocess.CompletedProcess:
    """A command in a lab KVM host's container (crunchy01's unless named)."""
    pid = sh(str(LAB / "kvm-host"), "pid", name).stdout.strip()
    return sh("nsenter", "-t", pid, "-m", "-u", "-i", "-n", "-p", "--", *command, check=check, input=stdin)


@contextlib.contextmanager
def stand_in_held():
    """crunchy01's kube-router stand-in stopped and the bridge rule put back, for a test that must not race a
    flush; the stand-in runs again afterwards. The flushes have tests of their own (test_05, test_07)."""
    host("systemctl", "stop", "frlab-kube-router.timer")
    try:
        host("systemctl", "start", "libvirt-bridge-forward.service")
        yield
    finally:
        host("systemctl", "start", "frlab-kube-router.timer")


def kvm_virsh(*args: str, check: bool = True) -> str:
    """virsh in crunchy01's container."""
    return host("virsh", "-q", "-c", "qemu:///system", *args, check=check).stdout


def pool_volumes() -> list[str]:
    """The volume names in crunchy01's pool of the runner VMs."""
    return kvm_virsh("vol-list", "images").split()


def base_volumes() -> list[str]:
    """The prepared bases among them."""
    return [v for v in pool_volumes() if v.startswith("fenced-base-")]


def vm(
    command: str, key: str, ip: str = VM_IP, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """A shell command as root in the runner VM, over ssh as the admin user. sudo logs the command line to
    the guest's journal, so anything secret goes in on STDIN."""
    ssh = ["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
    ssh += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20"]
    return sh(*ssh, f"ops@{ip}", "sudo sh -c " + shlex.quote(command), check=check, timeout=300, input=stdin)


def admin_forge(env: dict[str, str]) -> LabForge:
    """The lab forge with its admin token: the runners' records."""
    return LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])


def lab_from_nothing() -> tuple[dict[str, str], LabForge]:
    """crunchy01's container made anew (no libvirt, no VM) and the forge without its runners' records."""
    sh(str(LAB / "kvm-host"), "down", HOST, check=False)
    env = lab_up()
    forge = admin_forge(env)
    for runner in forge.runners():
        if runner["name"] in (VM, OLD_VM):
            forge.delete_runner(runner["id"])
    return env, forge
