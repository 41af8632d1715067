#!/usr/bin/env bash
# Fails (exit 1) when the committed stubs in gen/ differ from what ./gen.sh generates from ../proto.
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
./gen.sh "$tmp" >/dev/null 2>&1 || { echo "check_drift: generation failed; run ./gen.sh to see why" >&2; exit 1; }
if ! diff -ru gen "$tmp/gen"; then
  echo "check_drift: gen/ is out of date with ../proto; run client_go/gen.sh and commit" >&2
  exit 1
fi
echo "check_drift: gen/ is up to date"
