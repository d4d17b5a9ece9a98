from __future__ import annotations

import hashlib
import http.server
import ssl
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import libvirt
import pytest
from serving import serving

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_options as libvirt_vm_options
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes
from ansible_collections.foundation.runners.plugins.modules import libvirt_cloudinit_vm
from ansible_collections.foundation.runners.plugins.modules.libvirt_cloudinit_vm import main

URI = "test:///default"
POOL = "default-pool"
SECRET = "s3cr3t-runner-token"


def vm_args(lab, **kw):
    args = {
        "name": "vm1",
        "uri": URI,
        "pool": POOL,
        "base_image": lab.image,
        "bridge": "eth1",
        "vcpus": 2,
        "memory": "1GiB",
        "ip_address": "198.51.100.20/24",
        "gateway": "198.51.100.1",
        "user_data": {"runcmd": [["echo", SECRET]]},
    }
    args.update(kw)
    return {k: v for k, v in args.items() if v is not None}


def four_ways(run_module, args, first_changed=True):
    """check, apply, apply again, check again; returns the four results."""
    results = [run_module(main, args, check_mode=c, diff=True) for c in (True, False, False, True)]
    for r in results:
        assert not r.get("failed"), r.get("msg")
    assert results[0]["changed"] is first_changed
    assert results[1]["changed"] is first_changed
    assert results[2]["changed"] is False, results[2]["actions"]
    assert results[3]["changed"] is False, results[3]["actions"]
    return results


def test_create_running_four_ways(lab, run_module):
    args = vm_args(lab, state="running")
    check = run_module(main, args, check_mode=True, diff=True)
    assert check["changed"] and check["uuid"] is None and check["state"] == "running"
    assert check["diff"]["before"] == "" and ' type="kvm">' in check["diff"]["after"]
    assert lab.domains() == set() and lab.volumes() == set() and lab.uploads == []

    res = run_module(main, args, diff=True)
    assert res["changed"] and res["state"] == "running" and res["uuid"]
    base = res["volumes"]["base"]
    assert base.startswith("base-sha256-")
    assert lab.volumes() == {base, "vm1.qcow2", "vm1-seed.iso"}
    assert lab.uploads == [base, "vm1-seed.iso"]
    assert res["mac"] == libvirt_vm_options.normalize_mac(res["mac"]) and res["mac"].startswith("52:54:00:")
    assert res["instance_id"] == "iid-vm1"
    xml = lab.xml("vm1")
    assert SECRET not in xml and SECRET not in str(res)
    pool = lab.conn.storagePoolLookupByName(POOL)
    overlay = ET.fromstring(pool.storageVolLookupByName("vm1.qcow2").XMLDesc(0))
    assert overlay.findtext("backingStore/path") == pool.storageVolLookupByName(base).path()
    assert overlay.find("target/format").get("type") == "qcow2"
    assert SECRET.encode() in lab.store[pool.storageVolLookupByName("vm1-seed.iso").key()]

    again = run_module(main, args, diff=True)
    assert not again["changed"] and again["uuid"] == res["uuid"] and "diff" not in again
    assert lab.uploads == [base, "vm1-seed.iso"]  # base neither re-imported nor seed rewritten
    again_check = run_module(main, args, check_mode=True, diff=True)
    assert not again_check["changed"]


def test_create_present_stays_off_and_uses_network(lab, run_module):
    results = four_ways(run_module, vm_args(lab, state="present", bridge=None, network="default", autostart=True))
    assert results[1]["state"] == "shutoff" and lab.state("vm1") == libvirt.VIR_DOMAIN_SHUTOFF
    root = ET.fromstring(lab.xml("vm1"))
    assert root.find("devices/interface").get("type") == "network"
    assert root.find("devices/interface/source").get("network") == "default"
    assert lab.conn.lookupByName("vm1").autostart() == 1


