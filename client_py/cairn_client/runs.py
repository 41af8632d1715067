"""Durable runs on the client: the types (Run, RunLease, Claim ...) and the pure request/response helpers the
sync and async clients share (client.py and aio.py call them method for method).

A run executes a graph on a thread. start_run() queues it; a worker claim_run()s it and holds it under a
RunLease, heartbeat()s while working, passes the lease to save()/put_writes() (fenced writes), and ends
it with complete_run() or fail_run(). A call under a lease that may not go on raises RunStopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cairn.v1 import checkpoint_store_pb2 as pb

from ._shared import from_struct, to_struct

STATUSES = ("PENDING", "RUNNING", "INTERRUPTED", "COMPLETED", "FAILED", "CANCELLED")
FINAL = ("COMPLETED", "FAILED", "CANCELLED")
_PREFIX = "RUN_STATUS_"


@dataclass(frozen=True)
class RetryPolicy:
    """How the server retries a run whose attempt failed with a retryable error (FailRun).

    max_attempts counts every attempt, the first included (1 = no retry). The wait before retry n is
    initial_backoff_seconds * backoff_coefficient**(n-1), capped at max_backoff_seconds. max_recoveries:
    how often a run may be taken over after its worker stopped heartbeating (0 = no limit).
    """

    max_attempts: int = 1
    initial_backoff_seconds: float = 1.0
    backoff_coefficient: float = 2.0
    max_backoff_seconds: float | None = None
    max_recoveries: int = 0

    def to_proto(self) -> pb.RetryPolicy:
        return pb.RetryPolicy(
            max_attempts=self.max_attempts, initial_backoff_ms=round(self.initial_backoff_seconds * 1000),
            backoff_coefficient=self.backoff_coefficient,
            max_backoff_ms=round(self.max_backoff_seconds * 1000) if self.max_backoff_seconds else 0,
            max_recoveries=self.max_recoveries,
        )


@dataclass(frozen=True)
class RunLease:
    """A worker's claim on a run: send it with heartbeat, fenced writes, complete_run and fail_run."""

    run_id: str
    epoch: int
    token: str
    expires_at: datetime | None = None

    def to_proto(self) -> pb.RunLease:
        return pb.RunLease(run_id=self.run_id, epoch=self.epoch, token=self.token)


@dataclass(frozen=True)
class RunError:
    """Why an attempt or a run failed: reason is ERROR (reported by the worker), EXECUTION_TIMEOUT,
    LEASE_EXPIRED, RECOVERIES_EXHAUSTED or CANCELLED; type and message describe the worker's error."""

    reason: str
    type: str = ""
    message: str = ""
    retryable: bool = False


@dataclass(frozen=True)
class RunAttempt:
    """One claim of a run by a worker."""

    number: int
    worker_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    error: RunError | None
    recovered: bool


@dataclass(frozen=True)
class Run:
    """A run as the server keeps it (see proto/cairn/v1/checkpoint_store.proto, message Run)."""

    run_id: str
    thread_id: str
    queue: str
    status: str
    input: bytes
    input_type: str
    metadata: dict[str, Any]
    retry_policy: RetryPolicy
    execution_timeout_seconds: float | None
    created_at: datetime | None
    started_at: datetime | None
    updated_at: datetime | None
    ended_at: datetime | None
    attempt_count: int
    failed_attempt_count: int
    recovery_count: int
    cancel_requested: bool
    worker_id: str
    lease_epoch: int
    lease_expires_at: datetime | None
    not_before: datetime | None
    error: RunError | None
    output: bytes
    output_type: str
    checkpoint_id: str
    attempts: list[RunAttempt] = field(default_factory=list)

    def input_json(self) -> Any:
        """The input decoded as JSON (None when empty)."""
        return json.loads(self.input) if self.input else None

    def output_json(self) -> Any:
        """The output decoded as JSON (None when empty)."""
        return json.loads(self.output) if self.output else None

    @property
    def done(self) -> bool:
        """COMPLETED, FAILED or CANCELLED: the run will not change again."""
        return self.status in FINAL


@dataclass(frozen=True)
class Claim:
    """A claimed run and the lease to work on it under; recovered = it was abandoned by another worker."""

    run: Run
    lease: RunLease
    recovered: bool


@dataclass(frozen=True)
class RunPage:
    """One page of ListRuns, newest first."""

    runs: list[Run]
    next_page_token: str


