"""The failover lab: a private lab forge, a primary runner process standing in for crunchy01, and an nspawn
container standing in for brix02 that runs the standby runner as a real systemd unit and the watchdog."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import yaml
from lablib.ansible import recap
from lablib.forge import LabForge
from lablib.runner import LabRunnerProcess, config_yml
from lablib.shell import LAB, ROOT, lab_env, sh

# A forge of its own, so that stopping it hurts no other test; its namespaces are prefixed wd.
FORGE_ENV = {
    "FRLAB_FORGE_DIR": "/var/lib/frlab/forge-wd",
    "FRLAB_FORGE_HOST": "wdforge",
    "FRLAB_FORGE_ADDR": "198.51.100.90",
}
PRIMARY_NS, PRIMARY_IP, PRIMARY = "wdpri", "198.51.100.91", "wd-crunchy01"
STANDBY_NS, STANDBY_IP, STANDBY, CONTAINER = "wdsby", "198.51.100.92", "wd-brix02", "wdbrix"
UNIT = "forgejo-runner.service"
SHUTDOWN_TIMEOUT = 150  # the runners' graceful drain, longer than any test job
RUNNER_DIR = "/var/lib/forgejo-runner"
# Registrations survive between runs here (a new one each run would leave duplicates on the forge).
STATE = Path("/var/lib/frlab/wd-failover")


def forge_command(*args: str) -> list[str]:
    return ["env", *(f"{k}={v}" for k, v in FORGE_ENV.items()), str(LAB / "forge"), *args]


class FailoverForge(LabForge):
    """The private lab forge: the lab forge's client, plus stopping and starting the server."""

    def __init__(self):
        sh(*forge_command("up"))
        self.env = lab_env(forge_command("env"))
        owner, admin = self.env["FORGE_GITEA_TOKEN_OWNER"], self.env["FORGE_GITEA_TOKEN_WRITE_ADMIN"]
        super().__init__(self.env["FORGE_GITEA_URL"], owner, admin_token=admin)
        self.read_token = self.env["FORGE_GITEA_TOKEN_READ_ADMIN"]
        self.workflows = 0
        self.remove_workflows()

    def remove_workflows(self) -> None:
        """Workflows left by an earlier run would run again on every push."""
        resp = self.call("GET", "/repos/fleet/ci/contents/.gitea/workflows", expect=(200, 404))
        if resp.status_code == 404:
            return
        for item in resp.json():
            body = {"sha": item["sha"], "message": "clean"}
            self.call("DELETE", f"/repos/fleet/ci/contents/{item['path']}", json=body)

    def online(self) -> set[str]:
        return {r["name"] for r in self.runners() if r["status"] == "online"}

    def push_workflow(self, seconds: int, jobs: int = 1) -> str:
        """Commit a workflow with `jobs` fenced jobs that each sleep `seconds`; returns its file name."""
        self.workflows += 1
        name = f"wd-{os.getpid()}-{self.workflows}-{int(time.time())}"
        # Only a push of this very file runs it: every workflow in the repository runs on every matching push.
        body = {
            "on": {"push": {"paths": [f".gitea/workflows/{name}.yml"]}},
            "jobs": {f"j{i}": {"runs-on": "fenced", "steps": [{"run": f"sleep {seconds}"}]} for i in range(jobs)},
        }
        content = base64.b64encode(yaml.safe_dump(body).encode()).decode()
        self.call(
            "POST", f"/repos/fleet/ci/contents/.gitea/workflows/{name}.yml", json={"content": content, "message": name}
        )
        return name

    def jobs_of(self, workflow: str) -> list[dict]:
        runs = self.call("GET", "/repos/fleet/ci/actions/runs", params={"limit": 50}).json()
        ids = [r["id"] for r in runs["workflow_runs"] if r.get("path", "").startswith(f"{workflow}.yml")]
        jobs = []
        for run_id in ids:
            jobs += self.call("GET", f"/repos/fleet/ci/actions/runs/{run_id}/jobs").json()["jobs"]
        return jobs

    def wait_jobs(self, workflow: str, done, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.jobs_of(workflow)
            if jobs and all(done(job) for job in jobs):
                return jobs
            time.sleep(1)
        raise AssertionError(f"jobs of {workflow} not done after {timeout} s: {self.jobs_of(workflow)}")

    def stop(self) -> None:
        pidfile = Path(FORGE_ENV["FRLAB_FORGE_DIR"]) / "gitea" / "pid"
        os.kill(int(pidfile.read_text()), signal.SIGTERM)

    def start(self) -> None:
        sh(*forge_command("up"))


def started_at(job: dict) -> float:
    return datetime.fromisoformat(job["started_at"].replace("Z", "+00:00")).timestamp()


def primary_runner(forge: FailoverForge, workdir: Path) -> LabRunnerProcess:
    """The primary runner: a lab runner process in its own lab namespace (crunchy01's stand-in), registered once."""
    runner = LabRunnerProcess(forge.env["LAB_RUNNER"], forge, workdir, ["fenced:host"], name=PRIMARY, netns=PRIMARY_NS)
    runner.configure(capacity=1, shutdown_timeout=f"{SHUTDOWN_TIMEOUT}s", fetch_interval="2s", workdir_parent="")
    if not (workdir / ".runner").exists():
        runner.register()
    return runner


class Container:
    """brix02's stand-in: a systemd container with the standby runner's unit, reached by nsenter."""

    def __init__(self, forge: FailoverForge):
        binary, standby_dir = forge.env["LAB_RUNNER"], STATE / "standby"
        standby_dir.mkdir(parents=True, exist_ok=True)
        self.down()  # a fresh copy of the root every run, with these binds
        sh(str(LAB / "nspawn"), "up", CONTAINER, "--netns", f"frlab-{STANDBY_NS}",
           "--bind", f"{binary}:/usr/local/bin/forgejo-runner", "--bind", f"{standby_dir}:{RUNNER_DIR}")  # fmt: skip
        self.pid = sh(str(LAB / "nspawn"), "pid", CONTAINER).stdout.strip()
        self.install_runner(forge)

    def run(self, *argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return sh("nsenter", "-t", self.pid, "-a", *argv, check=check, **kwargs)

    def install_runner(self, forge: FailoverForge) -> None:
        """What fenced_runner leaves in the VM: a registered runner and its unit, here written by hand."""
        (STATE / "standby" / "config.yml").write_text(
            config_yml(
                shutdown_timeout=f"{SHUTDOWN_TIMEOUT}s", fetch_interval="2s", runner_file=f"{RUNNER_DIR}/.runner"
            )
        )
        if not (STATE / "standby" / ".runner").exists():
            self.run("/usr/local/bin/forgejo-runner", "register", "--no-interactive", "--instance", forge.url,
                     "--token", forge.registration_token(), "--name", STANDBY, "--labels", "fenced:host",
                     "--config", f"{RUNNER_DIR}/config.yml")  # fmt: skip
        unit = f"""[Unit]
Description=Standby lab runner (stands in for the fenced_runner unit in the VM)
[Service]
WorkingDirectory={RUNNER_DIR}
Environment=HOME={RUNNER_DIR}
ExecStart=/usr/local/bin/forgejo-runner daemon --config {RUNNER_DIR}/config.yml
KillSignal=SIGTERM
TimeoutStopSec={SHUTDOWN_TIMEOUT + 30}
[Install]
WantedBy=multi-user.target
"""
        self.run("sh", "-c", f"cat > /etc/systemd/system/{UNIT}", input=unit)
        self.run("systemctl", "daemon-reload")

    def active(self) -> bool:
        return self.run("systemctl", "is-active", UNIT, check=False).stdout.strip() == "active"

    def journal(self, since: float) -> list[str]:
        out = self.run(
            "journalctl",
            "-o",
            "cat",
            "-u",
            "foundation-runner-watchdog.service",
            "--since",
            f"@{int(since)}",
            check=False,
        )
        return [line for line in out.stdout.splitlines() if re.match(r"^(start|stop|hold): ", line)]

    def down(self) -> None:
        sh(str(LAB / "nspawn"), "down", CONTAINER, check=False)


class Playbook:
    """playbooks/failover.yml against the container, with an inventory written for it."""

    def __init__(self, forge: FailoverForge, container: Container, workdir: Path):
        self.forge, self.container, self.inventory = forge, container, workdir / "inventory.yml"

    def host_vars(self, mode: str, **overrides) -> dict:
        return {
            "ansible_connection": "community.docker.nsenter",
            "ansible_nsenter_pid": self.container.pid,
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_become_method": "ansible.builtin.su",
            "failover_mode": mode,
            "failover_api_url": self.forge.url,
            "failover_allow_insecure_http": True,  # the lab forge: plain http in the lab's namespace
            "failover_watchdog_token": self.forge.read_token,
            "failover_primary_name": PRIMARY,
            "failover_standby_name": STANDBY,
            "failover_vm_managed": False,
            "failover_runner_unit": UNIT,
            "runner_watchdog_interval": 10,
            "runner_watchdog_drain_timeout": SHUTDOWN_TIMEOUT + 30,
            **overrides,
        }

    def __call__(self, mode: str, *options: str, **overrides) -> tuple[int, dict, str]:
        """Run the play; returns its exit status, the recap of the host and the output."""
        hosts = {CONTAINER: self.host_vars(mode, **overrides)}
        inventory = self.inventory.with_name(f"inventory-{threading.get_ident()}.yml")  # runs may be concurrent
        inventory.write_text(yaml.safe_dump({"all": {"children": {"failover_hosts": {"hosts": hosts}}}}))
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".ansible" / "collections"),
               "ANSIBLE_CONFIG": str(ROOT / "tests" / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}  # fmt: skip
        command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), "-l", CONTAINER]
        proc = sh(*command, str(ROOT / "playbooks" / "failover.yml"), *options, check=False, env=env)
        out = proc.stdout + proc.stderr
        return proc.returncode, recap(out).get(CONTAINER, {}), out


def bring_up() -> tuple[FailoverForge, LabRunnerProcess, Container, Playbook]:
    """The lab hosts, the private forge, the primary runner running, and a fresh brix02 container."""
    sh(str(LAB / "net"), "host", PRIMARY_NS, PRIMARY_IP)
    sh(str(LAB / "net"), "host", STANDBY_NS, STANDBY_IP, "--bridge")
    forge = FailoverForge()
    primary = primary_runner(forge, STATE / "primary")
    primary.start()
    container = Container(forge)
    return forge, primary, container, Playbook(forge, container, STATE)


def tear_down(primary: LabRunnerProcess, container: Container) -> None:
    if primary.proc and primary.proc.poll() is None:
        primary.kill()
    container.down()


def summary(lines: list[str]) -> None:
    path = ROOT / "tests" / "output" / "failover-summary.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
