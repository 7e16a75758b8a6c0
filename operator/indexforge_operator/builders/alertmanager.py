"""Alert delivery: the standalone Alertmanager (StatefulSet) or, with prometheus-operator, an
AlertmanagerConfig for the cluster's Alertmanager. One routing tree serves both.

Receiver credentials stay in the user's Secret: standalone, it is mounted and the config names
the files (`*_file` fields Alertmanager 0.25 already reads); the AlertmanagerConfig references
it by key. Which receivers exist is decided from the key *names* only (`receiver_keys`, what
the reconciler found in the Secret, or `receiversSecretKeys` when set); no value is ever read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..naming import Names
from ..spec import IndexForgeSpec
from ..spec_alertmanager import (
    PAGERDUTY_ROUTING_KEY,
    RECEIVER_KEYS,
    SLACK_API_URL,
    SMTP_AUTH_PASSWORD,
    WEBHOOK_BEARER_TOKEN,
)
from ..telemetry import COMPONENT_LABEL, INSTANCE_LABEL, NAMESPACE_LABEL
from ..yamlio import dump
from . import ports
from .common import (
    Obj,
    container_security,
    headless_service,
    http_probe,
    meta,
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
from .reloader import config_reloader
from .storage import DATA_VOLUME, data_volume_claim, data_volumes, statefulset

ALERTMANAGER_UID = 65534  # "nobody", as in the upstream image
CONFIG_DIR = "/etc/alertmanager/config"
CONFIG_FILE = "alertmanager.yml"
# The user's Secret, mounted whole: each key is a file Alertmanager reads when it notifies,
# so a rotated credential is picked up without a restart.
RECEIVERS_DIR = "/etc/alertmanager/receivers"
DATA_DIR = "/alertmanager"
CRITICAL = "indexforge-critical"
WARNING = "indexforge-warning"
# One notification per alert name and IndexForge instance; a critical alert silences the
# warnings of the same alert and instance.
GROUP_BY = ("alertname", NAMESPACE_LABEL, INSTANCE_LABEL)
INHIBIT_EQUAL = ("alertname", NAMESPACE_LABEL, INSTANCE_LABEL, COMPONENT_LABEL)
SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Labels.alertname }}* ({{ .Labels.severity }}) "
    "{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}"
)
MONITORING_ALPHA_API = "monitoring.coreos.com/v1alpha1"


@dataclass(frozen=True)
class Receivers:
    """Which notification channels exist; each credential is a key of the user's Secret."""

    slack: bool = False
    pagerduty: bool = False
    webhook: bool = False
    webhook_token: bool = False
    email: bool = False
    email_password: bool = False

    @property
    def any(self) -> bool:
        return self.slack or self.pagerduty or self.webhook or self.email


def usable_keys(spec: IndexForgeSpec, receiver_keys: Iterable[str]) -> frozenset[str]:
    """Receiver keys in use: receiversSecretKeys when set, else those the Secret has."""
    am = spec.monitoring.alertmanager
    if am.receivers_secret_ref is None:
        return frozenset()
    if am.receivers_secret_keys is not None:
        return frozenset(am.receivers_secret_keys)
    return frozenset(receiver_keys) & frozenset(RECEIVER_KEYS)


def receivers(spec: IndexForgeSpec, receiver_keys: Iterable[str]) -> Receivers:
    am = spec.monitoring.alertmanager
    keys = usable_keys(spec, receiver_keys)
    return Receivers(
        slack=SLACK_API_URL in keys,
        pagerduty=PAGERDUTY_ROUTING_KEY in keys,
        webhook=am.webhook_url is not None,
        webhook_token=am.webhook_url is not None and WEBHOOK_BEARER_TOKEN in keys,
        email=am.email.to is not None,
        email_password=am.email.to is not None and SMTP_AUTH_PASSWORD in keys,
    )


def _file(key: str) -> str:
    return f"{RECEIVERS_DIR}/{key}"


