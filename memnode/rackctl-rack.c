/*
 * kona-rackctl's state and what every part of it uses: the rack (its
 * memory nodes and allocations), the log, the connections to memory nodes.
 * rackctl-main.c (the server and the memory nodes) and rackctl-alloc.c
 * (allocations) both build on this file, not on each other.
 */
#include "kona-link.h"
#include "rackctl.h"

#include <stdarg.h>
#include <stdio.h>

RcRack rack;

void rc_log(const char *fmt, ...)
{
    va_list ap;

    if (!rack.verbose) {
        return;
    }
    fprintf(stderr, "kona-rackctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

KonaLink *rc_node_link(RcNode *n, GError **errp)
{
    KonaLinkOptions o = {
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
        .name = "kona-rackctl",
    };
    gsize slen = 0;

    if (n->link) {
        return n->link;
    }
    if (rack.cfg.secret) {
        o.secret = g_bytes_get_data(rack.cfg.secret, &slen);
        o.secret_len = slen;
    }
    n->link = kona_link_connect_opts(n->addr, &o, errp);
    return n->link;
}
