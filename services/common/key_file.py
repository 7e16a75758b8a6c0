"""A credential kept in a mounted file that may change while the process runs (a rotation).

The kubelet updates a Secret volume by swapping a symlink, so a changed file is a new inode:
``KeyFile.current()`` stats the path on every call (cheap) and reads it again only when that
changed, or when forced after the server refused the key (a 401: the file may have changed
within the same second on a filesystem with coarse timestamps). A missing or empty file keeps
the last key read (a Secret volume is briefly empty during some updates) or the fallback.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class KeyFile:
    def __init__(self, file: Path | None, *, fallback: str | None = None) -> None:
        self._file = file
        self._fallback = fallback or None
        self._seen: tuple[int, int, int] | None = None
        self._key: str | None = None
        self._lock = threading.Lock()

    def current(self, *, force: bool = False) -> str | None:
        """The key to present now: the file's, else the fallback (the setting's value)."""
        if self._file is None:
            return self._fallback
        try:
            st = os.stat(self._file)
        except OSError:
            return self._key or self._fallback
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if force or seen != self._seen:
                try:
                    text = self._file.read_text(encoding="utf-8").strip()
                except OSError:
                    text = ""
                if text:
                    self._key = text
                self._seen = seen
            return self._key or self._fallback

    def __repr__(self) -> str:  # never the key
        return f"KeyFile({self._file})"
