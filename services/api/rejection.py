"""The one exception upload handling raises for input it refuses, with its HTTP status."""

from __future__ import annotations


class UploadRejected(Exception):
    """Refused before a job exists. `reason` is a stable code for clients, when there is one."""

    def __init__(self, status: int, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
