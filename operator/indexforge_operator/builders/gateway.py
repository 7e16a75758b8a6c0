"""Kong gateway (DB-less): config and consumer-key Secrets, Deployment, Services, PDB."""

from __future__ import annotations

from ..generated import GeneratedSecrets
from ..naming import Names
from ..spec import IndexForgeSpec
from ..yamlio import dump
from . import ports
from .common import (
    Obj,
    checksum,
    container_security,
    deployment,
    empty_dir,
    env,
    headless_service,
    http_probe,
    pdb,
    pod_security,
    pod_template,
    resources,
    secret,
    service,
    service_account,
    service_port,
    tmp_mount,
    tmp_volume,
    wants_pdb,
)
from .kong_config import kong_config
from .python_service import KONG_DNS_TTL_SECONDS

KONG_UID = 1000  # the "kong" user of the official image
CONFIG_FILE = "kong.yml"
CONFIG_DIR = "/kong/declarative"
TLS_DIR = "/etc/kong/tls"
PROXY_PORT = 80  # Service ports; the container listens on ports.KONG_PROXY(_TLS)
PROXY_TLS_PORT = 443


def _real_ip_env(spec: IndexForgeSpec) -> list[Obj]:
    """Client address from the balancer's header, trusted only from the listed proxies."""
    real_ip = spec.gateway.real_ip
    if not real_ip.trusted_proxies:
        return []
    return [
        env("KONG_TRUSTED_IPS", ",".join(real_ip.trusted_proxies)),
        env("KONG_REAL_IP_HEADER", real_ip.header),
        env("KONG_REAL_IP_RECURSIVE", "on"),  # skip trusted hops in X-Forwarded-For
    ]


def _kong_env(spec: IndexForgeSpec) -> list[Obj]:
    listen = f"0.0.0.0:{ports.KONG_PROXY}"
    if spec.gateway.tls.enabled:
        listen += f", 0.0.0.0:{ports.KONG_PROXY_TLS} ssl"
    out = [
        env("KONG_DATABASE", "off"),
        env("KONG_DECLARATIVE_CONFIG", f"{CONFIG_DIR}/{CONFIG_FILE}"),
        env("KONG_PREFIX", "/kong_prefix"),
        env("KONG_PROXY_LISTEN", listen),
        env("KONG_ADMIN_LISTEN", "off"),  # config comes from the Secret only
        env("KONG_STATUS_LISTEN", f"0.0.0.0:{ports.KONG_STATUS}"),
        env("KONG_NGINX_WORKER_PROCESSES", "2"),
        env("KONG_PROXY_ACCESS_LOG", "/dev/stdout"),
        env("KONG_PROXY_ERROR_LOG", "/dev/stderr"),
        env("KONG_LOG_LEVEL", "notice"),
        env("KONG_ANONYMOUS_REPORTS", "off"),
        env("KONG_PLUGINS", "bundled"),
        # Upstream targets are headless Services: a terminating pod leaves Kong's balancer
        # within this TTL, and the services keep serving that long (DRAIN_SECONDS).
        env("KONG_DNS_VALID_TTL", KONG_DNS_TTL_SECONDS),
        *_real_ip_env(spec),
    ]
    if spec.gateway.tls.enabled:
        out += [
            env("KONG_SSL_CERT", f"{TLS_DIR}/tls.crt"),
            env("KONG_SSL_CERT_KEY", f"{TLS_DIR}/tls.key"),
        ]
    return out


def _pod_spec(spec: IndexForgeSpec, names: Names) -> Obj:
    gw = spec.gateway
    container_ports = [
        {"name": "proxy", "containerPort": ports.KONG_PROXY, "protocol": "TCP"},
        {"name": "status", "containerPort": ports.KONG_STATUS, "protocol": "TCP"},
    ]
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "prefix", "mountPath": "/kong_prefix"},
        tmp_mount(),
    ]
    volumes = [
        {"name": "config", "secret": {"secretName": names.config("gateway")}},
        empty_dir("prefix", size_limit="256Mi"),
        tmp_volume(),
    ]
    if gw.tls.enabled and gw.tls.secret_name:
        container_ports.append(
            {"name": "proxy-tls", "containerPort": ports.KONG_PROXY_TLS, "protocol": "TCP"}
        )
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": gw.tls.secret_name}})
    return {
        "securityContext": pod_security(KONG_UID),
        "containers": [
            {
                "name": "kong",
                "image": gw.image,
                "imagePullPolicy": gw.image_pull_policy,
                "env": _kong_env(spec),
                "ports": container_ports,
                "resources": resources(gw.resources),
                "securityContext": container_security(),
                "livenessProbe": http_probe("/status", "status"),
                "readinessProbe": http_probe("/status/ready", "status", period=5),
                "lifecycle": {"preStop": {"exec": {"command": ["kong", "quit", "--wait=15"]}}},
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }


def entry_url(spec: IndexForgeSpec, names: Names) -> str:
    """Where in-cluster clients reach the API: Kong's proxy Service, else the API Service."""
    if not spec.gateway.enabled:
        return names.url("api", ports.API)
    if spec.gateway.tls.enabled:
        return f"https://{names.fqdn(names.component('gateway'))}:{PROXY_TLS_PORT}"
    return f"http://{names.fqdn(names.component('gateway'))}:{PROXY_PORT}"


def build_gateway(spec: IndexForgeSpec, names: Names, *, secrets: GeneratedSecrets) -> list[Obj]:
    gw = spec.gateway
    if not gw.enabled:
        return []
    config_text = dump(kong_config(spec, names, secrets=secrets))
    config_data = {CONFIG_FILE: config_text}
    template = pod_template(
        names,
        "gateway",
        spec=spec,
        pod_spec=_pod_spec(spec, names),
        config_checksum=checksum(config_data),
    )
    proxy_ports = [service_port("proxy", PROXY_PORT, "proxy")]
    if gw.tls.enabled:
        proxy_ports.append(service_port("proxy-tls", PROXY_TLS_PORT, "proxy-tls"))
    out = [
        service_account(names, "gateway"),
        secret(names, "gateway", names.config("gateway"), config_data),
        deployment(names, "gateway", replicas=gw.replicas, template=template),
        service(names, "gateway", proxy_ports, service_type=gw.service_type),
        headless_service(names, "gateway", [service_port("status", ports.KONG_STATUS)]),
    ]
    keys = {c.username: secrets.consumer_keys.get(c.username, "") for c in gw.key_auth.consumers}
    if gw.key_auth.enabled and keys:
        # Users read their API key from here; the reconciler reads it back into GeneratedSecrets.
        out.insert(2, secret(names, "gateway", names.gateway_consumers, keys))
    if wants_pdb(gw.pod_disruption_budget, max_replicas=gw.replicas):
        out.append(pdb(names, "gateway", gw.pod_disruption_budget))
    return out
