#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with git and python3: installs what it needs, then runs
#   1. proto checks (buf lint, buf breaking, the one stub drift check of every language) and the import rules
#      of docs/architecture.md (scripts/check_imports.py),
#   2. the Python suite (pytest; it starts its own redis-server/postgres/cairn processes),
#   3. the Go, TypeScript and Java suites against the servers the Python harness starts for each
#      (`python -m cairn_tools.cluster`: CAIRN_TARGET on Postgres + Redis, and the auth and TLS ones),
#   4. every code block of README.md and the client READMEs, twice, against a live server (tests/examples),
#   5. the API reference of the four clients (scripts/build_docs.sh, `make docs`).
# Toolchains come from Debian packages and the registries (scripts/lib/toolchains.sh). Outside CI a suite
# whose toolchain cannot be had is skipped with one line naming what is missing and how to get it; under
# CI=true nothing is skipped: that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_PREFIX=test_all
. scripts/lib/common.sh
. scripts/lib/toolchains.sh
start=$SECONDS
step() { echo; echo "=== $* ($((SECONDS - start))s)"; }
passed=() skipped=()
# unavailable SUITE: under CI a failure; elsewhere one line naming what is missing ($MISSING) and how to get it.
unavailable() {
  if [ "${CI:-}" = "true" ]; then
    warn "FAIL $1: needs $MISSING"
    exit 1
  fi
  echo "test_all: SKIP $1: needs $MISSING"
  skipped+=("$1")
}

step "install dependencies"
bash scripts/install_deps.sh
ensure_venv
declare -A have=()
ensure_node && have[node]=1 || unavailable "buf checks and the TypeScript suite"
ensure_go && have[go]=1 || unavailable "the Go suite"
ensure_java && have[java]=1 || unavailable "the Java suite"

step "proto: lint, breaking changes, generated code"
if [ -n "${have[node]:-}" ] && [ -n "${have[go]:-}" ]; then  # buf runs on Node.js; the Go plugins need Go
  bash scripts/check_generated.sh
else
  bash scripts/check_generated.sh --stubs-only
fi
python scripts/check_imports.py
passed+=(proto)

step "python suite"
python -m pytest -q -p no:cacheprovider "$@"
passed+=(python)

declare -A tool=([go]=go [ts]=node [java]=java)
for lang in go ts java; do
  [ -n "${have[${tool[$lang]}]:-}" ] || continue
  step "${lang} suite"
  python -m cairn_tools.cluster -- bash "client_${lang}/run_tests.sh"
  passed+=("$lang")
done

step "README examples, twice each against a live server"
python scripts/run_examples.py --repeat 2 ${have[go]:+--lang go} ${have[node]:+--lang ts} \
  ${have[java]:+--lang java} --lang python --lang sh
passed+=(examples)

step "API reference of every client from its doc comments (make docs)"
bash scripts/build_docs.sh python ${have[go]:+go} ${have[node]:+ts} ${have[java]:+java}
passed+=(docs)

step "done"
echo "suites: ${#passed[@]} passed (${passed[*]}), ${#skipped[@]} skipped${skipped:+ (${skipped[*]})}, 0 failed"
