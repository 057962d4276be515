/*
 * test_catalog.c — locations, items, the SKU / variant / product indexes,
 * listings and product inventory, through the public API.
 *
 * One-thread scenarios check every function's success and error paths
 * (each field validation, unknown ids, taken SKUs and variants, index
 * entries freed by changes and deletes, ids 0 and UINT64_MAX, cursor
 * listings across table growth, product inventory rows and totals). The
 * races at the end check invariants after the threads joined: exactly one
 * winner per SKU, and no level left for a deleted item.
 * Iteration counts are divided by INVCORE_STRESS_SCALE (sanitizer builds).
 */
#include <criterion/criterion.h>

#include "catalog_record.h"
#include "invcore.h"
#include "persist.h"
#include "test_util.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

/* An engine whose tables start as small as they can, so tests grow them. */
static inv_engine *open_tiny(void)
{
    inv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.items_capacity = 1;
    cfg.locations_capacity = 1;
    cfg.levels_capacity = 1;
    inv_engine *e = NULL;
    cr_assert_eq(inv_open(&e, &cfg), INV_OK);
    cr_assert_not_null(e);
    return e;
}

static inv_item_fields item_fields(unsigned mask)
{
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = mask;
    f.tracked = true;
    f.requires_shipping = true;
    return f;
}

static inv_location_fields loc_fields(unsigned mask)
{
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    f.mask = mask;
    f.active = true;
    return f;
}

static int put_sku(inv_engine *e, uint64_t item, const char *sku)
{
    inv_item_fields f = item_fields(INV_ITEM_SKU);
    snprintf(f.sku, sizeof f.sku, "%s", sku);
    return inv_item_put(e, item, &f);
}

static int put_variant(inv_engine *e, uint64_t item, const char *variant)
{
    inv_item_fields f = item_fields(INV_ITEM_VARIANT);
    snprintf(f.variant, sizeof f.variant, "%s", variant);
    return inv_item_put(e, item, &f);
}

static int put_product(inv_engine *e, uint64_t item, const char *product, const char *variant,
                       bool tracked)
{
    inv_item_fields f = item_fields(INV_ITEM_PRODUCT | INV_ITEM_VARIANT | INV_ITEM_TRACKED);
    snprintf(f.product, sizeof f.product, "%s", product);
    snprintf(f.variant, sizeof f.variant, "%s", variant);
    f.tracked = tracked;
    return inv_item_put(e, item, &f);
}

static uint64_t by_sku(inv_engine *e, const char *sku, int want_rc)
{
    uint64_t item = 0xdeadbeef;
    int rc = inv_item_by_sku(e, sku, &item);
    cr_assert_eq(rc, want_rc, "by_sku(%s): %s", sku, inv_strerror(rc));
    return item;
}

static int item_put_cost(inv_engine *e, const char *cost)
{
    inv_item_fields f = item_fields(INV_ITEM_COST);
    snprintf(f.cost, sizeof f.cost, "%s", cost);
    return inv_item_put(e, 1, &f);
}

static int item_put_hs(inv_engine *e, const char *hs)
{
    inv_item_fields f = item_fields(INV_ITEM_HS_CODE);
    snprintf(f.harmonized_system_code, sizeof f.harmonized_system_code, "%s", hs);
    return inv_item_put(e, 1, &f);
}

static int item_put_country(inv_engine *e, const char *cc)
{
    inv_item_fields f = item_fields(INV_ITEM_COUNTRY_OF_ORIGIN);
    snprintf(f.country_code_of_origin, sizeof f.country_code_of_origin, "%s", cc);
    return inv_item_put(e, 1, &f);
}

static int item_put_country_hs(inv_engine *e, uint64_t id, const char *codes)
{
    inv_item_fields f = item_fields(INV_ITEM_COUNTRY_HS_CODES);
    snprintf(f.country_hs_codes, sizeof f.country_hs_codes, "%s", codes);
    return inv_item_put(e, id, &f);
}

static const char *item_country_hs(inv_engine *e, uint64_t id, inv_item *it)
{
    cr_assert_eq(inv_item_get(e, id, it), INV_OK);
    return it->fields.country_hs_codes;
}

/* ---- locations ---------------------------------------------------------- */

Test(location, put_without_fields_creates_one_with_the_defaults)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_location_put(e, 7, NULL), INV_OK);
    inv_location l;
    cr_assert_eq(inv_location_get(e, 7, &l), INV_OK);
    cr_assert_eq(l.id, 7);
    cr_assert_eq(l.fields.mask, INV_LOC_ALL);
    cr_assert(l.fields.active);
    cr_assert_eq(l.fields.priority, 0);
    cr_assert_str_empty(l.fields.name);
    cr_assert_str_empty(l.fields.country_code);
    cr_assert(l.created_at_ms > 0 && l.updated_at_ms == l.created_at_ms);
    inv_close(e);
}

Test(location, put_with_mask_zero_writes_every_field_and_get_returns_them)
{
    inv_engine *e = open_tiny();
    inv_location_fields f = loc_fields(0);
    snprintf(f.name, sizeof f.name, "Main warehouse");
    snprintf(f.address1, sizeof f.address1, "1 Dock Road");
    snprintf(f.address2, sizeof f.address2, "Unit 4");
    snprintf(f.city, sizeof f.city, "Ottawa");
    snprintf(f.province, sizeof f.province, "Ontario");
    snprintf(f.province_code, sizeof f.province_code, "ON");
    snprintf(f.country, sizeof f.country, "Canada");
    snprintf(f.country_code, sizeof f.country_code, "CA");
    snprintf(f.zip, sizeof f.zip, "K1A 0B1");
    snprintf(f.phone, sizeof f.phone, "+1 613 555 0100");
    f.active = false;
    f.priority = -3;
    cr_assert_eq(inv_location_put(e, 1, &f), INV_OK);
    inv_location l;
    cr_assert_eq(inv_location_get(e, 1, &l), INV_OK);
    f.mask = INV_LOC_ALL;
    cr_assert_eq(memcmp(&l.fields, &f, sizeof f), 0, "fields differ after a round trip");
    inv_close(e);
}

Test(location, put_on_an_existing_location_writes_only_the_masked_fields)
{
    inv_engine *e = open_tiny();
    inv_location_fields f = loc_fields(0);
    snprintf(f.name, sizeof f.name, "North");
    snprintf(f.city, sizeof f.city, "Oslo");
    f.priority = 5;
    cr_assert_eq(inv_location_put(e, 1, &f), INV_OK);
    inv_location before;
    cr_assert_eq(inv_location_get(e, 1, &before), INV_OK);
    inv_location_fields g = loc_fields(INV_LOC_CITY | INV_LOC_ACTIVE);
    snprintf(g.city, sizeof g.city, "Bergen");
    snprintf(g.name, sizeof g.name, "ignored");
    g.active = false;
    g.priority = 99;
    cr_assert_eq(inv_location_put(e, 1, &g), INV_OK);
    inv_location l;
    cr_assert_eq(inv_location_get(e, 1, &l), INV_OK);
    cr_assert_str_eq(l.fields.name, "North");
    cr_assert_str_eq(l.fields.city, "Bergen");
    cr_assert_not(l.fields.active);
    cr_assert_eq(l.fields.priority, 5);
    cr_assert_eq(l.created_at_ms, before.created_at_ms);
    cr_assert_geq(l.updated_at_ms, before.updated_at_ms);
    inv_close(e);
}

Test(location, put_refuses_unknown_mask_bits)
{
    inv_engine *e = open_tiny();
    inv_location_fields f = loc_fields(INV_LOC_ALL + 1);
    cr_assert_eq(inv_location_put(e, 1, &f), INV_EINVALID);
    f.mask = 1u << 31;
    cr_assert_eq(inv_location_put(e, 1, &f), INV_EINVALID);
    cr_assert_eq(inv_location_get(e, 1, &(inv_location){0}), INV_ENOTFOUND);
    inv_close(e);
}

Test(location, put_refuses_a_string_that_fills_its_array_without_a_nul)
{
    inv_engine *e = open_tiny();
    inv_location_fields f = loc_fields(INV_LOC_NAME);
    memset(f.name, 'x', sizeof f.name);
    cr_assert_eq(inv_location_put(e, 1, &f), INV_EINVALID);
    f = loc_fields(INV_LOC_PROVINCE_CODE);
    memset(f.province_code, 'Q', sizeof f.province_code);
    cr_assert_eq(inv_location_put(e, 1, &f), INV_EINVALID);
    f = loc_fields(INV_LOC_PHONE);
    memset(f.phone, '1', sizeof f.phone - 1); /* exactly INV_STR_MAX bytes: fine */
    cr_assert_eq(inv_location_put(e, 1, &f), INV_OK);
    inv_close(e);
}

