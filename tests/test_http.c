/*
 * test_http.c — integration suite (starts build/invcored) for the HTTP
 * face's common part (core/server/http.c, http_route.c, http_common.c),
 * driven with libcurl through tests/test_http_client.h and with raw
 * sockets: /healthz and /metrics, 404, 405 with Allow, HEAD and OPTIONS,
 * token authentication (each header, Authorization bare or Bearer), the
 * error shape of each dialect's path for every refusal made before a
 * handler runs, the limits (414, 431, 413), malformed requests (400, 501),
 * chunked bodies (411), slow headers closed by the request timeout while
 * others are served, pipelining, keep-alive over 10k requests on one
 * connection, and INFO's # HTTP section over RESP. Suite http_route (no
 * server): the pattern rule every dialect's table relies on.
 *
 * Every request also seeds fuzz/fuzz_http when INVCORE_HTTP_CORPUS is set
 * (test_http_client.h; the raw exchanges through hc_corpus_save_stream).
 *
 * The suite's server: --requirepass, a 2 KiB body limit and a 1 s request
 * timeout, so each limit is reachable with small requests.
 */
#include <curl/curl.h>

#include "server/http_route.h"
#include "test_http_client.h"
#include "test_server_harness.h"

#define TOKEN "s3cret-token"
#define BODY_LIMIT 2048
#define KEEPALIVE_REQUESTS 10000
#define RAW_REPLY_MAX 8192
#define SLOW_CLOSE_WAIT_MS 8000 /* the 1 s request timeout, swept each second, well within */

static int g_http_port;
static const char *g_extra_header; /* sent by http_do when set */

static void suite_init(void)
{
    const char *extra[] = {"--requirepass",
                           TOKEN,
                           "--http-max-body-bytes",
                           "2048",
                           "--http-request-timeout",
                           "1",
                           NULL};
    srv_suite_start(extra);
    g_http_port = srv_http_port(&S);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void suite_fini(void)
{
    srv_suite_stop();
}

TestSuite(http, .init = suite_init, .fini = suite_fini, .timeout = 120);

/* One request on h (reused: keep-alive) through hc_do; token_header NULL:
 * none sent. Asserts the exchange happened (a status came back). */
static long http_do(CURL *h, const char *method, const char *path, const char *body,
                    const char *token_header, hc_resp *r)
{
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n = 0;
    if (token_header != NULL)
        headers[n++] = token_header;
    if (g_extra_header != NULL)
        headers[n++] = g_extra_header;
    hc_free(r);
    long st = hc_do(h, g_http_port, method, path, headers, body, r);
    cr_assert_neq(st, -1, "%s %.80s: no response", method, path);
    return st;
}

static hc_resp R; /* large (HC_BODY_MAX): one per test process */

static long get(const char *path, hc_resp *r)
{
    CURL *h = curl_easy_init();
    long st = http_do(h, "GET", path, NULL, "Access-Token: " TOKEN, r);
    curl_easy_cleanup(h);
    return st;
}

static bool head_has(const hc_resp *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

Test(http, healthz_answers_ok_without_a_token)
{
    CURL *h = curl_easy_init();
    cr_assert_eq(http_do(h, "GET", "/healthz", NULL, NULL, &R), 200);
    cr_assert_str_eq(R.body, "{\"status\":\"ok\"}");
    cr_assert(head_has(&R, "Content-Type: application/json"));
    curl_easy_cleanup(h);
}

/* The value after key in text (a counter line), -1 when absent. */
static long long counter_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? atoll(p + strlen(key)) : -1;
}

Test(http, metrics_count_requests_and_connections_per_dialect_and_show_the_journal)
{
    hc_resp *before = calloc(1, sizeof *before);
    cr_assert_eq(get("/metrics", before), 200);
    cr_assert(head_has(before, "Content-Type: text/plain; version=0.0.4"));
    cr_assert_eq(get("/healthz", &R), 200);
    cr_assert_eq(get("/metrics", &R), 200);
    const char *key = "invcore_http_requests_total{dialect=\"common\"} ";
    /* healthz and the first metrics scrape itself */
    cr_assert_eq(counter_after(R.body, key), counter_after(before->body, key) + 2);
    /* each get() a new connection (the keys' "\n": not the # TYPE lines) */
    cr_assert_eq(counter_after(R.body, "\ninvcore_http_connections_total "),
                 counter_after(before->body, "\ninvcore_http_connections_total ") + 2);
    cr_assert_geq(counter_after(R.body, "\ninvcore_http_connections "), 1); /* this one */
    cr_assert_not_null(strstr(R.body, "invcore_http_request_duration_seconds_bucket{dialect=\""
                                      "common\",le=\"+Inf\"}"));
    cr_assert_not_null(strstr(R.body, "invcore_journal_durable_position{tenant=\"default\"} "));
    cr_assert_not_null(strstr(R.body, "invcore_levels{tenant=\"default\"} "));
    hc_free(before);
    free(before);
}

Test(http, unknown_paths_are_404_and_wrong_methods_405_with_allow)
{
    cr_assert_eq(get("/no/such/path", &R), 404);
    cr_assert_str_eq(R.body, "{\"errors\":\"Not Found\"}");
    CURL *h = curl_easy_init();
    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "TRACE"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        cr_assert_eq(http_do(h, methods[i], "/metrics", NULL, "Access-Token: " TOKEN, &R), 405,
                     "%s", methods[i]);
        cr_assert_str_eq(R.allow, "GET, HEAD, OPTIONS", "%s", R.head);
    }
    curl_easy_cleanup(h);
}

