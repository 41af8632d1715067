"""Stored bytes made readable: JSON as is, LangGraph's msgpack decoded, anything else labelled.

Nothing here executes stored data: msgpack extension types (LangGraph's way of storing Pydantic models,
dataclasses, enums...) become ``{"__type__": "module.Name", ...}`` dicts naming the class, never instances
of it, and pickles or encrypted states are only described.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

# LangGraph's JsonPlusSerializer extension codes (langgraph.checkpoint.serde.jsonplus).
_EXT_NAMES = {
    0: "constructor(arg)",
    1: "constructor(*args)",
    2: "constructor(**kwargs)",
    3: "method(arg)",
    4: "pydantic v1",
    5: "pydantic v2",
    6: "numpy array",
}

HEX_PREVIEW_BYTES = 256


@dataclass(frozen=True)
class Decoded:
    """A readable form of some stored bytes.

    ``value`` is JSON-ready when ``ok``; otherwise ``label`` says why the bytes could not be shown and
    ``value`` holds a hex preview of their start.
    """

    ok: bool
    format: str
    label: str
    value: Any


def _ext_hook(code: int, data: bytes) -> Any:
    import ormsgpack

    try:
        inner = ormsgpack.unpackb(data, ext_hook=_ext_hook, option=ormsgpack.OPT_NON_STR_KEYS)
    except (ValueError, TypeError):  # an extension we cannot read: show its bytes, keep the rest readable
        return {"__ext__": code, "hex": data[:HEX_PREVIEW_BYTES].hex(), "size_bytes": len(data)}
    kind = _EXT_NAMES.get(code, f"ext {code}")
    if isinstance(inner, (list, tuple)) and len(inner) >= 2 and all(isinstance(p, str) for p in inner[:2]):
        out: dict[str, Any] = {"__type__": f"{inner[0]}.{inner[1]}", "__kind__": kind}
        if len(inner) > 2:
            out["value"] = inner[2]
        if len(inner) > 3:
            out["method"] = inner[3]
        return out
    return {"__kind__": kind, "value": inner}


def plain(value: Any) -> Any:
    """``value`` with what JSON cannot hold replaced: non-string keys, bytes, NaN, tuples, sets."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else json.dumps(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return {"__bytes__": raw.decode("utf-8")}
        except UnicodeDecodeError:
            return {"__bytes_base64__": base64.b64encode(raw[:4096]).decode(), "size_bytes": len(raw)}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _hex(raw: bytes) -> str:
    return raw[:HEX_PREVIEW_BYTES].hex(" ")


def decode(raw: bytes, type_tag: str) -> Decoded:
    """Decode ``raw`` stored with serializer tag ``type_tag`` ("json", "msgpack", "msgpack+aes", ...)."""
    tag = (type_tag or "json").lower()
    if tag in ("json", "application/json"):
        if not raw:
            return Decoded(True, "json", "JSON", None)
        try:
            return Decoded(True, "json", "JSON", json.loads(raw))
        except ValueError as exc:
            return Decoded(False, "json", f"tagged json but not valid JSON: {exc}", _hex(raw))
    if tag == "msgpack":
        try:
            import ormsgpack
        except ImportError:
            return Decoded(False, tag, "msgpack (LangGraph); install ormsgpack to decode it", _hex(raw))
        try:
            value = ormsgpack.unpackb(raw, ext_hook=_ext_hook, option=ormsgpack.OPT_NON_STR_KEYS)
        except (ValueError, TypeError) as exc:  # ormsgpack's MsgpackDecodeError is a ValueError
            return Decoded(False, tag, f"msgpack that does not decode: {exc}", _hex(raw))
        return Decoded(True, "msgpack", "msgpack (LangGraph), decoded; class instances shown by name", plain(value))
    if tag in ("null", "none", "empty"):
        return Decoded(True, tag, tag, None)
    if tag == "bytes":
        return Decoded(False, tag, "raw bytes", _hex(raw))
    if "aes" in tag or "encrypt" in tag:
        return Decoded(False, tag, f"encrypted by the client ({tag}); only the client's key can read it", _hex(raw))
    if "pickle" in tag:
        return Decoded(False, tag, f"{tag}: pickled Python objects are never unpickled here", _hex(raw))
    return Decoded(False, tag, f"serializer {tag!r} is not known to the console", _hex(raw))


class _Full(Exception):
    pass


def pretty(value: Any, limit_chars: int) -> tuple[str, bool]:
    """``value`` as indented JSON, cut after about ``limit_chars`` characters; returns (text, truncated).

    Stops walking once the limit is reached, so a 10 MB state costs no more than the part shown.
    """
    parts: list[str] = []
    size = 0

    def put(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text)
        if size >= limit_chars:
            raise _Full

    def walk(v: Any, indent: str) -> None:
        inner = indent + "  "
        if isinstance(v, dict) and v:
            put("{\n")
            for i, (k, item) in enumerate(v.items()):
                put(f"{inner}{json.dumps(k, ensure_ascii=False)}: ")
                walk(item, inner)
                put(",\n" if i < len(v) - 1 else "\n")
            put(indent + "}")
        elif isinstance(v, list) and v:
            put("[\n")
            for i, item in enumerate(v):
                put(inner)
                walk(item, inner)
                put(",\n" if i < len(v) - 1 else "\n")
            put(indent + "]")
        else:
            text = json.dumps(v, ensure_ascii=False)
            put(text if len(text) <= limit_chars else text[:limit_chars])

    try:
        walk(value, "")
    except _Full:
        text = "".join(parts)
        return text[:limit_chars], True
    return "".join(parts), False


def preview(value: Any, limit_chars: int = 200) -> str:
    """One line of JSON for a table cell, cut to ``limit_chars``."""
    text, cut = pretty(value, limit_chars * 4)
    line = " ".join(part.strip() for part in text.splitlines())
    return line[:limit_chars] + ("…" if cut or len(line) > limit_chars else "")
