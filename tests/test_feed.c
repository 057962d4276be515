/*
 * test_feed.c — the change feed (core/feed*.c): the decoder on payloads
 * built by hand byte for byte from docs/JOURNAL.md (the new formats), the
 * reader end to end over an engine as it writes today (every kind, deltas,
 * after images, revisions, reasons, references, request ids, holds),
 * levels reconstructed from a reader that ran beside 8 writer threads,
 * FROM_END, bad positions, a live segment read as it grows (and its
 * zeros ahead turn into records), read errors at the feed's fault sites,
 * retention (history.start, INV_ELIMIT, segments kept inside retention),
 * the offline reader, and level history.
 */
#include "test_util.h"

#include "engine.h"
#include "fault.h"
#include "feed.h"
#include "feed_decode.h"
#include "feed_scan.h"
#include "idem.h"
#include "journal.h"
#include "persist.h"

#include <dirent.h>
#include <sys/stat.h>

/* ---- building payloads by hand ------------------------------------------- */

typedef struct {
    uint8_t b[8192];
    size_t n;
} pb;

static void put(pb *p, const void *v, size_t n)
{
    cr_assert(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, v, n);
    p->n += n;
}
static void put64(pb *p, uint64_t v)
{
    put(p, &v, 8);
}
static void put32(pb *p, uint32_t v)
{
    put(p, &v, 4);
}
static void put16(pb *p, uint16_t v)
{
    put(p, &v, 2);
}
static void put8(pb *p, uint8_t v)
{
    put(p, &v, 1);
}
static void zeros(pb *p, size_t n)
{
    static const uint8_t z[256];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        put(p, z, k);
        n -= k;
    }
}
static void pad8(pb *p)
{
    zeros(p, (8 - p->n % 8) % 8);
}

/* A level's hot word: available in bits 0-31, held in 32-61. */
static uint64_t w0_of(int64_t available, int64_t held)
{
    return (uint64_t)(uint32_t)(int32_t)available | ((uint64_t)held << 32);
}

#define TOMB (1ULL << 61)

static int decode(feed_decoder *d, uint64_t pos, uint8_t type, const pb *p, inv_feed_record *rec)
{
    return feed_decode(d, pos, type, p->b, (uint32_t)p->n, rec);
}

/* A record's kind, position, group and time. */
static void expect_head(const inv_feed_record *r, inv_feed_kind kind, uint64_t pos, uint64_t group,
                        int64_t time_ms)
{
    cr_assert_eq(r->kind, kind, "kind %d", r->kind);
    cr_assert_eq(r->position, pos);
    cr_assert_eq(r->group, group);
    cr_assert_eq(r->time_ms, time_ms);
}

/* ---- the new formats, byte for byte ---------------------------------------- */

Test(feed_decode, level_v3_has_deltas_time_kind_and_created)
{
    feed_decoder d;
    feed_decoder_init(&d);
    pb p = {0};
    put64(&p, 7), put64(&p, 9), put64(&p, w0_of(15, 0)), put64(&p, 1000);
    put64(&p, w0_of(10, 0));
    put64(&p, persist_meta(1234567, INV_FEED_LEVEL_ADJUST, false));
    cr_assert_eq(p.n, 48);
    inv_feed_record r;
    cr_assert_eq(decode(&d, 1000, PERSIST_LEVEL, &p, &r), INV_OK);
    expect_head(&r, INV_FEED_LEVEL_ADJUST, 1000, 1000, 1234567);
    cr_assert_eq(r.n_changes, 1);
    const inv_feed_change *c = &r.changes[0];
    cr_assert_eq(c->item, 7);
    cr_assert_eq(c->location, 9);
    cr_assert_eq(c->delta[INV_QTY_AVAILABLE], 5);
    cr_assert_eq(c->delta[INV_QTY_RESERVED], 0);
    cr_assert_eq(c->after[INV_QTY_AVAILABLE], 15);
    cr_assert(c->after_known & (1u << INV_QTY_AVAILABLE));
    cr_assert(c->after_known & (1u << INV_QTY_RESERVED), "holds nothing: reserved is 0");
    cr_assert_eq(c->revision, 1000);
    cr_assert_not(c->created);

    /* a set that created the level: from nothing */
    p.n = 0;
    put64(&p, 7), put64(&p, 9), put64(&p, w0_of(4, 0)), put64(&p, 1100), put64(&p, 0);
    put64(&p, persist_meta(5, INV_FEED_LEVEL_SET, true));
    cr_assert_eq(decode(&d, 1100, PERSIST_LEVEL, &p, &r), INV_OK);
    cr_assert(r.changes[0].created);
    cr_assert_eq(r.changes[0].delta[INV_QTY_AVAILABLE], 4);

    /* a deletion: everything goes */
    p.n = 0;
    put64(&p, 7), put64(&p, 9), put64(&p, 0), put64(&p, 1200 | TOMB), put64(&p, w0_of(4, 0));
    put64(&p, persist_meta(6, INV_FEED_LEVEL_DELETE, false));
    cr_assert_eq(decode(&d, 1200, PERSIST_LEVEL, &p, &r), INV_OK);
    cr_assert(r.changes[0].deleted);
    cr_assert_eq(r.changes[0].delta[INV_QTY_AVAILABLE], -4);
    cr_assert_eq(r.changes[0].after_known, 0);

    /* a zero bit of the meta word set: refused */
    p.n = 40;
    put64(&p, persist_meta(6, INV_FEED_LEVEL_SET, false) | (1ULL << 60));
    cr_assert_eq(decode(&d, 1200, PERSIST_LEVEL, &p, &r), INV_EINVALID);
    p.n = 40;
    put64(&p, persist_meta(6, INV_FEED_BATCH, false));
    cr_assert_eq(decode(&d, 1200, PERSIST_LEVEL, &p, &r), INV_EINVALID, "not a level kind");
    feed_decoder_free(&d);
}

Test(feed_decode, level_v1_and_v2_are_sets_without_deltas)
{
    feed_decoder d;
    feed_decoder_init(&d);
    pb p = {0};
    put64(&p, 1), put64(&p, 2), put64(&p, w0_of(-3, 0)), put64(&p, 64);
    inv_feed_record r;
    cr_assert_eq(decode(&d, 64, PERSIST_LEVEL, &p, &r), INV_OK);
    cr_assert_eq(r.kind, INV_FEED_LEVEL_SET);
    cr_assert_eq(r.time_ms, 0);
    cr_assert_eq(r.changes[0].after[INV_QTY_AVAILABLE], -3);
    cr_assert_eq(r.changes[0].delta[INV_QTY_AVAILABLE], 0);
    put32(&p, 1700000000), put32(&p, 0);
    cr_assert_eq(decode(&d, 64, PERSIST_LEVEL, &p, &r), INV_OK);
    cr_assert_eq(r.time_ms, 1700000000LL * 1000);
    p.n = 36;
    cr_assert_eq(decode(&d, 64, PERSIST_LEVEL, &p, &r), INV_EINVALID);
    p.n = 32;
    ((uint64_t *)p.b)[3] = 0; /* revision 0 */
    cr_assert_eq(decode(&d, 64, PERSIST_LEVEL, &p, &r), INV_EINVALID);
    feed_decoder_free(&d);
}

/* The cold part: rules, d_s (damaged | safety << 32), q_i (qc | incoming
 * << 32), created_s, updated_s. */
static void put_cold(pb *p, int64_t damaged, int64_t incoming, uint32_t updated_s)
{
    put64(p, 0);
    put64(p, (uint64_t)damaged);
    put64(p, (uint64_t)incoming << 32);
    put32(p, 100), put32(p, updated_s);
}

