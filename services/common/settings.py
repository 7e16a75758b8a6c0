"""Settings shared by every service, read from `INDEXFORGE_*` environment variables.

Services subclass `ServiceSettings` to add their own fields; the prefix stays the same so one
ConfigMap/Secret naming scheme covers the whole stack (e.g. `INDEXFORGE_REDIS_URL`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ServiceSettings(BaseSettings):
    """Fields every service understands. Unknown `INDEXFORGE_*` variables are ignored."""

    model_config = SettingsConfigDict(
        env_prefix="INDEXFORGE_",
        extra="ignore",
        # `model_*` field names (model_path, ...) are ours, not pydantic's namespace.
        protected_namespaces=(),
    )

    service_name: str = Field(
        default="indexforge", description="Name used in logs, metrics, traces."
    )
    version: str = Field(
        default="0.1.0", description="Service version reported in /metrics and Sentry."
    )
    environment: str = Field(default="development", description="Deployment environment (Sentry).")

    log_level: LogLevel = "INFO"
    log_json: bool = Field(default=True, description="JSON log lines; plain text when false.")

    # Cache. Unset redis_url means no cache at all (every call computes).
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db of the cache Redis."
    )
    cache_namespace: str = Field(default="indexforge", description="Key prefix in the cache Redis.")
    cache_default_ttl_seconds: float = Field(default=3600.0, gt=0)
    cache_stale_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long an expired entry may still be served while refreshed.",
    )
    cache_local_max_entries: int = Field(
        default=1024,
        ge=0,
        description="Bound of the in-process LRU used while Redis is unreachable.",
    )
    redis_socket_timeout_seconds: float = Field(default=0.5, gt=0)
    redis_retry_attempts: int = Field(
        default=2, ge=1, description="Tries per Redis call (tenacity)."
    )
    breaker_failure_threshold: int = Field(
        default=3, ge=1, description="Failures that open the breaker."
    )
    breaker_reset_seconds: float = Field(
        default=5.0, gt=0, description="How long an open breaker waits before probing Redis again."
    )

    # Tracing. Unset endpoint means tracing is off (no provider, no instrumentation).
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP base URL, e.g. http://jaeger:4318 (/v1/traces is added).",
    )
    trace_sample_ratio: float = Field(default=0.1, ge=0.0, le=1.0)

    # Sentry. DSN directly, or from a mounted secret file (preferred in Kubernetes).
    sentry_dsn: SecretStr | None = None
    sentry_dsn_file: Path | None = None
    sentry_traces_sample_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    sentry_profiles_sample_rate: float = Field(default=0.1, ge=0.0, le=1.0)

    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="Requests with a larger body get 413."
    )

    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port (same bind host) instead of the serving "
        "port, where /metrics then answers 404. Unset: /metrics on the serving port.",
    )

    # Gateway -> service hop. Tokens from the variable (comma-separated) and/or a mounted
    # file (one per line, re-read when it changes); every listed token is accepted, so a
    # rotation can overlap. No token configured: no check (local development).
    gateway_tokens: SecretStr | None = Field(
        default=None, description="Accepted X-IndexForge-Gateway-Token values, comma-separated."
    )
    gateway_tokens_file: Path | None = Field(
        default=None, description="File with one accepted token per line (a Secret volume)."
    )
    gateway_auth_required: bool = Field(
        default=True,
        description="With tokens configured, refuse callers without one (401). False: tokens "
        "are only sent onwards (the API when no gateway is deployed in front of it).",
    )

    # The URL stays credential-free; the password comes from here or a mounted file.
    redis_password: SecretStr | None = Field(default=None, description="Password of the Redis.")
    redis_password_file: Path | None = Field(
        default=None, description="File holding the Redis password (a Secret volume)."
    )

    def resolved_sentry_dsn(self) -> str | None:
        """The DSN from the setting, else from the secret file; None disables Sentry."""
        return read_secret(self.sentry_dsn, self.sentry_dsn_file)

    def resolved_redis_password(self) -> str | None:
        return read_secret(self.redis_password, self.redis_password_file)

    def secret_values(self) -> list[str]:
        """Every configured secret (not the rotating gateway tokens of the file): what the
        Sentry hook blanks wherever it appears. Services add their own."""
        found = [self.resolved_sentry_dsn(), self.resolved_redis_password()]
        if self.gateway_tokens is not None:
            found += split_tokens(self.gateway_tokens.get_secret_value())
        return [s for s in found if s]

    def rotating_secret_values(self) -> list[str]:
        """Secrets read from files that a rotation changes while the process runs, as they
        are now (asked for at every Sentry event, beside the static ``secret_values``)."""
        return [s for s in (self.resolved_redis_password(),) if s]

    @property
    def release(self) -> str:
        return f"{self.service_name}@{self.version}"


def read_secret(value: SecretStr | None, file: Path | None) -> str | None:
    """A secret from its setting, else from its file (stripped); None when neither has one."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    if file is not None and file.is_file():
        return file.read_text(encoding="utf-8").strip() or None
    return None


def split_tokens(raw: str) -> list[str]:
    """Tokens separated by commas (the variable) or newlines (the file); blanks dropped."""
    return [t for t in re.split(r"[,\s]+", raw) if t]
