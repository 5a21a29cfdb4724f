/*
 * libFuzzer harness for kona-cxl's guest-facing interface, driven through
 * QTest: one real QEMU (with a real kona-memnode behind the device) lives
 * for the whole run; every input is a program of register and memory
 * accesses that a malicious guest could make.  After each input the
 * device must still identify itself; a QEMU crash or hang ends the run.
 *
 * It speaks QEMU's QTest wire protocol itself (a line per command, "OK"
 * back), so it needs nothing of QEMU's test libraries.
 *
 *   KONA_QEMU=.../qemu-system-x86_64 KONA_MEMNODE=.../kona-memnode \
 *       kona-regs-fuzz [libFuzzer options] [corpus dir]
 *
 * Input: records of 11 bytes: op (1), offset (2), value (8).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kona-regs.h"

#define MMIO_BASE   0xe0000000ull       /* endpoint BAR 0 (component) */
#define REGS_BASE   0xe0100000ull       /* endpoint BAR 5 (kona) */
#define MEDIA_SPAN  (16u << 20)         /* what the fuzzer touches */

static FILE *qt_in, *qt_out;           /* QTest protocol, both ways */
static uint64_t window;                 /* CXL window base */
static GPid qemu_pid, memnode_pid;

/* Send one QTest command, return its reply line (static buffer). */
static const char *qt(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static const char *qt(const char *fmt, ...)
{
    static char line[4096], last[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last, sizeof(last) - 1, fmt, ap);
    va_end(ap);
    strcat(last, "\n");
    fputs(last, qt_out);
    fflush(qt_out);
    do {
        if (!fgets(line, sizeof(line), qt_in)) {
            int status = 0;

            if (ferror(qt_in) && errno == EINTR) {
                /* libFuzzer's timer signal, not the end of QEMU. */
                clearerr(qt_in);
                line[0] = 0;
                continue;
            }
            if (waitpid(qemu_pid, &status, WNOHANG) == 0) {
                fprintf(stderr, "kona-regs-fuzz: the QTest connection "
                        "closed but QEMU still runs, after: %s", last);
                abort();
            }
            qemu_pid = 0;
            fprintf(stderr, "kona-regs-fuzz: QEMU went away (%s %d) after: "
                    "%s", WIFSIGNALED(status) ? "signal" : "exit status",
                    WIFSIGNALED(status) ? WTERMSIG(status)
                                        : WEXITSTATUS(status), last);
            abort();
        }
        /* "IRQ ..." lines are asynchronous events, not our reply. */
    } while (!line[0] || g_str_has_prefix(line, "IRQ"));
    if (!g_str_has_prefix(line, "OK")) {
        fprintf(stderr, "kona-regs-fuzz: QTest said: %s", line);
        abort();
    }
    return line;
}

static uint64_t qt_value(const char *reply)
{
    return g_ascii_strtoull(reply + 3, NULL, 16);
}

static void cfg_writel(int bus, int reg, uint32_t val)
{
    qt("outl 0xcf8 0x%x", 0x80000000u | bus << 16 | reg);
    qt("outl 0xcfc 0x%x", val);
}

static void commit_hdm(uint64_t regs, uint64_t base, uint64_t size)
{
    qt("writel 0x%" G_GINT64_MODIFIER "x 0x%x", regs + 0x1138,
       (uint32_t)base);
    qt("writel 0x%" G_GINT64_MODIFIER "x 0x%x", regs + 0x113c,
       (uint32_t)(base >> 32));
    qt("writel 0x%" G_GINT64_MODIFIER "x 0x%x", regs + 0x1140,
       (uint32_t)size);
    qt("writel 0x%" G_GINT64_MODIFIER "x 0x%x", regs + 0x1144,
       (uint32_t)(size >> 32));
    qt("writel 0x%" G_GINT64_MODIFIER "x 0x200", regs + 0x1148);
}

static char *tmpdir;

static void cleanup(void)
{
    if (qemu_pid) {
        kill(qemu_pid, SIGKILL);
    }
    if (memnode_pid) {
        kill(memnode_pid, SIGKILL);
    }
    if (tmpdir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);

        if (system(cmd)) {
            /* best effort */
        }
    }
}

/* Children die with the harness, however it ends. */
static void die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GPid spawn(char **argv)
{
    g_autoptr(GError) err = NULL;
    GPid pid;

    if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                       G_SPAWN_STDOUT_TO_DEV_NULL, die_with_parent, NULL,
                       &pid, &err)) {
        fprintf(stderr, "kona-regs-fuzz: %s\n", err->message);
        exit(1);
    }
    return pid;
}

