/*
 * test_server_harness.h — shared by the tests/test_server_*.c integration
 * suites: starts the real build/invcored on a free loopback port (--port 0;
 * the port is read back from its start-up log line), talks to it with
 * hiredis or raw sockets, and stops it by the pid it started (SIGTERM,
 * then waits; SIGKILL only after a bounded wait).
 *
 * Mode: a temporary data dir with --fsync always (replies wait for
 * durability); a server that does not start fails the test.
 * INVCORE_SERVER_TEST_MEMORY=1 runs --in-memory instead.
 * INVCORED overrides the binary's path.
 */
#ifndef TEST_SERVER_HARNESS_H
#define TEST_SERVER_HARNESS_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "test_util.h"

/* The suites' temp dirs: /tmp/invcore-invcored-XXXXXX (tu_tmpdir). */
#define SRV_DIR_NAME "invcored"
#define SRV_DIR_PREFIX "/tmp/invcore-" SRV_DIR_NAME "-"

#define SRV_START_TIMEOUT_MS 10000
#define SRV_STOP_TIMEOUT_MS 10000
#define SRV_MAX_ARGS 24

typedef struct {
    pid_t pid;
    int port;
    char dir[128]; /* temp dir: log file and data dir */
    char log[160];
    char data[160];
    int durable; /* started with a data dir */
} srv_t;

/* The suites' names for clock.h's monotonic clock and sleep. */
static inline long long srv_now_ms(void)
{
    return clock_mono_ms();
}
static inline void srv_sleep_ms(int ms)
{
    tu_sleep_ms((unsigned)ms);
}

static inline const char *srv_bin(void)
{
    const char *b = getenv("INVCORED");
    return b ? b : "build/invcored";
}

/* Starts invcored with the given extra arguments (NULL-terminated) plus
 * --port 0 --bind 127.0.0.1 --threads 2. Returns 0 or -1 (server exited:
 * see s->log). */
static inline int srv_spawn(srv_t *s, int use_data, const char *const *extra)
{
    const char *argv[SRV_MAX_ARGS + 12];
    int n = 0;
    argv[n++] = srv_bin();
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    /* Two loops unless a test asks otherwise (the last --threads wins): the
     * cross-loop paths stay covered on any machine, whatever the default. */
    argv[n++] = "--threads";
    argv[n++] = "2";
    if (use_data) {
        argv[n++] = "--data-dir";
        argv[n++] = s->data;
    } else {
        argv[n++] = "--in-memory";
    }
    for (int i = 0; extra && extra[i] && i < SRV_MAX_ARGS; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    unlink(s->log);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* dies with the test (a failed or killed suite leaves no server
         * behind; kept across the exec a cluster node restarts itself by) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    long long deadline = srv_now_ms() + SRV_START_TIMEOUT_MS;
    while (srv_now_ms() < deadline) {
        char buf[4096] = {0};
        FILE *f = fopen(s->log, "r");
        if (f) {
            size_t r = fread(buf, 1, sizeof buf - 1, f);
            buf[r] = 0;
            fclose(f);
            char *p = strstr(buf, "listening on 127.0.0.1:");
            if (p) {
                s->port = atoi(p + strlen("listening on 127.0.0.1:"));
                s->durable = use_data;
                return 0;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        srv_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static inline void srv_prepare(srv_t *s)
{
    memset(s, 0, sizeof *s);
    tu_tmpdir(s->dir, sizeof s->dir, SRV_DIR_NAME);
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    snprintf(s->data, sizeof s->data, "%s/data", s->dir);
}

/* Starts in durable mode (in memory with INVCORE_SERVER_TEST_MEMORY). */
static inline void srv_start(srv_t *s, const char *const *extra)
{
    const char *always[SRV_MAX_ARGS + 3] = {"--fsync", "always", NULL};
    int k = 2;
    for (int i = 0; extra && extra[i] && k < SRV_MAX_ARGS; i++)
        always[k++] = extra[i];
    always[k] = NULL;
    srv_prepare(s);
    if (getenv("INVCORE_SERVER_TEST_MEMORY"))
        cr_assert_eq(srv_spawn(s, 0, extra), 0, "invcored did not start (log %s)", s->log);
    else
        cr_assert_eq(srv_spawn(s, 1, always), 0, "invcored did not start (log %s)", s->log);
}

/* SIGTERM, wait; returns the exit status (or -1 if it had to be killed). */
static inline int srv_stop(srv_t *s)
{
    int st = 0;
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    long long deadline = srv_now_ms() + SRV_STOP_TIMEOUT_MS;
    while (srv_now_ms() < deadline) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        srv_sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static inline void srv_cleanup(srv_t *s)
{
    srv_stop(s);
    /* only a directory srv_prepare made */
    if (s->dir[0] && strncmp(s->dir, SRV_DIR_PREFIX, strlen(SRV_DIR_PREFIX)) == 0 &&
        tu_remove_tree(s->dir) != 0)
        fprintf(stderr, "cleanup of %s failed\n", s->dir);
}

/* The HTTP port s's invcored chose (--port 0 takes a free one for HTTP
 * too): the " http=<port>" of its start-up line. */
static inline int srv_http_port(const srv_t *s)
{
    char buf[4096] = {0};
    FILE *f = fopen(s->log, "r");
    cr_assert_not_null(f, "no log %s", s->log);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    const char *p = strstr(buf, " http=");
    cr_assert_not_null(p, "no http= in the start-up line: %s", buf);
    int port = atoi(p + strlen(" http="));
    cr_assert_gt(port, 0, "http=%d", port);
    return port;
}

/* How long a test waits for one reply before it fails: a bound that stops a
 * hung test, never a measure of speed, so far above any reply's time even
 * under a ThreadSanitizer server on a loaded 2-core machine (a 64 MiB
 * journal's pipelined transactions once took over 5 s there). */
#define SRV_REPLY_TIMEOUT_S 60

static inline redisContext *srv_connect(const srv_t *s)
{
    struct timeval tv = {SRV_REPLY_TIMEOUT_S, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    cr_assert(c != NULL && !c->err, "connect: %s", c ? c->errstr : "null");
    redisSetTimeout(c, tv);
    return c;
}

/* For client threads, where Criterion may not assert: a connection with
 * the same timeouts as srv_connect, or NULL. */
static inline redisContext *srv_connect_port(int port)
{
    struct timeval tv = {SRV_REPLY_TIMEOUT_S, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c != NULL && c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK)
        return c;
    if (c != NULL)
        redisFree(c);
    return NULL;
}

/* Runs a command (hiredis printf format), asserts a reply came back. */
static inline redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "no reply to '%s': %s", fmt, c->errstr);
    return r;
}

static inline void expect_status(redisContext *c, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "no reply to '%s'", fmt);
    cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0,
              "'%s': want +%s, got type %d '%s'", fmt, want, r->type, r->str ? r->str : "");
    freeReplyObject(r);
}

/* Expects an error reply starting with prefix (e.g. "NOTFOUND"). */
static inline void expect_error(redisContext *c, const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "no reply to '%s'", fmt);
    cr_assert(r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0,
              "'%s': want -%s..., got type %d '%s'", fmt, prefix, r->type, r->str ? r->str : "");
    freeReplyObject(r);
}

static inline long long expect_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "'%s': type %d '%s'", fmt, r->type,
                 r->str ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Expects [available, reserved, revision]; returns the revision. */
static inline long long expect_level(redisContext *c, long long avail, long long reserved,
                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "'%s': type %d '%s'", fmt, r->type,
                 r->str ? r->str : "");
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->integer, avail, "'%s' available %lld want %lld", fmt,
                 r->element[0]->integer, avail);
    cr_assert_eq(r->element[1]->integer, reserved, "'%s' reserved %lld want %lld", fmt,
                 r->element[1]->integer, reserved);
    long long rev = r->element[2]->integer;
    cr_assert_geq(rev, 1);
    freeReplyObject(r);
    return rev;
}

