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
import re
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest

from indexforge_operator.builders import ports
from indexforge_operator.builders.credentials import RABBITMQ_USER
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.services.rabbitmq import rabbitmq_binary
from tests.stack.messaging import RenderedNode, loopback_conf, rendered_broker
from tests.waiting import wait_for

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
    return rendered_broker(SPEC, NAMES, token=lambda: "s3cr3t-" + "x" * 24)


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
