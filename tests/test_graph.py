"""cairn_client.graph against a real Cairn server (Postgres + Redis): steps, checkpoints, concurrency,
resume, failures, human in the loop, time travel, retries, retention, background saving, compare-and-set."""

from __future__ import annotations

import asyncio
import json
import operator
import threading
import uuid
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest

from cairn_client import CheckpointClient, Conflict
from cairn_client.graph import (
    END,
    START,
    Command,
    GraphRecursionError,
    InvalidUpdateError,
    RetryPolicy,
    StateGraph,
    interrupt,
)


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    count: int
    note: str


@pytest.fixture
def client(pg_redis_server):  # type: ignore[no-untyped-def]
    with CheckpointClient(pg_redis_server.target) as c:
        yield c


@pytest.fixture
def thread() -> str:
    return f"g-{uuid.uuid4()}"


def step(name: str, **extra: Any) -> Any:
    return lambda s: {"log": [name], **extra}


def chain(*names: str, schema: Any = State) -> StateGraph:
    g = StateGraph(schema)
    for n in names:
        g.add_node(n, step(n))
    g.add_edge(START, names[0])
    for a, b in zip(names, names[1:]):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g


def history(client: CheckpointClient, thread: str) -> list:
    return list(client.iter_checkpoints(thread, include_state=True, include_writes=True))


# -- steps and checkpoints ------------------------------------------------------------------------


def test_every_step_is_a_json_checkpoint_with_parent_node_and_next(client, thread) -> None:  # type: ignore[no-untyped-def]
    app = chain("a", "b", "c").compile(checkpointer=client, name="chain")
    out = app.invoke({"log": ["in"], "count": 1}, thread_id=thread)
    assert out == {"log": ["in", "a", "b", "c"], "count": 1}
    cps = history(client, thread)[::-1]  # oldest first
    assert [c.node_name for c in cps] == ["__start__", "a", "b", "c"]
    assert [c.next_nodes for c in cps] == [["a"], ["b"], ["c"], []]
    assert [c.metadata["step"] for c in cps] == [-1, 0, 1, 2]
    assert [c.metadata["status"] for c in cps] == ["running", "running", "running", "completed"]
    assert [c.metadata["source"] for c in cps] == ["input", "loop", "loop", "loop"]
    assert {c.metadata["graph"] for c in cps} == {"chain"}
    assert len({c.metadata["run_id"] for c in cps}) == 1
    assert [c.parent_checkpoint_id for c in cps] == [""] + [c.checkpoint_id for c in cps[:-1]]
    assert all(c.state_type == "json" for c in cps)
    assert json.loads(cps[-1].state) == out  # plain JSON: any language can read it
    snap = app.get_state(thread)
    assert (snap.values, snap.next, snap.status, snap.checkpoint_id) == (out, (), "completed", cps[-1].checkpoint_id)


def test_reducers_conditional_edges_and_a_second_input(client, thread) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("inc", lambda s: {"count": s.get("count", 0) + 1, "log": [f"inc{s.get('count', 0) + 1}"]})
    g.add_node("done", step("done"))
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "again" if s["count"] < 3 else "stop", {"again": "inc", "stop": "done"})
    g.add_edge("done", END)
    app = g.compile(checkpointer=client)
    assert app.invoke({"log": []}, thread_id=thread) == {"log": ["inc1", "inc2", "inc3", "done"], "count": 3}
    # A new input on the same thread is merged into its state with the reducers (like a chat turn).
    out = app.invoke({"log": ["turn2"], "count": 0}, thread_id=thread)
    assert out["log"] == ["inc1", "inc2", "inc3", "done", "turn2", "inc1", "inc2", "inc3", "done"]


