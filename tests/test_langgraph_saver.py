"""Real LangGraph graphs on CairnSaver: interrupt, resume (in a new saver), fork, subgraph namespaces, and
LangGraph's own recovery of a failed parallel step from the pending writes stored in Cairn."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langgraph")

from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from cairn_client import CheckpointClient  # noqa: E402
from cairn_client.langgraph import CairnSaver  # noqa: E402


class Review(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]
    approved: str


def build_review_graph() -> StateGraph:
    def plan(state: Review) -> dict:
        return {"steps": ["plan"]}

    def review(state: Review) -> dict:
        answer = interrupt({"question": "approve the plan?", "seen": list(state["steps"])})
        return {"steps": [f"review:{answer}"], "approved": answer}

    def act(state: Review) -> dict:
        return {"steps": [f"act:{state['approved']}"]}

    g = StateGraph(Review)
    g.add_node("plan", plan)
    g.add_node("review", review)
    g.add_node("act", act)
    g.add_edge(START, "plan")
    g.add_edge("plan", "review")
    g.add_edge("review", "act")
    g.add_edge("act", END)
    return g


def cfg(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}


def test_interrupt_resume_and_fork(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    thread = f"lg-{uuid.uuid4()}"
    with CairnSaver(pg_redis_server.target) as saver:
        graph = build_review_graph().compile(checkpointer=saver)
        out = graph.invoke({"steps": []}, cfg(thread))
        assert out["steps"] == ["plan"]
        [intr] = out["__interrupt__"]
        assert intr.value == {"question": "approve the plan?", "seen": ["plan"]}
        assert graph.get_state(cfg(thread)).next == ("review",)

    # Resume from a fresh saver and graph, as a new worker would.
    with CairnSaver(pg_redis_server.target) as saver:
        graph = build_review_graph().compile(checkpointer=saver)
        out = graph.invoke(Command(resume="yes"), cfg(thread))
        assert out["steps"] == ["plan", "review:yes", "act:yes"]
        assert graph.get_state(cfg(thread)).next == ()
        head_yes = graph.get_state(cfg(thread)).config["configurable"]["checkpoint_id"]

        # Time travel: fork from the checkpoint that waited for the review.
        history = list(graph.get_state_history(cfg(thread)))
        waiting = next(s for s in history if s.next == ("review",))
        fork_config = graph.update_state(waiting.config, {"steps": ["fork"]})
        fork = graph.get_state(fork_config)
        assert fork.parent_config["configurable"]["checkpoint_id"] == waiting.config["configurable"]["checkpoint_id"]
        assert fork.metadata["source"] == "update"
        out = graph.invoke(None, fork_config)
        assert [i.value["seen"] for i in out["__interrupt__"]] == [["plan", "fork"]]
        out = graph.invoke(Command(resume="no"), cfg(thread))
        assert out["steps"] == ["plan", "fork", "review:no", "act:no"]

        # The original branch is intact and still loadable.
        old = graph.get_state({"configurable": {"thread_id": thread, "checkpoint_id": head_yes}})
        assert old.values["steps"] == ["plan", "review:yes", "act:yes"]
        assert len(list(graph.get_state_history(cfg(thread)))) > len(history)
        # Metadata written by LangGraph round-trips with its Python types (step is an int, -1 for the input).
        steps = [s.metadata["step"] for s in history]
        assert all(type(x) is int for x in steps) and min(steps) == -1
        assert [s.metadata["step"] for s in graph.get_state_history(cfg(thread), filter={"step": -1})] == [-1]


async def test_interrupt_resume_and_fork_async(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    thread = f"lg-{uuid.uuid4()}"
    async with CairnSaver(pg_redis_server.target) as saver:
        graph = build_review_graph().compile(checkpointer=saver)
        out = await graph.ainvoke({"steps": []}, cfg(thread))
        assert out["__interrupt__"][0].value["seen"] == ["plan"]
        out = await graph.ainvoke(Command(resume="ok"), cfg(thread))
        assert out["steps"] == ["plan", "review:ok", "act:ok"]
        history = [s async for s in graph.aget_state_history(cfg(thread))]
        waiting = next(s for s in history if s.next == ("review",))
        fork_config = await graph.aupdate_state(waiting.config, {"steps": ["again"]})
        await graph.ainvoke(None, fork_config)
        out = await graph.ainvoke(Command(resume="late"), cfg(thread))
        assert out["steps"] == ["plan", "again", "review:late", "act:late"]


class Fan(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def test_failed_parallel_step_keeps_finished_writes(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    """LangGraph stores the finished branch's writes via put_writes; on retry only the failed branch re-runs."""
    runs: dict[str, int] = {"left": 0, "right": 0}
    fail = {"right": True}

    def left(state: Fan) -> dict:
        runs["left"] += 1
        return {"log": ["left"]}

    def right(state: Fan) -> dict:
        runs["right"] += 1
        if fail["right"]:
            raise RuntimeError("right failed")
        return {"log": ["right"]}

    def join(state: Fan) -> dict:
        return {"log": ["join"]}

    g = StateGraph(Fan)
    g.add_node("left", left)
    g.add_node("right", right)
    g.add_node("join", join)
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    g.add_edge(["left", "right"], "join")
    g.add_edge("join", END)
    thread = f"lg-{uuid.uuid4()}"
    with CairnSaver(pg_redis_server.target) as saver:
        graph = g.compile(checkpointer=saver)
        with pytest.raises(RuntimeError, match="right failed"):
            graph.invoke({"log": []}, cfg(thread), durability="sync")
        tup = saver.get_tuple(cfg(thread))
        assert tup is not None
        channels = [w[1] for w in tup.pending_writes]
        assert "__error__" in channels  # the failure, stored at its special index
        fail["right"] = False
        out = graph.invoke(None, cfg(thread), durability="sync")
    assert sorted(out["log"][:2]) == ["left", "right"] and out["log"][2:] == ["join"]
    assert runs == {"left": 1, "right": 2}


