# Private to the foundation.runners collection; not a public API, may change without notice.
"""Bring an existing guest in line with the options: drift, seed, disk size, pending changes of a running domain."""

from __future__ import annotations

import io
from typing import Any

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt as lv
from ansible_collections.foundation.runners.plugins.module_utils._libvirt import LibvirtVmError

libvirt = lv.libvirt

# The domain's fields compared with the options, in the order changes are reported.
DRIFT_FIELDS = (
    "domain_type",
    "vcpus",
    "memory_mib",
    "interface_type",
    "interface_source",
    "mac",
    "guest_agent",
    "nwfilter",
)


def update(vm: Any, dom: Any, meta: dict[str, str], state: str) -> dict[str, Any]:
    p = vm.p
    old_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    cur = lv.domain_fields(old_xml)
    pool = lv.lookup_pool(vm.conn, meta.get("pool") or p["pool"])
    iface = vm.wanted_interface()
    want = dict(cur)
    if p["domain_type"] is not None:
        want["domain_type"] = p["domain_type"]
    if p["vcpus"] is not None:
        want["vcpus"] = p["vcpus"]
    if vm.memory_mib is not None:
        want["memory_mib"] = vm.memory_mib
    if iface is not None:
        want["interface_type"], want["interface_source"] = iface
    if vm.mac is not None:
        want["mac"] = vm.mac
    if p["guest_agent"] is not None:
        want["guest_agent"] = p["guest_agent"]
    if vm.nwfilter is not None:
        want["nwfilter"] = vm.nwfilter
        if lv.nwf.is_set(vm.nwfilter):
            lv.check_nwfilter(vm.conn, vm.nwfilter["name"])
    fields = [k for k in DRIFT_FIELDS if want[k] != cur[k]]
    if ("interface_type" in fields or "interface_source" in fields) and iface is not None:
        vm.check_interface(*iface)
    if "mac" in fields:
        vm.check_mac_free(want["mac"])
    _warn_base(vm, meta)
    seed_name = meta.get("seed-volume") or f"{vm.name}-seed.iso"
    seed_kept = p["seed"] == "present" or (p["seed"] is None and bool(meta.get("seed-volume")))
    spec = lv.DomainSpec(
        name=vm.name,
        domain_type=want["domain_type"],
        vcpus=want["vcpus"],
        memory_mib=want["memory_mib"],
        interface_type=want["interface_type"],
        interface_source=want["interface_source"],
        mac=want["mac"],
        pool=pool.name(),
        base_volume=meta.get("base-volume", ""),
        overlay_volume=meta.get("overlay-volume") or f"{vm.name}.qcow2",
        seed_volume=seed_name if seed_kept else None,
        guest_agent=bool(want["guest_agent"]),
        nwfilter=want["nwfilter"],
    )
    new_xml = lv.apply_fields(old_xml, spec, fields) if fields else lv.canonical_xml(old_xml)
    for f in fields:
        shown = (lv.nwf.describe(cur[f]), lv.nwf.describe(want[f])) if f == "nwfilter" else (cur[f], want[f])
        vm.act(f"set {f}: {shown[0]} -> {shown[1]}")
    active = bool(dom.isActive())
    live_xml = dom.XMLDesc(0) if active else None

    # seed
    seed_vol = lv.lookup_volume(pool, seed_name)
    cdrom_cfg = lv.find_cdrom(old_xml, seed_name) is not None
    cdrom_live = active and lv.find_cdrom(live_xml, seed_name) is not None
    instance_id = None
    seed_upload: bytes | None = None
    seed_delete = False
    if p["seed"] == "present":
        iso, instance_id = vm.build_seed(want["mac"])
        if seed_vol is None:
            seed_upload = iso
            vm.act(f"upload seed {seed_name}")
        else:
            cap = lv.volume_capacity(seed_vol)
            if cap != len(iso) or lv.download_volume(vm.conn, seed_vol, cap) != iso:
                seed_upload, seed_delete = iso, True
                vm.act(f"rewrite seed {seed_name} (content changed)")
        if not cdrom_cfg:
            vm.act(f"attach seed cdrom {seed_name}")
        new_xml = lv.set_cdrom(new_xml, pool.name(), seed_name, present=True)
    elif p["seed"] == "absent":
        if cdrom_cfg or cdrom_live:
            vm.act(f"detach seed cdrom {seed_name}")
        if seed_vol is not None:
            seed_delete = True
            vm.act(f"delete seed volume {seed_name}")
        new_xml = lv.set_cdrom(new_xml, pool.name(), seed_name, present=False)
    want_meta = lv.spec_metadata(spec)
    if lv.read_metadata(dom) != want_meta:
        new_xml = lv.set_metadata_in_xml(new_xml, want_meta)
    before = lv.canonical_xml(old_xml)
    redefine = new_xml != before
    if redefine:
        vm.diffs.append(
            {
                "before_header": f"domain {vm.name}",
                "before": before,
                "after_header": f"domain {vm.name}",
                "after": new_xml,
            }
        )
        if not any(a.startswith(("set ", "attach", "detach")) for a in vm.actions):
            vm.act("update domain metadata")

    # disk size
    overlay = lv.lookup_volume(pool, spec.overlay_volume)
    grow = None
    if vm.disk_size is not None and overlay is not None:
        cap = lv.volume_capacity(overlay)
        if vm.disk_size < cap:
            raise LibvirtVmError(
                f"disk_size {p['disk_size']} is smaller than the current disk of {vm.name!r} ({cap} bytes); "
                "shrinking is not supported"
            )
        if vm.disk_size > cap:
            grow = vm.disk_size
            fields.append("disk_size")
            vm.act(f"grow disk {spec.overlay_volume}: {cap} -> {grow} bytes")

    result: dict[str, Any] = {
        "uuid": dom.UUIDString(),
        "mac": want["mac"],
        "instance_id": instance_id,
        "volumes": {
            "pool": pool.name(),
            "base": spec.base_volume,
            "overlay": spec.overlay_volume,
            "seed": seed_name if seed_kept else None,
        },
        "changes": fields,
    }
    if not vm.check:
        if seed_upload is not None:
            if seed_delete:
                lv.delete_volume(pool, seed_name)
            vol = lv.create_volume(pool, lv.volume_xml(seed_name, len(seed_upload), "raw"), vm.rollback)
            lv.upload_volume(vm.conn, vol, io.BytesIO(seed_upload), len(seed_upload))
            lv.fault_point("after_seed_upload")
        if redefine:
            try:
                vm.conn.defineXML(new_xml)
            except libvirt.libvirtError as exc:
                raise LibvirtVmError(f"cannot redefine domain {vm.name!r}: {lv.err(exc)}") from exc
            vm.rollback.add(f"restore definition of domain {vm.name}", lambda: vm.conn.defineXML(old_xml))
            lv.fault_point("after_define")
            if active and meta != want_meta:
                lv.write_metadata(dom, want_meta, live_only=True)  # so the live XML names no removed seed
        if p["seed"] == "present" and active and not cdrom_live:
            _device(vm, dom, "attach", lv.cdrom_xml(pool.name(), seed_name))
        if p["seed"] == "absent":
            if cdrom_live:
                _device(vm, dom, "detach", lv.find_cdrom(live_xml, seed_name))
            if seed_delete:
                lv.delete_volume(pool, seed_name)
        if grow is not None:
            _grow(vm, dom, overlay, grow, active)
    # pending changes for the running domain
    pending: list[str] = []
    if active:
        live = lv.domain_fields(live_xml)
        pending = [k for k in DRIFT_FIELDS if live[k] != want[k]]
        if "nwfilter" in pending and _live_nwfilter(vm, dom, live_xml, want["nwfilter"]):
            pending.remove("nwfilter")
    result["pending"] = pending
    result["restart_required"] = False
    if pending and state in ("running", "present"):
        if p["restart_on_change"]:
            vm.act(f"restart domain {vm.name} to apply {', '.join(pending)}")
            if not vm.check:
                lv.shutdown(dom, p["shutdown_timeout"], p["force"])
                lv.start(dom)
            result["pending"] = []
        else:
            result["restart_required"] = True
    return result


