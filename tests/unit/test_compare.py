"""compare.drift / compare.trim: what counts as drift, what the cache keeps."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from indexforge_operator import compare
from indexforge_operator.builders import build_all
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]


def _deployment(**container: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x-api", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "api", "image": "i:1", **container}]}},
        },
    }


def _as_served(obj: Obj) -> Obj:
    """What the API server hands back: defaults added, managedFields and status present."""
    live = copy.deepcopy(obj)
    live["metadata"].update(uid="u", resourceVersion="9", managedFields=[{"manager": "x"}])
    live["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    tmpl = live["spec"]["template"]["spec"]
    tmpl["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    tmpl["restartPolicy"] = "Always"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"readyReplicas": 2, "conditions": [{"type": "Available"}]}
    return live


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o["spec"].update(replicas=3), "spec.replicas"),
        (lambda o: o["metadata"]["labels"].update(a="c"), "metadata.labels.a"),
        (lambda o: o["metadata"]["labels"].pop("a"), "metadata.labels.a"),
        (
            lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="i:2"),
            "spec.template.spec.containers[api].image",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["containers"].clear(),
            "spec.template.spec.containers[api]",
        ),
        (lambda o: o.pop("spec"), "spec"),
    ],
)
def test_a_changed_or_removed_field_we_set_is_drift(mutate: Any, expected: str) -> None:
    desired = _deployment()
    live = compare.trim(_as_served(desired))
    mutate(live)
    assert compare.drift(desired, live) == expected


def test_missing_object_is_drift() -> None:
    assert compare.drift(_deployment(), None) == "missing"


def test_fields_added_by_the_server_or_others_are_not_drift() -> None:
    desired = _deployment()
    live = compare.trim(_as_served(desired))
    live["spec"]["template"]["spec"]["containers"].append({"name": "istio-proxy"})  # a sidecar
    live["metadata"]["labels"]["team"] = "search"
    assert compare.drift(desired, live) is None


def test_quantities_compare_by_value_in_resources_only() -> None:
    desired = _deployment(resources={"requests": {"cpu": "0.5", "memory": "1Gi"}})
    live = compare.trim(_as_served(desired))
    live["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "500m", "memory": "1024Mi"}
    }
    assert compare.drift(desired, live) is None
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "600m"
    assert (
        compare.drift(desired, live) == "spec.template.spec.containers[api].resources.requests.cpu"
    )
    # Outside resources a string is a string: "0.5" and "500m" differ.
    other = _deployment(args=["0.5"])
    served = compare.trim(_as_served(other))
    served["spec"]["template"]["spec"]["containers"][0]["args"] = ["500m"]
    assert compare.drift(other, served) is not None


def test_empty_values_the_server_drops_are_not_drift() -> None:
    desired = _deployment(args=[], env=[])
    live = compare.trim(_as_served(_deployment()))
    assert compare.drift(desired, live) is None


def test_trim_drops_managed_fields_and_status_and_digests_config() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "managedFields": [{"m": 1}]},
        "data": {"redis.conf": "maxmemory 1gb\n"},
    }
    cached = compare.trim(cm)
    assert "managedFields" not in cached["metadata"]
    assert cached["data"]["redis.conf"].startswith(compare.DIGEST_PREFIX)
    assert "maxmemory" not in str(cached)
    assert compare.drift(cm, cached) is None
    changed = copy.deepcopy(cm)
    changed["data"]["redis.conf"] = "maxmemory 2gb\n"
    assert compare.drift(changed, cached) == "data.redis.conf"
    workload = compare.trim(_as_served(_deployment()))
    assert workload["status"] == {"readyReplicas": 2}


def test_secret_values_are_not_kept_unless_asked() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns"},
        "data": {"key": "c2VjcmV0"},
    }
    assert "c2VjcmV0" not in str(compare.trim(secret))
    assert compare.trim(secret, keep_data=True)["data"] == {"key": "c2VjcmV0"}


def test_a_second_owner_reference_added_by_someone_else_is_not_drift() -> None:
    desired = _deployment()
    desired["metadata"]["ownerReferences"] = [{"uid": "a", "kind": "IndexForge", "name": "x"}]
    live = compare.trim(_as_served(desired))
    live["metadata"]["ownerReferences"].append({"uid": "b", "kind": "Other", "name": "y"})
    assert compare.drift(desired, live) is None


def test_every_built_object_matches_its_own_served_form() -> None:
    """All builder output round-trips: no object of the default stack drifts against itself."""
    spec = IndexForgeSpec.model_validate({})
    secrets = complete(spec, current=GeneratedSecrets(), token=lambda: "k")
    for obj in build_all(spec, Names("x", "ns"), secrets=secrets, prometheus_operator=False):
        assert compare.drift(obj, compare.trim(copy.deepcopy(obj))) is None, obj["metadata"]["name"]


def test_zero_values_the_server_omits_are_not_drift_but_non_zero_are() -> None:
    desired = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"publishNotReadyAddresses": False, "clusterIP": "None"}}  # fmt: skip
    live = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"clusterIP": "None", "ports": []}}  # fmt: skip
    assert compare.drift(desired, live) is None
    desired["spec"]["publishNotReadyAddresses"] = True
    assert compare.drift(desired, live) == "spec.publishNotReadyAddresses"
