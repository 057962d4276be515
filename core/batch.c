/*
 * batch.c — many changes as one: inv_batch (the engine side of MULTI/EXEC).
 *
 * A batch of SET, ADJUST and GET lines only runs as one step (see "a batch
 * of level lines as one step" below): nobody sees it half applied, is
 * refused by it, or sees a revision of it unless it succeeds. Any other
 * batch (hold or cold lines, a transfer, a SET that creates its level)
 * runs its lines as follows.
 *
 * A batch runs its lines in order with the single calls' rules. Each level
 * change is one CAS on the level word, stamped with the batch's journal
 * position like a hold line (level.h), and notes what it did (its
 * deltas). Holds named by the batch are claimed before any level changes
 * (hold.h) and settled once the batch is decided. If a line fails, every
 * change made so far is taken back by its deltas (so other writers'
 * changes made meanwhile stay), the claims are undone, and the call fails:
 * nothing of the batch remains.
 *
 * Journal: one PERSIST_BATCH record per position the batch uses, each the
 * same size (reserved before the first change). A level carrying a newer
 * revision than the batch's position makes the batch publish a partial
 * record and go on at a new position (the ordering rule, persist.h). Every
 * record carries every change's status; the final one also says applied
 * (with the hold records) or aborted. Recovery takes back the applied
 * changes of a batch whose last record is partial, and journals that. So
 * after a crash a batch is there whole or not at all. For the change feed
 * (format 1) each record carries its time and the caller's actor
 * (inv_set_actor), and each change its feed kind and batch line.
 *
 * Invariants: a change is undone at most once and only if applied; a
 * record's images are those made at its position, at most two per change
 * (its apply and its undo); every claim is settled exactly once.
 * Isolation: the lines run under the lock set of every level the batch
 * names (batch_lock_levels; a level it may create is claimed first and
 * held never-written), taken after the hold claims and given back once the
 * batch is decided and settled: to everyone else the batch is one step.
 * Units a batch adds to a tracked level stay in its reserved (the batch's
 * pending units, level.h) until the batch is decided, then one settle per
 * level makes them available; an undone change leaves its level with a
 * higher revision (seen only after the set is given back).
 */
#include "alloc.h"
#include "batch.h"

#include "actor.h"
#include "catalog.h"
#include "clock.h"
#include "epoch.h"
#include "fault.h"
#include "idem.h"
#include "hold.h"
#include "level.h"
#include "level_cold.h"
#include "persist.h"
#include "vec.h"

#include <assert.h>
#include <stdio.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <stdlib.h>
#include <string.h>

/* A change's status in records. */
enum { CHANGE_NONE = 0, CHANGE_APPLIED = 1, CHANGE_KEPT = 2, CHANGE_UNDONE = 3, CHANGE_GONE = 4 };
/* A record's outcome: running (partial record), applied or aborted. */
enum { OUTCOME_RUNNING = 0, OUTCOME_APPLIED = 1, OUTCOME_ABORTED = 2 };
/* Flags of a change. */
enum {
    CHANGE_CREATED = 1, /* a SET or a transfer that created its level */
    CHANGE_COLD = 2 /* a change of the cold part too (level_cold.h): its raw
                     * deltas and rules are in the record, its images carry
                     * the cold part */
};
#define CHANGE_FLAGS (CHANGE_CREATED | CHANGE_COLD)
/* Cold quantities a batch keeps pending per change (incoming, damaged,
 * safety_stock, quality_control: the raw fields LEVEL_RAW_INCOMING..QC). */
#define BATCH_COLD_PENDING (LEVEL_RAW_N - LEVEL_RAW_INCOMING)
/* The named quantities of those raw fields, in their order. */
static const int cold_names[BATCH_COLD_PENDING] = {INV_QTY_INCOMING, INV_QTY_DAMAGED,
                                                   INV_QTY_SAFETY_STOCK, INV_QTY_QUALITY_CONTROL};

/* Level images a record may carry per change: its apply and its undo. */
#define BATCH_IMAGES_PER_CHANGE 2
/* Change slots of one batch record: its level changes (at most
 * INV_BATCH_LEVELS_MAX) times BATCH_SLOTS_PER_CHANGE, the room the writer
 * takes for the settles (batch_begin). Replay refuses a record with more,
 * so this bound and the writer's must stay one. */
#define BATCH_SLOTS_PER_CHANGE 3
#define BATCH_CHANGES_MAX (BATCH_SLOTS_PER_CHANGE * INV_BATCH_LEVELS_MAX)

/* Record formats (the header's format): 0, the first, has a 48-byte
 * header and no kind or line per change; 1 adds the stamp (time, actor)
 * after the header and names each change's kind and line. Both are read;
 * 1 is written. */
enum { BATCH_FORMAT_0 = 0, BATCH_FORMAT_1 = 1 };
/* A change's line when no line owns it (a settle). */
#define BATCH_LINE_NONE 0xffffu
_Static_assert(INV_BATCH_LINES_MAX < BATCH_LINE_NONE, "a batch line fits a change's u16 line");
/* The kinds a change may carry (0: unknown, as every format 0 change). */
#define BATCH_KINDS                                                                        \
    (PERSIST_KIND_BIT(0) | PERSIST_KIND_BIT(INV_FEED_LEVEL_SET) |                          \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_ADJUST) | PERSIST_KIND_BIT(INV_FEED_LEVEL_MOVE) |     \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_TRANSFER) | PERSIST_KIND_BIT(INV_FEED_LEVEL_FULFIL) | \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_RETURN) | PERSIST_KIND_BIT(INV_FEED_LEVEL_POLICY) |   \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_SETTLE) | PERSIST_KIND_BIT(INV_FEED_HOLD_CREATE) |    \
     PERSIST_KIND_BIT(INV_FEED_HOLD_COMMIT) | PERSIST_KIND_BIT(INV_FEED_HOLD_RELEASE) |    \
     PERSIST_KIND_BIT(INV_FEED_HOLD_EXTEND))

typedef struct {
    uint64_t batch_id; /* the position of the batch's first record */
    uint8_t final, outcome;
    uint16_t format; /* BATCH_FORMAT_*: 0 was two zero bytes */
    uint32_t n_changes, n_images, n_holds, holds_bytes;
    uint32_t cap_changes; /* sizes the record: changes, images, notes, idem, holds */
    /* Final records only (the room is in every record): the lines' reasons
     * and references (notes), and the request id with the outcome (idem). */
    uint32_t notes_bytes, idem_bytes, zero32;
} batch_rec_header;

/* Format 1: after the header, then the actor's bytes zero padded to 8. */
typedef struct {
    int64_t time_ms; /* Unix ms: a final record, when the batch was
                      * decided; a partial one, when it was written */
    uint8_t actor_len; /* <= INV_ACTOR_MAX (inv_set_actor; 0: none) */
    uint8_t zero[7];
} batch_rec_stamp;

_Static_assert(sizeof(batch_rec_header) == 48 && sizeof(batch_rec_stamp) == 16,
               "the journal format (docs/JOURNAL.md)");

/* A line's note: its reason and reference, then the reference's bytes,
 * padded to 8. */
typedef struct {
    uint32_t line;
    uint8_t reason, zero;
    uint16_t ref_len;
} batch_rec_note;

typedef struct {
    uint64_t item, location;
    int64_t d_available, d_reserved; /* d_reserved: of the held units */
    uint64_t last_revision; /* the revision of the batch's last image of it */
    uint32_t status, flags;
    /* CHANGE_COLD: the raw deltas of the cold part (level_cold.h; committed
     * is in memory only: recovery derives it), and the rules bits under
     * rules_mask before the change */
    int32_t d_cold[BATCH_COLD_PENDING];
    int32_t d_committed;
    /* format 1: the change's inv_feed_kind (0: unknown) and the batch line
     * it belongs to (BATCH_LINE_NONE: none); format 0: all zero */
    uint8_t kind, zero;
    uint16_t line;
    uint64_t rules_mask, rules_before;
} batch_rec_change;

typedef struct {
    uint32_t change, has_cold;
    uint64_t w0, w1;
    persist_cold cold; /* has_cold: the cold part after */
} batch_rec_image;

/* An embedded hold record: this header, then the PERSIST_HOLD payload,
 * padded to 8 bytes. */
typedef struct {
    uint32_t len, zero;
} batch_rec_hold;

/* Is c a change as the batch keeps it (asserts only: a change read from
 * disk passed change_valid, which checks the same)? A known status, known
 * flags, and rules before the change only inside their mask. */
static bool batch_change_ok(const batch_rec_change *c)
{
    return c->status <= CHANGE_GONE && (c->flags & ~(uint32_t)CHANGE_FLAGS) == 0 &&
           (c->rules_before & ~c->rules_mask) == 0;
}

static uint32_t pad8(uint32_t n)
{
    assert(n <= UINT32_MAX - 7); /* a length that fits a record */
    return (n + 7u) & ~7u;
}

/* The bytes before the change slots: the header, and in format 1 the
 * stamp and the actor. */
static uint32_t batch_head_len(uint16_t format, size_t actor_len)
{
    assert(actor_len <= INV_ACTOR_MAX);
    return (uint32_t)sizeof(batch_rec_header) +
           (format >= BATCH_FORMAT_1 ? (uint32_t)sizeof(batch_rec_stamp) + pad8((uint32_t)actor_len)
                                     : 0);
}

/* Change slots and their image slots, for n_changes changes. */
static uint64_t batch_slots_len(size_t n_changes)
{
    assert(n_changes <= BATCH_CHANGES_MAX); /* replay checks it before asking */
    return n_changes *
           (sizeof(batch_rec_change) + BATCH_IMAGES_PER_CHANGE * sizeof(batch_rec_image));
}

/* A record: head, slots, then tail_bytes (notes, idem, holds). */
static uint64_t batch_rec_len(uint32_t head, size_t n_changes, uint32_t tail_bytes)
{
    assert(head >= sizeof(batch_rec_header));
    return head + batch_slots_len(n_changes) + tail_bytes;
}

/* Where a record's parts start (offsets from its first byte). */
typedef struct {
    uint32_t changes, images, notes, idem, holds;
} batch_rec_parts;

static batch_rec_parts batch_parts(const batch_rec_header *h, uint32_t head, uint32_t len)
{
    batch_rec_parts at;
    at.changes = head;
    at.images = head + h->cap_changes * (uint32_t)sizeof(batch_rec_change);
    at.notes = head + (uint32_t)batch_slots_len(h->cap_changes);
    at.idem = at.notes + h->notes_bytes;
    at.holds = len - h->holds_bytes;
    assert(at.idem + h->idem_bytes <= at.holds); /* len was checked to hold them */
    return at;
}

typedef struct {
    inv_engine *e;
    uint64_t batch_id, pos, pos_last;
    uint32_t rec_len, holds_bytes, notes_bytes, idem_bytes;
    uint32_t head_len; /* the record's header, stamp and actor (batch_head_len) */
    const uint8_t *actor; /* the caller's (inv_set_actor), actor_len bytes */
    size_t actor_len;
    int64_t decided_ms; /* when the outcome was known (0: not yet) */
    size_t n_changes, cap_changes, n_images;
    /* A request id (inv_batch_ex): its record, encoded before the final
     * record is published (NULL: none). */
    const uint8_t *idem_record;
    batch_rec_change *changes; /* the record's form, so recovery shares the undo */
    uint32_t *change_line; /* the batch line each change belongs to */
    int64_t *d_pending; /* what each change did to the batch's pending units */
    int64_t *d_sold; /* units each change sold (a commit line: committed once decided) */
    int64_t *d_pend_cold; /* per change, BATCH_COLD_PENDING pending units each */
    batch_rec_image *images;
    hold_claim *claims; /* one per batch line (unused for level lines) */
    const inv_batch_line *lines;
    inv_batch_result *results; /* one per batch line */
    size_t n_lines;
    uint8_t *buf; /* one record */
} batch_op;

