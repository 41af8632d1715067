"""Durable runs: the run row, its state machine, and what the run stores share.

The state machine is pure: each transition is a function of a RunRow and the
time, returning a Change (the new row, the attempt to open or close, the error
to report once committed, the events to count). runs_sqlite.py and
runs_postgres.py only lock rows, apply a transition and write the result back
in one transaction, so both backends behave alike by construction.

Times are integer microseconds since the epoch. On Postgres "now" is the
database's clock, so several server processes agree on when a lease expired.

Statuses:

    PENDING --claim--> RUNNING --complete--> COMPLETED | INTERRUPTED
       ^                 |  \\--fail (retryable, attempts left)--> PENDING (not_before = now + backoff)
       |                 |  \\--fail / timeout / recoveries exhausted--> FAILED
       |                 |  \\--cancel seen at heartbeat / write / expiry--> CANCELLED
       |                 \\--lease expires--> (abandoned) --claim--> RUNNING (epoch + 1, recovered)
       \\--cancel--> CANCELLED
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from cairn.errors import CairnError, InvalidArgument, RunStopped, RunNotFound, FailedPrecondition

PENDING, RUNNING, INTERRUPTED, COMPLETED, FAILED, CANCELLED = (
    "PENDING", "RUNNING", "INTERRUPTED", "COMPLETED", "FAILED", "CANCELLED",
)
STATUSES = (PENDING, RUNNING, INTERRUPTED, COMPLETED, FAILED, CANCELLED)
ACTIVE = (PENDING, RUNNING)  # at most one per thread (a partial unique index in both stores)

# RunError.reason values set by the server.
ERROR, EXECUTION_TIMEOUT, LEASE_EXPIRED, RECOVERIES_EXHAUSTED, CANCELLED_REASON = (
    "ERROR", "EXECUTION_TIMEOUT", "LEASE_EXPIRED", "RECOVERIES_EXHAUSTED", "CANCELLED",
)

ATTEMPTS_SHOWN = 100  # GetRun returns at most the newest this many attempts


@dataclass(slots=True)
class RunRow:
    """One run as stored (columns of cairn_runs, same names)."""

    tenant: str
    run_id: str
    thread_id: str
    queue: str
    status: str
    input: bytes
    input_type: str
    metadata_json: str
    max_attempts: int
    initial_backoff_ms: int
    backoff_coefficient: float
    max_backoff_ms: int
    max_recoveries: int
    execution_timeout_ms: int
    request_hash: bytes  # of the StartRun that made it: an identical retry is idempotent
    created_us: int
    updated_us: int
    not_before_us: int = 0
    started_us: int | None = None
    ended_us: int | None = None
    attempt_count: int = 0
    failed_attempt_count: int = 0
    recovery_count: int = 0
    cancel_requested: bool = False
    worker_id: str = ""
    epoch: int = 0
    token: str = ""
    lease_ms: int = 0
    lease_expires_us: int = 0
    deadline_us: int | None = None  # started_us + execution_timeout_ms, set at the first claim
    error_reason: str = ""
    error_type: str = ""
    error_message: str = ""
    error_retryable: bool = False
    output: bytes = b""
    output_type: str = ""
    checkpoint_id: str = ""


RUN_COLUMNS = tuple(f.name for f in fields(RunRow))


@dataclass(slots=True)
class AttemptRow:
    """One claim of a run (columns of cairn_run_attempts)."""

    tenant: str
    run_id: str
    number: int
    worker_id: str
    started_us: int
    recovered: bool
    status: str = RUNNING
    ended_us: int | None = None
    error_reason: str = ""
    error_type: str = ""
    error_message: str = ""
    error_retryable: bool = False


ATTEMPT_COLUMNS = tuple(f.name for f in fields(AttemptRow))


@dataclass(slots=True, frozen=True)
class Lease:
    """The lease a worker sends back: which claim of which run it holds."""

    run_id: str
    epoch: int
    token: str


@dataclass(slots=True, frozen=True)
class RunFailure:
    """An error as a worker reports it with FailRun."""

    type: str
    message: str
    retryable: bool


@dataclass(slots=True)
class Change:
    """The outcome of a transition, applied by the store in the transaction that read the row."""

    run: RunRow
    write: bool = True  # False: the row is unchanged
    new_attempt: AttemptRow | None = None
    closed_attempt: AttemptRow | None = None  # carries number and the end fields to store
    error: CairnError | None = None  # raised by the caller once the transaction committed
    events: list[str] = field(default_factory=list)  # metric events (started, completed, recovered, ...)
    claimed: bool = False
    recovered: bool = False
    waited_us: int = 0  # claimed: how long the run had been claimable (claim latency)
    will_retry: bool = False


@dataclass(slots=True)
class RunQuery:
    """A ListRuns call, validated."""

    tenant: str
    statuses: list[str]
    queue: str
    thread_id: str
    created_after_us: int | None
    created_before_us: int | None
    after: tuple[int, str] | None  # page position: (created_us, run_id) of the last run of the previous page
    limit: int


def new_token() -> str:
    return secrets.token_hex(12)


def request_hash(*parts: Any) -> bytes:
    """Digest of a StartRun's content (not its run id) for idempotent retries."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode()
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.digest()


