"""site.yml end to end on the lab: crunchy01 (a Debian 13 systemd container with libvirtd, br0 and a
kube-router stand-in that flushes FORWARD every 30 s) gets kvm_host, bridge_forward_timer and the
fenced runner VM; `runs-on: fenced` jobs run in the VM's docker. The tests run in file order and share
the one converged lab, as an operator's day would."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import base_cache
import pytest
from lablib.fence_probe import assert_fenced, findings, probe_workflow
from lablib.forge import LabForge, Run
from lablib.prometheus import Prometheus
from lablib.shell import LAB, ROOT, sh, vault_secret, wait_until
from lablib.spoof_probe import try_spoofing
from lablib.tiers import gate_keeps
from site_lab import (
    FORGE_IP,
    FORGE_NS,
    HOST,
    INSTANCES,
    OLD_VM,
    ONLINE,
    TIMINGS,
    VM,
    VM_IP,
    Site,
    base_volumes,
    host,
    kvm_virsh,
    pool_volumes,
    probe,
    push_probe,
    register_elsewhere,
    stand_in_held,
    vm,
)

METRICS_PORT = 9100  # fenced_runner_metrics_port in inventory/lab
# The job held through the upgrade: longer than fenced_runner_metrics_interval (60 s), so that a write of the VM's
# metrics falls inside it.
HELD_JOB = 100  # below fenced_runner_shutdown_timeout (120 s, inventory/lab)
GATEWAY_IP = "198.51.100.1"  # the controller: the lab LAN's way out, as the site's gateway is


@pytest.fixture(scope="module")
def repo(lab):
    env = lab.env
    forge = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = forge.create_repo("e2e-fenced")
    yield repo
    repo.delete()


def test_01_site_converges_from_nothing(lab):
    site, forge = lab.site, lab.forge
    run = site.playbook("site.yml", "-vvv", label="01-site-cold")
    TIMINGS["site_cold"] = run.seconds
    assert run.rc == 0, run.tail()
    assert run.recap()["crunchy01"]["failed"] == 0
    status = forge.wait_status(VM, ONLINE, timeout=60)[0]
    assert status in ONLINE
    assert len(forge.named(VM)) == 1
    attempts = re.findall(r"runner-02 \(id \d+\) is \w+ after (\d+) attempt", run.output)
    # runner-02 on the prepared base (inventory/lab): one base volume, its disk an overlay of it, no builder left.
    volumes, bases = pool_volumes(), base_volumes()
    assert len(bases) == 1 and not [v for v in volumes if "builder" in v], volumes
    assert kvm_virsh("list", "--all", "--name").split() == [VM]
    [disk] = [line.split()[3] for line in kvm_virsh("domblklist", "--details", VM).splitlines() if " disk " in line]
    overlay = kvm_virsh("vol-dumpxml", "--pool", "images", disk.rsplit("/", 1)[-1])
    assert bases[0] in overlay, f"{disk} is not an overlay of {bases[0]}: {overlay}"
    if lab.seeded_base:
        assert bases == [lab.seeded_base], f"kept {lab.seeded_base}, found {bases}"
    else:
        base_cache.keep(lab.env, bases[0])
    how = "kept from an earlier run with the same inputs" if lab.seeded_base else "built in the same run"
    print(f"site.yml from nothing: {run.seconds:.0f} s (on the prepared base {bases[0]}, {how}),"
          f" online after {attempts or '?'} attempt(s)")  # fmt: skip


def test_02_fenced_job_runs_in_the_vm(lab, repo):
    env = lab.env
    key = env["LAB_VM_SSH_KEY"]
    push = push_probe(repo, "probe")
    run = repo.wait_run(push, timeout=600)
    TIMINGS["first_job_push_to_start"] = run.push_to_start
    assert run.conclusion == "success", run.log
    seen = probe(run)
    vm_kernel = vm("uname -r", key).stdout.strip()
    vm_hostname = vm("hostname", key).stdout.strip()
    assert seen["kernel"] == vm_kernel, run.log
    assert seen["kernel"] != os.uname().release, "the job ran on the CI machine's kernel"
    assert seen["hostname"] not in (vm_hostname, socket.gethostname(), ""), run.log
    assert seen["dockerenv"] == "yes", run.log
    print(f"job in VM: kernel {seen['kernel']} (CI machine {os.uname().release}), container {seen['hostname']}")


def test_02b_a_fenced_job_cannot_leave_its_container(lab):
    """The job, as an attacker: no engine socket answers, the escape options are dropped, the VM's node_exporter
    and sshd do not answer it (the lab Prometheus scrapes the one, the tests ssh in by the other meanwhile), and it
    cannot connect to the KVM host or the log relay, which the VM itself reaches. A repository of its own, so that
    its push starts this workflow alone."""
    env = lab.env
    forge = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = forge.create_repo("e2e-fence")
    # The VM's own services: its node_exporter (scrapers only) and its sshd (the job fence's INPUT chain).
    own = (f"{VM_IP}:{METRICS_PORT}", f"{VM_IP}:22")
    # fenced_runner_job_denied_networks in inventory/lab: the KVM host (its node_exporter) and the log relay (RELP).
    denied = (f"{env['LAB_KVM_HOST_ADDR']}:9100", f"{env['LAB_LOG_TARGET']}:2514")
    try:
        image = env.get("LAB_JOB_IMAGE_NAME", "lab/debian12:1")
        probe_job = probe_workflow("fenced", image, reach=(*own, *denied))
        run = repo.wait_run(repo.push({".gitea/workflows/fence.yml": probe_job}), timeout=600)
    finally:
        repo.delete()
    assert run.conclusion == "success", run.log
    found = findings(run.log)
    assert_fenced(found)
    for target in (*own, *denied):
        assert f"FENCE tcp {target} answers=none" in run.log, f"the job reached {target}:\n{run.log}"
    # The VM itself still reaches them: the jobs' fence is the containers' alone.
    key = env["LAB_VM_SSH_KEY"]
    for target in denied:
        address, port = target.split(":")
        vm(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/{port}'", key)
    prometheus = Prometheus(env["PROMETHEUS_URL"])
    wait_until(lambda: prometheus.value(f'up{{instance="{VM}"}}') == 1, 60, what="the lab Prometheus scrapes the VM")
    config = vm("cat /var/lib/forgejo-runner/config.yml", lab.env["LAB_VM_SSH_KEY"], check=False).stdout
    print(f"fenced job as attacker: {found}; runner config docker_host line: {re.findall('docker_host:.*', config)}")


def test_02c_the_vm_cannot_spoof_the_lan(lab):
    """Root in the VM (what a job that escaped its container would be) sends from another address of the LAN and
    claims the gateway's address by gratuitous ARP. clean-traffic on the VM's NIC stops both; with the filter
    lifted (live, for this test only) the same tries work, so the first result means something. The kube-router
    stand-in is held for the test: a flush between the probe's pings cut the guest off from the forge and made the
    unfiltered try look blocked."""
    with stand_in_held():
        _spoof_with_and_without_the_filter(lab.env["LAB_VM_SSH_KEY"])


def _spoof_with_and_without_the_filter(key: str) -> None:
    victims = [["ip", "netns", "exec", FORGE_NS], ["ip", "netns", "exec", f"frlab-{HOST}"]]

    def spoof():
        return try_spoofing(
            lambda script: vm(script, key).stdout,
            target=FORGE_IP,
            spoof_address="198.51.100.49",
            claim=GATEWAY_IP,
            victims=victims,
        )

    live = kvm_virsh("dumpxml", VM)
    assert "<filterref filter='clean-traffic'>" in live and "<filterref filter='clean-traffic'>" in kvm_virsh(
        "dumpxml", "--inactive", VM
    )
    filtered = spoof()
    iface = re.search(r"<interface .*?</interface>", live, re.S)[0]

    def set_live_nic(xml: str) -> None:
        host("virsh", "-q", "update-device", VM, "/dev/stdin", "--live", stdin=xml)

    set_live_nic(re.sub(r"<filterref.*?</filterref>", "", iface, flags=re.S))
    try:
        unfiltered = spoof()
    finally:
        set_live_nic(iface)
    assert "<filterref filter='clean-traffic'>" in kvm_virsh("dumpxml", VM)
    assert filtered.blocked, filtered
    assert unfiltered.worked, unfiltered
    print(f"VM spoofing with clean-traffic: {filtered}; with the filter lifted: {unfiltered}")


def test_02d_the_control_key_only_starts_stops_and_queries_the_unit(lab, tmp_path):
    """A watchdog's key (fenced_runner_control_authorized_keys) against the VM's pinned host key: is-active,
    start and stop of the runner unit work; any other command, and the job-running user's shell and sudo, do not."""
    admin_key, control_key = lab.env["LAB_VM_SSH_KEY"], lab.env["LAB_CONTROL_SSH_KEY"]
    host_key = " ".join(vm("cat /etc/ssh/ssh_host_ed25519_key.pub", admin_key).stdout.split()[:2])
    pinned = tmp_path / "known_hosts"
    pinned.write_text(f"{VM_IP} {host_key}\n")

    def control(command: str, known_hosts: Path = pinned):
        ssh = ["ssh", "-F", "none", "-i", control_key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        ssh += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=20"]
        return sh(*ssh, f"runner-control@{VM_IP}", "--", command, check=False, timeout=120)

    assert control("is-active forgejo-runner.service").stdout.strip() == "active"
    stopped = control("stop forgejo-runner.service")
    assert stopped.returncode == 0, stopped.stderr
    assert control("is-active forgejo-runner.service").stdout.strip() == "inactive"
    started = control("start forgejo-runner.service")
    assert started.returncode == 0, started.stderr
    assert control("is-active forgejo-runner.service").stdout.strip() == "active"
    refused = {cmd: control(cmd) for cmd in REFUSED_CONTROL}
    for cmd, proc in refused.items():
        assert proc.returncode != 0 and "refused" in proc.stderr, (cmd, proc.returncode, proc.stdout, proc.stderr)
        assert "root:" not in proc.stdout and "uid=" not in proc.stdout, (cmd, proc.stdout)
    other = tmp_path / "other_known_hosts"
    other.write_text(f"{VM_IP} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBl8xNLqCqfW1H0m6TQGmZ0I4sJ0U3Zb8cQxG9p4xS2J\n")
    assert "Host key verification failed" in control("is-active forgejo-runner.service", other).stderr
    runner_user = vm("getent passwd runner; sudo -l -U runner", admin_key, check=False).stdout
    assert ":/usr/sbin/nologin" in runner_user and "not allowed to run sudo" in runner_user, runner_user
    lab.forge.wait_status(VM, ONLINE, timeout=120)
    print(f"control key: is-active/stop/start ok; refused: {sorted(refused)}; another host key: refused")


REFUSED_CONTROL = [
    "id",
    "cat /etc/shadow",
    "restart forgejo-runner.service",
    "stop ssh.service",
    "is-active forgejo-runner.service; id",
    "start forgejo-runner.service && cat /etc/shadow",
    "",
]


class Spread:
    """Three fenced jobs pushed 80 s apart (3 minutes in all) from a thread, while other tests run."""

    def __init__(self, repo):
        self.repo, self.since = repo, time.time()
        self.pushes: list = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._push)
        self.thread.start()

    def _push(self):
        try:
            for i in range(3):
                self.pushes.append(push_probe(self.repo, f"flush-{i}", sleep=20))
                if i < 2:
                    time.sleep(80)
        except BaseException as exc:
            self.errors.append(exc)

    def runs(self) -> list[Run]:
        self.thread.join()
        assert not self.errors, self.errors
        return [self.repo.wait_run(p, timeout=600) for p in self.pushes]


