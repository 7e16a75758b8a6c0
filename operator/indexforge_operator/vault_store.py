"""Vault/OpenBao I/O of the ``vault`` secrets provider (all of it: this module and nothing else
talks to Vault). The decisions are pure, in ``vault_kv``.

Why a synced Secret and not the Vault Agent injector: the operator reads Vault on every pass
(watch-driven, plus every ``secrets.vault.refreshSeconds``) and writes the values into the same
Secrets the kubernetes provider owns. The pods, the static chart and the NetworkPolicies stay
exactly as they are, nothing depends on the injector's mutating webhook being installed and
healthy at pod start, Kong's declarative config (which embeds consumer keys) keeps its config
checksum so a changed key rolls Kong, and a Vault outage never stops a pod from (re)starting.
The price: the values also exist as Kubernetes Secrets (encrypt etcd at rest; RBAC on Secrets
is what protects them, as with the kubernetes provider).

Vault is the source of truth: stored values are kept, missing ones are generated and written
to Vault (check-and-set on the version read, so two writers cannot overwrite each other)
before any Secret is built from them. Any failure raises ``VaultError`` with a reason and a
message that never contain a value; the reconciler then writes nothing (no Secret is touched,
nothing is regenerated) and reports Degraded.

The operator logs in with its own ServiceAccount token (Kubernetes auth); the client token is
cached until shortly before its TTL ends. Every call has a timeout.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import requests
from hvac import exceptions as hv

from . import vault_kv
from .generated import GeneratedSecrets
from .naming import Names
from .spec import IndexForgeSpec
from .spec_secrets import VaultSpec

# (connect, read) seconds of every Vault call: a hung Vault fails a pass, it never blocks it.
TIMEOUT: tuple[float, float] = (3.0, 10.0)
SA_TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
log = logging.getLogger(__name__)

UNAVAILABLE = "VaultUnavailable"
AUTH_FAILED = "VaultAuthFailed"
PERMISSION_DENIED = "VaultPermissionDenied"
SEALED = "VaultSealed"
CONFLICT = "VaultWriteConflict"
CA_MISSING = "VaultCAMissing"
VALUE_INVALID = "VaultValueInvalid"


class VaultError(Exception):
    """A Vault failure users must see: ``reason`` for the condition, ``message`` (no values)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Loaded:
    """The values for the builders and how many keys this pass wrote to Vault."""

    plan: vault_kv.Plan
    written: int
    version: int


@dataclass(frozen=True)
class _Login:
    token: str
    expires: float  # time.monotonic()


_logins: dict[tuple[str, ...], _Login] = {}
_lock = threading.Lock()


