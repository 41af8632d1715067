"""Corrupt checkpoints are kept aside, never destroyed.

A Delete of a checkpoint whose stored state (or a pending write) fails its integrity check (checksum,
decompression, authentication) moves the row into the cold store's quarantine table instead of dropping
it: the thread no longer holds it (its head becomes the newest checkpoint left, so a runtime can resume
from the newest intact ancestor), and an operator can still inspect it (`cairn quarantined`), counted as
`cairn_quarantined` on /metrics. This is what clients' recovery policies call (cairn_client.recovery).
"""

from __future__ import annotations

from ..codec import Codec, UnknownDictionary
from cairn.errors import DataLoss
from .base import ColdStore


async def integrity_failure(
    cold: ColdStore, codec: Codec, tenant: str, thread_id: str, namespace: str, checkpoint_id: str
) -> str | None:
    """Why the stored checkpoint fails its integrity check, or None (intact, or absent)."""
    found = await cold.load(tenant, thread_id, namespace, checkpoint_id)
    if found is None:
        return None
    cp, writes = found
    row = (cp.thread_id, cp.namespace, cp.checkpoint_id)
    where = f"checkpoint {checkpoint_id!r} of thread {thread_id!r}"
    for attempt in range(2):
        try:
            codec.decode(cp.codec, cp.state, cp.raw_size, cp.checksum, where, tenant, row)
            for w in writes:
                codec.open_write(w.value, tenant, row, w.task_id, w.idx)
            return None
        except UnknownDictionary as exc:
            if attempt:
                return exc.message
            codec.add_dictionaries(await cold.dictionaries())  # trained by another process since we started
        except DataLoss as exc:
            return exc.message
    return None
