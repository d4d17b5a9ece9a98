# Keeps bridged traffic out of the FORWARD chain's DROP: inserts, at position 1,
#   -m physdev --physdev-is-bridged -j ACCEPT   (or one rule per bridge: -i BRIDGE ...)
# in the iptables backend(s) whose FORWARD chain filters, unless it is there already.
# Installed by the foundation.runners.bridge_forward_timer role and run by its timer.
# Prints one line only when it changed something (systemd puts it in the journal).
"""Keep a FORWARD ACCEPT rule for bridged traffic in place."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

BACKENDS = ("nft", "legacy")
FAMILIES = {"ipv4": "iptables", "ipv6": "ip6tables"}
# The kernel lists the legacy (x_tables) tables a namespace has here; no file, or no
# 'filter' in it, means the legacy backend is not in use and is left untouched.
LEGACY_TABLES = {"ipv4": "/proc/net/ip_tables_names", "ipv6": "/proc/net/ip6_tables_names"}
KUBE_CHAIN = re.compile(r"^:KUBE-", re.MULTILINE)
FORWARD_DROP = re.compile(r"^:FORWARD DROP\b", re.MULTILINE)
MAX_DELETIONS = 100
# The collection's textfile writer (plugins/module_utils/_metrics_textfile.py), installed beside this script.
TEXTFILE_HELPER = "foundation_runners_textfile"
METRICS = "foundation-runners-bridge.prom"


class CommandError(Exception):
    """An iptables command failed."""


def rules(bridges: list[str]) -> list[list[str]]:
    """The rule specifications, one per bridge, or one for every bridge."""
    accept = ["-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"]
    # Frames bridged by BRIDGE pass FORWARD with -i BRIDGE; --physdev-in names a port.
    return [["-i", bridge, *accept] for bridge in bridges] or [accept]


def choose_backends(rulesets: dict[str, str | None], default: str | None) -> list[str]:
    """The backends to hold the rule, from each backend's filter table dump.

    A ruleset is None when that backend is not in use. Backends holding Kubernetes
    (kube-router, kube-proxy) chains win; then those whose FORWARD policy is DROP;
    then the system's default backend.
    """
    used = {name: text for name, text in rulesets.items() if text is not None}
    for pattern in (KUBE_CHAIN, FORWARD_DROP):
        found = [name for name in BACKENDS if name in used and pattern.search(used[name])]
        if found:
            return found
    if default in rulesets:
        return [default]
    return [name for name in BACKENDS if name in rulesets][:1]


def default_backend(version_output: str) -> str | None:
    """The backend named by `iptables --version`: "(nf_tables)" or "(legacy)"."""
    if "nf_tables" in version_output:
        return "nft"
    if "legacy" in version_output:
        return "legacy"
    return None


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def checked(argv: list[str]) -> str:
    result = run(argv)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip() or "no output"
        raise CommandError(f"{' '.join(argv)} failed: [{result.returncode}] {reason}")
    return result.stdout


def legacy_in_use(family: str) -> bool:
    try:
        with open(LEGACY_TABLES[family], encoding="ascii") as stream:
            return "filter" in stream.read().split()
    except OSError:
        return False


def read_rulesets(family: str) -> dict[str, str | None]:
    """Each installed backend's filter table dump (None: backend not in use)."""
    tool = FAMILIES[family]
    rulesets: dict[str, str | None] = {}
    for name in BACKENDS:
        if not shutil.which(f"{tool}-{name}"):
            continue
        if name == "legacy" and not legacy_in_use(family):
            rulesets[name] = None
            continue
        # No filter table yet (nft) is an empty ruleset, not an error.
        result = run([f"{tool}-{name}-save", "-t", "filter"])
        rulesets[name] = result.stdout if result.returncode == 0 else ""
    return rulesets


def backends_for(family: str, override: str, every: bool = False) -> list[str]:
    """The backends to act on; every=True: all backends in use (for removal)."""
    tool = FAMILIES[family]
    if override != "auto":
        if not shutil.which(f"{tool}-{override}"):
            raise CommandError(f"{tool}-{override} not found (backend {override} asked for)")
        return [override]
    if every:
        return [name for name, text in read_rulesets(family).items() if text is not None]
    default = default_backend(run([tool, "--version"]).stdout) if shutil.which(tool) else None
    return choose_backends(read_rulesets(family), default)


