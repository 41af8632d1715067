"""Human in the loop: interrupt() inside a node, and Command to resume.

``interrupt(value)`` stops the run the first time it is reached: the thread's head checkpoint gets
status "interrupted" with the value, and ``invoke`` returns. Resuming with
``invoke(Command(resume=answer), thread_id=...)`` runs the node again from its start; this time
``interrupt(value)`` returns ``answer``. A node may call interrupt() several times: each call gets
the resume value given for it, in order.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Interrupt:
    """A pause: `when` is "during" (interrupt() in `node`), "before" or "after" (compile options)."""

    node: str
    value: Any = None
    when: str = "during"
    index: int = 0

    @property
    def id(self) -> str:
        """Key for resuming several interrupts at once: Command(resume={interrupt.id: value, ...})."""
        return f"{self.node}#{self.index}"

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "value": self.value, "when": self.when, "index": self.index}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Interrupt:
        return cls(node=d["node"], value=d.get("value"), when=d.get("when", "during"), index=int(d.get("index", 0)))


_UNSET: Any = object()


@dataclass(frozen=True)
class Command:
    """Input that resumes a paused thread: `resume` answers the pending interrupt() (one value, or
    {interrupt.id: value} when several nodes are waiting); `update` is merged into the state first,
    as update_state() would."""

    resume: Any = _UNSET
    update: dict[str, Any] | None = None

    @property
    def has_resume(self) -> bool:
        return self.resume is not _UNSET


class GraphInterrupt(Exception):
    """Raised by interrupt() to stop the node; the runtime catches it. Don't catch it in a node."""

    def __init__(self, interrupt: Interrupt) -> None:
        super().__init__(f"interrupted in node {interrupt.node!r}: {interrupt.value!r}")
        self.interrupt = interrupt


@dataclass
class TaskContext:
    """What interrupt() needs to know about the node running in this thread."""

    node: str
    resume: list[Any] = field(default_factory=list)
    calls: int = 0


current_task: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("cairn_graph_task", default=None)


def interrupt(value: Any = None) -> Any:
    """Pause the run here and surface `value` (JSON) to the caller; returns the resume value once resumed."""
    ctx = current_task.get()
    if ctx is None:
        raise RuntimeError("interrupt() can only be called inside a node of a cairn_client.graph run")
    index = ctx.calls
    ctx.calls += 1
    if index < len(ctx.resume):
        return ctx.resume[index]
    raise GraphInterrupt(Interrupt(node=ctx.node, value=value, when="during", index=index))
