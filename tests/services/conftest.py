"""Fixtures for the service tests: real redis-servers, the real model, live ML servers, a real
weaviate-server, the Excel processor and API apps wired to them.

Everything binds 127.0.0.1 on free ports; every process started here is stopped by its PID.
The model is loaded once per session and shared by every app built in the tests. As in
production, the ML service has its own Redis (`redis_server`) and the API and the Excel
processor share the app Redis (`app_redis`, databases 0 and 1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from indexforge_services.api.app import create_app as create_api_app
from indexforge_services.api.settings import ApiSettings
from indexforge_services.api.store import StoreUnavailable
from indexforge_services.excel.app import create_app as create_excel_app
from indexforge_services.excel.settings import ExcelSettings
from indexforge_services.ml.app import create_app
from indexforge_services.ml.model import Embedder
from indexforge_services.ml.settings import MLSettings
from tests.procs import free_port
from tests.stack.weaviate import WeaviateError, WeaviateProcess, weaviate_binary
from tests.waiting import wait_for

# One inference thread: the machine is small and shared; oversubscribed torch threads are
# an order of magnitude slower than one.
TORCH_THREADS = 1


class RedisProcess:
    """A throwaway redis-server (no persistence, volatile-lru like the service Redis);
    with `password`, it requires it (`requirepass`), as the operator deploys it. `extra`
    arguments come last and win (e.g. `--maxmemory-policy noeviction`, `--replicaof`)."""

    def __init__(
        self,
        binary: str,
        port: int,
        workdir: Path,
        password: str | None = None,
        extra: Sequence[str] = (),
        conf: Path | None = None,
    ) -> None:
        self.binary = binary
        self.conf = conf  # a config file to run instead of the test settings (it names the port)
        self.port = port
        self.workdir = workdir
        self.password = password
        self.extra = tuple(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.db_url(0)

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> None:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru",
            "--dir", str(self.workdir), "--logfile", str(self.workdir / f"redis-{self.port}.log"),
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        args += self.extra
        if self.conf is not None:
            args = [self.binary, str(self.conf), "--logfile", args[args.index("--logfile") + 1]]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=0.5, password=self.password
        )
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout}s")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def start_redis(
    binary: str, workdir: Path, *, password: str | None = None, extra: Sequence[str] = ()
) -> RedisProcess:
    last: Exception | None = None
    for _ in range(3):  # a free port can be taken between probing and binding
        server = RedisProcess(binary, free_port(), workdir, password, extra)
        try:
            server.start()
            return server
        except RuntimeError as exc:
            last = exc
    raise RuntimeError(f"could not start redis-server: {last}")


class ServerThread:
    """Serve an app with uvicorn in a background thread (real HTTP, real lifespan)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # Bind first and hand the socket to uvicorn: no race for the port.
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def ml_settings(**overrides: Any) -> MLSettings:
    """Test settings: explicit values, so stray INDEXFORGE_* variables change nothing."""
    base: dict[str, Any] = {
        "redis_url": None,
        "cache_namespace": f"ml-test-{uuid.uuid4().hex[:8]}",
        "otlp_endpoint": None,
        "sentry_dsn": None,
        "sentry_dsn_file": None,
        "sentry_profiles_sample_rate": 0.0,
        "torch_threads": TORCH_THREADS,
        "batch_max_size": 32,
        "batch_max_wait_ms": 5.0,
        "max_text_chars": 32_768,
        "max_texts_per_request": 128,
        "log_json": False,
    }
    base.update(overrides)
    return MLSettings(**base)


def excel_settings(**overrides: Any) -> ExcelSettings:
    base: dict[str, Any] = {
        "redis_url": None,
        "cache_namespace": f"excel-test-{uuid.uuid4().hex[:8]}",
        "otlp_endpoint": None,
        "sentry_dsn": None,
        "sentry_dsn_file": None,
        "log_json": False,
        "max_upload_bytes": 5 * 1024 * 1024,
        "max_rows": 10_000,
        "max_columns": 1024,
        "max_sheets": 32,
        "max_cell_chars": 16_384,
    }
    base.update(overrides)
    return ExcelSettings(**base)


def api_settings(**overrides: Any) -> ApiSettings:
    base: dict[str, Any] = {
        "redis_url": None,
        "cache_namespace": f"api-test-{uuid.uuid4().hex[:8]}",
        "otlp_endpoint": None,
        "sentry_dsn": None,
        "sentry_dsn_file": None,
        "log_json": False,
        "weaviate_collection": f"Test{uuid.uuid4().hex[:12]}",
        "ml_url": None,
        "excel_url": None,
        "max_upload_bytes": 5 * 1024 * 1024,
        "upstream_retry_attempts": 2,
        "weaviate_timeout_seconds": 20.0,
    }
    base.update(overrides)
    return ApiSettings(**base)


