"""A small durable graph runtime on Cairn: every step is checkpointed, so a run survives crashes.

    import operator
    from typing import Annotated, TypedDict
    from cairn_client import CheckpointClient
    from cairn_client.graph import END, START, StateGraph

    class State(TypedDict):
        log: Annotated[list[str], operator.add]      # reducer: updates are appended

    g = StateGraph(State)
    g.add_node("fetch", lambda s: {"log": ["fetched"]})
    g.add_node("write", lambda s: {"log": ["written"]})
    g.add_edge(START, "fetch"); g.add_edge("fetch", "write"); g.add_edge("write", END)
    app = g.compile(checkpointer=CheckpointClient("127.0.0.1:50051"))
    app.invoke({"log": []}, thread_id="t1")      # after a crash: app.invoke(None, thread_id="t1")

Modules: builder (StateGraph), app (CompiledGraph: the step loop), persistence (saves with
compare-and-set, sync or background), state (schemas and reducers), interrupts (interrupt, Command),
retry (RetryPolicy), snapshot (StateSnapshot and the step records), topology (nodes, edges, branches), worker (Worker: durable runs from a Cairn queue).
"""

from .app import CompiledGraph
from .builder import StateGraph
from .constants import END, START
from .interrupts import Command, GraphInterrupt, Interrupt, interrupt
from .retry import RetryPolicy, default_retry_on
from .state import InvalidUpdateError
from .runner import NodeTimeout
from .snapshot import GraphRecursionError, StateSnapshot
from .worker import RunCancelled, RunContext, Worker, run_context

__all__ = [
    "END",
    "START",
    "Command",
    "CompiledGraph",
    "GraphInterrupt",
    "GraphRecursionError",
    "Interrupt",
    "InvalidUpdateError",
    "NodeTimeout",
    "RetryPolicy",
    "RunCancelled",
    "RunContext",
    "StateGraph",
    "StateSnapshot",
    "Worker",
    "default_retry_on",
    "interrupt",
    "run_context",
]
