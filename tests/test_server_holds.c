/*
 * test_server_holds.c — integration: the hold lifecycle commands of
 * PROTOCOL.md ("Holds") against a real build/invcored
 * (test_server_harness.h): HOLD.CREATE's options (BUYER, LIMIT, ORDER) and
 * the buyer limit's refusal, HOLD.COMMIT with lines (a partial commit),
 * HOLD.EXTEND, HOLD.LIST, HOLD.GET's attributes; each inside MULTI / EXEC
 * (all or nothing); argument errors; and a restart that keeps it all.
 */
#include "test_server_harness.h"

static void setup(void)
{
    srv_suite_start(NULL);
}
static void teardown(void)
{
    srv_suite_stop();
}

TestSuite(server_holds, .init = setup, .fini = teardown, .timeout = 60);

/* Items 10, 11 at location 1 with 10 units each, and at location 2 with 5. */
static void seed(redisContext *c)
{
    expect_status(c, "OK", "LOC.SET 1 name Main");
    expect_status(c, "OK", "LOC.SET 2 name Second");
    expect_status(c, "OK", "ITEM.SET 10 sku A");
    expect_status(c, "OK", "ITEM.SET 11 sku B");
    expect_level(c, 10, 0, "LEVEL.SET 10 1 10");
    expect_level(c, 10, 0, "LEVEL.SET 11 1 10");
    expect_level(c, 5, 0, "LEVEL.SET 10 2 5");
    expect_level(c, 5, 0, "LEVEL.SET 11 2 5");
}

/* HOLD.GET's reply: [state, expires_at_ms, lines, buyer, order_ref,
 * created_at_ms]; checks the state and the attributes (the caller frees). */
static redisReply *expect_hold(redisContext *c, const char *id, const char *state,
                               const char *buyer, const char *order_ref)
{
    redisReply *r = cmd(c, "HOLD.GET %s", id);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "HOLD.GET %s: type %d '%s'", id, r->type,
                 r->str ? r->str : "");
    cr_assert_eq(r->elements, 6);
    cr_assert_str_eq(r->element[0]->str, state);
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->element[2]->type, REDIS_REPLY_ARRAY);
    cr_assert_str_eq(r->element[3]->str, buyer);
    cr_assert_str_eq(r->element[4]->str, order_ref);
    cr_assert_eq(r->element[5]->type, REDIS_REPLY_INTEGER);
    return r;
}

/* Line i of a HOLD.GET reply: [item, loc, qty, committed]. */
static void expect_hold_line(const redisReply *r, size_t i, const char *item, long long qty,
                             long long committed)
{
    cr_assert_gt(r->element[2]->elements, i);
    const redisReply *l = r->element[2]->element[i];
    cr_assert_eq(l->elements, 4);
    cr_assert_str_eq(l->element[0]->str, item);
    cr_assert_eq(l->element[2]->integer, qty);
    cr_assert_eq(l->element[3]->integer, committed, "line %zu committed %lld want %lld", i,
                 l->element[3]->integer, committed);
}

Test(server_holds, create_keeps_buyer_and_order_and_a_buyer_limit_refuses_with_limit)
{
    seed(C);
    expect_status(C, "OK", "HOLD.CREATE h1 600000 10 1 3 11 1 1 BUYER cust-7 LIMIT 5 ORDER o-42");
    redisReply *r = expect_hold(C, "h1", "held", "cust-7", "o-42");
    expect_hold_line(r, 0, "10", 3, 0);
    expect_hold_line(r, 1, "11", 1, 0);
    cr_assert_geq(r->element[1]->integer, r->element[5]->integer + 600000);
    freeReplyObject(r);
    /* options in any order; a retry with the same options is OK */
    expect_status(C, "OK", "HOLD.CREATE h1 600000 10 1 3 11 1 1 ORDER o-42 LIMIT 5 BUYER cust-7");
    expect_error(C, "CONFLICT", "HOLD.CREATE h1 600000 10 1 3 11 1 1 BUYER other");
    expect_error(C, "LIMIT buyer cust-7 would hold 6 of item 10 (limit 5)",
                 "HOLD.CREATE h2 600000 10 2 3 BUYER cust-7 LIMIT 5");
    expect_level(C, 5, 0, "LEVEL.GET 10 2"); /* the refused create took nothing */
    expect_status(C, "OK", "HOLD.CREATE h2 600000 10 2 2 BUYER cust-7 LIMIT 5");
    expect_status(C, "OK", "HOLD.CREATE h3 600000 10 2 3 BUYER cust-8 LIMIT 5");
    /* a release gives the buyer's units back */
    expect_status(C, "OK", "HOLD.RELEASE h2");
    expect_status(C, "OK", "HOLD.CREATE h4 600000 10 2 2 BUYER cust-7 LIMIT 5");
    /* a hold without options answers empty attributes */
    expect_status(C, "OK", "HOLD.CREATE plain 600000 11 2 1");
    freeReplyObject(expect_hold(C, "plain", "held", "", ""));
}

