"""How a state is stored: compressed, optionally encrypted, tagged with its codec, checksummed.

The codec id is stored per row so rows written with an older codec stay
readable. The checksum (CRC-32 of the uncompressed state) is verified on every
read, from either tier; a mismatch is DATA_LOSS, never wrong data.

With a trained dictionary (`cairn dict train`, stored in the cold store), new
states are compressed with the newest one (codec CODEC_ZSTD_DICT); the zstd frame
itself names its dictionary id, so every row stays readable after newer
dictionaries arrive. A row naming a dictionary this process has not loaded yet
raises UnknownDictionary, and the store reloads them from the cold store.

Encryption at rest (AES-256-GCM) wraps the compressed bytes as
    b"E1" | u8 len(key_id) | key_id | 12-byte nonce | ciphertext+tag
The associated data binds the ciphertext to its row: tenant, thread, namespace
and checkpoint id (codec flag BOUND), so a state copied into another row, even
of the same tenant, fails as DATA_LOSS. Rows sealed before the flag existed
carry ENCRYPTED alone and are read with the tenant as associated data, as they
were written. The key id travels in every row: keys can be rotated by putting a
new key first and keeping the old ones for reading. Tampered ciphertext is DATA_LOSS.

Pending-write values are sealed too, bound to their row and slot (tenant, thread,
namespace, checkpoint id, task id, idx), inside a tagged envelope
    WRITE_MAGIC | u8 len(key_id) | key_id | 12-byte nonce | ciphertext+tag
whose nonce is derived from the key, the slot and the value (HMAC-SHA256): the
same value re-sent to the same slot seals to the same bytes, which is what makes
PutWrites idempotent. Values without the tag are plaintext (written without keys).
"""

from __future__ import annotations

import base64
import binascii
import os
import zlib
from collections.abc import Callable

import zstandard

from cairn.errors import DataLoss

CODEC_RAW = 0
CODEC_ZSTD = 1
CODEC_ZSTD_DICT = 2  # the dictionary id is in the zstd frame header
ENCRYPTED = 0x10  # flag or-ed into the codec id
BOUND = 0x20  # with ENCRYPTED: the associated data is the row's key, not the tenant alone
WRITE_MAGIC = b"\x00cairn-sealed\x01"  # starts every sealed pending-write value

