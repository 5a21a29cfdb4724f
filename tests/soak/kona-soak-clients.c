/*
 * kona-soak-clients: N kona-link clients hammering one memnode (possibly
 * through kona-faultproxy) for a while, each checking every byte.
 *
 *   kona-soak-clients ADDR CLIENTS SECONDS
 *   kona-soak-clients --compare ADDR VOLUME FILE
 *
 * Each client owns a 4 MiB slab and a shadow copy of it.  It writes random
 * lines of random pages with WRITE_LINES and reads random ranges back,
 * comparing with the shadow.  A failed request (a fault) is retried until
 * it succeeds (writes are idempotent), so faults cost time, never data.
 * Prints one line of figures (operations, bytes written, bytes verified,
 * bytes lost: read back different from what was written); exits 1 on any
 * mismatch.
 *
 * --compare attaches the named volume on one memnode (not exclusively:
 * its device must be gone) and compares it byte by byte with FILE (its
 * first FILE-size bytes); prints the copy's generation and the bytes that
 * differ; exits 1 if any do.
 *
 * With KONA_SECRET_FILE set, every connection authenticates with that
 * secret (memnodes on non-loopback addresses require it; a volume's key is
 * derived from it).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kona-auth.h"
#include "kona-link.h"

#define SLAB (4u << 20)

typedef struct Client {
    GThread *thread;
    const char *addr;
    int64_t deadline;
    uint64_t writes, reads, retries, mismatches;
    uint64_t bytes_written, bytes_verified, bytes_lost;
} Client;

static GBytes *secret;

static KonaLink *connect_to(const char *addr, GError **errp)
{
    KonaLinkOptions o = { .connect_timeout_ms = 2000, .timeout_ms = 2000,
                          .name = "kona-soak-clients" };
    gsize len = 0;

    if (secret) {
        o.secret = g_bytes_get_data(secret, &len);
        o.secret_len = len;
    }
    return kona_link_connect_opts(addr, &o, errp);
}

/* Bytes of @a and @b (@n each) that differ. */
static uint64_t bytes_differing(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t d = 0;

    if (memcmp(a, b, n) == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        d += a[i] != b[i];
    }
    return d;
}

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
    g_autoptr(KonaLink) l = connect_to(c->addr, &err);
    g_autofree uint8_t *shadow = g_malloc0(SLAB);
    g_autofree uint8_t *buf = g_malloc(65536);
    GRand *rnd = g_rand_new();
    uint64_t slab = 0, d;

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
            c->bytes_written += n * 64;
        } else {
            uint32_t len = g_rand_int_range(rnd, 1, 16) * 4096;

            page = MIN(page, SLAB / 4096 - len / 4096);
            RETRY(c, kona_link_read(l, slab, page * 4096ull, buf, len, &e_));
            d = bytes_differing(buf, shadow + page * 4096, len);
            c->mismatches += d != 0;
            c->bytes_lost += d;
            c->bytes_verified += len;
            c->reads++;
        }
    }
    /* Final check of the whole slab. */
    for (uint32_t off = 0; off < SLAB; off += 65536) {
        RETRY(c, kona_link_read(l, slab, off, buf, 65536, &e_));
        d = bytes_differing(buf, shadow + off, 65536);
        c->mismatches += d != 0;
        c->bytes_lost += d;
        c->bytes_verified += 65536;
    }
    g_rand_free(rnd);
    return NULL;
}

/* --compare ADDR VOLUME FILE */
static int compare(const char *addr, const char *volume, const char *file)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = connect_to(addr, &err);
    g_autofree uint8_t *want = NULL, *buf = g_malloc(1 << 20);
    uint64_t slab, size, gen = 0, differing = 0;
    gsize len;

    if (!l || !g_file_get_contents(file, (char **)&want, &len, &err) ||
        kona_link_slab_attach(l, volume, 0, false, &slab, &size, NULL,
                              &err) < 0 ||
        kona_link_slab_generation(l, slab, 0, &gen, &err) < 0) {
        fprintf(stderr, "soak: compare %s on %s: %s\n", volume, addr,
                err->message);
        return 2;
    }
    if (size < len) {
        fprintf(stderr, "soak: volume %s on %s has %" G_GUINT64_FORMAT
                " bytes, %s %" G_GSIZE_FORMAT "\n", volume, addr, size,
                file, len);
        return 2;
    }
    for (uint64_t off = 0; off < len; off += 1 << 20) {
        uint32_t n = MIN(len - off, 1u << 20);

        if (kona_link_read(l, slab, off, buf, n, &err) < 0) {
            fprintf(stderr, "soak: read %s on %s: %s\n", volume, addr,
                    err->message);
            return 2;
        }
        differing += bytes_differing(buf, want + off, n);
    }
    printf("copy %s volume %s generation %" G_GUINT64_FORMAT ": bytes "
           "compared %" G_GSIZE_FORMAT " differing %" G_GUINT64_FORMAT "\n",
           addr, volume, gen, len, differing);
    return differing ? 1 : 0;
}

int main(int argc, char **argv)
{
    unsigned n;
    int seconds;
    Client *cl;
    uint64_t w = 0, r = 0, retries = 0, bad = 0;
    uint64_t bw = 0, bv = 0, lost = 0;
    const char *secret_file = g_getenv("KONA_SECRET_FILE");

    if (secret_file) {
        g_autoptr(GError) err = NULL;

        secret = kona_auth_load_secret(secret_file, &err);
        if (!secret) {
            fprintf(stderr, "soak: KONA_SECRET_FILE: %s\n", err->message);
            return 2;
        }
    }
    if (argc == 5 && g_str_equal(argv[1], "--compare")) {
        return compare(argv[2], argv[3], argv[4]);
    }
    if (argc != 4) {
        fprintf(stderr, "usage: kona-soak-clients ADDR CLIENTS SECONDS\n"
                "       kona-soak-clients --compare ADDR VOLUME FILE\n");
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
        bw += cl[i].bytes_written;
        bv += cl[i].bytes_verified;
        lost += cl[i].bytes_lost;
    }
    printf("soak-clients: clients %u writes %" G_GUINT64_FORMAT " reads %"
           G_GUINT64_FORMAT " retried %" G_GUINT64_FORMAT " mismatches %"
           G_GUINT64_FORMAT " bytes-written %" G_GUINT64_FORMAT
           " bytes-verified %" G_GUINT64_FORMAT " bytes-lost %"
           G_GUINT64_FORMAT "\n", n, w, r, retries, bad, bw, bv, lost);
    return bad ? 1 : 0;
}
