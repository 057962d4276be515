/*
 * hold.c — reservations: create (all or nothing), commit, release, expiry,
 * read. The life of a record (see hold.h for the state rules):
 *
 *   create: PENDING record claims the id in the table, lines reserved in
 *           (item, location) order, then HELD and pushed on the timing
 *           wheel (or, when its tick is swept or nearly, on the wheel's
 *           intake, which every sweep drains); or every taken line given
 *           back, ABORTED, removed, and
 *           retired by its creator (it never reached the wheel).
 *   end:    one CAS HELD -> COMMITTED | RELEASED | EXPIRED; its winner alone
 *           moves the units.
 *   forget: the background thread, the wheel's only consumer, removes an
 *           ended record from the table after HOLD_RETAIN_MS and retires it.
 *           A record replaced by a new hold with the same id is marked
 *           unlinked and retired the same way. So every record that reached
 *           the wheel is freed exactly once, by the background thread.
 */
#include "hold.h"

#include "catalog.h"
#include "clock.h"
#include "epoch.h"
#include "level.h"
#include "level_cold.h"
#include "persist.h"
#include "snapshot.h"
#include "vec.h"

#include <assert.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* PENDING: a create is reserving its lines. ENDING: a batch has claimed
 * the end of a HELD hold and is moving its units (it becomes the end's
 * state, or HELD again). Both are transient: every other change of the
 * hold waits for them to settle (bounded). */
enum { HOLD_PENDING = 0, HOLD_ENDING = 98, HOLD_ABORTED = 99 };

static bool state_transient(int st)
{
    return st == HOLD_PENDING || st == HOLD_ENDING;
}

/* A line's status: what this hold's changes did to its level so far. */
enum { LINE_NONE = 0, LINE_RESERVED = 1, LINE_UNTRACKED = 2, LINE_GIVEN_BACK = 3, LINE_ENDED = 4 };

typedef struct {
    uint64_t item, location;
    int64_t qty;
    _Atomic uint8_t status; /* written by the change's thread, read by snapshots */
} hold_line;

struct hold_record {
    _Atomic int state; /* HOLD_PENDING, HOLD_ABORTED or inv_hold_state */
    _Atomic int unlinked; /* no longer in the id table */
    _Atomic int64_t ended_at_ms;
    int64_t expires_at_ms;
    _Atomic uint64_t last_pos; /* journal position of its last record */
    /* The final record of its create, once published (1 when there is no
     * journal position to give): a retried create acknowledges on it. 0
     * until then, though the record is HELD a little earlier. */
    _Atomic uint64_t created_pos;
    /* The final record of its end (commit, release, expiry), once
     * published: a retried end acknowledges on it. 0 until then. */
    _Atomic uint64_t end_pos;
    hold_record *wheel_next; /* written by a pusher before its release CAS */
    size_t id_len;
    char id[INV_HOLD_ID_MAX];
    size_t n_lines;
    hold_line lines[];
};

typedef struct {
    inv_hold_line line;
    size_t index; /* in the caller's order */
} ordered_line;

static void hold_key(const char *id, size_t len, uint64_t *a, uint64_t *b)
{
    XXH128_hash_t h = XXH3_128bits(id, len);
    *a = h.low64;
    *b = h.high64;
}

static int load_state(hold_record *r)
{
    /* acquire: a settled state comes with the level changes made before
     * its release store. */
    return atomic_load_explicit(&r->state, memory_order_acquire);
}

void (*hold_test_hook)(hold_test_point at);

/* ---- timing wheel ------------------------------------------------------- */

/* A creator pushes its hold straight into the slot of its due tick only
 * when that tick is at least this far ahead of the sweeper's published
 * progress; nearer (or already swept) holds go to the intake, which every
 * sweep drains. The margin is how long a creator may stall between reading
 * the progress and its push (or the progress may lag, by one sweep period
 * at most) without its slot being swept under it. Holds that short are few
 * and cost the sweeper one extra look each. */
#define HOLD_WHEEL_INTAKE_MS 1000

static void stack_push(_Atomic(hold_record *) *slot, hold_record *r)
{
    hold_record *head = atomic_load_explicit(slot, memory_order_relaxed);
    do
        r->wheel_next = head;
    /* release: the record is complete before the sweeper can pop it. */
    while (!atomic_compare_exchange_weak_explicit(slot, &head, r, memory_order_release,
                                                  memory_order_relaxed));
}

/* The sweeper's push (or recovery's, before the sweeper runs): the tick of
 * due_ms is never one it has swept already. */
static void wheel_push(hold_book *hb, hold_record *r, int64_t due_ms)
{
    stack_push(&hb->wheel[(uint64_t)(due_ms / HOLD_WHEEL_TICK_MS) % HOLD_WHEEL_SLOTS], r);
}

/* A creator's push, racing the sweeper: a hold whose due tick is swept, or
 * may be by the time the push lands, goes to the intake instead of waiting
 * a whole wheel turn in a swept slot. */
static void wheel_push_racing(hold_book *hb, hold_record *r)
{
    /* relaxed: only compared against a margin (HOLD_WHEEL_INTAKE_MS) that
     * dwarfs how stale the value can be; no data comes with it. */
    int64_t next_ms =
        atomic_load_explicit(&hb->wheel_next_tick, memory_order_relaxed) * HOLD_WHEEL_TICK_MS;
    if (r->expires_at_ms - next_ms < HOLD_WHEEL_INTAKE_MS)
        stack_push(&hb->wheel_intake, r);
    else
        wheel_push(hb, r, r->expires_at_ms);
}

static void free_stack(hold_record *r)
{
    while (r) {
        hold_record *next = r->wheel_next;
        free(r);
        r = next;
    }
}

int hold_init(inv_engine *e)
{
    hold_book *hb = &e->holds;
    hb->wheel = calloc(HOLD_WHEEL_SLOTS, sizeof *hb->wheel);
    if (!hb->wheel)
        return INV_ENOMEM;
    int rc = table_init(&hb->by_id, e->cfg.holds_capacity, e);
    if (rc != INV_OK) {
        free(hb->wheel);
        hb->wheel = NULL;
    }
    return rc;
}

void hold_destroy(inv_engine *e)
{
    hold_book *hb = &e->holds;
    if (!hb->wheel)
        return;
    /* acquire: the records pushed (by now stopped threads) are complete. */
    for (size_t i = 0; i < HOLD_WHEEL_SLOTS; i++)
        free_stack(atomic_load_explicit(&hb->wheel[i], memory_order_acquire));
    free_stack(atomic_load_explicit(&hb->wheel_intake, memory_order_acquire));
    free(hb->wheel);
    hb->wheel = NULL;
    table_destroy(&hb->by_id);
}

/* ---- lines ---------------------------------------------------------------- */

