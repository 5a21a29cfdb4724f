/*
 * kona-memnode protocol engine: slabs and the data path, behind the
 * shared server core (kona-server.h).  No event loop and no listening
 * here (memnode-main.c has those), so the fuzz target can drive a
 * connection from a buffer.
 */
#ifndef MEMNODE_SERVER_H
#define MEMNODE_SERVER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "kona-proto.h"
#include "kona-server.h"
#include "memnode-slab.h"

typedef struct MnConfig {
    KonaServerConfig net;       /* connections, handshake, limits */
    uint64_t capacity;          /* bytes of slabs this node hands out */
    const char *data_dir;       /* NULL: anonymous memory */
    int64_t linger_ms;          /* orphaned unnamed slabs live this long */
    unsigned max_client_slabs;  /* slabs one connection may have open */
    bool no_shared;             /* never offer KONA_CAP_SHARED */
} MnConfig;

typedef struct MnServer {
    MnConfig cfg;
    KonaServer *ks;
    MnSlabStore *store;
    int64_t start_ms;
    uint64_t stats[KONA_STAT__COUNT];
} MnServer;

/* A connection's memnode state (KonaConn.priv). */
typedef struct MnConn {
    KonaConn *kc;
    MnServer *srv;
    GHashTable *open;           /* slab id -> MnSlab*, holding a ref */
    GHashTable *mapped;         /* MnSlab* set, holding a map ref */
    MnSlab *last;               /* last slab used: skips the hash lookup */
    /* A ZERO under way (KonaConn busy): [off, end) of the slab to go. */
    struct {
        KonaHdr h;
        uint64_t slab_id, off, end;
    } zero;
} MnConn;

MnServer *mn_server_new(const MnConfig *cfg, GError **errp);
void mn_server_free(MnServer *srv);

/* Periodic work: expire orphaned slabs.  Returns ms until next, or -1. */
int64_t mn_server_tick(MnServer *srv);

#endif /* MEMNODE_SERVER_H */
