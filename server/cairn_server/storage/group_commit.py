"""Group commit: concurrent saves, PutWrites or version reads share one call of the cold store (one transaction).

No timer: a save goes straight to `commit` when fewer than `max_inflight`
commits are running; otherwise it queues, and the next free committer takes
everything queued (up to `max_batch`) in one call. Light load pays no extra
latency; heavy load pays one commit per batch instead of per save. Each save is
still acknowledged only after the commit holding it returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class GroupCommit(Generic[Item, Outcome]):
    """Items (saves, or PutWrites) submitted concurrently share one call of `commit`; see the module."""

    def __init__(
        self, commit: Callable[[list[Item]], Awaitable[list[Outcome | Exception]]], max_inflight: int = 8,
        max_batch: int = 128,
        on_batch: Callable[[int], None] | None = None,
        size: Callable[[Item], int] | None = None,
        max_batch_bytes: int = 0,
    ) -> None:
        self.commit = commit  # items -> one outcome or error per item, in order
        self.on_batch = on_batch  # told the size of every transaction it commits (metrics)
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        # With `size`, a batch also ends before the item that would take it past max_batch_bytes (the first item
        # always goes): a transaction of many large states would run into the cold store's timeout.
        self.size = size
        self.max_batch_bytes = max_batch_bytes
        self._queue: list[tuple[Item, asyncio.Future[Outcome | Exception]]] = []
        self._inflight = 0
        self._drainers: set[asyncio.Task[None]] = set()  # the loop itself keeps only weak references to tasks

    async def submit(self, item: Item) -> Outcome | Exception:
        """The item's outcome (or error) once the commit that took it returned; the commit runs on even if the
        caller leaves."""
        future: asyncio.Future[Outcome | Exception] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start_drainer()
        return await future

    async def submit_many(self, items: list[Item]) -> list[Outcome | Exception]:
        """Each item's outcome (or error), in order: the items queue together, so they share transactions with
        each other and with whatever else is queued. A batch may split between two transactions (max_batch,
        max_batch_bytes); with max_inflight > 1 those may commit in either order."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        self._queue.extend(zip(items, futures, strict=True))
        self._start_drainer()
        return list(await asyncio.gather(*futures))

    def _start_drainer(self) -> None:
        """A committer for what was just queued, unless max_inflight of them run (one of those takes it)."""
        if self._inflight < self.max_inflight:
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)

    def _batch_length(self) -> int:
        """How many queued saves the next transaction takes."""
        if self.size is None or not self.max_batch_bytes:
            return self.max_batch
        total = 0
        for n, (item, _) in enumerate(self._queue[: self.max_batch]):
            total += self.size(item)
            if total > self.max_batch_bytes and n > 0:
                return n
        return self.max_batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                take = self._batch_length()
                batch = self._queue[:take]
                del self._queue[:take]
                batch = [entry for entry in batch if not entry[1].cancelled()]
                if not batch:
                    continue
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                try:
                    outcomes = await self.commit([item for item, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - handed to every waiter, then re-raised if fatal
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self._inflight -= 1