static int cmp_ordered(const void *x, const void *y)
{
    const inv_hold_line *a = &((const ordered_line *)x)->line;
    const inv_hold_line *b = &((const ordered_line *)y)->line;
    if (a->item != b->item)
        return a->item < b->item ? -1 : 1;
    return a->location < b->location ? -1 : a->location > b->location;
}

/* Validates and sorts the caller's lines into out (the canonical order). */
static int order_lines(const inv_hold_line *lines, size_t n, ordered_line *out)
{
    for (size_t i = 0; i < n; i++) {
        if (lines[i].qty < 1 || lines[i].qty > INV_QTY_MAX)
            return INV_EINVALID;
        out[i] = (ordered_line){lines[i], i};
    }
    qsort(out, n, sizeof *out, cmp_ordered);
    for (size_t i = 1; i < n; i++)
        if (cmp_ordered(&out[i - 1], &out[i]) == 0)
            return INV_EINVALID; /* one (item, location) twice */
    return INV_OK;
}

static bool same_lines(const hold_record *r, const ordered_line *lines, size_t n)
{
    if (r->n_lines != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (r->lines[i].item != lines[i].line.item ||
            r->lines[i].location != lines[i].line.location || r->lines[i].qty != lines[i].line.qty)
            return false;
    return true;
}

/* ---- a change and its journal records ------------------------------------ */

enum { HOLD_OP_CREATE = 1, HOLD_OP_END = 2, HOLD_OP_STATE = 3 };

/* Level images a record may carry per line: a line may be taken and given
 * back within one record (an aborted create), one image each. */
#define HOLD_IMAGES_PER_LINE 2

/* One record: header, the id, every line with its status, then up to
 * HOLD_IMAGES_PER_LINE level images per line. Fixed size per hold, so a
 * reservation fits every record. */
typedef struct {
    uint8_t kind, target, final, id_len;
    uint16_t n_lines, n_images;
    uint32_t zero;
    int64_t expires_at_ms;
    uint64_t last_pos; /* HOLD_OP_STATE: the hold's last record */
    int64_t ended_at_ms; /* HOLD_OP_STATE */
    char id[INV_HOLD_ID_MAX];
} hold_rec_header;

typedef struct {
    uint64_t item, location;
    int64_t qty;
    uint64_t status;
} hold_rec_line;

typedef struct {
    uint8_t line, effect, zero[6];
    uint64_t w0, w1;
} hold_rec_image;

/* The largest record (INV_HOLD_LINES_MAX lines): a stack buffer's size. */
#define HOLD_REC_LEN_MAX       \
    (sizeof(hold_rec_header) + \
     INV_HOLD_LINES_MAX * (sizeof(hold_rec_line) + HOLD_IMAGES_PER_LINE * sizeof(hold_rec_image)))

static uint32_t hold_rec_len(size_t n_lines)
{
    return (uint32_t)(sizeof(hold_rec_header) + n_lines * sizeof(hold_rec_line) +
                      HOLD_IMAGES_PER_LINE * n_lines * sizeof(hold_rec_image));
}

typedef struct {
    inv_engine *e;
    hold_record *r;
    uint64_t state_last_pos; /* HOLD_OP_STATE: the position read first */
    uint8_t kind, target;
    uint64_t pos; /* the change's current position (0: memory mode) */
    uint64_t pos_last; /* the highest position it published */
    size_t n_images;
    hold_rec_image images[HOLD_IMAGES_PER_LINE * INV_HOLD_LINES_MAX];
} hold_op;

static void encode_record(const hold_op *op, bool final, uint8_t *buf)
{
    const hold_record *r = op->r;
    hold_rec_header h = {op->kind,
                         op->target,
                         final,
                         (uint8_t)r->id_len,
                         (uint16_t)r->n_lines,
                         (uint16_t)op->n_images,
                         0,
                         r->expires_at_ms,
                         op->state_last_pos,
                         atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed),
                         {0}};
    memcpy(h.id, r->id, r->id_len);
    memset(buf, 0, hold_rec_len(r->n_lines));
    memcpy(buf, &h, sizeof h);
    hold_rec_line *lines = (hold_rec_line *)(buf + sizeof h);
    for (size_t i = 0; i < r->n_lines; i++)
        lines[i] = (hold_rec_line){r->lines[i].item, r->lines[i].location, r->lines[i].qty,
                                   atomic_load_explicit(&r->lines[i].status, memory_order_acquire)};
    memcpy(buf + sizeof h + r->n_lines * sizeof(hold_rec_line), op->images,
           op->n_images * sizeof(hold_rec_image));
}

/* Sets every field but images: zeroing those (about 3 KB) on each create,
 * commit and release cost more than the change itself. Only the first
 * n_images are ever read (encode_record), and op_line writes each one
 * before it counts it. */
static void op_init(hold_op *op, inv_engine *e, hold_record *r, uint8_t kind, uint8_t target)
{
    op->e = e;
    op->r = r;
    op->state_last_pos = 0;
    op->kind = kind;
    op->target = target;
    op->pos = 0;
    op->pos_last = 0;
    op->n_images = 0;
}

static int op_begin(hold_op *op, inv_engine *e, hold_record *r, uint8_t kind, uint8_t target)
{
    op_init(op, e, r, kind, target);
    if (e->jr && !persist_test_late_reserve &&
        (op->pos = persist_reserve(e, hold_rec_len(r->n_lines))) == 0)
        return INV_EIO;
    return INV_OK;
}

/* Publishes the record at op->pos (journal only). final: the change is
 * complete; else a partial record, and a new position is reserved. */
static int op_publish(hold_op *op, bool final)
{
    uint32_t len = hold_rec_len(op->r->n_lines);
    if (!op->pos && op->e->jr && persist_test_late_reserve &&
        (op->pos = persist_test_late_position(op->e, PERSIST_HOLD, len)) == 0)
        return INV_EIO;
    if (!op->pos)
        return INV_OK;
    uint8_t buf[HOLD_REC_LEN_MAX];
    /* release: stored after the state and line changes this record
     * carries; a snapshot reads it first (acquire), so the state it reads
     * next is never older than the record it claims to include. */
    atomic_store_explicit(&op->r->last_pos, op->pos, memory_order_release);
    encode_record(op, final, buf);
    int rc = persist_publish(op->e, op->pos, PERSIST_HOLD, buf, len);
    op->pos_last = op->pos;
    op->pos = 0;
    op->n_images = 0;
    if (rc == INV_OK && !final && !persist_test_late_reserve &&
        (op->pos = persist_reserve(op->e, len)) == 0)
        rc = INV_EIO;
    return rc;
}

