#!/usr/bin/env bash
# The TypeScript client's test suite: installs the locked dependencies from npm, typechecks, then runs every
# test (vitest) against the servers the Python harness starts (`python -m cairn_tools.cluster`, which sets
# CAIRN_TARGET and the rest; test/global-setup.ts reads them); a test that needs other server flags starts its own
# through the same harness (test/helpers.ts startServer). The stubs' drift check is scripts/check_generated.sh.
set -euo pipefail
cd "$(dirname "$0")"

missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "client_ts: FAIL: $1" >&2
    exit 1
  fi
  echo "client_ts: SKIP: $1"
  exit 0
}

command -v node >/dev/null 2>&1 || missing "node is not installed (Node.js 20 or later is required)"
command -v npm >/dev/null 2>&1 || missing "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || missing "Node.js $(node --version) is too old (20 or later is required)"

if [ -z "${CAIRN_TARGET:-}" ]; then
  # The servers come from the Python harness (tools/cairn_tools/cluster.py), which sets CAIRN_TARGET and the rest.
  exec "${PYTHON:-python3}" -m cairn_tools.cluster -- bash "$0" "$@"
fi

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npm run --silent typecheck
npm test
