"""Start, stop and kill real operator processes for the tests (one or several replicas)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import free_port
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]


@dataclass
class OperatorProcess:
    """One operator replica; ``kubeconfig`` decides its identity (use the ServiceAccount's)."""

    kubeconfig: Path
    workdir: Path
    name: str = "operator"
    namespaces: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    health_port: int = 0
    metrics_port: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def pass_requests(self) -> float:
        """Requests reconcile passes sent (leader election's Lease renewals left out)."""
        return self.metric("indexforge_operator_api_requests_total", unless='resource="leases"')

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, *, wait: bool = True) -> OperatorProcess:
        self.health_port, self.metrics_port = free_port(), free_port()
        args = [
            sys.executable, "-m", "indexforge_operator",
            "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
            "--metrics-address", "127.0.0.1", "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        for ns in self.namespaces:
            args += ["--namespace", ns]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "POD_NAME": self.name, **self.env}
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        if wait:
            wait_for(self.healthy, timeout=60, what=f"{self.name} liveness endpoint")
        return self

    def healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_tail()
        try:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text()[-chars:] if self.log_path.exists() else ""

    def log_messages(self) -> list[str]:
        """The ``message`` of every JSON log line (timestamps and other fields left out, so
        a search for "403" cannot match a microsecond)."""
        messages = []
        for line in self.log_tail(10_000_000).splitlines():
            try:
                messages.append(str(json.loads(line).get("message", "")))
            except (ValueError, AttributeError):
                messages.append(line)  # a traceback or other plain text counts as a message
        return messages

    def metric(self, name: str, *, unless: str = "") -> float:
        """Sum of a metric's samples (0 when absent) scraped from the running process;
        samples whose labels contain ``unless`` (e.g. 'resource="leases"') are left out."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if unless and unless in line:
                continue
            if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, *, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no Lease release — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
