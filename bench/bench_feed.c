/*
 * bench_feed.c — the change feed's figures through invcored (RESP), in
 * one run, each with its target and PASS/MISS:
 *
 *   1. read: FEED.READ FROM pos COUNT 1000 from one connection, one request
 *      at a time, over a journal of BENCH_FEED_RECORDS single-level adjust
 *      records written first (64 pipelining clients): records/s received
 *      and decoded by the client (target >= 1M records/s).
 *   2. write path: LEVEL.ADJUST from 64 clients (one request in flight
 *      each, each on its own level) for BENCH_SECONDS per row, with 0 and
 *      with 4 clients following the feed (FEED.READ FROM next COUNT 1000
 *      BLOCK 0, parked between changes), rows alternating 0, 4, 0, 4 ...
 *      BENCH_FEED_ROUNDS times; the medians are compared (target: the 4
 *      readers cost <= 10% of the writes/s). The readers' records/s and
 *      their lag at the end of each row are printed too.
 *
 * Starts its own invcored (INVCORED, default build/invcored) on a free
 * loopback port with a temp data dir under /tmp (removed at the end),
 * --fsync BENCH_FEED_FSYNC (default interval: the server's default), and
 * stops it by its pid. One client thread drives every connection with
 * poll(), so the client is one core's worth of load, as redis-benchmark;
 * the followers have a thread of their own.
 * Knobs (env): BENCH_FEED_RECORDS (1000000), BENCH_SECONDS (1),
 * BENCH_FEED_ROUNDS (7), BENCH_FEED_FSYNC (always|interval|none),
 * INVCORED, INVCORED_THREADS (the server's event loops; default its own).
 */
#include "bench_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>

#define WRITERS 64 /* the write path's clients */
#define READERS 4 /* the feed followers of the "4 readers" rows */
#define READ_COUNT 1000 /* FEED.READ COUNT */
#define PRELOAD_DEPTH 64 /* requests in flight per client while loading */
#define LEVEL_START 1000000 /* each level's stock: +-1 adjusts never reach 0 */
#define ROUNDS_MAX 16
#define IN_MAX (256u << 20) /* a reply larger than this is an error */
#define IN_START (256u << 10)
#define REQ_MAX 160 /* bytes of one formatted request */
#define DEPTH_MAX 16 /* nesting of a reply */
#define IO_TIMEOUT_MS 30000 /* no progress for this long: give up */

typedef struct {
    int fd;
    bool reader; /* follows the feed; else adjusts its level */
    uint64_t level; /* writer: its item id */
    uint64_t pos; /* reader: FEED.READ FROM */
    uint64_t sent, done; /* requests sent, replies received */
    char *in;
    size_t in_len, in_cap;
    /* reply_size's progress through the reply at in[0]: bytes of whole
     * elements scanned, and elements still owed (0: not started) */
    size_t scan_at;
    uint64_t scan_left;
    uint64_t records; /* reader: records received */
} conn;

static char g_dir[64];
static pid_t g_pid;

static void die(const char *what)
{
    fprintf(stderr, "bench_feed: %s\n", what);
    if (g_pid > 0) {
        kill(g_pid, SIGKILL);
        waitpid(g_pid, NULL, 0);
    }
    exit(1);
}

/* ---- replies ---------------------------------------------------------------- */

/* The number in a header line at p ("*12\r\n" -> 12); *line its length
 * (a simple string's text is skipped to its end). LLONG_MIN: incomplete.
 * By hand, not strtoll: the client parses every element of a million
 * records per second and must not be what is measured. */
static long long header_num(const char *p, const char *end, size_t *line)
{
    const char *q = p + 1;
    bool neg = q < end && *q == '-';
    long long v = 0;
    q += neg;
    while (q < end && *q >= '0' && *q <= '9')
        v = v * 10 + (*q++ - '0');
    while (q < end && *q != '\n')
        q++;
    if (q >= end)
        return LLONG_MIN;
    *line = (size_t)(q - p) + 1;
    return neg ? -v : v;
}

