/*
 * Rack controller tests: a real kona-rackctl and real kona-memnode
 * processes that register with it.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
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
static Rack *rack_start_lease(unsigned n, const char *capacity,
                              const char *lease)
{
    Rack *r = g_new0(Rack, 1);
    g_autofree char *l = NULL;
    g_autofree char *lo = g_strdup_printf("--lease=%s", lease);

    r->dir = mn_tmpdir();
    l = g_strdup_printf("--listen=unix:%s/ctl.sock", r->dir);
    r->ctl = mn_proc_start(mn_rackctl_bin(),
                           (const char *const[]){ l, "--slab-size=4M", lo,
                                                  NULL });
    for (unsigned i = 0; i < n; i++) {
        r->nodes[i] = start_node(r, i, capacity);
    }
    r->nnodes = n;
    return r;
}

static Rack *rack_start(unsigned n, const char *capacity)
{
    return rack_start_lease(n, capacity, "60");
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

static const uint8_t key1[KONA_KEY_SIZE] = "rack-alloc-key-1";
static const uint8_t key2[KONA_KEY_SIZE] = "rack-alloc-key-2";

/* STATUS once the controller's used bytes are @used (polls briefly). */
static KonaRackStatus *status_used(KonaLink *ctl, uint64_t used,
                                   int wait_ms)
{
    g_autoptr(GError) err = NULL;
    KonaRackStatus *st = NULL;

    for (int i = 0;; i++) {
        g_assert_cmpint(kona_rack_status(ctl, &st, &err), ==, 0);
        if (st->used == used || i >= wait_ms / 5) {
            break;
        }
        g_clear_pointer(&st, kona_rack_status_free);
        g_usleep(5000);
    }
    g_assert_cmpuint(st->used, ==, used);
    return st;
}

static int alloc_named(KonaLink *ctl, const char *name, const uint8_t *key,
                       bool excl, KonaRackAlloc **out, GError **errp)
{
    KonaRackAllocOpts o = {
        .size = 8 * MiB, .name = name, .key = key, .exclusive = excl,
    };

    return kona_rack_alloc_opts(ctl, &o, out, errp);
}

/*
 * An unnamed allocation outlives its client's connection for the lease
 * time; named ones persist, and only their key gets them again.
 */
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
    g_assert_true(a->has_key);
    kona_rack_alloc_free(a);
    /* a name without a key is refused (the link has no secret) */
    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, "vm1", &n1, &err), ==,
                    -EACCES);
    g_assert_nonnull(strstr(err->message, "key"));
    g_clear_error(&err);
    g_assert_cmpint(alloc_named(ctl, "vm1", key1, false, &n1, &err), ==, 0);
    g_assert_cmpmem(n1->key, KONA_KEY_SIZE, key1, KONA_KEY_SIZE);
    kona_link_close(ctl);
    /* both stay: the unnamed one on its lease */
    g_usleep(100 * 1000);
    st = status_used(watcher, 16 * MiB, 0);
    g_assert_cmpuint(st->nallocs, ==, 2);
    /* a restarted client finds its named allocation with the key only */
    g_assert_cmpint(alloc_named(watcher, "vm1", key2, false, &n2, &err), ==,
                    -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(alloc_named(watcher, "vm1", key1, false, &n2, &err), ==,
                    0);
    g_assert_cmpuint(n2->alloc_id, ==, n1->alloc_id);
    g_assert_cmpuint(n2->count, ==, n1->count);
    g_assert_cmpuint(n2->placements[0].slab_id, ==,
                     n1->placements[0].slab_id);
    g_assert_cmpmem(n2->placements[0].key, KONA_KEY_SIZE,
                    n1->placements[0].key, KONA_KEY_SIZE);
    rack_free(r);
}

/*
 * The controller connection drops mid-run: the allocation and its slabs
 * stay, kona-link's reconnect reclaims it, and it is the new
 * connection's (it survives a lease period and can be freed by it).
 */