@pytest.fixture(scope="module")
def spread(repo):
    return Spread(repo)


# What a run that finds nothing to do executes in the runner VM: the login, then one read of the runner's software,
# configuration, identity (its .runner's id and uuid) and unit (host_state_info) instead of a task per file. Each
# round trip into a TCG guest costs about 3 s.
NOOP_IN_VM = {
    "Wait until Ansible can log in to the VM",
    "Read the VM's runner software and configuration in one call",
    "Note whether the VM is still fresh",
    "Publish the VM's ssh host key, for the watchdogs to pin",
}


def test_04_fresh_controller_check_changes_nothing(lab, spread, tmp_path):
    """While the fenced jobs run and the stand-in flushes FORWARD, from a new controller: a copy of the tracked files
    only (no .ansible/, no fact cache, nothing a run left behind), its collection linked as bootstrap does, and an
    empty Ansible home; the same inventory and vault. site.yml --check --diff reports no change on any host (a
    controller that could not find the runner's identity would show a registration to come), the same record and
    identity, and only reads in the VM. The no-op runs for real are day one's and the standby's second runs
    (test_site_day_one.py): one TCG-bound run fewer here."""
    env, site, forge = lab.env, lab.site, lab.forge
    before = forge.named(VM)
    uuid_before = json.loads(vm("cat /var/lib/forgejo-runner/.runner", env["LAB_VM_SSH_KEY"]).stdout)["uuid"]
    clone, home = tmp_path / "clone", tmp_path / "home"
    clone.mkdir()
    home.mkdir()
    files = sh("git", "-C", str(ROOT), "ls-files", "-z").stdout.split("\0")
    sh(
        "tar",
        "-C",
        str(ROOT),
        "-cf",
        str(tmp_path / "tree.tar"),
        "--null",
        "-T",
        "-",
        input="\0".join(f for f in files if f),
    )
    sh("tar", "-C", str(clone), "-xf", str(tmp_path / "tree.tar"))
    link = clone / ".ansible" / "collections" / "ansible_collections" / "foundation"
    link.mkdir(parents=True)
    (link / "runners").symlink_to("../../../..")
    fresh = Site(
        env,
        root=clone,
        extra={
            "HOME": str(home),
            "ANSIBLE_HOME": str(home / ".ansible"),
            "ANSIBLE_COLLECTIONS_PATH": str(clone / ".ansible" / "collections"),
        },
    )
    run = fresh.playbook("site.yml", "--check", "--diff", label="04-site-check-fresh-controller")
    TIMINGS["site_check"] = run.seconds
    site.logs.append(fresh.logs[-1])
    assert run.rc == 0, run.tail()
    assert set(run.changed().values()) == {0}, run.tail(120)
    assert not (home / ".ansible" / "fact_cache").exists()
    in_vm = [task for task, where in run.executions() if where == VM]
    assert set(in_vm) <= NOOP_IN_VM, f"a check run found more to do in the VM: {sorted(set(in_vm) - NOOP_IN_VM)}"
    after = forge.named(VM)
    uuid_after = json.loads(vm("cat /var/lib/forgejo-runner/.runner", env["LAB_VM_SSH_KEY"]).stdout)["uuid"]
    assert len(after) == 1 and after[0]["id"] == before[0]["id"]
    assert uuid_after == uuid_before
    left = sorted(
        str(p.relative_to(clone)) for p in clone.rglob("*") if p.is_file() and str(p.relative_to(clone)) not in files
    )
    assert left == [], f"the run wrote files into the controller's clone: {left}"
    print(
        f"check --diff from a fresh controller {run.seconds:.0f} s: changed=0 on every host, one record, id "
        f"{after[0]['id']}, uuid {uuid_after}, no file left in the clone"
    )


