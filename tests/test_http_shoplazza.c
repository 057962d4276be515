/*
 * test_http_shoplazza.c — core/server/http_shoplazza.c, called directly
 * (no socket): a small request builder routes a target through the
 * router (http_route_find, so the table's patterns are checked too), runs
 * the handler on an engine (a journal under fsync none, so writes have
 * positions) and parses the body it wrote. Covers
 * every route, the seeds' examples field for field, and bad input.
 *
 * Suite shoplazza_server: a real invcored (tests/test_server_harness.h,
 * --requirepass, --fsync always) driven with libcurl through
 * tests/test_http_client.h: every route of http_shoplazza_routes (the walk
 * fails when one has no request), the seeds' examples (000, 003) field for
 * field, 405 with Allow / OPTIONS / HEAD on every path, bad input over the
 * wire (malformed JSON, wrong types, signed / 0 / over-u64 ids, a body
 * over the limit: 413), the Access-Token check, keep-alive, durability.
 *
 * SLZ_DOC=1 prints each exchange (request, status, body) for
 * docs/HTTP.md "Shoplazza".
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_json.h"
#include "server/http_route.h"
#include "test_http_client.h"
#include "test_server_harness.h"
#include "test_util.h"

#define V26 "/openapi/2026-01"
/* The seeds' ids (000: the guide; 003: List product inventory). */
#define G_PRODUCT "4d3e7859-455c-4899-a296-7befe731c585"
#define G_VARIANT "28ea5ee4-5b1d-4a9d-a92e-e60f0dff3da8"
#define G_ITEM 626514004247984698ULL
#define G_LOC 604253696473177059ULL
#define L_PRODUCT "f854e9a2-986d-4e2b-9df0-8e4c139ae80e"
#define L_VARIANT "5723299f-238a-4491-8b42-a187462e748a"
#define L_LOC 327627904831724000ULL
#define L_ITEM 1001ULL
/* a second variant of the guide's product, so that Stock is the guide's 7 */
#define G_VARIANT2 "9b0c4f2e-0000-4000-8000-000000000002"
#define G_ITEM2 626514004247984699ULL
#define OTHER_LOC 42ULL

static inv_engine *eng;
static char dir[128]; /* a journal, so that writes have positions */

typedef struct {
    int status;
    uint64_t durable_at;
    char *raw; /* the body, NUL-terminated */
    yajl_val json; /* parsed body (NULL: not JSON) */
} reply;

static reply last;

static void reply_free(reply *r)
{
    free(r->raw);
    yajl_tree_free(r->json);
    memset(r, 0, sizeof *r);
}

static bool no_header(const http_request *r, const char *name, http_str *v)
{
    (void)r, (void)name, (void)v;
    return false;
}

static const char *method_name(http_method m)
{
    static const char *names[] = {"", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    return names[m];
}

/* Runs one request; the reply is in last (freed by the next call). 0 when
 * no route matched (the router's 404/405, not a handler's). */
static int call(http_method m, const char *target, const char *body)
{
    reply_free(&last);
    const char *q = strchr(target, '?');
    http_request req;
    memset(&req, 0, sizeof req);
    req.method = m;
    req.path = (http_str){target, q ? (size_t)(q - target) : strlen(target)};
    req.query = q ? (http_str){q + 1, strlen(q + 1)} : (http_str){"", 0};
    req.body = body ? (http_str){body, strlen(body)} : (http_str){"", 0};
    req.e = eng;
    req.header = no_header;
    req.dialect = HTTP_DIALECT_SHOPLAZZA;
    const http_route *rt = NULL;
    char allow[HTTP_ALLOW_BYTES_MAX];
    http_match mt =
        http_route_find(m, req.path, &rt, req.params, &req.n_params, allow, sizeof allow);
    if (mt != HTTP_MATCH_FOUND)
        return 0;
    cr_assert_eq(rt->dialect, HTTP_DIALECT_SHOPLAZZA);
    http_body b;
    cr_assert_eq(http_body_init(&b), INV_OK);
    http_response res;
    memset(&res, 0, sizeof res);
    res.body = &b;
    rt->fn(&req, &res);
    cr_assert(!b.failed);
    cr_assert(res.status >= 200 && res.status <= 599, "status %d", res.status);
    last.status = res.status;
    last.durable_at = res.durable_at;
    last.raw = strndup(b.p, b.len);
    char err[128];
    last.json = yajl_tree_parse(last.raw, err, sizeof err);
    cr_assert_not_null(last.json, "reply is not JSON: %s", last.raw);
    http_body_free(&b);
    if (getenv("SLZ_DOC") != NULL)
        printf("%s %s\n%s%s%s=> %d %s\n\n", method_name(m), target, body ? "  " : "",
               body ? body : "", body ? "\n" : "", last.status, last.raw);
    return last.status;
}

/* A value of the last reply by path ("data", "location", "id", NULL). */
static yajl_val at(const char *k0, const char *k1, const char *k2, const char *k3)
{
    const char *path[] = {k0, k1, k2, k3, NULL};
    return yajl_tree_get(last.json, path, yajl_t_any);
}

static void expect_str(yajl_val v, const char *want)
{
    cr_assert(v != NULL && YAJL_IS_STRING(v), "not a string (want %s) in %s", want, last.raw);
    const char *got = v->u.string; /* a string: checked above */
    cr_assert(got != NULL && strcmp(got, want) == 0, "%s, want %s, in %s", got, want, last.raw);
}

static void slz_expect_int(yajl_val v, long long want)
{
    cr_assert(v != NULL && YAJL_IS_INTEGER(v), "not an integer (want %lld) in %s", want, last.raw);
    cr_assert_eq(YAJL_GET_INTEGER(v), want, "in %s", last.raw);
}

static void expect_bool(yajl_val v, bool want)
{
    cr_assert(v != NULL && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)), "not a bool in %s", last.raw);
    cr_assert_eq(YAJL_IS_TRUE(v), want, "in %s", last.raw);
}

/* "2026-07-02T02:58:47Z" */
static void expect_iso_time(yajl_val v)
{
    cr_assert(v != NULL && YAJL_IS_STRING(v), "no time in %s", last.raw);
    const char *s = YAJL_GET_STRING(v);
    cr_assert_eq(strlen(s), 20, "time %s", s);
    for (size_t i = 0; i < 20; i++) {
        const char *shape = "dddd-dd-ddTdd:dd:ddZ";
        if (shape[i] == 'd')
            cr_assert(s[i] >= '0' && s[i] <= '9', "time %s", s);
        else
            cr_assert_eq(s[i], shape[i], "time %s", s);
    }
}

static yajl_val arr_at(yajl_val a, size_t i)
{
    cr_assert(a != NULL && YAJL_IS_ARRAY(a), "not an array in %s", last.raw);
    cr_assert(i < a->u.array.len, "index %zu past %zu in %s", i, a->u.array.len, last.raw);
    return a->u.array.values[i];
}

static size_t arr_len(yajl_val a)
{
    cr_assert(a != NULL && YAJL_IS_ARRAY(a), "not an array in %s", last.raw);
    return a->u.array.len;
}

static yajl_val get(yajl_val o, const char *k)
{
    const char *path[] = {k, NULL};
    return yajl_tree_get(o, path, yajl_t_any);
}

/* An error of the 2026-01 shape with this status and code. */
static void slz_expect_error(int status, const char *code)
{
    cr_assert_eq(last.status, status, "status %d, want %d: %s", last.status, status, last.raw);
    expect_str(at("code", NULL, NULL, NULL), code);
    cr_assert(YAJL_IS_STRING(at("message", NULL, NULL, NULL)));
    cr_assert_eq(arr_len(at("errors", NULL, NULL, NULL)), 1);
    cr_assert_eq(last.durable_at, 0);
}

