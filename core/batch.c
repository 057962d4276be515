/*
 * batch.c — many changes as one: inv_batch (the engine side of MULTI/EXEC).
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
 * after a crash a batch is there whole or not at all.
 *
 * Invariants: a change is undone at most once and only if applied; a
 * record's images are those made at its position, at most two per change
 * (its apply and its undo); every claim is settled exactly once.
 * Isolation: units a batch adds to a tracked level stay in its reserved
 * (the batch's pending units, level.h) until the batch is decided, then one
 * settle per level makes them available; so no other caller takes units a
 * failing batch takes back. Other callers may see the batch's decreases and
 * their undoing; an undone change leaves its level with a higher revision.
 */
#include "batch.h"

#include "catalog.h"
#include "epoch.h"
#include "hold.h"
#include "level.h"
#include "persist.h"
#include "vec.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A change's status in records. */
enum { CHANGE_NONE = 0, CHANGE_APPLIED = 1, CHANGE_KEPT = 2, CHANGE_UNDONE = 3, CHANGE_GONE = 4 };
/* A record's outcome: running (partial record), applied or aborted. */
enum { OUTCOME_RUNNING = 0, OUTCOME_APPLIED = 1, OUTCOME_ABORTED = 2 };
/* Flags of a change. */
enum { CHANGE_CREATED = 1 }; /* a SET that created its level */

/* Level images a record may carry per change: its apply and its undo. */
#define BATCH_IMAGES_PER_CHANGE 2
/* Changes of one batch: every level change, and one settle per level. */
#define BATCH_CHANGES_MAX (2 * INV_BATCH_LEVELS_MAX)

typedef struct {
    uint64_t batch_id; /* the position of the batch's first record */
    uint8_t final, outcome, zero8[2];
    uint32_t n_changes, n_images, n_holds, holds_bytes;
    uint32_t cap_changes; /* sizes the record: changes, then images, then holds */
} batch_rec_header;

typedef struct {
    uint64_t item, location;
    int64_t d_available, d_reserved;
    uint64_t last_revision; /* the revision of the batch's last image of it */
    uint32_t status, flags;
} batch_rec_change;

typedef struct {
    uint32_t change, zero;
    uint64_t w0, w1;
} batch_rec_image;

/* An embedded hold record: this header, then the PERSIST_HOLD payload,
 * padded to 8 bytes. */
typedef struct {
    uint32_t len, zero;
} batch_rec_hold;

static uint32_t pad8(uint32_t n)
{
    return (n + 7u) & ~7u;
}

static uint64_t batch_rec_len(size_t n_changes, uint32_t holds_bytes)
{
    return sizeof(batch_rec_header) +
           n_changes *
               (sizeof(batch_rec_change) + BATCH_IMAGES_PER_CHANGE * sizeof(batch_rec_image)) +
           holds_bytes;
}

typedef struct {
    inv_engine *e;
    uint64_t batch_id, pos, pos_last;
    uint32_t rec_len, holds_bytes;
    size_t n_changes, cap_changes, n_images;
    batch_rec_change *changes; /* the record's form, so recovery shares the undo */
    uint32_t *change_line; /* the batch line each change belongs to */
    int64_t *d_pending; /* what each change did to the batch's pending units */
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
}

/* Publishes the record at op->pos (journal only). A partial record is
 * followed by a new reservation. */
static int batch_publish(batch_op *op, bool final, uint8_t outcome)
{
    if (!op->pos)
        return INV_OK;
    memset(op->buf, 0, op->rec_len);
    batch_rec_header h = {op->batch_id,
                          final,
                          outcome,
                          {0},
                          (uint32_t)op->n_changes,
                          (uint32_t)op->n_images,
                          0,
                          op->holds_bytes,
                          (uint32_t)op->cap_changes};
    uint8_t *p = op->buf + sizeof h;
    memcpy(p, op->changes, op->n_changes * sizeof(batch_rec_change));
    p += op->cap_changes * sizeof(batch_rec_change);
    memcpy(p, op->images, op->n_images * sizeof(batch_rec_image));
    if (final && outcome == OUTCOME_APPLIED)
        encode_holds(op, op->buf + op->rec_len - op->holds_bytes, &h.n_holds);
    memcpy(op->buf, &h, sizeof h);
    int rc = persist_publish(op->e, op->pos, PERSIST_BATCH, op->buf, op->rec_len);
    op->pos_last = op->pos;
    op->pos = 0;
    op->n_images = 0;
    if (rc == INV_OK && !final && (op->pos = persist_reserve(op->e, op->rec_len)) == 0)
        rc = INV_EIO;
    return rc;
}