def test_04b_status_shows_the_fleet_and_changes_nothing(lab):
    """playbooks/status.yml reads the fleet and prints one table: runner-02's row carries its forge record, and
    crunchy01's line its bridge rule and timer. In check mode it prints the same and changes nothing."""
    [record] = lab.forge.named(VM)
    row = re.compile(rf'"crunchy01 +vm +{VM} +running +{record["id"]} +(idle|active) +\S+ +fenced')
    runs = [lab.site.playbook("status.yml", *mode, label="04b-status" + "".join(mode)) for mode in ([], ["--check"])]
    for run in runs:
        assert run.rc == 0 and set(run.changed().values()) == {0}, run.tail()
        assert row.search(run.output), run.tail()
        # The lab's kube-router stand-in flushes FORWARD every 30 s and the timer puts the rule back every 60 s: the
        # rule is honestly absent part of the time, the timer always active.
        line = r'"crunchy01: libvirt ok; bridge rule (present|absent), timer active; watchdog: not installed"'
        assert re.search(line, run.output), run.tail()
    print(f"status: {runs[0].seconds:.0f} s, in check mode {runs[1].seconds:.0f} s; runner-02 is id {record['id']}")


def test_05_jobs_survive_the_flushes(spread):
    runs = spread.runs()
    took = time.time() - spread.since
    flushes = host("journalctl", "-u", "frlab-kube-router.service", "--since", f"@{int(spread.since)}", "-o", "cat")
    flush_count = flushes.stdout.count("Finished")
    assert [r.conclusion for r in runs] == ["success"] * 3, [r.log for r in runs]
    assert flush_count >= 5, flushes.stdout
    print(f"3 fenced jobs over {took:.0f} s with {flush_count} FORWARD flushes: all success")


