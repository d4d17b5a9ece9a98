# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.foundation.runners.plugins.module_utils import _input_forms as forms

DOCUMENTATION = r"""
name: size_bytes
short_description: A size such as 8GiB in bytes, read as libvirt_cloudinit_vm reads its sizes
version_added: 0.3.0
description:
  - An integer, or a number with one of the binary units B, KiB, MiB, GiB, TiB (or K, M, G, T), in bytes. A bare
    number is in O(default_unit). The same definition as C(foundation.runners.libvirt_cloudinit_vm)'s C(disk_size)
    and C(memory).
positional: default_unit
options:
  _input:
    description: The size.
    type: raw
    required: true
  default_unit:
    description: The unit of a bare number.
    type: str
    default: GiB
"""

EXAMPLES = r"""
- name: The capacity of a volume as big as the VM's disk
  ansible.builtin.debug:
    msg: "{{ '8GiB' | foundation.runners.size_bytes }}"
"""

RETURN = r"""
_value:
  description: The size in bytes.
  type: int
"""


def size_bytes(value: object, default_unit: str = "GiB") -> int:
    try:
        return forms.size_bytes(value, default_unit)
    except ValueError as exc:
        raise AnsibleFilterError(f"size {value!r} {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"size_bytes": size_bytes}