def test_nodes_of_one_step_run_concurrently_sync_and_async(client, thread) -> None:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(3, timeout=30)  # breaks (and fails the run) unless all three are in flight

    def sync_node(name: str) -> Any:
        def run(s: State) -> dict:
            barrier.wait()
            return {"log": [name]}
        return run

    async def async_node(s: State) -> dict:
        await asyncio.sleep(0)
        barrier.wait()
        return {"log": ["c"]}

    g = StateGraph(State)
    g.add_node("a", sync_node("a"))
    g.add_node("b", sync_node("b"))
    g.add_node("c", async_node)
    g.add_node("join", step("join"))
    for n in "abc":
        g.add_edge(START, n)
    g.add_edge(["a", "b", "c"], "join")
    app = g.compile(checkpointer=client)
    out = app.invoke({"log": []}, thread_id=thread)
    assert out["log"] == ["a", "b", "c", "join"]  # merged in `next` order, whatever finished first
    assert [c.node_name for c in history(client, thread)] == ["join", "a,b,c", "__start__"]


def test_join_waits_for_branches_of_different_lengths(client, thread) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    for n in ["short", "long1", "long2", "join"]:
        g.add_node(n, step(n))
    g.add_edge(START, "short")
    g.add_edge(START, "long1")
    g.add_edge("long1", "long2")
    g.add_edge(["short", "long2"], "join")
    app = g.compile(checkpointer=client)
    assert app.invoke({"log": []}, thread_id=thread)["log"] == ["short", "long1", "long2", "join"]


def test_stream_updates_and_values(client) -> None:  # type: ignore[no-untyped-def]
    app = chain("a", "b").compile(checkpointer=client)
    t1, t2 = f"g-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    assert list(app.stream({"log": []}, thread_id=t1)) == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]
    assert list(app.stream({"log": []}, thread_id=t2, stream_mode="values")) == [
        {"log": []}, {"log": ["a"]}, {"log": ["a", "b"]},
    ]


async def test_ainvoke_and_astream(client, thread) -> None:  # type: ignore[no-untyped-def]
    async def a(s: State) -> dict:
        await asyncio.sleep(0)
        return {"log": ["a"]}

    g = StateGraph(State)
    g.add_node("a", a)
    g.add_edge(START, "a")
    app = g.compile(checkpointer=client)
    assert await app.ainvoke({"log": []}, thread_id=thread) == {"log": ["a"]}
    chunks = [c async for c in app.astream({"log": []}, thread_id=f"g-{uuid.uuid4()}")]
    assert chunks == [{"a": {"log": ["a"]}}]


def test_resuming_a_completed_thread_runs_nothing(client, thread) -> None:  # type: ignore[no-untyped-def]
    app = chain("a").compile(checkpointer=client)
    out = app.invoke({"log": []}, thread_id=thread)
    n = len(history(client, thread))
    assert app.invoke(None, thread_id=thread) == out
    assert len(history(client, thread)) == n
    with pytest.raises(ValueError, match="no checkpoint to resume"):
        app.invoke(None, thread_id=f"g-{uuid.uuid4()}")


# -- failures --------------------------------------------------------------------------------------


def test_failed_parallel_step_keeps_finished_writes_and_status(client, thread) -> None:  # type: ignore[no-untyped-def]
    runs: Counter[str] = Counter()
    broken = {"bad": True}

    def good(s: State) -> dict:
        runs["good"] += 1
        return {"log": ["good"]}

    def bad(s: State) -> dict:
        runs["bad"] += 1
        if broken["bad"]:
            raise KeyError("missing input")
        return {"log": ["bad"]}

    g = StateGraph(State)
    g.add_node("good", good)
    g.add_node("bad", bad)
    g.add_node("after", step("after"))
    g.add_edge(START, "good")
    g.add_edge(START, "bad")
    g.add_edge(["good", "bad"], "after")
    name = f"failing-{uuid.uuid4()}"
    app = g.compile(checkpointer=client, name=name)
    with pytest.raises(KeyError, match="missing input"):
        app.invoke({"log": []}, thread_id=thread)
    snap = app.get_state(thread)
    assert snap.status == "failed"
    assert snap.metadata["error"] == {"node": "bad", "type": "KeyError", "message": "'missing input'", "attempts": 1}
    assert snap.next == ("good", "bad") and snap.pending_writes == {"good": {"log": ["good"]}}
    assert [t.thread_id for t in app.list_threads(status="failed")] == [thread]
    assert [t.thread_id for t in client.iter_threads(metadata_filter={"status": "failed", "graph": name})] == [thread]

    broken["bad"] = False
    assert app.invoke(None, thread_id=thread) == {"log": ["good", "bad", "after"]}
    assert runs == {"good": 1, "bad": 2}  # good's write was kept; it did not run again
    assert app.get_state(thread).status == "completed"
    assert list(app.list_threads(status="failed")) == []
    assert [t.thread_id for t in app.list_threads(status="completed")] == [thread]


def test_bad_updates_fail_the_run(client) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("typo", lambda s: {"lgo": ["x"]})
    g.add_edge(START, "typo")
    app = g.compile(checkpointer=client)
    t = f"g-{uuid.uuid4()}"
    with pytest.raises(InvalidUpdateError, match="lgo"):
        app.invoke({"log": []}, thread_id=t)
    assert app.get_state(t).status == "failed"

    g = StateGraph(State)
    g.add_node("obj", lambda s: {"note": object()})
    g.add_edge(START, "obj")
    app = g.compile(checkpointer=client)
    t = f"g-{uuid.uuid4()}"
    with pytest.raises(TypeError, match="JSON"):
        app.invoke({"log": []}, thread_id=t)
    assert app.get_state(t).metadata["error"]["type"] == "TypeError"


def test_recursion_limit(client, thread) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("spin", step("spin"))
    g.add_edge(START, "spin")
    g.add_edge("spin", "spin")
    app = g.compile(checkpointer=client, recursion_limit=5)
    with pytest.raises(GraphRecursionError):
        app.invoke({"log": []}, thread_id=thread)
    snap = app.get_state(thread)
    assert snap.status == "failed" and len(snap.values["log"]) == 5 and snap.next == ("spin",)


def test_compile_checks_the_graph(client) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("a", step("a"))
    with pytest.raises(ValueError, match="entry point"):
        g.compile(checkpointer=client)
    g.add_edge(START, "a")
    g.add_edge("a", "nowhere")
    with pytest.raises(ValueError, match="nowhere"):
        g.compile(checkpointer=client)
    with pytest.raises(ValueError, match="reserved"):
        StateGraph(State).add_node(END, step("x"))


# -- retries ---------------------------------------------------------------------------------------


def test_retry_policy_records_attempts(client, thread) -> None:  # type: ignore[no-untyped-def]
    calls: Counter[str] = Counter()

    def flaky(s: State) -> dict:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionError(f"try {calls['flaky']}")
        return {"log": ["flaky"]}

    g = StateGraph(State)
    g.add_node("flaky", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0, jitter=False))
    g.add_edge(START, "flaky")
    app = g.compile(checkpointer=client)
    assert app.invoke({"log": []}, thread_id=thread) == {"log": ["flaky"]}
    md = app.get_state(thread).metadata
    assert md["attempts"] == {"flaky": 3}
    assert md["attempt_errors"] == {"flaky": ["ConnectionError: try 1", "ConnectionError: try 2"]}


def test_retry_gives_up_and_non_retryable_errors_fail_at_once(client) -> None:  # type: ignore[no-untyped-def]
    calls: Counter[str] = Counter()

    def always(s: State) -> dict:
        calls["always"] += 1
        raise TimeoutError("slow")

    def wrong(s: State) -> dict:
        calls["wrong"] += 1
        raise ValueError("bad input")

    fast = RetryPolicy(max_attempts=4, initial_interval=0.001, backoff_factor=2, max_interval=0.01, jitter=False)
    for name, fn, exc in [("always", always, ConnectionError), ("wrong", wrong, ValueError)]:
        g = StateGraph(State)
        g.add_node(name, fn, retry=RetryPolicy(**{**fast.__dict__, "retry_on": (TimeoutError,)}))
        g.add_edge(START, name)
        t = f"g-{uuid.uuid4()}"
        with pytest.raises(TimeoutError if name == "always" else ValueError):
            g.compile(checkpointer=client).invoke({"log": []}, thread_id=t)
        md = client.load(t).metadata
        assert md["status"] == "failed"
        assert md["attempts"] == {name: calls[name]}
        assert md["error"]["attempts"] == calls[name]
    assert calls == {"always": 4, "wrong": 1}
    # The default policy does not retry programming errors, and does retry connection errors.
    assert not RetryPolicy().should_retry(ValueError(), 1) and RetryPolicy().should_retry(ConnectionError(), 1)
    assert RetryPolicy(retry_on=lambda e: "again" in str(e)).should_retry(Exception("again"), 1)
    assert RetryPolicy(initial_interval=1, backoff_factor=3, max_interval=5, jitter=False).delay(3) == 5


