/*
 * The command-line options kona-memnode and kona-rackctl share: where to
 * listen, authentication, the connection limits, and how to say "ready".
 */
#ifndef KONA_SERVER_OPTS_H
#define KONA_SERVER_OPTS_H

#include <glib.h>

#include "kona-server.h"

typedef struct KonaServerOpts {
    const char *prog;
    const char *default_listen;
    char **listen;
    char *secret_file;
    gboolean auth_all;
    int max_clients;
    int max_handshakes;
    char *max_inflight;
    int handshake_s;
    int ready_fd;
    char *pid_file;
    gboolean verbose;
} KonaServerOpts;

/*
 * Parse the command line: the daemon's own @entries and the shared
 * options (with their defaults).  @what and @summary are for --help.
 * Exits with a message on an unknown option or a stray argument.
 */
void kona_server_opts_parse(KonaServerOpts *o, const char *prog,
                            const char *default_listen, const char *what,
                            const char *summary, const GOptionEntry *entries,
                            int argc, char **argv);
/*
 * After parsing: check the values and fill @cfg (the secret loaded);
 * exits with a message naming the option on a bad one.
 */
void kona_server_opts_config(KonaServerOpts *o, KonaServerConfig *cfg);
/* Listen on every --listen address. */
void kona_server_opts_listen(KonaServerOpts *o, KonaServer *s);
/* Say "ready" (stdout, --ready-fd, --pid-file). */
void kona_server_opts_ready(KonaServerOpts *o, KonaServer *s);
/* After the server is gone: the pid file and what the options hold. */
void kona_server_opts_finish(KonaServerOpts *o, KonaServerConfig *cfg);

#endif /* KONA_SERVER_OPTS_H */
