"""The lab runner against the real lab forge: jobs on the host and in docker, failure, drain on SIGTERM,
one identity across restarts, parallel tasks. Logs and results are read back through the forge API."""

from __future__ import annotations

import time
import uuid

import pytest
from lablib.fence_probe import assert_fenced, findings, probe_workflow

HOST_JOB = """on: push
jobs:
  hello:
    runs-on: LABEL
    steps:
      - run: echo "marker-${{ github.sha }}"
      - run: echo "carried-between-steps" > note.txt
      - run: cat note.txt
      - run: echo "the secret is ${{ secrets.LAB_SECRET }}"
"""

FAILING_JOB = """on: push
jobs:
  fails:
    runs-on: LABEL
    steps:
      - run: echo before
      - run: exit 3
      - run: echo never-printed
"""

CONTAINER_JOB = """on: push
jobs:
  box:
    runs-on: LABEL
    steps:
      - run: cat /etc/os-release
      - run: test -f /.dockerenv && echo "dockerenv-exists"
"""

SLEEP_JOB = """on: push
jobs:
  sleeps:
    runs-on: LABEL
    steps:
      - run: sleep 40 && echo slept
"""

TWO_JOBS = """on: push
jobs:
  one:
    runs-on: LABEL
    steps:
      - run: sleep 20
  two:
    runs-on: LABEL
    steps:
      - run: sleep 20
"""

NEEDS_JOBS = """on: push
jobs:
  first:
    runs-on: LABEL
    outputs:
      word: ${{ steps.pick.outputs.word }}
    steps:
      - id: pick
        run: echo "word=handed-over-42" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: LABEL
    steps:
      - run: echo "got ${{ needs.first.outputs.word }} after ${{ needs.first.result }}"
"""

SECRET = "lab-secret-4f1c2a9e"
WORKFLOW = ".gitea/workflows/ci.yml"  # read by Gitea and by Forgejo


def labelled(workflow: str, scheme: str = "host") -> tuple[str, str]:
    """A runner label of this test's own (so no other runner on the forge takes its jobs) and the workflow
    running on it."""
    name = f"rn-{scheme.partition(':')[0]}-{uuid.uuid4().hex[:8]}"
    return f"{name}:{scheme}", workflow.replace("LABEL", name)


def running(runners, job: str, scheme: str = "host", **config):
    """A registered, started runner with a label of its own, and JOB's workflow aimed at that label."""
    label, workflow = labelled(job, scheme)
    runner = runners([label], **config)
    runner.register()
    runner.start()
    return runner, workflow


def test_host_job_succeeds_with_secret_masked(runners, repos):
    workflow = running(runners, HOST_JOB)[1]
    repo = repos()
    repo.set_secret("LAB_SECRET", SECRET)
    push = repo.push({WORKFLOW: workflow})
    run = repo.wait_run(push, timeout=120)
    assert run.conclusion == "success", run.log
    assert f"marker-{push.sha}" in run.log
    assert "\ncarried-between-steps" in "\n" + "\n".join(line.split(" ", 1)[-1] for line in run.log.splitlines())
    assert SECRET not in run.log
    assert "the secret is ***" in run.log
    assert run.step_conclusions() == ["success"] * 4


def test_failing_step_fails_the_job_and_skips_the_rest(runners, repos):
    workflow = running(runners, FAILING_JOB)[1]
    repo = repos()
    run = repo.wait_run(repo.push({WORKFLOW: workflow}), timeout=120)
    assert run.conclusion == "failure", run.log
    assert run.step_conclusions() == ["success", "failure", "skipped"]
    assert "exit status 3" in run.log
    assert "never-printed" not in run.log.replace("echo never-printed", "")


def test_container_job_runs_in_the_lab_image(runners, repos, docker_host):
    workflow = running(runners, CONTAINER_JOB, "docker://lab/debian12:1", docker_host=docker_host)[1]
    repo = repos()
    run = repo.wait_run(repo.push({WORKFLOW: workflow}), timeout=180)
    assert run.conclusion == "success", run.log
    assert 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' in run.log
    assert "dockerenv-exists" in run.log
    assert "forcePull=false" in run.log


@pytest.mark.parametrize("setting", ["-", "automount"])
def test_a_job_reaches_the_engine_only_with_automount(runners, repos, docker_host, setting):
    """docker_host "-" (the roles' default): the runner finds its daemon through DOCKER_HOST, the job finds no
    engine and its escape options are dropped. "automount" (the opt-in): the same job reaches the daemon."""
    name = f"rn-fence-{uuid.uuid4().hex[:8]}"
    runner = runners([f"{name}:docker://lab/debian12:1"], docker_host=setting)
    runner.env["DOCKER_HOST"] = docker_host
    runner.register()
    runner.start()
    repo = repos()
    run = repo.wait_run(repo.push({WORKFLOW: probe_workflow(name, "lab/debian12:1")}), timeout=180)
    assert run.conclusion == "success", run.log
    found = findings(run.log)
    print(f"docker_host {setting}: {found}")
    if setting == "-":
        assert_fenced(found)
        assert "the option --pid=host of the workflow is ignored" in run.log
    else:
        assert found["answered"] == ["/var/run/docker.sock"], found
        assert found["pid1"] != "systemd", "escape options must stay dropped with automount"


def test_needs_outputs_reach_the_next_job(runners, repos):
    workflow = running(runners, NEEDS_JOBS)[1]
    repo = repos()
    run = repo.wait_run(repo.push({WORKFLOW: workflow}), timeout=120)
    assert run.conclusion == "success", run.log
    assert "got handed-over-42 after success" in run.log


@pytest.mark.parametrize(("shutdown_timeout", "conclusion"), [("90s", "success"), ("5s", "cancelled")])
def test_sigterm_drains_then_cancels(runners, repos, shutdown_timeout, conclusion):
    runner, workflow = running(runners, SLEEP_JOB, shutdown_timeout=shutdown_timeout)
    repo = repos()
    push = repo.push({WORKFLOW: workflow})
    started = repo.wait_started(push)
    time.sleep(2)
    termed = runner.terminate()
    exited = runner.wait_exit(timeout=120)
    run = repo.wait_run(push, timeout=30)
    assert run.conclusion == conclusion, run.log
    if conclusion == "success":
        assert "slept" in run.log
        assert exited >= started + 40, "the daemon exited before its job finished"
    else:
        assert run.done_at - termed < 10, f"cancelled after {run.done_at - termed:.1f} s"
        assert exited - termed < 10
        assert "slept" not in run.log.replace("echo slept", "")


def test_one_identity_across_restarts(runners, repos):
    runner = runners([labelled("")[0]])
    runner.register(repo=repos())  # a repository's runner list holds its records alone
    first = runner.state()
    assert set(first) == {"id", "uuid", "name", "token", "address", "labels"}
    for _restart in range(3):
        runner.start()
        runner.stop()
    assert runner.state() == first
    records = runner.records()
    assert [r["id"] for r in records] == [first["id"]]
    again = runner.register(check=False)
    assert again.returncode != 0
    assert "already registered" in again.stderr
    assert [r["id"] for r in runner.records()] == [first["id"]]


def test_capacity_two_runs_jobs_in_parallel(runners, repos):
    workflow = running(runners, TWO_JOBS, capacity=2)[1]
    repo = repos()
    push = repo.push({WORKFLOW: workflow})
    run = repo.wait_run(push, timeout=120)
    assert run.conclusion == "success", run.log
    assert run.done_at - push.at < 35, f"two 20 s jobs took {run.done_at - push.at:.1f} s from push to result"
