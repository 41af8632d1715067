#!/usr/bin/env bash
# Runs the Java client's tests (JUnit 5, `mvn -q -B test`): builds the TypeScript client (for the
# cross-language runs test), downloads
# dependencies from Maven Central on first use, then tests against the servers the Python harness starts
# (`python -m cairn_tools.cluster`, which sets CAIRN_TARGET and the rest; TestServer.java reads them); a test that
# needs other server flags starts its own through the same harness (TestServer.start).
set -euo pipefail
cd "$(dirname "$0")"

missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "client_java: $1 is required but not installed" >&2
    exit 1
  fi
  echo "SKIP client_java: $1 is not installed"
  exit 0
}

command -v java >/dev/null 2>&1 || missing "a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null 2>&1 || missing "Maven 3.8+ (e.g. apt-get install maven)"
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
if [ "${java_major%%.*}" -lt 17 ] 2>/dev/null; then
  missing "a JDK 17+ (found Java $java_major)"
fi

# WorkerTest executes a run started by the TypeScript client (client_ts/scripts/runs-peer.mjs), which runs
# from its build.
command -v node >/dev/null 2>&1 || missing "Node.js 20+ (the TypeScript side of the cross-language runs test)"
echo "== client_java: build the TypeScript client for the cross-language runs test"
(cd ../client_ts && { [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; } \
  && npm run --silent build)

if [ -z "${CAIRN_TARGET:-}" ]; then  # the servers come from the Python harness (tools/cairn_tools/cluster.py)
  exec "${PYTHON:-python3}" -m cairn_tools.cluster -- bash "$0" "$@"
fi

echo "== client_java: mvn test"
mvn -B -ntp -Dstyle.color=never test

# What Maven Central receives: the jar with its sources and javadoc jars, built from a copy of this folder
# alone (the stubs are committed in src/main/java/dev/cairn/v1), so nothing reaches into the rest of the repository.
echo "== client_java: mvn package outside the repository"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar --exclude=./target -cf - . | tar -C "$tmp" -xf -
(cd "$tmp" && mvn -q -B -ntp -Dstyle.color=never package -DskipTests)
version="$(sed -n 's|^  <version>\(.*\)</version>|\1|p' pom.xml | head -n1)"
for jar in "" -sources -javadoc; do
  [ -s "$tmp/target/cairn-client-${version}${jar}.jar" ] || { echo "client_java: cairn-client-${version}${jar}.jar was not built" >&2; exit 1; }
done
echo "client_java: cairn-client-${version}.jar, -sources.jar and -javadoc.jar build outside the repository"