Test(server_holds, create_options_are_checked)
{
    seed(C);
    const char *bad[][2] = {
        {"HOLD.CREATE h 1000 10 1 1 COLOR red", "INVALID unknown option 'COLOR'"},
        {"HOLD.CREATE h 1000 10 1 1 BUYER", "INVALID option 'BUYER' needs a value"},
        {"HOLD.CREATE h 1000 10 1 1 LIMIT 5", "INVALID LIMIT needs BUYER"},
        {"HOLD.CREATE h 1000 10 1 1 BUYER a BUYER b", "INVALID buyer id given twice"},
        {"HOLD.CREATE h 1000 10 1 1 BUYER a LIMIT 0", "INVALID limit must be"},
        {"HOLD.CREATE h 1000 10 1 1 BUYER a LIMIT x", "INVALID limit must be"},
        {"HOLD.CREATE h 1000 10 1 1 ORDER a ORDER b", "INVALID order reference given twice"},
        {"HOLD.CREATE h 1000 10 1 BUYER a", "ERR wrong number of arguments"},
        {"HOLD.CREATE h 1000 BUYER a LIMIT 3", "INVALID a hold needs at least one line"},
        {"HOLD.CREATE h 1000 10 1 1 10 1 2", "INVALID item 10 at location 1 appears twice"},
        {"HOLD.CREATE h 0 10 1 1", "INVALID ttl_ms"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(C, bad[i][1], bad[i][0]);
    char longid[INV_BUYER_ID_MAX + 2];
    memset(longid, 'b', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    expect_error(C, "INVALID buyer id must be 1..64 bytes", "HOLD.CREATE h 1000 10 1 1 BUYER %s",
                 longid);
    expect_error(C, "INVALID buyer id must be", "HOLD.CREATE h 1000 10 1 1 BUYER %b", "a\0b",
                 (size_t)3);
    expect_error(C, "NOTFOUND", "HOLD.GET h");
    expect_level(C, 10, 0, "LEVEL.GET 10 1");
}

Test(server_holds, commit_with_lines_sells_those_units_and_releases_the_rest)
{
    seed(C);
    expect_status(C, "OK", "HOLD.CREATE cart 600000 10 1 4 11 1 3 BUYER cust LIMIT 9");
    expect_status(C, "OK", "HOLD.COMMIT cart 10 1 1");
    expect_level(C, 9, 0, "LEVEL.GET 10 1");
    expect_level(C, 10, 0, "LEVEL.GET 11 1");
    redisReply *r = expect_hold(C, "cart", "committed", "cust", "");
    expect_hold_line(r, 0, "10", 4, 1);
    expect_hold_line(r, 1, "11", 3, 0);
    freeReplyObject(r);
    expect_status(C, "OK", "HOLD.COMMIT cart 10 1 1"); /* a retry */
    expect_error(C, "CONFLICT", "HOLD.COMMIT cart 10 1 2");
    expect_error(C, "CONFLICT", "HOLD.COMMIT cart");
    expect_error(C, "CONFLICT", "HOLD.RELEASE cart");
    /* the buyer counts the one sold unit of item 10 (and nothing of 11) */
    expect_error(C, "LIMIT buyer cust would hold 10 of item 10 (limit 9)",
                 "HOLD.CREATE more 600000 10 2 5 10 1 4 BUYER cust LIMIT 9");
    expect_status(C, "OK", "HOLD.CREATE more 600000 11 1 9 BUYER cust LIMIT 9");
    /* bad lines: refused, the hold stays as it was */
    expect_status(C, "OK", "HOLD.CREATE c2 600000 10 1 2");
    expect_error(C, "INVALID each line must be one of the hold's", "HOLD.COMMIT c2 11 1 1");
    expect_error(C, "INVALID each line must be one of the hold's", "HOLD.COMMIT c2 10 1 3");
    expect_error(C, "INVALID quantity must be", "HOLD.COMMIT c2 10 1 0");
    expect_error(C, "INVALID item 10 at location 1 appears twice", "HOLD.COMMIT c2 10 1 1 10 1 1");
    expect_error(C, "ERR wrong number of arguments", "HOLD.COMMIT c2 10 1");
    expect_error(C, "NOTFOUND", "HOLD.COMMIT nosuch 10 1 1");
    freeReplyObject(expect_hold(C, "c2", "held", "", ""));
    expect_level(C, 7, 2, "LEVEL.GET 10 1");
}

Test(server_holds, extend_moves_the_expiry_and_refuses_ended_holds)
{
    seed(C);
    expect_status(C, "OK", "HOLD.CREATE h 60000 10 1 1");
    redisReply *r = expect_hold(C, "h", "held", "", "");
    long long first = r->element[1]->integer;
    freeReplyObject(r);
    expect_status(C, "OK", "HOLD.EXTEND h 6000000");
    r = expect_hold(C, "h", "held", "", "");
    cr_assert_geq(r->element[1]->integer, first + 6000000 - 60000);
    freeReplyObject(r);
    expect_error(C, "INVALID ttl_ms", "HOLD.EXTEND h 0");
    expect_error(C, "LIMIT ttl_ms", "HOLD.EXTEND h 999999999999");
    expect_error(C, "ERR wrong number of arguments", "HOLD.EXTEND h");
    expect_error(C, "NOTFOUND", "HOLD.EXTEND nosuch 1000");
    expect_status(C, "OK", "HOLD.CREATE rel 60000 10 1 1");
    expect_status(C, "OK", "HOLD.RELEASE rel");
    expect_error(C, "NOTFOUND", "HOLD.EXTEND rel 1000");
    expect_status(C, "OK", "HOLD.COMMIT h");
    expect_error(C, "CONFLICT", "HOLD.EXTEND h 1000");
}

/* Pages HOLD.LIST with args until the cursor is 0; returns the ids seen
 * (a bitmask of hold numbers 0..63, named "l<n>"). */
static unsigned long long list_all(redisContext *c, const char *args)
{
    unsigned long long seen = 0;
    char cursor[32] = "0";
    int pages = 0;
    do {
        char line[128];
        snprintf(line, sizeof line, "HOLD.LIST CURSOR %s COUNT 3 %s", cursor, args);
        redisReply *r = cmd(c, line); /* hiredis splits it on spaces */
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "HOLD.LIST: type %d '%s'", r->type,
                     r->str ? r->str : "");
        cr_assert_eq(r->elements, 2);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            int k = atoi(r->element[1]->element[i]->str + 1);
            cr_assert(k >= 0 && k < 64 && !(seen & (1ULL << k)), "hold %s listed twice",
                      r->element[1]->element[i]->str);
            seen |= 1ULL << k;
        }
        freeReplyObject(r);
        cr_assert_lt(++pages, 1000);
    } while (strcmp(cursor, "0") != 0);
    return seen;
}

Test(server_holds, list_pages_through_live_holds_with_filters)
{
    seed(C);
    expect_level(C, 100, 0, "LEVEL.SET 10 1 100");
    expect_level(C, 100, 0, "LEVEL.SET 11 2 100");
    unsigned long long all = 0, on11 = 0, at2 = 0;
    for (int k = 0; k < 20; k++) {
        if (k % 2)
            expect_status(C, "OK", "HOLD.CREATE l%d 600000 10 1 1 11 2 1", k);
        else
            expect_status(C, "OK", "HOLD.CREATE l%d 600000 10 1 1", k);
        if (k % 5 == 0) {
            expect_status(C, "OK", "HOLD.RELEASE l%d", k);
            continue;
        }
        all |= 1ULL << k;
        if (k % 2) {
            on11 |= 1ULL << k;
            at2 |= 1ULL << k;
        }
    }
    cr_assert_eq(list_all(C, ""), all);
    cr_assert_eq(list_all(C, "ITEM 11"), on11);
    cr_assert_eq(list_all(C, "LOC 2"), at2);
    cr_assert_eq(list_all(C, "ITEM 11 LOC 2"), on11);
    cr_assert_eq(list_all(C, "ITEM 11 LOC 1"), 0);
    redisReply *r = cmd(C, "HOLD.LIST");
    cr_assert_eq(r->elements, 2);
    freeReplyObject(r);
    expect_error(C, "LIMIT count must be 1..1000", "HOLD.LIST COUNT 0");
    expect_error(C, "INVALID expected ITEM, LOC, CURSOR or COUNT", "HOLD.LIST SIZE 3");
    expect_error(C, "INVALID item id", "HOLD.LIST ITEM x");
    expect_error(C, "ERR wrong number of arguments", "HOLD.LIST ITEM");
}

Test(server_holds, exec_extends_and_commits_part_all_or_nothing)
{
    seed(C);
    expect_status(C, "OK", "HOLD.CREATE a 60000 10 1 2");
    expect_status(C, "OK", "HOLD.CREATE b 60000 11 1 3");
    redisReply *r = expect_hold(C, "a", "held", "", "");
    long long expires = r->element[1]->integer;
    freeReplyObject(r);
    /* a failing last line: nothing of the extend or the commit remains */
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.EXTEND a 6000000");
    expect_status(C, "QUEUED", "HOLD.COMMIT b 11 1 1");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 2 -6 FLOOR 0");
    expect_error(C, "INSUFFICIENT EXEC line 3 (LEVEL.ADJUST)", "EXEC");
    r = expect_hold(C, "a", "held", "", "");
    cr_assert_eq(r->element[1]->integer, expires);
    freeReplyObject(r);
    freeReplyObject(expect_hold(C, "b", "held", "", ""));
    expect_level(C, 7, 3, "LEVEL.GET 11 1");
    /* without it: both apply */
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.EXTEND a 6000000");
    expect_status(C, "QUEUED", "HOLD.COMMIT b 11 1 1");
    r = cmd(C, "EXEC");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "OK");
    cr_assert_str_eq(r->element[1]->str, "OK");
    freeReplyObject(r);
    r = expect_hold(C, "a", "held", "", "");
    cr_assert_gt(r->element[1]->integer, expires);
    freeReplyObject(r);
    r = expect_hold(C, "b", "committed", "", "");
    expect_hold_line(r, 0, "11", 3, 1);
    freeReplyObject(r);
    expect_level(C, 9, 0, "LEVEL.GET 11 1");
}

