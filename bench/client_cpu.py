#!/usr/bin/env python3
"""Worker-side CPU per save: Cairn's shipped Python clients against LangGraph's in-process saver, in one run.

Starts postgres, redis-server and `cairn serve` (cairn_tools.cluster), then saves the bench's ~37 KB agent states
(cairn_tools.bench.states) at concurrency --concurrency through, in this process:
  client       AsyncCheckpointClient.save(thread, state_dict, metadata=...), the state a JSON value
  client_zstd  the same with compress_states=True
  saver        CairnSaver.aput (LangGraph's checkpoint through the saver's serde)
  langgraph    LangGraph's AsyncPostgresSaver at its best: one saver per worker, one connection each
and reports the CPU this process spent per save (time.process_time: every thread of the process, gRPC's
included), the median of --rounds interleaved rounds, with the ratio to LangGraph's. `--profile NAME` runs
one phase under cProfile instead and prints where its time goes.

    python bench/client_cpu.py [--saves 1500] [--rounds 5] [--concurrency 32] [--phases client,saver,langgraph]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile  # imports the standard library's profile: no bench script may be called profile.py
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent

from cairn_tools.bench.states import agent_states
from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer

PHASES = ("client", "client_zstd", "saver", "langgraph")
THREADS_PER_WORKER = 4


class Phase:
    """One way of saving; `setup` opens what it needs, `save(worker, i)` stores one checkpoint."""

    def __init__(self, values: list[dict[str, Any]], concurrency: int) -> None:
        self.values, self.concurrency = values, concurrency

    async def setup(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def save(self, w: int, i: int) -> None:
        raise NotImplementedError


class ClientPhase(Phase):
    def __init__(self, values: list[dict[str, Any]], concurrency: int, target: str, compress: bool) -> None:
        super().__init__(values, concurrency)
        self.target, self.compress = target, compress

    async def setup(self) -> None:
        from cairn_client import AsyncCheckpointClient

        self.client = AsyncCheckpointClient(self.target, compress_states=self.compress)
        await self.client.save("warm", {"x": 1})

    async def close(self) -> None:
        await self.client.aclose()

    async def save(self, w: int, i: int) -> None:
        si = (w * 7 + i) % len(self.values)
        await self.client.save(f"c-{w}-{i % THREADS_PER_WORKER}", self.values[si],
                               metadata={"source": "loop", "step": si, "bench": True})


def _checkpoint(values: dict[str, Any], version: str) -> dict[str, Any]:
    from langgraph.checkpoint.base import empty_checkpoint

    cp = empty_checkpoint()
    cp["channel_values"] = dict(values)
    cp["channel_versions"] = {k: version for k in values}
    return cp  # type: ignore[return-value]


class SaverPhase(Phase):
    """A LangGraph saver's aput, the checkpoint built as bench/run.py builds it; `heads` chains parents."""

    savers: list[Any]

    async def save(self, w: int, i: int) -> None:
        saver = self.savers[w % len(self.savers)]
        thread = f"{self.prefix}-{w}-{i % THREADS_PER_WORKER}"
        si = (w * 7 + i) % len(self.values)
        version = saver.get_next_version(self.versions.get(thread), None)
        cp = _checkpoint(self.values[si], version)
        config: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        if thread in self.heads:
            config["configurable"]["checkpoint_id"] = self.heads[thread]
        nxt = await saver.aput(config, cp, {"source": "loop", "step": si, "bench": True},
                               dict(cp["channel_versions"]))
        self.heads[thread] = nxt["configurable"]["checkpoint_id"]
        self.versions[thread] = version


class CairnSaverPhase(SaverPhase):
    prefix = "s"

    def __init__(self, values: list[dict[str, Any]], concurrency: int, target: str) -> None:
        super().__init__(values, concurrency)
        self.target = target
        self.heads: dict[str, str] = {}
        self.versions: dict[str, str] = {}

    async def setup(self) -> None:
        from cairn_client.langgraph import CairnSaver

        self.savers = [CairnSaver(self.target)]
        await self.save(0, 0)

    async def close(self) -> None:
        await self.savers[0].aclose()


