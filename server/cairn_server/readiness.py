"""Readiness: gRPC health follows the cold store.

A server whose cold store does not answer cannot acknowledge a save or answer a
cache miss, so it says NOT_SERVING (load balancers and `cairn health` then send
work elsewhere) until the store answers again. The process stays up: it is
not broken, only waiting, and liveness is a separate matter (the process answers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from cairn.errors import CairnError
from .storage.base import ColdStore

log = logging.getLogger("cairn.health")


class Readiness:
    """Probes the cold store every `interval_seconds`; calls `on_change(ready)` when the answer changes."""

    def __init__(
        self, cold: ColdStore, on_change: Callable[[bool], Awaitable[None]], interval_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.cold = cold
        self.on_change = on_change
        self.interval = interval_seconds
        self.timeout = timeout_seconds
        self.ready = True  # what the server said at start
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def probe(self) -> bool:
        """Whether the cold store answers a trivial query within the timeout."""
        try:
            await asyncio.wait_for(self.cold.ping(), self.timeout)
        except (CairnError, asyncio.TimeoutError, OSError) as exc:
            if self.ready:
                log.warning("cold store %s does not answer (%s): health is NOT_SERVING until it does",
                            self.cold.name, exc or type(exc).__name__)
            return False
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            ready = await self.probe()
            if ready != self.ready:
                self.ready = ready
                if ready:
                    log.info("cold store %s answers again: health is SERVING", self.cold.name)
                await self.on_change(ready)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
