"""At most N uploads received at once per process; the next one is turned away unread.

Each upload in progress may hold up to `max_upload_bytes` on disk and its records in memory
while it is read, so the count is bounded per pod. The slot is taken before the body is read
and given back once the upload is read (or refused, or its client is gone): a refused client
gets 429 with Retry-After and code `too_many_uploads`, having sent nothing but its headers.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CODE = "too_many_uploads"
RETRY_AFTER_SECONDS = 2


class UploadSlots:
    def __init__(self, limit: int, *, in_progress: Gauge, refused: Counter) -> None:
        self.limit = limit
        self.taken = 0
        self._in_progress = in_progress
        self._refused = refused

    def try_acquire(self) -> bool:
        """Take a slot if one is free (never waits: the event loop is single-threaded)."""
        if self.taken >= self.limit:
            self._refused.inc()
            return False
        self.taken += 1
        self._in_progress.set(self.taken)
        return True

    def release(self) -> None:
        self.taken -= 1
        self._in_progress.set(self.taken)
