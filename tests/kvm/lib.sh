# Helpers of the KVM tests (tests/kvm/). Source, do not run.
# shellcheck shell=bash
#
# This machine has no /dev/kvm, but QEMU's TCG emulates AMD SVM: our guest
# image booted under TCG with -cpu max (L1) loads kvm_amd and runs our own
# QEMU with -accel kvm for a second-level guest (L2) with kona-cxl, backed
# by a kona-memnode in L1 (notes: ../shared/notes/nested-kvm-under-tcg.md).
# Everything L1 needs goes in through KONA_VM_OVERLAY, under /kvm:
#   qemu-system-x86_64   stripped, its shared libraries at their host paths
#   kona-memnode         stripped, with its libraries
#   modules/             kvm_amd and its dependencies, decompressed, and
#                        the load order (from the kernel package's
#                        modules.dep)
#   vmlinuz, initrd.cpio.gz   L2's kernel and initrd (the same guest image,
#                        plus L2's command)
#   l2-args              L2's QEMU arguments, one a line, made by
#                        scripts/lib/vm.sh's functions like any guest's
#   l1-driver, config    what L1 runs (tests/kvm/l1-driver.sh)
# and the firmware under /usr/share/{qemu,seabios}, where vm.sh's -L
# arguments point.
#
#   . "$(dirname "$0")/lib.sh"
#   kvm_boot NAME MODE L2_COMMAND [L2_TIMEOUT]   L1's console in $KVM_LOG
#   kvm_l2_output                 L2's console (from L1's)
#   kvm_fact KEY                  a KVM-L1 key=value of the driver
#   kvm_hmp_stat TAG KEY          a counter of L2's QEMU over HMP at sync TAG
#   kvm_guest_stat TAG KEY        the same counter from konactl in L2
# and the kt_* TAP helpers of tests/guest/lib.sh.

# shellcheck source=SCRIPTDIR/../guest/lib.sh disable=SC1094
. "$(dirname "${BASH_SOURCE[0]}")/../guest/lib.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lib/vm.sh
. "$KONA_ROOT/scripts/lib/vm.sh"

KVM_TESTS_DIR=$KONA_ROOT/tests/kvm
# The QEMU of L1 and L2: KVM_QEMU_BIN if set (meson sets QEMU_BIN to its
# qemu_build's, which a QEMU build in progress may be replacing).
QEMU_BIN=${KVM_QEMU_BIN:-$QEMU_BIN}
KONA_MEMNODE_BIN=${KONA_MEMNODE_BIN:-$KONA_MESON_BUILD/memnode/kona-memnode}
# L1: enough memory for its initramfs (~200 MB unpacked), L2's RAM and
# the device's cache with its clean copies.
KVM_L1_MEM=${KVM_L1_MEM:-3G}
KVM_L2_MEM=${KVM_L2_MEM:-1G}
# The firmware L2's QEMU needs (-kernel boot with SeaBIOS, no NIC, no VGA).
KVM_FIRMWARE=(
    /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin
    /usr/share/qemu/linuxboot.bin /usr/share/qemu/linuxboot_dma.bin
    /usr/share/qemu/multiboot_dma.bin
)

KVM_DIR=
KVM_LOG=

# Make sure the guest image is current, as the guest tests do, unless told
# to use $GUEST_DIR as it is (KONA_SKIP_GUEST_IMAGE=1: e.g. the image of
# another checkout, which a build from this one would overwrite).
kvm_guest_image() {
    [ "${KONA_SKIP_GUEST_IMAGE:-0}" = 1 ] && return 0
    "$KONA_ROOT/scripts/build-guest-image" >"$KVM_DIR/image.log" 2>&1 || {
        cat "$KVM_DIR/image.log"
        return 1
    }
}

