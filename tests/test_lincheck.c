/*
 * test_lincheck.c — the linearizability checker (tests/lincheck.h) on
 * hand-made histories: it must accept linearizable ones (concurrent
 * operations in either order, an operation in flight at a crash that did
 * or did not happen) and reject every kind of anomaly the server suite
 * hunts: a stale read, a lost update, an IFREV that succeeds on a changed
 * level, a revision reused (also across a crash), an aborted hold that
 * changes a revision or is seen by a reader, a hold seen one line at a
 * time, a refusal while stock was there, an acknowledged write lost in a
 * crash. Times are in microseconds here (the checker only compares them).
 */
#include <criterion/criterion.h>

#include "lincheck.h"

#define US 1000ull /* the histories' times are written in microseconds */

static lc_history H;
static lc_state S0;

static void setup(void)
{
    memset(&H, 0, sizeof H);
    lc_state_init(&S0);
    lc_state_level(&S0, 0, 10, 0, 1);
    lc_state_level(&S0, 1, 10, 0, 1);
}
static void teardown(void)
{
    lc_history_free(&H);
}

TestSuite(lincheck, .init = setup, .fini = teardown, .timeout = 60);

static lc_op *add(lc_kind kind, unsigned client, unsigned level, uint64_t t0, uint64_t t1)
{
    lc_op op;
    memset(&op, 0, sizeof op);
    op.kind = (uint8_t)kind;
    op.client = (uint8_t)client;
    op.level = (uint8_t)level;
    op.invoke_ns = t0 * US;
    op.return_ns = t1 == LC_NO_RETURN ? LC_NO_RETURN : t1 * US;
    cr_assert(lc_history_push(&H, &op));
    return &H.v[H.n - 1];
}

static void reply_level(lc_op *op, int64_t avail, int64_t reserved, uint64_t rev)
{
    op->reply = LC_R_LEVEL;
    op->r_available = avail;
    op->r_reserved = reserved;
    op->r_revision = rev;
}

static void get(unsigned c, unsigned l, uint64_t t0, uint64_t t1, int64_t a, int64_t r,
                uint64_t rev)
{
    reply_level(add(LC_GET, c, l, t0, t1), a, r, rev);
}

/* LEVEL.SET (ifrev 0: none) answered with the level. */
static void set(unsigned c, unsigned l, int64_t qty, uint64_t ifrev, uint64_t t0, uint64_t t1,
                int64_t a, int64_t r, uint64_t rev)
{
    lc_op *op = add(LC_SET, c, l, t0, t1);
    op->arg = qty;
    op->has_ifrev = ifrev != 0;
    op->ifrev = ifrev;
    reply_level(op, a, r, rev);
}

static void set_conflict(unsigned c, unsigned l, int64_t qty, uint64_t ifrev, uint64_t t0,
                         uint64_t t1, uint64_t current)
{
    lc_op *op = add(LC_SET, c, l, t0, t1);
    op->arg = qty;
    op->has_ifrev = 1;
    op->ifrev = ifrev;
    op->reply = LC_R_CONFLICT;
    op->r_revision = current;
}

/* LEVEL.ADJUST delta [FLOOR 0 when floored] answered with the level. */
static lc_op *adjust(unsigned c, unsigned l, int64_t delta, bool floored, uint64_t t0, uint64_t t1,
                     int64_t a, int64_t r, uint64_t rev)
{
    lc_op *op = add(LC_ADJUST, c, l, t0, t1);
    op->arg = delta;
    op->has_floor = floored;
    reply_level(op, a, r, rev);
    return op;
}

static void adjust_refused(unsigned c, unsigned l, int64_t delta, uint64_t t0, uint64_t t1,
                           int64_t avail)
{
    lc_op *op = add(LC_ADJUST, c, l, t0, t1);
    op->arg = delta;
    op->has_floor = 1;
    op->reply = LC_R_INSUFFICIENT;
    op->reply_level = (uint8_t)l;
    op->r_available = avail;
}

