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

# $1 in single quotes, for a script the guest's (busybox) sh runs.
kona_sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Run a step; on failure say which step failed and where its log is.
# While it runs, a line every KONA_PROGRESS_S seconds (default 20; 0: none)
# says how far it has got (_step_progress), so that a long step (the QEMU
# build, apt, the guest image) is not a silent wait. The command itself
# runs in the foreground, as before: Ctrl-C reaches it.
step() {
    local name=$1 logfile=$2 rc=0 mon=''
    shift 2
    log "$name (log: $logfile)"
    : >"$logfile"
    if [ "${KONA_PROGRESS_S:-20}" -gt 0 ]; then
        _step_monitor "${name%% (*}" "$logfile" "$BASHPID" &
        mon=$!
    fi
    "$@" >"$logfile" 2>&1 || rc=$?
    if [ -n "$mon" ]; then
        kill -TERM "$mon" 2>/dev/null || true
        wait "$mon" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ]; then
        tail -n 30 "$logfile" >&2
        die "step '$name' failed; full log: $logfile"
    fi
}

# step's progress lines: "[kona] LABEL: PROGRESS" every KONA_PROGRESS_S
# seconds while process $3 (the caller) lives. Background jobs of a script
# ignore SIGINT, so after a Ctrl-C this notices within a second that its
# caller is gone and ends too.
_step_monitor() {
    local label=$1 logfile=$2 parent=$3 every=${KONA_PROGRESS_S:-20}
    local t0=$SECONDS next=$((SECONDS + every))
    while kill -0 "$parent" 2>/dev/null; do
        sleep 1 >/dev/null 2>&1     # not holding a caller's pipe open
        if [ "$SECONDS" -ge "$next" ]; then
            next=$((SECONDS + every))
            log "$label: $(_step_progress "$logfile" $((SECONDS - t0)))"
        fi
    done
}

# How far the step writing LOGFILE has got, SECONDS into it: ninja's last
# "[N/M]" as a percentage, apt-get install's "Setting up" lines out of the
# packages it announced, else the time and the log's last line.
_step_progress() {
    awk -v secs="$2" '
        /^\[[0-9]+\/[0-9]+\] / { split(substr($1, 2, length($1) - 2), nm, "/") }
        / upgraded, [0-9]+ newly installed/ { pkgs = $1 + $3 }
        /^Setting up / { set_up++ }
        NF { last = $0 }
        END {
            if (nm[2] > 0)
                printf "%d%% (%d/%d)\n", 100 * nm[1] / nm[2], nm[1], nm[2]
            else if (pkgs > 0 && set_up > 0)
                printf "%d%% (%d/%d packages set up)\n", 100 * set_up / pkgs, set_up, pkgs
            else
                printf "%ds, last: %s\n", secs, substr(last, 1, 100)
        }' "$1" 2>/dev/null
}

# The command of the current trap on signal $1 (empty if none): to chain
# a library's own clean-up before it.
kona_trap_cmd() {
    local t
    t=$(trap -p "$1")
    [ -n "$t" ] || return 0
    t=${t#trap -- }
    t=${t% "$1"}
    eval "printf '%s' $t"
}
