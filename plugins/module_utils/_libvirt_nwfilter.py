# Private to the foundation.runners collection; not a public API, may change without notice.
"""A guest NIC's libvirt network filter (<filterref>): its canonical form, parsing, rendering and checks."""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from typing import Any

# No filter: what a NIC without <filterref> reads as.
NONE: dict[str, Any] = {"name": "", "parameters": {}}

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PARAM = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class NwfilterError(ValueError):
    pass


def canonical(option: dict[str, Any] | None, ip_address: str | None) -> dict[str, Any] | None:
    """The module's O(nwfilter) as {name, parameters: {NAME: [values]}}; None when not given.

    An empty name means "no filter". A filter without an C(IP) parameter gets the address of
    ``ip_address`` (CIDR notation), so clean-traffic learns nothing by snooping."""
    if option is None:
        return None
    name = (option.get("name") or "").strip()
    if not name:
        if option.get("parameters"):
            raise NwfilterError("nwfilter.parameters needs nwfilter.name")
        return dict(NONE)
    if not _NAME.match(name):
        raise NwfilterError(f"nwfilter.name {name!r} is not a libvirt filter name (letters, digits, '_.:-')")
    params: dict[str, list[str]] = {}
    for key, value in (option.get("parameters") or {}).items():
        if not _PARAM.match(str(key)):
            raise NwfilterError(f"nwfilter parameter name {key!r} is not a variable name (e.g. IP, CTRL_IP_LEARNING)")
        values = value if isinstance(value, list) else [value]
        if not values or any(v is None or str(v) == "" for v in values):
            raise NwfilterError(f"nwfilter parameter {key} needs a value")
        params[str(key)] = sorted(str(v) for v in values)
    if "IP" not in params and ip_address:
        params["IP"] = [str(ipaddress.ip_interface(ip_address).ip)]
    return {"name": name, "parameters": params}


def is_set(nwf: dict[str, Any] | None) -> bool:
    return bool(nwf and nwf.get("name"))


def element(nwf: dict[str, Any]) -> ET.Element:
    ref = ET.Element("filterref", filter=nwf["name"])
    for key in sorted(nwf["parameters"]):
        for value in nwf["parameters"][key]:
            ET.SubElement(ref, "parameter", name=key, value=value)
    return ref


def read(iface: ET.Element | None) -> dict[str, Any]:
    """The filter of an <interface> element, in canonical form."""
    ref = iface.find("filterref") if iface is not None else None
    if ref is None:
        return dict(NONE)
    params: dict[str, list[str]] = {}
    for p in ref.findall("parameter"):
        params.setdefault(p.get("name", ""), []).append(p.get("value", ""))
    return {"name": ref.get("filter", ""), "parameters": {k: sorted(v) for k, v in params.items()}}


def replace(iface: ET.Element, nwf: dict[str, Any] | None) -> None:
    """Set (or, for no filter, remove) the <filterref> of an <interface> element in place."""
    for old in iface.findall("filterref"):
        iface.remove(old)
    if is_set(nwf):
        iface.append(element(nwf))


def describe(nwf: dict[str, Any] | None) -> str:
    if not is_set(nwf):
        return "none"
    params = ",".join(f"{k}={'|'.join(v)}" for k, v in sorted(nwf["parameters"].items()))
    return f"{nwf['name']}({params})" if params else nwf["name"]
