/*
 * Slab store of kona-memnode: slabs of anonymous memory (one sealed memfd
 * each), or of files in a data directory so the contents survive a
 * restart.  Every slab has a descriptor the node keeps open, which
 * SLAB_MAP hands to clients on the same host.
 */
#ifndef MEMNODE_SLAB_H
#define MEMNODE_SLAB_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "kona-outq.h"
#include "kona-proto.h"

typedef struct MnSlab {
    uint64_t id;
    uint64_t size;
    uint8_t key[KONA_KEY_SIZE];
    char *name;                 /* named volume (SLAB_ATTACH), or NULL */
    uint8_t volkey[KONA_KEY_SIZE];  /* a named volume's key ... */
    bool has_volkey;            /* ... unless made before volume keys */
    uint64_t generation;        /* SLAB_GEN: only grows; in the metadata */
    void *excl;                 /* connection holding it exclusively */
    uint8_t *mem;               /* size bytes; NULL once freed */
    int fd;                     /* memfd or data file; -1 once freed */
    bool doomed;                /* SLAB_FREE'd: goes when nobody holds it */
    bool freed;                 /* destroyed; struct lives while refs/maps */
    unsigned refs;              /* connections that have it open */
    unsigned maps;              /* connections that have mapped it */
    int64_t linger_until_ms;    /* orphan expiry; 0 when not an orphan */
    uint64_t dirty_lo, dirty_hi;    /* written since the last good msync */
    int sync_err;               /* last failed sync, reported once more */
    KonaOutTag out_tag;         /* queued READ replies pointing into mem */
} MnSlab;

typedef struct MnSlabStore {
    GHashTable *by_id;          /* id -> MnSlab*, live slabs */
    GHashTable *by_name;        /* name -> MnSlab* */
    GHashTable *orphans;        /* MnSlab* set: unnamed, refs == 0 */
    uint64_t next_id;
    uint64_t capacity;
    uint64_t used;              /* live slabs + freed ones still mapped */
    uint64_t mapped_slabs;      /* slabs with maps > 0 */
    char *data_dir;             /* NULL: anonymous memory */
    int64_t linger_ms;
} MnSlabStore;

/*
 * With @data_dir, existing slabs in it are loaded (as orphans until a
 * client opens them).
 */
MnSlabStore *mn_store_new(uint64_t capacity, const char *data_dir,
                          int64_t linger_ms, GError **errp);
void mn_store_free(MnSlabStore *st);

/*
 * New zero-filled slab with refs == 0; the caller takes a reference.  A
 * named volume (@name) gets @volkey.
 */
MnSlab *mn_store_alloc(MnSlabStore *st, uint64_t size, const char *name,
                       const uint8_t *volkey, GError **errp);

/*
 * Raise @s's generation to @gen if that is more than it has, durably
 * with a data directory (metadata file and directory synced) before
 * returning.  On failure the generation stays as it was.
 */
bool mn_slab_set_generation(MnSlabStore *st, MnSlab *s, uint64_t gen,
                            GError **errp);
MnSlab *mn_store_lookup(MnSlabStore *st, uint64_t id);
MnSlab *mn_store_lookup_name(MnSlabStore *st, const char *name);

/*
 * SLAB_FREE: nobody may open @s any more (it leaves the id and name
 * tables, and its files the data directory), and it is destroyed as soon
 * as no connection holds it.  The caller then drops its own reference.
 */
void mn_store_doom(MnSlabStore *st, MnSlab *s);

/*
 * Destroy a slab's memory and files now.  The caller must have detached
 * every queued reply that points into it.  The struct stays (freed ==
 * true) until the last reference and the last map are dropped; while a
 * client may still map the memory it stays counted in @used.
 */
void mn_store_destroy(MnSlabStore *st, MnSlab *s);

void mn_slab_ref(MnSlabStore *st, MnSlab *s);
/*
 * An unnamed slab nobody has open becomes an orphan, destroyed once
 * @linger_ms passes without anyone reopening it; a doomed one nobody has
 * open is destroyed at once.
 */
void mn_slab_unref(MnSlabStore *st, MnSlab *s);

/*
 * A connection mapped @s (handed its descriptor) / has gone.  Counted once
 * per connection: the memory stays in use until every mapper is gone.
 */
void mn_slab_map_ref(MnSlabStore *st, MnSlab *s);
void mn_slab_map_unref(MnSlabStore *st, MnSlab *s);

/* Destroy expired orphans; returns ms until the next expiry, or -1. */
int64_t mn_store_expire(MnSlabStore *st, int64_t now_ms);

/* Note that [off, off + len) of @s was written (for msync). */
static inline void mn_slab_dirty(MnSlab *s, uint64_t off, uint64_t len)
{
    if (s->dirty_hi == 0) {
        s->dirty_lo = off;
        s->dirty_hi = off + len;
    } else {
        s->dirty_lo = MIN(s->dirty_lo, off);
        s->dirty_hi = MAX(s->dirty_hi, off + len);
    }
}

/*
 * Run @fn(@opaque), which reads or writes @st's slab memory.  A data file
 * cannot be sealed, and whoever may write it can cut it under the
 * memnode's mapping: with a data directory @fn runs under a SIGBUS guard
 * (kona-guard.h), and false means it met a lost page and ended there.
 */
bool mn_slab_guarded(MnSlabStore *st, void (*fn)(void *opaque),
                     void *opaque);

/*
 * ZERO: [off, off + len) of @s (page-aligned, inside it) reads as zeroes.
 * An anonymous slab's pages there are freed (a hole in its memfd); a data
 * file is zeroed in place and stays fully allocated, durable at the next
 * mn_slab_sync.  Returns 0 or a negative errno (the range may then be
 * partly zeroed).
 */
int mn_slab_zero(MnSlabStore *st, MnSlab *s, uint64_t off, uint64_t len);

/*
 * Make the written range durable in the data directory (msync), and with
 * @whole the entire file (fdatasync: a client wrote through its own
 * mapping).  The range stays dirty until a sync succeeds, and a failure
 * is returned by this call and by the next one too, even if the retry
 * works: after a writeback error the kernel may have dropped the pages,
 * so one good retry does not prove the data reached the disk.
 */
int mn_slab_sync(MnSlabStore *st, MnSlab *s, bool whole);
int mn_store_sync_all(MnSlabStore *st);

#endif /* MEMNODE_SLAB_H */
