"""The gRPC layer: decode and check a request, call the store, encode the answer.

Errors are mapped here, once: a CairnError becomes its status code with a
google.rpc.ErrorInfo detail; anything else is a bug, logged with its traceback
and answered with a generic INTERNAL that leaks nothing.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, struct_pb2
from google.rpc import error_details_pb2, status_pb2

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
from cairn_client.ids import uuid7

from . import wire
from .auth import Authenticator
from .budget import Budgets, ByteLimit, StreamWindow
from .codec import CODEC_ZSTD, WRITE_MAGIC
from .config import Config
from .errors import DOMAIN, CairnError, FailedPrecondition, InvalidArgument, NotFound
from .logs import request_context
from .runs_service import RunRpcs
from .storage.base import (
    ListQuery,
    PageToken,
    SaveItem,
    StoredCheckpoint,
    StoredWrite,
    WritesItem,
    content_hash,
    fingerprint,
)
from .storage.tiered import Loaded, TieredStore
from .validation import Limits

log = logging.getLogger("cairn.rpc")


def _configured_tracer() -> tuple[Any, Any] | None:
    """A tracer and the span kind to use when an OpenTelemetry SDK is configured (e.g. `opentelemetry-instrument
    cairn serve` with OTEL_* env vars); else None: spans through the no-op proxy still cost microseconds a call."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - depends on what is installed
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer("cairn"), trace.SpanKind.SERVER


_REQUEST_PREFIX = os.urandom(4).hex()
_request_numbers = itertools.count(1)

R = TypeVar("R")
_ACCEPTED_ENCODINGS = [pb.STATE_ENCODING_ZSTD]  # SaveResponse.accepted_state_encodings
_STREAM_BATCH = 256  # most saves of one stream committed in one transaction
_ITEM_ERROR_BYTES = 640  # room kept per BatchLoad item for its error (ids are at most --max-id-bytes, 512)


class Malformed:
    """What the request deserializer hands over when the bytes are not the expected message."""

    def __init__(self, message_name: str, error: Exception) -> None:
        self.message_name = message_name
        self.error = error

    def invalid(self) -> InvalidArgument:
        return InvalidArgument(
            "request", f"the request is not a valid {self.message_name} message ({self.error}); "
            "send a message built from proto/cairn/v1/checkpoint_store.proto"
        )


def safe_deserializer(message_type: Any) -> Callable[[bytes], Any]:
    """FromString that turns garbage into Malformed, so it becomes INVALID_ARGUMENT instead of gRPC's INTERNAL."""
    name = message_type.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except Exception as exc:  # DecodeError, RecursionError (nesting), anything the parser raises
            return Malformed(name, exc)

    return parse


def response_serializer(response_type: Any) -> Callable[[Any], bytes]:
    """SerializeToString, except that a response already in wire format (bytes: memoized, or joined from
    memoized parts) goes out as it is."""
    serialize = response_type.SerializeToString

    def dump(response: Any) -> bytes:
        return response if type(response) is bytes else serialize(response)  # type: ignore[no-any-return]

    return dump


def status_details(err: CairnError) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=err.code.value[0], message=err.message, details=[detail])


def item_error(err: CairnError) -> pb.ItemError:
    return pb.ItemError(code=err.code.value[0], message=err.message, reason=err.reason, metadata=err.metadata)