Test(location, put_refuses_a_country_code_that_is_not_two_uppercase_letters)
{
    inv_engine *e = open_tiny();
    const char *bad[] = {"us", "U", "U1", "u", "1A"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        inv_location_fields f = loc_fields(INV_LOC_COUNTRY_CODE);
        snprintf(f.country_code, sizeof f.country_code, "%s", bad[i]);
        cr_assert_eq(inv_location_put(e, 1, &f), INV_EINVALID, "'%s'", bad[i]);
    }
    inv_location_fields f = loc_fields(INV_LOC_COUNTRY_CODE);
    memcpy(f.country_code, "USA", 3); /* no NUL within the array */
    cr_assert_eq(inv_location_put(e, 1, &f), INV_EINVALID);
    snprintf(f.country_code, sizeof f.country_code, "US");
    cr_assert_eq(inv_location_put(e, 1, &f), INV_OK);
    f.country_code[0] = '\0';
    cr_assert_eq(inv_location_put(e, 1, &f), INV_OK);
    inv_close(e);
}

Test(location, put_refuses_an_active_flag_that_is_neither_0_nor_1)
{
    inv_engine *e = open_tiny();
    inv_location_fields f = loc_fields(INV_LOC_ACTIVE);
    memset(&f.active, 7, 1);
    cr_assert_eq(inv_location_put(e, 1, &f), INV_EINVALID);
    f.mask = INV_LOC_NAME; /* not masked: not read */
    cr_assert_eq(inv_location_put(e, 1, &f), INV_OK);
    inv_close(e);
}

Test(location, put_keeps_any_int32_priority)
{
    inv_engine *e = open_tiny();
    int32_t prios[] = {INT32_MIN, -1, 0, INT32_MAX};
    for (size_t i = 0; i < 4; i++) {
        inv_location_fields f = loc_fields(INV_LOC_PRIORITY);
        f.priority = prios[i];
        cr_assert_eq(inv_location_put(e, 3, &f), INV_OK);
        inv_location l;
        cr_assert_eq(inv_location_get(e, 3, &l), INV_OK);
        cr_assert_eq(l.fields.priority, prios[i]);
    }
    inv_close(e);
}

Test(location, get_of_an_unknown_location_is_notfound_and_null_arguments_are_invalid)
{
    inv_engine *e = open_tiny();
    inv_location l;
    cr_assert_eq(inv_location_get(e, 42, &l), INV_ENOTFOUND);
    cr_assert_eq(inv_location_get(e, 42, NULL), INV_EINVALID);
    cr_assert_eq(inv_location_get(NULL, 42, &l), INV_EINVALID);
    cr_assert_eq(inv_location_put(NULL, 42, NULL), INV_EINVALID);
    cr_assert_eq(inv_location_default(e, NULL), INV_EINVALID);
    inv_close(e);
}

Test(location, ids_zero_and_uint64_max_are_ordinary_locations)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_location_put(e, 0, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, UINT64_MAX, NULL), INV_OK);
    inv_location l;
    cr_assert_eq(inv_location_get(e, 0, &l), INV_OK);
    cr_assert_eq(l.id, 0);
    cr_assert(l.is_default);
    cr_assert_eq(inv_location_get(e, UINT64_MAX, &l), INV_OK);
    cr_assert_eq(l.id, UINT64_MAX);
    cr_assert_not(l.is_default);
    cr_assert_eq(inv_item_put(e, 5, NULL), INV_OK);
    tu_set_level(e, 5, 0, 3);
    tu_set_level(e, 5, UINT64_MAX, 4);
    inv_level_entry le[4];
    size_t n = 0;
    cr_assert_eq(inv_level_list(e, 5, le, 4, &n), INV_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(le[0].location, 0);
    cr_assert_eq(le[1].location, UINT64_MAX);
    inv_close(e);
}

Test(location, the_first_location_created_becomes_the_default)
{
    inv_engine *e = open_tiny();
    uint64_t def = 1;
    cr_assert_eq(inv_location_default(e, &def), INV_ENOTFOUND);
    cr_assert_eq(inv_location_put(e, 30, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, 10, NULL), INV_OK);
    cr_assert_eq(inv_location_default(e, &def), INV_OK);
    cr_assert_eq(def, 30);
    inv_location l;
    cr_assert_eq(inv_location_get(e, 30, &l), INV_OK);
    cr_assert(l.is_default);
    cr_assert_eq(inv_location_get(e, 10, &l), INV_OK);
    cr_assert_not(l.is_default);
    inv_close(e);
}

Test(location, set_default_moves_the_default_and_refuses_an_unknown_location)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_location_set_default(e, 10), INV_ENOTFOUND);
    cr_assert_eq(inv_location_put(e, 30, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, 10, NULL), INV_OK);
    cr_assert_eq(inv_location_set_default(e, 10), INV_OK);
    uint64_t def = 0;
    cr_assert_eq(inv_location_default(e, &def), INV_OK);
    cr_assert_eq(def, 10);
    cr_assert_eq(inv_location_set_default(e, 11), INV_ENOTFOUND);
    cr_assert_eq(inv_location_default(e, &def), INV_OK);
    cr_assert_eq(def, 10);
    cr_assert_eq(inv_location_put(e, 40, NULL), INV_OK); /* not the first */
    cr_assert_eq(inv_location_default(e, &def), INV_OK);
    cr_assert_eq(def, 10);
    inv_close(e);
}

/* Default location race in journal mode (issue 17, fix 3): the first
 * location's create offers itself as default in memory, publishes its
 * record, then journals the default. A LOC.DEFAULT set and acknowledged
 * between the two must stand. The first LOCATION record's publish stalls
 * (the fault seam) while another thread creates a second location and
 * makes it the default. fsync none: the set is acknowledged when applied
 * (under always it would wait for the stalled record). */
static _Atomic int first_loc_stalled, first_loc_go;

static void stall_first_location(uint8_t type)
{
    int no = 0;
    /* relaxed: a one-shot claim; the flags below carry the handshake. */
    if (type != PERSIST_LOCATION ||
        !atomic_compare_exchange_strong_explicit(&first_loc_stalled, &no, 1, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    (void)tu_wait_at_least(&first_loc_go, 1, 10000);
}

static void *create_first_location(void *e)
{
    return (void *)(intptr_t)inv_location_put(e, 30, NULL);
}

Test(location, a_default_set_while_the_first_location_is_created_stands)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "locdefault");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    atomic_store_explicit(&first_loc_stalled, 0, memory_order_relaxed);
    atomic_store_explicit(&first_loc_go, 0, memory_order_relaxed);
    tu_before_publish(stall_first_location);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, create_first_location, e), 0);
    cr_assert(tu_wait_at_least(&first_loc_stalled, 1, 10000), "the first create never published");
    uint64_t def = 0;
    cr_assert(inv_location_default(e, &def) == INV_OK && def == 30, "30 offered itself first");
    cr_assert_eq(inv_location_put(e, 10, NULL), INV_OK);
    cr_assert_eq(inv_location_set_default(e, 10), INV_OK); /* acknowledged */
    /* release: lets the first create go on. */
    atomic_store_explicit(&first_loc_go, 1, memory_order_release);
    void *out;
    pthread_join(th, &out);
    tu_before_publish(NULL);
    cr_assert_eq((intptr_t)out, INV_OK);
    cr_assert(inv_location_default(e, &def) == INV_OK && def == 10,
              "the acknowledged default 10 was overwritten by %" PRIu64, def);
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_NONE);
    cr_assert(inv_location_default(e, &def) == INV_OK && def == 10, "after a reopen: %" PRIu64,
              def);
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

Test(location, creating_more_than_the_maximum_is_a_limit_error)
{
    inv_engine *e = open_tiny();
    for (uint64_t i = 0; i < INV_LOCATIONS_MAX; i++)
        cr_assert_eq(inv_location_put(e, i * 3, NULL), INV_OK, "location %" PRIu64, i);
    cr_assert_eq(inv_location_put(e, 1, NULL), INV_ELIMIT);
    cr_assert_eq(inv_location_get(e, 1, &(inv_location){0}), INV_ENOTFOUND);
    /* updating an existing one is still fine */
    inv_location_fields f = loc_fields(INV_LOC_PRIORITY);
    f.priority = 9;
    cr_assert_eq(inv_location_put(e, 3, &f), INV_OK);
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.locations, INV_LOCATIONS_MAX);
    inv_close(e);
}

/* ---- listing ------------------------------------------------------------ */

typedef int (*list_fn)(inv_engine *, uint64_t, size_t, uint64_t *, size_t, size_t *, uint64_t *);

