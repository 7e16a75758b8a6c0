"""A thin, dict-in/dict-out Kubernetes client for the operator's writes.

Built on the official client's ``ApiClient`` (auth, TLS, retries) but without its generated
models or discovery: objects stay plain dicts end to end, paths come from a fixed table of the
kinds the builders produce, and server-side apply is one PATCH.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

FIELD_MANAGER = "indexforge-operator"

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
    Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Resource("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Resource("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Resource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Resource("apps/v1", "StatefulSet", "statefulsets"),
    Resource("apps/v1", "Deployment", "deployments"),
    Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
    Resource("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
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
) -> Obj:
    """One authenticated request; JSON in, JSON out; ApiException on a non-2xx answer."""
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
        method_, url, header_params=headers, body=payload, post_params=post_params
    )
    raw = response.read()  # type: ignore[no-untyped-call]
    if not 200 <= int(response.status) < 300:
        raise ApiException(status=response.status, reason=response.reason, body=raw)
    return dict(json.loads(raw)) if raw else {}


class Kube:
    """Synchronous JSON calls against one API server."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._api = api_client

    def apply(self, obj: Obj, *, field_manager: str = FIELD_MANAGER) -> Obj:
        """Server-side apply; ``force`` because this manager is the single owner of these fields."""
        res = resource_for(obj)
        path = res.path(obj["metadata"].get("namespace"), obj["metadata"]["name"])
        return request_json(
            self._api,
            "PATCH",
            path,
            body=json.dumps(obj),  # JSON is YAML: the apply-patch+yaml body as a string
            query=[("fieldManager", field_manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def get(self, obj_ref: Obj) -> Obj | None:
        res = resource_for(obj_ref)
        try:
            return request_json(
                self._api,
                "GET",
                res.path(obj_ref["metadata"].get("namespace"), obj_ref["metadata"]["name"]),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_objects(self, res: Resource, namespace: str, label_selector: str) -> list[Obj]:
        out = request_json(
            self._api,
            "GET",
            res.collection_path(namespace),
            query=[("labelSelector", label_selector)],
        )
        items: list[Obj] = out.get("items", [])
        for item in items:  # list items omit these; callers treat them as full objects
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        return items

    def delete(self, obj: Obj) -> None:
        res = resource_for(obj)
        try:
            request_json(
                self._api,
                "DELETE",
                res.path(obj["metadata"].get("namespace"), obj["metadata"]["name"]),
                body={"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_events(self, namespace: str, field_selector: str) -> list[Obj]:
        out = request_json(
            self._api,
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            query=[("fieldSelector", field_selector)],
        )
        items: list[Obj] = out.get("items", [])
        return items

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        out = request_json(
            self._api,
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
        return request_json(
            self._api,
            "PATCH",
            path,
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    def has_api(self, group_version: str, plural: str) -> bool:
        """Whether the server serves ``plural`` in ``group_version`` (e.g. ServiceMonitors)."""
        try:
            out = request_json(self._api, "GET", f"/apis/{group_version}")
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("name") == plural for r in out.get("resources", []))
