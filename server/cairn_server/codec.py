"""How a state is stored: compressed, tagged with its codec, checksummed.

The codec id is stored per row so rows written with an older codec stay
readable. The checksum (CRC-32 of the uncompressed state) is verified on every
read, from either tier; a mismatch is DATA_LOSS, never wrong data.
"""

from __future__ import annotations

import zlib

import zstandard

from .errors import DataLoss

CODEC_RAW = 0
CODEC_ZSTD = 1

# Below this size compression costs more than it saves.
MIN_COMPRESS_BYTES = 256


class Codec:
    """zstd at a configurable level; one compressor per process (not thread-safe: use from the event loop)."""

    def __init__(self, level: int = 3) -> None:
        self.level = level
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._decompressor = zstandard.ZstdDecompressor()

    def encode(self, raw: bytes) -> tuple[int, bytes, int]:
        """Return (codec id, stored bytes, checksum of raw)."""
        checksum = zlib.crc32(raw)
        if len(raw) >= MIN_COMPRESS_BYTES:
            packed = self._compressor.compress(raw)
            if len(packed) < len(raw):
                return CODEC_ZSTD, packed, checksum
        return CODEC_RAW, raw, checksum

    def decode(self, codec: int, stored: bytes, raw_size: int, checksum: int, where: str) -> bytes:
        """Return the raw state, or raise DataLoss when the bytes are not what was written."""
        try:
            if codec == CODEC_ZSTD:
                raw = self._decompressor.decompress(stored, max_output_size=raw_size)
            elif codec == CODEC_RAW:
                raw = bytes(stored)
            else:
                raise DataLoss(f"{where}: unknown codec {codec}; was it written by a newer Cairn?")
        except zstandard.ZstdError as exc:
            raise DataLoss(f"{where}: stored state does not decompress ({exc}); the row is corrupt") from exc
        if len(raw) != raw_size or zlib.crc32(raw) != checksum:
            raise DataLoss(f"{where}: stored state fails its checksum; the row is corrupt")
        return raw
