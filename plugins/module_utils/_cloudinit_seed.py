# Private to the foundation.runners collection; not a public API, may change without notice.
"""Build a cloud-init NoCloud seed ISO (volume label ``cidata``) in pure Python.

The output is deterministic: the same inputs always give the same bytes, so a seed
can be compared with what is already stored without keeping any hash of its secrets.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import time
from collections.abc import Iterator
from typing import Any

PYCDLIB_IMPORT_ERROR: ImportError | None
try:
    import pycdlib
except ImportError as exc:  # pragma: no cover - exercised through the module
    pycdlib = None
    PYCDLIB_IMPORT_ERROR = exc
else:
    PYCDLIB_IMPORT_ERROR = None

YAML_IMPORT_ERROR: ImportError | None
try:
    import yaml
except ImportError as exc:  # pragma: no cover
    yaml = None
    YAML_IMPORT_ERROR = exc
else:
    YAML_IMPORT_ERROR = None

# 2000-01-01T00:00:00Z: every date in the ISO is this instant, so output is reproducible.
FIXED_EPOCH = 946684800.0
VOLUME_LABEL = "cidata"

_FILES = (
    # (ISO9660 level-1 name, Joliet/Rock Ridge name)
    ("USERDATA.;1", "user-data"),
    ("METADATA.;1", "meta-data"),
    ("NETWORKC.;1", "network-config"),
    ("VENDORDA.;1", "vendor-data"),
)

# vendor-data: with the seed removed later, cloud-init would find no datasource, fall back to DataSourceNone,
# take the guest for a new instance and replace its network config by DHCP. Trusting the cached datasource
# (manual_cache_clean) keeps the instance, its static address included. A script, so user-data never overrides it.
KEEP_INSTANCE_CFG = "/etc/cloud/cloud.cfg.d/90-foundation-runners-keep-instance.cfg"
KEEP_INSTANCE_VENDOR_DATA = (
    "#!/bin/sh\n"
    "# foundation.runners: keep this instance when its NoCloud seed is removed\n"
    "mkdir -p /etc/cloud/cloud.cfg.d\n"
    f"printf 'manual_cache_clean: true\\n' > {KEEP_INSTANCE_CFG}\n"
).encode()


class SeedError(ValueError):
    """Raised when seed contents are invalid."""


def derive_instance_id(name: str) -> str:
    """Stable instance-id for a VM name, so re-runs never look like a new instance."""
    return f"iid-{name}"


def derive_mac(name: str) -> str:
    """Deterministic locally administered QEMU MAC (52:54:00 prefix) derived from a name."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return "52:54:00:{:02x}:{:02x}:{:02x}".format(*digest[:3])


def _dump_yaml(data: Any) -> str:
    if yaml is None:
        raise SeedError(f"PyYAML is required to render cloud-init data: {YAML_IMPORT_ERROR}")
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)


def render_user_data(user_data: dict[str, Any] | None) -> bytes:
    """Render user-data as a ``#cloud-config`` document."""
    body = _dump_yaml(user_data) if user_data else ""
    return ("#cloud-config\n" + body).encode("utf-8")


def render_meta_data(meta_data: dict[str, Any]) -> bytes:
    return _dump_yaml(meta_data).encode("utf-8")


def render_network_config(network_config: dict[str, Any]) -> bytes:
    return _dump_yaml(network_config).encode("utf-8")


