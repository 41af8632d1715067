#!/usr/bin/env python3
"""One benchmark client process: Cairn's shipped AsyncCheckpointClient or LangGraph's AsyncPostgresSaver.

bench/references.py and bench/capacity.py start one per row (bench-deploy starts 8 at once). Each phase
(`save@32`, `load@32`, `save@4`) runs `concurrency` workers for a warm-up, then a timed window in which it
records latencies and reads, at both ends, the CPU of this process (getrusage: every thread, gRPC's and
libpq's included) and of each watched process tree (`--watch server=PID`, read from /proc), so every figure is
per operation of the same window. Prints one JSON object per phase on stdout.

Save stores ~36.5 KB agent states given as Python objects (each client serialises them its own way); each
worker owns its threads (one writer per thread, as a graph runtime does). Load reads a thread's head and
decodes its state: `Checkpoint.json()` for Cairn, `aget_tuple` (which deserialises) for LangGraph.

    python bench/drivers.py cairn --target 127.0.0.1:50051 --phases save@32,load@32,save@4 --watch server=123
    python bench/drivers.py langgraph-savers --dsn postgresql://... --phases save@32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent

from cairn_tools.bench.proc_cpu import machine_busy_seconds, tree_seconds

from cairn_tools.bench.hist import Histogram
from cairn_tools.bench.states import agent_states

SEED, STATE_POOL = 42, 64
Op = Callable[[int, random.Random], Awaitable[None]]


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Driver:
    """The workloads, over whichever store `open()` connected to."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.values = [json.loads(s) for s in agent_states(STATE_POOL, SEED).states]
        self.threads = [f"{args.prefix}-{i:04d}" for i in range(args.threads)]
        self.saved: list[int] = []  # threads with a checkpoint, the ones Load reads
        self._saved_set: set[int] = set()

    def mark_saved(self, ti: int) -> None:
        if ti not in self._saved_set:
            self._saved_set.add(ti)
            self.saved.append(ti)

    def thread_to_read(self, rnd: random.Random) -> str:
        if not self.saved:
            raise LookupError("Load before any Save: put a save phase first")
        return self.threads[self.saved[rnd.randrange(len(self.saved))]]

    def thread_of(self, w: int, conc: int, rnd: random.Random) -> int:
        """A thread only worker w writes (w, w+conc, ...)."""
        n = len(self.threads)
        return w + conc * rnd.randrange(max(1, (n - w + conc - 1) // conc)) if n >= conc else rnd.randrange(n)

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def op(self, name: str, conc: int) -> Op: raise NotImplementedError


class CairnDriver(Driver):
    async def open(self) -> None:
        from cairn_client import AsyncCheckpointClient

        extra = {} if self.args.coalesce is None else {"coalesce": self.args.coalesce}
        self.client = AsyncCheckpointClient(self.args.target, channels=self.args.channels,
                                            compress_states=self.args.compress_states, **extra)

    async def close(self) -> None:
        await self.client.aclose()

    def op(self, name: str, conc: int) -> Op:
        c = self.client

        async def save(w: int, rnd: random.Random) -> None:
            ti = self.thread_of(w, conc, rnd)
            await c.save(self.threads[ti], self.values[rnd.randrange(len(self.values))],
                         metadata={"source": "loop", "step": w, "bench": True})
            self.mark_saved(ti)

        async def load(w: int, rnd: random.Random) -> None:
            if not (await c.load(self.thread_to_read(rnd))).json():
                raise LookupError("empty state")

        return {"save": save, "load": load}[name]


class LangGraphDriver(Driver):
    """`langgraph-pool`: one AsyncPostgresSaver on a pool of --pool-size (LangGraph's lock serialises its calls);
    `langgraph-savers`: one saver per worker, each on its own connection (LangGraph's from_conn_string setup)."""

    async def open(self) -> None:
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        kw = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        self.heads: dict[int, str] = {}
        self.versions: dict[int, Any] = {}
        if self.args.kind == "langgraph-pool":
            self.pool = AsyncConnectionPool(self.args.dsn, min_size=self.args.pool_size,
                                            max_size=self.args.pool_size, open=False, kwargs=kw)
            await self.pool.open(wait=True)
            self.savers = [AsyncPostgresSaver(self.pool)]  # type: ignore[arg-type]
        else:
            self.pool = None
            n = max(int(p.split("@")[1]) for p in self.args.phases.split(",") if p) if self.args.phases else 1
            self.conns = list(await asyncio.gather(*(AsyncConnection.connect(self.args.dsn, **kw) for _ in range(n))))
            self.savers = [AsyncPostgresSaver(c) for c in self.conns]  # type: ignore[arg-type]
        if self.args.setup:
            await self.savers[0].setup()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        else:
            for c in self.conns:
                await c.close()

    def op(self, name: str, conc: int) -> Op:
        from langgraph.checkpoint.base import empty_checkpoint

        def saver(w: int) -> Any:
            return self.savers[w % len(self.savers)]

        async def save(w: int, rnd: random.Random) -> None:
            ti = self.thread_of(w, conc, rnd)
            values = self.values[rnd.randrange(len(self.values))]
            s = saver(w)
            version = s.get_next_version(self.versions.get(ti), None)
            cp = empty_checkpoint()
            cp["channel_values"] = dict(values)
            cp["channel_versions"] = {k: version for k in values}
            config = {"configurable": {"thread_id": self.threads[ti], "checkpoint_ns": ""}}
            if self.heads.get(ti):
                config["configurable"]["checkpoint_id"] = self.heads[ti]
            nxt = await s.aput(config, cp, {"source": "loop", "step": w, "bench": True},
                               dict(cp["channel_versions"]))
            self.heads[ti] = nxt["configurable"]["checkpoint_id"]
            self.versions[ti] = version
            self.mark_saved(ti)

        async def load(w: int, rnd: random.Random) -> None:
            t = self.thread_to_read(rnd)
            tup = await saver(w).aget_tuple({"configurable": {"thread_id": t, "checkpoint_ns": ""}})
            if tup is None or not tup.checkpoint["channel_values"]:
                raise LookupError("aget_tuple found no checkpoint")

        return {"save": save, "load": load}[name]


async def run_phase(d: Driver, name: str, conc: int, args: argparse.Namespace,
                    watch: dict[str, int]) -> dict[str, Any]:
    fn = d.op(name, conc)
    hist, errors = Histogram(), {}
    state = {"measuring": False, "stop": False}

    async def worker(w: int) -> None:
        rnd = random.Random(SEED * 1_000_003 + w + 7919 * args.proc_index)
        while not state["stop"]:
            t0 = time.perf_counter_ns()
            try:
                await fn(w, rnd)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                key = f"{type(exc).__name__}: {str(exc)[:120]}"
                errors[key] = errors.get(key, 0) + 1
                await asyncio.sleep(0.01)
                continue
            if state["measuring"]:
                hist.record(time.perf_counter_ns() - t0)

    tasks = [asyncio.ensure_future(worker(w)) for w in range(conc)]
    if args.start_at:
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
    else:
        await asyncio.sleep(args.warmup)
    c0, w0, m0, t0 = _cpu_self(), tree_seconds(watch), machine_busy_seconds(), time.monotonic()
    state["measuring"] = True
    await asyncio.sleep(args.duration)
    state["measuring"] = False
    c1, w1, m1, t1 = _cpu_self(), tree_seconds(watch), machine_busy_seconds(), time.monotonic()
    state["stop"] = True
    await asyncio.gather(*tasks)
    secs = t1 - t0
    n = max(hist.count, 1)
    cpu = {"client": c1 - c0, **{k: w1[k] - w0[k] for k in watch}}
    other = max(0.0, (m1 - m0) - sum(cpu.values()))
    return {
        "phase": f"{name}@{conc}", "count": hist.count, "seconds": secs, "rps": hist.count / secs,
        "p50Ms": hist.percentile(50) / 1e6, "p99Ms": hist.percentile(99) / 1e6, "hist": hist.encode(),
        "cpuSeconds": cpu, "usPerOp": {k: 1e6 * v / n for k, v in cpu.items()},
        "otherCorePercent": 100 * other / secs, "errors": errors,
    }


async def amain(args: argparse.Namespace) -> None:
    watch = {k: int(v) for k, v in (w.split("=", 1) for w in args.watch)}
    d: Driver = CairnDriver(args) if args.kind == "cairn" else LangGraphDriver(args)
    await d.open()
    if args.wait_go:  # connected: say so, then start the timed window when the runner says (stdin: unix time)
        print(json.dumps({"ready": True}), flush=True)
        args.start_at = float(await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline))
    try:
        for spec in filter(None, args.phases.split(",")):
            name, conc = spec.split("@")
            print(json.dumps(await run_phase(d, name, int(conc), args, watch)), flush=True)
        if args.wait_go:  # keep the connections open until the runner has read the servers' memory
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    finally:
        await d.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["cairn", "langgraph-pool", "langgraph-savers"])
    p.add_argument("--target", help="Cairn server host:port")
    p.add_argument("--dsn", help="LangGraph's Postgres DSN")
    p.add_argument("--phases", default="save@32,load@32,save@4", help="comma-separated OP@CONCURRENCY")
    p.add_argument("--duration", type=float, default=4.0, help="timed seconds per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per phase")
    p.add_argument("--start-at", type=float, default=0.0,
                   help="unix time at which the (single) timed window starts, to line up several processes")
    p.add_argument("--wait-go", action="store_true",
                   help="after connecting, print a ready line and read --start-at from stdin; after the "
                        "phases, wait for another line before disconnecting")
    p.add_argument("--threads", type=int, default=100, help="threads written and read")
    p.add_argument("--prefix", default="bench", help="thread id prefix (one per row and round)")
    p.add_argument("--channels", type=int, default=1, help="Cairn client channels")
    p.add_argument("--compress-states", action="store_true", help="Cairn client compresses states")
    p.add_argument("--coalesce", type=int, default=None,
                   help="Cairn client's `coalesce` (default: the client's; 0 = one call per save or load)")
    p.add_argument("--pool-size", type=int, default=10, help="langgraph-pool's pool size")
    p.add_argument("--setup", action="store_true", help="run LangGraph's saver.setup() first")
    p.add_argument("--proc-index", type=int, default=0, help="this process's index (seeds)")
    p.add_argument("--watch", action="append", default=[], metavar="NAME=PID", help="a process tree to measure")
    asyncio.run(amain(p.parse_args()))


if __name__ == "__main__":
    main()
