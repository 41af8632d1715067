#!/usr/bin/env bash
# buf lint (STANDARD) on proto/, and fail when the committed Python stubs drift from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --yes @bufbuild/buf@1.75.0 lint
echo "check_generated: buf lint clean"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m grpc_tools.protoc -Iproto --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" proto/cairn/v1/*.proto
for f in "$tmp"/cairn/v1/*; do
  if ! cmp -s "$f" "client_py/cairn/v1/$(basename "$f")"; then
    echo "check_generated: client_py/cairn/v1/$(basename "$f") is stale; run scripts/gen_proto.sh and commit" >&2
    diff -u "client_py/cairn/v1/$(basename "$f")" "$f" | head -20 >&2 || true
    exit 1
  fi
done
echo "check_generated: Python stubs match proto/"
# The API froze at its first commit: nothing since may break wire or source compatibility with it.
frozen="$(git log --format=%H --diff-filter=A -- proto/cairn/v1/checkpoint_store.proto | tail -n1)"
if [ -n "$frozen" ]; then
  npx --yes @bufbuild/buf@1.75.0 breaking --against ".git#ref=${frozen}"
  echo "check_generated: no breaking change against ${frozen:0:10}"
fi
