/*
 * bench_clients.c — what hostile and slow clients cost the others (issue
 * 17, Build 6). Starts its own invcored (INVCORED, default build/invcored;
 * in memory, so the figures are the network layer's, not the disk's) and
 * measures the latency of well-behaved clients (closed loop, one
 * LEVEL.ADJUST at a time each) twice: alone, then with hostile clients
 * connected and active:
 *
 *   idle        connections that never send anything
 *   one-byte    clients sending a request one byte per BENCH_CLIENTS_SLOW_MS
 *   non-readers clients pipelining ECHO requests and reading nothing
 *   partial     clients that sent most of a 1 MiB argument and stopped
 *   half-open   clients that sent half a request and went silent
 *
 * Prints one row per phase (ops/s, p50, p99, p99.9 in microseconds), the
 * p99 ratio (the target is at most 2x), and the server's client buffer
 * memory and RSS with the hostile clients connected (INFO).
 *
 * Knobs (environment): BENCH_CLIENTS_SECONDS (per phase, 3),
 * BENCH_CLIENTS_GOOD (8), BENCH_CLIENTS_IDLE (5000, fewer if the descriptor
 * limit says so), BENCH_CLIENTS_SLOW (100), BENCH_CLIENTS_SLOW_MS (50),
 * BENCH_CLIENTS_NOREAD (4), BENCH_CLIENTS_PARTIAL (200),
 * BENCH_CLIENTS_HALFOPEN (100), INVCORED_THREADS (the server's loops).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_util.h"

#define GOOD_MAX 64
#define SAMPLES_MAX (4u << 20) /* latencies kept per good client per phase */
#define IO_TIMEOUT_MS 30000
#define FDS_SPARE 128 /* descriptors kept for the bench itself */
#define SLOW_REQ "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n"
#define SLOW_REPLY "$5\r\nhello\r\n"
#define PARTIAL_HEADER "*2\r\n$4\r\nECHO\r\n$1048576\r\n"
#define PARTIAL_BYTES (256u << 10) /* of the 1 MiB argument */
#define HALFOPEN_REQ "*2\r\n$4\r\nECHO\r\n$100\r\nabc"
#define NOREAD_PAYLOAD 1000u
#define NOREAD_BATCH 64u /* requests in one send of a non-reader */

static pid_t g_pid;
static char g_log[96];

static void die(const char *what)
{
    fprintf(stderr, "bench_clients: %s: %s\n", what, strerror(errno));
    if (g_pid > 0)
        kill(g_pid, SIGKILL);
    exit(1);
}

/* ---- the server ------------------------------------------------------------ */

static int start_server(void)
{
    const char *bin = getenv("INVCORED") ? getenv("INVCORED") : "build/invcored";
    const char *threads = getenv("INVCORED_THREADS");
    snprintf(g_log, sizeof g_log, "/tmp/invcore-bench-clients-%d.log", (int)getpid());
    const char *argv[] = {bin,
                          "--port",
                          "0",
                          "--bind",
                          "127.0.0.1",
                          "--in-memory",
                          "--timeout",
                          "0",
                          "--maxclients",
                          "20000",
                          threads ? "--threads" : NULL,
                          threads,
                          NULL};
    int port = bench_invcored_start(argv, g_log, &g_pid);
    if (port < 0) {
        errno = 0;
        die("invcored did not start (is build/invcored built? INVCORED=...)");
    }
    return port;
}

static void stop_server(void)
{
    kill(g_pid, SIGTERM);
    waitpid(g_pid, NULL, 0);
    g_pid = 0;
    unlink(g_log);
}

/* ---- sockets ----------------------------------------------------------------- */

static int connect_to(int port, bool nonblock)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        die("fcntl");
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("send");
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one reply of `lines` CRLF-terminated lines (no bulk strings) into
 * buf; dies on an error reply or a timeout. Returns its length. */
static size_t read_lines(int fd, char *buf, size_t cap, int lines)
{
    size_t got = 0;
    int seen = 0;
    uint64_t deadline = bench_now_ns() + IO_TIMEOUT_MS * 1000000ull;
    while (seen < lines) {
        struct pollfd p = {fd, POLLIN, 0};
        if (bench_now_ns() > deadline || got == cap)
            die("reply timeout");
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf + got, cap - got, 0);
        if (r <= 0)
            die("recv");
        for (ssize_t i = 0; i < r; i++)
            seen += buf[got + (size_t)i] == '\n';
        got += (size_t)r;
        if (buf[0] == '-') {
            fprintf(stderr, "bench_clients: error reply %.*s\n", (int)got, buf);
            errno = 0;
            die("error reply");
        }
    }
    return got;
}

