/*
 * test_hold_lifecycle.c — the hold lifecycle beyond create / commit /
 * release (test_hold.c): attributes (buyer, order reference, created_at),
 * partial commits, extending a hold, listing live holds, per-buyer limits,
 * each as a batch line too (all or nothing), across restarts (journal and
 * snapshot), a crash in the middle of a partial commit, records of the
 * first journal format, hostile records, and concurrent creates of one
 * buyer racing its limit.
 *
 * Every scenario ends with hold_verify_reserved and hold_verify_buyers
 * answering INV_OK: each level's reserved is the sum of its HELD lines,
 * each buyer counter the units its holds count.
 */
#include "test_util.h"

#include "hold.h"
#include "invcore.h"
#include "persist.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    LOC_A = 10,
    LOC_B = 11,
    ITEM_1 = 1,
    ITEM_2 = 2,
    ITEM_3 = 3,
    STOCK_A = 10,
    STOCK_B = 20,
    SWEEP_MS = 5,
    LONG_TTL_MS = 600000, /* never expires during a test */
    SHORT_TTL_MS = 200, /* expires during a test (waited for, bounded) */
    WAIT_MS = 10000, /* bound of every wait for an event */
};

/* ---- helpers ------------------------------------------------------------ */

/* Items 1..3 tracked with STOCK_A units at LOC_A and STOCK_B at LOC_B. */
static void stock(inv_engine *e)
{
    cr_assert_eq(inv_location_put(e, LOC_A, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, LOC_B, NULL), INV_OK);
    for (uint64_t item = ITEM_1; item <= ITEM_3; item++) {
        tu_put_item(e, item, true);
        tu_set_level(e, item, LOC_A, STOCK_A);
        tu_set_level(e, item, LOC_B, STOCK_B);
    }
}

static inv_engine *open_cfg(const char *dir, uint64_t window_ms)
{
    inv_config cfg = {0};
    cfg.sweep_interval_ms = SWEEP_MS;
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_ALWAYS;
    cfg.buyer_window_ms = window_ms;
    return tu_open_config(&cfg);
}

static inv_engine *open_stocked(void)
{
    inv_engine *e = open_cfg(NULL, 0);
    stock(e);
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

static inv_hold_opts buyer_opts(const char *buyer, int64_t limit, const char *order)
{
    return (inv_hold_opts){buyer, buyer ? strlen(buyer) : 0, limit, order,
                           order ? strlen(order) : 0};
}

static int create_ex(inv_engine *e, const char *id, uint64_t ttl_ms, const inv_hold_line *lines,
                     size_t n, const inv_hold_opts *o, inv_hold_failure *failure)
{
    return inv_hold_create_ex(e, id, strlen(id), ttl_ms, lines, n, o, failure);
}

/* One line of qty units of item at LOC_A for buyer, limit 0: none. */
static int take(inv_engine *e, const char *id, uint64_t item, int64_t qty, const char *buyer,
                int64_t limit)
{
    inv_hold_line line = {item, LOC_A, qty};
    inv_hold_opts o = buyer_opts(buyer, limit, NULL);
    return create_ex(e, id, LONG_TTL_MS, &line, 1, &o, NULL);
}

static int commit_part(inv_engine *e, const char *id, const inv_hold_line *lines, size_t n)
{
    return inv_hold_commit_partial(e, id, strlen(id), lines, n);
}

static inv_hold_info info_of(inv_engine *e, const char *id)
{
    inv_hold_info info;
    memset(&info, 0, sizeof info);
    int rc = inv_hold_get(e, id, strlen(id), &info);
    cr_assert_eq(rc, INV_OK, "hold %s: %s", id, inv_strerror(rc));
    return info;
}

static void verify(inv_engine *e)
{
    cr_assert_eq(hold_verify_reserved(e), INV_OK, "reserved != sum of held lines");
    cr_assert_eq(hold_verify_buyers(e), INV_OK, "buyer counters != units their holds count");
}

static void verify_and_close(inv_engine *e)
{
    verify(e);
    inv_close(e);
}

/* Waits (bounded) until the hold is no longer HELD; true when it ended. */
static bool wait_ended(inv_engine *e, const char *id)
{
    for (int64_t t0 = clock_mono_ms(); clock_mono_ms() - t0 < WAIT_MS; tu_sleep_ms(2))
        if (info_of(e, id).state != INV_HOLD_HELD)
            return true;
    return false;
}

/* ---- attributes ------------------------------------------------------------ */

Test(hold_life, a_hold_keeps_its_buyer_order_reference_and_creation_time)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_B, 3}};
    inv_hold_opts o = buyer_opts("buyer-7", 0, "gid://shop/Order/42");
    int64_t before = clock_wall_ms();
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, lines, 2, &o, NULL), INV_OK);
    int64_t after = clock_wall_ms();
    inv_hold_info info = info_of(e, "h");
    cr_assert_str_eq(info.buyer, "buyer-7");
    cr_assert_str_eq(info.order_ref, "gid://shop/Order/42");
    cr_assert(info.created_at_ms >= before && info.created_at_ms <= after);
    cr_assert_eq(info.expires_at_ms - info.created_at_ms, LONG_TTL_MS);
    cr_assert_eq(info.committed[0], 0);
    cr_assert_eq(info.committed[1], 0);
    /* without options: empty attributes */
    cr_assert_eq(inv_hold_create(e, "plain", 5, LONG_TTL_MS, lines, 1, NULL), INV_OK);
    info = info_of(e, "plain");
    cr_assert_str_eq(info.buyer, "");
    cr_assert_str_eq(info.order_ref, "");
    verify_and_close(e);
}

Test(hold_life, bad_attributes_are_refused_and_reserve_nothing)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 2};
    char long_buyer[INV_BUYER_ID_MAX + 2], long_ref[INV_ORDER_REF_MAX + 2];
    memset(long_buyer, 'b', sizeof long_buyer - 1);
    long_buyer[sizeof long_buyer - 1] = '\0';
    memset(long_ref, 'r', sizeof long_ref - 1);
    long_ref[sizeof long_ref - 1] = '\0';
    struct {
        inv_hold_opts o;
        int rc;
    } cases[] = {
        {{"a\0b", 3, 0, NULL, 0}, INV_EINVALID}, /* NUL in the buyer */
        {{NULL, 3, 0, NULL, 0}, INV_EINVALID}, /* length without bytes */
        {{NULL, 0, 5, NULL, 0}, INV_EINVALID}, /* a limit without a buyer */
        {{"b", 1, -1, NULL, 0}, INV_EINVALID},
        {{"b", 1, INV_QTY_MAX + 1, NULL, 0}, INV_ELIMIT},
        {{long_buyer, INV_BUYER_ID_MAX + 1, 0, NULL, 0}, INV_ELIMIT},
        {{NULL, 0, 0, long_ref, INV_ORDER_REF_MAX + 1}, INV_ELIMIT},
        {{NULL, 0, 0, "x\0y", 3}, INV_EINVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, &cases[i].o, NULL), cases[i].rc,
                     "case %zu", i);
        cr_assert_eq(inv_hold_get(e, "h", 1, &(inv_hold_info){0}), INV_ENOTFOUND, "case %zu", i);
    }
    /* the longest allowed of each */
    inv_hold_opts max = {long_buyer, INV_BUYER_ID_MAX, INV_QTY_MAX, long_ref, INV_ORDER_REF_MAX};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, &max, NULL), INV_OK);
    inv_hold_info info = info_of(e, "h");
    cr_assert_eq(strlen(info.buyer), INV_BUYER_ID_MAX);
    cr_assert_eq(strlen(info.order_ref), INV_ORDER_REF_MAX);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 2, 2);
    verify_and_close(e);
}

Test(hold_life, a_retry_is_the_same_create_only_with_the_same_attributes)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 2};
    inv_hold_opts o = buyer_opts("b1", 0, "order-1");
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, &o, NULL), INV_OK);
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, &o, NULL), INV_OK);
    inv_hold_opts other_buyer = buyer_opts("b2", 0, "order-1");
    inv_hold_opts other_ref = buyer_opts("b1", 0, "order-2");
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, &other_buyer, NULL), INV_ECONFLICT);
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, &other_ref, NULL), INV_ECONFLICT);
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, NULL, NULL), INV_ECONFLICT);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 2, 2); /* reserved once */
    verify_and_close(e);
}

/* ---- partial commits ---------------------------------------------------------- */

Test(hold_life, a_partial_commit_sells_the_named_units_and_releases_the_rest)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_A, 3}, {ITEM_3, LOC_B, 5}};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, lines, 3, NULL, NULL), INV_OK);
    /* item 1: 1 of 4 sold; item 2: none; item 3: all 5 */
    inv_hold_line sold[] = {{ITEM_3, LOC_B, 5}, {ITEM_1, LOC_A, 1}};
    cr_assert_eq(commit_part(e, "h", sold, 2), INV_OK);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 1, 0);
    assert_level(e, ITEM_2, LOC_A, STOCK_A, 0);
    assert_level(e, ITEM_3, LOC_B, STOCK_B - 5, 0);
    inv_hold_info info = info_of(e, "h");
    cr_assert_eq(info.state, INV_HOLD_COMMITTED);
    cr_assert_eq(info.n_lines, 3);
    for (size_t i = 0; i < info.n_lines; i++) {
        int64_t want = info.lines[i].item == ITEM_1 ? 1 : info.lines[i].item == ITEM_2 ? 0 : 5;
        cr_assert_eq(info.committed[i], want, "item %" PRIu64, info.lines[i].item);
    }
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.holds_committed, 1);
    cr_assert_eq(st.holds_active, 0);
    verify_and_close(e);
}