# Below this size compression costs more than it saves.
MIN_COMPRESS_BYTES = 256
# From this size a trained dictionary shrinks agent states by 5% or less (by 13-30% below 8 KB), too little to
# compress again a state the client sent compressed.
DICTIONARY_WORTH_BELOW_BYTES = 16 << 10
_MAGIC = b"E1"


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """'KEY_ID:BASE64,KEY_ID2:BASE64' -> [(key_id, 32-byte key)], first = the one that encrypts."""
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, b64 = item.partition(":")
        if not sep or not key_id or len(key_id) > 64:
            raise ValueError("encryption key items look like KEY_ID:BASE64 with a key id of 1-64 characters")
        try:
            key = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"encryption key {key_id!r} is not valid base64") from exc
        if len(key) != 32:
            raise ValueError(f"encryption key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        keys.append((key_id, key))
    return keys


def row_aad(tenant: str, thread_id: str, namespace: str, checkpoint_id: str, *slot: object) -> bytes:
    """Associated data naming one row (and, for a write, its slot): each part length-prefixed, so no two
    different rows share it."""
    out = bytearray(b"cairn-row-v1")
    for part in (tenant, thread_id, namespace, checkpoint_id, *map(str, slot)):
        data = part.encode("utf-8", "surrogatepass")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def key_fingerprint(key: bytes) -> bytes:
    """A value that identifies a key without revealing it (stored in the cold store's key registry)."""
    import hashlib
    import hmac

    return hmac.new(key, b"cairn key fingerprint v1", hashlib.sha256).digest()[:16]


class UnknownDictionary(DataLoss):
    """A row was compressed with a dictionary this process has not loaded (DATA_LOSS if it exists nowhere)."""

    def __init__(self, where: str, dict_id: int) -> None:
        super().__init__(f"{where}: compressed with zstd dictionary {dict_id}, which is not in the cold store")
        self.dict_id = dict_id


class Codec:
    """zstd at a configurable level (with the newest trained dictionary when `use_dictionary`), then AES-GCM when
    keys are given. Use from the event loop thread."""

    def __init__(
        self, level: int = 1, keys: list[tuple[str, bytes]] | None = None, use_dictionary: bool = False
    ) -> None:
        self.level = level
        self.use_dictionary = use_dictionary
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._decompressor = zstandard.ZstdDecompressor()
        self._dict_compressor: zstandard.ZstdCompressor | None = None
        self._dict_decompressors: dict[int, zstandard.ZstdDecompressor] = {}
        self.dictionary_id: int | None = None  # the one new states are compressed with
        self._ciphers: dict[str, object] = {}
        self._active: str | None = None
        self._nonce_keys: dict[str, bytes] = {}
        self.fingerprints: dict[str, bytes] = {}
        if keys:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
            self._active = keys[0][0]
            self.fingerprints = {key_id: key_fingerprint(key) for key_id, key in keys}
            import hashlib
            import hmac

            self._nonce_keys = {
                key_id: hmac.new(key, b"cairn write nonce v1", hashlib.sha256).digest() for key_id, key in keys
            }

    @property
    def encrypts(self) -> bool:
        return self._active is not None

    def add_dictionaries(self, dictionaries: list[tuple[int, bytes]]) -> None:
        """Learn dictionaries (oldest first); with use_dictionary, the last one compresses from now on."""
        for dict_id, data in dictionaries:
            if dict_id not in self._dict_decompressors:
                self._dict_decompressors[dict_id] = zstandard.ZstdDecompressor(
                    dict_data=zstandard.ZstdCompressionDict(data)
                )
        if self.use_dictionary and dictionaries and dictionaries[-1][0] != self.dictionary_id:
            dict_id, data = dictionaries[-1]
            dictionary = zstandard.ZstdCompressionDict(data)
            dictionary.precompute_compress(level=self.level)
            self._dict_compressor = zstandard.ZstdCompressor(level=self.level, dict_data=dictionary)
            self.dictionary_id = dict_id

    def unframe(self, frame: bytes, check_size: Callable[[int], None]) -> bytes:
        """The state inside a client's zstd frame (STATE_ENCODING_ZSTD). `check_size(declared size)` runs before
        anything is decompressed (it raises when the state would be too large); ValueError says what else is
        wrong with the frame."""
        try:
            params = zstandard.get_frame_parameters(frame)
        except zstandard.ZstdError as exc:
            raise ValueError(f"is not a zstd frame ({exc})") from exc
        if params.dict_id:
            raise ValueError(f"was compressed with zstd dictionary {params.dict_id}; compress without a dictionary")
        # The size must be declared and is checked first: zstd trusts it over max_output_size.
        if params.content_size == zstandard.CONTENTSIZE_UNKNOWN:
            raise ValueError("does not declare its content size; compress in one shot (zstd's default) so it does")
        check_size(params.content_size)
        try:
            return self._decompressor.decompress(frame, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise ValueError(f"does not decompress ({exc})") from exc

    def encode(
        self, raw: bytes, tenant: str = "", packed: bytes | None = None, row: tuple[str, str, str] | None = None
    ) -> tuple[int, bytes, int]:
        """Return (codec id, stored bytes, checksum of raw). `packed` is a plain zstd frame of `raw` the client
        sent (unframe checked it by decompressing it into `raw`): it is stored as is, so Save skips compressing,
        unless a dictionary is in use and the state is small enough for it to pay (DICTIONARY_WORTH_BELOW_BYTES).
        `row` is (thread_id, namespace, checkpoint_id): with encryption the ciphertext is bound to it."""
        checksum = zlib.crc32(raw)
        codec, stored = CODEC_RAW, raw
        if packed is not None and (self._dict_compressor is None or len(raw) >= DICTIONARY_WORTH_BELOW_BYTES):
            if len(packed) < len(raw):
                codec, stored = CODEC_ZSTD, packed
        elif len(raw) >= MIN_COMPRESS_BYTES:
            if self._dict_compressor is not None:
                codec, packed = CODEC_ZSTD_DICT, self._dict_compressor.compress(raw)
            else:
                codec, packed = CODEC_ZSTD, self._compressor.compress(raw)
            if len(packed) < len(raw):
                stored = packed
            else:
                codec = CODEC_RAW
        if self._active is not None:
            if row is None:
                raise ValueError("an encrypted state must be bound to its row")
            stored = self._seal(_MAGIC, os.urandom(12), stored, row_aad(tenant, *row))
            codec |= ENCRYPTED | BOUND
        return codec, stored, checksum

    def _seal(self, magic: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        assert self._active is not None
        kid = self._active.encode()
        sealed = self._ciphers[self._active].encrypt(nonce, data, aad)  # type: ignore[attr-defined]
        return b"".join((magic, bytes([len(kid)]), kid, nonce, sealed))

    def _open(self, stored: bytes, aad: bytes, where: str, magic: bytes = _MAGIC, what: str = "state") -> bytes:
        m = len(magic)
        if stored[:m] != magic or len(stored) < m + 1:
            raise DataLoss(f"{where}: encrypted {what} has no valid envelope; the row is corrupt")
        n = stored[m]
        kid = stored[m + 1 : m + 1 + n].decode(errors="replace")
        nonce, sealed = stored[m + 1 + n : m + 13 + n], stored[m + 13 + n :]
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DataLoss(f"{where}: encrypted with key {kid!r}, which this server was not given (--encryption-keys)")
        from cryptography.exceptions import InvalidTag

        try:
            return cipher.decrypt(nonce, sealed, aad)  # type: ignore[attr-defined]
        except InvalidTag as exc:
            raise DataLoss(
                f"{where}: encrypted {what} fails authentication; it was tampered with, is corrupt, or was moved "
                "from another row"
            ) from exc

    def reseal(self, codec: int, stored: bytes, tenant: str, source: tuple[str, str, str],
               target: tuple[str, str, str]) -> bytes:
        """A bound state sealed for the `source` row, sealed again for the `target` row (CopyThread)."""
        if not codec & BOUND:
            return stored
        where = f"checkpoint {source[2]!r} of thread {source[0]!r}"
        return self._seal(_MAGIC, os.urandom(12), self._open(bytes(stored), row_aad(tenant, *source), where),
                          row_aad(tenant, *target))

    def seal_write(self, value: bytes, tenant: str, row: tuple[str, str, str], task_id: str, idx: int) -> bytes:
        """A pending-write value as stored: sealed and bound to its slot when this server encrypts."""
        if self._active is None:
            return value
        import hashlib
        import hmac

        aad = row_aad(tenant, *row, task_id, idx)
        nonce = hmac.new(self._nonce_keys[self._active], aad + value, hashlib.sha256).digest()[:12]
        return self._seal(WRITE_MAGIC, nonce, value, aad)

    def open_write(self, value: bytes, tenant: str, row: tuple[str, str, str], task_id: str, idx: int) -> bytes:
        """A stored pending-write value, opened (DataLoss when it was tampered with or moved)."""
        if not value.startswith(WRITE_MAGIC):
            return value
        where = f"pending write {idx} of task {task_id!r} on checkpoint {row[2]!r} of thread {row[0]!r}"
        return self._open(bytes(value), row_aad(tenant, *row, task_id, idx), where, WRITE_MAGIC, "value")

    def decode(
        self, codec: int, stored: bytes, raw_size: int, checksum: int, where: str, tenant: str = "",
        row: tuple[str, str, str] | None = None,
    ) -> bytes:
        """Return the raw state, or raise DataLoss when the bytes are not what was written. `row` is the
        (thread_id, namespace, checkpoint_id) the state was read from (needed for a BOUND row)."""
        if codec & ENCRYPTED:
            if codec & BOUND:
                if row is None:
                    raise DataLoss(f"{where}: the state is bound to a row that was not named")
                aad = row_aad(tenant, *row)
            else:
                aad = tenant.encode()
            stored = self._open(bytes(stored), aad, where)
            codec &= ~(ENCRYPTED | BOUND)
        try:
            if codec == CODEC_ZSTD:
                raw = self._decompressor.decompress(stored, max_output_size=raw_size)
            elif codec == CODEC_ZSTD_DICT:
                dict_id = zstandard.get_frame_parameters(stored).dict_id
                decompressor = self._dict_decompressors.get(dict_id)
                if decompressor is None:
                    raise UnknownDictionary(where, dict_id)
                raw = decompressor.decompress(stored, max_output_size=raw_size)
            elif codec == CODEC_RAW:
                raw = bytes(stored)
            else:
                raise DataLoss(f"{where}: unknown codec {codec}; was it written by a newer Cairn?")
        except zstandard.ZstdError as exc:
            raise DataLoss(f"{where}: stored state does not decompress ({exc}); the row is corrupt") from exc
        if len(raw) != raw_size or zlib.crc32(raw) != checksum:
            raise DataLoss(f"{where}: stored state fails its checksum; the row is corrupt")
        return raw
