/*
 * test_hold.c — holds (reservations) through the public API, one thread:
 * create (all or nothing, validation, limits, idempotent retries), commit,
 * release, expiry by the background sweep, reuse of an ended hold's id,
 * untracked lines, HOLD get and the holds counters of inv_stats.
 *
 * Every scenario ends with hold_verify_reserved(e) == INV_OK: each level's
 * reserved equals the sum of the counted lines of its HELD holds.
 * Concurrency lives in test_stress_holds.c.
 */
#include "test_util.h"

#include "hold.h"
#include "persist.h"
#include "invcore.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------ */

enum {
    LOC_A = 10,
    LOC_B = 11,
    ITEM_1 = 1,
    ITEM_2 = 2,
    ITEM_3 = 3,
    ITEM_FREE = 50, /* untracked */
    ITEM_NO_LEVEL = 60, /* known item without any level */
    ITEM_UNKNOWN = 999, /* not in the catalog */
    SWEEP_MS = 10,
    LONG_TTL_MS = 600000, /* never expires during a test */
};

/* Two locations; items 1..3 tracked with 10 units at LOC_A and 20 at LOC_B;
 * ITEM_FREE untracked with 0 available at LOC_A; ITEM_NO_LEVEL has none. */
/* Both locations, and items ITEM_1..last tracked with 10 units at LOC_A
 * and 20 at LOC_B. */
static void stock_tracked(inv_engine *e, uint64_t last)
{
    cr_assert_eq(inv_location_put(e, LOC_A, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, LOC_B, NULL), INV_OK);
    for (uint64_t item = ITEM_1; item <= last; item++) {
        tu_put_item(e, item, true);
        tu_set_level(e, item, LOC_A, 10);
        tu_set_level(e, item, LOC_B, 20);
    }
}

static inv_engine *open_stocked(void)
{
    inv_engine *e = tu_open_with_sweep(SWEEP_MS);
    stock_tracked(e, ITEM_3);
    tu_put_item(e, ITEM_FREE, false);
    tu_set_level(e, ITEM_FREE, LOC_A, 0);
    tu_put_item(e, ITEM_NO_LEVEL, true);
    return e;
}

#define assert_level(e, item, loc, avail, resv)                                                   \
    do {                                                                                          \
        inv_level lv_ = tu_level_of((e), (item), (loc));                                          \
        cr_assert_eq(lv_.available, (avail), "(%d, %d) available %" PRId64 " != %d", (int)(item), \
                     (int)(loc), lv_.available, (int)(avail));                                    \
        cr_assert_eq(lv_.reserved, (resv), "(%d, %d) reserved %" PRId64 " != %d", (int)(item),    \
                     (int)(loc), lv_.reserved, (int)(resv));                                      \
    } while (0)

static int create(inv_engine *e, const char *id, uint64_t ttl_ms, const inv_hold_line *lines,
                  size_t n, inv_hold_failure *failure)
{
    return inv_hold_create(e, id, strlen(id), ttl_ms, lines, n, failure);
}

static int commit(inv_engine *e, const char *id)
{
    return inv_hold_commit(e, id, strlen(id));
}

static int release(inv_engine *e, const char *id)
{
    return inv_hold_release(e, id, strlen(id));
}

static int get(inv_engine *e, const char *id, inv_hold_info *out)
{
    return inv_hold_get(e, id, strlen(id), out);
}

static inv_hold_state state_of(inv_engine *e, const char *id)
{
    inv_hold_info info;
    cr_assert_eq(get(e, id, &info), INV_OK, "hold %s", id);
    return info.state;
}

/* Polls (bounded: up to limit_ms) until the hold is no longer HELD; returns
 * the monotonic ms waited, or -1 when it never ended. */
static int64_t wait_hold_ended(inv_engine *e, const char *id, int64_t start_ms, int64_t limit_ms)
{
    while (clock_mono_ms() - start_ms < limit_ms) {
        if (state_of(e, id) != INV_HOLD_HELD)
            return clock_mono_ms() - start_ms;
        tu_sleep_ms(2);
    }
    return -1;
}

/* The invariants, then the engine is closed. The buyer check is exact
 * only while no sweep runs: one may give buyer units back between its
 * walks, so a few tries (a real miscount persists). */
static void verify_and_close(inv_engine *e)
{
    cr_assert_eq(hold_verify_reserved(e), INV_OK, "reserved != sum of held lines");
    int rc = INV_ECONFLICT;
    for (int i = 0; i < 50 && rc != INV_OK; i++) {
        rc = hold_verify_buyers(e);
        if (rc != INV_OK)
            tu_sleep_ms(1);
    }
    cr_assert_eq(rc, INV_OK, "a buyer's count != the units of its holds");
    inv_close(e);
}

/* ---- create ------------------------------------------------------------- */

Test(hold, create_moves_every_line_from_available_to_reserved)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 3}, {ITEM_2, LOC_B, 5}, {ITEM_3, LOC_A, 10}};
    cr_assert_eq(create(e, "h1", LONG_TTL_MS, lines, 3, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 7, 3);
    assert_level(e, ITEM_2, LOC_B, 15, 5);
    assert_level(e, ITEM_3, LOC_A, 0, 10); /* all of it */
    assert_level(e, ITEM_1, LOC_B, 20, 0); /* untouched */
    cr_assert_eq(state_of(e, "h1"), INV_HOLD_HELD);
    verify_and_close(e);
}

Test(hold, create_bumps_the_revision_of_every_reserved_level)
{
    inv_engine *e = open_stocked();
    inv_level before = tu_level_of(e, ITEM_1, LOC_A);
    inv_hold_line line = {ITEM_1, LOC_A, 1};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    inv_level held = tu_level_of(e, ITEM_1, LOC_A);
    cr_assert_gt(held.revision, before.revision);
    cr_assert_eq(commit(e, "h"), INV_OK);
    cr_assert_gt(tu_level_of(e, ITEM_1, LOC_A).revision, held.revision);
    verify_and_close(e);
}

Test(hold, create_gives_back_taken_lines_when_a_later_line_is_insufficient)
{
    inv_engine *e = open_stocked();
    /* Caller's order puts the short line last but one; the engine reserves
     * in (item, location) order, so ITEM_1 is taken before ITEM_2 fails. */
    inv_hold_line lines[] = {
        {ITEM_3, LOC_A, 1}, {ITEM_1, LOC_A, 4}, {ITEM_2, LOC_A, 11}, {ITEM_1, LOC_B, 2}};
    inv_hold_failure f;
    memset(&f, 0xff, sizeof f);
    cr_assert_eq(create(e, "short", LONG_TTL_MS, lines, 4, &f), INV_EINSUFFICIENT);
    cr_assert_eq(f.line, 2, "failing line index %zu (caller's order)", f.line);
    cr_assert_eq(f.item, ITEM_2);
    cr_assert_eq(f.location, LOC_A);
    cr_assert_eq(f.available, 10, "available seen %" PRId64, f.available);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_1, LOC_B, 20, 0);
    assert_level(e, ITEM_2, LOC_A, 10, 0);
    assert_level(e, ITEM_3, LOC_A, 10, 0);
    inv_hold_info info;
    cr_assert_eq(get(e, "short", &info), INV_ENOTFOUND);
    cr_assert_eq(commit(e, "short"), INV_ENOTFOUND);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_created, 0);
    cr_assert_eq(st.holds_active, 0);
    verify_and_close(e);
}

Test(hold, create_reports_the_available_seen_after_other_holds_took_some)
{
    inv_engine *e = open_stocked();
    inv_hold_line first = {ITEM_1, LOC_A, 7};
    cr_assert_eq(create(e, "first", LONG_TTL_MS, &first, 1, NULL), INV_OK);
    inv_hold_line second[] = {{ITEM_2, LOC_A, 1}, {ITEM_1, LOC_A, 4}};
    inv_hold_failure f;
    memset(&f, 0, sizeof f);
    cr_assert_eq(create(e, "second", LONG_TTL_MS, second, 2, &f), INV_EINSUFFICIENT);
    cr_assert_eq(f.line, 1);
    cr_assert_eq(f.item, ITEM_1);
    cr_assert_eq(f.location, LOC_A);
    cr_assert_eq(f.available, 3);
    assert_level(e, ITEM_1, LOC_A, 3, 7);
    assert_level(e, ITEM_2, LOC_A, 10, 0);
    /* An INSUFFICIENT create leaves the id free for a smaller try. */
    second[1].qty = 3;
    cr_assert_eq(create(e, "second", LONG_TTL_MS, second, 2, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 0, 10);
    assert_level(e, ITEM_2, LOC_A, 9, 1);
    verify_and_close(e);
}

Test(hold, create_accepts_a_null_failure_pointer_when_insufficient)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 11};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, &line, 1, NULL), INV_EINSUFFICIENT);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    verify_and_close(e);
}

