"""Kong's DB-less declarative configuration (kong.yml), built as a dict.

Routes `/api/v1/` -> API and `/api/v1/ml/` -> ML (Kong picks the longest matching prefix),
each service behind an upstream whose single target is the component's headless Service:
Kong resolves it to every pod and balances across them with active and passive health
checks. Search has its own route, the only one proxy-cache runs on. Kong adds the instance's
gateway token to every proxied request (the services reject requests without it), so
reaching a service around Kong gains nothing. Consumer keys, the token and the Redis password
come from `GeneratedSecrets`, which is why this lives in a Secret.
"""

from __future__ import annotations

from typing import Any, Literal

from ..generated import GeneratedSecrets
from ..naming import Names
from ..spec import IndexForgeSpec
from ..spec_gateway import GatewaySpec
from . import ports

Obj = dict[str, Any]
FORMAT_VERSION = "3.0"
Routed = Literal["api", "ml"]
GATEWAY_TOKEN_HEADER = "X-IndexForge-Gateway-Token"
# Set by key-auth for authenticated consumers; without key-auth a client could send them.
CONSUMER_HEADERS = ("X-Consumer-ID", "X-Consumer-Username", "X-Consumer-Custom-ID")
RATE_LIMIT_REDIS_DB = 2  # the API uses db 0 and Excel db 1 of the app Redis
SEARCH_PATH = "search"


def _healthchecks(gw: GatewaySpec) -> Obj:
    active, passive = gw.upstream.active, gw.upstream.passive
    # Interval 0 switches a check off in Kong.
    a_interval = active.interval_seconds if active.enabled else 0
    p_on = passive.enabled
    return {
        "active": {
            "type": "http",
            "http_path": active.path,
            "timeout": active.timeout_seconds,
            "concurrency": 10,
            "healthy": {
                "interval": a_interval,
                "successes": active.healthy_successes,
                "http_statuses": [200, 302],
            },
            "unhealthy": {
                "interval": a_interval,
                "http_failures": active.unhealthy_failures,
                "tcp_failures": active.unhealthy_failures,
                "timeouts": active.unhealthy_failures,
                "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
            },
        },
        "passive": {
            "type": "http",
            "healthy": {"successes": passive.healthy_successes if p_on else 0},
            "unhealthy": {
                "http_failures": passive.unhealthy_http_failures if p_on else 0,
                "tcp_failures": passive.unhealthy_http_failures if p_on else 0,
                "timeouts": passive.unhealthy_timeouts if p_on else 0,
                "http_statuses": [500, 502, 503, 504],
            },
        },
    }


def _upstream(gw: GatewaySpec, names: Names, component: Routed, port: int) -> Obj:
    headless = names.fqdn(names.headless(component))
    return {
        "name": f"{component}.upstream",
        "algorithm": gw.upstream.algorithm,
        "healthchecks": _healthchecks(gw),
        "targets": [{"target": f"{headless}:{port}", "weight": 100}],
    }


def _rate_limiting(
    gw: GatewaySpec, names: Names, per_minute: int, *, secrets: GeneratedSecrets
) -> Obj:
    config: Obj = {
        "minute": per_minute,
        "policy": gw.rate_limiting.policy,
        "limit_by": "consumer",
        "fault_tolerant": True,  # Redis down: serve rather than fail every request
    }
    if gw.rate_limiting.policy == "redis":
        config["redis"] = {
            "host": names.fqdn(names.component("redis-app")),
            "port": ports.REDIS,
            "password": secrets.redis_password("redis-app"),
            "database": RATE_LIMIT_REDIS_DB,
            "timeout": 2000,
        }
    return {"name": "rate-limiting", "config": config}


def _route(name: str, path: str, plugins: list[Obj] | None = None) -> Obj:
    route: Obj = {
        "name": name,
        "paths": [path],
        "strip_path": False,  # the services serve under the same prefixes
        "preserve_host": False,
        "protocols": ["http", "https"],
    }
    if plugins:
        route["plugins"] = plugins
    return route


def _proxy_cache(gw: GatewaySpec) -> Obj:
    pc = gw.proxy_cache
    return {
        "name": "proxy-cache",
        "config": {
            "strategy": pc.strategy,
            "content_type": list(pc.content_types),
            "cache_ttl": pc.ttl_seconds,
            "cache_control": True,  # the API's no-store / max-age decide per response
            "request_method": list(pc.request_methods),
            "response_code": list(pc.response_codes),
            "memory": {"dictionary_name": "kong_db_cache"},
        },
    }


def _routes(gw: GatewaySpec, component: Routed, path: str) -> list[Obj]:
    routes = [_route(component, path)]
    if component == "api" and gw.proxy_cache.enabled:
        routes.append(_route("api-search", f"{path}{SEARCH_PATH}", [_proxy_cache(gw)]))
    return routes


