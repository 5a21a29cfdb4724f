# Boot the Kona-CXL guest (build/guest) in QEMU. Source, do not run.
# shellcheck shell=bash disable=SC2034  # KONA_VM_* results are for callers
#
#   . scripts/lib/vm.sh
#   kona_vm_memdev_args kona-cxl 256M        # or cxl-type3; sets KONA_VM_MEMDEV_ARGS
#   kona_vm_run 120 build/logs/x.log 'kona-online && numactl...' -- "${KONA_VM_MEMDEV_ARGS[@]}"
#   echo "guest said rc=$?"
#
# kona_vm_run returns the guest command's exit status (from the KONA-RESULT
# marker that guest-runtime/init prints), or:
#   124  timeout (QEMU was killed)
#   125  QEMU ended without a KONA-RESULT (guest panic, bad QEMU arguments...)
# and sets KONA_VM_STATUS (ok|timeout|noresult), KONA_VM_QEMU_RC,
# KONA_VM_BOOT_S (host seconds from QEMU start to KONA-BEGIN, i.e. the command
# starting), KONA_VM_ELAPSED_S (host seconds QEMU ran), KONA_VM_FAIL_STEP
# (the step named by the guest's last "KONA-FAIL step='...'" marker, see
# guest-runtime/kona-lib.sh) and KONA_VM_REENTRANT (1 if QEMU reported
# "Blocked re-entrant IO" on the kona-cxl device: a guest access was
# dropped; kona-cxl turns QEMU's re-entrancy guard off for its regions, so
# this would be a regression).
#
# Environment knobs:
#   KONA_VM_APPEND="..."     extra kernel command line (e.g. memhp_default_state=offline)
#   KONA_VM_MEM=2G KONA_VM_MAXMEM=8G KONA_VM_SMP=2
#   KONA_VM_ACCEL=tcg        or kvm (where /dev/kvm works; never the default:
#                            code cannot run from the MMIO-backed Kona node
#                            unless kona-cxl has tracking=fast)
#   KONA_VM_CPU=max          CPU model (kvm: host), always with hypervisor=off
#   KONA_VM_HOSTFWD=HOST:GUEST  user-mode networking (libslirp) with a
#                            virtio-net NIC (the guest is 10.0.2.15) and host
#                            127.0.0.1:HOST forwarded to guest port GUEST;
#                            HOST=0 picks a free port; the port used is in
#                            KONA_VM_HOSTFWD_PORT
#   KONA_VM_PROGRESS=1       show progress on stderr: boot, the guest's
#                            KONA-STEP markers, a line every 30 s
#   KONA_VM_ON_READY="cmd"   run cmd (in the background, on the host) when
#                            the guest prints KONA-READY, e.g. to drive a
#                            workload through KONA_VM_HOSTFWD; killed at the
#                            end of the run if still running
#   KONA_VM_FMW_SIZE=4G      size of the CXL fixed memory window
#   KONA_VM_HMAT=1           HMAT with a generic port for the CXL host bridge,
#                            so that Linux computes the CXL node's access0/
#                            access1 latency and bandwidth (generic port +
#                            link + the device's CDAT) and its memory tier;
#                            0: no HMAT (one implicit NUMA node, as QEMU
#                            makes by itself). See _kona_vm_numa_args.
#   KONA_VM_DRAM_LATENCY_NS=82 KONA_VM_DRAM_BANDWIDTH=20000M
#                            HMAT: the CPUs' own memory (node 0), the
#                            reference Linux rates other memory against
#   KONA_VM_GP_LATENCY_NS=20 KONA_VM_GP_BANDWIDTH=64000M
#                            HMAT: CPUs to the CXL host bridge (the generic
#                            port); bandwidths in QEMU's units (M = MiB/s)
#   KONA_VM_OVERLAY=DIR      files copied into the guest's / for this run (no image rebuild)
#   KONA_VM_VERBOSE=1        also stream the serial console to stderr
#   KONA_VM_STREAM=1         stream the guest command's output to stdout
#                            as it comes (not the boot, not the KONA-*
#                            marker lines but KONA-FAIL's reason)
#   KONA_VM_LOCKUP_S=N       give up (as at the deadline, status 124) once
#                            the guest's kernel reports a CPU stuck N s
#                            (soft lockup); sets KONA_VM_LOCKUP
#   KONA_VM_SILENT_S=N       give up the same way once the guest command has
#                            printed nothing for N s, for a command that
#                            prints regularly (a guest frozen whole reports
#                            no lockup); sets KONA_VM_SILENT to the seconds
#   KONA_VM_DEVICE=kona-cxl  default device type for kona_vm_memdev_args
#   KONA_VM_KONA_PROPS=...   extra kona-cxl properties (memnode=..., cache-size=...)
#   KONA_VM_QMP=PATH         QMP socket for the run; with it, QEMU is kept
#                            alive after the guest command ends, so that
#   KONA_VM_ON_RESULT="cmd"  runs (on the host) once the guest printed its
#                            KONA-RESULT, e.g. to read device statistics

# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Host bridge / root port names the memdev args refer to.
KONA_VM_ROOT_PORT=root_port13

# The fixed part of the command line (see notes/guest-cxl-bringup.md for why
# each odd option is there). $1: initrd to use.
kona_vm_base_args() {
    local initrd=$1
    # shellcheck disable=SC2054  # commas are QEMU's, not array separators
    # Whether this machine has /dev/kvm is kona_vm_check's business: the
    # command line may be meant for another one (tests/kvm builds a
    # nested guest's here).
    local accel=${KONA_VM_ACCEL:-tcg}
    case "$accel" in
        tcg|kvm) ;;
        *) die "KONA_VM_ACCEL=$accel: tcg or kvm" ;;
    esac
    KONA_VM_BASE_ARGS=(
        -M q35,cxl=on -accel "$accel"
        # hypervisor=off: with the flag, region commit fails (ENXIO) because
        # the kernel cannot invalidate CPU caches for the new region.
        -cpu "${KONA_VM_CPU:-$([ "$accel" = kvm ] && echo host || echo max)},hypervisor=off"
        -m "${KONA_VM_MEM:-2G},maxmem=${KONA_VM_MAXMEM:-8G},slots=4" -smp "${KONA_VM_SMP:-2}"
        # -nodefaults: q35's default empty CD-ROM costs SeaBIOS ~32 s under TCG.
        -nodefaults -serial mon:stdio -display none
        # A guest panic or reboot ends QEMU instead of looping.
        -no-reboot
        "${QEMU_FW_ARGS[@]}"
        -kernel "$GUEST_DIR/vmlinuz" -initrd "$initrd"
        # no_timer_check: on a loaded host the guest's IO-APIC timer test
        # can miss its ticks and panic ("IO-APIC + timer doesn't work").
        -append "console=ttyS0 quiet panic=-1 no_timer_check${KONA_VM_APPEND:+ $KONA_VM_APPEND}"
        -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1
        -device "cxl-rp,port=0,bus=cxl.1,id=$KONA_VM_ROOT_PORT,chassis=0,slot=2"
        -M "cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=${KONA_VM_FMW_SIZE:-4G}"
    )
    _kona_vm_numa_args
    KONA_VM_BASE_ARGS+=("${_KONA_VM_NUMA_ARGS[@]}")
    _kona_vm_net_args
    KONA_VM_BASE_ARGS+=("${_KONA_VM_NET_ARGS[@]}")
}