class Outer(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def test_subgraph_uses_namespaces(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    def ask(state: Outer) -> dict:
        return {"log": [f"inner:{interrupt('name?')}"]}

    inner = StateGraph(Outer)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)

    outer = StateGraph(Outer)
    outer.add_node("start", lambda s: {"log": ["outer"]})
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "start")
    outer.add_edge("start", "sub")
    outer.add_edge("sub", END)
    def run(checkpointer: object, thread: str) -> tuple[dict, dict]:
        graph = outer.compile(checkpointer=checkpointer)
        first = graph.invoke({"log": []}, cfg(thread))
        return first, graph.invoke(Command(resume="ada"), cfg(thread))

    thread = f"lg-{uuid.uuid4()}"
    with CairnSaver(pg_redis_server.target) as saver:
        first, out = run(saver, thread)
        namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(cfg(thread))}
        root_only = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(
            {"configurable": {"thread_id": thread, "checkpoint_ns": ""}})}
    assert first["__interrupt__"][0].value == "name?"
    # Same results as LangGraph's reference saver (a subgraph sharing the reducer key re-adds the parent's log).
    ref_first, ref_out = run(InMemorySaver(), "ref")
    assert out == ref_out and out["log"][-1] == "inner:ada"
    assert first["log"] == ref_first["log"]
    assert root_only == {""}
    assert "" in namespaces and any(ns.startswith("sub:") for ns in namespaces), namespaces
    with CheckpointClient(pg_redis_server.target) as raw:
        stored = list(raw.iter_checkpoints(thread))
    assert {c.namespace for c in stored} == namespaces
    assert all(c.state_type == "msgpack" for c in stored)


# -- saver details ---------------------------------------------------------------------------------

