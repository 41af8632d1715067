"""Worker: executes durable runs of one compiled graph, taken from a Cairn queue.

    from cairn_client.graph import Worker, run_context

    def charge(state):
        receipt = run_context().activity("charge", payments.charge, state["order"])  # once, even after a crash
        return {"receipt": receipt}

    Worker("orders", app).run()          # elsewhere: client.start_run("order-7", {"order": ...}, queue="orders")

The worker claims a run (long-polling its queue), heartbeats in a background thread, and runs the graph on
the run's thread with every save and write fenced by its lease. A run found half-done (its worker crashed)
resumes from the thread's last checkpoint; the steps already checkpointed are not run again, and
activities recorded by the interrupted step return their recorded result instead of running again.

Stopping: when a heartbeat or a write is refused (RunStopped: the run was cancelled, timed out, or another
worker holds it now), the worker writes nothing more for the run; node code that calls run_context().check(),
.sleep() or .activity() is stopped at once with RunCancelled (cooperative cancel), other node code at the
end of the node. Errors: a node error ends the attempt with fail_run, retryable when it is one of
`retryable` (TimeoutError and OSError by default); the run's RetryPolicy (server-side) decides the retry.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import CairnError, RunStopped
from ..runs import Claim, Run, RunLease
from ..types import PendingWrite
from .interrupts import Command, current_task
from .persistence import Persister
from .runner import Runner

if TYPE_CHECKING:
    from ..client import CheckpointClient
    from .app import CompiledGraph

log = logging.getLogger("cairn.worker")

ACTIVITY = "activity"  # channel of an activity record (a pending write of the step's checkpoint)
COMMAND_KEY = "__command__"  # a run input {"__command__": {"resume": ..., "update": {...}}} resumes an interrupt


class RunCancelled(BaseException):
    """Raised inside a node when its run must stop (cancelled, timed out, or taken over by another worker).

    A BaseException, as asyncio.CancelledError, so that `except Exception` in node code and node retry
    policies don't swallow it."""


def default_retryable(exc: BaseException) -> bool:
    """Timeouts and I/O errors are worth another attempt; anything else is a bug or bad input."""
    return isinstance(exc, (TimeoutError, OSError))


