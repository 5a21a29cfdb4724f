#!/bin/sh
# shellcheck shell=dash
# bench: the benchmark workload set (scripts/bench), run on one or more
# NUMA nodes of this guest, one workload after another.
#
# For each node and workload it prints, for the host's bench/collect.py:
#   BENCH-BEGIN node=N workload=W
#   RESULT workload=W metric=M value=V unit=U     (one or more)
#   BENCH-STATS node=N workload=W {json}          (kona-cxl node only:
#   BENCH-WINDOWS node=N workload=W {json}         konactl stats/windows)
#   BENCH-END node=N workload=W rc=R seconds=S
# On the Kona node, the device's statistics are reset before each workload
# and every dirty line is written back (FLUSH) after it, so each workload's
# write-back is all it dirtied, as a page-granular runtime's would be.
#
# Environment (scripts/bench passes these):
#   KONA_BENCH_NODES="kona"      "0" for node 0, "kona" for the CXL node
#                                (the one kona-online creates), in order
#   KONA_BENCH_WORKLOADS="..."   names below; default: all of them
#   KONA_BENCH_MIB=4             data set (footprint) of each workload, MiB
#   KONA_BENCH_SECONDS=4         run time of the timed workloads (stress-ng)
#   KONA_BENCH_WINDOW_MS=1000    per-window tracking on the Kona node
#                                (0: off)
. /etc/kona/lib.sh

NODES=${KONA_BENCH_NODES:-kona}
WORKLOADS=${KONA_BENCH_WORKLOADS:-"redis-seq redis-rand stress-seq stress-rand sort hash-join linreg histogram pagerank cc konabench"}
MIB=${KONA_BENCH_MIB:-4}
SECONDS_EACH=${KONA_BENCH_SECONDS:-4}
WINDOW_MS=${KONA_BENCH_WINDOW_MS:-1000}
# redis: 300-byte values, as in the paper; keys so that the values alone
# fill the data set.
REDIS_VALUE=300
REDIS_KEYS=$((MIB * 1048576 / 400))
# graphs: CSR of V vertices with 8 edges each is ~40 bytes per vertex with
# the rank arrays; the rest of the data set is the edge list's generator.
GRAPH_VERTICES=$((MIB * 1048576 / 128))

result() { echo "RESULT workload=$1 metric=$2 value=$3 unit=$4"; }

# The redis-server on NODE (port 6400+NODE), in-memory only.
redis_start() {
    local node=$1 port=$((6400 + $1)) i=0
    numactl --membind="$node" redis-server --port "$port" --save '' \
        --appendonly no --protected-mode no >"/run/redis-$port.log" 2>&1 &
    while ! redis-cli -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -ge 1200 ] && return 1
        usleep 100000
    done
    REDIS_PORT=$port
}

# SET then GET every key in order, pipelined on one connection as a bulk
# loader would (the server, not a client waiting for each reply, is what
# is measured), every reply checked: kona-redis-seq (bench/workloads/;
# redis-cli --pipe parsed GET replies more slowly than the server sent
# them). Then the server holds every key.
wl_redis_seq() {
    redis_start "$1" || return 1
    kona-redis-seq --port "$REDIS_PORT" --keys "$REDIS_KEYS" \
        --value-size "$REDIS_VALUE" || return 1
    [ "$(redis-cli -p "$REDIS_PORT" dbsize)" = "$REDIS_KEYS" ] ||
        { echo "redis-seq: the server holds $(redis-cli -p "$REDIS_PORT" dbsize) keys, not $REDIS_KEYS"; return 1; }
}

# redis-benchmark: SET and GET, 1:1, random keys over the same key space
# (the server redis-seq filled).
wl_redis_rand() {
    local t0 n=$((REDIS_KEYS / 2)) set get
    [ -n "${REDIS_PORT:-}" ] || redis_start "$1" || return 1
    t0=$(kona_uptime)
    redis-benchmark -p "$REDIS_PORT" -t set,get -n "$n" -r "$REDIS_KEYS" \
        -d "$REDIS_VALUE" -c 4 -P 8 --csv >/run/rb.csv 2>&1 || return 1
    set=$(awk -F'"' '$2 == "SET" { print $4 }' /run/rb.csv)
    get=$(awk -F'"' '$2 == "GET" { print $4 }' /run/rb.csv)
    [ -n "$set" ] && [ -n "$get" ] || { cat /run/rb.csv; return 1; }
    result redis-rand set-ops "$set" ops/s
    result redis-rand get-ops "$get" ops/s
    result redis-rand ops "$(awk -v a="$set" -v b="$get" 'BEGIN { printf "%.1f", 2 / (1 / a + 1 / b) }')" ops/s
    result redis-rand seconds "$(kona_since "$t0")" s
}

