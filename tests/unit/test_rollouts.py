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
