/*
 * Small helpers shared by the memnode, the rack controller and kona-link.
 */
#ifndef KONA_UTIL_H
#define KONA_UTIL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Error domain of every GError this code sets.  The code is the positive
 * errno the function also returns negated, so callers can branch on
 * g_error_matches(err, KONA_ERROR, ECONNREFUSED) and the like.
 */
#define KONA_ERROR kona_error_quark()
GQuark kona_error_quark(void);

/* Monotonic clock. */
int64_t kona_now_ns(void);
static inline int64_t kona_now_ms(void)
{
    return kona_now_ns() / 1000000;
}

/* "4096", "64M", "1G", "2T" (binary units, optional "iB"/"B"). */
bool kona_parse_size(const char *s, uint64_t *out, GError **errp);

/* Human-readable size ("64 MiB") into @buf. */
const char *kona_format_size(uint64_t n, char *buf, size_t len);

int kona_set_nonblock(int fd, bool on);

/*
 * A server is listening on @addrs: write the pid file (if any), print
 * "PROG ready: pid N listening on ADDRS" on stdout and, for a parent
 * waiting on @ready_fd (>= 0), "READY ADDRS"; exits on failure.
 */
void kona_announce_ready(const char *prog, const char *addrs,
                         const char *pid_file, int ready_fd);

/* "PROG: error: MESSAGE" on stderr, then exit(1): for command-line tools. */
void G_GNUC_PRINTF(2, 3) G_GNUC_NORETURN
kona_die(const char *prog, const char *fmt, ...);

#endif /* KONA_UTIL_H */
