/*
 * kona-memnode: the memory node.  One process, one thread, one epoll
 * loop; the protocol itself is in memnode-server.c.
 *
 * Level-triggered epoll: every readable client gets one read per loop
 * iteration and its complete frames are processed and answered with one
 * writev, so a client that floods requests cannot starve the others, and
 * a client whose replies pile up (more than --max-inflight bytes queued)
 * is not read from until it drains them.
 */
#include "kona-auth.h"
#include "kona-link.h"
#include "kona-rack.h"
#include "kona-sock.h"
#include "kona-util.h"
#include "memnode-server.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS          256
#define REGISTER_RETRY_MS   1000

typedef enum WatchKind {
    WATCH_LISTENER,
    WATCH_CONN,
    WATCH_SIGNAL,
    WATCH_CONTROLLER,
} WatchKind;

/* What an epoll event's data.ptr points to: the first member of each. */
typedef struct Watch {
    WatchKind kind;
} Watch;

typedef struct Listener {
    Watch w;
    int fd;
    char *addr;                 /* as bound (real port) */
    char *unix_path;            /* to unlink on exit */
    bool auth_required;
} Listener;

typedef struct ConnWatch {
    Watch w;
    MnConn *c;
} ConnWatch;

typedef struct Memnode {
    int epfd;
    MnServer *srv;
    GPtrArray *listeners;
    Watch sig_watch;
    int sigfd;
    bool quit;

    /* rack controller registration */
    char *controller;
    char *advertise;
    KonaLink *ctl;
    Watch ctl_watch;
    int64_t ctl_retry_ms;       /* when to try again; 0: registered */
} Memnode;

static struct {
    char **listen;
    char *data_dir;
    char *capacity;
    int linger_s;
    int max_clients;
    int max_client_slabs;
    char *max_inflight;
    int handshake_s;
    char *secret_file;
    gboolean auth_all;
    char *controller;
    char *advertise;
    int ready_fd;
    char *pid_file;
    gboolean no_shared;
    gboolean verbose;
} opt = {
    .linger_s = 60,
    .max_clients = 1024,
    .max_client_slabs = 4096,
    .handshake_s = 10,
    .ready_fd = -1,
};

static GOptionEntry entries[] = {
    { "listen", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &opt.listen,
      "Listen on ADDR: unix:/path or tcp:host:port (port 0 picks one); "
      "repeatable (default tcp:127.0.0.1:7077)", "ADDR" },
    { "data-dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt.data_dir,
      "Keep slabs in files under DIR so they survive a restart", "DIR" },
    { "capacity", 'c', 0, G_OPTION_ARG_STRING, &opt.capacity,
      "Bytes of slabs to hand out, e.g. 16G (default: physical memory)",
      "SIZE" },
    { "linger", 0, 0, G_OPTION_ARG_INT, &opt.linger_s,
      "Keep an unnamed slab nobody has open for this long so its client "
      "can reconnect (default 60; 0 frees at once)", "SECONDS" },
    { "max-clients", 0, 0, G_OPTION_ARG_INT, &opt.max_clients,
      "Refuse connections beyond N (default 1024)", "N" },
    { "max-client-slabs", 0, 0, G_OPTION_ARG_INT, &opt.max_client_slabs,
      "Slabs one connection may have open (default 4096)", "N" },
    { "max-inflight", 0, 0, G_OPTION_ARG_STRING, &opt.max_inflight,
      "Reply bytes queued per client before its requests wait "
      "(default 8M)", "SIZE" },
    { "handshake-timeout", 0, 0, G_OPTION_ARG_INT, &opt.handshake_s,
      "Close connections that have not completed HELLO (and AUTH) within "
      "this time (default 10)", "SECONDS" },
    { "secret-file", 's', 0, G_OPTION_ARG_FILENAME, &opt.secret_file,
      "Shared secret for client authentication (required to listen on a "
      "non-loopback address)", "FILE" },
    { "auth-all", 0, 0, G_OPTION_ARG_NONE, &opt.auth_all,
      "Require authentication on loopback listeners too", NULL },
    { "controller", 0, 0, G_OPTION_ARG_STRING, &opt.controller,
      "Register with the rack controller at ADDR", "ADDR" },
    { "advertise", 0, 0, G_OPTION_ARG_STRING, &opt.advertise,
      "Address the controller gives clients (default: the first listener)",
      "ADDR" },
    { "ready-fd", 0, 0, G_OPTION_ARG_INT, &opt.ready_fd,
      "Write 'READY addr...' to FD and close it once listening", "FD" },
    { "pid-file", 0, 0, G_OPTION_ARG_FILENAME, &opt.pid_file,
      "Write the process id to FILE once listening", "FILE" },
    { "no-shared", 0, 0, G_OPTION_ARG_NONE, &opt.no_shared,
      "Never hand slab descriptors to clients: no shared-memory path even "
      "on unix sockets (KONA_CAP_SHARED)", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt.verbose,
      "Log connections and refused requests", NULL },
    { 0 }
};

