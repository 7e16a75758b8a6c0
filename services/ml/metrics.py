"""ML-specific Prometheus series (the cache hit ratio comes from the shared cache metrics,
labelled `cache="ml-embeddings"`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MLMetrics:
    def __init__(self, registry: CollectorRegistry, *, model: str, device: str) -> None:
        self.model = model
        self.inference = Histogram(
            "ml_model_inference_seconds",
            "Duration of one forward pass (a whole micro-batch).",
            ["model"],
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        ).labels(model)
        self.batch_size = Histogram(
            "ml_batch_size",
            "Texts per forward pass; its _count is the number of forward passes.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        ).labels(model)
        Gauge(
            "ml_device_info",
            "Device the model runs on (value is always 1).",
            ["model", "device"],
            registry=registry,
        ).labels(model, device).set(1)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)
