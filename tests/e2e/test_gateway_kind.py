"""Real traffic through a real Kong on kind: what the local control plane cannot show
(kwok runs no containers, Kong cannot run on our machines).

Runs only from `make e2e-kind` (tests/e2e/run-kind.sh builds the service images, loads them
into kind and sets INDEXFORGE_E2E_IMAGES); elsewhere it is skipped with that reason. Checks:
no key -> 401, over the limit -> 429, job polling is never answered from Kong's cache, and a
pod in another namespace calling the API around Kong gets 401 even though kind's default CNI
does not enforce NetworkPolicies (the gateway token is what stops it)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import kubectl
from tests.integration.test_operator import _apply, _sample, _wait_ready

IMAGES = os.environ.get("INDEXFORGE_E2E_IMAGES", "")  # e.g. "indexforge-{component}:e2e"
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("operator_process"),
    pytest.mark.skipif(not IMAGES, reason="needs kind with the service images: make e2e-kind"),
]
API_LIMIT = 20


def _spec() -> dict[str, Any]:
    image = {c: {"image": IMAGES.format(component=c), "imagePullPolicy": "Never"}
             for c in ("api", "ml", "excel")}  # fmt: skip
    return {
        **image,
        "ml": {**image["ml"], "gpu": {"enabled": False}},
        "gateway": {"rateLimiting": {"apiPerMinute": API_LIMIT}},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gateway(api_client, kubeconfig: Path, namespace: str) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(base URL of a port-forward to Kong's proxy Service, the default consumer's key)."""
    _apply(kubeconfig, _sample(namespace, **_spec()))
    _wait_ready(api_client, namespace, "demo", timeout=900)
    data = client.CoreV1Api(api_client).read_namespaced_secret("demo-gateway-consumers", namespace)
    key = base64.b64decode(data.data["default"]).decode()
    port = _free_port()
    forward = subprocess.Popen(
        ["kubectl", f"--kubeconfig={kubeconfig}", "-n", namespace, "port-forward",
         "svc/demo-gateway", f"{port}:80"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)
        yield f"http://127.0.0.1:{port}", key
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def _call(
    url: str, *, key: str | None = None, body: bytes | None = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {"apikey": key} if key else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, None, dict(err.headers)


def test_kong_enforces_keys_limits_and_never_caches_jobs(gateway: tuple[str, str]) -> None:
    base, key = gateway
    assert _call(f"{base}/api/v1/search?q=x")[0] == 401
    upload = json.dumps({"text": "kind e2e document about umbrellas", "source": "e2e"}).encode()
    status, job, _ = _call(f"{base}/api/v1/documents", key=key, body=upload)
    assert status == 202, status
    states = []
    for _ in range(10):  # a cached "queued" would never turn into "completed"
        status, body, headers = _call(f"{base}/api/v1/jobs/{job['job_id']}", key=key)
        assert status == 200 and headers.get("X-Cache-Status") != "Hit", headers
        states.append(body["status"])
        if body["status"] == "completed":
            break
        time.sleep(3)
    assert states[-1] == "completed", states
    codes = [_call(f"{base}/api/v1/search?q=umbrella", key=key)[0] for _ in range(API_LIMIT + 2)]
    assert 429 in codes, codes


def test_calling_the_api_around_kong_is_refused(kubeconfig: Path, namespace: str,
                                                gateway: tuple[str, str]) -> None:  # fmt: skip
    other = f"{namespace}-outsider"
    kubectl(kubeconfig, "create", "namespace", other)
    try:
        out = kubectl(
            kubeconfig, "-n", other, "run", "probe", "--rm", "-i", "--restart=Never",
            "--image=docker.io/curlimages/curl:8.11.1", "--",
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
            "X-Consumer-Username: admin",
            f"http://demo-api.{namespace}.svc:8000/api/v1/search?q=x", check=False,
        )  # fmt: skip
        assert "401" in out, out
    finally:
        kubectl(kubeconfig, "delete", "namespace", other, "--wait=false", check=False)
