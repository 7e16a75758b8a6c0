"""The Weaviate API key rotates with overlap: no request fails, the old key is refused after.

Real: weaviate-server v1.35.2 (single node, API-key auth as the operator deploys it), the API
app with its key in a file (``INDEXFORGE_WEAVIATE_API_KEY_FILE``, services/api/store.py) and
the backup program's Weaviate client (services/common/backup_weaviate.py). The file stands in
for the mounted Secret (replaced by rename, as the kubelet does); the steps the operator takes
(weaviate_rotation.py) are done by the test, each only after the previous one was observed.

Weaviate reads its key list at start only, so the operator's phases restart its pods (the
StatefulSet's rolling restart, one pod at a time). With one node a restart is an outage: the
request loop here runs across the *clients'* switch (Published) and the retirement is checked
after the restart. That the rolling restarts of three replicas lose no request is
tests/services/test_weaviate_key_rotation_ha.py.

Unhappy paths first: a key list Weaviate misreads or refuses (nothing lost, the old key still
works), a file that gets ahead of Weaviate (the API keeps the key that works), a killed
Weaviate mid-rotation (restarts on the same list and data), a new API process mid-rotation.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexforge_operator.generated import weaviate_keys_value
from indexforge_services.api.store import refuses_credentials
from indexforge_services.common.backup_weaviate import Weaviate
from indexforge_services.common.key_file import KeyFile
from tests.stack.weaviate import WeaviateError, WeaviateProcess, weaviate_binary

from .conftest import ApiFactory, ServerThread, api_settings, wait_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

OLD = f"old-key-{uuid.uuid4().hex}"
NEW = f"new-key-{uuid.uuid4().hex}"
REQUESTS = 60  # searches across the clients' switch (bounded loop)


def _replace(path: Path, text: str) -> None:
    """A new file by rename: what the kubelet's symlink swap looks like to a reader."""
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fresh.write_text(text)
    os.replace(fresh, path)


def _status(server: WeaviateProcess, key: str) -> int:
    """Weaviate's answer to an authenticated REST call with ``key``."""
    request = urllib.request.Request(
        f"{server.url}/v1/schema", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _restart(server: WeaviateProcess, keys: str, *, kill: bool = False) -> None:
    """What a pod restart with a changed Secret does: the same data, the new key list."""
    if kill:
        server.kill()
        server.proc = None
    else:
        server.stop()
    server.api_key = keys
    server.start()


def _wait_ready(client: httpx.Client, timeout: float = 30.0) -> None:
    """Until the API reports ready again after Weaviate restarted (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.3)
    raise AssertionError(f"the API was not ready {timeout:.0f}s after Weaviate restarted")


@pytest.fixture
def store_log() -> Iterator[list[str]]:
    """What the API's Weaviate store logs (the app's own logging setup defeats caplog)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger, handler = logging.getLogger("indexforge_services.api.store"), Collect(logging.INFO)
    level = logger.level
    logger.setLevel(logging.INFO)  # whatever the root level is between apps
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def weaviate(ml_server: ServerThread, tmp_path: Path) -> Iterator[WeaviateProcess]:
    try:
        weaviate_binary()
    except WeaviateError as exc:
        pytest.fail(str(exc))  # a missing build must not make this test vanish
    server = WeaviateProcess(tmp_path / "weaviate", ml_server.url, api_key=OLD)
    server.start()
    yield server
    server.stop()


