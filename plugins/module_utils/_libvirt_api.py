# Private to the foundation.runners collection; not a public API, may change without notice.
"""The calls into libvirt: the import guard, the error type, connection and lookups, host checks, the domain's
metadata, power, and the rollback of a failed run."""

from __future__ import annotations

import os
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_nwfilter as libvirt_nwfilter

LIBVIRT_IMPORT_ERROR: ImportError | None
try:
    import libvirt
except ImportError as exc:  # pragma: no cover - exercised through the module
    libvirt = None
    LIBVIRT_IMPORT_ERROR = exc
else:
    LIBVIRT_IMPORT_ERROR = None

FAULT_ENV = "FOUNDATION_RUNNERS_FAULT"
# In the order a creation passes them: the domain is defined (the record of intent) before any volume exists.
FAULT_POINTS = ("after_define", "after_base_import", "after_overlay_create", "after_seed_upload", "after_start")
FAULT_WAIT_LIMIT = 600


class LibvirtVmError(Exception):
    """An error with a message fit for the user: what failed, on what, and why."""


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


def lookup_domain(conn: Any, name: str) -> Any | None:
    return lookup_or_none(conn.lookupByName, name, libvirt.VIR_ERR_NO_DOMAIN, f"domain {name!r} on {conn.getURI()}")


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
    iface = libvirt_domain_xml.first_interface(ET.fromstring(live_xml))
    if iface is None:
        return "the domain has no network interface"
    libvirt_nwfilter.replace(iface, want)
    try:
        dom.updateDeviceFlags(ET.tostring(iface, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        return err(exc)
    return None


def read_metadata(dom: Any) -> dict[str, str] | None:
    """The collection's metadata of a domain, or None when the domain lacks it."""
    try:
        text = dom.metadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT, libvirt_domain_xml.METADATA_NS, libvirt.VIR_DOMAIN_AFFECT_CONFIG
        )
    except libvirt.libvirtError as exc:
        if err_code(exc) == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise LibvirtVmError(f"cannot read metadata of domain {dom.name()!r}: {err(exc)}") from exc
    root = ET.fromstring(text)
    return {child.tag.split("}")[-1]: (child.text or "") for child in root}


def write_metadata(dom: Any, meta: dict[str, str], live_only: bool = False, live_too: bool = False) -> None:
    """Write the collection's metadata into the persistent config, the running domain, or both."""
    payload = ET.tostring(libvirt_domain_xml.metadata_element(meta, namespaced=False), encoding="unicode")
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE if live_only else libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if live_too:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    try:
        dom.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT,
            payload,
            libvirt_domain_xml.METADATA_PREFIX,
            libvirt_domain_xml.METADATA_NS,
            flags,
        )
    except libvirt.libvirtError as exc:
        raise LibvirtVmError(f"cannot write metadata of domain {dom.name()!r}: {err(exc)}") from exc


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


def libvirt_argument_spec() -> dict[str, Any]:
    """Connection options shared by the collection's libvirt modules (documented in doc fragment libvirt)."""
    return {"uri": {"type": "str", "default": "qemu:///system"}}
