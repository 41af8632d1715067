"""Seed data for the console tests, screenshots and page-load measurement: threads with statuses, a
forked timeline with a subgraph namespace, pending writes, a LangGraph (msgpack) thread, a large state
and a long thread."""

from __future__ import annotations

import time
import uuid
from typing import Any

from cairn_client import CheckpointClient, PendingWrite, uuid7
from cairn_client.transport import save_request

FORK_THREAD = "agent-fork"
STATUSES = ("running", "completed", "failed", "interrupted")


def _messages(n: int) -> list[dict[str, str]]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": f"message {i}: " + ("lorem ipsum " * (i % 4 + 1)).strip()}
            for i in range(n)]


def seed_fork_thread(c: CheckpointClient, thread_id: str = FORK_THREAD) -> dict[str, Any]:
    """A root chain of six checkpoints, a second branch from the third (time travel), and a subgraph
    namespace; the head has pending writes. Returns the ids the tests check."""
    ids: list[str] = []
    parent = ""
    nodes = ("__start__", "plan", "search", "answer", "review", "answer")
    for step, node in enumerate(nodes):
        status = "completed" if step == len(nodes) - 1 else "running"
        saved = c.save(
            thread_id, {"messages": _messages(step + 1), "plan": ["search", "answer"][: step % 3], "step": step},
            parent_checkpoint_id=parent, node_name=node, next_nodes=[] if status == "completed" else ["next"],
            metadata={"step": step, "source": "loop" if step else "input", "status": status, "graph": "triage"},
        )
        parent = saved.checkpoint_id
        ids.append(parent)
    branch = c.save(
        thread_id, {"messages": _messages(3) + [{"role": "user", "content": "try another tool"}], "plan": [],
                    "step": 3},
        parent_checkpoint_id=ids[2], node_name="search", next_nodes=["answer"],
        metadata={"step": 3, "source": "update", "status": "interrupted", "graph": "triage"},
    ).checkpoint_id
    # A later save on the main branch so the thread's head is there again, above the fork.
    head = c.save(
        thread_id, {"messages": _messages(7), "plan": [], "step": 6}, parent_checkpoint_id=ids[-1],
        node_name="__end__", metadata={"step": 6, "source": "loop", "status": "completed", "graph": "triage"},
    ).checkpoint_id
    sub_parent = ""
    for step in range(3):
        sub_parent = c.save(
            thread_id, {"tool": "search", "query": "cairn", "hits": list(range(step))}, namespace="search:7f3a",
            parent_checkpoint_id=sub_parent, node_name=f"tool_{step}", metadata={"step": step, "source": "loop"},
        ).checkpoint_id
    c.put_writes(thread_id, head, "task-1", [
        PendingWrite(task_id="task-1", channel="messages", value=b'{"role": "assistant", "content": "done"}',
                     value_type="json", idx=0),
        PendingWrite(task_id="task-1", channel="__interrupt__", value=b'"approve?"', value_type="json", idx=-3),
    ], task_path="~__pregel_pull, answer")
    return {"chain": ids, "branch": branch, "head": head, "sub_head": sub_parent}


def seed_status_threads(c: CheckpointClient, prefix: str = "job", per_status: int = 3) -> list[str]:
    out = []
    for status in STATUSES:
        for i in range(per_status):
            tid = f"{prefix}-{status}-{i}"
            c.save(tid, {"n": i}, node_name="work", next_nodes=[] if status == "completed" else ["work"],
                   metadata={"status": status, "step": 1, "source": "loop", "graph": "batch"})
            out.append(tid)
    return out


def langgraph_app(saver: Any) -> Any:
    """A one-node LangGraph graph that answers each message with an echo, checkpointed by ``saver``."""
    from langchain_core.messages import AIMessage
    from langgraph.graph import END, START, MessagesState, StateGraph

    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"echo: {state['messages'][-1].content}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=saver)


def seed_langgraph_thread(target: str, token: str | None, thread_id: str = "langgraph-chat") -> None:
    """A real LangGraph run through CairnSaver, so states and writes are LangGraph's msgpack."""
    from cairn_client.langgraph import CairnSaver
    from langchain_core.messages import HumanMessage

    app = langgraph_app(CairnSaver(target, token=token))
    config = {"configurable": {"thread_id": thread_id}}
    app.invoke({"messages": [HumanMessage(content="hello")]}, config)
    app.invoke({"messages": [HumanMessage(content="and again")]}, config)