/* ---- records ---------------------------------------------------------------- */

static void encode_holds(const batch_op *op, uint8_t *p, uint32_t *n_holds)
{
    assert(op->pos != 0 && op->buf != NULL); /* a journaled batch's final record */
    *n_holds = 0;
    for (size_t i = 0; i < op->n_lines; i++) {
        const hold_claim *c = &op->claims[i];
        uint32_t len = hold_claim_record_len(c);
        if (!len)
            continue;
        batch_rec_hold h = {len, 0};
        memcpy(p, &h, sizeof h);
        hold_claim_encode(op->e, c, p + sizeof h);
        p += sizeof h + pad8(len);
        ++*n_holds;
    }
    assert(*n_holds <= op->n_lines); /* at most one hold per line */
}

/* The notes of the lines that carry a reason or a reference. */
static uint32_t notes_len(const inv_batch_line *lines, size_t n)
{
    assert(n <= INV_BATCH_LINES_MAX);
    uint32_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (lines[i].reason || lines[i].ref_len)
            len += (uint32_t)sizeof(batch_rec_note) + pad8((uint32_t)lines[i].ref_len);
    return len;
}

static void encode_notes(const batch_op *op, uint8_t *p)
{
    for (size_t i = 0; i < op->n_lines; i++) {
        const inv_batch_line *l = &op->lines[i];
        if (!l->reason && !l->ref_len)
            continue;
        assert(l->ref_len <= INV_REF_MAX && (unsigned)l->reason < INV_REASONS); /* check_line */
        batch_rec_note note = {(uint32_t)i, (uint8_t)l->reason, 0, (uint16_t)l->ref_len};
        memcpy(p, &note, sizeof note);
        if (l->ref_len)
            memcpy(p + sizeof note, l->ref, l->ref_len);
        p += sizeof note + pad8((uint32_t)l->ref_len);
    }
}

/* The stamp of a record written now: a final record's time is when the
 * batch was decided, a partial one's when it is written. */
static void encode_stamp(const batch_op *op, bool final, uint8_t *p)
{
    assert(op->head_len == batch_head_len(BATCH_FORMAT_1, op->actor_len));
    batch_rec_stamp st = {final ? op->decided_ms : clock_wall_ms(), (uint8_t)op->actor_len, {0}};
    memcpy(p, &st, sizeof st);
    if (op->actor_len)
        memcpy(p + sizeof st, op->actor, op->actor_len);
}

/* Publishes the record at op->pos (journal only). A partial record is
 * followed by a new reservation. */
static int batch_publish(batch_op *op, bool final, uint8_t outcome)
{
    if (!op->pos)
        return INV_OK;
    assert(!final || op->decided_ms != 0);
    memset(op->buf, 0, op->rec_len);
    batch_rec_header h = {op->batch_id,
                          final,
                          outcome,
                          BATCH_FORMAT_1,
                          (uint32_t)op->n_changes,
                          (uint32_t)op->n_images,
                          0,
                          op->holds_bytes,
                          (uint32_t)op->cap_changes,
                          op->notes_bytes,
                          op->idem_bytes,
                          0};
    batch_rec_parts at = batch_parts(&h, op->head_len, op->rec_len);
    encode_stamp(op, final, op->buf + sizeof h);
    memcpy(op->buf + at.changes, op->changes, op->n_changes * sizeof(batch_rec_change));
    memcpy(op->buf + at.images, op->images, op->n_images * sizeof(batch_rec_image));
    if (final && outcome == OUTCOME_APPLIED)
        encode_notes(op, op->buf + at.notes);
    if (final && op->idem_record)
        memcpy(op->buf + at.idem, op->idem_record, op->idem_bytes);
    if (final && outcome == OUTCOME_APPLIED)
        encode_holds(op, op->buf + at.holds, &h.n_holds);
    assert(h.n_changes <= h.cap_changes && h.n_images <= BATCH_IMAGES_PER_CHANGE * h.n_changes);
    memcpy(op->buf, &h, sizeof h);
    int rc = persist_publish(op->e, op->pos, PERSIST_BATCH, op->buf, op->rec_len);
    op->pos_last = op->pos;
    op->pos = 0;
    op->n_images = 0;
    if (rc == INV_OK && !final && (op->pos = persist_reserve(op->e, op->rec_len)) == 0)
        rc = INV_EIO;
    return rc;
}

/* Images change ci has in the record being built (its apply, its undo). */
static size_t images_of(const batch_op *op, size_t ci)
{
    size_t n = 0;
    for (size_t j = 0; j < op->n_images; j++)
        n += op->images[j].change == ci;
    assert(n <= BATCH_IMAGES_PER_CHANGE);
    return n;
}

static void note_image(batch_op *op, size_t ci, table_word image)
{
    assert(op->n_images < BATCH_IMAGES_PER_CHANGE * op->n_changes);
    assert(ci < op->n_changes && images_of(op, ci) < BATCH_IMAGES_PER_CHANGE);
    assert(table_version(image) >= 1 && !(image.w1 & TABLE_DESC));
    op->images[op->n_images++] = (batch_rec_image){(uint32_t)ci, 0, image.w0, image.w1, {0}};
    op->changes[ci].last_revision = table_version(image);
}

static void note_cold_image(batch_op *op, size_t ci, const level_image *image)
{
    assert(op->n_images < BATCH_IMAGES_PER_CHANGE * op->n_changes);
    assert(ci < op->n_changes && images_of(op, ci) < BATCH_IMAGES_PER_CHANGE);
    /* its named quantities in range (not its preorder limit: a recovery
     * undo restores rules_before as the record has them) */
    assert(table_version(image->hot) >= 1 && (uint32_t)image->cold.d_s <= INV_QTY_MAX &&
           (uint32_t)image->cold.q_i <= INV_QTY_MAX);
    op->images[op->n_images++] =
        (batch_rec_image){(uint32_t)ci, 1, image->hot.w0, image->hot.w1, image->cold};
    op->changes[ci].last_revision = table_version(image->hot);
}

/* ---- changes ------------------------------------------------------------------- */

/* A new change of line `line` (op->n_lines: no line, a settle) on
 * (item, loc), named kind in its record: its index. */
static size_t new_change(batch_op *op, size_t line, uint64_t item, uint64_t loc, inv_feed_kind kind)
{
    assert(op->n_changes < op->cap_changes && line <= op->n_lines);
    assert(kind > 0 && kind < INV_FEED_KINDS && (BATCH_KINDS & PERSIST_KIND_BIT(kind)));
    op->change_line[op->n_changes] = (uint32_t)line;
    op->d_pending[op->n_changes] = 0;
    op->d_sold[op->n_changes] = 0;
    memset(&op->d_pend_cold[op->n_changes * BATCH_COLD_PENDING], 0,
           BATCH_COLD_PENDING * sizeof *op->d_pend_cold);
    uint16_t rec_line = line < op->n_lines ? (uint16_t)line : (uint16_t)BATCH_LINE_NONE;
    op->changes[op->n_changes] = (batch_rec_change){
        item, loc, 0, 0, 0, CHANGE_NONE, 0, {0}, 0, (uint8_t)kind, 0, rec_line, 0, 0};
    return op->n_changes++;
}

/* The batch's pending units on (item, loc): the units it added there, kept
 * in reserved until it is decided (level.h). */
static int64_t pending_of(const batch_op *op, uint64_t item, uint64_t loc)
{
    int64_t pending = 0;
    for (size_t j = 0; j < op->n_changes; j++)
        if (op->changes[j].item == item && op->changes[j].location == loc)
            pending += op->d_pending[j];
    assert(pending >= 0);
    return pending;
}

/* Units the batch's commit lines sold on (item, loc): committed for its own
 * lines, counted for everyone once it is decided. */
static int64_t sold_of(const batch_op *op, uint64_t item, uint64_t loc)
{
    int64_t sold = 0;
    for (size_t j = 0; j < op->n_changes; j++)
        if (op->changes[j].item == item && op->changes[j].location == loc)
            sold += op->d_sold[j];
    assert(sold >= 0); /* a change sells units, its undo is not counted here */
    return sold;
}

/* The batch's pending units of cold quantity k (0: incoming .. 3:
 * quality_control) on (item, loc). */
static int64_t cold_pending_of(const batch_op *op, uint64_t item, uint64_t loc, size_t k)
{
    int64_t pending = 0;
    for (size_t j = 0; j < op->n_changes; j++)
        if (op->changes[j].item == item && op->changes[j].location == loc)
            pending += op->d_pend_cold[j * BATCH_COLD_PENDING + k];
    assert(pending >= 0);
    return pending;
}

/* A level as the batch's own lines see it: its pending units available,
 * its sold units committed. */
static void level_as_seen(const batch_op *op, uint64_t item, uint64_t loc, table_word w,
                          inv_level *out)
{
    assert(out != NULL && !(w.w1 & TABLE_DESC));
    level_out(w, level_rules_now(op->e, item, loc), out);
    int64_t pending = pending_of(op, item, loc), sold = sold_of(op, item, loc);
    for (size_t k = 0; k < BATCH_COLD_PENDING; k++)
        sold += cold_pending_of(op, item, loc, k); /* held, not reserved */
    out->available += pending;
    out->reserved -= pending + sold;
}

/* Every quantity of a level as the batch's own lines see it: pending
 * units in their quantities, sold units committed. */
static int full_as_seen(const batch_op *op, uint64_t item, uint64_t loc, inv_level_full *f)
{
    assert(f != NULL);
    int rc = level_read_full(op->e, item, loc, f);
    if (rc != INV_OK)
        return rc;
    int64_t pending = pending_of(op, item, loc), sold = sold_of(op, item, loc);
    f->qty[INV_QTY_AVAILABLE] += pending;
    f->qty[INV_QTY_RESERVED] -= pending + sold;
    f->qty[INV_QTY_COMMITTED] += sold;
    for (size_t k = 0; k < BATCH_COLD_PENDING; k++) {
        int64_t p = cold_pending_of(op, item, loc, k);
        f->qty[cold_names[k]] += p;
        f->qty[INV_QTY_RESERVED] -= p;
    }
    f->on_hand = level_on_hand(f->qty);
    return INV_OK;
}

/* After a level call: when the level carried a newer revision than the
 * batch's position (LEVEL_NEEDS_POSITION), publishes what was done so far
 * and answers true: call again at the new position. Else *rc stays. */
static bool again_at_new_position(batch_op *op, int *rc)
{
    if (*rc != LEVEL_NEEDS_POSITION)
        return false;
    assert(op->pos != 0); /* only a positioned change meets a newer revision */
    *rc = batch_publish(op, false, OUTCOME_RUNNING);
    assert(*rc != INV_OK || op->pos != 0); /* published and reserved again */
    return *rc == INV_OK;
}

/* Applies lc to change ci's level, or, with create, creates the level of
 * a SET (its lc->qty units pending) that found none: at the batch's position,
 * again at a new one while the level carries a newer revision. */
