/*
 * http.c — one HTTP/1.1 connection's parsing, limits, authentication and
 * timeouts (http.h); server.c owns the socket, the output ring and the
 * durability hold, http_route.c routes and frames the response.
 *
 * The parser is Debian's libhttp-parser (nodejs/http-parser 2.9): Debian
 * 12 packages neither llhttp nor picohttpparser as a library; it allocates
 * nothing and calls back with pointers into our buffer. Each step parses
 * the pending request from its first byte (a fresh parser, a few hundred
 * bytes of headers in the common case), so every pointer it gives stays
 * valid while the request is served, straight from the loop's read buffer;
 * an incomplete request is re-parsed when more arrives, its cost bounded by
 * the header and body limits (the loop skips the step until *need bytes are
 * there once the Content-Length is known).
 *
 * Invariants: nothing is routed before the whole request (headers and
 * Content-Length body) is in; a refusal (400, 401, 411, 413, 414, 431, 501)
 * closes the connection after its response, since the rest of the input
 * cannot be framed safely; the limits before a connection's first
 * authenticated request are the tighter HTTP_PREAUTH_* ones; a request
 * with Transfer-Encoding (chunked) is refused with 411.
 */
#include "alloc.h"
#include "server/http.h"

#include <assert.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "server/tokens.h"

struct http_conn {
    const server_config *cfg;
    inv_tenants *tenants;
    http_read_only_fn read_only; /* NULL: writes always taken */
    const void *read_only_arg;
    token_registry *tokens;
    token_set *tset; /* the token set requests are checked against (a reference) */
    /* The last request's tenant (a reference), kept for the next one: a
     * keep-alive client addresses one tenant, looked up once. */
    inv_tenant *tenant;
    http_served *served;
    bool authed; /* a request on this connection passed the token check */
    /* What the pending request may do, decided with its headers
     * (request_authorize): the scope, the tenant's name, the token (NULL:
     * the password or no authentication), and a refusal to serve instead
     * of routing (0: none). */
    token_scope req_scope;
    char req_tenant[INV_TENANT_NAME_MAX + 1];
    size_t req_tenant_len;
    token_entry *req_tok;
    int req_deny;
    const char *req_deny_msg;
    bool continue_sent; /* "100 Continue" sent for the pending request */
    int64_t req_start_ms; /* loop clock when the pending request began; 0: none */
    /* The request being parsed: reset by every step (parse_reset). */
    http_parser p;
    const char *data; /* the step's input: where the request begins */
    const char *url, *body;
    size_t url_len, body_len, n_headers;
    size_t lim_header_bytes, lim_headers, lim_url;
    uint64_t content_length;
    bool in_value, headers_done, complete;
    int refuse; /* a status decided while parsing; 0: none */
    const char *refuse_msg;
    size_t headers_cap; /* cfg->http_headers: sized once, per connection */
    http_header_kv headers[]; /* headers_cap */
};

/* A connection between steps and inside one (used only in asserts; O(1)):
 * its shared parts present, the headers within the limits this step set
 * and the array sized for them, a pointer exactly with its length. */
static bool conn_ok(const http_conn *h)
{
    return h != NULL && h->cfg != NULL && h->tokens != NULL && h->tset != NULL &&
           h->served != NULL && h->headers_cap == h->cfg->http_headers &&
           h->n_headers <= h->lim_headers && h->lim_headers <= h->headers_cap &&
           h->req_tenant_len <= INV_TENANT_NAME_MAX && (h->url != NULL || h->url_len == 0) &&
           (h->body != NULL || h->body_len == 0);
}

static bool password_set(const server_config *cfg)
{
    assert(cfg != NULL && (cfg->requirepass != NULL || cfg->requirepass_len == 0));
    return cfg->requirepass != NULL && cfg->requirepass_len > 0;
}

/* --requirepass or --tokens: requests need a token. */
static bool auth_required(const http_conn *h)
{
    assert(h != NULL && h->tokens != NULL);
    return password_set(h->cfg) || h->tokens->path != NULL;
}

/* Stops the parse with status (returns the callbacks' error value). */
static int refuse(http_conn *h, int status, const char *msg)
{
    assert(h != NULL && msg != NULL);
    assert(status >= 400 && status <= 599);
    if (h->refuse == 0) {
        h->refuse = status;
        h->refuse_msg = msg;
    }
    assert(h->refuse != 0 && h->refuse_msg != NULL); /* the first refusal stays */
    return -1;
}

/* ---- authentication ----------------------------------------------------- */

