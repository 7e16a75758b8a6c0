"""ONNX Runtime backend for CPU pods: the same model exported once, pooling included.

The graph is exported from the local model files with torch's TorchScript-based exporter
(`torch.onnx.export(dynamo=False)`: works offline and needs no onnxscript) and takes
`input_ids`, `attention_mask`, `token_type_ids` to unit-length mean-pooled vectors, so one
`session.run` does what `Embedder.encode` does.

The export then goes through ONNX Runtime's transformer optimizer (`model_type="bert"`),
which fuses each layer's attention into one `Attention` op, LayerNorm + residual into
`SkipLayerNormalization`, bias + GELU into `BiasGelu`, and the embeddings into
`EmbedLayerNormalization` (685 nodes -> 62). The encoder is exported with
`attn_implementation="eager"`: transformers' default SDPA attention exports as a
mask/`IsNaN`/`Where` pattern that the optimizer does not recognise (0 of 6 attentions fused).
Fusion changes the float summation order only: vectors stay within 1e-6 cosine of torch's.
int8 is ONNX Runtime's dynamic quantization of the fused graph's MatMul and Attention
weights (per channel: per-tensor scales cost ~5x more cosine distance here).

Export happens at image build time (`python -m indexforge_services.ml.onnx_backend`, see
docker/ml.Dockerfile) or, locally and in tests, once into a cache directory. The file name
is keyed by a hash of the model files and the exporter/quantizer versions, so a changed model
is never served from a stale export; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .model import (
    DEFAULT_MODEL_NAME,
    Vectors,
    model_fingerprint,
    packaged_model_dir,
    token_lengths,
)

log = logging.getLogger(__name__)

Quantize = Literal["none", "int8"]
EXPORT_FORMAT = 2  # bump when the exported graph changes (2: eager attention + bert fusion)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_HASHED = ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "indexforge" / "onnx"


def export_key(model_dir: Path, quantize: Quantize) -> str:
    """Hash of what the exported file depends on: the model's files (whole content, not
    sizes: a re-trained model of the same size must not reuse an export) and the tools."""
    digest = hashlib.sha256(f"{EXPORT_FORMAT}|torch {version('torch')}|{quantize}".encode())
    # The optimizer (fp32) and the quantizer (int8) both come with onnxruntime.
    digest.update(f"onnxruntime {version('onnxruntime')}".encode())
    files = [model_dir / name for name in _HASHED] + sorted(model_dir.glob("*.safetensors"))
    for path in [*files, *sorted(model_dir.glob("*.bin"))]:
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _export_fp32(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from .model import mean_pool

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            return torch.nn.functional.normalize(mean_pool(hidden, attention_mask), p=2, dim=1)

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    # Eager attention: the pattern the transformer optimizer fuses (see the module docstring).
    model = AutoModel.from_pretrained(
        model_dir, local_files_only=True, attn_implementation="eager"
    ).eval()
    sample = tokenizer(["an example", "a longer example"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(model),
            tuple(sample[name] for name in INPUTS),
            str(target),
            input_names=list(INPUTS),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _fuse(source: Path, target: Path, config: Any) -> dict[str, int]:
    """ONNX Runtime's BERT fusions (attention, skip-LayerNorm, bias-GELU, embeddings),
    offline, so every session loads the fused graph. Returns the fused-op counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        opt_level=0,  # graph fusions only; ORT's own level-99 passes run at session load
        use_gpu=False,
    )
    stats: dict[str, int] = optimized.get_fused_operator_statistics()
    if stats.get("Attention", 0) < int(config.num_hidden_layers):
        # An unfused export still works, only slower: say so rather than fail.
        log.warning("ONNX transformer optimizer fused only %s", stats)
    optimized.save_model_to_file(str(target))
    return stats


