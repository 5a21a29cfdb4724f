/*
 * Slab lifetime and access on a memnode shared by several clients:
 * freeing drops only the caller's reference, named volumes need their
 * key, exclusive attach, copy generations.  Real kona-memnode processes.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "kona-auth.h"
#include "kona-link.h"
#include "mn-testutil.h"

#define TIMEOUT_MS 5000

typedef struct Node {
    MnProc *proc;
    char *dir;
    char *addr;
    char *data_dir;             /* --data-dir, or NULL */
} Node;

static MnProc *node_exec(Node *n, const char *const *extra)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    MnProc *p;

    g_ptr_array_add(a, g_strdup_printf("--listen=unix:%s/mn.sock", n->dir));
    if (n->data_dir) {
        g_ptr_array_add(a, g_strdup_printf("--data-dir=%s", n->data_dir));
    }
    for (const char *const *e = extra; e && *e; e++) {
        g_ptr_array_add(a, g_strdup(*e));
    }
    g_ptr_array_add(a, NULL);
    p = mn_proc_start(mn_memnode_bin(), (const char *const *)a->pdata);
    g_ptr_array_free(a, TRUE);
    return p;
}

static Node *node_start(bool data_dir, const char *const *extra)
{
    Node *n = g_new0(Node, 1);

    n->dir = mn_tmpdir();
    if (data_dir) {
        n->data_dir = g_build_filename(n->dir, "data", NULL);
    }
    n->proc = node_exec(n, extra);
    n->addr = g_strdup(n->proc->addrs[0]);
    return n;
}

/* Stop and start again on the same socket and data directory. */
static void G_GNUC_UNUSED node_restart(Node *n, bool crash)
{
    if (crash) {
        mn_proc_kill(n->proc);
    } else {
        g_assert_cmpint(mn_proc_stop(n->proc), ==, 0);
    }
    mn_proc_free(n->proc);
    n->proc = node_exec(n, NULL);
}

static void node_free(Node *n)
{
    if (n->proc->pid) {
        g_assert_cmpint(mn_proc_stop(n->proc), ==, 0);
    }
    mn_proc_free(n->proc);
    mn_rm_rf(n->dir);
    g_free(n->dir);
    g_free(n->addr);
    g_free(n->data_dir);
    g_free(n);
}

static KonaLink *link_to(const char *addr)
{
    g_autoptr(GError) err = NULL;
    KonaLink *l = kona_link_connect(addr, TIMEOUT_MS, &err);

    g_assert_no_error(err);
    return l;
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
    g_autoptr(KonaLink) a = link_to(n->addr);
    g_autoptr(KonaLink) c = link_to(n->addr);
    KonaLink *b = link_to(n->addr);
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
    g_autoptr(KonaLink) a = link_to(n->addr);
    uint64_t slab;
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_slab_alloc(a, 1 << 20, &slab, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_free(a, slab, &err), ==, 0);
    st = stats(a);
    g_assert_cmpuint(st.slab_bytes, ==, 0);
    g_assert_cmpuint(st.slabs, ==, 0);
    node_free(n);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/volumes/free/drops-own-ref", test_free_drops_own_ref);
    g_test_add_func("/volumes/free/last-holder", test_free_last_holder);
    return g_test_run();
}
