"""Resuming past a corrupt head: a policy the caller opts into (off by default everywhere).

When a thread's head fails the server's integrity check (DATA_LOSS: checksum, decompression or decryption),
nothing can resume the thread, not even from an older checkpoint. With the policy
`on_corrupt_head="resume_from_ancestor"` (the graph runtime's compile() and CairnSaver), the head is
quarantined and the newest intact checkpoint beneath it becomes the head: the run resumes from there.

Quarantine is a Delete of that checkpoint: a server keeps a checkpoint that fails its check aside (its
quarantine table, `cairn quarantined`, the `cairn_quarantined` metric) instead of deleting it. Before
deleting, the checkpoint is loaded by id and must fail again with DATA_LOSS, so an intact head that another
worker saved meanwhile is never touched.
"""

from __future__ import annotations

import logging

import grpc

from .aio import AsyncCheckpointClient
from .client import CheckpointClient
from .errors import DataLoss, NotFound
from .types import Checkpoint

log = logging.getLogger("cairn_client.recovery")

FAIL = "fail"
RESUME_FROM_ANCESTOR = "resume_from_ancestor"
POLICIES = (FAIL, RESUME_FROM_ANCESTOR)
MAX_QUARANTINED = 100  # corrupt heads quarantined by one load before giving up


def _too_many(thread_id: str) -> DataLoss:
    return DataLoss(
        f"thread {thread_id!r}: more than {MAX_QUARANTINED} corrupt checkpoints on top of each other; "
        "inspect them with `cairn quarantined`", grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH",
    )


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"on_corrupt_head is {FAIL!r} (the default) or {RESUME_FROM_ANCESTOR!r}, not {policy!r}")
    return policy


def load_head(client: CheckpointClient, thread_id: str, namespace: str, policy: str) -> Checkpoint | None:
    """The thread's head (None: empty thread); with RESUME_FROM_ANCESTOR, the newest intact checkpoint after
    quarantining every corrupt head above it."""
    for _ in range(MAX_QUARANTINED + 1):
        try:
            return client.load(thread_id, namespace=namespace)
        except NotFound:
            return None
        except DataLoss:
            if policy != RESUME_FROM_ANCESTOR:
                raise
        page = client.list(thread_id, namespace=namespace, page_size=1)  # without states: lists a corrupt row
        if not page.checkpoints:
            return None
        head = page.checkpoints[0].checkpoint_id
        try:
            client.load(thread_id, namespace=namespace, checkpoint_id=head)
            continue  # intact: the head moved since, read it again
        except DataLoss as err:
            log.warning("thread %r: head %s is corrupt (%s); quarantining it and resuming from its ancestor",
                        thread_id, head, err)
        client.delete(thread_id, head, namespace=namespace)
    raise _too_many(thread_id)


async def aload_head(client: AsyncCheckpointClient, thread_id: str, namespace: str, policy: str) -> Checkpoint | None:
    """load_head() for asyncio."""
    for _ in range(MAX_QUARANTINED + 1):
        try:
            return await client.load(thread_id, namespace=namespace)
        except NotFound:
            return None
        except DataLoss:
            if policy != RESUME_FROM_ANCESTOR:
                raise
        page = await client.list(thread_id, namespace=namespace, page_size=1)
        if not page.checkpoints:
            return None
        head = page.checkpoints[0].checkpoint_id
        try:
            await client.load(thread_id, namespace=namespace, checkpoint_id=head)
            continue
        except DataLoss as err:
            log.warning("thread %r: head %s is corrupt (%s); quarantining it and resuming from its ancestor",
                        thread_id, head, err)
        await client.delete(thread_id, head, namespace=namespace)
    raise _too_many(thread_id)