def _quantize_int8(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Attention"],
        # Shape inference cannot type every intermediate of the exported graph.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def ensure_exported(
    model_dir: Path | None = None, *, quantize: Quantize = "none", cache_dir: Path | None = None
) -> Path:
    """The exported (and maybe quantized) file for these model files, exported if missing.
    Written to a temporary name and renamed, so a concurrent or killed export never leaves
    a half-written file under the final name."""
    model_dir = model_dir if model_dir is not None else packaged_model_dir()
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    suffix = "" if quantize == "none" else f"-{quantize}"
    target = cache_dir / f"{export_key(model_dir, quantize)}{suffix}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s to ONNX (%s) at %s", model_dir, quantize, target)
    fp32 = ensure_exported(model_dir, cache_dir=cache_dir) if quantize == "int8" else None
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as tmp:
        result = Path(tmp) / "model.onnx"
        if fp32 is None:
            from transformers import AutoConfig

            raw = Path(tmp) / "raw.onnx"
            _export_fp32(model_dir, raw)
            _fuse(raw, result, AutoConfig.from_pretrained(model_dir, local_files_only=True))
        else:
            _quantize_int8(fp32, result)
        os.replace(result, target)
    return target


class OnnxEmbedder:
    """`Encoder` on ONNX Runtime (CPU). Same tokenizer, truncation and pooling as torch."""

    def __init__(
        self,
        *,
        session: Any,
        tokenizer: Any,
        config: Any,
        name: str,
        model_id: str,
        max_seq_length: int,
        quantize: Quantize,
        threads: int | None,
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.config = config
        self.device = "cpu"
        self.name = name
        self.model_id = model_id
        self.max_seq_length = max_seq_length
        self.quantize = quantize
        self.threads = threads
        self.dim = int(config.hidden_size)
        self._inputs = [i.name for i in session.get_inputs()]

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        name: str | None = None,
        max_seq_length: int = 256,
        threads: int | None = None,
        quantize: Quantize = "none",
        cache_dir: Path | None = None,
    ) -> OnnxEmbedder:
        import onnxruntime as ort
        from transformers import AutoConfig, AutoTokenizer

        from .model import _sbert_max_seq_length, default_torch_threads

        model_dir = path if path is not None else packaged_model_dir()
        onnx_file = ensure_exported(model_dir, quantize=quantize, cache_dir=cache_dir)
        options = ort.SessionOptions()
        # Explicit, not left to defaults: all graph optimisations, ops run one after another
        # (a BERT graph is a chain; parallel mode only adds an inter-op pool on 2 cores).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        threads = threads or default_torch_threads()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one inference thread calls run(); no parallel ops
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        limits = [max_seq_length, int(getattr(config, "max_position_embeddings", 512))]
        sbert = _sbert_max_seq_length(model_dir)
        if sbert:
            limits.append(sbert)
        display = name or (DEFAULT_MODEL_NAME if path is None else model_dir.name)
        # int8 vectors differ from fp32 beyond float noise: their own cache keys.
        variant = "" if quantize == "none" else f"+{quantize}"
        return cls(
            session=session,
            tokenizer=tokenizer,
            config=config,
            name=display,
            model_id=f"{display}@{model_fingerprint(model_dir)}{variant}",
            max_seq_length=min(limits),
            quantize=quantize,
            threads=threads,
        )

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return token_lengths(self.tokenizer, texts, self.max_seq_length)

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="np",
        )
        feeds = {name: batch[name].astype(np.int64, copy=False) for name in self._inputs}
        (vectors,) = self.session.run(["embedding"], feeds)
        result: Vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return result

    def meta(self) -> dict[str, Any]:
        return {
            "model": self.config.to_dict(),
            "model_name": self.name,
            "model_id": self.model_id,
            "dim": self.dim,
            "device": self.device,
            "backend": "onnx",
            "quantize": self.quantize,
            "max_seq_length": self.max_seq_length,
            "pooling": "masked_mean",
            "normalized": True,
        }


def main(argv: Sequence[str] | None = None) -> None:
    """Export at build time: `python -m indexforge_services.ml.onnx_backend --cache-dir D`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model-path", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--quantize", choices=["none", "int8", "all"], default="all")
    args = parser.parse_args(argv)
    modes: list[Quantize] = ["none", "int8"] if args.quantize == "all" else [args.quantize]
    for mode in modes:
        print(ensure_exported(args.model_path, quantize=mode, cache_dir=args.cache_dir))


if __name__ == "__main__":
    main()
