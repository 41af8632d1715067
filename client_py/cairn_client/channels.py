"""A pool of gRPC channels whose calls go round-robin, so one client can use every `cairn serve --workers N` process.

`cairn serve --workers N` runs N processes on one port with SO_REUSEPORT: the kernel spreads *connections*
over them, not calls. A client with one channel (one HTTP/2 connection) therefore talks to one worker, however
many calls it has in flight. `channels=N` opens N channels, each with its own TCP connection (a local subchannel
pool: by default gRPC shares one connection between channels with equal arguments), and hands calls out in turn.
With N >= the server's worker count every worker gets a share (the kernel hashes connections to workers, so a
few more channels than workers evens the spread). One channel, the default, is what the client always did.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import grpc

StubT = TypeVar("StubT")

# gRPC shares subchannels (so TCP connections) between channels with equal arguments; this keeps them apart.
_OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)


def check_channels(channels: int) -> int:
    """The channel count, or ValueError naming the bad value."""
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be an integer >= 1 (got {channels!r}); use 1 for a single connection")
    return channels


def pool_options(options: Sequence[tuple[str, Any]], channels: int) -> list[tuple[str, Any]]:
    """Channel options for a pool of `channels`: unchanged for one, each on its own connection for more."""
    return list(options) if channels == 1 else [*options, _OWN_CONNECTION]


class RoundRobinStub(Generic[StubT]):
    """Looks like one generated stub; each attribute read (`stub.Save`) comes from the next channel's stub.

    A call reads its method once, so consecutive calls land on consecutive channels.
    """

    def __init__(self, stubs: Sequence[StubT]) -> None:
        self._stubs = list(stubs)
        self._next = itertools.cycle(self._stubs).__next__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._next(), name)


def open_sync(
    target: str, creds: grpc.ChannelCredentials | None, options: Sequence[tuple[str, Any]], channels: int
) -> list[grpc.Channel]:
    """`channels` blocking channels to `target`."""
    opts = pool_options(options, check_channels(channels))
    return [grpc.secure_channel(target, creds, opts) if creds else grpc.insecure_channel(target, opts)
            for _ in range(channels)]


def open_async(
    target: str, creds: grpc.ChannelCredentials | None, options: Sequence[tuple[str, Any]], channels: int
) -> list[grpc.aio.Channel]:
    """`channels` asyncio channels to `target`."""
    opts = pool_options(options, check_channels(channels))
    return [grpc.aio.secure_channel(target, creds, opts) if creds else grpc.aio.insecure_channel(target, opts)
            for _ in range(channels)]


def stub_for(chans: Sequence[Any], make: Callable[[Any], StubT]) -> StubT | RoundRobinStub[StubT]:
    """The plain stub for one channel (no indirection on the default path), a RoundRobinStub for more."""
    if len(chans) == 1:
        return make(chans[0])
    return RoundRobinStub([make(c) for c in chans])
