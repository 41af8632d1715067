"""Background retention: at most N checkpoints per thread head, and a maximum age.

Runs beside the server, never in a save's path. Count-based retention keeps
the head's parent chain (Prune KEEP_LATEST); age-based retention never removes
the head of a (thread, namespace), so a live thread can always resume.

One runner per cluster: every server tries each interval to take a lease, a
row of cairn_retention in the cold store (holder + expiry, taken by an UPDATE
that succeeds only once the previous holder's lease expired; not an advisory
session lock, which pgbouncer's transaction pooling would not keep). The
holder works incrementally from cursors kept in that row:

- count-based: only threads changed since the last pass (cairn_versions
  versions above the stored cursor): only a change can put a thread over
  the limit. A thread whose change commits after a later-numbered one was
  looked at is seen at its next change.
- age-based: a sweep over threads in key order, at most SWEEP_THREADS_PER_PASS
  threads a pass, starting again from the first once it reaches the last.

Every delete locks and bumps its one thread (the freshness protocol), and
the counts reported (log, cairn_retention_deleted_total) are the rows
really deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta, timezone

from cairn.errors import CairnError

from .config import Config
from .storage.records import RetentionCursor
from .storage.tiered import TieredStore

log = logging.getLogger("cairn.retention")
JOB = "retention"
BATCH = 500  # threads looked at per query
SWEEP_THREADS_PER_PASS = 20 * BATCH  # age-based: threads swept per pass


def lease_seconds(config: Config) -> float:
    """How long a runner's lease lasts: two intervals and a margin, renewed every pass and every batch."""
    return 2 * config.retention_interval_seconds + 10.0


def new_holder() -> str:
    """This runner's name in the lease row: host, pid and a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def retention_pass(store: TieredStore, config: Config, holder: str | None = None) -> int | None:
    """One pass if this runner holds (or takes) the lease: how many checkpoints it removed; None if another
    runner holds the lease."""
    holder = holder or new_holder()
    ttl = lease_seconds(config)
    cold = store.cold
    cursor = await cold.retention_lease(JOB, holder, ttl)
    if cursor is None:
        return None
    removed = 0
    version, thread = cursor.version, cursor.thread
    if config.retention_max_checkpoints > 0:
        keep = config.retention_max_checkpoints
        while True:
            upto, over = await cold.threads_changed(version, keep, BATCH)
            for tenant, thread_id in over:
                removed += await store.prune(tenant, [thread_id], keep)
            if upto == version or not await cold.retention_advance(JOB, holder, RetentionCursor(upto, thread), ttl):
                break
            version = upto
    if config.retention_max_age_seconds > 0:
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=config.retention_max_age_seconds)
        for _ in range(SWEEP_THREADS_PER_PASS // BATCH):
            last, old = await cold.threads_after(thread, cutoff, BATCH)
            for tenant, thread_id in old:
                removed += await store.delete_older_than(tenant, thread_id, cutoff)
            thread = last or ("", "")
            if not await cold.retention_advance(JOB, holder, RetentionCursor(version, thread), ttl) or last is None:
                break
    store.stats["retention_deleted"] += removed
    return removed


async def run_retention(store: TieredStore, config: Config) -> None:
    """Every interval, a pass if this server holds the cluster's retention lease; the lease is given up on
    cancellation (shutdown), so another server takes over without waiting for it to expire."""
    holder = new_holder()
    try:
        while True:
            await asyncio.sleep(config.retention_interval_seconds)
            try:
                removed = await retention_pass(store, config, holder)
            except CairnError as err:
                log.warning("retention pass failed, will retry: %s", err.message)
                continue
            if removed:
                log.info("retention removed %d checkpoints", removed)
    finally:
        with contextlib.suppress(CairnError, asyncio.CancelledError):
            await asyncio.shield(store.cold.retention_release(JOB, holder))