class RunContext:
    """What a node of a durable run can reach through run_context(): the run, cooperative cancel, activities."""

    def __init__(self, worker: Worker, claim: Claim, persister: Persister) -> None:
        self.run: Run = claim.run
        self.lease: RunLease = claim.lease
        self.recovered = claim.recovered
        self._worker = worker
        self._persister = persister
        self._stop = threading.Event()
        self.stop_reason = ""
        self._records: dict[str, dict[str, Any]] = {}  # checkpoint id -> {activity key: recorded result}
        self._lock = threading.Lock()
        self.beats_done = threading.Event()  # set when the worker stops heartbeating (the attempt is ending)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def attempt(self) -> int:
        """1 for the first attempt; higher after a retry or a recovery."""
        return self.lease.epoch

    @property
    def stopping(self) -> bool:
        """True once the run must stop (cancel, timeout, lost lease)."""
        return self._stop.is_set()

    def stop(self, reason: str, error: BaseException) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._persister.stopped = error
            self._stop.set()

    def check(self) -> None:
        """Raise RunCancelled if the run must stop: call it in long loops of node code."""
        if self._stop.is_set():
            raise RunCancelled(f"run {self.run_id} must stop: {self.stop_reason}")

    def sleep(self, seconds: float) -> None:
        """time.sleep that ends early, with RunCancelled, when the run must stop."""
        if self._stop.wait(seconds):
            self.check()

    def activity(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a side effect once: its JSON result is recorded on the step's checkpoint (a pending write, fenced
        by the lease) and a re-execution of the node (after a crash or a retry) returns the recorded result
        instead of calling `fn` again. `name` must be unique within the node. A crash between `fn` returning
        and the record being stored runs `fn` again (at least once; exactly once when recorded)."""
        self.check()
        task = current_task.get()
        checkpoint_id = self._persister.head_id
        if task is None or checkpoint_id is None:
            raise RuntimeError("activity() can only be called inside a node of a durable run (Worker)")
        key = f"{ACTIVITY}:{task.node}:{name}"
        with self._lock:
            recorded = self._records.get(checkpoint_id)
            if recorded is None:
                recorded = self._records[checkpoint_id] = self._load_records(checkpoint_id)
            if key in recorded:
                return recorded[key]
        result = fn(*args, **kwargs)
        raw = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
        self.check()
        p = self._persister
        try:
            p.client.put_writes(
                p.thread_id, checkpoint_id, key, [PendingWrite(key, ACTIVITY, raw, "json", 0)],
                namespace=p.namespace, run_lease=self.lease,
            )
        except RunStopped as err:
            self.stop(err.reason, err)
            raise
        with self._lock:
            recorded[key] = json.loads(raw)
        return recorded[key]

    def _load_records(self, checkpoint_id: str) -> dict[str, Any]:
        p = self._persister
        cp = p.client.load(p.thread_id, namespace=p.namespace, checkpoint_id=checkpoint_id)
        return {w.task_id: json.loads(w.value) for w in cp.pending_writes if w.channel == ACTIVITY}


_current_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("cairn_durable_run", default=None)


def run_context() -> RunContext:
    """The durable run the calling node belongs to (inside a node run by a Worker)."""
    ctx = _current_run.get()
    if ctx is None:
        raise RuntimeError("run_context() is only available inside a node of a run executed by a Worker")
    return ctx


class Worker:
    """Takes runs from `queue` and executes them with `graph` (a CompiledGraph), one at a time.

    lease_seconds: how long a claim lasts without a heartbeat (a crashed worker's run is taken over after
    it); heartbeats go every heartbeat_seconds (default a third of the lease). wait_seconds: the long-poll
    of each claim. node_timeout_seconds: a step whose nodes run longer fails with NodeTimeout (a
    TimeoutError, so retryable by default). retryable: which errors make fail_run(retryable=True).
    """

    def __init__(
        self,
        queue: str,
        graph: CompiledGraph,
        *,
        client: CheckpointClient | None = None,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float | None = None,
        wait_seconds: float = 10.0,
        node_timeout_seconds: float | None = None,
        retryable: Callable[[BaseException], bool] = default_retryable,
    ) -> None:
        self.queue = queue
        self.graph = graph
        self.client = client or graph.client
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds or lease_seconds / 3
        self.wait_seconds = wait_seconds
        self.retryable = retryable
        self._runner = Runner(
            graph.graph, name=graph.name, interrupt_before=graph.interrupt_before,
            interrupt_after=graph.interrupt_after, recursion_limit=graph.recursion_limit, pool=graph._pool,
            node_timeout_seconds=node_timeout_seconds,
        )
        self._stopping = threading.Event()
        self.last_stop_reason = ""  # why the last run was stopped (LEASE_LOST, RUN_CANCELLED, ...), "" if it was not

    def stop(self) -> None:
        """Take no new run after the current one (run() returns)."""
        self._stopping.set()

    def run(self, max_runs: int | None = None) -> int:
        """Claim and execute runs until stop() (or `max_runs` runs); returns how many it executed."""
        done = 0
        while not self._stopping.is_set() and (max_runs is None or done < max_runs):
            try:
                if self.run_once() is not None:
                    done += 1
            except CairnError as err:  # the server is away: try again shortly
                log.warning("worker %s: %s; retrying", self.worker_id, err)
                self._stopping.wait(1.0)
        return done

    def run_once(self, wait_seconds: float | None = None) -> Run | None:
        """Claim one run (waiting up to wait_seconds) and execute it; its state afterwards, or None."""
        claim = self.client.claim_run(
            self.queue, self.worker_id, lease_seconds=self.lease_seconds,
            wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds,
        )
        if claim is None:
            return None
        return self.execute(claim)

    def execute(self, claim: Claim) -> Run:
        """Execute a claimed run to its end (or until it must stop); returns the run as the server has it."""
        g = self.graph
        p = Persister(self.client, claim.run.thread_id, g.namespace, max_checkpoints=g.max_checkpoints)
        p.run_lease = claim.lease
        ctx = RunContext(self, claim, p)
        beats = threading.Thread(target=self._heartbeat, args=(ctx,), name=f"cairn-heartbeat-{claim.run.run_id}",
                                 daemon=True)
        beats.start()
        token = _current_run.set(ctx)
        try:
            outcome = self._execute(ctx, p)
        finally:
            _current_run.reset(token)
            ctx.beats_done.set()
            # A node still running (past a node timeout) is told to stop, and can write nothing more.
            ctx.stop("the attempt ended", RunCancelled(f"the attempt of run {claim.run.run_id} ended"))
            beats.join()
        return outcome

    def _execute(self, ctx: RunContext, p: Persister) -> Run:
        run, lease = ctx.run, ctx.lease
        self.last_stop_reason = ""
        try:
            values: dict[str, Any] = {}
            interrupts: list[Any] = []
            for kind, chunk in self._runner.run(p, run.run_id, self._input(p, run), None, None):
                if kind == "values":
                    values = chunk
                elif kind == "interrupt":
                    interrupts = chunk
            p.flush()
            ctx.beats_done.set()
            if interrupts:
                return self.client.complete_run(lease, [i.to_json() for i in interrupts], interrupted=True,
                                                checkpoint_id=p.head_id)
            return self.client.complete_run(lease, values, checkpoint_id=p.head_id)
        except RunStopped as err:
            ctx.stop(err.reason, err)
        except RunCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - the attempt failed: the run's retry policy decides what's next
            if not ctx.stopping:
                ctx.beats_done.set()
                try:
                    return self.client.fail_run(lease, exc, retryable=self.retryable(exc))
                except RunStopped as err:
                    ctx.stop(err.reason, err)
        self.last_stop_reason = ctx.stop_reason or "STOPPED"
        log.info("worker %s stopped run %s: %s", self.worker_id, run.run_id, self.last_stop_reason)
        return self.client.get_run(run.run_id)

    def _input(self, p: Persister, run: Run) -> Any:
        """Resume when the thread's head belongs to this run (an earlier attempt got that far); else its input."""
        head = p.load()
        if head is not None and head.metadata.get("run_id") == run.run_id:
            return None
        value = run.input_json() if run.input_type in ("json", "") else run.input
        if isinstance(value, dict) and COMMAND_KEY in value:
            spec = value[COMMAND_KEY] or {}
            return Command(**{k: spec[k] for k in ("resume", "update") if k in spec})
        return value

    def _heartbeat(self, ctx: RunContext) -> None:
        while not ctx.beats_done.wait(self.heartbeat_seconds):
            try:
                ctx.lease = self.client.heartbeat(ctx.lease)
            except RunStopped as err:
                ctx.stop(err.reason, err)
                return
            except CairnError as err:  # the server is briefly away: the lease outlives a few missed beats
                log.warning("heartbeat of run %s failed: %s", ctx.run_id, err)


def wait_for(client: CheckpointClient, run_id: str, *, timeout_seconds: float = 60.0,
             poll_seconds: float = 0.1) -> Run:
    """Poll get_run until the run is COMPLETED, FAILED, CANCELLED or INTERRUPTED (or the timeout passes)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        run = client.get_run(run_id)
        if run.done or run.status == "INTERRUPTED" or time.monotonic() >= deadline:
            return run
        time.sleep(poll_seconds)