Test(http, head_is_get_without_a_body_and_options_lists_allow)
{
    CURL *h = curl_easy_init();
    cr_assert_eq(http_do(h, "HEAD", "/healthz", NULL, NULL, &R), 200);
    cr_assert_eq(R.len, 0);
    cr_assert(head_has(&R, "Content-Length: 15"), "%s", R.head);
    cr_assert_eq(http_do(h, "OPTIONS", "/metrics", NULL, "Access-Token: " TOKEN, &R), 204);
    cr_assert_str_eq(R.allow, "GET, HEAD, OPTIONS", "%s", R.head);
    cr_assert_eq(http_do(h, "OPTIONS", "/nope", NULL, "Access-Token: " TOKEN, &R), 404);
    curl_easy_cleanup(h);
}

Test(http, a_missing_or_wrong_token_is_401_and_each_token_header_is_accepted)
{
    CURL *h = curl_easy_init();
    cr_assert_eq(http_do(h, "GET", "/metrics", NULL, NULL, &R), 401);
    cr_assert_eq(http_do(h, "GET", "/metrics", NULL, "Access-Token: wrong", &R), 401);
    cr_assert_eq(http_do(h, "GET", "/metrics", NULL, "Access-Token: " TOKEN "x", &R), 401);
    cr_assert_eq(http_do(h, "GET", "/nope", NULL, "Authorization: Basic " TOKEN, &R), 401);
    cr_assert_eq(http_do(h, "GET", "/metrics", NULL, "Access-Token: " TOKEN, &R), 200);
    cr_assert_eq(http_do(h, "GET", "/metrics", NULL, "X-Shopify-Access-Token: " TOKEN, &R), 200);
    cr_assert_eq(http_do(h, "GET", "/metrics", NULL, "Authorization: Bearer " TOKEN, &R), 200);
    curl_easy_cleanup(h);
}

Test(http, authorization_takes_the_bare_token_as_wix_sends_it_or_bearer)
{
    /* a new connection each: one authenticated request must not carry
     * the next (authentication is checked on every request anyway) */
    const struct {
        const char *header;
        long want;
    } cases[] = {
        {"Authorization: " TOKEN, 200},
        {"Authorization: Bearer " TOKEN, 200},
        {"Authorization: bearer " TOKEN, 200}, /* the scheme is case-insensitive */
        {"Authorization: wrong", 401},
        {"Authorization: Bearer wrong", 401},
        {"Authorization: Bearer", 401},
        {"Authorization: Bearer  " TOKEN, 401}, /* two spaces: not the token */
        {"Authorization: " TOKEN " ", 200}, /* the parser trims trailing blanks */
        {"Authorization: x" TOKEN, 401},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CURL *h = curl_easy_init();
        cr_assert_eq(http_do(h, "GET", "/metrics", NULL, cases[i].header, &R), cases[i].want,
                     "%s: %ld", cases[i].header, R.status);
        curl_easy_cleanup(h);
    }
}

