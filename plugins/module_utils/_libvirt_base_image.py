# Private to the foundation.runners collection; not a public API, may change without notice.
"""The base volume of a guest: find it, or download and import the cloud image, and verify an interrupted import."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError

if TYPE_CHECKING:
    from ansible_collections.foundation.runners.plugins.module_utils._libvirt_vm import VmManager

libvirt = libvirt_api.libvirt


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


def download(vm: VmManager, url: str) -> str:
    """Download url to the temporary directory, verify its checksum and return the file's path."""
    fd, path = tempfile.mkstemp(prefix="base-", suffix=".img", dir=vm.tmpdir())
    digest = hashlib.sha256()
    resp, info = vm.fetch(url)
    if resp is None or info.get("status") != 200:
        os.close(fd)
        raise LibvirtVmError(f"download of base_image {url} failed: [{info.get('status')}] {info.get('msg')}")
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: resp.read(libvirt_volumes.STREAM_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != vm.checksum:
        raise LibvirtVmError(
            f"checksum mismatch for base_image {url}: expected sha256:{vm.checksum}, got sha256:{digest.hexdigest()}"
        )
    return path


def plan_base(vm: VmManager, pool: Any, replacing: frozenset[str] = frozenset()) -> BasePlan:
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
            local_info = libvirt_volumes.inspect_image(image)
            sha = libvirt_volumes.sha256_file(image)
            if vm.checksum and sha != vm.checksum:
                raise LibvirtVmError(
                    f"checksum mismatch for base_image {image}: expected sha256:{vm.checksum}, got sha256:{sha}"
                )
        name = libvirt_volumes.base_volume_name(sha)
    vol = libvirt_volumes.lookup_volume(pool, name)
    if vol is not None and name not in replacing:
        return BasePlan(name, libvirt_volumes.volume_format(vol), libvirt_volumes.volume_capacity(vol), vol.path())
    if not image:
        raise LibvirtVmError(f"base_volume {name!r} does not exist in pool {pool.name()!r} and base_image is not given")
    path = image
    if vm.image_is_url:
        path = download(vm, image)
        local_info = libvirt_volumes.inspect_image(path)
        sha = vm.checksum
    elif local_info is None:
        local_info = libvirt_volumes.inspect_image(path)
        sha = libvirt_volumes.sha256_file(path)
        if vm.checksum and sha != vm.checksum:
            raise LibvirtVmError(f"checksum mismatch for base_image {image}: expected sha256:{vm.checksum}")
    return BasePlan(name, local_info.format, local_info.virtual_size, None, path, local_info.file_size, sha)


def import_base(vm: VmManager, pool: Any, plan: BasePlan) -> None:
    """Create the base volume and upload the image into it; sets ``plan.path``."""
    vol = libvirt_volumes.create_volume(pool, libvirt_volumes.volume_xml(plan.name, plan.file_size, "raw"), vm.rollback)
    with open(plan.source, "rb") as src:
        libvirt_volumes.upload_volume(vm.conn, vol, src, plan.file_size)
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass
    plan.path = vol.path()
    libvirt_api.fault_point("after_base_import")


def import_is_intact(vm: VmManager, pool: Any, name: str, sha256: str) -> bool | None:
    """Whether a base volume whose import was recorded holds the image it was meant to (None: no volume)."""
    vol = libvirt_volumes.lookup_volume(pool, name)
    if vol is None:
        return None
    return libvirt_volumes.sha256_volume(vm.conn, vol) == sha256
