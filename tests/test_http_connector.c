/*
 * test_http_connector.c — core/server/http_connector.c, the connector
 * dialect (seed 001: /api/inventoryitem(s), /api/inventorylevel(s),
 * /api/inventorylocation(s), the X-TWC-Tenant header).
 *
 * Layer 1 (suite http_connector, no socket): each request is routed
 * through the dialect's own table (http_route_pattern_match over
 * http_connector_routes) and its handler called on a journaled engine, so
 * every write's durable_at is checked; the answers are parsed back with
 * yajl and compared field for field, the seed's example bodies included.
 * Bad input: malformed JSON, wrong types, ids with a sign, 0, over u64 or
 * not digits, unknown and read-only fields (ignored), the tenant header,
 * bulk limits and per-row results, create-only and update-only rules.
 *
 * Layer 2 (suite connector_server): every route with libcurl
 * (test_http_client.h) through a real invcored (test_server_harness.h),
 * bad input over the wire, the body limit (413), 405 and OPTIONS as the
 * router answers them, the Bearer token. CONNECTOR_EXAMPLES=1 prints each
 * request and answer of connector_server.every_route_* to stderr: the
 * examples of docs/HTTP.md "Connector" are copied from that output.
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/http_json.h"
#include "server/http_route.h"
#include "test_http_read.h"
#include "test_util.h"

/* ---- layer 1: the request builder ---------------------------------------- */

#define T_TEXT_MAX (1u << 20) /* bytes of an answer kept (a 250-row bulk fits) */
#define T_PATH_MAX 512

typedef struct {
    int status;
    yajl_val json; /* NULL: no body */
    char *text; /* the body as written (heap: a bulk's answer is large) */
    size_t len;
    uint64_t durable_at;
} t_resp;

static inv_engine *E;
static char E_dir[128];
static const char *t_tenant = "acme"; /* the X-TWC-Tenant value; NULL: absent */

static bool t_header(const http_request *r, const char *name, http_str *value)
{
    (void)r;
    if (strcasecmp(name, "X-TWC-Tenant") != 0 || t_tenant == NULL)
        return false;
    *value = (http_str){t_tenant, strlen(t_tenant)};
    return true;
}

/* Routes (m, path) through the dialect's table and runs its handler on e,
 * without asserting (client threads call it): status 0 when no route. */
static t_resp t_exec(inv_engine *e, http_method m, const char *path, const char *body)
{
    t_resp r = {0};
    http_request req = {0};
    req.method = m;
    req.dialect = HTTP_DIALECT_CONNECTOR;
    req.path = (http_str){path, strlen(path)};
    req.query = (http_str){"", 0};
    req.body = (http_str){body ? body : "", body ? strlen(body) : 0};
    req.e = e;
    req.header = t_header;
    const http_route *rt = NULL;
    for (size_t i = 0; i < http_connector_routes_n && rt == NULL; i++)
        if (http_connector_routes[i].method == m &&
            http_route_pattern_match(http_connector_routes[i].pattern, req.path, req.params,
                                     &req.n_params))
            rt = &http_connector_routes[i];
    if (rt == NULL)
        return r;
    http_body b;
    if (http_body_init(&b) != 0)
        return r;
    http_response res = {0};
    res.body = &b;
    rt->fn(&req, &res);
    r.status = b.failed ? 500 : res.status;
    r.durable_at = res.durable_at;
    r.text = malloc(T_TEXT_MAX);
    if (r.text != NULL) {
        r.len = b.len < T_TEXT_MAX - 1 ? b.len : T_TEXT_MAX - 1;
        if (r.len > 0)
            memcpy(r.text, b.p, r.len);
        r.text[r.len] = '\0';
        if (r.len > 0)
            r.json = yajl_tree_parse(r.text, NULL, 0);
    }
    http_body_free(&b);
    return r;
}

static void t_free(t_resp *r)
{
    yajl_tree_free(r->json);
    free(r->text);
    r->json = NULL;
    r->text = NULL;
}

/* t_exec on E, asserting a route ran and that a body is JSON. */
static t_resp call(http_method m, const char *path, const char *body)
{
    t_resp r = t_exec(E, m, path, body);
    cr_assert_neq(r.status, 0, "no route for %d %s", (int)m, path);
    cr_assert_not_null(r.text);
    cr_assert(r.len == 0 || r.json != NULL, "not JSON: %s", r.text);
    return r;
}

/* ---- reading answers -------------------------------------------------------- */

static void expect_null(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    cr_assert(v != NULL && YAJL_IS_NULL(v), "%s: not null", key);
}

/* The object's keys are exactly keys[0..n), in that order. */
static void expect_keys(yajl_val obj, const char *const *keys, size_t n)
{
    cr_assert(obj != NULL && YAJL_IS_OBJECT(obj));
    cr_assert_eq(obj->u.object.len, n, "%zu keys, want %zu", obj->u.object.len, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(obj->u.object.keys[i], keys[i], "key %zu", i);
}

/* "2026-12-06T20:28:39.522Z": ISO 8601 UTC with milliseconds. */
static void expect_time_ms(yajl_val obj, const char *key)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    const char *s = jstr(obj, key);
    cr_assert_eq(regexec(&re, s, 0, NULL, 0), 0, "%s: \"%s\" is not ISO 8601 with ms", key, s);
    regfree(&re);
}

/* The status and {"error":"<msg>"} with msg containing want (NULL: any);
 * a refused request waits for no durability. Frees r. */
static void expect_refused(t_resp *r, int status, const char *want)
{
    cr_assert_eq(r->status, status, "status %d, want %d: %s", r->status, status, r->text);
    cr_assert_eq(r->durable_at, 0, "a refused request waits for nothing: %s", r->text);
    cr_assert_not_null(r->json, "no body");
    cr_assert_eq(r->json->u.object.len, 1, "only error: %s", r->text);
    const char *msg = jstr(r->json, "error");
    if (want)
        cr_assert(strstr(msg, want) != NULL, "error \"%s\" lacks \"%s\"", msg, want);
    t_free(r);
}

/* A status and a write that names its journal position. */
static void expect_written(const t_resp *r, int status)
{
    cr_assert_eq(r->status, status, "status %d, want %d: %s", r->status, status, r->text);
    cr_assert_gt(r->durable_at, 0, "a write waits for its journal position");
}

/* "[{"id":"first"},...]": a bulk of n bare items into buf (cap bytes);
 * false when it does not fit. Never asserts (client threads call it). */
static bool ids_bulk(char *buf, size_t cap, int first, int n)
{
    size_t o = 1;
    if (cap < 3)
        return false;
    buf[0] = '[';
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s{\"id\":\"%d\"}", i ? "," : "", first + i);
    return o + 1 < cap && snprintf(buf + o, cap - o, "]") == 1;
}

/* ---- fixtures -------------------------------------------------------------- */

#define ITEM 808950810ULL
#define LOC 655441491ULL
#define LOC2 487838322ULL

/* Every key of the seed's item, in the seed's (alphabetical) order. */
static const char *const item_keys[] = {
    "admin_graphql_api_id",
    "cost",
    "country_code_of_origin",
    "country_harmonized_system_codes",
    "created_at",
    "deleted",
    "harmonized_system_code",
    "id",
    "province_code_of_origin",
    "requires_shipping",
    "sku",
    "tracked",
    "updated_at",
};

/* The seed's example bodies with realistic values for "string". deleted
 * is false (a create of a deleted item is refused: see below). */
#define SEED_ITEM                                                                               \
    "{\"admin_graphql_api_id\":\"gid://shopify/InventoryItem/808950810\",\"cost\":25.5,"        \
    "\"country_code_of_origin\":\"CA\",\"country_harmonized_system_codes\":[{\"country_code\":" \
    "\"CA\",\"harmonized_system_code\":\"1234567890\"},{\"country_code\":\"US\","               \
    "\"harmonized_system_code\":\"620342\"}],\"created_at\":\"2022-06-22T12:27:57.620Z\","      \
    "\"deleted\":false,\"harmonized_system_code\":\"620342\",\"id\":\"808950810\","             \
    "\"province_code_of_origin\":\"ON\",\"requires_shipping\":true,"                            \
    "\"sku\":\"IPOD2008PINK\",\"tracked\":true,\"updated_at\":\"2022-06-22T12:27:57.620Z\"}"

#define SEED_LEVEL                                                                       \
    "{\"admin_graphql_api_id\":\"gid://shopify/InventoryLevel/655441491?"                \
    "inventory_item_id=808950810\",\"available\":7,\"inventory_item_id\":\"808950810\"," \
    "\"location_id\":\"655441491\"}"

#define SEED_LOCATION                                                                    \
    "{\"active\":true,\"address1\":\"126 York Street\",\"address2\":\"Suite 200\","      \
    "\"admin_graphql_api_id\":\"gid://shopify/Location/655441491\",\"city\":\"Ottawa\"," \
    "\"country\":\"Canada\",\"country_code\":\"CA\",\"country_name\":\"Canada\","        \
    "\"created_at\":\"2022-06-22T13:35:40.215Z\",\"id\":\"655441491\",\"legacy\":false," \
    "\"localized_country_name\":\"Canada\",\"localized_province_name\":\"Ontario\","     \
    "\"name\":\"Ottawa Store\",\"phone\":\"+1 613-555-0100\",\"province\":\"Ontario\","  \
    "\"province_code\":\"ON\",\"updated_at\":\"2022-06-22T13:35:40.215Z\","              \
    "\"zip\":\"K1N 5T5\"}"

