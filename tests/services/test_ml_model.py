"""The model itself: shape, unit norm, pooling, semantics, device choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from indexforge_services.ml.model import (
    Embedder,
    mean_pool,
    normalize_text,
    packaged_model_dir,
    parse_cpu_max,
    resolve_device,
)

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "A cheetah is running behind its prey.",
]


def test_vectors_have_dim_384_and_unit_norm(embedder: Embedder) -> None:
    vectors = embedder.encode(SENTENCES)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_close_sentences_score_higher_than_unrelated(embedder: Embedder) -> None:
    v = embedder.encode(SENTENCES)
    close = float(v[0] @ v[1])
    unrelated = [float(v[0] @ v[2]), float(v[0] @ v[3])]
    assert close > 0.5
    assert all(close > u + 0.3 for u in unrelated), (close, unrelated)


def test_matches_sentence_transformers_reference(embedder: Embedder) -> None:
    """Our transformers + mean pooling + L2 equals the reference library's pipeline."""
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(packaged_model_dir()), device="cpu")
    expected = reference.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(embedder.encode(SENTENCES), expected, atol=1e-5)


def test_padding_does_not_change_a_vector(embedder: Embedder) -> None:
    alone = embedder.encode(["short"])[0]
    padded = embedder.encode(["short", "a much longer sentence that forces padding " * 5])[0]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_texts_longer_than_the_model_window_are_truncated(embedder: Embedder) -> None:
    long = "word " * 2000
    (vector,) = embedder.encode([long])
    assert embedder.max_seq_length == 256
    assert np.isfinite(vector).all()


def test_mean_pool_ignores_masked_tokens() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [
        ("auto", False, "cpu"),
        ("auto", True, "cuda"),
        ("cpu", True, "cpu"),
        ("CUDA:1", True, "cuda:1"),
    ],
)
def test_resolve_device(requested: str, cuda: bool, expected: str) -> None:
    assert resolve_device(requested, cuda_available=cuda) == expected


def test_resolve_device_refuses_cuda_without_gpu() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda", cuda_available=False)


def test_normalize_text_collapses_whitespace_and_composes_unicode() -> None:
    assert normalize_text("  e\u0301t\u00e9 \n\t fini ") == "\u00e9t\u00e9 fini"


def test_model_is_loaded_from_package_files_with_an_id(embedder: Embedder) -> None:
    assert (packaged_model_dir() / "model.safetensors").is_file()
    assert embedder.device == "cpu"
    assert embedder.model_id.startswith("sentence-transformers/all-MiniLM-L6-v2@")


@pytest.mark.parametrize(
    ("cpu_max", "threads"),
    [("max 100000", None), ("200000 100000", 2), ("50000 100000", 1), ("garbage", None)],
)
def test_threads_follow_the_cgroup_cpu_limit(cpu_max: str, threads: int | None) -> None:
    assert parse_cpu_max(cpu_max) == threads
