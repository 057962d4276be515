/*
 * test_level.c — stock levels through the public API (include/invcore.h):
 * set / get / adjust, floors, if_revision, revisions, limits, NOTFOUND,
 * delete and re-create, per-item listing, untracked items, extreme ids,
 * NULL arguments, error strings and statistics.
 */
#include "test_util.h"

#include "engine.h" /* e->levels, to force growth and read resizes */
#include "epoch.h"
#include "level.h" /* level_read under a lock set */
#include "level_cold.h" /* lock sets */
#include "table.h"

static inv_engine *open_with(uint64_t item, uint64_t loc)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    cr_assert_eq(inv_location_put(e, loc, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, item, NULL), INV_OK);
    return e;
}

#define I1 11
#define L1 21

/* ---- set / get / adjust ------------------------------------------------ */

Test(level, set_creates_a_level_and_get_reads_it)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv = {-1, -1, 0};
    cr_expect_eq(inv_level_get(e, I1, L1, &lv), INV_ENOTFOUND);
    cr_expect_eq(inv_level_set(e, I1, L1, 40, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, 40);
    cr_expect_eq(lv.reserved, 0);
    cr_expect_geq(lv.revision, 1);
    inv_level got = {0};
    cr_expect_eq(inv_level_get(e, I1, L1, &got), INV_OK);
    cr_expect(got.available == 40 && got.reserved == 0 && got.revision == lv.revision);
    inv_close(e);
}

Test(level, adjust_adds_delta_and_bumps_the_revision)
{
    inv_engine *e = open_with(I1, L1);
    inv_level a, b, c;
    cr_assert_eq(inv_level_set(e, I1, L1, 10, 0, &a), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 5, INV_NO_FLOOR, &b), INV_OK);
    cr_expect_eq(b.available, 15);
    cr_expect_gt(b.revision, a.revision);
    /* The default oversell policy (deny): no floor-less decrement below 0. */
    cr_expect_eq(inv_level_adjust(e, I1, L1, -25, INV_NO_FLOOR, &c), INV_EINSUFFICIENT);
    cr_expect_eq(c.available, 15);
    cr_expect_eq(c.revision, b.revision, "a refused change leaves the revision");
    /* An explicit floor is the caller's: it may go below 0. */
    cr_expect_eq(inv_level_adjust(e, I1, L1, -25, -100, &c), INV_OK);
    cr_expect_eq(c.available, -10, "an explicit floor: available may go negative");
    cr_expect_gt(c.revision, b.revision);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 0, INV_NO_FLOOR, &a), INV_OK);
    cr_expect_eq(a.available, -10);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 3, INV_NO_FLOOR, &a), INV_OK, "increments pass");
    cr_expect_eq(a.available, -7);
    inv_close(e);
}

Test(level, a_continue_policy_lets_floorless_decrements_go_to_its_preorder_limit)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv;
    cr_assert_eq(inv_level_set(e, I1, L1, 2, 0, NULL), INV_OK);
    cr_assert_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, 5), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -7, INV_NO_FLOOR, &lv), INV_OK);
    cr_expect_eq(lv.available, -5);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -1, INV_NO_FLOOR, &lv), INV_EINSUFFICIENT);
    cr_expect_eq(lv.available, -5);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -1, 0, NULL), INV_EINSUFFICIENT, "a floor wins");
    cr_assert_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, INV_NO_PREORDER_LIMIT),
                 INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -1000, INV_NO_FLOOR, &lv), INV_OK);
    cr_expect_eq(lv.available, -1005);
    inv_level_full f;
    cr_assert_eq(inv_level_get_full(e, I1, L1, &f), INV_OK);
    cr_expect_eq(f.policy, INV_POLICY_CONTINUE);
    cr_expect_eq(f.preorder_limit, INV_NO_PREORDER_LIMIT);
    cr_assert_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_DENY, 0), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -1, INV_NO_FLOOR, NULL), INV_EINSUFFICIENT);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, NULL), INV_OK);
    cr_assert_eq(inv_level_get_full(e, I1, L1, &f), INV_OK);
    cr_expect_eq(f.policy, INV_POLICY_DENY);
    inv_close(e);
}

Test(level, adjust_of_an_absent_level_is_notfound)
{
    inv_engine *e = open_with(I1, L1);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, 0, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_get(e, I1, L1, NULL), INV_ENOTFOUND);
    inv_close(e);
}

Test(level, adjust_never_goes_below_floor)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv, before;
    cr_assert_eq(inv_level_set(e, I1, L1, 3, 0, &before), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -2, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, 1);
    before = lv;
    lv = (inv_level){-7, -7, 0};
    cr_expect_eq(inv_level_adjust(e, I1, L1, -2, 0, &lv), INV_EINSUFFICIENT);
    cr_expect_eq(lv.available, 1, "INSUFFICIENT reports the current level");
    cr_expect_eq(lv.revision, before.revision, "a refused change keeps the revision");
    inv_level now;
    cr_expect_eq(inv_level_get(e, I1, L1, &now), INV_OK);
    cr_expect(now.available == 1 && now.revision == before.revision);
    /* Exactly to the floor is allowed; negative and positive floors work. */
    cr_expect_eq(inv_level_adjust(e, I1, L1, -1, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, 0);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -5, -5, &lv), INV_OK);
    cr_expect_eq(lv.available, -5);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -1, -5, &lv), INV_EINSUFFICIENT);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 20, 10, &lv), INV_OK);
    cr_expect_eq(lv.available, 15);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -6, 10, &lv), INV_EINSUFFICIENT);
    cr_expect_eq(lv.available, 15);
    /* A positive delta that still ends below the floor is refused. */
    cr_expect_eq(inv_level_set(e, I1, L1, -10, 0, &lv), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 3, 0, &lv), INV_EINSUFFICIENT);
    cr_expect_eq(lv.available, -10);
    inv_close(e);
}

/* ---- revisions and if_revision ----------------------------------------- */

Test(level, revisions_start_at_one_or_more_and_strictly_increase)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv;
    cr_assert_eq(inv_level_set(e, I1, L1, 0, 0, &lv), INV_OK);
    cr_expect_geq(lv.revision, 1);
    uint64_t last = lv.revision;
    for (int i = 0; i < 100; i++) {
        int rc = i % 3 == 0   ? inv_level_set(e, I1, L1, i, 0, &lv)
                 : i % 3 == 1 ? inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, &lv)
                              : inv_level_adjust(e, I1, L1, -1, 0, &lv);
        cr_assert_eq(rc, INV_OK, "op %d: %s", i, inv_strerror(rc));
        cr_assert_gt(lv.revision, last, "op %d: revision %llu after %llu", i,
                     (unsigned long long)lv.revision, (unsigned long long)last);
        last = lv.revision;
    }
    /* A set to the same quantity is still a change. */
    cr_assert_eq(inv_level_set(e, I1, L1, lv.available, 0, &lv), INV_OK);
    cr_expect_gt(lv.revision, last);
    inv_close(e);
}

