"""Fresh reads: the one rule that decides whether a cached copy may be served.

The invariant, which everything else in storage/ keeps:

    A copy of a checkpoint is served only if its stamp is at least its thread's `clobbered` version, read from
    the cold store after the read began. A List page is served only if its stamp equals the thread's `version`.

Versions:
- The cold store is the only authority. Every change to a thread (save, replace, delete, clear, copy into it,
  prune, pending writes, run deletes, retention) first locks the thread's row of versions, and commits a new
  number from one store-wide sequence into it, in the same transaction as the change:
    `version`    every change;
    `clobbered`  the last change that altered or removed existing checkpoints (everything but inserting one).
  Numbers are never reused: one sequence for all threads, and the rows outlive Clear. A stamp names one moment
  of one thread.
- A copy's stamp is the version at which its content is known current: the version its save committed under, or
  the version read before (or in the same snapshot as) the cold read that produced it. A cold read that raced a
  change may hold newer content than its stamp says; that only makes the copy refused sooner.
- A read asks the cold store for the versions (and, for a head read, the head's id) of the threads it reads,
  after it began. Concurrent reads share one query (`VersionReads`), but a read never uses a query that was
  already running when it arrived: that query's snapshot may predate the read.

Consequences:
- No invalidation is ever owed. A server that crashes, pauses or is cut off from Redis after a change leaves
  nothing behind that another server needs to hear: the change's version is in the cold store.
- A Redis restarted from an older snapshot, failed over to a lagging replica, or flushed, holds copies under old
  stamps: each is either still current (served) or refused. Its answers are never trusted for what is current.
- No wait depends on clocks, leases or timers.
- The price: one small cold-store query per read (per batch of concurrent reads).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .group_commit import GroupCommit

# (tenant, thread_id, namespace, want_head): what a read asks the cold store before it touches a cache.
VersionKey = tuple[str, str, str, bool]


@dataclass(slots=True, frozen=True)
class ThreadVersion:
    """What the cold store says of a thread now (all zero for a thread never changed)."""

    version: int  # the thread's last change
    clobbered: int  # the thread's last change that altered or removed existing checkpoints
    head: str | None = None  # the namespace's head checkpoint id, when asked for; None if the namespace is empty

    def serves(self, stamp: int | None) -> bool:
        """Whether a checkpoint copied under `stamp` is still what the cold store holds."""
        return stamp is not None and stamp >= self.clobbered

    def serves_page(self, stamp: int | None) -> bool:
        """Whether a List page of the thread rendered under `stamp` is still what the cold store would list."""
        return stamp is not None and stamp == self.version


NEVER_CHANGED = ThreadVersion(0, 0, None)


class VersionReads:
    """Reads threads' versions from the cold store; concurrent callers share one query.

    A caller's keys go into the next query to start, never into one already running (group_commit.py's queue
    has that property), so every answer was read after its caller asked.
    """

    def __init__(self, read: Callable[[list[VersionKey]], Awaitable[list[ThreadVersion]]], max_inflight: int) -> None:
        self._group: GroupCommit[list[VersionKey], list[ThreadVersion]] = GroupCommit(
            self._read_batch, max_inflight=max_inflight, max_batch=64
        )
        self._read = read
        self.queries = 0  # statements sent, for metrics

    async def read(self, keys: list[VersionKey]) -> list[ThreadVersion]:
        """The versions of `keys`, read after this call began."""
        if not keys:
            return []
        result = await self._group.submit(keys)
        if isinstance(result, Exception):
            raise result
        return result

    async def _read_batch(self, requests: list[list[VersionKey]]) -> list[list[ThreadVersion] | Exception]:
        flat = [key for keys in requests for key in keys]
        unique = list(dict.fromkeys(flat))
        self.queries += 1
        found = dict(zip(unique, await self._read(unique), strict=True))
        return [[found[key] for key in keys] for keys in requests]