def test_06_no_secret_leaks(lab):
    env, site, forge = lab.env, lab.site, lab.forge
    key = env["LAB_VM_SSH_KEY"]
    runner_file = json.loads(vm("cat /var/lib/forgejo-runner/.runner", key).stdout)
    # The playbooks' admin token and password, and their Vault login, as the lab Vault holds them.
    secrets = {
        "admin token": vault_secret("forgejo/foundation-runners/admin-token")["token"],
        "admin password": vault_secret("forgejo/service-credentials")["forgejoAdminPassword"],
        "Vault secret id": env["ANSIBLE_HASHI_VAULT_SECRET_ID"],
        "runner token": runner_file["token"],
    }
    secrets["registration token"] = forge.registration_token()
    assert not [v for v in pool_volumes() if "seed" in v or v.endswith(".iso")]
    places = {
        "playbook logs (-vvv first run)": "\n".join(p.read_text() for p in site.logs),
        "virsh dumpxml": kvm_virsh("dumpxml", VM),
        "crunchy01 journal": host("journalctl", "--no-pager", "-o", "cat").stdout,
        "VM journal": vm("journalctl --no-pager -o cat", key).stdout,
    }
    found = [(what, where) for what, value in secrets.items() for where, text in places.items() if value in text]
    # The values reach the guest on stdin, into a root-only file outside the search, never on a command line.
    search = (
        "umask 077; cat > /run/e2e-secrets; find / -xdev -type f -perm -o+r -size -20M 2>/dev/null"
        " | xargs -r grep -lF -f /run/e2e-secrets; rm -f /run/e2e-secrets"
    )
    hits = vm(search, key, check=False, stdin="\n".join(secrets.values()) + "\n").stdout.split()
    found += [("a token", f"world-readable {path}") for path in hits]
    # The admin and registration tokens never reach the VM: registration happens on the controller. Every file
    # but the packages' (/usr) and the job images' layers is searched.
    anywhere = (
        "umask 077; cat > /run/e2e-secrets; find / -xdev \\( -path /usr -o -path /var/lib/docker/overlay2 \\) -prune"
        " -o -type f -size -20M ! -path /run/e2e-secrets -print 2>/dev/null"
        " | xargs -r grep -lF -f /run/e2e-secrets; rm -f /run/e2e-secrets"
    )
    controller_only = [secrets[k] for k in ("admin token", "admin password", "Vault secret id", "registration token")]
    hits = vm(anywhere, key, check=False, stdin="\n".join(controller_only) + "\n").stdout.split()
    found += [("a controller-only secret", path) for path in hits]
    assert not found, found
    print(f"no secret in {len(places)} places nor in world-readable guest files; seed volume gone")


