"""Hand-built protobuf wire bytes for the hot request paths.

A Save of a ~37 KB state would otherwise build a message (one copy of the state), then serialize it (another).
Here the constant part of each Checkpoint (state, state_type, metadata, node, next nodes) is encoded once per
state, and every request is one b"".join of a few short id fields plus that tail: the wire format allows the
fields of a message in any order, so the result parses exactly like the message built field by field
(tests/test_bench_smoke.py checks this). Requests go through multicallables with no serializer.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import struct_pb2

from cairn.v1 import checkpoint_store_pb2 as pb

from cairn.protowire import field_bytes, varint

SERVICE = "/cairn.v1.CheckpointStore/"


def field_str(number: int, text: str) -> bytes:
    return field_bytes(number, text.encode()) if text else b""


def field_varint(number: int, value: int) -> bytes:
    """An int32/int64/enum/bool field; negative numbers take 10 bytes (two's complement), as protobuf writes them."""
    return varint(number << 3) + varint(value & 0xFFFF_FFFF_FFFF_FFFF) if value else b""


def checkpoint_tail(
    state: bytes,
    *,
    state_type: str = "json",
    metadata: dict | None = None,
    node_name: str = "",
    next_nodes: Sequence[str] = (),
) -> bytes:
    """Checkpoint fields 5, 6, 7, 10, 11: everything of a saved checkpoint except its ids."""
    parts = [field_bytes(5, state) if state else b"", field_str(6, state_type)]
    if metadata:
        s = struct_pb2.Struct()
        s.update(metadata)
        parts.append(field_bytes(7, s.SerializeToString(deterministic=True)))
    parts.append(field_str(10, node_name))
    parts.extend(field_str(11, n) for n in next_nodes)
    return b"".join(parts)


def save_request(thread_field: bytes, checkpoint_id: str, parent_id: str, tail: bytes) -> bytes:
    """SaveRequest{checkpoint: Checkpoint{thread_id, checkpoint_id, parent_checkpoint_id, ...tail}} as bytes.

    thread_field is field_str(1, thread_id), encoded once per thread."""
    cid = field_str(3, checkpoint_id)
    parent = field_str(4, parent_id)
    size = len(thread_field) + len(cid) + len(parent) + len(tail)
    return b"".join((b"\x0a", varint(size), thread_field, cid, parent, tail))


def save_stream_request(save_request_bytes: bytes) -> bytes:
    """SaveStreamRequest{save: ...}. Copies the save once more; the stream path pays that, unary doesn't."""
    return b"".join((b"\x0a", varint(len(save_request_bytes)), save_request_bytes))


def _accept(zstd: bool) -> list[int]:
    return [pb.STATE_ENCODING_ZSTD] if zstd else []


def load_request(thread_id: str, namespace: str = "", checkpoint_id: str = "", accept_zstd: bool = False) -> bytes:
    return pb.LoadRequest(
        thread_id=thread_id, namespace=namespace, checkpoint_id=checkpoint_id,
        accept_state_encodings=_accept(accept_zstd),
    ).SerializeToString()


def batch_load_request(load_requests: Sequence[bytes]) -> bytes:
    """BatchLoadRequest{loads: [...]} from serialized LoadRequests."""
    return b"".join(field_bytes(1, r) for r in load_requests)


def list_request(thread_id: str, page_size: int, include_state: bool, accept_zstd: bool = False) -> bytes:
    return pb.ListRequest(
        thread_id=thread_id, page_size=page_size, include_state=include_state,
        accept_state_encodings=_accept(accept_zstd and include_state),
    ).SerializeToString()


def write_field(idx: int, channel: str, value_type: str, value: bytes) -> bytes:
    """One PutWritesRequest.writes item (field 6): Write{idx, channel, value_type, value}."""
    body = b"".join((field_varint(1, idx), field_str(2, channel), field_str(3, value_type),
                     field_bytes(4, value) if value else b""))
    return field_bytes(6, body)


def put_writes_request(thread_field: bytes, checkpoint_id: str, task_id: str, task_path: str, writes: bytes) -> bytes:
    """PutWritesRequest{thread_id, checkpoint_id, task_id, task_path, writes...} from write_field()s."""
    return b"".join((thread_field, field_str(3, checkpoint_id), field_str(4, task_id), field_str(5, task_path),
                     writes))
