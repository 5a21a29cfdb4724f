/*
 * Slab store of kona-memnode.
 *
 * An anonymous slab is a memfd of its own, mapped MAP_SHARED: a 1 GiB
 * slab costs nothing until touched (shmem allocates on first access) and
 * untouched pages read as zeros.  The memfd is sealed against shrinking
 * and growing (and the seals themselves sealed), so a client that maps
 * its descriptor can never see SIGBUS, and every slab is new memory: a
 * freed slab's pages live on only in the mappings that still hold them.
 *
 * With a data directory each slab is a file, fully allocated when created
 * (fallocate: a full disk fails the allocation with -ENOSPC instead of a
 * later SIGBUS in the memnode or in a client's mapping), mapped
 * MAP_SHARED and kept open, plus a small metadata file (slab-<id>.meta:
 * id, size, key, name, volume key, generation) written atomically and
 * durably (temporary file synced, renamed, directory synced) before the
 * slab is handed out or a generation is acknowledged, so a restarted
 * memnode finds the same ids, keys, names, generations and bytes.  Such a
 * file cannot be sealed: anyone who may write it can cut it, so the
 * memnode touches its memory only under a SIGBUS guard
 * (mn_slab_guarded).
 */
#include "memnode-slab.h"
#include "kona-auth.h"
#include "kona-guard.h"
#include "kona-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_GROUP "slab"

static char *slab_path(MnSlabStore *st, uint64_t id, const char *ext)
{
    return g_strdup_printf("%s/slab-%016" G_GINT64_MODIFIER "x.%s",
                           st->data_dir, id, ext);
}

static MnSlab *slab_new_struct(void)
{
    MnSlab *s = g_new0(MnSlab, 1);

    s->fd = -1;
    return s;
}

static void slab_free_struct(MnSlab *s)
{
    g_free(s->name);
    g_free(s);
}

