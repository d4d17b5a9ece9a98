"""The watchdog's decisions over random outage, blip and forge-error sequences, on an injected clock and API."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import ForgejoError, ServerVersion
from ansible_collections.foundation.runners.plugins.module_utils._watchdog_forge_signal import (
    JOBS_PATH_GITEA,
    JOBS_PATH_V11,
    JOBS_PATH_V15,
    observe,
)
from ansible_collections.foundation.runners.plugins.module_utils._watchdog_policy import (
    FORGE_ERROR,
    PRIMARY_OFFLINE,
    PRIMARY_ONLINE,
    Observation,
    Settings,
    State,
    decide,
    status_text,
)

OFFLINE_AFTER = 60  # the forge's offline threshold
POLL = 10
SETTINGS = Settings(start_after=3, stop_after=2)
CONFIG = {"primary_uuid": "p-uuid", "standby_uuid": "s-uuid", "scope": "instance", "labels": ["fenced"]}


@dataclass
class World:
    """The truth the forge is asked about: the primary's outages, forge outages, jobs and the standby unit."""

    primary_down: list[tuple[int, int]]
    forge_down: list[tuple[int, int]]
    jobs: list[tuple[int, int]]  # (arrival, duration)
    now: int = 0
    standby_on: bool = False
    draining: bool = False
    standby_job_ends: int = -1
    log: list[tuple[int, str]] = field(default_factory=list)

    def primary_contact(self) -> int:
        """When the primary last talked to the forge (now while it is up)."""
        for start, end in self.primary_down:
            if start <= self.now < end:
                return start
        return self.now

    def standby_busy(self) -> bool:
        return self.standby_job_ends > self.now


class FakeClient:
    """The ForgejoClient surface observe() uses, answering from the World."""

    def __init__(self, world: World, version: str = "15.0.3+gitea-1.22.0"):
        self.world, self.version = world, ServerVersion.parse(version)
        self.paths: list[str] = []

    def _check_forge(self, path: str) -> None:
        self.paths.append(path)
        if any(start <= self.world.now < end for start, end in self.world.forge_down):
            raise ForgejoError("GET", "http://forge" + path, None, "cannot connect: [Errno 111] Connection refused")

    def list_runners(self, scope):
        self._check_forge(scope.runners_path)
        primary = "offline" if self.world.now - self.world.primary_contact() >= OFFLINE_AFTER else "idle"
        standby = "offline"
        if self.world.standby_on or self.world.draining:
            standby = "active" if self.world.standby_busy() else "idle"
        return [
            {"id": 1, "uuid": "p-uuid", "name": "crunchy01", "status": primary},
            {"id": 2, "uuid": "s-uuid", "name": "brix02", "status": standby},
        ]

    def request(self, method, path, query=None):
        self._check_forge(path)
        return [{"id": 1, "status": "waiting", "runs_on": ["fenced"]}], {}


def random_world(rng: random.Random, length: int = 4000) -> World:
    down, forge, jobs, t = [], [], [], 0
    while t < length:
        t += rng.randint(30, 400)
        span = rng.choice([rng.randint(3, 55), rng.randint(5, 59), rng.randint(90, 500)])  # blips and outages
        down.append((t, t + span))
        t += span
    t = rng.randint(0, 600)
    while t < length:
        span = rng.randint(20, 150)
        forge.append((t, t + span))
        t += span + rng.randint(300, 1500)
    t = 0
    while t < length:
        t += rng.randint(10, 90)
        jobs.append((t, rng.randint(5, 150)))
    return World(down, forge, jobs)


def covered_by_now(world: World, now: int) -> bool:
    """True when the primary has been down long enough that the standby must run, with no forge outage since."""
    since = world.primary_contact()
    due = since + OFFLINE_AFTER + SETTINGS.start_after * POLL
    return now >= due and not any(fs < now and fe > since for fs, fe in world.forge_down)


def simulate(world: World, length: int = 4000) -> dict[str, int]:
    state, client = State(), FakeClient(world)
    counts = {"flaps": 0, "killed": 0, "starts": 0, "stops": 0, "standby_jobs": 0, "uncovered": 0}
    pending = list(world.jobs)
    for now in range(length):
        world.now = now
        primary_up = world.primary_contact() == now
        if world.draining and not world.standby_busy():
            world.draining = False
        while pending and pending[0][0] <= now:
            if primary_up:
                pending.pop(0)
            elif world.standby_on and not world.standby_busy():
                world.standby_job_ends = now + pending.pop(0)[1]
                counts["standby_jobs"] += 1
            else:
                break
        if now % POLL:
            continue
        busy_before = world.standby_busy()
        decision = decide(state, observe(client, CONFIG, state, now), SETTINGS)
        outage = now - world.primary_contact()
        if decision.action == "start":
            counts["starts"] += 1
            counts["flaps"] += outage < OFFLINE_AFTER  # started for a blip, or while the primary was up
            world.standby_on = True
        elif decision.action == "stop":
            counts["stops"] += 1
            counts["flaps"] += outage >= OFFLINE_AFTER  # stopped during a real outage (a blip is no outage)
            counts["killed"] += busy_before  # stricter than the drain needs: never stop a busy standby at all
            world.standby_on, world.draining = False, busy_before
        counts["uncovered"] += covered_by_now(world, now) and not world.standby_on
        if any(s <= now < e for s, e in world.forge_down):
            assert decision.action == "hold" and "forge error" in decision.reason
    return counts


