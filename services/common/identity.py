"""Deterministic ids: one object per distinct text, one document per distinct upload.

Ingestion writes are idempotent because ids come from content, not from a counter or a
random draw: writing a row whose text is already stored lands on the same object, and
uploading the same file again lands on the same document. The event-driven ingestion
(RabbitMQ workers, redelivered messages) relies on the same property, so the scheme lives
here, in one place, and must not change without a migration of stored objects.

`content_id` hashes the *normalised* text: Unicode compatibility forms folded (NFKC),
case folded (the embedding model is uncased: such texts get identical vectors anyway) and
runs of whitespace collapsed. Texts that differ only in those respects are one object.
"""

from __future__ import annotations

import hashlib
import unicodedata
import uuid

# Fixed namespaces: changing either re-keys every stored object.
CONTENT_NAMESPACE = uuid.UUID("5d0f9a4e-3c1b-5e7a-9f42-6b8e1c2d7a10")
DOCUMENT_NAMESPACE = uuid.UUID("a3c7e1f0-8b2d-5c4e-b6a9-0f1e2d3c4b5a")


def normalise_text(text: str) -> str:
    """The form of a text that decides whether two texts are the same content."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_digest(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def content_id(collection: str, text: str) -> str:
    """Object id of `text` in `collection`: UUIDv5 of the collection and the normalised text."""
    return str(uuid.uuid5(CONTENT_NAMESPACE, f"{collection}\n{content_digest(text)}"))


def document_id(collection: str, *, kind: str, source: str, digest: str) -> str:
    """Id of an upload: the same file (name, type, bytes) in a collection is one document.

    `digest` is the hex SHA-256 of the uploaded bytes (or of the JSON text).
    """
    return str(uuid.uuid5(DOCUMENT_NAMESPACE, f"{collection}\n{kind}\n{source}\n{digest}"))
