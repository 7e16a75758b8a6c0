"""Redis servers (app, ml, state): ConfigMap with redis.conf, StatefulSet, Services.

redis.conf is a text format, so it is rendered from a jinja2 template; everything else is
built as dicts. Each StatefulSet has one replica (the state Redis: more with replication,
see `redis_replication.py`) and, optionally, the redis_exporter sidecar. app and ml are
caches; state (noeviction, AOF) holds the API's job records and queued uploads
(`services/api/state.py` says why it is an instance of its own).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import jinja2

from ..generated import redis_passwords_key
from ..naming import Names
from ..spec import IndexForgeSpec, RedisInstance, RedisStateInstance
from . import ports
from .common import (
    Obj,
    checksum,
    config_map,
    container_security,
    empty_dir,
    env,
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
from .credentials import redis_auth_conf_key, redis_password_env
from .redis_acl import (
    ACL_SYNC_SCRIPT,
    EXPORTER_ADDR_ENV,
    EXPORTER_PASSWORD_FILE_ENV,
    EXPORTER_RELOAD_URL_ENV,
    PASSWORDS_FILE_ENV,
)
from .redis_replication import (
    INIT_KEY,
    INIT_SCRIPT,
    RUNTIME_DIR,
    build_sentinel,
    checksum_data,
    redis_init_container,
)
from .storage import data_volume_claim, data_volumes, statefulset

REDIS_UID = 999  # the "redis" user of the official image
AUTH_DIR = "/etc/redis-auth"
AUTH_FILE = f"{AUTH_DIR}/auth.conf"
PASSWORDS_FILE = f"{AUTH_DIR}/passwords"
# The exporter's password file, written by acl-sync (redis_acl.py): a memory volume the two
# share, so the password never reaches a disk.
EXPORTER_AUTH_VOLUME = "exporter-auth"
EXPORTER_AUTH_DIR = "/etc/redis-exporter-auth"
EXPORTER_PASSWORD_FILE = f"{EXPORTER_AUTH_DIR}/passwords.json"
EXPORTER_REDIS_ADDR = f"redis://localhost:{ports.REDIS}"
# The sync loop sleeps most of the time: a shell and a redis-cli every few seconds.
ACL_SYNC_RESOURCES: Obj = {
    "requests": {"cpu": "5m", "memory": "8Mi"},
    "limits": {"memory": "32Mi"},
}
# The oldest accepted password: accepted from before the sidecar applies a new list until
# after it applied the next (an env value would be the one from the pod's start, refused
# once a rotation retired it).
PROBE_SCRIPT = f'REDISCLI_AUTH="$(tail -n 1 {PASSWORDS_FILE})" exec redis-cli -p {ports.REDIS} ping'
RedisComponent = Literal["redis-app", "redis-ml", "redis-state"]
_CONF = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
).from_string(
    """\
# Rendered by the IndexForge operator for {{ instance }}/{{ role }}; do not edit.
bind 0.0.0.0
port {{ port }}
# Clients authenticate (the ACL default user below) and the NetworkPolicy limits who connects.
protected-mode no
include {{ auth_file }}
dir /data
maxmemory {{ maxmemory }}
maxmemory-policy {{ policy }}
{% if appendonly -%}
appendonly yes
appendfsync everysec
# AOF is the persistence; RDB snapshots would double the disk writes.
save ""
{% else -%}
appendonly no
save ""
{% endif -%}
tcp-keepalive 60
"""
)


def redis_conf(instance: RedisInstance, *, instance_name: str, role: str) -> str:
    return _CONF.render(
        instance=instance_name,
        role=role,
        port=ports.REDIS,
        auth_file=AUTH_FILE,
        maxmemory=instance.maxmemory,
        policy=instance.maxmemory_policy,
        appendonly=instance.appendonly,
    )


def _auth_volume(names: Names, component: RedisComponent) -> Obj:
    """This instance's ACL file and accepted-password list from the internal-auth Secret. A
    directory volume (not subPath): the kubelet updates its files, the sidecar applies them."""
    return {
        "name": "auth",
        "secret": {
            "secretName": names.internal_auth,
            "items": [
                {"key": redis_auth_conf_key(component), "path": "auth.conf"},
                {"key": redis_passwords_key(component), "path": "passwords"},
            ],
            "defaultMode": 0o440,
        },
    }


def _acl_sync(instance: RedisInstance) -> Obj:
    """Keeps the default user's passwords equal to the mounted list, live (redis_acl.py), and
    the exporter's password current."""
    container: Obj = {
        "name": "acl-sync",
        "image": instance.image,
        "imagePullPolicy": instance.image_pull_policy,
        "command": ["sh", "-c", ACL_SYNC_SCRIPT],
        "env": [env(PASSWORDS_FILE_ENV, PASSWORDS_FILE), env("REDIS_PORT", ports.REDIS)],
        "resources": ACL_SYNC_RESOURCES,
        "securityContext": container_security(),
        "volumeMounts": [{"name": "auth", "mountPath": AUTH_DIR, "readOnly": True}, tmp_mount()],
    }
    if instance.exporter.enabled:
        container["env"] += [
            env(EXPORTER_PASSWORD_FILE_ENV, EXPORTER_PASSWORD_FILE),
            env(EXPORTER_ADDR_ENV, EXPORTER_REDIS_ADDR),
            env(EXPORTER_RELOAD_URL_ENV, f"http://127.0.0.1:{ports.REDIS_EXPORTER}/-/reload"),
        ]
        container["volumeMounts"].append(
            {"name": EXPORTER_AUTH_VOLUME, "mountPath": EXPORTER_AUTH_DIR}
        )
    return container


