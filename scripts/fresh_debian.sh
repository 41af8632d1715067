#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian 12 that has only git and python3:
#   1. debootstrap (minbase + git + python3) builds a Debian 12 root, kept as a pristine tarball for reruns;
#   2. this repository's HEAD is cloned into it;
#   3. inside it (chroot, in private mount and pid namespaces; the network is the host's), as root:
#      `bash scripts/serve.sh` must answer gRPC health SERVING, then stop on SIGINT;
#      `bash scripts/test_all.sh` must pass.
# Everything goes to $FRESH_DIR/fresh_debian.log. Needs root, debootstrap (installed when missing), and
# Debian's archive plus the package registries (PyPI, npm, the Go module proxy, Maven Central).
#
#   sudo bash scripts/fresh_debian.sh [--ca FILE] [--base-only] [-- TEST_ALL_ARGS...]
#
# --ca FILE: a CA certificate the root must trust, for a network that reaches the registries through an
#            intercepting proxy (the only thing added to the fresh system besides the clone).
# Env: FRESH_DIR (default /var/tmp/cairn-fresh), DEBIAN_MIRROR (default http://deb.debian.org/debian),
#      FRESH_PORT (serve.sh's port, default 44051), CI (passed through; CI=true makes a skip a failure).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
FRESH_DIR="${FRESH_DIR:-/var/tmp/cairn-fresh}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PORT="${FRESH_PORT:-44051}"
ca="" base_only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ca) ca="$2"; shift 2 ;;
    --base-only) base_only=1; shift ;;
    --) shift; break ;;
    *) echo "fresh_debian: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "fresh_debian: needs root (debootstrap, chroot): run it with sudo" >&2; exit 1; }
mkdir -p "$FRESH_DIR"
log="$FRESH_DIR/fresh_debian.log"
exec > >(tee "$log") 2>&1
say() { echo "fresh_debian: $* ($(date -u +%H:%M:%S))"; }

base="$FRESH_DIR/bookworm-minbase-git-python3.tar"
if [ ! -s "$base" ]; then
  command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  rm -rf "$FRESH_DIR/base"
  say "debootstrap --variant=minbase --include=git,python3 bookworm from $MIRROR"
  debootstrap --variant=minbase --include=git,python3 bookworm "$FRESH_DIR/base" "$MIRROR" >"$FRESH_DIR/debootstrap.log" 2>&1 ||
    { tail -n 20 "$FRESH_DIR/debootstrap.log"; say "debootstrap failed"; exit 1; }
  tar -C "$FRESH_DIR/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$FRESH_DIR/base"
fi
[ -n "$base_only" ] && { say "base root in $base"; exit 0; }

root="$FRESH_DIR/root"
rm -rf "$root"; mkdir -p "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -n "$ca" ]; then
  install -D -m 0644 "$ca" "$root/usr/local/share/ca-certificates/site-ca.crt"
  say "the root trusts $ca (installed into its CA bundle with ca-certificates)"
fi
sha="$(git -C "$repo" rev-parse HEAD)"
git clone -q "$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir)" "$root/root/cairn"
git -C "$root/root/cairn" checkout -q "$sha"
say "fresh Debian $(cat "$root/etc/debian_version") in $root: $(chroot "$root" dpkg-query -W -f '${binary:Package} ' git python3 2>/dev/null)and the clone at ${sha:0:10}"
[ -z "$(git -C "$repo" status --porcelain)" ] || say "note: uncommitted changes in $repo are not part of the clone"

inner=$(cat <<'IN'
set -euo pipefail
cd /root/cairn
echo "fresh_debian: \$ bash scripts/serve.sh   (CAIRN_LISTEN=$CAIRN_LISTEN)"
bash scripts/serve.sh >/root/serve.log 2>&1 &
pid=$!
for _ in $(seq 1 900); do
  if ! kill -0 "$pid" 2>/dev/null; then cat /root/serve.log; echo "fresh_debian: serve.sh exited"; exit 1; fi
  if [ -x .venv/bin/cairn ] && .venv/bin/cairn health --target "$CAIRN_LISTEN" >/dev/null 2>&1; then break; fi
  sleep 1
done
.venv/bin/cairn health --target "$CAIRN_LISTEN"
kill -INT "$pid"; wait "$pid" || true
cat /root/serve.log
echo "fresh_debian: serve.sh: last line above; test_all.sh next"
unset CAIRN_LISTEN
echo "fresh_debian: \$ bash scripts/test_all.sh $*"
bash scripts/test_all.sh "$@"
IN
)
export CAIRN_LISTEN="127.0.0.1:${PORT}"
say "running the README's commands in the chroot"
set +e
unshare --mount --pid --fork --mount-proc="$root/proc" /bin/bash -c '
  root="$1"; shift
  mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
  mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
  mount -t sysfs sys "$root/sys"
  mount -t tmpfs -o mode=1777 tmp "$root/tmp"
  exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ${CI:+CI=$CI} \
    CAIRN_LISTEN="$CAIRN_LISTEN" /bin/bash -c "$@"
' fresh "$root" "$inner" inner "$@"
rc=$?
set -e
say "exit status $rc; log: $log"
exit "$rc"