def test_07_the_bridge_rule_keeps_the_runner_online(lab):
    forge = lab.forge
    # The default covers the VM bridge alone: another bridge (k3s' cni0 on crunchy01) gets no ACCEPT.
    host("ip", "link", "add", "cni0", "type", "bridge", check=False)
    try:
        with stand_in_held():
            rules = [line for line in host("iptables", "-S", "FORWARD").stdout.splitlines() if "physdev" in line]
    finally:
        host("ip", "link", "del", "cni0", check=False)
    assert rules == ["-A FORWARD -i br0 -m physdev --physdev-is-bridged -j ACCEPT"], rules
    host("systemctl", "disable", "--now", "libvirt-bridge-forward.timer")
    flushed_at = time.time()
    try:
        sh(str(LAB / "kvm-host"), "flush", HOST)
        waited = forge.wait_status(VM, {"offline"}, timeout=240)[1]
        TIMINGS["offline_without_rule"] = waited
    finally:
        host("systemctl", "enable", "--now", "libvirt-bridge-forward.timer")
    status_back, back = forge.wait_status(VM, ONLINE, timeout=180)
    TIMINGS["online_again"] = back
    # crunchy01's node_exporter, scraped by the lab Prometheus, shows the repair the timer made.
    prometheus = Prometheus(lab.env["PROMETHEUS_URL"])
    last = 'foundation_runners_bridge_rule_last_repair_timestamp_seconds{instance="crunchy01"}'
    wait_until(lambda: (prometheus.value(last) or 0) >= flushed_at, 60, step=2, what="the repair in Prometheus")
    repairs = prometheus.value('foundation_runners_bridge_rule_repairs_total{instance="crunchy01"}')
    print(
        f"bridge timer off: {VM} offline after {waited:.0f} s; timer on: {status_back} after {back:.0f} s;"
        f" Prometheus: {repairs:.0f} repairs on crunchy01"
    )


