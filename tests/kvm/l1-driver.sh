#!/bin/sh
# shellcheck shell=dash
# The KVM tests' driver inside L1 (busybox sh, run by guest-runtime/init as
# the guest command; tests/kvm/lib.sh puts it and everything it uses under
# /kvm through KONA_VM_OVERLAY). L1 is a TCG guest whose CPU has AMD SVM;
# here it:
#   1. loads kvm_amd (modules decompressed from the guest kernel package,
#      in /kvm/modules/order) and checks /dev/kvm;
#   2. starts a kona-memnode on a unix socket;
#   3. starts our QEMU with -accel kvm and kona-cxl (the second-level guest,
#      L2; its arguments are in /kvm/l2-args, one a line, to which it adds
#      L1's TSC frequency for L2's kernel), with its stdin a fifo so that L1
#      can answer L2, an HMP monitor and a QMP event stream on 127.0.0.1,
#      and -no-shutdown;
#   4. follows L2's console: every line is echoed as "L2| line"; at each
#      "KONA-SYNC TAG" line (L2 waits in a read) it reads the device's
#      statistics over HMP (qom-get .../kona0 stats-text), prints them
#      between KVM-HMP-BEGIN/END TAG and answers L2 so it goes on;
#   5. when L2 stops (QMP SHUTDOWN: its reason is printed) or /kvm/config's
#      L2_TIMEOUT passes (then, first, where QEMU's threads and L1's blocked
#      tasks are), reads the counters once more (HMP tag "final"), the
#      vCPUs' registers unless L2 powered off as planned, quits QEMU, prints
#      its exit status, stderr and QMP events, and stops the memnode.
#   6. if L2 stalls in its boot (before its init's first step: the console
#      silent and the vCPU threads given almost no CPU for BOOT_STALL_S),
#      says so with where it is (registers, local APIC, QEMU's threads),
#      stops it and starts it once more: see run_l2.
# It checks nothing: the host (tests/kvm/*-test) reads this output and
# asserts. Lines it prints for the host:
#   KVM-L1 key=value ...         facts (kvm loaded, L2 started, L2 exit...)
#   KVM-SECTION-BEGIN NAME / KVM-SECTION-END NAME   a file's contents
#   KVM-HMP-BEGIN TAG / KVM-HMP-END TAG             HMP's answer
#   KVM-L1 l2-boot-stall ...     an L2 that stalled in its boot, or
#   KVM-L1 l2-reset ...          reset itself, and runs once more; its
#                                lines since "KVM-L1 l2=started" are that
#                                attempt's
#   KVM-L1-DONE                  the driver got to its end

. /kvm/config
D=/run/kvm
HMP_PORT=4444
QMP_PORT=4445
CR=$(printf '\r')
mkdir -p "$D"
# A write to a fifo whose reader (nc) is gone must fail, not kill us.
trap '' PIPE

now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
fact() { echo "KVM-L1 $*"; }

# section NAME FILE: a file's contents for the host, control characters
# (HMP's line editing, the console's CRs) removed.
section() {
    echo "KVM-SECTION-BEGIN $1"
    [ -f "$2" ] && tr -d '\000-\010\013-\037\177' <"$2"
    echo
    echo "KVM-SECTION-END $1"
}

load_kvm() {
    local m
    echo "KONA-STEP L1: load kvm_amd"
    while read -r m; do
        insmod "/kvm/modules/$m" || { fact "kvm=insmod-failed module=$m"; return 1; }
    done </kvm/modules/order
    if [ ! -c /dev/kvm ]; then
        fact "kvm=no-dev-kvm"
        dmesg | grep -i -e kvm -e svm | tail -n 10
        return 1
    fi
    fact "kvm=loaded $(dmesg | grep -c 'Nested Paging enabled') nested-paging-lines"
}

