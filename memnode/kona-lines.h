/*
 * Line-mask codec: moving the dirty 64-byte lines of 4 KiB pages in and
 * out of the packed form WRITE_LINES carries on the wire (see
 * kona-proto.h).  Pure functions, no I/O, shared by the device (packing on
 * eviction) and the memnode (unpacking into slab memory).
 *
 * A mask describes one page: bit j set means line j (bytes 64*j ..
 * 64*j+63) is present.  Packed data holds the present lines in ascending
 * order with nothing in between.
 */
#ifndef KONA_LINES_H
#define KONA_LINES_H

#include <stddef.h>
#include <stdint.h>

/* Number of lines set in @mask. */
static inline unsigned kona_lines_count(uint64_t mask)
{
    return (unsigned)__builtin_popcountll(mask);
}

/* Packed bytes for @npages pages described by @masks. */
size_t kona_lines_bytes(const uint64_t *masks, uint32_t npages);

/* Copy the lines of @page selected by @mask to @out; returns bytes written. */
size_t kona_lines_pack(const void *page, uint64_t mask, void *out);

/* Copy packed lines from @in into @page where @mask says; returns bytes read. */
size_t kona_lines_unpack(void *page, uint64_t mask, const void *in);

/* Copy the lines of @src selected by @mask to the same places of @dst. */
void kona_lines_copy(void *dst, const void *src, uint64_t mask);

/* The same for @npages consecutive 4 KiB pages starting at @pages. */
size_t kona_lines_pack_pages(const void *pages, const uint64_t *masks,
                             uint32_t npages, void *out);
size_t kona_lines_unpack_pages(void *pages, const uint64_t *masks,
                               uint32_t npages, const void *in);

/*
 * Mask of the lines in which two 4 KiB pages differ: how a write-back
 * path that keeps a clean twin of a page finds its dirty lines.
 */
uint64_t kona_lines_diff(const void *a, const void *b);

#endif /* KONA_LINES_H */
