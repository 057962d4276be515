/*
 * http_common.c — the dialect-free part of the HTTP face: serving one
 * parsed request (route, run the handler, frame the response: status
 * line, Content-Length, Allow, extra headers; HEAD without its body),
 * GET /healthz, GET /metrics (Prometheus text format 0.0.4), the one table
 * mapping engine results (INV_E*) to HTTP statuses, the one table giving
 * an error decided outside a handler the shape of its path's dialect, and
 * the request and connection counters /metrics and INFO's # HTTP show.
 *
 * Invariants: a response always carries Content-Length (but 204), so a
 * keep-alive client can find the next one; a handler that leaves no
 * status or whose body failed yields a 500, never a partial body. The
 * counters are process-wide (one invcored per process),
 * written by every event loop with relaxed atomics (statistics: they order
 * nothing, and a scrape may see one counter a request ahead of another);
 * histogram buckets are cumulative only when read, never when written.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "clock.h"
#include "server/http.h"
#include "server/http_json.h"
#include "server/http_route.h"
#include "server/stats.h"

/* ---- the error table ------------------------------------------------------ */

static const struct {
    int rc;
    int status;
} g_status_of[] = {
    {INV_OK, 200},
    {INV_ENOTFOUND, 404},
    {INV_EEXISTS, 409},
    {INV_ECONFLICT, 409},
    {INV_EINSUFFICIENT, 422}, /* the request is well formed; the stock says no */
    {INV_EINVALID, 422},
    {INV_ELIMIT, 422},
    {INV_ENOMEM, 503}, /* the server's state, not the request: retry later */
    {INV_EIO, 503}, /* the journal failed: writes are refused until restart */
};

int http_status_for(int rc)
{
    for (size_t i = 0; i < sizeof g_status_of / sizeof g_status_of[0]; i++)
        if (g_status_of[i].rc == rc) {
            assert(g_status_of[i].status >= 200 && g_status_of[i].status <= 599);
            return g_status_of[i].status;
        }
    assert(rc != INV_OK); /* the table's first row */
    return 500;
}

/* ---- invariant predicates (http_route.h) ---------------------------------- */

static bool http_str_ok(http_str s)
{
    return s.p != NULL || s.len == 0;
}

bool http_request_ok(const http_request *r)
{
    return r != NULL && r->method >= HTTP_GET && r->method <= HTTP_OPTIONS &&
           (unsigned)r->dialect < HTTP_DIALECTS && r->n_params <= HTTP_PARAMS_MAX &&
           r->path.p != NULL && r->query.p != NULL && r->body.p != NULL && r->header != NULL &&
           http_str_ok(r->params[0]) && http_str_ok(r->params[HTTP_PARAMS_MAX - 1]);
}

bool http_response_ok(const http_response *r)
{
    return r != NULL && r->body != NULL && r->body->len <= r->body->cap &&
           r->n_extra <= HTTP_EXTRA_HEADERS_MAX &&
           (r->status == 0 || (r->status >= 100 && r->status <= 599));
}

/* ---- counters --------------------------------------------------------------- */

/* Upper bounds of the latency buckets, in microseconds (+Inf implied). */
static const uint64_t g_bucket_us[] = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000};
#define HTTP_BUCKETS (sizeof g_bucket_us / sizeof g_bucket_us[0] + 1)
#define HTTP_METRIC_SLOTS (HTTP_DIALECTS + 1) /* the last: not routed */

typedef struct {
    _Atomic uint64_t requests, errors_4xx, errors_5xx, latency_ns_sum;
    _Atomic uint64_t bucket[HTTP_BUCKETS]; /* per bucket, not cumulative */
} dialect_counters;

static dialect_counters g_counters[HTTP_METRIC_SLOTS];
/* HTTP connections: open now (up at accept, down at close) and ever. */
static _Atomic uint64_t g_conns_open, g_conns_total;

_Static_assert(HTTP_METRIC_SLOTS == HTTP_STATS_SLOTS, "http.h's slot count is the dialects + 1");

static const char *const g_dialect_names[HTTP_METRIC_SLOTS] = {
    "common", "shoplazza", "shopify", "connector", "wix", "none",
};

