# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metrics in Prometheus' text format, written for node_exporter's textfile collector.

A writer (the watchdog, the bridge rule's script, the forge exporter) renders its gauges and counters and replaces
its one file, foundation-runners-<writer>.prom, atomically: node_exporter never reads half a file.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import typing as t
from dataclasses import dataclass, field

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
Labels = t.Dict[str, str]


@dataclass
class Metric:
    name: str
    help: str
    kind: str = "gauge"  # or "counter"
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Metric:
        self.samples.append((labels, value))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def render(metrics: t.Iterable[Metric]) -> str:
    """The exposition text: HELP, TYPE and the samples of each metric, in the order given."""
    lines: list[str] = []
    for metric in metrics:
        if not NAME.match(metric.name):
            raise ValueError(f"{metric.name!r} is not a Prometheus metric name")
        text = metric.help.replace("\\", "\\\\").replace("\n", " ")
        lines.append(f"# HELP {metric.name} {text}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in metric.samples:
            inner = ",".join(f'{key}="{_escape(str(labels[key]))}"' for key in sorted(labels))
            lines.append(f"{metric.name}{{{inner}}} {_number(value)}" if inner else f"{metric.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def replace_file(path: str, data: str | bytes, mode: int = 0o600, ids: tuple[int, int] | None = None) -> None:
    """Replace path with data (text is written as UTF-8) atomically: a reader (node_exporter, the next run) never
    sees half a file. The temporary file is hidden and ends in .tmp, so that no *.prom or state reader picks it up;
    ids, a (uid, gid), gives it its owner before it takes the path's place."""
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            if ids is not None:
                os.fchown(handle.fileno(), *ids)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(directory: str, writer: str, metrics: list[Metric], now: float) -> str:
    """Replace <directory>/foundation-runners-<writer>.prom with metrics and the time they were written."""
    written = Metric(
        "foundation_runners_metrics_written_timestamp_seconds",
        "When a foundation.runners writer last wrote its metrics (Unix time).",
    ).add(now, writer=writer)
    path = os.path.join(directory, f"foundation-runners-{writer}.prom")
    replace_file(path, render([*metrics, written]), 0o644)
    return path
