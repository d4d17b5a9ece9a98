#!/usr/bin/python
# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_capacity_info
short_description: How many pods of a given size fit on a cluster's nodes
version_added: 0.2.0
description:
  - Reads the nodes and the pods of a Kubernetes cluster and reports, for each schedulable node that matches
    O(node_selector), its allocatable resources, what the pods already on it request, what is free, and how many
    pods requesting O(pod_requests) would fit there.
  - Requests are counted as the scheduler counts them - a pod's containers and sidecars (init containers with
    C(restartPolicy=Always)) together, or a plain init container alone if that is more. Pods that have ended are
    not counted; nor are the pods in O(exclude_namespace) carrying O(exclude_labels), so that a set whose pods run
    already is measured as if they were scheduled anew.
  - Taints, affinity and the pod-count limit are not considered; the result is an upper bound.
author:
  - Foundation Runners maintainers (@foundation-runners)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
  - foundation.runners.attributes.INFO
options:
  kubeconfig:
    description: Path of the kubeconfig file. Without it, the client's default (C(KUBECONFIG), C(~/.kube/config)).
    type: path
  context:
    description: Context of the kubeconfig to use.
    type: str
  pod_requests:
    description:
      - The requests of each container and sidecar of one pod of the set, each a mapping of resource to quantity
        (C(cpu), C(memory), C(ephemeral-storage)); the module adds them up.
    type: list
    elements: dict
    required: true
  node_selector:
    description: Only nodes with all of these labels count, as the set's C(nodeSelector).
    type: dict
    default: {}
  exclude_namespace:
    description: Namespace of the set's own pods (with O(exclude_labels)).
    type: str
  exclude_labels:
    description: Labels of the set's own pods, not counted as taking room.
    type: dict
    default: {}
requirements:
  - kubernetes
"""

EXAMPLES = r"""
- name: Room for two heavy runner pods (a DinD sidecar and the runner)
  foundation.runners.k8s_capacity_info:
    kubeconfig: /etc/rancher/k3s/k3s.yaml
    pod_requests:
      - {cpu: "14", memory: 64Gi, ephemeral-storage: 100Gi}
      - {cpu: 250m, memory: 256Mi}
    node_selector: {kubernetes.io/hostname: crunchy01}
    exclude_namespace: heavy-runners
    exclude_labels: {app.kubernetes.io/name: heavy-runner}
  register: room

- name: Refuse a size that does not fit
  ansible.builtin.assert:
    that: room.fits >= 2
    fail_msg: "{{ room.nodes }}"
"""

RETURN = r"""
fits:
  description: How many pods of O(pod_requests) fit on the matching nodes together.
  returned: success
  type: int
  sample: 1
wanted:
  description: O(pod_requests) as read (cpu in cores, memory and storage in GiB).
  returned: success
  type: dict
  sample: {cpu: "14.25", memory: 64.25Gi}
nodes:
  description:
    - Each matching schedulable node with C(allocatable), C(requested) (by the other pods), C(free) (cpu in cores,
      memory and storage in GiB, as strings) and C(fits).
  returned: success
  type: list
  elements: dict
  sample:
    - name: crunchy01
      allocatable: {cpu: "16", memory: 128Gi}
      requested: {cpu: "1", memory: 8Gi}
      free: {cpu: "15", memory: 120Gi}
      fits: 1
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.foundation.runners.plugins.module_utils import _k8s_capacity as capacity

KUBERNETES_IMPORT_ERROR = None
try:
    import kubernetes
except ImportError:
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()


def read_cluster(module: AnsibleModule) -> tuple[list, list]:
    p = module.params
    try:
        client = kubernetes.config.new_client_from_config(config_file=p["kubeconfig"], context=p["context"])
    except Exception as exc:  # kubernetes raises ConfigException and plain OSError alike
        module.fail_json(msg=f"cannot load the kubeconfig {p['kubeconfig'] or '(default)'}: {exc}")
    core = kubernetes.client.CoreV1Api(client)
    server = client.configuration.host
    lists = []
    for what, call in (("GET /api/v1/nodes", core.list_node), ("GET /api/v1/pods", core.list_pod_for_all_namespaces)):
        try:
            lists.append(client.sanitize_for_serialization(call()).get("items") or [])
        except kubernetes.client.ApiException as exc:
            module.fail_json(msg=f"{what} on {server} failed: {exc.status} {exc.reason}")
        except Exception as exc:  # urllib3 connection errors
            module.fail_json(msg=f"{what} on {server} failed: {exc}")
    return lists[0], lists[1]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
            "pod_requests": {"type": "list", "elements": "dict", "required": True},
            "node_selector": {"type": "dict", "default": {}},
            "exclude_namespace": {"type": "str"},
            "exclude_labels": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    if KUBERNETES_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    p = module.params
    try:
        want = capacity.pod_requests({"containers": [{"resources": {"requests": r}} for r in p["pod_requests"]]})
    except ValueError as exc:
        module.fail_json(msg=f"pod_requests {p['pod_requests']} holds a value that is not a Kubernetes quantity: {exc}")
    nodes, pods = read_cluster(module)
    room = capacity.node_room(
        nodes,
        pods,
        want,
        {str(k): str(v) for k, v in p["node_selector"].items()},
        exclude_namespace=p["exclude_namespace"],
        exclude_labels={str(k): str(v) for k, v in p["exclude_labels"].items()},
    )
    module.exit_json(
        changed=False,
        fits=sum(node["fits"] for node in room),
        wanted=capacity.show(want),
        nodes=[
            {**node, **{key: capacity.show(node[key]) for key in ("allocatable", "requested", "free")}} for node in room
        ],
    )


if __name__ == "__main__":
    main()
