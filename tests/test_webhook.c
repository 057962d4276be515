/*
 * test_webhook.c — integration: invcored's webhooks (core/server/webhook.c)
 * against a loopback HTTP receiver run by this test, and the command-line
 * reader build/invcore-feed (core/tools/invcore_feed.c) over a data dir.
 *
 * The receiver (rx_*) is a small HTTP/1.1 server on 127.0.0.1 in a thread
 * of the test: it keeps every request's body and signature header and
 * answers as its mode says: 200, 500, or a stall (reads the request, never
 * answers, holds the connection until the client gives up). The checks
 * read what it kept; nothing waits on time alone (bounded polls of a
 * condition).
 */
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

#include "server/webhook.h"
#include "test_server_harness.h"

#define RX_BODIES_MAX 4096u
#define RX_HEAD_MAX 8192u
#define RX_BODY_MAX (8u << 20)
#define WAIT_MS 20000 /* a condition must hold within this */
#define SECRET "s3cret-key"
#define LEVELS 4 /* items 10..13 at location 1 */

typedef enum { RX_OK = 0, RX_FAIL = 1, RX_STALL = 2 } rx_mode;

typedef struct {
    char *body;
    size_t len;
    char sig[128];
    int status; /* 200, 500, or 0: stalled */
} rx_body;

typedef struct {
    int listen_fd, port;
    atomic_int mode;
    atomic_bool stop;
    pthread_t thread;
    pthread_mutex_t mu;
    rx_body bodies[RX_BODIES_MAX];
    size_t n;
    atomic_uint stalled;
} rx_t;

/* ---- the receiver ---------------------------------------------------------- */

/* Reads one request on fd: headers then Content-Length bytes. Returns the
 * body (malloc'd, NUL-terminated) or NULL at EOF / error / stop. */
static char *rx_read_request(rx_t *rx, int fd, size_t *len, char *sig, size_t sigcap)
{
    char head[RX_HEAD_MAX + 1];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        struct pollfd p = {fd, POLLIN, 0};
        if (atomic_load_explicit(&rx->stop, memory_order_acquire))
            return NULL;
        if (poll(&p, 1, 100) <= 0)
            continue;
        /* byte by byte: the body's first bytes stay in the socket */
        ssize_t r = recv(fd, head + got, 1, 0);
        if (r <= 0 || ++got >= RX_HEAD_MAX)
            return NULL;
        head[got] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    const char *cl = strcasestr(head, "\r\ncontent-length:");
    const char *hs = strcasestr(head, "\r\nx-invcore-hmac-sha256:");
    size_t n = cl ? strtoul(cl + 17, NULL, 10) : 0;
    sig[0] = '\0';
    if (hs != NULL) {
        hs += 24;
        while (*hs == ' ')
            hs++;
        size_t k = strcspn(hs, "\r");
        snprintf(sig, sigcap, "%.*s", (int)k, hs);
    }
    if (n > RX_BODY_MAX)
        return NULL;
    char *body = malloc(n + 1);
    size_t have = 0;
    while (body && have < n) {
        ssize_t r = recv(fd, body + have, n - have, 0);
        if (r <= 0) {
            free(body);
            return NULL;
        }
        have += (size_t)r;
    }
    if (body)
        body[n] = '\0';
    *len = n;
    return body;
}

static void rx_keep(rx_t *rx, char *body, size_t len, const char *sig, int status)
{
    pthread_mutex_lock(&rx->mu);
    if (rx->n < RX_BODIES_MAX) {
        rx_body *b = &rx->bodies[rx->n++];
        b->body = body;
        b->len = len;
        snprintf(b->sig, sizeof b->sig, "%s", sig);
        b->status = status;
    } else
        free(body);
    pthread_mutex_unlock(&rx->mu);
}

/* Serves one connection until the client closes it (or stop). */
static void rx_serve(rx_t *rx, int fd)
{
    for (;;) {
        size_t len;
        char sig[128];
        char *body = rx_read_request(rx, fd, &len, sig, sizeof sig);
        if (body == NULL)
            return;
        int mode = atomic_load_explicit(&rx->mode, memory_order_acquire);
        if (mode == RX_STALL) {
            rx_keep(rx, body, len, sig, 0);
            atomic_fetch_add_explicit(&rx->stalled, 1, memory_order_release);
            char b[256];
            for (;;) { /* never answer: wait for the client to give up */
                struct pollfd p = {fd, POLLIN, 0};
                if (atomic_load_explicit(&rx->stop, memory_order_acquire))
                    return;
                if (poll(&p, 1, 100) > 0 && recv(fd, b, sizeof b, 0) <= 0)
                    return;
            }
        }
        int status = mode == RX_FAIL ? 500 : 200;
        rx_keep(rx, body, len, sig, status);
        const char *reply = status == 200
                                ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                : "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
        raw_send(fd, reply, strlen(reply));
    }
}

