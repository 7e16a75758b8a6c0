"""The ONNX Runtime backend: same vectors as torch, int8's retrieval cost, setting errors.

The exports go to the default cache (~/.cache/indexforge/onnx, keyed by the model files'
hash), so only the first run on a machine pays for them; nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from indexforge_services.api.settings import ApiSettings
from indexforge_services.api.uploads import csv_records
from indexforge_services.ml.app import create_app
from indexforge_services.ml.backends import choose_backend
from indexforge_services.ml.model import Embedder, packaged_model_dir
from indexforge_services.ml.onnx_backend import OnnxEmbedder, ensure_exported, export_key
from indexforge_services.ml.settings import MLSettings

from .conftest import TORCH_THREADS, ServerThread, ml_settings
from .corpora import corpus
from .workbooks import PRODUCTS

pytest.importorskip("onnxruntime")

# Varied on purpose: one token, punctuation only, accents, CJK, emoji, RTL, numbers, code,
# past the 256-token window (truncated), and lengths that make batches pad a lot.
VARIED = [
    "a",
    "?!",
    "A man is eating food.",
    "Crème brûlée, naïve café, Straße und Größe — déjà vu.",
    "日本語の文章と中文句子混在的テキスト。",
    "emoji 😀🚀🔥 between words 👍🏽",
    "مرحبا بالعالم، هذه جملة عربية",
    "SKU K-100 costs 29.90 EUR; qty=3; total=89.70",
    "def f(x): return {'k': [1, 2, 3]}  # code",
    "word " * 600,
    "The lighthouse keeper climbed the tower every evening to light the lamp. " * 12,
    *(f"sentence {i} " + "about vectors and search " * (i % 9) for i in range(20)),
]


@pytest.fixture(scope="session")
def onnx_fp32() -> OnnxEmbedder:
    return OnnxEmbedder.load(threads=TORCH_THREADS)


@pytest.fixture(scope="session")
def onnx_int8() -> OnnxEmbedder:
    return OnnxEmbedder.load(threads=TORCH_THREADS, quantize="int8")


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    dots = (a64 * b64).sum(axis=1)
    return 1 - dots / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def test_onnx_vectors_equal_torch_per_text(embedder: Embedder, onnx_fp32: OnnxEmbedder) -> None:
    expected = np.concatenate([embedder.encode([t]) for t in VARIED])
    batched = onnx_fp32.encode(VARIED)  # one padded batch of very different lengths
    single = np.concatenate([onnx_fp32.encode([t]) for t in VARIED])
    for got in (batched, single):
        distance = cosine_distance(expected, got)
        worst = int(distance.argmax())
        assert distance.max() <= 1e-4, (VARIED[worst][:40], float(distance.max()))
    assert batched.dtype == np.float32 and batched.shape == (len(VARIED), 384)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert onnx_fp32.token_lengths(VARIED) == embedder.token_lengths(VARIED)
    assert onnx_fp32.max_seq_length == embedder.max_seq_length == 256


def test_fp32_shares_torch_cache_keys_and_int8_does_not(
    embedder: Embedder, onnx_fp32: OnnxEmbedder, onnx_int8: OnnxEmbedder
) -> None:
    """fp32 vectors are torch's within float noise, so a switch keeps the warm cache;
    int8 vectors are not, so they get keys of their own."""
    assert onnx_fp32.model_id == embedder.model_id
    assert onnx_int8.model_id == f"{embedder.model_id}+int8"


def _top1(query_vectors: np.ndarray, rows: np.ndarray, names: list[str]) -> list[str]:
    return [names[int(i)] for i in (query_vectors @ rows.T).argmax(axis=1)]


def retrieval_cases() -> list[tuple[list[str], list[str], list[tuple[str, str]]]]:
    """(row texts as the API embeds them, row names, [(query, expected name)]): the catalog
    queries of the recall tests in a haystack, and the API end-to-end tests' searches."""
    settings = ApiSettings()
    cases = []
    for name in ("plain", "languages", "near_duplicates"):
        c = corpus(name, 60)
        records = csv_records(c.csv_bytes().decode(), settings)
        queries = [(q, e) for q, e in c.queries() if e is not None]
        cases.append(([r.text for r in records], [r.fields["name"] for r in records], queries))
    products = [f"Name: {n}; Description: {d}" for _, n, d, _ in PRODUCTS]
    names = [n for _, n, _, _ in PRODUCTS]
    cases.append((products, names, [("something to keep drinks cold", "Compact refrigerator")]))
    texts = [
        "The lighthouse keeper climbed the tower every evening to light the lamp.",
        "Ships passing the rocky coast relied on its beam during storms.",
        "city: Kyoto; country: Japan",
        "city: Lyon; country: France",
    ]
    cases.append(
        (
            texts,
            # Two chunks of one document: either is the document's hit.
            ["lighthouse.txt", "lighthouse.txt", "Kyoto", "Lyon"],
            [("a tower guiding ships at sea", "lighthouse.txt"), ("a city in France", "Lyon")],
        )
    )
    return cases


