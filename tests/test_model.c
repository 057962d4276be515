/*
 * test_model.c — inventory model 2 through the public API: named
 * quantities and on_hand, moves between them, commits that become
 * committed, fulfilment and returns, the oversell policy, inactive
 * locations, timestamps; all of it across reopen (journal and snapshot)
 * and table growth; and a many-threaded stress test of conservation.
 */
#include "test_util.h"

#include "hold.h"

#define I1 11
#define L1 21
#define L2 22

static inv_engine *open_with(const char *dir)
{
    inv_engine *e = dir ? tu_open_dir(dir, INV_FSYNC_ALWAYS) : tu_open_engine(0, 0, 0);
    if (inv_item_get(e, I1, &(inv_item){0}) == INV_OK)
        return e; /* reopened */
    cr_assert_eq(inv_location_put(e, L1, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, L2, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, I1, NULL), INV_OK);
    return e;
}

static inv_level_full full_of(inv_engine *e, uint64_t item, uint64_t loc)
{
    inv_level_full f;
    cr_assert_eq(inv_level_get_full(e, item, loc, &f), INV_OK);
    return f;
}

/* The named quantities as a comparable line: "a r c i d s q". */
#define Q(f) (f).qty[0], (f).qty[1], (f).qty[2], (f).qty[3], (f).qty[4], (f).qty[5], (f).qty[6]
#define QFMT "%lld %lld %lld %lld %lld %lld %lld"
static void expect_q(const inv_level_full *f, int64_t a, int64_t r, int64_t c, int64_t i, int64_t d,
                     int64_t s, int64_t q)
{
    int64_t want[INV_QTY_NAMES] = {a, r, c, i, d, s, q};
    for (int k = 0; k < INV_QTY_NAMES; k++)
        cr_expect_eq(f->qty[k], want[k], "%s: %lld, want %lld (all: " QFMT ")",
                     inv_qty_name_str((inv_qty_name)k), (long long)f->qty[k], (long long)want[k],
                     (long long)f->qty[0], (long long)f->qty[1], (long long)f->qty[2],
                     (long long)f->qty[3], (long long)f->qty[4], (long long)f->qty[5],
                     (long long)f->qty[6]);
    cr_expect_eq(f->on_hand, a + r + c + d + s + q, "on_hand %lld", (long long)f->on_hand);
}

Test(model, a_new_level_has_every_quantity_its_timestamps_and_the_default_policy)
{
    inv_engine *e = open_with(NULL);
    int64_t before_ms = clock_wall_ms();
    cr_assert_eq(inv_level_set(e, I1, L1, 7, 0, NULL), INV_OK);
    inv_level_full f = full_of(e, I1, L1);
    expect_q(&f, 7, 0, 0, 0, 0, 0, 0);
    cr_expect_geq(f.revision, 1);
    cr_expect_eq(f.created_at_ms % 1000, 0, "whole seconds");
    cr_expect_leq(f.created_at_ms, f.updated_at_ms);
    /* the engine's clock runs a background period behind at most */
    cr_expect_geq(f.created_at_ms, before_ms / 1000 * 1000 - 2000);
    cr_expect_leq(f.updated_at_ms, clock_wall_ms() + 1000);
    cr_expect_eq(f.policy, INV_POLICY_DENY);
    cr_expect_eq(f.preorder_limit, INV_NO_PREORDER_LIMIT);
    cr_expect(f.location_active);
    cr_expect_eq(inv_level_get_full(e, I1, L2, &f), INV_ENOTFOUND);
    cr_expect_eq(inv_level_get_full(NULL, I1, L1, &f), INV_EINVALID);
    cr_expect_eq(inv_level_get_full(e, I1, L1, NULL), INV_EINVALID);
    inv_close(e);
}

