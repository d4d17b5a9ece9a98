"""libvirt_cloudinit_vm against the lab's real libvirtd (TCG guests on br0 in namespace frlab-crunchy01).

Run as root:  .venv/bin/pytest -v tests/integration/libvirt
It calls `tests/lab/libvirt up` and `tests/lab/libvirt env`, runs the module through `ansible localhost -m`,
and boots one guest that is reused for every check (each boot under TCG takes about a minute).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from lablib.shell import lab_env, sh, virsh
from lablib.spoof_probe import try_spoofing
from libvirt_lab import LAB_LIBVIRT, domains, lab_vm_args, pool_volumes, run

NAME = "itest01"
IP = "198.51.100.41"
PREFIX = "itest"
GUEST_USER = "ops"
SECRET = "itest-s3cr3t-0b6f9c"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    sh(*[str(LAB_LIBVIRT), "up"])
    env = lab_env([str(LAB_LIBVIRT), "env"])
    tmp = tmp_path_factory.mktemp("libvirt")
    sh(*["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "itest", "-f", str(tmp / "id")])
    env["KEY"] = str(tmp / "id")
    env["PUB"] = (tmp / "id.pub").read_text().strip()
    env["TMP"] = str(tmp)
    cleanup(env)
    yield env
    cleanup(env)


def cleanup(env) -> None:
    for dom in virsh(env["LIBVIRT_URI"], "list", "--all", "--name").split():
        if dom.startswith(PREFIX):
            run({"name": dom, "state": "absent", "uri": env["LIBVIRT_URI"]})
            virsh(env["LIBVIRT_URI"], "destroy", dom, check=False)
            virsh(env["LIBVIRT_URI"], "undefine", dom, check=False)
    for vol in our_volumes(env):
        if vol.startswith(PREFIX):
            virsh(env["LIBVIRT_URI"], "vol-delete", vol, "--pool", env["LAB_POOL"], check=False)


def our_volumes(env) -> set[str]:
    return pool_volumes(env["LIBVIRT_URI"], env["LAB_POOL"], (PREFIX, "base-sha256-"))


def our_domains(env) -> set[str]:
    return domains(env["LIBVIRT_URI"], PREFIX)


def vm_args(env, **kw) -> dict:
    args = {
        "disk_size": "3GiB",
        "vcpus": 1,
        "memory": "1GiB",
        "ip_address": f"{IP}/24",
        "gateway": "198.51.100.1",
        "user_data": {
            "users": [
                {
                    "name": GUEST_USER,
                    "shell": "/bin/bash",
                    "sudo": "ALL=(ALL) NOPASSWD:ALL",
                    "ssh_authorized_keys": [env["PUB"]],
                }
            ],
            "write_files": [{"path": "/var/tmp/itest-secret", "content": SECRET, "permissions": "0600"}],
        },
    }
    return lab_vm_args(env, **{"name": NAME, **args, **kw})


def four_ways(env, args, changed=True) -> list[dict]:
    results = [run(args, check=c, diff=True) for c in (True, False, False, True)]
    for r in results:
        assert not r.get("failed"), r.get("msg")
    assert [r["changed"] for r in results] == [changed, changed, False, False], [r["actions"] for r in results]
    return results


def ssh(env, command: str, timeout: int = 30) -> subprocess.CompletedProcess:
    """command in the guest; a failed connection (ssh's own rc 255: a TCG guest on a busy machine can take longer
    than the connect timeout for its banner) is tried twice more."""
    for _attempt in range(3):
        done = subprocess.run(
            [
                "ip", "netns", "exec", env["LAB_NS"], "ssh", "-i", env["KEY"],
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", "-o", f"ConnectTimeout={min(timeout, 20)}",
                f"{GUEST_USER}@{IP}", command,
            ],
            capture_output=True, text=True, timeout=timeout + 5, check=False,
        )  # fmt: skip
        if done.returncode != 255:
            break
        time.sleep(2)
    return done


def wait_ssh(env, limit: int = 300) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if ssh(env, "true", timeout=10).returncode == 0:
            return time.monotonic() - start
        time.sleep(2)
    log = sh(*["virsh", "-c", env["LIBVIRT_URI"], "domstate", NAME], check=False).stdout
    raise AssertionError(f"no ssh to {GUEST_USER}@{IP} within {limit}s (domain state: {log.strip()})")


def ping(env) -> bool:
    return sh(*["ip", "netns", "exec", env["LAB_NS"], "ping", "-c1", "-W2", IP], check=False).returncode == 0


def test_01_create_four_ways_and_guest_works(lab):
    base_before = our_volumes(lab)
    check, created, _unused1, _unused2 = four_ways(lab, vm_args(lab))
    assert check["uuid"] is None and created["uuid"] and created["state"] == "running"
    vols = created["volumes"]
    assert our_volumes(lab) - base_before <= {vols["base"], f"{NAME}.qcow2", f"{NAME}-seed.iso"}
    waited = wait_ssh(lab)
    print(f"ssh answered {waited:.0f}s after the apply run")
    assert ping(lab)
    assert ssh(lab, "hostname").stdout.strip() == NAME
    status = ssh(lab, "cloud-init status --wait", timeout=240).stdout
    assert "status: done" in status, status
    assert ssh(lab, "sudo cat /var/tmp/itest-secret").stdout.strip() == SECRET
    # overlay is a qcow2 whose backing file is the shared base volume
    overlay_path = virsh(lab["LIBVIRT_URI"], "vol-path", f"{NAME}.qcow2", "--pool", lab["LAB_POOL"]).strip()
    base_path = virsh(lab["LIBVIRT_URI"], "vol-path", vols["base"], "--pool", lab["LAB_POOL"]).strip()
    info = json.loads(sh(*["qemu-img", "info", "-U", "--output=json", overlay_path]).stdout)
    assert info["format"] == "qcow2" and info["backing-filename"] == base_path
    assert info["virtual-size"] == 3 * 1024**3
    # the domain: qemu type, ACPI, serial console on a PTY, no guest agent, no secret, our metadata
    xml = virsh(lab["LIBVIRT_URI"], "dumpxml", NAME)
    assert "<acpi/>" in xml and "type='qemu'" in xml and "org.qemu.guest_agent.0" not in xml
    assert SECRET not in xml and SECRET not in json.dumps(created)
    assert "https://foundation.runners/libvirt_cloudinit_vm/1" in xml
    assert virsh(lab["LIBVIRT_URI"], "ttyconsole", NAME).strip().startswith("/dev/pts/")
    assert "<kernel>" not in xml  # boots from its disk
    mac = created["mac"]
    assert mac.startswith("52:54:00:")
    assert mac in ssh(lab, "ip -o link").stdout


BAD_INPUT = [
    ("missing_image", {"base_image": "/nonexistent/base.qcow2"}, "cannot read base image /nonexistent/base.qcow2"),
    ("corrupt_image", {"base_image": "CORRUPT"}, "is neither a qcow2 image nor a raw disk image"),
    ("truncated_qcow2", {"base_image": "TRUNCATED"}, "is corrupt"),
    ("wrong_checksum", {"base_checksum": "sha256:" + "0" * 64}, "checksum mismatch for base_image"),
    ("url_without_checksum", {"base_image": "https://127.0.0.1:9/b.qcow2"}, "base_checksum (sha256:...) is required"),
    (
        "url_unreachable",
        {"base_image": "https://127.0.0.1:9/b.qcow2", "base_checksum": "sha256:" + "1" * 64},
        "download of base_image https://127.0.0.1:9/b.qcow2 failed",
    ),
    ("unknown_pool", {"pool": "nopool"}, "storage pool 'nopool' not found"),
    ("unknown_bridge", {"bridge": "br-missing"}, "bridge 'br-missing' not found"),
    ("unknown_network", {"bridge": None, "network": "nonet"}, "libvirt network 'nonet' not found"),
    ("memory_invalid", {"memory": "2GB"}, "memory '2GB' is not a valid size"),
    ("memory_too_small", {"memory": 16}, "too small"),
    ("mac_invalid", {"mac": "52:54:00:zz:00:01"}, "is not a MAC address"),
    ("mac_duplicate", {"mac": "DUPLICATE"}, f"already used by domain '{NAME}'"),
    ("uri_unreachable", {"uri": "qemu+tcp://198.51.100.250/system"}, "cannot connect to libvirt at qemu+tcp://"),
    ("foreign_domain", {"name": "itest-foreign"}, "refusing to manage it"),
    ("seed_absent_with_user_data", {"seed": "absent"}, "seed=absent removes the seed, so user_data"),
    ("vcpus_zero", {"vcpus": 0}, "vcpus=0 is invalid"),
    ("invalid_name", {"name": "itest bad/name"}, "is invalid"),
    ("disk_too_small", {"disk_size": "1GiB"}, "smaller than the base image's virtual size"),
    ("bad_ip", {"ip_address": "198.51.100.42"}, "needs a prefix length"),
]


def test_02_bad_input_leaves_nothing(lab):
    tmp = Path(lab["TMP"])
    (tmp / "corrupt.img").write_bytes(b"<html>404 not found</html>" * 1000)
    with open(lab["LAB_GUEST_IMAGE"], "rb") as fh:
        (tmp / "truncated.qcow2").write_bytes(fh.read(4096))
    mac = virsh(lab["LIBVIRT_URI"], "domiflist", NAME).split()[-1]
    foreign = tmp / "foreign.xml"
    foreign.write_text(
        "<domain type='qemu'><name>itest-foreign</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64'>hvm</type></os></domain>"
    )
    virsh(lab["LIBVIRT_URI"], "define", str(foreign))
    try:
        before = (our_domains(lab), our_volumes(lab), virsh(lab["LIBVIRT_URI"], "dumpxml", "itest-foreign"))
        for case, bad, message in BAD_INPUT:
            override = dict(bad)
            if override.get("base_image") == "CORRUPT":
                override["base_image"] = str(tmp / "corrupt.img")
            if override.get("base_image") == "TRUNCATED":
                override["base_image"] = str(tmp / "truncated.qcow2")
            if override.get("mac") == "DUPLICATE":
                override["mac"] = mac
            args = vm_args(lab, name="itest02", ip_address="198.51.100.42/24")
            args.update(override)
            args = {k: v for k, v in args.items() if v is not None}
            res = run(args)
            assert res.get("failed"), (case, res)
            assert message in res["msg"], (case, res["msg"])
            assert SECRET not in json.dumps(res)
            after = (our_domains(lab), our_volumes(lab), virsh(lab["LIBVIRT_URI"], "dumpxml", "itest-foreign"))
            assert after == before, case
            print(f"{case}: {res['msg']}")
    finally:
        virsh(lab["LIBVIRT_URI"], "undefine", "itest-foreign", check=False)


def test_03_memory_drift_then_restart_on_change(lab):
    args = {"name": NAME, "uri": lab["LIBVIRT_URI"], "state": "running", "memory": "1280MiB"}
    check, applied, again, again_check = four_ways(lab, args)
    assert check["changes"] == ["memory_mib"]
    assert '<memory unit="KiB">1048576</memory>' in check["diff"]["before"]
    assert '<memory unit="KiB">1310720</memory>' in check["diff"]["after"]
    for r in (check, applied, again, again_check):
        assert r["restart_required"] is True and r["pending"] == ["memory_mib"]
    assert "<memory unit='KiB'>1310720</memory>" in virsh(lab["LIBVIRT_URI"], "dumpxml", "--inactive", NAME)
    assert "<memory unit='KiB'>1048576</memory>" in virsh(
        lab["LIBVIRT_URI"], "dumpxml", NAME
    )  # still running with 1 GiB
    restart = {**args, "restart_on_change": True, "shutdown_timeout": 180, "force": True}
    res = run(restart)
    assert res["changed"] and res["restart_required"] is False and res["pending"] == []
    assert f"restart domain {NAME} to apply memory_mib" in res["actions"]
    assert "<memory unit='KiB'>1310720</memory>" in virsh(lab["LIBVIRT_URI"], "dumpxml", NAME)
    print(f"ssh back {wait_ssh(lab):.0f}s after the restart")
    mem_kib = int(ssh(lab, "awk '/MemTotal/{print $2}' /proc/meminfo").stdout)
    assert mem_kib > 1100 * 1024, mem_kib
    again = run(restart)
    assert not again["changed"] and again["restart_required"] is False


def test_04_seed_absent_guest_keeps_working(lab):
    assert "sr0" in ssh(lab, "lsblk -dn -o NAME").stdout
    args = {"name": NAME, "uri": lab["LIBVIRT_URI"], "state": "running", "seed": "absent"}
    check, applied, _unused1, _unused2 = four_ways(lab, args)
    assert check["actions"] == [f"detach seed cdrom {NAME}-seed.iso", f"delete seed volume {NAME}-seed.iso"]
    assert applied["volumes"]["seed"] is None
    assert f"{NAME}-seed.iso" not in our_volumes(lab)
    assert "-seed.iso" not in virsh(lab["LIBVIRT_URI"], "domblklist", NAME)
    assert "-seed.iso" not in virsh(lab["LIBVIRT_URI"], "dumpxml", "--inactive", NAME)
    assert "-seed.iso" not in virsh(lab["LIBVIRT_URI"], "dumpxml", NAME)
    keep = ssh(lab, "cat /etc/cloud/cloud.cfg.d/90-foundation-runners-keep-instance.cfg").stdout
    assert keep.strip() == "manual_cache_clean: true"  # written by the seed's vendor-data
    assert ssh(lab, "hostname").stdout.strip() == NAME
    assert "sr0" not in ssh(lab, "lsblk -dn -o NAME").stdout


def test_04b_nwfilter_stops_spoofing_and_applies_live(lab):
    def spoof():
        def guest(script: str) -> str:
            return ssh(lab, "sudo sh -c " + shlex.quote(script), timeout=60).stdout

        # from an unused address to the controller; claim crunchy01's br0 address in the controller's ARP table
        return try_spoofing(
            guest, target="198.51.100.1", spoof_address="198.51.100.48", claim=lab["LAB_HOST_IP"], victims=[[]]
        )

    def filterref(live: bool) -> bool:
        return "<filterref filter='clean-traffic'>" in virsh(
            lab["LIBVIRT_URI"], "dumpxml", *([] if live else ["--inactive"]), NAME
        )

    unfiltered = spoof()
    assert unfiltered.worked, unfiltered  # so that the filtered try below can fail
    args = {"name": NAME, "uri": lab["LIBVIRT_URI"], "state": "running"}
    on = {**args, "nwfilter": {"name": "clean-traffic", "parameters": {"IP": IP}}}
    check, applied, _unused1, _unused2 = four_ways(lab, on)
    assert check["changes"] == applied["changes"] == ["nwfilter"]
    assert applied["actions"] == [
        f"set nwfilter: none -> clean-traffic(IP={IP})",
        f"apply nwfilter clean-traffic(IP={IP}) to the running domain",
    ]
    assert applied["restart_required"] is False and applied["pending"] == []
    assert filterref(live=True) and filterref(live=False)
    filtered = spoof()
    assert filtered.blocked, filtered
    off = run({**args, "nwfilter": {"name": ""}})
    assert off["changed"] and off["restart_required"] is False
    assert not filterref(live=True) and not filterref(live=False)
    print(f"without filter: {unfiltered}; with clean-traffic: {filtered}")


FOREIGN = "itest-foreign"
FOREIGN_MAC = "52:54:00:5a:0f:01"
FOREIGN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{path}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='{mac}'/>
      <source bridge='{bridge}'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
"""