Test(hold, create_on_a_missing_level_is_notfound_and_takes_nothing)
{
    inv_engine *e = open_stocked();
    inv_hold_line no_level[] = {{ITEM_1, LOC_A, 1}, {ITEM_NO_LEVEL, LOC_A, 1}};
    cr_assert_eq(create(e, "a", LONG_TTL_MS, no_level, 2, NULL), INV_ENOTFOUND);
    inv_hold_line no_item[] = {{ITEM_2, LOC_B, 1}, {ITEM_UNKNOWN, LOC_B, 1}};
    cr_assert_eq(create(e, "b", LONG_TTL_MS, no_item, 2, NULL), INV_ENOTFOUND);
    inv_hold_line no_loc[] = {{ITEM_1, LOC_A, 1}, {ITEM_1, 12345, 1}};
    cr_assert_eq(create(e, "c", LONG_TTL_MS, no_loc, 2, NULL), INV_ENOTFOUND);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_2, LOC_B, 20, 0);
    inv_hold_info info;
    cr_assert_eq(get(e, "a", &info), INV_ENOTFOUND);
    cr_assert_eq(get(e, "b", &info), INV_ENOTFOUND);
    cr_assert_eq(get(e, "c", &info), INV_ENOTFOUND);
    cr_assert_eq(tu_stats_of(e).holds_created, 0);
    verify_and_close(e);
}

Test(hold, create_rejects_invalid_arguments)
{
    inv_engine *e = open_stocked();
    inv_hold_line dup[] = {{ITEM_1, LOC_A, 1}, {ITEM_2, LOC_A, 1}, {ITEM_1, LOC_A, 2}};
    cr_assert_eq(create(e, "dup", LONG_TTL_MS, dup, 3, NULL), INV_EINVALID);
    inv_hold_line zero[] = {{ITEM_1, LOC_A, 1}, {ITEM_2, LOC_A, 0}};
    cr_assert_eq(create(e, "zero", LONG_TTL_MS, zero, 2, NULL), INV_EINVALID);
    inv_hold_line neg[] = {{ITEM_1, LOC_A, -1}};
    cr_assert_eq(create(e, "neg", LONG_TTL_MS, neg, 1, NULL), INV_EINVALID);
    inv_hold_line min[] = {{ITEM_1, LOC_A, INT64_MIN}};
    cr_assert_eq(create(e, "min", LONG_TTL_MS, min, 1, NULL), INV_EINVALID);
    inv_hold_line ok = {ITEM_1, LOC_A, 1};
    cr_assert_eq(inv_hold_create(e, "x", 0, LONG_TTL_MS, &ok, 1, NULL), INV_EINVALID);
    cr_assert_eq(inv_hold_create(e, NULL, 1, LONG_TTL_MS, &ok, 1, NULL), INV_EINVALID);
    cr_assert_eq(create(e, "nolines", LONG_TTL_MS, &ok, 0, NULL), INV_EINVALID);
    cr_assert_eq(create(e, "nullines", LONG_TTL_MS, NULL, 1, NULL), INV_EINVALID);
    cr_assert_eq(create(e, "ttl0", 0, &ok, 1, NULL), INV_EINVALID);
    cr_assert_eq(inv_hold_create(NULL, "x", 1, LONG_TTL_MS, &ok, 1, NULL), INV_EINVALID);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_2, LOC_A, 10, 0);
    cr_assert_eq(tu_stats_of(e).holds_created, 0);
    verify_and_close(e);
}

Test(hold, create_enforces_the_id_lines_and_ttl_limits)
{
    inv_engine *e = open_stocked();
    inv_hold_line one = {ITEM_1, LOC_A, 1};
    char id[INV_HOLD_ID_MAX + 2];
    memset(id, 'k', sizeof id);
    cr_assert_eq(inv_hold_create(e, id, INV_HOLD_ID_MAX + 1, LONG_TTL_MS, &one, 1, NULL),
                 INV_ELIMIT);
    cr_assert_eq(create(e, "ttl", INV_HOLD_TTL_MS_MAX + 1, &one, 1, NULL), INV_ELIMIT);
    cr_assert_eq(create(e, "ttl", UINT64_MAX, &one, 1, NULL), INV_ELIMIT);

    /* INV_HOLD_LINES_MAX + 1 distinct levels: one item at that many places. */
    enum { N = INV_HOLD_LINES_MAX + 1 };
    inv_hold_line many[N];
    for (size_t i = 0; i < N; i++) {
        uint64_t loc = 1000 + i;
        cr_assert_eq(inv_location_put(e, loc, NULL), INV_OK);
        tu_set_level(e, ITEM_3, loc, 1);
        many[i] = (inv_hold_line){ITEM_3, loc, 1};
    }
    cr_assert_eq(create(e, "many", LONG_TTL_MS, many, N, NULL), INV_ELIMIT);
    for (size_t i = 0; i < N; i++)
        assert_level(e, ITEM_3, 1000 + i, 1, 0);
    cr_assert_eq(tu_stats_of(e).holds_created, 0);

    /* Exactly at the limits is fine. */
    cr_assert_eq(inv_hold_create(e, id, INV_HOLD_ID_MAX, INV_HOLD_TTL_MS_MAX, &one, 1, NULL),
                 INV_OK);
    cr_assert_eq(create(e, "many", LONG_TTL_MS, many, N - 1, NULL), INV_OK);
    for (size_t i = 0; i < N - 1; i++)
        assert_level(e, ITEM_3, 1000 + i, 0, 1);
    assert_level(e, ITEM_3, 1000 + N - 1, 1, 0);
    inv_hold_info info;
    cr_assert_eq(get(e, "many", &info), INV_OK);
    cr_assert_eq(info.n_lines, N - 1);
    verify_and_close(e);
}

Test(hold, ids_of_other_calls_respect_the_id_limit)
{
    inv_engine *e = open_stocked();
    char id[INV_HOLD_ID_MAX + 1];
    memset(id, 'k', sizeof id);
    inv_hold_info info;
    cr_assert_eq(inv_hold_commit(e, id, sizeof id), INV_ELIMIT);
    cr_assert_eq(inv_hold_release(e, id, sizeof id), INV_ELIMIT);
    cr_assert_eq(inv_hold_get(e, id, sizeof id, &info), INV_ELIMIT);
    cr_assert_eq(inv_hold_commit(e, id, 0), INV_EINVALID);
    cr_assert_eq(inv_hold_release(e, id, 0), INV_EINVALID);
    cr_assert_eq(inv_hold_get(e, id, 0, &info), INV_EINVALID);
    cr_assert_eq(inv_hold_get(e, id, 1, NULL), INV_EINVALID);
    verify_and_close(e);
}

Test(hold, ids_are_byte_strings_compared_whole)
{
    inv_engine *e = open_stocked();
    /* "ab" and "ab\0c" (4 bytes) and "abc" are three holds. */
    inv_hold_line l1 = {ITEM_1, LOC_A, 1}, l2 = {ITEM_2, LOC_A, 2}, l3 = {ITEM_3, LOC_A, 3};
    cr_assert_eq(inv_hold_create(e, "ab", 2, LONG_TTL_MS, &l1, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_create(e, "ab\0c", 4, LONG_TTL_MS, &l2, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_create(e, "abc", 3, LONG_TTL_MS, &l3, 1, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 9, 1);
    assert_level(e, ITEM_2, LOC_A, 8, 2);
    assert_level(e, ITEM_3, LOC_A, 7, 3);
    cr_assert_eq(inv_hold_commit(e, "ab\0c", 4), INV_OK);
    assert_level(e, ITEM_2, LOC_A, 8, 0);
    assert_level(e, ITEM_1, LOC_A, 9, 1);
    cr_assert_eq(inv_hold_release(e, "a", 1), INV_ENOTFOUND);
    verify_and_close(e);
}

/* ---- idempotent create -------------------------------------------------- */

Test(hold, create_retried_with_the_same_lines_in_any_order_reserves_once)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_B, 3}, {ITEM_3, LOC_A, 4}};
    inv_hold_line shuffled[] = {lines[2], lines[0], lines[1]};
    cr_assert_eq(create(e, "retry", LONG_TTL_MS, lines, 3, NULL), INV_OK);
    cr_assert_eq(create(e, "retry", LONG_TTL_MS, lines, 3, NULL), INV_OK);
    cr_assert_eq(create(e, "retry", LONG_TTL_MS, shuffled, 3, NULL), INV_OK);
    cr_assert_eq(create(e, "retry", 1234, shuffled, 3, NULL), INV_OK); /* ttl is not a line */
    assert_level(e, ITEM_1, LOC_A, 8, 2);
    assert_level(e, ITEM_2, LOC_B, 17, 3);
    assert_level(e, ITEM_3, LOC_A, 6, 4);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_created, 1);
    cr_assert_eq(st.holds_active, 1);
    verify_and_close(e);
}

