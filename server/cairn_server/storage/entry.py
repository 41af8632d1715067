"""The bytes a hot cache holds for one checkpoint: the row, its writes, and a CRC over all of it.

    b"C2" | u64 stamp | u32 crc32(body) | body
    body = u32 len | header JSON | u32 len | state | (u32 len | write value)*

The stamp is the thread version the entry was current at (freshness.py); the
CRC makes a corrupted entry a cache miss (evicted) instead of wrong data.
"""

from __future__ import annotations

import json
import struct
import zlib
from datetime import datetime

from .records import StoredCheckpoint, StoredWrite

MAGIC = b"C2"  # C1 entries carried a cache generation, which is not a stamp: never read them as one
_HEAD = struct.Struct("!2sQI")
_LEN = struct.Struct("!I")


class CorruptEntry(Exception):
    """The cache entry does not decode or fails its CRC."""


def encode_entry(stamp: int, cp: StoredCheckpoint, writes: list[StoredWrite]) -> bytes:
    header = {
        "t": cp.tenant,
        "th": cp.thread_id,
        "ns": cp.namespace,
        "id": cp.checkpoint_id,
        "p": cp.parent_checkpoint_id,
        "st": cp.state_type,
        "n": cp.node_name,
        "nx": cp.next_nodes,
        "m": cp.metadata_json,
        "c": cp.codec,
        "rs": cp.raw_size,
        "ck": cp.checksum,
        "h": cp.content_hash.hex(),
        "s": cp.sequence,
        "ca": cp.created_at.isoformat() if cp.created_at else None,
        "r": cp.row_id,
        "w": [[w.task_id, w.task_path, w.idx, w.channel, w.value_type] for w in writes],
    }
    hb = json.dumps(header, separators=(",", ":")).encode()
    parts = [_LEN.pack(len(hb)), hb, _LEN.pack(len(cp.state)), cp.state]
    for w in writes:
        parts += [_LEN.pack(len(w.value)), w.value]
    body = b"".join(parts)
    return _HEAD.pack(MAGIC, stamp, zlib.crc32(body)) + body


def decode_entry(blob: bytes) -> tuple[int, StoredCheckpoint, list[StoredWrite]]:
    """(stamp, checkpoint, writes) of an entry; CorruptEntry if it does not decode or fails its CRC."""
    try:
        magic, stamp, crc = _HEAD.unpack_from(blob)
        body = memoryview(blob)[_HEAD.size :]
        if magic != MAGIC or zlib.crc32(body) != crc:
            raise CorruptEntry("checksum mismatch")
        pos = 0

        def take() -> bytes:
            nonlocal pos
            (n,) = _LEN.unpack_from(body, pos)
            pos += _LEN.size
            if pos + n > len(body):
                raise CorruptEntry("truncated")
            chunk = bytes(body[pos : pos + n])
            pos += n
            return chunk

        h = json.loads(take())
        state = take()
        cp = StoredCheckpoint(
            tenant=h["t"],
            thread_id=h["th"],
            namespace=h["ns"],
            checkpoint_id=h["id"],
            parent_checkpoint_id=h["p"],
            state_type=h["st"],
            node_name=h["n"],
            next_nodes=h["nx"],
            metadata_json=h["m"],
            codec=h["c"],
            raw_size=h["rs"],
            checksum=h["ck"],
            content_hash=bytes.fromhex(h["h"]),
            state=state,
            sequence=h["s"],
            created_at=datetime.fromisoformat(h["ca"]) if h["ca"] else None,
            row_id=h["r"],
        )
        writes = [
            StoredWrite(task_id, task_path, idx, channel, value_type, take(), cp.thread_id, cp.namespace,
                        cp.checkpoint_id)
            for task_id, task_path, idx, channel, value_type in h["w"]
        ]
        return stamp, cp, writes
    except CorruptEntry:
        raise
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(str(exc)) from exc
