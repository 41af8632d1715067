"""The gRPC edge's RPC methods: check a request, call the store, answer.

Each method carries its RPC's name and delegates (grpc's route_guide servicer is the model): what every call
gets (log fields, spans, metrics, the one mapping of errors to statuses) is in calls.py; turning records into
messages, and BatchLoad's framing, in convert.py; page tokens in page_tokens.py; request limits in
validation.py. States are encoded and decoded by the store (storage/tiered.py), never here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from cairn.errors import CairnError, InvalidArgument, NotFound
from cairn.ids import uuid7
from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc

from . import convert
from .auth import Authenticator
from .budget import Budgets, ByteLimit, StreamWindow
from .calls import (
    CODE_NAMES,
    CallFields,
    CallHandling,
    CallScope,
    Malformed,
    item_error,
    response_serializer,
    safe_deserializer,
    unary,
)
from .config import Config
from .logs import request_context
from .page_tokens import PageToken, fingerprint, thread_position
from .runs_service import RunRpcs
from .storage.records import ListQuery, SaveItem, StoredCheckpoint, StoredWrite, WritesItem
from .storage.tiered import ListedPage, Loaded, TieredStore
from .validation import Limits

log = logging.getLogger("cairn.rpc")

_STREAM_BATCH = 256  # most saves of one stream committed in one transaction
_UNANSWERED = pb.ItemError()  # a save's place in a batch's answers until its transaction commits


class CheckpointStoreService(RunRpcs, pb_grpc.CheckpointStoreServicer):
    """cairn.v1.CheckpointStore: one method per RPC (the durable-runs ones delegate to runs_service.RunRpcs)."""

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
        self.calls = CallHandling(metrics, on_unavailable=self._count_cold_error)
        self._init_runs()

    def _count_cold_error(self) -> None:
        self.store.stats["cold_errors"] += 1

    # -- helpers shared by the RPCs --------------------------------------------

    def _tenant(self, context: grpc.aio.ServicerContext) -> str:
        tenant = self.auth.tenant(context)
        fields = request_context.get()
        if isinstance(fields, CallFields):
            fields.set_tenant(tenant)
        else:  # a call outside a CallScope (none today): give its log records the tenant all the same
            request_context.set({**fields, "tenant": tenant})
        return tenant

    def _write_to_proto(self, w: StoredWrite, tenant: str) -> pb.PendingWrite:
        return convert.write_to_proto(w, self.store.write_value(w, tenant))

    def _load_response(self, loaded: Loaded, zstd: bool) -> pb.LoadResponse:
        return pb.LoadResponse(
            checkpoint=convert.checkpoint_to_proto(loaded.checkpoint, loaded.state, zstd),
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
        stored_cp = self.store.new_checkpoint(tenant, thread_id, namespace, checkpoint_id, parent, state_type,
                                              node_name, next_nodes, metadata_json, raw, packed)
        return SaveItem(stored_cp, expected, req.expect_empty, req.replace_existing, raw, self.run_lease_of(req))

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
            return self.store.unframe_state(c.state, self.limits.state), c.state
        except ValueError as exc:
            raise InvalidArgument(
                "checkpoint.state", f"state_encoding is STATE_ENCODING_ZSTD but the state {exc}"
            ) from None

    def _count_saved(self, item: SaveItem) -> None:
        if self.metrics is not None:
            self.metrics.raw_in.inc(item.checkpoint.raw_size)
            self.metrics.stored.inc(item.checkpoint.stored_size)

    # -- RPCs --------------------------------------------------------------

    @unary
    async def Save(self, request: pb.SaveRequest, context: grpc.aio.ServicerContext) -> pb.SaveResponse:
        tenant = self._tenant(context)
        item = self._save_item(tenant, request)
        outcome = await self.fenced(tenant, item.lease, self.store.save(item))
        self._count_saved(item)
        return convert.save_response(item, outcome)

    async def SaveStream(
        self, request_iterator: AsyncIterator[pb.SaveStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SaveStreamResponse]:
        acknowledged = 0
        batch: list[tuple[pb.SaveStreamRequest, int]] = []
        async with CallScope(self.calls, "SaveStream", context, counted=False):  # each save is counted as an item
            tenant = self._tenant(context)
            # Read ahead by bytes (budget.py): the reader holds each request's size in the stream's window until its
            # answer is sent, and reads nothing more while the window (or the server's in-flight limit) is full.
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
                    answers = await self._save_batch(
                        tenant, [req if isinstance(req, Malformed) else req.save for req, _ in batch], "SaveStream"
                    )
                    for answer, (_, n) in zip(answers, batch, strict=True):
                        yield (pb.SaveStreamResponse(save=answer) if isinstance(answer, pb.SaveResponse)
                               else pb.SaveStreamResponse(error=answer))
                        acknowledged += 1
                        window.release(n)
                    batch = []
                if ended:
                    log.info("SaveStream ended by the client after %d acknowledged saves: %s", acknowledged,
                             ended[0] or type(ended[0]).__name__)
            except CairnError as err:  # the cold store failed: the scope ends the stream with this status
                _name_unacknowledged(err, acknowledged, len(batch))
                raise
            finally:
                reader.cancel()
                window.close()

    async def _save_batch(
        self, tenant: str, saves: list[pb.SaveRequest | Malformed], method: str
    ) -> list[pb.SaveResponse | pb.ItemError]:
        """The saves of a SaveStream batch or a SaveBatch call: one answer per save, in order, a SaveResponse or
        the ItemError of that save alone.

        Saves are decoded and committed in order, a transaction at a time of at most --max-commit-batch-bytes of
        states (the first always goes), each counted decoded or stored, whichever is larger: a client's zstd frame
        of a large state may be a few bytes on the wire, and a decoded state is held until its transaction
        commits. So a batch holds about one transaction's states at once, and no transaction runs into the cold
        store's timeout."""
        out: list[pb.SaveResponse | pb.ItemError] = []
        chunk: list[tuple[int, SaveItem]] = []
        size = 0
        for req in saves:
            try:
                if isinstance(req, Malformed):
                    raise req.invalid()
                item = self._save_item(tenant, req)
            except CairnError as err:
                out.append(item_error(err))
                continue
            weight = max(item.checkpoint.raw_size, len(item.checkpoint.state))
            if chunk and size + weight > self.budgets.commit_batch_bytes:
                await self._commit_chunk(tenant, chunk, out)
                chunk, size = [], 0
            chunk.append((len(out), item))
            out.append(_UNANSWERED)
            size += weight
        if chunk:
            await self._commit_chunk(tenant, chunk, out)
        if self.metrics is not None:
            counter = self.metrics.requests
            for answer in out:
                code = "OK" if isinstance(answer, pb.SaveResponse) else CODE_NAMES[answer.code]
                counter.labels(f"{method}.item", code).inc()
        return out

    async def _commit_chunk(
        self, tenant: str, chunk: list[tuple[int, SaveItem]], out: list[pb.SaveResponse | pb.ItemError]
    ) -> None:
        """Commit the chunk's saves and put each one's answer at its place in `out`. Saves of distinct threads (the
        usual SaveBatch: one save per graph) go through the group commit, where concurrent calls and Saves share
        transactions; a chunk naming a (thread, namespace) twice is one transaction of its own, in request
        order."""
        items = [item for _, item in chunk]
        if len({(i.checkpoint.thread_id, i.checkpoint.namespace) for i in items}) == len(items):
            results = await self.store.save_grouped(items)
        else:
            results = await self.store.save_many(items)
        for (at, item), result in zip(chunk, results, strict=True):
            if isinstance(result, CairnError):
                if item.lease is not None:
                    await self.settle_refused(tenant, item.lease, result)
                out[at] = item_error(result)
            else:
                self._count_saved(item)
                out[at] = convert.save_response(item, result)

    @unary
    async def SaveBatch(self, request: pb.SaveBatchRequest, context: grpc.aio.ServicerContext) -> pb.SaveBatchResponse:
        tenant = self._tenant(context)
        self.limits.batch("saves", len(request.saves))
        answers = await self._save_batch(tenant, list(request.saves), "SaveBatch")
        return pb.SaveBatchResponse(results=[
            pb.SaveBatchResult(save=a) if isinstance(a, pb.SaveResponse) else pb.SaveBatchResult(error=a)
            for a in answers
        ])

    @unary
    async def Load(self, request: pb.LoadRequest, context: grpc.aio.ServicerContext) -> bytes:
        tenant = self._tenant(context)
        return await self._load(tenant, request)

    def _load_key(self, request: pb.LoadRequest) -> tuple[str, str, str | None]:
        lim = self.limits
        thread_id = lim.id("thread_id", request.thread_id, required=True)
        namespace = lim.id("namespace", request.namespace, required=False)
        return thread_id, namespace, lim.id("checkpoint_id", request.checkpoint_id, required=False) or None

    async def _load(self, tenant: str, request: pb.LoadRequest) -> bytes:
        return self._serialized(await self.store.load(tenant, *self._load_key(request)), convert.accepts_zstd(request))

    def _serialized(self, loaded: Loaded, zstd: bool) -> bytes:
        """The LoadResponse, serialized; a near-cache hit's was by the call that put it there (once per encoding
        asked for), so a hot Load sends it without building or encoding a message."""
        zstd = convert.sends_zstd(loaded.checkpoint, zstd)
        if self.metrics is not None:
            self.metrics.raw_out.inc(len(loaded.state))
            self.metrics.wire_out.inc(len(loaded.checkpoint.state if zstd else loaded.state))
        response = loaded.responses.get(zstd)
        if response is None:
            response = loaded.responses[zstd] = self._load_response(loaded, zstd).SerializeToString()
        return response

    @unary
    async def BatchLoad(self, request: pb.BatchLoadRequest, context: grpc.aio.ServicerContext) -> bytes:
        """A BatchLoadResponse joined from each load's serialized LoadResponse (convert.framed_load)."""
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
            if not isinstance(item, CairnError):
                framed = convert.framed_load(self._serialized(item, convert.accepts_zstd(request.loads[i])))
                size = sum(len(piece) for piece in framed)
                # room is kept for the items not placed yet to be refused, each with its error
                if used + size + unplaced * convert.ITEM_ERROR_BYTES <= budgets.response_bytes:
                    used += size
                    parts[i] = framed
                    return
                item = budgets.over_response(f"loads[{i}]", len(framed[2]))
            parts[i] = convert.framed_error(item)
            used += sum(len(piece) for piece in parts[i])

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

    @unary
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
            zstd_states=request.include_state and convert.accepts_zstd(request),
            max_bytes=self.budgets.response_bytes if request.include_state else 0,
        )

        page = await self.store.list_page(query)
        if page.response is None:  # a page the near cache kept has it already
            page.response = await self._list_response(page, query, limit, fp)
        return page.response

    async def _list_response(self, page: ListedPage, query: ListQuery, limit: int, fp: str) -> bytes:
        """The serialized ListResponse of a page. It ends early, with a token, before the first row that would
        take it past the byte budget (the first row always goes: one state always fits the message limit)."""
        by_row: dict[tuple[str, str, str], list[pb.PendingWrite]] = {}
        if query.include_writes:
            for w in page.writes:
                by_row.setdefault((w.thread_id, w.namespace, w.checkpoint_id), []).append(
                    self._write_to_proto(w, query.tenant))
        resp = pb.ListResponse()
        used = 0
        sent: list[StoredCheckpoint] = []
        for cp in page.rows[:limit]:
            if cp.state_omitted:
                break
            state = await self.store.decoded_state(cp) if query.include_state else None
            out = convert.checkpoint_to_proto(cp, state, query.zstd_states)
            row_writes = by_row.get((cp.thread_id, cp.namespace, cp.checkpoint_id), [])
            size = out.ByteSize() + sum(w.ByteSize() for w in row_writes) + 16 * (1 + len(row_writes))
            if sent and used + size > self.budgets.response_bytes:
                break
            used += size
            sent.append(cp)
            resp.checkpoints.append(out)
            resp.pending_writes.extend(row_writes)
        if len(sent) < len(page.rows):
            resp.next_page_token = PageToken.encode(sent[-1].row_id, fp)
        return resp.SerializeToString()

    @unary
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
            after = thread_position(PageToken.decode(request.page_token, fp, kind=list), self.limits)
        threads = await self.store.list_threads(tenant, limit + 1, after, flt)
        resp = pb.ListThreadsResponse()
        used = 0
        for t in threads[:limit]:
            info = convert.thread_info(t)
            used += info.ByteSize() + 8
            if resp.threads and used > self.budgets.response_bytes:  # heads' metadata: up to 64 KiB each
                break
            resp.threads.append(info)
        if len(threads) > len(resp.threads):
            last = threads[len(resp.threads) - 1]
            resp.next_page_token = PageToken.encode([last.updated_at.isoformat(), last.thread_id], fp)
        return resp

    @unary
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

    @unary
    async def Clear(self, request: pb.ClearRequest, context: grpc.aio.ServicerContext) -> pb.ClearResponse:
        tenant = self._tenant(context)
        n = await self.store.clear(tenant, self.limits.id("thread_id", request.thread_id, required=True))
        return pb.ClearResponse(deleted_count=n)

    @unary
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
            writes.append(
                StoredWrite(
                    task_id=task_id,
                    task_path=task_path,
                    idx=w.idx,
                    channel=lim.text("writes.channel", w.channel),
                    value_type=lim.text("writes.value_type", w.value_type),
                    value=self.store.seal_write(w.value, tenant, (thread_id, namespace, checkpoint_id), task_id, w.idx),
                )
            )
        lim.state(total)
        self.store.check_plaintext_allowed()
        lease = self.run_lease_of(request)
        n = await self.fenced(tenant, lease, self.store.put_writes(
            WritesItem(tenant, thread_id, namespace, checkpoint_id, task_id, task_path, writes, request.replace, lease)
        ))
        return pb.PutWritesResponse(written_count=n)

    @unary
    async def CopyThread(
        self, request: pb.CopyThreadRequest, context: grpc.aio.ServicerContext
    ) -> pb.CopyThreadResponse:
        tenant = self._tenant(context)
        source = self.limits.id("source_thread_id", request.source_thread_id, required=True)
        target = self.limits.id("target_thread_id", request.target_thread_id, required=True)
        if source == target:
            raise InvalidArgument("target_thread_id", "target_thread_id must differ from source_thread_id")
        return pb.CopyThreadResponse(copied_count=await self.store.copy_thread(tenant, source, target))

    @unary
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

    @unary
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

    @unary
    async def StartRun(self, request: pb.StartRunRequest, context: grpc.aio.ServicerContext) -> pb.StartRunResponse:
        return await self._start_run(request, context)

    @unary
    async def ClaimRun(self, request: pb.ClaimRunRequest, context: grpc.aio.ServicerContext) -> pb.ClaimRunResponse:
        return await self._claim_run(request, context)

    @unary
    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.HeartbeatResponse:
        return await self._heartbeat(request, context)

    @unary
    async def CompleteRun(
        self, request: pb.CompleteRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteRunResponse:
        return await self._complete_run(request, context)

    @unary
    async def FailRun(self, request: pb.FailRunRequest, context: grpc.aio.ServicerContext) -> pb.FailRunResponse:
        return await self._fail_run(request, context)

    @unary
    async def CancelRun(
        self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelRunResponse:
        return await self._cancel_run(request, context)

    @unary
    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.GetRunResponse:
        return await self._get_run(request, context)

    @unary
    async def ListRuns(self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        return await self._list_runs(request, context)


def _name_unacknowledged(err: CairnError, acknowledged: int, in_failed_commit: int) -> None:
    """Extend a SaveStream's failure with which saves were acknowledged, which may or may not have landed, and
    which were not committed, so the client knows what to re-send."""
    uncommitted = acknowledged + in_failed_commit
    log.warning(
        "SaveStream failed after %d acknowledged saves; %d were in the commit that failed, none after them "
        "was committed: %s %s", acknowledged, in_failed_commit, err.code.name, err.message,
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