static const http_header_kv *header_find(const http_conn *h, const char *name)
{
    assert(conn_ok(h) && name != NULL);
    size_t n = strlen(name);
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->headers[i].name_len == n && strncasecmp(h->headers[i].name, name, n) == 0) {
            assert(h->headers[i].value != NULL); /* "" until a value arrives */
            return &h->headers[i];
        }
    return NULL;
}

/* The seeds' token headers, each a row: Access-Token (Shoplazza),
 * X-Shopify-Access-Token (Shopify), Authorization (the connector sends
 * "Bearer <token>", Wix the bare token: both forms are read). */
static const struct {
    const char *name;
    const char *scheme; /* a prefix the value may carry before the token; NULL: none */
} g_token_headers[] = {
    {"Access-Token", NULL},
    {"X-Shopify-Access-Token", NULL},
    {"Authorization", "Bearer "},
};

static bool url_is_public(const http_conn *h);

/* What a presented token opens: the password (admin on the default
 * tenant) or a --tokens entry; every form is compared, so the time does
 * not tell which one matched. */
typedef struct {
    bool ok;
    token_entry *tok; /* NULL: the password */
} token_check;

static void token_value_check(const http_conn *h, const char *v, size_t len, token_check *c)
{
    uint8_t digest[TOKEN_DIGEST_BYTES];
    token_entry *te;
    assert(conn_ok(h) && c != NULL && (v != NULL || len == 0));
    bool ok = config_token_resolve(h->cfg, h->tset, v, len, &te, digest);
    if (!c->ok && ok) /* the first header that opens something decides */
        *c = (token_check){true, te};
}

/* Checks every token header present, each in its plain form and, when it
 * carries the row's scheme, after it. */
static token_check request_token(const http_conn *h)
{
    token_check c = {false, NULL};
    for (size_t i = 0; i < sizeof g_token_headers / sizeof g_token_headers[0]; i++) {
        const http_header_kv *kv = header_find(h, g_token_headers[i].name);
        if (kv == NULL)
            continue;
        token_value_check(h, kv->value, kv->value_len, &c);
        const char *scheme = g_token_headers[i].scheme;
        size_t n = scheme ? strlen(scheme) : 0;
        if (n > 0 && kv->value_len >= n && strncasecmp(kv->value, scheme, n) == 0)
            token_value_check(h, kv->value + n, kv->value_len - n, &c);
    }
    /* a token opens a scope a file may name (never NONE) */
    assert(!c.ok || c.tok == NULL || c.tok->scope != TOKEN_SCOPE_NONE);
    return c;
}

static void request_deny(http_conn *h, int status, const char *msg)
{
    assert(h != NULL && msg != NULL);
    assert(status == 400 || status == 403 || status == 429); /* http.h's list */
    if (h->req_deny == 0) {
        h->req_deny = status;
        h->req_deny_msg = msg;
    }
}

static void request_tenant_set(http_conn *h, const char *name, size_t len)
{
    assert(len <= INV_TENANT_NAME_MAX);
    assert(h != NULL && name != NULL && len >= 1);
    memcpy(h->req_tenant, name, len);
    h->req_tenant[len] = '\0';
    h->req_tenant_len = len;
}

/* Decides the pending request's scope and tenant from its headers: the
 * token's (or admin on the default tenant without authentication, or with
 * the password); X-TWC-Tenant names the tenant, which a token of scope
 * admin may choose and any other must match. Returns false when no valid
 * token was presented (401). */
static bool request_authorize(http_conn *h)
{
    assert(conn_ok(h) && h->headers_done);
    h->req_tok = NULL;
    h->req_deny = 0;
    h->req_deny_msg = NULL;
    h->req_scope = TOKEN_SCOPE_ADMIN;
    request_tenant_set(h, INV_TENANT_DEFAULT, sizeof INV_TENANT_DEFAULT - 1);
    if (auth_required(h) && !url_is_public(h)) {
        if (token_registry_changed(h->tokens, h->tset)) {
            token_set_unref(h->tset);
            h->tset = token_registry_acquire(h->tokens);
        }
        token_check c = request_token(h);
        if (!c.ok)
            return false;
        if (c.tok != NULL) {
            h->req_tok = c.tok;
            h->req_scope = c.tok->scope;
            request_tenant_set(h, c.tok->tenant, c.tok->tenant_len);
        }
    }
    const http_header_kv *tw = header_find(h, "X-TWC-Tenant");
    if (tw == NULL || tw->value_len == 0)
        return true; /* the connector's handlers answer a missing one */
    if (inv_tenant_name_check(tw->value, tw->value_len) != INV_OK)
        request_deny(h, 400, "Bad Request: X-TWC-Tenant is not a tenant name");
    else if (h->req_scope == TOKEN_SCOPE_ADMIN)
        request_tenant_set(h, tw->value, tw->value_len);
    else if (tw->value_len != h->req_tenant_len ||
             memcmp(tw->value, h->req_tenant, tw->value_len) != 0)
        request_deny(h, 403, "Forbidden: this token does not open the tenant X-TWC-Tenant names");
    assert(h->req_scope != TOKEN_SCOPE_NONE && h->req_tenant_len >= 1);
    return true;
}

