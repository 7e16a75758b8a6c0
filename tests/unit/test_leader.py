"""LeaderElector against an in-memory Lease with real optimistic concurrency (resourceVersion).

The real API server runs the same code in tests/integration/test_operator_ha.py; this covers
the timing rules with a controlled clock.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client.exceptions import ApiException

from indexforge_operator.leader import LeaderElector, LeaseConfig

Obj = dict[str, Any]


class LeaseStore:
    def __init__(self) -> None:
        self.lease: Obj | None = None
        self.version = 0
        self.down = False
        self.requests = 0

    def _check(self) -> None:
        self.requests += 1
        if self.down:
            raise ApiException(status=503, reason="Service Unavailable")

    def get_path(self, path: str) -> Obj | None:
        self._check()
        return copy.deepcopy(self.lease)

    def create_path(self, path: str, body: Obj, *, leader_call: bool = False) -> Obj:
        self._check()
        if self.lease is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(body)

    def replace_path(self, path: str, body: Obj, *, leader_call: bool = False) -> Obj:
        self._check()
        assert self.lease is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        return self._store(body)

    def _store(self, body: Obj) -> Obj:
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _elector(store: LeaseStore, clock: Clock, identity: str) -> LeaderElector:
    config = LeaseConfig(namespace="ops", identity=identity, duration=15, renew_deadline=10)
    return LeaderElector(store, config, clock=clock)  # type: ignore[arg-type]


def test_one_leader_and_a_follower_takes_over_only_after_the_lease_lapses() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = _elector(store, clock, "a"), _elector(store, clock, "b")
    assert a.step() is True
    assert b.step() is False
    clock.now += 14  # a stops renewing (crashed): b must wait the full duration
    assert b.step() is False
    clock.now += 2
    assert b.step() is True
    assert store.lease is not None and store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 2
    assert a.step() is False, "the old leader sees the new holder and steps down at once"


def test_a_renewing_leader_is_never_replaced() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = _elector(store, clock, "a"), _elector(store, clock, "b")
    a.step()
    for _ in range(20):
        clock.now += 2
        assert a.step() is True
        assert b.step() is False


def test_renewals_cost_one_request_each() -> None:
    store, clock = LeaseStore(), Clock()
    a = _elector(store, clock, "a")
    a.step()
    before = store.requests
    for _ in range(10):
        clock.now += 2
        a.step()
    assert store.requests - before == 10


def test_an_unreachable_api_keeps_leadership_only_until_the_renew_deadline() -> None:
    store, clock = LeaseStore(), Clock()
    a = _elector(store, clock, "a")
    a.step()
    store.down = True
    clock.now += 6
    assert a.step() is True, "a short outage does not drop leadership"
    clock.now += 5  # 11 s without renewal > renew deadline (10) < lease duration (15)
    assert a.step() is False


def test_release_lets_a_standby_take_over_without_waiting() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = _elector(store, clock, "a"), _elector(store, clock, "b")
    a.step()
    assert b.step() is False
    a.release()
    clock.now += 2
    assert b.step() is True