static int wait_connect(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    for (int i = 0; i < 200; i++) {
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            return fd;
        }
        g_usleep(50000);
    }
    fprintf(stderr, "kona-regs-fuzz: nothing listens on %s\n", path);
    exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *qemu = g_getenv("KONA_QEMU");
    const char *memnode = g_getenv("KONA_MEMNODE");
    g_autofree char *mn_sock = NULL, *qt_sock = NULL, *listen_opt = NULL;
    g_autofree char *dev = NULL;
    int lfd, fd;

    if (!qemu || !memnode) {
        fprintf(stderr, "kona-regs-fuzz: set KONA_QEMU and KONA_MEMNODE\n");
        exit(1);
    }
    tmpdir = g_dir_make_tmp("kona-fuzz-XXXXXX", NULL);
    atexit(cleanup);
    mn_sock = g_build_filename(tmpdir, "mn.sock", NULL);
    qt_sock = g_build_filename(tmpdir, "qtest.sock", NULL);
    listen_opt = g_strdup_printf("--listen=unix:%s", mn_sock);
    memnode_pid = spawn((char *[]){ (char *)memnode, listen_opt, NULL });
    close(wait_connect(mn_sock));

    /* QEMU connects to us: -qtest unix:PATH is a client. */
    {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };

        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        g_strlcpy(sun.sun_path, qt_sock, sizeof(sun.sun_path));
        if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
            listen(lfd, 1) < 0) {
            perror("kona-regs-fuzz: qtest socket");
            exit(1);
        }
    }
    dev = g_strdup_printf("kona-cxl,bus=rp0,id=kona0,size=256M,"
                          "memnode=unix:%s,cache-size=256K", mn_sock);
    {
        g_autofree char *qarg = g_strdup_printf("unix:%s", qt_sock);
        char *args[] = {
            (char *)qemu, "-machine", "q35,cxl=on", "-accel", "qtest",
            "-qtest", qarg, "-qtest-log", "/dev/null",
            "-display", "none", "-nodefaults",
            "-m", "512M", "-device",
            "pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1,hdm_for_passthrough=on",
            "-device", "cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2",
            "-device", dev,
            "-M", "cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G", NULL
        };
        qemu_pid = spawn(args);
    }
    fd = accept(lfd, NULL, NULL);
    close(lfd);
    qt_in = fdopen(fd, "r");
    qt_out = fdopen(dup(fd), "w");

    /* Bus numbers, windows and BARs as a guest's drivers set them. */
    cfg_writel(12, 0x18, 12 | 13 << 8 | 13 << 16);
    cfg_writel(12, 0x20, 0xe000 | 0xe0f0u << 16);
    cfg_writel(12, 0x04, 6);
    cfg_writel(13, 0x10, (uint32_t)MMIO_BASE);
    cfg_writel(13, 0x14, 0);
    cfg_writel(13, 0x24, (uint32_t)REGS_BASE);
    cfg_writel(13, 0x04, 6);
    if (qt_value(qt("readl 0x%llx", REGS_BASE)) != KONA_REGS_MAGIC_VALUE) {
        fprintf(stderr, "kona-regs-fuzz: no kona-cxl at BAR 5\n");
        exit(1);
    }
    /* The window sits at 256 MiB above the host register space (q35). */
    window = 0x110000000ull;
    commit_hdm(0x100000000ull, window, 256u << 20);    /* host bridge */
    commit_hdm(MMIO_BASE, window, 256u << 20);         /* endpoint */
    qt("writeq 0x%" G_GINT64_MODIFIER "x 0x4b4f4e41", window);
    if (qt_value(qt("readq 0x%" G_GINT64_MODIFIER "x", window)) !=
        0x4b4f4e41) {
        fprintf(stderr, "kona-regs-fuzz: the CXL window does not decode\n");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (; size >= 11; data += 11, size -= 11) {
        unsigned op = data[0] % 6;
        uint32_t off = (data[1] | data[2] << 8);
        uint64_t val;

        memcpy(&val, data + 3, 8);
        switch (op) {
        case 0:
            qt("writel 0x%llx 0x%x", REGS_BASE + (off % KONA_REGS_SIZE & ~3u),
               (uint32_t)val);
            break;
        case 1:
            qt("writeq 0x%llx 0x%" G_GINT64_MODIFIER "x",
               REGS_BASE + (off % KONA_REGS_SIZE & ~7u), val);
            break;
        case 2:
            qt("readq 0x%llx", REGS_BASE + (off % KONA_REGS_SIZE & ~7u));
            break;
        case 3:
            /* A command with a plausible range, then run it. */
            qt("writeq 0x%llx 0x%" G_GINT64_MODIFIER "x",
               REGS_BASE + KONA_REG_CMD_ARG0, val % MEDIA_SPAN);
            qt("writeq 0x%llx 0x%x", REGS_BASE + KONA_REG_CMD_ARG1,
               off << 8);
            qt("writel 0x%llx 0x%x", REGS_BASE + KONA_REG_CMD, data[1] % 9);
            break;
        case 4:
            qt("writeq 0x%" G_GINT64_MODIFIER "x 0x%" G_GINT64_MODIFIER "x",
               window + val % MEDIA_SPAN, val);
            break;
        default:
            qt("readl 0x%" G_GINT64_MODIFIER "x", window + val % MEDIA_SPAN);
            break;
        }
    }
    if (qt_value(qt("readl 0x%llx", REGS_BASE)) != KONA_REGS_MAGIC_VALUE) {
        fprintf(stderr, "kona-regs-fuzz: the device lost its identity\n");
        abort();
    }
    return 0;
}
