"""The spec model: defaults named in the issue, and rejection of bad specs with clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator import spec_checks
from indexforge_operator.spec import IndexForgeSpec
from tests import admission_cases

# camelCase path -> default the platform plan names.
DEFAULTS: list[tuple[str, Any]] = [
    ("paused", False),
    ("deletionPolicy", "Retain"),
    ("api.cache.responseTtlSeconds", 300),
    ("api.cache.sessionTtlSeconds", 86400),
    ("api.cache.rateLimitWindowSeconds", 3600),
    ("api.autoscaling.enabled", True),
    ("ml.gpu.resourceName", "nvidia.com/gpu"),
    ("ml.gpu.count", 1),
    ("redis.app.maxmemory", "512mb"),
    ("redis.app.maxmemoryPolicy", "allkeys-lru"),
    ("redis.app.appendonly", True),
    ("redis.app.resources.limits", {"cpu": "500m", "memory": "768Mi"}),
    ("redis.ml.maxmemory", "1gb"),
    ("redis.ml.maxmemoryPolicy", "volatile-lru"),
    ("redis.ml.appendonly", True),
    ("redis.ml.resources.limits", {"cpu": "1", "memory": "1536Mi"}),
    ("weaviate.vectorizer", "text2vec-transformers"),
    ("gateway.enabled", True),
    ("gateway.routes.api", "/api/v1/"),
    ("gateway.routes.ml", "/api/v1/ml/"),
    ("gateway.rateLimiting.apiPerMinute", 60),
    ("gateway.rateLimiting.mlPerMinute", 30),
    ("gateway.rateLimiting.policy", "redis"),
    ("gateway.proxyCache.contentTypes", ["application/json"]),
    ("gateway.proxyCache.ttlSeconds", 30),
    ("gateway.proxyCache.strategy", "memory"),
    ("gateway.correlationId.headerName", "Kong-Request-ID"),
    ("gateway.correlationId.generator", "uuid#counter"),
    ("gateway.correlationId.echoDownstream", True),
    ("gateway.upstream.algorithm", "round-robin"),
    ("gateway.upstream.active.enabled", True),
    ("gateway.upstream.passive.enabled", True),
    ("monitoring.prometheus.retention", "15d"),
    ("monitoring.jaeger.retention", "7d"),
    ("monitoring.alerts.errorRatePercent", 1.0),
    ("monitoring.alerts.latencyP95Milliseconds", 500),
    ("monitoring.alerts.memoryPercent", 85),
    # The platform plan's monitoring values (issue 11, item 6).
    ("monitoring.prometheus.scrapeInterval", "15s"),
    ("monitoring.prometheus.evaluationInterval", "15s"),
    ("monitoring.serviceMonitor.interval", "15s"),
    ("monitoring.prometheus.resources.limits", {"cpu": "1", "memory": "2Gi"}),
    ("monitoring.prometheus.resources.requests.memory", "1Gi"),
    ("monitoring.jaeger.resources.limits", {"cpu": "1", "memory": "2Gi"}),
    ("monitoring.jaeger.resources.requests.memory", "1Gi"),
    ("monitoring.grafana.resources.limits", {"cpu": "500m", "memory": "1Gi"}),
    ("monitoring.grafana.resources.requests.memory", "512Mi"),
    ("monitoring.prometheus.retention", "15d"),
    ("monitoring.jaeger.retention", "7d"),
    ("monitoring.alerts.cpuPercent", 80),
    ("sentry.tracesSampleRate", 0.1),
    ("sentry.profilesSampleRate", 0.1),
]


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


@pytest.mark.parametrize(("path", "expected"), DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_empty_spec_gets_the_planned_defaults(path: str, expected: Any) -> None:
    dumped = IndexForgeSpec.model_validate({}).model_dump(by_alias=True, mode="json")
    assert _get(dumped, path) == expected


# (id, partial spec, text the error must contain)
BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("wrong-type", {"api": {"replicas": "many"}}, "api.replicas"),
    ("out-of-range", {"api": {"replicas": 0}}, "api.replicas"),
    ("number-too-large", {"ml": {"gpu": {"count": 17}}}, "ml.gpu.count"),
    ("bad-enum", {"deletionPolicy": "Shred"}, "deletionPolicy"),
    ("bad-redis-policy", {"redis": {"app": {"maxmemoryPolicy": "lru"}}}, "maxmemoryPolicy"),
    ("gpu-resource-format", {"ml": {"gpu": {"resourceName": "gpu"}}}, "resourceName"),
    (
        "gpu-kubernetes-domain",
        {"ml": {"gpu": {"resourceName": "kubernetes.io/gpu"}}},
        "kubernetes.io",
    ),
    ("gpu-on-zero", {"ml": {"gpu": {"enabled": True, "count": 0}}}, "gpu.count must be at least 1"),
    ("min-gt-max", {"api": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}, "minReplicas"),
    ("inline-dsn", {"sentry": {"dsn": "https://k@sentry.example/1"}}, "must not be set inline"),
    ("sentry-without-ref", {"sentry": {"enabled": True}}, "dsnSecretRef is required"),
    ("long-string", {"ml": {"model": "m" * 300}}, "ml.model"),
    ("unknown-field", {"api": {"replica": 2}}, "api.replica"),
    ("snake-case", {"deletion_policy": "Delete"}, "deletion_policy"),
    ("bad-quantity", {"api": {"resources": {"limits": {"cpu": "lots"}}}}, "limits"),
    (
        "too-many-consumers",
        {"gateway": {"keyAuth": {"consumers": [{"username": f"u{i}"} for i in range(33)]}}},
        "consumers",
    ),
    (
        "duplicate-consumers",
        {"gateway": {"keyAuth": {"consumers": [{"username": "a"}, {"username": "a"}]}}},
        "unique",
    ),
    ("empty-ip-restriction", {"gateway": {"ipRestriction": {"enabled": True}}}, "ipRestriction"),
    ("cors-credentials-wildcard", {"gateway": {"cors": {"credentials": True}}}, "cors.credentials"),
    ("same-routes", {"gateway": {"routes": {"api": "/x/", "ml": "/x/"}}}, "must differ"),
    ("route-without-slash", {"gateway": {"routes": {"ml": "/api/v1/ml"}}}, "routes.ml"),
    ("tls-without-secret", {"gateway": {"tls": {"enabled": True}}}, "secretName"),
    ("bad-retention", {"monitoring": {"prometheus": {"retention": "15 days"}}}, "retention"),
    ("bad-percent", {"monitoring": {"alerts": {"memoryPercent": 150}}}, "memoryPercent"),
    (
        "toleration-exists-value",
        {"ml": {"gpu": {"tolerations": [{"operator": "Exists", "value": "x"}]}}},
        "Exists",
    ),
    ("bad-image", {"api": {"image": "Not An Image"}}, "api.image"),
    ("bad-label-key", {"monitoring": {"serviceMonitor": {"labels": {"bad key": "x"}}}}, "labels"),
]


@pytest.mark.parametrize(
    ("raw", "needle"), [(b[1], b[2]) for b in BAD_SPECS], ids=[b[0] for b in BAD_SPECS]
)
def test_bad_specs_are_rejected_with_a_pointed_message(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        IndexForgeSpec.model_validate(raw)
    text = "\n".join(
        ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in caught.value.errors()
    )
    assert needle in text


def test_spec_is_immutable() -> None:
    spec = IndexForgeSpec.model_validate({})
    with pytest.raises(ValidationError):
        spec.paused = True  # type: ignore[misc]


def test_every_field_has_a_description() -> None:
    missing: list[str] = []

    def walk(model: Any, path: str) -> None:
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{path}.{name}")
            annotation = field.annotation
            for candidate in getattr(annotation, "__args__", (annotation,)):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    walk(candidate, f"{path}.{name}")

    walk(IndexForgeSpec, "spec")
    assert missing == []


# --- admission syntax checks (shared table: the API server and the chart run it too) -------


@pytest.mark.parametrize("case", admission_cases.BAD, ids=[c.id for c in admission_cases.BAD])
def test_model_rejects_what_admission_rejects(case: admission_cases.Case) -> None:
    with pytest.raises(ValidationError) as caught:
        IndexForgeSpec.model_validate(case.spec)
    assert case.message in str(caught.value), str(caught.value)


@pytest.mark.parametrize("case", admission_cases.GOOD, ids=[c.id for c in admission_cases.GOOD])
def test_model_accepts_what_admission_accepts(case: admission_cases.Case) -> None:
    IndexForgeSpec.model_validate(case.spec)


@pytest.mark.parametrize(
    ("text", "ip", "cidr"),
    [
        ("192.168.1.1", True, False),
        ("::1", True, False),
        ("10.0.0.0/8", False, True),
        ("192.168.1.1/24", False, True),  # host bits set: netip.ParsePrefix accepts it too
        ("::/0", False, True),
        ("10.0.0.0/33", False, False),
        ("10.0.0.0/+8", False, False),
        ("10.0.0.0/", False, False),
        ("fe80::1%eth0", False, False),  # zones are refused by isIP()
        ("fe80::1%eth0/64", False, False),
        ("::ffff:1.2.3.4", False, False),  # so are IPv4-mapped addresses
        ("10.0.0.0/255.0.0.0", False, False),  # Python would read a netmask here; CEL does not
    ],
)
def test_ip_and_cidr_checks_follow_cel(text: str, ip: bool, cidr: bool) -> None:
    assert (spec_checks.is_ip(text), spec_checks.is_cidr(text)) == (ip, cidr)


def test_requests_over_limits_compares_quantities_not_strings() -> None:
    assert spec_checks.requests_over_limits({"cpu": "900m"}, {"cpu": "1"}) is None
    assert spec_checks.requests_over_limits({"cpu": "10"}, {"cpu": "9"}) is not None
    assert spec_checks.requests_over_limits({"memory": "2Gi"}, {"cpu": "1"}) is None
