/*
 * The daemons' epoll loop around the server core (see
 * kona-server-loop.h).
 */
#include "kona-server-loop.h"
#include "kona-sock.h"
#include "kona-util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS          256
#define ACCEPT_BATCH        64
#define ACCEPT_PAUSE_MS     100     /* out of descriptors: listener rests */
#define ACCEPT_LOG_MS       10000   /* ... and says so at most this often */

typedef enum WatchKind {
    WATCH_LISTENER,
    WATCH_CONN,
    WATCH_SIGNAL,
    WATCH_FD,
} WatchKind;

/* What an epoll event's data.ptr points to. */
typedef struct Watch {
    WatchKind kind;
    void *ptr;                  /* Listener, KonaConn or opaque */
    KonaWatchFn *fn;            /* WATCH_FD */
    int fd;
} Watch;

typedef struct Listener {
    Watch w;
    int fd;
    char *addr;                 /* as bound (real port) */
    char *unix_path;            /* to unlink on exit */
    bool auth_required;
    int64_t paused_until_ms;    /* 0: watched */
} Listener;

struct KonaLoop {
    int epfd;
    int sigfd;
    Watch sig_watch;
    GPtrArray *listeners;       /* Listener* */
    GPtrArray *watches;         /* Watch* of WATCH_FD */
    KonaTimerFn *timer;
    void *timer_opaque;
    int64_t accept_logged_ms;
    bool quit;
};

#define die(s, ...) kona_die((s)->cfg.prog, __VA_ARGS__)

static void epoll_set(KonaServer *s, int fd, uint32_t events, void *ptr,
                      int op)
{
    struct epoll_event ev = { .events = events, .data.ptr = ptr };

    if (epoll_ctl(s->loop->epfd, op, fd, &ev) < 0) {
        die(s, "epoll_ctl: %s", g_strerror(errno));
    }
}

static KonaLoop *loop_get(KonaServer *s)
{
    KonaLoop *lp = s->loop;
    sigset_t set;

    if (lp) {
        return lp;
    }
    lp = s->loop = g_new0(KonaLoop, 1);
    lp->listeners = g_ptr_array_new();
    lp->watches = g_ptr_array_new();
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    lp->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lp->sigfd < 0 || lp->epfd < 0) {
        die(s, "signalfd/epoll: %s", g_strerror(errno));
    }
    lp->sig_watch.kind = WATCH_SIGNAL;
    epoll_set(s, lp->sigfd, EPOLLIN, &lp->sig_watch, EPOLL_CTL_ADD);
    return lp;
}

/* ---- setup ---- */

bool kona_server_listen(KonaServer *s, const char *addr, bool auth_all,
                        GError **errp)
{
    KonaLoop *lp = loop_get(s);
    Listener *ls = g_new0(Listener, 1);
    bool loopback;

    ls->fd = kona_listen(addr, &ls->addr, &loopback, errp);
    if (ls->fd < 0) {
        g_free(ls);
        return false;
    }
    if (!loopback && !s->cfg.secret) {
        g_set_error(errp, KONA_ERROR, EACCES, "%s is reachable from other "
                    "hosts: give --secret-file so clients must "
                    "authenticate", ls->addr);
        close(ls->fd);
        g_free(ls->addr);
        g_free(ls);
        return false;
    }
    if (g_str_has_prefix(addr, "unix:")) {
        ls->unix_path = g_strdup(addr + 5);
    }
    ls->auth_required = !loopback || auth_all;
    ls->w.kind = WATCH_LISTENER;
    ls->w.ptr = ls;
    epoll_set(s, ls->fd, EPOLLIN, &ls->w, EPOLL_CTL_ADD);
    g_ptr_array_add(lp->listeners, ls);
    return true;
}

char *kona_server_addrs(KonaServer *s)
{
    GString *addrs = g_string_new(NULL);
    KonaLoop *lp = loop_get(s);

    for (guint i = 0; i < lp->listeners->len; i++) {
        Listener *ls = g_ptr_array_index(lp->listeners, i);
        g_string_append_printf(addrs, "%s%s", i ? " " : "", ls->addr);
    }
    return g_string_free(addrs, FALSE);
}

const char *kona_server_first_addr(KonaServer *s)
{
    KonaLoop *lp = loop_get(s);

    return lp->listeners->len ?
           ((Listener *)g_ptr_array_index(lp->listeners, 0))->addr : NULL;
}

void kona_server_watch(KonaServer *s, int fd, KonaWatchFn *fn, void *opaque)
{
    KonaLoop *lp = loop_get(s);
    Watch *w = g_new0(Watch, 1);

    w->kind = WATCH_FD;
    w->fn = fn;
    w->ptr = opaque;
    w->fd = fd;
    g_ptr_array_add(lp->watches, w);
    epoll_set(s, fd, EPOLLIN, w, EPOLL_CTL_ADD);
}

