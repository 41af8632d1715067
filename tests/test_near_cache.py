"""The near cache: its own rules (unit), and coherence between server processes sharing Redis (real servers)."""

from __future__ import annotations

import time
import urllib.request

import pytest
from cairn_client import CheckpointClient, NotFound
from cairn_server.storage.near_cache import NearCache

from tests.harness import free_port


def _put(near: NearCache, started: int, cp_id: str, seq: int, size: int = 10, head: bool = True,
         thread: str = "t", value: object = None) -> None:
    near.put(started, "tenant", thread, "", cp_id, seq, value or cp_id, size, head)


async def _store_over_redis(redis_url: str, tmp_path, lease_ms: int):  # type: ignore[no-untyped-def]
    """One server process's tiered store, in this process: SQLite cold store, Redis hot cache, a near cache."""
    from cairn_server.codec import Codec
    from cairn_server.storage.redis_cache import RedisCache
    from cairn_server.storage.sqlite import SqliteColdStore
    from cairn_server.storage.tiered import TieredStore

    cache = RedisCache.from_url(redis_url, lease_ms=lease_ms)
    return TieredStore(await SqliteColdStore.open(str(tmp_path / "cold.db")), cache, Codec(), near=NearCache(1 << 20))


def test_head_moves_only_forward_and_ids_stay_addressable() -> None:
    near = NearCache(1 << 20)
    _put(near, near.epoch(), "b", 2)
    _put(near, near.epoch(), "a", 1)  # a slower load of an older head
    assert near.get("tenant", "t", "", None) == "b"
    assert near.get("tenant", "t", "", "a") == "a"
    assert near.get("tenant", "t", "other-ns", None) is None


def test_a_put_that_started_before_an_invalidation_is_refused() -> None:
    near = NearCache(1 << 20)
    started = near.epoch()  # a load begins, reads the old head from Redis...
    near.invalidate("tenant", "t")  # ...a delete commits meanwhile
    _put(near, started, "old", 1)
    assert near.get("tenant", "t", "", None) is None
    _put(near, near.epoch(), "new", 2)  # a read that began after the delete is kept
    assert near.get("tenant", "t", "", None) == "new"
    _put(near, started, "x", 3, thread="other")  # other threads are not affected
    assert near.get("tenant", "other", "", None) == "x"


def test_invalidate_drops_every_entry_and_head_of_the_thread() -> None:
    near = NearCache(1 << 20)
    for i in range(5):
        _put(near, near.epoch(), f"c{i}", i)
    _put(near, near.epoch(), "keep", 1, thread="u")
    near.invalidate("tenant", "t")
    assert all(near.get("tenant", "t", "", f"c{i}") is None for i in range(5))
    assert near.get("tenant", "t", "", None) is None
    assert near.get("tenant", "u", "", None) == "keep"
    assert near.size == 10


def test_bounded_by_bytes_least_recently_used_first() -> None:
    near = NearCache(1000)
    for i in range(10):
        _put(near, near.epoch(), f"c{i}", i, size=100, thread=f"t{i}")
    near.get("tenant", "t0", "", "c0")  # touch the oldest
    _put(near, near.epoch(), "c10", 10, size=100, thread="t10")
    assert near.size <= 1000
    assert near.get("tenant", "t0", "", "c0") == "c0"
    assert near.get("tenant", "t1", "", "c1") is None  # evicted, and its head pointer with it
    assert near.get("tenant", "t1", "", None) is None
    _put(near, near.epoch(), "huge", 11, size=900)  # larger than an eighth of the cache: not kept
    assert near.get("tenant", "t", "", "huge") is None


def test_a_newer_head_too_big_to_keep_still_hides_the_older_one() -> None:
    near = NearCache(1000)
    _put(near, near.epoch(), "small", 1, size=10)
    _put(near, near.epoch(), "big", 2, size=900)  # the new head, not kept
    assert near.get("tenant", "t", "", None) is None  # not "small": it is no longer the head
    assert near.get("tenant", "t", "", "small") == "small"
    near.invalidate("tenant", "t")  # e.g. "big" was deleted: "small" is the head again, and may be kept as such
    _put(near, near.epoch(), "small", 1, size=10)
    assert near.get("tenant", "t", "", None) == "small"