static void test_reclaim_reconnect(void)
{
    Rack *r = rack_start_lease(2, "32M", "1");
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaRackStatus) st = NULL;
    g_autoptr(KonaLink) watcher = ctl_link(r);
    g_autoptr(KonaLink) ctl = ctl_link(r);
    g_autoptr(KonaRackAlloc) a = NULL;
    g_autoptr(KonaLink) mn = NULL;
    KonaRackPlacementInfo *p;
    uint8_t buf[64], got[64];
    uint64_t mask = 1;

    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, NULL, &a, &err), ==, 0);
    p = &a->placements[0];
    mn = kona_link_connect(p->addr, TIMEOUT_MS, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_slab_open(mn, p->slab_id, p->key, NULL, &err),
                    ==, 0);
    mn_fill(buf, sizeof(buf), 3);
    g_assert_cmpint(kona_link_write_lines(mn, p->slab_id, 0, 1, &mask, buf,
                                          &err), ==, 0);
    /* cut: the controller sees the old connection close */
    g_assert_cmpint(kona_link_reconnect(ctl, &err), ==, 0);
    /* two lease periods later it is still there, on the new connection */
    g_usleep(2200 * 1000);
    st = status_used(watcher, 8 * MiB, 0);
    g_assert_cmpuint(st->nallocs, ==, 1);
    g_assert_cmpint(kona_link_read(mn, p->slab_id, 0, got, sizeof(got),
                                   &err), ==, 0);
    g_assert_cmpmem(got, sizeof(got), buf, sizeof(buf));
    g_assert_cmpint(kona_rack_free(ctl, a->alloc_id, &err), ==, 0);
    g_clear_pointer(&st, kona_rack_status_free);
    st = status_used(watcher, 0, 0);
    rack_free(r);
}

/*
 * Without a reclaim the lease runs out and the slabs are freed; the key
 * is needed to reclaim, and a reclaim moves the allocation.
 */
static void test_reclaim_key_and_expiry(void)
{
    Rack *r = rack_start_lease(2, "32M", "1");
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaRackStatus) st = NULL;
    g_autoptr(KonaLink) other = ctl_link(r);
    g_autoptr(KonaLink) ctl = ctl_link(r);
    g_autoptr(KonaRackAlloc) a = NULL, b = NULL, c = NULL;
    uint8_t wrong[KONA_KEY_SIZE];
    KonaLink *gone;

    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, NULL, &a, &err), ==, 0);
    memcpy(wrong, a->key, KONA_KEY_SIZE);
    wrong[7] ^= 0x40;
    /* another client: not without the key, not by freeing it */
    g_assert_cmpint(kona_rack_reclaim(other, a->alloc_id, wrong, &b, &err),
                    ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_rack_reclaim(other, a->alloc_id + 100, a->key, &b,
                                      &err), ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_rack_free(other, a->alloc_id, &err), ==, -ENOENT);
    g_clear_error(&err);
    g_assert_cmpint(kona_rack_free_key(other, a->alloc_id, wrong, &err), ==,
                    -ENOENT);
    g_clear_error(&err);
    /* with the key it takes the allocation over: no longer ctl's */
    g_assert_cmpint(kona_rack_reclaim(other, a->alloc_id, a->key, &b, &err),
                    ==, 0);
    g_assert_cmpuint(b->count, ==, a->count);
    g_assert_cmpuint(b->placements[0].slab_id, ==, a->placements[0].slab_id);
    g_assert_cmpint(kona_rack_free(ctl, a->alloc_id, &err), ==, -ENOENT);
    g_clear_error(&err);
    g_assert_cmpint(kona_rack_free(other, a->alloc_id, &err), ==, 0);

    /* expiry: a client leaves and nobody reclaims */
    gone = ctl_link(r);
    g_assert_cmpint(kona_rack_alloc(gone, 8 * MiB, 0, NULL, &c, &err), ==, 0);
    kona_link_close(gone);
    st = status_used(other, 8 * MiB, 0);
    g_clear_pointer(&st, kona_rack_status_free);
    st = status_used(other, 0, 3000);
    g_assert_cmpuint(st->nallocs, ==, 0);
    g_assert_cmpint(kona_rack_reclaim(other, c->alloc_id, c->key, &b, &err),
                    ==, -EACCES);
    g_clear_error(&err);
    /* its slabs are gone from the memnode too */
    {
        g_autoptr(KonaLink) mn = kona_link_connect(c->placements[0].addr,
                                                   TIMEOUT_MS, &err);
        g_assert_no_error(err);
        g_assert_cmpint(kona_link_slab_open(mn, c->placements[0].slab_id,
                                            c->placements[0].key, NULL,
                                            &err), ==, -EACCES);
    }
    rack_free(r);
}

