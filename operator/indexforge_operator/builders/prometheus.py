"""Standalone Prometheus (no prometheus-operator): config + rules ConfigMap, Deployment.

Targets are found through DNS (A records of each headless Service), so Prometheus needs no
Kubernetes API access and no RBAC; relabelling attaches the same target labels a
ServiceMonitor does, so the shared alert rules match in both modes.
"""

from __future__ import annotations

from ..alerts import rule_file
from ..naming import Names
from ..spec import IndexForgeSpec
from ..telemetry import target_labels
from ..yamlio import dump
from . import ports
from .alertmanager import alerting_config
from .common import (
    Obj,
    checksum,
    config_map,
    container_security,
    deployment,
    empty_dir,
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
from .targets import scrape_targets

PROMETHEUS_UID = 65534  # "nobody", as in the upstream image
CONFIG_DIR = "/etc/prometheus"
RULES_FILE = "indexforge-alerts.yml"


def _relabel(labels: dict[str, str]) -> list[Obj]:
    return [
        {"target_label": key, "replacement": value, "action": "replace"}
        for key, value in labels.items()
    ]


def prometheus_config(spec: IndexForgeSpec, names: Names) -> Obj:
    prom = spec.monitoring.prometheus
    jobs: list[Obj] = [
        {
            "job_name": "prometheus",
            "static_configs": [{"targets": [f"localhost:{ports.PROMETHEUS}"]}],
        }
    ]
    for target in scrape_targets(spec):
        jobs.append(
            {
                "job_name": names.component(target.component),
                "metrics_path": target.path,
                "dns_sd_configs": [
                    {
                        "names": [names.fqdn(names.headless(target.component))],
                        "type": "A",
                        "port": target.port,
                        "refresh_interval": "30s",
                    }
                ],
                "relabel_configs": _relabel(target_labels(names, target.component)),
            }
        )
    config: Obj = {
        "global": {
            "scrape_interval": prom.scrape_interval,
            "evaluation_interval": prom.evaluation_interval,
        },
        "rule_files": [f"{CONFIG_DIR}/{RULES_FILE}"],
    }
    if spec.monitoring.alertmanager.enabled:
        config["alerting"] = alerting_config(spec, names)
    config["scrape_configs"] = jobs
    return config


def prometheus_data(spec: IndexForgeSpec, names: Names) -> dict[str, str]:
    """ConfigMap data: the config and the rule file (same rules as the PrometheusRule)."""
    return {
        "prometheus.yml": dump(prometheus_config(spec, names)),
        RULES_FILE: dump(rule_file(spec, names)),
    }


def build_prometheus(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """Only for standalone mode; the caller decides the mode."""
    prom = spec.monitoring.prometheus
    data = prometheus_data(spec, names)
    template = pod_template(
        names,
        "prometheus",
        spec=spec,
        pod_spec={
            "securityContext": pod_security(PROMETHEUS_UID),
            "containers": [
                {
                    "name": "prometheus",
                    "image": prom.image,
                    "imagePullPolicy": prom.image_pull_policy,
                    "args": [
                        f"--config.file={CONFIG_DIR}/prometheus.yml",
                        "--storage.tsdb.path=/prometheus",
                        f"--storage.tsdb.retention.time={prom.retention}",
                        f"--web.listen-address=0.0.0.0:{ports.PROMETHEUS}",
                    ],
                    "ports": [
                        {"name": "http", "containerPort": ports.PROMETHEUS, "protocol": "TCP"}
                    ],
                    "resources": resources(prom.resources),
                    "securityContext": container_security(),
                    "livenessProbe": http_probe("/-/healthy", "http"),
                    "readinessProbe": http_probe("/-/ready", "http", period=5),
                    "volumeMounts": [
                        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                        {"name": "data", "mountPath": "/prometheus"},
                        tmp_mount(),
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": names.config("prometheus")}},
                empty_dir("data", size_limit=prom.storage_size),
                tmp_volume(),
            ],
        },
        config_checksum=checksum(data),
    )
    return [
        service_account(names, "prometheus"),
        config_map(names, "prometheus", names.config("prometheus"), data),
        # One replica: two would scrape and alert twice; the data is an emptyDir anyway.
        deployment(names, "prometheus", replicas=1, template=template, recreate=True),
        service(names, "prometheus", [service_port("http", ports.PROMETHEUS)]),
    ]
