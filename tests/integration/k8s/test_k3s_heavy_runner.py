"""k3s_heavy_runner against the lab's real kube-apiserver (pods simulated by kwok) and the real lab forge.

The tests run in file order and share one namespace: schemas, bad inputs, the four ways, the pod spec,
then the runner identities (restarts, scale up, scale down) and the -vvv secrecy check.
"""

from __future__ import annotations

import base64
import json
import random
import re
import subprocess

import kubernetes_validate
import pytest
import requests
from heavy_lab import DIGEST, NAME, HeavyLab, ReplicaProcess
from lablib.interrupt import run_killed
from lablib.shell import LAB, ROOT, lab_env
from lablib.tiers import gate_keeps

SCHEMA_VERSIONS = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0"]
VARIANTS = {
    "defaults": {},
    "rootless-pvc-scheduling": {
        "k3s_heavy_runner_dind_rootless": True,
        "k3s_heavy_runner_dind_image": "docker.io/library/docker:28.5.2-dind-rootless" + DIGEST,
        "k3s_heavy_runner_docker_storage": "pvc",
        "k3s_heavy_runner_docker_pvc_storage_class": "local-path",
        "k3s_heavy_runner_node_selector": {"node-role.example.org/heavy": "true"},
        "k3s_heavy_runner_tolerations": [{"key": "heavy", "operator": "Exists", "effect": "NoSchedule"}],
        "k3s_heavy_runner_affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}
                ]
            }
        },
        "k3s_heavy_runner_priority_class_name": "heavy-jobs",
        "k3s_heavy_runner_replicas": 3,
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_manifests_match_the_schemas(heavy: HeavyLab, tmp_path, variant):
    output = tmp_path / "manifests.json"
    credentials = {f"{NAME}-0": '{"uuid": "stand-in"}'}
    render_vars = {"stand_in_credentials": credentials, "output": str(output), **VARIANTS[variant]}
    proc = heavy.run(playbook="render.yml", **render_vars)[0]
    assert proc.returncode == 0, proc.stdout[-3000:]
    manifests = json.loads(output.read_text())
    kinds = [m["kind"] for m in manifests]
    assert kinds == ["Namespace", "ServiceAccount", "ConfigMap", "Service", "NetworkPolicy", "StatefulSet", "Secret"]
    for version in SCHEMA_VERSIONS:
        for manifest in manifests:
            kubernetes_validate.validate(manifest, version, strict=True)
    print(f"{variant}: {len(manifests)} manifests valid for Kubernetes {SCHEMA_VERSIONS[0]} to {SCHEMA_VERSIONS[-1]}")


def test_registry_logins_reach_the_runner_container_alone(heavy: HeavyLab, tmp_path):
    output = tmp_path / "manifests.json"
    auths = [{"registry": "registry.gitlab.com", "username": "frk8s-puller", "password": "frk8s-pull-secret"}]
    credentials = {f"{NAME}-0": '{"uuid": "stand-in"}'}
    render_vars = {"stand_in_credentials": credentials, "output": str(output), "k3s_heavy_runner_registry_auths": auths}
    proc = heavy.run(playbook="render.yml", **render_vars)[0]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "frk8s-pull-secret" not in proc.stdout + proc.stderr
    manifests = json.loads(output.read_text())
    [registry] = [m for m in manifests if m.get("type") == "kubernetes.io/dockerconfigjson"]
    login = base64.b64encode(b"frk8s-puller:frk8s-pull-secret").decode()
    assert json.loads(base64.b64decode(registry["data"][".dockerconfigjson"])) == {
        "auths": {"registry.gitlab.com": {"auth": login}}
    }
    [statefulset] = [m for m in manifests if m["kind"] == "StatefulSet"]
    pod = statefulset["spec"]["template"]["spec"]
    [runner], [dind] = pod["containers"], pod["initContainers"]
    assert {"name": "DOCKER_CONFIG", "value": "/etc/forgejo-runner-registry"} in runner["env"]
    assert {"name": "registry", "mountPath": "/etc/forgejo-runner-registry", "readOnly": True} in runner["volumeMounts"]
    assert "registry" not in [m["name"] for m in dind["volumeMounts"]]
    assert "DOCKER_CONFIG" not in [e["name"] for e in dind.get("env", [])]
    for version in SCHEMA_VERSIONS:
        for manifest in manifests:
            kubernetes_validate.validate(manifest, version, strict=True)


