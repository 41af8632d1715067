"""CrossLanguageSerializer: the encoding LangGraph Python shares with LangGraph.js through Cairn.

The graph-level test in both directions is client_ts/test/langgraph-crosslang.test.ts (it drives
tests/crosslang/langgraph_peer.py); these check the Python side of the encoding on its own.
"""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from cairn_client.langgraph import CairnSaver
from cairn_client.langgraph_json import CrossLanguageSerializer

serde = CrossLanguageSerializer()


def test_messages_and_plain_values_are_json_with_langchain_js_ids() -> None:
    value = {
        "messages": [
            HumanMessage(content="hi", id="h1"),
            AIMessage(content="", id="a1", tool_calls=[{"name": "f", "args": {"q": 1}, "id": "c1"}]),
            ToolMessage(content="r", tool_call_id="c1", id="t1"),
        ],
        "n": 3, "f": 0.5, "ok": True, "none": None, "list": ["x", {"y": [1]}],
    }
    type_, data = serde.dumps_typed(value)
    assert type_ == "json"
    doc = json.loads(data)
    assert [m["id"] for m in doc["messages"]] == [
        ["langchain_core", "messages", "HumanMessage"],
        ["langchain_core", "messages", "AIMessage"],
        ["langchain_core", "messages", "ToolMessage"],
    ]
    assert doc["messages"][1]["kwargs"]["tool_calls"][0]["args"] == {"q": 1}
    assert serde.loads_typed((type_, data)) == value
    # LangGraph's own serializer reads it as it is.
    assert JsonPlusSerializer().loads_typed((type_, data)) == value


@dataclasses.dataclass
class Order:
    sku: str


@pytest.mark.parametrize(
    "value",
    [
        {"when": datetime.datetime(2026, 1, 1)},
        {"tags": {"a"}},
        {1: "int key"},
        {"big": 2**53},  # beyond JavaScript's exact integers
        {"inf": float("inf")},
        [Order("A-1")],
    ],
    ids=["datetime", "set", "int-key", "big-int", "inf", "dataclass"],
)
def test_values_outside_the_shared_types_go_to_the_fallback_and_come_back_unchanged(value: object) -> None:
    type_, data = serde.dumps_typed(value)
    assert type_ == "msgpack"
    assert serde.loads_typed((type_, data)) == value


def test_tuples_come_back_as_lists_as_from_langgraphs_msgpack() -> None:
    assert serde.dumps_typed({"pair": (1, 2)})[0] == "json"
    assert serde.loads_typed(serde.dumps_typed({"pair": (1, 2)})) == {"pair": [1, 2]}
    assert JsonPlusSerializer().loads_typed(JsonPlusSerializer().dumps_typed({"pair": (1, 2)})) == {"pair": [1, 2]}


def test_none_and_bytes() -> None:
    assert serde.dumps_typed(None) == ("json", b"null")
    assert serde.loads_typed(("json", b"null")) is None
    assert serde.dumps_typed(b"\x00") == ("bytes", b"\x00")


def test_saver_option_wraps_the_serde() -> None:
    saver = CairnSaver("127.0.0.1:1", cross_language=True)
    try:
        assert isinstance(saver.serde, CrossLanguageSerializer)
        assert saver.serde.dumps_typed({"a": 1})[0] == "json"
    finally:
        saver.close()
    plain = CairnSaver("127.0.0.1:1")
    try:
        assert plain.serde.dumps_typed({"a": 1})[0] == "msgpack"
    finally:
        plain.close()


async def test_conformance_with_the_cross_language_encoding(pg_redis_server, capsys) -> None:  # type: ignore[no-untyped-def]
    """LangGraph's conformance suite, FULL, with values written in the shared encoding."""
    from tests.test_langgraph_conformance import run_suite

    await run_suite(
        "CairnSaver (cross_language)", lambda: CairnSaver(pg_redis_server.target, cross_language=True), capsys
    )
