/*
 * Slab lifetime and access on a memnode shared by several clients:
 * freeing drops only the caller's reference, named volumes need their
 * key, exclusive attach, copy generations.  Real kona-memnode processes.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kona-auth.h"
#include "kona-link.h"
#include "mn-testutil.h"

#define TIMEOUT_MS 5000

typedef struct Node {
    MnNode *mn;
    char *addr;
} Node;

/* A memnode, with a data directory of its own if @data_dir. */
static Node *node_start(bool data_dir, const char *const *extra)
{
    Node *n = g_new0(Node, 1);
    g_autofree char *dd = data_dir ? mn_tmpdir() : NULL;

    n->mn = mn_node_start(dd, extra);
    n->addr = n->mn->unix_addr;
    return n;
}

static void node_restart(Node *n, bool crash)
{
    mn_node_restart(n->mn, crash, NULL);
}

static void node_free(Node *n)
{
    g_autofree char *dd = g_strdup(n->mn->data_dir);

    mn_node_free(n->mn);
    if (dd) {
        mn_rm_rf(dd);
    }
    g_free(n);
}

static KonaMemnodeStats stats(KonaLink *l)
{
    g_autoptr(GError) err = NULL;
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    return st;
}

/* STATS of @l once the memnode has seen @clients connections. */
static KonaMemnodeStats stats_settled(KonaLink *l, uint64_t clients)
{
    KonaMemnodeStats st;

    for (int i = 0; i < 500; i++) {
        st = stats(l);
        if (st.clients == clients) {
            break;
        }
        g_usleep(2000);
    }
    g_assert_cmpuint(st.clients, ==, clients);
    return st;
}

static void write_byte(KonaLink *l, uint64_t slab, uint64_t off, uint8_t v)
{
    g_autoptr(GError) err = NULL;
    uint8_t line[64];
    uint64_t mask = 1ull << ((off % 4096) / 64);

    memset(line, v, sizeof(line));
    g_assert_cmpint(kona_link_write_lines(l, slab, off & ~4095ull, 1, &mask,
                                          line, &err), ==, 0);
}

static uint8_t read_byte(KonaLink *l, uint64_t slab, uint64_t off)
{
    g_autoptr(GError) err = NULL;
    uint8_t b = 0;

    g_assert_cmpint(kona_link_read(l, slab, off, &b, 1, &err), ==, 0);
    return b;
}

/* ---- freeing ---- */

/*
 * SLAB_FREE by one holder drops its own reference: the other holder
 * keeps the memory (and its data) until it lets go, nobody can open the
 * slab any more, and then the memory is gone at once (no linger).
 */
static void test_free_drops_own_ref(void)
{
    Node *n = node_start(false, (const char *const[]){ "--linger=60",
                                                       NULL });
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) a = mn_link_to(n->addr);
    g_autoptr(KonaLink) c = mn_link_to(n->addr);
    KonaLink *b = mn_link_to(n->addr);
    uint8_t key[KONA_KEY_SIZE], buf[1];
    uint64_t slab;
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_slab_alloc(a, 1 << 20, &slab, &err), ==, 0);
    kona_link_slab_info(a, slab, key, NULL);
    g_assert_cmpint(kona_link_slab_open(b, slab, key, NULL, &err), ==, 0);
    write_byte(b, slab, 4096, 0x5a);

    g_assert_cmpint(kona_link_slab_free(a, slab, &err), ==, 0);
    /* a let go; b still has it, data and all */
    g_assert_cmpint(kona_link_read(a, slab, 0, buf, 1, &err), ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpuint(read_byte(b, slab, 4096), ==, 0x5a);
    write_byte(b, slab, 8192, 0x33);
    g_assert_cmpuint(read_byte(b, slab, 8192), ==, 0x33);
    /* it is on its way out: not to be opened again, even with the key */
    g_assert_cmpint(kona_link_slab_open(c, slab, key, NULL, &err), ==,
                    -EACCES);
    g_clear_error(&err);
    st = stats(c);
    g_assert_cmpuint(st.slab_bytes, ==, 1 << 20);

    /* the last holder leaves: the memory goes now, not after --linger */
    kona_link_close(b);
    st = stats_settled(c, 2);
    g_assert_cmpuint(st.slab_bytes, ==, 0);
    g_assert_cmpuint(st.slabs, ==, 0);
    node_free(n);
}

