"""Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it.

Every replica keeps its watches and caches warm; only the holder of the Lease writes. The
holder renews every ``retry`` seconds and gives up leadership when it could not renew for
``renew_deadline`` (shorter than the lease duration, so it stops writing before anyone else
may start). A follower takes over once the record it observed has not changed for a whole
lease duration, judged by its own monotonic clock (no trust in other nodes' clocks).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from indexforge_operator.kube import Kube

Obj = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str = "indexforge-operator"
    identity: str = ""
    duration: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    @property
    def collection(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"


def _micro_time(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expired(*, observed_at: float, duration: float, now: float) -> bool:
    """Whether a record unchanged since ``observed_at`` (monotonic) has lapsed."""
    return observed_at + duration <= now


@dataclass
class LeaderElector:
    """One replica's view of the Lease; ``step`` is one acquire-or-renew attempt."""

    kube: Kube
    config: LeaseConfig
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    leading: bool = False
    _observed: Obj | None = None
    _observed_at: float = 0.0
    _last_renew: float = field(default=0.0)
    _held: Obj | None = None  # the Lease as our last write left it: renew without a GET

    def _observe(self, spec: Obj) -> None:
        key = (spec.get("holderIdentity"), spec.get("renewTime"))
        if self._observed is None or key != (
            self._observed.get("holderIdentity"),
            self._observed.get("renewTime"),
        ):
            self._observed, self._observed_at = dict(spec), self.clock()

    def _record(self, previous: Obj | None) -> Obj:
        now = _micro_time(self.wall())
        mine = previous is not None and previous.get("holderIdentity") == self.config.identity
        spec = {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": int(self.config.duration),
            "acquireTime": (previous or {}).get("acquireTime") if mine else now,
            "renewTime": now,
            "leaseTransitions": int((previous or {}).get("leaseTransitions", 0))
            + (0 if mine else 1),
        }
        return spec

    def step(self) -> bool:
        """Try to acquire or renew once; returns whether this replica leads afterwards."""
        now = self.clock()
        try:
            ok = self._try()
        except (ApiException, OSError, HTTPError) as exc:
            # Unreachable or erroring API server: keep leading until the renew deadline, which
            # ends before the lease does, so nobody else can have started writing yet.
            log.warning("leader election: %s", getattr(exc, "reason", exc))
            if self.leading and now - self._last_renew >= self.config.renew_deadline:
                log.warning("leader election: could not renew for %.0fs; stepping down",
                            now - self._last_renew)  # fmt: skip
                self.leading, self._held = False, None
            return self.leading
        if ok:
            self._last_renew = now
        else:
            self._held = None  # another replica holds a valid Lease: step down at once
        self.leading = ok
        return self.leading

    def _renew_held(self) -> bool | None:
        """Renew from the Lease our last write returned (one request, not two); None when
        that is not possible and a fresh read is needed."""
        if not (self.leading and self._held):
            return None
        lease = self._held
        lease["spec"] = self._record(lease.get("spec") or {})
        try:
            self._held = self.kube.replace_path(self.config.path, lease, leader_call=True)
        except ApiException as exc:
            self._held = None
            if exc.status in (404, 409):  # changed under us: read it again
                return None
            raise
        return True

    def _try(self) -> bool:
        renewed = self._renew_held()
        if renewed is not None:
            return renewed
        lease = self.kube.get_path(self.config.path)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                "spec": self._record(None),
            }
            self._held = self.kube.create_path(self.config.collection, body, leader_call=True)
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        if (
            holder
            and holder != self.config.identity
            and not expired(
                observed_at=self._observed_at, duration=self.config.duration, now=self.clock()
            )
        ):
            return False
        lease["spec"] = self._record(spec)
        try:
            self._held = self.kube.replace_path(self.config.path, lease, leader_call=True)
        except ApiException as exc:
            if exc.status == 409:  # someone else renewed or took it first
                return False
            raise
        return True

    def release(self) -> None:
        """Give the Lease up on a clean shutdown so a standby takes over at once."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = self.kube.get_path(self.config.path)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.config.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                self.kube.replace_path(self.config.path, lease, leader_call=True)
        except (ApiException, OSError, HTTPError) as exc:
            log.warning("leader election: release failed: %s", getattr(exc, "reason", exc))
