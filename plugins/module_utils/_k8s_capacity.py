# Private to the foundation.runners collection; not a public API, may change without notice.
"""Whether pods of a given size fit on a cluster's nodes, counted as the scheduler counts requests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

try:
    from kubernetes.utils import parse_quantity
except ImportError:  # pragma: no cover - reported by the module
    parse_quantity = None

RESOURCES = ("cpu", "memory", "ephemeral-storage")
DONE_PHASES = ("Succeeded", "Failed")


def quantities(values: dict[str, Any] | None) -> dict[str, Decimal]:
    return {name: Decimal(parse_quantity(str(value))) for name, value in (values or {}).items() if name in RESOURCES}


def _add(total: dict[str, Decimal], more: dict[str, Decimal]) -> dict[str, Decimal]:
    return {name: total.get(name, Decimal(0)) + more.get(name, Decimal(0)) for name in set(total) | set(more)}


def pod_requests(spec: dict[str, Any]) -> dict[str, Decimal]:
    """A pod's effective requests: its containers and sidecars (init containers that keep running) together, or
    a plain init container's own requests while it runs alone, whichever is larger per resource."""
    running: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        running = _add(running, quantities((container.get("resources") or {}).get("requests")))
    init_peak: dict[str, Decimal] = {}
    sidecars: dict[str, Decimal] = {}
    for container in spec.get("initContainers") or []:
        requests = quantities((container.get("resources") or {}).get("requests"))
        if container.get("restartPolicy") == "Always":
            sidecars = _add(sidecars, requests)
        else:
            alone = _add(sidecars, requests)
            init_peak = {
                n: max(init_peak.get(n, Decimal(0)), alone.get(n, Decimal(0))) for n in set(init_peak) | set(alone)
            }
    running = _add(running, sidecars)
    return {n: max(running.get(n, Decimal(0)), init_peak.get(n, Decimal(0))) for n in set(running) | set(init_peak)}


def _matches(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _excluded(pod: dict[str, Any], namespace: str | None, labels: dict[str, str]) -> bool:
    meta = pod.get("metadata") or {}
    return (
        bool(namespace and labels) and meta.get("namespace") == namespace and _matches(meta.get("labels") or {}, labels)
    )


def node_room(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    want: dict[str, Decimal],
    node_selector: dict[str, str],
    *,
    exclude_namespace: str | None = None,
    exclude_labels: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Per schedulable node matching ``node_selector``: allocatable, requested by other pods, free, and how many
    pods of requests ``want`` fit. Pods in ``exclude_namespace`` with ``exclude_labels`` (the set's own) are not
    counted as taking room, so a re-run with its pods running sees the room they would take again."""
    report = []
    for node in nodes:
        meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
        if spec.get("unschedulable") or not _matches(meta.get("labels") or {}, node_selector):
            continue
        allocatable = quantities(status.get("allocatable"))
        used: dict[str, Decimal] = {}
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") != meta.get("name"):
                continue
            if (pod.get("status") or {}).get("phase") in DONE_PHASES or _excluded(
                pod, exclude_namespace, exclude_labels or {}
            ):
                continue
            used = _add(used, pod_requests(pod.get("spec") or {}))
        free = {n: allocatable.get(n, Decimal(0)) - used.get(n, Decimal(0)) for n in allocatable}
        fits = min(
            (int(free.get(n, Decimal(0)) // amount) for n, amount in want.items() if amount > 0 and n in allocatable),
            default=0,
        )
        report.append(
            {
                "name": meta.get("name"),
                "allocatable": allocatable,
                "requested": used,
                "free": free,
                "fits": max(fits, 0),
            }
        )
    return report


def show(values: dict[str, Decimal]) -> dict[str, str]:
    """Quantities as plain numbers: cpu in cores, memory and storage in GiB, rounded to two places."""
    out = {}
    for name in sorted(values, key=lambda n: RESOURCES.index(n) if n in RESOURCES else len(RESOURCES)):
        value = values[name]
        scaled = value if name == "cpu" else value / Decimal(1024**3)
        out[name] = f"{scaled.quantize(Decimal('0.01')).normalize():f}" + ("" if name == "cpu" else "Gi")
    return out
