"""Day one on the production replica: inventory/replica (inventory/production's groups, hosts and variables, with
lab addresses) against the lab put into the state of the operator's fleet today:

- runner-02 is a VM that virt-install defined (no metadata of the collection), on the disk the lab built, its
  runner a Docker container with its .runner in a volume, registered with the label fenced;
- a stale record crunchy-runner is left on the forge;
- the forge answers as Forgejo 14 (tests/lab/forge-profile): no runners list, register or delete API;
- brix02 is a second, empty KVM host; the k3s API is the lab's control plane, whose kwok node frlab-k8s-crunchy01 is
  sized like crunchy01 with other workloads on it, and crunchy01 holds its kubeconfig where k3s keeps it.

Then site.yml: check mode changes nothing; the run adopts runner-02 keeping its record and a running job; a second
run is changed=0; the profile switched off (the upgrade to Forgejo 15), the next run prunes crunchy-runner alone and
registers nothing. Runs after test_site.py, on its converged lab."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, config
from lablib.forge import LabForge
from lablib.shell import LAB, lab_env, sh, vault_secret, wait_until
from lablib.tiers import extended
from site_lab import (
    HOST,
    ONLINE,
    TIMINGS,
    VM,
    Site,
    base_volumes,
    host,
    job_runners,
    kvm_virsh,
    probe,
    push_probe,
    register_elsewhere,
    vm,
)

BRIX, BRIX_IP = "brix", "198.51.100.35"  # brix02's lab container
STANDBY, STANDBY_IP = "runner-03", "198.51.100.36"  # its standby VM (failover.yml -l brix02)
STALE = "crunchy-runner"
TEXTFILES = "/var/lib/prometheus/node-exporter"
HEAVY_NAMESPACE, HEAVY_PREFIX = "forgejo-heavy", "heavy-runner"
CRUNCHY_NODE = "frlab-k8s-crunchy01"
METADATA = "https://foundation.runners/libvirt_cloudinit_vm/1"
HELD = """\
on: push
jobs:
  held:
    runs-on: fenced
    steps:
      - run: |
          for i in $(seq 1500); do [ -e /tmp/release ] && exit 0; sleep 1; done; exit 1
"""
# The day-one state made from runner-02 in seconds: the domain without the collection's metadata, the runner
# in a Docker container with its .runner in a volume and the docker socket mounted, the systemd unit gone.
DAY_ONE = r"""
set -e
systemctl disable --now forgejo-runner.service
rm -f /etc/systemd/system/forgejo-runner.service
systemctl daemon-reload
dir=$(mktemp -d); mkdir -p "$dir/usr/local/bin" "$dir/data" "$dir/tmp"
cp /usr/local/bin/forgejo-runner "$dir/usr/local/bin/"
tar -C "$dir" -c . \
  | docker import -c 'WORKDIR /data' -c 'ENTRYPOINT ["/usr/local/bin/forgejo-runner"]' - lab/runner:day-one
rm -rf "$dir"
docker volume create runner-data >/dev/null
mv /var/lib/forgejo-runner/.runner "$(docker volume inspect -f '{{.Mountpoint}}' runner-data)/.runner"
docker run -d --name forgejo-runner --restart unless-stopped --network host -v runner-data:/data \
  -v /var/run/docker.sock:/var/run/docker.sock lab/runner:day-one daemon
sync
"""


def job_containers(key: str) -> str:
    return vm("docker ps --quiet --filter name=FORGEJO-ACTIONS-TASK-", key).stdout.strip()


def release_in_the_drain(key: str) -> threading.Thread:
    """Lets the held job end 10 s after the role has set the container's restart policy to no, which it does
    just before it starts waiting for the VM's jobs."""

    def release() -> None:
        deadline = time.monotonic() + 1200
        policy = "docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' forgejo-runner"
        while time.monotonic() < deadline and vm(policy, key, check=False).stdout.strip() != "no":
            time.sleep(3)
        time.sleep(10)
        vm("docker exec $(docker ps -q --filter name=FORGEJO-ACTIONS-TASK-) touch /tmp/release", key)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    return thread


