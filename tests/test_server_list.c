/*
 * test_server_list.c — integration: LEVEL.LIST's three forms (one item,
 * with or without ALL; LOC loc and ALLLEVELS pages with CURSOR, COUNT,
 * UPDATED-SINCE and ALL), the create-only writes (LEVEL.SET ... NX alone
 * and refused inside MULTI, ITEM.SET ... NX, LOC.SET ... NX), and
 * PRODUCT.INVENTORY listing items without levels, against a real
 * build/invcored (test_server_harness.h).
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

TestSuite(server_list, .init = setup, .fini = teardown, .timeout = 60);

/* The fields of LEVEL.GET ... ALL (a map: 2 entries per field in RESP2). */
#define FULL_FIELDS 14

/* Locations 1..3, items 10..13 in product p1; item i has a level at
 * location l (l <= 2) with available 10 * (i - 10) + l; item 13 none. */
static void seed(void)
{
    expect_status(C, "OK", "LOC.SET 1 name Main");
    expect_status(C, "OK", "LOC.SET 2 name Second");
    expect_status(C, "OK", "LOC.SET 3 name Third");
    for (int i = 10; i <= 13; i++)
        expect_status(C, "OK", "ITEM.SET %d sku S%d variant v%d product p1", i, i, i);
    for (int i = 10; i <= 12; i++)
        for (int l = 1; l <= 2; l++)
            expect_level(C, 10 * (i - 10) + l, 0, "LEVEL.SET %d %d %d", i, l, 10 * (i - 10) + l);
}

static long long reply_id(const redisReply *r)
{
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "an id is a bulk string (type %d)", r->type);
    return strtoll(r->str, NULL, 10);
}

/* The integer value of field name in a RESP2 map (flat array). */
static long long map_int(const redisReply *m, const char *name)
{
    cr_assert_eq(m->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(m->elements, 2 * FULL_FIELDS, "fields: %zu", m->elements);
    for (size_t k = 0; k + 1 < m->elements; k += 2)
        if (strcmp(m->element[k]->str, name) == 0) {
            cr_assert_eq(m->element[k + 1]->type, REDIS_REPLY_INTEGER, "%s", name);
            return m->element[k + 1]->integer;
        }
    cr_assert_fail("no field %s", name);
    return 0;
}

/* Pages through a LEVEL.LIST page form (args: "LOC 1", "ALLLEVELS", with
 * options); seen[item - 10][loc - 1] counts rows; returns the pages. */
static size_t walk(const char *args, const char *opts, int all, int seen[4][3])
{
    char cursor[32] = "0";
    size_t pages = 0;
    do {
        /* one format string: hiredis keeps an interpolated %s as one argument */
        char line[256];
        snprintf(line, sizeof line, "LEVEL.LIST %s CURSOR %s %s%s", args, cursor, opts,
                 all ? " ALL" : "");
        redisReply *r = cmd(C, line);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "'%s %s': type %d %s", args, opts, r->type,
                     r->str ? r->str : "");
        cr_assert_eq(r->elements, 2);
        cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING, "the cursor is a bulk string");
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *rows = r->element[1];
        for (size_t k = 0; k < rows->elements; k++) {
            const redisReply *row = rows->element[k];
            cr_assert_eq(row->elements, all ? 3u : 5u);
            long long item = reply_id(row->element[0]), loc = reply_id(row->element[1]);
            cr_assert(item >= 10 && item <= 13 && loc >= 1 && loc <= 3, "row %lld %lld", item, loc);
            long long want = 10 * (item - 10) + loc;
            if (all) {
                cr_assert_eq(map_int(row->element[2], "available"), want);
                cr_assert_eq(map_int(row->element[2], "on_hand"), want);
                cr_assert_geq(map_int(row->element[2], "revision"), 1);
            } else {
                cr_assert_eq(row->element[2]->integer, want);
                cr_assert_eq(row->element[3]->integer, 0);
                cr_assert_geq(row->element[4]->integer, 1);
            }
            seen[item - 10][loc - 1]++;
        }
        freeReplyObject(r);
        cr_assert_lt(++pages, 1000, "the listing never ends");
    } while (strcmp(cursor, "0") != 0);
    return pages;
}

