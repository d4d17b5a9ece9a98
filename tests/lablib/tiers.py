"""The two tiers of the integration tests.

``make test`` (CI's gate) runs every capability once against its real part; ``make test-extended`` (FR_EXTENDED=1)
also runs the exhaustive matrices (every kill and crash point, every bad input) and the longest end-to-end scenarios.
A test or case of the extended tier is marked ``extended`` (or calls ``only_extended()``) and shows as skipped in
the gate, with the command that runs it.
"""

from __future__ import annotations

import os

import pytest

EXTENDED = os.environ.get("FR_EXTENDED") == "1"
REASON = "extended tier: make test-extended runs it"
extended = pytest.mark.extended


def only_extended() -> None:
    """Skips the calling test in the gate."""
    if not EXTENDED:
        pytest.skip(REASON)


def gate_keeps(cases: list, *indices: int) -> list:
    """The cases of a parametrize list, those at ``indices`` in the gate and the others marked extended."""
    return [case if i in indices else pytest.param(*_values(case), marks=extended) for i, case in enumerate(cases)]


def _values(case) -> tuple:
    return case if isinstance(case, tuple) else (case,)
