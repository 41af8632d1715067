"""StateGraph: add nodes, edges and conditional edges (topology.py holds them); compile() makes the app."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from ..client import CheckpointClient
from ..recovery import check_policy
from .app import CompiledGraph
from .constants import END, RESERVED, START
from .retry import RetryPolicy
from .topology import Branch, Join, Node, Topology


class StateGraph(Topology):
    """A graph of nodes over a shared state.

        g = StateGraph(State)                 # TypedDict; Annotated[list, operator.add] appends
        g.add_node("plan", plan)              # fn(state) -> dict of updates; sync or async
        g.add_edge(START, "plan")
        g.add_conditional_edges("plan", route, {"go": "act", "stop": END})
        app = g.compile(checkpointer=CheckpointClient(target))
    """

    def add_node(
        self, name: str | Callable[..., Any], fn: Callable[..., Any] | None = None, *, retry: RetryPolicy | None = None
    ) -> StateGraph:
        """Add a node: `fn(state) -> dict | None` (def or async def). `add_node(fn)` names it fn.__name__."""
        if fn is None:
            if not callable(name):
                raise TypeError("add_node(name, fn) or add_node(fn)")
            fn, name = name, name.__name__
        if not isinstance(name, str) or not name:
            raise ValueError("a node name must be a non-empty string")
        if name in RESERVED or "," in name:
            raise ValueError(f"{name!r} is not a valid node name (reserved, or contains ',')")
        if name in self.nodes:
            raise ValueError(f"node {name!r} already exists")
        if not callable(fn):
            raise TypeError(f"node {name!r} must be callable")
        self.nodes[name] = Node(name, fn, retry)
        return self

    def add_edge(self, start: str | Sequence[str], end: str) -> StateGraph:
        """`start` -> `end` after `start` finished; with a list of starts, `end` waits for all of them."""
        if isinstance(start, str):
            if start == END or end == START:
                raise ValueError("edges go from START and to END, not the other way round")
            self.edges.append((start, end))
        else:
            sources = tuple(start)
            if not sources or START in sources or END in sources:
                raise ValueError("a join edge needs one or more real nodes as its starts")
            self.joins.append(Join(f"join:{len(self.joins)}", sources, end))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After `source`, `path(state)` returns the next node name(s) (or keys of `path_map`, or END)."""
        if isinstance(path_map, Sequence) and not isinstance(path_map, str):
            path_map = {name: name for name in path_map}
        self.branches.append(Branch(source, path, path_map))
        return self

    def set_entry_point(self, node: str) -> StateGraph:
        """add_edge(START, node)."""
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        """add_edge(node, END)."""
        return self.add_edge(node, END)

    def compile(
        self,
        checkpointer: CheckpointClient | str,
        *,
        interrupt_before: Sequence[str] = (),
        interrupt_after: Sequence[str] = (),
        max_checkpoints: int | None = None,
        durability: str = "sync",
        namespace: str = "",
        name: str = "graph",
        recursion_limit: int = 100,
        max_workers: int | None = None,
        on_corrupt_head: str = "fail",
    ) -> CompiledGraph:
        """A runnable app that checkpoints every step to Cairn.

        checkpointer: a CheckpointClient, or a target "host:port" (the app then owns the client).
        durability: "sync" (each checkpoint acknowledged before the next step starts) or "async"
            (saved in the background, in order; a failed save is raised by the next step or at the end).
        max_checkpoints: keep only this many checkpoints per thread (the newest, along the head's
            parent chain), pruned after every save.
        namespace: Cairn namespace of this graph's checkpoints ("" = root).
        name: stored in every checkpoint's metadata as "graph" (list_threads filters on it).
        recursion_limit: most steps one invoke may run.
        on_corrupt_head: "fail" (default: a head that fails the server's integrity check is DataLoss) or
            "resume_from_ancestor": quarantine it (the server keeps it aside) and resume from the newest
            intact checkpoint beneath it (cairn_client.recovery).
        """
        self.validate(interrupt_before, interrupt_after)
        if durability not in ("sync", "async"):
            raise ValueError("durability is 'sync' or 'async'")
        if max_checkpoints is not None and max_checkpoints < 1:
            raise ValueError("max_checkpoints must be at least 1")
        return CompiledGraph(
            self,
            checkpointer,
            interrupt_before=tuple(interrupt_before),
            interrupt_after=tuple(interrupt_after),
            max_checkpoints=max_checkpoints,
            durability=durability,
            namespace=namespace,
            name=name,
            recursion_limit=recursion_limit,
            max_workers=max_workers,
            on_corrupt_head=check_policy(on_corrupt_head),
        )