/* The request's tenant, resolved once its headers are authorized: the
 * connection's reference when it is the same live tenant, else a lookup
 * (NULL when there is no such tenant). */
static inv_tenant *request_tenant(http_conn *h)
{
    assert(conn_ok(h) && h->req_deny == 0 && h->req_tenant_len >= 1);
    if (h->tenant != NULL) {
        size_t len;
        const char *name = inv_tenant_name(h->tenant, &len);
        if (!inv_tenant_dropped(h->tenant) && len == h->req_tenant_len &&
            memcmp(name, h->req_tenant, len) == 0)
            return h->tenant;
        inv_defer_journal_end(inv_tenant_engine(h->tenant)); /* before it may close */
        inv_tenant_put(h->tenant);
        h->tenant = NULL;
    }
    if (inv_tenant_get(h->tenants, h->req_tenant, h->req_tenant_len, &h->tenant) != INV_OK)
        h->tenant = NULL;
    return h->tenant;
}

/* /healthz answers without a token: load balancers probe it. */
static bool url_is_public(const http_conn *h)
{
    static const char healthz[] = "/healthz";
    size_t n = sizeof healthz - 1;
    assert(h != NULL && (h->url != NULL || h->url_len == 0));
    return h->url_len >= n && memcmp(h->url, healthz, n) == 0 &&
           (h->url_len == n || h->url[n] == '?');
}

#define CONTINUE_LINE "HTTP/1.1 100 Continue\r\n\r\n"

/* Expect: 100-continue (the only expectation there is; others ignored). */
static bool expects_continue(const http_conn *h)
{
    static const char want[] = "100-continue";
    assert(h->headers_done); /* a header is read only once all are in */
    const http_header_kv *kv = header_find(h, "Expect");
    return kv != NULL && kv->value_len == sizeof want - 1 &&
           strncasecmp(kv->value, want, sizeof want - 1) == 0;
}

/* ---- parser callbacks --------------------------------------------------- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *h = p->data;
    assert(conn_ok(h) && at != NULL && !h->headers_done);
    if (h->url == NULL)
        h->url = at;
    h->url_len += len;
    if (h->url_len > h->lim_url)
        return refuse(h, 414, "URI Too Long");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *h = p->data;
    assert(conn_ok(h) && at != NULL && !h->headers_done);
    if (h->n_headers > 0 && !h->in_value) { /* the same name, continued */
        h->headers[h->n_headers - 1].name_len += len;
        return 0;
    }
    if (h->n_headers == h->lim_headers)
        return refuse(h, 431, "Request Header Fields Too Large: too many headers");
    h->headers[h->n_headers++] = (http_header_kv){at, "", len, 0};
    h->in_value = false;
    assert(h->n_headers <= h->lim_headers); /* checked just above */
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *h = p->data;
    assert(h->n_headers > 0); /* the parser calls a field first */
    http_header_kv *kv = &h->headers[h->n_headers - 1];
    if (!h->in_value)
        kv->value = at;
    kv->value_len += len;
    h->in_value = true;
    assert(kv->value != NULL && kv->value_len >= len);
    return 0;
}

/* RFC 9110 5.5: a field value excludes its trailing whitespace (the
 * parser drops only the leading), so "Authorization: tok " is the token. */
static void header_values_trim(http_conn *h)
{
    assert(conn_ok(h) && h->headers_done);
    for (size_t i = 0; i < h->n_headers; i++) {
        http_header_kv *kv = &h->headers[i];
        while (kv->value_len > 0 &&
               (kv->value[kv->value_len - 1] == ' ' || kv->value[kv->value_len - 1] == '\t'))
            kv->value_len--;
    }
}

