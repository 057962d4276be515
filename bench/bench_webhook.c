/*
 * bench_webhook.c — what a webhook costs invcored, and what its JSON costs.
 *
 *   bench_webhook [json|write|all]     (no argument: all, as `make bench`)
 *
 * json: encodes the same change-feed record BENCH_JSON_RECORDS times (1M)
 *   with feed_json (yajl's streaming generator, what invcored uses) and
 *   with jansson (build a json_t tree, json_dumpb, free), one line each:
 *   records/s and ns/record. Why yajl: no tree per record, no allocation
 *   once the buffer has grown.
 * write: invcored's write throughput (LEVEL.ADJUST from BENCH_CLIENTS
 *   connections, each pipelining BENCH_PIPELINE, for BENCH_SECONDS) in
 *   three servers started in the same run: no webhook; a webhook whose
 *   receiver stalls (a listening socket that never accepts: every POST
 *   hangs until its timeout); a webhook with a live receiver answering 200
 *   (the sender reads, encodes and POSTs everything meanwhile). Prints
 *   ops/s and each webhook run's ratio to the no-webhook run (target:
 *   stalled >= 0.90). The rounds alternate the three servers
 *   BENCH_ROUNDS times and keep each one's best, so a burst of noise from
 *   the other processes on the machine hits all three alike.
 *
 * Knobs (environment): BENCH_SECONDS (3), BENCH_CLIENTS (64),
 * BENCH_PIPELINE (16), BENCH_ROUNDS (2), BENCH_JSON_RECORDS (1000000),
 * INVCORED (build/invcored).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_util.h"
#include "server/feed_json.h"

#define CLIENTS_MAX 256u
#define PIPELINE_MAX 1024u
#define ITEMS 1000u /* levels the clients adjust: items 1..ITEMS at location 1 */
#define START_TIMEOUT_MS 10000
#define RX_HEAD_MAX 8192u
#define RX_BODY_MAX (16u << 20)

/* ---- json ------------------------------------------------------------------- */

static void sample_record(inv_feed_record *r, inv_feed_change *c)
{
    memset(r, 0, sizeof *r);
    memset(c, 0, 2 * sizeof *c);
    for (int i = 0; i < 2; i++) {
        c[i].kind = i == 0 ? INV_FEED_HOLD_CREATE : INV_FEED_LEVEL_ADJUST;
        c[i].item = 4000000123ull + (uint64_t)i;
        c[i].location = 7;
        c[i].delta[0] = -2;
        c[i].delta[1] = i == 0 ? 2 : 0;
        c[i].after[0] = 98;
        c[i].after[1] = 2;
        c[i].after_known = 3;
        c[i].revision = 123456789;
        c[i].reason = INV_REASON_RESERVATION_CREATED;
        c[i].ref = "order/4711";
        c[i].ref_len = 10;
    }
    c[0].hold_id = "cart-8f3a";
    c[0].hold_id_len = 9;
    r->position = 123456789;
    r->group = 123456700;
    r->time_ms = 1765000000000;
    r->kind = INV_FEED_BATCH;
    r->request_id = "req-0001";
    r->request_id_len = 8;
    r->actor = "checkout";
    r->actor_len = 8;
    r->changes = c;
    r->n_changes = 2;
}

