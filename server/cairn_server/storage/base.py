"""The storage contract: records, queries and the two tier Protocols.

A cold store is the truth (Postgres, or SQLite for the embedded default); a hot
cache (Redis, or an in-process LRU) only holds copies stamped with the version they
were current at, served only while the cold store says they still are
(freshness.py). Both take and return already-encoded states: codec, compressed
bytes, raw size and checksum travel together.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import xxhash

from ..errors import AlreadyExists, CairnError, InvalidArgument, NotFound
from .freshness import ThreadVersion, VersionKey
from .runs_base import Lease


@dataclass(slots=True)
class StoredCheckpoint:
    """One checkpoint row as the tiers keep it."""

    tenant: str
    thread_id: str
    namespace: str
    checkpoint_id: str
    parent_checkpoint_id: str
    state_type: str
    node_name: str
    next_nodes: list[str]
    metadata_json: str
    codec: int
    raw_size: int
    checksum: int
    content_hash: bytes
    state: bytes  # stored (compressed) bytes; b"" when a List left them out
    sequence: int = 0
    created_at: datetime | None = None
    row_id: int = 0
    stored_bytes: int = -1  # from the store when `state` was left out
    state_omitted: bool = False  # a List left the state out to stay within its byte budget (ListQuery.max_bytes)

    @property
    def stored_size(self) -> int:
        return len(self.state) if self.stored_bytes < 0 else self.stored_bytes


@dataclass(slots=True)
class StoredWrite:
    """One pending write of a task."""

    task_id: str
    task_path: str
    idx: int
    channel: str
    value_type: str
    value: bytes
    thread_id: str = ""
    namespace: str = ""
    checkpoint_id: str = ""


@dataclass(slots=True)
class WritesItem:
    """One PutWrites: a task's writes against one checkpoint. Concurrent ones are committed together."""

    tenant: str
    thread_id: str
    namespace: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: list[StoredWrite]
    replace: bool
    lease: Lease | None = None  # durable runs: commit only while this run lease is current (runs_base.py)


@dataclass(slots=True)
class SaveOutcome:
    """What a cold store reports for one save."""

    status: str  # "inserted", "exists", "replaced", "conflict", "head_moved", "fenced"
    sequence: int = 0
    created_at: datetime | None = None
    current_head_id: str = ""
    version: int = 0  # the thread's version once the save committed (freshness.py): the stamp of its copies
    error: CairnError | None = None  # status "fenced": the run lease refused the save (runs_base.lease_error)


@dataclass(slots=True)
class SaveItem:
    """One save as handed to the cold store."""

    checkpoint: StoredCheckpoint
    expected_head_id: str | None = None
    expect_empty: bool = False
    replace_existing: bool = False
    raw_state: bytes | None = None  # the uncompressed state, for the near cache; cold stores ignore it
    lease: Lease | None = None  # durable runs: commit only while this run lease is current (runs_base.py)


@dataclass(frozen=True, slots=True)
class RetentionCursor:
    """Where the one retention runner of a cluster goes on (kept in the cold store with its lease).

    version: count-based retention has looked at every thread changed up to this cairn_versions version.
    thread: age-based retention has looked at every (tenant, thread_id) up to this one in this sweep
    (("", "") = from the start).
    """

    version: int
    thread: tuple[str, str]


@dataclass(slots=True)
class ListQuery:
    """A List call, decoded and validated."""

    tenant: str
    thread_id: str  # "" = every thread
    namespace: str | None  # None = every namespace
    metadata_filter_json: str | None
    before_row_id: int | None  # resolved from before_checkpoint_id
    after_row_id: int | None  # from the page token: rows older than this
    limit: int
    include_state: bool
    include_writes: bool
    zstd_states: bool = False  # states go out as their stored zstd frames (a rendering choice, part of the key)
    max_bytes: int = 0  # with include_state: rows past this many bytes of states come without them (0 = no limit)


@dataclass(slots=True)
class ThreadSummary:
    thread_id: str
    checkpoint_count: int
    head_checkpoint_id: str
    head_metadata_json: str
    updated_at: datetime | None
    head_node_name: str = ""
    head_next_nodes: list[str] = field(default_factory=list)


