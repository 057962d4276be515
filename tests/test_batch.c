/*
 * test_batch.c — inv_batch through the public API: lines applied in order,
 * all or nothing (a failing line of any kind leaves no change, holds
 * included), reads that see earlier lines, hold retries, validation and
 * limits, durability across reopen (applied and aborted batches), a crash
 * in the middle of a batch (a forked child SIGKILLed between its partial
 * and final records: recovery takes the partial back), and concurrent
 * batches against single adjusts (units conserved, never below a floor).
 *
 * Every scenario that uses holds ends with hold_verify_reserved == INV_OK.
 */
#include "test_util.h"

#include "hold.h"
#include "level.h"
#include "persist.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    LOC_A = 10,
    LOC_B = 11,
    LOC_NONE = 12, /* no level there */
    ITEM_1 = 1,
    ITEM_2 = 2,
    ITEM_3 = 3,
    ITEM_FREE = 50, /* untracked */
    ITEM_UNKNOWN = 999, /* not in the catalog */
    STOCK = 10,
    LONG_TTL_MS = 600000,
};

/* ---- helpers ------------------------------------------------------------ */

static void populate(inv_engine *e)
{
    cr_assert_eq(inv_location_put(e, LOC_A, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, LOC_B, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, LOC_NONE, NULL), INV_OK);
    for (uint64_t item = ITEM_1; item <= ITEM_3; item++) {
        cr_assert_eq(inv_item_put(e, item, NULL), INV_OK);
        cr_assert_eq(inv_level_set(e, item, LOC_A, STOCK, 0, NULL), INV_OK);
        cr_assert_eq(inv_level_set(e, item, LOC_B, STOCK, 0, NULL), INV_OK);
    }
    cr_assert_eq(tu_item_put_untracked(e, ITEM_FREE), INV_OK);
    cr_assert_eq(inv_level_set(e, ITEM_FREE, LOC_A, 0, 0, NULL), INV_OK);
}

static inv_engine *open_populated(void)
{
    inv_engine *e = tu_open_dir(NULL, INV_FSYNC_ALWAYS);
    populate(e);
    return e;
}

static inv_batch_line set_line(uint64_t item, uint64_t loc, int64_t qty, uint64_t if_rev)
{
    return (inv_batch_line){.op = INV_BATCH_LEVEL_SET,
                            .item = item,
                            .location = loc,
                            .qty = qty,
                            .if_revision = if_rev};
}

static inv_batch_line adjust_line(uint64_t item, uint64_t loc, int64_t delta, int64_t floor)
{
    return (inv_batch_line){
        .op = INV_BATCH_LEVEL_ADJUST, .item = item, .location = loc, .qty = delta, .floor = floor};
}

static inv_batch_line get_line(uint64_t item, uint64_t loc)
{
    return (inv_batch_line){.op = INV_BATCH_LEVEL_GET, .item = item, .location = loc};
}

static inv_batch_line create_line(const char *id, const inv_hold_line *lines, size_t n)
{
    return (inv_batch_line){.op = INV_BATCH_HOLD_CREATE,
                            .hold_id = id,
                            .hold_id_len = strlen(id),
                            .ttl_ms = LONG_TTL_MS,
                            .hold_lines = lines,
                            .n_hold_lines = n};
}

static inv_batch_line end_line(inv_batch_op op, const char *id)
{
    return (inv_batch_line){.op = op, .hold_id = id, .hold_id_len = strlen(id)};
}

static int hold_state(inv_engine *e, const char *id)
{
    inv_hold_info info;
    int rc = inv_hold_get(e, id, strlen(id), &info);
    return rc == INV_OK ? (int)info.state : rc;
}

/* Every level's available and reserved (not revisions: an undone change
 * raises them, as documented). */
typedef struct {
    int64_t v[3][2][2];
} stock_state;

static stock_state stock_of(inv_engine *e)
{
    stock_state s;
    for (int i = 0; i < 3; i++)
        for (int l = 0; l < 2; l++) {
            inv_level lv = tu_level_of(e, ITEM_1 + (uint64_t)i, l ? LOC_B : LOC_A);
            s.v[i][l][0] = lv.available;
            s.v[i][l][1] = lv.reserved;
        }
    return s;
}

static void assert_same_stock(const stock_state *a, const stock_state *b)
{
    for (int i = 0; i < 3; i++)
        for (int l = 0; l < 2; l++)
            cr_assert(a->v[i][l][0] == b->v[i][l][0] && a->v[i][l][1] == b->v[i][l][1],
                      "item %d loc %d: (%" PRId64 ", %" PRId64 ") became (%" PRId64 ", %" PRId64
                      ")",
                      i + 1, l, a->v[i][l][0], a->v[i][l][1], b->v[i][l][0], b->v[i][l][1]);
}

static void verify_and_close(inv_engine *e)
{
    cr_assert_eq(hold_verify_reserved(e), INV_OK, "reserved disagrees with the held lines");
    inv_close(e);
}

/* ---- applying -------------------------------------------------------------- */

Test(batch, applies_every_line_in_order_and_reports_each_result)
{
    inv_engine *e = open_populated();
    inv_hold_line hl[] = {{ITEM_2, LOC_A, 3}, {ITEM_3, LOC_B, 1}};
    inv_batch_line lines[] = {
        adjust_line(ITEM_1, LOC_A, -4, 0),
        set_line(ITEM_1, LOC_B, 7, 0),
        get_line(ITEM_1, LOC_A),
        create_line("cart-1", hl, 2),
        adjust_line(ITEM_1, LOC_A, 2, INV_NO_FLOOR),
    };
    inv_batch_result res[5];
    size_t failed = 99;
    cr_assert_eq(inv_batch(e, lines, 5, res, &failed), INV_OK);
    cr_assert_eq(failed, 0);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(res[i].rc, INV_OK, "line %zu", i);
    cr_assert_eq(res[0].level.available, 6);
    cr_assert_eq(res[1].level.available, 7);
    cr_assert_eq(res[2].level.available, 6, "a read sees the lines before it");
    cr_assert_eq(res[4].level.available, 8);
    cr_assert_gt(res[4].level.revision, res[0].level.revision);
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_A).available, 8);
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_B).available, 7);
    inv_level held = tu_level_of(e, ITEM_2, LOC_A);
    cr_assert(held.available == STOCK - 3 && held.reserved == 3);
    cr_assert_eq(hold_state(e, "cart-1"), INV_HOLD_HELD);
    cr_assert_eq(inv_hold_commit(e, "cart-1", 6), INV_OK, "a batch's hold is a real hold");
    held = tu_level_of(e, ITEM_2, LOC_A);
    cr_assert(held.available == STOCK - 3 && held.reserved == 0);
    verify_and_close(e);
}

Test(batch, set_creates_a_missing_level_and_a_read_of_a_missing_level_does_not_fail)
{
    inv_engine *e = open_populated();
    inv_batch_line lines[] = {get_line(ITEM_1, LOC_NONE), set_line(ITEM_1, LOC_NONE, 5, 0),
                              get_line(ITEM_1, LOC_NONE)};
    inv_batch_result res[3];
    cr_assert_eq(inv_batch(e, lines, 3, res, NULL), INV_OK);
    cr_assert_eq(res[0].rc, INV_ENOTFOUND);
    cr_assert_eq(res[2].rc, INV_OK);
    cr_assert_eq(res[2].level.available, 5);
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_NONE).available, 5);
    verify_and_close(e);
}