static void note_image(batch_op *op, size_t ci, table_word image)
{
    assert(op->n_images < BATCH_IMAGES_PER_CHANGE * op->n_changes);
    op->images[op->n_images++] = (batch_rec_image){(uint32_t)ci, 0, image.w0, image.w1};
    op->changes[ci].last_revision = table_version(image);
}

/* ---- changes ------------------------------------------------------------------- */

/* A new change of line `line` on (item, loc): its index. */
static size_t new_change(batch_op *op, size_t line, uint64_t item, uint64_t loc)
{
    assert(op->n_changes < op->cap_changes);
    op->change_line[op->n_changes] = (uint32_t)line;
    op->d_pending[op->n_changes] = 0;
    op->changes[op->n_changes] = (batch_rec_change){item, loc, 0, 0, 0, CHANGE_NONE, 0};
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

/* A level as the batch's own lines see it: its pending units available. */
static void level_as_seen(const batch_op *op, uint64_t item, uint64_t loc, table_word w,
                          inv_level *out)
{
    level_out(w, out);
    int64_t pending = pending_of(op, item, loc);
    out->available += pending;
    out->reserved -= pending;
}

/* After a level call: when the level carried a newer revision than the
 * batch's position (LEVEL_NEEDS_POSITION), publishes what was done so far
 * and answers true: call again at the new position. Else *rc stays. */
static bool again_at_new_position(batch_op *op, int *rc)
{
    if (*rc != LEVEL_NEEDS_POSITION)
        return false;
    *rc = batch_publish(op, false, OUTCOME_RUNNING);
    return *rc == INV_OK;
}

/* Applies lc to change ci's level, or, with create, creates the level of
 * a SET (its lc->qty units pending) that found none: at the batch's position,
 * again at a new one while the level carries a newer revision. */
static int apply_change(batch_op *op, size_t ci, level_change *lc, bool create, table_word *image)
{
    batch_rec_change *c = &op->changes[ci];
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
    c->d_reserved = create ? level_reserved(*image) : lc->d_reserved;
    op->d_pending[ci] = create ? level_reserved(*image) : lc->d_pending;
    c->status = CHANGE_APPLIED;
    c->flags |= create ? CHANGE_CREATED : 0;
    note_image(op, ci, *image);
    return INV_OK;
}

/* The highest revision the batch stamped on change ci's level: a level it
 * created is deleted again only if nobody changed it after that. */
static uint64_t batch_last_revision(const batch_rec_change *all, size_t n, size_t ci)
{
    uint64_t rev = 0;
    for (size_t j = 0; j < n; j++)
        if (all[j].item == all[ci].item && all[j].location == all[ci].location &&
            all[j].last_revision > rev)
            rev = all[j].last_revision;
    return rev;
}

/* Takes back every applied change, the newest first. */
static int undo_changes(batch_op *op)
{
    int first_rc = INV_OK;
    for (size_t k = op->n_changes; k-- > 0;) {
        batch_rec_change *c = &op->changes[k];
        if (c->status != CHANGE_APPLIED)
            continue;
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
    }
    return first_rc;
}

/* ---- lines ---------------------------------------------------------------------- */

static bool is_hold_line(inv_batch_op op)
{
    return op == INV_BATCH_HOLD_CREATE || op == INV_BATCH_HOLD_COMMIT ||
           op == INV_BATCH_HOLD_RELEASE || op == INV_BATCH_HOLD_EXTEND;
}

/* A level line. A read never fails the batch: its result carries its rc. */
static int run_level_line(batch_op *op, size_t i, inv_batch_result *res)
{
    const inv_batch_line *l = &op->lines[i];
    if (l->op == INV_BATCH_LEVEL_GET) {
        res->rc = level_read(op->e, l->item, l->location, &res->level);
        int64_t pending = pending_of(op, l->item, l->location);
        res->level.available += pending;
        res->level.reserved -= pending;
        return INV_OK;
    }
    size_t ci = new_change(op, i, l->item, l->location);
    bool set = l->op == INV_BATCH_LEVEL_SET;
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
    level_as_seen(op, l->item, l->location, rc == INV_OK ? image : lc.seen, &res->level);
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
    size_t ci = new_change(op, i, hl->item, hl->location);
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
    const inv_batch_line *l = &op->lines[i];
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
        *failed = op->change_line[ci];
        results[*failed].rc = INV_ENOTFOUND;
        results[*failed].hold_failure = (inv_hold_failure){0, c->item, c->location, 0};
        return INV_ENOTFOUND;
    }
    return INV_OK;
}

