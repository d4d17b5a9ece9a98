# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.foundation.runners.plugins.module_utils import _input_forms as forms

DOCUMENTATION = r"""
name: runner_label
short_description: Whether a value is a forgejo-runner label, such as fenced:docker://node:22-bookworm
version_added: 0.3.0
description:
  - True for C(name), C(name:host), C(name:docker://image) or C(name:lxc://image); the name starts with a letter
    or a digit and holds letters, digits, C(_), C(.) and C(-).
  - The other tests of this file check the other input forms that the modules check too, with the same
    definition (C(plugins/module_utils/_input_forms.py)).
  - C(foundation.runners.vm_name), a libvirt domain name that is also a host and runner name (1 to 63 letters,
    digits, C(_), C(.) and C(-), starting with a letter or a digit).
  - C(foundation.runners.sha256_checksum), C(sha256:) and 64 hex digits, as C(ansible.builtin.get_url) and
    C(foundation.runners.libvirt_cloudinit_vm) take a checksum.
  - C(foundation.runners.go_duration), a Go duration such as C(3h), C(90m) or C(1h30m).
extends_documentation_fragment:
  - foundation.runners.jinja_test
"""

EXAMPLES = r"""
- name: Check a runner's inputs
  ansible.builtin.assert:
    that:
      - "'fenced:docker://node:22-bookworm' is foundation.runners.runner_label"
      - "'runner-02' is foundation.runners.vm_name"
      - "'sha256:' ~ ('0' * 64) is foundation.runners.sha256_checksum"
      - "'1h30m' is foundation.runners.go_duration"
"""

RETURN = r"""
_value:
  description: Whether the value has the form.
  type: bool
"""


def runner_label(value: object) -> bool:
    return forms.matches(forms.RUNNER_LABEL_RE, value)


def vm_name(value: object) -> bool:
    return forms.matches(forms.VM_NAME_RE, value)


def sha256_checksum(value: object) -> bool:
    return forms.matches(forms.SHA256_CHECKSUM_RE, value)


def go_duration(value: object) -> bool:
    return forms.matches(forms.GO_DURATION_RE, value)


class TestModule:
    def tests(self) -> dict[str, object]:
        return {
            "runner_label": runner_label,
            "vm_name": vm_name,
            "sha256_checksum": sha256_checksum,
            "go_duration": go_duration,
        }