/* jansson's equivalent of feed_json's object (same fields, same values). */
static json_t *jansson_record(const inv_feed_record *r)
{
    json_t *changes = json_array();
    char id[24];
    for (size_t i = 0; i < r->n_changes; i++) {
        const inv_feed_change *c = &r->changes[i];
        json_t *d = json_object(), *a = json_object();
        for (int q = 0; q < INV_QTY_NAMES; q++) {
            if (c->delta[q] != 0)
                json_object_set_new(d, inv_qty_name_str((inv_qty_name)q),
                                    json_integer(c->delta[q]));
            if (c->after_known & (1u << q))
                json_object_set_new(a, inv_qty_name_str((inv_qty_name)q),
                                    json_integer(c->after[q]));
        }
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(inv_feed_kind_str(c->kind)));
        snprintf(id, sizeof id, "%llu", (unsigned long long)c->item);
        json_object_set_new(o, "item", json_string(id));
        snprintf(id, sizeof id, "%llu", (unsigned long long)c->location);
        json_object_set_new(o, "location", json_string(id));
        json_object_set_new(o, "revision", json_integer((json_int_t)c->revision));
        json_object_set_new(o, "deltas", d);
        json_object_set_new(o, "after", a);
        json_object_set_new(o, "created", json_boolean(c->created));
        json_object_set_new(o, "deleted", json_boolean(c->deleted));
        json_object_set_new(o, "reason", json_string(inv_reason_str(c->reason)));
        json_object_set_new(o, "ref", c->ref ? json_stringn(c->ref, c->ref_len) : json_null());
        json_object_set_new(o, "hold_id",
                            c->hold_id ? json_stringn(c->hold_id, c->hold_id_len) : json_null());
        json_array_append_new(changes, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "position", json_integer((json_int_t)r->position));
    json_object_set_new(o, "group", json_integer((json_int_t)r->group));
    json_object_set_new(o, "time_ms", json_integer(r->time_ms));
    json_object_set_new(o, "kind", json_string(inv_feed_kind_str(r->kind)));
    json_object_set_new(o, "item", json_string("0"));
    json_object_set_new(o, "location", json_string("0"));
    json_object_set_new(o, "hold_id", json_null());
    json_object_set_new(o, "request_id", json_stringn(r->request_id, r->request_id_len));
    json_object_set_new(o, "actor", json_stringn(r->actor, r->actor_len));
    json_object_set_new(o, "deleted", json_boolean(r->deleted));
    json_object_set_new(o, "changes", changes);
    return o;
}

static void bench_json(void)
{
    uint64_t n = bench_env_u64("BENCH_JSON_RECORDS", 1000000);
    inv_feed_record r;
    inv_feed_change c[2];
    sample_record(&r, c);
    feed_json *j = feed_json_new();
    const char *buf;
    size_t len = 0, bytes = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        r.position = 123456789 + i;
        feed_json_begin(j, false);
        if (feed_json_add(j, &r) != INV_OK || feed_json_end(j, &buf, &len) != INV_OK) {
            fprintf(stderr, "bench_webhook: feed_json failed\n");
            exit(1);
        }
        bytes += len;
    }
    double yajl_s = (double)(bench_now_ns() - t0) / 1e9;
    feed_json_free(j);
    char out[4096];
    size_t jbytes = 0;
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        r.position = 123456789 + i;
        json_t *o = jansson_record(&r);
        jbytes += json_dumpb(o, out, sizeof out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
    }
    double jansson_s = (double)(bench_now_ns() - t0) / 1e9;
    printf("json: %llu records of %zu bytes (a 2-change batch)\n", (unsigned long long)n,
           bytes / (n ? n : 1));
    printf("  yajl (feed_json)  %10.0f records/s  %6.0f ns/record\n", (double)n / yajl_s,
           yajl_s * 1e9 / (double)n);
    printf("  jansson           %10.0f records/s  %6.0f ns/record  (%zu bytes/record)\n",
           (double)n / jansson_s, jansson_s * 1e9 / (double)n, jbytes / (n ? n : 1));
}

/* ---- a live receiver: answers 200 to every POST --------------------------- */

typedef struct {
    int fd, port;
    atomic_bool stop;
    atomic_ullong posts;
    pthread_t thread;
} receiver;

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("bench_webhook: listen");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Reads a request (headers, then Content-Length bytes); false at EOF. */
static bool read_request(int fd, char *buf)
{
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        ssize_t r = recv(fd, buf + got, 1, 0);
        if (r <= 0 || ++got >= RX_HEAD_MAX)
            return false;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    char *cl = strcasestr(buf, "\r\ncontent-length:");
    size_t n = cl ? strtoul(cl + 17, NULL, 10) : 0;
    static char body[1 << 16];
    while (n > 0 && n <= RX_BODY_MAX) {
        ssize_t r = recv(fd, body, n < sizeof body ? n : sizeof body, 0);
        if (r <= 0)
            return false;
        n -= (size_t)r;
    }
    return true;
}