/* ---- LEVEL.LIST item [ALL] -------------------------------------------------- */

Test(server_list, level_list_of_an_item_is_as_before_and_all_adds_every_field)
{
    seed();
    redisReply *r = cmd(C, "LEVEL.LIST 11");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    for (size_t k = 0; k < 2; k++) {
        const redisReply *row = r->element[k];
        cr_assert_eq(row->elements, 4, "[loc, available, reserved, revision]");
        cr_assert_eq(reply_id(row->element[0]), (long long)k + 1, "locations in id order");
        cr_assert_eq(row->element[1]->integer, 10 + (long long)k + 1);
        cr_assert_eq(row->element[2]->integer, 0);
        cr_assert_geq(row->element[3]->integer, 1);
    }
    freeReplyObject(r);
    expect_status(C, "OK", "HOLD.CREATE h 60000 11 2 4");
    r = cmd(C, "LEVEL.LIST 11 all");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "type %d %s", r->type, r->str ? r->str : "");
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[1]->elements, 2, "[loc, {fields}]");
    cr_assert_eq(reply_id(r->element[1]->element[0]), 2);
    const redisReply *m = r->element[1]->element[1];
    cr_assert_eq(map_int(m, "available"), 8);
    cr_assert_eq(map_int(m, "reserved"), 4);
    cr_assert_eq(map_int(m, "on_hand"), 12);
    cr_assert_eq(map_int(m, "committed"), 0);
    cr_assert_gt(map_int(m, "updated_at_ms"), 0);
    freeReplyObject(r);
    r = cmd(C, "LEVEL.LIST 13 ALL");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 0, "an item without levels");
    freeReplyObject(r);
    expect_error(C, "NOTFOUND", "LEVEL.LIST 99");
    expect_error(C, "NOTFOUND", "LEVEL.LIST 99 ALL");
    expect_error(C, "INVALID expected ALL", "LEVEL.LIST 11 FULL");
    expect_error(C, "INVALID expected ALL", "LEVEL.LIST 11 ALL ALL");
    expect_error(C, "INVALID expected ALL", "LEVEL.LIST 11 COUNT 5");
    expect_error(C, "INVALID", "LEVEL.LIST eleven");
    expect_error(C, "INVALID", "LEVEL.LIST -11");
    expect_error(C, "ERR wrong number", "LEVEL.LIST");
}

/* ---- LEVEL.LIST LOC loc / ALLLEVELS ---------------------------------------- */

Test(server_list, level_list_loc_pages_list_each_level_of_the_location_once)
{
    seed();
    const char *counts[] = {"COUNT 1", "COUNT 2", "", "COUNT 1000"};
    for (int all = 0; all < 2; all++)
        for (size_t c = 0; c < 4; c++) {
            int seen[4][3] = {{0}};
            walk("LOC 2", counts[c], all, seen);
            for (int i = 0; i < 4; i++)
                for (int l = 0; l < 3; l++)
                    cr_assert_eq(seen[i][l], i < 3 && l == 1 ? 1 : 0, "item %d loc %d (%s)", 10 + i,
                                 l + 1, counts[c]);
        }
    /* A location without levels: one empty page. */
    redisReply *r = cmd(C, "LEVEL.LIST LOC 3");
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "0");
    cr_assert_eq(r->element[1]->elements, 0);
    freeReplyObject(r);
    expect_error(C, "NOTFOUND", "LEVEL.LIST LOC 4");
    expect_error(C, "INVALID", "LEVEL.LIST LOC");
    expect_error(C, "INVALID", "LEVEL.LIST LOC x");
    expect_error(C, "INVALID", "LEVEL.LIST loc 2 ITEM 10");
}

