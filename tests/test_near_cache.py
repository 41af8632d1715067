"""The near cache: its own rules (unit), and coherence between server processes sharing Redis (real servers)."""

from __future__ import annotations

import urllib.request

import pytest
from cairn_client import CheckpointClient, NotFound
from cairn_server.storage.near_cache import NearCache

from tests.harness import free_port


def _put(near: NearCache, cp_id: str, stamp: int, size: int = 10, thread: str = "t", value: object = None) -> None:
    near.put("tenant", thread, "", cp_id, value or cp_id, size, stamp)


async def _store_over_redis(redis_url: str, tmp_path):  # type: ignore[no-untyped-def]
    """One server process's tiered store, in this process: SQLite cold store, Redis hot cache, a near cache; saves
    fill Redis too (--cache-fill-on-save), so reads that miss the near cache find them there."""
    from cairn_server.codec import Codec
    from cairn_server.storage.redis_cache import RedisCache
    from cairn_server.storage.sqlite import SqliteColdStore
    from cairn_server.storage.tiered import TieredStore

    cache = RedisCache.from_url(redis_url)
    return TieredStore(await SqliteColdStore.open(str(tmp_path / "cold.db")), cache, Codec(), near=NearCache(1 << 20),
                       fill_on_save=True)


def test_a_checkpoint_is_served_only_under_a_stamp_the_cold_store_still_vouches_for() -> None:
    near = NearCache(1 << 20)
    _put(near, "a", stamp=5)
    assert near.get("tenant", "t", "", "a", clobbered=0) == "a"
    assert near.get("tenant", "t", "", "a", clobbered=5) == "a"  # changed last at 5: the copy of 5 is current
    assert near.get("tenant", "t", "", "a", clobbered=6) is None  # something changed after it was copied
    assert near.get("tenant", "t", "", "a", clobbered=0) is None  # and the refused copy is gone


def test_an_older_copy_never_replaces_a_newer_one() -> None:
    near = NearCache(1 << 20)
    _put(near, "a", stamp=7, value="new")
    _put(near, "a", stamp=3, value="old")  # a slow reader's fill, from before a change at 7
    assert near.get("tenant", "t", "", "a", clobbered=7) == "new"


def test_a_page_is_served_only_at_the_version_it_was_rendered_at() -> None:
    near = NearCache(1 << 20)
    near.put_page("tenant", "t", ("q",), "page", 10, stamp=4)
    assert near.get_page("tenant", "t", ("q",), version=4) == "page"
    assert near.get_page("tenant", "t", ("q",), version=5) is None  # a save landed since
    assert near.get_page("tenant", "t", ("q",), version=4) is None


def test_forget_drops_every_entry_and_page_of_the_thread() -> None:
    near = NearCache(1 << 20)
    _put(near, "a", 1)
    _put(near, "b", 1)
    _put(near, "c", 1, thread="other")
    near.put_page("tenant", "t", ("q",), "page", 10, stamp=1)
    near.forget("tenant", "t")
    assert near.get("tenant", "t", "", "a", 0) is None and near.get("tenant", "t", "", "b", 0) is None
    assert near.get_page("tenant", "t", ("q",), 1) is None
    assert near.get("tenant", "other", "", "c", 0) == "c"


def test_bounded_by_bytes_least_recently_used_first() -> None:
    near = NearCache(100)
    for cp_id in "abc":
        _put(near, cp_id, 1, size=12)
    assert near.get("tenant", "t", "", "a", 0) == "a"  # a is now the most recently used
    for cp_id in "defghij":
        _put(near, cp_id, 1, size=12)
    assert near.size <= 100
    assert near.get("tenant", "t", "", "b", 0) is None  # least recently used went first
    _put(near, "huge", 1, size=50)  # more than an eighth of the budget: not kept at all
    assert near.get("tenant", "t", "", "huge", 0) is None


