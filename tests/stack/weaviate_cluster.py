"""A multi-node Weaviate cluster of real `weaviate-server` processes on loopback.

Each node runs with the environment the operator renders for a Weaviate pod
(`builders/weaviate.weaviate_env`): hostnames are the StatefulSet's pod names, RAFT_JOIN
lists them, RAFT_BOOTSTRAP_EXPECT is the replica count. Only what a shared loopback address
forces is changed:

- every node needs its own ports (gossip, data, Raft, gRPC, HTTP, metrics), where pods share
  the fixed ones. Weaviate's local-cluster mode (CLUSTER_IN_LOCALHOST) then finds a peer's
  Raft port from RAFT_JOIN entries `name:raft-port` and its RPC port as Raft port + 1, so each
  node's RAFT_INTERNAL_RPC_PORT is its RAFT_PORT + 1;
- CLUSTER_JOIN lists every node's gossip address, as the headless Service's name resolves to
  every pod (itself included: a node starting first still joins, alone);
- the pod's fieldRef/resourceFieldRef/secret values (hostname, GOMEMLIMIT, API key) become
  plain values.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexforge_operator.builders.weaviate import weaviate_env as rendered_env
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.procs import free_port
from tests.stack.weaviate import (
    READY_TIMEOUT_S,
    WeaviateError,
    WeaviatePorts,
    WeaviateProcess,
    auth_env,
)

NAMES = Names("ha", "indexforge")
API_KEY = "cluster-test-key"
# Rendered by the operator but meaningless (or conflicting) for three processes on one host.
LOOPBACK_OVERRIDES = {
    "PERSISTENCE_DATA_PATH",
    "TRANSFORMERS_INFERENCE_API",
    "CLUSTER_GOSSIP_BIND_PORT",
    "CLUSTER_DATA_BIND_PORT",
    "RAFT_PORT",
    "RAFT_INTERNAL_RPC_PORT",
    "RAFT_JOIN",
    "CLUSTER_JOIN",
    "CLUSTER_HOSTNAME",
    "PROMETHEUS_MONITORING_PORT",
}


def _free_pair() -> int:
    """A free port whose successor is free too (a node's Raft and Raft RPC ports)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise WeaviateError("no two consecutive free ports on 127.0.0.1")


def allocate_ports() -> WeaviatePorts:
    raft = _free_pair()
    return WeaviatePorts(free_port(), free_port(), free_port(), free_port(), raft, raft + 1)


def operator_env(spec: IndexForgeSpec) -> dict[str, str]:
    """The Weaviate container's env as the operator renders it; `valueFrom` entries are
    kept as None (the caller fills them in)."""
    out: dict[str, Any] = {}
    for entry in rendered_env(spec, NAMES):
        out[entry["name"]] = entry.get("value")
    return out


class ClusterNode(WeaviateProcess):
    """One node: WeaviateProcess's start/kill/restart with the cluster's environment."""

    def __init__(self, cluster: WeaviateCluster, index: int, workdir: Path) -> None:
        super().__init__(workdir, cluster.inference_url, ports=allocate_ports())
        self.cluster = cluster
        self.name = f"{NAMES.component('weaviate')}-{index}"  # the StatefulSet pod's name
        self.metrics_port = free_port()

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in self.cluster.rendered.items() if v is not None}
        nodes = self.cluster.nodes
        return {
            **base,
            # As rendered, with the Secret's value inline (a key rotation sets api_key).
            **auth_env(self.api_key or API_KEY),
            # The image's PATH; GOMAXPROCS keeps three servers from crowding two shared cores.
            "PATH": "/usr/bin:/bin",
            "GOMAXPROCS": "1",
            "GO_PROFILING_DISABLE": "true",
            "LOG_LEVEL": "warning",
            "PERSISTENCE_DATA_PATH": str(self.data_dir),
            "TRANSFORMERS_INFERENCE_API": self.inference_url,
            "CLUSTER_HOSTNAME": self.name,
            "CLUSTER_IN_LOCALHOST": "true",
            "CLUSTER_BIND_ADDR": "127.0.0.1",
            "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
            "CLUSTER_GOSSIP_BIND_PORT": str(self.ports.gossip),
            "CLUSTER_DATA_BIND_PORT": str(self.ports.data),
            "CLUSTER_JOIN": ",".join(f"127.0.0.1:{n.ports.gossip}" for n in nodes),
            "GRPC_PORT": str(self.ports.grpc),
            "RAFT_PORT": str(self.ports.raft),
            "RAFT_INTERNAL_RPC_PORT": str(self.ports.raft_rpc),
            "RAFT_JOIN": ",".join(f"{n.name}:{n.ports.raft}" for n in nodes),
            "PROMETHEUS_MONITORING_PORT": str(self.metrics_port),
        }

    def launch(self) -> None:
        """Start without waiting: Raft elects only once a majority of nodes runs."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip


@dataclass(frozen=True)
class NodeStatus:
    name: str
    status: str


class WeaviateCluster:
    def __init__(self, workdir: Path, inference_url: str, spec: IndexForgeSpec) -> None:
        self.inference_url = inference_url
        self.rendered = operator_env(spec)
        missing = LOOPBACK_OVERRIDES - self.rendered.keys()
        if missing:  # the operator no longer renders what the cluster relies on
            raise WeaviateError(f"the rendered Weaviate env lacks {sorted(missing)}")
        self.size = spec.weaviate.replicas
        self.nodes: list[ClusterNode] = [
            ClusterNode(self, i, workdir / f"node{i}") for i in range(self.size)
        ]

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready(timeout)
        self.wait_healthy(self.size, timeout=timeout)

    def restart(self, node: ClusterNode, timeout: float = READY_TIMEOUT_S) -> None:
        node.launch()
        node.wait_ready(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def nodes_status(self, via: ClusterNode) -> list[NodeStatus]:
        """GET /v1/nodes on one node: every member it sees (500 while one is unreachable)."""
        key = (via.api_key or API_KEY).split(",")[0]  # the newest key that node accepts
        request = urllib.request.Request(
            f"{via.url}/v1/nodes", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = json.load(resp)
        return [NodeStatus(n["name"], n["status"]) for n in body.get("nodes") or []]

    def wait_healthy(self, count: int, *, timeout: float = 60.0) -> list[NodeStatus]:
        """Until a live node reports `count` HEALTHY members (bounded)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for via in self.nodes:
                if via.proc is None or via.proc.poll() is not None:
                    continue
                try:
                    last = self.nodes_status(via)
                except OSError as exc:
                    last = exc
                    continue
                if sum(n.status == "HEALTHY" for n in last) == count:
                    return list(last)
            time.sleep(0.5)
        raise WeaviateError(f"not {count} healthy Weaviate nodes after {timeout:.0f}s: {last}")

    def log_tails(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log_tail()}" for n in self.nodes)
