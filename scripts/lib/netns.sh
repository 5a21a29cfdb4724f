# Test "hosts" on a private network: one network namespace per host, each
# with a veth pair to a bridge in the root namespace and its own address,
# so memnodes and the rack controller listen on real, non-loopback
# addresses (which makes them require authentication) and a host can be
# cut off (its link down) and healed. Source, do not run; needs root.
# shellcheck shell=bash
#
#   . scripts/lib/netns.sh
#   kona_net_init                      # bridge 10.77.N.1/24; cleans up at exit
#   kona_net_host mn0                  # namespace + veth, 10.77.N.2; sets KONA_NET_ADDR
#   kona_net_exec mn0 CMD...           # run CMD in the host
#   kona_net_partition mn0             # its link down: nothing reaches it
#   kona_net_heal mn0                  # and up again
#   kona_net_memnode_start mn0 DIR [ARGS...]   # kona-memnode in the host, on
#                                      # tcp:ADDR:7000 with the secret; sets
#                                      # KONA_NET_MEMNODE_ADDR, _PID
#   kona_net_cleanup                   # kill what runs in the hosts, remove
#                                      # them, their veths and the bridge
#
# The subnet is the first 10.77.N.0/24 (N = 0..255) that no address of the
# root namespace uses (or KONA_NET_SUBNET=10.77.5), so two runs side by
# side get their own. Names carry this shell's pid ("kona-PID-NAME",
# "kvPID-I", "kbPID"): kona_net_init removes what a run that is gone (a
# SIGKILL leaves its trap unrun) left behind, and nothing of a live run.
# There is no netem here: delays and drops stay with kona-faultproxy.

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KONA_NET_PORT=${KONA_NET_PORT:-7000}
_KONA_NET_TAG=
_KONA_NET_BRIDGE=
_KONA_NET_SUBNET=
_KONA_NET_HOSTS=()      # NAME:INDEX
_KONA_NET_SECRET=

# The namespace (kona_net_ns: public, e.g. for `timeout ... ip netns exec`),
# root-side veth and address of host NAME.
kona_net_ns() { echo "kona-$_KONA_NET_TAG-$1"; }
_kona_net_index() {
    local h
    for h in "${_KONA_NET_HOSTS[@]}"; do
        [ "${h%%:*}" = "$1" ] && { echo "${h#*:}"; return 0; }
    done
    die "kona_net: no host '$1'"
}
_kona_net_veth() { echo "kv$_KONA_NET_TAG-$(_kona_net_index "$1")"; }
kona_net_addr() { echo "$_KONA_NET_SUBNET.$(($(_kona_net_index "$1") + 1))"; }
# The root namespace's address on the bridge (QEMU and proxies reach the
# hosts from there).
kona_net_gateway() { echo "$_KONA_NET_SUBNET.1"; }

