#!/usr/bin/python
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: forgejo_runner_prune
short_description: Delete stale Forgejo Actions runner registrations
version_added: 0.1.0
description:
  - Deletes offline runner registrations at instance, organisation, user or repository scope through the
    runners API of Forgejo 15 or later.
  - A runner is a candidate when it is V(offline), its name matches O(names) (when given), it carries every
    label in O(labels), and it is not listed in O(keep).
  - Runners that are V(idle) or V(active) are never deleted. The O(max_deletions) cap is checked on the first
    listing, before any deletion.
  - Deletion goes oldest first, with up to O(parallelism) requests in flight over reused connections. Before
    every 100 deletions one request reads the head of the runner listing, where Forgejo and Gitea list online
    runners first, and a candidate that came back online since the listing is kept and returned in
    RV(kept_online). So at most 100 deletions, plus the few handed out ahead (two per O(parallelism)), pass
    between a runner's last status check and its own deletion, a fraction of a second on the lab forge.
  - If a server does not list online runners first, the module notices it in the listing and instead reads
    each candidate again just before deleting it, which costs one more request per runner.
  - A failure stops the run once the deletions already handed out have finished; the error result still
    lists in RV(pruned) what was deleted. Requests that fail with 429, 502, 503 or 504 are retried (O(retries)).
  - Long runs log their progress every 10 seconds through the module's log (syslog or the journal of the
    host that runs the module). Use C(async) to run a prune of many thousands of runners in the background.
  - On Forgejo older than 15 the module fails and changes nothing; there, the C(cleanup_offline_runners)
    cron task of Forgejo is the alternative.
extends_documentation_fragment:
  - foundation.runners.forgejo.CONNECTION
  - foundation.runners.forgejo
  - foundation.runners.forgejo.SCOPE
  - foundation.runners.forgejo.ON_UNSUPPORTED
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module returns what it would delete in RV(pruned) and deletes nothing.
  diff_mode:
    support: full
    details: The diff lists the runners of the scope (id, name, status) before and after.
  idempotent:
    support: full
options:
  status:
    description:
      - Statuses that make a runner a candidate. Only V(offline) is allowed; it is the default and exists so that
        the selection reads explicitly in playbooks.
    type: list
    elements: str
    default: [offline]
  names:
    description:
      - Shell-style patterns (C(fnmatch)). When given, only runners whose name matches one of them are candidates.
    type: list
    elements: str
    default: []
  labels:
    description:
      - Only runners that carry all of these labels are candidates.
    type: list
    elements: str
    default: []
  keep:
    description:
      - Runners never deleted, given by name, id or uuid.
    type: list
    elements: str
    default: []
  max_deletions:
    description:
      - Safety cap. When more runners than this would be deleted, the module fails and deletes none.
    type: int
    default: 10
  parallelism:
    description:
      - How many DELETE requests are in flight at once, from 1 to 16. The forge serialises deletions in its
        database, so more than a few does not go faster; 1 deletes strictly one at a time.
    type: int
    default: 4
author:
  - Foundation Runners maintainers (@foundation-runners)
"""

EXAMPLES = r"""
- name: Prune stale fenced runner registrations, keeping the standby
  foundation.runners.forgejo_runner_prune:
    api_url: https://forge.example.org
    api_token: "{{ vault_forgejo_admin_token }}"
    labels: [fenced]
    names: ["runner-*"]
    keep: [runner-standby]
    max_deletions: 5
  no_log: false

- name: Preview with check mode and diff
  foundation.runners.forgejo_runner_prune:
    scope: org
    org: fleet
  check_mode: true
  diff: true
"""

RETURN = r"""
pruned:
  description: The runners deleted (in check mode, the runners that would be deleted).
  returned: success
  type: list
  elements: dict
  sample: [{"id": 12, "uuid": "4b2c...", "name": "runner-01", "labels": ["fenced"], "status": "offline"}]
kept_online:
  description:
    - Candidates by name and labels that were kept because they were idle or active, in the first listing
      or when checked again during the run (then with the status read then).
  returned: success
  type: list
  elements: dict
already_gone:
  description: Candidates that the server no longer knew when the module came to delete them.
  returned: success
  type: list
  elements: dict
