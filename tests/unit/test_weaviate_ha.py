"""Weaviate as a cluster: the rendered StatefulSet, Services and NetworkPolicy of
`weaviate.replicas > 1`, and the replication factor the API and workers receive.

The env names and defaults were checked against weaviate-server 1.35.2's source
(usecases/config/environment.go, parseRAFTConfig and parseClusterConfig): RAFT_JOIN entries
without a port use the default Raft port 8300 (our RAFT_PORT), the Raft RPC port is
RAFT_INTERNAL_RPC_PORT, RAFT_BOOTSTRAP_EXPECT may not exceed the RAFT_JOIN entries.
`tests/services/test_weaviate_cluster.py` runs three real servers with this env.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator.builders import ports
from indexforge_operator.spec import REPLICATION_FACTOR_MESSAGE, IndexForgeSpec
from indexforge_services.api.index_config import replication
from indexforge_services.api.settings import ApiSettings

from .support import NAMES, build, find

STS = NAMES.component("weaviate")
PEER_TCP = {
    ports.WEAVIATE_GOSSIP,
    ports.WEAVIATE_DATA,
    ports.WEAVIATE_RAFT,
    ports.WEAVIATE_RAFT_RPC,
}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _weaviate(objs: list[dict[str, Any]]) -> dict[str, Any]:
    sts: dict[str, Any] = find(objs, "StatefulSet", STS)
    return sts


def test_three_replicas_render_one_raft_cluster() -> None:
    objs = build({"weaviate": {"replicas": 3}})
    sts = _weaviate(objs)
    assert sts["spec"]["replicas"] == 3
    # Raft elects only once a majority runs: every pod starts at once.
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    headless = NAMES.headless("weaviate")
    assert sts["spec"]["serviceName"] == headless
    env = _env(sts["spec"]["template"]["spec"]["containers"][0])
    assert env["CLUSTER_HOSTNAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["RAFT_JOIN"] == f"{STS}-0,{STS}-1,{STS}-2"  # pod names: CLUSTER_HOSTNAME
    assert env["RAFT_BOOTSTRAP_EXPECT"] == "3"
    assert env["CLUSTER_JOIN"] == f"{headless}.shop.svc"
    assert (env["RAFT_PORT"], env["RAFT_INTERNAL_RPC_PORT"]) == ("8300", "8301")
    assert (env["CLUSTER_GOSSIP_BIND_PORT"], env["CLUSTER_DATA_BIND_PORT"]) == ("7000", "7001")


def test_peers_find_each_other_before_they_are_ready() -> None:
    objs = build({"weaviate": {"replicas": 3}})
    headless = find(objs, "Service", NAMES.headless("weaviate"))["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} >= PEER_TCP
    # Clients only ever see HTTP and gRPC.
    client = find(objs, "Service", STS)["spec"]
    assert {p["port"] for p in client["ports"]} == {ports.WEAVIATE_HTTP, ports.WEAVIATE_GRPC}
    container = _weaviate(objs)["spec"]["template"]["spec"]["containers"][0]
    declared = {(p["containerPort"], p["protocol"]) for p in container["ports"]}
    assert {(p, "TCP") for p in PEER_TCP} | {(ports.WEAVIATE_GOSSIP, "UDP")} <= declared


def test_network_policy_lets_weaviate_pods_gossip_replicate_and_vote() -> None:
    objs = build({"weaviate": {"replicas": 3}})
    policy = find(objs, "NetworkPolicy", STS)["spec"]
    me = {"podSelector": policy["podSelector"]}
    ingress = [r for r in policy["ingress"] if r.get("from") == [me]]
    egress = [r for r in policy["egress"] if r.get("to") == [me]]
    for rules in (ingress, egress):
        assert len(rules) == 1, rules
        allowed = {(p["port"], p["protocol"]) for p in rules[0]["ports"]}
        assert allowed == {(p, "TCP") for p in PEER_TCP} | {(ports.WEAVIATE_GOSSIP, "UDP")}
    # Nothing but Weaviate itself reaches the cluster ports.
    for rule in policy["ingress"]:
        if rule.get("from") != [me]:
            assert not PEER_TCP & {p["port"] for p in rule["ports"]}, rule


@pytest.mark.parametrize(
    ("weaviate", "factor"),
    [
        ({}, 1),
        ({"replicas": 2}, 2),
        ({"replicas": 3}, 3),
        ({"replicas": 5}, 3),
        ({"replicas": 5, "replicationFactor": 5}, 5),
        ({"replicas": 3, "replicationFactor": 1}, 1),
    ],
)
def test_api_and_workers_get_the_replication_factor(weaviate: dict[str, Any], factor: int) -> None:
    objs = build({"weaviate": weaviate, "messaging": {"enabled": True, "provider": "builtin"}})
    for kind, name in (("Deployment", "api"), ("Deployment", "worker")):
        container = find(objs, kind, NAMES.component(name))["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert _env(container)["INDEXFORGE_WEAVIATE_REPLICATION_FACTOR"] == str(factor), name
        # The env parses into the API's settings (same name, same bounds).
        settings = ApiSettings(weaviate_replication_factor=factor)
        assert settings.weaviate_replication_factor == factor


@pytest.mark.parametrize(
    "weaviate",
    [{"replicas": 1, "replicationFactor": 2}, {"replicas": 3, "replicationFactor": 4}],
)
def test_factor_above_replicas_is_rejected(weaviate: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=REPLICATION_FACTOR_MESSAGE):
        IndexForgeSpec.model_validate({"weaviate": weaviate})


def test_factor_zero_or_above_nine_is_out_of_bounds() -> None:
    for bad in (0, 10):
        with pytest.raises(ValidationError):
            IndexForgeSpec.model_validate({"weaviate": {"replicas": 9, "replicationFactor": bad}})


def test_collections_get_the_factor_and_async_repair_only_with_copies() -> None:
    one = replication(ApiSettings(weaviate_replication_factor=1))
    three = replication(ApiSettings(weaviate_replication_factor=3))
    assert (one.factor, one.asyncEnabled) == (1, False)
    assert (three.factor, three.asyncEnabled) == (3, True)
