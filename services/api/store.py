"""Weaviate access: one collection of distinct texts, one registry of documents.

The async v4 client talks REST (schema, health) and gRPC (writes, queries). It connects
lazily and again after a failed connect, so the API starts and stays up while Weaviate is
down (readiness says so) and recovers without a restart. gRPC reconnect backoff is kept
short for the same reason; the default grows to two minutes.

Both collections are created idempotently at start-up (and re-checked after any failure,
in case Weaviate came back empty). The records collection's vectorizer is
`text2vec-transformers` pointed (by Weaviate's own configuration) at the ML service:
objects written without a vector and text queries are vectorized there. Its object id is
the content id of the text (`common.identity`), so a text is stored, embedded and indexed
once however many rows hold it; `refs` says which documents and rows those are
(`refs.py`). The documents collection has no vectors: one entry per completed upload.

This module has the primitives (fetch, upsert, delete, the three kinds of query);
`content.py` composes the writes and `ranking.py` the searches.
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
from weaviate.classes.config import Configure, ConsistencyLevel, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, GrpcConfig, Timeout
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery, Sort
from weaviate.client import WeaviateAsyncClient
from weaviate.exceptions import WeaviateBaseError

from ..common.key_file import KeyFile
from . import refs as refs_
from .index_config import replication, vector_index
from .settings import ApiSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


def _meta(name: str, data_type: DataType = DataType.TEXT) -> Property:
    """A metadata property: exact-match filterable, never embedded, not keyword-searched."""
    return Property(
        name=name,
        data_type=data_type,
        skip_vectorization=True,
        tokenization=Tokenization.FIELD,
        index_searchable=False,
    )


def _opaque(name: str) -> Property:
    """Stored and returned only: neither filterable nor searchable."""
    return Property(
        name=name,
        data_type=DataType.TEXT,
        skip_vectorization=True,
        index_filterable=False,
        index_searchable=False,
    )


PROPERTIES = [
    Property(name="text", data_type=DataType.TEXT),  # embedded, and BM25's only property
    _meta("document_ids", DataType.TEXT_ARRAY),
    _meta("sources", DataType.TEXT_ARRAY),
    _meta("kinds", DataType.TEXT_ARRAY),
    _meta("sheets", DataType.TEXT_ARRAY),
    # Where the text was first seen: the sort key of a document's sample records.
    _meta("sheet"),
    Property(name="row", data_type=DataType.INT, skip_vectorization=True),
    _opaque("fields"),
    _opaque("refs"),
]
RETURN_PROPERTIES = ["text", "fields", "refs"]
DOCUMENT_PROPERTIES = [
    _meta("source"),
    _meta("kind"),
    Property(name="records", data_type=DataType.INT),
]
KEYWORD_PROPERTIES = ["text"]
# Weaviate's QUERY_MAXIMUM_RESULTS default: a query returns at most this many objects.
QUERY_MAXIMUM = 10_000
WATCHDOG_SECONDS = 0.5
KEY_RETRY_SECONDS = 5.0  # a changed key file Weaviate refused: when to try it again
LIVENESS_TIMEOUT_SECONDS = 1.0
CONSISTENCY = ConsistencyLevel.QUORUM
GRPC_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


PUBLIC_UNAVAILABLE = "search backend unavailable"


class StoreUnavailable(Exception):
    """Weaviate could not be reached or failed the call; the API answers 503.

    `str(exc)` is the detail for the log (it may name hosts and carry client errors);
    clients get only `public` and the stable `code`.
    """

    def __init__(
        self, detail: str, *, public: str = PUBLIC_UNAVAILABLE, code: str = "search_unavailable"
    ) -> None:
        super().__init__(detail)
        self.public = public
        self.code = code


def refuses_credentials(exc: BaseException) -> bool:
    """Did Weaviate refuse the API key: 401/403 over REST, UNAUTHENTICATED over gRPC (the
    client wraps that in a query error whose context is the gRPC call)?"""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if getattr(seen, "status_code", None) in (401, 403):
            return True
        code = getattr(seen, "code", None)
        if callable(code):
            try:
                if getattr(code(), "name", "") == "UNAUTHENTICATED":
                    return True
            except Exception:
                pass
        if "invalid api key" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True)
class SearchFilters:
    document_id: str | None = None
    source: str | None = None
    kind: str | None = None
    sheet: str | None = None

    def as_filter(self) -> Any:
        """Weaviate's pre-filter: each array property on its own (`refs.matching` is exact)."""
        parts = [
            Filter.by_property(name).contains_any([value])
            for name, value in (
                ("document_ids", self.document_id),
                ("sources", self.source),
                ("kinds", self.kind),
                ("sheets", self.sheet),
            )
            if value is not None
        ]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Filter.all_of(parts)

    def key(self) -> list[str | None]:
        return [self.document_id, self.source, self.kind, self.sheet]

    def matching(self, references: Sequence[refs_.Reference]) -> list[refs_.Reference]:
        return refs_.matching(
            references,
            document_id=self.document_id,
            source=self.source,
            kind=self.kind,
            sheet=self.sheet,
        )