Test(hold_life, a_partial_commit_retried_answers_ok_and_any_other_commit_conflicts)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_A, 3}};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, lines, 2, NULL, NULL), INV_OK);
    inv_hold_line sold[] = {{ITEM_1, LOC_A, 2}};
    cr_assert_eq(commit_part(e, "h", sold, 1), INV_OK);
    cr_assert_eq(commit_part(e, "h", sold, 1), INV_OK); /* a retry */
    inv_hold_line more[] = {{ITEM_1, LOC_A, 3}};
    inv_hold_line with_zero_line[] = {{ITEM_1, LOC_A, 2}, {ITEM_2, LOC_A, 1}};
    cr_assert_eq(commit_part(e, "h", more, 1), INV_ECONFLICT);
    cr_assert_eq(commit_part(e, "h", with_zero_line, 2), INV_ECONFLICT);
    cr_assert_eq(inv_hold_commit(e, "h", 1), INV_ECONFLICT); /* all of it: other units */
    cr_assert_eq(inv_hold_release(e, "h", 1), INV_ECONFLICT);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 2, 0);
    assert_level(e, ITEM_2, LOC_A, STOCK_A, 0);
    verify_and_close(e);
}

Test(hold_life, a_partial_commit_of_every_unit_is_a_whole_commit)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_A, 3}};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, lines, 2, NULL, NULL), INV_OK);
    cr_assert_eq(commit_part(e, "h", lines, 2), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "h", 1), INV_OK); /* the same units: a retry */
    cr_assert_eq(commit_part(e, "h", NULL, 0), INV_OK);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 4, 0);
    assert_level(e, ITEM_2, LOC_A, STOCK_A - 3, 0);
    inv_hold_info info = info_of(e, "h");
    cr_assert_eq(info.committed[0] + info.committed[1], 7);
    verify_and_close(e);
}

Test(hold_life, a_partial_commit_with_bad_lines_is_invalid_and_changes_nothing)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_A, 3}};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, lines, 2, NULL, NULL), INV_OK);
    inv_hold_line bad[][2] = {
        {{ITEM_3, LOC_A, 1}, {0, 0, 0}}, /* a line the hold lacks */
        {{ITEM_1, LOC_B, 1}, {0, 0, 0}}, /* its item at another location */
        {{ITEM_1, LOC_A, 5}, {0, 0, 0}}, /* more than it holds */
        {{ITEM_1, LOC_A, 0}, {0, 0, 0}},          {{ITEM_1, LOC_A, -1}, {0, 0, 0}},
        {{ITEM_1, LOC_A, 1}, {ITEM_1, LOC_A, 1}}, /* one line twice */
    };
    size_t n_bad[] = {1, 1, 1, 1, 1, 2};
    for (size_t i = 0; i < sizeof n_bad / sizeof n_bad[0]; i++)
        cr_assert_eq(commit_part(e, "h", bad[i], n_bad[i]), INV_EINVALID, "case %zu", i);
    cr_assert_eq(commit_part(e, "h", NULL, 1), INV_EINVALID);
    cr_assert_eq(commit_part(e, "h", lines, INV_HOLD_LINES_MAX + 1), INV_ELIMIT);
    cr_assert_eq(commit_part(e, "nosuch", lines, 1), INV_ENOTFOUND);
    cr_assert_eq(info_of(e, "h").state, INV_HOLD_HELD);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 4, 4);
    assert_level(e, ITEM_2, LOC_A, STOCK_A - 3, 3);
    verify_and_close(e);
}

Test(hold_life, a_partial_commit_after_the_expiry_time_is_notfound)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create_ex(e, "h", 1, &line, 1, NULL, NULL), INV_OK);
    int64_t expires = info_of(e, "h").expires_at_ms;
    while (clock_wall_ms() <= expires)
        tu_sleep_ms(1);
    inv_hold_line sold = {ITEM_1, LOC_A, 1};
    cr_assert_eq(commit_part(e, "h", &sold, 1), INV_ENOTFOUND);
    cr_assert(wait_ended(e, "h"));
    cr_assert_eq(info_of(e, "h").state, INV_HOLD_EXPIRED);
    assert_level(e, ITEM_1, LOC_A, STOCK_A, 0);
    verify_and_close(e);
}

/* ---- extend --------------------------------------------------------------------- */

Test(hold_life, extend_moves_the_expiry_to_now_plus_the_ttl)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 2};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    int64_t before = clock_wall_ms();
    cr_assert_eq(inv_hold_extend(e, "h", 1, 2 * LONG_TTL_MS), INV_OK);
    int64_t after = clock_wall_ms();
    inv_hold_info info = info_of(e, "h");
    cr_assert(info.expires_at_ms >= before + 2 * LONG_TTL_MS &&
              info.expires_at_ms <= after + 2 * LONG_TTL_MS);
    cr_assert_eq(info.state, INV_HOLD_HELD);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 2, 2);
    verify_and_close(e);
}

/* The extended hold's first due time passes (a hold created after it, with
 * the same short ttl, expires: the sweep has passed that time) and it is
 * still held. */
Test(hold_life, an_extended_hold_outlives_its_first_expiry)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 2}, other = {ITEM_2, LOC_A, 1};
    cr_assert_eq(create_ex(e, "kept", SHORT_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    cr_assert_eq(inv_hold_extend(e, "kept", 4, LONG_TTL_MS), INV_OK);
    cr_assert_eq(create_ex(e, "witness", SHORT_TTL_MS, &other, 1, NULL, NULL), INV_OK);
    cr_assert(wait_ended(e, "witness"), "the witness never expired");
    cr_assert_eq(info_of(e, "witness").state, INV_HOLD_EXPIRED);
    cr_assert_eq(info_of(e, "kept").state, INV_HOLD_HELD);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 2, 2);
    cr_assert_eq(inv_hold_commit(e, "kept", 4), INV_OK);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 2, 0);
    verify_and_close(e);
}

Test(hold_life, an_extended_hold_expires_at_its_new_time)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 2};
    cr_assert_eq(create_ex(e, "h", SHORT_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    cr_assert_eq(inv_hold_extend(e, "h", 1, 2 * SHORT_TTL_MS), INV_OK);
    int64_t expires = info_of(e, "h").expires_at_ms;
    cr_assert(wait_ended(e, "h"));
    cr_assert_geq(clock_wall_ms(), expires, "expired before its new time");
    cr_assert_eq(info_of(e, "h").state, INV_HOLD_EXPIRED);
    assert_level(e, ITEM_1, LOC_A, STOCK_A, 0);
    verify_and_close(e);
}

Test(hold_life, a_hold_shortened_by_extend_refuses_commits_from_its_new_time)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 2};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    cr_assert_eq(inv_hold_extend(e, "h", 1, 1), INV_OK);
    int64_t expires = info_of(e, "h").expires_at_ms;
    cr_assert_lt(expires, clock_wall_ms() + LONG_TTL_MS / 2);
    while (clock_wall_ms() <= expires)
        tu_sleep_ms(1);
    cr_assert_eq(inv_hold_commit(e, "h", 1), INV_ENOTFOUND);
    cr_assert_eq(inv_hold_extend(e, "h", 1, LONG_TTL_MS), INV_ENOTFOUND);
    /* a release still gives the units back at once */
    cr_assert_eq(inv_hold_release(e, "h", 1), INV_OK);
    assert_level(e, ITEM_1, LOC_A, STOCK_A, 0);
    verify_and_close(e);
}