/* One expected member of an answer: its key and what its value must be:
 * 's' the string v, 'n' a number written as v, 'b' the bool v ("true" /
 * "false"), 't' an ISO 8601 time with ms (not v, when v is given: a
 * read-only time sent in the request), 'z' null, 'a' the
 * country-specific codes whose pairs are v (expect_pairs). */
typedef struct {
    const char *key;
    char kind;
    const char *v;
} t_field;

/* country_harmonized_system_codes: the array of {"country_code",
 * "harmonized_system_code"} objects whose pairs, as the engine's text
 * ("CA:1234567890,US:620342"), are want. */
static void expect_pairs(yajl_val a, const char *want)
{
    char text[INV_COUNTRY_HS_CODES_MAX + 1];
    size_t o = 0;
    cr_assert(a != NULL && YAJL_IS_ARRAY(a), "country_harmonized_system_codes: not an array");
    for (size_t i = 0; i < a->u.array.len; i++) {
        yajl_val p = a->u.array.values[i];
        cr_assert_eq(p->u.object.len, 2);
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s:%s", i ? "," : "",
                              jstr(p, "country_code"), jstr(p, "harmonized_system_code"));
        cr_assert_lt(o, sizeof text);
    }
    text[o] = '\0';
    cr_assert_str_eq(text, want);
}

/* The object has exactly the members want[0..n), in that order, with
 * those values. */
static void expect_object(yajl_val o, const t_field *want, size_t n)
{
    cr_assert(o != NULL && YAJL_IS_OBJECT(o), "not an object");
    cr_assert_eq(o->u.object.len, n, "%zu keys, want %zu", o->u.object.len, n);
    for (size_t i = 0; i < n; i++) {
        const t_field *w = &want[i];
        cr_assert_str_eq(o->u.object.keys[i], w->key, "key %zu", i);
        switch (w->kind) {
        case 's':
            cr_assert_str_eq(jstr(o, w->key), w->v, "%s", w->key);
            break;
        case 'n':
            cr_assert_str_eq(jnum(o, w->key), w->v, "%s", w->key);
            break;
        case 'b':
            cr_assert_eq(jbool(o, w->key), strcmp(w->v, "true") == 0, "%s", w->key);
            break;
        case 't':
            expect_time_ms(o, w->key);
            if (w->v)
                cr_assert_str_neq(jstr(o, w->key), w->v, "%s is read-only", w->key);
            break;
        case 'z':
            expect_null(o, w->key);
            break;
        default:
            expect_pairs(jget(o, w->key), w->v);
        }
    }
}

#define NFIELDS(a) (sizeof(a) / sizeof *(a))

/* The seed item as answered: every stored field as sent, the derived and
 * engine-owned ones as the dialect defines them. */
static const t_field seed_item_answer[] = {
    {"admin_graphql_api_id", 's', "gid://shopify/InventoryItem/808950810"},
    {"cost", 'n', "25.5"},
    {"country_code_of_origin", 's', "CA"},
    {"country_harmonized_system_codes", 'a', "CA:1234567890,US:620342"},
    {"created_at", 't', "2022-06-22T12:27:57.620Z"},
    {"deleted", 'b', "false"},
    {"harmonized_system_code", 's', "620342"},
    {"id", 's', "808950810"},
    {"province_code_of_origin", 's', "ON"},
    {"requires_shipping", 'b', "true"},
    {"sku", 's', "IPOD2008PINK"},
    {"tracked", 'b', "true"},
    {"updated_at", 't', "2022-06-22T12:27:57.620Z"},
};

static const t_field seed_location_answer[] = {
    {"active", 'b', "true"},
    {"address1", 's', "126 York Street"},
    {"address2", 's', "Suite 200"},
    {"admin_graphql_api_id", 's', "gid://shopify/Location/655441491"},
    {"city", 's', "Ottawa"},
    {"country", 's', "Canada"},
    {"country_code", 's', "CA"},
    {"country_name", 's', "Canada"},
    {"created_at", 't', "2022-06-22T13:35:40.215Z"},
    {"id", 's', "655441491"},
    {"legacy", 'b', "false"},
    {"localized_country_name", 's', "Canada"},
    {"localized_province_name", 's', "Ontario"},
    {"name", 's', "Ottawa Store"},
    {"phone", 's', "+1 613-555-0100"},
    {"province", 's', "Ontario"},
    {"province_code", 's', "ON"},
    {"updated_at", 't', "2022-06-22T13:35:40.215Z"},
    {"zip", 's', "K1N 5T5"},
};

static void expect_seed_item(yajl_val o)
{
    expect_object(o, seed_item_answer, NFIELDS(seed_item_answer));
}

static void expect_seed_location(yajl_val o)
{
    expect_object(o, seed_location_answer, NFIELDS(seed_location_answer));
}

static void expect_seed_level(yajl_val o, long long available)
{
    char avail[32];
    snprintf(avail, sizeof avail, "%lld", available);
    const t_field want[] = {
        {"admin_graphql_api_id", 's',
         "gid://shopify/InventoryLevel/655441491?inventory_item_id=808950810"},
        {"available", 'n', avail},
        {"created_at", 't', NULL},
        {"inventory_item_id", 's', "808950810"},
        {"location_id", 's', "655441491"},
        {"updated_at", 't', NULL},
    };
    expect_object(o, want, NFIELDS(want));
}

static void put_item(uint64_t id, const char *sku)
{
    inv_item_fields f = {.mask = INV_ITEM_SKU | INV_ITEM_TRACKED, .tracked = true};
    snprintf(f.sku, sizeof f.sku, "%s", sku);
    cr_assert_eq(inv_item_put(E, id, &f), INV_OK);
}

static void put_location(uint64_t id, bool active)
{
    inv_location_fields f = {
        .mask = INV_LOC_NAME | INV_LOC_ACTIVE, .name = "Store", .active = active};
    cr_assert_eq(inv_location_put(E, id, &f), INV_OK);
}

static bool item_exists(uint64_t id)
{
    inv_item it;
    return inv_item_get(E, id, &it) == INV_OK;
}

static void setup(void)
{
    tu_tmpdir(E_dir, sizeof E_dir, "http-connector");
    inv_config cfg = {.data_dir = E_dir, .fsync_policy = INV_FSYNC_NONE, .defer_durability = true};
    E = tu_open_config(&cfg);
    t_tenant = "acme";
}

static void teardown(void)
{
    inv_close(E);
    E = NULL;
    tu_remove_tree(E_dir);
}

TestSuite(http_connector, .init = setup, .fini = teardown);

/* ---- the tenant header --------------------------------------------------- */

Test(http_connector, every_route_refuses_a_missing_empty_long_or_unprintable_tenant)
{
    static char long_tenant[66];
    memset(long_tenant, 't', 65);
    const char *bad[] = {NULL, "", long_tenant, "ac\x01me", "caf\xc3\xa9"};
    for (size_t i = 0; i < http_connector_routes_n; i++) {
        const http_route *rt = &http_connector_routes[i];
        char path[T_PATH_MAX];
        size_t o = 0;
        for (const char *p = rt->pattern; *p && o + 2 < sizeof path;) {
            if (*p == '{') { /* a parameter: a valid id */
                path[o++] = '1';
                p = strchr(p, '}') + 1;
            } else {
                path[o++] = *p++;
            }
        }
        path[o] = '\0';
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
            t_tenant = bad[k];
            t_resp r = call(rt->method, path, SEED_ITEM);
            cr_assert_str_eq(r.text, "{\"error\":\"X-TWC-Tenant header is required\"}",
                             "%s (tenant %zu): %s", rt->pattern, k, r.text);
            expect_refused(&r, 400, NULL);
        }
    }
    cr_assert(!item_exists(ITEM), "nothing was written");
    /* 64 printable bytes are a tenant */
    long_tenant[64] = '\0';
    t_tenant = long_tenant;
    t_resp r = call(HTTP_POST, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 201);
    t_free(&r);
}

Test(http_connector, every_tenant_name_maps_to_the_one_namespace)
{
    t_tenant = "acme";
    t_resp r = call(HTTP_POST, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 201);
    t_free(&r);
    t_tenant = "globex corp";
    r = call(HTTP_GET, "/api/inventoryitem/808950810", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    expect_seed_item(r.json);
    t_free(&r);
}

/* ---- items ----------------------------------------------------------------- */

Test(http_connector, seed_item_round_trips_field_for_field)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 201);
    cr_assert_eq(r.durable_at, inv_last_write_position());
    expect_seed_item(r.json);
    char created[64];
    snprintf(created, sizeof created, "%s", jstr(r.json, "created_at"));
    t_free(&r);
    r = call(HTTP_GET, "/api/inventoryitem/808950810", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_eq(r.durable_at, 0, "a read waits for nothing");
    expect_seed_item(r.json);
    cr_assert_str_eq(jstr(r.json, "created_at"), created);
    t_free(&r);
    /* the seed's PUT: the same body updates (200) */
    r = call(HTTP_PUT, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 200);
    expect_seed_item(r.json);
    t_free(&r);
}

