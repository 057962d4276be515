/*
 * test_http_client.h — the HTTP suites' one libcurl client (tests/test_http*.c):
 * a request on a keep-alive handle against the invcored that
 * test_server_harness.h started, its status, body (parsed with yajl when it
 * is JSON) and the response headers the dialects use (Link, Content-Type,
 * Retry-After, Allow).
 *
 * Every request it sends can also be kept as a seed of fuzz/fuzz_http: when
 * INVCORE_HTTP_CORPUS names a directory, the raw bytes libcurl wrote (request
 * line, headers and body, as the server read them) are saved there in
 * fuzz_http's input format under a name derived from their content, so a
 * request sent twice is one file (`make fuzz-corpus-http` does this for
 * every HTTP suite). The format (fuzz/fuzz_http.c): a mode byte, 0 for a
 * server without a password; for one with a password, mode 1, a length
 * byte and the password, then the stream. The password is inferred from the
 * exchange: a request the server let through carrying a token header
 * (Access-Token, X-Shopify-Access-Token, Authorization bare or "Bearer")
 * is seeded with that token as the password; one it answered 401 with a
 * password that is not its token ("pw"), so the fuzzer sees the refusal
 * too; one without a token and not refused, with none. A request with a
 * body also seeds fuzz_http's JSON mode (0x80 then the body).
 * hc_corpus_save_stream seeds a raw exchange (a suite's own socket).
 *
 * Invariants: hc_do never asserts (client threads call it) and always leaves
 * r filled (status -1 on a transport error); a body larger than
 * HC_BODY_MAX is cut there and marked truncated, never overrun. An hc_resp
 * is large (HC_BODY_MAX): client threads keep theirs on the heap. It starts
 * zeroed (static or calloc); reused, each hc_do frees the last reply's
 * parsed JSON, and hc_free frees the last one.
 */
#ifndef TEST_HTTP_CLIENT_H
#define TEST_HTTP_CLIENT_H

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define HC_BODY_MAX (1u << 18) /* bytes of a response body kept */
#define HC_HEADER_VALUE_MAX 1024 /* bytes of one kept header value */
#define HC_URL_MAX 16384 /* a 414 test sends a path over the 8 KiB default limit */
#define HC_HEAD_MAX (8u << 10) /* bytes of the response's header lines kept */
#define HC_HEADERS_MAX 8 /* extra request headers per call */
#define HC_TIMEOUT_MS 10000L
#define HC_RAW_MAX (1u << 20) /* bytes of one request kept for the corpus */
#define HC_CORPUS_ENV "INVCORE_HTTP_CORPUS"
#define HC_SEED_BYTES_MAX \
    (32u << 10) /* a longer request seeds nothing: the
                                          corpus stays small, and fuzz_http's
                                          limits refuse it within 16 KiB */
#define HC_PASSWORD_MAX 64u /* fuzz_http's FUZZ_PASSWORD_MAX */
#define HC_MODE_OPEN 0x00 /* fuzz_http's mode bits */
#define HC_MODE_PASSWORD 0x01
#define HC_MODE_JSON 0x80

typedef struct {
    long status; /* -1: transport error */
    char body[HC_BODY_MAX];
    size_t len;
    bool truncated;
    char link[HC_HEADER_VALUE_MAX];
    char content_type[HC_HEADER_VALUE_MAX];
    char retry_after[HC_HEADER_VALUE_MAX];
    char allow[HC_HEADER_VALUE_MAX];
    char head[HC_HEAD_MAX]; /* every response header line, CRLFs kept (cut at HC_HEAD_MAX) */
    size_t head_len;
    long new_connections; /* CURLINFO_NUM_CONNECTS: 0 when the call reused one */
    yajl_val json; /* NULL: empty or not JSON; hc_free releases it */
} hc_resp;

/* The request bytes libcurl wrote for one call (corpus capture only). */
typedef struct {
    char *bytes;
    size_t len;
} hc_raw;