static int apply_change(batch_op *op, size_t ci, level_change *lc, bool create, table_word *image)
{
    assert(ci < op->n_changes);
    batch_rec_change *c = &op->changes[ci];
    assert(c->status == CHANGE_NONE); /* a change applies once (a retry: none yet) */
    lc->pending = pending_of(op, c->item, c->location);
    int rc;
    do
        rc = create ? level_create_at(op->e, c->item, c->location, lc->qty, op->pos, image)
                    : level_change_at(op->e, c->item, c->location, lc, op->pos, image);
    while (again_at_new_position(op, &rc));
    if (rc != INV_OK)
        return rc;
    if (!create && lc->kept) {
        c->status = CHANGE_KEPT;
        *image = lc->seen;
        return INV_OK;
    }
    /* A created level's word is all the batch's doing (its units pending,
     * level_create_at). */
    c->d_available = create ? level_available(*image) : lc->d_available;
    c->d_reserved = create ? level_held(*image) : lc->d_reserved;
    op->d_pending[ci] = create ? level_held(*image) : lc->d_pending;
    op->d_sold[ci] = !create && lc->kind == LEVEL_CHANGE_SELL ? lc->qty : 0;
    c->status = CHANGE_APPLIED;
    c->flags |= create ? CHANGE_CREATED : 0;
    assert(batch_change_ok(c) && pending_of(op, c->item, c->location) >= 0);
    note_image(op, ci, *image);
    return INV_OK;
}

/* The highest revision the batch stamped on change ci's level: a level it
 * created is deleted again only if nobody changed it after that. */
static uint64_t batch_last_revision(const batch_rec_change *all, size_t n, size_t ci)
{
    assert(ci < n && (all[ci].flags & CHANGE_CREATED));
    uint64_t rev = 0;
    for (size_t j = 0; j < n; j++)
        if (all[j].item == all[ci].item && all[j].location == all[ci].location &&
            all[j].last_revision > rev)
            rev = all[j].last_revision;
    return rev;
}

/* The cold change that takes back change c: its raw deltas negated, or
 * its rules as they were. */
static void cold_undo_op(const batch_rec_change *c, level_cold_op *u)
{
    assert(c->status == CHANGE_APPLIED && (c->flags & CHANGE_COLD)); /* undo_changes */
    *u = (level_cold_op){.kind = c->rules_mask ? LEVEL_COLD_RULES : LEVEL_COLD_RAW,
                         .rules_mask = c->rules_mask,
                         .rules_bits = c->rules_before};
    u->raw_in[LEVEL_RAW_AVAILABLE] = -c->d_available;
    u->raw_in[LEVEL_RAW_HELD] = -c->d_reserved;
    u->raw_in[LEVEL_RAW_COMMITTED] = -c->d_committed;
    for (size_t k = 0; k < BATCH_COLD_PENDING; k++)
        u->raw_in[LEVEL_RAW_INCOMING + k] = -c->d_cold[k];
    assert((u->rules_bits & ~u->rules_mask) == 0); /* batch_change_ok */
}

/* Takes back a cold change at the batch's position (again at a new one
 * while the level carries a newer revision). */
static int undo_cold(batch_op *op, size_t k, int *first_rc)
{
    assert(k < op->n_changes && first_rc != NULL);
    batch_rec_change *c = &op->changes[k];
    level_cold_op u;
    cold_undo_op(c, &u);
    u.batch = true; /* a rules undo of nothing changes still stamps */
    level_image image;
    uint64_t unused;
    int rc;
    while ((rc = level_cold_apply(op->e, c->item, c->location, &u, op->pos, &image, &unused)) ==
           LEVEL_NEEDS_POSITION) {
        int published = batch_publish(op, false, OUTCOME_RUNNING);
        if (published != INV_OK && *first_rc == INV_OK)
            *first_rc = published;
    }
    if (rc == INV_OK)
        note_cold_image(op, k, &image);
    return rc;
}

/* Takes back every applied change, the newest first. */
static int undo_changes(batch_op *op)
{
    int first_rc = INV_OK;
    for (size_t k = op->n_changes; k-- > 0;) {
        batch_rec_change *c = &op->changes[k];
        assert(batch_change_ok(c));
        if (c->status != CHANGE_APPLIED)
            continue; /* undone at most once, and only if applied */
        if (c->flags & CHANGE_COLD) {
            c->status = undo_cold(op, k, &first_rc) == INV_OK ? CHANGE_UNDONE : CHANGE_GONE;
            continue;
        }
        level_undo u = {c->d_available, c->d_reserved, 0};
        if (c->flags & CHANGE_CREATED)
            u.created_revision = batch_last_revision(op->changes, op->n_changes, k);
        table_word image;
        int rc;
        while ((rc = level_undo_at(op->e, c->item, c->location, &u, op->pos, &image)) ==
               LEVEL_NEEDS_POSITION) {
            int published = batch_publish(op, false, OUTCOME_RUNNING);
            /* A failed journal leaves op->pos 0: the undo finishes in
             * memory, and the failure is reported. */
            if (published != INV_OK && first_rc == INV_OK)
                first_rc = published;
        }
        if (rc == INV_OK) {
            c->status = CHANGE_UNDONE;
            note_image(op, k, image);
        } else {
            /* Deleted meanwhile (with its item): its units went with it. */
            c->status = CHANGE_GONE;
        }
        assert(c->status == CHANGE_UNDONE || c->status == CHANGE_GONE);
    }
    return first_rc;
}

/* ---- lines ---------------------------------------------------------------------- */

static bool is_cold_line(inv_batch_op op)
{
    return op == INV_BATCH_LEVEL_MOVE || op == INV_BATCH_LEVEL_TRANSFER ||
           op == INV_BATCH_LEVEL_FULFIL || op == INV_BATCH_LEVEL_POLICY;
}

static bool is_hold_line(inv_batch_op op)
{
    return op == INV_BATCH_HOLD_CREATE || op == INV_BATCH_HOLD_COMMIT ||
           op == INV_BATCH_HOLD_RELEASE || op == INV_BATCH_HOLD_EXTEND;
}

/* A level line. A read never fails the batch: its result carries its rc. */
static int run_level_line(batch_op *op, size_t i, inv_batch_result *res)
{
    assert(i < op->n_lines);
    const inv_batch_line *l = &op->lines[i];
    if (l->op == INV_BATCH_LEVEL_GET || l->op == INV_BATCH_LEVEL_GET_FULL) {
        int64_t pending = pending_of(op, l->item, l->location);
        int64_t sold = sold_of(op, l->item, l->location);
        if (l->op == INV_BATCH_LEVEL_GET_FULL) {
            res->rc = full_as_seen(op, l->item, l->location, &res->full);
            return INV_OK;
        }
        res->rc = level_read(op->e, l->item, l->location, &res->level);
        res->level.available += pending;
        res->level.reserved -= pending + sold;
        return INV_OK;
    }
    bool set = l->op == INV_BATCH_LEVEL_SET;
    size_t ci =
        new_change(op, i, l->item, l->location, set ? INV_FEED_LEVEL_SET : INV_FEED_LEVEL_ADJUST);
    level_change lc = {.kind = set ? LEVEL_CHANGE_SET : LEVEL_CHANGE_ADJUST,
                       .qty = l->qty,
                       .floor = set ? INV_NO_FLOOR : l->floor,
                       .if_revision = l->if_revision};
    table_word image = {0, 0};
    int rc;
    for (;;) {
        rc = apply_change(op, ci, &lc, false, &image);
        if (rc != INV_ENOTFOUND || !set)
            break;
        if (l->if_revision) {
            rc = INV_ECONFLICT; /* no level: revision 0 */
            break;
        }
        rc = apply_change(op, ci, &lc, true, &image);
        if (rc != LEVEL_EXISTS)
            break;
    }
    assert(rc != LEVEL_EXISTS && rc != LEVEL_NEEDS_POSITION); /* both answered above */
    level_as_seen(op, l->item, l->location, rc == INV_OK ? image : lc.seen, &res->level);
    return rc;
}

/* Applies a cold change (a move, a fulfilment, a policy) as change ci of
 * the batch: its own pending units seen and taken first, its increases
 * kept pending (level_cold.h), at the batch's position. */
static int apply_cold(batch_op *op, size_t ci, level_cold_op *cop)
{
    assert(ci < op->n_changes);
    batch_rec_change *c = &op->changes[ci];
    assert(c->status == CHANGE_NONE); /* a change applies once */
    cop->batch = true;
    cop->pend_in[INV_QTY_AVAILABLE] = pending_of(op, c->item, c->location);
    cop->pend_in[INV_QTY_COMMITTED] = sold_of(op, c->item, c->location);
    for (size_t k = 0; k < BATCH_COLD_PENDING; k++)
        cop->pend_in[cold_names[k]] = cold_pending_of(op, c->item, c->location, k);
    level_image image;
    uint64_t unused;
    int rc;
    do
        rc = level_cold_apply(op->e, c->item, c->location, cop, op->pos, &image, &unused);
    while (again_at_new_position(op, &rc));
    if (rc != INV_OK)
        return rc;
    (void)fault_check_arg(FAULT_BATCH_CHANGE, ci, 0); /* a test point: mid-batch */
    c->status = CHANGE_APPLIED;
    c->flags |= CHANGE_COLD;
    c->d_available = cop->raw[LEVEL_RAW_AVAILABLE];
    c->d_reserved = cop->raw[LEVEL_RAW_HELD];
    c->d_committed = (int32_t)cop->raw[LEVEL_RAW_COMMITTED];
    for (size_t k = 0; k < BATCH_COLD_PENDING; k++) {
        c->d_cold[k] = (int32_t)cop->raw[LEVEL_RAW_INCOMING + k];
        op->d_pend_cold[ci * BATCH_COLD_PENDING + k] = cop->pend_out[cold_names[k]];
    }
    if (cop->kind == LEVEL_COLD_RULES) {
        c->rules_mask = cop->rules_mask;
        c->rules_before = cop->rules_before;
    }
    op->d_pending[ci] = cop->pend_out[INV_QTY_AVAILABLE];
    op->d_sold[ci] = cop->pend_out[INV_QTY_COMMITTED];
    assert(batch_change_ok(c) && pending_of(op, c->item, c->location) >= 0);
    note_cold_image(op, ci, &image);
    return INV_OK;
}

/* The level as the batch's lines see it, into res->level (after a cold
 * change or its refusal). */
static void cold_as_seen(batch_op *op, uint64_t item, uint64_t loc, inv_level *out)
{
    assert(op != NULL && out != NULL);
    table_slot *s = table_find(&op->e->levels, item, loc);
    table_word w = s ? table_load_key(s, item, loc) : (table_word){0, 0};
    level_as_seen(op, item, loc, w, out);
}

/* A transfer's destination: created (empty) when absent, as a change of
 * its own that the batch's undo deletes again if nobody touched it. */
static int transfer_destination(batch_op *op, size_t i, uint64_t item, uint64_t loc)
{
    assert(i < op->n_lines && op->lines[i].op == INV_BATCH_LEVEL_TRANSFER);
    assert(loc == op->lines[i].to_location && loc != op->lines[i].location); /* check_line_op */
    table_slot *s = table_find(&op->e->levels, item, loc);
    if (s && table_is_live(table_load_key(s, item, loc)))
        return INV_OK;
    size_t ci = new_change(op, i, item, loc, INV_FEED_LEVEL_TRANSFER);
    level_change lc = {.kind = LEVEL_CHANGE_SET, .floor = INV_NO_FLOOR};
    table_word image;
    int rc = apply_change(op, ci, &lc, true, &image);
    return rc == LEVEL_EXISTS ? INV_OK : rc; /* created meanwhile: use it */
}

