#!/bin/sh
# shellcheck shell=dash
# redis: redis-server (unmodified, from Debian) with its memory on the
# Kona node, driven by redis-benchmark inside the guest; the same server is
# reachable from the host through QEMU's port forward (KONA-READY marker),
# and, for reference, a second redis-server on node 0 gets the same
# benchmark.
#
# Environment (scripts/run passes these):
#   KONA_REDIS_REQUESTS=10000  requests per test (-n)
#   KONA_REDIS_KEYS=N          key space (-r; default: the request count)
#   KONA_REDIS_VALUE=1024      value size in bytes (-d)
#   KONA_REDIS_CLIENTS=4       parallel connections (-c)
#   KONA_REDIS_TESTS=set,get   redis-benchmark tests (-t)
#   KONA_REDIS_VERIFY=1        write KONA_REDIS_CHECK_KEYS (500) keys of
#                              distinct 512-byte values before the
#                              benchmark; after it, evict the device's whole
#                              cache and read them back through redis
#   KONA_REDIS_NODE0=1         the reference run on node 0
#   KONA_REDIS_HOLD=0          after the benchmarks, serve the host for up
#                              to this many seconds (0: no KONA-READY), or
#                              until the key kona:host-done is set
#   KONA_REDIS_VERBOSE=0       1: redis-benchmark's full report, not -q
#   KONA_KONAD=1, KONAD_ARGS   as for the checksum workload
. /etc/kona/lib.sh

N=${KONA_REDIS_REQUESTS:-10000}
KEYS=${KONA_REDIS_KEYS:-$N}
VALUE=${KONA_REDIS_VALUE:-1024}
CLIENTS=${KONA_REDIS_CLIENTS:-4}
TESTS=${KONA_REDIS_TESTS:-set,get}
VERIFY=${KONA_REDIS_VERIFY:-1}
CHECK_KEYS=${KONA_REDIS_CHECK_KEYS:-500}
NODE0=${KONA_REDIS_NODE0:-1}
HOLD=${KONA_REDIS_HOLD:-0}
KONAD=${KONA_KONAD:-1}
QUIET=-q
[ "${KONA_REDIS_VERBOSE:-0}" = 1 ] && QUIET=

# start_redis NODE PORT: a redis-server whose memory is bound to NODE,
# in-memory only; waits until it answers.
start_redis() {
    local node=$1 port=$2 i=0
    numactl --membind="$node" redis-server --port "$port" --bind 0.0.0.0 \
        --save '' --appendonly no --protected-mode no --daemonize no \
        >"/run/redis-$port.log" 2>&1 &
    REDIS_PID=$!
    while ! redis-cli -p "$port" ping >/dev/null 2>&1; do
        if ! kill -0 $! 2>/dev/null; then
            cat "/run/redis-$port.log"
            return 1
        fi
        i=$((i + 1))
        [ "$i" -ge 1200 ] && return 1
        usleep 100000
    done
}

# Pages of a process on each node, from numa_maps: "N0=12 N1=3400".
pages_by_node() {
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^N[0-9]+=/) {
               split(substr($i, 2), kv, "="); n[kv[1]] += kv[2] } }
         END { for (k in n) printf "N%s=%d ", k, n[k] }' "/proc/$1/numa_maps"
}

# bench PORT: redis-benchmark against the server on PORT, its live
# "rps=" ticker (carriage returns) left out.
bench() {
    local rc=0
    # shellcheck disable=SC2086  # $QUIET is empty or -q
    redis-benchmark -h 127.0.0.1 -p "$1" -n "$N" -r "$KEYS" -d "$VALUE" \
        -c "$CLIENTS" -t "$TESTS" $QUIET >/run/bench.out 2>&1 || rc=$?
    tr '\r' '\n' </run/bench.out | grep -v 'rps=' | grep -v '^ *$'
    return $rc
}

