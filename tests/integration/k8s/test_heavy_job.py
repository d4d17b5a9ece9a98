"""A `runs-on: heavy` job run by the lab runner started with exactly the .runner and config.yml that
k3s_heavy_runner stored in the Secret and the ConfigMap, against the real lab forge.

The lab has no docker daemon inside the (kwok-simulated) pod, so this runner set's label is `heavy:host`: the
job runs on the runner's host, which is the lab runner process itself.
"""

from __future__ import annotations

import pytest
from heavy_lab import HeavyLab, ReplicaProcess
from lablib.fence_probe import assert_fenced, findings, probe_workflow
from lablib.forge import LabForge

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
    process = ReplicaProcess(heavy_job, tmp_path, f"{heavy_job.name}-0")
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


ROOTLESS = {
    "k3s_heavy_runner_dind_rootless": True,
    "k3s_heavy_runner_dind_image": "docker.io/library/docker:28.5.2-dind-rootless",
}


@pytest.mark.parametrize("docker_access", [False, True], ids=["default", "opt-in"])
def test_heavy_job_reaches_no_container_engine(heavy_job, workflows, tmp_path, docker_host, docker_access):
    """A heavy job in a container tries every engine socket and its own escape options. The lab docker daemon
    stands in for the pod's DinD: the runner reaches it through DOCKER_HOST, as the pod's runner container does.
    With the opt-in (which the role allows only with a rootless DinD) the same job reaches it."""
    overrides = {
        "k3s_heavy_runner_labels": ["heavy:docker://lab/debian12:1"],
        "k3s_heavy_runner_allow_floating_images": True,
        "k3s_heavy_runner_job_docker_access": docker_access,
        **(ROOTLESS if docker_access else {}),
    }
    heavy_job.run_ok(**overrides)
    assert f'docker_host: "{"automount" if docker_access else "-"}"' in heavy_job.config_yml()
    process = ReplicaProcess(heavy_job, tmp_path, f"{heavy_job.name}-0", env={"DOCKER_HOST": docker_host})
    repo = workflows.create_repo("frk8s-fence")
    try:
        process.start()
        process.wait_online()
        run = repo.wait_run(repo.push({".gitea/workflows/probe.yml": probe_workflow("heavy", "lab/debian12:1")}), 240)
        assert run.conclusion == "success", run.log[-3000:]
        found = findings(run.log)
        print(f"heavy job, docker access {docker_access}: {found}")
        if docker_access:
            assert found["answered"] == ["/var/run/docker.sock"], found
        else:
            assert_fenced(found)
    finally:
        process.stop()
        repo.delete()


def test_job_docker_access_needs_a_rootless_dind(heavy_job):
    proc = heavy_job.run(k3s_heavy_runner_job_docker_access=True)[0]
    assert proc.returncode != 0
    assert "Set k3s_heavy_runner_dind_rootless" in " ".join((proc.stdout + proc.stderr).split())
