/*
 * test_http_shopify.c — core/server/http_shopify.c, the Shopify dialect.
 *
 * Layer 1 (no socket): each route's handler is called straight from the
 * routing table through a small request builder (method, path params,
 * query, body, headers) on an in-memory engine; the JSON answers are
 * parsed back with yajl and checked field for field, the seed's
 * (002: InventoryItem) examples included. Bad input: malformed JSON, wrong
 * types, ids with a sign, 0 or over u64, unknown fields (ignored, as
 * Shopify ignores them), limits, unknown versions.
 *
 * Layer 2 (suite http_shopify_server: libcurl through a real invcored,
 * with tests/test_http_client.h): every route of http_shopify_routes in
 * every version the seed lists (the walk fails when a route has none), the
 * seed's examples field for field, HEAD / OPTIONS / 405 with Allow, bad
 * input over the wire (malformed JSON, wrong types, signed and over-u64
 * ids, a body over the limit: 413), the token, the 64-client flash sale.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_json.h"
#include "server/http_route.h"
#include "test_http_read.h"
#include "test_util.h"

/* ---- the request builder ------------------------------------------------ */

#define T_PATH_MAX 512
#define T_LINK_MAX HTTP_EXTRA_HEADER_BYTES_MAX

typedef struct {
    int status;
    yajl_val json; /* NULL: no body, or not JSON */
    char text[32768]; /* the body as written (first bytes) */
    size_t len;
    char link[T_LINK_MAX]; /* the Link header's value, "" when none */
    uint64_t durable_at;
} t_resp;

static inv_engine *E;
static const char *t_host = "shop.test:7380";

static bool t_header(const http_request *r, const char *name, http_str *value)
{
    (void)r;
    if (strcasecmp(name, "Host") != 0 || t_host == NULL)
        return false;
    *value = (http_str){t_host, strlen(t_host)};
    return true;
}

static const http_route *t_route(http_method m, const char *pattern)
{
    char full[T_PATH_MAX];
    snprintf(full, sizeof full, "/admin/api/{version}/%s", pattern);
    for (size_t i = 0; i < http_shopify_routes_n; i++)
        if (http_shopify_routes[i].method == m && strcmp(http_shopify_routes[i].pattern, full) == 0)
            return &http_shopify_routes[i];
    cr_assert_fail("no route %d %s", (int)m, full);
    return NULL;
}

/* Calls the handler of (m, pattern) with {version} = ver and {id} = id
 * (NULL when the pattern has none); body NULL: empty. */
static t_resp call_on(inv_engine *e, http_method m, const char *pattern, const char *ver,
                      const char *id, const char *query, const char *body)
{
    const http_route *rt = t_route(m, pattern);
    char path[2 * T_PATH_MAX];
    char pat[T_PATH_MAX / 2];
    snprintf(pat, sizeof pat, "%s", pattern);
    char *brace = strstr(pat, "{id}");
    if (brace) {
        *brace = '\0';
        snprintf(path, sizeof path, "/admin/api/%s/%s%s%s", ver, pat, id, brace + 4);
    } else {
        snprintf(path, sizeof path, "/admin/api/%s/%s", ver, pat);
    }
    http_request req = {0};
    req.method = m;
    req.dialect = HTTP_DIALECT_SHOPIFY;
    req.path = (http_str){path, strlen(path)};
    req.query = (http_str){query ? query : "", query ? strlen(query) : 0};
    req.body = (http_str){body ? body : "", body ? strlen(body) : 0};
    req.params[0] = (http_str){ver, strlen(ver)};
    req.n_params = 1;
    if (id) {
        req.params[1] = (http_str){id, strlen(id)};
        req.n_params = 2;
    }
    req.e = e;
    req.header = t_header;
    http_body b; /* per call: the sale test calls from many threads */
    cr_assert_eq(http_body_init(&b), 0);
    http_response res = {0};
    res.body = &b;
    rt->fn(&req, &res);
    t_resp r = {0};
    r.status = res.status;
    r.durable_at = res.durable_at;
    cr_assert(!b.failed);
    r.len = b.len < sizeof r.text - 1 ? b.len : sizeof r.text - 1;
    if (r.len > 0) /* an empty body may have no buffer */
        memcpy(r.text, b.p, r.len);
    r.text[r.len] = '\0';
    if (b.len > 0) {
        char err[128];
        r.json = yajl_tree_parse(r.text, err, sizeof err);
        cr_assert_not_null(r.json, "not JSON (%s): %s", err, r.text);
    }
    for (size_t i = 0; i < res.n_extra; i++)
        if (strncmp(res.extra[i], "Link: ", 6) == 0)
            snprintf(r.link, sizeof r.link, "%s", res.extra[i] + 6);
    http_body_free(&b);
    return r;
}

static t_resp call(http_method m, const char *pattern, const char *ver, const char *id,
                   const char *query, const char *body)
{
    return call_on(E, m, pattern, ver, id, query, body);
}

static void t_free(t_resp *r)
{
    yajl_tree_free(r->json);
    r->json = NULL;
}

/* ---- reading answers ---------------------------------------------------- */

/* The status and that the body is Shopify's {"errors": ...} naming field
 * (NULL: any errors value). */
static void expect_errors(t_resp *r, int status, const char *field)
{
    cr_assert_eq(r->status, status, "status %d, want %d: %s", r->status, status, r->text);
    cr_assert_eq(r->durable_at, 0, "a refused request waits for nothing");
    yajl_val errs = jget(r->json, "errors");
    cr_assert_not_null(errs, "no errors: %s", r->text);
    if (field)
        cr_assert_not_null(jget(errs, field), "errors lack %s: %s", field, r->text);
    t_free(r);
}

static void expect_not_found(t_resp *r)
{
    cr_assert_eq(r->status, 404, "%d: %s", r->status, r->text);
    cr_assert_str_eq(r->text, "{\"errors\":\"Not Found\"}");
    t_free(r);
}

/* ---- fixtures ----------------------------------------------------------- */

#define V "2021-04"
/* Every version the seed (002) lists: each is served, by both layers. */
static const char *const seed_versions[] = {"2020-01", "2020-04", "2020-07", "2020-10",
                                            "2021-01", "2021-04", "unstable"};
#define SEED_VERSIONS_N (sizeof seed_versions / sizeof seed_versions[0])
#define LOC1 655441491ULL
#define LOC2 487838322ULL

static void put_item(uint64_t id, const char *sku)
{
    inv_item_fields f = {0};
    f.mask = INV_ITEM_SKU | INV_ITEM_COST | INV_ITEM_TRACKED | INV_ITEM_REQUIRES_SHIPPING;
    snprintf(f.sku, sizeof f.sku, "%s", sku);
    snprintf(f.cost, sizeof f.cost, "25.00");
    f.tracked = true;
    f.requires_shipping = true;
    cr_assert_eq(inv_item_put(E, id, &f), INV_OK);
}

static void put_location(uint64_t id, const char *name)
{
    inv_location_fields f = {
        .mask = INV_LOC_ALL,
        .address1 = "126 York Street",
        .city = "Ottawa",
        .province = "Ontario",
        .province_code = "ON",
        .country = "Canada",
        .country_code = "CA",
        .zip = "K1N 5T5",
        .active = true,
    };
    snprintf(f.name, sizeof f.name, "%s", name);
    cr_assert_eq(inv_location_put(E, id, &f), INV_OK);
}

/* The seed's three items and two locations. */
static void seed(void)
{
    put_item(808950810, "IPOD2008PINK");
    put_item(39072856, "IPOD2008GREEN");
    put_item(457924702, "IPOD2008BLACK");
    put_location(LOC1, "Ottawa Store");
    put_location(LOC2, "Warehouse");
}

static void setup(void)
{
    cr_assert_eq(inv_open(&E, NULL), INV_OK);
    seed();
}

static void teardown(void)
{
    inv_close(E);
    E = NULL;
}

TestSuite(http_shopify, .init = setup, .fini = teardown);

/* ---- inventory_items ---------------------------------------------------- */

/* Every key of the seed's InventoryItem, in the seed's order. */
static const char *const seed_item_keys[] = {
    "id",
    "sku",
    "created_at",
    "updated_at",
    "requires_shipping",
    "cost",
    "country_code_of_origin",
    "province_code_of_origin",
    "harmonized_system_code",
    "tracked",
    "country_harmonized_system_codes",
    "admin_graphql_api_id",
};

/* it is the seed's item id/sku, field for field, keys in the seed's order. */
static void expect_seed_item(yajl_val it, uint64_t id, const char *sku)
{
    size_t nkeys = sizeof seed_item_keys / sizeof seed_item_keys[0];
    cr_assert(YAJL_IS_OBJECT(it));
    cr_assert_eq(it->u.object.len, nkeys, "keys: %zu", it->u.object.len);
    for (size_t i = 0; i < nkeys; i++)
        cr_assert_str_eq(it->u.object.keys[i], seed_item_keys[i]);
    cr_assert_eq(ju64(it, "id"), id);
    cr_assert_str_eq(jstr(it, "sku"), sku);
    cr_assert_eq(strlen(jstr(it, "created_at")), strlen("2021-01-01T19:22:39Z"));
    cr_assert_eq(strlen(jstr(it, "updated_at")), strlen("2021-01-01T19:22:39Z"));
    cr_assert(jbool(it, "requires_shipping"));
    cr_assert_str_eq(jstr(it, "cost"), "25.00");
    cr_assert(jnull(it, "country_code_of_origin"));
    cr_assert(jnull(it, "province_code_of_origin"));
    cr_assert(jnull(it, "harmonized_system_code"));
    cr_assert(jbool(it, "tracked"));
    yajl_val chs = jget(it, "country_harmonized_system_codes");
    cr_assert(YAJL_IS_ARRAY(chs) && chs->u.array.len == 0);
    char gid[64];
    snprintf(gid, sizeof gid, "gid://shopify/InventoryItem/%llu", (unsigned long long)id);
    cr_assert_str_eq(jstr(it, "admin_graphql_api_id"), gid);
}

