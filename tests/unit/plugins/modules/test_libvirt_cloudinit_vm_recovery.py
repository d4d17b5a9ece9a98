"""Crash consistency of libvirt_cloudinit_vm on libvirt's test:///default driver.

A run interrupted at a fault point without its rollback (the process was killed, or libvirtd was gone when
the rollback ran) leaves what the daemon had; the next run must finish or remove it on its own.
"""

from __future__ import annotations

import hashlib

import libvirt
import pytest
from test_libvirt_cloudinit_vm import POOL, vm_args

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_domain_xml as libvirt_domain_xml
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes
from ansible_collections.foundation.runners.plugins.modules.libvirt_cloudinit_vm import main


@pytest.fixture
def crashlab(lab, monkeypatch):
    """The lab, with volumes hashed from the faked store and a switch that makes a run die without rollback."""

    def sha256_volume(_conn, vol):
        return hashlib.sha256(lab.store.get(vol.key(), b"")).hexdigest()

    monkeypatch.setattr(libvirt_volumes, "sha256_volume", sha256_volume)
    return lab


def interrupt(run_module, monkeypatch, args, point):
    """Run until ``point`` and die there: no rollback undoes anything."""
    monkeypatch.setenv(libvirt_api.FAULT_ENV, point)
    with monkeypatch.context() as m:
        m.setattr(libvirt_api.Rollback, "run", lambda self: ([], []))
        res = run_module(main, args)
    monkeypatch.delenv(libvirt_api.FAULT_ENV)
    assert res["failed"] and f"injected fault at {point}" in res["msg"]
    return res


def meta(vmlab, name="vm1"):
    return libvirt_api.read_metadata(vmlab.conn.lookupByName(name))


@pytest.mark.parametrize("point", libvirt_api.FAULT_POINTS)
def test_next_running_run_completes(crashlab, run_module, monkeypatch, point):
    args = vm_args(crashlab, state="running")
    interrupt(run_module, monkeypatch, args, point)
    assert crashlab.domains() == {"vm1"}
    assert meta(crashlab).get("phase") == libvirt_domain_xml.PHASE_CREATING

    check = run_module(main, args, check_mode=True)
    assert check["changed"] and not check.get("failed"), check.get("msg")
    done = run_module(main, args)
    assert done["changed"] and not done.get("failed"), done.get("msg")
    assert done["state"] == "running" and crashlab.state("vm1") == libvirt.VIR_DOMAIN_RUNNING
    assert "phase" not in meta(crashlab) and "base-import" not in meta(crashlab)
    assert crashlab.volumes() == {done["volumes"]["base"], "vm1.qcow2", "vm1-seed.iso"}
    for check_mode in (False, True):
        again = run_module(main, args, check_mode=check_mode)
        assert not again["changed"], again["actions"]


@pytest.mark.parametrize("point", libvirt_api.FAULT_POINTS)
def test_next_absent_run_removes_everything(crashlab, run_module, monkeypatch, point):
    interrupt(run_module, monkeypatch, vm_args(crashlab, state="running"), point)
    absent = vm_args(crashlab, state="absent")
    check = run_module(main, absent, check_mode=True)
    assert check["changed"] and crashlab.domains() == {"vm1"}
    res = run_module(main, absent)
    assert res["changed"] and not res.get("failed"), res.get("msg")
    assert crashlab.domains() == set()
    assert {v for v in crashlab.volumes() if v.startswith("vm1")} == set()
    assert not run_module(main, absent)["changed"]


def test_broken_base_import_is_replaced(crashlab, run_module, monkeypatch):
    args = vm_args(crashlab, state="present")
    interrupt(run_module, monkeypatch, args, "after_base_import")
    base = meta(crashlab)["base-volume"]
    key = crashlab.conn.storagePoolLookupByName(POOL).storageVolLookupByName(base).key()
    crashlab.store[key] = crashlab.store[key][:100]  # the upload was cut short
    done = run_module(main, args)
    assert done["changed"] and f"delete volume {base}" in done["actions"], done["actions"]
    assert crashlab.uploads.count(base) == 2
    assert crashlab.store[key] == open(crashlab.image, "rb").read()


