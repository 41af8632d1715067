#!/usr/bin/env python3
"""Redis memory under a save-heavy run: does the hot cache stay bounded? (issue 32, `make redis-memory`)

Starts Redis (no maxmemory: the bound must come from what Cairn fills, not from eviction), Postgres and one
`cairn serve` (this tree, or `--tree` another one, e.g. a `git worktree` of an older commit), drives
`cairn bench --mix save=1` for `--seconds`, and samples Redis every `--interval` seconds: used memory, its
dataset part, and the number of keys. Prints the samples, then memory per thread (the dataset over the run's
threads, each thread holding its head and the heads it replaced within `--cache-recent-ttl-seconds`) and the
growth from the end of the warm-up to the end of the run.

    python bench/redis_memory.py --seconds 600 --server-arg=--cache-fill-on-save     # make redis-memory

Saves put no state in Redis unless the server runs with --cache-fill-on-save (reads fill it by default), so
`make redis-memory` measures with it: the most a save-heavy run can put there.
    git worktree add --detach /tmp/base bce9fbf && python bench/redis_memory.py --tree /tmp/base --seconds 60

Exits 1 when the data kept growing after the warm-up (the first fifth of the run, at least 30 s, capped at half of
it): when the largest sample of the second half of the rest is more than `--max-growth` (25%) above the largest
of its first half. Within a half the data follows the save rate (the replaced heads of the last recent TTL); a
cache that keeps every save grows with time instead, by 100% and more from one half to the next.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer

MB = 1 << 20


@dataclass
class Sample:
    seconds: float
    used: int  # INFO memory used_memory
    dataset: int  # used_memory_dataset: the keys and values, without Redis's own overhead
    keys: int


@dataclass
class Result:
    samples: list[Sample]
    threads: int
    saves: int
    saves_per_second: float
    warmup_seconds: float

    @property
    def after_warmup(self) -> list[Sample]:
        return [s for s in self.samples if s.seconds >= self.warmup_seconds] or self.samples[-1:]

    @property
    def growth(self) -> float:
        """The largest dataset sample of the second half after the warm-up over the largest of the first, - 1."""
        kept = self.after_warmup
        if len(kept) < 2:
            return 0.0
        half = len(kept) // 2
        return max(s.dataset for s in kept[half:]) / max(max(s.dataset for s in kept[:half]), 1) - 1

    def text(self) -> str:
        last = self.samples[-1]
        lines = ["   t (s)   used MB   dataset MB      keys"]
        lines += [f"{s.seconds:8.0f} {s.used / MB:9.1f} {s.dataset / MB:12.1f} {s.keys:9,}" for s in self.samples]
        lines += [
            "",
            f"{self.saves:,} saves in {self.samples[-1].seconds:.0f} s ({self.saves_per_second:,.0f}/s) to "
            f"{self.threads:,} threads",
            f"at the end: {last.keys:,} keys, {last.dataset / MB:.1f} MB of data "
            f"({last.dataset / max(last.keys, 1) / 1024:.1f} KB per key: a thread's head is one key; "
            f"{last.dataset / self.threads / 1024:.1f} KB per thread with the replaced heads kept briefly)",
            f"growth of the data after the {self.warmup_seconds:.0f} s warm-up, largest sample of its second half "
            f"over its first: {100 * self.growth:+.1f}%",
        ]
        return "\n".join(lines)


def sample(redis_port: int, t0: float) -> Sample:
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_port)
    try:
        info = client.info("memory")
        return Sample(time.monotonic() - t0, int(info["used_memory"]), int(info["used_memory_dataset"]),
                      int(client.dbsize()))
    finally:
        client.close()


def measure(seconds: float, threads: int = 1000, concurrency: int = 32, interval: float = 10.0,
            tree: Path = ROOT, server_args: tuple[str, ...] = (), log=print) -> Result:  # type: ignore[no-untyped-def]
    """One run; see the module docstring."""
    warmup = min(max(30.0, seconds / 5), seconds / 2)
    with RedisServer() as redis, PostgresServer(synchronous_commit=True) as pg:
        dsn = pg.create_database("redis_memory")
        env = {"PYTHONPATH": f"{tree}/server:{tree}/client_py:{tree}"}
        with CairnProcess("--postgres-dsn", dsn, "--redis-url", redis.url, "--log-level", "WARNING", *server_args,
                         env=env) as server:
            samples: list[Sample] = []
            stop = threading.Event()
            t0 = time.monotonic()

            def sampler() -> None:
                while not stop.wait(interval):
                    samples.append(sample(redis.port, t0))
                    log(f"  {samples[-1].seconds:5.0f} s: {samples[-1].used / MB:8.1f} MB used, "
                        f"{samples[-1].keys:,} keys")

            thread = threading.Thread(target=sampler, daemon=True)
            thread.start()
            proc = subprocess.run(
                [sys.executable, "-m", "cairn_server.cli", "bench", "--target", server.target, "--quiet", "--json",
                 "--mix", "save=1", "-c", str(concurrency), "--threads", str(threads), "--duration", str(seconds),
                 "--warmup", "0", "--keep"],
                capture_output=True, text=True, check=True,
            )
            stop.set()
            thread.join()
            samples.append(sample(redis.port, t0))
    out = json.loads(proc.stdout)
    save = out["operations"]["save"]
    return Result(samples, threads, int(save["count"]), float(save["rps"]), warmup)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--threads", type=int, default=1000, help="thread ids the saves go to (1000)")
    p.add_argument("-c", "--concurrency", type=int, default=32)
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples (10)")
    p.add_argument("--tree", type=Path, default=ROOT, help="source tree of the server (this one)")
    p.add_argument("--server-arg", action="append", default=[], help="extra `cairn serve` flag")
    p.add_argument("--max-growth", type=float, default=0.25, help="allowed growth after the warm-up (0.25)")
    args = p.parse_args()
    result = measure(args.seconds, args.threads, args.concurrency, args.interval, args.tree, tuple(args.server_arg),
                     log=lambda line: print(line, flush=True))
    print(result.text())
    return 0 if result.growth <= args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
