/*
 * fuzz_http.c — libFuzzer target: the HTTP face's request parser, limits,
 * authentication and router (http.c, http_route.c, every dialect's table)
 * against a live in-memory engine, plus the JSON request parser and its
 * getters (http_json.c). Each input is one connection's byte stream, fed
 * as server.c's conn_process feeds it: steps over the unconsumed bytes,
 * waiting for *need bytes, stopping at a close; responses are discarded.
 *
 * The first byte picks the mode: bit 0 a --requirepass, bits 1-2 how the
 * stream is cut into reads (whole, byte by byte, 7-byte or 100-byte
 * pieces), bit 7 JSON mode (the rest is a request body given to
 * http_json_parse and read with every getter). With bit 0 set, the next
 * byte is the password's length (1..FUZZ_PASSWORD_MAX) and the password
 * follows, then the stream: seeds taken from the test suites
 * (tests/test_http_client.h, `make fuzz-corpus-http`) carry the token
 * their server was started with, so their requests get past
 * authentication here too.
 *
 * Invariants checked: no crash, no sanitizer report, no leak (the engine
 * is reopened every FUZZ_REOPEN_EVERY inputs); a step never consumes more
 * than it was given; every answered step appends a whole response that
 * starts with a status line.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invcore.h"
#include "server/config.h"
#include "server/http.h"
#include "server/http_json.h"

#define FUZZ_REOPEN_EVERY 4000
#define FUZZ_STREAM_MAX (256u << 10) /* one input's stream, at most */
#define FUZZ_PASSWORD_MAX 64u /* bytes of a mode-1 input's password */

static inv_tenants *g_ts;
static inv_tenant *g_def;
static inv_engine *g_e; /* the default tenant's */
static token_registry g_tokens; /* no --tokens */
static server_config g_cfg_open, g_cfg_pass;
static char g_password[FUZZ_PASSWORD_MAX];
static unsigned long g_runs;

static void fuzz_open(void)
{
    if (inv_tenants_open(&g_ts, NULL, NULL) != INV_OK)
        abort(); /* the harness itself failed: not an input problem */
    g_def = inv_tenant_default(g_ts);
    g_e = inv_tenant_engine(g_def);
    inv_location_put(g_e, 1, NULL);
    inv_item_put(g_e, 7, NULL);
    inv_level_set(g_e, 7, 1, 100, 0, NULL);
}

static void fuzz_init_once(void)
{
    if (g_e != NULL)
        return;
    fuzz_open();
    char err[128];
    if (token_registry_init(&g_tokens, NULL, err, sizeof err) != INV_OK)
        abort();
    config_defaults(&g_cfg_open);
    /* limits a mutation can reach, yet above what the suites' ordinary
     * requests need (a Shopify ids= list of 100, a bulk body) */
    g_cfg_open.http_body_bytes = 16384;
    g_cfg_open.http_header_bytes = 8192;
    g_cfg_open.http_url_bytes = 4096;
    g_cfg_open.http_headers = 32;
    g_cfg_pass = g_cfg_open;
    g_cfg_pass.requirepass = g_password; /* set per input */
}

/* Mode 1: the password at the input's front (length byte, bytes) becomes
 * g_cfg_pass's; false when the input is too short or the length bad. */
static bool fuzz_take_password(const uint8_t **data, size_t *size)
{
    if (*size < 1)
        return false;
    size_t n = (*data)[0];
    if (n == 0 || n > FUZZ_PASSWORD_MAX || *size < 1 + n)
        return false;
    memcpy(g_password, *data + 1, n);
    g_cfg_pass.requirepass_len = n;
    *data += 1 + n;
    *size -= 1 + n;
    return true;
}

/* JSON mode: parse the bytes as a body and read every getter. */
static void fuzz_json(const uint8_t *data, size_t size)
{
    char err[128];
    http_str body = {(const char *)data, size};
    yajl_val v = http_json_parse(&body, err, sizeof err);
    if (v == NULL)
        return;
    static const char *const keys[] = {"id", "available", "location_id", "sku", "tracked"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        uint64_t u;
        int64_t i;
        bool b, bad = false;
        http_str s;
        http_json_get_u64(v, keys[k], &u, &bad);
        http_json_get_i64(v, keys[k], &i, &bad);
        http_json_get_bool(v, keys[k], &b, &bad);
        http_json_get_str(v, keys[k], &s, &bad);
    }
    yajl_tree_free(v);
    uint64_t id;
    http_parse_id(body, &id);
    char buf[64];
    size_t len, at = 0;
    http_query_get(body, "ids", buf, sizeof buf, &len);
    while (http_query_next(body, "variant_ids", &at, buf, sizeof buf, &len))
        ;
}

/* Runs the buffered stream buf[0..*len) as the loop does; false: closed. */
static bool fuzz_steps(http_conn *h, char *buf, size_t *len, size_t *need, resp_out *out)
{
    size_t pos = 0;
    bool open = true;
    while (pos < *len && *need <= *len - pos) {
        size_t used = 0, before = out->len;
        uint64_t durable_at;
        http_step st = http_conn_step(h, buf + pos, *len - pos, out, 0, &used, need, &durable_at);
        if (st == HTTP_STEP_NEED_MORE)
            break;
        if (used > *len - pos || out->len <= before ||
            memcmp(out->buf + before, "HTTP/1.1 ", 9) != 0)
            abort(); /* an invariant of http_conn_step broke */
        pos += used;
        if (st == HTTP_STEP_CLOSE) {
            open = false;
            break;
        }
    }
    memmove(buf, buf + pos, *len - pos);
    *len -= pos;
    out->len = 0; /* the responses are not kept */
    return open;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t cuts[] = {FUZZ_STREAM_MAX, 1, 7, 100};
    static char buf[FUZZ_STREAM_MAX];
    fuzz_init_once();
    if (++g_runs % FUZZ_REOPEN_EVERY == 0) {
        inv_tenant_put(g_def);
        inv_tenants_close(g_ts);
        fuzz_open();
    }
    if (size == 0 || size > FUZZ_STREAM_MAX)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode & 0x80) {
        fuzz_json(data, size);
        return 0;
    }
    if ((mode & 1) && !fuzz_take_password(&data, &size))
        return 0;
    http_conn *h =
        http_conn_new((mode & 1) ? &g_cfg_pass : &g_cfg_open, g_ts, &g_tokens, NULL, NULL);
    if (h == NULL)
        return 0;
    resp_out out;
    resp_out_init(&out, 2);
    size_t cut = cuts[(mode >> 1) & 3], len = 0, need = 0;
    for (size_t off = 0; off < size;) {
        size_t n = size - off < cut ? size - off : cut;
        memcpy(buf + len, data + off, n);
        len += n;
        off += n;
        if (!fuzz_steps(h, buf, &len, &need, &out))
            break;
    }
    resp_out_free(&out);
    http_conn_free(h);
    return 0;
}
