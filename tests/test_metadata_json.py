"""Save metadata becomes canonical JSON written straight from the Struct (validation._struct_json): the same
text json.dumps(sort_keys=True, separators=(",", ":")) writes for json_format.MessageToDict, which it replaced
for speed (both ran on every save), with the same depth and NaN refusals."""

from __future__ import annotations

import json
import math
import random

import pytest
from google.protobuf import json_format, struct_pb2

from cairn.errors import InvalidArgument
from cairn_server.config import Config
from cairn_server.validation import Limits

STRINGS = ["", "a", "step", "ünïcødé", "日本語", "quote\"back\\slash", "tab\tnl\n", "emoji 🙂", "\u2028", "x" * 50]


def _value(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(7 if depth < 5 else 4)
    if kind == 0:
        return rng.choice(STRINGS)
    if kind == 1:
        return rng.choice([0, 1, -1, 3, 2.5, -0.0, 1e300, 1e-300, 123456789012345, rng.uniform(-1e6, 1e6)])
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return None
    if kind in (4, 5):
        return {rng.choice(STRINGS) + str(i): _value(rng, depth + 1) for i in range(rng.randrange(4))}
    return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def _reference(struct: struct_pb2.Struct) -> str:
    return json.dumps(json_format.MessageToDict(struct), sort_keys=True, separators=(",", ":"), allow_nan=False)


def test_the_text_is_what_message_to_dict_and_json_dumps_wrote() -> None:
    rng = random.Random(7)
    limits = Limits(Config(max_metadata_depth=64, max_metadata_bytes=1 << 20))
    for _ in range(2000):
        struct = struct_pb2.Struct()
        struct.update({f"k{i}{rng.choice(STRINGS)}": _value(rng, 1) for i in range(rng.randrange(6))})
        assert limits.metadata("metadata", struct) == _reference(struct)


def test_a_value_without_a_kind_is_null() -> None:
    struct = struct_pb2.Struct()
    struct.fields["unset"].Clear()
    assert Limits(Config()).metadata("metadata", struct) == _reference(struct) == '{"unset":null}'


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_invalid_arguments(number: float) -> None:
    struct = struct_pb2.Struct()
    struct.update({"bad": [1, {"x": number}]})
    with pytest.raises(InvalidArgument, match="checkpoint.metadata is not valid JSON"):
        Limits(Config()).metadata("checkpoint.metadata", struct)


@pytest.mark.parametrize("shape, depth", [({}, 1), ({"a": 1}, 1), ({"a": []}, 2), ({"a": {"b": [1, [2]]}}, 4),
                                          ({"a": [[[]]]}, 4)])
def test_depth_counts_every_object_and_list(shape: dict, depth: int) -> None:
    struct = struct_pb2.Struct()
    struct.update(shape)
    assert Limits(Config(max_metadata_depth=depth)).metadata("m", struct) == _reference(struct)
    with pytest.raises(InvalidArgument, match=f"nested {depth} levels deep; the limit is {depth - 1}"):
        Limits(Config(max_metadata_depth=depth - 1)).metadata("m", struct)
