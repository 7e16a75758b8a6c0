"""Object names and labels: the one place every child object's name comes from.

Builders, the reconciler (prune by label) and tests all derive names from `Names`, so a
renamed object can never leave an orphan that the prune step does not recognise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Component = Literal[
    "api",
    "ml",
    "excel",
    "redis-app",
    "redis-ml",
    "redis-state",  # the API's state: job records, queued uploads (noeviction)
    # Sentinels of the replicated state Redis ("redis-state-sentinel-headless" would pass
    # the 63 characters of a Service name with a 40-character instance name).
    "sentinel",
    "weaviate",
    "gateway",
    "prometheus",
    "alertmanager",
    "grafana",
    "jaeger",
    "backup",  # the backup CronJobs' pods (one NetworkPolicy, one ServiceAccount)
    "rabbitmq",
    "worker",  # ingestion workers (the API image in worker mode)
]

APP_NAME: Final = "indexforge"
PART_OF: Final = "indexforge"
MANAGED_BY: Final = "indexforge-operator"

# The longest derived name is "<instance>-redis-state-headless" (Service, DNS-1035 label of at most
# 63 characters) and a StatefulSet's controller-revision-hash label "<sts>-<10 chars>": 40 keeps
# both valid with room to spare. The CRD enforces the same limit on metadata.name.
MAX_INSTANCE_NAME: Final = 40
INSTANCE_NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_INSTANCE_RE = re.compile(INSTANCE_NAME_PATTERN)
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
# Marks the headless Services that monitoring selects, so a ServiceMonitor never picks up
# the ClusterIP Service of the same component (that would scrape every pod twice).
LABEL_SCRAPE: Final = "indexforge.io/scrape"


# Abbreviated components in backup CronJob names (see Names.backup).
_BACKUP_ABBREVIATIONS: Final[dict[str, str]] = {
    "prometheus": "prom",
    "grafana": "graf",
    "weaviate": "wv",
    "redis-app": "rapp",
    "redis-state": "rst",
}


@dataclass(frozen=True)
class Names:
    """Names of every object of one IndexForge instance (the CR's name and namespace)."""

    instance: str
    namespace: str

    def __post_init__(self) -> None:
        if len(self.instance) > MAX_INSTANCE_NAME or not _INSTANCE_RE.match(self.instance):
            raise ValueError(
                f"instance name {self.instance!r} must match {INSTANCE_NAME_PATTERN} "
                f"and be at most {MAX_INSTANCE_NAME} characters"
            )
        if len(self.namespace) > 63 or not _NAMESPACE_RE.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} is not a valid DNS label")

    def component(self, component: Component) -> str:
        """Name of a component's workload, Service, ServiceAccount and NetworkPolicy."""
        return f"{self.instance}-{component}"

    def headless(self, component: Component) -> str:
        """Headless Service: stable pod DNS for StatefulSets, Kong targets, DNS scraping."""
        return f"{self.component(component)}-headless"

    def config(self, component: Component) -> str:
        """ConfigMap (or Secret, for the gateway) holding a component's configuration."""
        return f"{self.component(component)}-config"

    def fqdn(self, service: str) -> str:
        """In-cluster DNS name of a Service; the resolver's search path adds the domain."""
        return f"{service}.{self.namespace}.svc"

    def url(self, component: Component, port: int, *, scheme: str = "http") -> str:
        return f"{scheme}://{self.fqdn(self.component(component))}:{port}"

    def backup(self, source: Component) -> str:
        """CronJob backing up one component. A CronJob name has at most 52 characters (its
        Jobs append 11), so the component is abbreviated: 40 + len("-prom-backup") = 52."""
        return f"{self.instance}-{_BACKUP_ABBREVIATIONS.get(source, source)}-backup"

    @property
    def default_deny(self) -> str:
        return f"{self.instance}-default-deny"

    @property
    def gateway_consumers(self) -> str:
        """Secret with one generated API key per Kong consumer (username -> key)."""
        return f"{self.instance}-gateway-consumers"

    @property
    def gateway_key_rotation(self) -> str:
        """Secret holding a consumer-key rotation's state (operator only, rotation.py)."""
        return f"{self.instance}-gateway-key-rotation"

    @property
    def redis_password_rotation(self) -> str:
        """Secret holding a Redis password rotation's state (operator only, redis_rotation.py)."""
        return f"{self.instance}-redis-password-rotation"

    @property
    def weaviate_key_rotation(self) -> str:
        """Secret holding a Weaviate API-key rotation's state (operator only)."""
        return f"{self.instance}-weaviate-key-rotation"

    @property
    def grafana_admin(self) -> str:
        """Secret with the generated Grafana admin credentials."""
        return f"{self.instance}-grafana-admin"

    @property
    def internal_auth(self) -> str:
        """Secret with the generated internal credentials (gateway tokens, Redis, Weaviate)."""
        return f"{self.instance}-internal-auth"

    @property
    def secret_store(self) -> str:
        """SecretStore (and its ServiceAccount) of the externalSecrets provider."""
        return f"{self.instance}-secrets"

    @property
    def grafana_provisioning(self) -> str:
        return f"{self.instance}-grafana-provisioning"

    @property
    def grafana_dashboards(self) -> str:
        return f"{self.instance}-grafana-dashboards"

    def grafana_dashboard(self, key: str) -> str:
        """One ConfigMap per dashboard (a ConfigMap holds at most 1 MiB)."""
        return f"{self.instance}-grafana-dashboard-{key}"

    @property
    def prometheus_rules(self) -> str:
        """PrometheusRule (operator mode) and the rules ConfigMap (standalone mode)."""
        return f"{self.instance}-alerts"


def selector_labels(names: Names, component: Component) -> dict[str, str]:
    """Labels a workload selects its pods by.

    Deployment and StatefulSet selectors are immutable: never add a label here, or every
    existing instance would need its workloads deleted and recreated.
    """
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: names.instance,
        LABEL_COMPONENT: component,
    }


def labels(names: Names, component: Component | None) -> dict[str, str]:
    """Full label set for objects and pod templates of a component (None: instance-wide
    objects such as the default-deny NetworkPolicy)."""
    base = instance_pod_selector(names) if component is None else selector_labels(names, component)
    return {**base, LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: MANAGED_BY}


def instance_selector(names: Names) -> dict[str, str]:
    """Labels shared by every object of one instance: what the reconciler prunes by."""
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: names.instance, LABEL_MANAGED_BY: MANAGED_BY}


def instance_pod_selector(names: Names) -> dict[str, str]:
    """Labels shared by every pod of one instance (NetworkPolicy default deny)."""
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: names.instance}