def test_a_read_that_began_before_a_save_cannot_make_the_older_head_current() -> None:
    near = NearCache(1000)
    started = near.epoch()  # a head load reads X from Redis...
    near.moved("tenant", "t")  # ...a save of Y lands
    near.put(near.epoch(), "tenant", "t", "", "Y", 6, "Y", 100, True, saved=True)
    for i in range(20):  # and Y is evicted under pressure
        _put(near, near.epoch(), f"o{i}", 1, size=100, thread=f"other{i}")
    assert near.get("tenant", "t", "", "Y") is None
    _put(near, started, "X", 5)  # the load finishes
    assert near.get("tenant", "t", "", None) is None  # not X: Y is the head
    assert near.get("tenant", "t", "", "X") == "X"  # X itself is still X


def test_stamps_and_age_decide_what_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Redis, an entry is served only under the stamp Redis vouches for now, and never past its age."""
    near = NearCache(1 << 20, max_age_seconds=60)
    near.put(near.epoch(), "tenant", "t", "", "a", 1, "a", 10, True, stamp=3)
    assert near.get("tenant", "t", "", "a", stamp=3) == "a"
    assert near.get("tenant", "t", "", "a", stamp=4) is None  # the generation moved on: dropped...
    assert near.get("tenant", "t", "", "a", stamp=3) is None  # ...for good
    near.put_page(near.epoch(), "tenant", "t", ("page",), "p", 10, stamp=(3, 7))
    assert near.get_page("tenant", "t", ("page",), (3, 8)) is None  # a save since: the page is out of date
    near.put(near.epoch(), "tenant", "t", "", "b", 2, "b", 10, True, stamp=3)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    assert near.get("tenant", "t", "", "b", stamp=3) is None  # older than the hot cache's TTL


def test_clear_refuses_reads_that_began_before_it() -> None:
    """A new Redis token empties the near cache; a read that began under the old one must not come back."""
    near = NearCache(1 << 20)
    _put(near, near.epoch(), "a", 1)
    started = near.epoch()
    near.clear()
    assert near.get("tenant", "t", "", None) is None
    _put(near, started, "b", 2)
    assert near.get("tenant", "t", "", None) is None
    _put(near, near.epoch(), "c", 3)
    assert near.get("tenant", "t", "", None) == "c"


def test_tracking_many_invalidations_stays_bounded_and_safe() -> None:
    near = NearCache(1 << 20)
    started = near.epoch()
    for i in range(60_000):
        near.invalidate("tenant", f"t{i}")
    assert len(near._invalidated) <= 50_000
    _put(near, started, "stale", 1, thread="t0")  # its invalidation record was dropped: refused by the floor
    assert near.get("tenant", "t0", "", None) is None


def test_a_refused_save_invalidates_the_thread() -> None:
    """A read that raced the save may have put an older head; the save cannot leave it there."""
    near = NearCache(1 << 20)
    save_started = near.epoch()
    near.invalidate("tenant", "t")  # a delete elsewhere in the thread
    _put(near, near.epoch(), "older", 5)  # a head read after the delete, before the save committed
    near.put(save_started, "tenant", "t", "", "saved", 6, "saved", 10, True, saved=True)
    assert near.get("tenant", "t", "", None) is None


def test_pages_go_with_any_save_and_are_refused_when_read_before_it() -> None:
    near = NearCache(1 << 20)
    _put(near, near.epoch(), "a", 1)
    near.put_page(near.epoch(), "tenant", "t", ("page", 1), "page-1", 10)
    assert near.get_page("tenant", "t", ("page", 1)) == "page-1"
    started = near.epoch()  # a List starts...
    near.moved("tenant", "t")  # ...a save lands
    assert near.get_page("tenant", "t", ("page", 1)) is None
    assert near.get("tenant", "t", "", None) == "a"  # checkpoints stay: a save changes no stored checkpoint
    near.put_page(started, "tenant", "t", ("page", 1), "stale", 10)
    assert near.get_page("tenant", "t", ("page", 1)) is None
    near.put_page(near.epoch(), "tenant", "t", ("page", 1), "fresh", 10)
    near.invalidate("tenant", "t")
    assert near.get_page("tenant", "t", ("page", 1)) is None


def test_a_lease_is_trusted_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    near, now = NearCache(10_000), [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    near.grant(near.epoch(), "tenant", "t", "", "answer", until=100.5)
    assert near.leased("tenant", "t", "") == "answer"
    assert near.leased("tenant", "t", "other-namespace") is None
    now[0] = 100.5
    assert near.leased("tenant", "t", "") is None


def test_a_lease_asked_for_before_a_change_reached_redis_is_refused() -> None:
    """The answer may predate the change: trusting it after the change is acknowledged would be a stale read."""
    near = NearCache(10_000)
    asked = near.epoch()
    near.release("tenant", "t")  # this process's change is now in Redis
    near.grant(asked, "tenant", "t", "", "older answer", until=time.monotonic() + 60)
    assert near.leased("tenant", "t", "") is None
    near.grant(near.epoch(), "tenant", "t", "", "newer answer", until=time.monotonic() + 60)
    assert near.leased("tenant", "t", "") == "newer answer"


@pytest.mark.parametrize("drop", ["release", "invalidate", "moved", "clear"])
def test_changes_drop_the_threads_leases(drop: str) -> None:
    near = NearCache(10_000)
    for ns in ("", "sub"):
        near.grant(near.epoch(), "tenant", "t", ns, "answer", until=time.monotonic() + 60)
    near.grant(near.epoch(), "tenant", "other", "", "answer", until=time.monotonic() + 60)
    if drop == "clear":
        near.clear()
    else:
        getattr(near, drop)("tenant", "t")
    assert near.leased("tenant", "t", "") is None and near.leased("tenant", "t", "sub") is None
    assert (near.leased("tenant", "other", "") is None) == (drop == "clear")


def test_ended_leases_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    near, now = NearCache(10_000), [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    for i in range(1_000):
        now[0] = float(i)
        near.grant(near.epoch(), "tenant", f"t{i}", "", "answer", until=now[0] + 1.5)
    assert len(near._leases) <= 2 and len(near._leased) <= 2


def test_only_leases_served_from_are_due_for_renewal() -> None:
    """A thread read once asked for its lease and was not served from it: renewing it would be wasted."""
    near, now = NearCache(10_000), time.monotonic()
    for thread, ends in (("read-ending", 1.0), ("read-early", 60.0), ("unread", 1.0), ("read-dropped", 1.0)):
        near.grant(near.epoch(), "tenant", thread, "", "answer", until=now + ends)
        if thread != "unread":
            assert near.leased("tenant", thread, "") == "answer"
    near.release("tenant", "read-dropped")
    assert ("tenant", "read-dropped", "") not in near._used  # dropped leases are not kept as used
    assert near.due(before=now + 2) == [("tenant", "read-ending", "")]
    assert near.due(before=now + 120) == [("tenant", "read-early", "")]  # still used: served from, not yet due
    assert near.due(before=now + 120) == []  # renewed ones are due again only when served from again
    assert near.leases_alive


async def test_a_thread_read_all_the_time_keeps_its_lease_without_asking_redis(  # type: ignore[no-untyped-def]
    redis_proc, tmp_path, thread_id: str
) -> None:
    """Reads ask Redis once; the lease is then renewed off the request path while the thread is read, and a
    change through another process still waits for the renewed lease and is then seen. Unread, it lapses."""
    import asyncio

    from cairn_server.storage.redis_cache import RedisCache

    lease_ms = 200
    store = await _store_over_redis(redis_proc.url, tmp_path, lease_ms)
    cache = store.cache
    other = RedisCache.from_url(redis_proc.url, lease_ms=lease_ms)  # another server process
    asked_by_reads, renewals = [], []
    current_many = cache.current_many

    async def counting(threads):  # type: ignore[no-untyped-def]
        (renewals if asyncio.current_task() is store._renewer else asked_by_reads).append(threads)
        return await current_many(threads)

    try:
        await store._currents("tenant", [(thread_id, "")])  # learns Redis's token: that first answer is not leased
        cache.current_many = counting  # type: ignore[method-assign]
        started = time.monotonic()
        while time.monotonic() - started < 4 * lease_ms / 1000:
            (current,) = await store._currents("tenant", [(thread_id, "")])
            assert current is not None and current.generation == 0
            await asyncio.sleep(0.01)
        assert len(asked_by_reads) == 1 and len(renewals) >= 3
        assert store.stats["lease_renewals"] == len(renewals)

        wait_ms = await other.bump("tenant", thread_id)  # the change revokes the renewed lease...
        assert 0 < wait_ms <= lease_ms
        await asyncio.sleep(wait_ms / 1000)  # ...and is acknowledged once it has ended
        (current,) = await store._currents("tenant", [(thread_id, "")])
        assert current is not None and current.generation == 1

        await asyncio.sleep(3 * lease_ms / 1000)  # not read: no more renewals, and the renewer stops
        assert store._renewer is not None and store._renewer.done()
        assert store.near is not None and store.near.leased("tenant", thread_id, "") is None
    finally:
        await store.aclose()
        await other.aclose()


async def test_a_head_read_that_misses_the_near_cache_reads_redis_by_the_head_it_was_told(  # type: ignore[no-untyped-def]
    redis_proc, tmp_path, thread_id: str
) -> None:
    """The hot cache's answer before a near lookup names the head: on a near miss the Redis read goes by that id
    (plain GETs) rather than following the head pointer in a script, and still serves the head."""
    import zlib

    from cairn_server.storage.base import SaveItem, StoredCheckpoint

    store = await _store_over_redis(redis_proc.url, tmp_path, 1000)
    cache = store.cache
    asked: list[str | None] = []
    get = cache.get

    async def recording(tenant, thread, namespace, checkpoint_id):  # type: ignore[no-untyped-def]
        asked.append(checkpoint_id)
        return await get(tenant, thread, namespace, checkpoint_id)

    try:
        for seq, cp_id in enumerate(("a", "b"), 1):
            state = b'{"step": %d}' % seq
            cp = StoredCheckpoint("t", thread_id, "", cp_id, "", "json", "", [], "{}", 0, len(state),
                                  zlib.crc32(state), cp_id.encode(), state, seq)
            await store.save(SaveItem(cp, raw_state=state))
        assert store.near is not None
        store.near.clear()
        cache.get = recording  # type: ignore[method-assign]
        hits = store.stats["cache_hits"]
        loaded = await store.load("t", thread_id, "", None)
        assert (loaded.checkpoint.checkpoint_id, loaded.state) == ("b", b'{"step": 2}')
        assert asked == ["b"] and store.stats["cache_hits"] == hits + 1
    finally:
        await store.aclose()


@pytest.fixture(params=[0, 1000], ids=["ask-redis-every-hit", "lease-1s"])
def two_near_servers(request, server_factory, postgres_proc):  # type: ignore[no-untyped-def]
    """Two server processes on one Postgres database and one Redis, both with near caches; with leases, every
    cross-process change below must wait for the other's lease before it is acknowledged."""
    from tests.harness import CairnServer, RedisServer

    metrics = f"127.0.0.1:{free_port()}"
    lease = str(request.param)
    with RedisServer() as rds:
        a = server_factory("postgres", redis_url=rds.url, near_cache_mb=16, near_lease_ms=lease)
        b = CairnServer("--log-level", "WARNING", "--postgres-dsn", a.dsn, "--redis-url", rds.url,
                        "--near-cache-mb", "16", "--near-lease-ms", lease, "--metrics-listen", metrics)
        with b:
            yield a.target, b.target, rds, f"http://{metrics}/metrics", a.server