void http_metrics_count(http_dialect d, int status, uint64_t latency_ns)
{
    assert((unsigned)d < HTTP_METRIC_SLOTS);
    assert(status >= 100 && status <= 599);
    dialect_counters *c = &g_counters[d];
    size_t b = 0;
    while (b < HTTP_BUCKETS - 1 && latency_ns > g_bucket_us[b] * 1000)
        b++;
    stats_add_global(&c->requests, 1);
    if (status >= 500)
        stats_add_global(&c->errors_5xx, 1);
    else if (status >= 400)
        stats_add_global(&c->errors_4xx, 1);
    stats_add_global(&c->latency_ns_sum, latency_ns);
    stats_add_global(&c->bucket[b], 1);
}

void http_metrics_conn(bool opened)
{
    if (opened) {
        stats_add_global(&g_conns_open, 1);
        stats_add_global(&g_conns_total, 1);
        /* every open is counted in both: the total never trails the gauge */
        assert(stats_get(&g_conns_total) >= 1);
    } else {
        /* relaxed: a gauge, orders nothing; every close follows its open
         * in the one loop that owns the connection, so it never wraps */
        uint64_t was = atomic_fetch_sub_explicit(&g_conns_open, 1, memory_order_relaxed);
        assert(was > 0);
    }
}

void http_stats_get(http_stats *out)
{
    assert(out != NULL);
    memset(out, 0, sizeof *out);
    out->connections_open = stats_get(&g_conns_open);
    out->connections_total = stats_get(&g_conns_total);
    for (size_t d = 0; d < HTTP_METRIC_SLOTS; d++) {
        out->slot[d].name = g_dialect_names[d];
        out->slot[d].requests = stats_get(&g_counters[d].requests);
        out->slot[d].errors_4xx = stats_get(&g_counters[d].errors_4xx);
        out->slot[d].errors_5xx = stats_get(&g_counters[d].errors_5xx);
    }
    assert(out->slot[HTTP_METRIC_SLOTS - 1].name != NULL);
}

/* ---- handlers ----------------------------------------------------------------- */

static void healthz(const http_request *req, http_response *res)
{
    inv_stats st;
    assert(http_request_ok(req) && http_response_ok(res));
    bool ok = inv_stats_get(req->e, &st) == INV_OK && !st.journal_failed;
    res->status = ok ? 200 : 503;
    http_json_obj_open(res->body);
    http_json_key(res->body, "status");
    http_json_cstr(res->body, ok ? "ok" : "journal_failed");
    http_json_obj_close(res->body);
}

