"""Values the runtime hands around: the current checkpoint (Cursor), task results, snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..types import Checkpoint
from . import state as st
from .interrupts import Interrupt
from .persistence import RESUME, UPDATE


class GraphRecursionError(RecursionError):
    """A run took more steps than its recursion_limit (a loop in the graph that never reaches END)."""


@dataclass
class Cursor:
    """The checkpoint a run stands on: state, next nodes and what its pending writes hold."""

    id: str | None
    values: dict[str, Any]
    next: list[str]
    step: int
    status: str = ""
    barriers: dict[str, list[str]] = field(default_factory=dict)
    updates: dict[str, Any] = field(default_factory=dict)  # node -> update of a task that already finished
    resume: dict[str, list[Any]] = field(default_factory=dict)  # node -> resume values, in interrupt() order
    interrupts: list[Interrupt] = field(default_factory=list)

    @classmethod
    def empty(cls) -> Cursor:
        return cls(id=None, values={}, next=[], step=-2)

    @classmethod
    def of(cls, cp: Checkpoint) -> Cursor:
        md = cp.metadata
        updates: dict[str, Any] = {}
        resume: dict[str, dict[int, Any]] = {}
        for w in cp.pending_writes:
            if w.channel == UPDATE:
                updates[w.task_id] = json.loads(w.value)
            elif w.channel == RESUME:
                resume.setdefault(w.task_id, {})[-1 - w.idx] = json.loads(w.value)
        return cls(
            id=cp.checkpoint_id,
            values=st.loads(cp.state, cp.state_type),
            next=list(cp.next_nodes),
            step=int(md.get("step", -1)),
            status=str(md.get("status", "")),
            barriers={k: list(v) for k, v in (md.get("barriers") or {}).items()},
            updates=updates,
            resume={node: [vals[i] for i in sorted(vals)] for node, vals in resume.items()},
            interrupts=[Interrupt.from_json(d) for d in md.get("interrupts") or []],
        )


@dataclass
class TaskResult:
    """How one node's run ended: an update, an interrupt, or an error (after `attempts` tries)."""

    node: str
    update: dict[str, Any] | None = None
    interrupt: Interrupt | None = None
    error: BaseException | None = None
    attempts: int = 1
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.interrupt is None


@dataclass(frozen=True)
class StateSnapshot:
    """A thread's state at one checkpoint, as get_state / get_state_history return it."""

    values: dict[str, Any]
    next: tuple[str, ...]
    thread_id: str
    checkpoint_id: str | None
    parent_checkpoint_id: str | None
    metadata: dict[str, Any]
    created_at: datetime | None
    node_name: str
    interrupts: tuple[Interrupt, ...] = ()
    pending_writes: dict[str, Any] = field(default_factory=dict)  # node -> update of finished tasks

    @property
    def status(self) -> str:
        """running, interrupted, completed or failed ("" for an empty thread)."""
        return str(self.metadata.get("status", ""))

    @classmethod
    def of(cls, cp: Checkpoint) -> StateSnapshot:
        cur = Cursor.of(cp)
        return cls(
            values=cur.values,
            next=tuple(cur.next),
            thread_id=cp.thread_id,
            checkpoint_id=cp.checkpoint_id,
            parent_checkpoint_id=cp.parent_checkpoint_id or None,
            metadata=dict(cp.metadata),
            created_at=cp.created_at,
            node_name=cp.node_name,
            interrupts=tuple(cur.interrupts),
            pending_writes=dict(cur.updates),
        )

    @classmethod
    def empty(cls, thread_id: str) -> StateSnapshot:
        return cls({}, (), thread_id, None, None, {}, None, "")
