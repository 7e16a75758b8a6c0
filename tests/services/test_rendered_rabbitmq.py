"""The operator's rendered RabbitMQ files on a real broker (Debian `rabbitmq-server` 3.10).

The node reads exactly the rendered conf.d files (`10-indexforge.conf` from the ConfigMap,
`20-auth.conf` from the internal-auth Secret) and `enabled_plugins`; only addresses are
rewritten for loopback: the AMQP listener and the Prometheus port, and the cluster's node
list becomes this one node. What must hold: the generated user (and only it, with its
password) connects and declares quorum queues, the prometheus plugin serves metrics, and the
memory and disk alarms sit where the spec's limits put them.
"""

from __future__ import annotations

import asyncio
import base64
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from indexforge_operator.builders import ports
from indexforge_operator.builders.credentials import (
    RABBITMQ_AUTH_CONF_KEY,
    RABBITMQ_USER,
    build_internal_auth,
)
from indexforge_operator.builders.rabbitmq import CONF_KEY, PLUGINS_KEY, build_rabbitmq
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.waiting import wait_for

from .rabbitmq import RabbitMQNode, rabbitmq_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        rabbitmq_binary() is None, reason="rabbitmq-server not installed (`make system-deps`)"
    ),
]
NAMES = Names(instance="demo", namespace="shop")
MEMORY_LIMIT = 768 * 1024 * 1024
SPEC = IndexForgeSpec.model_validate(
    {
        "messaging": {
            "enabled": True,
            "rabbitmq": {
                "replicas": 1,
                "resources": {"limits": {"memory": "768Mi"}},
                # Small enough that the test machine's free disk is above the alarm.
                "persistence": {"size": "200Mi"},
            },
        }
    }
)


def _rendered() -> tuple[dict[str, str], str, str]:
    """(conf.d files, enabled_plugins, password) exactly as the operator renders them."""
    secrets = complete(SPEC, current=GeneratedSecrets(), token=lambda: "s3cr3t-" + "x" * 24)
    (auth,) = build_internal_auth(NAMES, secrets=secrets, messaging=True)
    config = next(o for o in build_rabbitmq(SPEC, NAMES) if o["kind"] == "ConfigMap")["data"]
    conf_d = {
        "10-indexforge.conf": config[CONF_KEY],
        "20-auth.conf": base64.b64decode(auth["data"][RABBITMQ_AUTH_CONF_KEY]).decode(),
    }
    return conf_d, config[PLUGINS_KEY], secrets.rabbitmq_password


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

    def _write_config(self) -> Path:
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

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env["RABBITMQ_CONFIG_FILES"] = str(self.workdir / "conf.d")
        return env

    def amqp_url(self, user: str, password: str) -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.amqp_port}/"

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.prometheus_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RenderedNode, str]]:
    conf_d, plugins, password = _rendered()
    broker = RenderedNode(tmp_path_factory.mktemp("rendered-rabbitmq"), conf_d, plugins)
    broker.start()
    try:
        yield broker, password
    finally:
        broker.stop()


def _gauge(text: str, metric: str) -> float:
    match = re.search(rf"^{metric}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    assert match, f"{metric} not exported"
    return float(match.group(1))


async def _declare_quorum_queue(url: str) -> dict[str, Any]:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            "rendered-check", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await channel.default_exchange.publish(
            aio_pika.Message(b"kept", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
        )
        message = await queue.get(timeout=10)
        await message.ack()
        return {"body": message.body, "queue": queue.name}


def test_the_generated_user_connects_and_uses_quorum_queues(
    node: tuple[RenderedNode, str],
) -> None:
    broker, password = node
    result = asyncio.run(_declare_quorum_queue(broker.amqp_url(RABBITMQ_USER, password)))
    assert result["body"] == b"kept"


@pytest.mark.parametrize(
    ("user", "password"),
    [(RABBITMQ_USER, "wrong-password"), ("someone-else", None)],
)
def test_a_wrong_password_or_user_is_refused(
    node: tuple[RenderedNode, str], user: str, password: str | None
) -> None:
    broker, real = node
    with pytest.raises(aio_pika.exceptions.ProbableAuthenticationError):
        asyncio.run(aio_pika.connect(broker.amqp_url(user, password or real), timeout=10))


def test_the_prometheus_plugin_and_the_alarm_thresholds(node: tuple[RenderedNode, str]) -> None:
    broker, _ = node
    text = broker.metrics()
    # total_memory_available_override_value x vm_memory_high_watermark.relative
    limit = _gauge(text, "rabbitmq_resident_memory_limit_bytes")
    assert limit == pytest.approx(MEMORY_LIMIT * 0.6, rel=0.01)
    # disk_free_limit: a tenth of the volume
    disk = _gauge(text, "rabbitmq_disk_space_available_limit_bytes")
    assert disk == 200 * 1024 * 1024 // 10
    assert broker.prometheus_port != ports.RABBITMQ_METRICS  # really rewritten to loopback


def test_queues_have_their_own_series(node: tuple[RenderedNode, str]) -> None:
    """prometheus.return_per_object_metrics: the alerts select the ingest queue and the DLQ."""
    broker, password = node
    asyncio.run(_declare_quorum_queue(broker.amqp_url(RABBITMQ_USER, password)))
    series = 'rabbitmq_queue_messages{vhost="/",queue="rendered-check"}'
    wait_for(lambda: series in broker.metrics(), timeout=30, what="per-queue series")


def test_the_loopback_rewrite_touches_addresses_only() -> None:
    conf_d, _, _ = _rendered()
    original = conf_d["10-indexforge.conf"].splitlines()
    rewritten = loopback_conf(conf_d["10-indexforge.conf"], amqp=1, metrics=2, node="n@h")
    changed = set(original) - set(rewritten.splitlines())
    assert {line.split(" = ")[0] for line in changed} == {
        "listeners.tcp.default",
        "prometheus.tcp.port",
        "cluster_formation.classic_config.nodes.1",
    }
