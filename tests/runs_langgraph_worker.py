"""A LangGraphWorker process for tests/test_runs_langgraph.py: a 3-node LangGraph graph (plan -> work -> report)
on a CairnSaver. Appends "NODE run node pid" to --log when a node finishes; with --crash-in NODE it prints
"POINT crash NODE run" inside that node and hangs there until killed."""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict


from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from cairn_client.langgraph import CairnSaver
from cairn_client.langgraph_worker import LangGraphWorker

NODES = ["plan", "work", "report"]


class State(TypedDict, total=False):
    topic: str
    steps: Annotated[list[str], operator.add]
    approved: str


def build(log: Path | None, crash_in: str = "", ask_in: str = "", sleep_in: str = "") -> StateGraph:
    def node(name: str) -> Any:
        def fn(state: State, config: RunnableConfig) -> dict[str, Any]:
            run_id = config["metadata"].get("cairn_run_id", "")
            update: dict[str, Any] = {"steps": [f"{name}:{state.get('topic', '')}"]}
            if name == ask_in:
                update["approved"] = interrupt({"question": "approve?"})
            if name == crash_in:
                print(f"POINT crash {name} {run_id}", flush=True)
                time.sleep(3600)
            if log is not None:
                with open(log, "a") as f:
                    f.write(f"NODE {run_id} {name} {os.getpid()}\n")
                    f.flush()
                    os.fsync(f.fileno())
            return update

        return fn

    def slow(name: str) -> Any:
        async def fn(state: State) -> dict[str, Any]:
            await asyncio.sleep(3600)  # cancellable: the async worker cancels it when the run is cancelled
            return {"steps": [name]}

        return fn

    g = StateGraph(State)
    for n in NODES:
        g.add_node(n, slow(n) if n == sleep_in else node(n))
    g.add_edge(START, NODES[0])
    for a, b in zip(NODES, NODES[1:]):
        g.add_edge(a, b)
    g.add_edge(NODES[-1], END)
    return g


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--crash-in", default="")
    ap.add_argument("--lease", type=float, default=2.0)
    args = ap.parse_args()
    with CairnSaver(args.target) as saver:
        app = build(Path(args.log), crash_in=args.crash_in).compile(checkpointer=saver)
        worker = LangGraphWorker(args.queue, app, lease_seconds=args.lease, wait_seconds=1.0)
        while True:
            run = worker.run_once()
            if run is not None:
                print(f"DONE {run.run_id} {run.status} {worker.last_stop_reason}", flush=True)


if __name__ == "__main__":
    main()