/* Drop the node's own mapping and descriptor (clients keep theirs). */
static void slab_unmap(MnSlab *s)
{
    if (s->mem) {
        munmap(s->mem, s->size);
        s->mem = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* The node's mapping of s->fd. */
static int slab_mmap(MnSlab *s)
{
    void *m = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd,
                   0);

    if (m == MAP_FAILED) {
        return -errno;
    }
    s->mem = m;
    return 0;
}

/* A sealed memfd: lazily allocated, can neither shrink nor grow. */
static int slab_map_anon(MnSlab *s, GError **errp)
{
    const char *what;
    int err;

    s->fd = memfd_create("kona-slab", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (s->fd < 0) {
        what = "memfd_create";
        goto fail;
    }
    if (ftruncate(s->fd, (off_t)s->size) < 0) {
        what = "ftruncate";
        goto fail;
    }
    if (fcntl(s->fd, F_ADD_SEALS,
              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        what = "sealing";
        goto fail;
    }
    err = slab_mmap(s);
    if (err < 0) {
        errno = -err;
        what = "mmap";
        goto fail;
    }
    return 0;

fail:
    err = errno;
    slab_unmap(s);
    g_set_error(errp, KONA_ERROR, err == ENOSPC ? ENOSPC : ENOMEM,
                "cannot create a %" G_GUINT64_FORMAT "-byte slab (%s): %s",
                s->size, what, g_strerror(err));
    return err == ENOSPC ? -ENOSPC : -ENOMEM;
}

/* Allocate every block of the file now; 0 or -errno. */
static int file_allocate(int fd, uint64_t size)
{
    int r;

    if (fallocate(fd, 0, 0, (off_t)size) == 0) {
        return 0;
    }
    if (errno != EOPNOTSUPP) {
        return -errno;
    }
    /* a file system without fallocate: glibc writes the blocks */
    r = posix_fallocate(fd, 0, (off_t)size);
    return -r;
}

static int slab_map_file(MnSlabStore *st, MnSlab *s, bool create,
                         GError **errp)
{
    g_autofree char *path = slab_path(st, s->id, "mem");
    struct stat sb;
    char b1[32];
    int err;

    s->fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0),
                 0600);
    if (s->fd < 0) {
        goto fail;
    }
    if (create) {
        err = file_allocate(s->fd, s->size);
        if (err == -ENOSPC || err == -EDQUOT) {
            g_set_error(errp, KONA_ERROR, ENOSPC,
                        "no room for a %s slab in %s: %s",
                        kona_format_size(s->size, b1, sizeof(b1)),
                        st->data_dir, g_strerror(-err));
            slab_unmap(s);
            unlink(path);
            return -ENOSPC;
        }
        if (err < 0) {
            errno = -err;
            goto fail;
        }
    }
    if (fstat(s->fd, &sb) < 0) {
        goto fail;
    }
    if ((uint64_t)sb.st_size != s->size) {
        g_set_error(errp, KONA_ERROR, EINVAL,
                    "%s is %jd bytes, its metadata says %" G_GUINT64_FORMAT,
                    path, (intmax_t)sb.st_size, s->size);
        slab_unmap(s);
        return -EINVAL;
    }
    if (!create) {
        /*
         * Files of older memnodes may be sparse: allocate them now so a
         * full disk cannot turn into SIGBUS later.  Failing that the slab
         * is still served (its data is there), with a warning.
         */
        err = file_allocate(s->fd, s->size);
        if (err < 0) {
            fprintf(stderr, "kona-memnode: warning: cannot allocate all of "
                    "%s (%s): writes to its holes may fail\n", path,
                    g_strerror(-err));
        }
    }
    err = slab_mmap(s);
    if (err < 0) {
        errno = -err;
        goto fail;
    }
    return 0;

fail:
    err = errno;
    slab_unmap(s);
    g_set_error(errp, KONA_ERROR, err, "slab file %s: %s", path,
                g_strerror(err));
    if (create) {
        unlink(path);
    }
    return -err;
}

static int slab_map(MnSlabStore *st, MnSlab *s, bool create, GError **errp)
{
    return st->data_dir ? slab_map_file(st, s, create, errp)
                        : slab_map_anon(s, errp);
}

static char *key_hex(const uint8_t *key)
{
    char *hex = g_malloc(KONA_KEY_SIZE * 2 + 1);

    for (int i = 0; i < KONA_KEY_SIZE; i++) {
        g_snprintf(hex + 2 * i, 3, "%02x", key[i]);
    }
    return hex;
}

/* 32 hex digits into @key; false if @hex is not that. */
static bool key_parse(const char *hex, uint8_t *key)
{
    if (!hex || strlen(hex) != 2 * KONA_KEY_SIZE) {
        return false;
    }
    for (int i = 0; i < KONA_KEY_SIZE; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/*
 * Replace @path with @data so that a crash leaves the old or the new
 * contents, and the new ones survive once this returns: a synced
 * temporary file, renamed, then the directory synced.
 */
static bool write_durable(const char *path, const char *data, size_t len,
                          GError **errp)
{
    g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
    g_autofree char *dir = g_path_get_dirname(path);
    const char *what = "write";
    int fd, dfd, err;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        what = "create";
        goto fail;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno != EINTR) {
            goto fail_fd;
        }
        off += n > 0 ? (size_t)n : 0;
    }
    if (fsync(fd) < 0) {
        what = "fsync";
        goto fail_fd;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        what = "rename";
        goto fail;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        err = errno;
        if (dfd >= 0) {
            close(dfd);
        }
        g_set_error(errp, KONA_ERROR, err, "syncing %s: %s", dir,
                    g_strerror(err));
        return false;
    }
    close(dfd);
    return true;

fail_fd:
    err = errno;
    close(fd);
    errno = err;
fail:
    err = errno;
    unlink(tmp);
    g_set_error(errp, KONA_ERROR, err, "%s %s: %s", what, tmp,
                g_strerror(err));
    return false;
}

static bool slab_write_meta(MnSlabStore *st, MnSlab *s, GError **errp)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *path = slab_path(st, s->id, "meta");
    g_autofree char *key = key_hex(s->key);
    g_autofree char *data = NULL;
    gsize len;

    g_key_file_set_uint64(kf, META_GROUP, "id", s->id);
    g_key_file_set_uint64(kf, META_GROUP, "size", s->size);
    g_key_file_set_string(kf, META_GROUP, "key", key);
    if (s->name) {
        g_key_file_set_string(kf, META_GROUP, "name", s->name);
    }
    if (s->has_volkey) {
        g_autofree char *vk = key_hex(s->volkey);
        g_key_file_set_string(kf, META_GROUP, "volume_key", vk);
    }
    g_key_file_set_uint64(kf, META_GROUP, "generation", s->generation);
    data = g_key_file_to_data(kf, &len, NULL);
    return write_durable(path, data, len, errp);
}