static void *rx_main(void *arg)
{
    rx_t *rx = arg;
    while (!atomic_load_explicit(&rx->stop, memory_order_acquire)) {
        struct pollfd p = {rx->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(rx->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        rx_serve(rx, fd);
        close(fd);
    }
    return NULL;
}

static void rx_start(rx_t *rx)
{
    memset(rx, 0, sizeof *rx);
    pthread_mutex_init(&rx->mu, NULL);
    rx->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(rx->listen_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(rx->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(rx->listen_fd, 16), 0);
    cr_assert_eq(getsockname(rx->listen_fd, (struct sockaddr *)&a, &alen), 0);
    rx->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&rx->thread, NULL, rx_main, rx), 0);
}

static void rx_stop(rx_t *rx)
{
    atomic_store_explicit(&rx->stop, true, memory_order_release);
    pthread_join(rx->thread, NULL);
    close(rx->listen_fd);
    for (size_t i = 0; i < rx->n; i++)
        free(rx->bodies[i].body);
    pthread_mutex_destroy(&rx->mu);
}

static void rx_set(rx_t *rx, rx_mode m)
{
    atomic_store_explicit(&rx->mode, m, memory_order_release);
}

static size_t rx_count(rx_t *rx)
{
    pthread_mutex_lock(&rx->mu);
    size_t n = rx->n;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

/* ---- records as the receiver got them ------------------------------------- */

typedef struct {
    uint64_t position;
    uint64_t item[64], loc[64], rev[64];
    size_t n_changes;
    char kind[32];
} seen_rec;

static uint64_t json_u64(yajl_val v)
{
    if (YAJL_IS_STRING(v))
        return strtoull(v->u.string, NULL, 10);
    cr_assert(YAJL_IS_INTEGER(v), "expected a number");
    return (uint64_t)YAJL_GET_INTEGER(v);
}

static yajl_val json_get(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_any);
    cr_assert_not_null(v, "JSON field %s missing", key);
    return v;
}

/* v's text; fails the test when v is not a string. */
static const char *json_str(yajl_val v)
{
    cr_assert(YAJL_IS_STRING(v), "expected a string");
    return v->u.string;
}

/* One JSON record object into *r (checks the schema's fields exist). */
static void seen_from(yajl_val o, seen_rec *r)
{
    cr_assert(YAJL_IS_OBJECT(o));
    memset(r, 0, sizeof *r);
    r->position = json_u64(json_get(o, "position"));
    (void)json_u64(json_get(o, "group"));
    snprintf(r->kind, sizeof r->kind, "%s", json_str(json_get(o, "kind")));
    yajl_val item = json_get(o, "item");
    /* ids are strings; a record's own item is an item record's only */
    cr_assert(strcmp(r->kind, "item") == 0 ? YAJL_IS_STRING(item) : YAJL_IS_NULL(item),
              "item of a %s record", r->kind);
    yajl_val ch = json_get(o, "changes");
    cr_assert(YAJL_IS_ARRAY(ch));
    for (size_t i = 0; i < YAJL_GET_ARRAY(ch)->len && i < 64; i++) {
        yajl_val c = YAJL_GET_ARRAY(ch)->values[i];
        r->item[i] = json_u64(json_get(c, "item"));
        r->loc[i] = json_u64(json_get(c, "location"));
        r->rev[i] = json_u64(json_get(c, "revision"));
        cr_assert(YAJL_IS_OBJECT(json_get(c, "deltas")));
        cr_assert(YAJL_IS_OBJECT(json_get(c, "after")));
        r->n_changes++;
    }
}

/* Parses body (a JSON array of records) into out (cap); returns count. */
static size_t parse_body(const char *body, seen_rec *out, size_t cap)
{
    char err[256];
    yajl_val v = yajl_tree_parse(body, err, sizeof err);
    cr_assert_not_null(v, "body is not JSON: %s", err);
    cr_assert(YAJL_IS_ARRAY(v), "a body is an array of records");
    size_t n = YAJL_GET_ARRAY(v)->len;
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++)
        seen_from(YAJL_GET_ARRAY(v)->values[i], &out[i]);
    yajl_tree_free(v);
    return n;
}

