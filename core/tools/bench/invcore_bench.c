/*
 * invcore_bench.c — build/invcore-bench: the flash-sale load tool.
 *
 *   invcore-bench --scenario checkout --keys uniform:100 --stock 50 --preload \
 *                 --clients 50 --duration 30 --plot sale.png
 *
 * Threads x connections: each of --threads worker threads owns its share
 * of --clients connections and one epoll set; each connection carries
 * --pipeline sessions (simulated buyers, workload.h), so up to that many
 * requests are in flight on it. Closed loop (default): a session starts
 * its next transaction as soon as the last one ends. Open loop (--rate R):
 * transactions arrive at R per second in all, on a fixed schedule per
 * connection, and a request's latency runs from its intended start, not
 * from when it could be sent: a server stall shows as the queue it causes
 * (coordinated omission, Gil Tene), not as one slow request.
 *
 * The main thread reports: once a second it takes every worker's published
 * interval (histogram and counters, under the worker's mutex: the workers
 * publish every PUBLISH_INTERVAL_NS, so neither side waits on the other for
 * long) and prints a progress line. After --duration it stops new
 * transactions, lets the ones in flight finish (at most DRAIN_TIMEOUT_NS;
 * a request never answered counts as unknown), checks the server's state
 * (verify.h) and writes the table, CSV, JSON and plot (report.h).
 *
 * Invariants: a worker touches only its own connections and local stats;
 * the phase is the only state the main thread writes and workers read
 * (release/acquire); the flash-sale verdict uses only acknowledged
 * outcomes and the server's own state.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <http_parser.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hist.h"
#include "keys.h"
#include "report.h"
#include "verify.h"
#include "workload.h"

#define PUBLISH_INTERVAL_NS 50000000ull /* workers hand their stats over every 50 ms */
#define REPORT_INTERVAL_NS 1000000000ull /* a progress line a second */
#define DRAIN_TIMEOUT_NS 10000000000ull /* in-flight requests get 10 s after the end */
#define LOOP_WAIT_MAX_NS 10000000ull /* a worker looks at the phase at least every 10 ms */
#define SWEEP_INTERVAL_NS 10000000ull /* Redis: expire holds every 10 ms (invcored's sweep) */
#define READ_CHUNK 65536
#define EPOLL_BATCH 64
#define REPLY_TEXT_MAX 128

enum exit_code {
    EXIT_OK = 0,
    EXIT_CHECK_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_SETUP = 3,
    EXIT_RUN = 4, /* unexpected error replies, or every connection lost */
};

enum phase { PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN, PHASE_STOP };

/* Written by the main thread (and the SIGINT handler's flag), read by the
 * workers: release on store so what the main thread set before it (start
 * times) is visible, acquire on load. */
static _Atomic int run_phase;
static volatile sig_atomic_t interrupted;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct inflight {
    uint64_t start_ns;
    uint32_t slot;
    uint8_t kind;
};

struct worker;

struct conn {
    int fd;
    unsigned index; /* across the run */
    struct worker *w;
    struct outbuf out;
    size_t out_sent;
    bool want_out;
    bool dead;
    redisReader *reader;
    http_parser parser;
    /* The reply being parsed (custom hiredis functions fill it). */
    struct reply cur;
    char cur_text[REPLY_TEXT_MAX];
    struct inflight *ring; /* capacity: pipeline */
    unsigned head, count;
    struct session *sessions; /* pipeline of them */
    uint64_t next_arrival_ns; /* open loop */
    uint64_t arrival_interval_ns;
};

struct stats {
    struct hist latency; /* measured time only */
    uint64_t ops, errors;
};

struct worker {
    unsigned index;
    pthread_t tid;
    const struct bench_config *cfg;
    const struct workload *wl;
    struct conn *conns;
    unsigned nconns;
    int epfd;
    struct rng rng;
    struct stats local;
    uint64_t counters[CNT_KINDS]; /* whole run, warmup included (the check needs all) */
    uint64_t next_publish_ns;
    unsigned live_conns;
    uint64_t quota; /* transactions this worker may start (--requests); UINT64_MAX: no end */
    uint64_t started; /* transactions started */
    pthread_mutex_t mu; /* guards the published part below */
    struct stats pub;
    uint64_t pub_counters[CNT_KINDS];
    char first_error[REPLY_TEXT_MAX];
    bool done;
};

