/*
 * http_route.c — the router of the HTTP face: every dialect's table
 * (http_route.h) is matched in one place; HEAD matches GET routes, and a
 * path's methods are listed for Allow (404, 405 and OPTIONS are answered,
 * and responses framed, by http_common.c's http_serve).
 *
 * Invariants: matching allocates nothing and reads only the tables (const,
 * shared by every loop) and their compiled form (written once, under
 * pthread_once, before any loop reads it; read-only after).
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_route.h"

/* Every dialect's table; a new dialect adds one line here. */
static const struct {
    const http_route *routes;
    const size_t *n;
} g_tables[] = {
    {http_common_routes, &http_common_routes_n},
    {http_shoplazza_routes, &http_shoplazza_routes_n},
    {http_shopify_routes, &http_shopify_routes_n},
    {http_connector_routes, &http_connector_routes_n},
    {http_wix_routes, &http_wix_routes_n},
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
    assert(pat != NULL && pat_len >= 1 && param != NULL && is_param != NULL);
    assert(seg.p != NULL || seg.len == 0);
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
    assert(param->len >= 1 && param->len <= seg.len); /* a param is never empty */
    return true;
}

bool http_route_pattern_match(const char *pattern, http_str path, http_str *params,
                              size_t *n_params)
{
    const char *pp = pattern, *pe = pattern + strlen(pattern);
    size_t at = 0, n = 0;
    assert(pattern[0] == '/');
    assert(params != NULL && n_params != NULL && (path.p != NULL || path.len == 0));
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
        assert(pp <= pe && at <= path.len); /* both cursors stay within their strings */
    }
    *n_params = n;
    return pp == pe && at == path.len;
}

/* "GET, HEAD, ..." for the methods in mask (bit = http_method). */
static void allow_format(unsigned mask, char *allow, size_t cap)
{
    size_t len = 0;
    assert(allow != NULL && cap >= 1);
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
    assert(len < cap && allow[len] == '\0');
}

/* ---- the compiled tables ------------------------------------------------- */

/* Matching a request against the patterns' text cost ~11k instructions per
 * request (every pattern of every table, a strlen and a memchr per segment
 * of both, the Allow text built each time). The tables are compiled once,
 * on first use (pthread_once: every loop may be first), into segments
 * split in advance and grouped by their first segment, so a request splits
 * its path once and is matched against the routes of its own prefix only
 * ("openapi", "admin", "api", "stores", "healthz", "metrics"). */

/* Segments of one pattern at most ("/admin/api/{version}/locations/{id}/
 * inventory_levels.json" has 6). */
#define ROUTE_SEGS_MAX 12u
/* Routes of every table together, and distinct first segments. */
#define ROUTES_MAX 256u
#define ROUTE_BUCKETS_MAX 32u

typedef struct {
    const char *lit; /* the literal text; for a {param}: its suffix */
    uint16_t len; /* of lit */
    bool param;
} route_seg;

typedef struct {
    const http_route *route;
    route_seg seg[ROUTE_SEGS_MAX];
    uint8_t n_segs;
} compiled_route;

/* The routes whose first segment is one literal, in table order (a route
 * whose first segment is a {param} is in every bucket and in the catch-all
 * one, so each bucket keeps the global order: the first match wins). */
typedef struct {
    const char *first;
    size_t first_len;
    uint16_t idx[ROUTES_MAX];
    size_t n;
} route_bucket;

static compiled_route g_compiled[ROUTES_MAX];
static size_t g_compiled_n;
static route_bucket g_buckets[ROUTE_BUCKETS_MAX + 1]; /* the last: catch-all */
static size_t g_buckets_n;
static pthread_once_t g_compile_once = PTHREAD_ONCE_INIT;

/* Splits one pattern (ours, well formed: asserted) into c. */
static void compile_pattern(const char *pattern, compiled_route *c)
{
    const char *pp = pattern, *pe = pattern + strlen(pattern);
    assert(pattern[0] == '/');
    assert(c != NULL);
    c->n_segs = 0;
    while (pp < pe) {
        pp++; /* the '/' */
        const char *end = memchr(pp, '/', (size_t)(pe - pp));
        if (end == NULL)
            end = pe;
        assert(c->n_segs < ROUTE_SEGS_MAX);
        route_seg *s = &c->seg[c->n_segs++];
        size_t len = (size_t)(end - pp);
        s->param = len >= 2 && pp[0] == '{';
        if (s->param) {
            const char *close = memchr(pp, '}', len);
            assert(close != NULL);
            s->lit = close + 1;
            s->len = (uint16_t)(end - (close + 1));
        } else {
            s->lit = pp;
            s->len = (uint16_t)len;
        }
        pp = end;
    }
    assert(c->n_segs >= 1 && pp == pe);
}

