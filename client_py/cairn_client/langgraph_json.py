"""The encoding LangGraph Python and LangGraph.js share through Cairn.

``CairnSaver(..., cross_language=True)`` serializes checkpoints and writes with
``CrossLanguageSerializer``: serde type ``"json"``, UTF-8 JSON in which a LangChain
message is a LangChain constructor record with its JavaScript id::

    {"lc": 1, "type": "constructor", "id": ["langchain_core", "messages", "HumanMessage"],
     "kwargs": {"content": "hi", "type": "human", "id": "..."}}

That is what LangGraph.js's ``JsonPlusSerializer`` writes and reads, and LangGraph
Python's ``JsonPlusSerializer`` reads it too (langchain_core maps those ids to its
classes), so a thread written by either language continues in the other.

Only values both languages have are written so: dicts with string keys, lists,
(and tuples, read back as lists as from LangGraph's msgpack), strings, booleans,
None, integers within +-(2**53 - 1) (JavaScript's exact range), finite floats, and
LangChain messages. A value holding anything else (a set, a datetime, a dataclass, a pydantic model, ...) is written whole by the
fallback serializer (LangGraph's msgpack by default), which Python reads back as
it was; the TypeScript CairnSaver reads msgpack's messages and plain values, and
refuses, naming the type, the Python objects that have no JavaScript counterpart.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.load.mapping import _JS_SERIALIZABLE_MAPPING
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

__all__ = ["CrossLanguageSerializer"]

_MAX_SAFE_INTEGER = 2**53 - 1


class _NotShared(Exception):
    """The value holds something outside the shared types."""


def _shared(obj: Any) -> Any:
    """``obj`` as JSON-ready values of the shared types; raises ``_NotShared`` otherwise."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        if abs(obj) > _MAX_SAFE_INTEGER:
            raise _NotShared
        return obj
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise _NotShared
        return obj
    if type(obj) is dict:
        if not all(type(k) is str for k in obj):
            raise _NotShared
        return {k: _shared(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):  # a tuple comes back a list, as from LangGraph's msgpack
        return [_shared(v) for v in obj]
    if isinstance(obj, BaseMessage):
        js_id = ("langchain_core", "messages", type(obj).__name__)
        if js_id not in _JS_SERIALIZABLE_MAPPING or not type(obj).__module__.startswith("langchain_core.messages"):
            raise _NotShared
        return {"lc": 1, "type": "constructor", "id": list(js_id), "kwargs": _shared(obj.to_json()["kwargs"])}
    raise _NotShared


class CrossLanguageSerializer(SerializerProtocol):
    """Writes values of the shared types as ``"json"`` (see the module docstring), anything else with
    ``fallback``; reads whatever ``fallback`` reads ("json" and "msgpack" for LangGraph's default).

    Args:
        fallback: serializer for the values outside the shared types, and for reading
            (default LangGraph's ``JsonPlusSerializer``).
    """

    def __init__(self, fallback: SerializerProtocol | None = None) -> None:
        self.fallback = fallback if fallback is not None else JsonPlusSerializer()

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """("json", bytes) for a value of the shared types, else the fallback's encoding."""
        try:
            shared = _shared(obj)
        except _NotShared:
            return self.fallback.dumps_typed(obj)
        return "json", json.dumps(shared, ensure_ascii=False, separators=(",", ":")).encode()

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """The value ``dumps_typed`` (or LangGraph.js's serializer) wrote."""
        return self.fallback.loads_typed(data)
