"""Background retention: at most N checkpoints per thread head, and a maximum age.

Runs beside the server, never in a save's path. Count-based retention keeps
the head's parent chain (Prune KEEP_LATEST); age-based retention never removes
the head of a (thread, namespace), so a live thread can always resume.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from .config import Config
from cairn.errors import CairnError
from .storage.tiered import TieredStore

log = logging.getLogger("cairn.retention")
_BATCH = 500


async def retention_pass(store: TieredStore, config: Config) -> int:
    """One pass; returns how many checkpoints it removed."""
    removed = 0
    if config.retention_max_checkpoints > 0:
        for tenant, thread_id in await store.cold.threads_over(config.retention_max_checkpoints, _BATCH):
            removed += await store.prune(tenant, [thread_id], config.retention_max_checkpoints)
    if config.retention_max_age_seconds > 0:
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=config.retention_max_age_seconds)
        removed += await store.delete_older_than(cutoff, _BATCH * 20)
    store.stats["retention_deleted"] += removed
    return removed


async def run_retention(store: TieredStore, config: Config) -> None:
    while True:
        await asyncio.sleep(config.retention_interval_seconds)
        try:
            removed = await retention_pass(store, config)
        except CairnError as err:
            log.warning("retention pass failed, will retry: %s", err.message)
            continue
        if removed:
            log.info("retention removed %d checkpoints", removed)
