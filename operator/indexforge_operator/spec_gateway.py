"""Spec of the Kong CE gateway (DB-less): routes, plugins, consumers, upstream health checks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from .spec_checks import IP_OR_CIDR_MESSAGE, IP_OR_CIDR_RULE, check_ip_or_cidr
from .spec_common import (
    DisruptionBudget,
    DnsLabel,
    DnsSubdomain,
    Image,
    PullPolicy,
    Resources,
    SpecModel,
    cel,
    disruption_field,
    image_field,
    pull_policy_field,
    replicas_field,
    resources_field,
    rules,
)

RoutePath = Annotated[str, StringConstraints(max_length=256, pattern=r"^/([A-Za-z0-9._~-]+/)*$")]
# IPv4 or IPv6 address with an optional prefix length. The pattern only admits the shape (and
# is what helm's values.schema.json can check); isIP()/isCIDR() decide, with one message.
IpOrCidr = Annotated[
    str,
    StringConstraints(
        max_length=64,
        pattern=r"^(([0-9]{1,3}\.){3}[0-9]{1,3}(/[0-9]{1,2})?|[0-9A-Fa-f:.]{2,45}(/[0-9]{1,3})?)$",
    ),
    AfterValidator(check_ip_or_cidr),
    Field(json_schema_extra=rules(cel(IP_OR_CIDR_RULE, IP_OR_CIDR_MESSAGE))),
]
Origin = Annotated[str, StringConstraints(max_length=253, pattern=r"^(\*|https?://[^\s/]+)$")]
HeaderName = Annotated[str, StringConstraints(max_length=128, pattern=r"^[A-Za-z0-9-]+$")]
UserAgentRegex = Annotated[str, StringConstraints(min_length=1, max_length=256)]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class GatewayRoutes(SpecModel):
    """Path prefixes Kong routes to the services (the longest matching prefix wins)."""

    api: RoutePath = Field(default="/api/v1/", description="Prefix routed to the API service.")
    ml: RoutePath = Field(default="/api/v1/ml/", description="Prefix routed to the ML service.")

    model_config = ConfigDict(
        json_schema_extra=rules(cel("self.api != self.ml", "routes.api and routes.ml must differ"))
    )

    @model_validator(mode="after")
    def _distinct(self) -> GatewayRoutes:
        if self.api == self.ml:
            raise ValueError("routes.api and routes.ml must differ")
        return self


class RateLimiting(SpecModel):
    """Kong rate-limiting plugin, per consumer (per client IP without a consumer)."""

    enabled: bool = Field(default=True, description="Limit request rates.")
    policy: Literal["redis", "local"] = Field(
        default="redis",
        description="Counter storage: 'redis' shares counters through the app Redis, so the "
        "limit holds across Kong replicas; 'local' counts per Kong pod (N replicas allow N times "
        "the rate).",
    )
    api_per_minute: int = Field(
        default=60, ge=1, le=1_000_000, description="Requests/minute to the API."
    )
    ml_per_minute: int = Field(
        default=30, ge=1, le=1_000_000, description="Requests/minute to the ML API."
    )


class Cors(SpecModel):
    """Kong cors plugin."""

    enabled: bool = Field(
        default=True, description="Answer CORS preflight requests and add headers."
    )
    origins: list[Origin] = Field(
        default=["*"], max_length=32, description="Allowed origins ('*' or scheme://host[:port])."
    )
    methods: list[HttpMethod] = Field(
        default=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        max_length=7,
        description="Allowed methods.",
    )
    headers: list[HeaderName] = Field(
        default=["Accept", "Content-Type", "Authorization", "apikey", "Kong-Request-ID"],
        max_length=32,
        description="Allowed request headers.",
    )
    exposed_headers: list[HeaderName] = Field(
        default=["Kong-Request-ID"], max_length=32, description="Response headers browsers see."
    )
    credentials: bool = Field(
        default=False, description="Allow credentials (cookies, auth headers)."
    )
    max_age_seconds: int = Field(
        default=3600, ge=0, le=86400, description="Preflight cache lifetime."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!self.credentials || !self.origins.exists(o, o == '*')",
                "cors.credentials requires explicit origins (browsers reject '*' with credentials)",
            )
        )
    )

    @model_validator(mode="after")
    def _credentials_need_origins(self) -> Cors:
        if self.credentials and "*" in self.origins:
            raise ValueError(
                "cors.credentials requires explicit origins (browsers reject '*' with credentials)"
            )
        return self


class ProxyCache(SpecModel):
    """Kong proxy-cache plugin (in-memory, per Kong pod) on the search route only.

    Kong honours the API's Cache-Control: search answers say `max-age` (bounded by this TTL
    and the API's response TTL), everything else `no-store`. Kong cannot be told to purge,
    so after an upload or delete search may be stale through the gateway for up to that
    max-age; job status and document reads are never cached."""

    enabled: bool = Field(default=True, description="Cache upstream responses in Kong.")
    strategy: Literal["memory"] = Field(default="memory", description="Cache storage backend.")
    content_types: list[Annotated[str, StringConstraints(max_length=128)]] = Field(
        default=["application/json"],
        min_length=1,
        max_length=8,
        description="Response content types that are cached.",
    )
    ttl_seconds: int = Field(
        default=30,
        ge=1,
        le=86400,
        description="Upper bound of a cached search answer's lifetime (and of its staleness "
        "after an upload or delete).",
    )
    request_methods: list[Literal["GET", "HEAD"]] = Field(
        default=["GET", "HEAD"], min_length=1, max_length=2, description="Cached request methods."
    )
    response_codes: list[int] = Field(
        default=[200], min_length=1, max_length=16, description="Cached response status codes."
    )


class CorrelationId(SpecModel):
    """Kong correlation-id plugin: one id per request, logged by every service."""

    enabled: bool = Field(default=True, description="Add a correlation id header to every request.")
    header_name: HeaderName = Field(
        default="Kong-Request-ID", description="Header carrying the id."
    )
    generator: Literal["uuid", "uuid#counter", "tracker"] = Field(
        default="uuid#counter", description="How ids are generated."
    )
    echo_downstream: bool = Field(default=True, description="Return the id to the client as well.")


class GatewayConsumer(SpecModel):
    """A Kong consumer; the operator generates its API key into a Secret."""

    username: DnsLabel = Field(description="Consumer name (also the key in the keys Secret).")


class KeyRotation(SpecModel):
    """Rotation of the consumer keys with overlap (operator only: the static chart never
    rotates; rotation.py). A rotation is asked for by the annotation
    `indexforge.io/rotate-keys: <consumer[,consumer...]|all>[:<request id>]` or comes due
    every `intervalHours`. The new key is first accepted by every Kong pod, then published in
    the consumers Secret, and the old key stays accepted for `gracePeriodSeconds` more."""

    interval_hours: int = Field(
        default=0,
        ge=0,
        le=8760,
        description="Rotate every consumer's key this often (hours); 0: only on request.",
    )
    grace_period_seconds: int = Field(
        default=3600,
        ge=1,
        le=2_592_000,
        description="How long the old key stays accepted after the new one is published. "
        "Clients must re-read the consumers Secret within it (a mounted Secret lags up to the "
        "kubelet's sync period, about a minute).",
    )
    rollout_timeout_seconds: int = Field(
        default=900,
        ge=30,
        le=86400,
        description="How long the gateway may take to roll out the new key before the "
        "rotation is reported stuck (KeyRotation condition False, GatewayRolloutStuck).",
    )


class KeyAuth(SpecModel):
    """Kong key-auth plugin; keys are generated, never written in the spec."""

    enabled: bool = Field(default=True, description="Require an API key on every route.")
    key_names: list[HeaderName] = Field(
        default=["apikey"], min_length=1, max_length=8, description="Headers carrying the key."
    )
    hide_credentials: bool = Field(
        default=True, description="Strip the key before proxying upstream."
    )
    consumers: list[GatewayConsumer] = Field(
        default=[GatewayConsumer.model_validate({"username": "default"})],
        max_length=32,
        description="Consumers to create; each gets a generated key.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["username"],
        },
    )
    rotation: KeyRotation = Field(
        default=KeyRotation(), description="Key rotation with overlap (operator only)."
    )

    @model_validator(mode="after")
    def _unique(self) -> KeyAuth:
        seen = [c.username for c in self.consumers]
        if len(seen) != len(set(seen)):
            raise ValueError("keyAuth.consumers usernames must be unique")
        return self


class IpRestriction(SpecModel):
    """Kong ip-restriction plugin."""

    enabled: bool = Field(default=False, description="Allow/deny clients by address.")
    allow: list[IpOrCidr] = Field(
        default_factory=list, max_length=64, description="Allowed IP addresses or CIDRs."
    )
    deny: list[IpOrCidr] = Field(
        default_factory=list, max_length=64, description="Denied IP addresses or CIDRs."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                # Empty lists are absent after pruning: guard every access with has().
                "!self.enabled || (has(self.allow) && size(self.allow) > 0)"
                " || (has(self.deny) && size(self.deny) > 0)",
                "ipRestriction needs at least one allow or deny entry when enabled",
            )
        )
    )

    @model_validator(mode="after")
    def _not_empty(self) -> IpRestriction:
        if self.enabled and not (self.allow or self.deny):
            raise ValueError("ipRestriction needs at least one allow or deny entry when enabled")
        return self


class RealIp(SpecModel):
    """How Kong finds the client address behind a load balancer that rewrites the source
    (SNAT): without it, ip-restriction and per-IP rate limits see the balancer's address."""

    trusted_proxies: list[IpOrCidr] = Field(
        default_factory=list,
        max_length=64,
        description="Addresses of the load balancers whose client-address header Kong trusts.",
    )
    header: Literal["X-Forwarded-For", "X-Real-IP"] = Field(
        default="X-Forwarded-For", description="Header carrying the client address."
    )


