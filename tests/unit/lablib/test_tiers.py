"""The gate and the extended tier of the integration tests (tests/lablib/tiers.py)."""

from __future__ import annotations

import pytest
from lablib import tiers


def test_gate_keeps_the_cases_it_names_and_marks_the_others():
    cases = [("a", 1), ("b", 2), ("c", 3)]
    kept = tiers.gate_keeps(cases, 0, 2)
    assert kept[0] == ("a", 1) and kept[2] == ("c", 3)
    assert kept[1].values == ("b", 2) and [m.name for m in kept[1].marks] == ["extended"]


def test_a_single_value_case_stays_one_value():
    assert tiers.gate_keeps(["x", "y"], 0)[1].values == ("y",)


def test_only_extended_skips_in_the_gate(monkeypatch):
    monkeypatch.setattr(tiers, "EXTENDED", False)
    with pytest.raises(pytest.skip.Exception, match="make test-extended"):
        tiers.only_extended()
    monkeypatch.setattr(tiers, "EXTENDED", True)
    tiers.only_extended()