listed:
  description:
    - Every runner of the scope as the module listed it before pruning, sorted by id (the fields of
      M(foundation.runners.forgejo_runner_info)'s C(runners)), so that a play that prunes needs no listing of its own.
  returned: success
  type: list
  elements: dict
  version_added: 0.3.0
supported:
  description: False when O(on_unsupported=skip) skipped the module; C(reason) then says why.
  returned: success
  type: bool
server_version:
  description: The version the server reported.
  returned: success
  type: str
"""

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import online_first, select_runners
from ansible_collections.foundation.runners.plugins.module_utils._forgejo_module import (
    ON_UNSUPPORTED_ARGS,
    forgejo_module,
    run,
)
from ansible_collections.foundation.runners.plugins.module_utils._forgejo_prune import Pruner

MAX_PARALLELISM = 16
CRON_HINT = "Older servers prune with Forgejo's cron task: [cron.cleanup_offline_runners] ENABLED = true in app.ini."


def main() -> None:
    module = forgejo_module(
        {
            **ON_UNSUPPORTED_ARGS,
            "status": {"type": "list", "elements": "str", "default": ["offline"]},
            "names": {"type": "list", "elements": "str", "default": []},
            "labels": {"type": "list", "elements": "str", "default": []},
            "keep": {"type": "list", "elements": "str", "default": []},
            "max_deletions": {"type": "int", "default": 10},
            "parallelism": {"type": "int", "default": 4},
        }
    )
    params = module.params
    _check_params(module)

    def action(client, scope):
        client.require_runner_management("Pruning runners", CRON_HINT)
        runners = client.list_runners(scope)
        matching = select_runners(runners, params["names"], params["labels"])
        keep = set(params["keep"])
        matching = [r for r in matching if not keep & {r["name"], str(r["id"]), r["uuid"]}]
        candidates = [r for r in matching if r["status"] == "offline"]
        kept_online = [r for r in matching if r["status"] != "offline"]
        if len(candidates) > params["max_deletions"]:
            names = ", ".join(f"{r['name']} (id {r['id']})" for r in candidates)
            module.fail_json(
                msg=f"{len(candidates)} runners would be deleted in {scope}, more than max_deletions="
                f"{params['max_deletions']}; nothing was deleted. Candidates: {names}"
            )
        if module.check_mode:
            pruned, kept_now, gone = sorted(candidates, key=lambda r: r["id"]), [], []
        else:
            pruner = Pruner(client, scope, params["parallelism"], progress=module.log)
            done = pruner.run(candidates, listed_online_first=online_first(runners))
            pruned, kept_now, gone = done.deleted, done.kept_online, done.already_gone
            if done.error:
                module.fail_json(
                    msg=f"{done.error}; {len(pruned)} of {len(candidates)} runners were deleted before it failed",
                    changed=bool(pruned),
                    pruned=pruned,
                    status=done.error.status,
                    url=done.error.url,
                    method=done.error.method,
                )
        result = {
            "changed": bool(pruned),
            "pruned": pruned,
            "kept_online": kept_online + kept_now,
            "already_gone": gone,
            "listed": sorted(runners, key=lambda r: r["id"]),
            "server_version": client.version.raw,
        }
        if module._diff:
            result["diff"] = _diff(runners, pruned)
        return result

    run(module, action, skipped={"pruned": [], "kept_online": [], "already_gone": [], "listed": []})


def _check_params(module) -> None:
    params = module.params
    if set(params["status"]) != {"offline"}:
        module.fail_json(
            msg=f"status may only select offline runners; idle and active runners are never deleted "
            f"(got {params['status']})"
        )
    if params["max_deletions"] < 0:
        module.fail_json(msg=f"max_deletions must be 0 or more, got {params['max_deletions']}")
    if not 1 <= params["parallelism"] <= MAX_PARALLELISM:
        module.fail_json(msg=f"parallelism must be from 1 to {MAX_PARALLELISM}, got {params['parallelism']}")


def _diff(runners: list, pruned: list) -> dict:
    """The runners listed before and after, one line each."""
    removed = {r["id"] for r in pruned}
    listed = sorted(runners, key=lambda r: r["id"])
    before = [f"{r['id']} {r['name']} {r['status']}" for r in listed]
    after = [f"{r['id']} {r['name']} {r['status']}" for r in listed if r["id"] not in removed]
    return {"before": {"runners": before}, "after": {"runners": after}}


if __name__ == "__main__":
    main()