# _kvm_copy_with_libs BIN DEST ROOT: BIN stripped to DEST, and the shared
# libraries ldd resolves (and the ELF interpreter) under ROOT at their
# host paths, as scripts/build-guest-image does for the workloads.
_kvm_copy_with_libs() {
    local bin=$1 dest=$2 root=$3 lib interp
    strip -o "$dest" "$bin" || return 1
    interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    { [ -n "$interp" ] && echo "$interp"; ldd "$bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p'; } |
        while read -r lib; do
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    ! grep -q 'not found' <(ldd "$bin")
}

# _kvm_modules DIR: kvm_amd and its dependencies from the guest kernel
# package (unpacked by scripts/build-guest-image), decompressed (busybox
# insmod reads no .ko.xz), and their load order in DIR/order.
_kvm_modules() {
    local dir=$1 kver root line f
    kver=$(cat "$GUEST_DIR/kernel-release") || return 1
    root=$(dirname "$(dirname "$(dirname "$(ls -d "$GUEST_DIR"/kernel/*/lib/modules/"$kver" | head -n 1)")")")
    [ -d "$root/lib/modules/$kver" ] || { log "no unpacked kernel $kver in $GUEST_DIR/kernel"; return 1; }
    mkdir -p "$dir"
    : >"$dir/order"
    modprobe -d "$root" -S "$kver" --show-depends kvm_amd | while read -r line; do
        case "$line" in insmod\ *) ;; *) continue ;; esac
        f=${line#insmod }
        f=${f%% *}
        case "$f" in
            *.ko.xz) xz -dc "$f" >"$dir/$(basename "${f%.xz}")" ;;
            *.ko.zst) zstd -qdc "$f" >"$dir/$(basename "${f%.zst}")" ;;
            *.ko) cp "$f" "$dir/" ;;
            *) log "unknown module file $f"; return 1 ;;
        esac
        basename "${f%.ko*}.ko" >>"$dir/order"
    done
    [ -s "$dir/order" ]
}

# _kvm_l2_args MODE FILE: L2's QEMU arguments, one a line: the same
# functions every guest's command line comes from, with -accel kvm, paths
# as they are in L1, the memnode's socket in L1, and the device's
# statistics exercised by a cache smaller than the data.
_kvm_l2_args() {
    local mode=$1 file=$2
    # shellcheck disable=SC2030,SC2031  # L1's paths, for this subshell only
    (
        KONA_VM_ACCEL=kvm
        KONA_VM_CPU=host
        KONA_VM_MEM=$KVM_L2_MEM
        KONA_VM_APPEND=memhp_default_state=offline
        KONA_VM_HOSTFWD=
        GUEST_DIR=/kvm
        KONA_VM_KONA_PROPS="memnode=unix:/run/kvm/memnode.sock,cache-size=${KVM_CACHE:-1M},tracking=$mode"
        kona_vm_base_args /kvm/initrd.cpio.gz
        kona_vm_memdev_args kona-cxl 256M
        printf '%s\n' "${KONA_VM_BASE_ARGS[@]}" "${KONA_VM_MEMDEV_ARGS[@]}"
    ) >"$file"
}

# kvm_overlay DIR MODE L2_COMMAND L2_TIMEOUT: what L1 needs, in DIR.
kvm_overlay() {
    local root=$1 mode=$2 cmd=$3 timeout=$4 f
    rm -rf "$root"
    mkdir -p "$root/kvm"
    _kvm_copy_with_libs "$QEMU_BIN" "$root/kvm/qemu-system-x86_64" "$root" ||
        { log "cannot copy $QEMU_BIN and its libraries"; return 1; }
    _kvm_copy_with_libs "$KONA_MEMNODE_BIN" "$root/kvm/kona-memnode" "$root" ||
        { log "cannot copy $KONA_MEMNODE_BIN and its libraries"; return 1; }
    for f in "${KVM_FIRMWARE[@]}"; do
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f" || return 1
    done
    _kvm_modules "$root/kvm/modules" || { log "cannot get kvm_amd from the guest kernel"; return 1; }
    cp "$GUEST_DIR/vmlinuz" "$root/kvm/vmlinuz"
    # L2's initrd: the image plus its command, as kona_vm_run makes it
    # (not L1's overlay).
    KONA_VM_OVERLAY='' _kona_vm_initrd "$cmd" "$root/kvm/initrd.cpio.gz"
    _kvm_l2_args "$mode" "$root/kvm/l2-args"
    install -m 755 "$KVM_TESTS_DIR/l1-driver.sh" "$root/kvm/l1-driver"
    printf 'MODE=%s\nL2_TIMEOUT=%s\n' "$mode" "$timeout" >"$root/kvm/config"
    # The driver's boot-stall watchdog, for kvm-boot-stall-test.
    [ -z "${KVM_BOOT_STALL_S:-}" ] || echo "BOOT_STALL_S=$KVM_BOOT_STALL_S" >>"$root/kvm/config"
    [ -z "${KVM_STALL_INJECT:-}" ] || echo "STALL_INJECT=$KVM_STALL_INJECT" >>"$root/kvm/config"
    [ -z "${KVM_L2_ATTEMPTS:-}" ] || echo "L2_ATTEMPTS=$KVM_L2_ATTEMPTS" >>"$root/kvm/config"
}

