/*
 * kona-redis-seq: the redis-seq workload's client.  SET every key in
 * order, then GET every key in order, pipelined on one connection to a
 * redis-server, and check every reply: the server, not the client, is what
 * guest-runtime/workloads/bench.sh measures.
 *
 * Why not `redis-cli --pipe`: it parses a GET phase's replies at about
 * 23,000 a second on this machine's host (7.3 s for 167,772 300-byte
 * values, all of it redis-cli's own CPU time, against 0.4 s for the SET
 * phase), and about 2,000 a second inside a TCG guest: the redis-seq GET
 * figures were redis-cli's.
 *
 *   kona-redis-seq --port P --keys N [--value-size B] [--window W]
 *                  [--set 0]
 *
 * Key i is "key:%012d"; its value is i's 12 digits repeated to B bytes, so
 * a reply with another key's value fails the check.  At most W requests
 * are unanswered at a time (the socket buffers never hold more than W
 * requests' bytes).  --set 0 leaves the SET phase out: it checks the keys
 * an earlier run stored.  Prints RESULT lines (set-ops, get-ops, ops and
 * seconds of workload redis-seq; without SET, get-ops and seconds), a
 * PHASE line per phase and an INFO line.
 * Exit status: 0 success, 1 an error reply, a wrong value or a lost
 * connection, 2 bad arguments.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "kona-wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKLOAD "redis-seq"
#define KEY_DIGITS 12
#define OUT_BUF (64 * 1024)
#define IN_BUF (256 * 1024)
/* A GET reply is no longer than the SET request that stored its value. */
_Static_assert(IN_BUF >= OUT_BUF, "a reply that fits no buffer");

static const char usage[] =
    "usage: kona-redis-seq --port P --keys N [--value-size B] [--window W]\n"
    "                      [--set 0]\n"
    "  SET then GET keys 0..N-1 in order, pipelined, on 127.0.0.1:P;\n"
    "  every reply checked (values of B bytes, at most W requests\n"
    "  unanswered).  --set 0: GET only, the keys an earlier run stored.\n";

typedef enum { PHASE_SET, PHASE_GET } Phase;

typedef struct Pipeline {
    int fd;
    Phase phase;
    long keys;
    long value_size;
    long window;
    long sent;          /* requests in the output buffer or the socket */
    long answered;      /* replies checked */
    char out[OUT_BUF];
    size_t out_len;
    size_t out_pos;
    char in[IN_BUF];
    size_t in_len;
    char *value;        /* scratch: the value a key should have */
} Pipeline;

/* Key @i's value: its 12 digits, repeated to @size bytes. */
static void value_of(long i, char *value, long size)
{
    char digits[24];
    long off;

    snprintf(digits, sizeof(digits), "%0*ld", KEY_DIGITS, i);
    for (off = 0; off < size; off += KEY_DIGITS) {
        memcpy(value + off, digits,
               size - off < KEY_DIGITS ? size - off : KEY_DIGITS);
    }
}

/* Appends request number p->sent to the output buffer (it has room). */
static void queue_request(Pipeline *p)
{
    char *o = p->out + p->out_len;
    char key[32];

    snprintf(key, sizeof(key), "key:%0*ld", KEY_DIGITS, p->sent);
    if (p->phase == PHASE_SET) {
        o += sprintf(o, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%ld\r\n",
                     strlen(key), key, p->value_size);
        value_of(p->sent, o, p->value_size);
        o += p->value_size;
        o += sprintf(o, "\r\n");
    } else {
        o += sprintf(o, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
    }
    p->out_len = o - p->out;
    p->sent++;
}

/* The longest request: a SET's header, key and value. */
static size_t request_max(long value_size)
{
    return 64 + 4 + KEY_DIGITS + value_size;
}

static void connection_lost(const Pipeline *p, const char *what)
{
    kona_wl_fail(WORKLOAD, "%s phase, reply %ld of %ld: %s",
                 p->phase == PHASE_SET ? "SET" : "GET", p->answered + 1,
                 p->keys, what);
}

/*
 * Checks one reply at @r (@len bytes available).  Returns the bytes it
 * took, or 0 if the reply is not complete yet.
 */
static size_t check_reply(Pipeline *p, const char *r, size_t len)
{
    const char *eol = memchr(r, '\n', len);
    size_t head;
    long n;

    if (!eol) {
        if (len > 64) {
            connection_lost(p, "a reply line without an end");
        }
        return 0;
    }
    head = eol - r + 1;
    if (head < 3 || r[head - 2] != '\r') {
        connection_lost(p, "a reply line without CRLF");
    }
    if (r[0] == '-') {
        kona_wl_fail(WORKLOAD, "key %ld: error reply: %.*s", p->answered,
                     (int)(head - 2), r);
    }
    if (p->phase == PHASE_SET) {
        if (head != 5 || memcmp(r, "+OK", 3) != 0) {
            kona_wl_fail(WORKLOAD, "SET key %ld: reply %.*s, not +OK",
                         p->answered, (int)(head - 2), r);
        }
        return head;
    }
    if (r[0] != '$') {
        kona_wl_fail(WORKLOAD, "GET key %ld: reply %.*s, not a bulk string",
                     p->answered, (int)(head - 2), r);
    }
    n = strtol(r + 1, NULL, 10);
    if (n != p->value_size) {
        kona_wl_fail(WORKLOAD, "GET key %ld: a %ld-byte value, not %ld",
                     p->answered, n, p->value_size);
    }
    if (len < head + n + 2) {
        return 0;
    }
    value_of(p->answered, p->value, p->value_size);
    if (memcmp(r + head, p->value, n) != 0 ||
        memcmp(r + head + n, "\r\n", 2) != 0) {
        kona_wl_fail(WORKLOAD, "GET key %ld: not the value SET stored",
                     p->answered);
    }
    return head + n + 2;
}

static void send_requests(Pipeline *p)
{
    ssize_t w;

    while (p->out_pos == p->out_len && p->sent < p->keys &&
           p->sent - p->answered < p->window) {
        p->out_len = p->out_pos = 0;
        while (p->sent < p->keys && p->sent - p->answered < p->window &&
               OUT_BUF - p->out_len >= request_max(p->value_size)) {
            queue_request(p);
        }
    }
    if (p->out_pos == p->out_len) {
        return;
    }
    w = write(p->fd, p->out + p->out_pos, p->out_len - p->out_pos);
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
        connection_lost(p, strerror(errno));
    }
    if (w > 0) {
        p->out_pos += w;
    }
}