static void expect_success(void)
{
    cr_assert_eq(last.status, 200, "status %d: %s", last.status, last.raw);
    expect_str(at("code", NULL, NULL, NULL), "Success");
    cr_assert(YAJL_IS_OBJECT(at("data", NULL, NULL, NULL)));
}

static void put_item(uint64_t id, const char *variant, const char *product)
{
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_ITEM_VARIANT | INV_ITEM_PRODUCT | INV_ITEM_TRACKED;
    f.tracked = true;
    snprintf(f.variant, sizeof f.variant, "%s", variant);
    snprintf(f.product, sizeof f.product, "%s", product);
    cr_assert_eq(inv_item_put(eng, id, &f), INV_OK);
}

static void put_location(uint64_t id, const char *name)
{
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_LOC_NAME | INV_LOC_ACTIVE;
    f.active = true;
    snprintf(f.name, sizeof f.name, "%s", name);
    cr_assert_eq(inv_location_put(eng, id, &f), INV_OK);
}

/* The seeds' world: the guide's product (two variants, 3 + 4 = Stock 7
 * at its location, the first created: the default) and 003's product. */
static void setup(void)
{
    tu_tmpdir(dir, sizeof dir, "http-shoplazza");
    inv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_NONE;
    cr_assert_eq(inv_open(&eng, &cfg), INV_OK);
    put_location(G_LOC, "Main Warehouse");
    put_location(L_LOC, "Legacy Store");
    put_location(OTHER_LOC, "Overflow");
    put_item(G_ITEM, G_VARIANT, G_PRODUCT);
    put_item(G_ITEM2, G_VARIANT2, G_PRODUCT);
    put_item(L_ITEM, L_VARIANT, L_PRODUCT);
    cr_assert_eq(inv_level_set(eng, G_ITEM, G_LOC, 3, 0, NULL), INV_OK);
    cr_assert_eq(inv_level_set(eng, G_ITEM2, G_LOC, 4, 0, NULL), INV_OK);
    cr_assert_eq(inv_level_set(eng, L_ITEM, L_LOC, 1, 0, NULL), INV_OK);
}

static void teardown(void)
{
    reply_free(&last);
    inv_close(eng);
    tu_remove_tree(dir);
}

TestSuite(shoplazza, .init = setup, .fini = teardown);

/* ---- the guide's four steps (seed 000), field for field ---------------- */

Test(shoplazza, guide_step1_product_lists_its_variant_ids)
{
    call(HTTP_GET, V26 "/products/" G_PRODUCT, NULL);
    expect_success();
    expect_str(at("data", "product", "id", NULL), G_PRODUCT);
    yajl_val vs = at("data", "product", "variants", NULL);
    cr_assert_eq(arr_len(vs), 2);
    /* items in id order: G_ITEM < G_ITEM2 */
    expect_str(get(arr_at(vs, 0), "id"), G_VARIANT);
    expect_str(get(arr_at(vs, 0), "inventory_item_id"), "626514004247984698");
    expect_str(get(arr_at(vs, 0), "product_id"), G_PRODUCT);
    expect_str(get(arr_at(vs, 1), "id"), G_VARIANT2);
    expect_iso_time(get(arr_at(vs, 0), "updated_at"));
}

Test(shoplazza, guide_step2_variant_ids_resolve_to_inventory_item_ids_as_strings)
{
    call(HTTP_GET,
         V26 "/inventory_items/variant?variant_ids=" G_VARIANT "&variant_ids=nope"
             "&variant_ids=" L_VARIANT,
         NULL);
    expect_success();
    yajl_val l = at("data", "variant_inventory_items", NULL, NULL);
    cr_assert_eq(arr_len(l), 2, "unknown variants are left out: %s", last.raw);
    expect_str(get(arr_at(l, 0), "inventory_item_id"), "626514004247984698");
    expect_str(get(arr_at(l, 0), "variant_id"), G_VARIANT);
    expect_str(get(arr_at(l, 1), "inventory_item_id"), "1001");
    /* the guide's excerpt, exactly */
    call(HTTP_GET, V26 "/inventory_items/variant?variant_ids=" G_VARIANT, NULL);
    cr_assert_str_eq(last.raw, "{\"code\":\"Success\",\"data\":{\"variant_inventory_items\":"
                               "[{\"inventory_item_id\":\"626514004247984698\",\"variant_id\":"
                               "\"" G_VARIANT "\"}]}}");
}

Test(shoplazza, guide_step3_product_inventory_has_stock_per_variant_and_location)
{
    call(HTTP_GET, V26 "/products/" G_PRODUCT "/inventory", NULL);
    expect_success();
    expect_str(at("data", "product_id", NULL, NULL), G_PRODUCT);
    slz_expect_int(at("data", "Stock", NULL, NULL), 7);
    yajl_val vs = at("data", "variants", NULL, NULL);
    cr_assert_eq(arr_len(vs), 2);
    expect_str(get(arr_at(vs, 0), "variant_id"), G_VARIANT);
    yajl_val li = get(arr_at(vs, 0), "location_items");
    cr_assert_eq(arr_len(li), 1);
    expect_str(get(arr_at(li, 0), "location_id"), "604253696473177059");
    slz_expect_int(get(arr_at(li, 0), "stock"), 3);
}

Test(shoplazza, product_inventory_filters_by_location_and_keeps_variants_without_stock)
{
    cr_assert_eq(inv_level_set(eng, G_ITEM, OTHER_LOC, 5, 0, NULL), INV_OK);
    call(HTTP_GET, V26 "/products/" G_PRODUCT "/inventory?location_id=42", NULL);
    expect_success();
    slz_expect_int(at("data", "Stock", NULL, NULL), 5);
    yajl_val vs = at("data", "variants", NULL, NULL);
    cr_assert_eq(arr_len(vs), 2, "every variant appears: %s", last.raw);
    yajl_val li = get(arr_at(vs, 0), "location_items");
    cr_assert_eq(arr_len(li), 1);
    expect_str(get(arr_at(li, 0), "location_id"), "42");
    cr_assert_eq(arr_len(get(arr_at(vs, 1), "location_items")), 0);
    call(HTTP_GET, V26 "/products/" G_PRODUCT "/inventory?location_id=-42", NULL);
    slz_expect_error(400, "InvalidParameter");
}

Test(shoplazza, guide_step4_set_level_with_a_string_location_id)
{
    const char *body = "{\"inventory_item_id\": \"626514004247984698\",\n"
                       " \"location_id\": \"604253696473177059\",\n \"stock\": 100}";
    call(HTTP_POST, V26 "/inventory_levels/set", body);
    expect_success();
    yajl_val l = at("data", "inventory_level", NULL, NULL);
    expect_str(get(l, "inventory_item_id"), "626514004247984698");
    expect_str(get(l, "location_id"), "604253696473177059");
    slz_expect_int(get(l, "stock"), 100);
    expect_iso_time(get(l, "updated_at"));
    cr_assert_eq(last.durable_at, inv_last_write_position(),
                 "the write's journal position is recorded");
    inv_level lv;
    cr_assert_eq(inv_level_get(eng, G_ITEM, G_LOC, &lv), INV_OK);
    cr_assert_eq(lv.available, 100);
}

