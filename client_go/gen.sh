#!/usr/bin/env bash
# Regenerates the Go stubs (gen/cairn/v1) from ../proto. Usage: ./gen.sh [OUTPUT_DIR]
# The plugins come from the Go module proxy at pinned versions; buf (the compiler) from npm.
set -euo pipefail
cd "$(dirname "$0")"

PROTOC_GEN_GO_VERSION=v1.36.12          # keep equal to google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
BUF_VERSION=1.75.0

export GOBIN="$PWD/.tools/bin"
go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
export PATH="$GOBIN:$PATH"

out="${1:-.}"
if [ "$out" = "." ]; then rm -rf gen/cairn; fi
npx --yes "@bufbuild/buf@${BUF_VERSION}" generate --template buf.gen.yaml --output "$out"
