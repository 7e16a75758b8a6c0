"""`/metrics` on a listener of its own (`INDEXFORGE_METRICS_PORT`), apart from the serving port.

A NetworkPolicy can then let the monitoring namespace reach the metrics port without opening
the API itself to whoever may scrape. prometheus_client's threaded WSGI server serves the
service's own registry in a thread beside uvicorn, started and stopped by the app's
lifespan on the service's bind host; it needs nothing from the event loop, so a busy loop
still answers scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(registry: CollectorRegistry, *, host: str, port: int) -> MetricsServer:
    """Bind now (a taken port fails the start-up, loudly) and serve in a daemon thread."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