static int on_headers_complete(http_parser *p)
{
    http_conn *h = p->data;
    assert(conn_ok(h) && !h->headers_done);
    h->headers_done = true;
    /* the parser's own count (nread) is reset before this callback: the
     * header block ends where the last header value (or the URL) ends */
    const http_header_kv *last = h->n_headers ? &h->headers[h->n_headers - 1] : NULL;
    const char *end = last ? last->value + last->value_len : h->url + h->url_len;
    if (h->url == NULL || (size_t)(end - h->data) > h->lim_header_bytes)
        return refuse(h, 431, "Request Header Fields Too Large");
    header_values_trim(h);
    if ((p->flags & F_CHUNKED) || p->uses_transfer_encoding)
        return refuse(h, 411, "Length Required: chunked request bodies are not supported");
    h->content_length = (p->flags & F_CONTENTLENGTH) ? p->content_length : 0;
    /* auth before the body: a stranger's body is never read */
    if (!request_authorize(h))
        return refuse(h, 401, "Unauthorized: a valid access token is required");
    if (auth_required(h) && !url_is_public(h))
        h->authed = true;
    if (h->content_length > h->cfg->http_body_bytes)
        return refuse(h, 413, "Payload Too Large");
    assert(h->refuse == 0 && h->req_scope != TOKEN_SCOPE_NONE);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn *h = p->data;
    assert(conn_ok(h) && h->headers_done && at != NULL);
    if (h->body == NULL)
        h->body = at;
    h->body_len += len;
    /* the parser stops a body at its Content-Length */
    assert(h->body_len <= h->content_length);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn *h = p->data;
    assert(conn_ok(h) && h->headers_done && !h->complete);
    h->complete = true;
    http_parser_pause(p, 1); /* one request per step: execute returns here */
    return 0;
}

static const http_parser_settings g_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the connection ----------------------------------------------------- */

http_conn *http_conn_new(const server_config *cfg, inv_tenants *tenants, token_registry *tokens,
                         http_read_only_fn read_only, const void *read_only_arg)
{
    assert(cfg != NULL);
    assert(cfg->http_headers > 0 && cfg->http_headers <= SERVER_HTTP_HEADERS_MAX);
    http_conn *h = inv_calloc(1, sizeof *h + cfg->http_headers * sizeof h->headers[0]);
    if (h == NULL)
        return NULL;
    h->headers_cap = cfg->http_headers;
    h->cfg = cfg;
    h->tenants = tenants;
    h->tokens = tokens;
    h->read_only = read_only;
    h->read_only_arg = read_only_arg;
    h->served = http_served_new();
    h->tset = token_registry_acquire(tokens);
    if (h->served == NULL || h->tset == NULL) {
        http_served_free(h->served);
        token_set_unref(h->tset);
        free(h);
        return NULL;
    }
    assert(conn_ok(h) && h->tenant == NULL && !h->authed);
    http_metrics_conn(true);
    return h;
}

void http_conn_free(http_conn *h)
{
    if (h == NULL)
        return;
    assert(h->served != NULL && h->tset != NULL); /* http_conn_new made both */
    http_served_free(h->served);
    if (h->tenant != NULL)
        inv_defer_journal_end(inv_tenant_engine(h->tenant)); /* before it may close */
    inv_tenant_put(h->tenant);
    token_set_unref(h->tset);
    free(h);
    http_metrics_conn(false);
}

static size_t min_size(size_t a, size_t b)
{
    size_t m = a < b ? a : b;
    assert(m <= a && m <= b);
    return m;
}

static void parse_reset(http_conn *h)
{
    const server_config *cfg = h->cfg;
    assert(h != NULL && cfg != NULL && h->headers_cap == cfg->http_headers);
    bool strict = auth_required(h) && !h->authed;
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    h->url = h->body = NULL;
    h->url_len = h->body_len = h->n_headers = 0;
    h->content_length = 0;
    h->in_value = h->headers_done = h->complete = false;
    h->refuse = 0;
    h->refuse_msg = NULL;
    h->lim_header_bytes = strict ? min_size(cfg->http_header_bytes, HTTP_PREAUTH_HEADER_BYTES_MAX)
                                 : cfg->http_header_bytes;
    h->lim_headers =
        strict ? min_size(cfg->http_headers, HTTP_PREAUTH_HEADERS_MAX) : cfg->http_headers;
    h->lim_url =
        strict ? min_size(cfg->http_url_bytes, HTTP_PREAUTH_URL_BYTES_MAX) : cfg->http_url_bytes;
    assert(h->lim_headers <= h->headers_cap);
    assert(conn_ok(h) && h->lim_url >= 1 && h->lim_header_bytes >= 1);
}