# kvm_boot NAME MODE L2_COMMAND [L2_TIMEOUT [L1_TIMEOUT]]: boot L1 under
# TCG with the overlay and run the driver; L1's console in $KVM_LOG, the
# run's files in $KVM_DIR. Returns the driver's status as kona_vm_run does
# (124: L1 timed out, 125: L1's QEMU ended without a result). L2_TIMEOUT
# (default $KVM_L2_TIMEOUT or 2100 s; the whole kvm-test took ~35 min here
# on a 2-core machine loaded by other VMs, L2 running ~26 min of it, its
# boot alone 4 min) is the driver's, L1_TIMEOUT (default 300 s more) the
# host's, for an L1 too stuck to end L2 itself; meson's 3000 s is above.
# If the nested host fails (kvm_host_failure), L1 boots once more and the
# first run's log stays as $KVM_DIR/l1-host-failure-1.log;
# KVM_HOST_FAILURES says how many of the runs failed so.
kvm_boot() {
    local name=$1 mode=$2 cmd=$3 l2_timeout=${4:-${KVM_L2_TIMEOUT:-2100}} l1_timeout=${5:-}
    local rc=0 t0=$SECONDS
    KVM_DIR=$KONA_BUILD/tests/$name
    KVM_LOG=$KVM_DIR/l1.log
    rm -rf "$KVM_DIR"
    mkdir -p "$KVM_DIR"
    kvm_guest_image || return 1
    kona_vm_check
    local try
    KVM_HOST_FAILURES=0
    for try in 1 2; do
        rc=0
        kvm_overlay "$KVM_DIR/overlay" "$mode" "$cmd" "$l2_timeout" || return 1
        echo "# L1 overlay: $(du -sm "$KVM_DIR/overlay" | cut -f1) MiB, made in $((SECONDS - t0)) s"
        # An L1 CPU stuck for minutes does not recover (seen twice: L1's
        # CPU 0 halted with GIF clear answered neither TLB-flush IPIs nor
        # NMIs, 537 s and counting): give up then rather than at the
        # deadline (kvm_host_failure). Nor does an L1 frozen whole, which
        # reports nothing at all: its driver prints at least every 30 s
        # (its progress line) while it runs, so 300 s of silence is L1's.
        KONA_VM_OVERLAY=$KVM_DIR/overlay KONA_VM_ACCEL=tcg KONA_VM_CPU=max \
            KONA_VM_MEM=$KVM_L1_MEM KONA_VM_APPEND='' KONA_VM_HOSTFWD='' KONA_VM_QMP='' KONA_VM_STREAM='' \
            KONA_VM_LOCKUP_S=${KVM_L1_LOCKUP_S:-240} KONA_VM_SILENT_S=${KVM_L1_SILENT_S:-300} \
            kona_vm_run "${l1_timeout:-$((l2_timeout + 300))}" "$KVM_LOG" 'exec sh /kvm/l1-driver' || rc=$?
        rm -rf "$KVM_DIR/overlay"
        echo "# L1 ran ${KONA_VM_ELAPSED_S:-?} s (its command started after ${KONA_VM_BOOT_S:-?} s), status $rc ($KONA_VM_STATUS); log: $KVM_LOG"
        KVM_HOST_FAILURE=$(kvm_host_failure)
        [ -n "$KVM_HOST_FAILURE" ] || break
        KVM_HOST_FAILURES=$try
        echo "# the nested host failed, not kona-cxl: $KVM_HOST_FAILURE"
        [ "$try" = 1 ] || break
        mv "$KVM_LOG" "$KVM_DIR/l1-host-failure-1.log"
        echo "# its log is $KVM_DIR/l1-host-failure-1.log; booting L1 once more"
    done
    return "$rc"
}

# L1's console without CRs, and without an L2 that stalled in its boot
# or reset itself and was started again (its lines from "KVM-L1
# l2=started" to the next one): every check reads the attempt that ran.
_kvm_l1() {
    tr -d '\r' <"$KVM_LOG" | awk '
        /^KVM-L1 l2=started / { skip = 0; start = n }
        /^KVM-L1 l2-(boot-stall|reset) / { skip = 1; n = start }
        !skip { line[n++] = $0 }
        END { for (i = 0; i < n; i++) print line[i] }'
}

