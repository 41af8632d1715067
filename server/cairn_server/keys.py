"""The key check at start: a server never seals rows with a key the store does not know under that id.

The cold store keeps a fingerprint per key id (HMAC of a fixed label under the key: it identifies the key
without revealing it). A server given a key whose id is known with another fingerprint refuses to start,
since what it sealed would be unreadable once the right key is back. A store that has seen keys holds
encrypted rows: a server started without keys refuses saves there (FAILED_PRECONDITION) unless
--allow-plaintext-saves says plaintext is intended.
"""

from __future__ import annotations

import logging

from .codec import Codec
from .storage.base import ColdStore

log = logging.getLogger("cairn.keys")


async def check_keys(cold: ColdStore, codec: Codec, allow_plaintext_saves: bool) -> tuple[bool, bool]:
    """Record new key ids' fingerprints; raise ValueError (one line) for a key id known with another key.
    Returns (the store has seen keys, so it may hold encrypted rows; saves must be refused because they would
    be stored in plaintext)."""
    recorded = await cold.key_fingerprints(codec.fingerprints)
    for key_id, fingerprint in codec.fingerprints.items():
        if recorded.get(key_id) != fingerprint:
            raise ValueError(
                f"encryption key {key_id!r} is not the key this store knows under that id (its fingerprint "
                f"differs): pass the original key for {key_id!r}, or give a new key a new id"
            )
    if recorded and not codec.encrypts:
        if allow_plaintext_saves:
            log.warning("this store holds encrypted rows; without --encryption-keys new saves are stored in "
                        "plaintext (--allow-plaintext-saves)")
            return True, False
        log.warning("this store holds encrypted rows and no --encryption-keys were given: saves are refused "
                    "(FAILED_PRECONDITION) and encrypted rows are DATA_LOSS to read")
        return True, True
    return bool(recorded), False
