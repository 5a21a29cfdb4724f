# shellcheck shell=dash
# Kona-CXL guest shell library (busybox sh), installed as /etc/kona/lib.sh
# and sourced by the workload scripts in /etc/kona/scripts/
# (guest-runtime/workloads/).
#
# Markers for the host (scripts/lib/vm.sh shows and parses them):
#   KONA-STEP <what>               a step begins (progress on the host)
#   KONA-FAIL step='<what>': why   a step failed; the script then exits 1
#   KONA-READY <what>              ready for the host's KONA_VM_ON_READY hook

KONA_STEP=
KONA_NODE=
KONAD_PID=
KONAD_LOG=/run/konad.log

kona_step() {
    KONA_STEP="$*"
    echo "KONA-STEP $*"
}

kona_fail() {
    echo "KONA-FAIL step='$KONA_STEP': $*"
    exit 1
}

# kona_do STEP CMD...: a step that is one command.
kona_do() {
    local s=$1
    shift
    kona_step "$s"
    "$@" || kona_fail "'$*' exited with status $?"
}

kona_uptime() { cut -d' ' -f1 /proc/uptime; }

# Seconds (two decimals) since uptime $1.
kona_since() { awk -v a="$1" -v b="$(kona_uptime)" 'BEGIN { printf "%.2f", b - a }'; }

# Create the CXL region and online it as ZONE_MOVABLE; sets KONA_NODE.
# Movable keeps the kernel's own allocations (slab, page tables, socket
# buffers) off the node even for a task bound to it: only user pages go
# there. (The host boots the guest with memhp_default_state=offline so the
# kernel does not online the blocks as Normal first.) Extra args go to
# kona-online.
kona_online_node() {
    local out
    kona_step "online the Kona memory as a NUMA node"
    out=$(kona-online --movable "$@") || kona_fail "kona-online failed (see the lines above)"
    echo "$out"
    KONA_NODE=$(echo "$out" | sed -n 's/^node=\([0-9]*\) .*/\1/p' | head -n 1)
    [ -n "$KONA_NODE" ] && [ "$KONA_NODE" != 0 ] || kona_fail "kona-online printed no node: $out"
    # Kernel NUMA balancing would migrate the workload's pages back to
    # node 0 behind our back.
    echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null
    # 4 KiB pages, as a Kona runtime has: a transparent huge page's first
    # touch zeroes 2 MiB through the device byte by byte (seconds under
    # TCG) and claims 512 cache blocks at once. KONA_THP=always keeps THP.
    echo "${KONA_THP:-never}" >/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null
    return 0
}

# konad_start [ARGS...]: start konad in the background, logging to
# $KONAD_LOG; returns once it manages the device.
konad_start() {
    local i=0 before
    # A restarted konad appends to the same log: wait for a new line.
    touch "$KONAD_LOG"
    before=$(grep -c 'managing' "$KONAD_LOG")
    konad -P /run/konad.pid -o "$KONAD_LOG" "$@" &
    KONAD_PID=$!
    while [ "$(grep -c 'managing' "$KONAD_LOG")" -le "$before" ]; do
        if ! kill -0 "$KONAD_PID" 2>/dev/null; then
            tail -n 5 "$KONAD_LOG" 2>/dev/null
            KONAD_PID=
            return 1
        fi
        i=$((i + 1))
        [ "$i" -ge 200 ] && { echo "konad did not start within 10 s"; return 1; }
        usleep 50000
    done
    echo "konad: pid $KONAD_PID, $(grep managing "$KONAD_LOG" | tail -n 1 | sed 's/^[^:]*: //')"
}

# Stop konad the polite way (SIGTERM: it restores device mode) and wait.
konad_stop() {
    [ -n "$KONAD_PID" ] || return 0
    kill -TERM "$KONAD_PID" 2>/dev/null
    wait "$KONAD_PID"
    local rc=$?
    KONAD_PID=
    return $rc
}

# Kill konad without warning (SIGKILL): the device stays in guest mode
# and its own policy has to take over when the cache fills.
konad_kill() {
    [ -n "$KONAD_PID" ] || return 0
    kill -KILL "$KONAD_PID" 2>/dev/null
    wait "$KONAD_PID" 2>/dev/null
    KONAD_PID=
    return 0
}

# Ask konad for its totals (SIGUSR1) and wait until it logged them.
konad_report() {
    local i=0 before
    [ -n "$KONAD_PID" ] || return 0
    before=$(grep -c ': report' "$KONAD_LOG")
    kill -USR1 "$KONAD_PID" 2>/dev/null || return 1
    while [ "$(grep -c ': report' "$KONAD_LOG")" -le "$before" ]; do
        i=$((i + 1))
        [ "$i" -ge 100 ] && return 1
        usleep 50000
    done
}

# The last totals line konad logged (its exit or SIGUSR1 report).
konad_totals() { grep -E ': (exit|report)' "$KONAD_LOG" | tail -n 1 | sed 's/^[^:]*: //'; }

# The device's statistics as the guest sees them (control registers).
kona_guest_stats() {
    echo "=== kona-cxl statistics, in-guest view (konactl stats) ==="
    konactl stats
}

# The end of a workload: stop konad (if it runs) and show its log, then the
# device's statistics as the guest sees them.
kona_workload_done() {
    if [ "${KONAD:-0}" = 1 ]; then
        kona_step "stop konad"
        konad_stop || echo "workload: konad exited with status $?"
        echo "=== konad log ==="
        grep -v ': pass ' "$KONAD_LOG"
    fi
    kona_guest_stats
}