BAD_INPUTS = [
    ({"k3s_heavy_runner_image": "code.forgejo.org/forgejo/runner:12.10.2"}, "is not pinned by digest"),
    ({"k3s_heavy_runner_dind_image": "docker:dind"}, "is not pinned by digest"),
    ({"k3s_heavy_runner_job_image": "registry.gitlab.com/seaspots/tools/seaspots-s57-utils:1.11.0"}, "not pinned"),
    (
        {"k3s_heavy_runner_resources": {"requests": {"cpu": "16", "memory": "64Gi"}, "limits": {"cpu": "8"}}},
        "the cpu limit 8 is below its request 16",
    ),
    (
        {"k3s_heavy_runner_resources": {"requests": {"memory": "64Gi"}, "limits": {"memory": "32Gi"}}},
        "the memory limit 32Gi is below its request 64Gi",
    ),
    ({"k3s_heavy_runner_resources": {"requests": {"cpu": "sixteen"}}}, "is not a Kubernetes"),
    ({"k3s_heavy_runner_resources": {"request": {"cpu": "1"}}}, "must be a mapping with requests and limits"),
    (
        {"k3s_heavy_runner_shutdown_timeout": 3600, "k3s_heavy_runner_termination_grace_period": 60},
        "must be at least\nk3s_heavy_runner_shutdown_timeout",
    ),
    ({"k3s_heavy_runner_namespace": "Heavy_Runners"}, "is not a DNS-1123 label"),
    ({"k3s_heavy_runner_name": "x" * 60}, "at most 52 characters"),
    ({"k3s_heavy_runner_replicas": -1}, "k3s_heavy_runner_replicas must be a whole number"),
    ({"k3s_heavy_runner_forgejo_url": "forge.example.org"}, "must be the forge's http(s):// URL"),
    ({"k3s_heavy_runner_forgejo_api_token": ""}, "k3s_heavy_runner_forgejo_api_token is empty"),
    ({"k3s_heavy_runner_registration": "kubectl"}, "k3s_heavy_runner_registration"),
    ({"k3s_heavy_runner_forge_cidrs": []}, "k3s_heavy_runner_forge_cidrs must list"),
    ({"k3s_heavy_runner_egress_cidrs": ["registry.example.org"]}, "are not CIDRs"),
    (
        {
            "k3s_heavy_runner_registry_auths": [
                {"registry": "https://registry.gitlab.com", "username": "u", "password": "p"}
            ]
        },
        "without scheme or path",
    ),
    ({"k3s_heavy_runner_labels": ["heavy docker"]}, "k3s_heavy_runner_labels must be runner labels"),
    ({"k3s_heavy_runner_capacity": 0}, "k3s_heavy_runner_capacity must be at least 1"),
    ({"k3s_heavy_runner_job_timeout": "forever"}, "k3s_heavy_runner_job_timeout must be a duration"),
    ({"k3s_heavy_runner_docker_storage": "hostpath"}, "k3s_heavy_runner_docker_storage"),
    ({"k3s_heavy_runner_tolerations": ["heavy"]}, "tolerations"),
    ({"k3s_heavy_runner_priority_class_name": "Heavy Jobs"}, "is not a valid PriorityClass name"),
]


BAD_IDS = [f"bad{i:02d}" for i in range(len(BAD_INPUTS))]


@pytest.fixture(scope="module")
def refusals(heavy: HeavyLab, tmp_path_factory) -> dict[str, str]:
    """Every bad input in one ansible-playbook run: a play per input, the role in a block whose rescue says that
    it was refused (one process instead of one per input). Returns each play's output by input id."""
    plays = []
    for case, (overrides, _message) in zip(BAD_IDS, BAD_INPUTS, strict=True):
        role_vars = heavy.role_vars(**{"k3s_heavy_runner_namespace": f"{NAME}-bad", **overrides})
        role = {"ansible.builtin.include_role": {"name": "foundation.runners.k3s_heavy_runner"}, "vars": role_vars}
        role["name"] = "The role"
        said = {"name": "Say", "ansible.builtin.debug": {"msg": f"{case} accepted"}}
        refused = {"name": "Say", "ansible.builtin.debug": {"msg": f"{case} refused"}}
        block = {"name": f"The role with {case}", "block": [role, said], "rescue": [refused]}
        plays.append({"name": case, "hosts": "localhost", "gather_facts": False, "tasks": [block]})
    playbook = tmp_path_factory.mktemp("bad") / "bad_inputs.yml"
    playbook.write_text(json.dumps(plays))
    proc = heavy.ansible.playbook(playbook, {})
    assert proc.returncode == 0, proc.stdout[-3000:]
    sections = re.split(r"^PLAY \[(bad\d\d)\] \*+$", proc.stdout, flags=re.M)[1:]
    return dict(zip(sections[::2], sections[1::2], strict=True))


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=BAD_IDS)
def test_bad_input_fails_before_anything_is_applied(heavy: HeavyLab, refusals, request, overrides, message):
    output = refusals[request.node.callspec.id]
    assert f"{request.node.callspec.id} refused" in output, f"accepted {overrides}: {output[-3000:]}"
    assert " ".join(message.split()) in " ".join(output.split()), output[-3000:]
    assert not heavy.namespace_exists(f"{NAME}-bad")
    assert not heavy.namespace_exists()  # the next test also finds no registration on the forge


