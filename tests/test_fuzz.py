"""Hostile input, generated: every rejection is a specific status with a message; never INTERNAL, never a crash.

Drives the real gRPC server with raw protobuf messages (not the client, which would tidy them up) and with
raw garbage bytes on the wire.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3

import grpc
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc

FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                            HealthCheck.too_slow],
)
STATS = {"requests": 0, "rejected": 0}

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from([
        "", " ", "\x00", "a\x00b", "\x1b[31m", "' OR 1=1; --", "'); DROP TABLE cairn_checkpoints; --",
        "*3\r\n$3\r\nDEL\r\n$1\r\nx\r\n", "{tag}", "}{", "cairn:{x}:g", "$$", "\\", "%s%n", "../../etc/passwd",
        "\ud7ff", "🧵" * 10, "x" * 513, "ü" * 300, "\u202e", "null", "\t\n",
    ]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                        st.integers(-2**53, 2**53), hostile_text)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)),
    max_leaves=30,
)
metadata = st.dictionaries(hostile_text, json_value, max_size=5)
_zstd = zstandard.ZstdCompressor()
# States claimed to be zstd frames: valid ones (some over the 4096-byte limit once decompressed), truncated,
# followed by junk, or random bytes behind zstd's magic number.
zstd_state = st.one_of(
    st.binary(max_size=64).map(_zstd.compress),
    st.integers(0, 20_000).map(lambda n: _zstd.compress(b"x" * n)),
    st.tuples(st.binary(min_size=1, max_size=64), st.integers(1, 8)).map(lambda t: _zstd.compress(t[0])[: -t[1]]),
    st.tuples(st.binary(max_size=64), st.binary(min_size=1, max_size=8)).map(lambda t: _zstd.compress(t[0]) + t[1]),
    st.binary(max_size=32).map(lambda b: b"\x28\xb5\x2f\xfd" + b),
)
encodings = st.lists(st.integers(-3, 4), max_size=3)


def _deep(levels: int) -> dict:
    node: dict = {}
    root = node
    for _ in range(levels):
        node["k"] = {}
        node = node["k"]
    return root


@pytest.fixture(scope="module")
def stub(server_factory):  # type: ignore[no-untyped-def]
    backend = server_factory("redis+postgres", max_state_bytes=4096)
    channel = grpc.insecure_channel(backend.target, options=[("grpc.max_send_message_length", 1 << 24)])
    yield pb_grpc.CheckpointStoreStub(channel), channel, backend
    channel.close()
    print(f"\nfuzz: {STATS['requests']} generated requests, {STATS['rejected']} rejected with a specific status, "
          "0 INTERNAL/UNKNOWN")


def _check(call, request) -> None:  # type: ignore[no-untyped-def]
    STATS["requests"] += 1
    try:
        call(request, timeout=10)
    except grpc.RpcError as err:
        STATS["rejected"] += 1
        assert err.code() not in FORBIDDEN, f"{err.code()}: {err.details()} for {request!r:.300}"
        assert err.details(), "every rejection carries a message"
        assert "Traceback" not in err.details() and 'File "' not in err.details()


def _struct(value: dict) -> pb.Checkpoint:
    cp = pb.Checkpoint()
    try:
        cp.metadata.update(value)
    except (ValueError, TypeError):
        pass
    return cp.metadata


@SETTINGS
@given(
    thread=hostile_text, ns=hostile_text, cid=hostile_text, parent=hostile_text, node=hostile_text,
    state=st.one_of(st.binary(max_size=64), st.just(b"x" * 4096), st.just(b"x" * 4097), zstd_state),
    meta=st.one_of(metadata, st.just(_deep(19)), st.just(_deep(21))), expected=hostile_text,
    empty=st.booleans(), durability=st.integers(-5, 10), replace=st.booleans(),
    next_nodes=st.lists(hostile_text, max_size=3), encoding=st.integers(-2, 4),
)
def test_save(stub, thread, ns, cid, parent, node, state, meta, expected, empty, durability, replace,  # type: ignore[no-untyped-def]
              next_nodes, encoding) -> None:
    cp = pb.Checkpoint(thread_id=thread, namespace=ns, checkpoint_id=cid, parent_checkpoint_id=parent,
                       node_name=node, state=state, state_type="json", next_nodes=next_nodes,
                       state_encoding=encoding)
    cp.metadata.CopyFrom(_struct(meta))
    _check(stub[0].Save, pb.SaveRequest(checkpoint=cp, expected_head_id=expected, expect_empty=empty,
                                        durability=durability, replace_existing=replace))


@SETTINGS
@given(thread=hostile_text, ns=hostile_text, cid=hostile_text, accept=encodings)
def test_load_delete_clear(stub, thread, ns, cid, accept) -> None:  # type: ignore[no-untyped-def]
    _check(stub[0].Load, pb.LoadRequest(thread_id=thread, namespace=ns, checkpoint_id=cid,
                                        accept_state_encodings=accept))
    _check(stub[0].Delete, pb.DeleteRequest(thread_id=thread, namespace=ns, checkpoint_id=cid))
    _check(stub[0].Clear, pb.ClearRequest(thread_id=thread))


@SETTINGS
@given(
    thread=hostile_text, ns=st.one_of(st.none(), hostile_text), flt=st.one_of(metadata, st.just(_deep(25))),
    before=hostile_text, size=st.integers(-2**31, 2**31 - 1),
    token=st.one_of(hostile_text, st.binary(max_size=40).map(lambda b: b.hex()),
                    st.sampled_from(["eyJyIjotMSwicSI6IiJ9", "eyJyIjp7fX0", "e30="])),
    state=st.booleans(), writes=st.booleans(), accept=encodings,
)
def test_list(stub, thread, ns, flt, before, size, token, state, writes, accept) -> None:  # type: ignore[no-untyped-def]
    req = pb.ListRequest(thread_id=thread, before_checkpoint_id=before, page_size=size, page_token=token,
                         include_state=state, include_writes=writes, accept_state_encodings=accept)
    if ns is not None:
        req.namespace = ns
    req.metadata_filter.CopyFrom(_struct(flt))
    _check(stub[0].List, req)
    _check(stub[0].ListThreads, pb.ListThreadsRequest(page_size=size, page_token=token))


@SETTINGS
@given(
    thread=hostile_text, cid=hostile_text, task=hostile_text, path=hostile_text, replace=st.booleans(),
    writes=st.lists(st.tuples(st.integers(-2**31, 2**31 - 1), hostile_text, st.binary(max_size=32)), max_size=4),
)
def test_put_writes(stub, thread, cid, task, path, replace, writes) -> None:  # type: ignore[no-untyped-def]
    _check(stub[0].PutWrites, pb.PutWritesRequest(
        thread_id=thread, checkpoint_id=cid, task_id=task, task_path=path, replace=replace,
        writes=[pb.Write(idx=i, channel=ch, value=v) for i, ch, v in writes],
    ))


@SETTINGS
@given(src=hostile_text, dst=hostile_text, threads=st.lists(hostile_text, max_size=3),
       strategy=st.integers(-3, 5), keep=st.integers(-5, 5), runs=st.lists(hostile_text, max_size=3))
def test_thread_ops(stub, src, dst, threads, strategy, keep, runs) -> None:  # type: ignore[no-untyped-def]
    _check(stub[0].CopyThread, pb.CopyThreadRequest(source_thread_id=src, target_thread_id=dst))
    _check(stub[0].Prune, pb.PruneRequest(thread_ids=threads, strategy=strategy, keep_count=keep))
    _check(stub[0].DeleteRuns, pb.DeleteRunsRequest(run_ids=runs))
    _check(stub[0].BatchLoad, pb.BatchLoadRequest(loads=[pb.LoadRequest(thread_id=t) for t in threads]))


METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["CheckpointStore"].methods if not m.client_streaming]


@SETTINGS
@given(method=st.sampled_from(METHODS), data=st.binary(min_size=1, max_size=200))
def test_garbage_bytes_on_the_wire(stub, method, data) -> None:  # type: ignore[no-untyped-def]
    call = stub[1].unary_unary(f"/cairn.v1.CheckpointStore/{method}", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    _check(call, data)


def test_oversized_message_is_rejected_by_size(stub) -> None:  # type: ignore[no-untyped-def]
    cp = pb.Checkpoint(thread_id="big", state=b"x" * (8 << 20))
    with pytest.raises(grpc.RpcError) as err:
        stub[0].Save(pb.SaveRequest(checkpoint=cp), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- page tokens carrying out-of-range integers, on both stores -------------------------------------------------

out_of_range = st.one_of(
    st.integers(2**63, 2**80), st.integers(-(2**80), 0), st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63)]),
)
token_position = st.one_of(
    out_of_range, st.integers(1, 2**63 - 1), st.floats(allow_nan=True), st.booleans(), st.none(), hostile_text,
    st.lists(st.one_of(st.integers(-(2**70), 2**70), hostile_text), max_size=3),
)


def _with_position(token: str, position: object) -> str:
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["r"] = position
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def paged(request, server_factory):  # type: ignore[no-untyped-def]
    """A server of each store with a thread of three checkpoints, and a real page token of each List kind."""
    backend = server_factory(request.param)
    channel = grpc.insecure_channel(backend.target)
    stub = pb_grpc.CheckpointStoreStub(channel)
    for _ in range(3):
        stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id="paged", state=b"{}")))
    stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id="paged-2", state=b"{}")))
    tokens = (stub.List(pb.ListRequest(thread_id="paged", page_size=1)).next_page_token,
              stub.ListThreads(pb.ListThreadsRequest(page_size=1)).next_page_token)
    yield stub, tokens
    channel.close()


@SETTINGS
@given(position=token_position)
def test_page_tokens_with_out_of_range_integers(paged, position) -> None:  # type: ignore[no-untyped-def]
    stub, (list_token, threads_token) = paged
    request = pb.ListRequest(thread_id="paged", page_size=1, page_token=_with_position(list_token, position))
    in_range = type(position) is int and 0 < position < 2**63
    if in_range:
        _check(stub.List, request)
    else:
        with pytest.raises(grpc.RpcError) as err:
            stub.List(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (position, err.value.details())
    if isinstance(position, list) or type(position) is int:
        _check(stub.ListThreads, pb.ListThreadsRequest(
            page_size=1, page_token=_with_position(threads_token, position if isinstance(position, list) else
                                                   ["2020-01-01T00:00:00+00:00", str(position)])))


# -- identifiers carrying Unicode control (Cc) and format (Cf) characters -------------------------------------

invisible = st.characters(categories=("Cc", "Cf"))


@SETTINGS
@given(before=st.text(max_size=8), char=invisible, after=st.text(max_size=8),
       field=st.sampled_from(["thread_id", "namespace", "checkpoint_id", "parent_checkpoint_id"]))
def test_ids_with_control_or_format_characters_are_invalid(stub, before, char, after, field) -> None:  # type: ignore[no-untyped-def]
    cp = pb.Checkpoint(thread_id="cf-fuzz", state=b"{}")
    setattr(cp, field, before + char + after)
    STATS["requests"] += 1
    with pytest.raises(grpc.RpcError) as err:
        stub[0].Save(pb.SaveRequest(checkpoint=cp), timeout=10)
    STATS["rejected"] += 1
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert f"U+{ord(char):04X}" in err.value.details() or "U+" in err.value.details()


# -- encrypted rows swapped between rows of one tenant -------------------------------------------------------


@pytest.fixture(scope="module")
def sealed(server_factory):  # type: ignore[no-untyped-def]
    """An encrypting embedded server that caches nothing (every Load reads the file), six rows over two threads
    with a pending write each, and their original stored bytes."""
    key = base64.b64encode(os.urandom(32)).decode()
    backend = server_factory("embedded", encryption_keys=f"fz:{key}", near_cache_mb=0, cache_max_entries=0)
    channel = grpc.insecure_channel(backend.target)
    stub = pb_grpc.CheckpointStoreStub(channel)
    plain: dict[str, bytes] = {}
    for i in range(6):
        thread, cid = f"sealed-{i % 2}", f"c{i}"
        state = json.dumps({"row": i, "pad": "x" * (i * 100)}).encode()
        stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread, checkpoint_id=cid, state=state)))
        stub.PutWrites(pb.PutWritesRequest(thread_id=thread, checkpoint_id=cid, task_id="t",
                                           writes=[pb.Write(idx=0, channel="ch", value=b"w%d" % i)]))
        plain[cid] = state
    db = sqlite3.connect(backend.sqlite_path, isolation_level=None)
    db.execute("PRAGMA busy_timeout=5000")
    rows = {r[0]: r[1:] for r in db.execute(
        "SELECT checkpoint_id, thread_id, state, checksum, raw_size, codec FROM cairn_checkpoints")}
    writes = {r[0]: bytes(r[1]) for r in db.execute("SELECT checkpoint_id, value FROM cairn_writes")}
    yield stub, db, rows, writes, plain
    db.close()
    channel.close()


@SETTINGS
@given(src=st.integers(0, 5), dst=st.integers(0, 5),
       fields=st.sets(st.sampled_from(["state", "checksum", "raw_size", "codec"]), min_size=1),
       swap_write=st.booleans())
def test_encrypted_rows_swapped_between_rows_are_data_loss(sealed, src, dst, fields, swap_write) -> None:  # type: ignore[no-untyped-def]
    stub, db, rows, writes, plain = sealed
    names = ["state", "checksum", "raw_size", "codec"]
    s_id, d_id = f"c{src}", f"c{dst}"
    d_thread = rows[d_id][0]
    moved = {f: rows[s_id][1 + names.index(f)] for f in fields}
    try:
        db.execute(f"UPDATE cairn_checkpoints SET {', '.join(f'{f}=?' for f in moved)} WHERE checkpoint_id=?",
                   (*moved.values(), d_id))
        if swap_write:
            db.execute("UPDATE cairn_writes SET value=? WHERE checkpoint_id=?", (writes[s_id], d_id))
        STATS["requests"] += 1
        changed = any(moved[f] != rows[d_id][1 + names.index(f)] for f in moved) or (
            swap_write and writes[s_id] != writes[d_id])
        try:
            resp = stub.Load(pb.LoadRequest(thread_id=d_thread, checkpoint_id=d_id), timeout=10)
        except grpc.RpcError as err:
            STATS["rejected"] += 1
            assert changed and err.code() == grpc.StatusCode.DATA_LOSS, (src, dst, fields, err.details())
        else:
            assert not changed, f"row {s_id}'s bytes in row {d_id} were accepted ({sorted(fields)})"
            assert resp.checkpoint.state == plain[d_id]
            assert resp.pending_writes[0].value == b"w%d" % dst
    finally:
        original = rows[d_id]
        db.execute("UPDATE cairn_checkpoints SET state=?, checksum=?, raw_size=?, codec=? WHERE checkpoint_id=?",
                   (*original[1:], d_id))
        db.execute("UPDATE cairn_writes SET value=? WHERE checkpoint_id=?", (writes[d_id], d_id))


def test_server_still_healthy_after_fuzzing(stub) -> None:  # type: ignore[no-untyped-def]
    saved = stub[0].Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id="after-fuzz", state=b"{}")))
    assert stub[0].Load(pb.LoadRequest(thread_id="after-fuzz")).checkpoint.checkpoint_id == saved.checkpoint_id
    assert stub[2].server.running
