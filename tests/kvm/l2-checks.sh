# shellcheck shell=dash
# The KVM tests' workload inside L2 (busybox sh; tests/kvm/lib.sh prepends
# the KVM_* settings and passes it as L2's guest command). L2 runs under
# KVM in L1 with one kona-cxl (tracking=$KVM_MODE) backed by a memnode in
# L1. Phases, each framed by "KVM-PHASE NAME" and ending with the device's
# counters as the guest sees them (konactl stats between KVM-STATS-BEGIN and
# KVM-STATS-END) and a KONA-SYNC, at which L2 waits while L1 reads the same
# counters over HMP: so both views are of the same idle moment.
#   online    kona-online: CXL region, NUMA node (ZONE_MOVABLE)
#   checksum  the checksum workload, the device's own policy evicting
#   stress    stress-ng --vm --verify bound to the node
#   konad     the checksum workload again, konad evicting
#   code      a program whose code pages live on the node
# Counters are zeroed (konactl reset-stats) at the start of each phase but
# the first. Asserts nothing itself: tests/kvm/kvm-test reads the console.
. /etc/kona/lib.sh

MIB=${KVM_MIB:-32}

# Let L1 read the device's counters while this guest does nothing.
sync_host() {
    echo "KONA-SYNC $1"
    # shellcheck disable=SC3045  # busybox sh has read -t
    read -r -t 600 _ || echo "KVM-L2 no answer from L1 at sync $1"
}

phase_end() {
    echo "KVM-L2 phase-end=$1 uptime=$(kona_uptime)"
    echo "KVM-STATS-BEGIN $1"
    konactl stats
    echo "KVM-STATS-END $1"
    sync_host "$1"
}

phase() {
    echo "KVM-PHASE $1 uptime=$(kona_uptime)"
    if [ "$1" != online ]; then
        konactl reset-stats || echo "KVM-L2 reset-stats failed"
    fi
}

phase_online() {
    phase online
    # Without the node nothing else makes sense: kona_online_node ends the
    # script (KONA-FAIL, status 1) if it fails.
    kona_online_node
    echo "KVM-L2 cpu-hypervisor-flag=$(grep -c -w hypervisor /proc/cpuinfo)"
    for m in /sys/bus/cxl/devices/mem*; do
        [ -e "$m/ram/size" ] && echo "KVM-L2 memdev=${m##*/} ram-size=$(($(cat "$m/ram/size")))"
    done
    echo "KVM-L2 node1-memtotal-kb=$(awk '/MemTotal/ { print $4 }' /sys/devices/system/node/node1/meminfo 2>/dev/null)"
    echo "KVM-L2 online-nodes=$(cat /sys/devices/system/node/online)"
    phase_end online
}

phase_checksum() {
    phase checksum
    KONA_MIB=$MIB KONA_KONAD=0 sh /etc/kona/scripts/checksum
    echo "KVM-L2 checksum-rc=$?"
    phase_end checksum
}

# The media's size, for konactl evict of everything.
media_size() { konactl info | awk '$1 == "media-size" { print $2 }'; }

# stress-ng's own verification, its buffer on the node. The buffer fits
# the cache, so that stress-ng gets whole passes done even with every miss
# a round trip through L1; meanwhile the whole cache is evicted every
# KVM_STRESS_EVICT_S seconds, so that the data it verifies has also been
# written back and fetched again. The evicting loop ends by itself when
# told to, never by a kill: killed, it left a "konactl evict" running,
# which then emptied the cache between this guest's reading of the
# counters and L1's (CI on 2026-12-04: 256 evictions more in L1's view).
phase_stress() {
    local media ev
    phase stress
    media=$(media_size)
    rm -f /run/stress-stop
    (
        n=0
        while :; do
            s=0
            while [ "$s" -lt "$KVM_STRESS_EVICT_S" ]; do
                [ -e /run/stress-stop ] && exit 0
                sleep 1
                s=$((s + 1))
            done
            konactl evict 0 "$media" && n=$((n + 1))
            echo "$n" >/run/stress-evictions
        done
    ) &
    ev=$!
    KONA_KONAD=0 KONA_STRESS_BYTES=$KVM_STRESS_BYTES KONA_STRESS_METHOD=$KVM_STRESS_METHODS \
        KONA_STRESS_TIMEOUT=$KVM_STRESS_TIMEOUT sh /etc/kona/scripts/stress
    echo "KVM-L2 stress-rc=$?"
    touch /run/stress-stop
    wait "$ev" 2>/dev/null
    echo "KVM-L2 stress-cache-evictions=$(cat /run/stress-evictions 2>/dev/null || echo 0)"
    phase_end stress
}

# Occupancy and high watermark from konactl info: "RESIDENT HIGH".
occupancy() { konactl info | awk '$1 == "resident" { r = $2 } $1 == "high-wm" { h = $2 } END { print r, h }'; }

# Wait (up to 120 s) until konad has brought the cache back to its high
# watermark or below; counts the waits that timed out in $SETTLE_FAILS.
SETTLE_FAILS=0
konad_settle() {
    local i=0
    # shellcheck disable=SC2046
    set -- $(occupancy)
    while [ "$1" -gt "$2" ]; do
        i=$((i + 1))
        if [ "$i" -ge 240 ]; then
            SETTLE_FAILS=$((SETTLE_FAILS + 1))
            return 1
        fi
        usleep 500000
        # shellcheck disable=SC2046
        set -- $(occupancy)
    done
}