# L1's KVM events while L2 runs, in a small ring (the last few thousand
# stay): when L2 stops other than by powering off (a triple fault is QMP
# reason guest-reset), they say what KVM did just before - which exit
# (SVM exit code, guest RIP, exit info) and which exception it injected -
# and so whether the fault came from KVM's own injection or from the CPU
# (here L0's TCG) delivering one of L2's exceptions.
KVM_TRACE=/sys/kernel/tracing
KVM_TRACE_EVENTS="kvm_exit kvm_inj_exception kvm_inj_virq kvm_page_fault"
kvm_trace_start() {
    local e n=0
    [ -d "$KVM_TRACE/events" ] || mount -t tracefs nodev "$KVM_TRACE" 2>/dev/null
    [ -d "$KVM_TRACE/events/kvm" ] || { fact "kvm-trace=unavailable"; return 0; }
    echo 256 >"$KVM_TRACE/buffer_size_kb"
    for e in $KVM_TRACE_EVENTS; do
        echo 1 >"$KVM_TRACE/events/kvm/$e/enable" 2>/dev/null && n=$((n + 1))
    done
    echo 1 >"$KVM_TRACE/tracing_on"
    fact "kvm-trace=on events=$n"
}

kvm_trace_dump() {
    [ -r "$KVM_TRACE/trace" ] || return 0
    echo 0 >"$KVM_TRACE/tracing_on"
    tail -n 400 "$KVM_TRACE/trace" >"$D/kvm-trace"
    # Empty for a next attempt, and on again.
    : >"$KVM_TRACE/trace"
    echo 1 >"$KVM_TRACE/tracing_on"
    section l1-kvm-trace "$D/kvm-trace"
}

MN_PID=
start_memnode() {
    local i=0
    echo "KONA-STEP L1: start kona-memnode"
    /kvm/kona-memnode --listen "unix:$D/memnode.sock" >"$D/memnode.ready" 2>"$D/memnode.log" &
    MN_PID=$!
    while ! grep -q ready "$D/memnode.ready" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -ge 200 ] || ! kill -0 "$MN_PID" 2>/dev/null; then
            fact "memnode=failed"
            section memnode.log "$D/memnode.log"
    dmesg | tail -n 40 >"$D/dmesg"
    section l1-dmesg "$D/dmesg"
            return 1
        fi
        usleep 50000
    done
    fact "memnode=up pid=$MN_PID"
}

stop_memnode() {
    [ -n "$MN_PID" ] || return 0
    kill -TERM "$MN_PID" 2>/dev/null
    wait "$MN_PID" 2>/dev/null
    MN_PID=
}

# hmp_query TAG COMMAND: run one HMP command on L2's QEMU, its raw answer
# in $D/hmp-TAG.raw. busybox nc has no unix sockets (hence TCP on loopback)
# and does not end at the end of its input: it gets its command from a fifo
# and is stopped once the monitor has printed its prompt after the answer.
hmp_query() {
    local tag=$1 cmd=$2 out=$D/hmp-$1.raw nc_pid i=0
    rm -f "$D/hmp.in"
    mkfifo "$D/hmp.in"
    nc 127.0.0.1 "$HMP_PORT" <"$D/hmp.in" >"$out" 2>&1 &
    nc_pid=$!
    exec 4>"$D/hmp.in"
    echo "$cmd" >&4
    # The banner's prompt, then the answer and a second prompt.
    while [ "$(grep -o '(qemu)' "$out" | wc -l)" -lt 2 ]; do
        i=$((i + 1))
        if [ "$i" -ge 600 ] || ! kill -0 "$nc_pid" 2>/dev/null; then
            echo "KVM-L1 hmp=failed tag=$tag"
            break
        fi
        usleep 50000
    done
    exec 4>&-
    kill "$nc_pid" 2>/dev/null
    wait "$nc_pid" 2>/dev/null
}

# hmp TAG COMMAND: the same, the answer printed for the host.
hmp() {
    local tag=$1 out=$D/hmp-$1.raw
    hmp_query "$@"
    # The answer without the banner and the prompts (the first one is
    # followed by the monitor's echo of the command, with line editing).
    echo "KVM-HMP-BEGIN $tag"
    tr -d '\000-\010\013-\037\177' <"$out" | grep -v -e '^(qemu)' -e '^QEMU .* monitor'
    echo "KVM-HMP-END $tag"
}

