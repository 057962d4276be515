/*
 * bench_resp_multi.c — a small RESP load generator for transactions of 3
 * lines: MULTI, 3 x (LEVEL.ADJUST item 1 d | INCRBY s:<key> d), EXEC, sent
 * by C connections, each pipelining P transactions, until N transactions
 * were answered. bench/vs-redis runs it against invcored and Redis with the
 * same arguments, because redis-benchmark sends one command per request
 * and cannot send a transaction.
 *
 *   bench_resp_multi -p port -k invcored|redis [-c clients] [-n transactions]
 *                    [-P pipeline] [-r keys] [-H hot_key]
 *
 * Keys: with -r, 3 distinct keys drawn uniformly from [0, keys) per
 * transaction; without, the hot trio (hot_key, 0, 1). Each connection's
 * transactions alternate d = -1 and d = +1 (no floor), so a level never
 * moves more than `clients` units below its start, nor above it (a level
 * loaded at INV_QTY_MAX refuses to grow). Prints one line, as vs-redis reads redis-benchmark's
 * CSV: "<transactions/s> <p50 ms> <p99 ms>", a transaction's latency being
 * from the write of its pipeline to its EXEC reply (redis-benchmark's
 * definition at -P). Any error reply, inside EXEC's array or not, makes it
 * print "n/a n/a n/a" and the first error on stderr, and exit 1. Run with
 * no arguments (as `make bench` runs every bench program) it prints where
 * it is used and exits 0.
 *
 * One thread and poll(): the client must not be what is measured; at -P 1
 * it is bounded, as redis-benchmark is, by the round trips of its
 * connections (vs-redis prints that ceiling with PING).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS_MAX 1000
#define PIPELINE_MAX 1000
#define TX_MAX 100000000ull /* transactions in one run */
#define LINES 3 /* adjust lines per transaction */
#define REPLIES_PER_TX (LINES + 2) /* +OK, +QUEUED x 3, EXEC's array */
#define TX_BYTES_MAX 256 /* one formatted transaction, at most */
#define IN_MAX (1u << 20) /* unparsed reply bytes one connection may hold */
#define REPLY_DEPTH_MAX 8 /* nesting of aggregate replies */
#define TIMEOUT_MS 30000 /* no progress for this long: give up */

typedef struct {
    int fd;
    uint64_t rng;
    uint64_t sent_tx; /* transactions of this connection so far (sign of d) */
    char *out;
    size_t out_len, out_off;
    char *in;
    size_t in_len;
    size_t tx_waiting; /* transactions of the pipeline in flight */
    size_t replies; /* replies parsed of the current transaction */
    uint64_t t_write_ns;
} conn;

typedef struct {
    const char *kind; /* "invcored" or "redis" */
    int port;
    unsigned clients, pipeline;
    uint64_t transactions, keys, hot;
} options;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* ---- replies ---------------------------------------------------------- */

/* Bytes of the one complete reply at p, 0 while incomplete, -1 when
 * malformed; *errors counts its error replies (nested ones too). */
static long reply_len(const char *p, size_t n, unsigned depth, uint64_t *errors)
{
    const char *nl = n ? memchr(p, '\n', n) : NULL;
    if (depth > REPLY_DEPTH_MAX)
        return -1;
    if (nl == NULL)
        return n > 64 * 1024 ? -1 : 0;
    size_t line = (size_t)(nl - p) + 1;
    if (line < 3 || nl[-1] != '\r')
        return -1;
    long long count = strtoll(p + 1, NULL, 10);
    switch (p[0]) {
    case '-':
        (*errors)++;
        return (long)line;
    case '!': /* a blob error: an error with a bulk string's length */
    case '$':
    case '=':
        *errors += p[0] == '!';
        if (count < 0)
            return (long)line;
        if (count > IN_MAX)
            return -1;
        if (line + (size_t)count + 2 > n)
            return 0;
        return (long)(line + (size_t)count + 2);
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
        if (count < 0)
            return (long)line;
        if (count > IN_MAX)
            return -1;
        if (p[0] == '%' || p[0] == '|')
            count *= 2;
        size_t off = line;
        for (long long i = 0; i < count; i++) {
            long r = reply_len(p + off, n - off, depth + 1, errors);
            if (r <= 0)
                return r;
            off += (size_t)r;
        }
        return (long)off;
    }
    case '+':
    case ':':
    case '_':
    case ',':
    case '#':
    case '(':
        return (long)line;
    default:
        return -1;
    }
}

