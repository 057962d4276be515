/*
 * hold.c — reservations: create (all or nothing, with optional buyer and
 * order reference), commit (whole or part), release, extend, expiry, read
 * and listing, and per-buyer limits. The life of a record (see hold.h for
 * the state rules):
 *
 *   create: PENDING record claims the id in the table; with a buyer, the
 *           buyer's units are counted (buyer limits, below); the lines are
 *           reserved as one step (level_reserve_all: nobody sees a part of
 *           it, and a refusal on any line changes no level, not even a
 *           revision), then HELD and pushed on the timing wheel (or, when
 *           its tick is swept or nearly, on the wheel's intake, which every
 *           sweep drains); or the buyer units given back, ABORTED, removed,
 *           and retired by its creator (it never reached the wheel).
 *   change: a commit, release, expiry or extend first claims the HELD hold
 *           (CAS HELD -> ENDING); its owner then decides with the expiry
 *           time stable, stores the end's state (and, for a commit, the
 *           units sold per line) or HELD again (an extend, a refusal), and
 *           alone moves the units, every line in one step
 *           (level_unreserve_all). A partial commit sells the named units
 *           and returns the rest in the same step.
 *   forget: the background thread, the wheel's only consumer, removes an
 *           ended record from the table after HOLD_RETAIN_MS (and, with a
 *           buyer and sold units, not before the buyer window since its
 *           commit has passed) and retires it. A record replaced by a new
 *           hold with the same id is marked unlinked and retired the same
 *           way. So every record that reached the wheel is freed exactly
 *           once, by the background thread.
 *
 * Buyer limits. One counter per (buyer, item), in hold_book.by_buyer: the
 * units of the item the buyer's HELD holds reserve plus those its COMMITTED
 * holds sold within the buyer window. A create with a buyer adds its units
 * (one CAS per item, refused past the create's limit) after claiming its id
 * and before reserving any level, and gives them back if it fails. An end
 * gives back what it does not sell; the sweeper gives back the sold units
 * once the window since the commit has passed. A record's buyer_units says
 * which of its units the counters hold, so each is given back once. The
 * counters are not journaled: recovery counts them again from the holds
 * (a sold hold with a buyer is kept at least for the window, so it is in
 * every snapshot and journal that matters).
 */
#include "alloc.h"
#include "fault.h"
#include "hold.h"

#include "actor.h"
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

/* PENDING: a create is reserving its lines. ENDING: a change (an end, an
 * extend, a batch) has claimed the HELD hold and is deciding or moving its
 * units (it becomes the end's state, or HELD again). Both are transient:
 * every other change of the hold waits for them to settle (bounded). */
enum { HOLD_PENDING = 0, HOLD_ENDING = 98, HOLD_ABORTED = 99 };

static bool state_transient(int st)
{
    return st == HOLD_PENDING || st == HOLD_ENDING;
}

/* Asserts only: st is a state a record in memory can be in. */
static bool record_state_ok(int st)
{
    return st == HOLD_PENDING || st == HOLD_ENDING || st == HOLD_ABORTED ||
           (st >= INV_HOLD_HELD && st <= INV_HOLD_EXPIRED);
}

/* A line's status: what this hold's changes did to its level so far.
 * SOLD: a partial commit sold this line's committed units; the rest is
 * still reserved (it returns to available next, then the line is ENDED). */
enum {
    LINE_NONE = 0,
    LINE_RESERVED = 1,
    LINE_UNTRACKED = 2,
    LINE_GIVEN_BACK = 3,
    LINE_ENDED = 4,
    LINE_SOLD = 5
};

/* Which of a record's units the buyer counters hold. */
enum {
    BUYER_NONE = 0, /* none (no buyer, or not yet counted) */
    BUYER_HELD = 1, /* every line's units */
    BUYER_SOLD = 2, /* the units sold, until the window since the commit ends */
    BUYER_DONE = 3 /* none any more */
};

typedef struct {
    uint64_t item, location;
    int64_t qty;
    /* Units sold by a commit (0 otherwise): written by the owner of the
     * end while it holds the claim, read after acquiring COMMITTED. */
    _Atomic int64_t committed;
    _Atomic uint8_t status; /* written by the change's thread, read by snapshots */
} hold_line;

struct hold_record {
    _Atomic int state; /* HOLD_PENDING, HOLD_ENDING, HOLD_ABORTED or inv_hold_state */
    _Atomic int unlinked; /* no longer in the id table */
    _Atomic int64_t ended_at_ms;
    /* Changed only by the owner of a claim (an extend); read relaxed:
     * every decision on it is taken, or checked, under a claim. */
    _Atomic int64_t expires_at_ms;
    int64_t created_at_ms; /* set before the record is published */
    _Atomic uint64_t last_pos; /* journal position of its last record */
    /* The final record of its create, once published (1 when there is no
     * journal position to give): a retried create acknowledges on it. 0
     * until then, though the record is HELD a little earlier. */
    _Atomic uint64_t created_pos;
    /* The final record of its end (commit, release, expiry), once
     * published: a retried end acknowledges on it. 0 until then. */
    _Atomic uint64_t end_pos;
    /* BUYER_*: changed by the owner of the record's current change, and by
     * the sweeper once the record has ended. */
    _Atomic uint8_t buyer_units;
    uint8_t buyer_len; /* 0: no buyer */
    uint16_t order_ref_len;
    hold_record *wheel_next; /* written by a pusher before its release CAS */
    size_t id_len;
    char id[INV_HOLD_ID_MAX];
    /* Which hold of this id (issue 17): unique and growing per claim, so
     * replay tells an ended hold's late record from a newer hold's. Set
     * before the record is published in the id table. */
    uint64_t incarnation;
    size_t n_lines;
    hold_line lines[]; /* then the buyer id and the order reference */
};

_Static_assert(INV_BUYER_ID_MAX <= UINT8_MAX && INV_ORDER_REF_MAX <= UINT16_MAX,
               "attribute lengths fit the record's fields");

/* Asserts only: a line as a record keeps it: a quantity a create accepts
 * (order_lines; record_valid for a replayed one), a known status, and its
 * units conserved: the units sold within the line (the rest went back to
 * the level or is still held). Every value ever stored in these fields
 * keeps to this, so relaxed reads suffice: a check, not a decision. */
static bool hold_line_ok(const hold_line *l)
{
    hold_line *m = (hold_line *)l; /* the atomics' loads take no const */
    int64_t sold = atomic_load_explicit(&m->committed, memory_order_relaxed);
    uint8_t status = atomic_load_explicit(&m->status, memory_order_relaxed);
    return l->qty >= 1 && l->qty <= INV_QTY_MAX && status <= LINE_SOLD && sold >= 0 &&
           sold <= l->qty;
}

/* Asserts only: r as record_new or record_from built it: an id and its
 * attributes within their limits, between one line and
 * INV_HOLD_LINES_MAX, each line whole (hold_line_ok), a known state and
 * buyer_units (relaxed reads: see hold_line_ok). O(lines): used where the
 * caller walks the lines anyway, never per level word. */
static bool hold_record_ok(const hold_record *r)
{
    hold_record *m = (hold_record *)r;
    if (r == NULL || r->id_len == 0 || r->id_len > INV_HOLD_ID_MAX || r->n_lines == 0 ||
        r->n_lines > INV_HOLD_LINES_MAX || r->buyer_len > INV_BUYER_ID_MAX ||
        r->order_ref_len > INV_ORDER_REF_MAX ||
        !record_state_ok(atomic_load_explicit(&m->state, memory_order_relaxed)) ||
        atomic_load_explicit(&m->buyer_units, memory_order_relaxed) > BUYER_DONE)
        return false;
    for (size_t i = 0; i < r->n_lines; i++)
        if (!hold_line_ok(&r->lines[i]))
            return false;
    return true;
}
typedef struct {
    inv_hold_line line;
    size_t index; /* in the caller's order */
} ordered_line;

static size_t record_size(size_t n_lines, size_t attrs_len)
{
    assert(n_lines >= 1 && n_lines <= INV_HOLD_LINES_MAX);
    assert(attrs_len <= INV_BUYER_ID_MAX + INV_ORDER_REF_MAX);
    return sizeof(hold_record) + n_lines * sizeof(hold_line) + attrs_len;
}

static char *record_attrs(hold_record *r)
{
    assert(r->n_lines >= 1 && r->n_lines <= INV_HOLD_LINES_MAX);
    /* the attributes fit what record_size allocated after the lines */
    assert(r->buyer_len <= INV_BUYER_ID_MAX && r->order_ref_len <= INV_ORDER_REF_MAX);
    return (char *)(r->lines + r->n_lines);
}

static const char *record_buyer(const hold_record *r)
{
    assert(r->n_lines >= 1 && r->n_lines <= INV_HOLD_LINES_MAX);
    return (const char *)(r->lines + r->n_lines);
}

static const char *record_order_ref(const hold_record *r)
{
    assert(r->buyer_len <= INV_BUYER_ID_MAX && r->order_ref_len <= INV_ORDER_REF_MAX);
    return record_buyer(r) + r->buyer_len;
}

static void hold_key(const char *id, size_t len, uint64_t *a, uint64_t *b)
{
    /* every caller checked the id first (id_ok, create_args_ok, record_valid) */
    assert(id != NULL && len >= 1 && len <= INV_HOLD_ID_MAX);
    XXH128_hash_t h = XXH3_128bits(id, len);
    *a = h.low64;
    *b = h.high64;
}

static int load_state(hold_record *r)
{
    /* acquire: a settled state comes with the level changes (and the
     * expiry, the units sold) written before its release store. */
    int st = atomic_load_explicit(&r->state, memory_order_acquire);
    assert(record_state_ok(st));
    return st;
}

/* The state a reader is shown: a hold being ended stays HELD until its
 * end's level changes are made and published (end_pos, stored with release
 * after them), so that no reader sees a hold ended while its units still
 * show as reserved on the levels. */
static int reported_state(hold_record *r)
{
    int st = load_state(r);
    if (st == HOLD_ENDING)
        return INV_HOLD_HELD;
    /* acquire: pairs with hold_end's release store of end_pos, made after
     * the level changes. */
    if ((st == INV_HOLD_COMMITTED || st == INV_HOLD_RELEASED || st == INV_HOLD_EXPIRED) &&
        atomic_load_explicit(&r->end_pos, memory_order_acquire) == 0)
        return INV_HOLD_HELD;
    assert(st != HOLD_ENDING); /* a claim never shows */
    return st;
}

static int64_t expires_of(hold_record *r)
{
    /* relaxed: see the field; a caller that acts on it holds a claim, or
     * read the state (acquire) first. */
    return atomic_load_explicit(&r->expires_at_ms, memory_order_relaxed);
}

static int64_t committed_of(hold_line *l)
{
    /* relaxed: read by the claim's owner, or after acquiring COMMITTED. */
    int64_t sold = atomic_load_explicit(&l->committed, memory_order_relaxed);
    assert(sold >= 0 && sold <= l->qty); /* set_sold and line_valid keep it so */
    return sold;
}

static int64_t buyer_window_ms(const inv_engine *e)
{
    /* Bounded as the u64 it is configured as: one above INT64_MAX read as
     * int64 would be a negative window (sold units given back at once). */
    uint64_t cfg = e->cfg.buyer_window_ms ? e->cfg.buyer_window_ms : INV_BUYER_WINDOW_MS_DEFAULT;
    int64_t w = cfg < (uint64_t)HOLD_BUYER_WINDOW_MS_MAX ? (int64_t)cfg : HOLD_BUYER_WINDOW_MS_MAX;
    assert(w > 0 && w <= HOLD_BUYER_WINDOW_MS_MAX);
    return w;
}

/* FAULT_HOLD_SNAPSHOT's points (fault.h), its arg: a snapshot read a
 * hold's state (arg2), not yet its lines; it encoded them; an end stored
 * line arg2 SOLD, not yet ENDED. A test races the two there. */
enum { HOLD_SNAP_POINT_STATE = 1, HOLD_SNAP_POINT_ENCODED = 2, HOLD_SNAP_POINT_LINE_SOLD = 3 };

/* Reaches a test point (fault.h): a load and a branch where no test runs. */
static inline void hold_hook(hold_test_point at, uint64_t pos)
{
    (void)fault_check_arg(FAULT_HOLD_POINT, (uint64_t)at, pos);
}

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
    assert(slot != NULL && r != NULL);
    hold_record *head = atomic_load_explicit(slot, memory_order_relaxed);
    do {
        /* A record is on one stack once: never below itself. Checked
         * before the CAS: once it lands, r is the sweeper's (it may pop
         * and push it again at once), so nothing of r is read after. */
        assert(head != r);
        r->wheel_next = head;
        /* release: the record is complete before the sweeper can pop it. */
    } while (!atomic_compare_exchange_weak_explicit(slot, &head, r, memory_order_release,
                                                    memory_order_relaxed));
}

/* The sweeper's push (or recovery's, before the sweeper runs): the tick of
 * due_ms is never one it has swept already. */
static void wheel_push(hold_book *hb, hold_record *r, int64_t due_ms)
{
    assert(hb->wheel != NULL);
    /* only created holds reach the wheel (an aborted create is retired by
     * its creator; a PENDING one is not yet pushed) */
    assert(load_state(r) != HOLD_PENDING && load_state(r) != HOLD_ABORTED);
    stack_push(&hb->wheel[(uint64_t)(due_ms / HOLD_WHEEL_TICK_MS) % HOLD_WHEEL_SLOTS], r);
}

/* A creator's push, racing the sweeper: a hold whose due tick is swept, or
 * may be by the time the push lands, goes to the intake instead of waiting
 * a whole wheel turn in a swept slot. */
static void wheel_push_racing(hold_book *hb, hold_record *r)
{
    assert(hb->wheel != NULL && r != NULL);
    /* relaxed: only compared against a margin (HOLD_WHEEL_INTAKE_MS) that
     * dwarfs how stale the value can be; no data comes with it. */
    int64_t next_ms =
        atomic_load_explicit(&hb->wheel_next_tick, memory_order_relaxed) * HOLD_WHEEL_TICK_MS;
    assert(next_ms >= 0); /* a tick of the wall clock, or 0 before the first sweep */
    if (expires_of(r) - next_ms < HOLD_WHEEL_INTAKE_MS)
        stack_push(&hb->wheel_intake, r);
    else
        wheel_push(hb, r, expires_of(r));
}

static void free_stack(hold_record *r)
{
    while (r) {
        hold_record *next = r->wheel_next;
        assert(next != r); /* stack_push's postcondition */
        free(r);
        r = next;
    }
}

int hold_init(inv_engine *e)
{
    assert(e != NULL && e->holds.wheel == NULL); /* once per engine */
    hold_book *hb = &e->holds;
    hb->wheel = inv_calloc(HOLD_WHEEL_SLOTS, sizeof *hb->wheel);
    if (!hb->wheel)
        return INV_ENOMEM;
    int rc = table_init(&hb->by_id, e->cfg.holds_capacity, e);
    if (rc == INV_OK) {
        rc = table_init(&hb->by_buyer, 0, e);
        if (rc != INV_OK)
            table_destroy(&hb->by_id);
    }
    if (rc != INV_OK) {
        free(hb->wheel);
        hb->wheel = NULL;
    }
    assert((rc == INV_OK) == (hb->wheel != NULL));
    return rc;
}