bool mn_slab_set_generation(MnSlabStore *st, MnSlab *s, uint64_t gen,
                            GError **errp)
{
    uint64_t old = s->generation;

    if (gen <= old) {
        return true;
    }
    s->generation = gen;
    if (st->data_dir && !s->doomed && !slab_write_meta(st, s, errp)) {
        s->generation = old;
        return false;
    }
    return true;
}

static void store_insert(MnSlabStore *st, MnSlab *s)
{
    g_hash_table_insert(st->by_id, &s->id, s);
    if (s->name) {
        g_hash_table_insert(st->by_name, s->name, s);
    }
    st->used += s->size;
    st->next_id = MAX(st->next_id, s->id + 1);
}

static MnSlab *slab_load(MnSlabStore *st, const char *meta, GError **errp)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *key = NULL;
    g_autofree char *volkey = NULL;
    g_autofree char *name = NULL;
    MnSlab *s;

    if (!g_key_file_load_from_file(kf, meta, G_KEY_FILE_NONE, errp)) {
        return NULL;
    }
    s = slab_new_struct();
    s->id = g_key_file_get_uint64(kf, META_GROUP, "id", NULL);
    s->size = g_key_file_get_uint64(kf, META_GROUP, "size", NULL);
    s->generation = g_key_file_get_uint64(kf, META_GROUP, "generation", NULL);
    key = g_key_file_get_string(kf, META_GROUP, "key", NULL);
    volkey = g_key_file_get_string(kf, META_GROUP, "volume_key", NULL);
    name = g_key_file_get_string(kf, META_GROUP, "name", NULL);
    if (!s->id || !s->size || s->size % KONA_PAGE_SIZE ||
        s->size > KONA_MAX_SLAB_SIZE || !key_parse(key, s->key) ||
        (volkey && !key_parse(volkey, s->volkey)) ||
        (name && !kona_name_valid(name, strlen(name)))) {
        g_set_error(errp, KONA_ERROR, EINVAL, "%s: bad slab metadata", meta);
        slab_free_struct(s);
        return NULL;
    }
    /* a volume of a memnode older than volume keys has none */
    s->has_volkey = volkey && name;
    s->name = g_steal_pointer(&name);
    if (slab_map(st, s, false, errp) < 0) {
        slab_free_struct(s);
        return NULL;
    }
    return s;
}

static bool store_load(MnSlabStore *st, GError **errp)
{
    g_autoptr(GDir) dir = NULL;
    const char *ent;

    if (g_mkdir_with_parents(st->data_dir, 0700) < 0) {
        g_set_error(errp, KONA_ERROR, errno, "cannot create %s: %s",
                    st->data_dir, g_strerror(errno));
        return false;
    }
    dir = g_dir_open(st->data_dir, 0, errp);
    if (!dir) {
        return false;
    }
    while ((ent = g_dir_read_name(dir))) {
        g_autofree char *path = NULL;
        MnSlab *s;

        if (!g_str_has_prefix(ent, "slab-") || !g_str_has_suffix(ent, ".meta")) {
            continue;
        }
        path = g_build_filename(st->data_dir, ent, NULL);
        s = slab_load(st, path, errp);
        if (!s) {
            return false;
        }
        if (g_hash_table_contains(st->by_id, &s->id) ||
            (s->name && g_hash_table_contains(st->by_name, s->name))) {
            g_set_error(errp, KONA_ERROR, EEXIST, "%s: duplicate slab", path);
            slab_unmap(s);
            slab_free_struct(s);
            return false;
        }
        store_insert(st, s);
        /*
         * nobody has it open yet: give its owner the linger time to
         * come back, like after a disconnect
         */
        s->refs = 1;
        mn_slab_unref(st, s);
    }
    return true;
}

MnSlabStore *mn_store_new(uint64_t capacity, const char *data_dir,
                          int64_t linger_ms, GError **errp)
{
    MnSlabStore *st = g_new0(MnSlabStore, 1);

    st->by_id = g_hash_table_new(g_int64_hash, g_int64_equal);
    st->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    st->orphans = g_hash_table_new(NULL, NULL);
    st->next_id = 1;
    st->capacity = capacity;
    st->linger_ms = linger_ms;
    st->data_dir = g_strdup(data_dir);
    if (data_dir && !store_load(st, errp)) {
        mn_store_free(st);
        return NULL;
    }
    return st;
}