# The NUMA part of the command line, in _KONA_VM_NUMA_ARGS: an HMAT that
# lets Linux rate the CXL memory (KONA_VM_HMAT=1, the default), or nothing.
#
# Linux computes a CXL region's latency and bandwidth (the node's access0/
# access1 attributes, and from them its memory tier) from three parts:
# the firmware's HMAT figures from the CPUs to the generic port of the
# host bridge, the links and switches on the way (PCIe link speed), and
# the device's CDAT. Without a generic port it computes nothing, and
# dax/kmem puts the node in its default tier (memory_tier22). It rates
# the result against the CPUs' own memory, so that needs HMAT figures too.
#
# QEMU nodes (= ACPI proximity domains): 0 is the generic port (no memory,
# no CPUs), 1 holds the CPUs and the RAM. The order keeps the guest's
# numbering of before (node 0 = CPUs and RAM, node 1 = the CXL window):
# Linux numbers nodes as it meets their proximity domains, CPUs first
# (PXM 1 -> node 0), and gives a CXL window no SRAT entry covers the next
# domain after the highest it numbered (PXM 2 -> node 1); the generic port
# gets no node. QEMU gives the memory-hotplug range (maxmem) the last
# node's domain, so a generic port on the last node would become a node
# of its own and push the CXL memory to node 2.
_kona_vm_numa_args() {
    _KONA_VM_NUMA_ARGS=()
    case "${KONA_VM_HMAT:-1}" in
        0) return ;;
        1) ;;
        *) die "KONA_VM_HMAT=$KONA_VM_HMAT: 1 (HMAT with a generic port) or 0" ;;
    esac
    local mem=${KONA_VM_MEM:-2G} ncpu=${KONA_VM_SMP:-2}
    # -m takes a plain number as MiB, a memory backend as bytes.
    case "$mem" in *[!0-9]*) ;; *) mem=${mem}M ;; esac
    ncpu=${ncpu%%,*}
    ncpu=${ncpu#cpus=}
    case "$ncpu" in ''|*[!0-9]*) die "KONA_VM_SMP=$KONA_VM_SMP: want a CPU count first" ;; esac
    local lb=hmat-lb,hierarchy=memory
    # shellcheck disable=SC2054  # commas are QEMU's
    _KONA_VM_NUMA_ARGS=(
        -M hmat=on
        -object "memory-backend-ram,id=kona-dram,size=$mem"
        -numa node,nodeid=0
        -numa "node,nodeid=1,cpus=0-$((ncpu - 1)),memdev=kona-dram"
        -object acpi-generic-port,id=kona-gp0,pci-bus=cxl.1,node=0
        -numa "$lb,initiator=1,target=1,data-type=access-latency,latency=${KONA_VM_DRAM_LATENCY_NS:-82}"
        -numa "$lb,initiator=1,target=1,data-type=access-bandwidth,bandwidth=${KONA_VM_DRAM_BANDWIDTH:-20000M}"
        -numa "$lb,initiator=1,target=0,data-type=access-latency,latency=${KONA_VM_GP_LATENCY_NS:-20}"
        -numa "$lb,initiator=1,target=0,data-type=access-bandwidth,bandwidth=${KONA_VM_GP_BANDWIDTH:-64000M}"
    )
}

# A TCP port on 127.0.0.1 that nobody listens on now.
kona_vm_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The network part of the command line, in _KONA_VM_NET_ARGS: none, or
# user-mode networking with one forwarded port (KONA_VM_HOSTFWD).
_kona_vm_net_args() {
    KONA_VM_HOSTFWD_PORT=
    if [ -z "${KONA_VM_HOSTFWD:-}" ]; then
        _KONA_VM_NET_ARGS=(-net none)
        return
    fi
    local host=${KONA_VM_HOSTFWD%%:*} guest=${KONA_VM_HOSTFWD#*:}
    case "$host:$guest" in
        *[!0-9:]*|:*|*:) die "KONA_VM_HOSTFWD=$KONA_VM_HOSTFWD: want HOSTPORT:GUESTPORT" ;;
    esac
    [ "$host" = 0 ] && host=$(kona_vm_free_port)
    KONA_VM_HOSTFWD_PORT=$host
    # bus=pcie.0: otherwise QEMU picks the pxb-cxl bus, which takes only
    # bridges. romfile=: no iPXE option ROM; SeaBIOS boots -kernel without.
    # shellcheck disable=SC2054
    _KONA_VM_NET_ARGS=(
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$host-:$guest"
        -device virtio-net-pci,netdev=n0,bus=pcie.0,romfile=
    )
}

