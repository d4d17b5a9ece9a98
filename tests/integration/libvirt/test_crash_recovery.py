"""libvirt_cloudinit_vm interrupted at every step of a creation, against a real lab libvirtd (host brix02).

Each step is interrupted two ways: SIGKILL of the module's process (FOUNDATION_RUNNERS_FAULT=POINT:kill),
and kill -9 of libvirtd while the module waits at that step (POINT:wait:FILE), then a restart of libvirtd,
after which the module goes on and fails. Each interrupted state is recovered by the next state=running run
(changed, then a second run not changed) and, from a fresh interruption, by state=absent (no domain and no
volume of the VM left). brix02 has its own libvirtd, so killing it does not disturb tests on crunchy01.

Guests boot under TCG (35 s or more each), so ping and ssh are checked after two recoveries, one per way;
the other recoveries are checked through the domain's state, its metadata and the pool's volumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lablib.shell import lab_env, sh, virsh
from lablib.tiers import only_extended
from libvirt_lab import LAB_LIBVIRT, domains, lab_vm_args, pool_volumes, run

HOST = "brix02"
NAME = "crash01"
IP = "198.51.100.45"
BASE = "crash-base"
POINTS = ("after_define", "after_base_import", "after_overlay_create", "after_seed_upload", "after_start")
WAYS = ("sigkill", "libvirtd")
BOOT_CHECKED = {("after_define", "sigkill"), ("after_start", "libvirtd")}
# The gate (make test): one recovery of each way (the first boot-checked) and one removal; make test-extended runs
# every pair. A guest's boot beside the e2e part's took 146 to 368 s.
GATE_RUNNING = {("after_define", "sigkill"), ("after_overlay_create", "libvirtd")}
GATE_ABSENT = {("after_seed_upload", "sigkill")}
METADATA_NS = "https://foundation.runners/libvirt_cloudinit_vm/1"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    sh(*[str(LAB_LIBVIRT), "up", HOST])
    env = lab_env([str(LAB_LIBVIRT), "env", HOST])
    tmp = tmp_path_factory.mktemp("crash")
    sh(*["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "crash", "-f", str(tmp / "id")])
    env.update(KEY=str(tmp / "id"), PUB=(tmp / "id.pub").read_text().strip(), TMP=str(tmp))
    clean(env, base_too=True)
    yield env
    clean(env, base_too=True)


def clean(env, base_too: bool = False) -> None:
    uri, pool = env["LIBVIRT_URI"], env["LAB_POOL"]
    virsh(uri, "destroy", NAME, check=False)
    virsh(uri, "undefine", NAME, check=False)
    # A guest whose libvirtd was killed can be left running, unknown to the restarted lab daemon: its QEMU would
    # otherwise run on through the rest of make test.
    subprocess.run(["pkill", "-KILL", "-f", f"^/usr/bin/qemu-system-x86_64 -name guest={NAME},"], check=False)
    for vol in pool_volumes(uri, pool, (NAME, BASE) if base_too else (NAME,)):
        virsh(uri, "vol-delete", vol, "--pool", pool, check=False)


def vm_args(env, **kw) -> dict:
    user = {"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL", "ssh_authorized_keys": [env["PUB"]]}
    args = {"base_volume": BASE, "vcpus": 1, "memory": "512MiB", "ip_address": f"{IP}/24", "gateway": "198.51.100.1"}
    return lab_vm_args(env, **{"name": NAME, **args, "user_data": {"users": [user]}, **kw})


def libvirtd_pid(env) -> int:
    return int(Path(f"/run/frlab/{HOST}/libvirtd.pid").read_text().strip())


def interrupt(env, point: str, way: str) -> dict:
    """A state=running run that dies at ``point``; returns its (failed) result."""
    if way == "sigkill":
        res = run(vm_args(env), extra_env={"FOUNDATION_RUNNERS_FAULT": f"{point}:kill"})
    else:
        marker = Path(env["TMP"]) / f"waiting-{point}"
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(run, vm_args(env), extra_env={"FOUNDATION_RUNNERS_FAULT": f"{point}:wait:{marker}"})
            deadline = time.monotonic() + 600
            while not marker.exists():
                assert time.monotonic() < deadline and not future.done(), future.done() and future.result()
                time.sleep(0.1)
            try:
                os.kill(libvirtd_pid(env), signal.SIGKILL)
                sh(*[str(LAB_LIBVIRT), "up", HOST])
            finally:
                marker.unlink()  # the module goes on, to find its connection gone
            res = future.result()
    assert res.get("failed"), res
    return res


def record(env) -> str:
    return virsh(env["LIBVIRT_URI"], "metadata", NAME, METADATA_NS, "--config", check=False)


def vm_volumes(env) -> set[str]:
    return pool_volumes(env["LIBVIRT_URI"], env["LAB_POOL"], (NAME,))


def ping_and_ssh(env, limit: int = 400) -> float:
    start = time.monotonic()
    ssh = ["ip", "netns", "exec", env["LAB_NS"], "ssh", "-i", env["KEY"], "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
           "-o", "ConnectTimeout=5", f"ops@{IP}", "hostname"]  # fmt: skip
    ping = ["ip", "netns", "exec", env["LAB_NS"], "ping", "-c1", "-W1", IP]
    while time.monotonic() - start < limit:
        if subprocess.run(ping, capture_output=True, check=False).returncode == 0:
            out = subprocess.run(ssh, capture_output=True, text=True, timeout=30, check=False)
            if out.returncode == 0:
                assert out.stdout.strip() == NAME
                return time.monotonic() - start
        time.sleep(2)
    raise AssertionError(f"no ping and ssh to {IP} within {limit}s")


@pytest.fixture(params=POINTS)
def point(request, lab):
    clean(lab, base_too=request.param == "after_base_import")  # that step is only reached while importing
    yield request.param
    clean(lab)


@pytest.mark.parametrize("way", WAYS)
def test_next_running_run_completes(lab, point, way):
    if (point, way) not in GATE_RUNNING:
        only_extended()
    interrupt(lab, point, way)
    assert domains(lab["LIBVIRT_URI"], NAME) == {NAME}
    assert "<phase>creating</phase>" in record(lab)

    done = run(vm_args(lab))
    assert not done.get("failed") and done["changed"], done.get("msg")
    assert done["state"] == "running" and "<phase>" not in record(lab)
    assert vm_volumes(lab) == {f"{NAME}.qcow2", f"{NAME}-seed.iso"}
    again = run(vm_args(lab))
    assert not again.get("failed") and not again["changed"], again.get("actions")
    if (point, way) in BOOT_CHECKED:
        print(f"{point}/{way}: ping and ssh after {ping_and_ssh(lab):.1f}s")


@pytest.mark.parametrize("way", WAYS)
def test_next_absent_run_removes_the_vm(lab, point, way):
    if (point, way) not in GATE_ABSENT:
        only_extended()
    interrupt(lab, point, way)
    gone = run(vm_args(lab, state="absent"))
    assert not gone.get("failed") and gone["changed"], gone.get("msg")
    assert domains(lab["LIBVIRT_URI"], NAME) == set() and vm_volumes(lab) == set()
    assert not run(vm_args(lab, state="absent"))["changed"]


def test_foreign_volume_is_refused(lab):
    clean(lab)
    virsh(lab["LIBVIRT_URI"], "vol-create-as", lab["LAB_POOL"], f"{NAME}.qcow2", "1M", "--format", "qcow2")
    try:
        res = run(vm_args(lab))
        assert res.get("failed") and "cannot be proven to be this module's own" in res["msg"], res
        assert f"virsh vol-delete {NAME}.qcow2 --pool {lab['LAB_POOL']}" in res["msg"]
        assert domains(lab["LIBVIRT_URI"], NAME) == set() and vm_volumes(lab) == {f"{NAME}.qcow2"}
    finally:
        clean(lab)
