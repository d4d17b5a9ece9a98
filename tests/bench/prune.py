"""Pruning thousands of offline runner registrations: the module against a bare HTTP client, side by side.

Run:  .venv/bin/python tests/bench/prune.py [--runners N] [--rounds R] [--parallelism P]   (or `make bench-prune`)

Per round, on the lab's Gitea (tests/lab/forge), in organisation `prunebench`:
1. register N runners through the runner protocol (they stay offline: the forge never hears from them again);
2. time `forgejo_runner_info`, `forgejo_runner_prune` in check mode, and `forgejo_runner_prune` applied, each
   as one `ansible localhost -m ...` command (Ansible's start-up included), selecting this round's names;
3. register N runners again and time the floor: a bare stdlib client (keep-alive connections) that lists the
   organisation's runners and deletes the same N with P concurrent DELETEs, nothing else.
Even rounds time the floor first, so that a change in the machine's load during a run weighs on both sides.
The ratio is prune applied / floor. Only runners named prunebench-* in organisation prunebench are touched.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (REPO / ".venv").resolve() and VENV_PY.exists():
    os.execv(str(VENV_PY), [str(VENV_PY), __file__, *sys.argv[1:]])
sys.path[:0] = [str(REPO / "tests" / "integration"), str(REPO / "tests" / "integration" / "forgejo")]

from fleet import Fleet  # noqa: E402 (after the path set-up)
from lab_support import LAB, Ansible, lab_env  # noqa: E402

ORG = "prunebench"
PREFIX = "prunebench-"
DEFAULT_PARALLELISM = 4  # the module's default; the floor uses the same number of concurrent DELETEs


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def timed(func, *args, **kwargs):
    start = time.monotonic()
    value = func(*args, **kwargs)
    return time.monotonic() - start, value


def module_run(ansible: Ansible, module: str, args: dict, check: bool = False) -> dict:
    result = ansible(module, args, check=check)
    if result.get("failed"):
        raise SystemExit(f"bench: {module} failed: {result.get('msg')}")
    return result


def module_part(fleet: Fleet, ansible: Ansible, base: dict, run: str, opts: argparse.Namespace) -> dict:
    count, parallelism = opts.runners, opts.parallelism
    seconds, _ = timed(fleet.register, [f"{run}-{i:05d}" for i in range(count)])
    log(f"{run}: registered {count} offline runners in {seconds:.1f} s")
    times = {"register": seconds}
    select = {**base, "names": [f"{run}-*"]}
    times["info"], info = timed(module_run, ansible, "forgejo_runner_info", select)
    assert len(info["runners"]) == count, f"info listed {len(info['runners'])} of {count}"
    prune = {**select, "max_deletions": count, **({"parallelism": parallelism} if parallelism else {})}
    times["check"], checked = timed(module_run, ansible, "forgejo_runner_prune", prune, check=True)
    assert len(checked["pruned"]) == count, f"check mode would prune {len(checked['pruned'])} of {count}"
    times["apply"], applied = timed(module_run, ansible, "forgejo_runner_prune", prune)
    assert len(applied["pruned"]) == count, f"prune deleted {len(applied['pruned'])} of {count}"
    left = [r for r in fleet.list() if r["name"].startswith(run)]
    assert not left, f"{len(left)} runners of {run} are still registered after the prune"
    return times


def floor_part(fleet: Fleet, run: str, count: int, parallelism: int | None) -> float:
    fleet.register([f"{run}-{i:05d}" for i in range(count)])
    start = time.monotonic()
    ids = [r["id"] for r in fleet.list() if r["name"].startswith(run) and r["status"] == "offline"]
    fleet.delete(ids, workers=parallelism or DEFAULT_PARALLELISM)
    seconds = time.monotonic() - start
    assert len(ids) == count and not [r for r in fleet.list() if r["name"].startswith(run)]
    return seconds


def one_round(fleet: Fleet, ansible: Ansible, base: dict, opts: argparse.Namespace, floor_first: bool) -> dict:
    """The module's part and the floor, in the order given (alternate rounds swap it, so drift in load evens out)."""
    run = f"{PREFIX}{secrets.token_hex(3)}"
    floor = floor_part(fleet, f"{run}-floor", opts.runners, opts.parallelism) if floor_first else None
    times = module_part(fleet, ansible, base, run, opts)
    times["floor"] = floor if floor is not None else floor_part(fleet, f"{run}-floor", opts.runners, opts.parallelism)
    times["ratio"] = times["apply"] / times["floor"]
    log(f"{run}: " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", type=int, default=5000, help="offline registrations per round (5000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; medians are printed when more than one")
    parser.add_argument("--parallelism", type=int, help="the module's parallelism (default: the module's own)")
    parser.add_argument("--collections", help="ANSIBLE_COLLECTIONS_PATH to run another copy of the collection")
    opts = parser.parse_args()

    subprocess.run([str(LAB / "forge"), "up"], check=True, stdout=subprocess.DEVNULL)
    env = lab_env([str(LAB / "forge"), "env", "gitea"])
    fleet = Fleet(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_ORG"], ORG)
    fleet.ensure_org()
    stale = [r["id"] for r in fleet.list() if r["name"].startswith(PREFIX)]
    if stale:
        log(f"removing {len(stale)} runners left by an earlier, interrupted run")
        fleet.delete(stale)
    ansible = Ansible()
    if opts.collections:
        ansible.env["ANSIBLE_COLLECTIONS_PATH"] = opts.collections
    base = {"api_url": env["FORGE_GITEA_URL"], "api_token": env["FORGE_GITEA_TOKEN_ORG"], "scope": "org", "org": ORG}
    load = os.getloadavg()[0]
    rounds = [one_round(fleet, ansible, base, opts, floor_first=index % 2 == 1) for index in range(opts.rounds)]

    columns = ["register", "info", "check", "apply", "floor", "ratio"]
    print(f"prune benchmark: {opts.runners} offline runners, Gitea {env['FORGE_GITEA_VERSION']} (SQLite), "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")  # fmt: skip
    print("round " + "".join(f"{c:>10}" for c in columns) + "   (seconds; ratio = apply / floor)")
    for index, times in enumerate(rounds, 1):
        print(f"{index:<6}" + "".join(f"{times[c]:>10.2f}" for c in columns))
    if len(rounds) > 1:
        print("median" + "".join(f"{statistics.median(r[c] for r in rounds):>10.2f}" for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
