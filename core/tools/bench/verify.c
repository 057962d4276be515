/*
 * verify.c — preload, scripts and the flash-sale check over a blocking
 * hiredis connection (the side channel; see verify.h for the rules).
 *
 * Requests go out VERIFY_PIPELINE at a time (redisAppendCommandArgv, then
 * as many redisGetReply): a million keys take a few seconds, not a
 * million round trips.
 */
#include "verify.h"

#include <assert.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct redisContext *verify_connect(const struct bench_config *c, char *err, size_t err_len)
{
    struct timeval tv = {VERIFY_TIMEOUT_MS / 1000, (VERIFY_TIMEOUT_MS % 1000) * 1000};
    redisContext *ctx = redisConnectWithTimeout(c->host, c->resp_port, tv);
    if (!ctx || ctx->err) {
        bench_errf(err, err_len, "cannot connect to %s:%u: %s", c->host, c->resp_port,
                   ctx ? ctx->errstr : "out of memory");
        redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    if (c->token[0]) {
        redisReply *r = redisCommand(ctx, "AUTH %s", c->token);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok)
            bench_errf(err, err_len, "AUTH on %s:%u: %s", c->host, c->resp_port,
                       r ? r->str : ctx->errstr);
        freeReplyObject(r);
        if (!ok) {
            redisFree(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* Sends n commands built by make(i, argv, lens) pipelined and checks each
 * reply with accept(i, reply, ...): the first refusal ends it. */
typedef int (*make_fn)(const struct bench_config *c, uint64_t i, char bufs[][32], const char **argv,
                       size_t *lens);
typedef int (*accept_fn)(const struct bench_config *c, uint64_t i, const redisReply *r, void *arg,
                         char *err, size_t err_len);

#define VERIFY_ARGS_MAX 8

static int pipelined(redisContext *ctx, const struct bench_config *c, uint64_t n, make_fn make,
                     accept_fn accept, void *arg, char *err, size_t err_len)
{
    for (uint64_t first = 0; first < n; first += VERIFY_PIPELINE) {
        uint64_t last = first + VERIFY_PIPELINE < n ? first + VERIFY_PIPELINE : n;
        for (uint64_t i = first; i < last; i++) {
            char bufs[VERIFY_ARGS_MAX][32];
            const char *argv[VERIFY_ARGS_MAX];
            size_t lens[VERIFY_ARGS_MAX];
            int argc = make(c, i, bufs, argv, lens);
            assert(argc > 0 && argc <= VERIFY_ARGS_MAX);
            if (redisAppendCommandArgv(ctx, argc, argv, lens) != REDIS_OK)
                return bench_errf(err, err_len, "side channel: %s", ctx->errstr);
        }
        for (uint64_t i = first; i < last; i++) {
            void *reply = NULL;
            if (redisGetReply(ctx, &reply) != REDIS_OK)
                return bench_errf(err, err_len, "side channel: %s", ctx->errstr);
            int rc = accept(c, i, reply, arg, err, err_len);
            freeReplyObject(reply);
            if (rc < 0)
                return -1; /* the rest of the batch is read by nobody: the caller drops ctx */
        }
    }
    return 0;
}

static void arg_u64(char bufs[][32], const char **argv, size_t *lens, int i, uint64_t v)
{
    lens[i] = (size_t)snprintf(bufs[i], 32, "%" PRIu64, v);
    argv[i] = bufs[i];
}

static void arg_str(const char **argv, size_t *lens, int i, const char *s)
{
    argv[i] = s;
    lens[i] = strlen(s);
}

static void redis_level_key(const struct bench_config *c, uint64_t key, char *buf)
{
    snprintf(buf, 32, "l:%" PRIu64, c->item_base + key);
}

/* invcored: two commands per key (ITEM.SET tracked, LEVEL.SET): i even is
 * the item, i odd its level. Redis: DEL then HSET per key. */
static int make_preload(const struct bench_config *c, uint64_t i, char bufs[][32],
                        const char **argv, size_t *lens)
{
    uint64_t key = i / 2;
    if (c->target == TARGET_INVCORED) {
        if (i % 2 == 0) {
            arg_str(argv, lens, 0, "ITEM.SET");
            arg_u64(bufs, argv, lens, 1, c->item_base + key);
            arg_str(argv, lens, 2, "tracked");
            arg_str(argv, lens, 3, "1");
            return 4;
        }
        arg_str(argv, lens, 0, "LEVEL.SET");
        arg_u64(bufs, argv, lens, 1, c->item_base + key);
        arg_u64(bufs, argv, lens, 2, c->location);
        arg_u64(bufs, argv, lens, 3, (uint64_t)c->stock);
        return 4;
    }
    redis_level_key(c, key, bufs[1]);
    argv[1] = bufs[1];
    lens[1] = strlen(bufs[1]);
    if (i % 2 == 0) {
        arg_str(argv, lens, 0, "DEL");
        return 2;
    }
    arg_str(argv, lens, 0, "HSET");
    arg_str(argv, lens, 2, "a");
    arg_u64(bufs, argv, lens, 3, (uint64_t)c->stock);
    arg_str(argv, lens, 4, "r");
    arg_str(argv, lens, 5, "0");
    arg_str(argv, lens, 6, "c");
    arg_str(argv, lens, 7, "0");
    return 8;
}

static int accept_ok(const struct bench_config *c, uint64_t i, const redisReply *r, void *arg,
                     char *err, size_t err_len)
{
    (void)arg;
    if (r && r->type != REDIS_REPLY_ERROR)
        return 0;
    return bench_errf(err, err_len, "preload of item %" PRIu64 " refused: %s", c->item_base + i / 2,
                      r ? r->str : "no reply");
}

int verify_preload(redisContext *ctx, const struct bench_config *c, char *err, size_t err_len)
{
    assert(ctx && c);
    if (c->target == TARGET_INVCORED) {
        char loc[32];
        snprintf(loc, sizeof loc, "%" PRIu64, c->location);
        /* Creates the location if absent (active), renames nothing. */
        redisReply *r = redisCommand(ctx, "LOC.SET %s active 1", loc);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok)
            bench_errf(err, err_len, "preload: LOC.SET %s: %s", loc, r ? r->str : ctx->errstr);
        freeReplyObject(r);
        if (!ok)
            return -1;
    }
    if (c->target == TARGET_REDIS) {
        /* The holds of earlier runs name levels the preload replaces: their
         * expiry would give back units to the new levels. */
        redisReply *r = redisCommand(ctx, "DEL %s", WORKLOAD_REDIS_EXPIRY_KEY);
        bool ok = r && r->type == REDIS_REPLY_INTEGER;
        if (!ok)
            bench_errf(err, err_len, "preload: DEL %s: %s", WORKLOAD_REDIS_EXPIRY_KEY,
                       r && r->str ? r->str : ctx->errstr);
        freeReplyObject(r);
        if (!ok)
            return -1;
    }
    return pipelined(ctx, c, c->keys_n * 2, make_preload, accept_ok, NULL, err, err_len);
}

int verify_load_scripts(redisContext *ctx, struct workload *w, char *err, size_t err_len)
{
    char *shas[4] = {w->sha_floor, w->sha_hold, w->sha_end, w->sha_sweep};
    for (int i = 0; i < 4; i++) {
        redisReply *r = redisCommand(ctx, "SCRIPT LOAD %s", workload_redis_scripts[i]);
        bool ok = r && r->type == REDIS_REPLY_STRING && r->len == WORKLOAD_SHA_LEN;
        if (ok)
            memcpy(shas[i], r->str, WORKLOAD_SHA_LEN + 1);
        else
            bench_errf(err, err_len, "SCRIPT LOAD: %s", r && r->str ? r->str : ctx->errstr);
        freeReplyObject(r);
        if (!ok)
            return -1;
    }
    return 0;
}

static int make_read(const struct bench_config *c, uint64_t i, char bufs[][32], const char **argv,
                     size_t *lens)
{
    if (c->target == TARGET_INVCORED) {
        arg_str(argv, lens, 0, "LEVEL.GET");
        arg_u64(bufs, argv, lens, 1, c->item_base + i);
        arg_u64(bufs, argv, lens, 2, c->location);
        arg_str(argv, lens, 3, "ALL");
        return 4;
    }
    arg_str(argv, lens, 0, "HMGET");
    redis_level_key(c, i, bufs[1]);
    argv[1] = bufs[1];
    lens[1] = strlen(bufs[1]);
    arg_str(argv, lens, 2, "a");
    arg_str(argv, lens, 3, "r");
    arg_str(argv, lens, 4, "c");
    return 5;
}

/* A Redis field as a number (absent: the level does not exist). */
static int redis_field(const redisReply *e, int64_t *out)
{
    if (e->type != REDIS_REPLY_STRING)
        return -1;
    char *end = NULL;
    long long v = strtoll(e->str, &end, 10);
    if (end == e->str || *end)
        return -1;
    *out = v;
    return 0;
}

static int accept_read(const struct bench_config *c, uint64_t i, const redisReply *r, void *arg,
                       char *err, size_t err_len)
{
    struct level_state *out = (struct level_state *)arg + i;
    uint64_t item = c->item_base + i;
    if (!r || r->type == REDIS_REPLY_ERROR)
        return bench_errf(err, err_len, "item %" PRIu64 " at %" PRIu64 ": %s (run with --preload)",
                          item, c->location, r ? r->str : "no reply");
    if (c->target == TARGET_REDIS) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
            redis_field(r->element[0], &out->available) < 0 ||
            redis_field(r->element[1], &out->reserved) < 0 ||
            redis_field(r->element[2], &out->committed) < 0)
            return bench_errf(err, err_len,
                              "l:%" PRIu64 " is missing or malformed (run with --preload)", item);
        return 0;
    }
    /* LEVEL.GET ... ALL: field/value pairs (RESP2). */
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return bench_errf(err, err_len, "LEVEL.GET %" PRIu64 " ALL: unexpected reply", item);
    int found = 0;
    for (size_t k = 0; k + 1 < r->elements; k += 2) {
        const redisReply *name = r->element[k], *val = r->element[k + 1];
        if (name->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_INTEGER)
            continue;
        if (strcmp(name->str, "available") == 0)
            out->available = val->integer, found |= 1;
        else if (strcmp(name->str, "reserved") == 0)
            out->reserved = val->integer, found |= 2;
        else if (strcmp(name->str, "committed") == 0)
            out->committed = val->integer, found |= 4;
    }
    if (found != 7)
        return bench_errf(err, err_len, "LEVEL.GET %" PRIu64 " ALL: a quantity is missing", item);
    return 0;
}

int verify_read(redisContext *ctx, const struct bench_config *c, struct level_state *out, char *err,
                size_t err_len)
{
    assert(c->keys_n <= BENCH_CHECK_KEYS_MAX);
    return pipelined(ctx, c, c->keys_n, make_read, accept_read, out, err, err_len);
}

bool verify_judge(const struct bench_config *c, const struct level_state *before,
                  const struct level_state *after, const uint64_t *counters, char *verdict,
                  size_t verdict_len)
{
    assert(c && after && verdict && verdict_len > 0);
    int64_t sold = 0, commit_rise = 0, sellable = 0;
    uint64_t negative = 0, over_stock = 0, first_bad = UINT64_MAX;
    for (uint64_t i = 0; i < c->keys_n; i++) {
        const struct level_state *a = &after[i];
        if (a->available < 0 || a->reserved < 0 || a->committed < 0) {
            negative++;
            first_bad = first_bad == UINT64_MAX ? i : first_bad;
        }
        int64_t held = a->available + a->reserved + a->committed;
        if (!before && held > c->stock) {
            over_stock++;
            first_bad = first_bad == UINT64_MAX ? i : first_bad;
        }
        if (before) {
            sold += (before[i].available + before[i].reserved) - (a->available + a->reserved);
            commit_rise += a->committed - before[i].committed;
            sellable += before[i].available + before[i].reserved;
        }
    }
    if (negative || over_stock) {
        const struct level_state *b = &after[first_bad];
        snprintf(verdict, verdict_len,
                 "OVERSOLD: %" PRIu64 " key(s) below 0 and %" PRIu64
                 " above --stock; first: item %" PRIu64 " available %" PRId64 " reserved %" PRId64
                 " committed %" PRId64,
                 negative, over_stock, c->item_base + first_bad, b->available, b->reserved,
                 b->committed);
        return false;
    }
    if (!before) {
        snprintf(verdict, verdict_len,
                 "ok: %" PRIu64 " keys, none below 0, none above stock %" PRId64, c->keys_n,
                 c->stock);
        return true;
    }
    int64_t decr_acked = (int64_t)counters[CNT_SOLD_UNITS];
    int64_t decr_unknown = (int64_t)counters[CNT_UNKNOWN_DECR];
    int64_t commit_acked = (int64_t)counters[CNT_COMMIT_UNITS];
    int64_t commit_unknown = (int64_t)counters[CNT_UNKNOWN_COMMIT];
    int64_t decremented = sold - commit_rise;
    bool commits_ok = commit_rise >= commit_acked && commit_rise <= commit_acked + commit_unknown;
    bool decr_ok = decremented >= decr_acked && decremented <= decr_acked + decr_unknown;
    if (!commits_ok || !decr_ok) {
        snprintf(verdict, verdict_len,
                 "UNITS NOT CONSERVED: the server sold %" PRId64
                 " by decrements (clients were told %" PRId64 ", %" PRId64
                 " unanswered) and committed %" PRId64 " (clients were told %" PRId64 ", %" PRId64
                 " unanswered)",
                 decremented, decr_acked, decr_unknown, commit_rise, commit_acked, commit_unknown);
        return false;
    }
    snprintf(verdict, verdict_len,
             "ok: sold %" PRId64 " (%" PRId64 " by decrements, %" PRId64 " committed) of %" PRId64
             " at the start; nothing below 0; units conserved",
             sold, decremented, commit_rise, sellable);
    return true;
}
