/*
 * test_records.c — the journal records the change feed reads
 * (docs/JOURNAL.md, "Engine records"): one change of every kind made
 * through the public API, then the journal read back with journal_replay
 * and each record checked byte by byte against the documented layout (not
 * against the engine's structs: the feed decodes these bytes too). Per
 * record: its format (length, version fields), its kind, the word before
 * the change, its time (between wall clock readings taken just before and
 * just after the call) and the actor bytes.
 *
 * Also: journals written in the older formats (LEVEL 1 and 2, LEVEL_COLD
 * 1, DEFAULT of 16 bytes, BATCH 0, HOLD 1) still recover, and records of
 * the new formats with a reserved bit set are refused. inv_set_actor's
 * limits.
 *
 * Times: LEVEL and LEVEL_COLD records read the coarse wall clock, the
 * others the precise one; a window [coarse reading before, precise
 * reading after] holds both (a coarse reading is never ahead of a precise
 * one taken later).
 */
#include "test_util.h"

#include "journal.h"
#include "persist.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
    L1 = 1, /* the first location: the default until s16 */
    L2 = 2,
    L3 = 3, /* deactivated in s10 */
    L4 = 4, /* a transfer's destination */
    I1 = 100,
    I2 = 200, /* made untracked in s11 */
    LONG_TTL_MS = 600000, /* never expires during a test */
    SHORT_TTL_MS = 20, /* expires during a test (waited for, bounded) */
    SWEEP_MS = 5,
    WAIT_MS = 10000, /* bound of every wait for an event */
    RECS_MAX = 4096 /* records one journal read keeps */
};

/* The layout's constants, as docs/JOURNAL.md states them. */
enum {
    T_LEVEL = 16,
    T_DEFAULT = 19,
    T_HOLD = 20,
    T_BATCH = 22,
    T_LEVEL_COLD = 23,
    LEVEL_V3_LEN = 48,
    LEVEL_COLD_V2_LEN = 112,
    DEFAULT_LEN = 24,
    BATCH_HEAD = 48, /* then the stamp (16) and the actor */
    BATCH_CHANGE = 88,
    BATCH_IMAGE = 56,
    HOLD_HEAD = 104,
    HOLD_LINE = 32,
    HOLD_IMAGE = 24,
    HOLD_TAIL = 16,
    HOLD_INCARNATION = 8, /* format 3: after the tail */
    LINE_NONE = 0xffff
};

#define W1_TOMB (1ULL << 61)
#define W0_RULES (1ULL << 62)
#define W0_UNTRACKED (1ULL << 63)
#define COLD_INACTIVE (1ULL << 32)
#define COLD_CONTINUE (1ULL << 33)
#define COLD_LIMIT_SHIFT 34

static const char ACTOR[] = "clerk-7 \xce\xb1"; /* any bytes: UTF-8 here */

/* ---- reading bytes ------------------------------------------------------- */

static uint64_t u64_at(const uint8_t *p, size_t off)
{
    uint64_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static uint32_t u32_at(const uint8_t *p, size_t off)
{
    uint32_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static uint16_t u16_at(const uint8_t *p, size_t off)
{
    uint16_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* A level word: available in the low 32 bits, held above. */
static uint64_t word(int64_t available, int64_t held)
{
    return (uint64_t)(uint32_t)(int32_t)available | (uint64_t)held << 32;
}

/* ---- the journal, read back ---------------------------------------------- */

typedef struct {
    uint64_t pos;
    uint8_t type;
    uint32_t len;
    uint8_t *p;
} rec;

typedef struct {
    rec v[RECS_MAX];
    size_t n;
} recs;

static int collect(void *ctx, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    recs *r = ctx;
    cr_assert_lt(r->n, (size_t)RECS_MAX, "more records than the test keeps");
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, payload, len);
    r->v[r->n++] = (rec){pos, type, len, copy};
    return 0;
}

static recs *read_journal(const char *dir)
{
    recs *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    char err[512] = "";
    uint64_t end = 0;
    int rc = journal_replay(dir, 0, false, collect, r, &end, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "journal_replay: %s", err);
    return r;
}

static void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].p);
    free(r);
}

static const rec *rec_at(const recs *r, uint64_t pos)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].pos == pos)
            return &r->v[i];
    cr_assert_fail("no record at position %" PRIu64, pos);
    return NULL;
}

/* ---- one step: a call between two clock readings ------------------------- */

typedef struct {
    int64_t lo, hi; /* the window the change's time must lie in */
    uint64_t pos; /* inv_last_write_position() after the call */
    inv_level_full full; /* the level the step is about, after it */
} step;

static int64_t wall_lo(void)
{
    return clock_ms_of(clock_read(CLOCK_REALTIME_COARSE));
}

static step step_begin(void)
{
    return (step){.lo = wall_lo()};
}

/* Ends a step: its window, its position, and (item, loc)'s level after it
 * (item 0: none to read). */
static void step_end(step *s, inv_engine *e, uint64_t item, uint64_t loc)
{
    s->hi = clock_wall_ms();
    s->pos = inv_last_write_position();
    if (item)
        cr_assert_eq(inv_level_get_full(e, item, loc, &s->full), INV_OK);
}

/* One step: call (an inv_* call answering INV_OK) between two clock
 * readings, then st's position and (item, loc)'s level. */
