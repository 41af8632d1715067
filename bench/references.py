#!/usr/bin/env python3
"""`make bench`: Cairn against honest references, in one run, with CPU per operation of every process (issue 32).

Starts its own redis-server, a durable postgres (fsync=on, full_page_writes=on, synchronous_commit=on: the
defaults a production server runs; plus shared_buffers, max_wal_size and max_connections as a user would set
them, listed in the table's header), `cairn serve` on both, and the bare gRPC echo server. Then, in rounds that
interleave the rows (the order rotates each round), measures:

  rows   Cairn through the shipped Python `AsyncCheckpointClient` (the headline row), and the same client with
         coalesce=0 (one call per save or load) and with compress_states=True (the state compressed by the
         worker instead of the server);
         Cairn through `cairn bench` (hand-encoded requests; a secondary row);
         the bare gRPC echo server (bench/echo_server.py) through the same AsyncCheckpointClient;
         the durable floor: the same echo server storing each state (zstd level 1, one plain INSERT per group
         commit, nothing else), Save phases only: what no Python gRPC server with durable saves beats here;
         LangGraph's AsyncPostgresSaver: one saver on a pool of 10, a saver per worker (one connection each),
         and a saver per worker on a database with default_toast_compression=lz4.
  phases Save of ~36.5 KB agent states at concurrency 32; hot Load at 32 with the state decoded (json.loads);
         Save p99 at concurrency 4.

Every client runs in its own process (bench/drivers.py); every figure of a phase comes from one timed window:
throughput, p50/p99, and CPU microseconds per operation of the server, postgres, redis and the client (read
from /proc for each process tree). A row's figure is the median of its rounds; ratios are taken against
LangGraph's best row of the same run. The table goes to bench/results/references.md and .json.

    python bench/references.py [--rounds 3] [--duration 4]
    python bench/references.py --deploy      # 8 worker processes x 32 graphs: LangGraph vs Cairn (make bench-deploy)
    python bench/references.py --channels    # one channel vs a pool, `cairn serve --workers 2` (make bench-channels)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from cairn_tools.bench.proc_cpu import machine_busy_seconds, tree_memory, tree_seconds

from cairn_tools.bench.hist import Histogram
from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer

RESULTS = ROOT / "bench" / "results"
DRIVER = ROOT / "bench" / "drivers.py"
# What a user running Postgres for real would set beside the durable defaults (and why):
PG_SETTINGS = {
    "shared_buffers": "512MB",  # the default 128MB is sized for a laptop; 25% of RAM is the usual advice
    "max_wal_size": "4GB",  # the default 1GB forces a checkpoint (and full-page writes) every few seconds here
    "max_connections": "400",  # room for the deployment run's 256 saver connections
}
PHASES = ("save@32", "load@32", "save@4")
PROCS = ("server", "postgres", "redis", "client")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Stack:
    """redis, durable postgres (databases for Cairn and each LangGraph row), cairn serve, the echo server."""

    def __init__(self, args: argparse.Namespace, workers2: bool = False, echo: bool = True,
                 langgraph: bool = True) -> None:
        self.args = args
        self.langgraph = langgraph
        self.redis = RedisServer()
        self.pg = PostgresServer(durable=True, synchronous_commit=True, settings=PG_SETTINGS)
        self.workers2 = workers2
        self.echo_on = echo

    def __enter__(self) -> Stack:
        self.redis.start()
        self.pg.start()
        self.cairn_dsn = self.pg.create_database("cairn_bench")
        self.lg_dsn = self.pg.create_database("lg_bench")
        self.lz4_dsn = self.pg.create_database("lg_lz4")
        self.pg.sql("ALTER DATABASE lg_lz4 SET default_toast_compression = 'lz4'")
        self.server = CairnProcess("--postgres-dsn", self.cairn_dsn, "--redis-url", self.redis.url,
                                  "--log-level", "WARNING", *self.args.server_arg)
        self.server.start()
        self.echo = self.floor = None
        if self.echo_on:
            self.echo = CairnProcess(command=[sys.executable, str(ROOT / "bench" / "echo_server.py")],
                                    health_check=False)
            self.echo.start()
            self.floor = CairnProcess("--postgres-dsn", self.pg.create_database("floor_bench"),
                                     command=[sys.executable, str(ROOT / "bench" / "echo_server.py")],
                                     health_check=False)
            self.floor.start()
        self.server2 = None
        if self.workers2:
            self.cairn2_dsn = self.pg.create_database("cairn_workers2")
            self.server2 = CairnProcess("--postgres-dsn", self.cairn2_dsn, "--redis-url",
                                       f"redis://127.0.0.1:{self.redis.port}/1", "--workers", "2",
                                       "--log-level", "WARNING", *self.args.server_arg)
            self.server2.start()
            wait_listeners(self.server2.port, 2)
        for dsn in (self.lg_dsn, self.lz4_dsn) if self.langgraph else ():  # LangGraph's migrations, once
            driver("langgraph-savers", ["--dsn", dsn, "--phases", "", "--setup"], {})
        return self

    def __exit__(self, *exc: object) -> None:
        for p in (self.server2, self.floor, self.echo, self.server, self.pg, self.redis):
            if p is not None:
                p.close()

    def watch(self, server: CairnProcess | None = None, *, langgraph: bool = False) -> dict[str, int]:
        w = {"postgres": self.pg.pid}
        if not langgraph:
            w["server"] = (server or self.server).pid
            if server is None or server not in (self.echo, self.floor):  # neither uses Redis
                w["redis"] = self.redis.pid
        return w


def wait_listeners(port: int, n: int, timeout: float = 120.0) -> None:
    """Until n sockets listen on port (every `--workers` process has bound, not only the first)."""
    deadline = time.monotonic() + timeout
    while True:
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fl = line.split()
                    count += int(fl[1].rsplit(":", 1)[1], 16) == port and fl[3] == "0A"
        if count >= n:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {n} server processes listen on port {port}")
        time.sleep(0.2)


def driver(kind: str, argv: list[str], watch: dict[str, int], timeout: float = 600) -> list[dict[str, Any]]:
    """Run bench/drivers.py to the end; its phases' JSON."""
    cmd = [sys.executable, str(DRIVER), kind, *argv, *(f"--watch={k}={v}" for k, v in watch.items())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def cairn_bench_phase(target: str, op: str, conc: int, duration: float, watch: dict[str, int]) -> dict[str, Any]:
    """One `cairn bench` run (no warm-up; Load prefills one checkpoint per thread, 100 saves, first). The client's
    CPU per op is its own report; the others' is their CPU over the whole run divided by the ops measured."""
    argv = [sys.executable, "-m", "cairn_server.cli", "bench", "--target", target, "--json", "--quiet",
            "--duration", str(duration), "--warmup", "0", "--threads", "100", "--seed", "42",
            "--state-pool", "64", "--mix", f"{op}=1", "-c", str(conc)]
    w0, m0, t0 = tree_seconds(watch), machine_busy_seconds(), time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration * 4 + 180)
    w1, m1, t1 = tree_seconds(watch), machine_busy_seconds(), time.monotonic()
    if not proc.stdout.strip():
        raise RuntimeError(f"cairn bench failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout)["operations"][op]
    lat = {d["percentage"]: d["latency"] / 1e6 for d in out["latencyDistribution"]}
    n = max(out["count"], 1)
    client_cpu = json.loads(proc.stdout)["clientCpu"]
    us = {k: 1e6 * (w1[k] - w0[k]) / n for k in watch}
    us["client"] = client_cpu["microsecondsPerOp"] or 0.0
    other = max(0.0, (m1 - m0) - sum(w1[k] - w0[k] for k in watch) - us["client"] * n / 1e6)
    return {"phase": f"{op}@{conc}", "count": out["count"], "rps": out["rps"], "p50Ms": lat[50], "p99Ms": lat[99],
            "usPerOp": us, "otherCorePercent": 100 * other / (t1 - t0), "errors": out["errors"]}


# ------------------------------------------------------------------------------------------------
# make bench: the reference table
# ------------------------------------------------------------------------------------------------

ROWS = (
    ("cairn_py", "Cairn, shipped AsyncCheckpointClient"),
    ("cairn_py_single", "Cairn, shipped AsyncCheckpointClient, coalesce=0 (one call per save or load)"),
    ("cairn_py_zstd", "Cairn, shipped AsyncCheckpointClient, compress_states=True"),
    ("cairn_bench", "Cairn, `cairn bench` (hand-encoded requests)"),
    ("echo", "bare gRPC echo server, AsyncCheckpointClient"),
    ("floor", "durable floor: the echo server + zstd level 1 + one plain INSERT per group commit"),
    ("lg_pool", "LangGraph, one saver on a pool of 10"),
    ("lg_savers", "LangGraph, a saver per worker (one connection each)"),
    ("lg_lz4", "LangGraph, a saver per worker, default_toast_compression=lz4"),
)
LG_ROWS = ("lg_pool", "lg_savers", "lg_lz4")


def run_row(st: Stack, key: str, rnd: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    common = ["--duration", str(args.duration), "--warmup", str(args.warmup), "--prefix", f"{key}-r{rnd}"]
    if key == "cairn_py":
        return driver("cairn", ["--target", st.server.target, *common], st.watch())
    if key == "cairn_py_single":
        return driver("cairn", ["--target", st.server.target, "--coalesce", "0", *common], st.watch())
    if key == "cairn_py_zstd":
        return driver("cairn", ["--target", st.server.target, "--compress-states", *common], st.watch())
    if key == "echo":
        assert st.echo is not None
        return driver("cairn", ["--target", st.echo.target, *common], st.watch(st.echo))
    if key == "floor":
        assert st.floor is not None
        saves = ",".join(p for p in PHASES if p.startswith("save@"))  # it answers Load as the echo does
        return driver("cairn", ["--target", st.floor.target, "--phases", saves, *common], st.watch(st.floor))
    if key == "cairn_bench":
        return [cairn_bench_phase(st.server.target, op, int(c), args.duration, st.watch())
                for op, c in (p.split("@") for p in PHASES)]
    dsn = st.lz4_dsn if key == "lg_lz4" else st.lg_dsn
    kind = "langgraph-pool" if key == "lg_pool" else "langgraph-savers"
    return driver(kind, ["--dsn", dsn, *common], st.watch(langgraph=True))


def median_phase(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the rounds (each figure on its own)."""
    med = {f: statistics.median(r[f] for r in results) for f in ("rps", "p50Ms", "p99Ms", "otherCorePercent")}
    procs = {k for r in results for k in r["usPerOp"]}
    med["usPerOp"] = {k: statistics.median(r["usPerOp"].get(k, 0.0) for r in results) for k in procs}
    med["rounds"] = [{"rps": r["rps"], "p99Ms": r["p99Ms"]} for r in results]
    med["errors"] = sum(sum(r["errors"].values()) if isinstance(r["errors"], dict) else r["errors"] for r in results)
    return med


def reference_table(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {k: {p: [] for p in PHASES} for k, _ in ROWS}
    with Stack(args) as st:
        # warm every path once (imports, connection pools, Postgres's caches) outside the counted rounds
        log("warming up")
        driver("cairn", ["--target", st.server.target, "--duration", "1", "--warmup", "1", "--prefix", "warm"], {})
        order = [k for k, _ in ROWS if k in args.rows]
        for rnd in range(args.rounds):
            for key in order[rnd % len(order):] + order[:rnd % len(order)]:
                for res in run_row(st, key, rnd, args):
                    raw[key][res["phase"]].append(res)
                    log(f"round {rnd + 1} {key} {res['phase']}: {res['rps']:,.0f}/s p50 {res['p50Ms']:.2f} ms "
                        f"p99 {res['p99Ms']:.2f} ms; us/op "
                        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(res["usPerOp"].items()))
                        + f"; other {res['otherCorePercent']:.0f}% of a core")
        sizes = {"cairn": st.pg.sql("SELECT pg_database_size('cairn_bench')"),
                 "floor": st.pg.sql("SELECT pg_database_size('floor_bench')"),
                 "lg": st.pg.sql("SELECT pg_database_size('lg_bench')"),
                 "lg_lz4": st.pg.sql("SELECT pg_database_size('lg_lz4')")}
        pg_version = st.pg.sql("SHOW server_version").strip()
    rows = {k: {p: median_phase(v) for p, v in raw[k].items() if v} for k in raw}
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_commit(), "seconds": time.monotonic() - started,
            "machine": machine(), "settings": settings(args, pg_version), "rows": rows, "raw": raw,
            "databaseBytes": {k: int(v.strip()) for k, v in sizes.items()}, "ratios": ratios(rows)}


def ratios(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Cairn's rows against LangGraph's best row of the same run, per phase."""
    out: dict[str, Any] = {}
    if not all(rows.get(k) for k in ("lg_savers", "lg_lz4")):
        return out  # a partial run (--rows) without LangGraph's rows has nothing to compare with
    lg = [k for k in LG_ROWS if rows.get(k)]
    best_save = max(lg, key=lambda k: rows[k]["save@32"]["rps"])
    best_load = max(lg, key=lambda k: rows[k]["load@32"]["rps"])
    best_p99 = min(lg, key=lambda k: rows[k]["save@4"]["p99Ms"])
    for key in ("cairn_py", "cairn_py_single", "cairn_py_zstd", "cairn_bench"):
        if not rows.get(key):
            continue
        r = rows[key]
        worker = r["save@32"]["usPerOp"].get("client", 0.0)
        storage = sum(r["save@32"]["usPerOp"].get(k, 0.0) for k in ("server", "postgres", "redis"))
        out[key] = {
            "saveVsBest": r["save@32"]["rps"] / rows[best_save]["save@32"]["rps"], "saveBest": best_save,
            "loadVsBest": r["load@32"]["rps"] / rows[best_load]["load@32"]["rps"], "loadBest": best_load,
            "saveP99c4Ms": r["save@4"]["p99Ms"], "lgBestP99c4Ms": rows[best_p99]["save@4"]["p99Ms"],
            "floorP99c4Ms": rows.get("floor", {}).get("save@4", {}).get("p99Ms"),
            "workerCpuVsSaver": worker / rows[best_save]["save@32"]["usPerOp"]["client"],
            "storageCpuVsPgDefault": storage / rows["lg_savers"]["save@32"]["usPerOp"]["postgres"],
            "storageCpuVsPgLz4": storage / rows["lg_lz4"]["save@32"]["usPerOp"]["postgres"],
        }
    return out


def render_table(s: dict[str, Any]) -> str:
    rows, names = s["rows"], dict(ROWS)
    lines = [f"Cairn `make bench` {s['date']} at {s['git'][:10]}: {s['settings']['postgres']}; "
             f"{s['settings']['states']}; median of {s['settings']['rounds']} interleaved rounds of "
             f"{s['settings']['duration']:g} s phases; {s['machine']['cpus']} cores, load {s['machine']['loadavg']}",
             ""]
    titles = {"save@32": "Save, c=32", "load@32": "hot Load, c=32, state decoded", "save@4": "Save, c=4"}
    for phase in PHASES:
        lines += [f"| {titles[phase]} | ops/s | p50 ms | p99 ms | server µs | postgres µs | redis µs | "
                  "client/saver µs | total µs | other procs (% core) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for key, name in ROWS:
            r = rows.get(key, {}).get(phase)
            if not r:
                continue
            us = r["usPerOp"]
            cells = [f"{us[k]:,.0f}" if k in us else "–" for k in PROCS]
            total = sum(us.get(k, 0.0) for k in PROCS)
            lines.append(f"| {name} | {r['rps']:,.0f} | {r['p50Ms']:.2f} | {r['p99Ms']:.2f} | "
                         + " | ".join(cells) + f" | {total:,.0f} | {r['otherCorePercent']:.0f} |")
        lines.append("")
    for key in ("cairn_py", "cairn_py_single", "cairn_py_zstd", "cairn_bench"):
        q = s["ratios"].get(key)
        if q is None:
            continue
        floor = f"; the durable floor {q['floorP99c4Ms']:.2f} ms" if q.get("floorP99c4Ms") else ""
        lines.append(
            f"{names[key]}: Save c=32 {q['saveVsBest']:.2f}x LangGraph's best ({names[q['saveBest']]}) "
            f"[target >= 1.3x]; hot Load decoded {q['loadVsBest']:.2f}x LangGraph's best "
            f"({names[q['loadBest']]}) [target >= 2x]; Save p99 c=4 {q['saveP99c4Ms']:.2f} ms "
            f"(LangGraph's best {q['lgBestP99c4Ms']:.2f} ms{floor}) [target <= 5 ms]; worker CPU per save "
            f"{q['workerCpuVsSaver']:.2f}x the best saver's [target <= 0.5x]; storage-side CPU per save "
            f"(server+postgres+redis) {q['storageCpuVsPgDefault']:.2f}x LangGraph's postgres at default TOAST "
            f"[target <= 0.5x], {q['storageCpuVsPgLz4']:.2f}x with lz4")
    errs = {f"{k}/{p}": r["errors"] for k, v in rows.items() for p, r in v.items() if r["errors"]}
    lines.append(f"errors: {errs or 'none'}")
    lines.append("µs = CPU microseconds per operation of that process tree in the timed window (/proc ticks); "
                 "other procs = the rest of the shared box during it.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# make bench-deploy: 8 worker processes x 32 graphs
# ------------------------------------------------------------------------------------------------


def deploy(args: argparse.Namespace) -> dict[str, Any]:
    """LangGraph with a saver (one connection) per graph, 256 connections, against Cairn with one channel per
    worker process; Save throughput, p99 (merged over the processes) and Postgres memory, per round."""
    started = time.monotonic()
    variants = [("lg_savers", "LangGraph, 8 procs x 32 savers, 256 Postgres connections"),
                ("cairn", "Cairn, 8 procs x 1 channel, `cairn serve` (1 process)"),
                ("cairn_w2", "Cairn, 8 procs x 1 channel, `cairn serve --workers 2`")]
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in variants}
    with Stack(args, workers2=True, echo=False) as st:
        for rnd in range(args.rounds):
            for key, _ in variants:
                res = deploy_round(st, key, rnd, args)
                raw[key].append(res)
                log(f"deploy round {rnd + 1} {key}: {res['rps']:,.0f} saves/s p99 {res['p99Ms']:.1f} ms, "
                    f"postgres PSS {res['pgPssMax'] / 2**20:,.0f} MiB (RSS {res['pgRssMax'] / 2**20:,.0f} MiB), "
                    f"{res['pgProcesses']} postgres processes, errors {res['errors']}")
        pg_version = st.pg.sql("SHOW server_version").strip()
    rows = {k: {f: statistics.median(r[f] for r in v) for f in ("rps", "p50Ms", "p99Ms", "pgPssMax", "pgRssMax",
                                                                  "pgProcesses", "otherCorePercent")}
            | {"errors": sum(r["errors"] for r in v)} for k, v in raw.items()}
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_commit(), "seconds": time.monotonic() - started,
            "machine": machine(), "settings": settings(args, pg_version) | {"procs": args.deploy_procs,
                                                                            "graphsPerProc": 32},
            "variants": dict(variants), "rows": rows, "raw": raw}


def deploy_round(st: Stack, key: str, rnd: int, args: argparse.Namespace) -> dict[str, Any]:
    procs = []
    for i in range(args.deploy_procs):
        common = ["--phases", "save@32", "--duration", str(args.duration), "--wait-go",
                  "--prefix", f"dep-{key}-r{rnd}-p{i}", "--proc-index", str(i), "--threads", "32"]
        if key == "lg_savers":
            argv = ["langgraph-savers", "--dsn", st.lg_dsn, *common]
        else:
            argv = ["cairn", "--target", (st.server2 if key == "cairn_w2" else st.server).target, *common]
        procs.append(subprocess.Popen([sys.executable, str(DRIVER), *argv], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:  # every process connected (LangGraph: all 32 of its connections) before the window
        line = p.stdout.readline() if p.stdout else ""
        if '"ready"' not in line:
            raise RuntimeError(f"deploy driver did not connect:\n{p.stderr.read()[-3000:] if p.stderr else ''}")
    start_at = time.time() + args.warmup + 0.5  # the warm-up runs in every process at once, then the window
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"{start_at}\n")
        p.stdin.flush()
    mem = {"pss": 0, "rss": 0, "processes": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            if time.time() >= start_at:
                m = tree_memory(st.pg.pid)
                for k in mem:
                    mem[k] = max(mem[k], m[k])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    outs = []
    for p in procs:
        assert p.stdout is not None and p.stdin is not None
        line = p.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"deploy driver failed:\n{p.stderr.read()[-3000:] if p.stderr else ''}")
        outs.append(json.loads(line))
    stop.set()
    sampler.join()
    # the window is over but every connection is still open: one more reading, which cannot be cut short
    m = tree_memory(st.pg.pid)
    for k in mem:
        mem[k] = max(mem[k], m[k])
    for p in procs:
        _, err = p.communicate("done\n", timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"deploy driver failed ({p.returncode}):\n{err[-3000:]}")
    hist = Histogram()
    for o in outs:
        hist.merge(Histogram.decode(o["hist"]))
    secs = statistics.median(o["seconds"] for o in outs)
    return {"rps": sum(o["count"] for o in outs) / secs, "p50Ms": hist.percentile(50) / 1e6,
            "p99Ms": hist.percentile(99) / 1e6, "pgPssMax": mem["pss"], "pgRssMax": mem["rss"],
            "pgProcesses": mem["processes"], "errors": sum(sum(o["errors"].values()) for o in outs),
            "otherCorePercent": 0.0, "perProc": [{"rps": o["rps"], "p99Ms": o["p99Ms"]} for o in outs]}


def render_deploy(s: dict[str, Any]) -> str:
    lines = [f"Cairn `make bench-deploy` {s['date']} at {s['git'][:10]}: {s['settings']['postgres']}; "
             f"{s['settings']['procs']} worker processes x 32 graphs, each graph saving ~36.5 KB agent states in a "
             f"loop; median of {s['settings']['rounds']} interleaved rounds of {s['settings']['duration']:g} s; "
             f"{s['machine']['cpus']} cores", "",
             "| deployment | saves/s | p50 ms | p99 ms | Postgres PSS MiB | Postgres RSS MiB | postgres processes |",
             "|---|---|---|---|---|---|---|"]
    for key, name in s["variants"].items():
        r = s["rows"][key]
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['p50Ms']:.1f} | {r['p99Ms']:.1f} | "
                     f"{r['pgPssMax'] / 2**20:,.0f} | {r['pgRssMax'] / 2**20:,.0f} | {r['pgProcesses']:.0f} |")
    lines.append("Postgres memory: the sum over all postgres processes, the larger of the readings during the timed "
                 "window and the one right after it with every connection still open (PSS counts shared buffers "
                 "once; RSS counts them in every backend that touched them).")
    errs = {k: r["errors"] for k, r in s["rows"].items() if r["errors"]}
    lines.append(f"errors: {errs or 'none'}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# make bench-channels: calls, not connections (issue 28)
# ------------------------------------------------------------------------------------------------


def channels(args: argparse.Namespace) -> dict[str, Any]:
    """One client process against `cairn serve --workers 2`: one channel vs a pool of --pool-channels."""
    started = time.monotonic()
    variants = [("one", 1), ("pool", args.pool_channels)]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {k: {} for k, _ in variants}
    with Stack(args, workers2=True, echo=False) as st:
        assert st.server2 is not None
        for rnd in range(args.rounds):
            for key, n in variants if rnd % 2 == 0 else variants[::-1]:
                for res in driver("cairn", ["--target", st.server2.target, "--channels", str(n),
                                            "--phases", "save@32,load@32", "--duration", str(args.duration),
                                            "--warmup", str(args.warmup), "--prefix", f"ch-{key}-r{rnd}"],
                                  st.watch(st.server2)):
                    raw[key].setdefault(res["phase"], []).append(res)
                    log(f"channels round {rnd + 1} {key} ({n}) {res['phase']}: {res['rps']:,.0f}/s "
                        f"p99 {res['p99Ms']:.2f} ms, server us/op {res['usPerOp']['server']:.0f}")
        pg_version = st.pg.sql("SHOW server_version").strip()
    rows = {k: {p: median_phase(v) for p, v in ph.items()} for k, ph in raw.items()}
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_commit(), "seconds": time.monotonic() - started,
            "machine": machine(), "settings": settings(args, pg_version) | {"poolChannels": args.pool_channels},
            "rows": rows, "raw": raw}


def render_channels(s: dict[str, Any]) -> str:
    n = s["settings"]["poolChannels"]
    lines = [f"Cairn `make bench-channels` {s['date']} at {s['git'][:10]}: one AsyncCheckpointClient process, "
             f"`cairn serve --workers 2`, {s['settings']['postgres']}; median of {s['settings']['rounds']} rounds",
             "", "| client | Save c=32 /s | Save p99 ms | hot Load c=32 /s | Load p99 ms | server CPU % (save) |",
             "|---|---|---|---|---|---|"]
    for key, name in (("one", "channels=1 (the default)"), ("pool", f"channels={n}")):
        r = s["rows"][key]
        sv, ld = r["save@32"], r["load@32"]
        server_pct = sv["usPerOp"]["server"] * sv["rps"] / 1e4
        lines.append(f"| {name} | {sv['rps']:,.0f} | {sv['p99Ms']:.2f} | {ld['rps']:,.0f} | {ld['p99Ms']:.2f} | "
                     f"{server_pct:.0f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------


def settings(args: argparse.Namespace, pg_version: str) -> dict[str, Any]:
    pg = ", ".join(f"{k}={v}" for k, v in PG_SETTINGS.items() if k != "max_connections")
    return {"postgres": f"Postgres {pg_version}, fsync=on, full_page_writes=on, synchronous_commit=on, {pg}",
            "states": "~36.5 KB agent states (64 distinct, seed 42)", "rounds": args.rounds,
            "duration": args.duration, "warmup": args.warmup, "serverArgs": args.server_arg}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "loadavg": tuple(round(x, 1) for x in os.getloadavg())}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--deploy", action="store_true", help="8 worker processes x 32 graphs (make bench-deploy)")
    mode.add_argument("--channels", action="store_true", help="one channel vs a pool on --workers 2")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (3)")
    p.add_argument("--duration", type=float, default=4.0, help="timed seconds per phase (4)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per phase (1)")
    p.add_argument("--deploy-procs", type=int, default=8, help="worker processes in --deploy (8)")
    p.add_argument("--pool-channels", type=int, default=4, help="channels of the pooled client in --channels (4)")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG", help="extra `cairn serve` argument")
    p.add_argument("--output", help="results file stem (default bench/results/<mode>)")
    p.add_argument("--rows", type=lambda v: v.split(","), default=[k for k, _ in ROWS],
                   help="comma-separated rows of `make bench` to run (default all: " + ",".join(k for k, _ in ROWS) + ")")
    args = p.parse_args(argv)
    name, run, render = (("deploy", deploy, render_deploy) if args.deploy else
                         ("channels", channels, render_channels) if args.channels else
                         ("references", reference_table, render_table))
    result = run(args)
    table = render(result)
    print(table)
    stem = Path(args.output) if args.output else RESULTS / name
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text(table + "\n")
    log(f"wrote {stem}.md and .json ({result['seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
