/*
 * test_http.c — integration suite (starts build/invcored) for the HTTP
 * face's common part (core/server/http.c, http_route.c, http_common.c),
 * driven with libcurl and raw sockets: /healthz and /metrics, 404, 405
 * with Allow, HEAD and OPTIONS, token authentication, the limits (414,
 * 431, 413), malformed requests (400, 501), chunked bodies (411), slow
 * headers closed by the request timeout, pipelining, and keep-alive over
 * 10k requests on one connection. Suite http_route (no server): the
 * pattern rule every dialect's table relies on.
 *
 * The suite's server: --requirepass, a 2 KiB body limit and a 1 s request
 * timeout, so each limit is reachable with small requests.
 */
#include <curl/curl.h>

#include "server/http_route.h"
#include "test_server_harness.h"

#define TOKEN "s3cret-token"
#define BODY_LIMIT 2048
#define RES_BODY_MAX (64u << 10)
#define RES_HEAD_MAX (8u << 10)
#define KEEPALIVE_REQUESTS 10000

static int g_http_port;
static const char *g_extra_header; /* sent by http_do when set */

typedef struct {
    long status;
    char body[RES_BODY_MAX];
    size_t len;
    char head[RES_HEAD_MAX];
    size_t head_len;
} http_res;

/* Appends k bytes to dst (cap bytes, NUL kept), dropping what does not fit. */
static void append(char *dst, size_t cap, size_t *len, const char *p, size_t k)
{
    if (k > cap - 1 - *len)
        k = cap - 1 - *len;
    memcpy(dst + *len, p, k);
    *len += k;
    dst[*len] = '\0';
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    http_res *r = ctx;
    append(r->body, sizeof r->body, &r->len, p, size * n);
    return size * n;
}

static size_t on_head(char *p, size_t size, size_t n, void *ctx)
{
    http_res *r = ctx;
    append(r->head, sizeof r->head, &r->head_len, p, size * n);
    return size * n;
}

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

/* One request on h (reused: keep-alive); token NULL: none sent. */
static long http_do(CURL *h, const char *method, const char *path, const char *body,
                    const char *token_header, http_res *r)
{
    static char url[16384]; /* the 414 test sends a long path */
    struct curl_slist *hdrs = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_http_port, path);
    r->len = r->head_len = 0;
    r->body[0] = r->head[0] = '\0';
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    if (token_header != NULL)
        hdrs = curl_slist_append(hdrs, token_header);
    if (g_extra_header != NULL)
        hdrs = curl_slist_append(hdrs, g_extra_header);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    return r->status;
}

static long get(const char *path, http_res *r)
{
    CURL *h = curl_easy_init();
    long st = http_do(h, "GET", path, NULL, "Access-Token: " TOKEN, r);
    curl_easy_cleanup(h);
    return st;
}

