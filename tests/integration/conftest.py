"""Cluster fixtures for the operator: the CRD installed and the operator running as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.tools import REPO_ROOT
from tests.waiting import wait_for

CRD_FILE = REPO_ROOT / "crds" / "indexforge.io_indexforges.yaml"
RESYNC_SECONDS = 3


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout if check else proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def crd_installed(kubeconfig: Path) -> Path:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/indexforges.indexforge.io")
    return CRD_FILE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def operator_process(
    kubeconfig: Path, crd_installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The real operator (kopf) as a subprocess; yields its log file."""
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "INDEXFORGE_RESYNC_SECONDS": str(RESYNC_SECONDS),
    }
    port = _free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "indexforge_operator", "--liveness",
             f"http://127.0.0.1:{port}/healthz"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
        )  # fmt: skip
    try:
        import urllib.request

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=60, what="operator liveness endpoint")
        yield log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
