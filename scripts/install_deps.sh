#!/usr/bin/env bash
# Installs what the Python suite needs, idempotently, on Debian (as root, or with passwordless sudo):
#   * redis-server, redis-cli, postgres (server), psql, pgbouncer and the CA bundle from Debian packages, only
#     when missing;
#   * chromium (and a font) for the console's browser tests, only when missing;
#   * a virtualenv (the active one, else ./.venv; python3-venv from Debian when missing) holding the repo in
#     editable mode with the dev extras: pip install -e '.[dev]'.
# One line of output per step. scripts/test_all.sh then runs everything inside that virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_PREFIX=install_deps
. scripts/lib/common.sh

have_pg_server() {
  command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

pkgs=()
if command -v redis-server >/dev/null 2>&1; then say "redis-server present ($(command -v redis-server))"; else pkgs+=(redis-server); fi
# redis-cli builds the Redis Cluster of the cluster tests (tests/harness/processes.py RedisCluster).
if command -v redis-cli >/dev/null 2>&1; then say "redis-cli present ($(command -v redis-cli))"; else pkgs+=(redis-tools); fi
if have_pg_server; then
  say "postgres present ($(command -v postgres || compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n1))"
else
  pkgs+=(postgresql)
fi
if command -v psql >/dev/null 2>&1; then say "psql present ($(command -v psql))"; else pkgs+=(postgresql-client); fi
# pgbouncer: the contract suite also runs through it in transaction mode (tests/harness PgBouncer)
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  say "pgbouncer present ($(command -v pgbouncer || echo /usr/sbin/pgbouncer))"
else
  pkgs+=(pgbouncer)
fi
if command -v chromium >/dev/null 2>&1; then say "chromium present ($(command -v chromium))"; else pkgs+=(chromium fonts-dejavu-core); fi
[ -s /etc/ssl/certs/ca-certificates.crt ] || pkgs+=(ca-certificates)
if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi

ensure_venv
python -m pip install -q -e '.[dev]'
say "pip installed -e .[dev] into $VENV"
