#!/usr/bin/python
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: forgejo_access_token
short_description: Derive a scoped Forgejo API token from a user's password, once
version_added: 0.1.0
description:
  - Creates an access token of the login user (C(POST /users/{name}/tokens), Forgejo 7 to 15 and Gitea),
    so that an operator who keeps only the admin password (in HashiCorp Vault, say) gives the collection's
    playbooks a token limited to the scopes they need, and can revoke it without touching the password.
  - The forge shows a token's value only when it is created. A token of that O(name) that exists already is
    left as it is and its value is not returned (RV(token) is absent); store the value where the inventory reads
    it (C(playbooks/forge_tokens.yml) writes it to Vault) on the run that creates it, or set
    O(rotate=true) to replace it by a new one.
  - The forge accepts only the user's own login (basic auth) for this call, never a token; with two-factor
    authentication on that account it refuses it.
  - The result that carries a token is hidden from every output, C(-vvv) included, even on a task without
    C(no_log); the registered variable keeps it.
extends_documentation_fragment:
  - foundation.runners.forgejo.CONNECTION
  - foundation.runners.forgejo.LOGIN
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details: In check mode a token that would be created, replaced or deleted is reported; nothing changes.
  diff_mode:
    support: full
    details: The diff shows the token's name and scopes before and after. Values never appear.
  idempotent:
    support: full
    details: Idempotent unless O(rotate=true), which replaces the token on every run.
options:
  name:
    description:
      - The token's name, unique among the user's tokens.
    type: str
    required: true
  scopes:
    description:
      - The token's scopes, for example C(write:admin) for the runner modules on the instance, C(read:admin) for
        the failover watchdog. C(write:X) includes C(read:X).
      - Required with O(state=present). A token's scopes cannot be changed in place; a different set fails unless
        O(rotate=true).
    type: list
    elements: str
  state:
    description:
      - V(present) makes sure the token exists; V(absent) deletes it (revokes it).
    type: str
    choices: [present, absent]
    default: present
  rotate:
    description:
      - Delete the token of that name if it exists and create a new one, whose value is returned. The old value
        stops working at once.
    type: bool
    default: false
author:
  - Foundation Runners maintainers (@foundation-runners)
"""

EXAMPLES = r"""
- name: Derive the runner modules' token from the admin password kept in Vault
  foundation.runners.forgejo_access_token:
    api_url: https://forge.example.org
    api_username: forge-admin
    api_password: "{{ lookup('community.hashi_vault.vault_kv2_get', 'forgejo/service-credentials',
                     engine_mount_point='foundation').secret.forgejoAdminPassword }}"
    name: foundation-runners
    scopes: [write:admin]
  register: runners_token
  no_log: true

- name: Revoke the watchdog's token
  foundation.runners.forgejo_access_token:
    api_url: https://forge.example.org
    api_username: forge-admin
    api_password: "{{ forge_admin_password }}"
    name: foundation-runners-watchdog
    state: absent
"""

RETURN = r"""
token:
  description: The new token's value. A secret; use C(no_log) on the task.
  returned: when this call created the token (not in check mode)
  type: str
access_token:
  description: The token's id, name, normalised scopes and last eight characters; never its value.
  returned: when the token exists after the call (or would, in check mode)
  type: dict
created:
  description: Whether this call created (or would create) the token.
  returned: success
  type: bool
server_version:
  description: The version the server reported.
  returned: success
  type: str
"""

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_module import forgejo_module, run
from ansible_collections.foundation.runners.plugins.module_utils._forgejo_tokens import (
    TokenStore,
    normalised_scopes,
    public,
)


def main() -> None:
    module = forgejo_module(
        {
            "name": {"type": "str", "required": True},
            "scopes": {"type": "list", "elements": "str"},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "rotate": {"type": "bool", "default": False},
        },
        login=True,
    )
    params = module.params
    if not params["name"].strip():
        module.fail_json(msg="name must not be empty")
    if params["state"] == "present" and not normalised_scopes(params["scopes"] or []):
        module.fail_json(msg="scopes must name at least one scope (for example write:admin) with state=present")
    if params["state"] == "absent" and (params["scopes"] or params["rotate"]):
        module.fail_json(msg="scopes and rotate apply to state=present only")
    run(module, lambda client, _scope: converge(module, client))


def converge(module, client) -> dict:
    params = module.params
    store = TokenStore(client, params["api_username"])
    found = store.named(params["name"])
    existing = public(found)  # what may be shown of it: never its value
    result = {"server_version": client.version.raw, "created": False, "access_token": existing}
    if params["state"] == "absent":
        if found and not module.check_mode:
            store.delete(found["id"])
        return {**result, "changed": found is not None, "access_token": None, **diff(module, existing, None)}
    wanted = normalised_scopes(params["scopes"])
    if existing and not params["rotate"]:
        if existing["scopes"] != wanted:
            module.fail_json(
                msg=f"token {params['name']} of {params['api_username']} exists with scopes "
                f"{', '.join(existing['scopes'])}, not {', '.join(wanted)}; a token's scopes cannot be changed. "
                "Set rotate=true to replace it (its old value stops working at once).",
                access_token=existing,
            )
        return {**result, "changed": False}
    planned = {"id": None, "name": params["name"], "scopes": wanted, "token_last_eight": None}
    result.update(changed=True, created=True, access_token=planned, **diff(module, existing, planned))
    if module.check_mode:
        return result
    if found:
        store.delete(found["id"])
    created = store.create(params["name"], wanted)
    return {**result, "token": created.get("sha1"), "access_token": public(created)}


def diff(module, before, after) -> dict:
    """Name and scopes of the shown token before and after (public() views); never a value."""
    if not module._diff:
        return {}
    shown = [{"name": tok["name"], "scopes": tok["scopes"]} if tok else {} for tok in (before, after)]
    return {"diff": {"before": shown[0], "after": shown[1]}}


if __name__ == "__main__":
    main()
