"""The step loop: run the next nodes, merge their updates, follow the edges, save a checkpoint.

One step runs every node in `next` concurrently (a thread each; async nodes get their own event loop)
on the same state, merges their updates in `next` order with the schema's reducers, follows the edges
(conditional edges see the state after the whole step), and saves a checkpoint: the state, the node(s)
that ran, the next nodes, the parent id, and metadata (graph, run_id, source, step, status, attempts).

When a step has several nodes, each finished node's update is attached to the step's starting
checkpoint (PutWrites) as soon as it is in, so after a crash or a failure of another node of the step,
resuming runs only the nodes that had not finished. A failure or an interrupt saves a status checkpoint
(same state and next nodes, status "failed" or "interrupted") carrying those updates along.
"""

from __future__ import annotations

import contextvars
import copy
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from . import state as st
from .topology import Node, Topology, call_sync_or_async
from .constants import START
from .interrupts import Command, GraphInterrupt, Interrupt, TaskContext, current_task
from .persistence import RESUME, UPDATE, Persister
from .snapshot import Cursor, GraphRecursionError, TaskResult


Event = tuple[str, Any]  # ("values", state) | ("updates", {node: update}) | ("interrupt", [Interrupt])


class Runner:
    """Runs the steps of one compiled graph; CompiledGraph owns one."""

    def __init__(
        self,
        graph: Topology,
        *,
        name: str,
        interrupt_before: tuple[str, ...],
        interrupt_after: tuple[str, ...],
        recursion_limit: int,
        pool: ThreadPoolExecutor,
        node_timeout_seconds: float | None = None,
    ) -> None:
        self.graph = graph
        self.schema = graph.schema
        self.name = name
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.recursion_limit = recursion_limit
        self._pool = pool
        self.node_timeout_seconds = node_timeout_seconds  # per step (its nodes run at once); None = no limit

    def run(
        self, p: Persister, run_id: str, input: Any, checkpoint_id: str | None, recursion_limit: int | None
    ) -> Iterator[Event]:
        """Run from the thread's head (or from `checkpoint_id`, forking) until the graph ends or pauses."""
        head = p.load()
        p.head_id = head.checkpoint_id if head else None
        base = head
        if checkpoint_id and (head is None or head.checkpoint_id != checkpoint_id):
            base = p.load(checkpoint_id)  # NotFound when there is no such checkpoint
        forked = {"forked_from": base.checkpoint_id} if base is not None and base is not head else {}

        if input is None or isinstance(input, Command):
            if base is None:
                raise ValueError(f"thread {p.thread_id!r} has no checkpoint to resume from; pass an input")
            cur = self._resume_from(p, Cursor.of(base), input, run_id, forked)
            skip_before = cur.status in ("interrupted", "failed")  # that step already passed its pause
        else:
            if not isinstance(input, Mapping):
                raise TypeError("input is a dict of state values, a Command, or None to resume")
            cur = self._start(p, Cursor.of(base) if base is not None else Cursor.empty(), input, run_id, forked)
            yield ("values", cur.values)
            if cur.status == "interrupted":
                yield ("interrupt", cur.interrupts)
                return
            skip_before = False

        if not cur.next:
            yield ("values", cur.values)
            return
        before = [Interrupt(n, when="before") for n in cur.next if n in self.interrupt_before]
        if before and not skip_before:  # the options changed since this checkpoint was saved
            cur = self.copy_checkpoint(p, cur, run_id, source="loop", status="interrupted", interrupts=before)
            yield ("values", cur.values)
            yield ("interrupt", before)
            return

        limit = recursion_limit or self.recursion_limit
        for _ in range(limit):
            cur, events = self.step(p, cur, run_id)
            yield from events
            if not cur.next or cur.status == "interrupted":
                return
        err = GraphRecursionError(f"run took more than {limit} steps; raise recursion_limit or fix the loop")
        self.copy_checkpoint(p, cur, run_id, source="loop", status="failed", extra={"error": _error_json(None, err)})
        raise err

    def _start(self, p: Persister, base: Cursor, input: Mapping[str, Any], run_id: str, extra: dict) -> Cursor:
        """A new run: the input merged into the thread's state, saved as the "input" checkpoint."""
        values = self.schema.apply(base.values, self.schema.check_update(START, input))
        nxt, barriers = self.graph.successors([START], values, {})
        interrupts = [Interrupt(n, when="before") for n in nxt if n in self.interrupt_before]
        return self.checkpoint(
            p, parent=base, values=values, next=nxt, barriers=barriers, step=max(base.step + 1, -1),
            node_name=START, source="input", run_id=run_id, interrupts=interrupts,
            status=self.status_for(nxt, interrupts), extra=extra,
        )

    def _resume_from(self, p: Persister, cur: Cursor, input: Command | None, run_id: str, forked: dict) -> Cursor:
        """Continue a thread: fork first when starting from an older checkpoint, then apply the Command."""
        if forked:  # time travel: the new branch starts with a copy of the old checkpoint
            cur = self.copy_checkpoint(p, cur, run_id, source="fork", extra=forked)
        if isinstance(input, Command):
            if input.update is not None:
                cur = self.update(p, cur, input.update, None, run_id, {})
            if input.has_resume:
                self.resume(p, cur, input.resume)
        return cur

    # -- one step ----------------------------------------------------------------------------------

    def step(self, p: Persister, cur: Cursor, run_id: str) -> tuple[Cursor, list[Event]]:
        results = self.run_tasks(p, cur)
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
            new = self.copy_checkpoint(
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
            self.copy_checkpoint(p, cur, run_id, source="loop", status="failed", extra=extra, updates=updates)
            p.flush()
            raise
        interrupts = [Interrupt(n, when="after") for n in cur.next if n in self.interrupt_after]
        interrupts += [Interrupt(n, when="before") for n in nxt if n in self.interrupt_before]
        if not nxt:
            interrupts = []
        new = self.checkpoint(
            p, parent=cur, values=values, next=nxt, barriers=barriers, step=cur.step + 1,
            node_name=",".join(cur.next), source="loop", run_id=run_id, interrupts=interrupts,
            status=self.status_for(nxt, interrupts), extra=extra,
        )
        events: list[Event] = [("updates", {n: updates.get(n)}) for n in cur.next]
        events.append(("values", values))
        if interrupts:
            events.append(("interrupt", interrupts))
        return new, events

    def run_tasks(self, p: Persister, cur: Cursor) -> dict[str, TaskResult]:
        """Run the step's unfinished nodes concurrently; keep each finished update as soon as it is in."""
        todo = [n for n in cur.next if n not in cur.updates]
        # Each task sees the caller's context variables (a durable run's context: worker.run_context()).
        futures = {
            self._pool.submit(contextvars.copy_context().run, self.run_task, self.graph.nodes[n], cur.values,
                              cur.resume.get(n, [])): n
            for n in todo
        }
        results: dict[str, TaskResult] = {}
        try:
            for fut in as_completed(futures, timeout=self.node_timeout_seconds):
                r = fut.result()
                results[r.node] = r
                if r.ok and len(cur.next) > 1 and cur.id is not None:
                    p.put_write(cur.id, r.node, UPDATE, r.update, path=f"{cur.next.index(r.node):06d}")
        except TimeoutError:
            slow = sorted(n for f, n in futures.items() if not f.done())
            raise NodeTimeout(f"node(s) {', '.join(slow)} ran longer than {self.node_timeout_seconds} s") from None
        return results

    def run_task(self, node: Node, values: dict[str, Any], resume: list[Any]) -> TaskResult:
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

    def status_for(self, nxt: list[str], interrupts: list[Interrupt]) -> str:
        if not nxt:
            return "completed"
        return "interrupted" if interrupts else "running"

    def checkpoint(
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

    def copy_checkpoint(
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
        return self.checkpoint(
            p, parent=cur, values=cur.values, next=cur.next, barriers=cur.barriers, step=cur.step,
            node_name=node_name, source=source, run_id=run_id,
            status=status if status is not None else (cur.status or self.status_for(cur.next, [])),
            interrupts=cur.interrupts if interrupts is None else interrupts, extra=extra,
            updates=cur.updates if updates is None else updates, resume=cur.resume if resume is None else resume,
        )

    def update(
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
            return self.checkpoint(
                p, parent=cur, values=new_values, next=nxt, barriers=barriers, step=cur.step + 1,
                node_name=as_node, source="update", run_id=run_id, extra=extra,
                status="interrupted" if nxt else "completed",
            )
        return self.checkpoint(
            p, parent=cur, values=new_values, next=cur.next, barriers=cur.barriers, step=cur.step + 1,
            node_name="", source="update", run_id=run_id, extra=extra, interrupts=cur.interrupts,
            status="interrupted" if cur.next else "completed", updates=cur.updates, resume=cur.resume,
        )

    def resume(self, p: Persister, cur: Cursor, value: Any) -> None:
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


class NodeTimeout(TimeoutError):
    """A step's node ran past the runner's node_timeout_seconds (its thread is left to finish on its own)."""


def _error_json(node: str | None, exc: BaseException | None, attempts: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if node is not None:
        out["node"] = node
    if attempts is not None:
        out["attempts"] = attempts
    return out
