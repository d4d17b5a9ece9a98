"""Lab environments and a way to run modules through Ansible, for the integration tests."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "tests" / "lab"


def lab_env(command: list[str]) -> dict[str, str]:
    """Parse the `export NAME=value` lines a lab command prints."""
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            name, value = line.removeprefix("export ").split("=", 1)
            env[name] = shlex.split(value)[0] if value else ""
    return env


def wait_for(what, timeout: float, step: float = 1.0):
    """what()'s first true value, asked every step seconds; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not true after {timeout} s: {what.__doc__ or what}")


def vault_secret(path: str, mount: str = "foundation") -> dict:
    """The data of a KV v2 secret in the lab Vault ({} when there is none), read with the lab's root token through
    the vault CLI in the server's namespace: the tests' own look; the playbooks log in with the AppRole."""
    vault = lab_env([str(LAB / "vault"), "env"])
    with open(vault["LAB_VAULT_ROOT_TOKEN_FILE"]) as f:
        env = {**os.environ, "VAULT_ADDR": vault["VAULT_ADDR"], "VAULT_TOKEN": f.read().strip()}
    command = ["ip", "netns", "exec", vault["LAB_VAULT_NETNS"], vault["LAB_VAULT_BIN"], "kv", "get", "-format=json"]
    command += [f"-mount={mount}", path]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    return json.loads(proc.stdout)["data"]["data"] if proc.returncode == 0 else {}


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
