/*
 * workload.c — the scenarios' requests and the meaning of their replies.
 *
 * invcored over RESP:
 *   ping     PING
 *   decr     LEVEL.ADJUST item loc -1           (follows the level's policy)
 *   floor    LEVEL.ADJUST item loc -1 FLOOR 0   (the flash-sale "buy one")
 *   browse   LEVEL.GET item loc
 *   checkout HOLD.CREATE id ttl item loc qty... [BUYER b [LIMIT n]], think,
 *            then HOLD.COMMIT id or HOLD.RELEASE id, or nothing (abandoned:
 *            the hold expires after ttl and its units come back)
 * invcored over HTTP (Shopify's routes): ping GET /healthz; decr and floor
 *   POST .../inventory_levels/adjust.json with -1 (it never oversells: the
 *   level's deny policy is its floor); browse GET .../inventory_levels.json.
 * Redis (a level is the hash l:<key> {a available, r reserved, c committed}):
 *   decr HINCRBY l:k a -1 (plain: it oversells once a reaches 0, which the
 *   check then reports); floor, hold, end (commit/release) and sweep (the
 *   expiry of abandoned holds, run by a sweeper every few ms) are the Lua
 *   scripts below, the usual way to get atomic checks on Redis.
 */
#include "workload.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The outcome counters' names in the report, in enum counter's order. */
static const char *const counter_names[CNT_KINDS] = {
    "sold_units", "sold_out",           "held",
    "limited",    "committed",          "commit_units",
    "released",   "abandoned",          "expired_first",
    "reads",      "unknown_decr_units", "unknown_commit_units",
};

const char *workload_counter_name(enum counter c)
{
    assert(c < CNT_KINDS);
    return counter_names[c];
}

/* Redis Lua. KEYS and ARGV as each header says; errors use invcored's
 * words (INSUFFICIENT, LIMIT, NOTFOUND, CONFLICT) so one classifier reads
 * both targets. Time is the server's (TIME), as invcored's expiry is. */
static const char lua_floor[] =
    "local a = tonumber(redis.call('HGET', KEYS[1], 'a'))\n"
    "if a == nil then return redis.error_reply('NOTFOUND no such level') end\n"
    "if a < 1 then return redis.error_reply('INSUFFICIENT available ' .. a) end\n"
    "return redis.call('HINCRBY', KEYS[1], 'a', -1)\n";

/* KEYS: hold, expiry zset, level...; ARGV: ttl_ms, buyer ('' none),
 * limit (0 none), qty per level. */