# The VM as another tool defines it: runner-02's domain replaced by one virt-install makes from the same disk and
# MAC (no metadata, no filter, virt-install's own device set), booted; the container runner comes back with Docker.
FOREIGN_VM = r"""
set -e
export LIBVIRT_DEFAULT_URI=qemu:///system
mac=$(virsh domiflist runner-02 | awk '$3 == "br0" {print $5}')
disk=$(virsh domblklist --details runner-02 | awk '$2 == "disk" {print $4}')
virsh shutdown runner-02 >/dev/null
for i in $(seq 300); do [ "$(virsh domstate runner-02)" = "shut off" ] && break; sleep 1; done
echo "runner-02 $(virsh domstate runner-02) after $i s"
virsh destroy runner-02 >/dev/null 2>&1 || true
virsh undefine runner-02 >/dev/null
virt-install --name runner-02 --memory 1536 --vcpus 2 --virt-type qemu --import --osinfo generic \
  --disk "vol=images/$(basename "$disk"),bus=virtio" --network "bridge=br0,mac=$mac,model=virtio" \
  --graphics none --noautoconsole >/dev/null
"""


def k8s_api() -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=lab_env([str(LAB / "k8s"), "env"])["KUBECONFIG"]))


def registry_logins() -> dict[str, str]:
    """The heavy runners' registry logins as the cluster holds them: registry -> user:password."""
    secrets = k8s_api().list_namespaced_secret(HEAVY_NAMESPACE).items
    [secret] = [s for s in secrets if s.type == "kubernetes.io/dockerconfigjson"]
    auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
    return {registry: base64.b64decode(entry["auth"]).decode() for registry, entry in auths.items()}


def heavy_records(forge) -> list[tuple[int, str]]:
    return sorted((r["id"], r["name"]) for r in forge.runners() if r["name"].startswith(HEAVY_PREFIX))


def container_runner_runs(key: str) -> bool:
    """The booted VM answers ssh and its container runner runs (the forge still shows the record online from
    before the reboot, so its status proves nothing yet)."""
    return vm("docker inspect -f '{{.State.Status}}' forgejo-runner", key, check=False).stdout.strip() == "running"


def foreign_vm_state(key: str) -> str:
    """What the redefined VM shows when its container runner does not come back: for the failure's message."""
    parts = [
        host(
            "sh", "-c", f"virsh -c qemu:///system domstate {VM}; tail -n 5 /var/log/libvirt/qemu/{VM}.log", check=False
        ),
        vm(
            "docker ps -a; docker logs --tail 20 forgejo-runner 2>&1;"
            " journalctl -b -1 -n 15 -u docker --no-pager; journalctl -b -n 20 -u docker --no-pager",
            key,
            check=False,
        ),
    ]
    return "\n".join(f"{p.args[-1]}\n{p.stdout}{p.stderr}" for p in parts)


def day_one(lab) -> Site:
    """The lab in the operator's day-one state; returns the Site of inventory/replica."""
    env, forge = lab.env, lab.forge
    sh(str(LAB / "kvm-host"), "up", BRIX, BRIX_IP)
    sh(str(LAB / "k8s"), "up", timeout=3600)
    for record in heavy_records(forge):  # an earlier run's, whose cluster is gone
        forge.delete_runner(record[0])
    node_kubeconfig = Path(lab_env([str(LAB / "k8s"), "env"])["K8S_NODE_KUBECONFIG"]).read_text()
    host(
        "sh",
        "-c",
        "install -d -m 0700 /etc/rancher/k3s && umask 077 && cat >/etc/rancher/k3s/k3s.yaml",
        stdin=node_kubeconfig,
    )
    # What the operator's crunchy01 has besides: k3s' Python client for Ansible, and the other tool's virt-install.
    apt = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "--no-install-recommends"]
    host(*apt, "python3-kubernetes", "virtinst")
    if not forge.named(STALE):
        register_elsewhere(env, forge, STALE)
    # E2E_REUSE: a run that stopped midway left runner-02 in the day-one state already.
    if METADATA in kvm_virsh("dumpxml", "--inactive", VM):
        vm(DAY_ONE, env["LAB_VM_SSH_KEY"])
        print(host("sh", "-c", FOREIGN_VM).stdout.strip())
    try:
        wait_until(lambda: container_runner_runs(env["LAB_VM_SSH_KEY"]), 600, step=5)
    except AssertionError:
        print(foreign_vm_state(env["LAB_VM_SSH_KEY"]))
        raise
    sh(str(LAB / "forge-profile"), "up")
    sh(str(LAB / "forge-profile"), "set", "14")
    extra = {"LAB_BRIX02_PID": sh(str(LAB / "kvm-host"), "pid", BRIX).stdout.strip(), "LAB_BRIX02_ADDR": BRIX_IP}
    extra.update(lab_env([str(LAB / "forge-profile"), "env"]))
    return Site(env, inventory="replica", extra=extra)


