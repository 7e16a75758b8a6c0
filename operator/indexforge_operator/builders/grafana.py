"""Grafana: admin Secret, provisioning (datasources + dashboard provider), dashboard, and a
StatefulSet of one with grafana.db on a PersistentVolumeClaim."""

from __future__ import annotations

from ..generated import GRAFANA_PASSWORD_KEY, GRAFANA_USER_KEY, GeneratedSecrets
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
    env,
    headless_service,
    http_probe,
    pod_security,
    pod_template,
    resources,
    secret,
    service,
    service_account,
    service_port,
    tmp_mount,
    tmp_volume,
)
from .dashboards import dashboard_files, dashboards_volume
from .storage import DATA_VOLUME, data_volume_claim, statefulset

GRAFANA_UID = 472  # the "grafana" user of the upstream image
DASHBOARDS_DIR = "/var/lib/grafana-dashboards"
DATA_DIR = "/var/lib/grafana"  # grafana.db lives here (the backup job reads it)


def prometheus_url(spec: IndexForgeSpec, names: Names, *, prometheus_operator: bool) -> str:
    """Where Grafana queries metrics in the active monitoring mode."""
    prom = spec.monitoring.prometheus
    if prom.external_url:
        return prom.external_url
    if prometheus_operator or not prom.enabled:
        # prometheus-operator's governing Service for a Prometheus in this namespace.
        return f"http://{names.fqdn('prometheus-operated')}:{ports.PROMETHEUS}"
    return names.url("prometheus", ports.PROMETHEUS)


def provisioning(
    spec: IndexForgeSpec, names: Names, *, prometheus_operator: bool
) -> dict[str, str]:
    datasources: list[Obj] = [
        {
            "name": "Prometheus",
            "uid": "prometheus",
            "type": "prometheus",
            "access": "proxy",
            "url": prometheus_url(spec, names, prometheus_operator=prometheus_operator),
            "isDefault": True,
            "editable": False,
        }
    ]
    if spec.monitoring.jaeger.enabled:
        datasources.append(
            {
                "name": "Jaeger",
                "uid": "jaeger",
                "type": "jaeger",
                "access": "proxy",
                "url": names.url("jaeger", ports.JAEGER_UI),
                "editable": False,
            }
        )
    provider = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "indexforge",
                "folder": "IndexForge",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": DASHBOARDS_DIR},
            }
        ],
    }
    return {
        "datasources.yaml": dump({"apiVersion": 1, "datasources": datasources}),
        "dashboards.yaml": dump(provider),
    }


def build_grafana(
    spec: IndexForgeSpec, names: Names, *, secrets: GeneratedSecrets, prometheus_operator: bool
) -> list[Obj]:
    grafana = spec.monitoring.grafana
    if not secrets.grafana_admin_password:
        raise ValueError("no generated Grafana admin password")
    admin = {
        GRAFANA_USER_KEY: grafana.admin_user,
        GRAFANA_PASSWORD_KEY: secrets.grafana_admin_password,
    }
    prov = provisioning(spec, names, prometheus_operator=prometheus_operator)
    # The dashboards' ConfigMaps are built by dashboards.build_dashboards (one each).
    boards = dashboard_files(names)

    def from_secret(name: str, key: str) -> Obj:
        return {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": names.grafana_admin, "key": key}},
        }

    claim = data_volume_claim(
        names, "grafana", Persistence.model_validate({"size": grafana.storage_size})
    )
    template = pod_template(
        names,
        "grafana",
        spec=spec,
        pod_spec={
            "securityContext": pod_security(GRAFANA_UID),
            "containers": [
                {
                    "name": "grafana",
                    "image": grafana.image,
                    "imagePullPolicy": grafana.image_pull_policy,
                    "env": [
                        from_secret("GF_SECURITY_ADMIN_USER", GRAFANA_USER_KEY),
                        from_secret("GF_SECURITY_ADMIN_PASSWORD", GRAFANA_PASSWORD_KEY),
                        env("GF_PATHS_DATA", DATA_DIR),
                        env("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"),
                        env("GF_AUTH_ANONYMOUS_ENABLED", False),
                        env("GF_ANALYTICS_REPORTING_ENABLED", False),
                        env("GF_ANALYTICS_CHECK_FOR_UPDATES", False),
                    ],
                    "ports": [{"name": "http", "containerPort": ports.GRAFANA, "protocol": "TCP"}],
                    "resources": resources(grafana.resources),
                    "securityContext": container_security(),
                    "livenessProbe": http_probe("/api/health", "http"),
                    "readinessProbe": http_probe("/api/health", "http", period=5),
                    "volumeMounts": [
                        {"name": DATA_VOLUME, "mountPath": DATA_DIR},
                        {
                            "name": "provisioning",
                            "mountPath": "/etc/grafana/provisioning",
                            "readOnly": True,
                        },
                        {"name": "dashboards", "mountPath": DASHBOARDS_DIR, "readOnly": True},
                        tmp_mount(),
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "provisioning",
                    "configMap": {
                        "name": names.grafana_provisioning,
                        # Grafana reads provisioning/<kind>/*.yaml.
                        "items": [
                            {"key": "datasources.yaml", "path": "datasources/datasources.yaml"},
                            {"key": "dashboards.yaml", "path": "dashboards/dashboards.yaml"},
                        ],
                    },
                },
                dashboards_volume(names, "dashboards"),
                tmp_volume(),
            ],
        },
        # The password is generated once; only what Grafana reads at start rolls the pod.
        config_checksum=checksum(prov, boards, {GRAFANA_USER_KEY: grafana.admin_user}),
    )
    return [
        service_account(names, "grafana"),
        secret(names, "grafana", names.grafana_admin, admin),
        config_map(names, "grafana", names.grafana_provisioning, prov),
        service(names, "grafana", [service_port("http", ports.GRAFANA)]),
        # The StatefulSet's governing Service.
        headless_service(names, "grafana", [service_port("http", ports.GRAFANA)], scrape=False),
        # One replica: grafana.db is SQLite (one writer); a StatefulSet never runs two pods of
        # one identity, even while rolling.
        statefulset(spec, names, "grafana", replicas=1, template=template, claim=claim),
    ]
