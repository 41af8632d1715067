"""Protobuf wire format by hand, where building a message would copy large bytes once more.

The wire format allows a message's fields in any order and a sub-message as any length-delimited bytes, so a
response can be joined from parts already encoded (the server's memoized Load responses inside a BatchLoad),
and a request from a few ids and a pre-encoded tail (the load generator's Saves, cairn_tools/bench/wire.py).
"""

from __future__ import annotations


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_header(number: int, length: int) -> bytes:
    """What precedes `length` bytes of a length-delimited field (string, bytes or sub-message)."""
    return varint(number << 3 | 2) + varint(length)


def field_bytes(number: int, data: bytes) -> bytes:
    """A length-delimited field (string, bytes or sub-message)."""
    return field_header(number, len(data)) + data
