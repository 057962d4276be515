/*
 * test_feed.c — the change feed (core/feed*.c): the decoder on payloads
 * built by hand byte for byte from docs/JOURNAL.md (the new formats), the
 * reader end to end over an engine as it writes today (every kind, deltas,
 * after images, revisions, reasons, references, request ids, holds),
 * levels reconstructed from a reader that ran beside 8 writer threads,
 * FROM_END, bad positions, retention (history.start, INV_ELIMIT, segments
 * kept inside retention), the offline reader, and level history.
 */
#include "test_util.h"

#include "engine.h"
#include "feed.h"
#include "feed_decode.h"
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
    put64(&p, feed_meta(1234567, INV_FEED_LEVEL_ADJUST, false));
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
    put64(&p, feed_meta(5, INV_FEED_LEVEL_SET, true));
    cr_assert_eq(decode(&d, 1100, PERSIST_LEVEL, &p, &r), INV_OK);
    cr_assert(r.changes[0].created);
    cr_assert_eq(r.changes[0].delta[INV_QTY_AVAILABLE], 4);

    /* a deletion: everything goes */
    p.n = 0;
    put64(&p, 7), put64(&p, 9), put64(&p, 0), put64(&p, 1200 | TOMB), put64(&p, w0_of(4, 0));
    put64(&p, feed_meta(6, INV_FEED_LEVEL_DELETE, false));
    cr_assert_eq(decode(&d, 1200, PERSIST_LEVEL, &p, &r), INV_OK);
    cr_assert(r.changes[0].deleted);
    cr_assert_eq(r.changes[0].delta[INV_QTY_AVAILABLE], -4);
    cr_assert_eq(r.changes[0].after_known, 0);

    /* a zero bit of the meta word set: refused */
    p.n = 40;
    put64(&p, feed_meta(6, INV_FEED_LEVEL_SET, false) | (1ULL << 60));
    cr_assert_eq(decode(&d, 1200, PERSIST_LEVEL, &p, &r), INV_EINVALID);
    p.n = 40;
    put64(&p, feed_meta(6, INV_FEED_BATCH, false));
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
    put64(&p, feed_meta(99, INV_FEED_LEVEL_FULFIL, false));
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
    engine_tuning t = {segment_bytes};
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