#define STEP(st, e, item, loc, call)                                             \
    do {                                                                         \
        (st) = step_begin();                                                     \
        int step_rc_ = (call);                                                   \
        cr_assert_eq(step_rc_, INV_OK, "%s: %s", #call, inv_strerror(step_rc_)); \
        step_end(&(st), e, item, loc);                                           \
    } while (0)

static void assert_time_in(int64_t t, const step *s, const char *what)
{
    cr_assert(t >= s->lo && t <= s->hi, "%s: time %" PRId64 " outside [%" PRId64 ", %" PRId64 "]",
              what, t, s->lo, s->hi);
}

/* ---- the meta word -------------------------------------------------------- */

static void assert_meta(uint64_t meta, inv_feed_kind kind, bool created, const step *s,
                        const char *what)
{
    cr_assert_eq(meta >> 53, 0, "%s: meta's zero bits set (%#" PRIx64 ")", what, meta);
    cr_assert_eq((meta >> 44) & 0xff, (uint64_t)kind, "%s: kind %" PRIu64 ", want %d", what,
                 (meta >> 44) & 0xff, kind);
    cr_assert_eq((meta >> 52) & 1, (uint64_t)created, "%s: created bit", what);
    assert_time_in((int64_t)(meta & ((1ULL << 44) - 1)), s, what);
}

/* The updated_at the level reports is its last change's record time, in
 * whole seconds. */
static void assert_updated_matches(uint64_t meta, const step *s, const char *what)
{
    int64_t time_ms = (int64_t)(meta & ((1ULL << 44) - 1));
    cr_assert_eq(s->full.updated_at_ms, time_ms / 1000 * 1000,
                 "%s: updated_at %" PRId64 " is not the record's second (%" PRId64 ")", what,
                 s->full.updated_at_ms, time_ms);
}

/* What LEVEL (format 3) and LEVEL_COLD (format 2) records share: the
 * four words of the level after, then (at before_at) the w0 before, and
 * the meta last. Returns the record. */
typedef struct {
    uint8_t type;
    uint32_t len, before_at;
} level_format;

static const level_format LEVEL_V3 = {T_LEVEL, LEVEL_V3_LEN, 32};
static const level_format LEVEL_COLD_V2 = {T_LEVEL_COLD, LEVEL_COLD_V2_LEN, 64};

typedef struct {
    uint64_t item, loc;
    inv_feed_kind kind;
    bool created;
    uint64_t w0_before, w0_after;
} level_want;

static const rec *check_level_words(const recs *r, const step *s, const level_format *f,
                                    const level_want *w, const char *what)
{
    const rec *x = rec_at(r, s->pos);
    cr_assert(x->type == f->type && x->len == f->len, "%s: type %u, %u bytes", what, x->type,
              x->len);
    cr_assert(u64_at(x->p, 0) == w->item && u64_at(x->p, 8) == w->loc, "%s: the level", what);
    cr_assert_eq(u64_at(x->p, 16), w->w0_after, "%s: w0 %#" PRIx64 ", want %#" PRIx64, what,
                 u64_at(x->p, 16), w->w0_after);
    cr_assert_eq(u64_at(x->p, 24) & ~W1_TOMB, s->pos, "%s: the revision is the position", what);
    uint64_t before = u64_at(x->p, f->before_at), meta = u64_at(x->p, f->len - 8);
    cr_assert_eq(before, w->w0_before, "%s: w0_before %#" PRIx64 ", want %#" PRIx64, what, before,
                 w->w0_before);
    assert_meta(meta, w->kind, w->created, s, what);
    if (s->full.revision == s->pos) /* the step's level is this record's */
        assert_updated_matches(meta, s, what);
    return x;
}

/* A LEVEL record, format 3. */
static void check_level(const recs *r, const step *s, level_want w, const char *what)
{
    (void)check_level_words(r, s, &LEVEL_V3, &w, what);
}

/* A LEVEL_COLD record, format 2: the level after, the level before, the
 * meta. Returns its bytes for the caller's checks of the cold words. */
static const uint8_t *check_cold(const recs *r, const step *s, level_want w, const char *what)
{
    return check_level_words(r, s, &LEVEL_COLD_V2, &w, what)->p;
}

/* ---- holds and batches ------------------------------------------------------- */

/* The HOLD record of hold id with the given kind and target at or after
 * position from (the first one). */
static const rec *find_hold(const recs *r, uint64_t from, const char *id, uint8_t kind,
                            uint8_t target)
{
    for (size_t i = 0; i < r->n; i++) {
        const rec *x = &r->v[i];
        if (x->pos >= from && x->type == T_HOLD && x->len >= HOLD_HEAD && x->p[0] == kind &&
            x->p[1] == target && x->p[3] == strlen(id) && memcmp(x->p + 40, id, strlen(id)) == 0)
            return x;
    }
    cr_assert_fail("no HOLD record of %s (kind %u, target %u)", id, kind, target);
    return NULL;
}

/* A HOLD record, format 3: its time (by kind) in the window, its actor,
 * an incarnation. */
static void check_hold(const rec *x, const step *s, const char *actor, size_t actor_len,
                       const char *what)
{
    const uint8_t *p = x->p;
    cr_assert_eq(u32_at(p, 8), 3, "%s: version", what);
    size_t n_lines = u16_at(p, 4);
    size_t tail = HOLD_HEAD + n_lines * (HOLD_LINE + 2 * HOLD_IMAGE);
    size_t attrs_at = tail + HOLD_TAIL + HOLD_INCARNATION;
    cr_assert_geq(x->len, attrs_at, "%s: a tail", what);
    cr_assert_neq(u64_at(p, tail + HOLD_TAIL), 0, "%s: an incarnation", what);
    size_t buyer = p[tail + 8], ref = u16_at(p, tail + 10), alen = p[tail + 9];
    cr_assert_eq(x->len, attrs_at + pad8(buyer + ref + alen), "%s: length", what);
    cr_assert_eq(alen, actor_len, "%s: actor length %zu, want %zu", what, alen, actor_len);
    if (actor_len)
        cr_assert_eq(memcmp(p + attrs_at + buyer + ref, actor, actor_len), 0,
                     "%s: the actor's bytes", what);
    int64_t t = p[0] == 1 ? (int64_t)u64_at(p, tail) /* create: created_at_ms */
                          : (int64_t)u64_at(p, 32); /* end, extend: ended_at_ms */
    assert_time_in(t, s, what);
}

/* The format 1 batch record at s->pos: its header, stamp and actor;
 * *head gets where its change slots start. */
static const rec *check_batch_head(const recs *r, const step *s, const char *actor,
                                   size_t actor_len, size_t *head, const char *what)
{
    const rec *x = rec_at(r, s->pos);
    cr_assert_eq(x->type, T_BATCH, "%s: type %u", what, x->type);
    const uint8_t *p = x->p;
    cr_assert(p[8] == 1 && p[9] == 1, "%s: a final, applied record", what);
    cr_assert_eq(u16_at(p, 10), 1, "%s: format", what);
    assert_time_in((int64_t)u64_at(p, 48), s, what);
    cr_assert_eq(p[56], actor_len, "%s: actor length %u", what, p[56]);
    for (int i = 57; i < 64; i++)
        cr_assert_eq(p[i], 0, "%s: stamp byte %d", what, i);
    if (actor_len)
        cr_assert_eq(memcmp(p + 64, actor, actor_len), 0, "%s: the actor's bytes", what);
    *head = 64 + pad8(actor_len);
    return x;
}

/* Change slot i of a batch record. */
static const uint8_t *batch_change(const rec *x, size_t head, size_t i)
{
    cr_assert_lt(i, u32_at(x->p, 12));
    return x->p + head + i * BATCH_CHANGE;
}

/* ---- the scenario ---------------------------------------------------------------- */

static void setup_catalog(inv_engine *e)
{
    for (uint64_t loc = L1; loc <= L4; loc++)
        cr_assert_eq(inv_location_put(e, loc, NULL), INV_OK);
    tu_put_item(e, I1, true);
    tu_put_item(e, I2, true);
}

static void wait_expired(inv_engine *e, const char *id)
{
    inv_hold_info info;
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    do {
        cr_assert_eq(inv_hold_get(e, id, strlen(id), &info), INV_OK);
        if (info.state == INV_HOLD_EXPIRED)
            return;
        tu_sleep_ms(2);
    } while (!tu_past(deadline));
    cr_assert_fail("hold %s never expired", id);
}

/* Every step's window, position and level. */
typedef struct {
    step set_new, set, create, adjust, move, fulfil, ret, policy, activity, tracking, del;
    step transfer, batch, h_create, h_extend, h_commit, h_release, h_expire, def;
} steps;

static void run_levels(inv_engine *e, steps *s)
{
    STEP(s->set_new, e, I1, L1, inv_level_set(e, I1, L1, 10, 0, NULL));
    STEP(s->set, e, I1, L1, inv_level_set(e, I1, L1, 15, 0, NULL));
    STEP(s->create, e, I1, L2, inv_level_create(e, I1, L2, 5, NULL));
    STEP(s->adjust, e, I1, L1, inv_level_adjust(e, I1, L1, -3, INV_NO_FLOOR, NULL));
    STEP(s->move, e, I1, L1,
         inv_level_move(e, I1, L1, 2, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, NULL));
}

static void run_cold(inv_engine *e, steps *s)
{
    inv_hold_line hl = {I1, L2, 2};
    cr_assert_eq(inv_hold_create(e, "hc", 2, LONG_TTL_MS, &hl, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "hc", 2), INV_OK); /* L2: 3 available, 2 committed */
    STEP(s->fulfil, e, I1, L2, inv_level_fulfil(e, I1, L2, 1));
    STEP(s->ret, e, I1, L2,
         inv_level_move(e, I1, L2, 1, INV_QTY_COMMITTED, INV_QTY_AVAILABLE, INV_NO_FLOOR, NULL));
    STEP(s->policy, e, I1, L1, inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, 5));
    tu_set_level(e, I1, L3, 1);
    inv_location_fields off = {.mask = INV_LOC_ACTIVE, .active = false};
    STEP(s->activity, e, I1, L3, inv_location_put(e, L3, &off));
    tu_set_level(e, I2, L1, 6);
    STEP(s->tracking, e, I2, L1, tu_item_put_untracked(e, I2));
    STEP(s->del, e, 0, 0, inv_level_del(e, I1, L2));
}

