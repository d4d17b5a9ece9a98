"""k8s_capacity_info's errors; its counting is tested in module_utils, and against the lab's API server in
tests/integration/k8s."""

from __future__ import annotations

from ansible_collections.foundation.runners.plugins.modules.k8s_capacity_info import main


def test_a_missing_kubeconfig_is_named(run_module, tmp_path):
    res = run_module(main, {"kubeconfig": str(tmp_path / "none.yaml"), "pod_requests": [{"cpu": "1"}]})
    assert res["failed"] and f"cannot load the kubeconfig {tmp_path / 'none.yaml'}" in res["msg"]


def test_a_bad_quantity_is_named(run_module, tmp_path):
    res = run_module(main, {"kubeconfig": str(tmp_path / "none.yaml"), "pod_requests": [{"cpu": "sixteen"}]})
    assert res["failed"] and "is not a Kubernetes quantity" in res["msg"]


def test_an_unreachable_api_server_names_the_request(run_module, tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: x}}]\n"
    )
    res = run_module(main, {"kubeconfig": str(config), "pod_requests": [{"cpu": "1"}]})
    assert res["failed"] and res["msg"].startswith("GET /api/v1/nodes on https://127.0.0.1:9 failed"), res["msg"]
