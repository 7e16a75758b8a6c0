"""Metrics on their own port: the real `indexforge-excel` entry point, started as a process
with `INDEXFORGE_METRICS_PORT`, serves /metrics there and 404 on the serving port; the
listener lives and dies with the app's lifespan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from indexforge_services.excel.app import create_app as create_excel_app
from tests.procs import free_port
from tests.waiting import wait_for

from .conftest import ServerThread, excel_settings


class ServiceProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "indexforge_services.excel.main", "--port", str(self.port)]
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, env={**base, "INDEXFORGE_LOG_JSON": "false", **env},
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


Start = Callable[[dict[str, str]], ServiceProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    started: list[ServiceProcess] = []

    def run(env: dict[str, str]) -> ServiceProcess:
        service = ServiceProcess(env, tmp_path / f"excel-{len(started)}.log")
        started.append(service)
        wait_for(service.answers, timeout=60, what="excel service up")
        return service

    yield run
    for service in started:
        service.stop()


def refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.ConnectError:
        return True
    return False


def test_metrics_listen_apart_from_the_service(start: Start) -> None:
    metrics_port = free_port()
    service = start({"INDEXFORGE_METRICS_PORT": str(metrics_port)})
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    assert httpx.get(f"{service.url}/metrics", timeout=5).status_code == 404
    assert httpx.get(f"{service.url}/api/v1/excel/limits", timeout=5).status_code == 200
    scraped = httpx.get(metrics_url, timeout=5)
    assert scraped.status_code == 200
    # The service's own registry: its requests and its info, not an empty default registry.
    assert 'indexforge_service_info{service="indexforge-excel"' in scraped.text
    assert 'route="/api/v1/excel/limits",status="200"' in scraped.text
    # Scrapes are not traffic of the service.
    assert 'route="/metrics"' not in scraped.text

    # uvicorn re-raises the SIGTERM it handled once shut down: -15 is a clean exit here.
    assert service.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in service.log.read_text()
    assert refused(metrics_url)


def test_the_metrics_listener_stops_with_the_app() -> None:
    """In one process (as in tests), a listener left running would keep the port."""
    port = free_port()
    with ServerThread(create_excel_app(excel_settings(metrics_port=port))) as server:
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
        assert httpx.get(f"{server.url}/metrics", timeout=5).status_code == 404
    assert refused(f"http://127.0.0.1:{port}/metrics")


def test_without_a_metrics_port_metrics_stay_on_the_serving_port(start: Start) -> None:
    service = start({})
    scraped = httpx.get(f"{service.url}/metrics", timeout=5)
    assert scraped.status_code == 200 and "indexforge_service_info" in scraped.text