#define die(...) kona_die("kona-memnode", __VA_ARGS__)

static void epoll_set(Memnode *mn, int fd, uint32_t events, void *ptr,
                      int op)
{
    struct epoll_event ev = { .events = events, .data.ptr = ptr };

    if (epoll_ctl(mn->epfd, op, fd, &ev) < 0) {
        die("epoll_ctl: %s", g_strerror(errno));
    }
}

/* ---- clients ---- */

static void conn_close(Memnode *mn, ConnWatch *cw, const char *why)
{
    MnConn *c = cw->c;

    if (opt.verbose) {
        fprintf(stderr, "kona-memnode: %s disconnected (%s)\n", c->peer, why);
    }
    epoll_ctl(mn->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    mn_conn_free(c);
    g_free(cw);
}

/*
 * Process buffered requests and send the replies.  Requests held back by
 * --max-inflight are processed as soon as the replies before them are
 * out, in the same loop: nobody would wake us for bytes already read.
 */
static void conn_run(Memnode *mn, ConnWatch *cw)
{
    MnConn *c = cw->c;
    uint32_t ev = 0;
    int r;

    for (;;) {
        size_t before = c->in_len - c->in_off;

        if (!mn_conn_process(c)) {
            /*
             * answers to the requests before the bad frame still go out
             * if the socket takes them now; the connection closes anyway
             */
            mn_conn_flush(c);
            conn_close(mn, cw, "protocol error");
            return;
        }
        r = mn_conn_flush(c);
        if (r < 0) {
            conn_close(mn, cw, g_strerror(-r));
            return;
        }
        if (r == 1 || c->closing || c->in_len - c->in_off == before ||
            c->in_len == c->in_off) {
            break;
        }
    }
    if (c->closing && r == 0) {
        conn_close(mn, cw, "closed after refusal");
        return;
    }
    if (mn_conn_want_read(c)) {
        ev |= EPOLLIN;
    }
    if (r == 1) {
        ev |= EPOLLOUT;
    }
    if (ev != c->events) {
        epoll_set(mn, c->fd, ev, cw, EPOLL_CTL_MOD);
        c->events = ev;
    }
}

static void conn_event(Memnode *mn, ConnWatch *cw, uint32_t events)
{
    MnConn *c = cw->c;

    if (events & EPOLLIN) {
        size_t space;
        uint8_t *p = mn_conn_in_space(c, &space);
        ssize_t n = space ? read(c->fd, p, space) : -1;

        if (n == 0) {
            conn_close(mn, cw, "end of stream");
            return;
        }
        if (n < 0 && space && errno != EAGAIN && errno != EINTR) {
            conn_close(mn, cw, g_strerror(errno));
            return;
        }
        if (n > 0) {
            mn_conn_in_commit(c, (size_t)n);
        }
    } else if (events & (EPOLLERR | EPOLLHUP)) {
        conn_close(mn, cw, "hang-up");
        return;
    }
    conn_run(mn, cw);
}

static void accept_clients(Memnode *mn, Listener *ls)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        g_autofree char *peer = NULL;
        ConnWatch *cw;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                fprintf(stderr, "kona-memnode: accept on %s: %s\n", ls->addr,
                        g_strerror(errno));
            }
            return;
        }
        if (mn->srv->stats[KONA_STAT_CLIENTS] >= (uint64_t)opt.max_clients) {
            fprintf(stderr, "kona-memnode: refusing a client on %s: %d "
                    "clients connected (--max-clients)\n", ls->addr,
                    opt.max_clients);
            close(fd);
            continue;
        }
        kona_sock_tune(fd);
        peer = g_strdup_printf("client %" G_GUINT64_FORMAT " on %s",
                               mn->srv->stats[KONA_STAT_CLIENTS_TOTAL] + 1,
                               ls->addr);
        cw = g_new0(ConnWatch, 1);
        cw->w.kind = WATCH_CONN;
        cw->c = mn_conn_new(mn->srv, fd, peer, ls->auth_required);
        /* descriptors only travel over unix sockets */
        cw->c->unix_sock = ls->unix_path != NULL;
        cw->c->events = EPOLLIN;
        cw->c->opaque = cw;
        epoll_set(mn, fd, EPOLLIN, cw, EPOLL_CTL_ADD);
        if (opt.verbose) {
            fprintf(stderr, "kona-memnode: %s connected\n", peer);
        }
    }
}

