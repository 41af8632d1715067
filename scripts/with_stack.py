"""Run a command against a throwaway production stack: redis-server + postgres + `cairn serve` on both.

    python scripts/with_stack.py -- go test ./...
The command sees CAIRN_TARGET=127.0.0.1:PORT; everything is torn down afterwards, whatever happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import CairnServer, existing_or_start_postgres, existing_or_start_redis  # noqa: E402


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: with_stack.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with existing_or_start_redis() as redis, existing_or_start_postgres() as pg:
        dsn = pg.create_database("cairn_stack")
        with CairnServer("--postgres-dsn", dsn, "--redis-url", redis.url, "--log-level", "WARNING") as cairn:
            env = {**os.environ, "CAIRN_TARGET": cairn.target}
            print(f"with_stack: cairn on {cairn.target} (redis {redis.url}, postgres)", flush=True)
            return subprocess.call(argv, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
