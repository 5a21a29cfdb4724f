/*
 * Rack controller tests: a real kona-rackctl and real kona-memnode
 * processes that register with it.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "kona-rack.h"
#include "mn-testutil.h"

#define TIMEOUT_MS 5000
#define MiB (1ull << 20)

typedef struct Rack {
    char *dir;
    MnProc *ctl;
    MnProc *nodes[4];
    unsigned nnodes;
} Rack;

static MnProc *start_node(Rack *r, unsigned i, const char *capacity)
{
    g_autofree char *l = g_strdup_printf("--listen=unix:%s/node%u.sock",
                                         r->dir, i);
    g_autofree char *c = g_strdup_printf("--controller=%s", r->ctl->addrs[0]);
    g_autofree char *cap = g_strdup_printf("--capacity=%s", capacity);
    const char *const args[] = { l, c, cap, NULL };

    return mn_proc_start(mn_memnode_bin(), args);
}

/* Controller plus @n memnodes of @capacity each (registered when ready:
 * a memnode registers before it prints its ready line). */
static Rack *rack_start(unsigned n, const char *capacity)
{
    Rack *r = g_new0(Rack, 1);
    g_autofree char *l = NULL;

    r->dir = mn_tmpdir();
    l = g_strdup_printf("--listen=unix:%s/ctl.sock", r->dir);
    r->ctl = mn_proc_start(mn_rackctl_bin(),
                           (const char *const[]){ l, "--slab-size=4M", NULL });
    for (unsigned i = 0; i < n; i++) {
        r->nodes[i] = start_node(r, i, capacity);
    }
    r->nnodes = n;
    return r;
}

static void rack_free(Rack *r)
{
    for (unsigned i = 0; i < r->nnodes; i++) {
        if (r->nodes[i]->pid) {
            g_assert_cmpint(mn_proc_stop(r->nodes[i]), ==, 0);
        }
        mn_proc_free(r->nodes[i]);
    }
    g_assert_cmpint(mn_proc_stop(r->ctl), ==, 0);
    mn_proc_free(r->ctl);
    mn_rm_rf(r->dir);
    g_free(r->dir);
    g_free(r);
}

static KonaLink *ctl_link(Rack *r)
{
    g_autoptr(GError) err = NULL;
    KonaLink *l = kona_link_connect(r->ctl->addrs[0], TIMEOUT_MS, &err);

    g_assert_no_error(err);
    g_assert_true(kona_link_caps(l) & KONA_CAP_RACK);
    return l;
}

static void test_register_status(void)
{
    Rack *r = rack_start(3, "64M");
    g_autoptr(KonaLink) ctl = ctl_link(r);
    g_autoptr(KonaRackStatus) st = NULL;
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(kona_rack_status(ctl, &st, &err), ==, 0);
    g_assert_cmpuint(st->nnodes, ==, 3);
    g_assert_cmpuint(st->capacity, ==, 3 * 64 * MiB);
    g_assert_cmpuint(st->used, ==, 0);
    for (unsigned i = 0; i < 3; i++) {
        g_assert_true(st->nodes[i].alive);
        g_assert_cmpuint(st->nodes[i].capacity, ==, 64 * MiB);
        g_assert_true(g_str_has_prefix(st->nodes[i].addr, "unix:"));
    }
    g_clear_pointer(&st, kona_rack_status_free);

    /* a memnode that dies is no longer offered */
    mn_proc_kill(r->nodes[1]);
    for (int i = 0; i < 1000; i++) {
        g_assert_cmpint(kona_rack_status(ctl, &st, &err), ==, 0);
        if (!st->nodes[1].alive) {
            break;
        }
        g_clear_pointer(&st, kona_rack_status_free);
        g_usleep(1000);
    }
    g_assert_false(st->nodes[1].alive);
    g_assert_cmpuint(st->capacity, ==, 2 * 64 * MiB);
    rack_free(r);
}

