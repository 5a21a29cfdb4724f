/*
 * Addresses and sockets shared by the memnode, the rack controller and
 * kona-link.
 */
#include "kona-sock.h"
#include "kona-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Socket buffers large enough that a pipelined burst of 64 KiB replies
 * does not stall on the default ~200 KiB; the kernel caps the value at
 * net.core.[rw]mem_max.
 */
#define KONA_SOCK_BUF   (4 << 20)

bool kona_addr_parse(const char *s, KonaAddr *a, GError **errp)
{
    memset(a, 0, sizeof(*a));
    if (g_str_has_prefix(s, "unix:")) {
        const char *path = s + 5;
        if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            g_set_error(errp, KONA_ERROR, EINVAL,
                        "bad unix socket path in '%s' (empty or longer than "
                        "107 bytes)", s);
            return false;
        }
        a->kind = KONA_ADDR_UNIX;
        a->path = g_strdup(path);
        return true;
    }
    if (g_str_has_prefix(s, "tcp:")) {
        const char *hp = s + 4, *colon;
        char *end;
        unsigned long port;

        if (*hp == '[') {
            const char *rb = strchr(hp, ']');
            if (!rb || rb[1] != ':') {
                goto bad;
            }
            a->host = g_strndup(hp + 1, rb - hp - 1);
            colon = rb + 1;
        } else {
            colon = strrchr(hp, ':');
            if (!colon) {
                goto bad;
            }
            a->host = g_strndup(hp, colon - hp);
        }
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (!*a->host || !colon[1] || *end || errno || port > 65535) {
            goto bad;
        }
        a->kind = KONA_ADDR_TCP;
        a->port = g_strdup(colon + 1);
        return true;
    }
bad:
    kona_addr_clear(a);
    g_set_error(errp, KONA_ERROR, EINVAL,
                "bad address '%s' (expected unix:/path or tcp:host:port)", s);
    return false;
}

void kona_addr_clear(KonaAddr *a)
{
    g_clear_pointer(&a->path, g_free);
    g_clear_pointer(&a->host, g_free);
    g_clear_pointer(&a->port, g_free);
}

/*
 * A peer that vanished behind a partition (its close lost on the way) is
 * noticed within KONA_SOCK_DEAD_S: keepalive probes on an idle
 * connection, and a limit on how long sent data may stay unacknowledged.
 * Until then a memnode would keep, for instance, a dead QEMU's exclusive
 * hold on its volume.
 */
#define KONA_SOCK_KEEPIDLE_S    5
#define KONA_SOCK_KEEPINTVL_S   2
#define KONA_SOCK_KEEPCNT       3

void kona_sock_tune(int fd)
{
    int one = 1, buf = KONA_SOCK_BUF;
    int idle = KONA_SOCK_KEEPIDLE_S, intvl = KONA_SOCK_KEEPINTVL_S;
    int cnt = KONA_SOCK_KEEPCNT;
    unsigned int user_ms = KONA_SOCK_DEAD_S * 1000;

    /* The TCP ones fail harmlessly (ENOTSUP/EOPNOTSUPP) on unix sockets. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return sa->sa_family == AF_UNIX;
}

static int listen_unix(const KonaAddr *a, const char *s, char **bound,
                       GError **errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, err;

    strcpy(sun.sun_path, a->path);
    /*
     * A socket file left by a killed server would make bind fail; replace
     * it, but only if nobody answers on it.
     */
    if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 &&
            connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            close(probe);
            g_set_error(errp, KONA_ERROR, EADDRINUSE,
                        "%s: another server is listening there", s);
            return -EADDRINUSE;
        }
        if (probe >= 0) {
            close(probe);
        }
        unlink(a->path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, 512) < 0) {
        err = errno;
        close(fd);
        goto fail;
    }
    *bound = g_strdup(s);
    return fd;

fail:
    g_set_error(errp, KONA_ERROR, err, "cannot listen on %s: %s", s,
                g_strerror(err));
    return -err;
}

static int listen_tcp(const KonaAddr *a, const char *s, char **bound,
                      bool *loopback, GError **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    }, *res = NULL, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST], port[NI_MAXSERV];
    int fd = -1, err = 0, one = 1, rc;

    rc = getaddrinfo(a->host, a->port, &hints, &res);
    if (rc) {
        g_set_error(errp, KONA_ERROR, EADDRNOTAVAIL,
                    "cannot resolve %s: %s", s, gai_strerror(rc));
        return -EADDRNOTAVAIL;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, 512) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        g_set_error(errp, KONA_ERROR, err, "cannot listen on %s: %s", s,
                    g_strerror(err));
        return -err;
    }
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
                sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    *loopback = sockaddr_is_loopback((struct sockaddr *)&ss);
    *bound = ss.ss_family == AF_INET6 ?
             g_strdup_printf("tcp:[%s]:%s", host, port) :
             g_strdup_printf("tcp:%s:%s", host, port);
    return fd;
}

int kona_listen(const char *addr, char **bound, bool *loopback, GError **errp)
{
    KonaAddr a;
    int fd;

    if (!kona_addr_parse(addr, &a, errp)) {
        return -EINVAL;
    }
    *loopback = true;
    fd = a.kind == KONA_ADDR_UNIX ? listen_unix(&a, addr, bound, errp)
                                  : listen_tcp(&a, addr, bound, loopback, errp);
    kona_addr_clear(&a);
    return fd;
}

/* Non-blocking connect bounded by @timeout_ms; 0 or -errno. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len,
                           unsigned timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int err = 0, rc;
    socklen_t el = sizeof(err);

    kona_set_nonblock(fd, true);
    if (connect(fd, sa, len) == 0) {
        goto done;
    }
    if (errno != EINPROGRESS && errno != EAGAIN) {
        return -errno;
    }
    do {
        rc = poll(&pfd, 1, timeout_ms ? (int)timeout_ms : -1);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        return -ETIMEDOUT;
    }
    if (rc < 0) {
        return -errno;
    }
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        return -err;
    }
done:
    kona_set_nonblock(fd, false);
    return 0;
}

int kona_connect(const char *addr, unsigned timeout_ms, GError **errp)
{
    KonaAddr a;
    int fd = -1, rc = 0;

    if (!kona_addr_parse(addr, &a, errp)) {
        return -EINVAL;
    }
    if (a.kind == KONA_ADDR_UNIX) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };

        strcpy(sun.sun_path, a.path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        rc = fd < 0 ? -errno
             : connect_timeout(fd, (struct sockaddr *)&sun, sizeof(sun),
                               timeout_ms);
    } else {
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC,
            .ai_socktype = SOCK_STREAM,
            .ai_flags = AI_NUMERICSERV,
        }, *res = NULL, *ai;
        int gai = getaddrinfo(a.host, a.port, &hints, &res);

        if (gai) {
            g_set_error(errp, KONA_ERROR, EHOSTUNREACH,
                        "cannot resolve %s: %s", addr, gai_strerror(gai));
            kona_addr_clear(&a);
            return -EHOSTUNREACH;
        }
        rc = -ENOENT;
        for (ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                rc = -errno;
                continue;
            }
            rc = connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
            if (rc == 0) {
                break;
            }
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
    }
    kona_addr_clear(&a);
    if (rc < 0) {
        if (fd >= 0) {
            close(fd);
        }
        g_set_error(errp, KONA_ERROR, -rc, "cannot connect to %s: %s", addr,
                    rc == -ETIMEDOUT ? "connect timed out" : g_strerror(-rc));
        return rc;
    }
    kona_sock_tune(fd);
    return fd;
}