Test(list, count_zero_or_above_the_maximum_and_missing_buffers_are_invalid)
{
    inv_engine *e = open_tiny();
    uint64_t ids[4], next;
    size_t n;
    list_fn fns[2] = {inv_item_list, inv_location_list};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(fns[k](e, 0, 0, ids, 4, &n, &next), INV_EINVALID);
        cr_assert_eq(fns[k](e, 0, INV_LIST_COUNT_MAX + 1, ids, 4, &n, &next), INV_EINVALID);
        cr_assert_eq(fns[k](e, 0, 4, NULL, 4, &n, &next), INV_EINVALID);
        cr_assert_eq(fns[k](e, 0, 4, ids, 0, &n, &next), INV_EINVALID);
        cr_assert_eq(fns[k](e, 0, 4, ids, 4, NULL, &next), INV_EINVALID);
        cr_assert_eq(fns[k](e, 0, 4, ids, 4, &n, NULL), INV_EINVALID);
        cr_assert_eq(fns[k](e, 0, 4, ids, 4, &n, &next), INV_OK);
        cr_assert_eq(n, 0);
        cr_assert_eq(next, 0);
    }
    inv_close(e);
}

/* Lists every id of fn with pages of `count`, putting up to three new
 * entries (ids from 1e6 on, max_new in all) after each page; counts in
 * seen[] how often each of ids [0, n) was listed, and checks no id comes
 * twice. */
static void list_while_inserting(inv_engine *e, list_fn fn, size_t n, size_t count, uint8_t *seen,
                                 size_t max_new)
{
    uint64_t cursor = 0, ids[INV_LIST_COUNT_MAX], extra = 1000000;
    uint8_t *extra_seen = calloc(100000, 1);
    cr_assert_not_null(extra_seen);
    size_t pages = 0;
    do {
        size_t got = 0;
        cr_assert_eq(fn(e, cursor, count, ids, INV_LIST_COUNT_MAX, &got, &cursor), INV_OK);
        cr_assert_leq(got, INV_LIST_COUNT_MAX);
        for (size_t i = 0; i < got; i++) {
            if (ids[i] < n)
                cr_assert_eq(seen[ids[i]]++, 0, "id %" PRIu64 " listed twice", ids[i]);
            else
                cr_assert_eq(extra_seen[ids[i] - 1000000]++, 0, "new id listed twice");
        }
        for (int k = 0; k < 3 && extra < 1000000 + max_new; k++) {
            if (fn == inv_item_list)
                cr_assert_eq(inv_item_put(e, extra++, NULL), INV_OK);
            else
                cr_assert_eq(inv_location_put(e, extra++, NULL), INV_OK);
        }
        cr_assert_lt(++pages, 1000000, "the listing never ends");
    } while (cursor != 0);
    free(extra_seen);
}

Test(list, item_pages_visit_every_item_once_while_the_table_grows)
{
    inv_engine *e = open_tiny();
    size_t n = (size_t)tu_iters_min(4000, 300);
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(inv_item_put(e, i, NULL), INV_OK);
    size_t counts[] = {1, 7, 100, INV_LIST_COUNT_MAX};
    for (size_t c = 0; c < 4; c++) {
        uint8_t *seen = calloc(n, 1);
        list_while_inserting(e, inv_item_list, n, counts[c], seen, 20000);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(seen[i], 1, "item %zu seen %u times (count %zu)", i, seen[i], counts[c]);
        free(seen);
    }
    inv_close(e);
}

Test(list, location_pages_visit_every_location_once_while_the_table_grows)
{
    inv_engine *e = open_tiny();
    size_t n = (size_t)tu_iters_min(1500, 200);
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(inv_location_put(e, i, NULL), INV_OK);
    size_t counts[] = {1, 13, INV_LIST_COUNT_MAX};
    for (size_t c = 0; c < 3; c++) {
        uint8_t *seen = calloc(n, 1);
        list_while_inserting(e, inv_location_list, n, counts[c], seen, 2000);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(seen[i], 1, "location %zu seen %u times", i, seen[i]);
        free(seen);
    }
    inv_close(e);
}

Test(list, deleted_items_are_not_listed)
{
    inv_engine *e = open_tiny();
    for (uint64_t i = 0; i < 50; i++)
        cr_assert_eq(inv_item_put(e, i, NULL), INV_OK);
    for (uint64_t i = 0; i < 50; i += 2)
        cr_assert_eq(inv_item_del(e, i), INV_OK);
    uint8_t seen[50] = {0};
    list_while_inserting(e, inv_item_list, 50, 10, seen, 0);
    for (size_t i = 0; i < 50; i++)
        cr_assert_eq(seen[i], i % 2, "item %zu", i);
    inv_close(e);
}

/* ---- items: create, read, update ---------------------------------------- */

Test(item, put_without_fields_creates_one_with_the_defaults)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_item_put(e, 9, NULL), INV_OK);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 9, &it), INV_OK);
    cr_assert_eq(it.id, 9);
    cr_assert_eq(it.fields.mask, INV_ITEM_ALL);
    cr_assert(it.fields.tracked);
    cr_assert(it.fields.requires_shipping);
    cr_assert_str_empty(it.fields.sku);
    cr_assert_str_empty(it.fields.cost);
    cr_assert_str_empty(it.fields.variant);
    cr_assert(it.created_at_ms > 0);
    inv_close(e);
}

Test(item, put_with_mask_zero_writes_every_field_and_get_returns_them)
{
    inv_engine *e = open_tiny();
    inv_item_fields f = item_fields(0);
    snprintf(f.sku, sizeof f.sku, "TSHIRT-RED-M");
    f.tracked = false;
    snprintf(f.cost, sizeof f.cost, "-25.000001");
    f.requires_shipping = false;
    snprintf(f.country_code_of_origin, sizeof f.country_code_of_origin, "PT");
    snprintf(f.province_code_of_origin, sizeof f.province_code_of_origin, "PT-13");
    snprintf(f.harmonized_system_code, sizeof f.harmonized_system_code, "6109100010");
    snprintf(f.variant, sizeof f.variant, "gid://variant/1");
    snprintf(f.product, sizeof f.product, "gid://product/1");
    cr_assert_eq(inv_item_put(e, 1, &f), INV_OK);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 1, &it), INV_OK);
    f.mask = INV_ITEM_ALL;
    cr_assert_eq(memcmp(&it.fields, &f, sizeof f), 0, "fields differ after a round trip");
    inv_close(e);
}

Test(item, put_on_an_existing_item_writes_only_the_masked_fields)
{
    inv_engine *e = open_tiny();
    inv_item_fields f = item_fields(INV_ITEM_SKU | INV_ITEM_COST);
    snprintf(f.sku, sizeof f.sku, "A");
    snprintf(f.cost, sizeof f.cost, "1.5");
    cr_assert_eq(inv_item_put(e, 1, &f), INV_OK);
    inv_item before;
    cr_assert_eq(inv_item_get(e, 1, &before), INV_OK);
    inv_item_fields g = item_fields(INV_ITEM_COST);
    snprintf(g.sku, sizeof g.sku, "ignored");
    snprintf(g.cost, sizeof g.cost, "2");
    g.tracked = false; /* not masked */
    cr_assert_eq(inv_item_put(e, 1, &g), INV_OK);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 1, &it), INV_OK);
    cr_assert_str_eq(it.fields.sku, "A");
    cr_assert_str_eq(it.fields.cost, "2");
    cr_assert(it.fields.tracked);
    cr_assert_eq(it.created_at_ms, before.created_at_ms);
    cr_assert_geq(it.updated_at_ms, before.updated_at_ms);
    by_sku(e, "ignored", INV_ENOTFOUND);
    cr_assert_eq(by_sku(e, "A", INV_OK), 1);
    inv_close(e);
}

Test(item, put_without_fields_on_an_existing_item_changes_nothing)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(put_sku(e, 1, "KEEP"), INV_OK);
    cr_assert_eq(inv_item_put(e, 1, NULL), INV_OK);
    cr_assert_eq(by_sku(e, "KEEP", INV_OK), 1);
    inv_close(e);
}

Test(item, put_refuses_unknown_mask_bits)
{
    inv_engine *e = open_tiny();
    inv_item_fields f = item_fields(INV_ITEM_ALL + 1);
    cr_assert_eq(inv_item_put(e, 1, &f), INV_EINVALID);
    f.mask = 1u << 20;
    cr_assert_eq(inv_item_put(e, 1, &f), INV_EINVALID);
    cr_assert_eq(inv_item_get(e, 1, &(inv_item){0}), INV_ENOTFOUND);
    inv_close(e);
}