@pytest.mark.parametrize("seed", range(24))
def test_random_outages_and_blips_give_no_flap_and_no_killed_job(seed):
    world = random_world(random.Random(seed))
    counts = simulate(world)
    assert counts["flaps"] == 0, counts
    assert counts["killed"] == 0, counts
    assert counts["uncovered"] == 0, counts
    assert counts["starts"] > 0 and counts["standby_jobs"] > 0, counts
    assert counts["starts"] - counts["stops"] in (0, 1)


def test_blips_alone_never_start_the_standby():
    world = World([(100 + 200 * i, 100 + 200 * i + 20 + i) for i in range(15)], [], [])
    assert simulate(world)["starts"] == 0


def test_forge_error_holds_and_keeps_the_streaks():
    state = State(standby="running", online_streak=1)
    decision = decide(state, Observation(5, FORGE_ERROR, "[502] Bad Gateway"), SETTINGS)
    assert decision.action == "hold"
    assert "forge error, standby stays running: [502] Bad Gateway" in decision.reason
    assert (state.standby, state.online_streak) == ("running", 1)


def test_stop_waits_while_the_standby_runs_a_job():
    state = State(standby="running", online_streak=1)
    decision = decide(state, Observation(5, PRIMARY_ONLINE, "primary idle", standby_busy=True), SETTINGS)
    assert decision.action == "hold" and "stop deferred" in decision.reason
    assert decide(state, Observation(15, PRIMARY_ONLINE, "primary idle"), SETTINGS).action == "stop"
    assert state.standby == "stopped" and state.changed_at == 15


def test_status_names_state_reason_and_observations():
    state = State()
    for at in (10, 20, 30):
        decide(state, Observation(at, PRIMARY_OFFLINE, f"primary crunchy01 offline at {at}"), SETTINGS)
    text = status_text(state, 40)
    assert text.startswith("standby: running (since 10 s ago)")
    assert "why: primary offline: primary crunchy01 offline at 30 (offline 3/3" in text
    assert "  10 s ago: primary offline: primary crunchy01 offline at 30" in text


def test_state_round_trips_through_a_dict():
    state = State(standby="running", offline_streak=4, waiting_since={"7": 12.0})
    assert State.from_dict({**state.to_dict(), "unknown_future_key": 1}) == state


def test_primary_found_by_id_where_the_forge_lists_no_uuid():
    obs = observe(FakeClient(World([], [], [])), {"primary_id": 1, "standby_id": 2, "scope": "instance"}, State(), 0)
    assert (obs.primary, obs.detail) == (PRIMARY_ONLINE, "primary crunchy01 idle, standby offline")


def test_unregistered_primary_counts_as_offline():
    world = World([], [], [])
    obs = observe(FakeClient(world), {**CONFIG, "primary_uuid": "gone"}, State(), 0)
    assert obs.primary == PRIMARY_OFFLINE and "gone is not registered" in obs.detail


class TestJobQueueFallback:
    """Forgejo 11 to 14: no runner list, so the age of the oldest waiting fenced job is the signal."""

    def test_v11_starts_after_a_job_waited_past_the_threshold(self):
        world, state = World([], [], []), State()
        client = FakeClient(world, "11.0.15+gitea-1.22.0")
        actions = []
        for now in range(0, 120, POLL):
            world.now = now
            actions.append(decide(state, observe(client, CONFIG, state, now), SETTINGS).action)
        assert set(client.paths) == {JOBS_PATH_V11}
        assert actions.index("start") == (OFFLINE_AFTER + (SETTINGS.start_after - 1) * POLL) // POLL
        assert state.waiting_since == {"1": 0}

    def test_v11_forgets_finished_jobs_and_stops_when_the_queue_stays_empty(self):
        world, state = World([], [], []), State(standby="running", waiting_since={"1": 0})
        client = FakeClient(world, "11.0.15+gitea-1.22.0")
        client.request = lambda method, path, query=None: ([], {})
        assert decide(state, observe(client, CONFIG, state, 100), SETTINGS).action == "hold"
        assert decide(state, observe(client, CONFIG, state, 110), SETTINGS).action == "stop"
        assert state.waiting_since == {}

    def test_v11_forge_error_holds(self):
        world, state = World([], [(0, 100)], []), State(standby="running")
        obs = observe(FakeClient(world, "11.0.15+gitea-1.22.0"), CONFIG, state, 0)
        assert obs.primary == FORGE_ERROR and "Connection refused" in obs.detail
        assert decide(state, obs, SETTINGS).action == "hold"

    def test_forced_job_signal_on_forgejo_15_uses_the_new_path(self):
        client = FakeClient(World([], [], []))
        observe(client, {**CONFIG, "signal": "jobs"}, State(), 0)
        assert client.paths == [JOBS_PATH_V15]

    def test_gitea_lists_queued_jobs_with_their_labels(self):
        client = FakeClient(World([], [], []), "1.27.3")
        asked = []

        def request(method, path, query=None):
            asked.append((path, query))
            jobs = [
                {"id": 4, "labels": ["fenced"], "status": "queued"},
                {"id": 5, "labels": ["heavy"], "status": "queued"},
            ]
            return {"jobs": jobs, "total_count": 2}, {}

        client.request = request
        state = State()
        obs = observe(client, {**CONFIG, "signal": "jobs"}, state, 0)
        assert asked == [(JOBS_PATH_GITEA, {"status": "queued", "limit": 50})]
        assert state.waiting_since == {"4": 0} and "1 fenced job(s) waiting" in obs.detail