static void run_batches(inv_engine *e, steps *s)
{
    STEP(s->transfer, e, 0, 0,
         inv_level_transfer(e, I1, L1, L4, 1, INV_QTY_AVAILABLE, INV_QTY_AVAILABLE));
    inv_hold_line hl = {I1, L1, 1};
    inv_batch_line lines[] = {
        {.op = INV_BATCH_LEVEL_ADJUST,
         .item = I1,
         .location = L1,
         .qty = 2,
         .floor = INV_NO_FLOOR,
         .reason = INV_REASON_RESTOCK,
         .ref = "po-7",
         .ref_len = 4},
        {.op = INV_BATCH_HOLD_CREATE,
         .hold_id = "hb",
         .hold_id_len = 2,
         .ttl_ms = LONG_TTL_MS,
         .hold_lines = &hl,
         .n_hold_lines = 1},
    };
    inv_batch_opts opts = {"req-7", 5};
    cr_assert_eq(inv_set_actor(ACTOR, strlen(ACTOR)), INV_OK); /* the transfer had none */
    STEP(s->batch, e, 0, 0, inv_batch_ex(e, lines, 2, &opts, NULL, NULL));
}

static void run_holds(inv_engine *e, steps *s)
{
    inv_hold_line hl = {I1, L1, 1};
    STEP(s->h_create, e, 0, 0, inv_hold_create(e, "h1", 2, LONG_TTL_MS, &hl, 1, NULL));
    STEP(s->h_extend, e, 0, 0, inv_hold_extend(e, "h1", 2, LONG_TTL_MS));
    STEP(s->h_commit, e, 0, 0, inv_hold_commit(e, "h1", 2));
    cr_assert_eq(inv_hold_create(e, "h2", 2, LONG_TTL_MS, &hl, 1, NULL), INV_OK);
    STEP(s->h_release, e, 0, 0, inv_hold_release(e, "h2", 2));
    s->h_expire = step_begin();
    cr_assert_eq(inv_hold_create(e, "h3", 2, SHORT_TTL_MS, &hl, 1, NULL), INV_OK);
    wait_expired(e, "h3");
    step_end(&s->h_expire, e, 0, 0);
    STEP(s->def, e, 0, 0, inv_location_set_default(e, L2));
}

