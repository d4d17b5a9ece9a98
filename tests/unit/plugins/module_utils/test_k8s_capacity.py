from __future__ import annotations

from decimal import Decimal

from ansible_collections.foundation.runners.plugins.module_utils import _k8s_capacity as capacity

GI = Decimal(1024**3)


def node(name, cpu="16", memory="128Gi", labels=None, unschedulable=False):
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"unschedulable": unschedulable},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "ephemeral-storage": "200Gi", "pods": "110"}},
    }


def pod(on, cpu, memory="1Gi", *, phase="Running", namespace="other", labels=None, init=None):
    spec = {"nodeName": on, "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    if init:
        spec["initContainers"] = init
    return {"metadata": {"namespace": namespace, "labels": labels or {}}, "spec": spec, "status": {"phase": phase}}


HEAVY = {"cpu": Decimal("14.25"), "memory": Decimal("64.25") * GI}


def test_sidecars_add_up_and_a_plain_init_container_counts_alone():
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}],
        "initContainers": [
            {"restartPolicy": "Always", "resources": {"requests": {"cpu": "14", "memory": "64Gi"}}},
            {"resources": {"requests": {"cpu": "20"}}},
        ],
    }
    requests = capacity.pod_requests(spec)
    assert requests["cpu"] == Decimal("34")  # the plain init container runs beside the sidecar started before it
    assert requests["memory"] == Decimal("64.25") * GI


def test_a_crunchy01_sized_node_with_a_standin_workload():
    nodes = [node("crunchy01")]
    pods = [pod("crunchy01", "1", "8Gi"), pod("crunchy01", "4", phase="Succeeded")]
    (room,) = capacity.node_room(nodes, pods, HEAVY, {})
    assert room["free"]["cpu"] == Decimal("15") and room["fits"] == 1
    too_big = {"cpu": Decimal("16.25"), "memory": Decimal("64.25") * GI}
    assert capacity.node_room(nodes, pods, too_big, {})[0]["fits"] == 0
    assert capacity.show(room["free"]) == {"cpu": "15", "memory": "120Gi", "ephemeral-storage": "200Gi"}


def test_selector_unschedulable_and_the_sets_own_pods():
    nodes = [node("a", labels={"heavy": "yes"}), node("b"), node("c", labels={"heavy": "yes"}, unschedulable=True)]
    own = pod("a", "14", labels={"app": "heavy"}, namespace="heavy")
    report = capacity.node_room(
        nodes, [own], HEAVY, {"heavy": "yes"}, exclude_namespace="heavy", exclude_labels={"app": "heavy"}
    )
    assert [r["name"] for r in report] == ["a"] and report[0]["fits"] == 1
    counted = capacity.node_room(nodes, [own], HEAVY, {"heavy": "yes"})
    assert counted[0]["fits"] == 0