/* Applies line i's change (reserve, or give back / end) and records it. */
static int op_line(hold_op *op, size_t i, uint8_t effect, int64_t *available_seen)
{
    hold_line *l = &op->r->lines[i];
    for (;;) {
        table_word image = {0, 0};
        bool counted = false;
        int rc = effect == LINE_RESERVED
                     ? level_reserve(op->e, l->item, l->location, l->qty, op->pos, &counted,
                                     available_seen, &image)
                     : level_unreserve(op->e, l->item, l->location, l->qty,
                                       op->target == INV_HOLD_COMMITTED, op->pos, &image);
        if (rc == LEVEL_NEEDS_POSITION) {
            rc = op_publish(op, false);
            if (rc != INV_OK)
                return rc;
            continue;
        }
        if (effect == LINE_RESERVED && rc == INV_OK && !counted)
            effect = LINE_UNTRACKED; /* nothing applied, no image */
        else if (rc == INV_OK) {
            /* Each record gets at most one take and one give-back per line. */
            assert(op->n_images < HOLD_IMAGES_PER_LINE * op->r->n_lines);
            op->images[op->n_images++] =
                (hold_rec_image){(uint8_t)i, effect, {0}, image.w0, image.w1};
        } else if (rc != INV_ENOTFOUND || effect == LINE_RESERVED)
            return rc;
        /* A level deleted with its item took its units along: the line ends. */
        /* release: a snapshot that sees the status sees the level change. */
        atomic_store_explicit(&l->status, effect, memory_order_release);
        return INV_OK;
    }
}

/* Gives back (or, for an end, sells or returns) every RESERVED line. */
static int op_end_lines(hold_op *op, uint8_t effect)
{
    for (size_t i = 0; i < op->r->n_lines; i++) {
        /* acquire: pairs with op_line's release of the status. */
        if (atomic_load_explicit(&op->r->lines[i].status, memory_order_acquire) != LINE_RESERVED)
            continue;
        int rc = op_line(op, i, effect, NULL);
        if (rc != INV_OK)
            return rc;
    }
    return INV_OK;
}

/* A create that cannot go on: reports the failing line, gives back every
 * line taken and publishes the create as aborted. */
static int abort_create(hold_op *op, const ordered_line *lines, size_t i, int rc, int64_t seen,
                        inv_hold_failure *failure)
{
    if (failure)
        *failure = (inv_hold_failure){lines[i].index, op->r->lines[i].item,
                                      op->r->lines[i].location, rc == INV_ENOTFOUND ? 0 : seen};
    op->target = HOLD_ABORTED;
    int undo = op_end_lines(op, LINE_GIVEN_BACK);
    int fin = op_publish(op, true);
    return undo != INV_OK ? undo : fin != INV_OK ? fin : rc;
}

/* Reserves every line, all or nothing. Last, every line's item must still
 * exist: an item deletion that raced us either sees our reservation (and
 * refuses) or deleted the item first (and we give everything back), so no
 * HELD hold ever counts on a level of a deleted item. */
static int reserve_lines(hold_op *op, const ordered_line *lines, inv_hold_failure *failure)
{
    for (size_t i = 0; i < op->r->n_lines; i++) {
        int64_t seen = 0;
        int rc = op_line(op, i, LINE_RESERVED, &seen);
        if (rc != INV_OK)
            return abort_create(op, lines, i, rc, seen, failure);
    }
    bool tracked;
    for (size_t i = 0; i < op->r->n_lines; i++)
        if (!catalog_item_exists(&op->e->cat, op->r->lines[i].item, &tracked))
            return abort_create(op, lines, i, INV_ENOTFOUND, 0, failure);
    return INV_OK;
}

/* With a journal, a create or an end already made by another call is
 * acknowledged on that call's final record: wait (bounded) until it is
 * published, i.e. until *final_pos is set. */
static int settled_ack(inv_engine *e, _Atomic uint64_t *final_pos, uint64_t *pos_out)
{
    uint64_t t0_ns = clock_mono_ns();
    for (;;) {
        /* acquire: pairs with the release that stores the final position. */
        uint64_t pos = atomic_load_explicit(final_pos, memory_order_acquire);
        if (!e->jr) {
            *pos_out = 0; /* memory mode: nothing to wait for */
            return INV_OK;
        }
        if (pos) {
            *pos_out = pos;
            return INV_OK;
        }
        if (clock_mono_ns() - t0_ns > HOLD_SETTLE_WAIT_MS * CLOCK_NS_PER_MS)
            return INV_EIO; /* the first call is stuck in the journal */
        sched_yield();
    }
}

/* ---- create --------------------------------------------------------------- */

static hold_record *record_new(const char *id, size_t len, uint64_t ttl_ms,
                               const ordered_line *lines, size_t n)
{
    hold_record *r = calloc(1, sizeof *r + n * sizeof r->lines[0]);
    if (!r)
        return NULL;
    r->expires_at_ms = clock_wall_ms() + (int64_t)ttl_ms;
    r->id_len = len;
    memcpy(r->id, id, len);
    r->n_lines = n;
    for (size_t i = 0; i < n; i++)
        r->lines[i] =
            (hold_line){lines[i].line.item, lines[i].line.location, lines[i].line.qty, LINE_NONE};
    return r;
}

static bool wait_not_pending(hold_record *r)
{
    uint64_t t0_us = clock_mono_us();
    while (state_transient(load_state(r))) {
        if (clock_mono_us() - t0_us > HOLD_PENDING_WAIT_US)
            return false;
        sched_yield();
    }
    return true;
}

/* What an existing record with this id means for a create: OK (a retry),
 * CONFLICT, or 1 to replace it (it ended: the id may be used again). */
static int existing_verdict(hold_record *old, const ordered_line *lines, size_t n)
{
    if (!wait_not_pending(old))
        return INV_ECONFLICT;
    int st = load_state(old);
    if (st == INV_HOLD_HELD || st == INV_HOLD_COMMITTED)
        return same_lines(old, lines, n) ? INV_OK : INV_ECONFLICT;
    return 1;
}

/* A create whose lines are all reserved becomes HELD before its final
 * record is published: a snapshot that starts after the record is durable
 * (and so does not replay it) must not find the hold still PENDING, which
 * recovery would abort. A change built on HELD (a commit) reserves its
 * position after ours, so it is never durable before the create. */
static void hold_mark_held(hold_record *r)
{
    /* release: the reserved lines happen before anyone acts on HELD. */
    atomic_store_explicit(&r->state, INV_HOLD_HELD, memory_order_release);
}

static void hold_activate(inv_engine *e, hold_record *r)
{
    hold_book *hb = &e->holds;
    if (hold_test_hook)
        hold_test_hook(HOLD_TEST_BEFORE_WHEEL);
    wheel_push_racing(hb, r);
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&hb->created, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hb->active, 1, memory_order_relaxed);
}

static void forget(inv_engine *e, hold_record *r);

/* A create that failed: its lines are already given back. */
static void hold_abort(inv_engine *e, hold_record *r)
{
    /* release: a waiter on PENDING sees the given-back lines first. */
    atomic_store_explicit(&r->state, HOLD_ABORTED, memory_order_release);
    forget(e, r);
    epoch_retire(r, free, e); /* never reached the wheel: ours to free */
}

