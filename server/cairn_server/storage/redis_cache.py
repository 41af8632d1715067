"""Redis hot cache with per-key TTLs.

Keys of one thread share a hash tag, so a Redis Cluster keeps a thread on one
shard and the Lua scripts below touch one slot:
    cairn:{TAG}:g            the thread's generation (INCR on invalidation)
    cairn:{TAG}:h:NS         head pointer "generation|sequence|checkpoint_id"
    cairn:{TAG}:c:NS\\0ID     entry (see entry.py), tagged with its generation
TAG is a hash of (tenant, thread id), so ids with `{`, `}` or odd bytes are safe.
Reads and conditional fills are single round trips (EVALSHA).
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .base import StoredCheckpoint
from .entry import CorruptEntry, entry_generation
from .tiered import CacheUnavailable

_GET = """
local gen = redis.call('GET', KEYS[1]) or '0'
local key = KEYS[2]
if ARGV[1] == 'head' then
  local h = redis.call('GET', KEYS[2])
  if not h then return {gen, false} end
  local g, s, id = string.match(h, '^(%d+)|(%d+)|(.*)$')
  if g ~= gen then return {gen, false} end
  key = ARGV[2] .. id
end
return {gen, redis.call('GET', key)}
"""

_FILL = """
local cur = redis.call('GET', KEYS[1]) or '0'
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if ARGV[4] == '1' then
  local h = redis.call('GET', KEYS[3])
  local write = true
  if h then
    local g, s = string.match(h, '^(%d+)|(%d+)|')
    if g == cur and tonumber(s) >= tonumber(ARGV[5]) then write = false end
  end
  if write then redis.call('SET', KEYS[3], cur .. '|' .. ARGV[5] .. '|' .. ARGV[6], 'PX', ARGV[3]) end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
"""

_BUMP = """
local g = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return g
"""


def _tag(tenant: str, thread_id: str) -> str:
    digest = hashlib.blake2b(f"{tenant}\x00{thread_id}".encode(), digest_size=12).hexdigest()
    return "cairn:{" + digest + "}"


class RedisCache:
    name = "redis"

    def __init__(self, client: aioredis.Redis, ttl_seconds: int = 3600) -> None:
        self.client = client
        self.ttl_ms = int(ttl_seconds * 1000)
        self._get = client.register_script(_GET)
        self._fill = client.register_script(_FILL)
        self._bump = client.register_script(_BUMP)

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int = 3600, timeout_seconds: float = 0.5) -> RedisCache:
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry_on_timeout=False,
        )
        return cls(client, ttl_seconds)

    async def _generation(self, tenant: str, thread_id: str) -> int:
        try:
            value = await self.client.get(_tag(tenant, thread_id) + ":g")
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return int(value or 0)

    async def get(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[int, bytes | None]:
        tag = _tag(tenant, thread_id)
        prefix = f"{tag}:c:{namespace}\x00"
        if checkpoint_id is None:
            keys, args = [tag + ":g", f"{tag}:h:{namespace}"], ["head", prefix]
        else:
            keys, args = [tag + ":g", prefix + checkpoint_id], ["id", ""]
        try:
            gen_raw, blob = await self._get(keys=keys, args=args)
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        gen = int(gen_raw)
        if blob is None:
            return gen, None
        try:
            if entry_generation(blob) != gen:
                return gen, None
        except CorruptEntry:
            pass  # handed back so the tiered store counts it and evicts it
        return gen, blob

    def _fill_call(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str, sequence: int, generation: int,
        blob: bytes, make_head: bool,
    ) -> tuple[list[str], list[object]]:
        """KEYS and ARGV of the _FILL script for one entry."""
        tag = _tag(tenant, thread_id)
        keys = [tag + ":g", f"{tag}:c:{namespace}\x00{checkpoint_id}", f"{tag}:h:{namespace}"]
        return keys, [generation, blob, self.ttl_ms, "1" if make_head else "0", sequence, checkpoint_id]

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
        keys, args = self._fill_call(tenant, thread_id, namespace, checkpoint_id, sequence, generation, blob,
                                     make_head)
        try:
            await self._fill(keys=keys, args=args)
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def generations(self, threads: list[tuple[str, str]]) -> list[int]:
        if len(threads) == 1:  # a pipeline costs more than one plain command
            return [await self._generation(*threads[0])]
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for tenant, thread_id in threads:
                    pipe.get(_tag(tenant, thread_id) + ":g")
                values = await pipe.execute()
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return [int(v or 0) for v in values]

    async def fill_many(self, fills: list[tuple[StoredCheckpoint, int, bytes]]) -> None:
        if len(fills) == 1:
            cp, generation, blob = fills[0]
            await self.fill(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.sequence, generation, blob,
                            True)
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for cp, generation, blob in fills:
                    keys, args = self._fill_call(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id,
                                                 cp.sequence, generation, blob, True)
                    await self._fill(keys=keys, args=args, client=pipe)
                await pipe.execute()
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def bump(self, tenant: str, thread_id: str) -> None:
        try:
            await self._bump(keys=[_tag(tenant, thread_id) + ":g"], args=[self.ttl_ms * 2])
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def aclose(self) -> None:
        await self.client.aclose()
