"""Where an accepted upload waits for its worker: one msgpack value in the app Redis, with a TTL.

Why Redis and not the message or a volume:
* A message carries ids only (brokers are poor at megabytes: quorum queues keep every message
  in memory and on disk per replica, and a 50 MB body stalls the channel of everyone else).
* A shared volume needs ReadWriteMany storage, which many clusters do not have; the worker
  must be free to run in another pod, on another node.
* The app Redis is already shared by every API pod (job records live there) and has the
  right lifetime semantics: the value expires with the job record (`cache_session_ttl_seconds`)
  if no worker ever takes it, and the worker deletes it once the job has ended.

What is stored is what the API already checked: text/CSV records (so the worker never
re-reads the file) or a workbook's bytes (read by the Excel processor inside the job, as
in the in-process path). The cost: the app Redis must have room for the uploads queued at
once (each at most `max_upload_bytes`); a value evicted or expired before a worker ran is
a failed job (`payload_expired`), never a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..common.tabular import Record

FORMAT = 1


class PayloadUnavailable(Exception):
    """Redis could not be reached: retry later (the payload may well be there)."""


@dataclass(frozen=True)
class Payload:
    kind: str
    source: str
    digest: str
    size: int
    records: list[Record]
    workbook: bytes | None = None


def encode(payload: Payload) -> bytes:
    body: dict[str, Any] = {
        "format": FORMAT,
        "kind": payload.kind,
        "source": payload.source,
        "digest": payload.digest,
        "size": payload.size,
        "records": [[r.sheet, r.row, r.fields, r.text] for r in payload.records],
        "workbook": payload.workbook,
    }
    return bytes(msgpack.packb(body, use_bin_type=True))


def decode(raw: bytes) -> Payload:
    body = msgpack.unpackb(raw, raw=False)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ValueError("unknown payload format")
    return Payload(
        kind=str(body["kind"]),
        source=str(body["source"]),
        digest=str(body["digest"]),
        size=int(body["size"]),
        records=[
            Record(sheet=s, row=int(row), fields=fields, text=text)
            for s, row, fields, text in body["records"]
        ],
        workbook=body.get("workbook"),
    )


class PayloadStore:
    def __init__(self, redis: Redis, *, namespace: str, ttl: float) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl = ttl

    def key(self, job_id: str) -> str:
        return f"{self.namespace}:ingest-payload:{job_id}"

    async def put(self, job_id: str, payload: Payload) -> str:
        key = self.key(job_id)
        try:
            await self.redis.set(key, encode(payload), px=int(self.ttl * 1000))
        except RedisError as exc:
            raise PayloadUnavailable(str(exc)) from exc
        return key

    async def get(self, key: str) -> Payload | None:
        """The payload, or None when it expired or was evicted."""
        try:
            raw = await self.redis.get(key)
        except RedisError as exc:
            raise PayloadUnavailable(str(exc)) from exc
        return decode(raw) if isinstance(raw, bytes) else None

    async def delete(self, key: str) -> None:
        try:
            await self.redis.delete(key)
        except RedisError as exc:
            raise PayloadUnavailable(str(exc)) from exc