Test(level, set_with_if_revision_conflicts_unless_it_matches)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv, cur;
    cr_assert_eq(inv_level_set(e, I1, L1, 5, 0, &cur), INV_OK);
    lv = (inv_level){-1, -1, 0};
    cr_expect_eq(inv_level_set(e, I1, L1, 9, cur.revision + 1, &lv), INV_ECONFLICT);
    cr_expect(lv.available == 5 && lv.revision == cur.revision,
              "CONFLICT reports the current level");
    cr_expect_eq(inv_level_set(e, I1, L1, 9, cur.revision, &lv), INV_OK);
    cr_expect_eq(lv.available, 9);
    cr_expect_gt(lv.revision, cur.revision);
    /* The old revision is stale now. */
    cr_expect_eq(inv_level_set(e, I1, L1, 1, cur.revision, NULL), INV_ECONFLICT);
    inv_level now;
    cr_expect_eq(inv_level_get(e, I1, L1, &now), INV_OK);
    cr_expect(now.available == 9 && now.revision == lv.revision);
    inv_close(e);
}

Test(level, conditional_set_of_an_absent_level_conflicts_with_revision_zero)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv = {7, 7, 7};
    cr_expect_eq(inv_level_set(e, I1, L1, 3, 1, &lv), INV_ECONFLICT);
    cr_expect(lv.available == 0 && lv.reserved == 0 && lv.revision == 0);
    cr_expect_eq(inv_level_get(e, I1, L1, NULL), INV_ENOTFOUND, "a refused set created it");
    inv_close(e);
}

Test(level, adjust_with_if_revision_conflicts_unless_it_matches)
{
    inv_engine *e = open_with(I1, L1);
    inv_level cur, lv;
    cr_assert_eq(inv_level_set(e, I1, L1, 5, 0, &cur), INV_OK);
    cr_expect_eq(inv_level_adjust_if(e, I1, L1, 1, INV_NO_FLOOR, cur.revision + 7, &lv),
                 INV_ECONFLICT);
    cr_expect(lv.available == 5 && lv.revision == cur.revision);
    cr_expect_eq(inv_level_adjust_if(e, I1, L1, 1, INV_NO_FLOOR, cur.revision, &lv), INV_OK);
    cr_expect_eq(lv.available, 6);
    cr_expect_eq(inv_level_adjust_if(e, I1, L1, 1, INV_NO_FLOOR, 0, &lv), INV_OK,
                 "if_revision 0 is unconditional");
    cr_expect_eq(lv.available, 7);
    /* The revision matches but the floor refuses. */
    cr_expect_eq(inv_level_adjust_if(e, I1, L1, -10, 0, lv.revision, &cur), INV_EINSUFFICIENT);
    cr_expect_eq(cur.revision, lv.revision);
    inv_close(e);
}

/* ---- limits ------------------------------------------------------------- */

