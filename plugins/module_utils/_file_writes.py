# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files put in place whole, or removed: every file checked first, then only what differs written, content by
rename."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import typing as t
from dataclasses import dataclass

from ansible_collections.foundation.runners.plugins.module_utils._host_state import name_of
from ansible_collections.foundation.runners.plugins.module_utils._metrics_textfile import replace_file


class FileWriteError(Exception):
    """A file that cannot be written as declared; the message names it."""


@dataclass
class Change:
    path: str
    content: bytes
    uid: int
    gid: int
    mode: int
    before: bytes | None  # None: the file does not exist
    before_attrs: tuple[int, int, int] | None
    remove: bool = False

    @property
    def content_differs(self) -> bool:
        return self.before != self.content

    @property
    def differs(self) -> bool:
        if self.remove:
            return self.before_attrs is not None
        return self.content_differs or self.before_attrs != (self.uid, self.gid, self.mode)

    def diff(self) -> dict[str, str]:
        """One entry of the task's diff: the content, or the owner, group and mode when only they change."""
        if self.remove:
            return {"before_header": self.path, "after_header": self.path, "before": _text(self.before), "after": ""}
        if self.content_differs:
            before, after = _text(self.before or b""), _text(self.content)
        else:
            before, after = _attrs_text(*self.before_attrs), _attrs_text(self.uid, self.gid, self.mode)
        return {"before_header": self.path, "after_header": self.path, "before": before, "after": after}


def plan(files: list[dict[str, t.Any]], check_mode: bool = False) -> list[Change]:
    """The files that differ from what is declared; raises before anything is written if one cannot be.

    In check mode a missing directory, owner or group is a change, not an error: the run's earlier tasks make them.
    """
    seen: set[str] = set()
    changes = []
    for spec in files:
        path = spec["path"]
        if not os.path.isabs(path) or path in seen:
            raise FileWriteError(f"{path}: " + ("listed twice" if path in seen else "not an absolute path"))
        seen.add(path)
        change = _read_absent(path) if spec.get("state") == "absent" else _read(path, spec, check_mode)
        if change.differs:
            changes.append(change)
    return changes


def write(change: Change) -> None:
    """Put one planned change in place: a new content through a temporary file renamed over the path."""
    try:
        if change.remove:
            os.unlink(change.path)
            return
        if not change.content_differs:
            os.chown(change.path, change.uid, change.gid)
            os.chmod(change.path, change.mode)
            return
        replace_file(change.path, change.content, change.mode, (change.uid, change.gid))
    except OSError as exc:
        raise FileWriteError(f"{change.path}: cannot write: {exc.strerror or exc}") from exc


def _read(path: str, spec: dict[str, t.Any], check_mode: bool) -> Change:
    uid = _number(pwd.getpwnam, spec["owner"], f"{path}: owner {spec['owner']} does not exist", check_mode)
    gid = _number(grp.getgrnam, spec["group"], f"{path}: group {spec['group']} does not exist", check_mode)
    try:
        mode = int(spec["mode"], 8)
    except ValueError:
        raise FileWriteError(f"{path}: mode {spec['mode']!r} is not an octal number") from None
    if not os.path.isdir(os.path.dirname(path)) and not check_mode:
        raise FileWriteError(f"{path}: its directory does not exist")
    before, attrs = _current(path)
    return Change(path, spec["content"].encode(), uid, gid, mode, before, attrs)


def _read_absent(path: str) -> Change:
    before, attrs = _current(path)
    return Change(path, b"", -1, -1, 0, before, attrs, remove=True)


def _current(path: str) -> tuple[bytes | None, tuple[int, int, int] | None]:
    """The file's content and owner, group and mode; None twice when it (or its directory) does not exist."""
    try:
        found = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    if not stat.S_ISREG(found.st_mode):
        raise FileWriteError(f"{path}: exists and is not a regular file")
    with open(path, "rb") as handle:
        return handle.read(), (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode))


def _number(lookup: t.Callable[[str], t.Any], name: str, missing: str, check_mode: bool) -> int:
    """The uid or gid of a name; -1 in check mode for one that an earlier task of the run would create."""
    try:
        return lookup(name)[2]
    except KeyError:
        if check_mode:
            return -1
        raise FileWriteError(missing) from None


def _text(data: bytes | None) -> str:
    if data is None:
        return ""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"({len(data)} bytes, not text)\n"


def _attrs_text(uid: int, gid: int, mode: int) -> str:
    return f"owner {name_of(pwd.getpwuid, uid)}:{name_of(grp.getgrgid, gid)}, mode {mode:04o}\n"
