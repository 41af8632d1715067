"""Postgres scaled out as operators do it: behind pgbouncer in transaction mode, on tables hash-partitioned by
thread, and with retention on in more than one server. (The contract suite runs on the first two as well:
test_store_contract.py's "pgbouncer" and "postgres-partitioned" backends.)"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor


from cairn_client import CairnError, CheckpointClient
from tests.harness import CairnProcess, PgBouncer
from tests.harness.partitioned import PARTITIONED_TABLES
from cairn_tools.cluster import _run_sql
from tests.conftest import new_database


def _saves_and_loads(target: str, threads: int = 40, per_thread: int = 5) -> list[str]:
    """Each of `threads` threads saves a chain and loads its head, all at once; the errors met."""
    errors: list[str] = []

    def one(i: int) -> None:
        thread = f"bouncer-{uuid.uuid4().hex[:8]}-{i}"
        with CheckpointClient(target, timeout_seconds=10) as c:
            try:
                parent = ""
                for step in range(per_thread):
                    parent = c.save(thread, {"step": step}, parent_checkpoint_id=parent).checkpoint_id
                    assert c.load(thread).checkpoint_id == parent
                assert len(c.list(thread).checkpoints) == per_thread
            except CairnError as exc:
                errors.append(f"{exc.code.name}: {exc.message}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(threads)))
    return errors


def test_saves_through_pgbouncer_in_transaction_mode(server_factory) -> None:  # type: ignore[no-untyped-def]
    """With --postgres-statement-cache-size 0, 40 threads saving and loading at once through a transaction-mode
    pgbouncer all succeed (on main, 39 of 40 failed: prepared statement "__asyncpg_stmt_..." does not exist)."""
    backend = server_factory("pgbouncer", postgres_pool_size=8)
    assert _saves_and_loads(backend.target) == []


def test_default_statement_cache_behind_pgbouncer_says_what_to_do(server_factory, postgres_proc) -> None:  # type: ignore[no-untyped-def]
    """asyncpg's default statement cache behind transaction pooling fails; the error names the setting.

    Two server connections taken in turn (server_round_robin), so a client connection's transactions surely
    move between them (with pgbouncer's default last-used-first order, most came back to the connection they
    prepared on, and the test saw no error to check)."""
    with PgBouncer(postgres_proc, pool_size=2, round_robin=True) as bouncer:
        dsn = bouncer.database_dsn(new_database(postgres_proc))
        with CairnProcess("--postgres-dsn", dsn, "--postgres-pool-size", "8", "--log-level", "ERROR") as server:
            errors = _saves_and_loads(server.target, threads=20, per_thread=3)
    assert errors, "expected prepared statements to go missing behind a transaction-mode pgbouncer"
    assert all(e.startswith("UNAVAILABLE") and "--postgres-statement-cache-size 0" in e for e in errors), errors[:3]


def test_partitioned_schema_spreads_threads_over_partitions(server_factory) -> None:  # type: ignore[no-untyped-def]
    """The "postgres-partitioned" backend really is partitioned, and threads land in every partition."""
    backend = server_factory("postgres-partitioned")
    with CheckpointClient(backend.target) as c:
        for i in range(32):
            c.save(f"part-{i}", {"i": i})
            c.save(f"part-{i}", {"i": i, "again": True})
    kinds = _run_sql(backend.dsn, "SELECT relname || ':' || relkind::text FROM pg_class WHERE relname = ANY(ARRAY["
                     + ",".join(f"'{t}'" for t in PARTITIONED_TABLES) + "]) ORDER BY relname", None)
    assert kinds.split("\n") == sorted(f"{t}:p" for t in PARTITIONED_TABLES)
    spread = _run_sql(backend.dsn, "SELECT tableoid::regclass, count(*) FROM cairn_checkpoints GROUP BY 1", None)
    assert len(spread.split("\n")) == 4


def _metric(metrics_port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_servers_with_retention_delete_what_one_would_and_count_it_once(
    postgres_proc, short_tmp
) -> None:  # type: ignore[no-untyped-def]
    """Retention on in two servers on one database: one holds the lease and prunes; together they delete
    exactly the rows one server would, and their counters add up to the rows really deleted."""
    from tests.harness import free_port

    dsn = new_database(postgres_proc)
    keep, threads, per_thread = 3, 30, 10
    servers = []
    ports = [free_port(), free_port()]
    for port in ports:
        servers.append(CairnProcess(
            "--postgres-dsn", dsn, "--retention-max-checkpoints", str(keep), "--retention-interval-seconds", "0.3",
            "--metrics-listen", f"127.0.0.1:{port}", "--log-level", "INFO",
        ))
    try:
        for s in servers:
            s.start()
        with CheckpointClient(servers[0].target) as c:
            for t in range(threads):
                parent = ""
                for i in range(per_thread):
                    parent = c.save(f"ret-{t}", {"i": i}, parent_checkpoint_id=parent).checkpoint_id
        expected = threads * (per_thread - keep)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = int(_run_sql(dsn, "SELECT count(*) FROM cairn_checkpoints", None))
            reported = sum(_metric(p, "cairn_retention_deleted_total") for p in ports)
            if left == threads * keep and reported == expected:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # a few more passes of both runners: nothing more is deleted or counted
        assert int(_run_sql(dsn, "SELECT count(*) FROM cairn_checkpoints", None)) == threads * keep
        counts = [_metric(p, "cairn_retention_deleted_total") for p in ports]
        assert sorted(counts) == [0, expected], counts  # one runner, holding the lease throughout
        holder, cursor = _run_sql(dsn, "SELECT holder, version_cursor FROM cairn_retention WHERE job = 'retention'",
                                  None).split("|")
        assert holder, "one runner holds the lease"
        # Incremental: at rest the runner has looked at every change, so its next pass reads no thread.
        assert int(cursor) == int(_run_sql(dsn, "SELECT max(version) FROM cairn_versions", None))
        with CheckpointClient(servers[1].target) as c:
            for t in range(threads):
                assert len(c.list(f"ret-{t}").checkpoints) == keep
    finally:
        for s in servers:
            s.close()


def test_head_follows_the_thread_sequence_when_row_ids_do_not_rise(
    server_factory,
) -> None:  # type: ignore[no-untyped-def]
    """A distributed database hands out a global bigserial from per-node ranges, so a thread's newer checkpoint
    can get a lower row_id. Simulated by restarting the row_id sequence: the head, compare-and-set, the thread
    listing and retention all still follow the per-thread sequence."""
    backend = server_factory("postgres-partitioned", near_cache_mb=0)
    thread = f"seq-{uuid.uuid4().hex[:8]}"
    with CheckpointClient(backend.target) as c:
        first = c.save(thread, {"i": 0}).checkpoint_id
        second = c.save(thread, {"i": 1}, parent_checkpoint_id=first).checkpoint_id
        _run_sql(backend.dsn, "ALTER SEQUENCE cairn_checkpoints_row_id_seq RESTART WITH 1", None)
        third = c.save(thread, {"i": 2}, parent_checkpoint_id=second).checkpoint_id
        assert c.load(thread).checkpoint_id == third
        fourth = c.save(thread, {"i": 3}, parent_checkpoint_id=third, expected_head_id=third).checkpoint_id
        assert c.load(thread).checkpoint_id == fourth
        summary = next(t for t in c.list_threads().threads if t.thread_id == thread)
        assert summary.head_checkpoint_id == fourth
        assert c.prune([thread], keep_latest=2) == 2
        assert c.load(thread).checkpoint_id == fourth
        assert {cp.checkpoint_id for cp in c.list(thread).checkpoints} == {third, fourth}


def test_age_retention_sweeps_every_thread_on_partitioned_tables(
    server_factory,
) -> None:  # type: ignore[no-untyped-def]
    """Age-based retention sweeps threads from its cursor and starts over at the end: every thread loses its
    old checkpoints, never its head, on the partitioned schema."""
    backend = server_factory("postgres-partitioned", retention_max_age_seconds=1, retention_interval_seconds=0.2)
    threads = [f"age-{i}" for i in range(12)]
    with CheckpointClient(backend.target) as c:
        heads = {}
        for t in threads:
            c.save(t, {"i": 0})
            heads[t] = c.save(t, {"i": 1}).checkpoint_id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and int(_run_sql(backend.dsn, "SELECT count(*) FROM cairn_checkpoints",
                                                           None)) > len(threads):
            time.sleep(0.1)
        for t in threads:
            assert [cp.checkpoint_id for cp in c.list(t).checkpoints] == [heads[t]]
    assert _run_sql(backend.dsn, "SELECT count(*) FROM cairn_retention", None) == "1"