# Is something listening on 127.0.0.1:$1 (TCP)? /proc/net/tcp has the
# port in hex, state 0A is LISTEN.
listening() {
    grep -q "^ *[0-9]*: 0100007F:$(printf '%04X' "$1") 00000000:0000 0A " /proc/net/tcp
}

# L2's QMP events (SHUTDOWN says why the guest stopped: guest-shutdown,
# guest-reset, guest-panic...) into $D/qmp-events. QMP sends events only
# after qmp_capabilities, and busybox nc half-closes the connection at the
# end of its input, which makes QEMU drop it: its input is a fifo held
# open (fd 5) until the end.
QMP_PID=
qmp_events() {
    local i=0
    while ! listening "$QMP_PORT"; do
        i=$((i + 1))
        if [ "$i" -ge 300 ] || ! kill -0 "$L2_PID" 2>/dev/null; then
            fact "qmp=not-listening"
            return 1
        fi
        usleep 100000
    done
    rm -f "$D/qmp.in"
    mkfifo "$D/qmp.in"
    nc 127.0.0.1 "$QMP_PORT" <"$D/qmp.in" >"$D/qmp-events" 2>&1 &
    QMP_PID=$!
    exec 5>"$D/qmp.in"
    echo '{"execute": "qmp_capabilities"}' >&5
}

# Is L2's QEMU really a KVM user? Its vCPUs are kvm-vcpu file descriptors.
kvm_vcpus() {
    local f n=0
    for f in /proc/"$1"/fd/*; do
        case "$(readlink "$f")" in *kvm-vcpu*) n=$((n + 1)) ;; esac
    done
    echo "$n"
}

# One new line of L2's console ($1, without its CR).
L2_PID='' SYNCS=0 L2_BOOTED=
l2_line() {
    echo "L2| $1"
    case "$1" in
        KONA-STEP\ *)
            L2_BOOTED=1
            echo "KONA-STEP L2: ${1#KONA-STEP }"
            ;;
        KONA-SYNC\ *)
            SYNCS=$((SYNCS + 1))
            [ "$SYNCS" = 1 ] && fact "l2-vcpus=$(kvm_vcpus "$L2_PID")"
            hmp "${1#KONA-SYNC }" "qom-get /machine/peripheral/kona0 stats-text"
            # L2 waits for a line on its console.
            echo go >&3
            ;;
    esac
}

# cpu_ticks /proc/PID[/task/TID]: the CPU time (utime+stime, in clock
# ticks) L1 has given that process or thread; status 1 if it is gone.
cpu_ticks() {
    local st
    st=$(sed 's/.*) //' "$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] || return 1
    # shellcheck disable=SC2086  # the fields of stat after its comm
    set -- $st
    echo $((${12} + ${13}))
}

# Every PROGRESS_S seconds of L1's time while L2 runs, one line: the
# device's counters that move when L2 touches the node (they are since the
# phase's reset-stats), and the CPU time (utime+stime, in clock ticks) L1
# has given each of L2's QEMU threads and the memnode. Counters that keep
# moving between two lines mean a slow L2, frozen ones a stuck one.
PROGRESS_S=${PROGRESS_S:-30}
progress() {
    local t kv c st
    hmp_query progress "qom-get /machine/peripheral/kona0 stats-text"
    # qom-get prints the text as one JSON string, with \n between lines.
    kv=$(tr -d '\000-\010\013-\037\177' <"$D/hmp-progress.raw" | awk '{ gsub(/\\n/, "\n"); print }' |
        awk '$1 ~ /^(writes|write-bytes|misses|fetches|evictions|forced-evictions|guest-evictions|writebacks|resident-blocks|stall-ns)$/ && NF == 2 { printf "%s=%s ", $1, $2 }')
    c=''
    for t in /proc/"$L2_PID"/task/* "/proc/$MN_PID"; do
        st=$(cpu_ticks "$t") || continue
        c="$c$(tr ' ' _ <"$t/comm"):$st,"
    done
    fact "progress t=$(cut -d' ' -f1 /proc/uptime) ${kv}cpu=${c%,}"
}

# L1's TSC frequency in kHz, as its kernel measured it (empty if unknown).
l1_tsc_khz() {
    dmesg | sed -n 's/.*tsc: \(Refined TSC clocksource calibration: \|Detected \)\([0-9]*\)\.\([0-9]\{3\}\) MHz.*/\2\3/p' | tail -n 1
}

