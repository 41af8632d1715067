"""The Python client's save path: its JSON encoding (cairn_client._json), where orjson and the standard-library
fallback agree, and when it compresses a state (StateWire).

Both paths run in every test: `dumps` (orjson, installed by the test extras) and `dumps_stdlib` (what a client
without `cairn-checkpoint[fast]` uses).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import os
import subprocess
import sys
import uuid
from collections import OrderedDict

import pytest
import zstandard
from google.protobuf import json_format, struct_pb2

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn_client import _json
from cairn_client._shared import MAX_EXACT_INT, StateWire, encode_state, from_struct, save_request
from cairn_tools.bench.states import agent_states

PATHS = [pytest.param(_json.dumps, id="orjson"), pytest.param(_json.dumps_stdlib, id="stdlib")]
STATES = [json.loads(s) for s in agent_states(8, seed=11).states]


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int


def test_orjson_is_the_fast_path_here() -> None:
    assert _json.FAST and _json.dumps is not _json.dumps_stdlib


def test_without_orjson_the_client_saves_through_the_standard_library() -> None:
    """What a client installed without the [fast] extra runs: the import fails, `dumps` is the fallback."""
    code = (
        "import sys; sys.modules['orjson'] = None\n"  # makes `import orjson` raise ImportError
        "from cairn_client import _json, _shared\n"
        "assert not _json.FAST and _json.dumps is _json.dumps_stdlib\n"
        "print(_shared.save_request('t', {'a': [1, 'é']}).checkpoint.state.decode())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == '{"a":[1,"é"]}\n'


@pytest.mark.parametrize("dumps", PATHS)
def test_agent_states_encode_to_the_bytes_json_dumps_gives(dumps) -> None:  # type: ignore[no-untyped-def]
    for state in STATES:
        assert dumps(state) == json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()


VALUES = [
    {"text": "héllo ✓ \u2028 \U0001f600", "n": -0.0, "big": 2**63 - 1, "t": (1, [2, None]), "f": 1.5},
    OrderedDict(b=1, a=2),
    {"id": uuid.UUID(int=7), "colour": Colour.RED, "level": Level.HIGH},
    2**70,  # beyond orjson's 64 bits: the standard library encodes it
    {1: "int key", None: "null key", True: "bool key"},  # non-string keys: as json.dumps writes them
    {"e": 1e16, "small": 1.5e-7, "deep": [[[[{"x": []}]]]]},
    [[] for _ in range(3)] + [[[0]] * 2],
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_both_paths_encode_the_same_value(value: object) -> None:
    fast, plain = _json.dumps(value), _json.dumps_stdlib(value)
    assert json.loads(fast) == json.loads(plain)
    assert json.loads(plain) == json.loads(json.dumps(value, default=_json._stdlib_default))


@pytest.mark.parametrize("dumps", PATHS)
@pytest.mark.parametrize("value", [datetime.datetime(2026, 1, 1), Point(1), {1, 2}, b"bytes", object()],
                         ids=["datetime", "dataclass", "set", "bytes", "object"])
def test_both_paths_refuse_what_is_not_json_with_the_same_error(dumps, value: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="is not JSON serializable"):
        dumps({"v": value})


@pytest.mark.parametrize("dumps", PATHS)
def test_a_cycle_is_a_value_error_on_both_paths(dumps) -> None:  # type: ignore[no-untyped-def]
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(loop)


def test_non_finite_floats_are_the_documented_difference() -> None:
    assert _json.dumps([math.nan, math.inf]) == b"[null,null]"
    assert _json.dumps_stdlib([math.nan, math.inf]) == b"[NaN,Infinity]"


def test_a_lone_surrogate_is_refused_on_both_paths() -> None:
    for dumps in (_json.dumps, _json.dumps_stdlib):
        with pytest.raises(UnicodeEncodeError):
            dumps({"s": "\ud800"})


def test_save_request_carries_the_encoded_state_and_metadata() -> None:
    req = save_request("t", STATES[0], metadata={"step": 3, "tags": ("a", "b")}, next_nodes=("n1",))
    assert req.checkpoint.state == _json.dumps(STATES[0]) and req.checkpoint.state_type == "json"
    assert dict(req.checkpoint.metadata) == {"step": 3.0, "tags": ["a", "b"]}
    assert list(req.checkpoint.next_nodes) == ["n1"] and len(req.checkpoint.checkpoint_id) == 36
    assert req.checkpoint.HasField("metadata")  # an empty Struct, as before, when there is none
    assert save_request("t", {}).checkpoint.HasField("metadata")
    with pytest.raises(ValueError, match="beyond"):
        save_request("t", {}, metadata={"deep": [{"n": 2**60}]})
    assert encode_state(b"raw", None) == (b"raw", "json")


def _accepting_wire() -> StateWire:
    wire = StateWire(True)
    wire.saved(pb.SaveResponse(accepted_state_encodings=[pb.STATE_ENCODING_ZSTD]))
    return wire


def test_the_client_compresses_at_zstd_level_1_in_place_when_it_built_the_request() -> None:
    wire, raw = _accepting_wire(), _json.dumps(STATES[0])
    req = save_request("t", STATES[0])
    out = wire.outgoing(req, owned=True)
    assert out is req and out.checkpoint.state_encoding == pb.STATE_ENCODING_ZSTD
    assert out.checkpoint.state == zstandard.ZstdCompressor(level=1).compress(raw)
    assert zstandard.ZstdDecompressor().decompress(out.checkpoint.state) == raw
    theirs = save_request("t", STATES[0])
    copy = wire.outgoing(theirs)
    assert copy is not theirs and theirs.checkpoint.state == raw and copy.checkpoint.state == out.checkpoint.state


def test_a_state_type_that_does_not_compress_goes_as_it_is_for_a_while() -> None:
    wire, noise = _accepting_wire(), os.urandom(4096)
    sealed = save_request("t", noise, state_type="msgpack+aes")
    assert wire.outgoing(sealed, owned=True).checkpoint.state_encoding == 0  # tried: the frame is not smaller
    other = save_request("t", STATES[0])
    assert wire.outgoing(other).checkpoint.state_encoding == pb.STATE_ENCODING_ZSTD  # other types still compress
    for _ in range(StateWire.SKIP_SAVES):
        assert wire.outgoing(save_request("t", _json.dumps(STATES[1]), state_type="msgpack+aes")).checkpoint.state_encoding == 0
    again = wire.outgoing(save_request("t", _json.dumps(STATES[1]), state_type="msgpack+aes"))
    assert again.checkpoint.state_encoding == pb.STATE_ENCODING_ZSTD  # tried again, and it pays now


def test_what_is_remembered_about_state_types_is_bounded() -> None:
    wire = _accepting_wire()
    for i in range(StateWire.MAX_SKIPPED_TYPES * 3):
        wire.outgoing(save_request("t", os.urandom(512), state_type=f"type-{i}"), owned=True)
    assert len(wire._skip) <= StateWire.MAX_SKIPPED_TYPES


def _plain(value: object) -> object:
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_INT:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _typed(value: object) -> object:
    """`value` with the type of every leaf, so that 1 and 1.0 differ."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value), value)


@pytest.mark.parametrize("metadata", [
    {"source": "loop", "step": 3, "bench": True, "parents": {}, "writes": None},
    {"a": [1, 2.5, {"b": [None, True, "x", [0.0, -7]]}], "big": 2.0**60, "edge": float(MAX_EXACT_INT), "z": -0.0},
    {"l": [], "s": "é ✓", "tiny": 1e-300},
], ids=range(3))
def test_metadata_reads_back_as_json_format_reads_it_with_ints_for_integral_numbers(metadata: dict) -> None:
    s = struct_pb2.Struct()
    s.update(metadata)
    got, want = from_struct(s), _plain(json_format.MessageToDict(s))
    assert _typed(got) == _typed(want) and list(got) == list(want)


def test_a_non_finite_number_in_metadata_is_refused_on_reading_as_json_format_does() -> None:
    s = struct_pb2.Struct()
    s.update({"n": math.nan})
    with pytest.raises(ValueError, match="Value.number_value"):
        from_struct(s)
