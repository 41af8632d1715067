#!/usr/bin/env bash
# Start Cairn on the embedded default (in-process cache + ./cairn.db), installing the server first if needed.
# Extra arguments go to `cairn serve` (e.g. --listen 0.0.0.0:50051, --redis-url, --postgres-dsn).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cairn >/dev/null 2>&1 || ! python3 -c "import cairn_server, asyncpg, zstandard" 2>/dev/null; then
  echo "serve: installing the server (pip install -e '.[server]')" >&2
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q -e '.[server]'
fi
exec cairn serve "$@"
