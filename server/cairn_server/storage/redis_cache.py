"""Redis hot cache with per-key TTLs.

Keys of one thread share a hash tag, so a Redis Cluster keeps a thread on one
shard and the Lua scripts below touch one slot:
    cairn:{TAG}:g            the thread's generation (INCR on invalidation)
    cairn:{TAG}:h:NS         head pointer "generation|sequence|checkpoint_id"
    cairn:{TAG}:c:NS\\0ID     entry (see entry.py), tagged with its generation
TAG is a hash of (tenant, thread id), so ids with `{`, `}` or odd bytes are safe.
Reads and conditional fills are single round trips (EVALSHA).

With near caches (`announce_as`), saves and invalidations also PUBLISH
"ORIGIN\x1fTENANT\x1fTHREAD" on the channel `cairn:near` inside the same
script, and `watch` applies other processes' messages to this one's near cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from .base import StoredCheckpoint
from .entry import CorruptEntry, entry_generation
from .near_cache import NearCache
from .tiered import CacheUnavailable

log = logging.getLogger("cairn.store")

CHANNEL = "cairn:near"
_SEP = "\x1f"  # ids and tenants never contain control characters (validation.py)

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
if cur ~= ARGV[1] then
  if ARGV[7] == '1' then
    -- a save that raced an invalidation: a read may have cached an older head since, so invalidate again
    redis.call('INCR', KEYS[1])
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
    if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
  end
  return 0
end
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
if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
return 1
"""

_BUMP = """
local g = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return g
"""


def _tag(tenant: str, thread_id: str) -> str:
    digest = hashlib.blake2b(f"{tenant}\x00{thread_id}".encode(), digest_size=12).hexdigest()
    return "cairn:{" + digest + "}"


