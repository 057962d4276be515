/*
 * fuzz_resp.c — libFuzzer target: the RESP parser and the command layer
 * against a live in-memory engine. Each input is one connection's byte
 * stream: requests are parsed exactly as the event loop does (server.c's
 * conn_process) and executed; replies are discarded. The first byte picks
 * the session (password set or not, RESP2/3, every command slow-logged or
 * not) and how the stream is cut into reads, so incremental parsing is
 * exercised too.
 *
 * Invariants checked: no crash, no sanitizer report, no leak (the engine
 * is closed and reopened every FUZZ_REOPEN_EVERY inputs and at exit; a
 * MULTI left open is freed as a closed connection frees it), every
 * request gets exactly one reply, consumed bytes never exceed the input.
 *
 * Token mode (the session byte's top bit): the rest of the input is not
 * the stream itself but a program that writes it from the words the
 * command layer knows (tokens_to_resp), so long argument lists such as
 * LEVEL.MOVE item loc qty FROM name TO name FLOOR min, LEVEL.POLICY's
 * DENY / CONTINUE LIMIT n, LEVEL.GET ... ALL, quantity names and MULTI
 * bodies are reached without the fuzzer spelling them byte by byte (the
 * role a -dict file plays, kept in this file). Seeds of both kinds are in
 * fuzz/corpus/fuzz_resp.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "invcore.h"
#include "server/command.h"
#include "server/config.h"
#include "server/resp.h"
#include "server/stats.h"

#define FUZZ_REOPEN_EVERY 4000
#define FUZZ_MAX_ARGS 300
#define FUZZ_SLOWLOG_LEN 8 /* slow-log entries kept in the "slow" session */

static inv_tenants *g_ts; /* the default tenant's engine is g_e */
static inv_tenant *g_def;
static inv_engine *g_e;
static token_registry g_tokens_none, g_tokens_file; /* no --tokens; fuzz_tokens_path */
static char g_tokens_path[64];
static server_config g_cfg_open, g_cfg_pass, g_cfg_slow;
static server_ctx g_ctx_open, g_ctx_pass, g_ctx_slow;
static stats_global g_stats;
static stats_thread *g_st;
static cmd_scratch *g_scratch;
static resp_arg g_argv[FUZZ_MAX_ARGS];
static unsigned long g_runs;

/* ---- token mode ------------------------------------------------------------ */

#define FUZZ_TOKEN_BUF (64 * 1024) /* the stream one token program writes, at most */
#define FUZZ_TOKEN_REQUESTS 64 /* requests one token program writes, at most */
#define FUZZ_TOKEN_ARGS 12 /* arguments of one request, command included */
#define FUZZ_TOKEN_RAW 16 /* raw bytes one token may carry */

/* The commands (the fixture has locations 1 and 2, item 7, level 7/1). */
static const char *const TOKEN_CMDS[] = {"LEVEL.GET",     "LEVEL.SET",         "LEVEL.ADJUST",
                                         "LEVEL.MOVE",    "LEVEL.RETURN",      "LEVEL.FULFIL",
                                         "LEVEL.POLICY",  "LEVEL.DEL",         "LEVEL.LIST",
                                         "HOLD.CREATE",   "HOLD.COMMIT",       "HOLD.RELEASE",
                                         "HOLD.GET",      "LOC.SET",           "LOC.GET",
                                         "ITEM.SET",      "ITEM.DEL",          "MULTI",
                                         "EXEC",          "DISCARD",           "AUTH",
                                         "PING",          "PRODUCT.INVENTORY", "TENANT.USE",
                                         "TENANT.CREATE", "TENANT.DROP",       "TENANT.LIST",
                                         "TOKENS.RELOAD"};
/* Keywords, quantity names and field names (case does not matter). */
static const char *const TOKEN_WORDS[] = {"ALL",
                                          "FROM",
                                          "TO",
                                          "FLOOR",
                                          "LIMIT",
                                          "DENY",
                                          "CONTINUE",
                                          "IFREV",
                                          "available",
                                          "reserved",
                                          "committed",
                                          "incoming",
                                          "damaged",
                                          "safety_stock",
                                          "quality_control",
                                          "on_hand",
                                          "all",
                                          "from",
                                          "to",
                                          "floor",
                                          "limit",
                                          "deny",
                                          "continue",
                                          "active",
                                          "name",
                                          "tracked",
                                          "LOC",
                                          "h1",
                                          "h2",
                                          "pw",
                                          "t1",
                                          "default",
                                          "FORCE",
                                          "tok-read-0001",
                                          "tok-write-001"};
