"""Pruning thousands of offline runner registrations: the module against a bare HTTP client, side by side.

Run:  .venv/bin/python tests/bench/prune.py [--runners N] [--rounds R] [--parallelism P]   (or `make bench-prune`)

Per round, on the lab's Gitea (tests/lab/forge), each side in a new organisation `prunebench-*` of its own
(deleted with its runners afterwards; one left by an interrupted run is deleted at the start of the next):
1. module side: register N runners through the runner protocol (they stay offline: the forge never hears from
   them again), then time `forgejo_runner_info`, `forgejo_runner_prune` in check mode and `forgejo_runner_prune`
   applied, each as one `ansible localhost -m ...` command (Ansible's start-up included);
2. floor side: register N runners, then time a bare stdlib client (keep-alive connections) that lists the
   organisation's runners and deletes them with P concurrent DELETEs, nothing else.
Even rounds time the floor first, so that a change in the machine's load during a run weighs on both sides.
The ratio is prune applied / floor. Nothing outside the run's own organisations is touched.
"""

from __future__ import annotations

import argparse
import contextlib
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
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration" / "forgejo")]

from fleet import Fleet  # noqa: E402 (after the path set-up)
from lablib.ansible import Ansible  # noqa: E402
from lablib.shell import LAB, lab_env  # noqa: E402

ORG = "prunebench"
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


class Bench:
    """Each side of each round works in a new organisation of its own, deleted (with its runners) afterwards."""

    def __init__(self, env: dict[str, str], opts: argparse.Namespace):
        self.url, self.token, self.opts = env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_ORG"], opts
        self.ansible = Ansible()
        if opts.collections:
            self.ansible.env["ANSIBLE_COLLECTIONS_PATH"] = opts.collections

    @contextlib.contextmanager
    def fresh_fleet(self):
        fleet = Fleet(self.url, self.token, f"{ORG}-{secrets.token_hex(3)}")
        fleet.create_org()
        try:
            yield fleet
        finally:
            fleet.delete_org()

    def remove_left_overs(self) -> None:
        for stale in Fleet(self.url, self.token, ORG).other_orgs(f"{ORG}-"):
            log(f"deleting organisation {stale}, left by an interrupted run")
            Fleet(self.url, self.token, stale).delete_org()

    def module_side(self) -> dict:
        count, parallelism = self.opts.runners, self.opts.parallelism
        with self.fresh_fleet() as fleet:
            times = {"register": timed(fleet.register, [f"bench-{i:05d}" for i in range(count)])[0]}
            log(f"{fleet.org}: registered {count} offline runners in {times['register']:.1f} s")
            select = {"api_url": self.url, "api_token": self.token, "scope": "org", "org": fleet.org}
            times["info"], info = timed(module_run, self.ansible, "forgejo_runner_info", select)
            assert len(info["runners"]) == count, f"info listed {len(info['runners'])} of {count}"
            prune = {**select, "max_deletions": count, **({"parallelism": parallelism} if parallelism else {})}
            times["check"], checked = timed(module_run, self.ansible, "forgejo_runner_prune", prune, check=True)
            assert len(checked["pruned"]) == count, f"check mode would prune {len(checked['pruned'])} of {count}"
            times["apply"], applied = timed(module_run, self.ansible, "forgejo_runner_prune", prune)
            assert len(applied["pruned"]) == count, f"prune deleted {len(applied['pruned'])} of {count}"
            assert not fleet.list(), "runners are still registered after the prune"
        return times

    def floor_side(self) -> float:
        with self.fresh_fleet() as fleet:
            fleet.register([f"bench-{i:05d}" for i in range(self.opts.runners)])
            start = time.monotonic()
            ids = [r["id"] for r in fleet.list() if r["status"] == "offline"]
            fleet.delete(ids, workers=self.opts.parallelism or DEFAULT_PARALLELISM)
            seconds = time.monotonic() - start
            assert len(ids) == self.opts.runners and not fleet.list()
        return seconds

    def round(self, floor_first: bool) -> dict:
        """Both sides, in the order given (alternate rounds swap it, so drift in load evens out)."""
        floor = self.floor_side() if floor_first else None
        times = self.module_side()
        times["floor"] = floor if floor is not None else self.floor_side()
        times["ratio"] = times["apply"] / times["floor"]
        log(", ".join(f"{k} {v:.2f}" for k, v in times.items()))
        return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", type=int, default=5000, help="offline registrations per round (5000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; medians are printed when more than one")
    parser.add_argument("--parallelism", type=int, help="the module's parallelism (default: the module's own)")
    parser.add_argument("--collections", help="ANSIBLE_COLLECTIONS_PATH to run another copy of the collection")
    opts = parser.parse_args()

    env = lab_env([str(LAB / "forge"), "env", "gitea"])
    if not env.get("FORGE_GITEA_URL"):  # `forge up` also builds the lab runner, which this benchmark does not use
        subprocess.run([str(LAB / "forge"), "up"], check=True, stdout=subprocess.DEVNULL)
        env = lab_env([str(LAB / "forge"), "env", "gitea"])
    bench = Bench(env, opts)
    bench.remove_left_overs()
    load = os.getloadavg()[0]
    rounds = [bench.round(floor_first=index % 2 == 1) for index in range(opts.rounds)]

    columns = ["register", "info", "check", "apply", "floor", "ratio"]
    print(f"prune benchmark: {opts.runners} offline runners, Gitea {env['FORGE_GITEA_VERSION']} (SQLite), "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")  # fmt: skip
    print("round " + "".join(f"{c:>10}" for c in columns) + "   (seconds; ratio = apply / floor of the round)")
    for index, times in enumerate(rounds, 1):
        print(f"{index:<6}" + "".join(f"{times[c]:>10.2f}" for c in columns))
    if len(rounds) > 1:
        print("median" + "".join(f"{statistics.median(r[c] for r in rounds):>10.2f}" for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
