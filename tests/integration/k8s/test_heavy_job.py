"""A `runs-on: heavy` job run by the lab runner started with exactly the .runner and config.yml that
k3s_heavy_runner stored in the Secret and the ConfigMap, against the real lab forge.

The lab has no docker daemon inside the (kwok-simulated) pod, so this runner set's label is `heavy:host`: the
job runs on the runner's host, which is the lab runner process itself.
"""

from __future__ import annotations

from heavy_lab import HeavyLab, RunnerProcess
from lab_workflows import LabForge

WORKFLOW = """\
on: push
jobs:
  heavy:
    runs-on: heavy
    steps:
      - run: echo "heavy job on $(hostname)"
      - run: test "$(cat /proc/loadavg | wc -w)" -ge 3
"""


def test_heavy_job_succeeds(heavy_job: HeavyLab, workflows: LabForge, tmp_path):
    assert heavy_job.run_ok(k3s_heavy_runner_labels=["heavy:host"]) > 0
    heavy_job.wait_ready(1)
    assert "heavy:host" in heavy_job.config_yml()
    process = RunnerProcess(heavy_job, tmp_path, f"{heavy_job.name}-0")
    repo = workflows.create_repo("frk8s-heavy")
    try:
        process.start()
        process.wait_online()
        push = repo.push({".gitea/workflows/heavy.yml": WORKFLOW})
        run = repo.wait_run(push, timeout=240)
        print(f"heavy job: {run.conclusion}, {run.push_to_start:.1f} s push to start")
        assert run.conclusion == "success", run.log[-3000:]
        assert "heavy job on" in run.log
        (record,) = heavy_job.runners()
        assert record["id"] == heavy_job.secret_record_id(f"{heavy_job.name}-0")
    finally:
        process.stop()
        repo.delete()