Test(shoplazza, set_accepts_exact_integer_ids_too)
{
    call(HTTP_POST, V26 "/inventory_levels/set",
         "{\"inventory_item_id\":626514004247984698,\"location_id\":604253696473177059,"
         "\"stock\":-2}");
    expect_success();
    slz_expect_int(at("data", "inventory_level", "stock", NULL), -2);
}

Test(shoplazza, set_names_what_is_missing)
{
    /* the guide: a rounded location id fails with "Location not found" */
    call(HTTP_POST, V26 "/inventory_levels/set",
         "{\"inventory_item_id\":\"626514004247984698\",\"location_id\":\"604253696473177100\","
         "\"stock\":1}");
    slz_expect_error(404, "NotFound");
    expect_str(arr_at(at("errors", NULL, NULL, NULL), 0), "Location not found");
    call(HTTP_POST, V26 "/inventory_levels/set",
         "{\"inventory_item_id\":\"5\",\"location_id\":\"604253696473177059\",\"stock\":1}");
    slz_expect_error(404, "NotFound");
    expect_str(arr_at(at("errors", NULL, NULL, NULL), 0), "Inventory item not found");
}

Test(shoplazza, default_location_is_the_first_created)
{
    call(HTTP_GET, V26 "/locations/default", NULL);
    expect_success();
    yajl_val l = at("data", "location", NULL, NULL);
    expect_str(get(l, "id"), "604253696473177059");
    expect_str(get(l, "name"), "Main Warehouse");
    expect_bool(get(l, "default"), true);
    expect_bool(get(l, "active"), true);
    expect_iso_time(get(l, "updated_at"));
}

/* ---- seed 003: 2022-01 List product inventory, byte for byte ------------ */

Test(shoplazza, legacy_product_inventory_matches_the_seed_example_exactly)
{
    call(HTTP_GET, "/openapi/2022-01/products/" L_PRODUCT "/inventory", NULL);
    cr_assert_eq(last.status, 200);
    cr_assert_str_eq(last.raw, "{\"product_id\":\"" L_PRODUCT "\",\"variants\":[{\"variant_id\":"
                               "\"" L_VARIANT "\",\"location_items\":[{\"location_id\":"
                               "327627904831724000,\"stock\":1}]}]}");
}

Test(shoplazza, legacy_errors_are_an_errors_array)
{
    call(HTTP_GET, "/openapi/2022-01/products/unknown/inventory", NULL);
    cr_assert_eq(last.status, 404);
    cr_assert_str_eq(last.raw, "{\"errors\":[\"Product not found\"]}");
    call(HTTP_GET,
         "/openapi/2022-01/products/"
         "0123456789012345678901234567890123456789012345678901234567890123456789/inventory",
         NULL);
    cr_assert_eq(last.status, 400);
    cr_assert_null(at("code", NULL, NULL, NULL));
    cr_assert_eq(arr_len(at("errors", NULL, NULL, NULL)), 1);
    call(HTTP_GET, "/openapi/2022-01/products/" L_PRODUCT "/inventory?location_id=-1", NULL);
    cr_assert_eq(last.status, 400);
    cr_assert_null(at("code", NULL, NULL, NULL), "the 2022-01 shape: %s", last.raw);
    cr_assert_eq(arr_len(at("errors", NULL, NULL, NULL)), 1);
}

/* ---- bad input ---------------------------------------------------------- */

static void expect_set_refused(const char *body)
{
    inv_level before, after;
    cr_assert_eq(inv_level_get(eng, G_ITEM, G_LOC, &before), INV_OK);
    call(HTTP_POST, V26 "/inventory_levels/set", body);
    slz_expect_error(400, "InvalidParameter");
    cr_assert_eq(inv_level_get(eng, G_ITEM, G_LOC, &after), INV_OK);
    cr_assert_eq(after.revision, before.revision, "a refused request changes nothing: %s", body);
}

Test(shoplazza, malformed_json_is_a_400)
{
    expect_set_refused("{\"inventory_item_id\": \"626514004247984698\",");
    expect_set_refused("");
    expect_set_refused("[1,2]");
    expect_set_refused("\"stock\"");
    expect_set_refused("{\"stock\": 1} trailing");
}

Test(shoplazza, wrong_types_are_a_400)
{
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\",\"stock\":\"100\"}");
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":true,\"stock\":1}");
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\",\"stock\":1.5}");
    expect_set_refused("{\"inventory_item_id\":[1],"
                       "\"location_id\":\"604253696473177059\",\"stock\":1}");
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\",\"stock\":null}");
}

Test(shoplazza, ids_with_a_sign_zero_or_over_u64_are_a_400)
{
    const char *ids[] = {
        "\"+626514004247984698\"", "\"-1\"", "-1",     "\"0\"",    "0",  "\"18446744073709551616\"",
        "18446744073709551616",    "\" 5\"", "\"5 \"", "\"0x10\"", "1e3"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"inventory_item_id\":%s,\"location_id\":\"604253696473177059\","
                 "\"stock\":1}",
                 ids[i]);
        expect_set_refused(body);
    }
    /* the largest id is an id */
    call(HTTP_POST, V26 "/inventory_levels/set",
         "{\"inventory_item_id\":\"18446744073709551615\",\"location_id\":\"1\",\"stock\":1}");
    slz_expect_error(404, "NotFound");
    /* path and query ids follow the same rule */
    const char *paths[] = {V26 "/inventory_items/-1", V26 "/inventory_items/+1",
                           V26 "/inventory_items/0",  V26 "/inventory_items/18446744073709551616",
                           V26 "/locations/1x",       V26 "/inventory_levels?location_id=%2B1"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        call(HTTP_GET, paths[i], NULL);
        slz_expect_error(400, "InvalidParameter");
    }
}

Test(shoplazza, quantities_beyond_the_engine_bound_are_a_400)
{
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\",\"stock\":1000000001}");
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\",\"stock\":-1000000001}");
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\",\"stock\":99999999999999999999}");
}

Test(shoplazza, missing_fields_are_a_400_unknown_fields_are_ignored)
{
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\",\"stock\":1}");
    expect_set_refused("{\"location_id\":\"604253696473177059\",\"stock\":1}");
    expect_set_refused("{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\"}");
    call(HTTP_POST, V26 "/inventory_levels/set",
         "{\"inventory_item_id\":\"626514004247984698\",\"location_id\":\"604253696473177059\","
         "\"stock\":9,\"reason\":\"restock\",\"extra\":{\"nested\":[1,2]}}");
    expect_success();
    slz_expect_int(at("data", "inventory_level", "stock", NULL), 9);
}

/* Each request answers this error. */
typedef struct {
    http_method m;
    const char *target;
    const char *body; /* NULL: none */
} req_line;

static void expect_each(const req_line *r, size_t n, int status, const char *code)
{
    for (size_t i = 0; i < n; i++) {
        call(r[i].m, r[i].target, r[i].body);
        slz_expect_error(status, code);
    }
}

