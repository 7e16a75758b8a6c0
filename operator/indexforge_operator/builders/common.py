"""Shared pieces of the builders: metadata, restricted security contexts, Services, PDBs.

Everything returns plain dicts shaped like the Kubernetes API objects; nothing here reads
the clock, the environment or the cluster.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..naming import LABEL_SCRAPE, Component, Names, labels, selector_labels
from ..spec import IndexForgeSpec
from ..spec_common import DisruptionBudget, Resources

Obj = dict[str, Any]
CHECKSUM_ANNOTATION = "indexforge.io/config-checksum"
TMP_VOLUME = "tmp"


def meta(
    names: Names,
    component: Component | None,
    name: str,
    *,
    extra_labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """metadata of a namespaced child object (ownerReferences are the reconciler's job)."""
    out: Obj = {
        "name": name,
        "namespace": names.namespace,
        # Extra labels first: they must never override the labels prune and selectors use.
        "labels": {**(extra_labels or {}), **labels(names, component)},
    }
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def checksum(*data: Mapping[str, Any]) -> str:
    """sha256 over canonical JSON of config data: changes exactly when the content does."""
    blob = json.dumps(list(data), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def pod_security(uid: int) -> Obj:
    """Pod-level part of Pod Security "restricted" (explicit uid: images name their user)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security(*, read_only_root: bool = True) -> Obj:
    """Container-level part of Pod Security "restricted"."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(spec: Resources) -> Obj:
    out: Obj = {}
    if spec.requests:
        out["requests"] = dict(spec.requests)
    if spec.limits:
        out["limits"] = dict(spec.limits)
    return out


def empty_dir(name: str, *, size_limit: str | None = None) -> Obj:
    source: Obj = {"sizeLimit": size_limit} if size_limit else {}
    return {"name": name, "emptyDir": source}


def tmp_volume(size_limit: str | None = None) -> Obj:
    """Writable /tmp for images run with a read-only root filesystem."""
    return empty_dir(TMP_VOLUME, size_limit=size_limit or "256Mi")


def tmp_mount() -> Obj:
    return {"name": TMP_VOLUME, "mountPath": "/tmp"}


def env(name: str, value: str | int | float | bool) -> Obj:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return {"name": name, "value": text}


def http_probe(path: str, port: str | int, *, period: int = 10, failures: int = 3) -> Obj:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def pod_template(
    names: Names,
    component: Component,
    *,
    spec: IndexForgeSpec,
    pod_spec: Obj,
    config_checksum: str | None = None,
) -> Obj:
    """Pod template with labels, optional checksum annotation and shared pod fields."""
    template_meta: Obj = {"labels": labels(names, component)}
    if config_checksum is not None:
        # A changed ConfigMap/Secret changes the template, so the workload rolls its pods.
        template_meta["annotations"] = {CHECKSUM_ANNOTATION: config_checksum}
    full: Obj = {
        "serviceAccountName": names.component(component),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,  # services find each other via INDEXFORGE_* URLs
        **pod_spec,
    }
    if spec.image_pull_secrets:
        full["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    full["topologySpreadConstraints"] = spread_constraints(spec, names, component)
    return {"metadata": template_meta, "spec": full}


def spread_constraints(spec: IndexForgeSpec, names: Names, component: Component) -> list[Obj]:
    """One component's replicas over nodes, then zones.

    Only nodes the pod may use count (its node selector/affinity and taints: `Honor`), so
    GPU pods are spread over GPU nodes and a tainted node is not an empty domain nobody can
    fill. `pod-template-hash` limits the count to one Deployment revision: during a rollout
    the new pods spread among themselves instead of waiting for old ones to go (StatefulSet
    pods lack that label, and a missing key is ignored)."""
    spread = spec.topology_spread
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": policy,
            "labelSelector": {"matchLabels": selector_labels(names, component)},
            "matchLabelKeys": ["pod-template-hash"],
            "nodeAffinityPolicy": "Honor",
            "nodeTaintsPolicy": "Honor",
        }
        for key, policy in (
            ("kubernetes.io/hostname", spread.node),
            ("topology.kubernetes.io/zone", spread.zone),
        )
    ]


Rollout = Literal["surge", "replace", "recreate"]
_STRATEGIES: dict[str, Obj] = {
    # A new pod first: no capacity lost, but it needs room for one more pod.
    "surge": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    # An old pod first: for pods holding a scarce resource (whole GPUs) a surge pod may
    # never schedule, and the rollout would never end.
    "replace": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
    # Every old pod first: singletons owning something exclusive.
    "recreate": {"type": "Recreate"},
}


def deployment(
    names: Names,
    component: Component,
    *,
    replicas: int | None,
    template: Obj,
    rollout: Rollout = "surge",
) -> Obj:
    """A Deployment; `replicas=None` leaves the count to an HPA (no apply fights)."""
    strategy = _STRATEGIES[rollout]
    dep_spec: Obj = {
        "selector": {"matchLabels": selector_labels(names, component)},
        "revisionHistoryLimit": 5,
        "strategy": strategy,
        "template": template,
    }
    if replicas is not None:
        dep_spec = {"replicas": replicas, **dep_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(names, component, names.component(component)),
        "spec": dep_spec,
    }


def service_port(name: str, port: int, target: int | str | None = None) -> Obj:
    return {"name": name, "port": port, "targetPort": target or name, "protocol": "TCP"}


def service(
    names: Names, component: Component, ports: Sequence[Obj], *, service_type: str = "ClusterIP"
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(names, component, names.component(component)),
        "spec": {
            "type": service_type,
            "selector": selector_labels(names, component),
            "ports": list(ports),
        },
    }


def headless_service(
    names: Names,
    component: Component,
    ports: Sequence[Obj],
    *,
    scrape: bool = True,
    publish_not_ready: bool = False,
) -> Obj:
    """Headless Service: per-pod DNS records (StatefulSets, Kong targets, DNS-based scraping)."""
    extra = {LABEL_SCRAPE: "true"} if scrape else None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(names, component, names.headless(component), extra_labels=extra),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": publish_not_ready,
            "selector": selector_labels(names, component),
            "ports": list(ports),
        },
    }


def service_account(names: Names, component: Component) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(names, component, names.component(component)),
        # No component talks to the Kubernetes API; no token in any pod.
        "automountServiceAccountToken": False,
    }


def config_map(names: Names, component: Component, name: str, data: Mapping[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(names, component, name),
        "data": dict(data),
    }


def secret(names: Names, component: Component | None, name: str, data: Mapping[str, str]) -> Obj:
    """Opaque Secret; `data` is base64 so a re-apply compares equal to what the server stores."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(names, component, name),
        "type": "Opaque",
        "data": {k: b64(v) for k, v in data.items()},
    }


def wants_pdb(budget: DisruptionBudget, *, max_replicas: int) -> bool:
    """A PDB only protects something when more than one replica can exist."""
    return budget.enabled and max_replicas > 1


def pdb(names: Names, component: Component, budget: DisruptionBudget) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(names, component, names.component(component)),
        "spec": {
            "maxUnavailable": budget.max_unavailable,
            "selector": {"matchLabels": selector_labels(names, component)},
        },
    }
