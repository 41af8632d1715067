"""The tiered store: a near cache and a hot cache in front of the cold store, which is the truth.

Write path: encode (compress, checksum), commit to the cold store, then fill the caches; a save is acknowledged
only after the cold commit. Read path: ask the cold store for the threads' versions (freshness.py), then the
near cache, the hot cache, and the cold store, each copy served only if its stamp is still vouched for; fill
the tiers it missed.

What the hot cache holds is bounded by what is likely to be read: the heads. By default only reads fill it: a
head read for the cache's TTL, a read by checkpoint id for the short `recent_ttl_seconds`. A save puts its new
head in this process's near cache only: a graph runtime saves after every step but reads a head once per resume,
so writing every save's state to Redis cost each save bytes on the wire and Redis's CPU for entries hardly ever
read. A save still cuts the entry of the head it replaced (its parent), if a read filled one, to
`recent_ttl_seconds`: a short PEXPIRE in one round trip per commit. With `fill_on_save` a save also fills its new
head for the TTL. Either way a thread holds about one entry, however often it saves, and Redis needs no
more than (active threads x entry) plus a few seconds of saves; `maxmemory` with any eviction policy bounds it
beyond that, since an evicted entry is only a miss.

Freshness needs nothing from the caches (see freshness.py for the invariant and why it holds): a cache that
fails, loses entries or rolls back only makes reads miss. Cache errors are counted and logged, never returned
to clients; a corrupt cache entry is counted and the cold store answers instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cairn.errors import (
    AlreadyExists,
    CairnError,
    DataLoss,
    FailedPrecondition,
    HeadMoved,
    InvalidArgument,
    NotFound,
    Unavailable,
)

from ..codec import WRITE_MAGIC, Codec, UnknownDictionary
from .base import CacheUnavailable, ColdStore, HotCache
from .hashing import content_hash, older_content_hashes
from .records import (
    EntryKey,
    ListQuery,
    SaveItem,
    SaveOutcome,
    SaveStatus,
    StoredCheckpoint,
    StoredWrite,
    ThreadSummary,
    WritesItem,
)
from .rows import listed_size
from .entry import CorruptEntry, decode_entry, encode_entry
from .freshness import ThreadVersion, VersionReads
from .group_commit import GroupCommit
from .near_cache import NearCache
from .quarantine import integrity_failure

__all__ = ["ListedPage", "Loaded", "TieredStore"]

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

log = logging.getLogger("cairn.store")


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


@dataclass(slots=True)
class Loaded:
    """A checkpoint with its raw (decoded) state and pending writes."""

    checkpoint: StoredCheckpoint
    state: bytes
    writes: list[StoredWrite]
    # The edge's serialized LoadResponse for it, keyed by whether the state went as its zstd frame: kept with
    # it in the near cache, so a hot Load sends bytes without building a message.
    responses: dict[bool, bytes] = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        """What it may come to hold: the raw and the stored state, each once more inside the response rendered
        for its encoding, the writes, and some overhead (an upper bound, so the near cache stays within its MB)."""
        return 2 * (len(self.state) + len(self.checkpoint.state)) + sum(len(w.value) for w in self.writes) + 512


@dataclass(slots=True)
class ListedPage:
    """One List page as the cold store returned it. `response` is the edge's serialized ListResponse for it,
    kept with the page in the near cache (until the thread changes) so a repeated List sends bytes as they are."""

    rows: list[StoredCheckpoint]
    writes: list[StoredWrite]
    response: bytes | None = None

    @property
    def size(self) -> int:
        """An upper bound of what it comes to hold: every row's state stored and raw, and its response."""
        return 2 * sum(listed_size(cp) + len(cp.state) for cp in self.rows) + 2 * sum(
            len(w.value) + 256 for w in self.writes) + 512


