from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_nwfilter as libvirt_nwfilter
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_options as libvirt_vm_options
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (2048, "MiB", 2048 * MIB),
        ("2048", "MiB", 2048 * MIB),
        ("2GiB", "MiB", 2048 * MIB),
        ("512MiB", "MiB", 512 * MIB),
        ("512 mib", "MiB", 512 * MIB),
        ("1G", "MiB", 1024 * MIB),
        ("20", "GiB", 20 * 1024 * MIB),
        ("1048576B", "MiB", MIB),
    ],
)
def test_parse_size(value, unit, expected):
    assert libvirt_vm_options.parse_size(value, unit, "memory") == expected


@pytest.mark.parametrize("value", ["2GB", "lots", "-1", "0", 0, "1.5GiB", True, ""])
def test_parse_size_rejects(value):
    with pytest.raises(libvirt_api.LibvirtVmError, match="memory"):
        libvirt_vm_options.parse_size(value, "MiB", "memory")


def test_mac_and_name_validation():
    assert libvirt_vm_options.normalize_mac("52:54:00:AA:bb:01") == "52:54:00:aa:bb:01"
    for bad in ("52:54:00:aa:bb", "zz:54:00:aa:bb:01", "01:00:5e:00:00:01", "00:00:00:00:00:00"):
        with pytest.raises(libvirt_api.LibvirtVmError, match="mac"):
            libvirt_vm_options.normalize_mac(bad)
    libvirt_vm_options.validate_name("runner-01.lab_x")
    for bad in ("", "-x", "a/b", "a b", "x" * 64):
        with pytest.raises(libvirt_api.LibvirtVmError, match="name"):
            libvirt_vm_options.validate_name(bad)


def test_parse_checksum():
    assert libvirt_vm_options.parse_checksum("sha256:" + "AB" * 32) == "ab" * 32
    for bad in ("md5:abc", "sha256:abc", "ab" * 32):
        with pytest.raises(libvirt_api.LibvirtVmError, match="base_checksum"):
            libvirt_vm_options.parse_checksum(bad)


def test_inspect_image(tmp_path):
    qcow = tmp_path / "a.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "64M"], check=True)
    info = libvirt_volumes.inspect_image(str(qcow))
    assert info.format == "qcow2" and info.virtual_size == 64 * MIB and info.file_size == qcow.stat().st_size
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 510 + b"\x55\xaa" + b"\0" * 1024)
    assert libvirt_volumes.inspect_image(str(raw)).format == "raw"
    junk = tmp_path / "junk"
    junk.write_bytes(b"<html>not found</html>")
    with pytest.raises(libvirt_api.LibvirtVmError, match="neither a qcow2"):
        libvirt_volumes.inspect_image(str(junk))
    truncated = tmp_path / "t.qcow2"
    truncated.write_bytes(qcow.read_bytes()[:100])
    with pytest.raises(libvirt_api.LibvirtVmError, match="corrupt"):
        libvirt_volumes.inspect_image(str(truncated))
    badver = tmp_path / "v.qcow2"
    data = bytearray(qcow.read_bytes())
    data[4:8] = struct.pack(">I", 9)
    badver.write_bytes(bytes(data))
    with pytest.raises(libvirt_api.LibvirtVmError, match="version 9"):
        libvirt_volumes.inspect_image(str(badver))
    with pytest.raises(libvirt_api.LibvirtVmError, match="cannot read base image"):
        libvirt_volumes.inspect_image(str(tmp_path / "missing"))


# The fields of the domain that spec() describes, as domain_fields() reads them back.
FIELDS = {
    "domain_type": "kvm",
    "vcpus": 2,
    "memory_mib": 2048,
    "interface_type": "bridge",
    "interface_source": "br0",
    "mac": "52:54:00:01:02:03",
}


def spec(**kw):
    base = {
        "name": "vm1",
        **FIELDS,
        "pool": "lab",
        "base_volume": "base-sha256-0011",
        "overlay_volume": "vm1.qcow2",
        "seed_volume": "vm1-seed.iso",
    }
    base.update(kw)
    return libvirt_domain_xml.DomainSpec(**base)