Test(item, put_refuses_any_string_that_fills_its_array_without_a_nul)
{
    inv_engine *e = open_tiny();
    struct {
        unsigned mask;
        size_t off, size;
    } s[] = {
        {INV_ITEM_SKU, offsetof(inv_item_fields, sku), INV_SKU_MAX + 1},
        {INV_ITEM_COST, offsetof(inv_item_fields, cost), INV_COST_MAX + 1},
        {INV_ITEM_COUNTRY_OF_ORIGIN, offsetof(inv_item_fields, country_code_of_origin), 3},
        {INV_ITEM_PROVINCE_OF_ORIGIN, offsetof(inv_item_fields, province_code_of_origin),
         INV_PROVINCE_CODE_MAX + 1},
        {INV_ITEM_HS_CODE, offsetof(inv_item_fields, harmonized_system_code), INV_HS_CODE_MAX + 1},
        {INV_ITEM_VARIANT, offsetof(inv_item_fields, variant), INV_VARIANT_MAX + 1},
        {INV_ITEM_PRODUCT, offsetof(inv_item_fields, product), INV_VARIANT_MAX + 1},
    };
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        inv_item_fields f = item_fields(s[i].mask);
        memset((char *)&f + s[i].off, '7', s[i].size);
        cr_assert_eq(inv_item_put(e, 1, &f), INV_EINVALID, "field %zu", i);
        f.mask = 0; /* every field: still refused */
        cr_assert_eq(inv_item_put(e, 1, &f), INV_EINVALID, "field %zu, mask 0", i);
    }
    cr_assert_eq(inv_item_get(e, 1, &(inv_item){0}), INV_ENOTFOUND);
    inv_close(e);
}

Test(item, put_accepts_a_sku_of_exactly_the_maximum_length)
{
    inv_engine *e = open_tiny();
    char sku[INV_SKU_MAX + 1];
    memset(sku, 's', INV_SKU_MAX);
    sku[INV_SKU_MAX] = '\0';
    cr_assert_eq(put_sku(e, 1, sku), INV_OK);
    cr_assert_eq(by_sku(e, sku, INV_OK), 1);
    inv_close(e);
}

Test(item, put_accepts_only_decimal_costs)
{
    inv_engine *e = open_tiny();
    const char *good[] = {"", "0", "25", "25.00", "-1", "-0.5", "1.123456", "000123"};
    const char *bad[] = {"1.",  ".5", "1.1234567", "abc", "-",     "+1", "1e5",
                         "1,5", " 1", "1 ",        "--1", "1.2.3", "-.1"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_assert_eq(item_put_cost(e, good[i]), INV_OK, "'%s'", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(item_put_cost(e, bad[i]), INV_EINVALID, "'%s'", bad[i]);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 1, &it), INV_OK);
    cr_assert_str_eq(it.fields.cost, "000123");
    inv_close(e);
}

Test(item, put_accepts_only_hs_codes_of_6_to_16_digits)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(item_put_hs(e, ""), INV_OK);
    cr_assert_eq(item_put_hs(e, "123456"), INV_OK);
    cr_assert_eq(item_put_hs(e, "1234567890123456"), INV_OK);
    cr_assert_eq(item_put_hs(e, "12345"), INV_EINVALID);
    cr_assert_eq(item_put_hs(e, "12345a"), INV_EINVALID);
    cr_assert_eq(item_put_hs(e, "6109.10"), INV_EINVALID);
    inv_close(e);
}

Test(item, put_accepts_only_well_formed_country_hs_codes)
{
    inv_engine *e = open_tiny();
    inv_item it;
    cr_assert_eq(item_put_country_hs(e, 1, "CA:1234567890,US:620342"), INV_OK);
    cr_assert_str_eq(item_country_hs(e, 1, &it), "CA:1234567890,US:620342");
    /* the most pairs, each code at its longest: 251 bytes */
    char most[INV_COUNTRY_HS_CODES_MAX + 1] = "";
    for (int i = 0; i < INV_COUNTRY_HS_PAIRS_MAX; i++)
        snprintf(most + strlen(most), sizeof most - strlen(most), "%sA%c:1234567890123456",
                 i ? "," : "", 'A' + i);
    cr_assert_eq(item_put_country_hs(e, 1, most), INV_OK);
    cr_assert_str_eq(item_country_hs(e, 1, &it), most);
    static const char *const bad[] = {
        "CA",
        "CA:",
        "CA:12345",
        "ca:123456",
        "C1:123456",
        "CA-123456",
        "CA:123456,",
        ",CA:123456",
        "CA:123456,,US:123456",
        "CA:12345a",
        "CA:12345678901234567",
        "CA:123456,CA:654321",
        "CAN:123456",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(item_put_country_hs(e, 1, bad[i]), INV_EINVALID, "%s", bad[i]);
    cr_assert_str_eq(item_country_hs(e, 1, &it), most, "a refused put changes nothing");
    /* a 13th pair (short codes, so the bytes fit) is over the pair limit */
    char over[INV_COUNTRY_HS_CODES_MAX + 1] = "";
    for (int i = 0; i <= INV_COUNTRY_HS_PAIRS_MAX; i++)
        snprintf(over + strlen(over), sizeof over - strlen(over), "%sB%c:123456", i ? "," : "",
                 'A' + i);
    cr_assert_eq(item_put_country_hs(e, 1, over), INV_EINVALID);
    cr_assert_eq(item_put_country_hs(e, 1, ""), INV_OK, "empty clears");
    cr_assert_str_eq(item_country_hs(e, 1, &it), "");
    inv_close(e);
}

/* An item without country HS codes keeps the first payload format byte for
 * byte (old journals and snapshots read; nothing grows); one with them is
 * extended, and both decode back to the record they came from. */
Test(item, country_hs_codes_extend_the_payload_only_when_present)
{
    inv_item_fields f = item_fields(INV_ITEM_SKU | INV_ITEM_COUNTRY_HS_CODES);
    snprintf(f.sku, sizeof f.sku, "S");
    unsigned wmask;
    cr_assert_eq(record_item_validate(&f, &wmask), INV_OK);
    item_rec *plain = record_item_build(NULL, &f, wmask, 1000);
    cr_assert_not_null(plain);
    const uint32_t v1_len = 8 + 8 + 1 + 8 + 8 + IS_COUNT_V1 + 1; /* head, times, lens, "S" */
    uint8_t buf[RECORD_PAYLOAD_MAX];
    cr_assert_eq(record_item_encode(buf, 5, 9, plain), v1_len);
    cr_assert_eq(buf[16], 2 | 4, "flags: tracked, requires_shipping, not extended");

    snprintf(f.country_hs_codes, sizeof f.country_hs_codes, "CA:123456");
    item_rec *ext = record_item_build(NULL, &f, wmask, 1000);
    cr_assert_not_null(ext);
    uint32_t len = record_item_encode(buf, 5, 9, ext);
    cr_assert_eq(len, v1_len + 1 + 9);
    cr_assert_eq(buf[16], 2 | 4 | 8, "the extended flag");
    uint64_t id, version;
    item_rec *back;
    cr_assert_eq(record_item_decode(buf, len, &id, &version, &back), INV_OK);
    inv_item out;
    record_item_out(id, back, &out);
    cr_assert_str_eq(out.fields.country_hs_codes, "CA:123456");
    cr_assert_str_eq(out.fields.sku, "S");
    free(back);

    /* the first format decodes with no country HS codes */
    cr_assert_eq(record_item_encode(buf, 5, 9, plain), v1_len);
    cr_assert_eq(record_item_decode(buf, v1_len, &id, &version, &back), INV_OK);
    record_item_out(id, back, &out);
    cr_assert_str_eq(out.fields.country_hs_codes, "");
    free(back);

    /* extended with nothing in the extension: not an encoding we write */
    uint8_t odd[RECORD_PAYLOAD_MAX];
    memcpy(odd, buf, 8 + 8 + 1 + 8 + 8 + IS_COUNT_V1);
    odd[16] |= 8;
    odd[8 + 8 + 1 + 8 + 8 + IS_COUNT_V1] = 0; /* the extension's length */
    odd[8 + 8 + 1 + 8 + 8 + IS_COUNT_V1 + 1] = 'S';
    cr_assert_eq(record_item_decode(odd, v1_len + 1, &id, &version, &back), INV_EINVALID);
    /* an extension length beyond the payload */
    odd[8 + 8 + 1 + 8 + 8 + IS_COUNT_V1] = 9;
    cr_assert_eq(record_item_decode(odd, v1_len + 1, &id, &version, &back), INV_EINVALID);
    free(plain);
    free(ext);
}

Test(item, put_accepts_only_empty_or_two_uppercase_letter_countries)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(item_put_country(e, ""), INV_OK);
    cr_assert_eq(item_put_country(e, "CN"), INV_OK);
    cr_assert_eq(item_put_country(e, "cn"), INV_EINVALID);
    cr_assert_eq(item_put_country(e, "C"), INV_EINVALID);
    cr_assert_eq(item_put_country(e, "C9"), INV_EINVALID);
    inv_close(e);
}

