"""RabbitMQ with the operator's rendered files, for `make stack-up MESSAGING=1` and the tests.

The node reads exactly the rendered conf.d files (`10-indexforge.conf` from the ConfigMap,
`20-auth.conf` from the internal-auth Secret: the generated default user) and
`enabled_plugins`; only addresses change for loopback: the AMQP listener and the Prometheus
port, and the cluster's node list becomes this one node. Everything else is the tests'
private node (`tests/services/rabbitmq.py`: free ports, its own epmd, data under a directory).

In the stack the node runs detached through the stack's ProcessBook, so `make stack-down`
stops it (SIGTERM: the server script stops the node cleanly); the API then runs in queue
mode and one worker (`indexforge-api --worker`) indexes, with the settings the operator
gives them (INDEXFORGE_INGEST_MODE, INDEXFORGE_AMQP_URL).
"""

from __future__ import annotations

import base64
import secrets
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

from indexforge_operator.builders.credentials import (
    RABBITMQ_AUTH_CONF_KEY,
    RABBITMQ_USER,
    build_internal_auth,
)
from indexforge_operator.builders.rabbitmq import CONF_KEY, PLUGINS_KEY, build_rabbitmq
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.procs import ProcessBook
from tests.services.rabbitmq import RabbitMQNode, amqp_ready, rabbitmq_binary


class MessagingError(RuntimeError):
    """rabbitmq-server is missing; the message says how to install it."""


def rendered_broker(
    spec: IndexForgeSpec, names: Names, *, token: Callable[[], str]
) -> tuple[dict[str, str], str, str]:
    """(conf.d files, enabled_plugins, the default user's password) as the operator renders
    them for `spec` (messaging enabled, built-in broker)."""
    generated = complete(spec, current=GeneratedSecrets(), token=token)
    (auth,) = build_internal_auth(names, secrets=generated, messaging=True)
    config = next(o for o in build_rabbitmq(spec, names) if o["kind"] == "ConfigMap")["data"]
    conf_d = {
        "10-indexforge.conf": config[CONF_KEY],
        "20-auth.conf": base64.b64decode(auth["data"][RABBITMQ_AUTH_CONF_KEY]).decode(),
    }
    return conf_d, config[PLUGINS_KEY], generated.rabbitmq_password


def loopback_conf(text: str, *, amqp: int, metrics: int, node: str) -> str:
    """Addresses only: listeners on loopback ports, the node list is this node."""
    out = []
    for line in text.splitlines():
        key = line.split(" = ", 1)[0]
        if key == "listeners.tcp.default":
            line = f"listeners.tcp.1 = 127.0.0.1:{amqp}"
        elif key == "prometheus.tcp.port":
            out.append("prometheus.tcp.ip = 127.0.0.1")
            line = f"prometheus.tcp.port = {metrics}"
        elif key.startswith("cluster_formation.classic_config.nodes."):
            if not key.endswith(".1"):
                continue
            line = f"{key} = {node}"
        out.append(line)
    return "\n".join(out) + "\n"


class RenderedNode(RabbitMQNode):
    """A node whose configuration is the rendered conf.d directory."""

    def __init__(self, workdir: Path, conf_d: dict[str, str], plugins: str) -> None:
        super().__init__(workdir, prometheus=True)
        self.conf_d, self.plugins = conf_d, plugins

    def write_config(self) -> Path:
        assert self.prometheus_port is not None
        directory = self.workdir / "conf.d"
        directory.mkdir(exist_ok=True)
        for name, text in self.conf_d.items():
            if name.startswith("10-"):
                text = loopback_conf(
                    text, amqp=self.amqp_port, metrics=self.prometheus_port, node=self.name
                )
            (directory / name).write_text(text)
        (self.workdir / "enabled_plugins").write_text(self.plugins)
        # The main file stays empty: every setting comes from the rendered conf.d.
        config = self.workdir / "rabbitmq.conf"
        config.write_text("")
        return config

    def env(self) -> dict[str, str]:
        env = super().env()
        env["RABBITMQ_CONFIG_FILES"] = str(self.workdir / "conf.d")
        return env

    def amqp_url(self, user: str, password: str) -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.amqp_port}/"

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.prometheus_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())


def start_broker(
    book: ProcessBook, state: Path, spec: IndexForgeSpec, names: Names, *, deadline: float
) -> str:
    """epmd and the rendered node under `<state>/rabbitmq`; returns the generated user's AMQP
    URL once the node answers the protocol handshake."""
    binary = rabbitmq_binary()
    if binary is None or shutil.which("epmd") is None:
        raise MessagingError("rabbitmq-server is not installed (`make system-deps`)")
    conf_d, plugins, password = rendered_broker(spec, names, token=lambda: secrets.token_hex(16))
    node = RenderedNode(state / "rabbitmq", conf_d, plugins)
    env = node.prepare()
    book.spawn("epmd", node.epmd_argv(), env=env)
    book.spawn("rabbitmq", [binary], env=env, cwd=node.workdir, marker=binary)
    book.wait("rabbitmq", lambda: amqp_ready(node.amqp_port), deadline=deadline, watch=["rabbitmq"])
    url = node.amqp_url(RABBITMQ_USER, password)
    book.record.setdefault("urls", {})["rabbitmq"] = url
    book.record["urls"]["rabbitmq_metrics"] = f"127.0.0.1:{node.prometheus_port}"
    return url


def queue_settings(amqp_url: str) -> dict[str, str]:
    """`service_env` keywords of the API and the worker in queue mode."""
    return {"ingest_mode": "queue", "amqp_url": amqp_url}
