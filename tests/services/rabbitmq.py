"""A private RabbitMQ node (Debian `rabbitmq-server`, 3.10 on Erlang 25) for the tests.

Everything is the node's own: loopback listeners on free ports (AMQP, Erlang distribution,
Prometheus metrics), its own epmd on its own port (started here in the foreground, so it is
our child and is stopped by PID, and never clashes with another node's epmd), a unique node
name, and config, data (mnesia) and logs under a temporary directory. `restart()` keeps the
data directory and the ports, so durable queues and persistent messages survive it exactly
as they would survive a pod restart on its PVC.

Readiness is "an AMQP handshake gets a Connection.Start back", not a sleep.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from tests.procs import free_port, log_tail

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
# The real server script: Debian's /usr/sbin wrapper re-executes it as the rabbitmq user.
SERVER_PATHS = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class RabbitMQError(RuntimeError):
    pass


def rabbitmq_binary() -> str | None:
    for path in SERVER_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("rabbitmq-server")


def amqp_ready(port: int, *, timeout: float = 1.0) -> bool:
    """True when the node answers an AMQP 0-9-1 protocol header with a method frame."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(AMQP_HEADER)
            frame = sock.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1  # frame type 1: Connection.Start


class RabbitMQNode:
    """One node; `url` is its AMQP URL (guest/guest, which RabbitMQ allows on loopback)."""

    def __init__(self, workdir: Path, *, prometheus: bool = False) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = f"ifrmq{uuid.uuid4().hex[:10]}@localhost"
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.prometheus_port = free_port() if prometheus else None
        self.prometheus = prometheus
        self.server: subprocess.Popen[bytes] | None = None
        self.epmd: subprocess.Popen[bytes] | None = None
        self.start_seconds: list[float] = []  # one per start: how long until it answered

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def log(self) -> Path:
        return self.workdir / "log" / "server.out"

    def write_config(self) -> Path:
        lines = [
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}",
            "loopback_users.guest = true",
            # Test machines have small disks; the default 50MB limit is fine, never block.
            "disk_free_limit.absolute = 10MB",
            "log.console = false",
            "log.file.level = info",
        ]
        if self.prometheus_port is not None:
            lines += [
                f"prometheus.tcp.port = {self.prometheus_port}",
                "prometheus.tcp.ip = 127.0.0.1",
            ]
        config = self.workdir / "rabbitmq.conf"
        config.write_text("\n".join(lines) + "\n")
        plugins = self.workdir / "enabled_plugins"
        plugins.write_text("[rabbitmq_prometheus].\n" if self.prometheus else "[].\n")
        return config

    def env(self) -> dict[str, str]:
        home = self.workdir / "home"  # the Erlang cookie lives here, not in root's home
        home.mkdir(exist_ok=True)
        env = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
        env.update(
            HOME=str(home),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            # No system-wide env file (/etc/rabbitmq/rabbitmq-env.conf) and no default port.
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            # Distribution on loopback only.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def prepare(self) -> dict[str, str]:
        """Config, env file and log directory in place; the environment to start with."""
        self.write_config()
        (self.workdir / "rabbitmq-env.conf").touch()
        (self.workdir / "log").mkdir(exist_ok=True)
        return self.env()

    def epmd_argv(self) -> list[str]:
        """This node's own epmd, on its own port, loopback only."""
        epmd = shutil.which("epmd") or "epmd"
        return [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"]

    def _start_epmd(self, env: dict[str, str]) -> None:
        if self.epmd is not None and self.epmd.poll() is None:
            return
        self.epmd = subprocess.Popen(
            self.epmd_argv(),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> RabbitMQNode:
        binary = rabbitmq_binary()
        if binary is None:
            raise RabbitMQError("rabbitmq-server is not installed (make system-deps)")
        env = self.prepare()
        self._start_epmd(env)
        began = time.monotonic()
        with (self.workdir / "log" / "server.out").open("ab") as out:
            self.server = subprocess.Popen(
                [binary], env=env, stdout=out, stderr=out, cwd=self.workdir, start_new_session=True
            )
        deadline = began + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                self.stop()
                raise RabbitMQError(f"rabbitmq-server exited:\n{log_tail(self.log)}")
            if amqp_ready(self.amqp_port):
                self.start_seconds.append(time.monotonic() - began)
                return self
            time.sleep(0.2)
        self.stop()
        raise RabbitMQError(f"rabbitmq-server did not answer in {START_TIMEOUT_S}s")

    def stop_server(self) -> None:
        """Stop the node (SIGTERM: a clean shutdown), keeping its data and epmd."""
        if self.server is None:
            return
        if self.server.poll() is None:
            # The server script runs erl in its own session: signal that group only.
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(timeout=10)
        self.server = None
        # The AMQP port must be closed before a restart binds it again.
        deadline = time.monotonic() + 10
        while amqp_ready(self.amqp_port, timeout=0.2) and time.monotonic() < deadline:
            time.sleep(0.1)

    def restart(self) -> None:
        self.stop_server()
        self.start()

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """`rabbitmqctl -n <this node> args...` (users, vhosts, permissions); raises on failure."""
        binary = str(Path(rabbitmq_binary() or SERVER_PATHS[0]).with_name("rabbitmqctl"))
        done = subprocess.run(
            [binary, "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RabbitMQError(f"rabbitmqctl {' '.join(args)}: {done.stderr.decode()[-500:]}")
        return done.stdout.decode()

    def stop(self) -> None:
        self.stop_server()
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.terminate()
            try:
                self.epmd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.epmd.kill()
                self.epmd.wait(timeout=5)
        self.epmd = None

    def __enter__(self) -> RabbitMQNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