@dataclass
class StoredObject:
    """One distinct text as stored: its references, and its vector when asked for."""

    id: str
    text: str
    fields: str
    refs: list[refs_.Reference]
    vector: Any = None
    # Filled by queries: cosine distance to the query, and the hybrid fusion score.
    distance: float | None = None
    fused: float | None = None

    @property
    def similarity(self) -> float | None:
        return None if self.distance is None else 1.0 - float(self.distance)

    def decoded_fields(self) -> dict[str, Any]:
        try:
            value = json.loads(self.fields or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def content_properties(
    *, text: str, fields: str, references: Sequence[refs_.Reference]
) -> dict[str, Any]:
    """The properties of a records-collection object (filter arrays derived from `refs`)."""
    first = references[0].first_row() if references else None
    return {
        "text": text,
        "fields": fields,
        "refs": refs_.encode(references),
        "sheet": first[0] if first else "",
        "row": first[1] if first else 0,
        **refs_.filter_properties(references),
    }


def _stored(obj: Any, *, with_vector: bool = False) -> StoredObject:
    props = obj.properties
    metadata = obj.metadata
    return StoredObject(
        id=str(obj.uuid),
        text=str(props.get("text") or ""),
        fields=str(props.get("fields") or "{}"),
        refs=refs_.decode(props.get("refs")),
        vector=obj.vector if with_vector else None,
        distance=getattr(metadata, "distance", None) if metadata is not None else None,
    )


def _ids_filter(ids: Sequence[str]) -> Any:
    return Filter.by_id().contains_any(list(ids))


def _and(*filters: Any) -> Any:
    present = [f for f in filters if f is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Filter.all_of(present)


class WeaviateStore:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.collection_name = settings.weaviate_collection
        self.documents_name = f"{settings.weaviate_collection}Documents"
        url = urlsplit(settings.weaviate_url)
        self._secure = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._secure else 80)
        self._client: WeaviateAsyncClient | None = None
        self._schema_ok = False
        self._lock = asyncio.Lock()
        # The key file may change while we run (a key rotation, weaviate_rotation.py): each
        # call checks it and moves to a new client when it did (see _client_ready).
        fallback = settings.weaviate_api_key
        self._keys = KeyFile(
            settings.weaviate_api_key_file,
            fallback=fallback.get_secret_value() if fallback is not None else None,
        )
        self._client_key: str | None = None
        self._retry_key_at = 0.0  # a new key Weaviate refused: try it again after this
        self._retired: set[asyncio.Task[None]] = set()
        # Weaviate refused our API key at the last connect: uploads are refused at once
        # (503) instead of becoming jobs that cannot succeed. Cleared by a good connect.
        self.credentials_refused = False

    # -- connection -------------------------------------------------------------------------

    def _new_client(self, key: str | None) -> WeaviateAsyncClient:
        timeout = self.settings.weaviate_timeout_seconds
        return weaviate.use_async_with_custom(
            auth_credentials=Auth.api_key(key) if key else None,
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

    async def _client_ready(self) -> WeaviateAsyncClient:
        """The connected client, connecting and creating the schema first when needed."""
        key = self._keys.current()
        if self._client is not None and key != self._client_key:
            await self._switch_key(key)
        if self._client is None or not self._schema_ok:
            async with self._lock:
                if self._client is None:
                    key = self._keys.current()
                    client = self._new_client(key)
                    try:
                        await client.connect()
                    except Exception as exc:
                        await _close_quietly(client)
                        self.credentials_refused = refuses_credentials(exc)
                        if self.credentials_refused:
                            raise StoreUnavailable(
                                f"Weaviate refused the API key: {_short(exc)}"
                            ) from exc
                        raise StoreUnavailable(f"Weaviate is unreachable: {exc}") from exc
                    self.credentials_refused = False
                    self._client, self._client_key = client, key
                if not self._schema_ok:
                    await self._guard(self._ensure_schema(self._client))
                    self._schema_ok = True
        assert self._client is not None
        return self._client

    async def _switch_key(self, key: str | None) -> None:
        """Move to a client with the key the file holds now. The old client keeps serving the
        calls already made with it (its key stays valid through the rotation's grace period)
        and is closed once they are over; if Weaviate refuses the new key, the old client stays
        (a file that got ahead of Weaviate) and the new key is tried again a little later."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_key_at:
            return
        async with self._lock:
            if self._client is None or key == self._client_key:
                return
            client = self._new_client(key)
            try:
                await client.connect()
            except Exception as exc:
                await _close_quietly(client)
                self._retry_key_at = loop.time() + KEY_RETRY_SECONDS
                why = "refused" if refuses_credentials(exc) else "could not be reached with"
                log.warning("Weaviate %s the changed API key; kept the previous key: %s",
                            why, _short(exc))  # fmt: skip
                return
            old, self._client, self._client_key = self._client, client, key
            self._retry_key_at = 0.0
            self.credentials_refused = False
            log.info("Weaviate API key file changed: using the new key")
            task = asyncio.ensure_future(self._close_later(old))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    async def _close_later(self, client: WeaviateAsyncClient) -> None:
        try:
            await asyncio.sleep(self.settings.weaviate_timeout_seconds + 1)
        finally:
            await _close_quietly(client)

    async def _collection(self) -> Any:
        return self._handle(await self._client_ready(), self.collection_name)

    async def _documents(self) -> Any:
        return self._handle(await self._client_ready(), self.documents_name)

    @staticmethod
    def _handle(client: WeaviateAsyncClient, name: str) -> Any:
        # QUORUM (Weaviate's default, made explicit): a write is acknowledged by a majority
        # of the copies and a read consults a majority, so reads see every acknowledged write
        # and one lost node of three changes nothing.
        return client.collections.get(name).with_consistency_level(CONSISTENCY)

    async def _ensure_schema(self, client: WeaviateAsyncClient) -> None:
        await self._check_layout(client)
        await self._create(
            client,
            self.collection_name,
            description="IndexForge distinct texts of document chunks and table rows",
            properties=PROPERTIES,
            vector_config=Configure.Vectors.text2vec_transformers(
                source_properties=["text"],
                vectorize_collection_name=False,
                vector_index_config=vector_index(self.settings),
            ),
            replication_config=replication(self.settings),
        )
        await self._create(
            client,
            self.documents_name,
            description=f"IndexForge documents whose records are in {self.collection_name}",
            properties=DOCUMENT_PROPERTIES,
            vector_config=Configure.Vectors.self_provided(
                vector_index_config=Configure.VectorIndex.flat()
            ),
            replication_config=replication(self.settings),
        )
        await self._check_replication(client)

    async def _check_layout(self, client: WeaviateAsyncClient) -> None:
        """Refuse a records collection of the one-object-per-row layout (before issue 16).

        Its objects have no references, so serving from it would answer wrongly; a clear
        error (readiness stays false) is better. Re-index into a new collection name.
        """
        if not await client.collections.exists(self.collection_name):
            return
        config = await client.collections.get(self.collection_name).config.get()
        names = {p.name for p in config.properties}
        missing = {p.name for p in PROPERTIES} - names
        if missing:
            raise StoreUnavailable(
                f"collection {self.collection_name} lacks {sorted(missing)}: it was created "
                "by an older IndexForge (one object per row); set INDEXFORGE_WEAVIATE_COLLECTION "
                "to a new name and upload the documents again",
                public="the search index was created by an older IndexForge and must be "
                "rebuilt (the API log says how)",
                code="search_index_outdated",
            )

    async def _check_replication(self, client: WeaviateAsyncClient) -> None:
        """Warn when an existing collection keeps fewer (or more) copies than configured.

        Weaviate cannot raise a collection's factor by a config update (its shards must be
        copied first), so serving goes on with what there is, and the log says so.
        """
        wanted = self.settings.weaviate_replication_factor
        for name in (self.collection_name, self.documents_name):
            config = await client.collections.get(name).config.get()
            factor = config.replication_config.factor
            if factor != wanted:
                log.warning(
                    "Weaviate collection %s has replication factor %s, configured %s: it was "
                    "created before the change; re-index into a new collection name "
                    "(INDEXFORGE_WEAVIATE_COLLECTION) to change it",
                    name,
                    factor,
                    wanted,
                )

    async def _create(self, client: WeaviateAsyncClient, name: str, **config: Any) -> None:
        if await client.collections.exists(name):
            return
        try:
            await client.collections.create(name, **config)
            log.info("created Weaviate collection %s", name)
        except WeaviateBaseError:
            # Another replica may have created it between our check and create.
            if not await client.collections.exists(name):
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
            if refuses_credentials(exc):
                # Re-read the key file now (not only on its next change) and allow an
                # immediate switch: the next call uses whatever key the file holds.
                self._keys.current(force=True)
                self._retry_key_at = 0.0
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
        retired = list(self._retired)
        for task in retired:
            task.cancel()
        await asyncio.gather(*retired, return_exceptions=True)
        if self._client is not None:
            await _close_quietly(self._client)
            self._client = None

    # -- records collection -------------------------------------------------------------

    async def fetch(self, ids: Sequence[str], *, with_vectors: bool) -> dict[str, StoredObject]:
        """The stored objects among `ids` (absent ids are simply missing from the answer)."""
        if not ids:
            return {}
        collection = await self._collection()
        result = await self._guard(
            collection.query.fetch_objects(
                filters=_ids_filter(ids),
                limit=len(ids),
                include_vector=with_vectors,
                return_properties=RETURN_PROPERTIES,
            )
        )
        found = [_stored(o, with_vector=with_vectors) for o in result.objects]
        return {o.id: o for o in found}

    async def upsert(self, objects: Sequence[DataObject[Any, Any]]) -> None:
        """Write whole objects (an existing id is replaced)."""
        collection = await self._collection()
        result = await self._guard(collection.data.insert_many(list(objects)))
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise StoreUnavailable(
                f"Weaviate refused {len(result.errors)} of {len(objects)} objects: {first.message}"
            )

    async def delete_ids(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        collection = await self._collection()
        result = await self._guard(collection.data.delete_many(where=_ids_filter(ids)))
        return int(result.successful)

    async def objects_of_document(
        self, document_id: str, *, limit: int, with_vectors: bool
    ) -> list[StoredObject]:
        """Up to `limit` objects referenced by a document, by where it first held them."""
        collection = await self._collection()
        result = await self._guard(
            collection.query.fetch_objects(
                filters=SearchFilters(document_id=document_id).as_filter(),
                limit=min(limit, QUERY_MAXIMUM),
                include_vector=with_vectors,
                sort=Sort.by_property("sheet").by_property("row"),
                return_properties=RETURN_PROPERTIES,
            )
        )
        return [_stored(o, with_vector=with_vectors) for o in result.objects]

    async def object_count(self) -> int:
        collection = await self._collection()
        result = await self._guard(collection.aggregate.over_all(total_count=True))
        return int(result.total_count or 0)

    # -- queries ----------------------------------------------------------------------------

    async def near(
        self,
        query: str,
        vector: Sequence[float] | None,
        *,
        limit: int,
        filters: Any,
        ids: Sequence[str] | None = None,
    ) -> list[StoredObject]:
        """Nearest objects to the query vector (or the query text, vectorized by Weaviate).

        With `ids`, only those objects are compared, by brute force (an allow-list below
        the index's flat-search cutoff): their exact distances.
        """
        collection = await self._collection()
        where = _and(filters, _ids_filter(ids) if ids else None)
        common: dict[str, Any] = {
            "limit": limit,
            "filters": where,
            "return_metadata": MetadataQuery(distance=True),
            "return_properties": RETURN_PROPERTIES,
        }
        if vector is not None:
            call = collection.query.near_vector(near_vector=list(vector), **common)
        else:
            call = collection.query.near_text(query=query, **common)
        result = await self._guard(call)
        return [_stored(o) for o in result.objects]

    async def keyword(self, query: str, *, limit: int, filters: Any) -> list[StoredObject]:
        """BM25 matches of the query's words in the text (no vectors involved)."""
        collection = await self._collection()
        result = await self._guard(
            collection.query.bm25(
                query=query,
                query_properties=KEYWORD_PROPERTIES,
                limit=limit,
                filters=filters,
                return_metadata=MetadataQuery(score=True),
                return_properties=RETURN_PROPERTIES,
            )
        )
        return [_stored(o) for o in result.objects]

    async def hybrid(
        self,
        query: str,
        vector: Sequence[float] | None,
        *,
        alpha: float,
        limit: int,
        filters: Any,
    ) -> list[StoredObject]:
        """Weaviate's fusion of BM25 and vector search (relative scores, weighted by alpha)."""
        collection = await self._collection()
        result = await self._guard(
            collection.query.hybrid(
                query=query,
                vector=list(vector) if vector is not None else None,
                alpha=alpha,
                fusion_type=HybridFusion.RELATIVE_SCORE,
                query_properties=KEYWORD_PROPERTIES,
                limit=limit,
                filters=filters,
                return_metadata=MetadataQuery(score=True),
                return_properties=RETURN_PROPERTIES,
            )
        )
        found = [_stored(o) for o in result.objects]
        for obj, raw in zip(found, result.objects, strict=True):
            obj.fused = raw.metadata.score if raw.metadata is not None else None
        return found

    # -- documents collection ---------------------------------------------------------------

    async def document(self, document_id: str) -> dict[str, Any] | None:
        documents = await self._documents()
        obj = await self._guard(documents.query.fetch_object_by_id(document_id))
        return dict(obj.properties) if obj is not None else None

    async def put_document(self, document_id: str, *, source: str, kind: str, records: int) -> None:
        documents = await self._documents()
        properties = {"source": source, "kind": kind, "records": records}
        result = await self._guard(
            documents.data.insert_many([DataObject(uuid=document_id, properties=properties)])
        )
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise StoreUnavailable(f"Weaviate refused the document entry: {first.message}")

    async def drop_document(self, document_id: str) -> bool:
        documents = await self._documents()
        result = await self._guard(documents.data.delete_many(where=_ids_filter([document_id])))
        return bool(result.successful)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


async def _close_quietly(client: WeaviateAsyncClient) -> None:
    try:
        await client.close()
    except Exception:  # closing a client whose server is gone may fail; nothing to do
        log.debug("closing the Weaviate client failed", exc_info=True)