def _when(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    return getattr(message, name).ToDatetime(tzinfo=timezone.utc)


def _error(message: Any) -> RunError | None:
    if not message.HasField("error"):
        return None
    e = message.error
    return RunError(e.reason, e.type, e.message, e.retryable)


def status_name(value: int) -> str:
    return pb.RunStatus.Name(value)[len(_PREFIX):]


def run_from_proto(r: pb.Run) -> Run:
    p = r.retry_policy
    return Run(
        run_id=r.run_id, thread_id=r.thread_id, queue=r.queue, status=status_name(r.status), input=r.input,
        input_type=r.input_type, metadata=from_struct(r.metadata),
        retry_policy=RetryPolicy(
            max_attempts=p.max_attempts, initial_backoff_seconds=p.initial_backoff_ms / 1000,
            backoff_coefficient=p.backoff_coefficient, max_backoff_seconds=p.max_backoff_ms / 1000 or None,
            max_recoveries=p.max_recoveries,
        ),
        execution_timeout_seconds=r.execution_timeout_ms / 1000 or None,
        created_at=_when(r, "created_at"), started_at=_when(r, "started_at"), updated_at=_when(r, "updated_at"),
        ended_at=_when(r, "ended_at"), attempt_count=r.attempt_count, failed_attempt_count=r.failed_attempt_count,
        recovery_count=r.recovery_count, cancel_requested=r.cancel_requested, worker_id=r.worker_id,
        lease_epoch=r.lease_epoch, lease_expires_at=_when(r, "lease_expires_at"), not_before=_when(r, "not_before"),
        error=_error(r), output=r.output, output_type=r.output_type, checkpoint_id=r.checkpoint_id,
        attempts=[
            RunAttempt(a.number, a.worker_id, status_name(a.status), _when(a, "started_at"), _when(a, "ended_at"),
                       _error(a), a.recovered)
            for a in r.attempts
        ],
    )


def lease_from_proto(lease: pb.RunLease) -> RunLease:
    return RunLease(lease.run_id, lease.epoch, lease.token, _when(lease, "expires_at"))


def _payload(value: Any, value_type: str | None) -> tuple[bytes, str]:
    if value is None:
        return b"", value_type or ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), value_type if value_type is not None else "json"
    if value_type not in (None, "json"):
        raise TypeError(f"the value must be bytes when its type is {value_type!r}")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), "json"


def start_run_request(
    thread_id: str,
    input: Any = None,
    *,
    queue: str = "default",
    run_id: str | None = None,
    input_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    execution_timeout_seconds: float | None = None,
    not_before: datetime | None = None,
) -> pb.StartRunRequest:
    """input: JSON-serialisable (input_type "json") or bytes with its input_type."""
    raw, kind = _payload(input, input_type)
    req = pb.StartRunRequest(
        run_id=run_id or "", thread_id=thread_id, queue=queue, input=raw, input_type=kind,
        execution_timeout_ms=round((execution_timeout_seconds or 0) * 1000),
    )
    if metadata:
        req.metadata.CopyFrom(to_struct(metadata))
    if retry is not None:
        req.retry_policy.CopyFrom(retry.to_proto())
    if not_before is not None:
        req.not_before.FromDatetime(not_before)
    return req


def claim_request(queue: str, worker_id: str, lease_seconds: float, wait_seconds: float) -> pb.ClaimRunRequest:
    return pb.ClaimRunRequest(queue=queue, worker_id=worker_id, lease_duration_ms=round(lease_seconds * 1000),
                              wait_ms=round(wait_seconds * 1000))


def claim_result(resp: pb.ClaimRunResponse) -> Claim | None:
    if not resp.HasField("run"):
        return None
    return Claim(run_from_proto(resp.run), lease_from_proto(resp.lease), resp.recovered)


def complete_request(
    lease: RunLease, output: Any, output_type: str | None, interrupted: bool, checkpoint_id: str | None
) -> pb.CompleteRunRequest:
    raw, kind = _payload(output, output_type)
    return pb.CompleteRunRequest(lease=lease.to_proto(), output=raw, output_type=kind, interrupted=interrupted,
                                 checkpoint_id=checkpoint_id or "")


def fail_request(lease: RunLease, error: BaseException | RunError | str, retryable: bool | None) -> pb.FailRunRequest:
    """error: an exception (its type name and message are sent), a RunError, or a message."""
    if isinstance(error, BaseException):
        kind, message = type(error).__name__, str(error)
    elif isinstance(error, RunError):
        kind, message = error.type, error.message
        retryable = error.retryable if retryable is None else retryable
    else:
        kind, message = "", str(error)
    return pb.FailRunRequest(lease=lease.to_proto(),
                             error=pb.RunError(type=kind, message=message, retryable=bool(retryable)))


def list_runs_request(
    *,
    status: str | Iterable[str] | None = None,
    queue: str = "",
    thread_id: str = "",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
) -> pb.ListRunsRequest:
    """status: one status name ("RUNNING") or several; case-insensitive."""
    names = [status] if isinstance(status, str) else list(status or [])
    statuses = []
    for name in names:
        upper = name.upper()
        if upper not in STATUSES:
            raise ValueError(f"unknown run status {name!r}; use one of {', '.join(STATUSES)}")
        statuses.append(pb.RunStatus.Value(_PREFIX + upper))
    req = pb.ListRunsRequest(statuses=statuses, queue=queue, thread_id=thread_id, page_size=page_size,
                             page_token=page_token)
    if created_after is not None:
        req.created_after.FromDatetime(created_after)
    if created_before is not None:
        req.created_before.FromDatetime(created_before)
    return req


def runs_page(resp: pb.ListRunsResponse) -> RunPage:
    return RunPage([run_from_proto(r) for r in resp.runs], resp.next_page_token)