/* Numbers and ids: in range, at the limits, beyond them, not numbers. */
static const char *const TOKEN_NUMS[] = {"0",
                                         "1",
                                         "2",
                                         "7",
                                         "-1",
                                         "3",
                                         "10",
                                         "100",
                                         "1000",
                                         "-5",
                                         "-100",
                                         "5",
                                         "1000000000",
                                         "1000000001",
                                         "-1000000000",
                                         "-1000000001",
                                         "9223372036854775807",
                                         "-9223372036854775808",
                                         "18446744073709551615",
                                         "600000",
                                         "1.5",
                                         "",
                                         "abc"};

#define NTOK(a) (sizeof(a) / sizeof((a)[0]))

static char g_tokens[FUZZ_TOKEN_BUF];

/* Writes the RESP requests of a token program into out (cap bytes); its
 * length. Per request: a byte for the argument count (1 + b % 12), a byte
 * for the command, then a byte per argument: < 0x80 a word, < 0xF0 a
 * number, else raw bytes (the next byte % 16 of them). A program that
 * ends early reads zeros, so every request written is whole. */
static size_t tokens_to_resp(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;
    for (int r = 0; r < FUZZ_TOKEN_REQUESTS && i < n; r++) {
        size_t argc = 1 + in[i++] % FUZZ_TOKEN_ARGS;
        if (o + 16 > cap)
            break;
        o += (size_t)snprintf(out + o, cap - o, "*%zu\r\n", argc);
        for (size_t a = 0; a < argc; a++) {
            uint8_t b = i < n ? in[i++] : 0;
            const char *w = NULL;
            char raw[FUZZ_TOKEN_RAW];
            size_t len = 0;
            if (a == 0)
                w = TOKEN_CMDS[b % NTOK(TOKEN_CMDS)];
            else if (b < 0x80)
                w = TOKEN_WORDS[b % NTOK(TOKEN_WORDS)];
            else if (b < 0xF0)
                w = TOKEN_NUMS[b % NTOK(TOKEN_NUMS)];
            if (w != NULL) {
                len = strlen(w);
            } else {
                len = (i < n ? in[i++] : 0) % FUZZ_TOKEN_RAW;
                for (size_t k = 0; k < len; k++)
                    raw[k] = (char)(i < n ? in[i++] : 0);
            }
            if (o + len + 32 > cap)
                return o; /* out of room: the last request is cut (NEED_MORE) */
            o += (size_t)snprintf(out + o, cap - o, "$%zu\r\n", len);
            memcpy(out + o, w != NULL ? w : raw, len);
            o += len;
            memcpy(out + o, "\r\n", 2);
            o += 2;
        }
    }
    return o;
}

/* The tenants and their tokens every input starts from: the default
 * tenant and t1 (empty), an admin, a read and a rate-limited write token
 * (the password session's --tokens). */
static const char FUZZ_TOKENS[] = "tok-admin-001 default admin\n"
                                  "tok-read-0001 default read\n"
                                  "tok-write-001 t1 write 5/1\n";

static void fuzz_engine_close(void)
{
    inv_tenant_put(g_def);
    g_def = NULL;
    inv_tenants_close(g_ts);
    g_ts = NULL;
    g_e = NULL;
}

static void fuzz_close(void)
{
    fuzz_engine_close();
    token_registry_destroy(&g_tokens_none);
    token_registry_destroy(&g_tokens_file);
    unlink(g_tokens_path);
    command_scratch_free(g_scratch);
    g_scratch = NULL;
    stats_thread_free(g_st);
    g_st = NULL;
}

