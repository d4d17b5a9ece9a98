"""The lab forges (tests/lab/forge) and lab runner processes."""

from __future__ import annotations

import subprocess

import pytest
from lablib.shell import LAB, ROOT

FLAVOURS = ["forgejo", "gitea"]
OFFLINE_WAIT = 150  # Forgejo marks a runner offline 60 s after its last contact; its check runs periodically.
SUMMARY = ROOT / "tests" / "output" / "forgejo-summary.txt"


class Flavour:
    """One lab forge flavour: its URL, version and tokens, and module arguments with one of them."""

    def __init__(self, flavour: str, env: dict[str, str]):
        key = flavour.upper()
        self.flavour = flavour
        self.url = env[f"FORGE_{key}_URL"]
        self.version = env[f"FORGE_{key}_VERSION"]
        self.tokens = {
            kind: env.get(f"FORGE_{key}_TOKEN_{kind.upper()}", "")
            for kind in ("write_admin", "read_admin", "org", "owner", "user")
        }
        self.org, self.repo = env["FORGE_ORG"], env["FORGE_REPO"]
        self.has_runner_api = flavour == "gitea" or int(self.version.split(".")[0]) >= 15

    def args(self, token: str = "write_admin", **extra) -> dict:
        return {"api_url": self.url, "api_token": self.tokens[token], **extra}


class Runners:
    """Lab runner processes started through tests/lab/forge; all stopped and forgotten at the end."""

    def __init__(self):
        self.names: list[str] = []

    def start(self, name: str, flavour: str, token: str, labels: str = "lab") -> None:
        self.names.append(name)
        command = [str(LAB / "forge"), "runner", "start", name, "--flavour", flavour, "--labels", labels]
        proc = subprocess.run([*command, "--token", token], check=False, capture_output=True, text=True)
        if proc.returncode:  # the message leaves the token out
            pytest.fail(f"forge runner start {name} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")

    def stop(self, name: str) -> None:
        subprocess.run([str(LAB / "forge"), "runner", "stop", name], check=True, capture_output=True)

    def purge_all(self) -> None:
        for name in self.names:
            subprocess.run([str(LAB / "forge"), "runner", "stop", name, "--purge"], check=False, capture_output=True)
