"""site.yml on the lab, timed against what it cannot beat on the same machine.

Run:  .venv/bin/python tests/bench/site.py [--rounds N] [--pairs N] [--skip-cold]   (or `make bench-site`)

1. Cold site.yml to runner online: crunchy01's container is recreated (no libvirt, no VM, no
   registration), then site.yml runs until the role reports the runner online. Next to it, the bare
   guest boot: the same VM size and image booted by libvirt_cloudinit_vm alone, to cloud-init's final
   stage (`cloud-init status --wait` over ssh). Printed as a ratio (goal: at most 1.15).
2. The no-op re-run of site.yml, next to a facts-only play over the same hosts (the forge host, crunchy01
   and the runner VM), alternated --pairs times. Printed as the median ratio (goal: at most 2). The no-op run
   again with Ansible pipelining into the VM off (fenced_runner_ssh_pipelining=false), and the cost of one
   trivial task on each kind of connection (the forge host: local; crunchy01: nsenter; the VM: ssh with
   become, pipelining on and off), from plays of 1 and of 21 tasks.
3. With --base prepared (fenced_runner_base_image): the cold run builds the prepared base first, and a runner VM
   is then replaced on it: a VM of another name and address retiring the inventory's, to its runner online, as a
   ratio to the bare boot (goal: at most 1.3); then the inventory's VM comes back on the same base.
4. Push-to-job-start of a `runs-on: fenced` job (N rounds): from the commit to the job's first log line.

Prints every number and the load average before and after. Leaves the lab converged.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (REPO / ".venv").resolve() and VENV_PY.exists():
    os.execv(str(VENV_PY), [str(VENV_PY), __file__, *sys.argv[1:]])
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration" / "e2e")]

from lablib.ansible import PlaybookRun  # noqa: E402 (after the path set-up)
from lablib.forge import LabForge  # noqa: E402
from site_lab import Site, kvm_virsh, lab_from_nothing, site_env, vm  # noqa: E402

HERE = Path(__file__).resolve().parent
JOB = """on: push
jobs:
  bench:
    runs-on: fenced
    steps:
      - run: echo "round {round}"
"""


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cold_site(options: list[str]) -> tuple[float, Site, dict[str, str]]:
    env, _forge = lab_from_nothing()
    site = Site(env)
    site.store_forge_tokens()
    run = site.playbook("site.yml", *options, label="bench-site-cold")
    if run.rc != 0:
        sys.exit(f"cold site.yml failed:\n{run.tail()}")
    return run.seconds, site, env


def bare_boot(site: Site) -> float:
    run = site.playbook(str(HERE / "bare_boot.yml"), label="bench-bare-boot")
    if run.rc != 0:
        sys.exit(f"bare boot failed:\n{run.tail()}")
    started = json.loads(run.output.split("BARE_BOOT_SECONDS=", 1)[1].split("\n", 1)[0].strip().strip('"'))
    return float(started)


ONLINE_TASK = "Report how long the runner took to come online"
# profile_tasks' line under each task banner: "... (0:00:01.234)       0:01:02.345", the run's time so far.
ELAPSED = re.compile(r"\(\d+:\d+:\d+\.\d+\)\s+(\d+):(\d+):(\d+\.\d+)$")


def elapsed_before(output: str, task: str) -> float:
    """Seconds from the play's start to the start of the named task, from profile_tasks' timestamps."""
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("TASK [") and task in line:
            for following in lines[number + 1 : number + 3]:
                if match := ELAPSED.search(following):
                    hours, minutes, secs = match.groups()
                    return int(hours) * 3600 + int(minutes) * 60 + float(secs)
    return float("nan")


REPLACEMENT = {"name": "runner-bench", "vcpus": 2, "memory": "1536MiB", "disk_size": "8GiB"}


def replace_vm(site: Site, options: list[str], bare: float) -> None:
    """The inventory's VM replaced by another on the prepared base, then brought back (the lab as it was)."""
    original = {**REPLACEMENT, "name": "runner-02", "ip_address": "198.51.100.32/24"}
    swap = {**REPLACEMENT, "ip_address": "198.51.100.34/24", "retire": [original["name"]]}
    seconds, online = [], []
    for vm_entry, label in ((swap, "bench-replace"), ({**original, "retire": [swap["name"]]}, "bench-replace-back")):
        extra = json.dumps({"fenced_vms": [vm_entry]})
        run = site.playbook("site.yml", *options, "-e", extra, label=label)
        if run.rc:
            sys.exit(f"{label} failed:\n{run.tail()}")
        seconds.append(run.seconds)
        online.append(elapsed_before(run.output, ONLINE_TASK))
    print(
        f"replace a runner VM on the prepared base: new runner online after {online[0]:.1f} s (and back:"
        f" {online[1]:.1f} s); whole run with the old VM retired {seconds[0]:.1f} s (back: {seconds[1]:.1f} s)"
    )
    print(f"  ratio {online[0] / bare:.2f} to the bare boot (goal <= 1.3)")