def _slack(spec: IndexForgeSpec) -> Obj:
    out: Obj = {"api_url_file": _file(SLACK_API_URL), "send_resolved": True}
    if spec.monitoring.alertmanager.slack_channel:
        out["channel"] = spec.monitoring.alertmanager.slack_channel
    out["text"] = SLACK_TEXT
    return out


def _webhook(spec: IndexForgeSpec, rec: Receivers) -> Obj:
    out: Obj = {"url": spec.monitoring.alertmanager.webhook_url, "send_resolved": True}
    if rec.webhook_token:
        out["http_config"] = {"authorization": {"credentials_file": _file(WEBHOOK_BEARER_TOKEN)}}
    return out


def _email(spec: IndexForgeSpec, rec: Receivers) -> Obj:
    mail = spec.monitoring.alertmanager.email
    out: Obj = {
        "to": mail.to,
        "from": mail.from_address,
        "smarthost": mail.smarthost,
        "require_tls": mail.require_tls,
        "send_resolved": True,
    }
    if mail.auth_username:
        out["auth_username"] = mail.auth_username
    if rec.email_password:
        out["auth_password_file"] = _file(SMTP_AUTH_PASSWORD)
    return out


def alertmanager_config(spec: IndexForgeSpec, receiver_keys: Iterable[str] = ()) -> Obj:
    """alertmanager.yml: severity routes, grouping, inhibition, the receivers that exist.

    Receivers without a channel stay in the tree (alerts are then visible in Alertmanager's
    UI and API only), so the routes never change shape when a key is added.
    """
    am = spec.monitoring.alertmanager
    rec = receivers(spec, receiver_keys)
    critical: Obj = {"name": CRITICAL}
    warning: Obj = {"name": WARNING}
    if rec.pagerduty:
        critical["pagerduty_configs"] = [
            {"routing_key_file": _file(PAGERDUTY_ROUTING_KEY), "send_resolved": True}
        ]
    if rec.slack:
        critical["slack_configs"] = [_slack(spec)]
        warning["slack_configs"] = [_slack(spec)]
    if rec.email:
        warning["email_configs"] = [_email(spec, rec)]
    if rec.webhook:
        critical["webhook_configs"] = [_webhook(spec, rec)]
        warning["webhook_configs"] = [_webhook(spec, rec)]
    return {
        "route": {
            "receiver": WARNING,  # alerts without a known severity are warnings
            "group_by": list(GROUP_BY),
            "group_wait": f"{am.group_wait_seconds}s",
            "group_interval": f"{am.group_interval_seconds}s",
            "repeat_interval": f"{am.repeat_interval_minutes}m",
            "routes": [
                {"receiver": CRITICAL, "matchers": ['severity="critical"']},
                {"receiver": WARNING, "matchers": ['severity="warning"']},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": list(INHIBIT_EQUAL),
            }
        ],
        "receivers": [critical, warning],
    }


def alertmanager_data(spec: IndexForgeSpec, receiver_keys: Iterable[str] = ()) -> dict[str, str]:
    return {CONFIG_FILE: dump(alertmanager_config(spec, receiver_keys))}


def peers(spec: IndexForgeSpec, names: Names) -> list[str]:
    """Cluster peers: every replica by its stable StatefulSet DNS name."""
    headless = names.fqdn(names.headless("alertmanager"))
    sts = names.component("alertmanager")
    return [
        f"{sts}-{i}.{headless}:{ports.ALERTMANAGER_CLUSTER}"
        for i in range(spec.monitoring.alertmanager.replicas)
    ]


def _args(spec: IndexForgeSpec, names: Names) -> list[str]:
    args = [
        f"--config.file={CONFIG_DIR}/{CONFIG_FILE}",
        f"--storage.path={DATA_DIR}",
        f"--web.listen-address=0.0.0.0:{ports.ALERTMANAGER}",
    ]
    if spec.monitoring.alertmanager.replicas == 1:
        return [*args, "--cluster.listen-address="]  # empty: no gossip for a single replica
    return [
        *args,
        f"--cluster.listen-address=0.0.0.0:{ports.ALERTMANAGER_CLUSTER}",
        f"--cluster.advertise-address=$(POD_IP):{ports.ALERTMANAGER_CLUSTER}",
        *(f"--cluster.peer={p}" for p in peers(spec, names)),
    ]