redis_stop() {
    [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
    REDIS_PORT=
}

# stress-ng's vm stressor with one method, for a fixed time; bogo ops/s.
wl_stress() {
    local name=$1 method=$2 node=$3 rate
    numactl --membind="$node" stress-ng --vm 1 --vm-bytes "${MIB}M" \
        --vm-method "$method" --vm-keep --verify \
        --timeout "${SECONDS_EACH}s" --metrics-brief >/run/stress.out 2>&1 ||
        { cat /run/stress.out; return 1; }
    # "stress-ng: metrc: [pid] vm  OPS  REAL  USR  SYS  OPS/S(real) ..."
    rate=$(awk '$4 == "vm" && $5 ~ /^[0-9]/ { print $9 }' /run/stress.out)
    [ -n "$rate" ] || { cat /run/stress.out; return 1; }
    result "$name" ops "$rate" bogo-ops/s
}

wl_konabench() {
    konabench "$1" "$MIB" | sed 's/^RESULT node=[0-9]* /RESULT workload=konabench /'
}

run_workload() {
    local w=$1 node=$2
    case "$w" in
        redis-seq) wl_redis_seq "$node" ;;
        redis-rand) wl_redis_rand "$node" ;;
        stress-seq) wl_stress stress-seq write64 "$node" ;;
        stress-rand) wl_stress stress-rand rand-set "$node" ;;
        sort) kona-sort sort --node "$node" --mib "$MIB" ;;
        hash-join) kona-sort join --node "$node" --mib "$MIB" ;;
        linreg) kona-mapreduce linreg --node "$node" --mib "$MIB" ;;
        histogram) kona-mapreduce histogram --node "$node" --mib "$MIB" ;;
        pagerank) kona-graph pagerank --node "$node" --vertices "$GRAPH_VERTICES" --degree 8 ;;
        cc) kona-graph cc --node "$node" --vertices "$GRAPH_VERTICES" --degree 8 ;;
        konabench) wl_konabench "$node" ;;
        *) echo "bench: unknown workload '$w'"; return 2 ;;
    esac
}

kona_online_node
KONA_DEV=
konactl info >/dev/null 2>&1 && KONA_DEV=1
if [ -n "$KONA_DEV" ] && [ "$WINDOW_MS" -gt 0 ] &&
    ! konactl windows "$WINDOW_MS" 2>/dev/null; then
    # tracking=fast does not see stores one by one: no windows.
    echo "bench: the device refused per-window tracking; no windows"
    WINDOW_MS=0
fi
failed=
for n in $NODES; do
    [ "$n" = kona ] && n=$KONA_NODE
    for w in $WORKLOADS; do
        kona_step "bench: $w on node $n"
        echo "BENCH-BEGIN node=$n workload=$w"
        stats=
        [ -n "$KONA_DEV" ] && [ "$n" = "$KONA_NODE" ] && stats=1
        [ -n "$stats" ] && konactl reset-stats
        t0=$(kona_uptime)
        rc=0
        run_workload "$w" "$n" || rc=$?
        secs=$(kona_since "$t0")
        # redis-rand reuses redis-seq's server (and its data).
        [ "$w" = redis-seq ] && echo "$WORKLOADS" | grep -q redis-rand || redis_stop
        if [ -n "$stats" ]; then
            # The run's last, partial window counts too (a short workload
            # may not last one whole window).
            [ "$WINDOW_MS" -gt 0 ] && konactl close-window >/dev/null
            konactl flush >/dev/null
            echo "BENCH-STATS node=$n workload=$w $(konactl stats --json)"
            echo "BENCH-WINDOWS node=$n workload=$w $(konactl windows --json)"
        fi
        echo "BENCH-END node=$n workload=$w rc=$rc seconds=$secs"
        [ "$rc" = 0 ] || failed="$failed $w@$n"
    done
done
[ -z "$failed" ] || kona_fail "workloads failed:$failed"
exit 0
