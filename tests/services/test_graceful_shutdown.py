"""A service terminated under load loses no request: in-flight requests finish, and a client
that retries idempotent requests on a connection error (as Kong does across its upstream's
targets) sees only successes.

Two real Excel processor processes share the traffic (round robin, like Kong's balancer);
one gets SIGTERM — what the kubelet sends after the pre-stop pause — while a slow parse is in
flight on it. In the cluster the pause (builders/python_service.DRAIN_SECONDS, longer than
Kong's DNS TTL) keeps new requests away first; here the worst case is tested: requests still
arriving at the terminating process.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from .service_process import ServiceProcess
from .workbooks import xlsx

PARSE = "/api/v1/excel/parse"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LOAD_SECONDS = 8.0
CLIENTS = 3


def _workbook(rows: int) -> bytes:
    header = ("sku", "name", "price")
    return xlsx({"Sheet": [header, *((i, f"item {i}", i * 1.5) for i in range(rows))]})


def _post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{url}{PARSE}", files={"file": ("w.xlsx", body, XLSX)}, timeout=60)


def _post_signalling(url: str, body: bytes, sent: threading.Event) -> httpx.Response:
    """POST the workbook; `sent` is set once the whole body went out on the connection."""
    request = httpx.Request("POST", f"{url}{PARSE}", files={"file": ("w.xlsx", body, XLSX)})
    payload = request.read()

    def chunks() -> Iterator[bytes]:
        yield payload
        sent.set()

    headers = {"content-type": request.headers["content-type"]}
    return httpx.post(f"{url}{PARSE}", content=chunks(), headers=headers, timeout=60)


def _with_retry(urls: list[str], first: int, body: bytes) -> tuple[int, int]:
    """(status, attempts): a connection error before a response is retried on the next
    instance, as for any idempotent request; an HTTP answer is final."""
    for attempt in range(len(urls) * 2):
        url = urls[(first + attempt) % len(urls)]
        try:
            return _post(url, body).status_code, attempt + 1
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
            continue
    return 0, len(urls) * 2


def test_terminating_a_service_under_load_fails_no_request(tmp_path: Path) -> None:
    # The slow parse takes a few seconds here: well inside uvicorn's 10 s graceful timeout.
    small, slow = _workbook(200), _workbook(4_000)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a = ServiceProcess("excel", {}, tmp_path / "a").start()
    b = ServiceProcess("excel", {}, tmp_path / "b").start()
    try:
        urls = [a.url, b.url]
        results: list[tuple[int, int]] = []
        lock, stop = threading.Lock(), threading.Event()
        turn = itertools.count()

        def client() -> None:
            while not stop.is_set():
                outcome = _with_retry(urls, next(turn) % 2, small)
                with lock:
                    results.append(outcome)

        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        time.sleep(1.0)
        in_flight: dict[str, httpx.Response] = {}
        sent = threading.Event()
        slow_request = threading.Thread(
            target=lambda: in_flight.update(r=_post_signalling(a.url, slow, sent))
        )
        slow_request.start()
        assert sent.wait(timeout=30), "the slow upload was never sent"
        time.sleep(0.2)  # the slow parse is under way on A
        terminated_at = time.monotonic()
        os.kill(a.pid, signal.SIGTERM)
        slow_request.join(timeout=60)
        assert a.proc is not None
        exit_code = a.proc.wait(timeout=20)
        exited_after = time.monotonic() - terminated_at
        time.sleep(max(0.0, LOAD_SECONDS - 1.3 - exited_after))
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    finally:
        a.stop()
        b.stop()

    finished = in_flight["r"]
    assert finished.status_code == 200, finished.text[:300]
    assert finished.json()["sheets"], "the in-flight parse returned its whole answer"
    # uvicorn re-raises the signal once shut down: -SIGTERM means a graceful exit, not a kill.
    assert exit_code in (0, -signal.SIGTERM), f"exit code {exit_code}"
    assert "Application shutdown complete" in (tmp_path / "a" / "excel.log").read_text()
    failed = [r for r in results if r[0] != 200]
    retried = sum(1 for r in results if r[1] > 1)
    print(
        f"\ngraceful shutdown: {len(results)} requests, {retried} retried on the other "
        f"instance, {len(failed)} failed; in-flight parse 200; exited in {exited_after:.2f}s"
    )
    assert len(results) > 10 and not failed, failed