Test(batch, commits_and_releases_holds_together_with_level_lines)
{
    inv_engine *e = open_populated();
    inv_hold_line a[] = {{ITEM_1, LOC_A, 2}}, b[] = {{ITEM_2, LOC_A, 4}};
    cr_assert_eq(inv_hold_create(e, "a", 1, LONG_TTL_MS, a, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_create(e, "b", 1, LONG_TTL_MS, b, 1, NULL), INV_OK);
    inv_batch_line lines[] = {end_line(INV_BATCH_HOLD_COMMIT, "a"),
                              end_line(INV_BATCH_HOLD_RELEASE, "b"),
                              adjust_line(ITEM_3, LOC_A, -1, 0)};
    cr_assert_eq(inv_batch(e, lines, 3, NULL, NULL), INV_OK);
    cr_assert_eq(hold_state(e, "a"), INV_HOLD_COMMITTED);
    cr_assert_eq(hold_state(e, "b"), INV_HOLD_RELEASED);
    inv_level la = tu_level_of(e, ITEM_1, LOC_A), lb = tu_level_of(e, ITEM_2, LOC_A);
    cr_assert(la.available == STOCK - 2 && la.reserved == 0);
    cr_assert(lb.available == STOCK && lb.reserved == 0);
    /* Retries: settled ends answer OK and change nothing. */
    cr_assert_eq(inv_batch(e, lines, 2, NULL, NULL), INV_OK);
    cr_assert_eq(tu_level_of(e, ITEM_2, LOC_A).available, STOCK);
    verify_and_close(e);
}

Test(batch, a_retried_hold_create_answers_ok_and_reserves_once)
{
    inv_engine *e = open_populated();
    inv_hold_line hl[] = {{ITEM_1, LOC_A, 2}};
    cr_assert_eq(inv_hold_create(e, "h", 1, LONG_TTL_MS, hl, 1, NULL), INV_OK);
    inv_batch_line lines[] = {create_line("h", hl, 1), adjust_line(ITEM_2, LOC_A, 1, 0)};
    cr_assert_eq(inv_batch(e, lines, 2, NULL, NULL), INV_OK);
    inv_level lv = tu_level_of(e, ITEM_1, LOC_A);
    cr_assert(lv.available == STOCK - 2 && lv.reserved == 2);
    inv_hold_line other[] = {{ITEM_1, LOC_A, 3}};
    lines[0] = create_line("h", other, 1);
    size_t failed = 9;
    cr_assert_eq(inv_batch(e, lines, 2, NULL, &failed), INV_ECONFLICT);
    cr_assert_eq(failed, 0);
    verify_and_close(e);
}

Test(batch, untracked_lines_count_nothing)
{
    inv_engine *e = open_populated();
    inv_hold_line hl[] = {{ITEM_FREE, LOC_A, 5}};
    inv_batch_line lines[] = {adjust_line(ITEM_FREE, LOC_A, -3, 0), create_line("f", hl, 1)};
    cr_assert_eq(inv_batch(e, lines, 2, NULL, NULL), INV_OK);
    inv_level lv = tu_level_of(e, ITEM_FREE, LOC_A);
    cr_assert(lv.available == 0 && lv.reserved == 0);
    cr_assert_eq(inv_hold_commit(e, "f", 1), INV_OK);
    verify_and_close(e);
}

/* ---- all or nothing ------------------------------------------------------------ */

/* Runs lines, expecting the line `bad` to fail with rc; nothing changes. */
static inv_batch_result expect_nothing(inv_engine *e, const inv_batch_line *lines, size_t n,
                                       size_t bad, int rc)
{
    stock_state before = stock_of(e);
    inv_batch_result res[16];
    size_t failed = 99;
    cr_assert_eq(inv_batch(e, lines, n, res, &failed), rc, "expected %s", inv_errcode(rc));
    cr_assert_eq(failed, bad);
    cr_assert_eq(res[bad].rc, rc);
    stock_state after = stock_of(e);
    assert_same_stock(&before, &after);
    return res[bad];
}

Test(batch, a_failing_last_line_of_any_kind_leaves_no_change)
{
    inv_engine *e = open_populated();
    inv_hold_line hl[] = {{ITEM_2, LOC_A, 3}, {ITEM_3, LOC_A, 2}};
    inv_hold_line big[] = {{ITEM_3, LOC_B, 1}, {ITEM_2, LOC_B, STOCK + 1}};
    inv_level l1 = tu_level_of(e, ITEM_1, LOC_B);
    inv_batch_line lines[4] = {adjust_line(ITEM_1, LOC_A, -2, 0), set_line(ITEM_1, LOC_B, 1, 0),
                               create_line("x", hl, 2)};
    /* floor */
    lines[3] = adjust_line(ITEM_3, LOC_B, -(STOCK + 1), 0);
    inv_batch_result r = expect_nothing(e, lines, 4, 3, INV_EINSUFFICIENT);
    cr_assert_eq(r.level.available, STOCK, "the failing line reports the level it saw");
    cr_assert_eq(hold_state(e, "x"), INV_ENOTFOUND, "the batch's hold is gone");
    /* IFREV */
    lines[3] = set_line(ITEM_3, LOC_B, 4, l1.revision + 1000);
    expect_nothing(e, lines, 4, 3, INV_ECONFLICT);
    /* NOTFOUND */
    lines[3] = adjust_line(ITEM_UNKNOWN, LOC_A, 1, INV_NO_FLOOR);
    expect_nothing(e, lines, 4, 3, INV_ENOTFOUND);
    /* an insufficient hold: the failure names the hold's line in the caller's order */
    lines[3] = create_line("y", big, 2);
    r = expect_nothing(e, lines, 4, 3, INV_EINSUFFICIENT);
    cr_assert(r.hold_failure.line == 1 && r.hold_failure.item == ITEM_2 &&
              r.hold_failure.location == LOC_B && r.hold_failure.available == STOCK);
    cr_assert_eq(hold_state(e, "x"), INV_ENOTFOUND);
    cr_assert_eq(hold_state(e, "y"), INV_ENOTFOUND);
    /* a hold that does not exist */
    lines[3] = end_line(INV_BATCH_HOLD_COMMIT, "nope");
    expect_nothing(e, lines, 4, 3, INV_ENOTFOUND);
    /* A later good batch with the same hold id works: the id was freed. */
    cr_assert_eq(inv_batch(e, lines, 3, NULL, NULL), INV_OK);
    cr_assert_eq(hold_state(e, "x"), INV_HOLD_HELD);
    verify_and_close(e);
}

Test(batch, a_failing_line_undoes_commits_and_releases_of_the_batch)
{
    inv_engine *e = open_populated();
    inv_hold_line a[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_B, 1}}, b[] = {{ITEM_3, LOC_A, 4}};
    cr_assert_eq(inv_hold_create(e, "a", 1, LONG_TTL_MS, a, 2, NULL), INV_OK);
    cr_assert_eq(inv_hold_create(e, "b", 1, LONG_TTL_MS, b, 1, NULL), INV_OK);
    inv_batch_line lines[] = {end_line(INV_BATCH_HOLD_COMMIT, "a"),
                              end_line(INV_BATCH_HOLD_RELEASE, "b"),
                              adjust_line(ITEM_3, LOC_B, -(STOCK + 5), 0)};
    expect_nothing(e, lines, 3, 2, INV_EINSUFFICIENT);
    cr_assert_eq(hold_state(e, "a"), INV_HOLD_HELD);
    cr_assert_eq(hold_state(e, "b"), INV_HOLD_HELD);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    /* Still held for real: they can be ended afterwards. */
    cr_assert_eq(inv_hold_commit(e, "a", 1), INV_OK);
    cr_assert_eq(inv_hold_release(e, "b", 1), INV_OK);
    verify_and_close(e);
}

Test(batch, an_undone_created_level_is_gone_again)
{
    inv_engine *e = open_populated();
    inv_batch_line lines[] = {set_line(ITEM_2, LOC_NONE, 9, 0),
                              adjust_line(ITEM_2, LOC_NONE, -1, 0),
                              adjust_line(ITEM_1, LOC_A, -(STOCK + 1), 0)};
    size_t failed;
    cr_assert_eq(inv_batch(e, lines, 3, NULL, &failed), INV_EINSUFFICIENT);
    cr_assert_eq(failed, 2);
    inv_level lv;
    cr_assert_eq(inv_level_get(e, ITEM_2, LOC_NONE, &lv), INV_ENOTFOUND);
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.levels, 7, "3 items x 2 locations + the untracked level");
    verify_and_close(e);
}