# The checksum workload with konad evicting. Every miss and every one of
# konad's register accesses is a trip through L1, and konad reads all the
# frames' states each pass: here a pass takes seconds, far longer than on
# real hardware, while a sequential stream fills the cache as fast as L1
# serves faults. So the data goes in and out in chunks of
# KVM_KONAD_CHUNK_KIB, each smaller than the room above konad's high
# watermark, and the next chunk waits until konad has made room: then the
# device must never have had to evict by itself. (The checksum phase runs
# the same stream unpaced, with the device's policy.)
phase_konad() {
    local mib=$KVM_KONAD_MIB kib=$KVM_KONAD_CHUNK_KIB n i want got
    phase konad
    n=$((mib * 1024 / kib))
    dd if=/dev/urandom of=/tmp/konad-src bs=1M count="$mib" 2>/dev/null
    want=$(md5sum </tmp/konad-src | cut -d' ' -f1)
    mkdir -p /mnt/konad
    mount -t tmpfs -o "size=$((mib + 1))m,mpol=bind:$KONA_NODE" kona-konad /mnt/konad
    # shellcheck disable=SC2086
    konad_start -v $KVM_KONAD_ARGS || echo "KVM-L2 konad-start=failed"
    # What the phases before left in the cache first.
    konad_settle
    i=0
    while [ "$i" -lt "$n" ]; do
        dd if=/tmp/konad-src of=/mnt/konad/data bs="${kib}k" skip="$i" seek="$i" count=1 \
            conv=notrunc 2>/dev/null
        konad_settle
        i=$((i + 1))
    done
    sync
    i=0
    : >/run/konad-settle-fails
    got=$(while [ "$i" -lt "$n" ]; do
            dd if=/mnt/konad/data bs="${kib}k" skip="$i" count=1 2>/dev/null
            konad_settle || echo "settle-timeout" >>/run/konad-settle-fails
            i=$((i + 1))
        done | md5sum | cut -d' ' -f1)
    konad_stop
    echo "KVM-L2 konad-md5 want=$want got=$got"
    echo "KVM-L2 konad-settle-timeouts=$((SETTLE_FAILS + $(wc -l </run/konad-settle-fails)))"
    echo "KVM-L2 konad-passes=$(grep -c ': pass ' "$KONAD_LOG")" \
        "pass-ms-max=$(sed -n 's/.*, \([0-9.]*\) ms$/\1/p' "$KONAD_LOG" | sort -n | tail -n 1)"
    grep -v ': pass ' "$KONAD_LOG"
    umount /mnt/konad
    phase_end konad
}

# The first fetch count konactl prints.
fetches() { konactl stats | awk '$1 == "fetches" { print $2; exit }'; }

# busybox (static: all its code is in the one file) copied to a tmpfs bound
# to the node; the whole cache is evicted before it runs, so its code pages
# have to be fetched again as it executes them, and once more evicted
# (repeatedly) while it runs.
phase_code() {
    local media f0 f1 want got i pid numa
    phase code
    mkdir -p /mnt/code
    if ! mount -t tmpfs -o "size=8m,mpol=bind:$KONA_NODE" kona-code /mnt/code ||
        ! cp /bin/busybox /mnt/code/busybox; then
        echo "KVM-L2 code-setup=failed"
        phase_end code
        return
    fi
    sync
    dd if=/dev/urandom of=/tmp/code-input bs=1M count="$KVM_CODE_INPUT_MIB" 2>/dev/null
    want=$(md5sum </tmp/code-input | cut -d' ' -f1)
    media=$(media_size)
    konactl evict 0 "$media" || echo "KVM-L2 evict failed"
    f0=$(fetches)
    got=$(/mnt/code/busybox md5sum </tmp/code-input | cut -d' ' -f1)
    f1=$(fetches)
    echo "KVM-L2 code-md5 want=$want got=$got fetches-before=$f0 fetches-after=$f1"
    # Where the pages of the running program are: its own numa_maps.
    numa=$(/mnt/code/busybox cat /proc/self/numa_maps | grep ' file=/mnt/code/busybox ')
    echo "$numa" | sed 's/^/KVM-L2 code-numa-maps /'
    # The code evicted under the running program, several times.
    f0=$(fetches)
    # (busybox sh would run md5sum from /bin, on node 0: exec each one.)
    for i in 1 2 3 4 5 6; do /mnt/code/busybox md5sum </tmp/code-input; done >/tmp/code-out &
    pid=$!
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        konactl evict 0 "$media" && i=$((i + 1))
        usleep 100000
    done
    wait "$pid"
    echo "KVM-L2 code-evicting rc=$? evictions-while-running=$i lines=$(wc -l </tmp/code-out)" \
        "distinct=$(sort -u </tmp/code-out | cut -d' ' -f1 | tr '\n' ' ')fetches=$(($(fetches) - f0))"
    umount /mnt/code
    phase_end code
}

# Kernel messages up to KERN_INFO on the console (a hung task's stack).
echo 7 >/proc/sys/kernel/printk
phase_online
for p in ${KVM_PHASES:-checksum stress konad code}; do
    "phase_$p"
done
echo "KVM-L2 done"
