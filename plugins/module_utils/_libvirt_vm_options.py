# Private to the foundation.runners collection; not a public API, may change without notice.
"""The options of libvirt_cloudinit_vm: the argument spec, and the checks and parsing it cannot do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ansible_collections.foundation.runners.plugins.module_utils import _cloudinit_seed as cloudinit_seed
from ansible_collections.foundation.runners.plugins.module_utils import _input_forms as input_forms
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_nwfilter as libvirt_nwfilter
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError

NAME_RE = input_forms.VM_NAME_RE
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
CHECKSUM_RE = input_forms.SHA256_CHECKSUM_RE


def parse_size(value: Any, default_unit: str, what: str) -> int:
    """Parse ``2048``, ``"2GiB"``, ``"512MiB"`` and the like into bytes (see _input_forms.size_bytes)."""
    try:
        return input_forms.size_bytes(value, default_unit)
    except ValueError as exc:
        raise LibvirtVmError(f"{what} {value!r} {exc}") from None


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


@dataclass
class VmOptions:
    """Option values parsed and validated by the module."""

    memory_mib: int | None = None
    disk_size: int | None = None
    mac: str | None = None
    checksum: str | None = None
    image_is_url: bool = False
    # {name, parameters} (see _libvirt_nwfilter.canonical); None when the option is not given.
    nwfilter: dict[str, Any] | None = None


SEED_OPTIONS = ("user_data", "meta_data", "network_config", "ip_address", "gateway", "nameservers", "instance_id")
MIN_MEMORY_MIB = 64


def validate_options(p: dict[str, Any]) -> VmOptions:
    """Check the options that the argument spec cannot, and parse sizes, MAC and checksum."""
    name = p["name"]
    validate_name(name)
    if p["vcpus"] is not None and p["vcpus"] < 1:
        raise LibvirtVmError(f"vcpus={p['vcpus']} is invalid: a domain needs at least 1 vCPU")
    opts = VmOptions()
    if p["memory"] is not None:
        size = parse_size(p["memory"], "MiB", "memory")
        if size % (1024 * 1024):
            raise LibvirtVmError(f"memory {p['memory']!r} is not a whole number of MiB")
        opts.memory_mib = size // (1024 * 1024)
        if opts.memory_mib < MIN_MEMORY_MIB:
            raise LibvirtVmError(f"memory {p['memory']!r} is too small: at least {MIN_MEMORY_MIB} MiB")
    opts.disk_size = parse_size(p["disk_size"], "GiB", "disk_size") if p["disk_size"] is not None else None
    opts.mac = normalize_mac(p["mac"]) if p["mac"] else None
    opts.checksum = parse_checksum(p["base_checksum"]) if p["base_checksum"] else None
    image = p["base_image"]
    opts.image_is_url = bool(image) and "://" in image
    if opts.image_is_url:
        if not image.lower().startswith("https://"):
            raise LibvirtVmError(f"base_image {image!r}: only local paths and https:// URLs are supported")
        if not opts.checksum:
            raise LibvirtVmError(f"base_image {image} is a URL, so base_checksum (sha256:...) is required")
    if p["base_volume"] is not None and not NAME_RE.match(p["base_volume"]):
        raise LibvirtVmError(f"base_volume {p['base_volume']!r} is not a valid volume name")
    if p["seed"] == "absent":
        given = [o for o in SEED_OPTIONS if p[o] is not None]
        if given:
            raise LibvirtVmError(f"seed=absent removes the seed, so {', '.join(given)} must not be given")
    if p["network_config"] is not None and p["ip_address"] is not None:
        raise LibvirtVmError("network_config and ip_address are mutually exclusive")
    for opt in ("gateway", "nameservers"):
        if p[opt] is not None and p["ip_address"] is None:
            raise LibvirtVmError(f"{opt} needs ip_address")
    if p["shutdown_timeout"] < 0:
        raise LibvirtVmError("shutdown_timeout must not be negative")
    if p["instance_id"] is not None and not p["instance_id"].strip():
        raise LibvirtVmError("instance_id must not be empty")
    if p["ip_address"] is not None:
        # validate early so nothing is created for a bad address
        try:
            cloudinit_seed.static_network_config(
                opts.mac or cloudinit_seed.derive_mac(name), p["ip_address"], p["gateway"], p["nameservers"]
            )
        except cloudinit_seed.SeedError as exc:
            raise LibvirtVmError(str(exc)) from exc
    try:
        opts.nwfilter = libvirt_nwfilter.canonical(p["nwfilter"], p["ip_address"])
    except libvirt_nwfilter.NwfilterError as exc:
        raise LibvirtVmError(str(exc)) from exc
    return opts


def argument_spec() -> dict[str, Any]:
    """The module's options (documented in the module)."""
    spec = libvirt_api.libvirt_argument_spec()
    spec.update(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "running", "stopped", "absent"]},
        pool={"type": "str", "default": "default"},
        base_image={"type": "str"},
        base_checksum={"type": "str"},
        base_volume={"type": "str"},
        validate_certs={"type": "bool", "default": True},
        ca_path={"type": "path"},
        download_timeout={"type": "int", "default": 60},
        disk_size={"type": "raw"},
        vcpus={"type": "int"},
        memory={"type": "raw"},
        bridge={"type": "str"},
        network={"type": "str"},
        mac={"type": "str"},
        domain_type={"type": "str", "choices": ["kvm", "qemu"]},
        guest_agent={"type": "bool"},
        autostart={"type": "bool"},
        seed={"type": "str", "choices": ["present", "absent"]},
        user_data={"type": "dict", "no_log": True},
        meta_data={"type": "dict"},
        network_config={"type": "dict"},
        ip_address={"type": "str"},
        gateway={"type": "str"},
        nameservers={"type": "list", "elements": "str"},
        instance_id={"type": "str"},
        shutdown_timeout={"type": "int", "default": 120},
        force={"type": "bool", "default": False},
        restart_on_change={"type": "bool", "default": False},
        keep_instance={"type": "bool", "default": True},
        adopt={"type": "bool", "default": False},
        nwfilter={
            "type": "dict",
            "options": {"name": {"type": "str", "required": True}, "parameters": {"type": "dict", "default": {}}},
        },
    )
    return spec


MUTUALLY_EXCLUSIVE = [("bridge", "network"), ("network_config", "ip_address")]