Test(server_list, level_list_alllevels_lists_every_level_once_in_any_page_size)
{
    seed();
    const char *counts[] = {"COUNT 1", "COUNT 4", "", "COUNT 1000"};
    for (int all = 0; all < 2; all++)
        for (size_t c = 0; c < 4; c++) {
            int seen[4][3] = {{0}};
            size_t pages = walk("ALLLEVELS", counts[c], all, seen);
            for (int i = 0; i < 4; i++)
                for (int l = 0; l < 3; l++)
                    cr_assert_eq(seen[i][l], i < 3 && l < 2 ? 1 : 0, "item %d loc %d (%s)", 10 + i,
                                 l + 1, counts[c]);
            if (c == 0)
                cr_assert_geq(pages, 6, "COUNT 1: a level a page at most");
        }
    /* Options in any order, in any case. */
    redisReply *r = cmd(C, "level.list alllevels all count 1000 cursor 0");
    cr_assert_eq(r->element[1]->elements, 6);
    cr_assert_eq(r->element[1]->element[0]->elements, 3);
    freeReplyObject(r);
}

/* UPDATED-SINCE keeps the levels updated at or after the given time, at
 * whole seconds; the bounds come from the levels' own updated_at_ms. */
Test(server_list, updated_since_keeps_levels_changed_in_or_after_that_second)
{
    seed();
    long long newest = 0;
    for (int i = 10; i <= 12; i++)
        for (int l = 1; l <= 2; l++) {
            redisReply *r = cmd(C, "LEVEL.GET %d %d ALL", i, l);
            long long t = map_int(r, "updated_at_ms");
            newest = t > newest ? t : newest;
            freeReplyObject(r);
        }
    cr_assert_gt(newest, 0);
    int seen[4][3] = {{0}};
    walk("ALLLEVELS", "UPDATED-SINCE 0", 0, seen);
    int n = 0;
    for (int i = 0; i < 4; i++)
        for (int l = 0; l < 3; l++)
            n += seen[i][l];
    cr_assert_eq(n, 6, "0: no filter");
    char opt[64];
    snprintf(opt, sizeof opt, "UPDATED-SINCE %lld", newest + 999);
    memset(seen, 0, sizeof seen);
    walk("ALLLEVELS", opt, 0, seen);
    n = 0;
    for (int i = 0; i < 4; i++)
        for (int l = 0; l < 3; l++)
            n += seen[i][l];
    cr_assert_geq(n, 1, "the same second as the newest change keeps it");
    snprintf(opt, sizeof opt, "UPDATED-SINCE %lld", newest + 1000);
    memset(seen, 0, sizeof seen);
    walk("LOC 1", opt, 1, seen);
    n = 0;
    for (int i = 0; i < 4; i++)
        for (int l = 0; l < 3; l++)
            n += seen[i][l];
    cr_assert_eq(n, 0, "the next second keeps nothing");
}