/* A hold op of client c's hold number h on both levels, q units each. */
static lc_op *hold(lc_kind kind, unsigned c, uint32_t h, int64_t q0, int64_t q1, uint64_t t0,
                   uint64_t t1, lc_reply_kind reply)
{
    lc_op *op = add(kind, c, 0, t0, t1);
    op->hold = h;
    op->n_lines = 0;
    if (q0) {
        op->line_level[op->n_lines] = 0;
        op->line_qty[op->n_lines++] = q0;
    }
    if (q1) {
        op->line_level[op->n_lines] = 1;
        op->line_qty[op->n_lines++] = q1;
    }
    op->reply = (uint8_t)reply;
    return op;
}

static lc_verdict check_config(lc_crash_mode mode, bool units_only, lc_result *res)
{
    lc_config cfg = {
        .n_levels = 2, .crash_mode = mode, .units_only = units_only, .out = stderr, .name = "unit"};
    return lc_check(H.v, H.n, &S0, &cfg, res);
}

static lc_verdict check_mode(lc_crash_mode mode, lc_result *res)
{
    return check_config(mode, false, res);
}

static lc_verdict check(void)
{
    lc_result res;
    return check_mode(LC_CRASH_STRICT, &res);
}

/* ---- linearizable histories ------------------------------------------------- */

Test(lincheck, a_sequential_history_is_linearizable)
{
    set(0, 0, 5, 0, 0, 1, 5, 0, 2);
    adjust(1, 0, -2, true, 2, 3, 3, 0, 3);
    get(2, 0, 4, 5, 3, 0, 3);
    set(0, 0, 7, 3, 6, 7, 7, 0, 9); /* revisions may skip */
    get(1, 0, 8, 9, 7, 0, 9);
    cr_assert_eq(check(), LC_OK);
}

Test(lincheck, concurrent_writes_may_take_effect_in_either_order)
{
    /* both overlap; the revisions say the second invoked went first */
    adjust(0, 0, +1, false, 0, 10, 12, 0, 3);
    adjust(1, 0, +1, false, 1, 9, 11, 0, 2);
    get(2, 0, 2, 8, 11, 0, 2); /* saw only the one that went first */
    get(2, 0, 11, 12, 12, 0, 3);
    cr_assert_eq(check(), LC_OK);
}

Test(lincheck, a_hold_reserves_commits_and_releases)
{
    hold(LC_HOLD_CREATE, 0, 1, 3, 2, 0, 1, LC_R_OK);
    get(1, 0, 2, 3, 7, 3, 5);
    get(1, 1, 2, 3, 8, 2, 6);
    hold(LC_HOLD_COMMIT, 0, 1, 3, 2, 4, 5, LC_R_OK);
    get(1, 0, 6, 7, 7, 0, 8);
    hold(LC_HOLD_RELEASE, 0, 1, 3, 2, 7, 8, LC_R_CONFLICT); /* committed */
    hold(LC_HOLD_CREATE, 0, 2, 7, 0, 8, 9, LC_R_OK);
    hold(LC_HOLD_CREATE, 1, 1, 1, 1, 10, 11, LC_R_INSUFFICIENT)->r_available = 0;
    hold(LC_HOLD_RELEASE, 0, 2, 7, 0, 12, 13, LC_R_OK);
    hold(LC_HOLD_RELEASE, 0, 2, 7, 0, 14, 15, LC_R_OK); /* idempotent */
    hold(LC_HOLD_COMMIT, 0, 9, 1, 0, 18, 19, LC_R_NOTFOUND);
    get(1, 0, 20, 21, 7, 0, 10);
    cr_assert_eq(check(), LC_OK);
}

/* A floored -1 in flight at a crash, then a read that saw (a, rev). */
static lc_verdict in_flight_then_read(int64_t a, uint64_t rev)
{
    lc_history_free(&H);
    set(0, 0, 5, 0, 0, 1, 5, 0, 2);
    lc_op *p = add(LC_ADJUST, 1, 0, 2, LC_NO_RETURN); /* no reply: killed */
    p->arg = -1;
    p->has_floor = 1;
    cr_assert(lc_history_crash(&H, 3 * US, 4 * US));
    get(2, 0, 5, 6, a, 0, rev);
    return check();
}

