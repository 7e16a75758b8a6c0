"""Weaviate backups through its own backup API (`/v1/backups/<backend>`), and their restore.

Weaviate writes the backup itself, through a backup module: `filesystem` (a directory on a
volume Weaviate mounts, `BACKUP_FILESYSTEM_PATH`) or `s3` (any S3-compatible bucket). This
program starts the backup, waits until Weaviate reports SUCCESS or FAILED, and applies
retention where it can see the backups: with `--backup-dir` (the filesystem backend's
directory, mounted in the job too) it deletes the oldest of the ids it named, and removes
the directory of a backup that failed or timed out, so nothing half-written is left under a
backup's name. In a bucket, retention is the bucket's lifecycle rule (deleting objects needs
signed S3 requests; the program stays on the standard library).

Weaviate keeps its own record of each backup's status, and a restore of a FAILED backup is
refused by Weaviate, so a half-written backup can never be restored as if complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backup import BackupError, backup_name, discard, doomed, is_backup_name

API_KEY_ENV = "WEAVIATE_API_KEY"
# A file holding the key (a mounted Secret): read for every call, so a key rotation that moves
# clients to a new key while a long backup runs does not fail it (re-read again on a 401).
API_KEY_FILE_ENV = "WEAVIATE_API_KEY_FILE"
DONE = {"SUCCESS", "FAILED", "CANCELED"}


@dataclass(frozen=True)
class Weaviate:
    url: str
    backend: str  # "filesystem" or "s3" (the module name without "backup-")
    api_key: str | None = None
    timeout: float = 30.0  # one request
    api_key_file: Path | None = None  # wins over api_key when it holds a key

    def key(self) -> str | None:
        """The key to send now: the file's (re-read every time), else ``api_key``."""
        if self.api_key_file is not None:
            try:
                text = self.api_key_file.read_text(encoding="utf-8").strip()
            except OSError:
                text = ""
            if text:
                return text
        return self.api_key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        key = self.key()
        try:
            return self._call(method, path, body, key)
        except _Unauthorized as exc:
            fresh = self.key()
            if fresh == key:  # nothing newer to try: the key is wrong
                raise BackupError(str(exc)) from exc
            # The file changed between our read and Weaviate's check (a rotation): once more.
            try:
                return self._call(method, path, body, fresh)
            except _Unauthorized as again:
                raise BackupError(str(again)) from again

    def _call(self, method: str, path: str, body: dict[str, Any] | None, key: str | None) -> Any:
        endpoint = self.url.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(endpoint, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            message = f"Weaviate answered {exc.code} to {method} {endpoint}: {_detail(exc.read())}"
            if exc.code == 401:
                raise _Unauthorized(message) from exc
            raise BackupError(message) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BackupError(f"Weaviate unreachable at {endpoint}: {exc}") from exc
        try:
            return json.loads(raw) if raw else {}
        except ValueError as exc:
            raise BackupError(f"unexpected answer from {endpoint}: {raw[:200]!r}") from exc


class _Unauthorized(Exception):
    """Weaviate answered 401: the key may have just been rotated (Weaviate.call retries)."""


def _detail(raw: bytes) -> str:
    """Weaviate's error message (`{"error": [{"message": ...}]}`) or the raw body."""
    try:
        errors = json.loads(raw).get("error")
        return "; ".join(str(e.get("message", e)) for e in errors)[:400]
    except (ValueError, AttributeError, TypeError):
        return raw.decode(errors="replace")[:400]


def _wait(
    client: Weaviate, path: str, what: str, *, deadline_s: float, poll_s: float
) -> dict[str, Any]:
    """Poll a backup or restore status until it is final; the last answer."""
    deadline = time.monotonic() + deadline_s
    while True:
        status = client.call("GET", path)
        if status.get("status") in DONE:
            return dict(status)
        if time.monotonic() > deadline:
            raise BackupError(
                f"{what} not finished after {deadline_s:.0f}s (status {status.get('status')})"
            )
        time.sleep(poll_s)


@dataclass(frozen=True)
class WeaviateResult:
    backup_id: str
    path: str  # where Weaviate says it wrote the backup
    pruned: list[str]


def backup_weaviate(
    client: Weaviate,
    *,
    keep: int,
    backup_dir: Path | None = None,
    deadline_s: float = 3000.0,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> WeaviateResult:
    """Back up every collection under a new id `weaviate-<stamp>`; prune in `backup_dir`."""
    if backup_dir is not None and not backup_dir.is_dir():
        raise BackupError(f"backup directory {backup_dir} not found (the backup volume)")
    if backup_dir is not None and not os.access(backup_dir, os.W_OK | os.X_OK):
        raise BackupError(f"backup directory {backup_dir} is not writable by uid {os.getuid()}")
    backup_id = backup_name("weaviate", clock())
    base = f"/v1/backups/{client.backend}"
    started = client.call("POST", base, {"id": backup_id})
    try:
        final = _wait(
            client,
            f"{base}/{backup_id}",
            f"backup {backup_id}",
            deadline_s=deadline_s,
            poll_s=poll_s,
        )
    except BackupError:
        _abandon(client, base, backup_id, backup_dir)
        raise
    if final["status"] != "SUCCESS":
        _abandon(client, base, backup_id, backup_dir)
        raise BackupError(
            f"Weaviate backup {backup_id} {final['status']}: {final.get('error') or 'no reason'}"
        )
    pruned: list[str] = []
    if backup_dir is not None:
        pruned = doomed("weaviate", [p.name for p in backup_dir.iterdir()], keep)
        for name in pruned:
            discard(backup_dir / name)
    return WeaviateResult(backup_id, str(final.get("path") or started.get("path") or ""), pruned)


def _abandon(client: Weaviate, base: str, backup_id: str, backup_dir: Path | None) -> None:
    """Cancel a backup still running (best effort) and delete what it wrote."""
    # Finished already, or Weaviate is gone: nothing left to cancel.
    with contextlib.suppress(BackupError):
        client.call("DELETE", f"{base}/{backup_id}")
    if backup_dir is not None and is_backup_name("weaviate", backup_id):
        discard(backup_dir / backup_id)


def restore_weaviate(
    client: Weaviate, *, backup_id: str, deadline_s: float = 3000.0, poll_s: float = 1.0
) -> dict[str, Any]:
    """Restore every collection of `backup_id` (they must not exist: Weaviate refuses to
    overwrite); Weaviate's final restore status."""
    base = f"/v1/backups/{client.backend}/{backup_id}"
    client.call("POST", f"{base}/restore", {})
    final = _wait(
        client,
        f"{base}/restore",
        f"restore of {backup_id}",
        deadline_s=deadline_s,
        poll_s=poll_s,
    )
    if final["status"] != "SUCCESS":
        raise BackupError(
            f"Weaviate restore of {backup_id} {final['status']}: "
            f"{final.get('error') or 'no reason'}"
        )
    return final
