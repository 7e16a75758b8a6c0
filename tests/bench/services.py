"""Run one IndexForge service as a child process for a benchmark, stopped by its PID."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.procs import free_port

# Benchmarks measure the service alone: no cache, no exporter, no error reporting.
_OFF = ("INDEXFORGE_REDIS_URL", "INDEXFORGE_OTLP_ENDPOINT", "INDEXFORGE_SENTRY_DSN")


@contextmanager
def running_service(
    module: str,
    settings: dict[str, str],
    *,
    ready_path: str,
    ready_status: int = 200,
    timeout: float = 60.0,
) -> Iterator[str]:
    """Start ``indexforge_services.<module>.main`` on a free loopback port; yield its URL."""
    port = free_port()
    env = {**os.environ, "INDEXFORGE_LOG_LEVEL": "WARNING", **settings}
    for name in _OFF:
        env.pop(name, None)
    cmd = [sys.executable, "-m", f"indexforge_services.{module}.main", "--port", str(port)]
    # stderr to a file, not a pipe: a pipe nobody reads fills up and blocks the child.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise RuntimeError(f"{module} service exited: {err[-2000:]}")
                try:
                    if httpx.get(f"{url}{ready_path}", timeout=1).status_code == ready_status:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{module} service did not become ready in {timeout:.0f}s")
                time.sleep(0.25)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
