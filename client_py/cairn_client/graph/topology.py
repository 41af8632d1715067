"""The building blocks of a graph, apart from the builder and the runner: nodes, conditional edges (Branch),
join edges, `call_sync_or_async`, and Topology, the graph's shape that the runner walks.

As LangGraph keeps graph/_node.py and _branch.py apart from pregel/, the runner imports this module and never
the builder (builder.py -> app.py -> runner.py -> topology.py), so the package has no import cycle.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .constants import END, START
from .retry import RetryPolicy
from .state import StateSchema


@dataclass(frozen=True)
class Node:
    """A node: `fn(state) -> dict | None` (def or async def), retried under `retry`."""

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


class Topology:
    """Nodes, edges, joins and conditional edges over one state schema: what StateGraph builds and the runner
    walks (`successors`)."""

    def __init__(self, state_schema: Any = None) -> None:
        self.schema = StateSchema(state_schema)
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.joins: list[Join] = []
        self.branches: list[Branch] = []

    def validate(self, interrupt_before: Sequence[str], interrupt_after: Sequence[str]) -> None:
        """ValueError naming the first edge or interrupt that names an unknown node, or a missing entry point."""
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