static int free_record(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    (void)ctx, (void)a, (void)b;
    assert(table_is_live(v)); /* table_foreach visits live entries only */
    free((hold_record *)(uintptr_t)v.w0);
    return 0;
}

void hold_destroy(inv_engine *e)
{
    hold_book *hb = &e->holds;
    if (!hb->wheel)
        return;
    /* relaxed: no other thread is left. A replica's records were replayed
     * and never put on the wheel (its promotion does that), so the table
     * is their only owner. */
    if (atomic_load_explicit(&e->replica, memory_order_relaxed))
        (void)table_foreach(&hb->by_id, free_record, NULL);
    /* acquire: the records pushed (by now stopped threads) are complete. */
    for (size_t i = 0; i < HOLD_WHEEL_SLOTS; i++)
        free_stack(atomic_load_explicit(&hb->wheel[i], memory_order_acquire));
    free_stack(atomic_load_explicit(&hb->wheel_intake, memory_order_acquire));
    free(hb->wheel);
    hb->wheel = NULL;
    table_destroy(&hb->by_id);
    table_destroy(&hb->by_buyer);
    /* relaxed (assert only): no other thread is left. */
    assert(atomic_load_explicit(&hb->by_id.current, memory_order_relaxed) == NULL);
}

/* ---- lines and attributes --------------------------------------------------- */

static int cmp_ordered(const void *x, const void *y)
{
    const inv_hold_line *a = &((const ordered_line *)x)->line;
    const inv_hold_line *b = &((const ordered_line *)y)->line;
    if (a->item != b->item)
        return a->item < b->item ? -1 : 1;
    return a->location < b->location ? -1 : a->location > b->location;
}

/* Validates and sorts the caller's lines into out (the canonical order). */
/* Asserts only: lines in the canonical order, strictly increasing by
 * (item, location) (so each item's lines are consecutive: buyer_items). */
static bool ordered_ok(const ordered_line *lines, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (cmp_ordered(&lines[i - 1], &lines[i]) >= 0)
            return false;
    return true;
}

static int order_lines(const inv_hold_line *lines, size_t n, ordered_line *out)
{
    assert(lines != NULL && out != NULL && n >= 1 && n <= INV_HOLD_LINES_MAX);
    for (size_t i = 0; i < n; i++) {
        if (lines[i].qty < 1 || lines[i].qty > INV_QTY_MAX)
            return INV_EINVALID;
        out[i] = (ordered_line){lines[i], i};
    }
    qsort(out, n, sizeof *out, cmp_ordered);
    for (size_t i = 1; i < n; i++)
        if (cmp_ordered(&out[i - 1], &out[i]) == 0)
            return INV_EINVALID; /* one (item, location) twice */
    assert(ordered_ok(out, n));
    return INV_OK;
}

/* A create's optional attributes (NULL: none): lengths within their
 * limits, no NUL byte (they are read back as C strings), a limit only
 * with a buyer. */
static int opts_ok(const inv_hold_opts *o)
{
    if (!o)
        return INV_OK;
    if ((o->buyer_len && !o->buyer) || (o->order_ref_len && !o->order_ref) || o->buyer_limit < 0 ||
        (o->buyer_limit > 0 && o->buyer_len == 0))
        return INV_EINVALID;
    if (o->buyer_len > INV_BUYER_ID_MAX || o->order_ref_len > INV_ORDER_REF_MAX ||
        o->buyer_limit > INV_QTY_MAX)
        return INV_ELIMIT;
    if ((o->buyer_len && memchr(o->buyer, '\0', o->buyer_len)) ||
        (o->order_ref_len && memchr(o->order_ref, '\0', o->order_ref_len)))
        return INV_EINVALID;
    /* accepted: what record_new copies fits the record's fields */
    assert(o->buyer_len <= INV_BUYER_ID_MAX && o->order_ref_len <= INV_ORDER_REF_MAX);
    return INV_OK;
}

static const inv_hold_opts no_opts = {NULL, 0, 0, NULL, 0};

/* The same create: the same lines and attributes (a retry). */
static bool same_create(const hold_record *r, const ordered_line *lines, size_t n,
                        const inv_hold_opts *o)
{
    assert(hold_record_ok(r) && o != NULL);
    assert(ordered_ok(lines, n)); /* both in the canonical order */
    if (r->n_lines != n || r->buyer_len != o->buyer_len || r->order_ref_len != o->order_ref_len ||
        memcmp(record_buyer(r), o->buyer ? o->buyer : "", o->buyer_len) != 0 ||
        memcmp(record_order_ref(r), o->order_ref ? o->order_ref : "", o->order_ref_len) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (r->lines[i].item != lines[i].line.item ||
            r->lines[i].location != lines[i].line.location || r->lines[i].qty != lines[i].line.qty)
            return false;
    return true;
}

/* Maps a partial commit's lines onto r's: sold[i], the units of r's line
 * i sold. A line r lacks, a quantity outside 1 .. that line's, or a line
 * named twice: INVALID. n 0: every unit. O(n * lines), both at most
 * INV_HOLD_LINES_MAX. */
/* Asserts only: sold[] sells, per line of r, between none and the
 * line's units (a commit's units, set_sold's input). */
static bool sold_ok(const hold_record *r, const int64_t *sold)
{
    for (size_t i = 0; i < r->n_lines; i++)
        if (sold[i] < 0 || sold[i] > r->lines[i].qty)
            return false;
    return true;
}

static int map_sold(const hold_record *r, const inv_hold_line *lines, size_t n, int64_t *sold)
{
    assert(r != NULL && sold != NULL && (n == 0 || lines != NULL));
    assert(n <= INV_HOLD_LINES_MAX); /* sold_lines_ok */
    for (size_t i = 0; i < r->n_lines; i++)
        sold[i] = n ? 0 : r->lines[i].qty;
    for (size_t j = 0; j < n; j++) {
        size_t i = 0;
        while (i < r->n_lines &&
               (r->lines[i].item != lines[j].item || r->lines[i].location != lines[j].location))
            i++;
        if (i == r->n_lines || sold[i] != 0 || lines[j].qty < 1 || lines[j].qty > r->lines[i].qty)
            return INV_EINVALID;
        sold[i] = lines[j].qty;
    }
    assert(sold_ok(r, sold));
    return INV_OK;
}

/* ---- a change and its journal records ------------------------------------ */

enum { HOLD_OP_CREATE = 1, HOLD_OP_END = 2, HOLD_OP_STATE = 3, HOLD_OP_EXTEND = 4 };

/* Record formats (the header's version): 0, the first, has no committed
 * units per line (a commit sold every unit) and no attribute tail; 1 adds
 * both; 2 adds the actor (the tail's actor_len and bytes, zero in 1) and an
 * extend's time (in ended_at_ms); 3 adds the hold's incarnation (a u64
 * after the tail; older formats read as incarnation 0). All are read; 3 is
 * written. */
enum { HOLD_REC_V0 = 0, HOLD_REC_V1 = 1, HOLD_REC_V2 = 2, HOLD_REC_V3 = 3 };

/* Level images a record may carry per line: a line may be changed twice
 * within one record (taken and given back by an aborted create; sold in
 * part and returned), one image each. */
#define HOLD_IMAGES_PER_LINE 2

/* One record: header, every line with its status, up to
 * HOLD_IMAGES_PER_LINE level images per line, then (version >= 1) the
 * tail: created_at, the attributes' lengths and bytes (version 2: the
 * actor's too). Fixed size per change of a hold (the hold's attributes and
 * its changer's actor), so a reservation fits every record of it. */
typedef struct {
    uint8_t kind, target, final, id_len;
    uint16_t n_lines, n_images;
    uint32_t version;
    int64_t expires_at_ms;
    uint64_t last_pos; /* HOLD_OP_STATE: the hold's last record */
    /* an ended hold's end (0: not ended); HOLD_OP_EXTEND (version 2): when
     * the extend was made */
    int64_t ended_at_ms;
    char id[INV_HOLD_ID_MAX];
} hold_rec_header;

typedef struct {
    uint64_t item, location;
    int64_t qty;
    uint32_t status; /* LINE_* (version 0: a u64, whose high half is 0) */
    uint32_t committed; /* version 1: units sold (<= qty) */
} hold_rec_line;

typedef struct {
    uint8_t line, effect, zero[6];
    uint64_t w0, w1;
} hold_rec_image;

typedef struct {
    int64_t created_at_ms;
    uint8_t buyer_len;
    uint8_t actor_len; /* version 2 (<= INV_ACTOR_MAX; 1: zero) */
    uint16_t order_ref_len;
    uint32_t zero32;
} hold_rec_tail; /* then the buyer id, order reference and (version 2) actor
                  * bytes, zero padded to 8 */

_Static_assert(sizeof(hold_rec_header) == 104 && sizeof(hold_rec_line) == 32 &&
                   sizeof(hold_rec_image) == 24 && sizeof(hold_rec_tail) == 16,
               "the journal format (docs/JOURNAL.md)");

/* The largest record (INV_HOLD_LINES_MAX lines, longest attributes): a
 * stack buffer's size. */
#define HOLD_REC_LEN_MAX                                                               \
    (sizeof(hold_rec_header) +                                                         \
     INV_HOLD_LINES_MAX *                                                              \
         (sizeof(hold_rec_line) + HOLD_IMAGES_PER_LINE * sizeof(hold_rec_image)) +     \
     sizeof(hold_rec_tail) + sizeof(uint64_t) + INV_BUYER_ID_MAX + INV_ORDER_REF_MAX + \
     INV_ACTOR_MAX + 8)

static uint32_t pad8(size_t n)
{
    uint32_t padded = (uint32_t)((n + 7u) & ~(size_t)7u);
    assert(padded >= n && padded - n < 8); /* attribute lengths are small */
    return padded;
}

/* Header, lines and images: where the tail starts. */
static uint32_t rec_fixed_len(size_t n_lines)
{
    assert(n_lines <= INV_HOLD_LINES_MAX);
    return (uint32_t)(sizeof(hold_rec_header) + n_lines * sizeof(hold_rec_line) +
                      HOLD_IMAGES_PER_LINE * n_lines * sizeof(hold_rec_image));
}

/* The tail's fixed part: format 3 adds the incarnation. */
static uint32_t rec_tail_len(uint32_t version)
{
    assert(version >= HOLD_REC_V1);
    return (uint32_t)(sizeof(hold_rec_tail) + (version >= HOLD_REC_V3 ? sizeof(uint64_t) : 0));
}

static uint32_t rec_len(size_t n_lines, size_t attrs_len, uint32_t version)
{
    assert(version <= HOLD_REC_V3);
    uint32_t len = rec_fixed_len(n_lines);
    return version >= HOLD_REC_V1 ? len + rec_tail_len(version) + pad8(attrs_len) : len;
}

/* The length of r's records written with an actor of actor_len bytes. */
static uint32_t record_len(const hold_record *r, size_t actor_len)
{
    assert(actor_len <= INV_ACTOR_MAX);
    uint32_t len =
        rec_len(r->n_lines, (size_t)r->buyer_len + r->order_ref_len + actor_len, HOLD_REC_V3);
    assert(len <= HOLD_REC_LEN_MAX);
    return len;
}

typedef struct {
    inv_engine *e;
    hold_record *r;
    uint64_t state_last_pos; /* HOLD_OP_STATE: the position read first */
    int64_t extended_at_ms; /* HOLD_OP_EXTEND: when it was made */
    /* who makes the change (inv_set_actor; none for the engine's own
     * records: recovery, snapshots, a batch's embedded holds) */
    const uint8_t *actor;
    size_t actor_len;
    uint8_t kind, target;
    uint64_t pos; /* the change's current position (0: memory mode) */
    uint64_t pos_last; /* the highest position it published */
    size_t n_images;
    /* An end's descriptor, had before the end is decided (level_spare_new):
     * a decided end cannot then fail for want of memory. */
    struct table_mcas *spare;
    hold_rec_image images[HOLD_IMAGES_PER_LINE * INV_HOLD_LINES_MAX];
} hold_op;

/* Asserts only: op as op_init and op_begin set it up and its changes keep
 * it: an engine and a record, a known kind and a target a record may be
 * written with, an actor within its limit, at most two images per line
 * (HOLD_IMAGES_PER_LINE), and a position only with a journal, one the
 * journal may have handed out. */
static bool hold_op_ok(const hold_op *op)
{
    return op != NULL && op->e != NULL && op->r != NULL && op->kind >= HOLD_OP_CREATE &&
           op->kind <= HOLD_OP_EXTEND && record_state_ok(op->target) && op->target != HOLD_ENDING &&
           op->actor_len <= INV_ACTOR_MAX && (op->actor_len == 0 || op->actor != NULL) &&
           op->n_images <= HOLD_IMAGES_PER_LINE * op->r->n_lines &&
           (op->pos == 0 ||
            (op->e->jr != NULL && op->pos >= JOURNAL_POSITION_FIRST && op->pos % 8u == 0));
}

/* The length of op's records. */
static uint32_t op_len(const hold_op *op)
{
    assert(hold_op_ok(op));
    return record_len(op->r, op->actor_len);
}

/* The status line l is written with in op's record. A snapshot of a hold
 * it read HELD or ENDING (written as HELD) shows the lines as they were
 * before the end: an end in progress may have stored a line SOLD (then
 * ENDED: op_end_lines, after the snapshot read the state) or ENDED
 * (hold_claim_done), and an end changes RESERVED lines only. The end's
 * record, at or after the snapshot's position and on disk before the
 * snapshot is committed (recovery_snapshot), replays the end over it. A
 * SOLD line under HELD is refused on load (line_valid), and with it the
 * whole snapshot: the data directory would not open. */
static uint8_t line_status(const hold_line *l);

static uint8_t encoded_status(const hold_op *op, hold_line *l)
{
    uint8_t status = line_status(l);
    if (op->kind == HOLD_OP_STATE && op->target == INV_HOLD_HELD &&
        (status == LINE_SOLD || status == LINE_ENDED))
        status = LINE_RESERVED;
    /* what line_valid accepts under the record's target */
    assert(status != LINE_SOLD || op->target == INV_HOLD_COMMITTED);
    return status;
}

static void encode_record(const hold_op *op, bool final, uint8_t *buf)
{
    assert(buf != NULL && hold_record_ok(op->r));
    hold_record *r = op->r;
    uint32_t len = op_len(op);
    hold_rec_header h;
    memset(&h, 0, sizeof h); /* the padding too: records are compared whole */
    h.kind = op->kind;
    h.target = op->target;
    h.final = final;
    h.id_len = (uint8_t)r->id_len;
    h.n_lines = (uint16_t)r->n_lines;
    h.n_images = (uint16_t)op->n_images;
    h.version = HOLD_REC_V3;
    h.expires_at_ms = expires_of(r);
    h.last_pos = op->state_last_pos;
    /* relaxed: written by the end's owner (this thread, or before the
     * state a snapshot acquired). An extend ends nothing: the field says
     * when it was made (the feed's time of the record). */
    h.ended_at_ms = op->kind == HOLD_OP_EXTEND
                        ? op->extended_at_ms
                        : atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed);
    assert(r->id_len <= sizeof h.id && r->id_len == (size_t)h.id_len);
    memcpy(h.id, r->id, r->id_len);
    memset(buf, 0, len);
    memcpy(buf, &h, sizeof h);
    hold_rec_line *lines = (hold_rec_line *)(buf + sizeof h);
    for (size_t i = 0; i < r->n_lines; i++)
        lines[i] = (hold_rec_line){
            r->lines[i].item, r->lines[i].location, r->lines[i].qty,
            encoded_status(op, &r->lines[i]),
            op->target == INV_HOLD_COMMITTED ? (uint32_t)committed_of(&r->lines[i]) : 0};
    memcpy(buf + sizeof h + r->n_lines * sizeof(hold_rec_line), op->images,
           op->n_images * sizeof(hold_rec_image));
    uint8_t *p = buf + rec_fixed_len(r->n_lines);
    hold_rec_tail t = {r->created_at_ms, r->buyer_len, (uint8_t)op->actor_len, r->order_ref_len, 0};
    memcpy(p, &t, sizeof t);
    memcpy(p + sizeof t, &r->incarnation, sizeof r->incarnation);
    p += rec_tail_len(HOLD_REC_V3);
    size_t attrs = (size_t)r->buyer_len + r->order_ref_len;
    memcpy(p, record_buyer(r), attrs);
    if (op->actor_len)
        memcpy(p + attrs, op->actor, op->actor_len);
    /* the bytes written end within the record (the rest is its padding) */
    assert(p + attrs + op->actor_len <= buf + len);
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
    op->extended_at_ms = 0;
    op->actor = NULL;
    op->actor_len = 0;
    op->kind = kind;
    op->target = target;
    op->pos = 0;
    op->pos_last = 0;
    op->n_images = 0;
    op->spare = NULL;
    assert(hold_op_ok(op));
}