Test(server_holds, exec_keeps_a_create_s_options_and_a_buyer_refusal_names_its_line)
{
    seed(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.CREATE m1 600000 10 1 2 BUYER queued-buyer ORDER ord-9");
    expect_status(C, "QUEUED", "HOLD.GET m1");
    redisReply *r = cmd(C, "EXEC");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "OK");
    cr_assert_str_eq(r->element[1]->element[3]->str, "queued-buyer");
    cr_assert_str_eq(r->element[1]->element[4]->str, "ord-9");
    freeReplyObject(r);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 11 1 -1");
    expect_status(C, "QUEUED", "HOLD.CREATE m2 600000 10 2 4 BUYER queued-buyer LIMIT 5");
    expect_error(C,
                 "LIMIT EXEC line 2 (HOLD.CREATE): buyer queued-buyer would hold 6 of item 10 "
                 "(limit 5); nothing was applied",
                 "EXEC");
    expect_level(C, 10, 0, "LEVEL.GET 11 1");
    expect_level(C, 5, 0, "LEVEL.GET 10 2");
    expect_error(C, "NOTFOUND", "HOLD.GET m2");
    /* queue-time checks of the new lines */
    expect_status(C, "OK", "MULTI");
    expect_error(C, "INVALID unknown option", "HOLD.CREATE m3 1000 10 1 1 NOPE x");
    expect_error(C, "EXECABORT", "EXEC");
}

