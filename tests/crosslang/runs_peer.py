"""Python side of the cross-language durable-runs tests: start a run, or get one, and print it as one JSON line.

    python3 tests/crosslang/runs_peer.py start --target HOST:PORT --thread T --queue Q --input '{"topic": "x"}'
    python3 tests/crosslang/runs_peer.py get --target HOST:PORT --run RUN_ID
The Go suite starts a run here and executes it with its LangGraphGo Worker, then reads it back here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from cairn_client import CheckpointClient
from cairn_client.runs import Run


def as_json(run: Run) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "queue": run.queue,
        "status": run.status,
        "input": run.input_json() if run.input_type == "json" else None,
        "output": run.output_json() if run.output_type == "json" else None,
        "checkpoint_id": run.checkpoint_id,
        "worker_ids": [a.worker_id for a in run.attempts],
        "metadata": run.metadata,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["start", "get"])
    parser.add_argument("--target", default=os.environ.get("CAIRN_TARGET"))
    parser.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"))
    parser.add_argument("--thread")
    parser.add_argument("--queue", default="default")
    parser.add_argument("--input", default="null", help="the run's input, as JSON")
    parser.add_argument("--run")
    args = parser.parse_args()
    if not args.target:
        parser.error("--target or CAIRN_TARGET is required")
    with CheckpointClient(args.target, token=args.token) as client:
        if args.action == "start":
            if not args.thread:
                parser.error("start needs --thread")
            run = client.start_run(args.thread, json.loads(args.input), queue=args.queue,
                                   metadata={"started_by": "python"})
        else:
            if not args.run:
                parser.error("get needs --run")
            run = client.get_run(args.run)
    sys.stdout.write(json.dumps(as_json(run)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
