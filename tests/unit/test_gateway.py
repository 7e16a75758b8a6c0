"""Kong's declarative config: routes, upstreams, plugins and consumers follow the spec."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
import yaml

from indexforge_operator.builders import entry_url
from indexforge_operator.builders.kong_config import kong_config

from .support import NAMES, build, find, make_spec, secrets_for


def _config(
    raw: dict[str, Any] | None = None, keys: dict[str, str] | None = None
) -> dict[str, Any]:
    spec = make_spec(raw)
    consumers = (
        keys
        if keys is not None
        else {c.username: f"key-{c.username}" for c in spec.gateway.key_auth.consumers}
    )
    secrets = dataclasses.replace(secrets_for(spec), consumer_keys=consumers)
    return kong_config(spec, NAMES, secrets=secrets)


def _plugins(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p["config"] for p in config["plugins"]}


def test_routes_send_prefixes_to_their_services() -> None:
    config = _config()
    routes = {r["name"]: (r["paths"], s["host"]) for s in config["services"] for r in s["routes"]}
    assert routes == {
        "api": (["/api/v1/"], "api.upstream"),
        "api-search": (["/api/v1/search"], "api.upstream"),
        "ml": (["/api/v1/ml/"], "ml.upstream"),
    }
    assert config["_format_version"] == "3.0"


def test_upstreams_balance_over_pods_with_health_checks() -> None:
    config = _config(
        {"gateway": {"upstream": {"active": {"path": "/readyz", "intervalSeconds": 7}}}}
    )
    upstreams = {u["name"]: u for u in config["upstreams"]}
    assert set(upstreams) == {"api.upstream", "ml.upstream"}
    api = upstreams["api.upstream"]
    assert api["algorithm"] == "round-robin"
    assert api["targets"] == [{"target": f"{NAMES.headless('api')}.shop.svc:8000", "weight": 100}]
    active, passive = api["healthchecks"]["active"], api["healthchecks"]["passive"]
    assert active["http_path"] == "/readyz" and active["healthy"]["interval"] == 7
    assert passive["unhealthy"]["http_failures"] == 5


def test_turning_health_checks_off_zeroes_them() -> None:
    off = {"gateway": {"upstream": {"active": {"enabled": False}, "passive": {"enabled": False}}}}
    checks = _config(off)["upstreams"][0]["healthchecks"]
    assert checks["active"]["healthy"]["interval"] == 0
    assert checks["passive"]["unhealthy"]["http_failures"] == 0


@pytest.mark.parametrize(("api", "ml"), [(60, 30), (600, 5)])
def test_rate_limits_per_service(api: int, ml: int) -> None:
    config = _config({"gateway": {"rateLimiting": {"apiPerMinute": api, "mlPerMinute": ml}}})
    limits = {
        s["name"]: p["config"]
        for s in config["services"]
        for p in s["plugins"]
        if p["name"] == "rate-limiting"
    }
    assert limits["api"]["minute"] == api and limits["ml"]["minute"] == ml


def test_rate_limits_hold_across_replicas_through_the_app_redis() -> None:
    """policy redis (the default) shares counters; the password is the generated one."""
    spec = make_spec({})
    secrets = secrets_for(spec)
    config = kong_config(spec, NAMES, secrets=secrets)
    for service in config["services"]:
        (limit,) = [p["config"] for p in service["plugins"] if p["name"] == "rate-limiting"]
        assert limit["policy"] == "redis"
        assert limit["redis"]["host"] == f"{NAMES.component('redis-app')}.shop.svc"
        assert limit["redis"]["password"] == secrets.redis_password("redis-app")
    local = _config({"gateway": {"rateLimiting": {"policy": "local"}}})
    assert all("redis" not in p["config"] for s in local["services"] for p in s["plugins"])


def _route_plugins(config: dict[str, Any]) -> dict[str, list[str]]:
    return {
        r["name"]: [p["name"] for p in r.get("plugins", [])]
        for s in config["services"]
        for r in s["routes"]
    }


def test_proxy_cache_runs_on_search_only_and_honours_cache_control() -> None:
    """Issue 10: a global proxy-cache kept job status 'queued' for 300 s and served deleted
    documents. Only the search route caches, and the API's Cache-Control decides."""
    config = _config()
    assert "proxy-cache" not in _plugins(config)
    assert _route_plugins(config) == {"api": [], "api-search": ["proxy-cache"], "ml": []}
    (search,) = [r for s in config["services"] for r in s["routes"] if r["name"] == "api-search"]
    cache = search["plugins"][0]["config"]
    assert cache["cache_control"] is True and cache["cache_ttl"] == 30
    off = _config({"gateway": {"proxyCache": {"enabled": False}}})
    assert _route_plugins(off) == {"api": [], "ml": []}


