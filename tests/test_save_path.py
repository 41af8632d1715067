"""Issue 32: the server's save path does no work the client already did.

A state the client sent as a zstd frame (STATE_ENCODING_ZSTD) is checked by decompressing it once (size,
checksum, content hash come from that) and stored as the client's frame, also when the server compresses its
own saves with a trained dictionary, unless the state is small enough for the dictionary to pay
(tests/test_state_encoding.py has that case).
"""

from __future__ import annotations

import zstandard

from cairn_tools.bench.states import AgentStateGenerator
from cairn_server.codec import CODEC_ZSTD, CODEC_ZSTD_DICT, Codec


def _dictionary_codec() -> tuple[Codec, list[bytes]]:
    gen = AgentStateGenerator(7)
    samples = [gen.state_bytes(2_000) for _ in range(200)]
    trained = zstandard.train_dictionary(8 << 10, samples)
    codec = Codec(3, use_dictionary=True)
    codec.add_dictionaries([(trained.dict_id(), trained.as_bytes())])
    return codec, samples


def test_a_clients_frame_is_stored_as_sent_even_with_a_dictionary() -> None:
    codec, samples = _dictionary_codec()
    state = AgentStateGenerator(8).state_bytes()  # 36.5 KB: a dictionary gains ~1% here
    assert codec.encode(state, "t", None, ("th", "", "c"))[0] == CODEC_ZSTD_DICT  # the server's own compression
    frame = zstandard.ZstdCompressor(level=3).compress(state)
    raw = codec.unframe(frame, lambda size: None)
    codec_id, stored, checksum = codec.encode(raw, "t", frame, ("th", "", "c"))
    assert (codec_id, stored) == (CODEC_ZSTD, frame)
    assert codec.decode(codec_id, stored, len(state), checksum, "test", "t", ("th", "", "c")) == state
