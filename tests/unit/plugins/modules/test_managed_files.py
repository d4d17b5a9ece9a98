"""managed_files: several files in one call, only what differs written, nothing written when one cannot be."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.foundation.runners.plugins.modules.managed_files import main


def spec(path, content="a\n", mode="0644", **extra):
    return {"path": str(path), "content": content, "mode": mode, **extra}


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_then_nothing_to_do(tmp_path, run_module):
    files = [spec(tmp_path / "one", "one\n"), spec(tmp_path / "two", "two\n", "0600")]
    first = run_module(main, {"files": files}, diff=True)
    assert first["changed"] and first["changed_paths"] == [f["path"] for f in files]
    assert [d["after"] for d in first["diff"]] == ["one\n", "two\n"] and first["diff"][0]["before"] == ""
    assert (tmp_path / "two").read_text() == "two\n" and mode_of(tmp_path / "two") == 0o600
    again = run_module(main, {"files": files}, diff=True)
    assert not again["changed"] and again["changed_paths"] == [] and again["diff"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no temporary file left


def test_check_mode_shows_the_change_and_writes_nothing(tmp_path, run_module):
    kept = tmp_path / "kept"
    kept.write_text("old\n")
    result = run_module(main, {"files": [spec(kept, "new\n"), spec(tmp_path / "new")]}, check_mode=True, diff=True)
    assert result["changed"] and len(result["changed_paths"]) == 2
    assert result["diff"][0] == {
        "before_header": str(kept),
        "after_header": str(kept),
        "before": "old\n",
        "after": "new\n",
    }
    assert kept.read_text() == "old\n" and not (tmp_path / "new").exists()


def test_a_mode_change_alone_keeps_the_file(tmp_path, run_module):
    path = tmp_path / "f"
    path.write_text("a\n")
    os.chmod(path, 0o600)
    inode = os.stat(path).st_ino
    result = run_module(main, {"files": [spec(path, mode="0640")]}, diff=True)
    assert result["changed"] and mode_of(path) == 0o640 and os.stat(path).st_ino == inode
    assert result["diff"][0]["before"].endswith("mode 0600\n") and result["diff"][0]["after"].endswith("mode 0640\n")


BAD = [
    ("no-directory", lambda tmp: spec(tmp / "missing" / "f"), "its directory does not exist"),
    ("owner", lambda tmp: spec(tmp / "f", owner="no-such-user"), "owner no-such-user does not exist"),
    ("group", lambda tmp: spec(tmp / "f", group="no-such-group"), "group no-such-group does not exist"),
    ("mode", lambda tmp: spec(tmp / "f", mode="rw-r--r--"), "mode 'rw-r--r--' is not an octal number"),
    ("relative", lambda _tmp: spec("relative/f"), "not an absolute path"),
    ("directory", spec, "exists and is not a regular file"),
]


@pytest.mark.parametrize(("make", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_writes_nothing(tmp_path, run_module, make, message):
    first = tmp_path / "first"
    result = run_module(main, {"files": [spec(first), make(tmp_path)]})
    assert result["failed"] and message in result["msg"], result
    assert not first.exists()  # the good file before the bad one was not written either


def test_the_same_path_twice_is_refused(tmp_path, run_module):
    result = run_module(main, {"files": [spec(tmp_path / "f"), spec(tmp_path / "f", "b\n")]})
    assert result["failed"] and "listed twice" in result["msg"]


def test_check_mode_counts_on_the_directory_and_owner_an_earlier_task_makes(tmp_path, run_module):
    later = spec(tmp_path / "made-later" / "f", owner="made-later-user")
    result = run_module(main, {"files": [later]}, check_mode=True, diff=True)
    assert result["changed"] and result["changed_paths"] == [later["path"]] and result["diff"][0]["after"] == "a\n"


def test_absent_removes_what_exists_then_nothing_to_do(tmp_path, run_module):
    old, never = tmp_path / "old", tmp_path / "never"
    old.write_text("old\n")
    files = [{"path": str(old), "state": "absent"}, {"path": str(never), "state": "absent"}]
    preview = run_module(main, {"files": files}, check_mode=True, diff=True)
    assert preview["changed_paths"] == [str(old)] and preview["diff"][0]["before"] == "old\n" and old.exists()
    removed = run_module(main, {"files": files}, diff=True)
    assert removed["changed_paths"] == [str(old)] and removed["diff"][0]["after"] == "" and not old.exists()
    assert not run_module(main, {"files": files})["changed"]


def test_a_bad_entry_removes_nothing(tmp_path, run_module):
    kept = tmp_path / "kept"
    kept.write_text("a\n")
    result = run_module(
        main, {"files": [{"path": str(kept), "state": "absent"}, {"path": str(tmp_path), "state": "absent"}]}
    )
    assert result["failed"] and "exists and is not a regular file" in result["msg"] and kept.exists()


def test_present_needs_content_and_mode(tmp_path, run_module):
    result = run_module(main, {"files": [{"path": str(tmp_path / "f"), "mode": "0644"}]})
    assert result["failed"] and "content" in result["msg"], result
