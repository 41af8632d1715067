"""Client CPU per cache call: Cairn's RESP client (storage/resp.py, resp_cluster.py) against redis-py's asyncio
clients (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster), on one Redis and on a 3-master cluster.

The hot cache's calls are a GET (a near-cache miss, one key) and a batch of GETs or SETs (BatchLoad, a commit's
fill). What the server pays is this process's CPU per call, so that is what is measured (time.process_time over
the run), with `--concurrency` callers each issuing calls one after another, as concurrent RPCs do.

    python bench/redis_client.py [--calls 20000] [--concurrency 16] [--batch 8] [--rounds 3]

Prints µs of client CPU per call and calls/s per client and shape (median of the rounds, interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import redis.asyncio as aioredis  # noqa: E402
from redis.asyncio.cluster import RedisCluster as AioRedisCluster  # noqa: E402

from cairn_server.storage.redis_url import parse_redis_url  # noqa: E402
from cairn_server.storage.resp import Multiplexed  # noqa: E402
from cairn_server.storage.resp_cluster import ClusterMultiplexed  # noqa: E402
from cairn_tools.cluster import RedisCluster, RedisServer  # noqa: E402

Call = Callable[[list[bytes]], Awaitable[object]]


def _keys(n: int) -> list[bytes]:
    return [b"cairn2:{%032x}:c:\x00k" % i for i in range(n)]


async def _drive(call: Call, keys: list[bytes], calls: int, concurrency: int, batch: int) -> tuple[float, float]:
    """(µs of this process's CPU per call, calls per second) for `calls` calls over `concurrency` callers."""
    per_caller = calls // concurrency

    async def caller(offset: int) -> None:
        for i in range(per_caller):
            start = (offset * 7919 + i * batch) % (len(keys) - batch)
            await call(keys[start:start + batch])

    await asyncio.gather(*(caller(c) for c in range(concurrency)))  # warm: connections, slot maps
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = per_caller * concurrency
    return cpu / done * 1e6, done / wall


async def _clients(single_url: str, cluster_url: str, cluster_port: int) -> dict[str, tuple[Call, Callable]]:
    resp_single = Multiplexed(parse_redis_url(single_url), timeout_seconds=5)
    resp_cluster = ClusterMultiplexed(parse_redis_url(cluster_url), timeout_seconds=5)
    py_single = aioredis.Redis.from_url(single_url)
    py_cluster = AioRedisCluster(host="127.0.0.1", port=cluster_port)
    await py_cluster.initialize()

    def resp_call(client: Multiplexed | ClusterMultiplexed) -> Call:
        async def call(keys: list[bytes]) -> object:
            return await client.execute([("GET", k) for k in keys])
        return call

    def py_call(client: aioredis.Redis | AioRedisCluster) -> Call:
        async def call(keys: list[bytes]) -> object:
            if len(keys) == 1:
                return await client.get(keys[0])
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.get(k)
            return await pipe.execute()
        return call

    return {
        "cairn resp, one Redis": (resp_call(resp_single), resp_single.aclose),
        "redis-py Redis, one Redis": (py_call(py_single), py_single.aclose),
        "cairn resp_cluster, cluster": (resp_call(resp_cluster), resp_cluster.aclose),
        "redis-py RedisCluster, cluster": (py_call(py_cluster), py_cluster.aclose),
    }


async def _main(args: argparse.Namespace, single_url: str, cluster_url: str, cluster_port: int) -> None:
    keys = _keys(4096)
    clients = await _clients(single_url, cluster_url, cluster_port)
    fill = ClusterMultiplexed(parse_redis_url(cluster_url), timeout_seconds=5)
    one = Multiplexed(parse_redis_url(single_url), timeout_seconds=5)
    value = b"x" * 600  # every key holds an entry of a small checkpoint's size
    for client in (fill, one):
        for i in range(0, len(keys), 256):
            await client.execute([("SET", k, value) for k in keys[i:i + 256]])
        await client.aclose()
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for batch in (1, args.batch):
            for name, (call, _) in clients.items():
                results.setdefault((name, batch), []).append(
                    await _drive(call, keys, args.calls, args.concurrency, batch))
    print(f"{args.calls} calls x {args.rounds} rounds, {args.concurrency} concurrent callers; median of rounds")
    print(f"{'client':<32} {'keys/call':>9} {'CPU µs/call':>12} {'calls/s':>10}")
    for (name, batch), runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[1] for r in runs)
        print(f"{name:<32} {batch:>9} {cpu:>12.1f} {rate:>10.0f}")
    for _, close in clients.values():
        await close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with RedisServer() as single, RedisCluster() as cluster:
        seed = cluster.masters()[0].port
        asyncio.run(_main(args, single.url, cluster.url, seed))


if __name__ == "__main__":
    main()
