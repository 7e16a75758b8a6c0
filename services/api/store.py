"""Weaviate access: one collection of records (document chunks and table rows).

The async v4 client talks REST (schema, health) and gRPC (writes, queries). It connects
lazily and again after a failed connect, so the API starts and stays up while Weaviate is
down (readiness says so) and recovers without a restart. gRPC reconnect backoff is kept
short for the same reason; the default grows to two minutes.

The collection is created idempotently at start-up (and re-checked after any failure, in
case Weaviate came back empty). Its vectorizer is `text2vec-transformers` pointed (by
Weaviate's own configuration) at the ML service: queries are always vectorized there, and
objects written without a vector too. Object ids are UUIDv5 of (document, sheet, row), so a
retried batch overwrites instead of duplicating.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, GrpcConfig, Timeout
from weaviate.classes.query import Filter, MetadataQuery, Sort
from weaviate.client import WeaviateAsyncClient
from weaviate.exceptions import WeaviateBaseError
from weaviate.util import generate_uuid5

from ..common.tabular import Record
from .settings import ApiSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


def _meta(name: str) -> Property:
    """A metadata property: exact-match filterable, never embedded."""
    return Property(
        name=name, data_type=DataType.TEXT, skip_vectorization=True, tokenization=Tokenization.FIELD
    )


PROPERTIES = [
    _meta("document_id"),
    _meta("source"),
    _meta("kind"),
    _meta("sheet"),
    Property(name="row", data_type=DataType.INT, skip_vectorization=True),
    Property(name="text", data_type=DataType.TEXT),  # the only vectorized property
    Property(
        name="fields",
        data_type=DataType.TEXT,
        skip_vectorization=True,
        index_filterable=False,
        index_searchable=False,
    ),
]
RETURN_PROPERTIES = ["document_id", "source", "kind", "sheet", "row", "text", "fields"]
# Weaviate's QUERY_MAXIMUM_RESULTS default: one delete_many removes at most this many.
DELETE_PAGE = 10_000
WATCHDOG_SECONDS = 0.5
LIVENESS_TIMEOUT_SECONDS = 1.0
GRPC_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class StoreUnavailable(Exception):
    """Weaviate could not be reached or failed the call; the API answers 503."""


@dataclass(frozen=True)
class SearchFilters:
    document_id: str | None = None
    source: str | None = None
    kind: str | None = None
    sheet: str | None = None

    def as_filter(self) -> Any:
        parts = [
            Filter.by_property(name).equal(value)
            for name, value in (
                ("document_id", self.document_id),
                ("source", self.source),
                ("kind", self.kind),
                ("sheet", self.sheet),
            )
            if value is not None
        ]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Filter.all_of(parts)

    def key(self) -> list[str | None]:
        return [self.document_id, self.source, self.kind, self.sheet]


def _hit(obj: Any) -> dict[str, Any]:
    props = obj.properties
    distance = obj.metadata.distance if obj.metadata is not None else None
    try:
        fields = json.loads(props.get("fields") or "{}")
    except ValueError:
        fields = {}
    return {
        "document_id": props.get("document_id"),
        "source": props.get("source"),
        "kind": props.get("kind"),
        "sheet": props.get("sheet") or None,
        "row": props.get("row"),
        "text": props.get("text"),
        "fields": fields,
        "distance": distance,
        # Cosine distance -> similarity in [-1, 1]; higher is closer.
        "score": None if distance is None else 1.0 - float(distance),
    }


class WeaviateStore:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.collection_name = settings.weaviate_collection
        url = urlsplit(settings.weaviate_url)
        self._secure = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._secure else 80)
        self._client: WeaviateAsyncClient | None = None
        self._schema_ok = False
        self._lock = asyncio.Lock()

    # -- connection -------------------------------------------------------------------------

    def _new_client(self) -> WeaviateAsyncClient:
        timeout = self.settings.weaviate_timeout_seconds
        return weaviate.use_async_with_custom(
            http_host=self._host,
            http_port=self._port,
            http_secure=self._secure,
            grpc_host=self._host,
            grpc_port=self.settings.weaviate_grpc_port,
            grpc_secure=self._secure,
            additional_config=AdditionalConfig(
                timeout=Timeout(init=2, query=timeout, insert=timeout),
                grpc_config=GrpcConfig(channel_options=GRPC_OPTIONS),
            ),
            # The default checks ask pypi.org whether the client is outdated: no calls to the
            # internet from a service. Reachability is what `ready()` and the schema check show.
            skip_init_checks=True,
        )

    async def _collection(self) -> Any:
        """The collection handle, connecting and creating the schema first when needed."""
        if self._client is None or not self._schema_ok:
            async with self._lock:
                if self._client is None:
                    client = self._new_client()
                    try:
                        await client.connect()
                    except Exception as exc:
                        await _close_quietly(client)
                        raise StoreUnavailable(f"Weaviate is unreachable: {exc}") from exc
                    self._client = client
                if not self._schema_ok:
                    await self._guard(self._ensure_schema(self._client))
                    self._schema_ok = True
        assert self._client is not None
        return self._client.collections.get(self.collection_name)

    async def _ensure_schema(self, client: WeaviateAsyncClient) -> None:
        if await client.collections.exists(self.collection_name):
            return
        try:
            await client.collections.create(
                self.collection_name,
                description="IndexForge document chunks and table rows",
                properties=PROPERTIES,
                vector_config=Configure.Vectors.text2vec_transformers(
                    source_properties=["text"], vectorize_collection_name=False
                ),
            )
            log.info("created Weaviate collection %s", self.collection_name)
        except WeaviateBaseError:
            # Another replica may have created it between our check and create.
            if not await client.collections.exists(self.collection_name):
                raise

    async def _guard(self, call: Awaitable[T]) -> T:
        """Await a client call; any failure becomes StoreUnavailable (and a schema re-check).

        The client retries an unreachable gRPC endpoint for a minute (1+2+...+32 s sleeps,
        not configurable). A request must not hang that long on a dead Weaviate, so a call
        still running after `WATCHDOG_SECONDS` is raced against REST liveness probes and
        cancelled as soon as Weaviate does not answer them.
        """
        task = asyncio.ensure_future(call)
        deadline = asyncio.get_running_loop().time() + self.settings.weaviate_timeout_seconds
        try:
            done, _ = await asyncio.wait({task}, timeout=WATCHDOG_SECONDS)
            while not done:
                if not await self._live():
                    raise StoreUnavailable("Weaviate is not answering (liveness probe failed)")
                if asyncio.get_running_loop().time() >= deadline:
                    raise StoreUnavailable(
                        f"Weaviate call timed out after {self.settings.weaviate_timeout_seconds}s"
                    )
                done, _ = await asyncio.wait({task}, timeout=WATCHDOG_SECONDS)
            return task.result()
        except StoreUnavailable:
            self._schema_ok = False
            raise
        except (TimeoutError, WeaviateBaseError, OSError) as exc:
            self._schema_ok = False
            raise StoreUnavailable(f"Weaviate call failed: {_short(exc)}") from exc
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _live(self) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            return bool(await asyncio.wait_for(client.is_live(), LIVENESS_TIMEOUT_SECONDS))
        except Exception:
            return False

    async def ready(self) -> bool:
        """Can we serve? REST readiness plus a gRPC count on our collection (what queries use)."""
        try:
            collection = await self._collection()
            assert self._client is not None
            if not await self._client.is_ready():
                return False
            await self._guard(collection.aggregate.over_all(total_count=True))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        if self._client is not None:
            await _close_quietly(self._client)
            self._client = None

    # -- writes -----------------------------------------------------------------------------

    async def insert(
        self,
        *,
        document_id: str,
        source: str,
        kind: str,
        records: Sequence[Record],
        vectors: Sequence[Sequence[float]] | None,
    ) -> None:
        collection = await self._collection()
        objects = [
            DataObject(
                uuid=generate_uuid5(f"{document_id}/{r.sheet}/{r.row}"),
                properties={
                    "document_id": document_id,
                    "source": source,
                    "kind": kind,
                    "sheet": r.sheet,
                    "row": r.row,
                    "text": r.text,
                    "fields": json.dumps(r.fields, ensure_ascii=False),
                },
                vector=list(vectors[i]) if vectors is not None else None,
            )
            for i, r in enumerate(records)
        ]
        result = await self._guard(collection.data.insert_many(objects))
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise StoreUnavailable(
                f"Weaviate refused {len(result.errors)} of {len(objects)} objects: {first.message}"
            )

    async def delete_document(self, document_id: str) -> int:
        """Delete every object of a document; returns how many were removed."""
        collection = await self._collection()
        where = Filter.by_property("document_id").equal(document_id)
        removed = 0
        limit = self.settings.max_rows // DELETE_PAGE + 3  # bounded: a document has <= max_rows
        for _ in range(limit):
            result = await self._guard(collection.data.delete_many(where=where))
            removed += int(result.successful)
            if result.matches < DELETE_PAGE:
                break
        return removed

    # -- reads ------------------------------------------------------------------------------

    async def count(self, document_id: str) -> int:
        collection = await self._collection()
        where = Filter.by_property("document_id").equal(document_id)
        result = await self._guard(collection.aggregate.over_all(filters=where, total_count=True))
        return int(result.total_count or 0)

    async def records(self, document_id: str, *, limit: int) -> list[dict[str, Any]]:
        collection = await self._collection()
        result = await self._guard(
            collection.query.fetch_objects(
                filters=Filter.by_property("document_id").equal(document_id),
                limit=limit,
                sort=Sort.by_property("sheet").by_property("row"),
                return_properties=RETURN_PROPERTIES,
            )
        )
        return [_hit(o) for o in result.objects]

    async def search(
        self, query: str, *, limit: int, filters: SearchFilters
    ) -> list[dict[str, Any]]:
        collection = await self._collection()
        result = await self._guard(
            collection.query.near_text(
                query=query,
                limit=limit,
                filters=filters.as_filter(),
                return_metadata=MetadataQuery(distance=True),
                return_properties=RETURN_PROPERTIES,
            )
        )
        return [_hit(o) for o in result.objects]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


async def _close_quietly(client: WeaviateAsyncClient) -> None:
    try:
        await client.close()
    except Exception:  # closing a client whose server is gone may fail; nothing to do
        log.debug("closing the Weaviate client failed", exc_info=True)
