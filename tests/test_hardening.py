"""Issue 27, tried as an attacker would: each numbered case of the issue as a test against a real server.

1. amplification (BatchLoad, List) and 2. SaveStream read-ahead: bounded by bytes (and tests/test_memory.py
   measures the server's RSS under the same attacks);
3. encryption that binds its row; 4. page tokens out of range; 5. health, duplicate tokens, invisible
   characters in ids; 6. a corrupt head does not block its thread.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
from cairn_client import CheckpointClient, InvalidArgument
from tests.harness import CairnProcess, PostgresServer

MIB = 1 << 20


def _stub(target: str) -> tuple[pb_grpc.CheckpointStoreStub, grpc.Channel]:
    channel = grpc.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * MIB), ("grpc.max_receive_message_length", 64 * MIB)]
    )
    return pb_grpc.CheckpointStoreStub(channel), channel


def _wait(predicate, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# -- 4. page tokens -------------------------------------------------------------------------------------------


def _edited(token: str, position: object) -> str:
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["r"] = position
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("kind", ["embedded", "postgres"])
def test_page_token_with_an_out_of_range_row_id_is_invalid_argument(server_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory(kind)
    thread = f"t-{uuid.uuid4()}"
    stub, channel = _stub(backend.target)
    with channel, CheckpointClient(backend.target) as c:
        for _ in range(3):
            c.save(thread, {})
        token = c.list(thread, page_size=1).next_page_token
        threads_token = c.list_threads(page_size=1).next_page_token
        for position in (2**63, 2**64, -(2**63) - 1, 10**40, -1, 0):
            with pytest.raises(grpc.RpcError) as err:
                stub.List(pb.ListRequest(thread_id=thread, page_size=1, page_token=_edited(token, position)))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (position, err.value.details())
        if threads_token:
            for position in (["9999-12-31T23:59:59+00:00", "\x00"], ["0001-01-01T00:00:00", "x"],
                             ["0001-01-01T00:00:00-23:59", "x"], ["2020-01-01T00:00:00+00:00"], [1, 2]):
                with pytest.raises(grpc.RpcError) as err:
                    stub.ListThreads(pb.ListThreadsRequest(page_size=1, page_token=_edited(threads_token, position)))
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (position, err.value.details())


# -- 5. smaller: invisible characters, duplicate tokens, health ---------------------------------------------


@pytest.mark.parametrize("char", ["\u0085", "\u202e", "\u200b", "\ufeff", "\u2066", "\x9b", "\U000e0001"])
def test_ids_reject_unicode_control_and_format_characters(server_factory, char: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("embedded")
    with CheckpointClient(backend.target) as c:
        for thread in (f"a{char}b", char):
            with pytest.raises(InvalidArgument) as err:
                c.save(thread, {})
            assert f"U+{ord(char):04X}" in str(err.value)
        with pytest.raises(InvalidArgument):
            c.save("ok", {}, namespace=f"ns{char}")
        c.save("ünïcødé-ok-🧵", {})  # printable non-ASCII stays allowed


def test_a_token_listed_twice_is_a_configuration_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    tokens = tmp_path / "tokens"
    tokens.write_text("tok-a tenant-one\ntok-b tenant-two\ntok-a tenant-three\n")
    res = subprocess.run(
        ["cairn", "serve", "--listen", "127.0.0.1:0", "--sqlite-path", str(tmp_path / "c.db"),
         "--auth-tokens-file", str(tokens)],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 2
    assert "line 3" in res.stderr and "already listed on line 1" in res.stderr
    assert "tok-a" not in res.stderr  # the secret itself is never echoed


def test_health_is_not_serving_while_the_cold_store_is_down() -> None:
    with PostgresServer() as pg:  # its own Postgres: this test stops it
        dsn = pg.create_database("health")
        with CairnProcess("--postgres-dsn", dsn, "--cold-timeout-seconds", "1") as srv:  # probed every second
            channel = grpc.insecure_channel(srv.target)
            health = health_pb2_grpc.HealthStub(channel)

            def status(service: str = "") -> int:
                return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

            assert status() == health_pb2.HealthCheckResponse.SERVING
            pg.stop()
            _wait(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING, "NOT_SERVING")
            assert status("cairn.v1.CheckpointStore") == health_pb2.HealthCheckResponse.NOT_SERVING
            pg.start()
            _wait(lambda: status() == health_pb2.HealthCheckResponse.SERVING, "SERVING again")
            with CheckpointClient(srv.target) as c:
                c.save("after", {"ok": True})
            channel.close()


# -- 1. amplification: List and BatchLoad responses within a byte budget ----------------------------------------


def _mib_state(i: int) -> bytes:
    return (b"%08d" % i) * (MIB // 8 - 2)  # just under 1 MiB raw; compresses, but the response carries it raw


@pytest.fixture(scope="module")
def one_mib(server_factory):  # type: ignore[no-untyped-def]
    return server_factory("redis+postgres+near", max_state_bytes=MIB)


def test_list_with_states_cuts_pages_by_bytes_and_still_reaches_every_row(one_mib) -> None:  # type: ignore[no-untyped-def]
    thread = f"t-{uuid.uuid4()}"
    stub, channel = _stub(one_mib.target)
    with channel:
        for i in range(5):
            stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread, state=_mib_state(i))))
        seen, token, pages = [], "", 0
        while True:
            resp = stub.List(pb.ListRequest(thread_id=thread, include_state=True, page_size=3, page_token=token))
            assert resp.checkpoints, "a page always carries at least one checkpoint"
            assert resp.ByteSize() <= 2 * MIB + (1 << 20)  # within gRPC's message limit for 1 MiB states
            seen += [cp.state for cp in resp.checkpoints]
            pages += 1
            token = resp.next_page_token
            if not token:
                break
        assert seen == [_mib_state(i) for i in reversed(range(5))] and pages >= 3


def test_batch_load_of_one_big_head_a_thousand_times_is_refused_per_item(one_mib) -> None:  # type: ignore[no-untyped-def]
    thread = f"t-{uuid.uuid4()}"
    stub, channel = _stub(one_mib.target)
    with channel:
        stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread, state=_mib_state(7))))
        request = pb.BatchLoadRequest(loads=[pb.LoadRequest(thread_id=thread)] * 1000)
        assert request.ByteSize() < 60_000
        resp = stub.BatchLoad(request, timeout=60)
        assert len(resp.results) == 1000
        loaded = [r for r in resp.results if r.HasField("load")]
        refused = [r for r in resp.results if r.HasField("error")]
        assert 1 <= len(loaded) <= 2 and loaded[0].load.checkpoint.state == _mib_state(7)
        assert len(refused) == 1000 - len(loaded)
        assert {r.error.code for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]}
        assert "max-response-bytes" in refused[0].error.message
        assert resp.ByteSize() < 3 * MIB


# -- 2. SaveStream reads ahead by bytes, and names what it did not commit -------------------------------------


def test_a_stream_the_server_cannot_commit_stops_being_read_from() -> None:
    """While commits cannot keep up (here: Postgres frozen), the server holds at most its stream window of read
    and unanswered saves; HTTP/2 flow control then stops the client. Main read 1,024 items ahead by count."""
    with PostgresServer() as pg:  # its own Postgres: this test freezes it
        dsn = pg.create_database("window")
        with CairnProcess("--postgres-dsn", dsn, "--max-state-bytes", str(MIB), "--cold-timeout-seconds", "60") as srv:
            thread = f"t-{uuid.uuid4()}"
            sent = 0

            def requests():  # type: ignore[no-untyped-def]
                nonlocal sent
                for i in range(2000):
                    sent += 1
                    yield pb.SaveStreamRequest(save=pb.SaveRequest(
                        checkpoint=pb.Checkpoint(thread_id=thread, checkpoint_id=f"c{i:05d}", state=_mib_state(i))))

            stub, channel = _stub(srv.target)
            pg.pause()
            try:
                call = stub.SaveStream(requests(), timeout=60)
                time.sleep(5)
                reached = sent
                call.cancel()
            finally:
                pg.resume()
                channel.close()
    # 8 MiB of window (the default), the HTTP/2 windows on both sides and the client's own queue: tens of items,
    # not a thousand.
    assert reached < 100, f"the client could push {reached} items of 1 MiB into a stream that was not committing"


def test_a_stream_that_fails_names_what_was_not_committed() -> None:
    from google.rpc import error_details_pb2, status_pb2

    with PostgresServer() as pg:  # its own Postgres: this test freezes it
        dsn = pg.create_database("stream")
        with CairnProcess("--postgres-dsn", dsn, "--cold-timeout-seconds", "1") as srv:
            stub, channel = _stub(srv.target)
            thread = f"t-{uuid.uuid4()}"
            import queue as queue_mod

            outbox: queue_mod.Queue = queue_mod.Queue()

            def requests():  # type: ignore[no-untyped-def]
                while (item := outbox.get()) is not None:
                    yield item

            def save(i: int) -> pb.SaveStreamRequest:
                return pb.SaveStreamRequest(save=pb.SaveRequest(
                    checkpoint=pb.Checkpoint(thread_id=thread, checkpoint_id=f"c{i:03d}", state=b"x" * 100)))

            responses = stub.SaveStream(requests(), timeout=60)
            for i in range(5):
                outbox.put(save(i))
                assert next(responses).HasField("save")
            pg.pause()
            try:
                for i in range(5, 12):
                    outbox.put(save(i))
                with pytest.raises(grpc.RpcError) as err:
                    next(responses)
            finally:
                pg.resume()
                outbox.put(None)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            status = status_pb2.Status.FromString(dict(err.value.trailing_metadata())["grpc-status-details-bin"])
            info = error_details_pb2.ErrorInfo()
            status.details[0].Unpack(info)
            assert info.metadata["acknowledged_saves"] == "5"
            first_uncommitted = int(info.metadata["first_uncommitted_save"])
            assert "Re-send every save from 5 on" in err.value.details()
            time.sleep(1)
            stored = set(pg.sql(f"SELECT checkpoint_id FROM cairn_checkpoints WHERE thread_id = '{thread}'",
                                database="stream").split())
            assert {f"c{i:03d}" for i in range(5)} <= stored
            assert not stored & {f"c{i:03d}" for i in range(first_uncommitted, 12)}
            channel.close()
            assert "SaveStream failed after 5 acknowledged saves" in srv.log_text()


# -- 3. encryption that binds its row ---------------------------------------------------------------------------


def _key() -> str:
    import os

    return base64.b64encode(os.urandom(32)).decode()


def _serve_once(*args: str) -> "subprocess.CompletedProcess[str]":
    import subprocess

    return subprocess.run(["cairn", "serve", "--listen", "127.0.0.1:0", *args], capture_output=True, text=True,
                          timeout=60)


def test_an_encrypted_state_moved_to_another_row_is_data_loss(server_factory) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from cairn_client import DataLoss

    backend = server_factory("embedded", encryption_keys=f"k1:{_key()}")
    with CheckpointClient(backend.target) as c:
        a = c.save("swap-a", {"owner": "a", "pad": "x" * 400})
        b = c.save("swap-b", {"owner": "b", "pad": "y" * 400})
        same_thread = c.save("swap-a", {"owner": "a2", "pad": "z" * 400}, parent_checkpoint_id=a.checkpoint_id)
    backend.server.stop()
    db = sqlite3.connect(backend.sqlite_path)
    cols = "state, checksum, raw_size, codec"
    row_a = db.execute(f"SELECT {cols} FROM cairn_checkpoints WHERE checkpoint_id=?", (a.checkpoint_id,)).fetchone()
    # into another thread of the same tenant, and into another checkpoint of the same thread
    for victim in (b.checkpoint_id, same_thread.checkpoint_id):
        db.execute("UPDATE cairn_checkpoints SET state=?, checksum=?, raw_size=?, codec=? WHERE checkpoint_id=?",
                   (*row_a, victim))
    db.commit()
    db.close()
    backend.server.start()  # an empty in-process cache: reads go to the file
    with CheckpointClient(backend.target) as c:
        assert json.loads(c.load("swap-a", checkpoint_id=a.checkpoint_id).state)["owner"] == "a"
        for thread, victim in (("swap-b", b.checkpoint_id), ("swap-a", same_thread.checkpoint_id)):
            with pytest.raises(DataLoss) as err:
                c.load(thread, checkpoint_id=victim)
            assert "moved from another row" in str(err.value)


def test_rows_sealed_for_the_tenant_alone_stay_readable(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Rows an earlier build wrote (associated data: the tenant) load, and are still checked."""
    import os
    import sqlite3

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from cairn_client import DataLoss

    key = os.urandom(32)
    backend = server_factory("embedded", encryption_keys=f"old:{base64.b64encode(key).decode()}")
    with CheckpointClient(backend.target) as c:
        saved = c.save("legacy", b"legacy state", state_type="raw")
    backend.server.stop()
    nonce = os.urandom(12)
    legacy = b"E1\x03old" + nonce + AESGCM(key).encrypt(nonce, b"legacy state", b"")  # tenant "" as the AAD
    db = sqlite3.connect(backend.sqlite_path)
    db.execute("UPDATE cairn_checkpoints SET state=?, codec=? WHERE checkpoint_id=?",
               (legacy, 0x10, saved.checkpoint_id))
    db.commit()
    backend.server.start()
    with CheckpointClient(backend.target) as c:
        assert c.load("legacy").state == b"legacy state"
    backend.server.stop()
    # The flag that says "bound" cannot be dropped to fall back to the weaker check, nor added.
    db.execute("UPDATE cairn_checkpoints SET codec=? WHERE checkpoint_id=?", (0x30, saved.checkpoint_id))
    db.commit()
    db.close()
    backend.server.start()
    with CheckpointClient(backend.target) as c, pytest.raises(DataLoss):
        c.load("legacy")


