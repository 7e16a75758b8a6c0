"""Start and stop the service stack on loopback, without containers, wired as in production.

    app Redis   (maxmemory 512mb, allkeys-lru, appendonly)  <- API (db 0), Excel (db 1)
    ML Redis    (maxmemory 1gb, volatile-lru)                <- ML service
    ML service  <- Weaviate's text2vec-transformers module, API ingestion
    Weaviate    <- API
    Excel       <- API
    API         -> prints `export INDEXFORGE_API=<url>`

With monitoring (`make stack-up MONITORING=1`): Jaeger first (services trace to it), and once
the services are ready Prometheus, Alertmanager, a redis_exporter per Redis and a webhook
receiver (`<state>/alerts.jsonl`), running the operator's rendered files (`monitoring.py`);
the services then serve /metrics on their own ports, as in the cluster.

Every process runs in its own session (so `up` can return) with its log in `<state>/logs/`;
its PID is recorded in `<state>/state.json` the moment it starts, so `down` stops exactly what
`up` started (checking the command line first, in case a PID was reused) even after a
half-failed `up`.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from indexforge_operator.naming import Component
from tests.cluster import tools
from tests.cluster.tools import REPO_ROOT
from tests.procs import ProcessBook, StartupError, free_port
from tests.stack import jaeger
from tests.stack import messaging as stack_messaging
from tests.stack import monitoring as stack_monitoring
from tests.stack.weaviate import WeaviatePorts, WeaviateProcess, weaviate_binary

DEFAULT_STATE_DIR = REPO_ROOT / ".stack"
READY_TIMEOUT_S = 180.0  # a cold model load on a busy 2-core machine


class StackError(StartupError):
    """The stack could not be brought up; the message carries the failing log's tail."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_state(state: Path) -> dict[str, Any]:
    return ProcessBook(state).record


def running(state: Path) -> dict[str, int]:
    return ProcessBook(state).running()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(200 <= resp.status < 300)
    except OSError:
        return False


def redis_ping(port: int) -> bool:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def redis_argv(port: int, workdir: Path, *, maxmemory: str, policy: str, aof: bool) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no",
        "--dir", str(workdir), "--save", "", "--appendonly", "yes" if aof else "no",
        "--maxmemory", maxmemory, "--maxmemory-policy", policy,
    ]  # fmt: skip


