"""Prune's choice of rows, shared by both cold stores: keep the newest N along each namespace's head chain."""

from __future__ import annotations

from typing import Any


def outside_head_chains(rows: list[Any], keep: int) -> list[Any]:
    """Keys of the rows to delete so each namespace keeps `keep` checkpoints along its head's parent chain.

    rows: (key, namespace, checkpoint_id, parent_checkpoint_id), each namespace's newest (highest sequence)
    first.
    """
    by_ns: dict[str, list[Any]] = {}
    for r in rows:
        by_ns.setdefault(r[1], []).append(r)
    doomed: list[Any] = []
    for ns_rows in by_ns.values():
        by_id = {r[2]: r for r in ns_rows}
        kept: set[Any] = set()
        cursor: Any = ns_rows[0]
        while cursor is not None and len(kept) < keep:
            kept.add(cursor[0])
            cursor = by_id.get(cursor[3]) if cursor[3] else None
        doomed.extend(r[0] for r in ns_rows if r[0] not in kept)
    return doomed