/* Appends printf output to b (a metrics line is short: one 256-byte line). */
static void metric_line(http_body *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void metric_line(http_body *b, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    assert(b != NULL && fmt != NULL);
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert(n > 0 && (size_t)n < sizeof line);
    http_body_raw(b, line, (size_t)n);
}

static void metrics_requests(http_body *b)
{
    assert(b != NULL && !b->failed);
    metric_line(b, "# TYPE invcore_http_connections gauge\ninvcore_http_connections %llu\n",
                (unsigned long long)stats_get(&g_conns_open));
    metric_line(b,
                "# TYPE invcore_http_connections_total counter\n"
                "invcore_http_connections_total %llu\n",
                (unsigned long long)stats_get(&g_conns_total));
    metric_line(b, "# TYPE invcore_http_requests_total counter\n");
    for (size_t d = 0; d < HTTP_METRIC_SLOTS; d++)
        metric_line(b, "invcore_http_requests_total{dialect=\"%s\"} %llu\n", g_dialect_names[d],
                    (unsigned long long)stats_get(&g_counters[d].requests));
    metric_line(b, "# TYPE invcore_http_errors_total counter\n");
    for (size_t d = 0; d < HTTP_METRIC_SLOTS; d++) {
        metric_line(b, "invcore_http_errors_total{dialect=\"%s\",class=\"4xx\"} %llu\n",
                    g_dialect_names[d], (unsigned long long)stats_get(&g_counters[d].errors_4xx));
        metric_line(b, "invcore_http_errors_total{dialect=\"%s\",class=\"5xx\"} %llu\n",
                    g_dialect_names[d], (unsigned long long)stats_get(&g_counters[d].errors_5xx));
    }
    metric_line(b, "# TYPE invcore_http_request_duration_seconds histogram\n");
    for (size_t d = 0; d < HTTP_METRIC_SLOTS; d++) {
        const dialect_counters *c = &g_counters[d];
        uint64_t cum = 0;
        for (size_t k = 0; k < HTTP_BUCKETS; k++) {
            char le[32] = "+Inf";
            cum += stats_get(&c->bucket[k]);
            if (k + 1 < HTTP_BUCKETS)
                snprintf(le, sizeof le, "%g", (double)g_bucket_us[k] / 1e6);
            metric_line(b,
                        "invcore_http_request_duration_seconds_bucket{dialect=\"%s\",le=\"%s\"} "
                        "%llu\n",
                        g_dialect_names[d], le, (unsigned long long)cum);
        }
        metric_line(b, "invcore_http_request_duration_seconds_sum{dialect=\"%s\"} %.9f\n",
                    g_dialect_names[d], (double)stats_get(&c->latency_ns_sum) / 1e9);
        metric_line(b, "invcore_http_request_duration_seconds_count{dialect=\"%s\"} %llu\n",
                    g_dialect_names[d], (unsigned long long)cum);
    }
    assert(b->len <= b->cap);
}

/* The engine's figures, one row per metric and a sample per tenant
 * (label tenant="name"). */
#define METRICS_ENGINE_ROWS 13

static void metrics_engine_values(const inv_stats *st, uint64_t v[METRICS_ENGINE_ROWS])
{
    assert(st != NULL && v != NULL);
    const uint64_t vals[METRICS_ENGINE_ROWS] = {st->levels,
                                                st->items,
                                                st->locations,
                                                st->holds_active,
                                                st->holds_created,
                                                st->holds_committed,
                                                st->holds_released,
                                                st->holds_expired,
                                                st->records_written,
                                                st->journal_position,
                                                st->durable_position,
                                                st->fsyncs,
                                                st->journal_failed ? 1 : 0};
    _Static_assert(sizeof vals == METRICS_ENGINE_ROWS * sizeof(uint64_t), "one value a row");
    memcpy(v, vals, sizeof vals);
}

static const struct {
    const char *name, *type;
} g_engine_metrics[METRICS_ENGINE_ROWS] = {
    {"invcore_levels", "gauge"},
    {"invcore_items", "gauge"},
    {"invcore_locations", "gauge"},
    {"invcore_holds_active", "gauge"},
    {"invcore_holds_created_total", "counter"},
    {"invcore_holds_committed_total", "counter"},
    {"invcore_holds_released_total", "counter"},
    {"invcore_holds_expired_total", "counter"},
    {"invcore_journal_records_written_total", "counter"},
    {"invcore_journal_position", "gauge"},
    {"invcore_journal_durable_position", "gauge"},
    {"invcore_journal_fsyncs_total", "counter"},
    {"invcore_journal_failed", "gauge"},
};

typedef struct {
    http_body *b;
    size_t row;
} metrics_walk;

static int metrics_tenant(void *arg, inv_tenant *t)
{
    metrics_walk *w = arg;
    inv_stats st;
    uint64_t v[METRICS_ENGINE_ROWS];
    size_t len;
    assert(w != NULL && w->b != NULL && w->row < METRICS_ENGINE_ROWS && t != NULL);
    const char *name = inv_tenant_name(t, &len);
    assert(name != NULL && len <= INV_TENANT_NAME_MAX); /* a label without escaping */
    if (inv_stats_get(inv_tenant_engine(t), &st) != INV_OK)
        return 0;
    metrics_engine_values(&st, v);
    /* a tenant name is [a-z0-9._-]: nothing to escape in a label */
    metric_line(w->b, "%s{tenant=\"%s\"} %llu\n", g_engine_metrics[w->row].name, name,
                (unsigned long long)v[w->row]);
    return 0;
}

static void metrics_engine(http_body *b, inv_tenants *tenants)
{
    assert(b != NULL && tenants != NULL);
    for (size_t row = 0; row < METRICS_ENGINE_ROWS; row++) {
        metrics_walk w = {b, row};
        metric_line(b, "# TYPE %s %s\n", g_engine_metrics[row].name, g_engine_metrics[row].type);
        (void)inv_tenants_each(tenants, metrics_tenant, &w);
    }
    metric_line(b, "# TYPE invcore_tenants gauge\ninvcore_tenants %zu\n",
                inv_tenants_count(tenants));
}

static void metrics(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->tenants != NULL); /* http.c passes every tenant */
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metrics_requests(res->body);
    metrics_engine(res->body, req->tenants);
}