/* One request whose reply is `lines` lines. */
static void call(int fd, const char *req, int lines)
{
    char buf[512];
    send_all(fd, req, strlen(req));
    read_lines(fd, buf, sizeof buf, lines);
}

/* An INFO field of the server, as a number. */
static long long info_num(int fd, const char *section, const char *field)
{
    char req[64], buf[16384], key[64];
    snprintf(req, sizeof req, "INFO %s\r\n", section);
    send_all(fd, req, strlen(req));
    size_t n = read_lines(fd, buf, sizeof buf - 1, 1);
    long long len = atoll(buf + 1); /* $<len> */
    char *body = strstr(buf, "\r\n") + 2;
    while ((long long)(n - (size_t)(body - buf)) < len + 2)
        n += read_lines(fd, buf + n, sizeof buf - 1 - n, 1);
    buf[n] = '\0';
    snprintf(key, sizeof key, "\n%s:", field);
    const char *p = strstr(buf, key);
    return p ? atoll(p + strlen(key)) : -1;
}

/* ---- the well-behaved clients -------------------------------------------------- */

typedef struct {
    int fd;
    pthread_t th;
    uint64_t *lat_ns; /* SAMPLES_MAX */
    size_t n;
} good;

static _Atomic uint64_t g_until_ns; /* the phase's end */

static void *good_main(void *arg)
{
    good *g = arg;
    g->n = 0;
    /* relaxed: set before the threads start; pthread_create orders it */
    uint64_t until = atomic_load_explicit(&g_until_ns, memory_order_relaxed);
    for (uint64_t i = 0; g->n < SAMPLES_MAX; i++) {
        uint64_t t0 = bench_now_ns();
        if (t0 >= until)
            break;
        /* +1 then -1: the level stays near its start */
        call(g->fd, (i & 1) ? "LEVEL.ADJUST 7 1 -1\r\n" : "LEVEL.ADJUST 7 1 1\r\n", 4);
        g->lat_ns[g->n++] = bench_now_ns() - t0;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double ops_s, p50_us, p99_us, p999_us;
} figures;

/* Runs the good clients for `seconds`; returns their figures. */
static figures measure(good *gs, size_t n, double seconds)
{
    figures f;
    uint64_t start = bench_now_ns();
    /* relaxed: published by pthread_create */
    atomic_store_explicit(&g_until_ns, start + (uint64_t)(seconds * 1e9), memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        if (pthread_create(&gs[i].th, NULL, good_main, &gs[i]) != 0)
            die("pthread_create");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_join(gs[i].th, NULL);
        total += gs[i].n;
    }
    double elapsed = (double)(bench_now_ns() - start) / 1e9;
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL)
        die("malloc");
    for (size_t i = 0, k = 0; i < n; k += gs[i].n, i++)
        memcpy(all + k, gs[i].lat_ns, gs[i].n * sizeof *all);
    qsort(all, total, sizeof *all, cmp_u64);
    f.ops_s = (double)total / elapsed;
    f.p50_us = total ? (double)all[total / 2] / 1e3 : 0;
    f.p99_us = total ? (double)all[(size_t)((double)total * 0.99)] / 1e3 : 0;
    f.p999_us = total ? (double)all[(size_t)((double)total * 0.999)] / 1e3 : 0;
    free(all);
    return f;
}

/* ---- the hostile clients --------------------------------------------------------- */

typedef struct {
    int port;
    size_t n_idle, n_slow, n_noread, n_partial, n_halfopen;
    unsigned slow_ms;
    int *idle, *slow, *noread, *partial, *halfopen;
    size_t *slow_pos; /* bytes of SLOW_REQ sent (then its reply is read) */
    char *noread_buf;
    size_t noread_len;
    size_t *noread_off; /* where each non-reader is in the batch (cyclic) */
    _Atomic bool stop;
    pthread_t th;
    uint64_t slow_requests; /* answered */
} hostile;

static int *open_n(int port, size_t n, bool nonblock)
{
    int *fds = calloc(n ? n : 1, sizeof *fds);
    if (fds == NULL)
        die("calloc");
    for (size_t i = 0; i < n; i++)
        fds[i] = connect_to(port, nonblock);
    return fds;
}

