# Private to the foundation.runners collection; not a public API, may change without notice.
"""libvirt helpers: connection, pools and volumes moved through streams, domain XML, rollback."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import signal
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_nwfilter as nwf

LIBVIRT_IMPORT_ERROR: ImportError | None
try:
    import libvirt
except ImportError as exc:  # pragma: no cover - exercised through the module
    libvirt = None
    LIBVIRT_IMPORT_ERROR = exc
else:
    LIBVIRT_IMPORT_ERROR = None

METADATA_NS = "https://foundation.runners/libvirt_cloudinit_vm/1"
METADATA_PREFIX = "frr"
FAULT_ENV = "FOUNDATION_RUNNERS_FAULT"
# In the order a creation passes them: the domain is defined (the record of intent) before any volume exists.
FAULT_POINTS = ("after_define", "after_base_import", "after_overlay_create", "after_seed_upload", "after_start")
FAULT_WAIT_LIMIT = 600
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
CHECKSUM_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
STREAM_CHUNK = 1024 * 1024

ET.register_namespace(METADATA_PREFIX, METADATA_NS)

_UNITS = {
    "": None,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
}


class LibvirtVmError(Exception):
    """An error with a message fit for the user: what failed, on what, and why."""


# --------------------------------------------------------------------------- input


def parse_size(value: Any, default_unit: str, what: str) -> int:
    """Parse ``2048``, ``"2GiB"``, ``"512MiB"`` and the like into bytes.

    A bare number is in ``default_unit`` (``MiB`` for memory, ``GiB`` for disks). Only binary
    units are accepted, so ``GB`` versus ``GiB`` can never be confused.
    """
    if isinstance(value, bool):
        raise LibvirtVmError(f"{what} {value!r} is not a size")
    if isinstance(value, int):
        number, unit = value, ""
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise LibvirtVmError(
                f"{what} {value!r} is not a valid size: use an integer ({default_unit}) or a number with "
                "one of the units B, KiB, MiB, GiB, TiB (e.g. 2GiB, 512MiB)"
            )
        number, unit = int(m.group(1)), m.group(2).lower()
    factor = _UNITS[unit] or _UNITS[default_unit.lower()]
    size = number * factor
    if size <= 0:
        raise LibvirtVmError(f"{what} {value!r} must be greater than zero")
    return size


def validate_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise LibvirtVmError(
            f"name {name!r} is invalid: use 1 to 63 characters, letters, digits, '.', '_' or '-', "
            "starting with a letter or a digit"
        )


def normalize_mac(mac: str) -> str:
    if not MAC_RE.match(mac or ""):
        raise LibvirtVmError(f"mac {mac!r} is not a MAC address of the form 52:54:00:12:34:56")
    octets = [int(x, 16) for x in mac.split(":")]
    if octets[0] & 1:
        raise LibvirtVmError(f"mac {mac!r} is a multicast address; a NIC needs a unicast address")
    if not any(octets):
        raise LibvirtVmError(f"mac {mac!r} is the all-zero address")
    return mac.lower()


def parse_checksum(checksum: str) -> str:
    m = CHECKSUM_RE.match(checksum or "")
    if not m:
        raise LibvirtVmError(f"base_checksum {checksum!r} is invalid: expected sha256: followed by 64 hex digits")
    return m.group(1).lower()


def fault_point(point: str) -> None:
    """Test-only fault injection when FOUNDATION_RUNNERS_FAULT names this point.

    ``POINT`` raises an error (the run's rollback follows), ``POINT:kill`` ends the process with SIGKILL
    (no rollback, as when the controller dies), ``POINT:wait:FILE`` creates FILE and waits until it is
    removed, so a test can kill libvirtd at that point before the run goes on.
    """
    spec = os.environ.get(FAULT_ENV, "")
    name, _sep, how = spec.partition(":")
    if name != point:
        return
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how.startswith("wait:"):
        marker = how[len("wait:") :]
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + FAULT_WAIT_LIMIT
        while os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        return
    raise LibvirtVmError(f"injected fault at {point} ({FAULT_ENV}={spec})")


# --------------------------------------------------------------------------- images


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


def default_base_volume_name(sha256: str, fmt: str) -> str:
    return f"base-{sha256[:16]}.{'qcow2' if fmt == 'qcow2' else 'img'}"


# --------------------------------------------------------------------------- rollback


@dataclass
class Rollback:
    """Objects a run created, undone in reverse order when the run fails."""

    steps: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)

    def add(self, description: str, undo: Callable[[], Any]) -> None:
        self.steps.append((description, undo))

    def run(self) -> tuple[list[str], list[str]]:
        done: list[str] = []
        failed: list[str] = []
        while self.steps:
            description, undo = self.steps.pop()
            try:
                undo()
            except libvirt.libvirtError as exc:
                failed.append(f"{description}: {exc.get_error_message()}")
            else:
                done.append(description)
        return done, failed


# --------------------------------------------------------------------------- connection, pools, volumes


def err(exc: Any) -> str:
    """The message of a libvirtError without libvirt's component prefix noise."""
    msg = exc.get_error_message() if hasattr(exc, "get_error_message") else None
    return msg or str(exc)


def err_code(exc: Any) -> int | None:
    return exc.get_error_code() if hasattr(exc, "get_error_code") else None


def _quiet(_ctx: Any, _error: Any) -> None:
    """libvirt's default handler prints every error to stderr; errors reach the user through exceptions."""


def connect(uri: str) -> Any:
    libvirt.registerErrorHandler(_quiet, None)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot connect to libvirt at {uri}: {err(exc)}") from exc


def lookup_pool(conn: Any, name: str) -> Any:
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"storage pool {name!r} not found on {conn.getURI()}: {err(exc)}") from exc
    if not pool.isActive():
        raise LibvirtVmError(f"storage pool {name!r} on {conn.getURI()} is not active")
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass  # a refresh is best effort (it fails while another volume job runs)
    return pool