@pytest.mark.parametrize("key_auth", [True, False])
def test_kong_replaces_any_client_token_with_the_instance_token(key_auth: bool) -> None:
    spec = make_spec({"gateway": {"keyAuth": {"enabled": key_auth}}})
    secrets = dataclasses.replace(secrets_for(spec), gateway_tokens=("new", "old"))
    transformer = _plugins(kong_config(spec, NAMES, secrets=secrets))["request-transformer"]
    assert transformer["add"] == {"headers": ["X-IndexForge-Gateway-Token:new"]}
    removed = transformer["remove"]["headers"]
    assert "X-IndexForge-Gateway-Token" in removed
    # Without key-auth nobody sets the consumer headers, so a client must not either.
    assert ("X-Consumer-Username" in removed) is (not key_auth)


def test_default_plugins_and_their_settings() -> None:
    plugins = _plugins(_config())
    assert set(plugins) == {
        "request-transformer",
        "key-auth",
        "cors",
        "correlation-id",
        "bot-detection",
        "prometheus",
    }
    assert plugins["correlation-id"] == {
        "header_name": "Kong-Request-ID",
        "generator": "uuid#counter",
        "echo_downstream": True,
    }
    assert plugins["key-auth"]["key_in_query"] is False


def test_ip_restriction_when_enabled() -> None:
    raw = {
        "gateway": {
            "ipRestriction": {"enabled": True, "allow": ["10.0.0.0/8"], "deny": ["10.9.0.0/16"]}
        }
    }
    ip = _plugins(_config(raw))["ip-restriction"]
    assert ip["allow"] == ["10.0.0.0/8"] and ip["deny"] == ["10.9.0.0/16"]


@pytest.mark.parametrize(
    "plugin", ["keyAuth", "cors", "proxyCache", "correlationId", "botDetection"]
)
def test_each_plugin_can_be_switched_off(plugin: str) -> None:
    kong_name = {
        "keyAuth": "key-auth",
        "cors": "cors",
        "proxyCache": "proxy-cache",
        "correlationId": "correlation-id",
        "botDetection": "bot-detection",
    }[plugin]

    def names(config: dict[str, Any]) -> set[str]:
        on_routes = {p for ps in _route_plugins(config).values() for p in ps}
        return set(_plugins(config)) | on_routes

    assert kong_name in names(_config())
    assert kong_name not in names(_config({"gateway": {plugin: {"enabled": False}}}))


def test_consumers_carry_generated_keys() -> None:
    raw = {"gateway": {"keyAuth": {"consumers": [{"username": "web"}, {"username": "batch"}]}}}
    config = _config(raw, keys={"web": "k1", "batch": "k2"})
    assert config["consumers"] == [
        {"username": "web", "keyauth_credentials": [{"key": "k1"}]},
        {"username": "batch", "keyauth_credentials": [{"key": "k2"}]},
    ]


def test_missing_key_is_an_error_not_an_open_gateway() -> None:
    with pytest.raises(ValueError, match="web"):
        _config({"gateway": {"keyAuth": {"consumers": [{"username": "web"}]}}}, keys={})


def test_config_lives_in_a_secret_and_keys_in_another() -> None:
    objs = build({"gateway": {"keyAuth": {"consumers": [{"username": "web"}]}}})
    config_secret = find(objs, "Secret", NAMES.config("gateway"))
    text = base64.b64decode(config_secret["data"]["kong.yml"]).decode()
    config = yaml.safe_load(text)
    key = config["consumers"][0]["keyauth_credentials"][0]["key"]
    keys = find(objs, "Secret", NAMES.gateway_consumers)
    assert base64.b64decode(keys["data"]["web"]).decode() == key
    assert not any(o["kind"] == "ConfigMap" and key in str(o) for o in objs)


def test_no_gateway_objects_when_disabled() -> None:
    objs = build({"gateway": {"enabled": False}})
    assert not [
        o for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/component") == "gateway"
    ]


@pytest.mark.parametrize(
    ("raw", "scheme", "component", "port"),
    [
        ({}, "http", "gateway", 80),
        ({"gateway": {"tls": {"enabled": True, "secretName": "t"}}}, "https", "gateway", 443),
        ({"gateway": {"enabled": False}}, "http", "api", 8000),
    ],
)
def test_entry_url_points_at_a_real_service_port(
    raw: dict[str, Any], scheme: str, component: str, port: int
) -> None:
    url = entry_url(make_spec(raw), NAMES)
    assert url == f"{scheme}://{NAMES.component(component)}.shop.svc:{port}"  # type: ignore[arg-type]
    service = find(build(raw), "Service", NAMES.component(component))  # type: ignore[arg-type]
    assert port in [p["port"] for p in service["spec"]["ports"]]