/* ---- requests ---------------------------------------------------------- */

static size_t put_arg(char *b, size_t at, const char *s)
{
    return at + (size_t)sprintf(b + at, "$%zu\r\n%s\r\n", strlen(s), s);
}

/* One transaction of 3 lines on 3 distinct keys into b; returns its bytes. */
static size_t format_tx(const options *o, conn *c, char *b)
{
    uint64_t k[LINES];
    for (size_t i = 0; i < LINES; i++) {
        bool again;
        do {
            k[i] = o->keys ? rng_next(&c->rng) % o->keys : (i == 0 ? o->hot : i - 1);
            again = false;
            for (size_t j = 0; j < i; j++)
                again |= k[j] == k[i];
        } while (again);
    }
    /* -1 first: a level loaded at INV_QTY_MAX refuses +1 (LIMIT). */
    const char *d = (c->sent_tx++ & 1) ? "1" : "-1";
    bool redis = strcmp(o->kind, "redis") == 0;
    size_t at = (size_t)sprintf(b, "*1\r\n$5\r\nMULTI\r\n");
    for (size_t i = 0; i < LINES; i++) {
        char key[32];
        if (redis) {
            snprintf(key, sizeof key, "s:%012llu", (unsigned long long)k[i]);
            at += (size_t)sprintf(b + at, "*3\r\n");
            at = put_arg(b, at, "INCRBY");
            at = put_arg(b, at, key);
        } else {
            snprintf(key, sizeof key, "%llu", (unsigned long long)k[i]);
            at += (size_t)sprintf(b + at, "*4\r\n");
            at = put_arg(b, at, "LEVEL.ADJUST");
            at = put_arg(b, at, key);
            at = put_arg(b, at, "1");
        }
        at = put_arg(b, at, d);
    }
    at += (size_t)sprintf(b + at, "*1\r\n$4\r\nEXEC\r\n");
    return at;
}

/* ---- the run ------------------------------------------------------------ */

typedef struct {
    uint64_t issued, done, errors;
    uint32_t *lat_us; /* per answered transaction */
    char first_error[128];
} run_state;

static int connect_to(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Formats the connection's next pipeline (up to P transactions left). */
static void next_pipeline(const options *o, conn *c, run_state *rs)
{
    c->out_len = c->out_off = 0;
    while (c->tx_waiting < o->pipeline && rs->issued < o->transactions) {
        c->out_len += format_tx(o, c, c->out + c->out_len);
        c->tx_waiting++;
        rs->issued++;
    }
    c->t_write_ns = now_ns();
}

/* Parses what arrived; -1 on a protocol error. */
static int take_replies(const options *o, conn *c, run_state *rs)
{
    size_t off = 0;
    while (off < c->in_len && c->tx_waiting > 0) {
        uint64_t errs = 0;
        long r = reply_len(c->in + off, c->in_len - off, 0, &errs);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        if (errs && rs->errors++ == 0) {
            size_t n =
                (size_t)r < sizeof rs->first_error - 1 ? (size_t)r : sizeof rs->first_error - 1;
            memcpy(rs->first_error, c->in + off, n);
            rs->first_error[n] = '\0';
            rs->first_error[strcspn(rs->first_error, "\r\n")] = '\0'; /* its first line */
        }
        off += (size_t)r;
        if (++c->replies == REPLIES_PER_TX) {
            uint64_t us = (now_ns() - c->t_write_ns) / 1000;
            c->replies = 0;
            c->tx_waiting--;
            rs->lat_us[rs->done++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->tx_waiting == 0)
        next_pipeline(o, c, rs);
    return 0;
}

/* Sends and receives on ready connections until every transaction was
 * answered; -1 on a socket or protocol failure, or no progress. */
static int pump(const options *o, conn *cs, struct pollfd *pf, run_state *rs)
{
    uint64_t last_progress = now_ns(), last_done = 0;
    while (rs->done < o->transactions) {
        for (unsigned i = 0; i < o->clients; i++) {
            pf[i].fd = cs[i].fd;
            pf[i].events = POLLIN | (cs[i].out_off < cs[i].out_len ? POLLOUT : 0);
        }
        if (poll(pf, o->clients, 1000) < 0 && errno != EINTR)
            return -1;
        for (unsigned i = 0; i < o->clients; i++) {
            conn *c = &cs[i];
            if (pf[i].revents & POLLOUT) {
                ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
                if (w < 0 && errno != EAGAIN)
                    return -1;
                c->out_off += w > 0 ? (size_t)w : 0;
            }
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);
                if (r == 0 || (r < 0 && errno != EAGAIN) ||
                    c->in_len + (size_t)(r > 0 ? r : 0) >= IN_MAX)
                    return -1;
                c->in_len += r > 0 ? (size_t)r : 0;
                if (take_replies(o, c, rs) != 0)
                    return -1;
            }
        }
        if (rs->done != last_done) {
            last_done = rs->done;
            last_progress = now_ns();
        } else if (now_ns() - last_progress > (uint64_t)TIMEOUT_MS * 1000000ull) {
            return -1;
        }
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_resp_multi -p port -k invcored|redis [-c clients] "
                    "[-n transactions] [-P pipeline] [-r keys] [-H hot_key]\n");
    return 2;
}

static bool parse_options(int argc, char **argv, options *o)
{
    *o = (options){NULL, 0, 50, 1, 100000, 0, 1000000};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        unsigned long long u = strtoull(v, NULL, 10);
        if (strcmp(f, "-k") == 0)
            o->kind = v;
        else if (strcmp(f, "-p") == 0)
            o->port = (int)u;
        else if (strcmp(f, "-c") == 0)
            o->clients = (unsigned)u;
        else if (strcmp(f, "-n") == 0)
            o->transactions = u;
        else if (strcmp(f, "-P") == 0)
            o->pipeline = (unsigned)u;
        else if (strcmp(f, "-r") == 0)
            o->keys = u;
        else if (strcmp(f, "-H") == 0)
            o->hot = u;
        else
            return false;
    }
    return argc % 2 == 1 && o->kind &&
           (!strcmp(o->kind, "invcored") || !strcmp(o->kind, "redis")) && o->port > 0 &&
           o->port < 65536 && o->clients >= 1 && o->clients <= CLIENTS_MAX && o->pipeline >= 1 &&
           o->pipeline <= PIPELINE_MAX && o->transactions >= 1 && o->transactions <= TX_MAX &&
           (o->keys == 0 || o->keys >= LINES);
}