/* Who makes a change: its caller (the thread's actor), or the engine
 * itself (recovery finishing a change: no actor). */
enum { BY_ENGINE = 0, BY_CALLER = 1 };

static int op_begin(hold_op *op, inv_engine *e, hold_record *r, uint8_t kind, uint8_t target,
                    int by)
{
    assert(by == BY_ENGINE || by == BY_CALLER);
    op_init(op, e, r, kind, target);
    if (by == BY_CALLER)
        op->actor_len = actor_get(&op->actor);
    if (e->jr && !persist_late_reserve() && (op->pos = persist_reserve(e, op_len(op))) == 0)
        return INV_EIO;
    assert(hold_op_ok(op)); /* the actor and position it took */
    return INV_OK;
}

static void op_abandon(hold_op *op)
{
    /* nothing of it was published: no image may be lost */
    assert(hold_op_ok(op) && op->n_images == 0);
    if (op->pos)
        persist_abandon(op->e, op->pos, op_len(op));
    op->pos = 0;
    level_spare_free(op->spare);
    op->spare = NULL;
    assert(op->pos == 0 && op->spare == NULL); /* nothing left to give back */
}

/* A hold change's lines met a revision at or above its position before
 * any of them took effect (level_position's renew): the position goes back
 * unused, and a new one (above every revision seen: positions are reserved
 * before their CAS) replaces it. No partial record: the change stays one
 * record. 0: the journal failed. */
static uint64_t op_renew(void *p)
{
    hold_op *op = p;
    assert(op->pos != 0 && op->n_images == 0);
    op_abandon(op);
    op->pos = persist_reserve(op->e, op_len(op));
    assert(hold_op_ok(op));
    return op->pos;
}

/* Publishes the record at op->pos (journal only). final: the change is
 * complete; else a partial record, and a new position is reserved. */
static int op_publish(hold_op *op, bool final)
{
    assert(hold_op_ok(op));
    uint32_t len = op_len(op);
    if (!op->pos && op->e->jr && persist_late_reserve() &&
        (op->pos = persist_late_position(op->e, PERSIST_HOLD, len)) == 0)
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
    if (rc == INV_OK && !final && op->kind == HOLD_OP_END)
        hold_hook(HOLD_TEST_END_PARTIAL, op->pos_last);
    if (rc == INV_OK && !final && !persist_late_reserve() &&
        (op->pos = persist_reserve(op->e, len)) == 0)
        rc = INV_EIO;
    /* published: its images went with it, and positions only grow */
    assert(op->n_images == 0 && (op->pos == 0 || op->pos > op->pos_last));
    return rc;
}

/* Notes line i's change in the record being built: its image (NULL: the
 * level did not change) and the line's new status. */
static void op_note_line(hold_op *op, size_t i, uint8_t effect, const table_word *image)
{
    assert(i < op->r->n_lines);
    assert(effect >= LINE_RESERVED && effect <= LINE_SOLD); /* a change, never NONE */
    if (image) {
        /* Each record gets at most two changes per line (see above). */
        assert(op->n_images < HOLD_IMAGES_PER_LINE * op->r->n_lines);
        op->images[op->n_images++] =
            (hold_rec_image){(uint8_t)i, effect, {0}, image->w0, image->w1};
    }
    /* release: a snapshot that sees the status sees the level change. */
    atomic_store_explicit(&op->r->lines[i].status, effect, memory_order_release);
}

static uint8_t line_status(const hold_line *l)
{
    /* acquire: pairs with op_line's release of the status. */
    uint8_t status = atomic_load_explicit(&l->status, memory_order_acquire);
    assert(status <= LINE_SOLD);
    return status;
}

/* Ends every line still counted (for an aborted create, gives it back).
 * A commit first sells each line's committed units (a line sold whole ends
 * there), then what is left of every line returns to available: two
 * passes, so that a partial commit costs one partial record (a level's
 * second change in one record needs a new position), not one per line. */
static int op_end_lines(hold_op *op)
{
    assert(hold_op_ok(op) && hold_record_ok(op->r));
    /* an end that was decided, or a create that is aborting */
    assert(op->target == HOLD_ABORTED ||
           (op->target >= INV_HOLD_COMMITTED && op->target <= INV_HOLD_EXPIRED));
    hold_record *r = op->r;
    bool commit = op->target == INV_HOLD_COMMITTED;
    uint8_t done = op->target == HOLD_ABORTED ? LINE_GIVEN_BACK : LINE_ENDED;
    /* Every line ends in one step (level_unreserve_all): nobody sees some
     * lines ended and others not. A line SOLD already (an end recovery
     * finishes) returns what is left; a RESERVED one sells its committed
     * units and returns the rest in the same change. */
    level_hold_line end[INV_HOLD_LINES_MAX];
    size_t which[INV_HOLD_LINES_MAX], n = 0;
    struct table_mcas *spare = op->spare;
    op->spare = NULL;
    for (size_t i = 0; i < r->n_lines; i++) {
        hold_line *l = &r->lines[i];
        uint8_t st = line_status(l);
        if (st != LINE_RESERVED && st != LINE_SOLD)
            continue;
        int64_t sold = commit ? committed_of(l) : 0;
        assert(st == LINE_SOLD ? sold > 0 && sold < l->qty : sold <= l->qty);
        int64_t sell = st == LINE_RESERVED ? sold : 0;
        end[n] = (level_hold_line){l->item, l->location, l->qty - sold, sell, 0, 0, {0, 0}};
        /* units conserved: what it sells now and what it returns never
         * exceed what the line holds */
        assert(end[n].qty >= 0 && sell <= l->qty - end[n].qty);
        which[n++] = i;
    }
    if (n == 0) {
        level_spare_free(spare);
        return INV_OK;
    }
    size_t failed;
    /* must finish: the end (or the create's give-back) is decided */
    level_position at = {op->pos, op_renew, op, spare, true};
    int rc = level_unreserve_all(op->e, end, n, &at, &failed);
    level_spare_free(at.spare); /* not taken: one line needs none */
    assert(at.pos == op->pos);
    for (size_t k = 0; rc == INV_OK && k < n; k++) {
        bool changed = end[k].result == LEVEL_LINE_CHANGED;
        const table_word *image = changed ? &end[k].image : NULL;
        /* A line sold in part shows both halves, as the feed reads them
         * (the units sold, then the rest returned), each with the word
         * the one change left. */
        if (changed && end[k].sold && end[k].qty) {
            op_note_line(op, which[k], LINE_SOLD, image);
            (void)fault_check_arg(FAULT_HOLD_SNAPSHOT, HOLD_SNAP_POINT_LINE_SOLD, which[k]);
        }
        op_note_line(op, which[k], done, image);
    }
    return rc;
}

/* ---- buyer limits (see the top of the file) -------------------------------- */

/* No counter goes above this, a limit-less buyer's included (INV_ELIMIT):
 * far above any real use, far below overflow. */
#define HOLD_BUYER_UNITS_MAX (INV_QTY_MAX * INV_HOLD_LINES_MAX * 1024LL)
/* Seed of the (item, buyer) key hash; the keys live in memory only. */
#define HOLD_BUYER_KEY_SEED 0x6275796572ULL

/* The counter's key: a 128-bit hash of (item, buyer id). Two pairs with
 * one hash would share a counter (each then counts the other's units:
 * refusals come early, never late). */
static void buyer_key(const hold_record *r, uint64_t item, uint64_t *a, uint64_t *b)
{
    assert(r->buyer_len > 0 && r->buyer_len <= INV_BUYER_ID_MAX); /* only with a buyer */
    uint8_t buf[sizeof item + INV_BUYER_ID_MAX];
    memcpy(buf, &item, sizeof item);
    memcpy(buf + sizeof item, record_buyer(r), r->buyer_len);
    XXH128_hash_t h = XXH3_128bits_withSeed(buf, sizeof item + r->buyer_len, HOLD_BUYER_KEY_SEED);
    *a = h.low64;
    *b = h.high64;
}

typedef struct {
    table *t;
    int64_t delta, limit; /* limit 0: none */
    int64_t seen; /* out: the units counted before */
} buyer_ctx;

/* counter += delta, refused (ELIMIT) past the limit; a counter that drops
 * to 0 becomes a tombstone, so a buyer's table holds live counters only. */
static int buyer_step(void *p, table_word cur, table_word *next)
{
    buyer_ctx *c = p;
    assert(c->delta != 0 && c->limit >= 0);
    c->seen = table_is_live(cur) ? (int64_t)cur.w0 : 0;
    /* a counter holds what its records' buyer_units say: never negative */
    assert(c->seen >= 0 && c->seen <= HOLD_BUYER_UNITS_MAX);
    int64_t after = c->seen + c->delta;
    if (c->delta > 0 && ((c->limit > 0 && after > c->limit) || after > HOLD_BUYER_UNITS_MAX))
        return INV_ELIMIT;
    /* Units are given back exactly as they were counted (buyer_units). */
    assert(after >= 0);
    if (after < 0)
        after = 0; /* defended: never below 0 */
    if (after == c->seen)
        return TABLE_STEP_KEEP;
    uint64_t base = table_version(cur) ? table_version(cur) : table_version_floor(c->t);
    *next =
        after ? (table_word){(uint64_t)after, base + 1} : (table_word){0, (base + 1) | TABLE_TOMB};
    return TABLE_STEP_WRITE;
}

/* Adds delta units to the counter of (r's buyer, item); *seen: the units
 * it held before. Lock-free: one CAS through table_update. */
static int buyer_add(inv_engine *e, const hold_record *r, uint64_t item, int64_t delta,
                     int64_t limit, int64_t *seen)
{
    assert(delta != 0 && seen != NULL);
    table *t = &e->holds.by_buyer;
    uint64_t a, b;
    buyer_key(r, item, &a, &b);
    buyer_ctx c = {t, delta, limit, 0};
    table_word out;
    int rc = table_update(t, a, b, delta > 0, NULL, buyer_step, &c, &out);
    *seen = c.seen;
    if (rc == TABLE_STEP_WRITE) {
        if (c.seen == 0 && table_is_live(out))
            table_note_created(t);
        else if (!table_is_live(out))
            table_note_deleted(t);
        return INV_OK;
    }
    /* a give-back never claims a key: its counter is live (buyer_units) */
    assert(rc != TABLE_UPDATE_NO_KEY || delta > 0 || c.seen == 0);
    return rc == TABLE_STEP_KEEP || rc == TABLE_UPDATE_NO_KEY ? INV_OK : rc;
}

/* Which units of a line a buyer change counts. */
typedef enum { UNITS_ALL, UNITS_UNSOLD, UNITS_SOLD } units_part;

static int64_t line_units(hold_line *l, units_part part)
{
    assert(part == UNITS_ALL || part == UNITS_UNSOLD || part == UNITS_SOLD);
    int64_t sold = committed_of(l);
    int64_t units = part == UNITS_ALL ? l->qty : part == UNITS_SOLD ? sold : l->qty - sold;
    assert(units >= 0 && units <= l->qty);
    return units;
}

/* A refused buyer count: r's first line of the item, and what the buyer
 * would hold of it. */
typedef struct {
    size_t line;
    int64_t would_hold;
} buyer_refusal;

/* Adds (sign 1) or gives back (sign -1) part of r's units, one counter per
 * item, for the lines before `end`. Lines are sorted by item, so each
 * item's lines are consecutive. An add over the limit stops, gives back
 * the items it added, and fills *why. */
static int buyer_items(inv_engine *e, hold_record *r, units_part part, int sign, int64_t limit,
                       size_t end, buyer_refusal *why)
{
    assert(sign == 1 || sign == -1);
    assert(r->buyer_len > 0 && end <= r->n_lines);
    for (size_t i = 0; i < end;) {
        size_t j = i;
        int64_t units = 0;
        for (; j < r->n_lines && r->lines[j].item == r->lines[i].item; j++)
            units += line_units(&r->lines[j], part);
        int64_t seen = 0;
        int rc = units ? buyer_add(e, r, r->lines[i].item, sign * units, limit, &seen) : INV_OK;
        if (rc != INV_OK) {
            assert(sign > 0); /* a give-back is never refused */
            if (why)
                *why = (buyer_refusal){i, seen + units};
            (void)buyer_items(e, r, part, -1, 0, i, NULL);
            return rc;
        }
        assert(j > i && units >= 0); /* one item's lines, at least one */
        i = j;
    }
    return INV_OK;
}

static uint8_t buyer_units_of(hold_record *r)
{
    /* acquire: pairs with the release that set it, after its counters. */
    uint8_t units = atomic_load_explicit(&r->buyer_units, memory_order_acquire);
    assert(units <= BUYER_DONE);
    return units;
}

static void set_buyer_units(hold_record *r, uint8_t to)
{
    /* BUYER_NONE is only ever the start; only a buyer's record counts */
    assert(to >= BUYER_HELD && to <= BUYER_DONE && r->buyer_len > 0);
    /* release: the counters changed before it (read by the sweeper). */
    atomic_store_explicit(&r->buyer_units, to, memory_order_release);
}

/* A create (r PENDING, ours) counts its units for its buyer, refused past
 * limit (0: none): failure names the caller's line of the item. */
