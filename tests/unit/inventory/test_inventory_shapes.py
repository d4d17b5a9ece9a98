"""inventory/replica reproduces inventory/production in the lab: the same groups and hosts, and every variable the
production inventory sets is set in the replica too. The replica may add only what the lab alone needs, which it
keeps in its lab.yml files (and the few names listed here), so a variable added to one inventory and forgotten in
the other fails here, before the day-one replica test spends its lab time on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
REPLICA = ROOT / "inventory" / "replica"
# Lab values that inventory/production leaves to the roles' defaults.
LAB_ONLY = {
    "forge_allow_insecure_http",  # the lab forge is plain http in its own namespace
    "k3s_heavy_runner_node_selector",  # the lab cluster has three kwok nodes; production's k3s has one
}


def inventory(name: str) -> dict:
    """`ansible-inventory --list` of an inventory: groups with their hosts, and each host's variables, untemplated."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "tests" / "ansible.cfg")}
    command = [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(ROOT / "inventory" / name), "--list"]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout)


def lab_only() -> set[str]:
    names = set(LAB_ONLY)
    for path in REPLICA.glob("group_vars/*/lab.yml"):
        names |= set(yaml.safe_load(path.read_text()))
    return names


def groups(listing: dict) -> dict[str, list[str]]:
    return {k: sorted(v.get("hosts", [])) for k, v in listing.items() if k != "_meta" and v.get("hosts")}


def settings(listing: dict, host: str) -> set[str]:
    """What the inventory decides for a host: its variables, without the connection's and ansible-vault's."""
    return {k for k in listing["_meta"]["hostvars"].get(host, {}) if not k.startswith(("ansible_", "vault_"))}


@pytest.fixture(scope="module")
def both() -> tuple[dict, dict]:
    return inventory("production"), inventory("replica")


def test_the_same_groups_and_hosts(both):
    production, replica = both
    assert groups(replica) == groups(production)


def test_every_production_setting_is_in_the_replica_and_nothing_else_but_the_labs(both):
    production, replica = both
    for host in sorted({h for hosts in groups(production).values() for h in hosts}):
        assert settings(production, host) - settings(replica, host) == set(), f"{host}: missing in the replica"
        assert settings(replica, host) - settings(production, host) - lab_only() == set(), (
            f"{host}: set in the replica only; add it to inventory/production, or to a lab.yml if only the lab needs it"
        )


def test_the_replica_adopts_what_production_adopts(both):
    production, replica = both
    for host in ("crunchy01", "brix02"):
        ours = [sorted(vm) for vm in production["_meta"]["hostvars"][host]["fenced_vms"]]
        lab = [sorted(vm) for vm in replica["_meta"]["hostvars"][host]["fenced_vms"]]
        assert lab == ours, host
