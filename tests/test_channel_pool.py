"""`channels=N` in the Python clients: N TCP connections, calls round-robin, so `--workers` processes all serve.

On the original main a client had one channel: all its calls reached one of `cairn serve --workers 2`'s processes
(SO_REUSEPORT balances connections, not calls). The figures (one channel vs a pool) come from `make bench-channels`.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from cairn_client import AsyncCheckpointClient, CheckpointClient
from tests.harness import CairnProcess, RedisServer


def _listen_inodes(port: int, state: str = "01") -> dict[str, int]:
    """{socket inode: 1} of TCP sockets in `state` (01 ESTABLISHED, 0A LISTEN) whose local port is `port`."""
    out: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == state:
                out[f[9]] = 1
    return out


def _pids_under(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def connections_by_process(server: CairnProcess) -> dict[int, int]:
    """How many client connections each process of the server holds."""
    inodes = _listen_inodes(server.port)
    counts: dict[int, int] = {}
    for pid in _pids_under(server.pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        n = 0
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                n += 1
        if n:
            counts[pid] = n
    return counts


@pytest.fixture(scope="module")
def two_workers():
    with RedisServer() as redis, CairnProcess.embedded("--workers", "2", "--redis-url", redis.url) as srv:
        # ready = one worker answers; the other may still be importing: wait for both listening sockets
        deadline = time.monotonic() + 180  # a worker's start (imports, migrations) is slow on a loaded 2-core box
        while len(_listen_inodes(srv.port, "0A")) < 2:
            assert time.monotonic() < deadline, "the second worker never listened"
            time.sleep(0.1)
        yield srv


def test_one_channel_is_one_connection_to_one_worker(two_workers: CairnProcess) -> None:
    with CheckpointClient(two_workers.target) as c:
        for i in range(20):
            c.save(f"pool-one-{i}", {"i": i})
        counts = connections_by_process(two_workers)
        assert sum(counts.values()) == 1 and len(counts) == 1, counts


def test_sync_pool_opens_n_connections_and_reaches_both_workers(two_workers: CairnProcess) -> None:
    # 16 connections hashed over 2 processes all land on one with probability 2**-15
    with CheckpointClient(two_workers.target, channels=16) as c:
        for i in range(48):
            c.save(f"pool-sync-{i}", {"i": i})
            assert c.load(f"pool-sync-{i}").json() == {"i": i}
        counts = connections_by_process(two_workers)
        assert sum(counts.values()) == 16, counts
        assert len(counts) == 2, counts


def test_async_pool_round_robins_calls(two_workers: CairnProcess) -> None:
    async def go() -> dict[int, int]:
        async with AsyncCheckpointClient(two_workers.target, channels=16) as c:
            await asyncio.gather(*(c.save(f"pool-async-{i}", {"i": i}) for i in range(64)))
            loaded = await asyncio.gather(*(c.load(f"pool-async-{i}") for i in range(64)))
            assert [cp.json() for cp in loaded] == [{"i": i} for i in range(64)]
            return connections_by_process(two_workers)

    counts = asyncio.run(go())
    assert sum(counts.values()) == 16, counts
    assert len(counts) == 2, counts


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_channel_count_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="channels must be an integer >= 1"):
        CheckpointClient("127.0.0.1:1", channels=bad)  # type: ignore[arg-type]
