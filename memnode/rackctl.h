/*
 * kona-rackctl's state, shared by its files: the rack, the log and the
 * links to memory nodes (rackctl-rack.c), memory nodes and the server
 * (rackctl-main.c) and allocations (rackctl-alloc.c).
 */
#ifndef RACKCTL_H
#define RACKCTL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "kona-link.h"
#include "kona-server.h"

typedef struct RcNode {
    uint64_t id;
    char *addr;
    uint64_t capacity;
    uint64_t used;
    bool alive;                 /* its registration connection is open */
    KonaLink *link;             /* our client connection to it */
} RcNode;

/* A connection's controller state (KonaConn.priv). */
typedef struct RcConn {
    KonaConn *kc;
    RcNode *node;               /* the memnode registered on this conn */
} RcConn;

typedef struct RcRack {
    KonaServerConfig cfg;
    KonaServer *ks;
    GPtrArray *nodes;           /* RcNode*, index = placement node index */
    GHashTable *allocs;         /* id -> RcAlloc* */
    GHashTable *named;          /* name -> RcAlloc* */
    GHashTable *leased;         /* RcAlloc* set: nobody holds them */
    uint64_t next_alloc;
    unsigned cursor;
    uint64_t slab_size;
    int64_t lease_ms;           /* unheld unnamed allocations live this long */
    bool verbose;
} RcRack;

extern RcRack rack;

void G_GNUC_PRINTF(1, 2) rc_log(const char *fmt, ...);

/* Our connection to memory node @n (made on first use). */
KonaLink *rc_node_link(RcNode *n, GError **errp);

/* ---- allocations (rackctl-alloc.c) ---- */
void rc_alloc_init(void);
/* false: a malformed frame (the connection closes) */
bool rc_op_alloc(RcConn *c, const KonaHdr *h, const uint8_t *p);
bool rc_op_reclaim(RcConn *c, const KonaHdr *h, const uint8_t *p);
bool rc_op_free(RcConn *c, const KonaHdr *h, const uint8_t *p);
/* @c is going away: its unnamed allocations start their lease. */
void rc_alloc_conn_gone(RcConn *c);
/* Free allocations whose lease ran out; ms until the next, or -1. */
int64_t rc_alloc_expire(void);

#endif /* RACKCTL_H */