/* ---- rack controller registration ---- */

static void controller_register(Memnode *mn)
{
    g_autoptr(GError) err = NULL;
    KonaLinkOptions o = {
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
        .name = "kona-memnode",
        .no_reconnect = true,
    };
    uint64_t node_id;
    GBytes *secret = mn->srv->cfg.secret;
    gsize slen = 0;

    if (secret) {
        o.secret = g_bytes_get_data(secret, &slen);
        o.secret_len = slen;
    }
    mn->ctl = kona_link_connect_opts(mn->controller, &o, &err);
    if (!mn->ctl ||
        kona_rack_register(mn->ctl, mn->srv->cfg.capacity, mn->advertise,
                           &node_id, &err) < 0) {
        fprintf(stderr, "kona-memnode: cannot register with the rack "
                "controller: %s (retrying)\n", err->message);
        g_clear_pointer(&mn->ctl, kona_link_close);
        mn->ctl_retry_ms = kona_now_ms() + REGISTER_RETRY_MS;
        return;
    }
    mn->ctl_retry_ms = 0;
    mn->ctl_watch.kind = WATCH_CONTROLLER;
    /* the controller never talks first: any event means it went away */
    epoll_set(mn, kona_link_fd(mn->ctl), EPOLLIN, &mn->ctl_watch,
              EPOLL_CTL_ADD);
    fprintf(stderr, "kona-memnode: registered with %s as node %"
            G_GUINT64_FORMAT " (%s)\n", mn->controller, node_id,
            mn->advertise);
}

static void controller_lost(Memnode *mn)
{
    fprintf(stderr, "kona-memnode: lost the rack controller %s "
            "(re-registering)\n", mn->controller);
    epoll_ctl(mn->epfd, EPOLL_CTL_DEL, kona_link_fd(mn->ctl), NULL);
    g_clear_pointer(&mn->ctl, kona_link_close);
    mn->ctl_retry_ms = kona_now_ms() + REGISTER_RETRY_MS;
}

/* ---- setup ---- */