Test(batch, a_commit_after_the_expiry_time_fails_the_batch_and_the_sweep_expires_the_hold)
{
    inv_engine *e = open_populated();
    inv_hold_line hl[] = {{ITEM_1, LOC_A, 1}};
    cr_assert_eq(inv_hold_create(e, "short", 5, 1, hl, 1, NULL), INV_OK);
    /* The expiry is a clock condition: wait until it is past. */
    inv_hold_info info;
    cr_assert_eq(inv_hold_get(e, "short", 5, &info), INV_OK);
    struct timespec ts;
    do {
        tu_sleep_ms(2);
        clock_gettime(CLOCK_REALTIME, &ts);
    } while ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 <= info.expires_at_ms);
    inv_batch_line lines[] = {adjust_line(ITEM_2, LOC_A, -1, 0),
                              end_line(INV_BATCH_HOLD_COMMIT, "short")};
    stock_state before = stock_of(e);
    size_t failed;
    int rc = inv_batch(e, lines, 2, NULL, &failed);
    cr_assert_eq(rc, INV_ENOTFOUND);
    cr_assert_eq(failed, 1);
    /* The sweep (every 10 ms) expires the hold and gives the unit back; a
     * reader is shown the hold HELD until its end is published, after the
     * unit is back (hold.c, reported_state): wait for both. */
    uint64_t deadline = tu_deadline_ms(10000);
    while ((tu_level_of(e, ITEM_1, LOC_A).available != STOCK ||
            hold_state(e, "short") != INV_HOLD_EXPIRED) &&
           !tu_past(deadline))
        tu_sleep_ms(1);
    cr_assert_eq(hold_state(e, "short"), INV_HOLD_EXPIRED);
    stock_state after = stock_of(e);
    cr_assert_eq(after.v[1][0][0], before.v[1][0][0], "the adjust was undone");
    cr_assert_eq(after.v[0][0][0], STOCK);
    verify_and_close(e);
}

/* ---- validation and limits ------------------------------------------------------ */

Test(batch, rejects_invalid_arguments_before_changing_anything)
{
    inv_engine *e = open_populated();
    inv_batch_line ok = adjust_line(ITEM_1, LOC_A, -1, 0);
    size_t failed;
    cr_assert_eq(inv_batch(NULL, &ok, 1, NULL, NULL), INV_EINVALID);
    cr_assert_eq(inv_batch(e, NULL, 1, NULL, NULL), INV_EINVALID);
    cr_assert_eq(inv_batch(e, &ok, 0, NULL, NULL), INV_EINVALID);
    cr_assert_eq(inv_batch(e, &ok, INV_BATCH_LINES_MAX + 1, NULL, NULL), INV_ELIMIT);
    inv_batch_line bad[2] = {ok, ok};
    bad[1].op = (inv_batch_op)77;
    cr_assert_eq(inv_batch(e, bad, 2, NULL, &failed), INV_EINVALID);
    cr_assert_eq(failed, 1);
    bad[1] = adjust_line(ITEM_1, LOC_A, INV_QTY_MAX + 1, INV_NO_FLOOR);
    cr_assert_eq(inv_batch(e, bad, 2, NULL, &failed), INV_ELIMIT);
    bad[1] = set_line(ITEM_1, LOC_A, -INV_QTY_MAX - 1, 0);
    cr_assert_eq(inv_batch(e, bad, 2, NULL, &failed), INV_ELIMIT);
    bad[1] = end_line(INV_BATCH_HOLD_COMMIT, "");
    cr_assert_eq(inv_batch(e, bad, 2, NULL, &failed), INV_EINVALID);
    char long_id[INV_HOLD_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    bad[1] = end_line(INV_BATCH_HOLD_RELEASE, long_id);
    cr_assert_eq(inv_batch(e, bad, 2, NULL, &failed), INV_ELIMIT);
    inv_hold_line hl[] = {{ITEM_1, LOC_A, 1}};
    inv_batch_line twice[] = {create_line("same", hl, 1), end_line(INV_BATCH_HOLD_COMMIT, "same")};
    cr_assert_eq(inv_batch(e, twice, 2, NULL, &failed), INV_EINVALID, "one hold, one line");
    cr_assert_eq(failed, 1);
    inv_hold_line dup[] = {{ITEM_1, LOC_A, 1}, {ITEM_1, LOC_A, 2}};
    bad[1] = create_line("dup", dup, 2);
    cr_assert_eq(inv_batch(e, bad, 2, NULL, &failed), INV_EINVALID);
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_A).available, STOCK, "nothing changed");
    cr_assert_eq(hold_state(e, "same"), INV_ENOTFOUND);
    verify_and_close(e);
}

Test(batch, refuses_more_level_changes_than_the_limit)
{
    /* 17 holds of 64 lines: 1088 level changes > INV_BATCH_LEVELS_MAX. */
    enum { HOLDS = 17, LINES = INV_HOLD_LINES_MAX };
    _Static_assert(HOLDS * LINES > INV_BATCH_LEVELS_MAX, "over the limit");
    inv_engine *e = tu_open_engine(LINES, HOLDS, 0);
    static inv_hold_line hl[HOLDS][LINES];
    inv_batch_line lines[HOLDS];
    char ids[HOLDS][8];
    for (size_t h = 0; h < HOLDS; h++) {
        for (size_t i = 0; i < LINES; i++) {
            cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(h), 5, 0, NULL), INV_OK);
            hl[h][i] = (inv_hold_line){tu_item_id(i), tu_loc_id(h), 1};
        }
        snprintf(ids[h], sizeof ids[h], "h%zu", h);
        lines[h] = create_line(ids[h], hl[h], LINES);
    }
    size_t failed;
    cr_assert_eq(inv_batch(e, lines, HOLDS, NULL, &failed), INV_ELIMIT);
    cr_assert_eq(failed, HOLDS - 1);
    for (size_t h = 0; h < HOLDS; h++)
        cr_assert_eq(hold_state(e, ids[h]), INV_ENOTFOUND, "claims were undone");
    cr_assert_eq(inv_batch(e, lines, HOLDS - 1, NULL, NULL), INV_OK, "16 x 64 fits");
    verify_and_close(e);
}

/* ---- durability ------------------------------------------------------------------ */

Test(batch, applied_and_aborted_batches_survive_reopen_as_they_were)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "batch");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    populate(e);
    inv_hold_line hl[] = {{ITEM_2, LOC_A, 3}};
    inv_hold_line c[] = {{ITEM_3, LOC_A, 1}};
    cr_assert_eq(inv_hold_create(e, "c", 1, LONG_TTL_MS, c, 1, NULL), INV_OK);
    /* Two changes of one level: the batch goes on at a second position. */
    inv_batch_line good[] = {adjust_line(ITEM_1, LOC_A, -1, 0), adjust_line(ITEM_1, LOC_A, -1, 0),
                             create_line("h", hl, 1), end_line(INV_BATCH_HOLD_COMMIT, "c"),
                             set_line(ITEM_1, LOC_NONE, 4, 0)};
    cr_assert_eq(inv_batch(e, good, 5, NULL, NULL), INV_OK);
    inv_batch_line bad[] = {adjust_line(ITEM_2, LOC_B, 5, 0), set_line(ITEM_2, LOC_NONE, 4, 0),
                            adjust_line(ITEM_3, LOC_B, -100, 0)};
    cr_assert_eq(inv_batch(e, bad, 3, NULL, NULL), INV_EINSUFFICIENT);
    stock_state before = stock_of(e);
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    stock_state after = stock_of(e);
    assert_same_stock(&before, &after);
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_A).available, STOCK - 2);
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_NONE).available, 4);
    inv_level lv;
    cr_assert_eq(inv_level_get(e, ITEM_2, LOC_NONE, &lv), INV_ENOTFOUND);
    cr_assert_eq(hold_state(e, "h"), INV_HOLD_HELD);
    cr_assert_eq(hold_state(e, "c"), INV_HOLD_COMMITTED);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    /* A snapshot keeps it too. */
    cr_assert_eq(inv_snapshot(e), INV_OK);
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    after = stock_of(e);
    assert_same_stock(&before, &after);
    cr_assert_eq(hold_state(e, "h"), INV_HOLD_HELD);
    verify_and_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

