from __future__ import annotations

import re

import pytest
from forgejo_cases import COMMON_BAD_INPUT, READ_ADMIN_TOKEN, build_args

from ansible_collections.foundation.runners.plugins.modules import forgejo_runner_prune

main = forgejo_runner_prune.main


@pytest.fixture
def fleet(forge):
    forge.online_first = True
    forge.add_runner("runner-01", "offline")
    forge.add_runner("runner-02", "idle")
    forge.add_runner("runner-03", "active")
    forge.add_runner("standby", "offline")
    forge.add_runner("other", "offline", labels=("heavy",))
    return forge


def names(forge):
    return sorted(r["name"] for r in forge.runners.values())


def test_prune_four_ways(fleet, run_module):
    args = build_args(fleet, {}, {"labels": ["fenced"], "keep": ["standby"]})
    result = run_module(main, args, check_mode=True, diff=True)
    assert result["changed"] and [r["name"] for r in result["pruned"]] == ["runner-01"]
    assert "1 runner-01 offline" in result["diff"]["before"]["runners"]
    assert "1 runner-01 offline" not in result["diff"]["after"]["runners"]
    assert not fleet.writes()

    result = run_module(main, args, diff=True)
    assert result["changed"] and [r["name"] for r in result["pruned"]] == ["runner-01"]
    assert names(fleet) == ["other", "runner-02", "runner-03", "standby"]
    # the whole scope as listed before pruning, not only the candidates
    assert [r["name"] for r in result["listed"]] == ["runner-01", "runner-02", "runner-03", "standby", "other"]

    result = run_module(main, args)
    assert not result["changed"] and result["pruned"] == []

    result = run_module(main, args, check_mode=True)
    assert not result["changed"] and result["pruned"] == []


def test_never_touches_online_runners(fleet, run_module):
    result = run_module(main, build_args(fleet, {}, {"names": ["runner-*"]}))
    assert [r["name"] for r in result["pruned"]] == ["runner-01"]
    assert sorted(r["name"] for r in result["kept_online"]) == ["runner-02", "runner-03"]
    assert {"runner-02", "runner-03"} <= set(names(fleet))


def test_runner_back_online_between_list_and_delete_is_kept(fleet, run_module):
    original = forgejo_runner_prune.select_runners

    def flip_online(*args, **kwargs):
        selected = original(*args, **kwargs)
        fleet.runners[1]["status"] = "idle"
        return selected

    forgejo_runner_prune.select_runners = flip_online
    try:
        result = run_module(main, build_args(fleet, {}, {"names": ["runner-01"]}))
    finally:
        forgejo_runner_prune.select_runners = original
    assert not result["changed"] and [r["name"] for r in result["kept_online"]] == ["runner-01"]
    assert "runner-01" in names(fleet)


def test_keep_by_id_and_uuid(fleet, run_module):
    keep = ["1", fleet.runners[4]["uuid"]]
    result = run_module(main, build_args(fleet, {}, {"keep": keep}))
    assert [r["name"] for r in result["pruned"]] == ["other"]


def test_pagination(forge, run_module):
    for index in range(120):
        forge.add_runner(f"old-{index:03d}")
    result = run_module(main, build_args(forge, {}, {"max_deletions": 200}), check_mode=True)
    assert len(result["pruned"]) == 120


def old_fleet(forge, count):
    forge.online_first = True
    for index in range(count):
        forge.add_runner(f"old-{index:03d}")
    return build_args(forge, {}, {"max_deletions": count})


def deletes(forge):
    return [path for method, path in forge.writes() if method == "DELETE"]


def test_many_runners_over_few_reused_connections(forge, run_module):
    args = old_fleet(forge, 250)
    result = run_module(main, {**args, "parallelism": 4})
    assert len(result["pruned"]) == 250 and not forge.runners
    assert [r["id"] for r in result["pruned"]] == sorted(r["id"] for r in result["pruned"])
    assert forge.connections <= 5, f"{forge.connections} connections for {len(forge.requests)} requests"
    listings = [path for method, path in forge.requests if method == "GET" and path.endswith("/runners")]
    assert len(listings) == 5 + 3, "one listing of 5 pages, then one status read per 100 deletions"


def test_runner_back_online_mid_run_is_kept(forge, run_module):
    args = old_fleet(forge, 250)

    def back_online():
        forge.runners[240]["status"] = "idle"

    forge.on_request = [lambda: None] * 60 + [back_online]  # during the first 100 deletions
    result = run_module(main, args)
    assert [(r["id"], r["status"]) for r in result["kept_online"]] == [(240, "idle")]
    assert len(result["pruned"]) == 249 and list(forge.runners) == [240]