Test(model, moves_between_quantities_conserve_on_hand_and_receipts_add_to_it)
{
    inv_engine *e = open_with(NULL);
    cr_assert_eq(inv_level_set(e, I1, L1, 10, 0, NULL), INV_OK);
    inv_level_full f;
    cr_assert_eq(inv_level_move(e, I1, L1, 3, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, &f),
                 INV_OK);
    expect_q(&f, 7, 0, 0, 0, 3, 0, 0);
    cr_assert_eq(
        inv_level_move(e, I1, L1, 2, INV_QTY_DAMAGED, INV_QTY_QUALITY_CONTROL, INV_NO_FLOOR, &f),
        INV_OK);
    expect_q(&f, 7, 0, 0, 0, 1, 0, 2);
    cr_assert_eq(
        inv_level_move(e, I1, L1, 4, INV_QTY_AVAILABLE, INV_QTY_SAFETY_STOCK, INV_NO_FLOOR, &f),
        INV_OK);
    expect_q(&f, 3, 0, 0, 0, 1, 4, 2);
    cr_expect_eq(f.on_hand, 10, "moves within on_hand conserve it");
    /* incoming is not on hand: units sent to it leave on_hand, a receipt
     * (incoming -> available) brings them in */
    cr_assert_eq(
        inv_level_move(e, I1, L1, 2, INV_QTY_AVAILABLE, INV_QTY_INCOMING, INV_NO_FLOOR, &f),
        INV_OK);
    expect_q(&f, 1, 0, 0, 2, 1, 4, 2);
    cr_expect_eq(f.on_hand, 8);
    cr_assert_eq(
        inv_level_move(e, I1, L1, 2, INV_QTY_INCOMING, INV_QTY_AVAILABLE, INV_NO_FLOOR, &f),
        INV_OK);
    expect_q(&f, 3, 0, 0, 0, 1, 4, 2);
    cr_expect_eq(f.on_hand, 10);
    inv_close(e);
}

Test(model, a_move_of_more_than_is_there_changes_nothing)
{
    inv_engine *e = open_with(NULL);
    cr_assert_eq(inv_level_set(e, I1, L1, 4, 0, NULL), INV_OK);
    inv_level_full before = full_of(e, I1, L1), f;
    /* available obeys the policy (deny: not below 0) unless a floor is given */
    cr_expect_eq(inv_level_move(e, I1, L1, 5, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, &f),
                 INV_EINSUFFICIENT);
    cr_expect_eq(inv_level_move(e, I1, L1, 1, INV_QTY_DAMAGED, INV_QTY_AVAILABLE, INV_NO_FLOOR, &f),
                 INV_EINSUFFICIENT);
    cr_expect_eq(inv_level_move(e, I1, L1, 3, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, 2, &f),
                 INV_EINSUFFICIENT, "a floor of 2 leaves 1 movable");
    cr_expect_eq(
        inv_level_move(e, I1, L1, 1, INV_QTY_INCOMING, INV_QTY_AVAILABLE, INV_NO_FLOOR, &f),
        INV_EINSUFFICIENT);
    inv_level_full after = full_of(e, I1, L1);
    cr_expect_eq(memcmp(before.qty, after.qty, sizeof before.qty), 0);
    cr_expect_eq(after.revision, before.revision, "a refused change leaves the revision");
    inv_close(e);
}