Test(shoplazza, bad_query_values_are_a_400)
{
    static const req_line bads[] = {
        {HTTP_GET, V26 "/inventory_items/variant", NULL},
        {HTTP_GET, V26 "/inventory_items/variant?variant_ids=", NULL},
        {HTTP_GET, V26 "/locations?limit=0", NULL},
        {HTTP_GET, V26 "/locations?limit=251", NULL},
        {HTTP_GET, V26 "/inventory_items?cursor=abc", NULL},
        /* a bad %-escape is refused, never read as "no filter" */
        {HTTP_GET, V26 "/inventory_levels?location_id=%zz", NULL},
        {HTTP_GET, V26 "/locations?limit=%4", NULL},
        {HTTP_GET, V26 "/inventory_items/variant?variant_ids=" G_VARIANT "&variant_ids=%g1", NULL},
    };
    expect_each(bads, sizeof bads / sizeof bads[0], 400, "InvalidParameter");
    /* 251 variant ids: over the bound */
    static char q[251 * 24 + 128];
    size_t n = (size_t)snprintf(q, sizeof q, "%s", V26 "/inventory_items/variant?");
    for (int i = 0; i < 251; i++)
        n += (size_t)snprintf(q + n, sizeof q - n, "%svariant_ids=v%d", i ? "&" : "", i);
    call(HTTP_GET, q, NULL);
    slz_expect_error(400, "InvalidParameter");
    /* a query over the bound */
    static char big[9000 + 64];
    n = (size_t)snprintf(big, sizeof big, "%s", V26 "/locations?x=");
    memset(big + n, 'a', 9000);
    big[n + 9000] = '\0';
    call(HTTP_GET, big, NULL);
    slz_expect_error(400, "InvalidParameter");
}

Test(shoplazza, unknown_resources_are_a_404)
{
    static const req_line unknown[] = {
        {HTTP_GET, V26 "/products/nope", NULL},
        {HTTP_GET, V26 "/products/nope/inventory", NULL},
        {HTTP_GET, V26 "/inventory_items/777", NULL},
        {HTTP_GET, V26 "/locations/777", NULL},
        {HTTP_PUT, V26 "/locations/777/default", NULL},
        {HTTP_GET, V26 "/inventory_levels?location_id=777", NULL},
    };
    expect_each(unknown, sizeof unknown / sizeof unknown[0], 404, "NotFound");
    /* no route: the router's 404/405, not a handler's */
    cr_assert_eq(call(HTTP_GET, V26 "/nothing", NULL), 0);
    cr_assert_eq(call(HTTP_PATCH, V26 "/inventory_levels", NULL), 0);
}

Test(shoplazza, a_product_id_over_64_bytes_is_a_400)
{
    call(HTTP_GET,
         V26 "/products/0123456789012345678901234567890123456789012345678901234567890123456789",
         NULL);
    slz_expect_error(400, "InvalidParameter");
}

/* ---- inventory levels: list, create, update, delete --------------------- */

Test(shoplazza, level_create_then_exists)
{
    call(HTTP_POST, V26 "/inventory_levels",
         "{\"inventory_item_id\":\"1001\",\"location_id\":\"42\",\"stock\":12}");
    expect_success();
    expect_str(at("data", "inventory_level", "location_id", NULL), "42");
    slz_expect_int(at("data", "inventory_level", "stock", NULL), 12);
    cr_assert_neq(last.durable_at, 0);
    call(HTTP_POST, V26 "/inventory_levels",
         "{\"inventory_item_id\":\"1001\",\"location_id\":\"42\",\"stock\":1}");
    slz_expect_error(422, "Unprocessable");
    /* stock defaults to 0 */
    call(HTTP_POST, V26 "/inventory_levels",
         "{\"inventory_item_id\":\"1001\",\"location_id\":"
         "\"604253696473177059\"}");
    expect_success();
    slz_expect_int(at("data", "inventory_level", "stock", NULL), 0);
}

Test(shoplazza, level_update_only_updates)
{
    call(HTTP_PUT, V26 "/inventory_levels",
         "{\"inventory_item_id\":\"1001\",\"location_id\":\"327627904831724000\",\"stock\":8}");
    expect_success();
    slz_expect_int(at("data", "inventory_level", "stock", NULL), 8);
    call(HTTP_PUT, V26 "/inventory_levels",
         "{\"inventory_item_id\":\"1001\",\"location_id\":\"42\",\"stock\":8}");
    slz_expect_error(404, "NotFound");
    inv_level lv;
    cr_assert_eq(inv_level_get(eng, L_ITEM, OTHER_LOC, &lv), INV_ENOTFOUND,
                 "an update never creates");
}

Test(shoplazza, level_delete)
{
    call(HTTP_DELETE, V26 "/inventory_levels?inventory_item_id=1001&location_id=327627904831724000",
         NULL);
    expect_success();
    cr_assert_str_eq(last.raw, "{\"code\":\"Success\",\"data\":{}}");
    inv_level lv;
    cr_assert_eq(inv_level_get(eng, L_ITEM, L_LOC, &lv), INV_ENOTFOUND);
    call(HTTP_DELETE, V26 "/inventory_levels?inventory_item_id=1001&location_id=327627904831724000",
         NULL);
    slz_expect_error(404, "NotFound");
    call(HTTP_DELETE, V26 "/inventory_levels?inventory_item_id=1001", NULL);
    slz_expect_error(400, "InvalidParameter");
}

Test(shoplazza, level_with_held_units_cannot_be_deleted)
{
    inv_hold_line hl = {L_ITEM, L_LOC, 1};
    cr_assert_eq(inv_hold_create(eng, "h1", 2, 60000, &hl, 1, NULL), INV_OK);
    call(HTTP_DELETE, V26 "/inventory_levels?inventory_item_id=1001&location_id=327627904831724000",
         NULL);
    slz_expect_error(422, "Unprocessable");
}

Test(shoplazza, levels_list_filters_and_pages_every_level_once)
{
    call(HTTP_GET, V26 "/inventory_levels?inventory_item_id=626514004247984698", NULL);
    expect_success();
    yajl_val l = at("data", "inventory_levels", NULL, NULL);
    cr_assert_eq(arr_len(l), 1);
    expect_str(get(arr_at(l, 0), "location_id"), "604253696473177059");
    slz_expect_int(get(arr_at(l, 0), "stock"), 3);
    expect_iso_time(get(arr_at(l, 0), "updated_at"));
    call(HTTP_GET, V26 "/locations/604253696473177059/inventory_levels", NULL);
    expect_success();
    cr_assert_eq(arr_len(at("data", "inventory_levels", NULL, NULL)), 2);
    /* limit=1 pages: each of the 3 levels once */
    char target[128];
    uint64_t cursor = 0;
    size_t seen = 0;
    int64_t sum = 0;
    for (int pages = 0; pages < 100; pages++) {
        if (cursor == 0)
            snprintf(target, sizeof target, V26 "/inventory_levels?limit=1");
        else
            snprintf(target, sizeof target, V26 "/inventory_levels?limit=1&cursor=%llu",
                     (unsigned long long)cursor);
        call(HTTP_GET, target, NULL);
        expect_success();
        l = at("data", "inventory_levels", NULL, NULL);
        for (size_t i = 0; i < arr_len(l); i++, seen++)
            sum += YAJL_GET_INTEGER(get(arr_at(l, i), "stock"));
        if (!YAJL_IS_TRUE(at("data", "has_more", NULL, NULL))) {
            cr_assert(YAJL_IS_NULL(at("data", "cursor", NULL, NULL)));
            break;
        }
        yajl_val c = at("data", "cursor", NULL, NULL);
        cr_assert(c != NULL && YAJL_IS_STRING(c), "cursor: %s", last.raw);
        cursor = strtoull(c->u.string, NULL, 10);
    }
    cr_assert_eq(seen, 3);
    cr_assert_eq(sum, 3 + 4 + 1);
}

/* ---- inventory items ---------------------------------------------------- */