Test(batch, a_one_step_batch_survives_reopen_with_its_revisions)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "batch");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    populate(e);
    /* Several lines of one level: one record, one image per line. */
    inv_batch_line good[] = {adjust_line(ITEM_1, LOC_A, 3, 0), set_line(ITEM_2, LOC_B, 7, 0),
                             adjust_line(ITEM_1, LOC_A, -1, 0), get_line(ITEM_1, LOC_A),
                             adjust_line(ITEM_2, LOC_B, 1, INV_NO_FLOOR)};
    inv_batch_result res[5];
    cr_assert_eq(inv_batch(e, good, 5, res, NULL), INV_OK);
    cr_assert(res[0].level.available == STOCK + 3 && res[2].level.available == STOCK + 2 &&
              res[3].level.available == STOCK + 2 && res[4].level.available == 8);
    inv_level a = tu_level_of(e, ITEM_1, LOC_A), b = tu_level_of(e, ITEM_2, LOC_B);
    cr_assert(res[2].level.revision == a.revision && res[4].level.revision == b.revision);
    cr_assert_eq(a.revision, b.revision, "one step: one revision");
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    inv_level a2 = tu_level_of(e, ITEM_1, LOC_A), b2 = tu_level_of(e, ITEM_2, LOC_B);
    cr_assert(a2.available == STOCK + 2 && a2.revision == a.revision);
    cr_assert(b2.available == 8 && b2.revision == b.revision);
    verify_and_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* The child's hook: at the batch's first record (partial: a level carried
 * the batch's own position) it notes that position; at the second (the
 * final record) it waits until the partial is durable and dies, so the
 * journal ends with half a batch. */
static inv_engine *cut_engine;
static uint64_t cut_partial_pos;
static int cut_records;

static void cut_hook(uint8_t type)
{
    if (type != PERSIST_BATCH)
        return;
    if (++cut_records == 1) {
        inv_level lv;
        if (level_read(cut_engine, ITEM_1, LOC_A, &lv) == INV_OK)
            cut_partial_pos = lv.revision;
        return;
    }
    (void)inv_wait_durable(cut_engine, cut_partial_pos);
    raise(SIGKILL);
}

static void cut_child(const char *dir)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    cut_engine = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    tu_before_publish(cut_hook);
    inv_hold_line hl[] = {{ITEM_2, LOC_A, 3}};
    inv_batch_line lines[] = {adjust_line(ITEM_1, LOC_A, -1, 0), adjust_line(ITEM_1, LOC_A, -1, 0),
                              create_line("cut", hl, 1), set_line(ITEM_3, LOC_NONE, 2, 0)};
    (void)inv_batch(cut_engine, lines, 4, NULL, NULL);
    _exit(7); /* the hook kills us first */
}

