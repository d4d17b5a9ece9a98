"""The collection on a forge older than Forgejo 15, and across the upgrade.

tests/lab/forge-profile puts a proxy in front of the lab's Gitea that reports Forgejo 14.0.2 and answers the
runner endpoints as Forgejo 11 to 14 do (registration token yes; list, get, delete, register no). Switching the
profile off is the upgrade: the same URL then has the runners API. Forgejo itself cannot be built here (the Go
module proxy refuses forgejo.org), so this is its API surface as the v11 spec describes it, not Forgejo's code.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from lablib.ansible import Ansible
from lablib.shell import LAB, ROOT, lab_env

PROFILE = str(LAB / "forge-profile")
STALE = "fj14-stale"


@pytest.fixture(scope="module")
def profile(lab, tmp_path_factory):
    if not lab.get("FORGE_GITEA_URL"):
        pytest.skip("the lab's Gitea is not running")
    subprocess.run([PROFILE, "up"], check=True, capture_output=True)
    subprocess.run([PROFILE, "set", "14"], check=True, capture_output=True)
    env = {**lab, **lab_env([PROFILE, "env"])}
    inventory = tmp_path_factory.mktemp("fj14") / "hosts.json"
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(ROOT / ".venv" / "bin" / "python"),
        "forge_api_url": env["FORGE_PROFILE_URL"],
        "forge_allow_insecure_http": True,
        "forge_admin_token": env["FORGE_GITEA_TOKEN_WRITE_ADMIN"],
        "forge_prune_names": [STALE],
    }
    inventory.write_text(json.dumps({"all": {"children": {"forges": {"hosts": {"fj14-forge": host}}}}}))
    inventory.chmod(0o600)
    env["INVENTORY"] = str(inventory)
    yield env
    _delete_named(env, STALE)
    subprocess.run([PROFILE, "set", "14"], check=False, capture_output=True)
    subprocess.run([PROFILE, "down"], check=False, capture_output=True)


def _gitea(env, method: str, path: str) -> requests.Response:
    headers = {"Authorization": f"token {env['FORGE_GITEA_TOKEN_WRITE_ADMIN']}"}
    return requests.request(method, f"{env['FORGE_GITEA_URL']}/api/v1{path}", headers=headers, timeout=30)


def _named(env, name: str) -> list[dict]:
    body = _gitea(env, "GET", "/admin/actions/runners?limit=50").json()
    return [r for r in (body["runners"] if isinstance(body, dict) else body) if r["name"] == name]


def _delete_named(env, name: str) -> None:
    for runner in _named(env, name):
        _gitea(env, "DELETE", f"/admin/actions/runners/{runner['id']}")


def forge_yml(env) -> subprocess.CompletedProcess:
    command = [
        str(ROOT / ".venv" / "bin" / "ansible-playbook"),
        "-i",
        env["INVENTORY"],
        str(ROOT / "playbooks" / "forge.yml"),
    ]
    run_env = {**Ansible().env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
    return subprocess.run(command, capture_output=True, text=True, env=run_env, check=False, timeout=600)


def test_the_modules_on_forgejo_14(profile):
    ansible = Ansible()
    base = {"api_url": profile["FORGE_PROFILE_URL"], "api_token": profile["FORGE_GITEA_TOKEN_WRITE_ADMIN"]}
    refused = ansible("forgejo_runner_info", base)
    assert refused.get("failed") and "needs the runners API of Forgejo 15" in refused["msg"], refused
    assert "14.0.2" in refused["msg"]
    skipped = ansible("forgejo_runner_info", {**base, "on_unsupported": "skip"})
    assert skipped["supported"] is False and skipped["runners"] == [] and not skipped.get("failed")
    minted = ansible("forgejo_runner_token", base)
    assert not minted.get("failed") and minted["token"], minted.get("msg")
    _delete_named(profile, STALE)
    # auto registers by the runner protocol's Register call on a forge without the register API
    registered = ansible("forgejo_runner_token", {**base, "runner_name": STALE, "labels": ["fenced"]})
    assert not registered.get("failed") and registered["runner"]["created"], registered.get("msg")
    assert [r["id"] for r in _named(profile, STALE)] == [registered["runner"]["id"]]
    print(f"Forgejo 14 profile: list refused ({refused['msg'][:80]}...), token minted, {STALE} registered")


def test_forge_yml_says_what_it_cannot_do_then_prunes_after_the_upgrade(profile):
    before = _named(profile, STALE)
    assert len(before) == 1, "the previous test registers it"
    old = forge_yml(profile)
    assert old.returncode == 0, old.stdout[-4000:]
    lines = [line for line in old.stdout.splitlines() if "prune: not possible without the runners list API" in line]
    assert len(lines) == 1 and "upgrade to Forgejo 15 to prune fj14-stale" in lines[0], old.stdout[-3000:]
    assert _named(profile, STALE) == before, "a record was touched before the upgrade"
    subprocess.run([PROFILE, "set", "off"], check=True, capture_output=True)
    upgraded = forge_yml(profile)
    assert upgraded.returncode == 0, upgraded.stdout[-4000:]
    assert _named(profile, STALE) == [], upgraded.stdout[-3000:]
    again = forge_yml(profile)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    print(f"upgrade: {STALE} (id {before[0]['id']}) pruned on the first run after it; the next run changed=0")