static int buyer_take(inv_engine *e, hold_record *r, int64_t limit, const ordered_line *lines,
                      inv_hold_failure *failure)
{
    assert(load_state(r) == HOLD_PENDING && buyer_units_of(r) == BUYER_NONE);
    if (r->buyer_len == 0)
        return INV_OK;
    buyer_refusal why = {0, 0};
    int rc = buyer_items(e, r, UNITS_ALL, 1, limit, r->n_lines, &why);
    if (rc != INV_OK) {
        if (failure)
            *failure = (inv_hold_failure){lines[why.line].index, r->lines[why.line].item,
                                          r->lines[why.line].location, why.would_hold};
        return rc;
    }
    set_buyer_units(r, BUYER_HELD);
    assert(buyer_units_of(r) == BUYER_HELD);
    return INV_OK;
}

/* The owner of r's end, once its state is decided: the buyer keeps
 * counting only the units sold (until the window passes, sweep_record). */
static void buyer_end(inv_engine *e, hold_record *r, int decided)
{
    assert(decided >= INV_HOLD_COMMITTED && decided <= INV_HOLD_EXPIRED);
    assert(load_state(r) == decided); /* stored before, by the end's owner */
    if (buyer_units_of(r) != BUYER_HELD)
        return;
    bool sold = false;
    for (size_t i = 0; decided == INV_HOLD_COMMITTED && i < r->n_lines; i++)
        sold = sold || committed_of(&r->lines[i]) > 0;
    (void)buyer_items(e, r, decided == INV_HOLD_COMMITTED ? UNITS_UNSOLD : UNITS_ALL, -1, 0,
                      r->n_lines, NULL);
    set_buyer_units(r, sold ? BUYER_SOLD : BUYER_DONE);
}

/* A create that failed (r PENDING, ours) gives back what it counted. */
static void buyer_abort(inv_engine *e, hold_record *r)
{
    assert(load_state(r) == HOLD_PENDING); /* a create that failed, ours */
    if (buyer_units_of(r) != BUYER_HELD)
        return;
    (void)buyer_items(e, r, UNITS_ALL, -1, 0, r->n_lines, NULL);
    set_buyer_units(r, BUYER_DONE);
    assert(buyer_units_of(r) == BUYER_DONE);
}

static bool buyer_units_consistent(hold_record *r);
static bool has_unfinished_line(hold_record *r);

/* Recovery (single-threaded), once r's state is final: counts again what
 * the buyer counted before the restart. */
static int buyer_recount(inv_engine *e, hold_record *r, int64_t now_ms)
{
    assert(hold_record_ok(r) && now_ms > 0);
    if (r->buyer_len == 0)
        return INV_OK;
    int st = load_state(r);
    assert(!state_transient(st)); /* recovery: every change finished */
    bool sold = false;
    for (size_t i = 0; st == INV_HOLD_COMMITTED && i < r->n_lines; i++)
        sold = sold || committed_of(&r->lines[i]) > 0;
    /* relaxed: recovery is single-threaded. */
    int64_t ended = atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed);
    if (st == INV_HOLD_HELD || (sold && ended + buyer_window_ms(e) > now_ms)) {
        int rc =
            buyer_items(e, r, st == INV_HOLD_HELD ? UNITS_ALL : UNITS_SOLD, 1, 0, r->n_lines, NULL);
        if (rc != INV_OK)
            return rc;
        set_buyer_units(r, st == INV_HOLD_HELD ? BUYER_HELD : BUYER_SOLD);
    } else {
        set_buyer_units(r, BUYER_DONE);
    }
    assert(buyer_units_consistent(r)); /* what hold_verify_buyers checks */
    return INV_OK;
}

/* A create that cannot go on: reports the failing line (with the available
 * it saw when that was too little; 0 otherwise, so that a caller can tell
 * a level's refusal from a buyer limit's), gives back every line taken and
 * publishes the create as aborted. */
static int abort_create(hold_op *op, const ordered_line *lines, size_t i, int rc, int64_t seen,
                        inv_hold_failure *failure)
{
    assert(hold_op_ok(op) && op->kind == HOLD_OP_CREATE && i < op->r->n_lines);
    assert(rc != INV_OK); /* a refusal, passed on */
    if (failure)
        *failure = (inv_hold_failure){lines[i].index, op->r->lines[i].item,
                                      op->r->lines[i].location, rc == INV_EINSUFFICIENT ? seen : 0};
    op->target = HOLD_ABORTED;
    int undo = op_end_lines(op);
    /* every line taken is given back (nobody saw it: one step) */
    assert(undo != INV_OK || !has_unfinished_line(op->r));
    int fin = op_publish(op, true);
    return undo != INV_OK ? undo : fin != INV_OK ? fin : rc;
}

/* Reserves every line, all or nothing. Last, every line's item must still
 * exist: an item deletion that raced us either sees our reservation (and
 * refuses) or deleted the item first (and we give everything back), so no
 * HELD hold ever counts on a level of a deleted item. */
static int reserve_lines(hold_op *op, const ordered_line *lines, inv_hold_failure *failure)
{
    assert(hold_op_ok(op) && op->kind == HOLD_OP_CREATE && op->n_images == 0);
    assert(load_state(op->r) == HOLD_PENDING); /* ours until HELD */
    hold_record *r = op->r;
    level_hold_line take[INV_HOLD_LINES_MAX];
    for (size_t i = 0; i < r->n_lines; i++)
        take[i] = (level_hold_line){
            r->lines[i].item, r->lines[i].location, r->lines[i].qty, 0, 0, 0, {0, 0}};
    /* Every line in one step (level_reserve_all): a refusal on any line
     * leaves every level as it was, revision included. */
    size_t failed = 0;
    level_position at = {op->pos, op_renew, op, NULL, false}; /* may fail: nothing decided */
    int rc = level_reserve_all(op->e, take, r->n_lines, &at, &failed);
    assert(at.pos == op->pos);
    assert(rc == INV_OK || failed < r->n_lines); /* a refusal names its line */
    if (rc != INV_OK)
        return abort_create(op, lines, failed, rc, take[failed].available_seen, failure);
    for (size_t i = 0; i < r->n_lines; i++) {
        bool changed = take[i].result == LEVEL_LINE_CHANGED;
        /* an untracked level counts nothing: no image */
        op_note_line(op, i, changed ? LINE_RESERVED : LINE_UNTRACKED,
                     changed ? &take[i].image : NULL);
    }
    assert(op->n_images <= r->n_lines); /* a create changes each level once */
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
    assert(final_pos != NULL && pos_out != NULL);
    uint64_t t0_ns = clock_mono_ns();
    for (;;) {
        /* acquire: pairs with the release that stores the final position
         * (after the change's level changes, in memory mode too). */
        uint64_t pos = atomic_load_explicit(final_pos, memory_order_acquire);
        if (pos) {
            /* a position, or 1 for "none" (created_pos, end_pos) */
            assert(pos == 1 || pos >= JOURNAL_POSITION_FIRST);
            *pos_out = e->jr ? pos : 0; /* memory mode: nothing to acknowledge */
            return INV_OK;
        }
        if (clock_mono_ns() - t0_ns > HOLD_SETTLE_WAIT_MS * CLOCK_NS_PER_MS)
            return INV_EIO; /* the first call is stuck in the journal */
        sched_yield();
    }
}

/* ---- create --------------------------------------------------------------- */

static hold_record *record_new(const char *id, size_t len, uint64_t ttl_ms,
                               const ordered_line *lines, size_t n, const inv_hold_opts *o)
{
    assert(ttl_ms >= 1 && ttl_ms <= INV_HOLD_TTL_MS_MAX); /* create_args_ok */
    assert(ordered_ok(lines, n));
    hold_record *r = inv_calloc(1, record_size(n, o->buyer_len + o->order_ref_len));
    if (!r)
        return NULL;
    r->created_at_ms = clock_wall_ms();
    atomic_init(&r->expires_at_ms, r->created_at_ms + (int64_t)ttl_ms);
    r->id_len = len;
    memcpy(r->id, id, len);
    r->n_lines = n;
    for (size_t i = 0; i < n; i++)
        r->lines[i] = (hold_line){lines[i].line.item, lines[i].line.location, lines[i].line.qty, 0,
                                  LINE_NONE};
    r->buyer_len = (uint8_t)o->buyer_len;
    r->order_ref_len = (uint16_t)o->order_ref_len;
    if (o->buyer_len)
        memcpy(record_attrs(r), o->buyer, o->buyer_len);
    if (o->order_ref_len)
        memcpy(record_attrs(r) + o->buyer_len, o->order_ref, o->order_ref_len);
    assert(hold_record_ok(r) && load_state(r) == HOLD_PENDING); /* calloc: PENDING */
    return r;
}

static bool wait_not_pending(hold_record *r)
{
    assert(r != NULL);
    uint64_t t0_us = clock_mono_us();
    while (state_transient(load_state(r))) {
        if (clock_mono_us() - t0_us > HOLD_PENDING_WAIT_US)
            return false;
        sched_yield();
    }
    return true; /* settled: PENDING and ENDING never come back... */
}

/* What an existing record with this id means for a create: OK (a retry),
 * CONFLICT, or 1 to replace it (it ended: the id may be used again). */
static int existing_verdict(hold_record *old, const ordered_line *lines, size_t n,
                            const inv_hold_opts *o)
{
    assert(hold_record_ok(old));
    if (!wait_not_pending(old))
        return INV_ECONFLICT;
    int st = load_state(old);
    /* ...except ENDING, when a change claims it again meanwhile: any
     * state but PENDING (a published record's create is done) */
    assert(st != HOLD_PENDING);
    if (st == INV_HOLD_HELD || st == INV_HOLD_COMMITTED)
        return same_create(old, lines, n, o) ? INV_OK : INV_ECONFLICT;
    return 1;
}

/* A create whose lines are all reserved becomes HELD before its final
 * record is published: a snapshot that starts after the record is durable
 * (and so does not replay it) must not find the hold still PENDING, which
 * recovery would abort. A change built on HELD (a commit) reserves its
 * position after ours, so it is never durable before the create. */
static void hold_mark_held(hold_record *r)
{
    assert(load_state(r) == HOLD_PENDING); /* the create's own, marked once */
    /* release: the reserved lines happen before anyone acts on HELD. */
    atomic_store_explicit(&r->state, INV_HOLD_HELD, memory_order_release);
}

static void hold_activate(inv_engine *e, hold_record *r)
{
    hold_book *hb = &e->holds;
    /* created: its final record's position is set (1: none) */
    assert(atomic_load_explicit(&r->created_pos, memory_order_relaxed) != 0);
    assert(load_state(r) != HOLD_PENDING); /* marked HELD (and maybe ended since) */
    hold_hook(HOLD_TEST_BEFORE_WHEEL, 0);
    wheel_push_racing(hb, r);
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&hb->created, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hb->active, 1, memory_order_relaxed);
}

static void forget(inv_engine *e, hold_record *r);

/* A create that failed: its lines are already given back. Its buyer units
 * go back before ABORTED, so a create of the same id that waited for this
 * one counts on a settled counter. */
static void hold_abort(inv_engine *e, hold_record *r)
{
    assert(hold_record_ok(r));
    buyer_abort(e, r);
    assert(buyer_units_of(r) != BUYER_HELD); /* every unit given back */
    /* release: a waiter on PENDING sees the given-back lines first. */
    atomic_store_explicit(&r->state, HOLD_ABORTED, memory_order_release);
    forget(e, r);
    epoch_retire(r, free, e); /* never reached the wheel: ours to free */
}

/* ---- incarnations ---------------------------------------------------------
 * Every claim of an id draws a new incarnation from one process-wide
 * counter; recovery raises the counter above every incarnation it replays.
 * So a hold's incarnation is above that of every earlier hold of its id,
 * in this run and in the journal, and replay keeps a hold's records apart
 * from a late record of the hold the id named before (an end published
 * after the new hold's create, at a later position). Process-wide, not per
 * engine: uniqueness is all an engine needs, and it costs one counter. */
static _Atomic uint64_t incarnation_last;

/* The next incarnation; old: the ended hold the claim replaces (or NULL). */
static uint64_t incarnation_next(const hold_record *old)
{
    /* relaxed: uniqueness and order come from the counter's own
     * modification order; old's was drawn before old was published in the
     * table, which our step read. */
    uint64_t inc = atomic_fetch_add_explicit(&incarnation_last, 1, memory_order_relaxed) + 1;
    assert(inc != 0); /* 2^64 claims never happen */
    assert(!old || old->incarnation < inc);
    return inc;
}

