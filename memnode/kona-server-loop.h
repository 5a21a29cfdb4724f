/*
 * The daemons' event loop around the server core (kona-server.h):
 * listeners, accept with the connection budgets, one epoll loop, signals,
 * handshake deadlines and the daemon's own timers and descriptors.
 *
 * Level-triggered epoll: every readable client gets one read per loop
 * turn and its complete frames are processed and answered with one
 * writev, so a client that floods requests cannot starve the others, and
 * a client whose replies pile up (more than --max-inflight of cost
 * queued) is not read from until it drains them.  A request done in
 * steps (kona_conn_set_busy: a large ZERO) gets one step a turn, after
 * the turn's events, so it cannot hold the others either.
 *
 * Connections still in the handshake have a budget of their own
 * (max_handshakes): when it is full the oldest of them is dropped for the
 * new one, so idle sockets can neither lock clients out nor use up the
 * descriptors.  When accept4 fails for want of descriptors (EMFILE,
 * ENFILE), an idle handshake is dropped to make room, or else the
 * listener is not watched for a moment (a level-triggered listener with
 * pending connections would otherwise wake the loop at once, forever).
 */
#ifndef KONA_SERVER_LOOP_H
#define KONA_SERVER_LOOP_H

#include "kona-server.h"

/* ms until it wants to be called again, or -1. */
typedef int64_t KonaTimerFn(void *opaque);
/* @events (EPOLLIN...) happened on a watched descriptor. */
typedef void KonaWatchFn(void *opaque, uint32_t events);

/*
 * Listen on @addr.  A listener reachable from other hosts needs the
 * secret; it and (with @auth_all) every listener require AUTH.  Sets up
 * the loop (and blocks SIGTERM, SIGINT, SIGHUP for it) on first use.
 */
bool kona_server_listen(KonaServer *s, const char *addr, bool auth_all,
                        GError **errp);
/* The bound addresses, space separated (real ports). */
char *kona_server_addrs(KonaServer *s);
const char *kona_server_first_addr(KonaServer *s);

/* Watch @fd for input (until kona_server_unwatch or the loop ends). */
void kona_server_watch(KonaServer *s, int fd, KonaWatchFn *fn, void *opaque);
void kona_server_unwatch(KonaServer *s, int fd);
/* Call @fn each loop turn; it says when it wants to be called again. */
void kona_server_set_timer(KonaServer *s, KonaTimerFn *fn, void *opaque);

/* Serve until SIGTERM, SIGINT or SIGHUP. */
void kona_server_run(KonaServer *s);
/*
 * Close the listeners (removing unix socket files), send every client
 * what was already answered without waiting, and close them.
 */
void kona_server_shutdown(KonaServer *s);

#endif /* KONA_SERVER_LOOP_H */
