"""Redis hot cache: checkpoint entries by key, with a TTL.

    cairn2:{TAG}:c:NS\\0ID    the entry (entry.py): the row, its writes and the stamp it was current at
TAG is a hash of (tenant, thread id), so ids with `{`, `}` or odd bytes are safe, and a Redis Cluster keeps a
thread's keys on one shard. (Keys under `cairn:` belong to the generation scheme of earlier releases, which this
one neither reads nor maintains.)

Redis is never asked what is current: the cold store says that (freshness.py), and an entry is served only under
a stamp the cold store still vouches for. So the entries need no invalidation and no scripts: reads and fills are
plain GETs, SETs and PEXPIREs (a save shortens the life of the head it replaced: tiered.py), pipelined over one connection (resp.py), and a Redis that restarts, rolls back to an older
snapshot or fails over to a lagging replica can only make reads miss.
"""

from __future__ import annotations

import hashlib

from .base import CacheUnavailable
from .records import EntryKey
from .resp import Multiplexed, ReplyError


def _key(key: EntryKey) -> str:
    tenant, thread_id, namespace, checkpoint_id = key
    digest = hashlib.blake2b(f"{tenant}\x00{thread_id}".encode(), digest_size=12).hexdigest()
    return f"cairn2:{{{digest}}}:c:{namespace}\x00{checkpoint_id}"


class RedisCache:
    name = "redis"

    def __init__(self, redis: Multiplexed, ttl_seconds: int = 3600) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int = 3600, timeout_seconds: float = 0.5) -> RedisCache:
        return cls(Multiplexed(url, timeout_seconds), ttl_seconds)

    async def _execute(self, commands: list[tuple[object, ...]]) -> list[object]:
        replies = await self.redis.execute(commands)  # type: ignore[arg-type]
        failed = next((r for r in replies if isinstance(r, ReplyError)), None)
        if failed is not None:
            raise CacheUnavailable(f"Redis refused a cache command: {failed}")
        return replies

    async def get_many(self, keys: list[EntryKey]) -> list[bytes | None]:
        # One GET per key rather than an MGET: keys of different threads may live on different cluster shards.
        return await self._execute([("GET", _key(key)) for key in keys]) if keys else []  # type: ignore[return-value]

    async def put_many(
        self, entries: list[tuple[EntryKey, bytes]], ttl_seconds: float | None = None,
        expire: list[EntryKey] | None = None, expire_ttl_seconds: float = 0,
    ) -> None:
        ttl_ms = self.ttl_ms if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        commands: list[tuple[object, ...]] = [("SET", _key(key), blob, "PX", ttl_ms) for key, blob in entries]
        # PEXPIRE of a missing key does nothing; a TTL of 0 ms deletes the key.
        commands += [("PEXPIRE", _key(key), int(expire_ttl_seconds * 1000)) for key in expire or ()]
        if commands:
            await self._execute(commands)

    async def expire_many(self, keys: list[EntryKey], ttl_seconds: float) -> None:
        await self.put_many([], expire=keys, expire_ttl_seconds=ttl_seconds)

    async def aclose(self) -> None:
        await self.redis.aclose()
