"""Time to a usable runner VM: the libvirt_cloudinit_vm module against virt-install --import --cloud-init.

Run as root:  .venv/bin/python tests/bench/vm_provisioning.py [--runs N] [--overlay-reps M]   (or `make bench`)

1. Boot: for each run, one guest through `ansible localhost -m foundation.runners.libvirt_cloudinit_vm`
   (state running) and one through `virt-install --import --cloud-init`, in alternating order, on the lab's
   libvirtd (TCG, bridge br0, pool lab), same base image, vcpus, memory, user-data and static IP. Seconds from
   the start of the command to: command exit, first ping, ssh accepting the bench key, and
   `cloud-init status --wait` returning "status: done". Each guest and its volumes are removed after its run.
   - module: the base volume is imported once beforehand (not timed); each run passes base_image, so the
     module hashes the image file and creates its own qcow2 overlay, builds and uploads the seed.
   - virt-install: its `--disk pool=...,backing_store=<the module's base volume>` makes virt-install create
     the qcow2 overlay itself in the same pool, inside the timed command.
2. Disk provisioning: the module with state present (base_volume given, so no image hashing) against a 2 GiB
   and a 20 GiB virtual-size base, and a bare libvirt storage-volume create with <backingStore> (what the
   module does for the overlay), repeated; medians per base size.

Only domains and volumes named bench-* are touched; base volumes stay in the pool for the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (REPO / ".venv").resolve() and VENV_PY.exists():
    os.execv(str(VENV_PY), [str(VENV_PY), __file__, *sys.argv[1:]])

import libvirt  # noqa: E402 (after the switch to the venv's interpreter)

sys.path[:0] = [str(REPO / "tests")]
from lablib.shell import sh  # noqa: E402 (after the path set-up)

LAB = REPO / "tests" / "lab" / "libvirt"
BUILD_IMAGE = REPO / "tests" / "lab" / "build-guest-image"
MODULE = "foundation.runners.libvirt_cloudinit_vm"
GUEST_USER = "bench"
VCPUS = 2
MEMORY_MIB = 1024
MOD_NAME, MOD_IP = "bench-mod", "198.51.100.50"
VI_NAME, VI_IP, VI_MAC = "bench-vi", "198.51.100.51", "52:54:00:be:00:51"
OV_NAME = "bench-ov"
PREFIX = "bench-"
BOOT_LIMIT = 400
VI_CMDLINE: list[str] = []


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Lab:
    def __init__(self, tmp: Path) -> None:
        sh(*[str(LAB), "up"])
        self.env: dict[str, str] = {}
        for line in sh(*[str(LAB), "env"]).stdout.splitlines():
            if line.startswith("export "):
                key, _sep, value = line[len("export ") :].partition("=")
                self.env[key] = value
        self.uri = self.env["LIBVIRT_URI"]
        self.pool_name = self.env["LAB_POOL"]
        self.bridge = self.env["LAB_BRIDGE"]
        self.image = self.env["LAB_GUEST_IMAGE"]
        self.image_20g = sh(*[str(BUILD_IMAGE), "--virtual-size", "20G"]).stdout.strip().splitlines()[-1]
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors surface as exceptions
        self.conn = libvirt.open(self.uri)
        self.pool = self.conn.storagePoolLookupByName(self.pool_name)
        self.tmp = tmp
        self.key = tmp / "id"
        sh(*["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(self.key)])
        self.pub = (tmp / "id.pub").read_text().strip()

    def volumes(self) -> set[str]:
        self.pool.refresh(0)
        return set(self.pool.listVolumes())

    def remove_guest(self, name: str) -> None:
        """Destroy and undefine one bench domain and delete every pool volume named after it."""
        with contextlib.suppress(libvirt.libvirtError):
            dom = self.conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        for vol in self.volumes():
            if vol.startswith(name):
                self.pool.storageVolLookupByName(vol).delete(0)

    def cleanup(self) -> None:
        names = {d.name() for d in self.conn.listAllDomains()} | {MOD_NAME, VI_NAME, OV_NAME}
        for name in sorted(names):
            if name.startswith(PREFIX):
                self.remove_guest(name)


def ansible_module(args: dict) -> tuple[dict, float]:
    """Run the module once through `ansible localhost -m`; returns (task result, wall seconds)."""
    venv = REPO / ".venv" / "bin"
    cmd = [
        str(venv / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
        "-e", f"ansible_python_interpreter={venv / 'python'}", "-m", MODULE, "-a", json.dumps(args),
    ]  # fmt: skip
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".ansible" / "collections"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    }
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    try:
        res = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError) as exc:
        raise RuntimeError(f"ansible gave no result ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc
    if res.get("failed"):
        raise RuntimeError(f"module failed: {res.get('msg')}")
    return res, wall


def user_data(lab: Lab, name: str) -> dict:
    return {
        "hostname": name,
        "users": [
            {
                "name": GUEST_USER,
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": [lab.pub],
            }
        ],
    }


def ssh(lab: Lab, ip: str, command: str, timeout: float = 10) -> subprocess.CompletedProcess:
    cmd = [
        "ssh", "-i", str(lab.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", f"{GUEST_USER}@{ip}", command,
    ]  # fmt: skip
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 255, "", "timeout")


def watch_boot(lab: Lab, name: str, ip: str, t0: float) -> dict[str, float]:
    """From the controller (it reaches br0 directly): first ping, first ssh, cloud-init done; seconds from t0."""
    out: dict[str, float] = {}
    deadline = t0 + BOOT_LIMIT
    while time.monotonic() < deadline:
        if "ping" not in out and sh(*["ping", "-c1", "-W1", ip], check=False).returncode == 0:
            out["ping"] = time.monotonic() - t0
        if "ping" in out and ssh(lab, ip, "true").returncode == 0:
            out["ssh"] = time.monotonic() - t0
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"{name}: no ssh to {GUEST_USER}@{ip} within {BOOT_LIMIT}s (seen: {out})")
    status = ssh(lab, ip, "cloud-init status --wait", timeout=max(10, deadline - time.monotonic()))
    out["cloud-init"] = time.monotonic() - t0
    if "status: done" not in status.stdout:
        raise RuntimeError(f"{name}: cloud-init status: {status.stdout.strip()} {status.stderr.strip()}")
    hostname = ssh(lab, ip, "hostname").stdout.strip()
    if hostname != name:
        raise RuntimeError(f"{name}: guest hostname is {hostname!r}")
    return out


def module_args(lab: Lab, state: str, name: str, ip: str, **kw) -> dict:
    return {
        "name": name,
        "uri": lab.uri,
        "state": state,
        "domain_type": "qemu",
        "pool": lab.pool_name,
        "bridge": lab.bridge,
        "vcpus": VCPUS,
        "memory": MEMORY_MIB,
        "ip_address": f"{ip}/24",
        "user_data": user_data(lab, name),
        **kw,
    }


def import_base(lab: Lab, image: str) -> tuple[str, str]:
    """Let the module import a base image into the pool once (untimed); returns (volume name, path)."""
    res, wall = ansible_module(module_args(lab, "present", OV_NAME, MOD_IP, base_image=image))
    ansible_module({"name": OV_NAME, "uri": lab.uri, "state": "absent"})
    base = res["volumes"]["base"]
    path = lab.pool.storageVolLookupByName(base).path()
    log(f"base {base} for {Path(image).name} ready ({wall:.1f}s, untimed)")
    return base, path


def run_module(lab: Lab) -> dict[str, float]:
    args = module_args(lab, "running", MOD_NAME, MOD_IP, base_image=lab.image)
    t0 = time.monotonic()
    _res, wall = ansible_module(args)
    out = {"command": wall, **watch_boot(lab, MOD_NAME, MOD_IP, t0)}
    res, out["rerun"] = ansible_module(args)
    if res.get("changed"):
        raise RuntimeError(f"second module run changed something: {res.get('actions')}")
    return out


def run_virt_install(lab: Lab, base_path: str) -> dict[str, float]:
    seed = lab.tmp / "vi-seed"
    seed.mkdir(exist_ok=True)
    (seed / "user-data").write_text("#cloud-config\n" + json.dumps(user_data(lab, VI_NAME), indent=2) + "\n")
    (seed / "meta-data").write_text(json.dumps({"instance-id": f"iid-{VI_NAME}", "local-hostname": VI_NAME}) + "\n")
    net = {
        "version": 2,
        "ethernets": {
            "nic0": {
                "match": {"macaddress": VI_MAC},
                "addresses": [f"{VI_IP}/24"],
                "dhcp4": False,
                "dhcp6": False,
                "accept-ra": False,
            }
        },
    }
    (seed / "network-config").write_text(json.dumps(net) + "\n")
    size_gib = lab.conn.storageVolLookupByPath(base_path).info()[1] / 1024**3
    cmd = [
        "virt-install", "--connect", lab.uri, "--name", VI_NAME, "--import", "--osinfo", "debian11",
        "--virt-type", "qemu", "--vcpus", str(VCPUS), "--memory", str(MEMORY_MIB),
        "--disk", f"pool={lab.pool_name},size={size_gib:g},format=qcow2,backing_store={base_path},"
        "backing_format=qcow2,bus=virtio",
        "--network", f"bridge={lab.bridge},mac={VI_MAC},model=virtio",
        "--cloud-init", f"user-data={seed / 'user-data'},meta-data={seed / 'meta-data'},"
        f"network-config={seed / 'network-config'}",
        "--graphics", "none", "--noautoconsole",
    ]  # fmt: skip
    VI_CMDLINE[:] = cmd
    t0 = time.monotonic()
    sh(*cmd, timeout=BOOT_LIMIT)
    wall = time.monotonic() - t0
    out = {"command": wall, **watch_boot(lab, VI_NAME, VI_IP, t0)}
    disks = [v for v in lab.volumes() if v.startswith(VI_NAME)]
    backing = [v for v in disks if base_path in lab.pool.storageVolLookupByName(v).XMLDesc(0)]
    if not backing:
        raise RuntimeError(f"virt-install's disk {disks} is not an overlay on {base_path}")
    xml = lab.conn.lookupByName(VI_NAME).XMLDesc(0)
    machine = xml.split("machine='", 1)[1].split("'", 1)[0] if "machine='" in xml else "?"
    log(f"virt-install: disk {backing[0]} is a qcow2 overlay on the base; machine {machine}")
    return out


def overlay_bench(lab: Lab, bases: dict[str, tuple[str, str]], reps: int) -> dict[str, dict[str, float]]:
    """Median seconds of disk provisioning per base: the module (state present) and a bare overlay create."""
    out: dict[str, dict[str, float]] = {}
    for label, (base, path) in bases.items():
        vol = lab.pool.storageVolLookupByName(base)
        capacity = vol.info()[1]
        mod, bare, alloc = [], [], 0
        for _i in range(reps):
            args = module_args(lab, "present", OV_NAME, MOD_IP, base_volume=base)
            _res, wall = ansible_module(args)
            mod.append(wall)
            ov = lab.pool.storageVolLookupByName(f"{OV_NAME}.qcow2")
            alloc = max(alloc, ov.info()[2])
            ansible_module({"name": OV_NAME, "uri": lab.uri, "state": "absent"})
            xml = (
                f"<volume><name>{OV_NAME}-bare.qcow2</name><capacity unit='bytes'>{capacity}</capacity>"
                f"<target><format type='qcow2'/></target>"
                f"<backingStore><path>{path}</path><format type='qcow2'/></backingStore></volume>"
            )
            t0 = time.monotonic()
            new = lab.pool.createXML(xml, 0)
            bare.append(time.monotonic() - t0)
            new.delete(0)
        out[label] = {
            "virtual": capacity / 1024**3,
            "module": statistics.median(mod),
            "module_min": min(mod),
            "module_max": max(mod),
            "bare": statistics.median(bare),
            "alloc": alloc / 1024,
            "reps": reps,
        }
        log(f"overlay {label}: module {[round(x, 2) for x in mod]} bare {[round(x, 4) for x in bare]}")
    return out


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:7.1f}"


def report(runs: list[dict[str, dict[str, float]]], overlays: dict[str, dict[str, float]], load: tuple) -> None:
    cols = ["command", "ping", "ssh", "cloud-init", "rerun"]
    print()
    print(f"VM provisioning, {len(runs)} run(s) each, TCG guests, {VCPUS} vcpus, {MEMORY_MIB} MiB, 2 GiB disk")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    print("seconds from the start of the command (command = its own wall time; rerun = idempotent second run)")
    print(f"{'run':<5}{'path':<14}" + "".join(f"{c:>12}" for c in cols))
    for i, run in enumerate(runs, 1):
        for path in run["order"]:
            row = run[path]
            print(f"{i:<5}{path:<14}" + "".join(f"{fmt(row.get(c)):>12}" for c in cols))
    med: dict[str, dict[str, float]] = {}
    for path in ("module", "virt-install"):
        med[path] = {c: statistics.median([r[path][c] for r in runs]) for c in cols if c in runs[0][path]}
        print(f"{'med':<5}{path:<14}" + "".join(f"{fmt(med[path].get(c)):>12}" for c in cols))
    ratio = {c: med["module"][c] / med["virt-install"][c] for c in cols if c in med["virt-install"]}
    print(f"{'':<5}{'ratio mod/vi':<14}" + "".join(f"{ratio[c]:>12.2f}" if c in ratio else f"{'-':>12}" for c in cols))
    print()
    reps = next(iter(overlays.values()))["reps"] if overlays else 0
    print(f"Disk provisioning: overlay on an imported base, median of {reps} repetitions per base")
    print(f"{'base':<10}{'virtual GiB':>12}{'module present s':>18}{'(min-max)':>16}{'bare vol create s':>19}"
          f"{'overlay KiB':>13}")  # fmt: skip
    for label, o in overlays.items():
        spread = f"{o['module_min']:.2f}-{o['module_max']:.2f}"
        print(f"{label:<10}{o['virtual']:>12.0f}{o['module']:>18.2f}{spread:>16}{o['bare']:>19.4f}{o['alloc']:>13.0f}")
    labels = list(overlays)
    if len(labels) == 2:
        a, b = overlays[labels[0]], overlays[labels[1]]
        print(f"20G/2G ratio: module {b['module'] / a['module']:.2f}, bare volume create {b['bare'] / a['bare']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="boots per path (default 1)")
    ap.add_argument("--overlay-reps", type=int, default=5, help="repetitions per base size (default 5)")
    ap.add_argument("--skip-boot", action="store_true", help="only the disk-provisioning part")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        log("needs root (the lab's libvirtd)")
        return 2
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="frbench.") as tmp:
        lab = Lab(Path(tmp))
        try:
            lab.cleanup()
            bases = {"2G": import_base(lab, lab.image), "20G": import_base(lab, lab.image_20g)}
            runs: list[dict] = []
            for i in range(0 if opts.skip_boot else opts.runs):
                order = ["module", "virt-install"] if i % 2 == 0 else ["virt-install", "module"]
                run: dict = {"order": order}
                for path in order:
                    log(f"run {i + 1}/{opts.runs}: {path}")
                    try:
                        if path == "module":
                            run[path] = run_module(lab)
                        else:
                            run[path] = run_virt_install(lab, bases["2G"][1])
                    finally:
                        lab.remove_guest(MOD_NAME if path == "module" else VI_NAME)
                    log(f"run {i + 1} {path}: " + ", ".join(f"{k}={v:.1f}s" for k, v in run[path].items()))
                runs.append(run)
            overlays = overlay_bench(lab, bases, opts.overlay_reps)
        except (RuntimeError, OSError, libvirt.libvirtError, subprocess.TimeoutExpired) as exc:
            log(f"FAILED: {exc}")
            if VI_CMDLINE:
                log(f"virt-install command: {shlex.join(VI_CMDLINE)}")
            return 1
        finally:
            lab.cleanup()
            left = [d.name() for d in lab.conn.listAllDomains() if d.name().startswith(PREFIX)]
            if left:
                log(f"domains left behind: {left}")
    if runs:
        report(runs, overlays, load)
    else:
        report_overlays_only(overlays)
    return 0


def report_overlays_only(overlays: dict[str, dict[str, float]]) -> None:
    for label, o in overlays.items():
        print(f"{label}: module present {o['module']:.2f}s, bare volume create {o['bare']:.4f}s")


if __name__ == "__main__":
    sys.exit(main())
