"""The state Redis replicated: its pods' per-pod configuration and the Sentinel StatefulSet.

With `redis.state.replication.enabled` the state Redis StatefulSet runs `replicas` pods and
a Sentinel StatefulSet watches them. Which pod is the primary changes with every failover,
so no pod's role is in the objects: an init container (`INIT_SCRIPT`, the same for Redis
and Sentinel pods) asks the sentinels for the current primary and writes the pod's runtime
config into an emptyDir (Redis and Sentinel rewrite their config files after a failover).

Bootstrap edge: when no sentinel answers (the first start of the whole group, or every
sentinel gone at once) ordinal 0 is taken as the primary. After a failover, a cold start of
every Redis *and* every Sentinel pod therefore makes ordinal 0 the primary again, and
writes that only the promoted pod held are lost (its replicas resync from ordinal 0). A
Redis pod the sentinels still name as the primary (restarted faster than the failover) waits
for them to promote another pod (bounded by PRIMARY_WAIT_SECONDS) instead of coming back as
an empty primary the replicas would copy.

Every pod announces its stable DNS name (`<pod>.<headless>`: Redis `replica-announce-ip`,
Sentinel `announce-ip`, `resolve-hostnames`/`announce-hostnames`, Redis >= 6.2), so a
restarted pod with a new IP is the same instance to the others; a Sentinel's id is derived
from its pod name for the same reason (a new id per restart would grow the sentinel count
that a failover needs a majority of).
"""

from __future__ import annotations

import hashlib

import jinja2

from ..naming import Component, Names
from ..spec import IndexForgeSpec, RedisStateInstance
from ..spec_redis_replication import MASTER_NAME, RedisReplication
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
    service_account,
    service_port,
    tmp_mount,
    tmp_volume,
    wants_pdb,
)
from .credentials import redis_password_env
from .storage import statefulset

REDIS_UID = 999  # the "redis" user of the official image
INIT_KEY = "init.sh"
RUNTIME_DIR = "/conf"  # Redis pods' generated config (emptyDir)
SENTINEL_DIR = "/data"  # Sentinel's generated config and working directory (emptyDir)
DOWN_AFTER_MS = 5000  # a primary silent for 5 s is down: a busy moment is no failover
FAILOVER_TIMEOUT_MS = 10000
PRIMARY_WAIT_SECONDS = 30

# POSIX sh (busybox in the alpine image): $1 is "redis" or "sentinel"; the rest comes from
# the environment the init container gets (see init_env).
INIT_SCRIPT = """\
#!/bin/sh
# Writes this pod's runtime config: the primary is whoever the sentinels name now; only when
# no sentinel answers is it ordinal 0 ($PRIMARY). Rendered by the IndexForge operator.
set -eu
role="$1"

ask() {  # prints "host port" of the primary from the first sentinel that answers
  for s in $(echo "$SENTINELS" | tr ',' ' '); do
    out="$(timeout 3 redis-cli --no-auth-warning -h "${s%:*}" -p "${s##*:}" \\
      SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | tr '\\n' ' ' || true)"
    set -- $out
    if [ "$#" -eq 2 ]; then
      case "$2" in ''|*[!0-9]*) ;; *) echo "$1 $2"; return 0 ;; esac
    fi
  done
  return 1
}

if answer="$(ask)"; then
  set -- $answer
  host="$1"; port="$2"
  # Named the primary but not running: wait for the sentinels to promote a replica rather
  # than come back as a primary the replicas would copy (an empty one without persistence).
  i=0
  while [ "$role" = redis ] && [ "$host" = "$ANNOUNCE_HOST" ] && [ "$port" = "$REDIS_PORT" ] \\
      && [ "$i" -lt "$PRIMARY_WAIT_SECONDS" ]; do
    sleep 1; i=$((i + 1))
    answer="$(ask)" || break
    set -- $answer
    host="$1"; port="$2"
  done
  echo "sentinels name $host:$port as the primary"
else
  host="${PRIMARY%:*}"; port="${PRIMARY##*:}"
  echo "no sentinel answered: $host:$port (ordinal 0) is the primary"
fi

if [ "$role" = sentinel ]; then
  sed -e "s/@PRIMARY_HOST@/$host/" -e "s/@PRIMARY_PORT@/$port/" "$CONF_IN" > "$CONF_OUT"
  {
    echo "sentinel myid $(printf '%s' "$POD_NAME" | sha1sum | cut -c1-40)"
    echo "sentinel announce-ip $ANNOUNCE_HOST"
    echo "requirepass $REDISCLI_AUTH"
    echo "sentinel auth-pass $MASTER_NAME $REDISCLI_AUTH"
    echo "sentinel sentinel-pass $REDISCLI_AUTH"
  } >> "$CONF_OUT"
else
  {
    echo "include $CONF_IN"
    echo "replica-announce-ip $ANNOUNCE_HOST"
    if [ "$host" != "$ANNOUNCE_HOST" ] || [ "$port" != "$REDIS_PORT" ]; then
      echo "replicaof $host $port"
    fi
  } > "$CONF_OUT"
fi
chmod 600 "$CONF_OUT"
"""

