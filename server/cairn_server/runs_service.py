"""The gRPC layer of durable runs: StartRun ... ListRuns, and the run lease of fenced writes.

A mixin of CheckpointStoreService (service.py), so the run RPCs share its
error mapping (calls.unary), tenancy, limits and metrics. Requests are checked here;
the transitions themselves are pure (storage/runs_base.py) and the run store
(storage/runs_sqlite.py or runs_postgres.py, by the cold store) applies them
in one transaction each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import struct_pb2
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.ids import uuid7

from cairn.errors import CairnError, InvalidArgument, RunStopped, RunNotFound
from .page_tokens import PageToken, fingerprint
from .storage.runs_base import (
    PENDING,
    RUNNING,
    STATUSES,
    AttemptRow,
    Change,
    Lease,
    RunFailure,
    RunQuery,
    RunRow,
    RunStore,
    cancel,
    complete,
    fail,
    heartbeat,
    request_hash,
    settle,
)

if TYPE_CHECKING:
    from .service import CheckpointStoreService

log = logging.getLogger("cairn.runs")
T = TypeVar("T")

DEFAULT_LEASE_MS = 30_000
MIN_LEASE_MS, MAX_LEASE_MS = 1_000, 600_000
MAX_WAIT_MS = 60_000
MAX_ATTEMPTS = 100
POLL_SECONDS = 0.2  # a waiting claim looks again this often: runs started through another server process, due backoffs
QUEUE_DEPTH_REFRESH_SECONDS = 5.0
SWEEP_SECONDS = 1.0  # how often a server ends the runs no worker holds that must end (runs_base.sweep)
SWEEP_BATCH = 100
_STATUS_PREFIX = "RUN_STATUS_"
_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def open_run_store(cold: Any) -> RunStore:
    """The run store of a cold store: runs live beside the checkpoints they fence."""
    if cold.name == "postgres":
        from .storage.runs_postgres import PostgresRuns

        return PostgresRuns(cold)
    from .storage.runs_sqlite import SqliteRuns

    return SqliteRuns(cold)


class RunMetrics:
    """Run lifecycle counters, claim latency, run duration and queue depth (read at scrape time)."""

    def __init__(self, registry: Any) -> None:
        self.events = Counter(
            "cairn_runs", "Run lifecycle events: started, recovered, retried, completed, interrupted, failed, "
            "cancelled, retry_scheduled, lease_expired, timed_out", ["event"], registry=registry,
        )
        self.claim_latency = Histogram(
            "cairn_run_claim_latency_seconds", "How long a run was claimable (pending, due, or abandoned) before "
            "a worker claimed it", buckets=_DURATION_BUCKETS, registry=registry,
        )
        self.duration = Histogram(
            "cairn_run_duration_seconds", "From a run's first claim to its end (COMPLETED, FAILED, CANCELLED, "
            "INTERRUPTED)", buckets=_DURATION_BUCKETS, registry=registry,
        )
        self.depths: dict[str, int] = {}
        registry.register(_QueueDepth(self))


class _QueueDepth(Collector):
    def __init__(self, metrics: RunMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("cairn_run_queue_depth", "Claimable runs (pending and due, or abandoned) per "
                                  "queue, all tenants; refreshed every few seconds", labels=["queue"])
        for queue, n in sorted(self.metrics.depths.items()):
            depth.add_metric([queue], n)
        yield depth


class _Waiters:
    """Claims waiting on a (tenant, queue), woken when a run becomes claimable through this process."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}
        self._waiting: dict[tuple[str, str], int] = {}

    async def wait(self, key: tuple[str, str], seconds: float) -> None:
        event = self._events.setdefault(key, asyncio.Event())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                if self._events.get(key) is event:
                    del self._events[key]

    def notify(self, key: tuple[str, str]) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()


def _us(ts: Any) -> int:
    return int(ts.seconds) * 1_000_000 + int(ts.nanos) // 1000


def _set_us(ts: Any, us: int | None) -> None:
    if us:
        ts.FromMicroseconds(us)


def _struct(json_text: str) -> struct_pb2.Struct:
    import json

    s = struct_pb2.Struct()
    doc = json.loads(json_text or "{}")
    if doc:
        s.update(doc)
    return s