Test(hold_life, extend_answers_notfound_or_conflict_for_ended_holds_and_checks_its_ttl)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 1};
    cr_assert_eq(create_ex(e, "rel", LONG_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    cr_assert_eq(create_ex(e, "com", LONG_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    cr_assert_eq(create_ex(e, "exp", 1, &line, 1, NULL, NULL), INV_OK);
    cr_assert_eq(inv_hold_release(e, "rel", 3), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "com", 3), INV_OK);
    cr_assert(wait_ended(e, "exp"));
    cr_assert_eq(inv_hold_extend(e, "rel", 3, LONG_TTL_MS), INV_ENOTFOUND);
    cr_assert_eq(inv_hold_extend(e, "exp", 3, LONG_TTL_MS), INV_ENOTFOUND);
    cr_assert_eq(inv_hold_extend(e, "com", 3, LONG_TTL_MS), INV_ECONFLICT);
    cr_assert_eq(inv_hold_extend(e, "none", 4, LONG_TTL_MS), INV_ENOTFOUND);
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    int64_t expires = info_of(e, "h").expires_at_ms;
    cr_assert_eq(inv_hold_extend(e, "h", 1, 0), INV_EINVALID);
    cr_assert_eq(inv_hold_extend(e, "h", 1, INV_HOLD_TTL_MS_MAX + 1), INV_ELIMIT);
    cr_assert_eq(inv_hold_extend(e, "h", 0, LONG_TTL_MS), INV_EINVALID);
    cr_assert_eq(inv_hold_extend(e, NULL, 1, LONG_TTL_MS), INV_EINVALID);
    cr_assert_eq(inv_hold_extend(NULL, "h", 1, LONG_TTL_MS), INV_EINVALID);
    cr_assert_eq(info_of(e, "h").expires_at_ms, expires);
    verify_and_close(e);
}

/* ---- listing ----------------------------------------------------------------------- */

enum { LIST_HOLDS = 60, LIST_PAGE = 7 };

/* Pages through every live hold with filter f; marks each id seen in
 * seen[] (index from the id "l<i>"); fails on a repeat. */
static size_t list_all(inv_engine *e, const inv_hold_filter *f, bool *seen)
{
    char ids[LIST_PAGE][INV_HOLD_ID_MAX + 1];
    size_t lens[LIST_PAGE], total = 0, pages = 0;
    uint64_t cursor = 0;
    do {
        size_t n = 0;
        uint64_t next = 0;
        cr_assert_eq(inv_hold_list(e, f, cursor, LIST_PAGE, ids, lens, LIST_PAGE, &n, &next),
                     INV_OK);
        cr_assert_leq(n, LIST_PAGE);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(lens[i], strlen(ids[i]));
            int k = atoi(ids[i] + 1);
            cr_assert(k >= 0 && k < LIST_HOLDS && !seen[k], "id %s listed twice or unknown",
                      ids[i]);
            seen[k] = true;
            total++;
        }
        cursor = next;
        cr_assert_lt(++pages, 10 * LIST_HOLDS, "the cursor never ends");
    } while (cursor != 0);
    return total;
}

Test(hold_life, list_pages_through_every_live_hold_once_and_filters_by_a_line)
{
    inv_engine *e = open_stocked();
    /* hold i: item 1 + i % 3 at LOC_A (1 unit), and every fifth one also
     * item 3 at LOC_B; every fourth one released. */
    tu_set_level(e, ITEM_1, LOC_A, 1000);
    tu_set_level(e, ITEM_2, LOC_A, 1000);
    tu_set_level(e, ITEM_3, LOC_A, 1000);
    tu_set_level(e, ITEM_3, LOC_B, 1000);
    size_t live = 0, on_item3 = 0, on_locb = 0, on_item3_locb = 0;
    for (int i = 0; i < LIST_HOLDS; i++) {
        char id[16];
        snprintf(id, sizeof id, "l%d", i);
        inv_hold_line lines[] = {{ITEM_1 + (uint64_t)(i % 3), LOC_A, 1}, {ITEM_3, LOC_B, 1}};
        size_t n = i % 5 == 0 && i % 3 != 2 ? 2 : 1;
        cr_assert_eq(create_ex(e, id, LONG_TTL_MS, lines, n, NULL, NULL), INV_OK);
        if (i % 4 == 0) {
            cr_assert_eq(inv_hold_release(e, id, strlen(id)), INV_OK);
            continue;
        }
        live++;
        on_item3 += i % 3 == 2 || n == 2;
        on_locb += n == 2;
        on_item3_locb += n == 2;
    }
    bool seen[LIST_HOLDS] = {false};
    cr_assert_eq(list_all(e, NULL, seen), live);
    for (int i = 0; i < LIST_HOLDS; i++)
        cr_assert_eq(seen[i], i % 4 != 0, "hold l%d", i);
    inv_hold_filter by_item = {ITEM_3, 0, true, false};
    inv_hold_filter by_loc = {0, LOC_B, false, true};
    inv_hold_filter by_both = {ITEM_3, LOC_B, true, true};
    inv_hold_filter none_match = {ITEM_1, LOC_B, true, true};
    memset(seen, 0, sizeof seen);
    cr_assert_eq(list_all(e, &by_item, seen), on_item3);
    memset(seen, 0, sizeof seen);
    cr_assert_eq(list_all(e, &by_loc, seen), on_locb);
    memset(seen, 0, sizeof seen);
    cr_assert_eq(list_all(e, &by_both, seen), on_item3_locb);
    memset(seen, 0, sizeof seen);
    cr_assert_eq(list_all(e, &none_match, seen), 0);
    verify_and_close(e);
}

Test(hold_life, list_returns_binary_ids_whole_and_checks_its_arguments)
{
    inv_engine *e = open_stocked();
    inv_hold_line line = {ITEM_1, LOC_A, 1};
    cr_assert_eq(inv_hold_create(e, "a\0b", 3, LONG_TTL_MS, &line, 1, NULL), INV_OK);
    char ids[4][INV_HOLD_ID_MAX + 1];
    size_t lens[4], n = 0;
    uint64_t next = 1;
    cr_assert_eq(inv_hold_list(e, NULL, 0, 4, ids, lens, 4, &n, &next), INV_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(next, 0);
    cr_assert_eq(lens[0], 3);
    cr_assert(memcmp(ids[0], "a\0b", 4) == 0);
    cr_assert_eq(inv_hold_list(e, NULL, 0, 0, ids, lens, 4, &n, &next), INV_EINVALID);
    cr_assert_eq(inv_hold_list(e, NULL, 0, INV_LIST_COUNT_MAX + 1, ids, lens, 4, &n, &next),
                 INV_EINVALID);
    cr_assert_eq(inv_hold_list(e, NULL, 0, 4, ids, lens, 0, &n, &next), INV_EINVALID);
    cr_assert_eq(inv_hold_list(e, NULL, 0, 4, NULL, lens, 4, &n, &next), INV_EINVALID);
    cr_assert_eq(inv_hold_list(e, NULL, 0, 4, ids, NULL, 4, &n, &next), INV_OK); /* lens optional */
    /* a committed hold is not live */
    cr_assert_eq(inv_hold_commit(e, "a\0b", 3), INV_OK);
    cr_assert_eq(inv_hold_list(e, NULL, 0, 4, ids, lens, 4, &n, &next), INV_OK);
    cr_assert_eq(n, 0);
    verify_and_close(e);
}

/* ---- buyer limits ------------------------------------------------------------------- */

Test(hold_life, a_buyer_never_holds_more_than_its_limit_of_an_item)
{
    inv_engine *e = open_stocked();
    cr_assert_eq(take(e, "a", ITEM_1, 3, "b1", 5), INV_OK);
    inv_hold_line lines[] = {{ITEM_2, LOC_A, 1}, {ITEM_1, LOC_B, 3}};
    inv_hold_opts o = buyer_opts("b1", 5, NULL);
    inv_hold_failure f = {0};
    cr_assert_eq(create_ex(e, "b", LONG_TTL_MS, lines, 2, &o, &f), INV_ELIMIT);
    cr_assert_eq(f.line, 1); /* the caller's line of item 1 */
    cr_assert_eq(f.item, ITEM_1);
    cr_assert_eq(f.location, LOC_B);
    cr_assert_eq(f.available, 6); /* what the buyer would hold */
    /* nothing of the refused create remains: levels, hold, counters */
    assert_level(e, ITEM_1, LOC_B, STOCK_B, 0);
    assert_level(e, ITEM_2, LOC_A, STOCK_A, 0);
    cr_assert_eq(inv_hold_get(e, "b", 1, &(inv_hold_info){0}), INV_ENOTFOUND);
    verify(e);
    /* up to the limit is fine; other items and other buyers are apart */
    cr_assert_eq(take(e, "c", ITEM_1, 2, "b1", 5), INV_OK);
    cr_assert_eq(take(e, "d", ITEM_1, 1, "b1", 5), INV_ELIMIT);
    cr_assert_eq(take(e, "e", ITEM_2, 5, "b1", 5), INV_OK);
    cr_assert_eq(take(e, "f", ITEM_1, 5, "b2", 5), INV_OK);
    /* holds without a limit count too: a later limit sees them */
    cr_assert_eq(take(e, "g", ITEM_3, 4, "b3", 0), INV_OK);
    cr_assert_eq(take(e, "h", ITEM_3, 2, "b3", 5), INV_ELIMIT);
    cr_assert_eq(take(e, "i", ITEM_3, 1, "b3", 5), INV_OK);
    verify_and_close(e);
}

Test(hold_life, released_and_expired_holds_give_the_buyer_units_back)
{
    inv_engine *e = open_stocked();
    cr_assert_eq(take(e, "a", ITEM_1, 3, "b1", 5), INV_OK);
    cr_assert_eq(take(e, "b", ITEM_1, 3, "b1", 5), INV_ELIMIT);
    cr_assert_eq(inv_hold_release(e, "a", 1), INV_OK);
    cr_assert_eq(take(e, "b", ITEM_1, 3, "b1", 5), INV_OK);
    inv_hold_line line = {ITEM_1, LOC_B, 2};
    inv_hold_opts o = buyer_opts("b1", 5, NULL);
    cr_assert_eq(create_ex(e, "short", SHORT_TTL_MS, &line, 1, &o, NULL), INV_OK);
    int rc = take(e, "c", ITEM_1, 1, "b1", 5);
    /* HELD after the call: HELD during it (no timing assumed) */
    if (info_of(e, "short").state == INV_HOLD_HELD)
        cr_assert_eq(rc, INV_ELIMIT);
    else if (rc == INV_OK)
        cr_assert_eq(inv_hold_release(e, "c", 1), INV_OK);
    cr_assert(wait_ended(e, "short"));
    cr_assert_eq(info_of(e, "short").state, INV_HOLD_EXPIRED);
    cr_assert_eq(take(e, "d", ITEM_1, 2, "b1", 5), INV_OK);
    verify_and_close(e);
}

Test(hold_life, a_create_refused_by_a_level_gives_the_buyer_units_back)
{
    inv_engine *e = open_stocked();
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 3}, {ITEM_2, LOC_A, STOCK_A + 1}};
    inv_hold_opts o = buyer_opts("b1", STOCK_A + 1, NULL); /* the buyer may, the level not */
    inv_hold_failure f = {0};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, lines, 2, &o, &f), INV_EINSUFFICIENT);
    cr_assert_eq(f.item, ITEM_2);
    verify(e);
    cr_assert_eq(take(e, "h2", ITEM_1, 5, "b1", 5), INV_OK); /* item 1's 3 came back */
    verify_and_close(e);
}

