"""Concurrent calls of one kind, sent together as one batch call (asyncio).

A graph runtime runs many graphs on one event loop, and each saves after every step. Sent one call each, every
save pays gRPC's per-call cost at both ends: on a 37 KB state that is most of the server's CPU per save (a bare
echo costs about what the save's own work does) and most of the client's. The Coalescer keeps that cost per
batch instead:

- a call goes straight out when none of its kind is in flight, so a lone caller waits for nothing;
- calls made while one is in flight queue; another sender starts once `min_batch` of them wait (up to
  `max_inflight` senders), and each sender takes a share of the queue (up to `max_items` and `max_bytes`) as
  one batch call (SaveBatch, BatchLoad), then goes on while calls wait.

No timer, the same rule as the server's group commit (server/cairn_server/storage/group_commit.py). Each
caller keeps its own deadline: a batch is sent with the latest deadline of its items, and an item whose own
deadline passes first ends with DeadlineExceeded, as its unary call would have. A batch call that fails as a
whole fails each of its items with that error, except when the server refused the batch itself: without the
batch method (UNIMPLEMENTED) every item and every later call goes on its own; over the server's batch limits
(INVALID_ARGUMENT, RESOURCE_EXHAUSTED: more items than its --max-batch-items, or a message larger than it
takes) the items go on their own and later batches are half as large, so each caller gets the answer its own
call would have.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import grpc

from .errors import CairnError, DeadlineExceeded

Req = TypeVar("Req")
Resp = TypeVar("Resp")


SendOne = Callable[[Req, float], Awaitable[Resp]]
# (requests, timeout) -> one response or error per request, in order; raises CairnError when the call fails whole
SendMany = Callable[[Sequence[Req], float], Awaitable[Sequence["Resp | CairnError"]]]

# Whole-call failures of a batch call that the batch caused and its items alone would not meet.
_BATCH_REFUSED = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


class Coalescer(Generic[Req, Resp]):
    """Sends calls of one kind alone while few are in flight, and together once more wait; see the module."""

    # A second sender starts only once this many calls wait. At 4 graphs on one loop this took the server's CPU
    # per save from ~800-1,100 to ~560-630 us at the same or lower latency (calls going alone each paid gRPC's
    # per-call cost); at 32 it changed nothing measurable (an interleaved sweep of 1 against 4, 3 rounds).
    min_batch = 4

    def __init__(
        self,
        send_one: SendOne[Req, Resp],
        send_many: SendMany[Req, Resp],
        *,
        max_inflight: int,
        max_items: int,
        max_bytes: int,
        size: Callable[[Req], int],
        retry_alone: Callable[[CairnError], bool] = lambda err: False,
    ) -> None:
        """
        Args:
            send_one: the unary call, (request, timeout seconds) -> response.
            send_many: the batch call, (requests, timeout seconds) -> one response or CairnError per request.
            max_inflight: calls of this kind in flight before concurrent ones wait to go together.
            max_items: the most requests in one batch call.
            max_bytes: the most request bytes (by `size`) in one batch call; the first request always goes.
            size: a request's size in bytes.
            retry_alone: item errors that a batch caused (a response budget shared by its items) and that the
                unary call would not give: such an item is sent again on its own.
        """
        self._send_one = send_one
        self._send_many = send_many
        self.max_inflight = max_inflight
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._size = size
        self._retry_alone = retry_alone
        self.batching = True  # False once the server said it has no batch method
        self._queue: list[tuple[Req, float, asyncio.Future[Resp]]] = []
        self._inflight = 0  # sender tasks
        self._sending = 0  # of them, those with a call on the wire
        self._senders: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def call(self, request: Req, timeout: float) -> Resp:
        """The response to `request`, sent alone or in a batch; raises its CairnError."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Resp] = loop.create_future()
        deadline = time.monotonic() + timeout
        queue = self._queue
        queue.append((request, deadline, future))
        # One sender goes at once; another starts only once a batch's worth waits, so low concurrency pays a
        # call per few saves rather than one each (most of a small call's CPU is gRPC's per call), and high
        # concurrency still keeps max_inflight batches on the wire.
        if self._inflight == 0 or (self._inflight < self.max_inflight and len(queue) >= self.min_batch):
            self._inflight += 1
            task = loop.create_task(self._drain())
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        # The item's own deadline, which may come before that of the batch it rides in.
        expiry = loop.call_at(loop.time() + timeout, _expire, future, timeout)
        try:
            return await future
        finally:
            expiry.cancel()

    def _take(self) -> list[tuple[Req, float, asyncio.Future[Resp]]]:
        """The next batch: queued calls whose callers still wait, up to max_items and max_bytes."""
        batch: list[tuple[Req, float, asyncio.Future[Resp]]] = []
        total = 0
        queue = self._queue
        # Callers woken by one answer call again together: a share of the queue per free sender (not all of it
        # for the first) keeps max_inflight batches on the wire, so the server and its cold store work on some
        # while the others travel.
        free = max(1, self.max_inflight - self._sending)
        limit = min(self.max_items, max(self.min_batch, -(-len(queue) // free))) if self.batching else 1
        taken = 0
        for entry in queue:
            if len(batch) >= limit:
                break
            taken += 1
            if entry[2].done():  # cancelled, or past its deadline, before it was sent
                continue
            total += self._size(entry[0])
            if batch and total > self.max_bytes:
                taken -= 1
                break
            batch.append(entry)
        del queue[:taken]
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                if not batch:
                    continue
                timeout = max(deadline for _, deadline, _ in batch) - time.monotonic()
                self._sending += 1
                try:
                    if len(batch) == 1 or not self.batching:
                        await self._one(batch[0], timeout)
                    else:
                        await self._many(batch, timeout)
                finally:
                    self._sending -= 1
        except asyncio.CancelledError:
            # grpc.aio cancelled the call (aclose), or the loop is ending: with no sender left, the queued callers
            # end as their calls in flight did, instead of waiting out their deadlines.
            if self._inflight == 1:
                for _, _, future in self._queue:
                    future.cancel()
                self._queue.clear()
            raise
        finally:
            self._inflight -= 1

    async def _one(self, entry: tuple[Req, float, asyncio.Future[Resp]], timeout: float) -> None:
        request, _, future = entry
        try:
            response = await self._send_one(request, max(timeout, 0.001))
        except asyncio.CancelledError:  # the channel closed with the call in flight: the caller's call ends so too
            future.cancel()
            raise
        except Exception as err:  # CairnError, or what the channel raises itself (closed): the caller's to see
            _settle(future, err)
        else:
            _settle(future, response)

    async def _alone(self, entries: list[tuple[Req, float, asyncio.Future[Resp]]]) -> None:
        """Send each entry whose caller still waits as its own call."""
        now = time.monotonic()
        await asyncio.gather(*(self._one(entry, entry[1] - now) for entry in entries if not entry[2].done()))

    async def _many(self, batch: list[tuple[Req, float, asyncio.Future[Resp]]], timeout: float) -> None:
        try:
            answers = await self._send_many([request for request, _, _ in batch], max(timeout, 0.001))
        except asyncio.CancelledError:  # as in _one
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as err:  # CairnError, or what the channel raises itself (closed)
            code = err.code if isinstance(err, CairnError) else None
            if code == grpc.StatusCode.UNIMPLEMENTED:  # a server older than the batch method
                self.batching = False
                await self._alone(batch)
                return
            if code in _BATCH_REFUSED:  # more items or bytes than this server takes in one call
                # min: a refusal answered late (for a batch sent before an earlier one shrank the limit) keeps it
                self.max_items = min(self.max_items, max(1, len(batch) // 2))
                self.max_bytes = min(self.max_bytes, max(1, sum(self._size(request) for request, _, _ in batch) // 2))
                await self._alone(batch)
                return
            for _, _, future in batch:  # each caller's to see
                _settle(future, err)
            return
        alone = []
        for entry, answer in zip(batch, answers, strict=True):
            if isinstance(answer, CairnError) and self._retry_alone(answer):
                alone.append(entry)
            else:
                _settle(entry[2], answer)
        if alone:
            await self._alone(alone)


def _settle(future: asyncio.Future[Resp], answer: Resp | Exception) -> None:
    if future.done():  # the caller left, or its deadline passed
        return
    if isinstance(answer, Exception):
        future.set_exception(answer)
    else:
        future.set_result(answer)


def _expire(future: asyncio.Future[Resp], timeout: float) -> None:
    if not future.done():
        future.set_exception(DeadlineExceeded(f"no answer within the deadline of {timeout:g} s"))