Test(model, bad_moves_are_invalid)
{
    inv_engine *e = open_with(NULL);
    cr_assert_eq(inv_level_set(e, I1, L1, 4, 0, NULL), INV_OK);
    inv_level_full f;
    cr_expect_eq(inv_level_move(e, I1, L1, 1, INV_QTY_RESERVED, INV_QTY_DAMAGED, INV_NO_FLOOR, &f),
                 INV_EINVALID, "reserved changes only by holds");
    cr_expect_eq(
        inv_level_move(e, I1, L1, 1, INV_QTY_AVAILABLE, INV_QTY_RESERVED, INV_NO_FLOOR, &f),
        INV_EINVALID);
    cr_expect_eq(inv_level_move(e, I1, L1, 1, INV_QTY_DAMAGED, INV_QTY_DAMAGED, INV_NO_FLOOR, &f),
                 INV_EINVALID);
    cr_expect_eq(inv_level_move(e, I1, L1, 1, (inv_qty_name)7, INV_QTY_DAMAGED, INV_NO_FLOOR, &f),
                 INV_EINVALID);
    cr_expect_eq(inv_level_move(e, I1, L1, 0, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, &f),
                 INV_EINVALID);
    cr_expect_eq(inv_level_move(e, I1, L1, INV_QTY_MAX + 1, INV_QTY_AVAILABLE, INV_QTY_DAMAGED,
                                INV_NO_FLOOR, &f),
                 INV_ELIMIT);
    cr_expect_eq(inv_level_move(e, I1, L2, 1, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, &f),
                 INV_ENOTFOUND);
    inv_qty_name q;
    cr_expect_eq(inv_qty_name_parse("damaged", 7, &q), INV_OK);
    cr_expect_eq(q, INV_QTY_DAMAGED);
    cr_expect_eq(inv_qty_name_parse("Damaged", 7, &q), INV_EINVALID);
    cr_expect_eq(inv_qty_name_parse("damage", 6, &q), INV_EINVALID);
    cr_expect_eq(inv_qty_name_parse(NULL, 0, &q), INV_EINVALID);
    inv_reason reason;
    cr_expect_eq(inv_reason_parse("cycle_count_available", 21, &reason), INV_OK);
    cr_expect_eq(reason, INV_REASON_CYCLE_COUNT_AVAILABLE);
    cr_expect_eq(inv_reason_parse("bogus", 5, &reason), INV_EINVALID);
    cr_expect_str_eq(inv_reason_str(INV_REASON_SHRINKAGE), "shrinkage");
    cr_expect_null(inv_reason_str(INV_REASON_NONE));
    inv_close(e);
}

Test(model, a_committed_hold_leaves_committed_units_that_fulfil_ships_and_return_restocks)
{
    inv_engine *e = open_with(NULL);
    cr_assert_eq(inv_level_set(e, I1, L1, 10, 0, NULL), INV_OK);
    inv_hold_line line = {I1, L1, 4};
    cr_assert_eq(inv_hold_create(e, "h1", 2, 60000, &line, 1, NULL), INV_OK);
    inv_level_full f = full_of(e, I1, L1);
    expect_q(&f, 6, 4, 0, 0, 0, 0, 0);
    cr_assert_eq(inv_hold_commit(e, "h1", 2), INV_OK);
    f = full_of(e, I1, L1);
    expect_q(&f, 6, 0, 4, 0, 0, 0, 0);
    cr_expect_eq(f.on_hand, 10, "sold, not shipped: still on hand");
    inv_level lv;
    cr_assert_eq(inv_level_get(e, I1, L1, &lv), INV_OK);
    cr_expect(lv.available == 6 && lv.reserved == 0, "LEVEL.GET's reply keeps its shape");
    cr_expect_eq(inv_level_del(e, I1, L1), INV_ECONFLICT, "committed units block a delete");
    cr_expect_eq(inv_level_fulfil(e, I1, L1, 5), INV_EINSUFFICIENT);
    cr_assert_eq(inv_level_fulfil(e, I1, L1, 3), INV_OK);
    f = full_of(e, I1, L1);
    expect_q(&f, 6, 0, 1, 0, 0, 0, 0);
    cr_expect_eq(f.on_hand, 7, "shipped units leave on_hand");
    cr_assert_eq(
        inv_level_move(e, I1, L1, 1, INV_QTY_COMMITTED, INV_QTY_AVAILABLE, INV_NO_FLOOR, &f),
        INV_OK);
    expect_q(&f, 7, 0, 0, 0, 0, 0, 0);
    cr_expect_eq(inv_level_fulfil(e, I1, L1, 0), INV_EINVALID);
    cr_expect_eq(inv_level_fulfil(e, I1, L1, INV_QTY_MAX + 1), INV_ELIMIT);
    cr_expect_eq(inv_level_del(e, I1, L1), INV_OK);
    inv_close(e);
}