/* A line that changes cold parts: LEVEL.MOVE, FULFIL, POLICY, TRANSFER. */
static int run_cold_line(batch_op *op, size_t i, inv_batch_result *res)
{
    assert(i < op->n_lines);
    const inv_batch_line *l = &op->lines[i];
    assert(is_cold_line(l->op));
    level_cold_op cop;
    int rc = INV_OK;
    switch (l->op) {
    case INV_BATCH_LEVEL_MOVE:
        rc = level_move_op(&cop, l->qty, l->from, l->to, l->floor);
        break;
    case INV_BATCH_LEVEL_FULFIL:
        rc = level_fulfil_op(&cop, l->qty);
        break;
    case INV_BATCH_LEVEL_POLICY:
        rc = level_policy_op(&cop, l->policy, l->preorder_limit);
        break;
    default: /* TRANSFER: out of one level, then into the other */
        rc = level_location_inactive_check(op->e, l->to_location);
        if (rc == INV_OK)
            rc = level_delta_op(&cop, l->from, -l->qty, INV_NO_FLOOR);
        break;
    }
    if (rc == INV_OK)
        rc = apply_cold(op, new_change(op, i, l->item, l->location, cop.feed_kind), &cop);
    cold_as_seen(op, l->item, l->location, &res->level);
    (void)full_as_seen(op, l->item, l->location, &res->full);
    if (rc != INV_OK || l->op != INV_BATCH_LEVEL_TRANSFER)
        return rc;
    rc = transfer_destination(op, i, l->item, l->to_location);
    if (rc == INV_OK) {
        level_cold_op in;
        rc = level_delta_op(&in, l->to, l->qty, INV_NO_FLOOR);
        if (rc == INV_OK)
            rc = apply_cold(op, new_change(op, i, l->item, l->to_location, in.feed_kind), &in);
    }
    cold_as_seen(op, l->item, l->to_location, &res->to_level);
    (void)full_as_seen(op, l->item, l->to_location, &res->to_full);
    return rc;
}

/* The caller's number of a hold line (the claim's lines are sorted). */
static size_t caller_line(const inv_batch_line *l, const inv_hold_line *hl)
{
    for (size_t j = 0; j < l->n_hold_lines; j++)
        if (l->hold_lines[j].item == hl->item && l->hold_lines[j].location == hl->location)
            return j;
    return 0;
}

/* One move of a hold line's units on (hl's item, location): qty units
 * reserved, sold or returned. A level deleted with its item took a
 * claimed hold's units along (as hold_end): nothing to move. */
static int run_hold_move(batch_op *op, size_t i, const inv_hold_line *hl, uint8_t kind, int64_t qty,
                         inv_batch_result *res)
{
    assert(qty >= 1 && qty <= hl->qty);
    inv_batch_op line_op = op->lines[i].op;
    inv_feed_kind fk = line_op == INV_BATCH_HOLD_CREATE   ? INV_FEED_HOLD_CREATE
                       : line_op == INV_BATCH_HOLD_COMMIT ? INV_FEED_HOLD_COMMIT
                                                          : INV_FEED_HOLD_RELEASE;
    size_t ci = new_change(op, i, hl->item, hl->location, fk);
    level_change lc = {.kind = kind, .qty = qty, .floor = INV_NO_FLOOR};
    table_word image;
    int rc = apply_change(op, ci, &lc, false, &image);
    if (rc == INV_ENOTFOUND && kind != LEVEL_CHANGE_RESERVE) {
        op->changes[ci].status = CHANGE_GONE;
        return INV_OK;
    }
    if (rc != INV_OK)
        res->hold_failure =
            (inv_hold_failure){caller_line(&op->lines[i], hl), hl->item, hl->location,
                               rc == INV_EINSUFFICIENT ? level_available(lc.seen) + lc.pending : 0};
    return rc;
}

/* A hold line: moves the units of its claim (a retry and an extend have
 * none). A commit sells each line's sold units and returns the rest. */
static int run_hold_line(batch_op *op, size_t i, inv_batch_result *res)
{
    assert(i < op->n_lines);
    const inv_batch_line *l = &op->lines[i];
    assert(is_hold_line(l->op)); /* claimed by prepare */
    hold_claim *c = &op->claims[i];
    for (size_t j = 0; j < hold_claim_n_lines(c); j++) {
        inv_hold_line hl;
        int64_t sold;
        if (!hold_claim_line(c, j, &hl, &sold))
            continue;
        int rc = INV_OK;
        if (l->op == INV_BATCH_HOLD_CREATE)
            rc = run_hold_move(op, i, &hl, LEVEL_CHANGE_RESERVE, hl.qty, res);
        if (rc == INV_OK && sold > 0)
            rc = run_hold_move(op, i, &hl, LEVEL_CHANGE_SELL, sold, res);
        if (rc == INV_OK && l->op != INV_BATCH_HOLD_CREATE && hl.qty > sold)
            rc = run_hold_move(op, i, &hl, LEVEL_CHANGE_RETURN, hl.qty - sold, res);
        if (rc != INV_OK)
            return rc;
    }
    return INV_OK;
}

/* Last, every changed level's item must still exist: an item deletion that
 * raced the batch either saw its changes (and refused, for reserved units)
 * or deleted the item first, and the batch fails (as a hold create does). */
static int items_still_exist(batch_op *op, size_t *failed, inv_batch_result *results)
{
    for (size_t ci = 0; ci < op->n_changes; ci++) {
        const batch_rec_change *c = &op->changes[ci];
        bool tracked;
        if (c->status == CHANGE_GONE || catalog_item_exists(&op->e->cat, c->item, &tracked))
            continue;
        assert(op->change_line[ci] < op->n_lines); /* before the settles: each has its line */
        *failed = op->change_line[ci];
        results[*failed].rc = INV_ENOTFOUND;
        results[*failed].hold_failure = (inv_hold_failure){0, c->item, c->location, 0};
        return INV_ENOTFOUND;
    }
    return INV_OK;
}

/* ---- the call ---------------------------------------------------------------- */

static int check_line_op(const inv_batch_line *l);

/* A line's reason and reference (any op), then its op's arguments. */
static int check_line(const inv_batch_line *l)
{
    if ((unsigned)l->reason >= INV_REASONS || (l->ref_len && !l->ref))
        return INV_EINVALID;
    if (l->ref_len > INV_REF_MAX)
        return INV_ELIMIT;
    return check_line_op(l);
}

static int check_line_op(const inv_batch_line *l)
{
    switch (l->op) {
    case INV_BATCH_LEVEL_SET:
        return qty_in_range(l->qty) ? INV_OK : INV_ELIMIT;
    case INV_BATCH_LEVEL_ADJUST:
        return qty_in_range(l->qty) && (l->floor == INV_NO_FLOOR || qty_in_range(l->floor))
                   ? INV_OK
                   : INV_ELIMIT;
    case INV_BATCH_LEVEL_GET:
    case INV_BATCH_LEVEL_GET_FULL:
        return INV_OK;
    case INV_BATCH_LEVEL_MOVE:
    case INV_BATCH_LEVEL_TRANSFER:
    case INV_BATCH_LEVEL_FULFIL:
    case INV_BATCH_LEVEL_POLICY: {
        level_cold_op cop;
        if (l->op == INV_BATCH_LEVEL_POLICY)
            return level_policy_op(&cop, l->policy, l->preorder_limit);
        if (l->op == INV_BATCH_LEVEL_FULFIL)
            return level_fulfil_op(&cop, l->qty);
        if (l->op == INV_BATCH_LEVEL_MOVE)
            return level_move_op(&cop, l->qty, l->from, l->to, l->floor);
        if (l->location == l->to_location)
            return INV_EINVALID; /* a transfer goes somewhere else */
        int rc = level_delta_op(&cop, l->from, -l->qty, INV_NO_FLOOR);
        if (rc == INV_OK)
            rc = level_delta_op(&cop, l->to, l->qty, INV_NO_FLOOR);
        return rc == INV_OK && l->qty < 1 ? INV_EINVALID : rc;
    }
    case INV_BATCH_HOLD_CREATE:
    case INV_BATCH_HOLD_COMMIT:
    case INV_BATCH_HOLD_RELEASE:
    case INV_BATCH_HOLD_EXTEND:
        /* The rest (lines, ttl, attributes) is checked by the hold's claim. */
        if (!l->hold_id || l->hold_id_len == 0 ||
            (l->n_hold_lines &&
             (l->op == INV_BATCH_HOLD_RELEASE || l->op == INV_BATCH_HOLD_EXTEND)))
            return INV_EINVALID;
        return l->hold_id_len > INV_HOLD_ID_MAX ? INV_ELIMIT : INV_OK;
    default:
        return INV_EINVALID;
    }
}

/* Validates every line before anything changes; *bad: the failing line. */
static int check_lines(const inv_batch_line *lines, size_t n, size_t *bad)
{
    assert(n >= 1 && n <= INV_BATCH_LINES_MAX); /* inv_batch_ex checked n */
    for (size_t i = 0; i < n; i++) {
        *bad = i;
        int rc = check_line(&lines[i]);
        if (rc != INV_OK)
            return rc;
        for (size_t j = 0; is_hold_line(lines[i].op) && j < i; j++)
            if (is_hold_line(lines[j].op) && lines[j].hold_id_len == lines[i].hold_id_len &&
                memcmp(lines[j].hold_id, lines[i].hold_id, lines[i].hold_id_len) == 0)
                return INV_EINVALID; /* one hold, one line */
    }
    return INV_OK;
}

static int claim_line(inv_engine *e, const inv_batch_line *l, hold_claim *c, inv_batch_result *res)
{
    assert(is_hold_line(l->op) && c->r == NULL); /* one claim per line */
    switch (l->op) {
    case INV_BATCH_HOLD_CREATE: {
        const inv_hold_opts opts = {l->buyer, l->buyer_len, l->buyer_limit, l->order_ref,
                                    l->order_ref_len};
        return hold_claim_create(e, l->hold_id, l->hold_id_len, l->ttl_ms, l->hold_lines,
                                 l->n_hold_lines, &opts, c, &res->hold_failure);
    }
    case INV_BATCH_HOLD_EXTEND:
        return hold_claim_extend(e, l->hold_id, l->hold_id_len, l->ttl_ms, c);
    case INV_BATCH_HOLD_COMMIT:
        return hold_claim_end(e, l->hold_id, l->hold_id_len, INV_HOLD_COMMITTED, l->hold_lines,
                              l->n_hold_lines, c);
    default:
        return hold_claim_end(e, l->hold_id, l->hold_id_len, INV_HOLD_RELEASED, NULL, 0, c);
    }
}

static void undo_claims(batch_op *op)
{
    for (size_t i = 0; i < op->n_lines; i++)
        if (op->claims[i].r)
            hold_claim_undo(op->e, &op->claims[i]);
}

