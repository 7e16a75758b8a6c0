"""A service (`indexforge-api`, `indexforge-excel`) run as its own process, for what only a
separate process can show: its peak resident memory and the files it holds open.

Bound to 127.0.0.1 on a free port, configured only by the environment given (plus PATH/HOME),
stopped by its PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.procs import free_port, log_tail

START_TIMEOUT_S = 60.0


class ServiceProcess:
    def __init__(self, service: str, env: dict[str, str], workdir: Path) -> None:
        self.service = service
        self.env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        self.env.update(env)
        self.env.setdefault("INDEXFORGE_LOG_JSON", "false")
        self.workdir = workdir
        self.log = workdir / f"{service}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ServiceProcess:
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            argv = [sys.executable, "-m", f"indexforge_services.{self.service}.main"]
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [*argv, "--port", str(self.port)], env=self.env, stdout=log, stderr=log
                )
            if self._wait_healthy():
                return self
            self.stop()
        raise RuntimeError(f"{self.service} did not start:\n{log_tail(self.log)}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def memory_kib(self, field: str) -> int:
        """`VmHWM` (peak resident set since start) or `VmRSS`, in KiB, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def open_files_under(self, directory: Path) -> list[str]:
        return open_files_under(self.pid, directory)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def open_files_under(pid: int, directory: Path) -> list[str]:
    """Targets of a process's open file descriptors inside `directory` (deleted or not)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found
