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
from tests.harness import CairnServer, PostgresServer

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
        with CairnServer("--postgres-dsn", dsn, "--health-probe-seconds", "0.2", "--cold-timeout-seconds", "1") as srv:
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
