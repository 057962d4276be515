/*
 * etcd.c — the etcd v3 JSON-gateway client (etcd.h has the contract).
 *
 * Shape of a call: validate the arguments against the named limits, build
 * the JSON body (keys and values base64, int64 as strings, which is what
 * the gateway expects), POST it with the client's one curl handle to each
 * endpoint in turn (call_json), parse the reply with yajl_tree and read
 * the fields (absent means zero / false / empty, as protobuf's JSON does).
 *
 * The watch: a thread per watch runs the streaming POST on its own curl
 * multi handle (so etcd_watch_stop wakes it at once with
 * curl_multi_wakeup), splits the byte stream into top-level JSON objects
 * with a small scanner that tracks strings and depth across write
 * callbacks (stream_feed), and pushes each event into a bounded queue
 * guarded by w->mu (not a hot path: a mutex and two condvars).
 *
 * Invariants: no buffer grows past its named bound (a reply over
 * ETCD_RESPONSE_MAX aborts the transfer); every loop is bounded by an
 * endpoint count, a page count or a deadline; a watch delivers its events
 * in stream order and its end (w->end_rc) only after all of them.
 */
#include "server/etcd.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "alloc.h"
#include "clock.h"

/* A request's JSON: base64 grows the data by 4/3, plus field names and
 * numbers for up to 2 * ETCD_TXN_OPS_MAX entries. */
#define ETCD_REQUEST_JSON_MAX (2u * ETCD_REQUEST_BYTES_MAX + 65536u)
#define ETCD_URL_MAX (ETCD_ENDPOINT_MAX + 32u) /* an endpoint and an API path */
#define ETCD_CSV_MAX (ETCD_ENDPOINTS_MAX * (ETCD_ENDPOINT_MAX + 1u))
#define ETCD_BUF_INITIAL 4096u /* first allocation of a growing buffer */
/* gRPC status codes etcd puts in its error replies ("code"). */
#define GRPC_INVALID_ARGUMENT 3
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_NOT_FOUND 5
#define GRPC_RESOURCE_EXHAUSTED 8
#define GRPC_FAILED_PRECONDITION 9
#define GRPC_OUT_OF_RANGE 11
#define GRPC_UNAVAILABLE 14
/* A watch thread re-checks its stop flag and deadline at least this often
 * (curl_multi_wakeup normally wakes it at once). */
#define ETCD_WATCH_POLL_MS 100
/* TCP keep-alive on a watch: a dead peer's idle stream breaks within
 * about idle + 3 * interval seconds instead of never. */
#define ETCD_WATCH_KEEPIDLE_S 5L
#define ETCD_WATCH_KEEPINTVL_S 2L

/* ---- growing buffers ------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap; /* cap excludes the byte kept for a NUL */
    size_t max; /* len never exceeds it */
} ebuf;

static bool ebuf_ok(const ebuf *b)
{
    return b != NULL && b->len <= b->cap && b->cap <= b->max && (b->p != NULL || b->cap == 0);
}

/* Makes room for n more bytes (and a NUL). false: over b->max or no memory. */
static bool ebuf_reserve(ebuf *b, size_t n)
{
    assert(ebuf_ok(b));
    if (n > b->max - b->len)
        return false;
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap < ETCD_BUF_INITIAL ? ETCD_BUF_INITIAL : b->cap;
    while (cap < b->len + n)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    char *p = inv_realloc(b->p, cap + 1);
    if (p == NULL)
        return false;
    b->p = p;
    b->cap = cap;
    assert(ebuf_ok(b) && b->len + n <= b->cap);
    return true;
}

static bool ebuf_add(ebuf *b, const void *data, size_t n)
{
    if (!ebuf_reserve(b, n))
        return false;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static bool ebuf_str(ebuf *b, const char *s)
{
    assert(s != NULL);
    return ebuf_add(b, s, strlen(s));
}

/* "name":"<base64 of data>" (a leading comma when not the first field). */
static bool ebuf_b64(ebuf *b, const char *name, const void *data, size_t n)
{
    assert(name != NULL && (data != NULL || n == 0));
    size_t enc = 4 * ((n + 2) / 3);
    if (!ebuf_str(b, name) || !ebuf_str(b, "\"") || !ebuf_reserve(b, enc + 2))
        return false;
    int w = EVP_EncodeBlock((unsigned char *)b->p + b->len, data, (int)n);
    assert(w >= 0 && (size_t)w == enc);
    b->len += (size_t)w;
    return ebuf_str(b, "\"");
}

/* "name":"<decimal>" — the gateway takes int64 fields as JSON strings. */
static bool ebuf_i64(ebuf *b, const char *name, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "\"%" PRId64 "\"", v);
    assert(n > 0 && (size_t)n < sizeof num);
    return ebuf_str(b, name) && ebuf_add(b, num, (size_t)n);
}

/* ---- reading replies -------------------------------------------------------- */

static yajl_val jfield(yajl_val obj, const char *name)
{
    assert(name != NULL);
    if (!YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], name) == 0)
            return obj->u.object.values[i];
    return NULL;
}

/* An int64 field: absent or null is 0; a JSON string of digits or a JSON
 * integer. false when it is something else. */
static bool jint(yajl_val obj, const char *name, int64_t *out)
{
    yajl_val v = jfield(obj, name);
    assert(out != NULL);
    *out = 0;
    if (v == NULL || YAJL_IS_NULL(v))
        return true;
    if (YAJL_IS_INTEGER(v)) {
        *out = YAJL_GET_INTEGER(v);
        return true;
    }
    if (!YAJL_IS_STRING(v) || v->u.string[0] == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v->u.string, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)x;
    return true;
}

static bool jbool(yajl_val obj, const char *name)
{
    return YAJL_IS_TRUE(jfield(obj, name));
}

/* A base64 field into a malloc'd buffer (*n bytes and a NUL); absent is
 * empty. false: not base64, or no memory. */
