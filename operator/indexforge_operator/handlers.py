"""kopf handlers: one reconcile loop per IndexForge, level-triggered.

A daemon per CR is the single writer for that CR's children and status: it reconciles at once
when the spec (generation) or the pause annotation changes, every couple of seconds while the
stack is still coming up, and every ``INDEXFORGE_RESYNC_SECONDS`` once Ready, which is the
drift check (a deleted Deployment, a hand-scaled replica count, an edited Secret). One writer
per CR means create/update handlers and a timer can never race each other.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from typing import Any

import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from indexforge_operator import metrics
from indexforge_operator.kube import Kube
from indexforge_operator.reconciler import PAUSED_ANNOTATION, reconcile

GROUP = "indexforge.io"
VERSION = "v1alpha1"
PLURAL = "indexforges"
RESYNC_SECONDS = float(os.environ.get("INDEXFORGE_RESYNC_SECONDS", "30"))
SETTLING_SECONDS = 2.0  # cadence while the stack is not Ready yet
TICK_SECONDS = 0.5  # how quickly a spec change is noticed
log = logging.getLogger("indexforge_operator")


def _api_client() -> k8s.ApiClient:
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING  # kopf's own per-handler chatter is not news
    # A post that fails twice (e.g. into a terminating namespace) is dropped rather than
    # retried for a minute while holding one of the poster's workers.
    settings.posting.default_backoffs = (1, 2)
    settings.execution.max_workers = 8
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    memo.kube = Kube(_api_client())


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _trigger(body: kopf.Body) -> tuple[int, str | None]:
    """What, when changed, calls for an immediate pass."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    return int(body.get("metadata", {}).get("generation", 0)), annotations.get(PAUSED_ANNOTATION)


def reconcile_once(
    kube: Kube,
    body: kopf.Body,
    logger: logging.Logger | kopf.Logger,
    *,
    last_status: dict[str, Any] | None,
) -> dict[str, Any]:
    """Run one pass, write status if it changed, post events; returns the status.

    ``last_status`` is what this daemon wrote last: the watch stream may not have delivered
    it into ``body`` yet, and judging transitions against a stale status would lose Events.
    """
    full: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IndexForge",
        "metadata": dict(body.get("metadata", {})),
        "spec": dict(body.get("spec", {})),
        "status": dict(last_status if last_status is not None else body.get("status", {})),
    }
    started = time.monotonic()
    outcome = reconcile(kube, full, now=_now())
    meta = full["metadata"]
    metrics.record_pass(
        namespace=meta["namespace"],
        name=meta["name"],
        seconds=time.monotonic() - started,
        writes=outcome.writes,
        pruned=len(outcome.pruned),
        ready=outcome.status.get("phase") == "Ready",
    )
    current = {k: full["status"].get(k) for k in outcome.status}
    if current != outcome.status:
        kube.patch_status(GROUP, VERSION, PLURAL, full["metadata"], outcome.status)
    if not full["metadata"].get("deletionTimestamp"):  # going away: nobody reads its Events
        for kind, reason, message in outcome.events:
            logger.info("event %s %s", kind, reason)
            kopf.event(body, type=kind, reason=reason, message=message)
    if outcome.writes or outcome.pruned:
        logger.info("applied %d changed objects, pruned %d", outcome.writes, len(outcome.pruned))
    return outcome.status


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
def reconcile_loop(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    kube: Kube = memo.kube
    last_trigger: tuple[int, str | None] | None = None
    last_status: dict[str, Any] | None = None
    next_due = 0.0
    elapsed = 0.0
    while not stopped:
        trigger = _trigger(body)
        if trigger != last_trigger or elapsed >= next_due:
            try:
                last_status = reconcile_once(kube, body, logger, last_status=last_status)
                phase = last_status.get("phase")
                next_due = RESYNC_SECONDS if phase in ("Ready", "Paused") else SETTLING_SECONDS
            except ApiException as exc:
                metrics.record_failure()
                # Never log the body: it may echo a Secret we sent. Status and reason suffice.
                logger.warning(
                    "reconcile failed: API error %s %s; retrying", exc.status, exc.reason
                )
                next_due = SETTLING_SECONDS * 2
            last_trigger, elapsed = trigger, 0.0
        if stopped.wait(TICK_SECONDS):
            break
        elapsed += TICK_SECONDS
    meta = body.get("metadata", {})
    metrics.forget(namespace=meta.get("namespace", ""), name=meta.get("name", ""))
