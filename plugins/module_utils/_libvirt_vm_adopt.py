# Private to the foundation.runners collection; not a public API, may change without notice.
"""Take over a domain another tool built: read what it is, report how it differs from the options, and give it
the collection's metadata without touching its disk or its size. Only the network filter (the fence) is applied."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_update as libvirt_vm_update
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError

if TYPE_CHECKING:
    from ansible_collections.foundation.runners.plugins.module_utils._libvirt_vm import VmManager

libvirt = libvirt_api.libvirt

# Options describing the domain's shape: compared and reported at adoption, applied by later runs only.
_SHAPE_OPTIONS = ("domain_type", "vcpus", "bridge", "network", "guest_agent")


def inspect(conn: Any, dom: Any, xml: str) -> dict[str, Any]:
    """What would be adopted: the domain, its disks (pool, volume, capacity), its NICs and the addresses seen;
    ``xml`` is its persistent definition."""
    root = ET.fromstring(xml)
    disks = [_disk(conn, d) for d in root.findall("devices/disk") if d.get("device") == "disk"]
    nics = []
    for iface in root.findall("devices/interface"):
        source = iface.find("source")
        mac = iface.find("mac")
        nics.append(
            {
                "type": iface.get("type"),
                "source": source.get(iface.get("type") or "") if source is not None else None,
                "mac": (mac.get("address") or "").lower() if mac is not None else None,
            }
        )
    return {
        "domain": dom.name(),
        "uuid": dom.UUIDString(),
        "state": libvirt_api.domain_state(dom),
        "disks": disks,
        "interfaces": nics,
        "addresses": _addresses(dom),
    }


def adopt(vm: VmManager, dom: Any, state: str) -> dict[str, Any]:
    """Adopt ``dom``: the result of the update with the domain's own shape, plus ``adoption`` (see ``inspect``)."""
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    found = inspect(vm.conn, dom, xml)
    if not found["disks"] or found["disks"][0]["volume"] is None:
        where = found["disks"][0]["path"] if found["disks"] else "none"
        raise LibvirtVmError(
            f"cannot adopt domain {vm.name!r} on {vm.conn.getURI()}: its first disk ({where}) is not a volume of a "
            "libvirt storage pool; define a pool over its directory (virsh pool-define-as NAME dir --target DIR; "
            "virsh pool-start NAME) so that the disk can be found and kept"
        )
    disk = found["disks"][0]
    found["differences"] = differences(vm, libvirt_domain_xml.domain_fields(xml), found)
    vm.act(
        f"adopt domain {vm.name} (disk {disk['pool']}/{disk['volume']}, "
        f"{', '.join(n['mac'] or '?' for n in found['interfaces']) or 'no NIC'})"
    )
    if found["differences"]:
        vm.warn(
            f"domain {vm.name!r} is adopted as it is; it differs from the options in "
            f"{'; '.join(found['differences'])}. Nothing of that is changed now; the next run applies the options, "
            "so declare the domain's current values to keep them"
        )
    declared = (vm.p, vm.memory_mib, vm.disk_size, vm.mac)
    vm.p = {**vm.p, **dict.fromkeys(_SHAPE_OPTIONS), "seed": None}
    vm.memory_mib = vm.disk_size = vm.mac = None
    try:
        meta = {"pool": disk["pool"], "base-volume": "", "overlay-volume": disk["volume"], "seed-volume": ""}
        result = libvirt_vm_update.update(vm, dom, meta, state)
    finally:
        vm.p, vm.memory_mib, vm.disk_size, vm.mac = declared
    result["adoption"] = found
    return result


def differences(vm: VmManager, cur: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """How the domain differs from the options, one readable line each."""
    p = vm.p
    iface = vm.wanted_interface()
    declared: list[tuple[str, Any, Any]] = [
        ("domain_type", cur["domain_type"], p["domain_type"]),
        ("vcpus", cur["vcpus"], p["vcpus"]),
        ("memory", f"{cur['memory_mib']} MiB", f"{vm.memory_mib} MiB" if vm.memory_mib is not None else None),
        ("interface", f"{cur['interface_type']} {cur['interface_source']}", " ".join(iface) if iface else None),
        ("mac", cur["mac"], vm.mac),
        ("guest_agent", cur["guest_agent"], p["guest_agent"]),
    ]
    capacity = found["disks"][0]["capacity"]
    if vm.disk_size is not None and capacity is not None:
        declared.append(("disk_size", f"{capacity} bytes", f"{vm.disk_size} bytes"))
    if p["pool"] != found["disks"][0]["pool"]:
        declared.append(("pool", found["disks"][0]["pool"], p["pool"]))
    seen = [a.split("/")[0] for a in found["addresses"]]
    if p["ip_address"] and seen and p["ip_address"].split("/")[0] not in seen:
        declared.append(("address", ", ".join(seen), p["ip_address"]))
    return [f"{name}: {have} (declared {want})" for name, have, want in declared if want is not None and have != want]


def _disk(conn: Any, disk: ET.Element) -> dict[str, Any]:
    source = disk.find("source")
    target = disk.find("target")
    attrs = source.attrib if source is not None else {}
    info: dict[str, Any] = {
        "target": target.get("dev") if target is not None else None,
        "path": attrs.get("file") or attrs.get("dev"),
        "pool": attrs.get("pool"),
        "volume": attrs.get("volume"),
        "capacity": None,
    }
    vol = None
    try:
        if info["pool"] and info["volume"]:
            vol = libvirt_api.lookup_pool(conn, info["pool"]).storageVolLookupByName(info["volume"])
        elif info["path"]:
            vol = conn.storageVolLookupByPath(info["path"])
    except (libvirt.libvirtError, LibvirtVmError):
        vol = None
    if vol is not None:
        info["pool"], info["volume"] = vol.storagePoolLookupByVolume().name(), vol.name()
        info["path"] = info["path"] or vol.path()
        info["capacity"] = libvirt_volumes.volume_capacity(vol)
    return info


def _addresses(dom: Any) -> list[str]:
    """IPv4 addresses the host's ARP table shows for the running domain's NICs (none when it is not running)."""
    if not dom.isActive():
        return []
    try:
        found = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP)
    except libvirt.libvirtError:
        return []
    # The ARP source knows no prefix length (it reports 0).
    return sorted(
        f"{a['addr']}/{a['prefix']}" if a.get("prefix") else a["addr"]
        for nic in found.values()
        for a in nic.get("addrs") or []
        if a.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4
    )
