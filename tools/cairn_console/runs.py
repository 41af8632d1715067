"""The Runs pages: durable runs by status, queue and thread, a run with its attempts, and cancelling one.

Each function is one public RPC (ListRuns, GetRun, CancelRun) through ``AsyncCheckpointClient`` and
returns a JSON-ready dict. A run's input and output are decoded as checkpoint states are (decode.py),
and cut at the same preview length.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn_client import AsyncCheckpointClient, Run, RunError
from cairn_client.runs import STATUSES

from .decode import decode, pretty

# Characters of pretty-printed input or output sent with a run (the list sends none).
PAYLOAD_PREVIEW_CHARS = 50_000
# ListRuns answers at most 1000 runs a page.
MAX_RUNS_PAGE_SIZE = 1000


def _when(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _error(e: RunError | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"reason": e.reason, "type": e.type, "message": e.message, "retryable": e.retryable}


def parse_statuses(raw: str) -> list[str]:
    """``running,failed`` -> ["RUNNING", "FAILED"]; ValueError naming the known ones for anything else."""
    names = [s.strip().upper() for s in raw.split(",") if s.strip()]
    for name in names:
        if name not in STATUSES:
            raise ValueError(f"unknown run status {name.lower()!r}; use one of {', '.join(s.lower() for s in STATUSES)}")
    return names


def run_doc(run: Run) -> dict[str, Any]:
    """What the list shows of a run. The API has no heartbeat timestamp: a heartbeat moves the lease's
    expiry, so ``lease_expires_at`` (RUNNING only) is the lease holder's sign of life."""
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "queue": run.queue,
        "status": run.status.lower(),
        "created_at": _when(run.created_at),
        "started_at": _when(run.started_at),
        "updated_at": _when(run.updated_at),
        "ended_at": _when(run.ended_at),
        "not_before": _when(run.not_before),
        "attempt_count": run.attempt_count,
        "failed_attempt_count": run.failed_attempt_count,
        "recovery_count": run.recovery_count,
        "cancel_requested": run.cancel_requested,
        "worker_id": run.worker_id,
        "lease_epoch": run.lease_epoch,
        "lease_expires_at": _when(run.lease_expires_at),
        "error": _error(run.error),
        "done": run.done,
    }


def _payload(raw: bytes, type_tag: str) -> dict[str, Any] | None:
    if not raw:
        return None
    value = decode(raw, type_tag or "json")
    text, cut = pretty(value.value, PAYLOAD_PREVIEW_CHARS) if value.ok else (value.value, False)
    return {"type": type_tag, "decoded": value.ok, "label": value.label, "text": text, "truncated": cut,
            "size_bytes": len(raw)}


async def runs_page(
    client: AsyncCheckpointClient, *, page_size: int, page_token: str, statuses: list[str], queue: str,
    thread_id: str,
) -> dict[str, Any]:
    """One ListRuns page, newest first, without inputs and outputs."""
    page = await client.list_runs(status=statuses, queue=queue, thread_id=thread_id, page_size=page_size,
                                  page_token=page_token)
    return {"runs": [run_doc(r) for r in page.runs], "next_page_token": page.next_page_token}


async def run_view(client: AsyncCheckpointClient, run_id: str) -> dict[str, Any]:
    """A run (GetRun) with its attempts, oldest first, its metadata and retry policy, input and output."""
    run = await client.get_run(run_id)
    doc = run_doc(run)
    p = run.retry_policy
    doc.update(
        metadata=run.metadata,
        checkpoint_id=run.checkpoint_id,
        execution_timeout_seconds=run.execution_timeout_seconds,
        retry_policy={
            "max_attempts": p.max_attempts, "initial_backoff_seconds": p.initial_backoff_seconds,
            "backoff_coefficient": p.backoff_coefficient, "max_backoff_seconds": p.max_backoff_seconds,
            "max_recoveries": p.max_recoveries,
        },
        input=_payload(run.input, run.input_type),
        output=_payload(run.output, run.output_type),
        attempts=[
            {
                "number": a.number, "worker_id": a.worker_id, "status": a.status.lower(),
                "started_at": _when(a.started_at), "ended_at": _when(a.ended_at), "error": _error(a.error),
                "recovered": a.recovered,
            }
            for a in run.attempts
        ],
    )
    return doc


async def cancel_run(client: AsyncCheckpointClient, run_id: str) -> dict[str, Any]:
    """CancelRun: CANCELLED at once unless a worker holds the run, then ``cancel_requested`` until the
    worker sees it at its next heartbeat."""
    return {"run": run_doc(await client.cancel_run(run_id))}