from langgraph.checkpoint.base import WRITES_IDX_MAP  # noqa: E402
from langgraph.checkpoint.conformance.test_utils import (  # noqa: E402
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.serde.types import ERROR  # noqa: E402


def test_writes_sent_before_their_checkpoint_are_kept(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    """LangGraph may call put_writes before the (background) put of that checkpoint; Cairn needs the
    checkpoint first, so the saver holds such writes and sends them right after the put."""
    thread = f"lg-{uuid.uuid4()}"
    cp = generate_checkpoint()
    early = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": cp["id"]}}
    with CairnSaver(pg_redis_server.target) as saver:
        saver.put_writes(early, [("ch", "early"), ("other", 1)], "task-1", "path")
        assert saver.get_tuple(generate_config(thread)) is None
        stored = saver.put(generate_config(thread), cp, generate_metadata(), {})
        tup = saver.get_tuple(stored)
    assert tup is not None and tup.pending_writes == [("task-1", "ch", "early"), ("task-1", "other", 1)]


async def test_writes_sent_before_their_checkpoint_are_kept_async(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    thread = f"lg-{uuid.uuid4()}"
    cp = generate_checkpoint()
    early = {"configurable": {"thread_id": thread, "checkpoint_ns": "ns1", "checkpoint_id": cp["id"]}}
    async with CairnSaver(pg_redis_server.target) as saver:
        await saver.aput_writes(early, [("ch", "early")], "task-1")
        stored = await saver.aput(generate_config(thread, checkpoint_ns="ns1"), cp, generate_metadata(), {})
        tup = await saver.aget_tuple(stored)
    assert tup is not None and tup.pending_writes == [("task-1", "ch", "early")]


def test_metadata_round_trips_with_python_types(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    md = generate_metadata(
        source="loop", step=7, score=-3, ratio=0.25, big=2**40, ok=True, nothing=None, text="héllo ✓",
        nested={"a": [1, 2.5, "x", {"b": False}]}, pair=(1, 2),
    )
    with CairnSaver(pg_redis_server.target) as saver:
        stored = saver.put(generate_config(f"lg-{uuid.uuid4()}"), generate_checkpoint(), md, {})
        got = saver.get_tuple(stored).metadata  # type: ignore[union-attr]
        thread = stored["configurable"]["thread_id"]
        by_nested = list(saver.list(cfg(thread), filter={"nested": {"a": [{"b": False}]}, "ok": True}))
        by_float = list(saver.list(cfg(thread), filter={"ratio": 0.25, "big": 2**40}))
    expected = {**md, "pair": [1, 2]}  # JSON has no tuples (LangGraph's SQL savers return lists too)
    assert got == expected
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}
    assert len(by_nested) == len(by_float) == 1


def test_list_without_thread_filters_across_threads(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    run = str(uuid.uuid4())
    with CairnSaver(pg_redis_server.target) as saver:
        for _ in range(2):
            saver.put(generate_config(f"lg-{uuid.uuid4()}"), generate_checkpoint(), generate_metadata(run_id=run), {})
        found = list(saver.list(None, filter={"run_id": run}))
        assert len({t.config["configurable"]["thread_id"] for t in found}) == 2
        assert len(list(saver.list(None, filter={"run_id": run}, limit=1))) == 1


def test_put_upserts_and_regular_writes_are_insert_or_ignore(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    config = generate_config(f"lg-{uuid.uuid4()}")
    cp = generate_checkpoint(channel_values={"v": 1})
    with CairnSaver(pg_redis_server.target) as saver:
        stored = saver.put(config, cp, generate_metadata(step=1), {})
        saver.put(config, {**cp, "channel_values": {"v": 2}}, generate_metadata(step=2), {})  # same id: upsert
        saver.put_writes(stored, [("ch", "first")], "t")
        saver.put_writes(stored, [("ch", "second"), ("new", "n")], "t")  # (t, 0) exists: kept; (t, 1) is new
        saver.put_writes(stored, [(ERROR, "e1")], "t")
        saver.put_writes(stored, [(ERROR, "e2")], "t")  # special channel: replaced
        tup = saver.get_tuple(stored)
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"v": 2} and tup.metadata["step"] == 2
    assert sorted(tup.pending_writes) == [("t", ERROR, "e2"), ("t", "ch", "first"), ("t", "new", "n")]
    assert WRITES_IDX_MAP[ERROR] < 0
