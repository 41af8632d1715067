"""Proto <-> record conversion for the RPC methods, and the hand-built framing of BatchLoad's response.

Records (storage/records.py) carry states as the store keeps them; the store decodes them (TieredStore.
decoded_state, write_value) and this module only places bytes into messages. A state goes out as its stored
zstd frame only when the client accepts zstd and the row is plain zstd (no dictionary, no encryption), which any
client can decompress.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2

from cairn import protowire
from cairn.errors import CairnError
from cairn.v1 import checkpoint_store_pb2 as pb

from .calls import item_error
from .codec import CODEC_ZSTD
from .storage.records import SaveItem, SaveOutcome, SaveStatus, StoredCheckpoint, ThreadSummary

ACCEPTED_ENCODINGS = [pb.STATE_ENCODING_ZSTD]  # SaveResponse.accepted_state_encodings
ITEM_ERROR_BYTES = 640  # room kept per BatchLoad item for its error (ids are at most --max-id-bytes, 512)


def struct(json_text: str) -> struct_pb2.Struct:
    """A Struct from stored metadata JSON."""
    s = struct_pb2.Struct()
    doc = json.loads(json_text)
    if doc:
        s.update(doc)
    return s


def set_time(ts: Any, dt: datetime | None) -> None:
    """Set a Timestamp field, leaving it unset for None."""
    if dt is not None:
        ts.FromDatetime(dt)


def accepts_zstd(request: pb.LoadRequest | pb.ListRequest) -> bool:
    """Whether the client asked for states as zstd frames."""
    return pb.STATE_ENCODING_ZSTD in request.accept_state_encodings


def sends_zstd(cp: StoredCheckpoint, accepted: bool) -> bool:
    """Whether a read that `accepted` zstd gets the stored frame: only a plain zstd row's (no dictionary, no
    encryption), which any client can decompress."""
    return accepted and cp.codec == CODEC_ZSTD


def checkpoint_to_proto(cp: StoredCheckpoint, state: bytes | None, zstd: bool = False) -> pb.Checkpoint:
    """`state` is the decoded (checked) state, None to leave it out; the stored frame goes instead when
    sends_zstd says so."""
    out = pb.Checkpoint(
        thread_id=cp.thread_id,
        namespace=cp.namespace,
        checkpoint_id=cp.checkpoint_id,
        parent_checkpoint_id=cp.parent_checkpoint_id,
        state_type=cp.state_type,
        sequence=cp.sequence,
        node_name=cp.node_name,
        next_nodes=cp.next_nodes,
        state_size_bytes=cp.raw_size,
        stored_size_bytes=cp.stored_size,
        metadata=struct(cp.metadata_json),
    )
    if state is not None:
        if sends_zstd(cp, zstd):
            out.state, out.state_encoding = cp.state, pb.STATE_ENCODING_ZSTD
        else:
            out.state = state
    set_time(out.created_at, cp.created_at)
    return out


def write_to_proto(w: Any, value: bytes) -> pb.PendingWrite:
    """A stored write with its value as the client wrote it (TieredStore.write_value)."""
    return pb.PendingWrite(
        task_id=w.task_id,
        task_path=w.task_path,
        idx=w.idx,
        channel=w.channel,
        value_type=w.value_type,
        value=value,
        thread_id=w.thread_id,
        namespace=w.namespace,
        checkpoint_id=w.checkpoint_id,
    )


def save_response(item: SaveItem, outcome: SaveOutcome) -> pb.SaveResponse:
    """The answer to one committed save."""
    resp = pb.SaveResponse(
        checkpoint_id=item.checkpoint.checkpoint_id,
        sequence=outcome.sequence,
        already_existed=outcome.status is SaveStatus.EXISTS,
        stored_size_bytes=item.checkpoint.stored_size,
        accepted_state_encodings=ACCEPTED_ENCODINGS,
    )
    set_time(resp.created_at, outcome.created_at)
    return resp


def thread_info(t: ThreadSummary) -> pb.ThreadInfo:
    """One ListThreads entry."""
    info = pb.ThreadInfo(
        thread_id=t.thread_id,
        checkpoint_count=t.checkpoint_count,
        head_checkpoint_id=t.head_checkpoint_id,
        head_metadata=struct(t.head_metadata_json),
        head_node_name=t.head_node_name,
        head_next_nodes=t.head_next_nodes,
    )
    set_time(info.updated_at, t.updated_at)
    return info


# -- BatchLoad framing ---------------------------------------------------------------------------------
# BatchLoadResponse.results = 1 holds BatchLoadResult{load = 1 | error = 2}. The wire format allows a
# sub-message as any length-delimited bytes, so each result is framed around a LoadResponse already serialized
# (memoized with the near cache's copy) instead of being parsed and built again.


def framed_load(load: bytes) -> tuple[bytes, bytes, bytes]:
    """BatchLoadResponse.results[i] = BatchLoadResult{load: `load`}, as the pieces to join."""
    inner = protowire.field_header(1, len(load))
    outer = protowire.field_header(1, len(inner) + len(load))
    return outer, inner, load


def framed_error(err: CairnError) -> tuple[bytes, bytes]:
    """BatchLoadResponse.results[i] = BatchLoadResult{error: ...}, as the pieces to join."""
    body = protowire.field_bytes(2, item_error(err).SerializeToString())
    return protowire.field_header(1, len(body)), body