# -- human in the loop -----------------------------------------------------------------------------


def test_interrupt_inside_a_node_and_resume_with_values(client, thread) -> None:  # type: ignore[no-untyped-def]
    runs: Counter[str] = Counter()

    def ask(s: State) -> dict:
        runs["ask"] += 1
        name = interrupt({"question": "name?"})
        age = interrupt({"question": "age?"})
        return {"note": f"{name}/{age}"}

    g = StateGraph(State)
    g.add_node("ask", ask)
    g.add_node("after", step("after"))
    g.add_edge(START, "ask")
    g.add_edge("ask", "after")
    app = g.compile(checkpointer=client)
    out = app.invoke({"log": []}, thread_id=thread)
    [intr] = out["__interrupt__"]
    assert (intr.node, intr.value, intr.when, intr.id) == ("ask", {"question": "name?"}, "during", "ask#0")
    snap = app.get_state(thread)
    assert snap.status == "interrupted" and snap.next == ("ask",) and snap.interrupts == (intr,)

    # A different process/app resumes: the resume value is stored on the checkpoint first.
    with CheckpointClient(client.target) as other:
        app2 = g.compile(checkpointer=other)
        out = app2.invoke(Command(resume="Ada"), thread_id=thread)
        assert out["__interrupt__"][0].value == {"question": "age?"}
        assert app2.invoke(Command(resume=36), thread_id=thread) == {"log": ["after"], "note": "Ada/36"}
    assert runs["ask"] == 3
    with pytest.raises(ValueError, match="no interrupt"):
        app.invoke(Command(resume="late"), thread_id=thread)


def test_parallel_interrupts_resume_by_id(client, thread) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("left", lambda s: {"log": [f"left:{interrupt('l?')}"]})
    g.add_node("right", lambda s: {"log": [f"right:{interrupt('r?')}"]})
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    app = g.compile(checkpointer=client)
    out = app.invoke({"log": []}, thread_id=thread)
    assert sorted(i.id for i in out["__interrupt__"]) == ["left#0", "right#0"]
    out = app.invoke(Command(resume={"left#0": "L", "right#0": "R"}), thread_id=thread)
    assert out == {"log": ["left:L", "right:R"]}


def test_interrupt_before_and_after_with_state_update(client, thread) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("draft", lambda s: {"note": "draft v1", "log": ["draft"]})
    g.add_node("send", lambda s: {"log": [f"sent:{s['note']}"]})
    g.add_node("archive", step("archive"))
    g.add_edge(START, "draft")
    g.add_edge("draft", "send")
    g.add_edge("send", "archive")
    app = g.compile(checkpointer=client, interrupt_before=["send"], interrupt_after=["send"])
    out = app.invoke({"log": []}, thread_id=thread)
    assert [(i.node, i.when) for i in out["__interrupt__"]] == [("send", "before")]
    assert app.get_state(thread).next == ("send",)

    # Resume with a state update: a human edits the draft, then the run continues without pausing again.
    app.update_state(thread, {"note": "draft v2"})
    snap = app.get_state(thread)
    assert snap.values["note"] == "draft v2" and snap.next == ("send",) and snap.metadata["source"] == "update"
    out = app.invoke(None, thread_id=thread)
    assert [(i.node, i.when) for i in out["__interrupt__"]] == [("send", "after")]
    assert out["log"] == ["draft", "sent:draft v2"]
    assert app.invoke(None, thread_id=thread)["log"] == ["draft", "sent:draft v2", "archive"]


