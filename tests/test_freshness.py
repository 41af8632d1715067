"""Fresh reads across servers, restarts, partitions and Redis rollbacks (freshness.py): the six ways a stale
checkpoint was once served, each against real processes. The history checker covers the same ground at random."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
from cairn_client import AsyncCheckpointClient, CheckpointClient, Conflict, NotFound

from tests.harness import CairnProcess, PostgresServer, RedisServer, TcpProxy
from cairn_tools.cluster import HarnessError


@pytest.fixture
def shared(postgres_proc):  # type: ignore[no-untyped-def]
    """One Redis (RDB snapshots on demand) and one fresh Postgres database, for several servers to share."""
    from tests.conftest import new_database

    with RedisServer() as rds:
        yield rds, new_database(postgres_proc)


def _serve(dsn: str, redis_url: str, *extra: str) -> CairnProcess:
    """A server on the shared tiers, with default flags (near cache on)."""
    return CairnProcess("--log-level", "WARNING", "--postgres-dsn", dsn, "--redis-url", redis_url, *extra)


def test_a_save_through_one_server_is_the_head_another_server_loads_next(shared, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario 1: save through A, then at once load the head through B. With near leases timed by uvloop's
    early wake-ups, B answered the previous head after some saves; now B asks the cold store every time."""
    rds, dsn = shared
    with _serve(dsn, rds.url) as a, _serve(dsn, rds.url) as b:
        with CheckpointClient(a.target) as ca, CheckpointClient(b.target) as cb:
            parent = ""
            stale = []
            for step in range(500):
                saved = ca.save(thread_id, {"step": step}, parent_checkpoint_id=parent).checkpoint_id
                if cb.load(thread_id).checkpoint_id != saved:  # B has this thread near: it read it just before
                    stale.append(step)
                parent = saved
            assert stale == []


