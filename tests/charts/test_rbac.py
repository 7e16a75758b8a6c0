"""The operator chart grants exactly what the operator's code uses (permissions.py).

Compared as (apiGroup, resource, verb) triples per scope, both ways: an extra grant fails
(least privilege), a missing one fails (the operator would be refused). The integration
tests then run the operator under this very RBAC.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from indexforge_operator import permissions
from tests.charts.helmtools import OPERATOR_CHART, helm_template

Triple = tuple[str, str, str]


def _rules(
    docs: list[dict[str, Any]], kind: str, namespace: str | None = None
) -> dict[str, set[Triple]]:
    out: dict[str, set[Triple]] = {}
    for doc in docs:
        if doc.get("kind") != kind:
            continue
        if namespace is not None and doc["metadata"].get("namespace") != namespace:
            continue
        triples = out.setdefault(doc["metadata"]["name"], set())
        for rule in doc.get("rules") or []:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb), (
                            f"wildcard in {doc['metadata']['name']}"
                        )
                        triples.add((group, resource, verb))
    return out


def _render(*sets: str) -> list[dict[str, Any]]:
    text = helm_template(
        OPERATOR_CHART, release="op", namespace="indexforge-system", set_values=sets
    )
    return [d for d in yaml.safe_load_all(text) if d]


def _diff(granted: set[Triple], needed: set[Triple]) -> str:
    unused, missing = sorted(granted - needed), sorted(needed - granted)
    return f"granted but unused: {unused}; needed but missing: {missing}"


def test_cluster_wide_mode_grants_exactly_what_the_code_uses() -> None:
    docs = _render()
    cluster = _rules(docs, "ClusterRole")
    assert len(cluster) == 1
    granted = next(iter(cluster.values()))
    needed = permissions.flatten(permissions.namespaced_rules() + permissions.cluster_rules())
    assert granted == needed, _diff(granted, needed)
    roles = _rules(docs, "Role", "indexforge-system")
    assert list(roles.values()) == [permissions.flatten(permissions.leader_election_rules())]


def test_watch_namespaces_mode_grants_namespaced_rules_per_namespace_only() -> None:
    docs = _render("watchNamespaces={team-a,team-b}")
    cluster = next(iter(_rules(docs, "ClusterRole").values()))
    expected = permissions.flatten(permissions.cluster_rules(namespaced=True))
    assert cluster == expected, "no cluster-wide Secrets: " + _diff(cluster, expected)
    for ns in ("team-a", "team-b"):
        roles = _rules(docs, "Role", ns)
        assert list(roles.values()) == [permissions.flatten(permissions.namespaced_rules())], ns
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert {b["metadata"]["namespace"] for b in bindings} == {
        "team-a",
        "team-b",
        "indexforge-system",
    }


def test_without_leader_election_there_is_one_replica_and_no_lease_role() -> None:
    docs = _render("leaderElection.enabled=false", "replicas=3")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not _rules(docs, "Role", "indexforge-system")


@pytest.mark.parametrize("replicas", [2, 3])
def test_leader_election_runs_the_requested_replicas_with_lease_env(replicas: int) -> None:
    docs = _render(f"replicas={replicas}")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == replicas
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INDEXFORGE_LEADER_ELECTION_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace"
    )
    assert "POD_NAME" in env
