"""A TCP proxy on 127.0.0.1 that can partition and heal the link it carries (modelled on asyncpg's
_testbase fuzzing proxy).

    with TcpProxy(redis.port) as proxy:           # clients connect to proxy.port instead of redis.port
        proxy.partition()                         # nothing is forwarded either way; connections stay open
        proxy.heal()                              # held bytes are delivered, forwarding resumes
        proxy.reset()                             # every open connection is closed (both sides see EOF)

A partition behaves like a network cut that TCP rides out: bytes already read are held, not dropped, and a
new connection is accepted but not connected upstream until the heal (as if its SYN were lost and
retransmitted). The proxy runs its own asyncio loop in a daemon thread, so it serves callers that are
blocked, in other threads or in other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from cairn_tools.cluster import HOST, HarnessError, free_port

__all__ = ["TcpProxy"]

_CHUNK = 64 << 10


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host``:``target_port``; see the module docstring."""

    def __init__(self, target_port: int, *, target_host: str = HOST, port: int | None = None) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port if port is not None else free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._open = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections_total = 0

    # ---- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    async def _start(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._accept, HOST, self.port)

    def close(self) -> None:
        """Stop listening, close every connection and the loop."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._open.set()  # let held pumps run into the closed writers and end
        await self._reset()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0 (for a proxy in front of Redis)."""
        return f"redis://{HOST}:{self.port}/0"

    # ---- faults ---------------------------------------------------------------------------------------
    @property
    def partitioned(self) -> bool:
        return not self._open.is_set()

    def partition(self) -> None:
        """Stop forwarding in both directions; connections stay open and bytes are held."""
        self._loop.call_soon_threadsafe(self._open.clear)

    def heal(self) -> None:
        """Forward again, delivering what was held."""
        self._loop.call_soon_threadsafe(self._open.set)

    def reset(self) -> None:
        """Close every open connection."""
        self._call(self._reset())

    async def _reset(self) -> None:
        writers, self._writers = list(self._writers), set()
        for w in writers:
            w.close()
        for w in writers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(w.wait_closed(), 1)

    # ---- forwarding -----------------------------------------------------------------------------------
    def _call(self, coro, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)
        except Exception as e:  # noqa: BLE001 - one error type for the caller
            raise HarnessError(f"proxy {self.port} -> {self.target_port}: {e!r}") from e

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        self._writers.add(cwriter)
        try:
            await self._open.wait()
            ureader, uwriter = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self._writers.discard(cwriter)
            cwriter.close()
            return
        self._writers.add(uwriter)
        up = asyncio.ensure_future(self._pump(creader, uwriter))
        down = asyncio.ensure_future(self._pump(ureader, cwriter))
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for w in (cwriter, uwriter):
            self._writers.discard(w)
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    return
                await self._open.wait()
                if writer.is_closing():
                    return
                writer.write(data)
                await writer.drain()