/* Bytes of the complete reply at c->in (0: incomplete). Iterative: `left`
 * counts the elements still owed, so nesting costs no recursion; an
 * incomplete reply's progress is kept in c (scan_at, scan_left), so a
 * large reply arriving in many reads is scanned once. An error reply or a
 * malformed one ends the run. */
static size_t reply_size(conn *c)
{
    const char *p = c->in, *at = p + c->scan_at, *end = p + c->in_len;
    uint64_t left = c->scan_left ? c->scan_left : 1;
    while (left > 0) {
        size_t line = 0;
        c->scan_at = (size_t)(at - p);
        c->scan_left = left;
        if (at >= end)
            return 0;
        long long v = header_num(at, end, &line);
        if (v == LLONG_MIN)
            return 0;
        switch (at[0]) {
        case '$':
            if (v >= 0) {
                if ((size_t)(end - at) < line + (size_t)v + 2)
                    return 0;
                line += (size_t)v + 2;
            }
            break;
        case '*':
            left += v > 0 ? (uint64_t)v : 0;
            break;
        case '%':
            left += v > 0 ? 2 * (uint64_t)v : 0;
            break;
        case ':':
        case '+':
        case '_':
        case '#':
            break;
        case '-':
            fprintf(stderr, "bench_feed: error reply %.*s\n", (int)line, at);
            die("an error reply");
            break;
        default:
            die("a malformed reply");
        }
        at += line;
        left--;
    }
    c->scan_at = 0;
    c->scan_left = 0;
    return (size_t)(at - p);
}

/* A FEED.READ page "*2\r\n:<next>\r\n*<n>\r\n...": its next position and
 * record count (a nil reply: 0 records, *next unchanged). */
static void page_header(const char *p, size_t n, uint64_t *next, uint64_t *records)
{
    size_t line = 0;
    *records = 0;
    if (p[0] == '$' || p[0] == '_')
        return; /* nil: BLOCK timed out */
    if (strncmp(p, "*2\r\n:", 5) != 0)
        die("FEED.READ did not answer a page");
    long long v = header_num(p + 4, p + n, &line);
    *next = (uint64_t)v;
    *records = (uint64_t)header_num(p + 4 + line, p + n, &line);
}

/* ---- connections ------------------------------------------------------------ */

static int connect_to(int port)
{
    struct sockaddr_in a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, IO_TIMEOUT_MS);
            continue;
        }
        if (w <= 0)
            die("send");
        p += w;
        n -= (size_t)w;
    }
}

/* Reads what the socket has into c->in; false on EOF. */
static bool conn_read(conn *c)
{
    if (c->in_cap - c->in_len < IN_START / 2) {
        size_t cap = c->in_cap ? c->in_cap * 2 : IN_START;
        if (cap > IN_MAX)
            die("a reply over IN_MAX");
        c->in = realloc(c->in, cap);
        if (c->in == NULL)
            die("out of memory");
        c->in_cap = cap;
    }
    ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (r == 0)
        return false;
    if (r < 0 && errno != EAGAIN && errno != EINTR)
        die("recv");
    if (r > 0)
        c->in_len += (size_t)r;
    return true;
}

/* Blocks until one whole reply is in c->in; returns its size. */
static size_t conn_reply(conn *c)
{
    for (;;) {
        size_t n = c->in_len ? reply_size(c) : 0;
        if (n > 0)
            return n;
        struct pollfd pf = {c->fd, POLLIN, 0};
        if (poll(&pf, 1, IO_TIMEOUT_MS) <= 0 || !conn_read(c))
            die("no reply");
    }
}

