# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any

from ansible_collections.foundation.runners.plugins.plugin_utils._checks import failed
from ansible_collections.foundation.runners.plugins.plugin_utils._filters import as_filter

DOCUMENTATION = r"""
name: failed_checks
short_description: The messages of the input checks that fail, for one assert that reports them all
version_added: 0.3.0
description:
  - Takes a list of checks, each C(ok) (a boolean), C(msg) (what to fix) and optionally C(when) (a boolean; a check
    whose C(when) is false is not made), and returns the C(msg) of each check made whose C(ok) is false, in order.
  - One C(ansible.builtin.assert) on the result checks every input at once and names every problem, instead of a
    loop that stops at the first one.
options:
  _input:
    description: The checks.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the role's inputs
  ansible.builtin.assert:
    that: __failed | length == 0
    fail_msg: "{{ __failed | join(' ') }}"
    quiet: true
  vars:
    __failed: >-
      {{ [{'ok': my_port | int > 0, 'msg': 'my_port must be a port number.'},
          {'when': my_tls | bool, 'ok': my_cert | length > 0, 'msg': 'my_cert is needed with my_tls.'}]
         | foundation.runners.failed_checks }}
"""

RETURN = r"""
_value:
  description: The messages of the failed checks; empty when all pass.
  type: list
  elements: str
"""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"failed_checks": as_filter("failed_checks", failed)}
