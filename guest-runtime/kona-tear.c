/*
 * kona-tear: do 16-byte accesses on the Kona node stay whole?
 *
 *   numactl --membind=1 kona-tear [SECONDS]
 *
 * One thread stores 16-byte values (movdqu) whose two halves are equal,
 * alternating two patterns, into one aligned slot; another loads the slot
 * with 16-byte loads and checks that both halves are equal.  A device that
 * serves a 16-byte access as two separately locked halves lets the loads
 * see half of one store and half of the next.  Prints the loads, the torn
 * ones, and exits 1 if any tore.  x86-64 only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <emmintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static volatile int stop;
static __m128i *slot;

/* One 16-byte access each, never merged or hoisted by the compiler. */
static inline void store16(__m128i v)
{
    __asm__ volatile("movdqu %1, %0" : "=m"(*slot) : "x"(v) : "memory");
}

static inline __m128i load16(void)
{
    __m128i v;

    __asm__ volatile("movdqu %1, %0" : "=x"(v) : "m"(*slot) : "memory");
    return v;
}

static void *writer(void *opaque)
{
    __m128i a = _mm_set1_epi64x(0x1111111111111111ll);
    __m128i b = _mm_set1_epi64x(0x2222222222222222ll);

    while (!stop) {
        store16(a);
        store16(b);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 5;
    uint64_t loads = 0, torn = 0;
    time_t end = time(NULL) + seconds;
    pthread_t t;

    slot = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (slot == MAP_FAILED) {
        perror("kona-tear: mmap");
        return 2;
    }
    *(volatile uint64_t *)slot = 0;
    pthread_create(&t, NULL, writer, NULL);
    while (time(NULL) < end) {
        for (int i = 0; i < 4096; i++) {
            __m128i v = load16();
            uint64_t lo = (uint64_t)_mm_cvtsi128_si64(v);
            uint64_t hi = (uint64_t)_mm_cvtsi128_si64(
                _mm_unpackhi_epi64(v, v));

            loads++;
            torn += lo != hi;
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("kona-tear: %llu 16-byte loads, %llu torn\n",
           (unsigned long long)loads, (unsigned long long)torn);
    return torn ? 1 : 0;
}
