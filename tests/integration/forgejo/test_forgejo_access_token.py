"""forgejo_access_token against the lab forges: a scoped token derived from the admin's password, kept, rotated
and revoked; its value never printed, even at -vvv on a task without no_log."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

import pytest


def login(forge, lab, **extra) -> dict:
    key = forge.flavour.upper()
    if not lab.get(f"FORGE_{key}_ADMIN_PASSWORD"):
        pytest.skip(f"the lab {forge.flavour} exports no admin password")
    user, password = lab[f"FORGE_{key}_ADMIN_USER"], lab[f"FORGE_{key}_ADMIN_PASSWORD"]
    return {"api_url": forge.url, "api_username": user, "api_password": password, **extra}


def lists_runners(forge, ansible, token: str) -> bool:
    result = ansible("forgejo_runner_info", {"api_url": forge.url, "api_token": token})
    return not result.get("failed")


def test_derived_once_kept_rotated_revoked(forge, ansible, lab):
    name = f"at-{forge.flavour}-{secrets.token_hex(3)}"
    args = login(forge, lab, name=name, scopes=["read:admin"])

    planned = ansible("forgejo_access_token", args, check=True, diff=True)
    assert planned["changed"] and planned["created"] and "token" not in planned, planned
    assert ansible("forgejo_access_token", {**args, "state": "absent", "scopes": None}, check=True)["changed"] is False

    made = ansible("forgejo_access_token", args)
    assert made["changed"] and len(made["token"]) >= 40, made
    assert made["access_token"]["scopes"] == ["read:admin"]
    assert lists_runners(forge, ansible, made["token"])

    kept = ansible("forgejo_access_token", args)
    assert not kept["changed"] and "token" not in kept and kept["access_token"]["id"] == made["access_token"]["id"]

    wider = ansible("forgejo_access_token", {**args, "scopes": ["write:admin"]})
    assert wider.get("failed") and "exists with scopes read:admin, not write:admin" in wider["msg"], wider

    rotated = ansible("forgejo_access_token", {**args, "rotate": True})
    assert rotated["changed"] and rotated["token"] != made["token"]
    assert lists_runners(forge, ansible, rotated["token"]) and not lists_runners(forge, ansible, made["token"])

    gone = ansible("forgejo_access_token", {**args, "state": "absent", "scopes": None})
    assert gone["changed"] and not lists_runners(forge, ansible, rotated["token"])
    print(f"{forge.flavour} {forge.version}: {name} created, kept, rotated (old value refused), revoked")


def test_a_wrong_password_is_refused_and_nothing_is_made(forge, ansible, lab):
    args = login(forge, lab, name=f"at-bad-{secrets.token_hex(3)}", scopes=["read:admin"])
    result = ansible("forgejo_access_token", {**args, "api_password": "not-the-password"})
    assert result.get("failed") and "[401]" in result["msg"], result
    assert "/users/" in result["msg"] and "not-the-password" not in json.dumps(result)
    assert not ansible("forgejo_access_token", {**args, "state": "absent", "scopes": None})["changed"]


def test_the_value_never_appears_at_vvv(forge, ansible, lab):
    """A task without no_log, at -vvv: the result carries the token, and no output shows it."""
    name = f"at-vvv-{forge.flavour}-{secrets.token_hex(3)}"
    args = login(forge, lab, name=name, scopes=["read:admin"])
    with tempfile.TemporaryDirectory() as scratch:
        kept = Path(scratch) / "result.json"
        play = Path(scratch) / "play.yml"
        tasks = [
            {"foundation.runners.forgejo_access_token": args, "register": "made"},
            {"ansible.builtin.copy": {"content": "{{ made | to_json }}", "dest": str(kept), "mode": "0600"},
             "no_log": True},
        ]  # fmt: skip
        play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
        proc = ansible.playbook(play, {}, "-vvv")
        assert proc.returncode == 0, proc.stdout[-3000:]
        token = json.loads(kept.read_text())["token"]
    output = proc.stdout + proc.stderr
    assert token not in output and args["api_password"] not in output
    ansible("forgejo_access_token", {**args, "state": "absent", "scopes": None})