/* ---- the call ---------------------------------------------------------------- */

static int check_line(const inv_batch_line *l)
{
    switch (l->op) {
    case INV_BATCH_LEVEL_SET:
        return qty_in_range(l->qty) ? INV_OK : INV_ELIMIT;
    case INV_BATCH_LEVEL_ADJUST:
        return qty_in_range(l->qty) && (l->floor == INV_NO_FLOOR || qty_in_range(l->floor))
                   ? INV_OK
                   : INV_ELIMIT;
    case INV_BATCH_LEVEL_GET:
        return INV_OK;
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
        } else if (l->op != INV_BATCH_LEVEL_GET) {
            changes++;
        }
        if (changes > INV_BATCH_LEVELS_MAX)
            return INV_ELIMIT;
    }
    changes *= 2; /* room for one settle per level (commit_batch) */
    uint64_t rec_len = batch_rec_len(changes, holds_bytes);
    if (rec_len > JOURNAL_PAYLOAD_MAX)
        return INV_ELIMIT;
    op->cap_changes = changes;
    op->holds_bytes = holds_bytes;
    op->rec_len = (uint32_t)rec_len;
    size_t bytes =
        changes * (sizeof *op->changes + sizeof *op->d_pending + sizeof *op->change_line +
                   BATCH_IMAGES_PER_CHANGE * sizeof *op->images) +
        (op->e->jr ? rec_len : 0);
    uint8_t *mem = malloc(bytes ? bytes : 1);
    if (!mem)
        return INV_ENOMEM;
    /* 8-byte parts first: the record buffer is read as structs. */
    op->changes = (batch_rec_change *)mem;
    op->images = (batch_rec_image *)(op->changes + changes);
    op->d_pending = (int64_t *)(op->images + BATCH_IMAGES_PER_CHANGE * changes);
    op->buf = op->e->jr ? (uint8_t *)(op->d_pending + changes) : NULL;
    op->change_line =
        (uint32_t *)((uint8_t *)(op->d_pending + changes) + (op->e->jr ? rec_len : 0));
    if (op->e->jr && (changes || holds_bytes)) {
        op->pos = op->batch_id = persist_reserve(op->e, op->rec_len);
        if (!op->pos)
            return INV_EIO;
    }
    return INV_OK;
}

/* Decided: every level's pending units become available (one settle per
 * level, after the lines' changes; no line owns it). */
static int settle_pending(batch_op *op)
{
    size_t n = op->n_changes;
    for (size_t k = 0; k < n; k++) {
        const batch_rec_change *c = &op->changes[k];
        bool first = true;
        for (size_t j = 0; j < k && first; j++)
            first = op->changes[j].item != c->item || op->changes[j].location != c->location;
        if (!first || pending_of(op, c->item, c->location) == 0)
            continue;
        size_t si = new_change(op, op->n_lines, c->item, c->location);
        level_change lc = {.kind = LEVEL_CHANGE_SETTLE, .floor = INV_NO_FLOOR};
        table_word image;
        int rc = apply_change(op, si, &lc, false, &image);
        if (rc == INV_ENOTFOUND)
            op->changes[si].status = CHANGE_GONE; /* cannot be: pending units block deletes */
        else if (rc != INV_OK)
            return rc;
        assert(rc != INV_OK || pending_of(op, c->item, c->location) == 0);
    }
    return INV_OK;
}

/* Success: settles the pending units and the claims, and publishes the
 * final record. */