# How many of the last kvm_boot's L1 runs the nested host failed
# (kvm_host_failure); after one, L1 boots once more. KVM_HOST_FAILURE is
# the last run's verdict ('' if kona-cxl's checks can read it).
KVM_HOST_FAILURES=0
KVM_HOST_FAILURE=

# kvm_host_failure: why the last L1 run in $KVM_LOG can say nothing about
# kona-cxl, or nothing if it can. Nested virtualization under TCG fails
# now and then (README, KVM) in four ways that no device model can cause:
#   - L1's kernel saw a CPU stuck for KONA_VM_LOCKUP_S (vm.sh stopped L1);
#   - L1 printed nothing for KONA_VM_SILENT_S (vm.sh stopped L1): not even
#     its driver's progress line, which it prints every 30 s whatever L2
#     does, since L2's QEMU is one of L1's user processes (seen in CI on
#     2026-12-04: L1 went quiet 160 s into its run, for 1000 s, with no
#     soft lockup, panic or hung task reported; with a hung task
#     reported, the silence is not the host's);
#   - L1's kernel panicked (its own console line, not one of L2's "L2| "):
#     L2's QEMU, with the device, is a user process of L1;
#   - L2 reset itself on its last attempt with no kernel message on its
#     console (a triple fault): L2's kernel runs from node 0, and node 1
#     is ZONE_MOVABLE (user pages and page cache only);
#   - an L1 CPU answered no NMI: L1's kernel sent one to back-trace it
#     (its hung-task detector, which has other CPUs report blocked tasks
#     then) and that CPU never printed its backtrace (seen in CI on
#     2026-12-04: CPU 0 silent for 300 s and more, the driver blocked).
#     A CPU deaf to NMIs is the nested host's: no user process of L1 can
#     mask them, L2's QEMU included. Checked before the hung-task rule
#     below, since such a CPU blocks tasks too.
# An L2 that panicked, oopsed or took a machine check before its reset is
# none of these: those the device can cause.
kvm_host_failure() {
    local raw
    if [ -n "${KONA_VM_LOCKUP:-}" ]; then
        echo "L1's kernel saw a CPU stuck for $KONA_VM_LOCKUP s (soft lockup)"
        return
    fi
    raw=$(tr -d '\r' <"$KVM_LOG")
    local deaf
    deaf=$(_kvm_l1_nmi_unanswered <<<"$raw")
    if [ -n "$deaf" ]; then
        echo "L1's CPU $deaf answered no NMI (a CPU of L1 stuck with NMIs blocked)"
        return
    fi
    # A driver blocked in L1's kernel (a hung task: the driver sets 90 s)
    # is silent too, but L1 ran, and what blocked it may be L2's QEMU.
    if [ -n "${KONA_VM_SILENT:-}" ] &&
        ! grep -qE '^\[ *[0-9]+\.[0-9]+\] INFO: task .* blocked for more than' <<<"$raw"; then
        echo "L1 printed nothing for $KONA_VM_SILENT s, not even its driver's progress (L1 frozen)"
        return
    fi
    if grep -qE '^\[ *[0-9]+\.[0-9]+\] Kernel panic - not syncing' <<<"$raw"; then
        echo "L1's kernel panicked ($(grep -m1 -oE 'Kernel panic - not syncing.*' <<<"$raw"))"
        return
    fi
    if [ "$(kvm_fact l2-shutdown-reason)" = guest-reset ] &&
        ! kvm_l2_output | grep -qE 'Kernel panic|Oops|BUG:|Machine check|Hardware Error|general protection'; then
        echo "L2 reset itself with no kernel message (a triple fault) on its last attempt"
    fi
}

# _kvm_l1_nmi_unanswered: the CPUs of L1's last "Sending NMI from CPU a
# to CPUs b:" (L1's own kernel line, not L2's) that printed no "NMI
# backtrace for cpu N" after it, on the console on stdin; nothing if
# there was no such line or every CPU answered.
_kvm_l1_nmi_unanswered() {
    awk '
        /^L2\| / { next }
        /Sending NMI from CPU [0-9]+ to CPUs [0-9,-]+:/ {
            t = $0
            sub(/.* to CPUs /, "", t)
            sub(/:.*/, "", t)
            delete want
            n = split(t, parts, ",")
            for (i = 1; i <= n; i++) {
                if (split(parts[i], r, "-") == 2) {
                    for (c = r[1]; c <= r[2]; c++) want[c] = 1
                } else {
                    want[parts[i] + 0] = 1
                }
            }
            next
        }
        /NMI backtrace for cpu [0-9]+/ {
            c = $0
            sub(/.*NMI backtrace for cpu /, "", c)
            delete want[c + 0]
        }
        END {
            out = ""
            for (c in want) out = out (out == "" ? "" : ",") c
            print out
        }'
}

