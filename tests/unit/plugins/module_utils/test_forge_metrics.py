"""The forge's view of the fleet per label, for node_exporter: runners online and known, jobs waiting, the oldest
one's wait; on a forge without the runners API, the jobs only; on a forge error, up 0 and nothing else."""

from __future__ import annotations

import json

import pytest
from fake_forgejo import READ_ADMIN_TOKEN
from installed_program import run_installed
from textfile_samples import samples

from ansible_collections.foundation.runners.plugins.module_utils._forge_metrics import main


@pytest.fixture
def setup(forge, tmp_path):
    token = tmp_path / "token"
    token.write_text(READ_ADMIN_TOKEN + "\n")
    (tmp_path / "textfile").mkdir()
    config = {
        "api_url": forge.url,
        "allow_insecure_http": True,
        "token_file": str(token),
        "labels": ["fenced", "heavy"],
        "state_file": str(tmp_path / "seen.json"),
        "textfile_dir": str(tmp_path / "textfile"),
    }
    path = tmp_path / "forge-metrics.json"
    path.write_text(json.dumps(config))
    return forge, str(path), tmp_path / "textfile" / "foundation-runners-forge.prom"


def test_runners_and_waiting_jobs_per_label(setup):
    forge, config, prom = setup
    forge.add_runner("runner-02", status="idle", labels=("fenced",))
    forge.add_runner("runner-03", status="offline", labels=("fenced",))
    forge.add_runner("heavy-runner-0", status="active", labels=("heavy",))
    forge.jobs = [{"id": 7, "runs_on": ["fenced"], "status": "waiting"}]
    assert main(["--config", config], clock=lambda: 1000) == 0
    forge.jobs.append({"id": 8, "runs_on": ["fenced"], "status": "waiting"})
    assert main(["--config", config], clock=lambda: 1090) == 0
    seen = samples(prom)
    assert seen["foundation_runners_forge_up"] == 1 and seen["foundation_runners_forge_runners_api"] == 1
    assert seen['foundation_runners_forge_runners_online{label="fenced"}'] == 1
    assert seen['foundation_runners_forge_runners_registered{label="fenced"}'] == 2
    assert seen['foundation_runners_forge_runners_online{label="heavy"}'] == 1
    assert seen['foundation_runners_forge_jobs_waiting{label="fenced"}'] == 2
    assert seen['foundation_runners_forge_oldest_waiting_job_age_seconds{label="fenced"}'] == 90
    assert seen['foundation_runners_forge_jobs_waiting{label="heavy"}'] == 0
    forge.jobs = []
    main(["--config", config], clock=lambda: 1100)
    assert samples(prom)['foundation_runners_forge_oldest_waiting_job_age_seconds{label="fenced"}'] == 0


def test_a_forge_before_15_gives_the_jobs_only(setup):
    forge, config, prom = setup
    forge.version = "14.0.2+gitea-1.22.0"
    forge.jobs = [{"id": 1, "runs_on": ["fenced"], "status": "waiting"}]
    assert main(["--config", config], clock=lambda: 50) == 0
    seen = samples(prom)
    assert seen["foundation_runners_forge_runners_api"] == 0
    assert seen['foundation_runners_forge_jobs_waiting{label="fenced"}'] == 1
    assert not any(name.startswith("foundation_runners_forge_runners_online") for name in seen)


def test_a_forge_error_writes_up_0_and_fails(setup, capsys):
    forge, config, prom = setup
    forge.fail_next = [502]
    assert main(["--config", config], clock=lambda: 50) == 1
    seen = samples(prom)
    assert seen["foundation_runners_forge_up"] == 0 and len(seen) == 2  # and the written time
    assert "[502] injected failure" in capsys.readouterr().err


def test_a_bad_configuration_names_the_file(tmp_path, capsys):
    path = tmp_path / "forge-metrics.json"
    path.write_text(json.dumps({"api_url": "http://forge"}))
    assert main(["--config", str(path)]) == 2
    assert f"{path}: missing token_file, state_file, textfile_dir" in capsys.readouterr().err


def test_the_installed_program_runs_without_ansible(tmp_path):
    """The role installs the listed module_utils beside its entry point; the host's Python has no Ansible."""
    missing = str(tmp_path / "missing.json")
    proc = run_installed(tmp_path, "forge_metrics", "__forge_metrics_sources", "forge-metrics.j2", config=missing)
    assert proc.returncode == 2 and "forge-metrics: cannot start:" in proc.stderr, proc.stderr