/* The sweeper looks at an ended hold when its record comes up on the timing
 * wheel: at its expiry time (or once per wheel span, hold.h), then again at
 * the window's end. A hold that would have expired soon is looked at soon,
 * so the window's end is met within this test's bound. */
Test(hold_life, committed_units_count_until_the_buyer_window_has_passed)
{
    enum { WINDOW_MS = 3000, MARGIN_MS = 100, TTL_MS = 1000 };
    inv_engine *e = open_cfg(NULL, WINDOW_MS);
    stock(e);
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}};
    inv_hold_opts o = buyer_opts("b1", 5, NULL);
    cr_assert_eq(create_ex(e, "h", TTL_MS, lines, 1, &o, NULL), INV_OK);
    inv_hold_line sold = {ITEM_1, LOC_A, 3}; /* 3 sold, 1 released */
    cr_assert_eq(commit_part(e, "h", &sold, 1), INV_OK);
    int64_t committed_at = clock_mono_ms();
    /* within the window: 3 still count, 2 more are allowed, 3 are not
     * (checked when the call surely ran within it: no timing assumed) */
    int rc = take(e, "x", ITEM_1, 3, "b1", 5);
    if (clock_mono_ms() - committed_at < WINDOW_MS - MARGIN_MS)
        cr_assert_eq(rc, INV_ELIMIT);
    if (rc == INV_OK)
        cr_assert_eq(inv_hold_release(e, "x", 1), INV_OK);
    cr_assert_eq(take(e, "y", ITEM_1, 2, "b1", 5), INV_OK);
    cr_assert_eq(inv_hold_release(e, "y", 1), INV_OK);
    /* once the window has passed, the sweeper gives them back */
    rc = INV_ELIMIT;
    for (int64_t t0 = clock_mono_ms(); rc == INV_ELIMIT && clock_mono_ms() - t0 < WAIT_MS;
         tu_sleep_ms(5))
        rc = take(e, "z", ITEM_1, 5, "b1", 5);
    cr_assert_eq(rc, INV_OK, "the sold units still counted after the window");
    cr_assert_geq(clock_mono_ms() - committed_at, WINDOW_MS - MARGIN_MS,
                  "given back before the window");
    verify_and_close(e);
}

/* A buyer window above the largest (HOLD_BUYER_WINDOW_MS_MAX) is the
 * largest, never a negative one (a u64 above INT64_MAX read as int64):
 * the sold units still count once the sweeper has looked at the hold. */
Test(hold_life, a_buyer_window_above_the_largest_is_the_largest)
{
    enum { TTL_MS = 100 };
    inv_engine *e = open_cfg(NULL, UINT64_MAX);
    stock(e);
    inv_hold_line line = {ITEM_1, LOC_A, 3};
    inv_hold_opts o = buyer_opts("b1", 3, NULL);
    cr_assert_eq(create_ex(e, "h", TTL_MS, &line, 1, &o, NULL), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "h", 1), INV_OK);
    /* past its expiry tick and many sweeps: the sweeper has looked at it */
    tu_sleep_ms(TTL_MS + 40 * SWEEP_MS);
    cr_assert_eq(take(e, "x", ITEM_1, 1, "b1", 3), INV_ELIMIT, "the sold units no longer count");
    verify_and_close(e);
}

