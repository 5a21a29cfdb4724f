# Helpers for the whole-guest tests that drive the main job (scripts/run).
# Source, do not run.
# shellcheck shell=bash
#
#   . "$(dirname "$0")/lib.sh"
#   kt_run NAME VAR=VALUE...     scripts/run with those settings, output in
#                                $KT_OUT, run directory $KT_DIR
#   kt_check "what" VALUE OP REF numeric check, prints ok/not ok
#   kt_qstat KEY                 a counter of the host view (QMP)
#   kt_gstat KEY                 a counter of konactl's view in the guest
#   kt_finish                    plan line, exit status

. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"

KT_N=0
KT_FAILS=0
KT_DIR=
KT_OUT=

kt_ok() { KT_N=$((KT_N + 1)); echo "ok $KT_N - $*"; }
kt_notok() { KT_N=$((KT_N + 1)); KT_FAILS=$((KT_FAILS + 1)); echo "not ok $KT_N - $*"; }

# kt_assert "what" COMMAND...: ok if the command succeeds.
kt_assert() {
    local what=$1
    shift
    if "$@"; then kt_ok "$what"; else kt_notok "$what"; fi
}

# kt_check "what" VALUE OP REF (OP: -eq -ge -le -gt -lt -ne)
kt_check() {
    local what=$1 v=$2 op=$3 ref=$4
    if [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" "$op" "$ref" ]; then
        kt_ok "$what: $v ($op $ref)"
    else
        kt_notok "$what: ${v:-missing}, expected $op $ref"
    fi
}

# kt_run NAME VAR=VALUE...: the main job with these settings. Returns its
# exit status; its output (stdout and stderr) is in $KT_OUT.
kt_run() {
    local name=$1 rc=0 t0=$SECONDS
    shift
    KT_DIR=$KONA_BUILD/tests/$name
    KT_OUT=$KT_DIR/output.txt
    rm -rf "$KT_DIR"
    mkdir -p "$KT_DIR"
    # Cheap when nothing changed; the test must run the current runtime.
    "$KONA_ROOT/scripts/build-guest-image" >"$KT_DIR/image.log" 2>&1 || {
        cat "$KT_DIR/image.log"
        return 1
    }
    env KONA_SKIP_SETUP=1 KONA_RUN_DIR="$KT_DIR" "$@" \
        "$KONA_ROOT/scripts/run" >"$KT_OUT" 2>&1 || rc=$?
    echo "# scripts/run ($*) took $((SECONDS - t0)) s, status $rc; output:"
    sed 's/^/#   /' "$KT_OUT"
    return $rc
}

# A counter from the host's QMP report (stats.txt of the run).
kt_qstat() { awk -v k="$1" '$1 == k { print $2; exit }' "$KT_DIR/stats.txt" 2>/dev/null; }

# A counter from konactl's report inside the guest (in the output).
kt_gstat() {
    sed -n '/^=== kona-cxl statistics, in-guest view/,/^===/p' "$KT_OUT" |
        awk -v k="$1" '$1 == k { print $2; exit }'
}

# The names of the counters in one of the two reports (host|guest).
kt_stat_names() {
    local section
    if [ "$1" = host ]; then
        section='/^=== kona-cxl statistics, host view/,/^\[kona\]/p'
    else
        section='/^=== kona-cxl statistics, in-guest view/,/^===/p'
    fi
    sed -n "$section" "$KT_OUT" | awk '/^  [a-z]/ && NF == 2 { print $1 }'
}

# Processes whose command line mentions the run directory (QEMU with its
# QMP socket, the memory node with its socket): there must be none left.
kt_leftovers() {
    local f args pids=''
    for f in /proc/[0-9]*/cmdline; do
        # Builtins only: a grep of our own would match itself.
        mapfile -d '' args <"$f" 2>/dev/null || continue
        if [[ "${args[*]}" == *"$KT_DIR/"* ]]; then
            f=${f#/proc/}
            pids="$pids ${f%/cmdline}"
        fi
    done
    echo "$pids"
}

kt_no_leftovers() {
    local p
    p=$(kt_leftovers)
    if [ -z "$p" ]; then
        kt_ok "no process of the run left behind"
    else
        kt_notok "processes left behind:$p ($(for x in $p; do tr '\0' ' ' </proc/$x/cmdline 2>/dev/null | cut -c1-80; echo; done))"
    fi
}

# The device must never have dropped a guest access (see scripts/lib/vm.sh).
kt_no_dropped_access() {
    if grep -q 'Blocked re-entrant IO' "$KT_DIR/guest.log"; then
        kt_notok "QEMU dropped a guest access to kona-cxl: $(grep -m1 'Blocked re-entrant' "$KT_DIR/guest.log")"
    else
        kt_ok "QEMU dropped no guest access to kona-cxl"
    fi
}

kt_finish() {
    echo "1..$KT_N"
    [ "$KT_FAILS" = 0 ]
}