void mn_store_free(MnSlabStore *st)
{
    GHashTableIter it;
    gpointer v;

    if (!st) {
        return;
    }
    mn_store_sync_all(st);
    /* slabs stay on disk; only the mappings go */
    g_hash_table_iter_init(&it, st->by_id);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        MnSlab *s = v;
        slab_unmap(s);
        slab_free_struct(s);
    }
    g_hash_table_destroy(st->by_id);
    g_hash_table_destroy(st->by_name);
    g_hash_table_destroy(st->orphans);
    g_free(st->data_dir);
    g_free(st);
}

MnSlab *mn_store_alloc(MnSlabStore *st, uint64_t size, const char *name,
                       const uint8_t *volkey, GError **errp)
{
    MnSlab *s;
    char b1[32], b2[32];

    if (size < KONA_MIN_SLAB_SIZE || size > KONA_MAX_SLAB_SIZE ||
        size % KONA_PAGE_SIZE) {
        g_set_error(errp, KONA_ERROR, EINVAL,
                    "slab size %" G_GUINT64_FORMAT " must be a multiple of "
                    "4096 between 4 KiB and 1 TiB", size);
        return NULL;
    }
    if (st->used >= st->capacity || size > st->capacity - st->used) {
        g_set_error(errp, KONA_ERROR, ENOSPC,
                    "out of capacity: %s asked, %s free",
                    kona_format_size(size, b1, sizeof(b1)),
                    kona_format_size(st->used >= st->capacity ? 0 :
                                     st->capacity - st->used, b2, sizeof(b2)));
        return NULL;
    }
    s = slab_new_struct();
    s->id = st->next_id;
    s->size = size;
    s->name = g_strdup(name);
    if (name && volkey) {
        memcpy(s->volkey, volkey, KONA_KEY_SIZE);
        s->has_volkey = true;
    }
    kona_random_bytes(s->key, sizeof(s->key));
    if (slab_map(st, s, true, errp) < 0) {
        slab_free_struct(s);
        return NULL;
    }
    if (st->data_dir && !slab_write_meta(st, s, errp)) {
        g_autofree char *mem = slab_path(st, s->id, "mem");
        unlink(mem);
        slab_unmap(s);
        slab_free_struct(s);
        return NULL;
    }
    store_insert(st, s);
    return s;
}

MnSlab *mn_store_lookup(MnSlabStore *st, uint64_t id)
{
    return g_hash_table_lookup(st->by_id, &id);
}

MnSlab *mn_store_lookup_name(MnSlabStore *st, const char *name)
{
    return g_hash_table_lookup(st->by_name, name);
}

/* Out of the tables and the data directory: nobody finds it again. */
static void store_forget(MnSlabStore *st, MnSlab *s)
{
    g_hash_table_remove(st->by_id, &s->id);
    if (s->name) {
        g_hash_table_remove(st->by_name, s->name);
    }
    g_hash_table_remove(st->orphans, s);
    s->linger_until_ms = 0;
    if (st->data_dir) {
        g_autofree char *meta = slab_path(st, s->id, "meta");
        g_autofree char *mem = slab_path(st, s->id, "mem");
        /* metadata first: a crash in between leaves a harmless data file;
         * the node's mapping keeps the memory for the holders */
        unlink(meta);
        unlink(mem);
    }
}

void mn_store_doom(MnSlabStore *st, MnSlab *s)
{
    if (s->doomed || s->freed) {
        return;
    }
    store_forget(st, s);
    s->doomed = true;
}

void mn_store_destroy(MnSlabStore *st, MnSlab *s)
{
    if (s->freed) {
        return;
    }
    /* replies still queued keep the bytes they were answered with */
    kona_outq_detach(&s->out_tag, NULL, NULL);
    if (!s->doomed) {
        store_forget(st, s);
    }
    if (!s->maps) {
        /* else a client may still use the memory: see mn_slab_map_unref */
        st->used -= s->size;
    }
    slab_unmap(s);
    s->freed = true;
    if (!s->refs && !s->maps) {
        slab_free_struct(s);
    }
}

void mn_slab_ref(MnSlabStore *st, MnSlab *s)
{
    if (s->linger_until_ms) {
        g_hash_table_remove(st->orphans, s);
        s->linger_until_ms = 0;
    }
    s->refs++;
}

void mn_slab_unref(MnSlabStore *st, MnSlab *s)
{
    g_assert(s->refs > 0);
    if (--s->refs) {
        return;
    }
    if (s->freed) {
        if (!s->maps) {
            slab_free_struct(s);
        }
    } else if (s->doomed) {
        /* freed by a holder, and the last one has let go */
        mn_store_destroy(st, s);
    } else if (!s->name) {
        if (st->linger_ms <= 0) {
            mn_store_destroy(st, s);
        } else {
            s->linger_until_ms = kona_now_ms() + st->linger_ms;
            g_hash_table_add(st->orphans, s);
        }
    }
}