static void *receiver_main(void *arg)
{
    receiver *rx = arg;
    static char head[RX_HEAD_MAX + 1];
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    while (!atomic_load_explicit(&rx->stop, memory_order_acquire)) {
        struct pollfd p = {rx->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(rx->fd, NULL, NULL);
        while (c >= 0 && read_request(c, head)) {
            atomic_fetch_add_explicit(&rx->posts, 1, memory_order_relaxed);
            if (send(c, ok, strlen(ok), MSG_NOSIGNAL) < 0)
                break;
        }
        if (c >= 0)
            close(c);
    }
    return NULL;
}

/* ---- invcored -------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    char dir[64], log[96];
} server;

static void server_start(server *s, const char *webhook_url)
{
    const char *bin = getenv("INVCORED") ? getenv("INVCORED") : "build/invcored";
    snprintf(s->dir, sizeof s->dir, "/tmp/invcore-bench-webhook-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        perror("bench_webhook: mkdtemp");
        exit(1);
    }
    snprintf(s->log, sizeof s->log, "%s/log", s->dir);
    const char *argv[] = {bin, "--port", "0", "--data-dir", s->dir, "--webhook", webhook_url, NULL};
    if (webhook_url == NULL)
        argv[5] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int waited = 0; waited < START_TIMEOUT_MS; waited += 10) {
        char buf[4096] = {0};
        FILE *f = fopen(s->log, "r");
        if (f != NULL) {
            size_t r = fread(buf, 1, sizeof buf - 1, f);
            buf[r] = '\0';
            fclose(f);
            char *p = strstr(buf, "listening on 127.0.0.1:");
            if (p != NULL) {
                s->port = atoi(p + strlen("listening on 127.0.0.1:"));
                return;
            }
        }
        usleep(10000);
    }
    fprintf(stderr, "bench_webhook: invcored did not start (log %s)\n", s->log);
    exit(1);
}

static void server_stop(server *s)
{
    char cmd[128];
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_webhook: could not remove %s\n", s->dir);
}

/* ---- the load ---------------------------------------------------------------- */

typedef struct {
    int port;
    unsigned id, pipeline;
    double seconds;
    uint64_t ops;
    bool failed;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    redisContext *r = redisConnect("127.0.0.1", c->port);
    if (r == NULL || r->err) {
        c->failed = true;
        return NULL;
    }
    uint64_t end = bench_now_ns() + (uint64_t)(c->seconds * 1e9), rng = bench_rng_seed(c->id);
    while (bench_now_ns() < end && !c->failed) {
        for (unsigned i = 0; i < c->pipeline; i++)
            redisAppendCommand(r, "LEVEL.ADJUST %llu 1 %d",
                               (unsigned long long)(1 + bench_rng_below(&rng, ITEMS)),
                               (i & 1) ? 1 : -1);
        for (unsigned i = 0; i < c->pipeline; i++) {
            redisReply *rep = NULL;
            if (redisGetReply(r, (void **)&rep) != REDIS_OK || rep == NULL ||
                rep->type == REDIS_REPLY_ERROR)
                c->failed = true;
            freeReplyObject(rep);
        }
        c->ops += c->pipeline;
    }
    redisFree(r);
    return NULL;
}

static void load_catalog(int port)
{
    redisContext *r = redisConnect("127.0.0.1", port);
    if (r == NULL || r->err) {
        fprintf(stderr, "bench_webhook: connect failed\n");
        exit(1);
    }
    freeReplyObject(redisCommand(r, "LOC.SET 1 name Main"));
    for (unsigned i = 1; i <= ITEMS; i++) {
        freeReplyObject(redisCommand(r, "ITEM.SET %u sku S%u", i, i));
        freeReplyObject(redisCommand(r, "LEVEL.SET %u 1 1000000", i));
    }
    redisFree(r);
}

/* One measurement: ops/s of the load against a fresh server. */
static double measure(const char *webhook_url)
{
    static client cs[CLIENTS_MAX];
    static pthread_t th[CLIENTS_MAX];
    unsigned n = (unsigned)bench_env_u64("BENCH_CLIENTS", 64);
    unsigned pipeline = (unsigned)bench_env_u64("BENCH_PIPELINE", 16);
    double seconds = bench_env_double("BENCH_SECONDS", 3);
    n = n < 1 ? 1 : n > CLIENTS_MAX ? CLIENTS_MAX : n;
    pipeline = pipeline < 1 ? 1 : pipeline > PIPELINE_MAX ? PIPELINE_MAX : pipeline;
    server s;
    server_start(&s, webhook_url);
    load_catalog(s.port);
    uint64_t t0 = bench_now_ns(), ops = 0;
    for (unsigned i = 0; i < n; i++) {
        cs[i] = (client){s.port, i, pipeline, seconds, 0, false};
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    bool failed = false;
    for (unsigned i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ops += cs[i].ops;
        failed |= cs[i].failed;
    }
    double rate = (double)ops / ((double)(bench_now_ns() - t0) / 1e9);
    server_stop(&s);
    if (failed) {
        fprintf(stderr, "bench_webhook: a client failed\n");
        exit(1);
    }
    return rate;
}

static void bench_write(void)
{
    int stalled_port, live_port;
    int stalled_fd = listen_any(&stalled_port); /* never accepted: every POST hangs */
    receiver rx = {.fd = listen_any(&live_port)};
    pthread_create(&rx.thread, NULL, receiver_main, &rx);
    char stalled_url[64], live_url[64];
    snprintf(stalled_url, sizeof stalled_url, "http://127.0.0.1:%d/hook", stalled_port);
    snprintf(live_url, sizeof live_url, "http://127.0.0.1:%d/hook", live_port);
    unsigned rounds = (unsigned)bench_env_u64("BENCH_ROUNDS", 2);
    double best[3] = {0, 0, 0};
    const char *urls[3] = {NULL, stalled_url, live_url};
    for (unsigned r = 0; r < (rounds ? rounds : 1); r++)
        for (int k = 0; k < 3; k++) {
            double v = measure(urls[k]);
            best[k] = v > best[k] ? v : best[k];
        }
    atomic_store_explicit(&rx.stop, true, memory_order_release);
    pthread_join(rx.thread, NULL);
    close(rx.fd);
    close(stalled_fd);
    printf("write: LEVEL.ADJUST, %llu clients x pipeline %llu, best of %u rounds\n",
           (unsigned long long)bench_env_u64("BENCH_CLIENTS", 64),
           (unsigned long long)bench_env_u64("BENCH_PIPELINE", 16), rounds);
    printf("  no webhook            %10.0f ops/s\n", best[0]);
    printf("  webhook, stalled      %10.0f ops/s  ratio %.3f (target >= 0.90)\n", best[1],
           best[1] / best[0]);
    printf("  webhook, live (200)   %10.0f ops/s  ratio %.3f  (%llu POSTs answered)\n", best[2],
           best[2] / best[0],
           (unsigned long long)atomic_load_explicit(&rx.posts, memory_order_relaxed));
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "json") != 0 && strcmp(mode, "write") != 0 && strcmp(mode, "all") != 0) {
        fprintf(stderr, "usage: bench_webhook [json|write|all]\n");
        return 2;
    }
    if (strcmp(mode, "write") != 0)
        bench_json();
    if (strcmp(mode, "json") != 0)
        bench_write();
    return 0;
}
