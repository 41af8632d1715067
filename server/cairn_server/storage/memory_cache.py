"""In-process hot cache (the embedded default): entries by key in an LRU, each with a TTL, bounded by bytes.

Same contract as the Redis cache (base.HotCache): entries carry their stamps, and the tiered store decides with
the cold store's versions whether one may be served (freshness.py).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from .records import EntryKey


class MemoryCache:
    name = "memory"

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 3600, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes  # entries are whole states: a count alone would let 10,000 large ones in
        self.ttl_seconds = ttl_seconds
        self.held_bytes = 0
        self._entries: OrderedDict[EntryKey, tuple[float, bytes]] = OrderedDict()  # -> (monotonic expiry, entry)

    async def get_many(self, keys: list[EntryKey]) -> list[bytes | None]:
        out: list[bytes | None] = []
        now = time.monotonic()
        for key in keys:
            item = self._entries.get(key)
            if item is not None and item[0] < now:
                self._drop(key)
                item = None
            if item is not None:
                self._entries.move_to_end(key)
            out.append(None if item is None else item[1])
        return out

    async def put_many(
        self, entries: list[tuple[EntryKey, bytes]], ttl_seconds: float | None = None,
        expire: list[EntryKey] | None = None, expire_ttl_seconds: float = 0,
    ) -> None:
        expires = time.monotonic() + (self.ttl_seconds if ttl_seconds is None else ttl_seconds)
        for key, blob in entries:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (expires, blob)
            self.held_bytes += len(blob)
        while len(self._entries) > self.max_entries or (self.held_bytes > self.max_bytes and len(self._entries) > 1):
            self._drop(next(iter(self._entries)))
        if expire:
            await self.expire_many(expire, expire_ttl_seconds)

    async def expire_many(self, keys: list[EntryKey], ttl_seconds: float) -> None:
        expires = time.monotonic() + ttl_seconds
        for key in keys:
            item = self._entries.get(key)
            if item is not None:
                if ttl_seconds <= 0:
                    self._drop(key)
                else:
                    self._entries[key] = (expires, item[1])

    def _drop(self, key: EntryKey) -> None:
        self.held_bytes -= len(self._entries.pop(key)[1])

    async def aclose(self) -> None:
        self._entries.clear()
        self.held_bytes = 0
