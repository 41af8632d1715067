"""LangGraph Python side of the cross-language LangGraph tests (client_ts/test/langgraph-crosslang.test.ts).

    python3 tests/crosslang/langgraph_peer.py --target HOST:PORT --thread T --say TEXT [--cross-language]
    python3 tests/crosslang/langgraph_peer.py --target HOST:PORT --thread T --approval start|resume [--cross-language]
    python3 tests/crosslang/langgraph_peer.py --values

Runs one turn of the graph below on thread T through CairnSaver, starting from whatever the thread holds
(written by this script or by LangGraph.js's CairnSaver), and prints the thread's messages as one JSON line.
The graph is the same as the TypeScript test's: agent asks a tool about the last human message, the tool
answers, answer replies with the number of messages it saw (so the whole history must have crossed).
With --approval it runs the approval graph instead: "start" stops at the human's interrupt, "resume" answers
it with "yes from python"; it prints the state's log and any interrupt values. With --values it prints, instead, LangGraph's default serialization (type, base64) of sample values, some
with and some without a JavaScript counterpart.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime
import json
import operator
import os
import sys
import uuid
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, Interrupt, interrupt

from cairn_client.langgraph import CairnSaver


def agent(state: MessagesState) -> dict[str, Any]:
    question = state["messages"][-1].content
    call = {"name": "lookup", "args": {"q": question}, "id": f"call-{len(state['messages'])}", "type": "tool_call"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def tool(state: MessagesState) -> dict[str, Any]:
    call = state["messages"][-1].tool_calls[0]
    return {"messages": [ToolMessage(content=f"python tool: {call['args']['q']}", tool_call_id=call["id"])]}


def answer(state: MessagesState) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"python saw {len(state['messages'])} messages")]}


def build(saver: CairnSaver) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tool", tool)
    g.add_node("answer", answer)
    g.add_edge(START, "agent")
    g.add_edge("agent", "tool")
    g.add_edge("tool", "answer")
    g.add_edge("answer", END)
    return g.compile(checkpointer=saver)


class Approval(TypedDict):
    log: Annotated[list[str], operator.add]


def approval_graph(saver: CairnSaver) -> Any:
    """draft -> ask (a human's answer through interrupt) -> done; the TypeScript test builds the same."""
    g = StateGraph(Approval)
    g.add_node("draft", lambda s: {"log": ["draft"]})
    g.add_node("ask", lambda s: {"log": [f"answer: {interrupt({'question': 'publish?'})}"]})
    g.add_node("done", lambda s: {"log": ["done"]})
    g.add_edge(START, "draft")
    g.add_edge("draft", "ask")
    g.add_edge("ask", "done")
    g.add_edge("done", END)
    return g.compile(checkpointer=saver)


def plain(m: BaseMessage) -> dict[str, Any]:
    """The fields both languages compare."""
    out: dict[str, Any] = {"type": m.type, "content": m.content, "id": m.id}
    if isinstance(m, AIMessage):
        out["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in m.tool_calls]
    if isinstance(m, ToolMessage):
        out["tool_call_id"] = m.tool_call_id
    return out


@dataclasses.dataclass
class Order:
    """A Python object with no JavaScript counterpart."""

    sku: str


def sample_values() -> dict[str, Any]:
    return {
        "plain": {"s": "x", "i": 7, "f": 1.5, "b": True, "n": None, "l": [1, "two"]},
        "messages": [HumanMessage(content="hi", id="h1"), AIMessage(content="yo", id="a1")],
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "datetime": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "set": {3},
        "tuple": (1, 2),
        "interrupt": Interrupt(value={"question": "ok?"}, id="i1"),
        "none": None,
        "bytes": b"\x00\x01",
        "dataclass": Order(sku="A-1"),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default=os.environ.get("CAIRN_TARGET"))
    parser.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"))
    parser.add_argument("--thread", required="--values" not in sys.argv)
    parser.add_argument("--say", required="--values" not in sys.argv and "--approval" not in sys.argv)
    parser.add_argument("--cross-language", action="store_true")
    parser.add_argument("--values", action="store_true")
    parser.add_argument("--approval", choices=["start", "resume"])
    if "--values" in sys.argv:
        serde = JsonPlusSerializer()
        dumped = {k: serde.dumps_typed(v) for k, v in sample_values().items()}
        json.dump({k: [t, base64.b64encode(b).decode()] for k, (t, b) in dumped.items()}, sys.stdout)
        print()
        return 0
    args = parser.parse_args()
    if not args.target:
        parser.error("--target (or CAIRN_TARGET) is required")
    with CairnSaver(args.target, token=args.token, cross_language=args.cross_language) as saver:
        if args.approval:
            cfg = {"configurable": {"thread_id": args.thread}}
            arg = {"log": ["start"]} if args.approval == "start" else Command(resume="yes from python")
            state = approval_graph(saver).invoke(arg, cfg)
            interrupts = [i.value for i in state.get("__interrupt__", [])]
            json.dump({"log": state["log"], "interrupts": interrupts}, sys.stdout)
            print()
            return 0
        graph = build(saver)
        out = graph.invoke({"messages": [HumanMessage(content=args.say)]}, {"configurable": {"thread_id": args.thread}})
    json.dump({"messages": [plain(m) for m in out["messages"]]}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
