"""Request checks: every rejection names the field and says what to fix.

Limits come from Config and are documented there and in the README.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from google.protobuf import json_format, struct_pb2

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
        """Struct -> canonical JSON text, within the size and depth limits."""
        try:
            doc = json_format.MessageToDict(struct)
        except (json_format.Error, ValueError, TypeError) as exc:
            raise InvalidArgument(field, f"{field} is not valid JSON: {exc}") from exc
        depth = _depth(doc)
        if depth > self.c.max_metadata_depth:
            raise InvalidArgument(
                field,
                f"{field} is nested {depth} levels deep; the limit is {self.c.max_metadata_depth} "
                "(--max-metadata-depth)",
            )
        try:
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except ValueError as exc:
            raise InvalidArgument(field, f"{field} holds NaN or Infinity, which JSON cannot carry") from exc
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


def _depth(value: Any) -> int:
    """Nesting depth without recursion, so hostile input cannot blow the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest
