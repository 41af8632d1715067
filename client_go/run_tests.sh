#!/usr/bin/env bash
# Runs the Go checks of both modules, the client (.) and the LangGraphGo store
# (./langgraphgo, a module of its own so that the client needs no LangGraphGo):
# stub drift check, go vet, go test ./..., then LangGraphGo's own tests against
# the store (langgraphgo/frameworktest/run.sh).
# Uses the server at $CAIRN_TARGET, or starts `cairn serve` itself (see internal/testserver).
set -euo pipefail
cd "$(dirname "$0")"

missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "client_go: $1 is required but not installed" >&2
    exit 1
  fi
  echo "SKIP client_go: $1 is not installed"
  exit 0
}

command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || missing "Go (https://go.dev/dl, 1.26+)"
command -v npx >/dev/null 2>&1 || missing "Node.js/npx (for buf, the proto compiler of the drift check)"

echo "== client_go: go mod download"
go mod download
(cd langgraphgo && go mod download)

echo "== client_go: stub drift check"
./check_drift.sh

echo "== client_go: go vet"
go vet ./...
(cd langgraphgo && go vet ./... && go vet -tags frameworktest ./...)

echo "== client_go: go test"
go test -count=1 -timeout 8m ./...
(cd langgraphgo && go test -count=1 -timeout 8m ./...)

echo "== client_go/langgraphgo: LangGraphGo's own tests"
bash langgraphgo/frameworktest/run.sh