/* Claims every hold, sizes the changes and the record. */
static int prepare(batch_op *op, size_t *failed)
{
    assert(op->n_lines >= 1 && op->n_changes == 0 && op->pos == 0);
    size_t changes = 0;
    uint32_t holds_bytes = 0;
    for (size_t i = 0; i < op->n_lines; i++) {
        const inv_batch_line *l = &op->lines[i];
        *failed = i;
        if (is_hold_line(l->op)) {
            int rc = claim_line(op->e, l, &op->claims[i], &op->results[i]);
            if (rc != INV_OK)
                return rc;
            changes += hold_claim_n_moves(&op->claims[i]);
            uint32_t len = hold_claim_record_len(&op->claims[i]);
            holds_bytes += len ? (uint32_t)sizeof(batch_rec_hold) + pad8(len) : 0;
        } else if (l->op == INV_BATCH_LEVEL_TRANSFER) {
            changes += 3; /* out, the destination's creation, in */
        } else if (l->op != INV_BATCH_LEVEL_GET && l->op != INV_BATCH_LEVEL_GET_FULL) {
            changes++;
        }
        if (changes > INV_BATCH_LEVELS_MAX)
            return INV_ELIMIT;
    }
    changes *= BATCH_SLOTS_PER_CHANGE; /* room for two settles per level (commit_batch) */
    assert(changes <= BATCH_CHANGES_MAX); /* replay reads every record written */
    op->notes_bytes = notes_len(op->lines, op->n_lines);
    /* The calling thread's actor, read once: every record of the batch
     * has the same length. */
    op->actor_len = actor_get(&op->actor);
    op->head_len = batch_head_len(BATCH_FORMAT_1, op->actor_len);
    uint64_t rec_len =
        batch_rec_len(op->head_len, changes, holds_bytes + op->notes_bytes + op->idem_bytes);
    if (rec_len > JOURNAL_PAYLOAD_MAX)
        return INV_ELIMIT;
    op->cap_changes = changes;
    op->holds_bytes = holds_bytes;
    op->rec_len = (uint32_t)rec_len;
    size_t bytes =
        changes * (sizeof *op->changes + sizeof *op->d_pending + sizeof *op->d_sold +
                   BATCH_COLD_PENDING * sizeof *op->d_pend_cold + sizeof *op->change_line +
                   BATCH_IMAGES_PER_CHANGE * sizeof *op->images) +
        (op->e->jr ? rec_len : 0);
    uint8_t *mem = inv_malloc(bytes ? bytes : 1);
    if (!mem)
        return INV_ENOMEM;
    /* 8-byte parts first: the record buffer is read as structs. */
    op->changes = (batch_rec_change *)mem;
    op->images = (batch_rec_image *)(op->changes + changes);
    op->d_pending = (int64_t *)(op->images + BATCH_IMAGES_PER_CHANGE * changes);
    op->d_sold = op->d_pending + changes;
    op->d_pend_cold = op->d_sold + changes;
    int64_t *end = op->d_pend_cold + BATCH_COLD_PENDING * changes;
    op->buf = op->e->jr ? (uint8_t *)end : NULL;
    op->change_line = (uint32_t *)((uint8_t *)end + (op->e->jr ? rec_len : 0));
    if (op->e->jr && (changes || holds_bytes)) {
        op->pos = op->batch_id = persist_reserve(op->e, op->rec_len);
        if (!op->pos)
            return INV_EIO;
    }
    return INV_OK;
}

/* Is change k the first of the batch's changes of its level? */
static bool first_of_level(const batch_op *op, size_t k)
{
    assert(k < op->n_changes);
    for (size_t j = 0; j < k; j++)
        if (op->changes[j].item == op->changes[k].item &&
            op->changes[j].location == op->changes[k].location)
            return false;
    return true;
}

/* Decided: pending units of cold quantities leave held for their
 * quantity (one raw change per level, after the lines' changes). */
static int settle_cold_pending(batch_op *op, size_t n)
{
    assert(n <= op->n_changes);
    for (size_t k = 0; k < n; k++) {
        const batch_rec_change *c = &op->changes[k];
        if (!first_of_level(op, k))
            continue;
        level_cold_op settle = {.kind = LEVEL_COLD_RAW};
        bool any = false;
        for (size_t q = 0; q < BATCH_COLD_PENDING; q++) {
            int64_t p = cold_pending_of(op, c->item, c->location, q);
            settle.raw_in[LEVEL_RAW_INCOMING + q] = p;
            settle.raw_in[LEVEL_RAW_HELD] -= p;
            any |= p != 0;
        }
        if (!any)
            continue;
        size_t si = new_change(op, op->n_lines, c->item, c->location, INV_FEED_LEVEL_SETTLE);
        int rc = apply_cold(op, si, &settle);
        if (rc == INV_ENOTFOUND)
            op->changes[si].status = CHANGE_GONE; /* cannot be: pending units block deletes */
        else if (rc != INV_OK)
            return rc;
        for (size_t q = 0; rc == INV_OK && q < BATCH_COLD_PENDING; q++)
            op->d_pend_cold[si * BATCH_COLD_PENDING + q] = -settle.raw_in[LEVEL_RAW_INCOMING + q];
    }
    return INV_OK;
}

/* Decided: units the batch sold (commit lines, moves into committed) count
 * as committed now (level_commit_units), one count per level. */
static void count_sold(batch_op *op)
{
    for (size_t k = 0; k < op->n_changes; k++) {
        const batch_rec_change *c = &op->changes[k];
        int64_t sold = first_of_level(op, k) ? sold_of(op, c->item, c->location) : 0;
        assert(sold <= LEVEL_HELD_MAX); /* sold units stayed held */
        if (sold > 0)
            level_commit_units(op->e, c->item, c->location, sold);
    }
}

/* Decided: every level's pending units become available (one settle per
 * level, after the lines' changes; no line owns it). */
static int settle_pending(batch_op *op)
{
    size_t n = op->n_changes;
    /* one settle per level fits: prepare made room for two per change */
    assert(2 * n <= op->cap_changes);
    for (size_t k = 0; k < n; k++) {
        const batch_rec_change *c = &op->changes[k];
        bool first = true;
        for (size_t j = 0; j < k && first; j++)
            first = op->changes[j].item != c->item || op->changes[j].location != c->location;
        if (!first || pending_of(op, c->item, c->location) == 0)
            continue;
        size_t si = new_change(op, op->n_lines, c->item, c->location, INV_FEED_LEVEL_SETTLE);
        level_change lc = {.kind = LEVEL_CHANGE_SETTLE, .floor = INV_NO_FLOOR};
        table_word image;
        int rc = apply_change(op, si, &lc, false, &image);
        if (rc == INV_ENOTFOUND)
            op->changes[si].status = CHANGE_GONE; /* cannot be: pending units block deletes */
        else if (rc != INV_OK)
            return rc;
        assert(rc != INV_OK || pending_of(op, c->item, c->location) == 0);
    }
    return settle_cold_pending(op, n);
}

/* Success: settles the pending units and the claims, and publishes the
 * final record. */
static int commit_batch(batch_op *op)
{
    assert(op->decided_ms != 0); /* the final record's time */
    /* Only a failed journal stops a settle; the claims are settled all the
     * same (in memory: nothing can be made durable any more). */
    int settled = settle_pending(op);
    /* A commit's sold units stayed held while the batch ran: now that it
     * is decided they count as committed (level.h). */
    count_sold(op);
    bool counted[INV_HOLD_LINES_MAX];
    size_t ci = 0;
    for (size_t i = 0; i < op->n_lines; i++) {
        hold_claim *c = &op->claims[i];
        size_t first = ci;
        while (ci < op->n_changes && op->change_line[ci] == i)
            ci++;
        if (!c->r)
            continue;
        for (size_t j = 0; c->to == INV_HOLD_HELD && j < hold_claim_n_lines(c); j++)
            counted[j] = op->changes[first + j].status == CHANGE_APPLIED;
        hold_claim_done(c, counted, op->pos);
    }
    assert(ci <= op->n_changes);
    int rc = batch_publish(op, true, OUTCOME_APPLIED);
    if (settled != INV_OK)
        rc = settled;
    for (size_t i = 0; i < op->n_lines; i++)
        if (op->claims[i].r)
            hold_claim_published(op->e, &op->claims[i], op->pos_last);
    for (size_t k = 0; k < op->n_changes; k++) {
        bool tracked = true;
        /* A level the batch created follows a tracked flag changed meanwhile. */
        if ((op->changes[k].flags & CHANGE_CREATED) &&
            catalog_item_exists(&op->e->cat, op->changes[k].item, &tracked)) {
            uint64_t pos =
                level_follow_tracked(op->e, op->changes[k].item, op->changes[k].location, tracked);
            if (pos > op->pos_last)
                op->pos_last = pos;
        }
    }
    return rc;
}

/* ---- a batch of level lines as one step ------------------------------------
 *
 * A batch of SET, ADJUST and GET lines only runs as one step
 * (level_batch_apply): every line is decided on the words its levels had at
 * one moment, and one status CAS makes every change visible at once, or,
 * refused, none, and no revision moves. It needs no pending units (nobody
 * sees its units before it is decided) and no undo, and journals one final
 * record at one position (renewed, never published, when a level carries a
 * newer revision). Batches with hold or cold lines take the lines path. */

/* Not applicable to this batch: take the lines path (nothing changed). A
 * private answer, distinct from every level and table answer (level.h,
 * level_word.h, table.h: 0..7). */
#define BATCH_LINES_PATH 8

static bool is_write_line(inv_batch_op op)
{
    return op == INV_BATCH_LEVEL_SET || op == INV_BATCH_LEVEL_ADJUST;
}

/* Only SET, ADJUST and GET lines, and at least one that writes. */
static bool batch_is_one_step(const inv_batch_line *lines, size_t n)
{
    assert(n >= 1);
    bool writes = false;
    for (size_t i = 0; i < n; i++) {
        if (!is_write_line(lines[i].op) && lines[i].op != INV_BATCH_LEVEL_GET)
            return false;
        writes |= is_write_line(lines[i].op);
    }
    return writes;
}

static bool key_less(uint64_t a1, uint64_t b1, uint64_t a2, uint64_t b2)
{
    return a1 < a2 || (a1 == a2 && b1 < b2);
}

/* The one-step plan: the distinct levels written, in key order, each with
 * its lines' ops in line order; line_of: each op's batch line. */
typedef struct {
    level_batch_level *lv; /* up to one per line, then: */
    level_batch_op *ops; /* one per write line, then: */
    uint32_t *line_of; /* as many (sized by the batch's lines: one block) */
    size_t n_levels;
} one_step;

/* The plan's one block for n lines (NULL: out of memory). */
static int one_step_alloc(one_step *p, size_t n)
{
    assert(n >= 1 && n <= INV_BATCH_LINES_MAX);
    uint8_t *mem = inv_malloc(n * (sizeof *p->lv + sizeof *p->ops + sizeof *p->line_of));
    if (!mem)
        return INV_ENOMEM;
    p->lv = (level_batch_level *)mem;
    p->ops = (level_batch_op *)(p->lv + n);
    p->line_of = (uint32_t *)(p->ops + n);
    return INV_OK;
}

static void one_step_plan(const inv_batch_line *lines, size_t n, one_step *p)
{
    p->n_levels = 0;
    for (size_t i = 0; i < n; i++) { /* distinct keys, insertion sorted */
        if (!is_write_line(lines[i].op))
            continue;
        size_t k = 0;
        while (k < p->n_levels &&
               key_less(p->lv[k].item, p->lv[k].loc, lines[i].item, lines[i].location))
            k++;
        if (k < p->n_levels && p->lv[k].item == lines[i].item && p->lv[k].loc == lines[i].location)
            continue;
        memmove(&p->lv[k + 1], &p->lv[k], (p->n_levels - k) * sizeof p->lv[0]);
        p->lv[k] = (level_batch_level){.item = lines[i].item, .loc = lines[i].location};
        p->n_levels++;
    }
    size_t n_ops = 0;
    for (size_t k = 0; k < p->n_levels; k++) {
        p->lv[k].ops = &p->ops[n_ops];
        for (size_t i = 0; i < n; i++) {
            const inv_batch_line *l = &lines[i];
            if (!is_write_line(l->op) || l->item != p->lv[k].item || l->location != p->lv[k].loc)
                continue;
            bool set = l->op == INV_BATCH_LEVEL_SET;
            p->ops[n_ops] = (level_batch_op){.kind = set ? LEVEL_CHANGE_SET : LEVEL_CHANGE_ADJUST,
                                             .qty = l->qty,
                                             .floor = set ? INV_NO_FLOOR : l->floor,
                                             .if_revision = l->if_revision};
            p->line_of[n_ops++] = (uint32_t)i;
            p->lv[k].n_ops++;
        }
    }
    assert(p->n_levels >= 1 && n_ops <= n);
}

/* The level of a line in the plan (or NULL: the batch writes none there). */
static const level_batch_level *plan_level(const one_step *p, uint64_t item, uint64_t loc)
{
    assert(p->n_levels >= 1 && p->n_levels <= INV_BATCH_LINES_MAX);
    for (size_t k = 0; k < p->n_levels; k++)
        if (p->lv[k].item == item && p->lv[k].loc == loc)
            return &p->lv[k];
    return NULL;
}