def task_cost(site: Site, hosts: str, *options: str) -> float:
    """Seconds one trivial task costs on the hosts' connection: (21 tasks - 1 task) / 20."""
    seconds = []
    for tasks in (1, 21):
        run = site.playbook(
            str(HERE / "task_cost.yml"), "-e", f"bench_hosts={hosts} bench_tasks={tasks}", *options,
            label=f"bench-task-cost-{hosts}-{tasks}",
        )  # fmt: skip
        if run.rc:
            sys.exit(f"task cost play on {hosts} failed:\n{run.tail()}")
        seconds.append(run.seconds)
    return (seconds[1] - seconds[0]) / 20


PROFILE_LINE = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s$", re.M)


def where_the_time_goes(run: PlaybookRun) -> None:
    """Task executions per connection (a skipped task costs no round trip) and the slowest tasks, from the
    no-op run's output with ansible.posix.profile_tasks."""
    places = collections.Counter(where for _task, where in run.executions())
    print("  task executions: " + ", ".join(f"{where} {count}" for where, count in places.most_common()))
    for name, seconds in PROFILE_LINE.findall(run.output)[:8]:
        print(f"  {float(seconds):6.2f} s  {name.strip()[:100]}")


def noop_rows(site: Site, options: list[str], pairs: int) -> None:
    """The no-op run and the facts-only play, alternated pairs times: the TCG guest's speed swings by a third from
    minute to minute, so each pair is timed back to back and the median ratio is the row."""
    ratios, noops, facts_runs = [], [], []
    for i in range(pairs):
        noop = site.playbook("site.yml", *options, label=f"bench-site-noop-{i}")
        facts = site.playbook(str(HERE / "facts_only.yml"), label=f"bench-facts-only-{i}")
        if noop.rc or facts.rc:
            sys.exit(f"no-op or facts-only run failed:\n{noop.tail()}\n{facts.tail()}")
        noops.append(noop)
        facts_runs.append(facts.seconds)
        ratios.append(noop.seconds / facts.seconds)
        print(f"  pair {i}: no-op {noop.seconds:.1f} s (changed {noop.changed()}), facts-only {facts.seconds:.1f} s,"
              f" ratio {ratios[-1]:.2f}")  # fmt: skip
    noop_median = statistics.median(n.seconds for n in noops)
    print(f"no-op site.yml: {noop_median:.1f} s; facts-only play: {statistics.median(facts_runs):.1f} s (medians)")
    print(f"  ratio {statistics.median(ratios):.2f} (median of {pairs} pairs; goal <= 2)")
    where_the_time_goes(noops[0])
    plain = site.playbook(
        "site.yml", *options, "-e", "fenced_runner_ssh_pipelining=false", label="bench-site-noop-plain"
    )
    if plain.rc:
        sys.exit(f"no-op run without pipelining failed:\n{plain.tail()}")
    print(f"no-op site.yml without pipelining into the VM: {plain.seconds:.1f} s (changed {plain.changed()})")
    print(f"  ratio {plain.seconds / noop_median:.2f} to the median no-op with pipelining")
    costs = {
        "forge host (local)": task_cost(site, "forges"),
        "crunchy01 (nsenter)": task_cost(site, "kvm_hosts"),
        "runner VM (ssh, become, pipelining)": task_cost(site, "fenced_runner_guests", "-e", "bench_become=true"),
        "runner VM (ssh, become, no pipelining)": task_cost(
            site, "fenced_runner_guests", "-e", "bench_become=true bench_pipelining=false"
        ),
    }
    for name, cost in costs.items():
        print(f"one trivial task on the {name}: {cost:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="fenced jobs for push-to-start (default 3)")
    parser.add_argument("--skip-cold", action="store_true", help="start from the converged lab (no cold rows)")
    parser.add_argument("--pairs", type=int, default=3, help="no-op and facts-only runs, alternated (default 3)")
    parser.add_argument("--base", choices=["cloud", "prepared"], default="prepared", help="fenced_runner_base_image")
    args = parser.parse_args()
    options = ["-e", f"fenced_runner_base_image={args.base}"]
    print(f"load before: {load()}")
    if args.skip_cold:
        env = site_env()
        site = Site(env)
    else:
        cold, site, env = cold_site(options)
        bare = bare_boot(site)
        print(f"cold site.yml to runner online ({args.base} base): {cold:.1f} s; bare guest boot to cloud-init final:"
              f" {bare:.1f} s")  # fmt: skip
        print(f"  ratio {cold / bare:.2f} (goal <= 3 with the base build)")
        if args.base == "prepared":
            replace_vm(site, options, bare)
    noop_rows(site, options, args.pairs)

    lab_forge = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    repo = lab_forge.create_repo("bench-fenced")
    latencies = []
    try:
        for i in range(args.rounds):
            push = repo.push({".gitea/workflows/bench.yml": JOB.format(round=i)}, message=f"round {i}")
            run = repo.wait_run(push, timeout=300)
            if run.conclusion != "success":
                sys.exit(f"round {i}: {run.conclusion}\n{run.log}")
            latencies.append(run.push_to_start)
            print(f"  round {i}: push to job start {run.push_to_start:.2f} s")
    finally:
        repo.delete()
    print(f"fenced job push-to-start: median {statistics.median(latencies):.2f} s over {len(latencies)} rounds")
    kernel = vm("uname -r", env["LAB_VM_SSH_KEY"]).stdout.strip()
    print(f"jobs ran on VM kernel {kernel}; domains running: {kvm_virsh('list', '--name').split()}")
    print(f"load after: {load()}")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"bench-site took {time.monotonic() - started:.0f} s")