Test(http_connector, item_post_is_create_only)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 201);
    t_free(&r);
    r = call(HTTP_POST, "/api/inventoryitem", "{\"id\":\"808950810\",\"sku\":\"OTHER\"}");
    expect_refused(&r, 409, "inventory item 808950810 already exists");
    inv_item it;
    cr_assert_eq(inv_item_get(E, ITEM, &it), INV_OK);
    cr_assert_str_eq(it.fields.sku, "IPOD2008PINK", "unchanged");
    r = call(HTTP_POST, "/api/inventoryitem", "{\"id\":\"5\",\"sku\":\"IPOD2008PINK\"}");
    expect_refused(&r, 409, "sku \"IPOD2008PINK\" belongs to another inventory item");
    cr_assert(!item_exists(5));
}

Test(http_connector, item_post_defaults_and_derived_fields)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem", "{\"id\":42}");
    expect_written(&r, 201);
    expect_keys(r.json, item_keys, sizeof item_keys / sizeof *item_keys);
    cr_assert_str_eq(jstr(r.json, "id"), "42", "ids are written as strings");
    expect_null(r.json, "cost");
    expect_null(r.json, "sku");
    expect_null(r.json, "country_code_of_origin");
    cr_assert_eq(jget(r.json, "country_harmonized_system_codes")->u.array.len, 0);
    cr_assert(jbool(r.json, "tracked") && jbool(r.json, "requires_shipping"), "new items: true");
    cr_assert_str_eq(jstr(r.json, "admin_graphql_api_id"), "gid://shopify/InventoryItem/42");
    t_free(&r);
}

Test(http_connector, ids_are_exact_over_the_whole_u64_range_as_strings_or_numbers)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem", "{\"id\":18446744073709551615}");
    expect_written(&r, 201);
    cr_assert_str_eq(jstr(r.json, "id"), "18446744073709551615");
    t_free(&r);
    r = call(HTTP_POST, "/api/inventoryitem", "{\"id\":\"18446744073709551614\"}");
    expect_written(&r, 201);
    cr_assert_str_eq(jstr(r.json, "admin_graphql_api_id"),
                     "gid://shopify/InventoryItem/18446744073709551614");
    t_free(&r);
    r = call(HTTP_GET, "/api/inventoryitem/18446744073709551615", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    t_free(&r);
}

Test(http_connector, unknown_and_read_only_fields_are_ignored)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem",
                    "{\"id\":\"7\",\"sku\":\"S7\",\"color\":\"red\",\"nested\":{\"a\":[1,2]},"
                    "\"admin_graphql_api_id\":\"gid://other/Thing/1\","
                    "\"created_at\":\"1999-01-01T00:00:00.000Z\",\"updated_at\":5}");
    expect_written(&r, 201);
    cr_assert_str_eq(jstr(r.json, "admin_graphql_api_id"), "gid://shopify/InventoryItem/7");
    cr_assert(strncmp(jstr(r.json, "created_at"), "1999", 4) != 0);
    cr_assert_null(jget(r.json, "color"));
    t_free(&r);
}

/* Bodies of POST /api/inventoryitem refused with 400, and a piece of the
 * message each must carry. Nothing of them is written (id 77). */
static const struct {
    const char *body, *msg;
} bad_items[] = {
    {"{\"id\":\"77\"", "malformed request body: invalid JSON"},
    {"", "malformed request body: empty body"},
    {"[{\"id\":\"77\"}]", "it must be a JSON object"},
    {"\"77\"", "it must be a JSON object"},
    {"{\"sku\":\"S\"}", "id is required"},
    {"{\"id\":\"-77\"}", "id must be a decimal id"},
    {"{\"id\":\"+77\"}", "id must be a decimal id"},
    {"{\"id\":-77}", "id must be a decimal id"},
    {"{\"id\":\"0\"}", "id must be a decimal id"},
    {"{\"id\":0}", "id must be a decimal id"},
    {"{\"id\":\"18446744073709551616\"}", "id must be a decimal id"},
    {"{\"id\":18446744073709551616}", "id must be a decimal id"},
    {"{\"id\":\"77a\"}", "id must be a decimal id"},
    {"{\"id\":\"077\"}", "id must be a decimal id"},
    {"{\"id\":77.0}", "id must be a decimal id"},
    {"{\"id\":true}", "id must be a decimal id"},
    {"{\"id\":null}", "id must be a decimal id"},
    {"{\"id\":\"77\",\"sku\":5}", "sku must be a string or null"},
    {"{\"id\":\"77\",\"tracked\":\"yes\"}", "tracked must be true or false"},
    {"{\"id\":\"77\",\"requires_shipping\":1}", "requires_shipping must be true or false"},
    {"{\"id\":\"77\",\"deleted\":\"no\"}", "deleted must be true or false"},
    {"{\"id\":\"77\",\"deleted\":true}", "deleted must be false on create"},
    {"{\"id\":\"77\",\"cost\":\"abc\"}", "cost must be a decimal number"},
    {"{\"id\":\"77\",\"cost\":1e3}", "cost must be a decimal number"},
    {"{\"id\":\"77\",\"cost\":1.1234567}", "cost must be a decimal number"},
    {"{\"id\":\"77\",\"cost\":true}", "cost must be a decimal number"},
    {"{\"id\":\"77\",\"country_code_of_origin\":\"Canada\"}", "got \"Canada\""},
    {"{\"id\":\"77\",\"country_code_of_origin\":\"ca\"}", "country_code_of_origin must be two"},
    {"{\"id\":\"77\",\"harmonized_system_code\":\"12345\"}", "harmonized_system_code must be 6"},
    {"{\"id\":\"77\",\"harmonized_system_code\":\"12345678901234567\"}",
     "harmonized_system_code must be 6 to 16 digits as a string, \"\" or null: got "
     "\"12345678901234567\""},
    {"{\"id\":\"77\",\"cost\":\"123456789012345678901234567890123\"}",
     "cost is too long: 33 bytes, at most 32"},
    {"{\"id\":\"77\",\"harmonized_system_code\":620342}", "harmonized_system_code must be 6"},
    {"{\"id\":\"77\",\"harmonized_system_code\":\"62034a\"}", "got \"62034a\""},
    {"{\"id\":\"77\",\"province_code_of_origin\":\"ABCDEFGHI\"}",
     "province_code_of_origin is too long: 9 bytes, at most 8"},
    {"{\"id\":\"77\",\"country_harmonized_system_codes\":\"CA:123456\"}",
     "must be an array or null"},
    {"{\"id\":\"77\",\"country_harmonized_system_codes\":[5]}",
     "country_harmonized_system_codes[0] must be an object"},
    {"{\"id\":\"77\",\"country_harmonized_system_codes\":[{\"country_code\":\"CA\"}]}",
     "country_harmonized_system_codes[0] must be an object"},
    {"{\"id\":\"77\",\"country_harmonized_system_codes\":[{\"country_code\":\"CA\","
     "\"harmonized_system_code\":true}]}",
     "must be an object with the strings"},
    {"{\"id\":\"77\",\"country_harmonized_system_codes\":[{\"country_code\":\"Canada\","
     "\"harmonized_system_code\":\"123456\"}]}",
     "country_harmonized_system_codes[0].country_code must be two"},
    {"{\"id\":\"77\",\"country_harmonized_system_codes\":[{\"country_code\":\"CA\","
     "\"harmonized_system_code\":\"123456\"},{\"country_code\":\"US\","
     "\"harmonized_system_code\":\"12\"}]}",
     "country_harmonized_system_codes[1].harmonized_system_code must be 6 to 16 digits: got "
     "\"12\""},
    {"{\"id\":\"77\",\"country_harmonized_system_codes\":[{\"country_code\":\"CA\","
     "\"harmonized_system_code\":\"123456\"},{\"country_code\":\"CA\","
     "\"harmonized_system_code\":\"654321\"}]}",
     "country CA appears twice"},
};

Test(http_connector, item_post_refuses_bad_input_with_400_and_writes_nothing)
{
    for (size_t i = 0; i < sizeof bad_items / sizeof *bad_items; i++) {
        t_resp r = call(HTTP_POST, "/api/inventoryitem", bad_items[i].body);
        cr_assert_eq(r.status, 400, "%s: %d %s", bad_items[i].body, r.status, r.text);
        expect_refused(&r, 400, bad_items[i].msg);
        cr_assert(!item_exists(77), "%s wrote item 77", bad_items[i].body);
    }
    /* a SKU one byte over INV_SKU_MAX */
    char body[600];
    snprintf(body, sizeof body, "{\"id\":\"77\",\"sku\":\"%0256d\"}", 0);
    t_resp r = call(HTTP_POST, "/api/inventoryitem", body);
    expect_refused(&r, 400, "sku is too long: 256 bytes, at most 255");
    cr_assert(!item_exists(77));
}

Test(http_connector, more_country_hs_pairs_than_the_limit_are_refused)
{
    char body[4096];
    size_t o =
        (size_t)snprintf(body, sizeof body, "{\"id\":\"77\",\"country_harmonized_system_codes\":[");
    for (int i = 0; i <= INV_COUNTRY_HS_PAIRS_MAX; i++)
        o += (size_t)snprintf(body + o, sizeof body - o,
                              "%s{\"country_code\":\"C%c\",\"harmonized_system_code\":\"123456\"}",
                              i ? "," : "", 'A' + i);
    snprintf(body + o, sizeof body - o, "]}");
    t_resp r = call(HTTP_POST, "/api/inventoryitem", body);
    expect_refused(&r, 400, "country_harmonized_system_codes has 13 pairs, at most 12");
    cr_assert(!item_exists(77));
}