void kona_server_unwatch(KonaServer *s, int fd)
{
    KonaLoop *lp = loop_get(s);

    for (guint i = 0; i < lp->watches->len; i++) {
        Watch *w = g_ptr_array_index(lp->watches, i);
        if (w->fd == fd) {
            epoll_ctl(lp->epfd, EPOLL_CTL_DEL, fd, NULL);
            g_ptr_array_remove_index_fast(lp->watches, i);
            g_free(w);
            return;
        }
    }
}

void kona_server_set_timer(KonaServer *s, KonaTimerFn *fn, void *opaque)
{
    KonaLoop *lp = loop_get(s);

    lp->timer = fn;
    lp->timer_opaque = opaque;
}

/* ---- clients ---- */

static void conn_close(KonaConn *c, const char *why)
{
    if (c->srv->cfg.verbose) {
        fprintf(stderr, "%s: %s disconnected (%s)\n", c->srv->cfg.prog,
                c->peer, why);
    }
    /* closing the descriptor takes it out of the epoll set */
    kona_conn_free(c);
}

/*
 * Process buffered requests and send the replies.  Requests held back by
 * the limit are processed as soon as the replies before them are out, in
 * the same turn: nobody would wake us for bytes already read.  So a turn
 * ends without progress only if there was room for replies: then what is
 * left is part of a frame, and more input will wake us.
 */
static void conn_run(KonaConn *c)
{
    uint32_t ev = 0;
    int r;

    for (;;) {
        size_t before = c->in_len - c->in_off;
        bool had_room = kona_conn_out_room(c);

        if (!kona_conn_process(c)) {
            /*
             * answers to the requests before the bad frame still go out
             * if the socket takes them now; the connection closes anyway
             */
            kona_conn_flush(c);
            conn_close(c, "protocol error");
            return;
        }
        r = kona_conn_flush(c);
        if (r < 0) {
            conn_close(c, g_strerror(-r));
            return;
        }
        if (r == 1 || c->closing || c->in_len == c->in_off ||
            (had_room && c->in_len - c->in_off == before)) {
            break;
        }
    }
    if (c->closing && r == 0) {
        conn_close(c, "closed after refusal");
        return;
    }
    if (kona_conn_want_read(c)) {
        ev |= EPOLLIN;
    }
    if (r == 1) {
        ev |= EPOLLOUT;
    }
    if (ev != c->events) {
        epoll_set(c->srv, c->fd, ev, c->watch, EPOLL_CTL_MOD);
        c->events = ev;
    }
}

static void conn_event(KonaConn *c, uint32_t events)
{
    if (events & EPOLLIN) {
        size_t space;
        uint8_t *p = kona_conn_in_space(c, &space);
        ssize_t n = space ? read(c->fd, p, space) : -1;

        if (n == 0) {
            conn_close(c, "end of stream");
            return;
        }
        if (n < 0 && space && errno != EAGAIN && errno != EINTR) {
            conn_close(c, g_strerror(errno));
            return;
        }
        if (n > 0) {
            kona_conn_in_commit(c, (size_t)n);
        }
    } else if (events & (EPOLLERR | EPOLLHUP)) {
        conn_close(c, "hang-up");
        return;
    }
    conn_run(c);
}

/* Make room for a new connection: drop the oldest one still in HELLO. */
static bool evict_handshake(KonaServer *s, const char *why)
{
    KonaConn *c = g_queue_peek_head(&s->handshaking);

    if (!c) {
        return false;
    }
    s->stats.evicted++;
    if (s->cfg.verbose) {
        fprintf(stderr, "%s: dropping %s, still in its handshake (%s)\n",
                s->cfg.prog, c->peer, why);
    }
    conn_close(c, why);
    return true;
}

/* Out of descriptors and nothing to drop: rest the listener a moment. */
static void listener_pause(KonaServer *s, Listener *ls, int err)
{
    KonaLoop *lp = s->loop;
    int64_t now = kona_now_ms();

    epoll_ctl(lp->epfd, EPOLL_CTL_DEL, ls->fd, NULL);
    ls->paused_until_ms = now + ACCEPT_PAUSE_MS;
    if (!lp->accept_logged_ms || now - lp->accept_logged_ms >= ACCEPT_LOG_MS) {
        fprintf(stderr, "%s: cannot accept on %s: %s (%u connections); "
                "new clients wait\n", s->cfg.prog, ls->addr, g_strerror(err),
                kona_server_conns(s));
        lp->accept_logged_ms = now;
    }
}

static void accept_clients(KonaServer *s, Listener *ls)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        g_autofree char *peer = NULL;
        KonaConn *c;
        Watch *w;

        if (fd < 0) {
            int err = errno;

            if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
                err == ENOMEM) {
                if (evict_handshake(s, "out of descriptors")) {
                    continue;
                }
                listener_pause(s, ls, err);
            } else if (err != EAGAIN && err != EINTR &&
                       err != ECONNABORTED) {
                fprintf(stderr, "%s: accept on %s: %s\n", s->cfg.prog,
                        ls->addr, g_strerror(err));
            }
            return;
        }
        if (s->handshaking.length >= s->cfg.max_handshakes) {
            evict_handshake(s, "too many handshakes");
        }
        kona_sock_tune(fd);
        peer = g_strdup_printf("client %" G_GUINT64_FORMAT " on %s",
                               s->stats.conns_total + 1, ls->addr);
        /* descriptors only travel over unix sockets */
        c = kona_conn_new(s, fd, peer, ls->auth_required,
                          ls->unix_path != NULL);
        w = g_new0(Watch, 1);
        w->kind = WATCH_CONN;
        w->ptr = c;
        c->watch = w;
        c->events = EPOLLIN;
        epoll_set(s, fd, EPOLLIN, w, EPOLL_CTL_ADD);
        if (s->cfg.verbose) {
            fprintf(stderr, "%s: %s connected\n", s->cfg.prog, peer);
        }
    }
}

