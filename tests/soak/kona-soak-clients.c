/*
 * kona-soak-clients: N kona-link clients hammering one memnode (possibly
 * through kona-faultproxy) for a while, each checking every byte.
 *
 *   kona-soak-clients ADDR CLIENTS SECONDS
 *
 * Each client owns a 4 MiB slab and a shadow copy of it.  It writes random
 * lines of random pages with WRITE_LINES and reads random ranges back,
 * comparing with the shadow.  A failed request (a fault) is retried until
 * it succeeds (writes are idempotent), so faults cost time, never data.
 * Prints one line of figures; exits 1 on any mismatch.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kona-link.h"

#define SLAB (4u << 20)

typedef struct Client {
    GThread *thread;
    const char *addr;
    int64_t deadline;
    uint64_t writes, reads, retries, mismatches;
} Client;

/* Run @op until it succeeds or the soak is over (+60 s to drain). */
#define RETRY(c, op) \
    do { \
        g_autoptr(GError) e_ = NULL; \
        while ((op) < 0) { \
            (c)->retries++; \
            if (g_get_monotonic_time() > (c)->deadline + 60 * G_USEC_PER_SEC) { \
                fprintf(stderr, "soak: giving up: %s\n", e_->message); \
                exit(2); \
            } \
            g_clear_error(&e_); \
            g_usleep(10000); \
        } \
    } while (0)

static void *client_main(void *opaque)
{
    Client *c = opaque;
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = kona_link_connect(c->addr, 2000, &err);
    g_autofree uint8_t *shadow = g_malloc0(SLAB);
    g_autofree uint8_t *buf = g_malloc(65536);
    GRand *rnd = g_rand_new();
    uint64_t slab = 0;

    if (!l) {
        fprintf(stderr, "soak: %s\n", err->message);
        exit(2);
    }
    RETRY(c, kona_link_slab_alloc(l, SLAB, &slab, &e_));
    while (g_get_monotonic_time() < c->deadline) {
        uint32_t page = g_rand_int_range(rnd, 0, SLAB / 4096);

        if (g_rand_boolean(rnd)) {
            uint64_t mask = (uint64_t)g_rand_int(rnd) << 32 |
                            g_rand_int(rnd);
            size_t n = 0;

            for (int i = 0; i < 64; i++) {
                if (mask >> i & 1) {
                    for (int j = 0; j < 64; j++) {
                        buf[n * 64 + j] = g_rand_int(rnd);
                    }
                    memcpy(shadow + page * 4096 + i * 64, buf + n * 64, 64);
                    n++;
                }
            }
            RETRY(c, kona_link_write_lines(l, slab, page * 4096ull, 1, &mask,
                                           buf, &e_));
            c->writes++;
        } else {
            uint32_t len = g_rand_int_range(rnd, 1, 16) * 4096;

            page = MIN(page, SLAB / 4096 - len / 4096);
            RETRY(c, kona_link_read(l, slab, page * 4096ull, buf, len, &e_));
            c->mismatches += memcmp(buf, shadow + page * 4096, len) != 0;
            c->reads++;
        }
    }
    /* Final check of the whole slab. */
    for (uint32_t off = 0; off < SLAB; off += 65536) {
        RETRY(c, kona_link_read(l, slab, off, buf, 65536, &e_));
        c->mismatches += memcmp(buf, shadow + off, 65536) != 0;
    }
    g_rand_free(rnd);
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned n;
    int seconds;
    Client *cl;
    uint64_t w = 0, r = 0, retries = 0, bad = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: kona-soak-clients ADDR CLIENTS SECONDS\n");
        return 2;
    }
    n = atoi(argv[2]);
    seconds = atoi(argv[3]);
    cl = g_new0(Client, n);
    for (unsigned i = 0; i < n; i++) {
        cl[i].addr = argv[1];
        cl[i].deadline = g_get_monotonic_time() + seconds * G_USEC_PER_SEC;
        cl[i].thread = g_thread_new("soak", client_main, &cl[i]);
    }
    for (unsigned i = 0; i < n; i++) {
        g_thread_join(cl[i].thread);
        w += cl[i].writes;
        r += cl[i].reads;
        retries += cl[i].retries;
        bad += cl[i].mismatches;
    }
    printf("soak-clients: clients %u writes %" G_GUINT64_FORMAT " reads %"
           G_GUINT64_FORMAT " retried %" G_GUINT64_FORMAT " mismatches %"
           G_GUINT64_FORMAT "\n", n, w, r, retries, bad);
    return bad ? 1 : 0;
}