static bool jbytes(yajl_val obj, const char *name, uint8_t **out, size_t *n)
{
    yajl_val v = jfield(obj, name);
    const char *s = YAJL_IS_STRING(v) ? v->u.string : "";
    size_t len = strlen(s);
    assert(out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    if ((v != NULL && !YAJL_IS_STRING(v) && !YAJL_IS_NULL(v)) || len % 4 != 0 ||
        len > ETCD_RESPONSE_MAX)
        return false;
    uint8_t *p = inv_malloc(len / 4 * 3 + 1);
    if (p == NULL)
        return false;
    int d = len == 0 ? 0 : EVP_DecodeBlock(p, (const unsigned char *)s, (int)len);
    size_t pad = (len >= 1 && s[len - 1] == '=') + (len >= 2 && s[len - 2] == '=');
    if (d < 0 || (size_t)d != len / 4 * 3 || (size_t)d < pad) {
        free(p);
        return false;
    }
    *n = (size_t)d - pad;
    p[*n] = '\0';
    *out = p;
    return true;
}

void etcd_kv_clear(etcd_kv *kv)
{
    if (kv == NULL)
        return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

/* A reply's "kv" object into *kv (malloc'd key and value). */
static bool kv_decode(yajl_val o, etcd_kv *kv)
{
    assert(kv != NULL);
    memset(kv, 0, sizeof *kv);
    bool ok = YAJL_IS_OBJECT(o) && jbytes(o, "key", &kv->key, &kv->klen) &&
              jbytes(o, "value", &kv->value, &kv->vlen) &&
              jint(o, "create_revision", &kv->create_revision) &&
              jint(o, "mod_revision", &kv->mod_revision) && jint(o, "version", &kv->version) &&
              jint(o, "lease", &kv->lease);
    if (!ok)
        etcd_kv_clear(kv);
    assert(!ok || kv->key != NULL);
    return ok;
}

/* ---- curl, once per process ---------------------------------------------- */

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_FAILED_INIT;

/* curl_global_init is reference counted, so this one init, never undone,
 * coexists with the webhooks' init/cleanup pair; pthread_once runs it
 * before any etcd thread uses curl. */
static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool curl_ready(void)
{
    pthread_once(&g_curl_once, curl_init_once);
    return g_curl_init_rc == CURLE_OK;
}

/* ---- endpoints --------------------------------------------------------------- */

typedef struct {
    char url[ETCD_ENDPOINTS_MAX][ETCD_ENDPOINT_MAX + 1];
    size_t n;
} endpoint_list;

/* "http://host[:port]" with host of letters, digits, '.', '-' (or a
 * bracketed IPv6 literal) and a port in 1..65535; a trailing '/' is
 * allowed. NULL when good, else what is wrong. */
static const char *endpoint_check(const char *s, size_t len)
{
    static const char scheme[] = "http://";
    size_t i = sizeof scheme - 1;
    assert(s != NULL);
    if (len < i || memcmp(s, scheme, i) != 0)
        return "not an http:// URL";
    if (len > 0 && s[len - 1] == '/')
        len--;
    size_t host = i;
    if (i < len && s[i] == '[') {
        while (i < len && s[i] != ']')
            if (strchr("0123456789abcdefABCDEF:.[", s[i++]) == NULL)
                return "bad IPv6 literal";
        if (i++ == len)
            return "unterminated IPv6 literal";
    } else {
        while (i < len && s[i] != ':')
            if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-",
                       s[i++]) == NULL)
                return "bad byte in the host (a path, user or query is not allowed)";
    }
    if (i == host)
        return "empty host";
    if (i == len)
        return NULL;
    unsigned long port = 0;
    size_t digits = 0;
    for (i++; i < len; i++, digits++) {
        if (s[i] < '0' || s[i] > '9' || digits >= 5)
            return "bad port";
        port = port * 10 + (unsigned long)(s[i] - '0');
    }
    return digits == 0 || port == 0 || port > 65535 ? "bad port" : NULL;
}

static bool endpoints_parse(const char *csv, endpoint_list *out, char *err, size_t errlen)
{
    assert(out != NULL);
    memset(out, 0, sizeof *out);
    if (csv == NULL || csv[0] == '\0') {
        snprintf(err, errlen, "etcd: no endpoint given");
        return false;
    }
    size_t total = strnlen(csv, ETCD_CSV_MAX + 1);
    if (total > ETCD_CSV_MAX) {
        snprintf(err, errlen, "etcd: endpoint list longer than %u bytes", ETCD_CSV_MAX);
        return false;
    }
    for (const char *s = csv;; s++) {
        size_t len = strcspn(s, ",");
        if (out->n == ETCD_ENDPOINTS_MAX) {
            snprintf(err, errlen, "etcd: more than %u endpoints", ETCD_ENDPOINTS_MAX);
            return false;
        }
        const char *bad = len > ETCD_ENDPOINT_MAX ? "too long" : endpoint_check(s, len);
        if (bad != NULL) {
            snprintf(err, errlen, "etcd: endpoint %zu '%.*s': %s", out->n + 1,
                     (int)(len > 64 ? 64 : len), s, bad);
            return false;
        }
        memcpy(out->url[out->n], s, len);
        if (len > 0 && s[len - 1] == '/')
            len--;
        out->url[out->n++][len] = '\0';
        s += len;
        s += *s == '/';
        if (*s == '\0')
            break;
    }
    assert(out->n >= 1 && out->n <= ETCD_ENDPOINTS_MAX);
    return true;
}

/* ---- the client ------------------------------------------------------------- */

struct etcd_client {
    endpoint_list ep;
    size_t current; /* the endpoint tried first */
    uint32_t timeout_ms;
    CURL *curl;
    ebuf req, resp;
    bool resp_over; /* the reply outgrew ETCD_RESPONSE_MAX */
    char err[ETCD_ERROR_MAX];
};

static bool client_ok(const etcd_client *c)
{
    return c != NULL && c->curl != NULL && c->ep.n >= 1 && c->current < c->ep.n &&
           ebuf_ok(&c->req) && ebuf_ok(&c->resp) && c->timeout_ms >= ETCD_TIMEOUT_MS_MIN;
}

