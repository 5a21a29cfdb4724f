/*
 * kona-memnode protocol engine: connections, frame parsing and dispatch.
 * No event loop and no listening here (memnode-main.c has those), so the
 * fuzz target can drive a connection from a buffer.
 */
#ifndef MEMNODE_SERVER_H
#define MEMNODE_SERVER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "kona-outq.h"
#include "kona-proto.h"
#include "memnode-slab.h"

typedef struct MnConfig {
    uint64_t capacity;          /* bytes of slabs this node hands out */
    const char *data_dir;       /* NULL: anonymous memory */
    int64_t linger_ms;          /* orphaned unnamed slabs live this long */
    unsigned max_clients;
    unsigned max_client_slabs;  /* slabs one connection may have open */
    uint64_t max_inflight;      /* reply bytes queued per connection */
    GBytes *secret;             /* shared secret, NULL if none */
    int64_t handshake_ms;       /* HELLO (and AUTH) must be done by then */
    bool no_shared;             /* never offer KONA_CAP_SHARED */
    bool verbose;
} MnConfig;

typedef struct MnServer {
    MnConfig cfg;
    MnSlabStore *store;
    GQueue conns;               /* MnConn.link */
    GQueue ext_conns;           /* MnConn.ext_link: replies point into slabs */
    uint64_t node_id;
    int64_t start_ms;
    uint64_t stats[KONA_STAT__COUNT];
} MnServer;

typedef enum MnConnState {
    MN_CONN_HELLO,              /* waiting for HELLO */
    MN_CONN_AUTH,               /* waiting for AUTH */
    MN_CONN_READY,
} MnConnState;

typedef struct MnConn {
    MnServer *srv;
    int fd;
    char *peer;                 /* for messages */
    bool auth_required;
    bool unix_sock;             /* may offer KONA_CAP_SHARED (set by caller) */
    uint64_t caps;              /* negotiated in HELLO */
    MnConnState state;
    int64_t handshake_deadline_ms;
    uint8_t nonce[KONA_NONCE_SIZE];
    char name[32];              /* client's name from HELLO */

    uint8_t *in;                /* received bytes [in_off, in_len) */
    size_t in_off, in_len, in_cap;
    KonaOutq out;

    GHashTable *open;           /* slab id -> MnSlab*, holding a ref */
    GHashTable *mapped;         /* MnSlab* set, holding a map ref */
    MnSlab *last;               /* last slab used: skips the hash lookup */

    GList link, ext_link;
    bool in_ext;
    bool closing;               /* close once the queued replies are out */
    uint32_t events;            /* epoll events registered (main loop) */
    void *opaque;               /* the main loop's wrapper */
} MnConn;

MnServer *mn_server_new(const MnConfig *cfg, GError **errp);
void mn_server_free(MnServer *srv);

MnConn *mn_conn_new(MnServer *srv, int fd, const char *peer,
                    bool auth_required);
void mn_conn_free(MnConn *c);

/* Free space for the next read() into the input buffer (0 if full). */
uint8_t *mn_conn_in_space(MnConn *c, size_t *space);
void mn_conn_in_commit(MnConn *c, size_t n);

/*
 * Process buffered frames (stops early while too many reply bytes are
 * queued).  Returns false if the connection broke the protocol and must
 * be closed now.
 */
bool mn_conn_process(MnConn *c);

/* True if the connection may read more requests now. */
bool mn_conn_want_read(MnConn *c);

/* Send queued replies; 0 all sent, 1 socket full, -errno. */
int mn_conn_flush(MnConn *c);

/* Periodic work: expire orphaned slabs.  Returns ms until next, or -1. */
int64_t mn_server_tick(MnServer *srv);

/*
 * Connections that have not finished the handshake in time: appended to
 * @expired (the caller closes them).  Returns ms until the next deadline,
 * or -1.
 */
int64_t mn_server_handshake_expired(MnServer *srv, GPtrArray *expired);

#endif /* MEMNODE_SERVER_H */