Test(hold_life, buyer_counts_are_rebuilt_after_a_restart)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "holdlife");
    inv_engine *e = open_cfg(dir, 0);
    stock(e);
    cr_assert_eq(take(e, "held", ITEM_1, 2, "b1", 5), INV_OK);
    cr_assert_eq(take(e, "sold", ITEM_1, 2, "b1", 5), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "sold", 4), INV_OK);
    cr_assert_eq(take(e, "gone", ITEM_1, 1, "b1", 5), INV_OK);
    cr_assert_eq(inv_hold_release(e, "gone", 4), INV_OK);
    inv_close(e);
    for (int round = 0; round < 2; round++) { /* from the journal, then a snapshot */
        e = open_cfg(dir, 0);
        verify(e);
        cr_assert_eq(take(e, "more", ITEM_1, 2, "b1", 5), INV_ELIMIT);
        cr_assert_eq(take(e, "more", ITEM_1, 1, "b1", 5), INV_OK);
        cr_assert_eq(inv_hold_release(e, "more", 4), INV_OK);
        if (round == 0)
            cr_assert_eq(inv_snapshot(e), INV_OK);
        verify_and_close(e);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* Many threads take one unit each for one buyer: exactly LIMIT succeed
 * (nothing is given back meanwhile), and the counters agree with the holds
 * afterwards. Then they release and take again, racing. */
enum { RACE_THREADS = 8, RACE_TRIES = 40, RACE_LIMIT = 50 };

static inv_engine *race_engine;
static _Atomic int race_ok;

static void race_take(void *arg, size_t t)
{
    (void)arg;
    for (int i = 0; i < RACE_TRIES; i++) {
        char id[32];
        snprintf(id, sizeof id, "r%zu-%d", t, i);
        int rc = take(race_engine, id, ITEM_1, 1, "hot", RACE_LIMIT);
        TU_CHECK(rc == INV_OK || rc == INV_ELIMIT, "take: %s", inv_strerror(rc));
        if (rc == INV_OK)
            atomic_fetch_add_explicit(&race_ok, 1, memory_order_relaxed);
    }
}

static void race_churn(void *arg, size_t t)
{
    (void)arg;
    for (int i = 0; i < RACE_TRIES; i++) {
        char id[32];
        snprintf(id, sizeof id, "r%zu-%d", t, i);
        (void)inv_hold_release(race_engine, id, strlen(id));
        snprintf(id, sizeof id, "s%zu-%d", t, i);
        int rc = take(race_engine, id, ITEM_1, 1, "hot", RACE_LIMIT);
        TU_CHECK(rc == INV_OK || rc == INV_ELIMIT, "take: %s", inv_strerror(rc));
    }
}

Test(hold_life, concurrent_creates_of_one_buyer_never_pass_its_limit)
{
    race_engine = open_stocked();
    tu_set_level(race_engine, ITEM_1, LOC_A, 10000);
    atomic_store_explicit(&race_ok, 0, memory_order_relaxed);
    tu_run_threads(RACE_THREADS, race_take, NULL);
    tu_assert_no_failures();
    cr_assert_eq(atomic_load_explicit(&race_ok, memory_order_relaxed), RACE_LIMIT);
    assert_level(race_engine, ITEM_1, LOC_A, 10000 - RACE_LIMIT, RACE_LIMIT);
    verify(race_engine);
    tu_run_threads(RACE_THREADS, race_churn, NULL);
    tu_assert_no_failures();
    verify(race_engine);
    inv_level lv = tu_level_of(race_engine, ITEM_1, LOC_A);
    cr_assert_leq(lv.reserved, RACE_LIMIT, "the buyer holds %" PRId64, lv.reserved);
    inv_close(race_engine);
}

/* Threads create short holds and extend, commit (in part), release or
 * leave them to expire, racing each other's claims and the sweeper. Each
 * hold ends exactly once, and afterwards every unit is where the answers
 * say: available = stock - units sold by acknowledged commits, nothing
 * reserved, every buyer counter the units its committed holds sold. */
enum { CHURN_THREADS = 4, CHURN_ITERS = 400, CHURN_STOCK = 1000000 };

static inv_engine *churn_engine;
static _Atomic int64_t churn_sold[ITEM_3 + 1];

static void churn_worker(void *arg, size_t t)
{
    (void)arg;
    tu_rng rng = tu_rng_seed(0x5eed + t);
    char buyer[8];
    snprintf(buyer, sizeof buyer, "b%zu", t % 2);
    uint64_t iters = tu_iters_min(CHURN_ITERS, 50);
    for (uint64_t i = 0; i < iters; i++) {
        char id[32];
        snprintf(id, sizeof id, "c%zu-%" PRIu64, t, i);
        uint64_t item = ITEM_1 + tu_rng_below(&rng, 3);
        int64_t qty = tu_rng_range(&rng, 1, 3);
        inv_hold_line line = {item, LOC_A, qty};
        inv_hold_opts o = buyer_opts(buyer, 0, NULL);
        uint64_t ttl = (uint64_t)tu_rng_range(&rng, 1, 20);
        int rc = create_ex(churn_engine, id, ttl, &line, 1, &o, NULL);
        TU_CHECK(rc == INV_OK, "create %s: %s", id, inv_strerror(rc));
        if (rc != INV_OK)
            continue;
        uint64_t action = tu_rng_below(&rng, 4); /* extend and commit, commit, release, none */
        if (action == 0) {
            rc = inv_hold_extend(churn_engine, id, strlen(id), (uint64_t)tu_rng_range(&rng, 1, 30));
            TU_CHECK(rc == INV_OK || rc == INV_ENOTFOUND, "extend %s: %s", id, inv_strerror(rc));
        }
        if (action <= 1) {
            inv_hold_line sold = {item, LOC_A, tu_rng_range(&rng, 1, qty)};
            rc = commit_part(churn_engine, id, &sold, 1);
            TU_CHECK(rc == INV_OK || rc == INV_ENOTFOUND, "commit %s: %s", id, inv_strerror(rc));
            if (rc == INV_OK)
                atomic_fetch_add_explicit(&churn_sold[item], sold.qty, memory_order_relaxed);
        } else if (action == 2) {
            rc = inv_hold_release(churn_engine, id, strlen(id));
            TU_CHECK(rc == INV_OK, "release %s: %s", id, inv_strerror(rc));
        }
    }
}

Test(hold_life, extends_commits_releases_and_expiry_racing_keep_every_unit)
{
    churn_engine = open_stocked();
    for (uint64_t item = ITEM_1; item <= ITEM_3; item++) {
        tu_set_level(churn_engine, item, LOC_A, CHURN_STOCK);
        atomic_store_explicit(&churn_sold[item], 0, memory_order_relaxed);
    }
    tu_run_threads(CHURN_THREADS, churn_worker, NULL);
    tu_assert_no_failures();
    /* every hold left expires soon: wait for it (bounded) */
    inv_stats st = tu_stats_of(churn_engine);
    for (int64_t t0 = clock_mono_ms(); st.holds_active != 0 && clock_mono_ms() - t0 < WAIT_MS;
         tu_sleep_ms(5))
        st = tu_stats_of(churn_engine);
    cr_assert_eq(st.holds_active, 0, "%" PRIu64 " holds never ended", st.holds_active);
    cr_assert_eq(st.holds_created, st.holds_committed + st.holds_released + st.holds_expired);
    for (uint64_t item = ITEM_1; item <= ITEM_3; item++)
        assert_level(churn_engine, item, LOC_A,
                     CHURN_STOCK - atomic_load_explicit(&churn_sold[item], memory_order_relaxed),
                     0);
    verify_and_close(churn_engine);
}

/* ---- batches ----------------------------------------------------------------------- */

static inv_batch_line hold_line(inv_batch_op op, const char *id)
{
    inv_batch_line l;
    memset(&l, 0, sizeof l);
    l.op = op;
    l.floor = INV_NO_FLOOR;
    l.hold_id = id;
    l.hold_id_len = strlen(id);
    return l;
}

static inv_batch_line failing_line(void)
{
    inv_batch_line l = hold_line(INV_BATCH_LEVEL_ADJUST, "x");
    l.hold_id = NULL;
    l.hold_id_len = 0;
    l.item = ITEM_3;
    l.location = LOC_A;
    l.qty = -(STOCK_A + 1);
    l.floor = 0;
    return l;
}

Test(hold_life, a_batch_extends_and_commits_part_of_holds_all_or_nothing)
{
    inv_engine *e = open_stocked();
    inv_hold_line a = {ITEM_1, LOC_A, 4}, b = {ITEM_2, LOC_A, 3};
    cr_assert_eq(create_ex(e, "ext", SHORT_TTL_MS * 10, &a, 1, NULL, NULL), INV_OK);
    cr_assert_eq(create_ex(e, "part", LONG_TTL_MS, &b, 1, NULL, NULL), INV_OK);
    int64_t expires = info_of(e, "ext").expires_at_ms;
    inv_hold_line sold = {ITEM_2, LOC_A, 1};
    inv_batch_line lines[3] = {hold_line(INV_BATCH_HOLD_EXTEND, "ext"),
                               hold_line(INV_BATCH_HOLD_COMMIT, "part"), failing_line()};
    lines[0].ttl_ms = LONG_TTL_MS;
    lines[1].hold_lines = &sold;
    lines[1].n_hold_lines = 1;
    inv_batch_result res[3];
    size_t failed = 99;
    cr_assert_eq(inv_batch(e, lines, 3, res, &failed), INV_EINSUFFICIENT);
    cr_assert_eq(failed, 2);
    cr_assert_eq(info_of(e, "ext").expires_at_ms, expires);
    cr_assert_eq(info_of(e, "part").state, INV_HOLD_HELD);
    assert_level(e, ITEM_2, LOC_A, STOCK_A - 3, 3);
    verify(e);
    cr_assert_eq(inv_batch(e, lines, 2, res, &failed), INV_OK);
    cr_assert_gt(info_of(e, "ext").expires_at_ms, expires);
    inv_hold_info part = info_of(e, "part");
    cr_assert_eq(part.state, INV_HOLD_COMMITTED);
    cr_assert_eq(part.committed[0], 1);
    assert_level(e, ITEM_2, LOC_A, STOCK_A - 1, 0);
    /* a retried partial commit in a batch answers OK; another conflicts */
    cr_assert_eq(inv_batch(e, &lines[1], 1, res, &failed), INV_OK);
    sold.qty = 2;
    cr_assert_eq(inv_batch(e, &lines[1], 1, res, &failed), INV_ECONFLICT);
    verify_and_close(e);
}

Test(hold_life, a_failed_batch_gives_back_the_buyer_units_of_its_create)
{
    inv_engine *e = open_stocked();
    inv_hold_line a = {ITEM_1, LOC_A, 3};
    inv_batch_line lines[2] = {hold_line(INV_BATCH_HOLD_CREATE, "h"), failing_line()};
    lines[0].ttl_ms = LONG_TTL_MS;
    lines[0].hold_lines = &a;
    lines[0].n_hold_lines = 1;
    lines[0].buyer = "b1";
    lines[0].buyer_len = 2;
    lines[0].buyer_limit = 5;
    lines[0].order_ref = "o-1";
    lines[0].order_ref_len = 3;
    inv_batch_result res[2];
    cr_assert_eq(inv_batch(e, lines, 2, res, NULL), INV_EINSUFFICIENT);
    verify(e);
    cr_assert_eq(take(e, "all", ITEM_1, 5, "b1", 5), INV_OK);
    cr_assert_eq(inv_hold_release(e, "all", 3), INV_OK);
    /* alone, the line applies with its attributes; over the limit it fails */
    cr_assert_eq(inv_batch(e, lines, 1, res, NULL), INV_OK);
    inv_hold_info info = info_of(e, "h");
    cr_assert_str_eq(info.buyer, "b1");
    cr_assert_str_eq(info.order_ref, "o-1");
    lines[0].hold_id = "h2";
    lines[0].hold_id_len = 2;
    size_t failed = 99;
    cr_assert_eq(inv_batch(e, lines, 1, res, &failed), INV_ELIMIT);
    cr_assert_eq(failed, 0);
    cr_assert_eq(res[0].hold_failure.item, ITEM_1);
    cr_assert_eq(res[0].hold_failure.available, 6);
    verify_and_close(e);
}

Test(hold_life, batch_hold_lines_are_checked_before_anything_changes)
{
    inv_engine *e = open_stocked();
    inv_hold_line a = {ITEM_1, LOC_A, 3};
    cr_assert_eq(create_ex(e, "h", LONG_TTL_MS, &a, 1, NULL, NULL), INV_OK);
    inv_batch_line ext = hold_line(INV_BATCH_HOLD_EXTEND, "h");
    cr_assert_eq(inv_batch(e, &ext, 1, NULL, NULL), INV_EINVALID); /* ttl 0 */
    ext.ttl_ms = INV_HOLD_TTL_MS_MAX + 1;
    cr_assert_eq(inv_batch(e, &ext, 1, NULL, NULL), INV_ELIMIT);
    inv_batch_line rel = hold_line(INV_BATCH_HOLD_RELEASE, "h");
    rel.hold_lines = &a;
    rel.n_hold_lines = 1;
    cr_assert_eq(inv_batch(e, &rel, 1, NULL, NULL), INV_EINVALID); /* lines on a release */
    inv_batch_line com = hold_line(INV_BATCH_HOLD_COMMIT, "h");
    inv_hold_line too_many = {ITEM_1, LOC_A, 4};
    com.hold_lines = &too_many;
    com.n_hold_lines = 1;
    cr_assert_eq(inv_batch(e, &com, 1, NULL, NULL), INV_EINVALID);
    cr_assert_eq(info_of(e, "h").state, INV_HOLD_HELD);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 3, 3);
    verify_and_close(e);
}

/* ---- durability ---------------------------------------------------------------------- */