def test_key_file_rereads_only_a_changed_file_and_keeps_the_last_key(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    keys = KeyFile(path, fallback="setting")
    assert keys.current() == "setting"  # no file yet
    _replace(path, f"{OLD}\n")
    assert keys.current() == OLD
    _replace(path, "")  # an update's empty moment: keep what worked
    assert keys.current() == OLD
    _replace(path, NEW)
    assert keys.current() == NEW and "new-key" not in repr(keys)
    assert KeyFile(None, fallback="setting").current() == "setting"


def test_the_current_key_is_scrubbed_from_error_reports_after_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    _replace(path, OLD)
    settings = api_settings(weaviate_api_key_file=path)
    assert OLD in settings.rotating_secret_values()
    _replace(path, NEW)  # what Sentry's scrubber asks for at every event follows the file
    assert NEW in settings.rotating_secret_values()


def test_a_refused_key_is_recognised_over_rest_and_grpc() -> None:
    class Code:
        name = "UNAUTHENTICATED"

    class RpcError(Exception):
        def code(self) -> Code:
            return Code()

    class Rest(Exception):
        status_code = 401

    try:
        try:
            raise RpcError("unauthenticated")
        except RpcError:
            raise RuntimeError("Query call with protocol GRPC search failed") from None
    except RuntimeError as wrapped:
        wrapped.__context__ = RpcError()  # the client raises inside its except block
        assert refuses_credentials(wrapped)
    assert refuses_credentials(Rest())
    assert not refuses_credentials(RuntimeError("connection refused"))


def test_backup_client_rereads_its_key_file_and_retries_once_on_a_401(
    weaviate: WeaviateProcess, tmp_path: Path
) -> None:
    path = tmp_path / "api-key"
    _replace(path, "stale-key")

    class RacingFile(Weaviate):
        """The file changes between the client's read and Weaviate's check."""

        reads = 0

        def key(self) -> str | None:
            RacingFile.reads += 1
            if RacingFile.reads == 1:
                return "stale-key"
            _replace(path, OLD)
            return super().key()

    client = RacingFile(weaviate.url, "filesystem", api_key_file=path)
    assert "classes" in client.call("GET", "/v1/schema")
    assert RacingFile.reads == 2
    wrong = Weaviate(weaviate.url, "filesystem", api_key_file=tmp_path / "missing")
    with pytest.raises(Exception, match="401"):
        wrong.call("GET", "/v1/schema")


def test_a_key_list_weaviate_misreads_or_refuses_is_refused_first_and_loses_nothing(
    make_api: ApiFactory, weaviate: WeaviateProcess, tmp_path: Path
) -> None:
    key_file = tmp_path / "api-key"
    _replace(key_file, OLD)
    wiring = {"weaviate_url": weaviate.url, "weaviate_grpc_port": weaviate.ports.grpc,
              "weaviate_api_key_file": key_file, "redis_url": None,
              "weaviate_collection": f"Rotation{uuid.uuid4().hex[:12]}"}  # fmt: skip
    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        upload = c.post("/api/v1/documents", json={"text": "Lighthouses guide ships at night."})
        job = wait_job(c, upload.json()["job_id"])
        assert job["status"] == "completed", job
    # The operator refuses these lists before any pod could restart with them ...
    for garbled in ((NEW, ""), (NEW, f" {OLD}"), (NEW, f"{OLD},x")):
        with pytest.raises(ValueError, match="Weaviate"):
            weaviate_keys_value(garbled)
    # ... because Weaviate would: an empty entry stops it from starting at all,
    with pytest.raises(WeaviateError, match="keys cannot have length 0"):
        _restart(weaviate, f"{NEW},,{OLD}")
    # and a space becomes part of a key: the old key's holders would get 401.
    _restart(weaviate, f"{NEW}, {OLD}")
    assert _status(weaviate, OLD) == 401 and _status(weaviate, NEW) == 200
    # Back on the list the Secret holds: the old key works and nothing was lost.
    _restart(weaviate, OLD)
    assert _status(weaviate, OLD) == 200
    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        hits = c.get("/api/v1/search", params={"q": "beacons for boats"}).json()
        assert hits["results"][0]["document_id"] == job["document_id"]


def test_the_key_rotates_with_no_failed_request_and_the_old_key_is_refused_after(
    make_api: ApiFactory, weaviate: WeaviateProcess, tmp_path: Path, store_log: list[str]
) -> None:
    key_file = tmp_path / "api-key"
    _replace(key_file, f"{OLD}\n")  # a Secret volume file, newline and all
    wiring = {"weaviate_url": weaviate.url, "weaviate_grpc_port": weaviate.ports.grpc,
              "weaviate_api_key_file": key_file, "redis_url": None,
              "weaviate_collection": f"Rotation{uuid.uuid4().hex[:12]}"}  # fmt: skip
    backup = Weaviate(weaviate.url, "filesystem", api_key_file=key_file)
    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        upload = c.post("/api/v1/documents", json={"text": "Honey bees pollinate orchards."})
        job = wait_job(c, upload.json()["job_id"])
        assert job["status"] == "completed", job
        # A file ahead of Weaviate (never the operator's order): the running API tries the
        # new key, is refused, and keeps the one that works; no request fails.
        _replace(key_file, NEW)
        for i in range(5):
            response = c.get("/api/v1/search", params={"q": f"pollen {i}"})
            assert response.status_code == 200, response.text
        assert c.get("/readyz").status_code == 200
        _replace(key_file, OLD)
    assert any("refused the changed API key; kept the previous key" in m for m in store_log)
    store_log.clear()

    # Issued: Weaviate restarts on "new,old" (the rolling restart); clients still hold old.
    _restart(weaviate, weaviate_keys_value((NEW, OLD)))
    assert _status(weaviate, OLD) == 200 and _status(weaviate, NEW) == 200

    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/readyz").status_code == 200
        # Published: the file changes to the new key halfway through the loop.
        failures, answers = [], 0
        for i in range(REQUESTS):
            if i == REQUESTS // 2:
                _replace(key_file, f"{NEW}\n")
            response = c.get("/api/v1/search", params={"q": f"insects and fruit trees {i}"})
            answers += 1
            if response.status_code != 200 or not response.json()["results"]:
                failures.append((i, response.status_code, response.text[:200]))
            if i % 10 == 0:  # the backup job's client too
                assert "classes" in backup.call("GET", "/v1/schema")
            time.sleep(0.05)
        assert answers == REQUESTS and failures == []
        # Not vacuous: the running API moved to the new key within the loop.
        assert "Weaviate API key file changed: using the new key" in store_log
        # Mid-rotation a Weaviate pod crashes: it restarts on the same list and data.
        _restart(weaviate, weaviate_keys_value((NEW, OLD)), kill=True)
        assert _status(weaviate, OLD) == 200 and _status(weaviate, NEW) == 200
        _wait_ready(c)  # the API's connection comes back (an outage with one node)
        hits = c.get("/api/v1/search", params={"q": "pollinators"})
        assert hits.status_code == 200 and hits.json()["results"], hits.text

        # Idle: after the grace period Weaviate restarts with the new key alone.
        _restart(weaviate, NEW)
        assert _status(weaviate, OLD) == 401 and _status(weaviate, NEW) == 200
        _wait_ready(c)
        for i in range(10):  # the API moved to the new key: nothing fails
            response = c.get("/api/v1/search", params={"q": f"orchards {i}"})
            assert response.status_code == 200 and response.json()["results"], response.text
        assert "classes" in backup.call("GET", "/v1/schema")
    # A new API process (a restart mid-rotation or after) reads the current file and works.
    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/readyz").status_code == 200
        hits = c.get("/api/v1/search", params={"q": "bees"}).json()
        assert hits["results"][0]["document_id"] == job["document_id"]
    assert OLD not in json.dumps(hits) and NEW not in json.dumps(hits)
    assert OLD not in str(store_log) and NEW not in str(store_log)
