"""host_state_info: one read of files, packages, users and images, with the differences from what is declared."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.foundation.runners.plugins.module_utils import _host_state
from ansible_collections.foundation.runners.plugins.modules.host_state_info import main

CONTENT = b"log:\n  level: info\n"
SHA1 = "sha1:" + hashlib.sha1(CONTENT).hexdigest()


class FakeCommands:
    """dpkg-query and docker as the module calls them."""

    def __init__(self):
        self.installed = {"docker.io"}
        self.images = {"node:22": "sha256:1234"}
        self.calls: list[list[str]] = []

    def run_command(self, argv, **_):
        self.calls.append(list(argv))
        if argv[0] == "dpkg-query":
            if argv[-1] in self.installed:
                return 0, "installed", ""
            return 1, "", f"no packages found matching {argv[-1]}"
        if argv[1] == "show":
            known = {"forgejo-runner.service": "ActiveState=active\nUnitFileState=enabled\n"}
            return 0, known.get(argv[2], "ActiveState=inactive\nUnitFileState=\n"), ""
        if argv[1:3] == ["image", "inspect"]:
            image = self.images.get(argv[-1])
            return (0, image + "\n", "") if image else (1, "", f"No such image: {argv[-1]}")
        raise AssertionError(argv)


@pytest.fixture
def host(tmp_path, monkeypatch):
    fake = FakeCommands()
    module = "ansible.module_utils.basic.AnsibleModule"
    monkeypatch.setattr(f"{module}.run_command", lambda _m, *a, **k: fake.run_command(*a, **k))
    monkeypatch.setattr(f"{module}.get_bin_path", lambda _m, name, *a, **k: f"/usr/bin/{name}")
    shadow = tmp_path / "shadow"
    shadow.write_text("root:!*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n")
    monkeypatch.setattr(_host_state, "SHADOW", str(shadow))
    config = tmp_path / "config.yml"
    config.write_bytes(CONTENT)
    os.chmod(config, 0o640)
    fake.config = str(config)
    return fake


def declared(host, **overrides):
    spec = {"path": host.config, "owner": "root", "group": "root", "mode": "0640", "checksum": SHA1}
    return {**spec, **overrides}


def test_everything_in_place_in_both_modes(host, run_module):
    args = {
        "files": [declared(host)],
        "packages": ["docker.io"],
        "users": [{"name": "root", "home": "/root", "password_locked": True}],
        "images": ["node:22"],
    }
    for check_mode in (False, True):
        result = run_module(main, args, check_mode=check_mode)
        assert not result["changed"] and result["in_place"], result
        assert result["files"][host.config]["differences"] == []
        assert result["differing"] == []
        assert result["users"]["root"]["differences"] == []
        assert result["packages"] == {"docker.io": True} and result["images"] == {"node:22": "sha256:1234"}


DIFFERENCES = [
    ("content", {"checksum": "sha1:" + "0" * 40}, ["content differs"]),
    ("mode", {"mode": "0644"}, ["mode 0640, not 0644"]),
    ("owner", {"owner": "nobody"}, ["owner root, not nobody"]),
    ("type", {"state": "directory", "checksum": None}, ["a file, not a directory"]),
    ("present", {"state": "absent"}, ["present"]),
    ("sha256", {"checksum": "sha256:" + hashlib.sha256(b"other").hexdigest()}, ["content differs"]),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in DIFFERENCES], ids=[c[0] for c in DIFFERENCES])
def test_each_file_difference_is_named(host, run_module, change, expected):
    result = run_module(main, {"files": [declared(host, **change)]})
    assert result["files"][host.config]["differences"] == expected and not result["in_place"], result


def test_missing_file_and_declared_absent(host, run_module, tmp_path):
    gone = str(tmp_path / "gone")
    result = run_module(main, {"files": [{"path": gone}, {"path": str(tmp_path / "none"), "state": "absent"}]})
    assert result["files"][gone] == {"exists": False, "differences": ["missing"]}
    assert result["files"][str(tmp_path / "none")]["differences"] == []


def test_users_packages_and_images_that_differ(host, run_module):
    result = run_module(
        main,
        {
            "users": [
                {"name": "nobody", "shell": "/bin/sh", "groups": ["docker-not-here"], "password_locked": True},
                {"name": "no-such-user-here"},
            ],
            "packages": ["docker.io", "apparmor"],
            "images": ["node:22", "busybox:1"],
        },
    )
    nobody = result["users"]["nobody"]["differences"]
    assert nobody[0].startswith("shell ") and nobody[1:] == ["not in docker-not-here", "password not locked"]
    assert result["users"]["no-such-user-here"] == {"exists": False, "differences": ["missing"]}
    assert result["packages"] == {"docker.io": True, "apparmor": False}
    assert result["images"] == {"node:22": "sha256:1234", "busybox:1": None} and not result["in_place"]
    assert result["differing"] == ["nobody", "no-such-user-here"]


def test_differing_lists_the_paths_and_users_that_differ_in_order(host, run_module, tmp_path):
    gone = str(tmp_path / "gone")
    args = {"files": [{"path": gone}, declared(host)], "users": [{"name": "root", "password_locked": False}]}
    result = run_module(main, args)
    assert result["differing"] == [gone, "root"] and not result["in_place"], result


def test_no_engine_means_no_image(host, run_module, monkeypatch):
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.get_bin_path", lambda *a, **k: None)
    assert run_module(main, {"images": ["node:22"]})["images"] == {"node:22": None}
    assert not any(c[0].endswith("docker") for c in host.calls)


def test_contents_are_read(host, run_module, tmp_path):
    result = run_module(main, {"contents": [host.config, str(tmp_path / "gone")]})
    assert result["contents"] == {host.config: CONTENT.decode(), str(tmp_path / "gone"): None}


def test_json_fields_return_only_the_named_keys(host, run_module, tmp_path):
    runner = tmp_path / ".runner"
    runner.write_text('{"id": 7, "uuid": "u-1", "name": "runner-02", "token": "secret-token"}')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{")
    args = [{"path": str(runner), "fields": ["id", "uuid", "name", "labels"]}]
    args += [{"path": str(tmp_path / name), "fields": ["id"]} for name in ("list.json", "broken.json", "gone")]
    result = run_module(main, {"json_fields": args})
    assert result["json"][str(runner)] == {"id": 7, "uuid": "u-1", "name": "runner-02"}
    assert "secret-token" not in str(result)
    assert [result["json"][str(tmp_path / n)] for n in ("list.json", "broken.json", "gone")] == [None, None, None]


def test_lines_are_in_place_where_the_last_match_is_the_line(host, run_module, tmp_path):
    conf = tmp_path / "qemu.conf"
    conf.write_text('#user = "root"\nsecurity_driver = "none"\nvnc_password = "secret-vnc"\n')

    def lines(*pairs):
        return [{"regexp": rf"^#?\s*{key}\s*=", "line": f"{key} = {value}"} for key, value in pairs]

    def read(*pairs):
        return run_module(main, {"files": [{"path": str(conf), "lines": lines(*pairs)}]})["files"][str(conf)]

    assert read(("security_driver", '"none"'))["differences"] == []
    assert read(("user", '"root"'))["differences"] == ["line 'user = \"root\"' not in place"]
    assert read(("stdio_handler", '"logd"'))["differences"] == ["line 'stdio_handler = \"logd\"' not in place"]
    conf.write_text('security_driver = "none"\nsecurity_driver = "apparmor"\n')  # lineinfile edits the last match
    assert read(("security_driver", '"none"'))["differences"] != []
    assert "secret-vnc" not in str(
        run_module(main, {"files": [{"path": str(conf), "lines": lines(("vnc_password", "x"))}]})
    )


def test_free_space_is_what_df_reports_and_null_where_nothing_resolves(host, run_module, tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    paths = [str(tmp_path), str(tmp_path / "gone"), str(tmp_path / "dangling")]
    result = run_module(main, {"free_space": paths})
    st = os.statvfs(tmp_path)
    assert abs(result["free_space"][paths[0]] - st.f_bavail * st.f_frsize) < 256 << 20  # others write meanwhile
    assert [result["free_space"][p] for p in paths[1:]] == [None, None]
    assert result["in_place"]


BAD_INPUT = [
    ("checksum_algorithm", {"files": [{"path": "/x", "checksum": "md5:abc"}]}, "checksum 'md5:abc' is not"),
    ("checksum_digest", {"files": [{"path": "/x", "checksum": "sha1:xyz"}]}, "files: /x: checksum 'sha1:xyz'"),
    ("mode", {"files": [{"path": "/x", "mode": "rw-r--r--"}]}, "files: /x:"),
    ("state", {"files": [{"path": "/x", "state": "link"}]}, "value of state must be one of"),
    ("lines_regexp", {"files": [{"path": "/x", "lines": [{"regexp": "([", "line": "x"}]}]}, "files: /x:"),
    ("unknown", {"paths": ["/x"]}, "Unsupported parameters"),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_before_reading(host, run_module, args, expected):
    result = run_module(main, args)
    assert result.get("failed") and expected in result["msg"], result
    assert host.calls == []


def test_units_are_read_and_do_not_count_as_differences(host, run_module):
    result = run_module(main, {"units": ["forgejo-runner.service", "gone.service"]})
    assert result["units"] == {
        "forgejo-runner.service": {"active": "active", "enabled": "enabled"},
        "gone.service": {"active": "inactive", "enabled": "unknown"},
    }
    assert result["in_place"] and ["/usr/bin/systemctl", "show", "gone.service"] == host.calls[-1][:3]