Test(lincheck, a_write_in_flight_at_a_crash_may_or_may_not_have_happened)
{
    cr_assert_eq(in_flight_then_read(4, 7), LC_OK, "it happened");
    cr_assert_eq(in_flight_then_read(5, 2), LC_OK, "it did not");
    cr_assert_eq(in_flight_then_read(3, 7), LC_VIOLATION, "it happened twice");
    cr_assert_eq(in_flight_then_read(4, 2), LC_VIOLATION, "it happened without a new revision");
}

Test(lincheck, windows_split_at_quiescent_points_and_carry_every_end_state)
{
    lc_result res;
    /* two writes in flight at the crash: four outcomes, told apart only in
     * the next window */
    lc_op *p = add(LC_ADJUST, 0, 0, 0, LC_NO_RETURN);
    p->arg = +1;
    p = add(LC_ADJUST, 1, 1, 0, LC_NO_RETURN);
    p->arg = +2;
    cr_assert(lc_history_crash(&H, 1 * US, 2 * US));
    get(0, 0, 3, 4, 10, 0, 1); /* the first did not happen */
    get(0, 1, 5, 6, 12, 0, 40); /* the second did */
    for (uint64_t t = 10; t < 100; t += 2)
        get(1, 0, t, t + 1, 10, 0, 1);
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_OK, "%s", res.msg);
    cr_assert_geq(res.windows, 40, "windows %zu", res.windows);
    cr_assert_eq(res.crashes, 1);
}

/* ---- anomalies -------------------------------------------------------------- */

Test(lincheck, a_stale_read_is_caught)
{
    set(0, 0, 5, 0, 0, 1, 5, 0, 2);
    get(1, 0, 2, 3, 10, 0, 1); /* invoked after the set returned */
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, a_lost_update_is_caught)
{
    adjust(0, 0, +1, false, 0, 10, 11, 0, 2);
    adjust(1, 0, +1, false, 1, 9, 11, 0, 3); /* both saw 10 */
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, an_ifrev_that_succeeds_on_a_changed_level_is_caught)
{
    set(0, 0, 5, 0, 0, 1, 5, 0, 2);
    set(1, 0, 9, 1, 2, 3, 9, 0, 3); /* IFREV 1, but the level is at 2 */
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, an_ifrev_on_the_current_revision_succeeds_and_a_stale_one_conflicts)
{
    set(0, 0, 5, 0, 0, 1, 5, 0, 2);
    set_conflict(1, 0, 9, 1, 2, 3, 2);
    set(1, 0, 9, 2, 4, 5, 9, 0, 3);
    cr_assert_eq(check(), LC_OK);
}

Test(lincheck, a_conflict_on_a_matching_revision_is_caught)
{
    set_conflict(1, 0, 9, 1, 0, 1, 1); /* IFREV 1 on a level at 1 */
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, a_revision_reused_is_caught)
{
    set(0, 0, 5, 0, 0, 1, 5, 0, 4);
    set(1, 0, 6, 0, 2, 3, 6, 0, 4);
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, a_revision_seen_before_a_crash_and_reused_after_it_is_caught)
{
    /* a read saw the revision of a write in flight at the crash (allowed
     * in dirty-reads mode); after the restart another write gets it again */
    lc_op *p = add(LC_ADJUST, 0, 0, 0, LC_NO_RETURN);
    p->arg = +5;
    get(1, 0, 1, 2, 15, 0, 7);
    cr_assert(lc_history_crash(&H, 3 * US, 4 * US));
    get(1, 0, 5, 6, 10, 0, 1); /* the write was lost */
    set(2, 0, 3, 0, 7, 8, 3, 0, 7);
    lc_result res;
    cr_assert_eq(check_mode(LC_CRASH_DIRTY_READS, &res), LC_VIOLATION);
}