def test_07b_the_runner_lines_reach_the_log_receiver_through_its_outage(lab):
    """log_shipping on the lab: the receiver (tests/lab/logs, the role's relay before Graylog's input) stopped for a
    minute while the runner VM writes a line every 2 s as the runner's program; once it is back, every line is
    there once, with the VM's host name and the VM's address as the relay's origin. crunchy01's bridge timer ships
    its repairs the same way."""
    received = Path(lab.env["LAB_LOG_RECEIVED"])
    tag = f"e2e-outage-{int(time.time())}"
    sh(str(LAB / "logs"), "stop")
    try:
        writes = f"for i in $(seq 0 29); do logger -t forgejo-runner '{tag} line '$i; sleep 2; done"
        vm(writes, lab.env["LAB_VM_SSH_KEY"])
    finally:
        sh(str(LAB / "logs"), "up")
    back = time.monotonic()

    def lines() -> list[str]:
        return [line for line in received.read_text().splitlines() if tag in line] if received.exists() else []

    wait_until(lambda: len(set(lines())) >= 30, 180, step=2)
    caught_up = time.monotonic() - back
    got = sorted(" ".join(line.split()) for line in lines())
    origin = f'[origin ip="{VM_IP}"]'  # the relay's stamp of the address the line came from
    assert got == sorted(f"{VM} forgejo-runner {origin} {tag} line {i}" for i in range(30)), got
    wait_until(lambda: " libvirt-bridge-forward " in received.read_text(), 150, step=5)
    bridge = [line for line in received.read_text().splitlines() if " libvirt-bridge-forward " in line]
    TIMINGS["logs_caught_up"] = caught_up
    print(f"receiver down 60 s: 30 lines from {VM} arrived once each, {caught_up:.0f} s after; bridge: {bridge[-1]}")


def test_08_cutover_from_runner_01(lab):
    env, site, forge = lab.env, lab.site, lab.forge
    # The old fleet: a runner-01 VM made by the collection (defined, stopped) and its registration.
    made = site.playbook(
        str(Path(__file__).parent / "old_runner.yml"),
        "-e",
        json.dumps({"old_vm": OLD_VM}),
        label="08-old-runner",
    )
    assert made.rc == 0, made.tail()
    register_elsewhere(env, forge, OLD_VM)
    assert OLD_VM in kvm_virsh("list", "--all", "--name").split() and forge.named(OLD_VM)
    run = site.playbook("site.yml", label="08-site-cutover", extra_env={"LAB_RETIRE": OLD_VM})
    TIMINGS["cutover"] = run.seconds
    assert run.rc == 0, run.tail()
    assert forge.named(OLD_VM) == []
    runners = [r for r in forge.runners() if r["name"] in (VM, OLD_VM)]
    assert [r["name"] for r in runners] == [VM] and runners[0]["status"] in ONLINE
    assert OLD_VM not in kvm_virsh("list", "--all", "--name").split()
    assert not [v for v in pool_volumes() if v.startswith(OLD_VM)]
    print(f"cutover {OLD_VM} -> {VM} in {run.seconds:.0f} s: one runner online, no {OLD_VM} domain or volume")


