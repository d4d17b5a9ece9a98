"""apt_package_lists: refresh when the lists are empty or lack a package, whatever the lists' age."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.foundation.runners.plugins.module_utils._apt_lists import AptLists
from ansible_collections.foundation.runners.plugins.modules.apt_package_lists import main

POLICY = {
    "docker.io": "docker.io:\n  Installed: (none)\n  Candidate: 20.10.24+dfsg1-1+deb12u1\n",
    "apparmor": "apparmor:\n  Installed: (none)\n  Candidate: 3.0.8-3\n",
    "gone": "gone:\n  Installed: 1.0\n  Candidate: (none)\n",
}


class FakeApt:
    """apt-get and apt-cache over a real lists directory: update fills it, policy answers from it."""

    def __init__(self, root, archive=("docker.io", "apparmor")):
        self.lists = root / "lists"
        self.stamp = root / "periodic" / "update-success-stamp"
        self.archive = archive
        self.calls: list[list[str]] = []
        self.update_rc = 0

    def run_command(self, argv, environ_update=None, **_):
        assert environ_update["LC_ALL"] == "C"
        self.calls.append(list(argv))
        if argv[:2] == ["apt-get", "update"]:
            if self.update_rc:
                return self.update_rc, "", "E: Failed to fetch http://deb.example/dists/x/InRelease  403  Forbidden"
            (self.lists / "deb.example_dists_bookworm_main_binary-amd64_Packages").write_text("x")
            return 0, "", ""
        if argv[:2] == ["apt-cache", "policy"]:
            known = self.archive if any("_Packages" in f.name for f in self.lists.iterdir()) else ()
            return 0, "".join(POLICY[p] for p in argv[3:] if p in known or p == "gone"), ""
        raise AssertionError(argv)


@pytest.fixture
def apt(tmp_path, monkeypatch):
    fake = FakeApt(tmp_path)
    # A golden image built a minute ago: lists removed, the directory touched then, no update stamp.
    fake.lists.mkdir()
    (fake.lists / "partial").mkdir()
    minute_ago = time.time() - 60
    os.utime(fake.lists, (minute_ago, minute_ago))
    monkeypatch.setattr(AptLists, "lists_dir", str(fake.lists))
    monkeypatch.setattr(AptLists, "stamp", str(fake.stamp))
    run_command = "ansible.module_utils.basic.AnsibleModule.run_command"
    monkeypatch.setattr(run_command, lambda _module, *a, **k: fake.run_command(*a, **k))
    return fake


def updates(apt):
    return sum(1 for c in apt.calls if c[:2] == ["apt-get", "update"])


def test_empty_lists_touched_a_minute_ago_are_refreshed(apt, run_module):
    result = run_module(main, {"packages": ["docker.io", "apparmor"]})
    assert result["changed"] and result["updated"], result
    assert result["reason"] == "the package lists are empty"
    assert updates(apt) == 1 and apt.stamp.exists()


def test_second_run_is_idempotent_and_check_mode_changes_nothing(apt, run_module):
    assert run_module(main, {"packages": ["docker.io"]}, check_mode=True)["changed"]
    assert updates(apt) == 0 and not apt.stamp.exists()
    run_module(main, {"packages": ["docker.io"]})
    for check_mode in (False, True):
        result = run_module(main, {"packages": ["docker.io", "apparmor"]}, check_mode=check_mode)
        assert not result["changed"] and not result["updated"], result
    assert updates(apt) == 1


def test_lists_without_a_wanted_package_are_refreshed_whatever_their_age(apt, run_module):
    run_module(main, {"packages": ["docker.io"]})
    apt.archive = ("docker.io",)
    result = run_module(main, {"packages": ["docker.io", "apparmor"]}, check_mode=True)
    assert result["reason"] == "the package lists hold no candidate for apparmor"
    assert updates(apt) == 1


def test_old_lists_are_refreshed(apt, run_module):
    run_module(main, {"packages": ["docker.io"]})
    two_hours_ago = time.time() - 7200
    os.utime(apt.stamp, (two_hours_ago, two_hours_ago))
    result = run_module(main, {"packages": ["docker.io"]})
    assert result["updated"] and result["reason"].startswith("the last update is 7")
    assert updates(apt) == 2


def test_lists_without_a_stamp_are_refreshed_once(apt, run_module):
    (apt.lists / "old_Packages").write_text("x")
    assert run_module(main, {"packages": []})["reason"] == "no successful update is recorded"
    assert not run_module(main, {"packages": []})["changed"]


def test_valid_time_zero_always_refreshes(apt, run_module):
    run_module(main, {"packages": ["docker.io"]})
    assert run_module(main, {"packages": ["docker.io"], "valid_time": 0})["updated"]


def test_version_and_release_suffixes_are_ignored(apt, run_module):
    run_module(main, {"packages": ["docker.io=20.10.24+dfsg1-1+deb12u1", "apparmor/bookworm"]})
    assert apt.calls[-1] == ["apt-cache", "policy", "--", "docker.io", "apparmor"]


BAD_INPUT = [
    ("negative_valid_time", {"valid_time": -1}, "valid_time must be 0 or more seconds, got -1"),
    ("not_a_name", {"packages": ["docker io"]}, "'docker io' is not a Debian package name"),
    ("option_injection", {"packages": ["-o=APT::Get::Foo"]}, "'-o=APT::Get::Foo' is not a Debian package name"),
    ("unknown_option", {"cache_valid_time": 5}, "Unsupported parameters"),
    ("valid_time_text", {"valid_time": "soon"}, "valid_time"),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_changes_nothing(apt, run_module, args, expected):
    result = run_module(main, args)
    assert result.get("failed") and expected in result["msg"], result
    assert updates(apt) == 0


def test_package_unknown_after_refresh_fails_naming_it(apt, run_module):
    result = run_module(main, {"packages": ["docker.io", "gone"]})
    assert result["failed"] and "no installation candidate for gone even after refreshing" in result["msg"]


def test_failed_update_names_the_command_and_the_reason(apt, run_module):
    apt.update_rc = 100
    result = run_module(main, {"packages": ["docker.io"]})
    assert result["failed"]
    assert result["msg"].startswith("apt-get update -q failed with exit code 100 (refreshing because the package lists")
    assert "403  Forbidden" in result["msg"] and not apt.stamp.exists()