/* claim_id's context: the create's arguments, and what its step saw. */
typedef struct {
    const char *id;
    size_t len;
    uint64_t ttl_ms;
    const ordered_line *lines;
    size_t n;
    hold_record *mine; /* the PENDING record, allocated on first need */
    hold_record *old; /* the live record with this id the step saw */
} claim_ctx;

/* Puts a PENDING record in place of nothing, a tombstone or an ended hold
 * with the same id (WRITE). Else KEEP when old is the same create (a
 * retry), CONFLICT, LIMIT (two ids with one 128-bit hash) or NOMEM. May
 * wait (bounded) for a PENDING or ENDING old record to settle. */
static int claim_step(void *p, table_word cur, table_word *next)
{
    claim_ctx *c = p;
    c->old = table_is_live(cur) ? (hold_record *)(uintptr_t)cur.w0 : NULL;
    if (c->old && (c->old->id_len != c->len || memcmp(c->old->id, c->id, c->len) != 0))
        return INV_ELIMIT; /* a 128-bit hash collision between two ids */
    if (c->old) {
        int verdict = existing_verdict(c->old, c->lines, c->n);
        if (verdict == INV_OK)
            return TABLE_STEP_KEEP;
        if (verdict != 1)
            return verdict;
    }
    /* After a lost race, ours is reused (nobody else has seen it); its
     * time to live starts now, as a fresh record's would. */
    if (c->mine)
        c->mine->expires_at_ms = clock_wall_ms() + (int64_t)c->ttl_ms;
    else if (!(c->mine = record_new(c->id, c->len, c->ttl_ms, c->lines, c->n)))
        return INV_ENOMEM;
    *next = (table_word){(uintptr_t)c->mine, table_version(cur) + 1};
    return TABLE_STEP_WRITE;
}

/* Claims id for a new hold: a PENDING record in the id table (*out), or,
 * when the same hold exists already, *out NULL and *ack_pos the record a
 * retry acknowledges on. */
static int claim_id(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                    const ordered_line *lines, size_t n, hold_record **out, uint64_t *ack_pos)
{
    uint64_t a, b;
    hold_key(id, len, &a, &b);
    claim_ctx c = {id, len, ttl_ms, lines, n, NULL, NULL};
    *out = NULL;
    int rc = table_update(&e->holds.by_id, a, b, true, NULL, claim_step, &c, NULL);
    if (rc != TABLE_STEP_WRITE) {
        free(c.mine); /* never published */
        assert(rc != TABLE_STEP_KEEP || c.old != NULL);
        /* A retry (the first create is HELD, perhaps not yet durable)
         * waits for the first create's final record and acknowledges on
         * it. */
        return rc == TABLE_STEP_KEEP ? settled_ack(e, &c.old->created_pos, ack_pos) : rc;
    }
    assert(c.mine != NULL && c.mine != c.old);
    if (c.old)
        /* release: the sweeper, which owns old, sees it left the table. */
        atomic_store_explicit(&c.old->unlinked, 1, memory_order_release);
    else
        table_note_created(&e->holds.by_id);
    *out = c.mine;
    return INV_OK;
}

static int create_in_table(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                           const ordered_line *lines, size_t n, inv_hold_failure *failure,
                           uint64_t *pos_out)
{
    hold_record *r;
    int rc = claim_id(e, id, len, ttl_ms, lines, n, &r, pos_out);
    if (rc != INV_OK || !r)
        return rc;
    hold_op op;
    rc = op_begin(&op, e, r, HOLD_OP_CREATE, INV_HOLD_HELD);
    if (rc != INV_OK) {
        hold_abort(e, r);
        return rc;
    }
    rc = reserve_lines(&op, lines, failure);
    if (rc == INV_OK) {
        hold_mark_held(r);
        if (hold_test_hook)
            hold_test_hook(HOLD_TEST_HELD_UNPUBLISHED);
        rc = op_publish(&op, true);
    }
    *pos_out = op.pos_last;
    if (rc != INV_OK && op.target == HOLD_ABORTED) {
        hold_abort(e, r);
        return rc;
    }
    hold_mark_held(r); /* on EIO too: the units are held in memory */
    /* release: after the final publish (or its failure), so a retry
     * that reads it acknowledges on a record that exists. */
    atomic_store_explicit(&r->created_pos, op.pos_last ? op.pos_last : 1, memory_order_release);
    hold_activate(e, r);
    return rc;
}

/* The checks every create makes on its arguments; sorts the lines into
 * ordered (the canonical order). */
static int create_args_ok(const char *hold_id, size_t hold_id_len, uint64_t ttl_ms,
                          const inv_hold_line *lines, size_t n_lines, ordered_line *ordered)
{
    if (!hold_id || hold_id_len == 0 || !lines || n_lines == 0 || ttl_ms == 0)
        return INV_EINVALID;
    if (hold_id_len > INV_HOLD_ID_MAX || n_lines > INV_HOLD_LINES_MAX ||
        ttl_ms > INV_HOLD_TTL_MS_MAX)
        return INV_ELIMIT;
    return order_lines(lines, n_lines, ordered);
}

int inv_hold_create(inv_engine *e, const char *hold_id, size_t hold_id_len, uint64_t ttl_ms,
                    const inv_hold_line *lines, size_t n_lines, inv_hold_failure *failure)
{
    if (!e)
        return INV_EINVALID;
    ordered_line ordered[INV_HOLD_LINES_MAX];
    int rc = create_args_ok(hold_id, hold_id_len, ttl_ms, lines, n_lines, ordered);
    if (rc != INV_OK)
        return rc;
    uint64_t pos = 0;
    epoch_enter();
    rc = create_in_table(e, hold_id, hold_id_len, ttl_ms, ordered, n_lines, failure, &pos);
    epoch_exit();
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

/* ---- end: commit, release, expire ------------------------------------------ */

static hold_record *find_record(inv_engine *e, const char *id, size_t len, int *rc)
{
    uint64_t a, b;
    hold_key(id, len, &a, &b);
    table_slot *s = table_find(&e->holds.by_id, a, b);
    table_word v = s ? table_load(s) : (table_word){0, 0};
    if (!table_is_live(v)) {
        *rc = INV_ENOTFOUND;
        return NULL;
    }
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    if (r->id_len != len || memcmp(r->id, id, len) != 0) {
        *rc = INV_ENOTFOUND; /* another id with the same 128-bit hash */
        return NULL;
    }
    *rc = INV_OK;
    return r;
}

/* The answer for a transition to `to` on a record already in state st. */
static int settled_answer(int st, int to)
{
    switch (st) {
    case INV_HOLD_COMMITTED:
        return to == INV_HOLD_COMMITTED ? INV_OK : INV_ECONFLICT;
    case INV_HOLD_RELEASED:
    case INV_HOLD_EXPIRED:
        return to == INV_HOLD_COMMITTED ? INV_ENOTFOUND : INV_OK;
    default:
        return INV_ENOTFOUND; /* aborted */
    }
}

/* The state an end (commit, release, expiry, a batch's claim) finds r in,
 * once it is not transient (waited for, bounded): HOLD_IS_HELD with *st
 * HELD, the caller's to end; else the answer for ending it to `to`, a
 * retry acknowledging on the end's final record (*ack_pos). */
#define HOLD_IS_HELD 1

static inline int held_or_answer(inv_engine *e, hold_record *r, int to, int *st, uint64_t *ack_pos)
{
    while (state_transient(*st = load_state(r)))
        if (!wait_not_pending(r))
            return INV_ECONFLICT;
    if (*st == INV_HOLD_HELD)
        return HOLD_IS_HELD;
    int answer = settled_answer(*st, to);
    assert(answer != HOLD_IS_HELD);
    return answer == INV_OK ? settled_ack(e, &r->end_pos, ack_pos) : answer;
}

static void op_abandon(hold_op *op)
{
    if (op->pos)
        persist_abandon(op->e, op->pos, hold_rec_len(op->r->n_lines));
    op->pos = 0;
}

static void count_end(hold_book *hb, int to)
{
    _Atomic uint64_t *counter = to == INV_HOLD_COMMITTED  ? &hb->committed
                                : to == INV_HOLD_RELEASED ? &hb->released
                                                          : &hb->expired;
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&hb->active, 1, memory_order_relaxed);
}