@pytest.fixture(scope="module")
def replica(lab):
    start = time.monotonic()
    site = day_one(lab)
    TIMINGS["replica_day_one"] = time.monotonic() - start
    yield site
    sh(str(LAB / "forge-profile"), "down", check=False)
    sh(str(LAB / "kvm-host"), "down", BRIX, check=False)
    sh(str(LAB / "k8s"), "down", check=False)


def test_11_day_one_on_the_production_replica(lab, replica):
    env, forge = lab.env, lab.forge
    key = env["LAB_VM_SSH_KEY"]
    [record] = forge.named(VM)
    workflows = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    # Two repositories: a push to the first would start its held workflow again.
    repo, later = workflows.create_repo("e2e-day-one"), workflows.create_repo("e2e-day-one-after")
    try:
        [stale] = forge.named(STALE)
        assert METADATA not in kvm_virsh("dumpxml", "--inactive", VM)

        # 1. check mode shows the plan and changes nothing
        check = replica.playbook("site.yml", "--check", "--diff", label="11-replica-check")
        TIMINGS["replica_check"] = check.seconds
        assert check.rc == 0, check.tail()
        assert f"Check mode: would adopt domain {VM}" in check.output, check.tail()
        assert f"would take over runner {VM} (id {record['id']})" in " ".join(check.output.split())
        assert METADATA not in kvm_virsh("dumpxml", "--inactive", VM)
        assert vm("docker inspect -f '{{.State.Status}}' forgejo-runner", key).stdout.strip() == "running"
        assert host("test", "-e", "/usr/sbin/libvirtd", name=BRIX, check=False).returncode != 0
        assert HEAVY_NAMESPACE not in [n.metadata.name for n in k8s_api().list_namespace().items]

        # 2. the run adopts runner-02, its record and a job running in its container
        busy = repo.push({".gitea/workflows/held.yml": HELD}, message="held")
        wait_until(lambda: job_containers(key), 300, step=2)
        releaser = release_in_the_drain(key)
        run = replica.playbook("site.yml", label="11-replica-site")
        TIMINGS["replica_adopt"] = run.seconds
        releaser.join(timeout=60)
        assert run.rc == 0, run.tail()
        assert repo.wait_run(busy, timeout=300).conclusion == "success"
        assert "RETRYING" in run.output.split("Wait until no job runs in the VM", 1)[1][:3000], "the drain did not wait"
        assert [(r["id"], r["status"] in ONLINE) for r in forge.named(VM)] == [(record["id"], True)]
        assert vm("docker ps -a -q --filter name=^forgejo-runner$", key).stdout.strip() == ""
        assert vm("systemctl is-active forgejo-runner", key).stdout.strip() == "active"
        assert METADATA in kvm_virsh("dumpxml", "--inactive", VM)
        assert f"upgrade to Forgejo 15 to prune {STALE}" in " ".join(run.output.split()), run.tail()
        assert [r["id"] for r in forge.named(STALE)] == [stale["id"]]
        assert "images" in host("virsh", "-q", "-c", "qemu:///system", "pool-list", "--name", name=BRIX).stdout.split()
        pods = k8s_api().list_namespaced_pod(HEAVY_NAMESPACE).items
        assert pods and {p.spec.node_name for p in pods} == {CRUNCHY_NODE}
        heavy = heavy_records(forge)
        login = vault_secret("registry/gitlab")
        assert login["token"] not in run.output
        assert registry_logins() == {"registry.gitlab.com": f"{login['username']}:{login['token']}"}
        after = push_probe(later, "after-adoption", sleep=1)
        seen = probe(later.wait_run(after, timeout=300))
        assert seen["kernel"] == vm("uname -r", key).stdout.strip() and seen["dockerenv"] == "yes", seen

        # 3. a second run changes nothing
        again = replica.playbook("site.yml", label="11-replica-again")
        TIMINGS["replica_again"] = again.seconds
        assert again.rc == 0 and set(again.changed().values()) == {0}, again.tail()

        # 4. the forge upgraded to 15: the runners API finds the same records, prunes crunchy-runner alone
        sh(str(LAB / "forge-profile"), "set", "off")
        upgraded = replica.playbook("site.yml", label="11-replica-upgraded")
        TIMINGS["replica_upgraded"] = upgraded.seconds
        assert upgraded.rc == 0, upgraded.tail()
        assert "has no runners API" not in upgraded.output
        assert forge.named(STALE) == []
        assert [r["id"] for r in forge.named(VM)] == [record["id"]] and heavy_records(forge) == heavy
        # Only the prune changed: the no-op run for real on Forgejo 15's API, as `again` is on 14's.
        assert {host: n for host, n in upgraded.changed().items() if host != "forge"} == dict.fromkeys(
            ("brix02", "crunchy01"), 0
        ), upgraded.tail(120)
        assert later.wait_run(push_probe(later, "upgraded", sleep=1), timeout=300).conclusion == "success"
    finally:
        repo.delete()
        later.delete()
    print(
        f"day one on the replica: check {check.seconds:.0f} s, adoption {run.seconds:.0f} s (record {record['id']} "
        f"kept, a job held to its end), again {again.seconds:.0f} s changed=0, upgraded {upgraded.seconds:.0f} s "
        f"({STALE} pruned)"
    )