_SENTINEL_CONF = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
).from_string(
    """\
# Rendered by the IndexForge operator for {{ instance }}/sentinel; do not edit.
# init.sh copies it to {{ dir }} (Sentinel rewrites its config), naming the current primary
# and adding this pod's id, announced name and the password.
port {{ port }}
bind 0.0.0.0
protected-mode no
daemonize no
dir {{ dir }}
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel monitor {{ master }} @PRIMARY_HOST@ @PRIMARY_PORT@ {{ quorum }}
sentinel down-after-milliseconds {{ master }} {{ down_after }}
sentinel failover-timeout {{ master }} {{ failover_timeout }}
sentinel parallel-syncs {{ master }} 1
"""
)


def sentinel_conf(replication: RedisReplication, *, instance_name: str) -> str:
    return _SENTINEL_CONF.render(
        instance=instance_name,
        port=ports.SENTINEL,
        dir=SENTINEL_DIR,
        master=MASTER_NAME,
        quorum=replication.effective_quorum,
        down_after=DOWN_AFTER_MS,
        failover_timeout=FAILOVER_TIMEOUT_MS,
    )


def checksum_data(conf: dict[str, str]) -> dict[str, str]:
    """What the pods' config checksum covers: the script by its digest, since the chart's
    toJson escapes the script's `<`, `>` and `&` and Python's json does not."""
    out = dict(conf)
    out[INIT_KEY] = hashlib.sha256(conf[INIT_KEY].encode()).hexdigest()
    return out


def replication_enabled(spec: IndexForgeSpec) -> bool:
    return spec.redis.state.replication.enabled


def redis_state_replicas(spec: IndexForgeSpec) -> int:
    replication = spec.redis.state.replication
    return replication.replicas if replication.enabled else 1


def _pod_host(names: Names, component: Component, pod: str) -> str:
    return f"{pod}.{names.fqdn(names.headless(component))}"


def sentinel_addresses(names: Names, replication: RedisReplication) -> str:
    """host:port of every Sentinel pod (headless DNS), as INDEXFORGE_STATE_REDIS_SENTINELS."""
    sts = names.component("sentinel")
    return ",".join(
        f"{_pod_host(names, 'sentinel', f'{sts}-{i}')}:{ports.SENTINEL}"
        for i in range(replication.sentinels)
    )


def state_client_env(names: Names, replication: RedisReplication) -> list[Obj]:
    """What the API and workers get instead of INDEXFORGE_STATE_REDIS_URL."""
    return [
        env("INDEXFORGE_STATE_REDIS_SENTINELS", sentinel_addresses(names, replication)),
        env("INDEXFORGE_STATE_REDIS_MASTER", MASTER_NAME),
        env("INDEXFORGE_STATE_REDIS_WAIT_REPLICAS", replication.wait_replicas),
    ]


def _init_env(names: Names, replication: RedisReplication, *, component: Component) -> list[Obj]:
    headless = names.fqdn(names.headless(component))
    primary = _pod_host(names, "redis-state", f"{names.component('redis-state')}-0")
    return [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        env("ANNOUNCE_HOST", f"$(POD_NAME).{headless}"),
        env("SENTINELS", sentinel_addresses(names, replication)),
        env("MASTER_NAME", MASTER_NAME),
        env("PRIMARY", f"{primary}:{ports.REDIS}"),
        env("REDIS_PORT", ports.REDIS),
        env("PRIMARY_WAIT_SECONDS", PRIMARY_WAIT_SECONDS),
        redis_password_env(names, "REDISCLI_AUTH", "redis-state"),
    ]