Test(hold_life, attributes_commits_and_extends_survive_restarts_from_journal_and_snapshot)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "holdlife");
    inv_engine *e = open_cfg(dir, 0);
    stock(e);
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_A, 3}, {ITEM_3, LOC_B, 2}};
    inv_hold_opts o = buyer_opts("buyer", 0, "order");
    cr_assert_eq(create_ex(e, "part", LONG_TTL_MS, lines, 3, &o, NULL), INV_OK);
    cr_assert_eq(create_ex(e, "ext", LONG_TTL_MS, lines, 1, NULL, NULL), INV_OK);
    inv_hold_line sold[] = {{ITEM_1, LOC_A, 1}, {ITEM_3, LOC_B, 2}};
    cr_assert_eq(commit_part(e, "part", sold, 2), INV_OK);
    cr_assert_eq(inv_hold_extend(e, "ext", 3, 3 * LONG_TTL_MS), INV_OK);
    /* and through batches */
    cr_assert_eq(create_ex(e, "bpart", LONG_TTL_MS, &lines[1], 1, NULL, NULL), INV_OK);
    inv_hold_line bsold = {ITEM_2, LOC_A, 2};
    inv_batch_line bl = hold_line(INV_BATCH_HOLD_COMMIT, "bpart");
    bl.hold_lines = &bsold;
    bl.n_hold_lines = 1;
    cr_assert_eq(inv_batch(e, &bl, 1, NULL, NULL), INV_OK);
    inv_hold_info part = info_of(e, "part"), ext = info_of(e, "ext"), bpart = info_of(e, "bpart");
    inv_level l1 = tu_level_of(e, ITEM_1, LOC_A), l2 = tu_level_of(e, ITEM_2, LOC_A);
    inv_close(e);
    for (int round = 0; round < 2; round++) { /* the journal, then a snapshot */
        e = open_cfg(dir, 0);
        inv_hold_info p = info_of(e, "part"), x = info_of(e, "ext"), b = info_of(e, "bpart");
        cr_assert_eq(p.state, INV_HOLD_COMMITTED);
        cr_assert(memcmp(p.committed, part.committed, sizeof p.committed) == 0);
        cr_assert_str_eq(p.buyer, "buyer");
        cr_assert_str_eq(p.order_ref, "order");
        cr_assert_eq(p.created_at_ms, part.created_at_ms);
        cr_assert_eq(x.state, INV_HOLD_HELD);
        cr_assert_eq(x.expires_at_ms, ext.expires_at_ms);
        cr_assert_eq(b.state, INV_HOLD_COMMITTED);
        cr_assert_eq(b.committed[0], bpart.committed[0]);
        inv_level m1 = tu_level_of(e, ITEM_1, LOC_A), m2 = tu_level_of(e, ITEM_2, LOC_A);
        cr_assert(m1.available == l1.available && m1.reserved == l1.reserved);
        cr_assert(m2.available == l2.available && m2.reserved == l2.reserved);
        if (round == 0)
            cr_assert_eq(inv_snapshot(e), INV_OK);
        verify_and_close(e);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* The child's hook: a commit is one record since issue 17 (#11: its lines
 * change as one step, so it never publishes a partial record); the child
 * dies just before that record, once everything before it is durable, so
 * the crash cuts the commit after its decision and before its record. */
static inv_engine *cut_engine;
static _Atomic int cut_decided;

static void cut_point(int at, uint64_t pos)
{
    (void)pos;
    if (at == HOLD_TEST_END_DECIDED)
        atomic_store_explicit(&cut_decided, 1, memory_order_relaxed);
}

static void cut_hook(uint8_t type)
{
    if (type != PERSIST_HOLD || !atomic_load_explicit(&cut_decided, memory_order_relaxed))
        return;
    raise(SIGKILL);
}

static void cut_child(const char *dir)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    inv_config cfg = {.data_dir = dir, .fsync_policy = INV_FSYNC_ALWAYS};
    if (inv_open(&cut_engine, &cfg) != INV_OK)
        _exit(2);
    tu_hold_point(cut_point);
    tu_before_publish(cut_hook);
    inv_hold_line sold[] = {{ITEM_1, LOC_A, 1}, {ITEM_2, LOC_A, 2}};
    (void)inv_hold_commit_partial(cut_engine, "cut", 3, sold, 2);
    _exit(7); /* the hook kills us first */
}

Test(hold_life, a_partial_commit_cut_by_a_crash_leaves_the_hold_whole_and_committable)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "holdlife");
    inv_engine *e = open_cfg(dir, 0);
    stock(e);
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 4}, {ITEM_2, LOC_A, 3}};
    inv_hold_opts o = buyer_opts("b1", 9, NULL);
    cr_assert_eq(create_ex(e, "cut", LONG_TTL_MS, lines, 2, &o, NULL), INV_OK);
    inv_close(e); /* no engine open while forking */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        cut_child(dir);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the child did not die in its hook (status %#x)", (unsigned)status);
    for (int round = 0; round < 2; round++) { /* the commit is journaled: twice */
        e = open_cfg(dir, 0);
        inv_hold_info info = info_of(e, "cut");
        if (round == 0) {
            /* nothing of the cut commit survived: the hold is whole */
            cr_assert_eq(info.state, INV_HOLD_HELD);
            assert_level(e, ITEM_1, LOC_A, STOCK_A - 4, 4);
            assert_level(e, ITEM_2, LOC_A, STOCK_A - 3, 3);
            inv_hold_line sold[] = {{ITEM_1, LOC_A, 1}, {ITEM_2, LOC_A, 2}};
            cr_assert_eq(inv_hold_commit_partial(e, "cut", 3, sold, 2), INV_OK);
            info = info_of(e, "cut");
        }
        cr_assert_eq(info.state, INV_HOLD_COMMITTED);
        cr_assert_eq(info.committed[0], 1);
        cr_assert_eq(info.committed[1], 2);
        assert_level(e, ITEM_1, LOC_A, STOCK_A - 1, 0);
        assert_level(e, ITEM_2, LOC_A, STOCK_A - 2, 0);
        verify(e);
        /* the buyer counts its 3 sold units (item 1: 1, item 2: 2) */
        cr_assert_eq(take(e, "more", ITEM_2, 8, "b1", 9), INV_ELIMIT);
        cr_assert_eq(take(e, "more", ITEM_2, 7, "b1", 9), INV_OK);
        cr_assert_eq(inv_hold_release(e, "more", 4), INV_OK);
        verify_and_close(e);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* Id reuse across a crash (issue 17, fix 2). A release of "re" stalls
 * after deciding (RELEASED in memory, its level change not made); a new
 * create of "re" on the same level takes a newer revision there, so the
 * release publishes a partial record and its final record lands after the
 * new create's. Replay must keep the new hold, not the old one's end: the
 * records carry each hold's incarnation. */
static inv_engine *reuse_engine;
static _Atomic int reuse_stalled, reuse_go;

static void reuse_hook(int at, uint64_t pos)
{
    (void)pos;
    int no = 0;
    /* relaxed: a one-shot claim; the flags below carry the handshake. */
    if (at != HOLD_TEST_END_DECIDED ||
        !atomic_compare_exchange_strong_explicit(&reuse_stalled, &no, 1, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    (void)tu_wait_at_least(&reuse_go, 1, WAIT_MS);
}

static void *reuse_release(void *arg)
{
    (void)arg;
    intptr_t rc = inv_hold_release(reuse_engine, "re", 2);
    return (void *)rc;
}

static _Atomic int snap_started;

/* FAULT_SNAPSHOT_OPEN's hook: the snapshot chose its start position. */
static int snap_open_hook(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    (void)ctx, (void)site, (void)call, (void)arg, (void)arg2;
    /* release: the main thread goes on once the start is chosen. */
    atomic_store_explicit(&snap_started, 1, memory_order_release);
    return 0;
}

static void *reuse_snapshot(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)inv_snapshot(reuse_engine);
}

/* The race of the test below; with_snapshot: a snapshot starts while the
 * release is stalled (its start below the release's records, its scan
 * seeing the new hold), so replay reads the late end over the snapshot's
 * state of the new hold. */
static void reuse_id_race(bool with_snapshot)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "holdreuse");
    /* fsync none: the new create is acknowledged when applied (under
     * always it would wait for the stalled release's record) */
    inv_engine *e = reuse_engine = tu_open_dir(dir, INV_FSYNC_NONE);
    stock(e);
    inv_hold_line line = {ITEM_1, LOC_A, 1};
    cr_assert_eq(inv_hold_create(e, "re", 2, LONG_TTL_MS, &line, 1, NULL), INV_OK);
    atomic_store_explicit(&reuse_stalled, 0, memory_order_relaxed);
    atomic_store_explicit(&reuse_go, 0, memory_order_relaxed);
    atomic_store_explicit(&snap_started, 0, memory_order_relaxed);
    tu_hold_point(reuse_hook);
    pthread_t th, snap;
    cr_assert_eq(pthread_create(&th, NULL, reuse_release, NULL), 0);
    cr_assert(tu_wait_at_least(&reuse_stalled, 1, WAIT_MS), "the release never decided");
    /* The old hold is RELEASED in memory: the id may be used again. */
    cr_assert_eq(inv_hold_create(e, "re", 2, LONG_TTL_MS, &line, 1, NULL), INV_OK);
    if (with_snapshot) {
        fault_hook(FAULT_SNAPSHOT_OPEN, snap_open_hook, NULL);
        cr_assert_eq(pthread_create(&snap, NULL, reuse_snapshot, NULL), 0);
        cr_assert(tu_wait_at_least(&snap_started, 1, WAIT_MS), "the snapshot never started");
    }
    /* release: lets the stalled release go on. */
    atomic_store_explicit(&reuse_go, 1, memory_order_release);
    void *out;
    pthread_join(th, &out);
    cr_assert_eq((intptr_t)out, INV_OK, "release: %s", inv_strerror((int)(intptr_t)out));
    if (with_snapshot) {
        pthread_join(snap, &out);
        cr_assert_eq((intptr_t)out, INV_OK, "snapshot: %s", inv_strerror((int)(intptr_t)out));
    }
    fault_reset();
    cr_assert_eq(info_of(e, "re").state, INV_HOLD_HELD);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 1, 1);
    verify_and_close(e);
    for (int round = 0; round < 2; round++) { /* the second: from the first's journal on */
        e = open_cfg(dir, 0);
        cr_assert_eq(info_of(e, "re").state, INV_HOLD_HELD, "round %d: the new hold is gone",
                     round);
        assert_level(e, ITEM_1, LOC_A, STOCK_A - 1, 1);
        verify(e);
        if (round == 1) {
            cr_assert_eq(inv_hold_release(e, "re", 2), INV_OK);
            assert_level(e, ITEM_1, LOC_A, STOCK_A, 0);
        }
        verify_and_close(e);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
}

Test(hold_life, a_late_end_of_a_reused_id_does_not_replace_the_new_hold_on_replay)
{
    reuse_id_race(false);
}

Test(hold_life, a_late_end_of_a_reused_id_does_not_replace_the_new_hold_of_a_snapshot)
{
    reuse_id_race(true);
}

/* ---- a snapshot racing a partial commit ---------------------------------- */

/* FAULT_HOLD_SNAPSHOT's points (its arg, as core/hold.c numbers them). */
enum { SNAP_POINT_STATE = 1, SNAP_POINT_ENCODED = 2, SNAP_POINT_LINE_SOLD = 3 };

static inv_engine *race_snap_engine;
static _Atomic int race_state_read, race_line_sold, race_encoded;

/* The snapshot reads the hold's state (HELD) and waits until the commit
 * has stored a line SOLD; the commit waits there, before the line is
 * ENDED, until the snapshot has encoded the hold's lines. */
static int snap_race_hook(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    (void)ctx, (void)site, (void)call;
    /* release/acquire (tu_wait_at_least): each side goes on once the
     * other has reached its point. */
    if (arg == SNAP_POINT_STATE && arg2 == INV_HOLD_HELD) {
        atomic_store_explicit(&race_state_read, 1, memory_order_release);
        (void)tu_wait_at_least(&race_line_sold, 1, WAIT_MS);
    } else if (arg == SNAP_POINT_ENCODED) {
        atomic_store_explicit(&race_encoded, 1, memory_order_release);
    } else if (arg == SNAP_POINT_LINE_SOLD) {
        atomic_store_explicit(&race_line_sold, 1, memory_order_release);
        (void)tu_wait_at_least(&race_encoded, 1, WAIT_MS);
    }
    return 0;
}

static void *race_snapshot(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)inv_snapshot(race_snap_engine);
}