# More jobs than the standby's capacity (2), long enough that the primary takes some even when a slot of its own is
# still busy with an earlier job.
HA_JOBS = """\
on: push
jobs:
""" + "".join(
    f"""  job{i}:
    runs-on: fenced
    steps:
      - run: sleep 20
"""
    for i in range(6)
)


def brix_domains() -> list[str]:
    """brix02's domains (none while libvirt is not installed there)."""
    command = "! command -v virsh >/dev/null || virsh -q -c qemu:///system list --all --name"
    return host("sh", "-c", command, name=BRIX).stdout.split()


def both_online(forge) -> bool:
    return {r["status"] in ONLINE for r in forge.runners() if r["name"] in (VM, STANDBY)} == {True}


GOLDEN_DIR = "/var/lib/frlab-golden"  # in brix02's container
GOLDEN: dict[str, str] = {}  # brix02's image: crunchy01's prepared base (golden_image)


def golden_image() -> dict[str, str]:
    """crunchy01's prepared base, copied into brix02 as the image its standby starts from, as an operator gives a
    second host a golden image instead of building it there (roles/fenced_runner/README.md): the standby's install
    phase then only checks. The install from a bare cloud image runs in test_01's builder VM."""
    if not GOLDEN:
        [base] = base_volumes()
        source = kvm_virsh("vol-path", "--pool", "images", base).strip()
        pids = {name: sh(str(LAB / "kvm-host"), "pid", name).stdout.strip() for name in (HOST, BRIX)}
        target = f"/proc/{pids[BRIX]}/root{GOLDEN_DIR}/{base}.qcow2"
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "--sparse=always", f"/proc/{pids[HOST]}/root{source}", target], check=True)
        with open(target, "rb") as image:
            digest = hashlib.file_digest(image, "sha256")
        GOLDEN.update(
            LAB_GUEST_IMAGE=f"{GOLDEN_DIR}/{base}.qcow2", LAB_GUEST_IMAGE_CHECKSUM=f"sha256:{digest.hexdigest()}"
        )
    return GOLDEN


def failover(replica: Site, mode: str, *options: str, label: str):
    return replica.playbook(
        "failover.yml", "-l", "brix02", "-e", f"failover_mode={mode}", *options, label=label, extra_env=golden_image()
    )


def standby_unit(key: str) -> str:
    return vm("systemctl is-active forgejo-runner", key, ip=STANDBY_IP, check=False).stdout.strip()


