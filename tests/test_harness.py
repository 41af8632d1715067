"""The test harness itself: real redis-server / postgres start, answer, survive kill + restart, and tear down."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.harness import (
    CairnProcess,
    ExistingPostgres,
    ExistingRedis,
    HarnessError,
    PostgresServer,
    RedisServer,
    existing_or_start_postgres,
    existing_or_start_redis,
    free_port,
)
from cairn_tools.cluster import _descendants, _group_members, _living

HERE = Path(__file__).resolve().parent


def _gone(pgid: int, within: float = 30.0) -> bool:
    """Wait for an event (every process of the group gone), not a timing assertion: generous upper bound."""
    deadline = time.monotonic() + within
    while _group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_free_port() -> None:
    port = free_port()
    assert 1024 < port < 65536


def test_redis_start_kill_restart_teardown() -> None:
    with RedisServer() as srv:
        assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
        port, pid, tmpdir = srv.port, srv.pid, srv.tmpdir
        with redis.Redis.from_url(srv.url) as c:
            assert c.ping()
            c.set("k", "v")
            assert c.get("k") == b"v"
        assert (tmpdir / "appendonlydir").exists() is False  # no persistence

        srv.kill()
        assert not srv.running and _gone(pid)
        with redis.Redis.from_url(srv.url, socket_connect_timeout=1) as c:
            with pytest.raises(redis.ConnectionError):
                c.ping()

        srv.start()
        assert srv.port == port and srv.pid != pid
        with redis.Redis.from_url(srv.url) as c:
            assert c.ping()
            assert c.get("k") is None  # no persistence: a restart comes back empty
        pid = srv.pid
    assert _gone(pid)
    assert not tmpdir.exists()


def test_redis_persistent_survives_kill() -> None:
    with RedisServer(persistent=True) as srv:
        with redis.Redis.from_url(srv.url) as c:
            c.set("stale", "yes")
        srv.kill()
        srv.start()
        with redis.Redis.from_url(srv.url) as c:
            assert c.get("stale") == b"yes"
        srv.stop()
        srv.start()
        with redis.Redis.from_url(srv.url) as c:
            assert c.get("stale") == b"yes"


def test_redis_pause_resume() -> None:
    with RedisServer() as srv:
        srv.pause()
        with redis.Redis.from_url(srv.url, socket_timeout=0.5) as c:
            with pytest.raises(redis.TimeoutError):
                c.ping()
        srv.resume()
        with redis.Redis.from_url(srv.url) as c:
            assert c.ping()


async def test_postgres_start_stop_restart_teardown() -> None:
    with PostgresServer() as pg:
        assert pg.dsn == f"postgresql://{pg.user}@127.0.0.1:{pg.port}/postgres"
        port, pid, tmpdir = pg.port, pg.pid, pg.tmpdir
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT current_setting('fsync')") == "off"
            assert await conn.fetchval("SELECT current_setting('full_page_writes')") == "off"
            await conn.execute("CREATE TABLE t (id int primary key, v text)")
            await conn.execute("INSERT INTO t VALUES (1, 'one')")
        finally:
            await conn.close()

        db_dsn = pg.create_database("harness_db")
        assert db_dsn.endswith("/harness_db")
        conn = await asyncpg.connect(db_dsn)
        try:
            assert await conn.fetchval("SELECT current_database()") == "harness_db"
        finally:
            await conn.close()
        assert pg.sql("SELECT v FROM t WHERE id = 1") == "one"

        pg.stop()  # fast shutdown
        assert not pg.running and _gone(pid)
        with pytest.raises(OSError):
            await asyncpg.connect(pg.dsn, timeout=2)

        pg.start()
        assert pg.port == port
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT v FROM t WHERE id = 1") == "one"
            assert await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'harness_db'") == 1
        finally:
            await conn.close()
        pid = pg.pid
    assert _gone(pid)
    assert not tmpdir.exists()


async def test_postgres_kill_restart_keeps_committed_data() -> None:
    with PostgresServer(synchronous_commit=True) as pg:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute("CREATE TABLE t (id int primary key)")
            await conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
        finally:
            await conn.close()
        pid = pg.pid
        backends = _descendants(pid)  # postgres children setsid() out of the postmaster's process group
        assert backends
        pg.kill()  # SIGKILL of the postmaster and every child: a crash, recovery on the next start
        assert _gone(pid)
        assert not _living(backends)  # kill() returns only when all of them are gone
        pg.start()
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM t") == 100
        finally:
            await conn.close()


async def test_postgres_pause_resume() -> None:
    with PostgresServer() as pg:
        conn = await asyncpg.connect(pg.dsn)
        try:
            pg.pause()  # postmaster and backends stopped: open connections hang too
            with pytest.raises(asyncio.TimeoutError):
                await asyncpg.connect(pg.dsn, timeout=0.5)
            pg.resume()
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()


def test_existing_servers_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with RedisServer() as srv:
        monkeypatch.setenv("CAIRN_TEST_REDIS_URL", srv.url)
        with existing_or_start_redis() as r:
            assert isinstance(r, ExistingRedis) and not r.managed
            assert r.url == srv.url and r.port == srv.port
            with redis.Redis.from_url(r.url) as c:
                assert c.ping()
            with pytest.raises(HarnessError):
                r.kill()
        assert srv.running  # leaving the context does not touch an existing server

    monkeypatch.delenv("CAIRN_TEST_REDIS_URL")
    with existing_or_start_redis() as r:
        assert isinstance(r, RedisServer) and r.managed


def test_existing_postgres_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with PostgresServer() as pg:
        monkeypatch.setenv("CAIRN_TEST_POSTGRES_DSN", pg.dsn)
        with existing_or_start_postgres() as p:
            assert isinstance(p, ExistingPostgres) and not p.managed
            dsn = p.create_database()
            assert p.sql("SELECT current_database()", database=dsn.rsplit("/", 1)[1]).startswith("cairn_test_")
            with pytest.raises(HarnessError):
                p.stop()
        assert pg.running


def test_no_orphans_when_test_process_is_killed(tmp_path: Path) -> None:
    """The watchdog kills the servers and removes their temp dirs when the owning process dies by SIGKILL."""
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, signal, sys
        from cairn_tools.cluster import PostgresServer, RedisServer
        r = RedisServer().start()
        p = PostgresServer().start()
        from cairn_tools.cluster import _descendants
        kids = sorted(_descendants(p.pid))
        print(json.dumps({{"pids": [r.pid, p.pid], "kids": kids, "dirs": [str(r.tmpdir), str(p.tmpdir)]}}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["kids"]  # postgres backends, each in its own session
    for pid in info["pids"]:
        assert _gone(pid), f"process group {pid} survived its owner"
    deadline = time.monotonic() + 30
    while _living(set(info["kids"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _living(set(info["kids"]))
    deadline = time.monotonic() + 30
    while any(os.path.exists(d) for d in info["dirs"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(d) for d in info["dirs"])


def test_no_orphans_at_normal_exit_without_close(tmp_path: Path) -> None:
    """atexit kills servers the test code forgot to close."""
    script = tmp_path / "forgetful.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        from cairn_tools.cluster import PostgresServer, RedisServer
        r = RedisServer().start()
        p = PostgresServer().start()
        from cairn_tools.cluster import _descendants
        kids = sorted(_descendants(p.pid))
        print(json.dumps({{"pids": [r.pid, p.pid], "kids": kids, "dirs": [str(r.tmpdir), str(p.tmpdir)]}}), flush=True)
        raise SystemExit(3)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    for pid in info["pids"]:
        assert not _group_members(pid)  # atexit waited for them
    assert info["kids"] and not _living(set(info["kids"]))
    for d in info["dirs"]:
        assert not os.path.exists(d)


def _cairn_usable() -> bool:
    exe = shutil.which("cairn")
    if exe is None:
        return False
    r = subprocess.run([exe, "serve", "--help"], capture_output=True, timeout=60)
    return r.returncode == 0


@pytest.mark.skipif(not _cairn_usable(), reason="`cairn serve` not usable yet (pip install -e '.[server]')")
def test_cairn_server_start_kill_restart() -> None:
    with CairnProcess.embedded() as srv:
        assert srv.target == f"127.0.0.1:{srv.port}"
        pid = srv.pid
        srv.kill()
        assert _gone(pid)
        srv.start()
        assert srv.running
        srv.terminate()
        assert not srv.running
        srv.start()
        assert srv.log_path.exists()