def _live_nwfilter(vm: Any, dom: Any, live_xml: str, want: dict[str, Any]) -> bool:
    """Apply a network filter change to the running domain's NIC; False when libvirt refuses it live."""
    vm.act(f"apply nwfilter {lv.nwf.describe(want)} to the running domain")
    if vm.check:
        return True
    refusal = lv.set_live_nwfilter(dom, live_xml, want)
    if refusal is not None:
        vm.warn(f"the running domain {vm.name!r} keeps its old network filter until its next boot: {refusal}")
        return False
    return True


def _device(vm: Any, dom: Any, op: str, xml: str) -> None:
    try:
        if op == "attach":
            dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        else:
            dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot {op} the seed cdrom of running domain {vm.name!r}: {lv.err(exc)}") from exc


def _grow(vm: Any, dom: Any, overlay: Any, size: int, active: bool) -> None:
    try:
        if active:
            dom.blockResize("vda", size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        else:
            overlay.resize(size, 0)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot grow the disk of domain {vm.name!r} to {size} bytes: {lv.err(exc)}") from exc


def _warn_base(vm: Any, meta: dict[str, str]) -> None:
    p = vm.p
    wanted = p["base_volume"] or (f"base-sha256-{vm.checksum[:16]}" if vm.checksum else None)
    if wanted and meta.get("base-volume") and wanted != meta["base-volume"]:
        vm.warn(
            f"domain {vm.name!r} was built on base volume {meta['base-volume']!r}, not {wanted!r}; its disk is "
            "kept as it is (use state=absent first to rebuild it on the new image)"
        )