def test_base_volume_is_shared(lab, run_module):
    first = run_module(main, vm_args(lab))
    second = run_module(main, vm_args(lab, name="vm2", ip_address="198.51.100.21/24"))
    assert first["volumes"]["base"] == second["volumes"]["base"]
    assert first["mac"] != second["mac"]
    assert lab.uploads.count(first["volumes"]["base"]) == 1
    removed = run_module(main, {"name": "vm1", "uri": URI, "state": "absent"})
    assert removed["changed"]
    assert lab.volumes() == {first["volumes"]["base"], "vm2.qcow2", "vm2-seed.iso"}


def test_memory_drift_four_ways_running(lab, run_module):
    run_module(main, vm_args(lab, state="running"))
    args = vm_args(lab, state="running", memory=2048)
    check, applied, again, again_check = four_ways(run_module, args)
    assert check["changes"] == ["memory_mib"] and check["restart_required"]
    assert '<memory unit="KiB">1048576</memory>' in check["diff"]["before"]
    assert '<memory unit="KiB">2097152</memory>' in check["diff"]["after"]
    assert check["diff"]["before_header"] == "domain vm1"
    assert libvirt_domain_xml.domain_fields(lab.xml("vm1"))["memory_mib"] == 2048
    assert libvirt_domain_xml.domain_fields(lab.xml("vm1", 0))["memory_mib"] == 1024  # the running domain is untouched
    for r in (applied, again, again_check):
        assert r["restart_required"] and r["pending"] == ["memory_mib"]


def test_restart_on_change_applies_now(lab, run_module):
    run_module(main, vm_args(lab, state="running"))
    args = vm_args(lab, state="running", vcpus=3, restart_on_change=True)
    check, applied, _unused1, _unused2 = four_ways(run_module, args)
    assert check["restart_required"] is False and "restart domain vm1 to apply vcpus" in check["actions"]
    assert applied["restart_required"] is False and applied["pending"] == []
    assert libvirt_domain_xml.domain_fields(lab.xml("vm1", 0))["vcpus"] == 3
    assert lab.state("vm1") == libvirt.VIR_DOMAIN_RUNNING


def test_network_and_mac_drift(lab, run_module):
    run_module(main, vm_args(lab))
    four_ways(
        run_module, vm_args(lab, bridge=None, network="default", mac="52:54:00:12:34:56", ip_address=None, gateway=None)
    )
    fields = libvirt_domain_xml.domain_fields(lab.xml("vm1"))
    assert (fields["interface_type"], fields["interface_source"], fields["mac"]) == (
        "network",
        "default",
        "52:54:00:12:34:56",
    )


def test_omitted_options_are_kept(lab, run_module):
    run_module(main, vm_args(lab, vcpus=3, domain_type="qemu"))
    res = run_module(main, {"name": "vm1", "uri": URI, "state": "present", "seed": "absent"})
    assert res["changed"]  # only the seed removal
    assert libvirt_domain_xml.domain_fields(lab.xml("vm1"))["vcpus"] == 3
    assert ET.fromstring(lab.xml("vm1")).get("type") == "qemu"


def test_stopped_and_running_four_ways(lab, run_module):
    run_module(main, vm_args(lab, state="running"))
    stopped = four_ways(run_module, {"name": "vm1", "uri": URI, "state": "stopped", "shutdown_timeout": 5})
    assert stopped[0]["diff"] == {"before": "state: running\n", "after": "state: shutoff\n"}
    assert lab.state("vm1") == libvirt.VIR_DOMAIN_SHUTOFF
    running = four_ways(run_module, {"name": "vm1", "uri": URI, "state": "running"})
    assert running[1]["state"] == "running" and lab.state("vm1") == libvirt.VIR_DOMAIN_RUNNING


def test_stop_timeout_without_force_fails(lab, run_module, monkeypatch):
    run_module(main, vm_args(lab, state="running"))
    monkeypatch.setattr(libvirt.virDomain, "shutdown", lambda self: 0)  # a guest that ignores ACPI
    res = run_module(main, {"name": "vm1", "uri": URI, "state": "stopped", "shutdown_timeout": 0})
    assert res["failed"] and "did not shut down within shutdown_timeout=0s" in res["msg"]
    assert lab.state("vm1") == libvirt.VIR_DOMAIN_RUNNING
    res = run_module(main, {"name": "vm1", "uri": URI, "state": "stopped", "shutdown_timeout": 0, "force": True})
    assert res["changed"] and lab.state("vm1") == libvirt.VIR_DOMAIN_SHUTOFF
    assert "powered off" in str(res["warnings"])


