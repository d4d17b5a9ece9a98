# Private to the foundation.runners collection; not a public API, may change without notice.
"""Create and remove a guest so that a run interrupted at any point is finished or cleaned up by the next one.

Intent comes first: the domain is defined, inactive, carrying metadata with ``phase=creating`` and the names
of its volumes, before any volume is created; those names were free just before. A volume named in such a
record is therefore the module's own. The record is removed (``phase`` dropped) only when every volume is
complete, and on removal it is the last thing to go. Volumes without any domain are touched only when their
content proves them the module's own (see ``prove_own``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ansible_collections.foundation.runners.plugins.module_utils import _cloudinit_seed as cloudinit_seed
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_base_image as libvirt_base_image
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_nwfilter as libvirt_nwfilter
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError

if TYPE_CHECKING:
    from ansible_collections.foundation.runners.plugins.module_utils._libvirt_vm import VmManager

libvirt = libvirt_api.libvirt


# ---------------------------------------------------------------------------- ownership of volumes without domain


def prove_own(vm: VmManager, pool: Any, vol: Any, instance_id: str) -> str | None:
    """None when ``vol`` is provably a leftover of this module for this VM, else what it is instead."""
    overlay_name, seed_name = libvirt_domain_xml.volume_names(vm.name)
    if vol.name() == overlay_name:
        backing = libvirt_volumes.volume_backing(vol)
        fmt = libvirt_volumes.volume_format(vol)
        base_vol = _volume_by_path(pool, backing) if backing else None
        wanted = {vm.p["base_volume"]} if vm.p["base_volume"] else None
        if fmt == "qcow2" and base_vol is not None:
            if (wanted and base_vol.name() in wanted) or (
                not wanted and base_vol.name().startswith(libvirt_volumes.BASE_PREFIX)
            ):
                return None
        return f"has format {fmt} and backing store {backing or 'none'}"
    if vol.name() == seed_name:
        data = libvirt_volumes.download_volume(vm.conn, vol, libvirt_volumes.volume_capacity(vol))
        label, found = cloudinit_seed.read_seed_identity(data)
        if label == cloudinit_seed.VOLUME_LABEL and found == instance_id:
            return None
        return f"has volume label {label or 'none'} and instance-id {found or 'none'}"
    return "is not named like a volume of this VM"


def _volume_by_path(pool: Any, path: str) -> Any | None:
    for vol in pool.listAllVolumes(0):
        if vol.path() == path:
            return vol
    return None


def refusal(vm: VmManager, pool: Any, name: str, instance_id: str, what: str) -> str:
    overlay_name, _unused = libvirt_domain_xml.volume_names(vm.name)
    if name == overlay_name:
        own = (
            f"a qcow2 overlay backed by a {libvirt_volumes.BASE_PREFIX}* volume (or base_volume) "
            f"of pool {pool.name()!r}"
        )
    else:
        own = f"an ISO labelled {cloudinit_seed.VOLUME_LABEL} whose meta-data has instance-id {instance_id!r}"
    return (
        f"volume {name!r} already exists in pool {pool.name()!r} but domain {vm.name!r} does not, and it cannot be "
        f"proven to be this module's own, so it is left alone: a leftover of this module for {vm.name!r} is {own}; "
        f"this one {what}. Compare with `virsh vol-dumpxml {name} --pool {pool.name()}`; if it is not needed, remove "
        f"it with `virsh vol-delete {name} --pool {pool.name()}`, otherwise choose another name"
    )


def claim_leftovers(vm: VmManager, pool: Any, names: list[str], instance_id: str) -> list[str]:
    """Names in ``names`` that exist without a domain and are provably this module's; refuses any other."""
    own = []
    for name in names:
        vol = libvirt_volumes.lookup_volume(pool, name)
        if vol is None:
            continue
        what = prove_own(vm, pool, vol, instance_id)
        if what is not None:
            raise LibvirtVmError(refusal(vm, pool, name, instance_id, what))
        own.append(name)
    return own


def default_instance_id(vm: VmManager) -> str:
    return vm.p["instance_id"] or cloudinit_seed.derive_instance_id(vm.name)


# ---------------------------------------------------------------------------- create


@dataclass
class CreatePlan:
    """A new domain and its volumes, found without changing anything."""

    spec: libvirt_domain_xml.DomainSpec
    pool: Any
    base: libvirt_base_image.BasePlan
    capacity: int
    iso: bytes
    leftovers: list[str]
    result: dict[str, Any]


