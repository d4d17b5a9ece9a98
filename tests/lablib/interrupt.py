"""A playbook run killed at a chosen point, as a power cut or an operator's `kill -9` would end it: SIGKILL to
its whole process group (ansible-playbook, its workers and the modules they run), no handler or cleanup."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

TASK = re.compile(r"^TASK \[(.+?)\]", re.M)


@dataclass
class KilledRun:
    output: str
    killed: bool  # False when the run ended before the kill point
    seconds: float


def run_killed(argv: list[str], env: dict[str, str], marker: str, delay: float, timeout: float = 900) -> KilledRun:
    """Run ``argv`` and kill its process group ``delay`` seconds after a line containing ``marker`` appears."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    killed = threading.Event()

    def kill() -> None:
        if proc.poll() is None:
            killed.set()
            os.killpg(proc.pid, signal.SIGKILL)

    lines: list[str] = []
    timer: threading.Timer | None = None
    watchdog = threading.Timer(timeout, kill)
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if timer is None and marker in line:
                timer = threading.Timer(delay, kill)
                timer.start()
        proc.wait()
    finally:
        watchdog.cancel()
        if timer is not None:
            timer.join()
    return KilledRun("".join(lines), killed.is_set(), time.monotonic() - start)


def tasks_between(output: str, first: str, last: str) -> list[str]:
    """The task headers of a run's output from the one containing ``first`` to the one containing ``last``."""
    names = TASK.findall(output)
    begin = next(i for i, name in enumerate(names) if first in name)
    end = next(i for i, name in enumerate(names) if i >= begin and last in name)
    return list(dict.fromkeys(names[begin : end + 1]))
