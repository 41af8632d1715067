"""Pure helpers shared by the sync and async clients: requests, conversions, channel set-up."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import zstandard
from google.protobuf import struct_pb2

from cairn.v1 import checkpoint_store_pb2 as pb

from . import _json
from .errors import CairnError, DataLoss, from_item_error
from .ids import uuid7
from .types import Checkpoint, Page, PendingWrite, SaveResult, ThreadInfo, ThreadPage

SERVICE = "cairn.v1.CheckpointStore"

# Retry UNAVAILABLE with backoff. Saves are safe to retry: the client picks the checkpoint id,
# and the server treats an identical re-save as success.
SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


@dataclass(frozen=True)
class TLS:
    """TLS settings: root CA (PEM) to trust, and a client certificate for mutual TLS."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name_override: str | None = None


def channel_args(
    target: str, tls: TLS | None, token: str | None, max_message_bytes: int
) -> tuple[str, grpc.ChannelCredentials | None, list[tuple[str, Any]]]:
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    creds = None
    if tls is not None:
        creds = grpc.ssl_channel_credentials(tls.root_certificates, tls.private_key, tls.certificate_chain)
        if tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", tls.server_name_override))
        if token:
            creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return target, creds, options


def call_metadata(token: str | None, tls: TLS | None) -> tuple[tuple[str, str], ...] | None:
    """Over plaintext (a sidecar's unix socket, tests) the token goes as plain metadata."""
    if token and tls is None:
        return (("authorization", f"Bearer {token}"),)
    return None


# Struct numbers are doubles: integers beyond this magnitude would be stored rounded.
MAX_EXACT_INT = 2**53 - 1


def to_struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """`value` as a Struct; ValueError for an integer a double cannot hold exactly (rather than round it)."""
    s = struct_pb2.Struct()
    if value:
        _check_ints(value, "")
        s.update(value)
    return s


_SCALARS = frozenset((str, float, bool, type(None)))


