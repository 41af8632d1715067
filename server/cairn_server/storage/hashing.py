"""Content hashes: what makes two saves of one checkpoint id "the same" (an idempotent retry)."""

from __future__ import annotations

import hashlib
import json

import xxhash

from .records import StoredCheckpoint


def content_hash(
    raw_state: bytes,
    state_type: str,
    metadata_json: str,
    parent: str,
    node_name: str,
    next_nodes: list[str],
) -> bytes:
    """What makes two saves of one checkpoint id "the same" (an idempotent retry): XXH3-128 of the fields and
    the state, ~0.4 us for a 37 KB state against ~32 for BLAKE2b. Not a cryptographic hash; it need not be: a
    collision could only be aimed by a writer of the tenant, who can overwrite its checkpoints anyway."""
    h = xxhash.xxh3_128(_hashed_fields(state_type, metadata_json, parent, node_name, next_nodes))
    h.update(raw_state)
    return h.digest()


def older_content_hashes(cp: StoredCheckpoint, raw_state: bytes) -> tuple[bytes, ...]:
    """The content hashes earlier builds stored for this content (BLAKE2b-128, before the switch to XXH3), so a
    retry that spans an upgrade is still recognised as the same save."""
    fields = _hashed_fields(cp.state_type, cp.metadata_json, cp.parent_checkpoint_id, cp.node_name, cp.next_nodes)
    return (hashlib.blake2b(fields + raw_state, digest_size=16).digest(),)


def _hashed_fields(state_type: str, metadata_json: str, parent: str, node_name: str, next_nodes: list[str]) -> bytes:
    header = json.dumps([state_type, metadata_json, parent, node_name, next_nodes], separators=(",", ":"))
    return header.encode() + b"\x00"
