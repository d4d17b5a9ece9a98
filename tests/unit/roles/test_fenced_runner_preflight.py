"""fenced_runner refuses bad inputs in preflight, with a message naming the fix, before anything changes.

The role runs for real (not in check mode) against the controller. Its forge is a small local HTTP
server, and its libvirt host is libvirt's built-in test:///default driver, whose domain "test" was
not created by the collection. A bad input that slipped through preflight would reach the VM task,
which the test sees in the output. The bad inputs run in one ansible-playbook run, one inventory host each, so that
each case costs a host's tasks rather than a playbook's start.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_playbook import output_per_host, run_local_playbook
from serving import serving

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).resolve().parent / "fenced_runner" / "preflight.yml"
HEX = "ab" * 32


class _FakeForgeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"version": "1.27.3"}).encode()
        self.send_response(200 if self.path == "/api/v1/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def forge_url() -> Iterator[str]:
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeForgeHandler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _valid(forge_url: str) -> dict[str, Any]:
    return {
        "ansible_python_interpreter": str(ROOT / ".venv" / "bin" / "python"),
        "fenced_runner_name": "frtest-runner-01",
        "fenced_runner_libvirt_uri": "test:///default",
        # the ARP probe would send to the example subnet, which is not the lab's
        "fenced_runner_address_probe": False,
        "fenced_runner_subnet": "192.168.1.0/24",
        "fenced_runner_ip_address": "192.168.1.16/24",
        "fenced_runner_gateway": "192.168.1.1",
        "fenced_runner_ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFrtestkey frtest"],
        "fenced_runner_binary_checksum": f"sha256:{HEX}",
        "fenced_runner_forgejo_url": forge_url,
        "fenced_runner_forgejo_api_token": "frtest-not-a-real-token",
        "fenced_runner_allow_insecure_http": True,
        "fenced_runner_boot_timeout": 1,
        "fenced_runner_labels": [f"fenced:docker://docker.io/library/node:22.11.0-bookworm@sha256:{HEX}"],
    }


def _run(extra_vars: dict[str, Any], *options: str) -> subprocess.CompletedProcess:
    return run_local_playbook(PLAYBOOK, "-e", json.dumps(extra_vars), *options)


# (case id, variables changed from the valid set, text the error must contain)
BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("name-empty", {"fenced_runner_name": ""}, "is not a valid VM and runner name"),
    ("name-characters", {"fenced_runner_name": "runner 02!"}, "is not a valid VM and runner name"),
    ("image-checksum-missing", {"fenced_runner_image_checksum": ""}, "Take it from the SHA256SUMS file"),
    ("image-checksum-md5", {"fenced_runner_image_checksum": "md5:" + "a" * 32}, "fenced_runner_image_checksum 'md5:"),
    ("ip-not-cidr", {"fenced_runner_ip_address": "192.168.1.16"}, "is not an IPv4 address in CIDR notation"),
    ("ip-bad-octet", {"fenced_runner_ip_address": "192.168.1.300/24"}, "is not an IPv4 address in CIDR notation"),
    ("ip-outside-subnet", {"fenced_runner_ip_address": "10.0.0.16/24"}, "is outside the subnet 192.168.1.0/24"),
    ("ip-other-prefix", {"fenced_runner_ip_address": "192.168.1.16/16"}, "is outside the subnet 192.168.1.0/24"),
    (
        "adopt-runner-file-relative",
        {"fenced_runner_adopt_container": "forgejo-runner", "fenced_runner_adopt_runner_file": "data/.runner"},
        "fenced_runner_adopt_runner_file 'data/.runner' an absolute path inside it",
    ),
    (
        "gateway-outside-subnet",
        {"fenced_runner_gateway": "10.0.0.1"},
        "fenced_runner_gateway '10.0.0.1' is not an address inside",
    ),
    (
        "subnet-unknown",
        {"fenced_runner_subnet": "", "fenced_runner_bridge": "frnobr0"},
        "taken from the IPv4 address of {host} on frnobr0, and there is none",
    ),
    (
        "label-scheme",
        {"fenced_runner_labels": ["fenced:kubernetes://pod"]},
        "labels of an unknown form: fenced:kubernetes://pod",
    ),
    ("labels-empty", {"fenced_runner_labels": []}, "fenced_runner_labels is empty"),
    (
        "image-by-tag",
        {"fenced_runner_labels": ["fenced:docker://docker.io/library/node:22.11.0-bookworm"]},
        "name job images by tag only: docker.io/library/node:22.11.0-bookworm",
    ),
    (
        "digest-placeholder",
        {"fenced_runner_labels": ["fenced:docker://docker.io/library/node:22.11.0-bookworm@sha256:FILL-IN"]},
        "docker buildx imagetools inspect",
    ),
    ("vcpus-zero", {"fenced_runner_vcpus": 0}, "a VM needs at least 1 vCPU"),
    ("memory-unit", {"fenced_runner_memory": "32GB"}, "fenced_runner_memory '32GB' is not a size"),
    ("capacity-zero", {"fenced_runner_capacity": 0}, "must take at least 1 job"),
    ("metrics-no-scrapers", {"fenced_runner_metrics_port": 9100}, "list the addresses or networks"),
    (
        "metrics-scraper-word",
        {"fenced_runner_metrics_port": 9100, "fenced_runner_metrics_scrapers": ["any"]},
        "fenced_runner_metrics_scrapers is 'any'",
    ),
    ("metrics-port", {"fenced_runner_metrics_port": 70000}, "give a TCP port"),
    ("cache-port-sshd", {"fenced_runner_cache_port": 22}, "fenced_runner_cache_port is 22; give a free TCP port"),
    ("denied-ipv6", {"fenced_runner_job_denied_networks": ["2001:db8::/32"]}, "are not IPv4 addresses or networks"),
    ("denied-host-bits", {"fenced_runner_job_denied_networks": ["192.168.1.2/24"]}, "unset): 192.168.1.2/24"),
    (
        "denied-nameserver",
        {"fenced_runner_job_denied_networks": ["192.168.1.0/28"], "fenced_runner_nameservers": ["192.168.1.1"]},
        "covers the VM's nameserver(s) 192.168.1.1",
    ),
    ("job-timeout", {"fenced_runner_job_timeout": "forever"}, "is not a Go duration"),
    ("binary-checksum-missing", {"fenced_runner_binary_checksum": ""}, "Take it from the .sha256 file"),
    (
        "binary-url-scheme",
        {"fenced_runner_binary_url": "ftp://example.invalid/forgejo-runner"},
        "is not an http(s) URL",
    ),
    ("runner-user-root", {"fenced_runner_user": "root"}, "the runner never runs as root"),
    (
        "docker-repo-http",
        {
            "fenced_runner_docker_source": "repo",
            "fenced_runner_docker_repo_url": "http://download.docker.com/linux/ubuntu",
        },
        "fenced_runner_docker_repo_url and fenced_runner_docker_repo_key_url must be https URLs",
    ),
    ("apt-proxy-scheme", {"fenced_runner_apt_proxy": "apt-cache.lan:3142"}, "is not an http(s) proxy URL"),
    (
        "job-image-checksum",
        {"fenced_runner_job_images": [{"name": "lab/debian12:1", "url": "http://mirror.lan/a.tar", "checksum": "md5"}]},
        "fenced_runner_job_images entries need",
    ),
    ("docker-source-unknown", {"fenced_runner_docker_source": "snap"}, "fenced_runner_docker_source"),
    ("registration-unknown", {"fenced_runner_registration": "ldap"}, "fenced_runner_registration"),
    ("domain-type-unknown", {"fenced_runner_domain_type": "xen"}, "fenced_runner_domain_type"),
    ("forge-url-scheme", {"fenced_runner_forgejo_url": "forge.example.org"}, "is not the forge's http(s) base URL"),
    ("forge-plain-http", {"fenced_runner_allow_insecure_http": False}, "is not https: the admin and runner tokens"),
    (
        "scope-org-unnamed",
        {"fenced_runner_scope": "org"},
        "name the organisation in fenced_runner_scope_org",
    ),
    ("forge-token-empty", {"fenced_runner_forgejo_api_token": ""}, "fenced_runner_forgejo_api_token is empty"),
    ("ssh-keys-empty", {"fenced_runner_ssh_authorized_keys": []}, "nobody could log in to the VM"),
    ("retire-self", {"fenced_runner_retire": ["frtest-runner-01"]}, "fenced_runner_retire lists the runner itself"),
    ("guest-host-missing", {"fenced_runner_vm_managed": False}, "fenced_runner_guest_host must name"),
    ("vm-name-foreign", {"fenced_runner_name": "test"}, "the libvirt domain(s) test on {host}"),
    ("retire-foreign", {"fenced_runner_retire": ["test"]}, "the libvirt domain(s) test on {host}"),
]


@pytest.fixture(scope="module")
def bad_input_runs(forge_url: str, tmp_path_factory) -> dict[str, str]:
    """Every bad input in one run, each as an inventory host of its own (named by its case id) on the local
    connection; returns each host's output."""
    hosts = {case[0]: {**_valid(forge_url), **case[1]} for case in BAD_INPUTS}
    inventory = tmp_path_factory.mktemp("preflight") / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    result = run_local_playbook(PLAYBOOK, "--forks", "8", inventory=str(inventory))
    per_host = output_per_host(result.stdout)
    missing = set(hosts) - set(per_host)
    assert not missing, f"no output for {sorted(missing)}:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    return per_host