static const char lua_hold[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('CONFLICT hold exists') "
    "end\n"
    "local ttl, buyer, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])\n"
    "local n = #KEYS - 2\n"
    "for i = 1, n do\n"
    "  local a = tonumber(redis.call('HGET', KEYS[i + 2], 'a'))\n"
    "  if a == nil then return redis.error_reply('NOTFOUND no such level') end\n"
    "  local q = tonumber(ARGV[i + 3])\n"
    "  if a < q then return redis.error_reply('INSUFFICIENT ' .. KEYS[i + 2] .. ' ' .. a) end\n"
    "  if limit > 0 then\n"
    "    local held = tonumber(redis.call('HGET', 'bu:' .. buyer, KEYS[i + 2]) or '0')\n"
    "    if held + q > limit then return redis.error_reply('LIMIT buyer ' .. buyer) end\n"
    "  end\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local lines = {}\n"
    "for i = 1, n do\n"
    "  local q = tonumber(ARGV[i + 3])\n"
    "  redis.call('HINCRBY', KEYS[i + 2], 'a', -q)\n"
    "  redis.call('HINCRBY', KEYS[i + 2], 'r', q)\n"
    "  if buyer ~= '' then redis.call('HINCRBY', 'bu:' .. buyer, KEYS[i + 2], q) end\n"
    "  lines[#lines + 1] = KEYS[i + 2]\n"
    "  lines[#lines + 1] = q\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 's', 'held', 'b', buyer, 'l', table.concat(lines, ' '))\n"
    "redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])\n"
    "return redis.status_reply('OK')\n";

/* KEYS: hold, expiry zset; ARGV: 'commit' or 'release'. A hold past its
 * expiry answers NOTFOUND even before the sweep returns its units, as
 * invcored does. */
static const char lua_end[] =
    "local s = redis.call('HGET', KEYS[1], 's')\n"
    "if not s then return redis.error_reply('NOTFOUND no such hold') end\n"
    "local done = ARGV[1] == 'commit' and 'committed' or 'released'\n"
    "if s == done then return redis.status_reply('OK') end\n"
    "if s ~= 'held' then\n"
    "  if s == 'expired' then return redis.error_reply('NOTFOUND hold expired') end\n"
    "  return redis.error_reply('CONFLICT hold ' .. s)\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local exp = tonumber(redis.call('ZSCORE', KEYS[2], KEYS[1]))\n"
    "if exp and exp <= now then return redis.error_reply('NOTFOUND hold expired') end\n"
    "local buyer = redis.call('HGET', KEYS[1], 'b')\n"
    "local f = {}\n"
    "for w in string.gmatch(redis.call('HGET', KEYS[1], 'l'), '%S+') do f[#f + 1] = w end\n"
    "for i = 1, #f, 2 do\n"
    "  local q = tonumber(f[i + 1])\n"
    "  redis.call('HINCRBY', f[i], 'r', -q)\n"
    "  if ARGV[1] == 'commit' then redis.call('HINCRBY', f[i], 'c', q)\n"
    "  else\n"
    "    redis.call('HINCRBY', f[i], 'a', q)\n"
    "    if buyer ~= '' then redis.call('HINCRBY', 'bu:' .. buyer, f[i], -q) end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 's', done)\n"
    "redis.call('ZREM', KEYS[2], KEYS[1])\n"
    "return redis.status_reply('OK')\n";

/* KEYS: expiry zset; ARGV: the most holds to expire. Answers how many. */
static const char lua_sweep[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])\n"
    "for _, id in ipairs(ids) do\n"
    "  local buyer = redis.call('HGET', id, 'b')\n"
    "  local f = {}\n"
    "  for w in string.gmatch(redis.call('HGET', id, 'l') or '', '%S+') do f[#f + 1] = w end\n"
    "  for i = 1, #f, 2 do\n"
    "    local q = tonumber(f[i + 1])\n"
    "    redis.call('HINCRBY', f[i], 'r', -q)\n"
    "    redis.call('HINCRBY', f[i], 'a', q)\n"
    "    if buyer and buyer ~= '' then redis.call('HINCRBY', 'bu:' .. buyer, f[i], -q) end\n"
    "  end\n"
    "  redis.call('HSET', id, 's', 'expired')\n"
    "  redis.call('ZREM', KEYS[1], id)\n"
    "end\n"
    "return #ids\n";

const char *const workload_redis_scripts[4] = {lua_floor, lua_hold, lua_end, lua_sweep};

int outbuf_reserve(struct outbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

void workload_init(struct workload *w, const struct bench_config *cfg, uint64_t run_nonce)
{
    assert(w && cfg);
    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->run_nonce = run_nonce;
    keygen_init(&w->keys, cfg->keys, cfg->keys_n, cfg->zipf_theta);
}

/* ---- RESP encoding ------------------------------------------------------ */

/* Writers into a buffer reserved for WORKLOAD_REQUEST_MAX bytes. */
struct enc {
    char *p;
    char *end;
};

static void enc_raw(struct enc *e, const char *s, size_t n)
{
    assert(e->p + n <= e->end);
    memcpy(e->p, s, n);
    e->p += n;
}

static void enc_array(struct enc *e, unsigned n)
{
    e->p += snprintf(e->p, (size_t)(e->end - e->p), "*%u\r\n", n);
}

static void enc_str(struct enc *e, const char *s)
{
    size_t n = strlen(s);
    e->p += snprintf(e->p, (size_t)(e->end - e->p), "$%zu\r\n", n);
    enc_raw(e, s, n);
    enc_raw(e, "\r\n", 2);
}

static void enc_i64(struct enc *e, int64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, v);
    enc_str(e, num);
}