static void check_level_records(const recs *r, const steps *s)
{
    check_level(r, &s->set_new, (level_want){I1, L1, INV_FEED_LEVEL_SET, true, 0, word(10, 0)},
                "set (new)");
    check_level(r, &s->set,
                (level_want){I1, L1, INV_FEED_LEVEL_SET, false, word(10, 0), word(15, 0)}, "set");
    check_level(r, &s->create, (level_want){I1, L2, INV_FEED_LEVEL_SET, true, 0, word(5, 0)},
                "create");
    check_level(r, &s->adjust,
                (level_want){I1, L1, INV_FEED_LEVEL_ADJUST, false, word(15, 0), word(12, 0)},
                "adjust");
    check_level(
        r, &s->tracking,
        (level_want){I2, L1, INV_FEED_LEVEL_TRACKING, false, word(6, 0), word(6, 0) | W0_UNTRACKED},
        "tracking");
}

static void check_cold_records(const recs *r, const steps *s)
{
    const uint8_t *p = check_cold(
        r, &s->move, (level_want){I1, L1, INV_FEED_LEVEL_MOVE, false, word(12, 0), word(10, 0)},
        "move");
    cr_assert_eq((uint32_t)u64_at(p, 40), 2, "move: damaged after");
    cr_assert_eq((uint32_t)u64_at(p, 80), 0, "move: damaged before");
    /* the cold part before holds the adjust's time: the level's updated_s */
    cr_assert_eq((int64_t)u32_at(p, 100) * 1000, s->adjust.full.updated_at_ms,
                 "move: updated before");
    check_cold(r, &s->fulfil,
               (level_want){I1, L2, INV_FEED_LEVEL_FULFIL, false, word(3, 2), word(3, 1)},
               "fulfil");
    check_cold(r, &s->ret,
               (level_want){I1, L2, INV_FEED_LEVEL_RETURN, false, word(3, 1), word(4, 0)},
               "return");
    p = check_cold(
        r, &s->policy,
        (level_want){I1, L1, INV_FEED_LEVEL_POLICY, false, word(10, 0), word(10, 0) | W0_RULES},
        "policy");
    cr_assert_eq(u64_at(p, 32), COLD_CONTINUE | 5ULL << COLD_LIMIT_SHIFT, "policy: rules after");
    cr_assert_eq(u64_at(p, 72), 0, "policy: rules before");
    p = check_cold(
        r, &s->activity,
        (level_want){I1, L3, INV_FEED_LEVEL_ACTIVITY, false, word(1, 0), word(1, 0) | W0_RULES},
        "activity");
    cr_assert_eq(u64_at(p, 32), COLD_INACTIVE, "activity: rules after");
    p = check_cold(r, &s->del, (level_want){I1, L2, INV_FEED_LEVEL_DELETE, false, word(4, 0), 0},
                   "delete");
    cr_assert(u64_at(p, 24) & W1_TOMB, "delete: a tombstone");
}

/* The transfer: out of L1, L4 created, into L4, all TRANSFER on line 0;
 * then a settle of L4's pending unit, on no line. */
static void check_transfer(const recs *r, const steps *s)
{
    size_t head;
    const rec *x = check_batch_head(r, &s->transfer, NULL, 0, &head, "transfer");
    size_t n = u32_at(x->p, 12), on_line = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = batch_change(x, head, i);
        cr_assert_eq(c[69], 0, "transfer: change %zu's zero byte", i);
        if (u16_at(c, 70) == 0) {
            cr_assert_eq(c[68], INV_FEED_LEVEL_TRANSFER, "transfer: change %zu's kind", i);
            on_line++;
        } else {
            cr_assert_eq(u16_at(c, 70), LINE_NONE, "transfer: change %zu's line", i);
            cr_assert_eq(c[68], INV_FEED_LEVEL_SETTLE, "transfer: change %zu's kind", i);
        }
    }
    cr_assert_eq(on_line, 3, "transfer: out, create, in");
}

/* The batch: the adjust (line 0), the hold line (line 1), settles; the
 * note of line 0, the request id, the embedded hold. */
