"""`cairn dict train|list`: zstd dictionaries trained from stored states.

Agent states share most of their structure (message envelopes, tool-call JSON, field names), which a
dictionary carries once instead of in every row. `train` samples the newest stored states, trains on nine
in ten, measures the tenth with and without the dictionary, and stores it in the cold store only if it helps.
Servers started with `--zstd-dictionary latest` (the default) compress new saves with the newest dictionary
from their next start; rows written with any dictionary stay readable by every server.

Not offered with encryption at rest: a dictionary is made of fragments of states and is stored unencrypted.
On a server shared by tenants that must not learn anything of each other, note that one dictionary serves
all tenants, and compressed sizes are reported to clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .config import add_config_flags, load_config

_DEFAULT_SAMPLES = 2000
_DEFAULT_SIZE = 110 << 10  # zstd's own default dictionary size (112,640 bytes)
_MIN_SAMPLES = 20


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("dict", help="zstd dictionaries trained from stored states (train, list)")
    sub = p.add_subparsers(dest="dict_command", required=True)
    train = sub.add_parser("train", help="train a dictionary from the newest stored states and store it")
    add_config_flags(train)
    train.add_argument("--samples", type=int, default=_DEFAULT_SAMPLES,
                       help=f"newest checkpoints to train on (default {_DEFAULT_SAMPLES})")
    train.add_argument("--dict-size", type=int, default=_DEFAULT_SIZE,
                       help=f"dictionary size in bytes (default {_DEFAULT_SIZE})")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(func=cmd_train)
    listing = sub.add_parser("list", help="the stored dictionaries, oldest first")
    add_config_flags(listing)
    listing.set_defaults(func=cmd_list)


class TrainingError(ValueError):
    """Why no dictionary was stored; printed as one line."""


async def train(config: Any, samples: int, dict_size: int) -> dict[str, Any]:
    import zstandard

    from .codec import Codec
    from cairn.errors import DataLoss
    from .server import open_cold

    if config.encryption_keys:
        raise TrainingError(
            "dictionaries are made of fragments of states and stored unencrypted, so they are not offered with "
            "--encryption-keys"
        )
    cold = await open_cold(config)
    try:
        codec = Codec(config.zstd_level)
        codec.add_dictionaries(await cold.dictionaries())
        raws: list[bytes] = []
        for cp in await cold.recent_states(samples):
            try:
                raws.append(codec.decode(cp.codec, cp.state, cp.raw_size, cp.checksum, "sample", cp.tenant,
                                         (cp.thread_id, cp.namespace, cp.checkpoint_id)))
            except DataLoss:
                continue  # a corrupt row is no sample; `cairn show` reports it
        if len(raws) < _MIN_SAMPLES:
            raise TrainingError(f"need at least {_MIN_SAMPLES} stored checkpoints to train on, found {len(raws)}")
        held_out = raws[::10]
        training: list[bytes | bytearray | memoryview] = [r for i, r in enumerate(raws) if i % 10]
        try:
            dictionary = zstandard.train_dictionary(dict_size, training, level=config.zstd_level)
        except zstandard.ZstdError as exc:
            raise TrainingError(f"zstd could not train on these {len(training)} states: {exc}") from exc
        plain = zstandard.ZstdCompressor(level=config.zstd_level)
        with_dict = zstandard.ZstdCompressor(level=config.zstd_level, dict_data=dictionary)
        raw_bytes = sum(map(len, held_out))
        before = sum(len(plain.compress(r)) for r in held_out) / raw_bytes
        after = sum(len(with_dict.compress(r)) for r in held_out) / raw_bytes
        result = {
            "dict_id": dictionary.dict_id(), "dict_bytes": len(dictionary.as_bytes()), "samples": len(training),
            "held_out": len(held_out), "ratio_without": round(before, 4), "ratio_with": round(after, 4),
            "stored": after < before * 0.99,
        }
        if result["stored"]:
            await cold.add_dictionary(dictionary.dict_id(), dictionary.as_bytes(), len(training))
        return result
    finally:
        await cold.aclose()


def cmd_train(args: argparse.Namespace) -> int:
    config = load_config(args)
    try:
        result = asyncio.run(train(config, args.samples, args.dict_size))
    except TrainingError as exc:
        print(f"cairn: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"held-out states compress to {result['ratio_without']:.1%} of their size without a dictionary, "
            f"{result['ratio_with']:.1%} with this one ({result['dict_bytes']:,} bytes, {result['samples']} samples)"
        )
        if result["stored"]:
            print(f"stored dictionary {result['dict_id']}; servers use it for new saves from their next start "
                  "(--zstd-dictionary latest)")
        else:
            print("not stored: it saves less than 1%")
    return 0 if result["stored"] else 1


def cmd_list(args: argparse.Namespace) -> int:
    from .server import open_cold

    async def run() -> list[tuple[int, bytes]]:
        cold = await open_cold(load_config(args))
        try:
            return await cold.dictionaries()
        finally:
            await cold.aclose()

    for dict_id, data in asyncio.run(run()):
        print(f"{dict_id}\t{len(data)} bytes")
    return 0