Test(feed_decode, level_cold_v2_has_deltas_of_every_quantity)
{
    feed_decoder d;
    feed_decoder_init(&d);
    pb p = {0};
    /* a fulfilment of 3 committed units, and 2 incoming received as damaged */
    put64(&p, 5), put64(&p, 6), put64(&p, w0_of(3, 2)), put64(&p, 2000);
    put_cold(&p, 4, 1, 50);
    cr_assert_eq(p.n, 64);
    put64(&p, w0_of(3, 5));
    put_cold(&p, 2, 3, 40);
    put64(&p, persist_meta(99, INV_FEED_LEVEL_FULFIL, false));
    cr_assert_eq(p.n, 112);
    inv_feed_record r;
    cr_assert_eq(decode(&d, 2000, PERSIST_LEVEL_COLD, &p, &r), INV_OK);
    const inv_feed_change *c = &r.changes[0];
    cr_assert_eq(r.kind, INV_FEED_LEVEL_FULFIL);
    cr_assert_eq(r.time_ms, 99);
    cr_assert_eq(c->delta[INV_QTY_COMMITTED], -3);
    cr_assert_eq(c->delta[INV_QTY_RESERVED], 0);
    cr_assert_eq(c->delta[INV_QTY_AVAILABLE], 0);
    cr_assert_eq(c->delta[INV_QTY_DAMAGED], 2);
    cr_assert_eq(c->delta[INV_QTY_INCOMING], -2);
    cr_assert_eq(c->after[INV_QTY_DAMAGED], 4);
    cr_assert_eq(c->after[INV_QTY_INCOMING], 1);
    cr_assert(c->after_known & (1u << INV_QTY_DAMAGED));
    cr_assert_not(c->after_known & (1u << INV_QTY_RESERVED), "held 2: split unknown");

    /* the 64-byte v1 (snapshots, and journals before the feed) */
    p.n = 64;
    cr_assert_eq(decode(&d, 2000, PERSIST_LEVEL_COLD, &p, &r), INV_OK);
    cr_assert_eq(r.kind, INV_FEED_LEVEL_SET);
    cr_assert_eq(r.time_ms, 50000);
    cr_assert_eq(r.changes[0].delta[INV_QTY_COMMITTED], 0);
    p.n = 100;
    cr_assert_eq(decode(&d, 2000, PERSIST_LEVEL_COLD, &p, &r), INV_EINVALID);
    feed_decoder_free(&d);
}

/* A HOLD record, format 2: header, lines, two image slots per line, tail
 * (created_at, buyer length, actor length, order reference length, zero)
 * and buyer, order reference and actor bytes padded to 8. */
typedef struct {
    uint8_t line, effect;
    uint64_t w0, w1;
} hold_image;

typedef struct {
    uint64_t item, location;
    int64_t qty;
    uint32_t status, committed;
} hold_line_in;

static void put_hold(pb *p, uint8_t kind, uint8_t target, bool final, const char *id,
                     const hold_line_in *lines, size_t n_lines, const hold_image *im,
                     size_t n_images, int64_t ended_at_ms, int64_t created_at_ms, const char *actor)
{
    put8(p, kind), put8(p, target), put8(p, final), put8(p, (uint8_t)strlen(id));
    put16(p, (uint16_t)n_lines), put16(p, (uint16_t)n_images), put32(p, 2), put32(p, 0);
    put64(p, 1), put64(p, 0), put64(p, (uint64_t)ended_at_ms);
    uint8_t idb[64] = {0};
    memcpy(idb, id, strlen(id));
    put(p, idb, 64);
    for (size_t i = 0; i < n_lines; i++) {
        put64(p, lines[i].item), put64(p, lines[i].location), put64(p, (uint64_t)lines[i].qty);
        put32(p, lines[i].status), put32(p, lines[i].committed);
    }
    for (size_t i = 0; i < 2 * n_lines; i++) {
        if (i < n_images) {
            put8(p, im[i].line), put8(p, im[i].effect), zeros(p, 6);
            put64(p, im[i].w0), put64(p, im[i].w1);
        } else {
            zeros(p, 24);
        }
    }
    put64(p, (uint64_t)created_at_ms);
    put8(p, 2), put8(p, (uint8_t)strlen(actor)), put16(p, 3), put32(p, 0);
    put(p, "bu", 2), put(p, "ord", 3), put(p, actor, strlen(actor));
    pad8(p);
}

Test(feed_decode, hold_v2_create_commit_in_part_and_groups)
{
    feed_decoder d;
    feed_decoder_init(&d);
    pb p = {0};
    hold_line_in lines[2] = {{1, 2, 5, 1, 0}, {3, 4, 1, 2, 0}}; /* reserved, untracked */
    hold_image im[1] = {{0, 1, w0_of(5, 5), 300}};
    put_hold(&p, 1, 1, true, "abc", lines, 2, im, 1, 0, 777, "alice");
    inv_feed_record r;
    cr_assert_eq(decode(&d, 300, PERSIST_HOLD, &p, &r), INV_OK);
    cr_assert_eq(r.kind, INV_FEED_HOLD_CREATE);
    cr_assert_eq(r.time_ms, 777);
    cr_assert_eq(r.hold_id_len, 3);
    cr_assert_eq(memcmp(r.hold_id, "abc", 3), 0);
    cr_assert_eq(r.actor_len, 5);
    cr_assert_eq(memcmp(r.actor, "alice", 5), 0);
    cr_assert_eq(r.n_changes, 1, "the untracked line changed nothing");
    cr_assert_eq(r.changes[0].delta[INV_QTY_AVAILABLE], -5);
    cr_assert_eq(r.changes[0].delta[INV_QTY_RESERVED], 5);
    cr_assert_eq(r.changes[0].after[INV_QTY_AVAILABLE], 5);
    cr_assert_eq(r.changes[0].revision, 300);
    cr_assert_eq(memcmp(r.changes[0].hold_id, "abc", 3), 0);

    /* a partial commit: 3 of 5 sold, 2 returned; cut into two records */
    hold_line_in sold[1] = {{1, 2, 5, 4, 3}};
    hold_image s1[1] = {{0, 5, w0_of(5, 5), 400}};
    p.n = 0;
    put_hold(&p, 2, 2, false, "abc", sold, 1, s1, 1, 888, 777, "");
    cr_assert_eq(decode(&d, 400, PERSIST_HOLD, &p, &r), INV_OK);
    cr_assert_eq(r.kind, INV_FEED_HOLD_COMMIT);
    cr_assert_eq(r.group, 400);
    cr_assert_eq(r.time_ms, 888);
    cr_assert_null(r.actor);
    cr_assert_eq(r.changes[0].delta[INV_QTY_RESERVED], -3);
    cr_assert_eq(r.changes[0].delta[INV_QTY_COMMITTED], 3);
    hold_image s2[1] = {{0, 4, w0_of(7, 3), 500}};
    p.n = 0;
    put_hold(&p, 2, 2, true, "abc", sold, 1, s2, 1, 888, 777, "");
    cr_assert_eq(decode(&d, 500, PERSIST_HOLD, &p, &r), INV_OK);
    cr_assert_eq(r.group, 400, "the change's first record");
    cr_assert_eq(r.changes[0].delta[INV_QTY_AVAILABLE], 2);
    cr_assert_eq(r.changes[0].delta[INV_QTY_RESERVED], -2);
    cr_assert_eq(r.changes[0].delta[INV_QTY_COMMITTED], 0);

    /* an extend: its time in ended_at_ms, no level change */
    p.n = 0;
    put_hold(&p, 4, 1, true, "abc", lines, 2, NULL, 0, 999, 777, "bob");
    cr_assert_eq(decode(&d, 600, PERSIST_HOLD, &p, &r), INV_OK);
    cr_assert_eq(r.kind, INV_FEED_HOLD_EXTEND);
    cr_assert_eq(r.time_ms, 999);
    cr_assert_eq(r.n_changes, 0);

    /* an actor length the record has no room for */
    size_t tail = 104 + 2 * (32 + 2 * 24);
    p.b[tail + 9] = 9;
    cr_assert_eq(decode(&d, 600, PERSIST_HOLD, &p, &r), INV_EINVALID);
    p.b[tail + 9] = 3;
    cr_assert_eq(decode(&d, 600, PERSIST_HOLD, &p, &r), INV_OK);
    feed_decoder_free(&d);
}

