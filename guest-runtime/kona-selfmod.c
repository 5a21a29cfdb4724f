/*
 * kona-selfmod: code on the Kona node, rewritten in place and run again.
 *
 *   numactl --membind=1 kona-selfmod [NODE] [ROUNDS]
 *
 * Maps a page read-write-execute (under numactl --membind its memory is on
 * the Kona node), writes a tiny function into it ("mov eax, imm32; ret"),
 * calls it, then rewrites its immediate in place and calls it again, ROUNDS
 * times (default 2000), at a few places of the page.  Every call must return
 * the value just written: a device or emulator that kept running stale
 * translated code would return an old one.  With NODE, checks that the page
 * really is on that node (move_pages).  x86-64 only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef uint32_t (*Fn)(void);

/* "mov eax, imm32; ret" at @p. */
static void emit(volatile uint8_t *p, uint32_t imm)
{
    p[0] = 0xb8;
    p[1] = imm;
    p[2] = imm >> 8;
    p[3] = imm >> 16;
    p[4] = imm >> 24;
    p[5] = 0xc3;
}

/* The NUMA node of the page at @p, or -1 (move_pages without moving). */
static int node_of(void *p)
{
    void *pages[1] = { p };
    int status[1] = { -1 };

    if (syscall(SYS_move_pages, 0, 1UL, pages, NULL, status, 0) < 0) {
        return -1;
    }
    return status[0];
}

int main(int argc, char **argv)
{
    int want_node = argc > 1 ? atoi(argv[1]) : -1;
    long rounds = argc > 2 ? atol(argv[2]) : 2000;
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *code;
    int node;

    code = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) {
        fprintf(stderr, "kona-selfmod: mmap rwx: %s\n", strerror(errno));
        return 2;
    }
    memset(code, 0xcc, page);           /* int3 everywhere else */
    for (long i = 0; i < rounds; i++) {
        /* Four slots, each rewritten many times after it has run. */
        volatile uint8_t *slot = code + (i % 4) * 64;
        uint32_t want = (uint32_t)(i * 2654435761u) ^ 0x5a5a5a5a;
        uint32_t got;

        emit(slot, want);
        __builtin___clear_cache((char *)slot, (char *)slot + 6);
        got = ((Fn)(uintptr_t)slot)();
        if (got != want) {
            fprintf(stderr, "kona-selfmod: round %ld: the rewritten code "
                    "returned 0x%08x, expected 0x%08x (stale code ran)\n",
                    i, got, want);
            return 1;
        }
    }
    node = node_of(code);
    if (want_node >= 0 && node != want_node) {
        fprintf(stderr, "kona-selfmod: the code page is on node %d, not %d\n",
                node, want_node);
        return 1;
    }
    printf("kona-selfmod: %ld rewrites ran in their new form, code on "
           "node %d\n", rounds, node);
    return 0;
}
