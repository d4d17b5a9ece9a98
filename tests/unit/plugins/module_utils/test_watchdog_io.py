"""The watchdog program: configuration, the state file across restarts, --status, the unit, a fake forge."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fake_forgejo import READ_ADMIN_TOKEN
from installed_program import run_installed
from textfile_samples import samples

from ansible_collections.foundation.runners.plugins.module_utils._watchdog_io import main

ROOT = Path(__file__).resolve().parents[4]


class Systemctl:
    """Records systemctl calls and answers is-active from its own idea of the unit."""

    def __init__(self, active=False, fail=False):
        self.active, self.fail, self.calls = active, fail, []

    def __call__(self, argv, **kwargs):
        verb = argv[-2]
        self.calls.append(verb)
        if verb == "is-active":
            return subprocess.CompletedProcess(argv, 0, "active\n" if self.active else "inactive\n", "")
        if self.fail:
            raise subprocess.CalledProcessError(1, argv, "", "Failed to start runner.service: Access denied\n")
        self.active = verb == "start"
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.fixture
def setup(forge, tmp_path):
    primary = forge.add_runner("crunchy01", status="idle")
    forge.add_runner("brix02", status="offline")
    token = tmp_path / "token"
    token.write_text(READ_ADMIN_TOKEN + "\n")
    config = {
        "api_url": forge.url,
        "allow_insecure_http": True,
        "token_file": str(token),
        "primary_uuid": primary["uuid"],
        "unit": "runner.service",
        "state_file": str(tmp_path / "state.json"),
        "start_after": 2,
        "stop_after": 2,
    }
    path = tmp_path / "watchdog.json"
    path.write_text(json.dumps(config))
    return forge, primary, str(path), tmp_path / "state.json"


def run(config, clock, systemctl, *extra):
    return main(["--config", config, *extra], clock=lambda: clock, run=systemctl)


def test_start_after_n_and_state_survives_restarts(setup, capsys):
    _forge, primary, config, state_file = setup
    unit = Systemctl()
    assert run(config, 100, unit) == 0
    primary["status"] = "offline"
    assert run(config, 110, unit) == 0 and unit.calls == ["is-active"]  # 1/2: each run is a new process
    assert run(config, 120, unit) == 0 and unit.calls[-1] == "start"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("start: primary offline: primary crunchy01 offline")
    assert json.loads(state_file.read_text())["standby"] == "running"
    assert run(config, 125, unit, "--status") == 0
    status = capsys.readouterr().out
    assert "standby: running (since 5 s ago)" in status and "primary offline: primary crunchy01 offline" in status


def test_forge_error_changes_nothing_and_says_why(setup, capsys):
    forge, _primary, config, state_file = setup
    unit = Systemctl(active=True)
    state_file.write_text(json.dumps({"standby": "running"}))
    forge.fail_next = [502, 502]
    assert run(config, 100, unit) == 0 and run(config, 110, unit) == 0
    assert unit.calls == []
    out = capsys.readouterr().out
    assert out.count("hold: forge error, standby stays running: Request GET") == 2
    assert "[502] injected failure" in out


def test_failed_start_is_reported_and_retried(setup, capsys):
    _forge, primary, config, state_file = setup
    primary["status"] = "offline"
    unit = Systemctl(fail=True)
    run(config, 100, unit)
    assert run(config, 110, unit) == 1
    assert (
        "start runner.service failed, will retry: Failed to start runner.service: Access denied"
        in capsys.readouterr().out
    )
    assert json.loads(state_file.read_text())["standby"] == "stopped"


def test_strict_standby_stops_a_unit_started_by_hand(setup, capsys):
    _forge, _primary, config, _state_file = setup
    unit = Systemctl(active=True)
    assert run(config, 100, unit) == 0 and unit.calls == ["is-active", "stop"]
    assert "runs although the primary is up (strict standby)" in capsys.readouterr().out


def test_the_unit_is_read_once_a_minute_while_nothing_is_due(setup):
    """Each read of a standby VM's unit is an ssh login: while the primary stays online, one a minute."""
    _forge, _primary, config, _state_file = setup
    unit = Systemctl()
    for now in range(100, 400, 10):
        assert run(config, now, unit) == 0
    assert unit.calls == ["is-active"] * 5  # at 100, 160, 220, 280 and 340 s
    unit.active = True  # started by hand: stopped at the next read
    assert run(config, 400, unit) == 0 and unit.calls[-2:] == ["is-active", "stop"]


def test_bad_configuration_names_the_file(tmp_path, capsys):
    path = tmp_path / "watchdog.json"
    path.write_text(json.dumps({"api_url": "http://forge"}))
    assert main(["--config", str(path)]) == 2
    assert f"{path}: missing token_file, unit, state_file, primary_uuid or primary_id" in capsys.readouterr().err


def test_the_installed_program_runs_without_ansible(tmp_path):
    """The role installs the listed module_utils beside its entry point; the host's Python has no Ansible."""
    proc = run_installed(tmp_path, "runner_watchdog", "__runner_watchdog_sources", "watchdog.j2", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout


def with_textfile(config: str, directory: Path) -> None:
    data = json.loads(Path(config).read_text())
    Path(config).write_text(json.dumps({**data, "textfile_dir": str(directory)}))


def test_each_poll_writes_the_state_and_decision_for_node_exporter(setup, tmp_path):
    _forge, primary, config, _state_file = setup
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    with_textfile(config, textfiles)
    unit = Systemctl()
    run(config, 100, unit)
    path = textfiles / "foundation-runners-watchdog.prom"
    seen = samples(path)
    assert seen["foundation_runners_watchdog_standby_running"] == 0
    assert seen['foundation_runners_watchdog_state{state="standby"}'] == 1
    assert seen['foundation_runners_watchdog_last_decision{action="hold"}'] == 1
    assert seen["foundation_runners_watchdog_primary_online"] == 1
    assert seen['foundation_runners_metrics_written_timestamp_seconds{writer="watchdog"}'] == 100
    primary["status"] = "offline"
    run(config, 110, unit)
    run(config, 120, unit)
    seen = samples(path)
    assert seen["foundation_runners_watchdog_standby_running"] == 1
    assert seen['foundation_runners_watchdog_state{state="active"}'] == 1
    assert seen['foundation_runners_watchdog_state{state="standby"}'] == 0
    assert seen['foundation_runners_watchdog_last_decision{action="start"}'] == 1
    assert seen["foundation_runners_watchdog_last_change_timestamp_seconds"] == 120
    assert seen["foundation_runners_watchdog_primary_online"] == 0
    assert oct(path.stat().st_mode & 0o777) == "0o644" and sorted(p.name for p in textfiles.iterdir()) == [path.name]


def test_a_forge_error_shows_as_holding(setup, tmp_path):
    forge, _primary, config, _state_file = setup
    with_textfile(config, tmp_path)
    forge.fail_next = [502]
    run(config, 100, Systemctl())
    seen = samples(tmp_path / "foundation-runners-watchdog.prom")
    assert seen['foundation_runners_watchdog_state{state="holding_on_forge_error"}'] == 1
    assert "foundation_runners_watchdog_primary_online" not in seen


def test_an_unwritable_textfile_directory_is_reported_and_the_poll_stands(setup, tmp_path, capsys):
    _forge, _primary, config, state_file = setup
    with_textfile(config, tmp_path / "missing")
    assert run(config, 100, Systemctl()) == 0
    assert "watchdog: metrics not written to" in capsys.readouterr().err
    assert json.loads(state_file.read_text())["history"]