/* Watch paused listeners again; returns ms until the next, or -1. */
static int64_t listeners_resume(KonaServer *s)
{
    KonaLoop *lp = s->loop;
    int64_t now = kona_now_ms(), next = -1;

    for (guint i = 0; i < lp->listeners->len; i++) {
        Listener *ls = g_ptr_array_index(lp->listeners, i);

        if (!ls->paused_until_ms) {
            continue;
        }
        if (ls->paused_until_ms <= now) {
            ls->paused_until_ms = 0;
            epoll_set(s, ls->fd, EPOLLIN, &ls->w, EPOLL_CTL_ADD);
        } else if (next < 0 || ls->paused_until_ms - now < next) {
            next = ls->paused_until_ms - now;
        }
    }
    return next;
}

/*
 * One step of each busy connection's unfinished frame, after the turn's
 * events: a long request shares the loop with everyone else's.
 */
static void run_busy(KonaServer *s)
{
    for (guint n = s->busy.length; n > 0 && s->busy.head; n--) {
        KonaConn *c = s->busy.head->data;

        if (kona_conn_resume(c)) {
            conn_run(c);        /* its reply, then its later frames */
        }
    }
}

static int64_t min_timeout(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : MIN(a, b);
}

void kona_server_run(KonaServer *s)
{
    KonaLoop *lp = loop_get(s);
    struct epoll_event ev[MAX_EVENTS];

    while (!lp->quit) {
        g_autoptr(GPtrArray) expired = g_ptr_array_new();
        int64_t timeout = -1;
        int n;

        if (lp->timer) {
            timeout = lp->timer(lp->timer_opaque);
        }
        timeout = min_timeout(timeout,
                              kona_server_handshake_expired(s, expired));
        for (guint i = 0; i < expired->len; i++) {
            conn_close(g_ptr_array_index(expired, i), "no handshake in time");
        }
        timeout = min_timeout(timeout, listeners_resume(s));
        /* With work in hand, only look for others' requests. */
        n = epoll_wait(lp->epfd, ev, MAX_EVENTS, s->busy.length ? 0 :
                       timeout < 0 ? -1 : (int)MIN(timeout + 1, 60000));
        if (n < 0 && errno != EINTR) {
            die(s, "epoll_wait: %s", g_strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            Watch *w = ev[i].data.ptr;
            WatchKind kind = w->kind;   /* a handler may free @w */

            switch (kind) {
            case WATCH_LISTENER:
                accept_clients(s, w->ptr);
                break;
            case WATCH_CONN:
                conn_event(w->ptr, ev[i].events);
                break;
            case WATCH_FD:
                w->fn(w->ptr, ev[i].events);
                break;
            case WATCH_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(lp->sigfd, &si, sizeof(si)) == sizeof(si)) {
                    fprintf(stderr, "%s: %s, shutting down\n", s->cfg.prog,
                            strsignal((int)si.ssi_signo));
                    lp->quit = true;
                }
                break;
            }
            }
            /*
             * a handler may have closed connections later events point
             * to: a closed connection's watch is freed, so stop here and
             * let epoll report what is still pending
             */
            if (kind != WATCH_CONN && kind != WATCH_SIGNAL) {
                break;
            }
        }
        run_busy(s);
    }
}

void kona_server_shutdown(KonaServer *s)
{
    KonaLoop *lp = s->loop;
    GList *l;

    if (!lp) {
        return;
    }
    for (guint i = 0; i < lp->listeners->len; i++) {
        Listener *ls = g_ptr_array_index(lp->listeners, i);
        close(ls->fd);
        if (ls->unix_path) {
            unlink(ls->unix_path);
        }
        g_free(ls->unix_path);
        g_free(ls->addr);
        g_free(ls);
    }
    g_ptr_array_free(lp->listeners, TRUE);
    for (guint i = 0; i < lp->watches->len; i++) {
        g_free(g_ptr_array_index(lp->watches, i));
    }
    g_ptr_array_free(lp->watches, TRUE);
    /* give every client what was already answered, without waiting */
    for (l = s->ready.head; l; l = l->next) {
        kona_conn_flush(l->data);
    }
    while (s->handshaking.head) {
        kona_conn_free(s->handshaking.head->data);
    }
    while (s->ready.head) {
        kona_conn_free(s->ready.head->data);
    }
    close(lp->epfd);
    close(lp->sigfd);
    g_free(lp);
    s->loop = NULL;
}