/* Every slow_ms: one more byte of each one-byte sender (its reply read once
 * the request is whole), and as many requests as each non-reader's socket
 * takes. */
static void *hostile_main(void *arg)
{
    hostile *h = arg;
    /* relaxed: a stop flag, nothing is published through it */
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {
        for (size_t i = 0; i < h->n_slow; i++) {
            send_all(h->slow[i], SLOW_REQ + h->slow_pos[i], 1);
            if (++h->slow_pos[i] == strlen(SLOW_REQ)) {
                char buf[32];
                read_lines(h->slow[i], buf, sizeof buf, 2);
                h->slow_pos[i] = 0;
                h->slow_requests++;
            }
        }
        for (size_t i = 0; i < h->n_noread; i++) {
            size_t off = h->noread_off[i];
            ssize_t w = send(h->noread[i], h->noread_buf + off, h->noread_len - off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) /* the stream stays whole requests: resume where it stopped */
                h->noread_off[i] = (off + (size_t)w) % h->noread_len;
        }
        usleep(h->slow_ms * 1000u);
    }
    return NULL;
}

static void hostile_start(hostile *h)
{
    int port = h->port;
    h->idle = open_n(port, h->n_idle, false);
    h->slow = open_n(port, h->n_slow, false);
    h->slow_pos = calloc(h->n_slow ? h->n_slow : 1, sizeof *h->slow_pos);
    h->noread = open_n(port, h->n_noread, true);
    h->partial = open_n(port, h->n_partial, false);
    h->halfopen = open_n(port, h->n_halfopen, false);
    char *chunk = malloc(PARTIAL_BYTES);
    if (h->slow_pos == NULL || chunk == NULL)
        die("malloc");
    memset(chunk, 'x', PARTIAL_BYTES);
    for (size_t i = 0; i < h->n_partial; i++) {
        send_all(h->partial[i], PARTIAL_HEADER, strlen(PARTIAL_HEADER));
        send_all(h->partial[i], chunk, PARTIAL_BYTES);
    }
    free(chunk);
    for (size_t i = 0; i < h->n_halfopen; i++)
        send_all(h->halfopen[i], HALFOPEN_REQ, strlen(HALFOPEN_REQ));
    /* non-readers: a batch of ECHO requests, sent again and again from
     * where the socket last stopped taking bytes */
    char one[NOREAD_PAYLOAD + 64], payload[NOREAD_PAYLOAD + 1];
    memset(payload, 'p', NOREAD_PAYLOAD);
    payload[NOREAD_PAYLOAD] = '\0';
    int len =
        snprintf(one, sizeof one, "*2\r\n$4\r\nECHO\r\n$%u\r\n%s\r\n", NOREAD_PAYLOAD, payload);
    h->noread_len = (size_t)len * NOREAD_BATCH;
    h->noread_buf = malloc(h->noread_len);
    h->noread_off = calloc(h->n_noread ? h->n_noread : 1, sizeof *h->noread_off);
    if (h->noread_buf == NULL || h->noread_off == NULL)
        die("malloc");
    for (size_t i = 0; i < NOREAD_BATCH; i++)
        memcpy(h->noread_buf + i * (size_t)len, one, (size_t)len);
    if (pthread_create(&h->th, NULL, hostile_main, h) != 0)
        die("pthread_create");
}

static void close_n(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
}

static void hostile_stop(hostile *h)
{
    /* relaxed: a stop flag; the join orders the rest */
    atomic_store_explicit(&h->stop, true, memory_order_relaxed);
    pthread_join(h->th, NULL);
    close_n(h->idle, h->n_idle);
    close_n(h->slow, h->n_slow);
    close_n(h->noread, h->n_noread);
    close_n(h->partial, h->n_partial);
    close_n(h->halfopen, h->n_halfopen);
    free(h->slow_pos);
    free(h->noread_buf);
    free(h->noread_off);
}

/* The soft descriptor limit raised toward the hard one; returns it. */
static uint64_t fd_limit(uint64_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit");
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            die("setrlimit");
    }
    return rl.rlim_cur == RLIM_INFINITY ? want : (uint64_t)rl.rlim_cur;
}

