/*
 * Addresses and sockets: "unix:/path" and "tcp:host:port" ("tcp:[::1]:7077"
 * for IPv6), listening and connecting with a timeout.
 */
#ifndef KONA_SOCK_H
#define KONA_SOCK_H

#include <glib.h>
#include <stdbool.h>

typedef enum KonaAddrKind {
    KONA_ADDR_UNIX,
    KONA_ADDR_TCP,
} KonaAddrKind;

typedef struct KonaAddr {
    KonaAddrKind kind;
    char *path;                 /* unix */
    char *host;                 /* tcp, without brackets */
    char *port;                 /* tcp */
} KonaAddr;

bool kona_addr_parse(const char *s, KonaAddr *a, GError **errp);
void kona_addr_clear(KonaAddr *a);

/*
 * Listen on @addr; returns a non-blocking fd or -errno.  *@bound gets the
 * address clients should use (the real port when @addr asked for port 0)
 * and *@loopback whether only this host can reach it (unix sockets and
 * TCP bound to 127.0.0.0/8 or ::1).  A stale unix socket file nobody
 * listens on is replaced; a live one is an error.
 */
int kona_listen(const char *addr, char **bound, bool *loopback,
                GError **errp);

/*
 * Connect to @addr within @timeout_ms (0: the kernel's default); returns a
 * connected, blocking, close-on-exec fd with TCP_NODELAY, or -errno.
 */
int kona_connect(const char *addr, unsigned timeout_ms, GError **errp);

/*
 * Socket options for a data connection: no Nagle, roomy buffers, and on
 * TCP a peer that vanished (a partition, a lost close) is dropped within
 * KONA_SOCK_DEAD_S seconds (keepalive 5 s + 3 probes 2 s apart; sent
 * data unacknowledged as long).
 */
#define KONA_SOCK_DEAD_S        11
void kona_sock_tune(int fd);

#endif /* KONA_SOCK_H */
