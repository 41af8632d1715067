"""A worker process for the crash tests of cairn_client.graph (tests/test_graph_crash.py).

    python tests/graph_crash_worker.py --target HOST:PORT --thread T --log FILE [--resume] [--crash-at NODE]

Runs a 6-node graph (ingest -> score_a | score_b -> merge -> enrich (async) -> publish) on thread T,
or resumes T with invoke(None). Every node appends "start NODE" when it begins and "done NODE" when it
has finished its side effect, to FILE. With --crash-at NODE, that node prints "CRASH-POINT NODE" on
stdout and then blocks, so the test can SIGKILL the process in the middle of the node. For score_a
(which runs in parallel with score_b) it first waits until score_b's finished write is stored on the
server. On success the final state is printed as "RESULT {json}".
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import operator
import os
import sys
import threading
from typing import Annotated, Any, TypedDict

from cairn_client import CheckpointClient, NotFound
from cairn_client.graph import END, START, StateGraph

NODES = ["ingest", "score_a", "score_b", "merge", "enrich", "publish"]
SIBLING = {"score_a": "score_b", "score_b": "score_a"}


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    score_a: int
    score_b: int
    total: int
    report: str


def effect(log: str, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def build(args: argparse.Namespace, client: CheckpointClient) -> StateGraph:
    def crash_point(node: str) -> None:
        if args.crash_at != node:
            return
        if node in SIBLING:  # let the parallel sibling finish and its write reach the server first
            while not sibling_saved(SIBLING[node]):
                threading.Event().wait(0.01)
        print(f"CRASH-POINT {node}", flush=True)
        threading.Event().wait()  # block until SIGKILLed

    def sibling_saved(sibling: str) -> bool:
        try:  # with background saving even the thread's first checkpoint may still be on its way
            return any(w.task_id == sibling for w in client.load(args.thread).pending_writes)
        except NotFound:
            return False

    def node(name: str, fn: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            async def run_async(state: State) -> dict:
                effect(args.log, f"start {name}")
                crash_point(name)
                out = await fn(state)
                effect(args.log, f"done {name}")
                return out
            return run_async

        def run(state: State) -> dict:
            effect(args.log, f"start {name}")
            crash_point(name)
            out = fn(state)
            effect(args.log, f"done {name}")
            return out
        return run

    async def enrich(s: State) -> dict:
        await asyncio.sleep(0)
        return {"report": f"{len(s['items'])} items, total {s['total']}"}

    g = StateGraph(State)
    g.add_node("ingest", node("ingest", lambda s: {"items": ["alpha", "beta", "gamma"]}))
    g.add_node("score_a", node("score_a", lambda s: {"score_a": sum(len(i) for i in s["items"])}))
    g.add_node("score_b", node("score_b", lambda s: {"score_b": 10 * len(s["items"])}))
    g.add_node("merge", node("merge", lambda s: {"total": s["score_a"] + s["score_b"], "items": ["merged"]}))
    g.add_node("enrich", node("enrich", enrich))
    g.add_node("publish", node("publish", lambda s: {"items": [f"published:{s['report']}"]}))
    g.add_edge(START, "ingest")
    g.add_edge("ingest", "score_a")
    g.add_edge("ingest", "score_b")
    g.add_edge(["score_a", "score_b"], "merge")
    g.add_edge("merge", "enrich")
    g.add_edge("enrich", "publish")
    g.add_edge("publish", END)
    return g


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--thread", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--crash-at", default=None, choices=NODES)
    ap.add_argument("--durability", default="sync", choices=["sync", "async"])
    args = ap.parse_args()
    with CheckpointClient(args.target, timeout_seconds=30) as client:
        app = build(args, client).compile(checkpointer=client, durability=args.durability, name="crash-test")
        result = app.invoke(None if args.resume else {"items": []}, thread_id=args.thread)
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
