#!/usr/bin/env bash
# Installs what the Python tests need, idempotently:
#   * redis-server, postgres (server) and psql from Debian packages, only when their binaries are missing;
#   * chromium (and a font) for the console's browser tests, only when missing;
#   * the repo itself in editable mode with the dev extras: pip install -e '.[dev]'.
# Works as root on a fresh Debian 12 machine (uses sudo when not root). One line of output per step.
# Env: PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

have_pg_server() {
  command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

pkgs=()
if command -v redis-server >/dev/null 2>&1; then
  echo "install_deps: redis-server present ($(command -v redis-server))"
else
  pkgs+=(redis-server)
fi
if have_pg_server; then
  echo "install_deps: postgres present ($(command -v postgres || compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n1))"
else
  pkgs+=(postgresql)
fi
if command -v psql >/dev/null 2>&1; then
  echo "install_deps: psql present ($(command -v psql))"
else
  pkgs+=(postgresql-client)
fi
if command -v chromium >/dev/null 2>&1; then
  echo "install_deps: chromium present ($(command -v chromium))"
else
  pkgs+=(chromium fonts-dejavu-core)
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  pkgs+=(python3 python3-pip python3-venv)
elif ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  pkgs+=(python3-pip)
fi

if ((${#pkgs[@]})); then
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo -n); else
      echo "install_deps: need root (or sudo) to apt-get install ${pkgs[*]}" >&2; exit 1
    fi
  fi
  log="$(mktemp)"
  if ! { "${sudo[@]}" apt-get update -qq &&
         "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Use-Pty=0 "${pkgs[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "install_deps: apt-get install ${pkgs[*]} FAILED" >&2; exit 1
  fi
  rm -f "$log"
  echo "install_deps: apt-get installed ${pkgs[*]}"
fi

# A distro Python (PEP 668 "externally managed", e.g. Debian 12's /usr/bin/python3) outside a venv refuses
# plain pip installs; this is a disposable test machine, so override it there.
pip_flags=(-q)
if "$PYTHON" - <<'PY'
import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if os.path.exists(marker) and sys.prefix == sys.base_prefix else 1)
PY
then
  pip_flags+=(--break-system-packages)
fi
"$PYTHON" -m pip install "${pip_flags[@]}" -e '.[dev]'
echo "install_deps: pip installed -e .[dev] into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
