# Private to the foundation.runners collection; not a public API, may change without notice.
"""The forms of inputs that both the modules and the roles check, each defined once (the roles use them through
the collection's test plugins in plugins/test/input_forms.py)."""

from __future__ import annotations

import re

# A libvirt domain name that is also a host and runner name.
VM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# A download's checksum, as get_url and the libvirt module take it.
SHA256_CHECKSUM_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
# forgejo-runner label schemes: name, name:host, name:docker://image, name:lxc://image.
RUNNER_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(:(host|(docker|lxc)://\S+))?$")
# A Go time.Duration, as forgejo-runner's config takes its timeouts (3h, 90m, 1h30m, 2.5s).
GO_DURATION_RE = re.compile(r"^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$")


_UNITS = {
    "": None,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
}


def size_bytes(value: object, default_unit: str) -> int:
    """``2048``, ``"2GiB"``, ``"512MiB"`` and the like in bytes; a bare number is in ``default_unit``.

    Only binary units are accepted, so ``GB`` versus ``GiB`` can never be confused. ValueError says what is wrong
    with the value, for the caller to prefix with its name.
    """
    if isinstance(value, bool):
        raise ValueError("is not a size")
    if isinstance(value, int):
        number, unit = value, ""
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"is not a valid size: use an integer ({default_unit}) or a number with "
                "one of the units B, KiB, MiB, GiB, TiB (e.g. 2GiB, 512MiB)"
            )
        number, unit = int(m.group(1)), m.group(2).lower()
    size = number * (_UNITS[unit] or _UNITS[default_unit.lower()])
    if size <= 0:
        raise ValueError("must be greater than zero")
    return size


def matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None
