# The Go, Node.js and Java toolchains the client suites need (sourced by scripts/test_all.sh).
# Each ensure_* function finds the toolchain on PATH or installs it (Debian packages, the npm registry, the
# Go module proxy), puts it on PATH and returns 0; otherwise it sets MISSING to one sentence naming what is
# missing and how to get it, and returns 1.
# shellcheck shell=bash

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

debian_codename() { (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}"); }

# Node.js 20+ and npm: from PATH, else the official Linux build that npm's `node` package installs
# (the node-linux-<arch> package), fetched from the npm registry into ./.tools/node by scripts/fetch_node.py.
node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && command -v npx >/dev/null 2>&1 &&
    [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]
}
ensure_node() {
  node_ok && { say "node $(node --version) at $(command -v node)"; return 0; }
  local bin="$PWD/.tools/node/bin"
  if [ ! -x "$bin/node" ]; then
    ensure_ca_certificates >/dev/null 2>&1 || true
    if ! python3 scripts/fetch_node.py --dest .tools/node; then
      MISSING="Node.js 20+ with npm (for buf and the TypeScript suite): the npm registry download failed; install Node.js 20+ (https://nodejs.org) or let scripts/fetch_node.py reach the npm registry"
      return 1
    fi
  fi
  export PATH="$bin:$PATH"
  # The official build trusts only its own CA list; trust the system's too (as Debian's nodejs does), so a
  # registry mirror or a proxy the system trusts works for npm as it does for pip and go.
  [ -s /etc/ssl/certs/ca-certificates.crt ] && export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  node_ok || { MISSING="Node.js 20+ with npm: .tools/node/bin/node does not run here; install Node.js 20+ (https://nodejs.org)"; return 1; }
  say "node $(node --version) at $bin"
}

# Go: any Go 1.21+ runs the client (its go.mod's `go` line makes Go fetch that toolchain from the module
# proxy: GOTOOLCHAIN=auto). Debian 12 ships Go 1.19, so on bookworm golang-1.23-go comes from bookworm-backports.
GO_DEBIAN=1.23  # golang-1.23-go, installed in /usr/lib/go-1.23
go_needed() { sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' client_go/go.mod; }
go_version() { go env GOVERSION 2>/dev/null | sed 's/^go//'; }
ensure_go() {
  local need have
  need="$(go_needed)"
  command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] || export PATH="$PATH:/usr/local/go/bin"
  have="$(command -v go >/dev/null 2>&1 && go_version || echo 0)"
  if ! version_ge "$have" 1.21; then
    if [ -x "/usr/lib/go-${GO_DEBIAN}/bin/go" ]; then :
    elif [ "$(debian_codename)" = bookworm ] && can_apt; then
      if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
          as_root tee /etc/apt/sources.list.d/cairn-bookworm-backports.sources >/dev/null
        say "added bookworm-backports to apt's sources (/etc/apt/sources.list.d/cairn-bookworm-backports.sources)"
        APT_UPDATED=
      fi
      apt_install "golang-${GO_DEBIAN}-go" || true
    fi
    [ -x "/usr/lib/go-${GO_DEBIAN}/bin/go" ] && export PATH="/usr/lib/go-${GO_DEBIAN}/bin:$PATH"
    have="$(command -v go >/dev/null 2>&1 && go_version || echo 0)"
  fi
  if ! version_ge "$have" 1.21; then
    MISSING="Go 1.21+ (found ${have/#0/none}), which fetches go${need} for client_go: on Debian 12 \`sudo apt-get install -t bookworm-backports golang-${GO_DEBIAN}-go\`, or https://go.dev/dl"
    return 1
  fi
  if ! version_ge "$have" "$need"; then
    export GOTOOLCHAIN=auto
    ensure_ca_certificates >/dev/null 2>&1 || true
    if ! have="$(cd client_go && go env GOVERSION)"; then
      MISSING="go${need}: Go ${have} could not fetch it through the Go module proxy (GOPROXY=$(go env GOPROXY)); install Go ${need}+ from https://go.dev/dl"
      return 1
    fi
    say "go ${have#go} (fetched by GOTOOLCHAIN=auto through the module proxy; go.mod says go ${need})"
  else
    say "go ${have} at $(command -v go)"
  fi
}

# A JDK 17+ and Maven 3.8+: Debian 12's openjdk-17-jdk-headless and maven.
java_major() { java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | cut -d. -f1; }
java_ok() {
  command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 &&
    [ "$(java_major || echo 0)" -ge 17 ] 2>/dev/null
}
ensure_java() {
  java_ok || apt_install openjdk-17-jdk-headless maven || true
  if ! java_ok; then
    MISSING="a JDK 17+ and Maven (for client_java): \`sudo apt-get install openjdk-17-jdk-headless maven\`"
    return 1
  fi
  say "java $(java_major), $(mvn -v 2>/dev/null | sed -n '1s/\x1b\[[0-9;]*m//g; 1p')"
}
