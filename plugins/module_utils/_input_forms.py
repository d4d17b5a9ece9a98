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


def matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None
