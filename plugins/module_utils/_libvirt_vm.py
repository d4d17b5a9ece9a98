# Private to the foundation.runners collection; not a public API, may change without notice.
"""Reconcile a libvirt guest built from a cloud image: base volume, qcow2 overlay, NoCloud seed, domain, power."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.foundation.runners.plugins.module_utils import _cloudinit_seed as seedlib
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt as lv
from ansible_collections.foundation.runners.plugins.module_utils._libvirt import LibvirtVmError

libvirt = lv.libvirt


@dataclass
class VmOptions:
    """Option values parsed and validated by the module."""

    memory_mib: int | None = None
    disk_size: int | None = None
    mac: str | None = None
    checksum: str | None = None
    image_is_url: bool = False


class VmManager:
    """Compares a domain and its volumes with the module's options and reconciles them.

    ``params`` are the module's options. ``fetch`` opens the https base image and returns (response or None,
    info with ``status`` and ``msg``) like Ansible's fetch_url, ``tmpdir`` returns a directory for the
    downloaded image, and ``warn`` reports a warning.
    """

    def __init__(
        self,
        params: dict[str, Any],
        check_mode: bool,
        fetch: Callable[[str], tuple[Any, dict[str, Any]]],
        tmpdir: Callable[[], str],
        warn: Callable[[str], None],
    ) -> None:
        self.p = params
        self.check = check_mode
        self.fetch = fetch
        self.tmpdir = tmpdir
        self.warn = warn
        self.rollback = lv.Rollback()
        self.actions: list[str] = []
        self.diffs: list[dict[str, str]] = []
        self.conn: Any = None
        self.name: str = self.p["name"]
        self.memory_mib: int | None = None
        self.disk_size: int | None = None
        self.mac: str | None = None
        self.checksum: str | None = None
        self.image_is_url = False

    # ------------------------------------------------------------------ helpers

    def act(self, text: str) -> None:
        self.actions.append(text)

    def build_seed(self, mac: str) -> tuple[bytes, str]:
        p = self.p
        network_config = p["network_config"]
        if network_config is None and p["ip_address"]:
            network_config = seedlib.static_network_config(mac, p["ip_address"], p["gateway"], p["nameservers"])
        try:
            iso, md = seedlib.build_seed(
                self.name,
                p["user_data"],
                p["meta_data"],
                network_config,
                p["instance_id"],
                keep_instance=p["keep_instance"],
            )
        except seedlib.SeedError as exc:
            raise LibvirtVmError(f"cannot build the cloud-init seed for {self.name}: {exc}") from exc
        return iso, md["instance-id"]

    def check_interface(self, itype: str, source: str) -> None:
        if itype == "bridge":
            found = lv.bridge_exists(self.conn, source)
            if found is False:
                raise LibvirtVmError(
                    f"bridge {source!r} not found on {self.conn.getURI()} (neither libvirt's interface nor "
                    "node-device API lists it)"
                )
        else:
            net = lv.lookup_network(self.conn, source)
            if not net.isActive():
                raise LibvirtVmError(f"libvirt network {source!r} on {self.conn.getURI()} is not active")

    def check_mac_free(self, mac: str) -> None:
        used = lv.macs_in_use(self.conn, exclude=self.name)
        if mac in used:
            raise LibvirtVmError(f"mac {mac} is already used by domain {used[mac]!r} on {self.conn.getURI()}")

    def wanted_interface(self) -> tuple[str, str] | None:
        if self.p["bridge"]:
            return "bridge", self.p["bridge"]
        if self.p["network"]:
            return "network", self.p["network"]
        return None

    # ------------------------------------------------------------------ base image

    def download(self, url: str) -> str:
        """Download url to the temporary directory, verify its checksum and return the file's path."""
        fd, path = tempfile.mkstemp(prefix="base-", suffix=".img", dir=self.tmpdir())
        digest = hashlib.sha256()
        resp, info = self.fetch(url)
        if resp is None or info.get("status") != 200:
            os.close(fd)
            raise LibvirtVmError(f"download of base_image {url} failed: [{info.get('status')}] {info.get('msg')}")
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: resp.read(lv.STREAM_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != self.checksum:
            raise LibvirtVmError(
                f"checksum mismatch for base_image {url}: "
                f"expected sha256:{self.checksum}, got sha256:{digest.hexdigest()}"
            )
        return path

    def ensure_base(self, pool: Any) -> tuple[str, str, int, str | None]:
        """Return (volume name, format, virtual size, path) of the base volume, importing it when missing."""
        p = self.p
        image = p["base_image"]
        name = p["base_volume"]
        local_info = None
        if name is None:
            if not image:
                raise LibvirtVmError(f"creating domain {self.name!r} needs base_image (or an existing base_volume)")
            if self.image_is_url:
                sha = self.checksum
            else:
                local_info = lv.inspect_image(image)
                sha = lv.sha256_file(image)
                if self.checksum and sha != self.checksum:
                    raise LibvirtVmError(
                        f"checksum mismatch for base_image {image}: expected sha256:{self.checksum}, got sha256:{sha}"
                    )
            name = f"base-sha256-{sha[:16]}"
        vol = lv.lookup_volume(pool, name)
        if vol is not None:
            fmt = lv.volume_format(vol)
            return name, fmt, lv.volume_capacity(vol), vol.path()
        if not image:
            raise LibvirtVmError(
                f"base_volume {name!r} does not exist in pool {pool.name()!r} and base_image is not given"
            )
        # check mode prepares the image as the real run does (download, checksum, inspection) and stops
        # before the upload, so it fails where the real run would
        path = image
        if self.image_is_url:
            path = self.download(image)
            local_info = lv.inspect_image(path)
        elif local_info is None:
            local_info = lv.inspect_image(path)
            if self.checksum and lv.sha256_file(path) != self.checksum:
                raise LibvirtVmError(f"checksum mismatch for base_image {image}: expected sha256:{self.checksum}")
        if self.check:
            self.act(f"import base volume {name} from {image}")
            return name, local_info.format, local_info.virtual_size, None
        vol = lv.create_volume(pool, lv.volume_xml(name, local_info.file_size, "raw"), self.rollback)
        with open(path, "rb") as src:
            lv.upload_volume(self.conn, vol, src, local_info.file_size)
        self.act(f"import base volume {name} from {image}")
        try:
            pool.refresh(0)
        except libvirt.libvirtError:
            pass
        lv.fault_point("after_base_import")
        return name, local_info.format, local_info.virtual_size, vol.path()

    # ------------------------------------------------------------------ create

    def create(self, state: str) -> dict[str, Any]:
        p = self.p
        iface = self.wanted_interface()
        if iface is None:
            raise LibvirtVmError(f"creating domain {self.name!r} needs bridge or network")
        pool = lv.lookup_pool(self.conn, p["pool"])
        self.check_interface(*iface)
        mac = self.mac or seedlib.derive_mac(self.name)
        self.check_mac_free(mac)
        overlay_name = f"{self.name}.qcow2"
        seed_name = f"{self.name}-seed.iso" if p["seed"] != "absent" else None
        for vname in filter(None, (overlay_name, seed_name)):
            if lv.lookup_volume(pool, vname) is not None:
                raise LibvirtVmError(
                    f"volume {vname!r} already exists in pool {pool.name()!r} but domain {self.name!r} does not; "
                    "it was not created by this module for this domain, remove it first"
                )
        iso, instance_id = self.build_seed(mac) if seed_name else (b"", None)
        base_name, base_fmt, base_size, base_path = self.ensure_base(pool)
        capacity = base_size
        if self.disk_size is not None:
            if base_size and self.disk_size < base_size:
                raise LibvirtVmError(
                    f"disk_size {p['disk_size']} is smaller than the base image's virtual size ({base_size} bytes)"
                )
            capacity = self.disk_size
        spec = lv.DomainSpec(
            name=self.name,
            domain_type=p["domain_type"] or "kvm",
            vcpus=p["vcpus"] or 1,
            memory_mib=self.memory_mib or 1024,
            interface_type=iface[0],
            interface_source=iface[1],
            mac=mac,
            pool=pool.name(),
            base_volume=base_name,
            overlay_volume=overlay_name,
            seed_volume=seed_name,
            guest_agent=bool(p["guest_agent"]),
        )
        xml = lv.render_domain_xml(spec)
        self.diffs.append(
            {
                "before_header": f"domain {self.name} (absent)",
                "before": "",
                "after_header": f"domain {self.name}",
                "after": xml,
            }
        )
        self.act(f"create overlay {overlay_name} on {base_name}")
        if seed_name:
            self.act(f"upload seed {seed_name}")
        self.act(f"define domain {self.name}")
        final_state = "shutoff"
        if state == "running":
            self.act(f"start domain {self.name}")
            final_state = "running"
        result = {
            "uuid": None,
            "mac": mac,
            "instance_id": instance_id,
            "volumes": {"pool": spec.pool, "base": base_name, "overlay": overlay_name, "seed": seed_name},
            "changes": ["domain"],
        }
        if self.check:
            result["state"] = final_state
            return result
        lv.create_volume(pool, lv.volume_xml(overlay_name, capacity, "qcow2", base_path, base_fmt), self.rollback)
        lv.fault_point("after_overlay_create")
        if seed_name:
            seed_vol = lv.create_volume(pool, lv.volume_xml(seed_name, len(iso), "raw"), self.rollback)
            lv.upload_volume(self.conn, seed_vol, io.BytesIO(iso), len(iso))
            lv.fault_point("after_seed_upload")
        try:
            dom = self.conn.defineXML(xml)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot define domain {self.name!r} on {self.conn.getURI()}: {lv.err(exc)}") from exc
        self.rollback.add(f"undefine domain {self.name}", lambda: self._undefine(dom))
        lv.fault_point("after_define")
        if p["autostart"]:
            dom.setAutostart(1)
        if state == "running":
            lv.start(dom)
            self.rollback.add(f"power off domain {self.name}", dom.destroy)
            lv.fault_point("after_start")
        result["uuid"] = dom.UUIDString()
        result["state"] = lv.domain_state(dom)
        return result

    @staticmethod
    def _undefine(dom: Any) -> None:
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError:
            dom.undefine()

    # ------------------------------------------------------------------ remove

    def remove(self, dom: Any, meta: dict[str, str]) -> dict[str, Any]:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        self.diffs.append(
            {
                "before_header": f"domain {self.name}",
                "before": lv.canonical_xml(xml),
                "after_header": f"domain {self.name} (absent)",
                "after": "",
            }
        )
        pool = None
        try:
            pool = lv.lookup_pool(self.conn, meta.get("pool") or self.p["pool"])
        except LibvirtVmError as exc:
            self.warn(f"{exc}; the domain's volumes cannot be removed")
        vols = [v for v in (meta.get("overlay-volume"), meta.get("seed-volume")) if v]
        existing = [v for v in vols if pool is not None and lv.lookup_volume(pool, v) is not None]
        if dom.isActive():
            self.act(f"power off domain {self.name}")
        self.act(f"undefine domain {self.name}")
        for v in existing:
            self.act(f"delete volume {v}")
        volumes = {"pool": pool.name() if pool else None, "overlay": meta.get("overlay-volume") or None}
        volumes["seed"] = meta.get("seed-volume") or None
        volumes["base"] = meta.get("base-volume") or None
        result = {"uuid": dom.UUIDString(), "state": "absent", "volumes": volumes, "changes": ["domain"]}
        if self.check:
            return result
        try:
            if dom.isActive():
                dom.destroy()
            self._undefine(dom)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot remove domain {self.name!r}: {lv.err(exc)}") from exc
        for v in existing:
            lv.delete_volume(pool, v)
        return result

    # ------------------------------------------------------------------ update

    def update(self, dom: Any, meta: dict[str, str], state: str) -> dict[str, Any]:
        p = self.p
        old_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        cur = lv.domain_fields(old_xml)
        pool = lv.lookup_pool(self.conn, meta.get("pool") or p["pool"])
        iface = self.wanted_interface()
        want = dict(cur)
        if p["domain_type"] is not None:
            want["domain_type"] = p["domain_type"]
        if p["vcpus"] is not None:
            want["vcpus"] = p["vcpus"]
        if self.memory_mib is not None:
            want["memory_mib"] = self.memory_mib
        if iface is not None:
            want["interface_type"], want["interface_source"] = iface
        if self.mac is not None:
            want["mac"] = self.mac
        if p["guest_agent"] is not None:
            want["guest_agent"] = p["guest_agent"]
        fields = [
            k
            for k in ("domain_type", "vcpus", "memory_mib", "interface_type", "interface_source", "mac", "guest_agent")
            if want[k] != cur[k]
        ]
        if ("interface_type" in fields or "interface_source" in fields) and iface is not None:
            self.check_interface(*iface)
        if "mac" in fields:
            self.check_mac_free(want["mac"])
        self._warn_base(meta)
        seed_name = meta.get("seed-volume") or f"{self.name}-seed.iso"
        seed_kept = p["seed"] == "present" or (p["seed"] is None and bool(meta.get("seed-volume")))
        spec = lv.DomainSpec(
            name=self.name,
            domain_type=want["domain_type"],
            vcpus=want["vcpus"],
            memory_mib=want["memory_mib"],
            interface_type=want["interface_type"],
            interface_source=want["interface_source"],
            mac=want["mac"],
            pool=pool.name(),
            base_volume=meta.get("base-volume", ""),
            overlay_volume=meta.get("overlay-volume") or f"{self.name}.qcow2",
            seed_volume=seed_name if seed_kept else None,
            guest_agent=bool(want["guest_agent"]),
        )
        new_xml = lv.apply_fields(old_xml, spec, fields) if fields else lv.canonical_xml(old_xml)
        for f in fields:
            self.act(f"set {f}: {cur[f]} -> {want[f]}")
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
            iso, instance_id = self.build_seed(want["mac"])
            if seed_vol is None:
                seed_upload = iso
                self.act(f"upload seed {seed_name}")
            else:
                cap = lv.volume_capacity(seed_vol)
                if cap != len(iso) or lv.download_volume(self.conn, seed_vol, cap) != iso:
                    seed_upload, seed_delete = iso, True
                    self.act(f"rewrite seed {seed_name} (content changed)")
            if not cdrom_cfg:
                self.act(f"attach seed cdrom {seed_name}")
            new_xml = lv.set_cdrom(new_xml, pool.name(), seed_name, present=True)
        elif p["seed"] == "absent":
            if cdrom_cfg or cdrom_live:
                self.act(f"detach seed cdrom {seed_name}")
            if seed_vol is not None:
                seed_delete = True
                self.act(f"delete seed volume {seed_name}")
            new_xml = lv.set_cdrom(new_xml, pool.name(), seed_name, present=False)
        want_meta = lv.spec_metadata(spec)
        if lv.read_metadata(dom) != want_meta:
            new_xml = lv.set_metadata_in_xml(new_xml, want_meta)
        before = lv.canonical_xml(old_xml)
        redefine = new_xml != before
        if redefine:
            self.diffs.append(
                {
                    "before_header": f"domain {self.name}",
                    "before": before,
                    "after_header": f"domain {self.name}",
                    "after": new_xml,
                }
            )
            if not any(a.startswith(("set ", "attach", "detach")) for a in self.actions):
                self.act("update domain metadata")

        # disk size
        overlay = lv.lookup_volume(pool, spec.overlay_volume)
        grow = None
        if self.disk_size is not None and overlay is not None:
            cap = lv.volume_capacity(overlay)
            if self.disk_size < cap:
                raise LibvirtVmError(
                    f"disk_size {p['disk_size']} is smaller than the current disk of {self.name!r} ({cap} bytes); "
                    "shrinking is not supported"
                )
            if self.disk_size > cap:
                grow = self.disk_size
                fields.append("disk_size")
                self.act(f"grow disk {spec.overlay_volume}: {cap} -> {grow} bytes")

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
        if not self.check:
            if seed_upload is not None:
                if seed_delete:
                    lv.delete_volume(pool, seed_name)
                vol = lv.create_volume(pool, lv.volume_xml(seed_name, len(seed_upload), "raw"), self.rollback)
                lv.upload_volume(self.conn, vol, io.BytesIO(seed_upload), len(seed_upload))
                lv.fault_point("after_seed_upload")
            if redefine:
                try:
                    self.conn.defineXML(new_xml)
                except libvirt.libvirtError as exc:
                    raise LibvirtVmError(f"cannot redefine domain {self.name!r}: {lv.err(exc)}") from exc
                self.rollback.add(f"restore definition of domain {self.name}", lambda: self.conn.defineXML(old_xml))
                lv.fault_point("after_define")
                if active and meta != want_meta:
                    lv.write_metadata(dom, want_meta, live_only=True)  # so the live XML names no removed seed
            if p["seed"] == "present" and active and not cdrom_live:
                self._device(dom, "attach", lv.cdrom_xml(pool.name(), seed_name))
            if p["seed"] == "absent":
                if cdrom_live:
                    self._device(dom, "detach", lv.find_cdrom(live_xml, seed_name))
                if seed_delete:
                    lv.delete_volume(pool, seed_name)
            if grow is not None:
                self._grow(dom, overlay, grow, active)
        # pending changes for the running domain
        pending: list[str] = []
        if active:
            live = lv.domain_fields(live_xml)
            pending = [
                k
                for k in (
                    "domain_type",
                    "vcpus",
                    "memory_mib",
                    "interface_type",
                    "interface_source",
                    "mac",
                    "guest_agent",
                )
                if live[k] != want[k]
            ]
        result["pending"] = pending
        result["restart_required"] = False
        if pending and state in ("running", "present"):
            if p["restart_on_change"]:
                self.act(f"restart domain {self.name} to apply {', '.join(pending)}")
                if not self.check:
                    lv.shutdown(dom, p["shutdown_timeout"], p["force"])
                    lv.start(dom)
                result["pending"] = []
            else:
                result["restart_required"] = True
        return result

    def _device(self, dom: Any, op: str, xml: str) -> None:
        try:
            if op == "attach":
                dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            else:
                dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot {op} the seed cdrom of running domain {self.name!r}: {lv.err(exc)}") from exc

    def _grow(self, dom: Any, overlay: Any, size: int, active: bool) -> None:
        try:
            if active:
                dom.blockResize("vda", size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            else:
                overlay.resize(size, 0)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(
                f"cannot grow the disk of domain {self.name!r} to {size} bytes: {lv.err(exc)}"
            ) from exc

    def _warn_base(self, meta: dict[str, str]) -> None:
        p = self.p
        wanted = p["base_volume"] or (f"base-sha256-{self.checksum[:16]}" if self.checksum else None)
        if wanted and meta.get("base-volume") and wanted != meta["base-volume"]:
            self.warn(
                f"domain {self.name!r} was built on base volume {meta['base-volume']!r}, not {wanted!r}; its disk is "
                "kept as it is (use state=absent first to rebuild it on the new image)"
            )

    # ------------------------------------------------------------------ power

    def power(self, dom: Any, state: str, result: dict[str, Any]) -> None:
        current = lv.domain_state(dom)
        if state == "running" and current != "running":
            self.act(f"{'resume' if current == 'paused' else 'start'} domain {self.name}")
            self.diffs.append({"before": f"state: {current}\n", "after": "state: running\n"})
            if not self.check:
                if current == "paused":
                    dom.resume()
                else:
                    lv.start(dom)
            current = "running"
        elif state == "stopped" and current not in ("shutoff", "crashed"):
            self.act(f"shut down domain {self.name}")
            self.diffs.append({"before": f"state: {current}\n", "after": "state: shutoff\n"})
            if not self.check:
                how = lv.shutdown(dom, self.p["shutdown_timeout"], self.p["force"])
                if how == "forced":
                    self.warn(
                        f"domain {self.name!r} did not shut down within {self.p['shutdown_timeout']}s; powered off"
                    )
            current = "shutoff"
            result["pending"] = []
            result["restart_required"] = False
        if self.p["autostart"] is not None and bool(dom.autostart()) != self.p["autostart"]:
            self.act(f"set autostart {self.p['autostart']}")
            if not self.check:
                dom.setAutostart(1 if self.p["autostart"] else 0)
        result["state"] = current

    # ------------------------------------------------------------------ main

    def run(self, options: VmOptions) -> dict[str, Any]:
        """Reconcile the domain; returns the module's result without ``diff`` (see ``self.diffs``)."""
        self.memory_mib = options.memory_mib
        self.disk_size = options.disk_size
        self.mac = options.mac
        self.checksum = options.checksum
        self.image_is_url = options.image_is_url
        self.conn = lv.connect(self.p["uri"])
        state = self.p["state"]
        dom = lv.lookup_domain(self.conn, self.name)
        meta = None
        if dom is not None:
            meta = lv.read_metadata(dom)
            if meta is None:
                raise LibvirtVmError(
                    f"domain {self.name!r} on {self.conn.getURI()} was not created by "
                    f"foundation.runners.libvirt_cloudinit_vm (no metadata in namespace {lv.METADATA_NS}); "
                    "refusing to manage it"
                )
        result: dict[str, Any] = {"name": self.name, "restart_required": False, "pending": []}
        if state == "absent":
            if dom is None:
                result.update(uuid=None, state="absent", changes=[])
            else:
                result.update(self.remove(dom, meta))
        elif dom is None:
            result.update(self.create(state))
            result.setdefault("pending", [])
        else:
            result.update(self.update(dom, meta, state))
            self.power(dom, state, result)
        result["actions"] = self.actions
        result["changed"] = bool(self.actions)
        return result
