"""A Redis Cluster for the hot cache: the slot map, one pipelined connection (resp.py) per master, and MOVED and
ASK redirections followed.

The slot map comes from CLUSTER SLOTS, asked of a known master or else of a seed node. Each command carries one
key (the cache sends only GET and SET; a thread's keys share a hash tag, redis_cache.py) and goes to the master of
that key's slot; one batch is split by master and sent to all of them at once.

  * MOVED slot host:port: the slot has a new owner for good (a failover, a finished reshard). The command is sent
    there, the map learns that slot at once, and the whole map is read again in the background, since a
    failover or reshard moves more than one slot.
  * ASK slot host:port: the slot is being migrated and this key already left. The command is sent there once,
    after ASKING on the same connection; the map is not changed.
  * A node that cannot be reached fails the batch with CacheUnavailable (the caller falls through to the cold
    store) and makes the map be read again, so a replica promoted in its place is found.

Nothing here can make a read stale: an entry is served only under a stamp the cold store vouches for
(freshness.py), so a key read from a lagging replica promoted to master, or lost in a migration, is a miss.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.crc import key_slot

from .base import CacheUnavailable
from .redis_url import RedisTarget
from .resp import Command, Multiplexed, ReplyError

log = logging.getLogger(__name__)

SLOTS = 16384
MAX_REDIRECTS = 5  # a slot moved again while its command was redirected; past this the batch fails
REFRESH_MIN_INTERVAL_SECONDS = 0.1  # failures on every call read the map at most this often

Address = tuple[str, int]


def _key(command: Command) -> bytes:
    key = command[1]
    return key.encode() if isinstance(key, str) else key  # type: ignore[return-value]


def _redirect(reply: ReplyError) -> tuple[str, int, Address] | None:
    """("MOVED" or "ASK", slot, address) of a redirection reply, else None."""
    kind, _, rest = str(reply).partition(" ")
    if kind not in ("MOVED", "ASK"):
        return None
    slot, _, where = rest.partition(" ")
    host, _, port = where.rpartition(":")
    return kind, int(slot), (host, int(port))


class ClusterMultiplexed:
    """`execute` / `call` of single-key commands on a Redis Cluster, with the interface of resp.Multiplexed."""

    def __init__(self, target: RedisTarget, timeout_seconds: float = 0.5) -> None:
        self.target = target
        self.timeout_seconds = timeout_seconds
        self._slots: list[Address | None] = [None] * SLOTS
        self._nodes: dict[Address, Multiplexed] = {}
        self._refresh_task: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self._loaded = False  # a map has been read once
        self._first: asyncio.Future[None] | None = None
        self.redirects = 0  # MOVED and ASK replies followed, for tests and metrics
        self.refreshes = 0

    def _node(self, address: Address) -> Multiplexed:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = Multiplexed(self.target.node(*address), self.timeout_seconds)
        return node

    async def call(self, *args: str | bytes | int) -> Any:
        """One command; an error reply is raised as ReplyError."""
        reply = (await self.execute([args]))[0]
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """The commands, each sent to the master of its key's slot; replies in order, an error reply (other than
        a redirection) as a ReplyError in its place. CacheUnavailable when a master cannot be reached."""
        if not commands:
            return []
        if not self._loaded:  # concurrent first calls share one read of the map
            await self._first_map()
        replies: list[Any] = [None] * len(commands)
        slots = [key_slot(_key(command)) for command in commands]
        pending = list(range(len(commands)))
        sent_to: dict[int, Address] = {}  # where a redirection sent a command
        asking: set[int] = set()
        for _ in range(MAX_REDIRECTS + 1):
            by_node: dict[Address, list[int]] = {}
            for i in pending:
                address = sent_to.get(i) or self._slots[slots[i]]
                if address is None:
                    self._refresh_soon()
                    raise CacheUnavailable(f"no master of the Redis Cluster at {self.target.where()} serves slot "
                                           f"{slots[i]}")
                by_node.setdefault(address, []).append(i)
            sends = [self._send(address, [commands[i] for i in members], [i in asking for i in members])
                     for address, members in by_node.items()]
            try:  # one master (one key, or one thread's keys) needs no task of its own
                results = [await sends[0]] if len(sends) == 1 else await asyncio.gather(*sends)
            except CacheUnavailable:
                self._refresh_soon()
                raise
            pending = []
            for (address, members), node_replies in zip(by_node.items(), results, strict=True):
                for i, reply in zip(members, node_replies, strict=True):  # type: ignore[call-overload]
                    redirect = _redirect(reply) if isinstance(reply, ReplyError) else None
                    if redirect is None:
                        replies[i] = reply
                        continue
                    kind, slot, target = redirect
                    if not target[0]:  # an unknown endpoint ("MOVED 7 :6380"): the host of the node that said so
                        target = (address[0], target[1])
                    self.redirects += 1
                    pending.append(i)
                    sent_to[i] = target
                    if kind == "MOVED":
                        asking.discard(i)
                        self._slots[slot] = target
                        self._refresh_soon()
                    else:
                        asking.add(i)
            if not pending:
                return replies
        raise CacheUnavailable(f"Redis Cluster at {self.target.where()}: a key was redirected more than "
                               f"{MAX_REDIRECTS} times; its slot is still moving")

    async def _send(self, address: Address, commands: list[Command], asking: list[bool]) -> list[Any]:
        """The commands to one node, each redirected by ASK preceded by ASKING on the same connection."""
        if not any(asking):
            return await self._node(address).execute(commands)
        sent: list[Command] = []
        for command, ask in zip(commands, asking, strict=True):
            if ask:
                sent.append(("ASKING",))
            sent.append(command)
        replies = await self._node(address).execute(sent)
        out: list[Any] = []
        position = 0
        for ask in asking:
            position += 1 if ask else 0  # ASKING's own +OK
            out.append(replies[position])
            position += 1
        return out

    async def _first_map(self) -> None:
        if self._first is None or self._first.done():
            self._first = asyncio.ensure_future(self._refresh_now())
        await asyncio.shield(self._first)

    def _refresh_soon(self) -> None:
        """Read the slot map again in the background, unless that is under way or was done a moment ago."""
        if self._refresh_task is not None and not self._refresh_task.done():
            return
        if time.monotonic() - self._last_refresh < REFRESH_MIN_INTERVAL_SECONDS:
            return
        self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_logged())

    async def _refresh_logged(self) -> None:
        try:
            await self._refresh_now()
        except CacheUnavailable as exc:
            log.warning("Redis Cluster slot map not refreshed: %s", exc)

    async def _refresh_now(self) -> None:
        """Read CLUSTER SLOTS from the first node that answers: the masters known, then the seed nodes."""
        self._last_refresh = time.monotonic()
        self.refreshes += 1
        known = list(dict.fromkeys(a for a in self._slots if a is not None))
        candidates = list(dict.fromkeys([*known, *self.target.nodes]))
        problems: list[str] = []
        for address in candidates:
            try:
                reply = await self._node(address).call("CLUSTER", "SLOTS")
            except (CacheUnavailable, ReplyError) as exc:
                problems.append(f"{address[0]}:{address[1]}: {exc}")
                continue
            self._apply(reply, address)
            self._loaded = True
            return
        raise CacheUnavailable(f"no node of the Redis Cluster at {self.target.where()} answered CLUSTER SLOTS ("
                               f"{'; '.join(problems[:3])})")

    def _apply(self, reply: list[Any], asked: Address) -> None:
        slots: list[Address | None] = [None] * SLOTS
        for entry in reply:
            start, end, master = entry[0], entry[1], entry[2]
            host = master[0].decode() if isinstance(master[0], bytes) else master[0]
            if host in ("", "?"):  # the node did not say: the one asked, reached by its address
                host = asked[0]
            address = (host, int(master[1]))
            slots[start:end + 1] = [address] * (end - start + 1)
        self._slots = slots
        masters = set(slots)
        for address in [a for a in self._nodes if a not in masters and a not in self.target.nodes]:
            # no longer a master (a demoted one answers MOVED): its connection is closed, not awaited here
            asyncio.get_running_loop().call_soon(self._nodes.pop(address).close_now)

    def masters(self) -> list[Address]:
        """The masters serving slots, by the map as last read."""
        return sorted({a for a in self._slots if a is not None})

    async def ping(self) -> None:
        """Read the slot map now; CacheUnavailable when no node answers or some slot has no master."""
        await self._refresh_now()
        missing = sum(1 for a in self._slots if a is None)
        if missing:
            raise CacheUnavailable(f"the Redis Cluster at {self.target.where()} leaves {missing} of {SLOTS} slots "
                                   "without a master (CLUSTER SLOTS)")

    async def aclose(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        nodes, self._nodes = list(self._nodes.values()), {}
        for node in nodes:
            await node.aclose()
