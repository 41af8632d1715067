"""Redis hot cache with per-key TTLs.

Keys of one thread share a hash tag, so a Redis Cluster keeps a thread on one
shard and the Lua scripts below touch one slot:
    cairn:{TAG}:g            the thread's generation (INCR on invalidation)
    cairn:{TAG}:h:NS         head pointer "generation|sequence|checkpoint_id"
    cairn:{TAG}:c:NS\\0ID     entry (see entry.py), tagged with its generation
    cairn:{TAG}:v            the thread's save counter (INCR by every save's fill)
    cairn:{TAG}:r            near leases: server process id -> lease end (Redis ms)
    cairn:near-token         "RANDOM|BORN_MS", set when missing: a new one means Redis lost its keys
TAG is a hash of (tenant, thread id), so ids with `{`, `}` or odd bytes are safe.
Reads and conditional fills are single round trips (a head read and a fill are EVALSHAs, a read by id two plain
GETs; a fill SETs its entry in the same write), all over one pipelined connection (resp.py).

`current_many` tells a near cache what Redis says of threads now (token, generation, save counter, head) and,
with `lease_ms`, grants this process a lease: until it ends, its near cache may trust that answer without asking
again. Every change of a thread (`bump`, a save's fill) revokes the thread's leases in the same script and returns
how long the longest other process's lease still runs: the change is acknowledged only after that (tiered.py),
so no process serves a checkpoint older than an acknowledged change. The same wait covers leases granted by a
Redis that restarted empty (nothing of them is left to revoke): for `lease_ms` after a new token is born.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Any

from .base import Current, StoredCheckpoint
from .entry import CorruptEntry, entry_generation
from .resp import Multiplexed, ReplyError
from .tiered import CacheUnavailable

log = logging.getLogger("cairn.store")

TOKEN_KEY = "cairn:near-token"

# A head read: the pointer, then its entry, in one step. A read by id needs no script: two plain GETs
# (generation, entry) pipelined, since Lua would copy the entry into a string of its own on the way back
# (23 against 0.7 µs of Redis CPU per read of a 15 KB entry). An entry filled under another generation is never served
# (`_current`), so the two GETs need not run as one step.
_GET_HEAD = """
local gen = redis.call('GET', KEYS[1]) or '0'
local h = redis.call('GET', KEYS[2])
if not h then return {gen, false} end
local g, s, id = string.match(h, '^(%d+)|(%d+)|(.*)$')
if g ~= gen then return {gen, false} end
return {gen, redis.call('GET', ARGV[1] .. id)}
"""

# Redis's clock in ms, and the near token ("RANDOM|BORN_MS"), set (from a fresh RANDOM) when missing.
_CLOCK = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function near_token(key, fresh, now)
  local token = redis.call('GET', key)
  if not token then
    token = fresh .. '|' .. now
    redis.call('SET', key, token)
  end
  return token
end
"""

# Revoke a thread's near leases; the wait (ms) before a change may be acknowledged: the longest other process's
# lease, and at least what is left of one lease since the token was born (a token from before leases: born 0).
_REVOKE = _CLOCK + """
local function revoke(leases, token_key, me, lease_ms, fresh)
  local now = now_ms()
  local born = tonumber(string.match(near_token(token_key, fresh, now), '|(%d+)$') or '0')
  local wait = math.max(0, born + lease_ms - now)
  local held = redis.call('HGETALL', leases)
  for i = 1, #held, 2 do
    local left = tonumber(held[i + 1]) - now
    if held[i] ~= me and left > wait then wait = left end
  end
  if #held > 0 then redis.call('DEL', leases) end
  return wait
end
"""

# The entry itself (KEYS[2]) was SET by a plain command just before, in the same write: passed to a script, Lua
# copies an argument into a string of its own (15 µs of Redis CPU for a 15 KB entry, a third of a save's Redis
# time). Stored under a generation that has moved, it is never served (its generation is checked on every read),
# and is deleted here.
_FILL = _REVOKE + """
local wait = 0
if ARGV[6] == '1' then wait = revoke(KEYS[5], KEYS[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]) end
local cur = redis.call('GET', KEYS[1]) or '0'
if cur ~= ARGV[1] then
  redis.call('DEL', KEYS[2])
  if ARGV[6] == '1' then
    -- a save that raced an invalidation: a read may have cached an older head since, so invalidate again
    redis.call('INCR', KEYS[1])
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  end
  return {0, wait}
end
if ARGV[3] == '1' then
  local h = redis.call('GET', KEYS[3])
  local write = true
  if h then
    local g, s = string.match(h, '^(%d+)|(%d+)|')
    if g == cur and tonumber(s) >= tonumber(ARGV[4]) then write = false end
  end
  if write then redis.call('SET', KEYS[3], cur .. '|' .. ARGV[4] .. '|' .. ARGV[5], 'PX', ARGV[2]) end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
if ARGV[6] == '1' then
  redis.call('INCR', KEYS[4])
  redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[2]) * 2)
end
return {1, wait}
"""

