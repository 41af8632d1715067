"""Durable runs of real LangGraph graphs (LangGraphWorker + CairnSaver): a run executed to the end equals a plain
invoke; a worker process SIGKILLed inside a node is taken over and the checkpointed node does not run again;
an interrupt completes the run INTERRUPTED and a Command run resumes it; the async worker (astream) stops at
once when the run is cancelled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("langgraph")

from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

from cairn_client import AsyncCheckpointClient, CheckpointClient, RunStopped  # noqa: E402
from cairn_client.langgraph import CairnSaver  # noqa: E402
from cairn_client.langgraph_worker import LangGraphWorker  # noqa: E402
from tests.runs_langgraph_worker import NODES, build  # noqa: E402

SCRIPT = Path(__file__).with_name("runs_langgraph_worker.py")


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def srv(request: pytest.FixtureRequest, server_factory):  # type: ignore[no-untyped-def]
    return server_factory(request.param)


def names() -> tuple[str, str]:
    return f"q-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4()}"


def expected(topic: str) -> dict:
    return build(None).compile(checkpointer=InMemorySaver()).invoke(
        {"topic": topic}, {"configurable": {"thread_id": "x"}})


def test_run_equals_a_plain_invoke_and_writes_are_fenced(srv, tmp_path) -> None:  # type: ignore[no-untyped-def]
    queue, thread = names()
    with CairnSaver(srv.target) as saver, CheckpointClient(srv.target) as c:
        app = build(tmp_path / "log").compile(checkpointer=saver)
        run = c.start_run(thread, {"topic": "cairns"}, queue=queue)
        done = LangGraphWorker(queue, app, lease_seconds=5).run_once(wait_seconds=1)
        assert done is not None and done.status == "COMPLETED"
        assert done.output_json() == expected("cairns")
        head = saver.get_tuple({"configurable": {"thread_id": thread}})
        assert head is not None and head.metadata["cairn_run_id"] == run.run_id
        assert done.checkpoint_id == head.config["configurable"]["checkpoint_id"]
        saver.hold_lease(thread, _lease_of(c, run.run_id))  # the run ended: its lease fences everything off
        with pytest.raises(RunStopped):
            app.invoke({"topic": "again"}, {"configurable": {"thread_id": thread}})
        saver.release_lease(thread)


def _lease_of(c: CheckpointClient, run_id: str):  # type: ignore[no-untyped-def]
    from cairn_client import RunLease

    run = c.get_run(run_id)
    return RunLease(run_id, run.lease_epoch, "not-the-token")


def test_kill_inside_a_node_is_resumed_without_rerunning_checkpointed_nodes(srv, tmp_path) -> None:  # type: ignore[no-untyped-def]
    queue, thread = names()
    log = tmp_path / "log"
    with CheckpointClient(srv.target) as c, CairnSaver(srv.target) as saver:
        run = c.start_run(thread, {"topic": "crash"}, queue=queue)
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "--target", srv.target, "--queue", queue,
                                 "--log", str(log), "--crash-in", "work"], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            while not (line := proc.stdout.readline()).startswith("POINT crash work"):
                assert line, "worker ended before reaching `work`"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        app = build(log).compile(checkpointer=saver)
        done = LangGraphWorker(queue, app, lease_seconds=2).run_once(wait_seconds=10)
        assert done is not None and done.status == "COMPLETED" and done.recovery_count == 1
        assert done.output_json() == expected("crash")
        nodes = Counter(ln.split()[2] for ln in log.read_text().splitlines() if ln.split()[1] == run.run_id)
        assert nodes == Counter(NODES)  # `plan` ran once: its checkpoint was committed before the kill
        ids = [t.config["configurable"]["checkpoint_id"] for t in saver.list({"configurable": {"thread_id": thread}})]
        parents = [t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else ""
                   for t in saver.list({"configurable": {"thread_id": thread}})]
        assert parents == ids[1:] + [""]  # one linear history


def test_interrupt_then_resume_with_a_command_run(srv) -> None:  # type: ignore[no-untyped-def]
    queue, thread = names()
    with CairnSaver(srv.target) as saver, CheckpointClient(srv.target) as c:
        app = build(None, ask_in="work").compile(checkpointer=saver)
        worker = LangGraphWorker(queue, app, lease_seconds=5)
        c.start_run(thread, {"topic": "hitl"}, queue=queue)
        paused = worker.run_once(wait_seconds=1)
        assert paused is not None and paused.status == "INTERRUPTED"
        assert paused.output_json()[0]["value"] == {"question": "approve?"}
        c.start_run(thread, {"__command__": {"resume": "yes"}}, queue=queue)
        done = worker.run_once(wait_seconds=1)
        assert done is not None and done.status == "COMPLETED"
        assert done.output_json()["approved"] == "yes" and done.output_json()["steps"][-1] == "report:hitl"


def test_async_worker_completes_and_stops_at_once_on_cancel(srv) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        queue, thread = names()
        with CairnSaver(srv.target) as saver:
            async with AsyncCheckpointClient(srv.target) as ac:
                app = build(None).compile(checkpointer=saver)
                worker = LangGraphWorker(queue, app, lease_seconds=3, heartbeat_seconds=0.3)
                await ac.start_run(thread, {"topic": "async"}, queue=queue)
                done = await worker.arun_once(ac, wait_seconds=1)
                assert done is not None and done.status == "COMPLETED"
                assert done.output_json() == expected("async")

                slow = build(None, sleep_in="work").compile(checkpointer=saver)
                worker = LangGraphWorker(queue, slow, lease_seconds=3, heartbeat_seconds=0.3)
                queue2, thread2 = names()
                worker.queue = queue2
                run = await ac.start_run(thread2, {"topic": "slow"}, queue=queue2)
                task = asyncio.ensure_future(worker.arun_once(ac, wait_seconds=1))
                while (await ac.get_run(run.run_id)).status != "RUNNING":
                    await asyncio.sleep(0.05)
                await ac.cancel_run(run.run_id)
                stopped = await asyncio.wait_for(task, 10)
                assert stopped is not None and stopped.status == "CANCELLED"
                assert worker.last_stop_reason == "RUN_CANCELLED"

    asyncio.run(go())
    assert threading.active_count() < 50
