"""Publish messages with publisher confirms; a broker that cannot take one is `QueueUnavailable`.

One connection and one confirming channel per process, opened on first use (a broker that
is down at start-up does not stop the API, it only makes uploads 503) and dropped on any
error, so the next publish connects afresh. `publish` returns only once the broker has
confirmed the message to disk on its queue(s); a returned (unroutable) message is an error
too, so nothing the API answered 202 for is silently lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from .metrics import QueueMetrics
from .schemas import Message, encode
from .topology import INGEST_REQUESTED, JOB_OUTCOMES, Names, Topology, declare

log = logging.getLogger(__name__)


# Types whose loss would lose a job or its outcome: unroutable is an error, not a drop.
MANDATORY = frozenset({INGEST_REQUESTED, *JOB_OUTCOMES})


class QueueUnavailable(Exception):
    """The broker did not confirm: nothing can be promised to the client."""


class Publisher:
    def __init__(
        self,
        url: str,
        names: Names,
        *,
        metrics: QueueMetrics | None = None,
        connect_timeout: float = 3.0,
        confirm_timeout: float = 5.0,
    ) -> None:
        self.metrics = metrics
        self.url = url
        self.names = names
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._topology: Topology | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> Topology:
        async with self._lock:
            if self._topology is not None and self._channel and not self._channel.is_closed:
                return self._topology
            await self._drop()
            self._connection = await aio_pika.connect(self.url, timeout=self.connect_timeout)
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._topology = await declare(self._channel, self.names)
            return self._topology

    async def _drop(self) -> None:
        connection, self._connection, self._channel, self._topology = (
            self._connection,
            None,
            None,
            None,
        )
        if connection is not None and not connection.is_closed:
            try:
                await asyncio.wait_for(connection.close(), timeout=self.connect_timeout)
            except Exception as exc:  # closing a broken connection may fail in many ways
                log.debug("closing the broker connection failed: %s", exc)

    async def publish(self, message: Message, *, headers: Mapping[str, Any] | None = None) -> None:
        """Validate, publish persistently to the events exchange, wait for the confirm."""
        body = encode(message)  # raises on an invalid message: a bug, not an outage
        try:
            topology = await self._ready()
            await topology.exchange.publish(
                aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=str(message.id),
                    correlation_id=message.correlation_id,
                    type=message.type,
                    headers=dict(headers or {}),
                ),
                routing_key=message.type,
                mandatory=message.type in MANDATORY,
                timeout=self.confirm_timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection refused, closed, timeout, nack, returned
            log.warning("publish of %s failed: %s", message.type, exc)
            if self.metrics is not None:
                self.metrics.publish_failures.labels(message.type).inc()
            async with self._lock:
                await self._drop()
            raise QueueUnavailable(f"the broker did not confirm: {type(exc).__name__}") from exc

    async def healthy(self) -> bool:
        try:
            await self._ready()
        except Exception:
            return False
        return True

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