static void check_batch(const recs *r, const steps *s)
{
    size_t head;
    const rec *x = check_batch_head(r, &s->batch, ACTOR, strlen(ACTOR), &head, "batch");
    const uint8_t *p = x->p;
    size_t n = u32_at(p, 12), cap = u32_at(p, 28);
    cr_assert_geq(n, 2);
    cr_assert(batch_change(x, head, 0)[68] == INV_FEED_LEVEL_ADJUST &&
                  u16_at(batch_change(x, head, 0), 70) == 0,
              "batch: the adjust");
    cr_assert(batch_change(x, head, 1)[68] == INV_FEED_HOLD_CREATE &&
                  u16_at(batch_change(x, head, 1), 70) == 1,
              "batch: the hold line");
    for (size_t i = 2; i < n; i++)
        cr_assert(batch_change(x, head, i)[68] == INV_FEED_LEVEL_SETTLE &&
                      u16_at(batch_change(x, head, i), 70) == LINE_NONE,
                  "batch: settle %zu", i);
    const uint8_t *note = p + head + cap * (BATCH_CHANGE + 2 * BATCH_IMAGE);
    cr_assert_eq(u32_at(p, 32), 8 + 8, "batch: one note, its reference padded");
    cr_assert(u32_at(note, 0) == 0 && note[4] == INV_REASON_RESTOCK && u16_at(note, 6) == 4 &&
                  memcmp(note + 8, "po-7", 4) == 0,
              "batch: line 0's note");
    const uint8_t *idem = note + u32_at(p, 32);
    cr_assert(u32_at(p, 36) > 5 && memmem(idem, u32_at(p, 36), "req-7", 5), "batch: request id");
    cr_assert_eq(u32_at(p, 20), 1, "batch: one embedded hold");
    const uint8_t *hold = p + x->len - u32_at(p, 24);
    rec embedded = {x->pos, T_HOLD, u32_at(hold, 0), (uint8_t *)hold + 8};
    cr_assert(embedded.p[0] == 1 && embedded.p[3] == 2 && memcmp(embedded.p + 40, "hb", 2) == 0);
    /* its time is the create's; the actor is in the batch's stamp */
    check_hold(&embedded, &s->batch, NULL, 0, "batch: embedded hold");
}

static void check_hold_records(const recs *r, const steps *s)
{
    size_t a = strlen(ACTOR);
    check_hold(find_hold(r, s->h_create.pos, "h1", 1, INV_HOLD_HELD), &s->h_create, ACTOR, a,
               "hold create");
    check_hold(find_hold(r, s->h_extend.pos, "h1", 4, INV_HOLD_HELD), &s->h_extend, ACTOR, a,
               "hold extend");
    check_hold(find_hold(r, s->h_commit.pos, "h1", 2, INV_HOLD_COMMITTED), &s->h_commit, ACTOR, a,
               "hold commit");
    check_hold(find_hold(r, s->h_release.pos, "h2", 2, INV_HOLD_RELEASED), &s->h_release, ACTOR, a,
               "hold release");
    /* the sweeper's: no actor */
    check_hold(find_hold(r, s->h_release.pos, "h3", 2, INV_HOLD_EXPIRED), &s->h_expire, NULL, 0,
               "hold expiry");
    const rec *d = rec_at(r, s->def.pos);
    cr_assert(d->type == T_DEFAULT && d->len == DEFAULT_LEN, "default: type %u, %u bytes", d->type,
              d->len);
    cr_assert_eq(u64_at(d->p, 0), L2);
    cr_assert_eq(u64_at(d->p, 8), s->def.pos, "default: its version is its position");
    assert_time_in((int64_t)u64_at(d->p, 16), &s->def, "default");
}

Test(records, every_change_writes_its_kind_time_before_word_and_actor)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "records");
    inv_engine *e = tu_open_config(&(inv_config){
        .data_dir = dir, .fsync_policy = INV_FSYNC_NONE, .sweep_interval_ms = SWEEP_MS});
    setup_catalog(e);
    cr_assert_eq(inv_set_actor(ACTOR, strlen(ACTOR)), INV_OK);
    steps s;
    memset(&s, 0, sizeof s);
    run_levels(e, &s);
    run_cold(e, &s);
    cr_assert_eq(inv_set_actor(NULL, 0), INV_OK); /* the transfer names nobody */
    run_batches(e, &s);
    run_holds(e, &s);
    cr_assert_eq(inv_set_actor(NULL, 0), INV_OK);
    inv_close(e);
    recs *r = read_journal(dir);
    check_level_records(r, &s);
    check_cold_records(r, &s);
    check_transfer(r, &s);
    check_batch(r, &s);
    check_hold_records(r, &s);
    recs_free(r);
    /* and the journal recovers */
    e = tu_open_dir(dir, INV_FSYNC_NONE);
    inv_level lv = tu_level_of(e, I1, L4);
    cr_assert_eq(lv.available, 1);
    uint64_t def = 0;
    cr_assert(inv_location_default(e, &def) == INV_OK && def == L2);
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* ---- inv_set_actor ----------------------------------------------------------------- */

Test(records, an_actor_label_is_at_most_INV_ACTOR_MAX_bytes)
{
    char label[INV_ACTOR_MAX + 1];
    memset(label, 'a', sizeof label);
    cr_assert_eq(inv_set_actor(label, INV_ACTOR_MAX), INV_OK);
    cr_assert_eq(inv_set_actor(label, INV_ACTOR_MAX + 1), INV_ELIMIT);
    cr_assert_eq(inv_set_actor(NULL, 5), INV_OK, "NULL clears");
    cr_assert_eq(inv_set_actor(label, 0), INV_OK, "0 bytes clear");
}

/* A refused label leaves the one set before: a hold made after the
 * refusal still names it. */