static void expect_signature(const rx_body *b)
{
    unsigned char mac[EVP_MAX_MD_SIZE], b64[128];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)b->body, b->len, mac,
         &mlen);
    EVP_EncodeBlock(b64, mac, (int)mlen);
    cr_assert_str_eq(b->sig, (const char *)b64, "signature of a %zu-byte body", b->len);
}

/* ---- the server side --------------------------------------------------------- */

static long long info_field(redisContext *c, const char *name)
{
    redisReply *r = cmd(c, "INFO webhooks");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    const char *p = strstr(r->str, name);
    long long v = p ? atoll(p + strlen(name)) : -1;
    freeReplyObject(r);
    return v;
}

/* Waits until cond(c, arg) or fails the test with what. */
#define WAIT_UNTIL(cond, what)                                            \
    do {                                                                  \
        long long deadline_ = srv_now_ms() + WAIT_MS;                     \
        while (!(cond)) {                                                 \
            cr_assert_lt(srv_now_ms(), deadline_, "timed out: %s", what); \
            srv_sleep_ms(20);                                             \
        }                                                                 \
    } while (0)

static void start_webhooked(srv_t *s, rx_t *rx, bool fresh, const char *extra)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook%s", rx->port, extra ? extra : "");
    const char *args[] = {
        "--fsync", "always", "--webhook", url, "--webhook-secret", SECRET, "--webhook-timeout-ms",
        "300",     NULL};
    if (fresh)
        srv_prepare(s);
    cr_assert_eq(srv_spawn(s, 1, args), 0, "invcored did not start (log %s)", s->log);
}

static void make_changes(redisContext *c, int round)
{
    for (int i = 0; i < LEVELS; i++)
        expect_level(c, 100 + round, 0, "LEVEL.SET %d 1 %d", 10 + i, 100 + round);
    for (int i = 0; i < LEVELS; i++)
        expect_level(c, 99 + round, 0, "LEVEL.ADJUST %d 1 -1", 10 + i);
    expect_status(c, "OK", "HOLD.CREATE h%d 600000 10 1 2 11 1 1", round);
    expect_status(c, "OK", "HOLD.COMMIT h%d", round);
}

static void setup_catalog(redisContext *c)
{
    expect_status(c, "OK", "LOC.SET 1 name Main");
    for (int i = 0; i < LEVELS; i++)
        expect_status(c, "OK", "ITEM.SET %d sku S%d", 10 + i, i);
}

/* Every position a fresh reader of the stopped server's data dir sees. */
static size_t journal_positions(const char *dir, uint64_t *out, size_t cap)
{
    inv_feed *f = NULL;
    inv_feed_record r;
    size_t n = 0;
    cr_assert_eq(inv_feed_open_dir(dir, 0, &f), INV_OK);
    while (inv_feed_next(f, &r) == INV_OK) {
        cr_assert_lt(n, cap);
        out[n++] = r.position;
    }
    inv_feed_close(f);
    return n;
}

/* ---- what the receiver got ------------------------------------------------ */

#define POSITIONS_MAX 4096u

typedef struct {
    uint64_t pos[POSITIONS_MAX]; /* every position in a 200-answered body */
    size_t n;
} pos_set;

static bool pos_in(const pos_set *s, uint64_t p)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->pos[i] == p)
            return true;
    return false;
}

static void pos_add(pos_set *s, uint64_t p)
{
    if (!pos_in(s, p)) {
        cr_assert_lt(s->n, POSITIONS_MAX);
        s->pos[s->n++] = p;
    }
}

static seen_rec g_recs[WEBHOOK_BATCH_RECORDS_MAX];

/* The positions of bodies [from, rx->n) answered 200; checks each body's
 * signature. *min_pos: the lowest position in any body from `from` on. */
static void collect(rx_t *rx, size_t from, pos_set *ok, uint64_t *min_pos)
{
    *min_pos = UINT64_MAX;
    pthread_mutex_lock(&rx->mu);
    for (size_t i = from; i < rx->n; i++) {
        expect_signature(&rx->bodies[i]);
        size_t k = parse_body(rx->bodies[i].body, g_recs, WEBHOOK_BATCH_RECORDS_MAX);
        for (size_t j = 0; j < k; j++) {
            if (rx->bodies[i].status == 200)
                pos_add(ok, g_recs[j].position);
            if (g_recs[j].position < *min_pos)
                *min_pos = g_recs[j].position;
        }
    }
    pthread_mutex_unlock(&rx->mu);
}