/* ---- hiredis reader without allocation ------------------------------------
 * The load only needs a reply's type and, for errors, its text: these
 * functions record that for the top-level reply and hand the reader a
 * dummy object, so parsing a reply allocates nothing. */

static char reply_dummy;

static void *rd_string(const redisReadTask *task, char *str, size_t len)
{
    if (!task->parent) {
        struct conn *c = task->privdata;
        c->cur.error = task->type == REDIS_REPLY_ERROR;
        size_t n = len < REPLY_TEXT_MAX - 1 ? len : REPLY_TEXT_MAX - 1;
        memcpy(c->cur_text, str, n);
        c->cur_text[n] = '\0';
        c->cur.text_len = n;
    }
    return &reply_dummy;
}

static void top_level_plain(const redisReadTask *task)
{
    if (!task->parent) {
        struct conn *c = task->privdata;
        c->cur.error = false;
        c->cur.text_len = 0;
        c->cur_text[0] = '\0';
    }
}

static void *rd_array(const redisReadTask *task, int n)
{
    (void)n;
    top_level_plain(task);
    return &reply_dummy;
}

static void *rd_integer(const redisReadTask *task, long long v)
{
    (void)v;
    top_level_plain(task);
    return &reply_dummy;
}

static void *rd_nil(const redisReadTask *task)
{
    top_level_plain(task);
    return &reply_dummy;
}

static void rd_free(void *obj)
{
    (void)obj;
}

static redisReplyObjectFunctions reply_fns = {rd_string, rd_array, rd_integer, rd_nil, rd_free};

/* ---- replies -------------------------------------------------------------- */

static void note_error(struct worker *w, const struct reply *rep)
{
    if (w->first_error[0])
        return;
    if (rep->http_status)
        snprintf(w->first_error, sizeof w->first_error, "HTTP %d", rep->http_status);
    else
        snprintf(w->first_error, sizeof w->first_error, "%.*s", (int)rep->text_len, rep->text);
}

/* One answered request: the oldest in flight on c. */
static void on_reply(struct conn *c, const struct reply *rep, uint64_t t_ns)
{
    struct worker *w = c->w;
    assert(c->count > 0);
    struct inflight f = c->ring[c->head];
    c->head = (c->head + 1) % w->cfg->pipeline;
    c->count--;
    struct session *s = &c->sessions[f.slot];
    bool unexpected =
        workload_reply(w->wl, s, (enum op_kind)f.kind, rep, &w->rng, t_ns, w->counters);
    if (unexpected)
        note_error(w, rep);
    if (atomic_load_explicit(&run_phase, memory_order_acquire) >= PHASE_MEASURE) {
        hist_record(&w->local.latency, t_ns > f.start_ns ? t_ns - f.start_ns : 0);
        w->local.ops++;
        w->local.errors += unexpected;
    }
}

static int http_on_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct reply rep = {.error = p->status_code >= 400,
                        .http_status = (int)p->status_code,
                        .text = "",
                        .text_len = 0};
    on_reply(c, &rep, now_ns());
    return 0;
}

static http_parser_settings http_settings = {.on_message_complete = http_on_complete};

/* ---- connections ---------------------------------------------------------- */

