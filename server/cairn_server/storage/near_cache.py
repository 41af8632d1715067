"""Near cache: decoded checkpoints kept in the server process, in front of the hot cache.

A hot-cache hit still costs a round trip to Redis, a checksum and a decompression; a near hit costs a dict
lookup, and the service memoizes its rendered response on the entry. Rendered List pages of one thread are kept
too, until the thread changes in any way (a save included). It is bounded by the bytes it holds (LRU).

Coherence, the same discipline as the hot cache's generations but local:
- Every mutation in this process drops the thread's entries before it is acknowledged (`invalidate`).
- A reader or saver takes `epoch()` before touching another tier and hands it to `put`; the put is refused
  when the thread was invalidated after that epoch, so a read that raced a delete cannot re-insert it. A save
  whose put is refused invalidates the thread instead: a read that raced it may have put an older head.
- A save calls `moved`: the thread's pages go, and pages and heads read before it are refused.
- Other processes' changes are not seen here. With a shared hot cache (Redis), every entry carries a stamp: what
  the hot cache said of its thread before it was read (generation; for pages also the thread's save counter).
  The tiered store asks the hot cache again before each near hit (one round trip) and serves an entry
  only when its stamp still matches; the hot cache's head pointer picks the head. A near hit is then exactly
  as fresh as the hot cache, not a pub/sub delivery behind it. `max_age` (the hot cache's TTL) bounds how long
  an entry can be, so a generation key that expired and restarted from 0 cannot match an old stamp again.
- Leases save that round trip for a hot thread: the hot cache's answer is kept (`grant`) until the lease Redis
  granted with it ends, measured from before the question was sent. Another process's change of the thread
  revokes the lease in Redis and waits for it to run out before it is acknowledged (redis_cache.py). This
  process's own changes `release` it once Redis has the change, and refuse leases asked for before that.
  A lease served from at all is renewed shortly before it ends (`due`; tiered.py asks for all of them in one
  round trip), so a thread read all the time never waits for Redis, while one read rarely (each read asks, so
  none is served from a lease) costs no renewal.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

ThreadKey = tuple[str, str]  # (tenant, thread_id)
EntryKey = tuple[str, str, str, Any]  # (tenant, thread_id, namespace, checkpoint_id) or (.., _PAGE, page key)

_PAGE = "\x00page"  # in the namespace slot: namespaces never contain control characters

_MAX_TRACKED_INVALIDATIONS = 50_000
UNCHECKED = object()  # get(stamp=UNCHECKED): serve whatever stamp the entry has (no shared hot cache)


class NearCache:
    def __init__(self, max_bytes: int, max_age_seconds: float | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self.size = 0
        # -> (value, bytes, stamp, monotonic time kept)
        self._entries: OrderedDict[EntryKey, tuple[Any, int, Any, float]] = OrderedDict()
        self._heads: dict[tuple[str, str, str], tuple[int, str]] = {}  # (tenant, thread, ns) -> (sequence, id)
        self._threads: dict[ThreadKey, set[EntryKey]] = {}
        self._epoch = 0
        self._invalidated: dict[ThreadKey, int] = {}  # thread -> epoch of its last invalidation
        self._moved: dict[ThreadKey, int] = {}  # thread -> epoch of its last save (pages only)
        self._floor = 0  # puts that started before this epoch are refused (tracking was reset, or cleared)
        # (tenant, thread, ns) -> (monotonic end, the hot cache's answer); in grant order = end order
        self._leases: OrderedDict[tuple[str, str, str], tuple[float, Any]] = OrderedDict()
        self._leased: dict[ThreadKey, set[str]] = {}  # thread -> namespaces with a lease
        self._released: dict[ThreadKey, int] = {}  # thread -> epoch of its last release
        self._used: dict[tuple[str, str, str], None] = {}  # leases served from since granted or renewed

    def epoch(self) -> int:
        return self._epoch

    def get(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None, stamp: Any = UNCHECKED
    ) -> Any | None:
        """The kept value, if any and (unless UNCHECKED) kept under `stamp`; a stale one is dropped."""
        if checkpoint_id is None:
            head = self._heads.get((tenant, thread_id, namespace))
            if head is None:
                return None
            checkpoint_id = head[1]
        key = (tenant, thread_id, namespace, checkpoint_id)
        found = self._entries.get(key)
        if found is None:
            return None
        if (stamp is not UNCHECKED and found[2] != stamp) or (
            self.max_age_seconds is not None and time.monotonic() - found[3] > self.max_age_seconds
        ):
            self._evict(key)
            return None
        self._entries.move_to_end(key)
        return found[0]

    def _refused(self, started: int, thread: ThreadKey) -> bool:
        return started < self._floor or self._invalidated.get(thread, -1) > started

    def put(
        self, started: int, tenant: str, thread_id: str, namespace: str, checkpoint_id: str, sequence: int,
        value: Any, size: int, make_head: bool, saved: bool = False, stamp: Any = None,
    ) -> None:
        """Keep `value` unless the thread changed since epoch `started` (then it may be stale)."""
        thread = (tenant, thread_id)
        if self._refused(started, thread):
            if saved:
                self.invalidate(tenant, thread_id)
            return
        kept = self._keep((tenant, thread_id, namespace, checkpoint_id), value, size, stamp)
        # A read that began before a save of this thread may hold the older head: kept by id, not as the head
        # (the save's own put has moved the head, unless its entry was too big or has been evicted since).
        if make_head and (saved or self._moved.get(thread, -1) <= started):
            head_key = (tenant, thread_id, namespace)
            head = self._heads.get(head_key)
            if head is None or head[0] < sequence:
                if kept:
                    self._heads[head_key] = (sequence, checkpoint_id)
                else:  # too big to keep, but still newer: the older head must stop being served
                    self._heads.pop(head_key, None)

    def get_page(self, tenant: str, thread_id: str, page: Any, stamp: Any = UNCHECKED) -> Any | None:
        return self.get(tenant, thread_id, _PAGE, page, stamp)

    def put_page(
        self, started: int, tenant: str, thread_id: str, page: Any, value: Any, size: int, stamp: Any = None
    ) -> None:
        thread = (tenant, thread_id)
        if not self._refused(started, thread) and self._moved.get(thread, -1) <= started:
            self._keep((tenant, thread_id, _PAGE, page), value, size, stamp)

    def _mark(self, marks: dict[ThreadKey, int], thread: ThreadKey) -> None:
        """Record a change of the thread at a new epoch; past the tracking bound, refuse every older put instead."""
        self._epoch += 1
        marks[thread] = self._epoch
        if len(marks) > _MAX_TRACKED_INVALIDATIONS:
            marks.clear()
            self._floor = self._epoch

    def moved(self, tenant: str, thread_id: str) -> None:
        """A save landed in the thread: its List pages are out of date."""
        thread = (tenant, thread_id)
        self._mark(self._moved, thread)
        self._drop_leases(thread)
        for key in [k for k in self._threads.get(thread, ()) if k[2] == _PAGE]:
            self._evict(key)

    def _keep(self, key: EntryKey, value: Any, size: int, stamp: Any) -> bool:
        if size > self.max_bytes // 8:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._entries[key] = (value, size, stamp, time.monotonic())
        self.size += size
        self._threads.setdefault((key[0], key[1]), set()).add(key)
        while self.size > self.max_bytes:
            self._evict(next(iter(self._entries)))
        return True

    def _evict(self, key: EntryKey) -> None:
        size = self._entries.pop(key)[1]
        self.size -= size
        thread = (key[0], key[1])
        keys = self._threads.get(thread)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._threads[thread]
        head_key = key[:3]
        head = self._heads.get(head_key)
        if head is not None and head[1] == key[3]:
            del self._heads[head_key]

    def leased(self, tenant: str, thread_id: str, namespace: str) -> Any | None:
        """The hot cache's answer for the thread, while its lease lasts."""
        key = (tenant, thread_id, namespace)
        found = self._leases.get(key)
        if found is None or found[0] <= time.monotonic():
            return None
        self._used[key] = None  # read again within a lease: likely read again after it
        return found[1]

    def due(self, before: float) -> list[tuple[str, str, str]]:
        """The leases served from since they were granted that end before `before` (monotonic): the ones worth
        renewing ahead, so a thread read all the time never waits for Redis, while a thread read once (its read
        asked, and was not served from the lease) costs no renewal. They are no longer counted as used."""
        out = []
        for key, (end, _) in self._leases.items():  # in end order: stop at the first that ends later
            if end >= before:
                break
            if key in self._used:
                del self._used[key]
                out.append(key)
        return out

    @property
    def leases_alive(self) -> bool:
        """Some lease has not ended yet (they end in the order they were granted)."""
        return bool(self._leases) and next(reversed(self._leases.values()))[0] > time.monotonic()

    def grant(self, started: int, tenant: str, thread_id: str, namespace: str, answer: Any, until: float) -> None:
        """Trust `answer` until `until` (monotonic), unless the thread changed here since epoch `started`."""
        thread = (tenant, thread_id)
        if self._refused(started, thread) or self._released.get(thread, -1) > started:
            return
        key = (tenant, thread_id, namespace)
        self._leases.pop(key, None)
        self._leases[key] = (until, answer)
        self._leased.setdefault(thread, set()).add(namespace)
        now = time.monotonic()
        while self._leases:  # leases all last alike, so the ended ones are at the front
            first, (end, _) = next(iter(self._leases.items()))
            if end > now:
                break
            del self._leases[first]
            self._used.pop(first, None)
            namespaces = self._leased.get(first[:2])
            if namespaces is not None:
                namespaces.discard(first[2])
                if not namespaces:
                    del self._leased[first[:2]]

    def release(self, tenant: str, thread_id: str) -> None:
        """The hot cache has a change of the thread: drop its leases, and refuse those asked for before now."""
        thread = (tenant, thread_id)
        self._mark(self._released, thread)
        self._drop_leases(thread)

    def _drop_leases(self, thread: ThreadKey) -> None:
        for namespace in self._leased.pop(thread, ()):
            self._leases.pop((*thread, namespace), None)
            self._used.pop((*thread, namespace), None)

    def invalidate(self, tenant: str, thread_id: str) -> None:
        """Forget the thread; puts that started before now are refused."""
        thread = (tenant, thread_id)
        self._mark(self._invalidated, thread)
        self._drop_leases(thread)
        for key in list(self._threads.get(thread, ())):
            self._evict(key)
        # Every head points at a kept entry (_evict drops it with its entry), so the thread's heads are gone too.

    def clear(self) -> None:
        """Forget everything; puts that started before now are refused (the hot cache was emptied)."""
        self._epoch += 1
        self._floor = self._epoch
        self._invalidated.clear()
        self._moved.clear()
        self._released.clear()
        self._leases.clear()
        self._leased.clear()
        self._used.clear()
        self._entries.clear()
        self._heads.clear()
        self._threads.clear()
        self.size = 0