/* A BATCH record, format 1: one adjust (line 0, with a note) and the sale
 * of a hold (line 1) on another level, with the hold embedded, a request
 * id and an actor. */
static void put_batch_v1(pb *p, uint64_t pos, uint8_t final, uint8_t outcome)
{
    const uint32_t cap = 2;
    pb hold = {0};
    hold_line_in hl[1] = {{1, 3, 2, 4, 2}}; /* ended, 2 sold */
    hold_image him[1] = {{0, 4, w0_of(0, 2), pos}};
    put_hold(&hold, 2, 2, true, "h1", hl, 1, him, 1, 4242, 11, "");
    uint8_t idem[IDEM_RECORD_LEN_MAX];
    uint8_t digest[16] = {0};
    idem_record_view v = {"req-9", 5, digest, 4000, 0, NULL, 0};
    size_t idem_len = idem_record_len_of(5, 0);
    idem_record_encode_view(&v, idem);
    uint32_t notes_len = 8 + 8;
    uint32_t holds_len = 8 + (uint32_t)hold.n;
    /* the 48 bytes of format 0, with u16 format 1 after outcome */
    put64(p, pos), put8(p, final), put8(p, outcome), put16(p, 1);
    put32(p, 2), put32(p, 2), put32(p, outcome == 1 ? 1 : 0), put32(p, holds_len);
    put32(p, cap), put32(p, notes_len), put32(p, (uint32_t)idem_len), put32(p, 0);
    put32(p, 0xdeadbeef); /* the struct's padding: not a field */
    put64(p, 4242), put8(p, 3), zeros(p, 7);
    put(p, "bob", 3), pad8(p);
    /* slots: item, location, d_available, d_held, last revision, status,
     * flags, d_cold[4], d_committed, kind, zero, line, rules mask, before */
    put64(p, 1), put64(p, 2), put64(p, (uint64_t)-4), put64(p, 0), put64(p, pos);
    put32(p, 1), put32(p, 0), zeros(p, 16), put32(p, 0);
    put8(p, INV_FEED_LEVEL_ADJUST), put8(p, 0), put16(p, 0), put64(p, 0), put64(p, 0);
    put64(p, 1), put64(p, 3), put64(p, 0), put64(p, 0), put64(p, pos);
    put32(p, 1), put32(p, 0), zeros(p, 16), put32(p, 0);
    put8(p, INV_FEED_HOLD_COMMIT), put8(p, 0), put16(p, 1), put64(p, 0), put64(p, 0);
    /* images: change, has_cold, w0, w1, cold (32) */
    put32(p, 0), put32(p, 0), put64(p, w0_of(6, 0)), put64(p, pos), zeros(p, 32);
    put32(p, 1), put32(p, 0), put64(p, w0_of(0, 2)), put64(p, pos), zeros(p, 32);
    zeros(p, 2 * 56);
    /* notes: line 0, reason correction, reference "r-1" */
    put32(p, 0), put8(p, INV_REASON_CORRECTION), put8(p, 0), put16(p, 3);
    put(p, "r-1", 3), pad8(p);
    put(p, idem, idem_len);
    if (outcome == 1) {
        put32(p, (uint32_t)hold.n), put32(p, 0), put(p, hold.b, hold.n);
    } else {
        zeros(p, holds_len);
    }
}

Test(feed_decode, batch_v1_is_one_record_with_kinds_notes_holds_and_actor)
{
    feed_decoder d;
    feed_decoder_init(&d);
    pb p = {0};
    put_batch_v1(&p, 5000, 1, 1);
    inv_feed_record r;
    cr_assert_eq(decode(&d, 5000, PERSIST_BATCH, &p, &r), INV_OK);
    expect_head(&r, INV_FEED_BATCH, 5000, 5000, 4242);
    cr_assert_eq(r.actor_len, 3);
    cr_assert_eq(memcmp(r.actor, "bob", 3), 0);
    cr_assert_eq(r.request_id_len, 5);
    cr_assert_eq(memcmp(r.request_id, "req-9", 5), 0);
    cr_assert_eq(r.n_changes, 2);
    const inv_feed_change *a = &r.changes[0], *h = &r.changes[1];
    cr_assert_eq(a->kind, INV_FEED_LEVEL_ADJUST);
    cr_assert_eq(a->delta[INV_QTY_AVAILABLE], -4);
    cr_assert_eq(a->after[INV_QTY_AVAILABLE], 6);
    cr_assert_eq(a->reason, INV_REASON_CORRECTION);
    cr_assert_eq(a->ref_len, 3);
    cr_assert_eq(memcmp(a->ref, "r-1", 3), 0);
    cr_assert_null(a->hold_id);
    cr_assert_eq(h->kind, INV_FEED_HOLD_COMMIT);
    cr_assert_eq(h->hold_id_len, 2);
    cr_assert_eq(memcmp(h->hold_id, "h1", 2), 0);
    cr_assert_eq(h->delta[INV_QTY_RESERVED], -2, "sold: reserved to committed");
    cr_assert_eq(h->delta[INV_QTY_COMMITTED], 2);
    cr_assert_eq(h->reason, INV_REASON_NONE, "line 1 has no note");
    cr_assert_eq(h->revision, 5000);

    /* every shorter payload is refused, never read past */
    pb q = p;
    for (size_t n = 0; n < p.n; n++) {
        q.n = n;
        cr_assert_eq(decode(&d, 5000, PERSIST_BATCH, &q, &r), INV_EINVALID, "length %zu", n);
    }
    /* a partial record and an aborted one show nothing */
    p.n = 0;
    put_batch_v1(&p, 5000, 0, 0);
    cr_assert_eq(decode(&d, 5000, PERSIST_BATCH, &p, &r), FEED_SKIP);
    p.n = 0;
    put_batch_v1(&p, 5000, 1, 2);
    cr_assert_eq(decode(&d, 5000, PERSIST_BATCH, &p, &r), FEED_SKIP);
    feed_decoder_free(&d);
}

Test(feed_decode, default_location_with_and_without_time)
{
    feed_decoder d;
    feed_decoder_init(&d);
    pb p = {0};
    put64(&p, 77), put64(&p, 800);
    inv_feed_record r;
    cr_assert_eq(decode(&d, 800, PERSIST_DEFAULT, &p, &r), INV_OK);
    cr_assert_eq(r.kind, INV_FEED_DEFAULT_LOCATION);
    cr_assert_eq(r.location, 77);
    cr_assert_eq(r.time_ms, 0);
    put64(&p, 123456);
    cr_assert_eq(decode(&d, 800, PERSIST_DEFAULT, &p, &r), INV_OK);
    cr_assert_eq(r.time_ms, 123456);
    put64(&p, 1);
    cr_assert_eq(decode(&d, 800, PERSIST_DEFAULT, &p, &r), INV_EINVALID);
    cr_assert_eq(feed_decode(&d, 800, PERSIST_COUNTS, p.b, 32, &r), FEED_SKIP);
    feed_decoder_free(&d);
}

Test(feed_decode, kind_names)
{
    cr_assert_str_eq(inv_feed_kind_str(INV_FEED_LEVEL_ADJUST), "level.adjust");
    cr_assert_str_eq(inv_feed_kind_str(INV_FEED_BATCH), "batch");
    for (int k = 1; k < INV_FEED_KINDS; k++)
        cr_assert_not_null(inv_feed_kind_str((inv_feed_kind)k), "kind %d", k);
    cr_assert_null(inv_feed_kind_str(INV_FEED_KINDS));
    cr_assert_null(inv_feed_kind_str((inv_feed_kind)0));
}

/* ---- an engine as it writes today -------------------------------------------- */

#define SMALL_SEGMENT_BYTES 4096

static inv_engine *open_engine(const char *dir, uint64_t segment_bytes, uint64_t retention_ms,
                               uint64_t retention_bytes)
{
    inv_config cfg = {.data_dir = dir,
                      .fsync_policy = INV_FSYNC_NONE,
                      .history_retention_ms = retention_ms,
                      .history_retention_bytes = retention_bytes};
    engine_tuning t = {.journal_segment_bytes = segment_bytes};
    inv_engine *e = NULL;
    int rc = engine_open_tuned(&e, &cfg, &t);
    cr_assert_eq(rc, INV_OK, "open %s: %s", dir, inv_strerror(rc));
    return e;
}

