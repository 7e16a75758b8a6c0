"""Cluster objects the harness creates after the API server is up: fake nodes and storage.

Pure builders (dicts, no I/O) so the node shapes are easy to read and to test.
"""

from __future__ import annotations

from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_COUNT = 4
STORAGE_CLASS = "standard"
# The fake provisioner claims PVCs of this class by this name (tests/cluster/provisioner.py).
PROVISIONER_NAME = "indexforge.test/fake-hostpath"

CPU_NODES = ("kwok-cpu-0", "kwok-cpu-1")
GPU_NODES = ("kwok-gpu-0",)
# Two zones, as a small cloud cluster would have: spreading is tested over nodes and zones.
ZONES = {"kwok-cpu-0": "zone-a", "kwok-cpu-1": "zone-b", "kwok-gpu-0": "zone-a"}
ZONE_LABEL = "topology.kubernetes.io/zone"


def node(name: str, *, gpu: bool) -> dict[str, Any]:
    """A kwok-managed node; the GPU variant is labelled, tainted and advertises 4 GPUs."""
    capacity: dict[str, str] = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    if name in ZONES:
        labels[ZONE_LABEL] = ZONES[name]
    taints: list[dict[str, str]] = []
    if gpu:
        capacity[GPU_RESOURCE] = str(GPU_COUNT)
        labels["nvidia.com/gpu.present"] = "true"
        taints.append({"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            # kwok manages only nodes carrying this annotation.
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def nodes() -> list[dict[str, Any]]:
    return [node(n, gpu=False) for n in CPU_NODES] + [node(n, gpu=True) for n in GPU_NODES]


def default_storage_class() -> dict[str, Any]:
    """Default class served by the harness's fake provisioner (no real storage exists here)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER_NAME,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


def bootstrap_objects() -> list[dict[str, Any]]:
    return [*nodes(), default_storage_class()]


def persistent_volume_for(pvc: dict[str, Any], *, root: str) -> dict[str, Any]:
    """A PV pre-bound to ``pvc`` (claimRef with uid), sized to its request."""
    meta = pvc["metadata"]
    request = pvc["spec"].get("resources", {}).get("requests", {}).get("storage", "1Gi")
    name = f"pv-{meta['uid']}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "labels": {"indexforge.test/fake-pv": "true"},
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER_NAME},
        },
        "spec": {
            "capacity": {"storage": request},
            "accessModes": pvc["spec"].get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": pvc["spec"].get("storageClassName", STORAGE_CLASS),
            "volumeMode": pvc["spec"].get("volumeMode", "Filesystem"),
            "hostPath": {"path": f"{root}/{name}", "type": "DirectoryOrCreate"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