# Remove the namespaces, veths and bridges of runs whose shell is gone.
_kona_net_sweep() {
    local ns pid link
    for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
        [[ "$ns" =~ ^kona-([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        kill -0 "$pid" 2>/dev/null && continue
        log "removing namespace $ns left by run $pid"
        _kona_net_kill_ns "$ns"
        ip netns del "$ns" 2>/dev/null || true
    done
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }'); do
        link=${link%%@*}
        [[ "$link" =~ ^k[bv]([0-9]+)(-[0-9]+)?$ ]] || continue
        pid=${BASH_REMATCH[1]}
        kill -0 "$pid" 2>/dev/null && continue
        ip link del "$link" 2>/dev/null || true
    done
}

# SIGTERM, then SIGKILL, of every process in namespace $1: all of them
# were started there by this run (the namespace is ours alone).
_kona_net_kill_ns() {
    local pids _
    pids=$(ip netns pids "$1" 2>/dev/null) || return 0
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 30); do
        pids=$(ip netns pids "$1" 2>/dev/null)
        [ -n "$pids" ] || return 0
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}


# kona_net_init: the bridge and its subnet; clean-up at exit, also after
# SIGINT/SIGTERM/SIGHUP (bash runs no EXIT trap for a signal it does not
# trap). Callers that set their own EXIT trap later call kona_net_cleanup
# from it.
kona_net_init() {
    local n sig
    [ "$(id -u)" = 0 ] || die "kona_net_init: network namespaces need root"
    command -v ip >/dev/null || die "kona_net_init: no 'ip' (iproute2)"
    [ -z "$_KONA_NET_TAG" ] || return 0
    _KONA_NET_TAG=$$
    _kona_net_sweep
    if [ -n "${KONA_NET_SUBNET:-}" ]; then
        _KONA_NET_SUBNET=$KONA_NET_SUBNET
    else
        for n in $(seq 0 255); do
            ip -4 -o addr show | grep -q " 10\.77\.$n\." && continue
            _KONA_NET_SUBNET=10.77.$n
            break
        done
        [ -n "$_KONA_NET_SUBNET" ] || die "kona_net_init: no free 10.77.N.0/24"
    fi
    _KONA_NET_BRIDGE=kb$_KONA_NET_TAG
    # shellcheck disable=SC2064
    trap "kona_net_cleanup; $(kona_trap_cmd EXIT)" EXIT
    for sig in INT TERM HUP; do
        [ -n "$(trap -p "$sig")" ] && continue
        # shellcheck disable=SC2064
        trap "exit $((128 + $(kill -l "$sig")))" "$sig"
    done
    ip link add "$_KONA_NET_BRIDGE" type bridge ||
        die "kona_net_init: cannot create bridge $_KONA_NET_BRIDGE"
    ip addr add "$_KONA_NET_SUBNET.1/24" dev "$_KONA_NET_BRIDGE"
    ip link set "$_KONA_NET_BRIDGE" up
    log "test network $_KONA_NET_SUBNET.0/24 on bridge $_KONA_NET_BRIDGE"
}

# kona_net_host NAME: a new host on the network; KONA_NET_ADDR is its
# address. It has a loopback and its veth, and a route to the subnet only.
kona_net_host() {
    local name=$1 i=$((${#_KONA_NET_HOSTS[@]} + 1)) ns veth
    [ -n "$_KONA_NET_TAG" ] || kona_net_init
    [ "$i" -le 250 ] || die "kona_net_host: too many hosts"
    _KONA_NET_HOSTS+=("$name:$i")
    ns=$(kona_net_ns "$name")
    veth=$(_kona_net_veth "$name")
    KONA_NET_ADDR=$(kona_net_addr "$name")
    ip netns add "$ns" || die "kona_net_host: cannot create namespace $ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns" ||
        die "kona_net_host: cannot create veth $veth"
    ip link set "$veth" master "$_KONA_NET_BRIDGE"
    ip link set "$veth" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$KONA_NET_ADDR/24" dev eth0
    ip -n "$ns" link set eth0 up
    log "host $name: $KONA_NET_ADDR (namespace $ns)"
}

# kona_net_exec NAME CMD...: CMD in host NAME. In the background, $! is a
# subshell's pid, not CMD's: for that, 'ip netns exec "$(kona_net_ns NAME)"
# CMD &' (ip execs CMD in the same process).
kona_net_exec() {
    local ns
    ns=$(kona_net_ns "$1")
    shift
    ip netns exec "$ns" "$@"
}

# Partition: the host's port on the bridge goes down, as if its cable were
# pulled; connections to and from it hear nothing (no reset, no error)
# until kona_net_heal. Its own configuration is left alone.
kona_net_partition() { ip link set "$(_kona_net_veth "$1")" down; }
kona_net_heal() { ip link set "$(_kona_net_veth "$1")" up; }
kona_net_is_partitioned() {
    ! ip -o link show "$(_kona_net_veth "$1")" | grep -q '[<,]UP[,>]'
}

# kona_net_reachable NAME [PORT]: does host NAME answer the root namespace
# now? A TCP connect (no ping here): accepted or refused is an answer, a
# second of silence is none.
kona_net_reachable() {
    local rc=0
    timeout 1 bash -c "exec 3<>/dev/tcp/$(kona_net_addr "$1")/${2:-$KONA_NET_PORT}" \
        2>/dev/null || rc=$?
    [ "$rc" != 124 ]
}

# kona_net_secret DIR: a fresh shared secret in DIR/secret (mode 600),
# path in KONA_NET_SECRET.
kona_net_secret() {
    mkdir -p "$1"
    KONA_NET_SECRET=$1/secret
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KONA_NET_SECRET")
    _KONA_NET_SECRET=$KONA_NET_SECRET
}

# kona_net_memnode_start HOST DIR [ARGS...]: kona-memnode in HOST on
# tcp:ADDR:$KONA_NET_PORT with the secret (a non-loopback listener needs
# it), logging to DIR/memnode.log; returns once it listens. Sets
# KONA_NET_MEMNODE_ADDR and KONA_NET_MEMNODE_PID. Started again with the
# same DIR and --data-dir, it is the same memnode after a restart.
kona_net_memnode_start() {
    local host=$1 dir=$2 addr pid
    shift 2
    local bin=${KONA_MEMNODE_BIN:-$KONA_MESON_BUILD/memnode/kona-memnode}
    [ -x "$bin" ] || die "no kona-memnode at $bin"
    [ -n "$_KONA_NET_SECRET" ] || die "kona_net_memnode_start: call kona_net_secret first"
    addr=tcp:$(kona_net_addr "$host"):$KONA_NET_PORT
    mkdir -p "$dir"
    rm -f "$dir/memnode.ready"
    # Not kona_net_exec: $! must be the memnode (a restart SIGKILLs it).
    ip netns exec "$(kona_net_ns "$host")" "$bin" --listen "$addr" \
        --secret-file "$_KONA_NET_SECRET" "$@" >"$dir/memnode.ready" 2>>"$dir/memnode.log" &
    pid=$!
    for _ in $(seq 100); do
        if grep -q ready "$dir/memnode.ready" 2>/dev/null; then
            KONA_NET_MEMNODE_ADDR=$addr KONA_NET_MEMNODE_PID=$pid
            echo "$pid" >"$dir/memnode.pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 5 "$dir/memnode.log" >&2
    die "kona-memnode did not start in host $host (log: $dir/memnode.log)"
}

# kona_net_cleanup: everything kona_net_* made, processes in the hosts
# first (a namespace lives on while a process is in it). Idempotent.
kona_net_cleanup() {
    local h ns
    [ -n "$_KONA_NET_TAG" ] || return 0
    for h in "${_KONA_NET_HOSTS[@]}"; do
        ns=$(kona_net_ns "${h%%:*}")
        _kona_net_kill_ns "$ns"
        ip netns del "$ns" 2>/dev/null || true
        ip link del "kv$_KONA_NET_TAG-${h#*:}" 2>/dev/null || true
    done
    ip link del "$_KONA_NET_BRIDGE" 2>/dev/null || true
    _KONA_NET_HOSTS=()
    _KONA_NET_TAG=
    return 0
}
