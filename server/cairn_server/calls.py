"""What every RPC gets, unary or streaming, in one place: log fields, a span, metrics and the mapping of errors.

`CallScope` is the one link between grpc and the RPC methods (service.py), as an interceptor is: the methods
raise errors of the one vocabulary (cairn.errors) and this module turns them into statuses, once. A
CairnError becomes its status code with a google.rpc.ErrorInfo detail; anything else is a bug, logged with its
traceback and answered with a generic INTERNAL that leaks nothing. `unary` wraps a unary method in a scope;
a streaming method opens one itself (`async with CallScope(...)`), so both share the same except branches.

Requests arrive through `safe_deserializer`, so bytes that are no valid message become INVALID_ARGUMENT here
rather than grpc's INTERNAL.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from cairn.errors import CairnError, InvalidArgument
from cairn.v1 import checkpoint_store_pb2 as pb

from .logs import request_context

log = logging.getLogger("cairn.rpc")

DOMAIN = "cairn.dev"  # google.rpc.ErrorInfo.domain of every error this server sends
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_SERVER_SIDE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS, grpc.StatusCode.INTERNAL)
_REQUEST_PREFIX = os.urandom(4).hex()
_request_numbers = itertools.count(1)

R = TypeVar("R")


def configured_tracer() -> tuple[Any, Any] | None:
    """A tracer and the span kind to use when an OpenTelemetry SDK is configured (e.g. `opentelemetry-instrument
    cairn serve` with OTEL_* env vars); else None: spans through the no-op proxy still cost microseconds a call."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - depends on what is installed
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer("cairn"), trace.SpanKind.SERVER


class Malformed:
    """What the request deserializer hands over when the bytes are not the expected message."""

    def __init__(self, message_name: str, error: Exception) -> None:
        self.message_name = message_name
        self.error = error

    def invalid(self) -> InvalidArgument:
        """The INVALID_ARGUMENT this request is answered with."""
        return InvalidArgument(
            "request", f"the request is not a valid {self.message_name} message ({self.error}); "
            "send a message built from proto/cairn/v1/checkpoint_store.proto"
        )


def safe_deserializer(message_type: Any) -> Callable[[bytes], Any]:
    """FromString that turns garbage into Malformed, so it becomes INVALID_ARGUMENT instead of gRPC's INTERNAL."""
    name = message_type.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except Exception as exc:  # DecodeError, RecursionError (nesting), anything the parser raises
            return Malformed(name, exc)

    return parse


def response_serializer(response_type: Any) -> Callable[[Any], bytes]:
    """SerializeToString, except that a response already in wire format (bytes: memoized, or joined from
    memoized parts) goes out as it is."""
    serialize = response_type.SerializeToString

    def dump(response: Any) -> bytes:
        return response if type(response) is bytes else serialize(response)  # type: ignore[no-any-return]

    return dump


def status_details(err: CairnError) -> status_pb2.Status:
    """The google.rpc.Status of an error: its code, message and an ErrorInfo with its reason and metadata."""
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=err.code.value[0], message=err.message, details=[detail])


def item_error(err: CairnError) -> pb.ItemError:
    """The ItemError of one failed item of a stream or batch."""
    return pb.ItemError(code=err.code.value[0], message=err.message, reason=err.reason, metadata=err.metadata)


async def abort(context: grpc.aio.ServicerContext, err: CairnError) -> None:
    """End the call with the error's status (and its ErrorInfo in grpc-status-details-bin)."""
    details = status_details(err).SerializeToString()
    await context.abort(err.code, err.message, trailing_metadata=(("grpc-status-details-bin", details),))