/* Ends a HELD hold: commit, release or expiry. The end's journal position
 * is reserved before the state CAS that decides it, so a snapshot or a
 * retry that sees the decision also finds its record below the tail. A
 * commit that comes after the expiry time expires the hold instead. */
static int hold_end(inv_engine *e, hold_record *r, int to, uint64_t *pos_out)
{
    for (;;) {
        int st;
        int answer = held_or_answer(e, r, to, &st, pos_out);
        if (answer != HOLD_IS_HELD)
            return answer;
        int decided =
            to == INV_HOLD_COMMITTED && clock_wall_ms() >= r->expires_at_ms ? INV_HOLD_EXPIRED : to;
        hold_op op;
        int rc = op_begin(&op, e, r, HOLD_OP_END, (uint8_t)decided);
        if (rc != INV_OK)
            return rc;
        /* acq_rel: exactly one of commit, release and expiry wins. */
        if (!atomic_compare_exchange_strong_explicit(&r->state, &st, decided, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            op_abandon(&op);
            continue;
        }
        /* relaxed: read by the background thread after it pops r, and by
         * snapshots after the record that carries it is durable. */
        atomic_store_explicit(&r->ended_at_ms, clock_wall_ms(), memory_order_relaxed);
        rc = op_end_lines(&op, LINE_ENDED);
        if (rc == INV_OK)
            rc = op_publish(&op, true);
        /* release: a retry that reads it acknowledges on it. */
        atomic_store_explicit(&r->end_pos, op.pos_last ? op.pos_last : 1, memory_order_release);
        *pos_out = op.pos_last;
        count_end(&e->holds, decided);
        if (rc == INV_OK && decided != to)
            rc = INV_ENOTFOUND; /* it had expired: nothing to commit */
        return rc;
    }
}

static int end_by_id(inv_engine *e, const char *id, size_t len, int to)
{
    if (!e || !id || len == 0)
        return INV_EINVALID;
    if (len > INV_HOLD_ID_MAX)
        return INV_ELIMIT;
    uint64_t pos = 0;
    epoch_enter();
    int rc;
    hold_record *r = find_record(e, id, len, &rc);
    if (r)
        rc = hold_end(e, r, to, &pos);
    epoch_exit();
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

int inv_hold_commit(inv_engine *e, const char *hold_id, size_t hold_id_len)
{
    return end_by_id(e, hold_id, hold_id_len, INV_HOLD_COMMITTED);
}

int inv_hold_release(inv_engine *e, const char *hold_id, size_t hold_id_len)
{
    return end_by_id(e, hold_id, hold_id_len, INV_HOLD_RELEASED);
}

int inv_hold_get(inv_engine *e, const char *hold_id, size_t hold_id_len, inv_hold_info *out)
{
    if (!e || !hold_id || hold_id_len == 0 || !out)
        return INV_EINVALID;
    if (hold_id_len > INV_HOLD_ID_MAX)
        return INV_ELIMIT;
    epoch_enter();
    int rc;
    hold_record *r = find_record(e, hold_id, hold_id_len, &rc);
    if (r) {
        int st = load_state(r);
        if (st == HOLD_PENDING || st == HOLD_ABORTED) {
            rc = INV_ENOTFOUND; /* not (or never) created yet */
        } else {
            out->state = st == HOLD_ENDING ? INV_HOLD_HELD : (inv_hold_state)st;
            out->expires_at_ms = r->expires_at_ms;
            out->n_lines = r->n_lines;
            for (size_t i = 0; i < r->n_lines; i++)
                out->lines[i] =
                    (inv_hold_line){r->lines[i].item, r->lines[i].location, r->lines[i].qty};
        }
    }
    epoch_exit();
    return rc;
}

/* ---- background: expiry and forgetting ------------------------------------ */

/* forget's step (p: the record): a tombstone in place of r, unless the
 * id is gone or names another record already (KEEP). */
static int forget_step(void *p, table_word cur, table_word *next)
{
    if (!table_is_live(cur) || cur.w0 != (uintptr_t)p)
        return TABLE_STEP_KEEP;
    *next = (table_word){0, (table_version(cur) + 1) | TABLE_TOMB};
    return TABLE_STEP_WRITE;
}

/* Removes r from the id table if it is still there. */
static void forget(inv_engine *e, hold_record *r)
{
    uint64_t a, b;
    hold_key(r->id, r->id_len, &a, &b);
    int rc = table_update(&e->holds.by_id, a, b, false, NULL, forget_step, r, NULL);
    assert(rc == TABLE_STEP_WRITE || rc == TABLE_STEP_KEEP);
    if (rc == TABLE_STEP_WRITE)
        table_note_deleted(&e->holds.by_id);
}

static void sweep_record(inv_engine *e, hold_record *r, int64_t now_ms)
{
    if (load_state(r) == HOLD_ENDING) {
        /* A batch is ending it, or may give it back HELD: look again on
         * the next tick (not swept in this round). */
        wheel_push(&e->holds, r, now_ms + HOLD_WHEEL_TICK_MS);
        return;
    }
    if (load_state(r) == INV_HOLD_HELD) {
        if (r->expires_at_ms > now_ms) {
            wheel_push(&e->holds, r, r->expires_at_ms); /* a later round */
            return;
        }
        uint64_t pos_unused = 0;
        (void)hold_end(e, r, INV_HOLD_EXPIRED, &pos_unused);
    }
    /* acquire: pairs with the release of a create that replaced r. */
    bool unlinked = atomic_load_explicit(&r->unlinked, memory_order_acquire);
    int64_t ended = atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed);
    if (ended == 0)
        ended = now_ms; /* its end is being written right now */
    if (!unlinked && ended + HOLD_RETAIN_MS > now_ms) {
        wheel_push(&e->holds, r, ended + HOLD_RETAIN_MS);
        return;
    }
    if (!unlinked)
        forget(e, r);
    epoch_retire(r, free, e);
}

/* Sweeps the records of one stack (popped whole). */
static void sweep_stack(inv_engine *e, _Atomic(hold_record *) *slot, int64_t now_ms)
{
    /* acquire: the popped records are complete. */
    hold_record *r = atomic_exchange_explicit(slot, NULL, memory_order_acquire);
    while (r) {
        hold_record *next = r->wheel_next;
        sweep_record(e, r, now_ms);
        r = next;
    }
}

void hold_expire_due(inv_engine *e, int64_t now_ms)
{
    hold_book *hb = &e->holds;
    int64_t now_tick = now_ms / HOLD_WHEEL_TICK_MS;
    if (hb->swept_tick == 0 || now_tick - hb->swept_tick > HOLD_WHEEL_SLOTS)
        hb->swept_tick = now_tick - HOLD_WHEEL_SLOTS; /* first run, or a long stall */
    /* relaxed: a progress hint for creators (see wheel_push_racing), stored
     * before the slots it covers are swept; HOLD_WHEEL_INTAKE_MS absorbs
     * how late a creator may see it. */
    atomic_store_explicit(&hb->wheel_next_tick, now_tick, memory_order_relaxed);
    /* Only whole ticks: a hold due in the current tick waits for the next
     * sweep (at most one tick and one sweep period late). */
    for (int64_t t = hb->swept_tick + 1; t < now_tick; t++)
        sweep_stack(e, &hb->wheel[(uint64_t)t % HOLD_WHEEL_SLOTS], now_ms);
    hb->swept_tick = now_tick - 1;
    /* Late arrivals: expired now, or pushed (by us) to their tick, which is
     * not swept yet. */
    sweep_stack(e, &hb->wheel_intake, now_ms);
}

void hold_stats(inv_engine *e, inv_stats *out)
{
    hold_book *hb = &e->holds;
    /* relaxed: statistics. */
    out->holds_active = atomic_load_explicit(&hb->active, memory_order_relaxed);
    out->holds_created = atomic_load_explicit(&hb->created, memory_order_relaxed);
    out->holds_committed = atomic_load_explicit(&hb->committed, memory_order_relaxed);
    out->holds_released = atomic_load_explicit(&hb->released, memory_order_relaxed);
    out->holds_expired = atomic_load_explicit(&hb->expired, memory_order_relaxed);
}

/* ---- invariant check ------------------------------------------------------ */

typedef struct {
    uint64_t item, location;
    int64_t qty;
} reserved_entry;

/* ctx: a vec of reserved_entry. */
static int collect_held(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    if (load_state(r) != INV_HOLD_HELD)
        return 0;
    for (size_t i = 0; i < r->n_lines; i++)
        if (atomic_load_explicit(&r->lines[i].status, memory_order_acquire) == LINE_RESERVED &&
            vec_push(ctx, &(reserved_entry){r->lines[i].item, r->lines[i].location,
                                            r->lines[i].qty}) != INV_OK)
            return INV_ENOMEM;
    return 0;
}

/* ctx: a vec of reserved_entry (reserved: held less committed). */
static int collect_reserved(void *ctx, uint64_t item, uint64_t loc, table_word v, table_slot *s)
{
    inv_level lv;
    level_out_slot(v, s, &lv);
    return lv.reserved ? vec_push(ctx, &(reserved_entry){item, loc, lv.reserved}) : 0;
}

static int cmp_reserved(const void *x, const void *y)
{
    const reserved_entry *a = x, *b = y;
    if (a->item != b->item)
        return a->item < b->item ? -1 : 1;
    return a->location < b->location ? -1 : a->location > b->location;
}

/* Sorts the reserved_entry list l, summing entries with the same (item,
 * location). */
static void merge_sorted(vec *l)
{
    reserved_entry *v = l->items;
    if (l->n == 0)
        return;
    qsort(v, l->n, sizeof *v, cmp_reserved);
    size_t out = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (out && cmp_reserved(&v[out - 1], &v[i]) == 0)
            v[out - 1].qty += v[i].qty;
        else
            v[out++] = v[i];
    }
    l->n = out;
}

