# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to foundation.runners: reads whether files, packages, users and Docker images are as declared."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import re
import stat
from typing import Any, Callable

RunCommand = Callable[..., tuple]
SHADOW = "/etc/shadow"


def parse_checksum(value: str) -> tuple[str, str]:
    """'sha256:<hex>' -> ('sha256', '<hex>'), as get_url takes it."""
    match = re.fullmatch(r"(sha1:[0-9a-fA-F]{40}|sha256:[0-9a-fA-F]{64})", value)
    if not match:
        raise ValueError(f"checksum {value!r} is not sha1:<40 hex digits> or sha256:<64 hex digits>")
    algorithm, digest = value.split(":")
    return algorithm, digest.lower()


def _digest(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def name_of(table: Callable[[int], Any], number: int) -> str:
    """The name of a uid or gid (table: pwd.getpwuid or grp.getgrgid), or the number where it has none."""
    try:
        return table(number)[0]
    except KeyError:
        return str(number)


def file_state(spec: dict[str, Any]) -> dict[str, Any]:
    """What a file task would find: exists, type, owner, group, mode, and the differences from spec."""
    path, want = spec["path"], spec.get("state") or "file"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False, "differences": [] if want == "absent" else ["missing"]}
    kind = "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    found = {
        "exists": True,
        "type": kind,
        "owner": name_of(pwd.getpwuid, st.st_uid),
        "group": name_of(grp.getgrgid, st.st_gid),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
    }
    if want == "absent":
        return {**found, "differences": ["present"]}
    differences = [] if kind == want else [f"a {kind}, not a {want}"]
    for key in ("owner", "group"):
        if spec.get(key) and spec[key] != found[key]:
            differences.append(f"{key} {found[key]}, not {spec[key]}")
    if spec.get("mode") and int(spec["mode"], 8) != int(found["mode"], 8):
        differences.append(f"mode {found['mode']}, not {spec['mode']}")
    if spec.get("checksum") and kind == "file":
        algorithm, digest = parse_checksum(spec["checksum"])
        if _digest(path, algorithm) != digest:
            differences.append("content differs")
    if spec.get("lines") and kind == "file":
        differences += [f"line {item['line']!r} not in place" for item in lines_out_of_place(path, spec["lines"])]
    return {**found, "differences": differences}


def lines_out_of_place(path: str, lines: list[dict[str, str]]) -> list[dict[str, str]]:
    """The lines that a lineinfile task with their regexp would change: where the last line matching the regexp
    is not the line itself (or none matches)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        content = [cur.rstrip("\r") for cur in f.read().split("\n")]
    out = []
    for item in lines:
        pattern = re.compile(item["regexp"])
        matching = [cur for cur in content if pattern.search(cur)]
        if not matching or matching[-1] != item["line"]:
            out.append(item)
    return out


def _shadow_field(name: str) -> str | None:
    """The password field of name in /etc/shadow (read as root), None where it cannot be read."""
    try:
        with open(SHADOW, encoding="utf-8") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name and len(fields) > 1:
                    return fields[1]
    except OSError:
        return None
    return None


def user_state(spec: dict[str, Any]) -> dict[str, Any]:
    """What a user task would find: home, shell, groups, whether the password is locked, and the differences."""
    name = spec["name"]
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"exists": False, "differences": ["missing"]}
    groups = sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem)
    primary = name_of(grp.getgrgid, entry.pw_gid)
    password = _shadow_field(name)
    found = {
        "exists": True,
        "home": entry.pw_dir,
        "shell": entry.pw_shell,
        "groups": groups,
        "password_locked": password is not None and password.startswith("!"),
    }
    differences = [
        f"{key} {found[key]}, not {spec[key]}" for key in ("home", "shell") if spec.get(key) and spec[key] != found[key]
    ]
    lacking = [g for g in spec.get("groups") or [] if g not in groups and g != primary]
    if lacking:
        differences.append(f"not in {', '.join(lacking)}")
    if spec.get("password_locked") is not None and spec["password_locked"] != found["password_locked"]:
        differences.append("password " + ("not locked" if spec["password_locked"] else "locked"))
    return {**found, "differences": differences}


def package_installed(run_command: RunCommand, name: str) -> bool:
    rc, out, _err = run_command(["dpkg-query", "-W", "-f", "${db:Status-Status}", name])
    return rc == 0 and out.strip() == "installed"


def docker_image_id(run_command: RunCommand, docker: str, name: str) -> str | None:
    """The image's id in the local engine, None when it is not there (or the engine does not answer)."""
    rc, out, _err = run_command([docker, "image", "inspect", "--format", "{{.Id}}", name])
    return out.strip() if rc == 0 and out.strip() else None


def unit_state(run_command: RunCommand, systemctl: str | None, name: str) -> dict[str, str]:
    """A systemd unit's ActiveState and UnitFileState ("unknown" each where systemctl cannot tell)."""
    found = {"active": "unknown", "enabled": "unknown"}
    if systemctl:
        rc, out, _err = run_command([systemctl, "show", name, "--property=ActiveState,UnitFileState"])
        values = dict(line.partition("=")[::2] for line in out.splitlines()) if rc == 0 else {}
        found = {"active": values.get("ActiveState") or "unknown", "enabled": values.get("UnitFileState") or "unknown"}
    return found


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def free_bytes(path: str) -> int | None:
    """The bytes an unprivileged writer still has on the file system holding path (df's Avail; a symlink is
    followed), None where the path does not resolve."""
    try:
        st = os.statvfs(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.f_bavail * st.f_frsize


def json_values(path: str, fields: list[str]) -> dict[str, Any] | None:
    """The named top-level fields of a JSON object file (no other field leaves the host), None where the file is
    missing or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    return {name: data[name] for name in fields if name in data} if isinstance(data, dict) else None
