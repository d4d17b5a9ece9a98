from __future__ import annotations

import pytest
from forgejo_cases import COMMON_BAD_INPUT, READ_ADMIN_TOKEN, build_args

from ansible_collections.foundation.runners.plugins.modules import forgejo_runner_prune

main = forgejo_runner_prune.main


@pytest.fixture
def fleet(forge):
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


BAD_INPUT = [
    *COMMON_BAD_INPUT,
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
