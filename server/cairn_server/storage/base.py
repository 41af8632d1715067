"""The storage contract: the two tier Protocols, ColdStore and HotCache.

A cold store is the truth (Postgres, or SQLite for the embedded default); a hot cache (Redis, or an in-process
LRU) only holds copies stamped with the version they were current at, served only while the cold store says
they still are (freshness.py). Both take and return already-encoded states (records.py).

The rest of what the tiers share lives by concern: records.py (the records), hashing.py (content hashes),
rows.py (row mappers, List's state budget), failures.py (errors both cold stores raise), prune.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from cairn.errors import CairnError

from .freshness import ThreadVersion, VersionKey
from .records import (
    EntryKey,
    ListQuery,
    RetentionCursor,
    SaveItem,
    SaveOutcome,
    StoredCheckpoint,
    StoredWrite,
    ThreadSummary,
    WritesItem,
)


class ColdStore(Protocol):
    """The durable tier. Every method raises only errors of cairn.errors (Unavailable for backend trouble)."""

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