/* ---- raw sockets ------------------------------------------------------- */

static inline int raw_connect(const srv_t *s)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static inline void raw_send(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the server may close on bad framing: fine */
        c += w;
        n -= (size_t)w;
    }
}

/* Reads until `want` bytes, EOF or timeout; returns bytes read. */
static inline size_t raw_recv(int fd, char *buf, size_t cap, size_t want, int timeout_ms)
{
    size_t got = 0;
    long long deadline = srv_now_ms() + timeout_ms;
    while (got < want && got < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(deadline - srv_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t r = recv(fd, buf + got, cap - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* True when the peer closed (EOF) within timeout_ms. */
static inline int raw_closed(int fd, int timeout_ms)
{
    char b[256];
    long long deadline = srv_now_ms() + timeout_ms;
    while (srv_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t r = recv(fd, b, sizeof b, 0);
            if (r == 0 || (r < 0 && errno == ECONNRESET))
                return 1;
        }
    }
    return 0;
}

/* True once the server's log (its stderr) contains needle, within
 * timeout_ms: waits for a line the server writes, never assumes it. */
static inline int srv_log_wait(const srv_t *s, const char *needle, int timeout_ms)
{
    static char buf[1 << 16];
    long long deadline = srv_now_ms() + timeout_ms;
    for (;;) {
        FILE *f = fopen(s->log, "r");
        if (f) {
            size_t r = fread(buf, 1, sizeof buf - 1, f);
            buf[r] = 0;
            fclose(f);
            if (strstr(buf, needle))
                return 1;
        }
        if (srv_now_ms() >= deadline)
            return 0;
        srv_sleep_ms(10);
    }
}

/* ---- the suite's server -------------------------------------------------
 * Most suites run one server and one connection per test: S and C, started
 * by srv_suite_start (a suite's .init, with its extra flags or NULL) and
 * stopped by srv_suite_stop (.fini). */
static srv_t S __attribute__((unused));
static redisContext *C __attribute__((unused));

static inline void srv_suite_start(const char *const *extra)
{
    srv_start(&S, extra);
    C = srv_connect(&S);
}

static inline void srv_suite_stop(void)
{
    if (C)
        redisFree(C);
    C = NULL;
    srv_cleanup(&S);
}

#endif /* TEST_SERVER_HARNESS_H */
