#!/usr/bin/env bash
# buf lint (STANDARD) on proto/, `buf breaking` against the frozen API, and fail when the committed Python
# stubs drift from proto/. `--stubs-only` checks the stubs alone (no Node.js for buf; test_all.sh says so).
# buf is pinned once per tool that runs it, all to the same version (tests/test_packaging.py checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=1.75.0
PYTHON="${PYTHON:-python3}"
stubs_only=
[ "${1:-}" = "--stubs-only" ] && stubs_only=1

if [ -z "$stubs_only" ]; then
  npx --yes "@bufbuild/buf@${BUF_VERSION}" lint
  echo "check_generated: buf lint clean"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m grpc_tools.protoc -Iproto --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" proto/cairn/v1/*.proto
for f in "$tmp"/cairn/v1/*; do
  if ! cmp -s "$f" "client_py/cairn/v1/$(basename "$f")"; then
    echo "check_generated: client_py/cairn/v1/$(basename "$f") is stale; run scripts/gen_proto.sh and commit" >&2
    diff -u "client_py/cairn/v1/$(basename "$f")" "$f" | head -20 >&2 || true
    exit 1
  fi
done
echo "check_generated: Python stubs match proto/"
if ! diff -r proto/cairn client_java/src/main/proto/cairn >/dev/null; then
  echo "check_generated: client_java/src/main/proto differs from proto/; run scripts/gen_proto.sh and commit" >&2
  exit 1
fi
echo "check_generated: client_java/src/main/proto matches proto/"
[ -n "$stubs_only" ] && exit 0
# The API froze at its first commit: nothing since may break wire or source compatibility with it.
frozen="$(git log --format=%H --diff-filter=A -- proto/cairn/v1/checkpoint_store.proto | tail -n1)"
if [ -n "$frozen" ]; then
  npx --yes "@bufbuild/buf@${BUF_VERSION}" breaking --against ".git#ref=${frozen}"
  echo "check_generated: no breaking change against ${frozen:0:10}"
fi
