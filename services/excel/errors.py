"""The one exception the processor raises for input it will not read, with its HTTP status."""

from __future__ import annotations


class ExcelRejected(Exception):
    """An upload refused before or while reading it. `reason` is a bounded metric label."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