def test_broken_base_import_goes_with_absent(crashlab, run_module, monkeypatch):
    interrupt(run_module, monkeypatch, vm_args(crashlab), "after_base_import")
    base = meta(crashlab)["base-volume"]
    key = crashlab.conn.storagePoolLookupByName(POOL).storageVolLookupByName(base).key()
    crashlab.store[key] = b""
    run_module(main, vm_args(crashlab, state="absent"))
    assert crashlab.volumes() == set()


def test_intact_base_import_is_kept(crashlab, run_module, monkeypatch):
    interrupt(run_module, monkeypatch, vm_args(crashlab), "after_overlay_create")
    run_module(main, vm_args(crashlab, state="absent"))
    assert crashlab.volumes() == {meta_base(crashlab)}


def meta_base(vmlab):
    return next(v for v in vmlab.volumes() if v.startswith("base-sha256-"))


def test_started_domain_only_completes_its_record(crashlab, run_module, monkeypatch):
    args = vm_args(crashlab, state="running")
    interrupt(run_module, monkeypatch, args, "after_start")
    uuid = crashlab.conn.lookupByName("vm1").UUIDString()
    done = run_module(main, args)
    assert done["actions"] == ["complete the interrupted creation of domain vm1"]
    assert done["uuid"] == uuid and "phase" not in meta(crashlab)


def leftovers_of_old_run(vmlab, run_module):
    """Volumes of vm1 without a domain, as an older release left them when its rollback could not run."""
    run_module(main, vm_args(vmlab, state="present"))
    vmlab.conn.lookupByName("vm1").undefine()


def test_own_leftovers_without_domain_are_replaced(crashlab, run_module):
    leftovers_of_old_run(crashlab, run_module)
    done = run_module(main, vm_args(crashlab, state="running"))
    assert done["changed"] and not done.get("failed"), done.get("msg")
    assert "replace leftover volume vm1.qcow2 of an interrupted run" in done["actions"]
    assert "replace leftover volume vm1-seed.iso of an interrupted run" in done["actions"]


def test_own_leftovers_without_domain_go_with_absent(crashlab, run_module):
    leftovers_of_old_run(crashlab, run_module)
    absent = vm_args(crashlab, state="absent")
    assert run_module(main, absent, check_mode=True)["changed"]
    res = run_module(main, absent)
    assert res["changed"] and {v for v in crashlab.volumes() if v.startswith("vm1")} == set()
    assert not run_module(main, absent)["changed"]


@pytest.mark.parametrize(
    ("volume", "xml", "says"),
    [
        ("vm1.qcow2", libvirt_volumes.volume_xml("vm1.qcow2", 1024**2, "qcow2"), "backing store none"),
        ("vm1-seed.iso", libvirt_volumes.volume_xml("vm1-seed.iso", 4096, "raw"), "volume label none"),
    ],
)
def test_foreign_volume_is_refused_and_kept(crashlab, run_module, volume, xml, says):
    crashlab.conn.storagePoolLookupByName(POOL).createXML(xml, 0)
    res = run_module(main, vm_args(crashlab, state="running"))
    assert res["failed"] and f"volume {volume!r} already exists" in res["msg"]
    assert "cannot be proven to be this module's own" in res["msg"] and says in res["msg"]
    assert f"virsh vol-delete {volume} --pool {POOL}" in res["msg"]
    absent = run_module(main, vm_args(crashlab, state="absent"))
    assert not absent["changed"] and "left alone" in str(absent.get("warnings")), absent
    assert volume in crashlab.volumes() and crashlab.domains() == set()


def test_seed_of_another_instance_is_refused(crashlab, run_module):
    leftovers_of_old_run(crashlab, run_module)
    crashlab.conn.storagePoolLookupByName(POOL).storageVolLookupByName("vm1.qcow2").delete(0)
    res = run_module(main, vm_args(crashlab, instance_id="iid-other"))
    assert res["failed"] and "this one has volume label cidata and instance-id iid-vm1" in res["msg"]
    assert "whose meta-data has instance-id 'iid-other'" in res["msg"]
