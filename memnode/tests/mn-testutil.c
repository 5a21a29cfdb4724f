/*
 * Test helpers: real server processes, ready-fd handshake, cleanup.
 */
#include "mn-testutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kona-link.h"
#include "kona-sock.h"
#include "kona-util.h"

static const char *bin_path(const char *env, const char *name)
{
    static GHashTable *cache;
    const char *e = g_getenv(env);
    char *p;

    if (e) {
        return e;
    }
    if (!cache) {
        cache = g_hash_table_new(g_str_hash, g_str_equal);
    }
    p = g_hash_table_lookup(cache, name);
    if (!p) {
        /* tests run from the build tree, next to the binaries */
        g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *dir = g_path_get_dirname(self);
        p = g_build_filename(dir, name, NULL);
        g_hash_table_insert(cache, (char *)name, p);
    }
    return p;
}

const char *mn_memnode_bin(void)
{
    return bin_path("KONA_MEMNODE", "kona-memnode");
}

const char *mn_rackctl_bin(void)
{
    return bin_path("KONA_RACKCTL", "kona-rackctl");
}

char *mn_tmpdir(void)
{
    g_autoptr(GError) err = NULL;
    char *d = g_dir_make_tmp("kona-test-XXXXXX", &err);

    g_assert_no_error(err);
    return d;
}

void mn_rm_rf(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *e;

    if (dir) {
        while ((e = g_dir_read_name(dir))) {
            g_autofree char *p = g_build_filename(path, e, NULL);
            if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
                !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
                mn_rm_rf(p);
            } else {
                unlink(p);
            }
        }
    }
    rmdir(path);
}

uint64_t mn_proc_rss_kib(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *text = NULL;
    const char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strstr(text, "VmRSS:");
    g_assert_nonnull(p);
    return g_ascii_strtoull(p + 6, NULL, 10);
}

uint64_t mn_proc_cpu_ms(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *p;
    long hz = sysconf(_SC_CLK_TCK);

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    /* the fields after the command name, which may hold spaces */
    p = strrchr(text, ')');
    g_assert_nonnull(p);
    f = g_strsplit(p + 2, " ", -1);
    g_assert_cmpuint(g_strv_length(f), >, 13);
    /* f[0] is field 3 (state): utime is field 14, stime 15 */
    return (g_ascii_strtoull(f[11], NULL, 10) +
            g_ascii_strtoull(f[12], NULL, 10)) * 1000 / (uint64_t)hz;
}

unsigned mn_proc_fds(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    unsigned n = 0;

    g_assert_nonnull(d);
    while (g_dir_read_name(d)) {
        n++;
    }
    return n;
}

