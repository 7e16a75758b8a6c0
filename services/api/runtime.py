"""The API's live objects (Weaviate store, upstream clients, jobs, ingestor, counters).

Built with the app; `lifespan` starts the background parts and tries the schema once (a
Weaviate that is down at start-up only makes the pod unready, it does not stop it).
Routes reach everything through the `Api` dependency.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from ..common.app import ServiceContext
from ..common.tracing import tracer
from ..messaging.consumer import Consumer, RetryPolicy
from ..messaging.metrics import QueueMetrics
from ..messaging.payloads import PayloadStore
from ..messaging.publisher import Publisher
from ..messaging.topology import Names
from .consumers import ConsumerCounter, consumer_of
from .content import ContentWriter
from .ingest import Ingestor
from .job_events import JobEventMetrics, JobProjection
from .jobs import JobStore
from .metrics import ApiMetrics
from .queued import QueuedIngest
from .settings import ApiSettings
from .state import state_cache, state_redis
from .store import WeaviateStore
from .upload_slots import UploadSlots
from .upstream import Upstream
from .write_lock import WriteLock, redis_lock

log = logging.getLogger(__name__)


class ApiService:
    def __init__(self, settings: ApiSettings, ctx: ServiceContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.metrics = ApiMetrics(ctx.registry)
        # Job records, queued uploads, cache tag sets and the write lock: never evicted.
        self.state_redis = state_redis(settings)
        self.state = state_cache(settings, self.state_redis, ctx.registry)
        if settings.has_state_redis:  # (else both are the one cache Redis)
            ctx.cache.tag_redis = self.state_redis
        self.store = WeaviateStore(settings)
        self.writer = ContentWriter(self.store, lock=self._write_lock())
        self.uploads = UploadSlots(
            settings.max_concurrent_uploads,
            in_progress=self.metrics.uploads_in_progress,
            refused=self.metrics.uploads_refused,
        )
        self.jobs = JobStore(self.state, ttl=settings.cache_session_ttl_seconds)
        self.excel = self._upstream(
            "Excel processor", settings.excel_url, settings.excel_timeout_seconds
        )
        self.ml = self._upstream("ML service", settings.ml_url, 60.0)
        self.consumers = ConsumerCounter(
            ctx.cache.redis,
            self.metrics,
            namespace=settings.cache_namespace,
            window_seconds=settings.rate_limit_window_seconds,
        )
        self.ingestor = Ingestor(
            settings,
            store=self.store,
            writer=self.writer,
            jobs=self.jobs,
            cache=ctx.cache,
            metrics=self.metrics,
            excel=self.excel,
            ml=self.ml,
            tracer=tracer(ctx.tracer_provider, "indexforge.api"),
        )
        self.queue: QueuedIngest | None = None
        self.consumer: Consumer | None = None
        self.projection: JobProjection | None = None
        if settings.ingest_mode == "queue":
            self._queue_mode()
        # Required until it first answers: a pod that cannot reach or use Weaviate at all
        # (credentials, collection) never serves; a later outage keeps pods in the Service
        # and search/upload routes answer 503 with Retry-After meanwhile.
        ctx.health.add("weaviate", self.store.ready, until_first_success=True)
        if self.queue is not None:
            # Not required: search works without the broker; uploads answer 503 meanwhile.
            ctx.health.add("rabbitmq", self.queue.publisher.healthy, required=False)
        if self.state.enabled:
            # Not required: job records fall back to this pod's memory meanwhile.
            ctx.health.add("redis-state", self.state.ping, required=False)
        if self.excel is not None:
            ctx.health.add("excel", self.excel.healthy, required=False)
        if self.ml is not None:
            ctx.health.add("ml", self.ml.healthy, required=False)

    def _write_lock(self) -> WriteLock | None:
        """Queue mode: workers in other processes merge the same objects, lock in Redis."""
        s = self.settings
        if s.ingest_mode != "queue" or self.state_redis is None:
            return None
        name = f"{s.cache_namespace}:content-write-lock:{s.weaviate_collection}"
        # Two Weaviate calls are made under the lock, each bounded by the timeout.
        return redis_lock(self.state_redis, name, ttl=2 * s.weaviate_timeout_seconds + 5)

    def _queue_mode(self) -> None:
        s = self.settings
        url = s.resolved_amqp_url()
        redis = self.state_redis
        if url is None or redis is None:  # the settings validator makes this unreachable
            raise RuntimeError("ingest_mode=queue needs amqp_url and a (state) Redis")
        names = Names(s.queue_prefix)
        policy = RetryPolicy(
            max_attempts=s.queue_max_attempts,
            base_seconds=s.queue_retry_base_seconds,
            cap_seconds=s.queue_retry_max_seconds,
        )
        metrics = QueueMetrics(self.ctx.registry)
        self.publisher = Publisher(
            url, names, metrics=metrics, confirm_timeout=s.queue_confirm_timeout_seconds
        )
        payloads = PayloadStore(redis, namespace=s.cache_namespace, ttl=s.cache_session_ttl_seconds)
        self.queue = QueuedIngest(
            ingestor=self.ingestor,
            jobs=self.jobs,
            payloads=payloads,
            publisher=self.publisher,
            policy=policy,
        )
        if s.ingest_worker:
            self.projection = JobProjection(
                url, names, self.jobs, metrics=JobEventMetrics(self.ctx.registry)
            )
            self.consumer = Consumer(
                url,
                names,
                self.queue.handle,
                prefetch=s.queue_prefetch,
                policy=policy,
                metrics=metrics,
            )

    def _upstream(self, name: str, url: str | None, timeout: float) -> Upstream | None:
        if url is None:
            return None
        s = self.settings
        return Upstream(
            name,
            url,
            timeout=timeout,
            attempts=s.upstream_retry_attempts,
            breaker_threshold=s.upstream_breaker_threshold,
            breaker_reset_seconds=s.upstream_breaker_reset_seconds,
            token=self.ctx.gateway_tokens.outgoing,
        )

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        if await self.store.ready():
            self.ctx.health.passed("weaviate")
        else:
            log.warning("Weaviate is not reachable yet; /readyz stays false until it is")
        self.ingestor.start()
        if self.consumer is not None:
            self.consumer.start()
        if self.projection is not None:
            self.projection.start()
        try:
            yield
        finally:
            if self.consumer is not None:
                await self.consumer.stop()
            if self.projection is not None:
                await self.projection.stop()
            if self.queue is not None:
                await self.queue.publisher.close()
            await self.ingestor.stop()
            for upstream in (self.excel, self.ml):
                if upstream is not None:
                    await upstream.close()
            await self.store.close()
            await self.state.close()


def get_api(request: Request) -> ApiService:
    service = request.app.state.api_service
    assert isinstance(service, ApiService)
    return service


Api = Annotated[ApiService, Depends(get_api)]


async def count_consumer(request: Request) -> None:
    """Router dependency: one tick of the caller's per-consumer counter (Kong's consumer
    headers count only on an authenticated hop, see `consumer_of`)."""
    await get_api(request).consumers.count(consumer_of(request))
