"""Run `jaeger` (v2, built by `python -m tests.cluster tools jaeger`) on loopback with the config
the operator renders.

The config is the builder's own (`builders/jaeger.jaeger_config`); only what cannot be the
pod's is changed: every listen address becomes a free 127.0.0.1 port and the Badger
directories move under a work directory. `local_config` refuses a config that still listens
anywhere else, so a listener added to the builder cannot slip through onto all interfaces.
Used by the service tests (a real trace store) and by `make stack-up MONITORING=1`.
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from indexforge_operator.builders import jaeger as builder
from indexforge_operator.builders import ports as pod_ports
from indexforge_operator.spec import IndexForgeSpec
from tests.cluster.tools import built_tool
from tests.procs import ProcessBook, free_port

READY_TIMEOUT_S = 60.0
STACK_TOOLS = ("jaeger",)  # what `make stack-up MONITORING=1` builds for this module
Obj = dict[str, Any]


class JaegerError(RuntimeError):
    """jaeger is missing, rejected its config or did not become healthy."""


def jaeger_binary() -> Path:
    return built_tool("jaeger", JaegerError)


@dataclass(frozen=True)
class JaegerPorts:
    otlp_grpc: int
    otlp_http: int
    ui: int
    query_grpc: int
    health: int
    metrics: int

    @classmethod
    def allocate(cls) -> JaegerPorts:
        return cls(*(free_port() for _ in range(6)))

    def by_pod_port(self) -> dict[int, int]:
        """The pod's port -> this machine's."""
        return {
            pod_ports.JAEGER_OTLP_GRPC: self.otlp_grpc,
            pod_ports.JAEGER_OTLP_HTTP: self.otlp_http,
            pod_ports.JAEGER_UI: self.ui,
            pod_ports.JAEGER_QUERY_GRPC: self.query_grpc,
            pod_ports.JAEGER_HEALTH: self.health,
            pod_ports.JAEGER_METRICS: self.metrics,
        }


def rendered_config(spec: IndexForgeSpec | None = None) -> Obj:
    """The config file exactly as the operator puts it into the ConfigMap, parsed."""
    text = builder.jaeger_data(spec or IndexForgeSpec())[builder.CONFIG_FILE]
    config: Obj = yaml.safe_load(text)
    return config


def _endpoints(node: Any, path: str = "") -> list[str]:
    """Paths of every `endpoint` key (collector listeners) anywhere in the config."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "endpoint":
                found.append(here)
            found += _endpoints(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _endpoints(item, f"{path}[{i}]")
    return found


def _get(config: Obj, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def local_config(config: Obj, *, ports: JaegerPorts, data_dir: Path) -> Obj:
    """`config` with every listener on 127.0.0.1 at `ports` and Badger under `data_dir`;
    nothing else changes. Raises if a listener is left that this function does not know."""
    local = copy.deepcopy(config)
    mapping = ports.by_pod_port()
    moved = set()
    for dotted in _endpoints(local):
        parent, _, _ = dotted.rpartition(".")
        holder = _get(local, parent)
        _host, _, port = str(holder["endpoint"]).rpartition(":")
        if int(port) not in mapping:
            raise JaegerError(f"{dotted} listens on port {port}, which JaegerPorts does not map")
        holder["endpoint"] = f"127.0.0.1:{mapping[int(port)]}"
        moved.add(int(port))
    for reader in local["service"]["telemetry"]["metrics"].get("readers", []):
        prometheus = reader["pull"]["exporter"]["prometheus"]
        prometheus["host"] = "127.0.0.1"
        prometheus["port"] = mapping[int(prometheus["port"])]
        moved.add(pod_ports.JAEGER_METRICS)
    for name, backend in local["extensions"]["jaeger_storage"]["backends"].items():
        dirs = backend["badger"]["directories"]
        for kind in ("keys", "values"):
            pod_path = Path(dirs[kind])
            if builder.DATA_DIR not in (str(pod_path), *map(str, pod_path.parents)):
                raise JaegerError(f"backend {name} {kind} outside {builder.DATA_DIR}: {pod_path}")
            dirs[kind] = str(data_dir / name / pod_path.relative_to(builder.DATA_DIR))
    unmoved = set(mapping) - moved
    if unmoved:
        raise JaegerError(f"the rendered config has no listener on ports {sorted(unmoved)}")
    text = json.dumps(local)
    if "0.0.0.0" in text or f'"{builder.DATA_DIR}' in text:
        raise JaegerError(f"a pod address or path is left in the local config: {text}")
    return local


class JaegerProcess:
    """One `jaeger` process with a local copy of the rendered config."""

    def __init__(
        self,
        workdir: Path,
        *,
        config: Obj | None = None,
        ports: JaegerPorts | None = None,
    ) -> None:
        self.workdir = workdir
        self.ports = ports or JaegerPorts.allocate()
        self.data_dir = workdir / "data"
        self.config_path = workdir / "config.yaml"
        self.log_path = workdir / "jaeger.log"
        self.config = local_config(
            config if config is not None else rendered_config(),
            ports=self.ports,
            data_dir=self.data_dir,
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def query_url(self) -> str:
        """Query UI and HTTP API (/api/services, /api/traces)."""
        return f"http://127.0.0.1:{self.ports.ui}"

    @property
    def otlp_http_url(self) -> str:
        """What INDEXFORGE_OTLP_ENDPOINT points at (the services add /v1/traces)."""
        return f"http://127.0.0.1:{self.ports.otlp_http}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.health}{builder.HEALTH_PATH}"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    def argv(self) -> list[str]:
        # The container's args, with the config's local path.
        return [str(jaeger_binary()), f"--config={self.config_path}"]

    def env(self) -> dict[str, str]:
        # Nothing from the caller's environment: OTEL_* variables would change the telemetry.
        return {"PATH": "/usr/bin:/bin", "GOMAXPROCS": "2"}

    def start(self, *, timeout: float = READY_TIMEOUT_S) -> None:
        self.write_config()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), env=self.env(), cwd=self.workdir,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.wait_ready(timeout)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise JaegerError(f"jaeger exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        self.stop()
        raise JaegerError(f"jaeger not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None

    # -- the query API (what Grafana's Jaeger datasource and the UI use) ---------------------

    def get(self, path: str, **query: str) -> Any:
        url = f"{self.query_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())

    def services(self) -> list[str]:
        return list(self.get("/api/services").get("data") or [])

    def traces(self, service: str, **query: str) -> list[Obj]:
        return list(self.get("/api/traces", service=service, **query).get("data") or [])


def spans_by_service(trace: Obj) -> list[tuple[str, str]]:
    """(service name, operation) of every span of one trace from the query API."""
    processes = trace.get("processes", {})
    return [
        (processes[span["processID"]]["serviceName"], span["operationName"])
        for span in trace.get("spans", [])
    ]


def start_in_stack(book: ProcessBook, state: Path, *, deadline: float) -> dict[str, str]:
    """`make stack-up MONITORING=1`: start jaeger (built beforehand, see `STACK_TOOLS`) with the
    rendered config under `<state>/jaeger` and wait until healthy. Returns the services'
    tracing settings (`service_env` keywords): every request traced, so each upload shows up."""
    jaeger = JaegerProcess(state / "jaeger")
    jaeger.write_config()
    book.spawn("jaeger", jaeger.argv(), env=jaeger.env(), marker=str(jaeger.config_path))
    book.wait("jaeger", jaeger.ready, deadline=deadline, watch=["jaeger"])
    book.record.setdefault("urls", {})["jaeger"] = jaeger.query_url
    book.record["urls"]["jaeger_metrics"] = f"127.0.0.1:{jaeger.ports.metrics}"
    return {"otlp_endpoint": jaeger.otlp_http_url, "trace_sample_ratio": "1.0"}