def _check_ints(value: Any, path: str) -> None:
    if type(value) in _SCALARS:  # most metadata values; spares the Mapping ABC check below
        return
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
        raise ValueError(
            f"metadata value at {path!r} is the integer {value}, beyond ±(2^53−1): metadata travels as "
            "google.protobuf.Struct, whose numbers are doubles, so it would be stored rounded; store it as a string"
        )
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_ints(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_ints(v, f"{path}.{i}" if path else str(i))


def from_struct(s: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python values, as json_format.MessageToDict reads it, except that integral numbers
    within ±(2^53−1) come back as int (Struct numbers are doubles)."""
    return {k: _from_value(v) for k, v in s.fields.items()}


def _from_value(v: struct_pb2.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        n = v.number_value
        if n.is_integer():
            return int(n) if abs(n) <= MAX_EXACT_INT else n
        if n != n or n in (math.inf, -math.inf):  # as json_format refuses them: JSON has no such number
            raise ValueError(f"Fail to serialize {n} for Value.number_value, which would parse as string_value")
        return n
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return {k: _from_value(x) for k, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [_from_value(x) for x in v.list_value.values]
    return None  # null_value, or no kind set


def encode_state(state: Any, state_type: str | None) -> tuple[bytes, str]:
    if isinstance(state, (bytes, bytearray, memoryview)):
        return bytes(state), state_type if state_type is not None else "json"
    if state_type not in (None, "json"):
        raise TypeError(f"state must be bytes when state_type is {state_type!r}")
    return _json.dumps(state), "json"


def save_request(
    thread_id: str,
    state: Any,
    *,
    namespace: str = "",
    checkpoint_id: str | None = None,
    parent_checkpoint_id: str = "",
    state_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    node_name: str = "",
    next_nodes: Sequence[str] = (),
    expected_head_id: str | None = None,
    expect_empty: bool = False,
    replace_existing: bool = False,
    run_lease: Any = None,
) -> pb.SaveRequest:
    """run_lease: a runs.RunLease; the save then commits only while that lease is current (fencing)."""
    raw, stype = encode_state(state, state_type)
    if metadata:
        _check_ints(metadata, "")
    # A dict (its metadata too) is built in place in the request; a Checkpoint message would be copied in whole.
    return pb.SaveRequest(
        checkpoint={
            "thread_id": thread_id,
            "namespace": namespace,
            "checkpoint_id": checkpoint_id or uuid7(),
            "parent_checkpoint_id": parent_checkpoint_id or "",
            "state": raw,
            "state_type": stype,
            "metadata": metadata or {},
            "node_name": node_name,
            "next_nodes": next_nodes,
        },
        expected_head_id=expected_head_id or "",
        expect_empty=expect_empty,
        replace_existing=replace_existing,
        run_lease=run_lease.to_proto() if run_lease is not None else None,
    )


def save_result(r: pb.SaveResponse) -> SaveResult:
    return SaveResult(
        checkpoint_id=r.checkpoint_id,
        sequence=r.sequence,
        created_at=_when(r, "created_at"),
        already_existed=r.already_existed,
        stored_size_bytes=r.stored_size_bytes,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _when(message: Any, field: str) -> datetime | None:
    """A Timestamp field as an aware UTC datetime (to the microsecond, as Timestamp.ToDatetime), or None when
    unset."""
    if not message.HasField(field):
        return None
    ts = getattr(message, field)
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def write_from_proto(w: pb.PendingWrite) -> PendingWrite:
    return PendingWrite(
        task_id=w.task_id,
        channel=w.channel,
        value=w.value,
        value_type=w.value_type,
        idx=w.idx,
        task_path=w.task_path,
        thread_id=w.thread_id,
        namespace=w.namespace,
        checkpoint_id=w.checkpoint_id,
    )


DEFAULT_MAX_MESSAGE_BYTES = 80 << 20  # a state of the server's default limit (64 MiB) with its metadata fits


class StateWire:
    """compress_states=True: states travel zstd-compressed, so the server neither compresses saves nor sends
    (or decompresses) the full bytes of loads. Saves are compressed only after a SaveResponse said the server
    accepts it (an older server would store the frame as the state); the option is for deployments where every
    server the client may reach accepts it. Loads ask for zstd and take either answer.

    Compression pays in bytes on the network and in the server's CPU (it stores the client's frame as is), and
    costs the client: zstd level 1 is ~0.7x the CPU of level 3 for a frame a few percent larger. States of a
    state_type that does not compress (encrypted by the serde, already compressed) go as they are for a while
    after a frame of one saved less than a tenth."""

    MIN_BYTES = 256  # below this compression costs more than it saves (the server's rule too)
    PAYS_RATIO = 0.9  # a frame larger than this share of its state does not pay for its CPU
    SKIP_SAVES = 64  # saves of such a state_type sent as they are before compression is tried again
    MAX_SKIPPED_TYPES = 64  # state types are chosen by callers: bound what is remembered about them

    def __init__(self, enabled: bool, level: int = 1, max_state_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.enabled = enabled
        self.level = level
        self._skip: dict[str, int] = {}  # state_type -> saves still to send as they are
        # no larger state could arrive uncompressed either; zstd allocates what a frame declares, so check first
        self.max_state_bytes = max_state_bytes
        self.server_accepts = False
        self.accept: list[int] = [pb.STATE_ENCODING_ZSTD] if enabled else []
        self._local = threading.local()  # zstd contexts are not thread-safe

    def _ctx(self) -> threading.local:
        local = self._local
        if not hasattr(local, "c"):
            local.c = zstandard.ZstdCompressor(level=self.level)
            local.d = zstandard.ZstdDecompressor()
        return local

    def outgoing(self, req: pb.SaveRequest, owned: bool = False) -> pb.SaveRequest:
        """`req`, or a request with its state compressed: `req` itself when `owned` (the client built it), else a
        copy (the caller's request is left as it was)."""
        cp = req.checkpoint
        if not self.server_accepts or cp.state_encoding:
            return req
        state = cp.state
        if len(state) < self.MIN_BYTES:
            return req
        stype = cp.state_type
        if self._skip:
            left = self._skip.get(stype)
            if left is not None:
                if left <= 1:
                    del self._skip[stype]
                else:
                    self._skip[stype] = left - 1
                return req
        frame = self._ctx().c.compress(state)
        if len(frame) > len(state) * self.PAYS_RATIO:
            if len(self._skip) >= self.MAX_SKIPPED_TYPES:
                self._skip.clear()
            self._skip[stype] = self.SKIP_SAVES
            if len(frame) >= len(state):
                return req
        out = req
        if not owned:
            out = pb.SaveRequest()
            out.CopyFrom(req)
        out.checkpoint.state, out.checkpoint.state_encoding = frame, pb.STATE_ENCODING_ZSTD
        return out

    def saved(self, resp: pb.SaveResponse) -> pb.SaveResponse:
        """Follow the latest answer: a server that stops listing zstd (a rollback) stops getting frames."""
        if self.enabled:
            self.server_accepts = pb.STATE_ENCODING_ZSTD in resp.accepted_state_encodings
        return resp

    def state(self, c: pb.Checkpoint) -> bytes:
        """The state of a returned checkpoint; DataLoss when the server's frame is not what it says."""
        if c.state_encoding == pb.STATE_ENCODING_UNSPECIFIED:
            return c.state
        where = f"checkpoint {c.checkpoint_id!r} of thread {c.thread_id!r}"
        if c.state_encoding != pb.STATE_ENCODING_ZSTD:
            raise DataLoss(f"{where}: the server sent state_encoding {c.state_encoding}, which was not asked for",
                           grpc.StatusCode.DATA_LOSS, "STATE_ENCODING")
        try:
            declared = zstandard.get_frame_parameters(c.state).content_size
            if declared != c.state_size_bytes:
                raise zstandard.ZstdError(f"the frame declares {declared} bytes, state_size_bytes {c.state_size_bytes}")
            if declared > self.max_state_bytes:
                raise zstandard.ZstdError(f"the frame declares {declared} bytes, over this client's "
                                          f"max_message_bytes {self.max_state_bytes}")
            return self._ctx().d.decompress(c.state)  # type: ignore[no-any-return]
        except zstandard.ZstdError as exc:
            raise DataLoss(f"{where}: the zstd-encoded state does not decompress ({exc})",
                           grpc.StatusCode.DATA_LOSS, "STATE_ENCODING") from None


IDENTITY = StateWire(False)


def checkpoint_from_proto(
    c: pb.Checkpoint, writes: Iterable[pb.PendingWrite] = (), wire: StateWire = IDENTITY
) -> Checkpoint:
    return Checkpoint(
        thread_id=c.thread_id,
        namespace=c.namespace,
        checkpoint_id=c.checkpoint_id,
        parent_checkpoint_id=c.parent_checkpoint_id,
        state=wire.state(c),
        state_type=c.state_type,
        metadata=from_struct(c.metadata),
        created_at=_when(c, "created_at"),
        sequence=c.sequence,
        node_name=c.node_name,
        next_nodes=list(c.next_nodes),
        state_size_bytes=c.state_size_bytes,
        stored_size_bytes=c.stored_size_bytes,
        pending_writes=[write_from_proto(w) for w in writes],
    )


def load_result(r: pb.LoadResponse, wire: StateWire = IDENTITY) -> Checkpoint:
    return checkpoint_from_proto(r.checkpoint, r.pending_writes, wire)


def batch_load_request(loads: Sequence[tuple[str, str, str | None]], wire: StateWire) -> pb.BatchLoadRequest:
    return pb.BatchLoadRequest(
        loads=[
            pb.LoadRequest(thread_id=t, namespace=n, checkpoint_id=c or "", accept_state_encodings=wire.accept)
            for t, n, c in loads
        ]
    )


def batch_load_results(resp: pb.BatchLoadResponse, wire: StateWire) -> list[Checkpoint | CairnError]:
    """One checkpoint or error per load, in order. A state that does not decode is that item's DataLoss, as the
    server's own per-item errors are: the other items are still good."""
    out: list[Checkpoint | CairnError] = []
    for r in resp.results:
        if not r.HasField("load"):
            out.append(from_item_error(r.error))
            continue
        try:
            out.append(load_result(r.load, wire))
        except DataLoss as err:
            out.append(err)
    return out


def list_request(
    thread_id: str = "",
    *,
    namespace: str | None = None,
    metadata_filter: Mapping[str, Any] | None = None,
    before: str | None = None,
    page_size: int = 0,
    page_token: str = "",
    include_state: bool = False,
    include_writes: bool = False,
    accept: Sequence[int] = (),
) -> pb.ListRequest:
    req = pb.ListRequest(
        accept_state_encodings=list(accept),
        thread_id=thread_id,
        before_checkpoint_id=before or "",
        page_size=page_size,
        page_token=page_token,
        include_state=include_state,
        include_writes=include_writes,
    )
    if namespace is not None:
        req.namespace = namespace
    if metadata_filter:
        req.metadata_filter.CopyFrom(to_struct(metadata_filter))
    return req


def list_result(r: pb.ListResponse, wire: StateWire = IDENTITY) -> Page:
    by_cp: dict[tuple[str, str, str], list[pb.PendingWrite]] = {}
    for w in r.pending_writes:
        by_cp.setdefault((w.thread_id, w.namespace, w.checkpoint_id), []).append(w)
    return Page(
        checkpoints=[
            checkpoint_from_proto(c, by_cp.get((c.thread_id, c.namespace, c.checkpoint_id), ()), wire)
            for c in r.checkpoints
        ],
        next_page_token=r.next_page_token,
    )


def threads_result(r: pb.ListThreadsResponse) -> ThreadPage:
    return ThreadPage(
        threads=[
            ThreadInfo(
                thread_id=t.thread_id,
                checkpoint_count=t.checkpoint_count,
                head_checkpoint_id=t.head_checkpoint_id,
                head_metadata=from_struct(t.head_metadata),
                updated_at=_when(t, "updated_at"),
                head_node_name=t.head_node_name,
                head_next_nodes=list(t.head_next_nodes),
            )
            for t in r.threads
        ],
        next_page_token=r.next_page_token,
    )


WriteLike = tuple[str, Any] | tuple[str, str, Any] | PendingWrite


def writes_request(
    thread_id: str,
    checkpoint_id: str,
    task_id: str,
    writes: Sequence[WriteLike],
    *,
    namespace: str = "",
    task_path: str = "",
    replace: bool = False,
    run_lease: Any = None,
) -> pb.PutWritesRequest:
    """writes: (channel, value) with JSON values, (channel, value_type, bytes), or PendingWrite."""
    out = []
    for idx, w in enumerate(writes):
        if isinstance(w, PendingWrite):
            out.append(pb.Write(idx=w.idx, channel=w.channel, value_type=w.value_type, value=w.value))
        elif len(w) == 3:
            out.append(pb.Write(idx=idx, channel=w[0], value_type=w[1], value=w[2]))  # type: ignore[misc]
        else:
            raw, vtype = encode_state(w[1], None)
            out.append(pb.Write(idx=idx, channel=w[0], value_type=vtype, value=raw))
    return pb.PutWritesRequest(
        thread_id=thread_id,
        namespace=namespace,
        checkpoint_id=checkpoint_id,
        task_id=task_id,
        task_path=task_path,
        writes=out,
        replace=replace,
        run_lease=run_lease.to_proto() if run_lease is not None else None,
    )


def prune_request(thread_ids: Sequence[str], keep_latest: int | None) -> pb.PruneRequest:
    if keep_latest is None:
        return pb.PruneRequest(thread_ids=list(thread_ids), strategy=pb.PRUNE_STRATEGY_DELETE_ALL)
    return pb.PruneRequest(
        thread_ids=list(thread_ids), strategy=pb.PRUNE_STRATEGY_KEEP_LATEST, keep_count=keep_latest
    )