Test(hold, create_retried_with_other_lines_conflicts_and_changes_nothing)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_B, 3}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, lines, 2, NULL), INV_OK);
    inv_hold_line other_qty[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_B, 4}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, other_qty, 2, NULL), INV_ECONFLICT);
    inv_hold_line other_loc[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_A, 3}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, other_loc, 2, NULL), INV_ECONFLICT);
    inv_hold_line fewer[] = {{ITEM_1, LOC_A, 2}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, fewer, 1, NULL), INV_ECONFLICT);
    inv_hold_line more[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_B, 3}, {ITEM_3, LOC_A, 1}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, more, 3, NULL), INV_ECONFLICT);
    /* Lines that could not even be reserved still answer CONFLICT, not
     * INSUFFICIENT: the id is taken. */
    inv_hold_line huge[] = {{ITEM_1, LOC_A, 1000}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, huge, 1, NULL), INV_ECONFLICT);
    assert_level(e, ITEM_1, LOC_A, 8, 2);
    assert_level(e, ITEM_2, LOC_B, 17, 3);
    assert_level(e, ITEM_2, LOC_A, 10, 0);
    assert_level(e, ITEM_3, LOC_A, 10, 0);
    inv_hold_info info;
    cr_assert_eq(get(e, "h", &info), INV_OK);
    cr_assert_eq(info.state, INV_HOLD_HELD);
    cr_assert_eq(info.n_lines, 2);
    cr_assert_eq(tu_stats_of(e).holds_created, 1);
    verify_and_close(e);
}

Test(hold, create_retried_after_commit_answers_ok_without_reserving)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_A, 3}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, lines, 2, NULL), INV_OK);
    cr_assert_eq(commit(e, "h"), INV_OK);
    cr_assert_eq(create(e, "h", LONG_TTL_MS, lines, 2, NULL), INV_OK);
    cr_assert_eq(state_of(e, "h"), INV_HOLD_COMMITTED);
    assert_level(e, ITEM_1, LOC_A, 8, 0);
    assert_level(e, ITEM_2, LOC_A, 7, 0);
    inv_hold_line other[] = {{ITEM_1, LOC_A, 1}};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, other, 1, NULL), INV_ECONFLICT);
    cr_assert_eq(tu_stats_of(e).holds_created, 1);
    verify_and_close(e);
}

/* ---- commit and release ------------------------------------------------- */

Test(hold, commit_sells_the_reserved_units_and_is_idempotent)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_B, 6}};
    cr_assert_eq(create(e, "sale", LONG_TTL_MS, lines, 2, NULL), INV_OK);
    cr_assert_eq(commit(e, "sale"), INV_OK);
    /* The units left: reserved drops, available stays where create put it. */
    assert_level(e, ITEM_1, LOC_A, 6, 0);
    assert_level(e, ITEM_2, LOC_B, 14, 0);
    inv_level rev = tu_level_of(e, ITEM_1, LOC_A);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(commit(e, "sale"), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 6, 0);
    assert_level(e, ITEM_2, LOC_B, 14, 0);
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_A).revision, rev.revision, "a retry changed the level");
    cr_assert_eq(state_of(e, "sale"), INV_HOLD_COMMITTED);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_committed, 1);
    cr_assert_eq(st.holds_active, 0);
    verify_and_close(e);
}

Test(hold, release_returns_the_units_and_is_idempotent)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_B, 6}};
    cr_assert_eq(create(e, "cart", LONG_TTL_MS, lines, 2, NULL), INV_OK);
    cr_assert_eq(release(e, "cart"), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_2, LOC_B, 20, 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(release(e, "cart"), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_2, LOC_B, 20, 0);
    cr_assert_eq(state_of(e, "cart"), INV_HOLD_RELEASED);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_released, 1);
    cr_assert_eq(st.holds_active, 0);
    verify_and_close(e);
}

Test(hold, release_after_commit_conflicts)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    cr_assert_eq(commit(e, "h"), INV_OK);
    cr_assert_eq(release(e, "h"), INV_ECONFLICT);
    assert_level(e, ITEM_1, LOC_A, 6, 0);
    cr_assert_eq(state_of(e, "h"), INV_HOLD_COMMITTED);
    cr_assert_eq(commit(e, "h"), INV_OK);
    verify_and_close(e);
}

Test(hold, commit_after_release_is_notfound)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    cr_assert_eq(release(e, "h"), INV_OK);
    cr_assert_eq(commit(e, "h"), INV_ENOTFOUND);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    cr_assert_eq(state_of(e, "h"), INV_HOLD_RELEASED);
    cr_assert_eq(release(e, "h"), INV_OK);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_committed, 0);
    cr_assert_eq(st.holds_released, 1);
    verify_and_close(e);
}

Test(hold, commit_and_release_of_an_unknown_hold_are_notfound)
{
    inv_engine *e = open_stocked();
    inv_hold_info info;
    cr_assert_eq(commit(e, "nobody"), INV_ENOTFOUND);
    cr_assert_eq(release(e, "nobody"), INV_ENOTFOUND);
    cr_assert_eq(get(e, "nobody", &info), INV_ENOTFOUND);
    cr_assert_eq(inv_hold_commit(NULL, "x", 1), INV_EINVALID);
    cr_assert_eq(inv_hold_release(NULL, "x", 1), INV_EINVALID);
    verify_and_close(e);
}

Test(hold, units_freed_by_a_release_can_be_held_by_another_hold)
{
    inv_engine *e = open_stocked();
    inv_hold_line all = {ITEM_1, LOC_A, 10};
    cr_assert_eq(create(e, "a", LONG_TTL_MS, &all, 1, NULL), INV_OK);
    inv_hold_line one = {ITEM_1, LOC_A, 1};
    inv_hold_failure f;
    cr_assert_eq(create(e, "b", LONG_TTL_MS, &one, 1, &f), INV_EINSUFFICIENT);
    cr_assert_eq(f.available, 0);
    cr_assert_eq(release(e, "a"), INV_OK);
    cr_assert_eq(create(e, "b", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 9, 1);
    verify_and_close(e);
}

Test(hold, a_level_with_held_units_cannot_be_deleted)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 1};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    cr_assert_eq(inv_level_del(e, ITEM_1, LOC_A), INV_ECONFLICT);
    assert_level(e, ITEM_1, LOC_A, 9, 1);
    cr_assert_eq(release(e, "h"), INV_OK);
    cr_assert_eq(inv_level_del(e, ITEM_1, LOC_A), INV_OK);
    verify_and_close(e);
}

Test(hold, adjusting_a_level_keeps_its_reserved_units)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create(e, "h", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    cr_assert_eq(inv_level_adjust(e, ITEM_1, LOC_A, -6, 0, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 0, 4);
    cr_assert_eq(inv_level_adjust(e, ITEM_1, LOC_A, -1, 0, NULL), INV_EINSUFFICIENT);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    cr_assert_eq(release(e, "h"), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 4, 0);
    verify_and_close(e);
}

/* ---- expiry ------------------------------------------------------------- */

Test(hold, an_expired_hold_gives_its_units_back_within_ttl_and_a_sweep)
{
    inv_engine *e = open_stocked();
    enum { TTL_MS = 50 };
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 3}, {ITEM_2, LOC_B, 5}};
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(create(e, "brief", TTL_MS, lines, 2, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 7, 3);
    int64_t waited = wait_hold_ended(e, "brief", t0, 2000);
    cr_assert_geq(waited, 0, "the hold did not expire within 2 s");
    cr_assert_geq(waited, TTL_MS - 1, "expired early, after %" PRId64 " ms", waited);
    cr_assert_lt(waited, TTL_MS + 200, "expired after %" PRId64 " ms", waited);
    cr_assert_eq(state_of(e, "brief"), INV_HOLD_EXPIRED);
    /* The state flips before the units move: wait for active to drop. */
    for (int i = 0; i < 1000 && tu_stats_of(e).holds_active != 0; i++)
        tu_sleep_ms(1);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_2, LOC_B, 20, 0);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_expired, 1);
    cr_assert_eq(st.holds_active, 0);
    verify_and_close(e);
}