int main(int argc, char **argv)
{
    options o;
    run_state rs;
    if (argc == 1) {
        printf("bench_resp_multi: a MULTI/EXEC load generator for a running server; "
               "bench/vs-redis runs it (its multi3 rows)\n");
        return 0;
    }
    if (!parse_options(argc, argv, &o))
        return usage();
    conn *cs = calloc(o.clients, sizeof *cs);
    struct pollfd *pf = calloc(o.clients, sizeof *pf);
    memset(&rs, 0, sizeof rs);
    rs.lat_us = calloc(o.transactions, sizeof *rs.lat_us);
    int rc = cs && pf && rs.lat_us ? 0 : -1;
    for (unsigned i = 0; i < o.clients && rc == 0; i++) {
        cs[i].fd = connect_to(o.port);
        cs[i].rng = 0x9e3779b97f4a7c15ull * (i + 1) | 1;
        cs[i].out = malloc((size_t)o.pipeline * TX_BYTES_MAX);
        cs[i].in = malloc(IN_MAX);
        if (cs[i].fd < 0 || !cs[i].out || !cs[i].in)
            rc = -1;
    }
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < o.clients && rc == 0; i++)
        next_pipeline(&o, &cs[i], &rs);
    if (rc == 0)
        rc = pump(&o, cs, pf, &rs);
    double secs = (double)(now_ns() - t0) / 1e9;
    if (rc != 0 || rs.errors) {
        fprintf(stderr, "bench_resp_multi: port %d: %s\n", o.port,
                rs.errors ? rs.first_error : "connection, protocol or progress failure");
        printf("n/a n/a n/a\n");
    } else {
        qsort(rs.lat_us, rs.done, sizeof *rs.lat_us, cmp_u32);
        printf("%.2f %.3f %.3f\n", (double)rs.done / secs, rs.lat_us[rs.done / 2] / 1000.0,
               rs.lat_us[(rs.done * 99) / 100] / 1000.0);
    }
    for (unsigned i = 0; cs && i < o.clients; i++) {
        if (cs[i].fd > 0)
            close(cs[i].fd);
        free(cs[i].out);
        free(cs[i].in);
    }
    free(cs);
    free(pf);
    free(rs.lat_us);
    return rc != 0 || rs.errors ? 1 : 0;
}