Test(batch, a_crash_between_a_partial_and_the_final_record_recovers_to_no_change)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "batch");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    populate(e);
    stock_state before = stock_of(e);
    inv_close(e); /* no engine open while forking */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        cut_child(dir);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the child died in its hook (status %#x)", (unsigned)status);
    for (int round = 0; round < 2; round++) { /* the undo is journaled: twice */
        e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
        stock_state after = stock_of(e);
        assert_same_stock(&before, &after);
        inv_level lv;
        cr_assert_eq(inv_level_get(e, ITEM_3, LOC_NONE, &lv), INV_ENOTFOUND);
        cr_assert_eq(hold_state(e, "cut"), INV_ENOTFOUND);
        cr_assert_eq(hold_verify_reserved(e), INV_OK);
        inv_close(e);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* ---- isolation: nobody takes units a running batch may take back ------------------ */

/* While the batch is paused at its first (partial) record, another thread
 * tries to buy the units the batch has just added, then reads the level.
 * If it could buy them, the batch's failure would take them back from
 * under it: the level would end below its floor (an oversell). And it must
 * not see the batch at all: the batch runs under its levels' LOCKs, so the
 * buyer waits for it to end (issue 17 item 11). The hook waits a while
 * for a buyer that would not wait (the code before); one that waits, as it
 * must, is joined after the batch. */
#define ISO_WAIT_MS 200
static inv_engine *iso_engine;
static int iso_records, iso_buyer_rc;
static inv_level iso_seen;
static pthread_t iso_thread;
static _Atomic int
    iso_done; /* seq_cst (atomic_load/store): a test flag; the join orders the rest */

static void *iso_buyer(void *p)
{
    (void)p;
    inv_level lv;
    iso_buyer_rc = inv_level_adjust(iso_engine, ITEM_1, LOC_NONE, -5, 0, &lv);
    (void)inv_level_get(iso_engine, ITEM_1, LOC_NONE, &iso_seen);
    atomic_store(&iso_done, 1);
    return NULL;
}

static void iso_hook(uint8_t type)
{
    if (type != PERSIST_BATCH || ++iso_records != 1)
        return;
    cr_assert_eq(pthread_create(&iso_thread, NULL, iso_buyer, NULL), 0);
    uint64_t deadline = tu_deadline_ms(ISO_WAIT_MS);
    while (!atomic_load(&iso_done) && !tu_past(deadline))
        sched_yield();
}

Test(batch, units_a_running_batch_adds_cannot_be_taken_by_others)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "batch");
    iso_engine = tu_open_dir(dir, INV_FSYNC_NONE);
    populate(iso_engine);
    cr_assert_eq(inv_level_set(iso_engine, ITEM_1, LOC_NONE, 0, 0, NULL), INV_OK);
    /* Two changes of ITEM_2 at LOC_A make the batch publish a partial
     * record (the hook), then it goes on and fails on its last line. The
     * hold line makes it a batch of lines (level lines alone are one step,
     * see a_batch_of_level_lines_is_never_seen_half_applied). */
    inv_hold_line hl[] = {{ITEM_1, LOC_B, 1}};
    inv_batch_line lines[] = {
        create_line("iso", hl, 1),         adjust_line(ITEM_1, LOC_NONE, 5, INV_NO_FLOOR),
        get_line(ITEM_1, LOC_NONE),        adjust_line(ITEM_2, LOC_A, -1, 0),
        adjust_line(ITEM_2, LOC_A, -1, 0), adjust_line(ITEM_3, LOC_A, -(STOCK + 1), 0)};
    inv_batch_result res[6];
    atomic_store(&iso_done, 0);
    tu_before_publish(iso_hook);
    size_t failed;
    int rc = inv_batch(iso_engine, lines, 6, res, &failed);
    tu_before_publish(NULL);
    cr_assert_eq(pthread_join(iso_thread, NULL), 0);
    cr_assert_eq(rc, INV_EINSUFFICIENT);
    cr_assert_eq(failed, 5);
    cr_assert_geq(iso_records, 2, "partial records, then the aborted final one");
    cr_assert_eq(res[2].level.available, 5, "the batch's own lines see its units");
    cr_assert_eq(iso_buyer_rc, INV_EINSUFFICIENT, "another caller saw units it may not take");
    cr_assert(iso_seen.available == 0 && iso_seen.reserved == 0,
              "another caller saw the running batch (%" PRId64 ", %" PRId64 ")", iso_seen.available,
              iso_seen.reserved);
    inv_level after = tu_level_of(iso_engine, ITEM_1, LOC_NONE);
    cr_assert(after.available == 0 && after.reserved == 0, "(%" PRId64 ", %" PRId64 ")",
              after.available, after.reserved);
    cr_assert_eq(tu_level_of(iso_engine, ITEM_2, LOC_A).available, STOCK);
    verify_and_close(iso_engine);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

Test(batch, a_batch_takes_its_own_added_units_first_and_settles_the_rest)
{
    inv_engine *e = open_populated();
    cr_assert_eq(inv_level_set(e, ITEM_1, LOC_NONE, 4, 0, NULL), INV_OK);
    inv_hold_line hl[] = {{ITEM_1, LOC_NONE, 2}};
    inv_batch_line lines[] = {adjust_line(ITEM_1, LOC_NONE, 5, INV_NO_FLOOR),
                              adjust_line(ITEM_1, LOC_NONE, -7, 0), create_line("own", hl, 1),
                              get_line(ITEM_1, LOC_NONE)};
    inv_batch_result res[4];
    cr_assert_eq(inv_batch(e, lines, 4, res, NULL), INV_OK);
    cr_assert(res[0].level.available == 9 && res[1].level.available == 2);
    cr_assert(res[3].level.available == 0 && res[3].level.reserved == 2);
    inv_level lv = tu_level_of(e, ITEM_1, LOC_NONE);
    cr_assert(lv.available == 0 && lv.reserved == 2, "(%" PRId64 ", %" PRId64 ")", lv.available,
              lv.reserved);
    /* A release inside a batch returns its units only when it is decided. */
    inv_batch_line rel[] = {end_line(INV_BATCH_HOLD_RELEASE, "own"),
                            adjust_line(ITEM_1, LOC_NONE, -2, 0)};
    cr_assert_eq(inv_batch(e, rel, 2, res, NULL), INV_OK);
    lv = tu_level_of(e, ITEM_1, LOC_NONE);
    cr_assert(lv.available == 0 && lv.reserved == 0);
    verify_and_close(e);
}

Test(batch, units_with_no_room_left_in_reserved_are_refused_with_limit)
{
    inv_engine *e = open_populated();
    cr_assert_eq(inv_level_set(e, ITEM_1, LOC_NONE, INV_QTY_MAX, 0, NULL), INV_OK);
    inv_hold_line hl[] = {{ITEM_1, LOC_NONE, INV_QTY_MAX}};
    cr_assert_eq(inv_hold_create(e, "all", 3, LONG_TTL_MS, hl, 1, NULL), INV_OK);
    /* Reserved holds 1e9: 1e8 more units cannot wait there (2^30 - 1) in
     * a batch of lines (the hold line; level lines alone are one step and
     * keep no units pending: there the adjust lands as a single call's). */
    inv_hold_line room[] = {{ITEM_3, LOC_B, 1}};
    inv_batch_line lines[] = {create_line("room", room, 1), adjust_line(ITEM_2, LOC_A, -1, 0),
                              adjust_line(ITEM_1, LOC_NONE, 100000000, INV_NO_FLOOR)};
    size_t failed;
    cr_assert_eq(inv_batch(e, lines, 3, NULL, &failed), INV_ELIMIT);
    cr_assert_eq(failed, 2);
    inv_level lv = tu_level_of(e, ITEM_1, LOC_NONE);
    cr_assert(lv.available == 0 && lv.reserved == INV_QTY_MAX);
    cr_assert_eq(tu_level_of(e, ITEM_2, LOC_A).available, STOCK, "nothing applied");
    cr_assert_eq(hold_state(e, "room"), INV_ENOTFOUND);
    inv_batch_result res[2];
    cr_assert_eq(inv_batch(e, lines + 1, 2, res, &failed), INV_OK);
    cr_assert_eq(res[1].level.available, 100000000);
    lv = tu_level_of(e, ITEM_1, LOC_NONE);
    cr_assert(lv.available == 100000000 && lv.reserved == INV_QTY_MAX);
    verify_and_close(e);
}

/* ---- one step: a batch of level lines ------------------------------------------- */

Test(batch, an_aborted_batch_of_level_lines_changes_no_revision)
{
    inv_engine *e = open_populated();
    inv_level before[3][2];
    for (int i = 0; i < 3; i++)
        for (int l = 0; l < 2; l++)
            before[i][l] = tu_level_of(e, ITEM_1 + (uint64_t)i, l ? LOC_B : LOC_A);
    inv_batch_line lines[] = {adjust_line(ITEM_1, LOC_A, 1, INV_NO_FLOOR),
                              set_line(ITEM_2, LOC_B, 5, 0), adjust_line(ITEM_2, LOC_A, -1, 0),
                              adjust_line(ITEM_2, LOC_A, -1, 0),
                              adjust_line(ITEM_3, LOC_A, -(STOCK + 1), 0)};
    inv_batch_result res[5];
    size_t failed;
    cr_assert_eq(inv_batch(e, lines, 5, res, &failed), INV_EINSUFFICIENT);
    cr_assert_eq(failed, 4);
    cr_assert_eq(res[4].level.available, STOCK, "the refused line reports what it saw");
    for (int i = 0; i < 3; i++)
        for (int l = 0; l < 2; l++) {
            inv_level now = tu_level_of(e, ITEM_1 + (uint64_t)i, l ? LOC_B : LOC_A);
            cr_assert(now.revision == before[i][l].revision &&
                          now.available == before[i][l].available,
                      "item %d loc %d: revision %" PRIu64 " became %" PRIu64, i + 1, l,
                      before[i][l].revision, now.revision);
        }
    /* The first refused line in line order is reported, whatever order
     * the levels are tried in. */
    inv_batch_line two[] = {adjust_line(ITEM_3, LOC_B, -(STOCK + 1), 0),
                            adjust_line(ITEM_1, LOC_A, -(STOCK + 2), 0)};
    cr_assert_eq(inv_batch(e, two, 2, res, &failed), INV_EINSUFFICIENT);
    cr_assert_eq(failed, 0);
    cr_assert_eq(res[0].level.available, STOCK);
    /* An IFREV writer with a revision read before the batch is not refused
     * by a batch that never happened. */
    cr_assert_eq(inv_level_set(e, ITEM_1, LOC_A, 3, before[0][0].revision, NULL), INV_OK);
    verify_and_close(e);
}

/* Every allocation of a one-step batch (its plan, its descriptor, its
 * record) failed in turn: NOMEM with nothing changed, not a revision,
 * until it runs whole. */
Test(batch, a_one_step_batch_out_of_memory_changes_nothing)
{
    enum { ALLOC_TRIES_MAX = 64 };
    inv_engine *e = open_populated();
    inv_batch_line lines[] = {adjust_line(ITEM_1, LOC_A, -2, 0), adjust_line(ITEM_2, LOC_B, 2, 0),
                              adjust_line(ITEM_1, LOC_A, -1, 0)};
    int rc = INV_ENOMEM;
    uint64_t n = 1;
    for (; rc == INV_ENOMEM && n <= ALLOC_TRIES_MAX; n++) {
        inv_level a = tu_level_of(e, ITEM_1, LOC_A), b = tu_level_of(e, ITEM_2, LOC_B);
        fault_reset();
        fault_fail(FAULT_ALLOC, n, 1, ENOMEM);
        rc = inv_batch(e, lines, 3, NULL, NULL);
        bool failed_one = fault_failures(FAULT_ALLOC) == 1;
        fault_reset();
        cr_assert(rc == INV_OK || (rc == INV_ENOMEM && failed_one), "allocation %" PRIu64 ": %s", n,
                  inv_strerror(rc));
        if (rc != INV_OK) {
            inv_level a2 = tu_level_of(e, ITEM_1, LOC_A), b2 = tu_level_of(e, ITEM_2, LOC_B);
            cr_assert(a2.revision == a.revision && a2.available == a.available &&
                          b2.revision == b.revision && b2.available == b.available,
                      "allocation %" PRIu64 " failed, yet a level changed", n);
        }
    }
    cr_assert_eq(rc, INV_OK);
    cr_assert_geq(n, 3, "the plan and the descriptor allocate");
    cr_assert_eq(tu_level_of(e, ITEM_1, LOC_A).available, STOCK - 3);
    cr_assert_eq(tu_level_of(e, ITEM_2, LOC_B).available, STOCK + 2);
    verify_and_close(e);
}

/* While an aborting batch runs (the hook: its first record, a partial one
 * for a batch of lines), a floored adjust must find the units the batch
 * would have taken: it never took them. */
static inv_engine *abort_engine;
static int abort_records, abort_buyer_rc;

static void abort_hook(uint8_t type)
{
    if (type != PERSIST_BATCH || ++abort_records != 1)
        return;
    inv_level lv;
    abort_buyer_rc = inv_level_adjust(abort_engine, ITEM_1, LOC_A, -1, 0, &lv);
}

Test(batch, an_aborting_batch_never_refuses_a_floored_adjust)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "batch");
    abort_engine = tu_open_dir(dir, INV_FSYNC_NONE);
    populate(abort_engine);
    inv_batch_line lines[] = {adjust_line(ITEM_1, LOC_A, -STOCK, 0),
                              adjust_line(ITEM_2, LOC_A, -1, 0), adjust_line(ITEM_2, LOC_A, -1, 0),
                              adjust_line(ITEM_3, LOC_A, -(STOCK + 1), 0)};
    abort_records = 0;
    abort_buyer_rc = INV_EIO;
    tu_before_publish(abort_hook);
    size_t failed;
    int rc = inv_batch(abort_engine, lines, 4, NULL, &failed);
    tu_before_publish(NULL);
    cr_assert_eq(rc, INV_EINSUFFICIENT);
    cr_assert_eq(abort_records, 1, "one record: the aborted batch's");
    cr_assert_eq(abort_buyer_rc, INV_OK, "refused by units of a batch that aborted");
    cr_assert_eq(tu_level_of(abort_engine, ITEM_1, LOC_A).available, STOCK - 1);
    verify_and_close(abort_engine);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/*
 * Two threads move units between levels A and B with two-line batches;
 * one runs batches that always abort (take all of C, add one to E, then
 * fail on D); one buys and returns one unit of C with a floor leaving it
 * exactly one; two read A and B. No read ever shows a batch half applied:
 * no units in limbo (reserved stays 0: no holds), and a double collect
 * (A, B, then both again with the same revisions: one moment) always sums
 * to 2 * STOCK. The floored buyer is never refused, and E's revision never
 * moves.
 */