def test_check_mode_on_a_fresh_cluster_changes_nothing(heavy: HeavyLab):
    changed = heavy.run_ok("--check", "--diff")
    assert changed > 0
    assert not heavy.namespace_exists()
    assert heavy.runners() == []


def test_apply_then_reapply_is_unchanged(heavy: HeavyLab):
    assert heavy.run_ok() > 0
    heavy.wait_ready(1)
    first = heavy.secret()
    assert heavy.run_ok() == 0
    assert heavy.run_ok("--check") == 0
    assert heavy.secret() == first
    assert len(heavy.runners()) == 1


def test_cpu_request_change_shows_a_diff_and_check_mode_keeps_the_server(heavy: HeavyLab):
    resources = {
        "requests": {"cpu": "12", "memory": "64Gi", "ephemeral-storage": "100Gi"},
        "limits": {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "100Gi"},
    }
    before = heavy.statefulset().metadata.resource_version
    proc, changed = heavy.run("--check", "--diff", k3s_heavy_runner_resources=resources)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert changed == 1
    assert '"cpu": "14"' in proc.stdout, proc.stdout[-4000:]  # the default request, before
    assert '"cpu": "12"' in proc.stdout, proc.stdout[-4000:]
    assert heavy.statefulset().metadata.resource_version == before
    assert heavy.run_ok("--diff", k3s_heavy_runner_resources=resources) == 1
    dind = heavy.statefulset().spec.template.spec.init_containers[0]
    assert dind.resources.requests["cpu"] == "12"
    assert heavy.run_ok() == 1  # back to the defaults
    heavy.wait_ready(1)


def test_pod_spec_under_kwok(heavy: HeavyLab):
    heavy.wait_ready(1)
    sts = heavy.statefulset()
    spec = sts.spec.template.spec
    pod = heavy.core.read_namespaced_pod(f"{NAME}-0", NAME)
    assert pod.status.phase == "Running"
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    assert pod.spec.node_name.startswith("frlab-k8s-node-")
    assert spec.termination_grace_period_seconds == 40  # shutdown_timeout 30
    assert spec.automount_service_account_token is False
    (dind,) = spec.init_containers
    (runner,) = spec.containers
    assert dind.name == "dind" and dind.restart_policy == "Always"
    assert dind.security_context.privileged is True
    assert runner.security_context.privileged in (None, False)
    assert runner.security_context.run_as_non_root is True
    assert runner.security_context.read_only_root_filesystem is True
    assert runner.security_context.allow_privilege_escalation is False
    want = {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "100Gi"}
    assert dind.resources.limits == want and dind.resources.requests == {**want, "cpu": "14"}
    images = [dind.image, runner.image]
    assert all("@sha256:" in image for image in images), images
    assert f"heavy:docker://registry.gitlab.com/seaspots/tools/seaspots-s57-utils:1.11.0{DIGEST}" in heavy.config_yml()
    policy = heavy.net.read_namespaced_network_policy(NAME, NAME)
    assert policy.spec.policy_types == ["Ingress", "Egress"] and not policy.spec.ingress
    blocks = [peer.ip_block.cidr for rule in policy.spec.egress for peer in rule.to or [] if peer.ip_block]
    assert blocks == ["198.51.100.10/32", "192.0.2.0/24"]
    forge_rule = policy.spec.egress[0]
    assert [(p.protocol, p.port) for p in forge_rule.ports] == [("TCP", 3001)]
    ns = heavy.core.read_namespace(NAME)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "privileged"