def test_servers_sharing_only_postgres_read_each_others_changes(postgres_proc, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Without Redis each server keeps its own in-process copies; they are stamped and checked like any other,
    so servers (or `--workers N`) need only the shared Postgres: B never serves what A replaced or deleted."""
    from tests.conftest import new_database

    dsn = new_database(postgres_proc)
    with CairnProcess("--log-level", "WARNING", "--postgres-dsn", dsn) as a, \
            CairnProcess("--log-level", "WARNING", "--postgres-dsn", dsn) as b:
        with CheckpointClient(a.target) as ca, CheckpointClient(b.target) as cb:
            parent, saved = "", []
            for step in range(200):
                saved.append(ca.save(thread_id, {"step": step}, parent_checkpoint_id=parent).checkpoint_id)
                assert cb.load(thread_id).checkpoint_id == saved[-1]  # B cached the previous head just before
                assert cb.load(thread_id, checkpoint_id=saved[0]).checkpoint_id == saved[0]  # and keeps the first one near
                parent = saved[-1]
            ca.delete(thread_id, saved[0])
            with pytest.raises(NotFound):
                cb.load(thread_id, checkpoint_id=saved[0])
            ca.clear(thread_id)
            with pytest.raises(NotFound):
                cb.load(thread_id)


def test_changes_made_while_cut_off_from_redis_are_never_undone_by_a_crash(shared, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario 2: A is partitioned from Redis, deletes a checkpoint and clears a thread (both acknowledged), and
    is killed before the partition heals. B must not serve either, during the cut or after, nor after later saves."""
    rds, dsn = shared
    cleared = thread_id + "-cleared"
    with TcpProxy(rds.port) as proxy:
        a = _serve(dsn, proxy.url, "--cache-timeout-seconds", "0.2")
        with a, _serve(dsn, rds.url) as b:
            with CheckpointClient(a.target, timeout_seconds=10) as ca, CheckpointClient(b.target) as cb:
                x1 = ca.save(thread_id, {"x": 1}).checkpoint_id
                x2 = ca.save(thread_id, {"x": 2}, parent_checkpoint_id=x1).checkpoint_id
                y1 = ca.save(cleared, {"y": 1}).checkpoint_id
                for _ in range(2):  # B keeps them near, and in Redis
                    assert cb.load(thread_id).checkpoint_id == x2
                    assert cb.load(thread_id, checkpoint_id=x2).json() == {"x": 2}
                    assert cb.load(cleared).checkpoint_id == y1

                proxy.partition()
                assert ca.delete(thread_id, x2)
                assert ca.clear(cleared) == 1

                def b_sees_the_changes() -> None:
                    assert cb.load(thread_id).checkpoint_id == x1
                    with pytest.raises(NotFound):
                        cb.load(thread_id, checkpoint_id=x2)
                    with pytest.raises(NotFound):
                        cb.load(cleared)
                    with pytest.raises(NotFound):
                        cb.load(cleared, checkpoint_id=y1)

                b_sees_the_changes()
                a.kill()
                proxy.heal()
                b_sees_the_changes()
                x3 = cb.save(thread_id, {"x": 3}, parent_checkpoint_id=x1).checkpoint_id
                assert cb.load(thread_id).checkpoint_id == x3
                with pytest.raises(NotFound):
                    cb.load(thread_id, checkpoint_id=x2)


def test_redis_back_from_an_older_snapshot_serves_nothing_changed_since(shared, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario 3: Redis restarts from an RDB snapshot taken before a Clear and before a new head (what a failover
    to a lagging replica also looks like). Neither the cleared thread nor the replaced head comes back, and
    compare-and-set agrees with what Load says is the head."""
    rds, dsn = shared
    moved = thread_id + "-moved"
    with _serve(dsn, rds.url) as a, _serve(dsn, rds.url) as b:
        with CheckpointClient(a.target) as ca, CheckpointClient(b.target) as cb:
            c1 = ca.save(thread_id, {"c": 1}).checkpoint_id
            m1 = ca.save(moved, {"m": 1}).checkpoint_id
            for client in (ca, cb):  # both servers and Redis hold both heads
                assert client.load(thread_id).checkpoint_id == c1 and client.load(moved).checkpoint_id == m1
            snapshot = rds.tmpdir / "old.rdb"
            subprocess.run(["redis-cli", "-p", str(rds.port), "SAVE"], check=True, capture_output=True)
            shutil.copy(rds.tmpdir / "dump.rdb", snapshot)

            assert ca.clear(thread_id) == 1
            m2 = ca.save(moved, {"m": 2}, parent_checkpoint_id=m1, expected_head_id=m1).checkpoint_id

            rds.kill()
            shutil.copy(snapshot, rds.tmpdir / "dump.rdb")
            rds.start()  # with the snapshot's keys: the cleared thread and the old head
            for client in (ca, cb, ca, cb):  # pooled connections to the old Redis fail once each, then reconnect
                with pytest.raises(NotFound):
                    client.load(thread_id)
                with pytest.raises(NotFound):
                    client.load(thread_id, checkpoint_id=c1)
                assert client.load(moved).checkpoint_id == m2
            with pytest.raises(Conflict):
                cb.save(moved, {"m": "fork"}, parent_checkpoint_id=m1, expected_head_id=m1)
            m3 = cb.save(moved, {"m": 3}, parent_checkpoint_id=m2, expected_head_id=m2).checkpoint_id
            assert ca.load(moved).checkpoint_id == m3


@pytest.mark.parametrize("kind", ["embedded", "postgres", "redis+postgres+near"])
def test_a_copy_into_a_thread_emptied_by_delete_keeps_sequences_rising(server_factory, kind: str, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario 4: the target once held checkpoints, all deleted one by one (not cleared). The copy succeeds, the
    next save goes past the copied head's sequence, and it is the head."""
    backend = server_factory(kind)
    source = thread_id + "-source"
    with CheckpointClient(backend.target) as c:
        old = [c.save(thread_id, {"old": i}).checkpoint_id for i in range(2)]
        for cp_id in old:
            assert c.delete(thread_id, cp_id)
        parent = ""
        for i in range(5):
            parent = c.save(source, {"s": i}, parent_checkpoint_id=parent).checkpoint_id
        assert c.copy_thread(source, thread_id) == 5
        assert c.load(thread_id).checkpoint_id == parent
        new = c.save(thread_id, {"new": 1}, parent_checkpoint_id=parent).checkpoint_id
        assert c.load(thread_id).checkpoint_id == new
        sequences = [cp.sequence for cp in c.list(thread_id, page_size=10).checkpoints]
        assert sequences == sorted(set(sequences), reverse=True) and len(sequences) == 6


@pytest.mark.parametrize("kind", ["embedded", "redis+postgres+near"])
def test_a_copy_racing_a_save_that_expects_an_empty_thread_lets_exactly_one_through(server_factory, kind: str, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario 5: CopyThread and Save(expect_empty) race for one empty target; exactly one is acknowledged, and
    the head and the sequences say the same."""
    backend = server_factory(kind)
    source = thread_id + "-source"

    async def race() -> list[tuple[bool, bool]]:
        outcomes = []
        async with AsyncCheckpointClient(backend.target) as c:
            parent = ""
            for i in range(3):
                parent = (await c.save(source, {"s": i}, parent_checkpoint_id=parent)).checkpoint_id
            for trial in range(100):
                target = f"{thread_id}-{trial}"
                copied, saved = await asyncio.gather(
                    c.copy_thread(source, target), c.save(target, {"mine": trial}, expect_empty=True),
                    return_exceptions=True,
                )
                for result in (copied, saved):
                    if isinstance(result, BaseException) and not isinstance(result, Conflict):
                        raise result
                copy_ok, save_ok = not isinstance(copied, BaseException), not isinstance(saved, BaseException)
                outcomes.append((copy_ok, save_ok))
                head = (await c.load(target)).checkpoint_id
                listed = (await c.list(target, page_size=10)).checkpoints
                if save_ok:
                    assert head == saved.checkpoint_id and len(listed) == 1  # type: ignore[union-attr]
                elif copy_ok:
                    assert head == parent and len(listed) == 3
                sequences = [cp.sequence for cp in listed]
                assert len(set(sequences)) == len(sequences)
        return outcomes

    outcomes = asyncio.run(race())
    assert all(copy_ok != save_ok for copy_ok, save_ok in outcomes), outcomes


class _Standby(PostgresServer):
    """A streaming replica of `primary`, made by pg_basebackup (-R: it follows the primary once started)."""

    def __init__(self, primary: PostgresServer) -> None:
        self.primary = primary
        super().__init__(bindir=primary.bindir)

    def _before_start(self) -> None:
        if self._initialized:
            return
        with open(self.log_path, "ab") as logf:
            done = subprocess.run(
                self.as_pg_user([str(self.bindir / "pg_basebackup"), "-D", str(self.data_dir), "-h", "127.0.0.1",
                                 "-p", str(self.primary.port), "-U", self.user, "-R", "-X", "stream"]),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, timeout=120, **self._popen_kwargs(),
            )
        if done.returncode != 0:
            raise HarnessError(f"pg_basebackup failed ({done.returncode}); see {self.log_path}")
        self._initialized = True


def test_reads_never_go_to_a_standby(tmp_path, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario 6: a DSN naming a lagging standby once let a server refill Redis with checkpoints already deleted
    on the primary. A server refuses a DSN whose hosts are all standbys, or one that asks to admit a standby; given
    a multi-host DSN, it talks to the primary only."""
    with PostgresServer(synchronous_commit=True) as primary:
        dsn = primary.create_database("cairn")
        with _Standby(primary) as standby:
            standby_dsn = dsn.replace(f":{primary.port}/", f":{standby.port}/")
            deadline = time.monotonic() + 30
            while "cairn" not in standby.sql("SELECT datname FROM pg_database") and time.monotonic() < deadline:
                time.sleep(0.1)

            both = standby_dsn.replace(f"127.0.0.1:{standby.port}", f"127.0.0.1:{standby.port},127.0.0.1:{primary.port}")
            with CairnProcess("--log-level", "WARNING", "--postgres-dsn", both) as cairn:  # migrates the primary
                with CheckpointClient(cairn.target) as c:
                    first = c.save(thread_id, {"n": 1}).checkpoint_id
                    second = c.save(thread_id, {"n": 2}, parent_checkpoint_id=first).checkpoint_id
                    assert c.delete(thread_id, second)
                    assert c.load(thread_id).checkpoint_id == first
                    with pytest.raises(NotFound):
                        c.load(thread_id, checkpoint_id=second)

            for bad in (standby_dsn, dsn + "?target_session_attrs=prefer-standby"):
                # --no-migrate: the standby would refuse the migration's DDL, but answer reads without it
                refused = CairnProcess("--log-level", "WARNING", "--no-migrate", "--postgres-dsn", bad, start_timeout=20)
                with pytest.raises(HarnessError):
                    refused.start()
                log = refused.log_path.read_text()
                refused.close()
                assert "standby" in log, log