Test(hold, commit_after_expiry_is_notfound_and_release_changes_nothing)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 3};
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(create(e, "late", 20, &line, 1, NULL), INV_OK);
    cr_assert_geq(wait_hold_ended(e, "late", t0, 2000), 0);
    for (int i = 0; i < 1000 && tu_stats_of(e).holds_active != 0; i++)
        tu_sleep_ms(1);
    cr_assert_eq(commit(e, "late"), INV_ENOTFOUND);
    cr_assert_eq(release(e, "late"), INV_OK); /* the engine released it already */
    cr_assert_eq(state_of(e, "late"), INV_HOLD_EXPIRED);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_expired, 1);
    cr_assert_eq(st.holds_committed, 0);
    cr_assert_eq(st.holds_released, 0);
    verify_and_close(e);
}

Test(hold, committed_and_released_holds_do_not_expire)
{
    inv_engine *e = open_stocked();
    inv_hold_line a = {ITEM_1, LOC_A, 2}, b = {ITEM_2, LOC_A, 3};
    cr_assert_eq(create(e, "c", 20, &a, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "r", 20, &b, 1, NULL), INV_OK);
    cr_assert_eq(commit(e, "c"), INV_OK);
    cr_assert_eq(release(e, "r"), INV_OK);
    tu_sleep_ms(20 + 5 * SWEEP_MS);
    cr_assert_eq(state_of(e, "c"), INV_HOLD_COMMITTED);
    cr_assert_eq(state_of(e, "r"), INV_HOLD_RELEASED);
    assert_level(e, ITEM_1, LOC_A, 8, 0);
    assert_level(e, ITEM_2, LOC_A, 10, 0);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_expired, 0);
    cr_assert_eq(st.holds_committed, 1);
    cr_assert_eq(st.holds_released, 1);
    verify_and_close(e);
}

Test(hold, a_long_hold_outlives_a_short_one_at_the_same_level)
{
    inv_engine *e = open_stocked();
    inv_hold_line a = {ITEM_1, LOC_A, 2}, b = {ITEM_1, LOC_A, 3};
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(create(e, "short", 30, &a, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "long", LONG_TTL_MS, &b, 1, NULL), INV_OK);
    cr_assert_geq(wait_hold_ended(e, "short", t0, 2000), 0);
    for (int i = 0; i < 1000 && tu_stats_of(e).holds_active != 1; i++)
        tu_sleep_ms(1);
    assert_level(e, ITEM_1, LOC_A, 7, 3);
    cr_assert_eq(state_of(e, "long"), INV_HOLD_HELD);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    cr_assert_eq(commit(e, "long"), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 7, 0);
    verify_and_close(e);
}

/* ---- reuse of an ended hold's id ---------------------------------------- */

Test(hold, create_reuses_the_id_of_a_released_hold_and_reserves_anew)
{
    inv_engine *e = open_stocked();
    inv_hold_line first = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create(e, "again", LONG_TTL_MS, &first, 1, NULL), INV_OK);
    cr_assert_eq(release(e, "again"), INV_OK);
    /* Same lines: a new hold, not a retry of the released one. */
    cr_assert_eq(create(e, "again", LONG_TTL_MS, &first, 1, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 6, 4);
    cr_assert_eq(state_of(e, "again"), INV_HOLD_HELD);
    cr_assert_eq(release(e, "again"), INV_OK);
    /* Other lines work too. */
    inv_hold_line second[] = {{ITEM_2, LOC_B, 5}, {ITEM_3, LOC_A, 1}};
    cr_assert_eq(create(e, "again", LONG_TTL_MS, second, 2, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_2, LOC_B, 15, 5);
    assert_level(e, ITEM_3, LOC_A, 9, 1);
    inv_hold_info info;
    cr_assert_eq(get(e, "again", &info), INV_OK);
    cr_assert_eq(info.state, INV_HOLD_HELD);
    cr_assert_eq(info.n_lines, 2);
    cr_assert_eq(commit(e, "again"), INV_OK);
    assert_level(e, ITEM_2, LOC_B, 15, 0);
    assert_level(e, ITEM_3, LOC_A, 9, 0);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_created, 3);
    cr_assert_eq(st.holds_released, 2);
    cr_assert_eq(st.holds_committed, 1);
    cr_assert_eq(st.holds_active, 0);
    verify_and_close(e);
}

Test(hold, create_reuses_the_id_of_an_expired_hold_and_reserves_anew)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(create(e, "phoenix", 20, &line, 1, NULL), INV_OK);
    cr_assert_geq(wait_hold_ended(e, "phoenix", t0, 2000), 0);
    for (int i = 0; i < 1000 && tu_stats_of(e).holds_active != 0; i++)
        tu_sleep_ms(1);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    cr_assert_eq(create(e, "phoenix", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 6, 4);
    cr_assert_eq(state_of(e, "phoenix"), INV_HOLD_HELD);
    /* The new hold is not affected by the old record still on the wheel. */
    tu_sleep_ms(5 * SWEEP_MS);
    cr_assert_eq(state_of(e, "phoenix"), INV_HOLD_HELD);
    cr_assert_eq(commit(e, "phoenix"), INV_OK);
    assert_level(e, ITEM_1, LOC_A, 6, 0);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_created, 2);
    cr_assert_eq(st.holds_expired, 1);
    cr_assert_eq(st.holds_committed, 1);
    verify_and_close(e);
}

Test(hold, a_committed_id_is_not_reused_by_other_lines)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4}, other = {ITEM_2, LOC_A, 1};
    cr_assert_eq(create(e, "done", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    cr_assert_eq(commit(e, "done"), INV_OK);
    cr_assert_eq(create(e, "done", LONG_TTL_MS, &other, 1, NULL), INV_ECONFLICT);
    assert_level(e, ITEM_2, LOC_A, 10, 0);
    cr_assert_eq(state_of(e, "done"), INV_HOLD_COMMITTED);
    verify_and_close(e);
}

/* ---- untracked items ---------------------------------------------------- */

Test(hold, untracked_lines_succeed_and_count_nothing)
{
    inv_engine *e = open_stocked();
    inv_level before = tu_level_of(e, ITEM_FREE, LOC_A);
    /* 0 available, yet any quantity is held: untracked is always available. */
    inv_hold_line lines[] = {{ITEM_FREE, LOC_A, 500}, {ITEM_1, LOC_A, 2}};
    cr_assert_eq(create(e, "mixed", LONG_TTL_MS, lines, 2, NULL), INV_OK);
    assert_level(e, ITEM_FREE, LOC_A, 0, 0);
    assert_level(e, ITEM_1, LOC_A, 8, 2);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    cr_assert_eq(commit(e, "mixed"), INV_OK);
    assert_level(e, ITEM_FREE, LOC_A, 0, 0);
    assert_level(e, ITEM_1, LOC_A, 8, 0);

    inv_hold_line only_free = {ITEM_FREE, LOC_A, INV_QTY_MAX};
    cr_assert_eq(create(e, "free", LONG_TTL_MS, &only_free, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "free2", LONG_TTL_MS, &only_free, 1, NULL), INV_OK);
    cr_assert_eq(release(e, "free"), INV_OK);
    cr_assert_eq(commit(e, "free2"), INV_OK);
    inv_level after = tu_level_of(e, ITEM_FREE, LOC_A);
    cr_assert_eq(after.available, before.available);
    cr_assert_eq(after.reserved, 0);
    cr_assert_eq(after.revision, before.revision, "untracked lines changed the level");
    inv_hold_info info;
    cr_assert_eq(get(e, "free2", &info), INV_OK);
    cr_assert_eq(info.lines[0].qty, INV_QTY_MAX);
    verify_and_close(e);
}

Test(hold, an_untracked_line_does_not_save_a_short_tracked_line)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_FREE, LOC_A, 1}, {ITEM_1, LOC_A, 11}};
    inv_hold_failure f;
    cr_assert_eq(create(e, "h", LONG_TTL_MS, lines, 2, &f), INV_EINSUFFICIENT);
    cr_assert_eq(f.line, 1);
    cr_assert_eq(f.item, ITEM_1);
    cr_assert_eq(f.available, 10);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_FREE, LOC_A, 0, 0);
    verify_and_close(e);
}

