"""A tiny dynamic provisioner for the harness's default StorageClass.

No storage exists on the local control plane, so StatefulSets with volumeClaimTemplates would
wait forever. This loop plays the part of an external provisioner: for each pending claim of a
class it owns, it creates a hostPath PV pre-bound to the claim (the real PV controller in
kube-controller-manager then binds them), and it deletes its PVs once they are Released.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

from tests.cluster.objects import PROVISIONER_NAME, persistent_volume_for

POLL_SECONDS = 0.5


def _claims_to_provision(claims: list[dict[str, Any]], owned_classes: set[str]) -> list[dict[str, Any]]:
    return [
        c
        for c in claims
        if c.get("status", {}).get("phase") == "Pending"
        and not c["spec"].get("volumeName")
        and c["spec"].get("storageClassName") in owned_classes
        and not c["metadata"].get("deletionTimestamp")
    ]


def run(kubeconfig: str, volume_root: str) -> None:
    from kubernetes import client, config  # imported here: only the provisioner process pays

    api_client = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api_client)
    storage = client.StorageV1Api(api_client)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    Path(volume_root).mkdir(parents=True, exist_ok=True)
    while not stopping:
        try:
            owned = {
                sc.metadata.name
                for sc in storage.list_storage_class().items
                if sc.provisioner == PROVISIONER_NAME
            }
            claims = api_client.sanitize_for_serialization(
                core.list_persistent_volume_claim_for_all_namespaces().items
            )
            existing = {pv.metadata.name for pv in core.list_persistent_volume().items}
            for claim in _claims_to_provision(claims, owned):
                pv = persistent_volume_for(claim, root=volume_root)
                if pv["metadata"]["name"] not in existing:
                    core.create_persistent_volume(pv)
            for pv in core.list_persistent_volume(label_selector="indexforge.test/fake-pv=true").items:
                if pv.status.phase in ("Released", "Failed"):
                    core.delete_persistent_volume(pv.metadata.name)
        except Exception as exc:  # keep serving through API hiccups; the next poll retries
            print(f"provisioner: {exc}", file=sys.stderr, flush=True)
        time.sleep(POLL_SECONDS)