def _missing(thread_id: str, namespace: str, checkpoint_id: str | None) -> NotFound:
    if checkpoint_id:
        return NotFound(f"checkpoint {checkpoint_id!r} does not exist in thread {thread_id!r} namespace {namespace!r}")
    return NotFound(
        f"thread {thread_id!r} namespace {namespace!r} has no checkpoints yet; save one first", reason="THREAD_EMPTY"
    )


class TieredStore:
    """The store the service talks to: a cold store, a hot cache and an optional near cache (see the module)."""

    def __init__(
        self, cold: ColdStore, cache: HotCache, codec: Codec, near: NearCache | None = None,
        commit_concurrency: int = 1, commit_batch_bytes: int = 8 << 20, recent_ttl_seconds: float = 10,
        fill_on_save: bool = False,
    ) -> None:
        self.cold = cold
        self.recent_ttl_seconds = recent_ttl_seconds
        self.fill_on_save = fill_on_save
        self.cache = cache
        self.near = near
        self.codec = codec
        self.stats: Counter[str] = Counter()
        self.holds_encrypted = False  # the cold store has seen encryption keys (keys.py)
        self.refuse_plaintext = False  # ... and this server has none: saves are refused
        self.on_batch: Callable[[int], None] | None = None  # set by metrics: saves per cold transaction
        self._group = GroupCommit(
            self._commit, max_inflight=min(commit_concurrency, cold.max_inflight), on_batch=self._observe_batch,
            size=lambda item: item.checkpoint.stored_size, max_batch_bytes=commit_batch_bytes,
        )
        self._writes_group = GroupCommit(self._commit_writes, max_inflight=min(commit_concurrency, cold.max_inflight))
        # One versions query at a time: every read that arrives while it runs shares the next one, so the cold
        # store answers a batch of reads per query, not one or two (the query is cheap; its round trip is not).
        self.versions = VersionReads(cold.versions, max_inflight=1)

    def _observe_batch(self, size: int) -> None:
        if self.on_batch is not None:
            self.on_batch(size)

    @property
    def tiers(self) -> str:
        """The tiers in use, for the startup log line."""
        return f"hot={self.cache.name} cold={self.cold.name}"

    async def _cache(self, what: str, coro):  # type: ignore[no-untyped-def]
        """Run a cache call; on failure count it, log it and return _FAILED. The cache ends its own calls within
        its timeout (base.HotCache): a timer here would cost a task per call."""
        try:
            return await coro
        except (CacheUnavailable, asyncio.TimeoutError, OSError) as exc:
            self.stats["cache_errors"] += 1
            log.warning("cache %s failed, falling through to the cold store: %s", what, exc or type(exc).__name__)
            return _FAILED

    def _forget(self, *threads: tuple[str, str]) -> None:
        """Free what the near cache holds of changed threads: none of it would be served again (freshness.py)."""
        if self.near is not None:
            for tenant, thread_id in threads:
                self.near.forget(tenant, thread_id)

    # -- writes ------------------------------------------------------------

    async def save(self, item: SaveItem) -> SaveOutcome:
        """One save. Concurrent saves share a commit (group_commit.py), which runs on even if the caller leaves."""
        result = await self._group.submit(item)
        if isinstance(result, Exception):
            raise result
        return result

    async def save_many(self, items: list[SaveItem]) -> list[SaveOutcome | Exception]:
        """Commit a stream's batch of saves in one commit; per-item failures are returned, in order."""
        self._observe_batch(len(items))
        return await self._commit(items)

    async def save_grouped(self, items: list[SaveItem]) -> list[SaveOutcome | Exception]:
        """A SaveBatch's saves, through the group commit: concurrent batches (and Saves) that queue while a commit
        runs share the next transaction, so a client's several batches in flight cost the cold store one commit
        where they meet. Per-item failures are returned, in order. The items must name distinct
        (tenant, thread, namespace): a batch may split between transactions, which may commit in either order."""
        return await self._group.submit_many(items)

    async def _commit(self, items: list[SaveItem]) -> list[SaveOutcome | Exception]:
        """One cold transaction and one cache fill for all the items.

        The cold store gets them sorted by thread (stable: a thread's saves keep their order), so two
        concurrent transactions lock threads in the same order and cannot deadlock.
        """
        return await _in_key_order(
            items, lambda i: (i.checkpoint.tenant, i.checkpoint.thread_id, i.checkpoint.namespace), self._commit_sorted
        )

    async def _commit_sorted(self, items: list[SaveItem]) -> list[SaveOutcome | Exception]:
        outcomes = await self.cold.save(items)
        # Only a namespace's newest inserted checkpoint of the batch is cached: it is the head, and the older ones
        # (a stream replaying history) would be written to the cache only to stop being heads at once.
        newest = {(item.checkpoint.tenant, item.checkpoint.thread_id, item.checkpoint.namespace): position
                  for position, (item, outcome) in enumerate(zip(items, outcomes, strict=True))
                  if outcome.status is SaveStatus.INSERTED}
        fills: list[tuple[EntryKey, bytes]] = []
        replaced_heads: list[EntryKey] = []
        results: list[SaveOutcome | Exception] = []
        for position, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
            cp = item.checkpoint
            if outcome.status is SaveStatus.FENCED:  # refused by its run lease; nothing was stored
                results.append(outcome.error or AssertionError("fenced without an error"))
                continue
            if outcome.status is SaveStatus.CONFLICT:
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
                outcome.status = SaveStatus.EXISTS
            if outcome.status is SaveStatus.HEAD_MOVED:
                results.append(HeadMoved(cp.thread_id, cp.namespace, outcome.current_head_id))
                continue
            cp.sequence, cp.created_at = outcome.sequence, outcome.created_at
            if outcome.status is SaveStatus.INSERTED and cp.parent_checkpoint_id:
                replaced_heads.append((cp.tenant, cp.thread_id, cp.namespace, cp.parent_checkpoint_id))
            if outcome.status is SaveStatus.REPLACED:
                self._forget((cp.tenant, cp.thread_id))
            elif outcome.status is SaveStatus.INSERTED and newest[(cp.tenant, cp.thread_id, cp.namespace)] == position:
                # A replaced or retried ("exists") checkpoint may carry writes this request does not know of: only
                # a new one is filled, under the version its save committed at.
                key = (cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id)
                if self.near is not None and item.raw_state is not None:
                    loaded = Loaded(cp, item.raw_state, [])
                    self.near.put(*key, loaded, loaded.size, outcome.version)
                if self.fill_on_save:
                    fills.append((key, encode_entry(outcome.version, cp, [])))
            results.append(outcome)
        if fills or replaced_heads:
            await self._cache("fill", self.cache.put_many(fills, None, replaced_heads, self.recent_ttl_seconds))
        return results

    async def _stored_under_older_hash(self, item: SaveItem) -> bool:
        """Whether a save the cold store called a conflict found this very content, hashed by an earlier build
        (older_content_hashes): then it is a retry that spans an upgrade. Conflicts are rare; this reads the row."""
        cp = item.checkpoint
        if item.raw_state is None:
            return False
        found = await self.cold.load(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id)
        return found is not None and found[0].content_hash in older_content_hashes(cp, item.raw_state)

    async def put_writes(self, item: WritesItem) -> int:
        """One task's writes. Concurrent PutWrites share one cold statement (group_commit.py), which runs on
        even if the caller leaves."""
        result = await self._writes_group.submit(item)
        if isinstance(result, Exception):
            raise result
        return result

    async def _commit_writes(self, items: list[WritesItem]) -> list[int | Exception]:
        """The cold store gets the items in one call, sorted by checkpoint and task (stable), so two concurrent
        batches take their locks in the same order."""
        def key(i: WritesItem) -> tuple[str, ...]:
            return i.tenant, i.thread_id, i.namespace, i.checkpoint_id, i.task_id

        outcomes = await _in_key_order(items, key, self.cold.put_writes_many)
        self._forget(*((i.tenant, i.thread_id) for i, n in zip(items, outcomes, strict=True) if isinstance(n, int)))
        return outcomes  # type: ignore[return-value]

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
        self._forget((tenant, thread_id))
        return deleted

    async def clear(self, tenant: str, thread_id: str) -> int:
        """Delete every checkpoint of the thread, in every namespace; how many there were."""
        n = await self.cold.clear(tenant, thread_id)
        self._forget((tenant, thread_id))
        return n

    async def copy_thread(self, tenant: str, source: str, target: str) -> int:
        """Copy a thread into an empty one (TargetNotEmpty otherwise); how many checkpoints were copied. Encrypted
        rows are bound to their thread: the copies are sealed again for the target, in the copy's transaction."""
        n = await self.cold.copy_thread(tenant, source, target, self._resealer(tenant, source, target))
        self._forget((tenant, target))
        return n

    async def prune(self, tenant: str, thread_ids: list[str], keep: int | None) -> int:
        """Keep the newest `keep` checkpoints along each head's chain (None: delete all); how many went."""
        n = await self.cold.prune(tenant, thread_ids, keep)
        self._forget(*((tenant, thread_id) for thread_id in thread_ids))
        return n

    async def delete_runs(self, tenant: str, run_ids: list[str]) -> int:
        """Delete the checkpoints whose metadata run_id is one of `run_ids`; how many went."""
        n, threads = await self.cold.delete_runs(tenant, run_ids)
        self._forget(*((tenant, thread_id) for thread_id in threads))
        return n

    async def delete_older_than(self, tenant: str, thread_id: str, cutoff) -> int:  # type: ignore[no-untyped-def]
        """Retention: delete one thread's checkpoints created before `cutoff`, never a head; how many went."""
        n = await self.cold.delete_older_than(tenant, thread_id, cutoff)
        if n:
            self._forget((tenant, thread_id))
        return n

    # -- reads -------------------------------------------------------------

    async def load(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None) -> Loaded:
        """A checkpoint (the namespace's head when no id) with its writes; NotFound if there is none."""
        result = (await self.load_many(tenant, [(thread_id, namespace, checkpoint_id)]))[0]
        if isinstance(result, CairnError):
            raise result
        return result

    async def load_many(
        self, tenant: str, requests: list[tuple[str, str, str | None]]
    ) -> list[Loaded | CairnError]:
        """Load each (thread_id, namespace, checkpoint_id|None); per-item errors are returned, Unavailable raised.

        One versions query for all (shared with concurrent reads), then near hits, then one hot-cache round trip
        for the rest, then the cold store for the misses, concurrently."""
        versions = await self.versions.read(
            [(tenant, thread_id, namespace, checkpoint_id is None) for thread_id, namespace, checkpoint_id in requests]
        )
        results: list[Loaded | CairnError | None] = [None] * len(requests)
        keys: list[EntryKey | None] = [None] * len(requests)
        for i, ((thread_id, namespace, checkpoint_id), current) in enumerate(zip(requests, versions, strict=True)):
            wanted = checkpoint_id or current.head
            if wanted is None:
                results[i] = _missing(thread_id, namespace, None)
                continue
            keys[i] = (tenant, thread_id, namespace, wanted)
            if self.near is not None:
                found = self.near.get(*keys[i], current.clobbered)  # type: ignore[misc]
                if found is not None:
                    self.stats["cache_near_hits"] += 1
                    results[i] = found
        todo = [i for i, result in enumerate(results) if result is None]
        hits: list[Any] = [None] * len(todo)
        if todo:
            found = await self._cache("get", self.cache.get_many([keys[i] for i in todo]))  # type: ignore[misc]
            if found is not _FAILED:
                hits = found

        async def one(i: int, blob: bytes | None) -> None:
            try:
                results[i] = await self._finish_load(keys[i], requests[i][2], versions[i], blob)  # type: ignore[arg-type]
            except Unavailable:
                raise
            except CairnError as err:
                results[i] = err

        await asyncio.gather(*(one(i, blob) for i, blob in zip(todo, hits, strict=True)))
        return results  # type: ignore[return-value]

    async def _finish_load(
        self, key: EntryKey, checkpoint_id: str | None, current: ThreadVersion, blob: bytes | None
    ) -> Loaded:
        """A load after its hot-cache lookup (`blob`: the entry found, or None)."""
        tenant, thread_id, namespace, _ = key
        if blob is not None:
            loaded = self._from_entry(blob, key, current)
            if loaded is not None:
                self.stats["cache_hits"] += 1
                self._keep_near(loaded, current.version)
                return loaded
        self.stats["cache_misses"] += 1
        # A head read picks its head in the cold read's own snapshot: the head the versions query named may have
        # been replaced, or given writes, since, and its row read later would pair that head with a later state.
        found = await self.cold.load(tenant, thread_id, namespace, checkpoint_id)
        if found is None:
            raise _missing(thread_id, namespace, checkpoint_id)
        cp, writes = found
        state = await self._with_dictionaries(self.decode_state, cp)
        # Read after the versions query: current at least as of `current.version` (freshness.py). A head read
        # keeps it as a head; a read by id only briefly (the module docstring).
        ttl = None if checkpoint_id is None else self.recent_ttl_seconds
        if ttl is None or ttl > 0:
            await self._cache("fill", self.cache.put_many(
                [((tenant, thread_id, namespace, cp.checkpoint_id), encode_entry(current.version, cp, writes))], ttl
            ))
        loaded = Loaded(cp, state, writes)
        self._keep_near(loaded, current.version)
        return loaded

    def _keep_near(self, loaded: Loaded, stamp: int) -> None:
        if self.near is not None:
            cp = loaded.checkpoint
            self.near.put(cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, loaded, loaded.size, stamp)

    def _from_entry(self, blob: bytes, key: EntryKey, current: ThreadVersion) -> Loaded | None:
        """The entry decoded, if the cold store still vouches for its stamp; None (a miss) otherwise."""
        try:
            stamp, cp, writes = decode_entry(blob)
            if (cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id) != key:
                raise CorruptEntry("entry is for another checkpoint")
            if not current.serves(stamp):
                self.stats["cache_refused"] += 1
                return None
            state = self.codec.decode(cp.codec, cp.state, cp.raw_size, cp.checksum, "cache entry", cp.tenant,
                                      (cp.thread_id, cp.namespace, cp.checkpoint_id))
        except (CorruptEntry, DataLoss) as exc:
            self.stats["cache_corrupt"] += 1
            log.warning("corrupt cache entry for thread %r ignored: %s", key[1], exc)
            return None
        return Loaded(cp, state, writes)

    async def list_page(self, query: ListQuery) -> ListedPage:
        """The rows (and writes) of one List page; a thread's pages are kept in the near cache until it changes.
        States stay encoded: the edge asks for each it sends (decoded_state), within its byte budget."""
        near = self.near
        # A listing across threads changes with every save anywhere: never kept.
        if near is None or not query.thread_id:
            return ListedPage(*await self.cold.list_checkpoints(query))
        current, = await self.versions.read([(query.tenant, query.thread_id, "", False)])
        key = dataclasses.astuple(query)
        found = near.get_page(query.tenant, query.thread_id, key, current.version)
        if found is not None:
            self.stats["cache_near_hits"] += 1
            return found  # type: ignore[no-any-return]
        page = ListedPage(*await self.cold.list_checkpoints(query))
        near.put_page(query.tenant, query.thread_id, key, page, page.size, current.version)
        return page

    async def row_id_of(self, tenant: str, thread_id: str, namespace: str | None, checkpoint_id: str) -> int | None:
        """The cold row id of a checkpoint (List's `before_checkpoint_id`), None when there is no such one."""
        return await self.cold.row_id_of(tenant, thread_id, namespace, checkpoint_id)

    async def list_threads(self, *args, **kwargs) -> list[ThreadSummary]:  # type: ignore[no-untyped-def]
        """ListThreads' page, from the cold store (ColdStore.list_threads)."""
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
        """The raw state of a cold row; DataLoss if it fails its checksum."""
        where = f"checkpoint {cp.checkpoint_id!r} of thread {cp.thread_id!r} in the {self.cold.name} store"
        return self.codec.decode(cp.codec, cp.state, cp.raw_size, cp.checksum, where, cp.tenant,
                                 (cp.thread_id, cp.namespace, cp.checkpoint_id))

    async def decoded_state(self, cp: StoredCheckpoint) -> bytes:
        """decode_state, once more after loading the dictionaries another process trained."""
        return await self._with_dictionaries(self.decode_state, cp)  # type: ignore[no-any-return]

    # -- encoding: the edge hands over what the client sent, the store decides how it is kept --------------

    @property
    def encrypts(self) -> bool:
        """Whether this server seals states and write values (--encryption-keys)."""
        return self.codec.encrypts

    def check_plaintext_allowed(self) -> None:
        """Refuse to store plaintext in a store that holds encrypted rows, unless --allow-plaintext-saves."""
        if self.refuse_plaintext and not self.codec.encrypts:
            raise FailedPrecondition(
                "this store holds encrypted rows and this server was started without --encryption-keys, so it "
                "would store states in plaintext; start it with the keys (or --allow-plaintext-saves)",
                reason="ENCRYPTION_REQUIRED",
            )

    def unframe_state(self, frame: bytes, check_size: Callable[[int], None]) -> bytes:
        """The state inside a client's zstd frame; `check_size(n)` refuses a frame that declares too much.
        ValueError when it is no frame of one state."""
        return self.codec.unframe(frame, check_size)

    def new_checkpoint(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str, parent_checkpoint_id: str,
        state_type: str, node_name: str, next_nodes: list[str], metadata_json: str, raw: bytes,
        client_frame: bytes | None,
    ) -> StoredCheckpoint:
        """A checkpoint to save: the state encoded as this store keeps it (compressed, sealed, checksummed;
        `client_frame` is the client's zstd frame of it, reused when it fits) and its content hash."""
        self.check_plaintext_allowed()
        codec, stored, checksum = self.codec.encode(raw, tenant, client_frame, (thread_id, namespace, checkpoint_id))
        return StoredCheckpoint(
            tenant=tenant,
            thread_id=thread_id,
            namespace=namespace,
            checkpoint_id=checkpoint_id,
            parent_checkpoint_id=parent_checkpoint_id,
            state_type=state_type,
            node_name=node_name,
            next_nodes=next_nodes,
            metadata_json=metadata_json,
            codec=codec,
            raw_size=len(raw),
            checksum=checksum,
            content_hash=content_hash(raw, state_type, metadata_json, parent_checkpoint_id, node_name, next_nodes),
            state=stored,
        )

    def seal_write(self, value: bytes, tenant: str, checkpoint: tuple[str, str, str], task_id: str, idx: int) -> bytes:
        """A write's value as this store keeps it. InvalidArgument for a plaintext value that begins with the tag
        of a sealed one: a server without keys could not tell them apart."""
        if not self.codec.encrypts and value.startswith(WRITE_MAGIC):
            raise InvalidArgument(
                "writes.value", f"write idx {idx} begins with the tag of a sealed value, which this server "
                "(without --encryption-keys) cannot store unambiguously; prefix the value with another byte",
            )
        return self.codec.seal_write(value, tenant, checkpoint, task_id, idx)

    def write_value(self, w: StoredWrite, tenant: str) -> bytes:
        """A stored write's value as the client wrote it."""
        return self.codec.open_write(w.value, tenant, (w.thread_id, w.namespace, w.checkpoint_id), w.task_id, w.idx)

    async def aclose(self) -> None:
        """Close the hot cache and the cold store."""
        await self.cache.aclose()
        await self.cold.aclose()


class _Failed:
    def __repr__(self) -> str:
        return "<cache call failed>"


_FAILED = _Failed()