Test(server_list, page_options_are_strict)
{
    seed();
    expect_error(C, "LIMIT count must be 1..1000", "LEVEL.LIST ALLLEVELS COUNT 0");
    expect_error(C, "LIMIT count must be 1..1000", "LEVEL.LIST LOC 1 COUNT 1001");
    expect_error(C, "INVALID", "LEVEL.LIST ALLLEVELS COUNT ten");
    expect_error(C, "INVALID", "LEVEL.LIST ALLLEVELS CURSOR -1");
    expect_error(C, "INVALID", "LEVEL.LIST ALLLEVELS CURSOR 18446744073709551616");
    expect_error(C, "INVALID cursor given twice", "LEVEL.LIST ALLLEVELS CURSOR 0 CURSOR 0");
    expect_error(C, "INVALID all given twice", "LEVEL.LIST ALLLEVELS ALL ALL");
    expect_error(C, "INVALID count needs a value", "LEVEL.LIST ALLLEVELS COUNT");
    expect_error(C, "INVALID updated-since needs a value", "LEVEL.LIST LOC 1 ALL UPDATED-SINCE");
    expect_error(C, "INVALID updated-since must be at least 0",
                 "LEVEL.LIST ALLLEVELS UPDATED-SINCE -5");
    expect_error(C, "INVALID", "LEVEL.LIST ALLLEVELS UPDATED-SINCE soon");
    expect_error(C, "INVALID expected CURSOR, COUNT, UPDATED-SINCE or ALL",
                 "LEVEL.LIST ALLLEVELS MATCH *");
    expect_error(C, "INVALID expected CURSOR", "LEVEL.LIST LOC 1 1");
    expect_error(C, "ERR wrong number",
                 "LEVEL.LIST LOC 1 CURSOR 0 COUNT 5 UPDATED-SINCE 0 ALL extra");
    /* The largest cursor is a valid position (past every level). */
    redisReply *r = cmd(C, "LEVEL.LIST ALLLEVELS CURSOR 18446744073709551615");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
}

Test(server_list, level_list_is_a_read_inside_multi)
{
    seed();
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.SET 10 3 7");
    expect_status(C, "QUEUED", "LEVEL.LIST LOC 3");
    redisReply *r = cmd(C, "EXEC");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    const redisReply *page = r->element[1];
    cr_assert_eq(page->element[1]->elements, 1, "the read sees the batch's level");
    cr_assert_eq(page->element[1]->element[0]->element[2]->integer, 7);
    freeReplyObject(r);
}

/* ---- create-only writes -------------------------------------------------- */

Test(server_list, level_set_nx_creates_once_and_then_answers_exists)
{
    seed();
    long long rev = expect_level(C, 4, 0, "LEVEL.SET 13 1 4 NX");
    redisReply *r = cmd(C, "LEVEL.SET 13 1 9 nx");
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    char want[64];
    snprintf(want, sizeof want, "EXISTS level exists (revision %lld)", rev);
    cr_assert_str_eq(r->str, want);
    freeReplyObject(r);
    expect_level(C, 4, 0, "LEVEL.GET 13 1");
    expect_error(C, "NOTFOUND", "LEVEL.SET 99 1 4 NX");
    expect_error(C, "NOTFOUND", "LEVEL.SET 13 9 4 NX");
    expect_error(C, "LIMIT", "LEVEL.SET 13 2 2000000000 NX");
    expect_error(C, "INVALID expected IFREV rev or NX", "LEVEL.SET 13 2 4 XX");
    expect_error(C, "INVALID NX stands alone", "LEVEL.SET 13 2 4 NX 1");
    expect_error(C, "INVALID expected IFREV", "LEVEL.SET 13 2 4 FLOOR 1");
    expect_error(C, "ERR wrong number", "LEVEL.SET 13 2 4 IFREV 1 NX");
    expect_status(C, "OK", "LOC.SET 3 active 0");
    expect_error(C, "INVALID location inactive", "LEVEL.SET 13 3 4 NX");
    /* After a deletion: created again. */
    expect_status(C, "OK", "LEVEL.DEL 13 1");
    expect_level(C, 6, 0, "LEVEL.SET 13 1 6 NX");
    /* The plain forms are unchanged. */
    expect_level(C, 8, 0, "LEVEL.SET 13 1 8");
    expect_error(C, "CONFLICT", "LEVEL.SET 13 1 8 IFREV 1");
}

Test(server_list, level_set_nx_is_refused_inside_multi)
{
    seed();
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.SET 10 1 3");
    expect_error(C, "INVALID NX stands alone (LEVEL.SET item loc qty NX) and not inside MULTI",
                 "LEVEL.SET 13 1 4 NX");
    expect_error(C, "EXECABORT", "EXEC");
    expect_level(C, 1, 0, "LEVEL.GET 10 1");
    expect_error(C, "NOTFOUND", "LEVEL.GET 13 1");
}