# L2's kernel cannot calibrate its TSC (the PIT and the HPET it measures
# against are emulated two levels deep), marks it unstable and keeps time
# with the HPET: every clock read is then an MMIO exit to L1's QEMU, and L2
# runs several times slower. Without the hypervisor CPUID bit (which the
# CXL region needs off) it has no kvm-clock either. So L2 is told the
# frequency: L1's KVM gives L2 L1's TSC, unscaled.
L2_TSC_ARGS=
l2_tsc_args() {
    local khz
    khz=$(l1_tsc_khz)
    fact "l1-clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) l1-tsc-khz=${khz:-unknown}"
    [ -n "$khz" ] && L2_TSC_ARGS="tsc_early_khz=$khz tsc=reliable"
}

# Print L2's new complete console lines (a line still being written waits
# for the next round; with "all", the rest, the last line even without a
# newline).
PRINTED=0
l2_console() {
    local n line
    if [ "${1:-}" = all ]; then
        sed -n "$((PRINTED + 1)),\$p" "$D/l2.log" >"$D/l2.new"
        PRINTED=$(wc -l <"$D/l2.log")
        # An unfinished last line is printed now, and not again.
        [ -z "$(tail -c 1 "$D/l2.log")" ] || PRINTED=$((PRINTED + 1))
    else
        n=$(wc -l <"$D/l2.log")
        [ "$n" -gt "$PRINTED" ] || return 0
        sed -n "$((PRINTED + 1)),${n}p" "$D/l2.log" >"$D/l2.new"
        PRINTED=$n
    fi
    while IFS= read -r line || [ -n "$line" ]; do l2_line "${line%"$CR"}"; done <"$D/l2.new"
}

# Where L2's QEMU and L1's kernel are stuck, for a timeout: the kernel
# stacks of QEMU's threads (the kona-cxl fault thread, the vCPUs) and of
# every blocked task (sysrq w, into dmesg).
l1_where() {
    local t
    {
        for t in /proc/"$L2_PID"/task/*; do
            # syscall: "16 0x<fd> 0xae80 ..." is a vCPU in KVM_RUN (the
            # guest's own time, or halted), a futex one waiting on a lock.
            echo "--- thread ${t##*/} $(cat "$t/comm" 2>/dev/null) state $(sed -n 's/^State:\t//p' "$t/status" 2>/dev/null) wchan $(cat "$t/wchan" 2>/dev/null) syscall $(cut -d' ' -f1-3 "$t/syscall" 2>/dev/null)"
            cat "$t/stack" 2>/dev/null
        done
        echo "--- kona-memnode"
        cat "/proc/$MN_PID/stack" 2>/dev/null
    } >"$D/l2-stacks"
    section l2-qemu-stacks "$D/l2-stacks"
    echo w >/proc/sysrq-trigger 2>/dev/null
    dmesg | tail -n 300 >"$D/dmesg-blocked"
    section l1-blocked-tasks "$D/dmesg-blocked"
}

# L2's guest has stopped (-no-shutdown: QEMU stays up) or must be stopped
# ($1: why). Say why, read the device's counters once more and, unless L2
# powered off as planned, its vCPUs' registers; then quit QEMU.
l2_stop() {
    local why=$1 reason i=0 q
    reason=$(sed -n 's/.*"event": "SHUTDOWN".*"reason": "\([^"]*\)".*/\1/p' "$D/qmp-events" | tail -n 1)
    L2_STOP_REASON=$reason
    fact "l2-stop=$why l2-shutdown-reason=${reason:-none}"
    hmp final "qom-get /machine/peripheral/kona0 stats-text"
    if [ "$reason" != guest-shutdown ]; then
        hmp registers "info registers -a"
        kvm_trace_dump
    fi
    echo quit | nc 127.0.0.1 "$HMP_PORT" >/dev/null 2>&1 &
    q=$!
    while kill -0 "$L2_PID" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -ge 100 ] && { fact "l2-quit=failed"; kill -KILL "$L2_PID"; break; }
        usleep 100000
    done
    kill "$q" 2>/dev/null
    wait "$q" 2>/dev/null
}

