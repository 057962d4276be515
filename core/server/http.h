/*
 * http.h — the HTTP/1.1 face of invcored (docs/HTTP.md): what server.c's
 * event loops call for a connection accepted on --http-port, and what the
 * parser glue (http.c) hands to the serving code (http_common.c).
 *
 * Split in two translation units on purpose: http.c includes Debian's
 * <http_parser.h>, whose enum http_method names (HTTP_GET, ...) collide
 * with http_route.h's; so this header names no type of either, and a
 * method travels as its name.
 *
 * Invariants: one request is answered per http_conn_step that returns
 * HTTP_STEP_DONE or HTTP_STEP_CLOSE, its whole response (status line,
 * headers, body) appended to out, so pipelined responses leave in request
 * order; nothing here blocks or touches the socket.
 */
#ifndef INV_SERVER_HTTP_H
#define INV_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"
#include "server/config.h"
#include "server/resp.h"
#include "server/tokens.h"

/* Before a connection's first authenticated request (and on every request
 * when no --requirepass is set these are not used): a stranger gets this
 * much of the server's parsing at most. */
#define HTTP_PREAUTH_HEADER_BYTES_MAX 4096u
#define HTTP_PREAUTH_HEADERS_MAX 32u
#define HTTP_PREAUTH_URL_BYTES_MAX 1024u
/* Retry-After (seconds) of the 503 a cluster's standby answers a write
 * with: about a failover's time at the default 2 s lease is a few tries. */
#define HTTP_READ_ONLY_RETRY_AFTER_S 1u

typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
} http_header_kv;

/* One parsed request, pointing into the connection's input. */
typedef struct {
    const char *method; /* "GET", "TRACE", ... (NUL-terminated, static) */
    const char *url, *body;
    size_t url_len, body_len;
    const http_header_kv *headers;
    size_t n_headers;
    bool keep_alive; /* HTTP/1.1 without "Connection: close", or 1.0 keep-alive */
    /* The request's tenant and its engine (NULL: no such tenant: a route
     * that needs one answers 404), every tenant (/metrics), the tenant's
     * name, the scope its token grants, and a refusal decided before
     * routing that http_serve answers in the dialect's shape (0: none;
     * 400 bad X-TWC-Tenant, 403 another tenant's X-TWC-Tenant, 429 the
     * token's rate limit with retry_after_ms). */
    inv_engine *e;
    inv_tenant *tenant;
    inv_tenants *tenants;
    const char *tenant_name;
    token_scope scope;
    int deny;
    const char *deny_msg;
    bool read_only; /* server_ctx_read_only: a write route answers 503 */
    uint64_t retry_after_ms;
    uint64_t started_ns; /* clock_mono_ns at parse: the latency histogram */
} http_parsed;

typedef struct http_conn http_conn;

typedef enum {
    HTTP_STEP_DONE = 0, /* one response appended; *used bytes consumed */
    HTTP_STEP_NEED_MORE = 1, /* incomplete; *need bytes at least */
    HTTP_STEP_CLOSE = 2 /* a response appended; close after sending it */
} http_step;

/* True while the server takes no write (a cluster's standby: its write
 * routes answer 503); arg is the http_conn_new caller's. */
typedef bool (*http_read_only_fn)(const void *arg);

/* read_only may be NULL: the server always takes writes (a single node). */
http_conn *http_conn_new(const server_config *cfg, inv_tenants *tenants, token_registry *tokens,
                         http_read_only_fn read_only, const void *read_only_arg);
/* The tenant of the connection's last request (a reference the connection
 * holds; NULL: none): its writes are the ones durable_at names. */
inv_tenant *http_conn_tenant(const http_conn *h);
void http_conn_free(http_conn *h);

/* Parses one request at the start of data[0..len) and answers it into out.
 * *durable_at: the journal position the response must wait for (0: none);
 * the caller holds the bytes it appended until then. */
http_step http_conn_step(http_conn *h, const char *data, size_t len, resp_out *out, int64_t now_ms,
                         size_t *used, size_t *need, uint64_t *durable_at);

/* True when the connection should be closed: a request begun and not
 * complete after --http-request-timeout (slow headers or body), or idle
 * since last_ms for --http-idle-timeout. */
bool http_conn_expired(const http_conn *h, int64_t now_ms, int64_t last_ms);

/* ---- http_common.c: routing and serving one parsed request ------------ */

typedef struct http_served http_served; /* per connection: the body buffer */
http_served *http_served_new(void);
void http_served_free(http_served *s);

/* Routes and runs pr (auth already checked), appending the response.
 * Returns the position the response waits for (0: none). */
uint64_t http_serve(http_served *s, const http_parsed *pr, resp_out *out, bool close_after);

/* A response decided before routing (400, 401, 411, 413, 414, 431, 501)
 * for the request whose URL (what of it was read; NULL, 0: none) is
 * url[0..url_len): the error in the shape of the dialect its path names
 * (http_common.c's table: /openapi/ Shoplazza {"error"}, /admin/api/
 * Shopify {"errors"}, /api/ the connector {"error"}, /stores/ Wix
 * {"message","details"}; else the common {"errors"}), with Connection:
 * close when close_after. */
void http_serve_refusal(resp_out *out, const char *url, size_t url_len, int status, const char *msg,
                        bool close_after);

/* ---- http_common.c: the counters /metrics and INFO's # HTTP show ------- */

/* One slot per dialect (http_route.h's order: common, shoplazza, shopify,
 * connector, wix) and a last one for requests never routed (404, 405 and
 * the refusals before routing); http_common.c asserts the count. */
#define HTTP_STATS_SLOTS 6

typedef struct {
    const char *name; /* "common", ..., "none" (static) */
    uint64_t requests, errors_4xx, errors_5xx;
} http_slot_stats;

typedef struct {
    uint64_t connections_open, connections_total;
    http_slot_stats slot[HTTP_STATS_SLOTS];
} http_stats;

/* A snapshot of the counters (each read relaxed: a scrape may see one a
 * request ahead of another). */
void http_stats_get(http_stats *out);

/* A connection accepted on --http-port (opened) or closed: http_conn_new
 * and http_conn_free count themselves. */
void http_metrics_conn(bool opened);

#endif /* INV_SERVER_HTTP_H */