def create(vm: VmManager, state: str, replacing: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Create the domain and its volumes; ``replacing`` names volumes a check-mode resume would delete first."""
    plan = plan_create(vm, state, replacing)
    if not vm.check:
        apply_create(vm, plan, state)
    return plan.result


def plan_create(vm: VmManager, state: str, replacing: frozenset[str]) -> CreatePlan:
    p = vm.p
    iface = vm.wanted_interface()
    if iface is None:
        raise LibvirtVmError(f"creating domain {vm.name!r} needs bridge or network")
    pool = libvirt_api.lookup_pool(vm.conn, p["pool"])
    vm.check_interface(*iface)
    mac = vm.mac or cloudinit_seed.derive_mac(vm.name)
    vm.check_mac_free(mac)
    if libvirt_nwfilter.is_set(vm.nwfilter):
        libvirt_api.check_nwfilter(vm.conn, vm.nwfilter["name"])
    overlay_name, seed_name = libvirt_domain_xml.volume_names(vm.name)
    seeded = p["seed"] != "absent"
    iso, instance_id = vm.build_seed(mac) if seeded else (b"", None)
    names = [n for n in (overlay_name, seed_name if seeded else None) if n and n not in replacing]
    leftovers = claim_leftovers(vm, pool, names, instance_id or default_instance_id(vm))
    base = libvirt_base_image.plan_base(vm, pool, replacing)
    capacity = base.virtual_size
    if vm.disk_size is not None:
        if base.virtual_size and vm.disk_size < base.virtual_size:
            raise LibvirtVmError(
                f"disk_size {p['disk_size']} is smaller than the base image's virtual size ({base.virtual_size} bytes)"
            )
        capacity = vm.disk_size
    spec = libvirt_domain_xml.DomainSpec(
        name=vm.name,
        domain_type=p["domain_type"] or "kvm",
        vcpus=p["vcpus"] or 1,
        memory_mib=vm.memory_mib or 1024,
        interface_type=iface[0],
        interface_source=iface[1],
        mac=mac,
        pool=pool.name(),
        base_volume=base.name,
        overlay_volume=overlay_name,
        seed_volume=seed_name if seeded else None,
        guest_agent=bool(p["guest_agent"]),
        nwfilter=vm.nwfilter,
    )
    result = {
        "uuid": None,
        "mac": mac,
        "instance_id": instance_id,
        "volumes": {"pool": spec.pool, "base": base.name, "overlay": overlay_name, "seed": spec.seed_volume},
        "changes": ["domain"],
        "state": "running" if state == "running" else "shutoff",
    }
    plan = CreatePlan(spec, pool, base, capacity, iso, leftovers, result)
    _report_create(vm, plan, state)
    return plan


def _report_create(vm: VmManager, plan: CreatePlan, state: str) -> None:
    xml = libvirt_domain_xml.render_domain_xml(plan.spec)
    vm.diffs.append(
        {"before_header": f"domain {vm.name} (absent)", "before": "", "after_header": f"domain {vm.name}", "after": xml}
    )
    vm.act(f"define domain {vm.name} (creation under way)")
    for name in plan.leftovers:
        vm.act(f"replace leftover volume {name} of an interrupted run")
    if plan.base.source:
        vm.act(f"import base volume {plan.base.name} from {vm.p['base_image']}")
    vm.act(f"create overlay {plan.spec.overlay_volume} on {plan.base.name}")
    if plan.spec.seed_volume:
        vm.act(f"upload seed {plan.spec.seed_volume}")
    if state == "running":
        vm.act(f"start domain {vm.name}")


def apply_create(vm: VmManager, plan: CreatePlan, state: str) -> None:
    """Define the domain first (the record of intent), then make its volumes, each step undone on failure."""
    spec, pool, base = plan.spec, plan.pool, plan.base
    intent = {"phase": libvirt_domain_xml.PHASE_CREATING, "base-import": base.sha256 if base.source else ""}
    dom = define(vm, libvirt_domain_xml.render_domain_xml(spec, intent))
    vm.rollback.add(f"undefine domain {vm.name}", lambda: undefine(dom))
    libvirt_api.fault_point("after_define")
    for name in plan.leftovers:
        libvirt_volumes.delete_volume(pool, name)
    if base.source:
        libvirt_base_image.import_base(vm, pool, base)
    overlay_xml = libvirt_volumes.volume_xml(spec.overlay_volume, plan.capacity, "qcow2", base.path, base.format)
    libvirt_volumes.create_volume(pool, overlay_xml, vm.rollback)
    libvirt_api.fault_point("after_overlay_create")
    if spec.seed_volume:
        seed_xml = libvirt_volumes.volume_xml(spec.seed_volume, len(plan.iso), "raw")
        seed_vol = libvirt_volumes.create_volume(pool, seed_xml, vm.rollback)
        libvirt_volumes.upload_volume(vm.conn, seed_vol, io.BytesIO(plan.iso), len(plan.iso))
        libvirt_api.fault_point("after_seed_upload")
    if state == "running":
        libvirt_api.start(dom)
        vm.rollback.add(f"power off domain {vm.name}", dom.destroy)
        libvirt_api.fault_point("after_start")
    # creation complete
    libvirt_api.write_metadata(dom, libvirt_domain_xml.spec_metadata(spec), live_too=bool(dom.isActive()))
    if vm.p["autostart"]:
        dom.setAutostart(1)
    plan.result["uuid"] = dom.UUIDString()
    plan.result["state"] = libvirt_api.domain_state(dom)


def define(vm: VmManager, xml: str) -> Any:
    try:
        return vm.conn.defineXML(xml)
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot define domain {vm.name!r} on {vm.conn.getURI()}: {libvirt_api.err(exc)}") from exc


def undefine(dom: Any) -> None:
    flags = (
        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    )
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError:
        dom.undefine()


# ---------------------------------------------------------------------------- an interrupted creation


def resume(vm: VmManager, dom: Any, meta: dict[str, str], state: str) -> dict[str, Any] | None:
    """Finish a creation that was interrupted; None when the domain is kept and only its record completed."""
    if dom.isActive():
        # started, so every volume was complete: only the record is missing
        vm.act(f"complete the interrupted creation of domain {vm.name}")
        if not vm.check:
            libvirt_api.write_metadata(dom, libvirt_domain_xml.completed(meta), live_too=True)
        return None
    # never started: nothing in its volumes is worth keeping, so build it again from the current options
    replaced = discard(vm, dom, meta, f"discard the interrupted creation of domain {vm.name}")
    return create(vm, state, replacing=frozenset(replaced))


def discard(vm: VmManager, dom: Any, meta: dict[str, str], what: str) -> list[str]:
    """Remove a domain and the volumes its record names (and a base import it left broken); returns their names.

    The volumes go first and the domain last, so an interruption here leaves the record for the next run.
    """
    pool = None
    try:
        pool = libvirt_api.lookup_pool(vm.conn, meta.get("pool") or vm.p["pool"])
    except LibvirtVmError as exc:
        vm.warn(f"{exc}; the volumes of domain {vm.name!r} cannot be removed")
    names = [v for v in (meta.get("overlay-volume"), meta.get("seed-volume")) if v]
    names = [v for v in names if pool is not None and libvirt_volumes.lookup_volume(pool, v) is not None]
    sha = meta.get("base-import")
    if pool is not None and sha and meta.get("base-volume"):
        if libvirt_base_image.import_is_intact(vm, pool, meta["base-volume"], sha) is False:
            names.append(meta["base-volume"])
    active = bool(dom.isActive())
    if active:
        vm.act(f"power off domain {vm.name}")
    vm.act(what)
    for name in names:
        vm.act(f"delete volume {name}")
    if not vm.check:
        try:
            if active:
                dom.destroy()
            for name in names:
                libvirt_volumes.delete_volume(pool, name)
            undefine(dom)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot remove domain {vm.name!r}: {libvirt_api.err(exc)}") from exc
    return names


# ---------------------------------------------------------------------------- remove


def remove(vm: VmManager, dom: Any, meta: dict[str, str]) -> dict[str, Any]:
    vm.diffs.append(
        {
            "before_header": f"domain {vm.name}",
            "before": libvirt_domain_xml.canonical_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)),
            "after_header": f"domain {vm.name} (absent)",
            "after": "",
        }
    )
    uuid = dom.UUIDString()
    discard(vm, dom, meta, f"undefine domain {vm.name}")
    volumes = {
        "pool": meta.get("pool") or None,
        "overlay": meta.get("overlay-volume") or None,
        "seed": meta.get("seed-volume") or None,
        "base": meta.get("base-volume") or None,
    }
    return {"uuid": uuid, "state": "absent", "volumes": volumes, "changes": ["domain"]}


def remove_leftovers(vm: VmManager) -> dict[str, Any]:
    """No domain: delete the volumes of this VM that are provably the module's own, warn about the others."""
    result: dict[str, Any] = {"uuid": None, "state": "absent", "changes": []}
    try:
        pool = libvirt_api.lookup_pool(vm.conn, vm.p["pool"])
    except LibvirtVmError:
        return result
    instance_id = default_instance_id(vm)
    for name in libvirt_domain_xml.volume_names(vm.name):
        vol = libvirt_volumes.lookup_volume(pool, name)
        if vol is None:
            continue
        what = prove_own(vm, pool, vol, instance_id)
        if what is not None:
            vm.warn(refusal(vm, pool, name, instance_id, what))
            continue
        vm.act(f"delete leftover volume {name} of an interrupted run")
        result["changes"] = ["volumes"]
        if not vm.check:
            libvirt_volumes.delete_volume(pool, name)
    return result