_BUMP = _REVOKE + """
local wait = revoke(KEYS[2], KEYS[3], ARGV[2], tonumber(ARGV[3]), ARGV[4])
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return wait
"""

# KEYS: the token, then per thread its generation, save counter, one head pointer and its leases.
# ARGV: a fresh token, this process, its lease ms (0: no lease).
_CURRENT = _CLOCK + """
local now = now_ms()
local token = near_token(KEYS[1], ARGV[1], now)
local lease_ms = tonumber(ARGV[3])
local out = {token}
for i = 2, #KEYS, 4 do
  local g = redis.call('GET', KEYS[i]) or '0'
  local head = false
  local h = redis.call('GET', KEYS[i + 2])
  if h then
    local hg, s, id = string.match(h, '^(%d+)|(%d+)|(.*)$')
    if hg == g then head = id end
  end
  out[#out + 1] = g
  out[#out + 1] = redis.call('GET', KEYS[i + 1]) or '0'
  out[#out + 1] = head
  if lease_ms > 0 then
    redis.call('HSET', KEYS[i + 3], ARGV[2], now + lease_ms)
    if redis.call('PTTL', KEYS[i + 3]) < lease_ms then redis.call('PEXPIRE', KEYS[i + 3], lease_ms) end
  end
end
return out
"""


def _tag(tenant: str, thread_id: str) -> str:
    digest = hashlib.blake2b(f"{tenant}\x00{thread_id}".encode(), digest_size=12).hexdigest()
    return "cairn:{" + digest + "}"


class _Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


_GET_HEAD_SCRIPT, _FILL_SCRIPT, _BUMP_SCRIPT, _CURRENT_SCRIPT = map(_Script, (_GET_HEAD, _FILL, _BUMP, _CURRENT))


