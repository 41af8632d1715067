"""JSON containment with Postgres `@>` semantics, for the stores that lack it."""

from __future__ import annotations

from typing import Any


def json_contains(doc: Any, flt: Any) -> bool:
    """True when `doc` contains `flt`: objects by key (recursively), arrays as multisets of contained items."""
    if isinstance(flt, dict):
        return isinstance(doc, dict) and all(k in doc and json_contains(doc[k], v) for k, v in flt.items())
    if isinstance(flt, list):
        if not isinstance(doc, list):
            # Postgres: a scalar array filter matches a scalar doc only as [doc] @> [x]; keep it strict.
            return False
        return all(any(json_contains(d, f) for d in doc) for f in flt)
    if isinstance(flt, bool) or isinstance(doc, bool):
        return type(flt) is type(doc) and flt == doc
    return doc == flt
