#!/usr/bin/env python3
"""Durable runs (issue 26): what a step costs under a lease, and how fast runs are claimed.

Starts its own `cairn serve` (the embedded SQLite default, and Postgres through tests/harness) and measures:
  step cost   one run's worker loop, sequentially: a plain Save (compare-and-set on the head, as the graph
              runtime saves) against the same Save carrying the run lease (fenced), and a Heartbeat alone;
              the per-step cost of durable runs is fenced - plain + heartbeat / steps per heartbeat interval.
  claims/s    `--runs` runs started, then `--claimers` threads (a client each) claim and complete them until
              the queue is empty: claims per second, and the latency of one ClaimRun.

    python bench/runs_bench.py [--backend embedded|postgres|both] [--steps 300] [--runs 1000] [--claimers 4]

Recovery times after a crash come from the soak (`make soak-runs`), which kills workers for real.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from cairn_client import CheckpointClient
from cairn_tools.cluster import CairnProcess, existing_or_start_postgres

STATE = {"messages": [{"role": "user", "content": "x" * 200}] * 10}  # ~2.5 KB of JSON per checkpoint


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def ms(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"p50_ms": round(s[len(s) // 2] * 1e3, 3), "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1e3, 3),
            "mean_ms": round(statistics.fmean(s) * 1e3, 3)}


def step_cost(target: str, steps: int) -> dict[str, object]:
    with CheckpointClient(target) as c:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        plain_thread, fenced_thread = f"plain-{uuid.uuid4()}", f"fenced-{uuid.uuid4()}"
        c.start_run(fenced_thread, queue=queue)
        claim = c.claim_run(queue, "bench", lease_seconds=600)
        assert claim is not None
        heads = {plain_thread: "", fenced_thread: ""}

        def save(thread: str, lease: object) -> Callable[[], None]:
            def once() -> None:
                head = heads[thread]
                r = c.save(thread, STATE, expected_head_id=head or None, expect_empty=not head,
                           parent_checkpoint_id=head, run_lease=lease)
                heads[thread] = r.checkpoint_id
            return once

        for _ in range(20):  # warm up both paths
            save(plain_thread, None)()
            save(fenced_thread, claim.lease)()
        plain, fenced = [], []
        for _ in range(steps // 50):  # interleaved blocks: drift on a shared box hits both alike
            plain += timed(save(plain_thread, None), 50)
            fenced += timed(save(fenced_thread, claim.lease), 50)
        beats = timed(lambda: c.heartbeat(claim.lease), steps)
        c.complete_run(claim.lease)
    p, f, h = ms(plain), ms(fenced), ms(beats)
    return {
        "plain_save": p, "fenced_save": f, "heartbeat": h,
        "fenced_extra_p50_ms": round(f["p50_ms"] - p["p50_ms"], 3),
        # the Worker heartbeats every lease/3 (10 s by default): per step that is heartbeat / steps in 10 s
        "per_step_worst_case_p50_ms": round(f["p50_ms"] + h["p50_ms"], 3),
    }


def claims(target: str, runs: int, claimers: int) -> dict[str, object]:
    queue = f"claims-{uuid.uuid4().hex[:8]}"
    with CheckpointClient(target) as c:
        for i in range(runs):
            c.start_run(f"claims-{queue}-{i}", queue=queue)
    latencies: list[float] = []
    lock = threading.Lock()
    claimed = [0]

    def work() -> None:
        with CheckpointClient(target) as c:
            mine: list[float] = []
            while True:
                t = time.perf_counter()
                got = c.claim_run(queue, f"bench-{threading.get_ident()}")
                mine.append(time.perf_counter() - t)
                if got is None:
                    break
                c.complete_run(got.lease)
                with lock:
                    claimed[0] += 1
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(claimers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert claimed[0] == runs, (claimed[0], runs)
    return {"runs": runs, "claimers": claimers, "seconds": round(elapsed, 2),
            "claim_and_complete_per_s": round(runs / elapsed, 1), "claim": ms(latencies)}


@contextlib.contextmanager
def server(kind: str) -> Iterator[str]:
    if kind == "embedded":
        with CairnProcess.embedded("--log-level", "WARNING") as srv:
            yield srv.target
        return
    with existing_or_start_postgres() as pg:
        dsn = pg.create_database(f"cairn_runs_bench_{uuid.uuid4().hex[:8]}")
        with CairnProcess("--postgres-dsn", dsn, "--log-level", "WARNING") as srv:
            yield srv.target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["embedded", "postgres", "both"], default="both")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--claimers", type=int, default=4)
    args = ap.parse_args()
    results = {}
    for kind in (["embedded", "postgres"] if args.backend == "both" else [args.backend]):
        with server(kind) as target:
            results[kind] = {"step_cost": step_cost(target, args.steps),
                             "claims": claims(target, args.runs, args.claimers)}
        print(json.dumps({kind: results[kind]}, indent=2), flush=True)


if __name__ == "__main__":
    main()