def rpc(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Map errors of one unary RPC at the boundary; count it, time it, log failures with context."""
    method = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: CheckpointStoreService, request: Any, context: grpc.aio.ServicerContext) -> R:
        started = time.perf_counter()
        fields = CallFields(context, method, getattr(request, "thread_id", "") or "")
        request_context.set(fields)
        code = "OK"
        counted = False

        def count() -> None:
            # before an error status is sent: a client that sees the status and then scrapes must see the count
            nonlocal counted
            if not counted and self.metrics is not None:
                self.metrics.rpc(method, code, time.perf_counter() - started)
            counted = True

        span = None
        if self.tracing is not None:
            tracer, kind = self.tracing
            span = tracer.start_span(f"cairn.v1.CheckpointStore/{method}", kind=kind)
            span.set_attribute("rpc.system", "grpc")
            span.set_attribute("cairn.thread_id", getattr(request, "thread_id", "") or "")
        try:
            if isinstance(request, Malformed):
                raise request.invalid()
            return await fn(self, request, context)
        except CairnError as err:
            code = err.code.name
            if err.code == grpc.StatusCode.UNAVAILABLE:
                self.store.stats["cold_errors"] += 1
            log.log(
                logging.WARNING if err.code in _SERVER_SIDE else logging.DEBUG,
                "%s failed: %s %s", method, code, err.message,
            )
            count()
            await _abort(context, err)
        except Exception:
            code = "INTERNAL"
            incident = uuid.uuid4().hex[:12]
            log.exception("unexpected error in %s (incident %s)", method, incident)
            count()
            await context.abort(grpc.StatusCode.INTERNAL, f"internal server error (incident {incident})")
        finally:
            fields.ended()
            count()
            if span is not None:
                span.set_attribute("rpc.grpc.status_code", code)
                span.set_attribute("cairn.tenant", request_context.get().get("tenant", ""))
                span.end()
        raise AssertionError("unreachable")  # context.abort raises

    return wrapper


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_SERVER_SIDE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS, grpc.StatusCode.INTERNAL)


class CallFields(Mapping[str, str]):
    """One call's log fields (logs.request_context). The request id is looked up in the call's metadata only when
    a record asks for it: on every call it cost ~2% of a hot Load's server CPU. Each call has its own."""

    __slots__ = ("_context", "_fields")

    def __init__(self, context: grpc.aio.ServicerContext, method: str, thread_id: str) -> None:
        self._context: grpc.aio.ServicerContext | None = context
        self._fields = {"method": method, "thread_id": thread_id}

    def _all(self) -> dict[str, str]:
        if self._context is not None:
            self._fields["request_id"], self._context = _request_id(self._context), None
        return self._fields

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def set_tenant(self, tenant: str) -> None:
        self._fields["tenant"] = tenant

    def ended(self) -> None:
        """Tasks the call started (a group commit, the lease renewer) keep these fields: not the call itself."""
        self._context = None


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return str(value)[:64]
    return f"{_REQUEST_PREFIX}-{next(_request_numbers):x}"  # unique per process run, cheaper than a uuid4


async def _abort(context: grpc.aio.ServicerContext, err: CairnError) -> None:
    details = status_details(err).SerializeToString()
    await context.abort(err.code, err.message, trailing_metadata=(("grpc-status-details-bin", details),))


def _struct(json_text: str) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    doc = json.loads(json_text)
    if doc:
        s.update(doc)
    return s


def _accepts_zstd(request: pb.LoadRequest | pb.ListRequest) -> bool:
    return pb.STATE_ENCODING_ZSTD in request.accept_state_encodings


def _sends_zstd(cp: StoredCheckpoint, accepted: bool) -> bool:
    """Whether a read that `accepted` zstd gets the stored frame: only a plain zstd row's (no dictionary, no
    encryption), which any client can decompress."""
    return accepted and cp.codec == CODEC_ZSTD


def _thread_position(pos: list[Any], limits: Limits) -> tuple[datetime, str]:
    """A ListThreads page token's (updated_at, thread_id), each checked as strictly as a request field: the
    token is client input, and an edited one must be INVALID_ARGUMENT on every store."""
    invalid = InvalidArgument("page_token", "page_token is not one this server issued; pass next_page_token unchanged")
    if len(pos) != 2 or not isinstance(pos[0], str) or not isinstance(pos[1], str):
        raise invalid
    try:
        updated = datetime.fromisoformat(pos[0])
        limits.id("page_token", pos[1], required=True)
    except (ValueError, InvalidArgument) as exc:
        raise invalid from exc
    if updated.tzinfo is None:
        raise invalid
    return updated, pos[1]


def _set_time(ts: Any, dt: datetime | None) -> None:
    if dt is not None:
        ts.FromDatetime(dt)


class CheckpointStoreService(RunRpcs, pb_grpc.CheckpointStoreServicer):
    def handlers(self) -> grpc.GenericRpcHandler:
        """The service's method handlers, with deserializers that never fail (see Malformed)."""
        service = pb.DESCRIPTOR.services_by_name["CheckpointStore"]
        table: dict[str, grpc.RpcMethodHandler] = {}
        for method in service.methods:
            request_type = getattr(pb, method.input_type.name)
            response_type = getattr(pb, method.output_type.name)
            kind = grpc.stream_stream_rpc_method_handler if method.client_streaming else grpc.unary_unary_rpc_method_handler
            table[method.name] = kind(
                getattr(self, method.name),
                request_deserializer=safe_deserializer(request_type),
                response_serializer=response_serializer(response_type),
            )
        return grpc.method_handlers_generic_handler(service.full_name, table)

    def __init__(
        self, store: TieredStore, config: Config, auth: Authenticator | None = None, metrics: Any = None
    ) -> None:
        self.store = store
        self.config = config
        self.limits = Limits(config)
        self.budgets = Budgets.from_config(config)
        self.stream_bytes = ByteLimit(self.budgets.inflight_stream_bytes)  # shared by every SaveStream
        self.auth = auth or Authenticator()
        self.metrics = metrics
        self.tracing = _configured_tracer()
        self._init_runs()

    # -- conversions -------------------------------------------------------

    def _tenant(self, context: grpc.aio.ServicerContext) -> str:
        tenant = self.auth.tenant(context)
        fields = request_context.get()
        if isinstance(fields, CallFields):
            fields.set_tenant(tenant)
        else:  # a streaming call: no per-call fields of its own yet
            request_context.set({**fields, "tenant": tenant})
        return tenant

    def _to_proto(self, cp: StoredCheckpoint, state: bytes | None, zstd: bool = False) -> pb.Checkpoint:
        """`state` is the decoded (checked) state; the stored frame goes instead when _sends_zstd says so."""
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
            metadata=_struct(cp.metadata_json),
        )
        if state is not None:
            if _sends_zstd(cp, zstd):
                out.state, out.state_encoding = cp.state, pb.STATE_ENCODING_ZSTD
            else:
                out.state = state
        _set_time(out.created_at, cp.created_at)
        return out

    def _write_to_proto(self, w: StoredWrite, tenant: str) -> pb.PendingWrite:
        return pb.PendingWrite(
            task_id=w.task_id,
            task_path=w.task_path,
            idx=w.idx,
            channel=w.channel,
            value_type=w.value_type,
            value=self.store.codec.open_write(w.value, tenant, (w.thread_id, w.namespace, w.checkpoint_id),
                                              w.task_id, w.idx),
            thread_id=w.thread_id,
            namespace=w.namespace,
            checkpoint_id=w.checkpoint_id,
        )

    def _load_response(self, loaded: Loaded, zstd: bool) -> pb.LoadResponse:
        return pb.LoadResponse(
            checkpoint=self._to_proto(loaded.checkpoint, loaded.state, zstd),
            pending_writes=[self._write_to_proto(w, loaded.checkpoint.tenant) for w in loaded.writes],
        )

    def _save_item(self, tenant: str, req: pb.SaveRequest) -> SaveItem:
        lim = self.limits
        if not req.HasField("checkpoint"):
            raise InvalidArgument("checkpoint", "checkpoint is required")
        c = req.checkpoint
        thread_id = lim.id("checkpoint.thread_id", c.thread_id, required=True)
        namespace = lim.id("checkpoint.namespace", c.namespace, required=False)
        checkpoint_id = lim.id("checkpoint.checkpoint_id", c.checkpoint_id, required=False) or uuid7()
        parent = lim.id("checkpoint.parent_checkpoint_id", c.parent_checkpoint_id, required=False)
        node_name = lim.text("checkpoint.node_name", c.node_name)
        state_type = lim.text("checkpoint.state_type", c.state_type)
        next_nodes = [lim.text("checkpoint.next_nodes", n) for n in c.next_nodes]
        lim.state(len(c.state))
        if self.metrics is not None:
            self.metrics.wire_in.inc(len(c.state))
        raw, packed = self._unpacked_state(c)
        metadata_json = lim.metadata("checkpoint.metadata", c.metadata)
        if req.expected_head_id and req.expect_empty:
            raise InvalidArgument(
                "expect_empty", "set either expected_head_id or expect_empty, not both: a thread has one head"
            )
        expected = lim.id("expected_head_id", req.expected_head_id, required=False) or None
        if req.durability not in (pb.DURABILITY_UNSPECIFIED, pb.DURABILITY_SYNC):
            if req.durability == pb.DURABILITY_ASYNC:
                raise InvalidArgument(
                    "durability", "DURABILITY_ASYNC is not offered by this server yet; use DURABILITY_SYNC"
                )
            raise InvalidArgument("durability", f"unknown durability {req.durability}; use DURABILITY_SYNC")
        self._may_store_plaintext()
        codec, stored, checksum = self.store.codec.encode(raw, tenant, packed, (thread_id, namespace, checkpoint_id))
        stored_cp = StoredCheckpoint(
            tenant=tenant,
            thread_id=thread_id,
            namespace=namespace,
            checkpoint_id=checkpoint_id,
            parent_checkpoint_id=parent,
            state_type=state_type,
            node_name=node_name,
            next_nodes=next_nodes,
            metadata_json=metadata_json,
            codec=codec,
            raw_size=len(raw),
            checksum=checksum,
            content_hash=content_hash(raw, state_type, metadata_json, parent, node_name, next_nodes),
            state=stored,
        )
        return SaveItem(stored_cp, expected, req.expect_empty, req.replace_existing, raw, self.run_lease_of(req))

    def _may_store_plaintext(self) -> None:
        """Refuse to store plaintext in a store that holds encrypted rows, unless --allow-plaintext-saves."""
        if self.store.refuse_plaintext and not self.store.codec.encrypts:
            raise FailedPrecondition(
                "this store holds encrypted rows and this server was started without --encryption-keys, so it "
                "would store states in plaintext; start it with the keys (or --allow-plaintext-saves)",
                reason="ENCRYPTION_REQUIRED",
            )

    def _unpacked_state(self, c: pb.Checkpoint) -> tuple[bytes, bytes | None]:
        """(the state, the client's zstd frame of it if it sent one)."""
        if c.state_encoding == pb.STATE_ENCODING_UNSPECIFIED:
            return c.state, None
        if c.state_encoding != pb.STATE_ENCODING_ZSTD:
            raise InvalidArgument(
                "checkpoint.state_encoding",
                f"unknown state_encoding {c.state_encoding}; use STATE_ENCODING_UNSPECIFIED (identity) or "
                "STATE_ENCODING_ZSTD",
            )
        try:
            return self.store.codec.unframe(c.state, self.limits.state), c.state
        except ValueError as exc:
            raise InvalidArgument(
                "checkpoint.state", f"state_encoding is STATE_ENCODING_ZSTD but the state {exc}"
            ) from None

    def _count_saved(self, item: SaveItem) -> None:
        if self.metrics is not None:
            self.metrics.raw_in.inc(item.checkpoint.raw_size)
            self.metrics.stored.inc(item.checkpoint.stored_size)

    @staticmethod
    def _save_response(item: SaveItem, outcome: Any) -> pb.SaveResponse:
        resp = pb.SaveResponse(
            checkpoint_id=item.checkpoint.checkpoint_id,
            sequence=outcome.sequence,
            already_existed=outcome.status == "exists",
            stored_size_bytes=item.checkpoint.stored_size,
            accepted_state_encodings=_ACCEPTED_ENCODINGS,
        )
        _set_time(resp.created_at, outcome.created_at)
        return resp

    # -- RPCs --------------------------------------------------------------

    @rpc
    async def Save(self, request: pb.SaveRequest, context: grpc.aio.ServicerContext) -> pb.SaveResponse:
        tenant = self._tenant(context)
        item = self._save_item(tenant, request)
        outcome = await self.fenced(tenant, item.lease, self.store.save(item))
        self._count_saved(item)
        return self._save_response(item, outcome)

    async def SaveStream(
        self, request_iterator: AsyncIterator[pb.SaveStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SaveStreamResponse]:
        try:
            tenant = self._tenant(context)
        except CairnError as err:
            await _abort(context, err)
            return
        # Read ahead by bytes (budget.py): the reader holds each request's size in the stream's window until its
        # answer is sent, and reads nothing more while the window (or the servers's in-flight limit) is full.
        window = StreamWindow(self.budgets, self.stream_bytes)
        queue: asyncio.Queue[tuple[pb.SaveStreamRequest, int] | None] = asyncio.Queue()
        ended: list[BaseException] = []

        async def read() -> None:
            try:
                async for req in request_iterator:
                    size = 1 if isinstance(req, Malformed) else req.ByteSize()
                    await window.admit(size)
                    queue.put_nowait((req, size))
            except Exception as exc:  # the client went away mid-stream
                ended.append(exc)
            finally:
                queue.put_nowait(None)

        reader = asyncio.get_running_loop().create_task(read())
        acknowledged = 0
        batch: list[tuple[pb.SaveStreamRequest, int]] = []
        try:
            carried: tuple[pb.SaveStreamRequest, int] | None = None
            done = False
            while not done:
                batch = [carried or await queue.get()]  # type: ignore[list-item]
                carried = None
                if batch[0] is None:
                    break
                size = batch[0][1]
                # A commit takes what has arrived, up to _STREAM_BATCH items and the commit byte limit, so no
                # transaction runs into the cold store's timeout.
                while len(batch) < _STREAM_BATCH and not queue.empty():
                    nxt = queue.get_nowait()
                    if nxt is None:
                        done = True
                        break
                    if size + nxt[1] > self.budgets.commit_batch_bytes:
                        carried = nxt
                        break
                    batch.append(nxt)
                    size += nxt[1]
                responses = await self._save_batch(tenant, [req for req, _ in batch])
                for response, (_, n) in zip(responses, batch, strict=True):
                    yield response
                    acknowledged += 1
                    window.release(n)
                batch = []
            if ended:
                log.info("SaveStream ended by the client after %d acknowledged saves: %s", acknowledged,
                         ended[0] or type(ended[0]).__name__)
        except CairnError as err:  # the cold store failed: end the stream, naming what was not acknowledged
            uncommitted = acknowledged + len(batch)
            log.warning(
                "SaveStream failed after %d acknowledged saves; %d were in the commit that failed, none after them "
                "was committed: %s %s", acknowledged, len(batch), err.code.name, err.message,
            )
            err.message = (
                f"{err.message}. Saves 0..{acknowledged - 1} of this stream were acknowledged; saves "
                f"{acknowledged}..{uncommitted - 1} were in a commit that failed and may or may not have landed; "
                f"no save from {uncommitted} on was committed. Re-send every save from {acknowledged} on: saves "
                "are idempotent by checkpoint id"
            ) if acknowledged else (
                f"{err.message}. No save of this stream was acknowledged; saves 0..{uncommitted - 1} were in a "
                f"commit that failed and may or may not have landed, none after them was committed. Re-send them "
                "all: saves are idempotent by checkpoint id"
            )
            err.metadata.update(acknowledged_saves=str(acknowledged), first_uncommitted_save=str(uncommitted))
            await _abort(context, err)
        except Exception:  # a bug: logged with its traceback, answered without one
            incident = uuid.uuid4().hex[:12]
            log.exception("unexpected error in SaveStream (incident %s)", incident)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal server error (incident {incident})")
        finally:
            reader.cancel()
            window.close()

    async def _save_batch(self, tenant: str, batch: list[pb.SaveStreamRequest]) -> list[pb.SaveStreamResponse]:
        slots: list[pb.SaveStreamResponse | SaveItem] = []
        items: list[SaveItem] = []
        for req in batch:
            try:
                if isinstance(req, Malformed):
                    raise req.invalid()
                item = self._save_item(tenant, req.save)
            except CairnError as err:
                slots.append(pb.SaveStreamResponse(error=item_error(err)))
                continue
            slots.append(item)
            items.append(item)
        results = iter(await self.store.save_many(items) if items else [])
        out: list[pb.SaveStreamResponse] = []
        for slot in slots:
            if isinstance(slot, pb.SaveStreamResponse):
                out.append(slot)
                continue
            result = next(results)
            if isinstance(result, CairnError):
                if slot.lease is not None:
                    await self.settle_refused(tenant, slot.lease, result)
                out.append(pb.SaveStreamResponse(error=item_error(result)))
            else:
                self._count_saved(slot)
                out.append(pb.SaveStreamResponse(save=self._save_response(slot, result)))
        if self.metrics is not None:
            for response in out:
                code = "OK" if response.HasField("save") else _CODE_NAMES[response.error.code]
                self.metrics.requests.labels("SaveStream.item", code).inc()
        return out

    @rpc
    async def Load(self, request: pb.LoadRequest, context: grpc.aio.ServicerContext) -> bytes:
        tenant = self._tenant(context)
        return await self._load(tenant, request)

    def _load_key(self, request: pb.LoadRequest) -> tuple[str, str, str | None]:
        lim = self.limits
        thread_id = lim.id("thread_id", request.thread_id, required=True)
        namespace = lim.id("namespace", request.namespace, required=False)
        return thread_id, namespace, lim.id("checkpoint_id", request.checkpoint_id, required=False) or None

    async def _load(self, tenant: str, request: pb.LoadRequest) -> bytes:
        return self._rendered(await self.store.load(tenant, *self._load_key(request)), _accepts_zstd(request))

    def _rendered(self, loaded: Loaded, zstd: bool) -> bytes:
        """The LoadResponse, serialized; a near-cache hit's was by the call that put it there (once per encoding
        asked for), so a hot Load sends it without building or encoding a message."""
        zstd = _sends_zstd(loaded.checkpoint, zstd)
        if self.metrics is not None:
            self.metrics.raw_out.inc(len(loaded.state))
            self.metrics.wire_out.inc(len(loaded.checkpoint.state if zstd else loaded.state))
        rendered = loaded.rendered.get(zstd)
        if rendered is None:
            rendered = loaded.rendered[zstd] = self._load_response(loaded, zstd).SerializeToString()
        return rendered

    @rpc
    async def BatchLoad(self, request: pb.BatchLoadRequest, context: grpc.aio.ServicerContext) -> bytes:
        """A BatchLoadResponse joined from each load's serialized LoadResponse (wire.py)."""
        tenant = self._tenant(context)
        self.limits.batch("loads", len(request.loads))

        budgets = self.budgets
        # Each distinct load is loaded once, however often it is asked for, in windows sized by the bytes the
        # last ones brought back; every result is placed (rendered, or refused for the budget) before the next
        # window is loaded, so no more than about twice the budget of states is held at once.
        keys: list[tuple[str, str, str | None] | CairnError] = []
        for load in request.loads:
            try:
                keys.append(self._load_key(load))
            except CairnError as err:
                keys.append(err)
        asked: dict[tuple[str, str, str | None], list[int]] = {}
        for i, key in enumerate(keys):
            if not isinstance(key, CairnError):
                asked.setdefault(key, []).append(i)
        parts: list[tuple[bytes, ...]] = [()] * len(keys)  # each item's pieces, joined once at the end
        used = 0
        unplaced = len(keys)

        def place(i: int, item: Loaded | CairnError) -> None:
            nonlocal used, unplaced
            unplaced -= 1
            if not isinstance(item, CairnError):  # BatchLoadResult.load = 1, inside BatchLoadResponse.results = 1
                load = self._rendered(item, _accepts_zstd(request.loads[i]))
                inner = wire.field_header(1, len(load))
                outer = wire.field_header(1, len(inner) + len(load))
                size = len(outer) + len(inner) + len(load)
                # room is kept for the items not placed yet to be refused, each with its error
                if used + size + unplaced * _ITEM_ERROR_BYTES <= budgets.response_bytes:
                    used += size
                    parts[i] = (outer, inner, load)
                    return
                item = budgets.over_response(f"loads[{i}]", len(load))
            body = wire.field_bytes(2, item_error(item).SerializeToString())  # BatchLoadResult.error = 2
            parts[i] = (wire.field_header(1, len(body)), body)
            used += len(parts[i][0]) + len(body)

        for i, key in enumerate(keys):
            if isinstance(key, CairnError):
                place(i, key)
        pending = list(asked)
        window = budgets.first_load_window()
        while pending:
            batch, pending = pending[:window], pending[window:]
            largest = 1
            for key, item in zip(batch, await self.store.load_many(tenant, batch), strict=True):
                if not isinstance(item, Loaded):
                    for i in asked[key]:
                        place(i, item)
                    continue
                largest = max(largest, len(item.state) + len(item.checkpoint.state))
                for i in asked[key]:
                    place(i, item)
            window = budgets.next_load_window(largest)
        response = b"".join(piece for part in parts for piece in part)
        if len(response) > self.config.max_message_bytes:  # only errors quoting very long ids get here
            raise budgets.over_response("the errors of this BatchLoad", len(response))
        return response

    @rpc
    async def List(self, request: pb.ListRequest, context: grpc.aio.ServicerContext) -> bytes:
        tenant = self._tenant(context)
        lim = self.limits
        thread_id = lim.id("thread_id", request.thread_id, required=False)
        namespace = lim.id("namespace", request.namespace, required=False) if request.HasField("namespace") else None
        flt = None
        if request.HasField("metadata_filter") and len(request.metadata_filter.fields):
            flt = lim.metadata("metadata_filter", request.metadata_filter)
        before = lim.id("before_checkpoint_id", request.before_checkpoint_id, required=False)
        limit = lim.page_size(request.page_size)
        fp = fingerprint("list", tenant, thread_id, namespace, flt, before, request.include_state,
                         request.include_writes)
        after = PageToken.decode(request.page_token, fp) if request.page_token else None
        before_row = None
        if before:
            before_row = await self.store.row_id_of(tenant, thread_id, namespace, before)
            if before_row is None:
                raise NotFound(
                    f"before_checkpoint_id {before!r} names no checkpoint of thread {thread_id!r}; "
                    "pass the id of a stored checkpoint"
                )
        query = ListQuery(
            tenant=tenant,
            thread_id=thread_id,
            namespace=namespace,
            metadata_filter_json=flt,
            before_row_id=before_row,
            after_row_id=after,
            limit=limit + 1,
            include_state=request.include_state,
            include_writes=request.include_writes,
            zstd_states=request.include_state and _accepts_zstd(request),
            max_bytes=self.budgets.response_bytes if request.include_state else 0,
        )

        def render(rows: list[StoredCheckpoint], writes: list[StoredWrite]) -> bytes:
            # The page ends early, with a token, before the first row that would take it past the byte budget
            # (the first row always goes: one state always fits the message limit).
            by_row: dict[tuple[str, str, str], list[pb.PendingWrite]] = {}
            if request.include_writes:
                for w in writes:
                    by_row.setdefault((w.thread_id, w.namespace, w.checkpoint_id), []).append(self._write_to_proto(w, tenant))
            resp = pb.ListResponse()
            used = 0
            sent: list[StoredCheckpoint] = []
            for cp in rows[:limit]:
                if cp.state_omitted:
                    break
                out = self._to_proto(
                    cp, self.store.decode_state(cp) if request.include_state else None, query.zstd_states
                )
                row_writes = by_row.get((cp.thread_id, cp.namespace, cp.checkpoint_id), [])
                size = out.ByteSize() + sum(w.ByteSize() for w in row_writes) + 16 * (1 + len(row_writes))
                if sent and used + size > self.budgets.response_bytes:
                    break
                used += size
                sent.append(cp)
                resp.checkpoints.append(out)
                resp.pending_writes.extend(row_writes)
            if len(sent) < len(rows):
                resp.next_page_token = PageToken.encode(sent[-1].row_id, fp)
            return resp.SerializeToString()  # kept serialized with the thread's pages: sent as it is

        return await self.store.list_page(query, render, size=len)  # type: ignore[no-any-return]

    @rpc
    async def ListThreads(
        self, request: pb.ListThreadsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListThreadsResponse:
        tenant = self._tenant(context)
        limit = self.limits.page_size(request.page_size)
        flt = None
        if request.HasField("metadata_filter") and len(request.metadata_filter.fields):
            flt = self.limits.metadata("metadata_filter", request.metadata_filter)
        fp = fingerprint("threads", tenant, flt)
        after = None
        if request.page_token:
            after = _thread_position(PageToken.decode(request.page_token, fp, kind=list), self.limits)
        threads = await self.store.list_threads(tenant, limit + 1, after, flt)
        resp = pb.ListThreadsResponse()
        used = 0
        for t in threads[:limit]:
            info = pb.ThreadInfo(
                thread_id=t.thread_id,
                checkpoint_count=t.checkpoint_count,
                head_checkpoint_id=t.head_checkpoint_id,
                head_metadata=_struct(t.head_metadata_json),
                head_node_name=t.head_node_name,
                head_next_nodes=t.head_next_nodes,
            )
            _set_time(info.updated_at, t.updated_at)
            used += info.ByteSize() + 8
            if resp.threads and used > self.budgets.response_bytes:  # heads' metadata: up to 64 KiB each
                break
            resp.threads.append(info)
        if len(threads) > len(resp.threads):
            last = threads[len(resp.threads) - 1]
            resp.next_page_token = PageToken.encode([last.updated_at.isoformat(), last.thread_id], fp)
        return resp

    @rpc
    async def Delete(self, request: pb.DeleteRequest, context: grpc.aio.ServicerContext) -> pb.DeleteResponse:
        tenant = self._tenant(context)
        lim = self.limits
        deleted = await self.store.delete(
            tenant,
            lim.id("thread_id", request.thread_id, required=True),
            lim.id("namespace", request.namespace, required=False),
            lim.id("checkpoint_id", request.checkpoint_id, required=True),
        )
        return pb.DeleteResponse(deleted=deleted)

    @rpc
    async def Clear(self, request: pb.ClearRequest, context: grpc.aio.ServicerContext) -> pb.ClearResponse:
        tenant = self._tenant(context)
        n = await self.store.clear(tenant, self.limits.id("thread_id", request.thread_id, required=True))
        return pb.ClearResponse(deleted_count=n)

    @rpc
    async def PutWrites(self, request: pb.PutWritesRequest, context: grpc.aio.ServicerContext) -> pb.PutWritesResponse:
        tenant = self._tenant(context)
        lim = self.limits
        thread_id = lim.id("thread_id", request.thread_id, required=True)
        namespace = lim.id("namespace", request.namespace, required=False)
        checkpoint_id = lim.id("checkpoint_id", request.checkpoint_id, required=True)
        task_id = lim.id("task_id", request.task_id, required=True)
        task_path = lim.text("task_path", request.task_path)
        lim.batch("writes", len(request.writes))
        seen: set[int] = set()
        writes: list[StoredWrite] = []
        total = 0
        for w in request.writes:
            if w.idx in seen:
                raise InvalidArgument("writes", f"idx {w.idx} appears twice in one request; each idx at most once")
            seen.add(w.idx)
            if not w.channel:
                raise InvalidArgument("writes.channel", f"write idx {w.idx} has no channel; name the channel")
            total += len(w.value)
            if not self.store.codec.encrypts and w.value.startswith(WRITE_MAGIC):
                raise InvalidArgument(
                    "writes.value", f"write idx {w.idx} begins with the tag of a sealed value, which this server "
                    "(without --encryption-keys) cannot store unambiguously; prefix the value with another byte",
                )
            writes.append(
                StoredWrite(
                    task_id=task_id,
                    task_path=task_path,
                    idx=w.idx,
                    channel=lim.text("writes.channel", w.channel),
                    value_type=lim.text("writes.value_type", w.value_type),
                    value=self.store.codec.seal_write(w.value, tenant, (thread_id, namespace, checkpoint_id), task_id,
                                                      w.idx),
                )
            )
        lim.state(total)
        self._may_store_plaintext()
        lease = self.run_lease_of(request)
        n = await self.fenced(tenant, lease, self.store.put_writes(
            WritesItem(tenant, thread_id, namespace, checkpoint_id, task_id, task_path, writes, request.replace, lease)
        ))
        return pb.PutWritesResponse(written_count=n)

    @rpc
    async def CopyThread(
        self, request: pb.CopyThreadRequest, context: grpc.aio.ServicerContext
    ) -> pb.CopyThreadResponse:
        tenant = self._tenant(context)
        source = self.limits.id("source_thread_id", request.source_thread_id, required=True)
        target = self.limits.id("target_thread_id", request.target_thread_id, required=True)
        if source == target:
            raise InvalidArgument("target_thread_id", "target_thread_id must differ from source_thread_id")
        return pb.CopyThreadResponse(copied_count=await self.store.copy_thread(tenant, source, target))

    @rpc
    async def Prune(self, request: pb.PruneRequest, context: grpc.aio.ServicerContext) -> pb.PruneResponse:
        tenant = self._tenant(context)
        threads = [self.limits.id("thread_ids", t, required=True) for t in request.thread_ids]
        self.limits.batch("thread_ids", len(threads))
        if request.strategy == pb.PRUNE_STRATEGY_KEEP_LATEST:
            if request.keep_count < 0:
                raise InvalidArgument("keep_count", f"keep_count must be 0 (meaning 1) or positive, not "
                                                    f"{request.keep_count}")
            keep: int | None = max(1, request.keep_count)
        elif request.strategy == pb.PRUNE_STRATEGY_DELETE_ALL:
            keep = None
        else:
            raise InvalidArgument(
                "strategy", "strategy must be PRUNE_STRATEGY_KEEP_LATEST or PRUNE_STRATEGY_DELETE_ALL"
            )
        if not threads:
            return pb.PruneResponse()
        return pb.PruneResponse(deleted_count=await self.store.prune(tenant, threads, keep))

    @rpc
    async def DeleteRuns(
        self, request: pb.DeleteRunsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteRunsResponse:
        tenant = self._tenant(context)
        run_ids = [self.limits.id("run_ids", r, required=True) for r in request.run_ids]
        self.limits.batch("run_ids", len(run_ids))
        if not run_ids:
            return pb.DeleteRunsResponse()
        return pb.DeleteRunsResponse(deleted_count=await self.store.delete_runs(tenant, run_ids))

    # -- durable runs: thin RPCs over runs_service.RunRpcs -------------------

    @rpc
    async def StartRun(self, request: pb.StartRunRequest, context: grpc.aio.ServicerContext) -> pb.StartRunResponse:
        return await self._start_run(request, context)

    @rpc
    async def ClaimRun(self, request: pb.ClaimRunRequest, context: grpc.aio.ServicerContext) -> pb.ClaimRunResponse:
        return await self._claim_run(request, context)

    @rpc
    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.HeartbeatResponse:
        return await self._heartbeat(request, context)

    @rpc
    async def CompleteRun(
        self, request: pb.CompleteRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteRunResponse:
        return await self._complete_run(request, context)

    @rpc
    async def FailRun(self, request: pb.FailRunRequest, context: grpc.aio.ServicerContext) -> pb.FailRunResponse:
        return await self._fail_run(request, context)

    @rpc
    async def CancelRun(
        self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelRunResponse:
        return await self._cancel_run(request, context)

    @rpc
    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.GetRunResponse:
        return await self._get_run(request, context)

    @rpc
    async def ListRuns(self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        return await self._list_runs(request, context)
