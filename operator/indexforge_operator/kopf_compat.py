"""Two fixes to kopf's handling of custom resource kinds that come and go.

1. Keep the operator alive when a watched custom resource kind disappears.

The operator watches the kinds of optional integrations (prometheus-operator's
ServiceMonitor, PrometheusRule, AlertmanagerConfig) while their CRDs exist. When a CRD is
deleted, the API server ends the watch; kopf reconnects at once, and until discovery stops
listing the kind (kopf then cancels the watcher) the reconnect answers 404. kopf 1.45
treats that 404 as fatal for the whole operator ("multidimensional multitasker has
failed"), so uninstalling prometheus-operator would stop every reconcile.

`install()` wraps kopf's per-stream watch so a 404 (a request answered 404, or an ERROR
event with code 404) ends that stream quietly after a pause; kopf's own loop retries, and
its resource observer cancels the watcher once the kind is gone. Nothing else changes.
2. Start watching a kind whose CRD appears. kopf re-reads API discovery for the CRD's group
on every CRD event, once. The API server marks a CRD Established before its discovery
document always lists the new kind; when the last CRD event's re-read comes too early, kopf
never watches the kind, so its objects never reach our cache and are never pruned (seen in
CI: Istio's PeerAuthentications outlived `mesh.mode: none`). `wait_until_served` holds the
re-read of an established CRD until discovery lists its plural (bounded, then gives up
with a warning and lets kopf proceed as before).

This reaches into kopf internals, so `install()` fails loudly on a kopf without them
(covered by tests/unit/test_kopf_compat.py) instead of silently doing nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import errors as kopf_errors
from kopf._cogs.clients import scanning as kopf_scanning
from kopf._cogs.clients import watching as kopf_watching
from kopf._core.reactor import observation as kopf_observation

log = logging.getLogger("indexforge_operator")

# Between two attempts at a vanished kind: discovery drops it within seconds, and a pause
# keeps a kind that stays gone from costing more than one request per pause.
NOT_FOUND_PAUSE_SECONDS = 2.0
_MARK = "_indexforge_tolerates_404"
# Discovery catches up with an established CRD within a second or two, even under load.
DISCOVERY_PAUSE_SECONDS = 1.0
DISCOVERY_ATTEMPTS = 30
_DISCOVERY_MARK = "_indexforge_waits_for_discovery"

StreamFn = Callable[..., AsyncIterator[Any]]


def _is_not_found_event(raw: Any) -> bool:
    return (
        isinstance(raw, dict)
        and raw.get("type") == "ERROR"
        and isinstance(raw.get("object"), dict)
        and raw["object"].get("code") == 404
    )


def tolerate_not_found(stream: StreamFn, *, pause: float = NOT_FOUND_PAUSE_SECONDS) -> StreamFn:
    """`stream` (an async generator function of watch events), ending on 404 after `pause`."""

    async def tolerant(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        resource = kwargs.get("resource")
        try:
            async for raw in stream(*args, **kwargs):
                if _is_not_found_event(raw):
                    break
                yield raw
            else:
                return
        except kopf_errors.APINotFoundError:
            pass
        log.info("watch of %s answered 404 (its CRD is gone?); retrying in %.0fs",
                 resource, pause)  # fmt: skip
        await asyncio.sleep(pause)

    setattr(tolerant, _MARK, True)
    return tolerant


def _established(crd: Any) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def wait_until_served(
    process: Callable[..., Any],
    *,
    scan: Callable[..., Any] = kopf_scanning.scan_resources,
    pause: float = DISCOVERY_PAUSE_SECONDS,
    attempts: int = DISCOVERY_ATTEMPTS,
) -> Callable[..., Any]:
    """`process` (kopf's CRD-event processor), called once discovery serves the CRD's kind."""

    async def patient(*, raw_event: Any, settings: Any, **kwargs: Any) -> Any:
        crd = raw_event.get("object") or {}
        if raw_event.get("type") not in (None, "DELETED") and _established(crd):
            group = crd["spec"]["group"]
            plural = crd["spec"]["names"]["plural"]
            for _ in range(attempts):
                served = await scan(groups={group}, settings=settings, logger=log)
                if any(r.plural == plural for r in served):
                    break
                await asyncio.sleep(pause)
            else:
                log.warning("discovery still does not list %s.%s; its objects may be "
                            "missed until the operator restarts", plural, group)  # fmt: skip
        return await process(raw_event=raw_event, settings=settings, **kwargs)

    setattr(patient, _DISCOVERY_MARK, True)
    return patient


def install() -> None:
    """Patch kopf's watch functions and its CRD-event processor once (idempotent)."""
    for name in ("continuous_watch", "watch_objs"):
        original = getattr(kopf_watching, name, None)
        if original is None:
            raise RuntimeError(f"kopf has no watching.{name}: re-check kopf_compat on upgrade")
        if not getattr(original, _MARK, False):
            setattr(kopf_watching, name, tolerate_not_found(original))
    name = "process_discovered_resource_event"
    processor = getattr(kopf_observation, name, None)
    if processor is None:
        raise RuntimeError(f"kopf has no observation.{name}: re-check kopf_compat on upgrade")
    if not getattr(processor, _DISCOVERY_MARK, False):
        setattr(kopf_observation, name, wait_until_served(processor))