def seed_large_state(c: CheckpointClient, thread_id: str = "large-state", mb: float = 10.0) -> str:
    """One thread whose head state is about ``mb`` MB of JSON (a long list of messages)."""
    item = {"role": "tool", "content": "x" * 900}
    count = int(mb * 1_000_000 / 930)
    first = c.save(thread_id, {"messages": [item] * (count - 1)}, node_name="tools").checkpoint_id
    return c.save(thread_id, {"messages": [item] * count}, parent_checkpoint_id=first, node_name="tools",
                  metadata={"status": "running", "step": 2}).checkpoint_id


def seed_long_thread(c: CheckpointClient, thread_id: str, n: int = 10_000, forks_every: int = 500) -> None:
    """``n`` checkpoints in one thread, saved over SaveStream, with a short side branch every
    ``forks_every`` checkpoints so the timeline has lanes to draw."""

    def requests() -> Any:
        parent = ""
        for i in range(n):
            cid = uuid7()
            yield save_request(thread_id, {"step": i, "messages": _messages(i % 5 + 1)}, checkpoint_id=cid,
                               parent_checkpoint_id=parent, node_name=("plan", "act", "observe")[i % 3],
                               next_nodes=["act"], metadata={"step": i, "source": "loop", "status": "running"})
            if forks_every and i % forks_every == forks_every - 1:
                yield save_request(thread_id, {"step": i, "branch": True}, checkpoint_id=uuid7(),
                                   parent_checkpoint_id=parent or cid, node_name="retry",
                                   metadata={"step": i, "source": "fork"})
            parent = cid

    for result in c.save_stream(requests()):
        if isinstance(result, Exception):
            raise result


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"




def seed_runs(c: CheckpointClient) -> dict[str, str]:
    """Durable runs in each state the Runs page draws, by role -> run id: a pending run (and a second one
    for a test to cancel), a running one held by a worker, one failed after a retry, one completed, and
    one recovered from a worker that stopped heartbeating (running again under a second worker)."""
    from cairn_client import RetryPolicy

    # Claims take the oldest claimable run of a queue, so each run that is claimed has its own queue.
    failed = c.start_run("run-thread-failed", {"ticket": 812, "task": "triage"}, queue="batch", run_id="run-failed",
                         retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.05),
                         metadata={"graph": "triage"})
    for worker in ("worker-batch-1", "worker-batch-2"):
        claim = c.claim_run("batch", worker, lease_seconds=60, wait_seconds=10)
        assert claim is not None and claim.run.run_id == failed.run_id
        c.fail_run(claim.lease, TimeoutError("the model did not answer within 30 s"), retryable=True)
    done = c.start_run("run-thread-completed", {"question": "capital of France?"}, queue="batch",
                       run_id="run-completed")
    claim = c.claim_run("batch", "worker-batch-3", lease_seconds=60, wait_seconds=10)
    assert claim is not None and claim.run.run_id == done.run_id
    head = c.save("run-thread-completed", {"answer": "Paris"}, node_name="__end__", run_lease=claim.lease)
    c.complete_run(claim.lease, {"answer": "Paris"}, checkpoint_id=str(head.checkpoint_id))
    running = c.start_run("run-thread-running", {"prompt": "write a haiku"}, queue="gpu", run_id="run-running")
    claim = c.claim_run("gpu", "worker-gpu-7", lease_seconds=600, wait_seconds=10)
    assert claim is not None and claim.run.run_id == running.run_id
    # A worker that stops heartbeating loses the run once its lease expires; the next claim recovers it.
    recovered = c.start_run("run-thread-recovered", {"doc": "q3-report.pdf"}, queue="ingest", run_id="run-recovered")
    claim = c.claim_run("ingest", "worker-crashed", lease_seconds=1, wait_seconds=10)
    assert claim is not None and claim.run.run_id == recovered.run_id
    deadline = time.monotonic() + 30
    while (claim := c.claim_run("ingest", "worker-rescuer", lease_seconds=600, wait_seconds=2)) is None:
        assert time.monotonic() < deadline, "the crashed worker's lease never expired"
    assert claim.recovered and claim.run.run_id == recovered.run_id
    pending = c.start_run("run-thread-pending", {"messages": _messages(3)}, queue="default", run_id="run-pending")
    to_cancel = c.start_run("run-thread-cancel", {"n": 1}, queue="default", run_id="run-to-cancel")
    return {"failed": failed.run_id, "completed": done.run_id, "running": running.run_id,
            "pending": pending.run_id, "to_cancel": to_cancel.run_id, "recovered": recovered.run_id}
