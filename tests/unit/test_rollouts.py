"""How each Deployment replaces its pods: GPU pods never wait for a surge slot."""

from __future__ import annotations

from typing import Any

import pytest

from .support import build, find


@pytest.mark.parametrize(
    ("ml", "strategy"),
    [
        ({}, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        ({"gpu": {"enabled": True}}, {"type": "Recreate"}),
        (
            {"replicas": 3, "gpu": {"enabled": True}},
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        ),
    ],
    ids=["cpu-surges", "one-gpu-replica-recreates", "gpu-replicas-replace-one-by-one"],
)
def test_ml_rollout_strategy(ml: dict[str, Any], strategy: dict[str, Any]) -> None:
    objs = build({"ml": ml})
    assert find(objs, "Deployment", "demo-ml")["spec"]["strategy"] == strategy


def test_gpus_do_not_change_the_other_services() -> None:
    objs = build({"ml": {"replicas": 2, "gpu": {"enabled": True}}})
    for name in ("demo-api", "demo-excel", "demo-gateway"):
        assert find(objs, "Deployment", name)["spec"]["strategy"]["rollingUpdate"] == {
            "maxSurge": 1,
            "maxUnavailable": 0,
        }


def test_services_keep_serving_until_kong_forgot_them() -> None:
    """preStop pause >= Kong's DNS TTL, then uvicorn's 10 s drain, inside the grace period."""
    from indexforge_operator.builders.python_service import DRAIN_SECONDS, KONG_DNS_TTL_SECONDS

    objs = build({"messaging": {"enabled": True}})
    gateway = find(objs, "Deployment", "demo-gateway")["spec"]["template"]["spec"]
    kong_env = {e["name"]: e.get("value") for e in gateway["containers"][0]["env"]}
    assert kong_env["KONG_DNS_VALID_TTL"] == str(KONG_DNS_TTL_SECONDS)
    assert DRAIN_SECONDS > KONG_DNS_TTL_SECONDS
    for name in ("demo-api", "demo-ml", "demo-excel"):
        pod = find(objs, "Deployment", name)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}}
        assert pod["terminationGracePeriodSeconds"] >= DRAIN_SECONDS + 10
    worker = find(objs, "Deployment", "demo-worker")["spec"]["template"]["spec"]
    assert "lifecycle" not in worker["containers"][0]  # nobody routes to a worker
