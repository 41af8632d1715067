"""AsyncCheckpointClient: the asyncio client, mirroring client.CheckpointClient method for method."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import grpc

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc

from . import _shared as s
from . import runs as r
from .client import DEFAULT_TIMEOUT_SECONDS
from .errors import CairnError, from_item_error, from_rpc_error
from .types import Checkpoint, Page, SaveResult, ThreadInfo, ThreadPage


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
    ) -> None:
        self.target = target
        self.timeout_seconds = timeout_seconds
        target, creds, options = s.channel_args(target, tls, token, max_message_bytes)
        self._channel = (
            grpc.aio.secure_channel(target, creds, options) if creds else grpc.aio.insecure_channel(target, options)
        )
        self._stub = pb_grpc.CheckpointStoreStub(self._channel)
        self._metadata = s.call_metadata(token, tls)
        self._wire = s.StateWire(compress_states, max_state_bytes=max_message_bytes)

    async def __aenter__(self) -> AsyncCheckpointClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, timeout=timeout or self.timeout_seconds, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    async def save(self, thread_id: str, state: Any, *, timeout: float | None = None, **fields: Any) -> SaveResult:
        req = self._wire.outgoing(s.save_request(thread_id, state, **fields))
        return s.save_result(self._wire.saved(await self._call(self._stub.Save, req, timeout)))

    async def save_stream(
        self, requests: Iterable[pb.SaveRequest], *, timeout: float | None = None
    ) -> AsyncIterator[SaveResult | CairnError]:
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
        req = pb.LoadRequest(
            thread_id=thread_id, namespace=namespace, checkpoint_id=checkpoint_id or "",
            accept_state_encodings=self._wire.accept,
        )
        return s.load_result(await self._call(self._stub.Load, req, timeout), self._wire)

    async def batch_load(
        self, loads: Sequence[tuple[str, str, str | None]], *, timeout: float | None = None
    ) -> list[Checkpoint | CairnError]:
        req = s.batch_load_request(loads, self._wire)
        return s.batch_load_results(await self._call(self._stub.BatchLoad, req, timeout), self._wire)

    async def list(self, thread_id: str = "", *, timeout: float | None = None, **query: Any) -> Page:
        req = s.list_request(thread_id, accept=self._wire.accept, **query)
        return s.list_result(await self._call(self._stub.List, req, timeout), self._wire)

    async def iter_checkpoints(
        self, thread_id: str = "", *, limit: int | None = None, **query: Any
    ) -> AsyncIterator[Checkpoint]:
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
        req = pb.ListThreadsRequest(page_size=page_size, page_token=page_token)
        if metadata_filter:
            req.metadata_filter.CopyFrom(s.to_struct(metadata_filter))
        return s.threads_result(await self._call(self._stub.ListThreads, req, timeout))

    async def iter_threads(self, **query: Any) -> AsyncIterator[ThreadInfo]:
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
        req = pb.DeleteRequest(thread_id=thread_id, namespace=namespace, checkpoint_id=checkpoint_id)
        return (await self._call(self._stub.Delete, req, timeout)).deleted

    async def clear(self, thread_id: str, *, timeout: float | None = None) -> int:
        return (await self._call(self._stub.Clear, pb.ClearRequest(thread_id=thread_id), timeout)).deleted_count

    async def put_writes(
        self, thread_id: str, checkpoint_id: str, task_id: str, writes: Sequence[s.WriteLike], *,
        timeout: float | None = None, **fields: Any,
    ) -> int:
        req = s.writes_request(thread_id, checkpoint_id, task_id, writes, **fields)
        return (await self._call(self._stub.PutWrites, req, timeout)).written_count

    async def copy_thread(self, source_thread_id: str, target_thread_id: str, *, timeout: float | None = None) -> int:
        req = pb.CopyThreadRequest(source_thread_id=source_thread_id, target_thread_id=target_thread_id)
        return (await self._call(self._stub.CopyThread, req, timeout)).copied_count

    async def prune(
        self, thread_ids: Sequence[str], *, keep_latest: int | None = 1, timeout: float | None = None
    ) -> int:
        return (await self._call(self._stub.Prune, s.prune_request(thread_ids, keep_latest), timeout)).deleted_count

    async def delete_runs(self, run_ids: Sequence[str], *, timeout: float | None = None) -> int:
        req = pb.DeleteRunsRequest(run_ids=list(run_ids))
        return (await self._call(self._stub.DeleteRuns, req, timeout)).deleted_count

    # -- durable runs (runs.py; documented on client.CheckpointClient) --------

    async def start_run(self, thread_id: str, input: Any = None, *, timeout: float | None = None,
                        **fields: Any) -> r.Run:
        req = r.start_run_request(thread_id, input, **fields)
        return r.run_from_proto((await self._call(self._stub.StartRun, req, timeout)).run)

    async def claim_run(
        self, queue: str, worker_id: str, *, lease_seconds: float = 30.0, wait_seconds: float = 0.0,
        timeout: float | None = None,
    ) -> r.Claim | None:
        req = r.claim_request(queue, worker_id, lease_seconds, wait_seconds)
        return r.claim_result(
            await self._call(self._stub.ClaimRun, req, (timeout or self.timeout_seconds) + wait_seconds)
        )

    async def heartbeat(self, lease: r.RunLease, *, lease_seconds: float | None = None,
                        timeout: float | None = None) -> r.RunLease:
        req = pb.HeartbeatRequest(lease=lease.to_proto(), lease_duration_ms=round((lease_seconds or 0) * 1000))
        return r.lease_from_proto((await self._call(self._stub.Heartbeat, req, timeout)).lease)

    async def complete_run(
        self, lease: r.RunLease, output: Any = None, *, interrupted: bool = False, checkpoint_id: str | None = None,
        output_type: str | None = None, timeout: float | None = None,
    ) -> r.Run:
        req = r.complete_request(lease, output, output_type, interrupted, checkpoint_id)
        return r.run_from_proto((await self._call(self._stub.CompleteRun, req, timeout)).run)

    async def fail_run(
        self, lease: r.RunLease, error: BaseException | r.RunError | str, *, retryable: bool | None = None,
        timeout: float | None = None,
    ) -> r.Run:
        req = r.fail_request(lease, error, retryable)
        return r.run_from_proto((await self._call(self._stub.FailRun, req, timeout)).run)

    async def cancel_run(self, run_id: str, *, timeout: float | None = None) -> r.Run:
        resp = await self._call(self._stub.CancelRun, pb.CancelRunRequest(run_id=run_id), timeout)
        return r.run_from_proto(resp.run)

    async def get_run(self, run_id: str, *, timeout: float | None = None) -> r.Run:
        return r.run_from_proto((await self._call(self._stub.GetRun, pb.GetRunRequest(run_id=run_id), timeout)).run)

    async def list_runs(self, *, timeout: float | None = None, **query: Any) -> r.RunPage:
        return r.runs_page(await self._call(self._stub.ListRuns, r.list_runs_request(**query), timeout))

    async def iter_runs(self, *, limit: int | None = None, **query: Any) -> AsyncIterator[r.Run]:
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
