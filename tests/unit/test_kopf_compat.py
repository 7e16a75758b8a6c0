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