def test_int8_keeps_top1_on_the_semantic_search_cases(
    embedder: Embedder, onnx_int8: OnnxEmbedder
) -> None:
    distances: list[float] = []
    for texts, names, queries in retrieval_cases():
        qs = [q for q, _ in queries]
        expected = [e for _, e in queries]
        exact_rows, exact_q = embedder.encode(texts), embedder.encode(qs)
        int8_rows, int8_q = onnx_int8.encode(texts), onnx_int8.encode(qs)
        assert _top1(exact_q, exact_rows, names) == expected  # the cases are meaningful
        assert _top1(int8_q, int8_rows, names) == expected
        distances += [*cosine_distance(exact_rows, int8_rows), *cosine_distance(exact_q, int8_q)]
    # The measured cost (README): what int8 moves each vector, on these texts.
    mean, worst = float(np.mean(distances)), float(np.max(distances))
    print(f"int8 vs torch cosine distance: mean {mean:.4f}, max {worst:.4f}")
    assert mean < 0.02 and worst < 0.1


def test_export_is_the_fused_bert_graph() -> None:
    """The speed of the ONNX backend is the transformer optimizer's fusions: one Attention
    per layer (only found on the eager-attention export), skip-LayerNorms, bias-GELUs,
    embeddings. A plain export (685 nodes, unfused) is slower than torch."""
    import onnx

    ops: dict[str, int] = {}
    for node in onnx.load(str(ensure_exported())).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    assert ops.get("Attention") == 6  # all-MiniLM-L6-v2 has 6 layers
    assert ops.get("SkipLayerNormalization") == 12
    assert ops.get("BiasGelu") == 6 and ops.get("EmbedLayerNormalization") == 1
    assert "Softmax" not in ops and "Erf" not in ops  # nothing left unfused
    assert sum(ops.values()) < 100


def test_int8_quantizes_the_fused_attention() -> None:
    import onnx

    ops = {node.op_type for node in onnx.load(str(ensure_exported(quantize="int8"))).graph.node}
    assert {"QAttention", "MatMulInteger"} <= ops and "Attention" not in ops


def test_export_is_reused_and_keyed_by_the_model_files(tmp_path: Path) -> None:
    source = packaged_model_dir()
    assert ensure_exported(source) == ensure_exported(source)  # cached: same file, no export
    copy = tmp_path / "model"
    shutil.copytree(source, copy)
    key = export_key(copy, "none")
    assert key == export_key(source, "none")
    config = copy / "config.json"
    config.write_text(config.read_text().replace("}", ', "note": "retrained"}', 1))
    assert export_key(copy, "none") != key
    assert export_key(copy, "int8") != export_key(copy, "none")


def test_served_over_http_with_onnx(onnx_fp32: OnnxEmbedder, embedder: Embedder) -> None:
    app = create_app(ml_settings(ml_backend="onnx"), encoder=onnx_fp32)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        meta = client.get("/meta").json()
        assert (meta["backend"], meta["quantize"], meta["device"]) == ("onnx", "none", "cpu")
        response = client.post("/vectors", json={"texts": VARIED[:6]})
        assert response.status_code == 200
        got = np.asarray(response.json()["vectors"], dtype=np.float32)
    assert cosine_distance(embedder.encode(VARIED[:6]), got).max() <= 1e-4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INDEXFORGE_ML_BACKEND": "tensorflow"}, "ml_backend"),
        ({"INDEXFORGE_ML_QUANTIZE": "int4", "INDEXFORGE_ML_BACKEND": "onnx"}, "ml_quantize"),
        ({"INDEXFORGE_ML_QUANTIZE": "int8"}, "needs INDEXFORGE_ML_BACKEND=onnx"),
    ],
)
def test_bad_settings_fail_at_start_with_a_clear_error(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    keep = ("PATH", "HOME", "LANG", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    base = {k: v for k, v in os.environ.items() if k in keep}
    proc = subprocess.run(
        [sys.executable, "-m", "indexforge_services.ml.main", "--port", "0"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]


def test_settings_validation_in_process() -> None:
    with pytest.raises(ValidationError, match="needs INDEXFORGE_ML_BACKEND=onnx"):
        MLSettings(ml_backend="torch", ml_quantize="int8")
    assert MLSettings(ml_backend="onnx", ml_quantize="int8").ml_quantize == "int8"


@pytest.mark.parametrize(
    ("requested", "device", "expected"),
    [("torch", "cpu", "torch"), ("onnx", "cpu", "onnx"), ("onnx", "cuda", "torch")],
)
def test_cuda_keeps_torch(requested: str, device: str, expected: str) -> None:
    backend, why = choose_backend(requested, device)  # type: ignore[arg-type]
    assert backend == expected
    assert (why is None) == (requested == expected)
