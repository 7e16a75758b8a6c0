#!/usr/bin/env bash
# Run the cluster test suites against a kind cluster. Needs a Docker engine and `kind`;
# without them it says why and exits 0 (this is the path the local control plane replaces).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v kind >/dev/null || ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "e2e-kind skipped: needs a running Docker engine and the kind binary (docker info / kind not available here)."
  exit 0
fi

CLUSTER=indexforge-e2e
KUBECONFIG_FILE="$(mktemp)"
trap 'kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; rm -f "$KUBECONFIG_FILE"' EXIT

kind create cluster --config tests/e2e/kind-config.yaml --kubeconfig "$KUBECONFIG_FILE" --wait 120s
export KUBECONFIG="$KUBECONFIG_FILE"

# Advertise 4 fake GPUs on the GPU worker so GPU-scheduled pods fit, as on the local control plane.
gpu_node="$(kubectl get nodes -l nvidia.com/gpu.present=true -o jsonpath='{.items[0].metadata.name}')"
kubectl patch node "$gpu_node" --subresource=status --type=merge \
  -p '{"status":{"capacity":{"nvidia.com/gpu":"4"},"allocatable":{"nvidia.com/gpu":"4"}}}'
# kind's default class is "standard" like the local control plane's.

# Real service images for the traffic tests (tests/e2e/test_gateway_kind.py): built here,
# loaded into the nodes, used with imagePullPolicy Never.
for component in api ml excel; do
  docker build -q -f "docker/${component}.Dockerfile" -t "indexforge-${component}:e2e" .
  kind load docker-image --name "$CLUSTER" "indexforge-${component}:e2e"
done
export INDEXFORGE_E2E_IMAGES='indexforge-{component}:e2e'

.venv/bin/pytest -q -m cluster tests
