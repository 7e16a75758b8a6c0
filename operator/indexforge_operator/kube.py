"""A thin, dict-in/dict-out Kubernetes client for the operator's writes.

Built on the official client's ``ApiClient`` (auth, TLS, retries) but without its generated
models or discovery: objects stay plain dicts end to end, paths come from a fixed table of the
kinds the builders produce, and server-side apply is one PATCH.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from indexforge_operator import metrics

FIELD_MANAGER = "indexforge-operator"
# (connect, read) seconds for every call: a half-open connection must fail a pass, not hang it.
REQUEST_TIMEOUT: tuple[float, float] = (5.0, 30.0)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def collection_path(self, namespace: str | None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"

    def path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


# Every kind the builders may emit. Order matters for apply: config before workloads.
RESOURCES: tuple[Resource, ...] = (
    Resource("v1", "ServiceAccount", "serviceaccounts"),
    Resource("v1", "Secret", "secrets"),
    Resource("v1", "ConfigMap", "configmaps"),
    Resource("v1", "Service", "services"),
    Resource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Resource("apps/v1", "StatefulSet", "statefulsets"),
    Resource("apps/v1", "Deployment", "deployments"),
    Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
    Resource("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
    Resource("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "alertmanagerconfigs"),
    Resource("batch/v1", "CronJob", "cronjobs"),
    # On-demand backup/restore Jobs (on_demand.py): created once, watched for their result.
    Resource("batch/v1", "Job", "jobs"),
    Resource("rabbitmq.com/v1beta1", "RabbitmqCluster", "rabbitmqclusters"),
    Resource("rabbitmq.com/v1beta1", "User", "users"),
    Resource("rabbitmq.com/v1beta1", "Permission", "permissions"),
    Resource("rabbitmq.com/v1beta1", "Exchange", "exchanges"),
    Resource("rabbitmq.com/v1beta1", "Queue", "queues"),
    Resource("rabbitmq.com/v1beta1", "Binding", "bindings"),
    Resource("keda.sh/v1alpha1", "ScaledObject", "scaledobjects"),
    Resource("keda.sh/v1alpha1", "TriggerAuthentication", "triggerauthentications"),
    Resource("security.istio.io/v1", "PeerAuthentication", "peerauthentications"),
    Resource("security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies"),
    Resource("networking.istio.io/v1", "DestinationRule", "destinationrules"),
    # secrets.provider externalSecrets (builders/external_secrets.py).
    Resource("external-secrets.io/v1", "SecretStore", "secretstores"),
    Resource("external-secrets.io/v1", "ExternalSecret", "externalsecrets"),
)
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def resource_for(obj: Obj) -> Resource:
    key = (obj["apiVersion"], obj["kind"])
    if key not in _BY_KIND:
        raise KeyError(f"no REST mapping for {key[1]} ({key[0]}); add it to kube.RESOURCES")
    return _BY_KIND[key]


def request_json(
    api: k8s.ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> Obj:
    """One authenticated request with a timeout; JSON in, JSON out; ApiException on non-2xx."""
    serialized = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    method_, url, headers, payload, post_params = serialized
    response = api.call_api(
        method_,
        url,
        header_params=headers,
        body=payload,
        post_params=post_params,
        _request_timeout=timeout,
    )
    raw = response.read()  # type: ignore[no-untyped-call]
    if not 200 <= int(response.status) < 300:
        raise ApiException(status=response.status, reason=response.reason, body=raw)
    return dict(json.loads(raw)) if raw else {}


def _resource_of(path: str) -> str:
    """The resource a path addresses ("deployments", "indexforges/status"), for metrics."""
    parts = path.strip("/").split("/")
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        parts = parts[parts.index("namespaces") + 2 :]
    else:
        parts = parts[2:] if parts[0] == "api" else parts[3:]
    return "/".join(parts[0:1] + parts[2:3]) if parts else ""


class NotLeader(RuntimeError):
    """A write was attempted by a replica that does not hold the leader Lease."""


def error_message(exc: ApiException) -> str:
    """The API server's own message (the Status body), falling back to the HTTP reason."""
    try:
        body = json.loads(exc.body or b"{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or f"{exc.status} {exc.reason}")


class Kube:
    """Synchronous JSON calls against one API server.

    ``may_write`` guards every mutating call: only the leader replica writes, and a replica
    that lost the Lease mid-pass stops at its next write instead of racing the new leader.
    """

    def __init__(
        self, api_client: k8s.ApiClient, *, may_write: Callable[[], bool] = lambda: True
    ) -> None:
        self._api = api_client
        self._may_write = may_write
        self.requests = 0  # every call made (passes and leader election), for tests

    def _call(self, method: str, path: str, *, leader_call: bool = False, **kwargs: Any) -> Obj:
        # Leader election itself must write the Lease before this replica leads.
        if method != "GET" and not leader_call and not self._may_write():
            raise NotLeader(f"{method} {path} refused: this replica is not the leader")
        self.requests += 1
        metrics.API_REQUESTS.labels(verb=method, resource=_resource_of(path)).inc()
        return request_json(self._api, method, path, **kwargs)

    def apply(self, obj: Obj, *, field_manager: str = FIELD_MANAGER) -> Obj:
        """Server-side apply; ``force`` because this manager is the single owner of these fields."""
        res = resource_for(obj)
        path = res.path(obj["metadata"].get("namespace"), obj["metadata"]["name"])
        return self._call(
            "PATCH",
            path,
            body=json.dumps(obj),  # JSON is YAML: the apply-patch+yaml body as a string
            query=[("fieldManager", field_manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def bearer_token(self) -> str:
        """The token this client authenticates with (the operator's ServiceAccount token in a
        pod or with a ServiceAccount kubeconfig; "" with client certificates). Vault's
        Kubernetes auth logs in with it (vault_store.py)."""
        # auth_settings() runs the client's refresh hook (in a pod: re-reads the token file).
        settings = self._api.configuration.auth_settings().get("BearerToken") or {}
        return str(settings.get("value") or "").removeprefix("Bearer ").strip()

    def get(self, obj_ref: Obj) -> Obj | None:
        res = resource_for(obj_ref)
        try:
            return self._call(
                "GET",
                res.path(obj_ref["metadata"].get("namespace"), obj_ref["metadata"]["name"]),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, obj: Obj, *, propagation: str = "Background") -> None:
        """``propagation`` Orphan leaves the dependents (a StatefulSet's pods) running."""
        res = resource_for(obj)
        try:
            self._call(
                "DELETE",
                res.path(obj["metadata"].get("namespace"), obj["metadata"]["name"]),
                body={"propagationPolicy": propagation},
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_events(self, namespace: str, field_selector: str) -> list[Obj]:
        out = self._call(
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            query=[("fieldSelector", field_selector)],
        )
        items: list[Obj] = out.get("items", [])
        return items

    def list_path(self, path: str, label_selector: str) -> list[Obj]:
        """The items of a collection, filtered by labels."""
        out = self._call("GET", path, query=[("labelSelector", label_selector)])
        items: list[Obj] = out.get("items", [])
        return items

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        out = self._call(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query=[("labelSelector", label_selector)],
        )
        items: list[Obj] = out.get("items", [])
        return items

    def patch_status(self, group: str, version: str, plural: str, meta: Obj, status: Obj) -> Obj:
        """Merge-patch a custom resource's status subresource (lists are replaced whole)."""
        path = (
            f"/apis/{group}/{version}/namespaces/{meta['namespace']}/{plural}/{meta['name']}/status"
        )
        return self._call(
            "PATCH",
            path,
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    def remove_finalizer(
        self, group: str, version: str, plural: str, meta: Obj, finalizer: str
    ) -> None:
        """Drop one finalizer from a custom resource (guarded by a test op: no lost update)."""
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            return
        index = finalizers.index(finalizer)
        path = f"/apis/{group}/{version}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": finalizer},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        self._call("PATCH", path, body=ops, content_type="application/json-patch+json")

    def get_path(self, path: str) -> Obj | None:
        """GET any path; None on 404."""
        try:
            return self._call("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_path(self, path: str, body: Obj, *, leader_call: bool = False) -> Obj:
        return self._call("POST", path, body=body, leader_call=leader_call)

    def replace_path(self, path: str, body: Obj, *, leader_call: bool = False) -> Obj:
        """PUT: optimistic concurrency through ``metadata.resourceVersion`` in the body."""
        return self._call("PUT", path, body=body, leader_call=leader_call)

    def merge_patch_path(self, path: str, body: Obj) -> Obj:
        return self._call("PATCH", path, body=body, content_type="application/merge-patch+json")
