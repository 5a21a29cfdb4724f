/*
 * Test helpers: run real kona-memnode / kona-rackctl processes and wait
 * for their ready line (--ready-fd), so no test sleeps to synchronise.
 */
#ifndef MN_TESTUTIL_H
#define MN_TESTUTIL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct MnProc {
    pid_t pid;
    char **addrs;               /* from the READY line, NULL terminated */
    char *tmpdir;               /* private directory (sockets), removed */
} MnProc;

/*
 * Start @binary with @argv (NULL terminated, without --ready-fd, which is
 * added) and wait up to 10 s for it to be ready.  The child dies with the
 * test process (PR_SET_PDEATHSIG) so a crashed test leaves nothing.
 */
MnProc *mn_proc_start(const char *binary, const char *const *argv);
/* SIGTERM, wait (up to 10 s, then SIGKILL); returns the exit status. */
int mn_proc_stop(MnProc *p);
/* SIGKILL and reap: a crash. */
void mn_proc_kill(MnProc *p);
void mn_proc_free(MnProc *p);

/*
 * A kona-memnode on a private unix socket and a TCP port on 127.0.0.1,
 * with --data-dir=@data_dir (unless NULL) and @extra options.
 */
typedef struct MnNode {
    MnProc *proc;
    char *dir;                  /* private, removed by mn_node_free */
    char *unix_addr;
    char *tcp_addr;
    char *data_dir;             /* the caller's, or NULL */
} MnNode;

MnNode *mn_node_start(const char *data_dir, const char *const *extra);
/* Stop (@crash: SIGKILL) and start again on the same socket and data. */
void mn_node_restart(MnNode *n, bool crash, const char *const *extra);
/* Stop it (it must exit 0 if still running) and clean up. */
void mn_node_free(MnNode *n);

/* A kona-link to @addr (5 s timeouts); asserts it connects. */
struct KonaLink *mn_link_to(const char *addr);
/* A new slab of @size on @l; asserts it works. */
uint64_t mn_alloc_slab(struct KonaLink *l, uint64_t size);

/* kona-faultproxy ($KONA_FAULTPROXY) in front of @target. */
typedef struct MnProxy {
    MnProc *proc;               /* addrs[0]: where clients connect */
    int ctl;                    /* its control socket */
} MnProxy;

MnProxy *mn_proxy_start(const char *target);
/* Send a control command ("cut", "shared off", ...); expects "ok". */
void mn_proxy_cmd(MnProxy *p, const char *cmd);
void mn_proxy_free(MnProxy *p);

/* Path of a built binary: $KONA_MEMNODE / $KONA_RACKCTL or next to us. */
const char *mn_memnode_bin(void);
const char *mn_rackctl_bin(void);

/* A fresh temporary directory, removed by mn_rm_rf. */
char *mn_tmpdir(void);
void mn_rm_rf(const char *path);

/* Resident memory (VmRSS) of @pid in KiB, from /proc/PID/status. */
uint64_t mn_proc_rss_kib(pid_t pid);
/* CPU time (user + system) @pid has used, in milliseconds. */
uint64_t mn_proc_cpu_ms(pid_t pid);
/* Descriptors @pid has open. */
unsigned mn_proc_fds(pid_t pid);

/* Deterministic pseudo-random bytes. */
void mn_fill(void *buf, size_t len, uint64_t seed);

#endif /* MN_TESTUTIL_H */
