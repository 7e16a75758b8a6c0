"""StatefulSet and volumeClaimTemplate shapes shared by Redis and Weaviate."""

from __future__ import annotations

from ..naming import Component, Names, labels, selector_labels
from ..spec import IndexForgeSpec
from ..spec_common import Persistence
from .common import Obj, meta

DATA_VOLUME = "data"


def data_volume_claim(names: Names, component: Component, persistence: Persistence) -> Obj | None:
    """The `data` claim template, or None when persistence is off (an emptyDir is used)."""
    if not persistence.enabled:
        return None
    claim_spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": persistence.size}},
    }
    if persistence.storage_class_name:
        claim_spec["storageClassName"] = persistence.storage_class_name
    # The labels let the reconciler find (and, under deletionPolicy Delete, remove) the PVCs.
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": DATA_VOLUME, "labels": labels(names, component)},
        "spec": claim_spec,
    }


def data_volumes(claim: Obj | None) -> list[Obj]:
    """Pod volumes standing in for the claim when there is none."""
    return [] if claim is not None else [{"name": DATA_VOLUME, "emptyDir": {}}]


def statefulset(
    spec: IndexForgeSpec,
    names: Names,
    component: Component,
    *,
    replicas: int,
    template: Obj,
    claim: Obj | None,
    parallel: bool = False,
) -> Obj:
    sts_spec: Obj = {
        "replicas": replicas,
        "serviceName": names.headless(component),
        "selector": {"matchLabels": selector_labels(names, component)},
        "podManagementPolicy": "Parallel" if parallel else "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate"},
        "template": template,
    }
    if claim is not None:
        sts_spec["volumeClaimTemplates"] = [claim]
        # deletionPolicy reaches the PVCs through the StatefulSet controller as well.
        sts_spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": spec.deletion_policy,
            "whenScaled": "Retain",
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(names, component, names.component(component)),
        "spec": sts_spec,
    }
