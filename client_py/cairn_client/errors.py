"""Errors a Cairn call can raise: the tree of `cairn.errors` (drawn there), shared with the server.

This module maps a gRPC status to that tree, once, at the client boundary (`from_rpc_error`,
`from_item_error`), and re-exports the tree so `from cairn_client.errors import Conflict` keeps working.
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cairn import errors as _tree
from cairn.errors import *  # noqa: F403 - the tree, under the names users import from cairn_client.errors
from cairn.errors import CairnError, class_for

__all__ = [*_tree.__all__, "from_item_error", "from_rpc_error"]


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
    return class_for(code, reason).from_status(message or code.name, code, reason, metadata)


def from_item_error(item: object) -> CairnError:
    """Map the ItemError of a stream or batch item."""
    code = next((c for c in grpc.StatusCode if c.value[0] == item.code), grpc.StatusCode.UNKNOWN)  # type: ignore[attr-defined]
    return class_for(code, item.reason).from_status(item.message, code, item.reason, dict(item.metadata))  # type: ignore[attr-defined]