/* Everything written so far is readable by the feed. (inv_wait_durable
 * returns at once under fsync none: the journal's own wait.) */
static void wait_durable(inv_engine *e)
{
    cr_assert_eq(journal_wait(e->jr, journal_tail(e->jr) - 1), INV_OK);
}

/* A record kept whole (its strings and changes copied). */
typedef struct {
    inv_feed_record r;
    inv_feed_change c[16];
    char hold_id[65], request_id[65], actor[65], change_hold[16][65], ref[16][257];
} kept;

static void keep(kept *k, const inv_feed_record *r)
{
    memset(k, 0, sizeof *k);
    k->r = *r;
    cr_assert(r->n_changes <= 16);
    if (r->n_changes)
        memcpy(k->c, r->changes, r->n_changes * sizeof *r->changes);
    if (r->hold_id)
        memcpy(k->hold_id, r->hold_id, r->hold_id_len);
    if (r->request_id)
        memcpy(k->request_id, r->request_id, r->request_id_len);
    if (r->actor)
        memcpy(k->actor, r->actor, r->actor_len);
    for (size_t i = 0; i < r->n_changes; i++) {
        if (r->changes[i].hold_id)
            memcpy(k->change_hold[i], r->changes[i].hold_id, r->changes[i].hold_id_len);
        if (r->changes[i].ref)
            memcpy(k->ref[i], r->changes[i].ref, r->changes[i].ref_len);
    }
}

/* Reads every record now readable into out (at most cap); count. */
static size_t read_all(inv_feed *f, kept *out, size_t cap)
{
    size_t n = 0;
    inv_feed_record r;
    int rc;
    uint64_t last = 0;
    while ((rc = inv_feed_next(f, &r)) == INV_OK) {
        cr_assert(r.position > last, "positions increase");
        last = r.position;
        cr_assert_eq(inv_feed_position(f), r.position);
        cr_assert(n < cap);
        keep(&out[n++], &r);
    }
    cr_assert_eq(rc, INV_ENOTFOUND, "%s", inv_strerror(rc));
    return n;
}

/* The record at pos (NULL: none). */
static const kept *at_pos(const kept *v, size_t n, uint64_t pos)
{
    for (size_t j = 0; j < n; j++)
        if (v[j].r.position == pos)
            return &v[j];
    return NULL;
}

/* The i-th record of kind k (NULL: none). */
static const kept *nth_of(const kept *v, size_t n, inv_feed_kind k, size_t i)
{
    for (size_t j = 0; j < n; j++)
        if (v[j].r.kind == k && i-- == 0)
            return &v[j];
    return NULL;
}

#define KEPT_MAX 256

Test(feed, every_kind_the_engine_writes_decodes, .timeout = 60)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-kinds");
    inv_engine *e = open_engine(dir, 0, 0, 0);
    const uint64_t item = 11, loc = 22, loc2 = 23;
    cr_assert_eq(inv_location_put(e, loc, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, loc2, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, item, NULL), INV_OK);
    tu_set_level(e, item, loc2, 0);
    inv_level lv;
    cr_assert_eq(inv_level_set(e, item, loc, 10, 0, &lv), INV_OK);
    uint64_t rev_set = lv.revision;
    cr_assert_eq(inv_level_adjust(e, item, loc, -3, INV_NO_FLOOR, &lv), INV_OK);
    uint64_t rev_adjust = lv.revision;
    inv_hold_line hl = {item, loc, 2};
    cr_assert_eq(inv_hold_create(e, "h-a", 3, 60000, &hl, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "h-a", 3), INV_OK);
    cr_assert_eq(inv_hold_create(e, "h-b", 3, 60000, &hl, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_release(e, "h-b", 3), INV_OK);
    cr_assert_eq(
        inv_level_move(e, item, loc, 1, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, NULL),
        INV_OK);
    /* a batch with a reason, a reference and a request id */
    inv_batch_line bl = {.op = INV_BATCH_LEVEL_ADJUST,
                         .item = item,
                         .location = loc2,
                         .qty = 5,
                         .floor = INV_NO_FLOOR,
                         .reason = INV_REASON_RESTOCK,
                         .ref = "po-7",
                         .ref_len = 4};
    inv_batch_opts opts = {"req-1", 5};
    cr_assert_eq(inv_batch_ex(e, &bl, 1, &opts, NULL, NULL), INV_OK);
    /* a batch that creates a hold and one that sells it */
    inv_batch_line hb = {.op = INV_BATCH_HOLD_CREATE,
                         .hold_id = "h-c",
                         .hold_id_len = 3,
                         .ttl_ms = 60000,
                         .hold_lines = &hl,
                         .n_hold_lines = 1};
    cr_assert_eq(inv_batch(e, &hb, 1, NULL, NULL), INV_OK);
    inv_batch_line cb = {.op = INV_BATCH_HOLD_COMMIT, .hold_id = "h-c", .hold_id_len = 3};
    cr_assert_eq(inv_batch(e, &cb, 1, NULL, NULL), INV_OK);
    inv_level final = tu_level_of(e, item, loc);
    wait_durable(e);

    inv_feed *f;
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    cr_assert_eq(inv_feed_position(f), 0);
    static kept v[KEPT_MAX];
    size_t n = read_all(f, v, KEPT_MAX);
    inv_feed_close(f);

    cr_assert_not_null(nth_of(v, n, INV_FEED_LOCATION, 1));
    const kept *it = nth_of(v, n, INV_FEED_ITEM, 0);
    cr_assert_not_null(it);
    cr_assert_eq(it->r.item, item);
    cr_assert(it->r.time_ms > 0);
    cr_assert_not_null(nth_of(v, n, INV_FEED_DEFAULT_LOCATION, 0), "the first location");
    const kept *set = at_pos(v, n, rev_set);
    cr_assert_not_null(set, "revision = position");
    cr_assert_eq(set->r.kind, INV_FEED_LEVEL_SET);
    cr_assert_eq(set->c[0].item, item);
    cr_assert_eq(set->c[0].location, loc);
    cr_assert_eq(set->c[0].revision, rev_set);
    cr_assert_eq(set->c[0].after[INV_QTY_AVAILABLE], 10);
    const kept *adj = at_pos(v, n, rev_adjust);
    cr_assert_not_null(adj);
    /* today a set without deltas; the new writer: an adjust of -3 */
    cr_assert(adj->r.kind == INV_FEED_LEVEL_SET ||
              (adj->r.kind == INV_FEED_LEVEL_ADJUST && adj->c[0].delta[INV_QTY_AVAILABLE] == -3));
    cr_assert_eq(adj->c[0].after[INV_QTY_AVAILABLE], 7);

    const kept *cr = nth_of(v, n, INV_FEED_HOLD_CREATE, 0);
    cr_assert_str_eq(cr->hold_id, "h-a");
    cr_assert_eq(cr->r.n_changes, 1);
    cr_assert_eq(cr->c[0].delta[INV_QTY_AVAILABLE], -2);
    cr_assert_eq(cr->c[0].delta[INV_QTY_RESERVED], 2);
    cr_assert_eq(cr->c[0].after[INV_QTY_AVAILABLE], 5);
    cr_assert(cr->r.time_ms > 0);
    const kept *cm = nth_of(v, n, INV_FEED_HOLD_COMMIT, 0);
    cr_assert_str_eq(cm->hold_id, "h-a");
    cr_assert_eq(cm->c[0].delta[INV_QTY_RESERVED], -2);
    cr_assert_eq(cm->c[0].delta[INV_QTY_COMMITTED], 2);
    cr_assert_eq(cm->c[0].revision, cm->r.position);
    const kept *rl = nth_of(v, n, INV_FEED_HOLD_RELEASE, 0);
    cr_assert_str_eq(rl->hold_id, "h-b");
    cr_assert_eq(rl->c[0].delta[INV_QTY_AVAILABLE], 2);
    cr_assert_eq(rl->c[0].delta[INV_QTY_RESERVED], -2);

    /* the move: a cold record (no kind before the feed: a set) */
    bool moved = false;
    for (size_t i = 0; i < n; i++)
        if ((v[i].r.kind == INV_FEED_LEVEL_MOVE || v[i].r.kind == INV_FEED_LEVEL_SET) &&
            v[i].c[0].after_known & (1u << INV_QTY_DAMAGED)) {
            cr_assert_eq(v[i].c[0].after[INV_QTY_DAMAGED], 1);
            moved = true;
        }
    cr_assert(moved);

    const kept *b = nth_of(v, n, INV_FEED_BATCH, 0);
    cr_assert_str_eq(b->request_id, "req-1");
    cr_assert_eq(b->r.group <= b->r.position, true);
    int64_t added = 0;
    for (size_t i = 0; i < b->r.n_changes; i++) {
        cr_assert_eq(b->c[i].location, loc2);
        added += b->c[i].delta[INV_QTY_AVAILABLE];
        cr_assert_eq(b->c[i].reason, INV_REASON_RESTOCK);
        cr_assert_str_eq(b->ref[i], "po-7");
    }
    cr_assert_eq(added, 5, "an adjust of +5 (pending, then settled)");
    const kept *bh = nth_of(v, n, INV_FEED_BATCH, 1);
    cr_assert_eq(bh->r.n_changes, 1);
    cr_assert_str_eq(bh->change_hold[0], "h-c");
    cr_assert_eq(bh->c[0].delta[INV_QTY_RESERVED], 2);
    cr_assert_eq(bh->c[0].delta[INV_QTY_AVAILABLE], -2);
    const kept *bc = nth_of(v, n, INV_FEED_BATCH, 2);
    cr_assert_eq(bc->r.n_changes, 1);
    cr_assert_str_eq(bc->change_hold[0], "h-c");
    cr_assert_eq(bc->c[0].kind, INV_FEED_HOLD_COMMIT);
    cr_assert_eq(bc->c[0].delta[INV_QTY_RESERVED], -2);
    cr_assert_eq(bc->c[0].delta[INV_QTY_COMMITTED], 2);
    cr_assert_eq(bc->c[0].revision, final.revision);
    cr_assert_eq(bc->r.position, final.revision, "the last change of the level");

    inv_close(e);
    tu_remove_tree(dir);
}

