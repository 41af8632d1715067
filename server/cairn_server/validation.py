"""Request checks: every rejection names the field and says what to fix.

Limits come from Config and are documented there and in the README.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata

from google.protobuf import struct_pb2

from .config import Config
from cairn.errors import InvalidArgument, LimitExceeded

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters no identifier may hold: Unicode categories Cc (C0 and C1 controls), Cf (format: bidi overrides such
# as U+202E, zero-width characters such as U+200B) and Cs (lone surrogates, which no store can encode). They make
# one id print like another, or not at all.
_REJECTED_CATEGORIES = frozenset(("Cc", "Cf", "Cs"))


def _invisible(value: str) -> tuple[int, str] | None:
    """(position, character) of the first character of a rejected category in `value`, or None."""
    if value.isascii():
        found = _CONTROL.search(value)
        return None if found is None else (found.start(), found.group())
    category = unicodedata.category
    for position, char in enumerate(value):
        if category(char) in _REJECTED_CATEGORIES:
            return position, char
    return None


class Limits:
    def __init__(self, config: Config) -> None:
        self.c = config

    def id(self, field: str, value: str, *, required: bool) -> str:
        if not value:
            if required:
                raise InvalidArgument(field, f"{field} is required and must not be empty")
            return value
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > self.c.max_id_bytes:
            raise InvalidArgument(
                field, f"{field} is {size} bytes long; the limit is {self.c.max_id_bytes} bytes (--max-id-bytes)"
            )
        bad = _invisible(value)
        if bad is not None:
            position, char = bad
            raise InvalidArgument(
                field,
                f"{field} contains U+{ord(char):04X} (Unicode category {unicodedata.category(char)}) at position "
                f"{position}; ids must be printable text without control, format or surrogate characters",
            )
        return value

    def metadata(self, field: str, struct: struct_pb2.Struct) -> str:
        """Struct -> canonical JSON text (what json.dumps(sort_keys=True, separators=(",", ":")) writes for its
        MessageToDict), within the size and depth limits."""
        deepest = [0]
        try:
            text = _struct_json(struct, 1, deepest)
        except ValueError as exc:
            raise InvalidArgument(field, f"{field} is not valid JSON: {exc}") from exc
        if deepest[0] > self.c.max_metadata_depth:
            raise InvalidArgument(
                field,
                f"{field} is nested {deepest[0]} levels deep; the limit is {self.c.max_metadata_depth} "
                "(--max-metadata-depth)",
            )
        if len(text) > self.c.max_metadata_bytes:
            raise LimitExceeded(
                "max_metadata_bytes",
                self.c.max_metadata_bytes,
                f"{field} is {len(text)} bytes as JSON; the limit is {self.c.max_metadata_bytes} bytes "
                "(--max-metadata-bytes)",
            )
        if "\\u0000" in text:
            raise InvalidArgument(field, f"{field} contains a NUL character, which the stores cannot keep")
        return text

    def state(self, size: int) -> None:
        if size > self.c.max_state_bytes:
            raise LimitExceeded(
                "max_state_bytes",
                self.c.max_state_bytes,
                f"state is {size} bytes; the limit is {self.c.max_state_bytes} bytes (--max-state-bytes). "
                "Keep large blobs outside the checkpoint and store a reference",
            )

    def page_size(self, value: int) -> int:
        if value < 0:
            raise InvalidArgument("page_size", f"page_size must be 0 (server default) or positive, not {value}")
        if value == 0:
            return self.c.default_page_size
        return min(value, self.c.max_page_size)

    def batch(self, field: str, n: int) -> None:
        if n > self.c.max_batch_items:
            raise InvalidArgument(
                field, f"{field} has {n} items; the limit is {self.c.max_batch_items} (--max-batch-items): split it"
            )

    def text(self, field: str, value: str) -> str:
        if len(value.encode("utf-8", "surrogatepass")) > self.c.max_id_bytes or "\x00" in value:
            raise InvalidArgument(
                field, f"{field} must be at most {self.c.max_id_bytes} bytes of text without NUL characters"
            )
        return value


_quoted = json.encoder.encode_basestring_ascii  # the string form json.dumps writes (ensure_ascii)


def _struct_json(struct: struct_pb2.Struct, level: int, deepest: list[int]) -> str:
    """The canonical JSON of a Struct at nesting `level`, noting the deepest level in deepest[0]. Written
    directly from the message: MessageToDict and json.dumps cost ~9% of a save's server CPU. Recursion is
    bounded by protobuf's own nesting limit on parse (100)."""
    if level > deepest[0]:
        deepest[0] = level
    fields = struct.fields
    return "{" + ",".join(_quoted(key) + ":" + _value_json(fields[key], level, deepest) for key in sorted(fields)) + "}"


def _value_json(value: struct_pb2.Value, level: int, deepest: list[int]) -> str:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return _quoted(value.string_value)
    if kind == "number_value":
        number = value.number_value
        if number != number or number in (math.inf, -math.inf):
            raise ValueError("Fail to serialize NaN or Infinity for Value.number_value, which JSON cannot carry")
        return float.__repr__(number)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "struct_value":
        return _struct_json(value.struct_value, level + 1, deepest)
    if kind == "list_value":
        if level + 1 > deepest[0]:
            deepest[0] = level + 1
        return "[" + ",".join(_value_json(item, level + 1, deepest) for item in value.list_value.values) + "]"
    return "null"  # null_value, or no kind set (MessageToDict reads both as None)
