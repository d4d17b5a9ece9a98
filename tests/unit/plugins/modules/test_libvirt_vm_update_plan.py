"""plan_update finds what bringing a domain in line takes and changes nothing; apply_update carries it out."""

from __future__ import annotations

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_options as libvirt_vm_options
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_update as libvirt_vm_update
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_vm import VmManager
from ansible_collections.foundation.runners.plugins.modules.libvirt_cloudinit_vm import main

URI = "test:///default"
POOL = "default-pool"


def params(lab, **kw) -> dict:
    spec = libvirt_vm_options.argument_spec()
    values = {name: option.get("default") for name, option in spec.items()}
    values.update(name="vm1", uri=URI, pool=POOL, base_image=lab.image, bridge="eth1", vcpus=2, memory="1GiB")
    values.update(kw)
    return values


def manager(lab, check: bool, **kw) -> VmManager:
    p = params(lab, **kw)
    vm = VmManager(p, check_mode=check, fetch=lambda url: (None, {}), tmpdir=lambda: "/tmp", warn=lambda msg: None)
    vm.connect(libvirt_vm_options.validate_options(p))
    return vm


def test_a_plan_changes_nothing_and_apply_carries_it_out(lab, run_module):
    created = run_module(main, {k: v for k, v in params(lab, state="stopped").items() if v is not None})
    assert created["changed"] and not created.get("failed"), created.get("msg")
    before = lab.xml("vm1")

    vm = manager(lab, check=False, vcpus=3)
    dom = vm.conn.lookupByName("vm1")
    meta = libvirt_vm_update.libvirt_api.read_metadata(dom)
    plan = libvirt_vm_update.plan_update(vm, dom, meta, "stopped")
    assert plan.redefine and plan.grow is None and plan.result["changes"] == ["vcpus"]
    assert vm.actions == ["set vcpus: 2 -> 3"]
    assert lab.xml("vm1") == before  # planning changed nothing

    libvirt_vm_update.apply_update(vm, plan, "stopped")
    assert "<vcpu placement='static'>3</vcpu>" in lab.xml("vm1")


def test_apply_in_check_mode_changes_nothing(lab, run_module):
    created = run_module(main, {k: v for k, v in params(lab, state="stopped").items() if v is not None})
    assert created["changed"]
    before = lab.xml("vm1")
    vm = manager(lab, check=True, vcpus=4, disk_size="2GiB")
    dom = vm.conn.lookupByName("vm1")
    plan = libvirt_vm_update.plan_update(vm, dom, libvirt_vm_update.libvirt_api.read_metadata(dom), "stopped")
    assert plan.redefine and plan.grow == 2 * 1024**3 and plan.result["changes"] == ["vcpus", "disk_size"]
    libvirt_vm_update.apply_update(vm, plan, "stopped")  # check mode: nothing, not even the resize
    assert lab.xml("vm1") == before
