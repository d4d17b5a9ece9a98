"""Failover latency and fail-back drain time of the standby watchdog, on the failover lab.

Run:  .venv/bin/python tests/bench/failover.py [--rounds R]   (or `make bench-failover`)

The lab of `make test-failover` (private forge, primary runner process, brix02 container with the watchdog in
standby mode). Per round:
1. failover: SIGKILL the primary, queue a 5 s fenced job; latency = the job's start on the standby minus the loss;
2. fail-back: queue a 30 s job, and once the standby runs it bring the primary back; drain time = the standby
   unit's stop minus the primary's return (the job's remaining time, then the watchdog's online polls).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (REPO / ".venv").resolve() and VENV_PY.exists():
    os.execv(str(VENV_PY), [str(VENV_PY), __file__, *sys.argv[1:]])
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration" / "failover")]

from failover_lab import PRIMARY, STANDBY, bring_up, started_at, tear_down  # noqa: E402 (after the path set-up)


def wait(what, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: gave up after {timeout} s waiting for {what.__doc__}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    forge, primary, container, play = bring_up()
    latencies, drains = [], []
    try:
        rc, _recap, out = play("standby")
        if rc:
            raise SystemExit(f"bench: failover.yml failed:\n{out}")
        for round_no in range(1, args.rounds + 1):
            wait(lambda: forge.online() == {PRIMARY} and not container.active(), 180)
            lost = primary.kill()
            job = forge.wait_jobs(forge.push_workflow(5), lambda j: j.get("runner_name") == STANDBY, 240)[0]
            latencies.append(started_at(job) - lost)
            workflow = forge.push_workflow(30)
            forge.wait_jobs(workflow, lambda j: j["status"] == "in_progress", 60)
            primary.start()
            back = time.time()
            wait(lambda: not container.active(), 240)
            drains.append(time.time() - back)
            print(f"round {round_no}: failover {latencies[-1]:.0f} s, fail-back drain {drains[-1]:.0f} s", flush=True)
    finally:
        tear_down(primary, container)
    print(
        f"failover latency (loss to job start) over {len(latencies)} runs: min {min(latencies):.0f} s, "
        f"median {statistics.median(latencies):.0f} s, max {max(latencies):.0f} s (target 90 s)\n"
        f"fail-back drain (primary back to standby stopped, 30 s job running): min {min(drains):.0f} s, "
        f"median {statistics.median(drains):.0f} s, max {max(drains):.0f} s"
    )


if __name__ == "__main__":
    main()