enum { OS_A, OS_B, OS_C, OS_D, OS_E, OS_LEVELS, OS_STOCK = 100 };

/* Moves 1..5 units from A to B or back, all or nothing. */
static void os_mover(inv_engine *e, tu_rng *r, uint64_t iters)
{
    uint64_t a = tu_item_id(OS_A), b = tu_item_id(OS_B), loc = tu_loc_id(0);
    for (uint64_t i = 0; i < iters; i++) {
        int64_t k = tu_rng_range(r, 1, 5);
        bool down = tu_rng_below(r, 2);
        inv_batch_line lines[] = {adjust_line(down ? a : b, loc, -k, 0),
                                  adjust_line(down ? b : a, loc, k, INV_NO_FLOOR)};
        int rc = inv_batch(e, lines, 2, NULL, NULL);
        TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "move: %s", inv_strerror(rc));
    }
}

/* Takes all of C and adds one to E, then fails on D: always aborts. */
static void os_aborter(inv_engine *e, uint64_t iters)
{
    uint64_t loc = tu_loc_id(0);
    inv_batch_line lines[] = {adjust_line(tu_item_id(OS_C), loc, -OS_STOCK, 0),
                              adjust_line(tu_item_id(OS_E), loc, 1, INV_NO_FLOOR),
                              adjust_line(tu_item_id(OS_D), loc, -(OS_STOCK + 1), 0)};
    for (uint64_t i = 0; i < iters; i++) {
        int rc = inv_batch(e, lines, 3, NULL, NULL);
        TU_CHECK(rc == INV_EINSUFFICIENT, "abort: %s", inv_strerror(rc));
    }
}

/* Buys one unit of C (floor: one below the stock) and returns it. */
static void os_buyer(inv_engine *e, uint64_t iters)
{
    for (uint64_t i = 0; i < iters; i++) {
        inv_level lv;
        int rc = inv_level_adjust(e, tu_item_id(OS_C), tu_loc_id(0), -1, OS_STOCK - 1, &lv);
        TU_CHECK(rc == INV_OK, "a floored adjust refused: %s", inv_strerror(rc));
        rc = inv_level_adjust(e, tu_item_id(OS_C), tu_loc_id(0), 1, INV_NO_FLOOR, &lv);
        TU_CHECK(rc == INV_OK, "return: %s", inv_strerror(rc));
    }
}

/* Double collects of A and B (see the comment above). */
static void os_reader(inv_engine *e, uint64_t iters)
{
    uint64_t a = tu_item_id(OS_A), b = tu_item_id(OS_B), loc = tu_loc_id(0);
    for (uint64_t i = 0; i < iters; i++) {
        inv_level x, y, x2, y2;
        TU_CHECK(inv_level_get(e, a, loc, &x) == INV_OK && inv_level_get(e, b, loc, &y) == INV_OK &&
                     inv_level_get(e, a, loc, &x2) == INV_OK &&
                     inv_level_get(e, b, loc, &y2) == INV_OK,
                 "read");
        TU_CHECK(x.reserved == 0 && y.reserved == 0 && x2.reserved == 0 && y2.reserved == 0,
                 "units in limbo: a batch seen half applied");
        if (x.revision == x2.revision && y.revision == y2.revision)
            TU_CHECK(x.available + y.available == 2 * OS_STOCK,
                     "A %" PRId64 " + B %" PRId64 ": a batch seen half applied", x.available,
                     y.available);
    }
}

static void one_step_thread(void *p, size_t t)
{
    inv_engine *e = p;
    tu_rng r = tu_rng_seed(0x0e57 + t);
    uint64_t iters = tu_iters(20000);
    if (t <= 1)
        os_mover(e, &r, iters);
    else if (t == 2)
        os_aborter(e, iters);
    else if (t == 3)
        os_buyer(e, iters);
    else
        os_reader(e, iters);
}

Test(batch, a_batch_of_level_lines_is_never_seen_half_applied)
{
    inv_engine *e = tu_open_engine(OS_LEVELS, 1, 0);
    for (size_t i = 0; i < OS_LEVELS; i++)
        cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(0), OS_STOCK, 0, NULL), INV_OK);
    uint64_t e_rev = tu_level_of(e, tu_item_id(OS_E), tu_loc_id(0)).revision;
    tu_run_threads(6, one_step_thread, e);
    tu_assert_no_failures();
    inv_level a = tu_level_of(e, tu_item_id(OS_A), tu_loc_id(0));
    inv_level b = tu_level_of(e, tu_item_id(OS_B), tu_loc_id(0));
    cr_assert_eq(a.available + b.available, 2 * OS_STOCK);
    inv_level e_lv = tu_level_of(e, tu_item_id(OS_E), tu_loc_id(0));
    cr_assert(e_lv.revision == e_rev && e_lv.available == OS_STOCK,
              "aborted batches moved E's revision (%" PRIu64 " -> %" PRIu64 ")", e_rev,
              e_lv.revision);
    cr_assert_eq(tu_level_of(e, tu_item_id(OS_C), tu_loc_id(0)).available, OS_STOCK);
    verify_and_close(e);
}

/* ---- concurrency ---------------------------------------------------------------- */

/*
 * 8 threads over 4 levels of STRESS_STOCK each: half run transfer batches
 * (take k from one level with floor 0, give k to another, plus a hold of 1
 * created and committed or released in a later batch), half run single
 * floored adjusts of -1 / +1 that they count. At the end, per the counts:
 * Σ available + reserved + sold == 4 * STRESS_STOCK + Σ single deltas, no
 * level is below 0, and reserved equals the held lines.
 */
enum { ST_LEVELS = 4, ST_THREADS = 8, STRESS_STOCK = 200 };

typedef struct {
    inv_engine *e;
    _Atomic int64_t single_delta, sold;
} stress_ctx;