Test(item, put_refuses_flags_that_are_neither_0_nor_1)
{
    inv_engine *e = open_tiny();
    inv_item_fields f = item_fields(INV_ITEM_TRACKED);
    memset(&f.tracked, 2, 1);
    cr_assert_eq(inv_item_put(e, 1, &f), INV_EINVALID);
    f = item_fields(INV_ITEM_REQUIRES_SHIPPING);
    memset(&f.requires_shipping, 0xff, 1);
    cr_assert_eq(inv_item_put(e, 1, &f), INV_EINVALID);
    inv_close(e);
}

Test(item, fields_outside_the_mask_are_not_validated)
{
    inv_engine *e = open_tiny();
    inv_item_fields f = item_fields(INV_ITEM_SKU);
    snprintf(f.sku, sizeof f.sku, "OK");
    memset(f.cost, 'x', sizeof f.cost);
    memset(f.harmonized_system_code, 'y', sizeof f.harmonized_system_code);
    memset(&f.tracked, 9, 1);
    cr_assert_eq(inv_item_put(e, 1, &f), INV_OK);
    inv_close(e);
}

Test(item, unknown_ids_and_null_arguments_are_refused)
{
    inv_engine *e = open_tiny();
    inv_item it;
    uint64_t id;
    cr_assert_eq(inv_item_get(e, 77, &it), INV_ENOTFOUND);
    cr_assert_eq(inv_item_get(e, 77, NULL), INV_EINVALID);
    cr_assert_eq(inv_item_del(e, 77), INV_ENOTFOUND);
    cr_assert_eq(inv_item_put(NULL, 77, NULL), INV_EINVALID);
    cr_assert_eq(inv_item_del(NULL, 77), INV_EINVALID);
    cr_assert_eq(inv_item_by_sku(e, "nope", &id), INV_ENOTFOUND);
    cr_assert_eq(inv_item_by_sku(e, NULL, &id), INV_EINVALID);
    cr_assert_eq(inv_item_by_sku(e, "", &id), INV_EINVALID);
    cr_assert_eq(inv_item_by_sku(e, "x", NULL), INV_EINVALID);
    cr_assert_eq(inv_item_by_variant(e, "nope", &id), INV_ENOTFOUND);
    cr_assert_eq(inv_item_by_variant(e, "", &id), INV_EINVALID);
    char long_sku[INV_SKU_MAX + 2];
    memset(long_sku, 'a', sizeof long_sku - 1);
    long_sku[sizeof long_sku - 1] = '\0';
    cr_assert_eq(inv_item_by_sku(e, long_sku, &id), INV_EINVALID);
    char long_var[INV_VARIANT_MAX + 2];
    memset(long_var, 'v', sizeof long_var - 1);
    long_var[sizeof long_var - 1] = '\0';
    cr_assert_eq(inv_item_by_variant(e, long_var, &id), INV_EINVALID);
    inv_close(e);
}

Test(item, ids_zero_and_uint64_max_are_ordinary_items)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_location_put(e, 1, NULL), INV_OK);
    cr_assert_eq(put_sku(e, 0, "ZERO"), INV_OK);
    cr_assert_eq(put_sku(e, UINT64_MAX, "MAX"), INV_OK);
    cr_assert_eq(by_sku(e, "ZERO", INV_OK), 0);
    cr_assert_eq(by_sku(e, "MAX", INV_OK), UINT64_MAX);
    tu_set_level(e, 0, 1, 5);
    tu_set_level(e, UINT64_MAX, 1, 6);
    cr_assert_eq(inv_item_del(e, 0), INV_OK);
    cr_assert_eq(inv_level_get(e, 0, 1, NULL), INV_ENOTFOUND);
    inv_level lv;
    cr_assert_eq(inv_level_get(e, UINT64_MAX, 1, &lv), INV_OK);
    cr_assert_eq(lv.available, 6);
    by_sku(e, "ZERO", INV_ENOTFOUND);
    inv_close(e);
}

/* ---- SKU and variant indexes -------------------------------------------- */

Test(index, a_sku_taken_by_another_item_is_refused_with_exists)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(put_sku(e, 1, "A"), INV_OK);
    cr_assert_eq(put_sku(e, 2, "A"), INV_EEXISTS);
    cr_assert_eq(inv_item_get(e, 2, &(inv_item){0}), INV_ENOTFOUND, "a refused create creates");
    cr_assert_eq(inv_item_put(e, 2, NULL), INV_OK);
    cr_assert_eq(put_sku(e, 2, "A"), INV_EEXISTS);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 2, &it), INV_OK);
    cr_assert_str_empty(it.fields.sku);
    cr_assert_eq(put_sku(e, 1, "A"), INV_OK, "putting its own SKU again is fine");
    cr_assert_eq(by_sku(e, "A", INV_OK), 1);
    inv_close(e);
}

Test(index, skus_are_compared_byte_for_byte)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(put_sku(e, 1, "abc"), INV_OK);
    cr_assert_eq(put_sku(e, 2, "ABC"), INV_OK);
    cr_assert_eq(put_sku(e, 3, "abc "), INV_OK);
    cr_assert_eq(by_sku(e, "abc", INV_OK), 1);
    cr_assert_eq(by_sku(e, "ABC", INV_OK), 2);
    cr_assert_eq(by_sku(e, "abc ", INV_OK), 3);
    by_sku(e, "ab", INV_ENOTFOUND);
    inv_close(e);
}

Test(index, an_empty_sku_is_not_unique)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(put_sku(e, 1, ""), INV_OK);
    cr_assert_eq(put_sku(e, 2, ""), INV_OK);
    cr_assert_eq(put_variant(e, 1, ""), INV_OK);
    cr_assert_eq(put_variant(e, 2, ""), INV_OK);
    inv_close(e);
}

Test(index, changing_a_sku_frees_the_old_one)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(put_sku(e, 1, "OLD"), INV_OK);
    cr_assert_eq(put_sku(e, 1, "NEW"), INV_OK);
    by_sku(e, "OLD", INV_ENOTFOUND);
    cr_assert_eq(by_sku(e, "NEW", INV_OK), 1);
    cr_assert_eq(put_sku(e, 2, "OLD"), INV_OK);
    cr_assert_eq(by_sku(e, "OLD", INV_OK), 2);
    cr_assert_eq(put_sku(e, 1, ""), INV_OK);
    by_sku(e, "NEW", INV_ENOTFOUND);
    cr_assert_eq(put_sku(e, 3, "NEW"), INV_OK);
    inv_close(e);
}

Test(index, a_variant_taken_by_another_item_is_refused_and_a_changed_one_freed)
{
    inv_engine *e = open_tiny();
    uint64_t id = 0;
    cr_assert_eq(put_variant(e, 1, "v1"), INV_OK);
    cr_assert_eq(put_variant(e, 2, "v1"), INV_EEXISTS);
    cr_assert_eq(inv_item_by_variant(e, "v1", &id), INV_OK);
    cr_assert_eq(id, 1);
    cr_assert_eq(put_variant(e, 1, "v2"), INV_OK);
    cr_assert_eq(inv_item_by_variant(e, "v1", &id), INV_ENOTFOUND);
    cr_assert_eq(put_variant(e, 2, "v1"), INV_OK);
    cr_assert_eq(inv_item_by_variant(e, "v1", &id), INV_OK);
    cr_assert_eq(id, 2);
    inv_close(e);
}

Test(index, a_refused_put_leaves_no_claim_behind)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(put_variant(e, 1, "taken"), INV_OK);
    inv_item_fields f = item_fields(INV_ITEM_SKU | INV_ITEM_VARIANT | INV_ITEM_PRODUCT);
    snprintf(f.sku, sizeof f.sku, "fresh");
    snprintf(f.variant, sizeof f.variant, "taken");
    snprintf(f.product, sizeof f.product, "p");
    cr_assert_eq(inv_item_put(e, 2, &f), INV_EEXISTS);
    by_sku(e, "fresh", INV_ENOTFOUND);
    size_t n = 9;
    cr_assert_eq(inv_product_items(e, "p", NULL, 0, &n), INV_ENOTFOUND);
    cr_assert_eq(put_sku(e, 3, "fresh"), INV_OK);
    inv_close(e);
}

