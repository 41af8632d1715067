#!/usr/bin/env bash
# `make gen`: every language's stubs from proto/, by one `buf generate` (buf.gen.yaml at the root):
# Python into api_py/cairn/v1 (import as cairn.v1), Go into client_go/gen, TypeScript into client_ts/src/gen,
# Java into client_java/src/main/java/dev/cairn/v1.
# Usage: scripts/gen_proto.sh [OUTPUT_DIR]   (default: the repository itself; check_generated.sh passes a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=1.75.0                      # also client_ts/package.json's @bufbuild/buf (tests/test_packaging.py)
PROTOC_GEN_GO_VERSION=v1.36.12          # keep equal to google.golang.org/protobuf in client_go/go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
PROTOC_JAVA_VERSION=3.25.9              # keep equal to client_java/pom.xml's protobuf.version
GRPC_JAVA_VERSION=1.83.1                # keep equal to client_java/pom.xml's grpc.version
out="${1:-.}"

# The plugins: Go's from the module proxy at pinned versions; ts-proto from client_ts's locked node_modules;
# the Python one is grpcio-tools (pinned in pyproject's dev extra), run by scripts/protoc_gen_python.py.
GOBIN="$PWD/client_go/.tools/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$PWD/client_go/.tools/bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
[ -x client_ts/node_modules/.bin/protoc-gen-ts_proto ] ||
  (cd client_ts && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
python_dir="$(dirname "$(command -v "${PYTHON:-python3}")")"  # the venv's python3 runs the Python plugin
# Java's generators are Maven artifacts (protoc itself, for its built-in Java generator, and grpc-java's plugin),
# fetched from Maven Central by Maven's own dependency plugin into client_java/.tools.
java_tool() {  # java_tool GROUP:ARTIFACT VERSION NAME
  [ -x "client_java/.tools/$3" ] && return 0
  local arch; arch="$(uname -m)"; arch="${arch/aarch64/aarch_64}"
  mvn -q -B -ntp dependency:copy -Dartifact="$1:$2:exe:linux-$arch" -DoutputDirectory=client_java/.tools \
    -Dmdep.stripVersion=true
  mv "client_java/.tools/${1##*:}-linux-$arch.exe" "client_java/.tools/$3"
  chmod +x "client_java/.tools/$3"
}
java_tool com.google.protobuf:protoc "$PROTOC_JAVA_VERSION" protoc
java_tool io.grpc:protoc-gen-grpc-java "$GRPC_JAVA_VERSION" protoc-gen-grpc-java

if [ "$out" = "." ]; then
  rm -rf api_py/cairn/v1/*_pb2*.py api_py/cairn/v1/*_pb2*.pyi client_go/gen/cairn client_ts/src/gen \
    client_java/src/main/java/dev/cairn/v1
fi
PATH="$python_dir:$PATH" npx --yes "@bufbuild/buf@${BUF_VERSION}" generate --output "$out"