# The CPU time (clock ticks) L1 has given L2's vCPU threads.
vcpu_ticks() {
    local t st sum=0
    for t in /proc/"$L2_PID"/task/*; do
        case "$(cat "$t/comm" 2>/dev/null)" in CPU\ *) ;; *) continue ;; esac
        st=$(cpu_ticks "$t") || continue
        sum=$((sum + st))
    done
    echo "$sum"
}

# An L2 stalled in its boot: no console line and less than a second of
# CPU for its vCPUs in BOOT_STALL_S seconds, before its init's first step.
# (A slow boot, e.g. unpacking the initramfs on a loaded machine, is silent
# too, but its vCPUs run.) Seen once in a clean-clone run: L2's console
# stopped at 1.14 s of its boot and nothing moved for 322 s; never in the 19
# boots since. Each attempt's diagnostics stay in the log.
BOOT_STALL_S=${BOOT_STALL_S:-120}
L2_STOP_REASON=
BOOT_STALL_TICKS=100
L2_ATTEMPTS=${L2_ATTEMPTS:-2}

run_l2() {
    local attempt=1
    while ! run_l2_once "$attempt"; do
        [ "$attempt" -lt "$L2_ATTEMPTS" ] || return 1
        attempt=$((attempt + 1))
    done
}

# run_l2_once ATTEMPT: one L2, from its start to its end; status 1 if it
# stalled in its boot, or reset itself, and is to run once more.
run_l2_once() {
    local attempt=$1 t0 deadline next_progress line rc prev='' i=0 hung=
    local seen=0 seen_ms seen_ticks ticks again= injected=
    PRINTED=0 SYNCS=0 L2_BOOTED=
    echo "KONA-STEP L1: start L2 (qemu -accel kvm, tracking=$MODE, attempt $attempt)"
    l2_tsc_args
    set --
    while IFS= read -r line; do
        # The attempt's number, for L2's command to read in /proc/cmdline
        # (kvm-boot-stall-test resets one attempt from inside).
        [ "$prev" = -append ] && line="$line${L2_TSC_ARGS:+ $L2_TSC_ARGS} kona.l2_attempt=$attempt"
        set -- "$@" "$line"
        prev=$line
    done </kvm/l2-args
    rm -f "$D/l2.in"
    mkfifo "$D/l2.in"
    : >"$D/l2.log"
    t0=$(now_ms)
    # -no-shutdown: QEMU stays up when L2 stops, for l2_stop's questions.
    # debug-threads: the vCPU threads are "CPU N/KVM" (vcpu_ticks, progress).
    /kvm/qemu-system-x86_64 "$@" -no-shutdown -name l2,debug-threads=on \
        -monitor "tcp:127.0.0.1:$HMP_PORT,server=on,wait=off" \
        -qmp "tcp:127.0.0.1:$QMP_PORT,server=on,wait=off" \
        <"$D/l2.in" >"$D/l2.log" 2>"$D/l2.err" &
    L2_PID=$!
    # Open the fifo's writing end after QEMU's reading one (which waits
    # for it); held until the end so QEMU never sees the end of its input.
    exec 3>"$D/l2.in"
    fact "l2=started pid=$L2_PID attempt=$attempt"
    qmp_events
    seen_ms=$(now_ms)
    seen_ticks=$(vcpu_ticks)
    deadline=$((t0 + L2_TIMEOUT * 1000))
    next_progress=$((t0 + PROGRESS_S * 1000))
    while :; do
        l2_console
        # The stall test (kvm-boot-stall-test): the first attempt's vCPUs
        # stopped after its first console line, as a stalled boot.
        if [ "${STALL_INJECT:-0}" = 1 ] && [ "$attempt" = 1 ] && [ "$PRINTED" -gt 0 ] && [ -z "$injected" ]; then
            injected=1
            hmp stall-inject stop
        fi
        if [ "$PRINTED" != "$seen" ]; then
            seen=$PRINTED
            seen_ms=$(now_ms)
            seen_ticks=$(vcpu_ticks)
        elif [ -z "$L2_BOOTED" ] && [ $(($(now_ms) - seen_ms)) -ge $((BOOT_STALL_S * 1000)) ]; then
            ticks=$(vcpu_ticks)
            if [ $((ticks - seen_ticks)) -lt "$BOOT_STALL_TICKS" ]; then
                fact "l2-boot-stall attempt=$attempt silent-ms=$(($(now_ms) - seen_ms)) vcpu-ticks=$((ticks - seen_ticks)) console-lines=$PRINTED"
                hmp stall-lapic "info lapic"
                l1_where
                l2_stop boot-stall
                again=1
                break
            fi
            seen_ms=$(now_ms)
            seen_ticks=$ticks
        fi
        # Once, if L1's kernel reports a hung task or a CPU stuck (soft
        # lockup): where QEMU's threads are.
        i=$((i + 1))
        if [ -z "$hung" ] && [ $((i % 25)) = 0 ] && dmesg | grep -q -e 'blocked for more than' -e 'soft lockup'; then
            hung=1
            fact "l1-hung-task=yes"
            l1_where
        fi
        kill -0 "$L2_PID" 2>/dev/null || break
        if [ "$(now_ms)" -ge "$next_progress" ]; then
            progress
            next_progress=$(($(now_ms) + PROGRESS_S * 1000))
        fi
        if grep -q '"event": "SHUTDOWN"' "$D/qmp-events" 2>/dev/null; then
            l2_console all
            l2_stop stopped
            # A second-level vCPU that reset itself (a triple fault):
            # seen once in ~30 runs, on a loaded machine, with nothing on
            # the node that L2's kernel runs from (its memory is node 0;
            # node 1 is ZONE_MOVABLE). Its diagnostics (registers, L1's
            # KVM trace) are above; L2 runs once more from the start.
            if [ "$L2_STOP_REASON" = guest-reset ] && [ "$attempt" -lt "$L2_ATTEMPTS" ]; then
                fact "l2-reset attempt=$attempt console-lines=$PRINTED syncs=$SYNCS"
                again=1
            fi
            break
        fi
        if [ "$(now_ms)" -gt "$deadline" ]; then
            l2_console all
            fact "l2=timeout after=${L2_TIMEOUT}s"
            l1_where
            l2_stop timeout
            break
        fi
        usleep 200000
    done
    wait "$L2_PID"
    rc=$?
    exec 3>&-
    l2_console all
    fact "l2=exited rc=$rc ms=$(($(now_ms) - t0)) syncs=$SYNCS"
    if [ -n "$QMP_PID" ]; then
        exec 5>&-
        kill "$QMP_PID" 2>/dev/null
        wait "$QMP_PID" 2>/dev/null
    fi
    section l2-stderr "$D/l2.err"
    section l2-qmp-events "$D/qmp-events"
    [ -z "$again" ]
}

# If L1's kernel gets stuck, its console (the host's log) says where even
# when this script cannot run any more: messages up to KERN_INFO (a hung
# task's stack) reach it, and a hung task dumps every CPU's stack.
l1_kernel_diagnostics() {
    echo 7 >/proc/sys/kernel/printk
    echo 1 >/proc/sys/kernel/hung_task_all_cpu_backtrace 2>/dev/null
    echo 1 >/proc/sys/kernel/softlockup_all_cpu_backtrace 2>/dev/null
    echo 90 >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
}

main() {
    fact "mode=$MODE l2-timeout=$L2_TIMEOUT uptime=$(cut -d' ' -f1 /proc/uptime)"
    l1_kernel_diagnostics
    load_kvm || return 1
    kvm_trace_start
    start_memnode || return 1
    run_l2
    stop_memnode
    section memnode.log "$D/memnode.log"
    dmesg | tail -n 40 >"$D/dmesg"
    section l1-dmesg "$D/dmesg"
    echo "KVM-L1-DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
}

main
