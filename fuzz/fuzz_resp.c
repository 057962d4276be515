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
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "invcore.h"
#include "server/command.h"
#include "server/config.h"
#include "server/resp.h"
#include "server/stats.h"

#define FUZZ_REOPEN_EVERY 4000
#define FUZZ_MAX_ARGS 300
#define FUZZ_SLOWLOG_LEN 8 /* slow-log entries kept in the "slow" session */

static inv_engine *g_e;
static server_config g_cfg_open, g_cfg_pass, g_cfg_slow;
static server_ctx g_ctx_open, g_ctx_pass, g_ctx_slow;
static stats_global g_stats;
static stats_thread *g_st;
static cmd_scratch *g_scratch;
static resp_arg g_argv[FUZZ_MAX_ARGS];
static unsigned long g_runs;

static void fuzz_close(void)
{
    inv_close(g_e);
    g_e = NULL;
    command_scratch_free(g_scratch);
    g_scratch = NULL;
    stats_thread_free(g_st);
    g_st = NULL;
}

static void fuzz_open(void)
{
    if (inv_open(&g_e, NULL) != INV_OK)
        abort(); /* the harness itself failed: not an input problem */
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
    g_ctx_open.e = g_ctx_pass.e = g_e;
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
        inv_close(g_e);
        g_e = NULL;
        fuzz_open();
    }
    if (size == 0)
        return 0;
    mode = data[0];
    data++;
    size--;
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
