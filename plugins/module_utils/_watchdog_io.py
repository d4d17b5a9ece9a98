# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The standby watchdog's I/O: configuration, state file, one poll of the forge, the standby's systemd unit.

Each run (started by a systemd timer) observes once, decides once and prints one line for the journal.
The entry point is the role's /usr/local/sbin/foundation-runner-watchdog, which calls main().
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import typing as t

from ansible_collections.foundation.runners.plugins.module_utils import _metrics_textfile as textfile
from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import (
    ForgejoClient,
    timer_program_params,
)
from ansible_collections.foundation.runners.plugins.module_utils._watchdog_forge_signal import observe
from ansible_collections.foundation.runners.plugins.module_utils._watchdog_policy import (
    FORGE_ERROR,
    PRIMARY_OFFLINE,
    PRIMARY_ONLINE,
    Decision,
    Settings,
    State,
    decide,
    status_text,
)

DEFAULT_CONFIG = "/etc/foundation-runners/watchdog.json"
Runner = t.Callable[..., subprocess.CompletedProcess]


def load_config(path: str) -> dict[str, t.Any]:
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    missing = [k for k in ("api_url", "token_file", "unit", "state_file") if not config.get(k)]
    if not (config.get("primary_uuid") or config.get("primary_id")):
        missing.append("primary_uuid or primary_id")
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    return config


def load_state(path: str) -> State:
    try:
        with open(path, encoding="utf-8") as handle:
            return State.from_dict(json.load(handle))
    except FileNotFoundError:
        return State()


def save_state(path: str, state: State) -> None:
    """Write the state atomically, readable by root only."""
    textfile.replace_file(path, json.dumps(state.to_dict(), indent=1))


class Unit:
    """The standby runner's systemd unit, through systemctl (locally, or a prefix such as ssh HOST sudo)."""

    def __init__(self, config: dict[str, t.Any], run: Runner):
        self.name = config["unit"]
        self.command = list(config.get("control_command") or ["systemctl"])
        self._run = run

    def active(self) -> bool:
        return self._call("is-active", check=False).stdout.strip() == "active"

    def apply(self, action: str) -> None:
        # stop waits for the runner's graceful shutdown: the unit's TimeoutStopSec covers its shutdown_timeout.
        self._call(action, check=True)

    def _call(self, verb: str, check: bool) -> subprocess.CompletedProcess:
        return self._run([*self.command, verb, self.name], capture_output=True, text=True, check=check)


def poll(config: dict[str, t.Any], state: State, unit: Unit, now: float) -> tuple[Decision, int]:
    """One observation, one decision, applied to the unit; the exit status says whether it was applied."""
    params = timer_program_params(config)
    client = ForgejoClient(params)
    try:
        obs = observe(client, {**config, **params}, state, now)
    finally:
        client.close()
    settings = Settings(int(config.get("start_after", 3)), int(config.get("stop_after", 2)))
    before = state.standby
    decision = decide(state, obs, settings)
    if decision.action == "hold" and obs.primary != FORGE_ERROR and now - state.unit_read_at >= _reread(config):
        decision = _reconcile(state, unit, decision, obs.standby_busy, now)
    if decision.action == "hold":
        return decision, 0
    try:
        unit.apply(decision.action)
    except (OSError, subprocess.CalledProcessError) as exc:
        state.standby = before
        detail = getattr(exc, "stderr", "") or str(exc)
        return Decision("hold", f"{decision.action} {unit.name} failed, will retry: {detail.strip()}"), 1
    state.unit_read_at = now
    return decision, 0


def _reread(config: dict[str, t.Any]) -> int:
    """Seconds between reads of a unit the watchdog has no reason to touch: each read of a VM's is an ssh login."""
    return int(config.get("unit_check_interval", 60))


def _reconcile(state: State, unit: Unit, decision: Decision, busy: bool, now: float) -> Decision:
    """Bring the unit back to what the watchdog wants when someone or something changed it."""
    active = unit.active()
    state.unit_read_at = now
    if state.standby == "running" and not active:
        return Decision("start", f"{unit.name} is not running although the primary is down; {decision.reason}")
    if state.standby == "stopped" and active and not busy:
        return Decision("stop", f"{unit.name} runs although the primary is up (strict standby); {decision.reason}")
    return decision


WATCHDOG_STATES = ("standby", "active", "holding_on_forge_error")
ACTIONS = ("start", "stop", "hold")


def metrics(state: State, decision: Decision, now: float) -> list[textfile.Metric]:
    """What node_exporter's textfile collector shows of the watchdog after a poll."""
    last = state.history[0] if state.history else {}
    if last.get("primary") == FORGE_ERROR:
        current = "holding_on_forge_error"
    else:
        current = "active" if state.standby == "running" else "standby"
    prefix = "foundation_runners_watchdog_"
    found = [
        textfile.Metric(prefix + "standby_running", "1 while the watchdog keeps the standby runner running.").add(
            1 if state.standby == "running" else 0
        ),
        textfile.Metric(prefix + "state", "The watchdog's state: 1 for the current one."),
        textfile.Metric(prefix + "last_decision", "The last poll's decision: 1 for the one taken."),
        textfile.Metric(prefix + "last_poll_timestamp_seconds", "When the watchdog last polled the forge.").add(now),
        textfile.Metric(prefix + "last_change_timestamp_seconds", "When the standby was last started or stopped.").add(
            state.changed_at
        ),
    ]
    for name in WATCHDOG_STATES:
        found[1].add(1 if name == current else 0, state=name)
    for action in ACTIONS:
        found[2].add(1 if action == decision.action else 0, action=action)
    if last.get("primary") in (PRIMARY_ONLINE, PRIMARY_OFFLINE):
        found.append(
            textfile.Metric(prefix + "primary_online", "Whether the last poll saw the primary runner online.").add(
                1 if last["primary"] == PRIMARY_ONLINE else 0
            )
        )
    return found


def main(argv: list[str] | None = None, clock: t.Callable[[], float] = time.time, run: Runner = subprocess.run) -> int:
    parser = argparse.ArgumentParser(description="Start the standby runner while the primary is offline.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--status", action="store_true", help="print the state, the last observations and why")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        state = load_state(config["state_file"])
    except (OSError, ValueError) as exc:
        _say(sys.stderr, f"watchdog: cannot start: {exc}")
        return 2
    if args.status:
        _say(sys.stdout, status_text(state, clock()))
        return 0
    try:
        decision, code = poll(config, state, Unit(config, run), clock())
    except (OSError, ValueError) as exc:
        _say(sys.stderr, f"hold: cannot poll: {exc}")
        return 1
    save_state(config["state_file"], state)
    _say(sys.stdout, f"{decision.action}: {decision.reason}")
    if config.get("textfile_dir"):
        try:
            textfile.write(config["textfile_dir"], "watchdog", metrics(state, decision, clock()), clock())
        except OSError as exc:
            _say(sys.stderr, f"watchdog: metrics not written to {config['textfile_dir']}: {exc}")
    return code


def _say(stream: t.TextIO, line: str) -> None:
    """One line for the journal (the service's stdout and stderr go there)."""
    stream.write(line + "\n")
    stream.flush()
