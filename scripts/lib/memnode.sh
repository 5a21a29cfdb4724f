# Start and stop kona-memnode processes for scripts. Source, do not run.
# shellcheck shell=bash
#
#   . scripts/lib/memnode.sh
#   kona_memnode_start DIR [extra kona-memnode args]   # sets KONA_MEMNODE_ADDR
#   ...
#   kona_memnode_stop                                  # also run at exit

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KONA_MEMNODE_BIN=${KONA_MEMNODE_BIN:-$KONA_MESON_BUILD/memnode/kona-memnode}
_KONA_MEMNODE_PIDS=()

# kona_memnode_start DIR [ARGS...]: a memnode listening on DIR/memnode.sock,
# logging to DIR/memnode.log; returns once it listens.
kona_memnode_start() {
    local dir=$1 ready pid
    shift
    [ -x "$KONA_MEMNODE_BIN" ] || die "no kona-memnode at $KONA_MEMNODE_BIN (run scripts/setup)"
    mkdir -p "$dir"
    rm -f "$dir/memnode.sock" "$dir/memnode.ready"
    "$KONA_MEMNODE_BIN" --listen "unix:$dir/memnode.sock" "$@" \
        >"$dir/memnode.ready" 2>"$dir/memnode.log" &
    pid=$!
    _KONA_MEMNODE_PIDS+=("$pid")
    # It prints one "kona-memnode ready: ..." line once it listens.
    for _ in $(seq 100); do
        if grep -q 'ready' "$dir/memnode.ready" 2>/dev/null; then
            KONA_MEMNODE_ADDR=unix:$dir/memnode.sock
            log "memory node up: pid $pid, $KONA_MEMNODE_ADDR (log: $dir/memnode.log)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/memnode.log" >&2
    die "kona-memnode did not start (log: $dir/memnode.log)"
}

kona_memnode_stop() {
    local pid
    for pid in "${_KONA_MEMNODE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    _KONA_MEMNODE_PIDS=()
}
