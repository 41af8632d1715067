"""Redis hot cache: checkpoint entries by key, with a TTL.

    cairn2:{TAG}:c:NS\\0ID    the entry (entry.py): the row, its writes and the stamp it was current at
TAG is a hash of (tenant, thread id), so ids with `{`, `}` or odd bytes are safe, and a Redis Cluster keeps a
thread's keys on one shard. (Keys under `cairn:` belong to the generation scheme of earlier releases, which this
one neither reads nor maintains.)

Redis is never asked what is current: the cold store says that (freshness.py), and an entry is served only under
a stamp the cold store still vouches for. So the entries need no invalidation and no scripts: reads and fills are
plain GETs, SETs and PEXPIREs, one key each (a save shortens the life of the head it replaced: tiered.py),
pipelined over one connection (resp.py) or, on a Redis Cluster, over one connection per master (resp_cluster.py),
and a Redis that restarts, rolls back to an older snapshot, fails over to a lagging replica or migrates a slot can
only make reads miss.
"""

from __future__ import annotations

import hashlib

from .base import CacheUnavailable
from .records import EntryKey
from .redis_url import parse_redis_url
from .resp import Multiplexed, ReplyError
from .resp_cluster import ClusterMultiplexed


def _key(key: EntryKey) -> str:
    tenant, thread_id, namespace, checkpoint_id = key
    digest = hashlib.blake2b(f"{tenant}\x00{thread_id}".encode(), digest_size=12).hexdigest()
    return f"cairn2:{{{digest}}}:c:{namespace}\x00{checkpoint_id}"


class RedisCache:
    name = "redis"

    def __init__(self, redis: Multiplexed | ClusterMultiplexed, ttl_seconds: int = 3600) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int = 3600, timeout_seconds: float = 0.5, *,
                 cluster: bool = False) -> RedisCache:
        """The cache on the Redis (or, for redis+cluster:// or cluster=True, the Redis Cluster) of `url`.

        Raises ValueError for a URL form or option redis_url.py does not honour."""
        target = parse_redis_url(url, cluster=cluster)
        if target.cluster:
            return cls(ClusterMultiplexed(target, timeout_seconds), ttl_seconds)
        return cls(Multiplexed(target, timeout_seconds), ttl_seconds)

    async def ping(self) -> None:
        """Raise CacheUnavailable unless Redis answers: PING, or on a cluster the slot map with every slot served.
        A single-node URL at a node of a cluster is refused with the fix (the node would answer MOVED)."""
        if isinstance(self.redis, ClusterMultiplexed):
            await self.redis.ping()
            return
        try:
            await self.redis.call("PING")
        except ReplyError as exc:  # e.g. NOAUTH: the server answers but refuses us
            raise CacheUnavailable(f"Redis refused PING: {exc}") from None
        try:
            info = await self.redis.call("INFO", "cluster")
        except ReplyError:  # INFO renamed away: nothing to learn, and nothing wrong with the cache
            return
        if b"cluster_enabled:1" in info:
            raise ValueError(
                f"--redis-url: Redis at {self.redis.target.where()} is a node of a Redis Cluster; use "
                f"redis+cluster://{self.redis.target.where()} or add --redis-cluster"
            )

    async def _execute(self, commands: list[tuple[object, ...]]) -> list[object]:
        replies = await self.redis.execute(commands)  # type: ignore[arg-type]
        failed = next((r for r in replies if isinstance(r, ReplyError)), None)
        if failed is not None:
            hint = (" (a node of a Redis Cluster: use a redis+cluster:// URL or --redis-cluster)"
                    if str(failed).startswith("MOVED") and isinstance(self.redis, Multiplexed) else "")
            raise CacheUnavailable(f"Redis refused a cache command: {failed}{hint}")
        return replies

    async def get_many(self, keys: list[EntryKey]) -> list[bytes | None]:
        # One GET per key rather than an MGET: keys of different threads live in different cluster slots.
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
