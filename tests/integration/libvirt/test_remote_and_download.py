"""libvirt_cloudinit_vm through a remote URI (qemu+ssh://) and with an https:// base image.

Run as root:  .venv/bin/pytest -v tests/integration/libvirt/test_remote_and_download.py
It calls `tests/lab/libvirt up`/`env` and `tests/lab/sshd up`/`env` for crunchy01. Nothing boots: every
domain is only defined (state present). Domains and volumes made here are named remote-*, and the
fixtures remove them again, leaving everything else on the shared libvirtd alone.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import ssl
import subprocess
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path

import pytest
from lablib.shell import lab_env, sh, virsh
from libvirt_lab import LAB_LIBVIRT, LAB_SSHD, domains, pool_volumes, run
from serving import serving

HOST = "crunchy01"
PREFIX = "remote-"
REMOTE_VM = "remote-vm01"
REMOTE_BASE = "remote-base"
HTTPS_VM = "remote-https01"
HTTPS_BASE = "remote-https-base"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


def volumes(env) -> set[str]:
    """Names of the remote-* volumes in the lab pool."""
    return pool_volumes(env["LIBVIRT_URI"], env["LAB_POOL"], (PREFIX,))


def our_domains(env) -> set[str]:
    return domains(env["LIBVIRT_URI"], PREFIX)


def remove_domain(env, name: str) -> None:
    """The module's own absent first, then virsh, so a half-made domain goes too (volumes are left)."""
    if name in our_domains(env):
        run({"name": name, "state": "absent", "uri": env["LIBVIRT_URI"]})
        virsh(env["LIBVIRT_URI"], "destroy", name, check=False)
        virsh(env["LIBVIRT_URI"], "undefine", name, check=False)


def delete_volumes(env, names) -> None:
    present = volumes(env)
    for vol in names:
        if vol in present:
            virsh(env["LIBVIRT_URI"], "vol-delete", vol, "--pool", env["LAB_POOL"], check=False)


def clean_slate(env, name: str, base: str):
    """Remove the domain, its volumes and its base before and after the test using it."""
    remove_domain(env, name)
    delete_volumes(env, our_objects(env, name, base)[1:])
    try:
        yield env
    finally:
        remove_domain(env, name)
        delete_volumes(env, our_objects(env, name, base)[1:])


def our_objects(env, name: str, base: str) -> list[str]:
    return [name, f"{name}.qcow2", f"{name}-seed.iso", base]


@pytest.fixture(scope="module")
def lab():
    if not LAB_LIBVIRT.exists() or not LAB_SSHD.exists():
        pytest.skip("tests/lab/libvirt or tests/lab/sshd is not there")
    sh(*[str(LAB_LIBVIRT), "up", HOST])
    sh(*[str(LAB_SSHD), "up", HOST])
    env = lab_env([str(LAB_LIBVIRT), "env", HOST])
    env.update(lab_env([str(LAB_SSHD), "env", HOST]))
    return env


def vm_args(env, **kw) -> dict:
    args = {
        "name": REMOTE_VM,
        "uri": env["LAB_REMOTE_URI"],
        "state": "present",
        "domain_type": "qemu",
        "pool": env["LAB_POOL"],
        "bridge": env["LAB_BRIDGE"],
        "base_image": env["LAB_GUEST_IMAGE"],
        "base_volume": REMOTE_BASE,
        "vcpus": 1,
        "memory": "256MiB",
        "ip_address": "198.51.100.43/24",
    }
    args.update(kw)
    return {k: v for k, v in args.items() if v is not None}


# ---------------------------------------------------------------------------------------- remote URI


@pytest.fixture
def remote_vm(lab):
    """Nothing of this test exists before; afterwards the domain, its volumes and remote-base are gone."""
    yield from clean_slate(lab, REMOTE_VM, REMOTE_BASE)


