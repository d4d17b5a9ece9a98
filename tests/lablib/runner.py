"""A lab runner (tests/lab/lab-runner) run as a process of the test: its own directory with .runner and
config.yml, registered with forgejo-runner's command line and stopped with SIGTERM as systemd would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lablib.forge import LabForge, Repo


def config_yml(
    *,
    capacity: int = 1,
    shutdown_timeout: str = "0s",
    docker_host: str = "",
    workdir_parent: str = "",
    fetch_interval: str = "1s",
    runner_file: str = ".runner",
) -> str:
    """A config.yml with forgejo-runner's keys."""
    return (
        f"log:\n  level: info\nrunner:\n  file: {json.dumps(runner_file)}\n"
        f"  capacity: {capacity}\n  timeout: 10m\n  shutdown_timeout: {shutdown_timeout}\n"
        f"  fetch_interval: {fetch_interval}\n"
        "container:\n  network: host\n  privileged: false\n"
        f"  docker_host: {json.dumps(docker_host)}\n  force_pull: false\n"
        f"host:\n  workdir_parent: {json.dumps(workdir_parent)}\n"
    )


class LabRunnerProcess:
    """A lab runner daemon run by the test in its own directory (.runner, config.yml, daemon.log), in the root
    namespace or, with ``netns``, in lab namespace frlab-NETNS; stopped with SIGTERM as systemd would, or killed."""

    def __init__(
        self,
        binary: str,
        forge: LabForge | None,
        directory: Path,
        labels: list[str],
        *,
        prefix: str = "rn",
        name: str | None = None,
        netns: str | None = None,
    ):
        self.binary, self.forge, self.dir, self.labels = binary, forge, directory, labels
        self.name = name or f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.netns = netns
        self.proc: subprocess.Popen | None = None
        self.repo: Repo | None = None  # the repository it is registered for, or None: the instance
        self.env: dict[str, str] = {}  # added to the daemon's environment (DOCKER_HOST, as a unit would set it)
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self, *argv: str) -> list[str]:
        """A command of the runner, in its namespace when it has one."""
        return ["ip", "netns", "exec", f"frlab-{self.netns}", *argv] if self.netns else list(argv)

    @property
    def log_path(self) -> Path:
        return self.dir / "daemon.log"

    def configure(self, **options) -> None:
        options.setdefault("workdir_parent", str(self.dir / "work"))
        (self.dir / "config.yml").write_text(config_yml(**options))

    def register(self, check: bool = True, repo: Repo | None = None) -> subprocess.CompletedProcess:
        """Registers at instance scope, or for REPO alone (whose runner list then shows its records)."""
        self.repo = repo or self.repo
        token = self.repo.registration_token() if self.repo else self.forge.registration_token()
        command = self.argv(self.binary, "register", "--no-interactive", "--instance", self.forge.url)
        command += ["--token", token, "--name", self.name, "--labels", ",".join(self.labels)]
        proc = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            pytest.fail(f"register {self.name} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def state(self) -> dict:
        return json.loads((self.dir / ".runner").read_text())

    def start(self, wait: bool = True) -> None:
        """Starts the daemon; with wait, returns once it has declared itself to the forge."""
        if not (self.dir / "config.yml").exists():
            self.configure()
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            self.argv(self.binary, "daemon", "--config", "config.yml"),
            cwd=self.dir,
            stdout=log,
            stderr=log,
            env={**os.environ, **self.env},
            start_new_session=self.netns is not None,
        )
        deadline = time.monotonic() + 30
        while wait and "declared" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> float:
        """SIGKILL, no goodbye; returns the time of the loss."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        return time.time()

    def terminate(self) -> float:
        """Sends SIGTERM; returns when."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return time.time()

    def wait_exit(self, timeout: float) -> float:
        """Waits for the process to exit; returns when it did."""
        assert self.proc is not None
        self.proc.wait(timeout=timeout)
        return time.time()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def records(self) -> list[dict]:
        """This repository-scoped runner's records on the forge (one, if its identity holds)."""
        assert self.repo is not None, "records are listed for repository-scoped runners"
        return [r for r in self.repo.runners() if r["name"] == self.name]

    def remove(self) -> None:
        """Stops the daemon and deletes its registration from the forge."""
        self.stop()
        if (self.dir / ".runner").exists():
            self.forge.delete_runner(self.state()["id"])