# kona_vm_memdev_args [TYPE [SIZE [ID]]]: the CXL memory device, in
# KONA_VM_MEMDEV_ARGS. TYPE is kona-cxl (default, or $KONA_VM_DEVICE) or
# cxl-type3. The one place that knows how each device is configured.
kona_vm_memdev_args() {
    local type=${1:-${KONA_VM_DEVICE:-kona-cxl}} size=${2:-256M} id=${3:-0}
    case "$type" in
        cxl-type3)
            KONA_VM_MEMDEV_ARGS=(
                -object "memory-backend-ram,id=vmem$id,share=on,size=$size"
                -device "cxl-type3,bus=$KONA_VM_ROOT_PORT,volatile-memdev=vmem$id,id=cxl-vmem$id"
            ) ;;
        kona-cxl)
            # kona-cxl makes its own media backend, sized by 'size' (it
            # rejects memdev/volatile-memdev). KONA_VM_KONA_PROPS adds
            # properties, e.g. "memnode=unix:/run/mn.sock,cache-size=32M".
            KONA_VM_MEMDEV_ARGS=(
                -device "kona-cxl,bus=$KONA_VM_ROOT_PORT,size=$size,id=kona$id${KONA_VM_KONA_PROPS:+,$KONA_VM_KONA_PROPS}"
            ) ;;
        *) die "kona_vm_memdev_args: unknown device type '$type' (kona-cxl or cxl-type3)" ;;
    esac
}

# kona_vm_has_device NAME: does $QEMU_BIN know -device NAME?
kona_vm_has_device() {
    [ -x "$QEMU_BIN" ] || return 1
    "$QEMU_BIN" -device help 2>/dev/null | grep -q "name \"$1\""
}

kona_vm_check() {
    [ -x "$QEMU_BIN" ] || die "no QEMU at $QEMU_BIN (run scripts/setup)"
    if [ "${KONA_VM_ACCEL:-tcg}" = kvm ] && [ ! -w /dev/kvm ]; then
        die "KONA_VM_ACCEL=kvm: /dev/kvm is missing or not writable"
    fi
    if [ ! -f "$GUEST_DIR/vmlinuz" ] || [ ! -f "$GUEST_DIR/initrd.cpio.gz" ]; then
        die "no guest image in $GUEST_DIR (run scripts/build-guest-image)"
    fi
}

# Build an initrd for one run: the image plus a second (gzip'd cpio) archive
# with /etc/kona/cmd.sh and the overlay; the kernel unpacks both in order.
# This passes commands of any length and quoting, unlike the kernel command
# line. $1: guest command ('' for none), $2: output file.
_kona_vm_initrd() {
    local cmd=$1 out=$2 root
    root=$(mktemp -d "${TMPDIR:-/tmp}/kona-vm-overlay.XXXXXX")
    mkdir -p "$root/etc/kona"
    if [ -n "${KONA_VM_OVERLAY:-}" ]; then
        [ -d "$KONA_VM_OVERLAY" ] || die "KONA_VM_OVERLAY=$KONA_VM_OVERLAY is not a directory"
        cp -a "$KONA_VM_OVERLAY/." "$root/"
    fi
    [ -n "$cmd" ] && printf '%s\n' "$cmd" >"$root/etc/kona/cmd.sh"
    cp "$GUEST_DIR/initrd.cpio.gz" "$out"
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet | gzip -1 -n) >>"$out"
    rm -rf "$root"
}


