/*
 * fuzz_engine.c — libFuzzer target for the public C API (include/invcore.h)
 * on one in-memory engine. Each input is a program: a byte picks the call,
 * the bytes after it its arguments (ids from a small set plus 0 and
 * UINT64_MAX, quantities near and beyond INV_QTY_MAX and INT64 extremes,
 * unterminated strings, bools that are not 0/1, hold ids of 0..70 bytes
 * and 0..70 lines). At most FUZZ_CALLS_MAX calls per input.
 *
 * Each input runs on a fresh engine with small capacity hints (so tables
 * grow), closed after it; -DFUZZ_REOPEN_EVERY=N shares one engine among N
 * inputs instead (see below). -DFUZZ_SKIP_HELD_ITEM_DEL avoids deleting
 * items whose levels hold reserved units (a known finding, to fuzz past it).
 *
 * Invariants checked (a violation traps, so libFuzzer reports it):
 *  - every call returns INV_OK or one of the listed INV_E* codes, never
 *    INV_EIO (memory mode has no journal);
 *  - every level seen has -INV_QTY_MAX <= available <= 2 * INV_QTY_MAX
 *    (above INV_QTY_MAX only after releases), 0 <= reserved <= INV_QTY_MAX
 *    and revision >= 1, and a level's revision never goes back (strictly
 *    up on every change this program makes);
 *  - while no hold can expire in the background ("exact" mode: no hold
 *    with a TTL under FUZZ_TTL_LONG_MS was ever asked for), level calls
 *    answer exactly what a model built from a level read just before
 *    predicts, and puts read back what they wrote;
 *  - a batch (inv_batch) that fails leaves every level it could touch and
 *    every hold it names as they were (exact mode);
 *  - full scans return every existing item / location exactly once, the
 *    statistics count what exists, and hold_verify_reserved holds after
 *    every input and every FUZZ_VERIFY_EVERY calls.
 *
 * Model 2 (named quantities, include/invcore.h) adds to the program
 * inv_level_get_full, inv_level_move (every quantity name, invalid values
 * and floors), inv_level_fulfil, inv_level_set_policy (deny / continue,
 * limits in and out of range), location activity toggles and
 * INV_BATCH_LEVEL_GET_FULL lines, and checks:
 *  - every level read whole has every named quantity >= 0 but available,
 *    available >= -INV_QTY_MAX, on_hand = available + reserved + committed
 *    + damaged + safety_stock + quality_control, a valid policy (a limit
 *    only under continue) and location_active as its location is;
 *  - in exact mode: a move leaves from - qty and to + qty, or is refused
 *    for a reason the model sees with nothing changed; a fulfilment takes
 *    committed down by qty (also at an inactive location); a floor-less
 *    decrement and a hold stop at the policy's floor (deny: 0); a level of
 *    an inactive location refuses set, adjust, move and hold create with
 *    INV_EINVALID (and a new level there, too); a hold commit moves each
 *    line's units from reserved to committed (release: back to available);
 *  - a batch's LEVEL_GET_FULL reads hold the same bounds, and one after
 *    which the batch changed nothing reads what the level holds after it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hold.h"
#include "invcore.h"

#define FUZZ_CALLS_MAX 256
/* 1: a fresh engine per input, closed after it (reproducible crashes,
 * leaks detected); N > 1: one engine shared by N inputs. Both run at about
 * the same speed: opening costs a sweep of the hold wheel, sharing makes
 * libFuzzer's leak check scan after every input. */
#ifndef FUZZ_REOPEN_EVERY
#define FUZZ_REOPEN_EVERY 1
#endif
#define FUZZ_VERIFY_EVERY 32
#define FUZZ_LIST_PAGES_MAX 64 /* bounds every cursor loop */
#define FUZZ_IDS 24 /* item and location ids are drawn from these */
#define FUZZ_TTL_LONG_MS (3600ULL * 1000) /* never expires in an engine's life */
#define FUZZ_VERIFY_RETRIES 50 /* background expiry may be mid-way */

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static const uint64_t IDS[FUZZ_IDS] = {0,
                                       1,
                                       2,
                                       3,
                                       4,
                                       5,
                                       6,
                                       7,
                                       8,
                                       9,
                                       10,
                                       11,
                                       12,
                                       13,
                                       14,
                                       15,
                                       16,
                                       17,
                                       0x7fffffffffffffffULL,
                                       0x8000000000000000ULL,
                                       0xffffffffULL,
                                       1ULL << 32,
                                       UINT64_MAX - 1,
                                       UINT64_MAX};

static inv_engine *g_e;
static unsigned long g_runs;
static size_t g_calls; /* calls since the last reserved check */
/* A hold that can expire was asked for: background changes possible. */
static bool g_expiring;
/* Last revision this program saw per (item, location) index; 0: none. */
static uint64_t g_rev[FUZZ_IDS][FUZZ_IDS];
/* An item was untracked at some point: a hold line may then have counted
 * no units (reserved nothing), so its end moves none. */
static bool g_untracked_seen;

/* ---- the input as a stream of arguments ---------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} src;

static uint8_t u8(src *s)
{
    return s->i < s->n ? s->p[s->i++] : 0;
}

static uint64_t u64(src *s)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | u8(s);
    return v;
}

static unsigned pick_idx(src *s)
{
    return u8(s) % FUZZ_IDS;
}

static int64_t pick_qty(src *s)
{
    static const int64_t special[] = {0,
                                      1,
                                      -1,
                                      2,
                                      5,
                                      10,
                                      100,
                                      -100,
                                      INV_QTY_MAX,
                                      -INV_QTY_MAX,
                                      INV_QTY_MAX + 1,
                                      -INV_QTY_MAX - 1,
                                      INV_QTY_MAX - 1,
                                      2 * INV_QTY_MAX,
                                      INT64_MAX,
                                      INT64_MIN,
                                      INT64_MIN + 1,
                                      INT32_MAX,
                                      INT32_MIN,
                                      1LL << 31};
    uint8_t b = u8(s);
    if (b < 128)
        return (int64_t)(b & 63) - 16; /* small: interacting quantities */
    if (b < 250)
        return special[b % (sizeof special / sizeof special[0])];
    return (int64_t)u64(s);
}

static int64_t pick_floor(src *s)
{
    uint8_t b = u8(s);
    switch (b & 15) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
        return INV_NO_FLOOR;
    case 5:
    case 6:
    case 7:
        return 0;
    case 8:
        return INV_NO_FLOOR + 1;
    case 9:
        return INT64_MAX;
    default:
        return pick_qty(s);
    }
}

static uint64_t pick_rev(src *s, unsigned i, unsigned l)
{
    uint8_t b = u8(s);
    switch (b & 7) {
    case 0:
    case 1:
    case 2:
        return 0;
    case 3:
    case 4:
        return g_rev[i][l];
    case 5:
        return g_rev[i][l] + 1;
    case 6:
        return UINT64_MAX;
    default:
        return b >> 3;
    }
}

/* ---- checks ---------------------------------------------------------------- */

static int rc_ok(int rc)
{
    /* Memory mode: no journal, so never INV_EIO. */
    CHECK(rc <= INV_OK && rc >= INV_ENOMEM);
    CHECK(inv_strerror(rc) != NULL && inv_errcode(rc) != NULL);
    return rc;
}

static bool qty_ok(int64_t q)
{
    return q >= -INV_QTY_MAX && q <= INV_QTY_MAX;
}

/* Bounds and monotonic revision of a level seen for (i, l). */
static void see_level(unsigned i, unsigned l, const inv_level *lv)
{
    CHECK(lv->available >= -INV_QTY_MAX && lv->available <= 2 * INV_QTY_MAX);
    CHECK(lv->reserved >= 0 && lv->reserved <= INV_QTY_MAX);
    CHECK(lv->revision >= 1);
    CHECK(lv->revision >= g_rev[i][l]);
    g_rev[i][l] = lv->revision;
}

/* The bounds every whole level read holds (model 2), wherever it came
 * from; on_hand is the sum of the quantities on hand. */
static void full_bounds(const inv_level_full *f)
{
    const int64_t *q = f->qty;
    CHECK(q[INV_QTY_AVAILABLE] >= -INV_QTY_MAX && q[INV_QTY_AVAILABLE] <= 2 * INV_QTY_MAX);
    for (int k = 0; k < INV_QTY_NAMES; k++)
        CHECK(k == INV_QTY_AVAILABLE || (q[k] >= 0 && q[k] <= INV_QTY_MAX));
    CHECK(f->on_hand == q[INV_QTY_AVAILABLE] + q[INV_QTY_RESERVED] + q[INV_QTY_COMMITTED] +
                            q[INV_QTY_DAMAGED] + q[INV_QTY_SAFETY_STOCK] +
                            q[INV_QTY_QUALITY_CONTROL]);
    CHECK(f->revision >= 1);
    CHECK(f->policy == INV_POLICY_DENY || f->policy == INV_POLICY_CONTINUE);
    CHECK(f->preorder_limit == INV_NO_PREORDER_LIMIT ||
          (f->policy == INV_POLICY_CONTINUE && f->preorder_limit >= 0 &&
           f->preorder_limit <= INV_QTY_MAX));
    CHECK(f->created_at_ms >= 0 && f->created_at_ms % 1000 == 0);
    CHECK(f->updated_at_ms >= 0 && f->updated_at_ms % 1000 == 0);
}