Test(index, deleting_an_item_frees_its_sku_and_variant_and_drops_its_levels)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_location_put(e, 10, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, 11, NULL), INV_OK);
    inv_item_fields f = item_fields(INV_ITEM_SKU | INV_ITEM_VARIANT | INV_ITEM_PRODUCT);
    snprintf(f.sku, sizeof f.sku, "S");
    snprintf(f.variant, sizeof f.variant, "V");
    snprintf(f.product, sizeof f.product, "P");
    cr_assert_eq(inv_item_put(e, 1, &f), INV_OK);
    tu_set_level(e, 1, 10, 4);
    tu_set_level(e, 1, 11, 5);
    cr_assert_eq(inv_item_del(e, 1), INV_OK);
    cr_assert_eq(inv_item_get(e, 1, &(inv_item){0}), INV_ENOTFOUND);
    cr_assert_eq(inv_item_del(e, 1), INV_ENOTFOUND);
    cr_assert_eq(inv_level_get(e, 1, 10, NULL), INV_ENOTFOUND);
    cr_assert_eq(inv_level_get(e, 1, 11, NULL), INV_ENOTFOUND);
    by_sku(e, "S", INV_ENOTFOUND);
    uint64_t id;
    cr_assert_eq(inv_item_by_variant(e, "V", &id), INV_ENOTFOUND);
    size_t n;
    cr_assert_eq(inv_product_items(e, "P", NULL, 0, &n), INV_ENOTFOUND);
    cr_assert_eq(inv_item_put(e, 2, &f), INV_OK, "another item takes them");
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.items, 1);
    cr_assert_eq(st.levels, 0);
    /* the same id again starts afresh */
    cr_assert_eq(inv_item_put(e, 1, NULL), INV_OK);
    cr_assert_eq(inv_level_get(e, 1, 10, NULL), INV_ENOTFOUND);
    inv_close(e);
}

Test(index, levels_follow_the_tracked_flag_of_their_item)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_location_put(e, 10, NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, 1, NULL), INV_OK);
    tu_set_level(e, 1, 10, 0);
    inv_level lv;
    cr_assert_eq(inv_level_adjust(e, 1, 10, -1, 0, &lv), INV_EINSUFFICIENT);
    cr_assert_eq(tu_item_put_untracked(e, 1), INV_OK);
    cr_assert_eq(inv_level_adjust(e, 1, 10, -1, 0, &lv), INV_OK, "untracked: always available");
    inv_item_fields f = item_fields(INV_ITEM_TRACKED);
    cr_assert_eq(inv_item_put(e, 1, &f), INV_OK);
    cr_assert_eq(inv_level_adjust(e, 1, 10, -1, 0, &lv), INV_EINSUFFICIENT);
    inv_close(e);
}

Test(index, stats_count_items_and_locations)
{
    inv_engine *e = open_tiny();
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(inv_item_put(e, i, NULL), INV_OK);
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(inv_item_put(e, i, NULL), INV_OK); /* updates */
    for (uint64_t i = 0; i < 5; i++)
        cr_assert_eq(inv_item_del(e, i), INV_OK);
    cr_assert_eq(inv_location_put(e, 1, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, 1, NULL), INV_OK);
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.items, 15);
    cr_assert_eq(st.locations, 1);
    inv_close(e);
}

/* ---- products ----------------------------------------------------------- */

Test(product, items_come_in_id_order_and_a_small_cap_is_a_limit_with_the_full_count)
{
    inv_engine *e = open_tiny();
    uint64_t ids[] = {50, UINT64_MAX, 0, 7};
    for (size_t i = 0; i < 4; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%zu", i);
        cr_assert_eq(put_product(e, ids[i], "shirt", v, true), INV_OK);
    }
    cr_assert_eq(put_product(e, 8, "other", "w", true), INV_OK);
    uint64_t out[8];
    size_t n = 0;
    cr_assert_eq(inv_product_items(e, "shirt", out, 8, &n), INV_OK);
    cr_assert_eq(n, 4);
    uint64_t want[] = {0, 7, 50, UINT64_MAX};
    cr_assert_arr_eq(out, want, sizeof want);
    cr_assert_eq(inv_product_items(e, "shirt", out, 2, &n), INV_ELIMIT);
    cr_assert_eq(n, 4);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[1], 7);
    cr_assert_eq(inv_product_items(e, "nope", out, 8, &n), INV_ENOTFOUND);
    cr_assert_eq(inv_product_items(e, "", out, 8, &n), INV_EINVALID);
    cr_assert_eq(inv_product_items(e, NULL, out, 8, &n), INV_EINVALID);
    cr_assert_eq(inv_product_items(e, "shirt", NULL, 8, &n), INV_EINVALID);
    cr_assert_eq(inv_product_items(e, "shirt", out, 8, NULL), INV_EINVALID);
    inv_close(e);
}

Test(product, changing_an_items_product_moves_it_and_an_empty_product_disappears)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(put_product(e, 1, "a", "v1", true), INV_OK);
    cr_assert_eq(put_product(e, 2, "a", "v2", true), INV_OK);
    cr_assert_eq(put_product(e, 1, "b", "v1", true), INV_OK);
    uint64_t out[4];
    size_t n = 0;
    cr_assert_eq(inv_product_items(e, "a", out, 4, &n), INV_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0], 2);
    cr_assert_eq(inv_product_items(e, "b", out, 4, &n), INV_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0], 1);
    inv_item_fields f = item_fields(INV_ITEM_PRODUCT); /* product "" */
    cr_assert_eq(inv_item_put(e, 2, &f), INV_OK);
    cr_assert_eq(inv_product_items(e, "a", out, 4, &n), INV_ENOTFOUND);
    cr_assert_eq(inv_item_del(e, 1), INV_OK);
    cr_assert_eq(inv_product_items(e, "b", out, 4, &n), INV_ENOTFOUND);
    inv_close(e);
}

Test(product, more_items_than_the_maximum_is_a_limit_error)
{
    inv_engine *e = open_tiny();
    for (uint64_t i = 0; i < INV_PRODUCT_ITEMS_MAX; i++) {
        inv_item_fields f = item_fields(INV_ITEM_PRODUCT);
        snprintf(f.product, sizeof f.product, "big");
        cr_assert_eq(inv_item_put(e, i, &f), INV_OK, "item %" PRIu64, i);
    }
    inv_item_fields f = item_fields(INV_ITEM_PRODUCT);
    snprintf(f.product, sizeof f.product, "big");
    cr_assert_eq(inv_item_put(e, INV_PRODUCT_ITEMS_MAX, &f), INV_ELIMIT);
    cr_assert_eq(inv_item_get(e, INV_PRODUCT_ITEMS_MAX, &(inv_item){0}), INV_ENOTFOUND);
    size_t n = 0;
    cr_assert_eq(inv_product_items(e, "big", NULL, 0, &n), INV_ELIMIT);
    cr_assert_eq(n, INV_PRODUCT_ITEMS_MAX);
    cr_assert_eq(inv_item_del(e, 3), INV_OK);
    cr_assert_eq(inv_item_put(e, INV_PRODUCT_ITEMS_MAX, &f), INV_OK);
    inv_close(e);
}

/* Product "p": item 1 (variant v1, tracked) at locations 10 and 20, item 2
 * (v2, untracked) at 10, item 3 (v3, tracked) without levels; item 4 in
 * another product. */
static inv_engine *open_stocked_product(void)
{
    inv_engine *e = open_tiny();
    cr_assert_eq(inv_location_put(e, 20, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, 10, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, 30, NULL), INV_OK);
    cr_assert_eq(put_product(e, 2, "p", "v2", false), INV_OK);
    cr_assert_eq(put_product(e, 1, "p", "v1", true), INV_OK);
    cr_assert_eq(put_product(e, 3, "p", "v3", true), INV_OK);
    cr_assert_eq(put_product(e, 4, "q", "v4", true), INV_OK);
    tu_set_level(e, 1, 10, 5);
    tu_set_level(e, 1, 20, 7);
    tu_set_level(e, 2, 10, 100);
    tu_set_level(e, 4, 10, 1000);
    return e;
}

Test(product, inventory_has_one_row_per_level_and_totals_tracked_items)
{
    inv_engine *e = open_stocked_product();
    inv_stock_row rows[8];
    size_t n = 0;
    int64_t total = 0;
    cr_assert_eq(inv_product_inventory(e, "p", NULL, rows, 8, &n, &total), INV_OK);
    cr_assert_eq(n, 4, "three levels and item 3's row without one");
    cr_assert_eq(total, 12, "untracked item 2 counts nothing");
    cr_assert_str_eq(rows[0].variant, "v1");
    cr_assert_eq(rows[0].item, 1);
    cr_assert_eq(rows[0].location, 10);
    cr_assert_eq(rows[0].available, 5);
    cr_assert_eq(rows[1].item, 1);
    cr_assert_eq(rows[1].location, 20);
    cr_assert_eq(rows[1].available, 7);
    cr_assert_str_eq(rows[2].variant, "v2");
    cr_assert_eq(rows[2].item, 2);
    cr_assert_eq(rows[2].location, 10);
    cr_assert_eq(rows[2].available, 100);
    cr_assert(rows[0].has_level && rows[1].has_level && rows[2].has_level);
    cr_assert_str_eq(rows[3].variant, "v3");
    cr_assert_eq(rows[3].item, 3);
    cr_assert(!rows[3].has_level, "an item without levels still appears");
    cr_assert_eq(rows[3].available, 0);
    inv_close(e);
}