/* Named allocations: the key, RACK_FREE by holders only, exclusivity. */
static void test_named_keys(void)
{
    Rack *r = rack_start(2, "32M");
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) a = ctl_link(r);
    g_autoptr(KonaLink) b = ctl_link(r);
    g_autoptr(KonaRackAlloc) x = NULL, y = NULL, z = NULL;
    KonaLink *c = ctl_link(r);

    g_assert_cmpint(alloc_named(a, "vm-n", key1, true, &x, &err), ==, 0);
    /* the wrong key: the same answer as a name nobody has */
    g_assert_cmpint(alloc_named(b, "vm-n", key2, false, &y, &err), ==,
                    -EACCES);
    g_assert_nonnull(strstr(err->message, "no allocation vm-n with that key"));
    g_clear_error(&err);
    /* the right key, but a holds it exclusively */
    g_assert_cmpint(alloc_named(b, "vm-n", key1, false, &y, &err), ==,
                    -EBUSY);
    g_assert_nonnull(strstr(err->message, "vm-n"));
    g_clear_error(&err);
    /* nobody frees it but its holder (or with the key) */
    g_assert_cmpint(kona_rack_free(b, x->alloc_id, &err), ==, -ENOENT);
    g_clear_error(&err);
    /* a goes: it stays (named), and b may have it */
    g_assert_cmpint(alloc_named(c, "vm-m", key2, false, &z, &err), ==, 0);
    g_clear_pointer(&z, kona_rack_alloc_free);
    g_assert_cmpint(alloc_named(b, "vm-m", key2, true, &z, &err), ==, -EBUSY);
    g_assert_nonnull(strstr(err->message, "held by another connection"));
    g_clear_error(&err);
    kona_link_close(c);
    for (int i = 0; i < 500; i++) {
        int ret = alloc_named(b, "vm-m", key2, true, &z, &err);
        if (ret == 0) {
            break;
        }
        g_assert_cmpint(ret, ==, -EBUSY);
        g_clear_error(&err);
        g_usleep(2000);
    }
    g_assert_no_error(err);
    g_assert_cmpint(kona_rack_free_key(b, x->alloc_id, key1, &err), ==, 0);
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
    /* asked only of servers that offer them (an older one would close) */
    g_assert_cmpint(kona_link_slab_generation(ctl, 1, 0, &id, &err), ==,
                    -EOPNOTSUPP);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_slab_attach_key(ctl, "v", 4096,
                                              KONA_ATTACH_F_CREATE, key1,
                                              &id, NULL, NULL, &err), ==,
                    -EOPNOTSUPP);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_ping(ctl, &err), ==, 0);
    g_assert_cmpuint(kona_link_reconnects(ctl), ==, 0);
    mn = kona_link_connect(r->nodes[0]->addrs[0], TIMEOUT_MS, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_rack_alloc(mn, 4096, 0, NULL, &a, &err), ==,
                    -EOPNOTSUPP);
    g_assert_null(a);
    g_clear_error(&err);
    g_assert_cmpint(kona_rack_reclaim(mn, 1, key1, &a, &err), ==,
                    -EOPNOTSUPP);
    g_assert_cmpint(kona_link_reconnects(mn), ==, 0);
    rack_free(r);
}