CRUNCHY01 = {"frlab.example.org/size": "crunchy01"}  # the lab's 16-CPU, 128 GiB node; a stand-in requests 1 CPU, 8 GiB


def test_the_defaults_fit_a_crunchy01_sized_node(heavy: HeavyLab):
    assert heavy.run_ok(k3s_heavy_runner_node_selector=CRUNCHY01) > 0
    heavy.wait_ready(1)
    pod = heavy.core.read_namespaced_pod(f"{NAME}-0", NAME)
    assert pod.spec.node_name == "frlab-k8s-crunchy01", pod.spec.node_name
    print(f"defaults (14.25 CPU, 64.25 GiB per pod) Ready on {pod.spec.node_name}")


def test_a_size_that_does_not_fit_is_refused_with_the_numbers(heavy: HeavyLab):
    before = heavy.statefulset().metadata.resource_version
    full = {"requests": {"cpu": "16", "memory": "64Gi"}, "limits": {"cpu": "16", "memory": "64Gi"}}
    proc = heavy.run(k3s_heavy_runner_node_selector=CRUNCHY01, k3s_heavy_runner_resources=full)[0]
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, output[-3000:]
    assert "1 pod(s) each requesting {'cpu': '16.25', 'memory': '64.25Gi'}" in output, output[-3000:]
    assert "room for 0" in output and "frlab-k8s-crunchy01 allocatable {'cpu': '16'" in output, output[-3000:]
    assert "free {'cpu': '15'" in output, output[-3000:]
    assert heavy.statefulset().metadata.resource_version == before
    assert heavy.run_ok() > 0  # back to the defaults, on any node
    heavy.wait_ready(1)


def test_restarts_keep_one_identity(heavy: HeavyLab, tmp_path):
    (record,) = heavy.runners()
    stored = json.loads(heavy.secret()[f"{NAME}-0"])
    assert stored["id"] == record["id"]
    process = ReplicaProcess(heavy, tmp_path, f"{NAME}-0")
    try:
        for attempt in range(3):
            process.start()
            process.wait_online()
            process.stop()
            records = heavy.runners()
            print(f"restart {attempt + 1}: {len(records)} record(s): {[r['id'] for r in records]}")
            assert [r["id"] for r in records] == [stored["id"]]
        assert heavy.run_ok() == 0
        assert [r["id"] for r in heavy.runners()] == [stored["id"]]
    finally:
        process.stop()


def test_scale_to_two_and_back_with_secrets_hidden(heavy: HeavyLab, tmp_path):
    first = json.loads(heavy.secret()[f"{NAME}-0"])
    # An earlier run was killed between registering replica 1 and storing its .runner: an offline record.
    orphan = heavy.ansible(
        "forgejo_runner_token",
        {"api_url": heavy.forge_url, "api_token": heavy.admin_token, "runner_name": f"{NAME}-1"},
    )["runner"]
    proc = heavy.run("-vvv", k3s_heavy_runner_replicas=2)[0]
    assert proc.returncode == 0, proc.stdout[-6000:]
    heavy.wait_ready(2)
    secret = heavy.secret()
    assert sorted(secret) == [f"{NAME}-0", f"{NAME}-1"]
    second = json.loads(secret[f"{NAME}-1"])
    assert json.loads(secret[f"{NAME}-0"])["id"] == first["id"]
    records = heavy.runners()
    assert sorted(r["name"] for r in records) == [f"{NAME}-0", f"{NAME}-1"]
    assert {r["id"] for r in records} == {first["id"], second["id"]}
    assert orphan["id"] not in {r["id"] for r in records}, "the interrupted run's record was kept"

    leaked = [s for s in heavy.secret_values() if s and s in proc.stdout + proc.stderr]
    assert not leaked, "a secret appears in the -vvv output"
    config = heavy.config_yml()
    assert not [s for s in heavy.secret_values() if s and s in config], "a secret appears in the ConfigMap"

    process = ReplicaProcess(heavy, tmp_path, f"{NAME}-1")
    try:  # the second replica comes online as its pod would, then its pod goes away
        process.start()
        process.wait_online()
    finally:
        process.stop()
    assert heavy.run_ok(k3s_heavy_runner_replicas=1) > 0
    heavy.wait_ready(1)
    assert [r["id"] for r in heavy.runners()] == [first["id"]]
    assert sorted(heavy.secret()) == [f"{NAME}-0"]


