/*
 * kona-memnode: the memory node.  One process, one thread, one epoll
 * loop (kona-server-loop.c, shared with the rack controller); the
 * protocol itself is in memnode-server.c.
 */
#include "kona-auth.h"
#include "kona-link.h"
#include "kona-rack.h"
#include "kona-server-loop.h"
#include "kona-server-opts.h"
#include "kona-util.h"
#include "memnode-server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define REGISTER_RETRY_MS   1000

typedef struct Memnode {
    MnServer *srv;

    /* rack controller registration */
    char *controller;
    const char *advertise;
    KonaLink *ctl;
    int64_t ctl_retry_ms;       /* when to try again; 0: registered */
} Memnode;

static KonaServerOpts sopt;

static struct {
    char *data_dir;
    char *capacity;
    int linger_s;
    int max_client_slabs;
    char *controller;
    char *advertise;
    gboolean no_shared;
} opt = {
    .linger_s = 60,
    .max_client_slabs = 4096,
};

static GOptionEntry entries[] = {
    { "data-dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt.data_dir,
      "Keep slabs in files under DIR so they survive a restart", "DIR" },
    { "capacity", 'c', 0, G_OPTION_ARG_STRING, &opt.capacity,
      "Bytes of slabs to hand out, e.g. 16G (default: physical memory)",
      "SIZE" },
    { "linger", 0, 0, G_OPTION_ARG_INT, &opt.linger_s,
      "Keep an unnamed slab nobody has open for this long so its client "
      "can reconnect (default 60; 0 frees at once)", "SECONDS" },
    { "max-client-slabs", 0, 0, G_OPTION_ARG_INT, &opt.max_client_slabs,
      "Slabs one connection may have open (default 4096)", "N" },
    { "controller", 0, 0, G_OPTION_ARG_STRING, &opt.controller,
      "Register with the rack controller at ADDR", "ADDR" },
    { "advertise", 0, 0, G_OPTION_ARG_STRING, &opt.advertise,
      "Address the controller gives clients (default: the first listener)",
      "ADDR" },
    { "no-shared", 0, 0, G_OPTION_ARG_NONE, &opt.no_shared,
      "Never hand slab descriptors to clients: no shared-memory path even "
      "on unix sockets (KONA_CAP_SHARED)", NULL },
    { 0 }
};

#define die(...) kona_die("kona-memnode", __VA_ARGS__)

/* ---- rack controller registration ---- */

static void controller_lost(void *opaque, uint32_t events)
{
    Memnode *mn = opaque;

    fprintf(stderr, "kona-memnode: lost the rack controller %s "
            "(re-registering)\n", mn->controller);
    kona_server_unwatch(mn->srv->ks, kona_link_fd(mn->ctl));
    g_clear_pointer(&mn->ctl, kona_link_close);
    mn->ctl_retry_ms = kona_now_ms() + REGISTER_RETRY_MS;
}

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
    GBytes *secret = mn->srv->cfg.net.secret;
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
    /* the controller never talks first: any event means it went away */
    kona_server_watch(mn->srv->ks, kona_link_fd(mn->ctl), controller_lost,
                      mn);
    fprintf(stderr, "kona-memnode: registered with %s as node %"
            G_GUINT64_FORMAT " (%s)\n", mn->controller, node_id,
            mn->advertise);
}

/* ---- setup ---- */

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

    return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize
                                  : 1ull << 30;
}

static void parse_options(int argc, char **argv, MnConfig *cfg)
{
    g_autoptr(GError) err = NULL;

    kona_server_opts_parse(&sopt, "kona-memnode", "tcp:127.0.0.1:7077",
        "- Kona memory node",
        "Serves slabs of memory to kona-cxl devices over the Kona protocol\n"
        "(memnode/kona-proto.h).  Prints a ready line on stdout once it\n"
        "listens; SIGTERM or SIGINT shut it down cleanly.", entries,
        argc, argv);

    cfg->capacity = physical_memory();
    if (opt.capacity && !kona_parse_size(opt.capacity, &cfg->capacity, &err)) {
        die("--capacity: %s", err->message);
    }
    kona_server_opts_config(&sopt, &cfg->net);
    if (opt.linger_s < 0 || opt.max_client_slabs < 1) {
        die("--linger must be >= 0 and --max-client-slabs >= 1");
    }
    cfg->linger_ms = (int64_t)opt.linger_s * 1000;
    cfg->max_client_slabs = (unsigned)opt.max_client_slabs;
    cfg->data_dir = opt.data_dir;
    cfg->no_shared = opt.no_shared;
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

/* Expire orphaned slabs; retry the controller registration. */
static int64_t memnode_timer(void *opaque)
{
    Memnode *mn = opaque;
    int64_t timeout = mn_server_tick(mn->srv), left;

    if (mn->controller && !mn->ctl) {
        left = mn->ctl_retry_ms - kona_now_ms();
        if (left <= 0) {
            controller_register(mn);
            left = mn->ctl ? -1 : REGISTER_RETRY_MS;
        }
        if (left >= 0) {
            timeout = timeout < 0 ? left : MIN(timeout, left);
        }
    }
    return timeout;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    MnConfig cfg = { 0 };
    Memnode mn = { 0 };

    parse_options(argc, argv, &cfg);
    raise_fd_limit();
    mn.srv = mn_server_new(&cfg, &err);
    if (!mn.srv) {
        die("%s", err->message);
    }
    /* listening before registering: the controller hands out our address */
    kona_server_opts_listen(&sopt, mn.srv->ks);
    if (opt.controller) {
        mn.controller = opt.controller;
        mn.advertise = opt.advertise ? opt.advertise :
                       kona_server_first_addr(mn.srv->ks);
        controller_register(&mn);
    }
    kona_server_set_timer(mn.srv->ks, memnode_timer, &mn);
    kona_server_opts_ready(&sopt, mn.srv->ks);

    kona_server_run(mn.srv->ks);

    g_clear_pointer(&mn.ctl, kona_link_close);
    /* sends what was answered, closes the clients, msyncs the slabs */
    kona_server_shutdown(mn.srv->ks);
    mn_server_free(mn.srv);
    kona_server_opts_finish(&sopt, &cfg.net);
    return 0;
}
