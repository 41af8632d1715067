"""The tiered store: a hot cache in front of the cold store, which is the truth.

Write path: encode (compress, checksum), commit to the cold store, then fill the
cache; a save is acknowledged only after the cold commit. Read path: cache hit,
else cold store, then fill the cache.

Why a cache entry can never outlive a delete ("stale read"):
- Every thread has a cache *generation*. Entries and head pointers are tagged
  with the generation current when they were filled; a read ignores entries of
  another generation, and a fill is dropped if the generation moved meanwhile
  (the cache does the compare-and-fill atomically).
- Every mutation other than a plain save (delete, clear, prune, writes, replace,
  copy into a thread) commits to the cold store and then bumps the generation.
- Readers and savers read the generation *before* touching the cold store, so a
  fill that raced with a delete carries the old generation and is dropped.
- When the cache cannot be told (it is down or slow), the thread goes into a
  pending set: the cache is bypassed for that thread until a background task
  has bumped its generation on the recovered cache.
- An optional near cache (near_cache.py) of decoded checkpoints sits in front
  of all this; it is invalidated with the same calls, before the hot cache.
  With a shared hot cache (Redis) it serves an entry only after the hot cache
  confirms, in one round trip per read (per BatchLoad call), that the entry's
  generation (and for a head, the head pointer) is still current there; or,
  with `--near-lease-ms`, while a lease on that answer lasts. A change is then
  acknowledged only after every other process's lease on its thread has ended
  (the hot cache says how long; when it cannot be told, a whole lease).
Cache errors are counted and logged, never returned to clients; a corrupt cache
entry is evicted and the cold store answers instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..codec import Codec, UnknownDictionary
from ..errors import (
    AlreadyExists,
    CairnError,
    DataLoss,
    HeadMoved,
    NotFound,
    Unavailable,
)
from .base import (
    ColdStore,
    Current,
    HotCache,
    ListQuery,
    SaveItem,
    SaveOutcome,
    StoredCheckpoint,
    StoredWrite,
    ThreadSummary,
    WritesItem,
    older_content_hashes,
)
from .entry import CorruptEntry, decode_entry, encode_entry
from .group_commit import GroupCommit
from .near_cache import UNCHECKED, NearCache
from .quarantine import integrity_failure

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

log = logging.getLogger("cairn.store")


def _finish_even_if_cancelled(fn):  # type: ignore[no-untyped-def]
    """Run a mutation to its end (cold commit, then cache invalidation) even if the caller is cancelled.

    A client deadline cancels the RPC handler. Cancelled between the commit and the bump, a delete would leave
    its checkpoint in the cache without even marking the thread pending: a stale read. Shielded, the work
    finishes in its own task and the caller just stops waiting for it.
    """

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(fn(*args, **kwargs))
        task.add_done_callback(_consume_result)
        return await asyncio.shield(task)

    return wrapper


async def _in_key_order(
    items: list[_Item], key: Callable[[_Item], Any], commit: Callable[[list[_Item]], Awaitable[list[_Result]]]
) -> list[_Result]:
    """commit(the items sorted by key, stable), its results put back in the items' order."""
    order = sorted(range(len(items)), key=lambda i: key(items[i]))
    by_position = await commit([items[i] for i in order])
    results: list[_Result] = [None] * len(items)  # type: ignore[list-item]
    for position, i in enumerate(order):
        results[i] = by_position[position]
    return results


def _by_id(checkpoint_id: str | None, current: Current | None) -> str | None:
    """The id to look up in the hot cache: for a head read, the head the hot cache has just vouched for (a read
    by id costs Redis less than one that follows the head pointer), else None (follow the pointer)."""
    return checkpoint_id or (current.head if current is not None else None)


def _consume_result(task: asyncio.Future) -> None:  # type: ignore[type-arg]
    if not task.cancelled() and task.exception() is not None:
        log.debug("mutation finished after its caller left: %s", task.exception())


