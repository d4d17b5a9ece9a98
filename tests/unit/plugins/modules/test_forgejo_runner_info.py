from __future__ import annotations

import pytest
from fake_forgejo import FakeForgejo
from forgejo_cases import COMMON_BAD_INPUT, build_args

from ansible_collections.foundation.runners.plugins.modules.forgejo_runner_info import main


@pytest.fixture
def fleet(forge):
    forge.add_runner("runner-01", "idle")
    forge.add_runner("runner-02", "offline")
    forge.add_runner("heavy-0", "active", labels=("heavy", "docker"))
    forge.add_runner("org-runner", "idle", scope="org:fleet")
    return forge


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["runner-01", "runner-02", "heavy-0"]),
        ({"names": ["runner-*"]}, ["runner-01", "runner-02"]),
        ({"labels": ["heavy", "docker"]}, ["heavy-0"]),
        ({"status": ["idle", "active"]}, ["runner-01", "heavy-0"]),
        ({"scope": "org", "org": "fleet"}, ["org-runner"]),
    ],
)
def test_filters_four_ways(fleet, run_module, filters, expected):
    for check_mode in (True, False, False, True):
        result = run_module(main, build_args(fleet, {}, filters), check_mode=check_mode)
        assert not result["changed"]
        assert [r["name"] for r in result["runners"]] == expected
    assert set(result["runners"][0]) == {
        "id",
        "uuid",
        "name",
        "labels",
        "status",
        "version",
        "ephemeral",
        "description",
    }
    assert not fleet.writes()


def test_gitea_shapes_are_normalised(fleet, run_module):
    from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import normalise_runner

    gitea = {
        "id": 3,
        "name": "g",
        "status": "online",
        "busy": True,
        "labels": [{"id": 1, "name": "x", "type": "custom"}],
    }
    assert normalise_runner(gitea)["status"] == "active" and normalise_runner(gitea)["labels"] == ["x"]


BAD_INPUT = [
    *COMMON_BAD_INPUT,
    ("list_on_v11", {"_version": "11.0.15+gitea-1.22.0"}, "Listing runners needs the runners API of Forgejo 15"),
    ("bad_status", {"status": ["sleeping"]}, "value of status must be one or more of"),
    ("garbled_version", {"_version": "banana"}, "unrecognised server version"),
]


@pytest.mark.parametrize(("overrides", "expected"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input(fleet, run_module, overrides, expected):
    overrides = dict(overrides)
    fleet.version = overrides.pop("_version", fleet.version)
    result = run_module(main, build_args(fleet, overrides, {}))
    assert result.get("failed"), result
    assert expected in result["msg"]
    assert not fleet.writes()


def test_certificate_is_verified_unless_told_otherwise(run_module, self_signed_cert):
    tls = FakeForgejo()
    tls.add_runner("runner-01", "idle")
    tls.serve_tls(str(self_signed_cert))
    tls.start()
    try:
        refused = run_module(main, build_args(tls, {}, {}))
        assert refused["failed"] and "TLS failure" in refused["msg"] and "CERTIFICATE_VERIFY_FAILED" in refused["msg"]
        accepted = run_module(main, build_args(tls, {"validate_certs": False}, {}))
        assert not accepted.get("failed") and [r["name"] for r in accepted["runners"]] == ["runner-01"]
    finally:
        tls.stop()


def test_plain_http_only_when_allowed_by_option_or_environment(forge, run_module, monkeypatch):
    args = build_args(forge, {}, {})
    del args["allow_insecure_http"]
    monkeypatch.delenv("FORGEJO_ALLOW_INSECURE_HTTP", raising=False)
    refused = run_module(main, args)
    assert refused["failed"] and "Use the forge's https:// URL" in refused["msg"] and forge.requests == []
    monkeypatch.setenv("FORGEJO_ALLOW_INSECURE_HTTP", "true")
    assert not run_module(main, args).get("failed")


def test_skip_on_a_forge_without_the_runners_api(fleet, run_module):
    fleet.version = "14.0.2+gitea-1.22.0"
    result = run_module(main, build_args(fleet, {"on_unsupported": "skip"}, {}))
    assert not result.get("failed") and not result["changed"], result
    assert result["supported"] is False and result["runners"] == []
    assert "needs the runners API of Forgejo 15" in result["reason"] and "14.0.2" in result["reason"]
    fleet.version = "15.0.3+gitea-1.22.0"
    listed = run_module(main, build_args(fleet, {"on_unsupported": "skip"}, {}))
    assert listed["supported"] is True and listed["runners"]
