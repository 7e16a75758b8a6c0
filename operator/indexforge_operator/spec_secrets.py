"""Spec of where the generated credentials live: Kubernetes Secrets, Vault/OpenBao, or a store
External Secrets Operator reads.

`kubernetes` (default): the operator generates the values into Secrets it owns.
`vault`: the operator generates missing values into a KV v2 mount of Vault/OpenBao (the source
of truth, logged in with its own ServiceAccount through Kubernetes auth) and syncs them into
the same Secrets. `externalSecrets`: the operator generates nothing; ExternalSecrets fill the
same Secrets from a store the user seeds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from .spec_common import DnsSubdomain, SecretKeyRef, SpecModel, cel, rules

SecretsProvider = Literal["kubernetes", "vault", "externalSecrets"]
# http(s)://host[:port][/path]: what hvac and External Secrets' vault provider accept.
VaultAddress = Annotated[
    str, StringConstraints(min_length=1, max_length=512, pattern=r"^https?://[^\s/]+(/\S*)?$")
]
# A Vault path segment list: no leading/trailing slash, no "..", no spaces.
VaultPath = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"
    ),
]
VAULT_NEEDS_ADDRESS = "secrets.vault.address is required when secrets.provider is vault"
ES_NEEDS_STORE = (
    "secrets.externalSecrets needs vault.address (the operator emits a SecretStore) or "
    "externalSecrets.storeRef (an existing store) when secrets.provider is externalSecrets"
)


class VaultSpec(SpecModel):
    """Vault/OpenBao KV v2 with Kubernetes auth. Values live at
    `<mount>/data/<pathPrefix>/<namespace>/<name>` (one KV secret per IndexForge)."""

    address: VaultAddress | None = Field(
        default=None, description="Vault/OpenBao address, e.g. https://vault.vault:8200."
    )
    mount: VaultPath = Field(default="secret", description="KV version 2 mount.")
    path_prefix: VaultPath = Field(
        default="indexforge",
        description="Path inside the mount; the namespace and name of the IndexForge follow it.",
    )
    role: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        default="indexforge-operator",
        description="Kubernetes auth role (bound to the operator's ServiceAccount; with "
        "externalSecrets, to the SecretStore's ServiceAccount).",
    )
    auth_mount: VaultPath = Field(
        default="kubernetes", description="Mount path of the Kubernetes auth method."
    )
    ca_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="CA bundle (PEM) that signed Vault's certificate: a Secret in the "
        "IndexForge's namespace and its key (e.g. ca.crt).",
    )
    namespace: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="Vault Enterprise namespace (X-Vault-Namespace)."
    )
    refresh_seconds: int = Field(
        default=60,
        ge=10,
        le=86400,
        description="How often the synced Secrets are compared with Vault (provider vault), "
        "and the ExternalSecrets' refreshInterval (externalSecrets).",
    )


class StoreRef(SpecModel):
    """An existing SecretStore or ClusterSecretStore the ExternalSecrets read from."""

    name: DnsSubdomain = Field(description="Name of the store.")
    kind: Literal["SecretStore", "ClusterSecretStore"] = Field(
        default="SecretStore", description="Kind of the store."
    )


class ExternalSecretsSpec(SpecModel):
    """External Secrets Operator: ExternalSecrets produce the Secrets the pods read."""

    store_ref: StoreRef | None = Field(
        default=None,
        description="Read from this existing store instead of a SecretStore the operator "
        "emits from secrets.vault.",
    )
    remote_key: VaultPath | None = Field(
        default=None,
        description="Key in the store holding this instance's values (default "
        "<vault.pathPrefix>/<namespace>/<name>).",
    )


class SecretsSpec(SpecModel):
    """Where generated credentials (Kong consumer keys, gateway tokens, Redis passwords, the
    Weaviate API key, Grafana admin, RabbitMQ) come from."""

    provider: SecretsProvider = Field(
        default="kubernetes",
        description="kubernetes: generated into Secrets the operator owns; vault: generated "
        "into Vault KV v2 (the source of truth) and synced into those Secrets; "
        "externalSecrets: ExternalSecrets fill those Secrets from a store you seed.",
    )
    vault: VaultSpec = Field(default=VaultSpec(), description="Vault/OpenBao connection.")
    external_secrets: ExternalSecretsSpec = Field(
        default=ExternalSecretsSpec(), description="External Secrets Operator settings."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("self.provider != 'vault' || has(self.vault.address)", VAULT_NEEDS_ADDRESS),
            cel(
                "self.provider != 'externalSecrets' || has(self.vault.address) || "
                "has(self.externalSecrets.storeRef)",
                ES_NEEDS_STORE,
            ),
        )
    )

    @model_validator(mode="after")
    def _store_known(self) -> SecretsSpec:
        if self.provider == "vault" and self.vault.address is None:
            raise ValueError(VAULT_NEEDS_ADDRESS)
        if (
            self.provider == "externalSecrets"
            and self.vault.address is None
            and self.external_secrets.store_ref is None
        ):
            raise ValueError(ES_NEEDS_STORE)
        return self