# Microseconds to seconds with one decimal.
_kona_vm_secs() { printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

# Kill what kona_vm_run started (QEMU, the log follower, the ready hook).
# Safe to call twice.
_kona_vm_cleanup() {
    local p
    if [ -n "${_KONA_VM_HOOK_PID:-}" ]; then
        # The hook is a subshell: end its children (e.g. a benchmark) too.
        pkill -TERM -P "$_KONA_VM_HOOK_PID" 2>/dev/null || true
        kill -TERM "$_KONA_VM_HOOK_PID" 2>/dev/null || true
        wait "$_KONA_VM_HOOK_PID" 2>/dev/null || true
        _KONA_VM_HOOK_PID=
    fi
    for p in ${_KONA_VM_TAIL_PID:-} ${_KONA_VM_QEMU_PID:-}; do
        kill -TERM "$p" 2>/dev/null || true
    done
    if [ -n "${_KONA_VM_QEMU_PID:-}" ]; then
        # QEMU normally exits at once on SIGTERM; do not leave it behind.
        local _
        for _ in $(seq 30); do
            kill -0 "$_KONA_VM_QEMU_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$_KONA_VM_QEMU_PID" 2>/dev/null || true
        wait "$_KONA_VM_QEMU_PID" 2>/dev/null || true
    fi
    if [ -n "${_KONA_VM_TAIL_PID:-}" ]; then
        wait "$_KONA_VM_TAIL_PID" 2>/dev/null || true
    fi
    if [ -n "${_KONA_VM_TMP:-}" ]; then
        rm -rf "$_KONA_VM_TMP"
    fi
    _KONA_VM_QEMU_PID='' _KONA_VM_TAIL_PID='' _KONA_VM_TMP=
    return 0
}

# One console line, for kona_vm_run's watchdog (uses and sets its locals:
# now, t0, begin_at, result_seen, last_step, in_cmd, last_line_at).
_kona_vm_line() {
    local l=${1%$'\r'}
    last_line_at=$now
    if [ -n "$in_cmd" ] && [ -n "${KONA_VM_STREAM:-}" ]; then
        case "$l" in
            KONA-FAIL*) printf '%s\n' "$l" ;;
            KONA-*) ;;
            # A marker after output that did not end its line.
            *KONA-[A-Z]*) printf '%s\n' "${l%%KONA-[A-Z]*}" ;;
            *) printf '%s\n' "$l" ;;
        esac
    fi
    case "$l" in
        *KONA-BEGIN*)
            [ -z "$begin_at" ] || return 0
            begin_at=$now
            in_cmd=1
            last_step='guest command running'
            if [ -n "${KONA_VM_PROGRESS:-}" ]; then
                log "guest booted in $(_kona_vm_secs $((now - t0)))s"
            fi
            ;;
        KONA-STEP\ *)
            last_step=${l#KONA-STEP }
            if [ -n "${KONA_VM_PROGRESS:-}" ]; then
                log "guest, $(_kona_vm_secs $((now - t0)))s: $last_step"
            fi
            ;;
        *"soft lockup - CPU#"*" stuck for "*s!*)
            # A CPU the guest's own watchdog has seen stuck this long
            # will not come back: no need to wait for the deadline.
            local stuck=${l##* stuck for }
            stuck=${stuck%%s!*}
            if [ -n "${KONA_VM_LOCKUP_S:-}" ] && [ "$stuck" -ge "$KONA_VM_LOCKUP_S" ] 2>/dev/null; then
                KONA_VM_LOCKUP=$stuck
            fi
            ;;
        KONA-FAIL\ *)
            KONA_VM_FAIL_STEP=${l#*step=\'}
            KONA_VM_FAIL_STEP=${KONA_VM_FAIL_STEP%%\'*}
            ;;
        KONA-READY*)
            if [ -n "${KONA_VM_ON_READY:-}" ] && [ -z "${_KONA_VM_HOOK_PID:-}" ]; then
                ( eval "$KONA_VM_ON_READY" ) &
                _KONA_VM_HOOK_PID=$!
            fi
            ;;
        *KONA-RESULT*)
            in_cmd=
            if [ -z "${KONA_VM_QMP:-}" ] || [ -n "$result_seen" ]; then
                return 0
            fi
            result_seen=1
            if [ -n "${KONA_VM_ON_RESULT:-}" ]; then
                eval "$KONA_VM_ON_RESULT" || log "KONA_VM_ON_RESULT failed (status $?)"
            fi
            kill -TERM "$_KONA_VM_QEMU_PID" 2>/dev/null || true
            ;;
        *'Blocked re-entrant IO'*kona*)
            KONA_VM_REENTRANT=1
            log "WARNING: QEMU dropped a guest access to the kona-cxl device (re-entrancy guard): $l"
            ;;
    esac
    return 0
}