/* A whole level seen for (i, l): bounds, and its revision as see_level. */
static void see_full(unsigned i, unsigned l, const inv_level_full *f)
{
    inv_level lv = {f->qty[INV_QTY_AVAILABLE], f->qty[INV_QTY_RESERVED], f->revision};
    full_bounds(f);
    see_level(i, l, &lv);
}

/* The lowest available a floor-less decrement or a hold may leave on a
 * tracked level: 0 (deny), -limit, or INV_NO_FLOOR (continue, no limit). */
static int64_t policy_floor(const inv_level_full *f)
{
    if (f->policy != INV_POLICY_CONTINUE)
        return 0;
    return f->preorder_limit == INV_NO_PREORDER_LIMIT ? INV_NO_FLOOR : -f->preorder_limit;
}

static bool same_qty(const inv_level_full *a, const inv_level_full *b)
{
    return memcmp(a->qty, b->qty, sizeof a->qty) == 0;
}

static void forget_item(unsigned i)
{
    memset(g_rev[i], 0, sizeof g_rev[i]);
}

static void verify_reserved(void)
{
    g_calls = 0;
    for (int k = 0; k < FUZZ_VERIFY_RETRIES; k++) {
        if (hold_verify_reserved(g_e) == INV_OK)
            return;
        CHECK(g_expiring); /* nothing else moves units behind our back */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    __builtin_trap();
}

static bool exact(void);

/* The level read just before a change (the model's starting point): as
 * inv_level_get answers it (lv) and whole (full). */
typedef struct {
    bool exists, item_exists, item_tracked, loc_exists, loc_active;
    inv_level lv;
    inv_level_full full;
} pre_state;

static void pre_read(unsigned i, unsigned l, pre_state *p)
{
    inv_item it;
    inv_location loc;
    memset(p, 0, sizeof *p);
    p->exists = rc_ok(inv_level_get(g_e, IDS[i], IDS[l], &p->lv)) == INV_OK;
    if (p->exists)
        see_level(i, l, &p->lv);
    bool whole = rc_ok(inv_level_get_full(g_e, IDS[i], IDS[l], &p->full)) == INV_OK;
    if (whole)
        see_full(i, l, &p->full);
    p->item_exists = rc_ok(inv_item_get(g_e, IDS[i], &it)) == INV_OK;
    p->item_tracked = p->item_exists && it.fields.tracked;
    p->loc_exists = rc_ok(inv_location_get(g_e, IDS[l], &loc)) == INV_OK;
    p->loc_active = p->loc_exists && loc.fields.active;
    CHECK(!p->exists || (p->item_exists && p->loc_exists));
    if (!exact())
        return; /* an expiry may land between the reads */
    CHECK(whole == p->exists);
    if (whole) {
        CHECK(p->full.qty[INV_QTY_AVAILABLE] == p->lv.available);
        CHECK(p->full.qty[INV_QTY_RESERVED] == p->lv.reserved);
        CHECK(p->full.revision == p->lv.revision);
        CHECK(p->full.location_active == p->loc_active); /* levels follow their location */
    }
}

/* ---- locations ------------------------------------------------------------ */

/* Fills a string array: empty, a short name from a small pool (so puts
 * collide), arbitrary bytes, or the whole array without a NUL. */
static void fill_str(src *s, char *dst, size_t cap)
{
    uint8_t b = u8(s);
    memset(dst, 0, cap);
    switch (b & 7) {
    case 0:
    case 1:
        break;
    case 2:
    case 3:
    case 4: {
        static const char *pool[] = {"a",      "b",  "US", "CA",        "12.50", "-3",
                                     "123456", "x1", "x2", "1.1234567", "us",    "0"};
        const char *w = pool[(b >> 3) % (sizeof pool / sizeof pool[0])];
        size_t n = strlen(w) < cap - 1 ? strlen(w) : cap - 1;
        memcpy(dst, w, n);
        break;
    }
    case 5:
    case 6: {
        size_t n = (size_t)u8(s) % cap; /* keeps room for the NUL */
        for (size_t k = 0; k < n; k++)
            dst[k] = (char)(u8(s) | 1); /* no early NUL */
        break;
    }
    default:
        for (size_t k = 0; k < cap; k++)
            dst[k] = (char)('A' + (b + k) % 26); /* unterminated */
        break;
    }
}

static void fill_bool(src *s, bool *b)
{
    uint8_t v = u8(s);
    v = v < 200 ? (v & 1) : v; /* mostly 0/1, sometimes garbage */
    memcpy(b, &v, 1);
}

static bool bool_byte_ok(const bool *b)
{
    uint8_t v;
    memcpy(&v, b, 1);
    return v <= 1;
}

static bool terminated(const char *p, size_t cap)
{
    return memchr(p, 0, cap) != NULL;
}

/* clang-format off: one entry a line (the formatter does not settle on X-lists) */
#define LOC_STRS(X)                 \
    X(NAME, name)                   \
    X(ADDRESS1, address1)           \
    X(ADDRESS2, address2)           \
    X(CITY, city)                   \
    X(PROVINCE, province)           \
    X(PROVINCE_CODE, province_code) \
    X(COUNTRY, country)             \
    X(COUNTRY_CODE, country_code)   \
    X(ZIP, zip)                     \
    X(PHONE, phone)
/* clang-format on */

static void op_location_put(src *s)
{
    unsigned l = pick_idx(s);
    uint8_t how = u8(s);
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    f.mask = how & 1 ? (unsigned)u8(s) << 4 | u8(s) : 0; /* may carry unknown bits */
    if (how & 2)
        f.mask = (unsigned)u64(s);
#define FILL(M, m) fill_str(s, f.m, sizeof f.m);
    LOC_STRS(FILL)
#undef FILL
    fill_bool(s, &f.active);
    f.priority = (int32_t)(how & 4 ? (uint32_t)u64(s) : u8(s) % 5);
    bool null_f = (how & 0xF8) == 0xF8;

    inv_location pre;
    bool existed = rc_ok(inv_location_get(g_e, IDS[l], &pre)) == INV_OK;
    int rc = rc_ok(inv_location_put(g_e, IDS[l], null_f ? NULL : &f));
    unsigned w = null_f ? 0 : f.mask ? f.mask : INV_LOC_ALL;
    bool invalid = !null_f && (f.mask & ~(unsigned)INV_LOC_ALL);
#define BAD(M, m) invalid |= (w & INV_LOC_##M) && !terminated(f.m, sizeof f.m);
    LOC_STRS(BAD)
#undef BAD
    invalid |= (w & INV_LOC_ACTIVE) && !bool_byte_ok(&f.active);
    if (invalid) {
        CHECK(rc == INV_EINVALID);
        return;
    }
    if (rc != INV_OK)
        return;
    inv_location got;
    CHECK(rc_ok(inv_location_get(g_e, IDS[l], &got)) == INV_OK);
    CHECK(got.id == IDS[l] && got.fields.mask == INV_LOC_ALL);
    uint64_t def;
    CHECK(rc_ok(inv_location_default(g_e, &def)) == INV_OK);
    if (w & ~(unsigned)INV_LOC_ALL)
        return; /* only reachable when invalid */
#define SAME(M, m) \
    CHECK(strcmp(got.fields.m, (w & INV_LOC_##M) ? f.m : existed ? pre.fields.m : "") == 0);
    LOC_STRS(SAME)
#undef SAME
    bool active = (w & INV_LOC_ACTIVE) ? f.active : existed ? pre.fields.active : true;
    int32_t prio = (w & INV_LOC_PRIORITY) ? f.priority : existed ? pre.fields.priority : 0;
    CHECK(got.fields.active == active && got.fields.priority == prio);
}

static void op_location_get(src *s)
{
    unsigned l = pick_idx(s);
    inv_location out;
    if (rc_ok(inv_location_get(g_e, IDS[l], &out)) == INV_OK) {
        CHECK(out.id == IDS[l]);
        CHECK(terminated(out.fields.name, sizeof out.fields.name));
        CHECK(terminated(out.fields.country_code, sizeof out.fields.country_code));
    }
}

static void op_location_default(src *s)
{
    unsigned l = pick_idx(s);
    uint64_t def;
    inv_location loc;
    bool exists = rc_ok(inv_location_get(g_e, IDS[l], &loc)) == INV_OK;
    if (u8(s) & 1) {
        int rc = rc_ok(inv_location_set_default(g_e, IDS[l]));
        CHECK(rc == (exists ? INV_OK : INV_ENOTFOUND));
        if (rc == INV_OK) {
            CHECK(rc_ok(inv_location_default(g_e, &def)) == INV_OK && def == IDS[l]);
            CHECK(rc_ok(inv_location_get(g_e, IDS[l], &loc)) == INV_OK && loc.is_default);
        }
    } else if (rc_ok(inv_location_default(g_e, &def)) == INV_OK) {
        CHECK(rc_ok(inv_location_get(g_e, def, &loc)) == INV_OK && loc.is_default);
    }
}

/* ---- listings -------------------------------------------------------------- */

typedef int (*list_fn)(inv_engine *, uint64_t, size_t, uint64_t *, size_t, size_t *, uint64_t *);
typedef int (*get_fn)(inv_engine *, uint64_t);

static int item_exists(inv_engine *e, uint64_t id)
{
    inv_item it;
    return inv_item_get(e, id, &it);
}

static int location_exists(inv_engine *e, uint64_t id)
{
    inv_location loc;
    return inv_location_get(e, id, &loc);
}

/* A cursor loop; when it completes and the ids could not change meanwhile,
 * every existing id must have come back exactly once. */
static void list_loop(src *s, list_fn list, get_fn get)
{
    static uint64_t ids[INV_LIST_COUNT_MAX + 8];
    unsigned seen[FUZZ_IDS] = {0};
    uint8_t b = u8(s);
    size_t count = b < 200   ? (size_t)(b % 8) + 1
                   : b < 230 ? (size_t)INV_LIST_COUNT_MAX + (b & 1)
                             : (size_t)u64(s);
    uint8_t c = u8(s);
    size_t cap = c < 200 ? (size_t)(c % 8) + 1 : (size_t)(c % 9); /* 0 sometimes */
    if (c >= 250)
        cap = sizeof ids / sizeof ids[0];
    uint64_t cursor = u8(s) < 240 ? 0 : u64(s);
    bool from_start = cursor == 0, done = false;
    for (int page = 0; page < FUZZ_LIST_PAGES_MAX; page++) {
        size_t n = SIZE_MAX;
        uint64_t next = 0;
        int rc = rc_ok(list(g_e, cursor, count, ids, cap, &n, &next));
        if (count == 0 || count > INV_LIST_COUNT_MAX || cap == 0) {
            CHECK(rc == INV_EINVALID);
            return;
        }
        if (rc != INV_OK)
            return; /* LIMIT: more ids at one hash position than cap */
        CHECK(n <= cap);
        for (size_t k = 0; k < n; k++) {
            unsigned idx = FUZZ_IDS;
            for (unsigned j = 0; j < FUZZ_IDS; j++)
                if (IDS[j] == ids[k])
                    idx = j;
            CHECK(idx < FUZZ_IDS); /* only ids of the set are ever created */
            seen[idx]++;
        }
        cursor = next;
        if (cursor == 0) {
            done = true;
            break;
        }
    }
    if (!done || !from_start)
        return;
    for (unsigned j = 0; j < FUZZ_IDS; j++)
        CHECK(seen[j] == (get(g_e, IDS[j]) == INV_OK ? 1u : 0u));
}

/* ---- items ------------------------------------------------------------------ */

/* clang-format off: one entry a line (the formatter does not settle on X-lists) */
#define ITEM_STRS(X)                               \
    X(SKU, sku)                                    \
    X(COST, cost)                                  \
    X(COUNTRY_OF_ORIGIN, country_code_of_origin)   \
    X(PROVINCE_OF_ORIGIN, province_code_of_origin) \
    X(HS_CODE, harmonized_system_code)             \
    X(VARIANT, variant)                            \
    X(PRODUCT, product)
/* clang-format on */

static void op_item_put(src *s)
{
    unsigned i = pick_idx(s);
    uint8_t how = u8(s);
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = how & 1 ? (unsigned)u8(s) << 2 | u8(s) : 0;
    if (how & 2)
        f.mask = (unsigned)u64(s);
#define FILL(M, m) fill_str(s, f.m, sizeof f.m);
    ITEM_STRS(FILL)
#undef FILL
    fill_bool(s, &f.tracked);
    fill_bool(s, &f.requires_shipping);
    bool null_f = (how & 0xF8) == 0xF8;

    inv_item pre;
    bool existed = rc_ok(inv_item_get(g_e, IDS[i], &pre)) == INV_OK;
    int rc = rc_ok(inv_item_put(g_e, IDS[i], null_f ? NULL : &f));
    unsigned w = null_f ? 0 : f.mask ? f.mask : INV_ITEM_ALL;
    bool invalid = !null_f && (f.mask & ~(unsigned)INV_ITEM_ALL);
#define BAD(M, m) invalid |= (w & INV_ITEM_##M) && !terminated(f.m, sizeof f.m);
    ITEM_STRS(BAD)
#undef BAD
    invalid |= (w & INV_ITEM_TRACKED) && !bool_byte_ok(&f.tracked);
    invalid |= (w & INV_ITEM_REQUIRES_SHIPPING) && !bool_byte_ok(&f.requires_shipping);
    if (invalid) {
        CHECK(rc == INV_EINVALID);
        return;
    }
    if (rc != INV_OK)
        return;
    inv_item got;
    CHECK(rc_ok(inv_item_get(g_e, IDS[i], &got)) == INV_OK);
    CHECK(got.id == IDS[i] && got.fields.mask == INV_ITEM_ALL);
#define SAME(M, m) \
    CHECK(strcmp(got.fields.m, (w & INV_ITEM_##M) ? f.m : existed ? pre.fields.m : "") == 0);
    ITEM_STRS(SAME)
#undef SAME
    bool tracked = (w & INV_ITEM_TRACKED) ? f.tracked : existed ? pre.fields.tracked : true;
    bool ship = (w & INV_ITEM_REQUIRES_SHIPPING) ? f.requires_shipping
                : existed                        ? pre.fields.requires_shipping
                                                 : true;
    CHECK(got.fields.tracked == tracked && got.fields.requires_shipping == ship);
    g_untracked_seen |= !got.fields.tracked;
    uint64_t who;
    if (got.fields.sku[0])
        CHECK(rc_ok(inv_item_by_sku(g_e, got.fields.sku, &who)) == INV_OK && who == IDS[i]);
    if (got.fields.variant[0])
        CHECK(rc_ok(inv_item_by_variant(g_e, got.fields.variant, &who)) == INV_OK && who == IDS[i]);
}

static void op_item_get(src *s)
{
    unsigned i = pick_idx(s);
    inv_item out;
    if (rc_ok(inv_item_get(g_e, IDS[i], &out)) == INV_OK) {
        CHECK(out.id == IDS[i]);
        CHECK(terminated(out.fields.sku, sizeof out.fields.sku));
        CHECK(terminated(out.fields.product, sizeof out.fields.product));
    }
}

static void op_item_del(src *s)
{
    unsigned i = pick_idx(s);
    inv_item it;
    bool existed = rc_ok(inv_item_get(g_e, IDS[i], &it)) == INV_OK;
    /* An item whose stock live holds count on cannot be deleted (CONFLICT);
     * background expiry may end those holds meanwhile (then OK). */
    bool held = false;
    for (unsigned l = 0; l < FUZZ_IDS; l++) {
        inv_level lv;
        if (inv_level_get(g_e, IDS[i], IDS[l], &lv) == INV_OK && lv.reserved > 0)
            held = true;
    }
    int rc = rc_ok(inv_item_del(g_e, IDS[i]));
    if (held && rc == INV_ECONFLICT) {
        CHECK(rc_ok(inv_item_get(g_e, IDS[i], &it)) == INV_OK); /* put back */
        return;
    }
    CHECK(rc == (existed ? INV_OK : INV_ENOTFOUND));
    if (rc != INV_OK)
        return;
    forget_item(i);
    CHECK(rc_ok(inv_item_get(g_e, IDS[i], &it)) == INV_ENOTFOUND);
    size_t n;
    inv_level_entry one;
    CHECK(rc_ok(inv_level_list(g_e, IDS[i], &one, 1, &n)) == INV_ENOTFOUND);
    for (unsigned l = 0; l < FUZZ_IDS; l++) {
        inv_level lv;
        CHECK(rc_ok(inv_level_get(g_e, IDS[i], IDS[l], &lv)) == INV_ENOTFOUND);
    }
}

/* A lookup string: from the pool, arbitrary, empty or too long. */
static void fill_key(src *s, char *dst, size_t cap)
{
    uint8_t b = u8(s);
    memset(dst, 0, cap);
    if (b >= 240) {
        size_t n = (size_t)(b - 240) * 40 % (cap - 1);
        memset(dst, 'k', n);
        dst[n] = '\0';
        return;
    }
    /* unterminated within INV_SKU_MAX + 1 bytes: one too long */
    fill_str(s, dst, INV_SKU_MAX + 1 < cap ? INV_SKU_MAX + 1 : cap - 1);
}

static void op_item_by(src *s)
{
    char key[INV_SKU_MAX + 40];
    fill_key(s, key, sizeof key);
    bool sku = u8(s) & 1;
    uint64_t who = 0;
    int rc = rc_ok(sku ? inv_item_by_sku(g_e, key, &who) : inv_item_by_variant(g_e, key, &who));
    size_t len = strlen(key);
    if (len == 0 || len > (sku ? INV_SKU_MAX : INV_VARIANT_MAX))
        CHECK(rc == INV_EINVALID);
    if (rc == INV_OK) {
        inv_item it;
        CHECK(rc_ok(inv_item_get(g_e, who, &it)) == INV_OK);
        CHECK(strcmp(sku ? it.fields.sku : it.fields.variant, key) == 0);
    }
}

static void op_product(src *s)
{
    char key[INV_SKU_MAX + 40];
    fill_key(s, key, sizeof key);
    uint8_t b = u8(s);
    size_t cap = b % 6, n = SIZE_MAX;
    if (b & 0x80) {
        uint64_t items[8];
        int rc = rc_ok(inv_product_items(g_e, key, cap ? items : NULL, cap, &n));
        if (rc == INV_OK || rc == INV_ELIMIT) {
            CHECK((rc == INV_ELIMIT) == (n > cap));
            for (size_t k = 0; k < n && k < cap; k++) {
                inv_item it;
                CHECK(rc_ok(inv_item_get(g_e, items[k], &it)) == INV_OK);
                CHECK(strcmp(it.fields.product, key) == 0);
            }
        }
        return;
    }
    inv_stock_row rows[8];
    uint64_t only = IDS[pick_idx(s)];
    int64_t total = 0;
    int rc = rc_ok(inv_product_inventory(g_e, key, (b & 0x40) ? &only : NULL, cap ? rows : NULL,
                                         cap, &n, &total));
    if (rc == INV_OK || rc == INV_ELIMIT) {
        CHECK((rc == INV_ELIMIT) == (n > cap));
        CHECK(total >= -(int64_t)n * INV_QTY_MAX && total <= (int64_t)n * 2 * INV_QTY_MAX);
        for (size_t k = 0; k < n && k < cap; k++) {
            CHECK(rows[k].available >= -INV_QTY_MAX && rows[k].available <= 2 * INV_QTY_MAX);
            CHECK(!(b & 0x40) || !rows[k].has_level || rows[k].location == only);
            CHECK(rows[k].has_level || (rows[k].location == 0 && rows[k].available == 0));
            CHECK(terminated(rows[k].variant, sizeof rows[k].variant));
        }
    }
}

/* ---- levels ------------------------------------------------------------------ */

static bool exact(void)
{
    return !g_expiring;
}

static void op_level_set(src *s)
{
    unsigned i = pick_idx(s), l = pick_idx(s);
    int64_t qty = pick_qty(s);
    uint64_t ifrev = pick_rev(s, i, l);
    bool want_out = u8(s) < 230;
    pre_state p;
    pre_read(i, l, &p);
    inv_level out = {0, 0, 0};
    int rc = rc_ok(inv_level_set(g_e, IDS[i], IDS[l], qty, ifrev, want_out ? &out : NULL));
    if (!qty_ok(qty))
        CHECK(rc != INV_OK);
    if (rc == INV_OK && want_out) {
        see_level(i, l, &out);
        CHECK(out.available == qty);
    }
    if (rc == INV_ECONFLICT && want_out && out.revision)
        see_level(i, l, &out);
    if (!exact() || rc == INV_ENOMEM)
        return;
    bool limit = !qty_ok(qty);
    bool conflict = ifrev && (!p.exists || p.lv.revision != ifrev);
    bool notfound = !ifrev && !p.exists && (!p.item_exists || !p.loc_exists);
    /* An inactive location takes no set, nor a new level. */
    bool invalid = p.exists ? !p.full.location_active
                            : !ifrev && p.item_exists && p.loc_exists && !p.loc_active;
    if (rc == INV_OK) {
        CHECK(!limit && !conflict && !notfound && !invalid);
        if (want_out) {
            CHECK(out.reserved == (p.exists ? p.lv.reserved : 0));
            CHECK(!p.exists || out.revision > p.lv.revision);
        }
    } else {
        CHECK((rc == INV_ELIMIT && limit) || (rc == INV_ECONFLICT && conflict) ||
              (rc == INV_ENOTFOUND && notfound) || (rc == INV_EINVALID && invalid));
        inv_level now;
        if (rc_ok(inv_level_get(g_e, IDS[i], IDS[l], &now)) == INV_OK)
            CHECK(p.exists && now.revision == p.lv.revision && now.available == p.lv.available);
    }
}

static void op_level_adjust(src *s, bool conditional)
{
    unsigned i = pick_idx(s), l = pick_idx(s);
    int64_t delta = pick_qty(s), floor = pick_floor(s);
    uint64_t ifrev = conditional ? pick_rev(s, i, l) : 0;
    bool want_out = u8(s) < 230;
    pre_state p;
    pre_read(i, l, &p);
    inv_level out = {0, 0, 0};
    int rc = rc_ok(
        conditional
            ? inv_level_adjust_if(g_e, IDS[i], IDS[l], delta, floor, ifrev, want_out ? &out : NULL)
            : inv_level_adjust(g_e, IDS[i], IDS[l], delta, floor, want_out ? &out : NULL));
    bool floored = floor != INV_NO_FLOOR;
    if (!qty_ok(delta))
        CHECK(rc != INV_OK);
    if ((rc == INV_OK || rc == INV_EINSUFFICIENT || rc == INV_ECONFLICT) && want_out &&
        out.revision)
        see_level(i, l, &out);
    if (rc == INV_OK && want_out && floored && p.item_tracked && exact())
        CHECK(out.available >= floor);
    if (!exact() || rc == INV_ENOMEM)
        return;
    bool keep = floored && p.exists && !p.item_tracked; /* untracked: no change */
    int64_t next = p.exists && qty_ok(delta) ? p.lv.available + delta : 0;
    bool limit = !qty_ok(delta) || (floored && !qty_ok(floor)) ||
                 (p.exists && !keep && !qty_ok(next) && llabs(next) > llabs(p.lv.available));
    bool notfound = !p.exists;
    bool conflict = ifrev && (!p.exists || p.lv.revision != ifrev);
    bool invalid = p.exists && !p.full.location_active; /* inactive: no stock change */
    /* A floor-less decrement of a tracked level stops at its policy's floor. */
    int64_t eff_floor = floored                       ? floor
                        : delta < 0 && p.item_tracked ? policy_floor(&p.full)
                                                      : INV_NO_FLOOR;
    bool insufficient = p.exists && !keep && eff_floor != INV_NO_FLOOR && next < eff_floor;
    if (rc == INV_OK) {
        CHECK(!limit && !notfound && !conflict && !insufficient && !invalid);
        if (want_out) {
            CHECK(out.reserved == p.lv.reserved);
            CHECK(out.available == (keep ? p.lv.available : next));
            CHECK(keep ? out.revision == p.lv.revision : out.revision > p.lv.revision);
        }
        return;
    }
    CHECK((rc == INV_ELIMIT && limit) || (rc == INV_ENOTFOUND && notfound) ||
          (rc == INV_ECONFLICT && conflict) || (rc == INV_EINSUFFICIENT && insufficient) ||
          (rc == INV_EINVALID && invalid));
    if (p.exists && want_out && (rc == INV_EINSUFFICIENT || rc == INV_ECONFLICT))
        CHECK(out.revision == p.lv.revision && out.available == p.lv.available);
}

static void op_level_get(src *s)
{
    unsigned i = pick_idx(s), l = pick_idx(s);
    inv_level lv;
    if (rc_ok(inv_level_get(g_e, IDS[i], IDS[l], &lv)) == INV_OK)
        see_level(i, l, &lv);
}

static void op_level_del(src *s)
{
    unsigned i = pick_idx(s), l = pick_idx(s);
    pre_state p;
    pre_read(i, l, &p);
    int rc = rc_ok(inv_level_del(g_e, IDS[i], IDS[l]));
    inv_level lv;
    if (rc == INV_OK) {
        g_rev[i][l] = 0; /* a new level may start its revisions anew */
        CHECK(rc_ok(inv_level_get(g_e, IDS[i], IDS[l], &lv)) == INV_ENOTFOUND);
    }
    if (!exact())
        return;
    if (!p.exists)
        CHECK(rc == INV_ENOTFOUND);
    else if (p.full.qty[INV_QTY_RESERVED] > 0 || p.full.qty[INV_QTY_COMMITTED] > 0)
        CHECK(rc == INV_ECONFLICT); /* holds or orders still count on it */
    else
        CHECK(rc == INV_OK);
}

static void op_level_list(src *s)
{
    unsigned i = pick_idx(s);
    inv_level_entry out[8];
    uint8_t b = u8(s);
    size_t cap = b % 9, n = SIZE_MAX;
    int rc = rc_ok(inv_level_list(g_e, IDS[i], cap ? out : NULL, cap, &n));
    if (rc != INV_OK && rc != INV_ELIMIT)
        return;
    CHECK((rc == INV_ELIMIT) == (n > cap));
    CHECK(n <= FUZZ_IDS);
    for (size_t k = 0; k < n && k < cap; k++) {
        unsigned l = FUZZ_IDS;
        for (unsigned j = 0; j < FUZZ_IDS; j++)
            if (IDS[j] == out[k].location)
                l = j;
        CHECK(l < FUZZ_IDS);
        CHECK(k == 0 || out[k - 1].location < out[k].location);
        see_level(i, l, &out[k].level);
    }
}

/* ---- named quantities (model 2) -------------------------------------------------- */

/* A quantity name: mostly valid, sometimes out of range (the API takes an
 * enum; a caller's cast can carry anything). */
static inv_qty_name pick_qty_name(src *s)
{
    static const int64_t bad[] = {INV_QTY_NAMES, -1, 8, 100, INT32_MAX, INT32_MIN};
    uint8_t b = u8(s);
    if (b < 224)
        return (inv_qty_name)(b % INV_QTY_NAMES);
    return (inv_qty_name)bad[b % (sizeof bad / sizeof bad[0])];
}

/* A unit count: mostly 1..20, else any quantity (0, negative, too big). */
static int64_t pick_units(src *s)
{
    uint8_t b = u8(s);
    return b < 160 ? (int64_t)(b % 20) + 1 : pick_qty(s);
}

static bool movable(inv_qty_name q)
{
    return (unsigned)q < INV_QTY_NAMES && q != INV_QTY_RESERVED;
}

/* The whole level now (NOTFOUND: zeroed). */
static int read_full(unsigned i, unsigned l, inv_level_full *f)
{
    memset(f, 0, sizeof *f);
    int rc = rc_ok(inv_level_get_full(g_e, IDS[i], IDS[l], f));
    if (rc == INV_OK)
        see_full(i, l, f);
    return rc;
}

/* After a refused change (exact mode): the level is as it was; its
 * revision too, unless the change was taken back (a hold's other lines:
 * undoing moves the revision on). */
static void check_unchanged_rev(unsigned i, unsigned l, const pre_state *p, bool same_revision)
{
    inv_level_full now;
    int rc = read_full(i, l, &now);
    CHECK((rc == INV_OK) == p->exists);
    if (rc == INV_OK)
        CHECK(
            same_qty(&now, &p->full) && now.policy == p->full.policy &&
            now.preorder_limit == p->full.preorder_limit &&
            (same_revision ? now.revision == p->full.revision : now.revision >= p->full.revision));
}

static void check_unchanged(unsigned i, unsigned l, const pre_state *p)
{
    check_unchanged_rev(i, l, p, true);
}

static void op_level_get_full(src *s)
{
    unsigned i = pick_idx(s), l = pick_idx(s);
    pre_state p;
    pre_read(i, l, &p); /* get and get_full agree (exact mode), bounds */
    inv_level_full f;
    if (read_full(i, l, &f) == INV_OK && exact())
        CHECK(same_qty(&f, &p.full) && f.revision == p.full.revision);
}

/* The model of one move on the level p read: from - qty, to + qty, or the
 * reasons it may be refused. */
typedef struct {
    bool insufficient, limit, limit_may;
    int64_t q[INV_QTY_NAMES];
} move_model;

static void model_move(const pre_state *p, int64_t qty, inv_qty_name from, inv_qty_name to,
                       int64_t floor, move_model *m)
{
    memset(m, 0, sizeof *m);
    memcpy(m->q, p->full.qty, sizeof m->q);
    int64_t avail = m->q[INV_QTY_AVAILABLE];
    if (from == INV_QTY_AVAILABLE) {
        /* from available honours floor (none: the policy's, if tracked) */
        int64_t f = floor == INV_NO_FLOOR && p->item_tracked ? policy_floor(&p->full) : floor;
        int64_t after = avail - qty;
        m->insufficient = f != INV_NO_FLOOR && after < f;
        m->limit = !qty_ok(after) && llabs(after) > llabs(avail);
    } else {
        m->insufficient = m->q[from] < qty; /* any other from never goes below 0 */
    }
    if (to == INV_QTY_AVAILABLE) {
        int64_t after = avail + qty;
        m->limit |= !qty_ok(after) && llabs(after) > llabs(avail);
    } else {
        m->limit |= m->q[to] + qty > INV_QTY_MAX;
    }
    m->q[from] -= qty;
    m->q[to] += qty;
    /* reserved + committed share one bounded field of the hot word: more
     * than INV_QTY_MAX there may be refused (LIMIT). */
    m->limit_may = m->q[INV_QTY_RESERVED] + m->q[INV_QTY_COMMITTED] > INV_QTY_MAX;
}

static void op_level_move(src *s)
{
    unsigned i = pick_idx(s) % 6, l = pick_idx(s) % 4; /* the levels holds use */
    int64_t qty = pick_units(s);
    inv_qty_name from = pick_qty_name(s), to = pick_qty_name(s);
    int64_t floor = pick_floor(s);
    bool want_out = u8(s) < 230;
    pre_state p;
    pre_read(i, l, &p);
    inv_level_full out;
    memset(&out, 0, sizeof out);
    int rc =
        rc_ok(inv_level_move(g_e, IDS[i], IDS[l], qty, from, to, floor, want_out ? &out : NULL));
    bool bad_args = !movable(from) || !movable(to) || from == to || qty < 1;
    bool big_args = qty > INV_QTY_MAX || (floor != INV_NO_FLOOR && !qty_ok(floor));
    if (bad_args || big_args) {
        CHECK((rc == INV_EINVALID && bad_args) || (rc == INV_ELIMIT && big_args));
        if (exact())
            check_unchanged(i, l, &p);
        return;
    }
    if (rc == INV_OK && want_out)
        see_full(i, l, &out);
    if (!exact() || rc == INV_ENOMEM)
        return;
    move_model m;
    model_move(&p, qty, from, to, floor, &m);
    bool notfound = !p.exists;
    bool invalid = p.exists && !p.full.location_active; /* inactive: no stock change */
    if (rc != INV_OK) {
        CHECK((rc == INV_ENOTFOUND && notfound) || (rc == INV_EINVALID && invalid) ||
              (rc == INV_EINSUFFICIENT && m.insufficient) ||
              (rc == INV_ELIMIT && (m.limit || m.limit_may)));
        check_unchanged(i, l, &p);
        return;
    }
    CHECK(!notfound && !invalid && !m.insufficient && !m.limit);
    inv_level_full now;
    CHECK(read_full(i, l, &now) == INV_OK);
    CHECK(memcmp(now.qty, m.q, sizeof m.q) == 0); /* from - qty, to + qty, nothing else */
    CHECK(now.revision > p.full.revision);
    if (want_out)
        CHECK(same_qty(&out, &now) && out.revision == now.revision);
}

static void op_level_fulfil(src *s)
{
    unsigned i = pick_idx(s) % 6, l = pick_idx(s) % 4;
    int64_t qty = pick_units(s);
    pre_state p;
    pre_read(i, l, &p);
    int rc = rc_ok(inv_level_fulfil(g_e, IDS[i], IDS[l], qty));
    if (qty < 1 || qty > INV_QTY_MAX) {
        CHECK(rc == (qty < 1 ? INV_EINVALID : INV_ELIMIT));
        return;
    }
    if (!exact() || rc == INV_ENOMEM)
        return;
    if (!p.exists) {
        CHECK(rc == INV_ENOTFOUND);
        return;
    }
    /* Shipping what was sold is no new stock: an inactive location ships. */
    if (p.full.qty[INV_QTY_COMMITTED] < qty) {
        CHECK(rc == INV_EINSUFFICIENT);
        check_unchanged(i, l, &p);
        return;
    }
    CHECK(rc == INV_OK);
    inv_level_full now;
    CHECK(read_full(i, l, &now) == INV_OK);
    inv_level_full want = p.full;
    want.qty[INV_QTY_COMMITTED] -= qty;
    CHECK(same_qty(&now, &want) && now.on_hand == p.full.on_hand - qty);
    CHECK(now.revision > p.full.revision);
}

static void op_level_policy(src *s)
{
    static const int64_t limits[] = {
        INV_NO_PREORDER_LIMIT, 0,  1,         5,        100, INV_QTY_MAX,
        INV_QTY_MAX + 1,       -2, INT64_MIN, INT64_MAX};
    unsigned i = pick_idx(s) % 6, l = pick_idx(s) % 4;
    uint8_t b = u8(s), c = u8(s);
    inv_oversell_policy policy = (inv_oversell_policy)(b < 240 ? b & 1 : b); /* 240..255: bad */
    int64_t limit = c < 128 ? (int64_t)(c % 24) : limits[c % (sizeof limits / sizeof limits[0])];
    pre_state p;
    pre_read(i, l, &p);
    int rc = rc_ok(inv_level_set_policy(g_e, IDS[i], IDS[l], policy, limit));
    bool bad_policy = policy != INV_POLICY_DENY && policy != INV_POLICY_CONTINUE;
    bool bad_limit = limit != INV_NO_PREORDER_LIMIT && (limit < 0 || limit > INV_QTY_MAX);
    if (bad_policy || bad_limit) {
        /* The limit is ignored under deny: refusing it is allowed too. */
        bool ok_allowed = !bad_policy && policy == INV_POLICY_DENY && p.exists;
        CHECK((rc == INV_EINVALID && bad_policy) || (rc == INV_ELIMIT && bad_limit) ||
              (rc == INV_OK && ok_allowed) || (rc == INV_ENOTFOUND && !p.exists && !bad_policy));
        if (rc != INV_OK && exact())
            check_unchanged(i, l, &p);
        if (rc != INV_OK || !ok_allowed)
            return;
        limit = INV_NO_PREORDER_LIMIT;
    }
    if (!exact() || rc == INV_ENOMEM)
        return;
    CHECK(rc == (p.exists ? INV_OK : INV_ENOTFOUND));
    if (rc != INV_OK)
        return;
    inv_level_full now;
    CHECK(read_full(i, l, &now) == INV_OK);
    int64_t want_limit = policy == INV_POLICY_CONTINUE ? limit : INV_NO_PREORDER_LIMIT;
    CHECK(now.policy == policy && now.preorder_limit == want_limit);
    CHECK(same_qty(&now, &p.full)); /* a policy moves no unit */
    /* A change moves the revision on; the same policy again may or may not
     * (a new level's first DENY stores its limit field: a revision, no
     * visible change). */
    bool changed = p.full.policy != policy || p.full.preorder_limit != want_limit;
    CHECK(changed ? now.revision > p.full.revision : now.revision >= p.full.revision);
}

/* Stock on the small grid the model-2 calls and holds use (items 0..5 x
 * locations 0..3 of IDS): the item (tracked when new), the location,
 * active, and the level set to a small quantity. Random puts leave most of
 * the grid absent or inactive; this makes its levels meet. */
static void op_grid_stock(src *s)
{
    unsigned i = pick_idx(s) % 6, l = pick_idx(s) % 4;
    int64_t qty = (int64_t)(u8(s) % 64);
    inv_item it;
    if (rc_ok(inv_item_get(g_e, IDS[i], &it)) == INV_ENOTFOUND) {
        inv_item_fields itf;
        memset(&itf, 0, sizeof itf);
        itf.mask = INV_ITEM_TRACKED;
        itf.tracked = true;
        CHECK(rc_ok(inv_item_put(g_e, IDS[i], &itf)) == INV_OK);
    }
    inv_location_fields lf;
    memset(&lf, 0, sizeof lf);
    lf.mask = INV_LOC_ACTIVE;
    lf.active = true;
    CHECK(rc_ok(inv_location_put(g_e, IDS[l], &lf)) == INV_OK);
    inv_level lv;
    if (rc_ok(inv_level_set(g_e, IDS[i], IDS[l], qty, 0, &lv)) == INV_OK)
        see_level(i, l, &lv);
}

/* A location's activity only (LOC.SET loc active 0|1): every level there
 * follows before the call returns. */
static void op_location_active(src *s)
{
    unsigned l = pick_idx(s) % 4;
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_LOC_ACTIVE;
    f.active = u8(s) & 1;
    int rc = rc_ok(inv_location_put(g_e, IDS[l], &f));
    if (rc != INV_OK)
        return;
    inv_location loc;
    CHECK(rc_ok(inv_location_get(g_e, IDS[l], &loc)) == INV_OK && loc.fields.active == f.active);
    for (unsigned i = 0; i < FUZZ_IDS; i++) {
        inv_level_full lv;
        if (read_full(i, l, &lv) == INV_OK)
            CHECK(lv.location_active == f.active);
    }
}

/* ---- holds ---------------------------------------------------------------------- */

/* A hold id: mostly one of a few short ids (so holds meet again), else
 * 0..70 arbitrary bytes. Returns its length. */
static size_t pick_hold_id(src *s, char *id)
{
    uint8_t b = u8(s);
    if (b < 200) {
        id[0] = 'h';
        id[1] = (char)('0' + b % 8);
        return 2;
    }
    size_t n = u8(s) % 71;
    for (size_t k = 0; k < n; k++)
        id[k] = (char)u8(s);
    return n;
}

static uint64_t pick_ttl(src *s)
{
    uint8_t b = u8(s);
    if (b < 200)
        return FUZZ_TTL_LONG_MS + b;
    switch (b % 10) {
    case 0:
        return 0;
    case 1:
        return 1;
    case 2:
        return 20;
    case 3:
        return 1000;
    case 4:
        return INV_HOLD_TTL_MS_MAX;
    case 5:
        return INV_HOLD_TTL_MS_MAX + 1;
    case 6:
        return UINT64_MAX;
    case 7:
        return (uint64_t)INT64_MAX + 1;
    default:
        return u64(s);
    }
}

static void check_info(const inv_hold_info *info)
{
    CHECK(info->state >= INV_HOLD_HELD && info->state <= INV_HOLD_EXPIRED);
    CHECK(info->n_lines >= 1 && info->n_lines <= INV_HOLD_LINES_MAX);
    for (size_t k = 0; k < info->n_lines; k++)
        CHECK(info->lines[k].qty >= 1 && info->lines[k].qty <= INV_QTY_MAX);
}

/* The index of an id of IDS (FUZZ_IDS: none). */
static unsigned idx_of(uint64_t id)
{
    for (unsigned j = 0; j < FUZZ_IDS; j++)
        if (IDS[j] == id)
            return j;
    return FUZZ_IDS;
}

/* Levels read before a hold call, one per line (static: up to 70 lines). */
static pre_state g_pre[72];

/* A new hold's create against the model (exact mode, valid arguments):
 * each line's level exists, is active, and (tracked) keeps available at or
 * above its policy's floor with held units <= INV_QTY_MAX; then every
 * tracked line moved qty from available to reserved, or nothing changed. */
static void check_create(int rc, const inv_hold_line *lines, const unsigned *li, const unsigned *ll,
                         size_t n)
{
    bool dup = false, notfound = false, invalid = false, insufficient = false, limit = false;
    for (size_t k = 0; k < n; k++) {
        const pre_state *p = &g_pre[k];
        for (size_t j = 0; j < k; j++)
            dup |= li[j] == li[k] && ll[j] == ll[k]; /* lines may not repeat a level */
        if (!p->exists) {
            notfound = true;
            continue;
        }
        if (!p->full.location_active) {
            invalid = true; /* an inactive level takes no hold */
            continue;
        }
        if (!p->item_tracked)
            continue; /* untracked: always available, counts nothing */
        const int64_t *q = p->full.qty;
        int64_t f = policy_floor(&p->full), after = q[INV_QTY_AVAILABLE] - lines[k].qty;
        insufficient |= f != INV_NO_FLOOR ? after < f : after < -INV_QTY_MAX;
        limit |= q[INV_QTY_RESERVED] + q[INV_QTY_COMMITTED] + lines[k].qty > INV_QTY_MAX;
    }
    if (rc == INV_ENOMEM)
        return;
    if (rc != INV_OK) {
        CHECK((rc == INV_EINVALID && (invalid || dup)) || (rc == INV_ENOTFOUND && notfound) ||
              (rc == INV_EINSUFFICIENT && insufficient) || (rc == INV_ELIMIT && limit));
        for (size_t k = 0; k < n; k++)
            check_unchanged_rev(li[k], ll[k], &g_pre[k], false); /* lines taken back */
        return;
    }
    CHECK(!dup && !notfound && !invalid && !insufficient && !limit);
    for (size_t k = 0; k < n; k++) {
        inv_level_full now, want = g_pre[k].full;
        CHECK(read_full(li[k], ll[k], &now) == INV_OK);
        if (g_pre[k].item_tracked) {
            want.qty[INV_QTY_AVAILABLE] -= lines[k].qty;
            want.qty[INV_QTY_RESERVED] += lines[k].qty;
        }
        CHECK(same_qty(&now, &want));
    }
}

static void op_hold_create(src *s)
{
    char id[80];
    inv_hold_line lines[72];
    unsigned li[72], ll[72];
    size_t len = pick_hold_id(s, id);
    uint64_t ttl = pick_ttl(s);
    uint8_t b = u8(s);
    size_t n = b < 200 ? (size_t)(b % 4) + 1 : (size_t)(b % 71);
    bool args_ok = len >= 1 && len <= INV_HOLD_ID_MAX && n >= 1 && n <= INV_HOLD_LINES_MAX &&
                   ttl >= 1 && ttl <= INV_HOLD_TTL_MS_MAX;
    for (size_t k = 0; k < n; k++) {
        uint8_t q = u8(s);
        li[k] = pick_idx(s) % 6; /* few levels: lines meet */
        ll[k] = pick_idx(s) % 4;
        lines[k].item = IDS[li[k]];
        lines[k].location = IDS[ll[k]];
        lines[k].qty = q < 200 ? (int64_t)(q % 20) + 1 : pick_qty(s);
        args_ok &= lines[k].qty >= 1 && lines[k].qty <= INV_QTY_MAX;
    }
    if (ttl != 0 && ttl < FUZZ_TTL_LONG_MS)
        g_expiring = true; /* may expire, in the background, at any time */
    inv_hold_failure fail = {SIZE_MAX, 0, 0, 0};
    bool want_fail = u8(s) < 230;
    inv_hold_info info;
    bool fresh = args_ok && exact() && rc_ok(inv_hold_get(g_e, id, len, &info)) == INV_ENOTFOUND;
    for (size_t k = 0; fresh && k < n; k++)
        pre_read(li[k], ll[k], &g_pre[k]);
    int rc = rc_ok(inv_hold_create(g_e, len ? id : NULL, len, ttl, n ? lines : NULL, n,
                                   want_fail ? &fail : NULL));
    if (len == 0 || len > INV_HOLD_ID_MAX || n == 0 || n > INV_HOLD_LINES_MAX || ttl == 0 ||
        ttl > INV_HOLD_TTL_MS_MAX)
        CHECK(rc == INV_EINVALID || rc == INV_ELIMIT);
    for (size_t k = 0; k < n; k++)
        if (lines[k].qty < 1 || lines[k].qty > INV_QTY_MAX)
            CHECK(rc != INV_OK);
    if (rc == INV_EINSUFFICIENT && want_fail) {
        CHECK(fail.line < n);
        CHECK(fail.item == lines[fail.line].item && fail.location == lines[fail.line].location);
        CHECK(fail.available < lines[fail.line].qty);
    }
    if (fresh)
        check_create(rc, lines, li, ll, n);
    if (rc == INV_OK) {
        int g = rc_ok(inv_hold_get(g_e, id, len, &info));
        if (exact()) {
            CHECK(g == INV_OK);
            CHECK(info.state == INV_HOLD_HELD || info.state == INV_HOLD_COMMITTED);
            CHECK(info.n_lines == n);
        }
        if (g == INV_OK)
            check_info(&info);
    }
}

/* A HELD hold ended (exact mode): each line's units moved from reserved to
 * committed (commit) or back to available (release), available otherwise
 * untouched; a line that counted nothing (its item untracked at create)
 * moves nothing, which only an untracked item makes possible. */
static void check_end(const inv_hold_info *before, const unsigned *li, const unsigned *ll,
                      bool commit)
{
    for (size_t k = 0; k < before->n_lines; k++) {
        inv_level_full now;
        if (li[k] >= FUZZ_IDS || ll[k] >= FUZZ_IDS || !g_pre[k].exists ||
            read_full(li[k], ll[k], &now) != INV_OK)
            continue; /* its level went with its untracked item */
        const int64_t *q0 = g_pre[k].full.qty, *q1 = now.qty, qty = before->lines[k].qty;
        int64_t d_committed = q1[INV_QTY_COMMITTED] - q0[INV_QTY_COMMITTED];
        int64_t d_reserved = q0[INV_QTY_RESERVED] - q1[INV_QTY_RESERVED];
        int64_t d_available = q1[INV_QTY_AVAILABLE] - q0[INV_QTY_AVAILABLE];
        CHECK(d_reserved == 0 || d_reserved == qty);
        CHECK(d_reserved == qty || g_untracked_seen);
        if (commit)
            CHECK(d_committed == d_reserved && d_available == 0);
        else
            CHECK(d_committed == 0 && d_available == d_reserved);
    }
}

static void op_hold_end(src *s, bool commit)
{
    char id[80];
    unsigned li[INV_HOLD_LINES_MAX], ll[INV_HOLD_LINES_MAX];
    size_t len = pick_hold_id(s, id);
    inv_hold_info before, after;
    int had = rc_ok(inv_hold_get(g_e, len ? id : "", len, &before));
    bool watch = had == INV_OK && before.state == INV_HOLD_HELD && exact();
    for (size_t k = 0; watch && k < before.n_lines; k++) {
        li[k] = idx_of(before.lines[k].item);
        ll[k] = idx_of(before.lines[k].location);
        if (li[k] < FUZZ_IDS && ll[k] < FUZZ_IDS)
            pre_read(li[k], ll[k], &g_pre[k]);
    }
    int rc = rc_ok(commit ? inv_hold_commit(g_e, len ? id : NULL, len)
                          : inv_hold_release(g_e, len ? id : NULL, len));
    if (len == 0 || len > INV_HOLD_ID_MAX)
        CHECK(rc == INV_EINVALID || rc == INV_ELIMIT);
    if (rc != INV_OK)
        return;
    CHECK(rc_ok(inv_hold_get(g_e, id, len, &after)) == INV_OK);
    check_info(&after);
    if (exact()) {
        CHECK(had == INV_OK);
        CHECK(after.state == (commit ? INV_HOLD_COMMITTED : INV_HOLD_RELEASED));
        CHECK(commit ? before.state != INV_HOLD_RELEASED : before.state != INV_HOLD_COMMITTED);
    }
    if (watch)
        check_end(&before, li, ll, commit);
}

static void op_hold_get(src *s)
{
    char id[80];
    size_t len = pick_hold_id(s, id);
    inv_hold_info info;
    int rc = rc_ok(inv_hold_get(g_e, len ? id : NULL, len, &info));
    if (len == 0 || len > INV_HOLD_ID_MAX)
        CHECK(rc == INV_EINVALID || rc == INV_ELIMIT);
    if (rc == INV_OK)
        check_info(&info);
}

/* ---- batches ----------------------------------------------------------------------- */

#define FUZZ_BATCH_LINES 8
#define FUZZ_BATCH_HOLD_LINES 4

/* Every level's named quantities over the ids batches draw from. */
typedef struct {
    int rc;
    int64_t qty[INV_QTY_NAMES];
} fuzz_cell;

static void grid_read(fuzz_cell grid[6][4])
{
    for (unsigned i = 0; i < 6; i++)
        for (unsigned l = 0; l < 4; l++) {
            inv_level_full lv;
            grid[i][l].rc = read_full(i, l, &lv);
            memcpy(grid[i][l].qty, lv.qty, sizeof lv.qty);
        }
}

static bool is_read(inv_batch_op op)
{
    return op == INV_BATCH_LEVEL_GET || op == INV_BATCH_LEVEL_GET_FULL;
}

/* A batch's read lines: bounds, and (exact mode, batch applied) a read
 * after which only reads follow sees the level as it is after the batch:
 * its pending units settled, its sold units counted as committed. */
static void check_batch_reads(const inv_batch_line *lines, const inv_batch_result *res, size_t n,
                              int rc, const unsigned *li, const unsigned *ll)
{
    size_t last_change = 0; /* lines before it may see a later change */
    for (size_t k = 0; k < n; k++)
        if (!is_read(lines[k].op))
            last_change = k + 1;
    /* A failed batch's lines before the failed one report INV_OK, reads
     * included, whether they ran or not (refused before running: zeros). */
    for (size_t k = 0; k < n && rc == INV_OK; k++) {
        if (lines[k].op == INV_BATCH_LEVEL_GET_FULL && res[k].rc == INV_OK)
            full_bounds(&res[k].full);
        if (!is_read(lines[k].op) || k < last_change || !exact())
            continue;
        inv_level_full now;
        int now_rc = read_full(li[k], ll[k], &now);
        CHECK(res[k].rc == now_rc);
        if (now_rc != INV_OK)
            continue;
        if (lines[k].op == INV_BATCH_LEVEL_GET_FULL)
            CHECK(same_qty(&res[k].full, &now) && res[k].full.policy == now.policy &&
                  res[k].full.location_active == now.location_active);
        else
            CHECK(res[k].level.available == now.qty[INV_QTY_AVAILABLE] &&
                  res[k].level.reserved == now.qty[INV_QTY_RESERVED]);
    }
}

/* A batch of 1..8 random lines over few levels (every op, the invalid 0
 * and the model-2 ones among them): on failure (in exact mode) nothing
 * changed — no level, no hold. */
static void op_batch(src *s)
{
    inv_batch_line lines[FUZZ_BATCH_LINES];
    inv_hold_line hl[FUZZ_BATCH_LINES][FUZZ_BATCH_HOLD_LINES];
    char ids[FUZZ_BATCH_LINES][80];
    unsigned li[FUZZ_BATCH_LINES], ll[FUZZ_BATCH_LINES];
    int held_before[FUZZ_BATCH_LINES];
    size_t n = (size_t)(u8(s) % FUZZ_BATCH_LINES) + 1;
    for (size_t k = 0; k < n; k++) {
        inv_batch_line *l = &lines[k];
        memset(l, 0, sizeof *l);
        l->op = (inv_batch_op)(u8(s) % 13); /* 0: invalid on purpose */
        li[k] = pick_idx(s) % 6;
        ll[k] = pick_idx(s) % 4;
        l->item = IDS[li[k]];
        l->location = IDS[ll[k]];
        l->qty = pick_qty(s);
        l->floor = pick_floor(s);
        l->if_revision = u8(s) < 200 ? 0 : u64(s) % 8;
        size_t len = pick_hold_id(s, ids[k]);
        l->hold_id = len ? ids[k] : NULL;
        l->hold_id_len = len;
        l->ttl_ms = FUZZ_TTL_LONG_MS; /* batches never make holds that expire */
        l->n_hold_lines = (size_t)(u8(s) % FUZZ_BATCH_HOLD_LINES) + 1;
        for (size_t j = 0; j < l->n_hold_lines; j++)
            hl[k][j] = (inv_hold_line){IDS[pick_idx(s) % 6], IDS[pick_idx(s) % 4],
                                       (int64_t)(u8(s) % 20) + 1};
        l->hold_lines = hl[k];
        if (l->op >= INV_BATCH_LEVEL_MOVE && l->op <= INV_BATCH_HOLD_EXTEND) {
            l->from = pick_qty_name(s);
            l->to = pick_qty_name(s);
            l->to_location = IDS[pick_idx(s) % 4];
            l->policy = (inv_oversell_policy)(u8(s) & 1);
            l->preorder_limit = u8(s) < 128 ? INV_NO_PREORDER_LIMIT : (int64_t)(u8(s) % 10);
        }
        inv_hold_info info;
        held_before[k] = len ? rc_ok(inv_hold_get(g_e, ids[k], len, &info)) : INV_EINVALID;
        if (held_before[k] == INV_OK)
            held_before[k] = 100 + (int)info.state;
    }
    fuzz_cell before[6][4], after[6][4];
    grid_read(before);
    inv_batch_result res[FUZZ_BATCH_LINES];
    memset(res, 0xA5, sizeof res); /* what the call leaves unwritten shows */
    size_t failed = SIZE_MAX;
    int rc = rc_ok(inv_batch(g_e, lines, n, res, &failed));
    grid_read(after);
    check_batch_reads(lines, res, n, rc, li, ll);
    if (rc == INV_OK) {
        for (size_t k = 0; k < n; k++)
            CHECK(is_read(lines[k].op) || res[k].rc == INV_OK);
        return;
    }
    CHECK(failed < n && res[failed].rc == rc);
    if (!exact())
        return;
    for (unsigned i = 0; i < 6; i++)
        for (unsigned l = 0; l < 4; l++)
            CHECK(before[i][l].rc == after[i][l].rc &&
                  memcmp(before[i][l].qty, after[i][l].qty, sizeof before[i][l].qty) == 0);
    for (size_t k = 0; k < n; k++) {
        if (!lines[k].hold_id_len || lines[k].hold_id_len > INV_HOLD_ID_MAX)
            continue;
        inv_hold_info info;
        int now = rc_ok(inv_hold_get(g_e, ids[k], lines[k].hold_id_len, &info));
        if (now == INV_OK)
            now = 100 + (int)info.state;
        CHECK(now == held_before[k]);
    }
}

/* ---- engine-wide ------------------------------------------------------------------ */

static void op_misc(src *s)
{
    uint8_t b = u8(s);
    switch (b % 5) {
    case 0:
        inv_quiesce(g_e);
        break;
    case 1:
        CHECK(inv_durable_position(g_e) == UINT64_MAX);
        CHECK(rc_ok(inv_wait_durable(g_e, u64(s))) == INV_OK);
        (void)inv_last_write_position();
        break;
    case 2: {
        int fd = inv_durable_subscribe(g_e);
        CHECK(fd == INV_EINVALID);
        inv_durable_unsubscribe(g_e, -1);
        break;
    }
    case 3:
        (void)rc_ok(inv_snapshot(g_e));
        break;
    default:
        CHECK(inv_strerror((int)(int8_t)u8(s)) != NULL);
        CHECK(inv_errcode((int)(int8_t)u8(s)) != NULL);
        break;
    }
}

/* Everything that must agree whatever the program did. */
static void check_all(void)
{
    inv_stats st;
    CHECK(rc_ok(inv_stats_get(g_e, &st)) == INV_OK);
    uint64_t items = 0, locs = 0, levels = 0;
    for (unsigned i = 0; i < FUZZ_IDS; i++) {
        items += item_exists(g_e, IDS[i]) == INV_OK;
        locs += location_exists(g_e, IDS[i]) == INV_OK;
        for (unsigned l = 0; l < FUZZ_IDS; l++) {
            inv_level lv;
            if (rc_ok(inv_level_get(g_e, IDS[i], IDS[l], &lv)) == INV_OK) {
                see_level(i, l, &lv);
                levels++;
            }
            inv_level_full f;
            inv_location loc;
            if (read_full(i, l, &f) == INV_OK) /* follows its location's activity */
                CHECK(rc_ok(inv_location_get(g_e, IDS[l], &loc)) == INV_OK &&
                      f.location_active == loc.fields.active);
        }
    }
    CHECK(st.items == items && st.locations == locs && st.levels == levels);
    CHECK(st.holds_active <= st.holds_created);
    CHECK(st.holds_committed + st.holds_released + st.holds_expired <= st.holds_created);
    uint64_t def;
    CHECK(rc_ok(inv_location_default(g_e, &def)) == (locs ? INV_OK : INV_ENOTFOUND));
    verify_reserved();
}

/* ---- driver ---------------------------------------------------------------------- */

static void fuzz_close(void)
{
    inv_close(g_e);
    g_e = NULL;
}

static void fuzz_open(void)
{
    inv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    /* Tiny hints: the tables grow while the program runs. */
    cfg.levels_capacity = 4;
    cfg.items_capacity = 2;
    cfg.locations_capacity = 2;
    cfg.holds_capacity = 2;
    cfg.fsync_policy = INV_FSYNC_NONE;
    cfg.sweep_interval_ms = 1; /* inv_close waits at most this long */
    if (inv_open(&g_e, &cfg) != INV_OK)
        abort(); /* the harness itself failed: not an input problem */
    memset(g_rev, 0, sizeof g_rev);
    g_expiring = false;
    g_untracked_seen = false;
    g_calls = 0;
}

static void run_one(src *s)
{
    uint8_t op = u8(s);
    switch (op % 36) {
    case 0:
        op_location_put(s);
        break;
    case 1:
        op_location_get(s);
        break;
    case 2:
        op_location_default(s);
        break;
    case 3:
        list_loop(s, inv_location_list, location_exists);
        break;
    case 4:
    case 5:
        op_item_put(s);
        break;
    case 6:
        op_item_get(s);
        break;
    case 7:
        op_item_del(s);
        break;
    case 8:
        op_item_by(s);
        break;
    case 9:
        list_loop(s, inv_item_list, item_exists);
        break;
    case 10:
        op_product(s);
        break;
    case 11:
    case 12:
        op_level_set(s);
        break;
    case 13:
    case 14:
        op_level_adjust(s, false);
        break;
    case 15:
        op_level_adjust(s, true);
        break;
    case 16:
        op_level_get(s);
        break;
    case 17:
        op_level_del(s);
        break;
    case 18:
        op_level_list(s);
        break;
    case 19:
    case 20:
        op_hold_create(s);
        break;
    case 21:
        op_hold_end(s, true);
        break;
    case 22:
        op_hold_end(s, false);
        break;
    case 23:
        op_hold_get(s);
        break;
    case 24:
        op_misc(s);
        break;
    case 25:
    case 26:
        op_batch(s);
        break;
    case 27:
    case 28:
        op_level_move(s);
        break;
    case 29:
        op_level_get_full(s);
        break;
    case 30:
        op_level_fulfil(s);
        break;
    case 31:
        op_level_policy(s);
        break;
    case 32:
        op_location_active(s);
        break;
    case 33:
        op_hold_end(s, true); /* more commits: committed units to move and fulfil */
        break;
    case 34:
        op_grid_stock(s);
        break;
    default:
        check_all();
        break;
    }
    if (++g_calls >= FUZZ_VERIFY_EVERY)
        verify_reserved();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_e == NULL) {
        fuzz_open();
        if (FUZZ_REOPEN_EVERY > 1)
            atexit(fuzz_close);
    } else if (++g_runs % FUZZ_REOPEN_EVERY == 0) {
        fuzz_close();
        fuzz_open();
    }
    src s = {data, size, 0};
    for (int calls = 0; calls < FUZZ_CALLS_MAX && s.i < s.n; calls++)
        run_one(&s);
    check_all();
    if (FUZZ_REOPEN_EVERY == 1)
        fuzz_close(); /* everything allocated is freed: leaks show */
    return 0;
}
