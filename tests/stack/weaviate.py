"""Run `weaviate-server` (built by `python -m tests.cluster tools weaviate-server`) on loopback.

Single node, anonymous access (or API-key auth with `api_key=`, as the operator deploys it),
the `text2vec-transformers` module pointed at our ML service,
telemetry and the pprof listener off. Every port is a free 127.0.0.1 port chosen up front
and kept across restarts, so a test can kill Weaviate and bring the same instance (same data
directory, same URLs) back. Two listeners of v1.35 cannot be bound to loopback: gRPC and the
cluster data port use all interfaces; they are random free ports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.tools import built_tool
from tests.procs import free_port

NODE = "indexforge-node"
READY_TIMEOUT_S = 90.0


class WeaviateError(RuntimeError):
    """weaviate-server is missing or did not become ready; the message says which and why."""


def weaviate_binary() -> Path:
    return built_tool("weaviate-server", WeaviateError)


@dataclass(frozen=True)
class WeaviatePorts:
    http: int
    grpc: int
    gossip: int
    data: int
    raft: int
    raft_rpc: int

    @classmethod
    def allocate(cls) -> WeaviatePorts:
        return cls(*(free_port() for _ in range(6)))


API_KEY_USER = "indexforge"


def auth_env(api_key: str | None) -> dict[str, str]:
    """Anonymous access, or only holders of `api_key` (user `indexforge`), as in production."""
    if api_key is None:
        return {"AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true"}
    return {
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
        "AUTHENTICATION_APIKEY_ENABLED": "true",
        "AUTHENTICATION_APIKEY_ALLOWED_KEYS": api_key,
        "AUTHENTICATION_APIKEY_USERS": API_KEY_USER,
    }


def weaviate_env(
    ports: WeaviatePorts, data_dir: Path, inference_url: str, *, api_key: str | None = None
) -> dict[str, str]:
    return {
        **auth_env(api_key),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PERSISTENCE_DATA_PATH": str(data_dir),
        "DEFAULT_VECTORIZER_MODULE": "text2vec-transformers",
        "ENABLE_MODULES": "text2vec-transformers",
        "TRANSFORMERS_INFERENCE_API": inference_url,
        "DISABLE_TELEMETRY": "true",
        "GO_PROFILING_DISABLE": "true",  # else pprof listens on :6060, all interfaces
        "CLUSTER_HOSTNAME": NODE,
        "CLUSTER_BIND_ADDR": "127.0.0.1",
        "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
        "CLUSTER_GOSSIP_BIND_PORT": str(ports.gossip),
        "CLUSTER_DATA_BIND_PORT": str(ports.data),
        "GRPC_PORT": str(ports.grpc),
        "RAFT_PORT": str(ports.raft),
        "RAFT_INTERNAL_RPC_PORT": str(ports.raft_rpc),
        "RAFT_JOIN": f"{NODE}:{ports.raft_rpc}",
        "RAFT_BOOTSTRAP_EXPECT": "1",
        # A single node elects itself; the default multiplier (5) makes that take ~10 s.
        "RAFT_TIMEOUTS_MULTIPLIER": "1",
        "LOG_LEVEL": "warning",
        "GOMAXPROCS": "2",
    }


class WeaviateProcess:
    def __init__(
        self,
        workdir: Path,
        inference_url: str,
        *,
        ports: WeaviatePorts | None = None,
        api_key: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.inference_url = inference_url
        self.api_key = api_key
        self.ports = ports or WeaviatePorts.allocate()
        self.data_dir = workdir / "data"
        self.log_path = workdir / "weaviate.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    def argv(self) -> list[str]:
        binary = str(weaviate_binary())
        return [binary, "--host", "127.0.0.1", "--port", str(self.ports.http), "--scheme", "http"]

    def env(self) -> dict[str, str]:
        return weaviate_env(self.ports, self.data_dir, self.inference_url, api_key=self.api_key)

    def start(self, *, timeout: float = READY_TIMEOUT_S, new_session: bool = False) -> None:
        argv = self.argv()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=new_session,
            )  # fmt: skip
        self.wait_ready(timeout)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/.well-known/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise WeaviateError(
                    f"weaviate-server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        self.kill()
        raise WeaviateError(f"weaviate-server not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self, grace: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None