static void level_key(const struct workload *w, uint64_t key, char *out, size_t len)
{
    snprintf(out, len, "l:%" PRIu64, w->cfg->item_base + key);
}

/* The hold id: unique per run, thread, connection, slot and transaction
 * (ended holds answer retries for 10 minutes: a later run must not reuse). */
static void hold_id(const struct workload *w, const struct session *s, unsigned thread,
                    unsigned conn, unsigned slot, char *out, size_t len)
{
    snprintf(out, len, "b%" PRIx64 ":%u:%u:%u:%" PRIu64, w->run_nonce, thread, conn, slot,
             s->hold_seq);
}

/* The cart's buyer, 1..--buyers, a hash of the transaction (so one
 * connection's carts belong to many buyers, and a buyer's to many
 * connections, as in a real sale). */
static void buyer_id(const struct workload *w, const struct session *s, char *out, size_t len)
{
    assert(w->cfg->buyers >= 1);
    uint64_t h =
        (s->hold_seq * UINT64_C(0x9e3779b97f4a7c15)) ^ (s->key[0] * UINT64_C(0xff51afd7ed558ccd));
    /* The run's own buyers: invcored counts a buyer's sales for a day,
     * so another run's must not use up this one's limits. */
    snprintf(out, len, "u%" PRIx64 ":%" PRIu64, w->run_nonce, 1 + (h >> 11) % w->cfg->buyers);
}

static void redis_hold_key(const char *id, char *out, size_t len)
{
    snprintf(out, len, "h:%s", id);
}

/* ---- HTTP encoding ------------------------------------------------------ */

static void http_request(const struct workload *w, struct enc *e, const char *method,
                         const char *path, const char *body)
{
    const struct bench_config *c = w->cfg;
    e->p += snprintf(e->p, (size_t)(e->end - e->p), "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path,
                     c->host);
    if (c->token[0])
        e->p += snprintf(e->p, (size_t)(e->end - e->p), "X-Shopify-Access-Token: %s\r\n", c->token);
    if (body)
        e->p += snprintf(e->p, (size_t)(e->end - e->p),
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(body), body);
    else
        enc_raw(e, "\r\n", 2);
    assert(e->p < e->end);
}

/* ---- transactions ------------------------------------------------------- */

static enum session_kind pick_kind(const struct workload *w, struct rng *r)
{
    const struct bench_config *c = w->cfg;
    switch (c->scenario) {
    case SCEN_PING:
        return SESSION_PING;
    case SCEN_DECR:
        return SESSION_DECR;
    case SCEN_FLOOR:
        return SESSION_FLOOR;
    case SCEN_BROWSE:
        return SESSION_BROWSE;
    case SCEN_CHECKOUT:
        return SESSION_CHECKOUT;
    case SCEN_MIX:
        break;
    }
    unsigned p = (unsigned)rng_below(r, 100);
    if (p < c->mix_browse_pct)
        return SESSION_BROWSE;
    if (p < c->mix_browse_pct + c->mix_floor_pct)
        return SESSION_FLOOR;
    return SESSION_CHECKOUT;
}