Test(shoplazza, item_get_and_list)
{
    call(HTTP_GET, V26 "/inventory_items/626514004247984698", NULL);
    expect_success();
    yajl_val it = at("data", "inventory_item", NULL, NULL);
    expect_str(get(it, "id"), "626514004247984698");
    expect_str(get(it, "variant_id"), G_VARIANT);
    expect_str(get(it, "product_id"), G_PRODUCT);
    expect_bool(get(it, "tracked"), true);
    expect_iso_time(get(it, "created_at"));
    call(HTTP_GET, V26 "/inventory_items?limit=250", NULL);
    expect_success();
    cr_assert_eq(arr_len(at("data", "inventory_items", NULL, NULL)), 3);
    expect_bool(at("data", "has_more", NULL, NULL), false);
}

Test(shoplazza, item_update_writes_the_fields_present)
{
    call(HTTP_PUT, V26 "/inventory_items/1001",
         "{\"sku\":\"SKU-1\",\"cost\":\"25.00\",\"tracked\":false,\"unknown\":1}");
    expect_success();
    yajl_val it = at("data", "inventory_item", NULL, NULL);
    expect_str(get(it, "sku"), "SKU-1");
    expect_str(get(it, "cost"), "25.00");
    expect_bool(get(it, "tracked"), false);
    expect_str(get(it, "variant_id"), L_VARIANT); /* untouched */
    cr_assert_neq(last.durable_at, 0);
    inv_item got;
    cr_assert_eq(inv_item_get(eng, L_ITEM, &got), INV_OK);
    cr_assert_str_eq(got.fields.sku, "SKU-1");
    /* an empty object changes nothing and answers the item */
    call(HTTP_PUT, V26 "/inventory_items/1001", "{}");
    expect_success();
    cr_assert_eq(last.durable_at, 0);
}

Test(shoplazza, item_update_refusals)
{
    static const req_line bads[] = {
        {HTTP_PUT, V26 "/inventory_items/1001", "{\"tracked\":\"yes\"}"},
        {HTTP_PUT, V26 "/inventory_items/1001", "{\"sku\":5}"},
        {HTTP_PUT, V26 "/inventory_items/1001", "{\"cost\":\"abc\"}"},
        {HTTP_PUT, V26 "/inventory_items/1001", "{\"country_code_of_origin\":\"USA\"}"},
    };
    expect_each(bads, sizeof bads / sizeof bads[0], 400, "InvalidParameter");
    char body[400];
    snprintf(body, sizeof body, "{\"sku\":\"%0300d\"}", 0);
    call(HTTP_PUT, V26 "/inventory_items/1001", body);
    slz_expect_error(400, "InvalidParameter");
    call(HTTP_PUT, V26 "/inventory_items/1001", "{\"variant_id\":\"" G_VARIANT "\"}");
    slz_expect_error(422, "Unprocessable");
    call(HTTP_PUT, V26 "/inventory_items/555", "{\"sku\":\"x\"}");
    slz_expect_error(404, "NotFound");
    inv_item got;
    cr_assert_eq(inv_item_get(eng, 555, &got), INV_ENOTFOUND, "an update never creates");
}

/* ---- locations ---------------------------------------------------------- */

Test(shoplazza, locations_list)
{
    call(HTTP_GET, V26 "/locations", NULL);
    expect_success();
    yajl_val l = at("data", "locations", NULL, NULL);
    cr_assert_eq(arr_len(l), 3);
    size_t defaults = 0;
    for (size_t i = 0; i < 3; i++)
        defaults += YAJL_IS_TRUE(get(arr_at(l, i), "default"));
    cr_assert_eq(defaults, 1);
    call(HTTP_GET, V26 "/locations/42", NULL);
    expect_success();
    expect_str(at("data", "location", "name", NULL), "Overflow");
}

Test(shoplazza, change_the_default_location)
{
    call(HTTP_PUT, V26 "/locations/42/default", NULL);
    expect_success();
    expect_bool(at("data", "location", "default", NULL), true);
    cr_assert_neq(last.durable_at, 0);
    call(HTTP_GET, V26 "/locations/default", NULL);
    expect_str(at("data", "location", "id", NULL), "42");
}

Test(shoplazza, deactivate_and_activate_a_location)
{
    call(HTTP_PUT, V26 "/locations/604253696473177059/deactivate", NULL);
    slz_expect_error(422, "Unprocessable"); /* the default */
    call(HTTP_PUT, V26 "/locations/42/deactivate", NULL);
    expect_success();
    expect_bool(at("data", "location", "active", NULL), false);
    call(HTTP_PUT, V26 "/locations/42/default", NULL);
    slz_expect_error(422, "Unprocessable");
    call(HTTP_POST, V26 "/inventory_levels",
         "{\"inventory_item_id\":\"1001\",\"location_id\":\"42\",\"stock\":1}");
    slz_expect_error(422, "Unprocessable");
    call(HTTP_PUT, V26 "/locations/42/activate", NULL);
    expect_success();
    expect_bool(at("data", "location", "active", NULL), true);
}

Test(shoplazza, edit_location_priority)
{
    call(HTTP_PUT, V26 "/locations/42/priority", "{\"priority\":-5}");
    expect_success();
    slz_expect_int(at("data", "location", "priority", NULL), -5);
    static const req_line bads[] = {
        {HTTP_PUT, V26 "/locations/42/priority", "{\"priority\":\"5\"}"},
        {HTTP_PUT, V26 "/locations/42/priority", "{\"priority\":2147483648}"},
        {HTTP_PUT, V26 "/locations/42/priority", "{}"},
        {HTTP_PUT, V26 "/locations/42/priority", "{\"priority\":"},
    };
    expect_each(bads, sizeof bads / sizeof bads[0], 400, "InvalidParameter");
    inv_location l;
    cr_assert_eq(inv_location_get(eng, OTHER_LOC, &l), INV_OK);
    cr_assert_eq(l.fields.priority, -5);
}

/* ---- through invcored, with libcurl -------------------------------------- *
 *
 * tests/test_http_client.h carries every request (the HTTP suites' one
 * client); the answer lands in `last`, so the checks above read it. An
 * invcored that does not start, or has no HTTP listener, fails the test. */

#define SRV_TOKEN "s3cret-token"
#define SRV_BODY_BYTES 4096 /* the suite's --http-max-body-bytes */
#define KEEPALIVE_REQUESTS 200

static srv_t srv;
static int http_port;
static CURL *h; /* one keep-alive handle per test */
static hc_resp *hr; /* large: on the heap */

static const char *const with_token[] = {"Access-Token: " SRV_TOKEN, NULL};

/* One request with these headers (NULL: none); the answer into last.
 * Returns the status (-1: no answer). */
static long sz_do_with(const char *const *headers, const char *method, const char *target,
                       const char *body)
{
    reply_free(&last);
    hc_free(hr);
    hc_do(h, http_port, method, target, headers, body, hr);
    last.status = (int)hr->status;
    last.raw = strndup(hr->body, hr->len);
    cr_assert_not_null(last.raw);
    last.json = hr->json; /* last owns it now */
    hr->json = NULL;
    if (getenv("SLZ_DOC") != NULL)
        printf("curl -X %s '%s'%s%s%s\n=> %ld %s\n\n", method, target, body ? " -d '" : "",
               body ? body : "", body ? "'" : "", hr->status, last.raw);
    return hr->status;
}

/* One request with the token. */
static long sz_do(const char *method, const char *target, const char *body)
{
    return sz_do_with(with_token, method, target, body);
}

static void resp_ok(redisContext *c, const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(c, fmt, arg);
    cr_assert(r != NULL && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt,
              r && r->str ? r->str : "no reply");
    freeReplyObject(r);
}