def init_container(
    names: Names,
    instance: RedisStateInstance,
    *,
    role: str,
    config_dir: str,
    conf_in: str,
    conf_out: str,
    mounts: list[Obj],
) -> Obj:
    component: Component = "sentinel" if role == "sentinel" else "redis-state"
    return {
        "name": "init",
        "image": instance.image,
        "imagePullPolicy": instance.image_pull_policy,
        "command": ["sh", f"{config_dir}/{INIT_KEY}", role],
        "env": [
            *_init_env(names, instance.replication, component=component),
            env("CONF_IN", conf_in),
            env("CONF_OUT", conf_out),
        ],
        "resources": resources(instance.replication.sentinel_resources),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }


def redis_init_container(names: Names, instance: RedisStateInstance) -> Obj:
    """The state Redis pods' init step: /conf/redis.conf includes the shared redis.conf."""
    return init_container(
        names,
        instance,
        role="redis",
        config_dir="/etc/redis",
        conf_in="/etc/redis/redis.conf",
        conf_out=f"{RUNTIME_DIR}/redis.conf",
        mounts=[
            {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
            {"name": "runtime", "mountPath": RUNTIME_DIR},
        ],
    )


def _sentinel_pod(names: Names, spec: IndexForgeSpec, conf: dict[str, str]) -> Obj:
    instance = spec.redis.state
    replication = instance.replication
    mounts: list[Obj] = [
        {"name": "config", "mountPath": "/etc/sentinel", "readOnly": True},
        {"name": "data", "mountPath": SENTINEL_DIR},
    ]
    sentinel: Obj = {
        "name": "sentinel",
        "image": instance.image,
        "imagePullPolicy": instance.image_pull_policy,
        "command": ["redis-server", f"{SENTINEL_DIR}/sentinel.conf", "--sentinel"],
        "ports": [{"name": "sentinel", "containerPort": ports.SENTINEL, "protocol": "TCP"}],
        # redis-cli (the readiness probe) reads the password from the environment.
        "env": [redis_password_env(names, "REDISCLI_AUTH", "redis-state")],
        "resources": resources(replication.sentinel_resources),
        "securityContext": container_security(),
        "livenessProbe": {"tcpSocket": {"port": "sentinel"}, "periodSeconds": 10},
        "readinessProbe": {
            "exec": {"command": ["redis-cli", "-p", str(ports.SENTINEL), "ping"]},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
        },
        "volumeMounts": [*mounts, tmp_mount()],
    }
    return pod_template(
        names,
        "sentinel",
        spec=spec,
        pod_spec={
            "securityContext": pod_security(REDIS_UID),
            "initContainers": [
                init_container(
                    names,
                    instance,
                    role="sentinel",
                    config_dir="/etc/sentinel",
                    conf_in="/etc/sentinel/sentinel.conf",
                    conf_out=f"{SENTINEL_DIR}/sentinel.conf",
                    mounts=mounts,
                )
            ],
            "containers": [sentinel],
            "volumes": [
                {"name": "config", "configMap": {"name": names.config("sentinel")}},
                empty_dir("data"),
                tmp_volume(),
            ],
        },
        config_checksum=checksum(checksum_data(conf)),
    )


def build_sentinel(spec: IndexForgeSpec, names: Names, *, stopped: bool = False) -> list[Obj]:
    """The Sentinel StatefulSet and what it needs; nothing unless replication is on.
    ``stopped``: 0 replicas while the state Redis's data is restored (build_redis)."""
    replication = spec.redis.state.replication
    if not replication.enabled:
        return []
    conf = {
        "sentinel.conf": sentinel_conf(replication, instance_name=names.instance),
        INIT_KEY: INIT_SCRIPT,
    }
    svc_ports = [service_port("sentinel", ports.SENTINEL)]
    out = [
        service_account(names, "sentinel"),
        config_map(names, "sentinel", names.config("sentinel"), conf),
        # Sentinels find each other through the primary, but the init step and the clients
        # address them by pod name, also before they are ready.
        headless_service(names, "sentinel", svc_ports, scrape=False, publish_not_ready=True),
        statefulset(
            spec,
            names,
            "sentinel",
            replicas=0 if stopped else replication.sentinels,
            template=_sentinel_pod(names, spec, conf),
            claim=None,
            parallel=True,
        ),
    ]
    if wants_pdb(replication.pod_disruption_budget, max_replicas=replication.sentinels):
        out.append(pdb(names, "sentinel", replication.pod_disruption_budget))
    return out
