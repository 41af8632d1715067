#!/usr/bin/env bash
# The TypeScript client's test suite: installs the locked dependencies from npm, checks that the
# committed stubs match ../proto, typechecks, then runs every test (vitest) against $CAIRN_TARGET, or
# against `cairn serve` processes it starts itself (see test/global-setup.ts).
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

if [ -z "${CAIRN_TARGET:-}" ] && ! command -v "${CAIRN_BIN:-cairn}" >/dev/null 2>&1; then
  echo "client_ts: no Cairn server: set CAIRN_TARGET=host:port of a running server, or run" \
    "\`pip install -e '.[server]'\` in the repository root so the tests can start \`cairn serve\`" >&2
  exit 1
fi

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npm run --silent check-drift
npm run --silent typecheck
npm test
