"""Issue 10, finding 5: an upload costs its size on disk, not several times it in memory.

The body used to be buffered (chunks + joined copy), parsed into a spooled form, read back
and decoded: a 45 MB text file lifted a real API process's peak RSS by ~300 MB. Now the body
is streamed once into a temporary file (never named on disk, closed on every path), parsed
from there off the event loop, and at most `max_concurrent_uploads` are received at once:
the next gets 429 with Retry-After before its body is read.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from indexforge_services.excel.app import create_app as create_excel_app
from tests.procs import free_port
from tests.waiting import wait_for

from .conftest import ApiFactory, ServerThread, excel_settings, metric, wait_job
from .service_process import ServiceProcess, open_files_under
from .workbooks import products_xlsx

MIB = 1024 * 1024
UPLOAD_BYTES = 45 * MIB
BOUNDARY = "indexforge-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def part_head(name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def big_text() -> bytes:
    paragraph = ("A sentence of the long report, with a few words. " * 20 + "\n\n").encode()
    return paragraph * (UPLOAD_BYTES // len(paragraph))


def big_workbook() -> bytes:
    """A valid-looking .xlsx of 45 MB: a stored, incompressible member (no zip bomb)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/media/image1.bin", os.urandom(UPLOAD_BYTES))
    return buf.getvalue()


def peak_growth_mib(api: ServiceProcess, name: str, data: bytes) -> float:
    before = api.memory_kib("VmHWM")
    with httpx.Client(base_url=api.url, timeout=120) as client:
        accepted = client.post(
            "/api/v1/documents", files={"file": (name, data, "application/octet-stream")}
        )
        assert accepted.status_code == 202, accepted.text[:300]
        job = wait_job(client, accepted.json()["job_id"], timeout=120)
        assert job["status"] == "failed", job  # Weaviate is down on purpose: reading is measured
    return (api.memory_kib("VmHWM") - before) / 1024