static int commit_batch(batch_op *op)
{
    /* Only a failed journal stops a settle; the claims are settled all the
     * same (in memory: nothing can be made durable any more). */
    int settled = settle_pending(op);
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

/* Failure: takes everything back; the final record says aborted. */
static void abort_batch(batch_op *op)
{
    (void)undo_changes(op);
    (void)batch_publish(op, true, OUTCOME_ABORTED);
    undo_claims(op);
}

int inv_batch(inv_engine *e, const inv_batch_line *lines, size_t n, inv_batch_result *results,
              size_t *failed_line)
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
    memset(res, 0, n * sizeof *res);
    int rc = check_lines(lines, n, &failed);
    hold_claim claims[INV_BATCH_LINES_MAX];
    memset(claims, 0, n * sizeof *claims);
    batch_op op = {.e = e, .claims = claims, .lines = lines, .results = res, .n_lines = n};
    uint64_t ack = 0;
    epoch_enter();
    if (rc == INV_OK)
        rc = prepare(&op, &failed);
    for (size_t i = 0; rc == INV_OK && i < n; i++) {
        failed = i;
        rc = is_hold_line(lines[i].op) ? run_hold_line(&op, i, &res[i])
                                       : run_level_line(&op, i, &res[i]);
        if (claims[i].ack_pos > ack)
            ack = claims[i].ack_pos;
    }
    if (rc == INV_OK)
        rc = items_still_exist(&op, &failed, res);
    if (rc == INV_OK) {
        rc = commit_batch(&op);
    } else {
        res[failed].rc = rc;
        abort_batch(&op);
    }
    if (op.pos)
        persist_abandon(e, op.pos, op.rec_len); /* never left reserved */
    epoch_exit();
    free(op.changes);
    if (rc != INV_OK) {
        if (failed_line)
            *failed_line = failed;
        assert(res[failed].rc == rc || rc == INV_EIO);
        return rc;
    }
    if (op.pos_last > ack)
        ack = op.pos_last;
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

/* Checks a record read from disk (nothing in it is trusted) and finds its
 * parts. */
static bool record_valid(uint64_t pos, const uint8_t *p, uint32_t len, batch_rec_header *h)
{
    if (len < sizeof *h)
        return false;
    memcpy(h, p, sizeof *h);
    if (h->batch_id == 0 || h->batch_id > pos || h->final > 1 ||
        h->cap_changes > BATCH_CHANGES_MAX || h->n_changes > h->cap_changes ||
        h->n_images > BATCH_IMAGES_PER_CHANGE * h->n_changes || h->holds_bytes > len ||
        len != batch_rec_len(h->cap_changes, h->holds_bytes) ||
        (h->final ? h->outcome != OUTCOME_APPLIED && h->outcome != OUTCOME_ABORTED
                  : h->outcome != OUTCOME_RUNNING) ||
        (h->n_holds && !(h->final && h->outcome == OUTCOME_APPLIED)))
        return false;
    const uint8_t *q = p + sizeof *h;
    for (size_t i = 0; i < h->n_changes; i++, q += sizeof(batch_rec_change)) {
        batch_rec_change c;
        memcpy(&c, q, sizeof c);
        if (c.status > CHANGE_GONE || (c.flags & ~(uint32_t)CHANGE_CREATED))
            return false;
    }
    q = p + sizeof *h + h->cap_changes * sizeof(batch_rec_change);
    for (size_t i = 0; i < h->n_images; i++, q += sizeof(batch_rec_image)) {
        batch_rec_image im;
        memcpy(&im, q, sizeof im);
        if (im.change >= h->n_changes || (im.w1 & ~(TABLE_VERSION_MAX | TABLE_TOMB)) != 0 ||
            table_version((table_word){0, im.w1}) == 0)
            return false;
    }
    q = p + len - h->holds_bytes;
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
    *n = br ? br->pending.n : 0;
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
    struct batch_recovery *br = e->batch_pending;
    if (!br) {
        if (!(br = malloc(sizeof *br)))
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
    batch_rec_change *copy = malloc(n ? n * sizeof *copy : 1);
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
    br->pending.n--;
}

int batch_replay(inv_engine *e, uint64_t pos, const void *payload, uint32_t len)
{
    batch_rec_header h;
    const uint8_t *p = payload;
    if (!record_valid(pos, p, len, &h))
        return INV_EINVALID;
    const uint8_t *changes = p + sizeof h;
    const uint8_t *images = changes + h.cap_changes * sizeof(batch_rec_change);
    for (size_t i = 0; i < h.n_images; i++) {
        batch_rec_image im;
        batch_rec_change c;
        memcpy(&im, images + i * sizeof im, sizeof im);
        memcpy(&c, changes + im.change * sizeof c, sizeof c);
        int rc = level_install(e, c.item, c.location, (table_word){im.w0, im.w1});
        if (rc != INV_OK)
            return rc;
    }
    if (!h.final)
        return note_pending(e, h.batch_id, changes, h.n_changes);
    drop_pending(e, h.batch_id);
    const uint8_t *q = p + len - h.holds_bytes;
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
                   .changes = pb->changes};
    op.rec_len = (uint32_t)batch_rec_len(pb->n_changes, 0);
    op.images = malloc(BATCH_IMAGES_PER_CHANGE * pb->n_changes * sizeof *op.images + 1);
    op.buf = malloc(op.rec_len);
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
