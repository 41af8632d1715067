"""StateGraph: nodes, edges and conditional edges; compile() turns it into a runnable app."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .constants import END, RESERVED, START
from .retry import RetryPolicy
from .state import StateSchema

if TYPE_CHECKING:
    from ..client import CheckpointClient
    from .app import CompiledGraph


@dataclass(frozen=True)
class Node:
    name: str
    fn: Callable[..., Any]
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class Branch:
    """A conditional edge: `path(state)` names the next node(s), through `path_map` when given."""

    source: str
    path: Callable[..., Any]
    path_map: Mapping[Hashable, str] | None = None

    def resolve(self, state: dict[str, Any]) -> list[str]:
        result = call_sync_or_async(self.path, state)
        keys = list(result) if isinstance(result, (list, tuple, set, frozenset)) else [result]
        if self.path_map is None:
            targets = keys
        else:
            missing = [k for k in keys if k not in self.path_map]
            if missing:
                raise ValueError(f"conditional edge from {self.source!r} returned {missing!r}, not in its path_map")
            targets = [self.path_map[k] for k in keys]
        for t in targets:
            if not isinstance(t, str):
                raise ValueError(f"conditional edge from {self.source!r} returned {t!r}; return node names")
        return targets


@dataclass(frozen=True)
class Join:
    """add_edge([a, b], c): c runs once every source has finished (possibly in different steps)."""

    key: str
    sources: tuple[str, ...]
    target: str


def call_sync_or_async(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn; when it is a coroutine function (or returns an awaitable), run it to completion here."""
    result = fn(*args)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(aw: Any) -> Any:
    return await aw


class StateGraph:
    """A graph of nodes over a shared state.

        g = StateGraph(State)                 # TypedDict; Annotated[list, operator.add] appends
        g.add_node("plan", plan)              # fn(state) -> dict of updates; sync or async
        g.add_edge(START, "plan")
        g.add_conditional_edges("plan", route, {"go": "act", "stop": END})
        app = g.compile(checkpointer=CheckpointClient(target))
    """

    def __init__(self, state_schema: Any = None) -> None:
        self.schema = StateSchema(state_schema)
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.joins: list[Join] = []
        self.branches: list[Branch] = []

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
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        return self.add_edge(node, END)

    def validate(self, interrupt_before: Sequence[str], interrupt_after: Sequence[str]) -> None:
        known = set(self.nodes) | {START, END}
        sources = [s for s, _ in self.edges] + [b.source for b in self.branches]
        sources += [s for j in self.joins for s in j.sources]
        targets = [t for _, t in self.edges] + [j.target for j in self.joins]
        for name in sources + targets:
            if name not in known:
                raise ValueError(f"edge names unknown node {name!r}; add_node() it first")
        if not any(s == START for s in sources):
            raise ValueError("the graph has no entry point: add_edge(START, first_node)")
        for name in [*interrupt_before, *interrupt_after]:
            if name not in self.nodes:
                raise ValueError(f"interrupt names unknown node {name!r}")
        for branch in self.branches:
            for target in (branch.path_map or {}).values():
                if target not in known:
                    raise ValueError(f"conditional edge from {branch.source!r} maps to unknown node {target!r}")

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
        from ..recovery import check_policy
        from .app import CompiledGraph

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

    # -- topology used by the runtime --------------------------------------------------------------

    def successors(
        self, ran: Sequence[str], state: dict[str, Any], barriers: dict[str, list[str]]
    ) -> tuple[list[str], dict[str, list[str]]]:
        """The nodes to run after `ran` finished on `state`, and the updated join barriers."""
        out: list[str] = []
        barriers = {k: list(v) for k, v in barriers.items()}
        for node in ran:
            out += [t for s, t in self.edges if s == node]
            for branch in self.branches:
                if branch.source == node:
                    out += branch.resolve(state)
            for join in self.joins:
                if node in join.sources:
                    seen = barriers.setdefault(join.key, [])
                    if node not in seen:
                        seen.append(node)
                    if set(seen) >= set(join.sources):
                        out.append(join.target)
                        del barriers[join.key]
        for target in out:
            if target != END and target not in self.nodes:
                raise ValueError(f"edge leads to unknown node {target!r}")
        return list(dict.fromkeys(t for t in out if t != END)), barriers
