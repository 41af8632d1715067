#!/usr/bin/env bash
# Start Cairn on the embedded default (in-process cache + ./cairn.db), installing the server first if needed.
# Extra arguments go to `cairn serve` (e.g. --listen 0.0.0.0:50051, --redis-url, --postgres-dsn).
# A distro Python that refuses pip installs (PEP 668, Debian 12's /usr/bin/python3) gets a ./.venv instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! "$PY" -c "import cairn_server, asyncpg, zstandard, grpc_health" 2>/dev/null; then
  if "$PY" -c 'import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) and sys.prefix == sys.base_prefix else 1)'; then
    echo "serve: this Python is managed by the OS; creating ./.venv (needs python3-venv)" >&2
    "$PY" -m venv .venv
    PY=.venv/bin/python
  fi
  echo "serve: installing the server (pip install -e '.[server]')" >&2
  PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q -e '.[server]'
fi
exec "$PY" -m cairn_server.cli serve "$@"