Test(level, quantities_beyond_a_billion_are_a_limit_error)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv;
    cr_expect_eq(inv_level_set(e, I1, L1, INV_QTY_MAX + 1, 0, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_set(e, I1, L1, -INV_QTY_MAX - 1, 0, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_set(e, I1, L1, INT64_MAX, 0, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_set(e, I1, L1, INT64_MIN, 0, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_get(e, I1, L1, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_set(e, I1, L1, INV_QTY_MAX, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, INV_QTY_MAX);
    cr_expect_eq(inv_level_set(e, I1, L1, -INV_QTY_MAX, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, -INV_QTY_MAX);
    uint64_t rev = lv.revision;
    cr_expect_eq(inv_level_adjust(e, I1, L1, INV_QTY_MAX + 1, INV_NO_FLOOR, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_adjust(e, I1, L1, INT64_MIN + 1, INV_NO_FLOOR, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, INV_QTY_MAX + 1, &lv), INV_ELIMIT);
    inv_level now;
    cr_expect_eq(inv_level_get(e, I1, L1, &now), INV_OK);
    cr_expect(now.available == -INV_QTY_MAX && now.revision == rev);
    inv_close(e);
}

Test(level, adjusts_whose_result_leaves_the_range_are_a_limit_error)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv;
    cr_assert_eq(inv_level_set(e, I1, L1, INV_QTY_MAX - 5, 0, &lv), INV_OK);
    uint64_t rev = lv.revision;
    cr_expect_eq(inv_level_adjust(e, I1, L1, 6, INV_NO_FLOOR, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_adjust(e, I1, L1, INV_QTY_MAX, 0, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_expect(lv.available == INV_QTY_MAX - 5 && lv.revision == rev);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 5, INV_NO_FLOOR, &lv), INV_OK);
    cr_expect_eq(lv.available, INV_QTY_MAX);
    /* Below 0 without a floor takes a policy that lets orders continue. */
    cr_assert_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, INV_NO_PREORDER_LIMIT),
                 INV_OK);
    cr_assert_eq(inv_level_set(e, I1, L1, -INV_QTY_MAX + 2, 0, &lv), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -3, INV_NO_FLOOR, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -INV_QTY_MAX, INV_NO_FLOOR, &lv), INV_ELIMIT);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -2, INV_NO_FLOOR, &lv), INV_OK);
    cr_expect_eq(lv.available, -INV_QTY_MAX);
    /* From one end of the range to the other in one step is fine. */
    cr_expect_eq(inv_level_adjust(e, I1, L1, INV_QTY_MAX, INV_NO_FLOOR, &lv), INV_OK);
    cr_expect_eq(lv.available, 0);
    inv_close(e);
}

/* ---- catalog relations --------------------------------------------------- */

Test(level, unknown_item_or_location_is_notfound)
{
    inv_engine *e = open_with(I1, L1);
    cr_expect_eq(inv_level_set(e, I1 + 1, L1, 1, 0, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_set(e, I1, L1 + 1, 1, 0, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_set(e, L1, I1, 1, 0, NULL), INV_ENOTFOUND, "ids swapped");
    cr_expect_eq(inv_level_get(e, I1 + 1, L1, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_adjust(e, I1, L1 + 1, 1, INV_NO_FLOOR, NULL), INV_ENOTFOUND);
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_expect_eq(st.levels, 0);
    inv_close(e);
}

Test(level, delete_then_get_is_notfound)
{
    inv_engine *e = open_with(I1, L1);
    cr_assert_eq(inv_level_set(e, I1, L1, 4, 0, NULL), INV_OK);
    cr_expect_eq(inv_level_del(e, I1, L1), INV_OK);
    cr_expect_eq(inv_level_get(e, I1, L1, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_del(e, I1, L1), INV_ENOTFOUND);
    cr_expect_eq(inv_level_del(e, I1, L1 + 1), INV_ENOTFOUND);
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_expect_eq(st.levels, 0);
    inv_close(e);
}

Test(level, recreate_after_delete_has_a_revision_above_the_deleted_one)
{
    inv_engine *e = open_with(I1, L1);
    inv_level lv;
    cr_assert_eq(inv_level_set(e, I1, L1, 4, 0, &lv), INV_OK);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, &lv), INV_OK);
    uint64_t deleted_rev = lv.revision;
    cr_assert_eq(inv_level_del(e, I1, L1), INV_OK);
    cr_expect_eq(inv_level_set(e, I1, L1, 2, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, 2);
    cr_expect_gt(lv.revision, deleted_rev, "re-created at revision %llu, deleted at %llu",
                 (unsigned long long)lv.revision, (unsigned long long)deleted_rev);
    inv_close(e);
}

/* Revisions exist for optimistic concurrency: a client holding a revision
 * of the deleted level must not match the re-created one, even after the
 * level table grew (growth drops tombstones). */
Test(level, recreate_after_delete_and_growth_has_a_revision_above_the_deleted_one)
{
    inv_engine *e = tu_open_engine(1, 0, 0);
    size_t n_locs = 600;
    for (size_t j = 0; j < n_locs; j++)
        cr_assert_eq(inv_location_put(e, tu_loc_id(j), NULL), INV_OK);
    uint64_t item = tu_item_id(0), loc = tu_loc_id(0);
    inv_level lv;
    cr_assert_eq(inv_level_set(e, item, loc, 4, 0, &lv), INV_OK);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(inv_level_adjust(e, item, loc, 1, INV_NO_FLOOR, &lv), INV_OK);
    uint64_t deleted_rev = lv.revision;
    cr_assert_eq(inv_level_del(e, item, loc), INV_OK);
    /* relaxed: a statistic, no writer running. */
    uint64_t r0 = atomic_load_explicit(&e->levels.resizes, memory_order_relaxed);
    for (size_t j = 1; j < n_locs; j++)
        cr_assert_eq(inv_level_set(e, item, tu_loc_id(j), 1, 0, NULL), INV_OK);
    cr_assert_gt(atomic_load_explicit(&e->levels.resizes, memory_order_relaxed), r0,
                 "the level table did not grow");
    cr_expect_eq(inv_level_set(e, item, loc, 2, 0, &lv), INV_OK);
    cr_expect_gt(lv.revision, deleted_rev,
                 "re-created after growth at revision %llu, deleted at %llu: a stale "
                 "if_revision can match the new level",
                 (unsigned long long)lv.revision, (unsigned long long)deleted_rev);
    inv_close(e);
}

Test(level, deleting_the_item_deletes_its_levels)
{
    inv_engine *e = tu_open_engine(2, 3, 0);
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++)
            cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(j), 1, 0, NULL), INV_OK);
    cr_assert_eq(inv_item_del(e, tu_item_id(0)), INV_OK);
    for (size_t j = 0; j < 3; j++) {
        cr_expect_eq(inv_level_get(e, tu_item_id(0), tu_loc_id(j), NULL), INV_ENOTFOUND);
        cr_expect_eq(inv_level_get(e, tu_item_id(1), tu_loc_id(j), NULL), INV_OK);
    }
    cr_expect_eq(inv_level_set(e, tu_item_id(0), tu_loc_id(0), 1, 0, NULL), INV_ENOTFOUND);
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_expect_eq(st.levels, 3);
    inv_close(e);
}

/* ---- listing --------------------------------------------------------------- */

Test(level, list_returns_an_items_levels_sorted_by_location)
{
    inv_engine *e = tu_open_engine(2, 0, 0);
    static const uint64_t locs[] = {900, 5, UINT64_MAX, 0, 77, 6};
    size_t n = sizeof locs / sizeof locs[0];
    for (size_t j = 0; j < n; j++)
        cr_assert_eq(inv_location_put(e, locs[j], NULL), INV_OK);
    for (size_t j = 0; j < n; j++)
        if (locs[j] != 77)
            cr_assert_eq(inv_level_set(e, tu_item_id(0), locs[j], (int64_t)j, 0, NULL), INV_OK);
    cr_assert_eq(inv_level_set(e, tu_item_id(1), 77, 1, 0, NULL), INV_OK);
    inv_level_entry out[8];
    size_t got = 0;
    cr_assert_eq(inv_level_list(e, tu_item_id(0), out, 8, &got), INV_OK);
    cr_assert_eq(got, n - 1);
    static const uint64_t want[] = {0, 5, 6, 900, UINT64_MAX};
    for (size_t k = 0; k < got; k++) {
        cr_expect_eq(out[k].location, want[k], "entry %zu: location %llu", k,
                     (unsigned long long)out[k].location);
        size_t j = 0;
        while (locs[j] != out[k].location)
            j++;
        cr_expect_eq(out[k].level.available, (int64_t)j);
        cr_expect_geq(out[k].level.revision, 1);
    }
    /* Too small a buffer: the first cap entries, the full count, LIMIT. */
    cr_expect_eq(inv_level_list(e, tu_item_id(0), out, 2, &got), INV_ELIMIT);
    cr_expect_eq(got, n - 1);
    cr_expect_eq(out[0].location, 0);
    cr_expect_eq(out[1].location, 5);
    /* Deleted levels leave the list. */
    cr_assert_eq(inv_level_del(e, tu_item_id(0), 5), INV_OK);
    cr_assert_eq(inv_level_list(e, tu_item_id(0), out, 8, &got), INV_OK);
    cr_expect_eq(got, n - 2);
    /* An item without levels lists none; an unknown item is NOTFOUND. */
    cr_assert_eq(inv_item_put(e, 4242, NULL), INV_OK);
    cr_expect_eq(inv_level_list(e, 4242, out, 8, &got), INV_OK);
    cr_expect_eq(got, 0);
    cr_expect_eq(inv_level_list(e, 4243, out, 8, &got), INV_ENOTFOUND);
    cr_expect_eq(inv_level_list(e, tu_item_id(0), out, 8, NULL), INV_EINVALID);
    cr_expect_eq(inv_level_list(e, tu_item_id(0), NULL, 8, &got), INV_EINVALID);
    inv_close(e);
}

Test(level, list_with_no_buffer_reports_the_count)
{
    inv_engine *e = tu_open_engine(2, 3, 0);
    for (size_t j = 0; j < 3; j++)
        cr_assert_eq(inv_level_set(e, tu_item_id(0), tu_loc_id(j), 1, 0, NULL), INV_OK);
    size_t got = 99;
    cr_expect_eq(inv_level_list(e, tu_item_id(0), NULL, 0, &got), INV_ELIMIT);
    cr_expect_eq(got, 3);
    got = 99;
    cr_expect_eq(inv_level_list(e, tu_item_id(1), NULL, 0, &got), INV_OK);
    cr_expect_eq(got, 0);
    inv_close(e);
}

/* ---- untracked items --------------------------------------------------- */

Test(level, untracked_item_floored_adjust_succeeds_without_change)
{
    inv_engine *e = tu_open_engine(0, 1, 0);
    uint64_t item = 5, loc = tu_loc_id(0);
    cr_assert_eq(tu_item_put_untracked(e, item), INV_OK);
    inv_item it;
    cr_assert_eq(inv_item_get(e, item, &it), INV_OK);
    cr_expect(!it.fields.tracked);
    inv_level lv, before;
    cr_assert_eq(inv_level_set(e, item, loc, 2, 0, &before), INV_OK);
    cr_expect_eq(inv_level_adjust(e, item, loc, -10, 0, &lv), INV_OK);
    cr_expect(lv.available == 2 && lv.revision == before.revision,
              "untracked floored adjust changed the level: %lld rev %llu", (long long)lv.available,
              (unsigned long long)lv.revision);
    cr_expect_eq(inv_level_get(e, item, loc, &lv), INV_OK);
    cr_expect(lv.available == 2 && lv.revision == before.revision);
    /* Tracking it again makes the floor count. */
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_ITEM_TRACKED;
    f.tracked = true;
    cr_assert_eq(inv_item_put(e, item, &f), INV_OK);
    cr_expect_eq(inv_level_adjust(e, item, loc, -10, 0, &lv), INV_EINSUFFICIENT);
    cr_expect_eq(inv_level_adjust(e, item, loc, -2, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, 0);
    /* And untracking it again after the level exists. */
    f.tracked = false;
    cr_assert_eq(inv_item_put(e, item, &f), INV_OK);
    cr_expect_eq(inv_level_adjust(e, item, loc, -10, 0, &lv), INV_OK);
    cr_expect_eq(lv.available, 0);
    inv_close(e);
}

/* ---- ids, NULLs, errors, stats ------------------------------------------ */

Test(level, ids_zero_and_max_work_for_items_and_locations)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    static const uint64_t ids[] = {0, 1, UINT64_MAX, UINT64_MAX - 1};
    size_t n = sizeof ids / sizeof ids[0];
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(inv_item_put(e, ids[k], NULL), INV_OK, "item %llu",
                     (unsigned long long)ids[k]);
        cr_assert_eq(inv_location_put(e, ids[k], NULL), INV_OK, "location %llu",
                     (unsigned long long)ids[k]);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            cr_assert_eq(inv_level_set(e, ids[i], ids[j], (int64_t)(i * 10 + j), 0, NULL), INV_OK,
                         "(%zu, %zu)", i, j);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            inv_level lv;
            cr_assert_eq(inv_level_get(e, ids[i], ids[j], &lv), INV_OK);
            cr_expect_eq(lv.available, (int64_t)(i * 10 + j), "(%zu, %zu)", i, j);
            cr_assert_eq(inv_level_adjust(e, ids[i], ids[j], 1, 0, &lv), INV_OK);
            cr_expect_eq(lv.available, (int64_t)(i * 10 + j) + 1);
        }
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_expect_eq(st.levels, n * n);
    cr_assert_eq(inv_level_del(e, 0, 0), INV_OK);
    cr_assert_eq(inv_level_del(e, 0, 1), INV_OK);
    cr_expect_eq(inv_level_get(e, 0, 0, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_get(e, 0, 1, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_get(e, 1, 0, NULL), INV_OK);
    inv_close(e);
}

Test(level, out_may_be_null)
{
    inv_engine *e = open_with(I1, L1);
    cr_expect_eq(inv_level_set(e, I1, L1, 3, 0, NULL), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, 0, NULL), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, -10, 0, NULL), INV_EINSUFFICIENT);
    cr_expect_eq(inv_level_set(e, I1, L1, 3, 999, NULL), INV_ECONFLICT);
    cr_expect_eq(inv_level_adjust_if(e, I1, L1, 1, 0, 999, NULL), INV_ECONFLICT);
    cr_expect_eq(inv_level_get(e, I1, L1, NULL), INV_OK);
    inv_level lv;
    cr_expect_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_expect_eq(lv.available, 4);
    inv_close(e);
}

Test(level, a_null_engine_is_invalid)
{
    inv_level lv;
    size_t n;
    inv_level_entry out[1];
    inv_stats st;
    cr_expect_eq(inv_level_set(NULL, 1, 1, 1, 0, &lv), INV_EINVALID);
    cr_expect_eq(inv_level_set(NULL, 1, 1, INV_QTY_MAX + 1, 0, &lv), INV_EINVALID);
    cr_expect_eq(inv_level_adjust(NULL, 1, 1, 1, INV_NO_FLOOR, &lv), INV_EINVALID);
    cr_expect_eq(inv_level_adjust(NULL, 1, 1, INV_QTY_MAX + 1, INV_NO_FLOOR, &lv), INV_EINVALID);
    cr_expect_eq(inv_level_adjust_if(NULL, 1, 1, 1, 0, 1, &lv), INV_EINVALID);
    cr_expect_eq(inv_level_get(NULL, 1, 1, &lv), INV_EINVALID);
    cr_expect_eq(inv_level_del(NULL, 1, 1), INV_EINVALID);
    cr_expect_eq(inv_level_list(NULL, 1, out, 1, &n), INV_EINVALID);
    cr_expect_eq(inv_stats_get(NULL, &st), INV_EINVALID);
    cr_expect_eq(inv_open(NULL, NULL), INV_EINVALID);
    inv_close(NULL);
}

Test(level, every_error_code_has_a_message_and_a_protocol_code)
{
    static const struct {
        int rc;
        const char *code;
    } codes[] = {
        {INV_ENOTFOUND, "NOTFOUND"}, {INV_EEXISTS, "EXISTS"},
        {INV_ECONFLICT, "CONFLICT"}, {INV_EINSUFFICIENT, "INSUFFICIENT"},
        {INV_EINVALID, "INVALID"},   {INV_ELIMIT, "LIMIT"},
        {INV_ENOMEM, "NOMEM"},       {INV_EIO, "IO"},
    };
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
        const char *msg = inv_strerror(codes[k].rc);
        cr_assert_not_null(msg);
        cr_expect_gt(strlen(msg), 0);
        cr_expect_str_neq(msg, "unknown error", "rc %d has no message", codes[k].rc);
        cr_expect_str_neq(msg, "ok");
        cr_expect_str_eq(inv_errcode(codes[k].rc), codes[k].code);
        for (size_t m = 0; m < k; m++)
            cr_expect_str_neq(msg, inv_strerror(codes[m].rc), "rc %d and %d share a message",
                              codes[k].rc, codes[m].rc);
    }
    cr_expect_str_eq(inv_strerror(INV_OK), "ok");
    cr_expect_str_eq(inv_strerror(-100), "unknown error");
    cr_expect_str_eq(inv_strerror(1), "unknown error");
    cr_expect_str_eq(inv_errcode(-100), "ERR");
    cr_expect_str_eq(inv_errcode(7), "ERR");
}