Test(feed, memory_mode_has_no_feed)
{
    inv_engine *e = tu_open_engine(1, 1, 0);
    inv_feed *f = (inv_feed *)1;
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_EINVALID);
    cr_assert_null(f);
    cr_assert_eq(inv_feed_oldest_position(e), 0);
    inv_close(e);
}

/* ---- a reader beside 8 writers ------------------------------------------------ */

#define CONC_WRITERS 8
#define CONC_ITEMS 3
#define CONC_LOCS 2
#define CONC_LEVELS (CONC_ITEMS * CONC_LOCS)

typedef struct {
    int64_t sum[INV_QTY_NAMES]; /* every delta, from an empty start */
    int64_t last_available; /* the newest after image's */
    uint64_t last_position;
} level_sums;

typedef struct {
    inv_engine *e;
    inv_feed *f;
    _Atomic int writers_done;
    level_sums sums[CONC_LEVELS];
    bool new_formats; /* an adjust read as one: deltas of available are known */
    uint64_t records;
} conc_ctx;

static int level_index(uint64_t item, uint64_t loc)
{
    for (int i = 0; i < CONC_ITEMS; i++)
        for (int j = 0; j < CONC_LOCS; j++)
            if (tu_item_id((size_t)i) == item && tu_loc_id((size_t)j) == loc)
                return i * CONC_LOCS + j;
    return -1;
}

static void add_record(conc_ctx *c, const inv_feed_record *r)
{
    c->records++;
    for (size_t i = 0; i < r->n_changes; i++) {
        const inv_feed_change *ch = &r->changes[i];
        int k = level_index(ch->item, ch->location);
        TU_CHECK(k >= 0, "a change of an unknown level");
        if (k < 0)
            continue;
        level_sums *s = &c->sums[k];
        for (int q = 0; q < INV_QTY_NAMES; q++)
            s->sum[q] += ch->delta[q];
        /* An after image is the level at its revision; the newest one
         * tells (a batch's change made before one of its partial records
         * comes with the final record: its image is older than the
         * records between them). */
        if ((ch->after_known & (1u << INV_QTY_AVAILABLE)) && ch->revision > s->last_position) {
            s->last_available = ch->after[INV_QTY_AVAILABLE];
            s->last_position = ch->revision;
        }
        c->new_formats |= ch->kind == INV_FEED_LEVEL_ADJUST;
    }
}

/* Reads until nothing is readable; true if anything was. */
static bool drain(conc_ctx *c)
{
    inv_feed_record r;
    int rc;
    bool any = false;
    while ((rc = inv_feed_next(c->f, &r)) == INV_OK) {
        add_record(c, &r);
        any = true;
    }
    TU_CHECK(rc == INV_ENOTFOUND, "feed next: %s", inv_strerror(rc));
    return any;
}

static void hold_id_of(char *id, size_t cap, size_t w, size_t i)
{
    snprintf(id, cap, "w%zu-%zu", w, i);
}

static void conc_writer(conc_ctx *c, size_t w)
{
    tu_rng rng = tu_rng_seed(w + 1);
    uint64_t iters = tu_iters_min(400, 40);
    char held[32] = "";
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t item = tu_item_id(tu_rng_below(&rng, CONC_ITEMS));
        uint64_t loc = tu_loc_id(tu_rng_below(&rng, CONC_LOCS));
        inv_hold_line line = {item, loc, tu_rng_range(&rng, 1, 3)};
        switch (tu_rng_below(&rng, 6)) {
        case 0:
            (void)inv_level_adjust(c->e, item, loc, tu_rng_range(&rng, 1, 5), INV_NO_FLOOR, NULL);
            break;
        case 1:
            (void)inv_level_adjust(c->e, item, loc, -tu_rng_range(&rng, 1, 3), 0, NULL);
            break;
        case 2: /* hold, then commit or release at once */
            hold_id_of(held, sizeof held, w, (size_t)i);
            if (inv_hold_create(c->e, held, strlen(held), 60000, &line, 1, NULL) == INV_OK) {
                int rc = tu_rng_below(&rng, 2) ? inv_hold_commit(c->e, held, strlen(held))
                                               : inv_hold_release(c->e, held, strlen(held));
                TU_CHECK(rc == INV_OK, "end of %s: %s", held, inv_strerror(rc));
            }
            held[0] = '\0';
            break;
        case 3: /* a hold created by a batch, kept for case 4 */
            if (held[0])
                break;
            hold_id_of(held, sizeof held, w, (size_t)i);
            inv_batch_line hc = {.op = INV_BATCH_HOLD_CREATE,
                                 .hold_id = held,
                                 .hold_id_len = strlen(held),
                                 .ttl_ms = 60000,
                                 .hold_lines = &line,
                                 .n_hold_lines = 1};
            if (inv_batch(c->e, &hc, 1, NULL, NULL) != INV_OK)
                held[0] = '\0';
            break;
        case 4: /* an adjust and the sale of the kept hold, as one batch */
        {
            inv_batch_line b[2] = {
                {.op = INV_BATCH_LEVEL_ADJUST,
                 .item = item,
                 .location = loc,
                 .qty = 1,
                 .floor = INV_NO_FLOOR,
                 .reason = INV_REASON_RECEIVED},
                {.op = INV_BATCH_HOLD_COMMIT, .hold_id = held, .hold_id_len = strlen(held)}};
            int rc = inv_batch(c->e, b, held[0] ? 2 : 1, NULL, NULL);
            TU_CHECK(rc == INV_OK, "batch: %s", inv_strerror(rc));
            held[0] = '\0';
            break;
        }
        default:
            (void)inv_level_set(c->e, item, loc, tu_rng_range(&rng, 0, 20), 0, NULL);
        }
    }
    if (held[0])
        (void)inv_hold_release(c->e, held, strlen(held));
}