def present(command: str, rule: list[str]) -> bool:
    return run([command, "-w", "-C", "FORWARD", *rule]).returncode == 0


def ensure(command: str, rule: list[str], dry_run: bool) -> bool:
    if present(command, rule):
        return False
    if not dry_run:
        checked([command, "-w", "-I", "FORWARD", "1", *rule])
    return True


def remove(command: str, rule: list[str], dry_run: bool) -> bool:
    """Delete every copy of the rule (at most MAX_DELETIONS); True if there was one."""
    deletions = 0
    while deletions < MAX_DELETIONS and present(command, rule):
        if dry_run:
            return True
        checked([command, "-w", "-D", "FORWARD", *rule])
        deletions += 1
    return deletions > 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bridge", action="append", default=[], help="limit the rule to this bridge (repeatable)")
    parser.add_argument("--ipv6", action="store_true", help="also keep the rule in ip6tables")
    parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto")
    parser.add_argument("--remove", action="store_true", help="delete the rule instead")
    parser.add_argument("--dry-run", action="store_true", help="change nothing, say what would change")
    parser.add_argument("--textfile-dir", help="write the rule's metrics for node_exporter's textfile collector here")
    return parser.parse_args(argv)


def previous_repairs(path: str) -> tuple[float, float]:
    """The repair count and the last repair's time from this script's previous metrics file (0, 0 if none)."""
    found = {
        "foundation_runners_bridge_rule_repairs_total": 0.0,
        "foundation_runners_bridge_rule_last_repair_timestamp_seconds": 0.0,
    }
    try:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                name, space, value = line.strip().partition(" ")
                if space and name in found:
                    found[name] = float(value)
    except (OSError, ValueError):
        pass
    return found["foundation_runners_bridge_rule_repairs_total"], found[
        "foundation_runners_bridge_rule_last_repair_timestamp_seconds"
    ]


def write_metrics(directory: str, present: bool, repaired: bool, now: float) -> None:
    """The rule's state for Prometheus: present after this run, repairs so far, the last repair's time."""
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    textfile = __import__(TEXTFILE_HELPER)
    repairs, last = previous_repairs(os.path.join(directory, METRICS))
    if repaired:
        repairs, last = repairs + 1, now
    metric = textfile.Metric
    textfile.write(
        directory,
        "bridge",
        [
            metric(
                "foundation_runners_bridge_rule_present", "1 when the bridge rule was in place after the last run."
            ).add(1 if present else 0),
            metric(
                "foundation_runners_bridge_rule_repairs_total",
                "Runs that found the rule missing and put it back.",
                "counter",
            ).add(repairs),
            metric(
                "foundation_runners_bridge_rule_last_repair_timestamp_seconds", "When the rule was last put back."
            ).add(last),
        ],
        now,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    act = remove if args.remove else ensure
    families = ["ipv4", "ipv6"] if args.ipv6 else ["ipv4"]
    changed: list[str] = []
    try:
        for family in families:
            for backend in backends_for(family, args.backend, every=args.remove):
                command = f"{FAMILIES[family]}-{backend}"
                for rule in rules(args.bridge):
                    if act(command, rule, args.dry_run):
                        changed.append(f"{command} FORWARD {' '.join(rule)}")
    except (CommandError, OSError) as exc:
        print(f"bridge-forward: {exc}", file=sys.stderr)
        report(args, present=False, repaired=False)
        return 1
    report(args, present=not args.remove, repaired=bool(changed) and not args.remove)
    if changed:
        verbs = {(False, False): "inserted at 1", (True, False): "deleted"}
        verb = verbs.get((args.remove, args.dry_run), "would delete" if args.remove else "would insert at 1")
        print(f"bridge-forward: {verb}: {'; '.join(changed)}", flush=True)
    return 0


def report(args: argparse.Namespace, present: bool, repaired: bool) -> None:
    if not args.textfile_dir or args.dry_run:
        return
    try:
        write_metrics(args.textfile_dir, present, repaired, time.time())
    except OSError as exc:
        print(f"bridge-forward: metrics not written to {args.textfile_dir}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
