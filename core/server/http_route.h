/*
 * http_route.h — what a dialect of the HTTP face (docs/HTTP.md) provides and
 * what its handlers get: one routing table per dialect (method, pattern,
 * dialect, handler), matched by http_route.c, never an if-chain.
 *
 * This layer knows nothing of sockets or of the HTTP parser: a handler takes
 * a parsed request and fills a response; http.c reads and writes the bytes,
 * checks authentication and limits before a handler runs, and sends the
 * response once the journal position it names is durable (the rule RESP
 * follows under --fsync always).
 *
 * Invariants: a handler never blocks, never writes to the socket, and fills
 * exactly one response (status and body) for every request it is given; it
 * validates everything it reads (params, query, body) and answers bad input
 * with a 4xx in its dialect's error shape, never by aborting. A request is
 * applied whole or not at all.
 */
#ifndef INV_SERVER_HTTP_ROUTE_H
#define INV_SERVER_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"

typedef enum {
    HTTP_GET = 1,
    HTTP_HEAD = 2, /* answered as GET without a body (http.c), never routed */
    HTTP_POST = 3,
    HTTP_PUT = 4,
    HTTP_PATCH = 5,
    HTTP_DELETE = 6,
    HTTP_OPTIONS = 7
} http_method;

typedef enum {
    HTTP_DIALECT_COMMON = 0, /* /healthz, /metrics */
    HTTP_DIALECT_SHOPLAZZA = 1,
    HTTP_DIALECT_SHOPIFY = 2,
    HTTP_DIALECT_CONNECTOR = 3,
    HTTP_DIALECT_WIX = 4,
    HTTP_DIALECTS /* count */
} http_dialect;

/* A pattern's {name} segments (a segment is one path component; a pattern
 * may end a segment with a literal suffix, e.g. "{id}.json"). */
#define HTTP_PARAMS_MAX 4

/* A byte string inside the request's buffer (not NUL-terminated). */
typedef struct {
    const char *p;
    size_t len;
} http_str;

typedef struct http_request http_request;

struct http_request {
    http_method method;
    http_dialect dialect; /* of the route matched */
    http_str path; /* without the query, percent-decoding not applied */
    http_str query; /* after '?', raw ("" when none) */
    http_str body; /* Content-Length bytes (or the de-chunked body) */
    http_str params[HTTP_PARAMS_MAX]; /* the pattern's {name} values, in order */
    size_t n_params;
    inv_engine *e; /* the request's tenant's (never NULL in a handler that needs one) */
    inv_tenants *tenants; /* every tenant (/metrics) */
    /* The value of a request header (case-insensitive name), or false when
     * absent. The first one when repeated. */
    bool (*header)(const http_request *r, const char *name, http_str *value);
    void *conn; /* http.c's, for header() */
};

/* The response a handler fills. The body is written through http_json.h's
 * writer on body (http.c owns the buffer); content type is JSON unless
 * set. Extra headers: "Name: value" lines without CRLF (e.g. a Shopify
 * Link header, Retry-After). */
#define HTTP_EXTRA_HEADERS_MAX 4
#define HTTP_EXTRA_HEADER_BYTES_MAX 1024

typedef struct http_body http_body; /* a growable byte buffer (http_json.h) */

typedef struct {
    int status; /* 200, 201, 400, ... */
    http_body *body;
    const char *content_type; /* NULL: application/json; charset=utf-8 */
    char extra[HTTP_EXTRA_HEADERS_MAX][HTTP_EXTRA_HEADER_BYTES_MAX];
    size_t n_extra;
    /* The journal position this request's writes must be durable at before
     * the response is sent (inv_last_write_position() after the last engine
     * write; 0: none). */
    uint64_t durable_at;
} http_response;

typedef void (*http_handler)(const http_request *req, http_response *res);

typedef struct {
    http_method method;
    const char *pattern; /* e.g. "/admin/api/{version}/inventory_items/{id}.json" */
    http_dialect dialect;
    http_handler fn;
} http_route;

/* Each dialect's table (http_<dialect>.c). */
extern const http_route http_common_routes[];
extern const size_t http_common_routes_n;
extern const http_route http_shoplazza_routes[];
extern const size_t http_shoplazza_routes_n;
extern const http_route http_shopify_routes[];
extern const size_t http_shopify_routes_n;
extern const http_route http_connector_routes[];
extern const size_t http_connector_routes_n;
extern const http_route http_wix_routes[];
extern const size_t http_wix_routes_n;

/* ---- additions by http-core (after the lead's interface above) ---------- */

/* The one error table (http_common.c): the HTTP status for an engine
 * result (INV_OK: 200; INV_ENOTFOUND: 404; INV_EINVALID: 422; ...). Every
 * dialect maps engine errors through it. */
int http_status_for(int rc);

/* The router (http_route.c): every dialect's table, in one list. */
typedef enum {
    HTTP_MATCH_FOUND = 0,
    HTTP_MATCH_NO_PATH = 1, /* 404 */
    HTTP_MATCH_NO_METHOD = 2 /* 405: allow lists the methods the path has */
} http_match;

#define HTTP_ALLOW_BYTES_MAX 64u /* "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" */

/* Matches method m (HEAD matches GET routes) and path against every table;
 * on FOUND fills *route and params[HTTP_PARAMS_MAX]; on NO_METHOD and
 * FOUND fills allow (NUL-terminated). Allocates nothing. */
http_match http_route_find(http_method m, http_str path, const http_route **route, http_str *params,
                           size_t *n_params, char *allow, size_t allow_cap);

/* The fast path of http_route_find for serving: the same match (FOUND
 * with the same route and params), but it stops at the first route found
 * and builds no Allow text (only 405 and OPTIONS carry one: ask
 * http_route_find then). Allocates nothing. */
http_match http_route_lookup(http_method m, http_str path, const http_route **route,
                             http_str *params, size_t *n_params);

/* The method named name ("GET", ...), 0 when the router has none. */
http_method http_method_of(const char *name);

/* Whether path matches one pattern ("/a/{id}.json"), filling params
 * (HTTP_PARAMS_MAX) and *n_params: the matching rule, alone, for tests. */
bool http_route_pattern_match(const char *pattern, http_str path, http_str *params,
                              size_t *n_params);

/* Metrics (http_common.c): one answered request. dialect HTTP_DIALECTS:
 * none was routed (404, 405, refusals before routing). */
void http_metrics_count(http_dialect d, int status, uint64_t latency_ns);

/* Invariant predicates (http_common.c), used only inside assert(), each
 * O(1). A request as http_serve hands it to a handler: a method the router
 * knows, a dialect, at most HTTP_PARAMS_MAX params, every string a pointer
 * with its length (an empty query or body is ""). A response being filled:
 * its body buffer, at most HTTP_EXTRA_HEADERS_MAX extra headers, a status
 * not yet set (0) or 100..599. */
bool http_request_ok(const http_request *r);
bool http_response_ok(const http_response *r);

#endif /* INV_SERVER_HTTP_ROUTE_H */