int hold_verify_reserved(inv_engine *e)
{
    vec held = VEC_OF(reserved_entry), levels = VEC_OF(reserved_entry);
    epoch_enter();
    int rc = table_foreach(&e->holds.by_id, collect_held, &held);
    if (rc == INV_OK)
        rc = table_foreach_slot(&e->levels, collect_reserved, &levels);
    epoch_exit();
    if (rc == INV_OK) {
        merge_sorted(&held);
        merge_sorted(&levels);
        rc = held.n == levels.n && (held.n == 0 || memcmp(held.items, levels.items,
                                                          held.n * sizeof(reserved_entry)) == 0)
                 ? INV_OK
                 : INV_ECONFLICT;
    }
    vec_free(&held);
    vec_free(&levels);
    return rc;
}

/* ---- recovery and snapshots --------------------------------------------- */

static bool state_valid(uint8_t st)
{
    return st == HOLD_PENDING || st == HOLD_ABORTED ||
           (st >= INV_HOLD_HELD && st <= INV_HOLD_EXPIRED);
}

/* Checks a PERSIST_HOLD payload read from disk; nothing in it is trusted. */
static bool record_valid(const uint8_t *p, uint32_t len, hold_rec_header *h)
{
    if (len < sizeof *h)
        return false;
    memcpy(h, p, sizeof *h);
    if (h->id_len == 0 || h->id_len > INV_HOLD_ID_MAX || h->n_lines == 0 ||
        h->n_lines > INV_HOLD_LINES_MAX || h->n_images > HOLD_IMAGES_PER_LINE * h->n_lines ||
        len != hold_rec_len(h->n_lines) || h->final > 1 || !state_valid(h->target) ||
        h->kind < HOLD_OP_CREATE || h->kind > HOLD_OP_STATE)
        return false;
    const hold_rec_line *lines = (const hold_rec_line *)(p + sizeof *h);
    for (size_t i = 0; i < h->n_lines; i++)
        if (lines[i].status > LINE_ENDED || lines[i].qty < 1 || lines[i].qty > INV_QTY_MAX)
            return false;
    const hold_rec_image *images = (const hold_rec_image *)(lines + h->n_lines);
    for (size_t i = 0; i < h->n_images; i++)
        if (images[i].line >= h->n_lines)
            return false;
    return true;
}

/* The state a replayed record leaves its hold in. */
static int replayed_state(const hold_rec_header *h)
{
    if (h->kind == HOLD_OP_CREATE)
        return h->final ? h->target : HOLD_PENDING;
    return h->target;
}

