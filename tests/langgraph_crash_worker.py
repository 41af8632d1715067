"""A real LangGraph process for tests/test_langgraph_crash.py, on CairnSaver or on LangGraph's own SqliteSaver.

    python3 tests/langgraph_crash_worker.py crash  --saver cairn|sqlite --where W --thread T --durability D --log F
    python3 tests/langgraph_crash_worker.py resume --saver cairn|sqlite --where W --thread T --durability D --log F

The graph is a -> b -> c -> d; every node appends its name to a list in the state and, when it finishes, a
line to the log file F (so runs are counted across processes). W is the Cairn target or the SQLite file.

``crash`` runs the graph until it is inside node c, prints "INSIDE c" and waits to be SIGKILLed. Before it
prints, c waits until the saver calls LangGraph has started have settled, so what is stored at the kill is
the same for both savers and every run: under "sync" and "exit", every call has returned; under "async", the
put of the checkpoint after b is held in flight (LangGraph does not wait for it before running c), and every
other call has returned. That is the moment "async" is there for: its last checkpoint is lost with the process.

``resume`` is the new process: it prints what the thread holds (values, next nodes, the steps and sources of
its checkpoints), resumes the run as an application would (``invoke(None)`` from the latest checkpoint when
there is one, else the original input again), and prints the result and the thread's history as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import operator
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

INPUT = {"log": ["input"]}
WAIT_SECONDS = 60  # a hang guard only


class State(TypedDict):
    log: Annotated[list[str], operator.add]


class Calls:
    """Counts the saver calls in flight; holds the put of the checkpoint after b when asked to."""

    def __init__(self, saver: BaseCheckpointSaver, hold_put_after_b: bool) -> None:
        self.cond = threading.Condition()
        self.in_flight = 0
        self.holding = False
        self.release = threading.Event()  # never set: the held put ends with the process
        for name in ("put", "put_writes"):
            setattr(saver, name, self._tracked(getattr(saver, name), hold_put_after_b and name == "put"))

    def _tracked(self, call: Any, may_hold: bool) -> Any:
        def tracked(*args: Any, **kwargs: Any) -> Any:
            with self.cond:
                self.in_flight += 1
            try:
                log = args[1]["channel_values"].get("log", []) if may_hold else []
                if may_hold and "b" in log and "c" not in log:
                    with self.cond:
                        self.holding = True
                        self.cond.notify_all()
                    self.release.wait()
                return call(*args, **kwargs)
            finally:
                with self.cond:
                    self.in_flight -= 1
                    self.cond.notify_all()

        return tracked

    def settle(self, in_flight: int, holding: bool) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: self.in_flight == in_flight and self.holding == holding, WAIT_SECONDS)
        if not ok:
            raise SystemExit(f"saver calls did not settle: {self.in_flight} in flight, holding={self.holding}")


def build(saver: BaseCheckpointSaver, log_file: str, inside_c: Any = None) -> Any:
    def node(name: str) -> Any:
        def run(state: State) -> dict[str, list[str]]:
            if name == "c" and inside_c is not None:
                inside_c()
            with open(log_file, "a") as f:
                f.write(name + "\n")
            return {"log": [name]}

        return run

    g = StateGraph(State)
    for name in "abcd":
        g.add_node(name, node(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", "d")
    g.add_edge("d", END)
    return g.compile(checkpointer=saver)


@contextlib.contextmanager
def open_saver(kind: str, where: str) -> Iterator[BaseCheckpointSaver]:
    if kind == "cairn":
        from cairn_client.langgraph import CairnSaver

        with CairnSaver(where) as saver:
            yield saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(where, check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()


def history(graph: Any, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread's checkpoints, oldest first: what both savers must agree on (ids differ)."""
    return [
        {"step": s.metadata["step"], "source": s.metadata["source"], "next": list(s.next), "log": s.values.get("log")}
        for s in reversed(list(graph.get_state_history(cfg)))
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["crash", "resume"])
    parser.add_argument("--saver", choices=["cairn", "sqlite"], required=True)
    parser.add_argument("--where", required=True)
    parser.add_argument("--thread", required=True)
    parser.add_argument("--durability", choices=["sync", "async", "exit"], required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    cfg = {"configurable": {"thread_id": args.thread}}

    with open_saver(args.saver, args.where) as saver:
        if args.phase == "crash":
            calls = Calls(saver, hold_put_after_b=args.durability == "async")

            def inside_c() -> None:
                if args.durability == "async":
                    calls.settle(in_flight=1, holding=True)
                else:
                    calls.settle(in_flight=0, holding=False)
                print("INSIDE c", flush=True)
                time.sleep(WAIT_SECONDS)
                raise SystemExit("not killed")

            build(saver, args.log, inside_c).invoke(INPUT, cfg, durability=args.durability)
            return 1

        graph = build(saver, args.log)
        snap = graph.get_state(cfg)
        after_crash = {"values": snap.values, "next": list(snap.next), "history": history(graph, cfg)}
        saved = saver.get_tuple(cfg) is not None
        out = graph.invoke(None if saved else INPUT, cfg, durability=args.durability)
        json.dump({"after_crash": after_crash, "result": out, "history": history(graph, cfg)}, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
