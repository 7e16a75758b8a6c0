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


def _claims_to_provision(
    claims: list[dict[str, Any]], owned_classes: set[str]
) -> list[dict[str, Any]]:
    return [
        c
        for c in claims
        if c.get("status", {}).get("phase") == "Pending"
        and not c["spec"].get("volumeName")
        and c["spec"].get("storageClassName") in owned_classes
        and not c["metadata"].get("deletionTimestamp")
    ]


def _call(api_client: Any, method: str, path: str, body: Any = None) -> dict[str, Any]:
    from indexforge_operator.kube import request_json

    return request_json(api_client, method, path, body=body)


def provision_once(api_client: Any, volume_root: str) -> None:
    """One pass: create PVs for new claims, delete our PVs whose claims are gone."""
    owned = {
        sc["metadata"]["name"]
        for sc in _call(api_client, "GET", "/apis/storage.k8s.io/v1/storageclasses")["items"]
        if sc.get("provisioner") == PROVISIONER_NAME
    }
    claims = _call(api_client, "GET", "/api/v1/persistentvolumeclaims")["items"]
    volumes = _call(api_client, "GET", "/api/v1/persistentvolumes")["items"]
    existing = {pv["metadata"]["name"] for pv in volumes}
    for claim in _claims_to_provision(claims, owned):
        pv = persistent_volume_for(claim, root=volume_root)
        if pv["metadata"]["name"] not in existing:
            _call(api_client, "POST", "/api/v1/persistentvolumes", body=pv)
    for pv in volumes:
        ours = pv["metadata"].get("labels", {}).get("indexforge.test/fake-pv") == "true"
        if ours and pv.get("status", {}).get("phase") in ("Released", "Failed"):
            _call(api_client, "DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")


def run(kubeconfig: str, volume_root: str) -> None:
    from kubernetes import config  # imported here: only the provisioner process pays

    api_client = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    Path(volume_root).mkdir(parents=True, exist_ok=True)
    while not stopping:
        try:
            provision_once(api_client, volume_root)
        except Exception as exc:  # keep serving through API hiccups; the next poll retries
            print(f"provisioner: {exc}", file=sys.stderr, flush=True)
        time.sleep(POLL_SECONDS)
