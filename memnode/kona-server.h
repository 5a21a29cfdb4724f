/*
 * The server core kona-memnode and kona-rackctl share: connections, their
 * input buffer and framing, the output queue, the HELLO/AUTH handshake
 * and its deadline, and the limits (clients past the handshake,
 * connections still in it, reply cost queued per connection).  A daemon
 * supplies what a frame means after the handshake (KonaServerOps).
 *
 * No sockets here, so the fuzz target can drive a connection from a
 * buffer; kona-server-loop.c has the listeners and the epoll loop.
 */
#ifndef KONA_SERVER_H
#define KONA_SERVER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "kona-outq.h"
#include "kona-proto.h"

typedef struct KonaServer KonaServer;
typedef struct KonaConn KonaConn;
typedef struct KonaLoop KonaLoop;

typedef enum KonaConnState {
    KONA_CONN_HELLO,            /* waiting for HELLO */
    KONA_CONN_AUTH,             /* waiting for AUTH */
    KONA_CONN_READY,
} KonaConnState;

typedef struct KonaServerOps {
    /* A new connection: returns the daemon's state for it (c->priv). */
    void *(*conn_new)(KonaConn *c);
    /* The KONA_CAP_* of @asked this server grants @c in HELLO. */
    uint64_t (*caps)(KonaConn *c, uint64_t asked);
    /* A frame after the handshake; false if malformed (close @c). */
    bool (*dispatch)(KonaConn *c, const KonaHdr *h, const uint8_t *p);
    /* @c is going away, its queued replies dropped: free c->priv. */
    void (*conn_gone)(KonaConn *c);
    /*
     * A frame whose work would hold the loop too long (a ZERO of a large
     * range) does a first step, marks its connection busy
     * (kona_conn_set_busy) and returns; the loop then calls this once a
     * turn, serving the other clients in between, until it returns true:
     * done, reply queued.  The connection's later frames wait for it.
     */
    bool (*resume)(KonaConn *c);
} KonaServerOps;

typedef struct KonaServerConfig {
    const char *prog;           /* "kona-memnode", for messages */
    unsigned max_clients;       /* connections past the handshake */
    unsigned max_handshakes;    /* connections still in the handshake */
    uint64_t max_inflight;      /* reply cost queued per connection */
    uint32_t max_io;            /* announced in HELLO (0: no data ops) */
    int64_t handshake_ms;       /* HELLO (and AUTH) must be done by then */
    GBytes *secret;             /* shared secret, NULL if none */
    bool verbose;
} KonaServerConfig;

typedef struct KonaServerStats {
    uint64_t ops;               /* frames dispatched */
    uint64_t bad_frames;        /* connections closed for malformed frames */
    uint64_t refused;           /* requests answered with an error */
    uint64_t conns_total;       /* connections accepted */
    uint64_t evicted;           /* handshakes dropped for newer ones */
    uint64_t full;              /* clients refused at --max-clients */
} KonaServerStats;

struct KonaServer {
    KonaServerConfig cfg;
    const KonaServerOps *ops;
    void *opaque;               /* the daemon's */
    uint64_t node_id;           /* random per server instance */
    GQueue handshaking;         /* KonaConn.link, in accept order */
    GQueue ready;               /* KonaConn.link */
    GQueue busy;                /* KonaConn.busy_link, in turn */
    KonaServerStats stats;
    KonaLoop *loop;             /* listeners and epoll, or NULL */
};

struct KonaConn {
    KonaServer *srv;
    int fd;                     /* closed by kona_conn_free; -1: none */
    char *peer;                 /* for messages */
    bool auth_required;
    bool unix_sock;             /* descriptors may travel (SCM_RIGHTS) */
    uint64_t caps;              /* negotiated in HELLO */
    KonaConnState state;
    int64_t handshake_deadline_ms;
    uint8_t nonce[KONA_NONCE_SIZE];
    char name[32];              /* client's name from HELLO */

    uint8_t *in;                /* received bytes [in_off, in_len) */
    size_t in_off, in_len, in_cap;
    KonaOutq out;
    bool closing;               /* close once the queued replies are out */
    bool busy;                  /* a frame's work goes on (ops->resume) */
    GList busy_link;            /* in srv->busy while busy */

    GList link;                 /* in srv->handshaking or srv->ready */
    uint32_t events;            /* epoll events registered (loop) */
    void *watch;                /* the loop's */
    void *priv;                 /* the daemon's (ops->conn_new) */
};

/* @cfg is copied (the secret referenced); no listeners yet. */
KonaServer *kona_server_new(const KonaServerConfig *cfg,
                            const KonaServerOps *ops, void *opaque);
/* Closes every connection (and the loop, if any). */
void kona_server_free(KonaServer *s);
/* Connections, in the handshake or past it. */
unsigned kona_server_conns(const KonaServer *s);

KonaConn *kona_conn_new(KonaServer *s, int fd, const char *peer,
                        bool auth_required, bool unix_sock);
void kona_conn_free(KonaConn *c);

/* Free space for the next read() into the input buffer (0 if full). */
uint8_t *kona_conn_in_space(KonaConn *c, size_t *space);
void kona_conn_in_commit(KonaConn *c, size_t n);
/*
 * Process buffered frames (stops early while the queued replies cost
 * more than the limit, and while a frame's work goes on).  Returns false
 * if the connection broke the protocol and must be closed now.
 */
bool kona_conn_process(KonaConn *c);
/*
 * True if the queued replies leave room for more: their cost is under
 * --max-inflight and they hold fewer than KONA_MAX_QUEUED_FDS descriptors.
 */
bool kona_conn_out_room(const KonaConn *c);
/* The frame being dispatched goes on over later turns (ops->resume). */
void kona_conn_set_busy(KonaConn *c);
/*
 * One more step of @c's unfinished frame; true once it is done (its
 * reply queued, the connection no longer busy).
 */
bool kona_conn_resume(KonaConn *c);
/* True if the connection may read more requests now. */
bool kona_conn_want_read(const KonaConn *c);
/* Send queued replies; 0 all sent, 1 socket full, -errno. */
int kona_conn_flush(KonaConn *c);

/* Queue the reply to @h with @len payload bytes; returns the payload. */
uint8_t *kona_reply(KonaConn *c, const KonaHdr *h, uint32_t len);
/* Refuse @h with -@err and a message (logged with --verbose). */
void G_GNUC_PRINTF(4, 5)
kona_reply_err(KonaConn *c, const KonaHdr *h, int err, const char *fmt, ...);
/* A protocol violation: logs it and returns false (close the conn). */
bool kona_bad_frame(KonaConn *c, const KonaHdr *h, const char *why);

/*
 * Connections that have not finished the handshake in time: appended to
 * @expired (the caller closes them).  Returns ms until the next deadline,
 * or -1.
 */
int64_t kona_server_handshake_expired(KonaServer *s, GPtrArray *expired);

#endif /* KONA_SERVER_H */
