# Shared by scripts/*.sh (sourced, not run): Debian packages through apt-get, and the Python venv every
# script runs in. Each function prints at most one line per thing it does, prefixed with $LOG_PREFIX.
# shellcheck shell=bash

LOG_PREFIX="${LOG_PREFIX:-cairn}"
export DEBIAN_FRONTEND=noninteractive
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

say() { echo "${LOG_PREFIX}: $*"; }
warn() { echo "${LOG_PREFIX}: $*" >&2; }

# can_apt: apt-get is here and we are root, or sudo works without a password.
can_apt() {
  command -v apt-get >/dev/null 2>&1 || return 1
  [ "$(id -u)" = 0 ] && return 0
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# apt_install PKG...: installs Debian packages quietly; on failure prints apt's output and returns 1.
APT_UPDATED="${APT_UPDATED:-}"
apt_install() {
  if ! can_apt; then
    warn "cannot install $* (needs apt-get and root or passwordless sudo): run \`sudo apt-get install $*\`"
    return 1
  fi
  local log
  log="$(mktemp)"
  if { [ -n "$APT_UPDATED" ] || as_root apt-get update -qq; } >"$log" 2>&1 &&
     as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       -o Dpkg::Use-Pty=0 "$@" >>"$log" 2>&1; then
    APT_UPDATED=1
    rm -f "$log"
    say "apt-get installed $*"
    return 0
  fi
  cat "$log" >&2
  rm -f "$log"
  warn "apt-get install $* failed (output above)"
  return 1
}

# ensure_ca_certificates: the system CA bundle pip and git use; Debian's minimal images lack it.
ensure_ca_certificates() {
  [ -s /etc/ssl/certs/ca-certificates.crt ] && return 0
  apt_install ca-certificates
}

# ensure_venv: sets VENV to the virtualenv the scripts use and puts its bin/ first on PATH: the active one
# ($VIRTUAL_ENV), else ./.venv, created when missing (installing python3-venv from Debian if needed).
# A venv keeps the install away from the OS Python (PEP 668) and makes `cairn` and `python` resolve to it.
ensure_venv() {
  local python="${PYTHON:-python3}"
  if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    VENV="$VIRTUAL_ENV"
  else
    VENV="$PWD/.venv"
    if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }; then
      if ! command -v "$python" >/dev/null 2>&1; then
        apt_install python3 || return 1
      fi
      # Debian ships the venv module without ensurepip; python3-venv adds it.
      if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv || { warn "run \`sudo apt-get install python3-venv\`, then this again"; return 1; }
      fi
      ensure_ca_certificates || return 1
      "$python" -m venv --clear "$VENV" || { warn "\`$python -m venv $VENV\` failed"; return 1; }
      say "created the virtualenv $VENV"
    fi
  fi
  export VIRTUAL_ENV="$VENV"
  export PATH="$VENV/bin:$PATH"
}