static bool head_has(const http_res *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

static http_res R;

Test(http, healthz_answers_ok_without_a_token)
{
    CURL *h = curl_easy_init();
    cr_assert_eq(http_do(h, "GET", "/healthz", NULL, NULL, &R), 200);
    cr_assert_str_eq(R.body, "{\"status\":\"ok\"}");
    cr_assert(head_has(&R, "Content-Type: application/json"));
    curl_easy_cleanup(h);
}

Test(http, metrics_count_requests_per_dialect_and_show_the_journal)
{
    http_res *before = calloc(1, sizeof *before);
    cr_assert_eq(get("/metrics", before), 200);
    cr_assert(head_has(before, "Content-Type: text/plain; version=0.0.4"));
    cr_assert_eq(get("/healthz", &R), 200);
    cr_assert_eq(get("/metrics", &R), 200);
    const char *key = "invcore_http_requests_total{dialect=\"common\"} ";
    char *a = strstr(before->body, key), *b = strstr(R.body, key);
    cr_assert(a && b);
    /* healthz and the first metrics scrape itself, at least (other tests
     * may run concurrently) */
    cr_assert_geq(atoll(b + strlen(key)), atoll(a + strlen(key)) + 2);
    cr_assert_not_null(strstr(R.body, "invcore_http_request_duration_seconds_bucket{dialect=\""
                                      "common\",le=\"+Inf\"}"));
    cr_assert_not_null(strstr(R.body, "invcore_journal_durable_position "));
    cr_assert_not_null(strstr(R.body, "invcore_levels "));
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
        cr_assert(head_has(&R, "Allow: GET, HEAD, OPTIONS"), "%s", R.head);
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
    cr_assert(head_has(&R, "Allow: GET, HEAD, OPTIONS"), "%s", R.head);
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
    curl_easy_cleanup(h);
}

Test(http, a_body_over_the_limit_is_413)
{
    static char body[BODY_LIMIT + 2];
    memset(body, ' ', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    CURL *h = curl_easy_init();
    cr_assert_eq(http_do(h, "POST", "/healthz", body, "Access-Token: " TOKEN, &R), 413);
    body[BODY_LIMIT] = '\0'; /* at the limit: read, then routed (405) */
    cr_assert_eq(http_do(h, "POST", "/healthz", body, "Access-Token: " TOKEN, &R), 405);
    curl_easy_cleanup(h);
}

/* Sends raw bytes on a new connection; returns what came back before the
 * server closed (or the timeout). */
static size_t raw_exchange(const char *req, size_t n, char *buf, size_t cap)
{
    srv_t h = S;
    h.port = g_http_port;
    int fd = raw_connect(&h);
    raw_send(fd, req, n);
    size_t got = raw_recv(fd, buf, cap - 1, cap - 1, 3000);
    buf[got] = '\0';
    close(fd);
    return got;
}

Test(http, malformed_requests_are_400_and_unknown_method_tokens_501)
{
    char buf[4096];
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
    char buf[4096];
    const char *req = "POST /healthz HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN
                      "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    raw_exchange(req, strlen(req), buf, sizeof buf);
    cr_assert(strncmp(buf, "HTTP/1.1 411 ", 13) == 0, "%s", buf);
}

Test(http, pipelined_requests_are_answered_in_order)
{
    char buf[8192];
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: x\r\nAccess-Token: " TOKEN "\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_exchange(req, strlen(req), buf, sizeof buf);
    char *a = strstr(buf, "HTTP/1.1 200 ");
    char *b = strstr(buf, "HTTP/1.1 404 ");
    char *c = a ? strstr(a + 1, "HTTP/1.1 200 ") : NULL;
    cr_assert(a == buf && b && c && a < b && b < c, "%s", buf);
}

Test(http, slow_headers_are_closed_by_the_request_timeout)
{
    srv_t h = S;
    h.port = g_http_port;
    int fd = raw_connect(&h);
    const char *part = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    raw_send(fd, part, strlen(part));
    long long start = srv_now_ms();
    bool closed = false;
    /* one more header byte every 200 ms: a keep-alive idle timer alone
     * would never fire; the request timeout (1 s, swept each second) must */
    while (!closed && srv_now_ms() - start < 8000) {
        raw_send(fd, "X", 1);
        closed = raw_closed(fd, 200);
    }
    cr_assert(closed, "still open after 8 s of trickled headers");
    close(fd);
}

Test(http, keep_alive_serves_10k_requests_on_one_connection)
{
    CURL *h = curl_easy_init();
    long connects_total = 0;
    for (int i = 0; i < KEEPALIVE_REQUESTS; i++) {
        long connects = 0;
        cr_assert_eq(http_do(h, "GET", "/healthz", NULL, NULL, &R), 200);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
        connects_total += connects;
    }
    cr_assert_eq(connects_total, 1, "%ld connections for %d requests", connects_total,
                 KEEPALIVE_REQUESTS);
    curl_easy_cleanup(h);
}

Test(http, expect_100_continue_is_answered_before_the_body)
{
    srv_t h = S;
    h.port = g_http_port;
    int fd = raw_connect(&h);
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
    char buf[4096];
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t n = raw_exchange(req, strlen(req), buf, sizeof buf);
    cr_assert_gt(n, 0);
    cr_assert_not_null(strstr(buf, "Connection: close"));
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
    cr_assert(!match(pat, "/admin/api/2024-01/inventory_items/.json", params, &n));
    cr_assert(!match(pat, "/admin/api/2024-01/inventory_items/808950810", params, &n));
    cr_assert(!match(pat, "/admin/api/2024-01/inventory_items/1/2.json", params, &n));
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
