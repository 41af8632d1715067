"""Page tokens (AIP-158), an API concern: opaque to clients, bound to the query that issued them, and checked
as strictly as any request field, since a client can send anything back."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from cairn.errors import InvalidArgument

from .storage.records import MAX_ROW_ID


class PageToken:
    """Opaque AIP-158 token: the last position seen, bound to the query that made it."""

    @staticmethod
    def encode(position: Any, fingerprint: str) -> str:
        blob = json.dumps({"r": position, "q": fingerprint}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(blob).decode().rstrip("=")

    @staticmethod
    def decode(token: str, fingerprint: str, kind: type = int) -> Any:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            row_id, fp = data["r"], data["q"]
            if not isinstance(row_id, kind) or isinstance(row_id, bool) or not isinstance(fp, str):
                raise ValueError("bad fields")
            if kind is int and not 0 < row_id <= MAX_ROW_ID:  # both stores keep row ids as signed 64-bit
                raise ValueError("row id out of range")
        except (ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise InvalidArgument(
                "page_token", "page_token is not one this server issued; pass next_page_token unchanged or omit it"
            ) from exc
        if fp != fingerprint:
            raise InvalidArgument(
                "page_token", "page_token belongs to a different query; keep every other field of the request the same"
            )
        return row_id


def fingerprint(*parts: object) -> str:
    """A short stable digest of the query fields a page token is bound to."""
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=8).hexdigest()


def thread_position(pos: list[Any], limits: Any) -> tuple[datetime, str]:
    """A ListThreads page token's (updated_at, thread_id), each checked as strictly as a request field: the
    token is client input, and an edited one must be INVALID_ARGUMENT on every store. `limits`: validation.Limits."""
    invalid = InvalidArgument("page_token", "page_token is not one this server issued; pass next_page_token unchanged")
    if len(pos) != 2 or not isinstance(pos[0], str) or not isinstance(pos[1], str):
        raise invalid
    try:
        updated = datetime.fromisoformat(pos[0])
        limits.id("page_token", pos[1], required=True)
    except (ValueError, InvalidArgument) as exc:
        raise invalid from exc
    if updated.tzinfo is None:
        raise invalid
    return updated, pos[1]