static void test_striping(void)
{
    Rack *r = rack_start(3, "64M");
    g_autoptr(KonaLink) ctl = ctl_link(r);
    g_autoptr(KonaRackAlloc) a = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GHashTable) links = g_hash_table_new_full(
        g_str_hash, g_str_equal, g_free, (GDestroyNotify)kona_link_close);
    unsigned per_node[3] = { 0 };
    g_autoptr(KonaRackStatus) st = NULL;
    uint64_t expect_off = 0;

    /* 10 stripes of 4 MiB, the last one 1 MiB */
    g_assert_cmpint(kona_rack_alloc(ctl, 37 * MiB, 0, NULL, &a, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(a->count, ==, 10);
    g_assert_cmpuint(a->size, ==, 37 * MiB);
    for (unsigned i = 0; i < a->count; i++) {
        KonaRackPlacementInfo *p = &a->placements[i];
        KonaLink *l = g_hash_table_lookup(links, p->addr);
        uint8_t buf[4096], got[4096];
        uint64_t size, mask = ~0ull;
        int node = -1;

        g_assert_cmpuint(p->offset, ==, expect_off);
        g_assert_cmpuint(p->size, ==, i < 9 ? 4 * MiB : 1 * MiB);
        expect_off += p->size;
        /* consecutive stripes on different nodes */
        if (i) {
            g_assert_cmpstr(p->addr, !=, a->placements[i - 1].addr);
        }
        for (unsigned n = 0; n < 3; n++) {
            if (!strcmp(p->addr, r->nodes[n]->addrs[0])) {
                node = (int)n;
            }
        }
        g_assert_cmpint(node, >=, 0);
        per_node[node]++;
        if (!l) {
            l = kona_link_connect(p->addr, TIMEOUT_MS, &err);
            g_assert_no_error(err);
            g_hash_table_insert(links, g_strdup(p->addr), l);
        }
        /* the grant works: open by key, write, read back */
        g_assert_cmpint(kona_link_slab_open(l, p->slab_id, p->key, &size,
                                            &err), ==, 0);
        g_assert_cmpuint(size, ==, p->size);
        mn_fill(buf, sizeof(buf), i);
        g_assert_cmpint(kona_link_write_lines(l, p->slab_id, p->size - 4096,
                                              1, &mask, buf, &err), ==, 0);
        g_assert_cmpint(kona_link_read(l, p->slab_id, p->size - 4096, got,
                                       sizeof(got), &err), ==, 0);
        g_assert_cmpmem(got, sizeof(got), buf, sizeof(buf));
    }
    for (unsigned n = 0; n < 3; n++) {
        g_assert_cmpuint(per_node[n], >=, 3);
    }
    g_assert_cmpint(kona_rack_status(ctl, &st, &err), ==, 0);
    g_assert_cmpuint(st->used, ==, 37 * MiB);
    g_assert_cmpuint(st->nallocs, ==, 1);
    g_clear_pointer(&st, kona_rack_status_free);

    /* freeing gives the capacity back */
    g_assert_cmpint(kona_rack_free(ctl, a->alloc_id, &err), ==, 0);
    g_assert_cmpint(kona_rack_status(ctl, &st, &err), ==, 0);
    g_assert_cmpuint(st->used, ==, 0);
    g_assert_cmpint(kona_rack_free(ctl, a->alloc_id, &err), ==, -ENOENT);
    rack_free(r);
}

static void test_over_allocation(void)
{
    Rack *r = rack_start(2, "16M");
    g_autoptr(KonaLink) ctl = ctl_link(r);
    g_autoptr(KonaRackAlloc) a = NULL, b = NULL, c = NULL;
    g_autoptr(KonaRackStatus) st = NULL;
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(kona_rack_alloc(ctl, 33 * MiB, 0, NULL, &a, &err), ==,
                    -ENOSPC);
    g_assert_error(err, KONA_ERROR, ENOSPC);
    g_assert_nonnull(strstr(err->message, "32 MiB free"));
    g_assert_nonnull(strstr(err->message, "2 live memory nodes"));
    g_clear_error(&err);
    g_assert_null(a);
    /* nothing was charged by the refusal */
    g_assert_cmpint(kona_rack_alloc(ctl, 24 * MiB, 0, NULL, &a, &err), ==, 0);
    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, NULL, &b, &err), ==, 0);
    g_assert_cmpint(kona_rack_alloc(ctl, 4096, 0, NULL, &c, &err), ==,
                    -ENOSPC);
    g_clear_error(&err);
    g_assert_cmpint(kona_rack_status(ctl, &st, &err), ==, 0);
    g_assert_cmpuint(st->used, ==, 32 * MiB);
    /* stripes bigger than any node fail even if the total would fit */
    g_assert_cmpint(kona_rack_free(ctl, b->alloc_id, &err), ==, 0);
    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 8 * MiB, NULL, &c, &err),
                    ==, -ENOSPC);
    g_clear_error(&err);
    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, NULL, &c, &err), ==, 0);
    g_assert_cmpint(kona_rack_alloc(ctl, 12345, 1000, NULL, &b, &err), ==,
                    -EINVAL);
    rack_free(r);
}

