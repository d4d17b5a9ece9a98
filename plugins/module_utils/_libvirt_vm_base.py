# Private to the foundation.runners collection; not a public API, may change without notice.
"""The base volume of a guest: find it, or download and import the cloud image, and verify an interrupted import."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt as lv
from ansible_collections.foundation.runners.plugins.module_utils._libvirt import LibvirtVmError

libvirt = lv.libvirt
BASE_PREFIX = "base-sha256-"


@dataclass
class BasePlan:
    """The base volume a creation uses; ``source`` is set when it must be imported from that local file."""

    name: str
    format: str
    virtual_size: int
    path: str | None
    source: str | None = None
    file_size: int = 0
    sha256: str = ""


def download(vm: Any, url: str) -> str:
    """Download url to the temporary directory, verify its checksum and return the file's path."""
    fd, path = tempfile.mkstemp(prefix="base-", suffix=".img", dir=vm.tmpdir())
    digest = hashlib.sha256()
    resp, info = vm.fetch(url)
    if resp is None or info.get("status") != 200:
        os.close(fd)
        raise LibvirtVmError(f"download of base_image {url} failed: [{info.get('status')}] {info.get('msg')}")
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: resp.read(lv.STREAM_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != vm.checksum:
        raise LibvirtVmError(
            f"checksum mismatch for base_image {url}: expected sha256:{vm.checksum}, got sha256:{digest.hexdigest()}"
        )
    return path


def plan_base(vm: Any, pool: Any, replacing: frozenset[str] = frozenset()) -> BasePlan:
    """The base volume to use; when it is missing (or in ``replacing``), the prepared image to import.

    Check mode prepares the image as the real run does (download, checksum, inspection), so it fails where
    the real run would.
    """
    p = vm.p
    image = p["base_image"]
    name = p["base_volume"]
    local_info = None
    sha = ""
    if name is None:
        if not image:
            raise LibvirtVmError(f"creating domain {vm.name!r} needs base_image (or an existing base_volume)")
        if vm.image_is_url:
            sha = vm.checksum
        else:
            local_info = lv.inspect_image(image)
            sha = lv.sha256_file(image)
            if vm.checksum and sha != vm.checksum:
                raise LibvirtVmError(
                    f"checksum mismatch for base_image {image}: expected sha256:{vm.checksum}, got sha256:{sha}"
                )
        name = f"{BASE_PREFIX}{sha[:16]}"
    vol = lv.lookup_volume(pool, name)
    if vol is not None and name not in replacing:
        return BasePlan(name, lv.volume_format(vol), lv.volume_capacity(vol), vol.path())
    if not image:
        raise LibvirtVmError(f"base_volume {name!r} does not exist in pool {pool.name()!r} and base_image is not given")
    path = image
    if vm.image_is_url:
        path = download(vm, image)
        local_info = lv.inspect_image(path)
        sha = vm.checksum
    elif local_info is None:
        local_info = lv.inspect_image(path)
        sha = lv.sha256_file(path)
        if vm.checksum and sha != vm.checksum:
            raise LibvirtVmError(f"checksum mismatch for base_image {image}: expected sha256:{vm.checksum}")
    return BasePlan(name, local_info.format, local_info.virtual_size, None, path, local_info.file_size, sha)


def import_base(vm: Any, pool: Any, plan: BasePlan) -> None:
    """Create the base volume and upload the image into it; sets ``plan.path``."""
    vol = lv.create_volume(pool, lv.volume_xml(plan.name, plan.file_size, "raw"), vm.rollback)
    with open(plan.source, "rb") as src:
        lv.upload_volume(vm.conn, vol, src, plan.file_size)
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass
    plan.path = vol.path()
    lv.fault_point("after_base_import")


def import_is_intact(vm: Any, pool: Any, name: str, sha256: str) -> bool | None:
    """Whether a base volume whose import was recorded holds the image it was meant to (None: no volume)."""
    vol = lv.lookup_volume(pool, name)
    if vol is None:
        return None
    return lv.sha256_volume(vm.conn, vol) == sha256