/* The handler suite's world (setup above), written over RESP. */
static void server_setup(void)
{
    char body_max[24];
    snprintf(body_max, sizeof body_max, "%d", SRV_BODY_BYTES);
    const char *extra[] = {"--requirepass", SRV_TOKEN, "--http-max-body-bytes", body_max, NULL};
    srv_start(&srv, extra);
    http_port = srv_http_port(&srv);
    cr_assert(http_port != srv.port, "http port %d", http_port);
    redisContext *c = srv_connect(&srv);
    resp_ok(c, "AUTH %s", SRV_TOKEN);
    resp_ok(c, "LOC.SET 604253696473177059 name %s", "Main Warehouse"); /* first: the default */
    resp_ok(c, "LOC.SET 327627904831724000 name %s", "Legacy Store");
    resp_ok(c, "LOC.SET 42 name %s", "Overflow");
    resp_ok(c, "ITEM.SET 626514004247984698 variant %s product " G_PRODUCT, G_VARIANT);
    resp_ok(c, "ITEM.SET 626514004247984699 variant %s product " G_PRODUCT, G_VARIANT2);
    resp_ok(c, "ITEM.SET 1001 variant %s product " L_PRODUCT, L_VARIANT);
    resp_ok(c, "LEVEL.SET 626514004247984698 604253696473177059 %s", "3");
    resp_ok(c, "LEVEL.SET 626514004247984699 604253696473177059 %s", "4");
    resp_ok(c, "LEVEL.SET 1001 327627904831724000 %s", "1");
    redisFree(c);
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    h = curl_easy_init();
    hr = calloc(1, sizeof *hr);
    cr_assert(h != NULL && hr != NULL);
}

/* Ends a test: invcored stops cleanly (a sanitizer's report, a leak or a
 * crash makes its exit status non-zero). In the test body: criterion does
 * not fail a test for an assertion in .fini. */
static void server_stops_cleanly(void)
{
    cr_assert_eq(srv_stop(&srv), 0, "invcored's exit status after SIGTERM (log %s)", srv.log);
}

static void server_teardown(void)
{
    reply_free(&last);
    if (hr != NULL)
        hc_free(hr);
    free(hr);
    hr = NULL;
    if (h != NULL)
        curl_easy_cleanup(h);
    h = NULL;
    curl_global_cleanup();
    srv_cleanup(&srv); /* stops it if a test failed before */
}

TestSuite(shoplazza_server, .init = server_setup, .fini = server_teardown);

/* The body of the last answer is want, byte for byte, once its one
 * data.<obj>.updated_at value (an ISO time of the engine's) reads "T". */
static void expect_body_timed(const char *obj, const char *want)
{
    static const char key[] = "\"updated_at\":\"";
    expect_iso_time(at("data", obj, "updated_at", NULL));
    char *t = strstr(last.raw, key);
    cr_assert_not_null(t, "no updated_at in %s", last.raw);
    t += sizeof key - 1;
    memmove(t + 1, t + 20, strlen(t + 20) + 1); /* the time is 20 bytes (checked) */
    t[0] = 'T';
    cr_assert_str_eq(last.raw, want);
}

/* ---- every route, once, over HTTP ------------------------------------------ */

typedef struct {
    const char *method, *target, *body;
    const char *has; /* text the 200's body holds */
} sz_call;

/* In an order that leaves the world as it found it. */
static const sz_call every_route[] = {
    {"GET", V26 "/products/" G_PRODUCT, NULL, "\"id\":\"" G_VARIANT "\""},
    {"GET", V26 "/products/" G_PRODUCT "/inventory", NULL, "\"Stock\":7,"},
    {"GET", "/openapi/2022-01/products/" L_PRODUCT "/inventory", NULL,
     "\"location_id\":327627904831724000,"},
    {"GET", V26 "/inventory_items/variant?variant_ids=" G_VARIANT "&variant_ids=" L_VARIANT, NULL,
     "\"inventory_item_id\":\"1001\""},
    {"GET", V26 "/inventory_items?limit=250", NULL, "\"has_more\":false"},
    {"GET", V26 "/inventory_items/626514004247984698", NULL, "\"variant_id\":\"" G_VARIANT "\""},
    {"PUT", V26 "/inventory_items/1001", "{\"sku\":\"SKU-1\",\"cost\":\"25.00\"}",
     "\"sku\":\"SKU-1\""},
    {"POST", V26 "/inventory_levels/set",
     "{\"inventory_item_id\":\"626514004247984698\",\"location_id\":\"604253696473177059\","
     "\"stock\":100}",
     "\"stock\":100,"},
    {"GET", V26 "/inventory_levels?inventory_item_id=626514004247984698", NULL, "\"stock\":100,"},
    {"POST", V26 "/inventory_levels",
     "{\"inventory_item_id\":\"1001\",\"location_id\":\"42\","
     "\"stock\":12}",
     "\"stock\":12,"},
    {"PUT", V26 "/inventory_levels",
     "{\"inventory_item_id\":\"1001\",\"location_id\":\"42\","
     "\"stock\":8}",
     "\"stock\":8,"},
    {"DELETE", V26 "/inventory_levels?inventory_item_id=1001&location_id=42", NULL, "\"data\":{}"},
    {"GET", V26 "/locations", NULL, "\"name\":\"Overflow\""},
    {"GET", V26 "/locations/default", NULL, "\"id\":\"604253696473177059\""},
    {"GET", V26 "/locations/42", NULL, "\"name\":\"Overflow\""},
    {"GET", V26 "/locations/604253696473177059/inventory_levels", NULL, "\"stock\":4,"},
    {"PUT", V26 "/locations/42/default", NULL, "\"default\":true"},
    {"PUT", V26 "/locations/604253696473177059/default", NULL, "\"default\":true"},
    {"PUT", V26 "/locations/42/deactivate", NULL, "\"active\":false"},
    {"PUT", V26 "/locations/42/activate", NULL, "\"active\":true"},
    {"PUT", V26 "/locations/42/priority", "{\"priority\":3}", "\"priority\":3,"},
};

/* The index in http_shoplazza_routes of the route the router gives
 * (method, target), or -1. */
static long shoplazza_route_of(const char *method, const char *target)
{
    const char *q = strchr(target, '?');
    http_str path = {target, q ? (size_t)(q - target) : strlen(target)};
    http_str params[HTTP_PARAMS_MAX];
    size_t n = 0;
    char allow[HTTP_ALLOW_BYTES_MAX];
    const http_route *rt = NULL;
    if (http_route_find(http_method_of(method), path, &rt, params, &n, allow, sizeof allow) !=
            HTTP_MATCH_FOUND ||
        rt < http_shoplazza_routes || rt >= http_shoplazza_routes + http_shoplazza_routes_n)
        return -1;
    return (long)(rt - http_shoplazza_routes);
}

Test(shoplazza_server, every_route_answers_over_http)
{
    size_t hits[64] = {0};
    cr_assert_leq(http_shoplazza_routes_n, sizeof hits / sizeof hits[0]);
    for (size_t i = 0; i < sizeof every_route / sizeof every_route[0]; i++) {
        const sz_call *k = &every_route[i];
        sz_do(k->method, k->target, k->body);
        cr_assert_eq(last.status, 200, "%s %s: %d %s", k->method, k->target, last.status, last.raw);
        cr_assert_str_eq(hr->content_type, "application/json; charset=utf-8");
        cr_assert(strstr(last.raw, k->has) != NULL, "%s %s: no %s in %s", k->method, k->target,
                  k->has, last.raw);
        long route = shoplazza_route_of(k->method, k->target);
        cr_assert_geq(route, 0, "%s %s is no Shoplazza route", k->method, k->target);
        hits[route]++;
    }
    for (size_t k = 0; k < http_shoplazza_routes_n; k++)
        cr_assert_gt(hits[k], 0, "route %d %s has no libcurl test",
                     (int)http_shoplazza_routes[k].method, http_shoplazza_routes[k].pattern);
    server_stops_cleanly();
}