# The tasks from the registration to the Secret's write, killed as they start (the tasks in between only compute
# facts, so they fall in the same windows); the register call also at a random point within it (the forge may or
# may not have made the record yet).
KILL_POINTS = [
    ("Delete the offline records of new replica names", 0.0),
    ("Register each new replica from the controller", 0.0),
    ("Register each new replica from the controller", random.uniform(0.2, 1.2)),
    ("Keep the new credentials", 0.0),
    ("Apply the Secrets", 0.0),
    ("Apply the service account, config, service, network policy and StatefulSet", 0.0),
]


def test_every_kill_point_names_a_task_of_the_role():
    """A renamed task would let the run end unkilled, found only after a whole playbook run."""
    tasks = "".join(path.read_text() for path in (ROOT / "roles" / "k3s_heavy_runner" / "tasks").glob("*.yml"))
    assert not [point[0] for point in KILL_POINTS if f"name: {point[0]}" not in tasks]


# The gate kills the register call at a random point within it; make test-extended kills at every point.
@pytest.mark.parametrize(
    ("task", "delay"), gate_keeps(KILL_POINTS, 2), ids=[f"kill{i:02d}" for i in range(len(KILL_POINTS))]
)
def test_a_killed_registration_converges_on_the_next_run(heavy: HeavyLab, tmp_path, task, delay):
    """A run that registers replica 1, killed (SIGKILL to the whole process group) at ``task``: the next run
    converges, the replica comes online with its stored identity, and the forge holds one record of its name."""
    replica = f"{NAME}-1"
    forget_replica(heavy, replica)
    argv, env = heavy.ansible.playbook_command(heavy.playbook_path(), heavy.role_vars(k3s_heavy_runner_replicas=2))
    killed = run_killed(argv, env, f"k3s_heavy_runner : {task}", delay)
    assert killed.killed, f"the run ended before {task!r}:\n{killed.output[-3000:]}"
    assert heavy.run_ok(k3s_heavy_runner_replicas=2) >= 0
    heavy.wait_ready(2)
    records = [r for r in heavy.runners() if r["name"] == replica]
    assert len(records) == 1, records
    assert heavy.secret_record_id(replica) == records[0]["id"]
    process = ReplicaProcess(heavy, tmp_path, replica)
    try:
        process.start()
        process.wait_online()
    finally:
        process.stop()
    assert heavy.run_ok(k3s_heavy_runner_replicas=2) == 0
    print(f"killed {killed.seconds:.1f} s into the run, {delay:.2f} s after {task!r} began: converged, one record")


def forget_replica(heavy: HeavyLab, replica: str) -> None:
    """Replica 1 as new: no stored credentials, no record on the forge (the test's reset, not the role's)."""
    for runner in heavy.runners():
        if runner["name"] == replica:
            url = f"{heavy.forge_url}/api/v1/admin/actions/runners/{runner['id']}"
            requests.delete(url, headers={"Authorization": f"token {heavy.admin_token}"}, timeout=30)
    if replica in heavy.secret():
        heavy.core.patch_namespaced_secret(f"{NAME}-credentials", NAME, {"data": {replica: None}})


def test_on_forgejo_14_the_stored_credentials_are_trusted(heavy: HeavyLab):
    """The lab forge behind its Forgejo 14 profile (tests/lab/forge-profile): no runners list, so the role keeps
    the Secret's credentials as they are and says so in one line; check mode, so nothing moves to the proxy's URL."""
    profile = str(LAB / "forge-profile")
    subprocess.run([profile, "up"], check=True, capture_output=True)
    subprocess.run([profile, "set", "14"], check=True, capture_output=True)
    try:
        url = lab_env([profile, "env"])["FORGE_PROFILE_URL"]
        proc = heavy.run("--check", k3s_heavy_runner_forgejo_url=url)[0]
    finally:
        subprocess.run([profile, "down"], check=False, capture_output=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    lines = [line for line in proc.stdout.splitlines() if "heavy identity: the stored credentials are trusted" in line]
    assert len(lines) == 1 and "Forgejo 15" in lines[0], proc.stdout[-3000:]
    assert "would register" not in proc.stdout


def test_no_secret_in_any_configmap(heavy: HeavyLab):
    values = heavy.secret_values()
    for config_map in heavy.core.list_namespaced_config_map(NAME).items:
        text = json.dumps(config_map.data or {})
        assert not [s for s in values if s and s in text], config_map.metadata.name