def backoff_ms(row: RunRow, failed_attempts: int) -> int:
    """Delay before the retry that follows the `failed_attempts`-th failed attempt (1-based)."""
    delay = row.initial_backoff_ms * row.backoff_coefficient ** max(0, failed_attempts - 1)
    return int(min(delay, row.max_backoff_ms))


# -- lease checks ------------------------------------------------------------


def lease_error(row: RunRow | None, lease: Lease, now_us: int, *, thread_id: str | None = None) -> CairnError | None:
    """Why a call under `lease` may not go on, or None. Used by fenced writes (with thread_id) and by the run
    calls; a stale lease is LEASE_LOST even if the run was also cancelled meanwhile."""
    if row is None:
        return RunNotFound(lease.run_id)
    if thread_id is not None and row.thread_id != thread_id:
        return InvalidArgument(
            "run_lease",
            f"the lease is for run {row.run_id!r} on thread {row.thread_id!r}, not thread {thread_id!r}; "
            "a run's lease fences only its own thread",
        )
    if row.status != RUNNING or row.epoch != lease.epoch or not secrets.compare_digest(row.token, lease.token):
        return RunStopped(
            f"the lease of epoch {lease.epoch} on run {row.run_id!r} is no longer current (the run is "
            f"{row.status} at epoch {row.epoch}): another worker claimed it or it ended; stop working on it",
            reason="LEASE_LOST", run_id=row.run_id, epoch=str(lease.epoch), current_epoch=str(row.epoch),
            status=row.status,
        )
    if row.cancel_requested:
        return run_cancelled(row.run_id)
    if row.deadline_us is not None and now_us >= row.deadline_us:
        return run_timed_out(row)
    return None


def run_cancelled(run_id: str) -> RunStopped:
    return RunStopped(
        f"run {run_id!r} was cancelled; stop working on it (nothing more is stored for it)",
        reason="RUN_CANCELLED", run_id=run_id,
    )


def run_timed_out(row: RunRow) -> RunStopped:
    return RunStopped(
        f"run {row.run_id!r} passed its execution timeout of {row.execution_timeout_ms} ms and is FAILED; "
        "stop working on it",
        reason="RUN_TIMED_OUT", run_id=row.run_id,
    )


# -- transitions -------------------------------------------------------------


def _end(row: RunRow, status: str, now_us: int, reason: str = "", failure: RunFailure | None = None) -> RunRow:
    """The row ended in `status`; a FAILED one records why (a run ending otherwise keeps its last error)."""
    new = replace(row, status=status, ended_us=now_us, updated_us=now_us, lease_expires_us=0)
    if status == FAILED:
        new.error_reason = reason
        new.error_type = failure.type if failure else ""
        new.error_message = failure.message if failure else _REASON_TEXT.get(reason, "")
        new.error_retryable = failure.retryable if failure else False
    return new


_REASON_TEXT = {
    EXECUTION_TIMEOUT: "the run passed its execution timeout",
    RECOVERIES_EXHAUSTED: "the run's workers stopped heartbeating more often than max_recoveries allows",
}


def _close(row: RunRow, now_us: int, status: str, reason: str = "", failure: RunFailure | None = None) -> AttemptRow:
    """The end of the run's current attempt (number = epoch)."""
    return AttemptRow(
        tenant=row.tenant, run_id=row.run_id, number=row.epoch, worker_id=row.worker_id, started_us=0,
        recovered=False, status=status, ended_us=now_us, error_reason=reason,
        error_type=failure.type if failure else "", error_message=failure.message if failure else "",
        error_retryable=failure.retryable if failure else False,
    )


def _timed_out(row: RunRow, now_us: int) -> bool:
    return row.deadline_us is not None and now_us >= row.deadline_us


