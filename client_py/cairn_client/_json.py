"""JSON encoding of states, writes and metadata: orjson when installed (`cairn-checkpoint[fast]`), else the
standard library's json.

Both paths write compact UTF-8 JSON (no spaces, non-ASCII characters as they are, keys in insertion order) and
accept the same values: dicts (and subclasses), lists, tuples, str, int, float, bool, None, plus `uuid.UUID`
(as its string) and `enum.Enum` members (as their value), which orjson encodes natively. For those values they
give the same bytes, except that a float may be spelled differently with the same value (orjson `1.5e-7`,
json `1.5e-07`). A value orjson refuses (an integer beyond 64 bits, a non-string dict key, nesting deeper than
orjson's limit) goes through the standard library, which encodes it or raises its own TypeError/ValueError, so
what is accepted and what the errors say do not depend on which path ran.

The one difference in meaning: NaN and ±Infinity are not JSON. The standard library writes Python's `NaN` /
`Infinity` tokens (Python reads them back; other languages' parsers refuse them), orjson writes `null`.
"""

from __future__ import annotations

import enum
import json
import uuid
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

__all__ = ["FAST", "dumps", "dumps_stdlib"]

FAST = orjson is not None
"""Whether orjson is installed (and `dumps` uses it)."""


def _stdlib_default(value: Any) -> Any:
    """What orjson encodes natively beyond JSON's types, so both paths accept the same values."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_stdlib_default)


def dumps_stdlib(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON through the standard library."""
    return _ENCODER.encode(value).encode()


if orjson is not None:
    # Dataclasses and datetimes go to `default` (and so to the standard library, which refuses them) rather than
    # being encoded by orjson alone.
    _OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME

    def _refuse(value: Any) -> Any:
        raise TypeError(type(value).__name__)

    def dumps(value: Any) -> bytes:
        """`value` as compact UTF-8 JSON: orjson, or the standard library for what orjson refuses."""
        try:
            return orjson.dumps(value, default=_refuse, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: the standard library encodes it or says why not
            return dumps_stdlib(value)

else:  # pragma: no cover - depends on the environment
    dumps = dumps_stdlib