static inline size_t hc_on_body(char *p, size_t size, size_t n, void *ud)
{
    hc_resp *r = ud;
    size_t len = size * n;
    size_t room = sizeof r->body - 1 - r->len;
    size_t take = len < room ? len : room;
    if (take < len)
        r->truncated = true;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

/* Keeps name's value when the header line p (len bytes, CRLF included) is it. */
static inline void hc_keep_header(const char *p, size_t len, const char *name, char *out,
                                  size_t cap)
{
    size_t nl = strlen(name);
    if (len < nl + 2 || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
        return;
    size_t start = nl + 1;
    while (start < len && p[start] == ' ')
        start++;
    size_t end = len;
    while (end > start && (p[end - 1] == '\r' || p[end - 1] == '\n'))
        end--;
    snprintf(out, cap, "%.*s", (int)(end - start), p + start);
}

static inline size_t hc_on_header(char *p, size_t size, size_t n, void *ud)
{
    hc_resp *r = ud;
    size_t len = size * n;
    hc_keep_header(p, len, "Link", r->link, sizeof r->link);
    hc_keep_header(p, len, "Content-Type", r->content_type, sizeof r->content_type);
    hc_keep_header(p, len, "Retry-After", r->retry_after, sizeof r->retry_after);
    hc_keep_header(p, len, "Allow", r->allow, sizeof r->allow);
    size_t room = sizeof r->head - 1 - r->head_len;
    size_t take = len < room ? len : room;
    memcpy(r->head + r->head_len, p, take);
    r->head_len += take;
    r->head[r->head_len] = '\0';
    return len;
}

static inline int hc_on_debug(CURL *c, curl_infotype type, char *data, size_t size, void *ud)
{
    (void)c;
    hc_raw *raw = ud;
    if (type != CURLINFO_HEADER_OUT && type != CURLINFO_DATA_OUT)
        return 0;
    if (raw->len + size > HC_RAW_MAX)
        return 0; /* a seed is cut, never overrun */
    if (raw->bytes == NULL && (raw->bytes = malloc(HC_RAW_MAX)) == NULL)
        return 0;
    memcpy(raw->bytes + raw->len, data, size);
    raw->len += size;
    return 0;
}

/* Writes seed (mode byte, [password], bytes) to $INVCORE_HTTP_CORPUS as
 * <fnv1a-64 of the seed>.http, through a temporary name and rename(), so
 * suites running at once never leave a half-written seed. */
static inline void hc_corpus_write(unsigned char mode, const char *password, const char *bytes,
                                   size_t len)
{
    const char *dir = getenv(HC_CORPUS_ENV);
    size_t pw_len = password ? strlen(password) : 0;
    if (dir == NULL || dir[0] == '\0' || len == 0 || len > HC_SEED_BYTES_MAX ||
        pw_len > HC_PASSWORD_MAX)
        return;
    unsigned char head[2 + HC_PASSWORD_MAX];
    size_t head_len = 0;
    head[head_len++] = mode;
    if (mode & HC_MODE_PASSWORD) {
        head[head_len++] = (unsigned char)pw_len;
        memcpy(head + head_len, password, pw_len);
        head_len += pw_len;
    }
    uint64_t h = 1469598103934665603ULL; /* FNV-1a offset basis */
    for (size_t i = 0; i < head_len; i++)
        h = (h ^ head[i]) * 1099511628211ULL; /* FNV prime */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)bytes[i]) * 1099511628211ULL;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%016llx.http", dir, (unsigned long long)h);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        fprintf(stderr, "test_http_client: %s: %s\n", tmp, strerror(errno));
        return;
    }
    bool ok = fwrite(head, 1, head_len, f) == head_len && fwrite(bytes, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "test_http_client: %s: %s\n", path, strerror(errno));
        remove(tmp);
    }
}

/* Seeds a raw exchange: bytes as one connection's stream to a server whose
 * password is password (NULL: none). */
static inline void hc_corpus_save_stream(const char *bytes, size_t len, const char *password)
{
    hc_corpus_write(password ? HC_MODE_PASSWORD : HC_MODE_OPEN, password, bytes, len);
}

/* The token a request carries in one of the seeds' token headers ("Name:
 * value" lines), copied into tok; false when none does. */
static inline bool hc_request_token(const char *const *headers, char *tok, size_t cap)
{
    static const char *const names[] = {
        "Access-Token:", "X-Shopify-Access-Token:", "Authorization:"};
    for (size_t i = 0; headers && headers[i] && i < HC_HEADERS_MAX; i++) {
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            size_t n = strlen(names[k]);
            if (strncasecmp(headers[i], names[k], n) != 0)
                continue;
            const char *v = headers[i] + n;
            while (*v == ' ')
                v++;
            if (k == 2 && strncasecmp(v, "Bearer ", 7) == 0)
                v += 7;
            snprintf(tok, cap, "%s", v);
            return tok[0] != '\0';
        }
    }
    return false;
}

