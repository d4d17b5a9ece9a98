# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failed_checks filter's logic, without Ansible's controller side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _flag(check: Mapping[str, Any], key: str, default: bool | None, index: int) -> bool:
    value = check.get(key, default)
    if not isinstance(value, bool):
        name = str(check.get("msg", "")).split(" ", maxsplit=1)[0] or f"#{index}"
        raise ValueError(f"check {name}: {key} is {type(value).__name__}, not a boolean")
    return value


def failed(checks: list[Any]) -> list[str]:
    """The msg of each check made (its when true, or no when) whose ok is false, in order."""
    if not isinstance(checks, list):
        raise ValueError(f"expected a list of checks, got {type(checks).__name__}")
    messages = []
    for index, check in enumerate(checks):
        if not isinstance(check, Mapping) or "msg" not in check:
            raise ValueError(f"check #{index} is not a mapping with ok and msg")
        if _flag(check, "when", True, index) and not _flag(check, "ok", None, index):
            messages.append(str(check["msg"]).strip())
    return messages
