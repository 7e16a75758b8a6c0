"""The CUDA path: runs where torch sees a GPU, skipped (with the reason) everywhere else.

On a GPU machine: `pytest tests/services/test_ml_gpu.py`; throughput per batch size and
device memory: `python -m tests.bench.gpu_ml`.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import torch

from indexforge_services.ml.app import create_app
from indexforge_services.ml.backends import load_encoder
from indexforge_services.ml.model import Embedder
from indexforge_services.ml.settings import MLSettings

from .conftest import ServerThread, metric, ml_settings
from .test_ml_onnx import VARIED, cosine_distance

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device: torch.cuda.is_available() is False (CPU-only torch wheel or no "
    "GPU); these tests run on a GPU machine",
)


@pytest.fixture(scope="module")
def gpu_embedder() -> Embedder:
    return Embedder.load(device="cuda")


def test_cuda_vectors_equal_cpu(gpu_embedder: Embedder, embedder: Embedder) -> None:
    assert gpu_embedder.device == "cuda"
    assert next(gpu_embedder.model.parameters()).is_cuda
    expected = np.concatenate([embedder.encode([t]) for t in VARIED])
    got = gpu_embedder.encode(VARIED)
    assert got.dtype == np.float32
    assert cosine_distance(expected, got).max() <= 1e-4


def test_onnx_setting_keeps_torch_on_cuda() -> None:
    settings = MLSettings(ml_backend="onnx", device="auto", redis_url=None)
    encoder = load_encoder(settings, cuda_available=True)
    assert isinstance(encoder, Embedder) and encoder.device == "cuda"


def test_service_serves_on_cuda(gpu_embedder: Embedder) -> None:
    app = create_app(ml_settings(device="cuda"), encoder=gpu_embedder)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/meta").json()["device"] == "cuda"
        response = client.post("/vectors", json={"texts": VARIED[:8]})
        assert response.status_code == 200 and len(response.json()["vectors"]) == 8
    assert metric(app, "ml_device_info", model=gpu_embedder.name, device="cuda") == 1