Test(level, stats_count_levels_and_report_table_bytes)
{
    inv_engine *e = tu_open_engine(10, 10, 0);
    inv_stats st0, st;
    cr_assert_eq(inv_stats_get(e, &st0), INV_OK);
    cr_expect_eq(st0.levels, 0);
    cr_expect_eq(st0.items, 10);
    cr_expect_eq(st0.locations, 10);
    cr_expect_gt(st0.table_bytes, 0);
    for (size_t i = 0; i < 10; i++)
        for (size_t j = 0; j < 10; j++)
            cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(j), 1, 0, NULL), INV_OK);
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_expect_eq(st.levels, 100);
    cr_expect_gt(st.table_bytes, st0.table_bytes, "100 levels in 16 slots: the table grew");
    cr_expect_gt(st.table_resizes, st0.table_resizes);
    /* Updates do not count as levels; deletes do. */
    cr_assert_eq(inv_level_set(e, tu_item_id(0), tu_loc_id(0), 5, 0, NULL), INV_OK);
    cr_assert_eq(inv_level_del(e, tu_item_id(0), tu_loc_id(1)), INV_OK);
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_expect_eq(st.levels, 99);
    cr_expect_eq(st.journal_position, 0, "memory mode has no journal");
    inv_close(e);
}

Test(level, a_capacity_hint_absorbs_that_many_levels_without_resizing)
{
    inv_engine *e = tu_open_engine(40, 50, 2000);
    inv_stats st0, st;
    cr_assert_eq(inv_stats_get(e, &st0), INV_OK);
    for (size_t i = 0; i < 40; i++)
        for (size_t j = 0; j < 50; j++)
            cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(j), 1, 0, NULL), INV_OK);
    /* relaxed: a statistic, no writer running. */
    cr_expect_eq(atomic_load_explicit(&e->levels.resizes, memory_order_relaxed), 0);
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_expect_eq(st.levels, 2000);
    inv_close(e);
}