static bool was_delivered(rx_t *rx, uint64_t p)
{
    static pos_set ok;
    uint64_t min_pos;
    ok.n = 0;
    collect(rx, 0, &ok, &min_pos);
    return pos_in(&ok, p);
}

/* In every body, in arrival order, a record seen for the first time has
 * a higher position than every earlier first-seen record of its levels,
 * and each level's revisions grow. */
static void expect_order_per_level(rx_t *rx)
{
    static pos_set first;
    uint64_t last[LEVELS + 100] = {0}; /* by item: items are small here */
    first.n = 0;
    pthread_mutex_lock(&rx->mu);
    for (size_t i = 0; i < rx->n; i++) {
        size_t k = parse_body(rx->bodies[i].body, g_recs, WEBHOOK_BATCH_RECORDS_MAX);
        for (size_t j = 0; j < k; j++) {
            const seen_rec *r = &g_recs[j];
            if (pos_in(&first, r->position))
                continue; /* a resend */
            pos_add(&first, r->position);
            for (size_t c = 0; c < r->n_changes; c++) {
                cr_assert_lt(r->item[c], LEVELS + 100);
                cr_assert_gt(r->position, last[r->item[c]], "item %llu: record %llu after %llu",
                             (unsigned long long)r->item[c], (unsigned long long)r->position,
                             (unsigned long long)last[r->item[c]]);
                last[r->item[c]] = r->position;
            }
        }
    }
    pthread_mutex_unlock(&rx->mu);
}

/* A last change to wait for: its revision is its record's position. */
static uint64_t marker(redisContext *c, int round)
{
    return (uint64_t)expect_level(c, round, 0, "LEVEL.SET 10 1 %d", round);
}

Test(webhook, delivers_every_record_in_order_signed_through_failures_stalls_and_restarts,
     .timeout = 120)
{
    static rx_t rx;
    srv_t s;
    rx_start(&rx);
    start_webhooked(&s, &rx, true, NULL);
    redisContext *c = srv_connect(&s);

    /* healthy: delivered */
    setup_catalog(c);
    make_changes(c, 1);
    uint64_t m = marker(c, 1);
    WAIT_UNTIL(was_delivered(&rx, m), "first records delivered");
    cr_assert_eq(info_field(c, "failures="), 0);

    /* 500s: retried, INFO shows the failures */
    rx_set(&rx, RX_FAIL);
    make_changes(c, 2);
    WAIT_UNTIL(info_field(c, "failing=") >= 2, "retries after a 500");
    cr_assert_eq(info_field(c, "last_status="), 500);

    /* a stall past the client's timeout: a failure too */
    rx_set(&rx, RX_STALL);
    unsigned stalled0 = atomic_load_explicit(&rx.stalled, memory_order_acquire);
    WAIT_UNTIL(atomic_load_explicit(&rx.stalled, memory_order_acquire) >= stalled0 + 2,
               "a retry after a stalled POST");
    cr_assert_eq(info_field(c, "last_status="), 0, "a stalled POST has no status");

    /* recovery: everything arrives, INFO says so */
    rx_set(&rx, RX_OK);
    m = marker(c, 2);
    WAIT_UNTIL(was_delivered(&rx, m), "delivered after recovery");
    WAIT_UNTIL(info_field(c, "failing=") == 0, "INFO: no longer failing");
    WAIT_UNTIL(info_field(c, "lag_bytes=") == 0, "INFO: caught up");
    cr_assert_eq(info_field(c, "last_status="), 200);
    cr_assert_geq(info_field(c, "failures="), 3);
    long long acked = info_field(c, "acked_position=");
    cr_assert_geq(acked, (long long)m);

    /* a clean restart resumes after the stored position: nothing at or
     * before it is sent again */
    redisFree(c);
    cr_assert_eq(srv_stop(&s), 0);
    size_t mark = rx_count(&rx);
    start_webhooked(&s, &rx, false, NULL);
    c = srv_connect(&s);
    make_changes(c, 3);
    m = marker(c, 3);
    WAIT_UNTIL(was_delivered(&rx, m), "delivered after a restart");
    static pos_set after;
    uint64_t min_pos;
    collect(&rx, mark, &after, &min_pos);
    cr_assert_gt(min_pos, (uint64_t)acked, "resent %llu, at or before the acked %lld",
                 (unsigned long long)min_pos, acked);

    /* killed while failing: the unacknowledged batch comes after restart */
    rx_set(&rx, RX_FAIL);
    make_changes(c, 4);
    uint64_t lost = marker(c, 4);
    WAIT_UNTIL(info_field(c, "failing=") >= 1, "failing before the kill");
    acked = info_field(c, "acked_position=");
    redisFree(c);
    kill(s.pid, SIGKILL);
    waitpid(s.pid, NULL, 0);
    s.pid = 0;
    rx_set(&rx, RX_OK);
    mark = rx_count(&rx);
    start_webhooked(&s, &rx, false, NULL);
    WAIT_UNTIL(was_delivered(&rx, lost), "the unacknowledged batch after SIGKILL");
    after.n = 0;
    collect(&rx, mark, &after, &min_pos);
    cr_assert_gt(min_pos, (uint64_t)acked, "nothing acknowledged is sent again");
    cr_assert_eq(srv_stop(&s), 0);

    /* every record of the journal was delivered at least once, in order
     * per level, every body signed */
    static uint64_t all[POSITIONS_MAX];
    static pos_set ok;
    size_t n = journal_positions(s.data, all, POSITIONS_MAX);
    collect(&rx, 0, &ok, &min_pos);
    cr_assert_gt(n, 40);
    for (size_t i = 0; i < n; i++)
        cr_assert(pos_in(&ok, all[i]), "record %llu never delivered", (unsigned long long)all[i]);
    expect_order_per_level(&rx);
    rx_stop(&rx);
    srv_cleanup(&s);
}

