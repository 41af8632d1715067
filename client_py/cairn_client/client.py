"""CheckpointClient: the synchronous client. aio.py mirrors it method for method."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import grpc

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc

from . import _shared as s
from . import runs as r
from .errors import CairnError, from_item_error, from_rpc_error
from .types import Checkpoint, Page, SaveResult, ThreadInfo, ThreadPage

DEFAULT_TIMEOUT_SECONDS = 10.0


class CheckpointClient:
    """Talks to a Cairn server at `target` ("host:port" or "unix:/path").

    Use as a context manager, or call close(). Every call takes `timeout`
    (seconds; default `timeout_seconds`) and raises errors from cairn_client.errors.
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
    ) -> None:
        self.target = target
        self.timeout_seconds = timeout_seconds
        target, creds, options = s.channel_args(target, tls, token, max_message_bytes)
        self._channel = (
            grpc.secure_channel(target, creds, options) if creds else grpc.insecure_channel(target, options)
        )
        self._stub = pb_grpc.CheckpointStoreStub(self._channel)
        self._metadata = s.call_metadata(token, tls)
        self._wire = s.StateWire(compress_states, max_state_bytes=max_message_bytes)

    def __enter__(self) -> CheckpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, timeout=timeout or self.timeout_seconds, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def save(self, thread_id: str, state: Any, *, timeout: float | None = None, **fields: Any) -> SaveResult:
        """Save a checkpoint; `state` is bytes, or a JSON-serialisable value (state_type "json").

        fields: namespace, checkpoint_id, parent_checkpoint_id, state_type, metadata, node_name,
        next_nodes, expected_head_id, expect_empty, replace_existing.
        """
        return s.save_result(self._wire.saved(self._call(
            self._stub.Save, self._wire.outgoing(s.save_request(thread_id, state, **fields)), timeout
        )))

    def save_stream(
        self, requests: Iterable[pb.SaveRequest], *, timeout: float | None = None
    ) -> Iterator[SaveResult | CairnError]:
        """Save many checkpoints over one stream; yields one result or error per request, in order."""
        try:
            for resp in self._stub.SaveStream(
                (pb.SaveStreamRequest(save=self._wire.outgoing(r)) for r in requests),
                timeout=timeout, metadata=self._metadata,
            ):
                yield (
                    s.save_result(self._wire.saved(resp.save)) if resp.HasField("save")
                    else from_item_error(resp.error)
                )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def load(
        self, thread_id: str, *, namespace: str = "", checkpoint_id: str | None = None, timeout: float | None = None
    ) -> Checkpoint:
        """The checkpoint (the head when no id is given) with its pending writes."""
        req = pb.LoadRequest(
            thread_id=thread_id, namespace=namespace, checkpoint_id=checkpoint_id or "",
            accept_state_encodings=self._wire.accept,
        )
        return s.load_result(self._call(self._stub.Load, req, timeout), self._wire)

    def batch_load(
        self, loads: Sequence[tuple[str, str, str | None]], *, timeout: float | None = None
    ) -> list[Checkpoint | CairnError]:
        """Load (thread_id, namespace, checkpoint_id or None) triples in one call."""
        req = s.batch_load_request(loads, self._wire)
        return s.batch_load_results(self._call(self._stub.BatchLoad, req, timeout), self._wire)

    def list(self, thread_id: str = "", *, timeout: float | None = None, **query: Any) -> Page:
        """One page, newest first. query: namespace, metadata_filter, before, page_size, page_token,
        include_state, include_writes."""
        req = s.list_request(thread_id, accept=self._wire.accept, **query)
        return s.list_result(self._call(self._stub.List, req, timeout), self._wire)

    def iter_checkpoints(self, thread_id: str = "", *, limit: int | None = None, **query: Any) -> Iterator[Checkpoint]:
        """Every matching checkpoint across pages, newest first, up to `limit`."""
        token, seen = "", 0
        while True:
            page = self.list(thread_id, page_token=token, **query)
            for cp in page.checkpoints:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield cp
            token = page.next_page_token
            if not token:
                return

    def list_threads(
        self, *, page_size: int = 0, page_token: str = "", metadata_filter: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> ThreadPage:
        req = pb.ListThreadsRequest(page_size=page_size, page_token=page_token)
        if metadata_filter:
            req.metadata_filter.CopyFrom(s.to_struct(metadata_filter))
        return s.threads_result(self._call(self._stub.ListThreads, req, timeout))

    def iter_threads(self, **query: Any) -> Iterator[ThreadInfo]:
        token = ""
        while True:
            page = self.list_threads(page_token=token, **query)
            yield from page.threads
            token = page.next_page_token
            if not token:
                return

    def delete(
        self, thread_id: str, checkpoint_id: str, *, namespace: str = "", timeout: float | None = None
    ) -> bool:
        req = pb.DeleteRequest(thread_id=thread_id, namespace=namespace, checkpoint_id=checkpoint_id)
        return self._call(self._stub.Delete, req, timeout).deleted

    def clear(self, thread_id: str, *, timeout: float | None = None) -> int:
        return self._call(self._stub.Clear, pb.ClearRequest(thread_id=thread_id), timeout).deleted_count

    def put_writes(
        self, thread_id: str, checkpoint_id: str, task_id: str, writes: Sequence[s.WriteLike], *,
        timeout: float | None = None, **fields: Any,
    ) -> int:
        """Attach a task's writes to a checkpoint. fields: namespace, task_path, replace."""
        req = s.writes_request(thread_id, checkpoint_id, task_id, writes, **fields)
        return self._call(self._stub.PutWrites, req, timeout).written_count

    def copy_thread(self, source_thread_id: str, target_thread_id: str, *, timeout: float | None = None) -> int:
        req = pb.CopyThreadRequest(source_thread_id=source_thread_id, target_thread_id=target_thread_id)
        return self._call(self._stub.CopyThread, req, timeout).copied_count

    def prune(self, thread_ids: Sequence[str], *, keep_latest: int | None = 1, timeout: float | None = None) -> int:
        """Keep the newest `keep_latest` checkpoints per namespace (None deletes everything)."""
        return self._call(self._stub.Prune, s.prune_request(thread_ids, keep_latest), timeout).deleted_count

    def delete_runs(self, run_ids: Sequence[str], *, timeout: float | None = None) -> int:
        return self._call(self._stub.DeleteRuns, pb.DeleteRunsRequest(run_ids=list(run_ids)), timeout).deleted_count

    # -- durable runs (runs.py) ----------------------------------------------

    def start_run(self, thread_id: str, input: Any = None, *, timeout: float | None = None, **fields: Any) -> r.Run:
        """Queue a run of a graph on `thread_id`. fields: queue ("default"), run_id (set it to make a retried
        start idempotent), input_type, metadata, retry (runs.RetryPolicy), execution_timeout_seconds,
        not_before. FailedPrecondition (THREAD_BUSY) when the thread has a PENDING or RUNNING run."""
        req = r.start_run_request(thread_id, input, **fields)
        return r.run_from_proto(self._call(self._stub.StartRun, req, timeout).run)

    def claim_run(
        self, queue: str, worker_id: str, *, lease_seconds: float = 30.0, wait_seconds: float = 0.0,
        timeout: float | None = None,
    ) -> r.Claim | None:
        """The oldest claimable run of `queue` (pending, or abandoned by a crashed worker) under a new lease;
        waits up to `wait_seconds` for one (long-poll); None when none came."""
        req = r.claim_request(queue, worker_id, lease_seconds, wait_seconds)
        return r.claim_result(self._call(self._stub.ClaimRun, req, (timeout or self.timeout_seconds) + wait_seconds))

    def heartbeat(self, lease: r.RunLease, *, lease_seconds: float | None = None,
                  timeout: float | None = None) -> r.RunLease:
        """Extend the lease; RunStopped when the worker must stop (lease lost, run cancelled or timed out)."""
        req = pb.HeartbeatRequest(lease=lease.to_proto(), lease_duration_ms=round((lease_seconds or 0) * 1000))
        return r.lease_from_proto(self._call(self._stub.Heartbeat, req, timeout).lease)

    def complete_run(
        self, lease: r.RunLease, output: Any = None, *, interrupted: bool = False, checkpoint_id: str | None = None,
        output_type: str | None = None, timeout: float | None = None,
    ) -> r.Run:
        """End the attempt with success: COMPLETED, or INTERRUPTED (waiting for a human) with `interrupted`."""
        req = r.complete_request(lease, output, output_type, interrupted, checkpoint_id)
        return r.run_from_proto(self._call(self._stub.CompleteRun, req, timeout).run)

    def fail_run(
        self, lease: r.RunLease, error: BaseException | r.RunError | str, *, retryable: bool | None = None,
        timeout: float | None = None,
    ) -> r.Run:
        """End the attempt with an error; the run is PENDING again (a retry, per its RetryPolicy) or FAILED."""
        req = r.fail_request(lease, error, retryable)
        return r.run_from_proto(self._call(self._stub.FailRun, req, timeout).run)

    def cancel_run(self, run_id: str, *, timeout: float | None = None) -> r.Run:
        """Cancel a run: CANCELLED at once unless a worker holds it (then cancel_requested, until it sees it)."""
        return r.run_from_proto(self._call(self._stub.CancelRun, pb.CancelRunRequest(run_id=run_id), timeout).run)

    def get_run(self, run_id: str, *, timeout: float | None = None) -> r.Run:
        """The run with its attempts; NotFound when there is no such run."""
        return r.run_from_proto(self._call(self._stub.GetRun, pb.GetRunRequest(run_id=run_id), timeout).run)

    def list_runs(self, *, timeout: float | None = None, **query: Any) -> r.RunPage:
        """One page of runs, newest first. query: status (a name or several), queue, thread_id, created_after,
        created_before, page_size, page_token."""
        return r.runs_page(self._call(self._stub.ListRuns, r.list_runs_request(**query), timeout))

    def iter_runs(self, *, limit: int | None = None, **query: Any) -> Iterator[r.Run]:
        """Every matching run across pages, newest first, up to `limit`."""
        token, seen = "", 0
        while True:
            page = self.list_runs(page_token=token, **query)
            for run in page.runs:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield run
            token = page.next_page_token
            if not token:
                return