static void stress_batch_worker(stress_ctx *c, size_t t, tu_rng *r, uint64_t iters)
{
    char held[32] = "";
    for (uint64_t i = 0; i < iters; i++) {
        size_t a = tu_rng_below(r, ST_LEVELS),
               b = (a + 1 + tu_rng_below(r, ST_LEVELS - 1)) % ST_LEVELS;
        int64_t k = tu_rng_range(r, 1, 5);
        char id[32];
        snprintf(id, sizeof id, "t%zu-%" PRIu64, t, i);
        inv_hold_line hl[] = {{tu_item_id(b), tu_loc_id(0), 1}};
        inv_batch_line lines[4] = {adjust_line(tu_item_id(a), tu_loc_id(0), -k, 0),
                                   adjust_line(tu_item_id(b), tu_loc_id(0), k, INV_NO_FLOOR),
                                   create_line(id, hl, 1)};
        size_t n = 3;
        bool commit = tu_rng_below(r, 2);
        if (held[0])
            lines[n++] = end_line(commit ? INV_BATCH_HOLD_COMMIT : INV_BATCH_HOLD_RELEASE, held);
        size_t failed;
        int rc = inv_batch(c->e, lines, n, NULL, &failed);
        TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT || rc == INV_ECONFLICT,
                 "batch: %s at line %zu", inv_strerror(rc), failed);
        if (rc == INV_OK) {
            if (held[0] && commit)
                /* relaxed: summed after the join. */
                atomic_fetch_add_explicit(&c->sold, 1, memory_order_relaxed);
            snprintf(held, sizeof held, "%s", id);
        }
    }
}

static void stress_thread(void *p, size_t t)
{
    stress_ctx *c = p;
    tu_rng r = tu_rng_seed(0x5eed + t);
    uint64_t iters = tu_iters(4000);
    if (t % 2 == 0) {
        stress_batch_worker(c, t, &r, iters);
        return;
    }
    for (uint64_t i = 0; i < iters; i++) {
        int64_t d = tu_rng_below(&r, 2) ? 1 : -1;
        inv_level lv;
        int rc = inv_level_adjust(c->e, tu_item_id(tu_rng_below(&r, ST_LEVELS)), tu_loc_id(0), d, 0,
                                  &lv);
        TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "adjust: %s", inv_strerror(rc));
        if (rc == INV_OK)
            /* relaxed: summed after the join. */
            atomic_fetch_add_explicit(&c->single_delta, d, memory_order_relaxed);
    }
}

Test(batch, concurrent_batches_and_adjusts_conserve_units_and_never_go_below_the_floor)
{
    stress_ctx c = {.e = tu_open_engine(ST_LEVELS, 1, 0)};
    for (size_t i = 0; i < ST_LEVELS; i++)
        cr_assert_eq(inv_level_set(c.e, tu_item_id(i), tu_loc_id(0), STRESS_STOCK, 0, NULL),
                     INV_OK);
    tu_run_threads(ST_THREADS, stress_thread, &c);
    tu_assert_no_failures();
    int64_t total = 0;
    for (size_t i = 0; i < ST_LEVELS; i++) {
        inv_level lv = tu_level_of(c.e, tu_item_id(i), tu_loc_id(0));
        cr_assert_geq(lv.available, 0, "level %zu below its floor", i);
        total += lv.available + lv.reserved;
    }
    int64_t sold = atomic_load_explicit(&c.sold, memory_order_relaxed);
    int64_t single = atomic_load_explicit(&c.single_delta, memory_order_relaxed);
    cr_assert_eq(total + sold, ST_LEVELS * STRESS_STOCK + single,
                 "units: %" PRId64 " on hand + %" PRId64 " sold, expected %d + %" PRId64, total,
                 sold, ST_LEVELS * STRESS_STOCK, single);
    verify_and_close(c.e);
}

/* ---- a transfer is one step (issue 17 item 11) ---------------------------- */

/* Between a transfer's two halves (the test point after its first change),
 * another thread reads both levels. It must see the units at the source
 * or at the destination, never in neither: the transfer holds both
 * levels' LOCKs until it is decided. The point waits a while for a reader
 * that would not wait (the code before); one that waits is joined after. */
#define XFER_WAIT_MS 200
/* A reader started at a batch's first test point (FAULT_BATCH_CHANGE): it
 * reads two levels, and the point waits a while for it (a reader that
 * would not wait for the batch: the code before) before the batch goes on. */
static struct {
    inv_engine *e;
    uint64_t item, loc[2];
    pthread_t tid;
    _Atomic int started, done; /* seq_cst: test flags; the join orders the results */
    int rc[2];
    inv_level_full lv[2];
} mid;

static void *mid_reader(void *p)
{
    (void)p;
    for (int k = 0; k < 2; k++)
        mid.rc[k] = inv_level_get_full(mid.e, mid.item, mid.loc[k], &mid.lv[k]);
    atomic_store(&mid.done, 1);
    return NULL;
}

static int mid_point(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    (void)ctx, (void)site, (void)arg, (void)arg2;
    if (call != 1)
        return 0; /* the first point only */
    if (pthread_create(&mid.tid, NULL, mid_reader, NULL) != 0)
        abort();
    atomic_store(&mid.started, 1);
    uint64_t deadline = tu_deadline_ms(XFER_WAIT_MS);
    while (!atomic_load(&mid.done) && !tu_past(deadline))
        sched_yield();
    return 0;
}

/* Arms the mid-batch reader of (item, loc0) and (item, loc1). */
static void mid_arm(inv_engine *e, uint64_t item, uint64_t loc0, uint64_t loc1)
{
    mid.e = e;
    mid.item = item;
    mid.loc[0] = loc0;
    mid.loc[1] = loc1;
    atomic_store(&mid.started, 0);
    atomic_store(&mid.done, 0);
    fault_reset(); /* counts from here (an earlier test in this process may have counted) */
    fault_hook(FAULT_BATCH_CHANGE, mid_point, NULL);
}

/* Disarms it and joins its reader: the points the batch passed. */
static uint64_t mid_join(void)
{
    fault_hook(FAULT_BATCH_CHANGE, NULL, NULL);
    uint64_t points = fault_calls(FAULT_BATCH_CHANGE);
    fault_reset();
    cr_assert(atomic_load(&mid.started), "the batch passed no test point");
    cr_assert_eq(pthread_join(mid.tid, NULL), 0);
    cr_assert_eq(mid.rc[0], INV_OK);
    cr_assert_eq(mid.rc[1], INV_OK);
    return points;
}

Test(batch, a_transfer_is_never_seen_half_done)
{
    inv_engine *e = open_populated();
    mid_arm(e, ITEM_1, LOC_A, LOC_B);
    int rc = inv_level_transfer(e, ITEM_1, LOC_A, LOC_B, 7, INV_QTY_AVAILABLE, INV_QTY_DAMAGED);
    uint64_t points = mid_join();
    cr_assert_geq(points, 2, "the transfer's halves passed the point %" PRIu64 " times", points);
    cr_assert_eq(rc, INV_OK);
    /* before: STOCK available at A, nothing damaged at B; after: 7 fewer
     * at A, 7 damaged at B */
    int64_t moved_out = STOCK - mid.lv[0].qty[INV_QTY_AVAILABLE];
    int64_t moved_in = mid.lv[1].qty[INV_QTY_DAMAGED];
    cr_assert_eq(moved_out, moved_in, "units in flight: %" PRId64 " left A, %" PRId64 " reached B",
                 moved_out, moved_in);
    cr_assert_eq(moved_in, 7, "the reader ran inside the transfer: it sees it done");
    verify_and_close(e);
}

/* A batch on the lines path whose levels all lack their item (none to
 * lock, none to claim) runs with an empty lock set and answers NOTFOUND.
 * Before, it aborted on an assertion that the set held something (the
 * fuzzer's seed corpus found it at once). */
Test(batch, a_batch_on_unknown_items_answers_notfound)
{
    inv_engine *e = open_populated();
    inv_batch_line l = {.op = INV_BATCH_LEVEL_TRANSFER,
                        .item = ITEM_UNKNOWN,
                        .location = LOC_A,
                        .to_location = LOC_B,
                        .qty = 1,
                        .from = INV_QTY_AVAILABLE,
                        .to = INV_QTY_AVAILABLE};
    inv_batch_result res;
    size_t failed = 9;
    cr_assert_eq(inv_batch(e, &l, 1, &res, &failed), INV_ENOTFOUND);
    cr_assert_eq(failed, 0);
    verify_and_close(e);
}