def lookup_or_none(lookup: Any, name: str, missing: int, what: str) -> Any | None:
    """lookup(name), or None when libvirt answers with the error code that means "no such object"."""
    try:
        return lookup(name)
    except libvirt.libvirtError as exc:
        if err_code(exc) == missing:
            return None
        raise LibvirtVmError(f"cannot look up {what}: {err(exc)}") from exc


def lookup_volume(pool: Any, name: str) -> Any | None:
    return lookup_or_none(
        pool.storageVolLookupByName, name, libvirt.VIR_ERR_NO_STORAGE_VOL, f"volume {name!r} in pool {pool.name()!r}"
    )


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


# --------------------------------------------------------------------------- host checks


def bridge_exists(conn: Any, bridge: str) -> bool | None:
    """True/False when the host's interface or node-device API can tell, None when neither is available.

    Both APIs enumerate through udev; on a host without it (a container) they miss the bridge, so on a
    local connection the kernel's own view (/sys/class/net/BRIDGE/bridge) has the last word."""
    answered = False
    try:
        conn.interfaceLookupByName(bridge)
        return True
    except libvirt.libvirtError as exc:
        if err_code(exc) == libvirt.VIR_ERR_NO_INTERFACE:
            answered = True
    try:
        devices = conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET)
    except libvirt.libvirtError:
        devices = None
    for dev in devices or []:
        try:
            iface = ET.fromstring(dev.XMLDesc(0)).findtext("capability/interface")
        except libvirt.libvirtError:
            continue
        if iface == bridge:
            return True
    if not urlsplit(conn.getURI()).hostname and os.path.isdir(f"/sys/class/net/{bridge}"):
        return os.path.isdir(f"/sys/class/net/{bridge}/bridge")
    if devices is None:
        return False if answered else None
    return False


def lookup_network(conn: Any, name: str) -> Any:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"libvirt network {name!r} not found on {conn.getURI()}: {err(exc)}") from exc


def macs_in_use(conn: Any, exclude: str) -> dict[str, str]:
    """MAC address -> domain name for every NIC of every other domain (persistent and live)."""
    used: dict[str, str] = {}
    for dom in conn.listAllDomains(0):
        if dom.name() == exclude:
            continue
        for flags in (libvirt.VIR_DOMAIN_XML_INACTIVE, 0):
            try:
                root = ET.fromstring(dom.XMLDesc(flags))
            except libvirt.libvirtError:
                continue
            for mac in root.findall("devices/interface/mac"):
                used[mac.get("address", "").lower()] = dom.name()
    return used


# --------------------------------------------------------------------------- domains