static route_bucket *bucket_of(const char *first, size_t len)
{
    assert(first != NULL || len == 0);
    assert(g_buckets_n <= ROUTE_BUCKETS_MAX);
    for (size_t i = 0; i < g_buckets_n; i++)
        if (g_buckets[i].first_len == len && memcmp(g_buckets[i].first, first, len) == 0)
            return &g_buckets[i];
    return NULL;
}

static void bucket_add(route_bucket *b, size_t idx)
{
    assert(b != NULL && idx < g_compiled_n); /* a compiled route */
    assert(b->n < ROUTES_MAX);
    b->idx[b->n++] = (uint16_t)idx;
}

/* The compiled tables as compile_tables leaves them (used only in
 * asserts; O(1)): routes and buckets within their bounds, and the
 * catch-all bucket holds only the {param}-first routes, so never more
 * than all. */
static bool route_table_ok(void)
{
    return g_compiled_n >= 1 && g_compiled_n <= ROUTES_MAX && g_buckets_n >= 1 &&
           g_buckets_n <= ROUTE_BUCKETS_MAX && g_buckets[ROUTE_BUCKETS_MAX].n <= g_compiled_n;
}

static void compile_tables(void)
{
    for (size_t t = 0; t < sizeof g_tables / sizeof g_tables[0]; t++)
        for (size_t i = 0; i < *g_tables[t].n; i++) {
            assert(g_compiled_n < ROUTES_MAX);
            compiled_route *c = &g_compiled[g_compiled_n++];
            c->route = &g_tables[t].routes[i];
            compile_pattern(c->route->pattern, c);
            assert(c->n_segs > 0);
            const route_seg *s0 = &c->seg[0];
            if (!s0->param && bucket_of(s0->lit, s0->len) == NULL) {
                assert(g_buckets_n < ROUTE_BUCKETS_MAX);
                g_buckets[g_buckets_n].first = s0->lit;
                g_buckets[g_buckets_n++].first_len = s0->len;
            }
        }
    /* second pass: every bucket in table order; {param}-first routes in all */
    for (size_t k = 0; k < g_compiled_n; k++) {
        const route_seg *s0 = &g_compiled[k].seg[0];
        if (!s0->param) {
            bucket_add(bucket_of(s0->lit, s0->len), k);
            continue;
        }
        for (size_t i = 0; i < g_buckets_n; i++)
            bucket_add(&g_buckets[i], k);
        bucket_add(&g_buckets[ROUTE_BUCKETS_MAX], k);
    }
    assert(route_table_ok());
}

/* A path split at its '/'s (the request's bytes, not copied). */
typedef struct {
    http_str seg[ROUTE_SEGS_MAX];
    size_t n;
} path_segs;

/* False when path is not "/..." or has more segments than any pattern. */
static bool path_split(http_str path, path_segs *ps)
{
    size_t at = 0;
    assert(ps != NULL && (path.p != NULL || path.len == 0));
    ps->n = 0;
    if (path.len == 0 || path.p[0] != '/')
        return false;
    while (at < path.len) {
        at++; /* the '/' */
        const char *slash = memchr(path.p + at, '/', path.len - at);
        size_t end = slash ? (size_t)(slash - path.p) : path.len;
        if (ps->n == ROUTE_SEGS_MAX)
            return false;
        ps->seg[ps->n++] = (http_str){path.p + at, end - at};
        at = end;
    }
    assert(ps->n >= 1);
    return true;
}

