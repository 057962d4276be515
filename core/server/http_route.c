/*
 * http_route.c — the router of the HTTP face: every dialect's table
 * (http_route.h) is matched in one place; HEAD matches GET routes, and a
 * path's methods are listed for Allow (404, 405 and OPTIONS are answered,
 * and responses framed, by http_common.c's http_serve).
 *
 * Invariants: matching allocates nothing and reads only the tables (const,
 * shared by every loop).
 */
#include <assert.h>
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

bool http_route_pattern_match(const char *pattern, http_str path, http_str *params,
                              size_t *n_params)
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
            if (!http_route_pattern_match(r->pattern, path, tmp, &n))
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

http_method http_method_of(const char *name)
{
    assert(name != NULL);
    for (size_t i = 0; i < sizeof g_methods / sizeof g_methods[0]; i++)
        if (strcmp(g_methods[i].name, name) == 0)
            return g_methods[i].m;
    return (http_method)0;
}
