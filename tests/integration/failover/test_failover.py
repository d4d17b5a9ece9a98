"""failover.yml and the standby watchdog against a real lab forge and real runners that run jobs.

crunchy01 is a lab runner process in namespace frlab-wdpri; brix02 is an nspawn container (real systemd) in
frlab-wdsby, with the standby runner as a systemd unit and the watchdog installed by playbooks/failover.yml.
The tests run in order, each starting from the state the previous one left: their waits on the forge's
one-minute offline threshold follow one another instead of starting from scratch.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from failover_lab import (
    PRIMARY,
    STANDBY,
    UNIT,
    bring_up,
    started_at,
    summary,
    tear_down,
)
from lablib.shell import wait_until

RESULTS: list[str] = []


@pytest.fixture(scope="module")
def lab():
    forge, primary, container, play = bring_up()
    yield forge, primary, container, play
    tear_down(primary, container)
    summary(["failover (Gitea 1.27.3 as the stop-gap forge, lab runners, nspawn systemd):", *RESULTS])


def test_preflight_failures_change_nothing(lab):
    _forge, _primary, container, play = lab
    cases = {
        "knows 0 runner(s) named nobody": {"failover_primary_name": "nobody"},
        "does not answer at http://198.51.100.90:1": {"failover_api_url": "http://198.51.100.90:1"},
        "failover_mode must be one of: ha, standby": {"failover_mode": "both"},
        "failover_primary_name (or failover_primary_uuid)": {"failover_primary_name": ""},
    }
    # Every other case fails before the unit files are read, so all run at once, the foreign unit in place.
    container.run("sh", "-c", "echo '[Unit]' > /etc/systemd/system/foundation-runner-watchdog.timer")
    cases["foundation-runner-watchdog.timer on wdbrix were not written by foundation.runners"] = {}
    with ThreadPoolExecutor(len(cases)) as pool:
        runs = {m: pool.submit(play, o.pop("failover_mode", "standby"), **o) for m, o in cases.items()}
    container.run("rm", "/etc/systemd/system/foundation-runner-watchdog.timer")
    for message, run in runs.items():
        rc, _recap, out = run.result()
        assert rc != 0 and message in out, out
    assert container.run("test", "-e", "/etc/foundation-runners", check=False).returncode == 1
    RESULTS.append(f"preflight: {len(cases)} failure cases refused, nothing changed")


def test_standby_mode_check_apply_idempotent(lab):
    forge, _primary, container, play = lab
    wait_until(lambda: PRIMARY in forge.online(), 30)
    rc, recap, out = play("standby", "--check", "--diff")
    assert rc == 0 and recap["failed"] == 0, out
    assert container.run("test", "-e", "/etc/foundation-runners/watchdog.json", check=False).returncode == 1
    rc, recap, out = play("standby")
    assert rc == 0 and recap["changed"] > 0, out
    rc, recap, out = play("standby")
    assert rc == 0 and recap["changed"] == 0, out
    rc, recap, out = play("standby", "--check", "--diff")
    assert rc == 0 and recap["changed"] == 0, out
    mode = container.run("stat", "-c", "%a %U", "/etc/foundation-runners/watchdog.token").stdout.split()
    assert mode == ["600", "root"]
    assert forge.read_token not in container.run("cat", "/etc/foundation-runners/watchdog.json").stdout
    assert forge.read_token not in out
    assert not container.active()
    RESULTS.append("standby mode: check, apply, apply again changed=0, check again changed=0; token 0600 root")


def test_blip_never_starts_the_standby(lab):
    _forge, primary, container, _play = lab
    since = primary.kill()
    time.sleep(20)
    primary.start()
    time.sleep(60)  # past the forge's offline threshold from the loss, plus the watchdog's polls
    lines = container.journal(since)
    assert lines and not any(line.startswith("start") for line in lines), lines
    assert not container.active()
    RESULTS.append(f"blip: 20 s outage, {len(lines)} polls over 80 s, standby never started")


def test_failover_runs_a_queued_job_on_the_standby(lab):
    forge, primary, container, _play = lab
    lost = primary.kill()
    workflow = forge.push_workflow(5)
    jobs = forge.wait_jobs(workflow, lambda j: j["status"] == "completed", 240)
    assert [(j["conclusion"], j["runner_name"]) for j in jobs] == [("success", STANDBY)]
    latency = started_at(jobs[0]) - lost
    assert container.active()
    RESULTS.append(f"failover: queued job succeeded on {STANDBY}, {latency:.0f} s from loss to job start (target 90)")
    assert latency <= 90, latency


def test_forge_outage_changes_nothing(lab):
    forge, _primary, container, _play = lab
    since = time.time()
    forge.stop()
    try:
        time.sleep(120)
        lines = container.journal(since)
        assert container.active()
    finally:
        forge.start()
    holds = [line for line in lines if line.startswith("hold: forge error, standby stays running")]
    assert holds and len(holds) == len(lines), lines
    RESULTS.append(f"forge outage: 120 s, {len(holds)} polls held ('{holds[0][:70]}...'), standby kept running")


def test_failback_drains_the_running_job(lab):
    forge, primary, container, _play = lab
    workflow = forge.push_workflow(60)
    forge.wait_jobs(workflow, lambda j: j["status"] == "in_progress", 60)
    restored = time.time()
    primary.start()
    jobs = forge.wait_jobs(workflow, lambda j: j["status"] == "completed", 180)
    assert [(j["conclusion"], j["runner_name"]) for j in jobs] == [("success", STANDBY)]
    wait_until(lambda: not container.active(), 120)
    stopped = time.time()
    wait_until(lambda: forge.online() == {PRIMARY}, 120, step=2)
    RESULTS.append(
        f"fail-back: 60 s job succeeded on {STANDBY}; standby stopped {stopped - restored:.0f} s after the primary"
        f" came back; then only {PRIMARY} online"
    )


def test_ha_mode_both_take_jobs_then_back_to_standby(lab):
    forge, _primary, container, play = lab
    rc, recap, out = play("ha")
    assert rc == 0, out
    assert container.active()
    assert container.run("test", "-e", "/etc/foundation-runners/watchdog.json", check=False).returncode == 1
    rc, recap, out = play("ha")
    assert rc == 0 and recap["changed"] == 0, out
    wait_until(lambda: forge.online() == {PRIMARY, STANDBY}, 30)
    workflow = forge.push_workflow(8, jobs=4)
    jobs = forge.wait_jobs(workflow, lambda j: j["status"] == "completed", 180)
    takers = {j["runner_name"] for j in jobs}
    assert {j["conclusion"] for j in jobs} == {"success"} and takers == {PRIMARY, STANDBY}, jobs
    rc, recap, out = play("standby")
    assert rc == 0, out
    wait_until(lambda: not container.active(), 60)
    rc, recap, out = play("standby")
    assert rc == 0 and recap["changed"] == 0, out
    RESULTS.append(f"ha: both online, 4 jobs taken by {sorted(takers)}; back to standby: {UNIT} stopped, changed=0")


def test_status_explains(lab):
    _forge, _primary, container, _play = lab
    status = container.run("/usr/local/sbin/foundation-runner-watchdog", "--status").stdout
    assert status.startswith("standby: stopped") and "last observations:" in status, status