Test(product, inventory_at_one_location_keeps_only_its_rows)
{
    inv_engine *e = open_stocked_product();
    inv_stock_row rows[8];
    size_t n = 0;
    int64_t total = 0;
    uint64_t loc = 20;
    cr_assert_eq(inv_product_inventory(e, "p", &loc, rows, 8, &n, &total), INV_OK);
    cr_assert_eq(n, 3, "item 1's level there; items 2 and 3 without one");
    cr_assert_eq(total, 7);
    cr_assert_eq(rows[0].item, 1);
    cr_assert(rows[0].has_level);
    cr_assert(rows[1].item == 2 && !rows[1].has_level && rows[2].item == 3 && !rows[2].has_level);
    loc = 30;
    cr_assert_eq(inv_product_inventory(e, "p", &loc, rows, 8, &n, &total), INV_OK);
    cr_assert_eq(n, 3, "every item, none with a level there");
    for (size_t i = 0; i < n; i++)
        cr_assert(!rows[i].has_level);
    cr_assert_eq(total, 0);
    loc = 99;
    cr_assert_eq(inv_product_inventory(e, "p", &loc, rows, 8, &n, &total), INV_ENOTFOUND);
    inv_close(e);
}

Test(product, inventory_beyond_the_cap_is_a_limit_with_the_full_count)
{
    inv_engine *e = open_stocked_product();
    inv_stock_row rows[2];
    size_t n = 0;
    int64_t total = 0;
    cr_assert_eq(inv_product_inventory(e, "p", NULL, rows, 2, &n, &total), INV_ELIMIT);
    cr_assert_eq(n, 4);
    cr_assert_eq(total, 12);
    cr_assert_eq(rows[1].location, 20);
    cr_assert_eq(inv_product_inventory(e, "p", NULL, NULL, 0, &n, &total), INV_ELIMIT);
    cr_assert_eq(n, 4);
    inv_close(e);
}

Test(product, inventory_of_an_unknown_product_is_notfound_and_bad_arguments_invalid)
{
    inv_engine *e = open_stocked_product();
    inv_stock_row rows[2];
    size_t n = 0;
    int64_t total = 0;
    cr_assert_eq(inv_product_inventory(e, "zzz", NULL, rows, 2, &n, &total), INV_ENOTFOUND);
    cr_assert_eq(inv_product_inventory(e, "", NULL, rows, 2, &n, &total), INV_EINVALID);
    cr_assert_eq(inv_product_inventory(e, NULL, NULL, rows, 2, &n, &total), INV_EINVALID);
    cr_assert_eq(inv_product_inventory(e, "p", NULL, NULL, 2, &n, &total), INV_EINVALID);
    cr_assert_eq(inv_product_inventory(e, "p", NULL, rows, 2, NULL, &total), INV_EINVALID);
    cr_assert_eq(inv_product_inventory(e, "p", NULL, rows, 2, &n, NULL), INV_EINVALID);
    inv_close(e);
}

Test(product, inventory_follows_tracked_changes_and_deletes)
{
    inv_engine *e = open_stocked_product();
    inv_stock_row rows[8];
    size_t n = 0;
    int64_t total = 0;
    inv_item_fields f = item_fields(INV_ITEM_TRACKED);
    cr_assert_eq(inv_item_put(e, 2, &f), INV_OK);
    cr_assert_eq(inv_product_inventory(e, "p", NULL, rows, 8, &n, &total), INV_OK);
    cr_assert_eq(total, 112);
    cr_assert_eq(inv_item_del(e, 1), INV_OK);
    cr_assert_eq(inv_product_inventory(e, "p", NULL, rows, 8, &n, &total), INV_OK);
    cr_assert_eq(n, 2, "item 2's level and item 3's row");
    cr_assert_eq(total, 100);
    inv_close(e);
}

/* ---- races -------------------------------------------------------------- */

#define RACE_THREADS 4

typedef struct {
    inv_engine *e;
    size_t rounds;
    pthread_barrier_t barrier;
    _Atomic int wins[RACE_THREADS];
} sku_race;

static void sku_race_worker(void *p, size_t t)
{
    sku_race *r = p;
    for (size_t round = 0; round < r->rounds; round++) {
        char sku[32];
        snprintf(sku, sizeof sku, "race-%zu", round);
        pthread_barrier_wait(&r->barrier);
        int rc = put_sku(r->e, 1000000 * (t + 1) + round, sku);
        TU_CHECK(rc == INV_OK || rc == INV_EEXISTS, "put: %s", inv_strerror(rc));
        if (rc == INV_OK)
            /* relaxed: read after the join. */
            atomic_fetch_add_explicit(&r->wins[t], 1, memory_order_relaxed);
    }
}

Test(race, threads_putting_one_sku_on_different_items_leave_exactly_one_winner)
{
    sku_race r;
    memset(&r, 0, sizeof r);
    r.e = open_tiny();
    r.rounds = (size_t)tu_iters_min(2000, 50);
    pthread_barrier_init(&r.barrier, NULL, RACE_THREADS);
    tu_run_threads(RACE_THREADS, sku_race_worker, &r);
    pthread_barrier_destroy(&r.barrier);
    tu_assert_no_failures();
    int wins = 0;
    for (int t = 0; t < RACE_THREADS; t++)
        wins += atomic_load_explicit(&r.wins[t], memory_order_relaxed);
    cr_assert_eq((size_t)wins, r.rounds, "one winner per round");
    for (size_t round = 0; round < r.rounds; round++) {
        char sku[32];
        snprintf(sku, sizeof sku, "race-%zu", round);
        uint64_t owner = by_sku(r.e, sku, INV_OK);
        inv_item it;
        cr_assert_eq(inv_item_get(r.e, owner, &it), INV_OK);
        cr_assert_str_eq(it.fields.sku, sku);
        size_t holders = 0;
        for (size_t t = 0; t < RACE_THREADS; t++) {
            uint64_t id = 1000000 * (t + 1) + round;
            if (inv_item_get(r.e, id, &it) == INV_OK && strcmp(it.fields.sku, sku) == 0)
                holders++;
        }
        cr_assert_eq(holders, 1, "round %zu: %zu items hold %s", round, holders, sku);
    }
    inv_close(r.e);
}

/* Threads swap SKUs among a few items and names; the invariant afterwards:
 * each name is held by at most one item and every held name finds it. */
typedef struct {
    inv_engine *e;
    size_t iters;
} swap_race;

#define SWAP_ITEMS 4
#define SWAP_NAMES 6

static void swap_worker(void *p, size_t t)
{
    swap_race *r = p;
    tu_rng rng = tu_rng_seed(t + 17);
    for (size_t i = 0; i < r->iters; i++) {
        char name[16];
        uint64_t item = tu_rng_below(&rng, SWAP_ITEMS);
        snprintf(name, sizeof name, "n%u", (unsigned)tu_rng_below(&rng, SWAP_NAMES));
        int rc = tu_rng_below(&rng, 8) == 0 ? inv_item_del(r->e, item)
                 : tu_rng_below(&rng, 2)    ? put_sku(r->e, item, name)
                                            : put_variant(r->e, item, name);
        TU_CHECK(rc == INV_OK || rc == INV_EEXISTS || rc == INV_ENOTFOUND, "rc %d", rc);
    }
}

Test(race, threads_swapping_skus_and_variants_keep_them_unique_and_findable)
{
    swap_race r = {open_tiny(), (size_t)tu_iters_min(20000, 500)};
    tu_run_threads(RACE_THREADS, swap_worker, &r);
    tu_assert_no_failures();
    for (unsigned k = 0; k < SWAP_NAMES; k++) {
        char name[16];
        snprintf(name, sizeof name, "n%u", k);
        size_t sku_holders = 0, var_holders = 0;
        uint64_t sku_holder = 0, var_holder = 0;
        for (uint64_t item = 0; item < SWAP_ITEMS; item++) {
            inv_item it;
            if (inv_item_get(r.e, item, &it) != INV_OK)
                continue;
            if (strcmp(it.fields.sku, name) == 0)
                sku_holders++, sku_holder = item;
            if (strcmp(it.fields.variant, name) == 0)
                var_holders++, var_holder = item;
        }
        cr_assert_leq(sku_holders, 1, "%s held by %zu items", name, sku_holders);
        cr_assert_leq(var_holders, 1);
        uint64_t found;
        if (sku_holders)
            cr_assert_eq(by_sku(r.e, name, INV_OK), sku_holder);
        else
            by_sku(r.e, name, INV_ENOTFOUND);
        int rc = inv_item_by_variant(r.e, name, &found);
        cr_assert_eq(rc, var_holders ? INV_OK : INV_ENOTFOUND);
        if (var_holders)
            cr_assert_eq(found, var_holder);
        /* a free name can be taken: no leaked index entry */
        if (!sku_holders)
            cr_assert_eq(put_sku(r.e, 100 + k, name), INV_OK, "%s leaked", name);
    }
    inv_close(r.e);
}