class RedisCache:
    name = "redis"
    shared = True

    def __init__(self, redis: Multiplexed, ttl_seconds: int = 3600, lease_ms: int = 0) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)
        self.lease_ms = lease_ms
        self.me = os.urandom(8).hex()  # this process, in lease hashes

    @classmethod
    def from_url(
        cls, url: str, ttl_seconds: int = 3600, timeout_seconds: float = 0.5, lease_ms: int = 0
    ) -> RedisCache:
        return cls(Multiplexed(url, timeout_seconds), ttl_seconds, lease_ms)

    def _revoke_args(self) -> list[object]:
        return [self.me, self.lease_ms, os.urandom(12).hex()]

    async def _eval(
        self, script: _Script, calls: list[tuple[list[str], list[object]]], entries: Sequence[tuple[str, bytes]] = (),
    ) -> list[Any]:
        """EVALSHA per call, written together after a plain SET of each (key, entry) of `entries`; the scripts'
        replies."""
        commands: list[tuple[object, ...]] = [("SET", key, blob, "PX", self.ttl_ms) for key, blob in entries]
        commands += [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
        return (await self._execute(commands, script))[len(entries):]

    async def _execute(self, commands: list[tuple[object, ...]], script: _Script) -> list[Any]:
        """The replies to `commands`, written together. `script` (the one their EVALSHAs run) is loaded only when
        Redis lacks it (then everything is sent again: SETs repeat)."""
        for attempt in (1, 2):
            replies = await self.redis.execute(commands)  # type: ignore[arg-type]
            if attempt == 2 or not any(isinstance(r, ReplyError) and str(r).startswith("NOSCRIPT") for r in replies):
                break
            await self._load_script(script)
        failed = next((r for r in replies if isinstance(r, ReplyError)), None)
        if failed is not None:
            raise CacheUnavailable(f"Redis refused a cache command or script: {failed}")
        return replies

    async def _load_script(self, script: _Script) -> None:
        try:
            await self.redis.call("SCRIPT", "LOAD", script.source)
        except ReplyError as exc:
            raise CacheUnavailable(f"Redis refused to load a cache script: {exc}") from exc

    async def get(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[int, bytes | None]:
        return (await self.get_many(tenant, [(thread_id, namespace, checkpoint_id)]))[0]

    async def get_many(
        self, tenant: str, requests: list[tuple[str, str, str | None]]
    ) -> list[tuple[int, bytes | None]]:
        """(generation, entry or None) of each (thread_id, namespace, checkpoint_id|None = its head), in one
        round trip."""
        commands: list[tuple[object, ...]] = []
        for thread_id, namespace, checkpoint_id in requests:
            tag = _tag(tenant, thread_id)
            prefix = f"{tag}:c:{namespace}\x00"
            if checkpoint_id is None:
                commands.append(("EVALSHA", _GET_HEAD_SCRIPT.sha, 2, tag + ":g", f"{tag}:h:{namespace}", prefix))
            else:
                commands += (("GET", tag + ":g"), ("GET", prefix + checkpoint_id))
        replies = iter(await self._execute(commands, _GET_HEAD_SCRIPT))
        return [
            self._current(*(next(replies) if checkpoint_id is None else (next(replies), next(replies))))
            for _, _, checkpoint_id in requests
        ]

    @staticmethod
    def _current(gen_raw: bytes | None, blob: bytes | None) -> tuple[int, bytes | None]:
        """(generation, entry), the entry dropped when it was filled under another generation."""
        gen = int(gen_raw or 0)
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
        make_head: bool, saved: bool = False,
    ) -> tuple[list[str], list[object]]:
        """KEYS and ARGV of the _FILL script for one entry (KEYS[2], SET just before). `saved`: a save's fill,
        which bumps the generation when it finds it moved, and counts the save (near caches' List pages are
        stamped with the count)."""
        tag = _tag(tenant, thread_id)
        keys = [tag + ":g", f"{tag}:c:{namespace}\x00{checkpoint_id}", f"{tag}:h:{namespace}", tag + ":v",
                tag + ":r", TOKEN_KEY]
        return keys, [generation, self.ttl_ms, "1" if make_head else "0", sequence, checkpoint_id,
                      "1" if saved else "0", *self._revoke_args()]

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
        call = self._fill_call(tenant, thread_id, namespace, checkpoint_id, sequence, generation, make_head, saved)
        await self._eval(_FILL_SCRIPT, [call], [(call[0][1], blob)])

    async def generations(self, threads: list[tuple[str, str]]) -> list[int]:
        keys = [_tag(tenant, thread_id) + ":g" for tenant, thread_id in threads]
        try:
            values = await self.redis.call("MGET", *keys)
        except ReplyError as exc:
            raise CacheUnavailable(f"Redis refused MGET: {exc}") from exc
        return [int(v or 0) for v in values]

    async def fill_many(self, fills: list[tuple[StoredCheckpoint, int, bytes]]) -> int:
        calls = [self._fill_call(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.sequence, generation,
                                 True, saved=True) for cp, generation, _ in fills]
        entries = [(keys[1], blob) for (keys, _), (_, _, blob) in zip(calls, fills, strict=True)]
        replies = await self._eval(_FILL_SCRIPT, calls, entries)
        return max(int(wait) for _, wait in replies)

    async def bump(self, tenant: str, thread_id: str) -> int:
        return (await self.bump_many([(tenant, thread_id)]))[0]

    async def bump_many(self, threads: list[tuple[str, str]]) -> list[int]:
        calls: list[tuple[list[str], list[object]]] = []
        for tenant, thread_id in threads:
            tag = _tag(tenant, thread_id)
            calls.append(([tag + ":g", tag + ":r", TOKEN_KEY], [self.ttl_ms * 2, *self._revoke_args()]))
        return [int(wait) for wait in await self._eval(_BUMP_SCRIPT, calls)] if calls else []

    async def current_many(self, requests: list[tuple[str, str, str]]) -> list[Current]:
        """What Redis says now of each (tenant, thread_id, namespace), in one round trip; with `lease_ms`, a lease
        on each thread for this process."""
        keys = [TOKEN_KEY]
        for tenant, thread_id, namespace in requests:
            tag = _tag(tenant, thread_id)
            keys += (tag + ":g", tag + ":v", f"{tag}:h:{namespace}", tag + ":r")
        reply, = await self._eval(_CURRENT_SCRIPT, [(keys, [os.urandom(12).hex(), self.me, self.lease_ms])])
        token = bytes(reply[0])
        return [
            Current(token, int(reply[i]), int(reply[i + 1]), None if reply[i + 2] is None else reply[i + 2].decode())
            for i in range(1, len(reply), 3)
        ]

    async def aclose(self) -> None:
        await self.redis.aclose()
