/*
 * Kona-CXL guest runtime: find a kona-cxl device and map BAR 5.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kona-bar.h"

#define PCI_DEVICES "/sys/bus/pci/devices"

/* The same names as the device's QMP statistics (kona-stats.c). */
const char *const kona_bar_stat_names[KONA_DEV_STAT__COUNT] =
    KONA_DEV_STAT_NAMES;

static void seterr(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, KONA_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* Read a sysfs attribute holding one hex number, e.g. "0x8086". */
static bool read_hex_attr(const char *bdf, const char *attr, unsigned *val)
{
    char path[512], buf[32];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, attr);
    f = fopen(path, "r");
    if (!f) {
        return false;
    }
    ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%x", val) == 1;
    fclose(f);
    return ok;
}

static bool is_cxl_type3(const char *bdf)
{
    unsigned vendor, device;

    return read_hex_attr(bdf, "vendor", &vendor) &&
           read_hex_attr(bdf, "device", &device) &&
           vendor == KONA_PCI_VENDOR && device == KONA_PCI_DEVICE;
}

/*
 * Size of BAR @bar from the "resource" file (one "start end flags" line
 * per BAR); 0 if unassigned.
 */
static uint64_t bar_size(const char *bdf, int bar)
{
    char path[512], line[128];
    unsigned long long start, end, flags;
    uint64_t size = 0;
    FILE *f;
    int i = 0;

    snprintf(path, sizeof(path), PCI_DEVICES "/%s/resource", bdf);
    f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        if (i++ == bar) {
            if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) == 3 &&
                end > start) {
                size = end - start + 1;
            }
            break;
        }
    }
    fclose(f);
    return size;
}

