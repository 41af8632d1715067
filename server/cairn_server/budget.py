"""Byte budgets: no response and no stream may make the server hold more than it was told it may.

- A List page or a BatchLoad response is built within `response_bytes` (the smaller of --max-response-bytes
  and gRPC's message limit): a page ends early with a next_page_token, a BatchLoad item that would pass it
  fails alone with RESOURCE_EXHAUSTED. Loads run in windows sized by the bytes they bring back, so a hostile
  BatchLoad never has more than about twice the budget of states in memory at once.
- A SaveStream reads ahead by bytes (StreamWindow): at most --stream-window-bytes per stream and
  --max-inflight-stream-bytes over all streams are read and not yet answered. A stream over either limit is
  not read from; gRPC then stops granting its HTTP/2 window, so a client that sends and never reads is
  pushed back by its own transport instead of filling the server's memory.
- A stream's commits are cut at --max-commit-batch-bytes, so no one transaction runs into the cold store's
  timeout.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from .config import Config
from cairn.errors import LimitExceeded

_ENVELOPE_BYTES = 64 << 10  # room kept under gRPC's message limit for field headers and item errors' slack
MAX_LOAD_WINDOW = 256  # most loads of one BatchLoad in flight at once


@dataclass(frozen=True, slots=True)
class Budgets:
    """The byte limits of one server, from its Config."""

    response_bytes: int
    stream_window_bytes: int
    inflight_stream_bytes: int
    commit_batch_bytes: int
    max_state_bytes: int

    @classmethod
    def from_config(cls, config: Config) -> Budgets:
        return cls(
            response_bytes=max(1, min(config.max_response_bytes, config.max_message_bytes - _ENVELOPE_BYTES)),
            stream_window_bytes=config.stream_window_bytes,
            inflight_stream_bytes=config.max_inflight_stream_bytes,
            commit_batch_bytes=config.max_commit_batch_bytes,
            max_state_bytes=config.max_state_bytes,
        )

    def first_load_window(self) -> int:
        """Loads of a BatchLoad's first window, before any size is known: as many 1 MiB states (or the largest
        allowed, when smaller) as twice the response budget holds."""
        return max(1, min(MAX_LOAD_WINDOW, 2 * self.response_bytes // min(self.max_state_bytes, 1 << 20)))

    def next_load_window(self, largest_seen: int) -> int:
        """Loads of the next window: as many of the largest item seen so far as twice the budget holds."""
        return max(1, min(MAX_LOAD_WINDOW, 2 * self.response_bytes // max(largest_seen, 1)))

    def over_response(self, what: str, size: int) -> LimitExceeded:
        return LimitExceeded(
            "max_response_bytes",
            self.response_bytes,
            f"{what} ({size} bytes) would take the response past {self.response_bytes} bytes "
            "(--max-response-bytes, or the message limit that --max-state-bytes sets); ask for it in another call",
        )


class ByteLimit:
    """A global count of bytes held, with waiters served first come, first served (no starvation of big items).

    `acquire(n)` waits until n more bytes fit; one item larger than the whole limit is let through alone
    (when nothing else is held), so a state the server accepts can always make progress."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        return self.held + n <= self.limit or self.held == 0

    async def acquire(self, n: int) -> None:
        if not self._waiters and self._fits(n):
            self.held += n
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted just as we were cancelled: hand it back
                self.release(n)
            else:
                self._waiters.remove((n, fut))
                self._wake()
            raise

    def release(self, n: int) -> None:
        self.held -= n
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            n, fut = self._waiters.popleft()
            if fut.cancelled():
                continue
            self.held += n
            fut.set_result(None)


class StreamWindow:
    """One stream's read-ahead: bytes read and not yet answered, within the stream's window and the global limit."""

    def __init__(self, budgets: Budgets, shared: ByteLimit) -> None:
        self.own = ByteLimit(budgets.stream_window_bytes)
        self.shared = shared
        self.held = 0

    async def admit(self, n: int) -> None:
        """Wait until `n` bytes just read may be held: the caller reads nothing more until this returns."""
        await self.own.acquire(n)
        try:
            await self.shared.acquire(n)
        except BaseException:
            self.own.release(n)
            raise
        self.held += n

    def release(self, n: int) -> None:
        """`n` bytes were answered (or dropped)."""
        self.held -= n
        self.own.release(n)
        self.shared.release(n)

    def close(self) -> None:
        """Hand back whatever the stream still holds (it ended)."""
        if self.held:
            self.release(self.held)