# check_cmds SET|GET: redis-cli commands for the check keys; a key's value
# is 512 bytes computed from its number, so every key differs.
check_cmds() {
    awk -v op="$1" -v n="$CHECK_KEYS" 'BEGIN {
        for (i = 0; i < n; i++) {
            if (op == "GET") { printf "GET kona:check:%d\n", i; continue }
            v = ""
            for (j = 0; j < 64; j++)
                v = v sprintf("%08x", (i * 2654435761 + j * 40503) % 4294967296)
            printf "SET kona:check:%d %s\n", i, substr(v, 1, 512)
        }
    }'
}

kona_online_node
if [ "$KONAD" = 1 ]; then
    kona_step "start konad"
    # shellcheck disable=SC2086
    konad_start -v ${KONAD_ARGS:-} || kona_fail "konad did not start"
fi

kona_step "start redis-server on node $KONA_NODE"
t0=$(kona_uptime)
start_redis "$KONA_NODE" 6379 || kona_fail "redis-server on node $KONA_NODE did not start"
pid=$REDIS_PID
echo "redis: redis-server $(redis-server --version | awk '{print $3}') pid $pid on node $KONA_NODE, up in $(kona_since "$t0") s"

if [ "$VERIFY" = 1 ]; then
    kona_step "write $CHECK_KEYS check keys"
    check_cmds SET | redis-cli >/dev/null || kona_fail "redis-cli SET"
fi

kona_step "redis-benchmark against redis on node $KONA_NODE ($N requests per test, $VALUE-byte values, $KEYS keys)"
echo "=== redis-benchmark, redis-server on node $KONA_NODE (Kona) ==="
t0=$(kona_uptime)
bench 6379 || kona_fail "redis-benchmark failed"
echo "redis: benchmark took $(kona_since "$t0") s; dbsize $(redis-cli dbsize)," \
    "$(redis-cli info memory | tr -d '\r' | grep '^used_memory_human:')," \
    "redis-server pages by node: $(pages_by_node "$pid")"

if [ "$VERIFY" = 1 ]; then
    kona_step "verify: evict the whole cache, read back the $CHECK_KEYS check keys"
    konactl evict 0 "$(konactl info | awk '$1 == "media-size" { print $2 }')" ||
        kona_fail "konactl evict"
    check_cmds GET | redis-cli >/run/check.got 2>&1 || kona_fail "redis-cli GET"
    check_cmds SET | awk '{ print $3 }' >/run/check.want
    if cmp -s /run/check.want /run/check.got; then
        echo "redis: the $CHECK_KEYS check keys written before the benchmark read back intact after evicting every cached block"
    else
        kona_fail "check keys differ after the eviction ($(cmp /run/check.want /run/check.got 2>&1))"
    fi
fi

if [ "$HOLD" -gt 0 ]; then
    kona_step "serve the host for up to $HOLD s (redis-cli -p HOSTPORT set kona:host-done 1 ends it)"
    echo "KONA-READY redis 6379 node $KONA_NODE"
    i=0
    while [ "$i" -lt "$((HOLD * 2))" ]; do
        [ "$(redis-cli get kona:host-done 2>/dev/null)" = 1 ] && break
        usleep 500000
        i=$((i + 1))
    done
    echo "redis: host phase over after $((i / 2)) s; dbsize $(redis-cli dbsize)"
fi

if [ "$NODE0" = 1 ]; then
    kona_step "reference: redis-benchmark against redis on node 0"
    start_redis 0 6380 || kona_fail "redis-server on node 0 did not start"
    echo "=== redis-benchmark, redis-server on node 0 (RAM), for reference ==="
    bench 6380 || kona_fail "redis-benchmark (node 0) failed"
    redis-cli -p 6380 shutdown nosave >/dev/null 2>&1
fi

if [ "$KONAD" = 1 ]; then
    kona_step "stop konad"
    konad_stop || echo "redis: konad exited with status $?"
    echo "=== konad log ==="
    grep -v ': pass ' "$KONAD_LOG"
fi
kona_guest_stats
redis-cli shutdown nosave >/dev/null 2>&1
exit 0
