"""The collection's input-form tests: one definition for the roles' preflights and the modules' checks."""

from __future__ import annotations

import pytest

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_options as vm_options
from ansible_collections.foundation.runners.plugins.test.input_forms import (
    TestModule as InputFormTests,
)
from ansible_collections.foundation.runners.plugins.test.input_forms import (
    go_duration,
    runner_label,
    sha256_checksum,
    vm_name,
)

HEX = "0123456789abcdef" * 4

ACCEPTED = {
    runner_label: [
        "fenced",
        "fenced:host",
        "fenced:docker://node:22-bookworm",
        f"heavy:docker://registry.lan:5000/ci/build:1@sha256:{HEX}",
        "lxc-job:lxc://debian:bookworm",
    ],
    vm_name: ["runner-02", "foundation-runner-03", "r", "a" * 63, "VM_1.lab"],
    sha256_checksum: [f"sha256:{HEX}", f"sha256:{HEX.upper()}"],
    go_duration: ["3h", "90m", "1h30m", "2.5s", "500ms"],
}
REFUSED = {
    runner_label: ["", "-fenced", "fenced:docker", "fenced:docker://", "fenced:ssh://x", "two words", None, 3],
    vm_name: ["", "-runner", "a" * 64, "runner 02", "runner/02", None],
    sha256_checksum: [HEX, f"sha256:{HEX[:-1]}", f"md5:{HEX}", f"sha256:{HEX}0", None],
    go_duration: ["", "3", "3 h", "1d", "h", None, 3],
}


@pytest.mark.parametrize(("test", "value"), [(t, v) for t, vs in ACCEPTED.items() for v in vs])
def test_accepts(test, value):
    assert test(value)


@pytest.mark.parametrize(("test", "value"), [(t, v) for t, vs in REFUSED.items() for v in vs])
def test_refuses(test, value):
    assert not test(value)


def test_the_module_checks_the_same_forms():
    assert vm_options.NAME_RE.pattern and all(vm_options.NAME_RE.match(v) for v in ACCEPTED[vm_name])
    assert all(vm_options.CHECKSUM_RE.match(v) for v in ACCEPTED[sha256_checksum])
    assert not any(vm_options.NAME_RE.match(v or "") for v in REFUSED[vm_name])


def test_every_test_is_registered():
    assert set(InputFormTests().tests()) == {"runner_label", "vm_name", "sha256_checksum", "go_duration"}
