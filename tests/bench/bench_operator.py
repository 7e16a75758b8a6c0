"""Operator benchmark on the local control plane: N IndexForges vs N `helm install`s.

    python -m tests.bench.bench_operator [--counts 50,200] [--namespaces 5] [--rest 120]

For each N, on one fresh control plane per N (so N=200 does not inherit N=50's objects):

1. idle baseline: the API server's ``apiserver_request_total`` rate with nothing deployed;
2. operator (as its ServiceAccount, leader election on): N lean CRs across ``namespaces``
   namespaces, time until every CR is Ready; operator RSS; requests per CR per minute at rest
   (API server counter minus the idle baseline, and the operator's own counter); time from
   deleting one child to its restoration;
3. helm: the same stack installed N times with the static chart (same spec as values), time
   until every workload is ready — the ratio operator/helm is the figure that matters.

"Lean" = the plan's defaults with monitoring off, a fixed API replica count (no HPA) and no
PVCs: the same objects for both paths, fewer pods for kwok and no volumes for the harness's
provisioner (PVC binding, not the operator, dominated the first attempt). Not collected by
pytest; prints a table and one JSON line per N.
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from tests.cluster import controlplane, objects, tools
from tests.operator_identity import NAMESPACE, install_rbac, service_account_kubeconfig
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "indexforge.io_indexforges.yaml"
STATIC_CHART = REPO / "charts" / "indexforge"
LEAN: dict[str, Any] = {
    "monitoring": {"enabled": False},
    "api": {"autoscaling": {"enabled": False}},
    "redis": {
        "app": {"persistence": {"enabled": False}},
        "ml": {"persistence": {"enabled": False}},
    },
    "weaviate": {"persistence": {"enabled": False}},
}


def _apiserver_requests(state: Path) -> float:
    """Sum of apiserver_request_total (every client, every verb) scraped with the admin cert."""
    record = json.loads((state / "state.json").read_text())
    ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(state / "pki" / "admin.crt"), str(state / "pki" / "admin.key"))
    with urllib.request.urlopen(f"{record['server']}/metrics", context=ctx, timeout=30) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("apiserver_request_total{")
    )


def _rate_per_minute(state: Path, seconds: float) -> float:
    start = _apiserver_requests(state)
    time.sleep(seconds)
    return (_apiserver_requests(state) - start) * 60 / seconds


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _apply_all(kcfg: Path, items: list[dict[str, Any]]) -> None:
    """One `kubectl apply` for many objects (a v1 List)."""
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    controlplane.kubectl(kcfg, "apply", "-f", "-", stdin=body)


def _namespaces(kcfg: Path, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(count)]
    _apply_all(kcfg, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                      for n in names])  # fmt: skip
    return names


def _all_ready(custom: client.CustomObjectsApi, expected: int) -> bool:
    items = custom.list_cluster_custom_object("indexforge.io", "v1alpha1", "indexforges")["items"]
    phases: dict[str, int] = {}
    for cr in items:
        phase = cr.get("status", {}).get("phase", "none")
        phases[phase] = phases.get(phase, 0) + 1
    print(f"  {time.strftime('%H:%M:%S')} {phases}", flush=True)
    return phases.get("Ready", 0) >= expected


def bench_operator(kcfg: Path, state: Path, count: int, spaces: int, rest: float) -> dict[str, Any]:
    api = config.new_client_from_config(config_file=str(kcfg))  # type: ignore[no-untyped-call]
    idle = _rate_per_minute(state, 30)
    controlplane.kubectl(kcfg, "apply", "--server-side", "-f", str(CRD))
    controlplane.kubectl(
        kcfg, "wait", "--for=condition=Established", "crd/indexforges.indexforge.io"
    )
    install_rbac(kcfg)
    work = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    identity = service_account_kubeconfig(kcfg, work / "kubeconfig")
    operator = OperatorProcess(
        kubeconfig=identity, workdir=work, env={"INDEXFORGE_LEADER_ELECTION_NAMESPACE": NAMESPACE}
    ).start()
    try:
        namespaces = _namespaces(kcfg, "bench-op", spaces)
        crs = [
            {"apiVersion": "indexforge.io/v1alpha1", "kind": "IndexForge",
             "metadata": {"name": f"s{i}", "namespace": namespaces[i % spaces]}, "spec": LEAN}
            for i in range(count)
        ]  # fmt: skip
        started = time.monotonic()
        _apply_all(kcfg, crs)
        custom = client.CustomObjectsApi(api)
        wait_for(lambda: _all_ready(custom, count), timeout=120 + 15 * count, interval=10,
                 what=f"{count} IndexForges Ready")  # fmt: skip
        all_ready = time.monotonic() - started
        assert operator.proc is not None
        rss_ready = _rss_mb(operator.proc.pid)
        time.sleep(15)  # the last status writes and HPA-free rollouts settle
        ours_before = operator.metric("indexforge_operator_api_requests_total")
        at_rest = _rate_per_minute(state, rest)
        ours = (operator.metric("indexforge_operator_api_requests_total") - ours_before) * 60 / rest
        core = client.CoreV1Api(api)
        target = "s0-redis-app-config"
        core.delete_namespaced_config_map(target, namespaces[0])
        deleted = time.monotonic()
        wait_for(lambda: core.read_namespaced_config_map(target, namespaces[0]), timeout=60,
                 interval=0.05, what="drift restored")  # fmt: skip
        drift = time.monotonic() - deleted
        return {
            "crs": count,
            "all_ready_s": round(all_ready, 1),
            "rss_mb": round(max(rss_ready, _rss_mb(operator.proc.pid)), 1),
            "cached_objects": operator.metric("indexforge_operator_cached_objects"),
            "idle_requests_per_min": round(idle, 1),
            "rest_requests_per_min": round(at_rest, 1),
            "requests_per_cr_per_min": round(max(0.0, at_rest - idle) / count, 3),
            "operator_requests_per_cr_per_min": round(ours / count, 3),
            "drift_restored_s": round(drift, 2),
        }
    finally:
        operator.stop()
        api.close()


def add_nodes(kcfg: Path, stacks: int) -> int:
    """kwok CPU nodes (16 CPUs each) enough for ``stacks`` lean stacks (~2.5 CPUs requested
    each): the harness's two nodes hold about a dozen, and the scheduler must not be what is
    measured."""
    count = stacks // 5 + 2
    items = [objects.node(f"kwok-bench-{i}", gpu=False) for i in range(count)]
    _apply_all(kcfg, items)
    return count


def bench_helm(kcfg: Path, count: int, spaces: int) -> dict[str, Any]:
    namespaces = _namespaces(kcfg, "bench-helm", spaces)
    work = Path(tempfile.mkdtemp(prefix="bench-helm-"))
    values = work / "values.yaml"
    values.write_text(yaml.safe_dump(LEAN))
    helm = str(tools.tool_path("helm"))
    started = time.monotonic()
    for i in range(count):
        subprocess.run(
            [helm, "install", f"h{i}", str(STATIC_CHART), "-n", namespaces[i % spaces],
             "-f", str(values), f"--kubeconfig={kcfg}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    for ns in namespaces:
        for kind in ("deployment", "statefulset"):
            controlplane.kubectl(kcfg, "-n", ns, "rollout", "status", kind, "--timeout=600s")
    return {"releases": count, "all_ready_s": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_operator")
    parser.add_argument("--counts", default="50,200")
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--rest", type=float, default=120.0, help="seconds measured at rest")
    parser.add_argument("--no-helm", action="store_true", help="skip the helm loop (ratio)")
    args = parser.parse_args(argv)
    tools.ensure_built([*tools.CONTROL_PLANE_TOOLS, "helm"])
    tools.link_all([*tools.CONTROL_PLANE_TOOLS, "helm"])
    results = []
    for count in (int(c) for c in args.counts.split(",")):
        state = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{count}-"))
        kcfg = controlplane.up(state)
        try:
            add_nodes(kcfg, 2 * count)  # the operator's stacks stay while helm installs its own
            op = bench_operator(kcfg, state, count, args.namespaces, args.rest)
            helm = None if args.no_helm else bench_helm(kcfg, count, args.namespaces)
        finally:
            controlplane.down(state)
        row = {**op, "helm_all_ready_s": None, "ratio_operator_to_helm": None}
        if helm is not None:
            ratio = round(op["all_ready_s"] / helm["all_ready_s"], 2)
            row.update(helm_all_ready_s=helm["all_ready_s"], ratio_operator_to_helm=ratio)
        results.append(row)
        print(json.dumps(row))
    print(f"{'CRs':>5} {'ready s':>8} {'helm s':>7} {'ratio':>6} {'RSS MB':>7} "
          f"{'req/CR/min':>10} {'ours':>6} {'drift s':>7}")  # fmt: skip
    for r in results:
        print(f"{r['crs']:>5} {r['all_ready_s']:>8} {r['helm_all_ready_s'] or '-':>7} "
              f"{r['ratio_operator_to_helm'] or '-':>6} {r['rss_mb']:>7} "
              f"{r['requests_per_cr_per_min']:>10} {r['operator_requests_per_cr_per_min']:>6} "
              f"{r['drift_restored_s']:>7}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