@dataclass
class DomainSpec:
    name: str
    domain_type: str
    vcpus: int
    memory_mib: int
    interface_type: str  # bridge | network
    interface_source: str
    mac: str
    pool: str
    base_volume: str
    overlay_volume: str
    seed_volume: str | None
    guest_agent: bool = False
    nwfilter: dict[str, Any] | None = None

    def spec_hash(self) -> str:
        data = asdict(self)
        data.pop("seed_volume")
        if not nwf.is_set(data["nwfilter"]):
            data.pop("nwfilter")  # so that the hash of a domain without a filter is what it was before the option
        return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def lookup_domain(conn: Any, name: str) -> Any | None:
    return lookup_or_none(conn.lookupByName, name, libvirt.VIR_ERR_NO_DOMAIN, f"domain {name!r} on {conn.getURI()}")


def read_metadata(dom: Any) -> dict[str, str] | None:
    """The collection's metadata of a domain, or None when the domain lacks it."""
    try:
        text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    except libvirt.libvirtError as exc:
        if err_code(exc) == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise LibvirtVmError(f"cannot read metadata of domain {dom.name()!r}: {err(exc)}") from exc
    root = ET.fromstring(text)
    return {child.tag.split("}")[-1]: (child.text or "") for child in root}


# Written while a creation is under way, removed when it completes (see the module's recovery rules).
PHASE_CREATING = "creating"
_META_KEYS = ("pool", "base-volume", "overlay-volume", "seed-volume", "spec-hash")
_META_OPTIONAL = ("phase", "base-import")


def completed(meta: dict[str, str]) -> dict[str, str]:
    """The metadata of a domain whose creation is complete: without the keys of a creation under way."""
    return {k: v for k, v in meta.items() if k not in _META_OPTIONAL}


def metadata_element(meta: dict[str, str], namespaced: bool) -> ET.Element:
    tag = (lambda t: f"{{{METADATA_NS}}}{t}") if namespaced else (lambda t: t)
    root = ET.Element(tag("instance"))
    for key in _META_KEYS:
        ET.SubElement(root, tag(key)).text = meta.get(key, "")
    for key in _META_OPTIONAL:
        if meta.get(key):
            ET.SubElement(root, tag(key)).text = meta[key]
    return root


def spec_metadata(spec: DomainSpec) -> dict[str, str]:
    return {
        "pool": spec.pool,
        "base-volume": spec.base_volume,
        "overlay-volume": spec.overlay_volume,
        "seed-volume": spec.seed_volume or "",
        "spec-hash": spec.spec_hash(),
    }


def write_metadata(dom: Any, meta: dict[str, str], live_only: bool = False, live_too: bool = False) -> None:
    """Write the collection's metadata into the persistent config, the running domain, or both."""
    payload = ET.tostring(metadata_element(meta, namespaced=False), encoding="unicode")
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE if live_only else libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if live_too:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    try:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, payload, METADATA_PREFIX, METADATA_NS, flags)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot write metadata of domain {dom.name()!r}: {err(exc)}") from exc


def cdrom_xml(pool: str, volume: str) -> str:
    disk = _cdrom_element(pool, volume)
    return ET.tostring(disk, encoding="unicode")


def _cdrom_element(pool: str, volume: str) -> ET.Element:
    disk = ET.Element("disk", type="volume", device="cdrom")
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    ET.SubElement(disk, "source", pool=pool, volume=volume)
    ET.SubElement(disk, "target", dev="sda", bus="scsi")
    ET.SubElement(disk, "readonly")
    return disk


def _indent(elem: ET.Element) -> ET.Element:
    ET.indent(elem, space="  ")
    return elem


