"""fenced_runner's metrics script, as installed in the VM, against stand-ins for systemctl, the Docker engine's API
socket and the runner."""

from __future__ import annotations

import json
import socketserver
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from installed_program import install_script
from serving import serving
from textfile_samples import samples

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "fenced_runner" / "files" / "runner_metrics.py"
UNIT = "forgejo-runner.service"


def program(path: Path, text: str, rc: int = 0) -> str:
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{text}\nOUT\nexit {rc}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def vm(tmp_path, monkeypatch):
    """The script installed, a PATH with systemctl, and the metrics directory."""
    script = install_script(tmp_path, SCRIPT, "runner-metrics.py")
    tools = tmp_path / "tools"
    tools.mkdir()
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    (tmp_path / "metrics").mkdir()
    return script, tools, tmp_path / "metrics"


class Engine(socketserver.UnixStreamServer):
    """GET /containers/json on a Unix socket: the running containers' names, or an error status. One request at a
    time, answered in the serving thread (the script makes one)."""

    def __init__(self, path: Path, names: list[str], status: int = 200):
        self.names, self.status, self.requests = names, status, []
        super().__init__(str(path), EngineHandler)


class EngineHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        body = json.dumps([{"Names": [f"/{name}"], "State": "running"} for name in self.server.names]).encode()
        if self.server.status != 200:
            body = b'{"message": "engine unavailable"}'
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run(vm, state="active", version_text="forgejo-runner version v12.10.2", containers="", engine_status=200, *extra):
    script, tools, metrics = vm
    program(tools / "systemctl", state)
    args = [
        "--runner", "runner-02", "--unit", UNIT,
        "--binary", program(tools / "forgejo-runner", version_text),
        "--engine-socket", str(tools / "docker.sock"),
        "--textfile-dir", str(metrics), *extra,
    ]  # fmt: skip
    try:
        with serving(Engine(tools / "docker.sock", containers.split(), engine_status)) as engine:
            assert script.main(args) == 0
    finally:
        (tools / "docker.sock").unlink()
    assert engine.requests == ["/containers/json"]
    return samples(metrics / "foundation-runners-runner.prom")


def test_an_idle_active_runner(vm):
    seen = run(vm)
    assert seen[f'foundation_runners_runner_unit_state{{runner="runner-02",state="active",unit="{UNIT}"}}'] == 1
    assert seen[f'foundation_runners_runner_unit_state{{runner="runner-02",state="failed",unit="{UNIT}"}}'] == 0
    assert seen['foundation_runners_runner_info{runner="runner-02",version="v12.10.2"}'] == 1
    assert seen['foundation_runners_runner_jobs_running{runner="runner-02"}'] == 0
    assert seen['foundation_runners_runner_engine_up{runner="runner-02"}'] == 1
    assert seen['foundation_runners_runner_standby{runner="runner-02"}'] == 0
    assert 'foundation_runners_metrics_written_timestamp_seconds{writer="runner"}' in seen


def test_jobs_are_counted_by_task_not_by_container(vm):
    """A job with a service has two containers of one task; other containers are not jobs."""
    names = "\n".join(
        [
            "FORGEJO-ACTIONS-TASK-41_WORKFLOW-ci_JOB-build",
            "FORGEJO-ACTIONS-TASK-41_WORKFLOW-ci_JOB-build-postgres",
            "GITEA-ACTIONS-TASK-7_WORKFLOW-lint_JOB-lint",
            "forgejo-runner",
        ]
    )
    assert run(vm, containers=names)['foundation_runners_runner_jobs_running{runner="runner-02"}'] == 2


def test_an_engine_that_does_not_answer_has_no_job_count(vm):
    seen = run(vm, "active", "forgejo-runner version v12.10.2", "", 500)
    assert seen['foundation_runners_runner_engine_up{runner="runner-02"}'] == 0
    assert not any(name.startswith("foundation_runners_runner_jobs_running") for name in seen)


def test_a_stopped_standby_and_the_lab_runner(vm):
    lab = "lab-runner version v99.1.0 (the foundation.runners lab runner, a stand-in for forgejo-runner)"
    seen = run(vm, "inactive", lab, "", 200, "--standby")
    assert seen[f'foundation_runners_runner_unit_state{{runner="runner-02",state="inactive",unit="{UNIT}"}}'] == 1
    assert seen['foundation_runners_runner_info{runner="runner-02",version="v99.1.0"}'] == 1
    assert seen['foundation_runners_runner_standby{runner="runner-02"}'] == 1


def test_an_unknown_state_and_version_are_still_written(vm):
    seen = run(vm, "maintenance", "segfault", "")
    assert seen[f'foundation_runners_runner_unit_state{{runner="runner-02",state="maintenance",unit="{UNIT}"}}'] == 1
    assert seen['foundation_runners_runner_info{runner="runner-02",version="unknown"}'] == 1


def test_no_engine_socket_is_an_engine_down(vm, capsys):
    script, tools, metrics = vm
    program(tools / "systemctl", "active")
    args = [
        "--runner", "runner-02", "--unit", UNIT, "--binary", program(tools / "forgejo-runner", "version v1"),
        "--engine-socket", str(tools / "absent.sock"), "--textfile-dir", str(metrics),
    ]  # fmt: skip
    assert script.main(args) == 0
    assert (
        samples(metrics / "foundation-runners-runner.prom")['foundation_runners_runner_engine_up{runner="runner-02"}']
        == 0
    )
    assert f"GET /containers/json on {tools / 'absent.sock'}" in capsys.readouterr().err
