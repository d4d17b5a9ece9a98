# Private to the foundation.runners collection; not a public API, may change without notice.
"""Reconcile a libvirt guest built from a cloud image: the entry point, shared checks and power.

Creation and removal live in _libvirt_vm_create, drift in _libvirt_vm_update, the base image in _libvirt_base_image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.foundation.runners.plugins.module_utils import _cloudinit_seed as cloudinit_seed
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_adopt as libvirt_vm_adopt
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_create as libvirt_vm_create
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_update as libvirt_vm_update
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_vm_options import VmOptions

libvirt = libvirt_api.libvirt


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
        self.rollback = libvirt_api.Rollback()
        self.actions: list[str] = []
        self.diffs: list[dict[str, str]] = []
        self.conn: Any = None
        self.name: str = self.p["name"]
        self.memory_mib: int | None = None
        self.disk_size: int | None = None
        self.mac: str | None = None
        self.checksum: str | None = None
        self.image_is_url = False
        self.nwfilter: dict[str, Any] | None = None

    # ------------------------------------------------------------------ helpers

    def act(self, text: str) -> None:
        self.actions.append(text)

    def build_seed(self, mac: str) -> tuple[bytes, str]:
        p = self.p
        network_config = p["network_config"]
        if network_config is None and p["ip_address"]:
            network_config = cloudinit_seed.static_network_config(mac, p["ip_address"], p["gateway"], p["nameservers"])
        try:
            iso, md = cloudinit_seed.build_seed(
                self.name,
                p["user_data"],
                p["meta_data"],
                network_config,
                p["instance_id"],
                keep_instance=p["keep_instance"],
            )
        except cloudinit_seed.SeedError as exc:
            raise LibvirtVmError(f"cannot build the cloud-init seed for {self.name}: {exc}") from exc
        return iso, md["instance-id"]

    def check_interface(self, itype: str, source: str) -> None:
        if itype == "bridge":
            found = libvirt_api.bridge_exists(self.conn, source)
            if found is False:
                raise LibvirtVmError(
                    f"bridge {source!r} not found on {self.conn.getURI()} (neither libvirt's interface nor "
                    "node-device API lists it)"
                )
        else:
            net = libvirt_api.lookup_network(self.conn, source)
            if not net.isActive():
                raise LibvirtVmError(f"libvirt network {source!r} on {self.conn.getURI()} is not active")

    def check_mac_free(self, mac: str) -> None:
        used = libvirt_api.macs_in_use(self.conn, exclude=self.name)
        if mac in used:
            raise LibvirtVmError(f"mac {mac} is already used by domain {used[mac]!r} on {self.conn.getURI()}")

    def wanted_interface(self) -> tuple[str, str] | None:
        if self.p["bridge"]:
            return "bridge", self.p["bridge"]
        if self.p["network"]:
            return "network", self.p["network"]
        return None

    # ------------------------------------------------------------------ power

    def power(self, dom: Any, state: str, result: dict[str, Any]) -> None:
        current = libvirt_api.domain_state(dom)
        if state == "running" and current != "running":
            self.act(f"{'resume' if current == 'paused' else 'start'} domain {self.name}")
            self.diffs.append({"before": f"state: {current}\n", "after": "state: running\n"})
            if not self.check:
                if current == "paused":
                    dom.resume()
                else:
                    libvirt_api.start(dom)
            current = "running"
        elif state == "stopped" and current not in ("shutoff", "crashed"):
            self.act(f"shut down domain {self.name}")
            self.diffs.append({"before": f"state: {current}\n", "after": "state: shutoff\n"})
            if not self.check:
                how = libvirt_api.shutdown(dom, self.p["shutdown_timeout"], self.p["force"])
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

    def connect(self, options: VmOptions) -> None:
        """Take the parsed options and connect to libvirt."""
        self.memory_mib = options.memory_mib
        self.disk_size = options.disk_size
        self.mac = options.mac
        self.checksum = options.checksum
        self.image_is_url = options.image_is_url
        self.nwfilter = options.nwfilter
        self.conn = libvirt_api.connect(self.p["uri"])

    def run(self, options: VmOptions) -> dict[str, Any]:
        """Reconcile the domain; returns the module's result without ``diff`` (see ``self.diffs``)."""
        self.connect(options)
        state = self.p["state"]
        dom = libvirt_api.lookup_domain(self.conn, self.name)
        meta = None
        result: dict[str, Any] = {"name": self.name, "restart_required": False, "pending": []}
        if dom is not None:
            meta = libvirt_api.read_metadata(dom)
            if meta is None and (state == "absent" or not self.p["adopt"]):
                raise LibvirtVmError(
                    f"domain {self.name!r} on {self.conn.getURI()} was not created by "
                    "foundation.runners.libvirt_cloudinit_vm (no metadata in namespace "
                    f"{libvirt_domain_xml.METADATA_NS}); "
                    "refusing to manage it"
                    + ("" if state == "absent" else " (adopt=true takes it over, keeping its disk and its size)")
                )
            if meta is None:
                result.update(libvirt_vm_adopt.adopt(self, dom, state))
                self.power(dom, state, result)
                return self.finish(result)
        interrupted = dom is not None and meta.get("phase") == libvirt_domain_xml.PHASE_CREATING
        if state == "absent":
            result.update(
                libvirt_vm_create.remove(self, dom, meta)
                if dom is not None
                else libvirt_vm_create.remove_leftovers(self)
            )
        elif interrupted and (created := libvirt_vm_create.resume(self, dom, meta, state)) is not None:
            result.update(created)
        elif dom is None:
            result.update(libvirt_vm_create.create(self, state))
        else:
            result.update(libvirt_vm_update.update(self, dom, libvirt_domain_xml.completed(meta), state))
            self.power(dom, state, result)
        return self.finish(result)

    def finish(self, result: dict[str, Any]) -> dict[str, Any]:
        result["actions"] = self.actions
        result["changed"] = bool(self.actions)
        return result
