# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet seen from the forge, per runner label, for node_exporter's textfile collector.

Each run (started by a systemd timer on a host of the operator's choice, with a read-only token) lists the runners
(Forgejo 15 and later) and the jobs waiting per label, and replaces foundation-runners-forge.prom. The entry point is
the role's /usr/local/sbin/foundation-runners-forge-metrics, which calls main().
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import typing as t

from ansible_collections.foundation.runners.plugins.module_utils import _metrics_textfile as textfile
from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import (
    FeatureUnsupported,
    ForgejoClient,
    ForgejoError,
    Scope,
    timer_program_params,
)
from ansible_collections.foundation.runners.plugins.module_utils._watchdog_forge_signal import waiting_job_ids
from ansible_collections.foundation.runners.plugins.module_utils._watchdog_policy import waited

DEFAULT_CONFIG = "/etc/foundation-runners/forge-metrics.json"
PREFIX = "foundation_runners_forge_"
ONLINE = ("idle", "active")


def has_label(runner: dict[str, t.Any], label: str) -> bool:
    """A runner's label is its name, or name:scheme (fenced:docker://image) where the forge keeps the whole."""
    return any(name == label or name.startswith(label + ":") for name in runner.get("labels", []))


def collect(client: ForgejoClient, config: dict[str, t.Any], seen: dict[str, dict[str, float]], now: float):
    """The metrics of one run; seen (job first-seen times per label) is updated in place."""
    labels = list(config.get("labels") or ["fenced"])
    up = textfile.Metric(PREFIX + "up", "1 when the forge answered every request of the last run.")
    api = textfile.Metric(PREFIX + "runners_api", "1 when the forge has the runners API (Forgejo 15 and later).")
    online = textfile.Metric(PREFIX + "runners_online", "Runners with the label that the forge lists idle or active.")
    registered = textfile.Metric(PREFIX + "runners_registered", "Runners with the label that the forge knows.")
    waiting = textfile.Metric(PREFIX + "jobs_waiting", "Jobs waiting for a runner with the label.")
    oldest = textfile.Metric(
        PREFIX + "oldest_waiting_job_age_seconds", "How long the oldest job waiting for the label has waited."
    )
    try:
        has_api = client.version.has_runner_management
        runners = client.list_runners(Scope.from_params(config)) if has_api else []
        for label in labels:
            ids = waiting_job_ids(client, label)
            waiting.add(len(ids), label=label)
            seen[label], age = waited(seen.get(label, {}), ids, now)
            oldest.add(age, label=label)
            if has_api:
                mine = [r for r in runners if has_label(r, label)]
                online.add(sum(1 for r in mine if r["status"] in ONLINE), label=label)
                registered.add(len(mine), label=label)
    except (ForgejoError, FeatureUnsupported) as exc:
        _say(sys.stderr, f"forge-metrics: {exc}")
        return [up.add(0)]
    return [up.add(1), api.add(1 if has_api else 0), online, registered, waiting, oldest]


def load_seen(path: str) -> dict[str, dict[str, float]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return {}


def save_seen(path: str, seen: dict[str, dict[str, float]]) -> None:
    textfile.replace_file(path, json.dumps(seen))


def main(argv: list[str] | None = None, clock: t.Callable[[], float] = time.time) -> int:
    parser = argparse.ArgumentParser(description="Write the forge's view of the runner fleet for node_exporter.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
        missing = [k for k in ("api_url", "token_file", "state_file", "textfile_dir") if not config.get(k)]
        if missing:
            raise ValueError(f"{args.config}: missing {', '.join(missing)}")
        params = timer_program_params(config)
    except (OSError, ValueError) as exc:
        _say(sys.stderr, f"forge-metrics: cannot start: {exc}")
        return 2
    seen = load_seen(config["state_file"])
    client = ForgejoClient(params)
    try:
        metrics = collect(client, {**config, **params}, seen, clock())
    finally:
        client.close()
    try:
        save_seen(config["state_file"], seen)
        textfile.write(config["textfile_dir"], "forge", metrics, clock())
    except OSError as exc:
        _say(sys.stderr, f"forge-metrics: cannot write: {exc}")
        return 1
    return 0 if metrics[0].samples[0][1] == 1 else 1


def _say(stream: t.TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()
