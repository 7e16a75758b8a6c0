"""WorkQueue: coalescing, one pass per key at a time, delayed adds; Backoff timing."""

from __future__ import annotations

import asyncio

from indexforge_operator.backoff import Backoff
from indexforge_operator.workqueue import WorkQueue


def test_adds_of_a_queued_key_coalesce() -> None:
    async def run() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        for _ in range(100):
            q.add("a")
        q.add("b")
        got = [await q.get(), await q.get()]
        assert len(q) == 0
        return got

    assert asyncio.run(run()) == ["a", "b"]


def test_a_key_added_while_processing_runs_again_after_not_concurrently() -> None:
    async def run() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        key = await q.get()
        q.add("a")  # an event arrives during the pass
        assert len(q) == 0, "must not be handed to a second worker while in progress"
        q.done(key)
        assert len(q) == 1
        assert await q.get() == "a"
        q.done("a")
        assert len(q) == 0

    asyncio.run(run())


def test_add_after_keeps_the_earliest_due_time_and_add_cancels_timers() -> None:
    async def run() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add_after("a", 30)
        q.add_after("a", 0.05)  # earlier wins
        q.add_after("a", 60)  # later is ignored
        assert await asyncio.wait_for(q.get(), 2) == "a"
        q.done("a")
        q.add_after("b", 30)
        q.add("b")  # immediate add supersedes the timer: processed once, now
        assert await asyncio.wait_for(q.get(), 1) == "b"
        q.done("b")
        await asyncio.sleep(0.1)
        assert len(q) == 0
        q.add_after("c", 0.05)
        q.forget("c")
        await asyncio.sleep(0.15)
        assert len(q) == 0
        q.close()

    asyncio.run(run())


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    b = Backoff(base=2, cap=300)
    delays = [b.failed(("ns", "x")) for _ in range(10)]
    assert delays[:5] == [2, 4, 8, 16, 32]
    assert max(delays) == 300 and delays[-1] == 300
    assert b.failed(("ns", "other")) == 2, "per CR"
    b.succeeded(("ns", "x"))
    assert b.failed(("ns", "x")) == 2