static int dial(const struct bench_config *cfg, char *err, size_t err_len)
{
    char port[8];
    snprintf(port, sizeof port, "%u", cfg->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "%s: %s", cfg->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_len, "cannot connect to %s:%u: %s", cfg->host, cfg->port,
                 strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* RESP AUTH, blocking, before the connection joins the load. */
static int auth_blocking(int fd, const char *token, char *err, size_t err_len)
{
    char req[64 + BENCH_TOKEN_MAX];
    int n = snprintf(req, sizeof req, "*2\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n", strlen(token), token);
    if (write(fd, req, (size_t)n) != n) {
        snprintf(err, err_len, "AUTH: %s", strerror(errno));
        return -1;
    }
    char buf[256];
    ssize_t got = read(fd, buf, sizeof buf - 1);
    if (got <= 0 || buf[0] != '+') {
        buf[got > 0 ? got : 0] = '\0';
        snprintf(err, err_len, "AUTH refused: %s", got > 0 ? buf : "connection closed");
        return -1;
    }
    return 0;
}

static int conn_open(struct worker *w, struct conn *c, unsigned index, char *err, size_t err_len)
{
    const struct bench_config *cfg = w->cfg;
    memset(c, 0, sizeof *c);
    c->index = index;
    c->w = w;
    c->fd = dial(cfg, err, err_len);
    if (c->fd < 0)
        return -1;
    if (!cfg->http && cfg->token[0] && auth_blocking(c->fd, cfg->token, err, err_len) < 0)
        return -1;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->ring = calloc(cfg->pipeline, sizeof *c->ring);
    c->sessions = calloc(cfg->pipeline, sizeof *c->sessions);
    if (!c->ring || !c->sessions) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (cfg->http) {
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
    } else {
        c->reader = redisReaderCreateWithFunctions(&reply_fns);
        if (!c->reader) {
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        c->reader->privdata = c;
    }
    c->cur.text = c->cur_text;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        snprintf(err, err_len, "epoll: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->reader)
        redisReaderFree(c->reader);
    c->reader = NULL;
    free(c->ring);
    free(c->sessions);
    free(c->out.data);
}

/* Every request in flight on c is lost: its outcome is unknown. */
static void conn_die(struct conn *c, const char *why)
{
    struct worker *w = c->w;
    if (c->dead)
        return;
    c->dead = true;
    while (c->count) {
        struct inflight f = c->ring[c->head];
        workload_lost(w->wl, &c->sessions[f.slot], (enum op_kind)f.kind, w->counters);
        c->head = (c->head + 1) % w->cfg->pipeline;
        c->count--;
        w->local.errors++;
    }
    if (!w->first_error[0])
        snprintf(w->first_error, sizeof w->first_error, "connection %u: %s", c->index, why);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    w->live_conns--;
}

static void conn_flush(struct conn *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent);
        if (n > 0) {
            c->out_sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_die(c, n < 0 ? strerror(errno) : "write returned 0");
        return;
    }
    if (c->out_sent == c->out.len)
        c->out.len = c->out_sent = 0;
    bool want = c->out_sent < c->out.len;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

static void conn_read(struct conn *c)
{
    char buf[READ_CHUNK];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_die(c, n == 0 ? "closed by the server" : strerror(errno));
            return;
        }
        uint64_t t = now_ns();
        if (c->reader) {
            if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
                conn_die(c, "reader");
                return;
            }
            void *obj = NULL;
            while (redisReaderGetReply(c->reader, &obj) == REDIS_OK && obj) {
                if (c->count == 0) {
                    conn_die(c, "a reply nobody asked for");
                    return;
                }
                on_reply(c, &c->cur, t);
                obj = NULL;
            }
            if (c->reader->err) {
                conn_die(c, c->reader->errstr);
                return;
            }
        } else {
            size_t done = http_parser_execute(&c->parser, &http_settings, buf, (size_t)n);
            if (c->parser.http_errno != HPE_OK || done != (size_t)n) {
                conn_die(c, http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
                return;
            }
        }
        if ((size_t)n < sizeof buf)
            return;
    }
}

/* ---- the worker loop ------------------------------------------------------ */

static void send_request(struct conn *c, unsigned slot, uint64_t start_ns)
{
    struct worker *w = c->w;
    enum op_kind kind;
    if (workload_request(w->wl, &c->sessions[slot], w->index, c->index, slot, &c->out, &kind) < 0) {
        conn_die(c, "out of memory");
        return;
    }
    assert(c->count < w->cfg->pipeline);
    unsigned tail = (c->head + c->count) % w->cfg->pipeline;
    c->ring[tail] = (struct inflight){.start_ns = start_ns, .slot = slot, .kind = (uint8_t)kind};
    c->count++;
}

/* Starts and sends what is due on c; answers the next time something
 * will be due (UINT64_MAX: nothing but replies). */
static uint64_t conn_fill(struct conn *c, uint64_t now, int phase)
{
    struct worker *w = c->w;
    const struct bench_config *cfg = w->cfg;
    uint64_t next = UINT64_MAX;
    bool starting = phase <= PHASE_MEASURE;
    for (unsigned slot = 0; slot < cfg->pipeline && !c->dead; slot++) {
        starting = starting && w->started < w->quota;
        struct session *s = &c->sessions[slot];
        if (s->state == SESSION_THINKING) {
            /* After the end, carts check out at once: every hold settles. */
            if (s->think_until_ns <= now || !starting)
                send_request(c, slot, now);
            else if (s->think_until_ns < next)
                next = s->think_until_ns;
            continue;
        }
        if (s->state != SESSION_IDLE || !starting)
            continue;
        if (cfg->rate_per_s <= 0) {
            w->started++;
            workload_begin(w->wl, s, &w->rng, now);
            send_request(c, slot, now);
            continue;
        }
        if (c->next_arrival_ns > now) {
            /* The next arrival waits for its time, whatever slot takes it;
             * later slots may still be thinking carts that are due. */
            if (c->next_arrival_ns < next)
                next = c->next_arrival_ns;
            continue;
        }
        /* Latency runs from the intended arrival, however late we are. */
        uint64_t intended = c->next_arrival_ns;
        c->next_arrival_ns += c->arrival_interval_ns;
        w->started++;
        workload_begin(w->wl, s, &w->rng, intended);
        send_request(c, slot, intended);
    }
    if (!c->dead)
        conn_flush(c);
    return next;
}

static void publish(struct worker *w)
{
    pthread_mutex_lock(&w->mu);
    hist_merge(&w->pub.latency, &w->local.latency);
    w->pub.ops += w->local.ops;
    w->pub.errors += w->local.errors;
    memcpy(w->pub_counters, w->counters, sizeof w->counters);
    pthread_mutex_unlock(&w->mu);
    hist_reset(&w->local.latency);
    w->local.ops = w->local.errors = 0;
}

static bool worker_idle(const struct worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++) {
        const struct conn *c = &w->conns[i];
        if (c->dead)
            continue;
        if (c->count)
            return false;
        for (unsigned s = 0; s < w->cfg->pipeline; s++)
            if (c->sessions[s].state == SESSION_THINKING)
                return false;
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[EPOLL_BATCH];
    for (;;) {
        uint64_t now = now_ns();
        int phase = atomic_load_explicit(&run_phase, memory_order_acquire);
        if (phase == PHASE_STOP || w->live_conns == 0)
            break;
        if ((phase == PHASE_DRAIN || w->started >= w->quota) && worker_idle(w))
            break; /* the end, or --requests all answered */
        uint64_t next = now + LOOP_WAIT_MAX_NS;
        for (unsigned i = 0; i < w->nconns; i++) {
            if (w->conns[i].dead)
                continue;
            uint64_t due = conn_fill(&w->conns[i], now, phase);
            next = due < next ? due : next;
        }
        if (w->next_publish_ns <= now) {
            publish(w);
            w->next_publish_ns = now + PUBLISH_INTERVAL_NS;
        }
        next = w->next_publish_ns < next ? w->next_publish_ns : next;
        uint64_t wait = next > now ? next - now : 0;
        struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
        int n = epoll_pwait2(w->epfd, events, EPOLL_BATCH, &ts, NULL);
        if (n < 0 && errno == ENOSYS) { /* kernels before 5.11: ms resolution */
            n = epoll_wait(w->epfd, events, EPOLL_BATCH, (int)((wait + 999999) / 1000000));
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->dead)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(c);
            if (!c->dead && (events[i].events & EPOLLOUT))
                conn_flush(c);
        }
    }
    /* What is still in flight now will never be counted as answered. */
    for (unsigned i = 0; i < w->nconns; i++)
        if (!w->conns[i].dead && w->conns[i].count)
            conn_die(&w->conns[i], "still in flight at the end of the drain");
    publish(w);
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- Redis hold expiry ---------------------------------------------------- */

struct sweeper {
    pthread_t tid;
    const struct bench_config *cfg;
    const struct workload *wl;
    redisContext *ctx;
    uint64_t expired;
    char error[256];
};

static void *sweeper_main(void *arg)
{
    struct sweeper *sw = arg;
    while (atomic_load_explicit(&run_phase, memory_order_acquire) < PHASE_STOP) {
        redisReply *r = redisCommand(sw->ctx, "EVALSHA %s 1 %s %d", sw->wl->sha_sweep,
                                     WORKLOAD_REDIS_EXPIRY_KEY, WORKLOAD_REDIS_SWEEP_BATCH);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            snprintf(sw->error, sizeof sw->error, "sweep: %s",
                     r && r->str ? r->str : sw->ctx->errstr);
            freeReplyObject(r);
            return NULL;
        }
        sw->expired += (uint64_t)r->integer;
        freeReplyObject(r);
        struct timespec ts = {0, (long)SWEEP_INTERVAL_NS};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- the run -------------------------------------------------------------- */

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct run {
    struct bench_config cfg;
    struct workload wl;
    struct worker *workers;
    struct report *report;
    struct hist total;
    uint64_t ops, errors;
    uint64_t counters[CNT_KINDS];
    int64_t sellable; /* units at the start (the check's before), or stock x keys */
    double measured_s;
    bool report_failed;
    char first_error[REPLY_TEXT_MAX + 32];
};

/* Takes every worker's published interval into one sample. */
static void collect(struct run *r, struct hist *interval, uint64_t *ops, uint64_t *errors)
{
    hist_reset(interval);
    *ops = *errors = 0;
    memset(r->counters, 0, sizeof r->counters);
    for (unsigned i = 0; i < r->cfg.threads; i++) {
        struct worker *w = &r->workers[i];
        pthread_mutex_lock(&w->mu);
        hist_merge(interval, &w->pub.latency);
        hist_reset(&w->pub.latency);
        *ops += w->pub.ops;
        *errors += w->pub.errors;
        w->pub.ops = w->pub.errors = 0;
        for (int k = 0; k < CNT_KINDS; k++)
            r->counters[k] += w->pub_counters[k];
        pthread_mutex_unlock(&w->mu);
    }
}

/* measured: the interval counts in the totals; shown: it also gets a
 * progress line and a row (the drain's few milliseconds count, but a rate
 * over them would mislead). */
static void take_sample(struct run *r, struct hist *interval, double t_s, double interval_s,
                        bool measured, bool shown)
{
    uint64_t ops, errors;
    collect(r, interval, &ops, &errors);
    if (!measured)
        return;
    hist_merge(&r->total, interval);
    r->ops += ops;
    r->errors += errors;
    if (!shown)
        return;
    bool sells = bench_scenario_sells(r->cfg.scenario);
    int64_t sold = (int64_t)(r->counters[CNT_SOLD_UNITS] + r->counters[CNT_COMMIT_UNITS]);
    struct bench_sample s = {
        .t_s = t_s,
        .interval_s = interval_s,
        .ops = ops,
        .errors = errors,
        .p50_ns = hist_percentile(interval, 50),
        .p99_ns = hist_percentile(interval, 99),
        .p999_ns = hist_percentile(interval, 99.9),
        .max_ns = interval->max_ns,
        .sold = sells ? sold : -1,
        .remaining = sells ? r->sellable - sold : -1,
    };
    if (s.remaining < 0 && sells)
        s.remaining = 0; /* the clients were told of more sales than stock: the check says so */
    char err[256];
    if (report_sample(r->report, &s, err, sizeof err) < 0) {
        /* The run goes on (its totals and the check still count); it ends
         * in EXIT_RUN. */
        if (!r->report_failed)
            fprintf(stderr, "invcore-bench: %s\n", err);
        r->report_failed = true;
    }
}

static bool workers_done(struct run *r);

/* Until t_ns, SIGINT, or every worker has ended (--requests). */
static void sleep_until(struct run *r, uint64_t t_ns)
{
    for (;;) {
        uint64_t now = now_ns();
        if (now >= t_ns || interrupted || workers_done(r))
            return;
        uint64_t d = t_ns - now;
        d = d > 10000000ull ? 10000000ull : d; /* look at SIGINT and the workers every 10 ms */
        struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

static bool workers_done(struct run *r)
{
    for (unsigned i = 0; i < r->cfg.threads; i++) {
        pthread_mutex_lock(&r->workers[i].mu);
        bool done = r->workers[i].done;
        pthread_mutex_unlock(&r->workers[i].mu);
        if (!done)
            return false;
    }
    return true;
}

/* Phases, samples and the drain. */
static void drive(struct run *r, struct hist *interval)
{
    const struct bench_config *c = &r->cfg;
    uint64_t start = now_ns();
    uint64_t measure_start = start + (uint64_t)(c->warmup_s * 1e9);
    uint64_t measure_end = measure_start + (uint64_t)(c->duration_s * 1e9);
    if (c->warmup_s > 0) {
        sleep_until(r, measure_start);
        take_sample(r, interval, 0, 0, false, false); /* warmup's latencies are dropped */
        atomic_store_explicit(&run_phase, PHASE_MEASURE, memory_order_release);
    }
    measure_start = now_ns();
    measure_end = measure_start + (uint64_t)(c->duration_s * 1e9);
    uint64_t last = measure_start;
    while (!interrupted) {
        uint64_t tick = last + REPORT_INTERVAL_NS;
        if (tick > measure_end)
            tick = measure_end;
        sleep_until(r, tick);
        uint64_t now = now_ns();
        take_sample(r, interval, (double)(now - measure_start) / 1e9, (double)(now - last) / 1e9,
                    true, true);
        last = now;
        if (now >= measure_end || workers_done(r))
            break;
    }
    atomic_store_explicit(&run_phase, PHASE_DRAIN, memory_order_release);
    uint64_t drain_end = now_ns() + DRAIN_TIMEOUT_NS;
    while (!workers_done(r) && now_ns() < drain_end) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    atomic_store_explicit(&run_phase, PHASE_STOP, memory_order_release);
    for (unsigned i = 0; i < c->threads; i++)
        pthread_join(r->workers[i].tid, NULL);
    r->measured_s = (double)(last - measure_start) / 1e9;
    /* The drain's answers belong to requests of the measured time. */
    take_sample(r, interval, r->measured_s, 0, true, false);
    for (unsigned i = 0; i < c->threads; i++)
        if (r->workers[i].first_error[0] && !r->first_error[0])
            snprintf(r->first_error, sizeof r->first_error, "thread %u: %s", i,
                     r->workers[i].first_error);
}

static int start_workers(struct run *r, char *err, size_t err_len)
{
    const struct bench_config *c = &r->cfg;
    r->workers = calloc(c->threads, sizeof *r->workers);
    if (!r->workers)
        return bench_errf(err, err_len, "out of memory");
    uint64_t t0 = now_ns();
    double per_conn_rate = c->rate_per_s / c->clients;
    for (unsigned t = 0; t < c->threads; t++) {
        struct worker *w = &r->workers[t];
        w->index = t;
        w->cfg = c;
        /* --requests split as evenly as it goes. */
        w->quota =
            c->requests ? c->requests / c->threads + (t < c->requests % c->threads) : UINT64_MAX;
        w->wl = &r->wl;
        pthread_mutex_init(&w->mu, NULL);
        hist_reset(&w->local.latency);
        hist_reset(&w->pub.latency);
        rng_seed(&w->rng, c->seed, t + 1);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        /* Connections spread as evenly as they go: the first threads take one more. */
        w->nconns = c->clients / c->threads + (t < c->clients % c->threads);
        w->conns = calloc(w->nconns, sizeof *w->conns);
        if (w->epfd < 0 || !w->conns)
            return bench_errf(err, err_len, "out of memory");
        for (unsigned i = 0; i < w->nconns; i++) {
            unsigned index = t + i * c->threads;
            if (conn_open(w, &w->conns[i], index, err, err_len) < 0)
                return -1;
            w->live_conns++;
            if (per_conn_rate > 0) {
                w->conns[i].arrival_interval_ns = (uint64_t)(1e9 / per_conn_rate);
                /* Staggered: the connections' arrivals interleave, not bunch. */
                w->conns[i].next_arrival_ns =
                    t0 + w->conns[i].arrival_interval_ns * index / c->clients;
            }
        }
    }
    atomic_store_explicit(&run_phase, c->warmup_s > 0 ? PHASE_WARMUP : PHASE_MEASURE,
                          memory_order_release);
    for (unsigned t = 0; t < c->threads; t++) {
        if (pthread_create(&r->workers[t].tid, NULL, worker_main, &r->workers[t]) != 0) {
            /* The ones started see STOP and end. */
            atomic_store_explicit(&run_phase, PHASE_STOP, memory_order_release);
            for (unsigned k = 0; k < t; k++)
                pthread_join(r->workers[k].tid, NULL);
            return bench_errf(err, err_len, "cannot start thread %u", t);
        }
    }
    return 0;
}

static void free_workers(struct run *r)
{
    if (!r->workers)
        return;
    for (unsigned t = 0; t < r->cfg.threads; t++) {
        struct worker *w = &r->workers[t];
        for (unsigned i = 0; i < w->nconns; i++)
            conn_close(&w->conns[i]);
        free(w->conns);
        if (w->epfd > 0)
            close(w->epfd);
        pthread_mutex_destroy(&w->mu);
    }
    free(r->workers);
}

static void fill_summary(const struct run *r, struct bench_summary *s)
{
    const struct bench_config *c = &r->cfg;
    memset(s, 0, sizeof *s);
    s->scenario = bench_scenario_name(c->scenario);
    s->target = bench_target_name(c->target);
    s->transport = c->http ? "http" : "resp";
    s->keys = c->keys_text;
    s->clients = c->clients;
    s->threads = c->threads;
    s->pipeline = c->pipeline;
    s->rate_per_s = c->rate_per_s;
    s->duration_s = r->measured_s;
    s->ops = r->ops;
    s->errors = r->errors;
    s->latency = &r->total;
    for (int k = 0; k < CNT_KINDS && s->ncounters < BENCH_COUNTERS_MAX; k++)
        if (r->counters[k])
            s->counters[s->ncounters++] =
                (struct bench_counter){workload_counter_name((enum counter)k), r->counters[k]};
}

/* --check-only: the server's state against --stock, no load. */
static int check_only(const struct bench_config *c)
{
    char err[512], verdict[VERIFY_VERDICT_MAX];
    redisContext *ctx = verify_connect(c, err, sizeof err);
    struct level_state *after = calloc(c->keys_n, sizeof *after);
    if (!ctx || !after || verify_read(ctx, c, after, err, sizeof err) < 0) {
        fprintf(stderr, "invcore-bench: %s\n", ctx && after ? err : (ctx ? "out of memory" : err));
        redisFree(ctx);
        free(after);
        return EXIT_SETUP;
    }
    bool ok = verify_judge(c, NULL, after, NULL, verdict, sizeof verdict);
    printf("flash-sale check: %s\n", verdict);
    redisFree(ctx);
    free(after);
    return ok ? EXIT_OK : EXIT_CHECK_FAILED;
}

int main(int argc, char **argv)
{
    static struct run run; /* two histograms: not on the stack */
    struct bench_config *c = &run.cfg;
    char err[512];
    bool help = false;
    if (bench_config_parse(argc, argv, c, &help, err, sizeof err) < 0) {
        fprintf(stderr, "invcore-bench: %s\n", err);
        return EXIT_USAGE;
    }
    if (help) {
        bench_config_usage(stdout);
        return EXIT_OK;
    }
    signal(SIGPIPE, SIG_IGN);
    if (c->check_only)
        return check_only(c);

    workload_init(&run.wl, c, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    bool check = bench_scenario_sells(c->scenario) && !c->no_check;
    bool need_side = check || c->preload || c->target == TARGET_REDIS;
    redisContext *side = NULL;
    struct level_state *before = NULL, *after = NULL;
    struct sweeper sw = {.cfg = c, .wl = &run.wl};
    int code = EXIT_SETUP;
    if (need_side && !(side = verify_connect(c, err, sizeof err)))
        goto setup_failed;
    if (c->preload && verify_preload(side, c, err, sizeof err) < 0)
        goto setup_failed;
    if (c->target == TARGET_REDIS && verify_load_scripts(side, &run.wl, err, sizeof err) < 0)
        goto setup_failed;
    run.sellable = c->stock * (int64_t)c->keys_n;
    if (check) {
        before = calloc(c->keys_n, sizeof *before);
        after = calloc(c->keys_n, sizeof *after);
        if (!before || !after) {
            snprintf(err, sizeof err, "out of memory");
            goto setup_failed;
        }
        if (verify_read(side, c, before, err, sizeof err) < 0)
            goto setup_failed;
        run.sellable = 0;
        for (uint64_t i = 0; i < c->keys_n; i++)
            run.sellable += before[i].available + before[i].reserved;
    }
    bool sweeping =
        c->target == TARGET_REDIS && (c->scenario == SCEN_CHECKOUT || c->scenario == SCEN_MIX);
    if (sweeping && !(sw.ctx = verify_connect(c, err, sizeof err)))
        goto setup_failed;
    run.report = report_new(BENCH_SAMPLES_MAX, c->quiet ? NULL : stderr,
                            c->csv_path[0] ? c->csv_path : NULL, err, sizeof err);
    if (!run.report)
        goto setup_failed;
    hist_reset(&run.total);
    if (start_workers(&run, err, sizeof err) < 0)
        goto setup_failed;
    if (sweeping && pthread_create(&sw.tid, NULL, sweeper_main, &sw) != 0) {
        /* The run goes on without expiry (the check still holds: expiry
         * moves units within available + reserved) and ends in EXIT_RUN. */
        snprintf(sw.error, sizeof sw.error, "cannot start the Redis expiry sweeper");
        sweeping = false;
    }
    signal(SIGINT, on_sigint);

    static struct hist interval;
    drive(&run, &interval);
    code = run.report_failed ? EXIT_RUN : EXIT_OK;
    if (sweeping)
        pthread_join(sw.tid, NULL);

    struct bench_summary sum;
    fill_summary(&run, &sum);
    char verdict[VERIFY_VERDICT_MAX] = "";
    if (check) {
        if (verify_read(side, c, after, err, sizeof err) < 0) {
            fprintf(stderr, "invcore-bench: the check could not read the state: %s\n", err);
            code = EXIT_SETUP;
        } else {
            sum.checked = true;
            sum.ok = verify_judge(c, before, after, run.counters, verdict, sizeof verdict);
            sum.verdict = verdict;
            if (!sum.ok)
                code = EXIT_CHECK_FAILED;
        }
    }
    /* --json - takes stdout: the table goes to stderr, so stdout parses. */
    report_table(run.report, &sum, strcmp(c->json_path, "-") == 0 ? stderr : stdout);
    if (run.first_error[0])
        fprintf(stderr, "invcore-bench: first unexpected answer: %s\n", run.first_error);
    if (sw.error[0])
        fprintf(stderr, "invcore-bench: %s\n", sw.error);
    if (code == EXIT_OK && (run.errors || sw.error[0]))
        code = EXIT_RUN;
    if (c->json_path[0] && report_json(run.report, &sum, c->json_path, err, sizeof err) < 0) {
        fprintf(stderr, "invcore-bench: %s\n", err);
        code = code ? code : EXIT_RUN;
    }
    if (c->plot_path[0] && report_plot(run.report, &sum, c->plot_path, err, sizeof err) < 0) {
        fprintf(stderr, "invcore-bench: %s\n", err);
        code = code ? code : EXIT_RUN;
    }
    if (check && !sum.ok)
        fprintf(stderr, "invcore-bench: FLASH-SALE CHECK FAILED: %s\n", verdict);
    goto done;

setup_failed:
    fprintf(stderr, "invcore-bench: %s\n", err);
done:
    free_workers(&run);
    if (run.report)
        report_free(run.report);
    redisFree(side);
    redisFree(sw.ctx);
    free(before);
    free(after);
    return code;
}