/* ---- scan of every level (inv_level_scan) ------------------------------- */

Test(level_scan, refuses_bad_arguments)
{
    inv_engine *e = open_with(I1, L1);
    inv_level_row rows[4];
    size_t n = 0;
    uint64_t next = 0;
    cr_expect_eq(inv_level_scan(NULL, 0, 4, rows, 4, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_scan(e, 0, 0, rows, 4, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_scan(e, 0, INV_LIST_COUNT_MAX + 1, rows, 4, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_scan(e, 0, 4, NULL, 4, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_scan(e, 0, 4, rows, 0, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_scan(e, 0, 4, rows, 4, NULL, &next), INV_EINVALID);
    cr_expect_eq(inv_level_scan(e, 0, 4, rows, 4, &n, NULL), INV_EINVALID);
    cr_expect_eq(inv_level_scan(e, 0, 4, rows, 4, &n, &next), INV_OK);
    cr_expect_eq(n, 0, "no level yet");
    cr_expect_eq(next, 0);
    inv_close(e);
}

Test(level_scan, returns_each_level_with_its_value_and_skips_deleted_ones)
{
    inv_engine *e = tu_open_engine(3, 2, 0);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 2; j++)
            cr_assert_eq(
                inv_level_set(e, tu_item_id(i), tu_loc_id(j), (int64_t)(10 * i + j), 0, NULL),
                INV_OK);
    cr_assert_eq(inv_level_del(e, tu_item_id(1), tu_loc_id(0)), INV_OK);
    inv_level_row rows[INV_LIST_COUNT_MAX];
    size_t n = 0;
    uint64_t next = 1;
    cr_assert_eq(inv_level_scan(e, 0, INV_LIST_COUNT_MAX, rows, INV_LIST_COUNT_MAX, &n, &next),
                 INV_OK);
    cr_expect_eq(n, 5);
    cr_expect_eq(next, 0, "one page holds everything");
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)(rows[k].item - tu_item_id(0)) / 7;
        size_t j = (size_t)(rows[k].location - tu_loc_id(0)) / 3;
        cr_expect(!(i == 1 && j == 0), "a deleted level was listed");
        cr_expect_eq(rows[k].level.available, (int64_t)(10 * i + j));
        cr_expect_eq(rows[k].level.reserved, 0);
        cr_expect_geq(rows[k].level.revision, 1);
    }
    inv_close(e);
}

/* Pages of `count` over n_items x n_locs levels, creating up to three new
 * levels (on items from n_items on) after each page while the table grows;
 * every level present from the start is seen exactly once. */
static void scan_while_creating(inv_engine *e, size_t n_items, size_t n_locs, size_t count)
{
    uint8_t *seen = calloc(n_items * n_locs, 1);
    cr_assert_not_null(seen);
    inv_level_row rows[INV_LIST_COUNT_MAX];
    uint64_t cursor = 0;
    size_t pages = 0, created = 0;
    do {
        size_t got = 0;
        cr_assert_eq(inv_level_scan(e, cursor, count, rows, INV_LIST_COUNT_MAX, &got, &cursor),
                     INV_OK);
        cr_assert_leq(got, count);
        for (size_t k = 0; k < got; k++) {
            size_t i = (size_t)(rows[k].item - tu_item_id(0)) / 7;
            size_t j = (size_t)(rows[k].location - tu_loc_id(0)) / 3;
            if (i < n_items) {
                cr_assert_lt(j, n_locs);
                seen[i * n_locs + j]++;
            }
        }
        for (int k = 0; k < 3 && created < n_locs; k++, created++)
            cr_assert_eq(inv_level_set(e, tu_item_id(n_items), tu_loc_id(created), 1, 0, NULL),
                         INV_OK);
        cr_assert_lt(++pages, 1000000, "the scan never ends");
    } while (cursor != 0);
    for (size_t x = 0; x < n_items * n_locs; x++)
        cr_assert_eq(seen[x], 1, "level %zu seen %u times (count %zu)", x, seen[x], count);
    free(seen);
}

Test(level_scan, pages_visit_every_level_once_while_the_table_grows)
{
    size_t n_items = (size_t)tu_iters_min(60, 10), n_locs = 40;
    size_t counts[] = {1, 7, 100, INV_LIST_COUNT_MAX};
    for (size_t c = 0; c < 4; c++) {
        inv_engine *e = tu_open_engine(n_items + 1, n_locs, 1);
        for (size_t i = 0; i < n_items; i++)
            for (size_t j = 0; j < n_locs; j++)
                cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(j), 1, 0, NULL), INV_OK);
        scan_while_creating(e, n_items, n_locs, counts[c]);
        inv_close(e);
    }
}

