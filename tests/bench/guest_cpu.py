"""The CPU time that QEMU guests use while something else runs: samples every QEMU process on the machine
(lab containers included) every few seconds until stopped (SIGINT or SIGTERM), then prints each guest's
core-seconds and the total. A guest that ends between two samples loses at most one interval.

Run as root:  .venv/bin/python tests/bench/guest_cpu.py [--every SECONDS] > guests.txt &  ...  kill -INT $!
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int | str) -> tuple[str, float, int]:
    """(command name, user plus system CPU seconds, start time in clock ticks) of process PID, from its stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return stat[stat.index("(") + 1 : stat.rindex(")")], (int(fields[11]) + int(fields[12])) / TICK, int(fields[19])


def qemu_processes() -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, start time) -> (guest name, CPU seconds so far) of every QEMU process now running."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command, cpu, started = process_cpu(proc.name)
            if not command.startswith("qemu-system"):
                continue
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        name = re.search(r"guest=([^,\s]+)", cmdline)
        found[(int(proc.name), started)] = (name.group(1) if name else "qemu", cpu)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--every", type=float, default=5.0)
    args = parser.parse_args()
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))
    seen: dict[tuple[int, int], tuple[str, float, float]] = {}
    started = time.monotonic()
    while not stop:
        now = time.monotonic() - started
        for key, (name, cpu) in qemu_processes().items():
            first = seen.get(key, (name, 0.0, now))[2]
            seen[key] = (name, cpu, first)
        time.sleep(args.every)
    total = 0.0
    for name, cpu, first in sorted(seen.values(), key=lambda v: v[2]):
        total += cpu
        print(f"{name:24} from {first:7.0f} s  {cpu:8.0f} core-s")
    print(f"guests: {len(seen)}, {total:.0f} core-seconds in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