def test_seed_absent_four_ways_stopped(lab, run_module):
    run_module(main, vm_args(lab, state="stopped"))
    args = {"name": "vm1", "uri": URI, "state": "stopped", "seed": "absent"}
    check, applied, _unused1, _unused2 = four_ways(run_module, args)
    assert "delete seed volume vm1-seed.iso" in check["actions"]
    assert "vm1-seed.iso" in check["diff"]["before"] and "vm1-seed.iso" not in check["diff"]["after"]
    assert "vm1-seed.iso" not in lab.volumes() and libvirt_domain_xml.find_cdrom(lab.xml("vm1"), "vm1-seed.iso") is None
    assert libvirt_api.read_metadata(lab.conn.lookupByName("vm1"))["seed-volume"] == ""
    assert applied["volumes"]["seed"] is None
    # seed omitted: a removed seed stays removed
    four_ways(run_module, vm_args(lab, state="stopped"), first_changed=False)
    assert "vm1-seed.iso" not in lab.volumes()
    # seed=present: the seed is rebuilt and attached again
    four_ways(run_module, vm_args(lab, state="stopped", seed="present"))
    assert "vm1-seed.iso" in lab.volumes() and libvirt_domain_xml.find_cdrom(lab.xml("vm1"), "vm1-seed.iso")


def test_seed_omitted_names_a_seed_volume_an_interrupted_removal_left(lab, run_module):
    run_module(main, vm_args(lab, state="stopped"))
    run_module(main, {"name": "vm1", "uri": URI, "state": "stopped", "seed": "absent"})
    assert run_module(main, vm_args(lab, state="stopped"))["volumes"]["seed"] is None
    # what a removal stopped between the new definition and the volume's deletion leaves
    pool = lab.conn.storagePoolLookupByName(POOL)
    pool.createXML(libvirt_volumes.volume_xml("vm1-seed.iso", 1024, "raw"), 0)
    left = run_module(main, vm_args(lab, state="stopped"))
    assert not left["changed"] and left["volumes"]["seed"] == "vm1-seed.iso"
    run_module(main, {"name": "vm1", "uri": URI, "state": "stopped", "seed": "absent"})
    assert "vm1-seed.iso" not in lab.volumes()
    assert run_module(main, vm_args(lab, state="stopped"))["volumes"]["seed"] is None


def test_seed_content_change_rewrites_seed(lab, run_module):
    run_module(main, vm_args(lab))
    other = {"runcmd": [["echo", "other"]]}
    four_ways(run_module, vm_args(lab, user_data=other), first_changed=False)  # seed omitted: left alone
    check, _unused1, _unused2, _unused3 = four_ways(run_module, vm_args(lab, user_data=other, seed="present"))
    assert check["actions"] == ["rewrite seed vm1-seed.iso (content changed)"]
    assert "diff" not in check  # the domain XML does not change; the seed content is never shown


def test_seed_absent_running_updates_live_metadata(lab, run_module, monkeypatch):
    run_module(main, vm_args(lab, state="running"))
    detached = []
    # the test driver cannot hot-unplug a disk: record the call (the live XML keeps its cdrom, so one run only)
    monkeypatch.setattr(libvirt.virDomain, "detachDeviceFlags", lambda dom, xml, flags: detached.append(flags))
    res = run_module(main, {"name": "vm1", "uri": URI, "state": "running", "seed": "absent"})
    assert res["changed"] and "vm1-seed.iso" not in lab.volumes()
    assert detached == [libvirt.VIR_DOMAIN_AFFECT_LIVE]
    live = lab.conn.lookupByName("vm1").metadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, libvirt_domain_xml.METADATA_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE
    )
    assert "vm1-seed.iso" not in live


