"""In-process hot cache (the embedded default): an LRU with per-entry TTL.

Same contract as the Redis cache, including thread generations, so the tiered
store's invalidation logic is exercised identically by both.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from .base import StoredCheckpoint
from .entry import entry_generation


class MemoryCache:
    name = "memory"
    shared = False  # one process: its near cache sees every change itself
    lease_ms = 0

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 3600, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes  # entries are whole states: a count alone would let 10,000 large ones in
        self.ttl_seconds = ttl_seconds
        self.held_bytes = 0
        self._entries: OrderedDict[tuple[str, ...], tuple[float, bytes]] = OrderedDict()
        self._heads: dict[tuple[str, str, str], tuple[int, int, str]] = {}  # -> (generation, sequence, id)
        self._generations: dict[tuple[str, str], int] = {}

    def _gen(self, tenant: str, thread_id: str) -> int:
        return self._generations.get((tenant, thread_id), 0)

    async def get(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[int, bytes | None]:
        gen = self._gen(tenant, thread_id)
        if checkpoint_id is None:
            head = self._heads.get((tenant, thread_id, namespace))
            if head is None or head[0] != gen:
                return gen, None
            checkpoint_id = head[2]
        key = (tenant, thread_id, namespace, checkpoint_id)
        item = self._entries.get(key)
        if item is None:
            return gen, None
        expires, blob = item
        if expires < time.monotonic():
            del self._entries[key]
            self.held_bytes -= len(blob)
            return gen, None
        self._entries.move_to_end(key)
        try:
            if entry_generation(blob) != gen:
                return gen, None
        except Exception:
            return gen, blob  # let the caller find it corrupt, count it and evict it
        return gen, blob

    async def get_many(
        self, tenant: str, requests: list[tuple[str, str, str | None]]
    ) -> list[tuple[int, bytes | None]]:
        return [await self.get(tenant, *request) for request in requests]

    async def fill(
        self,
        tenant: str,
        thread_id: str,
        namespace: str,
        checkpoint_id: str,
        sequence: int,
        generation: int,
        blob: bytes,
        make_head: bool,
    ) -> None:
        if self._gen(tenant, thread_id) != generation:
            return
        key = (tenant, thread_id, namespace, checkpoint_id)
        old = self._entries.get(key)
        if old is not None:
            self.held_bytes -= len(old[1])
        self._entries[key] = (time.monotonic() + self.ttl_seconds, blob)
        self.held_bytes += len(blob)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries or (self.held_bytes > self.max_bytes and len(self._entries) > 1):
            self.held_bytes -= len(self._entries.popitem(last=False)[1][1])
        if make_head:
            hkey = (tenant, thread_id, namespace)
            head = self._heads.get(hkey)
            if head is None or head[0] != generation or head[1] < sequence:
                if len(self._heads) >= self.max_entries and hkey not in self._heads:
                    self._heads.clear()  # heads are cheap to rebuild: a bounded cache beats an LRU here
                self._heads[hkey] = (generation, sequence, checkpoint_id)

    async def generations(self, threads: list[tuple[str, str]]) -> list[int]:
        return [self._gen(tenant, thread_id) for tenant, thread_id in threads]

    async def fill_many(self, fills: list[tuple[StoredCheckpoint, int, bytes]]) -> int:
        for cp, generation, blob in fills:
            if self._gen(cp.tenant, cp.thread_id) != generation:
                # a save that raced an invalidation: a read may have cached an older head since
                await self.bump(cp.tenant, cp.thread_id)
                continue
            await self.fill(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.sequence, generation, blob,
                            True)
        return 0

    async def bump(self, tenant: str, thread_id: str) -> int:
        # Entries and heads tagged with the old generation become misses; no scan needed.
        key = (tenant, thread_id)
        self._generations[key] = self._generations.get(key, 0) + 1
        return 0

    async def bump_many(self, threads: list[tuple[str, str]]) -> list[int]:
        return [await self.bump(tenant, thread_id) for tenant, thread_id in threads]

    async def aclose(self) -> None:
        self._entries.clear()
        self.held_bytes = 0