def test_peak_rss_of_a_real_api_process_stays_near_one_copy(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    excel = create_excel_app(excel_settings(max_upload_bytes=64 * MIB))
    with ServerThread(excel) as excel_server:
        env = {
            # No Weaviate: the job fails right after reading, which is what is measured.
            "INDEXFORGE_WEAVIATE_URL": f"http://127.0.0.1:{free_port()}",
            "INDEXFORGE_WEAVIATE_GRPC_PORT": str(free_port()),
            "INDEXFORGE_EXCEL_URL": excel_server.url,
            "INDEXFORGE_UPLOAD_TMP_DIR": str(spool),
            "TMPDIR": str(spool),
        }
        figures = {}
        for name, data in (("big.xlsx", big_workbook()), ("big.txt", big_text())):
            # A process per upload: VmHWM is a high-water mark since the process started.
            with ServiceProcess("api", env, tmp_path) as api:
                figures[name] = peak_growth_mib(api, name, data)
                assert api.open_files_under(spool) == []
            assert list(spool.iterdir()) == []
    print(f"\npeak RSS growth for {UPLOAD_BYTES // MIB} MiB uploads: "
          + ", ".join(f"{k} +{v:.0f} MiB" for k, v in figures.items()))  # fmt: skip
    # The workbook is only checked and forwarded from disk; the text becomes 45 MB of chunks.
    assert figures["big.xlsx"] < 20, figures
    assert figures["big.txt"] < 100, figures


class SlowUpload:
    """A multipart upload whose body stops after its first bytes until `release()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.gate = threading.Event()
        self.response: httpx.Response | None = None
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _body(self) -> Iterator[bytes]:
        yield part_head("slow.txt") + b"first words. "
        self.gate.wait(timeout=60)
        yield b"last words." + TAIL

    def _send(self) -> None:
        headers = {"content-type": MULTIPART}
        self.response = httpx.post(
            f"{self.url}/api/v1/documents", content=self._body(), headers=headers, timeout=90
        )

    def release(self) -> httpx.Response:
        self.gate.set()
        self.thread.join(timeout=60)
        assert self.response is not None
        return self.response


def small_upload(client: httpx.Client) -> httpx.Response:
    return client.post("/api/v1/documents", files={"file": ("a.txt", b"hello there", "text/plain")})


def test_uploads_beyond_the_limit_get_429_before_their_body_is_read(
    make_api: ApiFactory,
) -> None:
    with (
        make_api(max_concurrent_uploads=2) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        slow = [SlowUpload(server.url) for _ in range(2)]
        for upload in slow:
            upload.thread.start()
        in_progress = lambda: metric(server.app, "api_uploads_in_progress") == 2  # noqa: E731
        wait_for(in_progress, timeout=10, what="two uploads receiving")
        refused = small_upload(client)
        assert refused.status_code == 429, refused.text[:300]
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["code"] == "too_many_uploads"
        assert metric(server.app, "api_uploads_refused_total") >= 1
        assert [u.release().status_code for u in slow] == [202, 202]
        wait_for(lambda: metric(server.app, "api_uploads_in_progress") == 0, timeout=10)
        assert small_upload(client).status_code == 202


def test_a_client_gone_mid_upload_leaves_no_temporary_file(
    make_api: ApiFactory, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    with make_api(upload_tmp_dir=str(spool)) as server:
        head = part_head("cut.txt")
        declared = len(head) + 3 * MIB + len(TAIL)
        request = (
            f"POST /api/v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {MULTIPART}\r\nContent-Length: {declared}\r\n\r\n"
        ).encode()
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            sock.sendall(request + head + b"words and more words. " * (MIB // 22))
            # The body goes to disk as it arrives: the spooled file is open in the server.
            wait_for(lambda: open_files_under(os.getpid(), spool), timeout=10, what="spooled file")
        finally:
            sock.close()  # gone before sending the rest
        wait_for(lambda: not open_files_under(os.getpid(), spool), timeout=10, what="spool closed")
        assert list(spool.iterdir()) == []
        wait_for(lambda: metric(server.app, "api_uploads_in_progress") == 0, timeout=10)
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_every_outcome_closes_the_spooled_file(make_api: ApiFactory, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    bad_csv = b"a,b\n" + b"1,2,3,4,5\n" + b'"unterminated,1\n'
    with (
        make_api(upload_tmp_dir=str(spool)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        refused = client.post("/api/v1/documents", files={"file": ("bad.csv", bad_csv)})
        assert refused.status_code == 422, refused.text[:300]
        wrong_type = client.post("/api/v1/documents", files={"file": ("x.pdf", b"%PDF-1.7")})
        assert wrong_type.status_code == 415
        accepted = client.post(
            "/api/v1/documents", files={"file": ("products.xlsx", products_xlsx())}
        )
        assert accepted.status_code == 202, accepted.text[:300]
        job = wait_job(client, accepted.json()["job_id"])
        assert job["status"] == "completed", job
        text = client.post("/api/v1/documents", files={"file": ("a.txt", b"some words.")})
        assert text.status_code == 202
        assert open_files_under(os.getpid(), spool) == []
        assert list(spool.iterdir()) == []


def test_oversize_bodies_still_get_413_when_streamed(make_api: ApiFactory) -> None:
    def chunked() -> Iterator[bytes]:  # no Content-Length: only counting can stop it
        yield part_head("big.txt")
        for _ in range(3):
            yield b"x" * MIB
        yield TAIL

    with (
        make_api(max_upload_bytes=MIB) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        response: Any = client.post(
            "/api/v1/documents", content=chunked(), headers={"content-type": MULTIPART}
        )
        assert response.status_code == 413, response.text[:300]
        assert "bytes" in response.json()["error"]
        declared = client.post(
            "/api/v1/documents",
            content=b"x" * (2 * MIB),
            headers={"content-type": MULTIPART},
        )
        assert declared.status_code == 413
        assert metric(server.app, "api_uploads_in_progress") == 0