/* Whether the split path matches one compiled pattern, filling params. */
static bool compiled_match(const compiled_route *c, const path_segs *ps, http_str *params,
                           size_t *n_params)
{
    size_t n = 0;
    assert(c != NULL && ps != NULL && params != NULL && n_params != NULL);
    assert(c->n_segs >= 1 && c->n_segs <= ROUTE_SEGS_MAX && ps->n <= ROUTE_SEGS_MAX);
    if (c->n_segs != ps->n)
        return false;
    /* literal segments first, from the last: routes of one prefix differ
     * most at their end ("…/inventory_levels/set", "…/adjust"), and a
     * first-byte test settles most before memcmp */
    for (size_t i = ps->n; i-- > 0;) {
        const route_seg *s = &c->seg[i];
        http_str seg = ps->seg[i];
        if (!s->param && (s->len != seg.len || (seg.len > 0 && s->lit[0] != seg.p[0]) ||
                          memcmp(s->lit, seg.p, seg.len) != 0))
            return false;
    }
    for (size_t i = 0; i < ps->n; i++) {
        const route_seg *s = &c->seg[i];
        http_str seg = ps->seg[i];
        if (!s->param)
            continue;
        if (seg.len <= s->len || memcmp(seg.p + seg.len - s->len, s->lit, s->len) != 0)
            return false;
        if (n == HTTP_PARAMS_MAX)
            return false; /* defended: the tables keep within it */
        params[n++] = (http_str){seg.p, seg.len - s->len};
    }
    *n_params = n;
    return true;
}

/* Matches want against the routes of path's first segment, in table
 * order: the first route of that method (*route, params), and the mask of
 * every method the path has (only when mask != NULL: else it stops at the
 * first route found). */
static http_match compiled_find(http_method want, http_str path, const http_route **route,
                                http_str *params, size_t *n_params, unsigned *mask)
{
    path_segs ps;
    unsigned seen = 0;
    pthread_once(&g_compile_once, compile_tables);
    assert(route_table_ok());
    *route = NULL;
    if (!path_split(path, &ps))
        return HTTP_MATCH_NO_PATH;
    const route_bucket *b = bucket_of(ps.seg[0].p, ps.seg[0].len);
    if (b == NULL)
        b = &g_buckets[ROUTE_BUCKETS_MAX];
    for (size_t i = 0; i < b->n; i++) {
        const compiled_route *c = &g_compiled[b->idx[i]];
        http_str tmp[HTTP_PARAMS_MAX];
        size_t n = 0;
        if (!compiled_match(c, &ps, tmp, &n))
            continue;
        seen |= 1u << c->route->method;
        if (c->route->method == want && *route == NULL) {
            *route = c->route;
            memcpy(params, tmp, n * sizeof *tmp);
            *n_params = n;
            if (mask == NULL)
                break;
        }
    }
    if (mask != NULL)
        *mask = seen;
    assert(*route == NULL || ((*route)->method == want && *n_params <= HTTP_PARAMS_MAX));
    if (seen == 0)
        return HTTP_MATCH_NO_PATH;
    return *route ? HTTP_MATCH_FOUND : HTTP_MATCH_NO_METHOD;
}

http_match http_route_find(http_method m, http_str path, const http_route **route, http_str *params,
                           size_t *n_params, char *allow, size_t allow_cap)
{
    assert(route != NULL && params != NULL && n_params != NULL);
    assert(allow != NULL && allow_cap >= HTTP_ALLOW_BYTES_MAX);
    unsigned mask = 0;
    http_match r =
        compiled_find(m == HTTP_HEAD ? HTTP_GET : m, path, route, params, n_params, &mask);
    allow[0] = '\0';
    if (r != HTTP_MATCH_NO_PATH)
        allow_format(mask, allow, allow_cap);
    assert((r == HTTP_MATCH_FOUND) == (*route != NULL));
    return r;
}

http_match http_route_lookup(http_method m, http_str path, const http_route **route,
                             http_str *params, size_t *n_params)
{
    assert(route != NULL && params != NULL && n_params != NULL);
    http_match r =
        compiled_find(m == HTTP_HEAD ? HTTP_GET : m, path, route, params, n_params, NULL);
    assert((r == HTTP_MATCH_FOUND) == (*route != NULL));
    return r;
}

http_method http_method_of(const char *name)
{
    assert(name != NULL);
    for (size_t i = 0; i < sizeof g_methods / sizeof g_methods[0]; i++)
        if (strcmp(g_methods[i].name, name) == 0) {
            assert(g_methods[i].m >= HTTP_GET && g_methods[i].m <= HTTP_OPTIONS);
            return g_methods[i].m;
        }
    return (http_method)0;
}
