"""CompiledGraph: runs a StateGraph step by step, checkpointing every step to Cairn.

One step runs every node in `next` concurrently on the same state, merges their updates in `next`
order with the schema's reducers, follows the edges, and saves a checkpoint (state, node(s) that ran,
next nodes, parent id, metadata with step and status). A run that stops - crash, error, interrupt -
resumes from the thread's head with ``invoke(None, thread_id=...)`` and runs exactly its pending next
nodes; nodes that had already finished in that step (their updates were attached to the checkpoint
with PutWrites) are not run again.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from ..client import CheckpointClient
from ..types import ThreadInfo
from . import state as st
from .builder import Node, call_sync_or_async
from .constants import START
from .interrupts import Command, GraphInterrupt, Interrupt, TaskContext, current_task
from .persistence import RESUME, UPDATE, Persister
from .types import Cursor, GraphRecursionError, StateSnapshot, TaskResult

if TYPE_CHECKING:
    from .builder import StateGraph

Event = tuple[str, Any]  # ("values", state) | ("updates", {node: update}) | ("interrupt", [Interrupt])


class CompiledGraph:
    """The runnable app made by StateGraph.compile(); see compile() for the options."""

    def __init__(
        self,
        graph: StateGraph,
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
        self._pool = ThreadPoolExecutor(max_workers=max_workers or 32, thread_name_prefix=f"cairn-{name}")

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
        cp = Persister(self.client, thread_id, self.namespace).load(checkpoint_id)
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
            return self._update(p, cur, values, as_node, str(uuid.uuid4()), forked).id or ""
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
        )

    def _run(
        self, input: Any, thread_id: str, checkpoint_id: str | None, recursion_limit: int | None
    ) -> Iterator[Event]:
        p = self._persister(thread_id)
        try:
            yield from self._execute(p, str(uuid.uuid4()), input, checkpoint_id, recursion_limit)
        finally:
            p.close()

    def _execute(
        self, p: Persister, run_id: str, input: Any, checkpoint_id: str | None, recursion_limit: int | None
    ) -> Iterator[Event]:
        head = p.load()
        p.head_id = head.checkpoint_id if head else None
        base = head
        if checkpoint_id and (head is None or head.checkpoint_id != checkpoint_id):
            base = p.load(checkpoint_id)  # NotFound when there is no such checkpoint

        if input is None or isinstance(input, Command):
            if base is None:
                raise ValueError(f"thread {p.thread_id!r} has no checkpoint to resume from; pass an input")
            cur = Cursor.of(base)
            if base is not head:  # time travel: the fork starts with a copy of the old checkpoint
                cur = self._copy(p, cur, run_id, source="fork", extra={"forked_from": base.checkpoint_id})
            if isinstance(input, Command):
                if input.update is not None:
                    cur = self._update(p, cur, input.update, None, run_id, {})
                if input.has_resume:
                    self._resume(p, cur, input.resume)
            skip_before = cur.status in ("interrupted", "failed")  # that step already passed its pause
        else:
            if not isinstance(input, Mapping):
                raise TypeError("input is a dict of state values, a Command, or None to resume")
            start = Cursor.of(base) if base is not None else Cursor.empty()
            values = self.schema.apply(start.values, self.schema.check_update(START, input))
            nxt, barriers = self.graph.successors([START], values, {})
            interrupts = [Interrupt(n, when="before") for n in nxt if n in self.interrupt_before]
            cur = self._checkpoint(
                p, parent=start, values=values, next=nxt, barriers=barriers, step=max(start.step + 1, -1),
                node_name=START, source="input", run_id=run_id, interrupts=interrupts,
                status=self._status(nxt, interrupts),
            )
            yield ("values", cur.values)
            if interrupts:
                yield ("interrupt", interrupts)
                return
            skip_before = False

        if not cur.next:
            yield ("values", cur.values)
            return
        before = [Interrupt(n, when="before") for n in cur.next if n in self.interrupt_before]
        if before and not skip_before:  # the options changed since this checkpoint was saved
            cur = self._copy(p, cur, run_id, source="loop", status="interrupted", interrupts=before)
            yield ("values", cur.values)
            yield ("interrupt", before)
            return

        limit = recursion_limit or self.recursion_limit
        steps = 0
        while cur.next:
            steps += 1
            if steps > limit:
                err = GraphRecursionError(f"run took more than {limit} steps; raise recursion_limit or fix the loop")
                self._copy(p, cur, run_id, source="loop", status="failed", extra={"error": _error_json(None, err)})
                raise err
            cur, events = self._step(p, cur, run_id)
            yield from events
            if cur.status == "interrupted":
                return

    # -- one step ----------------------------------------------------------------------------------

    def _step(self, p: Persister, cur: Cursor, run_id: str) -> tuple[Cursor, list[Event]]:
        results = self._run_tasks(p, cur)
        attempts = {n: r.attempts for n, r in results.items()}
        errors = {n: r.errors for n, r in results.items() if r.errors}
        extra: dict[str, Any] = {"attempts": attempts}
        if errors:
            extra["attempt_errors"] = errors
        updates = {**cur.updates, **{n: r.update for n, r in results.items() if r.ok}}
        failed = [results[n] for n in cur.next if n in results and results[n].error is not None]
        paused = [results[n].interrupt for n in cur.next if n in results and results[n].interrupt is not None]

        if failed or paused:
            # Same state and next nodes; finished tasks' updates travel along so they don't run again.
            resume = {n: v for n, v in cur.resume.items() if n not in updates}
            if failed:
                extra["error"] = _error_json(failed[0].node, failed[0].error, failed[0].attempts)
            status = "failed" if failed else "interrupted"
            stopped = [r.node for r in failed] or [i.node for i in paused]  # type: ignore[union-attr]
            new = self._copy(
                p, cur, run_id, source="loop", status=status, interrupts=paused,  # type: ignore[arg-type]
                extra=extra, updates=updates, resume=resume, node_name=",".join(stopped),
            )
            if failed:
                p.flush()
                raise failed[0].error  # type: ignore[misc]
            return new, [("values", new.values), ("interrupt", paused)]

        try:
            values = cur.values
            for node in cur.next:
                values = self.schema.apply(values, updates.get(node))
            nxt, barriers = self.graph.successors(cur.next, values, cur.barriers)
        except Exception as exc:
            extra["error"] = _error_json(",".join(cur.next), exc)
            self._copy(p, cur, run_id, source="loop", status="failed", extra=extra, updates=updates)
            p.flush()
            raise
        interrupts = [Interrupt(n, when="after") for n in cur.next if n in self.interrupt_after]
        interrupts += [Interrupt(n, when="before") for n in nxt if n in self.interrupt_before]
        if not nxt:
            interrupts = []
        new = self._checkpoint(
            p, parent=cur, values=values, next=nxt, barriers=barriers, step=cur.step + 1,
            node_name=",".join(cur.next), source="loop", run_id=run_id, interrupts=interrupts,
            status=self._status(nxt, interrupts), extra=extra,
        )
        events: list[Event] = [("updates", {n: updates.get(n)}) for n in cur.next]
        events.append(("values", values))
        if interrupts:
            events.append(("interrupt", interrupts))
        return new, events

    def _run_tasks(self, p: Persister, cur: Cursor) -> dict[str, TaskResult]:
        """Run the step's unfinished nodes concurrently; keep each finished update as soon as it is in."""
        todo = [n for n in cur.next if n not in cur.updates]
        futures = {
            self._pool.submit(self._run_task, self.graph.nodes[n], cur.values, cur.resume.get(n, [])): n
            for n in todo
        }
        results: dict[str, TaskResult] = {}
        for fut in as_completed(futures):
            r = fut.result()
            results[r.node] = r
            if r.ok and len(cur.next) > 1 and cur.id is not None:
                p.put_write(cur.id, r.node, UPDATE, r.update, path=f"{cur.next.index(r.node):06d}")
        return results

    def _run_task(self, node: Node, values: dict[str, Any], resume: list[Any]) -> TaskResult:
        """Run one node, with its retry policy; never raises (the result says how it ended)."""
        attempt, errors = 0, []
        while True:
            attempt += 1
            token = current_task.set(TaskContext(node.name, list(resume)))
            try:
                update = self.schema.check_update(node.name, call_sync_or_async(node.fn, copy.deepcopy(values)))
                st.dumps(update, f"the update of node {node.name!r}")
                return TaskResult(node.name, update=update, attempts=attempt, errors=errors)
            except GraphInterrupt as gi:
                try:
                    st.dumps(gi.interrupt.value, "an interrupt() value")
                except TypeError as exc:
                    return TaskResult(node.name, error=exc, attempts=attempt, errors=errors + [str(exc)])
                return TaskResult(node.name, interrupt=gi.interrupt, attempts=attempt, errors=errors)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                if node.retry is None or not node.retry.should_retry(exc, attempt):
                    return TaskResult(node.name, error=exc, attempts=attempt, errors=errors)
            finally:
                current_task.reset(token)
            time.sleep(node.retry.delay(attempt))

    # -- checkpoints -------------------------------------------------------------------------------

    def _status(self, nxt: list[str], interrupts: list[Interrupt]) -> str:
        if not nxt:
            return "completed"
        return "interrupted" if interrupts else "running"

    def _checkpoint(
        self,
        p: Persister,
        *,
        parent: Cursor | None,
        values: dict[str, Any],
        next: list[str],
        barriers: dict[str, list[str]],
        step: int,
        node_name: str,
        source: str,
        run_id: str,
        status: str,
        interrupts: list[Interrupt] | tuple[Interrupt, ...] = (),
        extra: Mapping[str, Any] | None = None,
        updates: Mapping[str, Any] | None = None,
        resume: Mapping[str, list[Any]] | None = None,
    ) -> Cursor:
        md: dict[str, Any] = {"graph": self.name, "run_id": run_id, "source": source, "step": step, "status": status}
        if barriers:
            md["barriers"] = barriers
        if interrupts:
            md["interrupts"] = [i.to_json() for i in interrupts]
        md.update(extra or {})
        cid = p.save(
            values, parent_id=parent.id if parent else None, node_name=node_name, next_nodes=next, metadata=md
        )
        updates = {n: u for n, u in (updates or {}).items() if n in next}
        resume = {n: list(v) for n, v in (resume or {}).items() if n in next and v}
        for i, node in enumerate(next):
            if node in updates:
                p.put_write(cid, node, UPDATE, updates[node], path=f"{i:06d}")
        for node, vals in resume.items():
            for k, v in enumerate(vals):
                p.put_write(cid, node, RESUME, v, idx=-1 - k)
        return Cursor(cid, values, list(next), step, status, dict(barriers), updates, resume, list(interrupts))

    def _copy(
        self,
        p: Persister,
        cur: Cursor,
        run_id: str,
        *,
        source: str,
        status: str | None = None,
        interrupts: list[Interrupt] | None = None,
        extra: Mapping[str, Any] | None = None,
        updates: Mapping[str, Any] | None = None,
        resume: Mapping[str, list[Any]] | None = None,
        node_name: str = "",
    ) -> Cursor:
        """A new head with the same state and next nodes (a fork, or a change of run status)."""
        return self._checkpoint(
            p, parent=cur, values=cur.values, next=cur.next, barriers=cur.barriers, step=cur.step,
            node_name=node_name, source=source, run_id=run_id,
            status=status if status is not None else (cur.status or self._status(cur.next, [])),
            interrupts=cur.interrupts if interrupts is None else interrupts, extra=extra,
            updates=cur.updates if updates is None else updates, resume=cur.resume if resume is None else resume,
        )

    def _update(
        self,
        p: Persister,
        cur: Cursor,
        values: Mapping[str, Any] | None,
        as_node: str | None,
        run_id: str,
        extra: Mapping[str, Any],
    ) -> Cursor:
        new_values = self.schema.apply(cur.values, self.schema.check_update(as_node or "update_state", values))
        if as_node is not None:
            if as_node not in self.graph.nodes and as_node != START:
                raise ValueError(f"as_node {as_node!r} is not a node of this graph")
            nxt, barriers = self.graph.successors([as_node], new_values, cur.barriers)
            return self._checkpoint(
                p, parent=cur, values=new_values, next=nxt, barriers=barriers, step=cur.step + 1,
                node_name=as_node, source="update", run_id=run_id, extra=extra,
                status="interrupted" if nxt else "completed",
            )
        return self._checkpoint(
            p, parent=cur, values=new_values, next=cur.next, barriers=cur.barriers, step=cur.step + 1,
            node_name="", source="update", run_id=run_id, extra=extra, interrupts=cur.interrupts,
            status="interrupted" if cur.next else "completed", updates=cur.updates, resume=cur.resume,
        )

    def _resume(self, p: Persister, cur: Cursor, value: Any) -> None:
        """Store the answers to the pending interrupt() calls on the checkpoint before running the step."""
        pending = [i for i in cur.interrupts if i.when == "during"]
        if not pending:
            raise ValueError("no interrupt() is waiting on this thread; resume with invoke(None, ...)")
        ids = {i.id for i in pending}
        if isinstance(value, dict) and value and set(value) <= ids:
            answers = [(i, value[i.id]) for i in pending if i.id in value]
        else:
            answers = [(i, value) for i in pending]
        for intr, answer in answers:
            given = cur.resume.setdefault(intr.node, [])
            if intr.index < len(given):
                continue
            p.put_write(cur.id or "", intr.node, RESUME, answer, idx=-1 - len(given))
            given.append(answer)


def _error_json(node: str | None, exc: BaseException | None, attempts: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if node is not None:
        out["node"] = node
    if attempts is not None:
        out["attempts"] = attempts
    return out