Test(http, a_url_over_the_limit_is_414)
{
    static char path[9000];
    memset(path, 'a', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    long st = get(path, &R);
    cr_assert_eq(st, 414, "%ld %s", st, R.body);
}

/* "X-Big: bbb..." of n bytes in all, in buf */
static const char *big_header(char *buf, size_t n)
{
    snprintf(buf, n, "X-Big: ");
    memset(buf + 7, 'b', n - 8);
    buf[n - 1] = '\0';
    return buf;
}

Test(http, headers_over_the_limit_are_431)
{
    static char big[20000];
    CURL *h = curl_easy_init();
    cr_assert_eq(http_do(h, "GET", "/healthz", NULL, big_header(big, sizeof big), &R), 431);
    curl_easy_cleanup(h);
}

Test(http, the_tighter_header_limit_holds_until_a_request_authenticates)
{
    static char big[10000]; /* over the 4 KiB before auth, within 16 KiB */
    CURL *h = curl_easy_init();
    big_header(big, sizeof big);
    cr_assert_eq(http_do(h, "GET", "/healthz", NULL, big, &R), 431); /* new connection */
    cr_assert_eq(http_do(h, "GET", "/metrics", NULL, "Access-Token: " TOKEN, &R), 200);
    g_extra_header = big;
    /* the same connection, now authenticated: the big header passes */
    long st = http_do(h, "GET", "/metrics", NULL, "Access-Token: " TOKEN, &R);
    g_extra_header = NULL;
    cr_assert_eq(st, 200);
    cr_assert_eq(R.new_connections, 0, "the 200 came on the authenticated connection");
    curl_easy_cleanup(h);
}

Test(http, a_body_over_the_limit_is_413)
{
    static char body[BODY_LIMIT + 2];
    memset(body, ' ', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    CURL *h = curl_easy_init();
    cr_assert_eq(http_do(h, "POST", "/healthz", body, "Access-Token: " TOKEN, &R), 413);
    cr_assert(head_has(&R, "Connection: close"), "%s", R.head);
    body[BODY_LIMIT] = '\0'; /* at the limit: read, then routed (405) */
    cr_assert_eq(http_do(h, "POST", "/healthz", body, "Access-Token: " TOKEN, &R), 405);
    curl_easy_cleanup(h);
}

/* A client still sending a body over the limit when the 413 is written
 * must be able to finish and read it: the server shuts its write side and
 * drops the rest of the body (lingering close) instead of closing with
 * unread input, which the kernel answers with a reset that fails the
 * client's next send and can destroy the response. */
#define LINGER_BODY_BYTES (4u << 20) /* far over BODY_LIMIT and the socket buffers */
#define LINGER_CHUNK_BYTES (64u << 10)

Test(http, a_client_still_sending_an_oversized_body_reads_its_413)
{
    char head[256], reply[RAW_REPLY_MAX];
    static char chunk[LINGER_CHUNK_BYTES];
    memset(chunk, ' ', sizeof chunk);
    int n = snprintf(head, sizeof head,
                     "POST /healthz HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN
                     "\r\nContent-Length: %u\r\n\r\n",
                     LINGER_BODY_BYTES);
    srv_t h = S;
    h.port = g_http_port;
    int fd = raw_connect(&h);
    size_t sent = 0;
    bool send_failed = send(fd, head, (size_t)n, MSG_NOSIGNAL) != n;
    while (!send_failed && sent < LINGER_BODY_BYTES) {
        ssize_t w = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        send_failed = w <= 0;
        sent += w > 0 ? (size_t)w : 0;
    }
    size_t got = raw_recv(fd, reply, sizeof reply - 1, sizeof reply - 1, 5000);
    reply[got] = '\0';
    close(fd);
    cr_assert_not(send_failed, "the body's send failed after %zu bytes (reset by the server)",
                  sent);
    cr_assert(strncmp(reply, "HTTP/1.1 413 ", 13) == 0, "%s", reply);
    /* the server is still serving */
    CURL *c = curl_easy_init();
    cr_assert_eq(http_do(c, "GET", "/healthz", NULL, NULL, &R), 200);
    curl_easy_cleanup(c);
}

/* Sends raw bytes on a new connection; returns what came back before the
 * server closed (or the timeout). Seeds the fuzzer with the bytes. */
static size_t raw_exchange(const char *req, size_t n, char *buf, size_t cap)
{
    srv_t h = S;
    h.port = g_http_port;
    hc_corpus_save_stream(req, n, TOKEN);
    int fd = raw_connect(&h);
    raw_send(fd, req, n);
    size_t got = raw_recv(fd, buf, cap - 1, cap - 1, 3000);
    buf[got] = '\0';
    close(fd);
    return got;
}

Test(http, malformed_requests_are_400_and_unknown_method_tokens_501)
{
    char buf[RAW_REPLY_MAX];
    const char *bad[] = {"GET /healthz HTTP/9.z\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                         "GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n",
                         "GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        raw_exchange(bad[i], strlen(bad[i]), buf, sizeof buf);
        cr_assert(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s -> %s", bad[i], buf);
        cr_assert_not_null(strstr(buf, "Connection: close"));
    }
    const char *unknown = "FROB /healthz HTTP/1.1\r\n\r\n";
    raw_exchange(unknown, strlen(unknown), buf, sizeof buf);
    cr_assert(strncmp(buf, "HTTP/1.1 501 ", 13) == 0, "%s", buf);
}

Test(http, chunked_request_bodies_are_refused_with_411)
{
    char buf[RAW_REPLY_MAX];
    const char *req = "POST /healthz HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN
                      "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    raw_exchange(req, strlen(req), buf, sizeof buf);
    cr_assert(strncmp(buf, "HTTP/1.1 411 ", 13) == 0, "%s", buf);
}

/* ---- the error shape of each dialect's path --------------------------------- */

typedef enum { SHAPE_ERROR, SHAPE_ERRORS, SHAPE_WIX } shape;

static const struct {
    const char *name, *base; /* a path of the dialect, without a route */
    shape want;
} g_dialect_paths[] = {
    {"shoplazza", "/openapi/2026-01/no_such_resource", SHAPE_ERROR},
    {"shoplazza 2022-01", "/openapi/2022-01/no_such_resource", SHAPE_ERROR},
    {"shopify", "/admin/api/2021-04/no_such_resource.json", SHAPE_ERRORS},
    {"connector", "/api/no_such_resource", SHAPE_ERROR},
    {"wix", "/stores/v3/no-such-resource", SHAPE_WIX},
    {"common", "/no_such_resource", SHAPE_ERRORS},
    {"common (not /api/)", "/apiary", SHAPE_ERRORS},
};

/* Whether body (JSON) is exactly the shape: {"error":s}, {"errors":s} or
 * {"message":s,"details":{}}, s a non-empty string. */
static bool shape_is(const char *body, shape want)
{
    yajl_val v = yajl_tree_parse(body, NULL, 0);
    bool ok = v != NULL && YAJL_IS_OBJECT(v);
    if (ok && want == SHAPE_WIX) {
        yajl_val m = hc_get(v, "message"), d = hc_get(v, "details");
        ok = v->u.object.len == 2 && YAJL_IS_STRING(m) && m->u.string[0] != '\0' &&
             YAJL_IS_OBJECT(d) && d->u.object.len == 0;
    } else if (ok) {
        yajl_val m = hc_get(v, want == SHAPE_ERROR ? "error" : "errors");
        ok = v->u.object.len == 1 && YAJL_IS_STRING(m) && m->u.string[0] != '\0';
    }
    if (v != NULL)
        yajl_tree_free(v);
    return ok;
}

/* A raw exchange's status and its body (after the blank line). */
static int raw_status_body(const char *req, char *buf, size_t cap, const char **body)
{
    raw_exchange(req, strlen(req), buf, cap);
    const char *end = strstr(buf, "\r\n\r\n");
    *body = end ? end + 4 : "";
    return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
}

Test(http, refusals_before_a_handler_take_the_error_shape_of_the_paths_dialect)
{
    static char body[BODY_LIMIT + 2], longpath[9100], big[10000], req[4096], buf[RAW_REPLY_MAX];
    memset(body, ' ', sizeof body - 1);
    big_header(big, sizeof big);
    for (size_t d = 0; d < sizeof g_dialect_paths / sizeof g_dialect_paths[0]; d++) {
        const char *name = g_dialect_paths[d].name, *base = g_dialect_paths[d].base;
        shape want = g_dialect_paths[d].want;
        CURL *h = curl_easy_init();
        cr_assert_eq(http_do(h, "GET", base, NULL, NULL, &R), 401, "%s", name);
        cr_assert(shape_is(R.body, want), "%s 401: %s", name, R.body);
        cr_assert_eq(http_do(h, "GET", base, NULL, "Access-Token: " TOKEN, &R), 404, "%s", name);
        cr_assert(shape_is(R.body, want), "%s 404: %s", name, R.body);
        cr_assert_eq(http_do(h, "POST", base, body, "Access-Token: " TOKEN, &R), 413, "%s", name);
        cr_assert(shape_is(R.body, want), "%s 413: %s", name, R.body);
        snprintf(longpath, sizeof longpath, "%s/%09000d", base, 0);
        cr_assert_eq(http_do(h, "GET", longpath, NULL, NULL, &R), 414, "%s", name);
        cr_assert(shape_is(R.body, want), "%s 414: %s", name, R.body);
        cr_assert_eq(http_do(h, "GET", base, NULL, big, &R), 431, "%s", name);
        cr_assert(shape_is(R.body, want), "%s 431: %s", name, R.body);
        curl_easy_cleanup(h);

        const char *rbody;
        snprintf(req, sizeof req,
                 "POST %s HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN
                 "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                 base);
        cr_assert_eq(raw_status_body(req, buf, sizeof buf, &rbody), 411, "%s: %s", name, buf);
        cr_assert(shape_is(rbody, want), "%s 411: %s", name, rbody);
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nNo colon here\r\n\r\n", base);
        cr_assert_eq(raw_status_body(req, buf, sizeof buf, &rbody), 400, "%s: %s", name, buf);
        cr_assert(shape_is(rbody, want), "%s 400: %s", name, rbody);
    }
}

Test(http, a_wrong_method_on_a_dialect_route_is_405_in_its_shape)
{
    const struct {
        const char *method, *path;
        shape want;
        long status;
    } cases[] = {
        {"DELETE", "/admin/api/2021-04/inventory_items.json", SHAPE_ERRORS, 405},
        {"PATCH", "/openapi/2026-01/inventory_levels/set", SHAPE_ERROR, 405},
        {"PUT", "/metrics", SHAPE_ERRORS, 405},
        {"PATCH", "/api/inventoryitems", SHAPE_ERROR, 405},
        {"PUT", "/stores/v3/inventory-items/decrement", SHAPE_WIX, 405},
    };
    CURL *h = curl_easy_init();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long want = cases[i].status;
        cr_assert_eq(http_do(h, cases[i].method, cases[i].path, "{}", "Access-Token: " TOKEN, &R),
                     want, "%s %s", cases[i].method, cases[i].path);
        cr_assert(R.allow[0] != '\0', "%s", R.head);
        cr_assert(shape_is(R.body, cases[i].want), "%s: %s", cases[i].path, R.body);
    }
    curl_easy_cleanup(h);
}

Test(http, a_body_with_an_escaped_nul_is_400_and_writes_nothing)
{
    const struct {
        const char *path, *body;
    } cases[] = {
        {"/admin/api/2021-04/inventory_levels/set.json",
         "{\"location_id\":1,\"inventory_item_id\":1,\"available\":5,\"x\":\"a\\u0000b\"}"},
        {"/openapi/2026-01/inventory_levels/set",
         "{\"inventory_item_id\":\"1\",\"location_id\":\"1\",\"stock\":5,"
         "\"note\":\"\\u0000\"}"},
    };
    expect_status(C, "OK", "AUTH %s", TOKEN);
    expect_status(C, "OK", "ITEM.SET 1 sku A");
    expect_status(C, "OK", "LOC.SET 1 name Ottawa");
    CURL *h = curl_easy_init();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(http_do(h, "POST", cases[i].path, cases[i].body, "Access-Token: " TOKEN, &R),
                     400, "%s: %s", cases[i].path, R.body);
        cr_assert_not_null(strstr(R.body, "NUL"), "%s", R.body);
    }
    curl_easy_cleanup(h);
    expect_error(C, "NOTFOUND", "LEVEL.GET 1 1"); /* neither body was applied */
}

/* ---- connections: pipelining, slow clients, keep-alive ------------------------ */

Test(http, pipelined_requests_are_answered_in_order)
{
    char buf[RAW_REPLY_MAX];
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN "\r\n\r\n"
                      "POST /healthz HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN
                      "\r\nContent-Length: 2\r\n\r\n{}"
                      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_exchange(req, strlen(req), buf, sizeof buf);
    char *a = strstr(buf, "HTTP/1.1 200 ");
    char *b = strstr(buf, "HTTP/1.1 404 ");
    char *c = strstr(buf, "HTTP/1.1 405 ");
    char *d = a ? strstr(a + 1, "HTTP/1.1 200 ") : NULL;
    cr_assert(a == buf && b && c && d && a < b && b < c && c < d, "%s", buf);
}

/* A raw connection to the HTTP port. */
static int http_connect(void)
{
    srv_t h = S;
    h.port = g_http_port;
    return raw_connect(&h);
}

Test(http, slow_headers_are_closed_by_the_request_timeout_while_others_are_served)
{
    int fd = http_connect();
    const char *part = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    raw_send(fd, part, strlen(part));
    long long start = srv_now_ms();
    bool closed = false;
    long served = 0;
    CURL *other = curl_easy_init();
    /* one more header byte every 200 ms: a keep-alive idle timer alone
     * would never fire; the request timeout (1 s, swept each second) must;
     * meanwhile another client is answered */
    while (!closed && srv_now_ms() - start < SLOW_CLOSE_WAIT_MS) {
        raw_send(fd, "X", 1);
        cr_assert_eq(http_do(other, "GET", "/healthz", NULL, NULL, &R), 200);
        served++;
        closed = raw_closed(fd, 200);
    }
    cr_assert(closed, "still open after %d ms of trickled headers", SLOW_CLOSE_WAIT_MS);
    cr_assert_geq(served, 1);
    cr_assert_eq(http_do(other, "GET", "/healthz", NULL, NULL, &R), 200);
    curl_easy_cleanup(other);
    close(fd);
}

Test(http, headers_dribbled_past_the_limit_are_431_and_closed)
{
    int fd = http_connect();
    const char *line = "GET /api/x HTTP/1.1\r\nHost: x\r\n";
    char chunk[256], buf[RAW_REPLY_MAX];
    memset(chunk, 'h', sizeof chunk);
    raw_send(fd, line, strlen(line));
    raw_send(fd, "X-Dribble: ", 11);
    /* 256 bytes at a time, no end of headers: the 4 KiB limit before
     * authentication is passed within 17 pieces (well inside the 1 s
     * request timeout: each piece waits 5 ms for an answer) */
    size_t got = 0;
    for (int i = 0; i < 64 && got == 0; i++) {
        raw_send(fd, chunk, sizeof chunk);
        got = raw_recv(fd, buf, sizeof buf - 1, 1, 5);
    }
    got += raw_recv(fd, buf + got, sizeof buf - 1 - got, sizeof buf - 1 - got, 2000);
    buf[got] = '\0';
    cr_assert(strncmp(buf, "HTTP/1.1 431 ", 13) == 0, "%s", buf);
    cr_assert_not_null(strstr(buf, "{\"error\":"), "the connector's shape: %s", buf);
    cr_assert(raw_closed(fd, 3000));
    close(fd);
    cr_assert_eq(get("/metrics", &R), 200); /* the server serves on */
}

Test(http, keep_alive_serves_10k_requests_on_one_connection)
{
    CURL *h = curl_easy_init();
    for (int i = 0; i < KEEPALIVE_REQUESTS; i++) {
        long st = hc_do(h, g_http_port, "GET", "/healthz", NULL, NULL, &R);
        if (st != 200 || R.new_connections != (i == 0 ? 1 : 0))
            cr_assert_fail("request %d: status %ld, %ld new connections", i, st, R.new_connections);
        hc_free(&R);
    }
    curl_easy_cleanup(h);
}

Test(http, expect_100_continue_is_answered_before_the_body)
{
    int fd = http_connect();
    const char *head = "POST /healthz HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN
                       "\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
    char buf[4096];
    raw_send(fd, head, strlen(head));
    size_t n = raw_recv(fd, buf, sizeof buf - 1, strlen(cont), 5000);
    buf[n] = '\0';
    cr_assert_str_eq(buf, cont);
    raw_send(fd, "{}", 2);
    n = raw_recv(fd, buf, sizeof buf - 1, 13, 5000);
    buf[n] = '\0';
    cr_assert(strncmp(buf, "HTTP/1.1 405 ", 13) == 0, "%s", buf);
    close(fd);
}

Test(http, connection_close_is_honoured)
{
    char buf[RAW_REPLY_MAX];
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t n = raw_exchange(req, strlen(req), buf, sizeof buf);
    cr_assert_gt(n, 0);
    cr_assert_not_null(strstr(buf, "Connection: close"));
}

/* ---- INFO # HTTP (RESP) ----------------------------------------------------------- */

/* INFO http's text (freed by the caller). */
static char *info_http(void)
{
    redisReply *r = cmd(C, "INFO http");
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "type %d", r->type);
    char *text = strdup(r->str);
    freeReplyObject(r);
    cr_assert_not_null(text);
    return text;
}

Test(http, info_has_an_http_section_from_the_metrics_counters)
{
    expect_status(C, "OK", "AUTH %s", TOKEN);
    char *before = info_http();
    char want_port[32];
    snprintf(want_port, sizeof want_port, "http_port:%d\r\n", g_http_port);
    cr_assert_not_null(strstr(before, "# HTTP\r\n"), "%s", before);
    cr_assert_not_null(strstr(before, want_port), "%s", before);
    CURL *h = curl_easy_init(), *refused = curl_easy_init();
    /* a refusal closes its connection: on a handle of its own */
    cr_assert_eq(http_do(refused, "GET", "/metrics", NULL, NULL, &R), 401);
    curl_easy_cleanup(refused);
    cr_assert_eq(http_do(h, "GET", "/healthz", NULL, NULL, &R), 200);
    cr_assert_eq(http_do(h, "GET", "/admin/api/2021-04/locations.json", NULL,
                         "X-Shopify-Access-Token: " TOKEN, &R),
                 200, "%s", R.body);
    cr_assert_eq(http_do(h, "GET", "/nope", NULL, "Access-Token: " TOKEN, &R), 404);
    char *after = info_http(); /* h still open: one connection at least */
    cr_assert_geq(counter_after(after, "http_connections:"), 1, "%s", after);
    cr_assert_eq(counter_after(after, "http_connections_received:"),
                 counter_after(before, "http_connections_received:") + 2, "%s", after);
    cr_assert_eq(counter_after(after, "http_requests:"),
                 counter_after(before, "http_requests:") + 4, "%s", after);
    cr_assert_eq(counter_after(after, "http_errors_4xx:"),
                 counter_after(before, "http_errors_4xx:") + 2, "%s", after);
    cr_assert_eq(counter_after(after, "http_dialect_common:requests="),
                 counter_after(before, "http_dialect_common:requests=") + 1);
    cr_assert_eq(counter_after(after, "http_dialect_shopify:requests="),
                 counter_after(before, "http_dialect_shopify:requests=") + 1);
    cr_assert_eq(counter_after(after, "http_dialect_none:requests="),
                 counter_after(before, "http_dialect_none:requests=") + 2);
    cr_assert_not_null(strstr(after, "http_dialect_connector:requests="));
    cr_assert_not_null(strstr(after, "http_dialect_wix:requests="));
    /* /metrics shows the same counters */
    cr_assert_eq(get("/metrics", &R), 200);
    cr_assert_eq(counter_after(R.body, "invcore_http_requests_total{dialect=\"shopify\"} "),
                 counter_after(after, "http_dialect_shopify:requests="));
    curl_easy_cleanup(h);
    free(before);
    free(after);
}

/* ---- the pattern rule (no server) ---------------------------------------- */

static bool match(const char *pattern, const char *path, http_str *params, size_t *n)
{
    return http_route_pattern_match(pattern, (http_str){path, strlen(path)}, params, n);
}

static bool param_is(http_str p, const char *want)
{
    return p.len == strlen(want) && memcmp(p.p, want, p.len) == 0;
}

Test(http_route, literal_segments_match_exactly)
{
    http_str params[HTTP_PARAMS_MAX];
    size_t n = 9;
    cr_assert(match("/healthz", "/healthz", params, &n) && n == 0);
    cr_assert(!match("/healthz", "/healthz/", params, &n));
    cr_assert(!match("/healthz", "/health", params, &n));
    cr_assert(!match("/healthz", "/healthzz", params, &n));
    cr_assert(!match("/healthz", "", params, &n));
    cr_assert(!match("/a/b", "/a", params, &n));
}

Test(http_route, params_capture_one_segment_before_a_literal_suffix)
{
    const char *pat = "/admin/api/{version}/inventory_items/{id}.json";
    http_str params[HTTP_PARAMS_MAX];
    size_t n = 0;
    cr_assert(match(pat, "/admin/api/2024-01/inventory_items/808950810.json", params, &n));
    cr_assert(n == 2 && param_is(params[0], "2024-01") && param_is(params[1], "808950810"));
    cr_assert(!match(pat, "/admin/api/2021-04/inventory_items/.json", params, &n));
    cr_assert(!match(pat, "/admin/api/2021-04/inventory_items/808950810", params, &n));
    cr_assert(!match(pat, "/admin/api/2021-04/inventory_items/1/2.json", params, &n));
    cr_assert(!match(pat, "/admin/api//inventory_items/1.json", params, &n));
    cr_assert(match("/openapi/2026-01/products/{id}/inventory",
                    "/openapi/2026-01/products/7/inventory", params, &n));
    cr_assert(n == 1 && param_is(params[0], "7"));
}

Test(http_route, the_common_routes_are_found_and_methods_listed)
{
    const http_route *r;
    http_str params[HTTP_PARAMS_MAX];
    size_t n;
    char allow[HTTP_ALLOW_BYTES_MAX];
    http_str p = {"/metrics", 8};
    cr_assert_eq(http_route_find(HTTP_GET, p, &r, params, &n, allow, sizeof allow),
                 HTTP_MATCH_FOUND);
    cr_assert_eq(r->dialect, HTTP_DIALECT_COMMON);
    cr_assert_eq(http_route_find(HTTP_HEAD, p, &r, params, &n, allow, sizeof allow),
                 HTTP_MATCH_FOUND);
    cr_assert_eq(http_route_find(HTTP_DELETE, p, &r, params, &n, allow, sizeof allow),
                 HTTP_MATCH_NO_METHOD);
    cr_assert_str_eq(allow, "GET, HEAD, OPTIONS");
    p = (http_str){"/nope", 5};
    cr_assert_eq(http_route_find(HTTP_GET, p, &r, params, &n, allow, sizeof allow),
                 HTTP_MATCH_NO_PATH);
}

/* ---- the compiled router against the pattern rule ------------------------ */

/* The tables the router serves, in its order (http_route.c's g_tables). */
#define ALL_TABLES 5u
static const http_route *table_at(size_t t, size_t *n)
{
    switch (t) {
    case 0:
        *n = http_common_routes_n;
        return http_common_routes;
    case 1:
        *n = http_shoplazza_routes_n;
        return http_shoplazza_routes;
    case 2:
        *n = http_shopify_routes_n;
        return http_shopify_routes;
    case 3:
        *n = http_connector_routes_n;
        return http_connector_routes;
    default:
        *n = http_wix_routes_n;
        return http_wix_routes;
    }
}

/* The reference: every pattern of every table in order through
 * http_route_pattern_match, the first route of method want. */
static http_match reference_find(http_method want, http_str path, const http_route **route,
                                 http_str *params, size_t *n_params)
{
    bool any = false;
    *route = NULL;
    for (size_t t = 0; t < ALL_TABLES; t++) {
        size_t nt;
        const http_route *table = table_at(t, &nt);
        for (size_t i = 0; i < nt; i++) {
            const http_route *r = &table[i];
            http_str tmp[HTTP_PARAMS_MAX];
            size_t n = 0;
            if (!http_route_pattern_match(r->pattern, path, tmp, &n))
                continue;
            any = true;
            if (r->method == want && *route == NULL) {
                *route = r;
                memcpy(params, tmp, n * sizeof *tmp);
                *n_params = n;
            }
        }
    }
    return *route ? HTTP_MATCH_FOUND : any ? HTTP_MATCH_NO_METHOD : HTTP_MATCH_NO_PATH;
}

/* A concrete path of a pattern: each {param} as "7" (its suffix kept), and
 * variants one edit away (a trailing '/', a segment more, one less). */
static size_t paths_of(const char *pattern, char out[4][256])
{
    size_t o = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '{') {
            out[0][o++] = '7';
            p = strchr(p, '}');
            cr_assert(p != NULL);
            continue;
        }
        out[0][o++] = *p;
        cr_assert(o < 200);
    }
    out[0][o] = '\0';
    memcpy(out[1], out[0], o);
    memcpy(out[1] + o, "/", 2);
    memcpy(out[2], out[0], o);
    memcpy(out[2] + o, "/x", 3);
    memcpy(out[3], out[0], o + 1);
    char *slash = strrchr(out[3], '/');
    if (slash != NULL)
        *slash = '\0';
    return 4;
}