def test_command_with_update_and_resume(client, thread) -> None:  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("review", lambda s: {"log": [f"{s['note']}:{interrupt('ok?')}"]})
    g.add_edge(START, "review")
    app = g.compile(checkpointer=client)
    app.invoke({"note": "v1"}, thread_id=thread)
    assert app.invoke(Command(resume="yes", update={"note": "v2"}), thread_id=thread)["log"] == ["v2:yes"]


def test_update_state_as_node(client, thread) -> None:  # type: ignore[no-untyped-def]
    app = chain("a", "b", "c").compile(checkpointer=client, interrupt_before=["b"])
    app.invoke({"log": []}, thread_id=thread)
    # Pretend b ran, with this output: the run continues after b.
    app.update_state(thread, {"log": ["b-by-hand"]}, as_node="b")
    assert app.get_state(thread).next == ("c",)
    assert app.invoke(None, thread_id=thread)["log"] == ["a", "b-by-hand", "c"]
    with pytest.raises(ValueError, match="not a node"):
        app.update_state(thread, {}, as_node="zzz")


# -- time travel -----------------------------------------------------------------------------------


def test_time_travel_forks_from_an_old_checkpoint(client, thread) -> None:  # type: ignore[no-untyped-def]
    app = chain("a", "b", "c").compile(checkpointer=client)
    first = app.invoke({"log": []}, thread_id=thread)
    snaps = list(app.get_state_history(thread))
    old = next(s for s in snaps if s.next == ("b",))
    out = app.invoke(None, thread_id=thread, checkpoint_id=old.checkpoint_id)
    assert out == first  # replayed from after a
    head = app.get_state(thread)
    # Walk the new branch back to the old checkpoint.
    cp, seen = client.load(thread), []
    while cp.checkpoint_id != old.checkpoint_id:
        seen.append(cp)
        cp = client.load(thread, checkpoint_id=cp.parent_checkpoint_id)
    assert seen[-1].metadata["source"] == "fork" and seen[-1].metadata["forked_from"] == old.checkpoint_id
    assert head.checkpoint_id == seen[0].checkpoint_id
    # The original branch is still there.
    assert app.get_state(thread, snaps[0].checkpoint_id).values == first
    assert len(list(app.get_state_history(thread))) == len(snaps) + 3  # fork copy + b + c

    # Fork with changed state: update an old checkpoint, then run from it.
    fork_id = app.update_state(thread, {"log": ["edited"]}, checkpoint_id=old.checkpoint_id)
    assert app.get_state(thread, fork_id).parent_checkpoint_id == old.checkpoint_id
    assert app.invoke(None, thread_id=thread)["log"] == ["a", "edited", "b", "c"]


def test_history_pages_limit_and_filter(client, thread) -> None:  # type: ignore[no-untyped-def]
    app = chain("a", "b", "c", "d", "e").compile(checkpointer=client)
    app.invoke({"log": []}, thread_id=thread)
    full = list(app.get_state_history(thread, page_size=2))
    assert [s.node_name for s in full] == ["e", "d", "c", "b", "a", "__start__"]
    assert [s.checkpoint_id for s in app.get_state_history(thread, limit=3, page_size=2)] == [
        s.checkpoint_id for s in full[:3]]
    assert [s.node_name for s in app.get_state_history(thread, filter={"source": "input"})] == ["__start__"]
    assert [s.node_name for s in app.get_state_history(thread, before=full[3].checkpoint_id)] == ["a", "__start__"]


# -- retention -------------------------------------------------------------------------------------