static void conc_thread(void *arg, size_t i)
{
    conc_ctx *c = arg;
    if (i < CONC_WRITERS) {
        conc_writer(c, i);
        /* release: the reader's drain after it sees every writer done */
        atomic_fetch_add_explicit(&c->writers_done, 1, memory_order_release);
        return;
    }
    /* acquire: pairs with the writers' release */
    while (atomic_load_explicit(&c->writers_done, memory_order_acquire) < CONC_WRITERS)
        if (!drain(c))
            sched_yield();
}

Test(feed, a_reader_beside_eight_writers_rebuilds_every_level_from_deltas, .timeout = 120)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-conc");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    static conc_ctx c;
    memset(&c, 0, sizeof c);
    c.e = e;
    for (size_t j = 0; j < CONC_LOCS; j++)
        cr_assert_eq(inv_location_put(e, tu_loc_id(j), NULL), INV_OK);
    for (size_t i = 0; i < CONC_ITEMS; i++)
        cr_assert_eq(inv_item_put(e, tu_item_id(i), NULL), INV_OK);
    /* opened before any level exists: the sums start from nothing */
    cr_assert_eq(inv_feed_open(e, INV_FEED_FROM_END, &c.f), INV_OK);
    for (size_t i = 0; i < CONC_ITEMS; i++)
        for (size_t j = 0; j < CONC_LOCS; j++)
            tu_set_level(e, tu_item_id(i), tu_loc_id(j), 10);
    tu_run_threads(CONC_WRITERS + 1, conc_thread, &c);
    cr_assert_eq(inv_wait_durable(e, inv_last_write_position()), INV_OK);
    wait_durable(e);
    drain(&c);
    tu_assert_no_failures();
    cr_assert(c.records > CONC_WRITERS * 10);
    for (size_t i = 0; i < CONC_ITEMS; i++)
        for (size_t j = 0; j < CONC_LOCS; j++) {
            level_sums *s = &c.sums[i * CONC_LOCS + j];
            inv_level_full full;
            cr_assert_eq(inv_level_get_full(e, tu_item_id(i), tu_loc_id(j), &full), INV_OK);
            cr_assert_eq(s->sum[INV_QTY_RESERVED], full.qty[INV_QTY_RESERVED],
                         "level %zu/%zu reserved: deltas %" PRId64 ", level %" PRId64, i, j,
                         s->sum[INV_QTY_RESERVED], full.qty[INV_QTY_RESERVED]);
            cr_assert_eq(s->sum[INV_QTY_COMMITTED], full.qty[INV_QTY_COMMITTED],
                         "level %zu/%zu committed: deltas %" PRId64 ", level %" PRId64, i, j,
                         s->sum[INV_QTY_COMMITTED], full.qty[INV_QTY_COMMITTED]);
            cr_assert_eq(s->last_position, full.revision, "the newest change is the level's");
            /* Records written before the feed carry no before word for
             * sets and adjusts (deltas 0): their after image tells. */
            int64_t available = c.new_formats ? s->sum[INV_QTY_AVAILABLE] : s->last_available;
            cr_assert_eq(available, full.qty[INV_QTY_AVAILABLE],
                         "level %zu/%zu available: feed %" PRId64 ", level %" PRId64, i, j,
                         available, full.qty[INV_QTY_AVAILABLE]);
        }
    inv_feed_close(c.f);
    inv_close(e);
    tu_remove_tree(dir);
}

/* ---- positions ------------------------------------------------------------------ */

/* An engine with one level (item 1, location 2) and n adjusts of it. */
static inv_engine *engine_with_changes(const char *dir, uint64_t segment_bytes,
                                       uint64_t retention_ms, uint64_t retention_bytes, int n)
{
    inv_engine *e = open_engine(dir, segment_bytes, retention_ms, retention_bytes);
    cr_assert_eq(inv_location_put(e, 2, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, 1, NULL), INV_OK);
    tu_set_level(e, 1, 2, 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(inv_level_adjust(e, 1, 2, 1, INV_NO_FLOOR, NULL), INV_OK);
    wait_durable(e);
    return e;
}

static void adjust_n(inv_engine *e, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(inv_level_adjust(e, 1, 2, 1, INV_NO_FLOOR, NULL), INV_OK);
    wait_durable(e);
}

Test(feed, from_end_sees_only_new_records)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-end");
    inv_engine *e = engine_with_changes(dir, 0, 0, 0, 10);
    inv_feed *f;
    cr_assert_eq(inv_feed_open(e, INV_FEED_FROM_END, &f), INV_OK);
    inv_feed_record r;
    cr_assert_eq(inv_feed_next(f, &r), INV_ENOTFOUND);
    uint64_t end = inv_feed_end_position(e);
    cr_assert_eq(inv_feed_position(f), end, "the last record before the end");
    cr_assert_eq(end, tu_level_of(e, 1, 2).revision);
    adjust_n(e, 3);
    static kept v[8];
    cr_assert_eq(read_all(f, v, 8), 3);
    cr_assert(v[0].r.position > end);
    cr_assert_eq(v[2].r.position, tu_level_of(e, 1, 2).revision);
    inv_feed_close(f);
    /* opened after the end position: the same */
    cr_assert_eq(inv_feed_open(e, end, &f), INV_OK);
    cr_assert_eq(read_all(f, v, 8), 3);
    inv_feed_close(f);
    inv_close(e);
    tu_remove_tree(dir);
}

Test(feed, positions_beyond_the_end_or_inside_a_record_are_invalid)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-bad");
    inv_engine *e = engine_with_changes(dir, SMALL_SEGMENT_BYTES, 0, 0, 200);
    inv_feed *f = NULL;
    uint64_t end = journal_durable_end(e->jr);
    cr_assert_eq(inv_feed_open(e, end, &f), INV_EINVALID, "the end is not a record");
    cr_assert_eq(inv_feed_open(e, end + 8, &f), INV_EINVALID);
    cr_assert_eq(inv_feed_open(e, UINT64_MAX - 1, &f), INV_EINVALID);
    cr_assert_eq(inv_feed_open(NULL, 0, &f), INV_EINVALID);
    cr_assert_eq(inv_feed_open(e, 0, NULL), INV_EINVALID);
    /* every record start (across segments) opens; the bytes inside do not */
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    static kept v[KEPT_MAX];
    size_t n = read_all(f, v, KEPT_MAX);
    inv_feed_close(f);
    cr_assert(n > 200);
    for (size_t i = 0; i + 1 < n; i += 7) {
        cr_assert_eq(inv_feed_open(e, v[i].r.position, &f), INV_OK, "record %zu", i);
        inv_feed_record r;
        cr_assert_eq(inv_feed_next(f, &r), INV_OK);
        cr_assert_eq(r.position, v[i + 1].r.position, "the next record");
        inv_feed_close(f);
        cr_assert_eq(inv_feed_open(e, v[i].r.position + 8, &f), INV_EINVALID, "inside %zu", i);
    }
    inv_close(e);
    tu_remove_tree(dir);
}

/* ---- retention -------------------------------------------------------------------- */

/* The directory's segment files: how many, and (bytes not NULL) their
 * bytes. */
static size_t segment_files(const char *dir, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    uint64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 4 || strcmp(de->d_name + len - 4, ".jnl") != 0)
            continue;
        n++;
        struct stat st;
        cr_assert_eq(fstatat(dirfd(d), de->d_name, &st, 0), 0, "%s/%s", dir, de->d_name);
        sum += (uint64_t)st.st_size;
    }
    closedir(d);
    if (bytes)
        *bytes = sum;
    return n;
}