def content_hash(
    raw_state: bytes,
    state_type: str,
    metadata_json: str,
    parent: str,
    node_name: str,
    next_nodes: list[str],
) -> bytes:
    """What makes two saves of one checkpoint id "the same" (an idempotent retry): XXH3-128 of the fields and
    the state, ~0.4 us for a 37 KB state against ~32 for BLAKE2b. Not a cryptographic hash; it need not be: a
    collision could only be aimed by a writer of the tenant, who can overwrite its checkpoints anyway."""
    h = xxhash.xxh3_128(_hashed_fields(state_type, metadata_json, parent, node_name, next_nodes))
    h.update(raw_state)
    return h.digest()


def older_content_hashes(cp: StoredCheckpoint, raw_state: bytes) -> tuple[bytes, ...]:
    """The content hashes earlier builds stored for this content (BLAKE2b-128, before the switch to XXH3), so a
    retry that spans an upgrade is still recognised as the same save."""
    fields = _hashed_fields(cp.state_type, cp.metadata_json, cp.parent_checkpoint_id, cp.node_name, cp.next_nodes)
    return (hashlib.blake2b(fields + raw_state, digest_size=16).digest(),)


def _hashed_fields(state_type: str, metadata_json: str, parent: str, node_name: str, next_nodes: list[str]) -> bytes:
    header = json.dumps([state_type, metadata_json, parent, node_name, next_nodes], separators=(",", ":"))
    return header.encode() + b"\x00"


MAX_ROW_ID = (1 << 63) - 1  # the largest row id either cold store can hold (signed 64-bit)


def listed_size(cp: StoredCheckpoint) -> int:
    """An upper bound of what one checkpoint adds to a List response with its state (ids and fields included)."""
    return cp.raw_size + len(cp.metadata_json) + sum(len(n) for n in cp.next_nodes) + 4096


def within_budget(rows: list[StoredCheckpoint], max_bytes: int) -> int:
    """How many of `rows` (in page order) a List may send with their states: the first always, then as many as
    keep listed_size's total within max_bytes. Stores fetch states for these only."""
    total = 0
    for i, cp in enumerate(rows):
        total += listed_size(cp)
        if total > max_bytes and i > 0:
            return i
    return len(rows)


