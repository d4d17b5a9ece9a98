# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deleting many offline runner registrations at the forge's own speed, keeping any that came back online."""

from __future__ import annotations

import time
import typing as t
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import (
    ForgejoClient,
    ForgejoError,
    Scope,
)

# Candidates per read of which runners are online: a runner that comes back online is seen by the next read,
# so at most this many DELETEs, plus those queued, separate a runner's last check from its own deletion.
RECHECK_EVERY = 100
QUEUED_PER_WORKER = 2  # DELETEs handed to the pool ahead, so that no worker waits for the next one
PROGRESS_EVERY = 10.0  # seconds between progress messages


@dataclass
class PruneOutcome:
    deleted: list[dict[str, t.Any]] = field(default_factory=list)
    kept_online: list[dict[str, t.Any]] = field(default_factory=list)
    already_gone: list[dict[str, t.Any]] = field(default_factory=list)
    error: ForgejoError | None = None


class Pruner:
    """Deletes candidates, oldest first, with up to parallelism DELETEs in flight; stops at the first failure.

    Before every RECHECK_EVERY candidates, one read of the head of the listing tells which runners are online
    now, and those are kept; DELETEs already in flight go on meanwhile. When the server does not list online
    runners first (the first listing showed another order, or a later read does), each runner is read on its
    own just before its DELETE.
    """

    def __init__(self, client: ForgejoClient, scope: Scope, parallelism: int, progress: t.Callable[[str], None]):
        self.client, self.scope, self.parallelism, self.progress = client, scope, parallelism, progress
        self.read_each = False
        self.outcome = PruneOutcome()

    def run(self, candidates: list[dict[str, t.Any]], listed_online_first: bool) -> PruneOutcome:
        todo = sorted(candidates, key=lambda r: r["id"])
        self.read_each = not listed_online_first
        started = reported = time.monotonic()
        online: dict[int, dict[str, t.Any]] = {}
        in_flight: set[Future] = set()
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            for index, runner in enumerate(todo):
                if index % RECHECK_EVERY == 0 and not self.read_each:
                    online = self._online_now()
                if runner["id"] in online:
                    self.outcome.kept_online.append(online[runner["id"]])
                    continue
                if len(in_flight) >= QUEUED_PER_WORKER * self.parallelism:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    self._collect(done)
                if self.outcome.error:
                    break
                in_flight.add(pool.submit(self._read_and_delete if self.read_each else self._delete, runner))
                if time.monotonic() - reported >= PROGRESS_EVERY:
                    reported = time.monotonic()
                    done_so_far = f"pruned {len(self.outcome.deleted)} of {len(todo)} runners in {self.scope}"
                    self.progress(f"{done_so_far} in {reported - started:.0f} s")
            self._collect(wait(in_flight).done)
        for found in (self.outcome.deleted, self.outcome.kept_online, self.outcome.already_gone):
            found.sort(key=lambda r: r["id"])
        return self.outcome

    def _online_now(self) -> dict[int, dict[str, t.Any]]:
        try:
            online = self.client.online_runners(self.scope)
        except ForgejoError as exc:
            self.outcome.error = exc
            return {}
        self.read_each = online is None
        return {r["id"]: r for r in online or []}

    def _collect(self, done: t.Iterable[Future]) -> None:
        found = {"deleted": self.outcome.deleted, "online": self.outcome.kept_online, "gone": self.outcome.already_gone}
        for future in done:
            try:
                kind, runner = future.result()
            except ForgejoError as exc:
                self.outcome.error = self.outcome.error or exc
                continue
            found[kind].append(runner)

    def _delete(self, runner: dict[str, t.Any]) -> tuple[str, dict[str, t.Any]]:
        return ("deleted" if self.client.delete_runner(self.scope, runner["id"]) else "gone"), runner

    def _read_and_delete(self, runner: dict[str, t.Any]) -> tuple[str, dict[str, t.Any]]:
        try:
            current = self.client.get_runner(self.scope, runner["id"])
        except ForgejoError as exc:
            if exc.status == 404:
                return "gone", runner
            raise
        if current["status"] != "offline":
            return "online", current
        return self._delete(runner)