static void conn_consume(conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* A request from printf arguments, as a RESP array of its words. */
static size_t format_req(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t format_req(char *out, const char *fmt, ...)
{
    char line[REQ_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *words[16], *save = NULL;
    size_t nw = 0, at;
    for (char *w = strtok_r(line, " ", &save); w != NULL && nw < 16; w = strtok_r(NULL, " ", &save))
        words[nw++] = w;
    at = (size_t)sprintf(out, "*%zu\r\n", nw);
    for (size_t i = 0; i < nw; i++)
        at += (size_t)sprintf(out + at, "$%zu\r\n%s\r\n", strlen(words[i]), words[i]);
    return at;
}

/* Sends one request and waits for its reply (set-up steps). */
static void call(conn *c, const char *req, size_t n)
{
    send_all(c->fd, req, n);
    conn_consume(c, conn_reply(c));
}

/* The next request of c into buf. */
static size_t next_request(conn *c, char *buf, bool block)
{
    if (c->reader)
        return format_req(buf, "FEED.READ FROM %llu COUNT %d%s", (unsigned long long)c->pos,
                          READ_COUNT, block ? " BLOCK 0" : "");
    /* +1 then -1: the level stays near its start */
    return format_req(buf, "LEVEL.ADJUST %llu 1 %s", (unsigned long long)c->level,
                      (c->sent & 1) ? "-1" : "1");
}

/* Handles every whole reply in c->in; returns the writes answered. */
static uint64_t conn_replies(conn *c)
{
    uint64_t writes = 0;
    size_t n;
    while (c->in_len > 0 && (n = reply_size(c)) > 0) {
        if (c->reader) {
            uint64_t recs;
            page_header(c->in, n, &c->pos, &recs);
            c->records += recs;
        } else {
            writes++;
        }
        c->done++;
        conn_consume(c, n);
    }
    return writes;
}

/* ---- the poll loop ---------------------------------------------------------- */

/* Keeps depth requests in flight on every connection until `until_ns` or
 * until `writes_max` writes were answered; returns the writes answered. */
static uint64_t drive(conn *cs, size_t n, unsigned depth, uint64_t until_ns, uint64_t writes_max)
{
    struct pollfd pf[WRITERS + READERS];
    char req[REQ_MAX * 2];
    uint64_t writes = 0;
    for (size_t i = 0; i < n; i++) {
        pf[i] = (struct pollfd){cs[i].fd, POLLIN, 0};
        int fl = fcntl(cs[i].fd, F_GETFL);
        fcntl(cs[i].fd, F_SETFL, fl | O_NONBLOCK);
    }
    while (bench_now_ns() < until_ns && writes < writes_max) {
        for (size_t i = 0; i < n; i++) {
            conn *c = &cs[i];
            unsigned want = c->reader ? 1 : depth;
            while (c->sent - c->done < want) {
                size_t len = next_request(c, req, true);
                send_all(c->fd, req, len);
                c->sent++;
            }
        }
        int r = poll(pf, (nfds_t)n, 100);
        if (r < 0 && errno != EINTR)
            die("poll");
        for (size_t i = 0; i < n && r > 0; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (!conn_read(&cs[i]))
                die("the server closed a connection");
            writes += conn_replies(&cs[i]);
        }
    }
    return writes;
}

/* The followers run on a thread of their own, as they would in another
 * program: their parsing must not delay the writers' poll loop (on a
 * 2-core machine they still share the CPUs with it and the server). */
typedef struct {
    conn *readers; /* READERS of them */
    uint64_t until_ns;
} follow_run;

static void *follow_main(void *p)
{
    follow_run *fr = p;
    drive(fr->readers, READERS, 1, fr->until_ns, UINT64_MAX);
    return NULL;
}

/* Waits for what is in flight, then makes the sockets blocking again;
 * readers parked in BLOCK 0 are closed instead (the server frees them). */
static void settle(conn *cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        conn *c = &cs[i];
        if (c->reader) {
            close(c->fd);
            c->fd = -1;
            continue;
        }
        int fl = fcntl(c->fd, F_GETFL);
        fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
        while (c->done < c->sent) {
            conn_reply(c);
            conn_replies(c);
        }
    }
}

/* ---- the server ------------------------------------------------------------- */

static int start_server(void)
{
    const char *bin = getenv("INVCORED") ? getenv("INVCORED") : "build/invcored";
    const char *fsync = getenv("BENCH_FEED_FSYNC") ? getenv("BENCH_FEED_FSYNC") : "interval";
    const char *threads = getenv("INVCORED_THREADS");
    char data[96], log[96];
    snprintf(g_dir, sizeof g_dir, "/tmp/invcore-bench-feed-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        die("mkdtemp");
    snprintf(data, sizeof data, "%s/data", g_dir);
    snprintf(log, sizeof log, "%s/server.log", g_dir);
    const char *argv[] = {bin,         "--port",     "0",  "--bind",
                          "127.0.0.1", "--data-dir", data, "--fsync",
                          fsync,       "--timeout",  "0",  threads ? "--threads" : NULL,
                          threads,     NULL};
    int port = bench_invcored_start(argv, log, &g_pid);
    if (port < 0)
        die("invcored did not start (is build/invcored built? INVCORED=...)");
    return port;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void stop_server(void)
{
    kill(g_pid, SIGTERM);
    waitpid(g_pid, NULL, 0);
    g_pid = 0;
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the figures ------------------------------------------------------------ */

static void open_writers(conn *cs, int port)
{
    char req[REQ_MAX * 2];
    memset(cs, 0, WRITERS * sizeof *cs);
    for (size_t i = 0; i < WRITERS; i++) {
        cs[i].fd = connect_to(port);
        cs[i].level = i + 1;
    }
    call(&cs[0], req, format_req(req, "LOC.SET 1 name bench"));
    for (size_t i = 0; i < WRITERS; i++) {
        call(&cs[0], req, format_req(req, "ITEM.SET %zu sku b%zu", i + 1, i + 1));
        call(&cs[0], req, format_req(req, "LEVEL.SET %zu 1 %d", i + 1, LEVEL_START));
    }
}

/* FEED.READ FROM $: the current end, where a follower starts. */
static uint64_t feed_end(conn *c)
{
    char req[REQ_MAX * 2];
    uint64_t next = 0, recs;
    send_all(c->fd, req, format_req(req, "FEED.READ FROM $"));
    size_t n = conn_reply(c);
    page_header(c->in, n, &next, &recs);
    conn_consume(c, n);
    return next;
}

/* Part 1: one connection reads every record after from. */
static double read_rate(int port, uint64_t records_min, uint64_t *got)
{
    conn c = {.fd = connect_to(port), .reader = true};
    char req[REQ_MAX * 2];
    uint64_t t0 = bench_now_ns();
    *got = 0;
    for (;;) {
        send_all(c.fd, req, next_request(&c, req, false));
        size_t n = conn_reply(&c);
        uint64_t recs;
        page_header(c.in, n, &c.pos, &recs);
        conn_consume(&c, n);
        *got += recs;
        if (recs == 0 || *got >= records_min)
            break;
    }
    double s = (double)(bench_now_ns() - t0) / 1e9;
    close(c.fd);
    free(c.in);
    return (double)*got / s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The server's CPU time so far (utime + stime of /proc/<pid>/stat), in
 * seconds: what the write path costs it, apart from the client's own. */
static double server_cpu_s(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)g_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(void)
{
    uint64_t records = bench_env_u64("BENCH_FEED_RECORDS", 1000000);
    double seconds = bench_env_double("BENCH_SECONDS", 1);
    uint64_t rounds = bench_env_u64("BENCH_FEED_ROUNDS", 7);
    static conn cs[WRITERS + READERS];
    if (rounds > ROUNDS_MAX)
        rounds = ROUNDS_MAX;
    signal(SIGPIPE, SIG_IGN);
    int port = start_server();
    open_writers(cs, port);
    printf("bench_feed: invcored --fsync %s, %d writers, FEED.READ COUNT %d\n",
           getenv("BENCH_FEED_FSYNC") ? getenv("BENCH_FEED_FSYNC") : "interval", WRITERS,
           READ_COUNT);

    /* 1. load, then read it all back from one connection */
    uint64_t t0 = bench_now_ns();
    drive(cs, WRITERS, PRELOAD_DEPTH, UINT64_MAX, records);
    settle(cs, WRITERS);
    double load_s = (double)(bench_now_ns() - t0) / 1e9;
    uint64_t got;
    double rate = read_rate(port, records, &got);
    printf("%-44s %12.0f records/s  (%llu records; loaded at %.0f writes/s)  target >= 1M: %s\n",
           "FEED.READ, one connection", rate, (unsigned long long)got, (double)records / load_s,
           rate >= 1e6 ? "PASS" : "MISS");

    /* 2. the write path with 0 and with READERS followers, alternating */
    double w0[ROUNDS_MAX], w4[ROUNDS_MAX], c0[ROUNDS_MAX], c4[ROUNDS_MAX];
    for (uint64_t r = 0; r < rounds; r++) {
        for (int with = 0; with < 2; with++) {
            follow_run fr = {cs + WRITERS, 0};
            pthread_t th;
            for (size_t k = 0; with && k < READERS; k++) {
                conn *c = &cs[WRITERS + k];
                free(c->in);
                memset(c, 0, sizeof *c);
                c->fd = connect_to(port);
                c->reader = true;
                c->pos = feed_end(c);
            }
            uint64_t start = bench_now_ns();
            double cpu0 = server_cpu_s();
            fr.until_ns = start + (uint64_t)(seconds * 1e9);
            if (with && pthread_create(&th, NULL, follow_main, &fr) != 0)
                die("pthread_create");
            uint64_t writes = drive(cs, WRITERS, 1, fr.until_ns, UINT64_MAX);
            double s = (double)(bench_now_ns() - start) / 1e9;
            (with ? w4 : w0)[r] = (double)writes / s;
            /* the server's CPU per write, microseconds */
            (with ? c4 : c0)[r] = writes ? (server_cpu_s() - cpu0) * 1e6 / (double)writes : 0;
            if (with)
                pthread_join(th, NULL);
            uint64_t recs = 0, pos[READERS];
            for (size_t k = 0; with && k < READERS; k++) {
                recs += cs[WRITERS + k].records;
                pos[k] = cs[WRITERS + k].pos;
            }
            settle(cs, WRITERS + (with ? READERS : 0));
            if (with) {
                uint64_t lag = 0, end = feed_end(&cs[0]);
                for (size_t k = 0; k < READERS; k++)
                    lag += end - pos[k];
                printf("  round %llu: %d readers received %.0f records/s each; "
                       "behind the end by %llu journal bytes (sum, in-flight writes included)\n",
                       (unsigned long long)r + 1, READERS, (double)recs / READERS / s,
                       (unsigned long long)lag);
            }
        }
    }
    double m0 = median(w0, rounds), m4 = median(w4, rounds);
    double u0 = median(c0, rounds), u4 = median(c4, rounds);
    double drop = m0 > 0 ? (m0 - m4) / m0 * 100 : 0;
    printf("%-44s %12.0f writes/s  server CPU %.1f us/write\n",
           "LEVEL.ADJUST, 64 clients, 0 readers", m0, u0);
    printf("%-44s %12.0f writes/s  server CPU %.1f us/write (readers included)  drop %.1f%%  "
           "target <= 10%%: %s\n",
           "LEVEL.ADJUST, 64 clients, 4 BLOCK readers", m4, u4, drop, drop <= 10 ? "PASS" : "MISS");
    for (size_t i = 0; i < WRITERS; i++)
        close(cs[i].fd);
    stop_server();
    return 0;
}