/* A renewed position for a one-step batch: nothing was published at the
 * old one, which goes back (level_position's renew). 0: the journal
 * failed. */
static uint64_t one_step_renew(void *p)
{
    batch_op *op = p;
    assert(op->pos != 0 && op->n_changes == 0);
    persist_abandon(op->e, op->pos, op->rec_len);
    op->pos = op->batch_id = persist_reserve(op->e, op->rec_len);
    return op->pos;
}

/* The results of a decided one-step batch, and its record's changes (one
 * per write line, in line order, as the lines path writes them). */
static void one_step_results(batch_op *op, const one_step *p)
{
    assert(op->n_changes == 0 && op->n_images == 0); /* nothing noted before the decision */
    for (size_t i = 0; i < op->n_lines; i++) {
        const inv_batch_line *l = &op->lines[i];
        const level_batch_level *lv = plan_level(p, l->item, l->location);
        inv_batch_result *res = &op->results[i];
        if (!lv) { /* a GET of a level the batch does not write */
            assert(l->op == INV_BATCH_LEVEL_GET);
            res->rc = level_read(op->e, l->item, l->location, &res->level);
            continue;
        }
        /* The level as this line leaves (or, a GET, finds) it. */
        table_word w = lv->before, prev = lv->before;
        const level_batch_op *mine = NULL;
        for (size_t j = 0; j < lv->n_ops; j++) {
            size_t at = (size_t)(&lv->ops[j] - p->ops);
            if (p->line_of[at] > i)
                break;
            prev = w;
            w = lv->ops[j].after;
            mine = p->line_of[at] == i ? &lv->ops[j] : NULL;
        }
        level_as_seen(op, l->item, l->location, w, &res->level);
        if (!mine)
            continue;
        size_t ci =
            new_change(op, i, l->item, l->location,
                       l->op == INV_BATCH_LEVEL_SET ? INV_FEED_LEVEL_SET : INV_FEED_LEVEL_ADJUST);
        batch_rec_change *c = &op->changes[ci];
        if (!mine->wrote) {
            c->status = CHANGE_KEPT;
            continue;
        }
        c->status = CHANGE_APPLIED;
        c->d_available = level_available(w) - level_available(prev);
        assert(level_held(w) == level_held(prev)); /* SET and ADJUST move available only */
        note_image(op, ci, w);
    }
}

/* Level lv's refusal rc (level_batch_apply's or level_batch_try's): its
 * line, and whether lv->seen is the word it was decided on. */
static size_t refused_line(const one_step *p, const level_batch_level *lv, int rc, bool *seen)
{
    /* NOTFOUND, EIO, NOMEM: no word decided on, the level's first line */
    *seen = rc != INV_ENOTFOUND && rc != INV_EIO && rc != INV_ENOMEM;
    size_t op = *seen ? lv->failed_op : 0;
    assert(op < lv->n_ops);
    return p->line_of[(size_t)(&lv->ops[op] - p->ops)];
}

/* A refused one-step batch (level k refused with rc, nothing changed):
 * the first line in line order that the lines path would refuse now (the
 * levels were tried in key order), its result (the word it was decided
 * on) and its error; *failed: its line. */
static int one_step_refused(batch_op *op, one_step *p, size_t k, int rc, size_t *failed)
{
    assert(k < p->n_levels && rc < 0); /* a refusal, nothing changed */
    bool seen;
    *failed = refused_line(p, &p->lv[k], rc, &seen);
    table_word w = p->lv[k].seen;
    size_t at = k;
    for (size_t j = 0; j < p->n_levels && rc != INV_EIO && rc != INV_ENOMEM; j++) {
        if (j == k)
            continue;
        int rc_j = level_batch_try(op->e, &p->lv[j]);
        if (rc_j == INV_ENOTFOUND && p->lv[j].ops[0].kind == LEVEL_CHANGE_SET)
            rc_j = INV_OK; /* the lines path would create it */
        bool seen_j;
        size_t line_j = rc_j == INV_OK ? SIZE_MAX : refused_line(p, &p->lv[j], rc_j, &seen_j);
        if (line_j < *failed) {
            *failed = line_j;
            rc = rc_j;
            seen = seen_j;
            w = p->lv[j].seen;
            at = j;
        }
    }
    assert(*failed < op->n_lines && rc < 0);
    if (seen)
        level_as_seen(op, p->lv[at].item, p->lv[at].loc, w, &op->results[*failed].level);
    return rc;
}

/* Runs a batch of level lines as one step (prepared: its position
 * reserved): INV_OK with its final record published, a refusal with
 * nothing changed (the caller publishes the aborted record), or
 * BATCH_LINES_PATH (a SET must create its level: nothing changed). */
static int batch_one_step(batch_op *op, size_t *failed)
{
    one_step plan, *p = &plan;
    if (one_step_alloc(p, op->n_lines) != INV_OK) {
        *failed = 0;
        return INV_ENOMEM; /* nothing changed */
    }
    one_step_plan(op->lines, op->n_lines, p);
    for (size_t k = 0; k < p->n_levels; k++) {
        bool tracked;
        /* An item deleted (its levels swept later) fails as in the lines
         * path; a level absent for a SET is created there. */
        if (!catalog_item_exists(&op->e->cat, p->lv[k].item, &tracked)) {
            *failed = p->line_of[p->lv[k].ops - p->ops];
            free(p->lv);
            return INV_ENOTFOUND;
        }
    }
    level_position at = {op->pos, one_step_renew, op, NULL, false};
    size_t k = 0;
    int rc = level_batch_apply(op->e, p->lv, p->n_levels, &at, &k);
    assert(at.pos == op->pos);
    if (rc == INV_ENOTFOUND) {
        for (size_t j = 0; j < p->lv[k].n_ops; j++)
            if (p->lv[k].ops[j].kind == LEVEL_CHANGE_SET)
                rc = BATCH_LINES_PATH;
    }
    if (rc == INV_OK) {
        one_step_results(op, p);
    } else if (rc != BATCH_LINES_PATH) {
        rc = one_step_refused(op, p, k, rc, failed);
    }
    free(p->lv);
    return rc;
}

/* Failure: takes everything back; the final record says aborted. */
static void abort_batch(batch_op *op)
{
    assert(op->decided_ms != 0); /* the final record's time */
    (void)undo_changes(op);
    (void)batch_publish(op, true, OUTCOME_ABORTED);
    undo_claims(op);
}

/* A request id riding on a batch (inv_batch_ex): the record the final
 * batch record carries, encoded once the outcome is known. */
typedef struct {
    const char *id;
    size_t id_len;
    uint8_t digest[IDEM_DIGEST_LEN];
    int64_t now_ms;
    uint8_t outcome[IDEM_OUTCOME_MAX];
    size_t outcome_len;
    uint8_t record[IDEM_RECORD_LEN_MAX];
} batch_idem;

static void encode_outcome(batch_idem *bi, size_t n, int rc, size_t failed,
                           const inv_batch_result *res);

/* Runs a batch; idem (NULL: none) rides on its final record. *ack gets
 * the position to acknowledge on (0: none). */
/* Appends key to keys (n of LEVEL_LOCKS_MAX used). */
static void key_push(level_key *keys, size_t *n, uint64_t item, uint64_t loc)
{
    /* prepare() bounds the changes, and a level a change names counts one
     * change at least (a hold's moved line one or two, a transfer's pair
     * three); only GET lines add levels without a change */
    assert(*n < LEVEL_LOCKS_MAX);
    keys[(*n)++] = (level_key){item, loc, false};
}

/* The levels the lines path changes or reads: each line's, a transfer's
 * destination, and every level a claimed hold moves, with duplicates.
 * Always within one lock set (LEVEL_LOCKS_MAX). */
static size_t batch_keys(const batch_op *op, level_key *keys)
{
    size_t n = 0;
    for (size_t i = 0; i < op->n_lines; i++) {
        const inv_batch_line *l = &op->lines[i];
        if (is_hold_line(l->op)) {
            const hold_claim *c = &op->claims[i];
            for (size_t j = 0; j < hold_claim_n_lines(c); j++) {
                inv_hold_line hl;
                int64_t sold;
                if (hold_claim_line(c, j, &hl, &sold))
                    key_push(keys, &n, hl.item, hl.location);
            }
            continue;
        }
        key_push(keys, &n, l->item, l->location);
        if (l->op == INV_BATCH_LEVEL_TRANSFER)
            key_push(keys, &n, l->item, l->to_location);
    }
    assert(n <= op->n_lines + op->cap_changes); /* the bound key_push relies on */
    return n;
}

/* Claims the slot of every key that has no live level but could get one
 * (its item and location exist): a creation by the batch, or by anyone
 * while the batch runs, then happens in a slot the set holds. Before the
 * set is taken: a claim may help growth, which may wait for other sets. */
static void claim_absent(inv_engine *e, level_key *keys, size_t n)
{
    assert(!level_locks_held());
    for (size_t i = 0; i < n; i++) {
        table_slot *s = table_find(&e->levels, keys[i].item, keys[i].loc);
        bool live = s && table_is_live(table_load_key(s, keys[i].item, keys[i].loc));
        keys[i].claimed = !live && catalog_item_exists(&e->cat, keys[i].item, NULL) &&
                          catalog_location_exists(&e->cat, keys[i].loc) &&
                          table_insert(&e->levels, keys[i].item, keys[i].loc) != NULL;
    }
}

/* The lines path runs under the LOCKs of all its levels (level_cold.h,
 * lock sets): nobody else changes, reads, creates or is refused by any of
 * them until the batch is decided and settled, so the batch is one step to
 * everyone. Levels it may create are claimed first (claim_absent); when
 * growth dropped a claim before the set held it, the set is given back and
 * taken again (each growth doubles the table: rare, and never twice for
 * long). */
static void batch_lock_levels(batch_op *op)
{
    assert(!level_locks_held()); /* one set per thread */
    level_key keys[LEVEL_LOCKS_MAX];
    size_t n = batch_keys(op, keys);
    for (;;) {
        claim_absent(op->e, keys, n);
        level_locks_take(op->e, keys, n);
        if (level_locks_cover(op->e, keys, n))
            break;
        level_locks_release(); /* nothing counted yet */
    }
    /* every key held, or absent and not to be created (no item or no
     * location: the set may be empty) */
    assert(level_locks_cover(op->e, keys, n));
}