static void receive_replies(Pipeline *p)
{
    ssize_t r = read(p->fd, p->in + p->in_len, IN_BUF - p->in_len);
    size_t pos = 0, took;

    if (r == 0) {
        connection_lost(p, "the server closed the connection");
    }
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            connection_lost(p, strerror(errno));
        }
        return;
    }
    p->in_len += r;
    while (p->answered < p->sent &&
           (took = check_reply(p, p->in + pos, p->in_len - pos)) > 0) {
        pos += took;
        p->answered++;
    }
    if (p->answered == p->sent && pos < p->in_len) {
        connection_lost(p, "a reply to no request");
    }
    memmove(p->in, p->in + pos, p->in_len - pos);
    p->in_len -= pos;
}

/* One phase over every key; returns its seconds. */
static double run_phase(Pipeline *p, Phase phase)
{
    double t0 = kona_wl_now();

    p->phase = phase;
    p->sent = p->answered = 0;
    p->out_len = p->out_pos = p->in_len = 0;
    while (p->answered < p->keys) {
        struct pollfd pfd = { .fd = p->fd, .events = POLLIN };

        send_requests(p);
        if (p->out_pos < p->out_len) {
            pfd.events |= POLLOUT;
        }
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            connection_lost(p, strerror(errno));
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            receive_replies(p);
        }
    }
    return kona_wl_now() - t0;
}

static int connect_to(long port)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int err = 0;
    socklen_t errlen = sizeof(err);

    if (fd < 0) {
        kona_wl_fail(WORKLOAD, "socket: %s", strerror(errno));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EINPROGRESS) {
            kona_wl_fail(WORKLOAD, "connect to port %ld: %s", port,
                         strerror(errno));
        }
        while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
            continue;
        }
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen);
        if (err) {
            kona_wl_fail(WORKLOAD, "connect to port %ld: %s", port,
                         strerror(err));
        }
    }
    return fd;
}

int main(int argc, char **argv)
{
    static Pipeline p;
    long port = 0, keys = 0, value_size = 300, window = 1024, set = 1;
    const KonaWlOpt opts[] = {
        { "port", &port, 1, 65535 },
        { "keys", &keys, 1, 999999999999L },  /* 12 digits */
        { "value-size", &value_size, 1, 1 << 20 },
        { "window", &window, 1, 1 << 20 },
        { "set", &set, 0, 1 },
        { NULL, NULL, 0, 0 },
    };
    double set_s = 0, get_s;

    kona_wl_prog = "kona-redis-seq";
    kona_wl_parse(argc, argv, 1, opts, usage);
    if (port == 0 || keys == 0) {
        kona_wl_bad_args(usage, "--port and --keys are required");
    }
    if (request_max(value_size) > OUT_BUF) {
        kona_wl_bad_args(usage, "--value-size %ld: at most %zu", value_size,
                         OUT_BUF - request_max(0));
    }
    p.keys = keys;
    p.value_size = value_size;
    p.window = window;
    p.value = malloc(value_size);
    if (!p.value) {
        kona_wl_fail(WORKLOAD, "out of memory");
    }
    p.fd = connect_to(port);
    if (set) {
        set_s = run_phase(&p, PHASE_SET);
        kona_wl_phase(WORKLOAD, "set", set_s);
    }
    get_s = run_phase(&p, PHASE_GET);
    kona_wl_phase(WORKLOAD, "get", get_s);
    close(p.fd);
    kona_wl_info(WORKLOAD, "keys=%ld value-size=%ld values-checked=%ld",
                 keys, value_size, keys);
    if (set) {
        kona_wl_result(WORKLOAD, "set-ops", keys / set_s, "ops/s");
    }
    kona_wl_result(WORKLOAD, "get-ops", keys / get_s, "ops/s");
    if (set) {
        kona_wl_result(WORKLOAD, "ops", 2 * keys / (set_s + get_s), "ops/s");
    }
    kona_wl_result(WORKLOAD, "seconds", set_s + get_s, "s");
    return 0;
}