Test(lincheck, a_read_of_a_change_the_crash_lost_passes_only_with_dirty_reads)
{
    lc_op *p = add(LC_ADJUST, 0, 0, 0, LC_NO_RETURN);
    p->arg = +5;
    get(1, 0, 1, 2, 15, 0, 7);
    cr_assert(lc_history_crash(&H, 3 * US, 4 * US));
    get(1, 0, 5, 6, 10, 0, 1);
    set(2, 0, 3, 0, 7, 8, 3, 0, 9);
    lc_history copy = {0};
    cr_assert(lc_history_append(&copy, &H));
    lc_result res;
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_VIOLATION);
    lc_history_free(&H);
    H = copy;
    cr_assert_eq(check_mode(LC_CRASH_DIRTY_READS, &res), LC_OK, "%s", res.msg);
}

Test(lincheck, an_acknowledged_write_lost_in_a_crash_is_caught)
{
    set(0, 0, 5, 0, 0, 1, 5, 0, 2);
    cr_assert(lc_history_crash(&H, 3 * US, 4 * US));
    get(1, 0, 5, 6, 10, 0, 1);
    lc_result res;
    cr_assert_eq(check_mode(LC_CRASH_DIRTY_READS, &res), LC_VIOLATION);
}

Test(lincheck, an_aborted_hold_visible_to_a_reader_is_caught)
{
    /* the hold fails on line 1 (no stock there) but a reader saw line 0
     * reserved while it ran */
    set(0, 1, 0, 0, 0, 1, 0, 0, 2);
    hold(LC_HOLD_CREATE, 1, 1, 3, 1, 2, 10, LC_R_INSUFFICIENT)->reply_level = 1;
    get(2, 0, 3, 4, 7, 3, 5);
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, an_aborted_hold_that_raises_a_revision_is_caught)
{
    set(0, 1, 0, 0, 0, 1, 0, 0, 2);
    hold(LC_HOLD_CREATE, 1, 1, 3, 1, 2, 3, LC_R_INSUFFICIENT)->reply_level = 1;
    get(2, 0, 4, 5, 10, 0, 6); /* same units, a new revision */
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, a_hold_seen_one_line_at_a_time_is_caught)
{
    hold(LC_HOLD_CREATE, 0, 1, 2, 2, 0, 20, LC_R_OK);
    get(1, 0, 1, 2, 8, 2, 5); /* line 0 already reserved ... */
    get(1, 1, 3, 4, 10, 0, 1); /* ... line 1 not yet */
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, a_refusal_while_stock_was_there_is_caught)
{
    adjust_refused(0, 0, -1, 0, 1, 0); /* "sold out" with 10 available */
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, an_oversell_is_caught)
{
    set(0, 0, 1, 0, 0, 1, 1, 0, 2);
    adjust(1, 0, -1, true, 2, 5, 0, 0, 3);
    adjust(2, 0, -1, true, 3, 6, -1, 0, 4);
    cr_assert_eq(check(), LC_VIOLATION);
}

Test(lincheck, a_failing_window_is_reported_and_shrunk)
{
    for (uint64_t t = 0; t < 20; t += 2)
        get(0, 0, t, t + 1, 10, 0, 1);
    set(1, 0, 5, 0, 30, 40, 5, 0, 2);
    get(2, 1, 31, 39, 10, 0, 1); /* a read of the other level, not needed */
    get(3, 0, 32, 33, 5, 0, 2);
    get(3, 0, 34, 35, 10, 0, 1); /* goes back */
    lc_result res;
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_VIOLATION);
    cr_assert_eq(res.fail_window, 10, "window %zu", res.fail_window);
    cr_assert_eq(res.fail_ops, 3, "kept %zu operations", res.fail_ops);
}

/* A fresh history: client 0's hold of 2 on level 0 and 3 on level 1 in
 * flight at a crash; the caller adds what was seen after it. */
static void hold_in_flight_at_a_crash(void)
{
    lc_history_free(&H);
    hold(LC_HOLD_CREATE, 0, 1, 2, 3, 0, LC_NO_RETURN, LC_R_NONE);
    cr_assert(lc_history_crash(&H, 1 * US, 2 * US));
}