/* The item's country-specific codes after a PUT of body: pairs (text). */
static void put_pairs_expect(const char *pairs_json, const char *want)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"id\":\"808950810\",\"country_harmonized_system_codes\":%s}",
             pairs_json);
    t_resp r = call(HTTP_PUT, "/api/inventoryitem", body);
    expect_written(&r, 200);
    expect_pairs(jget(r.json, "country_harmonized_system_codes"), want);
    t_free(&r);
    r = call(HTTP_GET, "/api/inventoryitem/808950810", NULL);
    expect_pairs(jget(r.json, "country_harmonized_system_codes"), want);
    t_free(&r);
    inv_item it;
    cr_assert_eq(inv_item_get(E, ITEM, &it), INV_OK);
    cr_assert_str_eq(it.fields.country_hs_codes, want, "the engine's text");
}

Test(http_connector, country_hs_codes_are_replaced_whole_by_put_and_cleared_by_null_or_empty)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 201);
    t_free(&r);
    put_pairs_expect("[{\"country_code\":\"DE\",\"harmonized_system_code\":\"6203420000\"}]",
                     "DE:6203420000");
    put_pairs_expect("null", "");
    put_pairs_expect("[{\"country_code\":\"US\",\"harmonized_system_code\":\"620342\"},"
                     "{\"country_code\":\"CA\",\"harmonized_system_code\":\"1234567890\"}]",
                     "US:620342,CA:1234567890");
    put_pairs_expect("[]", "");
    /* the limit itself: 12 pairs of the longest codes */
    char pairs[2048], want[INV_COUNTRY_HS_CODES_MAX + 1];
    size_t o = 0, w = 0;
    pairs[o++] = '[';
    for (int i = 0; i < INV_COUNTRY_HS_PAIRS_MAX; i++) {
        o += (size_t)snprintf(pairs + o, sizeof pairs - o,
                              "%s{\"country_code\":\"Z%c\",\"harmonized_system_code\":"
                              "\"1234567890123456\"}",
                              i ? "," : "", 'A' + i);
        w += (size_t)snprintf(want + w, sizeof want - w, "%sZ%c:1234567890123456", i ? "," : "",
                              'A' + i);
    }
    snprintf(pairs + o, sizeof pairs - o, "]");
    put_pairs_expect(pairs, want);
    /* a refused PUT leaves them */
    r = call(HTTP_PUT, "/api/inventoryitem",
             "{\"id\":\"808950810\",\"country_harmonized_system_codes\":[{\"country_code\":"
             "\"us\",\"harmonized_system_code\":\"620342\"}]}");
    expect_refused(&r, 400, "country_harmonized_system_codes[0].country_code must be two");
    inv_item it;
    cr_assert_eq(inv_item_get(E, ITEM, &it), INV_OK);
    cr_assert_str_eq(it.fields.country_hs_codes, want);
}

Test(http_connector, item_put_updates_the_fields_given_and_never_creates)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 201);
    t_free(&r);
    r = call(HTTP_PUT, "/api/inventoryitem",
             "{\"id\":\"808950810\",\"sku\":\"NEW\",\"tracked\":false,\"cost\":\"9.99\","
             "\"province_code_of_origin\":null,\"deleted\":false,\"color\":\"red\"}");
    expect_written(&r, 200);
    cr_assert_str_eq(jstr(r.json, "sku"), "NEW");
    cr_assert_eq(jbool(r.json, "tracked"), false);
    cr_assert_str_eq(jnum(r.json, "cost"), "9.99");
    expect_null(r.json, "province_code_of_origin");
    cr_assert_str_eq(jstr(r.json, "country_code_of_origin"), "CA", "not given: unchanged");
    cr_assert_str_eq(jstr(r.json, "harmonized_system_code"), "620342");
    t_free(&r);
    /* nothing writable: answered as is, nothing written */
    r = call(HTTP_PUT, "/api/inventoryitem", "{\"id\":\"808950810\"}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_eq(r.durable_at, 0);
    cr_assert_str_eq(jstr(r.json, "sku"), "NEW");
    t_free(&r);
    r = call(HTTP_PUT, "/api/inventoryitem", "{\"id\":\"9\",\"sku\":\"X\"}");
    expect_refused(&r, 404, "inventory item 9 not found");
    cr_assert(!item_exists(9), "PUT never creates");
    put_item(10, "TAKEN");
    r = call(HTTP_PUT, "/api/inventoryitem", "{\"id\":\"808950810\",\"sku\":\"TAKEN\"}");
    expect_refused(&r, 409, "sku \"TAKEN\" belongs to another inventory item");
    r = call(HTTP_PUT, "/api/inventoryitem", "{\"id\":\"808950810\",\"cost\":\"1,5\"}");
    expect_refused(&r, 400, "cost must be");
    r = call(HTTP_PUT, "/api/inventoryitem", "{\"sku\":\"X\"}");
    expect_refused(&r, 400, "id is required");
    inv_item it;
    cr_assert_eq(inv_item_get(E, ITEM, &it), INV_OK);
    cr_assert_str_eq(it.fields.sku, "NEW", "the refused PUTs changed nothing");
    cr_assert_str_eq(it.fields.cost, "9.99");
}

Test(http_connector, item_put_with_deleted_true_deletes_and_answers_the_last_state)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitem", SEED_ITEM);
    expect_written(&r, 201);
    t_free(&r);
    /* a bad field beside deleted:true: refused whole, nothing deleted */
    r = call(HTTP_PUT, "/api/inventoryitem",
             "{\"id\":\"808950810\",\"deleted\":true,\"tracked\":\"no\"}");
    expect_refused(&r, 400, "tracked must be true or false");
    cr_assert(item_exists(ITEM));
    r = call(HTTP_PUT, "/api/inventoryitem",
             "{\"id\":\"808950810\",\"deleted\":true,\"sku\":\"IGNORED\"}");
    expect_written(&r, 200);
    cr_assert_eq(jbool(r.json, "deleted"), true);
    cr_assert_str_eq(jstr(r.json, "sku"), "IPOD2008PINK", "the last state, not the update");
    t_free(&r);
    cr_assert(!item_exists(ITEM));
    r = call(HTTP_GET, "/api/inventoryitem/808950810", NULL);
    expect_refused(&r, 404, "inventory item 808950810 not found");
    r = call(HTTP_PUT, "/api/inventoryitem", "{\"id\":\"808950810\",\"deleted\":true}");
    expect_refused(&r, 404, "inventory item 808950810 not found");
}

Test(http_connector, item_get_and_delete_check_the_path_id)
{
    const char *bad[] = {"-5", "+5", "0", "18446744073709551616", "5a", "%35", "05"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char path[T_PATH_MAX];
        snprintf(path, sizeof path, "/api/inventoryitem/%s", bad[i]);
        t_resp r = call(HTTP_GET, path, NULL);
        char want[96];
        snprintf(want, sizeof want,
                 "inventoryRef must be a decimal id from 1 to "
                 "18446744073709551615: got \"%s\"",
                 bad[i]);
        expect_refused(&r, 400, want);
        r = call(HTTP_DELETE, path, NULL);
        expect_refused(&r, 400, want);
    }
    t_resp r = call(HTTP_GET, "/api/inventoryitem/5", NULL);
    expect_refused(&r, 404, "inventory item 5 not found");
    r = call(HTTP_DELETE, "/api/inventoryitem/5", NULL);
    expect_refused(&r, 404, "inventory item 5 not found");
}

Test(http_connector, item_delete_answers_the_last_state_and_refuses_while_units_are_held)
{
    put_item(ITEM, "IPOD2008PINK");
    put_location(LOC, true);
    cr_assert_eq(inv_level_set(E, ITEM, LOC, 5, 0, NULL), INV_OK);
    inv_hold_line line = {ITEM, LOC, 2};
    cr_assert_eq(inv_hold_create(E, "h1", 2, 60000, &line, 1, NULL), INV_OK);
    t_resp r = call(HTTP_DELETE, "/api/inventoryitem/808950810", NULL);
    expect_refused(&r, 409, "has units reserved by live holds");
    cr_assert(item_exists(ITEM));
    cr_assert_eq(inv_hold_release(E, "h1", 2), INV_OK);
    r = call(HTTP_DELETE, "/api/inventoryitem/808950810", NULL);
    expect_written(&r, 200);
    expect_keys(r.json, item_keys, sizeof item_keys / sizeof *item_keys);
    cr_assert_eq(jbool(r.json, "deleted"), true);
    cr_assert_str_eq(jstr(r.json, "sku"), "IPOD2008PINK");
    t_free(&r);
    cr_assert(!item_exists(ITEM));
    inv_level lv;
    cr_assert_eq(inv_level_get(E, ITEM, LOC, &lv), INV_ENOTFOUND, "its levels went with it");
}

