"""Running Cairn: metrics, SIGTERM drain with a call in flight, unix sockets, retention, configuration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from cairn_client import CheckpointClient
from tests.harness import free_port


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_metrics_endpoint(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    backend = server_factory("redis+postgres", metrics_listen=f"127.0.0.1:{port}")
    with CheckpointClient(backend.target) as c:
        c.save(thread_id, {"x": "y" * 2000})
        c.load(thread_id)
        c.load(thread_id)
        with pytest.raises(Exception):
            c.load(thread_id + "-missing")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'cairn_rpc_requests_total{code="OK",method="Save"} 1.0' in text
    assert 'cairn_rpc_requests_total{code="NOT_FOUND",method="Load"} 1.0' in text
    assert 'cairn_rpc_duration_seconds_bucket{le="0.005",method="Load"}' in text
    assert 'cairn_cache_lookups_total{result="hits"}' in text
    assert 'cairn_state_bytes_total{kind="stored"}' in text
    assert "cairn_cold_batch_size_bucket" in text
    assert 'cairn_backend_errors_total{backend="redis"} 0.0' in text
    raw = float(text.split('cairn_state_bytes_total{kind="raw_in"} ')[1].split()[0])
    stored = float(text.split('cairn_state_bytes_total{kind="stored"} ')[1].split()[0])
    assert stored < raw  # the compression ratio is there to read


def test_metrics_count_state_bytes_as_they_crossed_the_wire(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """With a compressing client, wire_in/wire_out count the frames sent, raw_in/raw_out the states they carry."""
    port = free_port()
    backend = server_factory("redis+postgres", metrics_listen=f"127.0.0.1:{port}")
    state = {"x": "compressible " * 2000}
    with CheckpointClient(backend.target, compress_states=True) as c:
        c.save(thread_id, state)  # identity: the client learns here that the server accepts zstd
        c.save(thread_id, state)  # a zstd frame
        assert json.loads(c.load(thread_id).state) == state  # the stored frame went out as it is
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

    def counted(kind: str) -> float:
        return float(text.split(f'cairn_state_bytes_total{{kind="{kind}"}} ')[1].split()[0])

    raw_size = counted("raw_out")  # one Load: the size of one state
    assert counted("raw_in") == 2 * raw_size
    assert raw_size < counted("wire_in") < 1.2 * raw_size  # one state as is, one frame of it
    assert counted("wire_out") < raw_size / 10


def test_sigterm_drains_a_call_in_flight(tmp_path: Path) -> None:
    """A save blocked on a paused Postgres still completes after SIGTERM; then the server exits 0."""
    from tests.harness import PostgresServer

    with PostgresServer() as pg:  # its own Postgres: this test freezes it
        dsn = pg.create_database("drain")
        port = free_port()
        log = open(tmp_path / "cairn.log", "wb")
        proc = subprocess.Popen(
            ["cairn", "serve", "--listen", f"127.0.0.1:{port}", "--postgres-dsn", dsn, "--grace-seconds", "20",
             "--cold-timeout-seconds", "30"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            client = CheckpointClient(f"127.0.0.1:{port}", timeout_seconds=60)
            wait_for(lambda: _saves(client, "warm"), what="server up")
            pg.pause()
            result: dict[str, object] = {}
            t = threading.Thread(target=lambda: result.update(r=client.save("drain", {"in": "flight"})))
            t.start()
            time.sleep(0.5)  # the save is now waiting on the frozen database
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert proc.poll() is None, "the server must wait for the call in flight"
            pg.resume()
            t.join(30)
            assert "r" in result, "the in-flight save must complete"
            assert proc.wait(30) == 0
        finally:
            pg.resume()
            if proc.poll() is None:
                proc.kill()
            log.close()
        text = (tmp_path / "cairn.log").read_text()
        assert "draining" in text and "exiting" in text


def _saves(client: CheckpointClient, thread: str) -> bool:
    try:
        client.save(thread, {})
        return True
    except Exception:
        return False


def test_unix_socket_end_to_end(short_tmp: Path) -> None:
    """The sidecar deployment: server and client share only a socket file."""
    sock = short_tmp / "cairn.sock"
    proc = subprocess.Popen(
        ["cairn", "serve", "--listen", f"unix:{sock}", "--sqlite-path", str(short_tmp / "c.db")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with CheckpointClient(f"unix:{sock}", timeout_seconds=5) as c:
            wait_for(lambda: _saves(c, "warm"), what="server on the socket")
            saved = c.save("sidecar", {"via": "unix"})
            assert c.load("sidecar").checkpoint_id == saved.checkpoint_id
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_retention_keeps_heads_and_chain(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("redis+postgres", retention_max_checkpoints=3, retention_interval_seconds=0.2)
    with CheckpointClient(backend.target) as c:
        ids = []
        for i in range(8):
            ids.append(c.save(thread_id, {"i": i}, parent_checkpoint_id=ids[-1] if ids else "").checkpoint_id)
        c.load(thread_id)  # cached head must survive too
        wait_for(lambda: len(c.list(thread_id).checkpoints) == 3, what="retention to prune")
        assert [x.checkpoint_id for x in c.list(thread_id).checkpoints] == ids[:-4:-1]
        assert c.load(thread_id).checkpoint_id == ids[-1]


def test_retention_by_age_never_removes_the_head(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("embedded", retention_max_age_seconds=1, retention_interval_seconds=0.2)
    with CheckpointClient(backend.target) as c:
        for i in range(3):
            c.save(thread_id, {"i": i})
        head = c.load(thread_id).checkpoint_id
        wait_for(lambda: len(c.list(thread_id).checkpoints) == 1, what="age retention")
        assert c.load(thread_id).checkpoint_id == head


def test_config_precedence_flag_env_file(tmp_path: Path) -> None:
    from cairn_server.cli import build_parser
    from cairn_server.config import load_config

    cfg = tmp_path / "cairn.toml"
    cfg.write_text('zstd_level = 9\ncache_ttl_seconds = 10\nlisten = "127.0.0.1:1"\n')
    args = build_parser().parse_args(["serve", "--config", str(cfg), "--listen", "127.0.0.1:3"])
    config = load_config(args, {"CAIRN_CACHE_TTL_SECONDS": "20", "CAIRN_LISTEN": "127.0.0.1:2"})
    assert (config.zstd_level, config.cache_ttl_seconds, config.listen) == (9, 20, "127.0.0.1:3")
    cfg.write_text("no_such_setting = 1\n")
    with pytest.raises(ValueError, match="no_such_setting"):
        load_config(build_parser().parse_args(["serve", "--config", str(cfg)]), {})


def test_start_line_prints_redacted_config(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CAIRN_POSTGRES_DSN": "", "CAIRN_AUTH_TOKENS": "tok-123456 t"}
    proc = subprocess.Popen(
        ["cairn", "serve", "--listen", f"127.0.0.1:{port}", "--sqlite-path", str(tmp_path / "c.db"),
         "--log-format", "json"],
        stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        line = proc.stderr.readline()  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    record = json.loads(line)
    assert "cairn serving" in record["msg"] and "hot=memory cold=sqlite" in record["msg"]
    assert "tok-123456" not in line and '"auth_tokens": "***"' in record["msg"]


def test_log_lines_of_a_failed_call_carry_its_request_id_tenant_and_thread(tmp_path: Path) -> None:
    """The caller's x-request-id (or a generated one) is on every record the call logs."""
    import grpc

    from cairn.v1 import checkpoint_store_pb2 as pb
    from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc

    port = free_port()
    env = {**os.environ, "CAIRN_POSTGRES_DSN": "", "CAIRN_AUTH_TOKENS": "tok-123456 acme"}
    log = tmp_path / "log"
    proc = subprocess.Popen(
        ["cairn", "serve", "--listen", f"127.0.0.1:{port}", "--sqlite-path", str(tmp_path / "c.db"),
         "--log-format", "json", "--log-level", "DEBUG"],
        stderr=open(log, "wb"), env=env,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.CheckpointStoreStub(channel)
            grpc.channel_ready_future(channel).result(timeout=20)
            auth = ("authorization", "Bearer tok-123456")
            for md in ((auth, ("x-request-id", "req-42")), (auth,)):
                with pytest.raises(grpc.RpcError) as err:
                    stub.Load(pb.LoadRequest(thread_id="no-such-thread"), metadata=md, timeout=10)
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    records = [json.loads(line) for line in log.read_text().splitlines() if "Load failed" in line]
    assert len(records) == 2, log.read_text()
    for record in records:
        assert (record["method"], record["tenant"], record["thread_id"]) == ("Load", "acme", "no-such-thread")
    assert records[0]["request_id"] == "req-42"
    assert records[1]["request_id"] and records[1]["request_id"] != "req-42"


def test_opentelemetry_spans_when_instrumented(tmp_path: Path) -> None:
    """`opentelemetry-instrument cairn serve` exports one span per RPC, with method, thread, code and tenant."""
    port = free_port()
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "cairn", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    out = open(tmp_path / "spans.txt", "wb")
    proc = subprocess.Popen(
        ["opentelemetry-instrument", "cairn", "serve", "--listen", f"127.0.0.1:{port}",
         "--sqlite-path", str(tmp_path / "c.db")],
        stdout=out, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        with CheckpointClient(f"127.0.0.1:{port}", timeout_seconds=5) as c:
            wait_for(lambda: _saves(c, "traced"), what="instrumented server")
            with pytest.raises(Exception):
                c.load("not-there")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        out.close()
    spans = (tmp_path / "spans.txt").read_text()
    assert '"name": "cairn.v1.CheckpointStore/Save"' in spans
    assert '"rpc.grpc.status_code": "NOT_FOUND"' in spans and '"cairn.thread_id": "not-there"' in spans


def test_workers_share_one_port(redis_proc, postgres_proc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--workers 2: two processes on one port (SO_REUSEPORT), one Redis cache, one SIGTERM stops both."""
    from tests.conftest import new_database

    port = free_port()
    proc = subprocess.Popen(
        ["cairn", "serve", "--listen", f"127.0.0.1:{port}", "--workers", "2", "--redis-url", redis_proc.url,
         "--postgres-dsn", new_database(postgres_proc), "--log-format", "json"],
        stderr=open(tmp_path / "log", "wb"),
    )
    try:
        clients = [CheckpointClient(f"127.0.0.1:{port}", timeout_seconds=5) for _ in range(6)]
        for c in clients:
            wait_for(lambda c=c: _saves(c, "workers"), what="workers up")
        ids = [c.save("workers-thread", {"i": i}).checkpoint_id for i, c in enumerate(clients)]
        clients[0].delete("workers-thread", ids[-1])
        for c in clients:  # whichever worker answers, nobody sees the deleted head
            assert c.load("workers-thread").checkpoint_id == ids[-2]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    starts = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines() if "cairn serving" in line]
    assert sorted(s["msg"].split(" as worker ")[1].split(";")[0] for s in starts) == ["1 of 2", "2 of 2"]


def test_workers_refuse_a_port_they_cannot_share() -> None:
    out = subprocess.run(["cairn", "serve", "--listen", "127.0.0.1:0", "--workers", "2"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "--workers above 1 needs a TCP --listen host:port with a fixed port" in out.stderr


def _open_sqlite_store(path: str, barrier) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from cairn_server.storage.sqlite import SqliteColdStore

    async def go() -> None:
        barrier.wait()
        await (await SqliteColdStore.open(path)).aclose()

    asyncio.run(go())


def test_workers_migrate_one_new_sqlite_file_together(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`--workers N` on the embedded default: N processes open and migrate one new file at the same moment.
    Each migration step reads the schema version under its own write lock, and the switch to WAL waits its turn;
    before, about half the processes died with "table cairn_threads already exists" or "database is locked"."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    failed = 0
    for i in range(10):
        barrier = ctx.Barrier(3)
        procs = [ctx.Process(target=_open_sqlite_store, args=(str(tmp_path / f"{i}.db"), barrier)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        failed += sum(p.exitcode != 0 for p in procs)
    assert failed == 0, f"{failed} of 30 processes failed to open a new SQLite store opened by two others at once"