def test_04c_a_foreign_domain_is_adopted_keeping_its_disk(lab):
    """A domain another tool defined (no metadata, a disk given by file path): refused without adopt; with it,
    check mode shows the adoption and changes nothing, the run adds the metadata and the filter and keeps the
    disk and the size (reporting how they differ from the options), and the next run is changed=0."""
    uri, pool = lab["LIBVIRT_URI"], lab["LAB_POOL"]
    virsh(uri, "vol-create-as", pool, f"{FOREIGN}.qcow2", "1G", "--format", "qcow2")
    path = virsh(uri, "vol-path", f"{FOREIGN}.qcow2", "--pool", pool).strip()
    xml = FOREIGN_XML.format(name=FOREIGN, path=path, mac=FOREIGN_MAC, bridge=lab["LAB_BRIDGE"])
    sh(*["virsh", "-q", "-c", uri, "define", "/dev/stdin"], input=xml)
    before = virsh(uri, "dumpxml", "--inactive", FOREIGN)
    args = {
        "name": FOREIGN, "uri": uri, "state": "present", "pool": pool, "bridge": lab["LAB_BRIDGE"],
        "domain_type": "qemu", "vcpus": 2, "memory": "512MiB", "disk_size": "2GiB",
        "ip_address": "198.51.100.44/24", "nwfilter": {"name": "clean-traffic"},
    }  # fmt: skip
    refused = run(args)
    assert refused.get("failed") and "adopt=true takes it over" in refused["msg"], refused
    check = run({**args, "adopt": True}, check=True, diff=True)
    assert check["changed"] and not check.get("failed"), check
    assert virsh(uri, "dumpxml", "--inactive", FOREIGN) == before
    found = check["adoption"]
    assert found["disks"][0]["path"] == path and found["disks"][0]["volume"] == f"{FOREIGN}.qcow2", found
    assert found["interfaces"] == [{"type": "bridge", "source": lab["LAB_BRIDGE"], "mac": FOREIGN_MAC}]
    assert sorted(d.split(":")[0] for d in found["differences"]) == ["disk_size", "vcpus"], found
    adopted = run({**args, "adopt": True}, diff=True)
    assert adopted["changed"] and adopted["adoption"] == found, adopted
    assert any("adopted as it is" in w for w in adopted.get("warnings", [])), adopted
    after = virsh(uri, "dumpxml", "--inactive", FOREIGN)
    assert "foundation.runners" in after and "<filterref filter='clean-traffic'>" in after
    assert f"<source file='{path}'/>" in after and "<vcpu placement='static'>1</vcpu>" in after
    assert virsh(uri, "vol-info", "--bytes", f"{FOREIGN}.qcow2", "--pool", pool).split("Capacity:")[1].split()[0] == (
        str(1024**3)
    )
    same = {**args, "vcpus": 1, "disk_size": "1GiB", "adopt": True}
    assert [run(same, check=c)["changed"] for c in (True, False)] == [False, False]
    removed = run({"name": FOREIGN, "uri": uri, "state": "absent"})
    assert removed["changed"] and FOREIGN not in our_domains(lab) and f"{FOREIGN}.qcow2" not in our_volumes(lab)
    print(f"adopted {FOREIGN}: {check['actions']}; differences {found['differences']}")