/* ---- multi-level changes (table_mcas, issue 17 #11) ------------------- */

#define L2 22

/* A hand-made line step: available -= 5, revision + 1 (memory mode). */
static int take_five(void *ctx, table_word cur, table_word *next)
{
    (void)ctx;
    int32_t available = (int32_t)(uint32_t)cur.w0 - 5;
    next->w0 = (cur.w0 & ~0xffffffffULL) | (uint32_t)available;
    next->w1 = cur.w1 + 1;
    return TABLE_STEP_WRITE;
}

static inv_engine *open_two(inv_level *a, inv_level *b)
{
    inv_engine *e = open_with(I1, L1);
    cr_assert_eq(inv_location_put(e, L2, NULL), INV_OK);
    cr_assert_eq(inv_level_set(e, I1, L1, 10, 0, a), INV_OK);
    cr_assert_eq(inv_level_set(e, I1, L2, 10, 0, b), INV_OK);
    return e;
}

static table_mcas *two_keys(void)
{
    table_mcas *d = table_mcas_new(2);
    cr_assert_not_null(d);
    d->entry[0].a = d->entry[1].a = I1;
    d->entry[0].b = L1;
    d->entry[1].b = L2;
    return d;
}

/* Two levels of 10 (their first reads in a0, b0) and a change of both,
 * installed on the first n_installed of them, undecided. */
static table_mcas *open_installed(inv_engine **e, inv_level *a0, inv_level *b0, size_t n_installed)
{
    *e = open_two(a0, b0);
    table_mcas *d = two_keys();
    epoch_enter();
    for (size_t i = 0; i < n_installed; i++)
        cr_assert_eq(table_mcas_install(&(*e)->levels, d, i, take_five, NULL), TABLE_STEP_WRITE);
    epoch_exit();
    return d;
}

Test(level, a_stalled_multi_level_change_is_unseen_and_a_writer_aborts_it)
{
    inv_level a0, b0, lv;
    inv_engine *e;
    table_mcas *d = open_installed(&e, &a0, &b0, 1);
    /* Undecided: a reader sees the level as it was. */
    cr_assert_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_assert_eq(lv.available, 10);
    cr_assert_eq(lv.revision, a0.revision);
    /* A writer does not wait for the stalled owner for ever: it aborts the
     * change, and lands on the old word. */
    cr_assert_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, &lv), INV_OK);
    cr_assert_eq(lv.available, 11);
    cr_assert_eq(lv.revision, a0.revision + 1);
    epoch_enter();
    cr_assert_not(table_mcas_decide(d), "the owner decided a change a writer aborted");
    table_mcas_finish(&e->levels, d);
    epoch_exit();
    cr_assert_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_assert_eq(lv.available, 11);
    cr_assert_eq(inv_level_get(e, I1, L2, &lv), INV_OK);
    cr_assert(lv.available == 10 && lv.revision == b0.revision, "the other key moved");
    inv_close(e);
}

Test(level, a_decided_multi_level_change_reads_whole_before_its_words_are_written)
{
    inv_level a0, b0, lv;
    inv_engine *e;
    table_mcas *d = open_installed(&e, &a0, &b0, 2);
    epoch_enter();
    cr_assert(table_mcas_decide(d));
    epoch_exit();
    /* Decided, its words not yet written: both keys read as changed. */
    cr_assert_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_assert(lv.available == 5 && lv.revision == a0.revision + 1);
    cr_assert_eq(inv_level_get(e, I1, L2, &lv), INV_OK);
    cr_assert(lv.available == 5 && lv.revision == b0.revision + 1);
    /* A writer finishes it on its way (floored: the 5 left are there). */
    cr_assert_eq(inv_level_adjust(e, I1, L2, -5, 0, &lv), INV_OK);
    cr_assert(lv.available == 0 && lv.revision == b0.revision + 2);
    epoch_enter();
    table_mcas_finish(&e->levels, d);
    epoch_exit();
    cr_assert_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_assert(lv.available == 5 && lv.revision == a0.revision + 1);
    cr_assert_eq(inv_level_get(e, I1, L2, &lv), INV_OK);
    cr_assert_eq(lv.available, 0);
    inv_close(e);
}

Test(level, an_aborted_multi_level_change_puts_back_the_very_words)
{
    inv_level a0, b0, lv;
    inv_engine *e;
    table_mcas *d = open_installed(&e, &a0, &b0, 2);
    epoch_enter();
    table_mcas_abort(&e->levels, d);
    epoch_exit();
    cr_assert_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_assert(lv.available == 10 && lv.revision == a0.revision);
    cr_assert_eq(inv_level_get(e, I1, L2, &lv), INV_OK);
    cr_assert(lv.available == 10 && lv.revision == b0.revision);
    inv_close(e);
}

/* ---- lock sets and growth (level_cold.h) ------------------------------- */

