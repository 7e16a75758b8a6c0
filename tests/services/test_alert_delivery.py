"""An alert travels the whole rendered path: real Prometheus -> real Alertmanager -> webhook.

Debian's `prometheus` (2.42) and `prometheus-alertmanager` (0.25) run with the files the
operator renders. Only addresses are rewritten to loopback (scrape targets, the Alertmanager
Prometheus sends to, the rule file's path); timings come from spec fields
(`monitoring.prometheus.scrapeInterval`, `monitoring.alerts.forDuration`,
`monitoring.alertmanager.groupWaitSeconds`), and the webhook URL is
`monitoring.alertmanager.webhookUrl`, pointing at an HTTP server in this test.

A tiny metrics endpoint stands in for the API: 1 request in 10 answers 500, so
IndexForgeHighErrorRate (critical) fires; the other components' targets point at a closed
port, so IndexForgeTargetDown (warning) fires too. Both must reach the webhook through their
severity's receiver.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from indexforge_operator.builders.alertmanager import CONFIG_FILE, CRITICAL, WARNING
from indexforge_operator.builders.prometheus import RULES_FILE
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.procs import free_port
from tests.stack.monitoring import loopback, rendered
from tests.waiting import wait_for

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None or ALERTMANAGER is None,
        reason="needs Debian's prometheus and prometheus-alertmanager (`make system-deps`)",
    ),
]
NAMES = Names(instance="demo", namespace="shop")
DELIVERY_TIMEOUT = 120.0


class _Metrics(BaseHTTPRequestHandler):
    """The API's metrics as the services export them; the counters grow with time."""

    started = time.monotonic()

    def do_GET(self) -> None:
        seconds = time.monotonic() - self.started
        ok, failed = int(90 * seconds) + 1, int(10 * seconds) + 1
        name = "http_requests_total"
        body = (
            f"# TYPE {name} counter\n"
            f'{name}{{method="GET",route="/api/v1/search",status="200"}} {ok}\n'
            f'{name}{{method="GET",route="/api/v1/search",status="500"}} {failed}\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    class Hook(_Webhook):
        received: ClassVar[list[dict[str, Any]]] = []

    server = _serve(Hook)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/indexforge", Hook.received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api_metrics() -> Iterator[str]:
    server = _serve(_Metrics)
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Process:
    """A server this test started; stopped by its PID only."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.handle, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.handle.close()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


def _ready(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _alerts(received: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """alertname -> the last notification that carried it (firing)."""
    out: dict[str, dict[str, Any]] = {}
    for payload in received:
        for alert in payload.get("alerts", []):
            if alert.get("status") == "firing":
                out[alert["labels"]["alertname"]] = {**alert, "receiver": payload["receiver"]}
    return out


def test_high_error_rate_reaches_the_webhook(
    tmp_path: Path,
    webhook: tuple[str, list[dict[str, Any]]],
    api_metrics: str,
    request: pytest.FixtureRequest,
) -> None:
    assert PROMETHEUS is not None and ALERTMANAGER is not None
    hook_url, received = webhook
    spec = IndexForgeSpec.model_validate(
        {
            "monitoring": {
                "prometheus": {"scrapeInterval": "1s", "evaluationInterval": "1s"},
                "alerts": {"forDuration": "2s"},
                "alertmanager": {
                    "webhookUrl": hook_url,
                    "groupWaitSeconds": 1,
                    "groupIntervalSeconds": 1,
                },
            }
        }
    )
    files = rendered(spec, NAMES)
    assert hook_url in files.alertmanager  # the spec's URL, not a rewrite
    # The "down" targets' port stays bound without listen() for the whole test: connections
    # are refused, and neither Prometheus nor Alertmanager (nor anyone else) can be handed the
    # same port by a later free_port() and answer the scrapes (TargetDown then never fired).
    refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refusing.bind(("127.0.0.1", 0))
    request.addfinalizer(refusing.close)
    closed = refusing.getsockname()[1]
    prom_port, am_port = free_port(), free_port()
    assert len({prom_port, am_port, closed}) == 3
    (tmp_path / RULES_FILE).write_text(files.rules)
    targets = {job["job_name"]: f"127.0.0.1:{closed}" for job in files.prometheus["scrape_configs"]}
    targets[NAMES.component("api")] = api_metrics
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            loopback(
                files.prometheus,
                rules=tmp_path / RULES_FILE,
                prometheus=f"127.0.0.1:{prom_port}",
                alertmanager=f"127.0.0.1:{am_port}",
                targets=targets,
            )
        )
    )
    (tmp_path / CONFIG_FILE).write_text(files.alertmanager)
    (tmp_path / "am-data").mkdir()
    (tmp_path / "tsdb").mkdir()
    started: list[_Process] = []
    try:
        started.append(
            _Process(
                [
                    ALERTMANAGER,
                    f"--config.file={tmp_path / CONFIG_FILE}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path / "alertmanager.log",
            )
        )
        started.append(
            _Process(
                [
                    PROMETHEUS,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp_path / "prometheus.log",
            )
        )
        for proc, url in zip(
            started,
            (f"http://127.0.0.1:{am_port}/-/ready", f"http://127.0.0.1:{prom_port}/-/ready"),
            strict=True,
        ):
            try:
                wait_for(lambda url=url: _ready(url), timeout=30, what=f"{url}")  # type: ignore[misc]
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{proc.tail()}") from None
        begin = time.monotonic()
        try:
            alerts = wait_for(
                lambda: (
                    found
                    if {"IndexForgeHighErrorRate", "IndexForgeTargetDown"}
                    <= set(found := _alerts(received))
                    else None
                ),
                timeout=DELIVERY_TIMEOUT,
                interval=0.5,
                what="HighErrorRate and TargetDown at the webhook",
            )
        except AssertionError as exc:
            logs = "\n".join(p.tail() for p in started)
            raise AssertionError(f"{exc}; received {received}\n{logs}") from None
        elapsed = time.monotonic() - begin
    finally:
        for proc in started:
            proc.stop()
    errors = alerts["IndexForgeHighErrorRate"]
    assert errors["receiver"] == CRITICAL
    assert errors["labels"]["severity"] == "critical"
    assert errors["labels"]["component"] == "api"
    assert errors["labels"]["indexforge_instance"] == "demo"
    assert errors["labels"]["namespace"] == "shop"
    assert errors["annotations"]["runbook_url"].endswith("/IndexForgeHighErrorRate.md")
    down = alerts["IndexForgeTargetDown"]
    assert down["receiver"] == WARNING and down["labels"]["severity"] == "warning"
    assert elapsed < DELIVERY_TIMEOUT
