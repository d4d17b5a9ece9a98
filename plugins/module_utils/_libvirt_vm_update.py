# Private to the foundation.runners collection; not a public API, may change without notice.
"""Bring an existing guest in line with the options: drift, seed, disk size, pending changes of a running domain."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_nwfilter as libvirt_nwfilter
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError

if TYPE_CHECKING:
    from ansible_collections.foundation.runners.plugins.module_utils._libvirt_vm import VmManager

libvirt = libvirt_api.libvirt


@dataclass
class UpdatePlan:
    """What bringing one domain in line takes, found without changing anything."""

    dom: Any
    pool: Any
    spec: libvirt_domain_xml.DomainSpec
    meta: dict[str, str]
    want_meta: dict[str, str]
    old_xml: str
    before_xml: str  # old_xml as apply_fields serialises it, for the comparison and the diff
    new_xml: str
    live_xml: str | None
    seed_name: str
    seed_upload: bytes | None = None
    seed_delete: bool = False
    seed_attach_live: bool = False
    seed_detach_live: bool = False
    overlay: Any = None
    grow: int | None = None
    live_nwfilter: dict[str, Any] | None = None
    restart: bool = False
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def redefine(self) -> bool:
        return self.new_xml != self.before_xml


def update(vm: VmManager, dom: Any, meta: dict[str, str], state: str) -> dict[str, Any]:
    """Bring a domain the collection manages in line with the options; returns the module's result fields."""
    plan = plan_update(vm, dom, meta, state)
    apply_update(vm, plan, state)
    return plan.result


def plan_update(vm: VmManager, dom: Any, meta: dict[str, str], state: str) -> UpdatePlan:
    """Compare the domain with the options and record each action, without changing anything."""
    old_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    cur = libvirt_domain_xml.domain_fields(old_xml)
    pool = libvirt_api.lookup_pool(vm.conn, meta.get("pool") or vm.p["pool"])
    want = _wanted_fields(vm, cur)
    fields = [k for k in libvirt_domain_xml.DOMAIN_FIELDS if want[k] != cur[k]]
    if {"interface_type", "interface_source"} & set(fields):
        vm.check_interface(want["interface_type"], want["interface_source"])
    if "mac" in fields:
        vm.check_mac_free(want["mac"])
    _warn_base(vm, meta)
    seed_name = meta.get("seed-volume") or libvirt_domain_xml.volume_names(vm.name)[1]
    seed_kept = vm.p["seed"] == "present" or (vm.p["seed"] is None and bool(meta.get("seed-volume")))
    spec = libvirt_domain_xml.DomainSpec(
        name=vm.name,
        pool=pool.name(),
        base_volume=meta.get("base-volume", ""),
        overlay_volume=meta.get("overlay-volume") or libvirt_domain_xml.volume_names(vm.name)[0],
        seed_volume=seed_name if seed_kept else None,
        **{k: want[k] for k in libvirt_domain_xml.DOMAIN_FIELDS},
    )
    for f in fields:
        shown = (
            (libvirt_nwfilter.describe(cur[f]), libvirt_nwfilter.describe(want[f]))
            if f == "nwfilter"
            else (cur[f], want[f])
        )
        vm.act(f"set {f}: {shown[0]} -> {shown[1]}")
    before_xml = libvirt_domain_xml.canonical_xml(old_xml)
    new_xml = libvirt_domain_xml.apply_fields(old_xml, spec, fields) if fields else before_xml
    plan = UpdatePlan(
        dom=dom,
        pool=pool,
        spec=spec,
        meta=meta,
        want_meta=libvirt_domain_xml.spec_metadata(spec),
        old_xml=old_xml,
        before_xml=before_xml,
        new_xml=new_xml,
        live_xml=dom.XMLDesc(0) if dom.isActive() else None,
        seed_name=seed_name,
    )
    instance_id = _plan_seed(vm, plan, want["mac"])
    _plan_definition(vm, plan)
    _plan_disk(vm, plan, fields)
    plan.result = {
        "uuid": dom.UUIDString(),
        "mac": want["mac"],
        "instance_id": instance_id,
        "volumes": {
            "pool": pool.name(),
            "base": spec.base_volume,
            "overlay": spec.overlay_volume,
            "seed": seed_name if seed_kept or _seed_left(vm, plan) else None,
        },
        "changes": fields,
    }
    _plan_running(vm, plan, want, state)
    return plan