static size_t count_segments(const char *dir)
{
    return segment_files(dir, NULL);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

Test(feed, snapshots_keep_segments_inside_retention)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-keep");
    inv_engine *e = engine_with_changes(dir, SMALL_SEGMENT_BYTES, 3600 * 1000, 0, 300);
    size_t before = count_segments(dir);
    cr_assert(before > 3);
    cr_assert_eq(inv_snapshot(e), INV_OK);
    cr_assert_eq(count_segments(dir), before, "an hour's retention keeps them all");
    cr_assert_eq(inv_feed_oldest_position(e), 8);
    cr_assert_not(file_exists(dir, FEED_HISTORY_FILE));
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.history_oldest_position, 8);
    cr_assert(st.history_bytes > before * 2048);
    inv_close(e);
    tu_remove_tree(dir);
}

Test(feed, retention_by_bytes_drops_the_oldest_and_refuses_positions_before_it)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-drop");
    const uint64_t keep_bytes = 3 * SMALL_SEGMENT_BYTES;
    inv_engine *e = engine_with_changes(dir, SMALL_SEGMENT_BYTES, 3600 * 1000, keep_bytes, 600);
    inv_feed *f;
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    static kept all[1024];
    size_t n = read_all(f, all, 1024);
    inv_feed_close(f);
    size_t before = count_segments(dir);
    cr_assert(before > 6);
    cr_assert_eq(inv_snapshot(e), INV_OK);
    size_t after = count_segments(dir);
    cr_assert(after < before && after >= 3, "%zu -> %zu segments", before, after);
    cr_assert(file_exists(dir, FEED_HISTORY_FILE));
    uint64_t r = inv_feed_oldest_position(e);
    cr_assert(r > 8);
    size_t ri = 0;
    while (ri < n && all[ri].r.position < r)
        ri++;
    cr_assert(ri > 0 && ri < n);
    cr_assert_eq(all[ri].r.position, r, "R is the first kept record");
    uint64_t l = all[ri - 1].r.position;
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.history_oldest_position, r);
    cr_assert(st.history_bytes <= keep_bytes + 2 * SMALL_SEGMENT_BYTES);

    cr_assert_eq(inv_feed_open(e, all[0].r.position, &f), INV_ELIMIT);
    cr_assert_eq(inv_feed_open(e, all[ri - 2].r.position, &f), INV_ELIMIT);
    inv_feed_record rec;
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(inv_feed_open(e, k ? 0 : l, &f), INV_OK, "after L, after 0");
        cr_assert_eq(inv_feed_next(f, &rec), INV_OK);
        cr_assert_eq(rec.position, r);
        inv_feed_close(f);
    }
    /* reopened: history.start says the same */
    inv_close(e);
    e = open_engine(dir, SMALL_SEGMENT_BYTES, 3600 * 1000, keep_bytes);
    cr_assert_eq(inv_feed_oldest_position(e), r);
    cr_assert_eq(inv_feed_open(e, all[ri - 2].r.position, &f), INV_ELIMIT);
    cr_assert_eq(inv_feed_open(e, l, &f), INV_OK);
    cr_assert_eq(inv_feed_next(f, &rec), INV_OK);
    cr_assert_eq(rec.position, r);
    inv_feed_close(f);
    inv_close(e);
    tu_remove_tree(dir);
}

Test(feed, a_reader_over_a_dropped_segment_gets_limit)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-gone");
    inv_engine *e = engine_with_changes(dir, SMALL_SEGMENT_BYTES, 1, 0, 400);
    inv_feed *f;
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    inv_feed_record rec;
    cr_assert_eq(inv_feed_next(f, &rec), INV_OK);
    uint64_t first = rec.position;
    tu_sleep_ms(5); /* retention 1 ms: every closed segment is out of it */
    size_t before = count_segments(dir);
    cr_assert_eq(inv_snapshot(e), INV_OK);
    cr_assert_eq(count_segments(dir), 1, "%zu segments before", before);
    cr_assert_eq(inv_feed_next(f, &rec), INV_ELIMIT);
    cr_assert_eq(inv_feed_next(f, &rec), INV_ELIMIT, "and stays so");
    inv_feed_close(f);
    cr_assert_eq(inv_feed_open(e, first, &f), INV_ELIMIT);
    /* what is kept reads whole */
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    static kept v[KEPT_MAX];
    size_t n = read_all(f, v, KEPT_MAX);
    inv_feed_close(f);
    cr_assert(n > 0);
    cr_assert_eq(v[0].r.position, inv_feed_oldest_position(e));
    cr_assert_eq(v[n - 1].r.position, tu_level_of(e, 1, 2).revision);
    inv_close(e);
    tu_remove_tree(dir);
}

/* ---- a live segment --------------------------------------------------------------- */

/* Rounds of writes a live reader follows, and the writes per round. */
#define GROW_ROUNDS 6
#define GROW_WRITES 40

static uint64_t segment_file_bytes(const char *dir)
{
    uint64_t bytes;
    segment_files(dir, &bytes);
    return bytes;
}

/* A reader opened on the one segment of a running engine reads to the
 * durable end, then the writer appends to that segment (under policy:
 * NONE, the file grows with each write; INTERVAL, the records overwrite the
 * zeros the writer keeps ahead of them, already in the file when the
 * reader read there): each round, the reader sees exactly the new records
 * (never a stale end of file or stale zeros, which would end the segment
 * and refuse a next one that does not exist). */
static void reader_follows_growth(inv_fsync_policy policy, const char *name)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, name);
    inv_config cfg = {.data_dir = dir, .fsync_policy = policy};
    engine_tuning t = {0}; /* default segments: one holds every round */
    inv_engine *e = NULL;
    cr_assert_eq(engine_open_tuned(&e, &cfg, &t), INV_OK);
    cr_assert_eq(inv_location_put(e, 2, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, 1, NULL), INV_OK);
    tu_set_level(e, 1, 2, 0);
    wait_durable(e);
    inv_feed *f;
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    static kept v[GROW_WRITES + 1];
    cr_assert(read_all(f, v, GROW_WRITES + 1) > 0, "the catalog and the set");
    uint64_t file_before = segment_file_bytes(dir), end_before = journal_durable_end(e->jr);
    for (int round = 0; round < GROW_ROUNDS; round++) {
        adjust_n(e, GROW_WRITES);
        size_t n = read_all(f, v, GROW_WRITES + 1);
        cr_assert_eq(n, GROW_WRITES, "round %d: every new record, once", round);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(v[i].r.kind, INV_FEED_LEVEL_ADJUST, "round %d, record %zu", round, i);
        cr_assert_eq(v[n - 1].r.position, tu_level_of(e, 1, 2).revision, "round %d", round);
    }
    cr_assert_eq(count_segments(dir), 1, "the reader stayed in one growing segment");
    if (policy == INV_FSYNC_NONE)
        cr_assert(segment_file_bytes(dir) > file_before, "the file grew after the reader opened");
    else
        cr_assert(file_before > JOURNAL_SEGMENT_HEADER + end_before,
                  "zeros were ahead of the records when the reader read there");
    inv_feed_close(f);
    inv_close(e);
    tu_remove_tree(dir);
}

Test(feed, a_live_reader_follows_its_segment_as_the_file_grows)
{
    reader_follows_growth(INV_FSYNC_NONE, "feed-grow");
}

Test(feed, a_live_reader_follows_its_segment_as_zeros_ahead_become_records)
{
    reader_follows_growth(INV_FSYNC_INTERVAL, "feed-zeros");
}

/* A read error at the feed's fault sites (FILE_OPEN, FILE_READ: the
 * reader's open and preads) answers INV_EIO naming the segment file and
 * the byte offset, moves nothing, and the reader goes on once the error
 * is gone. */