const http_route http_common_routes[] = {
    {HTTP_GET, "/healthz", HTTP_DIALECT_COMMON, healthz},
    {HTTP_GET, "/metrics", HTTP_DIALECT_COMMON, metrics},
};
const size_t http_common_routes_n = sizeof http_common_routes / sizeof http_common_routes[0];

/* ---- serving ------------------------------------------------------------- */

struct http_served {
    http_body body;
};

http_served *http_served_new(void)
{
    http_served *s = inv_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (http_body_init(&s->body) != INV_OK) {
        free(s);
        return NULL;
    }
    assert(s->body.len == 0 && !s->body.failed);
    return s;
}

void http_served_free(http_served *s)
{
    if (s == NULL)
        return;
    assert(s->body.len <= s->body.cap);
    http_body_free(&s->body);
    free(s);
}

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {207, "Multi-Status"}, /* the connector dialect's bulk creates */
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Payload Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Entity"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
    };
    assert(status >= 100 && status <= 599);
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

/* A header line a handler gave: printable, no CR/LF (a handler must not
 * be able to split the response). */
static bool header_line_safe(const char *h)
{
    assert(h != NULL);
    for (const char *p = h; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return h[0] != '\0';
}

/* The framing head's bytes at most: status line, Content-Type,
 * Content-Length, Connection (the handler's content type is bounded by
 * HTTP_CONTENT_TYPE_MAX). */
#define HTTP_HEAD_BYTES_MAX 256u
#define HTTP_CONTENT_TYPE_MAX 128u
#define HTTP_JSON_CONTENT_TYPE "application/json; charset=utf-8"

/* Appends a string literal to a head being built (its size known at
 * compile time: one memcpy, no strlen). */
#define HEAD_LIT(h, at, lit) ((at) = head_put((h), (at), (lit), sizeof(lit) - 1))

static size_t head_put(char *h, size_t at, const char *s, size_t n)
{
    assert(at + n <= HTTP_HEAD_BYTES_MAX);
    assert(h != NULL && (s != NULL || n == 0));
    memcpy(h + at, s, n);
    return at + n;
}

/* The status line and the fixed headers into head (no snprintf: ~2.3k
 * instructions per response through it); 0 when the handler's content
 * type is too long or unsafe (the caller answers 500). */
static size_t head_format(char *head, const http_response *res, bool close_after)
{
    size_t at = 0;
    char digits[24];
    assert(res->status >= 100 && res->status <= 599);
    HEAD_LIT(head, at, "HTTP/1.1 ");
    at = head_put(head, at, digits, resp_fmt_u64(digits, (uint64_t)res->status));
    head[at++] = ' ';
    const char *reason = reason_phrase(res->status);
    at = head_put(head, at, reason, strlen(reason));
    HEAD_LIT(head, at, "\r\n");
    if (res->status != 204) { /* RFC 9110 15.3.5: no content, no Content-Length */
        HEAD_LIT(head, at, "Content-Type: ");
        if (res->content_type == NULL) {
            HEAD_LIT(head, at, HTTP_JSON_CONTENT_TYPE);
        } else {
            size_t n = strnlen(res->content_type, HTTP_CONTENT_TYPE_MAX + 1);
            if (n > HTTP_CONTENT_TYPE_MAX || !header_line_safe(res->content_type))
                return 0;
            at = head_put(head, at, res->content_type, n);
        }
        HEAD_LIT(head, at, "\r\nContent-Length: ");
        at = head_put(head, at, digits, resp_fmt_u64(digits, res->body->len));
        HEAD_LIT(head, at, "\r\n");
    }
    if (close_after)
        HEAD_LIT(head, at, "Connection: close\r\n");
    assert(at > 0 && at <= HTTP_HEAD_BYTES_MAX);
    return at;
}

/* Status line, headers and (unless omitted) the body, into out. */
static void write_response(resp_out *out, const http_response *res, const char *allow,
                           bool omit_body, bool close_after)
{
    char head[HTTP_HEAD_BYTES_MAX];
    const http_body *b = res->body;
    assert(out != NULL && http_response_ok(res) && res->status != 0);
    size_t start = out->len;
    size_t n = head_format(head, res, close_after);
    if (n == 0) { /* a handler's bad content type: nothing half-sent */
        out->failed = 1;
        return;
    }
    resp_out_raw(out, head, n);
    if (allow != NULL && allow[0] != '\0') {
        resp_out_raw(out, "Allow: ", 7);
        resp_out_raw(out, allow, strlen(allow));
        resp_out_raw(out, "\r\n", 2);
    }
    for (size_t i = 0; i < res->n_extra && i < HTTP_EXTRA_HEADERS_MAX; i++) {
        if (!header_line_safe(res->extra[i]))
            continue;
        resp_out_raw(out, res->extra[i], strnlen(res->extra[i], HTTP_EXTRA_HEADER_BYTES_MAX));
        resp_out_raw(out, "\r\n", 2);
    }
    resp_out_raw(out, "\r\n", 2);
    if (!omit_body && b->len > 0 && res->status != 204)
        resp_out_raw(out, b->p, b->len);
    /* the head at least, and the body when it went with it */
    assert(out->failed || out->len >= start + n + 2);
}

/* ---- error shapes ------------------------------------------------------- */

/* The bodies of the errors decided outside a handler (404, 405, a
 * handler's 500, and http.c's refusals before routing: 400, 401, 411,
 * 413, 414, 431, 501), one writer per shape. */
typedef void (*error_writer)(http_body *b, const char *msg);

/* {"errors":"msg"}: Shopify's, and the common shape. */
static void error_errors(http_body *b, const char *msg)
{
    assert(b != NULL && msg != NULL && b->len == 0); /* error_body reset it */
    http_json_obj_open(b);
    http_json_key(b, "errors");
    http_json_cstr(b, msg);
    http_json_obj_close(b);
}

/* {"error":"msg"}: the connector's, and Shoplazza's for a request its
 * gateway refuses (seed 003: "error" when the token is missing or
 * invalid; a handler's errors are its own {"code",..."errors":[...]}). */
static void error_error(http_body *b, const char *msg)
{
    assert(b != NULL && msg != NULL && b->len == 0); /* error_body reset it */
    http_json_obj_open(b);
    http_json_key(b, "error");
    http_json_cstr(b, msg);
    http_json_obj_close(b);
}

/* {"message":"msg","details":{}}: Wix's (seed 004's error shape). */
static void error_wix(http_body *b, const char *msg)
{
    assert(b != NULL && msg != NULL && b->len == 0); /* error_body reset it */
    http_json_obj_open(b);
    http_json_key(b, "message");
    http_json_cstr(b, msg);
    http_json_key(b, "details");
    http_json_obj_open(b);
    http_json_obj_close(b);
    http_json_obj_close(b);
}

/* A path names its dialect by its first segments: the shape of an error
 * on it is that dialect's; any other path gets the common shape. */
static const struct {
    const char *prefix; /* ends with '/': "/api" alone is the connector's too */
    http_dialect dialect;
    error_writer write;
} g_error_shapes[] = {
    {"/openapi/", HTTP_DIALECT_SHOPLAZZA, error_error},
    {"/admin/api/", HTTP_DIALECT_SHOPIFY, error_errors},
    {"/api/", HTTP_DIALECT_CONNECTOR, error_error},
    {"/stores/", HTTP_DIALECT_WIX, error_wix},
};

static http_dialect http_dialect_of_path(http_str path)
{
    assert(path.p != NULL || path.len == 0);
    for (size_t i = 0; i < sizeof g_error_shapes / sizeof g_error_shapes[0]; i++) {
        const char *pre = g_error_shapes[i].prefix;
        size_t n = strlen(pre);
        assert(n >= 2 && pre[n - 1] == '/');
        /* "/api/..." or exactly "/api" */
        if ((path.len >= n && memcmp(path.p, pre, n) == 0) ||
            (path.len == n - 1 && memcmp(path.p, pre, n - 1) == 0))
            return g_error_shapes[i].dialect;
    }
    return HTTP_DIALECT_COMMON;
}

static error_writer error_writer_for(http_dialect d)
{
    assert((unsigned)d < HTTP_DIALECTS);
    for (size_t i = 0; i < sizeof g_error_shapes / sizeof g_error_shapes[0]; i++)
        if (g_error_shapes[i].dialect == d)
            return g_error_shapes[i].write;
    return error_errors;
}

/* The error status with msg, in the shape of the dialect path names, into
 * res (the body reset first). */
static void error_body(http_response *res, http_str path, int status, const char *msg)
{
    assert(status >= 400 && status <= 599);
    assert(msg != NULL);
    assert(http_response_ok(res));
    http_body_reset(res->body);
    res->status = status;
    error_writer_for(http_dialect_of_path(path))(res->body, msg);
    assert(res->body->failed || res->body->len > 0);
}

static bool header_lookup(const http_request *r, const char *name, http_str *value)
{
    const http_parsed *pr = r->conn;
    size_t n = strlen(name);
    assert(pr != NULL && value != NULL);
    assert(pr->headers != NULL || pr->n_headers == 0);
    for (size_t i = 0; i < pr->n_headers; i++) {
        if (pr->headers[i].name_len == n && strncasecmp(pr->headers[i].name, name, n) == 0) {
            value->p = pr->headers[i].value;
            value->len = pr->headers[i].value_len;
            return true;
        }
    }
    return false;
}

/* The scope a route needs: /metrics shows every tenant (admin); a read
 * (GET, HEAD, and the POST searches whose path ends in /query) needs read;
 * any other method changes stock or the catalog (write). */
static token_scope route_scope(const http_route *route, http_method method)
{
    static const char query[] = "/query";
    assert(route != NULL && route->pattern != NULL && route->pattern[0] == '/');
    assert(method >= HTTP_GET && method <= HTTP_OPTIONS);
    size_t n = strlen(route->pattern), q = sizeof query - 1;
    if (strcmp(route->pattern, "/metrics") == 0)
        return TOKEN_SCOPE_ADMIN;
    if (method == HTTP_GET || method == HTTP_HEAD)
        return TOKEN_SCOPE_READ;
    if (method == HTTP_POST && n >= q && memcmp(route->pattern + n - q, query, q) == 0)
        return TOKEN_SCOPE_READ;
    return TOKEN_SCOPE_WRITE;
}

/* /healthz and /metrics answer for the server, not for one tenant. */
static bool route_needs_tenant(const http_route *route)
{
    assert(route != NULL && route->pattern != NULL && route->fn != NULL);
    return strcmp(route->pattern, "/healthz") != 0 && strcmp(route->pattern, "/metrics") != 0;
}

/* Before a matched route runs: the refusal http.c decided (400, 403, 429),
 * the token's scope (403), the tenant (404). True when res holds the
 * refusal and the handler must not run. */
static bool serve_refused(const http_parsed *pr, const http_route *route, const http_request *req,
                          http_response *res)
{
    char msg[160];
    assert(pr != NULL && http_request_ok(req) && http_response_ok(res));
    assert(res->n_extra == 0); /* no handler ran yet */
    token_scope need = route_scope(route, req->method);
    if (pr->deny != 0) {
        error_body(res, req->path, pr->deny, pr->deny_msg);
        if (pr->deny == 429) {
            uint64_t s = (pr->retry_after_ms + 999) / 1000; /* whole seconds, rounded up */
            snprintf(res->extra[res->n_extra++], HTTP_EXTRA_HEADER_BYTES_MAX, "Retry-After: %llu",
                     (unsigned long long)(s ? s : 1));
        }
        return true;
    }
    if (pr->scope < need) {
        snprintf(msg, sizeof msg,
                 "Forbidden: this token's scope (%s) does not allow it (%s needed)",
                 token_scope_name(pr->scope), token_scope_name(need));
        error_body(res, req->path, 403, msg);
        return true;
    }
    if (pr->read_only && need == TOKEN_SCOPE_WRITE) {
        /* 503 with Retry-After: retried by clients and proxies as a
         * failover in progress, as RESP clients react to READONLY. */
        error_body(res, req->path, 503,
                   "Service Unavailable: this node is a read-only replica; send writes to the "
                   "leader (ROLE or SENTINEL GET-MASTER-ADDR-BY-NAME names it)");
        snprintf(res->extra[res->n_extra++], HTTP_EXTRA_HEADER_BYTES_MAX, "Retry-After: %u",
                 HTTP_READ_ONLY_RETRY_AFTER_S);
        return true;
    }
    if (pr->e == NULL && route_needs_tenant(route)) {
        snprintf(msg, sizeof msg, "Not Found: tenant '%s' does not exist",
                 pr->tenant_name ? pr->tenant_name : "");
        error_body(res, req->path, 404, msg);
        return true;
    }
    return false;
}

uint64_t http_serve(http_served *s, const http_parsed *pr, resp_out *out, bool close_after)
{
    assert(s != NULL && pr != NULL && out != NULL);
    http_request req;
    http_response res;
    const http_route *route = NULL;
    char allow[HTTP_ALLOW_BYTES_MAX];
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    allow[0] = '\0';
    http_body_reset(&s->body);
    res.body = &s->body;
    req.method = http_method_of(pr->method);
    const char *q = memchr(pr->url, '?', pr->url_len);
    req.path = (http_str){pr->url, q ? (size_t)(q - pr->url) : pr->url_len};
    req.query = q ? (http_str){q + 1, pr->url_len - (size_t)(q + 1 - pr->url)} : (http_str){"", 0};
    req.body = (http_str){pr->body ? pr->body : "", pr->body_len};
    req.e = pr->e;
    req.tenants = pr->tenants;
    req.header = header_lookup;
    req.conn = (void *)pr;
    http_method want = req.method ? req.method : HTTP_GET;
    http_match m = http_route_lookup(want, req.path, &route, req.params, &req.n_params);
    /* Allow is built only for the answers that carry it (405, OPTIONS) */
    if (m == HTTP_MATCH_NO_METHOD || (m == HTTP_MATCH_FOUND && want != req.method) ||
        req.method == HTTP_OPTIONS)
        m = http_route_find(want, req.path, &route, req.params, &req.n_params, allow, sizeof allow);
    http_dialect dialect = HTTP_DIALECTS;
    if (m == HTTP_MATCH_NO_PATH) {
        error_body(&res, req.path, 404, "Not Found");
        allow[0] = '\0';
    } else if (req.method == HTTP_OPTIONS) {
        res.status = 204;
    } else if (req.method == 0 || m == HTTP_MATCH_NO_METHOD) {
        error_body(&res, req.path, 405, "Method Not Allowed");
    } else if (serve_refused(pr, route, &req, &res)) {
        dialect = route->dialect;
        allow[0] = '\0';
    } else {
        dialect = route->dialect;
        req.dialect = dialect;
        allow[0] = '\0';
        assert(http_request_ok(&req) && http_response_ok(&res));
        route->fn(&req, &res);
        if (res.status < 100 || res.status > 599 || res.body->failed) {
            error_body(&res, req.path, 500, "Internal Server Error");
            res.durable_at = 0 /* not sent as success: nothing to wait for */;
        }
    }
    assert(http_response_ok(&res) && res.status != 0); /* every way set one */
    write_response(out, &res, allow, req.method == HTTP_HEAD, close_after);
    http_metrics_count(dialect, res.status, clock_mono_ns() - pr->started_ns);
    return res.durable_at;
}

void http_serve_refusal(resp_out *out, const char *url, size_t url_len, int status, const char *msg,
                        bool close_after)
{
    http_body b;
    http_response res;
    assert(out != NULL && msg != NULL);
    assert(url != NULL || url_len == 0);
    memset(&res, 0, sizeof res);
    if (http_body_init(&b) != INV_OK) {
        out->failed = 1; /* the connection is dropped: nothing half-sent */
        return;
    }
    const char *q = url_len ? memchr(url, '?', url_len) : NULL;
    http_str path = {url ? url : "", q ? (size_t)(q - url) : url_len};
    res.body = &b;
    error_body(&res, path, status, msg);
    write_response(out, &res, NULL, false, close_after);
    http_body_free(&b);
    http_metrics_count(HTTP_DIALECTS, status, 0);
}
