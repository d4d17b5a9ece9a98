# Private to the foundation.runners collection; not a public API, may change without notice.
"""Domain XML without a libvirt connection: the domain's specification, its metadata, render, read and edit."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_nwfilter as libvirt_nwfilter

METADATA_NS = "https://foundation.runners/libvirt_cloudinit_vm/1"
METADATA_PREFIX = "frr"
# Written while a creation is under way, removed when it completes (see the module's recovery rules).
PHASE_CREATING = "creating"
_META_KEYS = ("pool", "base-volume", "overlay-volume", "seed-volume", "spec-hash")
_META_OPTIONAL = ("phase", "base-import")
_MEM_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}
# The domain's fields this collection manages, in the order changes are reported.
DOMAIN_FIELDS = (
    "domain_type",
    "vcpus",
    "memory_mib",
    "interface_type",
    "interface_source",
    "mac",
    "guest_agent",
    "nwfilter",
)
ET.register_namespace(METADATA_PREFIX, METADATA_NS)


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
        if not libvirt_nwfilter.is_set(data["nwfilter"]):
            data.pop("nwfilter")  # so that the hash of a domain without a filter is what it was before the option
        return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def volume_names(name: str) -> tuple[str, str]:
    """The overlay and seed volumes of domain ``name``."""
    return f"{name}.qcow2", f"{name}-seed.iso"


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
    libvirt_nwfilter.replace(iface, spec.nwfilter)
    return iface


def _agent_element() -> ET.Element:
    chan = ET.Element("channel", type="unix")
    ET.SubElement(chan, "target", type="virtio", name="org.qemu.guest_agent.0")
    return chan


def _memory_mib(node: ET.Element | None) -> int | None:
    if node is None or not node.text:
        return None
    unit = node.get("unit", "KiB").lower()
    return int(node.text) * _MEM_UNITS.get(unit, 1024) // (1024 * 1024)


def first_interface(root: ET.Element) -> ET.Element | None:
    return root.find("devices/interface")


def domain_fields(xml: str) -> dict[str, Any]:
    """The fields this module manages, read from a domain XML."""
    root = ET.fromstring(xml)
    iface = first_interface(root)
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
        "nwfilter": libvirt_nwfilter.read(iface),
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
        iface = first_interface(root)
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
        iface = first_interface(root)
        if iface is not None:
            libvirt_nwfilter.replace(iface, spec.nwfilter)
    if "guest_agent" in fields:
        for chan in devices.findall("channel"):
            target = chan.find("target")
            if target is not None and target.get("name") == "org.qemu.guest_agent.0":
                devices.remove(chan)
        if spec.guest_agent:
            devices.append(_agent_element())
    _replace_metadata(root, spec_metadata(spec))
    return _serialize(root)


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
