"""Cairn's one error vocabulary: what the server raises is what the client catches, by the same name.

    CairnError                       code                 ErrorInfo reason (+ metadata)
    ├── InvalidArgument              INVALID_ARGUMENT     INVALID_FIELD (+ field)
    ├── NotFound                     NOT_FOUND            CHECKPOINT_NOT_FOUND / THREAD_EMPTY
    │   └── RunNotFound              NOT_FOUND            RUN_NOT_FOUND (+ run_id)
    ├── AlreadyExists                ALREADY_EXISTS       CHECKPOINT_ID_CONFLICT / WRITE_CONFLICT
    │   └── RunIdConflict            ALREADY_EXISTS       RUN_ID_CONFLICT (+ run_id)
    ├── Conflict                     ABORTED              a compare-and-set or lease check lost
    │   ├── HeadMoved                ABORTED              HEAD_MOVED (+ current_head_id)
    │   ├── TargetNotEmpty           ABORTED              TARGET_NOT_EMPTY
    │   └── RunStopped               ABORTED              LEASE_LOST / RUN_CANCELLED / RUN_TIMED_OUT (+ run_id)
    ├── FailedPrecondition           FAILED_PRECONDITION  ENCRYPTION_REQUIRED / THREAD_BUSY / RUN_FINISHED
    ├── LimitExceeded                RESOURCE_EXHAUSTED   LIMIT_EXCEEDED (+ limit, limit_value)
    ├── Unavailable                  UNAVAILABLE          COLD_STORE_UNAVAILABLE
    ├── DeadlineExceeded             DEADLINE_EXCEEDED
    ├── DataLoss                     DATA_LOSS            CHECKSUM_MISMATCH
    └── Unauthenticated              UNAUTHENTICATED      MISSING_TOKEN / INVALID_TOKEN

Server code raises these (storage maps backend exceptions to them once, at its own boundary) and the gRPC
edge turns each into a status with a google.rpc.ErrorInfo detail. The client maps a status back to the
same class, once, at its boundary (`cairn_client.errors.from_rpc_error`): by code, and by reason where a
subclass names one. Catching a parent (`Conflict`, `NotFound`) also catches its children.

Older names, kept for one release: `ResourceExhausted` (= LimitExceeded), and on the server
`LeaseRefused` (= RunStopped) and `RunPrecondition` (= FailedPrecondition).
"""

from __future__ import annotations

from typing import Any

import grpc

__all__ = [
    "AlreadyExists",
    "CairnError",
    "Conflict",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "HeadMoved",
    "InvalidArgument",
    "LimitExceeded",
    "NotFound",
    "ResourceExhausted",
    "RunIdConflict",
    "RunNotFound",
    "RunStopped",
    "TargetNotEmpty",
    "Unauthenticated",
    "Unavailable",
    "class_for",
]


class CairnError(Exception):
    """Root of every error a call can end in; `code`, `reason` and `metadata` are what travels on the wire.

    `CairnError(message, code=None, reason=None, metadata=None, **fields)`: code and reason default to the
    class's; keyword fields join the metadata as strings.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason
        self.metadata = {**(metadata or {}), **{k: str(v) for k, v in fields.items()}}

    @classmethod
    def from_status(
        cls, message: str, code: grpc.StatusCode, reason: str, metadata: dict[str, str]
    ) -> CairnError:
        """The error as a peer reported it: bypasses the convenience constructors of the subclasses."""
        err = cls.__new__(cls)
        CairnError.__init__(err, message, code, reason, metadata)
        return err

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(CairnError):
    """A request field is malformed or out of range; `field` names it."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_FIELD"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)

    @property
    def field(self) -> str:
        """The request field to fix."""
        return self.metadata.get("field", "")


class NotFound(CairnError):
    """No such checkpoint, or an empty thread (reason THREAD_EMPTY)."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "CHECKPOINT_NOT_FOUND"


class RunNotFound(NotFound):
    """No run has this id."""

    reason = "RUN_NOT_FOUND"

    def __init__(self, run_id: str) -> None:
        CairnError.__init__(
            self, f"run {run_id!r} does not exist; check the id (ListRuns shows the runs)", run_id=run_id
        )

    @property
    def run_id(self) -> str:
        """The id that names no run."""
        return self.metadata.get("run_id", "")


class AlreadyExists(CairnError):
    """The same id is stored with different content (CHECKPOINT_ID_CONFLICT, WRITE_CONFLICT)."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "CHECKPOINT_ID_CONFLICT"