def _near_hits(url: str) -> float:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return float(text.split('cairn_cache_lookups_total{result="near_hits"} ')[1].split()[0])


def test_other_processes_see_new_heads_and_deletes(two_near_servers, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    target_a, target_b, _, metrics, _ = two_near_servers
    with CheckpointClient(target_a) as a, CheckpointClient(target_b) as b:
        first = a.save(thread_id, {"step": 1})
        assert b.load(thread_id).checkpoint_id == first.checkpoint_id  # now in B's near cache
        hits = _near_hits(metrics)
        assert b.load(thread_id).checkpoint_id == first.checkpoint_id
        assert _near_hits(metrics) == hits + 1  # served by B's near cache, which is what is under test
        second = a.save(thread_id, {"step": 2}, parent_checkpoint_id=first.checkpoint_id)
        assert b.load(thread_id).checkpoint_id == second.checkpoint_id  # at once: B asks Redis before a near hit
        assert b.load(thread_id).json() == {"step": 2}
        assert b.load(thread_id, checkpoint_id=second.checkpoint_id).json() == {"step": 2}
        hits = _near_hits(metrics)
        assert b.load(thread_id, checkpoint_id=second.checkpoint_id).json() == {"step": 2}
        assert _near_hits(metrics) == hits + 1
        a.delete(thread_id, second.checkpoint_id)
        with pytest.raises(NotFound):
            b.load(thread_id, checkpoint_id=second.checkpoint_id)
        assert b.load(thread_id).checkpoint_id == first.checkpoint_id


def test_other_processes_list_pages_follow_saves(two_near_servers, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    target_a, target_b, _, metrics, _ = two_near_servers
    with CheckpointClient(target_a) as a, CheckpointClient(target_b) as b:
        first = a.save(thread_id, {"step": 1})
        assert [c.checkpoint_id for c in b.list(thread_id, page_size=10).checkpoints] == [first.checkpoint_id]
        hits = _near_hits(metrics)
        assert [c.checkpoint_id for c in b.list(thread_id, page_size=10).checkpoints] == [first.checkpoint_id]
        assert _near_hits(metrics) == hits + 1
        second = a.save(thread_id, {"step": 2}, parent_checkpoint_id=first.checkpoint_id)
        assert [c.checkpoint_id for c in b.list(thread_id, page_size=10).checkpoints] == [second.checkpoint_id, first.checkpoint_id]


def test_near_cache_stops_serving_while_redis_is_away(two_near_servers, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Redis cannot vouch for B's entries while it is down, nor after it restarts empty."""
    target_a, target_b, rds, _, _ = two_near_servers
    with CheckpointClient(target_a, timeout_seconds=10) as a, CheckpointClient(target_b, timeout_seconds=10) as b:
        first = a.save(thread_id, {"step": 1})
        assert b.load(thread_id).checkpoint_id == first.checkpoint_id
        rds.kill()
        second = a.save(thread_id, {"step": 2}, parent_checkpoint_id=first.checkpoint_id)  # Redis is not told
        assert b.load(thread_id).checkpoint_id == second.checkpoint_id
        rds.start()  # empty: no persistence
        third = a.save(thread_id, {"step": 3}, parent_checkpoint_id=second.checkpoint_id)
        assert b.load(thread_id).checkpoint_id == third.checkpoint_id


def test_a_delete_while_redis_was_away_is_not_served_after_it_restarts(two_near_servers, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """A deletes while Redis is down and dies before its background bump reaches Redis. Redis restarts empty,
    every generation back at 0: the stamp of B's entry. Redis's new token must empty B's near cache."""
    target_a, target_b, rds, metrics, server_a = two_near_servers
    with CheckpointClient(target_a, timeout_seconds=10) as a, CheckpointClient(target_b, timeout_seconds=10) as b:
        first = a.save(thread_id, {"step": 1})
        second = a.save(thread_id, {"step": 2}, parent_checkpoint_id=first.checkpoint_id)
        assert b.load(thread_id, checkpoint_id=first.checkpoint_id).json() == {"step": 1}
        hits = _near_hits(metrics)
        assert b.load(thread_id, checkpoint_id=first.checkpoint_id).json() == {"step": 1}
        assert _near_hits(metrics) == hits + 1  # B keeps `first`, stamped with generation 0
        rds.kill()
        a.delete(thread_id, first.checkpoint_id)  # committed; the bump waits for Redis...
        server_a.kill()  # ...and never happens
        rds.start()
        for _ in range(3):  # B's pooled connections to the old Redis fail once each, then reconnect
            assert b.load(thread_id).checkpoint_id == second.checkpoint_id
        with pytest.raises(NotFound):
            b.load(thread_id, checkpoint_id=first.checkpoint_id)
        assert b.load(thread_id).checkpoint_id == second.checkpoint_id


def test_a_lease_from_before_redis_restarted_empty_is_waited_out(two_near_servers, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """B holds a lease Redis no longer knows of after an empty restart: nothing is left to revoke. A's next change
    must still wait it out (a lease's length after Redis's new token was born) before it is acknowledged."""
    target_a, target_b, rds, metrics, _ = two_near_servers
    with CheckpointClient(target_a, timeout_seconds=10) as a, CheckpointClient(target_b, timeout_seconds=10) as b:
        first = a.save(thread_id, {"step": 1})
        assert b.load(thread_id).checkpoint_id == first.checkpoint_id
        hits = _near_hits(metrics)
        assert b.load(thread_id).checkpoint_id == first.checkpoint_id  # near hit; with leases, B now holds one
        assert _near_hits(metrics) == hits + 1
        other = a.save(thread_id + "-other", {"step": 1})
        rds.kill()
        rds.start()  # empty
        for _ in range(3):  # A's connection to the old Redis fails once, then A reconnects: its save below is
            a.load(thread_id + "-other", checkpoint_id=other.checkpoint_id)  # told to the new Redis
        second = a.save(thread_id, {"step": 2}, parent_checkpoint_id=first.checkpoint_id)
        assert b.load(thread_id).checkpoint_id == second.checkpoint_id


def test_bookkeeping_does_not_outgrow_the_entries() -> None:
    near = NearCache(10_000)
    for i in range(5_000):  # many threads, each evicted in turn
        _put(near, near.epoch(), f"c{i}", 1, size=100, thread=f"t{i}")
    assert len(near._entries) <= 100
    assert len(near._heads) <= 100 and len(near._threads) <= 100