void mn_slab_map_ref(MnSlabStore *st, MnSlab *s)
{
    if (!s->maps++) {
        st->mapped_slabs++;
    }
}

void mn_slab_map_unref(MnSlabStore *st, MnSlab *s)
{
    g_assert(s->maps > 0);
    if (--s->maps) {
        return;
    }
    st->mapped_slabs--;
    if (s->freed) {
        /* the last client that could touch its memory is gone */
        st->used -= s->size;
        if (!s->refs) {
            slab_free_struct(s);
        }
    }
}

int64_t mn_store_expire(MnSlabStore *st, int64_t now_ms)
{
    GHashTableIter it;
    gpointer k;
    int64_t next = -1;
    GSList *dead = NULL;

    g_hash_table_iter_init(&it, st->orphans);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        MnSlab *s = k;
        if (s->linger_until_ms <= now_ms) {
            dead = g_slist_prepend(dead, s);
        } else if (next < 0 || s->linger_until_ms - now_ms < next) {
            next = s->linger_until_ms - now_ms;
        }
    }
    for (GSList *l = dead; l; l = l->next) {
        mn_store_destroy(st, l->data);
    }
    g_slist_free(dead);
    return next;
}

bool mn_slab_guarded(MnSlabStore *st, void (*fn)(void *opaque),
                     void *opaque)
{
    if (!st->data_dir) {
        fn(opaque);         /* a sealed memfd: it cannot shrink */
        return true;
    }
    kona_guard_init(false);
    return kona_guard_run(fn, opaque);
}

typedef struct MnZero {
    uint8_t *at;
    uint64_t len;
} MnZero;

static void slab_memset_zero(void *opaque)
{
    MnZero *z = opaque;

    memset(z->at, 0, z->len);
}

/*
 * A data file must stay fully allocated (a mapping of it must never
 * SIGBUS on a full disk): zero the range in place where the file system
 * can, else punch and allocate again (tmpfs), else write the zeroes.
 */
static int slab_zero_file(MnSlabStore *st, MnSlab *s, uint64_t off,
                          uint64_t len)
{
    if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) == 0) {
        return 0;
    }
    if (errno == EOPNOTSUPP &&
        fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) == 0) {
        return fallocate(s->fd, 0, (off_t)off, (off_t)len) == 0 ? 0 : -errno;
    }
    if (errno != EOPNOTSUPP) {
        return -errno;
    }
    {
        MnZero z = { s->mem + off, len };

        if (!mn_slab_guarded(st, slab_memset_zero, &z)) {
            return -EIO;        /* the file was cut under the mapping */
        }
    }
    return 0;
}

int mn_slab_zero(MnSlabStore *st, MnSlab *s, uint64_t off, uint64_t len)
{
    int r;

    if (!st->data_dir) {
        /* shmem: the pages go back; every mapping reads zeroes now */
        return fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         (off_t)off, (off_t)len) == 0 ? 0 : -errno;
    }
    r = slab_zero_file(st, s, off, len);
    mn_slab_dirty(s, off, len);
    return r;
}

int mn_slab_sync(MnSlabStore *st, MnSlab *s, bool whole)
{
    int r = 0, prev;

    if (!st->data_dir || s->freed) {
        return 0;
    }
    if (s->dirty_hi) {
        uint64_t lo = s->dirty_lo & ~(uint64_t)(KONA_PAGE_SIZE - 1);

        if (msync(s->mem + lo, s->dirty_hi - lo, MS_SYNC) < 0) {
            r = -errno;
        }
    }
    if (!r && whole && fdatasync(s->fd) < 0) {
        r = -errno;
    }
    if (r < 0) {
        /* keep the range: the next sync retries it */
        s->sync_err = r;
        return r;
    }
    s->dirty_lo = s->dirty_hi = 0;
    prev = s->sync_err;
    s->sync_err = 0;
    return prev;
}

int mn_store_sync_all(MnSlabStore *st)
{
    GHashTableIter it;
    gpointer v;
    int ret = 0;

    g_hash_table_iter_init(&it, st->by_id);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        int r = mn_slab_sync(st, v, false);
        ret = ret ? ret : r;
    }
    return ret;
}
