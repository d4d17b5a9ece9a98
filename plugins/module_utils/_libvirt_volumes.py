# Private to the foundation.runners collection; not a public API, may change without notice.
"""Storage volumes: XML, create, delete, streams up and down, checksums, and the base images they are made from."""

from __future__ import annotations

import hashlib
import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError, Rollback, err

libvirt = libvirt_api.libvirt

STREAM_CHUNK = 1024 * 1024
# Base volumes imported from an image are named by its checksum, so one image is imported once per pool.
BASE_PREFIX = "base-sha256-"


@dataclass
class ImageInfo:
    format: str
    virtual_size: int
    file_size: int


def inspect_image(path: str) -> ImageInfo:
    """Recognise a qcow2 image or a raw disk image with an MBR/GPT, and reject anything else."""
    try:
        file_size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise LibvirtVmError(f"cannot read base image {path}: {exc.strerror}") from exc
    if head[:4] == b"QFI\xfb":
        if len(head) < 72:
            raise LibvirtVmError(f"base image {path} is corrupt: qcow2 header is truncated ({file_size} bytes)")
        version, _bf_off, _bf_size, cluster_bits, size = struct.unpack(">IQIIQ", head[4:32])
        _crypt, l1_size, l1_off, rc_off = struct.unpack(">IIQQ", head[32:56])
        if version not in (2, 3) or not 9 <= cluster_bits <= 21 or size == 0:
            raise LibvirtVmError(
                f"base image {path} is corrupt: qcow2 header has version {version}, "
                f"cluster_bits {cluster_bits}, size {size}"
            )
        if l1_off + l1_size * 8 > file_size or rc_off >= file_size:
            raise LibvirtVmError(
                f"base image {path} is corrupt: qcow2 tables lie beyond the end of the file "
                f"({file_size} bytes; truncated download?)"
            )
        return ImageInfo("qcow2", size, file_size)
    if len(head) == 512 and head[510:512] == b"\x55\xaa":
        return ImageInfo("raw", file_size, file_size)
    raise LibvirtVmError(
        f"base image {path} is neither a qcow2 image nor a raw disk image with a partition table "
        f"({file_size} bytes; corrupt or not a disk image)"
    )


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(STREAM_CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise LibvirtVmError(f"cannot read base image {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def lookup_volume(pool: Any, name: str) -> Any | None:
    return libvirt_api.lookup_or_none(
        pool.storageVolLookupByName, name, libvirt.VIR_ERR_NO_STORAGE_VOL, f"volume {name!r} in pool {pool.name()!r}"
    )


def base_volume_name(sha256: str) -> str:
    return f"{BASE_PREFIX}{sha256[:16]}"


def volume_format(vol: Any) -> str:
    node = ET.fromstring(vol.XMLDesc(0)).find("target/format")
    return node.get("type", "raw") if node is not None else "raw"


def volume_xml(name: str, capacity: int, fmt: str, backing_path: str | None = None, backing_fmt: str = "qcow2") -> str:
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(capacity)
    if fmt == "raw":
        ET.SubElement(vol, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(vol, "target")
    ET.SubElement(target, "format", type=fmt)
    if backing_path:
        backing = ET.SubElement(vol, "backingStore")
        ET.SubElement(backing, "path").text = backing_path
        ET.SubElement(backing, "format", type=backing_fmt)
    return ET.tostring(vol, encoding="unicode")


def create_volume(pool: Any, xml: str, rollback: Rollback | None = None) -> Any:
    name = ET.fromstring(xml).findtext("name")
    try:
        vol = pool.createXML(xml, 0)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot create volume {name!r} in pool {pool.name()!r}: {err(exc)}") from exc
    if rollback is not None:
        rollback.add(f"delete volume {pool.name()}/{name}", lambda: vol.delete(0))
    return vol


def delete_volume(pool: Any, name: str) -> bool:
    vol = lookup_volume(pool, name)
    if vol is None:
        return False
    try:
        vol.delete(0)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot delete volume {name!r} in pool {pool.name()!r}: {err(exc)}") from exc
    return True


def upload_volume(conn: Any, vol: Any, source: Any, length: int) -> None:
    """Upload ``length`` bytes from a binary file object through a libvirt stream (virStorageVolUpload)."""
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, length, 0)
        remaining = length
        while remaining > 0:
            chunk = source.read(min(STREAM_CHUNK, remaining))
            if not chunk:
                raise LibvirtVmError(f"upload to volume {vol.name()!r}: source ended {remaining} bytes early")
            sent = 0
            while sent < len(chunk):
                sent += stream.send(chunk[sent:])
            remaining -= len(chunk)
        stream.finish()
    except libvirt.libvirtError as exc:
        abort_quietly(stream)
        raise LibvirtVmError(f"upload to volume {vol.name()!r} failed: {err(exc)}") from exc
    except LibvirtVmError:
        abort_quietly(stream)
        raise


def read_volume(conn: Any, vol: Any, length: int, what: str) -> Iterator[bytes]:
    """The first ``length`` bytes of a volume (0: all of it) in chunks, through virStorageVolDownload.

    ``what`` names the reading in an error, e.g. "download of volume 'x'".
    """
    stream = conn.newStream(0)
    try:
        vol.download(stream, 0, length, 0)
        while True:
            data = stream.recv(STREAM_CHUNK)
            if not data or not isinstance(data, bytes):
                break
            yield data
        stream.finish()
    except libvirt.libvirtError as exc:
        abort_quietly(stream)
        raise LibvirtVmError(f"{what} failed: {err(exc)}") from exc


def download_volume(conn: Any, vol: Any, length: int) -> bytes:
    """Read the first ``length`` bytes of a volume."""
    return b"".join(read_volume(conn, vol, length, f"download of volume {vol.name()!r}"))


def sha256_volume(conn: Any, vol: Any) -> str:
    """SHA-256 of a volume's content, streamed without holding it in memory."""
    digest = hashlib.sha256()
    for chunk in read_volume(conn, vol, 0, f"reading volume {vol.name()!r} to verify it"):
        digest.update(chunk)
    return digest.hexdigest()


def volume_backing(vol: Any) -> str | None:
    """The path of a volume's backing store, or None."""
    return ET.fromstring(vol.XMLDesc(0)).findtext("backingStore/path")


def abort_quietly(stream: Any) -> None:
    """Abort a stream after a failure; the failure, not the abort, is what gets reported."""
    try:
        stream.abort()
    except libvirt.libvirtError:
        pass


def volume_capacity(vol: Any) -> int:
    return int(vol.info()[1])