Test(hold, an_expired_untracked_hold_changes_nothing)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_FREE, LOC_A, 7};
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(create(e, "h", 20, &line, 1, NULL), INV_OK);
    cr_assert_geq(wait_hold_ended(e, "h", t0, 2000), 0);
    for (int i = 0; i < 1000 && tu_stats_of(e).holds_active != 0; i++)
        tu_sleep_ms(1);
    assert_level(e, ITEM_FREE, LOC_A, 0, 0);
    cr_assert_eq(tu_stats_of(e).holds_expired, 1);
    verify_and_close(e);
}

/* ---- HOLD get ----------------------------------------------------------- */

static bool has_line(const inv_hold_info *info, inv_hold_line want)
{
    for (size_t i = 0; i < info->n_lines; i++)
        if (info->lines[i].item == want.item && info->lines[i].location == want.location &&
            info->lines[i].qty == want.qty)
            return true;
    return false;
}

Test(hold, get_returns_the_state_the_expiry_and_every_line)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_3, LOC_B, 7}, {ITEM_1, LOC_A, 2}, {ITEM_FREE, LOC_A, 9}};
    int64_t before = clock_wall_ms();
    cr_assert_eq(create(e, "g", 60000, lines, 3, NULL), INV_OK);
    int64_t after = clock_wall_ms();
    inv_hold_info info;
    memset(&info, 0, sizeof info);
    cr_assert_eq(get(e, "g", &info), INV_OK);
    cr_assert_eq(info.state, INV_HOLD_HELD);
    cr_assert_geq(info.expires_at_ms, before + 60000);
    cr_assert_leq(info.expires_at_ms, after + 60000);
    cr_assert_eq(info.n_lines, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert(has_line(&info, lines[i]), "line %zu missing", i);
    int64_t expires = info.expires_at_ms;

    cr_assert_eq(commit(e, "g"), INV_OK);
    memset(&info, 0, sizeof info);
    cr_assert_eq(get(e, "g", &info), INV_OK);
    cr_assert_eq(info.state, INV_HOLD_COMMITTED);
    cr_assert_eq(info.expires_at_ms, expires);
    cr_assert_eq(info.n_lines, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert(has_line(&info, lines[i]), "line %zu missing after commit", i);
    verify_and_close(e);
}

Test(hold, get_after_release_shows_released_with_the_lines)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_2, LOC_A, 1};
    cr_assert_eq(create(e, "g", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    cr_assert_eq(release(e, "g"), INV_OK);
    inv_hold_info info;
    cr_assert_eq(get(e, "g", &info), INV_OK);
    cr_assert_eq(info.state, INV_HOLD_RELEASED);
    cr_assert_eq(info.n_lines, 1);
    cr_assert(has_line(&info, line));
    verify_and_close(e);
}

/* ---- statistics --------------------------------------------------------- */

Test(hold, stats_count_created_committed_released_expired_and_active)
{
    inv_engine *e = open_stocked();
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_created, 0);
    cr_assert_eq(st.holds_active, 0);
    inv_hold_line one = {ITEM_1, LOC_B, 1};
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(create(e, "c1", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "c2", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "r1", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "x1", 20, &one, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "open", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "c1", LONG_TTL_MS, &one, 1, NULL), INV_OK); /* a retry */
    inv_hold_line big = {ITEM_1, LOC_B, 100};
    cr_assert_eq(create(e, "no", LONG_TTL_MS, &big, 1, NULL), INV_EINSUFFICIENT);
    st = tu_stats_of(e);
    cr_assert_eq(st.holds_created, 5);
    cr_assert_eq(st.holds_active, 5);
    cr_assert_eq(commit(e, "c1"), INV_OK);
    cr_assert_eq(commit(e, "c1"), INV_OK);
    cr_assert_eq(commit(e, "c2"), INV_OK);
    cr_assert_eq(release(e, "r1"), INV_OK);
    cr_assert_eq(release(e, "r1"), INV_OK);
    cr_assert_eq(release(e, "c1"), INV_ECONFLICT);
    cr_assert_geq(wait_hold_ended(e, "x1", t0, 2000), 0);
    for (int i = 0; i < 1000 && tu_stats_of(e).holds_active != 1; i++)
        tu_sleep_ms(1);
    st = tu_stats_of(e);
    cr_assert_eq(st.holds_created, 5);
    cr_assert_eq(st.holds_committed, 2);
    cr_assert_eq(st.holds_released, 1);
    cr_assert_eq(st.holds_expired, 1);
    cr_assert_eq(st.holds_active, 1);
    assert_level(e, ITEM_1, LOC_B, 17, 1); /* 20 - 2 sold - 1 open */
    verify_and_close(e);
}