static hold_record *record_from(const hold_rec_header *h, const hold_rec_line *lines, uint64_t pos)
{
    hold_record *r = calloc(1, sizeof *r + h->n_lines * sizeof r->lines[0]);
    if (!r)
        return NULL;
    atomic_init(&r->state, replayed_state(h));
    r->expires_at_ms = h->expires_at_ms;
    atomic_init(&r->last_pos, pos);
    /* Replayed records are durable: retries of a recovered create or end
     * acknowledge at once (1 when no position is known). */
    int st = replayed_state(h);
    atomic_init(&r->created_pos, st != HOLD_PENDING && st != HOLD_ABORTED ? (pos ? pos : 1) : 0);
    atomic_init(&r->end_pos, st > INV_HOLD_HELD && st != HOLD_ABORTED ? (pos ? pos : 1) : 0);
    atomic_init(&r->ended_at_ms, h->kind == HOLD_OP_STATE ? h->ended_at_ms : 0);
    r->id_len = h->id_len;
    memcpy(r->id, h->id, h->id_len);
    r->n_lines = h->n_lines;
    for (size_t i = 0; i < h->n_lines; i++) {
        r->lines[i] = (hold_line){lines[i].item, lines[i].location, lines[i].qty, LINE_NONE};
        atomic_init(&r->lines[i].status, (uint8_t)lines[i].status);
    }
    return r;
}

/* install_record's step: r in place of whatever is there (a tombstone
 * when r was aborted); was: the value it replaces. */
typedef struct {
    hold_record *r;
    table_word was;
} install_ctx;

static int install_step(void *p, table_word cur, table_word *next)
{
    install_ctx *c = p;
    uint64_t version = table_version(cur) + 1;
    c->was = cur;
    *next = load_state(c->r) == HOLD_ABORTED ? (table_word){0, version | TABLE_TOMB}
                                             : (table_word){(uintptr_t)c->r, version};
    return TABLE_STEP_WRITE;
}

/* Puts r in the id table in place of whatever is there (recovery only:
 * no other thread runs, so a replaced record is freed at once). */
static int install_record(inv_engine *e, hold_record *r)
{
    uint64_t a, b;
    hold_key(r->id, r->id_len, &a, &b);
    install_ctx c = {r, {0, 0}};
    table_word mine;
    int rc = table_update(&e->holds.by_id, a, b, true, NULL, install_step, &c, &mine);
    if (rc != TABLE_STEP_WRITE)
        return rc; /* NOMEM */
    if (table_is_live(c.was))
        free((hold_record *)(uintptr_t)c.was.w0);
    if (table_is_live(mine) && !table_is_live(c.was))
        table_note_created(&e->holds.by_id);
    else if (!table_is_live(mine) && table_is_live(c.was))
        table_note_deleted(&e->holds.by_id);
    if (!table_is_live(mine))
        free(r);
    return INV_OK;
}

int hold_replay(inv_engine *e, uint64_t pos, const void *payload, uint32_t len)
{
    hold_rec_header h;
    const uint8_t *p = payload;
    if (!record_valid(p, len, &h))
        return INV_EINVALID;
    const hold_rec_line *lines = (const hold_rec_line *)(p + sizeof h);
    const hold_rec_image *images = (const hold_rec_image *)(lines + h.n_lines);
    for (size_t i = 0; i < h.n_images; i++) {
        table_word w = {images[i].w0, images[i].w1};
        int rc = level_install(e, lines[images[i].line].item, lines[images[i].line].location, w);
        if (rc != INV_OK)
            return rc;
    }
    uint64_t hold_pos = h.kind == HOLD_OP_STATE ? h.last_pos : pos;
    int rc;
    hold_record *old = find_record(e, h.id, h.id_len, &rc);
    /* relaxed: recovery is single-threaded. */
    if (old && atomic_load_explicit(&old->last_pos, memory_order_relaxed) >= hold_pos)
        return INV_OK; /* the snapshot already holds this change */
    hold_record *r = record_from(&h, lines, hold_pos);
    return r ? install_record(e, r) : INV_ENOMEM;
}

static int collect_record(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    (void)a, (void)b;
    hold_record ***cursor = ctx;
    *(*cursor)++ = (hold_record *)(uintptr_t)v.w0;
    return 0;
}

static bool has_reserved_line(hold_record *r)
{
    for (size_t i = 0; i < r->n_lines; i++)
        if (atomic_load_explicit(&r->lines[i].status, memory_order_acquire) == LINE_RESERVED)
            return true;
    return false;
}

/* Finishes a change that recovery found half done, and journals it. */
static int finish_one(inv_engine *e, hold_record *r, int64_t now_ms)
{
    hold_book *hb = &e->holds;
    int st = load_state(r);
    hold_op op;
    int rc = INV_OK;
    if (st == HOLD_PENDING || (st != INV_HOLD_HELD && has_reserved_line(r))) {
        bool aborting = st == HOLD_PENDING;
        rc = op_begin(&op, e, r, aborting ? HOLD_OP_CREATE : HOLD_OP_END,
                      aborting ? HOLD_ABORTED : (uint8_t)st);
        if (rc == INV_OK)
            rc = op_end_lines(&op, aborting ? LINE_GIVEN_BACK : LINE_ENDED);
        if (rc == INV_OK)
            rc = op_publish(&op, true);
        if (rc == INV_OK && op.pos_last)
            rc = journal_wait(e->jr, op.pos_last);
        if (aborting) {
            hold_abort(e, r);
            return rc;
        }
    }
    if (st == INV_HOLD_HELD) {
        wheel_push(hb, r, r->expires_at_ms);
        /* relaxed: statistics. */
        atomic_fetch_add_explicit(&hb->active, 1, memory_order_relaxed);
    } else {
        if (atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed) == 0)
            atomic_store_explicit(&r->ended_at_ms, now_ms, memory_order_relaxed);
        wheel_push(hb, r,
                   atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed) + HOLD_RETAIN_MS);
    }
    return rc;
}

int hold_recover_finish(inv_engine *e)
{
    int64_t live = table_live(&e->holds.by_id);
    hold_record **all = calloc((size_t)(live > 0 ? live : 0) + 1, sizeof *all);
    if (!all)
        return INV_ENOMEM;
    hold_record **cursor = all;
    epoch_enter();
    int rc = table_foreach(&e->holds.by_id, collect_record, &cursor);
    int64_t now_ms = clock_wall_ms();
    for (hold_record **r = all; rc == INV_OK && r < cursor; r++)
        rc = finish_one(e, *r, now_ms);
    epoch_exit();
    free(all);
    return rc;
}

