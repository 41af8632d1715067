#!/usr/bin/env bash
# Runs the Go checks of both modules, the client (.) and the LangGraphGo store
# (./langgraphgo, a module of its own so that the client needs no LangGraphGo):
# go vet, go test ./..., then LangGraphGo's own tests against
# the store (langgraphgo/frameworktest/run.sh).
# Uses the servers the Python harness starts (`python -m cairn_tools.cluster`, which sets CAIRN_TARGET and the
# rest; internal/testserver reads them); a test that needs other server flags starts its own through the same
# harness (testserver.Start). The stubs' drift check is scripts/check_generated.sh.
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

if [ -z "${CAIRN_TARGET:-}" ]; then
  exec "${PYTHON:-python3}" -m cairn_tools.cluster -- bash "$0" "$@"
fi

echo "== client_go: go mod download"
go mod download
(cd langgraphgo && go mod download)

echo "== client_go: go vet"
go vet ./...
(cd langgraphgo && go vet ./... && go vet -tags frameworktest ./...)

echo "== client_go: go test"
go test -count=1 -timeout 8m ./...
(cd langgraphgo && go test -count=1 -timeout 8m ./...)

echo "== client_go/langgraphgo: LangGraphGo's own tests"
bash langgraphgo/frameworktest/run.sh
