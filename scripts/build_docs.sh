#!/usr/bin/env bash
# The API reference of the four clients, built from their doc comments into docs/api/<lang>/ (`make docs`):
#   Python  pdoc (a dev dependency), Google-style docstrings  -> docs/api/python/index.html
#   Go      `go doc -all` of both modules (the client and the LangGraphGo adapter), the text pkg.go.dev renders,
#           in one HTML page per module                      -> docs/api/go/index.html
#   TS      TypeDoc from npm (pinned below; run with npx like buf), TSDoc of the package's two entry points
#                                                             -> docs/api/ts/index.html
#   Java    javadoc through Maven's maven-javadoc-plugin, the same run that builds the release's javadoc jar
#                                                             -> docs/api/java/index.html
# docs/api/index.html links the four.
#
#   bash scripts/build_docs.sh [python|go|ts|java ...]    (default: all four)
#
# Toolchains come as for scripts/test_all.sh (scripts/lib/toolchains.sh). Outside CI a language whose toolchain
# cannot be had is skipped with one line naming what is missing; under CI=true that is a failure. Any language
# whose build fails fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_PREFIX=docs
. scripts/lib/common.sh
. scripts/lib/toolchains.sh

# toolchain LANG: finds or installs what LANG's build needs (in this shell: it sets PATH), else sets MISSING.
toolchain() {
  case "$1" in
    python) ensure_venv || { MISSING="a Python virtualenv: \`sudo apt-get install python3-venv\`"; return 1; } ;;
    go) ensure_go ;;
    ts) ensure_node ;;
    java) ensure_java ;;
  esac
}

TYPEDOC_VERSION=0.28.20
out="${DOCS_OUT:-$PWD/docs/api}"  # DOCS_OUT: another directory (the tests build into a temporary one)
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(python go ts java)
built=() skipped=()

unavailable() {
  if [ "${CI:-}" = "true" ]; then
    warn "FAIL $1: needs $MISSING"
    exit 1
  fi
  say "SKIP $1: needs $MISSING"
  skipped+=("$1")
}

# html_page TITLE: stdin (plain text) -> stdout, one HTML page with the text escaped in a <pre>.
html_page() {
  python3 -c '
import html, sys
title = html.escape(sys.argv[1])
print(f"<!doctype html><meta charset=utf-8><title>{title}</title>"
      "<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em}pre{white-space:pre-wrap}</style>"
      f"<h1>{title}</h1><pre>{html.escape(sys.stdin.read())}</pre>")' "$1"
}

docs_python() {
  python -c 'import pdoc' 2>/dev/null || pip install -q -e '.[dev]' >/dev/null
  rm -rf "$out/python"
  python -m pdoc --docformat google -o "$out/python" \
    cairn_client cairn_client.aio cairn_client.langgraph cairn_client.errors cairn_client.runs
}

docs_go() {
  rm -rf "$out/go"; mkdir -p "$out/go"
  # go doc reads the packages from source: nothing is fetched beyond the modules' toolchain line.
  (cd client_go && go doc -all .) | html_page "Go: github.com/cairn-dev/cairn/client_go" >"$out/go/client_go.html"
  (cd client_go/langgraphgo && go doc -all .) |
    html_page "Go: github.com/cairn-dev/cairn/client_go/langgraphgo" >"$out/go/langgraphgo.html"
  printf '%s\n' '<!doctype html><meta charset=utf-8><title>Go API</title><h1>Go API</h1><ul>' \
    '<li><a href="client_go.html">github.com/cairn-dev/cairn/client_go</a>: the client</li>' \
    '<li><a href="langgraphgo.html">github.com/cairn-dev/cairn/client_go/langgraphgo</a>: the LangGraphGo store and worker</li>' \
    '</ul>' >"$out/go/index.html"
}

docs_ts() {
  rm -rf "$out/ts"
  (
    cd client_ts
    [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    # The generated proto types are documented by the proto; TypeDoc need not warn that it leaves them out.
    npx --yes "typedoc@${TYPEDOC_VERSION}" --tsconfig tsconfig.build.json \
      --entryPoints src/index.ts --entryPoints src/langgraph.ts --out "$out/ts" --name "@cairn/client" \
      --readme none --excludePrivate --excludeInternal --validation.notExported false \
      --logLevel Warn
  )
}

docs_java() {
  rm -rf "$out/java"
  (cd client_java && mvn -q -B -Dstyle.color=never javadoc:javadoc)
  cp -r client_java/target/reports/apidocs "$out/java"
}

mkdir -p "$out"
for lang in "${langs[@]}"; do
  case "$lang" in python|go|ts|java) ;; *) warn "unknown language $lang (python, go, ts or java)"; exit 2 ;; esac
  if ! toolchain "$lang"; then
    unavailable "$lang"
    continue
  fi
  say "building the $lang API reference"
  # errexit is off in an `if` condition, subshell included: run the build as a plain command
  set +e
  (set -e; "docs_$lang")
  rc=$?
  set -e
  [ "$rc" = 0 ] || { warn "FAIL $lang: the API reference did not build (output above)"; exit 1; }
  built+=("$lang")
done

{
  echo '<!doctype html><meta charset=utf-8><title>Cairn API reference</title><h1>Cairn API reference</h1><ul>'
  for lang in python go ts java; do
    [ -f "$out/$lang/index.html" ] && echo "<li><a href=\"$lang/index.html\">$lang</a></li>"
  done
  echo '</ul>'
} >"$out/index.html"
say "built ${built[*]:-nothing}${skipped:+, skipped ${skipped[*]}}: $out/index.html"
