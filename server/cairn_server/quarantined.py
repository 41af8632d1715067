"""`cairn quarantined`: the corrupt checkpoints kept aside by Delete (storage/quarantine.py), newest first.

Reads the cold store the flags name (like `cairn migrate`), across tenants: an operator's view.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from .config import add_config_flags, load_config


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("quarantined", help="list corrupt checkpoints kept aside in quarantine")
    add_config_flags(p)
    p.add_argument("--limit", type=int, default=100, help="newest entries to show (default 100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_quarantined)


def cmd_quarantined(args: argparse.Namespace) -> int:
    from .server import open_cold

    async def run() -> list[dict[str, Any]]:
        cold = await open_cold(load_config(args))
        try:
            return await cold.quarantined(args.limit)
        finally:
            await cold.aclose()

    rows = asyncio.run(run())
    for r in rows:
        if args.json:
            print(json.dumps(r, default=str))
        else:
            print(f"{r['quarantined_at']}  tenant={r['tenant']!r} thread={r['thread_id']!r} "
                  f"namespace={r['namespace']!r} checkpoint={r['checkpoint_id']!r} "
                  f"parent={r['parent_checkpoint_id']!r} {r['stored_bytes']} bytes: {r['reason']}")
    if not rows and not args.json:
        print("no quarantined checkpoints")
    return 0