def test_render_domain_xml():
    root = ET.fromstring(libvirt_domain_xml.render_domain_xml(spec()))
    assert root.get("type") == "kvm"
    assert root.find("features/acpi") is not None
    assert root.find("os/kernel") is None and root.find("os/boot").get("dev") == "hd"
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/console/target").get("type") == "serial"
    assert root.find("devices/channel") is None  # no guest agent by default
    cdrom = next(d for d in root.findall("devices/disk") if d.get("device") == "cdrom")
    assert cdrom.find("source").attrib == {"pool": "lab", "volume": "vm1-seed.iso"}
    assert cdrom.find("target").get("bus") == "scsi"
    meta = root.find(f"metadata/{{{libvirt_domain_xml.METADATA_NS}}}instance")
    assert meta.find(f"{{{libvirt_domain_xml.METADATA_NS}}}seed-volume").text == "vm1-seed.iso"
    assert meta.find(f"{{{libvirt_domain_xml.METADATA_NS}}}spec-hash").text.startswith("sha256:")
    fields = libvirt_domain_xml.domain_fields(libvirt_domain_xml.render_domain_xml(spec()))
    assert fields == {**FIELDS, "guest_agent": False, "nwfilter": {"name": "", "parameters": {}}}
    agent = ET.fromstring(
        libvirt_domain_xml.render_domain_xml(spec(guest_agent=True, domain_type="qemu", seed_volume=None))
    )
    assert agent.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"
    assert agent.get("type") == "qemu"
    assert not [d for d in agent.findall("devices/disk") if d.get("device") == "cdrom"]


def test_apply_fields_changes_only_managed_fields():
    xml = libvirt_domain_xml.render_domain_xml(spec())
    new = spec(vcpus=4, memory_mib=4096, interface_type="network", interface_source="default", guest_agent=True)
    out = libvirt_domain_xml.apply_fields(
        xml, new, ["vcpus", "memory_mib", "interface_type", "interface_source", "guest_agent"]
    )
    assert libvirt_domain_xml.domain_fields(out) == {
        "domain_type": "kvm",
        "vcpus": 4,
        "memory_mib": 4096,
        "interface_type": "network",
        "interface_source": "default",
        "mac": "52:54:00:01:02:03",
        "guest_agent": True,
        "nwfilter": {"name": "", "parameters": {}},
    }
    assert ET.fromstring(out).find("features/acpi") is not None
    no_cd = libvirt_domain_xml.set_cdrom(out, "lab", "vm1-seed.iso", present=False)
    assert libvirt_domain_xml.find_cdrom(no_cd, "vm1-seed.iso") is None
    assert libvirt_domain_xml.find_cdrom(
        libvirt_domain_xml.set_cdrom(no_cd, "lab", "vm1-seed.iso", present=True), "vm1-seed.iso"
    )


def test_spec_hash_ignores_seed():
    assert spec().spec_hash() == spec(seed_volume=None).spec_hash() != spec(vcpus=3).spec_hash()


CLEAN = {"name": "clean-traffic", "parameters": {"IP": ["198.51.100.16"]}}


def test_spec_hash_of_a_domain_without_a_filter_is_unchanged():
    # the hash a domain created before the nwfilter option recorded in its metadata
    assert (
        spec().spec_hash()
        == "sha256:" + hashlib.sha256(json.dumps(legacy_fields(), sort_keys=True).encode()).hexdigest()
    )
    assert (
        spec(nwfilter=dict(libvirt_nwfilter.NONE)).spec_hash() == spec().spec_hash() != spec(nwfilter=CLEAN).spec_hash()
    )


def legacy_fields():
    fields = dataclasses.asdict(spec())
    fields.pop("seed_volume")
    fields.pop("nwfilter")
    return fields


def test_nwfilter_rendered_read_and_replaced():
    xml = libvirt_domain_xml.render_domain_xml(spec(nwfilter=CLEAN))
    ref = ET.fromstring(xml).find("devices/interface/filterref")
    assert ref.get("filter") == "clean-traffic"
    assert [(p.get("name"), p.get("value")) for p in ref] == [("IP", "198.51.100.16")]
    assert libvirt_domain_xml.domain_fields(xml)["nwfilter"] == CLEAN
    off = libvirt_domain_xml.apply_fields(xml, spec(), ["nwfilter"])
    assert ET.fromstring(off).find("devices/interface/filterref") is None
    again = libvirt_domain_xml.apply_fields(off, spec(nwfilter=CLEAN), ["nwfilter"])
    assert libvirt_domain_xml.domain_fields(again)["nwfilter"] == CLEAN
    assert libvirt_domain_xml.domain_fields(again)["mac"] == "52:54:00:01:02:03"