def test_05_stopped_then_running(lab):
    base = {"name": NAME, "uri": lab["LIBVIRT_URI"], "shutdown_timeout": 180}
    stopped = four_ways(lab, {**base, "state": "stopped"})
    assert stopped[1]["state"] == "shutoff" and "warnings" not in stopped[1]  # ACPI, not forced
    assert virsh(lab["LIBVIRT_URI"], "domstate", NAME).strip() == "shut off"
    assert not ping(lab)
    running = four_ways(lab, {**base, "state": "running"})
    assert running[1]["state"] == "running"
    print(f"ssh back {wait_ssh(lab):.0f}s after start (no seed attached)")
    assert ssh(lab, "hostname").stdout.strip() == NAME
    assert ping(lab)


@pytest.mark.parametrize("point", ["after_seed_upload", "after_start"])
def test_06_fault_injection_rolls_back(lab, point):
    before = (our_domains(lab), our_volumes(lab))
    args = vm_args(lab, name="itest03", ip_address="198.51.100.43/24")
    res = run(args, extra_env={"FOUNDATION_RUNNERS_FAULT": point})
    assert res.get("failed") and f"injected fault at {point}" in res["msg"], res
    assert res["rolled_back"] and not res["rollback_failed"]
    assert (our_domains(lab), our_volumes(lab)) == before
    print(f"{point}: rolled back {res['rolled_back']}")


def test_07_absent_removes_everything_but_base(lab):
    xml = virsh(lab["LIBVIRT_URI"], "dumpxml", NAME)
    base = [v for v in our_volumes(lab) if v.startswith("base-sha256-")]
    args = {"name": NAME, "uri": lab["LIBVIRT_URI"], "state": "absent"}
    check, _unused1, _unused2, _unused3 = four_ways(lab, args)
    assert check["diff"]["after"] == "" and NAME in check["diff"]["before"]
    assert NAME not in our_domains(lab)
    assert our_volumes(lab) == set(base) and base
    assert "metadata" in xml
    assert not ping(lab)
