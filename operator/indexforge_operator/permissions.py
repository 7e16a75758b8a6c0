"""The RBAC the operator's code needs, derived from what it calls; the charts grant exactly this.

Each rule names the code path that uses it. ``tests/charts/test_rbac.py`` compares the
rendered chart (both modes) with these rules, and the integration tests run the operator
under that chart's ServiceAccount, so a missing verb fails a test as surely as an extra one.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexforge_operator.kube import RESOURCES


@dataclass(frozen=True)
class Rule:
    group: str
    resource: str
    verbs: frozenset[str]
    why: str


# Children: watched into the cache (list, watch), read when the cache lacks one (get),
# server-side applied (patch; create when the apply creates), pruned (delete).
CHILD_VERBS = frozenset({"get", "list", "watch", "create", "patch", "delete"})


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def namespaced_rules() -> list[Rule]:
    """What the operator does inside each namespace it watches."""
    rules = [
        Rule(
            "indexforge.io",
            "indexforges",
            frozenset({"get", "list", "watch", "patch"}),
            "watch CRs; patch drops the finalizer of older operator versions",
        ),
        Rule("indexforge.io", "indexforges/status", frozenset({"patch"}), "write status"),
        Rule(
            "indexforge.io",
            "indexforges/finalizers",
            frozenset({"update"}),
            "blockOwnerDeletion on children (OwnerReferencesPermissionEnforcement)",
        ),
        Rule(
            "",
            "events",
            frozenset({"list", "create", "patch"}),
            "post/aggregate; read FailedScheduling",
        ),
        Rule("", "pods", frozenset({"list"}), "explain an unschedulable ML pod (GPU shortage)"),
        Rule(
            "",
            "persistentvolumeclaims",
            frozenset({"list", "patch"}),
            "volume expansion: read a StatefulSet's PVCs and grow them (volumes.py)",
        ),
    ]
    rules += [
        Rule(_group(r.api_version), r.plural, CHILD_VERBS, f"child {r.kind}") for r in RESOURCES
    ]
    return rules


def cluster_rules(*, namespaced: bool = False) -> list[Rule]:
    """Cluster-scoped: kopf discovers resources by CRDs (integrations too); when watching a
    list of namespaces, kopf also watches Namespaces to notice one being created or deleted
    (without that it retries for a minute at start-up before falling back)."""
    rules = [
        Rule(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            frozenset({"get", "list", "watch"}),
            "kopf resource discovery; prometheus-operator detection",
        ),
        Rule(
            "storage.k8s.io",
            "storageclasses",
            frozenset({"get"}),
            "volume expansion: whether a PVC's StorageClass allows it (volumes.py)",
        ),
    ]
    if namespaced:
        rules.append(
            Rule("", "namespaces", frozenset({"list", "watch"}), "kopf namespace observation")
        )
    return rules


def leader_election_rules() -> list[Rule]:
    """In the operator's own namespace, with leader election on."""
    return [
        Rule(
            "coordination.k8s.io",
            "leases",
            frozenset({"get", "create", "update"}),
            "leader election (leader.py)",
        )
    ]


def flatten(rules: list[Rule]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) triples: the unit both sides are compared in."""
    return {(r.group, r.resource, verb) for r in rules for verb in r.verbs}
