"""CompiledGraph: the app a StateGraph compiles to - invoke, stream, and the thread's state.

Every step is checkpointed to Cairn (see runner.py). A run that stops - crash, error, interrupt -
resumes from the thread's head with ``invoke(None, thread_id=...)`` and runs exactly its pending next
nodes; nodes that had already finished in that step are not run again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..client import CheckpointClient
from ..types import ThreadInfo
from .interrupts import Command, Interrupt
from .persistence import Persister
from .runner import Event, Runner
from .topology import Topology
from .snapshot import Cursor, StateSnapshot


class CompiledGraph:
    """The runnable app made by StateGraph.compile(); see compile() for the options."""

    def __init__(
        self,
        graph: Topology,
        checkpointer: CheckpointClient | str,
        *,
        interrupt_before: tuple[str, ...],
        interrupt_after: tuple[str, ...],
        max_checkpoints: int | None,
        durability: str,
        namespace: str,
        name: str,
        recursion_limit: int,
        max_workers: int | None,
        on_corrupt_head: str = "fail",
    ) -> None:
        if checkpointer is None:
            raise ValueError("compile() needs checkpointer=CheckpointClient(target) (or a target string)")
        self.graph = graph
        self.schema = graph.schema
        self._owns_client = isinstance(checkpointer, str)
        self.client = CheckpointClient(checkpointer) if isinstance(checkpointer, str) else checkpointer
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.max_checkpoints = max_checkpoints
        self.durability = durability
        self.namespace = namespace
        self.name = name
        self.recursion_limit = recursion_limit
        self.on_corrupt_head = on_corrupt_head
        self._pool = ThreadPoolExecutor(max_workers=max_workers or 32, thread_name_prefix=f"cairn-{name}")
        self._runner = Runner(
            graph, name=name, interrupt_before=interrupt_before, interrupt_after=interrupt_after,
            recursion_limit=recursion_limit, pool=self._pool,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> CompiledGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running -----------------------------------------------------------------------------------

    def invoke(
        self,
        input: Mapping[str, Any] | Command | None,
        *,
        thread_id: str,
        checkpoint_id: str | None = None,
        recursion_limit: int | None = None,
    ) -> dict[str, Any]:
        """Run until the graph ends or pauses; returns the state (with "__interrupt__" when paused).

        input: a dict starts a new run (merged into the thread's state); None resumes the thread's
        pending nodes; Command(resume=..., update=...) answers an interrupt(). With `checkpoint_id`,
        the run starts from that (older) checkpoint and forks the thread there.
        """
        values: dict[str, Any] = {}
        interrupts: list[Interrupt] = []
        for kind, chunk in self._run(input, thread_id, checkpoint_id, recursion_limit):
            if kind == "values":
                values = chunk
            elif kind == "interrupt":
                interrupts = chunk
        result = dict(values)
        if interrupts:
            result["__interrupt__"] = interrupts
        return result

    def stream(
        self,
        input: Mapping[str, Any] | Command | None,
        *,
        thread_id: str,
        checkpoint_id: str | None = None,
        stream_mode: str = "updates",
        recursion_limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Like invoke, yielding as it goes: {node: update} per finished node ("updates"), or the whole
        state after the input and each step ("values"); a pause yields {"__interrupt__": [...]}."""
        if stream_mode not in ("updates", "values"):
            raise ValueError("stream_mode is 'updates' or 'values'")
        for kind, chunk in self._run(input, thread_id, checkpoint_id, recursion_limit):
            if kind == "interrupt":
                yield {"__interrupt__": chunk}
            elif kind == stream_mode:
                yield chunk

    async def ainvoke(self, input: Mapping[str, Any] | Command | None, **kwargs: Any) -> dict[str, Any]:
        """invoke() from asyncio (the run goes on in a worker thread)."""
        return await asyncio.to_thread(lambda: self.invoke(input, **kwargs))

    async def astream(self, input: Mapping[str, Any] | Command | None, **kwargs: Any) -> AsyncIterator[dict]:
        it = self.stream(input, **kwargs)
        done = object()
        while (chunk := await asyncio.to_thread(next, it, done)) is not done:
            yield chunk  # type: ignore[misc]

    # -- state -------------------------------------------------------------------------------------

    def get_state(self, thread_id: str, checkpoint_id: str | None = None) -> StateSnapshot:
        """The thread's state at its head (or at `checkpoint_id`); an empty snapshot for a new thread."""
        cp = Persister(self.client, thread_id, self.namespace, on_corrupt_head=self.on_corrupt_head).load(
            checkpoint_id
        )
        return StateSnapshot.of(cp) if cp is not None else StateSnapshot.empty(thread_id)

    def get_state_history(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        before: str | None = None,
        filter: Mapping[str, Any] | None = None,
        page_size: int = 100,
    ) -> Iterator[StateSnapshot]:
        """Every checkpoint of the thread, newest first, fetched page by page (List)."""
        if self.on_corrupt_head != "fail" and not before:  # a corrupt head is quarantined first
            Persister(self.client, thread_id, self.namespace, on_corrupt_head=self.on_corrupt_head).load()
        for cp in self.client.iter_checkpoints(
            thread_id, limit=limit, namespace=self.namespace, before=before, metadata_filter=filter,
            page_size=page_size, include_state=True, include_writes=True,
        ):
            yield StateSnapshot.of(cp)

    def update_state(
        self,
        thread_id: str,
        values: Mapping[str, Any] | None,
        *,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
    ) -> str:
        """Merge `values` into the thread's state (with the reducers) as a new checkpoint; returns its id.

        as_node: the update counts as that node's output, so the run continues with its successors;
        without it the pending next nodes stay. checkpoint_id: update an older checkpoint, forking there.
        A thread paused by interrupt_before continues with invoke(None, ...) without pausing again.
        """
        p = self._persister(thread_id)
        try:
            head = p.load()
            p.head_id = head.checkpoint_id if head else None
            base = head
            if checkpoint_id and (head is None or head.checkpoint_id != checkpoint_id):
                base = p.load(checkpoint_id)
            cur = Cursor.of(base) if base is not None else Cursor.empty()
            forked = {"forked_from": base.checkpoint_id} if base is not None and base is not head else {}
            return self._runner.update(p, cur, values, as_node, str(uuid.uuid4()), forked).id or ""
        finally:
            p.close()

    def list_threads(self, status: str | None = None, **metadata: Any) -> Iterator[ThreadInfo]:
        """Threads of this graph (by head metadata), e.g. list_threads(status="failed")."""
        flt: dict[str, Any] = {"graph": self.name, **metadata}
        if status is not None:
            flt["status"] = status
        return self.client.iter_threads(metadata_filter=flt)

    # -- the run -----------------------------------------------------------------------------------

    def _persister(self, thread_id: str) -> Persister:
        return Persister(
            self.client, thread_id, self.namespace,
            background=self.durability == "async", max_checkpoints=self.max_checkpoints,
            on_corrupt_head=self.on_corrupt_head,
        )

    def _run(
        self, input: Any, thread_id: str, checkpoint_id: str | None, recursion_limit: int | None
    ) -> Iterator[Event]:
        p = self._persister(thread_id)
        try:
            yield from self._runner.run(p, str(uuid.uuid4()), input, checkpoint_id, recursion_limit)
        finally:
            p.close()
