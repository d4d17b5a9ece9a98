# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the standby watchdog reads from the forge: one observation of the primary runner per poll."""

from __future__ import annotations

import typing as t

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import (
    FeatureUnsupported,
    ForgejoClient,
    ForgejoError,
    Scope,
    page_items,
)
from ansible_collections.foundation.runners.plugins.module_utils._watchdog_policy import (
    FORGE_ERROR,
    PRIMARY_OFFLINE,
    PRIMARY_ONLINE,
    Observation,
    State,
    oldest_wait,
)

# Forgejo 15 moved the admin jobs listing under /admin/actions; 11 to 14 have it at /admin/runners/jobs.
JOBS_PATH_V15 = "/admin/actions/runners/jobs"
JOBS_PATH_V11 = "/admin/runners/jobs"
# Gitea (the lab's stand-in) lists jobs under /admin/actions/jobs, "queued" while they wait, with their labels.
JOBS_PATH_GITEA = "/admin/actions/jobs"


def observe(client: ForgejoClient, config: dict[str, t.Any], state: State, now: float) -> Observation:
    """One observation: the runners API where the forge has it, else the age of the oldest waiting job."""
    try:
        if client.version.has_runner_management and config.get("signal", "auto") != "jobs":
            return _from_runners(client, config, now)
        return _from_jobs(client, config, state, now)
    except (ForgejoError, FeatureUnsupported) as exc:
        return Observation(now, FORGE_ERROR, str(exc))


def _from_runners(client: ForgejoClient, config: dict[str, t.Any], now: float) -> Observation:
    runners = client.list_runners(Scope.from_params(config))
    primary = find_runner(runners, config.get("primary_uuid"), config.get("primary_id"))
    if primary is None:
        # A registration the forge no longer knows can never come back online: treat it as offline, loudly.
        who = config.get("primary_uuid") or f"id {config.get('primary_id')}"
        return Observation(now, PRIMARY_OFFLINE, f"primary {who} is not registered on the forge")
    standby = find_runner(runners, config.get("standby_uuid"), config.get("standby_id")) or {}
    busy = standby.get("status") == "active"
    seen = PRIMARY_OFFLINE if primary["status"] == "offline" else PRIMARY_ONLINE
    detail = f"primary {primary['name']} {primary['status']}, standby {standby.get('status', 'unknown')}"
    return Observation(now, seen, detail, standby_busy=busy)


def find_runner(runners: list[dict[str, t.Any]], uuid: str | None, runner_id: int | None) -> dict[str, t.Any] | None:
    """The runner with this uuid (Forgejo), or with this id where the forge lists no uuids (Gitea)."""
    for runner in runners:
        if (uuid and runner["uuid"] == uuid) or (runner_id and runner["id"] == int(runner_id)):
            return runner
    return None


def waiting_job_ids(client: ForgejoClient, labels: str) -> list[str]:
    """The ids of the jobs waiting for a runner with these labels (comma-separated), from the admin jobs listing."""
    if client.version.flavour == "gitea":
        wanted = set(labels.split(","))
        data, _headers = client.request("GET", JOBS_PATH_GITEA, {"status": "queued", "limit": 50})
        return [str(job.get("id")) for job in page_items(data) if wanted & set(job.get("labels") or [])]
    path = JOBS_PATH_V15 if client.version.release[0] >= 15 else JOBS_PATH_V11
    data, _headers = client.request("GET", path, {"labels": labels})
    return [str(job.get("id")) for job in page_items(data) if str(job.get("status", "waiting")) == "waiting"]


def _from_jobs(client: ForgejoClient, config: dict[str, t.Any], state: State, now: float) -> Observation:
    labels = ",".join(config.get("labels") or ["fenced"])
    waiting = waiting_job_ids(client, labels)
    age = oldest_wait(state, waiting, now)
    threshold = float(config.get("job_wait_threshold", 60))
    seen = PRIMARY_OFFLINE if age >= threshold else PRIMARY_ONLINE
    detail = f"{len(waiting)} {labels} job(s) waiting, oldest {age:.0f} s (threshold {threshold:.0f} s)"
    return Observation(now, seen, detail)
