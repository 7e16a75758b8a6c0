"""A bounded, TTL-aware in-process LRU: the cache's stand-in while Redis is unreachable.

Bounded so a long Redis outage cannot grow the process without limit; per-pod only, so it is
dropped when Redis comes back (it may hold entries invalidated elsewhere meanwhile).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Slot(Generic[V]):
    value: V
    expires_at: float
    tags: frozenset[str]


class BoundedLRU(Generic[V]):
    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, _Slot[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> V | None:
        slot = self._data.get(key)
        if slot is None:
            return None
        if slot.expires_at <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return slot.value

    def set(self, key: str, value: V, *, ttl: float, tags: Iterable[str] = ()) -> None:
        if self.max_entries <= 0:
            return
        self._data[key] = _Slot(value, self._clock() + ttl, frozenset(tags))
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    def invalidate_tags(self, tags: Iterable[str]) -> int:
        wanted = frozenset(tags)
        doomed = [k for k, slot in self._data.items() if slot.tags & wanted]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    def clear(self) -> None:
        self._data.clear()