Test(model, holds_follow_the_oversell_policy)
{
    inv_engine *e = open_with(NULL);
    cr_assert_eq(inv_level_set(e, I1, L1, 2, 0, NULL), INV_OK);
    inv_hold_line line = {I1, L1, 5};
    cr_expect_eq(inv_hold_create(e, "p1", 2, 60000, &line, 1, NULL), INV_EINSUFFICIENT);
    cr_assert_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, 3), INV_OK);
    cr_expect_eq(inv_hold_create(e, "p1", 2, 60000, &line, 1, NULL), INV_OK, "2 - 5 = -3: allowed");
    inv_level_full f = full_of(e, I1, L1);
    expect_q(&f, -3, 5, 0, 0, 0, 0, 0);
    inv_hold_line one = {I1, L1, 1};
    cr_expect_eq(inv_hold_create(e, "p2", 2, 60000, &one, 1, NULL), INV_EINSUFFICIENT);
    cr_expect_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, -5), INV_ELIMIT);
    cr_expect_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, INV_QTY_MAX + 1), INV_ELIMIT);
    cr_expect_eq(inv_level_set_policy(e, I1, L1, (inv_oversell_policy)9, 0), INV_EINVALID);
    cr_assert_eq(inv_hold_release(e, "p1", 2), INV_OK);
    f = full_of(e, I1, L1);
    expect_q(&f, 2, 0, 0, 0, 0, 0, 0);
    inv_close(e);
}

Test(model, an_inactive_location_refuses_stock_changes_and_holds_but_reads_and_ships)
{
    inv_engine *e = open_with(NULL);
    cr_assert_eq(inv_level_set(e, I1, L1, 10, 0, NULL), INV_OK);
    inv_hold_line line = {I1, L1, 2};
    cr_assert_eq(inv_hold_create(e, "sold", 4, 60000, &line, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "sold", 4), INV_OK);
    cr_assert_eq(inv_hold_create(e, "live", 4, 60000, &line, 1, NULL), INV_OK);
    inv_location_fields off = {.mask = INV_LOC_ACTIVE, .active = false};
    cr_assert_eq(inv_location_put(e, L1, &off), INV_OK);
    inv_level lv;
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, &lv), INV_EINVALID);
    cr_expect_eq(inv_level_set(e, I1, L1, 3, 0, &lv), INV_EINVALID);
    cr_expect_eq(
        inv_level_move(e, I1, L1, 1, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, NULL),
        INV_EINVALID);
    cr_expect_eq(inv_hold_create(e, "new", 3, 60000, &line, 1, NULL), INV_EINVALID);
    /* a new level at an inactive location: refused too */
    cr_expect_eq(inv_level_set(e, I1, L2, 1, 0, NULL), INV_OK);
    inv_location_fields off2 = {.mask = INV_LOC_ACTIVE, .active = false};
    cr_assert_eq(inv_item_put(e, I1 + 1, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, L2, &off2), INV_OK);
    cr_expect_eq(inv_level_set(e, I1 + 1, L2, 1, 0, NULL), INV_EINVALID);
    /* reads, shipping what was sold, ending holds: still work */
    inv_level_full f = full_of(e, I1, L1);
    cr_expect(!f.location_active);
    expect_q(&f, 6, 2, 2, 0, 0, 0, 0);
    cr_expect_eq(inv_level_fulfil(e, I1, L1, 2), INV_OK);
    cr_expect_eq(inv_hold_release(e, "live", 4), INV_OK);
    inv_location_fields on = {.mask = INV_LOC_ACTIVE, .active = true};
    cr_assert_eq(inv_location_put(e, L1, &on), INV_OK);
    cr_expect_eq(inv_level_adjust(e, I1, L1, 1, INV_NO_FLOOR, &lv), INV_OK);
    cr_expect_eq(lv.available, 9);
    f = full_of(e, I1, L1);
    cr_expect(f.location_active);
    inv_close(e);
}

/* The end-of-phase invariants (issue 17, Build #8): every level's
 * reserved equals the sum of its HELD lines and every buyer counter the
 * units its holds count. Only while no hold call runs. */