/* Unnamed allocations die with their client; named ones persist. */
static void test_lifetime(void)
{
    Rack *r = rack_start(2, "32M");
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaRackStatus) st = NULL;
    g_autoptr(KonaLink) watcher = ctl_link(r);
    g_autoptr(KonaRackAlloc) n1 = NULL, n2 = NULL;
    KonaLink *ctl = ctl_link(r);
    KonaRackAlloc *a = NULL;

    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, NULL, &a, &err), ==, 0);
    kona_rack_alloc_free(a);
    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, "vm1", &n1, &err), ==, 0);
    kona_link_close(ctl);
    for (int i = 0; i < 1000; i++) {
        g_assert_cmpint(kona_rack_status(watcher, &st, &err), ==, 0);
        if (st->used == 8 * MiB) {
            break;
        }
        g_clear_pointer(&st, kona_rack_status_free);
        g_usleep(1000);
    }
    g_assert_cmpuint(st->used, ==, 8 * MiB);
    g_assert_cmpuint(st->nallocs, ==, 1);
    /* a restarted client finds its named allocation, same slabs */
    g_assert_cmpint(kona_rack_alloc(watcher, 8 * MiB, 0, "vm1", &n2, &err),
                    ==, 0);
    g_assert_cmpuint(n2->alloc_id, ==, n1->alloc_id);
    g_assert_cmpuint(n2->count, ==, n1->count);
    g_assert_cmpuint(n2->placements[0].slab_id, ==,
                     n1->placements[0].slab_id);
    g_assert_cmpmem(n2->placements[0].key, KONA_KEY_SIZE,
                    n1->placements[0].key, KONA_KEY_SIZE);
    rack_free(r);
}

/* The controller refuses memnode ops and memnodes refuse rack ops. */
static void test_wrong_server(void)
{
    Rack *r = rack_start(1, "16M");
    g_autoptr(KonaLink) ctl = ctl_link(r);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) mn = NULL;
    KonaRackAlloc *a = NULL;
    uint64_t id;

    g_assert_cmpint(kona_link_slab_alloc(ctl, 4096, &id, &err), ==,
                    -EOPNOTSUPP);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_ping(ctl, &err), ==, 0);
    mn = kona_link_connect(r->nodes[0]->addrs[0], TIMEOUT_MS, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_rack_alloc(mn, 4096, 0, NULL, &a, &err), ==,
                    -EOPNOTSUPP);
    g_assert_null(a);
    rack_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/rack/register-status", test_register_status);
    g_test_add_func("/rack/striping", test_striping);
    g_test_add_func("/rack/over-allocation", test_over_allocation);
    g_test_add_func("/rack/lifetime", test_lifetime);
    g_test_add_func("/rack/wrong-server", test_wrong_server);
    return g_test_run();
}
