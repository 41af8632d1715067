"""What each page shows, built from public gRPC calls through ``AsyncCheckpointClient``.

Every function returns a JSON-ready dict. Nothing here keeps state between requests, and nothing loads
more than one page of the server's answers at a time (the id-prefix search scans a bounded number of
ListThreads pages per request and hands back a token to go on).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from cairn_client import AsyncCheckpointClient, Checkpoint, NotFound, ThreadInfo

from .decode import decode, pretty, preview
from .diff import diff

# A request's id-prefix search reads at most this many ListThreads pages of the server's maximum size.
PREFIX_SCAN_PAGES = 10
SCAN_PAGE_SIZE = 1000
TIMELINE_PAGE_SIZE = 1000
# Characters of pretty-printed state sent with a checkpoint; the rest is a download.
STATE_PREVIEW_CHARS = 200_000
WRITE_PREVIEW_CHARS = 2_000
MAX_DIFF_CHANGES = 500


def _when(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def thread_status(metadata: dict[str, Any], next_nodes: list[str]) -> str:
    """A thread's status: its head's metadata ``status`` when the runtime wrote one (Cairn's runtime does),
    else "pending" when the head has nodes to run next (LangGraph: interrupted or not finished), else "idle"."""
    status = metadata.get("status")
    if isinstance(status, str) and status:
        return status
    return "pending" if next_nodes else "idle"


def thread_doc(t: ThreadInfo) -> dict[str, Any]:
    return {
        "thread_id": t.thread_id,
        "status": thread_status(t.head_metadata, t.head_next_nodes),
        "updated_at": _when(t.updated_at),
        "head_checkpoint_id": t.head_checkpoint_id,
        "head_node": t.head_node_name,
        "head_next": t.head_next_nodes,
        "checkpoint_count": t.checkpoint_count,
        "head_metadata": t.head_metadata,
    }


# Head-size lookups (one List of page size 1 each) a threads page runs at once.
HEAD_SIZE_CONCURRENCY = 16


async def _with_head_sizes(client: AsyncCheckpointClient, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill each thread's head state size, raw and stored: ThreadInfo has none, and a List without
    states reports them for the newest root checkpoint, one small call per thread shown."""
    slots = asyncio.Semaphore(HEAD_SIZE_CONCURRENCY)

    async def fill(doc: dict[str, Any]) -> None:
        async with slots:
            page = await client.list(doc["thread_id"], namespace="", page_size=1)
        if page.checkpoints:
            doc["head_raw"] = page.checkpoints[0].state_size_bytes
            doc["head_stored"] = page.checkpoints[0].stored_size_bytes

    await asyncio.gather(*(fill(doc) for doc in docs))
    return docs


async def threads_page(
    client: AsyncCheckpointClient,
    *,
    page_size: int,
    page_token: str,
    metadata_filter: dict[str, Any] | None,
    prefix: str,
) -> dict[str, Any]:
    """One page of threads, most recently updated first.

    Without ``prefix`` this is one ListThreads call. With it, ListThreads has no id filter, so this
    scans up to PREFIX_SCAN_PAGES pages of SCAN_PAGE_SIZE threads and keeps those whose id starts with
    ``prefix``; ``next_page_token`` resumes the scan and ``scanned`` says how many threads it read.
    """
    if not prefix:
        page = await client.list_threads(page_size=page_size, page_token=page_token, metadata_filter=metadata_filter)
        return {
            "threads": await _with_head_sizes(client, [thread_doc(t) for t in page.threads]),
            "next_page_token": page.next_page_token,
            "scanned": len(page.threads),
        }
    found: list[dict[str, Any]] = []
    token, scanned = page_token, 0
    for _ in range(PREFIX_SCAN_PAGES):
        page = await client.list_threads(page_size=SCAN_PAGE_SIZE, page_token=token, metadata_filter=metadata_filter)
        scanned += len(page.threads)
        found.extend(thread_doc(t) for t in page.threads if t.thread_id.startswith(prefix))
        token = page.next_page_token
        # Stop at a page boundary once enough matched, so the token resumes exactly after what was read.
        if not token or len(found) >= page_size:
            break
    return {"threads": await _with_head_sizes(client, found), "next_page_token": token, "scanned": scanned}


def _row(cp: Checkpoint) -> dict[str, Any]:
    md = cp.metadata
    return {
        "id": cp.checkpoint_id,
        "parent": cp.parent_checkpoint_id,
        "ns": cp.namespace,
        "node": cp.node_name,
        "next": cp.next_nodes,
        "step": md.get("step"),
        "source": md.get("source"),
        "status": md.get("status"),
        "created_at": _when(cp.created_at),
        "seq": cp.sequence,
        "raw": cp.state_size_bytes,
        "stored": cp.stored_size_bytes,
    }


async def timeline_page(
    client: AsyncCheckpointClient, thread_id: str, page_token: str, page_size: int = TIMELINE_PAGE_SIZE
) -> dict[str, Any]:
    """One page of a thread's checkpoints (every namespace), newest first, without states."""
    page = await client.list(thread_id, page_size=page_size, page_token=page_token)
    return {"rows": [_row(cp) for cp in page.checkpoints], "next_page_token": page.next_page_token}


def _writes_by_task(cp: Checkpoint) -> list[dict[str, Any]]:
    tasks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for w in cp.pending_writes:
        value = decode(w.value, w.value_type)
        text, cut = pretty(value.value, WRITE_PREVIEW_CHARS) if value.ok else (value.value, False)
        tasks.setdefault((w.task_path, w.task_id), []).append({
            "idx": w.idx,
            "channel": w.channel,
            "value_type": w.value_type,
            "decoded": value.ok,
            "label": value.label,
            "value": text,
            "truncated": cut,
            "size_bytes": len(w.value),
        })
    return [
        {"task_path": path, "task_id": task_id, "writes": writes}
        for (path, task_id), writes in tasks.items()
    ]


def _checkpoint_body(cp: Checkpoint, parent: Checkpoint | None, parent_missing: bool) -> dict[str, Any]:
    """The CPU-heavy part (decode, pretty-print, diff), run off the event loop."""
    state = decode(cp.state, cp.state_type)
    if state.ok:
        text, cut = pretty(state.value, STATE_PREVIEW_CHARS)
    else:
        text, cut = state.value, False
    out: dict[str, Any] = {
        "state": {
            "type": cp.state_type,
            "decoded": state.ok,
            "label": state.label,
            "text": text,
            "truncated": cut,
            "raw_bytes": cp.state_size_bytes or len(cp.state),
            "stored_bytes": cp.stored_size_bytes,
        },
        "writes": _writes_by_task(cp),
    }
    if parent is None:
        out["diff"] = {
            "parent": cp.parent_checkpoint_id or None,
            "available": False,
            "reason": "the parent checkpoint is no longer stored" if parent_missing else "first checkpoint",
        }
        return out
    before = decode(parent.state, parent.state_type)
    if not (state.ok and before.ok):
        out["diff"] = {
            "parent": parent.checkpoint_id, "available": False,
            "reason": "one of the two states cannot be decoded",
        }
        return out
    changes, cut = diff(before.value, state.value, MAX_DIFF_CHANGES)
    out["diff"] = {
        "parent": parent.checkpoint_id,
        "available": True,
        "truncated": cut,
        "changes": [{"op": c.op, "path": c.path, "old": c.old, "new": c.new} for c in changes],
    }
    return out


async def checkpoint_view(
    client: AsyncCheckpointClient, thread_id: str, namespace: str, checkpoint_id: str
) -> dict[str, Any]:
    """A checkpoint with its state (pretty, cut at STATE_PREVIEW_CHARS), metadata, writes by task and
    its diff against its parent (a second Load; the parent's id is known only once the first returns)."""
    cp = await client.load(thread_id, namespace=namespace, checkpoint_id=checkpoint_id or None)
    parent: Checkpoint | None = None
    parent_missing = False
    if cp.parent_checkpoint_id:
        try:
            parent = await client.load(thread_id, namespace=namespace, checkpoint_id=cp.parent_checkpoint_id)
        except NotFound:
            parent_missing = True
    body = await asyncio.to_thread(_checkpoint_body, cp, parent, parent_missing)
    head = _row(cp)
    head.update(
        thread_id=cp.thread_id,
        state_type=cp.state_type,
        metadata=cp.metadata,
        metadata_preview=preview(cp.metadata),
    )
    return {"checkpoint": head, **body}


async def state_bytes(
    client: AsyncCheckpointClient, thread_id: str, namespace: str, checkpoint_id: str
) -> tuple[bytes, str]:
    """The whole stored state and its serializer tag, for the download link."""
    cp = await client.load(thread_id, namespace=namespace, checkpoint_id=checkpoint_id or None)
    return cp.state, cp.state_type