def _seed_left(vm: VmManager, plan: UpdatePlan) -> bool:
    """Without a ``seed`` option: whether a seed volume or cdrom is still there (an interrupted removal leaves the
    volume after the definition), so that a caller can skip a removal only where nothing is left."""
    if vm.p["seed"] is not None:
        return False
    found = libvirt_volumes.lookup_volume(plan.pool, plan.seed_name) is not None
    return found or libvirt_domain_xml.find_cdrom(plan.old_xml, plan.seed_name) is not None


def _wanted_fields(vm: VmManager, cur: dict[str, Any]) -> dict[str, Any]:
    """The domain's fields as the options want them; a field the options leave unset keeps its value."""
    p = vm.p
    given = {
        "domain_type": p["domain_type"],
        "vcpus": p["vcpus"],
        "memory_mib": vm.memory_mib,
        "mac": vm.mac,
        "guest_agent": p["guest_agent"],
        "nwfilter": vm.nwfilter,
    }
    iface = vm.wanted_interface()
    if iface is not None:
        given["interface_type"], given["interface_source"] = iface
    if libvirt_nwfilter.is_set(vm.nwfilter):
        libvirt_api.check_nwfilter(vm.conn, vm.nwfilter["name"])
    return {**cur, **{k: v for k, v in given.items() if v is not None}}


def _plan_seed(vm: VmManager, plan: UpdatePlan, mac: str) -> str | None:
    """The seed volume and its cdrom as the ``seed`` option wants them; returns the seed's instance-id."""
    seed = vm.p["seed"]
    seed_vol = libvirt_volumes.lookup_volume(plan.pool, plan.seed_name)
    cdrom_cfg = libvirt_domain_xml.find_cdrom(plan.old_xml, plan.seed_name) is not None
    cdrom_live = plan.live_xml is not None and libvirt_domain_xml.find_cdrom(plan.live_xml, plan.seed_name) is not None
    instance_id = None
    if seed == "present":
        iso, instance_id = vm.build_seed(mac)
        if seed_vol is None:
            plan.seed_upload = iso
            vm.act(f"upload seed {plan.seed_name}")
        else:
            cap = libvirt_volumes.volume_capacity(seed_vol)
            if cap != len(iso) or libvirt_volumes.download_volume(vm.conn, seed_vol, cap) != iso:
                plan.seed_upload, plan.seed_delete = iso, True
                vm.act(f"rewrite seed {plan.seed_name} (content changed)")
        if not cdrom_cfg:
            vm.act(f"attach seed cdrom {plan.seed_name}")
        plan.seed_attach_live = plan.live_xml is not None and not cdrom_live
    elif seed == "absent":
        if cdrom_cfg or cdrom_live:
            vm.act(f"detach seed cdrom {plan.seed_name}")
        if seed_vol is not None:
            plan.seed_delete = True
            vm.act(f"delete seed volume {plan.seed_name}")
        plan.seed_detach_live = cdrom_live
    if seed is not None:
        plan.new_xml = libvirt_domain_xml.set_cdrom(plan.new_xml, plan.pool.name(), plan.seed_name, seed == "present")
    return instance_id


def _plan_definition(vm: VmManager, plan: UpdatePlan) -> None:
    """The new persistent definition: the fields, the seed cdrom and the metadata; its diff."""
    if libvirt_api.read_metadata(plan.dom) != plan.want_meta:
        plan.new_xml = libvirt_domain_xml.set_metadata_in_xml(plan.new_xml, plan.want_meta)
    if not plan.redefine:
        return
    vm.diffs.append(
        {
            "before_header": f"domain {vm.name}",
            "before": plan.before_xml,
            "after_header": f"domain {vm.name}",
            "after": plan.new_xml,
        }
    )
    if not any(a.startswith(("set ", "attach", "detach")) for a in vm.actions):
        vm.act("update domain metadata")


def _plan_disk(vm: VmManager, plan: UpdatePlan, fields: list[str]) -> None:
    """A larger disk_size grows the overlay; a smaller one is refused."""
    plan.overlay = libvirt_volumes.lookup_volume(plan.pool, plan.spec.overlay_volume)
    if vm.disk_size is None or plan.overlay is None:
        return
    cap = libvirt_volumes.volume_capacity(plan.overlay)
    if vm.disk_size < cap:
        raise LibvirtVmError(
            f"disk_size {vm.p['disk_size']} is smaller than the current disk of {vm.name!r} ({cap} bytes); "
            "shrinking is not supported"
        )
    if vm.disk_size > cap:
        plan.grow = vm.disk_size
        fields.append("disk_size")
        vm.act(f"grow disk {plan.spec.overlay_volume}: {cap} -> {plan.grow} bytes")