@extended  # the gate's test-failover runs failover.yml and the watchdog on an nspawn brix02
def test_12_strict_standby_in_a_vm_on_brix02(lab, replica):
    """failover.yml -l brix02 through the replica: the standby VM runner-03 on brix02 (from crunchy01's prepared base
    as its image, golden_image), its unit stopped and owned by
    the watchdog, which controls it over ssh with its restricted key. The primary lost (runner-02 suspended), a queued
    fenced job starts in runner-03 within 90 s; the primary back, the standby finishes that job and stops. Then ha
    mode, where both take jobs."""
    env, forge = lab.env, lab.forge
    key = env["LAB_VM_SSH_KEY"]
    # On the forge of day one (Forgejo 14), check mode says the watchdog will watch the job queue instead.
    sh(str(LAB / "forge-profile"), "set", "14")
    before = failover(replica, "standby", "--check", "--diff", label="12-failover-check-14")
    assert before.rc == 0 and "the watchdog watches the job queue instead" in " ".join(before.output.split())
    sh(str(LAB / "forge-profile"), "set", "off")  # the forge after the upgrade of test_11: the runners API
    check = failover(replica, "standby", "--check", "--diff", label="12-failover-check")
    assert check.rc == 0, check.tail()
    assert STANDBY not in brix_domains()

    run = failover(replica, "standby", label="12-failover-standby")
    TIMINGS["standby_vm"] = run.seconds
    assert run.rc == 0, run.tail()
    assert standby_unit(key) == "inactive"
    assert host("systemctl", "is-active", "foundation-runner-watchdog.timer", name=BRIX).stdout.strip() == "active"
    again = failover(replica, "standby", label="12-failover-again")
    TIMINGS["standby_again"] = again.seconds
    assert again.rc == 0 and set(again.changed().values()) == {0}, again.tail()

    workflows = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = workflows.create_repo("e2e-standby")
    try:
        kvm_virsh("suspend", VM)
        lost = time.time()
        push = push_probe(repo, "failover", sleep=45)
        latency = repo.wait_started(push, timeout=240) - lost
        assert standby_unit(key) == "active"
        kvm_virsh("resume", VM)
        restored = time.monotonic()
        result = repo.wait_run(push, timeout=300)
        assert result.conclusion == "success" and job_runners(repo, result.id) == [STANDBY], result.log
        assert probe(result)["kernel"] == vm("uname -r", key, ip=STANDBY_IP).stdout.strip()
        wait_until(lambda: standby_unit(key) == "inactive", 300, step=2)
        failback = time.monotonic() - restored
        TIMINGS.update(failover=latency, failback=failback)
        assert latency <= 90, f"the standby took the job {latency:.0f} s after the primary was lost"

        # The status view of the whole replica, in check mode: both VMs, the heavy pods, brix02's watchdog.
        status = replica.playbook("status.yml", "--check", label="12-status")
        TIMINGS["status"] = status.seconds
        assert status.rc == 0 and set(status.changed().values()) == {0}, status.tail()
        for host_name, kind, name in [("crunchy01", "vm", VM), ("brix02", "vm", STANDBY), ("crunchy01", "pod", "")]:
            assert re.search(rf'"{host_name} +{kind} +{name}\S* +.+ +\d+ +(idle|active|offline) ', status.output), (
                name or kind,
                status.tail(),
            )
        assert re.search(r'"brix02: libvirt ok; bridge [^;]+; watchdog: standby: stopped', status.output), status.tail()
        # The metrics for node_exporter's textfile collector (monitoring/README.md), on in the replica as in production.
        watchdog = host("cat", f"{TEXTFILES}/foundation-runners-watchdog.prom", name=BRIX).stdout
        assert 'foundation_runners_watchdog_state{state="standby"} 1' in watchdog, watchdog
        assert "foundation_runners_watchdog_primary_online 1" in watchdog, watchdog
        bridge = host("cat", f"{TEXTFILES}/foundation-runners-bridge.prom").stdout
        assert "foundation_runners_bridge_rule_present 1" in bridge, bridge
        forge_view = host("cat", f"{TEXTFILES}/foundation-runners-forge.prom", name=BRIX).stdout
        assert "foundation_runners_forge_up 1" in forge_view, forge_view
        assert re.search(r'foundation_runners_forge_runners_online\{label="fenced"\} [1-9]', forge_view), forge_view

        ha = failover(replica, "ha", label="12-failover-ha")
        TIMINGS["ha"] = ha.seconds
        assert ha.rc == 0, ha.tail()
        assert standby_unit(key) == "active"
        assert host("test", "-e", "/etc/foundation-runners/watchdog.json", name=BRIX, check=False).returncode == 1
        wait_until(lambda: both_online(forge), 120, step=2)
        both = repo.wait_run(repo.push({".gitea/workflows/ha.yml": HA_JOBS}, message="ha"), timeout=300)
        takers = set(job_runners(repo, both.id))
        assert both.conclusion == "success" and takers == {VM, STANDBY}, takers
    finally:
        kvm_virsh("resume", VM, check=False)
        repo.delete()
    print(
        f"standby VM {STANDBY} on brix02: made in {run.seconds:.0f} s (check {check.seconds:.0f} s), again "
        f"{again.seconds:.0f} s changed=0; failover {latency:.0f} s from loss to job start in {STANDBY}, fail-back "
        f"stopped it {failback:.0f} s after the primary came back; ha: {sorted(takers)} took 6 jobs"
    )
