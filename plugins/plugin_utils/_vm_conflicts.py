# Private to the foundation.runners collection; not a public API, may change without notice.
"""Runner VMs of the whole inventory that share an address or a name (the logic of filter fenced_vm_conflicts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _users(vms: list[dict[str, Any]]) -> str:
    names = [f"{vm['name']} on {vm['host']}" for vm in vms]
    return ", ".join(names[:-1]) + " and " + names[-1]


def conflicts(vms: Iterable[dict[str, Any]]) -> list[str]:
    """One message per address or name used by more than one VM; ValueError for an entry without host or name."""
    by_address: dict[str, list[dict[str, Any]]] = {}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for vm in vms:
        if not isinstance(vm, dict) or not vm.get("name") or not vm.get("host"):
            raise ValueError(f"each VM needs host and name, got {vm!r}")
        address = str(vm.get("address") or "").split("/", maxsplit=1)[0]
        if address:
            by_address.setdefault(address, []).append(vm)
        by_name.setdefault(str(vm["name"]), []).append(vm)
    messages = [
        f"address {address} is declared for {_users(users)}: two guests on one address knock each other off the LAN"
        for address, users in by_address.items()
        if len(users) > 1
    ]
    messages += [
        f"VM name {name} is declared {len(users)} times ({_users(users)}): one name is one runner registration"
        for name, users in by_name.items()
        if len(users) > 1
    ]
    return messages