Test(http_route, the_compiled_router_finds_what_every_pattern_matches)
{
    static const http_method methods[] = {HTTP_GET,   HTTP_HEAD,   HTTP_POST,   HTTP_PUT,
                                          HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS};
    size_t checked = 0;
    for (size_t t = 0; t < ALL_TABLES; t++) {
        size_t nt;
        const http_route *table = table_at(t, &nt);
        for (size_t i = 0; i < nt; i++) {
            char paths[4][256];
            size_t np = paths_of(table[i].pattern, paths);
            for (size_t k = 0; k < np; k++)
                for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
                    http_str path = {paths[k], strlen(paths[k])};
                    http_method want = methods[m] == HTTP_HEAD ? HTTP_GET : methods[m];
                    const http_route *r1, *r2, *r3;
                    http_str p1[HTTP_PARAMS_MAX], p2[HTTP_PARAMS_MAX], p3[HTTP_PARAMS_MAX];
                    size_t n1 = 0, n2 = 0, n3 = 0;
                    char allow[HTTP_ALLOW_BYTES_MAX];
                    http_match ref = reference_find(want, path, &r1, p1, &n1);
                    http_match got = http_route_lookup(methods[m], path, &r2, p2, &n2);
                    http_match full =
                        http_route_find(methods[m], path, &r3, p3, &n3, allow, sizeof allow);
                    cr_assert_eq(got, ref, "%s (method %d)", paths[k], (int)methods[m]);
                    cr_assert_eq(full, ref, "%s (method %d)", paths[k], (int)methods[m]);
                    cr_assert(r2 == r1 && r3 == r1, "%s: the same route", paths[k]);
                    if (ref != HTTP_MATCH_FOUND)
                        continue;
                    cr_assert(n2 == n1 && n3 == n1);
                    for (size_t j = 0; j < n1; j++)
                        cr_assert(p2[j].p == p1[j].p && p2[j].len == p1[j].len &&
                                  p3[j].p == p1[j].p && p3[j].len == p1[j].len);
                    checked++;
                }
        }
    }
    cr_assert_gt(checked, 40, "every table's routes were found (%zu)", checked);
}

Test(http_route, paths_outside_every_table_are_not_found)
{
    static const char *const paths[] = {
        "",           "x",
        "/",          "//",
        "/openapi",   "/openapi/",
        "/admin/api", "/nope/healthz",
        "/healthz/x", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p",
        "/metrics?x", "/stores/v1",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const http_route *r1, *r2;
        http_str p1[HTTP_PARAMS_MAX], p2[HTTP_PARAMS_MAX];
        size_t n1 = 0, n2 = 0;
        http_str path = {paths[i], strlen(paths[i])};
        http_match ref = reference_find(HTTP_GET, path, &r1, p1, &n1);
        cr_assert_eq(http_route_lookup(HTTP_GET, path, &r2, p2, &n2), ref, "%s", paths[i]);
        cr_assert_eq(ref, HTTP_MATCH_NO_PATH, "%s", paths[i]);
    }
}
