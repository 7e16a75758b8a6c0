"""Length bucketing: the batch plan (pure) and the batcher that follows it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexforge_services.ml.batching import PENDING_FACTOR, MicroBatcher, plan_batches
from indexforge_services.ml.model import Embedder, Vectors


def padded(lengths: Sequence[int], batch: list[int]) -> int:
    return len(batch) * max(lengths[i] for i in batch)


def test_plan_sorts_by_length_and_caps_padded_tokens() -> None:
    lengths = [200, 10, 12, 180, 11, 190, 13, 9]
    plan = plan_batches(lengths, max_batch=32, max_tokens=400)
    assert plan == [[7, 1, 4, 2, 6], [3, 5], [0]]  # short ones together; 3 x 200 > 400
    assert all(padded(lengths, b) <= 400 for b in plan)


def test_plan_caps_texts_per_batch() -> None:
    plan = plan_batches([5] * 10, max_batch=4, max_tokens=10_000)
    assert plan == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # equal lengths keep arrival order


def test_a_text_over_the_cap_runs_alone() -> None:
    plan = plan_batches([8, 8, 5000, 8], max_batch=32, max_tokens=256)
    assert plan == [[0, 1, 3], [2]]


def test_no_cap_means_arrival_order_batches() -> None:
    assert plan_batches([50, 5, 500], max_batch=2, max_tokens=0) == [[0, 1], [2]]


def test_padding_saved_on_a_mixed_set() -> None:
    rng = random.Random(7)
    lengths = [rng.choice([12, 20, 40, 90, 256]) for _ in range(128)]
    fifo = plan_batches(lengths, max_batch=32, max_tokens=0)
    bucketed = plan_batches(lengths, max_batch=32, max_tokens=4096)
    cost = sum(padded(lengths, b) for b in bucketed)
    assert cost < 0.7 * sum(padded(lengths, b) for b in fifo)
    assert cost < 1.2 * sum(lengths)  # little padding left


@given(
    st.lists(st.integers(min_value=1, max_value=600), max_size=200),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=1, max_value=20_000),
)
def test_plan_is_a_partition_under_both_caps(
    lengths: list[int], max_batch: int, max_tokens: int
) -> None:
    plan = plan_batches(lengths, max_batch=max_batch, max_tokens=max_tokens)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))  # none lost
    for batch in plan:
        assert 1 <= len(batch) <= max_batch
        assert len(batch) == 1 or padded(lengths, batch) <= max_tokens


class LengthEncoder:
    """Vector row = (text id, batch number): shows who was answered from which pass."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(list(texts))
        rows = [[float(t.split()[0]), float(len(self.batches))] for t in texts]
        return np.asarray(rows, dtype=np.float32)


def text(i: int, words: int) -> str:
    return f"{i} " + "w " * (words - 1)


async def test_batcher_groups_by_length_and_answers_each_caller_in_order() -> None:
    encoder = LengthEncoder()
    batcher = MicroBatcher(
        encoder.encode, max_batch=8, max_wait=0.05, max_tokens=200, measure=encoder.token_lengths
    )
    rng = random.Random(3)
    requests = [[text(c * 100 + j, rng.choice([3, 60])) for j in range(4)] for c in range(8)]
    batcher.start()
    try:
        replies = await asyncio.gather(*(batcher.embed(r) for r in requests))
    finally:
        await batcher.stop()
    for request, reply in zip(requests, replies, strict=True):  # nothing lost or reordered
        assert [int(v[0]) for v in reply] == [int(t.split()[0]) for t in request]
    for batch in encoder.batches:
        lengths = encoder.token_lengths(batch)
        assert len(batch) <= 8 and (len(batch) == 1 or len(batch) * max(lengths) <= 200)
        assert len(set(lengths)) == 1, batch  # two lengths in the mix: never mixed here
    assert sum(len(b) for b in encoder.batches) == 32


async def test_one_huge_text_runs_alone_and_short_ones_are_not_held() -> None:
    encoder = LengthEncoder()
    batcher = MicroBatcher(
        encoder.encode, max_batch=32, max_wait=0.05, max_tokens=512, measure=encoder.token_lengths
    )
    batcher.start()
    try:
        huge, *short = await asyncio.gather(
            batcher.embed([text(0, 5000)]), *(batcher.embed([text(i, 4)]) for i in range(1, 11))
        )
    finally:
        await batcher.stop()
    assert [len(b) for b in encoder.batches] == [10, 1]
    assert int(huge[0][0]) == 0 and int(huge[0][1]) == 2  # alone, in the second pass
    assert [int(r[0][0]) for r in short] == list(range(1, 11))


async def test_one_gather_takes_at_most_pending_factor_batches() -> None:
    encoder = LengthEncoder()
    batcher = MicroBatcher(
        encoder.encode, max_batch=4, max_wait=0.01, max_tokens=1000, measure=encoder.token_lengths
    )
    batcher.start()
    try:
        await batcher.embed([text(i, 2) for i in range(4 * PENDING_FACTOR + 3)])
    finally:
        await batcher.stop()
    assert [len(b) for b in encoder.batches] == [4] * PENDING_FACTOR + [3]


async def test_a_failing_measure_falls_back_to_arrival_order() -> None:
    encoder = LengthEncoder()

    def broken(texts: Sequence[str]) -> list[int]:
        raise RuntimeError("tokenizer gone")

    batcher = MicroBatcher(
        encoder.encode, max_batch=3, max_wait=0.01, max_tokens=100, measure=broken
    )
    batcher.start()
    try:
        out = await batcher.embed([text(i, 2) for i in range(5)])
    finally:
        await batcher.stop()
    assert [int(v[0]) for v in out] == list(range(5))
    assert [len(b) for b in encoder.batches] == [3, 2]


@pytest.mark.timeout(120)
async def test_bucketed_vectors_equal_unbatched_on_the_real_model(embedder: Embedder) -> None:
    rng = random.Random(11)
    texts = [
        f"text {i}: " + "search engines rank documents " * rng.choice([1, 4, 30]) for i in range(40)
    ]
    batcher = MicroBatcher(
        embedder.encode,
        max_batch=16,
        max_wait=0.02,
        max_tokens=1024,
        measure=embedder.token_lengths,
    )
    batcher.start()
    try:
        got = await asyncio.gather(*(batcher.embed([t]) for t in texts))
    finally:
        await batcher.stop()
    expected = np.concatenate([embedder.encode([t]) for t in texts])
    np.testing.assert_allclose(np.concatenate(got), expected, atol=1e-5)
    assert batcher.forward_passes < len(texts) / 2
