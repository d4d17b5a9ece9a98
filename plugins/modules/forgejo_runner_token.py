#!/usr/bin/python
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: forgejo_runner_token
short_description: Mint a Forgejo Actions runner registration token, or register a runner
version_added: 0.1.0
description:
  - Without O(runner_name), returns the runner registration token of the instance, an organisation,
    the token's user or a repository (C(GET .../runners/registration-token), Forgejo 7 to 15).
    Forgejo hands out the same token until it is reset, so the call reports no change.
  - With O(runner_name), registers a runner and returns its C(id), C(uuid) and C(token), the fields of the
    runner's C(.runner) file. O(registration=api) uses C(POST .../actions/runners) (Forgejo 15 or later).
    O(registration=protocol) fetches the scope's registration token and makes the runner protocol's C(Register)
    call (C(POST /api/actions/runner.v1.RunnerService/Register), what C(forgejo-runner register) sends), which
    every Forgejo and Gitea with Actions answers. Either way the registration happens where the module runs,
    normally the controller, so no registration token reaches the runner's host or a command line.
  - Registration is idempotent by name where the forge lists runners (Forgejo 15, Gitea 1.24 or later). When a
    runner of that name already exists in the scope, nothing is created and its token is not returned (the forge
    shows it only once). On a forge without that list, O(registration=protocol) registers on every call.
  - Every returned token is a secret. Set C(no_log) to V(true) on the task. A result that carries a token is
    hidden from every output, C(-vvv) included, even on a task without C(no_log) (the module's action plugin
    marks it as C(no_log) would); the registered variable keeps the token for the tasks that need it.
extends_documentation_fragment:
  - foundation.runners.forgejo.CONNECTION
  - foundation.runners.forgejo
  - foundation.runners.forgejo.SCOPE
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details:
      - Fetching a registration token is a read and also happens in check mode.
      - In check mode a missing runner is reported as would-be created; nothing is registered.
  diff_mode:
    support: full
    details: With O(runner_name), the diff shows the runner names of the scope before and after. Tokens never appear.
  idempotent:
    support: full
options:
  runner_name:
    description:
      - Register a runner of this name (Forgejo 15 or later) instead of returning a registration token.
    type: str
  description:
    description:
      - Description of the runner to register. Only with O(runner_name).
    type: str
    default: ""
  ephemeral:
    description:
      - Register an ephemeral runner, which takes a single job. Only with O(runner_name) and the register API.
    type: bool
    default: false
  registration:
    description:
      - How a runner is registered. V(auto) uses the register API where the forge has it (Forgejo 15 or later)
        and the runner protocol elsewhere.
    type: str
    choices: [auto, api, protocol]
    default: auto
  labels:
    description:
      - The runner's labels, sent with a protocol registration (the runner declares them again when it starts).
    type: list
    elements: str
    default: []
  runner_version:
    description:
      - The runner version a protocol registration reports until the runner connects itself.
    type: str
    default: ""
author:
  - Foundation Runners maintainers (@foundation-runners)
"""

EXAMPLES = r"""
- name: Mint the registration token of the fleet organisation
  foundation.runners.forgejo_runner_token:
    api_url: https://forge.example.org
    api_token: "{{ vault_forgejo_org_token }}"
    scope: org
    org: fleet
  register: registration
  no_log: true

- name: Register runner-02 for the instance (the register API on Forgejo 15, the runner protocol before)
  foundation.runners.forgejo_runner_token:
    api_url: https://forge.example.org
    api_token: "{{ vault_forgejo_admin_token }}"
    runner_name: runner-02
    description: fenced runner VM on crunchy01
  register: runner
  no_log: true
"""

RETURN = r"""
token:
  description: The registration token of the scope. A secret; use C(no_log) on the task.
  returned: when O(runner_name) is not set
  type: str
runner:
  description: The registered runner.
  returned: when O(runner_name) is set
  type: dict
  contains:
    id: {description: Runner id (null in check mode when it would be created)., type: int}
    registration: {description: "How the runner was (or would be) registered: V(api) or V(protocol).", type: str}
    uuid: {description: "Runner UUID, the C(uuid) of the runner's configuration.", type: str}
    name: {description: Runner name., type: str}
    token:
      description:
        - The runner's secret, returned only when this call created the runner. A secret; use C(no_log) on the task.
      type: str
    created: {description: Whether this call registered the runner., type: bool}
server_version:
  description: The version the server reported.
  returned: success
  type: str
"""

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_module import forgejo_module, run


def main() -> None:
    module = forgejo_module(
        {
            "runner_name": {"type": "str"},
            "description": {"type": "str", "default": ""},
            "ephemeral": {"type": "bool", "default": False},
            "registration": {"type": "str", "default": "auto", "choices": ["auto", "api", "protocol"]},
            "labels": {"type": "list", "elements": "str", "default": []},
            "runner_version": {"type": "str", "default": ""},
        }
    )
    params = module.params
    if not params["runner_name"] and (params["description"] or params["ephemeral"]):
        module.fail_json(msg="description and ephemeral apply only to a registration: set runner_name as well")
    if params["runner_name"] is not None and not params["runner_name"].strip():
        module.fail_json(msg="runner_name must not be empty")

    def action(client, scope):
        if not params["runner_name"]:
            return {"changed": False, "token": client.registration_token(scope), "server_version": client.version.raw}
        return register(module, client, scope)

    run(module, action)


def registration_method(module, client) -> str:
    wanted = module.params["registration"]
    if wanted == "auto":
        api = client.version.flavour == "forgejo" and client.version.has_runner_management
        wanted = "api" if api else "protocol"
    if wanted == "api":
        client.require_runner_registration()
    elif module.params["ephemeral"]:
        module.fail_json(msg="ephemeral needs the register API of Forgejo 15 (registration=api)")
    return wanted


def register(module, client, scope):
    name = module.params["runner_name"]
    method = registration_method(module, client)
    listable = client.version.has_runner_management
    existing = client.list_runners(scope) if listable else []
    names_before = sorted(r["name"] for r in existing)
    same_name = [r for r in existing if r["name"] == name]
    result = {"server_version": client.version.raw}
    if same_name:
        found = min(same_name, key=lambda r: r["id"])
        if len(same_name) > 1:
            module.warn(f"{len(same_name)} runners are named {name} in {scope}; reporting the oldest, id {found['id']}")
        runner = {"id": found["id"], "uuid": found["uuid"], "name": name, "token": None, "created": False}
        return {**result, "changed": False, "runner": {**runner, "registration": method}}
    runner = {"id": None, "uuid": None, "name": name, "token": None, "created": True, "registration": method}
    if not module.check_mode:
        if method == "api":
            created = client.register_runner(scope, name, module.params["description"], module.params["ephemeral"])
        else:
            labels, version = module.params["labels"], module.params["runner_version"]
            created = client.register_with_token(client.registration_token(scope), name, labels, version)
        runner.update(id=created.get("id"), uuid=created.get("uuid"), token=created.get("token"))
    if module._diff:
        result["diff"] = {"before": {"runners": names_before}, "after": {"runners": sorted([*names_before, name])}}
    return {**result, "changed": True, "runner": runner}


if __name__ == "__main__":
    main()
