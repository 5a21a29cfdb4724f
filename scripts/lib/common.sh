# Shared helpers for Kona-CXL scripts. Source, do not run.
# shellcheck shell=bash

KONA_ROOT=${KONA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KONA_BUILD=${KONA_BUILD:-$KONA_ROOT/build}
# QEMU's own out-of-tree build directory and the binary our scripts use.
QEMU_BUILD=${QEMU_BUILD:-$KONA_BUILD/qemu}
QEMU_BIN=${QEMU_BIN:-$QEMU_BUILD/qemu-system-x86_64}
# Our own (non-QEMU) meson build: memnode, guest runtime, unit tests.
KONA_MESON_BUILD=${KONA_MESON_BUILD:-$KONA_BUILD/kona}
GUEST_DIR=${GUEST_DIR:-$KONA_BUILD/guest}
# Firmware from Debian's seabios and qemu-system-data packages.
QEMU_FW_ARGS=(-L /usr/share/qemu -L /usr/share/seabios)

log() { printf '[kona] %s\n' "$*" >&2; }
die() { printf '[kona] error: %s\n' "$*" >&2; exit 1; }

# Run a step; on failure say which step failed and where its log is.
step() {
    local name=$1 logfile=$2
    shift 2
    log "$name (log: $logfile)"
    if ! "$@" >"$logfile" 2>&1; then
        tail -n 30 "$logfile" >&2
        die "step '$name' failed; full log: $logfile"
    fi
}