def wait_job(client: httpx.Client, job_id: str, *, timeout: float = 90.0) -> dict[str, Any]:
    """Poll a job until it is completed or failed; returns its record."""

    def finished() -> dict[str, Any] | None:
        record: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        return record if record.get("status") in ("completed", "failed") else None

    return wait_for(finished, timeout=timeout, interval=0.2, what=f"job {job_id}")


class UpsertCalls:
    """How many batches the store was asked to write while ``failing_upsert`` was active."""

    count = 0


@contextmanager
def failing_upsert(store: Any, *, on_call: int, message: str) -> Iterator[UpsertCalls]:
    """The store's ``on_call``-th batch write raises StoreUnavailable; the others go through.
    Restores the real method afterwards."""
    real_upsert = store.upsert
    calls = UpsertCalls()

    async def flaky_upsert(objects: Any) -> None:
        calls.count += 1
        if calls.count == on_call:
            raise StoreUnavailable(message)
        await real_upsert(objects)

    store.upsert = flaky_upsert
    try:
        yield calls
    finally:
        store.upsert = real_upsert


@asynccontextmanager
async def running_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """In-process client with the app's lifespan running (no sockets)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ml.test") as client:
            yield client


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH (Debian package redis-server); CI installs it")
    return binary


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="indexforge-svc-tests-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def redis_server(redis_binary: str, workdir: Path) -> Iterator[RedisProcess]:
    server = start_redis(redis_binary, workdir)
    yield server
    server.stop()


@pytest.fixture
def private_redis(redis_binary: str, workdir: Path) -> Iterator[RedisProcess]:
    """A Redis of this test alone (it may be killed and restarted)."""
    server = start_redis(redis_binary, workdir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Embedder.load(torch_threads=TORCH_THREADS)


@pytest.fixture(scope="session")
def ml_server(embedder: Embedder, redis_server: RedisProcess) -> Iterator[ServerThread]:
    """The ML app with the real model and a real Redis cache, served over HTTP."""
    app = create_app(ml_settings(redis_url=redis_server.url), encoder=embedder)
    with ServerThread(app) as server:
        yield server


@pytest.fixture
def client(ml_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ml_server.url, timeout=60) as c:
        yield c


@pytest.fixture
def redis_client(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def app_redis(redis_binary: str, workdir: Path) -> Iterator[RedisProcess]:
    """The app Redis (API db 0, Excel db 1), separate from the ML one as in production."""
    server = start_redis(redis_binary, workdir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def weaviate_server(ml_server: ServerThread, workdir: Path) -> Iterator[WeaviateProcess]:
    """A real weaviate-server whose text2vec-transformers module uses the session ML app."""
    try:
        weaviate_binary()
    except WeaviateError as exc:
        # Fail, never skip: a missing build must not make the Weaviate tests silently vanish.
        pytest.fail(str(exc))
    server = WeaviateProcess(workdir / "weaviate", ml_server.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def excel_server(app_redis: RedisProcess) -> Iterator[ServerThread]:
    app = create_excel_app(excel_settings(redis_url=app_redis.db_url(1)))
    with ServerThread(app) as server:
        yield server


ApiFactory = Callable[..., AbstractContextManager[ServerThread]]


@pytest.fixture(scope="session")
def make_api(
    weaviate_server: WeaviateProcess,
    ml_server: ServerThread,
    excel_server: ServerThread,
    app_redis: RedisProcess,
) -> ApiFactory:
    """Build and serve an API app wired to the session's services; keyword overrides win.

    Each app gets its own Weaviate collection and cache namespace, so tests do not see each
    other's documents or cached answers.
    """

    @contextmanager
    def serve(**overrides: Any) -> Iterator[ServerThread]:
        wiring: dict[str, Any] = {
            "weaviate_url": weaviate_server.url,
            "weaviate_grpc_port": weaviate_server.ports.grpc,
            "ml_url": ml_server.url,
            "excel_url": excel_server.url,
            "redis_url": app_redis.db_url(0),
        }
        wiring.update(overrides)
        with ServerThread(create_api_app(api_settings(**wiring))) as server:
            yield server

    return serve


def metric(app: FastAPI, name: str, **labels: str) -> float:
    """Current value of one sample in the app's own registry (0 when absent)."""
    value = app.state.service.registry.get_sample_value(name, labels)
    return float(value) if value is not None else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A generous per-test timeout so a hung server or Redis fails the test, not CI."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300))
