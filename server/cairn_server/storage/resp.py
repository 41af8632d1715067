"""One Redis connection shared by every caller of the hot cache, pipelined.

Commands are written the moment they are issued and replies are matched to callers in order (Redis answers
each connection in order), parsed by hiredis. redis-py's client spends several times this process's CPU per
call (pool checkout, retry wrapper, observability hooks), and a near-cache hit costs one such call. The URL is
parsed by redis_url.py, which says which options are honoured; resp_cluster.py routes a Redis Cluster's keys
over one of these per master.

A connection that fails, or leaves a reply outstanding past the timeout (a dead peer looks like a slow one),
is dropped: everything waiting on it fails with CacheUnavailable and the next call connects again. Waiting for a
connection is bounded by the same timeout, so every call ends within it (twice it when it had to connect), and
callers need no timer of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import hiredis
from .base import CacheUnavailable
from .redis_url import RedisTarget, parse_redis_url

Command = Sequence[str | bytes | int]


class ReplyError(Exception):
    """Redis answered a command with an error (e.g. NOSCRIPT); returned in place of that command's reply."""


def _pack(commands: Iterable[Command]) -> bytes:
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, int):
                arg = b"%d" % arg
            out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.transport: asyncio.Transport | None = None
        self.lost: str | None = None
        self._reader = hiredis.Reader(replyError=ReplyError)
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                future, _ = self._waiting.popleft()
                if not future.done():
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # not Redis speaking, or a reply nobody asked for
            self.lost = f"Redis sent what cannot be parsed: {exc!r}"
            assert self.transport is not None
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or f"connection to Redis lost: {exc or 'closed by the server'}"
        if self._timer is not None:
            self._timer.cancel()
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(CacheUnavailable(self.lost))

    def send(self, commands: Sequence[Command]) -> list[asyncio.Future[Any]]:
        """Write the commands now; one future per reply. Synchronous, so replies keep the order of calls."""
        if self.lost is not None or self.transport is None:
            raise CacheUnavailable(self.lost or "not connected to Redis")
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        futures = [loop.create_future() for _ in commands]
        self._waiting.extend((future, now) for future in futures)
        self.transport.write(_pack(commands))
        if self._timer is None:
            self._timer = loop.call_later(self.timeout_seconds, self._check_stall)
        return futures

    def _check_stall(self) -> None:
        """Drop the connection if its oldest reply is overdue; re-arm while replies are outstanding."""
        self._timer = None
        if not self._waiting:
            return
        waited = time.monotonic() - self._waiting[0][1]
        if waited > self.timeout_seconds:
            self.lost = f"Redis has not answered for {waited:.1f} s"
            assert self.transport is not None
            self.transport.abort()  # connection_lost fails the waiting futures
            return
        self._timer = asyncio.get_running_loop().call_later(self.timeout_seconds - waited, self._check_stall)


class Multiplexed:
    """`execute` / `call` over one pipelined connection to one Redis node, (re)connected on demand.

    `target` is a RedisTarget or a single-node Redis URL (parsed by redis_url.parse_redis_url)."""

    def __init__(self, target: RedisTarget | str, timeout_seconds: float = 0.5) -> None:
        self.target = parse_redis_url(target) if isinstance(target, str) else target
        if self.target.cluster:
            raise ValueError("resp.Multiplexed speaks to one node; a Redis Cluster is resp_cluster.ClusterMultiplexed")
        self.timeout_seconds = timeout_seconds
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def call(self, *args: str | bytes | int) -> Any:
        """One command; an error reply is raised as ReplyError."""
        protocol = await self._connected()
        reply = await protocol.send([args])[0]
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Several commands in one write; their replies in order, an error reply as a ReplyError in its place."""
        protocol = await self._connected()
        # Every reply's future is awaited, also after one failed: a dropped connection fails them all, and an
        # unawaited failed future is logged as "exception was never retrieved", once per command.
        replies = await asyncio.gather(*protocol.send(commands), return_exceptions=True)
        failed = next((r for r in replies if isinstance(r, BaseException) and not isinstance(r, ReplyError)), None)
        if failed is not None:
            raise failed
        return replies

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        try:  # each caller waits at most the timeout, however many queue behind a connect that hangs
            return await asyncio.wait_for(self._connect_once(), self.timeout_seconds)
        except asyncio.TimeoutError:
            where, seconds = self._where(), self.timeout_seconds
            raise CacheUnavailable(f"no connection to Redis at {where} within {seconds} s") from None

    async def _connect_once(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or self._protocol.lost is not None:
                self._protocol = await self._connect()
            return self._protocol

    async def _connect(self) -> _Protocol:
        target = self.target
        loop = asyncio.get_running_loop()

        def factory() -> _Protocol:
            return _Protocol(self.timeout_seconds)

        try:
            if target.path:
                _, protocol = await loop.create_unix_connection(factory, target.path)
            else:
                host, port = target.nodes[0]
                tls = target.tls.context() if target.tls else None
                _, protocol = await loop.create_connection(
                    factory, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except OSError as exc:
            raise CacheUnavailable(f"cannot connect to Redis at {self._where()}: {exc}") from exc
        handshake: list[Command] = []
        if target.password:
            handshake.append(["AUTH", *filter(None, [target.username, target.password])])
        if target.db:
            handshake.append(["SELECT", target.db])
        for reply in [await future for future in protocol.send(handshake)]:
            if isinstance(reply, ReplyError):
                assert protocol.transport is not None
                protocol.transport.close()
                raise CacheUnavailable(f"Redis at {self._where()} refused the connection: {reply}")
        return protocol

    def _where(self) -> str:
        return self.target.where()

    def close_now(self) -> None:
        """Close the connection (replies still awaited fail with CacheUnavailable); the next call reconnects."""
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None

    async def aclose(self) -> None:
        self.close_now()
