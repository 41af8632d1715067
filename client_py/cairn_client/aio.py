"""AsyncCheckpointClient: the asyncio client, mirroring client.CheckpointClient method for method."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import grpc

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc

from . import _shared as s
from . import channels as ch
from . import runs as r
from .client import DEFAULT_TIMEOUT_SECONDS
from .coalesce import Coalescer
from .errors import CairnError, from_item_error, from_rpc_error
from .types import Checkpoint, Page, SaveResult, ThreadInfo, ThreadPage


# A batch call's bounds: the server takes up to --max-batch-items (1000) per call, and its commit and response
# budgets cut larger ones anyway; these keep one batch's latency near a single call's.
_BATCH_ITEMS = 64
_BATCH_BYTES = 4 << 20


def _save_size(req: pb.SaveRequest) -> int:
    return len(req.checkpoint.state) + 256  # the state, and room for ids and metadata


def _shared_budget_error(err: CairnError) -> bool:
    """A batch item refused for the response budget its batch shared: alone, it may fit."""
    return err.code == grpc.StatusCode.RESOURCE_EXHAUSTED


class AsyncCheckpointClient:
    """Talks to a Cairn server at `target` ("host:port" or "unix:/path") from asyncio.

    Use as an async context manager, or await aclose().
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: s.TLS | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_message_bytes: int = s.DEFAULT_MAX_MESSAGE_BYTES,
        compress_states: bool = False,
        channels: int = 1,
        coalesce: int = 4,
    ) -> None:
        """Open a channel to a Cairn server; it connects on the first call.

        Args:
            target: "host:port" or "unix:/path/to.sock".
            token: bearer token sent as `authorization: Bearer TOKEN` with every call; None sends none.
            tls: root CA and optional client certificate (mutual TLS); None is plaintext.
            timeout_seconds: the deadline of a call that passes no `timeout`.
            max_message_bytes: the largest message received, and the largest state decompressed.
            compress_states: send states zstd-compressed once a SaveResponse listed zstd, and ask for compressed
                states on reads; enable it only when every server the client can reach supports it.
            channels: gRPC channels (TCP connections) to open, calls going round-robin over them. With
                `cairn serve --workers N` use N or a few more: the server's processes share the port by
                connection, so one channel reaches one of them (see `cairn_client.channels`).
            coalesce: batch calls of one kind (saves; loads) in flight at once, per channel: concurrent calls
                go together in SaveBatch and BatchLoad calls, each keeping its own outcome and deadline (see
                `cairn_client.coalesce`), so many graphs on one event loop share gRPC's per-call cost. 0 sends
                every call on its own.
        """
        self.target = target
        self.timeout_seconds = timeout_seconds
        target, creds, options = s.channel_args(target, tls, token, max_message_bytes)
        self._channels = ch.open_async(target, creds, options, channels)
        self._channel = self._channels[0]
        self._stub = ch.stub_for(self._channels, pb_grpc.CheckpointStoreStub)
        self._metadata = s.call_metadata(token, tls)
        self._wire = s.StateWire(compress_states, max_state_bytes=max_message_bytes)
        if coalesce < 0:
            raise ValueError(f"coalesce must be >= 0 (got {coalesce!r}); 0 sends every call on its own")
        self._saves: Coalescer[pb.SaveRequest, pb.SaveResponse] | None = None
        self._loads: Coalescer[pb.LoadRequest, Checkpoint] | None = None
        if coalesce:
            inflight = coalesce * len(self._channels)
            self._saves = Coalescer(
                self._save_one, self._save_many, max_inflight=inflight, max_items=_BATCH_ITEMS,
                max_bytes=min(_BATCH_BYTES, max_message_bytes), size=_save_size,
            )
            self._loads = Coalescer(
                self._load_one, self._load_many, max_inflight=inflight, max_items=_BATCH_ITEMS,
                max_bytes=_BATCH_BYTES, size=lambda req: 64, retry_alone=_shared_budget_error,
            )

    async def __aenter__(self) -> AsyncCheckpointClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the channels; calls still in flight end with CANCELLED."""
        for channel in self._channels:
            await channel.close()

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, timeout=timeout or self.timeout_seconds, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    async def save(self, thread_id: str, state: Any, *, timeout: float | None = None, **fields: Any) -> SaveResult:
        """Save a checkpoint as the new head of (thread, namespace); acknowledged after the durable commit.

        Args:
            thread_id: the thread (1-512 UTF-8 bytes, no control characters).
            state: bytes, stored as they are, or a JSON-serialisable value (stored as JSON, state_type "json").
            timeout: seconds for this call (default: the client's `timeout_seconds`).
            **fields: namespace, checkpoint_id (default: a new UUIDv7, so a retried save is idempotent),
                parent_checkpoint_id, state_type, metadata (a JSON object), node_name, next_nodes,
                expected_head_id or expect_empty (compare-and-set on the head), replace_existing (upsert).

        Returns:
            The stored checkpoint's id, sequence, creation time and stored size, and `already_existed` when an
            identical checkpoint was there (a retry).

        Raises:
            Conflict: the compare-and-set failed; `current_head_id` names the head (reason HEAD_MOVED).
            AlreadyExists: the checkpoint id is taken by other content.
            InvalidArgument: a malformed field (`field` names it).
            ResourceExhausted: the state is larger than the server's --max-state-bytes.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = self._wire.outgoing(s.save_request(thread_id, state, **fields), owned=True)
        if self._saves is None:
            return s.save_result(self._wire.saved(await self._call(self._stub.Save, req, timeout)))
        return s.save_result(self._wire.saved(await self._saves.call(req, timeout or self.timeout_seconds)))

    async def _save_one(self, req: pb.SaveRequest, timeout: float) -> pb.SaveResponse:
        return await self._call(self._stub.Save, req, timeout)  # type: ignore[no-any-return]

    async def _save_many(self, reqs: Sequence[pb.SaveRequest], timeout: float) -> list[pb.SaveResponse | CairnError]:
        resp = await self._call(self._stub.SaveBatch, pb.SaveBatchRequest(saves=reqs), timeout)
        return [r.save if r.HasField("save") else from_item_error(r.error) for r in resp.results]

    async def save_stream(
        self, requests: Iterable[pb.SaveRequest], *, timeout: float | None = None
    ) -> AsyncIterator[SaveResult | CairnError]:
        """Save many checkpoints over one bidirectional stream, committed in batches.

        Args:
            requests: `cairn.v1.SaveRequest` messages (`cairn_client._shared.save_request` builds them), sent lazily.
            timeout: seconds for the whole stream (default: none).

        Returns:
            An async iterator with one `SaveResult`, or the `CairnError` of that item (Conflict, AlreadyExists...), per
            request, in order.

        Raises:
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        call = self._stub.SaveStream(
            (pb.SaveStreamRequest(save=self._wire.outgoing(r)) for r in requests),
            timeout=timeout, metadata=self._metadata,
        )
        try:
            async for resp in call:
                yield (
                    s.save_result(self._wire.saved(resp.save)) if resp.HasField("save")
                    else from_item_error(resp.error)
                )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    async def load(
        self, thread_id: str, *, namespace: str = "", checkpoint_id: str | None = None, timeout: float | None = None
    ) -> Checkpoint:
        """Load a checkpoint (the head when no id is given) with its pending writes.

        Args:
            thread_id: the thread.
            namespace: the namespace ("" is the root graph).
            checkpoint_id: the checkpoint; None for the head.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            The checkpoint: state (raw bytes; `.json()` decodes JSON), metadata, ids, node names, pending writes.

        Raises:
            NotFound: no such checkpoint (reason CHECKPOINT_NOT_FOUND), or an empty thread (THREAD_EMPTY).
            DataLoss: the stored bytes fail their checksum (CHECKSUM_MISMATCH).
            InvalidArgument: a malformed id.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = pb.LoadRequest(
            thread_id=thread_id, namespace=namespace, checkpoint_id=checkpoint_id or "",
            accept_state_encodings=self._wire.accept,
        )
        if self._loads is None:
            return await self._load_one(req, timeout)
        return await self._loads.call(req, timeout or self.timeout_seconds)

    async def _load_one(self, req: pb.LoadRequest, timeout: float | None) -> Checkpoint:
        return s.load_result(await self._call(self._stub.Load, req, timeout), self._wire)

    async def _load_many(self, reqs: Sequence[pb.LoadRequest], timeout: float) -> list[Checkpoint | CairnError]:
        resp = await self._call(self._stub.BatchLoad, pb.BatchLoadRequest(loads=reqs), timeout)
        return s.batch_load_results(resp, self._wire)

    async def batch_load(
        self, loads: Sequence[tuple[str, str, str | None]], *, timeout: float | None = None
    ) -> list[Checkpoint | CairnError]:
        """Load up to 1000 checkpoints in one call, each with its own outcome.

        Args:
            loads: (thread_id, namespace, checkpoint_id or None for the head) triples.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            One `Checkpoint` or `CairnError` (NotFound, DataLoss...) per triple, in order.

        Raises:
            InvalidArgument: more items than the server's --max-batch-items, or a malformed id.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = s.batch_load_request(loads, self._wire)
        return s.batch_load_results(await self._call(self._stub.BatchLoad, req, timeout), self._wire)

    async def list(self, thread_id: str = "", *, timeout: float | None = None, **query: Any) -> Page:
        """One page of checkpoints, newest first.

        Args:
            thread_id: the thread; "" lists across all threads.
            timeout: seconds for this call (default: the client's `timeout_seconds`).
            **query: namespace (None = every namespace), metadata_filter (a JSON object the metadata must contain),
                before (a checkpoint id), page_size (0 = server default), page_token, include_state,
                include_writes.

        Returns:
            A `Page`: `.checkpoints` and `.next_page_token` ("" on the last page).

        Raises:
            NotFound: `before` names no checkpoint.
            InvalidArgument: a bad page size, page token or filter.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = s.list_request(thread_id, accept=self._wire.accept, **query)
        return s.list_result(await self._call(self._stub.List, req, timeout), self._wire)

    async def iter_checkpoints(
        self, thread_id: str = "", *, limit: int | None = None, **query: Any
    ) -> AsyncIterator[Checkpoint]:
        """Every matching checkpoint across pages, newest first.

        Args:
            thread_id: the thread; "" for all threads.
            limit: stop after this many (None: all).
            **query: as for `list` (page_size sets the size of each page fetched).

        Returns:
            An async iterator of `Checkpoint`, fetching pages as it goes.

        Raises:
            InvalidArgument: a bad page size or filter.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        token, seen = "", 0
        while True:
            page = await self.list(thread_id, page_token=token, **query)
            for cp in page.checkpoints:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield cp
            token = page.next_page_token
            if not token:
                return

    async def list_threads(
        self, *, page_size: int = 0, page_token: str = "", metadata_filter: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> ThreadPage:
        """One page of threads, most recently updated first, with their head's metadata.

        Args:
            page_size: threads per page (0 = server default).
            page_token: the previous page's `next_page_token`.
            metadata_filter: only threads whose head metadata contains this JSON object.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            A `ThreadPage`: `.threads` (`ThreadInfo`: id, checkpoint count, update time, head id, node and
            metadata) and `.next_page_token`.

        Raises:
            InvalidArgument: a bad page size, token or filter.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = pb.ListThreadsRequest(page_size=page_size, page_token=page_token)
        if metadata_filter:
            req.metadata_filter.CopyFrom(s.to_struct(metadata_filter))
        return s.threads_result(await self._call(self._stub.ListThreads, req, timeout))

    async def iter_threads(self, **query: Any) -> AsyncIterator[ThreadInfo]:
        """Every matching thread across pages, most recently updated first.

        Args:
            **query: as for `list_threads` (page_size, metadata_filter, timeout).

        Returns:
            An async iterator of `ThreadInfo`.

        Raises:
            InvalidArgument: a bad page size or filter.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        token = ""
        while True:
            page = await self.list_threads(page_token=token, **query)
            for thread in page.threads:
                yield thread
            token = page.next_page_token
            if not token:
                return

    async def delete(
        self, thread_id: str, checkpoint_id: str, *, namespace: str = "", timeout: float | None = None
    ) -> bool:
        """Delete one checkpoint and its pending writes.

        Args:
            thread_id: the thread.
            checkpoint_id: the checkpoint.
            namespace: its namespace ("" is the root graph).
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            True if it was deleted, False if there was no such checkpoint.

        Raises:
            InvalidArgument: a malformed id.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = pb.DeleteRequest(thread_id=thread_id, namespace=namespace, checkpoint_id=checkpoint_id)
        return (await self._call(self._stub.Delete, req, timeout)).deleted

    async def clear(self, thread_id: str, *, timeout: float | None = None) -> int:
        """Delete a whole thread, every namespace, with its pending writes (idempotent).

        Args:
            thread_id: the thread.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            How many checkpoints were deleted (0 for an empty thread).

        Raises:
            InvalidArgument: a malformed id.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        return (await self._call(self._stub.Clear, pb.ClearRequest(thread_id=thread_id), timeout)).deleted_count

    async def put_writes(
        self, thread_id: str, checkpoint_id: str, task_id: str, writes: Sequence[s.WriteLike], *,
        timeout: float | None = None, **fields: Any,
    ) -> int:
        """Attach a task's pending writes to a checkpoint.

        Args:
            thread_id: the thread.
            checkpoint_id: the checkpoint the writes belong to.
            task_id: the task that made them.
            writes: (channel, value) pairs or `Write`s; values are bytes or JSON-serialisable.
            timeout: seconds for this call (default: the client's `timeout_seconds`).
            **fields: namespace, task_path, replace (overwrite the same (task_id, idx) instead of failing).

        Returns:
            How many writes were stored (a write identical to a stored one is a no-op).

        Raises:
            NotFound: no such checkpoint.
            AlreadyExists: another value is stored for the same (task_id, idx) (reason WRITE_CONFLICT).
            InvalidArgument: a malformed field.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = s.writes_request(thread_id, checkpoint_id, task_id, writes, **fields)
        return (await self._call(self._stub.PutWrites, req, timeout)).written_count

    async def copy_thread(self, source_thread_id: str, target_thread_id: str, *, timeout: float | None = None) -> int:
        """Copy a thread (checkpoint ids, parents, pending writes, every namespace) into an empty one.

        Args:
            source_thread_id: the thread to copy.
            target_thread_id: an empty thread to copy into.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            How many checkpoints were copied (0 when the source is empty).

        Raises:
            Conflict: the target thread is not empty (reason TARGET_NOT_EMPTY).
            InvalidArgument: a malformed id.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = pb.CopyThreadRequest(source_thread_id=source_thread_id, target_thread_id=target_thread_id)
        return (await self._call(self._stub.CopyThread, req, timeout)).copied_count

    async def prune(
        self, thread_ids: Sequence[str], *, keep_latest: int | None = 1, timeout: float | None = None
    ) -> int:
        """Keep the newest checkpoints along each thread's head chain, per namespace, or delete all.

        Args:
            thread_ids: the threads.
            keep_latest: checkpoints to keep per namespace; None deletes every checkpoint.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            How many checkpoints were deleted.

        Raises:
            InvalidArgument: a malformed id or a negative count.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        return (await self._call(self._stub.Prune, s.prune_request(thread_ids, keep_latest), timeout)).deleted_count

    async def delete_runs(self, run_ids: Sequence[str], *, timeout: float | None = None) -> int:
        """Delete the checkpoints whose metadata `run_id` is one of these, with their pending writes.

        Args:
            run_ids: the run ids.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            How many checkpoints were deleted.

        Raises:
            InvalidArgument: a malformed id.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = pb.DeleteRunsRequest(run_ids=list(run_ids))
        return (await self._call(self._stub.DeleteRuns, req, timeout)).deleted_count

    # -- durable runs (runs.py; documented on client.CheckpointClient) --------

    async def start_run(self, thread_id: str, input: Any = None, *, timeout: float | None = None,
                        **fields: Any) -> r.Run:
        """Queue a run of a graph on `thread_id`; a worker's `claim_run` picks it up.

        Args:
            thread_id: the thread the run executes on (its checkpoints are the run's state).
            input: the run's input: bytes with `input_type`, or a JSON-serialisable value (input_type "json").
            timeout: seconds for this call (default: the client's `timeout_seconds`).
            **fields: queue ("default"), run_id (set it to make a retried start idempotent), input_type,
                metadata (a JSON object), retry (`runs.RetryPolicy`), execution_timeout_seconds, not_before (a
                datetime before which no worker claims it).

        Returns:
            The stored run, PENDING (an identical retry with the same run_id returns the stored one).

        Raises:
            FailedPrecondition: the thread has a PENDING or RUNNING run (reason THREAD_BUSY).
            AlreadyExists: `run_id` is taken by a different run (reason RUN_ID_CONFLICT).
            InvalidArgument: a malformed field (`field` names it).
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = r.start_run_request(thread_id, input, **fields)
        return r.run_from_proto((await self._call(self._stub.StartRun, req, timeout)).run)

    async def claim_run(
        self, queue: str, worker_id: str, *, lease_seconds: float = 30.0, wait_seconds: float = 0.0,
        timeout: float | None = None,
    ) -> r.Claim | None:
        """Claim the oldest claimable run of `queue` (pending, or abandoned by a crashed worker) under a new lease.

        Long-polls: when none is claimable it waits up to `wait_seconds` for one.

        Args:
            queue: the queue to claim from.
            worker_id: names this worker in the run's attempts.
            lease_seconds: how long the lease lasts without a heartbeat.
            wait_seconds: how long to wait for a claimable run (0: answer at once).
            timeout: seconds for this call, on top of `wait_seconds` (default: the client's `timeout_seconds`).

        Returns:
            The run, its lease and whether it was recovered from another worker; None when none came.

        Raises:
            InvalidArgument: a malformed field (`field` names it).
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = r.claim_request(queue, worker_id, lease_seconds, wait_seconds)
        return r.claim_result(
            await self._call(self._stub.ClaimRun, req, (timeout or self.timeout_seconds) + wait_seconds)
        )

    async def heartbeat(self, lease: r.RunLease, *, lease_seconds: float | None = None,
                        timeout: float | None = None) -> r.RunLease:
        """Extend the lease of a claimed run.

        Args:
            lease: the lease of the claim (`Claim.lease`, or the one the last heartbeat returned).
            lease_seconds: the new lease duration (default: the one the run was claimed with).
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            The lease with its new expiry; send this one from now on.

        Raises:
            RunStopped: the lease is no longer the run's current one (reason LEASE_LOST), or the run was cancelled
                (RUN_CANCELLED) or timed out (RUN_TIMED_OUT): stop working on it. Nothing was stored.
            NotFound: there is no such run (reason RUN_NOT_FOUND).
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = pb.HeartbeatRequest(lease=lease.to_proto(), lease_duration_ms=round((lease_seconds or 0) * 1000))
        return r.lease_from_proto((await self._call(self._stub.Heartbeat, req, timeout)).lease)

    async def complete_run(
        self, lease: r.RunLease, output: Any = None, *, interrupted: bool = False, checkpoint_id: str | None = None,
        output_type: str | None = None, timeout: float | None = None,
    ) -> r.Run:
        """End the attempt with success: the run becomes COMPLETED, or INTERRUPTED (waiting for a human).

        Args:
            lease: the lease of the claim (`Claim.lease`, or the one the last heartbeat returned).
            output: the run's output: bytes with `output_type`, or a JSON-serialisable value.
            interrupted: the graph stopped at an interrupt; a new `start_run` on the thread resumes it.
            checkpoint_id: the checkpoint the run ended at.
            output_type: the type of a bytes `output` ("json" for any other value).
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            The run, COMPLETED or INTERRUPTED.

        Raises:
            RunStopped: the lease is no longer the run's current one (reason LEASE_LOST), or the run was cancelled
                (RUN_CANCELLED) or timed out (RUN_TIMED_OUT): stop working on it. Nothing was stored.
            NotFound: there is no such run (reason RUN_NOT_FOUND).
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = r.complete_request(lease, output, output_type, interrupted, checkpoint_id)
        return r.run_from_proto((await self._call(self._stub.CompleteRun, req, timeout)).run)

    async def fail_run(
        self, lease: r.RunLease, error: BaseException | r.RunError | str, *, retryable: bool | None = None,
        timeout: float | None = None,
    ) -> r.Run:
        """End the attempt with an error; the run is PENDING again (a retry, per its RetryPolicy) or FAILED.

        Args:
            lease: the lease of the claim (`Claim.lease`, or the one the last heartbeat returned).
            error: the exception (its type and message are stored), a `runs.RunError`, or a message.
            retryable: whether a retry may help (default: a `RunError`'s own, otherwise False).
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            The run: PENDING (claimable after the backoff) or FAILED with this error.

        Raises:
            RunStopped: the lease is no longer the run's current one (reason LEASE_LOST), or the run was cancelled
                (RUN_CANCELLED) or timed out (RUN_TIMED_OUT): stop working on it. Nothing was stored.
            NotFound: there is no such run (reason RUN_NOT_FOUND).
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        req = r.fail_request(lease, error, retryable)
        return r.run_from_proto((await self._call(self._stub.FailRun, req, timeout)).run)

    async def cancel_run(self, run_id: str, *, timeout: float | None = None) -> r.Run:
        """Cancel a run: CANCELLED at once unless a worker holds it (then cancel_requested, until it sees it).

        Args:
            run_id: the run to cancel.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            The run, CANCELLED or with `cancel_requested` set; cancelling a CANCELLED run changes nothing.

        Raises:
            NotFound: there is no such run (reason RUN_NOT_FOUND).
            FailedPrecondition: the run has already finished (reason RUN_FINISHED).
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        resp = await self._call(self._stub.CancelRun, pb.CancelRunRequest(run_id=run_id), timeout)
        return r.run_from_proto(resp.run)

    async def get_run(self, run_id: str, *, timeout: float | None = None) -> r.Run:
        """The run with its attempts.

        Args:
            run_id: the run to read.
            timeout: seconds for this call (default: the client's `timeout_seconds`).

        Returns:
            The run, with every attempt (worker, status, times, error).

        Raises:
            NotFound: there is no such run (reason RUN_NOT_FOUND).
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        return r.run_from_proto((await self._call(self._stub.GetRun, pb.GetRunRequest(run_id=run_id), timeout)).run)

    async def list_runs(self, *, timeout: float | None = None, **query: Any) -> r.RunPage:
        """One page of runs, newest first, without their attempts (`get_run` has them).

        Args:
            timeout: seconds for this call (default: the client's `timeout_seconds`).
            **query: status (a name such as "RUNNING", or several), queue, thread_id, created_after,
                created_before (datetimes), page_size, page_token (the last page's `next_page_token`).

        Returns:
            The page's runs and the token of the next page ("" at the end).

        Raises:
            ValueError: an unknown status name.
            InvalidArgument: a bad filter, page size or page token.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        return r.runs_page(await self._call(self._stub.ListRuns, r.list_runs_request(**query), timeout))

    async def iter_runs(self, *, limit: int | None = None, **query: Any) -> AsyncIterator[r.Run]:
        """Every matching run across pages, newest first, up to `limit`.

        Args:
            limit: the most runs to yield (default: all).
            **query: the filters of `list_runs` (status, queue, thread_id, created_after, created_before,
                page_size).

        Yields:
            Each run, fetching the next page as the last one runs out.

        Raises:
            ValueError: an unknown status name.
            InvalidArgument: a bad filter or page size.
            Unavailable: the server could not be reached (after gRPC's retries) or its store is down.
            DeadlineExceeded: no answer within the deadline.
            Unauthenticated: the token is missing or wrong.
            CairnError: any other failure (the root of all of them), with its gRPC code and ErrorInfo reason.
        """
        token, seen = "", 0
        while True:
            page = await self.list_runs(page_token=token, **query)
            for run in page.runs:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield run
            token = page.next_page_token
            if not token:
                return
