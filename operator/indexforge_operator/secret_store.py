"""Cluster side of generated secrets and of user-referenced Secrets.

Reads the generated Secrets already stored for an instance (so values survive reconciles and
operator restarts) and checks that Secrets the spec references exist. Values never leave this
module except inside ``GeneratedSecrets``, whose repr hides them.
"""

from __future__ import annotations

import secrets as token_source
from typing import Any

from indexforge_operator import decisions, generated
from indexforge_operator.children import ChildView
from indexforge_operator.kube import Kube
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec


def _secret_ref(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": namespace, "name": name},
    }


def _data(
    kube: Kube, namespace: str, name: str, view: ChildView | None = None
) -> dict[str, str] | None:
    """A Secret's data from the cache when it holds it, else from the API server.

    The cache may lag right after a create; asking the server then is what keeps a generated
    key from being generated twice.
    """
    ref = _secret_ref(namespace, name)
    live = view.live(ref) if view is not None else None
    if live is None:
        live = kube.get(ref)
    return None if live is None else dict(live.get("data") or {})


def load_or_create(
    kube: Kube, names: Names, spec: IndexForgeSpec, *, view: ChildView | None = None
) -> generated.GeneratedSecrets:
    """Stored values where they exist, fresh random tokens for whatever is missing."""
    consumers = (
        _data(kube, names.namespace, names.gateway_consumers, view)
        if (generated.required_consumers(spec))
        else None
    )
    grafana = (
        _data(kube, names.namespace, names.grafana_admin, view)
        if (generated.needs_grafana_password(spec))
        else None
    )
    internal = _data(kube, names.namespace, names.internal_auth, view)
    current = generated.from_secret_data(consumers=consumers, grafana=grafana, internal=internal)
    return generated.complete(spec, current=current, token=lambda: token_source.token_urlsafe(32))


def receiver_keys(kube: Kube, spec: IndexForgeSpec, names: Names) -> frozenset[str] | None:
    """Key names with a non-empty value in the Alertmanager receivers Secret (None: no such
    Secret). Only names leave here: receivers are configured by key, values stay mounted."""
    ref = spec.monitoring.alertmanager.receivers_secret_ref
    if ref is None or not (spec.monitoring.enabled and spec.monitoring.alertmanager.enabled):
        return frozenset()
    data = _data(kube, names.namespace, ref.name)
    return None if data is None else frozenset(k for k, v in data.items() if v)


def problems(
    kube: Kube,
    spec: IndexForgeSpec,
    names: Names,
    *,
    prometheus_operator: bool,
    receivers: frozenset[str] | None = frozenset(),
) -> list[tuple[str, str]]:
    """(reason, message) for what users must fix: referenced Secrets, incoherent specs.

    `receivers` is what `receiver_keys` found (the reconciler reads the Secret once)."""
    found = decisions.check_spec(spec, prometheus_operator=prometheus_operator)
    alerting = decisions.check_alertmanager_secret(
        spec, keys=receivers, prometheus_operator=prometheus_operator
    )
    if alerting is not None:
        found.append(alerting)
    ref = spec.sentry.dsn_secret_ref
    if spec.sentry.enabled and ref is not None:
        data = _data(kube, names.namespace, ref.name)
        decoded = None if data is None else {k: "set" if v else "" for k, v in data.items()}
        sentry = decisions.check_sentry_secret(spec, data=decoded)
        if sentry is not None:
            found.append(sentry)
    return [(f.reason, f.message) for f in found]
