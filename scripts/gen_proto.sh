#!/usr/bin/env bash
# Regenerates the Python stubs of proto/ into client_py/cairn/v1 (import as cairn.v1).
# The other languages generate theirs in their own build (see client_go, client_ts, client_java).
set -euo pipefail
cd "$(dirname "$0")/.."
out=client_py
rm -f "$out"/cairn/v1/*_pb2*.py "$out"/cairn/v1/*_pb2*.pyi
"${PYTHON:-python3}" -m grpc_tools.protoc -Iproto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/cairn/v1/*.proto
touch "$out/cairn/__init__.py" "$out/cairn/v1/__init__.py"
# The Java client builds from its own copy, so that it builds (and its sources jar is whole) outside the repo.
rm -f client_java/src/main/proto/cairn/v1/*.proto
cp proto/cairn/v1/*.proto client_java/src/main/proto/cairn/v1/
