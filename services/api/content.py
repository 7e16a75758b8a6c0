"""Writes that store each distinct text once: add a document's rows, remove a document.

A batch of records is grouped by content id; texts not stored yet are embedded (outside
the write lock, the slow part), then, under the lock, the objects are read again and each
gets the document's rows merged into its references. An object whose references do not
change is not written at all, so re-running a batch or re-uploading a file is a no-op.

Read-merge-write needs the writes of one object serialised (`write_lock.py`): one lock per
process for inline jobs; in queue mode also a lock in the shared Redis, so workers in other
pods never merge the same object at once. Inline jobs of two API replicas writing the same
text at the same moment can still lose one reference: queue mode closes that window.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from weaviate.classes.data import DataObject

from ..common.identity import content_id
from ..common.tabular import JsonScalar, Record
from . import refs as refs_
from .store import StoredObject, WeaviateStore, content_properties
from .write_lock import WriteLock, process_lock

Embed = Callable[[Sequence[str]], Awaitable[list[list[float]] | None]]
# Objects changed per round while removing a document (each is read with its vector).
REMOVE_PAGE = 200


@dataclass
class _Group:
    text: str
    fields: dict[str, JsonScalar]
    rows: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class WriteCounts:
    records: int  # rows of the batch
    added: int  # texts stored for the first time
    changed: int  # objects written (added + existing ones that gained rows)


def group_records(collection: str, records: Sequence[Record]) -> dict[str, _Group]:
    """Records by the content id of their text, in first-seen order."""
    groups: dict[str, _Group] = {}
    for r in records:
        group = groups.setdefault(content_id(collection, r.text), _Group(r.text, r.fields))
        group.rows.append((r.sheet, r.row))
    return groups


class ContentWriter:
    def __init__(self, store: WeaviateStore, *, lock: WriteLock | None = None) -> None:
        self.store = store
        self._lock = lock or process_lock()

    async def write(
        self,
        *,
        document_id: str,
        source: str,
        kind: str,
        records: Sequence[Record],
        embed: Embed,
    ) -> WriteCounts:
        groups = group_records(self.store.collection_name, records)
        known = await self.store.fetch(list(groups), with_vectors=False)
        fresh = [cid for cid in groups if cid not in known]
        vectors = await embed([groups[cid].text for cid in fresh]) if fresh else None
        new_vectors = dict(zip(fresh, vectors, strict=True)) if vectors is not None else {}
        async with self._lock():
            stored = await self.store.fetch(list(groups), with_vectors=True)
            objects: list[DataObject[object, object]] = []
            for cid, group in groups.items():
                old = stored.get(cid)
                before = old.refs if old is not None else []
                after = refs_.add_rows(
                    before, document_id=document_id, source=source, kind=kind, rows=group.rows
                )
                if old is not None and after == before:
                    continue
                objects.append(self._object(cid, group, old, after, new_vectors.get(cid)))
            if objects:
                await self.store.upsert(objects)
        added = sum(1 for cid in groups if cid not in stored)
        return WriteCounts(records=len(records), added=added, changed=len(objects))

    @staticmethod
    def _object(
        cid: str,
        group: _Group,
        old: StoredObject | None,
        references: list[refs_.Reference],
        vector: list[float] | None,
    ) -> DataObject[object, object]:
        # An existing object keeps its text, fields and vector: the first writer's.
        # Without a vector (no ML service, or the object vanished since we looked),
        # Weaviate's module vectorizes the text.
        text = old.text if old is not None else group.text
        fields = old.fields if old is not None else json.dumps(group.fields, ensure_ascii=False)
        return DataObject(
            uuid=cid,
            properties=content_properties(text=text, fields=fields, references=references),
            vector=old.vector if old is not None else vector,
        )

    async def remove_document(self, document_id: str, *, max_rows: int) -> int:
        """Drop a document's references (and objects left without any); records removed."""
        removed = 0
        rounds = max_rows // REMOVE_PAGE + 3  # bounded: each round takes objects off the doc
        async with self._lock():
            for _ in range(rounds):
                found = await self.store.objects_of_document(
                    document_id, limit=REMOVE_PAGE, with_vectors=True
                )
                if not found:
                    break
                keep: list[DataObject[object, object]] = []
                drop: list[str] = []
                for obj in found:
                    left, count = refs_.without_document(obj.refs, document_id)
                    removed += count
                    if not left:
                        drop.append(obj.id)
                        continue
                    properties = content_properties(
                        text=obj.text, fields=obj.fields, references=left
                    )
                    keep.append(DataObject(uuid=obj.id, properties=properties, vector=obj.vector))
                if keep:
                    await self.store.upsert(keep)
                await self.store.delete_ids(drop)
        return removed
