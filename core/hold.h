/*
 * hold.h — expiring, all-or-nothing reservations (private part).
 *
 * A hold record is created PENDING (claiming its id), then reserves its
 * lines one by one; all succeed -> HELD, else every taken line is given
 * back and the record is removed. Each later transition (HELD -> COMMITTED,
 * RELEASED or EXPIRED) is one CAS on the record's state, so exactly one of
 * commit, release and expiry wins and moves the units, once.
 * Invariant (checked by hold_verify_reserved): each level's reserved equals
 * the sum of the counted lines of its HELD holds, whenever no hold call is
 * in flight.
 */
#ifndef INV_HOLD_H
#define INV_HOLD_H

#include "engine_state.h"

/* Width of a timing-wheel tick and the wheel's size: the sweep costs
 * O(holds due), and a hold longer than the span is looked at once more
 * per span. */
#define HOLD_WHEEL_TICK_MS 1
#define HOLD_WHEEL_SLOTS 65536
/* Ended holds answer retries (idempotent commit/release/create) this long,
 * then they are forgotten. */
#define HOLD_RETAIN_MS (10 * 60 * 1000)
/* A create that finds the same id PENDING in another thread waits this
 * long for it to settle before answering CONFLICT. */
#define HOLD_PENDING_WAIT_US 2000
/* A retried create or end waits this long for the first call's final
 * record. */
#define HOLD_SETTLE_WAIT_MS 5000

int hold_init(inv_engine *e);
void hold_destroy(inv_engine *e);
/* Expires due holds and forgets old ended ones (background thread). */
void hold_expire_due(inv_engine *e, int64_t now_ms);
void hold_stats(inv_engine *e, inv_stats *out);
/* INV_OK when every level's reserved equals the sum of its HELD lines;
 * INV_ECONFLICT otherwise. Only while no hold call runs. */
int hold_verify_reserved(inv_engine *e);
/* Calls fn for every counted line of every HELD hold (recovery: the units
 * a level holds beyond these are committed). A non-zero return stops. */
typedef int (*hold_line_fn)(void *ctx, uint64_t item, uint64_t loc, int64_t qty);
int hold_foreach_held_line(inv_engine *e, hold_line_fn fn, void *ctx);

/* Test-only switch (tests/test_hold.c sets it; nothing else may): called
 * at these points of a create, so a test can stall it there. */
typedef enum {
    HOLD_TEST_HELD_UNPUBLISHED, /* HELD, its final record not yet published */
    HOLD_TEST_BEFORE_WHEEL, /* published, not yet on the timing wheel */
} hold_test_point;
extern void (*hold_test_hook)(hold_test_point at);

/* Hold lines of a batch (batch.c). The batch first claims every hold it
 * names: a create puts a PENDING record in the id table (as a create
 * does), an end moves HELD -> ENDING, which commits, releases, expiry and
 * creates of that id wait for as they wait for PENDING. The batch then
 * moves the units itself, and settles each claim: done (HELD, or the end's
 * state) or undone (removed, or HELD again). A claim with r NULL is a
 * settled retry (the create or end exists already): nothing to move, and
 * the batch acknowledges on ack_pos. */
typedef struct {
    hold_record *r;
    int to; /* INV_HOLD_HELD (a create), INV_HOLD_COMMITTED or _RELEASED */
    uint64_t ack_pos;
} hold_claim;

int hold_claim_create(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                      const inv_hold_line *lines, size_t n, hold_claim *c);
/* NOTFOUND also for a commit at or after the hold's expiry time (the hold
 * stays HELD until the sweep expires it). */
int hold_claim_end(inv_engine *e, const char *id, size_t len, int to, hold_claim *c);
/* The claimed hold's lines, in its record's order. hold_claim_line answers
 * whether line i has units to move (an end: only counted lines). */
size_t hold_claim_n_lines(const hold_claim *c);
bool hold_claim_line(const hold_claim *c, size_t i, inv_hold_line *out);
/* Bytes of the hold record a batch's final record embeds (0: none). */
uint32_t hold_claim_record_len(const hold_claim *c);
/* Success, before the batch's final record at pos is published: the hold
 * takes its new state (a create: counted[i], line i reserved units). */
void hold_claim_done(hold_claim *c, const bool *counted, uint64_t pos);
/* The hold record (PERSIST_HOLD payload) the final record embeds. */
void hold_claim_encode(inv_engine *e, const hold_claim *c, uint8_t *buf);
/* After the final record is published (pos 0: memory mode). */
void hold_claim_published(inv_engine *e, hold_claim *c, uint64_t pos);
/* Failure, after the batch gave every unit back. */
void hold_claim_undo(inv_engine *e, hold_claim *c);

/* Durability (recovery.c calls these; single-threaded during recovery). */
typedef struct snapshot_writer snapshot_writer;
/* Applies a PERSIST_HOLD record (journal replay or snapshot load). */
int hold_replay(inv_engine *e, uint64_t pos, const void *payload, uint32_t len);
/* After replay: aborts half-created holds, completes half-ended ones (both
 * journaled), and puts every hold back on the timing wheel. */
int hold_recover_finish(inv_engine *e);
/* Writes every hold (state, lines, statuses) into a snapshot. */
int hold_snapshot(inv_engine *e, snapshot_writer *w);
#endif /* INV_HOLD_H */
