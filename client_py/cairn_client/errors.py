"""Errors a Cairn call can raise, each keeping the gRPC status it came from.

    CairnError
    ├── InvalidArgument      INVALID_ARGUMENT: fix the named field
    ├── NotFound             NOT_FOUND: no such checkpoint, or an empty thread
    ├── AlreadyExists        ALREADY_EXISTS: same id, different content
    ├── Conflict             ABORTED: compare-and-set lost; .current_head_id
    │   └── RunStopped       ABORTED: a call under a run lease refused (LEASE_LOST, RUN_CANCELLED,
    │                        RUN_TIMED_OUT): stop working on the run
    ├── FailedPrecondition   FAILED_PRECONDITION: THREAD_BUSY, RUN_FINISHED
    ├── ResourceExhausted    RESOURCE_EXHAUSTED: over a server limit; .limit
    ├── Unavailable          UNAVAILABLE: store unreachable, retry later
    ├── DeadlineExceeded     DEADLINE_EXCEEDED
    ├── DataLoss             DATA_LOSS: stored bytes are corrupt
    └── Unauthenticated      UNAUTHENTICATED: missing or bad token
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class CairnError(Exception):
    """Root of the tree; `code`, `reason` and `metadata` come from the server's status."""

    def __init__(
        self, message: str, code: grpc.StatusCode, reason: str = "", metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(CairnError):
    @property
    def field(self) -> str:
        return self.metadata.get("field", "")


class NotFound(CairnError):
    pass


class AlreadyExists(CairnError):
    pass


class Conflict(CairnError):
    @property
    def current_head_id(self) -> str:
        return self.metadata.get("current_head_id", "")


class RunStopped(Conflict):
    """A heartbeat, fenced write, complete or fail under a run lease was refused; `reason` says why:
    LEASE_LOST (another worker holds the run now), RUN_CANCELLED or RUN_TIMED_OUT. Nothing was stored."""

    @property
    def run_id(self) -> str:
        return self.metadata.get("run_id", "")


class FailedPrecondition(CairnError):
    """The run or its thread is not in a state that allows the call (reason THREAD_BUSY or RUN_FINISHED)."""


class ResourceExhausted(CairnError):
    @property
    def limit(self) -> str:
        return self.metadata.get("limit", "")


class Unavailable(CairnError):
    pass


class DeadlineExceeded(CairnError):
    pass


class DataLoss(CairnError):
    pass


class Unauthenticated(CairnError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[CairnError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
}
_RUN_STOPPED = ("LEASE_LOST", "RUN_CANCELLED", "RUN_TIMED_OUT")


def _class(code: grpc.StatusCode, reason: str) -> type[CairnError]:
    if code == grpc.StatusCode.ABORTED and reason in _RUN_STOPPED:
        return RunStopped
    return _BY_CODE.get(code, CairnError)


def _error_info(call: grpc.Call) -> tuple[str, dict[str, str]]:
    try:
        status = rpc_status.from_call(call)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return "", {}
    if status is None:
        return "", {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason, dict(info.metadata)
    return "", {}


def from_rpc_error(err: grpc.RpcError) -> CairnError:
    """Map a grpc.RpcError (sync or aio) to the tree, once, at the client boundary."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    message = err.details() if callable(getattr(err, "details", None)) else str(err)
    # grpc.aio's AioRpcError is no grpc.Call, but carries the same trailing metadata (and so the ErrorInfo).
    has_trailers = isinstance(err, grpc.Call) or callable(getattr(err, "trailing_metadata", None))
    reason, metadata = _error_info(err) if has_trailers else ("", {})
    return _class(code, reason)(message or code.name, code, reason, metadata)


def from_item_error(item: object) -> CairnError:
    """Map the ItemError of a stream or batch item."""
    code = next((c for c in grpc.StatusCode if c.value[0] == item.code), grpc.StatusCode.UNKNOWN)  # type: ignore[attr-defined]
    return _class(code, item.reason)(item.message, code, item.reason, dict(item.metadata))  # type: ignore[attr-defined]