Test(http_connector, a_cost_written_over_resp_with_leading_zeros_is_still_a_json_number)
{
    inv_item_fields f = {.mask = INV_ITEM_COST, .cost = "007.50"};
    cr_assert_eq(inv_item_put(E, 3, &f), INV_OK);
    t_resp r = call(HTTP_GET, "/api/inventoryitem/3", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_str_eq(jnum(r.json, "cost"), "7.50");
    t_free(&r);
    snprintf(f.cost, sizeof f.cost, "-000");
    cr_assert_eq(inv_item_put(E, 3, &f), INV_OK);
    r = call(HTTP_GET, "/api/inventoryitem/3", NULL);
    cr_assert_str_eq(jnum(r.json, "cost"), "-0");
    t_free(&r);
}

/* ---- levels ---------------------------------------------------------------- */

Test(http_connector, seed_level_round_trips_and_post_is_create_only)
{
    put_item(ITEM, "IPOD2008PINK");
    put_location(LOC, true);
    t_resp r = call(HTTP_POST, "/api/inventorylevel", SEED_LEVEL);
    expect_written(&r, 201);
    expect_seed_level(r.json, 7);
    t_free(&r);
    r = call(HTTP_GET, "/api/inventorylevel/inventoryitem/808950810/location/655441491", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    expect_seed_level(r.json, 7);
    t_free(&r);
    r = call(HTTP_POST, "/api/inventorylevel",
             "{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\",\"available\":1}");
    expect_refused(&r, 409,
                   "inventory level for inventory item 808950810 at location 655441491 "
                   "already exists");
    inv_level lv;
    cr_assert_eq(inv_level_get(E, ITEM, LOC, &lv), INV_OK);
    cr_assert_eq(lv.available, 7, "unchanged");
    /* the seed's PUT body (read-only fields included) sets available */
    r = call(HTTP_PUT, "/api/inventorylevel",
             "{\"admin_graphql_api_id\":\"x\",\"available\":3,\"created_at\":\"2022-06-22T13:22:"
             "49.148Z\",\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\","
             "\"updated_at\":\"2022-06-22T13:22:49.148Z\"}");
    expect_written(&r, 200);
    expect_seed_level(r.json, 3);
    t_free(&r);
}

Test(http_connector, level_post_names_what_is_missing_or_inactive)
{
    put_item(ITEM, "IPOD2008PINK");
    put_location(LOC, true);
    put_location(LOC2, false);
    t_resp r = call(HTTP_POST, "/api/inventorylevel",
                    "{\"inventory_item_id\":\"9\",\"location_id\":\"655441491\"}");
    expect_refused(&r, 404, "inventory item 9 not found");
    r = call(HTTP_POST, "/api/inventorylevel",
             "{\"inventory_item_id\":\"808950810\",\"location_id\":\"9\"}");
    expect_refused(&r, 404, "location 9 not found");
    r = call(HTTP_POST, "/api/inventorylevel",
             "{\"inventory_item_id\":\"808950810\",\"location_id\":\"487838322\"}");
    expect_refused(&r, 422, "location 487838322 is inactive");
    /* available is optional on create: 0 */
    r = call(HTTP_POST, "/api/inventorylevel",
             "{\"inventory_item_id\":808950810,\"location_id\":655441491}");
    expect_written(&r, 201);
    cr_assert_str_eq(jnum(r.json, "available"), "0");
    t_free(&r);
}

Test(http_connector, level_writes_refuse_bad_bodies_and_write_nothing)
{
    put_item(ITEM, "IPOD2008PINK");
    put_location(LOC, true);
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"inventory_item_id\":\"808950810\"", "invalid JSON"},
        {"[]", "it must be a JSON object"},
        {"{\"location_id\":\"655441491\"}", "inventory_item_id is required"},
        {"{\"inventory_item_id\":\"808950810\"}", "location_id is required"},
        {"{\"inventory_item_id\":\"-1\",\"location_id\":\"655441491\"}",
         "inventory_item_id must be a decimal id"},
        {"{\"inventory_item_id\":\"808950810\",\"location_id\":0}",
         "location_id must be a decimal id"},
        {"{\"inventory_item_id\":\"808950810\",\"location_id\":\"18446744073709551616\"}",
         "location_id must be a decimal id"},
        {"{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\",\"available\":\"5\"}",
         "available must be an integer"},
        {"{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\",\"available\":1.5}",
         "available must be an integer"},
        {"{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\","
         "\"available\":1000000001}",
         "available must be an integer from -1000000000 to 1000000000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t_resp r = call(HTTP_POST, "/api/inventorylevel", bad[i].body);
        expect_refused(&r, 400, bad[i].msg);
        r = call(HTTP_PUT, "/api/inventorylevel", bad[i].body);
        cr_assert_eq(r.status, 400, "%s: %s", bad[i].body, r.text);
        t_free(&r);
        inv_level lv;
        cr_assert_eq(inv_level_get(E, ITEM, LOC, &lv), INV_ENOTFOUND, "%s", bad[i].body);
    }
}

Test(http_connector, level_put_sets_an_existing_level_and_never_creates_one)
{
    put_item(ITEM, "IPOD2008PINK");
    put_location(LOC, true);
    t_resp r = call(HTTP_PUT, "/api/inventorylevel",
                    "{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\","
                    "\"available\":4}");
    expect_refused(&r, 404,
                   "no inventory level for inventory item 808950810 at location 655441491");
    inv_level lv;
    cr_assert_eq(inv_level_get(E, ITEM, LOC, &lv), INV_ENOTFOUND, "PUT never creates");
    r = call(HTTP_PUT, "/api/inventorylevel",
             "{\"inventory_item_id\":\"5\",\"location_id\":\"655441491\",\"available\":4}");
    expect_refused(&r, 404, "inventory item 5 not found");
    cr_assert_eq(inv_level_set(E, ITEM, LOC, 1, 0, NULL), INV_OK);
    r = call(HTTP_PUT, "/api/inventorylevel",
             "{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\"}");
    expect_refused(&r, 400, "available is required");
    r = call(HTTP_PUT, "/api/inventorylevel",
             "{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\","
             "\"available\":-4}");
    expect_written(&r, 200);
    cr_assert_str_eq(jnum(r.json, "available"), "-4");
    t_free(&r);
    cr_assert_eq(inv_level_get(E, ITEM, LOC, &lv), INV_OK);
    cr_assert_eq(lv.available, -4);
}

Test(http_connector, level_get_and_delete)
{
    put_item(ITEM, "IPOD2008PINK");
    put_location(LOC, true);
    cr_assert_eq(inv_level_set(E, ITEM, LOC, 5, 0, NULL), INV_OK);
    t_resp r = call(HTTP_GET, "/api/inventorylevel/inventoryitem/808950810/location/1", NULL);
    expect_refused(&r, 404, "no inventory level for inventory item 808950810 at location 1");
    r = call(HTTP_GET, "/api/inventorylevel/inventoryitem/-808950810/location/655441491", NULL);
    expect_refused(&r, 400, "inventoryItemRef must be a decimal id");
    r = call(HTTP_DELETE, "/api/inventorylevel/inventoryitem/808950810/location/0", NULL);
    expect_refused(&r, 400, "locationRef must be a decimal id");
    inv_hold_line line = {ITEM, LOC, 2};
    cr_assert_eq(inv_hold_create(E, "h1", 2, 60000, &line, 1, NULL), INV_OK);
    r = call(HTTP_DELETE, "/api/inventorylevel/inventoryitem/808950810/location/655441491", NULL);
    expect_refused(&r, 409, "units reserved or committed");
    cr_assert_eq(inv_hold_release(E, "h1", 2), INV_OK);
    r = call(HTTP_DELETE, "/api/inventorylevel/inventoryitem/808950810/location/655441491", NULL);
    expect_written(&r, 204);
    cr_assert_eq(r.len, 0, "204: no body");
    t_free(&r);
    r = call(HTTP_GET, "/api/inventorylevel/inventoryitem/808950810/location/655441491", NULL);
    expect_refused(&r, 404, "no inventory level");
    r = call(HTTP_DELETE, "/api/inventorylevel/inventoryitem/808950810/location/655441491", NULL);
    expect_refused(&r, 404, "no inventory level");
}

Test(http_connector, an_untracked_items_level_answers_available_null)
{
    inv_item_fields f = {.mask = INV_ITEM_TRACKED, .tracked = false};
    cr_assert_eq(inv_item_put(E, ITEM, &f), INV_OK);
    put_location(LOC, true);
    t_resp r = call(HTTP_POST, "/api/inventorylevel", SEED_LEVEL);
    expect_written(&r, 201);
    expect_null(r.json, "available");
    t_free(&r);
}

/* ---- locations ------------------------------------------------------------- */

Test(http_connector, seed_location_round_trips_and_post_is_create_only)
{
    t_resp r = call(HTTP_POST, "/api/inventorylocation", SEED_LOCATION);
    expect_written(&r, 201);
    expect_seed_location(r.json);
    t_free(&r);
    r = call(HTTP_GET, "/api/inventorylocation/655441491", NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    expect_seed_location(r.json);
    t_free(&r);
    r = call(HTTP_PUT, "/api/inventorylocation", SEED_LOCATION);
    expect_written(&r, 200);
    expect_seed_location(r.json);
    t_free(&r);
    r = call(HTTP_POST, "/api/inventorylocation", "{\"id\":\"655441491\",\"name\":\"Other\"}");
    expect_refused(&r, 409, "location 655441491 already exists");
    inv_location l;
    cr_assert_eq(inv_location_get(E, LOC, &l), INV_OK);
    cr_assert_str_eq(l.fields.name, "Ottawa Store", "unchanged");
}

Test(http_connector, location_derived_fields_follow_the_stored_ones)
{
    t_resp r = call(HTTP_POST, "/api/inventorylocation",
                    "{\"id\":\"12\",\"name\":\"W\",\"country\":\"Deutschland\",\"province\":"
                    "\"Bayern\",\"country_name\":\"ignored\",\"localized_country_name\":\"x\","
                    "\"legacy\":false}");
    expect_written(&r, 201);
    cr_assert_str_eq(jstr(r.json, "country_name"), "Deutschland");
    cr_assert_str_eq(jstr(r.json, "localized_country_name"), "Deutschland");
    cr_assert_str_eq(jstr(r.json, "localized_province_name"), "Bayern");
    cr_assert_eq(jbool(r.json, "active"), true, "new locations are active");
    cr_assert_eq(jbool(r.json, "legacy"), false);
    expect_null(r.json, "zip");
    t_free(&r);
    r = call(HTTP_PUT, "/api/inventorylocation",
             "{\"id\":12,\"active\":false,\"province\":null,\"zip\":\"80331\"}");
    expect_written(&r, 200);
    cr_assert_eq(jbool(r.json, "active"), false);
    expect_null(r.json, "localized_province_name");
    cr_assert_str_eq(jstr(r.json, "zip"), "80331");
    cr_assert_str_eq(jstr(r.json, "name"), "W", "not given: unchanged");
    t_free(&r);
}

Test(http_connector, location_writes_refuse_bad_input_and_put_never_creates)
{
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"id\":\"12\",\"legacy\":true}", "legacy must be false"},
        {"{\"id\":\"12\",\"legacy\":\"no\"}", "legacy must be true or false"},
        {"{\"id\":\"12\",\"active\":null}", "active must be true or false"},
        {"{\"id\":\"12\",\"country_code\":\"CAN\"}", "country_code must be two upper-case letters"},
        {"{\"id\":\"12\",\"province_code\":\"ONTARIO-X\"}", "province_code is too long"},
        {"{\"id\":\"12\",\"name\":[\"a\"]}", "name must be a string or null"},
        {"{\"id\":\"12\",\"phone\":6135550100}", "phone must be a string or null"},
        {"{\"id\":\"-12\"}", "id must be a decimal id"},
        {"{\"name\":\"x\"}", "id is required"},
        {"{\"id\":\"12\",", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t_resp r = call(HTTP_POST, "/api/inventorylocation", bad[i].body);
        expect_refused(&r, 400, bad[i].msg);
        inv_location l;
        cr_assert_eq(inv_location_get(E, 12, &l), INV_ENOTFOUND, "%s", bad[i].body);
    }
    t_resp r = call(HTTP_PUT, "/api/inventorylocation", "{\"id\":\"12\",\"name\":\"x\"}");
    expect_refused(&r, 404, "location 12 not found");
    inv_location l;
    cr_assert_eq(inv_location_get(E, 12, &l), INV_ENOTFOUND, "PUT never creates");
    r = call(HTTP_GET, "/api/inventorylocation/12", NULL);
    expect_refused(&r, 404, "location 12 not found");
    r = call(HTTP_GET, "/api/inventorylocation/twelve", NULL);
    expect_refused(&r, 400,
                   "id must be a decimal id from 1 to 18446744073709551615: got \"twelve\"");
}

/* ---- bulk creates ---------------------------------------------------------- */

/* The row i of a bulk answer: its index, status, and data or error. */
static yajl_val bulk_row(const t_resp *r, size_t i, int status)
{
    cr_assert(r->json != NULL && YAJL_IS_ARRAY(r->json), "%s", r->text);
    cr_assert_lt(i, r->json->u.array.len);
    yajl_val row = r->json->u.array.values[i];
    char idx[24], st[8];
    snprintf(idx, sizeof idx, "%zu", i);
    snprintf(st, sizeof st, "%d", status);
    cr_assert_str_eq(jnum(row, "index"), idx);
    cr_assert_str_eq(jnum(row, "status"), st, "row %zu: %s", i, r->text);
    cr_assert_eq(row->u.object.len, 3);
    return jget(row, status < 300 ? "data" : "error");
}

Test(http_connector, bulk_items_all_created_answer_201_with_every_row)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitems",
                    "[" SEED_ITEM ",{\"id\":\"39072856\",\"sku\":\"IPOD2008GREEN\"}]");
    expect_written(&r, 201);
    cr_assert_eq(r.json->u.array.len, 2);
    expect_seed_item(bulk_row(&r, 0, 201));
    cr_assert_str_eq(jstr(bulk_row(&r, 1, 201), "sku"), "IPOD2008GREEN");
    t_free(&r);
    cr_assert(item_exists(ITEM) && item_exists(39072856));
}