BAD_INPUTS = [
    ("ip-outside-subnet", {"fenced_runner_ip_address": "203.0.113.9/24"}, "is outside the subnet"),
    ("unknown-label-scheme", {"fenced_runner_labels": ["fenced:podman://x"]}, "labels of an unknown form"),
    ("missing-image-checksum", {"fenced_runner_image_checksum": ""}, "fenced_runner_image_checksum '' is not"),
    ("forge-not-answering", {"fenced_runner_forgejo_url": f"http://{FORGE_IP}:1"}, "Check fenced_runner_forgejo_url"),
    ("taken-vm-name", {"fenced_runner_name": "frlab-foreign"}, "were not created by foundation.runners"),
    ("bad-job-image", {"fenced_runner_job_images": [{"name": "x:1", "url": "ftp://x", "checksum": "sha256:0"}]},
     "fenced_runner_job_images"),
    # a new VM on the forge's address: something answers there
    ("address-in-use", {"fenced_runner_name": "runner-09", "fenced_runner_ip_address": f"{FORGE_IP}/24"},
     f"{FORGE_IP} already answers"),
    # a second VM on the running runner-02's address, and a name declared twice (the whole inventory is checked)
    ("address-declared-twice", {"fenced_vms": [{"name": VM, "ip_address": "198.51.100.32/24"},
                                               {"name": "runner-09", "ip_address": "198.51.100.32/24"}]},
     "address 198.51.100.32 is declared for runner-02 on crunchy01 and runner-09 on crunchy01"),
    ("name-declared-twice", {"fenced_vms": [{"name": VM, "ip_address": "198.51.100.32/24"},
                                            {"name": VM, "ip_address": "198.51.100.39/24"}]},
     "VM name runner-02 is declared 2 times"),
]  # fmt: skip


# The gate: one input refused by the role's own checks, one by the forge's answer, one across the inventory; the
# preflight's unit tests cover every check, and make test-extended runs every case here.
@pytest.mark.parametrize(
    ("case", "overrides", "expected"), gate_keeps(BAD_INPUTS, 0, 3, 7), ids=[c[0] for c in BAD_INPUTS]
)
def test_09_bad_input_changes_nothing(lab, case, overrides, expected):
    site, forge = lab.site, lab.forge
    if case == "taken-vm-name" and "frlab-foreign" not in kvm_virsh("list", "--all", "--name").split():
        xml = "<domain type='qemu'><name>frlab-foreign</name><memory unit='MiB'>64</memory>"
        xml += "<os><type>hvm</type></os></domain>"
        host("sh", "-c", f'echo "{xml}" > /tmp/foreign.xml && virsh -c qemu:///system define /tmp/foreign.xml')
    domains = kvm_virsh("list", "--all", "--name")
    # Only the names this play could register or delete: other parts use the same forge meanwhile.
    names = {VM, OLD_VM, overrides.get("fenced_runner_name", VM)}
    runners = sorted(r["id"] for r in forge.runners() if r["name"] in names)
    run = site.playbook("fenced_vms.yml", "-e", json.dumps(overrides), label=f"09-bad-{case}")
    assert run.rc != 0, run.tail()
    assert expected in run.output, run.tail()
    assert kvm_virsh("list", "--all", "--name") == domains
    assert sorted(r["id"] for r in forge.runners() if r["name"] in names) == runners


