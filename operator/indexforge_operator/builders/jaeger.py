"""Jaeger all-in-one: OTLP receivers (4317 gRPC, 4318 HTTP), UI, Badger span store."""

from __future__ import annotations

import re

from ..naming import Names
from ..spec import IndexForgeSpec
from . import ports
from .common import (
    Obj,
    container_security,
    deployment,
    empty_dir,
    env,
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

JAEGER_UID = 10001  # the user of the upstream image
_HOURS = {"h": 1, "d": 24, "w": 168}


def retention_hours(retention: str) -> int:
    """'7d' -> 168 (Badger's TTL is a Go duration, which has no days)."""
    match = re.fullmatch(r"([0-9]+)([hdw])", retention)
    if match is None:
        raise ValueError(f"bad retention {retention!r}")
    return int(match.group(1)) * _HOURS[match.group(2)]


def build_jaeger(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    jaeger = spec.monitoring.jaeger
    named = (
        ("otlp-grpc", ports.JAEGER_OTLP_GRPC),
        ("otlp-http", ports.JAEGER_OTLP_HTTP),
        ("ui", ports.JAEGER_UI),
        ("admin", ports.JAEGER_ADMIN),
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
                    "env": [
                        env("COLLECTOR_OTLP_ENABLED", True),
                        env("SPAN_STORAGE_TYPE", "badger"),
                        env("BADGER_EPHEMERAL", False),
                        env("BADGER_DIRECTORY_VALUE", "/badger/data"),
                        env("BADGER_DIRECTORY_KEY", "/badger/key"),
                        env("BADGER_SPAN_STORE_TTL", f"{retention_hours(jaeger.retention)}h"),
                    ],
                    "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in named],
                    "resources": resources(jaeger.resources),
                    "securityContext": container_security(),
                    "livenessProbe": http_probe("/", "admin"),
                    "readinessProbe": http_probe("/", "admin", period=5),
                    "volumeMounts": [{"name": "badger", "mountPath": "/badger"}, tmp_mount()],
                }
            ],
            "volumes": [empty_dir("badger", size_limit=jaeger.storage_size), tmp_volume()],
        },
    )
    return [
        service_account(names, "jaeger"),
        # Badger allows one process per directory: never two pods at once.
        deployment(names, "jaeger", replicas=1, template=template, recreate=True),
        service(names, "jaeger", [service_port(n, p) for n, p in named]),
    ]
