"""The built-in RabbitMQ broker: a StatefulSet of clustered nodes with quorum queues.

Nodes find each other by name, not through the Kubernetes API: a StatefulSet's pod names are
known in advance, so `classic_config` lists them all and no node needs RBAC for peer
discovery (the RabbitMQ cluster operator's own images use the same static list). Names are
long (`rabbit@<pod>.<headless>.<ns>.svc.cluster.local`), the headless Service publishes
not-ready pods so peers resolve while they boot, and pods start in parallel.

Credentials come from the internal-auth Secret: the default user's conf file (only read when
a node first creates its database) and the Erlang cookie, which an init container copies
into place with the 0600 mode Erlang insists on. A node about to stop waits until every
quorum queue keeps a majority without it and hands its leaderships over (preStop), so a
rolling restart never makes a queue unavailable.
"""

from __future__ import annotations

from ..generated import RABBITMQ_COOKIE_KEY
from ..naming import Names
from ..quantity import parse_quantity
from ..spec import IndexForgeSpec
from . import ports
from .common import (
    Obj,
    config_map,
    container_security,
    headless_service,
    pdb,
    pod_security,
    pod_template,
    resources,
    service,
    service_account,
    service_port,
    tmp_mount,
    tmp_volume,
    wants_pdb,
)
from .credentials import RABBITMQ_AUTH_CONF_KEY
from .storage import DATA_VOLUME, data_volume_claim, data_volumes, statefulset

RABBITMQ_UID = 999  # the "rabbitmq" user of the official image
CONF_DIR = "/etc/rabbitmq/conf.d"
CONF_KEY = "10-indexforge.conf"
AUTH_CONF_FILE = "20-auth.conf"
PLUGINS_DIR = "/etc/rabbitmq/plugins"
PLUGINS_KEY = "enabled_plugins"
PLUGINS = ("rabbitmq_prometheus",)
DATA_DIR = "/var/lib/rabbitmq"  # the rabbitmq user's HOME: mnesia and the Erlang cookie
COOKIE_DIR = "/var/run/indexforge/erlang-cookie"
# How long a stopping node may wait for its queues to keep quorum and to hand over leaders.
DRAIN_SECONDS = 600
MEMORY_HIGH_WATERMARK = 0.6  # of the container's memory limit (not the node's memory)


def node_names(spec: IndexForgeSpec, names: Names) -> list[str]:
    """Every node of the cluster, as RabbitMQ names them (long names)."""
    domain = names.fqdn(names.headless("rabbitmq"))
    pods = (f"{names.component('rabbitmq')}-{i}" for i in range(spec.messaging.rabbitmq.replicas))
    return [f"rabbit@{pod}.{domain}" for pod in pods]


def rabbitmq_conf(spec: IndexForgeSpec, names: Names) -> str:
    """rabbitmq.conf (sysctl format) of every node; keys valid from RabbitMQ 3.10 on."""
    rabbit = spec.messaging.rabbitmq
    lines = [
        f"listeners.tcp.default = {ports.RABBITMQ_AMQP}",
        f"prometheus.tcp.port = {ports.RABBITMQ_METRICS}",
        # Per-queue series (a handful of queues): the alerts watch the ingest queue and the DLQ.
        "prometheus.return_per_object_metrics = true",
        "cluster_formation.peer_discovery_backend = classic_config",
        *(
            f"cluster_formation.classic_config.nodes.{i} = {node}"
            for i, node in enumerate(node_names(spec, names), start=1)
        ),
        # The minority side of a partition stops instead of diverging.
        "cluster_partition_handling = pause_minority",
        "log.console = true",
        "log.console.level = info",
        "log.file = false",
        # guest may only connect from the node itself (the default, stated).
        "loopback_users.guest = true",
    ]
    limit = rabbit.resources.limits.get("memory")
    if limit:
        # RabbitMQ sees the node's memory, not the cgroup limit: without this it would let
        # itself be OOM-killed long before its own memory alarm.
        lines.append(f"total_memory_available_override_value = {int(parse_quantity(limit))}")
    lines.append(f"vm_memory_high_watermark.relative = {MEMORY_HIGH_WATERMARK}")
    if rabbit.persistence.enabled:
        # Publishers are blocked before the volume fills up (messages are on it).
        size = int(parse_quantity(rabbit.persistence.size))
        lines.append(f"disk_free_limit.absolute = {min(size // 10, 2 * 1024**3)}")
    return "\n".join(lines) + "\n"


def plugins_file() -> str:
    return f"[{','.join(PLUGINS)}].\n"


def _command(*argv: str) -> Obj:
    return {"exec": {"command": list(argv)}}