static void assert_sold_one_of_four(inv_engine *e)
{
    inv_hold_info info = info_of(e, "part");
    cr_assert_eq(info.state, INV_HOLD_COMMITTED, "state %d", (int)info.state);
    cr_assert_eq(info.committed[0], 1);
    assert_level(e, ITEM_1, LOC_A, STOCK_A - 1, 0);
    verify(e);
}

/* A snapshot that read a hold HELD, then its lines while a partial commit
 * had sold one (SOLD) and not yet ended it, must still open, with the
 * commit replayed from the journal: the record it wrote for the hold
 * (HELD with a SOLD line) was refused on load, and recovery refused to
 * open the data directory. */
Test(hold_life, a_snapshot_racing_a_partial_commit_reopens_with_the_commit)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "holdsnap");
    inv_engine *e = race_snap_engine = open_cfg(dir, 0);
    stock(e);
    inv_hold_line line = {ITEM_1, LOC_A, 4};
    cr_assert_eq(create_ex(e, "part", LONG_TTL_MS, &line, 1, NULL, NULL), INV_OK);
    atomic_store_explicit(&race_state_read, 0, memory_order_relaxed);
    atomic_store_explicit(&race_line_sold, 0, memory_order_relaxed);
    atomic_store_explicit(&race_encoded, 0, memory_order_relaxed);
    fault_hook(FAULT_HOLD_SNAPSHOT, snap_race_hook, NULL);
    pthread_t snap;
    cr_assert_eq(pthread_create(&snap, NULL, race_snapshot, NULL), 0);
    cr_assert(tu_wait_at_least(&race_state_read, 1, WAIT_MS), "the snapshot never read the hold");
    inv_hold_line sold = {ITEM_1, LOC_A, 1};
    int rc = commit_part(e, "part", &sold, 1);
    void *out;
    pthread_join(snap, &out);
    fault_reset();
    cr_assert_eq(rc, INV_OK, "commit: %s", inv_strerror(rc));
    cr_assert_eq((intptr_t)out, INV_OK, "snapshot: %s", inv_strerror((int)(intptr_t)out));
    /* relaxed: the threads were joined. */
    cr_assert(atomic_load_explicit(&race_line_sold, memory_order_relaxed) &&
                  atomic_load_explicit(&race_encoded, memory_order_relaxed),
              "the race's points did not run");
    assert_sold_one_of_four(e);
    inv_close(e);
    for (int round = 0; round < 2; round++) { /* the snapshot, then a new one */
        inv_config cfg = {.data_dir = dir, .fsync_policy = INV_FSYNC_ALWAYS};
        e = NULL;
        rc = inv_open(&e, &cfg);
        cr_assert_eq(rc, INV_OK, "round %d: the data directory does not open: %s", round,
                     inv_strerror(rc));
        assert_sold_one_of_four(e);
        if (round == 0)
            cr_assert_eq(inv_snapshot(e), INV_OK);
        inv_close(e);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* SIGKILL trials: a child churns holds with buyers (creates, extends,
 * partial commits, releases, expiry, and batches of them) until killed at
 * a random moment. Recovered, whatever survived must add up: every
 * level's available + reserved + the units its committed holds sold is
 * its stock, reserved is its HELD holds' lines, and every buyer counter
 * is what its holds count. No bookkeeping needed: the holds say it all
 * (none is forgotten within the test). */
enum {
    KILL_TRIALS = 6,
    KILL_THREADS = 2,
    KILL_ITERS_MAX = 20000, /* per thread: ids k<t>-<i>, i below this */
    KILL_DELAY_MS_MIN = 20,
    KILL_DELAY_MS_MAX = 200,
    KILL_STOCK = 100000,
    KILL_LIMIT = 400, /* reached in some trials: refusals are exercised too */
};

static inv_engine *kill_engine;

static void *kill_worker(void *p)
{
    size_t t = (size_t)(uintptr_t)p;
    tu_rng rng = tu_rng_seed(0xdead + t + (uint64_t)getpid());
    char buyer[8];
    snprintf(buyer, sizeof buyer, "k%zu", t);
    for (int i = 0; i < KILL_ITERS_MAX; i++) {
        char id[32];
        snprintf(id, sizeof id, "k%zu-%d", t, i);
        uint64_t item = ITEM_1 + tu_rng_below(&rng, 3);
        int64_t qty = tu_rng_range(&rng, 1, 4);
        inv_hold_line lines[] = {{item, LOC_A, qty}, {item, LOC_B, 1}};
        inv_hold_opts o = buyer_opts(buyer, KILL_LIMIT, "ord");
        if (create_ex(kill_engine, id, (uint64_t)tu_rng_range(&rng, 1, 50), lines,
                      1 + tu_rng_below(&rng, 2), &o, NULL) != INV_OK)
            continue; /* a buyer over its limit */
        inv_hold_line sold = {item, LOC_A, tu_rng_range(&rng, 1, qty)};
        switch (tu_rng_below(&rng, 5)) {
        case 0:
            (void)inv_hold_extend(kill_engine, id, strlen(id), (uint64_t)tu_rng_range(&rng, 1, 50));
            break;
        case 1:
            (void)commit_part(kill_engine, id, &sold, 1);
            break;
        case 2:
            (void)inv_hold_release(kill_engine, id, strlen(id));
            break;
        case 3: {
            inv_batch_line bl[2] = {hold_line(INV_BATCH_HOLD_EXTEND, id),
                                    hold_line(INV_BATCH_LEVEL_ADJUST, "x")};
            bl[0].ttl_ms = 30;
            bl[1].hold_id = NULL;
            bl[1].hold_id_len = 0;
            bl[1].item = item;
            bl[1].location = LOC_B;
            bl[1].qty = 0; /* a no-op line: the batch has a level change too */
            (void)inv_batch(kill_engine, bl, 2, NULL, NULL);
            inv_batch_line bc = hold_line(INV_BATCH_HOLD_COMMIT, id);
            bc.hold_lines = &sold;
            bc.n_hold_lines = 1;
            (void)inv_batch(kill_engine, &bc, 1, NULL, NULL);
            break;
        }
        default:
            break; /* left to expire */
        }
    }
    return NULL;
}

static void kill_child(const char *dir, int ready_fd)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    inv_config cfg = {.data_dir = dir, .fsync_policy = INV_FSYNC_NONE, .sweep_interval_ms = 1};
    if (inv_open(&kill_engine, &cfg) != INV_OK)
        _exit(2);
    pthread_t tids[KILL_THREADS];
    for (size_t t = 0; t < KILL_THREADS; t++)
        if (pthread_create(&tids[t], NULL, kill_worker, (void *)(uintptr_t)t) != 0)
            _exit(3);
    if (write(ready_fd, "r", 1) != 1)
        _exit(4);
    for (size_t t = 0; t < KILL_THREADS; t++)
        pthread_join(tids[t], NULL);
    _exit(0); /* finished before the kill: fine, the check is the same */
}