Test(hold, an_engine_closed_with_live_holds_frees_them)
{
    /* Run under ASan: the records still on the wheel and in the table
     * (held, ended, replaced) are freed once each by inv_close. */
    inv_engine *e = open_stocked();
    inv_hold_line one = {ITEM_2, LOC_A, 1};
    cr_assert_eq(create(e, "held", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    cr_assert_eq(create(e, "done", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    cr_assert_eq(commit(e, "done"), INV_OK);
    cr_assert_eq(create(e, "swap", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    cr_assert_eq(release(e, "swap"), INV_OK);
    cr_assert_eq(create(e, "swap", LONG_TTL_MS, &one, 1, NULL), INV_OK);
    inv_hold_line big = {ITEM_2, LOC_A, 100};
    cr_assert_eq(create(e, "aborted", LONG_TTL_MS, &big, 1, NULL), INV_EINSUFFICIENT);
    assert_level(e, ITEM_2, LOC_A, 7, 2);
    verify_and_close(e);
}

/* Expiry is decided by the clock, not by when the sweep runs: a commit that
 * arrives after expires_at_ms, before the background sweep, must not sell. */
Test(hold, commit_after_expiry_time_but_before_the_sweep_is_notfound)
{
    inv_config cfg = {0};
    cfg.sweep_interval_ms = 60000; /* the sweep runs at most every 50 ms */
    inv_engine *e = NULL;
    cr_assert_eq(inv_open(&e, &cfg), INV_OK);
    cr_assert_eq(inv_location_put(e, LOC_A, NULL), INV_OK);
    tu_put_item(e, ITEM_1, true);
    tu_set_level(e, ITEM_1, LOC_A, 10);
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    for (int round = 0; round < 20; round++) {
        char id[16];
        int n = snprintf(id, sizeof id, "late-%d", round);
        cr_assert_eq(inv_hold_create(e, id, (size_t)n, 1, &line, 1, NULL), INV_OK);
        struct timespec ts = {0, 3 * 1000000L};
        nanosleep(&ts, NULL); /* past its 1 ms TTL */
        cr_assert_eq(inv_hold_commit(e, id, (size_t)n), INV_ENOTFOUND, "round %d", round);
        inv_level lv = tu_level_of(e, ITEM_1, LOC_A);
        cr_assert_eq(lv.available, 10, "round %d: expired units were sold", round);
        cr_assert_eq(lv.reserved, 0);
    }
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    inv_close(e);
}

/* A hold's units cannot vanish under it: deleting an item whose stock a
 * live hold counts on is refused, and allowed again once the hold ends. */
Test(hold, deleting_an_item_under_a_live_hold_conflicts_until_the_hold_ends)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(inv_hold_create(e, "cart", 4, LONG_TTL_MS, &line, 1, NULL), INV_OK);
    cr_assert_eq(inv_item_del(e, ITEM_1), INV_ECONFLICT);
    inv_item item;
    cr_assert_eq(inv_item_get(e, ITEM_1, &item), INV_OK);
    inv_level lv = tu_level_of(e, ITEM_1, LOC_A);
    cr_assert_eq(lv.available, 6);
    cr_assert_eq(lv.reserved, 4);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "cart", 4), INV_OK);
    cr_assert_eq(inv_item_del(e, ITEM_1), INV_OK);
    cr_assert_eq(inv_item_get(e, ITEM_1, &item), INV_ENOTFOUND);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    inv_close(e);
}

/* A create slower than its TTL (a slow journal, a preempted thread) finds
 * its due tick already swept when it reaches the timing wheel. It must
 * still expire within a sweep or two, not a whole wheel turn
 * (HOLD_WHEEL_SLOTS ticks, about 65 s) later. */
enum { STALL_MS = 5 * SWEEP_MS, EXPIRY_BOUND_MS = 5000 };

static void stall_before_wheel(int at, uint64_t pos)
{
    if (at == HOLD_TEST_BEFORE_WHEEL)
        tu_sleep_ms(STALL_MS); /* several sweeps pass the hold's 1 ms TTL */
}

Test(hold, a_create_that_reaches_the_wheel_after_its_due_tick_still_expires_promptly)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 3};
    tu_hold_point(stall_before_wheel);
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(create(e, "slow", 1, &line, 1, NULL), INV_OK);
    tu_hold_point(NULL);
    int64_t waited = wait_hold_ended(e, "slow", t0, EXPIRY_BOUND_MS);
    cr_assert_geq(waited, 0, "a 1 ms hold pushed late was still HELD after %d ms", EXPIRY_BOUND_MS);
    cr_assert_eq(state_of(e, "slow"), INV_HOLD_EXPIRED);
    for (int i = 0; i < 1000 && tu_stats_of(e).holds_active != 0; i++)
        tu_sleep_ms(1);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    verify_and_close(e);
}

/* A retried create must not answer OK before the first create is durable:
 * the first is HELD a moment before its final record is published, and a
 * retry in that moment must wait for that record and acknowledge on it. */
enum { PUBLISH_STALL_MS = 300 };

static _Atomic int first_in_window; /* the first create is in the window */
static _Atomic int64_t first_left_ms; /* when it left (mono_ms) */

static void stall_unpublished(int at, uint64_t pos)
{
    if (at != HOLD_TEST_HELD_UNPUBLISHED)
        return;
    atomic_store_explicit(&first_in_window, 1, memory_order_release);
    tu_sleep_ms(PUBLISH_STALL_MS);
    atomic_store_explicit(&first_left_ms, clock_mono_ms(), memory_order_release);
}

static void *first_create(void *arg)
{
    inv_hold_line line = {ITEM_1, LOC_A, 3};
    return (void *)(intptr_t)create(arg, "twice", LONG_TTL_MS, &line, 1, NULL);
}

Test(hold, a_retried_create_answers_only_after_the_first_create_is_published)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "hold");
    inv_config cfg = {0};
    cfg.sweep_interval_ms = SWEEP_MS;
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_ALWAYS;
    inv_engine *e = NULL;
    cr_assert_eq(inv_open(&e, &cfg), INV_OK);
    cr_assert_eq(inv_location_put(e, LOC_A, NULL), INV_OK);
    tu_put_item(e, ITEM_1, true);
    tu_set_level(e, ITEM_1, LOC_A, 10);

    tu_hold_point(stall_unpublished);
    pthread_t first;
    cr_assert_eq(pthread_create(&first, NULL, first_create, e), 0);
    while (!atomic_load_explicit(&first_in_window, memory_order_acquire))
        tu_sleep_ms(1);
    inv_hold_line line = {ITEM_1, LOC_A, 3};
    cr_assert_eq(create(e, "twice", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    int64_t retry_done_ms = clock_mono_ms();
    int64_t left_ms = atomic_load_explicit(&first_left_ms, memory_order_acquire);
    cr_assert(left_ms != 0 && retry_done_ms >= left_ms,
              "the retry answered OK while the first create was unpublished");
    void *first_rc;
    cr_assert_eq(pthread_join(first, &first_rc), 0);
    tu_hold_point(NULL);
    cr_assert_eq((int)(intptr_t)first_rc, INV_OK);
    assert_level(e, ITEM_1, LOC_A, 7, 3); /* reserved once */
    verify_and_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* A commit that lands while a create is HELD but its final record is not
 * yet published (the hook's point) stays committed: the create must not
 * store HELD over it afterwards (units would then be held and sold). */
static _Atomic int held_in_window; /* the create is in the window */
static _Atomic int commit_done; /* the commit returned */

static void wait_for_commit(int at, uint64_t pos)
{
    (void)pos;
    if (at != HOLD_TEST_HELD_UNPUBLISHED)
        return;
    atomic_store_explicit(&held_in_window, 1, memory_order_release);
    for (int i = 0; i < 2000 && !atomic_load_explicit(&commit_done, memory_order_acquire); i++)
        tu_sleep_ms(1);
}

static void *create_raced(void *arg)
{
    inv_hold_line line = {ITEM_1, LOC_A, 3};
    return (void *)(intptr_t)create(arg, "raced", LONG_TTL_MS, &line, 1, NULL);
}

Test(hold, a_commit_before_the_create_is_published_stays_committed)
{
    inv_engine *e = open_stocked();
    tu_hold_point(wait_for_commit);
    pthread_t creator;
    cr_assert_eq(pthread_create(&creator, NULL, create_raced, e), 0);
    for (int i = 0; i < 2000 && !atomic_load_explicit(&held_in_window, memory_order_acquire); i++)
        tu_sleep_ms(1);
    int rc = commit(e, "raced");
    atomic_store_explicit(&commit_done, 1, memory_order_release);
    void *created;
    cr_assert_eq(pthread_join(creator, &created), 0);
    tu_hold_point(NULL);
    cr_assert_eq(rc, INV_OK);
    cr_assert_eq((int)(intptr_t)created, INV_OK);
    cr_assert_eq(state_of(e, "raced"), INV_HOLD_COMMITTED, "the create put the hold back HELD");
    assert_level(e, ITEM_1, LOC_A, 7, 0); /* 3 sold, none reserved */
    verify_and_close(e);
}

/* A reader never sees a hold ended while its units still show as reserved:
 * between an end's state and its level changes (the hook's point), HOLD.GET
 * and the hold listing still answer HELD. */
static inv_engine *decided_engine;
static inv_hold_state decided_seen = (inv_hold_state)-1;
static int64_t decided_reserved = -1;
static size_t decided_listed;

static void look_while_decided(int at, uint64_t pos)
{
    (void)pos;
    if (at != HOLD_TEST_END_DECIDED)
        return;
    decided_seen = state_of(decided_engine, "mid");
    decided_reserved = tu_level_of(decided_engine, ITEM_1, LOC_A).reserved;
    char ids[4][INV_HOLD_ID_MAX + 1];
    uint64_t cursor = 0;
    decided_listed = 0;
    do { /* every page: a page may come back empty before the last */
        size_t n = 0;
        if (inv_hold_list(decided_engine, NULL, cursor, 4, ids, NULL, 4, &n, &cursor) != INV_OK) {
            decided_listed = SIZE_MAX;
            return;
        }
        decided_listed += n;
    } while (cursor != 0);
}

Test(hold, a_hold_being_ended_reads_as_held_until_its_levels_change)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create(e, "mid", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    decided_engine = e;
    tu_hold_point(look_while_decided);
    int rc = release(e, "mid");
    tu_hold_point(NULL);
    cr_assert_eq(rc, INV_OK);
    cr_assert_eq(decided_reserved, 4, "the hook ran after the level changes");
    cr_assert_eq(decided_seen, INV_HOLD_HELD, "HOLD.GET answered %d while 4 units were reserved",
                 (int)decided_seen);
    cr_assert_eq(decided_listed, 1, "the listing dropped the hold while its units were reserved");
    cr_assert_eq(state_of(e, "mid"), INV_HOLD_RELEASED);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    verify_and_close(e);
}

/* A commit that loses to another end (here a release, in its window
 * between the end's state and its level changes) answers only once that
 * end's level changes are made: whoever reads after its NOTFOUND sees the
 * units given back. Before, it answered at once (in memory mode it never
 * waited), and a read after it saw the units still reserved (TSan CI:
 * "commit_after_expiry... expired units were sold", the sweep in the
 * window). */
#define LOSER_WAIT_MS 200
static struct {
    inv_engine *e;
    pthread_t tid;
    _Atomic int started, done; /* seq_cst: test flags; the join orders the rest */
    int rc;
    inv_level after;
} loser;

static void *loser_main(void *p)
{
    (void)p;
    loser.rc = commit(loser.e, "mid");
    loser.after = tu_level_of(loser.e, ITEM_1, LOC_A);
    atomic_store(&loser.done, 1);
    return NULL;
}

static void commit_while_decided(int at, uint64_t pos)
{
    (void)pos;
    if (at != HOLD_TEST_END_DECIDED || atomic_load(&loser.started))
        return;
    if (pthread_create(&loser.tid, NULL, loser_main, NULL) != 0)
        abort();
    atomic_store(&loser.started, 1);
    /* bounded: a commit that waits for this end returns only after it */
    uint64_t deadline = tu_deadline_ms(LOSER_WAIT_MS);
    while (!atomic_load(&loser.done) && !tu_past(deadline))
        sched_yield();
}

Test(hold, a_commit_that_loses_to_an_end_answers_after_its_level_changes)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create(e, "mid", LONG_TTL_MS, &line, 1, NULL), INV_OK);
    loser.e = e;
    atomic_store(&loser.started, 0);
    atomic_store(&loser.done, 0);
    tu_hold_point(commit_while_decided);
    int rc = release(e, "mid");
    tu_hold_point(NULL);
    cr_assert_eq(rc, INV_OK);
    cr_assert(atomic_load(&loser.started));
    cr_assert_eq(pthread_join(loser.tid, NULL), 0);
    cr_assert_eq(loser.rc, INV_ENOTFOUND);
    cr_assert_eq(loser.after.reserved, 0, "read %" PRId64 " reserved after the commit's NOTFOUND",
                 loser.after.reserved);
    cr_assert_eq(loser.after.available, 10);
    verify_and_close(e);
}

/* ---- a failed create is no step at all (issue 17, #11) ------------------- */

/* Lines (1, A) 4, (1, B) 2 and (2, A) 11: the engine takes them in item
 * order, so the last one fails after the first two could be taken. */
static const inv_hold_line aborting_lines[] = {
    {ITEM_2, LOC_A, 11}, {ITEM_1, LOC_A, 4}, {ITEM_1, LOC_B, 2}};
static const struct {
    uint64_t item, loc;
} aborting_levels[] = {{ITEM_1, LOC_A}, {ITEM_1, LOC_B}, {ITEM_2, LOC_A}};
#define ABORTING_N (sizeof aborting_levels / sizeof aborting_levels[0])

static void aborted_create_changes_no_revision(inv_engine *e)
{
    inv_level before[ABORTING_N];
    for (size_t i = 0; i < ABORTING_N; i++)
        before[i] = tu_level_of(e, aborting_levels[i].item, aborting_levels[i].loc);
    inv_hold_failure f;
    cr_assert_eq(create(e, "no", LONG_TTL_MS, aborting_lines, ABORTING_N, &f), INV_EINSUFFICIENT);
    cr_assert_eq(f.item, ITEM_2);
    for (size_t i = 0; i < ABORTING_N; i++) {
        inv_level now = tu_level_of(e, aborting_levels[i].item, aborting_levels[i].loc);
        cr_assert_eq(now.revision, before[i].revision,
                     "level (%d, %d): revision %" PRIu64 " after an aborted create, was %" PRIu64,
                     (int)aborting_levels[i].item, (int)aborting_levels[i].loc, now.revision,
                     before[i].revision);
        cr_assert_eq(now.available, before[i].available);
        cr_assert_eq(now.reserved, 0);
    }
}

Test(hold, an_aborted_multi_line_create_leaves_every_revision_unchanged)
{
    inv_engine *e = open_stocked();
    aborted_create_changes_no_revision(e);
    verify_and_close(e);
}

/* open_stocked's items 1 and 2, on a journal in dir. */
static inv_engine *open_journal_stocked(const char *dir)
{
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    stock_tracked(e, ITEM_2);
    return e;
}

Test(hold, an_aborted_multi_line_create_leaves_every_revision_unchanged_in_the_journal)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "hold");
    inv_engine *e = open_journal_stocked(dir);
    aborted_create_changes_no_revision(e);
    inv_close(e);
    /* and the journal says so too: recovered, nothing moved */
    e = tu_open_dir(dir, INV_FSYNC_NONE);
    assert_level(e, ITEM_1, LOC_A, 10, 0);
    assert_level(e, ITEM_1, LOC_B, 20, 0);
    verify_and_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* At every record an aborting create publishes (a point where, before,
 * its taken lines could be seen), a reader finds every level as it was. */