def service_env(**values: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "INDEXFORGE_TORCH_THREADS", "XDG_CACHE_HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.update({f"INDEXFORGE_{k.upper()}": v for k, v in values.items()})
    return env


def service_argv(module: str, port: int) -> list[str]:
    return [sys.executable, "-m", f"indexforge_services.{module}.main", "--port", str(port)]


def up(
    state: Path = DEFAULT_STATE_DIR,
    *,
    monitoring: bool = False,
    monitoring_spec: dict[str, Any] | None = None,
    messaging: bool = False,
) -> str:
    """Start the stack (or find it running); returns the API URL. `monitoring` adds Jaeger,
    Prometheus, Alertmanager, redis exporters and a webhook sink, each with the operator's
    rendered files for `monitoring_spec` (`spec.monitoring`; default
    `monitoring.STACK_MONITORING`) on loopback, and points the services' traces at Jaeger.
    `messaging` adds RabbitMQ and one worker, and runs the API in queue mode."""
    already = read_state(state)
    pids = already.get("pids", {})
    wanted_running = (not monitoring or "prometheus" in pids) and (
        not messaging or "worker" in pids
    )
    if already.get("pids") and set(running(state)) == set(already["pids"]) and wanted_running:
        return str(already["urls"]["api"])
    if already.get("pids"):
        say("a previous stack is partly running: stopping it first")
        down(state)
    if shutil.which("redis-server") is None:
        raise StackError("redis-server is not on PATH: `make system-deps` installs it")
    if monitoring:
        stack_monitoring.binaries()  # fails before anything starts when one is missing
    # Built (or found in the cache) before anything starts: a cold build takes minutes.
    needed = ["weaviate-server", *(jaeger.STACK_TOOLS if monitoring else ())]
    for line in tools.ensure_built(needed):
        say(line)
    tools.link_all(needed)
    weaviate_binary()

    launcher = ProcessBook(state, cwd=state)
    launcher.record = {"pids": {}, "markers": {}, "urls": {}}
    record = launcher.record
    deadline = time.monotonic() + READY_TIMEOUT_S
    ports = {name: free_port() for name in ("redis_app", "redis_ml", "ml", "excel", "api")}
    # With monitoring, services serve /metrics on their own port, as in the cluster.
    served: tuple[Component, ...] = ("ml", "excel", "api", *(("worker",) if messaging else ()))
    metrics_ports = {name: free_port() for name in served} if monitoring else {}

    def metrics_env(service: str) -> dict[str, str]:
        return {"metrics_port": str(metrics_ports[service])} if service in metrics_ports else {}

    app_redis = f"redis://127.0.0.1:{ports['redis_app']}"
    ml_url = f"http://127.0.0.1:{ports['ml']}"
    tracing: dict[str, str] = {}  # service_env keywords; empty: tracing off
    if monitoring:
        say("starting jaeger (the rendered v2 config on loopback)")
        tracing = jaeger.start_in_stack(launcher, state, deadline=deadline)

    say("starting redis-app and redis-ml")
    launcher.spawn(
        "redis-app",
        redis_argv(ports["redis_app"], state / "redis-app", maxmemory="512mb",
                   policy="allkeys-lru", aof=True),
        env=service_env(), marker=f"127.0.0.1:{ports['redis_app']}",
    )  # fmt: skip
    launcher.spawn(
        "redis-ml",
        redis_argv(ports["redis_ml"], state / "redis-ml", maxmemory="1gb",
                   policy="volatile-lru", aof=False),
        env=service_env(), marker=f"127.0.0.1:{ports['redis_ml']}",
    )  # fmt: skip
    launcher.wait(
        "redis-app", lambda: redis_ping(ports["redis_app"]), deadline=deadline, watch=["redis-app"]
    )
    launcher.wait(
        "redis-ml", lambda: redis_ping(ports["redis_ml"]), deadline=deadline, watch=["redis-ml"]
    )

    say("starting the ML service (loads the model)")
    launcher.spawn(
        "ml",
        service_argv("ml", ports["ml"]),
        env=service_env(
            service_name="ml",
            redis_url=f"redis://127.0.0.1:{ports['redis_ml']}/0",
            **tracing,
            **metrics_env("ml"),
        ),
        marker="indexforge_services.ml.main",
    )
    say("starting the Excel processor")
    launcher.spawn(
        "excel",
        service_argv("excel", ports["excel"]),
        env=service_env(
            service_name="excel", redis_url=f"{app_redis}/1", **tracing, **metrics_env("excel")
        ),
        marker="indexforge_services.excel.main",
    )
    launcher.wait("ml", lambda: http_ok(f"{ml_url}/readyz"), deadline=deadline, watch=["ml"])

    # Weaviate waits for its inference service at start-up, so it comes after ML is ready.
    say("starting weaviate-server")
    weaviate = WeaviateProcess(state / "weaviate", ml_url, ports=WeaviatePorts.allocate())
    weaviate.workdir.mkdir(parents=True, exist_ok=True)
    weaviate.data_dir.mkdir(parents=True, exist_ok=True)
    launcher.spawn("weaviate", weaviate.argv(), env=weaviate.env(), marker="weaviate-server")
    launcher.wait("weaviate", weaviate.ready, deadline=deadline, watch=["weaviate"])

    queue: dict[str, str] = {}  # service_env keywords; empty: inline ingestion
    if messaging:
        say("starting rabbitmq (its own epmd, loopback ports)")
        spec = stack_monitoring.stack_spec(
            monitoring_spec or {}, webhook_url="http://127.0.0.1:9/unused", messaging=True
        )
        url = stack_messaging.start_broker(
            launcher, state, spec, stack_monitoring.NAMES, deadline=deadline
        )
        queue = stack_messaging.queue_settings(url)
    say("starting the API" + (" and a worker (queue mode)" if messaging else ""))
    excel_url = f"http://127.0.0.1:{ports['excel']}"
    api_url = f"http://127.0.0.1:{ports['api']}"
    api_settings = {
        "redis_url": f"{app_redis}/0",
        "weaviate_url": weaviate.url,
        "weaviate_grpc_port": str(weaviate.ports.grpc),
        "ml_url": ml_url,
        "excel_url": excel_url,
        **tracing,
        **queue,
    }
    launcher.spawn(
        "api",
        service_argv("api", ports["api"]),
        env=service_env(service_name="api", **api_settings, **metrics_env("api")),
        marker="indexforge_services.api.main",
    )
    worker_url = f"http://127.0.0.1:{free_port()}"
    if messaging:
        launcher.spawn(
            "worker",
            [*service_argv("api", int(worker_url.rpartition(":")[2])), "--worker"],
            env=service_env(service_name="worker", **api_settings, **metrics_env("worker")),
            marker="--worker",
        )
    launcher.wait(
        "excel", lambda: http_ok(f"{excel_url}/readyz"), deadline=deadline, watch=["excel"]
    )
    launcher.wait("api", lambda: http_ok(f"{api_url}/readyz"), deadline=deadline, watch=["api"])
    if messaging:
        launcher.wait("worker", lambda: http_ok(f"{worker_url}/readyz"), deadline=deadline,
                      watch=["worker"])  # fmt: skip
        record.setdefault("urls", {})["worker"] = worker_url
    if monitoring:
        say("starting prometheus, alertmanager, redis exporters (the rendered files)")
        record.setdefault("urls", {}).update(
            _start_monitoring(
                launcher,
                state,
                monitoring_spec,
                metrics_ports,
                ports,
                deadline,
                messaging=messaging,
            )
        )
    record["urls"] = {
        **record.get("urls", {}),  # the monitoring stack's, when monitoring
        "api": api_url,
        "excel": excel_url,
        "ml": ml_url,
        "weaviate": weaviate.url,
        "weaviate_grpc_port": weaviate.ports.grpc,
        "redis_app": app_redis,
        "redis_ml": f"redis://127.0.0.1:{ports['redis_ml']}",
    }
    launcher.save()
    return api_url


def _start_monitoring(
    launcher: ProcessBook,
    state: Path,
    monitoring_spec: dict[str, Any] | None,
    metrics_ports: dict[Component, int],
    ports: dict[str, int],
    deadline: float,
    *,
    messaging: bool,
) -> dict[str, str]:
    """The webhook sink, then Prometheus & co. for the stack spec (services already ready)."""
    sink_port, alerts = free_port(), state / "alerts.jsonl"
    launcher.spawn("alert-sink", stack_monitoring.sink_argv(sink_port, alerts),
                   marker="tests.stack.alert_sink", cwd=REPO_ROOT)  # fmt: skip
    sink_url = f"http://127.0.0.1:{sink_port}/alerts"
    launcher.wait("alert-sink", lambda: http_ok(sink_url), deadline=deadline,
                  watch=["alert-sink"])  # fmt: skip
    spec = stack_monitoring.stack_spec(
        monitoring_spec if monitoring_spec is not None else stack_monitoring.STACK_MONITORING,
        webhook_url=sink_url,
        messaging=messaging,
    )
    scraped = [
        stack_monitoring.Scraped(service, f"127.0.0.1:{port}")
        for service, port in metrics_ports.items()
    ]
    scraped.append(stack_monitoring.Scraped("jaeger", launcher.record["urls"]["jaeger_metrics"]))
    if messaging:
        broker = launcher.record["urls"]["rabbitmq_metrics"]
        scraped.append(stack_monitoring.Scraped("rabbitmq", broker))
    urls = stack_monitoring.start(
        launcher,
        state / "monitoring",
        spec=spec,
        scraped=scraped,
        redis={"redis-app": ports["redis_app"], "redis-ml": ports["redis_ml"]},
        deadline=deadline,
    )
    return {**urls, "alert_sink": sink_url, "alerts_file": str(alerts)}


def down(state: Path = DEFAULT_STATE_DIR, *, grace_s: float = 15.0) -> list[str]:
    """Stop every process `up` recorded, newest first; SIGKILL after `grace_s`."""
    book = ProcessBook(state)
    stopped = book.stop_all(grace_s=grace_s)
    book.record["urls"] = {}
    if book.path.exists():
        book.save()
    return stopped