Test(lincheck, a_hold_in_flight_at_a_crash_is_there_whole_or_not_at_all)
{
    lc_result res;
    hold_in_flight_at_a_crash();
    get(1, 0, 3, 4, 8, 2, 5);
    get(1, 1, 5, 6, 7, 3, 6);
    hold(LC_HOLD_RELEASE, 0, 1, 2, 3, 7, 8, LC_R_OK);
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_OK, "whole: %s", res.msg);

    hold_in_flight_at_a_crash();
    get(1, 0, 3, 4, 10, 0, 1);
    hold(LC_HOLD_RELEASE, 0, 1, 2, 3, 7, 8, LC_R_NOTFOUND);
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_OK, "not at all: %s", res.msg);

    hold_in_flight_at_a_crash();
    get(1, 0, 3, 4, 8, 2, 5); /* line 0 survived ... */
    get(1, 1, 5, 6, 10, 0, 1); /* ... line 1 did not */
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_VIOLATION, "half");
}

Test(lincheck, a_window_without_a_quiescent_point_is_not_decided)
{
    /* one long read overlaps everything: no cut, more than a window */
    get(0, 0, 0, 10 * LC_WINDOW_MAX, 10, 0, 1);
    for (uint64_t t = 1; t <= LC_WINDOW_MAX; t++)
        get(1, 0, 2 * t, 2 * t + 1, 10, 0, 1);
    lc_result res;
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_TOO_LARGE);
    cr_assert_eq(res.window_max, LC_WINDOW_MAX + 1, "largest window %zu", res.window_max);
}

Test(lincheck, a_projection_onto_one_level_shrinks_a_counterexample)
{
    for (uint64_t t = 0; t < 20; t += 2) /* traffic on level 1 alongside */
        adjust(0, 1, +1, false, t, t + 30, 11 + (int64_t)t / 2, 0, 2 + t / 2);
    set(1, 0, 5, 0, 1, 2, 5, 0, 2);
    get(2, 0, 3, 4, 10, 0, 1); /* stale */
    lc_result res;
    cr_assert_eq(check_mode(LC_CRASH_STRICT, &res), LC_VIOLATION);
    cr_assert_eq(res.fail_ops, 2, "kept %zu operations", res.fail_ops);
}

Test(lincheck, units_only_ignores_revisions_but_not_units)
{
    lc_result res;
    set(0, 0, 5, 0, 0, 1, 5, 0, 4);
    set(1, 0, 6, 0, 2, 3, 6, 0, 4); /* a revision reused ... */
    set(1, 0, 7, 1, 4, 5, 7, 0, 9); /* ... an IFREV on a changed level */
    lc_history copy = {0};
    cr_assert(lc_history_append(&copy, &H));
    cr_assert_eq(check_config(LC_CRASH_STRICT, true, &res), LC_OK, "%s", res.msg);
    lc_history_free(&H);
    H = copy;
    cr_assert_eq(check_config(LC_CRASH_STRICT, false, &res), LC_VIOLATION);

    lc_history_free(&H);
    set(0, 0, 5, 0, 0, 1, 5, 0, 2);
    get(1, 0, 2, 3, 10, 0, 2); /* the units are stale */
    cr_assert_eq(check_config(LC_CRASH_STRICT, true, &res), LC_VIOLATION);
}

/* A hold commit's sold units must never read as reserved at the commit's
 * revision (issue 17 item 11: the engine counts them under the levels'
 * LOCKs, so a reply sees the sale whole): the checker refuses it. */
Test(lincheck, a_commit_whose_sold_units_read_as_reserved_is_a_violation)
{
    lc_result res;
    hold(LC_HOLD_CREATE, 0, 1, 2, 0, 0, 1, LC_R_OK);
    get(1, 0, 2, 3, 8, 2, 5);
    hold(LC_HOLD_COMMIT, 0, 1, 2, 0, 4, 20, LC_R_OK);
    get(1, 0, 7, 8, 8, 0, 7); /* sold at the commit's revision */
    lc_history copy = {0};
    cr_assert(lc_history_append(&copy, &H));
    cr_assert_eq(check_config(LC_CRASH_STRICT, false, &res), LC_OK, "%s", res.msg);
    lc_history_free(&H);
    H = copy;
    get(1, 0, 9, 10, 8, 2, 7); /* the commit's revision, its units reserved again */
    cr_assert_eq(check_config(LC_CRASH_STRICT, false, &res), LC_VIOLATION);
}