Test(records, a_refused_actor_label_changes_nothing)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "records");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    setup_catalog(e);
    tu_set_level(e, I1, L1, 5);
    char big[INV_ACTOR_MAX + 1];
    memset(big, 'z', sizeof big);
    cr_assert_eq(inv_set_actor("kept", 4), INV_OK);
    cr_assert_eq(inv_set_actor(big, sizeof big), INV_ELIMIT);
    inv_hold_line hl = {I1, L1, 1};
    step st = step_begin();
    cr_assert_eq(inv_hold_create(e, "k", 1, LONG_TTL_MS, &hl, 1, NULL), INV_OK);
    step_end(&st, e, 0, 0);
    cr_assert_eq(inv_set_actor(NULL, 0), INV_OK);
    inv_close(e);
    recs *r = read_journal(dir);
    check_hold(find_hold(r, st.pos, "k", 1, INV_HOLD_HELD), &st, "kept", 4, "hold");
    recs_free(r);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* ---- older formats still recover; hostile new ones are refused --------------------- */

/* A data directory with the scenario's catalog, closed. */
static void catalog_dir(char *dir, size_t cap)
{
    tu_tmpdir(dir, cap, "records");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    setup_catalog(e);
    inv_close(e);
}

/* The journal of dir opened for appending after its last record. */
static journal *append_open(const char *dir)
{
    char err[512] = "";
    uint64_t end = 0;
    cr_assert_eq(journal_replay(dir, 0, false, NULL, NULL, &end, err, sizeof err), INV_OK, "%s",
                 err);
    journal *j = NULL;
    journal_config jc = {.dir = dir, .start_position = end, .policy = INV_FSYNC_NONE};
    cr_assert_eq(journal_open(&j, &jc, err, sizeof err), INV_OK, "%s", err);
    return j;
}

/* Appends a record of type whose bytes at each offset in pos_at (ending
 * with SIZE_MAX) get its own position (revisions, versions, batch ids);
 * returns that position. */
static uint64_t append(journal *j, uint8_t type, uint8_t *buf, uint32_t len, const size_t *pos_at)
{
    uint64_t pos = journal_reserve(j, len);
    cr_assert_neq(pos, 0);
    for (size_t i = 0; pos_at[i] != SIZE_MAX; i++)
        memcpy(buf + pos_at[i], &pos, 8);
    cr_assert_eq(journal_publish(j, pos, type, buf, len), INV_OK);
    return pos;
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
    memcpy(p + off, &v, 2);
}

static const size_t AT_W1[] = {24, SIZE_MAX};

/* A format 0 batch: one applied change of (I1, L1) by +1, to w0. */
static uint32_t batch_v0(uint8_t *b, uint64_t w0)
{
    memset(b, 0, BATCH_HEAD + BATCH_CHANGE + 2 * BATCH_IMAGE);
    b[8] = 1, b[9] = 1; /* final, applied */
    put32(b, 12, 1), put32(b, 16, 1), put32(b, 28, 1); /* changes, images, capacity */
    uint8_t *c = b + BATCH_HEAD, *im = c + BATCH_CHANGE;
    put64(c, 0, I1), put64(c, 8, L1), put64(c, 16, 1), put32(c, 40, 1); /* applied */
    put64(im, 8, w0);
    return BATCH_HEAD + BATCH_CHANGE + 2 * BATCH_IMAGE;
}

/* A format 1 hold record: hold "old" created, HELD, reserving 2 of (I1,
 * L2), whose word becomes w0. */
static uint32_t hold_v1(uint8_t *b, uint64_t w0, int64_t created_ms)
{
    uint32_t len = HOLD_HEAD + HOLD_LINE + 2 * HOLD_IMAGE + HOLD_TAIL;
    memset(b, 0, len);
    b[0] = 1, b[1] = INV_HOLD_HELD, b[2] = 1, b[3] = 3;
    put16(b, 4, 1), put16(b, 6, 1), put32(b, 8, 1); /* lines, images, version */
    put64(b, 16, (uint64_t)(clock_wall_ms() + LONG_TTL_MS));
    memcpy(b + 40, "old", 3);
    uint8_t *line = b + HOLD_HEAD, *im = line + HOLD_LINE, *tail = im + 2 * HOLD_IMAGE;
    put64(line, 0, I1), put64(line, 8, L2), put64(line, 16, 2), put32(line, 24, 1);
    im[1] = 1, put64(im, 8, w0); /* line 0, reserved; w1 below */
    put64(tail, 0, (uint64_t)created_ms);
    return len;
}