def test_max_checkpoints_keeps_the_head_chain(client, thread) -> None:  # type: ignore[no-untyped-def]
    app = chain("a", "b", "c", "d", "e", "f").compile(checkpointer=client, max_checkpoints=3, interrupt_before=["e"])
    app.invoke({"log": []}, thread_id=thread)
    kept = history(client, thread)
    assert len(kept) == 3
    assert [c.parent_checkpoint_id for c in kept[:-1]] == [c.checkpoint_id for c in kept[1:]]
    assert app.invoke(None, thread_id=thread)["log"] == ["a", "b", "c", "d", "e", "f"]
    kept = history(client, thread)
    assert [c.node_name for c in kept] == ["f", "e", "d"]
    assert [c.parent_checkpoint_id for c in kept[:-1]] == [c.checkpoint_id for c in kept[1:]]


# -- durability and concurrency --------------------------------------------------------------------


def test_background_saving_keeps_order(client, thread) -> None:  # type: ignore[no-untyped-def]
    g = chain("a", "b", "c", "d")
    ref_thread = f"g-{uuid.uuid4()}"
    ref = g.compile(checkpointer=client).invoke({"log": []}, thread_id=ref_thread)
    out = g.compile(checkpointer=client, durability="async").invoke({"log": []}, thread_id=thread)
    assert out == ref
    cps = history(client, thread)
    assert [c.node_name for c in cps] == [c.node_name for c in history(client, ref_thread)]
    assert [c.parent_checkpoint_id for c in cps[:-1]] == [c.checkpoint_id for c in cps[1:]]
    assert json.loads(cps[0].state) == out and cps[0].metadata["status"] == "completed"


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_a_lost_compare_and_set_stops_the_run(client, durability) -> None:  # type: ignore[no-untyped-def]
    """Someone else moves the thread's head mid-run: the run's next save fails instead of forking."""
    thread = f"g-{uuid.uuid4()}"
    intruder: dict[str, str] = {}
    ran: list[str] = []

    def meddle(s: State) -> dict:
        # No compare-and-set here: in "async" mode the run's own input checkpoint may not have landed yet;
        # either way the run's next save finds a head it did not expect.
        intruder["id"] = client.save(thread, b'{"log":["other"]}', metadata={"by": "other"}).checkpoint_id
        return {"log": ["meddle"]}

    g = StateGraph(State)
    g.add_node("meddle", meddle)
    for n in ["x", "y"]:
        g.add_node(n, lambda s, n=n: ran.append(n) or {"log": [n]})
    g.add_edge(START, "meddle")
    g.add_edge("meddle", "x")
    g.add_edge("x", "y")
    app = g.compile(checkpointer=client, durability=durability)
    with pytest.raises(Conflict) as err:
        app.invoke({"log": []}, thread_id=thread)
    assert err.value.current_head_id == intruder["id"]
    assert client.load(thread).checkpoint_id == intruder["id"]  # nothing of ours landed after it
    if durability == "sync":
        assert ran == []


def test_two_workers_cannot_fork_a_thread(client, thread) -> None:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(2, timeout=30)
    state = {"first": True}

    def work(s: State) -> dict:
        if not state["first"]:
            barrier.wait()  # both workers are inside the node before either saves
        return {"log": ["work"]}

    g = StateGraph(State)
    g.add_node("work", work)
    g.add_node("next", step("next"))
    g.add_edge(START, "work")
    g.add_edge("work", "next")
    app = g.compile(checkpointer=client, interrupt_before=["work"])
    app.invoke({"log": []}, thread_id=thread)
    head = client.load(thread).checkpoint_id
    state["first"] = False
    outcomes: list[object] = []

    def worker() -> None:
        with CheckpointClient(client.target) as own:
            try:
                outcomes.append(g.compile(checkpointer=own, interrupt_before=["work"]).invoke(None, thread_id=thread))
            except Conflict as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the loser's save found the head moved: HeadMoved, the Conflict (ABORTED) that names HEAD_MOVED
    assert sorted(type(o).__name__ for o in outcomes) == ["HeadMoved", "dict"]
    assert any(isinstance(o, Conflict) and o.reason == "HEAD_MOVED" for o in outcomes)
    children = [c for c in history(client, thread) if c.parent_checkpoint_id == head]
    assert len(children) == 1  # one branch only