Test(http_connector, bulk_rows_are_independent_a_failing_row_answers_207)
{
    put_item(5, "FIVE");
    t_resp r = call(HTTP_POST, "/api/inventoryitems",
                    "[{\"id\":\"1\",\"sku\":\"ONE\"},{\"id\":\"5\"},\"not an object\","
                    "{\"id\":\"2\",\"cost\":\"x\"},{\"id\":\"3\",\"sku\":\"ONE\"},"
                    "{\"id\":\"4\",\"sku\":\"FOUR\"}]");
    expect_written(&r, 207);
    cr_assert_eq(r.json->u.array.len, 6);
    cr_assert_str_eq(jstr(bulk_row(&r, 0, 201), "id"), "1");
    cr_assert_str_eq(bulk_row(&r, 1, 409)->u.string, "inventory item 5 already exists");
    cr_assert_str_eq(bulk_row(&r, 2, 400)->u.string, "row 2 must be a JSON object");
    cr_assert(strstr(bulk_row(&r, 3, 400)->u.string, "cost must be") != NULL);
    cr_assert_str_eq(bulk_row(&r, 4, 409)->u.string,
                     "sku \"ONE\" belongs to another inventory item");
    cr_assert_str_eq(jstr(bulk_row(&r, 5, 201), "sku"), "FOUR");
    cr_assert_eq(r.durable_at, inv_last_write_position(), "durable at the last row created");
    t_free(&r);
    cr_assert(item_exists(1) && item_exists(4), "the good rows were applied");
    cr_assert(!item_exists(2) && !item_exists(3), "the failing ones were not");
    /* every row failing: 207, nothing to wait for */
    r = call(HTTP_POST, "/api/inventoryitems", "[{\"id\":\"1\"},{\"id\":\"4\"}]");
    cr_assert_eq(r.status, 207, "%s", r.text);
    cr_assert_eq(r.durable_at, 0);
    bulk_row(&r, 0, 409);
    bulk_row(&r, 1, 409);
    t_free(&r);
}

Test(http_connector, a_bulk_that_is_not_an_array_empty_or_over_250_rows_is_refused_whole)
{
    t_resp r = call(HTTP_POST, "/api/inventoryitems", "{\"id\":\"1\"}");
    expect_refused(&r, 400, "malformed request body: it must be a JSON array of rows");
    r = call(HTTP_POST, "/api/inventoryitems", "[]");
    expect_refused(&r, 400, "a bulk create takes 1 to 250 rows: got 0");
    r = call(HTTP_POST, "/api/inventoryitems", "[{\"id\":\"1\"},");
    expect_refused(&r, 400, "invalid JSON");
    size_t cap = 251 * 16 + 8;
    char *body = malloc(cap);
    cr_assert(body != NULL && ids_bulk(body, cap, 1, 251));
    r = call(HTTP_POST, "/api/inventoryitems", body);
    expect_refused(&r, 400, "a bulk create takes 1 to 250 rows: got 251");
    cr_assert(!item_exists(1) && !item_exists(251), "nothing applied");
    /* 250 rows: the limit itself is served */
    char *last = strrchr(body, ',');
    snprintf(last, cap - (size_t)(last - body), "]");
    r = call(HTTP_POST, "/api/inventoryitems", body);
    expect_written(&r, 201);
    cr_assert_eq(r.json->u.array.len, 250);
    t_free(&r);
    cr_assert(item_exists(1) && item_exists(250) && !item_exists(251));
    free(body);
}

Test(http_connector, bulk_levels_and_locations_report_each_row)
{
    t_resp r = call(HTTP_POST, "/api/inventorylocations",
                    "[" SEED_LOCATION ",{\"id\":\"487838322\",\"name\":\"Warehouse\"},"
                    "{\"id\":\"1\",\"legacy\":true}]");
    expect_written(&r, 207);
    expect_seed_location(bulk_row(&r, 0, 201));
    cr_assert_str_eq(jstr(bulk_row(&r, 1, 201), "name"), "Warehouse");
    cr_assert(strstr(bulk_row(&r, 2, 400)->u.string, "legacy must be false") != NULL);
    t_free(&r);
    put_item(ITEM, "IPOD2008PINK");
    r = call(HTTP_POST, "/api/inventorylevels",
             "[" SEED_LEVEL ",{\"inventory_item_id\":\"808950810\",\"location_id\":\"487838322\","
             "\"available\":2}]");
    expect_written(&r, 201);
    expect_seed_level(bulk_row(&r, 0, 201), 7);
    cr_assert_str_eq(jnum(bulk_row(&r, 1, 201), "available"), "2");
    t_free(&r);
    r = call(HTTP_POST, "/api/inventorylevels",
             "[" SEED_LEVEL ",{\"inventory_item_id\":\"808950810\",\"location_id\":\"1\"},"
             "{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\","
             "\"available\":true}]");
    cr_assert_eq(r.status, 207, "%s", r.text);
    cr_assert(strstr(bulk_row(&r, 0, 409)->u.string, "already exists") != NULL);
    cr_assert_str_eq(bulk_row(&r, 1, 404)->u.string, "location 1 not found");
    cr_assert(strstr(bulk_row(&r, 2, 400)->u.string, "available must be") != NULL);
    t_free(&r);
    inv_level lv;
    cr_assert_eq(inv_level_get(E, ITEM, LOC, &lv), INV_OK);
    cr_assert_eq(lv.available, 7, "the refused rows changed nothing");
}