class BotDetection(SpecModel):
    """Kong bot-detection plugin (User-Agent based)."""

    enabled: bool = Field(default=True, description="Reject requests from known bots.")
    allow: list[UserAgentRegex] = Field(
        default_factory=list, max_length=32, description="User-Agent regexes always allowed."
    )
    deny: list[UserAgentRegex] = Field(
        default_factory=list, max_length=32, description="Extra User-Agent regexes to reject."
    )


class ActiveHealthCheck(SpecModel):
    """Kong probes every target on an interval."""

    enabled: bool = Field(default=True, description="Probe targets actively.")
    path: Annotated[str, StringConstraints(max_length=256, pattern=r"^/[^\s]*$")] = Field(
        default="/healthz", description="HTTP path probed on each target."
    )
    interval_seconds: int = Field(default=10, ge=1, le=3600, description="Seconds between probes.")
    timeout_seconds: int = Field(default=2, ge=1, le=60, description="Probe timeout.")
    healthy_successes: int = Field(
        default=2, ge=1, le=255, description="Successes to mark healthy."
    )
    unhealthy_failures: int = Field(
        default=3, ge=1, le=255, description="Failures to mark unhealthy."
    )


class PassiveHealthCheck(SpecModel):
    """Kong watches proxied traffic and ejects failing targets (circuit breaker)."""

    enabled: bool = Field(default=True, description="Watch live traffic.")
    unhealthy_http_failures: int = Field(
        default=5, ge=1, le=255, description="5xx to mark unhealthy."
    )
    unhealthy_timeouts: int = Field(
        default=3, ge=1, le=255, description="Timeouts to mark unhealthy."
    )
    healthy_successes: int = Field(
        default=5, ge=1, le=255, description="Successes to mark healthy."
    )


