"""The Weaviate key rotation's rolling restarts on three real nodes: no request fails.

What the operator's phases do to a `weaviate.replicas: 3` cluster (weaviate_rotation.py),
played on three `weaviate-server` processes (tests/stack/weaviate_cluster.py): restart the
nodes one at a time, highest ordinal first, each only once the previous one is back (the
StatefulSet controller's rolling update), with the list ``new,old``; move the clients' key
file to ``new``; restart them again with ``new`` alone. Meanwhile the real API (key from a
file, factor 3, QUORUM) answers searches in a loop; its Weaviate endpoints sit behind a small
TCP balancer that, like a Service, sends new connections to ready nodes only and drops a
node before it is stopped (the endpoint removal a pod deletion starts).

Counted: every search of the loop, none may fail; the old key gets 401 at the end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from indexforge_operator.generated import weaviate_keys_value
from indexforge_operator.spec import IndexForgeSpec
from indexforge_services.api.app import create_app
from tests.stack.weaviate import WeaviateError, weaviate_binary
from tests.stack.weaviate_cluster import API_KEY, ClusterNode, WeaviateCluster

from .conftest import ServerThread, api_settings
from .test_weaviate_cluster import upload

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

OLD = API_KEY  # what the cluster starts with
NEW = f"new-key-{uuid.uuid4().hex}"


class Balancer:
    """A TCP front for one port of every node (HTTP or gRPC): new connections go to a node in
    ``endpoints()``, round robin; connections already made stay where they are."""

    def __init__(
        self, port_of: Callable[[ClusterNode], int], endpoints: Callable[[], list[ClusterNode]]
    ):
        self.port_of, self.endpoints = port_of, endpoints
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.turn = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        nodes = self.endpoints()
        if not nodes:
            conn.close()
            return
        self.turn += 1
        node = nodes[self.turn % len(nodes)]
        try:
            upstream = socket.create_connection(("127.0.0.1", self.port_of(node)), timeout=5)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        for a, b in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _replace(path: Path, text: str) -> None:
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fresh.write_text(text)
    os.replace(fresh, path)


def _status(node: ClusterNode, key: str) -> int:
    request = urllib.request.Request(
        f"{node.url}/v1/schema", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def cluster(ml_server: ServerThread, tmp_path: Path) -> Iterator[WeaviateCluster]:
    try:
        weaviate_binary()
    except WeaviateError as exc:
        pytest.fail(str(exc))  # a missing build must not make this test vanish
    nodes = WeaviateCluster(tmp_path, ml_server.url, IndexForgeSpec.model_validate(
        {"weaviate": {"replicas": 3}}))  # fmt: skip
    try:
        nodes.start()
    except WeaviateError as exc:
        nodes.stop()
        pytest.fail(f"{exc}\n{nodes.log_tails()}")
    yield nodes
    nodes.stop()


class Load(threading.Thread):
    """Searches in a loop until stopped; counts answers and failures."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set() and i < 100_000:  # bounded
            i += 1
            try:
                r = self.client.get("/api/v1/search", params={"q": f"item {i % 50}", "limit": 5})
                if r.status_code == 200 and r.json()["results"]:
                    self.ok += 1
                else:
                    self.failures.append(f"{r.status_code} {r.text[:120]}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc)[:160])
            time.sleep(0.05)


def test_rolling_restarts_rotate_the_key_with_no_failed_search(
    cluster: WeaviateCluster, ml_server: ServerThread, tmp_path: Path
) -> None:
    out: set[str] = set()  # nodes taken out of the endpoints (being restarted)

    def endpoints() -> list[ClusterNode]:
        return [n for n in cluster.nodes if n.name not in out and n.ready()]

    http = Balancer(lambda n: n.ports.http, endpoints)
    grpc = Balancer(lambda n: n.ports.grpc, endpoints)
    key_file = tmp_path / "api-key"
    _replace(key_file, f"{OLD}\n")
    settings = api_settings(
        weaviate_url=f"http://127.0.0.1:{http.port}",
        weaviate_grpc_port=grpc.port,
        weaviate_api_key_file=key_file,
        weaviate_replication_factor=3,
        ml_url=ml_server.url,
        redis_url=None,  # no response cache: every search reaches Weaviate
    )

    def roll(keys: str) -> None:
        """The StatefulSet's rolling update: highest ordinal first, one at a time."""
        for node in reversed(cluster.nodes):
            out.add(node.name)
            time.sleep(1.0)  # endpoints updated before the pod is stopped (its preStop)
            node.stop()
            node.api_key = keys
            cluster.restart(node)
            cluster.wait_healthy(3, timeout=120)
            out.discard(node.name)
            time.sleep(2.0)  # the next pod goes only once this one is ready and serving

    try:
        with (
            ServerThread(create_app(settings)) as server,
            httpx.Client(base_url=server.url, timeout=90) as client,
        ):
            upload(client, "alpha.csv", 12)
            load = Load(client)
            load.start()
            try:
                roll(weaviate_keys_value((NEW, OLD)))  # Issued
                assert all(_status(n, OLD) == _status(n, NEW) == 200 for n in cluster.nodes)
                _replace(key_file, f"{NEW}\n")  # Published
                time.sleep(5)
                roll(NEW)  # Idle: retired
                time.sleep(3)
            finally:
                load.stop.set()
                load.join(timeout=120)
            assert all(_status(n, OLD) == 401 and _status(n, NEW) == 200 for n in cluster.nodes)
            print(f"searches: ok={load.ok} failed={len(load.failures)}")
            assert load.failures == [], load.failures[:10]
            assert load.ok > 100
    finally:
        http.close()
        grpc.close()