static void check_holds(inv_engine *e, const char *phase)
{
    cr_expect_eq(hold_verify_reserved(e), INV_OK, "%s: reserved != the held lines", phase);
    cr_expect_eq(hold_verify_buyers(e), INV_OK, "%s: a buyer's count != its holds", phase);
}

/* Everything above, across a reopen from the journal and from a snapshot:
 * committed units come back (derived from held units and live holds). */
static void build_state(inv_engine *e)
{
    cr_assert_eq(inv_level_set(e, I1, L1, 20, 0, NULL), INV_OK);
    inv_hold_line line = {I1, L1, 3};
    cr_assert_eq(inv_hold_create(e, "c", 1, 600000, &line, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "c", 1), INV_OK);
    cr_assert_eq(inv_hold_create(e, "l", 1, 600000, &line, 1, NULL), INV_OK);
    cr_assert_eq(
        inv_level_move(e, I1, L1, 2, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, NULL),
        INV_OK);
    cr_assert_eq(
        inv_level_move(e, I1, L1, 1, INV_QTY_AVAILABLE, INV_QTY_SAFETY_STOCK, INV_NO_FLOOR, NULL),
        INV_OK);
    cr_assert_eq(inv_level_move(e, I1, L1, 1, INV_QTY_AVAILABLE, INV_QTY_QUALITY_CONTROL,
                                INV_NO_FLOOR, NULL),
                 INV_OK);
    cr_assert_eq(
        inv_level_move(e, I1, L1, 4, INV_QTY_AVAILABLE, INV_QTY_INCOMING, INV_NO_FLOOR, NULL),
        INV_OK);
    cr_assert_eq(inv_level_set_policy(e, I1, L1, INV_POLICY_CONTINUE, 7), INV_OK);
    cr_assert_eq(inv_level_set(e, I1, L2, 5, 0, NULL), INV_OK);
    inv_location_fields off = {.mask = INV_LOC_ACTIVE, .active = false};
    cr_assert_eq(inv_location_put(e, L2, &off), INV_OK);
}

static void check_state(inv_engine *e, const inv_level_full *want1, const inv_level_full *want2)
{
    inv_level_full f = full_of(e, I1, L1);
    expect_q(&f, 6, 3, 3, 4, 2, 1, 1);
    cr_expect_eq(memcmp(f.qty, want1->qty, sizeof f.qty), 0);
    cr_expect_eq(f.revision, want1->revision);
    cr_expect_eq(f.created_at_ms, want1->created_at_ms);
    cr_expect_eq(f.updated_at_ms, want1->updated_at_ms);
    cr_expect_eq(f.policy, INV_POLICY_CONTINUE);
    cr_expect_eq(f.preorder_limit, 7);
    f = full_of(e, I1, L2);
    cr_expect(!f.location_active);
    cr_expect_eq(f.revision, want2->revision);
    cr_expect_eq(inv_level_adjust(e, I1, L2, 1, INV_NO_FLOOR, NULL), INV_EINVALID);
    inv_hold_info h;
    cr_assert_eq(inv_hold_get(e, "l", 1, &h), INV_OK);
    cr_expect_eq(h.state, INV_HOLD_HELD);
}

static void reopen_test(bool snapshot)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "model");
    inv_engine *e = open_with(dir);
    build_state(e);
    inv_level_full w1 = full_of(e, I1, L1), w2 = full_of(e, I1, L2);
    check_holds(e, "built");
    if (snapshot)
        cr_assert_eq(inv_snapshot(e), INV_OK);
    inv_close(e);
    e = open_with(dir);
    check_state(e, &w1, &w2);
    check_holds(e, "reopened");
    /* units are conserved across the reopen: on hand at both levels */
    cr_expect_eq(full_of(e, I1, L1).on_hand, w1.on_hand);
    cr_expect_eq(full_of(e, I1, L2).on_hand, w2.on_hand);
    /* the commit still sells: fulfil after reopen */
    cr_expect_eq(inv_level_fulfil(e, I1, L1, 3), INV_OK);
    cr_expect_eq(inv_level_fulfil(e, I1, L1, 1), INV_EINSUFFICIENT);
    inv_close(e);
    tu_remove_tree(dir);
}

