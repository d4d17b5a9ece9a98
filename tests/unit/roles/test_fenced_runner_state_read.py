"""fenced_runner skips a writing task when host_state_info finds its item in place. That holds only if the checksum
the role computes on the controller for each template and content is the one of the file the task writes: this
test writes each one with the role's own task module, then reads it back with the role's own declarations."""

from __future__ import annotations

import json
import re
from pathlib import Path

from local_playbook import role_vars_play, run_local_playbook

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "fenced_runner"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5oY2c0ZWx2b2x0bGFiZXh0cmFrZXk0MDAwMDAwMDAw watchdog@brix02"


def _playbook(tmp_path: Path) -> Path:
    home, etc = tmp_path / "home", tmp_path / "etc"
    paths = {
        "config": f"{home}/config.yml",
        "unit": f"{etc}/forgejo-runner.service",
        "command": f"{etc}/runner-control",
        "sudoers": f"{etc}/sudoers-control",
        "keys": f"{etc}/authorized_keys",
        "proxy": f"{etc}/01fenced-runner-proxy",
        "journald": f"{etc}/60-foundation-runners-journald.conf",
        "rsyslog": f"{etc}/60-foundation-runners.conf",
    }
    # The metrics files: the script, the textfile writer, the timer's units and node_exporter's drop-in.
    metrics = {
        "__fenced_runner_libexec": f"{etc}/libexec",
        "__fenced_runner_metrics_service": f"{etc}/runner-metrics.service",
        "__fenced_runner_metrics_timer": f"{etc}/runner-metrics.timer",
        "__fenced_runner_metrics_dropin": f"{etc}/node-exporter.d/foundation-runners.conf",
        "__fenced_runner_job_fence_path": f"{etc}/job-fence.service",
    }
    overrides = {
        "fenced_runner_home": str(home),
        "fenced_runner_binary_checksum": "sha256:" + "ab" * 32,
        "fenced_runner_control_authorized_keys": [KEY],
        "fenced_runner_apt_proxy": "http://198.51.100.5:3142",
        "__fenced_runner_control_command": paths["command"],
        "__fenced_runner_control_sudoers": paths["sudoers"],
        "__fenced_runner_control_keys": paths["keys"],
        "__fenced_runner_proxy": paths["proxy"],
        "__fenced_runner_unit_path": paths["unit"],
        "fenced_runner_log_target": "198.51.100.77",
        "role_path": str(ROLE),  # what a role's tasks see; the log files come from log_shipping beside it
        "__fenced_runner_journald_conf": paths["journald"],
        "__fenced_runner_rsyslog_conf": paths["rsyslog"],
        "fenced_runner_metrics_port": 9100,
        "fenced_runner_metrics_scrapers": ["198.51.100.70"],
        "fenced_runner_job_denied_networks": ["198.51.100.30", "198.51.100.64/28"],
        **metrics,
    }
    writes = (
        [{"ansible.builtin.file": {"path": str(d), "state": "directory"}} for d in (home, etc)]
        + [
            {
                "foundation.runners.managed_files": {
                    "files": [
                        {
                            "path": paths[key],
                            "content": f"{{{{ lookup('ansible.builtin.template', '{src}') }}}}",
                            "mode": "0644",
                        }
                        for key, src in [
                            ("config", "config.yml.j2"),
                            ("unit", "forgejo-runner.service.j2"),
                            ("command", "runner-control.sh.j2"),
                        ]
                    ]
                }
            }
        ]
        + [
            {"ansible.builtin.template": {"src": src, "dest": paths[key]}}
            for key, src in [("sudoers", "sudoers-control.j2")]
        ]
        + [
            {
                "foundation.runners.managed_files": {
                    "files": [
                        {"path": paths["keys"], "content": "{{ __fenced_runner_control_keys_content }}", "mode": "0600"}
                    ]
                }
            },
            {"ansible.builtin.copy": {"content": "{{ __fenced_runner_proxy_content }}", "dest": paths["proxy"]}},
            {
                "ansible.builtin.copy": {
                    "content": "{{ __fenced_runner_job_fence_content }}",
                    "dest": metrics["__fenced_runner_job_fence_path"],
                }
            },
        ]
        + [
            {
                "foundation.runners.managed_files": {
                    "files": [
                        {"path": paths[key], "content": f"{{{{ __fenced_runner_log_contents.{key} }}}}", "mode": "0644"}
                        for key in ("journald", "rsyslog")
                    ]
                }
            }
        ]
        + [
            {"ansible.builtin.file": {"path": f"{etc}/{d}", "state": "directory"}}
            for d in ("libexec", "node-exporter.d")
        ]
        + [
            {
                "foundation.runners.managed_files": {
                    "files": "{{ __fenced_runner_metrics_files | map('combine', {'mode': '0644'}) | list }}"
                }
            }
        ]
    )
    # The content-bearing entries only (this machine has no runner user); the unit's names /etc/systemd/system,
    # so the test reads the copy it wrote instead.
    read = {
        "name": "read",
        "foundation.runners.host_state_info": {"files": "{{ __entries }}"},
        "vars": {
            "__entries": (
                "{{ __fenced_runner_state_files | selectattr('checksum', 'defined')"
                " | rejectattr('path', 'match', '^/etc/systemd/') | map('dict2items')"
                " | map('selectattr', 'key', 'in', ['path', 'checksum', 'state']) | map('items2dict') | list"
                " + [{'path': __fenced_runner_unit_path, 'checksum': __fenced_runner_state_files"
                " | selectattr('path', 'match', '^/etc/systemd/') | map(attribute='checksum') | first}] }}"
            )
        },
        "register": "state",
    }
    show = {"ansible.builtin.debug": {"msg": "STATE {{ state.files | to_json }}"}}
    (tmp_path / "templates").symlink_to(ROLE / "templates")
    (tmp_path / "files").symlink_to(ROLE / "files")
    block = {"name": "inputs", "vars": overrides, "block": [*writes, read, show]}
    return role_vars_play(tmp_path, "fenced_runner", [block])


def test_what_the_tasks_write_is_what_the_read_expects(tmp_path):
    out = run_local_playbook(_playbook(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    files = json.loads(json.loads('"' + re.search(r'"msg": "STATE (.+)"$', out.stdout, re.M)[1] + '"'))
    written = {path: found for path, found in files.items() if path.startswith(str(tmp_path))}
    assert len(written) == 14, files
    assert {path: found["differences"] for path, found in written.items()} == {path: [] for path in written}