@pytest.mark.parametrize(
    ("option", "ip", "expected"),
    [
        (None, "198.51.100.16/24", None),
        ({"name": "", "parameters": {}}, None, libvirt_nwfilter.NONE),
        ({"name": "clean-traffic", "parameters": {}}, "198.51.100.16/24", CLEAN),
        (
            {"name": "clean-traffic", "parameters": {"IP": "198.51.100.99"}},
            "198.51.100.16/24",
            {"name": "clean-traffic", "parameters": {"IP": ["198.51.100.99"]}},
        ),
        (
            {"name": "clean-traffic", "parameters": {"IP": ["b", "a"]}},
            None,
            {"name": "clean-traffic", "parameters": {"IP": ["a", "b"]}},
        ),
        ({"name": "clean-traffic", "parameters": {}}, None, {"name": "clean-traffic", "parameters": {}}),
    ],
)
def test_nwfilter_canonical(option, ip, expected):
    assert libvirt_nwfilter.canonical(option, ip) == expected


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"name": "bad name", "parameters": {}}, "not a libvirt filter name"),
        ({"name": "", "parameters": {"IP": "1.2.3.4"}}, "needs nwfilter.name"),
        ({"name": "clean-traffic", "parameters": {"1X": "a"}}, "not a variable name"),
        ({"name": "clean-traffic", "parameters": {"IP": ""}}, "needs a value"),
        ({"name": "clean-traffic", "parameters": {"IP": []}}, "needs a value"),
    ],
)
def test_nwfilter_canonical_refuses(option, message):
    with pytest.raises(libvirt_nwfilter.NwfilterError, match=message):
        libvirt_nwfilter.canonical(option, None)


def test_rollback_runs_in_reverse():
    done = []
    rb = libvirt_api.Rollback()
    rb.add("first", lambda: done.append(1))
    rb.add("second", lambda: done.append(2))
    assert rb.run() == (["second", "first"], [])
    assert done == [2, 1]


def test_fault_point(monkeypatch):
    libvirt_api.fault_point("after_seed_upload")
    monkeypatch.setenv(libvirt_api.FAULT_ENV, "after_seed_upload")
    with pytest.raises(libvirt_api.LibvirtVmError, match="injected fault at after_seed_upload"):
        libvirt_api.fault_point("after_seed_upload")
    libvirt_api.fault_point("after_define")


def test_volume_xml_with_backing_store():
    root = ET.fromstring(libvirt_volumes.volume_xml("vm.qcow2", 10, "qcow2", "/pool/base", "qcow2"))
    assert root.findtext("backingStore/path") == "/pool/base"
    assert root.find("target/format").get("type") == "qcow2"


def test_fault_point_kill_and_wait(tmp_path, monkeypatch):
    script = "from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api\n"
    script += "libvirt_api.fault_point('after_define')\nprint('went on')\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), libvirt_api.FAULT_ENV: "after_define:kill"}
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL and "went on" not in killed.stdout

    marker = tmp_path / "waiting"
    env[libvirt_api.FAULT_ENV] = f"after_define:wait:{marker}"
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text().strip() == str(proc.pid) and proc.poll() is None
    marker.unlink()
    assert proc.communicate(timeout=30)[0] == "went on\n"


class _NoUdevConn:
    """A local libvirt connection on a host without udev: neither API lists any interface."""

    def __init__(self, uri="qemu:///system"):
        self.uri = uri

    def getURI(self):
        return self.uri

    def interfaceLookupByName(self, name):
        raise libvirt_api.libvirt.libvirtError(f"Interface not found: {name}")

    def listAllDevices(self, flags):
        return []


def test_bridge_exists_falls_back_to_sysfs_on_a_local_connection(monkeypatch):
    real_isdir = os.path.isdir
    fake = {"/sys/class/net/br0": True, "/sys/class/net/br0/bridge": True, "/sys/class/net/eth0": True}
    monkeypatch.setattr(
        libvirt_api.os.path, "isdir", lambda p: fake.get(p, False) if p.startswith("/sys/") else real_isdir(p)
    )
    assert libvirt_api.bridge_exists(_NoUdevConn(), "br0") is True
    assert libvirt_api.bridge_exists(_NoUdevConn(), "eth0") is False  # a NIC, not a bridge
    assert libvirt_api.bridge_exists(_NoUdevConn(), "br9") is False
    # A remote host's /sys is not this machine's: only libvirt's answer counts.
    assert libvirt_api.bridge_exists(_NoUdevConn("qemu+ssh://root@kvm1/system"), "br0") is False
