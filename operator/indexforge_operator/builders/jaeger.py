"""Jaeger v2: an OpenTelemetry Collector distribution with OTLP receivers (4317 gRPC, 4318 HTTP),
the query UI/API (16686) and a Badger span store on a PersistentVolumeClaim.

v2 is configured by one collector config file (rendered here into a ConfigMap) instead of v1's
environment variables. The tests start the real `jaeger` binary with this config, its listen
addresses and directories moved to loopback/tmp, so a key v2 rejects fails a test.
"""

from __future__ import annotations

import re

from ..naming import Names
from ..spec import IndexForgeSpec
from ..spec_common import Persistence
from ..yamlio import dump
from . import ports
from .common import (
    Obj,
    checksum,
    config_map,
    container_security,
    headless_service,
    http_probe,
    pod_security,
    pod_template,
    resources,
    service,
    service_account,
    service_port,
    tmp_mount,
    tmp_volume,
)
from .storage import DATA_VOLUME, data_volume_claim, statefulset

JAEGER_UID = 10001  # the user of the upstream image
CONFIG_DIR = "/etc/jaeger"
CONFIG_FILE = "config.yaml"
DATA_DIR = "/badger"
STORE = "badger"  # name of the storage backend the query extension and the exporter share
HEALTH_PATH = "/status"
_HOURS = {"h": 1, "d": 24, "w": 168}


def retention_hours(retention: str) -> int:
    """'7d' -> 168 (Badger's TTL is a Go duration, which has no days)."""
    match = re.fullmatch(r"([0-9]+)([hdw])", retention)
    if match is None:
        raise ValueError(f"bad retention {retention!r}")
    return int(match.group(1)) * _HOURS[match.group(2)]


def _listen(port: int, host: str = "0.0.0.0") -> str:
    return f"{host}:{port}"


def jaeger_config(spec: IndexForgeSpec) -> Obj:
    """The v2 collector config: OTLP in -> memory limiter -> batch -> Badger, plus query UI/API,
    health (/status) and the collector's own metrics. Every listen address is explicit (the
    defaults differ between versions and bind localhost only)."""
    jaeger = spec.monitoring.jaeger
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": "0.0.0.0", "port": ports.JAEGER_METRICS}
                                }
                            }
                        }
                    ]
                },
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            "healthcheckv2": {
                "use_v2": True,
                "http": {
                    "endpoint": _listen(ports.JAEGER_HEALTH),
                    "status": {"enabled": True, "path": HEALTH_PATH},
                },
            },
            "jaeger_query": {
                "storage": {"traces": STORE},
                # v2 traces its own queries to OTLP's default, localhost:4317 (itself): the
                # store would fill with the UI's requests. Only the services' traces go in.
                "enable_tracing": False,
                "http": {"endpoint": _listen(ports.JAEGER_UI)},
                # Nothing uses the gRPC query API: keep it inside the pod.
                "grpc": {"endpoint": _listen(ports.JAEGER_QUERY_GRPC, "127.0.0.1")},
            },
            "jaeger_storage": {
                "backends": {
                    STORE: {
                        "badger": {
                            "directories": {
                                "keys": f"{DATA_DIR}/keys",
                                "values": f"{DATA_DIR}/values",
                            },
                            "ephemeral": False,
                            "ttl": {"spans": f"{retention_hours(jaeger.retention)}h"},
                        }
                    }
                }
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": _listen(ports.JAEGER_OTLP_GRPC)},
                    "http": {"endpoint": _listen(ports.JAEGER_OTLP_HTTP)},
                }
            }
        },
        "processors": {
            # Refuse spans (clients retry) before the container's memory limit is reached;
            # the percentages are of the cgroup limit.
            "memory_limiter": {
                "check_interval": "1s",
                "limit_percentage": 80,
                "spike_limit_percentage": 20,
            },
            "batch": {},
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": STORE}},
    }


def jaeger_data(spec: IndexForgeSpec) -> dict[str, str]:
    """ConfigMap data: the collector config file."""
    return {CONFIG_FILE: dump(jaeger_config(spec))}


def build_jaeger(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    jaeger = spec.monitoring.jaeger
    data = jaeger_data(spec)
    named = (
        ("otlp-grpc", ports.JAEGER_OTLP_GRPC),
        ("otlp-http", ports.JAEGER_OTLP_HTTP),
        ("ui", ports.JAEGER_UI),
        ("health", ports.JAEGER_HEALTH),
        ("metrics", ports.JAEGER_METRICS),
    )
    claim = data_volume_claim(
        names, "jaeger", Persistence.model_validate({"size": jaeger.storage_size})
    )
    template = pod_template(
        names,
        "jaeger",
        spec=spec,
        pod_spec={
            "securityContext": pod_security(JAEGER_UID),
            "containers": [
                {
                    "name": "jaeger",
                    "image": jaeger.image,
                    "imagePullPolicy": jaeger.image_pull_policy,
                    "args": [f"--config={CONFIG_DIR}/{CONFIG_FILE}"],
                    "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in named],
                    "resources": resources(jaeger.resources),
                    "securityContext": container_security(),
                    "livenessProbe": http_probe(HEALTH_PATH, "health", failures=6),
                    "readinessProbe": http_probe(HEALTH_PATH, "health", period=5),
                    "volumeMounts": [
                        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                        {"name": DATA_VOLUME, "mountPath": DATA_DIR},
                        tmp_mount(),
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": names.config("jaeger")}},
                tmp_volume(),
            ],
        },
        config_checksum=checksum(data),
    )
    client_ports = [service_port(n, p) for n, p in named if n != "metrics"]
    return [
        service_account(names, "jaeger"),
        config_map(names, "jaeger", names.config("jaeger"), data),
        service(names, "jaeger", client_ports),
        # The StatefulSet's pod DNS, and what Prometheus scrapes (the collector's metrics).
        headless_service(names, "jaeger", [service_port("metrics", ports.JAEGER_METRICS)]),
        # A StatefulSet of one: Badger allows one process per directory, and a StatefulSet
        # never runs two pods of one identity, even while rolling.
        statefulset(spec, names, "jaeger", replicas=1, template=template, claim=claim),
    ]
