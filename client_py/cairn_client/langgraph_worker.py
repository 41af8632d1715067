"""LangGraphWorker: executes durable runs of a LangGraph graph compiled with a CairnSaver.

    from cairn_client.langgraph import CairnSaver
    from cairn_client.langgraph_worker import LangGraphWorker

    saver = CairnSaver("127.0.0.1:50051")
    app = builder.compile(checkpointer=saver)
    LangGraphWorker("agents", app).run()        # elsewhere: client.start_run("thread-9", {"messages": [...]},
                                                #                             queue="agents")

For each claimed run it heartbeats in the background and calls ``app.invoke`` (``aexecute``: ``app.astream``)
on the run's thread, with every checkpoint and pending write the saver stores fenced by the run's lease. A
run whose worker crashed is resumed by the next claim from the thread's last checkpoint (``invoke(None)``),
so the super-steps LangGraph had checkpointed do not run again. When the lease is lost, or the run is
cancelled or times out, the next write fails with RunStopped and the worker stops (``aexecute`` also
cancels the graph task at once). The run's input is the graph input (JSON); ``{"__command__": {"resume":
...}}`` resumes an interrupt with ``langgraph.types.Command``. A graph that stops at an interrupt
completes the run as INTERRUPTED, with the interrupts as its output.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from .aio import AsyncCheckpointClient
from .client import CheckpointClient
from .errors import CairnError, RunStopped
from .runs import Claim, Run

log = logging.getLogger("cairn.langgraph_worker")

RUN_ID_KEY = "cairn_run_id"  # checkpoint metadata naming the durable run that wrote it
COMMAND_KEY = "__command__"


def default_retryable(exc: BaseException) -> bool:
    """Timeouts and I/O errors are worth another attempt; anything else is a bug or bad input."""
    return isinstance(exc, (TimeoutError, OSError))


def _jsonable(value: Any) -> Any:
    """The graph's result for CompleteRun: JSON as is, anything else through LangGraph's own serializer."""
    import json

    try:
        json.dumps(value)
        return value
    except TypeError:
        from langchain_core.load import dumpd

        return json.loads(json.dumps(value, default=lambda v: dumpd(v) if hasattr(v, "to_json") else repr(v)))


class LangGraphWorker:
    """Takes runs from `queue` and executes them with `app` (compiled with a CairnSaver), one at a time.

    lease_seconds / heartbeat_seconds / wait_seconds / retryable: as cairn_client.graph.Worker. config: extra
    RunnableConfig merged into each run's (the thread id and the run id are set by the worker). durability:
    LangGraph's checkpoint durability for the runs, "sync" by default.
    """

    def __init__(
        self,
        queue: str,
        app: Any,
        *,
        saver: Any = None,
        client: CheckpointClient | None = None,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float | None = None,
        wait_seconds: float = 10.0,
        retryable: Callable[[BaseException], bool] = default_retryable,
        config: dict[str, Any] | None = None,
        durability: str = "sync",
    ) -> None:
        self.queue = queue
        self.app = app
        self.saver = saver if saver is not None else app.checkpointer
        if not hasattr(self.saver, "hold_lease"):
            raise TypeError("LangGraphWorker needs the graph compiled with checkpointer=CairnSaver(...)")
        self.client = client or self.saver.client
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds or lease_seconds / 3
        self.wait_seconds = wait_seconds
        self.retryable = retryable
        self.config = config or {}
        # "sync": each checkpoint is stored before the next step starts, so a crash never re-runs a step that
        # finished (LangGraph's default "async" writes it while the next step runs).
        self.durability = durability
        self.last_stop_reason = ""
        self._stopping = threading.Event()

    # -- shared ----------------------------------------------------------------------------------------

    def _config(self, run: Run) -> dict[str, Any]:
        conf = dict(self.config)
        conf["configurable"] = {**conf.get("configurable", {}), "thread_id": run.thread_id}
        conf["metadata"] = {**conf.get("metadata", {}), RUN_ID_KEY: run.run_id}
        return conf

    def _input(self, run: Run, head_metadata: dict[str, Any] | None) -> Any:
        if head_metadata and head_metadata.get(RUN_ID_KEY) == run.run_id:
            return None  # an earlier attempt of this run got this far: resume from the thread's checkpoint
        value = run.input_json() if run.input_type in ("json", "") else run.input
        if isinstance(value, dict) and COMMAND_KEY in value:
            from langgraph.types import Command

            return Command(**{k: v for k, v in (value[COMMAND_KEY] or {}).items() if k in ("resume", "update")})
        return value

    @staticmethod
    def _result(result: Any) -> tuple[Any, bool]:
        if isinstance(result, dict) and result.get("__interrupt__"):
            return [{"id": getattr(i, "id", ""), "value": _jsonable(getattr(i, "value", i))}
                    for i in result["__interrupt__"]], True
        return _jsonable(result), False

    # -- sync --------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    def run(self, max_runs: int | None = None) -> int:
        """Claim and execute runs until stop() (or `max_runs` runs); returns how many it executed."""
        done = 0
        while not self._stopping.is_set() and (max_runs is None or done < max_runs):
            try:
                if self.run_once() is not None:
                    done += 1
            except CairnError as err:
                log.warning("worker %s: %s; retrying", self.worker_id, err)
                self._stopping.wait(1.0)
        return done

    def run_once(self, wait_seconds: float | None = None) -> Run | None:
        claim = self.client.claim_run(self.queue, self.worker_id, lease_seconds=self.lease_seconds,
                                      wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds)
        return None if claim is None else self.execute(claim)

    def execute(self, claim: Claim) -> Run:
        """Run the claimed run with app.invoke to its end (or until it must stop)."""
        run, lease = claim.run, claim.lease
        config = self._config(run)
        stopped: list[RunStopped] = []
        ended = threading.Event()

        def beat() -> None:
            current = lease
            while not ended.wait(self.heartbeat_seconds):
                try:
                    current = self.client.heartbeat(current)
                except RunStopped as err:
                    stopped.append(err)  # the lease is refused from now on: the graph's next write fails
                    return
                except CairnError as err:
                    log.warning("heartbeat of run %s failed: %s", run.run_id, err)

        self.saver.hold_lease(run.thread_id, lease)
        beats = threading.Thread(target=beat, name=f"cairn-heartbeat-{run.run_id}", daemon=True)
        beats.start()
        self.last_stop_reason = ""
        try:
            head = self.saver.get_tuple({"configurable": {"thread_id": run.thread_id}})
            result = self.app.invoke(self._input(run, head.metadata if head else None), config,
                                     durability=self.durability)
            ended.set()
            output, interrupted = self._result(result)
            head = self.saver.get_tuple({"configurable": {"thread_id": run.thread_id}})
            return self.client.complete_run(lease, output, interrupted=interrupted,
                                            checkpoint_id=head.config["configurable"]["checkpoint_id"] if head else None)
        except RunStopped as err:
            stopped.append(err)
        except Exception as exc:  # noqa: BLE001 - the attempt failed: reported with fail_run
            if not stopped:
                ended.set()
                try:
                    return self.client.fail_run(lease, exc, retryable=self.retryable(exc))
                except RunStopped as err:
                    stopped.append(err)
        finally:
            ended.set()
            beats.join()
            self.saver.release_lease(run.thread_id)
        self.last_stop_reason = stopped[0].reason if stopped and stopped[0].reason else "STOPPED"
        return self.client.get_run(run.run_id)

    # -- async -------------------------------------------------------------------------------------------

    async def arun_once(self, client: AsyncCheckpointClient, wait_seconds: float | None = None) -> Run | None:
        """Claim one run through `client` and execute it with app.astream (aexecute)."""
        claim = await client.claim_run(self.queue, self.worker_id, lease_seconds=self.lease_seconds,
                                       wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds)
        return None if claim is None else await self.aexecute(client, claim)

    async def aexecute(self, client: AsyncCheckpointClient, claim: Claim) -> Run:
        """Run the claimed run with app.astream; a refused heartbeat cancels the graph task at once."""
        run, lease = claim.run, claim.lease
        config = self._config(run)
        self.saver.hold_lease(run.thread_id, lease)
        self.last_stop_reason = ""

        async def graph() -> Any:
            head = await self.saver.aget_tuple({"configurable": {"thread_id": run.thread_id}})
            last: Any = None
            interrupts: list[Any] = []
            async for chunk in self.app.astream(self._input(run, head.metadata if head else None), config,
                                                stream_mode="values", durability=self.durability):
                if isinstance(chunk, dict) and "__interrupt__" in chunk:
                    interrupts = list(chunk["__interrupt__"])
                else:
                    last = chunk
            state = await self.app.aget_state(config)
            if state.interrupts or interrupts:
                return {**(last or {}), "__interrupt__": list(state.interrupts) or interrupts}
            return last

        task = asyncio.ensure_future(graph())
        stop: list[RunStopped] = []
        current = lease
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.heartbeat_seconds)
                if done:
                    break
                try:
                    current = await client.heartbeat(current)
                except RunStopped as err:
                    stop.append(err)
                    task.cancel()  # cooperative cancel of the running node
                    break
                except CairnError as err:
                    log.warning("heartbeat of run %s failed: %s", run.run_id, err)
            if not stop:
                try:
                    result = task.result()
                    output, interrupted = self._result(result)
                    head = await self.saver.aget_tuple({"configurable": {"thread_id": run.thread_id}})
                    return await client.complete_run(
                        lease, output, interrupted=interrupted,
                        checkpoint_id=head.config["configurable"]["checkpoint_id"] if head else None,
                    )
                except RunStopped as err:
                    stop.append(err)
                except Exception as exc:  # noqa: BLE001 - the attempt failed: reported with fail_run
                    try:
                        return await client.fail_run(lease, exc, retryable=self.retryable(exc))
                    except RunStopped as err:
                        stop.append(err)
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.saver.release_lease(run.thread_id)
        self.last_stop_reason = stop[0].reason if stop and stop[0].reason else "STOPPED"
        return await client.get_run(run.run_id)