def _container(spec: IndexForgeSpec, names: Names) -> Obj:
    rabbit = spec.messaging.rabbitmq
    domain = names.fqdn(names.headless("rabbitmq"))
    return {
        "name": "rabbitmq",
        "image": rabbit.image,
        "imagePullPolicy": rabbit.image_pull_policy,
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "RABBITMQ_USE_LONGNAME", "value": "true"},
            {"name": "RABBITMQ_NODENAME", "value": f"rabbit@$(POD_NAME).{domain}"},
            {"name": "RABBITMQ_CONFIG_FILES", "value": CONF_DIR},
            {"name": "RABBITMQ_ENABLED_PLUGINS_FILE", "value": f"{PLUGINS_DIR}/{PLUGINS_KEY}"},
        ],
        "ports": [
            {"name": "amqp", "containerPort": ports.RABBITMQ_AMQP, "protocol": "TCP"},
            {"name": "epmd", "containerPort": ports.RABBITMQ_EPMD, "protocol": "TCP"},
            {"name": "dist", "containerPort": ports.RABBITMQ_DIST, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ports.RABBITMQ_METRICS, "protocol": "TCP"},
        ],
        "resources": resources(rabbit.resources),
        "securityContext": container_security(),
        # A first boot (or one waiting for its peers) can take minutes.
        "startupProbe": {
            "tcpSocket": {"port": "amqp"},
            "periodSeconds": 10,
            "failureThreshold": 60,
        },
        # The platform plan's check; each run starts an Erlang VM, hence the slow period.
        "readinessProbe": {
            **_command("rabbitmq-diagnostics", "-q", "check_port_connectivity"),
            "periodSeconds": 30,
            "timeoutSeconds": 20,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "tcpSocket": {"port": "amqp"},
            "periodSeconds": 30,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "lifecycle": {
            "preStop": _command(
                "sh",
                "-c",
                f"rabbitmq-upgrade await_online_quorum_plus_one -t {DRAIN_SECONDS} && "
                f"rabbitmq-upgrade drain -t {DRAIN_SECONDS}",
            )
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONF_DIR, "readOnly": True},
            {"name": "plugins", "mountPath": PLUGINS_DIR, "readOnly": True},
            {"name": DATA_VOLUME, "mountPath": DATA_DIR},
            tmp_mount(),
        ],
    }


def _cookie_init(spec: IndexForgeSpec) -> Obj:
    cookie = f"{DATA_DIR}/.erlang.cookie"
    return {
        "name": "erlang-cookie",
        "image": spec.messaging.rabbitmq.image,
        "imagePullPolicy": spec.messaging.rabbitmq.image_pull_policy,
        "command": [
            "sh",
            "-c",
            f"rm -f {cookie} && cp {COOKIE_DIR}/cookie {cookie} && chmod 0600 {cookie}",
        ],
        "resources": resources(spec.messaging.rabbitmq.resources),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "erlang-cookie", "mountPath": COOKIE_DIR, "readOnly": True},
            {"name": DATA_VOLUME, "mountPath": DATA_DIR},
        ],
    }


def _volumes(names: Names) -> list[Obj]:
    return [
        {
            "name": "config",
            "projected": {
                "sources": [
                    {
                        "configMap": {
                            "name": names.config("rabbitmq"),
                            "items": [{"key": CONF_KEY, "path": CONF_KEY}],
                        }
                    },
                    {
                        "secret": {
                            "name": names.internal_auth,
                            "items": [{"key": RABBITMQ_AUTH_CONF_KEY, "path": AUTH_CONF_FILE}],
                        }
                    },
                ],
                "defaultMode": 0o440,
            },
        },
        {
            "name": "plugins",
            "configMap": {
                "name": names.config("rabbitmq"),
                "items": [{"key": PLUGINS_KEY, "path": PLUGINS_KEY}],
            },
        },
        {
            "name": "erlang-cookie",
            "secret": {
                "secretName": names.internal_auth,
                "items": [{"key": RABBITMQ_COOKIE_KEY, "path": "cookie"}],
                "defaultMode": 0o440,  # group: fsGroup (the rabbitmq user) reads it
            },
        },
        tmp_volume(),
    ]


def build_rabbitmq(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """The built-in broker (messaging enabled, provider resolved to builtin by the caller)."""
    rabbit = spec.messaging.rabbitmq
    data = {CONF_KEY: rabbitmq_conf(spec, names), PLUGINS_KEY: plugins_file()}
    claim = data_volume_claim(names, "rabbitmq", rabbit.persistence)
    template = pod_template(
        names,
        "rabbitmq",
        spec=spec,
        pod_spec={
            "securityContext": pod_security(RABBITMQ_UID),
            "terminationGracePeriodSeconds": 2 * DRAIN_SECONDS + 60,
            "initContainers": [_cookie_init(spec)],
            "containers": [_container(spec, names)],
            "volumes": [*_volumes(names), *data_volumes(claim)],
        },
        # No checksum: nodes read rabbitmq.conf at boot only, and a config change must not
        # restart the whole cluster at once; the StatefulSet's rolling update covers image
        # and resource changes one node at a time.
    )
    amqp = service_port("amqp", ports.RABBITMQ_AMQP)
    out = [
        service_account(names, "rabbitmq"),
        config_map(names, "rabbitmq", names.config("rabbitmq"), data),
        service(names, "rabbitmq", [amqp]),
        headless_service(
            names,
            "rabbitmq",
            [
                amqp,
                service_port("epmd", ports.RABBITMQ_EPMD),
                service_port("dist", ports.RABBITMQ_DIST),
                service_port("metrics", ports.RABBITMQ_METRICS),
            ],
            publish_not_ready=True,
        ),
        statefulset(
            spec,
            names,
            "rabbitmq",
            replicas=rabbit.replicas,
            template=template,
            claim=claim,
            parallel=True,
        ),
    ]
    if wants_pdb(rabbit.disruption_budget, max_replicas=rabbit.replicas):
        out.append(pdb(names, "rabbitmq", rabbit.disruption_budget))
    return out