/* The most keys the test claims to make the level table grow once. */
#define LOCK_GROWTH_KEYS_MAX 100000u

/* Claims fresh keys (first_key, 1), (first_key + 1, 1), ... until the
 * level table has grown past r0 resizes (inside an epoch section): this
 * thread's inserts migrate every slot. */
static void grow_level_table(inv_engine *e, uint64_t r0, uint64_t first_key)
{
    /* relaxed: a statistic; read back to stop once growth is done. */
    for (uint64_t j = 0; j < LOCK_GROWTH_KEYS_MAX &&
                         atomic_load_explicit(&e->levels.resizes, memory_order_relaxed) == r0;
         j++)
        cr_assert_not_null(table_insert(&e->levels, first_key + j, 1));
}

/* A lock set's LOCK moves with its cold part when growth copies it (the
 * thread's own settle): the count stored at the release lands in the copy,
 * the old part stays MOVED, and nothing is left locked. */
Test(level, a_lock_set_moves_with_growth_and_counts_in_the_copy)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    cr_assert_eq(inv_location_put(e, L1, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, I1, NULL), INV_OK);
    cr_assert_eq(inv_level_set(e, I1, L1, 10, 0, NULL), INV_OK);
    inv_hold_line line = {I1, L1, 4};
    cr_assert_eq(inv_hold_create(e, "h", 1, 600000, &line, 1, NULL), INV_OK);
    /* relaxed: a statistic; this thread is the only writer. */
    uint64_t r0 = atomic_load_explicit(&e->levels.resizes, memory_order_relaxed);
    epoch_enter();
    level_key key = {I1, L1, false};
    level_locks_take(e, &key, 1);
    cr_assert(level_locks_held());
    table_slot *before = table_find(&e->levels, I1, L1);
    /* Claimed keys count toward growth; this thread's inserts migrate
     * every slot, its locked one too, before the new array is published. */
    grow_level_table(e, r0, 1000000);
    table_slot *after = table_find(&e->levels, I1, L1);
    level_locks_count(I1, L1, 4);
    level_locks_release();
    cr_assert(!level_locks_held());
    /* relaxed (all): read back on the thread that wrote them. */
    uint64_t old_rules = atomic_load_explicit(&level_cold_of(before)->rules, memory_order_relaxed);
    uint64_t new_rules = atomic_load_explicit(&level_cold_of(after)->rules, memory_order_relaxed);
    epoch_exit();
    cr_assert_gt(atomic_load_explicit(&e->levels.resizes, memory_order_relaxed), r0,
                 "the level table did not grow");
    cr_assert_neq(before, after, "the level did not move");
    cr_assert(old_rules & LEVEL_COLD_MOVED);
    cr_assert(!(new_rules & LEVEL_COLD_LOCK), "the copy was left locked");
    cr_assert_eq(level_committed(new_rules), 4);
    inv_level_full full;
    cr_assert_eq(inv_level_get_full(e, I1, L1, &full), INV_OK);
    cr_expect_eq(full.qty[INV_QTY_COMMITTED], 4);
    cr_expect_eq(full.qty[INV_QTY_RESERVED], 0);
    cr_expect_eq(full.qty[INV_QTY_AVAILABLE], 6);
    inv_close(e);
}

/* A lock set may hold a claimed, never-written slot (a batch's level to
 * create): growth keeps it, with its LOCK, so the creation finds it under
 * the set. Before, growth dropped every slot without a live value and the
 * set held a LOCK on a dead copy. */
Test(level, a_claimed_slot_a_lock_set_holds_survives_growth)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    /* relaxed: a statistic; this thread is the only writer. */
    uint64_t r0 = atomic_load_explicit(&e->levels.resizes, memory_order_relaxed);
    epoch_enter();
    cr_assert_not_null(table_insert(&e->levels, I1, L2)); /* claimed, never written */
    level_key key = {I1, L2, true};
    level_locks_take(e, &key, 1);
    cr_assert(level_locks_cover(e, &key, 1));
    grow_level_table(e, r0, 3000000);
    table_slot *after = table_find(&e->levels, I1, L2);
    bool covered = level_locks_cover(e, &key, 1);
    level_locks_release();
    epoch_exit();
    cr_assert_gt(atomic_load_explicit(&e->levels.resizes, memory_order_relaxed), r0,
                 "the level table did not grow");
    cr_assert_not_null(after, "growth dropped the claimed slot the set held");
    cr_assert(covered, "the set lost the slot's LOCK");
    cr_assert(!table_is_live(table_load(after)), "nothing was written to it");
    inv_level lv;
    cr_assert_eq(inv_level_get(e, I1, L2, &lv), INV_ENOTFOUND);
    inv_close(e);
}

/* Growth decides once whether a claimed, never-written slot stays. Here a
 * helper finds the slot held by a set and waits (FAULT_LEVEL_MOVE, arg2
 * 1); the set lets go, claims the level again (its insert drops the old
 * slot: nobody holds it now) and locks the new slot; then the helper goes
 * on. Before, the helper had decided to keep the slot and copied it into
 * the new one under the set's LOCK (an assertion: the copy was not the
 * only writer of its target). */
typedef struct {
    inv_engine *e;
    uintptr_t cold; /* the claimed slot's cold part */
    atomic_int helper_waits, relocked; /* seq_cst: flags between the threads */
    uint64_t r0;
} redecide;

static int redecide_hook(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    redecide *x = ctx;
    if (arg != x->cold || arg2 != 1 || atomic_exchange(&x->helper_waits, 1))
        return 0;
    uint64_t deadline = tu_deadline_ms(10000); /* bounded: the test fails below */
    while (!atomic_load(&x->relocked) && !tu_past(deadline))
        sched_yield();
    return 0;
}

static void *redecide_grow(void *p)
{
    redecide *x = p;
    epoch_enter();
    grow_level_table(x->e, x->r0, 4000000);
    epoch_exit();
    return NULL;
}