static int fail(etcd_client *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(etcd_client *c, int rc, const char *fmt, ...)
{
    va_list ap;
    assert(c != NULL && rc < 0);
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

static size_t resp_write(char *p, size_t size, size_t n, void *ctx)
{
    etcd_client *c = ctx;
    if (!ebuf_add(&c->resp, p, size * n)) {
        c->resp_over = c->resp.len + size * n > c->resp.max;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return size * n;
}

etcd_client *etcd_open(const char *endpoints_csv, uint32_t timeout_ms, char *err, size_t errlen)
{
    char scratch[ETCD_ERROR_MAX];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (timeout_ms < ETCD_TIMEOUT_MS_MIN || timeout_ms > ETCD_TIMEOUT_MS_MAX) {
        snprintf(err, errlen, "etcd: timeout %" PRIu32 " ms not in [%u, %u]", timeout_ms,
                 ETCD_TIMEOUT_MS_MIN, ETCD_TIMEOUT_MS_MAX);
        return NULL;
    }
    etcd_client *c = inv_calloc(1, sizeof *c);
    if (c == NULL || !endpoints_parse(endpoints_csv, &c->ep, err, errlen)) {
        if (c == NULL)
            snprintf(err, errlen, "etcd: out of memory");
        free(c);
        return NULL;
    }
    c->timeout_ms = timeout_ms;
    c->req.max = ETCD_REQUEST_JSON_MAX;
    c->resp.max = ETCD_RESPONSE_MAX;
    c->curl = curl_ready() ? curl_easy_init() : NULL;
    if (c->curl == NULL) {
        snprintf(err, errlen, "etcd: curl initialisation failed");
        free(c);
        return NULL;
    }
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, resp_write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, (void *)c);
    assert(client_ok(c));
    return c;
}

void etcd_close(etcd_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    free(c->req.p);
    free(c->resp.p);
    free(c);
}

const char *etcd_errmsg(const etcd_client *c)
{
    return c == NULL ? "no client" : c->err;
}

const char *etcd_endpoint(const etcd_client *c)
{
    assert(c == NULL || client_ok(c));
    return c == NULL ? "" : c->ep.url[c->current];
}

static int grpc_to_inv(int64_t code)
{
    switch (code) {
    case GRPC_INVALID_ARGUMENT:
        return INV_EINVALID;
    case GRPC_NOT_FOUND:
        return INV_ENOTFOUND;
    case GRPC_OUT_OF_RANGE:
    case GRPC_RESOURCE_EXHAUSTED:
        return INV_ELIMIT;
    case GRPC_FAILED_PRECONDITION:
        return INV_ECONFLICT;
    default:
        return INV_EIO;
    }
}

/* An error reply: {"error":"msg","code":N} for unary calls, or
 * {"error":{"grpc_code":N,"message":"msg"}} inside a stream. Returns true
 * when root is one, with its gRPC code and message. */
static bool reply_error(yajl_val root, int64_t *code, const char **msg)
{
    yajl_val e = jfield(root, "error");
    assert(code != NULL && msg != NULL);
    if (e == NULL)
        return false;
    yajl_val holder = YAJL_IS_OBJECT(e) ? e : root;
    yajl_val m = jfield(holder, "message");
    if (!jint(holder, YAJL_IS_OBJECT(e) ? "grpc_code" : "code", code))
        *code = -1;
    *msg = YAJL_IS_STRING(m) ? m->u.string : YAJL_IS_STRING(e) ? e->u.string : "?";
    return true;
}

typedef enum { ATTEMPT_DONE, ATTEMPT_NEXT } attempt_verdict;

/* One POST to endpoint i. ATTEMPT_NEXT: the endpoint did not answer (or
 * said it is unavailable) and the next may; ATTEMPT_DONE: *rc is final
 * (INV_OK with *out the parsed reply). */
static attempt_verdict attempt(etcd_client *c, size_t i, const char *path, uint64_t budget_ms,
                               yajl_val *out, int *rc)
{
    char url[ETCD_URL_MAX], perr[ETCD_ERROR_MAX];
    long status = 0;
    assert(client_ok(c) && i < c->ep.n && budget_ms >= 1);
    snprintf(url, sizeof url, "%s%s", c->ep.url[i], path);
    c->resp.len = 0;
    c->resp_over = false;
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)budget_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)budget_ms);
    CURLcode cc = curl_easy_perform(c->curl);
    if (cc == CURLE_WRITE_ERROR && c->resp_over) {
        *rc = fail(c, INV_ELIMIT, "etcd %s%s: reply over %u bytes", c->ep.url[i], path,
                   ETCD_RESPONSE_MAX);
        return ATTEMPT_DONE;
    }
    if (cc != CURLE_OK) {
        *rc = fail(c, cc == CURLE_OUT_OF_MEMORY ? INV_ENOMEM : INV_EIO, "etcd %s: %s", c->ep.url[i],
                   curl_easy_strerror(cc));
        return cc == CURLE_OUT_OF_MEMORY ? ATTEMPT_DONE : ATTEMPT_NEXT;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    yajl_val root = c->resp.len == 0 ? NULL : yajl_tree_parse(c->resp.p, perr, sizeof perr);
    int64_t code = 0;
    const char *msg = NULL;
    if (root != NULL && reply_error(root, &code, &msg)) {
        *rc = fail(c, grpc_to_inv(code), "etcd %s%s: %s (code %" PRId64 ")", c->ep.url[i], path,
                   msg, code);
        yajl_tree_free(root);
        return code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ? ATTEMPT_NEXT
                                                                          : ATTEMPT_DONE;
    }
    if (root == NULL || status != 200 || !YAJL_IS_OBJECT(root)) {
        *rc = fail(c, INV_EIO, "etcd %s%s: HTTP %ld, %s", c->ep.url[i], path, status,
                   root == NULL ? "no JSON reply" : "not a JSON object");
        yajl_tree_free(root);
        return status >= 500 ? ATTEMPT_NEXT : ATTEMPT_DONE;
    }
    *out = root;
    *rc = INV_OK;
    return ATTEMPT_DONE;
}

/* POSTs c->req to path, trying each endpoint once from the current one
 * within the client's deadline. INV_OK: *out is the reply (yajl_tree_free
 * it), and the endpoint that gave it becomes the current one. */
static int call_json(etcd_client *c, const char *path, yajl_val *out)
{
    assert(client_ok(c) && path != NULL && out != NULL && c->req.len > 0);
    *out = NULL;
    c->err[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, c->req.p);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req.len);
    uint64_t deadline_ms = clock_mono_ns() / 1000000u + c->timeout_ms;
    int rc = INV_EIO;
    for (size_t tried = 0; tried < c->ep.n; tried++) {
        size_t i = (c->current + tried) % c->ep.n;
        uint64_t now_ms = clock_mono_ns() / 1000000u;
        if (now_ms >= deadline_ms)
            break;
        /* a fair share of what is left, so a silent endpoint cannot use
         * up the time of the others */
        uint64_t budget_ms = (deadline_ms - now_ms) / (c->ep.n - tried);
        if (attempt(c, i, path, budget_ms > 0 ? budget_ms : 1, out, &rc) == ATTEMPT_DONE) {
            if (rc == INV_OK || rc == INV_ELIMIT || rc == INV_ENOTFOUND || rc == INV_EINVALID ||
                rc == INV_ECONFLICT)
                c->current = i; /* it answered */
            return rc;
        }
    }
    if (c->err[0] == '\0') /* the deadline passed before any attempt */
        rc = fail(c, INV_EIO, "etcd: no endpoint answered within %" PRIu32 " ms", c->timeout_ms);
    assert(rc < 0 && *out == NULL);
    return rc;
}

/* The header's revision of a reply (0 when absent). */
static int header_revision(etcd_client *c, yajl_val root, int64_t *revision_out)
{
    int64_t rev = 0;
    if (!jint(jfield(root, "header"), "revision", &rev) || rev < 0)
        return fail(c, INV_EIO, "etcd: bad header revision in the reply");
    if (revision_out != NULL)
        *revision_out = rev;
    return INV_OK;
}

static int req_start(etcd_client *c)
{
    assert(client_ok(c));
    c->req.len = 0;
    return ebuf_str(&c->req, "{") ? INV_OK : fail(c, INV_ENOMEM, "etcd: out of memory");
}

/* Closes the JSON object started by req_start and runs it. */
static int req_run(etcd_client *c, bool built, const char *path, yajl_val *out)
{
    if (!built || !ebuf_str(&c->req, "}"))
        return fail(c, INV_ENOMEM, "etcd %s: request too large or out of memory", path);
    return call_json(c, path, out);
}

static bool key_ok(const void *key, size_t klen)
{
    return key != NULL && klen >= 1 && klen <= ETCD_KEY_MAX;
}

static bool value_ok(const void *val, size_t vlen)
{
    return (val != NULL || vlen == 0) && vlen <= ETCD_VALUE_MAX;
}

/* ---- key/value calls ---------------------------------------------------------- */

