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

#include "engine.h"

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

/* Test-only switch (tests/test_hold.c sets it; nothing else may): called
 * at these points of a create, so a test can stall it there. */
typedef enum {
    HOLD_TEST_HELD_UNPUBLISHED, /* HELD, its final record not yet published */
    HOLD_TEST_BEFORE_WHEEL,     /* published, not yet on the timing wheel */
} hold_test_point;
extern void (*hold_test_hook)(hold_test_point at);

/* Durability (persist.c calls these; single-threaded during recovery). */
typedef struct snapshot_writer snapshot_writer;
/* Applies a PERSIST_HOLD record (journal replay or snapshot load). */
int hold_replay(inv_engine *e, uint64_t pos, const void *payload, uint32_t len);
/* After replay: aborts half-created holds, completes half-ended ones (both
 * journaled), and puts every hold back on the timing wheel. */
int hold_recover_finish(inv_engine *e);
/* Writes every hold (state, lines, statuses) into a snapshot. */
int hold_snapshot(inv_engine *e, snapshot_writer *w);
#endif /* INV_HOLD_H */
