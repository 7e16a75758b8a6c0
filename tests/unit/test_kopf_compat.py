"""The kopf shim that keeps the operator alive when a watched CRD is deleted.

The end-to-end proof is `tests/integration/test_operator.py::
test_prometheus_operator_crds_switch_to_service_monitors` (real CRDs deleted under a running
operator); these tests pin the shim's contract on kopf's watch functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import errors as kopf_errors
from kopf._cogs.clients import watching as kopf_watching

from indexforge_operator import kopf_compat


def _collect(stream: Any, **kwargs: Any) -> list[Any]:
    async def run() -> list[Any]:
        return [item async for item in stream(**kwargs)]

    return asyncio.run(asyncio.wait_for(run(), timeout=5))


def test_a_404_answer_ends_the_stream_instead_of_raising() -> None:
    async def gone(**_: Any) -> AsyncIterator[Any]:
        yield {"type": "ADDED", "object": {"metadata": {"name": "a"}}}
        raise kopf_errors.APINotFoundError({"code": 404}, status=404, headers={})

    events = _collect(kopf_compat.tolerate_not_found(gone, pause=0), resource="sm")
    assert [e["object"]["metadata"]["name"] for e in events] == ["a"]


def test_a_404_error_event_ends_the_stream_and_is_not_passed_on() -> None:
    async def gone(**_: Any) -> AsyncIterator[Any]:
        yield {"type": "MODIFIED", "object": {"metadata": {"name": "a"}}}
        yield {"type": "ERROR", "object": {"code": 404, "reason": "NotFound"}}
        yield {"type": "ADDED", "object": {"metadata": {"name": "never"}}}

    events = _collect(kopf_compat.tolerate_not_found(gone, pause=0))
    assert [e["type"] for e in events] == ["MODIFIED"]


def test_other_errors_still_raise() -> None:
    async def forbidden(**_: Any) -> AsyncIterator[Any]:
        raise kopf_errors.APIForbiddenError({"code": 403}, status=403, headers={})
        yield  # pragma: no cover  (makes this an async generator)

    with pytest.raises(kopf_errors.APIForbiddenError):
        _collect(kopf_compat.tolerate_not_found(forbidden, pause=0))


def test_the_stream_pauses_before_a_retry() -> None:
    async def gone(**_: Any) -> AsyncIterator[Any]:
        raise kopf_errors.APINotFoundError({"code": 404}, status=404, headers={})
        yield  # pragma: no cover

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async for _ in kopf_compat.tolerate_not_found(gone, pause=0.2)():
            pass
        return loop.time() - start

    assert asyncio.run(timed()) >= 0.2


def test_install_patches_kopfs_watch_functions_once(monkeypatch: pytest.MonkeyPatch) -> None:
    originals = {n: getattr(kopf_watching, n) for n in ("continuous_watch", "watch_objs")}
    for name, fn in originals.items():
        monkeypatch.setattr(kopf_watching, name, fn)
    kopf_compat.install()
    patched = {n: getattr(kopf_watching, n) for n in originals}
    kopf_compat.install()
    for name in originals:
        assert getattr(kopf_watching, name) is patched[name]
        assert getattr(patched[name], "_indexforge_tolerates_404", False)


def test_install_fails_loudly_when_kopf_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(kopf_watching, "watch_objs")
    with pytest.raises(RuntimeError, match="watch_objs"):
        kopf_compat.install()


def test_the_operator_installs_the_shim() -> None:
    import indexforge_operator.handlers  # noqa: F401  (import installs it)

    assert getattr(kopf_watching.continuous_watch, "_indexforge_tolerates_404", False)


# -- a CRD established before discovery lists its kind ------------------------------------
def _crd_event(kind: str | None = "MODIFIED", *, established: bool = True) -> dict[str, Any]:
    status = "True" if established else "False"
    return {
        "type": kind,
        "object": {
            "spec": {"group": "security.istio.io", "names": {"plural": "peerauthentications"}},
            "status": {"conditions": [{"type": "Established", "status": status}]},
        },
    }


class _Served:
    """A discovery scan that lists the plural only from its `lists_from`-th call on."""

    def __init__(self, lists_from: int) -> None:
        self.lists_from = lists_from
        self.calls = 0

    async def __call__(self, *, groups: Any, **_: Any) -> list[Any]:
        self.calls += 1
        assert groups == {"security.istio.io"}
        if self.calls < self.lists_from:
            return [type("R", (), {"plural": "requestauthentications"})()]
        return [type("R", (), {"plural": "peerauthentications"})()]


def _process_with(scan: _Served, event: dict[str, Any], *, attempts: int = 5) -> list[str]:
    processed: list[str] = []

    async def process(*, raw_event: Any, settings: Any, **kwargs: Any) -> str:
        processed.append(f"after {scan.calls} scans")
        return "patch-version"

    patient = kopf_compat.wait_until_served(process, scan=scan, pause=0, attempts=attempts)
    result = asyncio.run(asyncio.wait_for(patient(raw_event=event, settings=None), timeout=5))
    assert result == "patch-version"  # kopf's processor result is passed back
    return processed


def test_kopf_rescans_only_once_discovery_lists_the_new_kind() -> None:
    scan = _Served(lists_from=3)
    assert _process_with(scan, _crd_event()) == ["after 3 scans"]


def test_a_kind_already_served_costs_one_scan() -> None:
    scan = _Served(lists_from=1)
    assert _process_with(scan, _crd_event("ADDED")) == ["after 1 scans"]


def test_not_yet_established_and_deleted_crds_pass_straight_through() -> None:
    for event in (_crd_event(established=False), _crd_event("DELETED"), _crd_event(None)):
        scan = _Served(lists_from=99)
        assert _process_with(scan, event) == ["after 0 scans"]


def test_the_wait_is_bounded_and_kopf_proceeds_after_it(caplog: pytest.LogCaptureFixture) -> None:
    scan = _Served(lists_from=99)
    assert _process_with(scan, _crd_event(), attempts=4) == ["after 4 scans"]
    assert "discovery still does not list peerauthentications" in caplog.text


def test_install_wraps_kopfs_crd_event_processor_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from kopf._core.reactor import observation

    name = "process_discovered_resource_event"
    monkeypatch.setattr(observation, name, getattr(observation, name))
    kopf_compat.install()
    patched = getattr(observation, name)
    kopf_compat.install()
    assert getattr(observation, name) is patched
    assert getattr(patched, "_indexforge_waits_for_discovery", False)
