from __future__ import annotations

import pytest

# The logic alone: importing the filter plugin would load ansible's controller side into this process.
from ansible_collections.foundation.runners.plugins.plugin_utils._vm_conflicts import conflicts as fenced_vm_conflicts

R02 = {"host": "crunchy01", "name": "runner-02", "address": "192.168.1.16/24"}


def test_distinct_vms_pass():
    assert fenced_vm_conflicts([R02, {"host": "brix02", "name": "runner-03", "address": "192.168.1.17/24"}]) == []


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (  # a second VM in the same host's list on the running runner's address
            {"host": "crunchy01", "name": "runner-09", "address": "192.168.1.16/24"},
            "address 192.168.1.16 is declared for runner-02 on crunchy01 and runner-09 on crunchy01",
        ),
        (  # another host's standby VM on that address (written without a prefix)
            {"host": "brix02", "name": "runner-03", "address": "192.168.1.16"},
            "address 192.168.1.16 is declared for runner-02 on crunchy01 and runner-03 on brix02",
        ),
        (  # one name on two hosts
            {"host": "brix02", "name": "runner-02", "address": "192.168.1.17/24"},
            "VM name runner-02 is declared 2 times (runner-02 on crunchy01 and runner-02 on brix02)",
        ),
    ],
)
def test_a_shared_address_or_name_names_both_users(other, expected):
    (message,) = fenced_vm_conflicts([R02, other])
    assert message.startswith(expected), message


def test_three_users_and_both_kinds():
    twin = {"host": "brix02", "name": "runner-02", "address": "192.168.1.16/24"}
    third = {"host": "brix03", "name": "runner-04", "address": "192.168.1.16/24"}
    messages = fenced_vm_conflicts([R02, twin, third])
    assert messages[0].startswith(
        "address 192.168.1.16 is declared for runner-02 on crunchy01, runner-02 on brix02 and"
    )
    assert messages[1].startswith("VM name runner-02 is declared 2 times")


def test_bad_entries_are_refused():
    with pytest.raises(ValueError, match="needs host and name"):
        fenced_vm_conflicts([{"name": "runner-02"}])
