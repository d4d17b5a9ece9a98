"""The textfile writer: Prometheus' text format, escaped labels, and an atomic replacement of one file."""

from __future__ import annotations

import pytest

from ansible_collections.foundation.runners.plugins.module_utils._metrics_textfile import Metric, render, write


def test_render_help_type_and_samples_with_sorted_escaped_labels():
    text = render(
        [
            Metric("a_total", "Repairs.\nSecond line.", "counter").add(3, instance='x"y', b="back\\slash"),
            Metric("b_seconds", "When.").add(1.5).add(float("nan"), kind="nan"),
        ]
    )
    assert text == (
        "# HELP a_total Repairs. Second line.\n"
        "# TYPE a_total counter\n"
        'a_total{b="back\\\\slash",instance="x\\"y"} 3\n'
        "# HELP b_seconds When.\n"
        "# TYPE b_seconds gauge\n"
        "b_seconds 1.5\n"
        'b_seconds{kind="nan"} NaN\n'
    )


def test_a_bad_metric_name_is_refused():
    with pytest.raises(ValueError, match="'bad-name' is not a Prometheus metric name"):
        render([Metric("bad-name", "x").add(1)])


def test_write_replaces_one_file_and_adds_its_time(tmp_path):
    path = write(str(tmp_path), "bridge", [Metric("x", "y").add(1)], 1700000000)
    again = write(str(tmp_path), "bridge", [Metric("x", "y").add(2)], 1700000060)
    assert path == again == str(tmp_path / "foundation-runners-bridge.prom")
    text = (tmp_path / "foundation-runners-bridge.prom").read_text()
    assert "x 2\n" in text
    assert 'foundation_runners_metrics_written_timestamp_seconds{writer="bridge"} 1700000060\n' in text
    assert [p.name for p in tmp_path.iterdir()] == ["foundation-runners-bridge.prom"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    write(str(tmp_path), "w", [Metric("x", "y").add(1)], 1)
    with pytest.raises(ValueError):
        write(str(tmp_path), "w", [Metric("no good", "y").add(2)], 2)
    assert [p.name for p in tmp_path.iterdir()] == ["foundation-runners-w.prom"]
    assert "x 1\n" in (tmp_path / "foundation-runners-w.prom").read_text()