void workload_begin(const struct workload *w, struct session *s, struct rng *r, uint64_t now_ns)
{
    assert(s->state == SESSION_IDLE);
    const struct bench_config *c = w->cfg;
    s->kind = pick_kind(w, r);
    s->started_ns = now_ns;
    s->lines = 1;
    s->key[0] = keygen_next(&w->keys, r);
    s->qty[0] = 1;
    if (s->kind == SESSION_CHECKOUT) {
        s->hold_seq++;
        s->lines = (uint8_t)(1 + rng_below(r, c->lines_max));
        for (unsigned i = 0; i < s->lines; i++) {
            s->qty[i] = (uint32_t)(1 + rng_below(r, c->qty_max));
            if (i == 0)
                continue;
            /* Distinct keys: a hold names each level once. lines <= keys_n
             * (config), so this ends; with few keys it may take a few draws. */
            for (;;) {
                uint64_t k = keygen_next(&w->keys, r);
                if (c->keys == KEYS_ZIPF && k == s->key[0])
                    k = rng_below(r, c->keys_n); /* the hottest key repeats often */
                bool dup = false;
                for (unsigned j = 0; j < i; j++)
                    dup |= s->key[j] == k;
                if (!dup) {
                    s->key[i] = k;
                    break;
                }
            }
        }
        unsigned p = (unsigned)rng_below(r, 100);
        s->end_action = p < c->commit_pct ? 0 : (p < c->commit_pct + c->release_pct ? 1 : 2);
    }
    s->state = SESSION_READY;
}

static void checkout_request(const struct workload *w, const struct session *s, const char *id,
                             bool first, struct enc *e, enum op_kind *kind)
{
    const struct bench_config *c = w->cfg;
    if (c->target == TARGET_INVCORED) {
        if (first) {
            unsigned n = 3 + 3u * s->lines + (c->buyers ? 2 : 0) + (c->buyer_limit ? 2 : 0);
            enc_array(e, n);
            enc_str(e, "HOLD.CREATE");
            enc_str(e, id);
            enc_i64(e, c->ttl_ms);
            for (unsigned i = 0; i < s->lines; i++) {
                enc_i64(e, (int64_t)(c->item_base + s->key[i]));
                enc_i64(e, (int64_t)c->location);
                enc_i64(e, s->qty[i]);
            }
            if (c->buyers) {
                char buyer[48];
                buyer_id(w, s, buyer, sizeof buyer);
                enc_str(e, "BUYER");
                enc_str(e, buyer);
            }
            if (c->buyer_limit) {
                enc_str(e, "LIMIT");
                enc_i64(e, (int64_t)c->buyer_limit);
            }
            *kind = OP_HOLD;
        } else {
            enc_array(e, 2);
            enc_str(e, s->end_action == 0 ? "HOLD.COMMIT" : "HOLD.RELEASE");
            enc_str(e, id);
            *kind = s->end_action == 0 ? OP_COMMIT : OP_RELEASE;
        }
        return;
    }
    char hkey[8 + 96];
    redis_hold_key(id, hkey, sizeof hkey);
    if (first) {
        enc_array(e, 3 + 2 + s->lines + 3 + s->lines);
        enc_str(e, "EVALSHA");
        enc_str(e, w->sha_hold);
        enc_i64(e, 2 + s->lines);
        enc_str(e, hkey);
        enc_str(e, WORKLOAD_REDIS_EXPIRY_KEY);
        for (unsigned i = 0; i < s->lines; i++) {
            char lk[32];
            level_key(w, s->key[i], lk, sizeof lk);
            enc_str(e, lk);
        }
        enc_i64(e, c->ttl_ms);
        char buyer[48] = "";
        if (c->buyers)
            buyer_id(w, s, buyer, sizeof buyer);
        enc_str(e, buyer);
        enc_i64(e, (int64_t)c->buyer_limit);
        for (unsigned i = 0; i < s->lines; i++)
            enc_i64(e, s->qty[i]);
        *kind = OP_HOLD;
    } else {
        enc_array(e, 6);
        enc_str(e, "EVALSHA");
        enc_str(e, w->sha_end);
        enc_str(e, "2");
        enc_str(e, hkey);
        enc_str(e, WORKLOAD_REDIS_EXPIRY_KEY);
        enc_str(e, s->end_action == 0 ? "commit" : "release");
        *kind = s->end_action == 0 ? OP_COMMIT : OP_RELEASE;
    }
}