Test(model, every_quantity_survives_a_reopen_from_the_journal)
{
    reopen_test(false);
}

Test(model, every_quantity_survives_a_reopen_from_a_snapshot)
{
    reopen_test(true);
}

/* Growth copies each level's cold part with its word. */
Test(model, cold_quantities_survive_table_growth)
{
    enum { N = 3000 };
    inv_engine *e = tu_open_engine(N, 1, 1);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(0), 10, 0, NULL), INV_OK);
        cr_assert_eq(inv_level_move(e, tu_item_id(i), tu_loc_id(0), (int64_t)(i % 5) + 1,
                                    INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, NULL),
                     INV_OK);
    }
    /* 3000 levels from one slot make 4 growths; a growth counts once its
     * migration is published, and the last may still be migrating here (a
     * growth starts only once the one before is published): at least 3
     * are done, each of which copied every level's cold part. */
    inv_stats st = tu_stats_of(e);
    cr_expect_geq(st.table_resizes, 3, "the level table grew");
    for (size_t i = 0; i < N; i++) {
        inv_level_full f = full_of(e, tu_item_id(i), tu_loc_id(0));
        int64_t d = (int64_t)(i % 5) + 1;
        cr_expect(f.qty[INV_QTY_DAMAGED] == d && f.qty[INV_QTY_AVAILABLE] == 10 - d,
                  "level %zu: " QFMT, i, (long long)f.qty[0], (long long)f.qty[1],
                  (long long)f.qty[2], (long long)f.qty[3], (long long)f.qty[4],
                  (long long)f.qty[5], (long long)f.qty[6]);
    }
    inv_close(e);
}

/* ---- conservation under many threads ------------------------------------ */

#define ST_THREADS 8
#define ST_ITEMS 3 /* few items: every thread meets every other */
#define ST_LOCS 2 /* transfers go between them */
#define ST_OPS 40000
#define ST_STOCK 1000
#define ST_TTL_SHORT_MS 2 /* some holds are left to expire */

typedef struct {
    inv_engine *e;
    /* per thread and item: on_hand changes it made at all locations
     * (adjusts, receipts, fulfilment, units sent back to incoming) */
    int64_t on_hand_delta[ST_THREADS][ST_ITEMS];
    _Atomic uint64_t hold_seq;
} st_ctx;

static void st_check_full(const inv_level_full *f, size_t k)
{
    for (int q = 1; q < INV_QTY_NAMES; q++)
        TU_CHECK(f->qty[q] >= 0, "item %zu: %s went to %lld", k, inv_qty_name_str((inv_qty_name)q),
                 (long long)f->qty[q]);
    TU_CHECK(f->qty[INV_QTY_AVAILABLE] >= 0, "item %zu: available %lld under deny", k,
             (long long)f->qty[INV_QTY_AVAILABLE]);
}

static void st_hold(st_ctx *c, tu_rng *r, uint64_t item, uint64_t loc, int64_t q)
{
    char id[32];
    /* relaxed: a unique counter */
    int n = snprintf(
        id, sizeof id, "h%llu",
        (unsigned long long)atomic_fetch_add_explicit(&c->hold_seq, 1, memory_order_relaxed));
    inv_hold_line line = {item, loc, q};
    bool expire = tu_rng_below(r, 8) == 0;
    int rc = inv_hold_create(c->e, id, (size_t)n, expire ? ST_TTL_SHORT_MS : 60000, &line, 1, NULL);
    TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "hold: %s", inv_strerror(rc));
    if (rc != INV_OK || expire)
        return; /* left to the background sweep */
    uint64_t end = tu_rng_below(r, 4);
    if (end == 0) {
        /* a partial commit: part sold, the rest released */
        inv_hold_line sold = {item, loc, tu_rng_range(r, 1, q)};
        rc = inv_hold_commit_partial(c->e, id, (size_t)n, &sold, 1);
    } else {
        rc = end < 3 ? inv_hold_commit(c->e, id, (size_t)n) : inv_hold_release(c->e, id, (size_t)n);
    }
    TU_CHECK(rc == INV_OK, "hold end: %s", inv_strerror(rc));
}