Test(webhook, a_topic_filter_sends_only_its_records, .timeout = 60)
{
    static rx_t rx;
    srv_t s;
    rx_start(&rx);
    start_webhooked(&s, &rx, true, "#topics=holds");
    redisContext *c = srv_connect(&s);
    setup_catalog(c);
    make_changes(c, 1);
    uint64_t m = marker(c, 1);
    /* the marker is skipped (a level change): the acked position passes it */
    WAIT_UNTIL(info_field(c, "acked_position=") >= (long long)m, "acked past skipped records");
    cr_assert_gt(rx_count(&rx), 0, "the holds were sent");
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++) {
        size_t k = parse_body(rx.bodies[i].body, g_recs, WEBHOOK_BATCH_RECORDS_MAX);
        for (size_t j = 0; j < k; j++)
            cr_assert(strncmp(g_recs[j].kind, "hold.", 5) == 0 ||
                          strcmp(g_recs[j].kind, "batch") == 0,
                      "a %s record passed the holds filter", g_recs[j].kind);
    }
    pthread_mutex_unlock(&rx.mu);
    redisFree(c);
    rx_stop(&rx);
    srv_cleanup(&s);
}

/* ---- running a program -------------------------------------------------------- */

/* Runs argv with stdout to out_path (NULL: /dev/null); returns its exit
 * status (128 + signal when killed). */