class LangGraphPhase(SaverPhase):
    prefix = "lg"

    def __init__(self, values: list[dict[str, Any]], concurrency: int, dsn: str) -> None:
        super().__init__(values, concurrency)
        self.dsn = dsn
        self.heads = {}
        self.versions = {}

    async def setup(self) -> None:
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row

        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        self.conns = [
            await AsyncConnection.connect(self.dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row)
            for _ in range(self.concurrency)
        ]
        self.savers = [AsyncPostgresSaver(c) for c in self.conns]  # type: ignore[arg-type]
        await self.savers[0].setup()
        await self.save(0, 0)

    async def close(self) -> None:
        for c in self.conns:
            await c.close()


async def measure(phase: Phase, saves: int) -> float:
    """CPU µs of this process per save, over `saves` saves by `phase.concurrency` workers."""
    per_worker = max(1, saves // phase.concurrency)

    async def worker(w: int) -> None:
        for i in range(per_worker):
            await phase.save(w, i)

    await asyncio.gather(*(worker(w) for w in range(phase.concurrency)))  # warm-up: connections, caches
    t0 = time.process_time()
    await asyncio.gather(*(worker(w) for w in range(phase.concurrency)))
    return (time.process_time() - t0) * 1e6 / (per_worker * phase.concurrency)


async def run(args: argparse.Namespace, phases: dict[str, Phase]) -> None:
    for p in phases.values():
        await p.setup()
    try:
        if args.profile:
            phase = phases[args.profile]
            await measure(phase, args.saves)
            prof = cProfile.Profile()
            prof.enable()
            us = await measure(phase, args.saves)
            prof.disable()
            print(f"{args.profile}: {us:.0f} µs CPU per save (under cProfile)")
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
            return
        results: dict[str, list[float]] = {name: [] for name in phases}
        for r in range(args.rounds):
            for name, phase in phases.items():
                us = await measure(phase, args.saves)
                results[name].append(us)
                print(f"round {r + 1} {name}: {us:.0f} µs CPU per save", file=sys.stderr, flush=True)
        med = {name: statistics.median(v) for name, v in results.items()}
        print(f"\nCPU per save in the saving process, median of {args.rounds} rounds, "
              f"{args.saves} saves each, concurrency {args.concurrency}:")
        for name, us in med.items():
            ratio = f"  {us / med['langgraph']:.2f}x langgraph" if "langgraph" in med and name != "langgraph" else ""
            print(f"  {name:12s} {us:7.0f} µs{ratio}   (rounds: {', '.join(f'{x:.0f}' for x in results[name])})")
        if args.json:
            Path(args.json).write_text(json.dumps({"medianMicros": med, "rounds": results}, indent=2))
    finally:
        for p in phases.values():
            await p.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--saves", type=int, default=1500, help="saves per phase per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    p.add_argument("--profile", choices=PHASES, help="run this phase once under cProfile")
    p.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    names = [args.profile] if args.profile else args.phases.split(",")
    values = [json.loads(s) for s in agent_states(64, 42).states]
    print(f"{len(values)} agent states, mean {sum(len(s) for s in agent_states(64, 42).states) / 64 / 1000:.1f} KB",
          file=sys.stderr)
    with RedisServer() as redis, PostgresServer() as pg:
        cairn_dsn = pg.create_database("cairn_cpu")
        lg_dsn = pg.create_database("langgraph_cpu") if "langgraph" in names else ""
        with CairnProcess("--postgres-dsn", cairn_dsn, "--redis-url", redis.url, "--log-level", "WARNING") as server:
            make: dict[str, Callable[[], Phase]] = {
                "client": lambda: ClientPhase(values, args.concurrency, server.target, False),
                "client_zstd": lambda: ClientPhase(values, args.concurrency, server.target, True),
                "saver": lambda: CairnSaverPhase(values, args.concurrency, server.target),
                "langgraph": lambda: LangGraphPhase(values, args.concurrency, lg_dsn),
            }
            asyncio.run(run(args, {n: make[n]() for n in names}))


if __name__ == "__main__":
    main()
