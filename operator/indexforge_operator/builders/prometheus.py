"""Standalone Prometheus (no prometheus-operator): config + rules ConfigMap, a StatefulSet of
one with the TSDB on a PersistentVolumeClaim, reloaded (not restarted) when config or rules
change.

Targets are found through DNS (A records of each headless Service), so Prometheus needs no
Kubernetes API access and no RBAC; relabelling attaches the same target labels a
ServiceMonitor does, so the shared alert rules match in both modes.
"""

from __future__ import annotations

from ..alerts import rule_file
from ..naming import Names
from ..spec import IndexForgeSpec
from ..spec_common import Persistence
from ..telemetry import target_labels
from ..yamlio import dump
from . import ports
from .alertmanager import alerting_config
from .common import (
    Obj,
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
from .reloader import config_reloader
from .storage import DATA_VOLUME, data_volume_claim, statefulset
from .targets import scrape_targets

PROMETHEUS_UID = 65534  # "nobody", as in the upstream image
CONFIG_DIR = "/etc/prometheus"
DATA_DIR = "/prometheus"
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
    for target in scrape_targets(spec, standalone=True):
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


def admin_api(spec: IndexForgeSpec) -> bool:
    """The TSDB admin API (snapshots) is on only while backups need it."""
    return spec.backup.enabled


def prometheus_args(spec: IndexForgeSpec) -> list[str]:
    prom = spec.monitoring.prometheus
    args = [
        f"--config.file={CONFIG_DIR}/prometheus.yml",
        f"--storage.tsdb.path={DATA_DIR}",
        f"--storage.tsdb.retention.time={prom.retention}",
        f"--web.listen-address=0.0.0.0:{ports.PROMETHEUS}",
        # POST /-/reload: what the config-reloader sidecar calls after a ConfigMap update.
        "--web.enable-lifecycle",
    ]
    if admin_api(spec):
        # Snapshots for the backup job. Port 9090 is reachable only from Grafana and the
        # backup job (NetworkPolicy), both of this instance.
        args.append("--web.enable-admin-api")
    return args


def build_prometheus(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """Only for standalone mode; the caller decides the mode."""
    prom = spec.monitoring.prometheus
    data = prometheus_data(spec, names)
    claim = data_volume_claim(
        names, "prometheus", Persistence.model_validate({"size": prom.storage_size})
    )
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
                    "args": prometheus_args(spec),
                    "ports": [
                        {"name": "http", "containerPort": ports.PROMETHEUS, "protocol": "TCP"}
                    ],
                    "resources": resources(prom.resources),
                    "securityContext": container_security(),
                    "livenessProbe": http_probe("/-/healthy", "http"),
                    "readinessProbe": http_probe("/-/ready", "http", period=5),
                    "volumeMounts": [
                        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                        {"name": DATA_VOLUME, "mountPath": DATA_DIR},
                        tmp_mount(),
                    ],
                },
                config_reloader(
                    spec,
                    volume="config",
                    watched_dir=CONFIG_DIR,
                    reload_url=f"http://127.0.0.1:{ports.PROMETHEUS}/-/reload",
                ),
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": names.config("prometheus")}},
                tmp_volume(),
            ],
        },
        # No config checksum: config and rules reach the running process through the volume
        # and the reloader; a pod restart would only interrupt scraping and alerting.
    )
    return [
        service_account(names, "prometheus"),
        config_map(names, "prometheus", names.config("prometheus"), data),
        service(names, "prometheus", [service_port("http", ports.PROMETHEUS)]),
        # The StatefulSet's governing Service (Prometheus scrapes itself on localhost).
        headless_service(
            names, "prometheus", [service_port("http", ports.PROMETHEUS)], scrape=False
        ),
        # One replica: two would scrape and alert twice. A StatefulSet never runs two pods of
        # one identity, so the TSDB (one writer per directory) is never opened twice.
        statefulset(spec, names, "prometheus", replicas=1, template=template, claim=claim),
    ]
