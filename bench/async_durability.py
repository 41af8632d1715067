#!/usr/bin/env python3
"""Would DURABILITY_ASYNC earn its place? The numbers behind the decision in docs/durability.md (issue 32).

DURABILITY_ASYNC would acknowledge a save once it sits in a durable outbox (Redis with `appendfsync always`),
and drain the outbox to Postgres in batches later. Its acknowledgement can be no faster than that outbox write,
so this measures, on this machine and in one run, with fsync on everywhere:

  sync    Cairn's Save as shipped (DURABILITY_SYNC: group commit into Postgres with fsync, full_page_writes and
          synchronous_commit on), driven by `cairn bench --mix save=1`;
  outbox  the outbox write alone: one SET of the stored entry a 36.5 KB agent state becomes (~15 KB), per
          save, from the same number of concurrent writers through the server's own Redis client
          (storage/resp.py), to a Redis with `appendonly yes, appendfsync always`. Everything else a server
          does per save (gRPC, decode, checksum, compress) and the drain to Postgres come on top of it.

For each concurrency: saves/s, p50, p99, and CPU per save of the processes involved (server or driver,
Postgres, Redis).

    python bench/async_durability.py [--seconds 8] [--concurrency 4,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from run import TICK, tree_ticks  # bench/run.py, a sibling script
from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer

DURABLE_PG = {"fsync": "on", "full_page_writes": "on"}


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def sync_saves(pg: PostgresServer, cache: RedisServer, concurrency: int, seconds: float) -> dict[str, float]:
    dsn = pg.create_database(f"durability_sync_{concurrency}_{int(time.time())}")
    with CairnProcess("--postgres-dsn", dsn, "--redis-url", cache.url, "--log-level", "WARNING") as server:
        before = (tree_ticks(server.pid), tree_ticks(pg.pid), tree_ticks(cache.pid))
        proc = subprocess.run(
            [sys.executable, "-m", "cairn_server.cli", "bench", "--target", server.target, "--quiet", "--json",
             "--mix", "save=1", "-c", str(concurrency), "--duration", str(seconds), "--warmup", "0"],
            capture_output=True, text=True, check=True,
        )
        after = (tree_ticks(server.pid), tree_ticks(pg.pid), tree_ticks(cache.pid))
    op = json.loads(proc.stdout)["operations"]["save"]
    n = max(int(op["count"]), 1)
    p50, p99 = (next(d["latency"] for d in op["latencyDistribution"] if d["percentage"] == q) / 1e6 for q in (50, 99))
    cpu = [1e6 * (a - b) / TICK / n for a, b in zip(after, before, strict=True)]
    return {"rate": float(op["rps"]), "p50": p50, "p99": p99, "server_us": cpu[0], "postgres_us": cpu[1],
            "redis_us": cpu[2]}


async def _outbox_writes(url: str, entry: bytes, concurrency: int, seconds: float) -> list[float]:
    from cairn_server.storage.resp import Multiplexed

    redis = Multiplexed(url, timeout_seconds=5.0)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def writer(w: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            t = time.perf_counter()
            await redis.execute([("SET", f"outbox:{w}:{i}", entry)])
            latencies.append(time.perf_counter() - t)
            i += 1

    await asyncio.gather(*(writer(w) for w in range(concurrency)))
    await redis.aclose()
    return latencies


def outbox_saves(outbox: RedisServer, entry: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    before = (tree_ticks(os.getpid()), tree_ticks(outbox.pid))
    t0 = time.monotonic()
    latencies = asyncio.run(_outbox_writes(outbox.url, entry, concurrency, seconds))
    elapsed = time.monotonic() - t0
    after = (tree_ticks(os.getpid()), tree_ticks(outbox.pid))
    n = max(len(latencies), 1)
    cpu = [1e6 * (a - b) / TICK / n for a, b in zip(after, before, strict=True)]
    return {"rate": n / elapsed, "p50": 1e3 * _percentile(latencies, 50), "p99": 1e3 * _percentile(latencies, 99),
            "driver_us": cpu[0], "redis_us": cpu[1]}


def stored_entry() -> bytes:
    """The Redis entry of one bench agent state as the server stores it (zstd at the default level)."""
    from cairn_tools.bench.states import AgentStateGenerator
    from cairn_server.codec import Codec

    raw = AgentStateGenerator(42).state_bytes()
    _, stored, _ = Codec().encode(raw)
    return stored + b"\x00" * 400  # the entry's header: ids, metadata, stamp


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", default="4,32")
    args = p.parse_args()
    entry = stored_entry()
    rows = []
    with PostgresServer(synchronous_commit=True, settings=DURABLE_PG) as pg, RedisServer() as cache, \
            RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", "always")) as outbox:
        for c in (int(x) for x in args.concurrency.split(",")):
            sync = sync_saves(pg, cache, c, args.seconds)
            rows.append(f"sync    c={c:<3} {sync['rate']:8,.0f}/s  p50 {sync['p50']:6.2f} ms  p99 {sync['p99']:6.2f} ms"
                        f"  CPU/save: server {sync['server_us']:4.0f} + postgres {sync['postgres_us']:4.0f} + "
                        f"redis {sync['redis_us']:3.0f} us")
            box = outbox_saves(outbox, entry, c, args.seconds)
            rows.append(f"outbox  c={c:<3} {box['rate']:8,.0f}/s  p50 {box['p50']:6.2f} ms  p99 {box['p99']:6.2f} ms"
                        f"  CPU/save: driver {box['driver_us']:4.0f} + redis (AOF always) {box['redis_us']:4.0f} us,"
                        f" before any server work or the drain")
            print("\n".join(rows[-2:]), flush=True)
    print(f"\nentry {len(entry):,} bytes; postgres fsync, full_page_writes, synchronous_commit on; "
          f"outbox redis appendonly yes, appendfsync always")
    return 0


if __name__ == "__main__":
    sys.exit(main())
