#!/usr/bin/env python3
"""`make bench`: Cairn against its reference points, in one run, printing a table of ratios.

Starts its own redis-server, postgres and `cairn serve` (tests/harness) and the bare gRPC echo server
(bench/echo_server.py), then measures, all on this machine:
  (a) the echo server, driven by `cairn bench` with the same messages (the ceiling of a Python gRPC server);
  (b) LangGraph's AsyncPostgresSaver in this process against the same Postgres (another database), storing
      the same ~37 KB agent states: aput at concurrency 32, aget_tuple, alist(limit=10), aput_writes;
  (c) Cairn over gRPC on Postgres + Redis, driven by `cairn bench`: durable Save at concurrency 32, Save p99 at
      concurrency 4, hot Load p50 at concurrency 1 and throughput at 32, List of 10 without state, SaveStream
      checkpoints/s, BatchLoad items/s, PutWrites of one task's writes (no target: shown against the echo
      server and aput_writes), and bytes stored per checkpoint (all tables and indexes) vs the raw
      JSON and vs LangGraph's tables; Save and SaveStream again with the client compressing each state
      (`cairn bench --compress-states`), with the server's CPU per save in both modes.
Prints the ratios against the targets of issue 9 and writes them to bench/results/latest.json.

Every phase also records the CPU used by the client, the server, postgres and redis, and by everything
else on the machine (other work on a shared box makes numbers noisy; the table says so when it happened).
Every phase runs --repeat times, interleaved, and the best run counts (the usual defence against noise);
the table shows how much CPU other processes took during each counted phase.

    python bench/run.py [--duration 4] [--repeat 2] [--server-arg=--some-flag ...]
(profiling: bench/pyspy_profile.py)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent

from cairn_tools.bench.hist import Histogram
from cairn_tools.bench.states import agent_states
from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer

RESULTS = ROOT / "bench" / "results"
TICK = os.sysconf("SC_CLK_TCK")
STATE_POOL, SEED, THREADS = 64, 42, 100


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# CPU accounting from /proc
# ------------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime+cutime+cstime ticks) of a process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def tree_ticks(root: int | None) -> int:
    """CPU ticks of a process and all its living descendants (exited children count through cutime)."""
    if not root:
        return 0
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st:
                table[int(name)] = st
    total, frontier, seen = 0, [root], set()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        pid = frontier.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        frontier.extend(children.get(pid, ()))
    return total


def machine_busy_ticks() -> int:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts[:8]) - idle


class CpuWatch:
    """CPU seconds used during a phase by each watched process tree, and by the rest of the machine."""

    def __init__(self, trees: dict[str, Callable[[], int | None]]) -> None:
        self.trees = trees

    def __enter__(self) -> CpuWatch:
        self.t0 = time.monotonic()
        self.r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.s0 = resource.getrusage(resource.RUSAGE_SELF)
        self.before = {k: tree_ticks(f()) for k, f in self.trees.items()}
        self.m0 = machine_busy_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.t0
        self.used = {k: (tree_ticks(f()) - self.before[k]) / TICK for k, f in self.trees.items()}
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        # the bench clients: finished child processes of this runner (cairn bench) + this process itself
        self.used["bench clients"] = (r1.ru_utime - self.r0.ru_utime + r1.ru_stime - self.r0.ru_stime) + (
            s1.ru_utime - self.s0.ru_utime + s1.ru_stime - self.s0.ru_stime
        )
        machine = (machine_busy_ticks() - self.m0) / TICK
        self.used["other"] = max(0.0, machine - sum(self.used.values()))

    def percent(self) -> dict[str, float]:
        return {k: round(100.0 * v / max(self.wall, 1e-9), 1) for k, v in self.used.items()}


# ------------------------------------------------------------------------------------------------
# cairn bench runs
# ------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.phases: list[dict[str, Any]] = []
        self.trees: dict[str, Callable[[], int | None]] = {}

    def cairn_bench(self, label: str, target: str, *extra: str, duration: float | None = None) -> dict[str, Any]:
        """One `cairn bench --json` subprocess; returns its JSON with the phase's CPU figures added."""
        d = duration if duration is not None else self.args.duration
        argv = [sys.executable, "-m", "cairn_server.cli", "bench", "--target", target, "--json", "--quiet",
                "--duration", str(d), "--warmup", str(self.args.warmup), "--threads", str(THREADS),
                "--seed", str(SEED), "--state-pool", str(STATE_POOL),
                "--connections", str(self.args.connections), *extra]
        with CpuWatch(self.trees) as cpu:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=d * 4 + 180)
        if proc.returncode not in (0, 1) or not proc.stdout.strip():
            raise RuntimeError(f"{label}: cairn bench failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout)
        out["phaseCpuPercent"] = cpu.percent()
        self._note(label, out, cpu)
        return out

    def _note(self, label: str, out: dict[str, Any], cpu: CpuWatch) -> None:
        ops = out.get("operations", {})
        bits = []
        for name, op in ops.items():
            lat = {d["percentage"]: d["latency"] for d in op["latencyDistribution"]}
            extra = f", {op['itemsPerSecond']:,.0f} items/s" if "itemsPerSecond" in op else ""
            bits.append(f"{name} {op['rps']:,.0f}/s{extra} p50 {lat[50] / 1e6:.2f}ms p99 {lat[99] / 1e6:.2f}ms"
                        f" err {op['errors']}")
        cpu_txt = ", ".join(f"{k} {v:.0f}%" for k, v in cpu.percent().items())
        log(f"{label}: {'; '.join(bits)}  [cpu: {cpu_txt}]")
        self.phases.append({"label": label, "result": out, "cpuPercent": cpu.percent()})


def op_of(result: dict[str, Any], op: str) -> dict[str, Any]:
    return result["operations"][op]


def pct(op: dict[str, Any], p: float) -> float:
    for d in op["latencyDistribution"]:
        if d["percentage"] == p:
            return d["latency"] / 1e6
    raise KeyError(p)


# ------------------------------------------------------------------------------------------------
# LangGraph AsyncPostgresSaver, in-process
# ------------------------------------------------------------------------------------------------


class LangGraphBench:
    """The same states through AsyncPostgresSaver (a psycopg pool of `pool_size`, as its docs recommend)."""

    def __init__(self, dsn: str, states: list[bytes], bench: Bench, pool_size: int) -> None:
        self.dsn, self.bench, self.pool_size = dsn, bench, pool_size
        self.raw = states
        self.values = [json.loads(s) for s in states]
        self.threads = [f"lg-{i:05d}" for i in range(THREADS)]
        self.heads: dict[int, str | None] = {}
        self.versions: dict[int, Any] = {}
        self.saved_count = 0
        self.saved_raw = 0

    async def run(self, plan: list[tuple[str, int]]) -> dict[str, list[dict[str, Any]]]:
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        out: dict[str, list[dict[str, Any]]] = {}
        async with AsyncConnectionPool(
            self.dsn, min_size=self.pool_size, max_size=self.pool_size, open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        ) as pool:
            self.saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await self.saver.setup()
            # every thread gets 10 checkpoints first, so aget_tuple and alist(limit=10) have data
            await self._prefill(10)
            for i in range(self.bench.args.repeat):
                for name, conc in plan:
                    fn = {"aput": self._put, "aget_tuple": self._get, "alist": self._list,
                          "aput_writes": self._put_writes}[name]
                    tag = f" #{i + 1}" if self.bench.args.repeat > 1 else ""
                    out.setdefault(f"{name}@{conc}", []).append(
                        await self._timed(name, conc, self.bench.args.warmup, self.bench.args.duration, fn, tag)
                    )
        return out

    async def _prefill(self, per_thread: int, conc: int = 32) -> None:
        async def worker(w: int) -> None:
            rnd = random.Random(w)
            for ti in range(w, len(self.threads), conc):
                for _ in range(per_thread):
                    await self._put(w, conc, rnd, ti)

        await asyncio.gather(*(worker(w) for w in range(conc)))

    async def _put(self, w: int, conc: int, rnd: random.Random, ti: int | None = None) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        n = len(self.threads)
        if ti is None:  # each worker writes its own threads (one writer per thread, as a graph runtime does)
            ti = (w + conc * rnd.randrange(max(1, (n - w + conc - 1) // conc))) if n >= conc else rnd.randrange(n)
        si = rnd.randrange(len(self.values))
        version = self.saver.get_next_version(self.versions.get(ti), None)
        values = self.values[si]
        cp = empty_checkpoint()
        cp["channel_values"] = dict(values)
        cp["channel_versions"] = {k: version for k in values}
        config = {"configurable": {"thread_id": self.threads[ti], "checkpoint_ns": ""}}
        if self.heads.get(ti):
            config["configurable"]["checkpoint_id"] = self.heads[ti]
        metadata = {"source": "loop", "step": si, "bench": True}
        nxt = await self.saver.aput(config, cp, metadata, dict(cp["channel_versions"]))  # type: ignore[arg-type]
        self.heads[ti] = nxt["configurable"]["checkpoint_id"]
        self.versions[ti] = version
        self.saved_count += 1
        self.saved_raw += len(self.raw[si])

    async def _put_writes(self, w: int, conc: int, rnd: random.Random) -> None:
        """One task's writes against a thread's latest checkpoint, as cairn bench's put_writes sends them."""
        ti = rnd.randrange(len(self.threads))
        config = {"configurable": {"thread_id": self.threads[ti], "checkpoint_ns": "",
                                   "checkpoint_id": self.heads[ti]}}
        message = self.values[rnd.randrange(len(self.values))]["messages"][-1]
        await self.saver.aput_writes(config, [("messages", message), ("branch:to:agent", None)],  # type: ignore[arg-type]
                                     str(uuid.uuid4()), "~__pregel_pull, agent")

    async def _get(self, w: int, conc: int, rnd: random.Random) -> None:
        t = self.threads[rnd.randrange(len(self.threads))]
        tup = await self.saver.aget_tuple({"configurable": {"thread_id": t, "checkpoint_ns": ""}})
        if tup is None:
            raise LookupError("aget_tuple found no checkpoint")

    async def _list(self, w: int, conc: int, rnd: random.Random) -> None:
        t = self.threads[rnd.randrange(len(self.threads))]
        n = 0
        async for _ in self.saver.alist({"configurable": {"thread_id": t}}, limit=10):
            n += 1
        if n != 10:
            raise LookupError(f"alist returned {n} items")

    async def _timed(self, name: str, conc: int, warmup: float, duration: float, fn: Callable,
                     tag: str = "") -> dict[str, Any]:
        hist, errors, state = Histogram(), {}, {"measuring": warmup == 0, "stop": False}

        async def worker(w: int) -> None:
            rnd = random.Random(SEED * 1_000_003 + w)
            while not state["stop"]:
                t0 = time.perf_counter_ns()
                try:
                    await fn(w, conc, rnd)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    key = f"{type(exc).__name__}: {str(exc)[:120]}"
                    errors[key] = errors.get(key, 0) + 1
                ns = time.perf_counter_ns() - t0
                if state["measuring"]:
                    hist.record(ns)

        with CpuWatch(self.bench.trees) as cpu:
            tasks = [asyncio.ensure_future(worker(w)) for w in range(conc)]
            if warmup:
                await asyncio.sleep(warmup)
                state["measuring"] = True
            t0 = time.monotonic()
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            await asyncio.sleep(duration)
            state["stop"] = True
            await asyncio.gather(*tasks)
            secs = time.monotonic() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        res = {
            "count": hist.count, "rps": hist.count / secs, "seconds": secs, "concurrency": conc,
            "p50Ms": hist.percentile(50) / 1e6, "p90Ms": hist.percentile(90) / 1e6,
            "p99Ms": hist.percentile(99) / 1e6, "maxMs": hist.max / 1e6, "errors": errors,
            "clientCpuPercent": round(100 * client_cpu / secs, 1), "phaseCpuPercent": cpu.percent(),
        }
        cpu_txt = ", ".join(f"{k} {v:.0f}%" for k, v in cpu.percent().items())
        log(f"langgraph {name} c={conc}{tag}: {res['rps']:,.0f}/s p50 {res['p50Ms']:.2f}ms p99 {res['p99Ms']:.2f}ms "
            f"errors {sum(errors.values())}  [cpu: {cpu_txt}; the saver runs in this process]")
        self.bench.phases.append({"label": f"langgraph {name} c={conc}{tag}", "result": res,
                                  "cpuPercent": cpu.percent()})
        return res


# ------------------------------------------------------------------------------------------------
# storage
# ------------------------------------------------------------------------------------------------

SIZE_SQL = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind IN ('r', 'p', 'm') "
    "AND c.relname LIKE '{pattern}' AND c.relname <> '{writes}'"
)


def storage(pg: PostgresServer, database: str, pattern: str, count_table: str, writes_table: str) -> dict[str, Any]:
    """Bytes per checkpoint: every table of the store with its indexes and TOAST, except the pending writes
    (the put_writes phases add them at each store's own rate; they are listed under "tables")."""
    pg.sql("VACUUM", database=database)
    total = int(pg.sql(SIZE_SQL.format(pattern=pattern, writes=writes_table), database=database).strip() or 0)
    count = int(pg.sql(f"SELECT count(*) FROM {count_table}", database=database).strip())
    tables = pg.sql(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE '{pattern}' ORDER BY 2 DESC",
        database=database,
    )
    return {
        "totalBytes": total, "checkpoints": count, "bytesPerCheckpoint": total / count if count else None,
        "tables": {row.split("|")[0]: int(row.split("|")[1]) for row in tables.splitlines() if "|" in row},
    }


def dictionary_phase(args: argparse.Namespace, bench: Bench, pg: PostgresServer, redis: RedisServer,
                     r: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """(d) zstd dictionary: train on other states (another seed), then Save the usual ones with it.

    A fresh database; `cairn dict train` on 600 states of seed 7 saved through Cairn; the checkpoints are then
    truncated (the dictionary stays), Cairn restarts and the measured Save phases store the bench's states
    (seed 42, none of them trained on). Bytes per checkpoint are those rows' alone."""
    dsn = pg.create_database("cairn_dict")
    redis_db1 = f"redis://127.0.0.1:{redis.port}/1"  # not the other server's cache
    server = CairnProcess("--postgres-dsn", dsn, "--redis-url", redis_db1, "--log-level", "WARNING", *args.server_arg)
    with server:
        subprocess.run([sys.executable, "-m", "cairn_server.cli", "bench", "--target", server.target, "--quiet",
                        "--mix", "save=1", "-c", "8", "--requests", "600", "--warmup", "0", "--seed", "7",
                        "--state-pool", "600", "--threads", "60"], check=True, capture_output=True, timeout=300)
        trained = subprocess.run([sys.executable, "-m", "cairn_server.cli", "dict", "train", "--postgres-dsn", dsn,
                                  "--samples", "600", "--json"], capture_output=True, text=True, timeout=300)
        if not trained.stdout.strip():
            raise RuntimeError(f"cairn dict train failed: {trained.stderr[-2000:]}")
        result = json.loads(trained.stdout)
        log(f"dictionary: trained on {result['samples']} states of seed 7, held-out ratio "
            f"{result['ratio_without']:.3f} -> {result['ratio_with']:.3f}, stored={result['stored']}")
        pg.sql("TRUNCATE cairn_checkpoints, cairn_writes, cairn_threads", database="cairn_dict")
        server.stop()
        import redis as redis_client

        redis_client.Redis.from_url(redis_db1).flushdb()
        server.start()
        bench.trees["cairn server"] = lambda: server.pid
        for i in range(args.repeat):
            tag = f" #{i + 1}" if args.repeat > 1 else ""
            r.setdefault("cairn_save_dict", []).append(
                bench.cairn_bench(f"cairn save c=32, dictionary{tag}", server.target, "--mix", "save=1", "-c", "32")
            )
    out = storage(pg, "cairn_dict", "cairn\\_%", "cairn_checkpoints", "cairn_writes")
    out["training"] = result
    return out


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------


def best(results: list[dict[str, Any]], op: str) -> dict[str, Any]:
    return max(results, key=lambda r: op_of(r, op)["rps"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=4.0, help="seconds measured per phase (4)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per phase (1)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each throughput phase; the best counts (2)")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="extra `cairn serve` argument (repeatable), e.g. --server-arg=--postgres-pool-size=20")
    p.add_argument("--langgraph-pool", type=int, default=10, help="psycopg pool size for LangGraph (10)")
    p.add_argument("--stream-concurrency", type=int, default=4, help="SaveStream streams (4)")
    p.add_argument("--stream-window", type=int, default=64, help="saves in flight per stream (64)")
    p.add_argument("--batch-size", type=int, default=50, help="loads per BatchLoad (50)")
    p.add_argument("--procs", type=int, default=1, help="cairn bench client processes for the c=32 phases (1)")
    p.add_argument("--connections", type=int, default=1,
                   help="gRPC connections per client process, every phase (1); with `cairn serve --workers N` "
                        "use at least N (SO_REUSEPORT spreads connections, not calls, over the workers)")
    p.add_argument("--synchronous-commit", choices=["on", "off"], default="on",
                   help="postgres synchronous_commit (on: a commit waits for its durable WAL flush)")
    p.add_argument("--no-fsync", action="store_true",
                   help="postgres fsync=off, full_page_writes=off (the test harness's fast settings; not durable)")
    p.add_argument("--skip-langgraph", action="store_true", help="leave out (b)")
    p.add_argument("--output", default=str(RESULTS / "latest.json"), help="JSON results file")
    args = p.parse_args(argv)

    started = time.monotonic()
    states = agent_states(STATE_POOL, SEED).states
    raw_mean = sum(map(len, states)) / len(states)
    bench = Bench(args)
    log(f"states: {len(states)} agent states, mean {raw_mean / 1000:.1f} KB; starting redis, postgres, cairn, echo")
    procs_args = ["--procs", str(args.procs)] if args.procs > 1 else []

    with RedisServer() as redis, PostgresServer(synchronous_commit=args.synchronous_commit == "on",
                                                durable=not args.no_fsync) as pg:
        cairn_dsn = pg.create_database("cairn_bench")
        lg_dsn = pg.create_database("langgraph_bench")
        server = CairnProcess("--postgres-dsn", cairn_dsn, "--redis-url", redis.url, "--log-level", "WARNING",
                             *args.server_arg)
        echo = CairnProcess(command=[sys.executable, str(ROOT / "bench" / "echo_server.py")], health_check=False)
        with server, echo:
            bench.trees = {"cairn server": lambda: server.pid, "echo server": lambda: echo.pid,
                           "postgres": lambda: pg.pid, "redis": lambda: redis.pid}
            E, C = echo.target, server.target
            r: dict[str, list[dict[str, Any]]] = {}

            def run(key: str, label: str, target: str, *extra: str, **kw: Any) -> None:
                r.setdefault(key, []).append(bench.cairn_bench(label, target, *extra, **kw))

            # Every phase --repeat times, echo and cairn interleaved; the best run of each counts.
            for i in range(args.repeat):
                tag = f" #{i + 1}" if args.repeat > 1 else ""
                run("echo_save", f"echo save c=32{tag}", E, "--mix", "save=1", "-c", "32", *procs_args)
                run("cairn_save", f"cairn save c=32{tag}", C, "--mix", "save=1", "-c", "32", *procs_args)
                run("cairn_save_zstd", f"cairn save c=32, client compresses{tag}", C, "--mix", "save=1", "-c",
                    "32", "--compress-states", *procs_args)
                run("echo_load", f"echo load c=32{tag}", E, "--mix", "load=1", "-c", "32", "--prefill", "0",
                    *procs_args)
                run("cairn_load", f"cairn load c=32{tag}", C, "--mix", "load=1", "-c", "32", *procs_args)
                run("echo_list", f"echo list c=32{tag}", E, "--mix", "list=1", "-c", "32", "--prefill", "0",
                    *procs_args)
                run("cairn_list", f"cairn list c=32{tag}", C, "--mix", "list=1", "-c", "32", *procs_args)
                run("cairn_save_c4", f"cairn save c=4{tag}", C, "--mix", "save=1", "-c", "4")
                run("echo_save_c4", f"echo save c=4{tag}", E, "--mix", "save=1", "-c", "4")
                run("cairn_load_c1", f"cairn load c=1{tag}", C, "--mix", "load=1", "-c", "1")
                run("echo_load_c1", f"echo load c=1{tag}", E, "--mix", "load=1", "-c", "1", "--prefill", "0")
                stream = ["--stream", "-c", str(args.stream_concurrency), "--stream-window", str(args.stream_window)]
                run("echo_stream", f"echo SaveStream{tag}", E, *stream)
                run("cairn_stream", f"cairn SaveStream{tag}", C, *stream)
                run("cairn_stream_zstd", f"cairn SaveStream, client compresses{tag}", C, *stream,
                    "--compress-states")
                batch = ["--mix", "batch_load=1", "-c", "8", "--batch-size", str(args.batch_size)]
                run("cairn_batch", f"cairn BatchLoad x{args.batch_size} c=8{tag}", C, *batch)
                # what a graph stores per task between saves: its writes (a ~1.3 KB message and a routing write)
                run("echo_put_writes", f"echo put_writes c=32{tag}", E, "--mix", "put_writes=1", "-c", "32",
                    *procs_args)
                run("cairn_put_writes", f"cairn put_writes c=32{tag}", C, "--mix", "put_writes=1", "-c", "32",
                    *procs_args)
            # is the client the bottleneck? the same echo Load phase with two client processes
            run("echo_load_2procs", "echo load c=32, 2 client processes", E, "--mix", "load=1", "-c", "32",
                "--prefill", "0", "--procs", "2")

            lg: dict[str, list[dict[str, Any]]] = {}
            lg_bench = None
            if not args.skip_langgraph:
                lg_bench = LangGraphBench(lg_dsn, states, bench, args.langgraph_pool)
                plan = [("aput", 32), ("aget_tuple", 32), ("aget_tuple", 1), ("alist", 32), ("aput_writes", 32)]
                lg = asyncio.run(lg_bench.run(plan))

            cairn_store = storage(pg, "cairn_bench", "cairn\\_%", "cairn_checkpoints", "cairn_writes")
            try:
                raw_sum = pg.sql("SELECT sum(raw_size)::float8 / count(*) FROM cairn_checkpoints",
                                 database="cairn_bench")
                cairn_store["rawJsonPerCheckpoint"] = float(raw_sum.strip())
            except Exception:  # noqa: BLE001 - another schema: fall back to the pool's mean
                cairn_store["rawJsonPerCheckpoint"] = raw_mean
            lg_store = None
            if lg_bench is not None:
                lg_store = storage(pg, "langgraph_bench", "checkpoint%", "checkpoints", "checkpoint_writes")
                lg_store["rawJsonPerCheckpoint"] = lg_bench.saved_raw / max(lg_bench.saved_count, 1)
            server_log_tail = server.log_text()[-2000:]
        dict_store = dictionary_phase(args, bench, pg, redis, r)

    cairn_store["withDictionary"] = dict_store
    summary = summarize(r, lg, cairn_store, lg_store, args)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["phases"] = bench.phases
    summary["serverLogTail"] = server_log_tail
    print_table(summary)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    log(f"wrote {out} ({summary['seconds']:.0f} s in all)")
    return 0


# ------------------------------------------------------------------------------------------------
# ratios and the table
# ------------------------------------------------------------------------------------------------


def summarize(r: dict[str, list[dict[str, Any]]], lg: dict[str, list[dict[str, Any]]], cairn_store: dict[str, Any],
              lg_store: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, Any]:
    noise: dict[str, float] = {}  # metric -> CPU% other processes used during the phase that counted

    def take(metric: str, key: str, op: str, p: float | None = None, field: str = "rps") -> None:
        """The best of the repeated phases: highest throughput, or lowest latency percentile."""
        def val(x: dict[str, Any]) -> float:
            return pct(op_of(x, op), p) if p is not None else op_of(x, op)[field]

        chosen = (min if p is not None else max)(r[key], key=val)
        m[metric] = val(chosen)
        noise[metric] = chosen["phaseCpuPercent"].get("other", 0.0)

    def take_lg(metric: str, key: str, field: str) -> None:
        chosen = (min if field.endswith("Ms") else max)(lg[key], key=lambda x: x[field])
        m[metric] = chosen[field]
        noise[metric] = chosen["phaseCpuPercent"].get("other", 0.0)

    m: dict[str, Any] = {}
    take("echo_save_rps", "echo_save", "save")
    take("echo_load_rps", "echo_load", "load")
    take("echo_list_rps", "echo_list", "list")
    take("echo_stream_rps", "echo_stream", "save_stream")
    take("echo_save_p99_c4_ms", "echo_save_c4", "save", p=99)
    take("echo_load_p50_c1_ms", "echo_load_c1", "load", p=50)
    take("cairn_save_rps", "cairn_save", "save")
    take("cairn_save_p99_c4_ms", "cairn_save_c4", "save", p=99)
    take("cairn_load_rps", "cairn_load", "load")
    take("cairn_load_p50_c1_ms", "cairn_load_c1", "load", p=50)
    take("cairn_list_rps", "cairn_list", "list")
    take("cairn_stream_rps", "cairn_stream", "save_stream")
    take("cairn_batch_items_per_s", "cairn_batch", "batch_load", field="itemsPerSecond")
    take("echo_load_rps_2procs", "echo_load_2procs", "load")
    take("cairn_save_dict_rps", "cairn_save_dict", "save")
    take("cairn_save_zstd_rps", "cairn_save_zstd", "save")
    take("cairn_stream_zstd_rps", "cairn_stream_zstd", "save_stream")
    take("echo_put_writes_rps", "echo_put_writes", "put_writes")
    take("cairn_put_writes_rps", "cairn_put_writes", "put_writes")
    # server CPU per call in the phase that counted: (% of a core) / (calls/s)
    for key, op in (("cairn_save", "save"), ("cairn_save_zstd", "save"), ("cairn_stream", "save_stream"),
                    ("cairn_stream_zstd", "save_stream"), ("cairn_put_writes", "put_writes")):
        chosen = best(r[key], op)
        m[f"{key}_server_us"] = 1e4 * chosen["phaseCpuPercent"].get("cairn server", 0.0) / op_of(chosen, op)["rps"]
    m["cpu_budget"] = cpu_budget(r, lg)
    m.update({
        "cairn_bytes_per_checkpoint": cairn_store["bytesPerCheckpoint"],
        "cairn_dict_bytes_per_checkpoint": cairn_store["withDictionary"]["bytesPerCheckpoint"],
        "raw_json_per_checkpoint": cairn_store["rawJsonPerCheckpoint"],
        "compression_ratio_reported": best(r["cairn_save"], "save")["compressionRatio"],
        "client_cpu_percent": {k: max(x["clientCpu"]["percentOfOneCore"] / x["clientCpu"]["procs"] for x in v)
                               for k, v in r.items()},
    })
    errors = {k: sum(x["errors"] for x in v) for k, v in r.items()}
    if lg:
        take_lg("lg_aput_rps", "aput@32", "rps")
        take_lg("lg_aget_rps", "aget_tuple@32", "rps")
        take_lg("lg_aget_p50_c1_ms", "aget_tuple@1", "p50Ms")
        take_lg("lg_list_rps", "alist@32", "rps")
        take_lg("lg_put_writes_rps", "aput_writes@32", "rps")
        errors.update({f"langgraph_{k}": sum(sum(x["errors"].values()) for x in v) for k, v in lg.items()})
    if lg_store:
        m["lg_bytes_per_checkpoint"] = lg_store["bytesPerCheckpoint"]
        m["lg_raw_json_per_checkpoint"] = lg_store["rawJsonPerCheckpoint"]

    def row(what: str, value: str, unit: str, ref: str, ref_what: str, target: str,
            ok: Callable[[float], bool] | None, ratio_is_value: bool = False) -> dict[str, Any]:
        v, rv = m.get(value), m.get(ref)
        ratio = None if v is None or rv in (None, 0) else v / rv
        judged = v if ratio_is_value else ratio
        return {"metric": what, "cairn": v, "unit": unit, "reference": rv, "referenceWhat": ref_what,
                "ratio": ratio, "target": target, "met": None if judged is None or ok is None else bool(ok(judged)),
                "otherCpuPercent": max(noise.get(value, 0.0), noise.get(ref, 0.0))}
    rows = [
        row("Save durable c=32 vs echo", "cairn_save_rps", "/s", "echo_save_rps", "echo Save /s", ">= 0.60",
            lambda x: x >= 0.60),
        row("Save durable c=32 vs LangGraph aput", "cairn_save_rps", "/s", "lg_aput_rps", "aput /s c=32",
            ">= 3.0", lambda x: x >= 3.0),
        row("Save p99 c=4", "cairn_save_p99_c4_ms", "ms", "echo_save_p99_c4_ms", "echo p99 ms",
            "<= 5 ms", lambda v: v <= 5.0, ratio_is_value=True),
        row("Load hot c=32 vs echo", "cairn_load_rps", "/s", "echo_load_rps", "echo Load /s", ">= 0.85",
            lambda x: x >= 0.85),
        row("Load hot c=32 vs LangGraph aget_tuple", "cairn_load_rps", "/s", "lg_aget_rps",
            "aget_tuple /s c=32", "~2.3", lambda x: x >= 2.3),
        row("Load hot p50 c=1", "cairn_load_p50_c1_ms", "ms", "echo_load_p50_c1_ms", "echo p50 ms",
            "<= 1 ms", lambda v: v <= 1.0, ratio_is_value=True),
        row("List 10, no state, c=32 vs echo", "cairn_list_rps", "/s", "echo_list_rps", "echo List /s",
            ">= 0.50", lambda x: x >= 0.50),
        row("List 10 vs LangGraph alist(limit=10)", "cairn_list_rps", "/s", "lg_list_rps", "alist /s c=32",
            "~8", lambda x: x >= 8.0),
        row("SaveStream durable", "cairn_stream_rps", "ckpt/s", "echo_stream_rps", "echo SaveStream /s",
            ">= 15,000/s", lambda v: v >= 15000, ratio_is_value=True),
        row(f"BatchLoad x{args.batch_size} items vs echo unary Load", "cairn_batch_items_per_s", "items/s",
            "echo_load_rps", "echo Load /s", "> 1.0", lambda x: x > 1.0),
        row("PutWrites c=32 vs echo (no target)", "cairn_put_writes_rps", "/s", "echo_put_writes_rps",
            "echo PutWrites /s", "-", None),
        row("PutWrites c=32 vs LangGraph aput_writes (no target)", "cairn_put_writes_rps", "/s",
            "lg_put_writes_rps", "aput_writes /s c=32", "-", None),
        row("  client compresses: Save c=32 vs LangGraph aput", "cairn_save_zstd_rps", "/s", "lg_aput_rps",
            "aput /s c=32", ">= 3.0", lambda x: x >= 3.0),
        row("  client compresses: SaveStream durable", "cairn_stream_zstd_rps", "ckpt/s", "echo_stream_rps",
            "echo SaveStream /s", ">= 15,000/s", lambda v: v >= 15000, ratio_is_value=True),
        row("Bytes stored per checkpoint vs raw JSON", "cairn_bytes_per_checkpoint", "B",
            "raw_json_per_checkpoint", "raw JSON B", "<= 0.50", lambda x: x <= 0.50),
        row("Bytes stored per checkpoint vs LangGraph", "cairn_bytes_per_checkpoint", "B",
            "lg_bytes_per_checkpoint", "LangGraph B", "<= 0.65", lambda x: x <= 0.65),
        row("  with a zstd dictionary: bytes vs raw JSON", "cairn_dict_bytes_per_checkpoint", "B",
            "raw_json_per_checkpoint", "raw JSON B", "<= 0.50", lambda x: x <= 0.50),
        row("  with a zstd dictionary: bytes vs LangGraph", "cairn_dict_bytes_per_checkpoint", "B",
            "lg_bytes_per_checkpoint", "LangGraph B", "<= 0.65", lambda x: x <= 0.65),
        row("  with a zstd dictionary: Save c=32 vs LangGraph", "cairn_save_dict_rps", "/s", "lg_aput_rps",
            "aput /s c=32", ">= 3.0", lambda x: x >= 3.0),
    ]
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": _git(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg": os.getloadavg()},
        "settings": {"duration": args.duration, "warmup": args.warmup, "repeat": args.repeat,
                     "serverArgs": args.server_arg, "langgraphPool": args.langgraph_pool,
                     "postgres": f"fsync={'off' if args.no_fsync else 'on'}, "
                                 f"synchronous_commit={args.synchronous_commit}",
                     "streams": args.stream_concurrency, "streamWindow": args.stream_window,
                     "batchSize": args.batch_size, "procs": args.procs, "connections": args.connections,
                     "states": f"{STATE_POOL} agent states, seed {SEED}"},
        "ratios": rows,
        "metrics": m,
        "errors": errors,
        "storage": {"cairn": cairn_store, "langgraph": lg_store},
    }


# (label, results key, operation) of the phases whose CPU per call is broken down by process
_BUDGET_PHASES = (
    ("echo Save c=32", "echo_save", "save"), ("Save c=32", "cairn_save", "save"),
    ("Save c=32, client compresses", "cairn_save_zstd", "save"), ("echo Load c=32", "echo_load", "load"),
    ("Load c=32", "cairn_load", "load"), ("echo SaveStream", "echo_stream", "save_stream"),
    ("SaveStream", "cairn_stream", "save_stream"),
    ("SaveStream, client compresses", "cairn_stream_zstd", "save_stream"),
)


def cpu_budget(r: dict[str, list[dict[str, Any]]], lg: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """CPU per call of each process in the phases that counted, summed, and the calls/s this machine's cores
    could give at that cost: how far a phase is from being bound by the whole box rather than one process.

    The client's figure is its own (measured over the timed window); the others are their CPU over the phase's
    wall time (warm-up and start-up included) divided by the measured rate, so they are slight underestimates."""
    cores = os.cpu_count() or 1
    out = []
    for label, key, op in _BUDGET_PHASES:
        if not r.get(key):
            continue
        chosen = best(r[key], op)
        rps = op_of(chosen, op)["rps"]
        us = {k: 1e4 * v / rps for k, v in chosen["phaseCpuPercent"].items() if k not in ("other", "bench clients")}
        us["bench clients"] = chosen["clientCpu"]["microsecondsPerOp"]
        out.append((label, rps, us))
    if lg.get("aput@32"):
        chosen = max(lg["aput@32"], key=lambda x: x["rps"])
        out.append(("LangGraph aput c=32 (saver in the bench process)", chosen["rps"],
                    {k: 1e4 * v / chosen["rps"] for k, v in chosen["phaseCpuPercent"].items()
                     if k in ("postgres", "bench clients")}))  # the idle servers' housekeeping is not its cost
    rows = []
    for label, rps, us in out:
        us = {k: round(v, 1) for k, v in us.items() if v >= 0.5}
        total = sum(us.values())
        ceiling = cores * 1e6 / total if total else None
        rows.append({"phase": label, "rps": rps, "usPerCall": us, "totalUs": round(total, 1), "cores": cores,
                     "boxCeilingRps": ceiling, "ofCeiling": rps / ceiling if ceiling else None})
    return rows


def _git() -> dict[str, Any]:
    """The commit measured (and whether the server's tree had local changes)."""
    def out(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": out("rev-parse", "HEAD"), "serverDirty": bool(out("status", "--porcelain", "--", "server"))}


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.2f} ms"
    if unit == "B":
        return f"{v / 1000:,.1f} KB"
    return f"{v:,.0f}{unit}"


def print_table(s: dict[str, Any]) -> None:
    rows = s["ratios"]
    head = ("metric", "cairn", "reference", "ratio", "target", "", "noise")
    body = []
    for r in rows:
        ref_unit = "ms" if r["unit"] == "ms" else "B" if r["unit"] == "B" else "/s"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        mark = "" if r["target"] == "-" else {True: "ok", False: "MISS", None: "?"}[r["met"]]
        body.append((r["metric"], _num(r["cairn"], r["unit"] if r["unit"] in ("ms", "B") else " " + r["unit"]),
                     f"{_num(r['reference'], ref_unit if ref_unit != '/s' else '/s')} {r['referenceWhat']}", ratio,
                     r["target"], mark, f"{r['otherCpuPercent']:.0f}%"))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'<' if i in (0, 2, 4, 5) else '>'}{w}}}" for i, w in enumerate(widths)).rstrip()
    print()
    commit = (s["git"]["commit"] or "?")[:10] + (" + local server changes" if s["git"]["serverDirty"] else "")
    print(f"Cairn bench {s['date']} at {commit}  ({s['settings']['states']}; postgres {s['settings']['postgres']}; "
          f"{s['settings']['duration']:g} s phases, best of {s['settings']['repeat']})")
    print(fmt.format(*head))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print(fmt.format(*b))
    m = s["metrics"]
    print("noise = CPU (% of one core) that other processes on the machine used during the phase that counted")
    print(f"echo ceiling here: Save {m['echo_save_rps']:,.0f}/s, Load {m['echo_load_rps']:,.0f}/s, "
          f"List {m['echo_list_rps']:,.0f}/s at c=32 (issue 9 estimated ~4,500-5,000 unary calls/s)")
    print(f"compression reported by the server: {m.get('compression_ratio_reported') or 0:.2f}x; "
          f"raw JSON {m['raw_json_per_checkpoint'] / 1000:.1f} KB per checkpoint")
    st = s["storage"]
    for name in ("cairn", "langgraph"):
        if st.get(name):
            tables = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in st[name]["tables"].items())
            print(f"{name} storage: {st[name]['checkpoints']:,} checkpoints, "
                  f"{st[name]['totalBytes'] / 1e6:.1f} MB ({tables})")
    cc = m["client_cpu_percent"]
    busiest = max(cc, key=cc.get)
    print(f"client check: echo Load c=32 with 2 client processes {m['echo_load_rps_2procs']:,.0f}/s vs "
          f"{m['echo_load_rps']:,.0f}/s with 1; busiest client process {cc[busiest]:.0f}% of a core ({busiest}); "
          f"cairn c=32 phases: save {cc['cairn_save']:.0f}%, load {cc['cairn_load']:.0f}%, "
          f"list {cc['cairn_list']:.0f}%")
    print(f"server CPU per save: {m['cairn_save_server_us']:.0f} us, {m['cairn_save_zstd_server_us']:.0f} us when the "
          f"client compresses; per SaveStream item {m['cairn_stream_server_us']:.0f} vs "
          f"{m['cairn_stream_zstd_server_us']:.0f} us; per PutWrites {m['cairn_put_writes_server_us']:.0f} us")
    print(f"CPU per call, us, by process (phase that counted; ceiling = {os.cpu_count()} cores / the sum):")
    for b in m["cpu_budget"]:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in b["usPerCall"].items())
        print(f"  {b['phase']}: {b['rps']:,.0f}/s; {parts}; sum {b['totalUs']:.0f} us -> ceiling "
              f"{b['boxCeilingRps'] or 0:,.0f}/s, run at {100 * (b['ofCeiling'] or 0):.0f}% of it")
    errs = {k: v for k, v in s["errors"].items() if v}
    print(f"errors: {errs if errs else 'none'}")
    noisy = [ph for ph in s["phases"] if ph["cpuPercent"].get("other", 0) > 25]
    if noisy:
        worst = max(noisy, key=lambda ph: ph["cpuPercent"]["other"])
        print(f"NOTE: other processes on this machine used >25% of a core during {len(noisy)} of "
              f"{len(s['phases'])} phases (worst: {worst['label']}, {worst['cpuPercent']['other']:.0f}%); "
              "numbers are noisy. Per-phase CPU is in the JSON.")


if __name__ == "__main__":
    sys.exit(main())
