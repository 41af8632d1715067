#!/usr/bin/env bash
# The one drift check: buf lint (STANDARD) on proto/, `buf breaking` against the frozen API, then every
# language's stubs regenerated into a temp dir by scripts/gen_proto.sh (the one generator) and compared with
# what is committed. `--stubs-only` (no Node.js, so no buf; test_all.sh says so) checks the Python stubs alone,
# with grpcio-tools directly.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=1.75.0
PYTHON="${PYTHON:-python3}"
stubs_only=
[ "${1:-}" = "--stubs-only" ] && stubs_only=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ -n "$stubs_only" ]; then
  "$PYTHON" -m grpc_tools.protoc -Iproto --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" proto/cairn/v1/*.proto
  for f in "$tmp"/cairn/v1/*; do
    if ! cmp -s "$f" "api_py/cairn/v1/$(basename "$f")"; then
      echo "check_generated: api_py/cairn/v1/$(basename "$f") is stale; run \`make gen\` and commit" >&2
      exit 1
    fi
  done
  echo "check_generated: Python stubs match proto/ (Go, TypeScript and Java not checked: no Node.js for buf)"
  exit 0
fi

npx --yes "@bufbuild/buf@${BUF_VERSION}" lint
echo "check_generated: buf lint clean"
# The API froze at its first commit: nothing since may break wire or source compatibility with it.
frozen="$(git log --format=%H --diff-filter=A -- proto/cairn/v1/checkpoint_store.proto | tail -n1)"
if [ -n "$frozen" ]; then
  npx --yes "@bufbuild/buf@${BUF_VERSION}" breaking proto --against ".git#ref=${frozen},subdir=proto"
  echo "check_generated: no breaking change against ${frozen:0:10}"
fi

PYTHON="$PYTHON" bash scripts/gen_proto.sh "$tmp" >"$tmp/gen.log" 2>&1 ||
  { cat "$tmp/gen.log" >&2; echo "check_generated: generation failed" >&2; exit 1; }
stale=0
for dir in api_py/cairn/v1 client_go/gen/cairn client_ts/src/gen client_java/src/main/java/dev/cairn/v1; do
  if ! diff -r -q -x __init__.py -x __pycache__ "$dir" "$tmp/$dir" >&2; then
    echo "check_generated: $dir is stale" >&2
    stale=1
  fi
done
[ "$stale" = 0 ] || { echo "check_generated: run \`make gen\` and commit" >&2; exit 1; }
echo "check_generated: the stubs of every language match proto/"