def test_absent_four_ways_keeps_base(lab, run_module):
    created = run_module(main, vm_args(lab, state="running"))
    results = four_ways(run_module, {"name": "vm1", "uri": URI, "state": "absent"})
    assert results[0]["diff"]["after"] == "" and "vm1.qcow2" in results[0]["diff"]["before"]
    assert lab.domains() == set()
    assert lab.volumes() == {created["volumes"]["base"]}


def test_grow_disk(lab, run_module, monkeypatch):
    run_module(main, vm_args(lab))
    grown = {}
    real_info = libvirt.virStorageVol.info

    def fake_info(vol):  # the test driver has no virStorageVolResize: keep the new size here
        info = real_info(vol)
        return [info[0], grown.get(vol.name(), info[1]), info[2]]

    monkeypatch.setattr(libvirt.virStorageVol, "info", fake_info)
    monkeypatch.setattr(libvirt.virStorageVol, "resize", lambda vol, size, flags: grown.__setitem__(vol.name(), size))
    check, _unused1, _unused2, _unused3 = four_ways(run_module, vm_args(lab, disk_size="1GiB"))
    assert check["changes"] == ["disk_size"]
    assert grown == {"vm1.qcow2": 1024**3}
    res = run_module(main, vm_args(lab, disk_size="128MiB"))
    assert res["failed"] and "shrinking is not supported" in res["msg"]


def test_refuses_foreign_domain(lab, run_module):
    before = lab.xml("test")
    for state in ("running", "absent", "stopped"):
        res = run_module(main, vm_args(lab, name="test", state=state))
        assert res["failed"] and "was not created by foundation.runners.libvirt_cloudinit_vm" in res["msg"]
    assert lab.xml("test") == before and lab.volumes() == set()


def test_adopting_a_domain_whose_disk_is_in_no_pool_is_refused_with_the_fix(lab, run_module):
    before = lab.xml("test")
    for check in (True, False):
        res = run_module(main, vm_args(lab, name="test", adopt=True), check_mode=check)
        assert res["failed"] and "is not a volume of a libvirt storage pool" in res["msg"], res
        assert "virsh pool-define-as" in res["msg"]
    absent = run_module(main, vm_args(lab, name="test", state="absent", adopt=True))
    assert absent["failed"] and "refusing to manage it" in absent["msg"]
    assert lab.xml("test") == before and lab.volumes() == set()


@pytest.mark.parametrize("point", libvirt_api.FAULT_POINTS)
def test_fault_injection_rolls_back(lab, run_module, monkeypatch, point):
    monkeypatch.setenv(libvirt_api.FAULT_ENV, point)
    res = run_module(main, vm_args(lab, state="running"))
    assert res["failed"] and f"injected fault at {point}" in res["msg"]
    assert res["rolled_back"] and not res["rollback_failed"]
    assert lab.domains() == set() and lab.volumes() == set()


def test_fault_after_existing_base_keeps_base(lab, run_module, monkeypatch):
    first = run_module(main, vm_args(lab, name="vm0", ip_address=None, gateway=None))
    monkeypatch.setenv(libvirt_api.FAULT_ENV, "after_seed_upload")
    res = run_module(main, vm_args(lab))
    assert res["failed"]
    assert res["rolled_back"] == [
        "delete volume default-pool/vm1-seed.iso",
        "delete volume default-pool/vm1.qcow2",
        "undefine domain vm1",
    ]
    assert lab.domains() == {"vm0"} and lab.volumes() == {first["volumes"]["base"], "vm0.qcow2", "vm0-seed.iso"}


def corrupt_image(lab, tmp_path):
    path = tmp_path / "corrupt.qcow2"
    with open(lab.image, "rb") as fh:
        path.write_bytes(fh.read()[:200])
    return str(path)


