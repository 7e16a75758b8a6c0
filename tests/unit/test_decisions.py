"""Pure decisions: monitoring mode, combinations the schema cannot check, GPU and Sentry facts."""

from __future__ import annotations

from typing import Any

import pytest

from indexforge_operator.decisions import (
    check_gpu_capacity,
    check_sentry_secret,
    check_spec,
    gpu_from_scheduling,
    mode_message,
    monitoring_mode,
)

from .support import make_spec

GPU = {"ml": {"gpu": {"enabled": True, "count": 2}}}
SENTRY = {"sentry": {"enabled": True, "dsnSecretRef": {"name": "s", "key": "dsn"}}}


@pytest.mark.parametrize(
    ("raw", "operator_mode", "mode"),
    [
        ({}, False, "Standalone"),
        ({}, True, "PrometheusOperator"),
        ({"monitoring": {"prometheus": {"enabled": False}}}, False, "Disabled"),
        ({"monitoring": {"prometheus": {"enabled": False}}}, True, "PrometheusOperator"),
        ({"monitoring": {"enabled": False}}, True, "Disabled"),
    ],
)
def test_monitoring_mode(raw: dict[str, Any], operator_mode: bool, mode: str) -> None:
    assert monitoring_mode(make_spec(raw), prometheus_operator=operator_mode) == mode
    reason, message = mode_message(
        monitoring_mode(make_spec(raw), prometheus_operator=operator_mode)
    )
    assert reason == f"Monitoring{mode}" and message


@pytest.mark.parametrize(
    ("raw", "reasons"),
    [
        ({}, []),
        ({"redis": {"app": {"maxmemory": "1gb"}}}, ["RedisMaxmemoryExceedsLimit"]),
        (
            {"redis": {"ml": {"resources": {"limits": {"memory": "512Mi"}}}}},
            ["RedisMaxmemoryExceedsLimit"],
        ),
        ({"monitoring": {"prometheus": {"enabled": False}}}, ["GrafanaWithoutPrometheus"]),
        ({"monitoring": {"prometheus": {"enabled": False, "externalUrl": "http://prom:9090"}}}, []),
        ({"gateway": {"keyAuth": {"consumers": []}}}, ["GatewayWithoutConsumers"]),
    ],
)
def test_check_spec(raw: dict[str, Any], reasons: list[str]) -> None:
    found = check_spec(make_spec(raw), prometheus_operator=False)
    assert [f.reason for f in found] == reasons
    assert all(f.message for f in found)


@pytest.mark.parametrize(
    ("raw", "nodes", "reason"),
    [
        ({}, [], None),
        (GPU, [4, 0], None),
        (GPU, [1, 1], "InsufficientGPU"),
        (GPU, [], "InsufficientGPU"),
    ],
)
def test_gpu_capacity(raw: dict[str, Any], nodes: list[int], reason: str | None) -> None:
    found = check_gpu_capacity(make_spec(raw), allocatable=nodes)
    assert (found.reason if found else None) == reason


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", "InsufficientGPU"),
        ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint.", None),
        ("0/2 nodes are available: 2 Insufficient amd.com/gpu.", None),
    ],
)
def test_gpu_from_scheduling_events(message: str, reason: str | None) -> None:
    found = gpu_from_scheduling(make_spec(GPU), messages=[message])
    assert (found.reason if found else None) == reason


def test_gpu_events_ignored_when_gpu_off() -> None:
    assert gpu_from_scheduling(make_spec({}), messages=["3 Insufficient nvidia.com/gpu."]) is None


@pytest.mark.parametrize(
    ("raw", "data", "reason"),
    [
        ({}, None, None),
        (SENTRY, None, "SentrySecretMissing"),
        (SENTRY, {"other": "eA=="}, "SentrySecretKeyMissing"),
        (SENTRY, {"dsn": "aHR0cHM6Ly94"}, None),
    ],
)
def test_sentry_secret(
    raw: dict[str, Any], data: dict[str, str] | None, reason: str | None
) -> None:
    found = check_sentry_secret(make_spec(raw), data=data)
    assert (found.reason if found else None) == reason
    if found:
        assert "aHR0cHM6Ly94" not in found.message  # never echo secret material
