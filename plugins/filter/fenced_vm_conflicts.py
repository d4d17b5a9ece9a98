# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fenced_vm_conflicts
short_description: The addresses and names that more than one declared runner VM uses
version_added: 0.2.0
description:
  - Takes every runner VM the inventory declares, on every host, and returns one message for each address or VM
    name used more than once, naming all of its users. Two guests on one LAN address knock each other (or the
    running runner) off the network; two VMs of one name register one runner twice.
  - The playbooks build the list from each host's C(fenced_vms) and the failover hosts' C(fenced_runner_name) and
    C(fenced_runner_ip_address), and refuse to go on while the result is not empty.
positional: _input
options:
  _input:
    description: The declared VMs, each a dictionary with C(host), C(name) and C(address) (CIDR notation or bare).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse runner VMs that share an address or a name
  ansible.builtin.assert:
    that: conflicts | length == 0
    fail_msg: "{{ conflicts | join('; ') }}"
  vars:
    conflicts: "{{ [{'host': 'crunchy01', 'name': 'runner-02', 'address': '192.168.1.16/24'},
                    {'host': 'brix02', 'name': 'runner-03', 'address': '192.168.1.16/24'}]
                   | foundation.runners.fenced_vm_conflicts }}"
"""

RETURN = r"""
_value:
  description: One message per shared address or name; empty when every address and name is used once.
  type: list
  elements: str
"""

from typing import Any

from ansible_collections.foundation.runners.plugins.plugin_utils._filters import as_filter
from ansible_collections.foundation.runners.plugins.plugin_utils._vm_conflicts import conflicts


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fenced_vm_conflicts": as_filter("fenced_vm_conflicts", conflicts)}
