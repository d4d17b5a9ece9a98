"""The production inventory's secrets path against a real HashiCorp Vault (tests/lab/vault, the server built
from its Go module) and the lab Gitea: forge_tokens.yml reads the admin password from Vault with the
playbooks' AppRole, derives the two scoped tokens and stores them back; forge.yml then reads its token from
Vault. The test process itself holds no forge token and no Vault login in its environment."""

from __future__ import annotations

import json
import os
import subprocess
from types import SimpleNamespace

import pytest
from lablib.shell import LAB, ROOT, lab_env, vault_secret

PRODUCTION = ROOT / "inventory" / "production"
PATHS = {"foundation-runners": "admin-token", "foundation-runners-watchdog": "watchdog-token"}


@pytest.fixture(scope="module")
def lab() -> dict[str, str]:
    subprocess.run([str(LAB / "forge"), "up"], capture_output=True, text=True, check=True, timeout=1800)
    return lab_env([str(LAB / "forge"), "env"])


@pytest.fixture(scope="module")
def forge(lab) -> SimpleNamespace:
    return SimpleNamespace(url=lab["FORGE_GITEA_URL"], version=lab["FORGE_GITEA_VERSION"])


@pytest.fixture(scope="module")
def vault(lab):
    proc = subprocess.run([str(LAB / "vault"), "up"], capture_output=True, text=True, check=False, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The playbooks' login, as make lab and the site tests get it: VAULT_ADDR and the AppRole's ids.
    return lab_env([str(LAB / "vault"), "login-env"])


def stored(name: str) -> dict:
    """A derived token's secret, read with the root token (the test's own look; the playbooks use the AppRole)."""
    return vault_secret(f"forgejo/foundation-runners/{PATHS[name]}")


def production_play(ansible, vault, lab, playbook: str, *options: str) -> subprocess.CompletedProcess:
    """A playbook with the production inventory, pointed at the lab forge; Vault's AppRole login only in the
    playbook's environment."""
    extra = {
        "forge_api_url": lab["FORGE_GITEA_URL"],
        "forge_admin_username": lab["FORGE_GITEA_ADMIN_USER"],
        "forge_allow_insecure_http": True,
        "forge_prune_names": ["vault-lab-nothing-*"],
    }
    env = {
        **ansible.env,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        **vault,
    }
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(PRODUCTION), "-l", "forge"]
    command += [str(ROOT / "playbooks" / playbook), "-e", json.dumps(extra), *options]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=ROOT)


def test_tokens_derived_from_the_password_in_vault_and_read_back(forge, ansible, lab, vault):
    assert not any("TOKEN" in k and "VAULT" in k for k in os.environ), "a Vault login in the test's environment"

    first = production_play(ansible, vault, lab, "forge_tokens.yml", "-vvv")
    assert first.returncode == 0, first.stdout[-4000:]
    admin, watchdog = stored("foundation-runners"), stored("foundation-runners-watchdog")
    assert admin["scopes"] == "write:admin" and watchdog["scopes"] == "read:admin"
    output = first.stdout + first.stderr
    for secret in (admin["token"], watchdog["token"], vault["ANSIBLE_HASHI_VAULT_SECRET_ID"]):
        assert secret not in output, "a secret appears in the -vvv output"
    assert lab["FORGE_GITEA_ADMIN_PASSWORD"] not in output

    # The derived tokens do what their scopes say, and no more.
    minted = ansible("forgejo_runner_token", {"api_url": forge.url, "api_token": admin["token"]})
    assert not minted.get("failed"), minted
    listed = ansible("forgejo_runner_info", {"api_url": forge.url, "api_token": watchdog["token"]})
    assert not listed.get("failed"), listed
    refused = ansible("forgejo_runner_token", {"api_url": forge.url, "api_token": watchdog["token"]})
    assert refused.get("failed") and "[403]" in refused["msg"], refused

    again = production_play(ansible, vault, lab, "forge_tokens.yml")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    assert stored("foundation-runners")["token"] == admin["token"]

    # forge.yml as the operator runs it: its token read from Vault through the inventory's lookup.
    check = production_play(ansible, vault, lab, "forge.yml", "--check")
    assert check.returncode == 0, check.stdout[-3000:]

    rotated = production_play(ansible, vault, lab, "forge_tokens.yml", "-e", "forge_tokens_rotate=true")
    assert rotated.returncode == 0, rotated.stdout[-3000:]
    new = stored("foundation-runners")["token"]
    assert new != admin["token"]
    assert ansible("forgejo_runner_token", {"api_url": forge.url, "api_token": admin["token"]}).get("failed")
    print(
        "forge_tokens.yml: two tokens from the password in Vault, stored, kept on a re-run, rotated (the old value "
        "refused); forge.yml --check read its token from Vault"
    )