def default_meta_data(name: str, instance_id: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """meta-data with a stable instance-id and the VM name as local-hostname; ``extra`` wins."""
    data: dict[str, Any] = {"instance-id": instance_id or derive_instance_id(name), "local-hostname": name}
    if extra:
        data.update(extra)
    if instance_id:
        data["instance-id"] = instance_id
    return data


def static_network_config(
    mac: str,
    ip_address: str,
    gateway: str | None = None,
    nameservers: list[str] | None = None,
    search: list[str] | None = None,
) -> dict[str, Any]:
    """A network-config v2 document for one NIC, matched by MAC address (not by its name)."""
    try:
        iface = ipaddress.ip_interface(ip_address)
    except ValueError as exc:
        raise SeedError(
            f"ip_address {ip_address!r} is not an address in CIDR notation (e.g. 198.51.100.20/24)"
        ) from exc
    if "/" not in ip_address:
        raise SeedError(f"ip_address {ip_address!r} needs a prefix length (CIDR notation, e.g. 198.51.100.20/24)")
    eth: dict[str, Any] = {
        "match": {"macaddress": mac.lower()},
        "addresses": [str(iface)],
        "dhcp4": False,
        "dhcp6": False,
    }
    if iface.version == 4:
        # No router advertisements on a static IPv4 NIC: networkd-wait-online would wait for one.
        eth["accept-ra"] = False
    if gateway:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError as exc:
            raise SeedError(f"gateway {gateway!r} is not an IP address") from exc
        if gw.version != iface.version:
            raise SeedError(f"gateway {gateway} is not of the same IP version as ip_address {ip_address}")
        eth["routes"] = [{"to": "default" if gw.version == 4 else "::/0", "via": str(gw)}]
    ns: dict[str, Any] = {}
    if nameservers:
        for server in nameservers:
            try:
                ipaddress.ip_address(server)
            except ValueError as exc:
                raise SeedError(f"nameserver {server!r} is not an IP address") from exc
        ns["addresses"] = list(nameservers)
    if search:
        ns["search"] = list(search)
    if ns:
        eth["nameservers"] = ns
    return {"version": 2, "ethernets": {"eth0": eth}}


@contextlib.contextmanager
def _fixed_clock() -> Iterator[None]:
    """Make pycdlib stamp every date with FIXED_EPOCH in UTC, whatever the local time zone."""
    real_time, real_localtime = time.time, time.localtime
    time.time = lambda: FIXED_EPOCH  # type: ignore[assignment]
    time.localtime = time.gmtime  # type: ignore[assignment]
    try:
        yield
    finally:
        time.time = real_time  # type: ignore[assignment]
        time.localtime = real_localtime  # type: ignore[assignment]


def build_seed_iso(
    user_data: bytes, meta_data: bytes, network_config: bytes | None = None, vendor_data: bytes | None = None
) -> bytes:
    """Return the bytes of a NoCloud seed ISO (ISO9660 + Joliet + Rock Ridge, label ``cidata``)."""
    if pycdlib is None:
        raise SeedError(f"pycdlib is required to build the cloud-init seed: {PYCDLIB_IMPORT_ERROR}")
    contents = [user_data, meta_data, network_config, vendor_data]
    with _fixed_clock():
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL, sys_ident="LINUX")
        for (iso_name, long_name), data in zip(_FILES, contents, strict=True):
            if data is None:
                continue
            iso.add_fp(io.BytesIO(data), len(data), "/" + iso_name, rr_name=long_name, joliet_path="/" + long_name)
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
    return out.getvalue()


def read_seed_identity(data: bytes) -> tuple[str, str | None]:
    """(volume label, meta-data instance-id) of a seed ISO's bytes; ("", None) when they are no ISO."""
    if pycdlib is None or yaml is None:
        raise SeedError("pycdlib and PyYAML are required to read a cloud-init seed")
    iso = pycdlib.PyCdlib()
    try:
        iso.open_fp(io.BytesIO(data))
    except pycdlib.pycdlibexception.PyCdlibException:
        return "", None
    label = iso.pvd.volume_identifier.decode("ascii", "replace").strip()
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, iso_path="/" + _FILES[1][0])
        meta = yaml.safe_load(out.getvalue())
    except (pycdlib.pycdlibexception.PyCdlibException, yaml.YAMLError):
        return label, None
    finally:
        iso.close()
    instance_id = meta.get("instance-id") if isinstance(meta, dict) else None
    return label, str(instance_id) if instance_id is not None else None


def build_seed(
    name: str,
    user_data: dict[str, Any] | None,
    meta_data: dict[str, Any] | None,
    network_config: dict[str, Any] | None,
    instance_id: str | None = None,
    *,
    keep_instance: bool = True,
) -> tuple[bytes, dict[str, Any]]:
    """Render the documents and build the ISO; returns the bytes and the (non-secret) meta-data used."""
    md = default_meta_data(name, instance_id, meta_data)
    iso = build_seed_iso(
        render_user_data(user_data),
        render_meta_data(md),
        render_network_config(network_config) if network_config else None,
        KEEP_INSTANCE_VENDOR_DATA if keep_instance else None,
    )
    return iso, md
