"""Interleaved A/B of `cairn serve` variants: is a lever worth keeping?

One Redis and one Postgres; each run starts a fresh database and server for one variant, drives one phase with
`cairn bench`, and the variants alternate (A B B A A B ...), so drift on a shared machine hits both alike.
Prints every run and the medians. A variant is a set of `cairn serve` flags, optionally with another source tree
(e.g. a `git worktree` of the previous commit):

    python bench/ab.py --mix save=1 -c 32 --rounds 6 \\
        --variant "one=--commit-concurrency 1" --variant "eight=--commit-concurrency 8"
    git worktree add /tmp/base HEAD~1
    python bench/ab.py --mix load=1 --variant "base@/tmp/base=" --variant "new=" --server-arg=--near-cache-mb=0

After ` -- ` a variant names `cairn bench` flags of its own (a client-side lever on the same server):

    python bench/ab.py --mix save=1 --variant "identity=" --variant "zstd= -- --compress-states"
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from run import TICK, tree_ticks  # bench/run.py, a sibling script
from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer


def parse_variant(text: str) -> tuple[str, Path, list[str], list[str]]:
    """'NAME[@SOURCE_TREE]=FLAGS[ -- BENCH_FLAGS]' -> (name, tree, server flags, bench flags)."""
    head, sep, flags = text.partition("=")
    if not sep or not head:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME[@TREE]=FLAGS[ -- BENCH_FLAGS]")
    name, _, tree = head.partition("@")
    words = shlex.split(flags)
    cut = words.index("--") if "--" in words else len(words)
    return name, Path(tree) if tree else ROOT, words[:cut], words[cut + 1 :]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", action="append", type=parse_variant, required=True,
                   help="NAME[@TREE]=FLAGS[ -- BENCH_FLAGS]")
    p.add_argument("--mix", default="save=1")
    p.add_argument("-c", "--concurrency", default="32")
    p.add_argument("--duration", default="4")
    p.add_argument("--rounds", type=int, default=4, help="runs of each variant (4)")
    p.add_argument("--server-arg", action="append", default=[], help="flag for every variant")
    p.add_argument("--bench-arg", action="append", default=[], help="extra `cairn bench` flag, e.g. --batch-size=50")
    p.add_argument("--synchronous-commit", choices=["on", "off"], default="on",
                   help="postgres synchronous_commit, on as in `make bench` (fsync is off in the harness either way)")
    args = p.parse_args()
    op_name = "save_stream" if "--stream" in args.bench_arg else args.mix.split("=")[0].split(",")[0]
    runs: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name, *_ in args.variant}
    with RedisServer() as redis, PostgresServer(synchronous_commit=args.synchronous_commit == "on") as pg:
        for rnd in range(args.rounds):
            for name, tree, flags, bench_flags in (args.variant if rnd % 2 == 0 else args.variant[::-1]):
                dsn = pg.create_database(f"ab_{rnd}_{name}")
                env = {"PYTHONPATH": ":".join(f"{tree}/{d}" for d in ("server", "client_py", "api_py", "tools", ""))}
                with CairnProcess("--postgres-dsn", dsn, "--redis-url", redis.url, "--log-level", "WARNING",
                                 *args.server_arg, *flags, env=env) as server:
                    ticks, pg_ticks = tree_ticks(server.pid), tree_ticks(pg.pid)
                    proc = subprocess.run(
                        [sys.executable, "-m", "cairn_server.cli", "bench", "--target", server.target, "--quiet",
                         "--json", "--mix", args.mix, "-c", args.concurrency, "--duration", args.duration, *args.bench_arg,
                         *bench_flags],
                        capture_output=True, text=True, check=True,
                    )
                    server_cpu = (tree_ticks(server.pid) - ticks) / TICK  # the run, warm-up included
                    pg_cpu = (tree_ticks(pg.pid) - pg_ticks) / TICK
                out = json.loads(proc.stdout)
                op = out["operations"][op_name]
                calls = sum(o["count"] for o in out["operations"].values()) * (1 + float(out["options"]["warmup"])
                                                                                / float(args.duration))
                p50, p99 = (next(d["latency"] for d in op["latencyDistribution"] if d["percentage"] == q) / 1e6
                            for q in (50, 99))
                rate = op.get("itemsPerSecond", op["rps"])  # BatchLoad: items, not calls
                us, pg_us = (1e6 * cpu / max(calls, 1) for cpu in (server_cpu, pg_cpu))
                runs[name].append((rate, p50, p99, us, pg_us))
                print(f"{name:>12}  {rate:>9,.0f}/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  CPU/call: server {us:5.0f} us"
                      f"  postgres {pg_us:5.0f} us", flush=True)
    print()
    for name, results in runs.items():
        rps, p50s, p99s, uss, pgs = (sorted(col) for col in zip(*results))
        mid = len(rps) // 2
        print(f"{name:>12}  median {rps[mid]:>9,.0f}/s  p50 median {p50s[mid]:6.2f} ms  p99 median {p99s[mid]:6.2f} ms  "
              f"CPU/call medians: server {uss[mid]:4.0f} us, postgres {pgs[mid]:4.0f} us  "
              f"({args.mix}, c={args.concurrency}, {len(results)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
