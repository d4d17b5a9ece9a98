from __future__ import annotations

import pytest

# The logic alone: importing the filter plugin would load ansible's controller side into this process.
from ansible_collections.foundation.runners.plugins.plugin_utils._checks import failed


def test_every_failure_is_named_in_order_and_skipped_checks_are_not_made():
    checks = [
        {"ok": False, "msg": "a_var is wrong. "},
        {"ok": True, "msg": "b_var is fine."},
        {"when": False, "ok": False, "msg": "c_var is not checked here."},
        {"when": True, "ok": False, "msg": "d_var is wrong too."},
    ]
    assert failed(checks) == ["a_var is wrong.", "d_var is wrong too."]


def test_all_pass():
    assert failed([{"ok": True, "msg": "x"}]) == []
    assert failed([]) == []


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([{"ok": "False", "msg": "port_var is wrong."}], "check port_var: ok is str, not a boolean"),
        ([{"when": "yes", "ok": True, "msg": "x_var"}], "check x_var: when is str, not a boolean"),
        ([{"ok": True}], "check #0 is not a mapping with ok and msg"),
        ([{"msg": "y_var"}], "check y_var: ok is NoneType, not a boolean"),
        ({"ok": True, "msg": "x"}, "expected a list of checks, got dict"),
    ],
)
def test_bad_checks_are_refused(checks, expected):
    with pytest.raises(ValueError, match=expected):
        failed(checks)