# kona_vm_run TIMEOUT_S LOGFILE GUEST_CMD [-- EXTRA_QEMU_ARGS...]
# Boot the guest, run GUEST_CMD (a busybox sh script) in it, power off.
# The serial console goes to LOGFILE. See the top of this file for the
# return value.
kona_vm_run() {
    local timeout=$1 logfile=$2 cmd=$3
    shift 3
    [ "${1:-}" = -- ] && shift
    kona_vm_check
    [ -n "$cmd" ] || die "kona_vm_run: empty guest command (use kona_vm_shell for an interactive guest)"

    mkdir -p "$(dirname "$logfile")"
    _KONA_VM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kona-vm.XXXXXX")
    _kona_vm_initrd "$cmd" "$_KONA_VM_TMP/initrd"
    kona_vm_base_args "$_KONA_VM_TMP/initrd"

    # Whatever happens to the caller (Ctrl-C, set -e, kill), QEMU goes too.
    # The caller's traps still run: chained on EXIT, restored before a
    # signal is re-raised.
    local sig
    _KONA_VM_SAVED_TRAPS=$(trap -p EXIT INT TERM HUP)
    # shellcheck disable=SC2064
    trap "_kona_vm_cleanup; $(kona_trap_cmd EXIT)" EXIT
    for sig in INT TERM HUP; do
        # shellcheck disable=SC2064
        trap "_kona_vm_cleanup; trap - EXIT INT TERM HUP; eval \"\$_KONA_VM_SAVED_TRAPS\"; kill -$sig \$\$" "$sig"
    done

    if [ -n "${KONA_VM_QMP:-}" ]; then
        # -no-shutdown: the guest's poweroff stops the VM but QEMU stays up
        # for KONA_VM_ON_RESULT; we end it once that has run.
        set -- "$@" -qmp "unix:$KONA_VM_QMP,server=on,wait=off" -no-shutdown
    fi
    local result_seen='' in_cmd=''

    # For the record (the temporary initrd is gone after the run).
    printf '%q ' "$QEMU_BIN" "${KONA_VM_BASE_ARGS[@]}" "$@" >"$logfile.cmdline"
    echo >>"$logfile.cmdline"
    # Times in microseconds from bash's clock (no fork per poll).
    local t0 now begin_at=''
    : >"$logfile"       # exists before the follower below opens it
    t0=${EPOCHREALTIME/./}
    "$QEMU_BIN" "${KONA_VM_BASE_ARGS[@]}" "$@" </dev/null >"$logfile" 2>&1 &
    _KONA_VM_QEMU_PID=$!
    if [ -n "${KONA_VM_VERBOSE:-}" ]; then
        tail -n +1 -f --pid="$_KONA_VM_QEMU_PID" "$logfile" >&2 &
        _KONA_VM_TAIL_PID=$!
    fi

    # Watchdog: follow the console line by line (a read, no fork, per
    # poll), note when the guest command starts, show progress, run the
    # hooks, and kill QEMU at the deadline.
    KONA_VM_STATUS= KONA_VM_FAIL_STEP= KONA_VM_REENTRANT= KONA_VM_HOOK_RC= KONA_VM_LOCKUP=
    KONA_VM_SILENT=
    local fd line partial='' last_note=$t0 last_step=booting last_line_at=$t0
    exec {fd}<"$logfile"
    while kill -0 "$_KONA_VM_QEMU_PID" 2>/dev/null; do
        now=${EPOCHREALTIME/./}
        while IFS= read -r -u "$fd" line; do
            _kona_vm_line "$partial$line"
            partial=
        done
        # At the end of the file read leaves the unfinished line in $line.
        partial+=$line
        if [ -n "${KONA_VM_PROGRESS:-}" ] && [ $((now - last_note)) -ge 30000000 ]; then
            last_note=$now
            log "... $(_kona_vm_secs $((now - t0)) | cut -d. -f1)s: $last_step"
        fi
        if [ -n "$in_cmd" ] && [ -n "${KONA_VM_SILENT_S:-}" ] &&
            [ $((now - last_line_at)) -ge $((KONA_VM_SILENT_S * 1000000)) ]; then
            KONA_VM_SILENT=$(((now - last_line_at) / 1000000))
        fi
        if [ $((now - t0)) -gt $((timeout * 1000000)) ] || [ -n "$KONA_VM_LOCKUP" ] ||
            [ -n "$KONA_VM_SILENT" ]; then
            KONA_VM_STATUS=timeout
            if [ -n "$KONA_VM_LOCKUP" ]; then
                log "a guest CPU has been stuck for ${KONA_VM_LOCKUP}s (soft lockup) during '$last_step'; killing QEMU (log: $logfile)"
            elif [ -n "$KONA_VM_SILENT" ]; then
                log "the guest has printed nothing for ${KONA_VM_SILENT}s during '$last_step'; killing QEMU (log: $logfile)"
            else
                log "guest timed out after ${timeout}s during '$last_step'; killing QEMU (log: $logfile)"
            fi
            kill -TERM "$_KONA_VM_QEMU_PID" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    # The rest of the console, the last line even without a newline.
    while IFS= read -r -u "$fd" line; do
        _kona_vm_line "$partial$line"
        partial=
    done
    partial+=$line
    [ -z "$partial" ] || _kona_vm_line "$partial"
    exec {fd}<&-
    if [ -n "${_KONA_VM_HOOK_PID:-}" ] && ! kill -0 "$_KONA_VM_HOOK_PID" 2>/dev/null; then
        wait "$_KONA_VM_HOOK_PID" && KONA_VM_HOOK_RC=0 || KONA_VM_HOOK_RC=$?
        _KONA_VM_HOOK_PID=
    elif [ -n "${_KONA_VM_HOOK_PID:-}" ]; then
        log "KONA_VM_ON_READY hook still running when the VM ended; stopping it"
        KONA_VM_HOOK_RC=killed
    fi
    KONA_VM_QEMU_RC=0
    if [ "$KONA_VM_STATUS" = timeout ]; then
        _kona_vm_cleanup
        KONA_VM_QEMU_RC=124
    else
        wait "$_KONA_VM_QEMU_PID" || KONA_VM_QEMU_RC=$?
        _KONA_VM_QEMU_PID=
        _kona_vm_cleanup
    fi
    now=${EPOCHREALTIME/./}
    KONA_VM_ELAPSED_S=$(_kona_vm_secs $((now - t0)))
    KONA_VM_BOOT_S=
    [ -n "$begin_at" ] && KONA_VM_BOOT_S=$(_kona_vm_secs $((begin_at - t0)))

    # Restore the caller's traps.
    trap - EXIT INT TERM HUP
    eval "$_KONA_VM_SAVED_TRAPS"

    local rc
    rc=$(sed -n 's/.*KONA-RESULT rc=\([0-9][0-9]*\).*/\1/p' "$logfile" | tail -n 1)
    if [ "$KONA_VM_STATUS" = timeout ]; then
        return 124
    elif [ -z "$rc" ]; then
        KONA_VM_STATUS=noresult
        log "QEMU exited (status $KONA_VM_QEMU_RC) without a KONA-RESULT; last lines of $logfile:"
        tail -n 15 "$logfile" | sed 's/^/    /' >&2
        return 125
    fi
    KONA_VM_STATUS=ok
    return "$rc"
}

