# The runner VM's facts for node_exporter's textfile collector: the runner unit's state, the runner's version and
# the jobs running in the VM's Docker engine. Installed by the foundation.runners.fenced_runner role and run by its
# timer. Silent unless something cannot be read.
"""Write the runner's metrics for node_exporter's textfile collector."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

# The collection's textfile writer (plugins/module_utils/_metrics_textfile.py), installed beside this script.
TEXTFILE_HELPER = "foundation_runners_textfile"
# systemd's ActiveState values; one series each, 1 for the current one (as kube-state-metrics does phases).
UNIT_STATES = ("active", "reloading", "inactive", "failed", "activating", "deactivating")
# forgejo-runner names a job's containers FORGEJO-ACTIONS-TASK-<task id>_..., its services too.
TASK = re.compile(r"ACTIONS-TASK-(\d+)")
VERSION = re.compile(r"\bversion\s+(\S+)")
TIMEOUT = 10


def run(argv: list[str]) -> str | None:
    """stdout of argv, or None when it cannot run or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"runner-metrics: {argv[0]}: {exc}", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"runner-metrics: {' '.join(argv)}: rc {done.returncode}: {done.stderr.strip()[:200]}", file=sys.stderr)
        return None
    return done.stdout


def unit_state(unit: str) -> str:
    out = run(["systemctl", "show", unit, "--property=ActiveState", "--value"])
    return (out or "").strip() or "unknown"


def version(binary: str) -> str:
    match = VERSION.search(run([binary, "--version"]) or "")
    return match.group(1) if match else "unknown"


class EngineConnection(http.client.HTTPConnection):
    """HTTP to the Docker engine's API on its Unix socket (the CLI, a large Go program, costs more than the query)."""

    def __init__(self, path: str):
        super().__init__("localhost", timeout=TIMEOUT)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.path)


def jobs_running(engine_socket: str) -> int | None:
    """Distinct tasks among the running containers; None when the engine does not answer."""
    conn = EngineConnection(engine_socket)
    try:
        conn.request("GET", "/containers/json")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise OSError(f"status {response.status}: {body[:200]!r}")
        names = " ".join(name for container in json.loads(body) for name in container.get("Names") or [])
    except (OSError, ValueError, http.client.HTTPException) as exc:
        print(f"runner-metrics: GET /containers/json on {engine_socket}: {exc}", file=sys.stderr)
        return None
    finally:
        conn.close()
    return len({match.group(1) for match in TASK.finditer(names)})


def metrics(textfile, args: argparse.Namespace, *, state: str, found_version: str, jobs: int | None) -> list:
    """The runner's series: its unit's state, its version, whether it is a standby, the engine and its jobs."""
    metric, runner, unit = textfile.Metric, args.runner, args.unit
    states = metric(
        "foundation_runners_runner_unit_state", "The runner unit's systemd ActiveState: 1 for the current one."
    )
    for each in UNIT_STATES if state in UNIT_STATES else (*UNIT_STATES, state):
        states.add(1 if each == state else 0, runner=runner, unit=unit, state=each)
    found = [
        states,
        metric("foundation_runners_runner_info", "The runner's version, from its binary.").add(
            1, runner=runner, version=found_version
        ),
        metric(
            "foundation_runners_runner_standby", "1 when the runner is a standby, stopped while its primary is online."
        ).add(1 if args.standby else 0, runner=runner),
        metric("foundation_runners_runner_engine_up", "1 when the VM's Docker engine answered.").add(
            0 if jobs is None else 1, runner=runner
        ),
    ]
    if jobs is not None:
        found.append(
            metric("foundation_runners_runner_jobs_running", "Jobs running in the VM's Docker engine.").add(
                jobs, runner=runner
            )
        )
    return found


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runner", required=True, help="the runner's name (the metrics' runner label)")
    parser.add_argument("--unit", required=True, help="the runner's systemd unit")
    parser.add_argument("--binary", required=True, help="the runner binary, asked for its --version")
    parser.add_argument("--engine-socket", default="/run/docker.sock", help="the Docker engine's API socket")
    parser.add_argument("--standby", action="store_true", help="the runner is a standby (stopped by design)")
    parser.add_argument("--textfile-dir", required=True, help="node_exporter's textfile directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    textfile = __import__(TEXTFILE_HELPER)
    found = metrics(
        textfile,
        args,
        state=unit_state(args.unit),
        found_version=version(args.binary),
        jobs=jobs_running(args.engine_socket),
    )
    try:
        textfile.write(args.textfile_dir, "runner", found, time.time())
    except OSError as exc:
        print(f"runner-metrics: metrics not written to {args.textfile_dir}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