/* ---- the seeds' examples over HTTP (000: the guide; 003) ------------------ */

Test(shoplazza_server, the_guide_and_the_2022_example_round_trip_field_for_field)
{
    /* 1: the product's variant ids */
    cr_assert_eq(sz_do("GET", V26 "/products/" G_PRODUCT, NULL), 200);
    expect_str(get(arr_at(at("data", "product", "variants", NULL), 0), "id"), G_VARIANT);
    /* 2: the guide's excerpt, byte for byte */
    cr_assert_eq(sz_do("GET", V26 "/inventory_items/variant?variant_ids=" G_VARIANT, NULL), 200);
    cr_assert_str_eq(last.raw, "{\"code\":\"Success\",\"data\":{\"variant_inventory_items\":"
                               "[{\"inventory_item_id\":\"626514004247984698\",\"variant_id\":"
                               "\"" G_VARIANT "\"}]}}");
    /* 3: every field of the guide's excerpt (the answer adds each variant's
     * inventory_item_id, and the second variant that makes Stock 7) */
    cr_assert_eq(sz_do("GET", V26 "/products/" G_PRODUCT "/inventory", NULL), 200);
    expect_str(at("code", NULL, NULL, NULL), "Success");
    expect_str(at("data", "product_id", NULL, NULL), G_PRODUCT);
    slz_expect_int(at("data", "Stock", NULL, NULL), 7);
    yajl_val v0 = arr_at(at("data", "variants", NULL, NULL), 0);
    expect_str(get(v0, "variant_id"), G_VARIANT);
    yajl_val li = get(v0, "location_items");
    cr_assert_eq(arr_len(li), 1);
    cr_assert_eq(arr_at(li, 0)->u.object.len, 2, "location_id and stock: %s", last.raw);
    expect_str(get(arr_at(li, 0), "location_id"), "604253696473177059");
    slz_expect_int(get(arr_at(li, 0), "stock"), 3);
    /* 4: the guide's request (its comment dropped: JSON has none) */
    cr_assert_eq(sz_do("POST", V26 "/inventory_levels/set",
                       "{\n\"inventory_item_id\": \"626514004247984698\",\n"
                       "\"location_id\": \"604253696473177059\",\n\"stock\": 100\n}"),
                 200);
    expect_body_timed("inventory_level",
                      "{\"code\":\"Success\",\"data\":{\"inventory_level\":{\"inventory_item_id\":"
                      "\"626514004247984698\",\"location_id\":\"604253696473177059\",\"stock\":"
                      "100,\"updated_at\":\"T\"}}}");
    /* the rounded id the guide warns about: "Location not found" */
    cr_assert_eq(sz_do("POST", V26 "/inventory_levels/set",
                       "{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":604253696473177100,\"stock\":100}"),
                 404);
    expect_str(arr_at(at("errors", NULL, NULL, NULL), 0), "Location not found");
    cr_assert_eq(sz_do("GET", V26 "/locations/default", NULL), 200);
    expect_str(at("data", "location", "id", NULL), "604253696473177059");
    /* 003: the seed's curl (its lower-case headers), the success example
     * byte for byte, unfiltered and filtered by its location; its error shape */
    static const char *const seed_curl[] = {"accept: application/json", "access-token: " SRV_TOKEN,
                                            NULL};
    static const char *const l_targets[] = {"/openapi/2022-01/products/" L_PRODUCT "/inventory",
                                            "/openapi/2022-01/products/" L_PRODUCT
                                            "/inventory?location_id=327627904831724000"};
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(sz_do_with(seed_curl, "GET", l_targets[i], NULL), 200, "%s", last.raw);
        cr_assert_str_eq(last.raw,
                         "{\"product_id\":\"" L_PRODUCT "\",\"variants\":[{\"variant_id\":"
                         "\"" L_VARIANT "\",\"location_items\":[{\"location_id\":"
                         "327627904831724000,\"stock\":1}]}]}");
    }
    cr_assert_eq(
        sz_do("GET", "/openapi/2022-01/products/" L_PRODUCT "/inventory?location_id=42", NULL),
        200);
    cr_assert_str_eq(last.raw, "{\"product_id\":\"" L_PRODUCT "\",\"variants\":[{\"variant_id\":"
                               "\"" L_VARIANT "\",\"location_items\":[]}]}");
    cr_assert_eq(
        sz_do("GET", "/openapi/2022-01/products/" L_PRODUCT "/inventory?location_id=-42", NULL),
        400);
    cr_assert_eq(arr_len(at("errors", NULL, NULL, NULL)), 1, "003's errors array: %s", last.raw);
    cr_assert_eq(sz_do("GET", "/openapi/2022-01/products/unknown/inventory", NULL), 404);
    cr_assert_str_eq(last.raw, "{\"errors\":[\"Product not found\"]}");
    /* the set is durable (--fsync always) and seen by RESP */
    redisContext *c = srv_connect(&srv);
    resp_ok(c, "AUTH %s", SRV_TOKEN);
    redisReply *r = redisCommand(c, "LEVEL.GET 626514004247984698 604253696473177059");
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1);
    cr_assert_eq(r->element[0]->integer, 100);
    freeReplyObject(r);
    redisFree(c);
    server_stops_cleanly();
}

/* ---- methods: 405 with Allow, OPTIONS, HEAD ------------------------------- */

/* One target per pattern of the table, and the methods its path has. */
static const struct {
    const char *target, *allow;
} shoplazza_paths[] = {
    {V26 "/products/" G_PRODUCT, "GET, HEAD, OPTIONS"},
    {V26 "/products/" G_PRODUCT "/inventory", "GET, HEAD, OPTIONS"},
    {"/openapi/2022-01/products/" L_PRODUCT "/inventory", "GET, HEAD, OPTIONS"},
    /* "variant" is an {inventory_item_id} too: PUT reaches the update (400) */
    {V26 "/inventory_items/variant?variant_ids=" G_VARIANT, "GET, HEAD, PUT, OPTIONS"},
    {V26 "/inventory_items", "GET, HEAD, OPTIONS"},
    {V26 "/inventory_items/1001", "GET, HEAD, PUT, OPTIONS"},
    {V26 "/inventory_levels/set", "POST, OPTIONS"},
    {V26 "/inventory_levels?location_id=42", "GET, HEAD, POST, PUT, DELETE, OPTIONS"},
    {V26 "/locations", "GET, HEAD, OPTIONS"},
    {V26 "/locations/default", "GET, HEAD, OPTIONS"},
    {V26 "/locations/42", "GET, HEAD, OPTIONS"},
    {V26 "/locations/42/inventory_levels", "GET, HEAD, OPTIONS"},
    {V26 "/locations/42/default", "PUT, OPTIONS"},
    {V26 "/locations/42/deactivate", "PUT, OPTIONS"},
    {V26 "/locations/42/activate", "PUT, OPTIONS"},
    {V26 "/locations/42/priority", "PUT, OPTIONS"},
};