def runner_version(name: str) -> str:
    """The version the forge recorded for runner NAME (Gitea's API does not return it; its database does)."""
    db = INSTANCES["FRLAB_FORGE_DIR"] + "/gitea/data/forge.db"
    query = f"select version from action_runner where name = '{name}' and deleted is null"
    return sh("sqlite3", "-readonly", db, query).stdout.strip()


def runner_facts(prometheus: Prometheus, wanted, timeout: float = 90) -> dict:
    """The runner VM's own metrics as the lab Prometheus last scraped them (unit active, version, jobs running),
    once wanted(facts) holds."""

    seen: list[dict] = []

    def facts() -> dict | None:
        info = prometheus.series(f'foundation_runners_runner_info{{runner="{VM}"}}')
        active = prometheus.value(f'foundation_runners_runner_unit_state{{runner="{VM}",state="active"}}')
        jobs = prometheus.value(f'foundation_runners_runner_jobs_running{{runner="{VM}"}}')
        if not info or active is None or jobs is None:
            return None
        seen[:] = [{"version": info[0][0]["version"], "active": active, "jobs": jobs}]
        return seen[0] if wanted(seen[0]) else None

    try:
        return wait_until(facts, timeout, step=2, what="the runner's metrics")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen[0] if seen else 'no series'}") from exc


def test_10_an_upgrade_drains_the_running_job(lab):
    """A new runner version (binary and checksum) while a fenced job of HELD_JOB s runs: the run swaps the binary, the
    restart lets the job finish (the runner's graceful shutdown, within shutdown_timeout), and the runner comes back
    with the same record, reporting the new version."""
    env, site, forge = lab.env, lab.site, lab.forge
    prometheus = Prometheus(env["PROMETHEUS_URL"])
    [before] = forge.named(VM)
    old_version = runner_version(VM)
    workflows = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = workflows.create_repo("e2e-upgrade")
    try:
        busy = push_probe(repo, "held-through-the-upgrade", sleep=HELD_JOB)
        repo.wait_started(busy, timeout=120)
        # Meanwhile the lab Prometheus must show the job in the VM's own metrics, with the old version.
        busy_seen: dict = {}
        watcher = threading.Thread(
            target=lambda: busy_seen.update(runner_facts(prometheus, lambda facts: facts["jobs"] >= 1, HELD_JOB)),
            daemon=True,
        )
        watcher.start()
        upgrade = [
            "-e", f"fenced_runner_binary_url={env['LAB_RUNNER_NEXT_URL']}",
            "-e", f"fenced_runner_binary_checksum={env['LAB_RUNNER_NEXT_CHECKSUM']}",
        ]  # fmt: skip
        run = site.playbook("site.yml", *upgrade, label="10-upgrade")
        TIMINGS["upgrade"] = run.seconds
        assert run.rc == 0, run.tail()
        result = repo.wait_run(busy, timeout=300)
        assert result.conclusion == "success", result.log
    finally:
        repo.delete()
    [after] = forge.named(VM)
    assert after["id"] == before["id"] and after["status"] in ONLINE, after
    assert runner_version(VM) == env["LAB_RUNNER_NEXT_VERSION"]
    # The VM's own metrics, in the lab Prometheus: the job while it ran, then the new version with the unit active.
    watcher.join(timeout=120)
    assert busy_seen.get("version") == old_version and busy_seen["active"] == 1, busy_seen
    # The version comes from the binary on disk, which the run swaps before the job ends: the settled state is the
    # new version, the unit active and no job, once a scrape after the job's containers went has landed.
    next_version = env["LAB_RUNNER_NEXT_VERSION"]
    runner_facts(prometheus, lambda facts: facts == {"version": next_version, "active": 1, "jobs": 0}, timeout=180)
    assert vm("sha256sum /usr/local/bin/forgejo-runner", env["LAB_VM_SSH_KEY"]).stdout.split()[0] == env[
        "LAB_RUNNER_NEXT_CHECKSUM"
    ].removeprefix("sha256:")
    print(
        f"upgrade to {env['LAB_RUNNER_NEXT_VERSION']} in {run.seconds:.0f} s: the {HELD_JOB} s job finished,"
        f" id {after['id']} kept"
    )
