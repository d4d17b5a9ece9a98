"""The last step of the e2e day: runner-02 replaced by runner-04 on crunchy01's prepared base, which test_01 built
and which runner-02 (adopted on day one since) still starts from. site.yml on the lab inventory retires runner-02
(its domain, volumes and record) and starts runner-04 on the same base without building it again; a job runs green
in runner-04, whose machine id and ssh host key are its own, not runner-02's. Runs after test_site_day_one.py, on
the lab it leaves (brix02's standby is stopped first, so that the job can only go to runner-04)."""

from __future__ import annotations

import json

from lablib.forge import LabForge
from lablib.tiers import extended
from site_lab import (
    ONLINE,
    TIMINGS,
    VM,
    VM_IP,
    base_volumes,
    job_runners,
    kvm_virsh,
    pool_volumes,
    probe,
    push_probe,
    vm,
)

NEW, NEW_IP = "runner-04", "198.51.100.34"
STANDBY_IP = "198.51.100.36"  # runner-03 on brix02 (test_site_day_one.py)


def identity(key: str, ip: str) -> tuple[str, str]:
    """The VM's machine id and ssh host key."""
    machine_id = vm("cat /etc/machine-id", key, ip=ip).stdout.strip()
    return machine_id, vm("cat /etc/ssh/ssh_host_ed25519_key.pub", key, ip=ip).stdout.split()[1]


@extended  # the VM replaced on the prepared base: issue-20 speed work, measured by make bench-site too
def test_13_the_vm_is_replaced_on_the_prepared_base(lab):
    env, site, forge = lab.env, lab.site, lab.forge
    key = env["LAB_VM_SSH_KEY"]
    [base] = base_volumes()
    old_identity = identity(key, VM_IP)
    vm("systemctl stop forgejo-runner", key, ip=STANDBY_IP, check=False)
    entry = {"name": NEW, "vcpus": 2, "memory": "1536MiB", "disk_size": "8GiB", "ip_address": f"{NEW_IP}/24"}
    run = site.playbook("site.yml", "-e", json.dumps({"fenced_vms": [{**entry, "retire": [VM]}]}), label="13-replace")
    TIMINGS["replace_on_base"] = run.seconds
    assert run.rc == 0, run.tail()
    built = [task for task, where in run.executions() if "builder" in task or where.endswith("-builder")]
    assert not built, f"the base was built again: {built}"
    assert base_volumes() == [base] and not [v for v in pool_volumes() if VM in v]
    domains = kvm_virsh("list", "--all", "--name").split()  # test_09 left a foreign domain, frlab-foreign
    assert NEW in domains and VM not in domains, domains
    assert [r["name"] for r in forge.runners() if r["name"] in (NEW, VM)] == [NEW]
    assert forge.named(NEW)[0]["status"] in ONLINE
    hostname = vm("hostname", key, ip=NEW_IP).stdout.strip()
    new_identity = identity(key, NEW_IP)
    assert hostname == NEW and new_identity[0] != old_identity[0] and new_identity[1] != old_identity[1]
    workflows = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = workflows.create_repo("e2e-replaced")
    try:
        result = repo.wait_run(push_probe(repo, f"replaced-{NEW}"), timeout=600)
        assert result.conclusion == "success", result.log
        assert job_runners(repo, result.id) == [NEW]
        assert probe(result)["kernel"] == vm("uname -r", key, ip=NEW_IP).stdout.strip(), result.log
    finally:
        repo.delete()
    print(
        f"replaced {VM} by {NEW} on the base {base} (not built again) in {run.seconds:.0f} s: {VM}'s domain, volumes"
        f" and record gone, a job green in {NEW}, machine id and host key its own"
    )