/* Half the threads create and delete items, half set levels on them. */
typedef struct {
    inv_engine *e;
    size_t iters;
} level_race;

#define LR_ITEMS 8
#define LR_LOCS 4

static void level_race_worker(void *p, size_t t)
{
    level_race *r = p;
    tu_rng rng = tu_rng_seed(t + 101);
    for (size_t i = 0; i < r->iters; i++) {
        uint64_t item = tu_rng_below(&rng, LR_ITEMS);
        int rc;
        if (t % 2 == 0) {
            rc = tu_rng_below(&rng, 2) ? inv_item_put(r->e, item, NULL) : inv_item_del(r->e, item);
            TU_CHECK(rc == INV_OK || rc == INV_ENOTFOUND, "catalog rc %d", rc);
        } else {
            uint64_t loc = 10 + tu_rng_below(&rng, LR_LOCS);
            rc = inv_level_set(r->e, item, loc, (int64_t)i % 100, 0, NULL);
            TU_CHECK(rc == INV_OK || rc == INV_ENOTFOUND, "level rc %d", rc);
        }
    }
}

Test(race, racing_item_deletes_and_level_sets_leave_no_level_of_a_deleted_item)
{
    level_race r = {open_tiny(), (size_t)tu_iters_min(40000, 1000)};
    for (uint64_t l = 0; l < LR_LOCS; l++)
        cr_assert_eq(inv_location_put(r.e, 10 + l, NULL), INV_OK);
    tu_run_threads(RACE_THREADS, level_race_worker, &r);
    tu_assert_no_failures();
    uint64_t levels = 0, items = 0;
    for (uint64_t item = 0; item < LR_ITEMS; item++) {
        bool alive = inv_item_get(r.e, item, &(inv_item){0}) == INV_OK;
        items += alive;
        for (uint64_t l = 0; l < LR_LOCS; l++) {
            int rc = inv_level_get(r.e, item, 10 + l, NULL);
            if (!alive)
                cr_assert_eq(rc, INV_ENOTFOUND, "deleted item %" PRIu64 " kept a level", item);
            levels += rc == INV_OK;
        }
    }
    inv_stats st;
    cr_assert_eq(inv_stats_get(r.e, &st), INV_OK);
    cr_assert_eq(st.items, items);
    cr_assert_eq(st.levels, levels);
    inv_close(r.e);
}

/* One thread lists items while others create new ones (the table grows);
 * every item present from the start is listed exactly once. */
typedef struct {
    inv_engine *e;
    size_t n_initial, n_new;
    _Atomic int listed_ok;
} list_race;

static void list_race_worker(void *p, size_t t)
{
    list_race *r = p;
    if (t > 0) {
        for (size_t i = 0; i < r->n_new; i++) {
            int rc = inv_item_put(r->e, 1000000 * t + i, NULL);
            TU_CHECK(rc == INV_OK, "put rc %d", rc);
        }
        return;
    }
    uint8_t *seen = calloc(r->n_initial, 1);
    uint64_t cursor = 0, ids[64];
    do {
        size_t got = 0;
        int rc = inv_item_list(r->e, cursor, 16, ids, 64, &got, &cursor);
        TU_CHECK(rc == INV_OK, "list rc %d", rc);
        if (rc != INV_OK)
            break;
        for (size_t i = 0; i < got; i++)
            if (ids[i] < r->n_initial)
                TU_CHECK(seen[ids[i]]++ == 0, "item %" PRIu64 " twice", ids[i]);
    } while (cursor != 0);
    for (size_t i = 0; i < r->n_initial; i++)
        TU_CHECK(seen[i] == 1, "item %zu seen %u times", i, seen[i]);
    free(seen);
}

Test(race, a_listing_racing_inserts_sees_every_older_item_exactly_once)
{
    list_race r;
    memset(&r, 0, sizeof r);
    r.e = open_tiny();
    r.n_initial = (size_t)tu_iters_min(3000, 200);
    r.n_new = (size_t)tu_iters_min(20000, 500);
    for (uint64_t i = 0; i < r.n_initial; i++)
        cr_assert_eq(inv_item_put(r.e, i, NULL), INV_OK);
    tu_run_threads(3, list_race_worker, &r);
    tu_assert_no_failures();
    inv_close(r.e);
}

/* ---- durability --------------------------------------------------------- */

/* Locations 1, 2 (default 2); items 1 (SKU A2, variant v1, product p) and 3
 * (SKU C, product p, untracked); item 2 deleted (its SKU B free). */
static void fill_catalog(inv_engine *e)
{
    inv_location_fields lf = loc_fields(INV_LOC_NAME | INV_LOC_PRIORITY);
    snprintf(lf.name, sizeof lf.name, "one");
    lf.priority = -7;
    cr_assert_eq(inv_location_put(e, 1, &lf), INV_OK);
    cr_assert_eq(inv_location_put(e, 2, NULL), INV_OK);
    cr_assert_eq(inv_location_set_default(e, 2), INV_OK);
    cr_assert_eq(put_product(e, 1, "p", "v1", true), INV_OK);
    cr_assert_eq(put_sku(e, 1, "A"), INV_OK);
    cr_assert_eq(put_sku(e, 2, "B"), INV_OK);
    cr_assert_eq(put_product(e, 3, "p", "v3", false), INV_OK);
    cr_assert_eq(put_sku(e, 3, "C"), INV_OK);
    cr_assert_eq(inv_item_del(e, 2), INV_OK);
    cr_assert_eq(put_sku(e, 1, "A2"), INV_OK);
    cr_assert_eq(item_put_country_hs(e, 3, "CA:1234567890,US:620342"), INV_OK);
}

static void check_catalog(inv_engine *e)
{
    inv_location l;
    cr_assert_eq(inv_location_get(e, 1, &l), INV_OK);
    cr_assert_str_eq(l.fields.name, "one");
    cr_assert_eq(l.fields.priority, -7);
    cr_assert_not(l.is_default);
    uint64_t def = 0;
    cr_assert_eq(inv_location_default(e, &def), INV_OK);
    cr_assert_eq(def, 2);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 1, &it), INV_OK);
    cr_assert_str_eq(it.fields.sku, "A2");
    cr_assert_str_eq(it.fields.variant, "v1");
    cr_assert_str_eq(it.fields.country_hs_codes, "");
    cr_assert_str_eq(item_country_hs(e, 3, &it), "CA:1234567890,US:620342");
    cr_assert_eq(inv_item_get(e, 2, &it), INV_ENOTFOUND);
    cr_assert_eq(inv_item_get(e, 3, &it), INV_OK);
    cr_assert_not(it.fields.tracked);
    cr_assert_eq(by_sku(e, "A2", INV_OK), 1);
    cr_assert_eq(by_sku(e, "C", INV_OK), 3);
    by_sku(e, "A", INV_ENOTFOUND);
    by_sku(e, "B", INV_ENOTFOUND);
    uint64_t ids[4];
    size_t n = 0;
    cr_assert_eq(inv_product_items(e, "p", ids, 4, &n), INV_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 1);
    cr_assert_eq(ids[1], 3);
    cr_assert_eq(put_sku(e, 5, "C"), INV_EEXISTS, "the rebuilt index guards C");
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.items, 2);
    cr_assert_eq(st.locations, 2);
}

Test(durability, the_catalog_comes_back_from_the_journal_with_its_indexes)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "catalog");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    fill_catalog(e);
    check_catalog(e);
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_NONE);
    check_catalog(e);
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

Test(durability, the_catalog_comes_back_from_a_snapshot_and_the_journal_after_it)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "catalog");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_NONE);
    fill_catalog(e);
    cr_assert_eq(inv_snapshot(e), INV_OK);
    cr_assert_eq(put_sku(e, 3, "C2"), INV_OK);
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_NONE);
    cr_assert_eq(by_sku(e, "C2", INV_OK), 3);
    cr_assert_eq(put_sku(e, 3, "C"), INV_OK);
    check_catalog(e);
    cr_assert_eq(inv_snapshot(e), INV_OK);
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_NONE);
    check_catalog(e);
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}