/* ---- concurrency ------------------------------------------------------------ */

#define RACE_THREADS 8
#define RACE_IDS 64

static _Atomic int race_created[RACE_IDS + 1];
static _Atomic long race_other;

/* Counts a bulk answer's rows (ids base..base+7): 201 into race_created,
 * anything but 201 or 409 into race_other. Never asserts. */
static bool race_count(yajl_val rows, int base)
{
    if (rows == NULL || !YAJL_IS_ARRAY(rows) || rows->u.array.len != 8)
        return false;
    for (size_t k = 0; k < rows->u.array.len; k++) {
        yajl_val st = http_json_get(rows->u.array.values[k], "status");
        long s = st && YAJL_IS_NUMBER(st) ? strtol(st->u.number.r, NULL, 10) : 0;
        /* relaxed: read after the threads are joined */
        if (s == 201)
            atomic_fetch_add_explicit(&race_created[base + (int)k], 1, memory_order_relaxed);
        else if (s != 409)
            atomic_fetch_add_explicit(&race_other, 1, memory_order_relaxed);
    }
    return true;
}

/* Every thread creates the same ids, in bulks of 8: each id is created by
 * exactly one thread (201 once, 409 for the rest). */
static void race_creator(void *arg, size_t index)
{
    (void)arg;
    char body[1024];
    for (int base = 1; base <= RACE_IDS; base += 8) {
        TU_CHECK(ids_bulk(body, sizeof body, base, 8), "bulk body");
        t_resp r = t_exec(E, HTTP_POST, "/api/inventoryitems", body);
        TU_CHECK(race_count(r.json, base), "thread %zu: %d %s", index, r.status,
                 r.text ? r.text : "");
        t_free(&r);
    }
}

/* Before a race: no id counted yet (a runner may run every test in one
 * process). */
static void race_reset(void)
{
    for (int id = 0; id <= RACE_IDS; id++)
        atomic_store_explicit(&race_created[id], 0, memory_order_relaxed); /* no thread yet */
    atomic_store_explicit(&race_other, 0, memory_order_relaxed);
}

/* After the race: every id created exactly once. */
static void race_expect_each_once(void)
{
    tu_assert_no_failures();
    cr_assert_eq(atomic_load_explicit(&race_other, memory_order_relaxed), 0);
    for (int id = 1; id <= RACE_IDS; id++)
        cr_assert_eq(atomic_load_explicit(&race_created[id], memory_order_relaxed), 1, "id %d", id);
}

Test(http_connector, concurrent_bulk_creates_of_the_same_ids_create_each_once)
{
    race_reset();
    tu_run_threads(RACE_THREADS, race_creator, NULL);
    tu_assert_no_failures();
    cr_assert_eq(atomic_load_explicit(&race_other, memory_order_relaxed), 0);
    for (int id = 1; id <= RACE_IDS; id++) {
        cr_assert_eq(atomic_load_explicit(&race_created[id], memory_order_relaxed), 1, "id %d", id);
        cr_assert(item_exists((uint64_t)id));
    }
}

/* ---- layer 2: libcurl through a real invcored ------------------------------ */

#include "test_http_client.h"
#include "test_server_harness.h"

#define EXAMPLES_ENV "CONNECTOR_EXAMPLES" /* set: print each request and answer */
#define SRV_THREADS 8 /* keep-alive clients of the concurrent test */

static int http_port;
static const char *const tenant_hdr[] = {"X-TWC-Tenant: acme", NULL};

/* extra: invcored's flags; pass: its --requirepass, for RESP (NULL: none). */
static void srv_http_start(const char *const *extra, const char *pass)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    srv_suite_start(extra);
    http_port = srv_http_port(&S);
    if (pass)
        expect_status(C, "OK", "AUTH %s", pass);
    /* X-TWC-Tenant names a tenant: the requests' "acme", which the RESP
     * connection that checks their effects addresses too */
    expect_status(C, "OK", "TENANT.CREATE acme");
    expect_status(C, "OK", "TENANT.USE acme");
}

static void srv_http_stop(void)
{
    srv_suite_stop();
    curl_global_cleanup();
}

/* One request with the tenant header (hdrs NULL) or hdrs; under
 * CONNECTOR_EXAMPLES the request and its answer go to stderr, as
 * docs/HTTP.md "Connector" shows them. */
static long srv_do(CURL *c, const char *method, const char *path, const char *const *hdrs,
                   const char *body, hc_resp *r)
{
    hc_free(r);
    long st = hc_do(c, http_port, method, path, hdrs ? hdrs : tenant_hdr, body, r);
    if (getenv(EXAMPLES_ENV) != NULL) {
        fprintf(stderr, "```\n%s %s\n%s", method, path, hdrs ? "" : "X-TWC-Tenant: acme\n");
        if (body)
            fprintf(stderr, "\n%s\n", body);
        fprintf(stderr, "\n%ld%s%s\n%s\n```\n\n", st, r->allow[0] ? "\nAllow: " : "", r->allow,
                r->body);
    }
    return st;
}

/* srv_do expecting status (the body shown when not). */
static void srv_expect(CURL *c, const char *method, const char *path, const char *body, long status,
                       hc_resp *r)
{
    long st = srv_do(c, method, path, NULL, body, r);
    cr_assert_eq(st, status, "%s %s: %ld %s", method, path, st, r->body);
    cr_assert(r->len == 0 || r->json != NULL, "not JSON: %s", r->body);
}

static hc_resp *srv_resp(void)
{
    hc_resp *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    return r;
}

TestSuite(connector_server, .fini = srv_http_stop);

/* Checks of an answer's body in the route walk below. */
static void check_seed_location(yajl_val v)
{
    expect_seed_location(v);
}
static void check_seed_item(yajl_val v)
{
    expect_seed_item(v);
}
static void check_level_7(yajl_val v)
{
    expect_seed_level(v, 7);
}
static void check_level_9(yajl_val v)
{
    expect_seed_level(v, 9);
}
static void check_two_rows(yajl_val v)
{
    cr_assert(YAJL_IS_ARRAY(v) && v->u.array.len == 2);
    for (size_t i = 0; i < 2; i++)
        cr_assert_str_eq(jnum(v->u.array.values[i], "status"), "201");
}
static void check_deleted(yajl_val v)
{
    cr_assert_eq(jbool(v, "deleted"), true);
}
static void check_not_found(yajl_val v)
{
    cr_assert_str_eq(jstr(v, "error"), "inventory item 39072856 not found");
}

/* Every route of the dialect, in an order that builds what the next needs:
 * the request, the status, a check of the answer (NULL: none). */
static const struct {
    const char *method, *path, *body;
    long status;
    void (*check)(yajl_val v);
} route_walk[] = {
    {"POST", "/api/inventorylocation", SEED_LOCATION, 201, check_seed_location},
    {"PUT", "/api/inventorylocation", SEED_LOCATION, 200, check_seed_location},
    {"GET", "/api/inventorylocation/655441491", NULL, 200, check_seed_location},
    {"POST", "/api/inventorylocations",
     "[{\"id\":\"487838322\",\"name\":\"Warehouse\",\"city\":\"Toronto\",\"country\":"
     "\"Canada\",\"country_code\":\"CA\"},{\"id\":\"1\",\"name\":\"Pop-up\",\"active\":false}]",
     201, check_two_rows},
    {"POST", "/api/inventoryitem", SEED_ITEM, 201, check_seed_item},
    {"PUT", "/api/inventoryitem", SEED_ITEM, 200, check_seed_item},
    {"GET", "/api/inventoryitem/808950810", NULL, 200, check_seed_item},
    {"POST", "/api/inventoryitems",
     "[{\"id\":\"39072856\",\"sku\":\"IPOD2008GREEN\",\"cost\":\"25.00\"},"
     "{\"id\":\"457924702\",\"sku\":\"IPOD2008BLACK\",\"tracked\":false}]",
     201, check_two_rows},
    {"POST", "/api/inventorylevel", SEED_LEVEL, 201, check_level_7},
    {"PUT", "/api/inventorylevel",
     "{\"inventory_item_id\":\"808950810\",\"location_id\":\"655441491\",\"available\":9}", 200,
     check_level_9},
    {"GET", "/api/inventorylevel/inventoryitem/808950810/location/655441491", NULL, 200,
     check_level_9},
    {"POST", "/api/inventorylevels",
     "[{\"inventory_item_id\":\"39072856\",\"location_id\":\"655441491\",\"available\":3},"
     "{\"inventory_item_id\":\"808950810\",\"location_id\":\"487838322\",\"available\":12}]",
     201, check_two_rows},
    {"DELETE", "/api/inventorylevel/inventoryitem/39072856/location/655441491", NULL, 204, NULL},
    {"DELETE", "/api/inventoryitem/457924702", NULL, 200, check_deleted},
    {"PUT", "/api/inventoryitem", "{\"id\":\"39072856\",\"deleted\":true}", 200, check_deleted},
    {"GET", "/api/inventoryitem/39072856", NULL, 404, check_not_found},
};

