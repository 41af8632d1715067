"""Hostile input, generated: every rejection is a specific status with a message; never INTERNAL, never a crash.

Drives the real gRPC server with raw protobuf messages (not the client, which would tidy them up) and with
raw garbage bytes on the wire.
"""

from __future__ import annotations

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


def test_server_still_healthy_after_fuzzing(stub) -> None:  # type: ignore[no-untyped-def]
    saved = stub[0].Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id="after-fuzz", state=b"{}")))
    assert stub[0].Load(pb.LoadRequest(thread_id="after-fuzz")).checkpoint.checkpoint_id == saved.checkpoint_id
    assert stub[2].server.running
