"""A structural diff of two decoded states, bounded in the number of changes it reports.

Equal subtrees are skipped by one ``==`` (done in C by Python's dict and list comparison), so two 10 MB
states that differ in one message cost one walk down to that message, not a walk of both states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .decode import preview


@dataclass(frozen=True)
class Change:
    """One difference: ``op`` is "added", "removed" or "changed"; ``path`` is a JSONPath-like string."""

    op: str
    path: str
    old: str | None
    new: str | None


def _key_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if text.isidentifier():
        return f"{path}.{text}" if path else text
    return f"{path}[{text!r}]"


def diff(old: Any, new: Any, max_changes: int = 500, preview_chars: int = 200) -> tuple[list[Change], bool]:
    """The changes from ``old`` to ``new``, at most ``max_changes``; returns (changes, truncated).

    Lists are compared position by position, with the common prefix skipped first: a list of messages
    that grew by one reports one "added" entry.
    """
    out: list[Change] = []

    def p(v: Any) -> str:
        return preview(v, preview_chars)

    def add(change: Change) -> bool:
        if len(out) >= max_changes:
            return False
        out.append(change)
        return True

    def walk(a: Any, b: Any, path: str) -> bool:
        if a == b and type(a) is type(b):
            return True
        if isinstance(a, dict) and isinstance(b, dict):
            for k, v in b.items():
                if k not in a:
                    if not add(Change("added", _key_path(path, k), None, p(v))):
                        return False
                elif not walk(a[k], v, _key_path(path, k)):
                    return False
            for k, v in a.items():
                if k not in b and not add(Change("removed", _key_path(path, k), p(v), None)):
                    return False
            return True
        if isinstance(a, list) and isinstance(b, list):
            common = min(len(a), len(b))
            # A list that only grew (messages appended) has an equal prefix: one comparison in C skips it.
            start = common if a[:common] == b[:common] else 0
            for i in range(start, common):
                if not walk(a[i], b[i], _key_path(path, i)):
                    return False
            for i in range(common, len(b)):
                if not add(Change("added", _key_path(path, i), None, p(b[i]))):
                    return False
            for i in range(common, len(a)):
                if not add(Change("removed", _key_path(path, i), p(a[i]), None)):
                    return False
            return True
        return add(Change("changed", path or "(root)", p(a), p(b)))

    complete = walk(old, new, "")
    return out, not complete