static int run(const char *const *argv, const char *out_path)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_WRONLY);
        if (fd < 0 || nul < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(nul, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(webhook, bad_webhook_arguments_stop_invcored_with_exit_2)
{
    const char *bin = srv_bin();
    const char *bad[][6] = {
        {bin, "--in-memory", "--webhook", "http://127.0.0.1:1/x", NULL},
        {bin, "--webhook", "ftp://127.0.0.1/x", NULL},
        {bin, "--webhook", "http://127.0.0.1:1/x#topics=levels,bogus", NULL},
        {bin, "--webhook", "http://127.0.0.1:1/x#other", NULL},
        {bin, "--webhook", "http://127.0.0.1:1/x", "--webhook-timeout-ms", "1", NULL},
        {bin, "--webhook-secret", "", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(run(bad[i], NULL), 2, "case %zu: %s %s", i, bad[i][1], bad[i][2]);
}

/* ---- invcore-feed ---------------------------------------------------------------- */

#define FEED_BIN "build/invcore-feed"
#define LINES_MAX 512u

typedef struct {
    yajl_val rec[LINES_MAX];
    size_t n;
} lines_t;

/* Parses every line of path as one JSON record. */
static void read_lines(const char *path, lines_t *l)
{
    static char line[1 << 16];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    l->n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char err[256];
        cr_assert_lt(l->n, LINES_MAX);
        l->rec[l->n] = yajl_tree_parse(line, err, sizeof err);
        cr_assert_not_null(l->rec[l->n], "not JSON: %s (%s)", line, err);
        cr_assert(YAJL_IS_OBJECT(l->rec[l->n]));
        l->n++;
    }
    fclose(f);
}

static void free_lines(lines_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        yajl_tree_free(l->rec[i]);
    l->n = 0;
}

static yajl_val find_position(const lines_t *l, uint64_t pos)
{
    for (size_t i = 0; i < l->n; i++)
        if (json_u64(json_get(l->rec[i], "position")) == pos)
            return l->rec[i];
    return NULL;
}

static int64_t qty(yajl_val change, const char *map, const char *name)
{
    const char *path[] = {map, name, NULL};
    yajl_val v = yajl_tree_get(change, path, yajl_t_number);
    cr_assert_not_null(v, "%s.%s missing", map, name);
    return YAJL_GET_INTEGER(v);
}

Test(invcore_feed, dir_prints_the_changes_as_json_lines, .timeout = 60)
{
    srv_t s;
    srv_start(&s, NULL);
    redisContext *c = srv_connect(&s);
    setup_catalog(c);
    uint64_t set = (uint64_t)expect_level(c, 5, 0, "LEVEL.SET 10 1 5");
    uint64_t adj = (uint64_t)expect_level(c, 3, 0, "LEVEL.ADJUST 10 1 -2");
    expect_level(c, 7, 0, "LEVEL.SET 11 1 7");
    redisFree(c);
    cr_assert_eq(srv_stop(&s), 0);

    char out[256];
    snprintf(out, sizeof out, "%s/feed.jsonl", s.dir);
    const char *all[] = {FEED_BIN, "--dir", s.data, NULL};
    cr_assert_eq(run(all, out), 0);
    lines_t l;
    read_lines(out, &l);
    cr_assert_geq(l.n, 3 + LEVELS);
    yajl_val r = find_position(&l, adj);
    cr_assert_not_null(r, "the adjust's record (position = its revision)");
    cr_assert_str_eq(json_str(json_get(r, "kind")), "level.adjust");
    yajl_val ch = json_get(r, "changes");
    cr_assert_eq(YAJL_GET_ARRAY(ch)->len, 1);
    yajl_val c0 = YAJL_GET_ARRAY(ch)->values[0];
    cr_assert_str_eq(json_str(json_get(c0, "item")), "10");
    cr_assert_str_eq(json_str(json_get(c0, "location")), "1");
    cr_assert_eq(qty(c0, "deltas", "available"), -2);
    cr_assert_eq(qty(c0, "after", "available"), 3);
    cr_assert_eq(json_u64(json_get(c0, "revision")), adj);
    r = find_position(&l, set);
    cr_assert_not_null(r);
    cr_assert_str_eq(json_str(json_get(r, "kind")), "level.set");
    for (size_t i = 1; i < l.n; i++)
        cr_assert_gt(json_u64(json_get(l.rec[i], "position")),
                     json_u64(json_get(l.rec[i - 1], "position")), "in journal order");
    free_lines(&l);

    /* --item keeps that item's changes; --from starts after a position */
    const char *item[] = {FEED_BIN, "--dir", s.data, "--item", "11", NULL};
    cr_assert_eq(run(item, out), 0);
    read_lines(out, &l);
    cr_assert_eq(l.n, 1, "one change of item 11");
    free_lines(&l);
    char from[24];
    snprintf(from, sizeof from, "%llu", (unsigned long long)set);
    const char *after[] = {FEED_BIN, "--dir", s.data, "--from", from, "--count", "1", NULL};
    cr_assert_eq(run(after, out), 0);
    read_lines(out, &l);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(json_u64(json_get(l.rec[0], "position")), adj);
    free_lines(&l);

    /* refusals: usage (2), a position that is no record's (1) */
    const char *usage[][6] = {{FEED_BIN, NULL},
                              {FEED_BIN, "--dir", NULL},
                              {FEED_BIN, "--dir", s.data, "--bogus", "1", NULL},
                              {FEED_BIN, "--dir", s.data, "--follow", NULL},
                              {FEED_BIN, "--host", "127.0.0.1", NULL}};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++)
        cr_assert_eq(run(usage[i], NULL), 2, "usage case %zu", i);
    snprintf(from, sizeof from, "%llu", (unsigned long long)adj + 1);
    const char *odd[] = {FEED_BIN, "--dir", s.data, "--from", from, NULL};
    cr_assert_eq(run(odd, NULL), 1);
    srv_cleanup(&s);
}