Test(connector_server, every_route_round_trips_the_seed_bodies)
{
    srv_http_start(NULL, NULL);
    CURL *c = curl_easy_init();
    hc_resp *r = srv_resp();
    cr_assert_not_null(c);
    for (size_t i = 0; i < sizeof route_walk / sizeof *route_walk; i++) {
        srv_expect(c, route_walk[i].method, route_walk[i].path, route_walk[i].body,
                   route_walk[i].status, r);
        cr_assert_str_eq(r->content_type,
                         r->status == 204 ? "" : "application/json; charset=utf-8");
        if (route_walk[i].check)
            route_walk[i].check(r->json);
        else
            cr_assert_eq(r->len, 0, "%s %s: no body", route_walk[i].method, route_walk[i].path);
    }
    /* the writes as the engine holds them, over RESP */
    expect_level(C, 9, 0, "LEVEL.GET 808950810 655441491");
    expect_level(C, 12, 0, "LEVEL.GET 808950810 487838322");
    expect_error(C, "NOTFOUND", "LEVEL.GET 39072856 655441491");
    expect_error(C, "NOTFOUND", "ITEM.GET 457924702");
    hc_free(r);
    free(r);
    curl_easy_cleanup(c);
}

Test(connector_server, bad_input_over_the_wire_is_refused_and_writes_nothing)
{
    srv_http_start(NULL, NULL);
    CURL *c = curl_easy_init();
    hc_resp *r = srv_resp();
    cr_assert_not_null(c);
    expect_status(C, "OK", "LOC.SET 655441491 name Ottawa");
    /* the tenant header */
    const char *const none[] = {NULL};
    const char *const empty[] = {"X-TWC-Tenant:", NULL};
    cr_assert_eq(srv_do(c, "POST", "/api/inventoryitem", none, SEED_ITEM, r), 400);
    cr_assert_str_eq(r->body, "{\"error\":\"X-TWC-Tenant header is required\"}");
    cr_assert_eq(srv_do(c, "GET", "/api/inventorylocation/655441491", empty, NULL, r), 400);
    cr_assert_str_eq(r->body, "{\"error\":\"X-TWC-Tenant header is required\"}");
    /* malformed JSON, wrong types, ids with a sign, 0 or over u64 */
    srv_expect(c, "POST", "/api/inventoryitem", "{\"id\":\"1\",", 400, r);
    cr_assert(strstr(jstr(r->json, "error"), "invalid JSON") != NULL, "%s", r->body);
    srv_expect(c, "POST", "/api/inventoryitem", "{\"id\":\"1\",\"tracked\":\"yes\"}", 400, r);
    cr_assert_str_eq(r->body, "{\"error\":\"tracked must be true or false\"}");
    srv_expect(c, "POST", "/api/inventoryitem", "{\"id\":\"+1\"}", 400, r);
    srv_expect(c, "POST", "/api/inventorylevel",
               "{\"inventory_item_id\":\"1\",\"location_id\":\"18446744073709551616\"}", 400, r);
    srv_expect(c, "GET", "/api/inventoryitem/-1", NULL, 400, r);
    srv_expect(c, "GET", "/api/inventoryitem/0", NULL, 400, r);
    srv_expect(c, "GET", "/api/inventoryitem/18446744073709551616", NULL, 400, r);
    srv_expect(c, "GET", "/api/inventorylevel/inventoryitem/1/location/+2", NULL, 400, r);
    srv_expect(c, "GET", "/api/inventoryitem/1", NULL, 404, r);
    /* bulk: over 250 rows refused whole; one failing row: 207, the rest applied */
    size_t cap = 251 * 16 + 8;
    char *body = malloc(cap);
    cr_assert(body != NULL && ids_bulk(body, cap, 1, 251));
    srv_expect(c, "POST", "/api/inventoryitems", body, 400, r);
    cr_assert_str_eq(r->body, "{\"error\":\"a bulk create takes 1 to 250 rows: got 251\"}");
    free(body);
    srv_expect(c, "GET", "/api/inventoryitem/1", NULL, 404, r);
    srv_expect(c, "POST", "/api/inventoryitems",
               "[{\"id\":\"1\",\"sku\":\"A\"},{\"id\":\"2\",\"sku\":\"A\"},{\"id\":\"3\"}]", 207,
               r);
    cr_assert_eq(r->json->u.array.len, 3);
    srv_expect(c, "GET", "/api/inventoryitem/1", NULL, 200, r);
    srv_expect(c, "GET", "/api/inventoryitem/2", NULL, 404, r);
    srv_expect(c, "GET", "/api/inventoryitem/3", NULL, 200, r);
    srv_expect(c, "POST", "/api/inventorylevels",
               "[{\"inventory_item_id\":\"1\",\"location_id\":\"655441491\",\"available\":5},"
               "{\"inventory_item_id\":\"2\",\"location_id\":\"655441491\",\"available\":5}]",
               207, r);
    expect_level(C, 5, 0, "LEVEL.GET 1 655441491");
    /* methods: as the router answers them, with Allow */
    cr_assert_eq(srv_do(c, "HEAD", "/api/inventoryitem", NULL, NULL, r), 405);
    cr_assert_str_eq(r->allow, "POST, PUT, OPTIONS");
    cr_assert_eq(srv_do(c, "PATCH", "/api/inventoryitem/1", NULL, "{}", r), 405);
    cr_assert_str_eq(r->allow, "GET, HEAD, DELETE, OPTIONS");
    cr_assert_str_eq(r->body, "{\"error\":\"Method Not Allowed\"}", "the dialect's error shape");
    cr_assert_eq(srv_do(c, "GET", "/api/inventorylevels", NULL, NULL, r), 405);
    cr_assert_str_eq(r->allow, "POST, OPTIONS");
    cr_assert_eq(srv_do(c, "OPTIONS", "/api/inventorylocation/1", NULL, NULL, r), 204);
    cr_assert_str_eq(r->allow, "GET, HEAD, OPTIONS");
    cr_assert_eq(srv_do(c, "HEAD", "/api/inventoryitem/1", NULL, NULL, r), 200);
    cr_assert_eq(r->len, 0, "HEAD: no body");
    cr_assert_eq(srv_do(c, "POST", "/api/inventoryitemz", NULL, "{}", r), 404);
    hc_free(r);
    free(r);
    curl_easy_cleanup(c);
}

Test(connector_server, a_body_over_the_limit_is_413_and_writes_nothing)
{
    const char *const extra[] = {"--http-max-body-bytes", "1024", NULL};
    srv_http_start(extra, NULL);
    CURL *c = curl_easy_init();
    hc_resp *r = srv_resp();
    cr_assert_not_null(c);
    char body[2048];
    cr_assert(ids_bulk(body, sizeof body, 1, 100)); /* 100 rows: 1.5 KB */
    cr_assert_gt(strlen(body), 1024);
    srv_expect(c, "POST", "/api/inventoryitems", body, 413, r);
    srv_expect(c, "GET", "/api/inventoryitem/1", NULL, 404, r);
    srv_expect(c, "POST", "/api/inventoryitems", "[{\"id\":1}]", 201, r);
    hc_free(r);
    free(r);
    curl_easy_cleanup(c);
}

Test(connector_server, the_bearer_token_is_required_when_a_password_is_set)
{
    const char *const extra[] = {"--requirepass", "s3cret", NULL};
    srv_http_start(extra, "s3cret");
    CURL *c = curl_easy_init();
    hc_resp *r = srv_resp();
    cr_assert_not_null(c);
    const char *const wrong[] = {"X-TWC-Tenant: acme", "Authorization: Bearer nope", NULL};
    const char *const right[] = {"X-TWC-Tenant: acme", "Authorization: Bearer s3cret", NULL};
    cr_assert_eq(srv_do(c, "POST", "/api/inventoryitem", NULL, "{\"id\":1}", r), 401);
    cr_assert_eq(srv_do(c, "POST", "/api/inventoryitem", wrong, "{\"id\":1}", r), 401);
    expect_error(C, "NOTFOUND", "ITEM.GET 1");
    cr_assert_eq(srv_do(c, "POST", "/api/inventoryitem", right, "{\"id\":1}", r), 201, "%s",
                 r->body);
    cr_assert_eq(srv_do(c, "GET", "/api/inventoryitem/1", right, NULL, r), 200);
    hc_free(r);
    free(r);
    curl_easy_cleanup(c);
}

/* A keep-alive client creating every id in bulks of 8, as race_creator. */
static void srv_creator(void *arg, size_t index)
{
    (void)arg;
    CURL *c = curl_easy_init();
    hc_resp *r = calloc(1, sizeof *r);
    TU_CHECK(c != NULL && r != NULL, "client %zu: no memory", index);
    char body[1024];
    for (int base = 1; c && r && base <= RACE_IDS; base += 8) {
        TU_CHECK(ids_bulk(body, sizeof body, base, 8), "bulk body");
        long st = hc_do(c, http_port, "POST", "/api/inventoryitems", tenant_hdr, body, r);
        TU_CHECK((st == 201 || st == 207) && race_count(r->json, base), "client %zu: %ld %s", index,
                 st, r->body);
        hc_free(r);
    }
    free(r);
    if (c)
        curl_easy_cleanup(c);
}

Test(connector_server, concurrent_clients_creating_the_same_ids_create_each_once)
{
    srv_http_start(NULL, NULL);
    race_reset();
    tu_run_threads(SRV_THREADS, srv_creator, NULL);
    race_expect_each_once();
    for (int id = 1; id <= RACE_IDS; id++) {
        redisReply *rep = cmd(C, "ITEM.GET %d", id);
        cr_assert(rep->type != REDIS_REPLY_ERROR, "ITEM.GET %d: %s", id, rep->str);
        freeReplyObject(rep);
    }
}