def _replicated(instance: RedisInstance) -> bool:
    return isinstance(instance, RedisStateInstance) and instance.replication.enabled


def _containers(names: Names, instance: RedisInstance, component: RedisComponent) -> list[Obj]:
    # Replicated: the init step's per-pod config (it includes the shared one).
    conf = f"{RUNTIME_DIR}/redis.conf" if _replicated(instance) else "/etc/redis/redis.conf"
    redis: Obj = {
        "name": "redis",
        "image": instance.image,
        "imagePullPolicy": instance.image_pull_policy,
        "command": ["redis-server", conf],
        "ports": [{"name": "redis", "containerPort": ports.REDIS, "protocol": "TCP"}],
        "resources": resources(instance.resources),
        "securityContext": container_security(),
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", PROBE_SCRIPT]},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
            tmp_mount(),
        ],
    }
    if _replicated(instance):
        redis["volumeMounts"].append({"name": "runtime", "mountPath": RUNTIME_DIR})
    out = [redis, _acl_sync(instance)]
    if instance.exporter.enabled:
        # The password at the pod's start (env), then the one acl-sync writes to the password
        # file and has it reload after a rotation (the file overrides the env per scrape).
        exporter = instance.exporter
        out.append(
            {
                "name": "exporter",
                "image": exporter.image,
                "imagePullPolicy": instance.image_pull_policy,
                "env": [
                    env("REDIS_ADDR", EXPORTER_REDIS_ADDR),
                    redis_password_env(names, "REDIS_PASSWORD", component),
                    env("REDIS_PASSWORD_FILE", EXPORTER_PASSWORD_FILE),
                ],
                "ports": [
                    {"name": "metrics", "containerPort": ports.REDIS_EXPORTER, "protocol": "TCP"}
                ],
                "resources": resources(exporter.resources),
                "securityContext": container_security(),
                "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 10},
                "volumeMounts": [
                    {"name": EXPORTER_AUTH_VOLUME, "mountPath": EXPORTER_AUTH_DIR, "readOnly": True}
                ],
            }
        )
    return out


def _build_one(
    spec: IndexForgeSpec,
    names: Names,
    instance: RedisInstance,
    component: RedisComponent,
    *,
    stopped: bool = False,
) -> list[Obj]:
    conf = {"redis.conf": redis_conf(instance, instance_name=names.instance, role=component)}
    claim = data_volume_claim(names, component, instance.persistence)
    pod_spec: Obj = {
        "securityContext": pod_security(REDIS_UID),
        "containers": _containers(names, instance, component),
        "volumes": [
            {"name": "config", "configMap": {"name": names.config(component)}},
            _auth_volume(names, component),
            tmp_volume(),
            *data_volumes(claim),
        ],
    }
    if instance.exporter.enabled:
        pod_spec["volumes"].append(
            {"name": EXPORTER_AUTH_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
        )
    replicas = 1
    checked = conf
    if isinstance(instance, RedisStateInstance) and instance.replication.enabled:
        conf[INIT_KEY] = INIT_SCRIPT
        checked = checksum_data(conf)
        pod_spec["initContainers"] = [redis_init_container(names, instance)]
        pod_spec["volumes"].append(empty_dir("runtime"))
        replicas = instance.replication.replicas
    template = pod_template(
        names, component, spec=spec, pod_spec=pod_spec, config_checksum=checksum(checked)
    )
    svc_ports = [service_port("redis", ports.REDIS)]
    if instance.exporter.enabled:
        svc_ports.append(service_port("metrics", ports.REDIS_EXPORTER))
    out = [
        service_account(names, component),
        config_map(names, component, names.config(component), conf),
        service(names, component, svc_ports),
        # Replicated: replicas and sentinels resolve a pod by name before it is ready.
        headless_service(
            names,
            component,
            svc_ports,
            scrape=instance.exporter.enabled,
            publish_not_ready=replicas > 1,
        ),
        # Parallel: each pod learns its role from the sentinels, none waits for ordinal 0.
        statefulset(
            spec,
            names,
            component,
            # Stopped for a restore of its data (on_demand.py): no pod may hold the volume.
            replicas=0 if stopped else replicas,
            template=template,
            claim=claim,
            parallel=replicas > 1,
        ),
    ]
    if isinstance(instance, RedisStateInstance) and wants_pdb(
        instance.replication.pod_disruption_budget, max_replicas=replicas
    ):
        out.append(pdb(names, component, instance.replication.pod_disruption_budget))
    return out


def build_redis(
    spec: IndexForgeSpec, names: Names, *, restoring: Collection[str] = ()
) -> list[Obj]:
    """The three Redis servers (and the state Redis's sentinels when it is replicated).

    ``restoring``: Redis components whose data a restore is replacing; their StatefulSets
    have 0 replicas meanwhile (the reconciler passes it in from the CR's status). With
    replication the sentinels stop too: restarted together, their memory of a failover is
    gone (emptyDir) and every pod takes ordinal 0, the restored one, as the primary.
    """
    state_stopped = "redis-state" in restoring
    return [
        *_build_one(spec, names, spec.redis.app, "redis-app", stopped="redis-app" in restoring),
        *_build_one(spec, names, spec.redis.ml, "redis-ml"),
        *_build_one(spec, names, spec.redis.state, "redis-state", stopped=state_stopped),
        *build_sentinel(spec, names, stopped=state_stopped),
    ]