static void print_row(const char *name, figures f)
{
    printf("%-24s %10.0f ops/s  p50 %7.1f us  p99 %7.1f us  p99.9 %7.1f us\n", name, f.ops_s,
           f.p50_us, f.p99_us, f.p999_us);
}

int main(void)
{
    double seconds = bench_env_double("BENCH_CLIENTS_SECONDS", 3);
    size_t n_good = bench_env_u64("BENCH_CLIENTS_GOOD", 8);
    hostile h = {.n_idle = bench_env_u64("BENCH_CLIENTS_IDLE", 5000),
                 .n_slow = bench_env_u64("BENCH_CLIENTS_SLOW", 100),
                 .slow_ms = (unsigned)bench_env_u64("BENCH_CLIENTS_SLOW_MS", 50),
                 .n_noread = bench_env_u64("BENCH_CLIENTS_NOREAD", 4),
                 .n_partial = bench_env_u64("BENCH_CLIENTS_PARTIAL", 200),
                 .n_halfopen = bench_env_u64("BENCH_CLIENTS_HALFOPEN", 100)};
    if (n_good == 0 || n_good > GOOD_MAX)
        n_good = 8;
    size_t others = h.n_slow + h.n_noread + h.n_partial + h.n_halfopen + n_good + 2;
    uint64_t lim = fd_limit(h.n_idle + others + FDS_SPARE);
    if (h.n_idle + others + FDS_SPARE > lim) /* the limit decides: say so below */
        h.n_idle = lim > others + FDS_SPARE ? lim - others - FDS_SPARE : 0;
    signal(SIGPIPE, SIG_IGN);
    int port = start_server();
    h.port = port;
    int admin = connect_to(port, false);
    call(admin, "LOC.SET 1 name Main\r\n", 1);
    call(admin, "ITEM.SET 7 sku HOT\r\n", 1);
    call(admin, "LEVEL.SET 7 1 1000000\r\n", 4);
    good gs[GOOD_MAX];
    for (size_t i = 0; i < n_good; i++) {
        gs[i].fd = connect_to(port, false);
        gs[i].lat_ns = malloc(SAMPLES_MAX * sizeof(uint64_t));
        if (gs[i].lat_ns == NULL)
            die("malloc");
    }
    printf("bench_clients: %zu well-behaved clients (one LEVEL.ADJUST at a time each), "
           "%.1f s per phase, server in memory, threads %s\n",
           n_good, seconds, getenv("INVCORED_THREADS") ? getenv("INVCORED_THREADS") : "= cores");
    (void)measure(gs, n_good, seconds / 4 < 0.5 ? seconds / 4 : 0.5); /* warm-up */
    figures alone = measure(gs, n_good, seconds);
    long long rss_alone = info_num(admin, "memory", "used_memory_rss");
    hostile_start(&h);
    printf("hostile: %zu idle, %zu one-byte senders (a byte per %u ms each), %zu non-readers "
           "(pipelining ECHO), %zu partial 1 MiB arguments (%u KiB sent), %zu half-open "
           "(half a request, then silence)%s\n",
           h.n_idle, h.n_slow, h.slow_ms, h.n_noread, h.n_partial, PARTIAL_BYTES >> 10,
           h.n_halfopen,
           lim < 5000 + others + FDS_SPARE ? " [idle count cut by RLIMIT_NOFILE]" : "");
    figures with = measure(gs, n_good, seconds);
    long long mem = info_num(admin, "clients", "clients_memory");
    long long conns = info_num(admin, "clients", "connected_clients");
    long long rss = info_num(admin, "memory", "used_memory_rss");
    hostile_stop(&h);
    print_row("without hostile clients", alone);
    print_row("with hostile clients", with);
    printf("p99 ratio (with / without): %.2f (target <= 2.00); p50 ratio %.2f\n",
           alone.p99_us > 0 ? with.p99_us / alone.p99_us : 0,
           alone.p50_us > 0 ? with.p50_us / alone.p50_us : 0);
    printf("server with hostile clients: %lld connections, clients_memory %.1f MiB, RSS %.1f MiB "
           "(%.1f MiB alone); one-byte requests answered: %llu\n",
           conns, (double)mem / (1 << 20), (double)rss / (1 << 20), (double)rss_alone / (1 << 20),
           (unsigned long long)h.slow_requests);
    for (size_t i = 0; i < n_good; i++) {
        close(gs[i].fd);
        free(gs[i].lat_ns);
    }
    close(admin);
    stop_server();
    return 0;
}