# kona_vm_output LOGFILE: the guest command's output (between the markers).
kona_vm_output() {
    sed -n '/KONA-BEGIN/,/KONA-RESULT/{/KONA-BEGIN/d;/KONA-RESULT/d;p}' "$1" | tr -d '\r'
}

# kona_vm_user_output LOGFILE: kona_vm_output without the guest kernel's
# console lines. The kernel prints to the serial console wherever a
# process's line stands, so one of its lines can land in the middle of a
# process's line ("probe: 6144 pa[   28.87] mce: ...", then "ges, ...");
# taking each "[ seconds] ...<newline>" out, wherever it starts, gives the
# process's lines back whole.
kona_vm_user_output() {
    kona_vm_output "$1" | sed -z 's/\[ *[0-9]\+\.[0-9]\{6\}\] [^\n]*\n//g'
}

# kona_vm_shell [EXTRA_QEMU_ARGS...]: interactive guest on this terminal
# (Ctrl-A x quits QEMU; 'exit' in the guest powers off).
kona_vm_shell() {
    [ "${1:-}" = -- ] && shift
    kona_vm_check
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/kona-vm.XXXXXX")
    _kona_vm_initrd "" "$tmp/initrd"
    kona_vm_base_args "$tmp/initrd"
    local rc=0
    "$QEMU_BIN" "${KONA_VM_BASE_ARGS[@]}" "$@" || rc=$?
    rm -rf "$tmp"
    return "$rc"
}