BAD_INPUT = [
    ("missing_image", {"base_image": "/nonexistent/base.qcow2"}, "cannot read base image /nonexistent/base.qcow2"),
    ("corrupt_image", {"base_image": "CORRUPT"}, "is corrupt"),
    ("wrong_checksum", {"base_checksum": "sha256:" + "0" * 64}, "checksum mismatch for base_image"),
    ("bad_checksum_format", {"base_checksum": "md5:1234"}, "base_checksum 'md5:1234' is invalid"),
    (
        "url_without_checksum",
        {"base_image": "https://images.example/b.qcow2"},
        "base_checksum (sha256:...) is required",
    ),
    ("http_url", {"base_image": "http://images.example/b.qcow2"}, "only local paths and https:// URLs"),
    ("unknown_pool", {"pool": "nopool"}, "storage pool 'nopool' not found"),
    ("unknown_bridge", {"bridge": "br-missing"}, "bridge 'br-missing' not found"),
    ("unknown_network", {"bridge": None, "network": "nonet"}, "libvirt network 'nonet' not found"),
    ("bridge_and_network", {"network": "default"}, "mutually exclusive: bridge|network"),
    ("no_interface", {"bridge": None}, "needs bridge or network"),
    ("memory_unit", {"memory": "2GB"}, "memory '2GB' is not a valid size"),
    ("memory_too_small", {"memory": 16}, "too small"),
    ("memory_fraction", {"memory": "1000000B"}, "not a whole number of MiB"),
    ("invalid_mac", {"mac": "52:54:00:zz:00:01"}, "is not a MAC address"),
    ("multicast_mac", {"mac": "01:00:5e:00:00:01"}, "multicast"),
    ("duplicate_mac", {"mac": "aa:bb:cc:dd:ee:ff"}, "already used by domain 'test'"),
    ("unreachable_uri", {"uri": "qemu+tcp://198.51.100.250:1/system?no_verify=1"}, "cannot connect to libvirt at"),
    ("unsupported_uri", {"uri": "nosuchdriver:///x"}, "cannot connect to libvirt at nosuchdriver:///x"),
    ("foreign_domain", {"name": "test"}, "refusing to manage it"),
    ("seed_absent_with_user_data", {"seed": "absent"}, "seed=absent removes the seed, so user_data"),
    ("vcpus_zero", {"vcpus": 0}, "vcpus=0 is invalid"),
    ("invalid_name", {"name": "bad name/x"}, "name 'bad name/x' is invalid"),
    ("bad_ip", {"ip_address": "198.51.100.20"}, "needs a prefix length"),
    ("gateway_without_ip", {"ip_address": None}, "gateway needs ip_address"),
    ("disk_too_small", {"disk_size": "1MiB"}, "smaller than the base image's virtual size"),
    ("no_base_image", {"base_image": None}, "needs base_image"),
    ("missing_base_volume", {"base_image": None, "base_volume": "nope"}, "base_volume 'nope' does not exist"),
    ("leftover_overlay", {"_leftover": "vm1.qcow2"}, "volume 'vm1.qcow2' already exists"),
    ("bad_nwfilter", {"nwfilter": {"name": "no such"}}, "not a libvirt filter name"),
    ("unknown_nwfilter", {"nwfilter": {"name": "no-such-filter"}}, "network filter 'no-such-filter' is not defined"),
]


@pytest.mark.parametrize("case", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_leaves_nothing(lab, run_module, tmp_path, case):
    _unused1, override, message = case
    override = dict(override)
    leftover = override.pop("_leftover", None)
    if override.get("base_image") == "CORRUPT":
        override["base_image"] = corrupt_image(lab, tmp_path)
    if leftover:
        lab.conn.storagePoolLookupByName(POOL).createXML(libvirt_volumes.volume_xml(leftover, 1024, "qcow2"), 0)
    args = vm_args(lab, state="running")
    args.update(override)
    args = {k: v for k, v in args.items() if v is not None}
    before = (lab.domains(), lab.volumes(), lab.xml("test"))
    for check_mode in (True, False):
        res = run_module(main, args, check_mode=check_mode)
        assert res.get("failed"), res
        assert message in res["msg"], res["msg"]
        assert SECRET not in res["msg"]
        assert (lab.domains(), lab.volumes(), lab.xml("test")) == before


# ---------------------------------------------------------------- https base image (check mode, ca_path)


@dataclass
class HttpsImage:
    url: str
    sha256: str
    cert: str
    requests: list[str]


@pytest.fixture
def https_image(lab, tmp_path, monkeypatch):
    """The lab image served over TLS on loopback with a self-signed certificate for 127.0.0.1."""
    for var in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    openssl += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        openssl,
        check=True,
        capture_output=True,
    )
    with open(lab.image, "rb") as fh:
        data = fh.read()
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path != "/base.qcow2":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with serving(server):
        url = f"https://127.0.0.1:{server.server_address[1]}/base.qcow2"
        yield HttpsImage(url, hashlib.sha256(data).hexdigest(), str(cert), requests)


