"""`make demo`: local control plane -> CRD -> operator -> the sample IndexForge, until Ready.

Leaves everything running so you can look around (`kubectl get ifg,deploy,sts,pods`);
`make demo-down` (or `make cluster-down`) stops the operator and the control plane.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests import operator_identity
from tests.cluster import controlplane, tools
from tests.procs import free_port

ROOT = tools.REPO_ROOT
CRD = ROOT / "crds" / "indexforge.io_indexforges.yaml"
SAMPLE = ROOT / "manifests" / "samples" / "indexforge.yaml"


def _kubectl(kcfg: Path, *args: str) -> str:
    proc = subprocess.run(
        ["kubectl", f"--kubeconfig={kcfg}", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def _established(crd_json: str) -> bool:
    conditions = (json.loads(crd_json).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.demo")
    parser.add_argument("--down", action="store_true", help="stop what the demo started")
    parser.add_argument("--timeout", type=int, default=180)
    args = parser.parse_args(argv)
    state = Path(os.environ.get("INDEXFORGE_CLUSTER_DIR", controlplane.DEFAULT_STATE_DIR))
    if args.down:
        print("stopped:", ", ".join(controlplane.down(state)) or "nothing")
        return 0

    started = time.monotonic()
    tools.ensure_built(tools.CONTROL_PLANE_TOOLS)
    tools.link_all(tools.CONTROL_PLANE_TOOLS)
    kcfg = controlplane.up(state)
    print(f"control plane ready in {time.monotonic() - started:.1f}s  (export KUBECONFIG={kcfg})")

    _kubectl(kcfg, "apply", "--server-side", "-f", str(CRD))
    # Polled: right after the apply the CRD has no status yet, and both `kubectl wait` and a
    # jsonpath filter on its conditions fail at once instead of waiting.
    deadline = time.monotonic() + 60
    while not _established(_kubectl(kcfg, "get", "crd/indexforges.indexforge.io", "-o", "json")):
        if time.monotonic() > deadline:
            raise SystemExit("the IndexForge CRD did not become Established within 60 s")
        time.sleep(0.25)
    bin_dir = Path(sys.executable).parent
    operator_identity.install_rbac(kcfg)
    identity = operator_identity.service_account_kubeconfig(kcfg, state / "operator-kubeconfig")
    controlplane.start_extra(
        state,
        "operator",
        [
            str(bin_dir / "indexforge-operator"),
            "--liveness",
            f"http://127.0.0.1:{free_port()}/healthz",
            "--metrics-address",
            "127.0.0.1",
            "--metrics-port",
            str(free_port()),
        ],
        # As installed: the chart's ServiceAccount and RBAC, a Lease for leader election.
        env={
            "KUBECONFIG": str(identity),
            "INDEXFORGE_LEADER_ELECTION_NAMESPACE": operator_identity.NAMESPACE,
        },
    )
    print("operator started as its ServiceAccount (log: .cluster/logs/operator.log)")

    applied_at = time.monotonic()
    _kubectl(kcfg, "apply", "-f", str(SAMPLE))
    name = _kubectl(kcfg, "get", "-f", str(SAMPLE), "-o", "jsonpath={.metadata.name}")
    namespace = _kubectl(kcfg, "get", "-f", str(SAMPLE), "-o", "jsonpath={.metadata.namespace}")
    proc = subprocess.run(
        ["kubectl", f"--kubeconfig={kcfg}", "-n", namespace, "wait", "--for=condition=Ready",
         f"indexforge/{name}", f"--timeout={args.timeout}s"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        status = _kubectl(kcfg, "-n", namespace, "get", f"indexforge/{name}", "-o", "json")
        print(json.dumps(json.loads(status).get("status", {}), indent=2))
        print(f"IndexForge {name} did not become Ready: {proc.stderr.strip()}", file=sys.stderr)
        return 1
    print(f"IndexForge {namespace}/{name} Ready {time.monotonic() - applied_at:.1f}s after apply")
    print(_kubectl(kcfg, "-n", namespace, "get", "indexforge,deploy,sts,pods", "-o", "wide"))
    print(f"export KUBECONFIG={kcfg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
