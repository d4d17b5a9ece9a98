"""Helpers shared by the libvirt_cloudinit_vm integration tests."""

from __future__ import annotations

from lablib.ansible import Ansible
from lablib.shell import ROOT, virsh

LAB_LIBVIRT = ROOT / "tests" / "lab" / "libvirt"
LAB_SSHD = ROOT / "tests" / "lab" / "sshd"
ANSIBLE = Ansible()


def run(args: dict, check: bool = False, diff: bool = False, extra_env: dict | None = None) -> dict:
    """Run libvirt_cloudinit_vm once through `ansible localhost -m`; returns the task result."""
    return ANSIBLE("libvirt_cloudinit_vm", args, check=check, diff=diff, extra_env=extra_env)


def lab_vm_args(env: dict, **kw) -> dict:
    """libvirt_cloudinit_vm options of a running TCG guest on the lab's bridge and pool; ``kw`` (with the name)
    adds or overrides, and an option given as None is left out."""
    args = {
        "uri": env["LIBVIRT_URI"],
        "state": "running",
        "domain_type": "qemu",
        "pool": env["LAB_POOL"],
        "bridge": env["LAB_BRIDGE"],
        "base_image": env["LAB_GUEST_IMAGE"],
        **kw,
    }
    return {k: v for k, v in args.items() if v is not None}


def pool_volumes(uri: str, pool: str, prefixes: tuple[str, ...]) -> set[str]:
    virsh(uri, "pool-refresh", pool, check=False)
    names = {line.split()[0] for line in virsh(uri, "vol-list", pool).splitlines() if line.strip()}
    return {name for name in names if name.startswith(prefixes)}


def domains(uri: str, prefix: str) -> set[str]:
    return {d for d in virsh(uri, "list", "--all", "--name").split() if d.startswith(prefix)}
