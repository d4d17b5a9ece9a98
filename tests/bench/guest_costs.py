"""What the periodic work of a runner VM costs inside a TCG guest, against a bare Python start in the same guest.

Run as root:  .venv/bin/python tests/bench/guest_costs.py [--rounds N]   (about 6 minutes)

The lab guest image boots once under TCG (one vCPU, no network, by direct kernel boot of the image's own kernel),
and cloud-init's runcmd times each operation ROUNDS times in a row: the floor (python3 -I -c pass), a fork and exec,
systemctl show (the watchdog's and the metrics' unit read), systemd-run of /bin/true bare and with the sandbox of
fenced_runner's runner-metrics.service (read from its template), the metrics script itself (no engine socket),
and an ssh login over loopback (client and server both in the guest). It prints milliseconds per operation, each
as a ratio to the floor, and the share of a vCPU that a timer running it every 10, 30 or 60 s keeps busy.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_IMAGE = REPO / "tests" / "lab" / "build-guest-image"
UNIT_TEMPLATE = REPO / "roles" / "fenced_runner" / "templates" / "runner-metrics.service.j2"
METRICS = REPO / "roles" / "fenced_runner" / "files" / "runner_metrics.py"
TEXTFILE = REPO / "plugins" / "module_utils" / "_metrics_textfile.py"
NOT_SANDBOX = ("Type", "SyslogIdentifier", "ExecStart", "ReadWritePaths")
METRICS_RUN = (
    "python3 -I /opt/m/runner_metrics.py --runner r --unit ssh.service --binary /bin/true"
    " --engine-socket /run/none.sock --textfile-dir /var/tmp/tf"
)


def sandbox() -> str:
    """runner-metrics.service's sandboxing settings as systemd-run properties."""
    props = []
    for line in UNIT_TEMPLATE.read_text().split("[Service]", 1)[1].splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and "{{" not in line and key not in NOT_SANDBOX:
            props.append(f"-p '{key}={value}'")
    return " ".join([*props, "-p ReadWritePaths=/var/tmp"])


OPERATIONS = {
    "floor: python3 -I -c pass": "python3 -I -c pass",
    "fork and exec of /bin/true": "/bin/true",
    "systemctl show (a unit read)": "systemctl show ssh.service --property=ActiveState --value",
    "systemd-run --wait /bin/true": "systemd-run --wait -q /bin/true",
    "the same, runner-metrics' sandbox": "systemd-run --wait -q {sandbox} /bin/true",
    "runner_metrics.py (no engine)": METRICS_RUN,
    "ssh login over loopback": "ssh -q -i /root/k -o StrictHostKeyChecking=no -o BatchMode=yes root@127.0.0.1 true",
}


def user_data(rounds: int) -> str:
    lines = [
        "exec >/dev/ttyS0 2>&1",
        "mkdir -p /var/tmp/tf /root/.ssh && ssh-keygen -q -t ed25519 -N '' -f /root/k",
        "cat /root/k.pub >> /root/.ssh/authorized_keys",
        "systemctl start ssh.service",
        "t() { s=$(date +%s%N); i=0; while [ $i -lt " + str(rounds) + ' ]; do eval "$2" >/dev/null 2>&1; '
        'i=$((i+1)); done; e=$(date +%s%N); echo "COST $1 $(( (e - s) / 1000000 ))"; }',
    ]
    for index, command in enumerate(OPERATIONS.values()):
        lines.append(f"t {index} {json.dumps(command.format(sandbox=sandbox()))}")
    lines.append("poweroff")
    files = [
        {"path": f"/opt/m/{name}", "encoding": "b64", "content": base64.b64encode(path.read_bytes()).decode()}
        for name, path in (("runner_metrics.py", METRICS), ("foundation_runners_textfile.py", TEXTFILE))
    ]
    config = {"locale": False, "write_files": files, "runcmd": [["sh", "-c", "\n".join(lines)]]}
    return "#cloud-config\n" + json.dumps(config)


def kernel(image: str, tmp: Path) -> tuple[Path, Path, str]:
    """The image's kernel, initrd and root= argument, read from its extlinux configuration."""
    raw, mnt = tmp / "disk.raw", tmp / "mnt"
    subprocess.run(["qemu-img", "convert", "-O", "raw", image, str(raw)], check=True)
    mnt.mkdir()
    loop = subprocess.run(
        ["losetup", "-f", "--show", "-r", "-o", str(2048 * 512), str(raw)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["mount", "-o", "ro", loop, str(mnt)], check=True)
        try:
            cfg = (mnt / "boot" / "syslinux" / "syslinux.cfg").read_text()
            found = {k: re.search(rf"^\s*{k}\s+(\S+)", cfg, re.M).group(1) for k in ("LINUX", "INITRD")}
            root = re.search(r"root=(\S+)", cfg).group(1)
            shutil.copy(mnt / found["LINUX"].lstrip("/"), tmp / "vmlinuz")
            shutil.copy(mnt / found["INITRD"].lstrip("/"), tmp / "initrd")
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=True)
        raw.unlink()
    return tmp / "vmlinuz", tmp / "initrd", root


def boot(image: str, tmp: Path, rounds: int) -> dict[int, float]:
    vmlinuz, initrd, root = kernel(image, tmp)
    seed = tmp / "seed"
    seed.mkdir()
    (seed / "user-data").write_text(user_data(rounds))
    (seed / "meta-data").write_text("instance-id: guest-costs\nlocal-hostname: guest-costs\n")
    iso, overlay, console = tmp / "seed.iso", tmp / "overlay.qcow2", tmp / "console.log"
    subprocess.run(
        ["xorriso", "-as", "genisoimage", "-quiet", "-V", "cidata", "-J", "-r", "-o", str(iso), str(seed)],
        check=True,
        capture_output=True,
    )
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, str(overlay)], check=True)
    qemu = [
        "qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-m", "1024", "-display", "none", "-no-reboot",
        "-serial", f"file:{console}", "-kernel", str(vmlinuz), "-initrd", str(initrd),
        "-append", f"root={root} ro console=ttyS0,115200n8", "-nic", "none",
        "-drive", f"file={overlay},if=virtio", "-drive", f"file={iso},media=cdrom",
    ]  # fmt: skip
    subprocess.run(qemu, check=True, timeout=1800)
    costs = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^COST (\d+) (\d+)", console.read_text(), re.M)}
    if len(costs) != len(OPERATIONS):
        raise SystemExit(f"the guest reported {len(costs)} of {len(OPERATIONS)} operations; see {console}")
    return {index: total / rounds for index, total in costs.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="times each operation runs (default 5)")
    rounds = ap.parse_args().rounds
    image = subprocess.run([str(BUILD_IMAGE)], check=True, capture_output=True, text=True).stdout.split()[-1]
    load = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="guest-costs-") as tmp:
        per_op = boot(image, Path(tmp), rounds)
    floor = per_op[0]
    load_after = os.getloadavg()[0]
    print(f"guest costs: lab image, TCG, 1 vCPU, {rounds} rounds; load {load:.2f} before, {load_after:.2f} after;")
    print(f"{time.monotonic() - started:.0f} s in all\n")
    print("| operation | ms each | / floor | vCPU share every 10 s / 30 s / 60 s |\n|---|---|---|---|")
    for index, name in enumerate(OPERATIONS):
        ms = per_op[index]
        shares = " / ".join(f"{ms / (10 * every):.1f} %" for every in (10, 30, 60))
        print(f"| {name} | {ms:.0f} | {ms / floor:.2f} | {shares} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
