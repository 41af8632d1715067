"""The state-changing calls the console makes, only when started with ``--allow-writes``.

Each is one or two public RPCs; the HTTP layer checks the CSRF token and the read-only switch before
any of these runs.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from cairn_client import AsyncCheckpointClient, Checkpoint, uuid7

# UUIDv6 timestamps count 100 ns intervals since the Gregorian calendar began (1582-10-15).
_GREGORIAN_OFFSET_100NS = 0x01B21DD213814000


def _uuid6() -> str:
    ts = time.time_ns() // 100 + _GREGORIAN_OFFSET_100NS
    value = (ts >> 12) << 80 | 0x6 << 76 | (ts & 0xFFF) << 64 | 0b10 << 62 | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def _id_like(source_id: str) -> str:
    """A new checkpoint id that sorts after ``source_id``'s siblings: LangGraph names checkpoints with
    UUIDv6 and Cairn's clients with UUIDv7, and a List's ``before`` compares ids within a thread."""
    try:
        version = uuid.UUID(source_id).version
    except ValueError:
        version = None
    return _uuid6() if version == 6 else uuid7()


def _fork_metadata(cp: Checkpoint) -> dict[str, Any]:
    # "fork" is the source LangGraph itself writes for a checkpoint made from another one.
    md = dict(cp.metadata)
    md["source"] = "fork"
    md["forked_from"] = {"thread_id": cp.thread_id, "namespace": cp.namespace, "checkpoint_id": cp.checkpoint_id}
    return md


async def _new_head_from(client: AsyncCheckpointClient, cp: Checkpoint, thread_id: str) -> str:
    """Save ``cp``'s state bytes, verbatim, as the new head of its namespace in ``thread_id``, child of ``cp``.

    Compare-and-set on the head read just before, so a run that saved meanwhile is not silently
    overtaken: the console reports the conflict instead.
    """
    head = await client.load(thread_id, namespace=cp.namespace)
    saved = await client.save(
        thread_id,
        cp.state,
        checkpoint_id=_id_like(cp.checkpoint_id),
        state_type=cp.state_type or "json",
        namespace=cp.namespace,
        parent_checkpoint_id=cp.checkpoint_id,
        metadata=_fork_metadata(cp),
        node_name=cp.node_name,
        next_nodes=cp.next_nodes,
        expected_head_id=head.checkpoint_id,
    )
    return str(saved.checkpoint_id)


async def fork_thread(
    client: AsyncCheckpointClient, thread_id: str, namespace: str, checkpoint_id: str, target_thread_id: str
) -> dict[str, Any]:
    """A new thread ``target_thread_id`` that resumes from the given checkpoint.

    CopyThread copies the whole thread (ids, parents and writes kept). When the checkpoint is not the
    head of its namespace, its state is then saved as a new head on top of it, so the copy resumes
    from there and the later checkpoints stay visible as a branch.
    """
    cp = await client.load(thread_id, namespace=namespace, checkpoint_id=checkpoint_id)
    copied = await client.copy_thread(thread_id, target_thread_id)
    head = await client.load(target_thread_id, namespace=namespace)
    new_head = head.checkpoint_id
    if head.checkpoint_id != cp.checkpoint_id:
        new_head = await _new_head_from(client, cp, target_thread_id)
    return {"thread_id": target_thread_id, "copied": copied, "head_checkpoint_id": new_head, "namespace": namespace}


async def new_head(client: AsyncCheckpointClient, thread_id: str, namespace: str, checkpoint_id: str) -> dict[str, Any]:
    """Time travel inside the thread: the checkpoint's state saved again as the head, as a child of it."""
    cp = await client.load(thread_id, namespace=namespace, checkpoint_id=checkpoint_id)
    return {"thread_id": thread_id, "head_checkpoint_id": await _new_head_from(client, cp, thread_id)}


async def delete_checkpoint(
    client: AsyncCheckpointClient, thread_id: str, namespace: str, checkpoint_id: str
) -> dict[str, Any]:
    return {"deleted": await client.delete(thread_id, checkpoint_id, namespace=namespace)}


async def clear_thread(client: AsyncCheckpointClient, thread_id: str) -> dict[str, Any]:
    return {"deleted_count": await client.clear(thread_id)}


async def prune_thread(client: AsyncCheckpointClient, thread_id: str, keep_latest: int) -> dict[str, Any]:
    """Keep the ``keep_latest`` newest checkpoints of each namespace along the head's parent chain."""
    return {"deleted_count": await client.prune([thread_id], keep_latest=keep_latest)}
