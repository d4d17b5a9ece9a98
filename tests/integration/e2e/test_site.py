"""site.yml end to end on the lab: crunchy01 (a Debian 13 systemd container with libvirtd, br0 and a
kube-router stand-in that flushes FORWARD every 30 s) gets kvm_host, bridge_forward_timer and the
fenced runner VM; `runs-on: fenced` jobs run in the VM's docker. The tests run in file order and share
the one converged lab, as an operator's day would."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fence_probe import assert_fenced, findings, probe_workflow
from lab_support import LAB, ROOT, lab_env, vault_secret
from lab_workflows import LabForge, Run
from site_lab import HOST, OLD_VM, OUTPUT, VM, VM_IP, Forge, Site, host, lab_from_nothing, lab_up, sh, virsh, vm
from spoof_probe import try_spoofing

ONLINE = {"online", "idle", "active"}
FORGE_IP = "198.51.100.10"
GATEWAY_IP = "198.51.100.1"  # the controller: the lab LAN's way out, as the site's gateway is
PROBE = """\
on: push
jobs:
  probe:
    runs-on: fenced
    steps:
      - run: |
          echo "probe kernel=$(uname -r)"
          echo "probe hostname=$(cat /proc/sys/kernel/hostname)"
          echo "probe machine-id=$(cat /etc/machine-id 2>/dev/null || echo none)"
          if [ -e /.dockerenv ]; then echo "probe dockerenv=yes"; else echo "probe dockerenv=no"; fi
          sleep {sleep}
"""
TIMINGS: dict[str, float] = {}


def probe(run: Run) -> dict[str, str]:
    return dict(re.findall(r"Z probe (\S+?)=(\S*)$", run.log, re.M))


@pytest.fixture(scope="module")
def lab():
    # From nothing, unless E2E_REUSE=1 (while developing): then the converged lab is kept.
    if os.environ.get("E2E_REUSE"):
        env = lab_up()
        forge = Forge(env)
    else:
        env, forge = lab_from_nothing()
    site = Site(env)
    site.store_forge_tokens()
    yield SimpleNamespace(env=env, site=site, forge=forge)
    (OUTPUT / "timings.json").write_text(json.dumps(TIMINGS, indent=2))
    print("\ne2e timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in TIMINGS.items()))


@pytest.fixture(scope="module")
def repo(lab):
    env = lab.env
    forge = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = forge.create_repo("e2e-fenced")
    yield repo
    repo.delete()


def push_probe(repo, name: str, sleep: int = 1):
    return repo.push({f".gitea/workflows/{name}.yml": PROBE.format(sleep=sleep)}, message=name)


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
    print(f"site.yml from nothing: {run.seconds:.0f} s, online after {attempts or '?'} attempt(s)")


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
    """The job, as an attacker: no engine socket answers, the escape options are dropped. A repository of its
    own, so that its push starts this workflow alone."""
    env = lab.env
    forge = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = forge.create_repo("e2e-fence")
    try:
        image = env.get("LAB_JOB_IMAGE_NAME", "lab/debian12:1")
        run = repo.wait_run(repo.push({".gitea/workflows/fence.yml": probe_workflow("fenced", image)}), timeout=600)
    finally:
        repo.delete()
    assert run.conclusion == "success", run.log
    found = findings(run.log)
    assert_fenced(found)
    config = vm("cat /var/lib/forgejo-runner/config.yml", lab.env["LAB_VM_SSH_KEY"], check=False).stdout
    print(f"fenced job as attacker: {found}; runner config docker_host line: {re.findall('docker_host:.*', config)}")


def test_02c_the_vm_cannot_spoof_the_lan(lab):
    """Root in the VM (what a job that escaped its container would be) sends from another address of the LAN and
    claims the gateway's address by gratuitous ARP. clean-traffic on the VM's NIC stops both; with the filter
    lifted (live, for this test only) the same tries work, so the first result means something."""
    key = lab.env["LAB_VM_SSH_KEY"]
    victims = [["ip", "netns", "exec", "frlab-forge"], ["ip", "netns", "exec", f"frlab-{HOST}"]]

    def spoof():
        return try_spoofing(
            lambda script: vm(script, key).stdout,
            target=FORGE_IP,
            spoof_address="198.51.100.49",
            claim=GATEWAY_IP,
            victims=victims,
        )

    live = virsh("dumpxml", VM)
    assert "<filterref filter='clean-traffic'>" in live and "<filterref filter='clean-traffic'>" in virsh(
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
    assert "<filterref filter='clean-traffic'>" in virsh("dumpxml", VM)
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


def test_03_check_changes_nothing(lab, spread):
    """While the fenced jobs run and the stand-in flushes FORWARD: site.yml in check mode with diff reports no
    change. The no-op run for real is test_04's, from a fresh controller (one TCG-bound run fewer)."""
    check = lab.site.playbook("site.yml", "--check", "--diff", label="03-site-check")
    TIMINGS["site_check"] = check.seconds
    assert check.rc == 0, check.tail()
    assert set(check.changed().values()) == {0}, check.tail(120)
    print(f"check --diff {check.seconds:.0f} s: changed=0 on every host")


