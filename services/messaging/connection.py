"""A consuming connection that outlives broker restarts: shared by every consumer of ours.

`consume_forever` runs one "round" (connect, declare, consume until the connection or the
channel closes) after another, with exponential backoff between failed rounds and a quick
reconnect after a round that was up: messages in flight when a connection died are
redelivered by the broker, so a consumer only has to come back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

log = logging.getLogger(__name__)

RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0


@dataclass(frozen=True)
class Round:
    """An open confirming channel and the event set when it (or its connection) closes."""

    channel: AbstractChannel
    closed: asyncio.Event


@asynccontextmanager
async def open_round(url: str, *, prefetch: int, timeout: float) -> AsyncIterator[Round]:
    connection = await aio_pika.connect(url, timeout=timeout)
    closed = asyncio.Event()
    connection.close_callbacks.add(lambda *_: closed.set())
    try:
        channel = await connection.channel(publisher_confirms=True)
        # A channel closed by the broker (e.g. an ack it refuses) ends the round too.
        channel.close_callbacks.add(lambda *_: closed.set())
        await channel.set_qos(prefetch_count=prefetch)
        yield Round(channel, closed)
    finally:
        if not connection.is_closed:
            await asyncio.shield(connection.close())


async def consume_forever(one_round: Callable[[], Awaitable[None]], *, what: str) -> None:
    """Run `one_round` again and again until cancelled."""
    delay = RECONNECT_MIN_SECONDS
    while True:
        try:
            await one_round()
            log.warning("%s: broker connection closed; reconnecting", what)
            delay = RECONNECT_MIN_SECONDS  # it was up: reconnect quickly
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused, handshake timeout, declare refused...
            log.warning("%s: broker connection failed (%s); retrying in %.1fs", what, exc, delay)
        await asyncio.sleep(delay)
        delay = min(RECONNECT_MAX_SECONDS, delay * 2)


async def republish(
    channel: AbstractChannel,
    message: AbstractIncomingMessage,
    queue: str,
    headers: Mapping[str, Any],
) -> None:
    """Publish a persistent copy of `message` (with `headers` added) straight to `queue` and
    wait for the broker's confirm; the caller acks the original only after that, so a crash
    in between duplicates the message rather than losing it."""
    copy = aio_pika.Message(
        message.body,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        headers={**(message.headers or {}), **headers},
    )
    await channel.default_exchange.publish(copy, routing_key=queue)