def claim(row: RunRow, worker_id: str, lease_ms: int, now_us: int) -> Change:
    """A claimable row (PENDING and due, or RUNNING with an expired lease) handed to `worker_id`, or ended
    instead when it may not run again (cancelled, timed out, recovered too often)."""
    events: list[str] = []
    closed = None
    recovered = row.status == RUNNING
    if recovered:
        events.append("lease_expired")
        closed = _close(row, now_us, FAILED, LEASE_EXPIRED)
        if row.cancel_requested:
            return Change(_end(row, CANCELLED, now_us), closed_attempt=_close(row, now_us, CANCELLED, CANCELLED_REASON),
                          events=events + ["cancelled"])
        if row.max_recoveries and row.recovery_count >= row.max_recoveries:
            return Change(_end(row, FAILED, now_us, RECOVERIES_EXHAUSTED), closed_attempt=closed,
                          events=events + ["failed"])
    if _timed_out(row, now_us):
        return Change(_end(row, FAILED, now_us, EXECUTION_TIMEOUT), closed_attempt=closed,
                      events=events + ["failed", "timed_out"])
    started = row.started_us if row.started_us is not None else now_us
    deadline = started + row.execution_timeout_ms * 1000 if row.execution_timeout_ms else None
    new = replace(
        row, status=RUNNING, epoch=row.epoch + 1, token=new_token(), worker_id=worker_id, lease_ms=lease_ms,
        lease_expires_us=now_us + lease_ms * 1000, attempt_count=row.attempt_count + 1,
        recovery_count=row.recovery_count + (1 if recovered else 0), started_us=started, deadline_us=deadline,
        updated_us=now_us, not_before_us=0,
    )
    attempt = AttemptRow(tenant=row.tenant, run_id=row.run_id, number=new.epoch, worker_id=worker_id,
                         started_us=now_us, recovered=recovered)
    events.append("recovered" if recovered else "started" if row.started_us is None else "retried")
    ready = row.lease_expires_us if recovered else max(row.created_us, row.not_before_us)
    return Change(new, new_attempt=attempt, closed_attempt=closed, events=events, claimed=True, recovered=recovered,
                  waited_us=max(0, now_us - ready))


def sweep(row: RunRow, now_us: int) -> Change:
    """End a run no worker holds that may not run again: cancel requested before its worker died, or its
    execution timeout passed while it waited (pending, or abandoned). The server sweeps for these, so such runs
    end even when no worker claims from their queue; anything else is left as it is."""
    held = row.status == RUNNING and row.lease_expires_us > now_us
    if row.status not in (PENDING, RUNNING) or held:
        return Change(row, write=False)
    abandoned = row.status == RUNNING
    if abandoned and row.cancel_requested:
        return Change(_end(row, CANCELLED, now_us), closed_attempt=_close(row, now_us, CANCELLED, CANCELLED_REASON),
                      events=["lease_expired", "cancelled"])
    if _timed_out(row, now_us):
        closed = _close(row, now_us, FAILED, LEASE_EXPIRED) if abandoned else None
        return Change(_end(row, FAILED, now_us, EXECUTION_TIMEOUT), closed_attempt=closed,
                      events=(["lease_expired"] if abandoned else []) + ["failed", "timed_out"])
    return Change(row, write=False)


def _refused(row: RunRow, lease: Lease, now_us: int) -> Change | None:
    """The Change for a call under a lease that may not go on (ending the run if the refusal ends it)."""
    err = lease_error(row, lease, now_us)
    if err is None:
        return None
    if err.reason == "RUN_CANCELLED":
        return Change(_end(row, CANCELLED, now_us), closed_attempt=_close(row, now_us, CANCELLED, CANCELLED_REASON),
                      error=err, events=["cancelled"])
    if err.reason == "RUN_TIMED_OUT":
        return Change(_end(row, FAILED, now_us, EXECUTION_TIMEOUT),
                      closed_attempt=_close(row, now_us, FAILED, EXECUTION_TIMEOUT), error=err,
                      events=["failed", "timed_out"])
    return Change(row, write=False, error=err)


def heartbeat(row: RunRow, lease: Lease, lease_ms: int, now_us: int) -> Change:
    refused = _refused(row, lease, now_us)
    if refused is not None:
        return refused
    lease_ms = lease_ms or row.lease_ms
    return Change(replace(row, lease_ms=lease_ms, lease_expires_us=now_us + lease_ms * 1000, updated_us=now_us))


