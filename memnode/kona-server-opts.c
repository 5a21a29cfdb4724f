/*
 * Options shared by kona-memnode and kona-rackctl (see kona-server-opts.h).
 */
#include "kona-server-opts.h"
#include "kona-auth.h"
#include "kona-server-loop.h"
#include "kona-util.h"

#include <unistd.h>

#define die(o, ...) kona_die((o)->prog, __VA_ARGS__)

static void opts_add(KonaServerOpts *o, GOptionContext *ctx,
                     const char *prog, const char *default_listen)
{
    g_autofree char *listen_help = g_strdup_printf(
        "Listen on ADDR: unix:/path or tcp:host:port (port 0 picks one); "
        "repeatable (default %s)", default_listen);
    GOptionEntry entries[] = {
        { "listen", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &o->listen,
          listen_help, "ADDR" },
        { "secret-file", 's', 0, G_OPTION_ARG_FILENAME, &o->secret_file,
          "Shared secret for client authentication (required to listen "
          "on a non-loopback address)", "FILE" },
        { "auth-all", 0, 0, G_OPTION_ARG_NONE, &o->auth_all,
          "Require authentication on loopback listeners too", NULL },
        { "max-clients", 0, 0, G_OPTION_ARG_INT, &o->max_clients,
          "Refuse clients beyond N, counting those past the handshake "
          "(default 1024)", "N" },
        { "max-handshakes", 0, 0, G_OPTION_ARG_INT, &o->max_handshakes,
          "Connections still in the handshake at once; past that the "
          "oldest is dropped for a new one (default 64)", "N" },
        { "max-inflight", 0, 0, G_OPTION_ARG_STRING, &o->max_inflight,
          "What the replies queued for one client may cost (bytes, "
          "queue entries, allocations) before its requests wait "
          "(default 8M, at least 1M)", "SIZE" },
        { "handshake-timeout", 0, 0, G_OPTION_ARG_INT, &o->handshake_s,
          "Close connections that have not completed HELLO (and AUTH) "
          "within this time (default 10)", "SECONDS" },
        { "ready-fd", 0, 0, G_OPTION_ARG_INT, &o->ready_fd,
          "Write 'READY addr...' to FD and close it once listening", "FD" },
        { "pid-file", 0, 0, G_OPTION_ARG_FILENAME, &o->pid_file,
          "Write the process id to FILE once listening", "FILE" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose,
          "Log connections and refused requests", NULL },
        { 0 }
    };

    o->prog = prog;
    o->default_listen = default_listen;
    o->max_clients = 1024;
    o->max_handshakes = 64;
    o->handshake_s = 10;
    o->ready_fd = -1;
    /* GLib copies the entries; the help string must outlive the context */
    entries[0].description = g_intern_string(listen_help);
    g_option_context_add_main_entries(ctx, entries, NULL);
}

void kona_server_opts_parse(KonaServerOpts *o, const char *prog,
                            const char *default_listen, const char *what,
                            const char *summary, const GOptionEntry *entries,
                            int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(what);
    g_autoptr(GError) err = NULL;

    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    opts_add(o, ctx, prog, default_listen);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        die(o, "%s (see --help)", err->message);
    }
    if (argc > 1) {
        die(o, "unexpected argument '%s' (see --help)", argv[1]);
    }
}

void kona_server_opts_config(KonaServerOpts *o, KonaServerConfig *cfg)
{
    g_autoptr(GError) err = NULL;

    cfg->prog = o->prog;
    cfg->max_inflight = 8 << 20;
    if (o->max_inflight &&
        !kona_parse_size(o->max_inflight, &cfg->max_inflight, &err)) {
        die(o, "--max-inflight: %s", err->message);
    }
    if (cfg->max_inflight < KONA_MAX_IO) {
        /* one maximal READ must always fit */
        cfg->max_inflight = KONA_MAX_IO;
    }
    if (o->max_clients < 1 || o->max_handshakes < 1 || o->handshake_s < 1) {
        die(o, "--max-clients, --max-handshakes and --handshake-timeout "
            "must be >= 1");
    }
    cfg->max_clients = (unsigned)o->max_clients;
    cfg->max_handshakes = (unsigned)o->max_handshakes;
    cfg->handshake_ms = (int64_t)o->handshake_s * 1000;
    cfg->verbose = o->verbose;
    if (o->secret_file) {
        cfg->secret = kona_auth_load_secret(o->secret_file, &err);
        if (!cfg->secret) {
            die(o, "%s", err->message);
        }
    } else if (o->auth_all) {
        die(o, "--auth-all needs --secret-file");
    }
}

void kona_server_opts_listen(KonaServerOpts *o, KonaServer *s)
{
    g_autoptr(GError) err = NULL;

    if (!o->listen) {
        o->listen = g_new0(char *, 2);
        o->listen[0] = g_strdup(o->default_listen);
    }
    for (char **a = o->listen; *a; a++) {
        if (!kona_server_listen(s, *a, o->auth_all, &err)) {
            die(o, "%s", err->message);
        }
    }
}

void kona_server_opts_ready(KonaServerOpts *o, KonaServer *s)
{
    g_autofree char *addrs = kona_server_addrs(s);

    kona_announce_ready(o->prog, addrs, o->pid_file, o->ready_fd);
}

void kona_server_opts_finish(KonaServerOpts *o, KonaServerConfig *cfg)
{
    if (o->pid_file) {
        unlink(o->pid_file);
    }
    g_strfreev(o->listen);
    o->listen = NULL;
    if (cfg->secret) {
        g_bytes_unref(cfg->secret);
        cfg->secret = NULL;
    }
}
