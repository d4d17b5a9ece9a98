"""Paths, commands and waiting: what every lab test does."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "tests" / "lab"


class CommandFailed(subprocess.CalledProcessError):
    """A failed command whose message carries the end of what it printed, so that a test's report says why."""

    def __str__(self) -> str:
        said = "\n".join(text.strip()[-2000:] for text in (self.stdout, self.stderr) if text and text.strip())
        return f"{super().__str__()}\n{said}" if said else super().__str__()


def sh(*argv: str, check: bool = True, timeout: float | None = None, **kw) -> subprocess.CompletedProcess:
    """A command's result, its output captured as text; with check, a failure raises CommandFailed."""
    done = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        raise CommandFailed(done.returncode, done.args, done.stdout, done.stderr)
    return done


def virsh(uri: str, *args: str, check: bool = True) -> str:
    """virsh's quiet output, from the root namespace."""
    return sh("virsh", "-q", "-c", uri, *args, check=check).stdout


def lab_env(command: list[str]) -> dict[str, str]:
    """Parse the `export NAME=value` lines a lab command prints."""
    out = sh(*command).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            name, value = line.removeprefix("export ").split("=", 1)
            env[name] = shlex.split(value)[0] if value else ""
    return env


def env_file(path: Path) -> dict[str, str]:
    """The NAME=value lines of a lab file such as tests/lab/e2e.env (comments and blank lines skipped)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def wait_until(predicate, timeout: float, step: float = 1.0, what: str = ""):
    """predicate()'s first true value, asked every step seconds; fails the test after timeout seconds. With
    ``what``, prints how long it took."""
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            if what:
                print(f"{what}: after {time.monotonic() - start:.0f} s")
            return value
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true after {timeout:.0f} s: {what or predicate.__doc__ or predicate}")
        time.sleep(step)


def vault_secret(path: str, mount: str = "foundation") -> dict:
    """The data of a KV v2 secret in the lab Vault ({} when there is none), read with the lab's root token through
    the vault CLI in the server's namespace: the tests' own look; the playbooks log in with the AppRole."""
    vault = lab_env([str(LAB / "vault"), "env"])
    with open(vault["LAB_VAULT_ROOT_TOKEN_FILE"]) as f:
        env = {**os.environ, "VAULT_ADDR": vault["VAULT_ADDR"], "VAULT_TOKEN": f.read().strip()}
    command = ["ip", "netns", "exec", vault["LAB_VAULT_NETNS"], vault["LAB_VAULT_BIN"], "kv", "get", "-format=json"]
    proc = sh(*command, f"-mount={mount}", path, check=False, env=env)
    return json.loads(proc.stdout)["data"]["data"] if proc.returncode == 0 else {}