class Upstream(SpecModel):
    """Kong upstreams for the API and ML services (targets are their pods)."""

    algorithm: Literal["round-robin", "least-connections", "latency"] = Field(
        default="round-robin", description="Load-balancing algorithm."
    )
    active: ActiveHealthCheck = Field(
        default=ActiveHealthCheck(), description="Active health checks."
    )
    passive: PassiveHealthCheck = Field(default=PassiveHealthCheck(), description="Passive checks.")


class GatewayTls(SpecModel):
    """TLS on Kong's proxy from a kubernetes.io/tls Secret."""

    enabled: bool = Field(default=False, description="Serve HTTPS on port 443.")
    secret_name: DnsSubdomain | None = Field(
        default=None, description="kubernetes.io/tls Secret name."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("!self.enabled || has(self.secretName)", "tls.secretName is required when enabled")
        )
    )

    @model_validator(mode="after")
    def _secret(self) -> GatewayTls:
        if self.enabled and self.secret_name is None:
            raise ValueError("tls.secretName is required when enabled")
        return self


class GatewaySpec(SpecModel):
    """Kong CE in DB-less mode in front of the API and ML services."""

    enabled: bool = Field(default=True, description="Deploy the gateway.")
    # Keep the minor version equal to the schemas the tests validate kong.yml against.
    image: Image = image_field("kong:3.9.1", "Kong")
    image_pull_policy: PullPolicy = pull_policy_field()
    replicas: int = replicas_field(2, "Kong")
    resources: Resources = resources_field(
        cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi", what="Kong"
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Type of the proxy Service."
    )
    routes: GatewayRoutes = Field(default=GatewayRoutes(), description="Route prefixes.")
    rate_limiting: RateLimiting = Field(default=RateLimiting(), description="rate-limiting plugin.")
    cors: Cors = Field(default=Cors(), description="cors plugin.")
    proxy_cache: ProxyCache = Field(default=ProxyCache(), description="proxy-cache plugin.")
    correlation_id: CorrelationId = Field(
        default=CorrelationId(), description="correlation-id plugin."
    )
    key_auth: KeyAuth = Field(default=KeyAuth(), description="key-auth plugin and consumers.")
    ip_restriction: IpRestriction = Field(
        default=IpRestriction(), description="ip-restriction plugin."
    )
    bot_detection: BotDetection = Field(default=BotDetection(), description="bot-detection plugin.")
    real_ip: RealIp = Field(default=RealIp(), description="Client address behind a load balancer.")
    upstream: Upstream = Field(default=Upstream(), description="Load balancing and health checks.")
    tls: GatewayTls = Field(default=GatewayTls(), description="TLS termination.")
    pod_disruption_budget: DisruptionBudget = disruption_field()
