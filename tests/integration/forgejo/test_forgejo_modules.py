"""The forgejo_* modules against the real lab forges and lab runner processes."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from forgejo_lab import OFFLINE_WAIT
from lablib.shell import wait_until

PLAYBOOKS = Path(__file__).parent / "playbooks"


def scope_cases(forge):
    return {
        "instance": forge.args("write_admin"),
        "org": forge.args("org", scope="org", org=forge.org),
        "user": forge.args("owner", scope="user"),
        "repo": forge.args("owner", scope="repo", repo=forge.repo),
    }


@pytest.mark.parametrize("scope", ["instance", "org", "user", "repo"])
def test_registration_token_four_ways(forge, ansible, scope):
    args = scope_cases(forge)[scope]
    tokens = set()
    for check in (True, False, False, True):
        result = ansible("forgejo_runner_token", args, check=check)
        assert not result.get("failed"), result["msg"]
        assert not result["changed"] and len(result["token"]) >= 20
        tokens.add(result["token"])
    assert len(tokens) == 1


def runner_names(forge, ansible, **filters):
    result = ansible("forgejo_runner_info", forge.args("read_admin", **filters))
    assert not result.get("failed"), result["msg"]
    return {r["name"]: r for r in result["runners"]}


def test_runner_lifecycle(forge, ansible, runners):
    """Mint a token, register two runners, stop one, see it offline, prune it; the other is never touched."""
    minted = ansible("forgejo_runner_token", forge.args("write_admin"))
    run = f"lc-{forge.flavour}-{secrets.token_hex(3)}"  # earlier runs leave registrations of their own
    doomed, survivor = f"{run}-doomed", f"{run}-survivor"
    runners.start(doomed, forge.flavour, minted["token"], labels="lifecycle")
    runners.start(survivor, forge.flavour, minted["token"], labels="lifecycle")
    if not forge.has_runner_api:
        refused = ansible("forgejo_runner_info", forge.args("read_admin"))
        assert refused["failed"] and "Forgejo 15 or later" in refused["msg"]
        pytest.skip(f"{forge.version} registers runners with the minted token but has no runners API to go further")

    def both_idle():
        seen = runner_names(forge, ansible, names=[f"{run}-*"])
        return {doomed, survivor} <= set(seen) and {seen[doomed]["status"], seen[survivor]["status"]} == {"idle"}

    wait_until(both_idle, 60, step=5.0, what="both runners idle")
    runners.stop(doomed)
    print(f"waiting up to {OFFLINE_WAIT} s for the forge to mark {doomed} offline (60 s threshold)")
    wait_until(
        lambda: runner_names(forge, ansible)[doomed]["status"] == "offline",
        OFFLINE_WAIT,
        step=5.0,
        what=f"{doomed} offline",
    )

    prune = forge.args("write_admin", names=[f"{run}-*"], labels=["lifecycle"])
    result = ansible("forgejo_runner_prune", prune, check=True, diff=True)
    assert result["changed"] and [r["name"] for r in result["pruned"]] == [doomed]
    assert doomed in runner_names(forge, ansible), "check mode deleted a runner"

    result = ansible("forgejo_runner_prune", prune, diff=True)
    assert result["changed"] and [r["name"] for r in result["pruned"]] == [doomed]
    assert [r["name"] for r in result["kept_online"]] == [survivor]

    for check in (False, True):
        result = ansible("forgejo_runner_prune", prune, check=check)
        assert not result["changed"] and result["pruned"] == []

    remaining = runner_names(forge, ansible, names=[f"{run}-*"])
    assert doomed not in remaining and remaining[survivor]["status"] == "idle"


def bad_input_cases(forge):
    host, owner = forge.url.removeprefix("http://"), forge.tokens["owner"]
    cases = {
        "unreachable": ("forgejo_runner_token", {"api_url": "http://198.51.100.10:9", "retries": 0}, "cannot connect"),
        "tls_failure": ("forgejo_runner_token", {"api_url": f"https://{host}"}, "TLS failure"),
        "bad_token": ("forgejo_runner_token", {"api_token": "0" * 40}, "[401]"),
        "missing_scope": ("forgejo_runner_token", {"api_token": forge.tokens["user"]}, "[403]"),
        "user_token_on_org": (
            "forgejo_runner_token",
            {"api_token": forge.tokens["user"], "scope": "org", "org": forge.org},
            "[403]",
        ),
        "unknown_org": ("forgejo_runner_token", {"api_token": owner, "scope": "org", "org": "no-such-org"}, "[404]"),
        "unknown_repo": (
            "forgejo_runner_token",
            {"api_token": owner, "scope": "repo", "repo": f"{forge.org}/nope"},
            "[404]",
        ),
        "unknown_owner": (
            "forgejo_runner_token",
            {"api_token": owner, "scope": "repo", "repo": "no-such-owner/ci"},
            "[404]",
        ),
        "max_deletions": ("forgejo_runner_prune", {"max_deletions": -1}, "max_deletions must be 0 or more"),
        "conflicting_scope": ("forgejo_runner_token", {"org": forge.org}, "org is only used with scope=org"),
    }
    if forge.has_runner_api:
        cases["unknown_org_list"] = (
            "forgejo_runner_info",
            {"api_token": owner, "scope": "org", "org": "nope"},
            "[404]",
        )
    else:
        cases["prune_needs_v15"] = ("forgejo_runner_prune", {}, "cleanup_offline_runners")
        cases["info_needs_v15"] = ("forgejo_runner_info", {}, "Forgejo 15 or later")
        cases["register_needs_v15"] = ("forgejo_runner_token", {"runner_name": "x"}, "Forgejo 15 or later")
    return cases


CASE_NAMES = [
    "unreachable", "tls_failure", "bad_token", "missing_scope", "user_token_on_org", "unknown_org", "unknown_repo",
    "unknown_owner", "max_deletions", "conflicting_scope", "unknown_org_list", "prune_needs_v15", "info_needs_v15",
    "register_needs_v15",
]  # fmt: skip


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_is_refused_clearly(forge, ansible, case):
    cases = bad_input_cases(forge)
    if case not in cases:
        pytest.skip(f"not applicable to {forge.version}")
    module, overrides, expected = cases[case]
    result = ansible(module, {**forge.args("write_admin"), **overrides})
    assert result.get("failed"), result
    assert expected in result["msg"], result["msg"]
    assert forge.tokens["write_admin"] not in json.dumps(result)


def test_secrets_never_appear_at_vvv(forge, ansible, runners, lab):
    """A whole mint-register-list-prune play at -vvv prints no admin, registration or runner token."""
    extra = {
        "forge_url": forge.url,
        "admin_token": forge.tokens["write_admin"],
        "flavour": forge.flavour,
        "has_runner_api": forge.has_runner_api,
        "lab_forge": str(Path(__file__).parents[2] / "lab" / "forge"),
    }
    runners.names.append(f"vvv-{forge.flavour}")
    proc = ansible.playbook(PLAYBOOKS / "lifecycle.yml", extra, "-vvv")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    registration = ansible("forgejo_runner_token", forge.args("write_admin"))["token"]
    state = Path(f"/var/lib/frlab/forge/runners/vvv-{forge.flavour}/state.json")
    runner_token = json.loads(state.read_text())["token"] if state.exists() else None
    secrets = {"admin token": forge.tokens["write_admin"], "registration token": registration}
    if runner_token:
        secrets["runner token"] = runner_token
    for what, secret in secrets.items():
        assert secret not in output, f"the {what} appears in the -vvv output"
    assert "no_log: true" in output or "censored" in output
