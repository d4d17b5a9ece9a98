# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The standby watchdog's decisions: pure functions of the state and one observation, no I/O, no clock."""

from __future__ import annotations

import typing as t
from dataclasses import asdict, dataclass, field

HISTORY = 10  # observations kept in the state file for --status

# What one poll of the forge saw about the primary runner.
PRIMARY_ONLINE = "online"
PRIMARY_OFFLINE = "offline"
FORGE_ERROR = "error"  # the forge did not answer, or answered with an error: no information


@dataclass(frozen=True)
class Observation:
    at: float
    primary: str  # PRIMARY_ONLINE, PRIMARY_OFFLINE or FORGE_ERROR
    detail: str  # what was seen, in words: "primary idle", "[502] Bad Gateway", "oldest fenced job waited 75 s"
    standby_busy: bool = False  # the standby is running a job


@dataclass(frozen=True)
class Settings:
    start_after: int  # N consecutive "primary offline" observations start the standby
    stop_after: int  # M consecutive "primary online" observations stop it


@dataclass
class State:
    standby: str = "stopped"  # what the watchdog wants: "running" or "stopped"
    offline_streak: int = 0
    online_streak: int = 0
    changed_at: float = 0.0
    reason: str = "no observation yet"
    history: list[dict[str, t.Any]] = field(default_factory=list)
    waiting_since: dict[str, float] = field(default_factory=dict)  # job queue signal: job id -> first seen waiting
    unit_read_at: float = 0.0  # when the standby's unit state was last read (or set by a start or stop)

    @classmethod
    def from_dict(cls, data: dict[str, t.Any]) -> State:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, t.Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    action: str  # "start", "stop" or "hold"
    reason: str


def decide(state: State, obs: Observation, settings: Settings) -> Decision:
    """Update the streaks in state with obs, and say what to do with the standby and why.

    The standby starts after start_after offline observations in a row and stops after stop_after online ones,
    never while it runs a job. A forge error keeps the state as it is and breaks neither streak: an outage of the
    forge is not evidence about the primary.
    """
    state.history = ([{"at": obs.at, "primary": obs.primary, "detail": obs.detail}, *state.history])[:HISTORY]
    if obs.primary == FORGE_ERROR:
        return Decision("hold", f"forge error, standby stays {state.standby}: {obs.detail}")
    if obs.primary == PRIMARY_OFFLINE:
        state.offline_streak += 1
        state.online_streak = 0
    else:
        state.online_streak += 1
        state.offline_streak = 0
    seen = f"{obs.detail} (offline {state.offline_streak}/{settings.start_after}, "
    seen += f"online {state.online_streak}/{settings.stop_after})"
    if state.standby == "stopped" and state.offline_streak >= settings.start_after:
        return _change(state, obs, "running", "start", f"primary offline: {seen}")
    if state.standby == "running" and state.online_streak >= settings.stop_after:
        if obs.standby_busy:
            return Decision("hold", f"primary back but the standby is running a job, stop deferred: {seen}")
        return _change(state, obs, "stopped", "stop", f"primary back, standby idle: {seen}")
    return Decision("hold", f"standby stays {state.standby}: {seen}")


def _change(state: State, obs: Observation, standby: str, action: str, reason: str) -> Decision:
    state.standby, state.changed_at, state.reason = standby, obs.at, reason
    return Decision(action, reason)


def waited(since: dict[str, float], waiting_ids: list[str], now: float) -> tuple[dict[str, float], float]:
    """The first-seen times of the jobs still waiting (finished ones forgotten), and the oldest one's wait.

    Forgejo lists waiting jobs without a creation time, so a reader stamps each id when it first sees it.
    """
    kept = {job: since.get(job, now) for job in waiting_ids}
    return kept, max((now - first for first in kept.values()), default=0.0)


def oldest_wait(state: State, waiting_ids: list[str], now: float) -> float:
    """Seconds the oldest of the waiting jobs has waited, as first seen by this watchdog."""
    state.waiting_since, age = waited(state.waiting_since, waiting_ids, now)
    return age


def status_text(state: State, now: float) -> str:
    """What --status prints: the state, why, and the last observations, newest first."""
    lines = [
        f"standby: {state.standby} (since {_ago(now, state.changed_at)})",
        f"why: {state.reason}",
        f"streaks: offline {state.offline_streak}, online {state.online_streak}",
        "last observations:",
    ]
    lines += [f"  {_ago(now, o['at'])}: primary {o['primary']}: {o['detail']}" for o in state.history]
    if state.waiting_since:
        lines.append(f"waiting fenced jobs tracked: {len(state.waiting_since)}")
    return "\n".join(lines)


def _ago(now: float, then: float) -> str:
    return "never" if not then else f"{max(0, int(now - then))} s ago"