def test_remote_uri_reaches_lab_libvirtd(lab):
    out = sh(*["virsh", "-c", lab["LAB_REMOTE_URI"], "uri"], stdin=subprocess.DEVNULL)
    assert out.stdout.strip() == lab["LAB_REMOTE_URI"]
    pools = sh(*["virsh", "-c", lab["LAB_REMOTE_URI"], "pool-list", "--name"], stdin=subprocess.DEVNULL)
    assert lab["LAB_POOL"] in pools.stdout.split()


def test_remote_present_idempotent_then_absent(remote_vm):
    env = remote_vm
    args = vm_args(env)
    results = [run(args, check=c, diff=True) for c in (True, False, False, True)]
    for r in results:
        assert not r.get("failed"), r.get("msg")
    assert [r["changed"] for r in results] == [True, True, False, False], [r.get("actions") for r in results]
    first, applied = results[0], results[1]
    assert any(a.startswith(f"import base volume {REMOTE_BASE}") for a in first["actions"]), first["actions"]
    assert applied["volumes"] == {
        "pool": env["LAB_POOL"],
        "base": REMOTE_BASE,
        "overlay": f"{REMOTE_VM}.qcow2",
        "seed": f"{REMOTE_VM}-seed.iso",
    }
    assert applied["state"] == "shutoff"
    assert results[2]["actions"] == [] and results[3]["actions"] == []

    # The domain is there, seen through the remote URI and through the local socket alike.
    local, remote = env["LIBVIRT_URI"], env["LAB_REMOTE_URI"]
    for uri in (local, remote):
        assert REMOTE_VM in virsh(uri, "list", "--all", "--name").split()
    assert virsh(local, "domuuid", REMOTE_VM).strip() == applied["uuid"]
    assert {REMOTE_BASE, f"{REMOTE_VM}.qcow2", f"{REMOTE_VM}-seed.iso"} <= volumes(env)

    # The overlay is a qcow2 whose backing file is remote-base.
    base_path = virsh(local, "vol-path", REMOTE_BASE, "--pool", env["LAB_POOL"]).strip()
    overlay_path = virsh(local, "vol-path", f"{REMOTE_VM}.qcow2", "--pool", env["LAB_POOL"]).strip()
    vol_xml = ET.fromstring(virsh(local, "vol-dumpxml", f"{REMOTE_VM}.qcow2", "--pool", env["LAB_POOL"]))
    assert vol_xml.find("./target/format").get("type") == "qcow2"
    assert vol_xml.findtext("./backingStore/path") == base_path
    info = json.loads(sh(*["qemu-img", "info", "-U", "--output=json", overlay_path]).stdout)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == base_path
    # The base came through the stream byte for byte.
    image_sha = hashlib.sha256(Path(env["LAB_GUEST_IMAGE"]).read_bytes()).hexdigest()
    assert hashlib.sha256(Path(base_path).read_bytes()).hexdigest() == image_sha
    dom_xml = ET.fromstring(virsh(local, "dumpxml", "--inactive", REMOTE_VM))
    disks = {
        (d.get("device"), d.find("./source").get("pool"), d.find("./source").get("volume"))
        for d in dom_xml.findall("./devices/disk")
    }
    assert ("disk", env["LAB_POOL"], f"{REMOTE_VM}.qcow2") in disks, disks
    assert ("cdrom", env["LAB_POOL"], f"{REMOTE_VM}-seed.iso") in disks, disks

    # absent over the remote URI: domain, overlay and seed go, the base stays.
    gone = run({"name": REMOTE_VM, "state": "absent", "uri": remote})
    assert not gone.get("failed"), gone.get("msg")
    assert gone["changed"] and gone["state"] == "absent"
    assert REMOTE_VM not in virsh(local, "list", "--all", "--name").split()
    left = volumes(env)
    assert REMOTE_BASE in left
    assert f"{REMOTE_VM}.qcow2" not in left and f"{REMOTE_VM}-seed.iso" not in left
    again = run({"name": REMOTE_VM, "state": "absent", "uri": remote})
    assert not again.get("failed") and not again["changed"], again