Test(http_shopify, seed_list_by_ids_answers_the_seed_items_by_id_ascending)
{
    t_resp r = call(HTTP_GET, "inventory_items.json", "2020-01", NULL,
                    "ids=808950810,39072856,457924702", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    yajl_val items = jget(r.json, "inventory_items");
    cr_assert(YAJL_IS_ARRAY(items) && items->u.array.len == 3, "%s", r.text);
    expect_seed_item(items->u.array.values[0], 39072856, "IPOD2008GREEN");
    expect_seed_item(items->u.array.values[1], 457924702, "IPOD2008BLACK");
    expect_seed_item(items->u.array.values[2], 808950810, "IPOD2008PINK");
    cr_assert_str_eq(r.link, "", "one page: no Link");
    cr_assert_eq(r.durable_at, 0, "a read waits for nothing");
    t_free(&r);
}

Test(http_shopify, seed_get_by_id_answers_the_seed_item)
{
    t_resp r = call(HTTP_GET, "inventory_items/{id}.json", "2020-04", "808950810", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    expect_seed_item(jget(r.json, "inventory_item"), 808950810, "IPOD2008PINK");
    t_free(&r);
}

Test(http_shopify, seed_update_sku_and_cost_round_trip)
{
    t_resp r = call(HTTP_PUT, "inventory_items/{id}.json", "2021-01", "808950810", NULL,
                    "{\"inventory_item\":{\"id\":808950810,\"sku\":\"new sku\"}}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    yajl_val it = jget(r.json, "inventory_item");
    cr_assert_str_eq(jstr(it, "sku"), "new sku");
    cr_assert_str_eq(jstr(it, "cost"), "25.00", "other fields unchanged");
    t_free(&r);
    r = call(HTTP_PUT, "inventory_items/{id}.json", "2021-01", "808950810", NULL,
             "{\"inventory_item\":{\"id\":808950810,\"cost\":\"25.00\"}}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    expect_seed_item(jget(r.json, "inventory_item"), 808950810, "new sku");
    t_free(&r);
    inv_item got;
    cr_assert_eq(inv_item_get(E, 808950810, &got), INV_OK);
    cr_assert_str_eq(got.fields.sku, "new sku", "the engine holds the update");
}

Test(http_shopify, update_writes_every_writable_field_and_ignores_unknown_and_read_only_ones)
{
    t_resp r = call(HTTP_PUT, "inventory_items/{id}.json", V, "39072856", NULL,
                    "{\"inventory_item\":{\"cost\":12.5,\"country_code_of_origin\":\"CA\","
                    "\"province_code_of_origin\":\"ON\",\"harmonized_system_code\":\"851830\","
                    "\"tracked\":false,\"requires_shipping\":false,"
                    "\"country_harmonized_system_codes\":[],\"created_at\":\"1999-01-01\","
                    "\"admin_graphql_api_id\":\"x\",\"no_such_field\":{\"a\":[1,2]}}}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    yajl_val it = jget(r.json, "inventory_item");
    cr_assert_str_eq(jstr(it, "cost"), "12.5");
    cr_assert_str_eq(jstr(it, "country_code_of_origin"), "CA");
    cr_assert_str_eq(jstr(it, "province_code_of_origin"), "ON");
    cr_assert_str_eq(jstr(it, "harmonized_system_code"), "851830");
    cr_assert(!jbool(it, "tracked"));
    cr_assert(!jbool(it, "requires_shipping"));
    cr_assert_str_neq(jstr(it, "created_at"), "1999-01-01");
    cr_assert_str_eq(jstr(it, "admin_graphql_api_id"), "gid://shopify/InventoryItem/39072856");
    cr_assert_null(jget(it, "no_such_field"));
    t_free(&r);
    /* null clears a text field */
    r = call(HTTP_PUT, "inventory_items/{id}.json", V, "39072856", NULL,
             "{\"inventory_item\":{\"harmonized_system_code\":null}}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert(jnull(jget(r.json, "inventory_item"), "harmonized_system_code"));
    t_free(&r);
}

Test(http_shopify, update_refuses_bad_input_with_shopify_errors_and_changes_nothing)
{
    static const struct {
        const char *body;
        int status;
        const char *field;
    } bad[] = {
        {"{\"inventory_item\":{\"sku\":", 400, NULL}, /* malformed */
        {"[1,2]", 400, NULL}, /* not an object */
        {"", 400, NULL}, /* empty */
        {"{\"inventory_item\":{\"sku\":\"a\"}} x", 400, NULL}, /* trailing bytes */
        {"{\"sku\":\"a\"}", 400, "inventory_item"}, /* no root */
        {"{\"inventory_item\":\"a\"}", 400, "inventory_item"},
        {"{\"inventory_item\":{\"sku\":5}}", 422, "sku"},
        {"{\"inventory_item\":{\"cost\":\"abc\"}}", 422, "cost"},
        {"{\"inventory_item\":{\"cost\":true}}", 422, "cost"},
        {"{\"inventory_item\":{\"tracked\":\"yes\"}}", 422, "tracked"},
        {"{\"inventory_item\":{\"requires_shipping\":1}}", 422, "requires_shipping"},
        {"{\"inventory_item\":{\"country_code_of_origin\":\"Canada\"}}", 422,
         "country_code_of_origin"},
        {"{\"inventory_item\":{\"harmonized_system_code\":\"12\"}}", 422, "harmonized_system_code"},
        {"{\"inventory_item\":{\"country_harmonized_system_codes\":[{\"country_code\":\"ca\","
         "\"harmonized_system_code\":\"8518300000\"}]}}",
         422, "country_harmonized_system_codes"},
        {"{\"inventory_item\":{\"sku\":\"IPOD2008BLACK\"}}", 422, "sku"}, /* taken */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t_resp r = call(HTTP_PUT, "inventory_items/{id}.json", V, "808950810", NULL, bad[i].body);
        cr_assert_eq(r.status, bad[i].status, "case %zu (%s): %d %s", i, bad[i].body, r.status,
                     r.text);
        expect_errors(&r, bad[i].status, bad[i].field);
    }
    char long_sku[400];
    memset(long_sku, 'x', sizeof long_sku);
    char body[512];
    snprintf(body, sizeof body, "{\"inventory_item\":{\"sku\":\"%.*s\"}}", 300, long_sku);
    t_resp r = call(HTTP_PUT, "inventory_items/{id}.json", V, "808950810", NULL, body);
    expect_errors(&r, 422, "sku");
    inv_item got;
    cr_assert_eq(inv_item_get(E, 808950810, &got), INV_OK);
    cr_assert_str_eq(got.fields.sku, "IPOD2008PINK");
    cr_assert_str_eq(got.fields.cost, "25.00");
    cr_assert(got.fields.tracked);
}

/* A PUT of country_harmonized_system_codes (the JSON array's text). */
static t_resp put_country_hs(const char *array)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"inventory_item\":{\"country_harmonized_system_codes\":%s}}",
             array);
    return call(HTTP_PUT, "inventory_items/{id}.json", V, "808950810", NULL, body);
}

Test(http_shopify, country_harmonized_system_codes_round_trip_through_the_engine)
{
    t_resp r =
        put_country_hs("[{\"country_code\":\"CA\",\"harmonized_system_code\":\"8518300000\"},"
                       "{\"harmonized_system_code\":620342,\"country_code\":\"US\","
                       "\"note\":\"ignored\"}]");
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert(strstr(r.text, "\"country_harmonized_system_codes\":[{\"country_code\":\"CA\","
                             "\"harmonized_system_code\":\"8518300000\"},{\"country_code\":\"US\","
                             "\"harmonized_system_code\":\"620342\"}],") != NULL,
              "in the order given, the code as a string: %s", r.text);
    t_free(&r);
    inv_item got;
    cr_assert_eq(inv_item_get(E, 808950810, &got), INV_OK);
    cr_assert_str_eq(got.fields.country_hs_codes, "CA:8518300000,US:620342", "the engine's text");
    r = call(HTTP_GET, "inventory_items/{id}.json", "2020-01", "808950810", NULL, NULL);
    cr_assert(strstr(r.text, "{\"country_code\":\"US\",\"harmonized_system_code\":\"620342\"}]") !=
                  NULL,
              "%s", r.text);
    t_free(&r);
    /* other fields keep the codes; null and [] clear them */
    r = call(HTTP_PUT, "inventory_items/{id}.json", V, "808950810", NULL,
             "{\"inventory_item\":{\"sku\":\"KEEP\"}}");
    cr_assert(strstr(r.text, "\"country_code\":\"CA\"") != NULL, "%s", r.text);
    t_free(&r);
    static const char *const clear[] = {"null", "[]"};
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(inv_item_put(E, 808950810,
                                  &(inv_item_fields){.mask = INV_ITEM_COUNTRY_HS_CODES,
                                                     .country_hs_codes = "CA:8518300000"}),
                     INV_OK);
        r = put_country_hs(clear[i]);
        cr_assert_eq(r.status, 200, "%s", r.text);
        cr_assert(strstr(r.text, "\"country_harmonized_system_codes\":[],") != NULL, "%s", r.text);
        t_free(&r);
        cr_assert_eq(inv_item_get(E, 808950810, &got), INV_OK);
        cr_assert_str_eq(got.fields.country_hs_codes, "");
    }
    /* 12 pairs of the longest codes fit */
    char many[2048] = "[";
    for (int i = 0; i < INV_COUNTRY_HS_PAIRS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%s{\"country_code\":\"C%c\",\"harmonized_system_code\":\"1234567890123456\"}",
                 i ? "," : "", 'A' + i);
    strcat(many, "]");
    r = put_country_hs(many);
    cr_assert_eq(r.status, 200, "%s", r.text);
    t_free(&r);
    cr_assert_eq(inv_item_get(E, 808950810, &got), INV_OK);
    cr_assert_eq(strlen(got.fields.country_hs_codes), 12 * 19 + 11);
}

Test(http_shopify, bad_country_harmonized_system_codes_are_422_and_write_nothing)
{
    static const char *const bad[] = {
        "\"CA:8518300000\"", /* the engine's text is not the JSON shape */
        "{}",
        "[1]",
        "[[\"CA\",\"8518300000\"]]",
        "[{\"country_code\":\"CA\"}]",
        "[{\"harmonized_system_code\":\"8518300000\"}]",
        "[{\"country_code\":\"ca\",\"harmonized_system_code\":\"8518300000\"}]",
        "[{\"country_code\":\"CAN\",\"harmonized_system_code\":\"8518300000\"}]",
        "[{\"country_code\":null,\"harmonized_system_code\":\"8518300000\"}]",
        "[{\"country_code\":\"CA\",\"harmonized_system_code\":\"85183\"}]",
        "[{\"country_code\":\"CA\",\"harmonized_system_code\":\"12345678901234567\"}]",
        "[{\"country_code\":\"CA\",\"harmonized_system_code\":\"8518.30\"}]",
        "[{\"country_code\":\"CA\",\"harmonized_system_code\":851830.5}]",
        "[{\"country_code\":\"CA\",\"harmonized_system_code\":-851830}]",
        "[{\"country_code\":\"CA\",\"harmonized_system_code\":\"8518300000\"},"
        "{\"country_code\":\"CA\",\"harmonized_system_code\":\"620342\"}]", /* CA twice */
    };
    cr_assert_eq(inv_item_put(E, 808950810,
                              &(inv_item_fields){.mask = INV_ITEM_COUNTRY_HS_CODES,
                                                 .country_hs_codes = "US:620342"}),
                 INV_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t_resp r = put_country_hs(bad[i]);
        cr_assert_eq(r.status, 422, "case %zu %s: %d %s", i, bad[i], r.status, r.text);
        expect_errors(&r, 422, "country_harmonized_system_codes");
    }
    /* 13 pairs: over INV_COUNTRY_HS_PAIRS_MAX */
    char many[2048] = "[";
    for (int i = 0; i <= INV_COUNTRY_HS_PAIRS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%s{\"country_code\":\"C%c\",\"harmonized_system_code\":\"620342\"}", i ? "," : "",
                 'A' + i);
    strcat(many, "]");
    t_resp r = put_country_hs(many);
    expect_errors(&r, 422, "country_harmonized_system_codes");
    /* a bad pair beside a good field: nothing of the request is written */
    r = call(HTTP_PUT, "inventory_items/{id}.json", V, "808950810", NULL,
             "{\"inventory_item\":{\"sku\":\"CHANGED\",\"country_harmonized_system_codes\":"
             "[{\"country_code\":\"C1\",\"harmonized_system_code\":\"620342\"}]}}");
    expect_errors(&r, 422, "country_harmonized_system_codes");
    inv_item got;
    cr_assert_eq(inv_item_get(E, 808950810, &got), INV_OK);
    cr_assert_str_eq(got.fields.country_hs_codes, "US:620342");
    cr_assert_str_eq(got.fields.sku, "IPOD2008PINK");
}

Test(http_shopify, path_ids_with_a_sign_zero_or_over_u64_and_unknown_ids_are_not_found)
{
    static const char *const ids[] = {"-5", "+5", "0",    "18446744073709551616", "12a", "0012",
                                      "",   " 5", "99999"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        t_resp r = call(HTTP_GET, "inventory_items/{id}.json", V, ids[i], NULL, NULL);
        expect_not_found(&r);
        r = call(HTTP_PUT, "inventory_items/{id}.json", V, ids[i], NULL,
                 "{\"inventory_item\":{\"sku\":\"z\"}}");
        expect_not_found(&r);
        r = call(HTTP_GET, "locations/{id}.json", V, ids[i], NULL, NULL);
        expect_not_found(&r);
    }
    inv_item got;
    cr_assert_eq(inv_item_get(E, 99999, &got), INV_ENOTFOUND, "a PUT creates nothing");
    /* the largest u64 is a valid id */
    put_item(UINT64_MAX, "MAX");
    t_resp r = call(HTTP_GET, "inventory_items/{id}.json", V, "18446744073709551615", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert(strstr(r.text, "\"id\":18446744073709551615,") != NULL, "exact: %s", r.text);
    t_free(&r);
}

Test(http_shopify, every_seed_version_is_served_and_others_are_not_found)
{
    static const char *const *const ok = seed_versions;
    static const char *const no[] = {"2019-10", "2021-07", "2024-01", "latest", "", "2020-1"};
    for (size_t i = 0; i < SEED_VERSIONS_N; i++) {
        t_resp r = call(HTTP_GET, "inventory_items/{id}.json", ok[i], "39072856", NULL, NULL);
        cr_assert_eq(r.status, 200, "%s: %s", ok[i], r.text);
        t_free(&r);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        t_resp r = call(HTTP_GET, "locations.json", no[i], NULL, NULL, NULL);
        expect_not_found(&r);
        r = call(HTTP_POST, "inventory_levels/set.json", no[i], NULL, NULL,
                 "{\"location_id\":655441491,\"inventory_item_id\":39072856,\"available\":1}");
        expect_not_found(&r);
    }
    inv_level lv;
    cr_assert_eq(inv_level_get(E, 39072856, LOC1, &lv), INV_ENOTFOUND, "nothing written");
}

/* A query a listing refuses with 400 naming field. */
typedef struct {
    const char *query;
    const char *field;
} bad_query;

static void expect_bad_queries(const char *pattern, const bad_query *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t_resp r = call(HTTP_GET, pattern, V, NULL, bad[i].query, NULL);
        expect_errors(&r, 400, bad[i].field);
    }
}

Test(http_shopify, list_by_ids_checks_ids_and_limit)
{
    static const bad_query bad[] = {
        {"", "ids"},
        {"limit=5", "ids"},
        {"ids=", "ids"},
        {"ids=1,,2", "ids"},
        {"ids=-1", "ids"},
        {"ids=%2B1", "ids"},
        {"ids=18446744073709551616", "ids"},
        {"ids=1&limit=0", "limit"},
        {"ids=1&limit=251", "limit"},
        {"ids=1&limit=-1", "limit"},
        {"ids=1&limit=abc", "limit"},
        {"ids=1&page_info=", "page_info"},
        {"ids=1&page_info=!!!!", "page_info"},
        {"ids=1&page_info=AAAA", "page_info"},
    };
    expect_bad_queries("inventory_items.json", bad, sizeof bad / sizeof bad[0]);
    /* 100 ids are fine, 101 are not */
    char q[4096] = "ids=";
    for (int i = 1; i <= 101; i++) {
        char one[16];
        snprintf(one, sizeof one, "%s%d", i > 1 ? "," : "", i);
        strcat(q, one);
        if (i == 100) {
            t_resp r = call(HTTP_GET, "inventory_items.json", V, NULL, q, NULL);
            cr_assert_eq(r.status, 200, "%s", r.text);
            t_free(&r);
        }
    }
    t_resp r = call(HTTP_GET, "inventory_items.json", V, NULL, q, NULL);
    expect_errors(&r, 400, "ids");
    /* unknown ids are left out, duplicates shown once, spaces allowed */
    r = call(HTTP_GET, "inventory_items.json", V, NULL, "ids=5,39072856,%2039072856,7", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    yajl_val items = jget(r.json, "inventory_items");
    cr_assert_eq(items->u.array.len, 1, "%s", r.text);
    t_free(&r);
}

/* The query of a Link rel="next" ("limit=..&page_info=.."), or "" */
static void link_query(const char *link, char *out, size_t cap)
{
    out[0] = '\0';
    if (link[0] == '\0')
        return;
    const char *q = strchr(link, '?');
    const char *end = strchr(link, '>');
    cr_assert(q && end && end > q, "link %s", link);
    cr_assert(strstr(link, "; rel=\"next\"") != NULL, "link %s", link);
    snprintf(out, cap, "%.*s", (int)(end - q - 1), q + 1);
}

Test(http_shopify, list_by_ids_pages_with_a_link_header_and_page_info)
{
    for (uint64_t i = 1; i <= 7; i++) {
        char sku[16];
        snprintf(sku, sizeof sku, "P%llu", (unsigned long long)i);
        put_item(1000000000000ULL + i * 977, sku);
    }
    char q[1024] = "limit=3&ids=";
    for (uint64_t i = 7; i >= 1; i--) {
        char one[32];
        snprintf(one, sizeof one, "%s%llu", i < 7 ? "," : "", 1000000000000ULL + i * 977);
        strcat(q, one);
    }
    uint64_t seen[16];
    size_t n_seen = 0, pages = 0;
    for (;;) {
        t_resp r = call(HTTP_GET, "inventory_items.json", V, NULL, q, NULL);
        cr_assert_eq(r.status, 200, "%s", r.text);
        yajl_val items = jget(r.json, "inventory_items");
        cr_assert(items->u.array.len <= 3);
        for (size_t i = 0; i < items->u.array.len; i++)
            seen[n_seen++] = ju64(items->u.array.values[i], "id");
        pages++;
        if (r.link[0]) {
            cr_assert(
                strncmp(r.link, "<http://shop.test:7380/admin/api/" V "/inventory_items.json?",
                        strlen("<http://shop.test:7380/admin/api/" V "/inventory_items.json?")) ==
                    0,
                "%s", r.link);
        }
        link_query(r.link, q, sizeof q);
        t_free(&r);
        if (q[0] == '\0')
            break;
        cr_assert(pages < 10);
    }
    cr_assert_eq(pages, 3);
    cr_assert_eq(n_seen, 7);
    for (size_t i = 0; i < 7; i++)
        cr_assert_eq(seen[i], 1000000000000ULL + (i + 1) * 977, "ascending, each once");
}

/* ---- inventory_levels --------------------------------------------------- */

static t_resp level_post(const char *op, uint64_t item, uint64_t loc, const char *qty_key,
                         long long qty)
{
    char pattern[64], body[256];
    snprintf(pattern, sizeof pattern, "inventory_levels/%s.json", op);
    if (qty_key)
        snprintf(body, sizeof body, "{\"location_id\":%llu,\"inventory_item_id\":%llu,\"%s\":%lld}",
                 (unsigned long long)loc, (unsigned long long)item, qty_key, qty);
    else
        snprintf(body, sizeof body, "{\"location_id\":%llu,\"inventory_item_id\":%llu}",
                 (unsigned long long)loc, (unsigned long long)item);
    return call(HTTP_POST, pattern, V, NULL, NULL, body);
}

static void expect_level_json(t_resp *r, int status, uint64_t item, uint64_t loc, long long avail)
{
    cr_assert_eq(r->status, status, "%d: %s", r->status, r->text);
    yajl_val lv = jget(r->json, "inventory_level");
    cr_assert_not_null(lv, "%s", r->text);
    cr_assert_eq(lv->u.object.len, 5, "%s", r->text);
    cr_assert_eq(ju64(lv, "inventory_item_id"), item);
    cr_assert_eq(ju64(lv, "location_id"), loc);
    cr_assert_eq(jint(lv, "available"), avail);
    cr_assert_eq(strlen(jstr(lv, "updated_at")), strlen("2021-01-01T19:22:39Z"));
    char gid[96];
    snprintf(gid, sizeof gid, "gid://shopify/InventoryLevel/%llu?inventory_item_id=%llu",
             (unsigned long long)loc, (unsigned long long)item);
    cr_assert_str_eq(jstr(lv, "admin_graphql_api_id"), gid);
    t_free(r);
}

Test(http_shopify, connect_set_adjust_and_delete_a_level)
{
    t_resp r = level_post("connect", 808950810, LOC1, NULL, 0);
    expect_level_json(&r, 201, 808950810, LOC1, 0);
    r = level_post("connect", 808950810, LOC1, NULL, 0);
    expect_level_json(&r, 200, 808950810, LOC1, 0); /* already there: unchanged */
    r = level_post("set", 808950810, LOC1, "available", 42);
    expect_level_json(&r, 200, 808950810, LOC1, 42);
    r = level_post("adjust", 808950810, LOC1, "available_adjustment", 5);
    expect_level_json(&r, 200, 808950810, LOC1, 47);
    r = level_post("adjust", 808950810, LOC1, "available_adjustment", -47);
    expect_level_json(&r, 200, 808950810, LOC1, 0);
    /* never below 0 (DENY, the default policy): refused, nothing changes */
    r = level_post("adjust", 808950810, LOC1, "available_adjustment", -1);
    expect_errors(&r, 422, "available");
    inv_level lv;
    cr_assert_eq(inv_level_get(E, 808950810, LOC1, &lv), INV_OK);
    cr_assert_eq(lv.available, 0);
    /* set connects when needed; a set may go negative only by being told to */
    r = level_post("set", 808950810, LOC2, "available", 3);
    expect_level_json(&r, 200, 808950810, LOC2, 3);
    r = call(HTTP_DELETE, "inventory_levels.json", V, NULL,
             "inventory_item_id=808950810&location_id=655441491", NULL);
    cr_assert_eq(r.status, 204, "%s", r.text);
    cr_assert_eq(r.len, 0, "204 has no body");
    cr_assert_eq(inv_level_get(E, 808950810, LOC1, &lv), INV_ENOTFOUND);
    r = call(HTTP_DELETE, "inventory_levels.json", V, NULL,
             "inventory_item_id=808950810&location_id=655441491", NULL);
    expect_not_found(&r);
}

Test(http_shopify, adjust_on_an_unconnected_level_or_unknown_ids)
{
    t_resp r = level_post("adjust", 808950810, LOC1, "available_adjustment", 1);
    expect_errors(&r, 422, NULL); /* both exist: not stocked there */
    r = level_post("adjust", 4242, LOC1, "available_adjustment", 1);
    expect_not_found(&r);
    r = level_post("adjust", 808950810, 4242, "available_adjustment", 1);
    expect_not_found(&r);
    /* an untracked item is not adjusted (Shopify's 422) */
    inv_item_fields f = {.mask = INV_ITEM_TRACKED, .tracked = false};
    cr_assert_eq(inv_item_put(E, 39072856, &f), INV_OK);
    cr_assert_eq(inv_level_set(E, 39072856, LOC1, 0, 0, NULL), INV_OK);
    r = level_post("adjust", 39072856, LOC1, "available_adjustment", -1);
    expect_errors(&r, 422, NULL);
    inv_level lv;
    cr_assert_eq(inv_level_get(E, 39072856, LOC1, &lv), INV_OK);
    cr_assert_eq(lv.available, 0);
    r = level_post("set", 4242, LOC1, "available", 1);
    expect_not_found(&r);
    r = level_post("connect", 808950810, 4242, NULL, 0);
    expect_not_found(&r);
}

Test(http_shopify, level_writes_refuse_bad_bodies)
{
    static const struct {
        const char *op;
        const char *body;
        int status;
        const char *field;
    } bad[] = {
        {"adjust", "{", 400, NULL},
        {"adjust", "nope", 400, NULL},
        {"adjust", "\"str\"", 400, NULL},
        {"adjust", "{\"location_id\":655441491,\"inventory_item_id\":808950810}", 400,
         "available_adjustment"},
        {"adjust", "{\"inventory_item_id\":808950810,\"available_adjustment\":1}", 400,
         "location_id"},
        {"adjust", "{\"location_id\":655441491,\"available_adjustment\":1}", 400,
         "inventory_item_id"},
        {"adjust",
         "{\"location_id\":655441491,\"inventory_item_id\":808950810,"
         "\"available_adjustment\":\"1\"}",
         422, "available_adjustment"},
        {"adjust",
         "{\"location_id\":655441491,\"inventory_item_id\":808950810,"
         "\"available_adjustment\":1.5}",
         422, "available_adjustment"},
        {"adjust",
         "{\"location_id\":655441491,\"inventory_item_id\":808950810,"
         "\"available_adjustment\":1000000001}",
         422, "available_adjustment"},
        {"adjust",
         "{\"location_id\":655441491,\"inventory_item_id\":808950810,"
         "\"available_adjustment\":99999999999999999999}",
         422, "available_adjustment"},
        {"adjust",
         "{\"location_id\":-655441491,\"inventory_item_id\":808950810,"
         "\"available_adjustment\":1}",
         422, "location_id"},
        {"adjust",
         "{\"location_id\":655441491,\"inventory_item_id\":18446744073709551616,"
         "\"available_adjustment\":1}",
         422, "inventory_item_id"},
        {"adjust", "{\"location_id\":0,\"inventory_item_id\":808950810,\"available_adjustment\":1}",
         422, "location_id"},
        {"adjust",
         "{\"location_id\":true,\"inventory_item_id\":808950810,\"available_adjustment\":1}", 422,
         "location_id"},
        {"set", "{\"location_id\":655441491,\"inventory_item_id\":808950810}", 400, "available"},
        {"set", "{\"location_id\":655441491,\"inventory_item_id\":808950810,\"available\":null}",
         422, "available"},
        {"connect", "{\"location_id\":655441491}", 400, "inventory_item_id"},
    };
    cr_assert_eq(inv_level_set(E, 808950810, LOC1, 7, 0, NULL), INV_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char pattern[64];
        snprintf(pattern, sizeof pattern, "inventory_levels/%s.json", bad[i].op);
        t_resp r = call(HTTP_POST, pattern, V, NULL, NULL, bad[i].body);
        cr_assert_eq(r.status, bad[i].status, "case %zu: %s", i, r.text);
        expect_errors(&r, bad[i].status, bad[i].field);
    }
    inv_level lv;
    cr_assert_eq(inv_level_get(E, 808950810, LOC1, &lv), INV_OK);
    cr_assert_eq(lv.available, 7, "nothing changed");
    /* ids as decimal strings are read exactly; unknown fields are ignored */
    t_resp r = call(HTTP_POST, "inventory_levels/adjust.json", V, NULL, NULL,
                    "{\"location_id\":\"655441491\",\"inventory_item_id\":\"808950810\","
                    "\"available_adjustment\":-2,\"extra\":[1,{\"x\":null}]}");
    expect_level_json(&r, 200, 808950810, LOC1, 5);
}

Test(http_shopify, delete_needs_both_ids_and_refuses_a_level_with_held_units)
{
    t_resp r = call(HTTP_DELETE, "inventory_levels.json", V, NULL, "location_id=655441491", NULL);
    expect_errors(&r, 400, "inventory_item_id");
    r = call(HTTP_DELETE, "inventory_levels.json", V, NULL, "inventory_item_id=808950810", NULL);
    expect_errors(&r, 400, "location_id");
    r = call(HTTP_DELETE, "inventory_levels.json", V, NULL,
             "inventory_item_id=-808950810&location_id=655441491", NULL);
    expect_errors(&r, 400, "inventory_item_id");
    cr_assert_eq(inv_level_set(E, 808950810, LOC1, 7, 0, NULL), INV_OK);
    inv_hold_line line = {808950810, LOC1, 2};
    cr_assert_eq(inv_hold_create(E, "h1", 2, 60000, &line, 1, NULL), INV_OK);
    r = call(HTTP_DELETE, "inventory_levels.json", V, NULL,
             "inventory_item_id=808950810&location_id=655441491", NULL);
    expect_errors(&r, 422, NULL);
    inv_level lv;
    cr_assert_eq(inv_level_get(E, 808950810, LOC1, &lv), INV_OK, "still there");
}

/* Collects every level a listing query reaches, following its Link. */
static size_t list_levels_all(const char *query, uint64_t (*rows)[2], size_t cap, size_t *pages)
{
    char q[T_LINK_MAX];
    snprintf(q, sizeof q, "%s", query);
    size_t n = 0;
    *pages = 0;
    while (q[0]) {
        t_resp r = call(HTTP_GET, "inventory_levels.json", V, NULL, q, NULL);
        cr_assert_eq(r.status, 200, "%s -> %s", q, r.text);
        yajl_val lv = jget(r.json, "inventory_levels");
        cr_assert(YAJL_IS_ARRAY(lv));
        for (size_t i = 0; i < lv->u.array.len; i++) {
            cr_assert(n < cap);
            rows[n][0] = ju64(lv->u.array.values[i], "inventory_item_id");
            rows[n][1] = ju64(lv->u.array.values[i], "location_id");
            n++;
        }
        link_query(r.link, q, sizeof q);
        t_free(&r);
        cr_assert(++*pages < 100, "paging ends");
    }
    return n;
}

static bool has_row(uint64_t (*rows)[2], size_t n, uint64_t item, uint64_t loc)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++)
        hits += rows[i][0] == item && rows[i][1] == loc;
    cr_assert(hits <= 1, "row %llu/%llu listed %zu times", (unsigned long long)item,
              (unsigned long long)loc, hits);
    return hits == 1;
}

Test(http_shopify, levels_list_by_items_and_by_locations_pages_through_every_level_once)
{
    uint64_t items[3] = {39072856, 457924702, 808950810};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(inv_level_set(E, items[i], LOC1, 10 + i, 0, NULL), INV_OK);
        cr_assert_eq(inv_level_set(E, items[i], LOC2, 20 + i, 0, NULL), INV_OK);
    }
    uint64_t rows[64][2];
    size_t pages;
    size_t n = list_levels_all("inventory_item_ids=808950810,39072856&limit=1", rows, 64, &pages);
    cr_assert_eq(n, 4);
    cr_assert_eq(pages, 4, "exactly as many pages as rows at limit 1");
    cr_assert(has_row(rows, n, 39072856, LOC1) && has_row(rows, n, 39072856, LOC2));
    cr_assert(has_row(rows, n, 808950810, LOC1) && has_row(rows, n, 808950810, LOC2));
    n = list_levels_all("inventory_item_ids=808950810,39072856,457924702&location_ids=487838322",
                        rows, 64, &pages);
    cr_assert_eq(n, 3);
    cr_assert_eq(pages, 1);
    for (int i = 0; i < 3; i++)
        cr_assert(has_row(rows, n, items[i], LOC2));
    n = list_levels_all("location_ids=655441491&limit=2", rows, 64, &pages);
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++)
        cr_assert(has_row(rows, n, items[i], LOC1));
    n = list_levels_all("location_ids=655441491,487838322", rows, 64, &pages);
    cr_assert_eq(n, 6);
    n = list_levels_all("inventory_item_ids=1,2,3", rows, 64, &pages);
    cr_assert_eq(n, 0, "unknown items: an empty list");
    /* a row's fields */
    t_resp r = call(HTTP_GET, "inventory_levels.json", V, NULL,
                    "inventory_item_ids=457924702&location_ids=655441491", NULL);
    cr_assert_eq(r.status, 200);
    yajl_val lv = jget(r.json, "inventory_levels")->u.array.values[0];
    cr_assert_eq(jint(lv, "available"), 11);
    cr_assert_str_eq(jstr(lv, "admin_graphql_api_id"),
                     "gid://shopify/InventoryLevel/655441491?inventory_item_id=457924702");
    t_free(&r);
}

Test(http_shopify, levels_list_refuses_bad_queries)
{
    static const bad_query bad[] = {
        {"", "inventory_item_ids"},
        {"limit=5", "inventory_item_ids"},
        {"inventory_item_ids=1,-2", "inventory_item_ids"},
        {"location_ids=x", "location_ids"},
        {"location_ids=", "location_ids"},
        {"location_ids=1&limit=251", "limit"},
        {"page_info=zzzz", "page_info"},
        {"page_info=SQA", "page_info"}, /* an items token: not for levels */
    };
    expect_bad_queries("inventory_levels.json", bad, sizeof bad / sizeof bad[0]);
    char q[2048] = "location_ids=";
    for (int i = 1; i <= 51; i++) {
        char one[16];
        snprintf(one, sizeof one, "%s%d", i > 1 ? "," : "", i);
        strcat(q, one);
    }
    t_resp r = call(HTTP_GET, "inventory_levels.json", V, NULL, q, NULL);
    expect_errors(&r, 400, "location_ids");
}

/* raw bytes as base64url without padding (a hand-made page_info) */
static void b64url(const uint8_t *raw, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)raw[i] << 16 | (i + 1 < n ? (uint32_t)raw[i + 1] << 8 : 0) |
                     (i + 2 < n ? raw[i + 2] : 0);
        size_t chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
        for (size_t k = 0; k < chars; k++)
            out[o++] = a[(w >> (18 - 6 * k)) & 0x3f];
    }
    out[o] = '\0';
}