def https_args(lab, image, **kw):
    args = {"base_image": image.url, "base_checksum": f"sha256:{image.sha256}", "ca_path": image.cert}
    args.update(kw)
    return vm_args(lab, **args)


def test_https_base_image_four_ways(lab, run_module, https_image):
    results = four_ways(run_module, https_args(lab, https_image, state="running"))
    base = f"base-sha256-{https_image.sha256[:16]}"
    assert f"import base volume {base} from {https_image.url}" in results[0]["actions"]
    assert results[1]["actions"][0] == results[0]["actions"][0]
    assert https_image.requests == ["/base.qcow2", "/base.qcow2"]  # check mode and apply; then the volume exists
    assert lab.uploads == [base, "vm1-seed.iso"]


def test_https_check_mode_does_not_upload(lab, run_module, https_image):
    res = run_module(main, https_args(lab, https_image, disk_size="64MiB"), check_mode=True)
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] and https_image.requests == ["/base.qcow2"]
    assert lab.volumes() == set() and lab.uploads == [] and lab.domains() == set()


HTTPS_FAILURES = [
    ("dead_url", {"_path": "/missing.qcow2"}, "download of base_image https://127.0.0.1"),
    ("untrusted_certificate", {"ca_path": None}, "certificate verify failed"),
    ("wrong_checksum", {"base_checksum": "sha256:" + "0" * 64}, "checksum mismatch for base_image https://"),
    ("disk_too_small", {"disk_size": "1MiB"}, "smaller than the base image's virtual size (67108864 bytes)"),
]


@pytest.mark.parametrize("case", HTTPS_FAILURES, ids=[c[0] for c in HTTPS_FAILURES])
def test_https_check_mode_fails_like_the_real_run(lab, run_module, https_image, case):
    _unused, override, message = case
    override = dict(override)
    path = override.pop("_path", None)
    args = https_args(lab, https_image, state="running", **override)
    if path:
        args["base_image"] = https_image.url.replace("/base.qcow2", path)
    args = {k: v for k, v in args.items() if v is not None}
    before = (lab.domains(), lab.volumes())
    results = [run_module(main, args, check_mode=check_mode) for check_mode in (True, False)]
    for res in results:
        assert res.get("failed"), res
        assert message.lower() in res["msg"].lower(), res["msg"]
        assert (lab.domains(), lab.volumes()) == before
    assert results[1]["msg"].startswith(results[0]["msg"])  # the real run may add what it rolled back


def test_ca_path_is_passed_to_fetch_url(lab, run_module, monkeypatch, tmp_path):
    calls = []

    def fake_fetch_url(module, url, **kwargs):
        calls.append((url, kwargs))
        return None, {"status": 404, "msg": "not here"}

    monkeypatch.setattr(libvirt_cloudinit_vm, "fetch_url", fake_fetch_url)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    args = vm_args(
        lab,
        base_image="https://images.example/b.qcow2",
        base_checksum="sha256:" + "0" * 64,
        ca_path=str(bundle),
        download_timeout=7,
    )
    res = run_module(main, args, check_mode=True)
    assert (
        res["failed"] and "download of base_image https://images.example/b.qcow2 failed: [404] not here" in res["msg"]
    )
    assert calls == [("https://images.example/b.qcow2", {"timeout": 7, "ca_path": str(bundle)})]