Test(level, a_claimed_slot_let_go_during_growth_is_decided_once)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    redecide x = {.e = e};
    /* relaxed: a statistic; only the grower moves it. */
    x.r0 = atomic_load_explicit(&e->levels.resizes, memory_order_relaxed);
    epoch_enter();
    cr_assert_not_null(table_insert(&e->levels, I1, L2));
    level_key key = {I1, L2, true};
    level_locks_take(e, &key, 1);
    x.cold = (uintptr_t)level_cold_of(table_find(&e->levels, I1, L2));
    fault_reset();
    fault_hook(FAULT_LEVEL_MOVE, redecide_hook, &x);
    pthread_t grower;
    cr_assert_eq(pthread_create(&grower, NULL, redecide_grow, &x), 0);
    uint64_t deadline = tu_deadline_ms(10000);
    while (!atomic_load(&x.helper_waits) && !tu_past(deadline))
        sched_yield();
    bool waited = atomic_load(&x.helper_waits);
    level_locks_release();
    cr_assert_not_null(table_insert(&e->levels, I1, L2)); /* claimed again */
    level_locks_take(e, &key, 1);
    bool covered = level_locks_cover(e, &key, 1);
    atomic_store(&x.relocked, 1);
    epoch_exit();
    pthread_join(grower, NULL);
    epoch_enter();
    bool still = level_locks_cover(e, &key, 1);
    level_locks_release();
    epoch_exit();
    fault_reset();
    cr_assert(waited, "the helper never waited for the set");
    cr_assert(covered && still, "the set does not hold the level's slot");
    inv_level lv;
    cr_assert_eq(inv_level_get(e, I1, L2, &lv), INV_ENOTFOUND);
    inv_close(e);
}

/* A single creation of a level whose claimed slot a lock set holds waits
 * for the set, like any change of a held level: the set's owner reads it
 * absent until it lets go. Before, the creation wrote into the held slot
 * at once (a creation read no LOCK). */
static _Atomic int creator_waits, creator_done; /* seq_cst: test flags */

static int note_creator_wait(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    (void)ctx, (void)site, (void)call, (void)arg, (void)arg2;
    atomic_store(&creator_waits, 1);
    return 0;
}

static void *create_l2(void *p)
{
    int *rc = ((void **)p)[1];
    *rc = inv_level_set(((void **)p)[0], I1, L2, 5, 0, NULL);
    atomic_store(&creator_done, 1);
    return NULL;
}

Test(level, a_creation_waits_for_the_lock_set_that_holds_its_slot)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    cr_assert_eq(inv_location_put(e, L2, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, I1, NULL), INV_OK);
    atomic_store(&creator_waits, 0);
    atomic_store(&creator_done, 0);
    fault_reset();
    fault_hook(FAULT_LEVEL_WAIT, note_creator_wait, NULL);
    epoch_enter();
    cr_assert_not_null(table_insert(&e->levels, I1, L2));
    level_key key = {I1, L2, true};
    level_locks_take(e, &key, 1);
    int rc = -100;
    void *arg[2] = {e, &rc};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, create_l2, arg), 0);
    /* bounded: the creator either waits (the hook) or, wrongly, is done */
    uint64_t deadline = tu_deadline_ms(10000);
    while (!atomic_load(&creator_waits) && !atomic_load(&creator_done) && !tu_past(deadline))
        sched_yield();
    inv_level seen;
    int seen_rc = level_read(e, I1, L2, &seen); /* the set's own read */
    level_locks_release();
    epoch_exit();
    cr_assert_eq(pthread_join(t, NULL), 0);
    fault_reset();
    cr_assert_eq(seen_rc, INV_ENOTFOUND, "created under the set that held its slot");
    cr_assert_eq(rc, INV_OK);
    inv_level lv;
    cr_assert_eq(inv_level_get(e, I1, L2, &lv), INV_OK);
    cr_assert_eq(lv.available, 5);
    inv_close(e);
}

/* Two threads copying one cold part during growth: the copier pauses in
 * its copy (FAULT_LEVEL_MOVE, arg2 0) until the second helper has either
 * returned from its settle or is waiting for the copy (arg2 1). Before the
 * fix the second helper returned at once and published the slot, and the
 * copier, finding the slot live, skipped its copy: the level lost its cold
 * quantities (the TSan tenant round trip saw a level's committed change). */
typedef struct {
    inv_engine *e;
    table_slot *slot; /* the level's slot before growth */
    uintptr_t cold; /* its cold part */
    atomic_int copying, helper_waits, helper_done; /* seq_cst: flags between the two threads */
    uint64_t r0; /* resizes before */
} move_race;

static int move_race_hook(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    move_race *m = ctx;
    if (arg != m->cold)
        return 0;
    if (arg2 == 1) {
        atomic_store(&m->helper_waits, 1);
        return 0;
    }
    atomic_store(&m->copying, 1);
    /* bounded: a helper that neither waits nor returns is a hang the
     * test reports below (helper_done stays 0) */
    for (int i = 0; i < 10000000 && !atomic_load(&m->helper_waits) && !atomic_load(&m->helper_done);
         i++)
        sched_yield();
    return 0;
}

static void *move_race_grow(void *p)
{
    move_race *m = p;
    epoch_enter();
    grow_level_table(m->e, m->r0, 2000000);
    epoch_exit();
    return NULL;
}

Test(level, a_cold_part_copied_by_two_helpers_keeps_its_quantities)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    cr_assert_eq(inv_location_put(e, L1, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, I1, NULL), INV_OK);
    cr_assert_eq(inv_level_set(e, I1, L1, 10, 0, NULL), INV_OK);
    cr_assert_eq(inv_level_move(e, I1, L1, 7, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, 0, NULL), INV_OK);
    move_race m = {.e = e};
    epoch_enter();
    m.slot = table_find(&e->levels, I1, L1);
    m.cold = (uintptr_t)level_cold_of(m.slot);
    /* relaxed: a statistic; only the grower moves it. */
    m.r0 = atomic_load_explicit(&e->levels.resizes, memory_order_relaxed);
    fault_reset();
    fault_hook(FAULT_LEVEL_MOVE, move_race_hook, &m);
    pthread_t grower;
    cr_assert_eq(pthread_create(&grower, NULL, move_race_grow, &m), 0);
    /* the second helper: settles the same slot while the copier copies */
    while (!atomic_load(&m.copying))
        sched_yield();
    table_settle(&e->levels, m.slot);
    atomic_store(&m.helper_done, 1);
    epoch_exit();
    pthread_join(grower, NULL);
    fault_reset();
    cr_assert_gt(atomic_load_explicit(&e->levels.resizes, memory_order_relaxed), m.r0,
                 "the level table did not grow");
    inv_level_full full;
    cr_assert_eq(inv_level_get_full(e, I1, L1, &full), INV_OK);
    cr_expect_eq(full.qty[INV_QTY_DAMAGED], 7, "damaged %lld after growth",
                 (long long)full.qty[INV_QTY_DAMAGED]);
    cr_expect_eq(full.qty[INV_QTY_AVAILABLE], 3);
    inv_close(e);
}