def test_without_online_first_listing_each_runner_is_read_before_its_delete(fleet, run_module):
    fleet.online_first = False  # runner-01 (offline) is listed before runner-02 (idle)
    # standby comes online right after the listing, before any runner's own read (the reads run concurrently).
    fleet.on_request = [lambda: None] * 2 + [lambda: fleet.runners[4].update(status="idle")]
    result = run_module(main, build_args(fleet, {}, {"labels": ["fenced"]}))
    assert fleet.requests[1] == ("GET", "/admin/actions/runners"), fleet.requests
    assert [r["name"] for r in result["pruned"]] == ["runner-01"]
    assert [(r["name"], r["status"]) for r in result["kept_online"]] == [
        ("runner-02", "idle"),
        ("runner-03", "active"),
        ("standby", "idle"),
    ]
    assert ("GET", "/admin/actions/runners/1") in fleet.requests


def test_delete_retried_after_429_and_runner_deleted_by_someone_else(forge, run_module):
    args = old_fleet(forge, 3)
    forge.on_request = [lambda: None] * 2 + [lambda: forge.runners.pop(2)]  # gone after the listing
    forge.fail_next = []
    forge.on_request += [lambda: forge.fail_next.append(429)]
    result = run_module(main, {**args, "parallelism": 1})
    assert [r["id"] for r in result["pruned"]] == [1, 3] and [r["id"] for r in result["already_gone"]] == [2]
    assert not forge.runners


def test_failure_mid_run_reports_what_was_deleted(forge, run_module):
    args = old_fleet(forge, 150)
    forge.on_request = [lambda: None] * 120 + [lambda: forge.fail_next.append(500)]
    result = run_module(main, {**args, "parallelism": 1, "retries": 0})
    assert result["failed"] and "[500] injected failure" in result["msg"]
    assert result["changed"] and f"{len(result['pruned'])} of 150 runners were deleted" in result["msg"]
    assert len(result["pruned"]) == len(deletes(forge)) == 150 - len(forge.runners)


def test_long_runs_log_progress(forge, run_module, monkeypatch):
    from ansible.module_utils.basic import AnsibleModule

    from ansible_collections.foundation.runners.plugins.module_utils import _forgejo_prune

    logged = []
    monkeypatch.setattr(_forgejo_prune, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))
    run_module(main, old_fleet(forge, 150))
    counts = [int(m[1]) for m in map(re.compile(r"pruned (\d+) of 150 runners in instance in 0 s").match, logged) if m]
    assert len(counts) == 150 and counts == sorted(counts), "one line per DELETE sent when the interval is 0"


BAD_INPUT = [
    *COMMON_BAD_INPUT,
    ("no_parallelism", {"parallelism": 0}, "parallelism must be from 1 to 16, got 0"),
    ("too_parallel", {"parallelism": 17}, "parallelism must be from 1 to 16, got 17"),
    ("max_deletions_exceeded", {"max_deletions": 1}, "more than max_deletions=1; nothing was deleted"),
    ("status_idle", {"status": ["offline", "idle"]}, "status may only select offline runners"),
    ("negative_cap", {"max_deletions": -1}, "max_deletions must be 0 or more"),
    (
        "read_only_token",
        {"api_token": READ_ADMIN_TOKEN},
        "[403] token does not have at least one of required scope(s): [write:admin]",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_changes_nothing(fleet, run_module, overrides, expected):
    before = names(fleet)
    result = run_module(main, build_args(fleet, overrides, {}))
    assert result.get("failed"), result
    assert expected in result["msg"]
    assert names(fleet) == before


@pytest.mark.parametrize("version", ["11.0.15+gitea-1.22.0", "14.0.2+gitea-1.22.0"])
def test_older_forgejo_is_refused_with_the_cron_alternative(version, fleet, run_module):
    fleet.version = version
    result = run_module(main, build_args(fleet, {}, {}))
    assert result["failed"] and "Forgejo 15 or later" in result["msg"] and "cleanup_offline_runners" in result["msg"]
    assert not fleet.writes()


def test_skip_on_a_forge_without_the_runners_api(fleet, run_module):
    fleet.version = "14.0.2+gitea-1.22.0"
    result = run_module(main, build_args(fleet, {"on_unsupported": "skip"}, {}))
    assert not result.get("failed") and not result["changed"], result
    assert result["supported"] is False and result["pruned"] == [] and "Forgejo 15" in result["reason"]
    assert not fleet.writes()