/* The refusal for a parse error the parser itself found. */
static http_step refuse_parse_error(http_conn *h, resp_out *out)
{
    enum http_errno err = HTTP_PARSER_ERRNO(&h->p);
    assert(conn_ok(h) && out != NULL);
    assert(err != HPE_OK && err != HPE_PAUSED); /* a paused parse completed */
    if (err == HPE_INVALID_METHOD)
        http_serve_refusal(out, h->url, h->url_len, 501, "Not Implemented: unknown method", true);
    else if (err == HPE_HEADER_OVERFLOW)
        http_serve_refusal(out, h->url, h->url_len, 431, "Request Header Fields Too Large", true);
    else
        http_serve_refusal(out, h->url, h->url_len, 400, http_errno_description(err), true);
    return HTTP_STEP_CLOSE;
}

http_step http_conn_step(http_conn *h, const char *data, size_t len, resp_out *out, int64_t now_ms,
                         size_t *used, size_t *need, uint64_t *durable_at)
{
    assert(h != NULL && data != NULL && len > 0);
    assert(used != NULL && need != NULL && durable_at != NULL);
    *durable_at = 0;
    *need = 0;
    parse_reset(h);
    h->data = data;
    size_t n = http_parser_execute(&h->p, &g_settings, data, len);
    assert(n <= len && conn_ok(h)); /* the cursor stayed within the input */
    if (h->refuse != 0) {
        http_serve_refusal(out, h->url, h->url_len, h->refuse, h->refuse_msg, true);
        *used = len;
        return HTTP_STEP_CLOSE;
    }
    if (h->complete) {
        uint64_t retry_ms = 0;
        if (h->req_tok != NULL && h->req_tok->bucket_size != 0 &&
            !token_rate_take(h->req_tok, clock_mono_ms(), &retry_ms))
            h->req_deny = 429, h->req_deny_msg = "Too Many Requests: this token's bucket is full";
        inv_tenant *t = h->req_deny == 0 ? request_tenant(h) : NULL;
        http_parsed pr = {
            .method = http_method_str((enum http_method)h->p.method),
            .url = h->url ? h->url : "",
            .url_len = h->url_len,
            .body = h->body,
            .body_len = h->body_len,
            .headers = h->headers,
            .n_headers = h->n_headers,
            .keep_alive = http_should_keep_alive(&h->p) && !h->p.upgrade,
            .e = t ? inv_tenant_engine(t) : NULL,
            .tenant = t,
            .tenants = h->tenants,
            .tenant_name = h->req_tenant,
            .scope = h->req_scope,
            .deny = h->req_deny,
            .deny_msg = h->req_deny_msg,
            .read_only = h->read_only != NULL && h->read_only(h->read_only_arg),
            .retry_after_ms = retry_ms,
            .started_ns = clock_mono_ns(),
        };
        h->req_start_ms = 0;
        h->continue_sent = false;
        /* whole: at most its Content-Length (an upgrade or CONNECT ends at
         * its headers: the parser reads no body then) */
        assert(h->headers_done && h->body_len <= h->content_length);
        *used = n;
        *durable_at = http_serve(h->served, &pr, out, !pr.keep_alive);
        return pr.keep_alive ? HTTP_STEP_DONE : HTTP_STEP_CLOSE;
    }
    if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK) {
        *used = len;
        return refuse_parse_error(h, out);
    }
    if (!h->headers_done && len > h->lim_header_bytes) {
        http_serve_refusal(out, h->url, h->url_len, 431, "Request Header Fields Too Large", true);
        *used = len;
        return HTTP_STEP_CLOSE;
    }
    if (h->req_start_ms == 0)
        h->req_start_ms = now_ms;
    if (h->headers_done && !h->continue_sent && expects_continue(h)) {
        /* the client waits for this before sending its body (RFC 9110
         * 10.1.1); the request passed its limits and authentication */
        resp_out_raw(out, CONTINUE_LINE, sizeof CONTINUE_LINE - 1);
        h->continue_sent = true;
    }
    /* headers whole: wait for the rest of the body at once */
    size_t header_end = h->body ? (size_t)(h->body - data) : len;
    *need = h->headers_done ? header_end + (size_t)h->content_length : len + 1;
    *used = 0;
    assert(*need > 0 && header_end <= len);
    return HTTP_STEP_NEED_MORE;
}

inv_tenant *http_conn_tenant(const http_conn *h)
{
    assert(conn_ok(h));
    return h->tenant;
}

bool http_conn_expired(const http_conn *h, int64_t now_ms, int64_t last_ms)
{
    assert(h != NULL && h->cfg != NULL);
    assert(h->req_start_ms >= 0);
    if (h->req_start_ms != 0 &&
        now_ms - h->req_start_ms > (int64_t)h->cfg->http_request_timeout_s * 1000)
        return true;
    return now_ms - last_ms > (int64_t)h->cfg->http_idle_timeout_s * 1000;
}