int etcd_put(etcd_client *c, const void *key, size_t klen, const void *val, size_t vlen,
             int64_t lease_id, int64_t *revision_out)
{
    if (c == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    if (!key_ok(key, klen) || !value_ok(val, vlen) || lease_id < 0)
        return fail(c, INV_EINVALID,
                    "etcd put: key of %zu bytes (1..%u), value of %zu (<= %u), "
                    "lease %" PRId64,
                    klen, ETCD_KEY_MAX, vlen, ETCD_VALUE_MAX, lease_id);
    int rc = req_start(c);
    if (rc != INV_OK)
        return rc;
    bool b =
        ebuf_b64(&c->req, "\"key\":", key, klen) && ebuf_b64(&c->req, ",\"value\":", val, vlen);
    if (lease_id != 0)
        b = b && ebuf_i64(&c->req, ",\"lease\":", lease_id);
    yajl_val root;
    rc = req_run(c, b, "/v3/kv/put", &root);
    if (rc != INV_OK)
        return rc;
    rc = header_revision(c, root, revision_out);
    yajl_tree_free(root);
    return rc;
}

/* The key just after every key with this prefix (etcd's range_end); an
 * empty prefix, or one of all 0xff bytes, has none: "\0" (to the end). */
static size_t prefix_end(const uint8_t *prefix, size_t plen, uint8_t *end)
{
    assert(plen <= ETCD_KEY_MAX && end != NULL);
    for (size_t i = plen; i > 0; i--)
        if (prefix[i - 1] != 0xff) {
            memcpy(end, prefix, i);
            end[i - 1]++;
            return i;
        }
    end[0] = 0;
    return 1;
}

/* A range request body: key, range_end (elen 0: none), limit, revision. */
static bool range_body(etcd_client *c, const void *key, size_t klen, const void *end, size_t elen,
                       int64_t limit, int64_t revision)
{
    bool b = ebuf_b64(&c->req, "\"key\":", key, klen);
    if (elen > 0)
        b = b && ebuf_b64(&c->req, ",\"range_end\":", end, elen);
    if (limit > 0)
        b = b && ebuf_i64(&c->req, ",\"limit\":", limit);
    if (revision > 0)
        b = b && ebuf_i64(&c->req, ",\"revision\":", revision);
    return b;
}

int etcd_get(etcd_client *c, const void *key, size_t klen, etcd_kv *out, int64_t *revision_out)
{
    if (c == NULL || out == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    memset(out, 0, sizeof *out);
    if (!key_ok(key, klen))
        return fail(c, INV_EINVALID, "etcd get: key of %zu bytes (1..%u)", klen, ETCD_KEY_MAX);
    int rc = req_start(c);
    if (rc != INV_OK)
        return rc;
    yajl_val root;
    rc = req_run(c, range_body(c, key, klen, NULL, 0, 0, 0), "/v3/kv/range", &root);
    if (rc != INV_OK)
        return rc;
    yajl_val kvs = jfield(root, "kvs");
    rc = header_revision(c, root, revision_out);
    if (rc == INV_OK && (kvs == NULL || (YAJL_IS_ARRAY(kvs) && kvs->u.array.len == 0)))
        rc = fail(c, INV_ENOTFOUND, "etcd get: no such key");
    else if (rc == INV_OK && (!YAJL_IS_ARRAY(kvs) || kvs->u.array.len != 1 ||
                              !kv_decode(kvs->u.array.values[0], out)))
        rc = fail(c, INV_EIO, "etcd get: malformed kvs in the reply");
    yajl_tree_free(root);
    assert(rc != INV_OK || out->key != NULL);
    return rc;
}

int etcd_last_key(etcd_client *c, const void *key, size_t klen, const void *range_end, size_t elen,
                  etcd_kv *out)
{
    if (c == NULL || out == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    memset(out, 0, sizeof *out);
    if (!key_ok(key, klen) || !key_ok(range_end, elen))
        return fail(c, INV_EINVALID, "etcd last key: key of %zu bytes, range end of %zu (1..%u)",
                    klen, elen, ETCD_KEY_MAX);
    int rc = req_start(c);
    if (rc != INV_OK)
        return rc;
    yajl_val root;
    /* the greatest key: sorted descending, one, without its value */
    bool body = range_body(c, key, klen, range_end, elen, 1, 0) &&
                ebuf_str(&c->req, ",\"sort_order\":\"DESCEND\",\"sort_target\":\"KEY\","
                                  "\"keys_only\":true");
    rc = req_run(c, body, "/v3/kv/range", &root);
    if (rc != INV_OK)
        return rc;
    yajl_val kvs = jfield(root, "kvs");
    if (kvs == NULL || (YAJL_IS_ARRAY(kvs) && kvs->u.array.len == 0))
        rc = fail(c, INV_ENOTFOUND, "etcd last key: none in the range");
    else if (!YAJL_IS_ARRAY(kvs) || kvs->u.array.len != 1 ||
             !kv_decode(kvs->u.array.values[0], out))
        rc = fail(c, INV_EIO, "etcd last key: malformed kvs in the reply");
    yajl_tree_free(root);
    assert(rc != INV_OK || out->key != NULL);
    return rc;
}

/* State of one etcd_range_prefix across pages. */
typedef struct {
    uint8_t start[ETCD_KEY_MAX + 1], last[ETCD_KEY_MAX];
    size_t slen, llen;
    bool any; /* last holds a key */
} range_cursor;

/* Hands one page's kvs to fn in order, checking that keys only grow (so
 * each is seen once), and moves the cursor after the last. */
static int range_page(etcd_client *c, yajl_val kvs, range_cursor *cur, etcd_kv_fn fn, void *arg)
{
    assert(cur != NULL && fn != NULL);
    size_t n = YAJL_IS_ARRAY(kvs) ? kvs->u.array.len : 0;
    for (size_t i = 0; i < n; i++) {
        etcd_kv kv;
        if (!kv_decode(kvs->u.array.values[i], &kv))
            return fail(c, INV_EIO, "etcd range: malformed kv in the reply");
        int cmp = 0;
        if (cur->any) {
            size_t m = kv.klen < cur->llen ? kv.klen : cur->llen;
            cmp = memcmp(kv.key, cur->last, m);
            cmp = cmp != 0 ? cmp : (kv.klen > cur->llen) - (kv.klen < cur->llen);
        }
        if (kv.klen > ETCD_KEY_MAX || (cur->any && cmp <= 0)) {
            etcd_kv_clear(&kv);
            return fail(c, INV_EIO, "etcd range: keys out of order or over %u bytes", ETCD_KEY_MAX);
        }
        memcpy(cur->last, kv.key, kv.klen);
        cur->llen = kv.klen;
        cur->any = true;
        int r = fn(arg, &kv);
        etcd_kv_clear(&kv);
        if (r != 0)
            return r;
    }
    /* the next page starts just after the last key: last + "\0" */
    memcpy(cur->start, cur->last, cur->llen);
    cur->start[cur->llen] = 0;
    cur->slen = cur->llen + 1;
    return INV_OK;
}

int etcd_range_prefix(etcd_client *c, const void *prefix, size_t plen, int64_t page_limit,
                      etcd_kv_fn fn, void *arg, int64_t *revision_out)
{
    if (c == NULL || fn == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    if ((prefix == NULL && plen > 0) || plen > ETCD_KEY_MAX)
        return fail(c, INV_EINVALID, "etcd range: prefix of %zu bytes (<= %u)", plen, ETCD_KEY_MAX);
    range_cursor *cur = inv_calloc(1, sizeof *cur); /* 8 KiB: not on the stack */
    if (cur == NULL)
        return fail(c, INV_ENOMEM, "etcd range: out of memory");
    uint8_t end[ETCD_KEY_MAX];
    size_t elen = prefix_end(prefix, plen, end);
    if (plen > 0)
        memcpy(cur->start, prefix, plen);
    cur->slen = plen > 0 ? plen : 1; /* an empty prefix: from "\0" */
    int64_t limit =
        page_limit <= 0 || page_limit > ETCD_RANGE_PAGE_MAX ? ETCD_RANGE_PAGE_MAX : page_limit;
    int64_t snapshot = 0;
    int rc = INV_OK;
    bool more = true;
    for (uint32_t page = 0; more && rc == INV_OK; page++) {
        yajl_val root = NULL;
        if (page == ETCD_RANGE_PAGES_MAX) {
            rc = fail(c, INV_ELIMIT, "etcd range: more than %u pages", ETCD_RANGE_PAGES_MAX);
            break;
        }
        rc = req_start(c);
        if (rc == INV_OK)
            rc = req_run(c, range_body(c, cur->start, cur->slen, end, elen, limit, snapshot),
                         "/v3/kv/range", &root);
        if (rc == INV_OK && snapshot == 0)
            rc = header_revision(c, root, &snapshot); /* every page reads this one */
        yajl_val kvs = jfield(root, "kvs");
        more = jbool(root, "more");
        if (rc == INV_OK && more && (!YAJL_IS_ARRAY(kvs) || kvs->u.array.len == 0))
            rc = fail(c, INV_EIO, "etcd range: 'more' with no keys");
        if (rc == INV_OK)
            rc = range_page(c, kvs, cur, fn, arg);
        yajl_tree_free(root);
    }
    free(cur);
    if (rc == INV_OK && revision_out != NULL)
        *revision_out = snapshot;
    return rc;
}

int etcd_delete_range(etcd_client *c, const void *key, size_t klen, const void *range_end,
                      size_t elen, int64_t *deleted, int64_t *revision_out)
{
    if (c == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    if (!key_ok(key, klen) || (range_end == NULL && elen > 0) || elen > ETCD_KEY_MAX)
        return fail(c, INV_EINVALID, "etcd delete: key of %zu bytes, range end of %zu (1..%u)",
                    klen, elen, ETCD_KEY_MAX);
    int rc = req_start(c);
    if (rc != INV_OK)
        return rc;
    yajl_val root;
    rc = req_run(c, range_body(c, key, klen, range_end, elen, 0, 0), "/v3/kv/deleterange", &root);
    if (rc != INV_OK)
        return rc;
    int64_t n = 0;
    rc = header_revision(c, root, revision_out);
    if (rc == INV_OK && (!jint(root, "deleted", &n) || n < 0))
        rc = fail(c, INV_EIO, "etcd delete: bad 'deleted' in the reply");
    if (rc == INV_OK && deleted != NULL)
        *deleted = n;
    yajl_tree_free(root);
    return rc;
}

int etcd_delete_prefix(etcd_client *c, const void *prefix, size_t plen, int64_t *deleted,
                       int64_t *revision_out)
{
    uint8_t end[ETCD_KEY_MAX];
    if (c == NULL)
        return INV_EINVALID;
    if (!key_ok(prefix, plen)) /* an empty prefix would delete everything */
        return fail(c, INV_EINVALID, "etcd delete prefix: prefix of %zu bytes (1..%u)", plen,
                    ETCD_KEY_MAX);
    size_t elen = prefix_end(prefix, plen, end);
    return etcd_delete_range(c, prefix, plen, end, elen, deleted, revision_out);
}

/* ---- transactions ------------------------------------------------------------ */

static const char *const g_target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const g_target_fields[] = {"version", "create_revision", "mod_revision", "value",
                                              "lease"};
static const char *const g_result_names[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

/* Bytes of keys and values a txn carries, or SIZE_MAX when one is invalid. */
static size_t txn_bytes(const etcd_compare *cmp, size_t ncmp, const etcd_op *ops, size_t nops)
{
    size_t total = 0;
    for (size_t i = 0; i < ncmp; i++) {
        const etcd_compare *k = &cmp[i];
        if (!key_ok(k->key, k->klen) || (unsigned)k->target > ETCD_TARGET_LEASE ||
            (unsigned)k->result > ETCD_NOT_EQUAL ||
            (k->target == ETCD_TARGET_VALUE && !value_ok(k->value, k->vlen)))
            return SIZE_MAX;
        total += k->klen + (k->target == ETCD_TARGET_VALUE ? k->vlen : 0);
    }
    for (size_t i = 0; i < nops; i++) {
        const etcd_op *o = &ops[i];
        bool ok = key_ok(o->key, o->klen) &&
                  (o->kind == ETCD_OP_PUT
                       ? value_ok(o->value, o->vlen) && o->lease >= 0
                       : o->kind == ETCD_OP_DELETE && (o->range_end != NULL || o->elen == 0) &&
                             o->elen <= ETCD_KEY_MAX);
        if (!ok)
            return SIZE_MAX;
        total += o->klen + (o->kind == ETCD_OP_PUT ? o->vlen : o->elen);
    }
    return total;
}

static bool txn_compare_json(ebuf *b, const etcd_compare *k, bool first)
{
    bool ok = ebuf_str(b, first ? "{\"target\":\"" : ",{\"target\":\"") &&
              ebuf_str(b, g_target_names[k->target]) && ebuf_str(b, "\",\"result\":\"") &&
              ebuf_str(b, g_result_names[k->result]) && ebuf_str(b, "\"") &&
              ebuf_b64(b, ",\"key\":", k->key, k->klen);
    char field[32];
    snprintf(field, sizeof field, ",\"%s\":", g_target_fields[k->target]);
    ok = ok && (k->target == ETCD_TARGET_VALUE ? ebuf_b64(b, field, k->value, k->vlen)
                                               : ebuf_i64(b, field, k->number));
    return ok && ebuf_str(b, "}");
}

static bool txn_op_json(ebuf *b, const etcd_op *o, bool first)
{
    bool ok = ebuf_str(b, first ? "{" : ",{");
    if (o->kind == ETCD_OP_PUT) {
        ok = ok && ebuf_b64(b, "\"request_put\":{\"key\":", o->key, o->klen) &&
             ebuf_b64(b, ",\"value\":", o->value, o->vlen);
        if (o->lease != 0)
            ok = ok && ebuf_i64(b, ",\"lease\":", o->lease);
    } else {
        ok = ok && ebuf_b64(b, "\"request_delete_range\":{\"key\":", o->key, o->klen);
        if (o->elen > 0)
            ok = ok && ebuf_b64(b, ",\"range_end\":", o->range_end, o->elen);
    }
    return ok && ebuf_str(b, "}}");
}

int etcd_txn_put_if(etcd_client *c, const etcd_compare *cmp, size_t ncmp, const etcd_op *ops,
                    size_t nops, bool *succeeded, int64_t *revision_out)
{
    if (c == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    if (cmp == NULL || ncmp == 0 || ncmp > ETCD_TXN_OPS_MAX || (ops == NULL && nops > 0) ||
        nops > ETCD_TXN_OPS_MAX || succeeded == NULL)
        return fail(c, INV_EINVALID, "etcd txn: %zu compares, %zu ops (1..%u, 0..%u)", ncmp, nops,
                    ETCD_TXN_OPS_MAX, ETCD_TXN_OPS_MAX);
    size_t bytes = txn_bytes(cmp, ncmp, ops, nops);
    if (bytes > ETCD_REQUEST_BYTES_MAX)
        return fail(c, INV_EINVALID, "etcd txn: a bad compare or op, or over %u bytes",
                    ETCD_REQUEST_BYTES_MAX);
    int rc = req_start(c);
    if (rc != INV_OK)
        return rc;
    bool b = ebuf_str(&c->req, "\"compare\":[");
    for (size_t i = 0; i < ncmp; i++)
        b = b && txn_compare_json(&c->req, &cmp[i], i == 0);
    b = b && ebuf_str(&c->req, "],\"success\":[");
    for (size_t i = 0; i < nops; i++)
        b = b && txn_op_json(&c->req, &ops[i], i == 0);
    b = b && ebuf_str(&c->req, "]");
    yajl_val root;
    rc = req_run(c, b, "/v3/kv/txn", &root);
    if (rc != INV_OK)
        return rc;
    *succeeded = jbool(root, "succeeded");
    rc = header_revision(c, root, revision_out);
    yajl_tree_free(root);
    return rc;
}

/* ---- leases and compaction ------------------------------------------------- */

int etcd_lease_grant(etcd_client *c, int64_t ttl_s, int64_t *lease_id_out, int64_t *granted_ttl_s)
{
    if (c == NULL || lease_id_out == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    if (ttl_s < 1 || ttl_s > ETCD_LEASE_TTL_S_MAX)
        return fail(c, INV_EINVALID, "etcd lease grant: TTL %" PRId64 " s", ttl_s);
    int rc = req_start(c);
    if (rc != INV_OK)
        return rc;
    yajl_val root;
    rc = req_run(c, ebuf_i64(&c->req, "\"TTL\":", ttl_s), "/v3/lease/grant", &root);
    if (rc != INV_OK)
        return rc;
    int64_t id = 0, ttl = 0;
    if (!jint(root, "ID", &id) || !jint(root, "TTL", &ttl) || id <= 0 || ttl <= 0)
        rc = fail(c, INV_EIO, "etcd lease grant: bad ID or TTL in the reply");
    yajl_tree_free(root);
    if (rc == INV_OK) {
        *lease_id_out = id;
        if (granted_ttl_s != NULL)
            *granted_ttl_s = ttl;
    }
    return rc;
}

/* A body of one lease id: {"ID":"n"}. */
static int lease_call(etcd_client *c, int64_t lease_id, const char *path, yajl_val *root)
{
    if (lease_id <= 0)
        return fail(c, INV_EINVALID, "etcd %s: lease id %" PRId64, path, lease_id);
    int rc = req_start(c);
    return rc != INV_OK ? rc : req_run(c, ebuf_i64(&c->req, "\"ID\":", lease_id), path, root);
}

int etcd_lease_keepalive(etcd_client *c, int64_t lease_id, int64_t *ttl_left_s)
{
    if (c == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    yajl_val root;
    int rc = lease_call(c, lease_id, "/v3/lease/keepalive", &root);
    if (rc != INV_OK)
        return rc;
    /* a stream of one: {"result":{"ID":..,"TTL":..}}; no TTL: gone */
    int64_t ttl = 0;
    yajl_val res = jfield(root, "result");
    if (!YAJL_IS_OBJECT(res) || !jint(res, "TTL", &ttl) || ttl < 0)
        rc = fail(c, INV_EIO, "etcd lease keepalive: malformed reply");
    else if (ttl == 0)
        rc = fail(c, INV_ENOTFOUND, "etcd lease keepalive: lease %" PRId64 " expired or revoked",
                  lease_id);
    yajl_tree_free(root);
    if (rc == INV_OK && ttl_left_s != NULL)
        *ttl_left_s = ttl;
    return rc;
}

int etcd_lease_revoke(etcd_client *c, int64_t lease_id)
{
    if (c == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    yajl_val root;
    int rc = lease_call(c, lease_id, "/v3/lease/revoke", &root);
    if (rc == INV_OK)
        yajl_tree_free(root);
    return rc;
}

int etcd_compact(etcd_client *c, int64_t revision, bool physical)
{
    if (c == NULL)
        return INV_EINVALID;
    assert(client_ok(c));
    if (revision <= 0)
        return fail(c, INV_EINVALID, "etcd compact: revision %" PRId64, revision);
    int rc = req_start(c);
    if (rc != INV_OK)
        return rc;
    bool b = ebuf_i64(&c->req, "\"revision\":", revision) &&
             ebuf_str(&c->req, physical ? ",\"physical\":true" : "");
    yajl_val root;
    rc = req_run(c, b, "/v3/kv/compaction", &root);
    if (rc == INV_OK)
        yajl_tree_free(root);
    return rc;
}

/* ---- watches ------------------------------------------------------------------ */

/* One queued event: the struct and its key and value bytes, one block. */
typedef struct {
    etcd_event ev;
    uint8_t data[];
} event_node;

typedef enum { WATCH_STARTING, WATCH_CREATED, WATCH_ENDED } watch_state;

struct etcd_watch {
    /* fixed at start */
    endpoint_list ep;
    size_t first; /* the endpoint tried first */
    uint32_t timeout_ms;
    ebuf body; /* the create request */
    CURLM *multi;
    pthread_t thread;
    atomic_bool stop;
    /* the thread's own */
    CURL *easy;
    ebuf in; /* stream bytes not yet parsed */
    size_t scan; /* in.p[0..scan) scanned: depth and in_str describe it */
    int depth;
    bool in_str, esc, failed;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t changed; /* state, queue or stop changed */
    watch_state state;
    int end_rc;
    int64_t compact_revision;
    char err[ETCD_ERROR_MAX];
    event_node *queue[ETCD_WATCH_QUEUE_MAX];
    size_t head, count;
    /* the consumer's own */
    event_node *current; /* the event last returned */
};

static bool stopping(etcd_watch *w)
{
    /* acquire: pairs with etcd_watch_stop's release store */
    return atomic_load_explicit(&w->stop, memory_order_acquire);
}

/* Ends the watch (first end wins) and wakes the consumer. */
static void watch_end(etcd_watch *w, int rc, int64_t compact_revision, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void watch_end(etcd_watch *w, int rc, int64_t compact_revision, const char *fmt, ...)
{
    va_list ap;
    assert(rc < 0);
    pthread_mutex_lock(&w->mu);
    if (w->state != WATCH_ENDED) {
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
        w->state = WATCH_ENDED;
        w->end_rc = rc;
        w->compact_revision = compact_revision;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Queues one event, waiting while the queue is full (backpressure).
 * false when the watch is stopping. */
static bool watch_push(etcd_watch *w, event_node *e)
{
    assert(e != NULL);
    pthread_mutex_lock(&w->mu);
    while (w->count == ETCD_WATCH_QUEUE_MAX && !stopping(w))
        pthread_cond_wait(&w->changed, &w->mu);
    bool ok = w->count < ETCD_WATCH_QUEUE_MAX && !stopping(w);
    if (ok) {
        w->queue[(w->head + w->count) % ETCD_WATCH_QUEUE_MAX] = e;
        w->count++;
        w->state = WATCH_CREATED; /* events imply a registered watch */
        pthread_cond_broadcast(&w->changed);
    }
    assert(w->count <= ETCD_WATCH_QUEUE_MAX);
    pthread_mutex_unlock(&w->mu);
    if (!ok)
        free(e);
    return ok;
}

/* One event of a batch into a queued node. */
static bool event_take(etcd_watch *w, yajl_val jev)
{
    etcd_kv kv;
    yajl_val type = jfield(jev, "type");
    if (!kv_decode(jfield(jev, "kv"), &kv)) {
        watch_end(w, INV_EIO, 0, "etcd watch: malformed event");
        return false;
    }
    event_node *e = inv_malloc(sizeof *e + kv.klen + kv.vlen + 1);
    if (e == NULL) {
        etcd_kv_clear(&kv);
        watch_end(w, INV_ENOMEM, 0, "etcd watch: out of memory");
        return false;
    }
    memcpy(e->data, kv.key, kv.klen);
    memcpy(e->data + kv.klen, kv.value, kv.vlen);
    e->data[kv.klen + kv.vlen] = 0;
    e->ev = (etcd_event){.type = YAJL_IS_STRING(type) && strcmp(type->u.string, "DELETE") == 0
                                     ? ETCD_EVENT_DELETE
                                     : ETCD_EVENT_PUT,
                         .key = e->data,
                         .klen = kv.klen,
                         .value = e->data + kv.klen,
                         .vlen = kv.vlen,
                         .create_revision = kv.create_revision,
                         .mod_revision = kv.mod_revision,
                         .version = kv.version,
                         .lease = kv.lease};
    etcd_kv_clear(&kv);
    return watch_push(w, e);
}

/* One complete JSON object of the stream: {"result":{...}} or an error. */
static bool stream_object(etcd_watch *w, const char *json)
{
    char perr[ETCD_ERROR_MAX];
    int64_t code = 0, compact = 0;
    const char *msg = NULL;
    yajl_val root = yajl_tree_parse(json, perr, sizeof perr);
    yajl_val res = jfield(root, "result");
    bool ok = false;
    if (root == NULL || !YAJL_IS_OBJECT(root))
        watch_end(w, INV_EIO, 0, "etcd watch: bad JSON in the stream: %s", perr);
    else if (reply_error(root, &code, &msg))
        watch_end(w, grpc_to_inv(code) == INV_ELIMIT ? INV_ELIMIT : INV_EIO, 0,
                  "etcd watch: %s (code %" PRId64 ")", msg, code);
    else if (!YAJL_IS_OBJECT(res) || !jint(res, "compact_revision", &compact))
        watch_end(w, INV_EIO, 0, "etcd watch: no result in a stream object");
    else if (jbool(res, "canceled")) {
        yajl_val why = jfield(res, "cancel_reason");
        if (compact > 0)
            watch_end(w, INV_ELIMIT, compact, "etcd watch: history compacted up to %" PRId64,
                      compact);
        else
            watch_end(w, INV_EIO, 0, "etcd watch: cancelled by etcd: %s",
                      YAJL_IS_STRING(why) ? why->u.string : "no reason given");
    } else {
        yajl_val evs = jfield(res, "events");
        ok = true;
        if (jbool(res, "created")) {
            pthread_mutex_lock(&w->mu);
            if (w->state == WATCH_STARTING)
                w->state = WATCH_CREATED;
            pthread_cond_broadcast(&w->changed);
            pthread_mutex_unlock(&w->mu);
        }
        for (size_t i = 0; ok && YAJL_IS_ARRAY(evs) && i < evs->u.array.len; i++)
            ok = event_take(w, evs->u.array.values[i]);
    }
    yajl_tree_free(root);
    return ok;
}

/* Scans new bytes of w->in for the ends of top-level objects (tracking
 * strings, escapes and depth, so braces inside strings do not count) and
 * parses each one whole. Objects may span callbacks or share one. */
static bool stream_scan(etcd_watch *w)
{
    size_t obj = 0; /* start of the object being scanned */
    assert(w->scan <= w->in.len);
    for (size_t i = w->scan; i < w->in.len; i++) {
        char ch = w->in.p[i];
        if (w->in_str) { /* only an unescaped quote ends a string */
            if (w->esc)
                w->esc = false;
            else if (ch == '\\')
                w->esc = true;
            else if (ch == '"')
                w->in_str = false;
            continue;
        }
        if (w->depth == 0 && (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')) {
            obj = i + 1;
            continue;
        }
        if (w->depth == 0 && ch != '{') {
            watch_end(w, INV_EIO, 0, "etcd watch: stream byte 0x%02x outside an object",
                      (unsigned char)ch);
            return false;
        }
        w->in_str = ch == '"';
        w->depth += ch == '{' || ch == '[';
        w->depth -= ch == '}' || ch == ']';
        if (w->depth < 0) {
            watch_end(w, INV_EIO, 0, "etcd watch: unbalanced JSON in the stream");
            return false;
        }
        if (w->depth == 0) { /* an object ended at i: parse it in place */
            char saved = w->in.p[i + 1]; /* in.p has a byte past len */
            w->in.p[i + 1] = '\0';
            bool ok = stream_object(w, w->in.p + obj);
            w->in.p[i + 1] = saved;
            if (!ok)
                return false;
            obj = i + 1;
        }
    }
    /* keep the unfinished object (or nothing) at the buffer's start */
    if (w->depth == 0 && !w->in_str)
        obj = w->in.len;
    memmove(w->in.p, w->in.p + obj, w->in.len - obj);
    w->in.len -= obj;
    w->scan = w->in.len;
    assert(w->depth >= 0 && w->in.len <= w->in.max);
    return true;
}

static size_t stream_write(char *p, size_t size, size_t n, void *ctx)
{
    etcd_watch *w = ctx;
    if (stopping(w) || w->failed)
        return 0;
    if (!ebuf_add(&w->in, p, size * n)) {
        watch_end(w, INV_ELIMIT, 0, "etcd watch: a stream object over %u bytes", ETCD_RESPONSE_MAX);
        w->failed = true;
        return 0;
    }
    w->failed = !stream_scan(w);
    return w->failed ? 0 : size * n;
}

static watch_state watch_state_of(etcd_watch *w)
{
    pthread_mutex_lock(&w->mu);
    watch_state s = w->state;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* Runs the stream on endpoint i until it ends, stop, or (before etcd
 * registered the watch) the attempt's deadline. */
static CURLcode stream_run(etcd_watch *w, size_t i, uint64_t deadline_ns)
{
    char url[ETCD_URL_MAX];
    snprintf(url, sizeof url, "%s/v3/watch", w->ep.url[i]);
    w->in.len = w->scan = 0;
    w->depth = 0;
    w->in_str = w->esc = w->failed = false;
    curl_easy_setopt(w->easy, CURLOPT_URL, url);
    curl_multi_add_handle(w->multi, w->easy);
    CURLcode rc = CURLE_OK;
    int running = 1;
    while (running > 0 && !stopping(w)) {
        if (curl_multi_perform(w->multi, &running) != CURLM_OK)
            break;
        int left = 0;
        for (CURLMsg *m; (m = curl_multi_info_read(w->multi, &left)) != NULL;)
            if (m->msg == CURLMSG_DONE)
                rc = m->data.result;
        if (running == 0)
            break;
        if (clock_mono_ns() >= deadline_ns && watch_state_of(w) == WATCH_STARTING) {
            rc = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        curl_multi_poll(w->multi, NULL, 0, ETCD_WATCH_POLL_MS, NULL);
    }
    curl_multi_remove_handle(w->multi, w->easy);
    return rc;
}

static void *watch_main(void *arg)
{
    etcd_watch *w = arg;
    CURLcode rc = CURLE_OK;
    size_t i = w->first;
    /* before etcd registered the watch, each endpoint once, each with a
     * share of the start timeout; after, the one stream that worked */
    for (size_t tried = 0; tried < w->ep.n && !stopping(w); tried++, i = (i + 1) % w->ep.n) {
        uint64_t share_ns = (uint64_t)w->timeout_ms * 1000000u / w->ep.n;
        rc = stream_run(w, i, clock_mono_ns() + share_ns);
        if (watch_state_of(w) != WATCH_STARTING)
            break;
    }
    if (stopping(w))
        watch_end(w, INV_EIO, 0, "etcd watch: stopped");
    else
        watch_end(w, INV_EIO, 0, "etcd watch %s: stream ended: %s", w->ep.url[i],
                  rc == CURLE_OK ? "closed by etcd" : curl_easy_strerror(rc));
    return NULL;
}

/* The watch's curl handle for the streaming POST. */
static bool watch_curl_setup(etcd_watch *w, struct curl_slist **headers)
{
    *headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* gRPC metadata through the gateway: etcd cancels the watch when its
     * member loses the leader, instead of staying silent */
    struct curl_slist *h =
        *headers == NULL ? NULL : curl_slist_append(*headers, "Grpc-Metadata-hasleader: true");
    w->easy = h == NULL ? NULL : curl_easy_init();
    w->multi = w->easy == NULL ? NULL : curl_multi_init();
    if (h == NULL || w->multi == NULL)
        return false;
    curl_easy_setopt(w->easy, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(w->easy, CURLOPT_POSTFIELDS, w->body.p);
    curl_easy_setopt(w->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->body.len);
    curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(w->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(w->easy, CURLOPT_TCP_KEEPIDLE, ETCD_WATCH_KEEPIDLE_S);
    curl_easy_setopt(w->easy, CURLOPT_TCP_KEEPINTVL, ETCD_WATCH_KEEPINTVL_S);
    curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, (void *)w);
    return true;
}

static void watch_free(etcd_watch *w, struct curl_slist *headers)
{
    for (size_t k = 0; k < w->count; k++)
        free(w->queue[(w->head + k) % ETCD_WATCH_QUEUE_MAX]);
    free(w->current);
    if (w->multi != NULL)
        curl_multi_cleanup(w->multi);
    if (w->easy != NULL)
        curl_easy_cleanup(w->easy);
    curl_slist_free_all(headers);
    free(w->body.p);
    free(w->in.p);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* The headers list lives as long as the handle; kept beside the watch. */
typedef struct {
    etcd_watch w;
    struct curl_slist *headers;
} watch_block;

static bool watch_body(etcd_watch *w, const void *prefix, size_t plen, int64_t start_revision)
{
    uint8_t end[ETCD_KEY_MAX];
    static const uint8_t zero = 0;
    size_t elen = prefix_end(prefix, plen, end);
    bool b = ebuf_str(&w->body, "{\"create_request\":{") &&
             ebuf_b64(&w->body, "\"key\":", plen > 0 ? prefix : &zero, plen > 0 ? plen : 1) &&
             ebuf_b64(&w->body, ",\"range_end\":", end, elen);
    if (start_revision > 0)
        b = b && ebuf_i64(&w->body, ",\"start_revision\":", start_revision);
    return b && ebuf_str(&w->body, "}}");
}

/* Waits (bounded by the client's timeout) until etcd registered the watch
 * or its thread gave up. */
static bool watch_wait_created(etcd_watch *w, char *err, size_t errlen)
{
    uint64_t deadline_ns = clock_mono_ns() + (uint64_t)w->timeout_ms * 1000000u;
    pthread_mutex_lock(&w->mu);
    while (w->state == WATCH_STARTING && clock_mono_ns() < deadline_ns) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += ETCD_WATCH_POLL_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->changed, &w->mu, &ts);
    }
    bool ok = w->state == WATCH_CREATED || (w->state == WATCH_ENDED && w->end_rc == INV_ELIMIT);
    if (!ok)
        snprintf(err, errlen, "%s",
                 w->state == WATCH_ENDED ? w->err : "etcd watch: not registered in time");
    pthread_mutex_unlock(&w->mu);
    return ok;
}

etcd_watch *etcd_watch_start(etcd_client *c, const void *prefix, size_t plen,
                             int64_t start_revision, char *err, size_t errlen)
{
    char scratch[ETCD_ERROR_MAX];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (c == NULL || (prefix == NULL && plen > 0) || plen > ETCD_KEY_MAX || start_revision < 0) {
        snprintf(err, errlen, "etcd watch: bad client, prefix (%zu bytes) or revision", plen);
        return NULL;
    }
    assert(client_ok(c));
    watch_block *blk = inv_calloc(1, sizeof *blk);
    if (blk == NULL) {
        snprintf(err, errlen, "etcd watch: out of memory");
        return NULL;
    }
    etcd_watch *w = &blk->w;
    w->ep = c->ep;
    w->first = c->current;
    w->timeout_ms = c->timeout_ms;
    w->body.max = 2 * ETCD_KEY_MAX + 256u;
    w->in.max = ETCD_RESPONSE_MAX;
    atomic_init(&w->stop, false);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->changed, NULL);
    bool ok = watch_body(w, prefix, plen, start_revision) && watch_curl_setup(w, &blk->headers);
    if (!ok || pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        snprintf(err, errlen, "etcd watch: out of memory or threads");
        watch_free(w, blk->headers);
        return NULL;
    }
    if (!watch_wait_created(w, err, errlen)) {
        etcd_watch_stop(w);
        return NULL;
    }
    return w;
}

int etcd_watch_next(etcd_watch *w, etcd_event *ev, uint32_t timeout_ms)
{
    if (w == NULL || ev == NULL)
        return INV_EINVALID;
    uint64_t deadline_ns = clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    free(w->current); /* the consumer is done with the last event */
    w->current = NULL;
    pthread_mutex_lock(&w->mu);
    while (w->count == 0 && w->state != WATCH_ENDED && clock_mono_ns() < deadline_ns) {
        uint64_t left_ns = deadline_ns - clock_mono_ns();
        uint64_t wait_ns = left_ns < (uint64_t)ETCD_WATCH_POLL_MS * 1000000u
                               ? left_ns
                               : (uint64_t)ETCD_WATCH_POLL_MS * 1000000u;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)wait_ns;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->changed, &w->mu, &ts);
    }
    int rc = INV_ENOTFOUND;
    if (w->count > 0) {
        w->current = w->queue[w->head];
        w->head = (w->head + 1) % ETCD_WATCH_QUEUE_MAX;
        w->count--;
        pthread_cond_broadcast(&w->changed); /* room for the watch thread */
        *ev = w->current->ev;
        rc = INV_OK;
    } else if (w->state == WATCH_ENDED) {
        rc = w->end_rc; /* after every queued event */
    }
    assert(w->count < ETCD_WATCH_QUEUE_MAX || rc == INV_ENOTFOUND || rc < 0);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int64_t etcd_watch_compact_revision(etcd_watch *w)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    int64_t r = w->compact_revision;
    pthread_mutex_unlock(&w->mu);
    return r;
}

const char *etcd_watch_errmsg(etcd_watch *w)
{
    if (w == NULL)
        return "no watch";
    /* err is written once, under mu, when the watch ends; the consumer
     * reads it after seeing the end under mu, so it no longer changes */
    pthread_mutex_lock(&w->mu);
    const char *e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

void etcd_watch_stop(etcd_watch *w)
{
    if (w == NULL)
        return;
    watch_block *blk = (watch_block *)w;
    /* release: the thread's acquire loads see the flag; the wakeup ends
     * its curl_multi_poll, the broadcast a wait on a full queue */
    atomic_store_explicit(&w->stop, true, memory_order_release);
    curl_multi_wakeup(w->multi);
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    watch_free(w, blk->headers);
}
