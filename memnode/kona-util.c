/*
 * Small helpers shared by the memnode, the rack controller and kona-link.
 */
#include "kona-util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

GQuark kona_error_quark(void)
{
    return g_quark_from_static_string("kona-error-quark");
}

int64_t kona_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool kona_parse_size(const char *s, uint64_t *out, GError **errp)
{
    char *end;
    guint64 v;
    unsigned shift = 0;

    if (!g_ascii_isdigit(*s)) {
        goto bad;               /* strtoull would take "-1" and " 1" */
    }
    errno = 0;
    v = g_ascii_strtoull(s, &end, 10);
    if (errno || end == s) {
        goto bad;
    }
    switch (g_ascii_toupper(*end)) {
    case 0:
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        goto bad;
    }
    if (*end) {
        end++;
        if (!g_ascii_strcasecmp(end, "iB") || !g_ascii_strcasecmp(end, "B")) {
            end += strlen(end);
        }
    }
    if (*end || (shift && v > (G_MAXUINT64 >> shift))) {
        goto bad;
    }
    *out = v << shift;
    return true;

bad:
    g_set_error(errp, KONA_ERROR, EINVAL,
                "bad size '%s' (expected e.g. 4096, 64M, 1G)", s);
    return false;
}

const char *kona_format_size(uint64_t n, char *buf, size_t len)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    unsigned u = 0;

    while (u < 4 && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    g_snprintf(buf, len, "%" G_GUINT64_FORMAT " %s", n, unit[u]);
    return buf;
}

int kona_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0) {
        return -errno;
    }
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

void kona_die(const char *prog, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: error: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void kona_announce_ready(const char *prog, const char *addrs,
                         const char *pid_file, int ready_fd)
{
    if (pid_file) {
        g_autofree char *pid = g_strdup_printf("%d\n", (int)getpid());
        g_autoptr(GError) err = NULL;

        if (!g_file_set_contents(pid_file, pid, -1, &err)) {
            kona_die(prog, "%s", err->message);
        }
    }
    printf("%s ready: pid %d listening on %s\n", prog, (int)getpid(), addrs);
    fflush(stdout);
    if (ready_fd >= 0) {
        g_autofree char *line = g_strdup_printf("READY %s\n", addrs);

        if (write(ready_fd, line, strlen(line)) < 0) {
            kona_die(prog, "--ready-fd %d: %s", ready_fd, g_strerror(errno));
        }
        close(ready_fd);
    }
}
