#!/usr/bin/python
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: managed_files
short_description: Write or remove several small files (content, owner, group, mode) in one call
version_added: 0.1.0
description:
  - Puts each listed file in place with the given content, owner, group and mode, writing only what differs, or
    removes it (O(files[].state=absent)).
    A changed content is written to a temporary file in the same directory and renamed over the old one, so a
    reader never sees half a file.
  - Where a host is slow to reach (a runner VM under emulation, a host across a jump), one call replaces the two
    round trips per file of C(ansible.builtin.copy) in a loop. It is the writing side of
    M(foundation.runners.host_state_info).
  - Every file is checked before any is written; a missing parent directory, an unknown owner or group, or a path
    that is not a regular file fails the task with nothing written. In check mode a missing directory, owner or
    group is reported as a change instead, since the run's earlier tasks would make them.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details: Reports which files would change, and their diffs, without writing.
  diff_mode:
    support: full
    details: One diff per changed file; content that is not UTF-8 text is shown by its size.
  idempotent:
    support: full
options:
  files:
    description: The files and what each must hold.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The absolute path; its directory must exist.
        type: path
        required: true
      state:
        description: V(present) puts the file in place; V(absent) removes it if it exists.
        type: str
        choices: [present, absent]
        default: present
      content:
        description: The whole content, as text. Required when O(files[].state=present).
        type: str
      owner:
        description: The owner's name.
        type: str
        default: root
      group:
        description: The group's name.
        type: str
        default: root
      mode:
        description: The octal mode, as a string (V("0644")). Required when O(files[].state=present).
        type: str
notes:
  - Set C(no_log) on the task when a content is secret; the module cannot hide one file's content alone.
requirements:
  - Root, or the rights to write each file and to give it its owner and group.
author:
  - Foundation Runners maintainers (@foundation-runners)
"""

EXAMPLES = r"""
- name: Write the metrics script and its units
  foundation.runners.managed_files:
    files:
      - path: /usr/local/libexec/runner-metrics.py
        content: "{{ lookup('ansible.builtin.file', 'runner_metrics.py') }}"
        mode: "0644"
      - path: /etc/systemd/system/runner-metrics.timer
        content: "{{ lookup('ansible.builtin.template', 'runner-metrics.timer.j2') }}"
        mode: "0644"
  become: true

- name: Remove them again
  foundation.runners.managed_files:
    files:
      - path: /usr/local/libexec/runner-metrics.py
        state: absent
      - path: /etc/systemd/system/runner-metrics.timer
        state: absent
  become: true
"""

RETURN = r"""
changed_paths:
  description: The paths whose content, owner, group or mode was (or in check mode would be) changed, or that were
    (would be) removed.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/runner-metrics.timer]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.foundation.runners.plugins.module_utils._file_writes import FileWriteError, plan, write


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                    "content": {"type": "str"},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                    "mode": {"type": "str"},
                },
                "required_if": [("state", "present", ("content", "mode"))],
            },
        },
        supports_check_mode=True,
    )
    try:
        changes = plan(module.params["files"], module.check_mode)
        if not module.check_mode:
            for change in changes:
                write(change)
    except FileWriteError as exc:
        module.fail_json(msg=str(exc))
    result = {"changed": bool(changes), "changed_paths": [change.path for change in changes]}
    if module._diff:
        result["diff"] = [change.diff() for change in changes]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
