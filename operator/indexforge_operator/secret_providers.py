"""Which store a pass takes the generated credentials from (``spec.secrets.provider``).

- kubernetes: the Secrets the operator owns (``secret_store``), missing values generated.
- vault: Vault/OpenBao KV v2 (``vault_store``), the source of truth; the same Secrets are
  synced from it on every pass, and the pass is requeued after ``refreshSeconds`` so a value
  changed in Vault reaches the Secret without any Kubernetes event.
- externalSecrets: nothing here; the builders emit ExternalSecrets (``builders.external_secrets``).

A store that cannot be read is a ``failure``: the reconciler then writes nothing at all.
"""

from __future__ import annotations

import base64
import secrets as token_source
from dataclasses import dataclass

from indexforge_operator import generated, secret_store, vault_store
from indexforge_operator.children import ChildView
from indexforge_operator.kube import Kube
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec


@dataclass(frozen=True)
class Source:
    """``secrets`` for the builders (None: the store failed, ``failure`` says why)."""

    secrets: generated.GeneratedSecrets | None
    failure: tuple[str, str] | None = None
    requeue_after: float | None = None
    store_writes: int = 0


def _token() -> str:
    return token_source.token_urlsafe(32)


def _ca_pem(kube: Kube, spec: IndexForgeSpec, names: Names) -> str | None:
    ref = spec.secrets.vault.ca_secret_ref
    if ref is None:
        return None
    secret = kube.get(
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"namespace": names.namespace, "name": ref.name}}
    )  # fmt: skip
    data = (secret or {}).get("data") or {}
    if ref.key not in data:
        raise vault_store.VaultError(
            vault_store.CA_MISSING,
            f"secrets.vault.caSecretRef: Secret {names.namespace}/{ref.name} or its key "
            f"{ref.key} does not exist",
        )
    return base64.b64decode(data[ref.key]).decode()


def _in_cluster(kube: Kube, names: Names, view: ChildView | None) -> generated.GeneratedSecrets:
    """Values of the Secrets an earlier provider (kubernetes) generated, none generated here."""

    def data(name: str) -> dict[str, str] | None:
        ref = {"apiVersion": "v1", "kind": "Secret",
               "metadata": {"namespace": names.namespace, "name": name}}  # fmt: skip
        live = view.live(ref) if view is not None else None
        live = live if live is not None else kube.get(ref)
        return None if live is None else dict(live.get("data") or {})

    return generated.from_secret_data(
        consumers=data(names.gateway_consumers),
        grafana=data(names.grafana_admin),
        internal=data(names.internal_auth),
    )


def load(kube: Kube, names: Names, spec: IndexForgeSpec, *, view: ChildView | None) -> Source:
    provider = spec.secrets.provider
    if provider == "externalSecrets":
        return Source(secrets=generated.GeneratedSecrets())  # build_all uses templates
    if provider == "kubernetes":
        return Source(secrets=secret_store.load_or_create(kube, names, spec, view=view))
    try:
        loaded = vault_store.load_or_create(
            spec,
            names,
            jwt=vault_store.service_account_token(kube.bearer_token()),
            ca_pem=_ca_pem(kube, spec, names),
            token=_token,
            seed=lambda: _in_cluster(kube, names, view),
        )
    except vault_store.VaultError as exc:
        return Source(secrets=None, failure=(exc.reason, exc.message))
    return Source(
        secrets=loaded.plan.secrets,
        requeue_after=float(spec.secrets.vault.refresh_seconds),
        store_writes=loaded.written,
    )