class RedisCache:
    name = "redis"

    def __init__(self, client: aioredis.Redis, ttl_seconds: int = 3600, timeout_seconds: float = 0.5) -> None:
        self.client = client
        self.ttl_ms = int(ttl_seconds * 1000)
        self.timeout_seconds = timeout_seconds
        self.url: str | None = None
        self.origin = ""  # set by announce_as: saves and bumps are then published for other near caches
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
        cache = cls(client, ttl_seconds, timeout_seconds)
        cache.url = url
        return cache

    def announce_as(self, origin: str) -> None:
        self.origin = origin

    def _announcement(self, tenant: str, thread_id: str) -> list[str]:
        if not self.origin:
            return ["", ""]
        return [CHANNEL, _SEP.join((self.origin, tenant, thread_id))]

    async def _generation(self, tenant: str, thread_id: str) -> int:
        try:
            value = await self.client.get(_tag(tenant, thread_id) + ":g")
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return int(value or 0)

    async def get(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[int, bytes | None]:
        keys, args = self._get_call(tenant, thread_id, namespace, checkpoint_id)
        try:
            gen_raw, blob = await self._get(keys=keys, args=args)
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return self._current(gen_raw, blob)

    async def get_many(
        self, tenant: str, requests: list[tuple[str, str, str | None]]
    ) -> list[tuple[int, bytes | None]]:
        calls = [self._get_call(tenant, *request) for request in requests]
        try:
            replies = await self._evalsha_pipelined(self._get, calls)
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return [self._current(gen_raw, blob) for gen_raw, blob in replies]

    @staticmethod
    def _get_call(
        tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[list[str], list[object]]:
        """KEYS and ARGV of the _GET script."""
        tag = _tag(tenant, thread_id)
        prefix = f"{tag}:c:{namespace}\x00"
        if checkpoint_id is None:
            return [tag + ":g", f"{tag}:h:{namespace}"], ["head", prefix]
        return [tag + ":g", prefix + checkpoint_id], ["id", ""]

    @staticmethod
    def _current(gen_raw: bytes, blob: bytes | None) -> tuple[int, bytes | None]:
        """(generation, entry), the entry dropped when it was filled under another generation."""
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
        blob: bytes, make_head: bool, saved: bool = False,
    ) -> tuple[list[str], list[object]]:
        """KEYS and ARGV of the _FILL script for one entry. `saved`: a save's fill, which bumps the generation
        when it finds it moved, and is published to other processes' near caches."""
        tag = _tag(tenant, thread_id)
        keys = [tag + ":g", f"{tag}:c:{namespace}\x00{checkpoint_id}", f"{tag}:h:{namespace}"]
        args: list[object] = [generation, blob, self.ttl_ms, "1" if make_head else "0", sequence, checkpoint_id]
        if not saved:
            return keys, [*args, "0", "", ""]
        return keys, [*args, "1", *self._announcement(tenant, thread_id)]

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
        saved: bool = False,
    ) -> None:
        keys, args = self._fill_call(tenant, thread_id, namespace, checkpoint_id, sequence, generation, blob,
                                     make_head, saved)
        try:
            await self._fill(keys=keys, args=args)
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def generations(self, threads: list[tuple[str, str]]) -> list[int]:
        if len(threads) == 1:
            return [await self._generation(*threads[0])]
        try:
            values = await self.client.mget([_tag(tenant, thread_id) + ":g" for tenant, thread_id in threads])
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return [int(v or 0) for v in values]

    async def fill_many(self, fills: list[tuple[StoredCheckpoint, int, bytes]]) -> None:
        if len(fills) == 1:
            cp, generation, blob = fills[0]
            await self.fill(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.sequence, generation, blob,
                            True, saved=True)
            return
        calls = [
            self._fill_call(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.sequence, generation, blob,
                            True, saved=True)
            for cp, generation, blob in fills
        ]
        try:
            await self._evalsha_pipelined(self._fill, calls)
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def _evalsha_pipelined(self, script: Any, calls: list[tuple[list[str], list[object]]]) -> list[Any]:
        """EVALSHA per call in one pipeline; the replies. redis-py's own script pipelining first asks SCRIPT EXISTS on every
        execute, one more round trip; here the script is loaded only when Redis says it lacks it (NOSCRIPT)."""
        for attempt in (1, 2):
            async with self.client.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in results):
                break
            if attempt == 2:
                raise next(r for r in results if isinstance(r, NoScriptError))
            await self.client.script_load(script.script)
        failed = next((r for r in results if isinstance(r, Exception)), None)
        if failed is not None:
            raise failed
        return results

    async def bump(self, tenant: str, thread_id: str) -> None:
        try:
            await self._bump(
                keys=[_tag(tenant, thread_id) + ":g"], args=[self.ttl_ms * 2, *self._announcement(tenant, thread_id)]
            )
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def watch(self, near: NearCache) -> None:
        """Apply other processes' announcements to `near` until cancelled.

        The near cache serves only while the subscription is known to be alive: it is suspended (emptied) on
        any error, and when the channel has been silent past the timeout after a PING, since a dead connection
        looks like a quiet one. Reconnecting resumes it empty.
        """
        if self.url is None:
            raise ValueError("watch needs a cache made by RedisCache.from_url")
        # Its own connection: a subscriber blocks on reads, and must not reconnect silently (lost messages).
        client = aioredis.Redis.from_url(
            self.url, socket_connect_timeout=self.timeout_seconds, retry=Retry(NoBackoff(), 0)
        )
        delay = 0.05
        try:
            while True:
                pubsub = client.pubsub()
                try:
                    await asyncio.wait_for(pubsub.subscribe(CHANNEL), self.timeout_seconds)
                    near.resume()
                    delay = 0.05
                    await self._follow(pubsub, near)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # RedisError, OSError, timeouts: all mean messages may be lost
                    log.warning("near-cache invalidation channel lost, near cache off until it is back: %s",
                                exc or type(exc).__name__)
                finally:
                    near.suspend()
                    await asyncio.shield(pubsub.aclose())
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        finally:
            await client.aclose()

    async def _follow(self, pubsub: aioredis.client.PubSub, near: NearCache) -> None:
        heard = pinged = time.monotonic()
        patience = max(1.0, self.timeout_seconds * 4)
        while True:
            msg = await pubsub.get_message(timeout=patience / 4)
            now = time.monotonic()
            if msg is None:
                if now - heard > patience:
                    raise CacheUnavailable(f"no answer on {CHANNEL} for {now - heard:.1f} s")
                if now - pinged >= patience / 4:
                    await pubsub.ping()
                    pinged = now
                continue
            heard = now
            if msg["type"] != "message":
                continue
            origin, tenant, thread_id = msg["data"].decode("utf-8", "surrogatepass").split(_SEP, 2)
            if origin != self.origin:
                near.invalidate(tenant, thread_id)

    async def aclose(self) -> None:
        await self.client.aclose()
