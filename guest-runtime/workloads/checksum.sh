#!/bin/sh
# shellcheck shell=dash
# checksum: write KONA_MIB MiB of random data into a tmpfs whose pages are
# bound to the Kona node, read it back and compare checksums, so every byte
# has gone through the device (and, with a data set larger than its cache,
# out to the memory node and back).
#
# Environment (scripts/run passes these):
#   KONA_MIB=64             data size
#   KONA_KONAD=1            run konad (0: the device's built-in policy)
#   KONAD_ARGS="..."        konad options
#   KONA_KONAD_RESTART=0    1: SIGKILL konad after half of the data, write a
#                           quarter with no konad (the device has to evict
#                           by itself), start a new konad for the rest
. /etc/kona/lib.sh

MIB=${KONA_MIB:-64}
KONAD=${KONA_KONAD:-1}
RESTART=${KONA_KONAD_RESTART:-0}

# write_chunks FIRST COUNT: MiB [FIRST, FIRST + COUNT) of the source into
# the file on the Kona node, in place.
write_chunks() {
    dd if=/tmp/src of=/mnt/kona/data bs=1M skip="$1" seek="$1" count="$2" \
        conv=notrunc 2>/dev/null
}

kona_online_node

kona_step "prepare $MIB MiB of random data in RAM (node 0)"
dd if=/dev/urandom of=/tmp/src bs=1M count="$MIB" 2>/dev/null ||
    kona_fail "could not make /tmp/src"
want=$(md5sum </tmp/src | cut -d' ' -f1)

if [ "$KONAD" = 1 ]; then
    kona_step "start konad"
    # shellcheck disable=SC2086  # options
    konad_start -v ${KONAD_ARGS:-} || kona_fail "konad did not start"
fi

kona_step "mount a tmpfs bound to node $KONA_NODE"
mkdir -p /mnt/kona
mount -t tmpfs -o "size=$((MIB + 1))m,mpol=bind:$KONA_NODE" kona /mnt/kona ||
    kona_fail "mount tmpfs mpol=bind:$KONA_NODE"
: >/mnt/kona/data

t0=$(kona_uptime)
if [ "$KONAD" = 1 ] && [ "$RESTART" = 1 ]; then
    half=$((MIB / 2)) quarter=$((MIB / 4))
    kona_do "write $half MiB to node $KONA_NODE (konad running)" write_chunks 0 "$half"
    kona_step "kill konad (SIGKILL)"
    konad_report
    konad_kill
    echo "workload: konad killed after $half MiB: $(konad_totals)"
    kona_do "write $quarter MiB more with no konad" write_chunks "$half" "$quarter"
    kona_step "start a new konad"
    # shellcheck disable=SC2086
    konad_start -v ${KONAD_ARGS:-} || kona_fail "konad did not restart"
    kona_do "write the last $((MIB - half - quarter)) MiB" \
        write_chunks $((half + quarter)) $((MIB - half - quarter))
else
    kona_do "write $MIB MiB to node $KONA_NODE" write_chunks 0 "$MIB"
fi
sync
echo "workload: wrote $MIB MiB to node $KONA_NODE in $(kona_since "$t0") s;" \
    "node$KONA_NODE $(awk '/MemUsed/ { print $4, $5 }' "/sys/devices/system/node/node$KONA_NODE/meminfo") used"

kona_step "read back $MIB MiB from node $KONA_NODE and verify"
t0=$(kona_uptime)
got=$(md5sum </mnt/kona/data | cut -d' ' -f1)
echo "workload: md5 written $want read back $got ($(kona_since "$t0") s)"

if [ "$want" != "$got" ]; then
    KONA_STEP="read back $MIB MiB from node $KONA_NODE and verify"
    kona_fail "checksum mismatch: wrote $want, read back $got"
fi

# Code whose pages are on the node, rewritten in place and run again: it
# must run in its new form in every tracking mode.
kona_do "run code on node $KONA_NODE, rewritten in place" \
    numactl --membind="$KONA_NODE" kona-selfmod "$KONA_NODE" 2000

kona_workload_done
umount /mnt/kona