static inv_engine *abort_reader_engine;
static inv_level abort_reader_before[ABORTING_N];
static int abort_reader_records;
static char abort_reader_first[160];

static void read_at_hold_record(uint8_t type)
{
    if (type != PERSIST_HOLD)
        return;
    abort_reader_records++;
    for (size_t i = 0; i < ABORTING_N; i++) {
        inv_level lv;
        int rc = inv_level_get(abort_reader_engine, aborting_levels[i].item, aborting_levels[i].loc,
                               &lv);
        if ((rc != INV_OK || lv.reserved != 0 || lv.revision != abort_reader_before[i].revision) &&
            !abort_reader_first[0])
            snprintf(
                abort_reader_first, sizeof abort_reader_first,
                "record %d: level %zu reserved %" PRId64 " revision %" PRIu64 " (was %" PRIu64 ")",
                abort_reader_records, i, lv.reserved, lv.revision, abort_reader_before[i].revision);
    }
}

Test(hold, a_reader_never_sees_the_units_of_an_aborting_create)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "hold");
    inv_engine *e = open_journal_stocked(dir);
    for (size_t i = 0; i < ABORTING_N; i++)
        abort_reader_before[i] = tu_level_of(e, aborting_levels[i].item, aborting_levels[i].loc);
    abort_reader_engine = e;
    abort_reader_records = 0;
    abort_reader_first[0] = '\0';
    tu_before_publish(read_at_hold_record);
    int rc = create(e, "no", LONG_TTL_MS, aborting_lines, ABORTING_N, NULL);
    tu_before_publish(NULL);
    cr_assert_eq(rc, INV_EINSUFFICIENT);
    cr_assert_gt(abort_reader_records, 0, "the create published no record");
    cr_assert_eq(abort_reader_first[0], '\0', "%s", abort_reader_first);
    verify_and_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* ---- a sale is read whole (issue 17 item 11) ------------------------------
 *
 * A hold end that sells units changes its levels' words and their committed
 * counts. A reader must never see the sale's revision with its units still
 * reserved: the end holds its levels' LOCKs until the counts are stored. */

/* How long the sale's test point waits for a reader that does not wait for
 * the counts (the code before: it reads at once). A reader that waits, as
 * it must, is simply not seen done in time: the check is after the join. */
#define SOLD_READER_WAIT_MS 200

static struct {
    inv_engine *e;
    bool adjust; /* the reader adjusts (+1) and reads its reply instead */
    pthread_t tid;
    _Atomic int started, done;
    int rc;
    inv_level seen;
} sold_reader;

static void *sold_reader_main(void *p)
{
    (void)p;
    /* release/acquire (both flags): the test point waits on them. */
    atomic_store_explicit(&sold_reader.started, 1, memory_order_release);
    if (sold_reader.adjust)
        sold_reader.rc =
            inv_level_adjust(sold_reader.e, ITEM_1, LOC_A, 1, INV_NO_FLOOR, &sold_reader.seen);
    else
        sold_reader.rc = inv_level_get(sold_reader.e, ITEM_1, LOC_A, &sold_reader.seen);
    atomic_store_explicit(&sold_reader.done, 1, memory_order_release);
    return NULL;
}

/* FAULT_LEVEL_SOLD: the sale landed on the words, its counts not stored. */
static int at_sold(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    (void)ctx, (void)site, (void)call, (void)arg, (void)arg2;
    if (pthread_create(&sold_reader.tid, NULL, sold_reader_main, NULL) != 0)
        abort();
    while (!atomic_load_explicit(&sold_reader.started, memory_order_acquire))
        sched_yield(); /* bounded: the thread was created */
    uint64_t deadline = tu_deadline_ms(SOLD_READER_WAIT_MS);
    while (!atomic_load_explicit(&sold_reader.done, memory_order_acquire) && !tu_past(deadline))
        sched_yield();
    return 0;
}

