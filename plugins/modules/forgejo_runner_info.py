#!/usr/bin/python
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: forgejo_runner_info
short_description: List Forgejo Actions runners
version_added: 0.1.0
description:
  - Lists the runners registered at instance, organisation, user or repository scope, with their id, uuid,
    name, labels, status and version, optionally filtered.
  - Needs the runners API of Forgejo 15 or later.
extends_documentation_fragment:
  - foundation.runners.forgejo.CONNECTION
  - foundation.runners.forgejo
  - foundation.runners.forgejo.SCOPE
  - foundation.runners.forgejo.ON_UNSUPPORTED
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
  - foundation.runners.attributes.INFO
options:
  names:
    description:
      - Shell-style patterns (C(fnmatch)); a runner is listed when its name matches any of them.
    type: list
    elements: str
    default: []
  labels:
    description:
      - Only runners that carry all of these labels.
    type: list
    elements: str
    default: []
  status:
    description:
      - Only runners in one of these states. Forgejo marks a runner V(offline) one minute after its last contact.
    type: list
    elements: str
    choices: [offline, idle, active]
    default: []
author:
  - Foundation Runners maintainers (@foundation-runners)
"""

EXAMPLES = r"""
- name: List the fenced runners of the instance
  foundation.runners.forgejo_runner_info:
    api_url: https://forge.example.org
    api_token: "{{ forgejo_read_admin_token }}"
    labels: [fenced]
  register: fenced

- name: Is the primary online?
  ansible.builtin.debug:
    msg: "{{ fenced.runners | selectattr('name', 'eq', 'runner-01') | map(attribute='status') | list }}"
"""

RETURN = r"""
runners:
  description: The runners that passed the filters, sorted by id.
  returned: success
  type: list
  elements: dict
  contains:
    id: {description: "Runner id, used in the API paths.", type: int}
    uuid: {description: Runner UUID., type: str}
    name: {description: Runner name; not unique in Forgejo., type: str}
    labels: {description: Labels the runner declared., type: list, elements: str}
    status: {description: "\"One of V(offline), V(idle), V(active).\"", type: str}
    version: {description: Version the runner reported., type: str}
    ephemeral: {description: Whether the runner takes one job only., type: bool}
    description: {description: Free text., type: str}
supported:
  description: False when O(on_unsupported=skip) skipped the module; C(reason) then says why.
  returned: success
  type: bool
server_version:
  description: The version the server reported.
  returned: success
  type: str
  sample: 15.0.3+gitea-1.22.0
"""

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import select_runners
from ansible_collections.foundation.runners.plugins.module_utils._forgejo_module import (
    ON_UNSUPPORTED_ARGS,
    forgejo_module,
    run,
)


def main() -> None:
    module = forgejo_module(
        {
            **ON_UNSUPPORTED_ARGS,
            "names": {"type": "list", "elements": "str", "default": []},
            "labels": {"type": "list", "elements": "str", "default": []},
            "status": {"type": "list", "elements": "str", "default": [], "choices": ["offline", "idle", "active"]},
        }
    )
    params = module.params

    def action(client, scope):
        runners = select_runners(client.list_runners(scope), params["names"], params["labels"], params["status"])
        runners.sort(key=lambda r: r["id"])
        return {"changed": False, "runners": runners, "server_version": client.version.raw}

    run(module, action, skipped={"runners": []})


if __name__ == "__main__":
    main()