@pytest.mark.parametrize(("case", "expected"), [(c[0], c[2]) for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_stops_in_preflight(bad_input_runs: dict[str, str], case: str, expected: str) -> None:
    output = bad_input_runs[case]
    assert " failed=1 " in output, output
    assert expected.format(host=case) in output, output
    assert "TASK [foundation.runners.fenced_runner : Create and start" not in output, output
    assert " changed=0 " in output, output


def test_forge_not_answering(forge_url: str) -> None:
    result = _run({**_valid(forge_url), "fenced_runner_forgejo_url": f"http://127.0.0.1:{_closed_port()}"})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "does not answer (Request GET http://127.0.0.1:" in output, output
    assert "/api/v1/version failed: cannot connect" in output, output
    assert "frtest-not-a-real-token" not in output, output
    assert "TASK [foundation.runners.fenced_runner : Create and start" not in output, output


def test_valid_inputs_pass_preflight(forge_url: str) -> None:
    result = _run(_valid(forge_url), "--tags", "fenced_runner_preflight")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "forge 1.27.3" in output, output
    assert "frtest-not-a-real-token" not in output, output


def test_an_image_loaded_from_a_checksummed_archive_counts_as_pinned(forge_url: str) -> None:
    archive = {"name": "lab/debian12:1", "url": "https://images.example.org/debian12.tar", "checksum": f"sha256:{HEX}"}
    pinned = {**_valid(forge_url), "fenced_runner_labels": ["fenced:docker://lab/debian12:1"]}
    result = _run({**pinned, "fenced_runner_job_images": [archive]}, "--tags", "fenced_runner_preflight")
    assert result.returncode == 0, result.stdout + result.stderr
    allowed = _run({**pinned, "fenced_runner_allow_floating_images": True}, "--tags", "fenced_runner_preflight")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
