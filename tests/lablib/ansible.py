"""Ansible as the tests run it: one module on localhost, a playbook, and the recap of a run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from lablib.shell import ROOT

# One line of a PLAY RECAP: host, ok, changed, unreachable, failed.
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


# A task's header, and a result line of it that ran (a skipped task costs no round trip): host, delegate.
TASK = re.compile(r"^TASK \[(?:[\w.]+ : )?(.+?)\] \**$")
EXECUTION = re.compile(r"^(?:ok|changed): \[([^\]\s]+)(?: -> ([^\](]+))?")


def recap(output: str) -> dict[str, dict[str, int]]:
    """The counts of each host in a run's PLAY RECAP."""
    return {
        m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
        for m in RECAP.finditer(output)
    }


@dataclass
class PlaybookRun:
    rc: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        return recap(self.output)

    def executions(self) -> list[tuple[str, str]]:
        """Each task result that ran, as (task name without its role, host or delegate it ran on)."""
        found, task = [], ""
        for line in self.output.splitlines():
            if header := TASK.match(line):
                task = header[1]
            elif result := EXECUTION.match(line):
                found.append((task, result[2] or result[1]))
        return found

    def changed(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap().items()}

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


class Ansible:
    """Runs one module on localhost through `ansible`, returning its result dict."""

    def __init__(self):
        self.env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".ansible" / "collections"),
            "ANSIBLE_CONFIG": str(ROOT / "tests" / "ansible.cfg"),
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            # The lab forges are plain http in the lab's own namespaces; the modules refuse http otherwise.
            "FORGEJO_ALLOW_INSECURE_HTTP": "1",
        }

    def __call__(
        self, module: str, args: dict, check: bool = False, diff: bool = False, extra_env: dict | None = None
    ) -> dict:
        """The module's registered result. It is read from a private file, not from the output: a result that
        carries a token is censored in every output, as forgejo_runner_token's are."""
        with tempfile.TemporaryDirectory() as scratch:
            kept = Path(scratch) / "result.json"
            task = {f"foundation.runners.{module}": args, "register": "result", "ignore_errors": True}
            task.update(check_mode=check, diff=diff)
            keep = {"ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(kept), "mode": "0600"}}
            keep.update(check_mode=False, diff=False, no_log=True)
            play = Path(scratch) / "play.json"
            play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task, keep]}]))
            command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-c", "local", "-i", "localhost,"]
            env = {**self.env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", **(extra_env or {})}
            proc = subprocess.run([*command, str(play)], capture_output=True, text=True, env=env, check=False)
            if not kept.exists():
                pytest.fail(f"ansible {module} gave no result (rc {proc.returncode}): {proc.stdout}\n{proc.stderr}")
            return json.loads(kept.read_text())

    def playbook(self, playbook: Path, extra_vars: dict, *options: str) -> subprocess.CompletedProcess:
        command, env = self.playbook_command(playbook, extra_vars, *options)
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    def playbook_command(self, playbook: Path, extra_vars: dict, *options: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of an ansible-playbook run on localhost."""
        env = {**self.env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
        command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local"]
        return [*command, str(playbook), "-e", json.dumps(extra_vars), *options], env