class CallFields(Mapping[str, str]):
    """One call's log fields (logs.request_context). The request id is looked up in the call's metadata only when
    a record asks for it, which keeps it off the hot path. Each call has its own."""

    __slots__ = ("_context", "_fields")

    def __init__(self, context: grpc.aio.ServicerContext, method: str, thread_id: str) -> None:
        self._context: grpc.aio.ServicerContext | None = context
        self._fields = {"method": method, "thread_id": thread_id}

    def _all(self) -> dict[str, str]:
        if self._context is not None:
            self._fields["request_id"], self._context = _request_id(self._context), None
        return self._fields

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def set_tenant(self, tenant: str) -> None:
        """Add the tenant once the call is authenticated."""
        self._fields["tenant"] = tenant

    def ended(self) -> None:
        """Tasks the call started (a group commit, the lease renewer) keep these fields: not the call itself."""
        self._context = None


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return str(value)[:64]
    return f"{_REQUEST_PREFIX}-{next(_request_numbers):x}"  # unique per process run, cheaper than a uuid4


class CallHandling:
    """The cross-cutting state every call shares: metrics (or None), the tracer (when OpenTelemetry is
    configured), and what to count when the cold store is unavailable."""

    def __init__(self, metrics: Any, on_unavailable: Callable[[], None]) -> None:
        self.metrics = metrics
        self.tracing = configured_tracer()
        self.on_unavailable = on_unavailable


class CallScope:
    """One call, from its first byte to its status: `async with CallScope(...)` around the method's body.

    On the way in it sets the call's log fields and opens a span; on the way out it counts the call (before an
    error status is sent: a client that sees the status and then scrapes must see the count), ends the span,
    and maps an escaping error to the call's status. `counted=False` for calls whose items are counted instead
    (SaveStream counts each save as SaveStream.item)."""

    __slots__ = ("calls", "method", "context", "fields", "span", "started_at", "code", "counted")

    def __init__(self, calls: CallHandling, method: str, context: grpc.aio.ServicerContext, thread_id: str = "",
                 *, counted: bool = True) -> None:
        self.calls = calls
        self.method = method
        self.context = context
        self.fields = CallFields(context, method, thread_id)
        self.started_at = time.perf_counter()
        self.code = "OK"
        self.counted = not counted  # True once counted (or when it never is)
        self.span = None
        if calls.tracing is not None:
            tracer, kind = calls.tracing
            self.span = tracer.start_span(f"cairn.v1.CheckpointStore/{method}", kind=kind)
            self.span.set_attribute("rpc.system", "grpc")
            self.span.set_attribute("cairn.thread_id", thread_id)

    async def __aenter__(self) -> CallScope:
        request_context.set(self.fields)
        return self

    def _count(self) -> None:
        if not self.counted and self.calls.metrics is not None:
            self.calls.metrics.rpc(self.method, self.code, time.perf_counter() - self.started_at)
        self.counted = True

    def _end(self) -> None:
        self.fields.ended()
        self._count()
        if self.span is not None:
            self.span.set_attribute("rpc.grpc.status_code", self.code)
            self.span.set_attribute("cairn.tenant", request_context.get().get("tenant", ""))
            self.span.end()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            if isinstance(exc, CairnError):
                self.code = exc.code.name
                if exc.code == grpc.StatusCode.UNAVAILABLE:
                    self.calls.on_unavailable()
                log.log(logging.WARNING if exc.code in _SERVER_SIDE else logging.DEBUG,
                        "%s failed: %s %s", self.method, self.code, exc.message)
                self._count()
                await abort(self.context, exc)
            elif isinstance(exc, Exception):
                self.code = "INTERNAL"
                incident = uuid.uuid4().hex[:12]
                log.error("unexpected error in %s (incident %s)", self.method, incident, exc_info=exc)
                self._count()
                await self.context.abort(grpc.StatusCode.INTERNAL, f"internal server error (incident {incident})")
        finally:
            self._end()
        return False


def unary(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """A unary RPC method run inside a CallScope (its `self` has a `calls: CallHandling`)."""
    method = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        async with CallScope(self.calls, method, context, getattr(request, "thread_id", "") or ""):
            if isinstance(request, Malformed):
                raise request.invalid()
            return await fn(self, request, context)
        raise AssertionError("unreachable")  # the scope aborts the call on any error

    return wrapper