static void add_listener(Memnode *mn, const char *addr)
{
    g_autoptr(GError) err = NULL;
    Listener *ls = g_new0(Listener, 1);
    bool loopback;

    ls->w.kind = WATCH_LISTENER;
    ls->fd = kona_listen(addr, &ls->addr, &loopback, &err);
    if (ls->fd < 0) {
        die("%s", err->message);
    }
    if (g_str_has_prefix(addr, "unix:")) {
        ls->unix_path = g_strdup(addr + 5);
    }
    if (!loopback && !mn->srv->cfg.secret) {
        die("%s is reachable from other hosts: give --secret-file so "
            "clients must authenticate", ls->addr);
    }
    ls->auth_required = !loopback || opt.auth_all;
    epoll_set(mn, ls->fd, EPOLLIN, ls, EPOLL_CTL_ADD);
    g_ptr_array_add(mn->listeners, ls);
}

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

    return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize
                                  : 1ull << 30;
}

static void announce_ready(Memnode *mn)
{
    GString *addrs = g_string_new(NULL);

    for (guint i = 0; i < mn->listeners->len; i++) {
        Listener *ls = g_ptr_array_index(mn->listeners, i);
        g_string_append_printf(addrs, "%s%s", i ? " " : "", ls->addr);
    }
    kona_announce_ready("kona-memnode", addrs->str, opt.pid_file, opt.ready_fd);
    g_string_free(addrs, TRUE);
}

static void parse_options(int argc, char **argv, MnConfig *cfg)
{
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GError) err = NULL;

    ctx = g_option_context_new("- Kona memory node");
    g_option_context_set_summary(ctx,
        "Serves slabs of memory to kona-cxl devices over the Kona protocol\n"
        "(memnode/kona-proto.h).  Prints a ready line on stdout once it\n"
        "listens; SIGTERM or SIGINT shut it down cleanly.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        die("%s (see --help)", err->message);
    }
    if (argc > 1) {
        die("unexpected argument '%s' (see --help)", argv[1]);
    }

    cfg->capacity = physical_memory();
    if (opt.capacity && !kona_parse_size(opt.capacity, &cfg->capacity, &err)) {
        die("--capacity: %s", err->message);
    }
    cfg->max_inflight = 8 << 20;
    if (opt.max_inflight &&
        !kona_parse_size(opt.max_inflight, &cfg->max_inflight, &err)) {
        die("--max-inflight: %s", err->message);
    }
    if (cfg->max_inflight < KONA_MAX_IO) {
        /* one maximal READ must always fit */
        cfg->max_inflight = KONA_MAX_IO;
    }
    if (opt.linger_s < 0 || opt.max_clients < 1 ||
        opt.max_client_slabs < 1 || opt.handshake_s < 1) {
        die("--linger must be >= 0; --max-clients, --max-client-slabs and "
            "--handshake-timeout >= 1");
    }
    cfg->handshake_ms = (int64_t)opt.handshake_s * 1000;
    cfg->linger_ms = (int64_t)opt.linger_s * 1000;
    cfg->max_clients = (unsigned)opt.max_clients;
    cfg->max_client_slabs = (unsigned)opt.max_client_slabs;
    cfg->data_dir = opt.data_dir;
    cfg->no_shared = opt.no_shared;
    cfg->verbose = opt.verbose;
    if (opt.secret_file) {
        cfg->secret = kona_auth_load_secret(opt.secret_file, &err);
        if (!cfg->secret) {
            die("%s", err->message);
        }
    } else if (opt.auth_all) {
        die("--auth-all needs --secret-file");
    }
}

static int setup_signals(void)
{
    sigset_t set;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        die("signalfd: %s", g_strerror(errno));
    }
    return fd;
}