class PageToken:
    """Opaque AIP-158 token: the last row seen, bound to the query that made it."""

    @staticmethod
    def encode(position: Any, fingerprint: str) -> str:
        blob = json.dumps({"r": position, "q": fingerprint}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(blob).decode().rstrip("=")

    @staticmethod
    def decode(token: str, fingerprint: str, kind: type = int) -> Any:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            row_id, fp = data["r"], data["q"]
            if not isinstance(row_id, kind) or isinstance(row_id, bool) or not isinstance(fp, str):
                raise ValueError("bad fields")
            if kind is int and not 0 < row_id <= MAX_ROW_ID:  # both stores keep row ids as signed 64-bit
                raise ValueError("row id out of range")
        except (ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise InvalidArgument(
                "page_token", "page_token is not one this server issued; pass next_page_token unchanged or omit it"
            ) from exc
        if fp != fingerprint:
            raise InvalidArgument(
                "page_token", "page_token belongs to a different query; keep every other field of the request the same"
            )
        return row_id


def fingerprint(*parts: object) -> str:
    """A short stable digest of the query fields a page token is bound to."""
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=8).hexdigest()


class ColdStore(Protocol):
    """The durable tier. Every method raises only errors from ..errors (Unavailable for backend trouble)."""

    name: str
    max_inflight: int  # how many save transactions group commit may run at once

    async def save(self, items: list[SaveItem]) -> list[SaveOutcome]: ...

    async def versions(self, keys: list[VersionKey]) -> list[ThreadVersion]:
        """What the store says now of each (tenant, thread_id, namespace, want_head), all read in one snapshot:
        see freshness.py. The head is looked up only where asked for."""
        ...

    async def dictionaries(self) -> list[tuple[int, bytes]]:
        """Trained zstd dictionaries as (dictionary id, data), oldest first."""
        ...

    async def add_dictionary(self, dict_id: int, data: bytes, samples: int) -> None: ...

    async def recent_states(self, limit: int) -> list[StoredCheckpoint]:
        """The newest checkpoints of all tenants, with their stored states (samples for training)."""
        ...

    async def load(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[StoredCheckpoint, list[StoredWrite]] | None: ...

    async def row_id_of(self, tenant: str, thread_id: str, namespace: str | None, checkpoint_id: str) -> int | None: ...

    async def list_checkpoints(self, query: ListQuery) -> tuple[list[StoredCheckpoint], list[StoredWrite]]: ...

    async def list_threads(
        self, tenant: str, limit: int, after: tuple[datetime, str] | None, metadata_filter_json: str | None
    ) -> list[ThreadSummary]: ...

    async def delete(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str) -> bool: ...

    async def clear(self, tenant: str, thread_id: str) -> int: ...

    async def put_writes_many(self, items: list[WritesItem]) -> list[int | CairnError]:
        """Store each item's writes, all or none of an item's; per item the number newly stored or changed
        (identical re-sends are not), or its error (NotFound: no such checkpoint; AlreadyExists: a write's
        (task_id, idx) holds another value and the item does not replace)."""
        ...

    async def copy_thread(self, tenant: str, source: str, target: str, reseal: Any = None) -> int:
        """Copy a thread into an empty one; `reseal(namespace, checkpoint_id, codec, state)` (and, for a write's
        value, `reseal(namespace, checkpoint_id, None, value, (task_id, idx))`) gives the bytes the copy
        stores, in the same transaction (encrypted rows are bound to their thread)."""
        ...

    async def prune(self, tenant: str, thread_ids: list[str], keep: int | None) -> int: ...

    async def delete_runs(self, tenant: str, run_ids: list[str]) -> tuple[int, set[str]]: ...

    async def retention_lease(self, job: str, holder: str, ttl_seconds: float) -> RetentionCursor | None:
        """Take or renew the lease on `job` for `holder`; its cursors, or None while another holds it."""
        ...

    async def retention_advance(self, job: str, holder: str, cursor: RetentionCursor, ttl_seconds: float) -> bool:
        """Store `job`'s cursors and renew its lease if `holder` still holds it; False if it lost it."""
        ...

    async def retention_release(self, job: str, holder: str) -> None:
        """Give up `holder`'s lease on `job`."""
        ...

    async def threads_changed(self, after_version: int, max_per_head: int, limit: int
                              ) -> tuple[int, list[tuple[str, str]]]:
        """Of the next `limit` threads changed after `after_version`, those with a namespace holding more than
        max_per_head checkpoints; and the version up to which it looked."""
        ...

    async def threads_after(self, after: tuple[str, str], cutoff: datetime, limit: int
                            ) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
        """Of the next `limit` threads after `after`, those with a non-head checkpoint created before cutoff; and
        the last thread looked at (None when there were no more)."""
        ...

    async def delete_older_than(self, tenant: str, thread_id: str, cutoff: datetime) -> int:
        """Delete one thread's checkpoints created before cutoff, never a head; how many went."""
        ...

    async def ping(self) -> None:
        """Return once the store answers a trivial query; raise Unavailable when it cannot."""
        ...

    async def key_fingerprints(self, fingerprints: dict[str, bytes]) -> dict[str, bytes]:
        """Record the given (key id -> fingerprint) not recorded yet; return every recorded one."""
        ...

    async def quarantine(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str,
                         reason: str) -> bool:
        """Move a checkpoint out of its thread into the quarantine table, kept; False if it does not exist."""
        ...

    async def quarantined(self, limit: int) -> list[dict[str, Any]]:
        """The newest quarantined checkpoints (ids, reason, time, sizes), newest first."""
        ...

    async def aclose(self) -> None: ...


class CacheUnavailable(Exception):
    """Raised by a hot cache when its backend cannot be reached; never reaches a client."""


# (tenant, thread_id, namespace, checkpoint_id): one checkpoint's place in a hot cache.
EntryKey = tuple[str, str, str, str]


class HotCache(Protocol):
    """The fast tier: checkpoint entries by key, each carrying the stamp it was current at (entry.py). It is never
    asked what is current (freshness.py), so it needs no invalidation and may lose or roll back entries freely.

    Every call returns, or raises CacheUnavailable, within the cache timeout the cache was made with: the
    tiered store sets no timer of its own."""

    name: str

    async def get_many(self, keys: list[EntryKey]) -> list[bytes | None]:
        """The entry kept under each key, or None, in one round trip."""
        ...

    async def put_many(
        self, entries: list[tuple[EntryKey, bytes]], ttl_seconds: float | None = None,
        expire: list[EntryKey] | None = None, expire_ttl_seconds: float = 0,
    ) -> None:
        """Keep each entry under its key (replacing what was there) for `ttl_seconds` (None: the cache's TTL),
        and let those under `expire` that exist live `expire_ttl_seconds` more (0: drop them), in one round
        trip."""
        ...

    async def expire_many(self, keys: list[EntryKey], ttl_seconds: float) -> None:
        """Let the entries under `keys` (those that exist) live `ttl_seconds` more (0: drop them), in one round
        trip."""
        ...

    async def aclose(self) -> None: ...


def checkpoint_from_row(r: Any, with_state: bool, created_at: datetime, next_nodes: list[str]) -> StoredCheckpoint:
    """A StoredCheckpoint from a row of either cold store (asyncpg Record or sqlite3.Row: both index by name)."""
    return StoredCheckpoint(
        row_id=r["row_id"],
        tenant=r["tenant"],
        thread_id=r["thread_id"],
        namespace=r["namespace"],
        checkpoint_id=r["checkpoint_id"],
        parent_checkpoint_id=r["parent_checkpoint_id"],
        sequence=r["sequence"],
        created_at=created_at,
        state_type=r["state_type"],
        node_name=r["node_name"],
        next_nodes=next_nodes,
        metadata_json=r["metadata"],
        codec=r["codec"],
        raw_size=r["raw_size"],
        checksum=r["checksum"],
        content_hash=bytes(r["content_hash"]),
        state=bytes(r["state"]) if with_state else b"",
        stored_bytes=r["stored_bytes"],
    )


def write_from_row(r: Any) -> StoredWrite:
    return StoredWrite(
        task_id=r["task_id"],
        task_path=r["task_path"],
        idx=r["idx"],
        channel=r["channel"],
        value_type=r["value_type"],
        value=bytes(r["value"]),
        thread_id=r["thread_id"],
        namespace=r["namespace"],
        checkpoint_id=r["checkpoint_id"],
    )


def missing_checkpoint(thread_id: str, namespace: str, checkpoint_id: str) -> NotFound:
    return NotFound(
        f"checkpoint {checkpoint_id!r} does not exist in thread {thread_id!r} namespace {namespace!r}; "
        "save the checkpoint before attaching writes to it"
    )


def write_conflict(w: StoredWrite) -> AlreadyExists:
    return AlreadyExists(
        f"write idx {w.idx} of task {w.task_id!r} is already stored with a different value; "
        "writes are immutable: use a new task_id, or set replace=true to overwrite",
        reason="WRITE_CONFLICT",
    )


def outside_head_chains(rows: list[Any], keep: int) -> list[Any]:
    """Keys of the rows to delete so each namespace keeps `keep` checkpoints along its head's parent chain.

    rows: (key, namespace, checkpoint_id, parent_checkpoint_id), each namespace's newest (highest sequence)
    first.
    """
    by_ns: dict[str, list[Any]] = {}
    for r in rows:
        by_ns.setdefault(r[1], []).append(r)
    doomed: list[Any] = []
    for ns_rows in by_ns.values():
        by_id = {r[2]: r for r in ns_rows}
        kept: set[Any] = set()
        cursor: Any = ns_rows[0]
        while cursor is not None and len(kept) < keep:
            kept.add(cursor[0])
            cursor = by_id.get(cursor[3]) if cursor[3] else None
        doomed.extend(r[0] for r in ns_rows if r[0] not in kept)
    return doomed
