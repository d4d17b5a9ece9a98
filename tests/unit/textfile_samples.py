"""The samples of a node_exporter textfile (.prom) as the unit tests read them."""

from __future__ import annotations

from pathlib import Path


def samples(path: Path) -> dict[str, float]:
    """'name{labels}' -> value, for every sample line of the file."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}