def run_to_proto(row: RunRow, attempts: Iterable[AttemptRow] = ()) -> pb.Run:
    out = pb.Run(
        run_id=row.run_id, thread_id=row.thread_id, queue=row.queue,
        status=pb.RunStatus.Value(_STATUS_PREFIX + row.status), input=row.input, input_type=row.input_type,
        metadata=_struct(row.metadata_json),
        retry_policy=pb.RetryPolicy(
            max_attempts=row.max_attempts, initial_backoff_ms=row.initial_backoff_ms,
            backoff_coefficient=row.backoff_coefficient, max_backoff_ms=row.max_backoff_ms,
            max_recoveries=row.max_recoveries,
        ),
        execution_timeout_ms=row.execution_timeout_ms, attempt_count=row.attempt_count,
        failed_attempt_count=row.failed_attempt_count, recovery_count=row.recovery_count,
        cancel_requested=row.cancel_requested, worker_id=row.worker_id, lease_epoch=row.epoch, output=row.output,
        output_type=row.output_type, checkpoint_id=row.checkpoint_id,
    )
    _set_us(out.created_at, row.created_us)
    _set_us(out.started_at, row.started_us)
    _set_us(out.updated_at, row.updated_us)
    _set_us(out.ended_at, row.ended_us)
    if row.status == RUNNING:
        _set_us(out.lease_expires_at, row.lease_expires_us)
    if row.status == PENDING:
        _set_us(out.not_before, row.not_before_us)
    if row.error_reason:
        out.error.CopyFrom(pb.RunError(reason=row.error_reason, type=row.error_type, message=row.error_message,
                                       retryable=row.error_retryable))
    for a in attempts:
        attempt = out.attempts.add(
            number=a.number, worker_id=a.worker_id, status=pb.RunStatus.Value(_STATUS_PREFIX + a.status),
            recovered=a.recovered,
        )
        _set_us(attempt.started_at, a.started_us)
        _set_us(attempt.ended_at, a.ended_us)
        if a.error_reason:
            attempt.error.CopyFrom(pb.RunError(reason=a.error_reason, type=a.error_type, message=a.error_message,
                                               retryable=a.error_retryable))
    return out


def lease_to_proto(row: RunRow) -> pb.RunLease:
    lease = pb.RunLease(run_id=row.run_id, epoch=row.epoch, token=row.token)
    _set_us(lease.expires_at, row.lease_expires_us)
    return lease


