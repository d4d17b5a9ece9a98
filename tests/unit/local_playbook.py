"""ansible-playbook from the venv against the controller (localhost, local connection), with this clone's collection:
how the role unit tests render a role's variables or run a role's tasks."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_local_playbook(
    playbook: Path, *options: str, inventory: str = "localhost,", timeout: float = 300
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".ansible" / "collections"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
    }
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", inventory, "-c", "local", str(playbook)]
    return subprocess.run([*command, *options], capture_output=True, text=True, env=env, check=False, timeout=timeout)


def role_vars_play(directory: Path, role: str, tasks: list, play_vars: dict | None = None) -> Path:
    """A playbook on localhost that loads ROLE's defaults and vars files (its tasks are not run), then runs TASKS."""
    role_dir = ROOT / "roles" / role
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}", **(play_vars or {})},
        "vars_files": [str(role_dir / "defaults" / "main.yml"), str(role_dir / "vars" / "main.yml")],
        "tasks": tasks,
    }
    path = directory / f"{role}-vars.yml"
    path.write_text(json.dumps([play]))
    return path


# A result line of the default callback names its host first: "ok: [h]", "fatal: [h -> other]: FAILED!", or a recap.
_RESULT = re.compile(r"^(?:\w+: \[(?P<host>[^\]\s]+)[\] ]|(?P<recap>[^\s:]+)\s+: ok=)")


def output_per_host(output: str) -> dict[str, str]:
    """A default-callback run over many hosts, split into each host's own lines: its results, each under the
    header of its task, and its recap line (which tells its failed= and changed= counts)."""
    lines: dict[str, list[str]] = defaultdict(list)
    header = ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [", "PLAY [")):
            header = line
        elif match := _RESULT.match(line):
            host = match["host"] or match["recap"]
            lines[host] += [header, line] if match["host"] else [line]
    return {host: "\n".join(text) for host, text in lines.items()}
