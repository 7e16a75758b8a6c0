"""Bookkeeping for background processes the test tooling starts (control plane, service stack).

Each process runs in its own session (so `up` can return while it keeps running), logs to
`<state>/logs/<name>.log`, and has its PID recorded in `<state>/state.json` the moment it
starts. `stop_all` then stops exactly those processes — after checking each PID still runs
the command that was started, so a reused PID is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (servers here bind loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
    except OSError:
        return False


def is_ours(pid: int, marker: str) -> bool:
    """Guard against PID reuse: the process must still run the command we started."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class StartupError(RuntimeError):
    """A process did not come up; the message carries its log's tail."""


class ProcessBook:
    """The processes of one state directory, and any extra facts recorded beside them."""

    def __init__(self, state: Path, *, cwd: Path | None = None) -> None:
        self.state = state
        self.cwd = cwd
        self.logs = state / "logs"
        self.record: dict[str, Any] = self.read()
        self.record.setdefault("pids", {})
        self.record.setdefault("markers", {})

    @property
    def path(self) -> Path:
        return self.state / "state.json"

    def read(self) -> dict[str, Any]:
        return dict(json.loads(self.path.read_text())) if self.path.exists() else {}

    def save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record, indent=2))
        tmp.replace(self.path)

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        marker: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` detached and record it before anything else can fail."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, env=env, cwd=cwd or self.cwd,
            )  # fmt: skip
        self.record["pids"][name] = proc.pid
        self.record["markers"][name] = marker or argv[0]
        self.save()
        return proc

    def running(self) -> dict[str, int]:
        markers: dict[str, str] = self.record["markers"]
        return {
            name: pid
            for name, pid in self.record["pids"].items()
            if pid_alive(pid) and is_ours(pid, markers.get(name, name))
        }

    def wait(
        self,
        what: str,
        check: Callable[[], bool],
        *,
        deadline: float,
        watch: list[str] | None = None,
    ) -> None:
        """Poll ``check`` until it holds; fail early, with its log, if a watched process dies."""
        watched = watch if watch is not None else list(self.record["pids"])
        while time.monotonic() < deadline:
            for name in watched:
                if not pid_alive(self.record["pids"][name]):
                    raise StartupError(
                        f"{name} exited while waiting for {what}; last log lines:\n"
                        + log_tail(self.logs / f"{name}.log")
                    )
            if check():
                return
            time.sleep(0.25)
        raise StartupError(f"timed out waiting for {what} (logs in {self.logs})")

    def stop_all(self, *, grace_s: float = 10.0) -> list[str]:
        """SIGTERM every recorded process, newest first; SIGKILL after ``grace_s``."""
        stopped: list[str] = []
        for name, pid in reversed(list(self.running().items())):
            os.kill(pid, signal.SIGTERM)
            stopped.append(name)
            end = time.monotonic() + grace_s
            while pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.1)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.record["pids"], self.record["markers"] = {}, {}
        if self.path.exists():
            self.save()
        return stopped
