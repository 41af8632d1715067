"""grpc.health.v1 Check without requiring grpcio-health-checking.

The `cairn` command is part of the client install too (agent images may not carry
the server extra), so when grpc_health is not importable the tiny request and
response are encoded by hand: HealthCheckRequest{string service = 1} and
HealthCheckResponse{ServingStatus status = 1}.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

METHOD = "/grpc.health.v1.Health/Check"
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _encode_request(service: str) -> bytes:
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def _decode_status(raw: bytes) -> int:
    """Field 1 (varint) of a HealthCheckResponse; unknown fields are skipped."""
    pos, status = 0, 0
    while pos < len(raw):
        key, pos = _read_varint(raw, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(raw, pos)
            if field == 1:
                status = value
        elif wire == 2:
            length, pos = _read_varint(raw, pos)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"cannot parse health response (wire type {wire})")
    return status


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(raw):
            raise ValueError("truncated health response")
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def check(
    channel: grpc.Channel, service: str, timeout: float, metadata: Sequence[tuple[str, str]] | None
) -> str:
    """The status name (SERVING, NOT_SERVING, ...). Raises grpc.RpcError when the call fails."""
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError:
        call = channel.unary_unary(METHOD)
        raw = call(_encode_request(service), timeout=timeout, metadata=metadata)
        return STATUS_NAMES.get(_decode_status(raw), "UNKNOWN")
    resp = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata
    )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
