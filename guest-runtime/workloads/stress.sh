#!/bin/sh
# shellcheck shell=dash
# stress: stress-ng's virtual-memory stressor (unmodified, from Debian),
# with verification of what it wrote, its memory bound to the Kona node.
#
# Environment (scripts/run passes these):
#   KONA_STRESS_BYTES=16M       --vm-bytes (larger than the device cache)
#   KONA_STRESS_METHOD="zero-one galpat-0"
#                               --vm-method, one run each (stress-ng
#                               --vm-method which lists them; the per-byte
#                               ones such as incdec barely finish a pass in
#                               seconds through the device under TCG)
#   KONA_STRESS_TIMEOUT=6       seconds per method
#   KONA_STRESS_OPS=N           stop each method after N bogo ops (one op
#                               is a whole method pass over the buffer;
#                               the timeout still caps the run): a fixed
#                               amount of work however slow the machine
#   KONA_STRESS_ARGS="..."      more stress-ng options
#   KONA_KONAD=1, KONAD_ARGS    as for the checksum workload
. /etc/kona/lib.sh

BYTES=${KONA_STRESS_BYTES:-16M}
METHODS=${KONA_STRESS_METHOD:-zero-one galpat-0}
TIMEOUT=${KONA_STRESS_TIMEOUT:-6}
OPS=${KONA_STRESS_OPS:-}
KONAD=${KONA_KONAD:-1}

kona_online_node
if [ "$KONAD" = 1 ]; then
    kona_step "start konad"
    # shellcheck disable=SC2086
    konad_start -v ${KONAD_ARGS:-} || kona_fail "konad did not start"
fi
cd /tmp || kona_fail "no /tmp"
failed=
for m in $(echo "$METHODS" | tr ',' ' '); do
    kona_step "stress-ng --vm 1 --vm-bytes $BYTES --vm-method $m --verify (${TIMEOUT}s${OPS:+ or $OPS ops}) bound to node $KONA_NODE"
    rc=0
    # shellcheck disable=SC2086
    numactl --membind="$KONA_NODE" stress-ng --vm 1 --vm-bytes "$BYTES" \
        --vm-method "$m" --verify --vm-keep --timeout "${TIMEOUT}s" \
        ${OPS:+--vm-ops "$OPS"} --metrics-brief ${KONA_STRESS_ARGS:-} || rc=$?
    echo "workload: stress-ng --vm-method $m exited with status $rc"
    [ "$rc" = 0 ] || failed="$failed $m"
done

kona_workload_done
if [ -n "$failed" ]; then
    KONA_STEP="stress-ng --vm-method$failed"
    kona_fail "stress-ng failed (see its output above)"
fi