Test(server_list, item_set_and_loc_set_nx_create_only)
{
    seed();
    expect_status(C, "OK", "ITEM.SET 20 sku S20 NX");
    expect_error(C, "EXISTS item 20 exists", "ITEM.SET 20 sku S21 nx");
    redisReply *r = cmd(C, "ITEM.GET 20");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_str_eq(r->element[3]->str, "S20", "a refused NX changes nothing");
    freeReplyObject(r);
    expect_error(C, "NOTFOUND", "ITEM.BYSKU S21");
    /* Another item's SKU: EXISTS (as ITEM.SET), nothing created. */
    expect_error(C, "EXISTS", "ITEM.SET 21 sku S20 NX");
    expect_error(C, "NOTFOUND", "ITEM.GET 21");
    /* With an even count NX is a value, not the option. */
    expect_status(C, "OK", "ITEM.SET 20 sku NX");
    r = cmd(C, "ITEM.BYSKU NX");
    cr_assert_str_eq(r->str, "20");
    freeReplyObject(r);
    expect_error(C, "ERR wrong number of arguments for 'item.set' command",
                 "ITEM.SET 22 sku S22 tracked");
    expect_error(C, "ERR wrong number", "ITEM.SET 22 NX");
    expect_error(C, "INVALID unknown field", "ITEM.SET 22 colour red NX");
    expect_error(C, "NOTFOUND", "ITEM.GET 22");

    expect_status(C, "OK", "LOC.SET 7 name Seven NX");
    expect_error(C, "EXISTS location 7 exists", "LOC.SET 7 name Other NX");
    expect_error(C, "ERR wrong number of arguments for 'loc.set' command", "LOC.SET 8 name");
    expect_error(C, "ERR wrong number of arguments for 'loc.set' command",
                 "LOC.SET 8 name Eight city");
    /* Inside MULTI they are refused, as every catalog write. */
    expect_status(C, "OK", "MULTI");
    expect_error(C, "ERR Command not allowed inside a transaction", "ITEM.SET 30 sku S30 NX");
    expect_status(C, "OK", "DISCARD");
}

/* ---- PRODUCT.INVENTORY --------------------------------------------------- */

Test(server_list, product_inventory_lists_items_without_levels)
{
    seed();
    redisReply *r = cmd(C, "PRODUCT.INVENTORY p1");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "type %d %s", r->type, r->str ? r->str : "");
    cr_assert_eq(r->element[0]->integer, 1 + 2 + 11 + 12 + 21 + 22);
    const redisReply *groups = r->element[1];
    cr_assert_eq(groups->elements, 4, "every variant, item 13 too");
    for (size_t g = 0; g < 4; g++) {
        cr_assert_eq(reply_id(groups->element[g]->element[1]), 10 + (long long)g);
        cr_assert_eq(groups->element[g]->element[2]->elements, g < 3 ? 2u : 0u);
    }
    cr_assert_str_eq(groups->element[3]->element[0]->str, "v13");
    freeReplyObject(r);
    r = cmd(C, "PRODUCT.INVENTORY p1 LOC 3");
    cr_assert_eq(r->element[0]->integer, 0);
    cr_assert_eq(r->element[1]->elements, 4, "no level there: every variant, empty");
    for (size_t g = 0; g < 4; g++)
        cr_assert_eq(r->element[1]->element[g]->element[2]->elements, 0);
    freeReplyObject(r);
    r = cmd(C, "PRODUCT.INVENTORY p1 LOC 2");
    cr_assert_eq(r->element[0]->integer, 2 + 12 + 22);
    cr_assert_eq(r->element[1]->element[0]->element[2]->elements, 1);
    cr_assert_eq(r->element[1]->element[3]->element[2]->elements, 0);
    freeReplyObject(r);
}