/* available + reserved + sold by committed holds, per (item, location). */
static void check_units_add_up(inv_engine *e, unsigned trial)
{
    int64_t sold[ITEM_3 + 1][2] = {{0}};
    size_t found = 0, committed = 0;
    for (size_t t = 0; t < KILL_THREADS; t++)
        for (int i = 0; i < KILL_ITERS_MAX; i++) {
            char id[32];
            snprintf(id, sizeof id, "k%zu-%d", t, i);
            inv_hold_info info;
            if (inv_hold_get(e, id, strlen(id), &info) != INV_OK)
                continue;
            found++;
            if (info.state != INV_HOLD_COMMITTED)
                continue;
            committed++;
            for (size_t j = 0; j < info.n_lines; j++)
                sold[info.lines[j].item][info.lines[j].location == LOC_B] += info.committed[j];
        }
    cr_log_info("trial %u: %zu holds recovered, %zu committed", trial, found, committed);
    for (uint64_t item = ITEM_1; item <= ITEM_3; item++)
        for (int b = 0; b < 2; b++) {
            inv_level lv = tu_level_of(e, item, b ? LOC_B : LOC_A);
            cr_assert_eq(lv.available + lv.reserved + sold[item][b], KILL_STOCK,
                         "trial %u: item %d loc %d: %" PRId64 " + %" PRId64 " + %" PRId64
                         " sold != stock",
                         trial, (int)item, b, lv.available, lv.reserved, sold[item][b]);
        }
}

Test(hold_life, sigkill_during_a_lifecycle_churn_leaves_units_and_buyer_counts_adding_up,
     .timeout = 120)
{
    tu_rng rng = tu_rng_seed(0x4b111);
    for (unsigned trial = 0; trial < tu_iters_min(KILL_TRIALS, 2); trial++) {
        char dir[64];
        tu_tmpdir(dir, sizeof dir, "holdlife");
        inv_engine *e = open_cfg(dir, 0);
        stock(e);
        for (uint64_t item = ITEM_1; item <= ITEM_3; item++) {
            tu_set_level(e, item, LOC_A, KILL_STOCK);
            tu_set_level(e, item, LOC_B, KILL_STOCK);
        }
        inv_close(e); /* no engine open while forking */
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            kill_child(dir, fds[1]);
        }
        close(fds[1]);
        char c;
        cr_assert_eq(read(fds[0], &c, 1), 1, "trial %u: the child did not start", trial);
        close(fds[0]);
        tu_sleep_ms((unsigned)tu_rng_range(&rng, KILL_DELAY_MS_MIN, KILL_DELAY_MS_MAX));
        kill(pid, SIGKILL);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "trial %u: the child failed (status %#x)", trial, (unsigned)status);
        for (int round = 0; round < 2; round++) { /* recovery's own finish is journaled */
            e = open_cfg(dir, 0);
            /* Every hold of the child expires within 50 ms of its last
             * change: wait for the sweep to end them all (an event, with a
             * bound), so no expiry runs beside the checks below (they need
             * no hold change in flight). */
            inv_stats st = tu_stats_of(e);
            for (int64_t t0 = clock_mono_ms();
                 st.holds_active != 0 && clock_mono_ms() - t0 < WAIT_MS; tu_sleep_ms(5))
                st = tu_stats_of(e);
            cr_assert_eq(st.holds_active, 0, "trial %u: %" PRIu64 " holds never expired", trial,
                         st.holds_active);
            check_units_add_up(e, trial);
            verify_and_close(e);
        }
        cr_assert_eq(tu_remove_tree(dir), 0);
    }
}

/* ---- records read back: the first format, and hostile ones ----------------------------- */

/* A PERSIST_HOLD payload as the first format (version 0) wrote it: a
 * 104-byte header, then lines of (item, location, qty, u64 status); no
 * images, no tail. */
typedef struct {
    uint8_t kind, target, final, id_len;
    uint16_t n_lines, n_images;
    uint32_t version;
    int64_t expires_at_ms;
    uint64_t last_pos;
    int64_t ended_at_ms;
    char id[INV_HOLD_ID_MAX];
} rec_header;

typedef struct {
    uint64_t item, location;
    int64_t qty;
    uint64_t status;
} rec_line;

enum {
    REC_STATE = 3,
    REC_LINE_ENDED = 4,
    REC_LINE_SOLD = 5,
    REC_IMAGES_PER_LINE = 2,
    REC_IMAGE = 24,
    REC_TAIL = 16
};

/* n lines of a version-0 STATE record of a hold in state target. */
static size_t v0_record(uint8_t *buf, const char *id, uint8_t target, const rec_line *lines,
                        size_t n)
{
    rec_header h;
    memset(&h, 0, sizeof h);
    h.kind = REC_STATE;
    h.target = target;
    h.final = 1;
    h.id_len = (uint8_t)strlen(id);
    h.n_lines = (uint16_t)n;
    h.expires_at_ms = clock_wall_ms(); /* ended just now: kept a while */
    h.ended_at_ms = clock_wall_ms();
    memcpy(h.id, id, strlen(id));
    size_t len = sizeof h + n * (sizeof *lines + REC_IMAGES_PER_LINE * REC_IMAGE);
    memset(buf, 0, len);
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, lines, n * sizeof *lines);
    return len;
}

Test(hold_life, records_of_the_first_format_are_read_as_whole_commits)
{
    _Static_assert(sizeof(rec_header) == 104 && sizeof(rec_line) == 32, "format 0 layout");
    inv_engine *e = open_stocked();
    uint8_t buf[1024];
    rec_line lines[] = {{ITEM_1, LOC_A, 4, REC_LINE_ENDED}, {ITEM_2, LOC_A, 2, REC_LINE_ENDED}};
    size_t len = v0_record(buf, "old", INV_HOLD_COMMITTED, lines, 2);
    /* as recovery would (the engine has no hold yet: nothing races it) */
    cr_assert_eq(hold_replay(e, 0, buf, (uint32_t)len), INV_OK);
    cr_assert_eq(hold_recover_finish(e), INV_OK);
    inv_hold_info info = info_of(e, "old");
    cr_assert_eq(info.state, INV_HOLD_COMMITTED);
    cr_assert_eq(info.committed[0], 4);
    cr_assert_eq(info.committed[1], 2);
    cr_assert_str_eq(info.buyer, "");
    cr_assert_eq(info.created_at_ms, 0);
    cr_assert_eq(inv_hold_commit(e, "old", 3), INV_OK); /* a retry of the whole commit */
    inv_hold_line part = {ITEM_1, LOC_A, 1};
    cr_assert_eq(commit_part(e, "old", &part, 1), INV_ECONFLICT);
    verify_and_close(e);
}

Test(hold_life, hostile_hold_records_are_refused)
{
    inv_engine *e = open_stocked();
    uint8_t buf[1024];
    rec_line sold_released[] = {{ITEM_1, LOC_A, 4, REC_LINE_SOLD}};
    size_t len = v0_record(buf, "bad", INV_HOLD_RELEASED, sold_released, 1);
    cr_assert_eq(hold_replay(e, 0, buf, (uint32_t)len), INV_EINVALID); /* SOLD in format 0 */
    rec_line fine[] = {{ITEM_1, LOC_A, 4, REC_LINE_ENDED}};
    len = v0_record(buf, "bad", INV_HOLD_COMMITTED, fine, 1);
    rec_header h;
    memcpy(&h, buf, sizeof h);
    /* format 1 without room for its tail */
    h.version = 1;
    memcpy(buf, &h, sizeof h);
    cr_assert_eq(hold_replay(e, 0, buf, (uint32_t)len), INV_EINVALID);
    /* format 1 with a tail: a buyer longer than the limit, then committed
     * above the line's qty, then units sold on a released hold */
    uint8_t tail[REC_TAIL] = {0};
    tail[8] = INV_BUYER_ID_MAX + 1;
    memcpy(buf + len, tail, sizeof tail);
    size_t len1 = len + sizeof tail + ((INV_BUYER_ID_MAX + 1 + 7) & ~7u);
    memset(buf + len + sizeof tail, 'b', len1 - len - sizeof tail);
    cr_assert_eq(hold_replay(e, 0, buf, (uint32_t)len1), INV_EINVALID);
    tail[8] = 0;
    memcpy(buf + len, tail, sizeof tail);
    rec_line over = {ITEM_1, LOC_A, 4, REC_LINE_ENDED | (5ULL << 32)};
    memcpy(buf + sizeof h, &over, sizeof over);
    cr_assert_eq(hold_replay(e, 0, buf, (uint32_t)(len + sizeof tail)), INV_EINVALID);
    rec_line released_sold = {ITEM_1, LOC_A, 4, REC_LINE_ENDED | (2ULL << 32)};
    memcpy(buf + sizeof h, &released_sold, sizeof released_sold);
    h.target = INV_HOLD_RELEASED;
    memcpy(buf, &h, sizeof h);
    cr_assert_eq(hold_replay(e, 0, buf, (uint32_t)(len + sizeof tail)), INV_EINVALID);
    /* the same, committed: a valid format-1 record */
    h.target = INV_HOLD_COMMITTED;
    memcpy(buf, &h, sizeof h);
    cr_assert_eq(hold_replay(e, 0, buf, (uint32_t)(len + sizeof tail)), INV_OK);
    cr_assert_eq(hold_recover_finish(e), INV_OK);
    cr_assert_eq(info_of(e, "bad").committed[0], 2);
    verify_and_close(e);
}