/*
 * The same through kona-faultproxy: the controller connection is cut
 * under a client; its next call reconnects and reclaims, and the
 * allocation outlives the lease.
 */
static void test_proxy_cut(void)
{
    /* 3 s: the reconnect must come within it even on a loaded machine. */
    Rack *r = rack_start_lease(1, "32M", "3");
    MnProxy *p = mn_proxy_start(r->ctl->addrs[0]);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaRackStatus) st = NULL;
    g_autoptr(KonaLink) watcher = ctl_link(r);
    g_autoptr(KonaLink) ctl = kona_link_connect(p->proc->addrs[0],
                                                TIMEOUT_MS, &err);
    g_autoptr(KonaRackAlloc) a = NULL;

    g_assert_no_error(err);
    g_assert_cmpint(kona_rack_alloc(ctl, 8 * MiB, 0, NULL, &a, &err), ==, 0);
    mn_proxy_cmd(p, "cut");
    /* the controller sees the close; the client, at its next call */
    g_usleep(200 * 1000);
    g_assert_cmpint(kona_rack_status(ctl, &st, &err), ==, 0);
    g_assert_cmpuint(kona_link_reconnects(ctl), ==, 1);
    g_clear_pointer(&st, kona_rack_status_free);
    g_usleep(3500 * 1000);
    st = status_used(watcher, 8 * MiB, 0);
    g_assert_cmpint(kona_rack_free(ctl, a->alloc_id, &err), ==, 0);
    mn_proxy_free(p);
    rack_free(r);
}

/* A malformed rack frame closes that connection only. */
static void test_malformed(void)
{
    Rack *r = rack_start(1, "16M");
    g_autoptr(KonaLink) good = ctl_link(r);
    g_autoptr(GError) err = NULL;
    uint8_t f[KONA_HDR_SIZE + sizeof(KonaRackAllocReq) + 8] = { 0 };
    struct { uint16_t op; uint32_t len; uint16_t flags; } cases[] = {
        { KONA_OP_RACK_FREE, 9, 0 },            /* neither id nor id+key */
        { KONA_OP_RACK_ALLOC, 24, 0x80 },       /* unknown flag */
        { KONA_OP_RACK_ALLOC, 24 + 5, 0 },      /* name longer than said */
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        KonaLinkOptions o = { .timeout_ms = TIMEOUT_MS, .no_reconnect = true };
        g_autoptr(KonaLink) l = kona_link_connect_opts(r->ctl->addrs[0], &o,
                                                       &err);
        char ch;

        g_assert_no_error(err);
        memset(f, 0, sizeof(f));
        kona_hdr_encode(f, cases[i].op, 7, 0, cases[i].len);
        kona_st64(f + KONA_HDR_SIZE, 4096);
        kona_st16(f + KONA_HDR_SIZE + 18, cases[i].flags);
        g_assert_cmpint(kona_link_send_raw(l, f,
                                           KONA_HDR_SIZE + cases[i].len,
                                           &err), ==, 0);
        g_assert_cmpint(recv(kona_link_fd(l), &ch, 1, 0), ==, 0);
    }
    g_assert_cmpint(kona_link_ping(good, &err), ==, 0);
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
    g_test_add_func("/rack/reclaim/reconnect", test_reclaim_reconnect);
    g_test_add_func("/rack/reclaim/key-and-expiry",
                    test_reclaim_key_and_expiry);
    g_test_add_func("/rack/named-keys", test_named_keys);
    g_test_add_func("/rack/wrong-server", test_wrong_server);
    g_test_add_func("/rack/malformed", test_malformed);
    if (g_getenv("KONA_FAULTPROXY")) {
        g_test_add_func("/rack/faultproxy/cut", test_proxy_cut);
    }
    return g_test_run();
}
