"""Kubernetes Events about an IndexForge, aggregated like client-go's EventRecorder.

A repeated (type, reason, message) for the same CR bumps ``count`` and ``lastTimestamp`` of
the Event already posted instead of creating a new one, so a CR failing under backoff shows
one Warning with a growing count. Posting never fails a pass: an Event is best effort.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from indexforge_operator.kube import Kube, NotLeader

Obj = dict[str, Any]
SOURCE = "indexforge-operator"
MAX_REMEMBERED = 10_000  # bounded memory however many CRs and reasons there are
MAX_MESSAGE = 1024  # the API server rejects Event messages above this size
log = logging.getLogger(__name__)


def _stamp(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(involved: Obj, *, kind: str, reason: str, message: str, now: str, name: str) -> Obj:
    meta = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": kind,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": SOURCE},
        "reportingComponent": SOURCE,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventRecorder:
    def __init__(
        self,
        kube: Kube,
        *,
        wall: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self._kube = kube
        self._wall = wall
        self._posted: OrderedDict[tuple[str, str, str, str], tuple[str, int]] = OrderedDict()

    def post(self, involved: Obj, *, kind: str, reason: str, message: str) -> None:
        meta = involved["metadata"]
        key = (meta["uid"], kind, reason, message[:MAX_MESSAGE])
        now = _stamp(self._wall())
        base = f"/api/v1/namespaces/{meta['namespace']}/events"
        try:
            previous = self._posted.get(key)
            if previous is not None:
                name, count = previous
                try:
                    self._kube.merge_patch_path(
                        f"{base}/{name}", {"count": count + 1, "lastTimestamp": now}
                    )
                    self._remember(key, name, count + 1)
                    return
                except ApiException as exc:
                    if exc.status != 404:  # expired (events live an hour): post a new one
                        raise
            name = f"{meta['name']}.{time.time_ns():x}"
            self._kube.create_path(
                base,
                event_body(involved, kind=kind, reason=reason, message=message, now=now, name=name),
            )
            self._remember(key, name, 1)
        except (ApiException, OSError, HTTPError, NotLeader) as exc:
            log.warning("event %s/%s not posted: %s", kind, reason, getattr(exc, "reason", exc))

    def _remember(self, key: tuple[str, str, str, str], name: str, count: int) -> None:
        self._posted[key] = (name, count)
        self._posted.move_to_end(key)
        while len(self._posted) > MAX_REMEMBERED:
            self._posted.popitem(last=False)
