"""The control loop around single passes: work queue, workers, backoff, resync, leadership.

kopf-free asyncio. ``handlers.py`` feeds it (watch events become queue adds, kopf indexes
become the lookups below); a fixed number of workers run passes, each in a thread because the
Kubernetes client is synchronous. Passes of one CR never overlap (the queue guarantees it),
different CRs run concurrently, and an idle CR holds no task or thread.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from indexforge_operator import metrics
from indexforge_operator.backoff import Backoff
from indexforge_operator.children import ChildView
from indexforge_operator.events import EventRecorder
from indexforge_operator.kube import Kube, NotLeader, error_message
from indexforge_operator.leader import LeaderElector
from indexforge_operator.reconciler import GROUP, PLURAL, VERSION, Outcome, reconcile
from indexforge_operator.workqueue import WorkQueue

Obj = dict[str, Any]
Key = tuple[str, str]  # namespace, name
log = logging.getLogger("indexforge_operator")


@dataclass(frozen=True)
class Integrations:
    """Which optional CRDs exist at the start of a pass (read once, so a pass is coherent)."""

    prometheus_operator: bool
    alertmanager_configs: bool | None  # None: as prometheus_operator
    rabbitmq_cluster: bool
    keda: bool
    rabbitmq_topology: bool
    istio: bool
    external_secrets: bool = False


@dataclass(frozen=True)
class Timing:
    """Seconds. ``resync`` is the safety net only: watches deliver every change sooner."""

    resync: float = 600.0
    progressing_requeue: float = 10.0  # while rolling out, in case no child event arrives
    child_event_delay: float = 0.3  # coalesce the burst of events one apply causes
    workers: int = 4


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Controller:
    kube: Kube
    recorder: EventRecorder
    lookup: Callable[[Key], Obj | None]  # the CR as last seen by the watch
    children: Callable[[str], ChildView]  # snapshot of our children in a namespace
    prometheus_operator: Callable[[], bool]
    known_keys: Callable[[], list[Key]]  # every CR the watches know
    # Whether the AlertmanagerConfig CRD exists (None: as prometheus_operator).
    alertmanager_configs: Callable[[], bool | None] = lambda: None
    # Whether the RabbitmqCluster and KEDA ScaledObject CRDs exist.
    rabbitmq_cluster: Callable[[], bool] = lambda: False
    keda: Callable[[], bool] = lambda: False
    # Whether the messaging topology operator's CRDs exist.
    rabbitmq_topology: Callable[[], bool] = lambda: False
    # Whether Istio's CRDs exist (mesh.mode auto).
    istio: Callable[[], bool] = lambda: False
    # Whether the ExternalSecret CRD exists (secrets.provider externalSecrets).
    external_secrets: Callable[[], bool] = lambda: False
    timing: Timing = field(default_factory=Timing)
    queue: WorkQueue[Key] = field(default_factory=WorkQueue)
    backoff: Backoff = field(default_factory=Backoff)
    leading: asyncio.Event = field(default_factory=asyncio.Event)
    caches_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _last_status: dict[Key, Obj] = field(default_factory=dict)

    # -- triggers -------------------------------------------------------------------------
    def enqueue(self, key: Key, *, delay: float = 0.0) -> None:
        self.queue.add_after(key, delay)

    def enqueue_all(self, *, spread: float = 0.0) -> None:
        """Every known CR, spread over ``spread`` seconds so a resync is not a thundering herd."""
        for key in self.known_keys():
            self.queue.add_after(key, random.uniform(0, spread) if spread else 0.0)

    def forget(self, key: Key) -> None:
        self.queue.forget(key)
        self.backoff.succeeded(key)
        self._last_status.pop(key, None)
        metrics.forget(namespace=key[0], name=key[1])

    # -- long-running tasks ---------------------------------------------------------------
    async def worker(self) -> None:
        while True:
            await self.leading.wait()
            await self.caches_ready.wait()
            key = await self.queue.get()
            try:
                if self.leading.is_set():
                    await self.process(key)
                else:
                    self.queue.add_after(key, 1.0)  # the next leader (maybe us) takes it
            finally:
                self.queue.done(key)

    async def resync_loop(self) -> None:
        await self.caches_ready.wait()
        while True:
            await asyncio.sleep(self.timing.resync)
            if self.leading.is_set():
                self.enqueue_all(spread=min(30.0, self.timing.resync / 10))

    async def lead(self, elector: LeaderElector | None) -> None:
        """Hold leadership (always, without an elector); (re)queue everything on gaining it."""
        if elector is None:
            self._gained()
            return
        try:
            while True:
                leading = await asyncio.to_thread(elector.step)
                if leading and not self.leading.is_set():
                    log.info("leader election: this replica leads (%s)", elector.config.identity)
                    self._gained()
                elif not leading and self.leading.is_set():
                    log.warning("leader election: leadership lost; writes stop")
                    self.leading.clear()
                    metrics.LEADER.set(0)
                await asyncio.sleep(elector.config.retry)
        finally:
            self.leading.clear()
            await asyncio.to_thread(elector.release)

    def _gained(self) -> None:
        self.leading.set()
        metrics.LEADER.set(1)
        self.enqueue_all()

    # -- one pass ---------------------------------------------------------------------------
    async def process(self, key: Key) -> None:
        body = self.lookup(key)
        if body is None:
            self.forget(key)
            return
        view = self.children(key[0])
        integrations = Integrations(
            prometheus_operator=self.prometheus_operator(),
            alertmanager_configs=self.alertmanager_configs(),
            rabbitmq_cluster=self.rabbitmq_cluster(),
            keda=self.keda(),
            rabbitmq_topology=self.rabbitmq_topology(),
            istio=self.istio(),
            external_secrets=self.external_secrets(),
        )
        started = time.monotonic()
        try:
            outcome = await asyncio.to_thread(self._pass, key, body, view, integrations)
        except NotLeader:
            return  # the new leader reconciles it
        except (ApiException, HTTPError, OSError) as exc:
            metrics.record_failure()
            delay = self.backoff.failed(key)
            # The server's message, never a request body (it may carry a Secret we sent).
            detail = error_message(exc) if isinstance(exc, ApiException) else repr(exc)
            log.warning("reconcile %s/%s failed: %s; retry in %.0fs", *key, detail, delay)
            self.queue.add_after(key, delay)
            return
        metrics.record_pass(
            namespace=key[0],
            name=key[1],
            seconds=time.monotonic() - started,
            writes=outcome.writes,
            pruned=len(outcome.pruned),
        )
        self._schedule_next(key, outcome)

    def _schedule_next(self, key: Key, outcome: Outcome) -> None:
        phase = (outcome.status or {}).get("phase")
        if outcome.failures or phase == "Degraded":
            delay = self.backoff.failed(key)
            log.warning("reconcile %s/%s: %s; retry in %.0fs", *key,
                        "; ".join(m for _, m in outcome.failures) or phase, delay)  # fmt: skip
            self.queue.add_after(key, delay)
            return
        self.backoff.succeeded(key)
        if phase == "Progressing":
            self.queue.add_after(key, self.timing.progressing_requeue)
        if outcome.requeue_after is not None:  # e.g. a key rotation's grace period ends
            self.queue.add_after(key, outcome.requeue_after)

    def _pass(self, key: Key, body: Obj, view: ChildView, integrations: Integrations) -> Outcome:
        """Runs in a worker thread: reconcile, then status and Events (sync client)."""
        full: Obj = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "IndexForge",
            "metadata": dict(body.get("metadata", {})),
            "spec": dict(body.get("spec") or {}),
            # What we wrote last may not have come back through the watch yet: judging
            # transitions against a stale status would repeat or lose Events.
            "status": dict(self._last_status.get(key) or body.get("status") or {}),
        }
        outcome = reconcile(
            self.kube,
            full,
            view=view,
            prometheus_operator=integrations.prometheus_operator,
            alertmanager_configs=integrations.alertmanager_configs,
            rabbitmq_cluster=integrations.rabbitmq_cluster,
            keda=integrations.keda,
            rabbitmq_topology=integrations.rabbitmq_topology,
            istio=integrations.istio,
            external_secrets=integrations.external_secrets,
            now=_now(),
        )
        if outcome.status is None:
            return outcome
        # Before the status write: whoever sees Ready in status sees it in the gauge too.
        metrics.set_ready(
            namespace=key[0], name=key[1], ready=outcome.status.get("phase") == "Ready"
        )
        current = {k: full["status"].get(k) for k in outcome.status}
        if current != outcome.status:
            try:
                self.kube.patch_status(GROUP, VERSION, PLURAL, full["metadata"], outcome.status)
            except ApiException as exc:
                if exc.status != 404:  # deleted meanwhile: nothing to report to
                    raise
        self._last_status[key] = {**full["status"], **outcome.status}
        for kind, reason, message in outcome.events:
            self.recorder.post(full, kind=kind, reason=reason, message=message)
        if outcome.writes or outcome.pruned:
            log.info("%s/%s: applied %d changed objects, pruned %d",
                     *key, outcome.writes, len(outcome.pruned))  # fmt: skip
        return outcome
