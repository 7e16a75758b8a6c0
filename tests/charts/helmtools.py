"""Running helm and `indexforge render` for the chart tests (bounded, with clear failures)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / ".tools" / "bin" / "helm"
KUBECONFORM = REPO / ".tools" / "bin" / "kubeconform"
STATIC_CHART = REPO / "charts" / "indexforge"
OPERATOR_CHART = REPO / "charts" / "indexforge-operator"
CHARTS = (STATIC_CHART, OPERATOR_CHART)
# The local control plane's version; helm's built-in default (v1.20) predates the charts.
KUBE_VERSION = "v1.36.3"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
ALERTMANAGER_CONFIG_API = "monitoring.coreos.com/v1alpha1/AlertmanagerConfig"
# The optional integrations messaging detects (`auto`), as `render --rabbitmq-cluster/--keda`.
RABBITMQ_CLUSTER_API = "rabbitmq.com/v1beta1/RabbitmqCluster"
KEDA_API = "keda.sh/v1alpha1/ScaledObject"
RABBITMQ_TOPOLOGY_API = "rabbitmq.com/v1beta1/Queue"
# Istio's APIs (mesh.mode auto), as `render --istio`.
ISTIO_API = "security.istio.io/v1/PeerAuthentication"
STATIC_VARIANTS = sorted((STATIC_CHART / "ci").glob("*-values.yaml"))
OPERATOR_VARIANTS = sorted((OPERATOR_CHART / "ci").glob("*-values.yaml"))


def require(tool: Path) -> Path:
    if not tool.exists():
        pytest.fail(f"{tool.relative_to(REPO)} is missing: run `make tools` first")
    return tool


def run(cmd: Sequence[str], *, timeout: float = 120, check: bool = True, **kw: Any) -> str:
    proc = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(str(c) for c in cmd)}` exited {proc.returncode}:\n"
            f"{proc.stderr.strip()[-4000:]}"
        )
    out: str = proc.stdout if check else proc.stdout + proc.stderr
    return out


def helm(*args: str, timeout: float = 120, check: bool = True) -> str:
    return run([str(require(HELM)), *args], timeout=timeout, check=check)


def helm_template(
    chart: Path,
    *,
    release: str = "demo",
    namespace: str = "ns1",
    values: Sequence[Path] = (),
    set_values: Sequence[str] = (),
    prometheus_operator: bool = False,
    rabbitmq_cluster: bool = False,
    keda: bool = False,
    rabbitmq_topology: bool = False,
    istio: bool = False,
    extra: Sequence[str] = (),
) -> str:
    args = ["template", release, str(chart), "--namespace", namespace,
            "--kube-version", KUBE_VERSION]  # fmt: skip
    for v in values:
        args += ["-f", str(v)]
    for s in set_values:
        args += ["--set", s]
    if (
        prometheus_operator
    ):  # the whole prometheus-operator CRD set, as `render --prometheus-operator`
        args += ["--api-versions", SERVICE_MONITOR_API, "--api-versions", ALERTMANAGER_CONFIG_API]
    if rabbitmq_cluster:
        args += ["--api-versions", RABBITMQ_CLUSTER_API]
    if keda:
        args += ["--api-versions", KEDA_API]
    if rabbitmq_topology:
        args += ["--api-versions", RABBITMQ_TOPOLOGY_API]
    if istio:
        args += ["--api-versions", ISTIO_API]
    return helm(*args, *extra)


def render_cr(
    cr_path: Path,
    *,
    prometheus_operator: bool = False,
    rabbitmq_cluster: bool = False,
    keda: bool = False,
    rabbitmq_topology: bool = False,
    istio: bool = False,
) -> str:
    """`indexforge render -f` (the console script's module, with this interpreter)."""
    cmd = [sys.executable, "-m", "indexforge_operator.cli", "render", "-f", str(cr_path)]
    if prometheus_operator:
        cmd.append("--prometheus-operator")
    if rabbitmq_cluster:
        cmd.append("--rabbitmq-cluster")
    if keda:
        cmd.append("--keda")
    if rabbitmq_topology:
        cmd.append("--rabbitmq-topology")
    if istio:
        cmd.append("--istio")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(
            f"`indexforge render -f {cr_path.name}` failed (exit {proc.returncode}); the parity "
            f"test needs the operator's render to work:\n{proc.stderr.strip()[-3000:]}"
        )
    return proc.stdout


def cr_for(values: Path | None, *, name: str, namespace: str) -> dict[str, Any]:
    spec = yaml.safe_load(values.read_text()) if values else {}
    return {
        "apiVersion": "indexforge.io/v1alpha1",
        "kind": "IndexForge",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {},
    }
