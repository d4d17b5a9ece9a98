"""How fast the lab runner takes and finishes a job: push to job start, and job start to result.

Run:  .venv/bin/python tests/bench/runner_jobs.py [--rounds N]   (or `make bench-runner`)

On the lab forge (Gitea, tests/lab/forge) one lab runner process with a host label and a docker label
(fetch_interval 1s, as forgejo-runner's default 2s would add up to a second) runs, N times each, a one-step
host job and a one-step container job (the lab's imported Debian 12 image, tests/lab/docker). Each round is
one push to a repository of the run's own. Job start is the runner's first log line (its own clock, the
same machine); the result is when the forge API first shows the run completed (polled every 0.2 s).
Prints the medians and every round, and the load average before and after. The runner's registration
and the repositories are deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (REPO / ".venv").resolve() and VENV_PY.exists():
    os.execv(str(VENV_PY), [str(VENV_PY), __file__, *sys.argv[1:]])
sys.path[:0] = [str(REPO / "tests")]

from lablib.forge import LabForge  # noqa: E402
from lablib.runner import LabRunnerProcess  # noqa: E402 (after the path set-up)
from lablib.shell import LAB, lab_env  # noqa: E402

JOB = """on: push
jobs:
  bench:
    runs-on: {label}
    steps:
      - run: echo "round {round}"
"""


def measure(forge: LabForge, label: str, rounds: int) -> list[tuple[float, float]]:
    repo = forge.create_repo("rnbench")
    try:
        out = []
        for n in range(rounds):
            push = repo.push({".gitea/workflows/bench.yml": JOB.format(label=label, round=n)})
            run = repo.wait_run(push, timeout=300)
            if run.conclusion != "success":
                raise SystemExit(f"round {n} on {label} ended {run.conclusion}:\n{run.log}")
            out.append((run.push_to_start, run.start_to_result))
        return out
    finally:
        repo.delete()


def report(kind: str, samples: list[tuple[float, float]]) -> None:
    starts, results = zip(*samples, strict=True)
    print(
        f"{kind:<10} push->start {statistics.median(starts):6.2f} s   start->result {statistics.median(results):6.2f} s"
        f"   (rounds: {', '.join(f'{a:.2f}/{b:.2f}' for a, b in samples)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = lab_env([str(LAB / "forge"), "env", "gitea"])
    subprocess.run([str(LAB / "docker"), "up"], check=True)
    docker_host = lab_env([str(LAB / "docker"), "env"])["LAB_DOCKER_HOST"]
    forge = LabForge(env["FORGE_GITEA_URL"], env["FORGE_GITEA_TOKEN_OWNER"], env["FORGE_GITEA_TOKEN_WRITE_ADMIN"])
    suffix = uuid.uuid4().hex[:8]
    host, docker = f"rnbench-host-{suffix}", f"rnbench-docker-{suffix}"
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores); {args.rounds} rounds each, medians")
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        runner = LabRunnerProcess(
            env["LAB_RUNNER"], forge, Path(tmp), [f"{host}:host", f"{docker}:docker://lab/debian12:1"], prefix="rnbench"
        )
        runner.configure(docker_host=docker_host)
        try:
            runner.register()
            runner.start()
            report("host", measure(forge, host, args.rounds))
            report("container", measure(forge, docker, args.rounds))
        finally:
            runner.remove()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