/* A freed slab is destroyed at once if the caller was its only holder. */
static void test_free_last_holder(void)
{
    Node *n = node_start(false, (const char *const[]){ "--linger=60",
                                                       NULL });
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) a = mn_link_to(n->addr);
    uint64_t slab;
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_slab_alloc(a, 1 << 20, &slab, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_free(a, slab, &err), ==, 0);
    st = stats(a);
    g_assert_cmpuint(st.slab_bytes, ==, 0);
    g_assert_cmpuint(st.slabs, ==, 0);
    node_free(n);
}

/* ---- volume keys ---- */

static const uint8_t key1[KONA_KEY_SIZE] = "volume-key-one!";
static const uint8_t key2[KONA_KEY_SIZE] = "volume-key-two!";

static int attach(KonaLink *l, const char *name, uint64_t size,
                  unsigned flags, const uint8_t *key, uint64_t *id,
                  GError **errp)
{
    uint64_t got_size;
    bool created;

    return kona_link_slab_attach_key(l, name, size, flags, key, id,
                                     &got_size, &created, errp);
}

/*
 * A named volume freed by one of its holders: the others keep it, its
 * name is free at once for a new volume, its files leave the data
 * directory (a restart does not bring it back), and its memory goes
 * with the last holder.
 */
static void test_free_named(void)
{
    Node *n = node_start(true, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) a = mn_link_to(n->addr);
    g_autoptr(KonaLink) c = mn_link_to(n->addr);
    KonaLink *b = mn_link_to(n->addr);
    uint64_t id, id2, fresh;
    KonaMemnodeStats st;

    g_assert_cmpint(attach(a, "vm-f", 1 << 20, KONA_ATTACH_F_CREATE, key1,
                           &id, &err), ==, 0);
    g_assert_cmpint(attach(b, "vm-f", 0, 0, key1, &id2, &err), ==, 0);
    write_byte(b, id, 0, 0x66);
    g_assert_cmpint(kona_link_slab_free(a, id, &err), ==, 0);
    g_assert_cmpuint(read_byte(b, id, 0), ==, 0x66);
    /* the name is free: a new, empty volume */
    g_assert_cmpint(attach(c, "vm-f", 0, 0, key1, &id2, &err), ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(attach(c, "vm-f", 1 << 20, KONA_ATTACH_F_CREATE, key2,
                           &fresh, &err), ==, 0);
    g_assert_cmpuint(fresh, !=, id);
    g_assert_cmpuint(read_byte(c, fresh, 0), ==, 0);
    st = stats(c);
    g_assert_cmpuint(st.slab_bytes, ==, 2 << 20);
    kona_link_close(b);
    st = stats_settled(c, 2);
    g_assert_cmpuint(st.slab_bytes, ==, 1 << 20);
    /* after a restart only the new volume is there */
    g_clear_pointer(&c, kona_link_close);
    g_clear_pointer(&a, kona_link_close);
    node_restart(n, false);
    c = mn_link_to(n->addr);
    g_assert_cmpint(attach(c, "vm-f", 0, 0, key2, &id2, &err), ==, 0);
    g_assert_cmpuint(id2, ==, fresh);
    st = stats(c);
    g_assert_cmpuint(st.slabs, ==, 1);
    node_free(n);
}

/* Names are not capabilities: no key, a wrong key, no such name. */
static void test_key_required(void)
{
    Node *n = node_start(false, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) a = mn_link_to(n->addr);
    g_autoptr(KonaLink) b = mn_link_to(n->addr);
    g_autofree char *wrong = NULL, *missing = NULL;
    uint64_t id, id2, size;
    bool created;

    /* a link without a secret has no key to derive: refused */
    g_assert_cmpint(kona_link_slab_attach(a, "vm1", 1 << 20, true, &id,
                                          &size, &created, &err), ==,
                    -EACCES);
    g_assert_nonnull(strstr(err->message, "volume key"));
    g_clear_error(&err);
    g_assert_cmpint(attach(a, "vm1", 1 << 20, KONA_ATTACH_F_CREATE, key1,
                           &id, &err), ==, 0);
    write_byte(a, id, 0, 0x77);

    /* another client with the wrong key: not in, not told it exists */
    g_assert_cmpint(attach(b, "vm1", 0, 0, key2, &id2, &err), ==, -EACCES);
    wrong = g_strdup(strstr(err->message, "no volume"));
    g_clear_error(&err);
    g_assert_cmpint(attach(b, "vm9", 0, 0, key2, &id2, &err), ==, -EACCES);
    missing = g_strdup(strstr(err->message, "no volume"));
    g_clear_error(&err);
    g_assert_nonnull(wrong);
    g_assert_nonnull(missing);
    g_assert_cmpstr(wrong + strlen("no volume vm1"), ==,
                    missing + strlen("no volume vm9"));
    /* nor by "creating" it with its own key */
    g_assert_cmpint(attach(b, "vm1", 1 << 20, KONA_ATTACH_F_CREATE, key2,
                           &id2, &err), ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_read(b, id, 0, (uint8_t[1]){ 0 }, 1, &err), ==,
                    -EACCES);
    g_clear_error(&err);
    /* with the key it is the same volume and data */
    g_assert_cmpint(attach(b, "vm1", 0, 0, key1, &id2, &err), ==, 0);
    g_assert_cmpuint(id2, ==, id);
    g_assert_cmpuint(read_byte(b, id, 0), ==, 0x77);
    node_free(n);
}

/*
 * Clients with the shared secret derive the key from it, so a restarted
 * client (the device with its secret-file) reattaches by name alone.
 */
static void test_key_from_secret(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *sf = g_build_filename(dir, "secret", NULL);
    g_autofree char *sopt = g_strdup_printf("--secret-file=%s", sf);
    const char *secret = "correct horse battery staple";
    KonaLinkOptions o = {
        .timeout_ms = TIMEOUT_MS, .secret = secret,
        .secret_len = strlen(secret),
    };
    g_autoptr(GError) err = NULL;
    uint8_t key[KONA_KEY_SIZE];
    uint64_t id, id2, size;
    bool created;
    KonaLink *l;
    Node *n;

    g_assert_true(g_file_set_contents(sf, secret, -1, NULL));
    g_assert_cmpint(chmod(sf, 0600), ==, 0);
    n = node_start(false, (const char *const[]){ sopt, "--auth-all", NULL });
    l = kona_link_connect_opts(n->addr, &o, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_slab_attach(l, "vm-a", 1 << 20, true, &id,
                                          &size, &created, &err), ==, 0);
    g_assert_true(created);
    write_byte(l, id, 4096, 0x42);
    kona_link_close(l);
    /* a new client with the same secret: the same volume */
    l = kona_link_connect_opts(n->addr, &o, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_slab_attach(l, "vm-a", 1 << 20, true, &id2,
                                          &size, &created, &err), ==, 0);
    g_assert_false(created);
    g_assert_cmpuint(id2, ==, id);
    g_assert_cmpuint(read_byte(l, id, 4096), ==, 0x42);
    /* the key is HMAC-SHA256(secret, "kona-volume:" || name)[0..16) */
    kona_auth_volume_key((const uint8_t *)secret, strlen(secret), "vm-a",
                         key);
    g_assert_cmpint(attach(l, "vm-a", 0, 0, key, &id2, &err), ==, 0);
    key[0] ^= 1;
    g_assert_cmpint(attach(l, "vm-a", 0, 0, key, &id2, &err), ==, -EACCES);
    kona_link_close(l);
    node_free(n);
    mn_rm_rf(dir);
}

/* The key is kept in the data directory: still needed after a restart. */
static void test_key_persists(void)
{
    Node *n = node_start(true, NULL);
    g_autoptr(GError) err = NULL;
    KonaLink *l = mn_link_to(n->addr);
    uint64_t id, id2;

    g_assert_cmpint(attach(l, "vm-p", 1 << 20, KONA_ATTACH_F_CREATE, key1,
                           &id, &err), ==, 0);
    write_byte(l, id, 0, 0x99);
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    kona_link_close(l);
    node_restart(n, true);
    l = mn_link_to(n->addr);
    g_assert_cmpint(attach(l, "vm-p", 0, 0, key2, &id2, &err), ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(attach(l, "vm-p", 0, 0, key1, &id2, &err), ==, 0);
    g_assert_cmpuint(id2, ==, id);
    g_assert_cmpuint(read_byte(l, id, 0), ==, 0x99);
    kona_link_close(l);
    node_free(n);
}

/* ---- exclusive attach ---- */

static void test_exclusive(void)
{
    Node *n = node_start(false, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) b = mn_link_to(n->addr);
    g_autoptr(KonaLink) c = mn_link_to(n->addr);
    KonaLink *a = mn_link_to(n->addr);
    uint64_t id, id2;

    g_assert_cmpint(attach(a, "vm-x", 1 << 20, KONA_ATTACH_F_CREATE |
                           KONA_ATTACH_F_EXCLUSIVE, key1, &id, &err), ==, 0);
    /* nobody else gets in while a holds it, exclusive or not */
    g_assert_cmpint(attach(b, "vm-x", 0, 0, key1, &id2, &err), ==, -EBUSY);
    g_assert_nonnull(strstr(err->message, "vm-x"));
    g_clear_error(&err);
    g_assert_cmpint(attach(b, "vm-x", 0, KONA_ATTACH_F_EXCLUSIVE, key1, &id2,
                           &err), ==, -EBUSY);
    g_clear_error(&err);
    /* the wrong key hears -EACCES, as if there were no such volume */
    g_assert_cmpint(attach(b, "vm-x", 0, 0, key2, &id2, &err), ==, -EACCES);
    g_clear_error(&err);
    /* a attaching again on its own connection is fine */
    g_assert_cmpint(attach(a, "vm-x", 0, KONA_ATTACH_F_EXCLUSIVE, key1, &id2,
                           &err), ==, 0);
    /* a leaves: b may have it, and then c may not have it exclusively */
    kona_link_close(a);
    for (int i = 0; i < 500; i++) {
        int r = attach(b, "vm-x", 0, 0, key1, &id2, &err);
        if (r == 0) {
            break;
        }
        g_assert_cmpint(r, ==, -EBUSY);
        g_clear_error(&err);
        g_usleep(2000);
    }
    g_assert_no_error(err);
    g_assert_cmpint(attach(c, "vm-x", 0, KONA_ATTACH_F_EXCLUSIVE, key1, &id2,
                           &err), ==, -EBUSY);
    g_assert_nonnull(strstr(err->message, "attached by another connection"));
    g_clear_error(&err);
    g_assert_cmpint(attach(c, "vm-x", 0, 0, key1, &id2, &err), ==, 0);
    node_free(n);
}

/*
 * The holder reconnects (SLAB_OPEN with the slab key) before the memnode
 * has seen its old connection break: the new connection takes the hold
 * over, the old one loses the volume.
 */
static void test_exclusive_takeover(void)
{
    Node *n = node_start(false, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) old = mn_link_to(n->addr);
    g_autoptr(KonaLink) fresh = mn_link_to(n->addr);
    g_autoptr(KonaLink) other = mn_link_to(n->addr);
    uint8_t key[KONA_KEY_SIZE], b;
    uint64_t id, id2;

    g_assert_cmpint(attach(old, "vm-t", 1 << 20, KONA_ATTACH_F_CREATE |
                           KONA_ATTACH_F_EXCLUSIVE, key1, &id, &err), ==, 0);
    write_byte(old, id, 64, 0x11);
    kona_link_slab_info(old, id, key, NULL);
    g_assert_cmpint(kona_link_slab_open(fresh, id, key, NULL, &err), ==, 0);
    g_assert_cmpuint(read_byte(fresh, id, 64), ==, 0x11);
    /* the old connection (still open) cannot touch it any more */
    g_assert_cmpint(kona_link_read(old, id, 64, &b, 1, &err), ==, -EACCES);
    g_clear_error(&err);
    /* the hold moved with it */
    g_assert_cmpint(attach(other, "vm-t", 0, 0, key1, &id2, &err), ==,
                    -EBUSY);
    g_clear_error(&err);
    /* and kona-link's reconnect takes it back the same way */
    g_assert_cmpint(kona_link_reconnect(old, &err), ==, 0);
    g_assert_cmpuint(read_byte(old, id, 64), ==, 0x11);
    g_assert_cmpint(kona_link_read(fresh, id, 64, &b, 1, &err), ==, -EACCES);
    node_free(n);
}

/*
 * A second connection of the holder opens the volume beside it
 * (KONA_OPEN_F_SHARE, as the device's background resync reads a live
 * copy): both read it, and the hold stays with the holder.
 */
static void test_exclusive_share(void)
{
    Node *n = node_start(false, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) holder = mn_link_to(n->addr);
    g_autoptr(KonaLink) reader = mn_link_to(n->addr);
    g_autoptr(KonaLink) other = mn_link_to(n->addr);
    uint8_t key[KONA_KEY_SIZE];
    uint64_t id, id2;

    g_assert_cmpint(attach(holder, "vm-s", 1 << 20, KONA_ATTACH_F_CREATE |
                           KONA_ATTACH_F_EXCLUSIVE, key1, &id, &err), ==, 0);
    write_byte(holder, id, 64, 0x22);
    kona_link_slab_info(holder, id, key, NULL);
    g_assert_cmpint(kona_link_slab_open_shared(reader, id, key, NULL, &err),
                    ==, 0);
    g_assert_cmpuint(read_byte(reader, id, 64), ==, 0x22);
    g_assert_cmpuint(read_byte(holder, id, 64), ==, 0x22);
    kona_link_close(g_steal_pointer(&reader));
    write_byte(holder, id, 64, 0x33);
    g_assert_cmpuint(read_byte(holder, id, 64), ==, 0x33);
    g_assert_cmpint(attach(other, "vm-s", 0, 0, key1, &id2, &err), ==,
                    -EBUSY);
    g_clear_error(&err);
    /* the wrong slab key opens nothing, shared or not */
    key[0] ^= 1;
    g_assert_cmpint(kona_link_slab_open_shared(other, id, key, NULL, &err),
                    ==, -EACCES);
    node_free(n);
}

/* ---- generations ---- */

static void test_generation(void)
{
    Node *n = node_start(false, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) a = mn_link_to(n->addr);
    g_autoptr(KonaLink) b = mn_link_to(n->addr);
    uint8_t key[KONA_KEY_SIZE];
    uint64_t id, gen = 99;

    g_assert_cmpint(kona_link_slab_alloc(a, 1 << 20, &id, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_generation(a, id, 0, &gen, &err), ==, 0);
    g_assert_cmpuint(gen, ==, 0);
    g_assert_cmpint(kona_link_slab_generation(a, id, 5, &gen, &err), ==, 0);
    g_assert_cmpuint(gen, ==, 5);
    /* only ever up */
    g_assert_cmpint(kona_link_slab_generation(a, id, 3, &gen, &err), ==, 0);
    g_assert_cmpuint(gen, ==, 5);
    /* not for a connection without the slab */
    g_assert_cmpint(kona_link_slab_generation(b, id, 0, &gen, &err), ==,
                    -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_slab_generation(b, id, 100, &gen, &err), ==,
                    -EACCES);
    g_clear_error(&err);
    kona_link_slab_info(a, id, key, NULL);
    g_assert_cmpint(kona_link_slab_open(b, id, key, NULL, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_generation(b, id, 0, &gen, &err), ==, 0);
    g_assert_cmpuint(gen, ==, 5);
    g_assert_cmpint(kona_link_slab_generation(b, id, 6, &gen, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_generation(a, id, 0, &gen, &err), ==, 0);
    g_assert_cmpuint(gen, ==, 6);
    node_free(n);
}

/* Acknowledged generations survive a crash of a data-directory memnode. */
static void test_generation_persists(void)
{
    Node *n = node_start(true, NULL);
    g_autoptr(GError) err = NULL;
    KonaLink *l = mn_link_to(n->addr);
    uint64_t vol, slab, gen;
    uint8_t key[KONA_KEY_SIZE];

    g_assert_cmpint(attach(l, "vm-g", 1 << 20, KONA_ATTACH_F_CREATE, key1,
                           &vol, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_alloc(l, 1 << 20, &slab, &err), ==, 0);
    kona_link_slab_info(l, slab, key, NULL);
    g_assert_cmpint(kona_link_slab_generation(l, vol, 7, &gen, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_generation(l, slab, 1ull << 40, &gen,
                                              &err), ==, 0);
    /* no FLUSH: the reply itself promises durability */
    node_restart(n, true);
    kona_link_close(l);
    l = mn_link_to(n->addr);
    g_assert_cmpint(attach(l, "vm-g", 0, 0, key1, &vol, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_generation(l, vol, 0, &gen, &err), ==, 0);
    g_assert_cmpuint(gen, ==, 7);
    g_assert_cmpint(kona_link_slab_open(l, slab, key, NULL, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_generation(l, slab, 0, &gen, &err), ==, 0);
    g_assert_cmpuint(gen, ==, 1ull << 40);
    kona_link_close(l);
    node_free(n);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/volumes/free/drops-own-ref", test_free_drops_own_ref);
    g_test_add_func("/volumes/free/last-holder", test_free_last_holder);
    g_test_add_func("/volumes/free/named", test_free_named);
    g_test_add_func("/volumes/key/required", test_key_required);
    g_test_add_func("/volumes/key/from-secret", test_key_from_secret);
    g_test_add_func("/volumes/key/persists", test_key_persists);
    g_test_add_func("/volumes/exclusive/refused", test_exclusive);
    g_test_add_func("/volumes/exclusive/takeover", test_exclusive_takeover);
    g_test_add_func("/volumes/exclusive/share", test_exclusive_share);
    g_test_add_func("/volumes/generation/monotonic", test_generation);
    g_test_add_func("/volumes/generation/persists", test_generation_persists);
    return g_test_run();
}