static void fuzz_open(void)
{
    char err[256];
    if (inv_tenants_open(&g_ts, NULL, NULL) != INV_OK)
        abort(); /* the harness itself failed: not an input problem */
    g_def = inv_tenant_default(g_ts);
    g_e = inv_tenant_engine(g_def);
    if (inv_tenant_create(g_ts, "t1", 2) != INV_OK)
        abort();
    if (g_tokens_path[0] == '\0') {
        snprintf(g_tokens_path, sizeof g_tokens_path, "/tmp/fuzz_resp_tokens.%ld", (long)getpid());
        FILE *f = fopen(g_tokens_path, "w");
        if (f == NULL || fputs(FUZZ_TOKENS, f) < 0 || fclose(f) != 0)
            abort();
        if (token_registry_init(&g_tokens_none, NULL, err, sizeof err) != INV_OK ||
            token_registry_init(&g_tokens_file, g_tokens_path, err, sizeof err) != INV_OK)
            abort();
    }
    inv_location_put(g_e, 1, NULL);
    inv_location_put(g_e, 2, NULL);
    inv_item_put(g_e, 7, NULL);
    inv_level_set(g_e, 7, 1, 100, 0, NULL);
    if (g_scratch == NULL)
        g_scratch = command_scratch_new();
    if (g_st == NULL)
        g_st = stats_thread_new();
    config_defaults(&g_cfg_open);
    g_cfg_open.data_dir = NULL;
    g_cfg_open.max_args = FUZZ_MAX_ARGS;
    g_cfg_open.max_bulk = 4096;
    g_cfg_pass = g_cfg_open;
    g_cfg_pass.requirepass = "pw";
    g_cfg_pass.requirepass_len = 2;
    g_ctx_open.tenants = g_ctx_pass.tenants = g_ts;
    g_ctx_open.tokens = &g_tokens_none;
    g_ctx_pass.tokens = &g_tokens_file;
    g_ctx_open.cfg = &g_cfg_open;
    g_ctx_pass.cfg = &g_cfg_pass;
    g_ctx_open.g = g_ctx_pass.g = &g_stats;
    g_ctx_open.threads = g_ctx_pass.threads = 1;
    /* every command is "slow": the SLOWLOG and LATENCY paths run */
    g_cfg_slow = g_cfg_open;
    g_cfg_slow.slowlog_slower_than_us = 0;
    g_cfg_slow.slowlog_max_len = FUZZ_SLOWLOG_LEN;
    g_ctx_slow = g_ctx_open;
    g_ctx_slow.cfg = &g_cfg_slow;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session s;
    resp_out o;
    size_t pos = 0, avail;
    unsigned mode, step;

    if (g_e == NULL) {
        fuzz_open();
        atexit(fuzz_close);
    } else if (++g_runs % FUZZ_REOPEN_EVERY == 0) {
        fuzz_engine_close();
        fuzz_open();
    }
    if (size == 0)
        return 0;
    mode = data[0];
    data++;
    size--;
    if (mode & 128) {
        size = tokens_to_resp(data, size, g_tokens, sizeof g_tokens);
        data = (const uint8_t *)g_tokens;
    }
    session_init(&s,
                 (mode & 1)    ? &g_ctx_pass
                 : (mode & 64) ? &g_ctx_slow
                               : &g_ctx_open,
                 g_st, g_scratch);
    resp_out_init(&o, (mode & 2) ? 3 : 2);
    /* the stream arrives in reads of `step` bytes (0: all at once) */
    step = (mode >> 2) & 15;
    avail = step ? (step < size ? step : size) : size;
    while (pos < size && !s.quit) {
        resp_limits lim;
        size_t argc = 0, used = 0, need = 0, before = o.len;
        const char *err = NULL;
        resp_status st;
        session_limits(&s, &lim);
        st = resp_parse((const char *)data + pos, avail - pos, &lim, g_argv, &argc, &used, &need,
                        &err);
        if (st == RESP_ERROR) {
            resp_w_errorf(&o, "ERR %s", err);
            break;
        }
        if (st == RESP_NEED_MORE) {
            if (avail == size)
                break; /* half a frame, then close */
            avail = step && avail + step < size ? avail + step : size;
            continue;
        }
        if (used == 0 || pos + used > avail)
            abort(); /* parser contract broken */
        if (argc > 0) {
            command_exec(&s, &o, g_argv, argc);
            if (o.len == before && !o.failed)
                abort(); /* every request gets a reply */
        }
        pos += used;
        if (o.len > (1u << 20))
            o.len = 0; /* replies are discarded */
    }
    resp_out_free(&o);
    session_free(&s);
    return 0;
}