# kvm_skip_host_failure WHAT: after kvm_boot, if the nested host failed in
# both of its L1 runs, say so as a skipped check (kvm_finish) and succeed;
# the caller then checks nothing of that run.
KVM_SKIPPED=
kvm_skip_host_failure() {
    [ "$KVM_HOST_FAILURES" -ge 2 ] || return 1
    kt_ok "$1 # SKIP the nested host failed twice, not kona-cxl: $KVM_HOST_FAILURE (logs: $KVM_DIR)"
    KVM_SKIPPED=1
}

# kvm_finish: the plan line; status 77 (skipped, for meson) if nothing
# failed but a run was skipped for the nested host.
kvm_finish() {
    kt_finish || return 1
    [ -z "$KVM_SKIPPED" ] || return 77
}

# How many times L2 stalled in its boot, or reset itself, and was started
# again: the driver's "KVM-L1 l2-boot-stall" and "KVM-L1 l2-reset" lines.
_kvm_l1_marks() { tr -d '\r' <"$KVM_LOG" | grep -c "^KVM-L1 $1 " || true; }
kvm_boot_stalls() { _kvm_l1_marks l2-boot-stall; }
kvm_l2_resets() { _kvm_l1_marks l2-reset; }

# L2's console, as L1 echoed it.
kvm_l2_output() { _kvm_l1 | sed -n 's/^L2| //p'; }

# kvm_phase_output NAME: L2's console during phase NAME of l2-checks.sh.
kvm_phase_output() {
    kvm_l2_output | awk -v p="$1" '$1 == "KVM-PHASE" { on = ($2 == p) } on'
}

# kvm_phase_seconds NAME: how long phase NAME took, in L2's time.
kvm_phase_seconds() {
    kvm_phase_output "$1" | awk '
        $1 == "KVM-PHASE" { sub("uptime=", "", $3); t0 = $3 }
        /^KVM-L2 phase-end=/ { sub(".*uptime=", ""); printf "%.0f", $0 - t0; exit }'
}

# kvm_fact KEY: the value of KEY=VALUE in the driver's KVM-L1 lines (last);
# a value ends at a space or a "[": a line of L1's kernel can follow it on
# the same console line.
kvm_fact() {
    _kvm_l1 | sed -n "s/^KVM-L1 .*\b$1=\([^ []*\).*/\1/p" | tail -n 1
}

# kvm_l2_fact KEY: the same for the KVM-L2 lines of L2's script.
kvm_l2_fact() {
    kvm_l2_output | sed -n "s/^KVM-L2 .*\b$1=\([^ []*\).*/\1/p" | tail -n 1
}

# kvm_section NAME: a file L1 printed.
kvm_section() {
    _kvm_l1 | sed -n "/^KVM-SECTION-BEGIN $1\$/,/^KVM-SECTION-END $1\$/{/^KVM-SECTION-/d;p}"
}

# kvm_hmp_text TAG: the device's stats-text over HMP at sync TAG. HMP's
# qom-get prints the string as JSON: one line, quoted, with \n escapes.
kvm_hmp_text() {
    _kvm_l1 | sed -n "/^KVM-HMP-BEGIN $1\$/,/^KVM-HMP-END $1\$/p" |
        sed -n 's/^"\(kona-cxl .*\)"$/\1/p' | sed 's/\\n/\n/g'
}

# kvm_guest_text TAG: konactl stats in L2 at the end of phase TAG.
kvm_guest_text() {
    kvm_l2_output | sed -n "/^KVM-STATS-BEGIN $1\$/,/^KVM-STATS-END $1\$/{/^KVM-STATS-/d;p}"
}

# A counter of one report (text on stdin).
_kvm_stat() { awk -v k="$1" '$1 == k && NF == 2 { print $2; exit }'; }
kvm_hmp_stat() { kvm_hmp_text "$1" | _kvm_stat "$2"; }
kvm_guest_stat() { kvm_guest_text "$1" | _kvm_stat "$2"; }

# Every process of the run (QEMU with its files under $KVM_DIR) must be
# gone; the nested guest and memnode live and die inside L1.
kvm_no_leftovers() {
    # (A process that ends while kt_leftovers reads /proc makes bash say
    # so on stderr: harmless.)
    KT_DIR=$KVM_DIR kt_no_leftovers 2>/dev/null
}