Test(records, a_journal_of_the_older_formats_still_recovers)
{
    char dir[64];
    catalog_dir(dir, sizeof dir);
    journal *j = append_open(dir);
    uint8_t b[512];
    memset(b, 0, sizeof b);
    put64(b, 0, I1), put64(b, 8, L1), put64(b, 16, word(7, 0));
    append(j, T_LEVEL, b, 32, AT_W1); /* LEVEL format 1 */
    memset(b, 0, sizeof b);
    put64(b, 0, I1), put64(b, 8, L2), put64(b, 16, word(9, 0)), put32(b, 32, 1600000000);
    append(j, T_LEVEL, b, 40, AT_W1); /* format 2 */
    memset(b, 0, sizeof b);
    put64(b, 0, I1), put64(b, 8, L3), put64(b, 16, word(4, 0)), put64(b, 40, 3); /* damaged */
    put32(b, 56, 1500000000), put32(b, 60, 1600000001);
    append(j, T_LEVEL_COLD, b, 64, AT_W1); /* LEVEL_COLD format 1 */
    memset(b, 0, sizeof b);
    put64(b, 0, L2);
    append(j, T_DEFAULT, b, 16, (const size_t[]){8, SIZE_MAX}); /* 16 bytes */
    uint32_t len = batch_v0(b, word(8, 0));
    append(j, T_BATCH, b, len,
           (const size_t[]){0, BATCH_HEAD + 32, BATCH_HEAD + BATCH_CHANGE + 16, SIZE_MAX});
    int64_t created_ms = clock_wall_ms();
    len = hold_v1(b, word(7, 2), created_ms);
    append(j, T_HOLD, b, len, (const size_t[]){HOLD_HEAD + HOLD_LINE + 16, SIZE_MAX});
    cr_assert_eq(journal_close(j), INV_OK);

    for (int round = 0; round < 2; round++) { /* the second: after new records on top */
        inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
        cr_assert_eq(tu_level_of(e, I1, L1).available, 8 + round, "v1 level, then the batch");
        inv_level l2 = tu_level_of(e, I1, L2);
        cr_assert(l2.available == 7 && l2.reserved == 2, "v2 level, then the hold");
        inv_level_full f;
        cr_assert_eq(inv_level_get_full(e, I1, L3, &f), INV_OK);
        cr_assert_eq(f.qty[INV_QTY_DAMAGED], 3);
        cr_assert_eq(f.updated_at_ms, 1600000001000LL);
        cr_assert_eq(inv_level_get_full(e, I1, L2, &f), INV_OK);
        cr_assert_eq(f.updated_at_ms, 1600000000000LL, "the v2 record's time");
        uint64_t def = 0;
        cr_assert(inv_location_default(e, &def) == INV_OK && def == L2);
        inv_hold_info info;
        cr_assert_eq(inv_hold_get(e, "old", 3, &info), INV_OK);
        cr_assert(info.state == INV_HOLD_HELD && info.created_at_ms == created_ms);
        if (round == 0)
            cr_assert_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, NULL), INV_OK);
        inv_close(e);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* A hold recovered from a record before format 3 has no incarnation (0);
 * its next record is written in format 3, which must name one: a commit
 * of it, then a reopen, finds it committed (format 3 refuses 0). */
