"""One vCPU or two for a lab guest under TCG, on a machine whose other core is busy (as in make test).

Run as root:  .venv/bin/python tests/bench/tcg_vcpus.py [--vcpus 1,2]

A busy loop holds one host core for the whole run (the other lane of make test). For each vCPU count, one guest
is booted with virt-install from the lab image (vm_provisioning.py's path), then prints: seconds to cloud-init
done and the qemu's CPU seconds by then; a single-threaded job in the guest (tar of /usr through gzip -1), its
wall and the qemu's CPU seconds; the qemu's share of a core over 60 s idle. The first count is the floor: each
row also gives its numbers as a ratio to the floor's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vm_provisioning as vp  # (it switches to the venv's interpreter)
from guest_cpu import process_cpu

WORK = "sudo tar -cf - /usr 2>/dev/null | gzip -1 | wc -c"
IDLE_SECONDS = 60


def qemu_cpu_seconds(name: str) -> float:
    """User plus system CPU seconds of the guest's qemu processes."""
    found = subprocess.run(["pgrep", "-f", f"guest={name},"], check=False, capture_output=True, text=True)
    return sum(process_cpu(pid)[1] for pid in found.stdout.split())


def measure(lab: vp.Lab, base_path: str, vcpus: int) -> dict[str, float]:
    vp.VCPUS = vcpus
    boot = vp.run_virt_install(lab, base_path)
    row = {"boot": boot["cloud-init"], "boot_cpu": qemu_cpu_seconds(vp.VI_NAME)}
    start = time.monotonic()
    done = vp.ssh(lab, vp.VI_IP, WORK, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"the guest job failed: {done.stderr}")
    row["job"] = time.monotonic() - start
    after_job = qemu_cpu_seconds(vp.VI_NAME)
    row["job_cpu"] = after_job - row["boot_cpu"]
    time.sleep(IDLE_SECONDS)
    row["idle_pct"] = 100 * (qemu_cpu_seconds(vp.VI_NAME) - after_job) / IDLE_SECONDS
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vcpus", default="1,2", help="vCPU counts, the first is the floor (default 1,2)")
    counts = [int(v) for v in ap.parse_args().vcpus.split(",")]
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    rows: dict[int, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="frbench.") as tmp:
            lab = vp.Lab(Path(tmp))
            lab.cleanup()
            base_path = vp.import_base(lab, lab.image)[1]
            for vcpus in counts:
                try:
                    rows[vcpus] = measure(lab, base_path, vcpus)
                finally:
                    lab.remove_guest(vp.VI_NAME)
    finally:
        hog.kill()
    floor = rows[counts[0]]
    print(f"TCG guest, {vp.MEMORY_MIB} MiB, one host core held by a busy loop; floor: {counts[0]} vCPU")
    print(f"{'vcpus':>5} {'boot s':>8} {'boot cpu s':>10} {'job s':>7} {'job cpu s':>9} {'idle %':>7}   ratio to floor")
    for vcpus, row in rows.items():
        ratios = " ".join(f"{key} {row[key] / floor[key]:.2f}" for key in ("boot", "boot_cpu", "job", "job_cpu"))
        print(
            f"{vcpus:>5} {row['boot']:8.1f} {row['boot_cpu']:10.1f} {row['job']:7.1f} {row['job_cpu']:9.1f}"
            f" {row['idle_pct']:7.1f}   {ratios}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
