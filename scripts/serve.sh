#!/usr/bin/env bash
# Start Cairn on the embedded default (in-process cache + ./cairn.db), installing the server first if needed.
# Always runs from a virtualenv: the active one, else ./.venv (created, with python3-venv from Debian when a
# bare system lacks it). Extra arguments go to `cairn serve` (e.g. --listen 0.0.0.0:50051, --redis-url).
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_PREFIX=serve
. scripts/lib/common.sh

ensure_venv
if ! python -c "import cairn_server, asyncpg, zstandard, grpc_health, prometheus_client" 2>/dev/null; then
  ensure_ca_certificates
  say "installing the server into $VENV (pip install -e '.[server]')"
  python -m pip install -q -e '.[server]'
fi
exec python -m cairn_server.cli serve "$@"
