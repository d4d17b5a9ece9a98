"""The shipped alerting rules in a real Prometheus (Debian's package, tests/lab/prometheus), fed by the forge
metrics program (plugins/module_utils/_forge_metrics.py, what the forge_metrics role installs) through node_exporter's
textfile collector, against a forge of its own: a fenced runner online keeps FencedRunnerNoneOnline quiet; a fenced
job with no runner shows as waiting; the runner stopped, the forge lists it offline and the alert fires."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from lablib.forge import LabForge
from lablib.prometheus import Prometheus
from lablib.runner import LabRunnerProcess
from lablib.shell import LAB, ROOT, env_file, lab_env, sh, wait_until

# The part's own forge and Prometheus (tests/lab/monitoring.env).
INSTANCES = env_file(LAB / "monitoring.env")
ALERT = "FencedRunnerNoneOnline"
WAITING = """\
on: push
jobs:
  waits:
    runs-on: fenced
    steps:
      - run: "true"
"""


def lab_command(tool: str, *args: str) -> list[str]:
    """A lab command on this part's instances."""
    return ["env", *(f"{k}={v}" for k, v in INSTANCES.items()), str(LAB / tool), *args]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    sh(*lab_command("forge", "up"), timeout=1800)
    sh(*lab_command("prometheus", "up"))
    env = {**lab_env(lab_command("forge", "env", "gitea")), **lab_env(lab_command("prometheus", "env"))}
    yield env
    sh(*lab_command("prometheus", "down"), check=False)
    sh(*lab_command("forge", "down"), check=False)


@pytest.fixture
def metrics_writer(lab, tmp_path):
    """The forge metrics program every 5 s, as its timer would run it, into the lab node_exporter's directory."""
    token = tmp_path / "token"
    token.write_text(lab["FORGE_GITEA_TOKEN_READ_ADMIN"])
    config = tmp_path / "forge-metrics.json"
    settings = {
        "api_url": lab["FORGE_GITEA_URL"],
        "allow_insecure_http": True,
        "token_file": str(token),
        "labels": ["fenced"],
        "state_file": str(tmp_path / "seen.json"),
        "textfile_dir": lab["LAB_TEXTFILE_DIR"],
    }
    config.write_text(json.dumps(settings))
    stop = threading.Event()

    # The program as the role runs it: the collection's module_utils, no Ansible around them.
    program = "from ansible_collections.foundation.runners.plugins.module_utils._forge_metrics import main; main()"
    env = {"PYTHONPATH": str(ROOT / ".ansible" / "collections")}

    def loop() -> None:
        while not stop.is_set():
            subprocess.run([sys.executable, "-c", program, "--config", str(config)], env=env, check=False)
            stop.wait(5)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)
    Path(lab["LAB_TEXTFILE_DIR"], "foundation-runners-forge.prom").unlink(missing_ok=True)


def test_no_fenced_runner_online_fires_in_prometheus(lab, metrics_writer, tmp_path):
    forge = LabForge(lab["FORGE_GITEA_URL"], lab["FORGE_GITEA_TOKEN_OWNER"], lab["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    prometheus = Prometheus(lab["PROMETHEUS_URL"])
    online = 'foundation_runners_forge_runners_online{label="fenced"}'
    runner = LabRunnerProcess(lab["LAB_RUNNER"], forge, tmp_path / "runner", ["fenced:host"], prefix="mon")
    repo = forge.create_repo("mon")
    try:
        runner.configure()
        runner.register()
        runner.start()
        wait_until(lambda: prometheus.value(online) == 1, 120, step=2)
        # Before the runner declared itself the count was 0, so the alert may be pending for one more evaluation.
        wait_until(lambda: prometheus.alert_state(ALERT) == "inactive", 30, step=1)

        runner.stop()
        stopped = time.monotonic()
        repo.push({".gitea/workflows/waits.yml": WAITING}, message="a fenced job, no runner")
        wait_until(lambda: (prometheus.value('foundation_runners_forge_jobs_waiting{label="fenced"}') or 0) >= 1, 120)
        wait_until(lambda: prometheus.value(online) == 0, 180, step=2)
        offline = time.monotonic() - stopped
        wait_until(lambda: prometheus.alert_state(ALERT) == "pending", 60, step=2)
        wait_until(lambda: prometheus.alert_state(ALERT) == "firing", 180, step=2)
        fired = time.monotonic() - stopped
    finally:
        runner.remove()
        repo.delete()
    print(f"{ALERT}: the forge listed the runner offline {offline:.0f} s after it stopped; firing after {fired:.0f} s")
    assert fired >= offline + 115, "the alert fired before its 2 minutes"