def build_alertmanager(
    spec: IndexForgeSpec, names: Names, *, receiver_keys: Iterable[str] = ()
) -> list[Obj]:
    """Standalone mode only; the caller decides the mode."""
    am = spec.monitoring.alertmanager
    data = alertmanager_data(spec, receiver_keys)
    clustered = am.replicas > 1
    container_ports: list[Obj] = [
        {"name": "http", "containerPort": ports.ALERTMANAGER, "protocol": "TCP"}
    ]
    if clustered:
        container_ports += [
            {"name": "cluster-tcp", "containerPort": ports.ALERTMANAGER_CLUSTER, "protocol": "TCP"},
            {"name": "cluster-udp", "containerPort": ports.ALERTMANAGER_CLUSTER, "protocol": "UDP"},
        ]
    mounts: list[Obj] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": DATA_VOLUME, "mountPath": DATA_DIR},
        tmp_mount(),
    ]
    volumes: list[Obj] = [
        {"name": "config", "secret": {"secretName": names.config("alertmanager")}},
        tmp_volume(),
    ]
    if am.receivers_secret_ref is not None:
        mounts.append({"name": "receivers", "mountPath": RECEIVERS_DIR, "readOnly": True})
        # optional: a missing Secret is reported in the CR's status; Alertmanager still runs
        # and shows the alerts.
        volumes.append(
            {
                "name": "receivers",
                "secret": {
                    "secretName": am.receivers_secret_ref.name,
                    "optional": True,
                    "defaultMode": 0o440,
                },
            }
        )
    container: Obj = {
        "name": "alertmanager",
        "image": am.image,
        "imagePullPolicy": am.image_pull_policy,
        "args": _args(spec, names),
        "ports": container_ports,
        "resources": resources(am.resources),
        "securityContext": container_security(),
        "livenessProbe": http_probe("/-/healthy", "http"),
        "readinessProbe": http_probe("/-/ready", "http", period=5),
        "volumeMounts": mounts,
    }
    if clustered:
        container["env"] = [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        ]
    claim = data_volume_claim(names, "alertmanager", am.persistence)
    template = pod_template(
        names,
        "alertmanager",
        spec=spec,
        pod_spec={
            "securityContext": pod_security(ALERTMANAGER_UID),
            "containers": [
                container,
                config_reloader(
                    spec,
                    volume="config",
                    watched_dir=CONFIG_DIR,
                    reload_url=f"http://127.0.0.1:{ports.ALERTMANAGER}/-/reload",
                ),
            ],
            "volumes": [*volumes, *data_volumes(claim)],
        },
        # No config checksum: the reloader sidecar makes Alertmanager re-read a changed
        # alertmanager.yml; a restart would interrupt notification delivery.
    )
    http = [service_port("http", ports.ALERTMANAGER)]
    out = [
        service_account(names, "alertmanager"),
        secret(names, "alertmanager", names.config("alertmanager"), data),
        service(names, "alertmanager", http),
        # Prometheus sends to every replica (DNS A records); peers find each other before
        # they are ready, hence publishNotReadyAddresses.
        headless_service(names, "alertmanager", http, scrape=False, publish_not_ready=True),
        statefulset(
            spec,
            names,
            "alertmanager",
            replicas=am.replicas,
            template=template,
            claim=claim,
            parallel=True,
        ),
    ]
    if wants_pdb(am.pod_disruption_budget, max_replicas=am.replicas):
        out.append(pdb(names, "alertmanager", am.pod_disruption_budget))
    return out


