from __future__ import annotations

import pytest
from fake_forgejo import ADMIN_LOGIN

from ansible_collections.foundation.runners.plugins.modules.forgejo_access_token import main


def login(forge, **extra):
    user, password = ADMIN_LOGIN
    return {"api_url": forge.url, "api_username": user, "api_password": password, "allow_insecure_http": True, **extra}


def test_created_once_then_kept_without_its_value(forge, run_module):
    args = login(forge, name="foundation-runners", scopes=["write:admin", "read:admin"])

    planned = run_module(main, args, check_mode=True, diff=True)
    assert planned["changed"] and planned["created"] and "token" not in planned and not forge.writes()
    assert planned["diff"] == {"before": {}, "after": {"name": "foundation-runners", "scopes": ["write:admin"]}}

    made = run_module(main, args)
    stored = next(iter(forge.access_tokens.values()))
    assert made["changed"] and made["token"] == stored["sha1"]
    assert made["access_token"] == {
        "id": stored["id"], "name": "foundation-runners", "scopes": ["write:admin"],
        "token_last_eight": stored["sha1"][-8:],
    }  # fmt: skip

    for check_mode in (False, True):
        again = run_module(main, args, check_mode=check_mode)
        assert not again["changed"] and "token" not in again and again["access_token"]["id"] == stored["id"]
    assert len(forge.writes()) == 1


def test_rotate_replaces_the_value(forge, run_module):
    args = login(forge, name="watchdog", scopes=["read:admin"])
    first = run_module(main, args)["token"]
    rotated = run_module(main, {**args, "rotate": True})
    assert rotated["changed"] and rotated["token"] and rotated["token"] != first
    assert [t["sha1"] for t in forge.access_tokens.values()] == [rotated["token"]]


def test_other_scopes_fail_naming_both_and_change_nothing(forge, run_module):
    run_module(main, login(forge, name="runners", scopes=["read:admin"]))
    writes = forge.writes()
    result = run_module(main, login(forge, name="runners", scopes=["write:admin"]))
    assert result["failed"] and "exists with scopes read:admin, not write:admin" in result["msg"]
    assert "rotate=true" in result["msg"] and forge.writes() == writes


def test_absent_revokes(forge, run_module):
    run_module(main, login(forge, name="old", scopes=["read:admin"]))
    assert run_module(main, login(forge, name="old", state="absent"), check_mode=True)["changed"]
    assert forge.access_tokens
    assert run_module(main, login(forge, name="old", state="absent"))["changed"]
    assert not forge.access_tokens
    assert not run_module(main, login(forge, name="old", state="absent"))["changed"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"api_password": "wrong"}, "[401]"),
        ({"scopes": []}, "scopes must name at least one scope"),
        ({"scopes": [" "]}, "scopes must name at least one scope"),
        ({"name": " "}, "name must not be empty"),
        ({"state": "absent", "rotate": True}, "apply to state=present only"),
        ({"api_token": "a-token"}, "Unsupported parameters"),
        ({"api_url": "http://127.0.0.1:9", "retries": 0}, "cannot connect"),
        ({"allow_insecure_http": False}, "is plain http"),
    ],
    ids=["bad-password", "no-scopes", "blank-scope", "blank-name", "rotate-absent", "token-given", "unreachable",
         "plain-http"],
)  # fmt: skip
def test_bad_input_fails_clearly_and_changes_nothing(forge, run_module, overrides, expected):
    result = run_module(main, login(forge, name="runners", scopes=["write:admin"]) | overrides)
    assert result["failed"] and expected in result["msg"], result
    assert not forge.writes() and "admin-password" not in str(result)
