"""Helpers shared by the libvirt_cloudinit_vm integration tests."""

from __future__ import annotations

import subprocess

from lab_support import ROOT, Ansible

LAB_LIBVIRT = ROOT / "tests" / "lab" / "libvirt"
LAB_SSHD = ROOT / "tests" / "lab" / "sshd"
ANSIBLE = Ansible()


def sh(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def virsh(uri: str, *args: str, check: bool = True) -> str:
    return sh(["virsh", "-q", "-c", uri, *args], check=check).stdout


def run(args: dict, check: bool = False, diff: bool = False, extra_env: dict | None = None) -> dict:
    """Run libvirt_cloudinit_vm once through `ansible localhost -m`; returns the task result."""
    return ANSIBLE("libvirt_cloudinit_vm", args, check=check, diff=diff, extra_env=extra_env)


def pool_volumes(uri: str, pool: str, prefixes: tuple[str, ...]) -> set[str]:
    virsh(uri, "pool-refresh", pool, check=False)
    names = {line.split()[0] for line in virsh(uri, "vol-list", pool).splitlines() if line.strip()}
    return {name for name in names if name.startswith(prefixes)}


def domains(uri: str, prefix: str) -> set[str]:
    return {d for d in virsh(uri, "list", "--all", "--name").split() if d.startswith(prefix)}
