from __future__ import annotations

import pytest
from fake_forgejo import REGISTRATION_TOKEN
from forgejo_cases import COMMON_BAD_INPUT, READ_ADMIN_TOKEN, build_args

from ansible_collections.foundation.runners.plugins.modules.forgejo_runner_token import main


@pytest.mark.parametrize(
    "scope_args",
    [{}, {"scope": "org", "org": "fleet"}, {"scope": "user"}, {"scope": "repo", "repo": "fleet/ci"}],
    ids=["instance", "org", "user", "repo"],
)
@pytest.mark.parametrize("version", ["15.0.3+gitea-1.22.0", "11.0.15+gitea-1.22.0", "1.27.3"])
def test_registration_token_four_ways(forge, run_module, scope_args, version):
    forge.version = version
    args = build_args(forge, {}, scope_args)
    for check_mode in (True, False, False, True):
        result = run_module(main, args, check_mode=check_mode)
        assert not result["changed"] and result["token"] == REGISTRATION_TOKEN
    assert not forge.writes()


def test_register_runner_four_ways(forge, run_module):
    forge.add_runner("runner-01", "idle")
    args = build_args(forge, {}, {"runner_name": "runner-02", "description": "fenced VM"})

    result = run_module(main, args, check_mode=True, diff=True)
    assert result["changed"] and result["runner"]["created"] and result["runner"]["token"] is None
    assert result["diff"]["after"]["runners"] == ["runner-01", "runner-02"]
    assert not forge.writes()

    result = run_module(main, args)
    assert result["changed"] and result["runner"]["token"] == "runner-secret-token" and result["runner"]["uuid"]
    assert sorted(r["name"] for r in forge.runners.values()) == ["runner-01", "runner-02"]

    result = run_module(main, args)
    assert not result["changed"] and not result["runner"]["created"] and result["runner"]["token"] is None
    assert len(forge.writes()) == 1

    result = run_module(main, args, check_mode=True)
    assert not result["changed"] and result["runner"]["id"] == 2


def test_register_duplicate_names_warns_and_reports_oldest(forge, run_module):
    forge.add_runner("twin")
    forge.add_runner("twin")
    result = run_module(main, build_args(forge, {}, {"runner_name": "twin"}))
    assert not result["changed"] and result["runner"]["id"] == 1
    assert "2 runners are named twin" in str(result["warnings"])


@pytest.mark.parametrize("version", ["11.0.15+gitea-1.22.0", "14.0.2+gitea-1.22.0", "1.27.3"])
def test_register_by_protocol_where_there_is_no_register_api(forge, run_module, version):
    forge.version = version
    args = build_args(forge, {}, {"runner_name": "runner-02", "labels": ["fenced"], "runner_version": "v12.10.2"})

    result = run_module(main, args, check_mode=True)
    assert result["changed"] and result["runner"]["registration"] == "protocol" and not forge.writes()

    result = run_module(main, args)
    runner = result["runner"]
    assert result["changed"] and runner["created"] and runner["registration"] == "protocol"
    assert runner["token"] == "runner-secret-token" and runner["id"] == 1 and runner["uuid"]
    assert forge.writes() == [("POST", "/api/actions/runner.v1.RunnerService/Register")]
    assert forge.runners[1]["labels"] == ["fenced"]
    assert REGISTRATION_TOKEN not in str(result)

    if version.startswith("1."):  # Gitea lists runners: a second call finds the first
        assert not run_module(main, args)["changed"] and len(forge.writes()) == 1


def test_protocol_register_names_the_request_on_failure(forge, run_module):
    forge.version = "11.0.15+gitea-1.22.0"
    forge.registration_token_reset = True
    result = run_module(main, build_args(forge, {}, {"runner_name": "r", "registration": "protocol"}))
    assert result["failed"] and "POST" in result["msg"] and "RunnerService/Register" in result["msg"]
    assert "[401] runner registration token not found" in result["msg"] and not forge.runners


BAD_INPUT = [
    *COMMON_BAD_INPUT,
    (
        "register_on_v11",
        {"runner_name": "r", "registration": "api", "_version": "11.0.15+gitea-1.22.0"},
        "needs the runners API of Forgejo 15",
    ),
    (
        "register_on_gitea",
        {"runner_name": "r", "registration": "api", "_version": "1.27.3"},
        "Registering a runner through the API is Forgejo's",
    ),
    (
        "ephemeral_by_protocol",
        {"runner_name": "r", "ephemeral": True, "_version": "11.0.15+gitea-1.22.0"},
        "ephemeral needs the register API",
    ),
    ("description_without_name", {"description": "x"}, "description and ephemeral apply only to a registration"),
    ("empty_runner_name", {"runner_name": " "}, "runner_name must not be empty"),
    ("read_only_register", {"runner_name": "r", "api_token": READ_ADMIN_TOKEN}, "[403]"),
]


@pytest.mark.parametrize(("overrides", "expected"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_changes_nothing(forge, run_module, overrides, expected):
    overrides = dict(overrides)
    forge.version = overrides.pop("_version", forge.version)
    base = {} if "runner_name" in overrides or overrides.get("scope") else {"runner_name": "new-runner"}
    if overrides.keys() & {"description"} or overrides.get("runner_name") is not None:
        base = {}
    result = run_module(main, build_args(forge, overrides, base))
    assert result.get("failed"), result
    assert expected in result["msg"]
    assert not forge.writes() and not forge.runners
