"""The prepared base that test_01 builds, kept between runs of the e2e part in FR_CACHE.

It is keyed by everything that goes into it: the content of the collection's roles, plugins and playbooks, the lab
inventory, the guest image recipe, and the checksums of the guest image, the runner binary and the job image. A run
whose key was seen before puts that base into crunchy01's pool directory before site.yml creates the pool, so the
role finds its base and only creates the VM on it; any change to those inputs builds the base again in test_01, as
on a fresh machine. FR_E2E_BUILD_BASE=1 always builds it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from lablib.shell import ROOT

CACHE = Path(os.environ.get("FR_CACHE", Path.home() / ".cache" / "foundation-runners")) / "e2e-base"
POOL = "var/lib/libvirt/images"  # kvm_host_pool_path of inventory/lab, inside crunchy01's container
INPUTS = ("roles", "plugins", "playbooks", "inventory/lab", "tests/lab/build-guest-image", "tests/lab/guest-image.d")
CHECKSUMS = ("LAB_GUEST_IMAGE_CHECKSUM", "LAB_RUNNER_BINARY_CHECKSUM", "LAB_JOB_IMAGE_CHECKSUM")


def key(env: dict[str, str]) -> str:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--", *INPUTS], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    digest = hashlib.sha256()
    for name in sorted(f for f in files if f):
        path = ROOT / name.decode()
        digest.update(name + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    for name in CHECKSUMS:
        digest.update(f"{name}={env.get(name, '')}\0".encode())
    return digest.hexdigest()[:16]


def pool_dir(env: dict[str, str]) -> Path:
    return Path(f"/proc/{env['LAB_KVM_HOST_PID']}/root") / POOL


def seed(env: dict[str, str]) -> str | None:
    """The cached base for this key put into the pool directory of a new crunchy01; its name, or None."""
    if os.environ.get("FR_E2E_BUILD_BASE") == "1":
        return None
    kept = sorted((CACHE / key(env)).glob("fenced-base-*"))
    if len(kept) != 1:
        return None
    pool = pool_dir(env)
    pool.mkdir(parents=True, exist_ok=True)
    copy(kept[0], pool / kept[0].name)
    return kept[0].name


def keep(env: dict[str, str], name: str) -> None:
    """The base NAME that this run built, kept for the next runs with the same inputs (and no other)."""
    folder = CACHE / key(env)
    if (folder / name).exists():
        return
    shutil.rmtree(CACHE, ignore_errors=True)
    folder.mkdir(parents=True)
    copy(pool_dir(env) / name, folder / name)


def copy(source: Path, target: Path) -> None:
    """SOURCE to TARGET with its mode and owner, whole or not at all."""
    part = target.with_name(f".{target.name}.part")
    shutil.copy2(source, part)
    stat = source.stat()
    os.chown(part, stat.st_uid, stat.st_gid)
    part.rename(target)