static void simple_request(const struct workload *w, const struct session *s, struct enc *e,
                           enum op_kind *kind)
{
    const struct bench_config *c = w->cfg;
    int64_t item = (int64_t)(c->item_base + s->key[0]);
    char lk[32];
    level_key(w, s->key[0], lk, sizeof lk);
    char path[256], body[256];
    switch (s->kind) {
    case SESSION_PING:
        *kind = OP_PING;
        if (c->http) {
            http_request(w, e, "GET", "/healthz", NULL);
        } else {
            enc_array(e, 1);
            enc_str(e, "PING");
        }
        return;
    case SESSION_DECR:
    case SESSION_FLOOR:
        *kind = s->kind == SESSION_DECR ? OP_DECR : OP_FLOOR;
        if (c->http) {
            snprintf(path, sizeof path, "/admin/api/%s/inventory_levels/adjust.json",
                     c->shopify_version);
            snprintf(body, sizeof body,
                     "{\"location_id\":%" PRIu64 ",\"inventory_item_id\":%" PRId64
                     ",\"available_adjustment\":-1}",
                     c->location, item);
            http_request(w, e, "POST", path, body);
        } else if (c->target == TARGET_INVCORED) {
            enc_array(e, s->kind == SESSION_DECR ? 4 : 6);
            enc_str(e, "LEVEL.ADJUST");
            enc_i64(e, item);
            enc_i64(e, (int64_t)c->location);
            enc_str(e, "-1");
            if (s->kind == SESSION_FLOOR) {
                enc_str(e, "FLOOR");
                enc_str(e, "0");
            }
        } else if (s->kind == SESSION_DECR) {
            enc_array(e, 4);
            enc_str(e, "HINCRBY");
            enc_str(e, lk);
            enc_str(e, "a");
            enc_str(e, "-1");
        } else {
            enc_array(e, 4);
            enc_str(e, "EVALSHA");
            enc_str(e, w->sha_floor);
            enc_str(e, "1");
            enc_str(e, lk);
        }
        return;
    case SESSION_BROWSE:
        *kind = OP_BROWSE;
        if (c->http) {
            snprintf(path, sizeof path,
                     "/admin/api/%s/inventory_levels.json?inventory_item_ids=%" PRId64
                     "&location_ids=%" PRIu64,
                     c->shopify_version, item, c->location);
            http_request(w, e, "GET", path, NULL);
        } else if (c->target == TARGET_INVCORED) {
            enc_array(e, 3);
            enc_str(e, "LEVEL.GET");
            enc_i64(e, item);
            enc_i64(e, (int64_t)c->location);
        } else {
            enc_array(e, 5);
            enc_str(e, "HMGET");
            enc_str(e, lk);
            enc_str(e, "a");
            enc_str(e, "r");
            enc_str(e, "c");
        }
        return;
    case SESSION_CHECKOUT:
        break;
    }
    assert(!"simple_request: a checkout");
}

int workload_request(const struct workload *w, struct session *s, unsigned thread, unsigned conn,
                     unsigned slot, struct outbuf *out, enum op_kind *kind)
{
    assert(s->state == SESSION_READY || s->state == SESSION_THINKING);
    if (outbuf_reserve(out, WORKLOAD_REQUEST_MAX) < 0)
        return -1;
    struct enc e = {out->data + out->len, out->data + out->cap};
    if (s->kind == SESSION_CHECKOUT) {
        char id[96];
        hold_id(w, s, thread, conn, slot, id, sizeof id);
        checkout_request(w, s, id, s->state == SESSION_READY, &e, kind);
    } else {
        simple_request(w, s, &e, kind);
    }
    size_t n = (size_t)(e.p - (out->data + out->len));
    assert(n > 0 && n <= WORKLOAD_REQUEST_MAX);
    out->len += n;
    s->state = SESSION_WAITING;
    return 0;
}