Test(shoplazza_server, wrong_methods_are_405_with_allow_options_lists_them_head_has_no_body)
{
    /* every route's pattern has a row here that lists the route's method */
    const size_t rows = sizeof shoplazza_paths / sizeof shoplazza_paths[0];
    for (size_t k = 0; k < http_shoplazza_routes_n; k++) {
        const http_route *rt = &http_shoplazza_routes[k];
        size_t row = 0;
        for (; row < rows; row++) {
            const char *t = shoplazza_paths[row].target, *q = strchr(t, '?');
            http_str params[HTTP_PARAMS_MAX];
            size_t n;
            if (http_route_pattern_match(
                    rt->pattern, (http_str){t, q ? (size_t)(q - t) : strlen(t)}, params, &n) &&
                strstr(shoplazza_paths[row].allow, method_name(rt->method)) != NULL)
                break;
        }
        cr_assert_lt(row, rows, "no row for %s %s", method_name(rt->method), rt->pattern);
    }
    for (size_t i = 0; i < sizeof shoplazza_paths / sizeof shoplazza_paths[0]; i++) {
        const char *t = shoplazza_paths[i].target, *allow = shoplazza_paths[i].allow;
        static const char *const wrong[] = {"PATCH", "PROPFIND"}; /* on no Shoplazza path */
        for (size_t w = 0; w < 2; w++) {
            cr_assert_eq(sz_do(wrong[w], t, NULL), 405, "%s %s: %s", wrong[w], t, last.raw);
            cr_assert_str_eq(hr->allow, allow, "%s %s", wrong[w], t);
        }
        if (strstr(allow, "POST") == NULL) {
            cr_assert_eq(sz_do("POST", t, "{}"), 405, "POST %s: %s", t, last.raw);
            cr_assert_str_eq(hr->allow, allow);
        }
        cr_assert_eq(sz_do("OPTIONS", t, NULL), 204, "OPTIONS %s: %s", t, last.raw);
        cr_assert_str_eq(hr->allow, allow, "OPTIONS %s", t);
        if (strncmp(allow, "GET", 3) == 0) {
            cr_assert_eq(sz_do("GET", t, NULL), 200, "GET %s: %s", t, last.raw);
            cr_assert_gt(hr->len, 0);
            cr_assert_eq(sz_do("HEAD", t, NULL), 200, "HEAD %s", t);
            cr_assert_eq(hr->len, 0, "HEAD %s has no body: %s", t, last.raw);
        }
    }
    server_stops_cleanly();
}

/* ---- bad input over HTTP --------------------------------------------------- */

Test(shoplazza_server, bad_input_over_http_is_a_400_and_changes_nothing)
{
    static const struct {
        const char *method, *target, *body;
    } bads[] = {
        /* malformed JSON, a root that is no object */
        {"POST", V26 "/inventory_levels/set", "{\"stock\":"},
        {"POST", V26 "/inventory_levels/set", "[1]"},
        {"PUT", V26 "/inventory_items/626514004247984698", "{\"sku\":"},
        /* wrong types */
        {"POST", V26 "/inventory_levels/set",
         "{\"inventory_item_id\":\"626514004247984698\",\"location_id\":\"604253696473177059\","
         "\"stock\":\"100\"}"},
        {"PUT", V26 "/inventory_items/626514004247984698", "{\"tracked\":\"yes\"}"},
        {"PUT", V26 "/locations/42/priority", "{\"priority\":\"5\"}"},
        /* ids with a sign, 0 or over u64: body, path, query */
        {"POST", V26 "/inventory_levels/set",
         "{\"inventory_item_id\":\"-626514004247984698\",\"location_id\":\"604253696473177059\","
         "\"stock\":1}"},
        {"POST", V26 "/inventory_levels/set",
         "{\"inventory_item_id\":\"+626514004247984698\",\"location_id\":\"604253696473177059\","
         "\"stock\":1}"},
        {"POST", V26 "/inventory_levels",
         "{\"inventory_item_id\":\"626514004247984698\",\"location_id\":18446744073709551616,"
         "\"stock\":1}"},
        {"GET", V26 "/inventory_items/18446744073709551616", NULL},
        {"GET", V26 "/inventory_items/-1", NULL},
        {"PUT", V26 "/locations/+42/default", NULL},
        {"GET", V26 "/inventory_levels?location_id=-42", NULL},
        {"DELETE", V26 "/inventory_levels?inventory_item_id=0&location_id=42", NULL},
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        sz_do(bads[i].method, bads[i].target, bads[i].body);
        slz_expect_error(400, "InvalidParameter");
    }
    /* unknown fields are ignored */
    cr_assert_eq(sz_do("POST", V26 "/inventory_levels/set",
                       "{\"inventory_item_id\":\"626514004247984698\","
                       "\"location_id\":\"604253696473177059\",\"stock\":5,\"reason\":\"x\","
                       "\"extra\":{\"nested\":[1]}}"),
                 200);
    slz_expect_int(at("data", "inventory_level", "stock", NULL), 5);
    cr_assert_eq(sz_do("GET", V26 "/products/" G_PRODUCT "/inventory", NULL), 200);
    slz_expect_int(at("data", "Stock", NULL, NULL), 5 + 4); /* only the good set counted */
    server_stops_cleanly();
}

Test(shoplazza_server, a_body_over_the_limit_is_413_and_writes_nothing)
{
    static char body[SRV_BODY_BYTES + 256];
    int n = snprintf(body, sizeof body,
                     "{\"inventory_item_id\":\"626514004247984698\","
                     "\"location_id\":\"604253696473177059\",\"stock\":50,\"pad\":\"");
    memset(body + n, ' ', SRV_BODY_BYTES);
    snprintf(body + n + SRV_BODY_BYTES, sizeof body - (size_t)n - SRV_BODY_BYTES, "\"}");
    cr_assert_eq(sz_do("POST", V26 "/inventory_levels/set", body), 413, "%s", last.raw);
    /* the listener's refusal, in Shoplazza's shape (seed 003) */
    cr_assert_str_eq(last.raw, "{\"error\":\"Payload Too Large\"}");
    cr_assert_eq(sz_do("GET", V26 "/inventory_levels?inventory_item_id=626514004247984698", NULL),
                 200);
    slz_expect_int(get(arr_at(at("data", "inventory_levels", NULL, NULL), 0), "stock"), 3);
    server_stops_cleanly();
}

Test(shoplazza_server, access_token_is_required)
{
    static const char *const wrong[] = {"Access-Token: wrong", NULL};
    cr_assert_eq(sz_do_with(NULL, "GET", V26 "/locations/default", NULL), 401);
    cr_assert(YAJL_IS_STRING(at("error", NULL, NULL, NULL)), "seed 003's 401 shape: %s", last.raw);
    cr_assert_eq(sz_do_with(wrong, "GET", V26 "/locations/default", NULL), 401);
    cr_assert_eq(sz_do_with(NULL, "POST", V26 "/inventory_levels/set",
                            "{\"inventory_item_id\":\"626514004247984698\","
                            "\"location_id\":\"604253696473177059\",\"stock\":1}"),
                 401);
    cr_assert_eq(sz_do("GET", V26 "/products/" G_PRODUCT "/inventory", NULL), 200);
    slz_expect_int(at("data", "Stock", NULL, NULL), 7); /* the refused set changed nothing */
    server_stops_cleanly();
}

Test(shoplazza_server, keep_alive_carries_many_writes_on_one_connection)
{
    char body[256];
    for (int i = 1; i <= KEEPALIVE_REQUESTS; i++) {
        snprintf(body, sizeof body,
                 "{\"inventory_item_id\":\"626514004247984698\","
                 "\"location_id\":\"604253696473177059\",\"stock\":%d}",
                 i);
        cr_assert_eq(sz_do("POST", V26 "/inventory_levels/set", body), 200);
        slz_expect_int(at("data", "inventory_level", "stock", NULL), i);
    }
    long connects = -1;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, 0, "the last request reused the connection");
    server_stops_cleanly();
}