def _ca_file(pem: str) -> str:
    """requests verifies against a file: one per distinct bundle, named by its digest."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"indexforge-vault-ca-{digest}.pem"
    if not path.exists():
        path.write_text(pem)
    return str(path)


def _where(vault: VaultSpec) -> str:
    return f"Vault at {vault.address}"


def _translate(exc: Exception, vault: VaultSpec, doing: str) -> VaultError:
    """hvac/requests exceptions -> reason and message. Vault's own error strings name paths
    and policies, never secret values; request bodies are never included."""
    where = _where(vault)
    if isinstance(exc, requests.exceptions.Timeout):
        return VaultError(UNAVAILABLE, f"{where}: {doing} timed out")
    if isinstance(exc, requests.exceptions.SSLError):
        return VaultError(UNAVAILABLE, f"{where}: TLS verification failed while {doing}")
    if isinstance(exc, requests.exceptions.RequestException):
        return VaultError(UNAVAILABLE, f"{where} unreachable while {doing}")
    detail = "; ".join(str(e) for e in (getattr(exc, "errors", None) or [])) or type(exc).__name__
    if isinstance(exc, hv.VaultDown):
        return VaultError(SEALED, f"{where} is sealed or in standby while {doing}: {detail}")
    if isinstance(exc, hv.VaultNotInitialized):
        return VaultError(SEALED, f"{where} is not initialized while {doing}")
    if isinstance(exc, hv.Forbidden | hv.Unauthorized):
        return VaultError(PERMISSION_DENIED, f"{where}: permission denied while {doing}: {detail}")
    if isinstance(exc, hv.VaultError):
        return VaultError(UNAVAILABLE, f"{where}: {doing} failed: {detail}")
    return VaultError(UNAVAILABLE, f"{where}: {doing} failed: {type(exc).__name__}")


def service_account_token(kube_token: str) -> str:
    """The operator's own ServiceAccount token: the one its Kubernetes client uses (in a pod:
    the projected token file), else that file."""
    if kube_token:
        return kube_token
    try:
        return SA_TOKEN_FILE.read_text().strip()
    except OSError:
        return ""


def _client(vault: VaultSpec, ca_pem: str | None) -> hvac.Client:
    return hvac.Client(
        url=vault.address,
        timeout=TIMEOUT,
        verify=_ca_file(ca_pem) if ca_pem else True,
        namespace=vault.namespace,
    )


def _login(client: hvac.Client, vault: VaultSpec, jwt: str) -> None:
    if not jwt:
        raise VaultError(
            AUTH_FAILED, "the operator has no ServiceAccount token to log in to Vault with"
        )
    key = (str(vault.address), vault.namespace or "", vault.auth_mount, vault.role,
           hashlib.sha256(jwt.encode()).hexdigest())  # fmt: skip
    with _lock:
        cached = _logins.get(key)
    if cached is not None and cached.expires > time.monotonic():
        client.token = cached.token
        return
    try:
        response: Any = client.auth.kubernetes.login(vault.role, jwt, mount_point=vault.auth_mount)
    except (hv.InvalidRequest, hv.Forbidden, hv.Unauthorized) as exc:
        detail = "; ".join(str(e) for e in (exc.errors or [])) or type(exc).__name__
        raise VaultError(
            AUTH_FAILED,
            f"{_where(vault)}: Kubernetes auth login (mount {vault.auth_mount}, role "
            f"{vault.role}) refused: {detail}",
        ) from None
    except Exception as exc:
        raise _translate(exc, vault, "logging in") from None
    auth = response["auth"]
    ttl = float(auth.get("lease_duration") or 0)
    # Renewed by logging in again well before the end (a zero TTL never expires).
    expires = time.monotonic() + (ttl * 0.8 if ttl else 3600.0)
    with _lock:
        _logins[key] = _Login(token=auth["client_token"], expires=expires)
    client.token = auth["client_token"]


def forget_logins() -> None:
    """Drop cached client tokens (tests; a revoked token is also dropped on its first 403)."""
    with _lock:
        _logins.clear()


def _read(client: hvac.Client, vault: VaultSpec, path: str) -> tuple[dict[str, str], int]:
    """(data, version) of the KV secret; ({}, 0) when it does not exist yet."""
    try:
        response: Any = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=vault.mount, raise_on_deleted_version=False
        )
    except hv.InvalidPath:
        return {}, 0
    data = (response.get("data") or {}).get("data") or {}
    version = int(((response.get("data") or {}).get("metadata") or {}).get("version") or 0)
    return {str(k): str(v) for k, v in data.items() if v is not None}, version


def _write(
    client: hvac.Client, vault: VaultSpec, path: str, data: dict[str, str], version: int
) -> int:
    try:
        response: Any = client.secrets.kv.v2.create_or_update_secret(
            path=path, secret=data, cas=version, mount_point=vault.mount
        )
    except hv.InvalidRequest as exc:
        if any("check-and-set" in str(e) for e in (exc.errors or [])):
            raise VaultError(
                CONFLICT,
                f"{_where(vault)}: {vault.mount}/{path} changed while it was being completed; "
                "read again on the next pass",
            ) from None
        raise
    return int(((response or {}).get("data") or {}).get("version") or version + 1)


def load_or_create(
    spec: IndexForgeSpec,
    names: Names,
    *,
    jwt: str,
    ca_pem: str | None,
    token: Callable[[], str],
    seed: Callable[[], GeneratedSecrets] | None = None,
) -> Loaded:
    """Stored values, with the missing ones generated and written to Vault first.

    ``seed`` reads the values of the cluster's Secrets; it is called only when Vault holds no
    entry yet for this instance (a switch from the kubernetes provider keeps every value)."""
    vault = spec.secrets.vault
    path = vault_kv.kv_path(spec, names)
    client = _client(vault, ca_pem)
    _login(client, vault, jwt)
    doing = f"reading {vault.mount}/{path}"
    try:
        try:
            stored, version = _read(client, vault, path)
        except hv.Forbidden:
            forget_logins()  # a revoked or expired token: log in once more
            _login(client, vault, jwt)
            stored, version = _read(client, vault, path)
        unusable = vault_kv.unusable_keys(stored)
        if unusable:
            # Used as they are, they would break Redis's ACL file or kong.yml: refuse them
            # with the keys named (never the values) and change nothing this pass.
            raise VaultError(
                VALUE_INVALID,
                f"{_where(vault)}: {vault.mount}/{path}: {', '.join(unusable)}: "
                f"{vault_kv.UNSAFE_WHY}",
            )
        first = seed() if (seed is not None and version == 0) else None
        result = vault_kv.plan(spec, stored, token=token, seed=first)
        if result.additions:
            doing = f"writing {vault.mount}/{path}"
            log.info("vault: writing %d generated keys to %s/%s: %s", len(result.additions),
                     vault.mount, path, ", ".join(sorted(result.additions)))  # fmt: skip
            version = _write(client, vault, path, {**stored, **result.additions}, version)
    except VaultError:
        raise
    except Exception as exc:
        raise _translate(exc, vault, doing) from None
    return Loaded(plan=result, written=len(result.additions), version=version)