Test(records, a_hold_of_an_older_format_can_be_ended_and_recovered)
{
    uint8_t b[512];
    uint32_t len = hold_v1(b, word(7, 2), clock_wall_ms()); /* its image: 7 + 2 held */
    char dir[64];
    catalog_dir(dir, sizeof dir);
    journal *j = append_open(dir);
    append(j, T_HOLD, b, len, (const size_t[]){HOLD_HEAD + HOLD_LINE + 16, SIZE_MAX});
    cr_assert_eq(journal_close(j), INV_OK);
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    cr_assert_eq(inv_hold_commit(e, "old", 3), INV_OK);
    inv_close(e);
    e = NULL;
    int rc = inv_open(&e, &(inv_config){.data_dir = dir, .fsync_policy = INV_FSYNC_NONE});
    cr_assert_eq(rc, INV_OK, "reopen after the commit: %s", inv_strerror(rc));
    inv_hold_info info;
    cr_assert_eq(inv_hold_get(e, "old", 3, &info), INV_OK);
    cr_assert_eq(info.state, INV_HOLD_COMMITTED);
    inv_level l2 = tu_level_of(e, I1, L2);
    cr_assert(l2.available == 7 && l2.reserved == 0, "the 2 held are sold");
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* One record appended to a good journal: what the open answers (a hostile
 * record: INV_EINVALID; its well-formed twin: INV_OK, so the refusal is
 * the hostile byte's doing). */
static int open_with(uint8_t type, uint8_t *b, uint32_t len, const size_t *pos_at)
{
    char dir[64];
    catalog_dir(dir, sizeof dir);
    journal *j = append_open(dir);
    append(j, type, b, len, pos_at);
    cr_assert_eq(journal_close(j), INV_OK);
    inv_engine *e = NULL;
    int rc = inv_open(&e, &(inv_config){.data_dir = dir, .fsync_policy = INV_FSYNC_NONE});
    cr_assert_eq(rc == INV_OK, e != NULL);
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
    return rc;
}

static void assert_refused(uint8_t type, uint8_t *b, uint32_t len, const size_t *pos_at,
                           const char *what)
{
    int rc = open_with(type, b, len, pos_at);
    cr_assert_eq(rc, INV_EINVALID, "%s: opened (%s)", what, inv_strerror(rc));
}

static void assert_accepted(uint8_t type, uint8_t *b, uint32_t len, const size_t *pos_at,
                            const char *what)
{
    int rc = open_with(type, b, len, pos_at);
    cr_assert_eq(rc, INV_OK, "%s: refused (%s)", what, inv_strerror(rc));
}

/* A LEVEL record of format 3 for (I1, L1) with this meta and before word. */
static void level_v3(uint8_t *b, uint64_t w0_before, uint64_t meta)
{
    memset(b, 0, LEVEL_V3_LEN);
    put64(b, 0, I1), put64(b, 8, L1), put64(b, 16, word(1, 0));
    put64(b, 32, w0_before), put64(b, 40, meta);
}

#define META(kind, created) \
    ((uint64_t)clock_wall_ms() | (uint64_t)(kind) << 44 | (uint64_t)(created) << 52)

Test(records, level_records_with_reserved_bits_or_wrong_kinds_are_refused)
{
    uint8_t b[LEVEL_COLD_V2_LEN];
    level_v3(b, 0, META(INV_FEED_LEVEL_SET, 1));
    assert_accepted(T_LEVEL, b, LEVEL_V3_LEN, AT_W1, "a well-formed creation");
    level_v3(b, 0, META(INV_FEED_LEVEL_SET, 0) | 1ULL << 53);
    assert_refused(T_LEVEL, b, LEVEL_V3_LEN, AT_W1, "meta bit 53");
    level_v3(b, 0, META(INV_FEED_LEVEL_MOVE, 0));
    assert_refused(T_LEVEL, b, LEVEL_V3_LEN, AT_W1, "a cold kind on LEVEL");
    level_v3(b, word(3, 0), META(INV_FEED_LEVEL_SET, 1));
    assert_refused(T_LEVEL, b, LEVEL_V3_LEN, AT_W1, "a creation with a word before");
    level_v3(b, 0, META(INV_FEED_LEVEL_ADJUST, 1));
    assert_refused(T_LEVEL, b, LEVEL_V3_LEN, AT_W1, "an adjust that created");
    level_v3(b, 0, 0);
    put32(b, 36, 1); /* as format 2: updated_s, then a zero word not zero */
    assert_refused(T_LEVEL, b, 40, AT_W1, "format 2's zero word");
    memset(b, 0, sizeof b);
    put64(b, 0, I1), put64(b, 8, L1), put64(b, 16, word(1, 0));
    put64(b, 104, META(INV_FEED_LEVEL_MOVE, 0));
    assert_accepted(T_LEVEL_COLD, b, LEVEL_COLD_V2_LEN, AT_W1, "a well-formed cold change");
    put64(b, 104, META(INV_FEED_LEVEL_ADJUST, 0));
    assert_refused(T_LEVEL_COLD, b, LEVEL_COLD_V2_LEN, AT_W1, "a hot kind on LEVEL_COLD");
    put64(b, 104, META(INV_FEED_LEVEL_MOVE, 1));
    assert_refused(T_LEVEL_COLD, b, LEVEL_COLD_V2_LEN, AT_W1, "a cold change that created");
    put64(b, 104, META(INV_FEED_LEVEL_MOVE, 0));
    put64(b, 72, 1ULL << 30); /* the LOCK bit in the rules before */
    assert_refused(T_LEVEL_COLD, b, LEVEL_COLD_V2_LEN, AT_W1, "a bad cold part before");
}

Test(records, batch_hold_and_default_records_with_reserved_bits_are_refused)
{
    uint8_t b[512];
    static const size_t at_batch[] = {0, BATCH_HEAD + 32, BATCH_HEAD + BATCH_CHANGE + 16, SIZE_MAX};
    uint32_t len = batch_v0(b, word(2, 0));
    b[BATCH_HEAD + 68] = INV_FEED_LEVEL_ADJUST; /* a kind in format 0 */
    assert_refused(T_BATCH, b, len, at_batch, "a kind in a format 0 batch");
    /* as format 1: the stamp between header and slots */
    len = batch_v0(b, word(2, 0));
    uint8_t v1[512];
    memset(v1, 0, sizeof v1);
    memcpy(v1, b, BATCH_HEAD);
    memcpy(v1 + BATCH_HEAD + 16, b + BATCH_HEAD, len - BATCH_HEAD);
    put16(v1, 10, 1);
    put64(v1, 48, (uint64_t)clock_wall_ms());
    static const size_t at_v1[] = {0, BATCH_HEAD + 16 + 32, BATCH_HEAD + 16 + BATCH_CHANGE + 16,
                                   SIZE_MAX};
    v1[BATCH_HEAD + 16 + 68] = INV_FEED_LEVEL_ADJUST;
    assert_accepted(T_BATCH, v1, len + 16, at_v1, "a well-formed format 1 batch");
    v1[60] = 1; /* a stamp's zero byte */
    assert_refused(T_BATCH, v1, len + 16, at_v1, "a stamp's zero byte");
    v1[60] = 0;
    v1[BATCH_HEAD + 16 + 68] = 200; /* no such kind */
    assert_refused(T_BATCH, v1, len + 16, at_v1, "an unknown kind");
    v1[BATCH_HEAD + 16 + 68] = INV_FEED_LEVEL_ADJUST;
    put16(v1, BATCH_HEAD + 16 + 70, INV_BATCH_LINES_MAX); /* beyond every line, not NONE */
    assert_refused(T_BATCH, v1, len + 16, at_v1, "a line beyond the lines");

    static const size_t at_hold[] = {HOLD_HEAD + HOLD_LINE + 16, SIZE_MAX};
    len = hold_v1(b, word(7, 2), clock_wall_ms());
    b[len - HOLD_TAIL + 9] = 1; /* an actor in format 1 */
    assert_refused(T_HOLD, b, len, at_hold, "an actor in a format 1 hold");
    /* format 2 with a 3-byte actor: its padding must be zero */
    len = hold_v1(b, word(7, 2), clock_wall_ms());
    put32(b, 8, 2);
    b[len - HOLD_TAIL + 9] = 3;
    memset(b + len, 0, 8);
    memcpy(b + len, "abc", 3);
    assert_accepted(T_HOLD, b, len + 8, at_hold, "a well-formed format 2 hold");
    b[len + 5] = 'x';
    assert_refused(T_HOLD, b, len + 8, at_hold, "a hold's padding after the actor");
    /* format 3: the incarnation after the tail, never 0 */
    len = hold_v1(b, word(7, 2), clock_wall_ms());
    put32(b, 8, 3);
    memset(b + len, 0, HOLD_INCARNATION);
    assert_refused(T_HOLD, b, len + HOLD_INCARNATION, at_hold, "a format 3 hold of incarnation 0");
    put64(b, len, 7);
    assert_accepted(T_HOLD, b, len + HOLD_INCARNATION, at_hold, "a well-formed format 3 hold");
    assert_refused(T_HOLD, b, len, at_hold, "a format 3 hold without its incarnation");

    memset(b, 0, DEFAULT_LEN);
    put64(b, 0, L2), put64(b, 16, (uint64_t)-5);
    assert_refused(T_DEFAULT, b, DEFAULT_LEN, (const size_t[]){8, SIZE_MAX}, "a negative time");
}