def test_pending_write_values_are_encrypted_and_bound(server_factory) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from cairn_client import DataLoss

    backend = server_factory("embedded", encryption_keys=f"k1:{_key()}")
    with CheckpointClient(backend.target) as c:
        cp = c.save("writes", {"n": 1})
        other = c.save("writes", {"n": 2}, parent_checkpoint_id=cp.checkpoint_id)
        secret = b"hunter2-" + b"s" * 100
        assert c.put_writes("writes", cp.checkpoint_id, "task-1", [("ch", "raw", secret)]) == 1
        assert c.put_writes("writes", cp.checkpoint_id, "task-1", [("ch", "raw", secret)]) == 0  # idempotent
        assert c.put_writes("writes", other.checkpoint_id, "task-1", [("ch", "raw", b"other")]) == 1
        assert c.load("writes", checkpoint_id=cp.checkpoint_id).pending_writes[0].value == secret
        assert c.copy_thread("writes", "writes-copy") == 2  # copies are sealed again for their thread
        assert c.load("writes-copy", checkpoint_id=cp.checkpoint_id).pending_writes[0].value == secret
        assert c.load("writes-copy").state == c.load("writes").state
    backend.server.stop()
    db = sqlite3.connect(backend.sqlite_path)
    values = [bytes(v) for (v,) in db.execute("SELECT value FROM cairn_writes")]
    assert values and all(b"hunter2" not in v and b"other" not in v for v in values)
    (sealed,) = db.execute("SELECT value FROM cairn_writes WHERE thread_id='writes' AND checkpoint_id=?",
                           (cp.checkpoint_id,)).fetchone()
    db.execute("UPDATE cairn_writes SET value=? WHERE thread_id='writes' AND checkpoint_id=?",
               (sealed, other.checkpoint_id))
    db.commit()
    db.close()
    backend.server.start()
    with CheckpointClient(backend.target) as c, pytest.raises(DataLoss):
        c.load("writes", checkpoint_id=other.checkpoint_id)