Test(feed, a_read_error_is_eio_naming_file_and_offset_and_the_reader_goes_on)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-eio");
    inv_engine *e = engine_with_changes(dir, 0, 0, 0, 20);
    static kept all[KEPT_MAX], v[KEPT_MAX];
    inv_feed *f;
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    size_t n = read_all(f, all, KEPT_MAX);
    inv_feed_close(f);
    /* call 1 of FILE_OPEN (the segment), of FILE_READ (its header), call 2
     * of FILE_READ (its first records) */
    static const struct {
        fault_site site;
        uint64_t call;
    } at[] = {{FAULT_FILE_OPEN, 1}, {FAULT_FILE_READ, 1}, {FAULT_FILE_READ, 2}};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
        inv_feed_record r;
        fault_reset();
        fault_fail(at[k].site, at[k].call, 1, EIO);
        cr_assert_eq(inv_feed_next(f, &r), INV_EIO, "case %zu", k);
        cr_assert_eq(fault_failures(at[k].site), 1, "case %zu: the feed's call failed", k);
        fault_reset();
        cr_assert_eq(read_all(f, v, KEPT_MAX), n, "case %zu: every record, from the first", k);
        cr_assert_eq(v[0].r.position, all[0].r.position);
        inv_feed_close(f);
    }
    /* the cursor's reason names the segment file and the offset (the
     * first segment of a fresh journal: position 8, its header 32 bytes) */
    uint64_t limit = journal_durable_end(e->jr);
    const char *want[] = {
        "cannot open segment file 0000000000000008.jnl: Input/output error",
        "segment file 0000000000000008.jnl at byte offset 0: Input/output error",
        "segment file 0000000000000008.jnl at byte offset 32: Input/output error"};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        feed_cursor c;
        cr_assert_eq(feed_cursor_init(&c, dir, false), INV_OK);
        feed_cursor_seek(&c, JOURNAL_POSITION_FIRST, JOURNAL_POSITION_FIRST);
        feed_raw raw;
        fault_reset();
        fault_fail(at[k].site, at[k].call, 1, EIO);
        cr_assert_eq(feed_cursor_next(&c, limit, &raw), INV_EIO, "case %zu", k);
        fault_reset();
        cr_assert_not_null(strstr(c.why, want[k]), "case %zu: %s", k, c.why);
        cr_assert_eq(c.pos, JOURNAL_POSITION_FIRST, "case %zu: nothing read, nothing moved", k);
        cr_assert_eq(feed_cursor_next(&c, limit, &raw), INV_OK, "case %zu", k);
        cr_assert_eq(raw.pos, JOURNAL_POSITION_FIRST);
        feed_cursor_free(&c);
    }
    inv_close(e);
    tu_remove_tree(dir);
}

/* ---- the offline reader ---------------------------------------------------------------- */

static void expect_same(const kept *a, const kept *b)
{
    cr_assert_eq(a->r.position, b->r.position);
    cr_assert_eq(a->r.kind, b->r.kind);
    cr_assert_eq(a->r.group, b->r.group);
    cr_assert_eq(a->r.time_ms, b->r.time_ms);
    cr_assert_eq(a->r.n_changes, b->r.n_changes);
    cr_assert_str_eq(a->hold_id, b->hold_id);
    for (size_t i = 0; i < a->r.n_changes; i++)
        cr_assert_eq(memcmp(a->c[i].delta, b->c[i].delta, sizeof a->c[i].delta), 0);
}

Test(feed, open_dir_reads_what_the_live_reader_read)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-dir");
    inv_engine *e = engine_with_changes(dir, SMALL_SEGMENT_BYTES, 0, 0, 150);
    inv_hold_line hl = {1, 2, 4};
    cr_assert_eq(inv_hold_create(e, "x", 1, 60000, &hl, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "x", 1), INV_OK);
    adjust_n(e, 100);
    inv_feed *f;
    cr_assert_eq(inv_feed_open(e, 0, &f), INV_OK);
    static kept live[KEPT_MAX], off[KEPT_MAX];
    size_t n = read_all(f, live, KEPT_MAX);
    inv_feed_close(f);
    inv_close(e);

    cr_assert_eq(inv_feed_open_dir(dir, 0, &f), INV_OK);
    cr_assert_eq(read_all(f, off, KEPT_MAX), n);
    inv_feed_close(f);
    for (size_t i = 0; i < n; i++)
        expect_same(&live[i], &off[i]);
    /* from a middle record, and from the end */
    cr_assert_eq(inv_feed_open_dir(dir, live[n / 2].r.position, &f), INV_OK);
    cr_assert_eq(read_all(f, off, KEPT_MAX), n - n / 2 - 1);
    expect_same(&off[0], &live[n / 2 + 1]);
    inv_feed_close(f);
    cr_assert_eq(inv_feed_open_dir(dir, INV_FEED_FROM_END, &f), INV_OK);
    cr_assert_eq(inv_feed_position(f), live[n - 1].r.position);
    cr_assert_eq(read_all(f, off, KEPT_MAX), 0);
    inv_feed_close(f);
    cr_assert_eq(inv_feed_open_dir(dir, live[3].r.position + 8, &f), INV_EINVALID);
    cr_assert_eq(inv_feed_open_dir("/nonexistent/invcore", 8, &f), INV_EINVALID);
    tu_remove_tree(dir);
}

/* ---- a level's history ----------------------------------------------------------------------- */

Test(feed, level_history_pages_newest_first_across_segments, .timeout = 60)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "feed-history");
    inv_engine *e = open_engine(dir, SMALL_SEGMENT_BYTES, 0, 0);
    cr_assert_eq(inv_location_put(e, 2, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, 1, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, 3, NULL), INV_OK);
    tu_set_level(e, 1, 2, 0);
    tu_set_level(e, 3, 2, 0);
    /* A's changes, far apart among B's (well past a mark's 64 KiB) */
    uint64_t revs[64];
    size_t n_revs = 0;
    revs[n_revs++] = tu_level_of(e, 1, 2).revision;
    for (int i = 0; i < 30; i++) {
        inv_level lv;
        cr_assert_eq(inv_level_adjust(e, 1, 2, 1, INV_NO_FLOOR, &lv), INV_OK);
        revs[n_revs++] = lv.revision;
        for (int k = 0; k < (i % 3 ? 5 : 200); k++)
            cr_assert_eq(inv_level_adjust(e, 3, 2, 1, INV_NO_FLOOR, NULL), INV_OK);
    }
    inv_hold_line hl = {1, 2, 3};
    cr_assert_eq(inv_hold_create(e, "hh", 2, 60000, &hl, 1, NULL), INV_OK);
    revs[n_revs++] = tu_level_of(e, 1, 2).revision;
    wait_durable(e);

    size_t got = 0;
    uint64_t before = 0;
    int pages = 0;
    do {
        inv_feed_page *page;
        const inv_feed_record *const *recs;
        size_t n;
        int rc = inv_level_history(e, 1, 2, before, 4, &page, &recs, &n, &before);
        cr_assert_eq(rc, INV_OK, "%s", inv_strerror(rc));
        cr_assert(n <= 4);
        for (size_t i = 0; i < n; i++) {
            cr_assert(got < n_revs);
            cr_assert_eq(recs[i]->position, revs[n_revs - 1 - got], "newest first (%zu)", got);
            cr_assert(recs[i]->n_changes >= 1);
            for (size_t k = 0; k < recs[i]->n_changes; k++)
                cr_assert(recs[i]->changes[k].item == 1 && recs[i]->changes[k].location == 2);
            got++;
        }
        if (got == 1)
            cr_assert_eq(recs[0]->kind, INV_FEED_HOLD_CREATE);
        inv_feed_page_free(page);
        cr_assert(++pages < 100);
    } while (before != 0);
    cr_assert_eq(got, n_revs);

    inv_feed_page *page;
    const inv_feed_record *const *recs;
    size_t n;
    uint64_t next;
    cr_assert_eq(inv_level_history(e, 1, 2, 0, 0, &page, &recs, &n, &next), INV_EINVALID);
    cr_assert_eq(inv_level_history(e, 1, 2, 0, INV_FEED_COUNT_MAX + 1, &page, &recs, &n, &next),
                 INV_EINVALID);
    cr_assert_eq(inv_level_history(e, 9, 9, 0, 10, &page, &recs, &n, &next), INV_OK);
    cr_assert_eq(n, 0, "a level never changed");
    cr_assert_eq(next, 0);
    inv_feed_page_free(page);
    inv_close(e);
    tu_remove_tree(dir);
}