def test_04_fresh_controller_same_identity(lab, spread, tmp_path):
    """A new controller: a copy of the tracked files only (no .ansible/, no fact cache, nothing a run left
    behind), its collection linked as bootstrap does, and an empty Ansible home; the same inventory and vault.
    Its run is the suite's no-op re-run: changed=0, the same record and identity."""
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
    run = fresh.playbook("site.yml", label="04-site-fresh-controller")
    TIMINGS["site_noop"] = run.seconds
    site.logs.append(fresh.logs[-1])
    assert run.rc == 0, run.tail()
    assert set(run.changed().values()) == {0}, run.tail(120)
    assert not (home / ".ansible" / "fact_cache").exists()
    after = forge.named(VM)
    uuid_after = json.loads(vm("cat /var/lib/forgejo-runner/.runner", env["LAB_VM_SSH_KEY"]).stdout)["uuid"]
    assert len(after) == 1 and after[0]["id"] == before[0]["id"]
    assert uuid_after == uuid_before
    left = sorted(
        str(p.relative_to(clone)) for p in clone.rglob("*") if p.is_file() and str(p.relative_to(clone)) not in files
    )
    assert left == [], f"the run wrote files into the controller's clone: {left}"
    print(f"fresh controller: one record, id {after[0]['id']}, uuid {uuid_after}, changed=0, no file left in the clone")


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
    assert not [v for v in virsh("vol-list", "images").split() if "seed" in v or v.endswith(".iso")]
    places = {
        "playbook logs (-vvv first run)": "\n".join(p.read_text() for p in site.logs),
        "virsh dumpxml": virsh("dumpxml", VM),
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
        for _attempt in range(3):  # the stand-in may flush between the two commands
            host("systemctl", "start", "libvirt-bridge-forward.service")
            rules = [line for line in host("iptables", "-S", "FORWARD").stdout.splitlines() if "physdev" in line]
            if rules:
                break
    finally:
        host("ip", "link", "del", "cni0", check=False)
    assert rules == ["-A FORWARD -i br0 -m physdev --physdev-is-bridged -j ACCEPT"], rules
    host("systemctl", "disable", "--now", "libvirt-bridge-forward.timer")
    try:
        sh(str(LAB / "kvm-host"), "flush", HOST)
        waited = forge.wait_status(VM, {"offline"}, timeout=240)[1]
        TIMINGS["offline_without_rule"] = waited
    finally:
        host("systemctl", "enable", "--now", "libvirt-bridge-forward.timer")
    status_back, back = forge.wait_status(VM, ONLINE, timeout=180)
    TIMINGS["online_again"] = back
    print(f"bridge timer off: {VM} offline after {waited:.0f} s; timer on: {status_back} after {back:.0f} s")


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
    with tempfile.TemporaryDirectory() as workdir:
        sh(
            env["LAB_RUNNER"], "register", "--no-interactive", "--instance", env["FORGE_GITEA_URL"],
            "--token", forge.registration_token(), "--name", OLD_VM, "--labels", "fenced", cwd=workdir,
        )  # fmt: skip
    assert OLD_VM in virsh("list", "--all", "--name").split() and forge.named(OLD_VM)
    run = site.playbook("site.yml", label="08-site-cutover", extra_env={"LAB_RETIRE": OLD_VM})
    TIMINGS["cutover"] = run.seconds
    assert run.rc == 0, run.tail()
    assert forge.named(OLD_VM) == []
    runners = [r for r in forge.runners() if r["name"] in (VM, OLD_VM)]
    assert [r["name"] for r in runners] == [VM] and runners[0]["status"] in ONLINE
    assert OLD_VM not in virsh("list", "--all", "--name").split()
    assert not [v for v in virsh("vol-list", "images").split() if v.startswith(OLD_VM)]
    print(f"cutover {OLD_VM} -> {VM} in {run.seconds:.0f} s: one runner online, no {OLD_VM} domain or volume")


BAD_INPUTS = [
    ("ip-outside-subnet", {"fenced_runner_ip_address": "203.0.113.9/24"}, "is outside the subnet"),
    ("unknown-label-scheme", {"fenced_runner_labels": ["fenced:podman://x"]}, "labels of an unknown form"),
    ("missing-image-checksum", {"fenced_runner_image_checksum": ""}, "fenced_runner_image_checksum '' is not"),
    ("forge-not-answering", {"fenced_runner_forgejo_url": "http://198.51.100.10:1"}, "Check fenced_runner_forgejo_url"),
    ("taken-vm-name", {"fenced_runner_name": "frlab-foreign"}, "were not created by foundation.runners"),
    ("bad-job-image", {"fenced_runner_job_images": [{"name": "x:1", "url": "ftp://x", "checksum": "sha256:0"}]},
     "fenced_runner_job_images"),
    # a new VM on the forge's address: something answers there
    ("address-in-use", {"fenced_runner_name": "runner-09", "fenced_runner_ip_address": "198.51.100.10/24"},
     "198.51.100.10 already answers"),
    # a second VM on the running runner-02's address, and a name declared twice (the whole inventory is checked)
    ("address-declared-twice", {"fenced_vms": [{"name": VM, "ip_address": "198.51.100.32/24"},
                                               {"name": "runner-09", "ip_address": "198.51.100.32/24"}]},
     "address 198.51.100.32 is declared for runner-02 on crunchy01 and runner-09 on crunchy01"),
    ("name-declared-twice", {"fenced_vms": [{"name": VM, "ip_address": "198.51.100.32/24"},
                                            {"name": VM, "ip_address": "198.51.100.39/24"}]},
     "VM name runner-02 is declared 2 times"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "overrides", "expected"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_09_bad_input_changes_nothing(lab, case, overrides, expected):
    site, forge = lab.site, lab.forge
    if case == "taken-vm-name" and "frlab-foreign" not in virsh("list", "--all", "--name").split():
        xml = "<domain type='qemu'><name>frlab-foreign</name><memory unit='MiB'>64</memory>"
        xml += "<os><type>hvm</type></os></domain>"
        host("sh", "-c", f'echo "{xml}" > /tmp/foreign.xml && virsh -c qemu:///system define /tmp/foreign.xml')
    domains = virsh("list", "--all", "--name")
    # Only the names this play could register or delete: other parts use the same forge meanwhile.
    names = {VM, OLD_VM, overrides.get("fenced_runner_name", VM)}
    runners = sorted(r["id"] for r in forge.runners() if r["name"] in names)
    run = site.playbook("fenced_vms.yml", "-e", json.dumps(overrides), label=f"09-bad-{case}")
    assert run.rc != 0, run.tail()
    assert expected in run.output, run.tail()
    assert virsh("list", "--all", "--name") == domains
    assert sorted(r["id"] for r in forge.runners() if r["name"] in names) == runners


HELD = """\
on: push
jobs:
  held:
    runs-on: fenced
    steps:
      - run: |
          for i in $(seq 600); do [ -e /tmp/release ] && exit 0; sleep 1; done; exit 1
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
"""


def job_containers(key: str) -> str:
    return vm("docker ps --quiet --filter name=FORGEJO-ACTIONS-TASK-", key).stdout.strip()


def wait_job_container(key: str, timeout: float = 300) -> float:
    start = time.monotonic()
    while not job_containers(key):
        assert time.monotonic() - start < timeout, f"no job container in {VM} after {timeout:.0f} s"
        time.sleep(2)
    return time.monotonic() - start


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


def test_10_day_one_a_containerised_runner_vm_is_adopted(lab):
    """Day one: runner-02 as another tool leaves a runner VM (no metadata on the domain; forgejo-runner in a
    Docker container with its .runner in a volume), running a job. fenced_vms.yml with adopt: check mode changes
    nothing; the run keeps the domain's disk and the forge record (same id, nothing registered), starts the
    systemd runner, waits for the job to end, then removes the container (its volume kept); a second run is
    changed=0 and the next fenced job runs under systemd. A domain of another tool's shape is adopted in the
    libvirt part (test_04c)."""
    env, site, forge = lab.env, lab.site, lab.forge
    key = env["LAB_VM_SSH_KEY"]
    [record] = forge.named(VM)
    disk_before = virsh("domblklist", VM)
    for where in ("--config", "--live"):
        virsh("metadata", VM, "--uri", "https://foundation.runners/libvirt_cloudinit_vm/1", "--remove", where)
    vm(DAY_ONE, key)
    forge.wait_status(VM, ONLINE, timeout=120)
    entry = {
        "name": VM, "ip_address": f"{VM_IP}/24", "vcpus": 2, "memory": "1536MiB", "disk_size": "8GiB",
        "adopt": True, "adopt_container": "forgejo-runner",
    }  # fmt: skip
    # The forge as the operator has it today: Forgejo 14, no runners API (the lab's profile proxy). Switching
    # it off for the second run is the upgrade to 15.
    sh(str(LAB / "forge-profile"), "up")
    sh(str(LAB / "forge-profile"), "set", "14")
    profile_url = lab_env([str(LAB / "forge-profile"), "env"])["FORGE_PROFILE_URL"]
    adopt = ["-e", json.dumps({"fenced_vms": [entry], "fenced_runner_forgejo_url": profile_url})]
    workflows = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo, later = workflows.create_repo("e2e-day-one"), None
    try:
        check = site.playbook("fenced_vms.yml", "--check", "--diff", *adopt, label="10-adopt-check")
        assert check.rc == 0, check.tail()
        assert f"Check mode: would adopt domain {VM}" in check.output, check.tail()
        assert f"would take over runner {VM} (id {record['id']})" in " ".join(check.output.split())
        assert "foundation.runners" not in virsh("dumpxml", "--inactive", VM)
        assert vm("docker inspect -f '{{.State.Status}}' forgejo-runner", key).stdout.strip() == "running"

        busy = repo.push({".gitea/workflows/held.yml": HELD}, message="held")
        wait_job_container(key)
        releaser = release_in_the_drain(key)
        run = site.playbook("fenced_vms.yml", *adopt, label="10-adopt")
        TIMINGS["adopt"] = run.seconds
        releaser.join(timeout=60)
        assert run.rc == 0, run.tail()
        held = repo.wait_run(busy, timeout=300)
        assert held.conclusion == "success", held.log
        assert "RETRYING" in run.output.split("Wait until no job runs in the VM", 1)[1][:3000], "the drain did not wait"
        assert [(r["id"], r["status"] in ONLINE) for r in forge.named(VM)] == [(record["id"], True)]
        assert vm("docker ps -a -q --filter name=^forgejo-runner$", key).stdout.strip() == ""
        assert "runner-data" in vm("docker volume ls -q", key).stdout.split()
        assert vm("systemctl is-active forgejo-runner", key).stdout.strip() == "active"
        assert "foundation.runners" in virsh("dumpxml", "--inactive", VM) and virsh("domblklist", VM) == disk_before
        assert "has no runners API" in run.output, "the adoption did not run against the Forgejo 14 profile"

        sh(str(LAB / "forge-profile"), "set", "off")
        again = site.playbook("fenced_vms.yml", *adopt, label="10-adopt-again")
        TIMINGS["adopt_again"] = again.seconds
        assert again.rc == 0 and again.changed()["crunchy01"] == 0, again.tail()
        assert "has no runners API" not in again.output and [r["id"] for r in forge.named(VM)] == [record["id"]]
        # A repository of its own: a push to the first would start the held workflow again.
        later = workflows.create_repo("e2e-day-one-after")
        after = push_probe(later, "after", sleep=5)
        assert later.wait_run(after, timeout=300).conclusion == "success"
    finally:
        sh(str(LAB / "forge-profile"), "down", check=False)
        repo.delete()
        if later is not None:
            later.delete()
    print(
        f"day one: adopted in {run.seconds:.0f} s (check {check.seconds:.0f} s) with a job held to its end; "
        f"record {record['id']} kept; second run changed=0 in {again.seconds:.0f} s"
    )
