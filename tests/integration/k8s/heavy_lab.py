"""The k3s_heavy_runner role run against the lab control plane and the lab forge, and what it left there."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import kubernetes
import pytest
import requests
from lablib.ansible import Ansible, recap
from lablib.runner import LabRunnerProcess

PLAYBOOKS = Path(__file__).parent / "playbooks"
NAME = "frk8s-heavy"  # namespace, StatefulSet and the prefix of the forge runners; unique to these tests
DIGEST = "@sha256:" + "ab" * 32


class HeavyLab:
    def __init__(self, k8s_env: dict[str, str], forge_env: dict[str, str], name: str = NAME):
        self.name = name
        self.kubeconfig = k8s_env["KUBECONFIG"]
        self.forge_url = forge_env["FORGE_GITEA_URL"]
        self.admin_token = forge_env["FORGE_GITEA_TOKEN_WRITE_ADMIN"]
        self.lab_runner = forge_env["LAB_RUNNER"]
        self.ansible = Ansible()
        client = kubernetes.config.new_client_from_config(config_file=self.kubeconfig)
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.net = kubernetes.client.NetworkingV1Api(client)

    def role_vars(self, **overrides) -> dict:
        base = {
            "k3s_heavy_runner_namespace": self.name,
            "k3s_heavy_runner_name": self.name,
            "k3s_heavy_runner_kubeconfig": self.kubeconfig,
            "k3s_heavy_runner_forgejo_url": self.forge_url,
            "k3s_heavy_runner_forgejo_api_token": self.admin_token,
            "k3s_heavy_runner_allow_insecure_http": True,  # the lab forge: plain http in the lab's namespace
            "k3s_heavy_runner_forge_cidrs": ["198.51.100.10/32"],
            "k3s_heavy_runner_egress_cidrs": ["192.0.2.0/24"],
            "k3s_heavy_runner_image": "code.forgejo.org/forgejo/runner:12.10.2" + DIGEST,
            "k3s_heavy_runner_dind_image": "docker.io/library/docker:28.5.2-dind" + DIGEST,
            "k3s_heavy_runner_job_image": "registry.gitlab.com/seaspots/tools/seaspots-s57-utils:1.11.0" + DIGEST,
            "k3s_heavy_runner_shutdown_timeout": 30,
            "k3s_heavy_runner_termination_grace_period": 40,
            "k3s_heavy_runner_wait_timeout": 180,
            "k3s_heavy_runner_prune_timeout": 240,
        }
        return {**base, **overrides}

    def run(self, *options: str, playbook: str = "heavy.yml", **overrides) -> tuple[subprocess.CompletedProcess, int]:
        """Run a playbook with the role's variables; returns the process and the recap's changed count."""
        start = time.monotonic()
        proc = self.ansible.playbook(PLAYBOOKS / playbook, self.role_vars(**overrides), *options)
        print(f"{playbook} {' '.join(options)}: rc {proc.returncode} in {time.monotonic() - start:.1f} s")
        changed = recap(proc.stdout).get("localhost", {}).get("changed", -1)
        return proc, changed

    def playbook_path(self, playbook: str = "heavy.yml") -> Path:
        return PLAYBOOKS / playbook

    def run_ok(self, *options: str, **overrides) -> int:
        proc, changed = self.run(*options, **overrides)
        if proc.returncode:
            pytest.fail(
                f"role run {options} failed (rc {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
            )
        return changed

    # What the role left in the cluster
    def namespace_exists(self, name: str | None = None) -> bool:
        return any(ns.metadata.name == (name or self.name) for ns in self.core.list_namespace().items)

    def secret(self) -> dict[str, str]:
        data = self.core.read_namespaced_secret(f"{self.name}-credentials", self.name).data or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def config_yml(self) -> str:
        return self.core.read_namespaced_config_map(f"{self.name}-config", self.name).data["config.yml"]

    def statefulset(self):
        return self.apps.read_namespaced_stateful_set(self.name, self.name)

    def wait_ready(self, replicas: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.statefulset().status
            pods = self.core.list_namespaced_pod(self.name).items
            if (status.ready_replicas or 0) == replicas and len(pods) == replicas:
                return
            time.sleep(2)
        pytest.fail(f"StatefulSet {self.name} not at {replicas} ready replicas after {timeout:.0f} s: {status}")

    # The forge
    def runners(self) -> list[dict]:
        result = self.ansible(
            "forgejo_runner_info",
            {"api_url": self.forge_url, "api_token": self.admin_token, "names": [f"{self.name}-*"]},
        )
        assert not result.get("failed"), result
        return result["runners"]

    def clean(self) -> None:
        """Remove the test namespace and every forge registration of these tests."""
        if self.namespace_exists():
            self.core.delete_namespace(self.name)
            deadline = time.monotonic() + 120
            while self.namespace_exists() and time.monotonic() < deadline:
                time.sleep(1)
        for runner in self.runners():  # online ones too, which forgejo_runner_prune rightly refuses
            url = f"{self.forge_url}/api/v1/admin/actions/runners/{runner['id']}"
            requests.delete(url, headers={"Authorization": f"token {self.admin_token}"}, timeout=30)

    def secret_record_id(self, replica: str) -> int:
        return json.loads(self.secret()[replica])["id"]

    def secret_values(self) -> list[str]:
        """The admin token, the current registration token and every runner token in the Secret."""
        minted = self.ansible("forgejo_runner_token", {"api_url": self.forge_url, "api_token": self.admin_token})
        tokens = [json.loads(content)["token"] for content in self.secret().values()]
        return [self.admin_token, minted["token"], *tokens]


class ReplicaProcess(LabRunnerProcess):
    """The lab runner started as a pod's runner container would be: the replica's .runner and config.yml, as
    the role stored them in the Secret and the ConfigMap, in its working directory."""

    def __init__(self, lab: HeavyLab, tmp_path: Path, replica: str, env: dict[str, str] | None = None):
        super().__init__(lab.lab_runner, None, tmp_path / replica, [], name=replica)
        self.lab, self.replica = lab, replica
        self.env = env or {}  # the runner container's environment (DOCKER_HOST: the DinD's socket)

    def start(self, wait: bool = False) -> None:
        self.dir.chmod(0o700)
        (self.dir / ".runner").write_text(self.lab.secret()[self.replica])
        (self.dir / ".runner").chmod(0o600)
        (self.dir / "config.yml").write_text(self.lab.config_yml())
        super().start(wait=wait)

    def wait_online(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, self.log_path.read_text()[-2000:]
            if any(r["name"] == self.replica and r["status"] != "offline" for r in self.lab.runners()):
                return
            time.sleep(1)
        pytest.fail(f"{self.replica} did not come online in {timeout:.0f} s: {self.log_path.read_text()}")