Test(http_shopify, hand_made_page_info_tokens_are_refused_not_trusted)
{
    uint8_t raw[128];
    char tok[200], q[256];
    /* a levels token naming nothing to list */
    uint8_t empty[] = {'L', 0, 0, 0, 0};
    b64url(empty, sizeof empty, tok);
    snprintf(q, sizeof q, "page_info=%s", tok);
    t_resp r = call(HTTP_GET, "inventory_levels.json", V, NULL, q, NULL);
    expect_errors(&r, 400, "page_info");
    /* a levels token with 51 items (the filter allows 50) */
    size_t n = 0;
    raw[n++] = 'L';
    raw[n++] = 51;
    for (int i = 0; i < 51; i++)
        raw[n++] = 1; /* ids 1, 2, ... 51 */
    raw[n++] = 0;
    raw[n++] = 0;
    raw[n++] = 0;
    b64url(raw, n, tok);
    snprintf(q, sizeof q, "page_info=%s", tok);
    r = call(HTTP_GET, "inventory_levels.json", V, NULL, q, NULL);
    expect_errors(&r, 400, "page_info");
    /* ids not increasing (a zero delta), trailing bytes */
    uint8_t dup[] = {'I', 2, 5, 0, 0, 0, 0};
    b64url(dup, sizeof dup, tok);
    snprintf(q, sizeof q, "page_info=%s", tok);
    r = call(HTTP_GET, "inventory_items.json", V, NULL, q, NULL);
    expect_errors(&r, 400, "page_info");
    uint8_t trail[] = {'I', 1, 5, 0, 0, 0, 7};
    b64url(trail, sizeof trail, tok);
    snprintf(q, sizeof q, "page_info=%s", tok);
    r = call(HTTP_GET, "inventory_items.json", V, NULL, q, NULL);
    expect_errors(&r, 400, "page_info");
    /* a well-formed one of our own is followed */
    uint8_t one[] = {'I', 1, 0x9A, 0xB8, 0xDE, 0x81, 0x03, 0, 0, 0}; /* 808950810 */
    b64url(one, sizeof one, tok);
    snprintf(q, sizeof q, "page_info=%s", tok);
    r = call(HTTP_GET, "inventory_items.json", V, NULL, q, NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_eq(jget(r.json, "inventory_items")->u.array.len, 1, "%s", r.text);
    t_free(&r);
}

Test(http_shopify, a_next_link_too_long_for_the_header_is_a_422_not_a_lost_page)
{
    /* 50 items and 50 locations with ids near 2^64: the ids left after a
     * page of 1 take more than a Link header may hold */
    static char ids[4096], q[4200];
    strcpy(ids, "inventory_item_ids=");
    for (uint64_t i = 0; i < 50; i++) {
        uint64_t item = UINT64_MAX - i * (1ULL << 58);
        char sku[32], one[32];
        snprintf(sku, sizeof sku, "BIG%llu", (unsigned long long)i);
        put_item(item, sku);
        cr_assert_eq(inv_level_set(E, item, LOC1, 1, 0, NULL), INV_OK);
        snprintf(one, sizeof one, "%s%llu", i ? "," : "", (unsigned long long)item);
        strcat(ids, one);
    }
    strcat(ids, "&location_ids=655441491");
    for (uint64_t i = 0; i < 49; i++) {
        char one[32];
        snprintf(one, sizeof one, ",%llu", (unsigned long long)(UINT64_MAX - 1 - i * (1ULL << 58)));
        strcat(ids, one);
    }
    snprintf(q, sizeof q, "limit=1&%s", ids);
    t_resp r = call(HTTP_GET, "inventory_levels.json", V, NULL, q, NULL);
    expect_errors(&r, 422, "page_info");
    /* a limit that takes every row in one page needs no link */
    snprintf(q, sizeof q, "limit=250&%s", ids);
    r = call(HTTP_GET, "inventory_levels.json", V, NULL, q, NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_eq(jget(r.json, "inventory_levels")->u.array.len, 50);
    cr_assert_str_eq(r.link, "");
    t_free(&r);
}

/* ---- locations ---------------------------------------------------------- */

Test(http_shopify, locations_list_and_get)
{
    t_resp r = call(HTTP_GET, "locations.json", V, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    yajl_val ls = jget(r.json, "locations");
    cr_assert_eq(ls->u.array.len, 2);
    cr_assert_eq(ju64(ls->u.array.values[0], "id"), LOC2, "by id ascending");
    cr_assert_eq(ju64(ls->u.array.values[1], "id"), LOC1);
    t_free(&r);
    r = call(HTTP_GET, "locations/{id}.json", V, "655441491", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    yajl_val l = jget(r.json, "location");
    cr_assert_eq(ju64(l, "id"), LOC1);
    cr_assert_str_eq(jstr(l, "name"), "Ottawa Store");
    cr_assert_str_eq(jstr(l, "address1"), "126 York Street");
    cr_assert(jnull(l, "address2"));
    cr_assert_str_eq(jstr(l, "city"), "Ottawa");
    cr_assert_str_eq(jstr(l, "zip"), "K1N 5T5");
    cr_assert_str_eq(jstr(l, "province"), "Ontario");
    cr_assert_str_eq(jstr(l, "country"), "CA");
    cr_assert(jnull(l, "phone"));
    cr_assert_str_eq(jstr(l, "country_code"), "CA");
    cr_assert_str_eq(jstr(l, "country_name"), "Canada");
    cr_assert_str_eq(jstr(l, "province_code"), "ON");
    cr_assert(!jbool(l, "legacy"));
    cr_assert(jbool(l, "active"));
    cr_assert_str_eq(jstr(l, "admin_graphql_api_id"), "gid://shopify/Location/655441491");
    cr_assert_str_eq(jstr(l, "localized_country_name"), "Canada");
    cr_assert_str_eq(jstr(l, "localized_province_name"), "Ontario");
    cr_assert_not_null(jget(l, "created_at"));
    cr_assert_not_null(jget(l, "updated_at"));
    t_free(&r);
    r = call(HTTP_GET, "locations/{id}.json", V, "1", NULL, NULL);
    expect_not_found(&r);
}

/* ---- durability and concurrency ----------------------------------------- */

Test(http_shopify, writes_name_their_journal_position_and_refusals_none)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "http-shopify");
    inv_config cfg = {
        .data_dir = dir, .fsync_policy = INV_FSYNC_INTERVAL, .defer_durability = true};
    inv_engine *d = tu_open_config(&cfg);
    inv_item_fields f = {.tracked = true, .requires_shipping = true};
    cr_assert_eq(inv_item_put(d, 5, &f), INV_OK);
    cr_assert_eq(inv_location_put(d, 9, &(inv_location_fields){.active = true}), INV_OK);
    t_resp r = call_on(d, HTTP_POST, "inventory_levels/set.json", V, NULL, NULL,
                       "{\"location_id\":9,\"inventory_item_id\":5,\"available\":3}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_gt(r.durable_at, 0);
    cr_assert_eq(r.durable_at, inv_last_write_position());
    uint64_t first = r.durable_at;
    t_free(&r);
    r = call_on(d, HTTP_POST, "inventory_levels/adjust.json", V, NULL, NULL,
                "{\"location_id\":9,\"inventory_item_id\":5,\"available_adjustment\":-1}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_gt(r.durable_at, first);
    t_free(&r);
    r = call_on(d, HTTP_POST, "inventory_levels/adjust.json", V, NULL, NULL,
                "{\"location_id\":9,\"inventory_item_id\":5,\"available_adjustment\":-9}");
    expect_errors(&r, 422, "available");
    r = call_on(d, HTTP_PUT, "inventory_items/{id}.json", V, "5", NULL,
                "{\"inventory_item\":{\"sku\":\"S5\"}}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_gt(r.durable_at, first);
    t_free(&r);
    inv_close(d);
    tu_remove_tree(dir);
}

#define SALE_THREADS 16
#define SALE_STOCK 100

static _Atomic long sale_ok, sale_refused, sale_other;

static void sale_buyer(void *arg, size_t index)
{
    (void)arg;
    (void)index;
    for (int i = 0; i < SALE_STOCK; i++) {
        t_resp r = call(HTTP_POST, "inventory_levels/adjust.json", V, NULL, NULL,
                        "{\"location_id\":655441491,\"inventory_item_id\":808950810,"
                        "\"available_adjustment\":-1}");
        /* relaxed: counters read after the threads are joined */
        if (r.status == 200)
            atomic_fetch_add_explicit(&sale_ok, 1, memory_order_relaxed);
        else if (r.status == 422)
            atomic_fetch_add_explicit(&sale_refused, 1, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&sale_other, 1, memory_order_relaxed);
        t_free(&r);
    }
}

Test(http_shopify, concurrent_adjusts_never_oversell)
{
    cr_assert_eq(inv_level_set(E, 808950810, LOC1, SALE_STOCK, 0, NULL), INV_OK);
    tu_run_threads(SALE_THREADS, sale_buyer, NULL);
    cr_assert_eq(atomic_load_explicit(&sale_ok, memory_order_relaxed), SALE_STOCK);
    cr_assert_eq(atomic_load_explicit(&sale_refused, memory_order_relaxed),
                 SALE_THREADS * SALE_STOCK - SALE_STOCK);
    cr_assert_eq(atomic_load_explicit(&sale_other, memory_order_relaxed), 0);
    inv_level lv;
    cr_assert_eq(inv_level_get(E, 808950810, LOC1, &lv), INV_OK);
    cr_assert_eq(lv.available, 0);
}

/* ---- layer 2: libcurl through a real invcored ---------------------------- *
 *
 * Every request goes through tests/test_http_client.h (the HTTP suites'
 * one client), with the token of a --requirepass server. An invcored that
 * does not start, or has no HTTP listener, fails the test. */

#include "test_http_client.h"
#include "test_server_harness.h"

#define SALE_CLIENTS 64 /* keep-alive connections of the flash sale */
#define SALE_HTTP_STOCK 500
#define SRV_BODY_BYTES 4096 /* the suite's --http-max-body-bytes */
#define SRV_PASS "s3cret"
#define SH_PATH_MAX 2048

static int http_port;

/* Starts invcored (--requirepass SRV_PASS, a body limit of SRV_BODY_BYTES)
 * and writes the seed's items and location over RESP. */
static void srv_http_start(void)
{
    char body_max[24];
    snprintf(body_max, sizeof body_max, "%d", SRV_BODY_BYTES);
    const char *const extra[] = {"--http-max-body-bytes", body_max, "--requirepass", SRV_PASS,
                                 NULL};
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    srv_suite_start(extra);
    http_port = srv_http_port(&S);
    expect_status(C, "OK", "AUTH %s", SRV_PASS);
    expect_status(C, "OK", "ITEM.SET 808950810 sku IPOD2008PINK cost 25.00");
    expect_status(C, "OK", "ITEM.SET 39072856 sku IPOD2008GREEN cost 25.00");
    expect_status(C, "OK", "ITEM.SET 457924702 sku IPOD2008BLACK cost 25.00");
    expect_status(C, "OK", "LOC.SET 655441491 name Ottawa");
}

static void srv_http_stop(void)
{
    srv_suite_stop();
    curl_global_cleanup();
}

static const char *const sh_auth[] = {"X-Shopify-Access-Token: " SRV_PASS, NULL};

/* One request with the token; path below /admin/api/<ver>/ (ver NULL:
 * path is absolute or a whole URL). Never asserts: client threads call it. */
static long sh_do(CURL *c, const char *method, const char *ver, const char *path, const char *body,
                  hc_resp *r)
{
    char full[SH_PATH_MAX];
    if (ver != NULL)
        snprintf(full, sizeof full, "/admin/api/%s/%s", ver, path);
    else
        snprintf(full, sizeof full, "%s", path);
    hc_free(r);
    return hc_do(c, http_port, method, full, sh_auth, body, r);
}

/* A handle and a response for one test (hc_resp is large: on the heap). */
static CURL *sh_c;
static hc_resp *sh_r;

static void sh_open(void)
{
    srv_http_start();
    sh_c = curl_easy_init();
    sh_r = calloc(1, sizeof *sh_r);
    cr_assert(sh_c != NULL && sh_r != NULL);
}

static void sh_close(void)
{
    if (sh_r != NULL)
        hc_free(sh_r);
    free(sh_r);
    sh_r = NULL;
    if (sh_c != NULL)
        curl_easy_cleanup(sh_c);
    sh_c = NULL;
    srv_http_stop();
}

/* LEVEL.SET over RESP (the suite's connection C). */
static void resp_level_set(uint64_t item, uint64_t loc, long long available)
{
    redisReply *rep = cmd(C, "LEVEL.SET %llu %llu %lld", (unsigned long long)item,
                          (unsigned long long)loc, available);
    cr_assert(rep->type != REDIS_REPLY_ERROR, "LEVEL.SET: %s", rep->str);
    freeReplyObject(rep);
}

/* Ends a test: invcored stops cleanly after SIGTERM (a sanitizer's
 * report, a leak or a crash makes its exit status non-zero). In the test
 * body: Criterion does not fail a test for an assertion in .fini. */
static void sh_server_stops_cleanly(void)
{
    cr_assert_eq(srv_stop(&S), 0, "invcored's exit status after SIGTERM (log %s)", S.log);
}

/* .fini stops the server even when a test's assertion failed midway. */
TestSuite(http_shopify_server, .init = sh_open, .fini = sh_close);

/* Status want and a JSON body with the member root (NULL: no body). */
static void sh_expect(long status, const char *root)
{
    cr_assert_eq(sh_r->status, status, "status %ld, want %ld: %s", sh_r->status, status,
                 sh_r->body);
    if (root == NULL) {
        cr_assert_eq(sh_r->len, 0, "no body: %s", sh_r->body);
        return;
    }
    cr_assert_str_eq(sh_r->content_type, "application/json; charset=utf-8");
    cr_assert_not_null(hc_get(sh_r->json, root), "no %s in %s", root, sh_r->body);
}

/* ---- every route, every version ------------------------------------------ */

/* One request of the walk: method, path below /admin/api/<version>/, body,
 * the status, the body's root member (NULL: none, a 204) and text the body
 * must hold (NULL: nothing more). */
typedef struct {
    const char *method;
    const char *path;
    const char *body;
    long status;
    const char *root;
    const char *has;
} sh_call;

/* Drives every route once, in an order that leaves the state as it found
 * it (connect 201 needs the level gone: the walk deletes it at the end). */
static const sh_call every_route[] = {
    {"GET", "inventory_items.json?ids=808950810,39072856,457924702", NULL, 200, "inventory_items",
     "\"sku\":\"IPOD2008GREEN\""},
    {"GET", "inventory_items/808950810.json", NULL, 200, "inventory_item",
     "\"sku\":\"IPOD2008PINK\""},
    {"PUT", "inventory_items/39072856.json",
     "{\"inventory_item\":{\"harmonized_system_code\":\"851830\",\"tracked\":true}}", 200,
     "inventory_item", "\"harmonized_system_code\":\"851830\""},
    {"POST", "inventory_levels/connect.json",
     "{\"location_id\":655441491,\"inventory_item_id\":39072856}", 201, "inventory_level",
     "\"available\":0,"},
    {"POST", "inventory_levels/set.json",
     "{\"location_id\":655441491,\"inventory_item_id\":39072856,\"available\":10}", 200,
     "inventory_level", "\"available\":10,"},
    {"POST", "inventory_levels/adjust.json",
     "{\"location_id\":\"655441491\",\"inventory_item_id\":\"39072856\","
     "\"available_adjustment\":-3}",
     200, "inventory_level", "\"available\":7,"},
    {"GET", "inventory_levels.json?inventory_item_ids=39072856", NULL, 200, "inventory_levels",
     "\"available\":7,"},
    {"GET", "inventory_levels.json?location_ids=655441491&limit=250", NULL, 200, "inventory_levels",
     "\"inventory_item_id\":39072856,"},
    {"DELETE", "inventory_levels.json?inventory_item_id=39072856&location_id=655441491", NULL, 204,
     NULL, NULL},
    {"GET", "locations.json", NULL, 200, "locations", "\"id\":655441491,"},
    {"GET", "locations/655441491.json", NULL, 200, "location", "\"name\":\"Ottawa\""},
};

/* The route of http_shopify_routes that (method, path) reaches, or -1. */
static long shopify_route_of(const char *method, const char *path)
{
    const char *q = strchr(path, '?');
    http_str p = {path, q ? (size_t)(q - path) : strlen(path)};
    for (size_t k = 0; k < http_shopify_routes_n; k++) {
        http_str params[HTTP_PARAMS_MAX];
        size_t n = 0;
        if (http_shopify_routes[k].method == http_method_of(method) &&
            http_route_pattern_match(http_shopify_routes[k].pattern, p, params, &n))
            return (long)k;
    }
    return -1;
}

Test(http_shopify_server, every_route_answers_over_http_in_every_seed_version)
{
    size_t hits[32] = {0};
    cr_assert_leq(http_shopify_routes_n, sizeof hits / sizeof hits[0]);
    for (size_t v = 0; v < SEED_VERSIONS_N; v++) {
        for (size_t i = 0; i < sizeof every_route / sizeof every_route[0]; i++) {
            const sh_call *k = &every_route[i];
            sh_do(sh_c, k->method, seed_versions[v], k->path, k->body, sh_r);
            cr_assert_eq(sh_r->status, k->status, "%s %s %s: %ld %s", seed_versions[v], k->method,
                         k->path, sh_r->status, sh_r->body);
            sh_expect(k->status, k->root);
            cr_assert(k->has == NULL || strstr(sh_r->body, k->has) != NULL, "%s %s: no %s in %s",
                      k->method, k->path, k->has, sh_r->body);
            char full[SH_PATH_MAX];
            snprintf(full, sizeof full, "/admin/api/%s/%s", seed_versions[v], k->path);
            long route = shopify_route_of(k->method, full);
            cr_assert_geq(route, 0, "%s %s is no Shopify route", k->method, full);
            hits[route]++;
        }
    }
    for (size_t k = 0; k < http_shopify_routes_n; k++)
        cr_assert_geq(hits[k], SEED_VERSIONS_N, "route %d %s has no libcurl test in every version",
                      (int)http_shopify_routes[k].method, http_shopify_routes[k].pattern);
    sh_server_stops_cleanly();
}

/* ---- the seed's examples (002), field for field, in every version -------- */

/* The seed's InventoryItem with id, sku (its created/updated times stand
 * for any time of ours: they are the engine's). */
#define SEED_ITEM(id, sku)                                                                        \
    "{\"id\":" id ",\"sku\":\"" sku "\",\"created_at\":\"2021-01-01T14:22:39-05:00\","            \
    "\"updated_at\":\"2021-01-01T14:22:39-05:00\",\"requires_shipping\":true,\"cost\":\"25.00\"," \
    "\"country_code_of_origin\":null,\"province_code_of_origin\":null,"                           \
    "\"harmonized_system_code\":null,\"tracked\":true,\"country_harmonized_system_codes\":[],"    \
    "\"admin_graphql_api_id\":\"gid://shopify/InventoryItem/" id "\"}"

static const char seed_list_response[] =
    "{\"inventory_items\":[" SEED_ITEM("39072856", "IPOD2008GREEN") "," SEED_ITEM(
        "457924702", "IPOD2008BLACK") "," SEED_ITEM("808950810", "IPOD2008PINK") "]}";
static const char seed_get_response[] =
    "{\"inventory_item\":" SEED_ITEM("808950810", "IPOD2008PINK") "}";
static const char seed_sku_request[] =
    "{\n\"inventory_item\": {\n\"id\": 808950810,\n\"sku\": \"new sku\"\n}\n}";
static const char seed_sku_response[] =
    "{\"inventory_item\":" SEED_ITEM("808950810", "new sku") "}";
static const char seed_cost_request[] =
    "{\n\"inventory_item\": {\n\"id\": 808950810,\n\"cost\": \"25.00\"\n}\n}";
static const char *const seed_cost_response = seed_get_response;

/* "2021-01-01T19:22:39Z": the engine's times, ISO 8601 UTC. */
static bool iso_utc(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof shape - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    return true;
}

/* got is want, field for field: the same keys in the same order, the same
 * values (numbers by their text: ids exact); a created_at / updated_at is
 * any ISO 8601 UTC time. key: where in the document (for messages). */
static void expect_like_seed(yajl_val got, yajl_val want, const char *key)
{
    cr_assert_not_null(got, "%s: missing", key);
    if (strcmp(key, "created_at") == 0 || strcmp(key, "updated_at") == 0) {
        cr_assert(YAJL_IS_STRING(got) && iso_utc(got->u.string), "%s: not a time", key);
        return;
    }
    cr_assert_eq(got->type, want->type, "%s: type %d, the seed's %d", key, got->type, want->type);
    if (YAJL_IS_STRING(want))
        cr_assert_str_eq(got->u.string, want->u.string, "%s", key);
    else if (YAJL_IS_NUMBER(want))
        cr_assert_str_eq(got->u.number.r, want->u.number.r, "%s", key);
    else if (YAJL_IS_ARRAY(want)) {
        cr_assert_eq(got->u.array.len, want->u.array.len, "%s: length", key);
        for (size_t i = 0; i < want->u.array.len; i++)
            expect_like_seed(got->u.array.values[i], want->u.array.values[i], key);
    } else if (YAJL_IS_OBJECT(want)) {
        cr_assert_eq(got->u.object.len, want->u.object.len, "%s: members", key);
        for (size_t i = 0; i < want->u.object.len; i++) {
            cr_assert_str_eq(got->u.object.keys[i], want->u.object.keys[i], "in %s", key);
            expect_like_seed(got->u.object.values[i], want->u.object.values[i],
                             want->u.object.keys[i]);
        }
    } /* true, false, null: the type is the value */
}

/* The last response is the seed's want (JSON text), field for field. */
static void expect_seed_response(const char *want_text)
{
    char err[128];
    yajl_val want = yajl_tree_parse(want_text, err, sizeof err);
    cr_assert_not_null(want, "the test's seed copy: %s", err);
    cr_assert_eq(sh_r->status, 200, "%ld %s", sh_r->status, sh_r->body);
    cr_assert_not_null(sh_r->json, "not JSON: %s", sh_r->body);
    expect_like_seed(sh_r->json, want, "(root)");
    yajl_tree_free(want);
}

Test(http_shopify_server, the_seed_examples_round_trip_field_for_field_in_every_version)
{
    for (size_t v = 0; v < SEED_VERSIONS_N; v++) {
        const char *ver = seed_versions[v];
        sh_do(sh_c, "GET", ver, "inventory_items.json?ids=808950810,39072856,457924702", NULL,
              sh_r);
        expect_seed_response(seed_list_response);
        sh_do(sh_c, "GET", ver, "inventory_items/808950810.json", NULL, sh_r);
        expect_seed_response(seed_get_response);
        sh_do(sh_c, "PUT", ver, "inventory_items/808950810.json", seed_cost_request, sh_r);
        expect_seed_response(seed_cost_response);
        sh_do(sh_c, "PUT", ver, "inventory_items/808950810.json", seed_sku_request, sh_r);
        expect_seed_response(seed_sku_response);
        const char *created = hc_get(hc_get(sh_r->json, "inventory_item"), "created_at")->u.string;
        const char *updated = hc_get(hc_get(sh_r->json, "inventory_item"), "updated_at")->u.string;
        cr_assert_geq(strcmp(updated, created), 0, "updated_at %s before created_at %s", updated,
                      created);
        /* back to the seed's state for the next version */
        sh_do(sh_c, "PUT", ver, "inventory_items/808950810.json",
              "{\"inventory_item\":{\"sku\":\"IPOD2008PINK\"}}", sh_r);
        expect_seed_response(seed_get_response);
    }
    sh_server_stops_cleanly();
}

/* ---- methods: HEAD, OPTIONS, 405 with Allow, an unknown method ----------- */

/* Each path of the dialect (one per pattern) and the methods it has. */
static const struct {
    const char *path;
    const char *allow;
} shopify_paths[] = {
    {"inventory_items.json?ids=808950810", "GET, HEAD, OPTIONS"},
    {"inventory_items/808950810.json", "GET, HEAD, PUT, OPTIONS"},
    {"inventory_levels.json?location_ids=655441491", "GET, HEAD, DELETE, OPTIONS"},
    {"inventory_levels/adjust.json", "POST, OPTIONS"},
    {"inventory_levels/set.json", "POST, OPTIONS"},
    {"inventory_levels/connect.json", "POST, OPTIONS"},
    {"locations.json", "GET, HEAD, OPTIONS"},
    {"locations/655441491.json", "GET, HEAD, OPTIONS"},
};

Test(http_shopify_server, wrong_methods_are_405_with_allow_options_lists_them_head_has_no_body)
{
    size_t patterns = 0; /* distinct patterns of the table */
    for (size_t k = 0; k < http_shopify_routes_n; k++) {
        bool seen = false;
        for (size_t j = 0; j < k; j++)
            seen |= strcmp(http_shopify_routes[j].pattern, http_shopify_routes[k].pattern) == 0;
        patterns += !seen;
    }
    cr_assert_eq(patterns, sizeof shopify_paths / sizeof shopify_paths[0],
                 "every pattern has a row here");
    for (size_t i = 0; i < sizeof shopify_paths / sizeof shopify_paths[0]; i++) {
        const char *p = shopify_paths[i].path, *allow = shopify_paths[i].allow;
        /* PATCH is on no Shopify path; PROPFIND is a method no route has */
        static const char *const wrong[] = {"PATCH", "PROPFIND"};
        for (size_t w = 0; w < 2; w++) {
            sh_do(sh_c, wrong[w], V, p, NULL, sh_r);
            cr_assert_eq(sh_r->status, 405, "%s %s: %ld %s", wrong[w], p, sh_r->status, sh_r->body);
            cr_assert_str_eq(sh_r->allow, allow, "%s %s", wrong[w], p);
            cr_assert_str_eq(sh_r->body, "{\"errors\":\"Method Not Allowed\"}");
        }
        if (strstr(allow, "POST") == NULL) {
            sh_do(sh_c, "POST", V, p, "{}", sh_r);
            cr_assert_eq(sh_r->status, 405, "POST %s: %ld", p, sh_r->status);
            cr_assert_str_eq(sh_r->allow, allow);
        }
        sh_do(sh_c, "OPTIONS", V, p, NULL, sh_r);
        cr_assert_eq(sh_r->status, 204, "OPTIONS %s: %ld %s", p, sh_r->status, sh_r->body);
        cr_assert_str_eq(sh_r->allow, allow, "OPTIONS %s", p);
        cr_assert_eq(sh_r->len, 0);
        if (strncmp(allow, "GET", 3) == 0) {
            sh_do(sh_c, "GET", V, p, NULL, sh_r);
            cr_assert_eq(sh_r->status, 200, "GET %s: %ld %s", p, sh_r->status, sh_r->body);
            size_t get_len = sh_r->len;
            sh_do(sh_c, "HEAD", V, p, NULL, sh_r);
            cr_assert_eq(sh_r->status, 200, "HEAD %s: %ld", p, sh_r->status);
            cr_assert_eq(sh_r->len, 0, "HEAD %s has no body: %s", p, sh_r->body);
            cr_assert_gt(get_len, 0);
        }
    }
    /* a method the parser does not know: http.c's 501, and the connection
     * closes (the handle reconnects for the next request) */
    sh_do(sh_c, "BREW", V, "locations.json", NULL, sh_r);
    cr_assert_eq(sh_r->status, 501, "%ld %s", sh_r->status, sh_r->body);
    sh_do(sh_c, "GET", V, "locations.json", NULL, sh_r);
    sh_expect(200, "locations");
    sh_server_stops_cleanly();
}

/* ---- bad input over the wire ---------------------------------------------- */

/* The last response is status with Shopify's {"errors": ...} (naming
 * field when not NULL). */
static void sh_expect_errors(long status, const char *field)
{
    sh_expect(status, "errors");
    if (field != NULL)
        cr_assert_not_null(hc_get(hc_get(sh_r->json, "errors"), field), "errors lack %s: %s", field,
                           sh_r->body);
}

Test(http_shopify_server, bad_input_over_http_is_refused_in_shopify_errors_and_changes_nothing)
{
    static const struct {
        const char *method, *path, *body;
        long status;
        const char *field;
    } bad[] = {
        /* malformed JSON, not an object, no root */
        {"PUT", "inventory_items/808950810.json", "{\"inventory_item\":", 400, NULL},
        {"PUT", "inventory_items/808950810.json", "[1]", 400, NULL},
        {"PUT", "inventory_items/808950810.json", "{\"sku\":\"x\"}", 400, "inventory_item"},
        {"POST", "inventory_levels/set.json", "{\"location_id\":655441491,", 400, NULL},
        /* wrong types */
        {"PUT", "inventory_items/808950810.json", "{\"inventory_item\":{\"sku\":5}}", 422, "sku"},
        {"PUT", "inventory_items/808950810.json", "{\"inventory_item\":{\"tracked\":\"no\"}}", 422,
         "tracked"},
        {"POST", "inventory_levels/set.json",
         "{\"location_id\":655441491,\"inventory_item_id\":808950810,\"available\":\"9\"}", 422,
         "available"},
        /* ids with a sign or over u64: in a body 422, in a path 404, in a query 400 */
        {"POST", "inventory_levels/adjust.json",
         "{\"location_id\":-655441491,\"inventory_item_id\":808950810,\"available_adjustment\":1}",
         422, "location_id"},
        {"POST", "inventory_levels/adjust.json",
         "{\"location_id\":\"+655441491\",\"inventory_item_id\":808950810,"
         "\"available_adjustment\":1}",
         422, "location_id"},
        {"POST", "inventory_levels/set.json",
         "{\"location_id\":655441491,\"inventory_item_id\":18446744073709551616,\"available\":1}",
         422, "inventory_item_id"},
        {"GET", "inventory_items/-808950810.json", NULL, 404, NULL},
        {"PUT", "inventory_items/18446744073709551616.json", "{\"inventory_item\":{}}", 404, NULL},
        {"GET", "locations/+655441491.json", NULL, 404, NULL},
        {"GET", "inventory_items.json?ids=808950810,-1", NULL, 400, "ids"},
        {"GET", "inventory_items.json?ids=18446744073709551616", NULL, 400, "ids"},
        {"GET", "inventory_levels.json?location_ids=%2B655441491", NULL, 400, "location_ids"},
        {"DELETE", "inventory_levels.json?inventory_item_id=-808950810&location_id=655441491", NULL,
         400, "inventory_item_id"},
    };
    resp_level_set(808950810, 655441491, 5);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sh_do(sh_c, bad[i].method, V, bad[i].path, bad[i].body, sh_r);
        cr_assert_eq(sh_r->status, bad[i].status, "case %zu %s %s: %ld %s", i, bad[i].method,
                     bad[i].path, sh_r->status, sh_r->body);
        sh_expect_errors(bad[i].status, bad[i].field);
    }
    sh_do(sh_c, "GET", NULL, "/admin/api/2019-10/locations.json", NULL, sh_r);
    cr_assert_str_eq(sh_r->body, "{\"errors\":\"Not Found\"}", "a version the seed lacks");
    /* nothing changed */
    sh_do(sh_c, "GET", V, "inventory_items/808950810.json", NULL, sh_r);
    expect_seed_response(seed_get_response);
    expect_level(C, 5, 0, "LEVEL.GET 808950810 655441491");
    /* unknown fields are ignored (as Shopify ignores them) */
    sh_do(sh_c, "PUT", V, "inventory_items/808950810.json",
          "{\"inventory_item\":{\"cost\":\"25.00\",\"no_such_field\":{\"a\":[1]}},\"extra\":1}",
          sh_r);
    expect_seed_response(seed_get_response);
    sh_do(sh_c, "POST", V, "inventory_levels/adjust.json",
          "{\"location_id\":655441491,\"inventory_item_id\":808950810,\"available_adjustment\":-1,"
          "\"reason\":\"restock\"}",
          sh_r);
    sh_expect(200, "inventory_level");
    expect_level(C, 4, 0, "LEVEL.GET 808950810 655441491");
    sh_server_stops_cleanly();
}

Test(http_shopify_server, a_body_over_the_limit_is_413_and_writes_nothing)
{
    static char body[SRV_BODY_BYTES + 256];
    int n = snprintf(body, sizeof body, "{\"inventory_item\":{\"sku\":\"TOO-BIG\",\"pad\":\"");
    memset(body + n, 'x', SRV_BODY_BYTES);
    snprintf(body + n + SRV_BODY_BYTES, sizeof body - (size_t)n - SRV_BODY_BYTES, "\"}}");
    cr_assert_gt(strlen(body), SRV_BODY_BYTES);
    sh_do(sh_c, "PUT", V, "inventory_items/808950810.json", body, sh_r);
    cr_assert_eq(sh_r->status, 413, "%ld %s", sh_r->status, sh_r->body);
    cr_assert_str_eq(sh_r->body, "{\"errors\":\"Payload Too Large\"}");
    /* one byte under the limit is read (and its unknown field ignored) */
    body[n + SRV_BODY_BYTES - (strlen(body) - SRV_BODY_BYTES) - 1] = '\0';
    strcat(body, "\"}}");
    cr_assert_leq(strlen(body), SRV_BODY_BYTES);
    sh_do(sh_c, "PUT", V, "inventory_items/808950810.json", body, sh_r);
    sh_expect(200, "inventory_item");
    cr_assert(strstr(sh_r->body, "\"sku\":\"TOO-BIG\"") != NULL, "%s", sh_r->body);
    sh_server_stops_cleanly();
}

Test(http_shopify_server, the_access_token_is_required)
{
    static const char *const none[] = {NULL};
    static const char *const wrong[] = {"X-Shopify-Access-Token: wrong", NULL};
    static const char *const other[] = {"Access-Token: " SRV_PASS, NULL}; /* Shoplazza's */
    const char *const *const tries[] = {none, wrong};
    for (size_t i = 0; i < 2; i++) {
        hc_free(sh_r);
        hc_do(sh_c, http_port, "GET", "/admin/api/" V "/locations.json", tries[i], NULL, sh_r);
        cr_assert_eq(sh_r->status, 401, "%ld %s", sh_r->status, sh_r->body);
        yajl_val e = hc_get(sh_r->json, "errors");
        cr_assert(e != NULL && YAJL_IS_STRING(e), "Shopify's {\"errors\":\"...\"}: %s", sh_r->body);
        hc_free(sh_r);
        hc_do(sh_c, http_port, "POST", "/admin/api/" V "/inventory_levels/set.json", tries[i],
              "{\"location_id\":655441491,\"inventory_item_id\":808950810,\"available\":9}", sh_r);
        cr_assert_eq(sh_r->status, 401, "%ld %s", sh_r->status, sh_r->body);
    }
    expect_error(C, "NOTFOUND", "LEVEL.GET 808950810 655441491"); /* the refused set */
    hc_free(sh_r);
    hc_do(sh_c, http_port, "GET", "/admin/api/" V "/locations.json", other, NULL, sh_r);
    cr_assert_eq(sh_r->status, 200, "any of the seeds' token headers: %ld", sh_r->status);
    sh_do(sh_c, "GET", V, "locations.json", NULL, sh_r);
    sh_expect(200, "locations");
    cr_assert(strstr(sh_r->body, "\"id\":655441491") != NULL, "%s", sh_r->body);
    sh_server_stops_cleanly();
}

/* ---- the flash sale ------------------------------------------------------ */

static _Atomic long http_sale_ok, http_sale_refused, http_sale_other;

/* One buyer: its own keep-alive connection, adjust -1 until refused. */
static void http_sale_buyer(void *arg, size_t index)
{
    (void)arg;
    CURL *c = curl_easy_init();
    hc_resp *r = calloc(1, sizeof *r);
    TU_CHECK(c != NULL && r != NULL, "client %zu: no memory", index);
    if (c == NULL || r == NULL)
        return;
    for (int i = 0; i <= SALE_HTTP_STOCK; i++) {
        long st = sh_do(c, "POST", V, "inventory_levels/adjust.json",
                        "{\"location_id\":655441491,\"inventory_item_id\":808950810,"
                        "\"available_adjustment\":-1}",
                        r);
        /* relaxed: read after the threads are joined */
        if (st == 200) {
            atomic_fetch_add_explicit(&http_sale_ok, 1, memory_order_relaxed);
        } else if (st == 422) {
            atomic_fetch_add_explicit(&http_sale_refused, 1, memory_order_relaxed);
            break; /* sold out */
        } else {
            atomic_fetch_add_explicit(&http_sale_other, 1, memory_order_relaxed);
            TU_CHECK(false, "client %zu: status %ld %s", index, st, r->body);
            break;
        }
    }
    hc_free(r);
    free(r);
    curl_easy_cleanup(c);
}

Test(http_shopify_server, flash_sale_of_64_keep_alive_clients_never_oversells)
{
    resp_level_set(808950810, 655441491, SALE_HTTP_STOCK);
    tu_run_threads(SALE_CLIENTS, http_sale_buyer, NULL);
    tu_assert_no_failures();
    cr_assert_eq(atomic_load_explicit(&http_sale_ok, memory_order_relaxed), SALE_HTTP_STOCK,
                 "exactly the stock was sold");
    cr_assert_eq(atomic_load_explicit(&http_sale_refused, memory_order_relaxed), SALE_CLIENTS,
                 "every client was refused once, at the end");
    cr_assert_eq(atomic_load_explicit(&http_sale_other, memory_order_relaxed), 0);
    sh_do(sh_c, "GET", V,
          "inventory_levels.json?inventory_item_ids=808950810&location_ids=655441491", NULL, sh_r);
    sh_expect(200, "inventory_levels");
    cr_assert(strstr(sh_r->body, "\"available\":0,") != NULL, "sold out, not below: %s",
              sh_r->body);
    sh_server_stops_cleanly();
}

/* ---- a listing's Link followed over HTTP ---------------------------------- */

Test(http_shopify_server, a_next_link_is_followed_as_given)
{
    resp_level_set(808950810, 655441491, 9);
    resp_level_set(39072856, 655441491, 1);
    sh_do(sh_c, "GET", V, "inventory_levels.json?location_ids=655441491&limit=1", NULL, sh_r);
    sh_expect(200, "inventory_levels");
    size_t rows = hc_get(sh_r->json, "inventory_levels")->u.array.len;
    for (int pages = 0; sh_r->link[0] && pages < 8; pages++) {
        char next[HC_HEADER_VALUE_MAX];
        const char *a = strchr(sh_r->link, '<'), *b = strchr(sh_r->link, '>');
        cr_assert(a && b && strstr(b, "rel=\"next\""), "%s", sh_r->link);
        snprintf(next, sizeof next, "%.*s", (int)(b - a - 1), a + 1);
        cr_assert(strncmp(next, "http://127.0.0.1:", 17) == 0, "absolute, from Host: %s", next);
        sh_do(sh_c, "GET", NULL, next, NULL, sh_r);
        sh_expect(200, "inventory_levels");
        rows += hc_get(sh_r->json, "inventory_levels")->u.array.len;
    }
    cr_assert_eq(rows, 2, "both levels, one per page");
    sh_server_stops_cleanly();
}

/* ---- country_harmonized_system_codes over the wire ------------------------ */

/* The country_hs_codes field of ITEM.GET item over RESP. */
static void expect_resp_country_hs(const char *item, const char *want)
{
    redisReply *r = cmd(C, "ITEM.GET %s", item);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "ITEM.GET: %s", r->str ? r->str : "");
    size_t k = 0;
    while (k + 1 < r->elements && strcmp(r->element[k]->str, "country_hs_codes") != 0)
        k += 2;
    cr_assert_lt(k + 1, r->elements, "no country_hs_codes in ITEM.GET");
    cr_assert_str_eq(r->element[k + 1]->str, want);
    freeReplyObject(r);
}

Test(http_shopify_server, country_harmonized_system_codes_are_stored_and_served)
{
    sh_do(sh_c, "PUT", V, "inventory_items/808950810.json",
          "{\"inventory_item\":{\"country_harmonized_system_codes\":[{\"country_code\":\"CA\","
          "\"harmonized_system_code\":\"8518300000\"},{\"country_code\":\"US\","
          "\"harmonized_system_code\":\"620342\"}]}}",
          sh_r);
    sh_expect(200, "inventory_item");
    expect_resp_country_hs("808950810", "CA:8518300000,US:620342");
    /* written over RESP, read in every version */
    expect_status(C, "OK", "ITEM.SET 39072856 country_hs_codes GB:62034231");
    for (size_t v = 0; v < SEED_VERSIONS_N; v++) {
        sh_do(sh_c, "GET", seed_versions[v], "inventory_items.json?ids=39072856", NULL, sh_r);
        sh_expect(200, "inventory_items");
        cr_assert(strstr(sh_r->body, "\"country_harmonized_system_codes\":[{\"country_code\":"
                                     "\"GB\",\"harmonized_system_code\":\"62034231\"}]") != NULL,
                  "%s", sh_r->body);
    }
    /* a country twice: 422, nothing written */
    sh_do(sh_c, "PUT", V, "inventory_items/808950810.json",
          "{\"inventory_item\":{\"country_harmonized_system_codes\":[{\"country_code\":\"MX\","
          "\"harmonized_system_code\":\"620342\"},{\"country_code\":\"MX\","
          "\"harmonized_system_code\":\"620343\"}]}}",
          sh_r);
    sh_expect_errors(422, "country_harmonized_system_codes");
    expect_resp_country_hs("808950810", "CA:8518300000,US:620342");
    /* null clears */
    sh_do(sh_c, "PUT", V, "inventory_items/808950810.json",
          "{\"inventory_item\":{\"country_harmonized_system_codes\":null}}", sh_r);
    sh_expect(200, "inventory_item");
    expect_resp_country_hs("808950810", "");
    sh_server_stops_cleanly();
}
