/*
 * test_http_client.h — the HTTP suites' one libcurl client (tests/test_http*.c):
 * a request on a keep-alive handle against the invcored that
 * test_server_harness.h started, its status, body (parsed with yajl when it
 * is JSON) and the response headers the dialects use (Link, Content-Type,
 * Retry-After, Allow).
 *
 * Every request it sends can also be kept as a seed of fuzz/fuzz_http: when
 * INVCORE_HTTP_CORPUS names a directory, the raw bytes libcurl wrote (request
 * line, headers and body, as the server read them) are saved there under a
 * name derived from their content (`make fuzz-corpus-http` does this for
 * every HTTP suite).
 *
 * Invariants: hc_do never asserts (client threads call it) and always leaves
 * r filled (status -1 on a transport error); a body larger than
 * HC_BODY_MAX is cut there and marked truncated, never overrun. An hc_resp
 * is large (HC_BODY_MAX): client threads keep theirs on the heap.
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
#include <yajl/yajl_tree.h>

#define HC_BODY_MAX (1u << 18) /* bytes of a response body kept */
#define HC_HEADER_VALUE_MAX 1024 /* bytes of one kept header value */
#define HC_URL_MAX 8192
#define HC_HEADERS_MAX 8 /* extra request headers per call */
#define HC_TIMEOUT_MS 10000L
#define HC_RAW_MAX (1u << 20) /* bytes of one request kept for the corpus */
#define HC_CORPUS_ENV "INVCORE_HTTP_CORPUS"

typedef struct {
    long status; /* -1: transport error */
    char body[HC_BODY_MAX];
    size_t len;
    bool truncated;
    char link[HC_HEADER_VALUE_MAX];
    char content_type[HC_HEADER_VALUE_MAX];
    char retry_after[HC_HEADER_VALUE_MAX];
    char allow[HC_HEADER_VALUE_MAX];
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

/* Saves raw under $INVCORE_HTTP_CORPUS/<fnv1a-64 of the bytes>.http. */
static inline void hc_corpus_save(const hc_raw *raw)
{
    const char *dir = getenv(HC_CORPUS_ENV);
    if (dir == NULL || dir[0] == '\0' || raw->len == 0)
        return;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a offset basis */
    for (size_t i = 0; i < raw->len; i++)
        h = (h ^ (unsigned char)raw->bytes[i]) * 1099511628211ULL; /* FNV prime */
    char path[4096];
    snprintf(path, sizeof path, "%s/%016llx.http", dir, (unsigned long long)h);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "test_http_client: %s: %s\n", path, strerror(errno));
        return;
    }
    fwrite(raw->bytes, 1, raw->len, f);
    fclose(f);
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
    r->json = NULL;

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
    if (capture) {
        hc_corpus_save(&raw);
        free(raw.bytes);
    }
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->len > 0 && !r->truncated)
        r->json = yajl_tree_parse(r->body, NULL, 0);
    return r->status;
}

static inline void hc_free(hc_resp *r)
{
    if (r->json)
        yajl_tree_free(r->json);
    r->json = NULL;
}

/* A member of a JSON object (NULL when absent or obj is no object). */
static inline yajl_val hc_get(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return obj ? yajl_tree_get(obj, path, yajl_t_any) : NULL;
}

#endif /* TEST_HTTP_CLIENT_H */
