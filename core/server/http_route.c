/*
 * http_route.c — the router of the HTTP face and the serving of one parsed
 * request: every dialect's table (http_route.h) is matched in one place,
 * HEAD is answered as GET without its body, OPTIONS with Allow, a path no
 * route has with 404 and a path without the method with 405 + Allow; the
 * handler's response is framed here (status line, Content-Length, extra
 * headers) into the connection's output.
 *
 * Invariants: matching allocates nothing and reads only the tables (const,
 * shared by every loop); a response always carries Content-Length, so a
 * keep-alive client can find the next one; a handler that leaves no
 * status or whose body failed yields a 500, never a partial body.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "server/http.h"
#include "server/http_json.h"
#include "server/http_route.h"

/* Every dialect's table; a new dialect adds one line here. */
static const struct {
    const http_route *routes;
    const size_t *n;
} g_tables[] = {
    {http_common_routes, &http_common_routes_n},
    {http_shoplazza_routes, &http_shoplazza_routes_n},
    {http_shopify_routes, &http_shopify_routes_n},
};

static const struct {
    http_method m;
    const char *name;
} g_methods[] = {
    {HTTP_GET, "GET"},     {HTTP_HEAD, "HEAD"},     {HTTP_POST, "POST"},       {HTTP_PUT, "PUT"},
    {HTTP_PATCH, "PATCH"}, {HTTP_DELETE, "DELETE"}, {HTTP_OPTIONS, "OPTIONS"},
};

/* ---- matching ------------------------------------------------------------ */

/* Matches one pattern segment against one path segment; a "{name}suffix"
 * segment captures the non-empty part before the literal suffix. */
static bool segment_match(const char *pat, size_t pat_len, http_str seg, http_str *param,
                          bool *is_param)
{
    *is_param = pat_len >= 2 && pat[0] == '{';
    if (!*is_param)
        return pat_len == seg.len && memcmp(pat, seg.p, seg.len) == 0;
    const char *close = memchr(pat, '}', pat_len);
    assert(close != NULL); /* the tables are ours: a pattern is well formed */
    size_t suffix_len = pat_len - (size_t)(close + 1 - pat);
    if (seg.len <= suffix_len || memcmp(seg.p + seg.len - suffix_len, close + 1, suffix_len) != 0)
        return false;
    param->p = seg.p;
    param->len = seg.len - suffix_len;
    return true;
}

/* Whether path matches pattern, filling params (at most HTTP_PARAMS_MAX). */
static bool pattern_match(const char *pattern, http_str path, http_str *params, size_t *n_params)
{
    const char *pp = pattern, *pe = pattern + strlen(pattern);
    size_t at = 0, n = 0;
    assert(pattern[0] == '/');
    if (path.len == 0 || path.p[0] != '/')
        return false;
    while (pp < pe && at < path.len) {
        pp++; /* the '/' before each segment, in both */
        at++;
        const char *pseg_end = memchr(pp, '/', (size_t)(pe - pp));
        if (pseg_end == NULL)
            pseg_end = pe;
        const char *slash = memchr(path.p + at, '/', path.len - at);
        size_t seg_end = slash ? (size_t)(slash - path.p) : path.len;
        http_str seg = {path.p + at, seg_end - at}, param;
        bool is_param;
        if (!segment_match(pp, (size_t)(pseg_end - pp), seg, &param, &is_param))
            return false;
        if (is_param) {
            if (n == HTTP_PARAMS_MAX)
                return false; /* defended: the tables keep within it */
            params[n++] = param;
        }
        pp = pseg_end;
        at = seg_end;
    }
    *n_params = n;
    return pp == pe && at == path.len;
}