def settle(row: RunRow, lease: Lease, now_us: int) -> Change:
    """After a fenced write was refused with RUN_CANCELLED or RUN_TIMED_OUT: end the run accordingly."""
    refused = _refused(row, lease, now_us)
    return refused if refused is not None and refused.write else Change(row, write=False)


def complete(
    row: RunRow, lease: Lease, output: bytes, output_type: str, interrupted: bool, checkpoint_id: str, now_us: int
) -> Change:
    refused = _refused(row, lease, now_us)
    if refused is not None:
        return refused
    status = INTERRUPTED if interrupted else COMPLETED
    new = replace(_end(row, status, now_us), output=output, output_type=output_type,
                  checkpoint_id=checkpoint_id or row.checkpoint_id)
    return Change(new, closed_attempt=_close(row, now_us, status), events=[status.lower()])


def fail(row: RunRow, lease: Lease, failure: RunFailure, now_us: int) -> Change:
    refused = _refused(row, lease, now_us)
    if refused is not None:
        return refused
    failed = row.failed_attempt_count + 1
    closed = _close(row, now_us, FAILED, ERROR, failure)
    if failure.retryable and failed < max(1, row.max_attempts):
        delay = backoff_ms(row, failed)
        new = replace(
            row, status=PENDING, failed_attempt_count=failed, not_before_us=now_us + delay * 1000,
            lease_expires_us=0, updated_us=now_us, error_reason=ERROR, error_type=failure.type,
            error_message=failure.message, error_retryable=True,
        )
        if new.deadline_us is not None and new.not_before_us >= new.deadline_us:
            # The retry could only start after the deadline: fail now rather than wake up to time out.
            return Change(replace(_end(row, FAILED, now_us, EXECUTION_TIMEOUT), failed_attempt_count=failed),
                          closed_attempt=closed, events=["failed", "timed_out"])
        return Change(new, closed_attempt=closed, events=["retry_scheduled"], will_retry=True)
    new = replace(_end(row, FAILED, now_us, ERROR, failure), failed_attempt_count=failed)
    return Change(new, closed_attempt=closed, events=["failed"])


def cancel(row: RunRow, now_us: int) -> Change:
    if row.status == CANCELLED:
        return Change(row, write=False)
    if row.status in (COMPLETED, FAILED):
        return Change(row, write=False, error=FailedPrecondition(
            f"run {row.run_id!r} already ended {row.status}; only PENDING, RUNNING or INTERRUPTED runs can be "
            "cancelled",
            reason="RUN_FINISHED", run_id=row.run_id, status=row.status,
        ))
    if row.status == RUNNING and row.lease_expires_us > now_us:
        if row.cancel_requested:
            return Change(row, write=False)
        return Change(replace(row, cancel_requested=True, updated_us=now_us))
    closed = _close(row, now_us, CANCELLED, CANCELLED_REASON) if row.status == RUNNING else None
    events = ["lease_expired", "cancelled"] if row.status == RUNNING else ["cancelled"]
    return Change(_end(replace(row, cancel_requested=row.status == RUNNING), CANCELLED, now_us),
                  closed_attempt=closed, events=events)


class RunStore(Protocol):
    """Runs kept in a cold store. Every method raises only errors from ..errors."""

    async def start(self, row: RunRow) -> tuple[RunRow, bool]:
        """Insert a PENDING run; (the stored run, True) when an identical one existed. RunIdConflict, or
        FailedPrecondition THREAD_BUSY when the thread has an active run."""
        ...

    async def claim(self, tenant: str, queue: str, worker_id: str, lease_ms: int) -> list[Change]:
        """Claim the oldest claimable run of the queue (the last Change, claimed=True), ending on the way the
        abandoned runs that may not run again (the Changes before it). [] when nothing is claimable."""
        ...

    async def transition(self, tenant: str, run_id: str, step: Any) -> Change:
        """Lock the run, apply step(row, now_us) -> Change, store it; RunNotFound when there is no such run."""
        ...

    async def get(self, tenant: str, run_id: str) -> tuple[RunRow, list[AttemptRow]] | None: ...

    async def list(self, query: RunQuery) -> list[RunRow]: ...

    async def queue_depths(self) -> dict[str, int]:
        """Claimable runs (PENDING or abandoned) per queue, all tenants, for metrics."""
        ...

    async def sweep(self, limit: int) -> list[Change]:
        """Apply runs_base.sweep to up to `limit` runs no worker holds that must end (all tenants)."""
        ...