static int snapshot_one(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    (void)a, (void)b;
    void **args = ctx;
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    /* acquire, and before the state: a change stores its state, then its
     * position; reading in the other order, the record we say the state
     * includes really is included (replay skips records up to it). */
    uint64_t last = atomic_load_explicit(&r->last_pos, memory_order_acquire);
    int st = load_state(r);
    hold_op op;
    /* An end a batch has claimed is not done until the batch's final
     * record (at or after this snapshot's position, see batch.c). */
    op_init(&op, args[0], r, HOLD_OP_STATE, (uint8_t)(st == HOLD_ENDING ? INV_HOLD_HELD : st));
    op.state_last_pos = last;
    uint8_t buf[HOLD_REC_LEN_MAX];
    encode_record(&op, true, buf);
    return snapshot_add(args[1], PERSIST_HOLD, buf, hold_rec_len(r->n_lines));
}

int hold_snapshot(inv_engine *e, snapshot_writer *w)
{
    void *args[2] = {e, w};
    return table_foreach(&e->holds.by_id, snapshot_one, args);
}

/* ---- hold lines of batches ------------------------------------------------ */

int hold_claim_create(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                      const inv_hold_line *lines, size_t n, hold_claim *c)
{
    ordered_line ordered[INV_HOLD_LINES_MAX];
    int rc = create_args_ok(id, len, ttl_ms, lines, n, ordered);
    *c = (hold_claim){NULL, INV_HOLD_HELD, 0};
    if (rc == INV_OK)
        rc = claim_id(e, id, len, ttl_ms, ordered, n, &c->r, &c->ack_pos);
    assert(rc != INV_OK || c->r == NULL || load_state(c->r) == HOLD_PENDING);
    return rc;
}

int hold_claim_end(inv_engine *e, const char *id, size_t len, int to, hold_claim *c)
{
    assert(to == INV_HOLD_COMMITTED || to == INV_HOLD_RELEASED);
    *c = (hold_claim){NULL, to, 0};
    if (!id || len == 0)
        return INV_EINVALID;
    if (len > INV_HOLD_ID_MAX)
        return INV_ELIMIT;
    int rc;
    hold_record *r = find_record(e, id, len, &rc);
    while (r) {
        int st;
        int answer = held_or_answer(e, r, to, &st, &c->ack_pos);
        if (answer != HOLD_IS_HELD)
            return answer;
        if (to == INV_HOLD_COMMITTED && clock_wall_ms() >= r->expires_at_ms)
            return INV_ENOTFOUND; /* expired: the sweep ends it, not the batch */
        /* acq_rel: against commit, release, expiry and other batches, as
         * hold_end's CAS; the lines' statuses come with it. */
        if (atomic_compare_exchange_strong_explicit(&r->state, &st, HOLD_ENDING,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            c->r = r;
            return INV_OK;
        }
    }
    return rc;
}

size_t hold_claim_n_lines(const hold_claim *c)
{
    return c->r ? c->r->n_lines : 0;
}

bool hold_claim_line(const hold_claim *c, size_t i, inv_hold_line *out)
{
    assert(c->r && i < c->r->n_lines);
    const hold_line *l = &c->r->lines[i];
    *out = (inv_hold_line){l->item, l->location, l->qty};
    /* relaxed: the claim's owner alone changes a claimed hold's lines. */
    return c->to == INV_HOLD_HELD ||
           atomic_load_explicit(&l->status, memory_order_relaxed) == LINE_RESERVED;
}

uint32_t hold_claim_record_len(const hold_claim *c)
{
    return c->r ? hold_rec_len(c->r->n_lines) : 0;
}

void hold_claim_done(hold_claim *c, const bool *counted, uint64_t pos)
{
    hold_record *r = c->r;
    assert(r && state_transient(load_state(r)));
    for (size_t i = 0; i < r->n_lines; i++) {
        uint8_t st =
            c->to == INV_HOLD_HELD ? (counted[i] ? LINE_RESERVED : LINE_UNTRACKED) : LINE_ENDED;
        if (c->to != INV_HOLD_HELD &&
            atomic_load_explicit(&r->lines[i].status, memory_order_relaxed) != LINE_RESERVED)
            continue; /* untracked: nothing moved, it stays as it is */
        /* release: a snapshot that sees the status sees the level change. */
        atomic_store_explicit(&r->lines[i].status, st, memory_order_release);
    }
    if (c->to != INV_HOLD_HELD)
        /* relaxed: as in hold_end. */
        atomic_store_explicit(&r->ended_at_ms, clock_wall_ms(), memory_order_relaxed);
    /* release: the lines' statuses and level changes before the state, and
     * the state before the position (as op_publish: a snapshot reads the
     * position first). Set before the batch's final record is published,
     * for the reason hold_mark_held gives. */
    atomic_store_explicit(&r->state, c->to, memory_order_release);
    atomic_store_explicit(&r->last_pos, pos, memory_order_release);
}

void hold_claim_encode(inv_engine *e, const hold_claim *c, uint8_t *buf)
{
    hold_op op;
    op_init(&op, e, c->r, c->to == INV_HOLD_HELD ? HOLD_OP_CREATE : HOLD_OP_END, (uint8_t)c->to);
    encode_record(&op, true, buf);
}

void hold_claim_published(inv_engine *e, hold_claim *c, uint64_t pos)
{
    hold_record *r = c->r;
    assert(r && load_state(r) == c->to);
    /* release: a retry that reads it acknowledges on a record that exists. */
    if (c->to == INV_HOLD_HELD) {
        atomic_store_explicit(&r->created_pos, pos ? pos : 1, memory_order_release);
        hold_activate(e, r);
    } else {
        atomic_store_explicit(&r->end_pos, pos ? pos : 1, memory_order_release);
        count_end(&e->holds, c->to);
    }
}

void hold_claim_undo(inv_engine *e, hold_claim *c)
{
    hold_record *r = c->r;
    assert(r && state_transient(load_state(r)));
    if (c->to == INV_HOLD_HELD)
        hold_abort(e, r); /* as a failed create: removed, never on the wheel */
    else
        /* release: the units the batch gave back come before HELD. */
        atomic_store_explicit(&r->state, INV_HOLD_HELD, memory_order_release);
    c->r = NULL;
}

/* ---- recovery: the held lines (committed units are derived from them) ---- */

typedef struct {
    hold_line_fn fn;
    void *ctx;
} held_lines_ctx;

static int held_lines_one(void *p, uint64_t a, uint64_t b, table_word v)
{
    (void)a, (void)b;
    held_lines_ctx *c = p;
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    if (load_state(r) != INV_HOLD_HELD)
        return 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        /* acquire: as has_reserved_line. */
        if (atomic_load_explicit(&r->lines[i].status, memory_order_acquire) != LINE_RESERVED)
            continue;
        int rc = c->fn(c->ctx, r->lines[i].item, r->lines[i].location, r->lines[i].qty);
        if (rc)
            return rc;
    }
    return 0;
}

int hold_foreach_held_line(inv_engine *e, hold_line_fn fn, void *ctx)
{
    held_lines_ctx c = {fn, ctx};
    return table_foreach(&e->holds.by_id, held_lines_one, &c);
}