int workload_sweep_request(const struct workload *w, struct outbuf *out)
{
    if (outbuf_reserve(out, WORKLOAD_REQUEST_MAX) < 0)
        return -1;
    struct enc e = {out->data + out->len, out->data + out->cap};
    enc_array(&e, 5);
    enc_str(&e, "EVALSHA");
    enc_str(&e, w->sha_sweep);
    enc_str(&e, "1");
    enc_str(&e, WORKLOAD_REDIS_EXPIRY_KEY);
    enc_i64(&e, WORKLOAD_REDIS_SWEEP_BATCH);
    out->len = (size_t)(e.p - out->data);
    return 0;
}

/* ---- replies ------------------------------------------------------------ */

static bool starts_with(const struct reply *rep, const char *word)
{
    size_t n = strlen(word);
    return rep->text_len >= n && memcmp(rep->text, word, n) == 0;
}

/* What a refusal means: sold out (no stock), a buyer limit, or a hold
 * that expired first. Over HTTP, 422 is the adjust's "would take available
 * below what the level allows". */
static bool is_sold_out(const struct reply *rep)
{
    return rep->http_status ? rep->http_status == 422 : starts_with(rep, "INSUFFICIENT");
}

static unsigned cart_units(const struct session *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->lines; i++)
        n += s->qty[i];
    return n;
}

bool workload_reply(const struct workload *w, struct session *s, enum op_kind kind,
                    const struct reply *rep, struct rng *r, uint64_t now_ns,
                    uint64_t counters[CNT_KINDS])
{
    assert(s->state == SESSION_WAITING);
    (void)r;
    bool unexpected = false;
    s->state = SESSION_IDLE;
    switch (kind) {
    case OP_PING:
        unexpected = rep->error;
        break;
    case OP_BROWSE:
        unexpected = rep->error;
        if (!unexpected)
            counters[CNT_READS]++;
        break;
    case OP_DECR:
    case OP_FLOOR:
        if (!rep->error)
            counters[CNT_SOLD_UNITS]++;
        else if (is_sold_out(rep))
            counters[CNT_SOLD_OUT]++;
        else
            unexpected = true;
        break;
    case OP_HOLD:
        if (!rep->error) {
            counters[CNT_HELD]++;
            if (s->end_action == 2) {
                counters[CNT_ABANDONED]++; /* the hold expires by itself */
            } else {
                s->state = SESSION_THINKING;
                s->think_until_ns = now_ns + (uint64_t)w->cfg->think_ms * 1000000u;
            }
        } else if (is_sold_out(rep)) {
            counters[CNT_SOLD_OUT]++;
        } else if (starts_with(rep, "LIMIT")) {
            counters[CNT_LIMITED]++;
        } else {
            unexpected = true;
        }
        break;
    case OP_COMMIT:
    case OP_RELEASE:
        if (!rep->error) {
            if (kind == OP_COMMIT) {
                counters[CNT_COMMITTED]++;
                counters[CNT_COMMIT_UNITS] += cart_units(s);
            } else {
                counters[CNT_RELEASED]++;
            }
        } else if (starts_with(rep, "NOTFOUND")) {
            counters[CNT_EXPIRED_FIRST]++; /* thought longer than the ttl */
        } else {
            unexpected = true;
        }
        break;
    case OP_KINDS:
        assert(!"workload_reply: no such kind");
    }
    assert(s->state == SESSION_IDLE || s->state == SESSION_THINKING);
    return unexpected;
}

void workload_lost(const struct workload *w, const struct session *s, enum op_kind kind,
                   uint64_t counters[CNT_KINDS])
{
    (void)w;
    if (kind == OP_DECR || kind == OP_FLOOR)
        counters[CNT_UNKNOWN_DECR]++;
    else if (kind == OP_COMMIT)
        counters[CNT_UNKNOWN_COMMIT] += cart_units(s);
}