static void sold_read_whole(size_t n_lines, bool adjust)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 3}, {ITEM_1, LOC_B, 2}};
    cr_assert_eq(create(e, "sale", LONG_TTL_MS, lines, n_lines, NULL), INV_OK);
    sold_reader.e = e;
    sold_reader.adjust = adjust;
    atomic_store(&sold_reader.started, 0);
    atomic_store(&sold_reader.done, 0);
    fault_reset(); /* counts from here (an earlier test in this process may have counted) */
    fault_hook(FAULT_LEVEL_SOLD, at_sold, NULL);
    int rc = commit(e, "sale");
    fault_hook(FAULT_LEVEL_SOLD, NULL, NULL);
    uint64_t points = fault_calls(FAULT_LEVEL_SOLD);
    fault_reset();
    cr_assert_eq(points, 1, "the sale's test point ran %" PRIu64 " times", points);
    cr_assert_eq(pthread_join(sold_reader.tid, NULL), 0);
    cr_assert_eq(rc, INV_OK);
    inv_level after = tu_level_of(e, ITEM_1, LOC_A);
    cr_assert_eq(sold_reader.rc, INV_OK);
    cr_assert_eq(after.reserved, 0);
    if (adjust) {
        /* the adjust began after the sale landed on the words: its reply
         * is the last change, decided on the sold level */
        cr_assert_eq(sold_reader.seen.revision, after.revision);
        cr_assert_eq(sold_reader.seen.reserved, 0,
                     "the adjust's reply (revision %" PRIu64 ") shows %" PRId64 " reserved",
                     sold_reader.seen.revision, sold_reader.seen.reserved);
        verify_and_close(e);
        return;
    }
    /* the reader ran inside the sale: it saw the level before it (3
     * reserved, an older revision) or after it (none reserved), never the
     * sale's revision with its units reserved */
    if (sold_reader.seen.revision == after.revision)
        cr_assert_eq(sold_reader.seen.reserved, 0,
                     "revision %" PRIu64 " read with %" PRId64 " reserved: the sale's units",
                     after.revision, sold_reader.seen.reserved);
    else
        cr_assert(sold_reader.seen.revision < after.revision && sold_reader.seen.reserved == 3);
    verify_and_close(e);
}

Test(hold, a_one_line_sale_is_never_read_with_its_units_reserved)
{
    sold_read_whole(1, false);
}

Test(hold, a_two_line_sale_is_never_read_with_its_units_reserved)
{
    sold_read_whole(2, false);
}

Test(hold, an_adjust_beside_a_sale_never_replies_with_its_units_reserved)
{
    sold_read_whole(1, true);
    sold_read_whole(2, true);
}

/* Sales on two levels while another thread grows the level table (so the
 * sales' LOCKs move with their cold parts into the next arrays) and a
 * reader watches: two reads at one revision agree, revisions never go
 * back, and every sold unit is counted as committed once. */
enum { GROW_SELLERS = 2, GROW_ITEM_FIRST = 1000, GROW_STOCK = 1000000 };

static struct {
    inv_engine *e;
    uint64_t sales; /* per seller */
    uint64_t new_levels;
    /* seq_cst (all four): the reader's stop flag, and counts read after the joins */
    _Atomic int sellers_done;
    _Atomic uint64_t torn_reads, back_reads, failed_calls;
} grow;

static void *grow_seller(void *p)
{
    uintptr_t t = (uintptr_t)p;
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 1}, {ITEM_2, LOC_A, 2}};
    char id[32];
    for (uint64_t i = 0; i < grow.sales; i++) {
        snprintf(id, sizeof id, "g%u-%" PRIu64, (unsigned)t, i);
        size_t n = i % 3 == 0 ? 1 : 2; /* one-line sales take the one-CAS path */
        if (create(grow.e, id, LONG_TTL_MS, lines, n, NULL) != INV_OK ||
            commit(grow.e, id) != INV_OK)
            atomic_fetch_add(&grow.failed_calls, 1);
    }
    atomic_fetch_add(&grow.sellers_done, 1);
    return NULL;
}

static void *grow_grower(void *p)
{
    (void)p;
    for (uint64_t i = 0; i < grow.new_levels; i++) {
        uint64_t item = GROW_ITEM_FIRST + i;
        if (inv_item_put(grow.e, item, NULL) != INV_OK ||
            inv_level_set(grow.e, item, LOC_A, 1, 0, NULL) != INV_OK)
            atomic_fetch_add(&grow.failed_calls, 1);
    }
    return NULL;
}

static void *grow_reader(void *p)
{
    (void)p;
    inv_level last[2] = {{0, 0, 0}, {0, 0, 0}};
    const uint64_t items[2] = {ITEM_1, ITEM_2};
    while (atomic_load(&grow.sellers_done) < GROW_SELLERS) {
        for (int k = 0; k < 2; k++) {
            inv_level lv;
            if (inv_level_get(grow.e, items[k], LOC_A, &lv) != INV_OK) {
                atomic_fetch_add(&grow.failed_calls, 1);
                continue;
            }
            if (lv.revision == last[k].revision &&
                (lv.available != last[k].available || lv.reserved != last[k].reserved))
                atomic_fetch_add(&grow.torn_reads, 1);
            if (lv.revision < last[k].revision)
                atomic_fetch_add(&grow.back_reads, 1);
            last[k] = lv;
        }
    }
    return NULL;
}

Test(hold, sales_during_growth_are_read_whole_and_counted_once)
{
    inv_engine *e = open_stocked();
    tu_set_level(e, ITEM_1, LOC_A, GROW_STOCK);
    tu_set_level(e, ITEM_2, LOC_A, GROW_STOCK);
    grow.e = e;
    grow.sales = tu_iters_min(20000, 500);
    grow.new_levels = tu_iters_min(40000, 4000);
    atomic_store(&grow.sellers_done, 0);
    atomic_store(&grow.torn_reads, 0);
    atomic_store(&grow.back_reads, 0);
    atomic_store(&grow.failed_calls, 0);
    pthread_t sellers[GROW_SELLERS], grower, reader;
    for (uintptr_t t = 0; t < GROW_SELLERS; t++)
        cr_assert_eq(pthread_create(&sellers[t], NULL, grow_seller, (void *)t), 0);
    cr_assert_eq(pthread_create(&grower, NULL, grow_grower, NULL), 0);
    cr_assert_eq(pthread_create(&reader, NULL, grow_reader, NULL), 0);
    for (int t = 0; t < GROW_SELLERS; t++)
        cr_assert_eq(pthread_join(sellers[t], NULL), 0);
    cr_assert_eq(pthread_join(grower, NULL), 0);
    cr_assert_eq(pthread_join(reader, NULL), 0);
    cr_assert_eq(atomic_load(&grow.failed_calls), 0);
    cr_assert_eq(atomic_load(&grow.torn_reads), 0, "a revision read with two states");
    cr_assert_eq(atomic_load(&grow.back_reads), 0, "a revision went back");
    cr_assert_gt(tu_stats_of(e).table_resizes, 0, "the table never grew");
    /* every sale counted once: one unit of ITEM_1 per sale, two of ITEM_2
     * per two-line sale */
    uint64_t total = GROW_SELLERS * grow.sales, two_line = 0;
    for (uint64_t i = 0; i < grow.sales; i++)
        two_line += i % 3 != 0;
    two_line *= GROW_SELLERS;
    inv_level_full f1, f2;
    cr_assert_eq(inv_level_get_full(e, ITEM_1, LOC_A, &f1), INV_OK);
    cr_assert_eq(inv_level_get_full(e, ITEM_2, LOC_A, &f2), INV_OK);
    cr_assert_eq(f1.qty[INV_QTY_COMMITTED], (int64_t)total);
    cr_assert_eq(f1.qty[INV_QTY_RESERVED], 0);
    cr_assert_eq(f1.qty[INV_QTY_AVAILABLE], GROW_STOCK - (int64_t)total);
    cr_assert_eq(f2.qty[INV_QTY_COMMITTED], 2 * (int64_t)two_line);
    cr_assert_eq(f2.qty[INV_QTY_RESERVED], 0);
    cr_assert_eq(f2.qty[INV_QTY_AVAILABLE], GROW_STOCK - 2 * (int64_t)two_line);
    verify_and_close(e);
}
