"""Which inference backend serves: torch, or ONNX Runtime on CPU.

ONNX Runtime is only used on CPU: on a GPU torch's CUDA kernels are the tested path, so a
pod whose device resolves to CUDA keeps torch even when the backend setting says onnx
(one setting can then cover a release with CPU and GPU inference pods).
"""

from __future__ import annotations

import logging
from typing import Literal

from .model import Embedder, Encoder, resolve_device
from .settings import MLSettings

log = logging.getLogger(__name__)

Backend = Literal["torch", "onnx"]


def choose_backend(requested: Backend, device: str) -> tuple[Backend, str | None]:
    """(backend to use, why it differs from the request or None) for a resolved device."""
    if requested == "onnx" and device != "cpu":
        return "torch", f"device {device} keeps torch (the ONNX backend is CPU only)"
    return requested, None


def load_encoder(settings: MLSettings, *, cuda_available: bool) -> Encoder:
    device = resolve_device(settings.device, cuda_available=cuda_available)
    backend, why = choose_backend(settings.ml_backend, device)
    if why:
        log.warning("ML backend %s: %s", backend, why)
    if backend == "onnx":
        from .onnx_backend import OnnxEmbedder  # onnxruntime is an optional dependency

        return OnnxEmbedder.load(
            settings.model_path,
            name=settings.model_name,
            max_seq_length=settings.max_seq_length,
            threads=settings.torch_threads,
            quantize=settings.ml_quantize,
            cache_dir=settings.onnx_cache_dir,
        )
    return Embedder.load(
        settings.model_path,
        device=device,
        name=settings.model_name,
        max_seq_length=settings.max_seq_length,
        torch_threads=settings.torch_threads,
    )