static int batch_run(inv_engine *e, const inv_batch_line *lines, size_t n, inv_batch_result *res,
                     size_t *failed_line, batch_idem *idem, uint64_t *ack_out)
{
    size_t failed = 0;
    *ack_out = 0;
    memset(res, 0, n * sizeof *res);
    int rc = check_lines(lines, n, &failed);
    hold_claim claims[INV_BATCH_LINES_MAX];
    memset(claims, 0, n * sizeof *claims);
    batch_op op = {.e = e, .claims = claims, .lines = lines, .results = res, .n_lines = n};
    if (idem) {
        op.idem_bytes = (uint32_t)idem_record_len_of(idem->id_len, idem->outcome_len);
        op.idem_record = idem->record;
    }
    uint64_t ack = 0;
    epoch_enter();
    if (rc == INV_OK)
        rc = prepare(&op, &failed);
    /* Level lines only: one step, or (BATCH_LINES_PATH) line by line. */
    int one = rc == INV_OK && batch_is_one_step(lines, n) ? batch_one_step(&op, &failed)
                                                          : BATCH_LINES_PATH;
    if (one != BATCH_LINES_PATH)
        rc = one;
    bool locked = one == BATCH_LINES_PATH && rc == INV_OK;
    if (locked)
        batch_lock_levels(&op);
    for (size_t i = 0; one == BATCH_LINES_PATH && rc == INV_OK && i < n; i++) {
        failed = i;
        rc = is_hold_line(lines[i].op)   ? run_hold_line(&op, i, &res[i])
             : is_cold_line(lines[i].op) ? run_cold_line(&op, i, &res[i])
                                         : run_level_line(&op, i, &res[i]);
        if (claims[i].ack_pos > ack)
            ack = claims[i].ack_pos;
    }
    if (rc == INV_OK && one == BATCH_LINES_PATH)
        rc = items_still_exist(&op, &failed, res);
    if (rc != INV_OK)
        res[failed].rc = rc;
    if (idem)
        encode_outcome(idem, n, rc, failed, res);
    op.decided_ms = clock_wall_ms(); /* the final record's time */
    if (rc == INV_OK)
        rc = commit_batch(&op);
    else
        abort_batch(&op);
    if (locked)
        level_locks_release(); /* decided, settled or undone: all at once */
    assert(!level_locks_held());
    if (op.pos)
        persist_abandon(e, op.pos, op.rec_len); /* never left reserved */
    epoch_exit();
    free(op.changes);
    *failed_line = failed;
    if (op.pos_last > ack)
        ack = op.pos_last;
    *ack_out = ack;
    if (rc != INV_OK)
        assert(res[failed].rc == rc || rc == INV_EIO);
    return rc;
}

int inv_batch(inv_engine *e, const inv_batch_line *lines, size_t n, inv_batch_result *results,
              size_t *failed_line)
{
    return inv_batch_ex(e, lines, n, NULL, results, failed_line);
}

/* ---- request ids: a batch answered once ----------------------------------- */

/* A line's result as a retry answers it: the full levels of the first
 * line only (a single command's reply), every line's rc, level and hold
 * failure. Fixed sizes: the record's length is known before the batch. */
typedef struct {
    int32_t qty[INV_QTY_NAMES];
    uint32_t created_s, updated_s;
    int64_t preorder_limit;
    uint64_t revision;
    uint8_t policy, active, zero[6];
} outcome_full;

typedef struct {
    int32_t rc;
    uint32_t hold_line;
    int64_t available, reserved;
    uint64_t revision;
    uint64_t hold_item, hold_location;
    int64_t hold_available;
} outcome_line;

typedef struct {
    int32_t rc;
    uint32_t failed, n, zero;
    outcome_full full, to_full; /* line 0's */
} outcome_header;

_Static_assert(sizeof(outcome_header) + INV_REQUEST_ID_LINES_MAX * sizeof(outcome_line) <=
                   IDEM_OUTCOME_MAX,
               "a remembered outcome fits the idempotency store");

static size_t outcome_len_of(size_t n)
{
    return sizeof(outcome_header) + n * sizeof(outcome_line);
}

static outcome_full full_pack(const inv_level_full *f)
{
    outcome_full o = {{0},
                      (uint32_t)(f->created_at_ms / 1000),
                      (uint32_t)(f->updated_at_ms / 1000),
                      f->preorder_limit,
                      f->revision,
                      (uint8_t)f->policy,
                      f->location_active,
                      {0}};
    for (int q = 0; q < INV_QTY_NAMES; q++)
        o.qty[q] = (int32_t)f->qty[q];
    return o;
}

static void full_unpack(const outcome_full *o, inv_level_full *f)
{
    memset(f, 0, sizeof *f);
    for (int q = 0; q < INV_QTY_NAMES; q++)
        f->qty[q] = o->qty[q];
    f->on_hand = level_on_hand(f->qty);
    f->created_at_ms = (int64_t)o->created_s * 1000;
    f->updated_at_ms = (int64_t)o->updated_s * 1000;
    f->preorder_limit = o->preorder_limit;
    f->revision = o->revision;
    f->policy = o->policy ? INV_POLICY_CONTINUE : INV_POLICY_DENY;
    f->location_active = o->active != 0;
}

static void encode_outcome(batch_idem *bi, size_t n, int rc, size_t failed,
                           const inv_batch_result *res)
{
    assert(n >= 1 && n <= INV_REQUEST_ID_LINES_MAX && failed < n);
    outcome_header h = {rc, (uint32_t)failed,        (uint32_t)n,
                        0,  full_pack(&res[0].full), full_pack(&res[0].to_full)};
    memcpy(bi->outcome, &h, sizeof h);
    for (size_t i = 0; i < n; i++) {
        const inv_batch_result *r = &res[i];
        outcome_line ol = {r->rc,
                           (uint32_t)r->hold_failure.line,
                           r->level.available,
                           r->level.reserved,
                           r->level.revision,
                           r->hold_failure.item,
                           r->hold_failure.location,
                           r->hold_failure.available};
        memcpy(bi->outcome + sizeof h + i * sizeof ol, &ol, sizeof ol);
    }
    assert(bi->outcome_len == outcome_len_of(n));
    idem_record_view v = {bi->id, bi->id_len,  bi->digest,     bi->now_ms,
                          rc,     bi->outcome, bi->outcome_len};
    idem_record_encode_view(&v, bi->record);
}

/* A remembered outcome back into the caller's results: INV_EINVALID when
 * it does not fit this batch (never: its digest matched). */
static int decode_outcome(const uint8_t *p, size_t len, size_t n, inv_batch_result *res,
                          size_t *failed)
{
    outcome_header h;
    if (len != outcome_len_of(n) || len < sizeof h)
        return INV_EINVALID;
    memcpy(&h, p, sizeof h);
    if (h.n != n || h.failed >= (n ? n : 1))
        return INV_EINVALID;
    memset(res, 0, n * sizeof *res);
    for (size_t i = 0; i < n; i++) {
        outcome_line ol;
        memcpy(&ol, p + sizeof h + i * sizeof ol, sizeof ol);
        res[i].rc = ol.rc;
        res[i].level = (inv_level){ol.available, ol.reserved, ol.revision};
        res[i].hold_failure =
            (inv_hold_failure){ol.hold_line, ol.hold_item, ol.hold_location, ol.hold_available};
    }
    full_unpack(&h.full, &res[0].full);
    full_unpack(&h.to_full, &res[0].to_full);
    *failed = h.failed;
    return h.rc;
}

/* The canonical form of the lines, hashed: a retry must name the same
 * changes (field by field, strings by content). */
static void lines_digest(const inv_batch_line *lines, size_t n, uint8_t out[IDEM_DIGEST_LEN])
{
    XXH3_state_t st;
    (void)XXH3_128bits_reset(&st);
    for (size_t i = 0; i < n; i++) {
        const inv_batch_line *l = &lines[i];
        int64_t fixed[] = {l->op,
                           (int64_t)l->item,
                           (int64_t)l->location,
                           (int64_t)l->to_location,
                           l->qty,
                           l->floor,
                           (int64_t)l->if_revision,
                           (int64_t)l->ttl_ms,
                           l->from,
                           l->to,
                           l->policy,
                           l->preorder_limit,
                           l->buyer_limit,
                           l->reason,
                           (int64_t)l->hold_id_len,
                           (int64_t)l->n_hold_lines,
                           (int64_t)l->buyer_len,
                           (int64_t)l->order_ref_len,
                           (int64_t)l->ref_len};
        (void)XXH3_128bits_update(&st, fixed, sizeof fixed);
        if (l->hold_id_len)
            (void)XXH3_128bits_update(&st, l->hold_id, l->hold_id_len);
        if (l->n_hold_lines)
            (void)XXH3_128bits_update(&st, l->hold_lines, l->n_hold_lines * sizeof *l->hold_lines);
        if (l->buyer_len)
            (void)XXH3_128bits_update(&st, l->buyer, l->buyer_len);
        if (l->order_ref_len)
            (void)XXH3_128bits_update(&st, l->order_ref, l->order_ref_len);
        if (l->ref_len)
            (void)XXH3_128bits_update(&st, l->ref, l->ref_len);
    }
    XXH128_canonical_t c; /* as idem_digest writes a digest */
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
    memcpy(out, c.digest, IDEM_DIGEST_LEN);
}

int inv_batch_ex(inv_engine *e, const inv_batch_line *lines, size_t n, const inv_batch_opts *opts,
                 inv_batch_result *results, size_t *failed_line)
{
    size_t failed = 0;
    if (failed_line)
        *failed_line = 0;
    if (!e || !lines || n == 0)
        return INV_EINVALID;
    if (n > INV_BATCH_LINES_MAX)
        return INV_ELIMIT;
    inv_batch_result local[INV_BATCH_LINES_MAX];
    inv_batch_result *res = results ? results : local;
    uint64_t ack = 0;
    int rc;
    if (!opts || !opts->request_id) {
        rc = batch_run(e, lines, n, res, &failed, NULL, &ack);
    } else {
        if (opts->request_id_len == 0 || opts->request_id_len > INV_REQUEST_ID_MAX)
            return opts->request_id_len ? INV_ELIMIT : INV_EINVALID;
        if (n > INV_REQUEST_ID_LINES_MAX)
            return INV_ELIMIT;
        batch_idem *bi = inv_malloc(sizeof *bi);
        if (!bi)
            return INV_ENOMEM;
        bi->id = opts->request_id;
        bi->id_len = opts->request_id_len;
        bi->now_ms = clock_wall_ms();
        bi->outcome_len = outcome_len_of(n);
        lines_digest(lines, n, bi->digest);
        idem_entry *entry = NULL;
        epoch_enter();
        rc = idem_claim(&e->idem, bi->id, bi->id_len, bi->digest, bi->now_ms, &entry);
        if (rc == IDEM_DONE) {
            /* A retry: the first call's answer, nothing changed. */
            size_t len;
            const uint8_t *o = idem_entry_outcome(entry, &len);
            rc = decode_outcome(o, len, n, res, &failed);
            ack = idem_entry_ack_pos(entry);
        }
        epoch_exit();
        if (rc == IDEM_NEW) {
            rc = batch_run(e, lines, n, res, &failed, bi, &ack);
            (void)fault_check(FAULT_IDEM_DECIDE); /* a test point: recorded, not decided */
            idem_outcome out = {rc, bi->outcome, bi->outcome_len};
            epoch_enter();
            if (idem_decide(&e->idem, entry, &out, ack, bi->now_ms) != INV_OK)
                idem_abandon(&e->idem, entry);
            epoch_exit();
        } else if (rc == IDEM_BUSY) {
            rc = INV_ECONFLICT; /* the same id is running in another call */
        }
        if (rc == INV_ECONFLICT && !entry)
            failed = SIZE_MAX; /* the id, not a line: nothing ran */
        free(bi);
    }
    if (failed_line && rc != INV_OK)
        *failed_line = failed;
    if (rc != INV_OK)
        return rc;
    return ack ? persist_ack(e, ack) : INV_OK;
}

/* ---- recovery ------------------------------------------------------------------- */

typedef struct {
    uint64_t batch_id;
    size_t n_changes;
    batch_rec_change *changes;
} pending_batch;

struct batch_recovery {
    vec pending; /* pending_batch */
};

/* The notes section of a final record: every note well formed, filling
 * it exactly. */
static bool notes_valid(const uint8_t *q, uint32_t len)
{
    while (len) {
        batch_rec_note note;
        if (len < sizeof note)
            return false;
        memcpy(&note, q, sizeof note);
        uint32_t size = (uint32_t)sizeof note + pad8(note.ref_len);
        if (note.line >= INV_BATCH_LINES_MAX || note.reason >= INV_REASONS || note.zero ||
            note.ref_len > INV_REF_MAX || size > len || (note.reason == 0 && note.ref_len == 0))
            return false;
        q += size;
        len -= size;
    }
    return true;
}