/* libcurl's Host line names the suite's server port, a new one per test:
 * the seed says "Host: localhost" instead, so the same request in two
 * tests (or two runs) is one seed. */
static inline void hc_seed_host(hc_raw *raw)
{
    static const char line[] = "\r\nHost: ", host[] = "localhost";
    const char *end = memmem(raw->bytes, raw->len, "\r\n\r\n", 4);
    char *at = end ? memmem(raw->bytes, (size_t)(end - raw->bytes), line, sizeof line - 1) : NULL;
    if (at == NULL)
        return;
    char *v = at + sizeof line - 1;
    char *eol = memmem(v, (size_t)(end + 2 - v), "\r\n", 2);
    size_t old_len = (size_t)(eol - v), new_len = sizeof host - 1;
    if (old_len < new_len)
        return; /* never longer: "127.0.0.1:N" is */
    memcpy(v, host, new_len);
    memmove(v + new_len, eol, raw->len - (size_t)(eol - raw->bytes));
    raw->len -= old_len - new_len;
}

/* Seeds one hc_do exchange (the password inferred: see the top). */
static inline void hc_corpus_save(hc_raw *raw, const char *const *headers, const char *body,
                                  long status)
{
    hc_seed_host(raw);
    char tok[HC_PASSWORD_MAX + 1];
    bool has_tok = hc_request_token(headers, tok, sizeof tok);
    if (status == 401)
        hc_corpus_save_stream(raw->bytes, raw->len,
                              has_tok && strcmp(tok, "pw") == 0 ? "px" : "pw");
    else
        hc_corpus_save_stream(raw->bytes, raw->len, has_tok ? tok : NULL);
    if (body != NULL && body[0] != '\0')
        hc_corpus_write(HC_MODE_JSON, NULL, body, strlen(body));
}

/* Releases the parsed JSON of r's last reply (hc_do does it for a reused r
 * before its next request). */
static inline void hc_free(hc_resp *r)
{
    if (r->json)
        yajl_tree_free(r->json);
    r->json = NULL;
}

/* One request on c (a keep-alive handle keeps its connection between
 * calls). path is below http://127.0.0.1:port, or a whole URL. headers:
 * up to HC_HEADERS_MAX "Name: value" lines (NULL-terminated list, or NULL);
 * body NULL sends none. Returns r->status. */
static inline long hc_do(CURL *c, int port, const char *method, const char *path,
                         const char *const *headers, const char *body, hc_resp *r)
{
    char url[HC_URL_MAX];
    if (strncmp(path, "http://", 7) == 0)
        snprintf(url, sizeof url, "%s", path);
    else
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    r->status = -1;
    r->len = 0;
    r->truncated = false;
    r->body[0] = r->link[0] = r->content_type[0] = r->retry_after[0] = r->allow[0] = '\0';
    r->head[0] = '\0';
    r->head_len = 0;
    r->new_connections = -1;
    hc_free(r); /* the previous reply's tree, when r is reused */

    struct curl_slist *hs = NULL;
    if (body)
        hs = curl_slist_append(hs, "Content-Type: application/json");
    for (size_t i = 0; headers && headers[i] && i < HC_HEADERS_MAX; i++)
        hs = curl_slist_append(hs, headers[i]);
    hs = curl_slist_append(hs, "Expect:"); /* no 100-continue round trip */

    hc_raw raw = {0};
    bool capture = getenv(HC_CORPUS_ENV) != NULL;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hc_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, hc_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HC_TIMEOUT_MS);
    if (capture) {
        curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, hc_on_debug);
        curl_easy_setopt(c, CURLOPT_DEBUGDATA, &raw);
        curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hs);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->new_connections);
    }
    if (capture) {
        if (raw.len > 0)
            hc_corpus_save(&raw, headers, body, r->status);
        free(raw.bytes);
    }
    if (r->len > 0 && !r->truncated)
        r->json = yajl_tree_parse(r->body, NULL, 0);
    return r->status;
}

/* A member of a JSON object (NULL when absent or obj is no object). */
static inline yajl_val hc_get(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return obj ? yajl_tree_get(obj, path, yajl_t_any) : NULL;
}

#endif /* TEST_HTTP_CLIENT_H */