def alerting_config(spec: IndexForgeSpec, names: Names) -> Obj:
    """The `alerting` block of the standalone Prometheus: every Alertmanager replica."""
    return {
        "alertmanagers": [
            {
                "api_version": "v2",
                "dns_sd_configs": [
                    {
                        "names": [names.fqdn(names.headless("alertmanager"))],
                        "type": "A",
                        "port": ports.ALERTMANAGER,
                        "refresh_interval": "30s",
                    }
                ],
            }
        ]
    }


# -- prometheus-operator mode -----------------------------------------------------------------
def _match(value: str) -> list[Obj]:
    return [{"name": "severity", "value": value, "matchType": "="}]


def _ref(spec: IndexForgeSpec, key: str) -> Obj:
    ref = spec.monitoring.alertmanager.receivers_secret_ref
    assert ref is not None  # a key is usable only with a Secret
    return {"name": ref.name, "key": key}


def _crd_receivers(spec: IndexForgeSpec, rec: Receivers) -> list[Obj]:
    am = spec.monitoring.alertmanager
    critical: Obj = {"name": CRITICAL}
    warning: Obj = {"name": WARNING}
    if rec.pagerduty:
        critical["pagerdutyConfigs"] = [
            {"routingKey": _ref(spec, PAGERDUTY_ROUTING_KEY), "sendResolved": True}
        ]
    if rec.slack:
        slack: Obj = {"apiURL": _ref(spec, SLACK_API_URL), "sendResolved": True}
        if am.slack_channel:
            slack["channel"] = am.slack_channel
        slack["text"] = SLACK_TEXT
        critical["slackConfigs"] = [slack]
        warning["slackConfigs"] = [dict(slack)]  # no shared object: YAML would alias it
    if rec.email:
        mail = am.email
        email: Obj = {
            "to": mail.to,
            "from": mail.from_address,
            "smarthost": mail.smarthost,
            "requireTLS": mail.require_tls,
            "sendResolved": True,
        }
        if mail.auth_username:
            email["authUsername"] = mail.auth_username
        if rec.email_password:
            email["authPassword"] = _ref(spec, SMTP_AUTH_PASSWORD)
        warning["emailConfigs"] = [email]
    if rec.webhook:
        hook: Obj = {"url": am.webhook_url, "sendResolved": True}
        if rec.webhook_token:
            hook["httpConfig"] = {
                "authorization": {"credentials": _ref(spec, WEBHOOK_BEARER_TOKEN)}
            }
        critical["webhookConfigs"] = [hook]
        warning["webhookConfigs"] = [dict(hook)]
    return [critical, warning]


def build_alertmanager_config(
    spec: IndexForgeSpec, names: Names, *, receiver_keys: Iterable[str] = ()
) -> list[Obj]:
    """The same routes for the cluster's Alertmanager (prometheus-operator mode). Its
    alertmanagerConfigSelector must match monitoring.serviceMonitor.labels."""
    am = spec.monitoring.alertmanager
    rec = receivers(spec, receiver_keys)
    return [
        {
            "apiVersion": MONITORING_ALPHA_API,
            "kind": "AlertmanagerConfig",
            "metadata": meta(
                names,
                "alertmanager",
                names.component("alertmanager"),
                extra_labels=spec.monitoring.service_monitor.labels,
            ),
            "spec": {
                "route": {
                    "receiver": WARNING,
                    "groupBy": list(GROUP_BY),
                    "groupWait": f"{am.group_wait_seconds}s",
                    "groupInterval": f"{am.group_interval_seconds}s",
                    "repeatInterval": f"{am.repeat_interval_minutes}m",
                    "routes": [
                        {"receiver": CRITICAL, "matchers": _match("critical")},
                        {"receiver": WARNING, "matchers": _match("warning")},
                    ],
                },
                "receivers": _crd_receivers(spec, rec),
                "inhibitRules": [
                    {
                        "sourceMatch": _match("critical"),
                        "targetMatch": _match("warning"),
                        "equal": list(INHIBIT_EQUAL),
                    }
                ],
            },
        }
    ]
