"""A durable-run worker process for the crash, zombie, cancel and soak tests (tests/test_runs_worker.py).

Runs cairn_client.graph.Worker over a 4-node graph (ingest -> charge -> enrich -> publish); `charge` records
an activity. It appends to --log (one fsynced line each): "ACT run name token pid" when the activity's
function actually runs, "NODE run node pid" when a node finishes. It prints "POINT <mode> <node> <run>" on
stdout when it reaches a point the test acts on (then hangs there until killed, stopped or cancelled).
"""

from __future__ import annotations

import argparse
import operator
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict


from cairn_client import CheckpointClient
from cairn_client.graph import END, START, StateGraph, Worker, run_context

NODES = ["ingest", "charge", "enrich", "publish"]


class State(TypedDict, total=False):
    order: str
    steps: Annotated[list[str], operator.add]
    receipt: str


def append(log: Path, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def build(args: argparse.Namespace, client: CheckpointClient) -> Any:
    log = Path(args.log)

    def charge(order: str) -> str:
        token = uuid.uuid4().hex[:12]
        append(log, f"ACT {run_context().run_id} charge {token} {os.getpid()}")
        return f"receipt-{order}-{token}"

    def node(name: str) -> Any:
        def fn(state: State) -> dict[str, Any]:
            ctx = run_context()
            update: dict[str, Any] = {"steps": [name]}
            if name == "charge":
                update["receipt"] = ctx.activity("charge", charge, state.get("order", ""))
            if name == args.point_in and (args.point_always or ctx.attempt == 1):
                print(f"POINT {args.mode} {name} {ctx.run_id}", flush=True)
                if args.mode == "crash":
                    time.sleep(3600)  # the test SIGKILLs us here
                elif args.mode == "hang":
                    while True:  # cooperative: ends with RunCancelled when the run must stop
                        ctx.sleep(0.05)
                elif args.mode == "block":
                    time.sleep(args.block_seconds)  # not cooperative (a node timeout's target)
                # "pause": the test SIGSTOPs us right after the line; we go on when SIGCONTed
            if name == args.fail_in and ctx.attempt <= args.fail_times:
                raise OSError(f"{name} failed on attempt {ctx.attempt}")
            if args.node_sleep:
                time.sleep(args.node_sleep)
            append(log, f"NODE {ctx.run_id} {name} {os.getpid()}")
            return update

        return fn

    g = StateGraph(State)
    for n in NODES:
        g.add_node(n, node(n))
    g.add_edge(START, NODES[0])
    for a, b in zip(NODES, NODES[1:]):
        g.add_edge(a, b)
    g.add_edge(NODES[-1], END)
    return g.compile(checkpointer=client, name="runs-test")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lease", type=float, default=2.0)
    ap.add_argument("--heartbeat", type=float, default=None)
    ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("--mode", default="", choices=["", "crash", "pause", "hang", "block"])
    ap.add_argument("--point-in", default="")
    ap.add_argument("--point-always", action="store_true")
    ap.add_argument("--block-seconds", type=float, default=5.0)
    ap.add_argument("--fail-in", default="")
    ap.add_argument("--fail-times", type=int, default=0)
    ap.add_argument("--node-sleep", type=float, default=0.0)
    ap.add_argument("--node-timeout", type=float, default=None)
    ap.add_argument("--max-runs", type=int, default=None)
    ap.add_argument("--idle-exit", type=float, default=None, help="exit after this long without a run")
    args = ap.parse_args()
    with CheckpointClient(args.target) as client:
        app = build(args, client)
        worker = Worker(args.queue, app, lease_seconds=args.lease, heartbeat_seconds=args.heartbeat,
                        wait_seconds=args.wait, node_timeout_seconds=args.node_timeout)
        done, idle_since = 0, time.monotonic()
        while args.max_runs is None or done < args.max_runs:
            run = worker.run_once()
            if run is None:
                if args.idle_exit is not None and time.monotonic() - idle_since > args.idle_exit:
                    break
                continue
            done += 1
            idle_since = time.monotonic()
            print(f"DONE {run.run_id} {run.status} {worker.last_stop_reason}", flush=True)


if __name__ == "__main__":
    main()
