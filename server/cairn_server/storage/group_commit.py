"""Group commit: concurrent saves (or PutWrites) share one commit (cache round trips and cold transaction).

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
    def __init__(
        self, commit: Callable[[list[Item]], Awaitable[list[Outcome | Exception]]], max_inflight: int = 8,
        max_batch: int = 128,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.commit = commit  # items -> one outcome or error per item, in order
        self.on_batch = on_batch  # told the size of every transaction it commits (metrics)
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        self._queue: list[tuple[Item, asyncio.Future[Outcome | Exception]]] = []
        self._inflight = 0
        self._drainers: set[asyncio.Task[None]] = set()  # the loop itself keeps only weak references to tasks

    async def save(self, item: Item) -> Outcome | Exception:
        future: asyncio.Future[Outcome | Exception] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._inflight < self.max_inflight:
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
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
