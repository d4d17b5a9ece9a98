from __future__ import annotations

import io

import pycdlib
import pytest
import yaml

from ansible_collections.foundation.runners.plugins.module_utils import _cloudinit_seed as seed


def read_iso(data: bytes) -> tuple[str, dict[str, bytes]]:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    files = {}
    for name in ("user-data", "meta-data", "network-config", "vendor-data"):
        out = io.BytesIO()
        try:
            iso.get_file_from_iso_fp(out, joliet_path="/" + name)
        except pycdlib.pycdlibexception.PyCdlibInvalidInput:
            continue
        files[name] = out.getvalue()
    rr_names = sorted(
        child.rock_ridge.name().decode()
        for child in iso.list_children(rr_path="/")
        if child.rock_ridge is not None and not child.is_dot() and not child.is_dotdot()
    )
    label = iso.pvd.volume_identifier.decode().strip()
    iso.close()
    files["_rr"] = ",".join(rr_names).encode()
    return label, files


def test_seed_iso_contents_read_back():
    net = seed.static_network_config("52:54:00:AA:BB:CC", "198.51.100.20/24", "198.51.100.1", ["198.51.100.1"])
    data, md = seed.build_seed("vm1", {"hostname": "vm1", "users": [{"name": "lab"}]}, None, net)
    label, files = read_iso(data)
    assert label == "cidata"
    assert files["_rr"] == b"meta-data,network-config,user-data,vendor-data"
    assert files["vendor-data"].startswith(b"#!/bin/sh\n") and b"manual_cache_clean: true" in files["vendor-data"]
    assert files["user-data"].startswith(b"#cloud-config\n")
    assert yaml.safe_load(files["user-data"]) == {"hostname": "vm1", "users": [{"name": "lab"}]}
    assert yaml.safe_load(files["meta-data"]) == {"instance-id": "iid-vm1", "local-hostname": "vm1"} == md
    netcfg = yaml.safe_load(files["network-config"])
    eth = netcfg["ethernets"]["eth0"]
    assert eth["accept-ra"] is False and eth["dhcp4"] is False
    assert netcfg["version"] == 2
    assert eth["match"] == {"macaddress": "52:54:00:aa:bb:cc"} and "set-name" not in eth
    assert eth["addresses"] == ["198.51.100.20/24"]
    assert eth["routes"] == [{"to": "default", "via": "198.51.100.1"}]
    assert eth["nameservers"] == {"addresses": ["198.51.100.1"]}


def test_seed_is_deterministic_across_time_zones(monkeypatch):
    first, _unused1 = seed.build_seed("vm1", {"a": 1}, {"x": "y"}, None)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    import time

    time.tzset()
    try:
        second, _unused1 = seed.build_seed("vm1", {"a": 1}, {"x": "y"}, None)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert first == second
    assert seed.build_seed("vm1", {"a": 2}, {"x": "y"}, None)[0] != first


def test_seed_without_network_config_and_instance_id_override():
    data, md = seed.build_seed("vm2", None, {"instance-id": "from-meta"}, None, "given", keep_instance=False)
    _unused1, files = read_iso(data)
    assert "network-config" not in files and "vendor-data" not in files
    assert files["user-data"] == b"#cloud-config\n"
    assert md["instance-id"] == "given"
    data, md = seed.build_seed("vm2", None, {"instance-id": "from-meta"}, None)
    assert md["instance-id"] == "from-meta"


def test_time_functions_restored():
    import time

    real = time.time
    seed.build_seed("vm", None, None, None)
    assert time.time is real and time.time() > seed.FIXED_EPOCH


def test_derive_mac_and_instance_id():
    mac = seed.derive_mac("runner01")
    assert mac.startswith("52:54:00:") and mac == seed.derive_mac("runner01") != seed.derive_mac("runner02")
    assert seed.derive_instance_id("runner01") == "iid-runner01"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ip_address": "198.51.100.300/24"}, "not an address in CIDR"),
        ({"ip_address": "198.51.100.20"}, "needs a prefix length"),
        ({"ip_address": "198.51.100.20/24", "gateway": "gw"}, "gateway 'gw' is not an IP address"),
        ({"ip_address": "198.51.100.20/24", "gateway": "2001:db8::1"}, "not of the same IP version"),
        ({"ip_address": "198.51.100.20/24", "nameservers": ["dns"]}, "nameserver 'dns'"),
    ],
)
def test_static_network_config_rejects(kwargs, message):
    with pytest.raises(seed.SeedError, match=message):
        seed.static_network_config("52:54:00:00:00:01", **kwargs)


def test_ipv6_static_config():
    cfg = seed.static_network_config("52:54:00:00:00:01", "2001:db8::5/64", "2001:db8::1")
    assert cfg["ethernets"]["eth0"]["routes"] == [{"to": "::/0", "via": "2001:db8::1"}]
    assert "accept-ra" not in cfg["ethernets"]["eth0"]
