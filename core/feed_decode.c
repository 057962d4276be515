/*
 * feed_decode.c — journal records as the change feed shows them: one
 * record (its type, payload and position) in, one inv_feed_record out.
 *
 * Formats (docs/JOURNAL.md; both the form written before the feed and the
 * one written with it are read):
 *   LEVEL       32 (v1), 40 (v2: updated_at) or 48 bytes (v3: w0 before
 *               the change and the meta word: time, kind, created)
 *   LEVEL_COLD  64 (v1) or 112 bytes (v2: w0 and cold part before, meta)
 *   HOLD        formats 0 to 3 (2: the actor after the attributes; 3: the incarnation)
 *   BATCH       formats 0 and 1 (1: a 64-byte header with time and actor,
 *               and each change slot's kind and batch line)
 *   ITEM, LOCATION (catalog_record.h decodes them), DEFAULT 16 or 24 bytes
 * A record without a before word (v1, v2) has deltas 0 and its after
 * image; committed is never on disk (recovery derives it), so reserved
 * and committed after a change are known only when the level holds
 * nothing, and their deltas come from what the record says moved.
 *
 * The hold and batch payload layouts are private to hold.c and batch.c
 * (their writers); they are read here by offset, checked field by field.
 * Invariant: nothing is read beyond len, every count is bounded by len
 * before it sizes anything, and a payload that breaks its layout is
 * INV_EINVALID, never a partial record.
 */
#include "alloc.h"
#include "feed_decode.h"

#include "catalog_record.h"
#include "idem.h"
#include "level_cold.h"
#include "level_word.h"
#include "persist.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading little-endian fields --------------------------------------- */

