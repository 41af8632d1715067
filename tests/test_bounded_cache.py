"""Issue 32: the hot cache holds what is likely to be read (heads), not every save for an hour.

Before, every save filled Redis with its checkpoint for the full cache TTL, so Redis held one entry per save of
the last hour (~85 GB/hour at 1,500 saves/s). Now only reads fill it by default (a head read for the TTL, a read
by id for the short recent TTL), and a save cuts the head it replaced to the recent TTL; with fill_on_save
(--cache-fill-on-save) a save also fills its new head for the TTL. Reads stay correct whatever the
cache keeps (freshness.py): the long proof under eviction is tests/test_coherence_chaos.py's eviction run.
"""

from __future__ import annotations

import zlib

import pytest

from cairn_server.codec import Codec
from cairn_server.storage.records import SaveItem, StoredCheckpoint
from cairn_server.storage.memory_cache import MemoryCache
from cairn_server.storage.redis_cache import RedisCache, _key
from cairn_server.storage.sqlite import SqliteColdStore
from cairn_server.storage.tiered import TieredStore

HOUR_MS = 3600 * 1000


def _checkpoint(thread_id: str, checkpoint_id: str, parent: str, state: bytes) -> StoredCheckpoint:
    return StoredCheckpoint("t", thread_id, "", checkpoint_id, parent, "json", "", [], "{}", 0, len(state),
                            zlib.crc32(state), checkpoint_id.encode(), state, 0)


async def _save_chain(store: TieredStore, thread_id: str, n: int) -> list[str]:
    ids, parent = [], ""
    for i in range(n):
        state = b'{"i": %d}' % i
        checkpoint_id = f"c{i:03d}"
        await store.save(SaveItem(_checkpoint(thread_id, checkpoint_id, parent, state), raw_state=state))
        ids.append(checkpoint_id)
        parent = checkpoint_id
    return ids


async def _pttl(cache: RedisCache, thread_id: str, checkpoint_id: str) -> int:
    """Redis PTTL of the entry: -2 when there is none."""
    return int(await cache.redis.call("PTTL", _key(("t", thread_id, "", checkpoint_id))))


async def test_saves_fill_nothing_and_cut_the_head_a_read_filled(  # type: ignore[no-untyped-def]
    redis_proc, tmp_path, thread_id: str
) -> None:
    """The default: saves put no state in Redis; a head read fills it for the TTL; the save that replaces that
    head cuts its entry to the recent TTL."""
    cache = RedisCache.from_url(redis_proc.url, ttl_seconds=3600)
    store = TieredStore(await SqliteColdStore.open(str(tmp_path / "cold.db")), cache, Codec())  # recent TTL: 10 s
    try:
        ids = await _save_chain(store, thread_id, 3)
        assert [await _pttl(cache, thread_id, i) for i in ids] == [-2, -2, -2]
        store.near = None  # (none here; the read must reach the hot cache's tier)
        assert (await store.load("t", thread_id, "", None)).checkpoint.checkpoint_id == ids[-1]
        assert await _pttl(cache, thread_id, ids[-1]) > HOUR_MS - 60_000
        state = b'{"i": 3}'
        await store.save(SaveItem(_checkpoint(thread_id, "c003", ids[-1], state), raw_state=state))
        assert 0 < await _pttl(cache, thread_id, ids[-1]) <= 10_000
        assert await _pttl(cache, thread_id, "c003") == -2
        assert store.stats["cache_errors"] == 0
    finally:
        await store.aclose()


async def test_saves_keep_the_head_for_the_ttl_and_replaced_heads_briefly(  # type: ignore[no-untyped-def]
    redis_proc, tmp_path, thread_id: str
) -> None:
    """--cache-fill-on-save."""
    cache = RedisCache.from_url(redis_proc.url, ttl_seconds=3600)
    store = TieredStore(await SqliteColdStore.open(str(tmp_path / "cold.db")), cache, Codec(),  # recent TTL: 10 s
                        fill_on_save=True)
    try:
        ids = await _save_chain(store, thread_id, 12)
        assert await _pttl(cache, thread_id, ids[-1]) > HOUR_MS - 60_000  # the head: the full TTL
        for old in ids[:-1]:  # every replaced head: at most the recent TTL left
            assert 0 < await _pttl(cache, thread_id, old) <= 10_000
        # a read by id of an old checkpoint fills it for the recent TTL only; a head read for the full TTL
        await cache.expire_many([("t", thread_id, "", ids[0]), ("t", thread_id, "", ids[-1])], 0)
        assert (await store.load("t", thread_id, "", ids[0])).state == b'{"i": 0}'
        assert 0 < await _pttl(cache, thread_id, ids[0]) <= 10_000
        assert (await store.load("t", thread_id, "", None)).checkpoint.checkpoint_id == ids[-1]
        assert await _pttl(cache, thread_id, ids[-1]) > HOUR_MS - 60_000
        assert store.stats["cache_errors"] == 0
    finally:
        await store.aclose()


@pytest.mark.parametrize("fill_on_save", [False, True])
@pytest.mark.parametrize("cache_kind", ["redis", "memory"])
async def test_a_thread_holds_one_entry_however_often_it_saves(  # type: ignore[no-untyped-def]
    cache_kind: str, fill_on_save: bool, redis_proc, tmp_path, thread_id: str
) -> None:
    """With a recent TTL of 0 a replaced head leaves the cache at once: at most one entry per thread, and reads of
    any checkpoint still answer (from the cold store)."""
    cache = RedisCache.from_url(redis_proc.url) if cache_kind == "redis" else MemoryCache()
    store = TieredStore(await SqliteColdStore.open(str(tmp_path / "cold.db")), cache, Codec(), recent_ttl_seconds=0,
                        fill_on_save=fill_on_save)
    try:
        ids = await _save_chain(store, thread_id, 30)
        held = await cache.get_many([("t", thread_id, "", checkpoint_id) for checkpoint_id in ids])
        assert ([checkpoint_id for checkpoint_id, blob in zip(ids, held, strict=True) if blob is not None]
                == ([ids[-1]] if fill_on_save else []))
        for i, checkpoint_id in enumerate(ids):
            assert (await store.load("t", thread_id, "", checkpoint_id)).state == b'{"i": %d}' % i
        assert await cache.get_many([("t", thread_id, "", ids[3])]) == [None]  # a read by id filled nothing
        assert store.stats["cache_errors"] == 0
    finally:
        await store.aclose()


def test_redis_holds_one_entry_per_thread_under_a_save_heavy_run() -> None:
    """The short version of `make redis-memory`: a real server under `cairn bench --mix save=1`, with replaced
    heads dropped at once, ends with at most one key per thread, whatever the number of saves."""
    from bench.redis_memory import measure

    result = measure(6, threads=20, concurrency=8, interval=2,
                     server_args=("--cache-recent-ttl-seconds", "0", "--cache-fill-on-save"),
                     log=lambda _: None)
    last = result.samples[-1]
    assert result.saves > 5 * result.threads, result.text()
    assert 0 < last.keys <= result.threads, result.text()
    assert last.dataset / result.threads < 64 << 10, result.text()  # one ~16 KB entry each, and Redis's overhead