def _service(
    gw: GatewaySpec,
    names: Names,
    component: Routed,
    path: str,
    per_minute: int,
    *,
    secrets: GeneratedSecrets,
) -> Obj:
    plugins: list[Obj] = []
    if gw.rate_limiting.enabled:
        plugins.append(_rate_limiting(gw, names, per_minute, secrets=secrets))
    return {
        "name": component,
        "protocol": "http",
        "host": f"{component}.upstream",
        "port": ports.API if component == "api" else ports.ML,
        "connect_timeout": 5000,
        "read_timeout": 60000,
        "write_timeout": 60000,
        "retries": 2,
        "routes": _routes(gw, component, path),
        "plugins": plugins,
    }


def _gateway_token(gw: GatewaySpec, secrets: GeneratedSecrets) -> Obj:
    """Removes whatever the client sent, then adds the current token (remove runs first)."""
    if not secrets.gateway_tokens:
        raise ValueError("no generated gateway token")
    remove = [GATEWAY_TOKEN_HEADER]
    if not gw.key_auth.enabled:
        remove += CONSUMER_HEADERS
    return {
        "name": "request-transformer",
        "config": {
            "remove": {"headers": remove},
            "add": {"headers": [f"{GATEWAY_TOKEN_HEADER}:{secrets.gateway_tokens[0]}"]},
        },
    }


def _global_plugins(gw: GatewaySpec, secrets: GeneratedSecrets) -> list[Obj]:
    out: list[Obj] = [_gateway_token(gw, secrets)]
    if gw.key_auth.enabled:
        out.append(
            {
                "name": "key-auth",
                "config": {
                    "key_names": list(gw.key_auth.key_names),
                    "hide_credentials": gw.key_auth.hide_credentials,
                    "key_in_header": True,
                    "key_in_query": False,  # keys in URLs end up in access logs
                    "key_in_body": False,
                },
            }
        )
    if gw.cors.enabled:
        c = gw.cors
        out.append(
            {
                "name": "cors",
                "config": {
                    "origins": list(c.origins),
                    "methods": list(c.methods),
                    "headers": list(c.headers),
                    "exposed_headers": list(c.exposed_headers),
                    "credentials": c.credentials,
                    "max_age": c.max_age_seconds,
                    "preflight_continue": False,
                },
            }
        )
    if gw.correlation_id.enabled:
        cid = gw.correlation_id
        out.append(
            {
                "name": "correlation-id",
                "config": {
                    "header_name": cid.header_name,
                    "generator": cid.generator,
                    "echo_downstream": cid.echo_downstream,
                },
            }
        )
    if gw.ip_restriction.enabled:
        ip = gw.ip_restriction
        config: Obj = {"status": 403, "message": "Forbidden"}
        if ip.allow:
            config["allow"] = list(ip.allow)
        if ip.deny:
            config["deny"] = list(ip.deny)
        out.append({"name": "ip-restriction", "config": config})
    if gw.bot_detection.enabled:
        bd = gw.bot_detection
        config = {"allow": list(bd.allow), "deny": list(bd.deny)}
        out.append({"name": "bot-detection", "config": config})
    out.append(
        {
            "name": "prometheus",
            "config": {
                "status_code_metrics": True,
                "latency_metrics": True,
                "bandwidth_metrics": True,
                "upstream_health_metrics": True,
                "per_consumer": False,  # consumer label would grow with every consumer
            },
        }
    )
    return out


def _consumers(gw: GatewaySpec, secrets: GeneratedSecrets) -> list[Obj]:
    if not gw.key_auth.enabled:
        return []
    out = []
    for consumer in gw.key_auth.consumers:
        keys = secrets.accepted_keys(consumer.username)
        if not keys:
            raise ValueError(f"no generated key for gateway consumer {consumer.username!r}")
        # Two keys only while a rotation overlaps them (rotation.py), oldest first so the
        # list, and Kong's config checksum, stay the same when the new key is published.
        creds = [{"key": key} for key in keys]
        out.append({"username": consumer.username, "keyauth_credentials": creds})
    return out


def kong_config(spec: IndexForgeSpec, names: Names, *, secrets: GeneratedSecrets) -> Obj:
    """The declarative configuration Kong loads at start."""
    gw = spec.gateway
    return {
        "_format_version": FORMAT_VERSION,
        "_transform": True,
        "services": [
            _service(
                gw, names, "api", gw.routes.api, gw.rate_limiting.api_per_minute, secrets=secrets
            ),
            _service(
                gw, names, "ml", gw.routes.ml, gw.rate_limiting.ml_per_minute, secrets=secrets
            ),
        ],
        "upstreams": [
            _upstream(gw, names, "api", ports.API),
            _upstream(gw, names, "ml", ports.ML),
        ],
        "consumers": _consumers(gw, secrets),
        "plugins": _global_plugins(gw, secrets),
    }