def test_a_different_key_under_a_known_id_refuses_to_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "c.db")
    key = _key()
    with CairnProcess("--sqlite-path", db, "--encryption-keys", f"k1:{key}") as srv, \
            CheckpointClient(srv.target) as c:
        c.save("t", {"sealed": True})
    res = _serve_once("--sqlite-path", db, "--encryption-keys", f"k1:{_key()}")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "encryption key 'k1' is not the key this store knows" in lines[0]
    # the right key, or a new key under a new id with the old one kept, starts
    with CairnProcess("--sqlite-path", db, "--encryption-keys", f"k2:{_key()},k1:{key}") as srv, \
            CheckpointClient(srv.target) as c:
        assert c.load("t").json() == {"sealed": True}


def test_a_store_with_encrypted_rows_refuses_plaintext_saves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from cairn_client import CairnError

    db = str(tmp_path / "c.db")
    with CairnProcess("--sqlite-path", db, "--encryption-keys", f"k1:{_key()}") as srv, \
            CheckpointClient(srv.target) as c:
        c.save("t", {"sealed": True})
    with CairnProcess("--sqlite-path", db) as srv, CheckpointClient(srv.target) as c:
        with pytest.raises(CairnError) as err:
            c.save("t2", {"plain": True})
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "--allow-plaintext-saves" in str(err.value)
    with CairnProcess("--sqlite-path", db, "--allow-plaintext-saves") as srv, CheckpointClient(srv.target) as c:
        c.save("t2", {"plain": True})
    (codec,) = sqlite3.connect(db).execute("SELECT codec FROM cairn_checkpoints WHERE thread_id='t2'").fetchone()
    assert codec & 0x10 == 0