/* A batch of moves and a transfer on one item, sometimes with a planted
 * failing last line: all of it or nothing, on_hand unchanged either way. */
static void st_batch(st_ctx *c, tu_rng *r, size_t k)
{
    uint64_t item = tu_item_id(k);
    int64_t q = tu_rng_range(r, 1, 3);
    inv_batch_line lines[4] = {
        {.op = INV_BATCH_LEVEL_MOVE,
         .item = item,
         .location = tu_loc_id(0),
         .qty = q,
         .floor = INV_NO_FLOOR,
         .from = INV_QTY_AVAILABLE,
         .to = INV_QTY_DAMAGED},
        {.op = INV_BATCH_LEVEL_TRANSFER,
         .item = item,
         .location = tu_loc_id(0),
         .to_location = tu_loc_id(1),
         .qty = q,
         .floor = INV_NO_FLOOR,
         .from = INV_QTY_DAMAGED,
         .to = INV_QTY_AVAILABLE},
        {.op = INV_BATCH_LEVEL_MOVE,
         .item = item,
         .location = tu_loc_id(1),
         .qty = q,
         .floor = INV_NO_FLOOR,
         .from = INV_QTY_AVAILABLE,
         .to = INV_QTY_QUALITY_CONTROL},
        {.op = INV_BATCH_LEVEL_ADJUST,
         .item = item,
         .location = tu_loc_id(1),
         .qty = -INV_QTY_MAX, /* planted: always refused */
         .floor = 0},
    };
    size_t n = tu_rng_below(r, 4) ? 3 : 4;
    int rc = inv_batch(c->e, lines, n, NULL, NULL);
    TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "batch: %s", inv_strerror(rc));
    TU_CHECK(n == 3 || rc == INV_EINSUFFICIENT, "a planted failing line was applied");
}

static void st_thread(void *arg, size_t t)
{
    st_ctx *c = arg;
    tu_rng r = tu_rng_seed(77 + t);
    uint64_t ops = tu_iters(ST_OPS) / ST_THREADS;
    for (uint64_t i = 0; i < ops; i++) {
        size_t k = tu_rng_below(&r, ST_ITEMS);
        uint64_t item = tu_item_id(k), loc = tu_loc_id(tu_rng_below(&r, ST_LOCS));
        int64_t q = tu_rng_range(&r, 1, 4);
        uint64_t pick = tu_rng_below(&r, 100);
        int rc;
        if (pick < 12) {
            int64_t d = tu_rng_below(&r, 2) ? q : -q;
            inv_level lv;
            rc = inv_level_adjust(c->e, item, loc, d, INV_NO_FLOOR, &lv);
            TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "adjust: %s", inv_strerror(rc));
            if (rc == INV_OK)
                c->on_hand_delta[t][k] += d;
        } else if (pick < 32) {
            static const inv_qty_name from[] = {INV_QTY_AVAILABLE,       INV_QTY_DAMAGED,
                                                INV_QTY_QUALITY_CONTROL, INV_QTY_SAFETY_STOCK,
                                                INV_QTY_COMMITTED,       INV_QTY_INCOMING};
            static const inv_qty_name to[] = {INV_QTY_DAMAGED,      INV_QTY_AVAILABLE,
                                              INV_QTY_SAFETY_STOCK, INV_QTY_QUALITY_CONTROL,
                                              INV_QTY_AVAILABLE,    INV_QTY_AVAILABLE};
            size_t m = tu_rng_below(&r, 6);
            inv_level_full f;
            rc = inv_level_move(c->e, item, loc, q, from[m], to[m], INV_NO_FLOOR, &f);
            TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "move: %s", inv_strerror(rc));
            if (rc == INV_OK && from[m] == INV_QTY_INCOMING)
                c->on_hand_delta[t][k] += q; /* a receipt */
            st_check_full(&f, k);
        } else if (pick < 36) {
            /* units sent back: available -> incoming leaves on_hand */
            rc = inv_level_move(c->e, item, loc, q, INV_QTY_AVAILABLE, INV_QTY_INCOMING,
                                INV_NO_FLOOR, NULL);
            TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "to incoming: %s", inv_strerror(rc));
            if (rc == INV_OK)
                c->on_hand_delta[t][k] -= q;
        } else if (pick < 44) {
            rc = inv_level_transfer(c->e, item, loc, tu_loc_id(1 - (loc == tu_loc_id(1))), q,
                                    INV_QTY_AVAILABLE,
                                    tu_rng_below(&r, 2) ? INV_QTY_AVAILABLE : INV_QTY_DAMAGED);
            TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "transfer: %s", inv_strerror(rc));
        } else if (pick < 52) {
            st_batch(c, &r, k);
        } else if (pick < 82) {
            st_hold(c, &r, item, loc, q);
        } else if (pick < 90) {
            rc = inv_level_fulfil(c->e, item, loc, q);
            TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "fulfil: %s", inv_strerror(rc));
            if (rc == INV_OK)
                c->on_hand_delta[t][k] -= q;
        } else {
            inv_level_full f;
            rc = inv_level_get_full(c->e, item, loc, &f);
            TU_CHECK(rc == INV_OK, "read: %s", inv_strerror(rc));
            st_check_full(&f, k);
        }
    }
}