/* "GET, HEAD, ..." for the methods in mask (bit = http_method). */
static void allow_format(unsigned mask, char *allow, size_t cap)
{
    size_t len = 0;
    allow[0] = '\0';
    if (mask & (1u << HTTP_GET))
        mask |= 1u << HTTP_HEAD;
    mask |= 1u << HTTP_OPTIONS;
    for (size_t i = 0; i < sizeof g_methods / sizeof g_methods[0]; i++) {
        if (!(mask & (1u << g_methods[i].m)))
            continue;
        int w = snprintf(allow + len, cap - len, "%s%s", len ? ", " : "", g_methods[i].name);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
}

http_match http_route_find(http_method m, http_str path, const http_route **route, http_str *params,
                           size_t *n_params, char *allow, size_t allow_cap)
{
    assert(route != NULL && params != NULL && n_params != NULL);
    assert(allow != NULL && allow_cap >= HTTP_ALLOW_BYTES_MAX);
    http_method want = m == HTTP_HEAD ? HTTP_GET : m;
    unsigned mask = 0;
    *route = NULL;
    for (size_t t = 0; t < sizeof g_tables / sizeof g_tables[0]; t++) {
        for (size_t i = 0; i < *g_tables[t].n; i++) {
            const http_route *r = &g_tables[t].routes[i];
            http_str tmp[HTTP_PARAMS_MAX];
            size_t n = 0;
            if (!pattern_match(r->pattern, path, tmp, &n))
                continue;
            mask |= 1u << r->method;
            if (r->method == want && *route == NULL) {
                *route = r;
                memcpy(params, tmp, n * sizeof *tmp);
                *n_params = n;
            }
        }
    }
    if (mask == 0)
        return HTTP_MATCH_NO_PATH;
    allow_format(mask, allow, allow_cap);
    return *route ? HTTP_MATCH_FOUND : HTTP_MATCH_NO_METHOD;
}

/* ---- serving ------------------------------------------------------------- */

struct http_served {
    http_body body;
};

http_served *http_served_new(void)
{
    http_served *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (http_body_init(&s->body) != INV_OK) {
        free(s);
        return NULL;
    }
    return s;
}

void http_served_free(http_served *s)
{
    if (s == NULL)
        return;
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
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

/* A header line a handler gave: printable, no CR/LF (a handler must not
 * be able to split the response). */
static bool header_line_safe(const char *h)
{
    for (const char *p = h; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return h[0] != '\0';
}

/* Status line, headers and (unless omitted) the body, into out. */
static void write_response(resp_out *out, const http_response *res, const char *allow,
                           bool omit_body, bool close_after)
{
    char head[256];
    const http_body *b = res->body;
    int n;
    if (res->status == 204) /* RFC 9110 15.3.5: no content, no Content-Length */
        n = snprintf(head, sizeof head, "HTTP/1.1 204 No Content\r\n%s",
                     close_after ? "Connection: close\r\n" : "");
    else
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s", res->status,
                     reason_phrase(res->status),
                     res->content_type ? res->content_type : "application/json; charset=utf-8",
                     b->len, close_after ? "Connection: close\r\n" : "");
    assert(n > 0 && (size_t)n < sizeof head);
    resp_out_raw(out, head, (size_t)n);
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
}

/* {"errors": msg} with status into res (body reset first). */
static void error_body(http_response *res, int status, const char *msg)
{
    http_body_reset(res->body);
    res->status = status;
    http_json_obj_open(res->body);
    http_json_key(res->body, "errors");
    http_json_cstr(res->body, msg);
    http_json_obj_close(res->body);
}

static http_method method_of(const char *name)
{
    for (size_t i = 0; i < sizeof g_methods / sizeof g_methods[0]; i++)
        if (strcmp(g_methods[i].name, name) == 0)
            return g_methods[i].m;
    return (http_method)0;
}

static bool header_lookup(const http_request *r, const char *name, http_str *value)
{
    const http_parsed *pr = r->conn;
    size_t n = strlen(name);
    assert(pr != NULL && value != NULL);
    for (size_t i = 0; i < pr->n_headers; i++) {
        if (pr->headers[i].name_len == n && strncasecmp(pr->headers[i].name, name, n) == 0) {
            value->p = pr->headers[i].value;
            value->len = pr->headers[i].value_len;
            return true;
        }
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
    req.method = method_of(pr->method);
    const char *q = memchr(pr->url, '?', pr->url_len);
    req.path = (http_str){pr->url, q ? (size_t)(q - pr->url) : pr->url_len};
    req.query = q ? (http_str){q + 1, pr->url_len - (size_t)(q + 1 - pr->url)} : (http_str){"", 0};
    req.body = (http_str){pr->body ? pr->body : "", pr->body_len};
    req.e = pr->e;
    req.header = header_lookup;
    req.conn = (void *)pr;
    http_match m = http_route_find(req.method ? req.method : HTTP_GET, req.path, &route, req.params,
                                   &req.n_params, allow, sizeof allow);
    http_dialect dialect = HTTP_DIALECTS;
    if (m == HTTP_MATCH_NO_PATH) {
        error_body(&res, 404, "Not Found");
        allow[0] = '\0';
    } else if (req.method == HTTP_OPTIONS) {
        res.status = 204;
    } else if (req.method == 0 || m == HTTP_MATCH_NO_METHOD) {
        error_body(&res, 405, "Method Not Allowed");
    } else {
        dialect = route->dialect;
        req.dialect = dialect;
        allow[0] = '\0';
        route->fn(&req, &res);
        if (res.status < 100 || res.status > 599 || res.body->failed) {
            error_body(&res, 500, "Internal Server Error");
            res.durable_at = 0 /* not sent as success: nothing to wait for */;
        }
    }
    write_response(out, &res, allow, req.method == HTTP_HEAD, close_after);
    http_metrics_count(dialect, res.status, clock_mono_ns() - pr->started_ns);
    return res.durable_at;
}

void http_serve_refusal(resp_out *out, int status, const char *msg, bool close_after)
{
    http_body b;
    http_response res;
    assert(out != NULL && msg != NULL);
    memset(&res, 0, sizeof res);
    if (http_body_init(&b) != INV_OK) {
        out->failed = 1; /* the connection is dropped: nothing half-sent */
        return;
    }
    res.body = &b;
    error_body(&res, status, msg);
    write_response(out, &res, NULL, false, close_after);
    http_body_free(&b);
    http_metrics_count(HTTP_DIALECTS, status, 0);
}