Test(server_holds, attributes_commits_extends_and_buyer_counts_survive_a_restart)
{
    if (!S.durable) {
        teardown(); /* a skipped test gets no .fini: stop the server now */
        cr_skip_test("INVCORE_SERVER_TEST_MEMORY: nothing survives a restart");
    }
    seed(C);
    expect_status(C, "OK", "HOLD.CREATE p 600000 10 1 4 11 1 2 BUYER cust LIMIT 6 ORDER ord");
    expect_status(C, "OK", "HOLD.COMMIT p 10 1 3");
    expect_status(C, "OK", "HOLD.CREATE x 60000 11 1 1");
    expect_status(C, "OK", "HOLD.EXTEND x 6000000");
    redisReply *r = expect_hold(C, "x", "held", "", "");
    long long expires = r->element[1]->integer;
    freeReplyObject(r);
    redisFree(C);
    C = NULL;
    cr_assert_eq(srv_stop(&S), 0);
    cr_assert_eq(srv_spawn(&S, 1, NULL), 0, "restart on the same data dir");
    C = srv_connect(&S);
    r = expect_hold(C, "p", "committed", "cust", "ord");
    expect_hold_line(r, 0, "10", 4, 3);
    expect_hold_line(r, 1, "11", 2, 0);
    freeReplyObject(r);
    r = expect_hold(C, "x", "held", "", "");
    cr_assert_eq(r->element[1]->integer, expires);
    freeReplyObject(r);
    expect_level(C, 7, 0, "LEVEL.GET 10 1");
    expect_level(C, 9, 1, "LEVEL.GET 11 1");
    /* the buyer still counts its 3 sold units of item 10 */
    expect_error(C, "LIMIT buyer cust would hold 7 of item 10 (limit 6)",
                 "HOLD.CREATE q 600000 10 2 4 BUYER cust LIMIT 6");
    expect_status(C, "OK", "HOLD.CREATE q 600000 10 2 3 BUYER cust LIMIT 6");
}