Test(model, many_threads_conserve_on_hand_and_keep_every_quantity_at_or_above_its_floor,
     .timeout = 240)
{
    st_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->e = tu_open_with_sweep(1); /* holds left to expire are swept soon */
    for (size_t j = 0; j < ST_LOCS; j++)
        cr_assert_eq(inv_location_put(c->e, tu_loc_id(j), NULL), INV_OK);
    for (size_t k = 0; k < ST_ITEMS; k++) {
        cr_assert_eq(inv_item_put(c->e, tu_item_id(k), NULL), INV_OK);
        for (size_t j = 0; j < ST_LOCS; j++) {
            cr_assert_eq(inv_level_set(c->e, tu_item_id(k), tu_loc_id(j), ST_STOCK, 0, NULL),
                         INV_OK);
            cr_assert_eq(inv_level_move(c->e, tu_item_id(k), tu_loc_id(j), 100, INV_QTY_AVAILABLE,
                                        INV_QTY_INCOMING, INV_NO_FLOOR, NULL),
                         INV_OK);
        }
    }
    tu_run_threads(ST_THREADS, st_thread, c);
    tu_assert_no_failures();
    /* wait for the sweep to end every hold left to expire (an event, with
     * a bound in case it never comes) */
    uint64_t deadline = tu_deadline_ms(30000);
    while (tu_stats_of(c->e).holds_active != 0 && !tu_past(deadline))
        tu_sleep_ms(1);
    cr_assert_eq(tu_stats_of(c->e).holds_active, 0, "every hold ended");
    for (size_t k = 0; k < ST_ITEMS; k++) {
        int64_t want = ST_LOCS * (ST_STOCK - 100), got = 0;
        for (size_t t = 0; t < ST_THREADS; t++)
            want += c->on_hand_delta[t][k];
        for (size_t j = 0; j < ST_LOCS; j++) {
            inv_level_full f = full_of(c->e, tu_item_id(k), tu_loc_id(j));
            got += f.on_hand;
            cr_expect_eq(f.qty[INV_QTY_RESERVED], 0, "item %zu loc %zu: a hold left units", k, j);
            for (int q = 0; q < INV_QTY_NAMES; q++)
                cr_expect_geq(f.qty[q], 0, "item %zu loc %zu: %s %lld", k, j,
                              inv_qty_name_str((inv_qty_name)q), (long long)f.qty[q]);
        }
        cr_expect_eq(got, want, "item %zu: on_hand %lld at all locations, the changes say %lld", k,
                     (long long)got, (long long)want);
    }
    check_holds(c->e, "after the threads");
    inv_close(c->e);
    free(c);
}