# ---------------------------------------------------------------------------------------- https base image


@pytest.fixture(scope="module")
def https_image(lab, tmp_path_factory):
    """Serves LAB_GUEST_IMAGE as https://127.0.0.1:PORT/image.qcow2 with a self-signed certificate."""
    tmp = tmp_path_factory.mktemp("https")
    www = tmp / "www"
    www.mkdir()
    (www / "image.qcow2").symlink_to(lab["LAB_GUEST_IMAGE"])
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    sh(*[*openssl, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(www)))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield {
            "url": f"https://127.0.0.1:{server.server_address[1]}/image.qcow2",
            "sha256": hashlib.sha256(Path(lab["LAB_GUEST_IMAGE"]).read_bytes()).hexdigest(),
            "cert": str(cert),
        }


@pytest.fixture
def https_vm(lab):
    yield from clean_slate(lab, HTTPS_VM, HTTPS_BASE)


def https_args(env, image, **kw) -> dict:
    args = {
        "name": HTTPS_VM,
        "uri": env["LIBVIRT_URI"],
        "base_image": image["url"],
        "base_volume": HTTPS_BASE,
        "base_checksum": f"sha256:{image['sha256']}",
        "ip_address": "198.51.100.44/24",
    }
    args.update(kw)
    return vm_args(env, **args)


def assert_nothing_made(env) -> None:
    assert HTTPS_VM not in our_domains(env)
    assert not (volumes(env) & set(our_objects(env, HTTPS_VM, HTTPS_BASE)[1:])), volumes(env)


def test_https_self_signed_refused_by_default(https_vm, https_image):
    env = https_vm
    result = run(https_args(env, https_image))
    assert result.get("failed"), result
    msg = result["msg"]
    assert "download of base_image" in msg and https_image["url"] in msg, msg
    assert "CERTIFICATE_VERIFY_FAILED" in msg or "certificate verify failed" in msg.lower(), msg
    assert not result.get("changed")
    assert_nothing_made(env)


def test_https_import_trusting_the_certificate(https_vm, https_image):
    """validate_certs stays on; ca_path names the lab's self-signed certificate as the trusted CA."""
    env = https_vm
    args = https_args(env, https_image, ca_path=https_image["cert"])
    checked = run(args, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"]
    assert_nothing_made(env)
    done = run(args)
    assert not done.get("failed"), done.get("msg")
    assert done["changed"] and done["volumes"]["base"] == HTTPS_BASE
    assert any(a.startswith(f"import base volume {HTTPS_BASE}") for a in done["actions"]), done["actions"]
    base_path = virsh(env["LIBVIRT_URI"], "vol-path", HTTPS_BASE, "--pool", env["LAB_POOL"]).strip()
    assert hashlib.sha256(Path(base_path).read_bytes()).hexdigest() == https_image["sha256"]
    again = run(args)
    assert not again.get("failed") and not again["changed"], again.get("actions")


def test_https_wrong_checksum_fails_and_leaves_nothing(https_vm, https_image):
    """validate_certs=false accepts the self-signed cert: the whole image arrives, then its digest is refused."""
    env = https_vm
    wrong = hashlib.sha256(b"not the image").hexdigest()
    result = run(https_args(env, https_image, validate_certs=False, base_checksum=f"sha256:{wrong}"))
    assert result.get("failed"), result
    msg = result["msg"]
    assert "checksum mismatch" in msg and f"expected sha256:{wrong}" in msg, msg
    assert f"got sha256:{https_image['sha256']}" in msg, msg
    assert_nothing_made(env)


def test_https_without_checksum_refused(https_vm, https_image):
    env = https_vm
    args = https_args(env, https_image, validate_certs=False)
    del args["base_checksum"]
    result = run(args)
    assert result.get("failed"), result
    assert "base_checksum" in result["msg"] and "required" in result["msg"], result["msg"]
    assert_nothing_made(env)