# -- 6. a corrupt head does not block its thread ------------------------------------------------------------------


def _corrupt_head(dsn: str, thread_id: str) -> str:
    import asyncio

    import asyncpg

    async def run() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(
                "UPDATE cairn_checkpoints SET state = overlay(state placing '\\xff'::bytea from 20 for 1) "
                "WHERE row_id = (SELECT max(row_id) FROM cairn_checkpoints WHERE thread_id = $1) "
                "RETURNING checkpoint_id", thread_id,
            )
        finally:
            await conn.close()

    return asyncio.run(run())


def test_a_corrupt_head_is_quarantined_and_the_run_resumes_from_its_ancestor(server_factory) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import urllib.request

    from cairn_client import DataLoss
    from cairn_client.graph import END, START, StateGraph
    from tests.harness import free_port

    def graph():  # type: ignore[no-untyped-def]
        g = StateGraph(dict)
        g.add_node("a", lambda s: {"log": s.get("log", []) + ["a"], "pad": "p" * 200})
        g.add_node("b", lambda s: {"log": s["log"] + ["b"]})
        g.add_edge(START, "a")
        g.add_edge("a", "b")
        g.add_edge("b", END)
        return g

    metrics_port = free_port()
    backend = server_factory("postgres", metrics_listen=f"127.0.0.1:{metrics_port}")
    thread = f"g-{uuid.uuid4()}"
    with CheckpointClient(backend.target) as c:
        app = graph().compile(c, interrupt_after=["a"])
        app.invoke({"log": []}, thread_id=thread)  # pauses after a: its head holds a's output
        chain = [cp.checkpoint_id for cp in c.iter_checkpoints(thread)]
        corrupt = _corrupt_head(backend.dsn, thread)
        assert corrupt == chain[0]
        backend.server.stop()
        backend.server.start()  # the near cache is gone: reads meet the corrupt row

        for attempt in (lambda: app.invoke(None, thread_id=thread),
                        lambda: app.invoke(None, thread_id=thread, checkpoint_id=chain[1]),
                        lambda: app.get_state(thread)):
            with pytest.raises(DataLoss):  # the default: nothing is resumed past a corrupt head silently
                attempt()
        assert c.list(thread).checkpoints[0].checkpoint_id == corrupt  # and nothing was moved

        recovering = graph().compile(c, interrupt_after=["a"], on_corrupt_head="resume_from_ancestor")
        out = recovering.invoke(None, thread_id=thread)  # resumes from the newest intact checkpoint
        assert out["log"][-1] in ("a", "b")
        history = list(recovering.get_state_history(thread))
        assert corrupt not in [h.checkpoint_id for h in history] and chain[1] in [h.checkpoint_id for h in history]

    listed = subprocess.run(["cairn", "quarantined", "--postgres-dsn", backend.dsn, "--json"], capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["checkpoint_id"] == corrupt and entry["thread_id"] == thread and "checksum" in entry["reason"]
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    assert "cairn_quarantined_total 1.0" in text


def test_cairn_saver_resumes_past_a_corrupt_head_only_when_asked(server_factory) -> None:  # type: ignore[no-untyped-def]
    from cairn_client import DataLoss
    from cairn_client.langgraph import CairnSaver

    backend = server_factory("postgres")
    thread = f"lg-{uuid.uuid4()}"
    with CheckpointClient(backend.target) as c:
        first = c.save(thread, {"v": 1})
        c.save(thread, {"v": 2, "pad": "q" * 300}, parent_checkpoint_id=first.checkpoint_id)
    corrupt = _corrupt_head(backend.dsn, thread)
    backend.server.stop()
    backend.server.start()
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    with CairnSaver(backend.target) as saver, pytest.raises(DataLoss):
        saver.get_tuple(config)
    with CairnSaver(backend.target, on_corrupt_head="resume_from_ancestor") as saver:
        tup = saver.get_tuple(config)
        assert tup is not None and tup.config["configurable"]["checkpoint_id"] == first.checkpoint_id
    with CheckpointClient(backend.target) as c:
        assert [cp.checkpoint_id for cp in c.iter_checkpoints(thread)] == [first.checkpoint_id]
        assert not c.delete(thread, corrupt)  # gone from the thread, kept in quarantine


def test_list_threads_pages_end_early_by_bytes(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Heads' metadata can be 64 KiB each: 100 of them would pass a 2 MiB message limit."""
    backend = server_factory("embedded", max_state_bytes=MIB)
    stub, channel = _stub(backend.target)
    with channel, CheckpointClient(backend.target) as c:
        for i in range(40):
            c.save(f"wide-{i:02d}", {}, metadata={"blob": f"{i}" + "m" * 60_000})
        seen, token = [], ""
        while True:
            resp = stub.ListThreads(pb.ListThreadsRequest(page_size=1000, page_token=token))
            assert resp.threads and resp.ByteSize() <= 2 * MIB
            seen += [t.thread_id for t in resp.threads]
            if not (token := resp.next_page_token):
                break
        assert sorted(seen) == [f"wide-{i:02d}" for i in range(40)]


async def test_group_commit_cuts_batches_by_bytes() -> None:
    """Concurrent Saves share a transaction; by bytes too, so one of large states cannot run past the timeout."""
    import asyncio

    from cairn_server.storage.group_commit import GroupCommit

    batches: list[list[bytes]] = []
    gate = asyncio.Event()

    async def commit(items: list[bytes]) -> list[bytes]:
        batches.append(list(items))
        await gate.wait()  # the first commit runs long: the others queue behind it
        return items

    group = GroupCommit(commit, max_inflight=1, size=len, max_batch_bytes=10)
    saves = [asyncio.ensure_future(group.submit(b"x" * 4)) for _ in range(7)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await asyncio.gather(*saves) == [b"x" * 4] * 7
    assert sum(map(len, batches)) == 7 and all(sum(map(len, b)) <= 10 for b in batches)
    assert max(map(len, batches)) == 2  # 128 by count alone
