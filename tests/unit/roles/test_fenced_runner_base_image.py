"""fenced_runner's prepared base: its volume is named by every input and by nothing else, and its capacity is the
disk size as libvirt_cloudinit_vm reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from local_playbook import role_vars_play, run_local_playbook

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "fenced_runner"
HEX = "0123456789abcdef" * 4
# Each case changes one input of the base; "same" changes only what is not an input.
CASES = {
    "reference": {},
    "same": {"fenced_runner_name": "another-vm", "fenced_runner_ip_address": "192.0.2.9/24", "fenced_runner_vcpus": 4},
    "image": {"fenced_runner_image_checksum": f"sha256:{'1' * 64}"},
    "runner": {"fenced_runner_binary_checksum": f"sha256:{'2' * 64}"},
    "docker": {"fenced_runner_docker_source": "repo"},
    "job_images": {
        "fenced_runner_job_images": [{"name": "x:1", "url": "https://m/x.tar", "checksum": f"sha256:{HEX}"}]
    },
    "disk": {"fenced_runner_disk_size": "16GiB"},
    "generation": {"fenced_runner_base_generation": 2},
}
ROLE_IMAGE_URL = re.search(r"^fenced_runner_image_url: (\S+)$", (ROLE / "defaults" / "main.yml").read_text(), re.M)[1]
SIZES = {"8GiB": 8 * 1024**3, "100GiB": 100 * 1024**3, "8": 8 * 1024**3, "512MiB": 512 * 1024**2, "20 G": 20 * 1024**3}


def _playbook(tmp_path: Path) -> Path:
    tasks = [
        {
            "name": f"case {name}",
            "ansible.builtin.debug": {"msg": f"CASE {name} {{{{ __fenced_runner_base_volume }}}}"},
            "vars": overrides,
        }
        for name, overrides in CASES.items()
    ]
    tasks += [
        {
            "name": f"size {size}",
            "ansible.builtin.debug": {"msg": f"SIZE {size}={{{{ __fenced_runner_disk_bytes }}}}"},
            "vars": {"fenced_runner_disk_size": size},
        }
        for size in SIZES
    ]
    domain = "<domain><metadata><fr:instance xmlns:fr='x'><fr:base-volume>fenced-base-0011</fr:base-volume>"
    bases = {
        "cloud": {"fenced_runner_base_image": "cloud"},
        "prepared-new": {"fenced_runner_base_image": "prepared", "__fenced_runner_domains": {"results": [{"rc": 1}]}},
        "prepared-existing": {
            "fenced_runner_base_image": "prepared",
            "__fenced_runner_domains": {"results": [{"rc": 0, "stdout": domain}]},
        },
    }
    tasks += [
        {
            "name": f"base {case}",
            "ansible.builtin.debug": {"msg": f"BASE {case}={{{{ __fenced_runner_vm_base | to_json }}}}"},
            "vars": overrides,
        }
        for case, overrides in bases.items()
    ]
    play_vars = {"fenced_runner_binary_checksum": f"sha256:{HEX}", "fenced_runner_disk_size": "8GiB"}
    return role_vars_play(tmp_path, "fenced_runner", tasks, play_vars)


def test_the_base_is_named_by_its_inputs_and_sized_by_the_disk(tmp_path):
    out = run_local_playbook(_playbook(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    names = dict(re.findall(r'"CASE (\S+) (\S+)"', out.stdout))
    assert set(names) == set(CASES), out.stdout
    assert all(re.fullmatch(r"fenced-base-[0-9a-f]{16}", name) for name in names.values()), names
    assert names["same"] == names["reference"]
    changed = {case for case, name in names.items() if name != names["reference"]}
    assert changed == set(CASES) - {"reference", "same"}, names
    assert len({names[case] for case in changed}) == len(changed), names
    sizes = {size: int(value) for size, value in re.findall(r'"SIZE (.+?)=(\d+)"', out.stdout)}
    assert sizes == SIZES, out.stdout
    bases = {
        case: json.loads(json.loads(f'"{value}"'))
        for case, value in re.findall(r'"BASE (\S+?)=(.+)"$', out.stdout, re.M)
    }
    assert bases["cloud"] == {"base_image": ROLE_IMAGE_URL, "base_checksum": bases["cloud"]["base_checksum"]}
    assert bases["prepared-new"] == {"base_volume": names["reference"]}
    assert bases["prepared-existing"] == {"base_volume": "fenced-base-0011"}