/* A change slot read from disk keeps to its record's format. */
static bool change_valid(const batch_rec_change *c, uint16_t format)
{
    bool named = format == BATCH_FORMAT_0
                     ? c->kind == 0 && c->line == 0
                     : c->kind < INV_FEED_KINDS && (BATCH_KINDS & PERSIST_KIND_BIT(c->kind)) &&
                           (c->line < INV_BATCH_LINES_MAX || c->line == BATCH_LINE_NONE);
    return named && c->zero == 0 && c->status <= CHANGE_GONE &&
           (c->flags & ~(uint32_t)CHANGE_FLAGS) == 0 &&
           (c->rules_mask &
            ~(LEVEL_COLD_INACTIVE | LEVEL_COLD_CONTINUE | (~0ULL << LEVEL_LIMIT_SHIFT))) == 0 &&
           (c->rules_before & ~c->rules_mask) == 0;
}

/* Format 1's stamp and actor (format 0: none) keep to the layout; *head:
 * the bytes before the change slots. */
static bool stamp_valid(const uint8_t *p, uint32_t len, const batch_rec_header *h, uint32_t *head)
{
    static const uint8_t zeros[8];
    *head = (uint32_t)sizeof *h;
    if (h->format == BATCH_FORMAT_0)
        return true;
    batch_rec_stamp st;
    if (h->format != BATCH_FORMAT_1 || len < sizeof *h + sizeof st)
        return false;
    memcpy(&st, p + sizeof *h, sizeof st);
    if (st.time_ms < 0 || st.actor_len > INV_ACTOR_MAX || memcmp(st.zero, zeros, sizeof st.zero))
        return false;
    *head = batch_head_len(h->format, st.actor_len);
    uint32_t used = (uint32_t)(sizeof *h + sizeof st) + st.actor_len;
    assert(*head - used < sizeof zeros);
    return len >= *head && memcmp(p + used, zeros, *head - used) == 0; /* zero padding */
}

/* Checks a record read from disk (nothing in it is trusted) and finds its
 * parts. */
static bool record_valid(uint64_t pos, const uint8_t *p, uint32_t len, batch_rec_header *h,
                         batch_rec_parts *at)
{
    uint32_t head;
    if (len < sizeof *h)
        return false;
    memcpy(h, p, sizeof *h);
    if (h->batch_id == 0 || h->batch_id > pos || h->final > 1 || !stamp_valid(p, len, h, &head) ||
        h->cap_changes > BATCH_CHANGES_MAX || h->n_changes > h->cap_changes ||
        h->n_images > BATCH_IMAGES_PER_CHANGE * h->n_changes || h->holds_bytes > len ||
        h->notes_bytes > len || h->idem_bytes > IDEM_RECORD_LEN_MAX || h->zero32 ||
        len !=
            batch_rec_len(head, h->cap_changes, h->holds_bytes + h->notes_bytes + h->idem_bytes) ||
        (h->final ? h->outcome != OUTCOME_APPLIED && h->outcome != OUTCOME_ABORTED
                  : h->outcome != OUTCOME_RUNNING) ||
        (h->n_holds && !(h->final && h->outcome == OUTCOME_APPLIED)))
        return false;
    *at = batch_parts(h, head, len);
    for (size_t i = 0; i < h->n_changes; i++) {
        batch_rec_change c;
        memcpy(&c, p + at->changes + i * sizeof c, sizeof c);
        if (!change_valid(&c, h->format))
            return false;
    }
    for (size_t i = 0; i < h->n_images; i++) {
        batch_rec_image im;
        memcpy(&im, p + at->images + i * sizeof im, sizeof im);
        if (im.change >= h->n_changes || (im.w1 & ~(TABLE_VERSION_MAX | TABLE_TOMB)) != 0 ||
            table_version((table_word){0, im.w1}) == 0 || im.has_cold > 1 ||
            (im.has_cold && !level_cold_valid(&im.cold)))
            return false;
    }
    if (h->final && h->outcome == OUTCOME_APPLIED && !notes_valid(p + at->notes, h->notes_bytes))
        return false;
    idem_record_view view;
    if (h->final && h->idem_bytes &&
        idem_record_decode(p + at->idem, h->idem_bytes, &view) != INV_OK)
        return false;
    const uint8_t *q = p + at->holds;
    uint32_t left = h->holds_bytes;
    for (size_t i = 0; i < h->n_holds; i++) {
        batch_rec_hold hh;
        if (left < sizeof hh)
            return false;
        memcpy(&hh, q, sizeof hh);
        if (hh.len == 0 || hh.len > left - sizeof hh || pad8(hh.len) > left - sizeof hh)
            return false;
        q += sizeof hh + pad8(hh.len);
        left -= (uint32_t)sizeof hh + pad8(hh.len);
    }
    return true;
}

/* The batches pending so far (none: NULL, *n 0). */
static pending_batch *pending_all(struct batch_recovery *br, size_t *n)
{
    assert(n != NULL);
    *n = br ? br->pending.n : 0;
    assert(*n == 0 || br->pending.items != NULL);
    return br ? br->pending.items : NULL;
}

static pending_batch *find_pending(struct batch_recovery *br, uint64_t batch_id)
{
    size_t n;
    pending_batch *v = pending_all(br, &n);
    for (size_t i = 0; i < n; i++)
        if (v[i].batch_id == batch_id)
            return &v[i];
    return NULL;
}

/* Remembers the newest partial record of a batch (its statuses). */
static int note_pending(inv_engine *e, uint64_t batch_id, const uint8_t *changes, size_t n)
{
    assert(batch_id != 0 && n <= BATCH_CHANGES_MAX); /* record_valid */
    struct batch_recovery *br = e->batch_pending;
    if (!br) {
        if (!(br = inv_malloc(sizeof *br)))
            return INV_ENOMEM;
        br->pending = VEC_OF(pending_batch);
        e->batch_pending = br;
    }
    pending_batch *pb = find_pending(br, batch_id);
    if (!pb) {
        if (vec_push(&br->pending, &(pending_batch){batch_id, 0, NULL}) != INV_OK)
            return INV_ENOMEM;
        size_t n_pending;
        pb = &pending_all(br, &n_pending)[n_pending - 1];
    }
    batch_rec_change *copy = inv_malloc(n ? n * sizeof *copy : 1);
    if (!copy)
        return INV_ENOMEM;
    memcpy(copy, changes, n * sizeof *copy);
    free(pb->changes);
    pb->changes = copy;
    pb->n_changes = n;
    return INV_OK;
}

static void drop_pending(inv_engine *e, uint64_t batch_id)
{
    struct batch_recovery *br = e->batch_pending;
    pending_batch *pb = find_pending(br, batch_id);
    if (!pb)
        return;
    free(pb->changes);
    size_t n;
    *pb = pending_all(br, &n)[n - 1];
    assert(n >= 1); /* pb is one of them */
    br->pending.n--;
}

int batch_replay(inv_engine *e, uint64_t pos, const void *payload, uint32_t len)
{
    batch_rec_header h;
    batch_rec_parts at;
    const uint8_t *p = payload;
    if (!record_valid(pos, p, len, &h, &at))
        return INV_EINVALID;
    assert(h.n_changes <= h.cap_changes && h.n_images <= BATCH_IMAGES_PER_CHANGE * h.n_changes);
    const uint8_t *changes = p + at.changes;
    const uint8_t *images = p + at.images;
    for (size_t i = 0; i < h.n_images; i++) {
        batch_rec_image im;
        batch_rec_change c;
        memcpy(&im, images + i * sizeof im, sizeof im);
        assert(im.change < h.n_changes); /* record_valid */
        memcpy(&c, changes + im.change * sizeof c, sizeof c);
        int rc =
            level_install_full(e, c.item, c.location, (table_word){im.w0, im.w1},
                               im.has_cold ? im.cold.updated_s : 0, im.has_cold ? &im.cold : NULL);
        if (rc != INV_OK)
            return rc;
    }
    if (!h.final)
        return note_pending(e, h.batch_id, changes, h.n_changes);
    drop_pending(e, h.batch_id);
    if (h.idem_bytes) {
        idem_record_view v;
        int rc = idem_record_decode(p + at.idem, h.idem_bytes, &v);
        if (rc == INV_OK)
            rc = idem_install(&e->idem, v.id, v.id_len, v.digest, v.decided_at_ms, v.rc, v.outcome,
                              v.outcome_len, clock_wall_ms());
        if (rc != INV_OK)
            return rc;
    }
    const uint8_t *q = p + at.holds;
    for (size_t i = 0; i < h.n_holds; i++) {
        batch_rec_hold hh;
        memcpy(&hh, q, sizeof hh);
        int rc = hold_replay(e, pos, q + sizeof hh, hh.len);
        if (rc != INV_OK)
            return rc;
        q += sizeof hh + pad8(hh.len);
    }
    return INV_OK;
}

/* Takes back a batch cut by the crash, and journals it as aborted. */
static int finish_pending(inv_engine *e, pending_batch *pb, size_t *undone)
{
    batch_op op = {.e = e,
                   .batch_id = pb->batch_id,
                   .n_changes = pb->n_changes,
                   .cap_changes = pb->n_changes,
                   .changes = pb->changes,
                   /* recovery's own change: no actor; decided now */
                   .head_len = batch_head_len(BATCH_FORMAT_1, 0),
                   .decided_ms = clock_wall_ms()};
    op.rec_len = (uint32_t)batch_rec_len(op.head_len, pb->n_changes, 0);
    op.images = inv_malloc(BATCH_IMAGES_PER_CHANGE * pb->n_changes * sizeof *op.images + 1);
    op.buf = inv_malloc(op.rec_len);
    int rc = op.images && op.buf ? INV_OK : INV_ENOMEM;
    if (rc == INV_OK && !(op.pos = persist_reserve(e, op.rec_len)))
        rc = INV_EIO;
    for (size_t i = 0; i < pb->n_changes; i++)
        *undone += pb->changes[i].status == CHANGE_APPLIED;
    if (rc == INV_OK)
        rc = undo_changes(&op);
    if (rc == INV_OK)
        rc = batch_publish(&op, true, OUTCOME_ABORTED);
    if (rc == INV_OK)
        rc = journal_wait(e->jr, op.pos_last);
    free(op.images);
    free(op.buf);
    return rc;
}

int batch_recover_finish(inv_engine *e)
{
    size_t undone = 0, batches;
    pending_batch *pending = pending_all(e->batch_pending, &batches);
    int rc = INV_OK;
    epoch_enter();
    for (size_t i = 0; rc == INV_OK && i < batches; i++)
        rc = finish_pending(e, &pending[i], &undone);
    epoch_exit();
    if (batches)
        fprintf(stderr,
                "invcore: recovery: took back %zu change(s) of %zu batch(es) cut "
                "short by the crash\n",
                undone, batches);
    batch_recovery_free(e);
    return rc;
}

void batch_recovery_free(inv_engine *e)
{
    struct batch_recovery *br = e->batch_pending;
    if (!br)
        return;
    size_t n;
    pending_batch *pending = pending_all(br, &n);
    for (size_t i = 0; i < n; i++)
        free(pending[i].changes);
    vec_free(&br->pending);
    free(br);
    e->batch_pending = NULL;
}

/* ---- a transfer is a batch of one line ------------------------------------------ */

int inv_level_transfer(inv_engine *e, uint64_t item, uint64_t from_loc, uint64_t to_loc,
                       int64_t qty, inv_qty_name from, inv_qty_name to)
{
    inv_batch_line l = {.op = INV_BATCH_LEVEL_TRANSFER,
                        .item = item,
                        .location = from_loc,
                        .to_location = to_loc,
                        .qty = qty,
                        .floor = INV_NO_FLOOR,
                        .from = from,
                        .to = to};
    return inv_batch(e, &l, 1, NULL, NULL);
}
