"""Python side of the cross-language tests: save or load one checkpoint and print it as one JSON line.

    python3 tests/crosslang/peer.py save --target HOST:PORT --thread T
    python3 tests/crosslang/peer.py load --target HOST:PORT --thread T [--checkpoint ID]
The state saved is the exact bytes of state.json beside this file (state_type "json").
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import sys

from cairn_client import CheckpointClient

STATE = (pathlib.Path(__file__).parent / "state.json").read_bytes()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["save", "load"])
    parser.add_argument("--target", default=os.environ.get("CAIRN_TARGET"))
    parser.add_argument("--thread", required=True)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"))
    args = parser.parse_args()
    if not args.target:
        parser.error("--target or CAIRN_TARGET is required")
    with CheckpointClient(args.target, token=args.token) as client:
        if args.action == "save":
            saved = client.save(
                args.thread, STATE, state_type="json", metadata={"lang": "python"}, node_name="py",
                next_nodes=["next"],
            )
            out = {"checkpoint_id": saved.checkpoint_id, "state_b64": base64.b64encode(STATE).decode()}
        else:
            cp = client.load(args.thread, checkpoint_id=args.checkpoint)
            out = {
                "checkpoint_id": cp.checkpoint_id,
                "state_b64": base64.b64encode(cp.state).decode(),
                "state_type": cp.state_type,
                "metadata": cp.metadata,
                "node_name": cp.node_name,
                "next_nodes": cp.next_nodes,
            }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
