#!/usr/bin/env python3
"""`make bench-capacity`: the capacity model of docs/capacity.md, checked against a measured run on this box.

The model: an operation costs each process a fixed CPU time (server, postgres, redis, the client), so a box
whose cores are all given to the stack serves

    ops/s = cores available / sum of the CPU seconds per op of every process on the box

and a deployment needs, per tier, `rate x CPU per op / utilisation` cores.

The check, per operation (Save of ~36.5 KB agent states, hot Load decoded), in interleaved rounds:
  1. calibrate: run at concurrency 8 and read the CPU per op of each process tree from /proc;
  2. measure: run at concurrency 32 (another window, other threads) and read its throughput, and how much
     CPU the rest of this shared box took meanwhile;
  3. predict the measured run's throughput from (1) alone, with the cores (2) left to the stack, and compare.
The prediction holds when the stack is CPU-bound; it fails (and says so) when something else binds first:
fsync latency, a lock, one saturated process on an otherwise idle core.
Then prints cores per tier for 1k, 10k and 100k ops/s from the calibrated costs, and the Postgres WAL bytes
per save (disk throughput, the bound CPU does not show). Writes bench/results/capacity.{md,json}.

    python bench/capacity.py [--rounds 3] [--duration 4] [--utilisation 0.7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from references import RESULTS, Stack, driver, git_commit, log, machine, settings

OPS = ("save", "load")
TIERS = ("server", "postgres", "redis", "client")
RATES = (1_000, 10_000, 100_000)


def wal_lsn(st: Stack) -> str:
    return st.pg.sql("SELECT pg_current_wal_lsn()").strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    cores = os.cpu_count() or 1
    raw: dict[str, list[dict[str, Any]]] = {op: [] for op in OPS}
    with Stack(args, echo=False, langgraph=False) as st:
        watch = st.watch()
        driver("cairn", ["--target", st.server.target, "--duration", "1", "--warmup", "1", "--prefix", "warm"], {})
        for rnd in range(args.rounds):
            lsn0 = wal_lsn(st)
            res = driver("cairn", ["--target", st.server.target, "--phases",
                                   f"save@{args.calibrate_concurrency},load@{args.calibrate_concurrency},"
                                   f"save@{args.concurrency},load@{args.concurrency}",
                                   "--duration", str(args.duration), "--warmup", str(args.warmup),
                                   "--prefix", f"cap-r{rnd}"], watch)
            lsn1 = wal_lsn(st)
            wal = int(st.pg.sql(f"SELECT pg_wal_lsn_diff('{lsn1}', '{lsn0}')").strip().split(".")[0])
            saves = sum(r["count"] for r in res if r["phase"].startswith("save"))
            by = {r["phase"]: r for r in res}
            for op in OPS:
                cal = by[f"{op}@{args.calibrate_concurrency}"]
                meas = by[f"{op}@{args.concurrency}"]
                us = {k: cal["usPerOp"].get(k, 0.0) for k in TIERS}
                available = max(0.1, cores - meas["otherCorePercent"] / 100)
                predicted = available * 1e6 / sum(us.values())
                busy = sum(meas["usPerOp"].get(k, 0.0) for k in TIERS) * meas["rps"] / 1e6
                raw[op].append({"usPerOp": us, "availableCores": available, "predicted": predicted,
                                "measured": meas["rps"], "error": meas["rps"] / predicted - 1,
                                "measuredUsPerOp": meas["usPerOp"], "stackCores": busy,
                                "p99Ms": meas["p99Ms"],
                                # WAL of the whole round (saves only write): an upper bound per save
                                "walBytesPerSave": wal / max(saves, 1) if op == "save" else None})
                log(f"round {rnd + 1} {op}: cost " + ", ".join(f"{k} {v:.0f}" for k, v in us.items())
                    + f" us/op; {available:.2f} cores left to the stack -> predicted {predicted:,.0f}/s, measured "
                    f"{meas['rps']:,.0f}/s ({100 * (meas['rps'] / predicted - 1):+.0f}%), stack used {busy:.2f} cores")
        pg_version = st.pg.sql("SHOW server_version").strip()
    summary: dict[str, Any] = {}
    for op, rs in raw.items():
        med = {"usPerOp": {k: statistics.median(r["usPerOp"][k] for r in rs) for k in TIERS}}
        for f in ("availableCores", "predicted", "measured", "error", "stackCores", "p99Ms"):
            med[f] = statistics.median(r[f] for r in rs)
        if op == "save":
            med["walBytesPerSave"] = statistics.median(r["walBytesPerSave"] for r in rs)
        med["withinTolerance"] = abs(med["error"]) <= args.tolerance
        med["plan"] = {rate: {k: rate * med["usPerOp"][k] / 1e6 / args.utilisation for k in TIERS}
                       for rate in RATES}
        summary[op] = med
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_commit(), "seconds": time.monotonic() - started,
            "machine": machine(), "settings": settings(args, pg_version) | {
                "calibrateConcurrency": args.calibrate_concurrency, "concurrency": args.concurrency,
                "utilisation": args.utilisation, "tolerance": args.tolerance},
            "ops": summary, "raw": raw}


def render(s: dict[str, Any]) -> str:
    st = s["settings"]
    lines = [f"Cairn capacity check {s['date']} at {s['git'][:10]}: {st['postgres']}; shipped AsyncCheckpointClient "
             f"(one channel), one `cairn serve` process; costs calibrated at c={st['calibrateConcurrency']}, "
             f"throughput measured at c={st['concurrency']}; median of {st['rounds']} rounds; "
             f"{s['machine']['cpus']} cores", "",
             "| op | server µs | postgres µs | redis µs | client µs | cores left to the stack | predicted /s | "
             "measured /s | error | stack used cores |", "|---|---|---|---|---|---|---|---|---|---|"]
    for op, m in s["ops"].items():
        us = m["usPerOp"]
        lines.append(f"| {op} | " + " | ".join(f"{us[k]:,.0f}" for k in TIERS)
                     + f" | {m['availableCores']:.2f} | {m['predicted']:,.0f} | {m['measured']:,.0f} | "
                     f"{100 * m['error']:+.0f}% {'ok' if m['withinTolerance'] else 'OUT of ±25%'} | "
                     f"{m['stackCores']:.2f} |")
    lines += ["", f"Cores per tier at {100 * st['utilisation']:.0f}% utilisation, from the calibrated costs "
              "(client = the workers' own CPU for Cairn's client):", "",
              "| rate | " + " | ".join(f"{t} cores" for t in TIERS) + " |", "|---|---|---|---|---|"]
    for op, m in s["ops"].items():
        for rate, plan in m["plan"].items():
            lines.append(f"| {int(rate):,} {op}s/s | " + " | ".join(f"{plan[t]:,.1f}" for t in TIERS) + " |")
    lines.append(f"\nPostgres WAL per save: {s['ops']['save']['walBytesPerSave'] / 1000:,.1f} KB "
                 "(pg_current_wal_lsn over each round's saves)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (3)")
    p.add_argument("--duration", type=float, default=4.0, help="timed seconds per phase (4)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per phase (1)")
    p.add_argument("--calibrate-concurrency", type=int, default=8, help="concurrency of the costing run (8)")
    p.add_argument("--concurrency", type=int, default=32, help="concurrency of the measured run (32)")
    p.add_argument("--utilisation", type=float, default=0.7, help="target CPU utilisation per tier (0.7)")
    p.add_argument("--tolerance", type=float, default=0.25, help="allowed prediction error (0.25)")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG", help="extra `cairn serve` argument")
    args = p.parse_args(argv)
    result = run(args)
    table = render(result)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "capacity.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "capacity.md").write_text(table + "\n")
    log(f"wrote {RESULTS / 'capacity.md'} ({result['seconds']:.0f} s in all)")
    return 0 if all(m["withinTolerance"] for m in result["ops"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