/*
 * Every slab keeps a descriptor open (its memfd or file, for SLAB_MAP),
 * besides the clients' sockets: the default soft limit of 1024 would cap
 * the node at fewer slabs than --max-client-slabs allows one client.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void shutdown_node(Memnode *mn)
{
    GList *l;

    for (guint i = 0; i < mn->listeners->len; i++) {
        Listener *ls = g_ptr_array_index(mn->listeners, i);
        close(ls->fd);
        if (ls->unix_path) {
            unlink(ls->unix_path);
        }
        g_free(ls->unix_path);
        g_free(ls->addr);
        g_free(ls);
    }
    g_ptr_array_free(mn->listeners, TRUE);
    /* give every client what was already answered, without waiting */
    for (l = mn->srv->conns.head; l; l = l->next) {
        MnConn *c = l->data;
        mn_conn_flush(c);
        g_free(c->opaque);
    }
    g_clear_pointer(&mn->ctl, kona_link_close);
    /* closes the clients and msyncs file-backed slabs */
    mn_server_free(mn->srv);
    if (opt.pid_file) {
        unlink(opt.pid_file);
    }
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    MnConfig cfg = { 0 };
    Memnode mn = { 0 };
    struct epoll_event ev[MAX_EVENTS];

    parse_options(argc, argv, &cfg);
    raise_fd_limit();
    mn.sigfd = setup_signals();
    mn.epfd = epoll_create1(EPOLL_CLOEXEC);
    mn.srv = mn_server_new(&cfg, &err);
    if (!mn.srv) {
        die("%s", err->message);
    }
    mn.listeners = g_ptr_array_new();
    if (!opt.listen) {
        add_listener(&mn, "tcp:127.0.0.1:7077");
    }
    for (char **a = opt.listen; a && *a; a++) {
        add_listener(&mn, *a);
    }
    mn.sig_watch.kind = WATCH_SIGNAL;
    epoll_set(&mn, mn.sigfd, EPOLLIN, &mn.sig_watch, EPOLL_CTL_ADD);

    if (opt.controller) {
        Listener *first = g_ptr_array_index(mn.listeners, 0);
        mn.controller = opt.controller;
        mn.advertise = opt.advertise ? opt.advertise : first->addr;
        controller_register(&mn);
    }
    announce_ready(&mn);

    while (!mn.quit) {
        int64_t timeout = mn_server_tick(mn.srv), hs;
        g_autoptr(GPtrArray) expired = g_ptr_array_new();
        int n;

        hs = mn_server_handshake_expired(mn.srv, expired);
        for (guint i = 0; i < expired->len; i++) {
            MnConn *c = g_ptr_array_index(expired, i);
            conn_close(&mn, c->opaque, "no handshake in time");
        }
        if (hs >= 0) {
            timeout = timeout < 0 ? hs : MIN(timeout, hs);
        }

        if (mn.controller && !mn.ctl) {
            int64_t left = mn.ctl_retry_ms - kona_now_ms();
            if (left <= 0) {
                controller_register(&mn);
                continue;
            }
            timeout = timeout < 0 ? left : MIN(timeout, left);
        }
        n = epoll_wait(mn.epfd, ev, MAX_EVENTS,
                       timeout < 0 ? -1 : (int)MIN(timeout + 1, 60000));
        if (n < 0 && errno != EINTR) {
            die("epoll_wait: %s", g_strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            Watch *w = ev[i].data.ptr;

            switch (w->kind) {
            case WATCH_LISTENER:
                accept_clients(&mn, (Listener *)w);
                break;
            case WATCH_CONN:
                conn_event(&mn, (ConnWatch *)w, ev[i].events);
                break;
            case WATCH_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(mn.sigfd, &si, sizeof(si)) == sizeof(si)) {
                    fprintf(stderr, "kona-memnode: %s, shutting down\n",
                            strsignal((int)si.ssi_signo));
                    mn.quit = true;
                }
                break;
            }
            case WATCH_CONTROLLER:
                controller_lost(&mn);
                break;
            }
        }
    }
    shutdown_node(&mn);
    close(mn.epfd);
    close(mn.sigfd);
    g_strfreev(opt.listen);
    if (cfg.secret) {
        g_bytes_unref(cfg.secret);
    }
    return 0;
}
