"""`indexforge render` and `indexforge crd`, and the sample CRs under manifests/samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from indexforge_operator.cli import main
from indexforge_operator.crd import CRD_FILE
from indexforge_operator.decisions import check_spec, components
from indexforge_operator.render import RenderError, find_cr, parse_spec, render_text

from .support import counter_tokens

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
CR = (
    "apiVersion: indexforge.io/v1alpha1\nkind: IndexForge\n"
    "metadata: {name: demo, namespace: shop}\n"
)


def test_all_five_samples_exist() -> None:
    assert {p.name for p in SAMPLES} >= {
        "indexforge.yaml",
        "minimal.yaml",
        "full.yaml",
        "gpu.yaml",
        "cpu-only.yaml",
    }


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_samples_are_valid_and_coherent(path: Path) -> None:
    cr = find_cr(path.read_text())
    spec = parse_spec(cr.get("spec"))
    assert check_spec(spec, prometheus_operator=False) == []
    assert render_text(path.read_text(), token=counter_tokens(), prometheus_operator=False)


def test_default_sample_has_gpu_messaging_and_every_component() -> None:
    cr = find_cr((ROOT / "manifests/samples/indexforge.yaml").read_text())
    spec = parse_spec(cr["spec"])
    assert spec.ml.gpu.enabled
    assert components(spec, prometheus_operator=False) == [
        "api",
        "ml",
        "excel",
        "redis-app",
        "redis-ml",
        "redis-state",
        "weaviate",
        "gateway",
        "prometheus",
        "alertmanager",
        "grafana",
        "jaeger",
        "rabbitmq",
        "worker",
    ]


def test_render_prints_a_yaml_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(CR + "spec: {ml: {gpu: {enabled: true}}}\n")
    assert main(["render", "-f", str(cr)]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "StatefulSet", "Service", "Secret", "NetworkPolicy"} <= kinds
    assert "ServiceMonitor" not in kinds
    assert all(d["metadata"]["namespace"] == "shop" for d in docs)


def test_render_prometheus_operator_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(CR)
    assert main(["render", "-f", str(cr), "--prometheus-operator", "-n", "other"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert {"ServiceMonitor", "PrometheusRule"} <= {d["kind"] for d in docs}
    assert {d["metadata"]["namespace"] for d in docs} == {"other"}


@pytest.mark.parametrize("rabbitmq_cluster", [False, True], ids=["builtin", "rabbitmq-cluster"])
@pytest.mark.parametrize("keda", [False, True], ids=["hpa", "keda"])
def test_render_messaging_integration_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rabbitmq_cluster: bool, keda: bool
) -> None:
    """--rabbitmq-cluster / --keda: render as if those CRDs existed (`auto` follows them), as
    the static chart does with helm's --api-versions."""
    cr = tmp_path / "cr.yaml"
    cr.write_text(CR + "spec: {messaging: {enabled: true}}\n")
    flags = [f for f, on in (("--rabbitmq-cluster", rabbitmq_cluster), ("--keda", keda)) if on]
    assert main(["render", "-f", str(cr), *flags]) == 0
    kinds = {d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)}
    assert ("RabbitmqCluster" in kinds) is rabbitmq_cluster
    assert ("ScaledObject" in kinds) is keda
    assert ("TriggerAuthentication" in kinds) is keda
    assert ("HorizontalPodAutoscaler" in kinds) is True  # the API's HPA is always there


def test_render_forced_integration_without_its_flag_leaves_the_objects_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cr = tmp_path / "cr.yaml"
    spec = (
        "{messaging: {enabled: true, provider: rabbitmqClusterOperator, workers: {scaler: keda}}}"
    )
    cr.write_text(CR + f"spec: {spec}\n")
    assert main(["render", "-f", str(cr)]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"RabbitmqCluster", "ScaledObject", "TriggerAuthentication"}
    assert main(["render", "-f", str(cr), "--rabbitmq-cluster", "--keda"]) == 0
    kinds = {d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)}
    assert {"RabbitmqCluster", "ScaledObject", "TriggerAuthentication"} <= kinds


def test_render_generates_fresh_secrets_each_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(CR)
    outputs = []
    for _ in range(2):
        main(["render", "-f", str(cr)])
        outputs.append(capsys.readouterr().out)
    assert outputs[0] != outputs[1]  # secrets.token_urlsafe at the CLI edge


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (CR + "spec: {api: {replicas: -1}}\n", "spec.api.replicas"),
        (CR + "spec: {sentry: {dsn: x}}\n", "inline"),
        ("apiVersion: v1\nkind: ConfigMap\n", "no IndexForge"),
        ("apiVersion: indexforge.io/v2\nkind: IndexForge\nmetadata: {name: a}\n", "apiVersion"),
        (
            "apiVersion: indexforge.io/v1alpha1\nkind: IndexForge\nmetadata: {name: 9bad}\n",
            "metadata",
        ),
        ("key: [unclosed\n", "YAML"),
    ],
)
def test_render_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(text)
    assert main(["render", "-f", str(cr)]) == 2
    assert needle in capsys.readouterr().err
    with pytest.raises(RenderError):
        render_text(text, token=counter_tokens(), prometheus_operator=False)


def test_crd_command_prints_the_checked_in_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == (ROOT / CRD_FILE).read_text()
    assert main(["crd", "--check", str(ROOT / CRD_FILE)]) == 0


def test_crd_check_detects_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text((ROOT / CRD_FILE).read_text().replace("maxLength: 512", "maxLength: 511", 1))
    assert main(["crd", "--check", str(stale)]) == 1