def _plan_running(vm: VmManager, plan: UpdatePlan, want: dict[str, Any], state: str) -> None:
    """What the running domain still lacks after the redefinition: applied live, by a restart, or reported."""
    pending: list[str] = []
    if plan.live_xml is not None:
        live = libvirt_domain_xml.domain_fields(plan.live_xml)
        pending = [k for k in libvirt_domain_xml.DOMAIN_FIELDS if live[k] != want[k]]
        if "nwfilter" in pending:  # applied to the running NIC; libvirt may still refuse it (see apply_update)
            vm.act(f"apply nwfilter {libvirt_nwfilter.describe(want['nwfilter'])} to the running domain")
            plan.live_nwfilter = want["nwfilter"]
            pending.remove("nwfilter")
    _settle_pending(vm, plan, pending, state)


def _settle_pending(vm: VmManager, plan: UpdatePlan, pending: list[str], state: str) -> None:
    plan.result["pending"] = pending
    plan.result["restart_required"] = False
    if not pending or state not in ("running", "present"):
        return
    if vm.p["restart_on_change"]:
        vm.act(f"restart domain {vm.name} to apply {', '.join(pending)}")
        plan.restart = True
        plan.result["pending"] = []
    else:
        plan.result["restart_required"] = True


def apply_update(vm: VmManager, plan: UpdatePlan, state: str) -> None:
    """Carry out a plan; in check mode, nothing."""
    if vm.check:
        return
    dom, pool = plan.dom, plan.pool
    if plan.seed_upload is not None:
        if plan.seed_delete:
            libvirt_volumes.delete_volume(pool, plan.seed_name)
        xml = libvirt_volumes.volume_xml(plan.seed_name, len(plan.seed_upload), "raw")
        vol = libvirt_volumes.create_volume(pool, xml, vm.rollback)
        libvirt_volumes.upload_volume(vm.conn, vol, io.BytesIO(plan.seed_upload), len(plan.seed_upload))
        libvirt_api.fault_point("after_seed_upload")
    if plan.redefine:
        try:
            vm.conn.defineXML(plan.new_xml)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot redefine domain {vm.name!r}: {libvirt_api.err(exc)}") from exc
        vm.rollback.add(f"restore definition of domain {vm.name}", lambda: vm.conn.defineXML(plan.old_xml))
        libvirt_api.fault_point("after_define")
        if plan.live_xml is not None and plan.meta != plan.want_meta:
            libvirt_api.write_metadata(dom, plan.want_meta, live_only=True)  # so the live XML names no removed seed
    if plan.seed_attach_live:
        _device(vm, dom, "attach", libvirt_domain_xml.cdrom_xml(pool.name(), plan.seed_name))
    if plan.seed_detach_live:
        _device(vm, dom, "detach", libvirt_domain_xml.find_cdrom(plan.live_xml, plan.seed_name))
    if plan.seed_delete and plan.seed_upload is None:
        libvirt_volumes.delete_volume(pool, plan.seed_name)
    if plan.grow is not None:
        _grow(vm, dom, plan.overlay, plan.grow, plan.live_xml is not None)
    if plan.live_nwfilter is not None:
        refusal = libvirt_api.set_live_nwfilter(dom, plan.live_xml, plan.live_nwfilter)
        if refusal is not None:
            vm.warn(f"the running domain {vm.name!r} keeps its old network filter until its next boot: {refusal}")
            if not plan.restart:
                _settle_pending(vm, plan, [*plan.result["pending"], "nwfilter"], state)
    if plan.restart:
        libvirt_api.shutdown(dom, vm.p["shutdown_timeout"], vm.p["force"])
        libvirt_api.start(dom)


def _device(vm: VmManager, dom: Any, op: str, xml: str) -> None:
    try:
        if op == "attach":
            dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        else:
            dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(
            f"cannot {op} the seed cdrom of running domain {vm.name!r}: {libvirt_api.err(exc)}"
        ) from exc


def _grow(vm: VmManager, dom: Any, overlay: Any, size: int, active: bool) -> None:
    try:
        if active:
            dom.blockResize("vda", size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        else:
            overlay.resize(size, 0)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(
            f"cannot grow the disk of domain {vm.name!r} to {size} bytes: {libvirt_api.err(exc)}"
        ) from exc


def _warn_base(vm: VmManager, meta: dict[str, str]) -> None:
    p = vm.p
    wanted = p["base_volume"] or (libvirt_volumes.base_volume_name(vm.checksum) if vm.checksum else None)
    if wanted and meta.get("base-volume") and wanted != meta["base-volume"]:
        vm.warn(
            f"domain {vm.name!r} was built on base volume {meta['base-volume']!r}, not {wanted!r}; its disk is "
            "kept as it is (use state=absent first to rebuild it on the new image)"
        )
