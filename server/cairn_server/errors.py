"""The server's error tree; each error knows its gRPC code and ErrorInfo reason.

    CairnError
    ├── InvalidArgument        INVALID_ARGUMENT    INVALID_FIELD
    ├── NotFound               NOT_FOUND           CHECKPOINT_NOT_FOUND / THREAD_EMPTY
    ├── AlreadyExists          ALREADY_EXISTS      CHECKPOINT_ID_CONFLICT / WRITE_CONFLICT
    ├── HeadMoved              ABORTED             HEAD_MOVED (+ current_head_id)
    ├── TargetNotEmpty         ABORTED             TARGET_NOT_EMPTY
    ├── LimitExceeded          RESOURCE_EXHAUSTED  LIMIT_EXCEEDED (+ limit, limit_value)
    ├── Unavailable            UNAVAILABLE         COLD_STORE_UNAVAILABLE
    ├── FailedPrecondition     FAILED_PRECONDITION ENCRYPTION_REQUIRED
    ├── DataLoss               DATA_LOSS           CHECKSUM_MISMATCH
    ├── Unauthenticated        UNAUTHENTICATED     MISSING_TOKEN / INVALID_TOKEN
    └── (durable runs)
        ├── RunNotFound        NOT_FOUND           RUN_NOT_FOUND (+ run_id)
        ├── RunIdConflict      ALREADY_EXISTS      RUN_ID_CONFLICT (+ run_id)
        ├── RunPrecondition    FAILED_PRECONDITION THREAD_BUSY / RUN_FINISHED (+ run_id[, status])
        └── LeaseRefused       ABORTED             LEASE_LOST / RUN_CANCELLED / RUN_TIMED_OUT (+ run_id, ...)

Storage code raises these (mapping backend exceptions once, at its own boundary);
the gRPC layer turns them into a status with a google.rpc.ErrorInfo detail.
"""

from __future__ import annotations

import grpc

DOMAIN = "cairn.dev"


class CairnError(Exception):
    """Root of every error a client can be told about."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = {k: str(v) for k, v in metadata.items()}


class InvalidArgument(CairnError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_FIELD"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class NotFound(CairnError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "CHECKPOINT_NOT_FOUND"


class AlreadyExists(CairnError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "CHECKPOINT_ID_CONFLICT"


class HeadMoved(CairnError):
    code = grpc.StatusCode.ABORTED
    reason = "HEAD_MOVED"

    def __init__(self, thread_id: str, namespace: str, current_head_id: str) -> None:
        head = current_head_id or "(empty thread)"
        super().__init__(
            f"compare-and-set failed: the head of thread {thread_id!r} namespace {namespace!r} "
            f"is now {head}; load it and retry your save on top of it",
            current_head_id=current_head_id,
        )
        self.current_head_id = current_head_id


class TargetNotEmpty(CairnError):
    code = grpc.StatusCode.ABORTED
    reason = "TARGET_NOT_EMPTY"


class LimitExceeded(CairnError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "LIMIT_EXCEEDED"

    def __init__(self, limit: str, limit_value: int, message: str) -> None:
        super().__init__(message, limit=limit, limit_value=str(limit_value))


class Unavailable(CairnError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "COLD_STORE_UNAVAILABLE"


class FailedPrecondition(CairnError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class DataLoss(CairnError):
    code = grpc.StatusCode.DATA_LOSS
    reason = "CHECKSUM_MISMATCH"


class Unauthenticated(CairnError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "INVALID_TOKEN"


# -- durable runs ------------------------------------------------------------


class RunNotFound(CairnError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "RUN_NOT_FOUND"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} does not exist; check the id (ListRuns shows the runs)", run_id=run_id)


class RunIdConflict(CairnError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "RUN_ID_CONFLICT"


class RunPrecondition(CairnError):
    """THREAD_BUSY or RUN_FINISHED: the run or its thread is not in a state that allows the call."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class LeaseRefused(CairnError):
    """A call under a run lease that may not go on: LEASE_LOST, RUN_CANCELLED or RUN_TIMED_OUT."""

    code = grpc.StatusCode.ABORTED
