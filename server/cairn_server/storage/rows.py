"""What both cold stores share when they read rows: the row mappers, and List's byte budget for states."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .records import StoredCheckpoint, StoredWrite


def checkpoint_from_row(r: Any, with_state: bool, created_at: datetime, next_nodes: list[str]) -> StoredCheckpoint:
    """A StoredCheckpoint from a row of either cold store (asyncpg Record or sqlite3.Row: both index by name)."""
    return StoredCheckpoint(
        row_id=r["row_id"],
        tenant=r["tenant"],
        thread_id=r["thread_id"],
        namespace=r["namespace"],
        checkpoint_id=r["checkpoint_id"],
        parent_checkpoint_id=r["parent_checkpoint_id"],
        sequence=r["sequence"],
        created_at=created_at,
        state_type=r["state_type"],
        node_name=r["node_name"],
        next_nodes=next_nodes,
        metadata_json=r["metadata"],
        codec=r["codec"],
        raw_size=r["raw_size"],
        checksum=r["checksum"],
        content_hash=bytes(r["content_hash"]),
        state=bytes(r["state"]) if with_state else b"",
        stored_bytes=r["stored_bytes"],
    )


def write_from_row(r: Any) -> StoredWrite:
    return StoredWrite(
        task_id=r["task_id"],
        task_path=r["task_path"],
        idx=r["idx"],
        channel=r["channel"],
        value_type=r["value_type"],
        value=bytes(r["value"]),
        thread_id=r["thread_id"],
        namespace=r["namespace"],
        checkpoint_id=r["checkpoint_id"],
    )


def listed_size(cp: StoredCheckpoint) -> int:
    """An upper bound of what one checkpoint adds to a List response with its state (ids and fields included)."""
    return cp.raw_size + len(cp.metadata_json) + sum(len(n) for n in cp.next_nodes) + 4096


def within_budget(rows: list[StoredCheckpoint], max_bytes: int) -> int:
    """How many of `rows` (in page order) a List may send with their states: the first always, then as many as
    keep listed_size's total within max_bytes. Stores fetch states for these only."""
    total = 0
    for i, cp in enumerate(rows):
        total += listed_size(cp)
        if total > max_bytes and i > 0:
            return i
    return len(rows)