def render_domain_xml(spec: DomainSpec, extra_meta: dict[str, str] | None = None) -> str:
    """A new domain: boots its qcow2 overlay, seed on a SCSI cdrom, serial console on a PTY, ACPI on.

    ``extra_meta`` adds the optional metadata (``phase``, ``base-import``) of a creation under way.
    """
    dom = ET.Element("domain", type=spec.domain_type)
    ET.SubElement(dom, "name").text = spec.name
    md = ET.SubElement(dom, "metadata")
    md.append(metadata_element({**spec_metadata(spec), **(extra_meta or {})}, namespaced=True))
    ET.SubElement(dom, "memory", unit="KiB").text = str(spec.memory_mib * 1024)
    ET.SubElement(dom, "currentMemory", unit="KiB").text = str(spec.memory_mib * 1024)
    ET.SubElement(dom, "vcpu", placement="static").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    ET.SubElement(os_el, "boot", dev="hd")
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(dom, "clock", offset="utc")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    disk = ET.SubElement(devices, "disk", type="volume", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2", discard="unmap")
    ET.SubElement(disk, "source", pool=spec.pool, volume=spec.overlay_volume)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    ET.SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    if spec.seed_volume:
        devices.append(_cdrom_element(spec.pool, spec.seed_volume))
    devices.append(_interface_element(spec))
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    if spec.guest_agent:
        devices.append(_agent_element())
    rng = ET.SubElement(devices, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    ET.SubElement(devices, "memballoon", model="virtio")
    return ET.tostring(_indent(dom), encoding="unicode") + "\n"


def _interface_element(spec: DomainSpec) -> ET.Element:
    iface = ET.Element("interface", type=spec.interface_type)
    ET.SubElement(iface, "mac", address=spec.mac)
    ET.SubElement(iface, "source", {spec.interface_type: spec.interface_source})
    ET.SubElement(iface, "model", type="virtio")
    nwf.replace(iface, spec.nwfilter)
    return iface


def _agent_element() -> ET.Element:
    chan = ET.Element("channel", type="unix")
    ET.SubElement(chan, "target", type="virtio", name="org.qemu.guest_agent.0")
    return chan


_MEM_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}


def _memory_mib(node: ET.Element | None) -> int | None:
    if node is None or not node.text:
        return None
    unit = node.get("unit", "KiB").lower()
    return int(node.text) * _MEM_UNITS.get(unit, 1024) // (1024 * 1024)


def _first_interface(root: ET.Element) -> ET.Element | None:
    return root.find("devices/interface")


def domain_fields(xml: str) -> dict[str, Any]:
    """The fields this module manages, read from a domain XML."""
    root = ET.fromstring(xml)
    iface = _first_interface(root)
    iface_type = iface.get("type") if iface is not None else None
    source = iface.find("source") if iface is not None else None
    mac = iface.find("mac") if iface is not None else None
    return {
        "domain_type": root.get("type"),
        "vcpus": int(root.findtext("vcpu") or 0),
        "memory_mib": _memory_mib(root.find("memory")),
        "interface_type": iface_type,
        "interface_source": source.get(iface_type or "", None) if source is not None else None,
        "mac": (mac.get("address") or "").lower() if mac is not None else None,
        "guest_agent": any(t.get("name") == "org.qemu.guest_agent.0" for t in root.findall("devices/channel/target")),
        "nwfilter": nwf.read(iface),
    }


def find_cdrom(xml: str, volume: str) -> str | None:
    """The XML of the cdrom disk whose source is ``volume``, or None."""
    root = ET.fromstring(xml)
    for disk in root.findall("devices/disk"):
        source = disk.find("source")
        if disk.get("device") == "cdrom" and source is not None and source.get("volume") == volume:
            return ET.tostring(disk, encoding="unicode")
    return None


def _serialize(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def canonical_xml(xml: str) -> str:
    """Serialise a domain XML the way ``apply_fields`` does, so before/after diffs compare like with like."""
    return _serialize(ET.fromstring(xml))


def apply_fields(xml: str, spec: DomainSpec, fields: list[str]) -> str:
    """Change only the managed ``fields`` of a persistent domain XML, keeping everything else."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    if "domain_type" in fields:
        root.set("type", spec.domain_type)
    if "vcpus" in fields:
        vcpu = root.find("vcpu")
        if vcpu is None:
            vcpu = ET.SubElement(root, "vcpu", placement="static")
        vcpu.attrib.pop("current", None)
        vcpu.text = str(spec.vcpus)
    if "memory_mib" in fields:
        for tag in ("memory", "currentMemory"):
            node = root.find(tag)
            if node is None:
                node = ET.SubElement(root, tag)
            node.set("unit", "KiB")
            node.text = str(spec.memory_mib * 1024)
    if {"interface_type", "interface_source", "mac"} & set(fields):
        iface = _first_interface(root)
        if iface is None:
            devices.append(_interface_element(spec))
        else:
            iface.set("type", spec.interface_type)
            source = iface.find("source")
            if source is None:
                source = ET.SubElement(iface, "source")
            source.attrib.clear()
            source.set(spec.interface_type, spec.interface_source)
            for child in list(iface):
                if child.tag in ("target", "alias", "address") and "interface_type" in fields:
                    iface.remove(child)
            mac = iface.find("mac")
            if mac is None:
                mac = ET.Element("mac")
                iface.insert(0, mac)
            mac.set("address", spec.mac)
    if "nwfilter" in fields:
        iface = _first_interface(root)
        if iface is not None:
            nwf.replace(iface, spec.nwfilter)
    if "guest_agent" in fields:
        for chan in devices.findall("channel"):
            target = chan.find("target")
            if target is not None and target.get("name") == "org.qemu.guest_agent.0":
                devices.remove(chan)
        if spec.guest_agent:
            devices.append(_agent_element())
    _replace_metadata(root, spec_metadata(spec))
    return _serialize(root)


STATE_NAMES = {
    0: "nostate",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shutoff",
    6: "crashed",
    7: "pmsuspended",
}


def domain_state(dom: Any) -> str:
    try:
        return STATE_NAMES.get(dom.state(0)[0], "unknown")
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot read state of domain {dom.name()!r}: {err(exc)}") from exc


def shutdown(dom: Any, timeout: int, force: bool, sleep: Callable[[float], None] = time.sleep) -> str:
    """ACPI shutdown, waiting up to ``timeout`` seconds; with ``force`` power off after that. Returns how."""
    try:
        if not dom.isActive():
            return "already off"
        dom.shutdown()
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"ACPI shutdown of domain {dom.name()!r} failed: {err(exc)}") from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not dom.isActive():
            return "acpi"
        sleep(1)
    if not dom.isActive():
        return "acpi"
    if not force:
        raise LibvirtVmError(
            f"domain {dom.name()!r} did not shut down within shutdown_timeout={timeout}s after an ACPI "
            "shutdown request; set force=true to power it off"
        )
    try:
        dom.destroy()
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"forced power-off of domain {dom.name()!r} failed: {err(exc)}") from exc
    return "forced"


def start(dom: Any) -> None:
    try:
        dom.create()
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot start domain {dom.name()!r}: {err(exc)}") from exc


def copy_spec(spec: DomainSpec, **changes: Any) -> DomainSpec:
    new = copy.copy(spec)
    for key, value in changes.items():
        setattr(new, key, value)
    return new


def set_cdrom(xml: str, pool: str, volume: str, present: bool) -> str:
    """Add or remove the seed cdrom (source ``pool``/``volume``) in a persistent domain XML."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    found = False
    for disk in devices.findall("disk"):
        source = disk.find("source")
        if disk.get("device") == "cdrom" and source is not None and source.get("volume") == volume:
            found = True
            if not present:
                devices.remove(disk)
    if present and not found:
        if not any(c.get("type") == "scsi" for c in devices.findall("controller")):
            devices.append(ET.Element("controller", type="scsi", index="0", model="virtio-scsi"))
        devices.append(_cdrom_element(pool, volume))
    return _serialize(root)


def set_metadata_in_xml(xml: str, meta: dict[str, str]) -> str:
    root = ET.fromstring(xml)
    _replace_metadata(root, meta)
    return _serialize(root)


def _replace_metadata(root: ET.Element, meta: dict[str, str]) -> None:
    """Put the collection's <instance> element into the domain's <metadata>, replacing an older one."""
    md = root.find("metadata")
    if md is None:
        md = ET.Element("metadata")
        root.insert(2, md)
    for old in md.findall(f"{{{METADATA_NS}}}instance"):
        md.remove(old)
    md.append(metadata_element(meta, namespaced=True))


def check_nwfilter(conn: Any, name: str) -> None:
    """Fails unless the network filter ``name`` is defined on the host."""
    try:
        conn.nwfilterLookupByName(name)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(
            f"network filter {name!r} is not defined on {conn.getURI()} ({err(exc)}); its host needs libvirt's "
            "nwfilter driver and filters (package libvirt-daemon-config-nwfilter, which the kvm_host role installs), "
            "or a filter of that name defined with 'virsh nwfilter-define'"
        ) from exc


def set_live_nwfilter(dom: Any, live_xml: str, want: dict[str, Any]) -> str | None:
    """Give the running domain's first NIC the filter ``want``; returns libvirt's refusal, or None when done."""
    iface = _first_interface(ET.fromstring(live_xml))
    if iface is None:
        return "the domain has no network interface"
    nwf.replace(iface, want)
    try:
        dom.updateDeviceFlags(ET.tostring(iface, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        return err(exc)
    return None


def libvirt_argument_spec() -> dict[str, Any]:
    """Connection options shared by the collection's libvirt modules (documented in doc fragment libvirt)."""
    return {"uri": {"type": "str", "default": "qemu:///system"}}