/* Map BAR 5 of @bdf and check the magic; 0 or -1 with @err set. */
static int map_bar(KonaBar *b, const char *bdf, char *err)
{
    char path[512];
    uint64_t size = bar_size(bdf, KONA_REGS_BAR);
    uint32_t magic;
    void *p;

    if (size < KONA_REGS_SIZE) {
        seterr(err, "%s: BAR %d is not assigned or smaller than %#x bytes "
               "(not a kona-cxl device?)", bdf, KONA_REGS_BAR,
               KONA_REGS_SIZE);
        return -1;
    }
    snprintf(path, sizeof(path), PCI_DEVICES "/%s/resource%d", bdf,
             KONA_REGS_BAR);
    /* O_SYNC: the kernel maps the registers uncached. */
    b->fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    if (b->fd < 0) {
        seterr(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    p = mmap(NULL, KONA_REGS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd,
             0);
    if (p == MAP_FAILED) {
        seterr(err, "mmap %s: %s", path, strerror(errno));
        close(b->fd);
        b->fd = -1;
        return -1;
    }
    b->regs = p;
    b->map_size = KONA_REGS_SIZE;
    magic = kona_rd32(b, KONA_REG_MAGIC);
    if (magic != KONA_REGS_MAGIC_VALUE) {
        seterr(err, "%s: BAR %d magic is %#x, not %#x: a plain cxl-type3, "
               "or the device's memory decoding is off", bdf, KONA_REGS_BAR,
               magic, KONA_REGS_MAGIC_VALUE);
        kona_bar_close(b);
        return -1;
    }
    snprintf(b->bdf, sizeof(b->bdf), "%s", bdf);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* PCI functions with cxl-type3 ids, sorted; caller frees. */
static int type3_candidates(char ***out, char *err)
{
    DIR *d = opendir(PCI_DEVICES);
    struct dirent *e;
    char **v = NULL;
    int n = 0;

    if (!d) {
        seterr(err, "cannot list " PCI_DEVICES ": %s (is sysfs mounted?)",
               strerror(errno));
        return -1;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_cxl_type3(e->d_name)) {
            continue;
        }
        v = realloc(v, (n + 1) * sizeof(*v));
        if (!v) {
            abort();
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, n, sizeof(*v), cmp_str);
    *out = v;
    return n;
}

int kona_bar_list(char (*bdfs)[KONA_BDF_LEN], int max, char *err)
{
    char **cand, probe_err[KONA_ERR_LEN];
    int n, i, found = 0;

    n = type3_candidates(&cand, err);
    if (n < 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        KonaBar b = { .fd = -1 };

        if (map_bar(&b, cand[i], probe_err) == 0) {
            if (found < max) {
                snprintf(bdfs[found], KONA_BDF_LEN, "%s", cand[i]);
            }
            found++;
            kona_bar_close(&b);
        }
        free(cand[i]);
    }
    free(cand);
    return found;
}

int kona_bar_open(KonaBar *b, const char *bdf, char *err)
{
    char found[1][KONA_BDF_LEN];
    int n;

    memset(b, 0, sizeof(*b));
    b->fd = -1;
    if (bdf && *bdf) {
        if (!is_cxl_type3(bdf)) {
            seterr(err, "%s is not a PCI device with cxl-type3 ids "
                   "(%04x:%04x)", bdf, KONA_PCI_VENDOR, KONA_PCI_DEVICE);
            return -1;
        }
        return map_bar(b, bdf, err);
    }
    n = kona_bar_list(found, 1, err);
    if (n < 0) {
        return -1;
    }
    if (n == 0) {
        seterr(err, "no kona-cxl device: no PCI function %04x:%04x with the "
               "Kona magic in BAR %d (QEMU started without -device kona-cxl?)",
               KONA_PCI_VENDOR, KONA_PCI_DEVICE, KONA_REGS_BAR);
        return -1;
    }
    return map_bar(b, found[0], err);
}

void kona_bar_close(KonaBar *b)
{
    if (b->regs) {
        munmap((void *)b->regs, b->map_size);
        b->regs = NULL;
    }
    if (b->fd >= 0) {
        close(b->fd);
        b->fd = -1;
    }
}

void kona_bar_lock(KonaBar *b)
{
    while (flock(b->fd, LOCK_EX) < 0 && errno == EINTR) {
        /* a signal (konad's SIGTERM): keep waiting, the caller checks */
    }
}

void kona_bar_unlock(KonaBar *b)
{
    flock(b->fd, LOCK_UN);
}

uint32_t kona_bar_cmd_locked(KonaBar *b, uint32_t cmd, uint64_t arg0,
                             uint64_t arg1, uint64_t *result)
{
    uint32_t status;

    kona_wr64(b, KONA_REG_CMD_ARG0, arg0);
    kona_wr64(b, KONA_REG_CMD_ARG1, arg1);
    /* Synchronous: the store returns once the command has run. */
    kona_wr32(b, KONA_REG_CMD, cmd);
    status = kona_rd32(b, KONA_REG_CMD_STATUS);
    if (result) {
        *result = kona_rd64(b, KONA_REG_CMD_RESULT);
    }
    return status;
}

uint32_t kona_bar_cmd(KonaBar *b, uint32_t cmd, uint64_t arg0, uint64_t arg1,
                      uint64_t *result)
{
    uint32_t status;

    kona_bar_lock(b);
    status = kona_bar_cmd_locked(b, cmd, arg0, arg1, result);
    kona_bar_unlock(b);
    return status;
}

const char *kona_cmd_status_str(uint32_t status)
{
    switch (status) {
    case KONA_CMD_STATUS_OK:
        return "ok";
    case KONA_CMD_STATUS_INVALID_ARG:
        return "invalid argument";
    case KONA_CMD_STATUS_UNKNOWN_CMD:
        return "unknown command";
    case KONA_CMD_STATUS_REMOTE_ERROR:
        return "a memory node failed";
    default:
        return "unknown status";
    }
}

void kona_bar_read_frames_locked(KonaBar *b, uint64_t first, unsigned n,
                                 uint64_t *states)
{
    unsigned i;

    kona_wr64(b, KONA_REG_FRAME_SEL, first);
    for (i = 0; i < n && i < KONA_FRAME_WINDOW; i++) {
        states[i] = kona_rd64(b, KONA_REG_FRAME_STATE + 8 * i);
    }
}

bool kona_parse_u64(const char *s, uint64_t *val)
{
    unsigned long long v;
    char *end;
    int shift = 0;

    if (!s || !*s || *s == '-') {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s) {
        return false;
    }
    switch (toupper((unsigned char)*end)) {
    case 'K':
        shift = 10;
        end++;
        break;
    case 'M':
        shift = 20;
        end++;
        break;
    case 'G':
        shift = 30;
        end++;
        break;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift))) {
        return false;
    }
    *val = (uint64_t)v << shift;
    return true;
}

bool kona_parse_wm(const char *s, uint32_t nframes, uint32_t *out)
{
    size_t len = strlen(s);
    uint64_t v;

    if (len > 1 && s[len - 1] == '%') {
        char num[32];

        snprintf(num, sizeof(num), "%.*s", (int)(len - 1), s);
        if (!kona_parse_u64(num, &v) || v > 100) {
            return false;
        }
        *out = (uint64_t)nframes * v / 100;
        return true;
    }
    if (!kona_parse_u64(s, &v) || v > nframes) {
        return false;
    }
    *out = v;
    return true;
}