void mn_fill(void *buf, size_t len, uint64_t seed)
{
    uint8_t *p = buf;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

    for (size_t i = 0; i < len; i++) {
        /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

MnProc *mn_proc_start(const char *binary, const char *const *argv)
{
    GPtrArray *args = g_ptr_array_new_with_free_func(g_free);
    MnProc *p = g_new0(MnProc, 1);
    int pfd[2];
    char buf[1024];
    size_t got = 0;
    int64_t deadline = kona_now_ms() + 10000;
    char *nl;

    g_assert_cmpint(pipe(pfd), ==, 0);
    g_ptr_array_add(args, g_strdup(binary));
    for (const char *const *a = argv; *a; a++) {
        g_ptr_array_add(args, g_strdup(*a));
    }
    g_ptr_array_add(args, g_strdup_printf("--ready-fd=%d", pfd[1]));
    g_ptr_array_add(args, NULL);

    p->pid = fork();
    g_assert_cmpint(p->pid, >=, 0);
    if (p->pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* stdout would interleave with TAP output; keep stderr for logs */
        if (!freopen("/dev/null", "w", stdout)) {
            _exit(126);
        }
        execv(binary, (char **)args->pdata);
        fprintf(stderr, "exec %s: %s\n", binary, g_strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    g_ptr_array_free(args, TRUE);

    while (!(memchr(buf, '\n', got))) {
        struct pollfd pl = { .fd = pfd[0], .events = POLLIN };
        int64_t left = deadline - kona_now_ms();
        ssize_t n;

        if (left <= 0 || poll(&pl, 1, (int)left) <= 0) {
            g_error("%s did not become ready within 10 s", binary);
        }
        n = read(pfd[0], buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) {
            int st;
            waitpid(p->pid, &st, 0);
            g_error("%s exited before becoming ready (status %d)", binary, st);
        }
        got += (size_t)n;
    }
    close(pfd[0]);
    buf[got] = 0;
    nl = strchr(buf, '\n');
    *nl = 0;
    g_assert_true(g_str_has_prefix(buf, "READY "));
    p->addrs = g_strsplit(buf + 6, " ", -1);
    return p;
}

/* Wait for the child to exit (a pidfd becomes readable); -1 on timeout. */
static int wait_exit(MnProc *p, int timeout_ms)
{
    int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    struct pollfd pl = { .fd = pidfd, .events = POLLIN };
    int st;

    g_assert_cmpint(pidfd, >=, 0);
    if (poll(&pl, 1, timeout_ms) <= 0) {
        close(pidfd);
        return -1;
    }
    close(pidfd);
    g_assert_cmpint(waitpid(p->pid, &st, 0), ==, p->pid);
    p->pid = 0;
    return st;
}

int mn_proc_stop(MnProc *p)
{
    int st;

    if (!p->pid) {
        return 0;
    }
    kill(p->pid, SIGTERM);
    st = wait_exit(p, 10000);
    if (st == -1) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &st, 0);
        p->pid = 0;
        g_error("server did not exit within 10 s of SIGTERM");
    }
    return st;
}

void mn_proc_kill(MnProc *p)
{
    if (p->pid) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
}

void mn_proc_free(MnProc *p)
{
    if (!p) {
        return;
    }
    mn_proc_kill(p);
    g_strfreev(p->addrs);
    g_free(p);
}

MnProxy *mn_proxy_start(const char *target)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *a1 = g_strdup_printf("--listen=unix:%s/p.sock", dir);
    g_autofree char *a2 = g_strdup_printf("--target=%s", target);
    g_autofree char *a3 = g_strdup_printf("--control=unix:%s/c.sock", dir);
    const char *const argv[] = { a1, a2, a3, NULL };
    MnProxy *p = g_new0(MnProxy, 1);

    p->proc = mn_proc_start(g_getenv("KONA_FAULTPROXY"), argv);
    p->proc->tmpdir = g_steal_pointer(&dir);
    p->ctl = kona_connect(p->proc->addrs[1], 5000, &err);
    g_assert_no_error(err);
    return p;
}

void mn_proxy_cmd(MnProxy *p, const char *cmd)
{
    g_autofree char *line = g_strdup_printf("%s\n", cmd);
    char buf[128];
    ssize_t n;

    g_assert_cmpint(write(p->ctl, line, strlen(line)), ==, strlen(line));
    n = read(p->ctl, buf, sizeof(buf) - 1);
    g_assert_cmpint(n, >, 0);
    buf[n] = 0;
    g_assert_cmpstr(buf, ==, "ok\n");
}

void mn_proxy_free(MnProxy *p)
{
    close(p->ctl);
    mn_proc_kill(p->proc);
    mn_rm_rf(p->proc->tmpdir);
    g_free(p->proc->tmpdir);
    mn_proc_free(p->proc);
    g_free(p);
}

static MnProc *node_exec(MnNode *n, const char *const *extra)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    MnProc *p;

    g_ptr_array_add(a, g_strdup_printf("--listen=unix:%s/mn.sock", n->dir));
    g_ptr_array_add(a, g_strdup("--listen=tcp:127.0.0.1:0"));
    if (n->data_dir) {
        g_ptr_array_add(a, g_strdup_printf("--data-dir=%s", n->data_dir));
    }
    for (const char *const *e = extra; e && *e; e++) {
        g_ptr_array_add(a, g_strdup(*e));
    }
    g_ptr_array_add(a, NULL);
    p = mn_proc_start(mn_memnode_bin(), (const char *const *)a->pdata);
    g_ptr_array_free(a, TRUE);
    g_assert_cmpuint(g_strv_length(p->addrs), ==, 2);
    g_assert_true(g_str_has_prefix(p->addrs[0], "unix:"));
    g_assert_true(g_str_has_prefix(p->addrs[1], "tcp:127.0.0.1:"));
    g_assert_cmpstr(p->addrs[1], !=, "tcp:127.0.0.1:0");
    return p;
}

MnNode *mn_node_start(const char *data_dir, const char *const *extra)
{
    MnNode *n = g_new0(MnNode, 1);

    n->dir = mn_tmpdir();
    n->data_dir = g_strdup(data_dir);
    n->proc = node_exec(n, extra);
    n->unix_addr = g_strdup(n->proc->addrs[0]);
    n->tcp_addr = g_strdup(n->proc->addrs[1]);
    return n;
}

void mn_node_restart(MnNode *n, bool crash, const char *const *extra)
{
    if (crash) {
        mn_proc_kill(n->proc);
    } else {
        g_assert_cmpint(mn_proc_stop(n->proc), ==, 0);
    }
    mn_proc_free(n->proc);
    n->proc = node_exec(n, extra);
    g_free(n->tcp_addr);
    n->tcp_addr = g_strdup(n->proc->addrs[1]);
}

void mn_node_free(MnNode *n)
{
    if (n->proc->pid) {
        g_assert_cmpint(mn_proc_stop(n->proc), ==, 0);
    }
    mn_proc_free(n->proc);
    mn_rm_rf(n->dir);
    g_free(n->dir);
    g_free(n->unix_addr);
    g_free(n->tcp_addr);
    g_free(n->data_dir);
    g_free(n);
}

KonaLink *mn_link_to(const char *addr)
{
    g_autoptr(GError) err = NULL;
    KonaLink *l = kona_link_connect(addr, 5000, &err);

    g_assert_no_error(err);
    g_assert_nonnull(l);
    return l;
}

uint64_t mn_alloc_slab(KonaLink *l, uint64_t size)
{
    g_autoptr(GError) err = NULL;
    uint64_t id = 0;

    g_assert_cmpint(kona_link_slab_alloc(l, size, &id, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(id, !=, 0);
    return id;
}
