"""Formatting for the admin commands: tables, sizes, times, JSON, hex dumps."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

HEX_PREVIEW_BYTES = 128


def iso_time(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, for JSON output."""
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def human_time(dt: datetime | None) -> str:
    if dt is None:
        return "-"
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def dash(value: Any) -> str:
    """A table cell: '-' for empty values, lists joined by commas."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value).replace("\n", " ")


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    out = out or sys.stdout
    cells = [[dash(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    for row in [list(headers), *cells]:
        line = "  ".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row))
        out.write(line.rstrip() + "\n")


def print_json(doc: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def decode_json(raw: bytes, type_tag: str) -> tuple[bool, Any]:
    """(True, value) when the bytes are JSON ("json" or untagged); (False, None) otherwise."""
    if type_tag not in ("json", ""):
        return False, None
    if not raw:
        return type_tag == "json", None
    try:
        return True, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, None


def hexdump(raw: bytes, limit: int = HEX_PREVIEW_BYTES, indent: str = "  ") -> str:
    """`xxd`-style lines for the first `limit` bytes."""
    lines = []
    for off in range(0, min(len(raw), limit), 16):
        chunk = raw[off : off + 16]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{indent}{off:08x}  {hexpart:<47}  |{text}|")
    if len(raw) > limit:
        lines.append(f"{indent}... {len(raw) - limit} more bytes (use --raw to write all of them to stdout)")
    return "\n".join(lines)


def value_preview(raw: bytes, type_tag: str, width: int = 60) -> str:
    """One cell for a pending write's value: compact JSON, else its size and type."""
    ok, value = decode_json(raw, type_tag)
    if ok:
        return shorten(json.dumps(value, separators=(",", ":"), ensure_ascii=False), width)
    return f"<{human_size(len(raw))} {type_tag or 'bytes'}>"
