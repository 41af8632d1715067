"""The errors both cold stores raise in the same words (from the one vocabulary, cairn.errors)."""

from __future__ import annotations

from cairn.errors import AlreadyExists, NotFound

from .records import StoredWrite


def missing_checkpoint(thread_id: str, namespace: str, checkpoint_id: str) -> NotFound:
    return NotFound(
        f"checkpoint {checkpoint_id!r} does not exist in thread {thread_id!r} namespace {namespace!r}; "
        "save the checkpoint before attaching writes to it"
    )


def write_conflict(w: StoredWrite) -> AlreadyExists:
    return AlreadyExists(
        f"write idx {w.idx} of task {w.task_id!r} is already stored with a different value; "
        "writes are immutable: use a new task_id, or set replace=true to overwrite",
        reason="WRITE_CONFLICT",
    )