class RunIdConflict(AlreadyExists):
    """A run with this id exists, started with a different request."""

    reason = "RUN_ID_CONFLICT"


class Conflict(CairnError):
    """ABORTED: a compare-and-set or a lease check lost; load what is there now and decide again."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"

    @property
    def current_head_id(self) -> str:
        """With HEAD_MOVED: the thread's head now ("" for an empty thread)."""
        return self.metadata.get("current_head_id", "")


class HeadMoved(Conflict):
    """Save's expected parent is no longer the head of its thread."""

    reason = "HEAD_MOVED"

    def __init__(self, thread_id: str, namespace: str, current_head_id: str) -> None:
        head = current_head_id or "(empty thread)"
        CairnError.__init__(
            self,
            f"compare-and-set failed: the head of thread {thread_id!r} namespace {namespace!r} "
            f"is now {head}; load it and retry your save on top of it",
            current_head_id=current_head_id,
        )


class TargetNotEmpty(Conflict):
    """CopyThread's target thread already holds checkpoints."""

    reason = "TARGET_NOT_EMPTY"


class RunStopped(Conflict):
    """A heartbeat, fenced write, complete or fail under a run lease was refused; `reason` says why:
    LEASE_LOST (another worker holds the run now), RUN_CANCELLED or RUN_TIMED_OUT. Nothing was stored."""

    reason = "LEASE_LOST"

    @property
    def run_id(self) -> str:
        """The run whose lease was refused."""
        return self.metadata.get("run_id", "")


class FailedPrecondition(CairnError):
    """The store or the run is not in a state that allows the call (ENCRYPTION_REQUIRED, THREAD_BUSY,
    RUN_FINISHED)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class LimitExceeded(CairnError):
    """The request is over a server limit; `limit` names it and `limit_value` gives its value."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "LIMIT_EXCEEDED"

    def __init__(self, limit: str, limit_value: int, message: str) -> None:
        super().__init__(message, limit=limit, limit_value=str(limit_value))

    @property
    def limit(self) -> str:
        """The name of the limit (the server flag that sets it)."""
        return self.metadata.get("limit", "")


class Unavailable(CairnError):
    """The server or its cold store cannot be reached now; retry later."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "COLD_STORE_UNAVAILABLE"


class DeadlineExceeded(CairnError):
    """The call's deadline passed before it finished."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class DataLoss(CairnError):
    """Stored bytes fail their checksum or cannot be decoded."""

    code = grpc.StatusCode.DATA_LOSS
    reason = "CHECKSUM_MISMATCH"


class Unauthenticated(CairnError):
    """The call carried no token, or one the server does not accept."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "INVALID_TOKEN"


ResourceExhausted = LimitExceeded  # the client's name before the vocabulary was one; kept for one release

_BY_CODE: dict[grpc.StatusCode, type[CairnError]] = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, AlreadyExists, Conflict, FailedPrecondition, LimitExceeded,
                Unavailable, DeadlineExceeded, DataLoss, Unauthenticated)
}
_BY_REASON: dict[tuple[grpc.StatusCode, str], type[CairnError]] = {
    (grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND"): RunNotFound,
    (grpc.StatusCode.ALREADY_EXISTS, "RUN_ID_CONFLICT"): RunIdConflict,
    (grpc.StatusCode.ABORTED, "HEAD_MOVED"): HeadMoved,
    (grpc.StatusCode.ABORTED, "TARGET_NOT_EMPTY"): TargetNotEmpty,
    (grpc.StatusCode.ABORTED, "LEASE_LOST"): RunStopped,
    (grpc.StatusCode.ABORTED, "RUN_CANCELLED"): RunStopped,
    (grpc.StatusCode.ABORTED, "RUN_TIMED_OUT"): RunStopped,
}


def class_for(code: grpc.StatusCode, reason: str) -> type[CairnError]:
    """The class of the tree that a (code, reason) pair names; CairnError for a code it does not know."""
    return _BY_REASON.get((code, reason)) or _BY_CODE.get(code, CairnError)
