"""States on the wire as zstd (STATE_ENCODING_ZSTD): clients that compress spare the server that work.

Saves: the server checks the client's frame and stores it as is (or recompresses with its dictionary, or
encrypts it). Reads: a state goes out as its stored frame only when the request accepts zstd and the stored
row is a plain zstd frame. Whatever the encodings, every client reads back exactly the bytes saved.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3

import grpc
import pytest
import zstandard
from grpc_status import rpc_status

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
from cairn_client import AlreadyExists, AsyncCheckpointClient, CheckpointClient, DataLoss, NotFound
from cairn_client._shared import StateWire, save_request
from cairn_tools.bench.states import agent_states

STATES = agent_states(6, seed=5).states
ZSTD = pb.STATE_ENCODING_ZSTD


def stub(target: str) -> tuple[grpc.Channel, pb_grpc.CheckpointStoreStub]:
    channel = grpc.insecure_channel(target)
    return channel, pb_grpc.CheckpointStoreStub(channel)


def compressed_save(thread_id: str, frame: bytes, **fields: object) -> pb.SaveRequest:
    req = save_request(thread_id, b"placeholder", **fields)  # type: ignore[arg-type]
    req.checkpoint.state, req.checkpoint.state_encoding = frame, ZSTD
    return req


def test_a_compressing_client_round_trips_every_read_path(backend_server, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    with CheckpointClient(backend_server.target, compress_states=True) as c:
        first = c.save(thread_id, STATES[0])
        assert c._wire.server_accepts  # learned from the first SaveResponse; that save went as is
        ids = [first.checkpoint_id]
        for state in STATES[1:]:
            ids.append(c.save(thread_id, state, parent_checkpoint_id=ids[-1]).checkpoint_id)
        assert c.load(thread_id).state == STATES[-1]
        assert [c.load(thread_id, checkpoint_id=i).state for i in ids] == STATES
        page = c.list(thread_id, include_state=True, page_size=100)
        assert [cp.state for cp in page.checkpoints] == STATES[::-1]
        batch = c.batch_load([(thread_id, "", i) for i in ids])
        assert [cp.state for cp in batch] == STATES  # type: ignore[union-attr]
    with CheckpointClient(backend_server.target) as plain:  # a client that never heard of zstd
        assert [plain.load(thread_id, checkpoint_id=i).state for i in ids] == STATES
        assert [cp.state for cp in plain.list(thread_id, include_state=True).checkpoints] == STATES[::-1]


def test_reads_are_zstd_only_when_asked(backend_server, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    with CheckpointClient(backend_server.target) as c:
        saved = c.save(thread_id, STATES[0])
    channel, s = stub(backend_server.target)
    with channel:
        for _ in range(2):  # the second read comes from the near cache where there is one: rendered per encoding
            asked = s.Load(pb.LoadRequest(thread_id=thread_id, accept_state_encodings=[ZSTD])).checkpoint
            assert asked.state_encoding == ZSTD and len(asked.state) == saved.stored_size_bytes
            assert zstandard.ZstdDecompressor().decompress(asked.state) == STATES[0]
            assert asked.state_size_bytes == len(STATES[0])
            plain = s.Load(pb.LoadRequest(thread_id=thread_id)).checkpoint
            assert plain.state_encoding == pb.STATE_ENCODING_UNSPECIFIED and plain.state == STATES[0]
        listed = s.List(pb.ListRequest(thread_id=thread_id, include_state=True, accept_state_encodings=[ZSTD]))
        assert listed.checkpoints[0].state_encoding == ZSTD
        assert s.List(pb.ListRequest(thread_id=thread_id, include_state=True)).checkpoints[0].state == STATES[0]
        batch = s.BatchLoad(pb.BatchLoadRequest(loads=[
            pb.LoadRequest(thread_id=thread_id, accept_state_encodings=[ZSTD]), pb.LoadRequest(thread_id=thread_id),
        ]))
        assert [r.load.checkpoint.state_encoding for r in batch.results] == [ZSTD, pb.STATE_ENCODING_UNSPECIFIED]


def test_a_compressed_save_is_the_same_checkpoint_as_a_plain_one(backend_server, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    """The content hash is of the state, not of its encoding: a retry in the other encoding is idempotent."""
    frame = zstandard.ZstdCompressor(level=19).compress(STATES[1])  # any level; stored as sent
    channel, s = stub(backend_server.target)
    with channel:
        first = s.Save(compressed_save(thread_id, frame, checkpoint_id="cp-1"))
        assert list(first.accepted_state_encodings) == [ZSTD]
        assert not first.already_existed and first.stored_size_bytes == len(frame)
    with CheckpointClient(backend_server.target) as c:
        assert c.save(thread_id, STATES[1], checkpoint_id="cp-1").already_existed
        with pytest.raises(AlreadyExists):
            c.save(thread_id, STATES[2], checkpoint_id="cp-1")
        assert c.load(thread_id).state == STATES[1]


def _status(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return err.code(), err.details(), dict(info.metadata)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def small_limit(server_factory):  # type: ignore[no-untyped-def]
    return server_factory("embedded", max_state_bytes=100_000)


def _dictionary_frame(raw: bytes) -> bytes:
    samples = [json.dumps({"i": i, "text": "agent tool call " * (i % 7)}).encode() for i in range(400)]
    return zstandard.ZstdCompressor(dict_data=zstandard.train_dictionary(2048, samples)).compress(raw)


BAD_FRAMES = {
    "not a frame": (lambda raw: b"not zstd at all", "is not a zstd frame"),
    "two frames": (lambda raw: zstandard.ZstdCompressor().compress(raw) * 2, "unused data"),
    "truncated": (lambda raw: zstandard.ZstdCompressor().compress(raw)[:-7], "does not decompress"),
    "size undeclared": (
        lambda raw: zstandard.ZstdCompressor(write_content_size=False).compress(raw), "declare its content size"
    ),
    "dictionary": (_dictionary_frame, "compress without a dictionary"),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_a_bad_frame_is_invalid_argument_naming_the_fix(small_limit, case: str) -> None:  # type: ignore[no-untyped-def]
    make, expected = BAD_FRAMES[case]
    channel, s = stub(small_limit.target)
    with channel, pytest.raises(grpc.RpcError) as caught:
        s.Save(compressed_save("bad-frame", make(STATES[0][:50_000])))
    code, message, meta = _status(caught.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and expected in message, message
    assert meta == {"field": "checkpoint.state"}


def test_a_frame_declaring_more_than_the_limit_is_refused_before_decompressing(small_limit) -> None:  # type: ignore[no-untyped-def]
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (50 << 20))  # 50 MB of zeros in a ~2 KB frame
    assert len(bomb) < 10_000
    channel, s = stub(small_limit.target)
    with channel, pytest.raises(grpc.RpcError) as caught:
        s.Save(compressed_save("bomb", bomb))
    code, message, meta = _status(caught.value)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and f"state is {50 << 20} bytes" in message
    assert meta == {"limit": "max_state_bytes", "limit_value": "100000"}


def test_an_unknown_encoding_is_invalid_argument(small_limit) -> None:  # type: ignore[no-untyped-def]
    req = save_request("enc", b"{}")
    req.checkpoint.state_encoding = 7  # type: ignore[assignment]
    channel, s = stub(small_limit.target)
    with channel, pytest.raises(grpc.RpcError) as caught:
        s.Save(req)
    code, message, meta = _status(caught.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "unknown state_encoding 7" in message
    assert meta == {"field": "checkpoint.state_encoding"}


def test_an_encrypting_server_seals_the_clients_frame_and_never_sends_it(server_factory) -> None:  # type: ignore[no-untyped-def]
    key = base64.b64encode(os.urandom(32)).decode()
    backend = server_factory("embedded", encryption_keys=f"k1:{key}")
    secret = json.dumps({"password": "hunter2", "pad": "x" * 2000}).encode()
    with CheckpointClient(backend.target, compress_states=True) as c:
        c.save("warm-up", STATES[0])
        c.save("enc", secret)
        assert c.load("enc").state == secret
    (stored,) = sqlite3.connect(backend.sqlite_path).execute(
        "SELECT state FROM cairn_checkpoints WHERE thread_id='enc'"
    ).fetchone()
    assert stored.startswith(b"E1\x02k1") and b"hunter2" not in stored
    channel, s = stub(backend.target)
    with channel:  # the stored bytes are ciphertext: the state goes out decrypted, as is
        got = s.Load(pb.LoadRequest(thread_id="enc", accept_state_encodings=[ZSTD])).checkpoint
        listed = s.List(pb.ListRequest(thread_id="enc", include_state=True, accept_state_encodings=[ZSTD]))
    for cp in (got, listed.checkpoints[0]):
        assert cp.state_encoding == pb.STATE_ENCODING_UNSPECIFIED and cp.state == secret


async def test_the_async_client_compresses_too(backend_server, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    async with AsyncCheckpointClient(backend_server.target, compress_states=True) as c:
        await c.save(thread_id, STATES[2])
        saved = await c.save(thread_id, STATES[3])
        assert c._wire.server_accepts and saved.stored_size_bytes < len(STATES[3])
        assert (await c.load(thread_id)).state == STATES[3]
        results = [r async for r in c.save_stream([save_request(thread_id, s) for s in STATES])]
        assert all(not isinstance(r, Exception) for r in results)
        assert [cp.state for cp in (await c.list(thread_id, include_state=True, page_size=3)).checkpoints] == (
            STATES[::-1][:3]
        )


def test_small_states_and_the_callers_request_are_left_alone() -> None:
    wire = StateWire(True)
    wire.server_accepts = True
    small = save_request("t", b"{}")
    assert wire.outgoing(small) is small
    big = save_request("t", STATES[0])
    out = wire.outgoing(big)
    assert out.checkpoint.state_encoding == ZSTD and big.checkpoint.state == STATES[0]
    assert StateWire(False).outgoing(big) is big and StateWire(True).outgoing(big) is big  # not before the server says


def test_the_client_compresses_while_the_latest_save_response_lists_zstd() -> None:
    """A server that stops listing zstd (an older one after a rollback) stops getting frames."""
    wire, big = StateWire(True), save_request("t", STATES[0])
    wire.saved(pb.SaveResponse(accepted_state_encodings=[ZSTD]))
    assert wire.outgoing(big).checkpoint.state_encoding == ZSTD
    wire.saved(pb.SaveResponse())  # what an older server answers
    assert wire.outgoing(big) is big


@pytest.mark.parametrize("case", ["garbage", "size mismatch", "unasked encoding"])
def test_a_bad_frame_from_a_server_is_data_loss(case: str) -> None:
    frame = zstandard.ZstdCompressor().compress(STATES[0])
    cp = pb.Checkpoint(thread_id="t", checkpoint_id="c", state=frame, state_encoding=ZSTD,
                       state_size_bytes=len(STATES[0]))
    if case == "garbage":
        cp.state = b"\x28\xb5\x2f\xfd garbage"
    elif case == "size mismatch":
        cp.state_size_bytes += 1
    else:
        cp.state_encoding = 9  # type: ignore[assignment]
    with pytest.raises(DataLoss, match="checkpoint 'c' of thread 't'"):
        StateWire(True).state(cp)


def test_a_frame_declaring_more_than_the_client_accepts_is_refused_before_it_allocates() -> None:
    """zstd allocates what a frame declares: a server claiming a terabyte must not get the client to try."""
    huge = 1 << 40
    header = b"\x28\xb5\x2f\xfd\xe0" + huge.to_bytes(8, "little")  # single segment, 8-byte content size
    cp = pb.Checkpoint(thread_id="t", checkpoint_id="c", state=header + b"\x01\x00\x00", state_encoding=ZSTD,
                       state_size_bytes=huge)
    with pytest.raises(DataLoss, match="declares 1099511627776 bytes, over this client's max_message_bytes"):
        StateWire(True).state(cp)
    at_limit = pb.Checkpoint(thread_id="t", checkpoint_id="c", state=zstandard.ZstdCompressor().compress(STATES[0]),
                             state_encoding=ZSTD, state_size_bytes=len(STATES[0]))
    assert StateWire(True, max_state_bytes=len(STATES[0])).state(at_limit) == STATES[0]
    with pytest.raises(DataLoss, match="max_message_bytes"):
        StateWire(True, max_state_bytes=len(STATES[0]) - 1).state(at_limit)


def test_a_bad_frame_in_a_batch_load_fails_only_its_own_item() -> None:
    """As in the Go, TypeScript and Java clients: the other checkpoints of the batch were delivered intact."""
    from cairn_client._shared import batch_load_results

    good = pb.Checkpoint(thread_id="t", checkpoint_id="a", state=zstandard.ZstdCompressor().compress(STATES[0]),
                         state_encoding=ZSTD, state_size_bytes=len(STATES[0]))
    bad = pb.Checkpoint(thread_id="t", checkpoint_id="b", state=b"\x28\xb5\x2f\xfd garbage", state_encoding=ZSTD,
                        state_size_bytes=len(STATES[0]))
    resp = pb.BatchLoadResponse(results=[
        pb.BatchLoadResult(load=pb.LoadResponse(checkpoint=good)),
        pb.BatchLoadResult(load=pb.LoadResponse(checkpoint=bad)),
        pb.BatchLoadResult(error=pb.ItemError(code=5, message="no such checkpoint")),
    ])
    first, second, third = batch_load_results(resp, StateWire(True))
    assert not isinstance(first, Exception) and first.state == STATES[0]
    assert isinstance(second, DataLoss) and second.reason == "STATE_ENCODING" and "'b'" in str(second)
    assert isinstance(third, NotFound)

def test_a_server_with_a_dictionary_recompresses_small_states_and_keeps_large_frames(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A dictionary shrinks small states by 13-30% and a 36 KB one by ~1% (codec.DICTIONARY_WORTH_BELOW_BYTES):
    a small state the client compressed is compressed again with it, a large one is stored as the client sent
    it (issue 32). A dictionary row goes out decoded, since clients have no dictionaries."""
    from tests.harness import CairnProcess
    from tests.test_dictionary import STATES as SAMPLES
    from tests.test_dictionary import _codecs_sqlite, dict_cli

    path = str(tmp_path / "cairn.db")
    with CairnProcess.embedded("--sqlite-path", path, "--log-level", "WARNING") as server:
        with CheckpointClient(server.target) as c:
            for state in SAMPLES[:40]:
                c.save("samples", state)
        assert dict_cli("train", "--sqlite-path", path, "--samples", "100").returncode == 0
        server.stop()
        server.start()  # now compressing with the dictionary
        with CheckpointClient(server.target, compress_states=True) as c:
            c.save("warm-up", STATES[0])
            small = json.dumps({"messages": ["short"] * 40, "step": 3}).encode()
            saved = c.save("dict", small)
            assert _codecs_sqlite(path)[saved.checkpoint_id] == 2  # the client's frame was not kept
            assert c.load("dict").state == small
            large = c.save("large", STATES[1])
            assert _codecs_sqlite(path)[large.checkpoint_id] == 1  # the client's frame, as sent
            assert c.load("large").state == STATES[1]
        channel, s = stub(server.target)
        with channel:
            got = s.Load(pb.LoadRequest(thread_id="dict", accept_state_encodings=[ZSTD])).checkpoint
        assert got.state_encoding == pb.STATE_ENCODING_UNSPECIFIED and got.state == small
