"""The static chart renders the same objects as the operator, for every fixture spec.

Each `charts/indexforge/ci/*-values.yaml` (and the all-defaults spec) is rendered twice:
`helm template -f <values>` and `indexforge render -f <cr>` of an IndexForge whose spec is
that file, with the release/CR name and namespace equal. Both monitoring modes are covered
(prometheus-operator CRDs present or not); the messaging fixtures are rendered once more with
the RabbitMQ cluster operator's and KEDA's CRDs present. Differences print per object and field.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.charts.helmtools import STATIC_CHART, STATIC_VARIANTS, cr_for, helm_template, render_cr
from tests.charts.parity import compare, index, load_stream

FIXTURES = [None, *STATIC_VARIANTS]
NAME, NAMESPACE = "parity", "parity-ns"


def _ids(path: Path | None) -> str:
    return "defaults" if path is None else path.name.removesuffix("-values.yaml")


def _both(
    values: Path | None,
    tmp_path: Path,
    *,
    prometheus_operator: bool,
    integrations: bool = False,
    istio: bool = False,
) -> tuple[str, str]:
    """`integrations`: the RabbitMQ cluster and topology operators' and KEDA's APIs are served
    (helm's --api-versions; the operator's rabbitmq_cluster, keda, rabbitmq_topology);
    `istio`: Istio's."""
    cr = tmp_path / "cr.yaml"
    cr.write_text(yaml.safe_dump(cr_for(values, name=NAME, namespace=NAMESPACE)))
    chart = helm_template(
        STATIC_CHART, release=NAME, namespace=NAMESPACE,
        values=[values] if values else [], prometheus_operator=prometheus_operator,
        rabbitmq_cluster=integrations, keda=integrations, rabbitmq_topology=integrations,
        istio=istio,
    )  # fmt: skip
    operator = render_cr(
        cr,
        prometheus_operator=prometheus_operator,
        rabbitmq_cluster=integrations,
        keda=integrations,
        rabbitmq_topology=integrations,
        istio=istio,
    )
    return chart, operator


@pytest.mark.parametrize("prometheus_operator", [False, True], ids=["standalone", "prom-operator"])
@pytest.mark.parametrize("values", FIXTURES, ids=_ids)
def test_chart_matches_operator(
    values: Path | None, prometheus_operator: bool, tmp_path: Path
) -> None:
    chart, operator = _both(values, tmp_path, prometheus_operator=prometheus_operator)
    chart_objs, operator_objs = load_stream(chart), load_stream(operator)
    assert len(index(operator_objs)) > 10, "the operator rendered (almost) nothing"
    problems = compare(chart_objs, operator_objs)
    assert not problems, "static chart and operator differ:\n" + "\n".join(problems)


MESSAGING = [p for p in STATIC_VARIANTS if _ids(p).startswith("messaging")]


@pytest.mark.parametrize("prometheus_operator", [False, True], ids=["standalone", "prom-operator"])
@pytest.mark.parametrize("values", MESSAGING, ids=_ids)
def test_chart_matches_operator_with_rabbitmq_and_keda_crds(
    values: Path, prometheus_operator: bool, tmp_path: Path
) -> None:
    """Messaging's `auto` choices follow the served APIs in both: a RabbitmqCluster and a KEDA
    ScaledObject instead of the built-in broker and a CPU HPA."""
    chart, operator = _both(
        values, tmp_path, prometheus_operator=prometheus_operator, integrations=True
    )
    problems = compare(load_stream(chart), load_stream(operator))
    assert not problems, "static chart and operator differ:\n" + "\n".join(problems)


MESH = [
    p
    for p in STATIC_VARIANTS
    if _ids(p) in ("mesh", "full", "messaging", "gateway-off", "redis-sentinel")
]


@pytest.mark.parametrize("prometheus_operator", [False, True], ids=["standalone", "prom-operator"])
@pytest.mark.parametrize("values", MESH, ids=_ids)
def test_chart_matches_operator_with_istio_crds(
    values: Path, prometheus_operator: bool, tmp_path: Path
) -> None:
    """mesh.mode auto with Istio's APIs served: sidecar labels, PeerAuthentications,
    DestinationRules and AuthorizationPolicies in both (with the messaging integrations too,
    so the RabbitmqCluster's brokers stay out of the mesh)."""
    chart, operator = _both(
        values, tmp_path, prometheus_operator=prometheus_operator, integrations=True, istio=True
    )
    chart_objs = load_stream(chart)
    assert {"PeerAuthentication", "AuthorizationPolicy"} <= {o["kind"] for o in chart_objs}
    problems = compare(chart_objs, load_stream(operator))
    assert not problems, "static chart and operator differ:\n" + "\n".join(problems)


def test_mesh_none_with_istio_installed_opts_every_pod_out(tmp_path: Path) -> None:
    """mesh.mode none while Istio's APIs are served: no Istio objects, and every pod template
    says sidecar.istio.io/inject "false" in both (so switching the mesh off rolls the pods)."""
    (mesh,) = [p for p in STATIC_VARIANTS if _ids(p) == "mesh"]
    values = tmp_path / "mesh-none-values.yaml"
    raw = yaml.safe_load(mesh.read_text())
    values.write_text(yaml.safe_dump({**raw, "mesh": {"mode": "none"}}))
    chart, operator = _both(values, tmp_path, prometheus_operator=False, istio=True)
    chart_objs = load_stream(chart)
    assert not {"PeerAuthentication", "AuthorizationPolicy"} & {o["kind"] for o in chart_objs}
    pods = [o for o in chart_objs if o["kind"] in ("Deployment", "StatefulSet")]
    assert pods and all(
        o["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        for o in pods
    )
    problems = compare(chart_objs, load_stream(operator))
    assert not problems, "static chart and operator differ:\n" + "\n".join(problems)


def test_fixture_variants_exist() -> None:
    names = {_ids(p) for p in STATIC_VARIANTS}
    assert {"gpu-on", "gpu-off", "monitoring-off", "gateway-off", "minimal", "full"} <= names
    assert {"messaging", "messaging-single", "messaging-fixed"} <= names


def test_messaging_fixtures_exercise_both_providers_and_every_scaler(tmp_path: Path) -> None:
    """Not vacuous: across the messaging fixtures, with and without the integration CRDs, the
    chart renders each broker and each way of scaling workers."""
    kinds: set[str] = set()
    for values in MESSAGING:
        for integrations in (False, True):
            chart, _ = _both(values, tmp_path, prometheus_operator=False, integrations=integrations)
            kinds |= {o["kind"] for o in load_stream(chart)}
    assert {"StatefulSet", "RabbitmqCluster", "ScaledObject", "TriggerAuthentication"} <= kinds
    assert "HorizontalPodAutoscaler" in kinds


def test_parity_catches_a_difference(tmp_path: Path) -> None:
    """The comparison is not vacuous: a changed value shows up, named by object and field."""
    values = tmp_path / "values.yaml"
    values.write_text("api: {replicas: 3, autoscaling: {enabled: false}}\n")
    cr = tmp_path / "cr.yaml"
    spec = {"api": {"replicas": 4, "autoscaling": {"enabled": False}}}
    doc = cr_for(None, name=NAME, namespace=NAMESPACE) | {"spec": spec}
    cr.write_text(yaml.safe_dump(doc))
    chart = helm_template(STATIC_CHART, release=NAME, namespace=NAMESPACE, values=[values])
    problems = compare(load_stream(chart), load_stream(render_cr(cr)))
    assert f"Deployment {NAMESPACE}/{NAME}-api:" in problems
    assert any("spec.replicas: chart 3 != operator 4" in p for p in problems), problems