class RunRpcs:
    """StartRun, ClaimRun, Heartbeat, CompleteRun, FailRun, CancelRun, GetRun, ListRuns."""

    runs: RunStore
    run_metrics: RunMetrics | None

    def _init_runs(self: CheckpointStoreService) -> None:
        self.runs = open_run_store(self.store.cold)
        self.run_metrics = RunMetrics(self.metrics.registry) if self.metrics is not None else None
        self._run_waiters = _Waiters()
        self._depth_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        # The sweeper starts with the server (server.py) or at the first run RPC, never here: a server that
        # fails to start closes the store under it.

    def close_runs(self: CheckpointStoreService) -> None:
        """Stop the background tasks (sweeper, queue depth) before the store closes."""
        for task in (self._sweep_task, self._depth_task):
            if task is not None:
                task.cancel()
        self._sweep_task = self._depth_task = None

    def _start_sweeper(self: CheckpointStoreService) -> None:
        """End runs whose cancel or execution timeout came while no worker held them, even when no worker
        claims from their queue any more (a claim would end them too)."""
        if self._sweep_task is not None:
            return

        async def loop() -> None:
            while True:
                try:
                    changes = await self.runs.sweep(SWEEP_BATCH)
                    self._count_run(changes)
                    if len(changes) == SWEEP_BATCH:
                        continue
                except CairnError as exc:
                    log.warning("run sweep failed: %s", exc.message)
                await asyncio.sleep(SWEEP_SECONDS)

        self._sweep_task = asyncio.get_running_loop().create_task(loop())

    # -- helpers -----------------------------------------------------------

    def _lease(self: CheckpointStoreService, field: str, msg: pb.RunLease) -> Lease:
        run_id = self.limits.id(f"{field}.run_id", msg.run_id, required=True)
        if msg.epoch <= 0:
            raise InvalidArgument(f"{field}.epoch", f"{field}.epoch must be the positive epoch ClaimRun returned")
        if not msg.token:
            raise InvalidArgument(f"{field}.token", f"{field}.token is required: send the lease ClaimRun returned")
        return Lease(run_id, msg.epoch, self.limits.text(f"{field}.token", msg.token))

    def run_lease_of(self: CheckpointStoreService, request: Any) -> Lease | None:
        """The run lease a Save or PutWrites carries, validated; None when it carries none."""
        return self._lease("run_lease", request.run_lease) if request.HasField("run_lease") else None

    async def fenced(self: CheckpointStoreService, tenant: str, lease: Lease | None, write: Awaitable[T]) -> T:
        """Await a write; when its lease was refused because the run was cancelled or timed out, end the run
        before reporting the refusal (the write's own transaction could only read the run)."""
        try:
            return await write
        except RunStopped as err:
            if lease is not None:
                await self.settle_refused(tenant, lease, err)
            raise

    async def settle_refused(self: CheckpointStoreService, tenant: str, lease: Lease, err: CairnError) -> None:
        if err.reason not in ("RUN_CANCELLED", "RUN_TIMED_OUT"):
            return
        try:
            change = await self.runs.transition(tenant, lease.run_id, lambda row, now: settle(row, lease, now))
        except CairnError as exc:  # the refusal stands; the run ends at its next heartbeat or lease expiry instead
            log.warning("could not end run %s after a refused write: %s", lease.run_id, exc.message)
            return
        self._count_run([change])

    def _count_run(self: CheckpointStoreService, changes: list[Change]) -> None:
        m = self.run_metrics
        if m is None:
            return
        for change in changes:
            for event in change.events:
                m.events.labels(event).inc()
            if change.claimed:
                m.claim_latency.observe(change.waited_us / 1e6)
            run = change.run
            if change.write and run.ended_us and run.started_us and run.status not in (PENDING, RUNNING):
                m.duration.observe(max(0, run.ended_us - run.started_us) / 1e6)  # runs that never started: none

    def _watch_depths(self: CheckpointStoreService) -> None:
        self._start_sweeper()
        if self.run_metrics is None or self._depth_task is not None:
            return

        async def refresh(metrics: RunMetrics) -> None:
            while True:
                try:
                    metrics.depths = await self.runs.queue_depths()
                except CairnError as exc:
                    log.warning("queue depth refresh failed: %s", exc.message)
                await asyncio.sleep(QUEUE_DEPTH_REFRESH_SECONDS)

        self._depth_task = asyncio.get_running_loop().create_task(refresh(self.run_metrics))

    def _duration_ms(self: CheckpointStoreService, field: str, value: int, default: int) -> int:
        if value == 0:
            return default
        if not MIN_LEASE_MS <= value <= MAX_LEASE_MS:
            raise InvalidArgument(field, f"{field} must be 0 (default {default} ms) or {MIN_LEASE_MS}.."
                                         f"{MAX_LEASE_MS} ms, not {value}")
        return value

    async def _transition(self: CheckpointStoreService, tenant: str, run_id: str, step: Any) -> Change:
        change = await self.runs.transition(tenant, run_id, step)
        self._count_run([change])
        if change.error is not None:
            raise change.error
        return change

    # -- RPCs --------------------------------------------------------------

    async def _start_run(self: CheckpointStoreService, request: pb.StartRunRequest,
                         context: grpc.aio.ServicerContext) -> pb.StartRunResponse:
        tenant = self._tenant(context)
        lim = self.limits
        run_id = lim.id("run_id", request.run_id, required=False) or uuid7()
        thread_id = lim.id("thread_id", request.thread_id, required=True)
        queue = lim.id("queue", request.queue, required=True)
        lim.state(len(request.input))
        input_type = lim.text("input_type", request.input_type)
        metadata = "{}"
        if request.HasField("metadata") and len(request.metadata.fields):
            metadata = lim.metadata("metadata", request.metadata)
        p = request.retry_policy
        if not 0 <= p.max_attempts <= MAX_ATTEMPTS:
            raise InvalidArgument("retry_policy.max_attempts",
                                  f"retry_policy.max_attempts must be 0 (one attempt) to {MAX_ATTEMPTS}, "
                                  f"not {p.max_attempts}")
        for name in ("initial_backoff_ms", "max_backoff_ms"):
            if getattr(p, name) < 0:
                raise InvalidArgument(f"retry_policy.{name}", f"retry_policy.{name} must be 0 (default) or positive")
        if p.backoff_coefficient != 0 and not 1 <= p.backoff_coefficient <= 100:
            raise InvalidArgument("retry_policy.backoff_coefficient",
                                  "retry_policy.backoff_coefficient must be 0 (default 2.0) or 1..100, "
                                  f"not {p.backoff_coefficient}")
        if p.max_recoveries < 0:
            raise InvalidArgument("retry_policy.max_recoveries", "retry_policy.max_recoveries must be 0 (no limit) "
                                                                 "or positive")
        if request.execution_timeout_ms < 0:
            raise InvalidArgument("execution_timeout_ms", "execution_timeout_ms must be 0 (none) or positive")
        initial = p.initial_backoff_ms or 1000
        not_before = _us(request.not_before) if request.HasField("not_before") else 0
        now = time.time_ns() // 1000
        row = RunRow(
            tenant=tenant, run_id=run_id, thread_id=thread_id, queue=queue, status=PENDING, input=request.input,
            input_type=input_type, metadata_json=metadata, max_attempts=max(1, p.max_attempts),
            initial_backoff_ms=initial, backoff_coefficient=p.backoff_coefficient or 2.0,
            max_backoff_ms=p.max_backoff_ms or 100 * initial, max_recoveries=p.max_recoveries,
            execution_timeout_ms=request.execution_timeout_ms,
            request_hash=b"", created_us=now, updated_us=now, not_before_us=not_before,
        )
        row.request_hash = request_hash(
            thread_id, queue, request.input, input_type, metadata, row.max_attempts, row.initial_backoff_ms,
            row.backoff_coefficient, row.max_backoff_ms, row.max_recoveries, row.execution_timeout_ms, not_before,
        )
        stored, existed = await self.runs.start(row)
        if not existed:
            self._run_waiters.notify((tenant, queue))
        self._watch_depths()
        return pb.StartRunResponse(run=run_to_proto(stored), already_existed=existed)

    async def _claim_run(self: CheckpointStoreService, request: pb.ClaimRunRequest,
                         context: grpc.aio.ServicerContext) -> pb.ClaimRunResponse:
        tenant = self._tenant(context)
        queue = self.limits.id("queue", request.queue, required=True)
        worker_id = self.limits.id("worker_id", request.worker_id, required=True)
        lease_ms = self._duration_ms("lease_duration_ms", request.lease_duration_ms, DEFAULT_LEASE_MS)
        if request.wait_ms < 0:
            raise InvalidArgument("wait_ms", f"wait_ms must be 0 (answer at once) or positive, not {request.wait_ms}")
        wait = min(request.wait_ms, MAX_WAIT_MS) / 1000
        remaining = context.time_remaining()
        if remaining is not None:  # answer (empty) before the caller's deadline rather than let it expire
            wait = min(wait, max(0.0, remaining - 0.1))
        self._watch_depths()
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        while True:
            changes = await self.runs.claim(tenant, queue, worker_id, lease_ms)
            self._count_run(changes)
            if changes and changes[-1].claimed:
                got = changes[-1]
                return pb.ClaimRunResponse(run=run_to_proto(got.run), lease=lease_to_proto(got.run),
                                           recovered=got.recovered)
            if changes:  # ended some abandoned runs that may not run again; look at the next ones
                continue
            left = until - loop.time()
            if left <= 0:
                return pb.ClaimRunResponse()
            await self._run_waiters.wait((tenant, queue), min(left, POLL_SECONDS))

    async def _heartbeat(self: CheckpointStoreService, request: pb.HeartbeatRequest,
                         context: grpc.aio.ServicerContext) -> pb.HeartbeatResponse:
        tenant = self._tenant(context)
        lease = self._lease("lease", request.lease)
        lease_ms = self._duration_ms("lease_duration_ms", request.lease_duration_ms, 0) \
            if request.lease_duration_ms else 0
        change = await self._transition(tenant, lease.run_id, lambda row, now: heartbeat(row, lease, lease_ms, now))
        return pb.HeartbeatResponse(lease=lease_to_proto(change.run))

    async def _complete_run(self: CheckpointStoreService, request: pb.CompleteRunRequest,
                            context: grpc.aio.ServicerContext) -> pb.CompleteRunResponse:
        tenant = self._tenant(context)
        lease = self._lease("lease", request.lease)
        self.limits.state(len(request.output))
        output_type = self.limits.text("output_type", request.output_type)
        checkpoint_id = self.limits.id("checkpoint_id", request.checkpoint_id, required=False)
        change = await self._transition(tenant, lease.run_id, lambda row, now: complete(
            row, lease, request.output, output_type, request.interrupted, checkpoint_id, now))
        return pb.CompleteRunResponse(run=run_to_proto(change.run))

    async def _fail_run(self: CheckpointStoreService, request: pb.FailRunRequest,
                        context: grpc.aio.ServicerContext) -> pb.FailRunResponse:
        tenant = self._tenant(context)
        lease = self._lease("lease", request.lease)
        if not request.HasField("error"):
            raise InvalidArgument("error", "error is required: say what failed (type, message, retryable)")
        e = request.error
        message = e.message.encode("utf-8", "surrogatepass")[: 4 * self.config.max_id_bytes].decode("utf-8", "ignore")
        failure = RunFailure(self.limits.text("error.type", e.type), message.replace("\x00", ""), e.retryable)
        change = await self._transition(tenant, lease.run_id, lambda row, now: fail(row, lease, failure, now))
        if change.will_retry:
            self._run_waiters.notify((tenant, change.run.queue))
        return pb.FailRunResponse(run=run_to_proto(change.run), will_retry=change.will_retry)

    async def _cancel_run(self: CheckpointStoreService, request: pb.CancelRunRequest,
                          context: grpc.aio.ServicerContext) -> pb.CancelRunResponse:
        tenant = self._tenant(context)
        run_id = self.limits.id("run_id", request.run_id, required=True)
        change = await self._transition(tenant, run_id, cancel)
        return pb.CancelRunResponse(run=run_to_proto(change.run))

    async def _get_run(self: CheckpointStoreService, request: pb.GetRunRequest,
                       context: grpc.aio.ServicerContext) -> pb.GetRunResponse:
        tenant = self._tenant(context)
        run_id = self.limits.id("run_id", request.run_id, required=True)
        found = await self.runs.get(tenant, run_id)
        if found is None:
            raise RunNotFound(run_id)
        return pb.GetRunResponse(run=run_to_proto(*found))

    async def _list_runs(self: CheckpointStoreService, request: pb.ListRunsRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        tenant = self._tenant(context)
        limit = self.limits.page_size(request.page_size)
        statuses = []
        for value in request.statuses:
            name = pb.RunStatus.Name(value) if value in pb.RunStatus.values() else ""
            status = name[len(_STATUS_PREFIX):]
            if status not in STATUSES:
                raise InvalidArgument("statuses", f"statuses holds {value}, which is not a run status; use "
                                                  "RUN_STATUS_PENDING .. RUN_STATUS_CANCELLED")
            statuses.append(status)
        statuses = sorted(set(statuses))
        queue = self.limits.id("queue", request.queue, required=False)
        thread_id = self.limits.id("thread_id", request.thread_id, required=False)
        after_us = _us(request.created_after) if request.HasField("created_after") else None
        before_us = _us(request.created_before) if request.HasField("created_before") else None
        fp = fingerprint("runs", tenant, statuses, queue, thread_id, after_us, before_us)
        position = None
        if request.page_token:
            pos = PageToken.decode(request.page_token, fp, kind=list)
            if len(pos) != 2 or not isinstance(pos[0], int) or not isinstance(pos[1], str):
                raise InvalidArgument("page_token", "page_token is not one this server issued")
            position = (pos[0], pos[1])
        rows = await self.runs.list(RunQuery(tenant, statuses, queue, thread_id, after_us, before_us, position,
                                             limit + 1))
        resp = pb.ListRunsResponse(runs=[run_to_proto(r) for r in rows[:limit]])
        if len(rows) > limit:
            last = rows[limit - 1]
            resp.next_page_token = PageToken.encode([last.created_us, last.run_id], fp)
        return resp