/* ---- lines of one level with rules ------------------------------------------ */

/* Two lines on one level that has rules (a policy): the second decides on
 * the rules read for the word the batch found, under the batch's own
 * revision. Before, it asked for the rules of that revision, which no
 * read returns, and the batch read them again forever (the fuzzer's hang). */
Test(batch, two_lines_on_a_level_with_a_policy_apply_once, .timeout = 30)
{
    inv_engine *e = open_populated();
    cr_assert_eq(inv_level_set_policy(e, ITEM_1, LOC_A, INV_POLICY_CONTINUE, 19), INV_OK);
    inv_batch_line lines[3] = {adjust_line(ITEM_1, LOC_A, -4, INV_NO_FLOOR),
                               adjust_line(ITEM_1, LOC_A, -20, INV_NO_FLOOR),
                               set_line(ITEM_2, LOC_A, 3, 0)};
    inv_batch_result res[3];
    size_t failed = 0;
    cr_assert_eq(inv_batch(e, lines, 3, res, &failed), INV_OK, "line %zu", failed);
    inv_level lv;
    cr_assert_eq(inv_level_get(e, ITEM_1, LOC_A, &lv), INV_OK);
    cr_assert_eq(lv.available, STOCK - 24, "down to -14: within the preorder limit of 19");
    /* past the limit: the second line is refused, and nothing applies */
    inv_batch_line over[2] = {adjust_line(ITEM_1, LOC_A, -1, INV_NO_FLOOR),
                              adjust_line(ITEM_1, LOC_A, -5, INV_NO_FLOOR)};
    cr_assert_eq(inv_batch(e, over, 2, res, &failed), INV_EINSUFFICIENT);
    cr_assert_eq(failed, 1);
    cr_assert_eq(inv_level_get(e, ITEM_1, LOC_A, &lv), INV_OK);
    cr_assert_eq(lv.available, STOCK - 24);
    verify_and_close(e);
}

/* ---- the largest batches are one step too --------------------------------- */

/* A batch may change INV_BATCH_LEVELS_MAX levels and read one more per GET
 * line: every batch prepare() accepts fits one lock set, so it runs under
 * its levels' LOCKs (one step to everyone) however many it names. Before,
 * one of more than 1024 levels (GET lines count) ran line by line. */
enum {
    BIG_HOLDS = 16, /* x INV_HOLD_LINES_MAX lines: INV_BATCH_LEVELS_MAX changes */
    BIG_GETS = INV_BATCH_LINES_MAX - BIG_HOLDS,
    BIG_LOCS = 32,
    BIG_ITEMS = (BIG_HOLDS * INV_HOLD_LINES_MAX + BIG_GETS + BIG_LOCS - 1) / BIG_LOCS,
};
_Static_assert(BIG_HOLDS *INV_HOLD_LINES_MAX == INV_BATCH_LEVELS_MAX,
               "every change the batch may make");

static int big_publishes;
static bool big_locked_at_publish;

static void big_note_publish(uint8_t type)
{
    if (type != PERSIST_BATCH)
        return;
    big_publishes++; /* the batch's own thread: no race */
    big_locked_at_publish = level_locks_held();
}

Test(batch, a_batch_of_the_most_levels_runs_under_one_lock_set)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "batch"); /* a journal: its record's publish is the probe */
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    for (uint64_t j = 0; j < BIG_LOCS; j++)
        cr_assert_eq(inv_location_put(e, tu_loc_id(j), NULL), INV_OK);
    for (uint64_t i = 0; i < BIG_ITEMS; i++) {
        cr_assert_eq(inv_item_put(e, tu_item_id(i), NULL), INV_OK);
        for (uint64_t j = 0; j < BIG_LOCS; j++)
            tu_set_level(e, tu_item_id(i), tu_loc_id(j), STOCK);
    }
    static inv_batch_line lines[INV_BATCH_LINES_MAX];
    static char ids[BIG_HOLDS][16];
    size_t level = 0;
    for (size_t h = 0; h < BIG_HOLDS; h++) {
        inv_hold_line hl[INV_HOLD_LINES_MAX];
        for (size_t k = 0; k < INV_HOLD_LINES_MAX; k++, level++)
            hl[k] = (inv_hold_line){tu_item_id(level / BIG_LOCS), tu_loc_id(level % BIG_LOCS), 1};
        snprintf(ids[h], sizeof ids[h], "big-%zu", h);
        cr_assert_eq(
            inv_hold_create(e, ids[h], strlen(ids[h]), LONG_TTL_MS, hl, INV_HOLD_LINES_MAX, NULL),
            INV_OK);
        lines[h] = (inv_batch_line){
            .op = INV_BATCH_HOLD_COMMIT, .hold_id = ids[h], .hold_id_len = strlen(ids[h])};
    }
    for (size_t g = 0; g < BIG_GETS; g++, level++)
        lines[BIG_HOLDS + g] = get_line(tu_item_id(level / BIG_LOCS), tu_loc_id(level % BIG_LOCS));
    big_publishes = 0;
    big_locked_at_publish = false;
    tu_before_publish(big_note_publish);
    static inv_batch_result res[INV_BATCH_LINES_MAX];
    size_t failed = 0;
    int rc = inv_batch(e, lines, INV_BATCH_LINES_MAX, res, &failed);
    tu_before_publish(NULL);
    cr_assert_eq(rc, INV_OK, "line %zu: %s", failed, inv_strerror(rc));
    cr_assert_geq(big_publishes, 1);
    cr_assert(big_locked_at_publish, "a batch of %d levels ran without its lock set",
              INV_BATCH_LEVELS_MAX + BIG_GETS);
    inv_level_full lv;
    cr_assert_eq(inv_level_get_full(e, tu_item_id(0), tu_loc_id(0), &lv), INV_OK);
    cr_assert_eq(lv.qty[INV_QTY_COMMITTED], 1);
    cr_assert_eq(lv.qty[INV_QTY_AVAILABLE], STOCK - 1);
    verify_and_close(e);
    tu_remove_tree(dir);
}

/* ---- a batch that creates a level is one step too ---------------------------- */

/* A SET that creates its level beside a cold line: the level is claimed
 * and held by the batch's lock set before the batch runs, so a reader
 * started mid-batch (after the creation and the move) waits and sees the
 * batch whole. Before, such a batch ran without a set: the reader saw the
 * new level with its units still pending (available 0). */
Test(batch, a_batch_that_creates_a_level_is_never_seen_half_done)
{
    inv_engine *e = open_populated();
    inv_batch_line lines[2] = {
        set_line(ITEM_1, LOC_NONE, 5, 0), /* creates the level */
        {.op = INV_BATCH_LEVEL_MOVE,
         .item = ITEM_1,
         .location = LOC_A,
         .qty = 3,
         .from = INV_QTY_AVAILABLE,
         .to = INV_QTY_DAMAGED,
         .floor = INV_NO_FLOOR},
    };
    inv_batch_result res[2];
    size_t failed = 0;
    mid_arm(e, ITEM_1, LOC_NONE, LOC_A);
    int rc = inv_batch(e, lines, 2, res, &failed);
    (void)mid_join();
    cr_assert_eq(rc, INV_OK, "line %zu: %s", failed, inv_strerror(rc));
    const inv_level_full *created = &mid.lv[0], *moved = &mid.lv[1];
    cr_assert_eq(created->qty[INV_QTY_AVAILABLE], 5,
                 "the reader saw the created level at %" PRId64 " available (%" PRId64
                 " reserved): the batch half done",
                 created->qty[INV_QTY_AVAILABLE], created->qty[INV_QTY_RESERVED]);
    cr_assert_eq(created->qty[INV_QTY_RESERVED], 0);
    cr_assert_eq(moved->qty[INV_QTY_DAMAGED], 3);
    verify_and_close(e);
}
