# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to foundation.runners: when apt's package lists need a refresh, and the refresh itself."""

from __future__ import annotations

import os
import re
import time
from typing import Callable, Optional

RunCommand = Callable[..., "tuple[int, str, str]"]

# A package name as Debian allows it, with an optional :arch; what follows (=version, /release) is dropped.
_NAME = re.compile(r"^([a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?)(?:[=/].*)?$")
_POLICY_HEADER = re.compile(r"^(\S+):$")
_POLICY_CANDIDATE = re.compile(r"^\s+Candidate:\s+(\S+)")


class AptListsError(Exception):
    """apt-get or apt-cache failed; the message names the command, its exit code and what it printed."""


class AptLists:
    lists_dir = "/var/lib/apt/lists"
    stamp = "/var/lib/apt/periodic/update-success-stamp"

    def __init__(self, run_command: RunCommand, clock: Callable[[], float] = time.time) -> None:
        self._run = run_command
        self._clock = clock

    @staticmethod
    def package_name(spec: str) -> str:
        match = _NAME.match(spec.strip())
        if not match:
            raise ValueError(f"'{spec}' is not a Debian package name (optionally with =version or /release)")
        return match.group(1)

    def has_lists(self) -> bool:
        try:
            return any("_Packages" in name for name in os.listdir(self.lists_dir))
        except FileNotFoundError:
            return False

    def age(self) -> Optional[float]:
        """Seconds since the last successful update, from the stamp; None when no update has been recorded."""
        try:
            return self._clock() - os.stat(self.stamp).st_mtime
        except FileNotFoundError:
            return None

    def candidates(self, packages: list[str]) -> dict[str, Optional[str]]:
        found: dict[str, Optional[str]] = {p: None for p in packages}
        if not packages:
            return found
        out = self._command(["apt-cache", "policy", "--", *packages])
        current = None
        for line in out.splitlines():
            header = _POLICY_HEADER.match(line)
            if header:
                current = header.group(1)
                continue
            candidate = _POLICY_CANDIDATE.match(line)
            if candidate and current is not None:
                name, value = self._requested(current, packages), candidate.group(1)
                if name in found:
                    found[name] = None if value == "(none)" else value
        return found

    def missing(self, packages: list[str]) -> list[str]:
        return [p for p, candidate in self.candidates(packages).items() if candidate is None]

    def refresh_reason(self, packages: list[str], valid_time: int) -> Optional[str]:
        if not self.has_lists():
            return "the package lists are empty"
        missing = self.missing(packages)
        if missing:
            return f"the package lists hold no candidate for {', '.join(missing)}"
        age = self.age()
        if age is None:
            return "no successful update is recorded"
        if age >= valid_time:
            return f"the last update is {int(age)} s old (valid_time {valid_time} s)"
        return None

    def update(self, reason: str) -> None:
        self._command(["apt-get", "update", "-q"], why=reason)
        os.makedirs(os.path.dirname(self.stamp), exist_ok=True)
        with open(self.stamp, "a", encoding="ascii"):
            pass
        os.utime(self.stamp, None)

    def _command(self, argv: list[str], why: str = "") -> str:
        rc, out, err = self._run(argv, environ_update={"LANG": "C", "LC_ALL": "C"})
        if rc != 0:
            because = f" (refreshing because {why})" if why else ""
            raise AptListsError(f"{' '.join(argv)} failed with exit code {rc}{because}: {(err or out).strip()}")
        return out

    @staticmethod
    def _requested(reported: str, packages: list[str]) -> str:
        # apt-cache prints "docker.io:" for "docker.io" and "libc6:amd64" for "libc6:amd64" or a foreign arch.
        if reported in packages:
            return reported
        bare = reported.split(":", 1)[0]
        return bare if bare in packages else reported
