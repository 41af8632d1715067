#!/usr/bin/env bash
# Runs LangGraphGo's own store and graph-checkpointing tests against the Cairn
# store. The test files come from the module cache, at the version go.mod pins
# (the Go toolchain downloads them; this repository holds none of them), and are
# compiled in this directory's packages through `go test -overlay`, next to the
# cairn_test.go shims that supply the store. They run unchanged but for:
#   graph/checkpointing_test.go: the calls that build a store are replaced by
#   the shim's (the sed below); the script checks that undoing those
#   replacements gives back the framework's file byte for byte.
# Left out, with the reason:
#   store/file/file_test.go      inspects the JSON files the file store writes
#   store/postgres/postgres_test.go  expects the SQL statements (pgxmock) the
#                                    Postgres store sends
#   store/type_registry_test.go  tests no store
#   graph/*_test.go other than checkpointing_test.go: graph execution without a
#                                store (the adapter's own graph tests cover
#                                interrupts and resumes through Cairn)
# Uses the server at $CAIRN_TARGET, which the Python harness starts (internal/testserver).
set -euo pipefail
cd "$(dirname "$0")/.."   # the adapter module, client_go/langgraphgo

mod=github.com/smallnest/langgraphgo
go mod download "$mod"
src=$(go list -m -f '{{.Dir}}' "$mod")
version=$(go list -m -f '{{.Version}}' "$mod")
here=$(pwd)/frameworktest
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The store-building calls of graph/checkpointing_test.go and their
# replacements (sed -E, forward and back).
orig=$src/graph/checkpointing_test.go
swapped=$work/checkpointing_test.go
if grep -q cairn "$orig"; then
  echo "frameworktest: $orig already mentions cairn; the swap check below would not hold" >&2
  exit 1
fi
sed -E \
  -e 's/graph\.NewMemoryCheckpointStore\(\)/cairnStore()/g' \
  -e 's/graph\.NewFileCheckpointStore\(tempDir\)/cairnFileStore(tempDir)/g' \
  -e 's/redis\.NewRedisCheckpointStore\(/cairnRedisStore(/g' \
  -e 's/graph\.DefaultCheckpointConfig\(\)/cairnCheckpointConfig()/g' \
  -e 's/graph\.NewCheckpointableStateGraph\[map\[string\]any\]\(\)/graph.NewCheckpointableStateGraphWithConfig[map[string]any](cairnCheckpointConfig())/g' \
  "$orig" >"$swapped"
sed -E \
  -e 's/graph\.NewCheckpointableStateGraphWithConfig\[map\[string\]any\]\(cairnCheckpointConfig\(\)\)/graph.NewCheckpointableStateGraph[map[string]any]()/g' \
  -e 's/cairnCheckpointConfig\(\)/graph.DefaultCheckpointConfig()/g' \
  -e 's/cairnRedisStore\(/redis.NewRedisCheckpointStore(/g' \
  -e 's/cairnFileStore\(tempDir\)/graph.NewFileCheckpointStore(tempDir)/g' \
  -e 's/cairnStore\(\)/graph.NewMemoryCheckpointStore()/g' \
  "$swapped" | cmp -s - "$orig" || {
  echo "frameworktest: the swap changed more than the store-building calls of $orig" >&2
  exit 1
}
swaps=$(diff "$orig" "$swapped" | grep -c '^>' || true)
if grep -nE 'NewMemoryCheckpointStore|NewFileCheckpointStore|NewRedisCheckpointStore|DefaultCheckpointConfig|NewCheckpointableStateGraph\[' "$swapped"; then
  echo "frameworktest: the lines above still build a framework store" >&2
  exit 1
fi
echo "== LangGraphGo $version own tests against Cairn ($swaps lines of graph/checkpointing_test.go swapped)"

# The overlay adds the framework's files to this directory's packages.
{
  echo '{"Replace": {'
  echo "\"$here/memory/memory_test.go\": \"$src/store/memory/memory_test.go\","
  echo "\"$here/sqlite/sqlite_test.go\": \"$src/store/sqlite/sqlite_test.go\","
  echo "\"$here/redis/redis_test.go\": \"$src/store/redis/redis_test.go\","
  echo "\"$here/graph/test_constants_test.go\": \"$src/graph/test_constants_test.go\","
  echo "\"$here/graph/checkpointing_test.go\": \"$swapped\""
  echo '}}'
} >"$work/overlay.json"

status=0
go test -tags frameworktest -overlay "$work/overlay.json" -count=1 -timeout 5m -v ./frameworktest/... \
  >"$work/out" 2>&1 || status=$?
grep -E '^(ok|FAIL|---|    ---|panic)' "$work/out" || true
count() { grep -cE "^ *--- $1: " "$work/out" || true; }
tests=$(grep -cE '^=== RUN   [^/]+$' "$work/out" || true)
subtests=$(grep -cE '^=== RUN   .+/' "$work/out" || true)
echo "== LangGraphGo $version own tests: $tests tests + $subtests subtests run;" \
  "$(count PASS) passed, $(count FAIL) failed, $(count SKIP) skipped"
if [ "$status" -ne 0 ] || [ "$(count FAIL)" -ne 0 ] || [ "$(count SKIP)" -ne 0 ]; then
  cat "$work/out" >&2
  exit 1
fi
