"""Races, retries and integrity: two writers never fork a thread, retries are idempotent, corrupt bytes never load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable

import asyncpg
import pytest
import redis

from cairn_client import (
    AlreadyExists,
    AsyncCheckpointClient,
    CheckpointClient,
    Conflict,
    DataLoss,
    DeadlineExceeded,
    NotFound,
)
from tests.harness import CairnProcess, PostgresServer

WRITERS = 16
ATTEMPTS_PER_WRITER = 150  # 2,400 compare-and-set attempts per backend


@pytest.mark.parametrize("kind", ["redis+postgres", "embedded"])
def test_racing_writes_of_one_task_idx_keep_one_value(server_factory, kind: str, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Writes are immutable: of 8 clients writing different values to the same (task_id, idx) at once, one wins
    and the others get ALREADY_EXISTS, whatever the interleaving; the stored value is the winner's."""
    backend = server_factory(kind)
    racers = 8
    with CheckpointClient(backend.target) as c:
        checkpoint_id = c.save(thread_id, {"step": 0}).checkpoint_id
    for round_ in range(20):
        task = f"task-{round_}"
        results: dict[int, str] = {}
        barrier = threading.Barrier(racers)

        def racer(n: int) -> None:
            with CheckpointClient(backend.target) as c:
                barrier.wait()
                try:
                    c.put_writes(thread_id, checkpoint_id, task, [("out", {"racer": n})])
                    results[n] = "won"
                except AlreadyExists:
                    results[n] = "lost"

        threads = [threading.Thread(target=racer, args=(n,)) for n in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [n for n, r in results.items() if r == "won"]
        assert len(winners) == 1 and len(results) == racers, results
        with CheckpointClient(backend.target) as c:
            stored = [w for w in c.load(thread_id).pending_writes if w.task_id == task]
        assert [json.loads(w.value) for w in stored] == [{"racer": winners[0]}]


@pytest.mark.parametrize("kind", ["redis+postgres", "embedded"])
def test_concurrent_writers_leave_one_linear_chain(server_factory, kind: str, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory(kind)
    outcomes: Counter[str] = Counter()
    bad_losers: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        with CheckpointClient(backend.target) as c:
            head = ""
            barrier.wait()
            for i in range(ATTEMPTS_PER_WRITER):
                try:
                    saved = c.save(
                        thread_id, {"writer": n, "attempt": i}, parent_checkpoint_id=head,
                        **({"expected_head_id": head} if head else {"expect_empty": True}),
                    )
                    head = saved.checkpoint_id
                    result = "won"
                except Conflict as err:
                    result = "lost"
                    if not err.current_head_id:
                        with lock:
                            bad_losers.append(err.message)
                    head = err.current_head_id
                with lock:
                    outcomes[result] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with CheckpointClient(backend.target) as c:
        chain = list(c.iter_checkpoints(thread_id, page_size=1000))
    assert outcomes["won"] + outcomes["lost"] == WRITERS * ATTEMPTS_PER_WRITER
    assert outcomes["lost"] > 0, "the race never happened"
    assert not bad_losers, "every loser must learn the current head"
    assert len(chain) == outcomes["won"]
    oldest_first = chain[::-1]
    assert oldest_first[0].parent_checkpoint_id == ""
    forks = sum(1 for prev, cur in zip(oldest_first, oldest_first[1:]) if cur.parent_checkpoint_id != prev.checkpoint_id)
    assert forks == 0
    print(f"\nCAS race [{kind}]: {sum(outcomes.values())} attempts, {outcomes['won']} won, "
          f"{outcomes['lost']} ABORTED with the head, chain length {len(chain)}, forks {forks}")


def test_retry_after_deadline_is_idempotent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with PostgresServer(synchronous_commit=True) as pg:
        with CairnProcess("--postgres-dsn", pg.create_database("retry"), "--cold-timeout-seconds", "30") as cairn:
            with CheckpointClient(cairn.target) as c:
                first = c.save("retry", {"n": 0})
                pg.pause()
                with pytest.raises(DeadlineExceeded):
                    c.save("retry", {"n": 1}, checkpoint_id="ck-1", parent_checkpoint_id=first.checkpoint_id,
                           timeout=0.5)
                with pytest.raises(DeadlineExceeded):
                    c.put_writes("retry", first.checkpoint_id, "task", [("ch", "v")], timeout=0.5)
                pg.resume()
                again = c.save("retry", {"n": 1}, checkpoint_id="ck-1", parent_checkpoint_id=first.checkpoint_id)
                retried = c.save("retry", {"n": 1}, checkpoint_id="ck-1", parent_checkpoint_id=first.checkpoint_id)
                assert retried.already_existed and retried.sequence == again.sequence
                assert [x.checkpoint_id for x in c.list("retry").checkpoints] == ["ck-1", first.checkpoint_id]
                with pytest.raises(AlreadyExists):
                    c.save("retry", {"n": 2}, checkpoint_id="ck-1")
                c.put_writes("retry", first.checkpoint_id, "task", [("ch", "v")])
                c.put_writes("retry", first.checkpoint_id, "task", [("ch", "v")])
                assert len(c.load("retry", checkpoint_id=first.checkpoint_id).pending_writes) == 1
                with pytest.raises(AlreadyExists):
                    c.put_writes("retry", first.checkpoint_id, "task", [("ch", "other")])


def _corrupt_pg(dsn: str, thread_id: str) -> None:
    asyncio.run(_fetchval(
        dsn, "UPDATE cairn_checkpoints SET state = overlay(state placing '\\xff'::bytea from 20 for 1) "
        "WHERE thread_id = $1", thread_id,
    ))


def test_corrupt_postgres_row_is_data_loss(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("postgres")
    with CheckpointClient(backend.target) as c:
        c.save(thread_id, {"payload": "x" * 5000})
        _corrupt_pg(backend.dsn, thread_id)
        backend.server.stop()
        backend.server.start()  # the in-process cache is gone: the next load reads Postgres
        with pytest.raises(DataLoss) as err:
            c.load(thread_id)
        assert err.value.reason == "CHECKSUM_MISMATCH"
        with pytest.raises(DataLoss):
            c.list(thread_id, include_state=True)
        assert len(c.list(thread_id).checkpoints) == 1  # metadata-only listing still works


def test_corrupt_sqlite_row_is_data_loss(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    backend = server_factory("embedded")
    with CheckpointClient(backend.target) as c:
        c.save(thread_id, b"\x00" * 1000 + b"tail", state_type="raw")
        backend.server.stop()
        db = sqlite3.connect(backend.sqlite_path)
        (state,) = db.execute("SELECT state FROM cairn_checkpoints WHERE thread_id=?", (thread_id,)).fetchone()
        broken = bytearray(state)
        broken[len(broken) // 2] ^= 0xFF
        db.execute("UPDATE cairn_checkpoints SET state=? WHERE thread_id=?", (bytes(broken), thread_id))
        db.commit()
        db.close()
        backend.server.start()
        with pytest.raises(DataLoss):
            c.load(thread_id)


@pytest.mark.parametrize("kind", ["embedded", "redis+postgres+near"])
def test_a_retry_of_a_save_an_earlier_build_hashed_is_still_idempotent(  # type: ignore[no-untyped-def]
    server_factory, kind: str, thread_id: str
) -> None:
    """Rows written before the switch to XXH3 carry a BLAKE2b content hash: a save retried across the upgrade
    (its first try committed, the answer lost) must still be the same save, and different content a conflict."""
    from cairn_server.storage.records import StoredCheckpoint
    from cairn_server.storage.hashing import older_content_hashes

    backend = server_factory(kind)
    state, meta = {"messages": ["hi"] * 300}, {"source": "loop", "run_id": "r1"}  # JSON text as the server writes it
    fields = dict(checkpoint_id="cp-1", parent_checkpoint_id="cp-0", metadata=meta, node_name="agent",
                  next_nodes=["tools"])
    with CheckpointClient(backend.target) as c:
        first = c.save(thread_id, state, **fields)
        raw = json.dumps(state, separators=(",", ":")).encode()
        assert c.load(thread_id).state == raw
        as_stored = StoredCheckpoint(
            "", thread_id, "", "cp-1", "cp-0", "json", "agent", ["tools"],
            json.dumps(meta, sort_keys=True, separators=(",", ":")), 0, len(raw), 0, b"", b"",
        )
        (legacy,) = older_content_hashes(as_stored, raw)
        if backend.dsn:
            asyncio.run(_fetchval(backend.dsn, "UPDATE cairn_checkpoints SET content_hash = $1 WHERE thread_id = $2",
                                  legacy, thread_id))
        else:
            import sqlite3

            with contextlib.closing(sqlite3.connect(backend.sqlite_path)) as db, db:
                db.execute("UPDATE cairn_checkpoints SET content_hash=? WHERE thread_id=?", (legacy, thread_id))
        again = c.save(thread_id, state, **fields)
        assert (again.checkpoint_id, again.sequence, again.created_at) == ("cp-1", first.sequence, first.created_at)
        with pytest.raises(AlreadyExists, match="different content"):
            c.save(thread_id, {"messages": ["changed"]}, **fields)
        with pytest.raises(AlreadyExists, match="different content"):
            c.save(thread_id, state, **{**fields, "node_name": "tools"})
        assert len(c.list(thread_id).checkpoints) == 1


def test_corrupt_redis_entry_falls_back_and_is_evicted(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("redis+postgres")
    r = redis.Redis.from_url(backend.redis_url)
    state = {"payload": "y" * 5000}
    with CheckpointClient(backend.target) as c:
        saved = c.save(thread_id, state)
        before = set(r.keys("cairn2:*:c:*"))
        c.load(thread_id)
        entries = [k for k in r.keys("cairn2:*:c:*") if saved.checkpoint_id.encode() in k]
        assert entries, f"the checkpoint should be cached (keys: {len(before)})"
        for key in entries:
            blob = bytearray(r.get(key))
            blob[len(blob) // 2] ^= 0xFF
            r.set(key, bytes(blob), keepttl=True)
        for _ in range(3):  # first read falls back and evicts, later ones refill from Postgres
            assert c.load(thread_id).json() == state
            assert c.load(thread_id, checkpoint_id=saved.checkpoint_id).json() == state


def test_stale_cache_after_redis_restart_with_persistence(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """A delete while Redis is down must not resurrect when Redis comes back with its old data (AOF)."""
    from tests.harness import RedisServer

    with RedisServer(persistent=True) as rds:
        backend = server_factory("postgres", redis_url=rds.url)
        with CheckpointClient(backend.target, timeout_seconds=5) as c:
            ids = [c.save(thread_id, {"i": i}).checkpoint_id for i in range(3)]
            for cid in ids:
                c.load(thread_id, checkpoint_id=cid)
            assert c.load(thread_id).checkpoint_id == ids[-1]  # head cached in Redis
            rds.kill()
            assert c.delete(thread_id, ids[-1]) is True  # Redis is down: the cold store decides
            assert c.clear(thread_id + "-never") == 0
            rds.start()  # AOF brings the old entries back
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                assert c.load(thread_id).checkpoint_id == ids[1]
                with pytest.raises(Exception) as err:
                    c.load(thread_id, checkpoint_id=ids[-1])
                assert type(err.value).__name__ == "NotFound"
                time.sleep(0.1)


def test_put_writes_batches_racing_deletes_of_many_rows_never_deadlock(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Clear, Prune and DeleteRuns land while PutWrites for the same thread's checkpoints are batched together.

    Postgres breaks a deadlock only after deadlock_timeout (1 s) and fails one side; clients retry the UNAVAILABLE,
    so callers would see a stall, not an error. Postgres counts them per database: there must be none."""
    backend = server_factory("postgres")

    async def race(c: AsyncCheckpointClient, rnd: int) -> None:
        threads = [f"deadlock-{rnd}-{i}" for i in range(4)]
        heads = {t: [(await c.save(t, {"k": k}, metadata={"run_id": f"run-{t}"})).checkpoint_id for k in range(8)]
                 for t in threads}

        async def writes(thread: str, checkpoint_id: str, task: str) -> None:
            with contextlib.suppress(NotFound):  # its checkpoint was deleted first
                await c.put_writes(thread, checkpoint_id, task, [("a", 1), ("b", 2)])

        async def delete(i: int, thread: str) -> None:
            await asyncio.sleep(0.002)  # while the writes are in flight
            if i % 3 == 0:
                await c.clear(thread)
            elif i % 3 == 1:
                await c.prune([thread], keep_latest=1)
            else:
                await c.delete_runs([f"run-{thread}"])

        # newest first, so a batch's key order differs from the order the writes arrive in
        await asyncio.gather(
            *(writes(t, cp, f"task-{j}") for t in threads for cp in reversed(heads[t]) for j in range(3)),
            *(delete(i, t) for i, t in enumerate(threads)),
        )

    async def run() -> None:
        async with AsyncCheckpointClient(backend.target) as c:
            for rnd in range(20):
                await race(c, rnd)

    asyncio.run(run())
    backend.server.stop()  # its connections close, reporting their statistics
    deadlocks = asyncio.run(
        _fetchval(backend.dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    )
    assert deadlocks == 0


async def _fetchval(dsn: str, sql: str, *args: object) -> object:
    """One statement on its own connection; its first value (None for an UPDATE)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def test_a_hung_redis_neither_holds_up_a_delete_nor_brings_the_checkpoint_back(postgres_proc, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """A delete owes the cache nothing (freshness.py): with Redis hung it is acknowledged within its deadline, and
    the copy Redis still holds is never served, while Redis hangs or after it answers again."""
    from tests.conftest import new_database
    from tests.harness import RedisServer

    with RedisServer() as rds, CairnProcess("--postgres-dsn", new_database(postgres_proc), "--redis-url", rds.url,
                                           "--cache-timeout-seconds", "1") as cairn:
        with CheckpointClient(cairn.target, timeout_seconds=5) as c:
            first = c.save(thread_id, {"n": 1}).checkpoint_id
            second = c.save(thread_id, {"n": 2}).checkpoint_id
            assert c.load(thread_id, checkpoint_id=second).json() == {"n": 2}  # cached
            rds.pause()
            assert c.delete(thread_id, second, timeout=0.5)
            with pytest.raises(NotFound):
                c.load(thread_id, checkpoint_id=second)
            rds.resume()
            for _ in range(20):
                with pytest.raises(NotFound):
                    c.load(thread_id, checkpoint_id=second)
                assert c.load(thread_id).checkpoint_id == first
                time.sleep(0.05)


@pytest.mark.parametrize("cache_kind", ["redis", "memory"])
async def test_hot_caches_keep_entries_by_key_and_answer_in_order(  # type: ignore[no-untyped-def]
    cache_kind: str, redis_proc, thread_id: str
) -> None:
    """get_many answers in the order asked, None for what is not kept; put_many replaces what a key held."""
    from cairn_server.storage.memory_cache import MemoryCache
    from cairn_server.storage.redis_cache import RedisCache

    cache = RedisCache.from_url(redis_proc.url) if cache_kind == "redis" else MemoryCache()
    x, y = ("t", thread_id, "", "x"), ("t", thread_id, "ns", "y")
    try:
        await cache.put_many([(x, b"x1"), (y, b"y1")])
        assert await cache.get_many([y, ("t", thread_id, "", "nope"), x, ("t2", thread_id, "", "x")]) == [
            b"y1", None, b"x1", None]
        await cache.put_many([(x, b"x2")])
        assert await cache.get_many([x]) == [b"x2"]
    finally:
        await cache.aclose()


@pytest.mark.parametrize("cache_kind", ["redis", "memory"])
async def test_a_copy_filled_under_an_older_stamp_is_never_served(  # type: ignore[no-untyped-def]
    cache_kind: str, redis_proc, tmp_path, thread_id: str
) -> None:
    """A slow reader fills the hot cache with what it read before a delete and a re-save of the same id changed
    the checkpoint (or a Redis rolled back to an older snapshot holds it): the stamp is older than the thread's
    last clobbering change, so the cold row answers."""
    import zlib

    from cairn_server.codec import Codec
    from cairn_server.storage.records import SaveItem, StoredCheckpoint
    from cairn_server.storage.entry import encode_entry
    from cairn_server.storage.memory_cache import MemoryCache
    from cairn_server.storage.redis_cache import RedisCache
    from cairn_server.storage.sqlite import SqliteColdStore
    from cairn_server.storage.tiered import TieredStore

    cache = RedisCache.from_url(redis_proc.url) if cache_kind == "redis" else MemoryCache()
    store = TieredStore(await SqliteColdStore.open(str(tmp_path / "cold.db")), cache, Codec())

    def cp(state: bytes) -> StoredCheckpoint:
        return StoredCheckpoint("t", thread_id, "", "x", "", "json", "", [], "{}", 0, len(state), zlib.crc32(state),
                                state, state, 0)

    try:
        old = await store.save(SaveItem(cp(b'{"v": 1}'), raw_state=b'{"v": 1}'))
        assert await store.delete("t", thread_id, "", "x")
        await store.save(SaveItem(cp(b'{"v": 2}'), raw_state=b'{"v": 2}'))
        await cache.put_many([(("t", thread_id, "", "x"), encode_entry(old.version, cp(b'{"v": 1}'), []))])
        for checkpoint_id in ("x", None):
            assert (await store.load("t", thread_id, "", checkpoint_id)).state == b'{"v": 2}'
        assert store.stats["cache_refused"] >= 1
    finally:
        await store.aclose()


def test_only_a_list_across_threads_reads_the_tenant_feed_index(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """On a fresh database (no statistics yet) the planner took a plain (tenant, row_id) index even for a save's
    primary-key lookup and read every row of the tenant. The feed index's expression keeps it to the one query
    it is for, which must use it: a page without a sort over all of the tenant's checkpoints."""
    backend = server_factory("postgres")
    with CheckpointClient(backend.target) as c:
        for t in range(3):
            cp = chain_of(c, f"{thread_id}-{t}", 20)
            c.put_writes(f"{thread_id}-{t}", cp, "task", [("ch", 1)])
            c.load(f"{thread_id}-{t}")
            c.list(f"{thread_id}-{t}", metadata_filter={"source": "loop"})
            c.iter_threads()
        backend.server.stop()
        assert asyncio.run(_index_scans_once_sessions_ended(backend.dsn, "cairn_checkpoints_tenant_feed")) == 0
        backend.server.start()
        assert len(c.list("", page_size=5).checkpoints) == 5
        assert len(c.list("", page_size=5, metadata_filter={"source": "loop"}).checkpoints) == 5
        backend.server.stop()
        assert asyncio.run(_index_scans_once_sessions_ended(backend.dsn, "cairn_checkpoints_tenant_feed")) >= 2
        backend.server.start()


async def _index_scans_once_sessions_ended(dsn: str, index: str, timeout_seconds: float = 30.0) -> int:
    """idx_scan of an index once every other client session of the database has ended.

    A session keeps its counts in local memory and flushes them to the shared statistics at most once a second
    while it runs, and for certain as it exits: the flush is a before_shmem_exit hook, which runs before the
    session leaves pg_stat_activity (an on_shmem_exit hook). So once the server's sessions are gone from
    pg_stat_activity, everything they did is counted; reading any earlier can miss the last queries."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout_seconds
        others = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        while (left := await conn.fetchval(others)) > 0:
            assert time.monotonic() < deadline, f"{left} sessions of the stopped server are still open"
            await asyncio.sleep(0.05)
        scans = await conn.fetchval("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = $1", index)
        return int(scans)
    finally:
        await conn.close()


def chain_of(c: CheckpointClient, thread_id: str, n: int) -> str:
    """Save n checkpoints to a thread; the last one's id."""
    parent = ""
    for i in range(n):
        parent = c.save(thread_id, {"i": i}, parent_checkpoint_id=parent, metadata={"source": "loop"}).checkpoint_id
    return parent


def test_a_fresh_database_gets_statistics_after_a_few_hundred_saves_and_writes(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Without statistics Postgres reads a whole thread for each save's primary-key lookup; autovacuum may not
    look for a minute, so the store analyzes a never-analyzed database itself after ANALYZE_AFTER_SAVES saves.
    Not cairn_writes while it is still empty: with those statistics every PutWrites scanned the whole table."""
    from cairn_client._shared import save_request
    from cairn_server.storage.postgres import ANALYZE_AFTER_SAVES, ANALYZE_AFTER_WRITES

    backend = server_factory("postgres")

    def analyzed(table: str) -> bool:
        sql = f"SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relid = '{table}'::regclass"
        return bool(asyncio.run(_fetchval(backend.dsn, sql)))

    def wait_until_analyzed(table: str) -> None:
        deadline = time.monotonic() + 20
        while not analyzed(table):
            assert time.monotonic() < deadline, f"the store did not analyze {table}"
            time.sleep(0.2)

    with CheckpointClient(backend.target) as c:
        saves = (save_request(thread_id, {"i": i}) for i in range(ANALYZE_AFTER_SAVES + 20))
        results = list(c.save_stream(saves))
        assert all(not isinstance(r, Exception) for r in results)
        wait_until_analyzed("cairn_checkpoints")
        assert analyzed("cairn_threads") and not analyzed("cairn_writes")

        head = results[-1].checkpoint_id
        for task in range(ANALYZE_AFTER_WRITES // 10 + 2):
            c.put_writes(thread_id, head, f"task-{task}", [("messages", "bytes", b"x" * 100)] * 10)
        wait_until_analyzed("cairn_writes")


def test_requests_look_rows_up_by_key_however_small_the_tables_were_when_analyzed(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """plpgsql keeps each connection's plan of every statement in cairn_save. Planned while the tables were
    small (a new database, statistics from its first minutes), its lookups by key were sequential scans, and
    stayed so as the tables grew: `make bench`'s fresh database read cairn_threads whole on every save (65 M rows
    in 70 s) until autovacuum's next analyze, and Postgres's CPU per save rose from ~220 to ~400 us. Saves,
    PutWrites and the versions read before every Load read no row by a sequential scan, whatever the statistics
    say. (A Load's own statements are plain prepared statements, not guarded: see the migration's comment.)"""
    from cairn_client._shared import save_request

    backend = server_factory("postgres")
    tables = ("cairn_threads", "cairn_versions", "cairn_checkpoints", "cairn_writes")

    def stats() -> dict[str, tuple[int, int, int]]:
        sql = ("SELECT json_object_agg(relname, json_build_array(seq_tup_read, n_tup_ins + n_tup_upd, idx_scan)) "
               "FROM pg_stat_user_tables WHERE relname = ANY($1::text[])")
        return {k: tuple(v) for k, v in json.loads(asyncio.run(_fetchval(backend.dsn, sql, list(tables)))).items()}

    def settle(until: Callable[[dict[str, tuple[int, int, int]]], bool]) -> dict[str, tuple[int, int, int]]:
        deadline = time.monotonic() + 30  # a backend reports its counters within ~1 s of going idle (10 s at most)
        while not until(now := stats()):
            assert time.monotonic() < deadline, "Postgres did not report the requests' statistics"
            time.sleep(0.5)
        return now

    with CheckpointClient(backend.target) as c:
        first = c.save(thread_id, {"first": True})  # every table holds a row, and is analyzed that small
        c.put_writes(thread_id, first.checkpoint_id, "task", [("messages", b"x")])
        asyncio.run(_fetchval(backend.dsn, f"ANALYZE {', '.join(tables)}"))
        before = settle(lambda s: s["cairn_writes"][1] >= 1)
        threads = [f"{thread_id}-{i}" for i in range(300)]
        heads = []
        for step in range(3):  # enough rows for many pages, and many more than plpgsql's 5 custom plans
            heads = list(c.save_stream(save_request(t, {"step": step, "pad": "x" * 200}) for t in threads))
            assert all(not isinstance(r, Exception) for r in heads)
        for t, head in zip(threads, heads, strict=True):
            c.put_writes(t, head.checkpoint_id, "task", [("messages", b"x" * 100)] * 3)
        written = settle(lambda s: s["cairn_threads"][1] >= before["cairn_threads"][1] + 900
                         and s["cairn_writes"][1] >= before["cairn_writes"][1] + 900)
        for t, head in zip(threads, heads, strict=True):
            assert c.load(t).checkpoint_id == head.checkpoint_id
        after = settle(lambda s: s["cairn_checkpoints"][2] >= written["cairn_checkpoints"][2] + len(threads))
    read = {t: written[t][0] - before[t][0] for t in tables}
    assert read == {t: 0 for t in tables}, f"rows read by sequential scans by saves and PutWrites: {read}"
    read = {t: after[t][0] - written[t][0] for t in tables if t != "cairn_writes"}
    assert read == {t: 0 for t in read}, f"rows read by sequential scans by head Loads: {read}"
