"""Receive a multipart upload straight into a temporary file, once, as the body arrives.

The body is parsed as it streams in (python-multipart, the parser Starlette itself uses):
the part named `file` goes to an anonymous temporary file (no name on disk, so nothing can
be left behind even if the process dies) while its size is counted against the limit and its
SHA-256 computed; small text fields (`delimiter`) are kept, bounded. Memory stays at about
one flush block whatever the file size, where buffering, joining, spooling and reading the
body used to hold it three to six times. Every failure (a limit, a malformed body, a client
gone mid-upload) closes the file, which frees its disk space.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from .rejection import UploadRejected

FILE_FIELD = "file"
MAX_FIELDS = 8
MAX_FIELD_BYTES = 1024  # text fields are tiny (`delimiter`); larger ones are not ours
MAX_HEADER_BYTES = 8 * 1024  # per part header line
FLUSH_BYTES = 1024 * 1024  # disk writes (and hashing) happen in a worker thread per block


@dataclass
class SpooledFile:
    file: BinaryIO  # positioned at its start
    filename: str | None
    size: int
    sha256: str

    def close(self) -> None:
        self.file.close()


@dataclass
class SpooledForm:
    upload: SpooledFile | None
    fields: dict[str, str]

    def close(self) -> None:
        if self.upload is not None:
            self.upload.close()


def _malformed(detail: str) -> UploadRejected:
    return UploadRejected(400, f"malformed multipart body: {detail}")


@dataclass
class _Receiver:
    """python-multipart callbacks: where each part's bytes go."""

    max_file_bytes: int
    directory: str | None
    file: BinaryIO | None = None
    filename: str | None = None
    size: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    fields: dict[str, str] = field(default_factory=dict)
    ended: bool = False
    pending: list[bytes] = field(default_factory=list)  # file bytes not yet written
    pending_bytes: int = 0
    _header_name: bytes = b""
    _header_value: bytes = b""
    _disposition: bytes = b""
    _target: str = "skip"  # "file", a field name, or "skip" (an unknown file part)
    _field: bytearray = field(default_factory=bytearray)

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._field = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        if len(self._header_name) > MAX_HEADER_BYTES:
            raise _malformed("a part header is too long")

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        if len(self._header_value) > MAX_HEADER_BYTES:
            raise _malformed("a part header is too long")

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise _malformed('a part has no Content-Disposition "name"')
        decoded = name.decode("utf-8", "replace")
        if b"filename" not in options:
            if len(self.fields) >= MAX_FIELDS:
                raise _malformed(f"more than {MAX_FIELDS} fields")
            self._target = decoded
        elif decoded != FILE_FIELD:
            self._target = "skip"  # another file part: read past it, keep nothing
        elif self.file is not None:
            raise _malformed("more than one file part named 'file'")
        else:
            self._target = FILE_FIELD
            self.filename = options[b"filename"].decode("utf-8", "replace")
            self.file = tempfile.TemporaryFile(dir=self.directory)  # noqa: SIM115 (kept open)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "skip":
            return
        if self._target != FILE_FIELD:
            self._field += data[start:end]
            if len(self._field) > MAX_FIELD_BYTES:
                raise _malformed(f"field {self._target!r} is over {MAX_FIELD_BYTES} bytes")
            return
        self.size += end - start
        if self.size > self.max_file_bytes:
            raise UploadRejected(
                413,
                f"the file has more than {self.max_file_bytes} bytes; "
                f"the limit is {self.max_file_bytes}",
            )
        self.pending.append(data[start:end])
        self.pending_bytes += end - start

    def on_part_end(self) -> None:
        if self._target not in ("skip", FILE_FIELD):
            self.fields[self._target] = self._field.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True

    def flush(self) -> None:
        """Write (and hash) what is pending; runs in a worker thread."""
        block = b"".join(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        if self.file is not None and block:
            self.digest.update(block)
            self.file.write(block)

    def callbacks(self) -> dict[str, object]:
        names = (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field",
            "on_header_value", "on_header_end", "on_headers_finished", "on_end",
        )  # fmt: skip
        return {name: getattr(self, name) for name in names}


async def spool_multipart(
    chunks: AsyncIterator[bytes],
    content_type: str,
    *,
    max_file_bytes: int,
    directory: str | None = None,
) -> SpooledForm:
    """Parse a multipart body into its `file` part (on disk) and its small text fields.

    Raises UploadRejected (400 malformed, 413 over the limit, 503 no disk space); any
    other error (the client disconnecting, a body over the request limit) propagates.
    The temporary file is closed on every failure.
    """
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise _malformed("missing boundary in the Content-Type")
    receiver = _Receiver(max_file_bytes=max_file_bytes, directory=directory)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
        async for chunk in chunks:
            parser.write(chunk)
            if receiver.pending_bytes >= FLUSH_BYTES:
                await asyncio.to_thread(receiver.flush)
        parser.finalize()
        if not receiver.ended:
            raise _malformed("the body ended before the closing boundary")
        await asyncio.to_thread(receiver.flush)
        if receiver.file is not None:
            receiver.file.seek(0)
    except FormParserError as exc:
        _close(receiver)
        raise _malformed(str(exc) or type(exc).__name__) from exc
    except OSError as exc:  # the disk is full (or gone): nothing the client did wrong
        _close(receiver)
        raise UploadRejected(503, "no room to receive the upload right now; retry later") from exc
    except BaseException:
        _close(receiver)
        raise
    upload = None
    if receiver.file is not None:
        upload = SpooledFile(
            receiver.file, receiver.filename, receiver.size, receiver.digest.hexdigest()
        )
    return SpooledForm(upload, receiver.fields)


def _close(receiver: _Receiver) -> None:
    receiver.pending.clear()
    if receiver.file is not None:
        receiver.file.close()