/* Raises the counter to at least inc (recovery: a replayed incarnation). */
static void incarnation_seen(uint64_t inc)
{
    /* relaxed: engines recover before they serve; the raise only has to be
     * in the counter's modification order before their first claim. */
    uint64_t cur = atomic_load_explicit(&incarnation_last, memory_order_relaxed);
    while (cur < inc &&
           !atomic_compare_exchange_weak_explicit(&incarnation_last, &cur, inc,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    assert(atomic_load_explicit(&incarnation_last, memory_order_relaxed) >= inc);
}

/* claim_id's context: the create's arguments, and what its step saw. */
typedef struct {
    const char *id;
    size_t len;
    uint64_t ttl_ms;
    const ordered_line *lines;
    size_t n;
    const inv_hold_opts *opts;
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
    /* table_update_at hands a plain word: no growth flag, no descriptor */
    assert((cur.w1 & (TABLE_FROZEN | TABLE_DESC)) == 0);
    c->old = table_is_live(cur) ? (hold_record *)(uintptr_t)cur.w0 : NULL;
    if (c->old && (c->old->id_len != c->len || memcmp(c->old->id, c->id, c->len) != 0))
        return INV_ELIMIT; /* a 128-bit hash collision between two ids */
    if (c->old) {
        int verdict = existing_verdict(c->old, c->lines, c->n, c->opts);
        if (verdict == INV_OK)
            return TABLE_STEP_KEEP;
        if (verdict != 1)
            return verdict;
    }
    /* After a lost race, ours is reused (nobody else has seen it); its
     * time to live starts now, as a fresh record's would. */
    if (c->mine) {
        c->mine->created_at_ms = clock_wall_ms();
        /* relaxed: the record is not published yet. */
        atomic_store_explicit(&c->mine->expires_at_ms, c->mine->created_at_ms + (int64_t)c->ttl_ms,
                              memory_order_relaxed);
    } else if (!(c->mine = record_new(c->id, c->len, c->ttl_ms, c->lines, c->n, c->opts))) {
        return INV_ENOMEM;
    }
    assert(load_state(c->mine) == HOLD_PENDING); /* unpublished: nobody else changed it */
    /* Drawn after reading old (ended): so above its incarnation. */
    c->mine->incarnation = incarnation_next(c->old);
    *next = (table_word){(uintptr_t)c->mine, table_version(cur) + 1};
    assert(table_version(*next) <= TABLE_VERSION_MAX && table_is_live(*next));
    return TABLE_STEP_WRITE;
}

/* Claims id for a new hold: a PENDING record in the id table (*out), or,
 * when the same hold exists already, *out NULL and *ack_pos the record a
 * retry acknowledges on. */
static int claim_id(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                    const ordered_line *lines, size_t n, const inv_hold_opts *opts,
                    hold_record **out, uint64_t *ack_pos)
{
    assert(out != NULL && ack_pos != NULL && opts != NULL);
    uint64_t a, b;
    hold_key(id, len, &a, &b);
    claim_ctx c = {id, len, ttl_ms, lines, n, opts, NULL, NULL};
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
    assert(c.mine->incarnation != 0 && (!c.old || c.old->incarnation < c.mine->incarnation));
    return INV_OK;
}

static int create_in_table(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                           const ordered_line *lines, size_t n, const inv_hold_opts *opts,
                           inv_hold_failure *failure, uint64_t *pos_out)
{
    assert(e != NULL && opts != NULL && pos_out != NULL);
    hold_record *r;
    int rc = claim_id(e, id, len, ttl_ms, lines, n, opts, &r, pos_out);
    if (rc != INV_OK || !r)
        return rc;
    assert(load_state(r) == HOLD_PENDING && buyer_units_of(r) == BUYER_NONE);
    /* The buyer's units first, then the levels: a buyer over the limit
     * takes nothing from any level. */
    rc = buyer_take(e, r, opts->buyer_limit, lines, failure);
    hold_op op;
    if (rc == INV_OK)
        rc = op_begin(&op, e, r, HOLD_OP_CREATE, INV_HOLD_HELD, BY_CALLER);
    if (rc != INV_OK) {
        hold_abort(e, r);
        return rc;
    }
    rc = reserve_lines(&op, lines, failure);
    if (rc == INV_OK) {
        hold_mark_held(r);
        hold_hook(HOLD_TEST_HELD_UNPUBLISHED, op.pos);
        rc = op_publish(&op, true);
    }
    *pos_out = op.pos_last;
    if (rc != INV_OK && op.target == HOLD_ABORTED) {
        hold_abort(e, r);
        return rc;
    }
    /* Created, possibly without its record (EIO: the units are held in
     * memory): marked HELD before the publish, and not again here, since
     * from that mark on another call may have claimed and ended it (a
     * second HELD would undo that end). */
    assert(op.target == INV_HOLD_HELD && load_state(r) != HOLD_PENDING);
    /* release: after the final publish (or its failure), so a retry
     * that reads it acknowledges on a record that exists. */
    atomic_store_explicit(&r->created_pos, op.pos_last ? op.pos_last : 1, memory_order_release);
    hold_activate(e, r);
    return rc;
}

/* The checks every create makes on its arguments; sorts the lines into
 * ordered (the canonical order). */
static int create_args_ok(const char *hold_id, size_t hold_id_len, uint64_t ttl_ms,
                          const inv_hold_line *lines, size_t n_lines, const inv_hold_opts *opts,
                          ordered_line *ordered)
{
    if (!hold_id || hold_id_len == 0 || !lines || n_lines == 0 || ttl_ms == 0)
        return INV_EINVALID;
    if (hold_id_len > INV_HOLD_ID_MAX || n_lines > INV_HOLD_LINES_MAX ||
        ttl_ms > INV_HOLD_TTL_MS_MAX)
        return INV_ELIMIT;
    assert(ordered != NULL);
    int rc = opts_ok(opts);
    rc = rc == INV_OK ? order_lines(lines, n_lines, ordered) : rc;
    /* accepted: within what record_new and claim_id assume */
    assert(rc != INV_OK || (hold_id_len <= INV_HOLD_ID_MAX && n_lines <= INV_HOLD_LINES_MAX &&
                            ttl_ms >= 1 && ttl_ms <= INV_HOLD_TTL_MS_MAX));
    return rc;
}

int inv_hold_create_ex(inv_engine *e, const char *hold_id, size_t hold_id_len, uint64_t ttl_ms,
                       const inv_hold_line *lines, size_t n_lines, const inv_hold_opts *opts,
                       inv_hold_failure *failure)
{
    if (!e)
        return INV_EINVALID;
    ordered_line ordered[INV_HOLD_LINES_MAX];
    int rc = create_args_ok(hold_id, hold_id_len, ttl_ms, lines, n_lines, opts, ordered);
    if (rc != INV_OK)
        return rc;
    uint64_t pos = 0;
    epoch_enter();
    rc = create_in_table(e, hold_id, hold_id_len, ttl_ms, ordered, n_lines, opts ? opts : &no_opts,
                         failure, &pos);
    epoch_exit();
    assert(pos == 0 || e->jr != NULL); /* a position only with a journal */
    assert(rc <= INV_OK);
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

int inv_hold_create(inv_engine *e, const char *hold_id, size_t hold_id_len, uint64_t ttl_ms,
                    const inv_hold_line *lines, size_t n_lines, inv_hold_failure *failure)
{
    int rc = inv_hold_create_ex(e, hold_id, hold_id_len, ttl_ms, lines, n_lines, NULL, failure);
    assert(rc <= INV_OK); /* INV_OK or a negative INV_E* code */
    return rc;
}

/* ---- claims of HELD holds: what ends and extends share ------------------------ */

static hold_record *find_record(inv_engine *e, const char *id, size_t len, int *rc)
{
    assert(e != NULL && rc != NULL);
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
    /* a live entry names a whole record (claim_step, install_step) */
    assert(r->n_lines >= 1 && r->n_lines <= INV_HOLD_LINES_MAX);
    return r;
}

/* What a change of a HELD hold asks for: an end (to: INV_HOLD_COMMITTED,
 * _RELEASED or _EXPIRED; sold: a commit's units per line of the record,
 * NULL for every unit) or an extend (to: HOLD_CLAIM_EXTEND). */
typedef struct {
    int to;
    const int64_t *sold;
} change_req;

/* A committed r sold what req sells (a retried commit). */
static bool same_sold(hold_record *r, const change_req *req)
{
    assert(req->to == INV_HOLD_COMMITTED && load_state(r) == INV_HOLD_COMMITTED);
    assert(req->sold == NULL || sold_ok(r, req->sold));
    for (size_t i = 0; i < r->n_lines; i++)
        if (committed_of(&r->lines[i]) != (req->sold ? req->sold[i] : r->lines[i].qty))
            return false;
    return true;
}

/* The answer for req on a record already in state st: a retried commit
 * (the same units) or release is OK; another commit of a committed hold,
 * a release or extend of one: CONFLICT; a commit or extend of an ended or
 * aborted hold: NOTFOUND. */
static int settled_answer(hold_record *r, int st, const change_req *req)
{
    /* settled and not HELD: the caller waited out PENDING and ENDING */
    assert(!state_transient(st) && st != INV_HOLD_HELD);
    switch (st) {
    case INV_HOLD_COMMITTED:
        return req->to == INV_HOLD_COMMITTED && same_sold(r, req) ? INV_OK : INV_ECONFLICT;
    case INV_HOLD_RELEASED:
    case INV_HOLD_EXPIRED:
        return req->to == INV_HOLD_COMMITTED || req->to == HOLD_CLAIM_EXTEND ? INV_ENOTFOUND
                                                                             : INV_OK;
    default:
        assert(st == HOLD_ABORTED);
        return INV_ENOTFOUND; /* aborted */
    }
}

/* The state a change finds r in, once it is not transient (waited for,
 * bounded): HOLD_IS_HELD with *st HELD, the caller's to claim; else the
 * answer for req, a retry acknowledging on the end's final record
 * (*ack_pos). */
#define HOLD_IS_HELD 1

static inline int held_or_answer(inv_engine *e, hold_record *r, const change_req *req, int *st,
                                 uint64_t *ack_pos)
{
    assert(req->to == HOLD_CLAIM_EXTEND ||
           (req->to >= INV_HOLD_COMMITTED && req->to <= INV_HOLD_EXPIRED));
    while (state_transient(*st = load_state(r)))
        if (!wait_not_pending(r))
            return INV_ECONFLICT;
    if (*st == INV_HOLD_HELD)
        return HOLD_IS_HELD;
    int answer = settled_answer(r, *st, req);
    assert(answer != HOLD_IS_HELD);
    if (*st == HOLD_ABORTED)
        return answer;
    /* Ended by another call: answered once that end's level changes are
     * made (end_pos), as readers are shown it (reported_state), a refusal
     * too: a commit that lost to an expiry never answers while the units
     * still show as reserved. */
    uint64_t ack = 0;
    int rc = settled_ack(e, &r->end_pos, &ack);
    if (rc == INV_OK && answer == INV_OK)
        *ack_pos = ack;
    return rc == INV_OK ? answer : rc;
}

/* HELD -> ENDING: r is ours until we store its next state. acq_rel:
 * against every other change of r (exactly one claim wins); the lines'
 * statuses and the expiry come with it. */
static bool claim_held(hold_record *r, int st)
{
    assert(st == INV_HOLD_HELD);
    bool won = atomic_compare_exchange_strong_explicit(&r->state, &st, HOLD_ENDING,
                                                       memory_order_acq_rel, memory_order_acquire);
    /* Lost: another change claimed it (ENDING) or ended it since; st is
     * the state that beat us, never HELD again without a claim. */
    assert(won || st != INV_HOLD_HELD);
    return won;
}

/* A claim given back unchanged (or with a new expiry: an extend). */
static void unclaim(hold_record *r)
{
    assert(load_state(r) == HOLD_ENDING);
    /* nothing sold by a claim given back (set_sold's RELEASED, or never set) */
    assert(r->n_lines >= 1 && committed_of(&r->lines[0]) == 0);
    /* release: a new expiry is written before HELD. */
    atomic_store_explicit(&r->state, INV_HOLD_HELD, memory_order_release);
}

/* Sets the units each line sells (0 unless a commit) on a claimed r. */
static void set_sold(hold_record *r, int to, const int64_t *sold)
{
    /* the claim's owner alone writes the units sold */
    assert(load_state(r) == HOLD_ENDING);
    assert(sold == NULL || sold_ok(r, sold));
    for (size_t i = 0; i < r->n_lines; i++)
        /* relaxed: published by the release of the end's state. */
        atomic_store_explicit(&r->lines[i].committed,
                              to != INV_HOLD_COMMITTED ? 0
                              : sold                   ? sold[i]
                                                       : r->lines[i].qty,
                              memory_order_relaxed);
}

/* ---- end: commit (whole or part), release, expire ------------------------------- */

static void count_end(hold_book *hb, int to)
{
    assert(to >= INV_HOLD_COMMITTED && to <= INV_HOLD_EXPIRED);
    _Atomic uint64_t *counter = to == INV_HOLD_COMMITTED  ? &hb->committed
                                : to == INV_HOLD_RELEASED ? &hb->released
                                                          : &hb->expired;
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&hb->active, 1, memory_order_relaxed);
}

/* hold_end's answer when an expiry finds the hold's time moved on (an
 * extend won the race): the sweeper looks again then. */
#define HOLD_NOT_DUE 2

/* Ends a HELD hold: commit, release or expiry (now_ms: the sweeper's time;
 * 0: the clock's). The end's journal position is reserved before the claim
 * that decides it, so a snapshot or a retry that sees the decision also
 * finds its record below the tail. Under the claim the expiry time is
 * stable: a commit at or after it expires the hold instead, an expiry
 * before it (an extend came first) gives the claim back. */
static int hold_end(inv_engine *e, hold_record *r, const change_req *req, int64_t now_ms,
                    uint64_t *pos_out)
{
    assert(req->to == INV_HOLD_COMMITTED || req->to == INV_HOLD_RELEASED ||
           req->to == INV_HOLD_EXPIRED);
    assert(hold_record_ok(r) && pos_out != NULL);
    assert(req->sold == NULL || req->to == INV_HOLD_COMMITTED); /* only a commit sells in part */
    for (;;) {
        int st;
        int answer = held_or_answer(e, r, req, &st, pos_out);
        if (answer != HOLD_IS_HELD)
            return answer;
        hold_op op;
        int rc = op_begin(&op, e, r, HOLD_OP_END, (uint8_t)req->to, BY_CALLER);
        if (rc != INV_OK)
            return rc;
        bool nomem;
        op.spare = level_spare_new(r->n_lines, &nomem);
        if (nomem) {
            op_abandon(&op);
            return INV_ENOMEM; /* nothing decided, nothing changed */
        }
        if (!claim_held(r, st)) {
            op_abandon(&op);
            continue;
        }
        assert(load_state(r) == HOLD_ENDING); /* ours until we store its next state */
        int64_t now = now_ms ? now_ms : clock_wall_ms();
        bool due = now >= expires_of(r);
        if (req->to == INV_HOLD_EXPIRED && !due) {
            unclaim(r);
            op_abandon(&op);
            return HOLD_NOT_DUE;
        }
        int decided = req->to == INV_HOLD_COMMITTED && due ? INV_HOLD_EXPIRED : req->to;
        assert(decided == req->to || decided == INV_HOLD_EXPIRED);
        op.target = (uint8_t)decided;
        set_sold(r, decided, req->sold);
        /* relaxed: read by the background thread after it pops r, and by
         * snapshots after the state (acquire) or the record that carries
         * it. */
        atomic_store_explicit(&r->ended_at_ms, now, memory_order_relaxed);
        /* release: the units sold and the end's time before the state. */
        atomic_store_explicit(&r->state, decided, memory_order_release);
        buyer_end(e, r, decided);
        hold_hook(HOLD_TEST_END_DECIDED, 0);
        rc = op_end_lines(&op);
        if (rc == INV_OK)
            rc = op_publish(&op, true);
        /* the end is made: no line is still counted on its level */
        assert(rc != INV_OK || !has_unfinished_line(r));
        /* release: a retry that reads it acknowledges on it. */
        atomic_store_explicit(&r->end_pos, op.pos_last ? op.pos_last : 1, memory_order_release);
        *pos_out = op.pos_last;
        count_end(&e->holds, decided);
        if (rc == INV_OK && decided != req->to)
            rc = INV_ENOTFOUND; /* it had expired: nothing to commit */
        return rc;
    }
}

static int id_ok(const char *id, size_t len)
{
    if (!id || len == 0)
        return INV_EINVALID;
    int rc = len > INV_HOLD_ID_MAX ? INV_ELIMIT : INV_OK;
    assert(rc != INV_OK || (len >= 1 && len <= INV_HOLD_ID_MAX)); /* hold_key's range */
    return rc;
}

/* A partial commit's lines, checked before the hold is looked up. */
static int sold_lines_ok(const inv_hold_line *lines, size_t n)
{
    if (n && !lines)
        return INV_EINVALID;
    int rc = n > INV_HOLD_LINES_MAX ? INV_ELIMIT : INV_OK;
    assert(rc != INV_OK || n == 0 || lines != NULL);
    return rc;
}

static int end_by_id(inv_engine *e, const char *id, size_t len, int to, const inv_hold_line *lines,
                     size_t n_lines)
{
    assert(to == INV_HOLD_COMMITTED || to == INV_HOLD_RELEASED);
    assert(n_lines == 0 || to == INV_HOLD_COMMITTED); /* only a commit sells in part */
    int rc = e ? id_ok(id, len) : INV_EINVALID;
    if (rc == INV_OK)
        rc = sold_lines_ok(lines, n_lines);
    if (rc != INV_OK)
        return rc;
    uint64_t pos = 0;
    int64_t sold[INV_HOLD_LINES_MAX];
    epoch_enter();
    hold_record *r = find_record(e, id, len, &rc);
    if (r && n_lines)
        rc = map_sold(r, lines, n_lines, sold);
    if (r && rc == INV_OK) {
        change_req req = {to, n_lines ? sold : NULL};
        rc = hold_end(e, r, &req, 0, &pos);
    }
    epoch_exit();
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

int inv_hold_commit(inv_engine *e, const char *hold_id, size_t hold_id_len)
{
    int rc = end_by_id(e, hold_id, hold_id_len, INV_HOLD_COMMITTED, NULL, 0);
    assert(rc != HOLD_NOT_DUE && rc <= INV_OK); /* only an expiry is not due */
    return rc;
}

int inv_hold_commit_partial(inv_engine *e, const char *hold_id, size_t hold_id_len,
                            const inv_hold_line *lines, size_t n_lines)
{
    int rc = end_by_id(e, hold_id, hold_id_len, INV_HOLD_COMMITTED, lines, n_lines);
    assert(rc != HOLD_NOT_DUE && rc <= INV_OK); /* only an expiry is not due */
    return rc;
}

int inv_hold_release(inv_engine *e, const char *hold_id, size_t hold_id_len)
{
    int rc = end_by_id(e, hold_id, hold_id_len, INV_HOLD_RELEASED, NULL, 0);
    assert(rc <= INV_OK); /* HOLD_NOT_DUE is an expiry's alone */
    return rc;
}

/* ---- extend ------------------------------------------------------------------- */

/* A HELD hold's new expiry, now + ttl_ms, journaled. The record stays on
 * the wheel where it is: the sweeper, finding it there before its time,
 * pushes it again at its new time (sweep_record). */
static int hold_extend(inv_engine *e, hold_record *r, uint64_t ttl_ms, uint64_t *pos_out)
{
    assert(ttl_ms >= 1 && ttl_ms <= INV_HOLD_TTL_MS_MAX && pos_out != NULL);
    const change_req req = {HOLD_CLAIM_EXTEND, NULL};
    for (;;) {
        int st;
        int answer = held_or_answer(e, r, &req, &st, pos_out);
        if (answer != HOLD_IS_HELD)
            return answer;
        hold_op op;
        int rc = op_begin(&op, e, r, HOLD_OP_EXTEND, INV_HOLD_HELD, BY_CALLER);
        if (rc != INV_OK)
            return rc;
        if (!claim_held(r, st)) {
            op_abandon(&op);
            continue;
        }
        assert(load_state(r) == HOLD_ENDING && op.n_images == 0); /* an extend moves no unit */
        int64_t now = clock_wall_ms();
        if (now >= expires_of(r)) {
            unclaim(r);
            op_abandon(&op);
            return INV_ENOTFOUND; /* expired: the sweep ends it */
        }
        /* relaxed: published by unclaim's release. */
        atomic_store_explicit(&r->expires_at_ms, now + (int64_t)ttl_ms, memory_order_relaxed);
        assert(expires_of(r) > now); /* later than now: still HELD when given back */
        op.extended_at_ms = now;
        /* HELD again before the record is published, as hold_mark_held:
         * a snapshot that starts once the record is durable must find the
         * new expiry. */
        unclaim(r);
        rc = op_publish(&op, true);
        *pos_out = op.pos_last;
        return rc;
    }
}

int inv_hold_extend(inv_engine *e, const char *hold_id, size_t hold_id_len, uint64_t ttl_ms)
{
    int rc = e ? id_ok(hold_id, hold_id_len) : INV_EINVALID;
    if (rc == INV_OK && ttl_ms == 0)
        rc = INV_EINVALID;
    if (rc == INV_OK && ttl_ms > INV_HOLD_TTL_MS_MAX)
        rc = INV_ELIMIT;
    if (rc != INV_OK)
        return rc;
    uint64_t pos = 0;
    epoch_enter();
    hold_record *r = find_record(e, hold_id, hold_id_len, &rc);
    if (r)
        rc = hold_extend(e, r, ttl_ms, &pos);
    epoch_exit();
    assert(rc <= INV_OK && (pos == 0 || e->jr != NULL));
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

/* ---- reads: one hold, a listing ------------------------------------------------- */

static void copy_text(char *dst, const char *src, size_t len)
{
    assert(dst != NULL && (src != NULL || len == 0));
    memcpy(dst, src, len);
    dst[len] = '\0';
}

int inv_hold_get(inv_engine *e, const char *hold_id, size_t hold_id_len, inv_hold_info *out)
{
    if (!e || !out)
        return INV_EINVALID;
    int rc = id_ok(hold_id, hold_id_len);
    if (rc != INV_OK)
        return rc;
    epoch_enter();
    hold_record *r = find_record(e, hold_id, hold_id_len, &rc);
    if (r) {
        int st = reported_state(r);
        if (st == HOLD_PENDING || st == HOLD_ABORTED) {
            rc = INV_ENOTFOUND; /* not (or never) created yet */
        } else {
            out->state = (inv_hold_state)st;
            out->expires_at_ms = expires_of(r);
            out->created_at_ms = r->created_at_ms;
            out->n_lines = r->n_lines;
            assert(out->n_lines >= 1 && out->n_lines <= INV_HOLD_LINES_MAX);
            for (size_t i = 0; i < r->n_lines; i++) {
                out->lines[i] =
                    (inv_hold_line){r->lines[i].item, r->lines[i].location, r->lines[i].qty};
                out->committed[i] = st == INV_HOLD_COMMITTED ? committed_of(&r->lines[i]) : 0;
            }
            /* the attributes fit the answer's buffers (and their NUL) */
            assert(r->buyer_len < sizeof out->buyer && r->order_ref_len < sizeof out->order_ref);
            copy_text(out->buyer, record_buyer(r), r->buyer_len);
            copy_text(out->order_ref, record_order_ref(r), r->order_ref_len);
        }
    }
    epoch_exit();
    return rc;
}

/* A listing's page being filled (see inv_hold_list). */
typedef struct {
    const inv_hold_filter *filter;
    int64_t now_ms;
    char (*ids)[INV_HOLD_ID_MAX + 1];
    size_t *lens;
    size_t cap, n;
} list_page;

/* r has a line on the filter's item and location (either may be absent). */
static bool record_matches(const hold_record *r, const inv_hold_filter *f)
{
    assert(r->n_lines >= 1 && r->n_lines <= INV_HOLD_LINES_MAX);
    if (!f || (!f->has_item && !f->has_location))
        return true;
    for (size_t i = 0; i < r->n_lines; i++)
        if ((!f->has_item || r->lines[i].item == f->item) &&
            (!f->has_location || r->lines[i].location == f->location))
            return true;
    return false;
}

static int list_visit(void *p, uint64_t a, uint64_t b, table_word v)
{
    (void)a, (void)b;
    list_page *pg = p;
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    /* Live: HELD (or its end not yet made), and not past its expiry. */
    if (reported_state(r) != INV_HOLD_HELD || expires_of(r) <= pg->now_ms ||
        !record_matches(r, pg->filter))
        return 0;
    assert(pg->n < pg->cap); /* table_scan visits at most cap entries */
    assert(r->id_len >= 1 && r->id_len <= INV_HOLD_ID_MAX); /* fits ids[] with its NUL */
    copy_text(pg->ids[pg->n], r->id, r->id_len);
    if (pg->lens)
        pg->lens[pg->n] = r->id_len;
    pg->n++;
    return 0;
}

int inv_hold_list(inv_engine *e, const inv_hold_filter *filter, uint64_t cursor, size_t count,
                  char (*ids_out)[INV_HOLD_ID_MAX + 1], size_t *id_lens, size_t cap, size_t *n_out,
                  uint64_t *next_cursor)
{
    if (!e || !ids_out || cap == 0 || !n_out || !next_cursor || count == 0 ||
        count > INV_LIST_COUNT_MAX)
        return INV_EINVALID;
    list_page pg = {filter, clock_wall_ms(), ids_out, id_lens, count < cap ? count : cap, 0};
    uint64_t next = 0;
    epoch_enter();
    /* Not a hot path: table_scan allocates its page of entries. */
    int rc = table_scan(&e->holds.by_id, cursor, pg.cap, list_visit, &pg, &next);
    epoch_exit();
    if (rc != INV_OK)
        return rc;
    assert(pg.n <= pg.cap && pg.cap <= count);
    *n_out = pg.n;
    *next_cursor = next;
    return INV_OK;
}

/* ---- background: expiry, buyer windows, forgetting ------------------------ */

/* forget's step (p: the record): a tombstone in place of r, unless the
 * id is gone or names another record already (KEEP). */
static int forget_step(void *p, table_word cur, table_word *next)
{
    assert(p != NULL && (cur.w1 & (TABLE_FROZEN | TABLE_DESC)) == 0);
    if (!table_is_live(cur) || cur.w0 != (uintptr_t)p)
        return TABLE_STEP_KEEP;
    *next = (table_word){0, (table_version(cur) + 1) | TABLE_TOMB};
    assert(table_version(*next) > table_version(cur)); /* versions never repeat */
    return TABLE_STEP_WRITE;
}

/* Removes r from the id table if it is still there. */
static void forget(inv_engine *e, hold_record *r)
{
    /* an ended or aborted record: a live or claimed hold is never forgotten */
    assert(load_state(r) != INV_HOLD_HELD && load_state(r) != HOLD_ENDING);
    uint64_t a, b;
    hold_key(r->id, r->id_len, &a, &b);
    int rc = table_update(&e->holds.by_id, a, b, false, NULL, forget_step, r, NULL);
    assert(rc == TABLE_STEP_WRITE || rc == TABLE_STEP_KEEP);
    if (rc == TABLE_STEP_WRITE)
        table_note_deleted(&e->holds.by_id);
}

/* An ended record's buyer units: when the window since its commit has
 * passed, the sold ones go back. Returns 0 when none are counted any
 * more, else when to look again. */
static int64_t sweep_buyer_units(inv_engine *e, hold_record *r, int64_t ended, int64_t now_ms)
{
    assert(now_ms > 0); /* ended: a replayed time, not checked against now */
    uint8_t units = buyer_units_of(r);
    if (units == BUYER_HELD)
        return now_ms + HOLD_WHEEL_TICK_MS; /* its end is settling them right now */
    if (units != BUYER_SOLD)
        return 0;
    int64_t window_end = ended + buyer_window_ms(e);
    if (window_end > now_ms)
        return window_end;
    /* the window since the commit has passed: only a commit sold units */
    assert(load_state(r) == INV_HOLD_COMMITTED);
    (void)buyer_items(e, r, UNITS_SOLD, -1, 0, r->n_lines, NULL);
    set_buyer_units(r, BUYER_DONE);
    return 0;
}

static void sweep_record(inv_engine *e, hold_record *r, int64_t now_ms)
{
    assert(hold_record_ok(r) && now_ms > 0);
    hold_book *hb = &e->holds;
    if (load_state(r) == INV_HOLD_HELD) {
        if (expires_of(r) > now_ms) {
            wheel_push(hb, r, expires_of(r)); /* a later round (or extended) */
            return;
        }
        uint64_t pos_unused = 0;
        const change_req req = {INV_HOLD_EXPIRED, NULL};
        (void)hold_end(e, r, &req, now_ms, &pos_unused);
    }
    int st = load_state(r);
    if (st == INV_HOLD_HELD || st == HOLD_ENDING) {
        /* Claimed by a change (a batch, a commit, an extend) that may give
         * it back HELD, or extended under us: look again on the next tick
         * (not swept in this round), or at its new time. */
        int64_t again = now_ms + HOLD_WHEEL_TICK_MS;
        wheel_push(hb, r, st == INV_HOLD_HELD && expires_of(r) > again ? expires_of(r) : again);
        return;
    }
    /* acquire: pairs with the release of a create that replaced r. */
    bool unlinked = atomic_load_explicit(&r->unlinked, memory_order_acquire);
    int64_t ended = atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed);
    if (ended == 0)
        ended = now_ms; /* its end is being written right now */
    int64_t buyer_due = sweep_buyer_units(e, r, ended, now_ms);
    if (buyer_due) {
        wheel_push(hb, r, buyer_due);
        return;
    }
    if (!unlinked && ended + HOLD_RETAIN_MS > now_ms) {
        wheel_push(hb, r, ended + HOLD_RETAIN_MS);
        return;
    }
    /* ended for good: nothing counted for its buyer any more */
    assert(buyer_units_of(r) == BUYER_NONE || buyer_units_of(r) == BUYER_DONE);
    if (!unlinked)
        forget(e, r);
    epoch_retire(r, free, e);
}

/* Sweeps the records of one stack (popped whole). */
static void sweep_stack(inv_engine *e, _Atomic(hold_record *) *slot, int64_t now_ms)
{
    assert(slot != NULL && now_ms > 0);
    /* relaxed: an empty slot (nearly all of them in an idle engine) is
     * left alone: no locked exchange, and an untouched wheel page stays
     * unwritten (tenants keep many idle engines). A push racing this load
     * is as one racing the exchange just after it (wheel_push_racing). */
    if (atomic_load_explicit(slot, memory_order_relaxed) == NULL)
        return;
    /* acquire: the popped records are complete. */
    hold_record *r = atomic_exchange_explicit(slot, NULL, memory_order_acquire);
    while (r) {
        hold_record *next = r->wheel_next;
        assert(next != r);
        sweep_record(e, r, now_ms);
        r = next;
    }
}

void hold_expire_due(inv_engine *e, int64_t now_ms)
{
    assert(e != NULL && e->holds.wheel != NULL && now_ms > 0);
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
    assert(hb->swept_tick < now_tick); /* the current tick waits for the next sweep */
    /* Late arrivals: expired now, or pushed (by us) to their tick, which is
     * not swept yet. */
    sweep_stack(e, &hb->wheel_intake, now_ms);
}

void hold_stats(inv_engine *e, inv_stats *out)
{
    assert(e != NULL && out != NULL);
    hold_book *hb = &e->holds;
    /* relaxed: statistics. */
    out->holds_active = atomic_load_explicit(&hb->active, memory_order_relaxed);
    out->holds_created = atomic_load_explicit(&hb->created, memory_order_relaxed);
    out->holds_committed = atomic_load_explicit(&hb->committed, memory_order_relaxed);
    out->holds_released = atomic_load_explicit(&hb->released, memory_order_relaxed);
    out->holds_expired = atomic_load_explicit(&hb->expired, memory_order_relaxed);
}

/* ---- invariant checks ------------------------------------------------------ */

typedef struct {
    uint64_t item, location;
    int64_t qty;
} reserved_entry;

/* ctx: a vec of reserved_entry. */
static int collect_held(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    assert(ctx != NULL && table_is_live(v)); /* the walk visits live entries only */
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    assert(hold_record_ok(r));
    if (load_state(r) != INV_HOLD_HELD)
        return 0;
    for (size_t i = 0; i < r->n_lines; i++)
        if (line_status(&r->lines[i]) == LINE_RESERVED &&
            vec_push(ctx, &(reserved_entry){r->lines[i].item, r->lines[i].location,
                                            r->lines[i].qty}) != INV_OK)
            return INV_ENOMEM;
    return 0;
}

/* ctx: a vec of reserved_entry (reserved: held less committed). */
static int collect_reserved(void *ctx, uint64_t item, uint64_t loc, table_word v, table_slot *s)
{
    assert(ctx != NULL && s != NULL);
    inv_level lv;
    level_out_slot(v, s, &lv);
    assert(lv.reserved >= 0); /* a level never holds fewer than none */
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
 * location), and drops those that sum to 0. */
/* Asserts only: a merged list, strictly increasing, no zero sum left. */
static bool merged_ok(const vec *l)
{
    const reserved_entry *v = l->items;
    for (size_t i = 0; i < l->n; i++)
        if (v[i].qty == 0 || (i > 0 && cmp_reserved(&v[i - 1], &v[i]) >= 0))
            return false;
    return true;
}

static void merge_sorted(vec *l)
{
    assert(l != NULL && l->size == sizeof(reserved_entry));
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
    size_t kept = 0;
    for (size_t i = 0; i < out; i++)
        if (v[i].qty != 0)
            v[kept++] = v[i];
    l->n = kept;
    assert(merged_ok(l));
}

/* Two sorted, merged lists are equal. */
static int same_entries(const vec *x, const vec *y)
{
    assert(merged_ok(x) && merged_ok(y)); /* memcmp compares canonical lists */
    return x->n == y->n &&
                   (x->n == 0 || memcmp(x->items, y->items, x->n * sizeof(reserved_entry)) == 0)
               ? INV_OK
               : INV_ECONFLICT;
}

int hold_verify_reserved(inv_engine *e)
{
    assert(e != NULL);
    vec held = VEC_OF(reserved_entry), levels = VEC_OF(reserved_entry);
    epoch_enter();
    int rc = table_foreach(&e->holds.by_id, collect_held, &held);
    if (rc == INV_OK)
        rc = table_foreach_slot(&e->levels, collect_reserved, &levels);
    epoch_exit();
    if (rc == INV_OK) {
        merge_sorted(&held);
        merge_sorted(&levels);
        rc = same_entries(&held, &levels);
    }
    vec_free(&held);
    vec_free(&levels);
    assert(rc == INV_OK || rc == INV_ECONFLICT || rc == INV_ENOMEM);
    return rc;
}

/* buyer_units as a record's state says it must be (the window aside). */
static bool buyer_units_consistent(hold_record *r)
{
    assert(r != NULL);
    int st = load_state(r);
    uint8_t units = buyer_units_of(r);
    if (r->buyer_len == 0)
        return units == BUYER_NONE;
    if (st == INV_HOLD_HELD)
        return units == BUYER_HELD;
    if (st == INV_HOLD_COMMITTED)
        return units == BUYER_SOLD || units == BUYER_DONE;
    return units == BUYER_DONE; /* released or expired */
}

/* ctx: a vec of reserved_entry keyed (a, b): what each counter must hold,
 * as its records' buyer_units say; ENOTFOUND (stops the walk) when a
 * record's buyer_units disagrees with its state. */
static int collect_buyer_units(void *ctx, uint64_t ka, uint64_t kb, table_word v)
{
    (void)ka, (void)kb;
    assert(ctx != NULL && table_is_live(v));
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    if (!buyer_units_consistent(r))
        return INV_ENOTFOUND;
    uint8_t units = buyer_units_of(r);
    if (units != BUYER_HELD && units != BUYER_SOLD)
        return 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        uint64_t a, b;
        buyer_key(r, r->lines[i].item, &a, &b);
        int64_t n = line_units(&r->lines[i], units == BUYER_HELD ? UNITS_ALL : UNITS_SOLD);
        assert(n >= 0);
        if (vec_push(ctx, &(reserved_entry){a, b, n}) != INV_OK)
            return INV_ENOMEM;
    }
    return 0;
}

static int collect_counters(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    /* a live counter holds units (buyer_step makes 0 a tombstone) */
    assert(table_is_live(v) && (int64_t)v.w0 > 0 && (int64_t)v.w0 <= HOLD_BUYER_UNITS_MAX);
    return vec_push(ctx, &(reserved_entry){a, b, (int64_t)v.w0});
}

int hold_verify_buyers(inv_engine *e)
{
    assert(e != NULL);
    vec want = VEC_OF(reserved_entry), have = VEC_OF(reserved_entry);
    epoch_enter();
    int rc = table_foreach(&e->holds.by_id, collect_buyer_units, &want);
    if (rc == INV_OK)
        rc = table_foreach(&e->holds.by_buyer, collect_counters, &have);
    epoch_exit();
    if (rc == INV_OK) {
        merge_sorted(&want);
        merge_sorted(&have);
        rc = same_entries(&want, &have);
    } else if (rc == INV_ENOTFOUND) {
        rc = INV_ECONFLICT;
    }
    vec_free(&want);
    vec_free(&have);
    assert(rc == INV_OK || rc == INV_ECONFLICT || rc == INV_ENOMEM);
    return rc;
}

/* ---- recovery and snapshots --------------------------------------------- */

static bool state_valid(uint8_t st)
{
    return st == HOLD_PENDING || st == HOLD_ABORTED ||
           (st >= INV_HOLD_HELD && st <= INV_HOLD_EXPIRED);
}

/* A record's line read from disk: status, quantity and units sold agree
 * with each other and with the record's target state. */
static bool line_valid(const hold_rec_line *l, uint8_t target)
{
    assert(l != NULL);
    bool commit = target == INV_HOLD_COMMITTED;
    return l->status <= LINE_SOLD && l->qty >= 1 && l->qty <= INV_QTY_MAX &&
           (int64_t)l->committed <= l->qty && (commit || l->committed == 0) &&
           (l->status != LINE_SOLD || (commit && l->committed > 0 && l->committed < l->qty));
}

/* Checks a PERSIST_HOLD payload read from disk; nothing in it is trusted.
 * *tail: the attributes' tail (zero for version 0). */
static bool record_valid(const uint8_t *p, uint32_t len, hold_rec_header *h, hold_rec_tail *tail,
                         uint64_t *incarnation)
{
    assert(p != NULL && h != NULL && tail != NULL && incarnation != NULL);
    *incarnation = 0; /* formats before 3 */
    if (len < sizeof *h)
        return false;
    memcpy(h, p, sizeof *h);
    memset(tail, 0, sizeof *tail);
    if (h->version > HOLD_REC_V3 || h->id_len == 0 || h->id_len > INV_HOLD_ID_MAX ||
        h->n_lines == 0 || h->n_lines > INV_HOLD_LINES_MAX ||
        h->n_images > HOLD_IMAGES_PER_LINE * h->n_lines || h->final > 1 ||
        !state_valid(h->target) || h->kind < HOLD_OP_CREATE || h->kind > HOLD_OP_EXTEND ||
        (h->kind == HOLD_OP_EXTEND && (h->version < HOLD_REC_V1 || h->target != INV_HOLD_HELD)))
        return false;
    uint32_t fixed = rec_fixed_len(h->n_lines);
    size_t attrs = 0, actor = 0;
    if (h->version >= HOLD_REC_V1) {
        static const uint8_t zeros[8];
        if (len < fixed + sizeof *tail)
            return false;
        memcpy(tail, p + fixed, sizeof *tail);
        attrs = (size_t)tail->buyer_len + tail->order_ref_len;
        actor = tail->actor_len; /* version 1: a zero byte */
        if (len < fixed + rec_tail_len(h->version))
            return false;
        if (h->version >= HOLD_REC_V3) {
            memcpy(incarnation, p + fixed + sizeof *tail, sizeof *incarnation);
            if (*incarnation == 0)
                return false; /* format 3 always names its hold */
        }
        const uint8_t *bytes = p + fixed + rec_tail_len(h->version);
        if (tail->buyer_len > INV_BUYER_ID_MAX || tail->order_ref_len > INV_ORDER_REF_MAX ||
            actor > INV_ACTOR_MAX || (h->version < HOLD_REC_V2 && actor) || tail->zero32 ||
            len != rec_len(h->n_lines, attrs + actor, h->version) ||
            (attrs && memchr(bytes, '\0', attrs)) ||
            (h->version >= HOLD_REC_V2 &&
             memcmp(bytes + attrs + actor, zeros, pad8(attrs + actor) - (attrs + actor))))
            return false; /* the actor may hold any byte; the padding is zero */
    }
    if (len != rec_len(h->n_lines, attrs + actor, h->version))
        return false;
    const hold_rec_line *lines = (const hold_rec_line *)(p + sizeof *h);
    for (size_t i = 0; i < h->n_lines; i++)
        if (!line_valid(&lines[i], h->target) ||
            (h->version == HOLD_REC_V0 && lines[i].status == LINE_SOLD))
            return false;
    const hold_rec_image *images = (const hold_rec_image *)(lines + h->n_lines);
    for (size_t i = 0; i < h->n_images; i++)
        if (images[i].line >= h->n_lines)
            return false;
    /* accepted: within what a record of ours can be (record_from's sizes) */
    assert(len <= HOLD_REC_LEN_MAX && (h->version < HOLD_REC_V3 || *incarnation != 0));
    return true;
}

/* The state a replayed record leaves its hold in. */
static int replayed_state(const hold_rec_header *h)
{
    /* record_valid: a known kind and a state a record may carry */
    assert(h->kind >= HOLD_OP_CREATE && h->kind <= HOLD_OP_EXTEND && state_valid(h->target));
    int st = h->kind == HOLD_OP_CREATE && !h->final ? HOLD_PENDING : h->target;
    assert(record_state_ok(st) && st != HOLD_ENDING); /* a claim is never journaled */
    return st;
}

static hold_record *record_from(const hold_rec_header *h, const hold_rec_tail *t,
                                uint64_t incarnation, const hold_rec_line *lines, const char *attrs,
                                uint64_t pos)
{
    assert(h != NULL && t != NULL && lines != NULL);
    assert(h->version < HOLD_REC_V1 || attrs != NULL); /* format 1 on has attributes */
    size_t attrs_len = (size_t)t->buyer_len + t->order_ref_len;
    hold_record *r = inv_calloc(1, record_size(h->n_lines, attrs_len));
    if (!r)
        return NULL;
    int st = replayed_state(h);
    atomic_init(&r->state, st);
    atomic_init(&r->expires_at_ms, h->expires_at_ms);
    r->created_at_ms = t->created_at_ms;
    atomic_init(&r->last_pos, pos);
    /* Replayed records are durable: retries of a recovered create or end
     * acknowledge at once (1 when no position is known). */
    atomic_init(&r->created_pos, st != HOLD_PENDING && st != HOLD_ABORTED ? (pos ? pos : 1) : 0);
    atomic_init(&r->end_pos, st > INV_HOLD_HELD && st != HOLD_ABORTED ? (pos ? pos : 1) : 0);
    atomic_init(&r->ended_at_ms,
                h->kind == HOLD_OP_STATE || h->kind == HOLD_OP_END ? h->ended_at_ms : 0);
    r->id_len = h->id_len;
    memcpy(r->id, h->id, h->id_len);
    r->incarnation = incarnation;
    r->n_lines = h->n_lines;
    for (size_t i = 0; i < h->n_lines; i++) {
        /* Version 0 knew only whole commits: every unit was sold. */
        int64_t sold = h->version >= HOLD_REC_V1  ? (int64_t)lines[i].committed
                       : st == INV_HOLD_COMMITTED ? lines[i].qty
                                                  : 0;
        r->lines[i] = (hold_line){lines[i].item, lines[i].location, lines[i].qty, 0, LINE_NONE};
        atomic_init(&r->lines[i].committed, sold);
        atomic_init(&r->lines[i].status, (uint8_t)lines[i].status);
    }
    r->buyer_len = t->buyer_len;
    r->order_ref_len = t->order_ref_len;
    if (attrs_len)
        memcpy(record_attrs(r), attrs, attrs_len);
    assert(hold_record_ok(r)); /* what record_valid accepted builds a whole record */
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
    assert((cur.w1 & (TABLE_FROZEN | TABLE_DESC)) == 0); /* table_update_at's plain word */
    uint64_t version = table_version(cur) + 1;
    c->was = cur;
    *next = load_state(c->r) == HOLD_ABORTED ? (table_word){0, version | TABLE_TOMB}
                                             : (table_word){(uintptr_t)c->r, version};
    assert(version <= TABLE_VERSION_MAX);
    return TABLE_STEP_WRITE;
}

/* Puts r in the id table in place of whatever is there (recovery only:
 * no other thread runs, so a replaced record is freed at once). */
static int install_record(inv_engine *e, hold_record *r)
{
    assert(hold_record_ok(r));
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
    /* live exactly when r is not an aborted create */
    assert(table_is_live(mine) == (load_state(r) != HOLD_ABORTED));
    if (!table_is_live(mine))
        free(r);
    return INV_OK;
}

int hold_replay(inv_engine *e, uint64_t pos, const void *payload, uint32_t len)
{
    hold_rec_header h;
    hold_rec_tail t;
    uint64_t inc;
    const uint8_t *p = payload;
    assert(e != NULL && payload != NULL);
    if (!record_valid(p, len, &h, &t, &inc))
        return INV_EINVALID;
    incarnation_seen(inc);
    const hold_rec_line *lines = (const hold_rec_line *)(p + sizeof h);
    const hold_rec_image *images = (const hold_rec_image *)(lines + h.n_lines);
    for (size_t i = 0; i < h.n_images; i++) {
        assert(images[i].line < h.n_lines); /* record_valid */
        table_word w = {images[i].w0, images[i].w1};
        int rc = level_install(e, lines[images[i].line].item, lines[images[i].line].location, w);
        if (rc != INV_OK)
            return rc;
    }
    uint64_t hold_pos = h.kind == HOLD_OP_STATE ? h.last_pos : pos;
    int rc;
    hold_record *old = find_record(e, h.id, h.id_len, &rc);
    if (old && old->incarnation > inc)
        return INV_OK; /* a late record of an earlier hold of this id: its
                        * level images above are all it still says */
    /* relaxed: recovery is single-threaded. */
    if (old && old->incarnation == inc &&
        atomic_load_explicit(&old->last_pos, memory_order_relaxed) >= hold_pos)
        return INV_OK; /* the snapshot already holds this change */
    const char *attrs = h.version >= HOLD_REC_V1
                            ? (const char *)p + rec_fixed_len(h.n_lines) + rec_tail_len(h.version)
                            : NULL;
    hold_record *r = record_from(&h, &t, inc, lines, attrs, hold_pos);
    return r ? install_record(e, r) : INV_ENOMEM;
}

static int collect_record(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    (void)a, (void)b;
    hold_record ***cursor = ctx;
    assert(table_is_live(v)); /* hold_recover_finish sized the array by the live count */
    *(*cursor)++ = (hold_record *)(uintptr_t)v.w0;
    return 0;
}

static bool has_unfinished_line(hold_record *r)
{
    assert(r->n_lines >= 1 && r->n_lines <= INV_HOLD_LINES_MAX);
    for (size_t i = 0; i < r->n_lines; i++)
        if (line_status(&r->lines[i]) == LINE_RESERVED || line_status(&r->lines[i]) == LINE_SOLD)
            return true;
    return false;
}

/* When the sweeper next looks at an ended record: once the buyer window
 * since its commit has passed (sold units still counted), or once it may
 * be forgotten; it looks again after each. */
static int64_t ended_due(inv_engine *e, hold_record *r)
{
    assert(load_state(r) != INV_HOLD_HELD); /* an ended record */
    /* relaxed: recovery is single-threaded. */
    int64_t ended = atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed);
    int64_t due = ended + HOLD_RETAIN_MS;
    if (buyer_units_of(r) == BUYER_SOLD && ended + buyer_window_ms(e) < due)
        due = ended + buyer_window_ms(e);
    assert(due <= ended + HOLD_RETAIN_MS); /* never later than forgetting */
    return due;
}

/* Finishes a change that recovery found half done (journaled), counts the
 * buyer's units again, and puts the hold on the wheel. */
static int finish_one(inv_engine *e, hold_record *r, int64_t now_ms)
{
    hold_book *hb = &e->holds;
    /* A hold replayed from a record before format 3 has incarnation 0, and
     * every record written from now on is format 3, which must name one
     * (replay refuses 0): it gets a new one before any record of it is
     * written. Its older records replay as 0, below it, so on the next
     * recovery its newer records replace what they built. */
    if (r->incarnation == 0)
        r->incarnation = incarnation_next(NULL);
    assert(hold_record_ok(r) && r->incarnation != 0);
    int st = load_state(r);
    hold_op op;
    int rc = INV_OK;
    if (st == HOLD_PENDING || (st != INV_HOLD_HELD && has_unfinished_line(r))) {
        bool aborting = st == HOLD_PENDING;
        rc = op_begin(&op, e, r, aborting ? HOLD_OP_CREATE : HOLD_OP_END,
                      aborting ? HOLD_ABORTED : (uint8_t)st, BY_ENGINE);
        if (rc == INV_OK)
            rc = op_end_lines(&op);
        if (rc == INV_OK)
            rc = op_publish(&op, true);
        if (rc == INV_OK && op.pos_last)
            rc = journal_wait(e->jr, op.pos_last);
        if (aborting) {
            hold_abort(e, r); /* never counted: nothing for its buyer */
            return rc;
        }
    }
    if (st != INV_HOLD_HELD && atomic_load_explicit(&r->ended_at_ms, memory_order_relaxed) == 0)
        /* relaxed: recovery is single-threaded. */
        atomic_store_explicit(&r->ended_at_ms, now_ms, memory_order_relaxed);
    /* every change finished: no line of an ended hold still counted */
    assert(st == INV_HOLD_HELD || rc != INV_OK || !has_unfinished_line(r));
    int counted = buyer_recount(e, r, now_ms);
    if (rc == INV_OK)
        rc = counted;
    if (st == INV_HOLD_HELD) {
        wheel_push(hb, r, expires_of(r));
        /* relaxed: statistics. */
        atomic_fetch_add_explicit(&hb->active, 1, memory_order_relaxed);
    } else {
        wheel_push(hb, r, ended_due(e, r));
    }
    return rc;
}

int hold_recover_finish(inv_engine *e)
{
    assert(e != NULL && e->holds.wheel != NULL); /* hold_init ran (a journal or not: tests) */
    int64_t live = table_live(&e->holds.by_id);
    hold_record **all = inv_calloc((size_t)(live > 0 ? live : 0) + 1, sizeof *all);
    if (!all)
        return INV_ENOMEM;
    hold_record **cursor = all;
    epoch_enter();
    int rc = table_foreach(&e->holds.by_id, collect_record, &cursor);
    int64_t now_ms = clock_wall_ms();
    /* the walk found at most the live count (recovery: nothing changes it) */
    assert(rc != INV_OK || cursor - all <= (live > 0 ? live : 0));
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
    assert(args[0] != NULL && args[1] != NULL && table_is_live(v));
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    /* acquire, and before the state: a change stores its state, then its
     * position; reading in the other order, the record we say the state
     * includes really is included (replay skips records up to it). */
    uint64_t last = atomic_load_explicit(&r->last_pos, memory_order_acquire);
    int st = load_state(r);
    (void)fault_check_arg(FAULT_HOLD_SNAPSHOT, HOLD_SNAP_POINT_STATE, (uint64_t)st);
    hold_op op;
    /* A claimed hold is not changed until its claim's record (at or after
     * this snapshot's position, see batch.c and hold_end) is published;
     * its lines are written as before the claim (encoded_status). */
    op_init(&op, args[0], r, HOLD_OP_STATE, (uint8_t)(st == HOLD_ENDING ? INV_HOLD_HELD : st));
    op.state_last_pos = last;
    uint8_t buf[HOLD_REC_LEN_MAX];
    encode_record(&op, true, buf);
    (void)fault_check_arg(FAULT_HOLD_SNAPSHOT, HOLD_SNAP_POINT_ENCODED, 0);
    assert(op.target != HOLD_ENDING && op.n_images == 0); /* a state, not a change */
    return snapshot_add(args[1], PERSIST_HOLD, buf, op_len(&op));
}

int hold_snapshot(inv_engine *e, snapshot_writer *w)
{
    assert(e != NULL && w != NULL);
    void *args[2] = {e, w};
    return table_foreach(&e->holds.by_id, snapshot_one, args);
}

/* ---- hold lines of batches ------------------------------------------------ */

int hold_claim_create(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                      const inv_hold_line *lines, size_t n, const inv_hold_opts *opts,
                      hold_claim *c, inv_hold_failure *failure)
{
    assert(e != NULL && c != NULL);
    ordered_line ordered[INV_HOLD_LINES_MAX];
    int rc = create_args_ok(id, len, ttl_ms, lines, n, opts, ordered);
    const inv_hold_opts *o = opts ? opts : &no_opts;
    *c = (hold_claim){NULL, INV_HOLD_HELD, 0, 0, 0};
    if (rc == INV_OK)
        rc = claim_id(e, id, len, ttl_ms, ordered, n, o, &c->r, &c->ack_pos);
    if (rc == INV_OK && c->r) {
        rc = buyer_take(e, c->r, o->buyer_limit, ordered, failure);
        if (rc != INV_OK) {
            hold_abort(e, c->r);
            c->r = NULL;
        }
    }
    assert(rc != INV_OK || c->r == NULL || load_state(c->r) == HOLD_PENDING);
    /* a claimed create counts its buyer's units already (buyer_take) */
    assert(rc != INV_OK || c->r == NULL || c->r->buyer_len == 0 ||
           buyer_units_of(c->r) == BUYER_HELD);
    return rc;
}

int hold_claim_end(inv_engine *e, const char *id, size_t len, int to, const inv_hold_line *sold,
                   size_t n_sold, hold_claim *c)
{
    assert(to == INV_HOLD_COMMITTED || to == INV_HOLD_RELEASED);
    assert(e != NULL && c != NULL);
    *c = (hold_claim){NULL, to, 0, 0, 0};
    int rc = id_ok(id, len);
    if (rc == INV_OK)
        rc = n_sold && to != INV_HOLD_COMMITTED ? INV_EINVALID : sold_lines_ok(sold, n_sold);
    if (rc != INV_OK)
        return rc;
    hold_record *r = find_record(e, id, len, &rc);
    int64_t units[INV_HOLD_LINES_MAX];
    if (r && n_sold && (rc = map_sold(r, sold, n_sold, units)) != INV_OK)
        return rc;
    const change_req req = {to, n_sold ? units : NULL};
    while (r) {
        int st;
        int answer = held_or_answer(e, r, &req, &st, &c->ack_pos);
        if (answer != HOLD_IS_HELD)
            return answer;
        if (!claim_held(r, st))
            continue;
        if (to == INV_HOLD_COMMITTED && clock_wall_ms() >= expires_of(r)) {
            unclaim(r);
            return INV_ENOTFOUND; /* expired: the sweep ends it, not the batch */
        }
        set_sold(r, to, req.sold);
        c->r = r;
        assert(load_state(r) == HOLD_ENDING); /* ours until hold_claim_done or _undo */
        return INV_OK;
    }
    return rc;
}

int hold_claim_extend(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms, hold_claim *c)
{
    assert(e != NULL && c != NULL);
    *c = (hold_claim){NULL, HOLD_CLAIM_EXTEND, 0, 0, 0};
    int rc = id_ok(id, len);
    if (rc == INV_OK && (ttl_ms == 0 || ttl_ms > INV_HOLD_TTL_MS_MAX))
        rc = ttl_ms == 0 ? INV_EINVALID : INV_ELIMIT;
    if (rc != INV_OK)
        return rc;
    hold_record *r = find_record(e, id, len, &rc);
    const change_req req = {HOLD_CLAIM_EXTEND, NULL};
    while (r) {
        int st;
        int answer = held_or_answer(e, r, &req, &st, &c->ack_pos);
        if (answer != HOLD_IS_HELD)
            return answer;
        if (!claim_held(r, st))
            continue;
        int64_t now = clock_wall_ms();
        if (now >= expires_of(r)) {
            unclaim(r);
            return INV_ENOTFOUND; /* expired: the sweep ends it */
        }
        c->expires_at_ms = now + (int64_t)ttl_ms;
        c->extended_at_ms = now;
        c->r = r;
        assert(load_state(r) == HOLD_ENDING && c->expires_at_ms > now);
        return INV_OK;
    }
    return rc;
}

size_t hold_claim_n_lines(const hold_claim *c)
{
    assert(c != NULL && (c->r == NULL || c->r->n_lines <= INV_HOLD_LINES_MAX));
    size_t n = c->r && c->to != HOLD_CLAIM_EXTEND ? c->r->n_lines : 0;
    assert(n <= INV_HOLD_LINES_MAX);
    return n;
}

size_t hold_claim_n_moves(const hold_claim *c)
{
    size_t n = 0;
    for (size_t i = 0; i < hold_claim_n_lines(c); i++) {
        inv_hold_line l;
        int64_t sold;
        if (hold_claim_line(c, i, &l, &sold))
            n += c->to == INV_HOLD_HELD ? 1 : (size_t)(sold > 0) + (size_t)(l.qty - sold > 0);
    }
    /* at most a sale and a return per line (HOLD_IMAGES_PER_LINE) */
    assert(n <= HOLD_IMAGES_PER_LINE * hold_claim_n_lines(c));
    return n;
}

bool hold_claim_line(const hold_claim *c, size_t i, inv_hold_line *out, int64_t *sold)
{
    assert(c->r && c->to != HOLD_CLAIM_EXTEND && i < c->r->n_lines);
    hold_line *l = &c->r->lines[i];
    *out = (inv_hold_line){l->item, l->location, l->qty};
    *sold = c->to == INV_HOLD_COMMITTED ? committed_of(l) : 0;
    assert(*sold >= 0 && *sold <= l->qty);
    /* relaxed: the claim's owner alone changes a claimed hold's lines. */
    return c->to == INV_HOLD_HELD ||
           atomic_load_explicit(&l->status, memory_order_relaxed) == LINE_RESERVED;
}

uint32_t hold_claim_record_len(const hold_claim *c)
{
    assert(c != NULL);
    return c->r ? record_len(c->r, 0) : 0; /* the batch's record names the actor */
}

void hold_claim_done(hold_claim *c, const bool *counted, uint64_t pos)
{
    hold_record *r = c->r;
    assert(r && state_transient(load_state(r)));
    assert(pos == 0 || pos >= JOURNAL_POSITION_FIRST); /* the batch's record, if any */
    bool extend = c->to == HOLD_CLAIM_EXTEND;
    assert(c->to != INV_HOLD_HELD || counted != NULL); /* a create says what it counted */
    for (size_t i = 0; !extend && i < r->n_lines; i++) {
        uint8_t st =
            c->to == INV_HOLD_HELD ? (counted[i] ? LINE_RESERVED : LINE_UNTRACKED) : LINE_ENDED;
        if (c->to != INV_HOLD_HELD &&
            atomic_load_explicit(&r->lines[i].status, memory_order_relaxed) != LINE_RESERVED)
            continue; /* untracked: nothing moved, it stays as it is */
        /* release: a snapshot that sees the status sees the level change. */
        atomic_store_explicit(&r->lines[i].status, st, memory_order_release);
    }
    if (extend)
        /* relaxed: published by the state's release below. */
        atomic_store_explicit(&r->expires_at_ms, c->expires_at_ms, memory_order_relaxed);
    else if (c->to != INV_HOLD_HELD)
        /* relaxed: as in hold_end. */
        atomic_store_explicit(&r->ended_at_ms, clock_wall_ms(), memory_order_relaxed);
    /* release: the lines' statuses and level changes (or the new expiry)
     * before the state, and the state before the position (as op_publish:
     * a snapshot reads the position first). Set before the batch's final
     * record is published, for the reason hold_mark_held gives. */
    atomic_store_explicit(&r->state, extend ? INV_HOLD_HELD : c->to, memory_order_release);
    atomic_store_explicit(&r->last_pos, pos, memory_order_release);
    /* an end is final (nobody changes an ended hold; HELD may be claimed
     * again at once, so only an end is checked) */
    assert(extend || c->to == INV_HOLD_HELD || load_state(r) == c->to);
}

void hold_claim_encode(inv_engine *e, const hold_claim *c, uint8_t *buf)
{
    assert(c->r != NULL && buf != NULL);
    hold_op op;
    uint8_t kind = c->to == INV_HOLD_HELD       ? HOLD_OP_CREATE
                   : c->to == HOLD_CLAIM_EXTEND ? HOLD_OP_EXTEND
                                                : HOLD_OP_END;
    op_init(&op, e, c->r, kind, (uint8_t)(c->to == HOLD_CLAIM_EXTEND ? INV_HOLD_HELD : c->to));
    op.extended_at_ms = c->extended_at_ms;
    assert(op_len(&op) == hold_claim_record_len(c));
    encode_record(&op, true, buf);
}

void hold_claim_published(inv_engine *e, hold_claim *c, uint64_t pos)
{
    hold_record *r = c->r;
    assert(r && load_state(r) == (c->to == HOLD_CLAIM_EXTEND ? INV_HOLD_HELD : c->to));
    /* release: a retry that reads it acknowledges on a record that exists. */
    if (c->to == INV_HOLD_HELD) {
        atomic_store_explicit(&r->created_pos, pos ? pos : 1, memory_order_release);
        hold_activate(e, r);
    } else if (c->to != HOLD_CLAIM_EXTEND) {
        buyer_end(e, r, c->to);
        atomic_store_explicit(&r->end_pos, pos ? pos : 1, memory_order_release);
        count_end(&e->holds, c->to);
    }
    assert(buyer_units_of(r) != BUYER_HELD || load_state(r) == INV_HOLD_HELD);
}

void hold_claim_undo(inv_engine *e, hold_claim *c)
{
    hold_record *r = c->r;
    assert(r && state_transient(load_state(r)));
    if (c->to == INV_HOLD_HELD) {
        hold_abort(e, r); /* as a failed create: removed, never on the wheel */
    } else {
        set_sold(r, INV_HOLD_RELEASED, NULL); /* nothing sold */
        /* release: the units the batch gave back come before HELD. */
        unclaim(r);
    }
    c->r = NULL;
    assert(hold_claim_n_lines(c) == 0);
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
    assert(c->fn != NULL && table_is_live(v));
    hold_record *r = (hold_record *)(uintptr_t)v.w0;
    if (load_state(r) != INV_HOLD_HELD)
        return 0;
    assert(hold_record_ok(r));
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
    assert(e != NULL && fn != NULL);
    held_lines_ctx c = {fn, ctx};
    return table_foreach(&e->holds.by_id, held_lines_one, &c);
}
