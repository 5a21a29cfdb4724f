/*
 * Line-mask codec.  Runs of adjacent set bits are copied with one memcpy
 * each: a fully dirty page is a single 4 KiB copy, a sparse one a few
 * 64-byte copies.
 */
#include "kona-lines.h"
#include "kona-proto.h"

#include <string.h>

/*
 * Take the lowest run of consecutive set bits out of *@mask: returns its
 * first line and stores its length in *@len.  Both directions use it.
 */
static inline unsigned next_run(uint64_t *mask, unsigned *len)
{
    unsigned first = (unsigned)__builtin_ctzll(*mask);
    uint64_t shifted = *mask >> first;
    /* ~shifted has its lowest set bit just past the run */
    unsigned n = shifted == ~0ull ? 64 - first
                                  : (unsigned)__builtin_ctzll(~shifted);

    *len = n;
    if (first + n >= 64) {
        *mask = 0;
    } else {
        *mask &= ~0ull << (first + n);
    }
    return first;
}

size_t kona_lines_bytes(const uint64_t *masks, uint32_t npages)
{
    size_t lines = 0;

    for (uint32_t i = 0; i < npages; i++) {
        lines += kona_lines_count(masks[i]);
    }
    return lines * KONA_LINE_SIZE;
}

size_t kona_lines_pack(const void *page, uint64_t mask, void *out)
{
    const uint8_t *src = page;
    uint8_t *dst = out;

    while (mask) {
        unsigned len;
        unsigned first = next_run(&mask, &len);

        memcpy(dst, src + first * KONA_LINE_SIZE, len * KONA_LINE_SIZE);
        dst += len * KONA_LINE_SIZE;
    }
    return (size_t)(dst - (uint8_t *)out);
}

void kona_lines_copy(void *dst, const void *src, uint64_t mask)
{
    while (mask) {
        unsigned len;
        unsigned first = next_run(&mask, &len);

        memcpy((uint8_t *)dst + first * KONA_LINE_SIZE,
               (const uint8_t *)src + first * KONA_LINE_SIZE,
               len * KONA_LINE_SIZE);
    }
}

size_t kona_lines_unpack(void *page, uint64_t mask, const void *in)
{
    uint8_t *dst = page;
    const uint8_t *src = in;

    while (mask) {
        unsigned len;
        unsigned first = next_run(&mask, &len);

        memcpy(dst + first * KONA_LINE_SIZE, src, len * KONA_LINE_SIZE);
        src += len * KONA_LINE_SIZE;
    }
    return (size_t)(src - (const uint8_t *)in);
}

size_t kona_lines_pack_pages(const void *pages, const uint64_t *masks,
                             uint32_t npages, void *out)
{
    size_t n = 0;

    for (uint32_t i = 0; i < npages; i++) {
        n += kona_lines_pack((const uint8_t *)pages + (size_t)i * KONA_PAGE_SIZE,
                             masks[i], (uint8_t *)out + n);
    }
    return n;
}

size_t kona_lines_unpack_pages(void *pages, const uint64_t *masks,
                               uint32_t npages, const void *in)
{
    size_t n = 0;

    for (uint32_t i = 0; i < npages; i++) {
        n += kona_lines_unpack((uint8_t *)pages + (size_t)i * KONA_PAGE_SIZE,
                               masks[i], (const uint8_t *)in + n);
    }
    return n;
}

uint64_t kona_lines_diff(const void *a, const void *b)
{
    const uint8_t *pa = a, *pb = b;
    uint64_t mask = 0;

    for (unsigned j = 0; j < KONA_LINES_PER_PAGE; j++) {
        if (memcmp(pa + j * KONA_LINE_SIZE, pb + j * KONA_LINE_SIZE,
                   KONA_LINE_SIZE)) {
            mask |= 1ull << j;
        }
    }
    return mask;
}