class CacheUnavailable(Exception):
    """Raised by a hot cache when its backend cannot be reached; never reaches a client."""


@dataclass(slots=True)
class Loaded:
    """A checkpoint with its raw (decoded) state and pending writes."""

    checkpoint: StoredCheckpoint
    state: bytes
    writes: list[StoredWrite]
    # the service's serialized LoadResponses for it by encoding (identity, zstd), kept while the near cache keeps it
    rendered: dict[bool, bytes] = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        """What it may come to hold: the raw and the stored state, each once more inside the response rendered
        for its encoding, the writes, and some overhead (an upper bound, so the near cache stays within its MB)."""
        return 2 * (len(self.state) + len(self.checkpoint.state)) + sum(len(w.value) for w in self.writes) + 512


class TieredStore:
    def __init__(
        self, cold: ColdStore, cache: HotCache, codec: Codec, near: NearCache | None = None,
        commit_concurrency: int = 1, commit_batch_bytes: int = 8 << 20,
    ) -> None:
        self.cold = cold
        self.cache = cache
        self.near = near
        self.codec = codec
        self.stats: Counter[str] = Counter()
        self._pending: set[tuple[str, str]] = set()
        self._healer: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._renew_tick = cache.lease_ms / 4000  # seconds between lease renewals (_renew_leases)
        self._token: bytes | None = None  # the shared hot cache's token the near cache's entries were read under
        self.holds_encrypted = False  # the cold store has seen encryption keys (keys.py)
        self.refuse_plaintext = False  # ... and this server has none: saves are refused
        self.on_batch: Callable[[int], None] | None = None  # set by metrics: saves per cold transaction
        self._group = GroupCommit(
            self._commit, max_inflight=min(commit_concurrency, cold.max_inflight), on_batch=self._observe_batch,
            size=lambda item: item.checkpoint.stored_size, max_batch_bytes=commit_batch_bytes,
        )
        self._writes_group = GroupCommit(self._commit_writes, max_inflight=min(commit_concurrency, cold.max_inflight))

    def _observe_batch(self, size: int) -> None:
        if self.on_batch is not None:
            self.on_batch(size)

    @property
    def tiers(self) -> str:
        return f"hot={self.cache.name} cold={self.cold.name}"

    # -- cache plumbing ----------------------------------------------------

    async def _cache(self, what: str, coro):  # type: ignore[no-untyped-def]
        """Run a cache call; on failure count it, log it and return _FAILED. The cache ends its own calls within
        its timeout (base.HotCache); an asyncio.wait_for here cost a task per call, ~4 µs of a hot Load's ~120."""
        try:
            return await coro
        except (CacheUnavailable, asyncio.TimeoutError, OSError) as exc:
            self.stats["cache_errors"] += 1
            log.warning("cache %s failed, falling through to the cold store: %s", what, exc or type(exc).__name__)
            return _FAILED

    def _mark_pending(self, tenant: str, thread_id: str) -> None:
        self._pending.add((tenant, thread_id))
        if self._healer is None or self._healer.done():
            self._healer = asyncio.get_running_loop().create_task(self._heal())

    async def _heal(self) -> None:
        """Bump the generation of every pending thread once the cache answers again."""
        delay = 0.05
        while self._pending:
            for key in list(self._pending):
                if await self._cache("bump", self.cache.bump(*key)) is _FAILED:
                    break
                self._pending.discard(key)
            else:
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        log.info("cache recovered; every thread touched while it was away has been invalidated")

    async def _invalidate(self, *threads: tuple[str, str]) -> None:
        """Invalidate the threads; return once no process's near cache can serve what they held."""
        await self._hold(await self._bump_many(list(dict.fromkeys(threads))))

    async def _bump_many(self, threads: list[tuple[str, str]]) -> float:
        """Invalidate the threads here and in the hot cache, in one cache round trip; the seconds to wait before
        acknowledging them all."""
        if not threads:
            return 0.0
        if self.near is not None:
            for tenant, thread_id in threads:
                self.near.invalidate(tenant, thread_id)
        waited = await self._cache("bump", self.cache.bump_many(threads))
        hold = 0.0
        for i, (tenant, thread_id) in enumerate(threads):
            if waited is _FAILED:
                self._mark_pending(tenant, thread_id)
            hold = max(hold, self._changed(tenant, thread_id, _FAILED if waited is _FAILED else waited[i]))
        return hold

    async def _bump(self, tenant: str, thread_id: str) -> float:
        """Invalidate one thread here and in the hot cache; the seconds to wait before acknowledging it."""
        return await self._bump_many([(tenant, thread_id)])

    def _changed(self, tenant: str, thread_id: str, waited: Any) -> float:
        """After the hot cache was told of a change (`waited`: the ms it said to wait, or _FAILED): drop this
        process's leases on the thread; the seconds the change must wait. Not told, other processes' leases
        could not be revoked: wait out a whole lease."""
        if self.near is not None:
            self.near.release(tenant, thread_id)
        return (self.cache.lease_ms if waited is _FAILED else waited) / 1000

    async def _hold(self, seconds: float) -> None:
        """Delay an acknowledgement until other processes' near leases on what it changed have ended."""
        if seconds > 0:
            self.stats["lease_waits"] += 1
            self.stats["lease_wait_seconds"] += seconds  # type: ignore[assignment]
            await asyncio.sleep(seconds)

    async def _fill(self, gen: int, cp: StoredCheckpoint, writes: list[StoredWrite], make_head: bool) -> bool:
        blob = encode_entry(gen, cp, writes)
        result = await self._cache(
            "fill",
            self.cache.fill(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.sequence, gen, blob,
                            make_head),
        )
        return result is not _FAILED

    # -- writes ------------------------------------------------------------

    async def save(self, item: SaveItem) -> SaveOutcome:
        """One save. Concurrent saves share a commit (group_commit.py), which runs on even if the caller leaves."""
        result = await self._group.save(item)
        if isinstance(result, Exception):
            raise result
        await self._hold(result.ack_at - asyncio.get_running_loop().time())
        return result

    @_finish_even_if_cancelled
    async def save_many(self, items: list[SaveItem]) -> list[SaveOutcome | Exception]:
        """Commit a stream's batch of saves in one commit; per-item failures are returned, in order."""
        self._observe_batch(len(items))
        results = await self._commit(items)
        ack_at = max((r.ack_at for r in results if isinstance(r, SaveOutcome)), default=0.0)
        await self._hold(ack_at - asyncio.get_running_loop().time())
        return results

    async def _commit(self, items: list[SaveItem]) -> list[SaveOutcome | Exception]:
        """One generations read, one cold transaction, one cache fill for all the items.

        The cold store gets them sorted by thread (stable: a thread's saves keep their order), so two
        concurrent transactions lock thread heads in the same order and cannot deadlock.
        """
        return await _in_key_order(
            items, lambda i: (i.checkpoint.tenant, i.checkpoint.thread_id, i.checkpoint.namespace), self._commit_sorted
        )

    async def _commit_sorted(self, items: list[SaveItem]) -> list[SaveOutcome | Exception]:
        started = self.near.epoch() if self.near is not None else 0
        threads = list(dict.fromkeys((i.checkpoint.tenant, i.checkpoint.thread_id) for i in items))
        usable = [key for key in threads if key not in self._pending]
        gens: dict[tuple[str, str], int | None] = dict.fromkeys(threads)
        if usable:
            found = await self._cache("generations", self.cache.generations(usable))
            if found is not _FAILED:
                gens.update(zip(usable, found, strict=True))
        outcomes = await self.cold.save(items)
        # Only a namespace's newest inserted checkpoint of the batch is cached: it is the head, and the older ones
        # (a stream replaying history) would be written to the cache only to stop being heads at once.
        newest = {(item.checkpoint.tenant, item.checkpoint.thread_id, item.checkpoint.namespace): position
                  for position, (item, outcome) in enumerate(zip(items, outcomes, strict=True))
                  if outcome.status == "inserted"}
        fills: list[tuple[StoredCheckpoint, int, bytes]] = []
        results: list[SaveOutcome | Exception] = []
        hold = 0.0
        changed: set[tuple[str, str]] = set()  # threads whose leases go once the hot cache has the change
        for position, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
            cp = item.checkpoint
            if outcome.status == "conflict":
                try:
                    same = await self._stored_under_older_hash(item)
                except CairnError as exc:
                    results.append(exc)
                    continue
                if not same:
                    results.append(
                        AlreadyExists(
                            f"checkpoint {cp.checkpoint_id!r} already exists in thread {cp.thread_id!r} with "
                            "different content; use a new checkpoint id, or set replace_existing to overwrite it"
                        )
                    )
                    continue
                outcome.status = "exists"
            if outcome.status == "head_moved":
                results.append(HeadMoved(cp.thread_id, cp.namespace, outcome.current_head_id))
                continue
            cp.sequence, cp.created_at = outcome.sequence, outcome.created_at
            if outcome.status in ("replaced", "exists"):
                # A retry ("exists") may follow a first try whose cache update never happened; the stored
                # checkpoint may also carry writes this request does not know about. Invalidate, don't fill.
                hold = max(hold, await self._bump(cp.tenant, cp.thread_id))
            elif outcome.status == "inserted":
                if newest[(cp.tenant, cp.thread_id, cp.namespace)] != position:
                    results.append(outcome)
                    continue
                gen = gens[(cp.tenant, cp.thread_id)]
                if self.near is not None:  # once per namespace and batch: all of the batch committed together
                    self.near.moved(cp.tenant, cp.thread_id)
                    if item.raw_state is not None:
                        self._keep_near(started, Loaded(cp, item.raw_state, []), True, gen, saved=True)
                if gen is None:
                    self._mark_pending(cp.tenant, cp.thread_id)
                    hold = max(hold, self._changed(cp.tenant, cp.thread_id, _FAILED))
                else:
                    fills.append((cp, gen, encode_entry(gen, cp, [])))
                    changed.add((cp.tenant, cp.thread_id))
            results.append(outcome)
        if fills:
            waited = await self._cache("fill", self.cache.fill_many(fills))
            if waited is _FAILED:
                for cp, _, _ in fills:
                    self._mark_pending(cp.tenant, cp.thread_id)
            for tenant, thread_id in changed:
                hold = max(hold, self._changed(tenant, thread_id, waited))
        if hold > 0:
            ack_at = asyncio.get_running_loop().time() + hold
            for result in results:
                if isinstance(result, SaveOutcome):
                    result.ack_at = ack_at
        return results

    async def _stored_under_older_hash(self, item: SaveItem) -> bool:
        """Whether a save the cold store called a conflict found this very content, hashed by an earlier build
        (older_content_hashes): then it is a retry that spans an upgrade. Conflicts are rare; this reads the row."""
        cp = item.checkpoint
        if item.raw_state is None:
            return False
        found = await self.cold.load(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id)
        return found is not None and found[0].content_hash in older_content_hashes(cp, item.raw_state)

    @_finish_even_if_cancelled
    async def put_writes(self, item: WritesItem) -> int:
        """One task's writes. Concurrent PutWrites share one cold statement and one cache round trip
        (group_commit.py), which runs on even if the caller leaves."""
        result = await self._writes_group.save(item)
        if isinstance(result, Exception):
            raise result
        written, ack_at = result
        await self._hold(ack_at - asyncio.get_running_loop().time())
        return written

    async def _commit_writes(self, items: list[WritesItem]) -> list[tuple[int, float] | Exception]:
        """The cold store gets the items in one call, sorted by checkpoint and task (stable), so two concurrent
        batches take their locks in the same order; the threads that changed are invalidated together."""
        def key(i: WritesItem) -> tuple[str, ...]:
            return i.tenant, i.thread_id, i.namespace, i.checkpoint_id, i.task_id

        return await _in_key_order(items, key, self._commit_writes_sorted)

    async def _commit_writes_sorted(self, items: list[WritesItem]) -> list[tuple[int, float] | Exception]:
        outcomes = await self.cold.put_writes_many(items)
        changed = list(dict.fromkeys((item.tenant, item.thread_id)
                                     for item, n in zip(items, outcomes, strict=True) if isinstance(n, int) and n))
        ack_at = asyncio.get_running_loop().time() + await self._bump_many(changed)
        return [n if isinstance(n, Exception) else (n, ack_at) for n in outcomes]

    @_finish_even_if_cancelled
    async def delete(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str) -> bool:
        """Delete one checkpoint; one that fails its integrity check is moved into quarantine (quarantine.py)."""
        reason = await integrity_failure(self.cold, self.codec, tenant, thread_id, namespace, checkpoint_id)
        if reason is None:
            deleted = await self.cold.delete(tenant, thread_id, namespace, checkpoint_id)
        else:
            deleted = await self.cold.quarantine(tenant, thread_id, namespace, checkpoint_id, reason)
            self.stats["quarantined"] += 1
            log.warning("checkpoint %r of thread %r quarantined instead of deleted: %s", checkpoint_id, thread_id,
                        reason)
        await self._invalidate((tenant, thread_id))
        return deleted

    @_finish_even_if_cancelled
    async def clear(self, tenant: str, thread_id: str) -> int:
        n = await self.cold.clear(tenant, thread_id)
        await self._invalidate((tenant, thread_id))
        return n

    @_finish_even_if_cancelled
    async def copy_thread(self, tenant: str, source: str, target: str) -> int:
        # Encrypted rows are bound to their thread: the copies are sealed again for the target, in the same
        # transaction as the copy.
        n = await self.cold.copy_thread(tenant, source, target, self._resealer(tenant, source, target))
        await self._invalidate((tenant, target))
        return n

    @_finish_even_if_cancelled
    async def prune(self, tenant: str, thread_ids: list[str], keep: int | None) -> int:
        n = await self.cold.prune(tenant, thread_ids, keep)
        await self._invalidate(*((tenant, thread_id) for thread_id in thread_ids))
        return n

    @_finish_even_if_cancelled
    async def delete_runs(self, tenant: str, run_ids: list[str]) -> int:
        n, threads = await self.cold.delete_runs(tenant, run_ids)
        await self._invalidate(*((tenant, thread_id) for thread_id in threads))
        return n

    @_finish_even_if_cancelled
    async def delete_older_than(self, cutoff, limit: int) -> int:  # type: ignore[no-untyped-def]
        n, threads = await self.cold.delete_older_than(cutoff, limit)
        await self._invalidate(*threads)
        return n

    # -- reads -------------------------------------------------------------

    async def load(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None) -> Loaded:
        # One cache round trip: the get returns the thread's generation as read before any cold read,
        # which is all a later fill needs to be dropped if a delete lands in between.
        started = 0
        current = None
        if self.near is not None:
            current = (await self._currents(tenant, [(thread_id, namespace)]))[0] if self.cache.shared else None
            near_hit = self._near_get(tenant, thread_id, namespace, checkpoint_id, current)
            if near_hit is not None:
                self.stats["cache_near_hits"] += 1
                return near_hit  # type: ignore[no-any-return]
            started = self.near.epoch()
        hit = None
        if (tenant, thread_id) not in self._pending:
            wanted = _by_id(checkpoint_id, current)
            hit = await self._cache("get", self.cache.get(tenant, thread_id, namespace, wanted))
        return await self._finish_load(tenant, thread_id, namespace, checkpoint_id, started, hit)

    async def load_many(
        self, tenant: str, requests: list[tuple[str, str, str | None]]
    ) -> list[Loaded | CairnError]:
        """Load each (thread_id, namespace, checkpoint_id|None); per-item errors are returned, Unavailable raised.

        Near-cache hits first, then one hot-cache round trip for all the rest, then the cold store for the
        misses, concurrently."""
        results: list[Loaded | CairnError | None] = [None] * len(requests)
        todo: list[int] = []
        currents: list[Current | None] = [None] * len(requests)
        if self.near is not None and self.cache.shared:
            currents = await self._currents(tenant, [(thread_id, namespace) for thread_id, namespace, _ in requests])
        for i, (thread_id, namespace, checkpoint_id) in enumerate(requests):
            near_hit = self._near_get(tenant, thread_id, namespace, checkpoint_id, currents[i])
            if near_hit is not None:
                self.stats["cache_near_hits"] += 1
                results[i] = near_hit
            else:
                todo.append(i)
        started = self.near.epoch() if self.near is not None else 0
        lookup = [i for i in todo if (tenant, requests[i][0]) not in self._pending]
        hits: dict[int, object] = {}
        if lookup:
            wanted = [(*requests[i][:2], _by_id(requests[i][2], currents[i])) for i in lookup]
            found = await self._cache("get_many", self.cache.get_many(tenant, wanted))
            hits = dict.fromkeys(lookup, _FAILED) if found is _FAILED else dict(zip(lookup, found, strict=True))

        async def one(i: int) -> None:
            try:
                results[i] = await self._finish_load(tenant, *requests[i], started, hits.get(i))
            except Unavailable:
                raise
            except CairnError as err:
                results[i] = err

        await asyncio.gather(*(one(i) for i in todo))
        return results  # type: ignore[return-value]

    async def _finish_load(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None, started: int, hit: Any
    ) -> Loaded:
        """A load after its hot-cache lookup: `hit` is (generation, entry or None), or None/_FAILED when the
        cache was skipped or failed (then nothing is filled)."""
        gen: int | None = None
        if hit is not None and hit is not _FAILED:
            gen, blob = hit
            if blob is not None:
                loaded = self._from_entry(blob, tenant, thread_id, namespace, checkpoint_id)
                if loaded is not None:
                    self.stats["cache_hits"] += 1
                    self._keep_near(started, loaded, checkpoint_id is None, gen)
                    return loaded
            self.stats["cache_misses"] += 1
        found = await self.cold.load(tenant, thread_id, namespace, checkpoint_id)
        if found is None:
            if checkpoint_id:
                raise NotFound(
                    f"checkpoint {checkpoint_id!r} does not exist in thread {thread_id!r} namespace {namespace!r}"
                )
            raise NotFound(
                f"thread {thread_id!r} namespace {namespace!r} has no checkpoints yet; save one first",
                reason="THREAD_EMPTY",
            )
        cp, writes = found
        state = await self._with_dictionaries(self.decode_state, cp)
        if gen is not None:
            await self._fill(gen, cp, writes, make_head=checkpoint_id is None)
        loaded = Loaded(cp, state, writes)
        self._keep_near(started, loaded, checkpoint_id is None, gen)
        return loaded

    def _keep_near(self, started: int, loaded: Loaded, make_head: bool, gen: int | None, saved: bool = False) -> None:
        """Keep `loaded` in the near cache, stamped with the generation read before it was (None: not read)."""
        if self.near is None or (gen is None and self.cache.shared):  # an unstamped entry could never be served
            return
        cp = loaded.checkpoint
        self.near.put(started, cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.sequence, loaded,
                      loaded.size, make_head, saved, stamp=gen)

    async def _currents(self, tenant: str, threads: list[tuple[str, str]]) -> list[Current | None]:
        """What the shared hot cache says now of each (thread_id, namespace): from a lease this process holds, or
        in one round trip for the rest (which renews their leases); None where the near cache may not be used
        (the cache failed, or the thread is pending).

        The near cache holds only what was read under the hot cache's current token: a new token (Redis
        restarted or was flushed, so its generations started again from 0) empties it."""
        near = self.near
        assert near is not None
        out: list[Current | None] = [None] * len(threads)
        ask: list[int] = []
        for i, (thread_id, namespace) in enumerate(threads):
            if (tenant, thread_id) not in self._pending:
                out[i] = near.leased(tenant, thread_id, namespace)
                if out[i] is None:
                    ask.append(i)
        if ask:
            found = await self._ask_current([(tenant, *threads[i]) for i in ask])
            for i, current in zip(ask, found, strict=True):
                out[i] = current
        return out

    async def _ask_current(self, threads: list[tuple[str, str, str]]) -> list[Current | None]:
        """What the hot cache says now of each (tenant, thread_id, namespace), in one round trip, each answer kept
        under the lease it comes with; None for a pending thread, all None if the cache failed."""
        near = self.near
        assert near is not None
        started, sent = near.epoch(), time.monotonic()
        found = await self._cache("current", self.cache.current_many(threads))
        if found is _FAILED:
            return [None] * len(threads)
        if found[0].token != self._token:
            near.clear()
            self._token = found[0].token
        # Redis timed the lease from when it ran the script, after `sent`: ours ends no later than its own.
        until = sent + self.cache.lease_ms / 1000
        out: list[Current | None] = [None] * len(threads)
        for i, ((tenant, thread_id, namespace), current) in enumerate(zip(threads, found, strict=True)):
            if (tenant, thread_id) in self._pending:
                continue
            out[i] = current
            if self.cache.lease_ms:
                near.grant(started, tenant, thread_id, namespace, current, until)
        if self.cache.lease_ms and (self._renewer is None or self._renewer.done()):
            self._renewer = asyncio.get_running_loop().create_task(self._renew_leases())
        return out

    async def _renew_leases(self) -> None:
        """Renew ahead, in one round trip per tick, every lease served from since granted that would end before
        the tick after next; stop once every lease has ended (the next ask starts this again). A hot Load
        then never waits on Redis: at 50 ms leases and 100 hot threads, one in four loads used to."""
        near = self.near
        assert near is not None
        tick = self._renew_tick
        while True:
            await asyncio.sleep(tick)
            due = near.due(time.monotonic() + 2 * tick)
            if not due and not near.leases_alive:
                return
            for start in range(0, len(due), _RENEW_BATCH):
                batch = due[start:start + _RENEW_BATCH]
                self.stats["lease_renewals"] += len(batch)
                await self._ask_current(batch)

    def _near_get(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None, current: Current | None
    ) -> Loaded | None:
        """A near hit; with a shared hot cache, one it vouches for (`current`): same generation, and for a head
        read its head pointer."""
        if self.near is None:
            return None
        if not self.cache.shared:
            return self.near.get(tenant, thread_id, namespace, checkpoint_id)  # type: ignore[no-any-return]
        if current is None:
            return None
        wanted = checkpoint_id or current.head
        if wanted is None:
            return None
        return self.near.get(tenant, thread_id, namespace, wanted, stamp=current.generation)  # type: ignore[no-any-return]

    def _from_entry(
        self, blob: bytes, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> Loaded | None:
        try:
            cp, writes = decode_entry(blob)
            if (cp.tenant, cp.thread_id, cp.namespace) != (tenant, thread_id, namespace) or (
                checkpoint_id and cp.checkpoint_id != checkpoint_id
            ):
                raise CorruptEntry("entry is for another checkpoint")
            state = self.codec.decode(cp.codec, cp.state, cp.raw_size, cp.checksum, "cache entry", cp.tenant,
                                      (cp.thread_id, cp.namespace, cp.checkpoint_id))
        except (CorruptEntry, DataLoss) as exc:
            self.stats["cache_corrupt"] += 1
            log.warning("corrupt cache entry for thread %r evicted: %s", thread_id, exc)
            asyncio.get_running_loop().create_task(self._invalidate((tenant, thread_id)))
            return None
        return Loaded(cp, state, writes)

    async def list_page(
        self, query: ListQuery, render: Callable[[list[StoredCheckpoint], list[StoredWrite]], Any],
        size: Callable[[Any], int],
    ) -> Any:
        """render(rows, writes) of the query; a thread's rendered pages are kept in the near cache until it changes."""
        near = self.near
        stamp: Any = UNCHECKED
        # A listing across threads changes with every save anywhere: never kept. With a shared hot cache the
        # stamp is read before the cold store, so a save landing in between leaves the stamp behind.
        if near is not None and query.thread_id and self.cache.shared:
            current = (await self._currents(query.tenant, [(query.thread_id, "")]))[0]
            stamp = None if current is None else (current.generation, current.saves)
        if near is None or not query.thread_id or stamp is None:
            return await self._with_dictionaries(render, *await self.cold.list_checkpoints(query))
        page = dataclasses.astuple(query)
        found = near.get_page(query.tenant, query.thread_id, page, stamp)
        if found is not None:
            self.stats["cache_near_hits"] += 1
            return found
        started = near.epoch()
        rendered = await self._with_dictionaries(render, *await self.cold.list_checkpoints(query))
        near.put_page(started, query.tenant, query.thread_id, page, rendered, size(rendered), stamp)
        return rendered

    async def row_id_of(self, tenant: str, thread_id: str, namespace: str | None, checkpoint_id: str) -> int | None:
        return await self.cold.row_id_of(tenant, thread_id, namespace, checkpoint_id)

    async def list_threads(self, *args, **kwargs) -> list[ThreadSummary]:  # type: ignore[no-untyped-def]
        return await self.cold.list_threads(*args, **kwargs)

    async def _with_dictionaries(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args), which decodes states; once more after loading dictionaries another process trained."""
        try:
            return fn(*args)
        except UnknownDictionary:
            self.codec.add_dictionaries(await self.cold.dictionaries())
            return fn(*args)

    def _resealer(self, tenant: str, source: str, target: str) -> Any:
        """What CopyThread applies to each copied state and write value, or None when nothing needs it. Without
        keys, a sealed row cannot be sealed again: its copy fails as DATA_LOSS rather than land unreadable."""
        if not self.codec.encrypts and not self.holds_encrypted:
            return None
        codec = self.codec

        def reseal(namespace: str, checkpoint_id: str, row_codec: int | None, data: bytes,
                   slot: tuple[str, int] | None = None) -> bytes:
            if slot is None:
                return codec.reseal(row_codec or 0, data, tenant, (source, namespace, checkpoint_id),
                                    (target, namespace, checkpoint_id))
            value = codec.open_write(data, tenant, (source, namespace, checkpoint_id), *slot)
            return codec.seal_write(value, tenant, (target, namespace, checkpoint_id), *slot)

        return reseal

    def decode_state(self, cp: StoredCheckpoint) -> bytes:
        where = f"checkpoint {cp.checkpoint_id!r} of thread {cp.thread_id!r} in the {self.cold.name} store"
        return self.codec.decode(cp.codec, cp.state, cp.raw_size, cp.checksum, where, cp.tenant,
                                 (cp.thread_id, cp.namespace, cp.checkpoint_id))

    async def aclose(self) -> None:
        for task in (self._healer, self._renewer):
            if task is not None:
                task.cancel()
        await self.cache.aclose()
        await self.cold.aclose()


_RENEW_BATCH = 1000  # threads per lease-renewal round trip


class _Failed:
    def __repr__(self) -> str:
        return "<cache call failed>"


_FAILED = _Failed()
