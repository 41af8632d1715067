#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what it needs, then runs
#   1. proto checks (buf lint, buf breaking, stub drift),
#   2. the Python suite (pytest; it starts its own redis-server/postgres/cairn processes),
#   3. the Go, TypeScript and Java suites against one cairn server on Postgres + Redis (CAIRN_TARGET).
# Under CI=true a missing toolchain fails the run; elsewhere that language is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
start=$SECONDS
step() { echo; echo "=== $* ($((SECONDS - start))s)"; }

step "install dependencies"
bash scripts/install_deps.sh

step "proto: lint, breaking changes, generated code"
bash scripts/check_generated.sh

step "python suite"
python3 -m pytest -q -p no:cacheprovider "$@"

suites=1
for lang in go ts java; do
  script="client_${lang}/run_tests.sh"
  if [ -f "$script" ]; then
    step "${lang} suite"
    python3 scripts/with_stack.py -- bash "$script"
    suites=$((suites + 1))
  elif [ "${CI:-}" = "true" ]; then
    echo "test_all: $script is missing" >&2
    exit 1
  fi
done
step "all suites passed"
echo "suites: ${suites} passed, 0 failed"
