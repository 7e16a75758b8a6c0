"""Weaviate StatefulSet with the text2vec-transformers module served by the ML service."""

from __future__ import annotations

from ..generated import WEAVIATE_API_KEY_KEY, WEAVIATE_API_KEYS_KEY
from ..naming import Names
from ..spec import IndexForgeSpec
from . import ports
from .backup_weaviate import backup_env, backup_modules, backup_mounts, backup_volumes
from .common import (
    Obj,
    container_security,
    env,
    headless_service,
    http_probe,
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
from .credentials import WEAVIATE_USER, secret_env
from .storage import DATA_VOLUME, data_volume_claim, data_volumes, statefulset

WEAVIATE_UID = 1000  # the image runs as root by default; any fixed non-root uid works
DATA_PATH = "/var/lib/weaviate"


def weaviate_env(spec: IndexForgeSpec, names: Names, *, overlap: bool = False) -> list[Obj]:
    """``overlap``: a key rotation has Weaviate accept the old and the new key (its list)."""
    replicas = spec.weaviate.replicas
    sts = names.component("weaviate")
    peers = ",".join(f"{sts}-{i}" for i in range(replicas))
    return [
        env("PERSISTENCE_DATA_PATH", DATA_PATH),
        env("DEFAULT_VECTORIZER_MODULE", spec.weaviate.vectorizer),
        env("ENABLE_MODULES", ",".join([spec.weaviate.vectorizer, *backup_modules(spec)])),
        # The ML service speaks the text2vec-transformers inference protocol.
        env("TRANSFORMERS_INFERENCE_API", names.url("ml", ports.ML)),
        env("QUERY_DEFAULTS_LIMIT", spec.weaviate.query_defaults_limit),
        # Every client (the API) presents the generated key; the NetworkPolicy stays as a
        # second layer. Probes and /metrics are open in Weaviate regardless of this.
        env("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", False),
        env("AUTHENTICATION_APIKEY_ENABLED", True),
        # Read at start only (weaviate_rotation.py): a rotation switches this reference to the
        # two-key list and back, and that template change is what rolls the pods.
        secret_env(
            names,
            "AUTHENTICATION_APIKEY_ALLOWED_KEYS",
            WEAVIATE_API_KEYS_KEY if overlap else WEAVIATE_API_KEY_KEY,
        ),
        env("AUTHENTICATION_APIKEY_USERS", WEAVIATE_USER),
        env("PROMETHEUS_MONITORING_ENABLED", True),
        env("PROMETHEUS_MONITORING_PORT", ports.WEAVIATE_METRICS),
        env("DISABLE_TELEMETRY", True),
        env("CLUSTER_GOSSIP_BIND_PORT", ports.WEAVIATE_GOSSIP),
        env("CLUSTER_DATA_BIND_PORT", ports.WEAVIATE_DATA),
        env("RAFT_PORT", ports.WEAVIATE_RAFT),
        env("RAFT_INTERNAL_RPC_PORT", ports.WEAVIATE_RAFT_RPC),
        env("RAFT_BOOTSTRAP_EXPECT", replicas),
        env("RAFT_JOIN", peers),
        env("CLUSTER_JOIN", names.fqdn(names.headless("weaviate"))),
        {"name": "CLUSTER_HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        # Keep the Go heap under the container limit instead of being OOM-killed.
        {
            "name": "GOMEMLIMIT",
            "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1"}},
        },
        *backup_env(spec),
    ]


def _container(spec: IndexForgeSpec, names: Names, *, overlap: bool) -> Obj:
    w = spec.weaviate
    named = (
        ("http", ports.WEAVIATE_HTTP),
        ("grpc", ports.WEAVIATE_GRPC),
        ("metrics", ports.WEAVIATE_METRICS),
        ("gossip", ports.WEAVIATE_GOSSIP),
        ("data", ports.WEAVIATE_DATA),
        ("raft", ports.WEAVIATE_RAFT),
        ("raft-rpc", ports.WEAVIATE_RAFT_RPC),
    )
    return {
        "name": "weaviate",
        "image": w.image,
        "imagePullPolicy": w.image_pull_policy,
        "args": ["--host", "0.0.0.0", "--port", str(ports.WEAVIATE_HTTP), "--scheme", "http"],
        "ports": [
            *({"name": n, "containerPort": p, "protocol": "TCP"} for n, p in named),
            # memberlist probes peers over UDP on the gossip port, beside its TCP syncs.
            {"name": "gossip-udp", "containerPort": ports.WEAVIATE_GOSSIP, "protocol": "UDP"},
        ],
        "env": weaviate_env(spec, names, overlap=overlap),
        "resources": resources(w.resources),
        "securityContext": container_security(),
        "livenessProbe": http_probe("/v1/.well-known/live", "http", failures=6),
        "readinessProbe": http_probe("/v1/.well-known/ready", "http", period=5),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": DATA_PATH},
            tmp_mount(),
            *backup_mounts(spec),
        ],
    }


def build_weaviate(spec: IndexForgeSpec, names: Names, *, key_overlap: bool = False) -> list[Obj]:
    """``key_overlap``: Weaviate accepts the key list of a running rotation (a rolling
    restart, one pod at a time, is how it gets there: weaviate_rotation.py)."""
    w = spec.weaviate
    claim = data_volume_claim(names, "weaviate", w.persistence)
    template = pod_template(
        names,
        "weaviate",
        spec=spec,
        pod_spec={
            "securityContext": pod_security(WEAVIATE_UID),
            "terminationGracePeriodSeconds": 60,  # flush memtables before exit
            "containers": [_container(spec, names, overlap=key_overlap)],
            "volumes": [tmp_volume(), *data_volumes(claim), *backup_volumes(spec)],
        },
    )
    client_ports = [
        service_port("http", ports.WEAVIATE_HTTP),
        service_port("grpc", ports.WEAVIATE_GRPC),
    ]
    peer_ports = [
        *client_ports,
        service_port("metrics", ports.WEAVIATE_METRICS),
        service_port("gossip", ports.WEAVIATE_GOSSIP),
        service_port("data", ports.WEAVIATE_DATA),
        service_port("raft", ports.WEAVIATE_RAFT),
        service_port("raft-rpc", ports.WEAVIATE_RAFT_RPC),
    ]
    out = [
        service_account(names, "weaviate"),
        service(names, "weaviate", client_ports),
        # Peers must resolve each other before they are ready (raft bootstrap).
        headless_service(names, "weaviate", peer_ports, publish_not_ready=True),
        # Parallel start: raft needs every peer up to elect a leader.
        statefulset(
            spec,
            names,
            "weaviate",
            replicas=w.replicas,
            template=template,
            claim=claim,
            parallel=True,
        ),
    ]
    if wants_pdb(w.pod_disruption_budget, max_replicas=w.replicas):
        out.append(pdb(names, "weaviate", w.pod_disruption_budget))
    return out
