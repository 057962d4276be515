/*
 * hold.h — expiring, all-or-nothing reservations (private part).
 *
 * A hold record is created PENDING (claiming its id), then reserves its
 * lines one by one; all succeed -> HELD, else every taken line is given
 * back and the record is removed. Every later change of a HELD hold
 * (commit, release, expiry, extend, or a batch's line) first claims it:
 * one CAS HELD -> ENDING. Its owner alone decides, with the expiry time
 * stable (only an owner changes it), and then stores the end's state
 * (COMMITTED, RELEASED, EXPIRED) or HELD again. So exactly one of commit,
 * release and expiry wins and moves the units, once.
 * Invariants (checked by hold_verify_reserved and hold_verify_buyers):
 * whenever no hold call is in flight, each level's reserved equals the sum
 * of the counted lines of its HELD holds, and each buyer counter equals
 * the units its buyer's holds count (see hold.c, "buyer limits").
 */
#ifndef INV_HOLD_H
#define INV_HOLD_H

#include "engine_state.h"

#include <stdatomic.h>

/* Width of a timing-wheel tick and the wheel's size: the sweep costs
 * O(holds due), and a hold longer than the span is looked at once more
 * per span. A record sits in one slot at a time, the one of its expiry
 * time, until the sweeper pops it; so what is due earlier than that comes
 * up to one span (HOLD_WHEEL_SLOTS * HOLD_WHEEL_TICK_MS, about 65 s) late:
 * the expiry of a hold an extend moved earlier (commits and extends refuse
 * it from its new time at once), and for a hold that ended before its
 * expiry, its forgetting and the end of its buyer window (its sold units
 * count that much longer: never shorter than the window). */
#define HOLD_WHEEL_TICK_MS 1
#define HOLD_WHEEL_SLOTS 65536
/* Ended holds answer retries (idempotent commit/release/create) this long,
 * then they are forgotten. A hold with a buyer and sold units is kept
 * until the buyer window since its commit has passed too. */
#define HOLD_RETAIN_MS (10 * 60 * 1000)
/* A change that finds the hold PENDING or claimed (ENDING) by another
 * thread waits this long for it to settle before answering CONFLICT. */
#define HOLD_PENDING_WAIT_US 2000
/* A retried create or end waits this long for the first call's final
 * record. */
#define HOLD_SETTLE_WAIT_MS 5000
/* inv_config.buyer_window_ms beyond this is taken as this (a year): the
 * sweeper keeps sold holds with a buyer that long. */
#define HOLD_BUYER_WINDOW_MS_MAX (366LL * 24 * 3600 * 1000)

int hold_init(inv_engine *e);
/* Frees every hold (a replica never promoted: those in the table). */
void hold_destroy(inv_engine *e);
/* Expires due holds, gives back buyer units whose window has passed, and
 * forgets old ended holds (background thread only: it owns the wheel). */
void hold_expire_due(inv_engine *e, int64_t now_ms);
void hold_stats(inv_engine *e, inv_stats *out);
/* INV_OK when every level's reserved equals the sum of its HELD lines;
 * INV_ECONFLICT otherwise. Only while no hold call runs. */
int hold_verify_reserved(inv_engine *e);
/* Calls fn for every counted line of every HELD hold (recovery: the units
 * a level holds beyond these are committed). A non-zero return stops. */
typedef int (*hold_line_fn)(void *ctx, uint64_t item, uint64_t loc, int64_t qty);
int hold_foreach_held_line(inv_engine *e, hold_line_fn fn, void *ctx);
/* INV_OK when every buyer counter equals the units the holds of its buyer
 * count (HELD: every line; COMMITTED within the window: the units sold);
 * INV_ECONFLICT otherwise. Only while no hold call and no sweep runs. */
int hold_verify_buyers(inv_engine *e);

/* Test points (fault.h site FAULT_HOLD_POINT: arg is the point, arg2 the
 * journal position it is about, 0 for none or memory mode), so a test can
 * stall a change there (or, in a child process, die there). */
typedef enum {
    HOLD_TEST_HELD_UNPUBLISHED, /* HELD, its final record not yet published */
    HOLD_TEST_BEFORE_WHEEL, /* published, not yet on the timing wheel */
    HOLD_TEST_END_PARTIAL, /* an end published a partial record at pos */
    HOLD_TEST_END_DECIDED, /* an end's state stored, its level changes not made */
} hold_test_point;

/* Hold lines of a batch (batch.c). The batch first claims every hold it
 * names: a create puts a PENDING record in the id table (as a create
 * does) and takes its buyer units; an end or an extend moves HELD ->
 * ENDING, which commits, releases, expiry, extends and creates of that id
 * wait for as they wait for PENDING. The batch then moves the units
 * itself, and settles each claim: done (HELD, or the end's state) or
 * undone (removed, or HELD again, as it was). A claim with r NULL is a
 * settled retry (the create or end exists already): nothing to move, and
 * the batch acknowledges on ack_pos. */
#define HOLD_CLAIM_EXTEND 97 /* hold_claim.to of an extend */

typedef struct {
    hold_record *r;
    int to; /* INV_HOLD_HELD (a create), INV_HOLD_COMMITTED or _RELEASED, or
             * HOLD_CLAIM_EXTEND */
    uint64_t ack_pos;
    int64_t expires_at_ms; /* an extend: the new expiry */
    int64_t extended_at_ms; /* an extend: when it was decided (its record's time) */
} hold_claim;

/* opts may be NULL; failure (may be NULL) names the line of a buyer limit
 * refusal (INV_ELIMIT), as inv_hold_create_ex does. */
int hold_claim_create(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms,
                      const inv_hold_line *lines, size_t n, const inv_hold_opts *opts,
                      hold_claim *c, inv_hold_failure *failure);
/* NOTFOUND also for a commit at or after the hold's expiry time (the hold
 * stays HELD until the sweep expires it). A commit with n_sold lines sells
 * those units (as inv_hold_commit_partial) and releases the rest; n_sold
 * 0: all of it. */
int hold_claim_end(inv_engine *e, const char *id, size_t len, int to, const inv_hold_line *sold,
                   size_t n_sold, hold_claim *c);
/* Claims a HELD hold for a new expiry, ttl_ms from now (as inv_hold_extend). */
int hold_claim_extend(inv_engine *e, const char *id, size_t len, uint64_t ttl_ms, hold_claim *c);
/* The claimed hold's lines, in its record's order. hold_claim_line answers
 * whether line i has units to move (an end: only counted lines), and
 * *sold, the units of it an end sells (the rest return to available).
 * hold_claim_n_moves: the level changes the claim needs (a partial commit
 * moves a line in two: its sold units, then the rest). */
size_t hold_claim_n_lines(const hold_claim *c);
size_t hold_claim_n_moves(const hold_claim *c);
bool hold_claim_line(const hold_claim *c, size_t i, inv_hold_line *out, int64_t *sold);
/* Bytes of the hold record a batch's final record embeds (0: none). */
uint32_t hold_claim_record_len(const hold_claim *c);
/* Success, before the batch's final record at pos is published: the hold
 * takes its new state (a create: counted[i], line i reserved units; an
 * extend: its new expiry). */
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
 * journaled), counts the buyers' units again, and puts every hold back on
 * the timing wheel. */
int hold_recover_finish(inv_engine *e);
/* Writes every hold (state, lines, statuses, attributes) into a snapshot. */
int hold_snapshot(inv_engine *e, snapshot_writer *w);
#endif /* INV_HOLD_H */
