"""In-process hot cache (the embedded default): entries by key in an LRU, each with a TTL.

Same contract as the Redis cache (base.HotCache): entries carry their stamps, and the tiered store decides with
the cold store's versions whether one may be served (freshness.py).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from .base import EntryKey


class MemoryCache:
    name = "memory"

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 3600) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[EntryKey, tuple[float, bytes]] = OrderedDict()  # -> (monotonic expiry, entry)

    async def get_many(self, keys: list[EntryKey]) -> list[bytes | None]:
        out: list[bytes | None] = []
        now = time.monotonic()
        for key in keys:
            item = self._entries.get(key)
            if item is not None and item[0] < now:
                del self._entries[key]
                item = None
            if item is not None:
                self._entries.move_to_end(key)
            out.append(None if item is None else item[1])
        return out

    async def put_many(self, entries: list[tuple[EntryKey, bytes]]) -> None:
        expires = time.monotonic() + self.ttl_seconds
        for key, blob in entries:
            self._entries[key] = (expires, blob)
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()