async def test_a_head_read_that_misses_the_near_cache_reads_redis_by_the_head_the_cold_store_named(  # type: ignore[no-untyped-def]
    redis_proc, tmp_path, thread_id: str
) -> None:
    """The cold store names the head before any cache is read: on a near miss the Redis read goes by that id,
    and an entry Redis still holds under an older stamp is refused in favour of the cold row."""
    import zlib

    from cairn_server.storage.records import SaveItem, StoredCheckpoint

    store = await _store_over_redis(redis_proc.url, tmp_path)
    cache = store.cache
    asked: list[list[tuple[str, str, str, str]]] = []
    get_many = cache.get_many

    async def recording(keys):  # type: ignore[no-untyped-def]
        asked.append(keys)
        return await get_many(keys)

    try:
        for seq, cp_id in enumerate(("a", "b"), 1):
            state = b'{"step": %d}' % seq
            cp = StoredCheckpoint("t", thread_id, "", cp_id, "", "json", "", [], "{}", 0, len(state),
                                  zlib.crc32(state), cp_id.encode(), state, seq)
            await store.save(SaveItem(cp, raw_state=state))
        assert store.near is not None
        store.near.clear()
        cache.get_many = recording  # type: ignore[method-assign]
        hits = store.stats["cache_hits"]
        loaded = await store.load("t", thread_id, "", None)
        assert (loaded.checkpoint.checkpoint_id, loaded.state) == ("b", b'{"step": 2}')
        assert asked == [[("t", thread_id, "", "b")]] and store.stats["cache_hits"] == hits + 1

        await store.delete("t", thread_id, "", "b")  # clobbers the thread: Redis's copy of `a` is now too old
        store.near.clear()
        refused = store.stats["cache_refused"]
        loaded = await store.load("t", thread_id, "", None)
        assert loaded.checkpoint.checkpoint_id == "a" and store.stats["cache_refused"] == refused + 1
    finally:
        await store.aclose()


@pytest.fixture
def two_near_servers(server_factory, postgres_proc):  # type: ignore[no-untyped-def]
    """Two server processes on one Postgres database and one Redis, both with near caches (default flags)."""
    from tests.harness import CairnProcess, RedisServer

    metrics = f"127.0.0.1:{free_port()}"
    with RedisServer() as rds:
        a = server_factory("postgres", redis_url=rds.url, near_cache_mb=16)
        b = CairnProcess("--log-level", "WARNING", "--postgres-dsn", a.dsn, "--redis-url", rds.url,
                        "--near-cache-mb", "16", "--metrics-listen", metrics)
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
    """B's copies stay as fresh as the cold store while Redis is down and after it restarts empty."""
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
    """A deletes while Redis is down and dies; Redis restarts empty. B's near copy of the deleted checkpoint must
    not be served: the delete's version is in the cold store, which B asks before every read."""
    target_a, target_b, rds, metrics, server_a = two_near_servers
    with CheckpointClient(target_a, timeout_seconds=10) as a, CheckpointClient(target_b, timeout_seconds=10) as b:
        first = a.save(thread_id, {"step": 1})
        second = a.save(thread_id, {"step": 2}, parent_checkpoint_id=first.checkpoint_id)
        assert b.load(thread_id, checkpoint_id=first.checkpoint_id).json() == {"step": 1}
        hits = _near_hits(metrics)
        assert b.load(thread_id, checkpoint_id=first.checkpoint_id).json() == {"step": 1}
        assert _near_hits(metrics) == hits + 1  # B keeps `first`
        rds.kill()
        a.delete(thread_id, first.checkpoint_id)
        server_a.kill()
        rds.start()
        for _ in range(3):  # B's pooled connections to the old Redis fail once each, then reconnect
            assert b.load(thread_id).checkpoint_id == second.checkpoint_id
        with pytest.raises(NotFound):
            b.load(thread_id, checkpoint_id=first.checkpoint_id)
        assert b.load(thread_id).checkpoint_id == second.checkpoint_id


def test_bookkeeping_does_not_outgrow_the_entries() -> None:
    near = NearCache(10_000)
    for i in range(5_000):  # many threads, each evicted in turn
        _put(near, f"c{i}", 1, size=100, thread=f"t{i}")
    assert len(near._entries) <= 100 and len(near._threads) <= 100