static inline uint64_t ld64(const uint8_t *p, size_t off)
{
    assert(p != NULL);
    uint64_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static inline uint32_t ld32(const uint8_t *p, size_t off)
{
    assert(p != NULL);
    uint32_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static inline uint16_t ld16(const uint8_t *p, size_t off)
{
    assert(p != NULL);
    uint16_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static inline uint64_t pad8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

/* ---- the decoder's scratch ---------------------------------------------- */

/* A decoder's scratch, for asserts only (O(1)): the ring indices in
 * range, the per-change arrays all there once any was allocated. */
static bool decoder_ok(const feed_decoder *d)
{
    return d != NULL && d->partials_next < FEED_PARTIALS_MAX &&
           d->batches_next < FEED_PARTIALS_MAX &&
           (d->cap == 0 || (d->changes != NULL && d->claimed != NULL && d->last_image != NULL));
}

void feed_decoder_init(feed_decoder *d)
{
    assert(d != NULL);
    memset(d, 0, sizeof *d);
    assert(decoder_ok(d));
}

static void batch_partial_drop(feed_decoder *d, size_t i);

void feed_decoder_free(feed_decoder *d)
{
    assert(decoder_ok(d));
    for (size_t i = 0; i < FEED_PARTIALS_MAX; i++)
        batch_partial_drop(d, i);
    free(d->changes);
    free(d->claimed);
    free(d->last_image);
    memset(d, 0, sizeof *d);
}

/* Room for n changes, zeroed. n is bounded by the payload's size (each
 * change stands for at least one slot or image of it), so this never
 * grows past a few thousand entries. */
static int reserve_changes(feed_decoder *d, size_t n)
{
    assert(decoder_ok(d));
    assert(n <= JOURNAL_PAYLOAD_MAX / 16);
    if (n > d->cap) {
        size_t cap = d->cap ? d->cap : 16;
        while (cap < n)
            cap *= 2;
        inv_feed_change *c = inv_realloc(d->changes, cap * sizeof *c);
        if (!c)
            return INV_ENOMEM;
        d->changes = c;
        uint8_t *cl = inv_realloc(d->claimed, cap);
        if (!cl)
            return INV_ENOMEM;
        d->claimed = cl;
        uint32_t *li = inv_realloc(d->last_image, cap * sizeof *li);
        if (!li)
            return INV_ENOMEM;
        d->last_image = li;
        d->cap = cap;
    }
    if (n) {
        memset(d->changes, 0, n * sizeof *d->changes);
        memset(d->claimed, 0, n);
        memset(d->last_image, 0xff, n * sizeof *d->last_image);
    }
    return INV_OK;
}

/* ---- level words -------------------------------------------------------- */

#define QBIT(q) (1u << (q))

/* A w1 read from disk: a revision >= 1, no table flag but TOMB. */
static bool w1_valid(uint64_t w1)
{
    return (w1 & ~(TABLE_VERSION_MAX | TABLE_TOMB)) == 0 && (w1 & TABLE_VERSION_MAX) != 0;
}

/* What the hot word after a change says: the revision, a deletion, and
 * available (reserved and committed too when the level holds nothing). */
static void after_word(inv_feed_change *c, uint64_t w0, uint64_t w1)
{
    assert(c != NULL);
    table_word v = {w0, w1};
    c->revision = table_version(v);
    c->deleted = (w1 & TABLE_TOMB) != 0;
    if (c->deleted)
        return; /* nothing is left to know */
    c->after[INV_QTY_AVAILABLE] = level_available(v);
    c->after_known |= QBIT(INV_QTY_AVAILABLE);
    if (level_held(v) == 0)
        c->after_known |= QBIT(INV_QTY_RESERVED) | QBIT(INV_QTY_COMMITTED);
}

/* The named quantities of a cold image (committed is not on disk: the
 * held units read as reserved here). */
static void cold_quantities(uint64_t w0, const persist_cold *cold, int64_t q[INV_QTY_NAMES])
{
    assert(cold != NULL && q != NULL);
    level_quantities((table_word){w0, 0}, 0, cold->d_s, cold->q_i, q);
}

static const int cold_names[] = {INV_QTY_INCOMING, INV_QTY_DAMAGED, INV_QTY_SAFETY_STOCK,
                                 INV_QTY_QUALITY_CONTROL};
#define COLD_NAMES (sizeof cold_names / sizeof cold_names[0])

/* The cold quantities after a change (a deletion leaves none). */
static void after_cold(inv_feed_change *c, uint64_t w0, const persist_cold *cold)
{
    assert(c != NULL && cold != NULL);
    if (c->deleted)
        return;
    int64_t q[INV_QTY_NAMES];
    cold_quantities(w0, cold, q);
    for (size_t k = 0; k < COLD_NAMES; k++) {
        c->after[cold_names[k]] = q[cold_names[k]];
        c->after_known |= QBIT(cold_names[k]);
    }
}

/* The meta word of the new formats: false for a zero bit set or a kind
 * out of range. */
static bool meta_read(uint64_t meta, int64_t *time_ms, inv_feed_kind *kind, bool *created)
{
    assert(time_ms != NULL && kind != NULL && created != NULL);
    inv_feed_kind k = persist_meta_kind(meta);
    if ((meta & PERSIST_META_ZERO) || k == 0 || k >= INV_FEED_KINDS || k == INV_FEED_BATCH)
        return false;
    *time_ms = persist_meta_time_ms(meta);
    *kind = k;
    *created = persist_meta_created(meta);
    return true;
}

/* A record of one level change. */
static void single_change(inv_feed_record *rec, inv_feed_change *c, uint64_t pos, int64_t time_ms)
{
    assert(rec != NULL && c != NULL && pos >= JOURNAL_POSITION_FIRST);
    rec->position = rec->group = pos;
    rec->time_ms = time_ms;
    rec->kind = c->kind;
    rec->item = c->item;
    rec->location = c->location;
    rec->deleted = c->deleted;
    rec->changes = c;
    rec->n_changes = 1;
}

/* ---- LEVEL and LEVEL_COLD ------------------------------------------------- */

#define LEVEL_V1_LEN 32u
#define LEVEL_V2_LEN 40u
#define LEVEL_V3_LEN 48u
#define COLD_V1_LEN 64u
#define COLD_V2_LEN 112u

_Static_assert(PERSIST_LEVEL_LEN_V1 == LEVEL_V1_LEN && PERSIST_LEVEL_LEN_V2 == LEVEL_V2_LEN &&
                   PERSIST_LEVEL_LEN == LEVEL_V3_LEN && PERSIST_LEVEL_COLD_LEN_V1 == COLD_V1_LEN &&
                   PERSIST_LEVEL_COLD_LEN == COLD_V2_LEN && sizeof(persist_cold) == 32,
               "the level records of docs/JOURNAL.md");

/* Old records say only what the level became: shown as a set (or a
 * deletion), deltas unknown (0). */
static inv_feed_kind old_kind(uint64_t w1)
{
    return (w1 & TABLE_TOMB) ? INV_FEED_LEVEL_DELETE : INV_FEED_LEVEL_SET;
}

/* The one change of a level record, from its first four words (item,
 * location, w0, w1): *c NULL on a bad revision word or out of memory. */
static int level_image_change(feed_decoder *d, const uint8_t *p, inv_feed_change **c)
{
    assert(decoder_ok(d) && p != NULL && c != NULL);
    *c = NULL;
    if (!w1_valid(ld64(p, 24)))
        return INV_EINVALID;
    int rc = reserve_changes(d, 1);
    if (rc != INV_OK)
        return rc;
    *c = &d->changes[0];
    (*c)->item = ld64(p, 0);
    (*c)->location = ld64(p, 8);
    after_word(*c, ld64(p, 16), ld64(p, 24));
    return INV_OK;
}

static int decode_level(feed_decoder *d, uint64_t pos, const uint8_t *p, uint32_t len,
                        inv_feed_record *rec)
{
    assert(decoder_ok(d) && rec != NULL);
    assert(p != NULL || len == 0);
    if (len != LEVEL_V1_LEN && len != LEVEL_V2_LEN && len != LEVEL_V3_LEN)
        return INV_EINVALID;
    uint64_t w0 = ld64(p, 16), w1 = ld64(p, 24);
    inv_feed_change *c;
    int rc = level_image_change(d, p, &c);
    if (rc != INV_OK)
        return rc;
    int64_t time_ms = 0;
    if (len == LEVEL_V3_LEN) {
        uint64_t before = ld64(p, 32);
        if (!meta_read(ld64(p, 40), &time_ms, &c->kind, &c->created))
            return INV_EINVALID;
        uint64_t after = c->deleted ? 0 : w0; /* a deletion leaves nothing */
        table_word a = {after, 0}, b = {before, 0};
        c->delta[INV_QTY_AVAILABLE] = level_available(a) - level_available(b);
        /* Plain changes move no held units; were one to, they are a
         * hold's (reserved). */
        c->delta[INV_QTY_RESERVED] = level_held(a) - level_held(b);
    } else {
        c->kind = old_kind(w1);
        if (len == LEVEL_V2_LEN)
            time_ms = (int64_t)ld32(p, 32) * 1000;
    }
    single_change(rec, c, pos, time_ms);
    return INV_OK;
}

static void cold_read(const uint8_t *p, persist_cold *cold)
{
    assert(p != NULL && cold != NULL);
    memcpy(cold, p, sizeof *cold);
}

static int decode_level_cold(feed_decoder *d, uint64_t pos, const uint8_t *p, uint32_t len,
                             inv_feed_record *rec)
{
    assert(decoder_ok(d) && rec != NULL);
    assert(p != NULL || len == 0);
    if (len != COLD_V1_LEN && len != COLD_V2_LEN)
        return INV_EINVALID;
    uint64_t w0 = ld64(p, 16), w1 = ld64(p, 24);
    persist_cold cold;
    cold_read(p + 32, &cold);
    if (!level_cold_valid(&cold))
        return INV_EINVALID;
    inv_feed_change *c;
    int rc = level_image_change(d, p, &c);
    if (rc != INV_OK)
        return rc;
    after_cold(c, w0, &cold);
    int64_t time_ms = (int64_t)cold.updated_s * 1000;
    if (len == COLD_V2_LEN) {
        persist_cold before_cold;
        cold_read(p + 72, &before_cold);
        if (!level_cold_valid(&before_cold) ||
            !meta_read(ld64(p, 104), &time_ms, &c->kind, &c->created))
            return INV_EINVALID;
        int64_t a[INV_QTY_NAMES], b[INV_QTY_NAMES];
        persist_cold none = {0};
        cold_quantities(c->deleted ? 0 : w0, c->deleted ? &none : &cold, a);
        cold_quantities(ld64(p, 64), &before_cold, b);
        for (int q = 0; q < INV_QTY_NAMES; q++)
            c->delta[q] = a[q] - b[q];
        /* Cold changes never move reserved units (only holds do): the held
         * units they move are committed ones (fulfil, return, moves). */
        c->delta[INV_QTY_COMMITTED] = c->delta[INV_QTY_RESERVED];
        c->delta[INV_QTY_RESERVED] = 0;
    } else {
        c->kind = old_kind(w1);
    }
    single_change(rec, c, pos, time_ms);
    return INV_OK;
}

/* ---- HOLD ---------------------------------------------------------------- */

/* The layout (hold.c): a 104-byte header, 32-byte lines, 24-byte images
 * (two slots per line), then from format 1 a 16-byte tail (format 3: 24,
 * the hold's incarnation after it) and the attribute bytes padded to 8. */
#define HOLD_HEADER_LEN 104u
#define HOLD_LINE_LEN 32u
#define HOLD_IMAGE_LEN 24u
#define HOLD_IMAGES_PER_LINE 2u
#define HOLD_TAIL_LEN 16u
#define HOLD_INCARNATION_LEN 8u /* format 3: after the tail */
#define HOLD_FORMAT_MAX 3u

enum { HREC_CREATE = 1, HREC_END = 2, HREC_STATE = 3, HREC_EXTEND = 4 };
/* A line's status, and an image's effect (the status it left). */
enum {
    HLINE_RESERVED = 1,
    HLINE_UNTRACKED = 2,
    HLINE_GIVEN_BACK = 3,
    HLINE_ENDED = 4,
    HLINE_SOLD = 5
};
/* Targets beside inv_hold_state's: a create cut by a crash, given back. */
#define HREC_TARGET_ABORTED 99

/* A hold record's parts, checked (pointers into the payload). */
typedef struct {
    uint8_t kind, target, final;
    uint32_t format;
    size_t n_lines, n_images;
    const char *id;
    size_t id_len;
    int64_t ended_at_ms, created_at_ms;
    const char *actor;
    size_t actor_len;
    const uint8_t *lines, *images;
} hold_view;

static uint64_t hold_fixed_len(size_t n_lines)
{
    return HOLD_HEADER_LEN + n_lines * (HOLD_LINE_LEN + HOLD_IMAGES_PER_LINE * HOLD_IMAGE_LEN);
}

/* Line i's fields. */
static uint64_t hline_item(const hold_view *h, size_t i)
{
    assert(h != NULL && h->lines != NULL && i < h->n_lines);
    return ld64(h->lines, i * HOLD_LINE_LEN);
}
static uint64_t hline_loc(const hold_view *h, size_t i)
{
    assert(h != NULL && h->lines != NULL && i < h->n_lines);
    return ld64(h->lines, i * HOLD_LINE_LEN + 8);
}
static int64_t hline_qty(const hold_view *h, size_t i)
{
    assert(h != NULL && h->lines != NULL && i < h->n_lines);
    return (int64_t)ld64(h->lines, i * HOLD_LINE_LEN + 16);
}
static uint32_t hline_status(const hold_view *h, size_t i)
{
    assert(h != NULL && h->lines != NULL && i < h->n_lines);
    return ld32(h->lines, i * HOLD_LINE_LEN + 24);
}
/* Units sold by a commit (format 0 sold every unit of a committed hold). */
static int64_t hline_sold(const hold_view *h, size_t i)
{
    assert(h != NULL && i < h->n_lines);
    if (h->target != INV_HOLD_COMMITTED)
        return 0;
    return h->format == 0 ? hline_qty(h, i) : (int64_t)ld32(h->lines, i * HOLD_LINE_LEN + 28);
}

static bool hold_header_valid(const uint8_t *p, uint32_t len, hold_view *h)
{
    assert(h != NULL && (p != NULL || len == 0));
    if (len < HOLD_HEADER_LEN)
        return false;
    h->kind = p[0];
    h->target = p[1];
    h->final = p[2];
    h->id_len = p[3];
    h->n_lines = ld16(p, 4);
    h->n_images = ld16(p, 6);
    h->format = ld32(p, 8);
    h->ended_at_ms = (int64_t)ld64(p, 32);
    h->id = (const char *)p + 40;
    bool target_ok = h->target <= INV_HOLD_EXPIRED || h->target == HREC_TARGET_ABORTED;
    return h->format <= HOLD_FORMAT_MAX && h->kind >= HREC_CREATE && h->kind <= HREC_EXTEND &&
           h->final <= 1 && target_ok && h->id_len >= 1 && h->id_len <= INV_HOLD_ID_MAX &&
           h->n_lines >= 1 && h->n_lines <= INV_HOLD_LINES_MAX &&
           h->n_images <= HOLD_IMAGES_PER_LINE * h->n_lines && ld32(p, 12) == 0;
}

/* The tail (format >= 1): times and attributes, the length exact. */
static bool hold_tail_valid(const uint8_t *p, uint32_t len, hold_view *h)
{
    assert(h != NULL && p != NULL);
    uint64_t fixed = hold_fixed_len(h->n_lines);
    h->created_at_ms = 0;
    h->actor = NULL;
    h->actor_len = 0;
    if (h->format == 0)
        return len == fixed;
    size_t tail_len = HOLD_TAIL_LEN + (h->format >= 3 ? HOLD_INCARNATION_LEN : 0);
    if (len < fixed + tail_len)
        return false;
    const uint8_t *t = p + fixed;
    h->created_at_ms = (int64_t)ld64(t, 0);
    size_t buyer = t[8], order = ld16(t, 10);
    /* format 1: a zero byte where format 2 keeps the actor's length */
    size_t actor = t[9];
    if (ld32(t, 12) != 0 || buyer > INV_BUYER_ID_MAX || order > INV_ORDER_REF_MAX ||
        actor > INV_ACTOR_MAX || (h->format < 2 && actor != 0) ||
        (h->format >= 3 && ld64(t, HOLD_TAIL_LEN) == 0))
        return false; /* format 3 always names the hold's incarnation */
    size_t attrs = buyer + order + actor;
    if (len != fixed + tail_len + pad8(attrs))
        return false;
    if (actor) {
        h->actor = (const char *)t + tail_len + buyer + order;
        h->actor_len = actor;
    }
    return true;
}

/* Checks a HOLD payload (also one a batch embeds) and finds its parts. */
static bool hold_view_of(const uint8_t *p, uint32_t len, hold_view *h)
{
    assert(h != NULL && (p != NULL || len == 0));
    if (!hold_header_valid(p, len, h) || !hold_tail_valid(p, len, h))
        return false;
    h->lines = p + HOLD_HEADER_LEN;
    h->images = h->lines + h->n_lines * HOLD_LINE_LEN;
    for (size_t i = 0; i < h->n_lines; i++) {
        int64_t qty = hline_qty(h, i);
        uint32_t st = hline_status(h, i);
        int64_t sold = (int64_t)ld32(h->lines, i * HOLD_LINE_LEN + 28);
        /* format 0: the status is a u64, its high half 0 */
        if (qty < 1 || qty > INV_QTY_MAX || st > HLINE_SOLD || sold > qty ||
            (h->format == 0 && sold != 0))
            return false;
    }
    for (size_t i = 0; i < h->n_images; i++) {
        const uint8_t *im = h->images + i * HOLD_IMAGE_LEN;
        if (im[0] >= h->n_lines || !w1_valid(ld64(im, 16)))
            return false;
    }
    return true;
}

/* The feed kind of a hold record (0: not a change: a snapshot's state). */
static inv_feed_kind hold_kind(const hold_view *h)
{
    assert(h != NULL);
    switch (h->kind) {
    case HREC_CREATE:
        return h->target == HREC_TARGET_ABORTED ? INV_FEED_HOLD_ABORT : INV_FEED_HOLD_CREATE;
    case HREC_END:
        return h->target == INV_HOLD_COMMITTED  ? INV_FEED_HOLD_COMMIT
               : h->target == INV_HOLD_RELEASED ? INV_FEED_HOLD_RELEASE
               : h->target == INV_HOLD_EXPIRED  ? INV_FEED_HOLD_EXPIRE
                                                : 0;
    case HREC_EXTEND:
        return INV_FEED_HOLD_EXTEND;
    default:
        return 0;
    }
}

/* What one image's effect moved on its line: reserving, giving back,
 * selling (reserved to committed) or returning (to available). */
static bool hold_image_delta(const hold_view *h, size_t line, uint8_t effect, int64_t d[])
{
    assert(h != NULL && line < h->n_lines && d != NULL);
    int64_t qty = hline_qty(h, line), sold = hline_sold(h, line);
    int64_t sell = 0, give = 0;
    switch (effect) {
    case HLINE_RESERVED:
        give = -qty;
        break;
    case HLINE_GIVEN_BACK:
        give = qty;
        break;
    case HLINE_SOLD:
        sell = sold;
        break;
    case HLINE_ENDED:
        /* A commit sells a line whole in one change, or returns the rest
         * after selling part; releases and expiries return it all. */
        if (sold == qty)
            sell = qty;
        else
            give = qty - sold;
        break;
    default:
        return false;
    }
    d[INV_QTY_AVAILABLE] = give;
    d[INV_QTY_RESERVED] = -give - sell;
    d[INV_QTY_COMMITTED] = sell;
    return true;
}

/* The group of a hold record: the first position of its change, followed
 * across partial records by id. */
static uint64_t hold_group(feed_decoder *d, const hold_view *h, uint64_t pos)
{
    for (size_t i = 0; i < FEED_PARTIALS_MAX; i++) {
        feed_partial *pt = &d->partials[i];
        if (!pt->first || pt->id_len != h->id_len || memcmp(pt->id, h->id, h->id_len) != 0)
            continue;
        uint64_t first = pt->first;
        if (h->final)
            pt->first = 0; /* the change is complete */
        return first;
    }
    if (!h->final) {
        feed_partial *pt = &d->partials[d->partials_next];
        d->partials_next = (d->partials_next + 1) % FEED_PARTIALS_MAX;
        pt->first = pos;
        pt->id_len = h->id_len;
        memcpy(pt->id, h->id, h->id_len);
    }
    return pos;
}

static int decode_hold(feed_decoder *d, uint64_t pos, const uint8_t *p, uint32_t len,
                       inv_feed_record *rec)
{
    assert(decoder_ok(d) && rec != NULL);
    assert(p != NULL || len == 0);
    hold_view h;
    if (!hold_view_of(p, len, &h))
        return INV_EINVALID;
    inv_feed_kind kind = hold_kind(&h);
    if (kind == 0)
        return h.kind == HREC_STATE ? FEED_SKIP : INV_EINVALID;
    int rc = reserve_changes(d, h.n_images);
    if (rc != INV_OK)
        return rc;
    for (size_t i = 0; i < h.n_images; i++) {
        const uint8_t *im = h.images + i * HOLD_IMAGE_LEN;
        inv_feed_change *c = &d->changes[i];
        c->kind = kind;
        c->item = hline_item(&h, im[0]);
        c->location = hline_loc(&h, im[0]);
        c->hold_id = h.id;
        c->hold_id_len = h.id_len;
        after_word(c, ld64(im, 8), ld64(im, 16));
        if (!hold_image_delta(&h, im[0], im[1], c->delta))
            return INV_EINVALID;
    }
    rec->position = pos;
    rec->group = hold_group(d, &h, pos);
    rec->time_ms = h.kind == HREC_CREATE ? h.created_at_ms : h.ended_at_ms;
    rec->kind = kind;
    rec->hold_id = h.id;
    rec->hold_id_len = h.id_len;
    rec->actor = h.actor;
    rec->actor_len = h.actor_len;
    rec->changes = d->changes;
    rec->n_changes = h.n_images;
    return INV_OK;
}

/* ---- BATCH --------------------------------------------------------------- */

/* The layout (batch.c): a 48-byte header (format 0: eleven u32 fields
 * after the batch id end at 44, then 4 bytes of struct padding, whatever
 * they hold) or 64 bytes and the actor padded to 8 (format 1), cap 88-byte change slots, 2 x cap 56-byte
 * image slots, then the notes, the request id and, last, the holds. */
#define BATCH_HEADER_V0 48u
#define BATCH_HEADER_V1 64u
#define BATCH_SLOT_LEN 88u
#define BATCH_IMAGE_LEN 56u
#define BATCH_IMAGES_PER_CHANGE 2u
#define BATCH_NOTE_LEN 8u
#define BATCH_HOLD_HEADER 8u
#define BATCH_NO_LINE 0xffffu

enum { BOUT_RUNNING = 0, BOUT_APPLIED = 1, BOUT_ABORTED = 2 };
enum { BCH_APPLIED = 1, BCH_KEPT = 2, BCH_UNDONE = 3, BCH_GONE = 4 };
enum { BCH_CREATED = 1, BCH_COLD = 2 };

typedef struct {
    uint64_t batch_id;
    uint8_t final, outcome;
    uint16_t format;
    uint32_t n_changes, n_images, n_holds, holds_bytes, cap, notes_bytes, idem_bytes;
    int64_t time_ms;
    const char *actor;
    size_t actor_len;
    const uint8_t *slots, *images, *notes, *idem, *holds;
} batch_view;

static bool batch_header_valid(uint64_t pos, const uint8_t *p, uint32_t len, batch_view *b)
{
    assert(b != NULL && (p != NULL || len == 0));
    if (len < BATCH_HEADER_V0)
        return false;
    b->batch_id = ld64(p, 0);
    b->final = p[8];
    b->outcome = p[9];
    b->format = ld16(p, 10);
    b->n_changes = ld32(p, 12);
    b->n_images = ld32(p, 16);
    b->n_holds = ld32(p, 20);
    b->holds_bytes = ld32(p, 24);
    b->cap = ld32(p, 28);
    b->notes_bytes = ld32(p, 32);
    b->idem_bytes = ld32(p, 36);
    b->time_ms = 0;
    b->actor = NULL;
    b->actor_len = 0;
    uint64_t header = BATCH_HEADER_V0;
    if (b->format == 1) {
        if (len < BATCH_HEADER_V1 || p[57] || ld16(p, 58) || ld32(p, 60))
            return false;
        b->time_ms = (int64_t)ld64(p, 48);
        b->actor_len = p[56];
        b->actor = b->actor_len ? (const char *)p + BATCH_HEADER_V1 : NULL;
        header = BATCH_HEADER_V1 + pad8(b->actor_len);
    }
    uint64_t need =
        header + (uint64_t)b->cap * (BATCH_SLOT_LEN + BATCH_IMAGES_PER_CHANGE * BATCH_IMAGE_LEN) +
        (uint64_t)b->notes_bytes + b->idem_bytes + b->holds_bytes;
    if (b->format > 1 || b->batch_id == 0 || b->batch_id > pos || b->final > 1 ||
        b->actor_len > INV_ACTOR_MAX || ld32(p, 40) != 0 || need != len || b->n_changes > b->cap ||
        b->n_images > BATCH_IMAGES_PER_CHANGE * (uint64_t)b->n_changes ||
        (b->final ? b->outcome != BOUT_APPLIED && b->outcome != BOUT_ABORTED
                  : b->outcome != BOUT_RUNNING))
        return false;
    b->slots = p + header;
    b->images = b->slots + (uint64_t)b->cap * BATCH_SLOT_LEN;
    b->notes = b->images + (uint64_t)b->cap * BATCH_IMAGES_PER_CHANGE * BATCH_IMAGE_LEN;
    b->idem = b->notes + b->notes_bytes;
    b->holds = b->idem + b->idem_bytes;
    return true;
}

/* The notes, by line, into notes[INV_BATCH_LINES_MAX] (cleared first). */
static bool batch_notes(const batch_view *b, feed_note *notes, size_t *n_notes)
{
    assert(b != NULL && notes != NULL && n_notes != NULL);
    memset(notes, 0, INV_BATCH_LINES_MAX * sizeof *notes);
    *n_notes = 0;
    const uint8_t *q = b->notes;
    uint64_t left = b->notes_bytes;
    while (left) {
        if (left < BATCH_NOTE_LEN)
            return false;
        uint32_t line = ld32(q, 0);
        uint8_t reason = q[4];
        uint16_t ref_len = ld16(q, 6);
        uint64_t size = BATCH_NOTE_LEN + pad8(ref_len);
        if (line >= INV_BATCH_LINES_MAX || reason >= INV_REASONS || q[5] || ref_len > INV_REF_MAX ||
            size > left || (reason == 0 && ref_len == 0))
            return false;
        notes[line] = (feed_note){reason, ref_len, ref_len ? (const char *)q + 8 : NULL};
        ++*n_notes;
        q += size;
        left -= size;
    }
    return true;
}

/* A format-0 slot names no line: the notes go to every change only when
 * they all say the same (a single command's REASON / REF), else none. */
static const feed_note *batch_note_for_all(const feed_note *notes, size_t n_notes)
{
    assert(notes != NULL && n_notes <= INV_BATCH_LINES_MAX);
    const feed_note *one = NULL;
    for (size_t i = 0; i < INV_BATCH_LINES_MAX && n_notes; i++) {
        if (!notes[i].reason && !notes[i].ref_len)
            continue;
        if (one && (one->reason != notes[i].reason || one->ref_len != notes[i].ref_len ||
                    (one->ref_len && memcmp(one->ref, notes[i].ref, one->ref_len) != 0)))
            return NULL;
        one = &notes[i];
    }
    return one;
}

/* Change i's slot into c: deltas, created, kind and line (format 1). */
static bool batch_slot(const batch_view *b, size_t i, inv_feed_change *c, uint32_t *status,
                       uint16_t *line)
{
    assert(b != NULL && i < b->n_changes);
    assert(c != NULL && status != NULL && line != NULL);
    const uint8_t *s = b->slots + i * BATCH_SLOT_LEN;
    c->item = ld64(s, 0);
    c->location = ld64(s, 8);
    int64_t d_avail = (int64_t)ld64(s, 16), d_held = (int64_t)ld64(s, 24);
    c->revision = ld64(s, 32);
    *status = ld32(s, 40);
    uint32_t flags = ld32(s, 44);
    int32_t d_committed = (int32_t)ld32(s, 64);
    if (*status > BCH_GONE || (flags & ~(uint32_t)(BCH_CREATED | BCH_COLD)))
        return false;
    c->created = (flags & BCH_CREATED) != 0;
    c->delta[INV_QTY_AVAILABLE] = d_avail;
    c->delta[INV_QTY_COMMITTED] = d_committed;
    c->delta[INV_QTY_RESERVED] = d_held - d_committed;
    for (size_t k = 0; k < COLD_NAMES; k++)
        c->delta[cold_names[k]] = (int32_t)ld32(s, 48 + 4 * k);
    *line = BATCH_NO_LINE;
    if (b->format == 0)
        return ld32(s, 68) == 0;
    uint8_t kind = s[68];
    *line = ld16(s, 70);
    if (s[69] || kind >= INV_FEED_KINDS || kind == INV_FEED_BATCH)
        return false;
    c->kind = (inv_feed_kind)kind;
    return true;
}

/* Checks the images and notes each slot's last one (images of earlier,
 * partial records are not in this one). */
static bool batch_images(feed_decoder *d, const batch_view *b)
{
    assert(decoder_ok(d) && b != NULL);
    for (uint32_t k = 0; k < b->n_images; k++) {
        const uint8_t *im = b->images + (size_t)k * BATCH_IMAGE_LEN;
        persist_cold cold;
        cold_read(im + 24, &cold);
        uint32_t ci = ld32(im, 0), has_cold = ld32(im, 4);
        if (ci >= b->n_changes || has_cold > 1 || !w1_valid(ld64(im, 16)) ||
            (has_cold && !level_cold_valid(&cold)))
            return false;
        d->last_image[ci] = k;
    }
    return true;
}

struct feed_batch_partial {
    uint64_t batch_id;
    size_t n; /* changes */
    uint8_t *images; /* n image slots, by change (w1 0: none yet) */
};

static void batch_partial_drop(feed_decoder *d, size_t i)
{
    assert(decoder_ok(d) && i < FEED_PARTIALS_MAX);
    if (d->batches[i])
        free(d->batches[i]->images);
    free(d->batches[i]);
    d->batches[i] = NULL;
}

/* The partial batch id's slot (SIZE_MAX: none). */
static size_t batch_partial_find(const feed_decoder *d, uint64_t batch_id)
{
    assert(decoder_ok(d));
    for (size_t i = 0; i < FEED_PARTIALS_MAX; i++)
        if (d->batches[i] && d->batches[i]->batch_id == batch_id)
            return i;
    return SIZE_MAX;
}

/* A partial record: keeps each change's last image in it. More batches
 * cut midway at once than FEED_PARTIALS_MAX forget the oldest (their
 * changes then show no after image). */
static int batch_partial_keep(feed_decoder *d, const batch_view *b)
{
    assert(decoder_ok(d) && b != NULL);
    size_t i = batch_partial_find(d, b->batch_id);
    if (i == SIZE_MAX) {
        i = d->batches_next;
        d->batches_next = (d->batches_next + 1) % FEED_PARTIALS_MAX;
        batch_partial_drop(d, i);
        if (!(d->batches[i] = inv_calloc(1, sizeof *d->batches[i])))
            return INV_ENOMEM;
        d->batches[i]->batch_id = b->batch_id;
    }
    feed_batch_partial *pb = d->batches[i];
    if (b->n_changes > pb->n) {
        uint8_t *im = inv_realloc(pb->images, (size_t)b->n_changes * BATCH_IMAGE_LEN);
        if (!im)
            return INV_ENOMEM;
        memset(im + pb->n * BATCH_IMAGE_LEN, 0, (b->n_changes - pb->n) * BATCH_IMAGE_LEN);
        pb->images = im;
        pb->n = b->n_changes;
    }
    for (uint32_t ci = 0; ci < b->n_changes; ci++)
        if (d->last_image[ci] != UINT32_MAX)
            memcpy(pb->images + (size_t)ci * BATCH_IMAGE_LEN,
                   b->images + (size_t)d->last_image[ci] * BATCH_IMAGE_LEN, BATCH_IMAGE_LEN);
    return INV_OK;
}

/* The after image of slot ci: its last image in this record, else in the
 * batch's partial records (pb, may be NULL), if any. */
static void batch_after(feed_decoder *d, const batch_view *b, const feed_batch_partial *pb,
                        uint32_t ci, inv_feed_change *c)
{
    assert(decoder_ok(d) && b != NULL && c != NULL);
    const uint8_t *im = NULL;
    if (d->last_image[ci] != UINT32_MAX)
        im = b->images + (size_t)d->last_image[ci] * BATCH_IMAGE_LEN;
    else if (pb && ci < pb->n && ld64(pb->images + (size_t)ci * BATCH_IMAGE_LEN, 16))
        im = pb->images + (size_t)ci * BATCH_IMAGE_LEN;
    if (!im)
        return;
    after_word(c, ld64(im, 8), ld64(im, 16));
    if (ld32(im, 4)) {
        persist_cold cold;
        cold_read(im + 24, &cold);
        after_cold(c, ld64(im, 8), &cold);
    }
}

/* Which change of the batch a hold line's move is: the first one not yet
 * given to a hold, on its level, applied, of the hot word, and either of
 * the kind (format 1 names it) or of the shape the move has (format 0). */
typedef enum { MOVE_RESERVE, MOVE_UNITS_KEPT } move_shape;

static inv_feed_change *batch_claim(feed_decoder *d, size_t n, uint64_t item, uint64_t loc,
                                    inv_feed_kind kind, move_shape shape)
{
    assert(decoder_ok(d) && n <= d->cap);
    for (size_t i = 0; i < n; i++) {
        inv_feed_change *c = &d->changes[i];
        bool shaped = shape == MOVE_RESERVE
                          ? c->delta[INV_QTY_RESERVED] > 0
                          : c->delta[INV_QTY_AVAILABLE] == 0 && c->delta[INV_QTY_RESERVED] == 0;
        if (d->claimed[i] || c->item != item || c->location != loc ||
            (c->kind ? c->kind != kind : !shaped))
            continue;
        d->claimed[i] = 1;
        c->kind = kind;
        return c;
    }
    return NULL;
}

/* One embedded hold: its lines' moves among the changes get its id (and,
 * a sale, its units: the slot keeps them held, a commit makes them
 * committed). */
static void batch_hold_moves(feed_decoder *d, size_t n, const hold_view *h)
{
    assert(decoder_ok(d) && h != NULL && n <= d->cap);
    inv_feed_kind kind = hold_kind(h);
    for (size_t i = 0; i < h->n_lines; i++) {
        if (hline_status(h, i) == HLINE_UNTRACKED)
            continue;
        uint64_t item = hline_item(h, i), loc = hline_loc(h, i);
        int64_t qty = hline_qty(h, i), sold = hline_sold(h, i);
        inv_feed_change *c[2] = {NULL, NULL};
        if (kind == INV_FEED_HOLD_CREATE)
            c[0] = batch_claim(d, n, item, loc, kind, MOVE_RESERVE);
        if (kind == INV_FEED_HOLD_COMMIT && sold > 0 &&
            (c[0] = batch_claim(d, n, item, loc, kind, MOVE_UNITS_KEPT)) &&
            c[0]->delta[INV_QTY_COMMITTED] == 0) {
            c[0]->delta[INV_QTY_RESERVED] -= sold;
            c[0]->delta[INV_QTY_COMMITTED] += sold;
        }
        if ((kind == INV_FEED_HOLD_COMMIT && qty > sold) || kind == INV_FEED_HOLD_RELEASE)
            c[1] = batch_claim(d, n, item, loc, kind, MOVE_UNITS_KEPT);
        for (int k = 0; k < 2; k++)
            if (c[k]) {
                c[k]->hold_id = h->id;
                c[k]->hold_id_len = h->id_len;
            }
    }
}

/* The embedded holds, checked; each names its moves. */
static bool batch_holds(feed_decoder *d, size_t n, const batch_view *b)
{
    assert(decoder_ok(d) && b != NULL && n <= d->cap);
    const uint8_t *q = b->holds;
    uint64_t left = b->holds_bytes;
    for (size_t i = 0; i < b->n_holds; i++) {
        if (left < BATCH_HOLD_HEADER)
            return false;
        uint32_t hl = ld32(q, 0);
        hold_view h;
        if (hl == 0 || ld32(q, 4) || pad8(hl) > left - BATCH_HOLD_HEADER ||
            !hold_view_of(q + BATCH_HOLD_HEADER, hl, &h))
            return false;
        batch_hold_moves(d, n, &h);
        q += BATCH_HOLD_HEADER + pad8(hl);
        left -= BATCH_HOLD_HEADER + pad8(hl);
    }
    return true;
}

/* A hold's own change: units a batch adds never wait in it. */
static bool is_hold_kind(inv_feed_kind k)
{
    return k >= INV_FEED_HOLD_CREATE && k <= INV_FEED_HOLD_ABORT;
}

/* Folds each SETTLE change into the last earlier change of its level that
 * added the units it settles (not a hold's, not a settle): a batch keeps
 * the units it adds in reserved until decided (docs/JOURNAL.md) — its
 * inner mechanics, not a change a reader asked for. The change then reads
 * as what its line did (an adjust of +5: available +5) and carries the
 * level's image after the settle; per-level sums are unchanged. A settle
 * with no such change (none is written) stays as it is. */
static void batch_fold_settles(feed_decoder *d, size_t *n)
{
    assert(decoder_ok(d) && n != NULL && *n <= d->cap);
    size_t out = 0;
    for (size_t i = 0; i < *n; i++) {
        inv_feed_change *s = &d->changes[i];
        inv_feed_change *into = NULL;
        if (s->kind == INV_FEED_LEVEL_SETTLE)
            for (size_t k = out; k-- > 0;) {
                inv_feed_change *c = &d->changes[k];
                if (c->item == s->item && c->location == s->location &&
                    c->kind != INV_FEED_LEVEL_SETTLE && !is_hold_kind(c->kind)) {
                    into = c;
                    break;
                }
            }
        if (!into) {
            d->changes[out++] = *s;
            continue;
        }
        for (int q = 0; q < INV_QTY_NAMES; q++)
            into->delta[q] += s->delta[q];
        memcpy(into->after, s->after, sizeof into->after);
        into->after_known = s->after_known;
        into->revision = s->revision > into->revision ? s->revision : into->revision;
    }
    assert(out <= *n);
    *n = out;
}

/* The applied changes (applied and kept; undone and gone are left out),
 * compacted to the front of d->changes; *n_out how many. */
static int batch_changes(feed_decoder *d, uint64_t pos, const batch_view *b, size_t *n_out)
{
    assert(decoder_ok(d) && b != NULL && n_out != NULL);
    feed_note *notes = d->notes;
    size_t n_notes;
    if (!batch_notes(b, notes, &n_notes))
        return INV_EINVALID;
    const feed_note *all = b->format == 0 ? batch_note_for_all(notes, n_notes) : NULL;
    int rc = reserve_changes(d, b->n_changes);
    if (rc != INV_OK)
        return rc;
    if (!batch_images(d, b))
        return INV_EINVALID;
    size_t pi = batch_partial_find(d, b->batch_id);
    const feed_batch_partial *pb = pi == SIZE_MAX ? NULL : d->batches[pi];
    size_t n = 0;
    for (uint32_t i = 0; i < b->n_changes; i++) {
        inv_feed_change *c = &d->changes[n];
        memset(c, 0, sizeof *c);
        uint32_t status;
        uint16_t line;
        if (!batch_slot(b, i, c, &status, &line))
            return INV_EINVALID;
        if (status != BCH_APPLIED && status != BCH_KEPT)
            continue;
        batch_after(d, b, pb, i, c);
        if (c->revision == 0 || c->revision > pos)
            c->revision = pos; /* kept: no image of its own */
        const feed_note *note = line < INV_BATCH_LINES_MAX ? &notes[line] : all;
        if (note) {
            c->reason = (inv_reason)note->reason;
            c->ref = note->ref;
            c->ref_len = note->ref_len;
        }
        n++;
    }
    if (pi != SIZE_MAX)
        batch_partial_drop(d, pi); /* the batch is whole */
    if (!batch_holds(d, n, b))
        return INV_EINVALID;
    batch_fold_settles(d, &n);
    *n_out = n;
    return INV_OK;
}

static int decode_batch(feed_decoder *d, uint64_t pos, const uint8_t *p, uint32_t len,
                        inv_feed_record *rec)
{
    assert(decoder_ok(d) && rec != NULL);
    assert(p != NULL || len == 0);
    batch_view b;
    if (!batch_header_valid(pos, p, len, &b))
        return INV_EINVALID;
    idem_record_view idem = {0};
    if (b.final && b.idem_bytes && idem_record_decode(b.idem, b.idem_bytes, &idem) != INV_OK)
        return INV_EINVALID;
    if (!b.final) {
        /* shown whole by its final record: keep its images for it */
        int rc = reserve_changes(d, b.n_changes);
        if (rc == INV_OK)
            rc = batch_images(d, &b) ? batch_partial_keep(d, &b) : INV_EINVALID;
        return rc == INV_OK ? FEED_SKIP : rc;
    }
    if (b.outcome != BOUT_APPLIED) {
        size_t pi = batch_partial_find(d, b.batch_id);
        if (pi != SIZE_MAX)
            batch_partial_drop(d, pi);
        return FEED_SKIP; /* aborted: it changed nothing */
    }
    size_t n;
    int rc = batch_changes(d, pos, &b, &n);
    if (rc != INV_OK)
        return rc;
    rec->position = pos;
    rec->group = b.batch_id;
    /* Format 0 has no time: a batch with a request id was decided then. */
    rec->time_ms = b.format ? b.time_ms : idem.decided_at_ms;
    rec->kind = INV_FEED_BATCH;
    rec->request_id = idem.id_len ? idem.id : NULL;
    rec->request_id_len = idem.id_len;
    rec->actor = b.actor;
    rec->actor_len = b.actor_len;
    rec->changes = d->changes;
    rec->n_changes = n;
    return INV_OK;
}

/* ---- ITEM, LOCATION, DEFAULT --------------------------------------------- */

#define DEFAULT_V1_LEN 16u
#define DEFAULT_V2_LEN 24u

/* ITEM and LOCATION (catalog_record.h decodes them, every field checked). */
static int decode_catalog(uint64_t pos, uint8_t type, const uint8_t *p, uint32_t len,
                          inv_feed_record *rec)
{
    assert(rec != NULL && (p != NULL || len == 0));
    uint64_t id, version;
    item_rec *item = NULL;
    loc_rec *loc = NULL;
    bool is_item = type == PERSIST_ITEM;
    int rc = is_item ? record_item_decode(p, len, &id, &version, &item)
                     : record_loc_decode(p, len, &id, &version, &loc);
    if (rc != INV_OK)
        return rc;
    const record_times *t = item ? &item->t : loc ? &loc->t : NULL;
    rec->position = rec->group = pos;
    rec->kind = is_item ? INV_FEED_ITEM : INV_FEED_LOCATION;
    rec->item = is_item ? id : 0;
    rec->location = is_item ? 0 : id;
    rec->deleted = t == NULL; /* an item's deletion (locations stay) */
    rec->time_ms = t ? t->updated_at_ms : 0;
    free(item);
    free(loc);
    return INV_OK;
}

static int decode_default(uint64_t pos, const uint8_t *p, uint32_t len, inv_feed_record *rec)
{
    assert(rec != NULL && (p != NULL || len == 0));
    if (len != DEFAULT_V1_LEN && len != DEFAULT_V2_LEN)
        return INV_EINVALID;
    rec->position = rec->group = pos;
    rec->kind = INV_FEED_DEFAULT_LOCATION;
    rec->location = ld64(p, 0);
    rec->time_ms = len == DEFAULT_V2_LEN ? (int64_t)ld64(p, 16) : 0;
    return INV_OK;
}

/* ---- dispatch ------------------------------------------------------------ */

bool feed_type_shown(uint8_t type)
{
    switch (type) {
    case PERSIST_LEVEL:
    case PERSIST_LEVEL_COLD:
    case PERSIST_HOLD:
    case PERSIST_BATCH:
    case PERSIST_ITEM:
    case PERSIST_LOCATION:
    case PERSIST_DEFAULT:
        return true;
    default:
        return false; /* PAD, COUNTS, IDEM, snapshot and unknown types */
    }
}

int feed_decode(feed_decoder *d, uint64_t pos, uint8_t type, const uint8_t *payload, uint32_t len,
                inv_feed_record *rec)
{
    assert(decoder_ok(d) && rec != NULL);
    assert(payload != NULL || len == 0);
    assert(d && rec && pos != 0);
    assert(payload || len == 0);
    memset(rec, 0, sizeof *rec);
    switch (type) {
    case PERSIST_LEVEL:
        return decode_level(d, pos, payload, len, rec);
    case PERSIST_LEVEL_COLD:
        return decode_level_cold(d, pos, payload, len, rec);
    case PERSIST_HOLD:
        return decode_hold(d, pos, payload, len, rec);
    case PERSIST_BATCH:
        return decode_batch(d, pos, payload, len, rec);
    case PERSIST_ITEM:
    case PERSIST_LOCATION:
        return decode_catalog(pos, type, payload, len, rec);
    case PERSIST_DEFAULT:
        return decode_default(pos, payload, len, rec);
    default:
        return FEED_SKIP;
    }
}
