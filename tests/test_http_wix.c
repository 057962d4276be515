/*
 * test_http_wix.c — core/server/http_wix.c, the Wix dialect (seed 004).
 *
 * Layer 1, suite http_wix (no socket): each route's handler is called
 * straight from the routing table on an in-memory engine; the JSON answers
 * are parsed back with yajl and checked field for field. The id scheme is
 * checked against an independent SHA-256 (libcrypto's one-shot SHA256, not
 * the dialect's EVP call); bad input (malformed JSON, wrong types, bad and
 * foreign GUIDs, quantity +-100000, both quantity and inStock, stale and
 * missing revisions) is refused with 400/409 in Wix's error shape and writes
 * nothing; decrements are all or nothing and never oversell, also under
 * many threads.
 *
 * Layer 2, suite wix_server: every route through a real invcored with
 * libcurl (tests/test_http_client.h): the seed's object round trip, bad
 * input, a body over the limit, HEAD/OPTIONS/unknown methods, the token,
 * and a flash sale of keep-alive clients. With INVCORE_WIX_DOC=1 every
 * exchange is printed (docs/HTTP.md "Wix"'s examples come from there).
 */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_json.h"
#include "server/http_route.h"
#include "test_http_read.h"
#include "test_util.h"

/* ---- the request builder ------------------------------------------------ */

#define T_BASE "/stores/v3/inventory-items"
#define T_TEXT_MAX 65536
#define T_PATH_MAX 256

typedef struct {
    int status;
    yajl_val json; /* NULL: no body, or not JSON */
    char text[T_TEXT_MAX];
    size_t len;
    uint64_t durable_at;
    bool body_failed;
} t_resp;

static inv_engine *E;

static bool t_no_header(const http_request *r, const char *name, http_str *value)
{
    (void)r;
    (void)name;
    (void)value;
    return false;
}

/* The route of (m, T_BASE suffix), or NULL. */
static const http_route *t_route(http_method m, const char *suffix)
{
    char full[T_PATH_MAX];
    snprintf(full, sizeof full, T_BASE "%s", suffix);
    for (size_t i = 0; i < http_wix_routes_n; i++)
        if (http_wix_routes[i].method == m && strcmp(http_wix_routes[i].pattern, full) == 0)
            return &http_wix_routes[i];
    return NULL;
}

/* Calls the handler of (m, suffix) with {id} = id (NULL when none); never
 * asserts (threads call it): r->status 0 when there is no such route. */
static void t_call_into(inv_engine *e, http_method m, const char *suffix, const char *id,
                        const char *body, t_resp *r)
{
    memset(r, 0, sizeof *r);
    const http_route *rt = t_route(m, suffix);
    if (rt == NULL)
        return;
    http_request req = {0};
    req.method = m;
    req.dialect = HTTP_DIALECT_WIX;
    req.path = (http_str){T_BASE, strlen(T_BASE)};
    req.query = (http_str){"", 0};
    req.body = (http_str){body ? body : "", body ? strlen(body) : 0};
    if (id) {
        req.params[0] = (http_str){id, strlen(id)};
        req.n_params = 1;
    }
    req.e = e;
    req.header = t_no_header;
    http_body b;
    if (http_body_init(&b) != 0)
        return;
    http_response res = {0};
    res.body = &b;
    rt->fn(&req, &res);
    r->status = res.status;
    r->durable_at = res.durable_at;
    r->body_failed = b.failed;
    r->len = b.len < sizeof r->text - 1 ? b.len : sizeof r->text - 1;
    if (r->len > 0)
        memcpy(r->text, b.p, r->len);
    r->text[r->len] = '\0';
    if (r->len > 0)
        r->json = yajl_tree_parse(r->text, NULL, 0);
    http_body_free(&b);
}

static t_resp call_on(inv_engine *e, http_method m, const char *suffix, const char *id,
                      const char *body)
{
    t_resp r;
    cr_assert_not_null(t_route(m, suffix), "no route %d %s", (int)m, suffix);
    t_call_into(e, m, suffix, id, body, &r);
    cr_assert(!r.body_failed, "the body failed: %s", r.text);
    cr_assert(r.len == 0 || r.json != NULL, "not JSON: %s", r.text);
    return r;
}

static t_resp call(http_method m, const char *suffix, const char *id, const char *body)
{
    return call_on(E, m, suffix, id, body);
}

static void t_free(t_resp *r)
{
    yajl_tree_free(r->json);
    r->json = NULL;
}

/* ---- reading answers ---------------------------------------------------- */

static yajl_val jitem(t_resp *r)
{
    cr_assert_eq(r->status, 200, "status %d: %s", r->status, r->text);
    yajl_val it = jget(r->json, "inventoryItem");
    cr_assert(it != NULL && YAJL_IS_OBJECT(it), "no inventoryItem: %s", r->text);
    return it;
}

static unsigned long long jrev(yajl_val item)
{
    return strtoull(jstr(item, "revision"), NULL, 10);
}

/* The status, and Wix's {"message", "details"}: a validationError naming
 * field (400), else an applicationError with code. Frees r. */
static void expect_wix_error(t_resp *r, int status, const char *field_or_code)
{
    cr_assert_eq(r->status, status, "status %d, want %d: %s", r->status, status, r->text);
    cr_assert_eq(r->durable_at, 0, "a refused request waits for nothing");
    cr_assert(YAJL_IS_STRING(jget(r->json, "message")), "no message: %s", r->text);
    yajl_val d = jget(r->json, "details");
    cr_assert_not_null(d, "no details: %s", r->text);
    if (status == 400) {
        yajl_val fv = jget(jget(d, "validationError"), "fieldViolations");
        cr_assert(fv != NULL && YAJL_IS_ARRAY(fv) && fv->u.array.len == 1, "%s", r->text);
        cr_assert_str_eq(jstr(fv->u.array.values[0], "field"), field_or_code, "%s", r->text);
    } else {
        cr_assert_str_eq(jstr(jget(d, "applicationError"), "code"), field_or_code, "%s", r->text);
    }
    t_free(r);
}

/* ---- the id scheme, computed independently ------------------------------ */

#define T_ID_PROBES_MAX 8 /* http_wix.c's WIX_ID_PROBES_MAX */

static uint64_t t_variant_id(const char *guid_lower, unsigned k)
{
    char text[64];
    unsigned char md[SHA256_DIGEST_LENGTH];
    int n = k ? snprintf(text, sizeof text, "%s#%u", guid_lower, k)
              : snprintf(text, sizeof text, "%s", guid_lower);
    SHA256((const unsigned char *)text, (size_t)n, md);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return v;
}

static void t_guid(uint64_t hi, uint64_t lo, char *out)
{
    snprintf(out, 37, "%08llx-%04llx-%04llx-%04llx-%012llx", (unsigned long long)(hi >> 32),
             (unsigned long long)((hi >> 16) & 0xffff), (unsigned long long)(hi & 0xffff),
             (unsigned long long)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

/* ---- fixtures ----------------------------------------------------------- */

#define VAR1 "3c8a2fe5-0b4a-4b2e-9d1e-7f6b1c2d3e4f"
#define VAR1_UPPER "3C8A2FE5-0B4A-4B2E-9D1E-7F6B1C2D3E4F"
#define VAR2 "9f1e2d3c-4b5a-4678-8901-23456789abcd"
#define VAR3 "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define PROD1 "c5b4f3b2-1e4d-4f7a-9b8c-0d1e2f3a4b5c"
#define PROD2 "77e0c1d2-5f6a-4b3c-8d9e-0f1a2b3c4d5e"
#define LOC1G "494e5643-4f52-4500-0000-000000000001"
#define LOC2G "494e5643-4f52-4500-0000-000000000002"
#define LOC3G "494e5643-4f52-4500-0000-000000000003" /* inactive */
#define LOC9G "494e5643-4f52-4500-0000-000000000009" /* unknown */

static void put_location(uint64_t id, const char *name, bool active)
{
    inv_location_fields f = {.mask = INV_LOC_NAME | INV_LOC_ACTIVE, .active = active};
    snprintf(f.name, sizeof f.name, "%s", name);
    cr_assert_eq(inv_location_put(E, id, &f), INV_OK);
}

static void setup(void)
{
    cr_assert_eq(inv_open(&E, NULL), INV_OK);
    put_location(1, "Main", true); /* the first: the default */
    put_location(2, "Second", true);
    put_location(3, "Closed", false);
}

static void teardown(void)
{
    inv_close(E);
    E = NULL;
}

/* Creates variant at loc_guid (NULL: the default) with the stock clause
 * ("\"quantity\":5", "\"inStock\":true", ...) and extra fields ("" or
 * ",\"preorderInfo\":{...}"); returns the answer. */
static t_resp create(const char *variant, const char *loc_guid, const char *stock,
                     const char *extra)
{
    char body[1024], loc[80] = "";
    if (loc_guid)
        snprintf(loc, sizeof loc, "\"locationId\":\"%s\",", loc_guid);
    snprintf(body, sizeof body, "{\"inventoryItem\":{\"variantId\":\"%s\",%s%s%s}}", variant, loc,
             stock, extra);
    return call(HTTP_POST, "", NULL, body);
}

/* create() that must succeed: the new _id into id (37 bytes). */
static void create_ok(const char *variant, const char *loc_guid, const char *stock,
                      const char *extra, char *id)
{
    t_resp r = create(variant, loc_guid, stock, extra);
    yajl_val it = jitem(&r);
    snprintf(id, 37, "%s", jstr(it, "_id"));
    t_free(&r);
}

static void stats(uint64_t *items, uint64_t *levels)
{
    inv_stats st;
    cr_assert_eq(inv_stats_get(E, &st), INV_OK);
    *items = st.items;
    *levels = st.levels;
}

static int64_t available_of(uint64_t item, uint64_t loc)
{
    inv_level lv;
    cr_assert_eq(inv_level_get(E, item, loc, &lv), INV_OK);
    return lv.available;
}

/* The item half of an _id. */
static uint64_t item_of(const char *id)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%.8s%.4s%.4s", id, id + 9, id + 14);
    return strtoull(hex, NULL, 16);
}

TestSuite(http_wix, .init = setup, .fini = teardown);

/* ---- ids ---------------------------------------------------------------- */

Test(http_wix, ids_follow_the_documented_scheme)
{
    t_resp r = create(VAR1_UPPER, LOC2G, "\"quantity\":5", ",\"productId\":\"" PROD1 "\"");
    yajl_val it = jitem(&r);
    uint64_t item = t_variant_id(VAR1, 0);
    char want[37];
    t_guid(item, 2, want);
    cr_assert_str_eq(jstr(it, "_id"), want, "_id = item id (16 hex) then location id");
    cr_assert_str_eq(jstr(it, "variantId"), VAR1, "stored and written in lower case");
    cr_assert_str_eq(jstr(it, "locationId"), LOC2G);
    cr_assert_str_eq(jstr(it, "productId"), PROD1);
    t_free(&r);
    inv_item ii;
    cr_assert_eq(inv_item_get(E, item, &ii), INV_OK, "item id = SHA-256(GUID)[0..8) big-endian");
    cr_assert_str_eq(ii.fields.variant, VAR1);
    cr_assert_str_eq(ii.fields.product, PROD1);
    cr_assert(ii.fields.tracked);
    uint64_t found;
    cr_assert_eq(inv_item_by_variant(E, VAR1, &found), INV_OK);
    cr_assert_eq(found, item);
    cr_assert_eq(available_of(item, 2), 5);
    /* the _id reads back: GET by it, in either case */
    char upper[37];
    for (size_t i = 0; i < 37; i++)
        upper[i] = (char)(want[i] >= 'a' && want[i] <= 'f' ? want[i] - 32 : want[i]);
    r = call(HTTP_GET, "/{id}", upper, NULL);
    cr_assert_str_eq(jstr(jitem(&r), "_id"), want);
    t_free(&r);
}

Test(http_wix, a_taken_candidate_id_is_probed_deterministically)
{
    /* another variant's item holds VAR2's first candidate */
    inv_item_fields f = {.mask = INV_ITEM_VARIANT};
    snprintf(f.variant, sizeof f.variant, "other-variant");
    cr_assert_eq(inv_item_put(E, t_variant_id(VAR2, 0), &f), INV_OK);
    char id[37], id2[37];
    create_ok(VAR2, LOC1G, "\"quantity\":1", "", id);
    cr_assert_eq(item_of(id), t_variant_id(VAR2, 1), "the next candidate: SHA-256(GUID#1)");
    /* the variant now maps to that item: a second location joins it */
    create_ok(VAR2, LOC2G, "\"quantity\":2", "", id2);
    cr_assert_eq(item_of(id2), t_variant_id(VAR2, 1));
    cr_assert_eq(available_of(t_variant_id(VAR2, 1), 2), 2);
}

Test(http_wix, probing_stops_at_its_bound_and_writes_nothing)
{
    for (unsigned k = 0; k < T_ID_PROBES_MAX; k++) {
        inv_item_fields f = {.mask = INV_ITEM_VARIANT};
        snprintf(f.variant, sizeof f.variant, "squatter-%u", k);
        cr_assert_eq(inv_item_put(E, t_variant_id(VAR2, k), &f), INV_OK);
    }
    uint64_t items0, levels0, items1, levels1;
    stats(&items0, &levels0);
    t_resp r = create(VAR2, LOC1G, "\"quantity\":1", "");
    expect_wix_error(&r, 422, "ITEM_ID_PROBES_EXHAUSTED");
    stats(&items1, &levels1);
    cr_assert_eq(items1, items0);
    cr_assert_eq(levels1, levels0);
    uint64_t found;
    cr_assert_eq(inv_item_by_variant(E, VAR2, &found), INV_ENOTFOUND);
}

Test(http_wix, an_existing_variant_mapping_is_reused)
{
    inv_item_fields f = {.mask = INV_ITEM_VARIANT | INV_ITEM_SKU};
    snprintf(f.variant, sizeof f.variant, VAR1);
    snprintf(f.sku, sizeof f.sku, "SHIRT-RED-M");
    cr_assert_eq(inv_item_put(E, 77, &f), INV_OK);
    t_resp r = create(VAR1, LOC1G, "\"quantity\":3", "");
    yajl_val it = jitem(&r);
    cr_assert_str_eq(jstr(it, "_id"), "00000000-0000-004d-0000-000000000001");
    cr_assert_str_eq(jstr(jget(it, "product"), "variantSku"), "SHIRT-RED-M");
    t_free(&r);
}

Test(http_wix, the_default_location_is_used_when_none_is_given)
{
    t_resp r = create(VAR1, NULL, "\"quantity\":3", "");
    cr_assert_str_eq(jstr(jitem(&r), "locationId"), LOC1G);
    t_free(&r);
    cr_assert_eq(inv_location_set_default(E, 2), INV_OK);
    r = create(VAR1, NULL, "\"quantity\":4", "");
    cr_assert_str_eq(jstr(jitem(&r), "locationId"), LOC2G);
    t_free(&r);
}

/* ---- create ------------------------------------------------------------- */

typedef struct {
    const char *body;
    const char *field; /* the fieldViolation named */
} bad_case;

#define IT(fields) "{\"inventoryItem\":{" fields "}}"
#define V1 "\"variantId\":\"" VAR1 "\""

static const bad_case create_bad[] = {
    {"{\"inventoryItem\":", "body"},
    {"[1]", "body"},
    {"", "body"},
    {"{}", "inventoryItem"},
    {"{\"inventoryItem\":[]}", "inventoryItem"},
    {IT("\"quantity\":1"), "inventoryItem.variantId"},
    {IT("\"variantId\":12,\"quantity\":1"), "inventoryItem.variantId"},
    {IT("\"variantId\":\"not-a-guid\",\"quantity\":1"), "inventoryItem.variantId"},
    {IT("\"variantId\":\"+c8a2fe5-0b4a-4b2e-9d1e-7f6b1c2d3e4f\",\"quantity\":1"),
     "inventoryItem.variantId"},
    {IT("\"variantId\":\"3c8a2fe5-0b4a-4b2e-9d1e-7f6b1c2d3e4f0\",\"quantity\":1"),
     "inventoryItem.variantId"},
    {IT("\"variantId\":\"{3c8a2fe5-0b4a-4b2e-9d1e-7f6b1c2d3e4}\",\"quantity\":1"),
     "inventoryItem.variantId"},
    {IT("\"variantId\":\"3c8a2fe50b4a4b2e9d1e7f6b1c2d3e4f0000\",\"quantity\":1"),
     "inventoryItem.variantId"},
    {IT(V1 ",\"locationId\":\"00000000-0000-0000-0000-000000000001\",\"quantity\":1"),
     "inventoryItem.locationId"},
    {IT(V1 ",\"locationId\":\"494e5643-4f52-4501-0000-000000000001\",\"quantity\":1"),
     "inventoryItem.locationId"},
    {IT(V1 ",\"locationId\":1,\"quantity\":1"), "inventoryItem.locationId"},
    {IT(V1 ",\"quantity\":100000"), "inventoryItem.quantity"},
    {IT(V1 ",\"quantity\":-100000"), "inventoryItem.quantity"},
    {IT(V1 ",\"quantity\":\"5\""), "inventoryItem.quantity"},
    {IT(V1 ",\"quantity\":1.5"), "inventoryItem.quantity"},
    {IT(V1 ",\"quantity\":18446744073709551616"), "inventoryItem.quantity"},
    {IT(V1 ",\"quantity\":null"), "inventoryItem.quantity"},
    {IT(V1 ",\"quantity\":1,\"inStock\":true"), "inventoryItem.quantity"},
    {IT(V1), "inventoryItem.quantity"},
    {IT(V1 ",\"inStock\":\"yes\""), "inventoryItem.inStock"},
    {IT(V1 ",\"quantity\":1,\"productId\":\"\""), "inventoryItem.productId"},
    {IT(V1 ",\"quantity\":1,\"productId\":\"0123456789012345678901234567890123456\""),
     "inventoryItem.productId"},
    {IT(V1 ",\"quantity\":1,\"productId\":5"), "inventoryItem.productId"},
    {IT(V1 ",\"quantity\":1,\"preorderInfo\":\"x\""), "inventoryItem.preorderInfo"},
    {IT(V1 ",\"quantity\":1,\"preorderInfo\":{\"enabled\":\"true\"}"),
     "inventoryItem.preorderInfo.enabled"},
    {IT(V1 ",\"quantity\":1,\"preorderInfo\":{\"enabled\":true,\"limit\":-1}"),
     "inventoryItem.preorderInfo.limit"},
    {IT(V1 ",\"quantity\":1,\"preorderInfo\":{\"enabled\":true,\"limit\":100001}"),
     "inventoryItem.preorderInfo.limit"},
    {IT(V1 ",\"quantity\":1,\"preorderInfo\":{\"enabled\":true,\"message\":7}"),
     "inventoryItem.preorderInfo.message"},
    {IT(V1 ",\"inStock\":true,\"preorderInfo\":{\"enabled\":true,\"limit\":3}"),
     "inventoryItem.preorderInfo.limit"},
};

Test(http_wix, create_refuses_bad_input_and_writes_nothing)
{
    uint64_t items0, levels0, items1, levels1;
    stats(&items0, &levels0);
    for (size_t i = 0; i < sizeof create_bad / sizeof create_bad[0]; i++) {
        t_resp r = call(HTTP_POST, "", NULL, create_bad[i].body);
        cr_assert_eq(r.status, 400, "case %zu %s: %d %s", i, create_bad[i].body, r.status, r.text);
        expect_wix_error(&r, 400, create_bad[i].field);
    }
    /* a message over 250 bytes */
    char body[1024], msg[300];
    memset(msg, 'm', 251);
    msg[251] = '\0';
    snprintf(body, sizeof body,
             IT(V1 ",\"quantity\":1,\"preorderInfo\":{\"enabled\":true,\"message\":\"%s\"}"), msg);
    t_resp r = call(HTTP_POST, "", NULL, body);
    expect_wix_error(&r, 400, "inventoryItem.preorderInfo.message");
    stats(&items1, &levels1);
    cr_assert_eq(items1, items0, "nothing written");
    cr_assert_eq(levels1, levels0);
    /* the location error names the scheme */
    r = call(HTTP_POST, "", NULL, create_bad[12].body);
    cr_assert(strstr(r.text, "494e5643-4f52-4500-XXXX-XXXXXXXXXXXX") != NULL, "%s", r.text);
    t_free(&r);
}

Test(http_wix, quantity_bounds_are_inclusive_and_unknown_fields_ignored)
{
    char id[37];
    create_ok(VAR1, LOC1G, "\"quantity\":99999", ",\"colour\":\"red\",\"sku\":[1,{}]", id);
    create_ok(VAR1, LOC2G, "\"quantity\":-99999", "", id);
    cr_assert_eq(available_of(t_variant_id(VAR1, 0), 1), 99999);
    cr_assert_eq(available_of(t_variant_id(VAR1, 0), 2), -99999);
}

Test(http_wix, create_refuses_a_second_item_and_unknown_or_inactive_locations)
{
    char id[37];
    create_ok(VAR1, LOC1G, "\"quantity\":5", "", id);
    t_resp r = create(VAR1, LOC1G, "\"quantity\":9", "");
    expect_wix_error(&r, 409, "INVENTORY_ITEM_ALREADY_EXISTS");
    cr_assert_eq(available_of(item_of(id), 1), 5, "unchanged");
    r = create(VAR1, LOC9G, "\"quantity\":1", "");
    expect_wix_error(&r, 404, "LOCATION_NOT_FOUND");
    r = create(VAR1, LOC3G, "\"quantity\":1", "");
    expect_wix_error(&r, 422, "LOCATION_INACTIVE");
    /* a variant of another product is refused: productId is immutable */
    r = create(VAR2, LOC1G, "\"quantity\":1", ",\"productId\":\"" PROD1 "\"");
    t_free(&r);
    r = create(VAR2, LOC2G, "\"quantity\":1", ",\"productId\":\"" PROD2 "\"");
    expect_wix_error(&r, 400, "inventoryItem.productId");
    inv_level lv;
    cr_assert_eq(inv_level_get(E, t_variant_id(VAR2, 0), 2, &lv), INV_ENOTFOUND);
}

Test(http_wix, in_stock_items_are_untracked)
{
    t_resp r = create(VAR2, LOC1G, "\"inStock\":true", "");
    yajl_val it = jitem(&r);
    cr_assert(!jbool(it, "trackQuantity"));
    cr_assert(jbool(it, "inStock"));
    cr_assert_null(jget(it, "quantity"), "oneOf: quantity or inStock");
    cr_assert_str_eq(jstr(it, "availabilityStatus"), "IN_STOCK");
    t_free(&r);
    cr_assert_eq(available_of(t_variant_id(VAR2, 0), 1), 1);
    r = create(VAR2, LOC2G, "\"inStock\":false", "");
    it = jitem(&r);
    cr_assert(!jbool(it, "inStock"));
    cr_assert_str_eq(jstr(it, "availabilityStatus"), "OUT_OF_STOCK");
    t_free(&r);
    cr_assert_eq(available_of(t_variant_id(VAR2, 0), 2), 0);
}

static const char *status_of(const char *variant, const char *loc, const char *stock,
                             const char *extra, char *buf)
{
    t_resp r = create(variant, loc, stock, extra);
    snprintf(buf, 32, "%s", jstr(jitem(&r), "availabilityStatus"));
    t_free(&r);
    return buf;
}

Test(http_wix, availability_status_follows_quantity_and_preorder)
{
    char buf[32];
    const char *pre2 = ",\"preorderInfo\":{\"enabled\":true,\"limit\":2}";
    const char *pre_any = ",\"preorderInfo\":{\"enabled\":true}";
    cr_assert_str_eq(status_of(VAR1, LOC1G, "\"quantity\":3", "", buf), "IN_STOCK");
    cr_assert_str_eq(status_of(VAR1, LOC2G, "\"quantity\":0", "", buf), "OUT_OF_STOCK");
    cr_assert_str_eq(status_of(VAR2, LOC1G, "\"quantity\":0", pre2, buf), "PREORDER");
    cr_assert_str_eq(status_of(VAR2, LOC2G, "\"quantity\":-2", pre2, buf), "OUT_OF_STOCK",
                     "the preorder limit is used up");
    cr_assert_str_eq(status_of(VAR3, LOC1G, "\"quantity\":-50", pre_any, buf), "PREORDER",
                     "no limit");
    inv_level_full lv;
    cr_assert_eq(inv_level_get_full(E, t_variant_id(VAR2, 0), 1, &lv), INV_OK);
    cr_assert_eq(lv.policy, INV_POLICY_CONTINUE);
    cr_assert_eq(lv.preorder_limit, 2);
    cr_assert_eq(inv_level_get_full(E, t_variant_id(VAR3, 0), 1, &lv), INV_OK);
    cr_assert_eq(lv.preorder_limit, INV_NO_PREORDER_LIMIT);
}

/* ---- get, update, delete ------------------------------------------------ */

Test(http_wix, get_answers_404_for_unknown_and_400_for_bad_ids)
{
    t_resp r = call(HTTP_GET, "/{id}", "0000abcd-0000-0000-0000-000000000001", NULL);
    expect_wix_error(&r, 404, "INVENTORY_ITEM_NOT_FOUND");
    const char *bad[] = {"abc",
                         "+000abcd-0000-0000-0000-000000000001",
                         "0000abcd-0000-0000-0000-0000000000011",
                         "0000abcd-0000-0000-0000-00000000000",
                         "0000abcd000000000000000000000000001x",
                         "0000abcd-0000-0000-0000-00000000000g",
                         "18446744073709551616"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = call(HTTP_GET, "/{id}", bad[i], NULL);
        expect_wix_error(&r, 400, "inventoryItemId");
        r = call(HTTP_PATCH, "/{id}", bad[i], IT("\"revision\":\"1\""));
        expect_wix_error(&r, 400, "inventoryItemId");
        r = call(HTTP_DELETE, "/{id}", bad[i], NULL);
        expect_wix_error(&r, 400, "inventoryItemId");
    }
}

/* PATCH id with the inventoryItem fields given; returns the answer. */
static t_resp patch(const char *id, const char *fields)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"inventoryItem\":{%s}}", fields);
    return call(HTTP_PATCH, "/{id}", id, body);
}

static unsigned long long revision_of(const char *id)
{
    t_resp r = call(HTTP_GET, "/{id}", id, NULL);
    unsigned long long rev = jrev(jitem(&r));
    t_free(&r);
    return rev;
}

Test(http_wix, update_checks_the_revision)
{
    char id[37], f[256];
    create_ok(VAR1, LOC1G, "\"quantity\":5", "", id);
    unsigned long long rev = revision_of(id);
    t_resp r = patch(id, "\"quantity\":7");
    expect_wix_error(&r, 400, "inventoryItem.revision");
    r = patch(id, "\"revision\":\"abc\",\"quantity\":7");
    expect_wix_error(&r, 400, "inventoryItem.revision");
    r = patch(id, "\"revision\":\"0\",\"quantity\":7");
    expect_wix_error(&r, 400, "inventoryItem.revision");
    snprintf(f, sizeof f, "\"revision\":\"%llu\",\"quantity\":7", rev + 1);
    r = patch(id, f);
    cr_assert(strstr(r.text, "\"currentRevision\"") != NULL, "%s", r.text);
    expect_wix_error(&r, 409, "REVISION_MISMATCH");
    cr_assert_eq(available_of(item_of(id), 1), 5, "a refused update changes nothing");
    cr_assert_eq(revision_of(id), rev);
    snprintf(f, sizeof f, "\"revision\":\"%llu\",\"quantity\":7", rev);
    r = patch(id, f);
    yajl_val it = jitem(&r);
    cr_assert_eq(jint(it, "quantity"), 7);
    cr_assert_gt(jrev(it), rev, "the revision increases");
    t_free(&r);
    r = patch(id, f); /* the old revision again */
    expect_wix_error(&r, 409, "REVISION_MISMATCH");
    /* a revision given as a number is read too */
    snprintf(f, sizeof f, "\"revision\":%llu,\"quantity\":8", revision_of(id));
    r = patch(id, f);
    cr_assert_eq(jint(jitem(&r), "quantity"), 8);
    t_free(&r);
}

Test(http_wix, update_switches_tracking_and_preorder)
{
    char id[37], f[256];
    create_ok(VAR1, LOC1G, "\"quantity\":5", "", id);
    snprintf(f, sizeof f, "\"revision\":\"%llu\",\"inStock\":false", revision_of(id));
    t_resp r = patch(id, f);
    yajl_val it = jitem(&r);
    cr_assert(!jbool(it, "trackQuantity"));
    cr_assert(!jbool(it, "inStock"));
    t_free(&r);
    snprintf(f, sizeof f, "\"revision\":\"%llu\",\"quantity\":4", revision_of(id));
    r = patch(id, f);
    it = jitem(&r);
    cr_assert(jbool(it, "trackQuantity"));
    cr_assert_eq(jint(it, "quantity"), 4);
    t_free(&r);
    snprintf(f, sizeof f, "\"revision\":\"%llu\",\"preorderInfo\":{\"enabled\":true,\"limit\":3}",
             revision_of(id));
    r = patch(id, f);
    it = jitem(&r);
    cr_assert(jbool(jget(it, "preorderInfo"), "enabled"));
    cr_assert_eq(jint(jget(it, "preorderInfo"), "limit"), 3);
    cr_assert_eq(jint(it, "quantity"), 4, "untouched");
    t_free(&r);
    /* enabled alone keeps the limit; disabling drops the policy */
    snprintf(f, sizeof f, "\"revision\":\"%llu\",\"preorderInfo\":{\"enabled\":true}",
             revision_of(id));
    r = patch(id, f);
    cr_assert_eq(jint(jget(jitem(&r), "preorderInfo"), "limit"), 3);
    t_free(&r);
    snprintf(f, sizeof f, "\"revision\":\"%llu\",\"preorderInfo\":{\"enabled\":false}",
             revision_of(id));
    r = patch(id, f);
    it = jget(jitem(&r), "preorderInfo");
    cr_assert(!jbool(it, "enabled"));
    cr_assert_null(jget(it, "limit"));
    t_free(&r);
    inv_level_full lv;
    cr_assert_eq(inv_level_get_full(E, item_of(id), 1, &lv), INV_OK);
    cr_assert_eq(lv.policy, INV_POLICY_DENY);
    /* a revision alone: nothing changes but the revision (documented) */
    unsigned long long rev = revision_of(id);
    snprintf(f, sizeof f, "\"revision\":\"%llu\"", rev);
    r = patch(id, f);
    it = jitem(&r);
    cr_assert_eq(jint(it, "quantity"), 4);
    cr_assert_gt(jrev(it), rev);
    t_free(&r);
}

Test(http_wix, update_refuses_immutable_changes_and_bad_values)
{
    char id[37], f[512];
    create_ok(VAR1, LOC1G, "\"quantity\":5", ",\"productId\":\"" PROD1 "\"", id);
    unsigned long long rev = revision_of(id);
    const struct {
        const char *fields, *field;
    } bad[] = {
        {"\"variantId\":\"" VAR2 "\"", "inventoryItem.variantId"},
        {"\"locationId\":\"" LOC2G "\"", "inventoryItem.locationId"},
        {"\"productId\":\"" PROD2 "\"", "inventoryItem.productId"},
        {"\"_id\":\"0000abcd-0000-0000-0000-000000000001\"", "inventoryItem._id"},
        {"\"quantity\":100000", "inventoryItem.quantity"},
        {"\"quantity\":1,\"inStock\":true", "inventoryItem.quantity"},
        {"\"inStock\":true,\"preorderInfo\":{\"enabled\":true,\"limit\":1}",
         "inventoryItem.preorderInfo.limit"},
        {"\"quantity\":true", "inventoryItem.quantity"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(f, sizeof f, "\"revision\":\"%llu\",%s", rev, bad[i].fields);
        t_resp r = patch(id, f);
        expect_wix_error(&r, 400, bad[i].field);
    }
    cr_assert_eq(revision_of(id), rev, "nothing changed");
    /* repeating the immutable fields as they are is fine */
    snprintf(f, sizeof f,
             "\"revision\":\"%llu\",\"_id\":\"%s\",\"variantId\":\"" VAR1
             "\",\"locationId\":\"" LOC1G "\",\"productId\":\"" PROD1 "\",\"quantity\":6",
             rev, id);
    t_resp r = patch(id, f);
    cr_assert_eq(jint(jitem(&r), "quantity"), 6);
    t_free(&r);
    r = patch("0000abcd-0000-0000-0000-000000000001", "\"revision\":\"1\",\"quantity\":1");
    expect_wix_error(&r, 404, "INVENTORY_ITEM_NOT_FOUND");
}

#define RACE_THREADS 8

typedef struct {
    const char *id;
    unsigned long long rev;
    _Atomic int ok, conflict, other;
} race_arg;

static void race_patch(void *p, size_t index)
{
    race_arg *a = p;
    char body[256];
    t_resp *r = malloc(sizeof *r);
    TU_CHECK(r != NULL, "no memory");
    if (r == NULL)
        return;
    snprintf(body, sizeof body, "{\"inventoryItem\":{\"revision\":\"%llu\",\"quantity\":%zu}}",
             a->rev, 100 + index);
    t_call_into(E, HTTP_PATCH, "/{id}", a->id, body, r);
    /* relaxed: read after the threads are joined */
    if (r->status == 200)
        atomic_fetch_add_explicit(&a->ok, 1, memory_order_relaxed);
    else if (r->status == 409)
        atomic_fetch_add_explicit(&a->conflict, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&a->other, 1, memory_order_relaxed);
    yajl_tree_free(r->json);
    free(r);
}

Test(http_wix, concurrent_updates_of_one_revision_let_exactly_one_win)
{
    char id[37];
    create_ok(VAR1, LOC1G, "\"quantity\":5", "", id);
    race_arg a = {.id = id, .rev = revision_of(id)};
    tu_run_threads(RACE_THREADS, race_patch, &a);
    tu_assert_no_failures();
    cr_assert_eq(atomic_load_explicit(&a.ok, memory_order_relaxed), 1);
    cr_assert_eq(atomic_load_explicit(&a.conflict, memory_order_relaxed), RACE_THREADS - 1);
    cr_assert_eq(atomic_load_explicit(&a.other, memory_order_relaxed), 0);
    int64_t q = available_of(item_of(id), 1);
    cr_assert(q >= 100 && q < 100 + RACE_THREADS, "one writer's quantity: %lld", (long long)q);
}

Test(http_wix, delete_removes_the_level_and_keeps_the_variant_item)
{
    char id[37], id2[37];
    create_ok(VAR1, LOC1G, "\"quantity\":5", "", id);
    t_resp r = call(HTTP_DELETE, "/{id}", id, NULL);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_str_eq(r.text, "{}");
    t_free(&r);
    r = call(HTTP_GET, "/{id}", id, NULL);
    expect_wix_error(&r, 404, "INVENTORY_ITEM_NOT_FOUND");
    r = call(HTTP_DELETE, "/{id}", id, NULL);
    expect_wix_error(&r, 404, "INVENTORY_ITEM_NOT_FOUND");
    inv_item it;
    cr_assert_eq(inv_item_get(E, item_of(id), &it), INV_OK, "the variant's item stays");
    create_ok(VAR1, LOC1G, "\"quantity\":2", "", id2);
    cr_assert_str_eq(id2, id, "the same _id again");
    /* a level with held units is not deleted */
    inv_hold_line hl = {item_of(id), 1, 1};
    cr_assert_eq(inv_hold_create(E, "h1", 2, 60000, &hl, 1, NULL), INV_OK);
    r = call(HTTP_DELETE, "/{id}", id, NULL);
    expect_wix_error(&r, 409, "INVENTORY_ITEM_IN_USE");
}

/* ---- decrement / increment ------------------------------------------------ */

static t_resp bulk(const char *suffix, const char *body)
{
    return call(HTTP_POST, suffix, NULL, body);
}

/* {"decrementData":[{"inventoryItemId":a,"decrementBy":n}, ...]} of up to 4 lines. */
static void bulk_body(char *out, size_t cap, bool dec, const char *const *ids, const int *by,
                      size_t n)
{
    size_t len = (size_t)snprintf(out, cap, "{\"%s\":[", dec ? "decrementData" : "incrementData");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s{\"inventoryItemId\":\"%s\",\"%s\":%d}",
                                i ? "," : "", ids[i], dec ? "decrementBy" : "incrementBy", by[i]);
    snprintf(out + len, cap - len, "]}");
}

Test(http_wix, decrement_and_increment_are_all_or_nothing)
{
    char a[37], b[37], body[1024];
    create_ok(VAR1, LOC1G, "\"quantity\":5", "", a);
    create_ok(VAR2, LOC1G, "\"quantity\":1", "", b);
    const char *ids[] = {a, b};
    bulk_body(body, sizeof body, true, ids, (int[]){2, 2}, 2);
    t_resp r = bulk("/decrement", body);
    cr_assert(strstr(r.text, b) != NULL, "names the short line: %s", r.text);
    expect_wix_error(&r, 422, "INSUFFICIENT_INVENTORY");
    cr_assert_eq(available_of(item_of(a), 1), 5, "nothing changed");
    cr_assert_eq(available_of(item_of(b), 1), 1);
    bulk_body(body, sizeof body, true, ids, (int[]){2, 1}, 2);
    r = bulk("/decrement", body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    yajl_val items = jget(r.json, "inventoryItems");
    cr_assert_eq(items->u.array.len, 2);
    cr_assert_eq(jint(items->u.array.values[0], "quantity"), 3);
    cr_assert_eq(jint(items->u.array.values[1], "quantity"), 0);
    cr_assert_str_eq(jstr(items->u.array.values[1], "availabilityStatus"), "OUT_OF_STOCK");
    t_free(&r);
    const char *one[] = {b};
    bulk_body(body, sizeof body, false, one, (int[]){4}, 1);
    r = bulk("/increment", body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_eq(jint(jget(r.json, "inventoryItems")->u.array.values[0], "quantity"), 4);
    t_free(&r);
    /* one level twice in a request: both lines count, listed once */
    const char *twice[] = {a, a};
    bulk_body(body, sizeof body, true, twice, (int[]){2, 1}, 2);
    r = bulk("/decrement", body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_eq(jget(r.json, "inventoryItems")->u.array.len, 1);
    cr_assert_eq(available_of(item_of(a), 1), 0);
    t_free(&r);
    bulk_body(body, sizeof body, true, twice, (int[]){1, 1}, 1);
    r = bulk("/decrement", body);
    expect_wix_error(&r, 422, "INSUFFICIENT_INVENTORY");
}

Test(http_wix, a_decrement_goes_below_zero_only_as_far_as_preorder_allows)
{
    char a[37], body[512];
    create_ok(VAR1, LOC1G, "\"quantity\":1", ",\"preorderInfo\":{\"enabled\":true,\"limit\":2}", a);
    const char *ids[] = {a};
    bulk_body(body, sizeof body, true, ids, (int[]){3}, 1);
    t_resp r = bulk("/decrement", body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_eq(jint(jget(r.json, "inventoryItems")->u.array.values[0], "quantity"), -2);
    t_free(&r);
    bulk_body(body, sizeof body, true, ids, (int[]){1}, 1);
    r = bulk("/decrement", body);
    expect_wix_error(&r, 422, "INSUFFICIENT_INVENTORY");
    cr_assert_eq(available_of(item_of(a), 1), -2);
}

Test(http_wix, bulk_changes_leave_in_stock_items_alone)
{
    char a[37], b[37], body[512];
    create_ok(VAR1, LOC1G, "\"inStock\":true", "", a);
    create_ok(VAR2, LOC1G, "\"quantity\":4", "", b);
    const char *ids[] = {a, b};
    bulk_body(body, sizeof body, true, ids, (int[]){5, 1}, 2);
    t_resp r = bulk("/decrement", body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert(jbool(jget(r.json, "inventoryItems")->u.array.values[0], "inStock"));
    t_free(&r);
    cr_assert_eq(available_of(item_of(a), 1), 1);
    cr_assert_eq(available_of(item_of(b), 1), 3);
    bulk_body(body, sizeof body, false, ids, (int[]){5}, 1);
    r = bulk("/increment", body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    t_free(&r);
    cr_assert_eq(available_of(item_of(a), 1), 1);
}

Test(http_wix, bulk_changes_refuse_bad_input_and_change_nothing)
{
    char a[37], body[16384];
    create_ok(VAR1, LOC1G, "\"quantity\":5", "", a);
    const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"decrementData\":{}}", "decrementData"},
        {"{\"decrementData\":[]}", "decrementData"},
        {"{}", "decrementData"},
        {"{\"decrementData\":[1]}", "decrementData[0]"},
        {"{\"decrementData\":[{\"decrementBy\":1}]}", "decrementData[0].inventoryItemId"},
        {"{\"decrementData\":[{\"inventoryItemId\":\"x\",\"decrementBy\":1}]}",
         "decrementData[0].inventoryItemId"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t_resp r = bulk("/decrement", bad[i].body);
        expect_wix_error(&r, 400, bad[i].field);
    }
    const int bys[] = {0, -1, 100000};
    const char *ids[] = {a, a};
    for (size_t i = 0; i < 3; i++) {
        bulk_body(body, sizeof body, true, ids, (int[]){1, bys[i]}, 2);
        t_resp r = bulk("/decrement", body);
        expect_wix_error(&r, 400, "decrementData[1].decrementBy");
    }
    snprintf(body, sizeof body,
             "{\"incrementData\":[{\"inventoryItemId\":\"%s\",\"incrementBy\":\"1\"}]}", a);
    t_resp r = bulk("/increment", body);
    expect_wix_error(&r, 400, "incrementData[0].incrementBy");
    /* an unknown level after a good line: 404, the good line not applied */
    const char *mixed[] = {a, "0000abcd-0000-0000-0000-000000000001"};
    bulk_body(body, sizeof body, true, mixed, (int[]){1, 1}, 2);
    r = bulk("/decrement", body);
    expect_wix_error(&r, 404, "INVENTORY_ITEM_NOT_FOUND");
    /* over WIX_BULK_LINES_MAX (100) lines */
    size_t len = (size_t)snprintf(body, sizeof body, "{\"decrementData\":[");
    for (int i = 0; i < 101; i++)
        len +=
            (size_t)snprintf(body + len, sizeof body - len,
                             "%s{\"inventoryItemId\":\"%s\",\"decrementBy\":1}", i ? "," : "", a);
    snprintf(body + len, sizeof body - len, "]}");
    r = bulk("/decrement", body);
    expect_wix_error(&r, 400, "decrementData");
    cr_assert_eq(available_of(item_of(a), 1), 5, "nothing changed");
}

#define SALE_THREADS 16
#define SALE_A 100
#define SALE_B 60
#define SALE_TRIES_MAX 400 /* per buyer: more than any stock, so every loop ends */

/* One decrement request on a buyer's connection: its status. */
typedef long (*sale_send_fn)(void *conn, const char *body);

typedef struct {
    _Atomic long refused, other;
} sale_tally;

/* A buyer: sends body until refused (422), counting each 200 in *ok; any
 * other status is a failure. The in-process and the HTTP sales share it. */
static void buy_until_refused(sale_send_fn send, void *conn, const char *body, _Atomic long *ok,
                              sale_tally *t, size_t index)
{
    for (int i = 0; i < SALE_TRIES_MAX; i++) {
        long st = send(conn, body);
        /* relaxed: counters read after the threads are joined */
        if (st == 200) {
            atomic_fetch_add_explicit(ok, 1, memory_order_relaxed);
        } else if (st == 422) {
            atomic_fetch_add_explicit(&t->refused, 1, memory_order_relaxed);
            return; /* sold out for this buyer */
        } else {
            atomic_fetch_add_explicit(&t->other, 1, memory_order_relaxed);
            TU_CHECK(false, "buyer %zu: status %ld", index, st);
            return;
        }
    }
    TU_CHECK(false, "buyer %zu: never refused in %d tries", index, SALE_TRIES_MAX);
}

static long send_to_handler(void *conn, const char *body)
{
    t_resp *r = conn;
    t_call_into(E, HTTP_POST, "/decrement", NULL, body, r);
    yajl_tree_free(r->json);
    return r->status;
}

typedef struct {
    char a[37], b[37];
    _Atomic long ok_pair, ok_double;
    sale_tally t;
} sale_arg;

/* Even threads buy one of A and one of B together; odd threads two of A. */
static void sale_buyer(void *p, size_t index)
{
    sale_arg *s = p;
    char body[512];
    t_resp *r = malloc(sizeof *r);
    TU_CHECK(r != NULL, "no memory");
    if (r == NULL)
        return;
    if (index % 2 == 0)
        bulk_body(body, sizeof body, true, (const char *const[]){s->a, s->b}, (int[]){1, 1}, 2);
    else
        bulk_body(body, sizeof body, true, (const char *const[]){s->a}, (int[]){2}, 1);
    buy_until_refused(send_to_handler, r, body, index % 2 ? &s->ok_double : &s->ok_pair, &s->t,
                      index);
    free(r);
}

Test(http_wix, concurrent_decrements_never_oversell_and_conserve_units)
{
    static sale_arg s;
    create_ok(VAR1, LOC1G, "\"quantity\":100", "", s.a);
    create_ok(VAR2, LOC1G, "\"quantity\":60", "", s.b);
    tu_run_threads(SALE_THREADS, sale_buyer, &s);
    tu_assert_no_failures();
    long pair = atomic_load_explicit(&s.ok_pair, memory_order_relaxed);
    long dbl = atomic_load_explicit(&s.ok_double, memory_order_relaxed);
    int64_t a = available_of(item_of(s.a), 1), b = available_of(item_of(s.b), 1);
    cr_assert_eq(atomic_load_explicit(&s.t.other, memory_order_relaxed), 0);
    cr_assert_eq(atomic_load_explicit(&s.t.refused, memory_order_relaxed), SALE_THREADS,
                 "every buyer ended on a refusal");
    cr_assert(a >= 0 && b >= 0, "never below 0: a %lld b %lld", (long long)a, (long long)b);
    cr_assert_eq(SALE_A - a, pair + 2 * dbl, "A: units sold = units gone");
    cr_assert_eq(SALE_B - b, pair, "B: units sold = units gone");
    cr_assert(a < 2 || b == 0, "the sale ran until its buyers were refused");
}

/* ---- query ---------------------------------------------------------------- */

/* POST /query with body; the ids of the page into ids (appended at *n) and
 * the next cursor into next ("" when none). Returns hasNext. */
static bool query_page(const char *body, char ids[][37], size_t *n, size_t cap, char *next)
{
    t_resp r = call(HTTP_POST, "/query", NULL, body);
    cr_assert_eq(r.status, 200, "%s: %d %s", body, r.status, r.text);
    yajl_val items = jget(r.json, "inventoryItems"), pm = jget(r.json, "pagingMetadata");
    cr_assert(items && YAJL_IS_ARRAY(items) && pm, "%s", r.text);
    cr_assert_eq((size_t)jint(pm, "count"), items->u.array.len);
    for (size_t i = 0; i < items->u.array.len; i++) {
        cr_assert_lt(*n, cap);
        snprintf(ids[(*n)++], 37, "%s", jstr(items->u.array.values[i], "_id"));
    }
    bool more = jbool(pm, "hasNext");
    yajl_val nx = jget(jget(pm, "cursors"), "next");
    cr_assert_eq(nx != NULL, more, "a next cursor exactly when hasNext: %s", r.text);
    snprintf(next, 256, "%s", nx ? nx->u.string : "");
    t_free(&r);
    return more;
}

/* Every page of a query (filter JSON or "") at limit; the ids into ids. */
static size_t query_all(const char *filter, int limit, char ids[][37], size_t cap)
{
    char body[1024], next[256] = "";
    size_t n = 0;
    bool more;
    int pages = 0;
    snprintf(body, sizeof body, "{\"query\":{%s%s\"cursorPaging\":{\"limit\":%d}}}", filter,
             filter[0] ? "," : "", limit);
    do {
        more = query_page(body, ids, &n, cap, next);
        /* the filter beside a cursor is ignored: the cursor carries it */
        snprintf(body, sizeof body,
                 "{\"query\":{%s%s\"cursorPaging\":{\"limit\":%d,\"cursor\":\"%s\"}}}", filter,
                 filter[0] ? "," : "", limit, next);
        cr_assert_lt(++pages, 100, "paging ends");
    } while (more);
    return n;
}

static bool has_id(char ids[][37], size_t n, const char *id)
{
    size_t seen = 0;
    for (size_t i = 0; i < n; i++)
        seen += strcmp(ids[i], id) == 0;
    cr_assert_leq(seen, 1, "%s listed %zu times", id, seen);
    return seen == 1;
}

Test(http_wix, query_filters_and_pages_through_every_level_once)
{
    char v1a[37], v1b[37], v2a[37], v3b[37], plain[37], ids[64][37];
    const char *p1 = ",\"productId\":\"" PROD1 "\"";
    create_ok(VAR1, LOC1G, "\"quantity\":1", p1, v1a);
    create_ok(VAR1, LOC2G, "\"quantity\":2", p1, v1b);
    create_ok(VAR2, LOC1G, "\"quantity\":3", p1, v2a);
    create_ok(VAR3, LOC2G, "\"quantity\":4", ",\"productId\":\"" PROD2 "\"", v3b);
    /* a level made over the engine, of an item without a variant */
    cr_assert_eq(inv_item_put(E, 500, &(inv_item_fields){.mask = INV_ITEM_SKU, .sku = "P500"}),
                 INV_OK);
    cr_assert_eq(inv_level_set(E, 500, 1, 9, 0, NULL), INV_OK);
    t_guid(500, 1, plain);
    /* by variant: by location, a page each */
    size_t n = query_all("\"filter\":{\"variantId\":\"" VAR1_UPPER "\"}", 1, ids, 64);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ids[0], v1a);
    cr_assert_str_eq(ids[1], v1b);
    /* by product: items by id, each by location */
    n = query_all("\"filter\":{\"productId\":{\"$eq\":\"" PROD1 "\"}}", 2, ids, 64);
    cr_assert_eq(n, 3);
    cr_assert(has_id(ids, n, v1a) && has_id(ids, n, v1b) && has_id(ids, n, v2a));
    for (size_t i = 1; i < n; i++)
        cr_assert_lt(strcmp(ids[i - 1], ids[i]), 0, "item then location ascending");
    /* by location, and everything: each level exactly once */
    n = query_all("\"filter\":{\"locationId\":\"" LOC1G "\"}", 1, ids, 64);
    cr_assert_eq(n, 3);
    cr_assert(has_id(ids, n, v1a) && has_id(ids, n, v2a) && has_id(ids, n, plain));
    n = query_all("", 2, ids, 64);
    cr_assert_eq(n, 5);
    cr_assert(has_id(ids, n, v1a) && has_id(ids, n, v1b) && has_id(ids, n, v2a) &&
              has_id(ids, n, v3b) && has_id(ids, n, plain));
    /* combinations and single ids */
    n = query_all("\"filter\":{\"variantId\":\"" VAR1 "\",\"locationId\":\"" LOC2G "\"}", 10, ids,
                  64);
    cr_assert(n == 1 && strcmp(ids[0], v1b) == 0);
    n = query_all("\"filter\":{\"productId\":\"" PROD1 "\",\"locationId\":\"" LOC2G "\"}", 10, ids,
                  64);
    cr_assert(n == 1 && strcmp(ids[0], v1b) == 0);
    char f[128];
    snprintf(f, sizeof f, "\"filter\":{\"_id\":{\"$eq\":\"%s\"}}", v3b);
    n = query_all(f, 10, ids, 64);
    cr_assert(n == 1 && strcmp(ids[0], v3b) == 0);
    n = query_all("\"filter\":{\"variantId\":\"" PROD2 "\"}", 10, ids, 64);
    cr_assert_eq(n, 0, "an unknown variant: nothing");
    n = query_all("\"filter\":{\"locationId\":\"" LOC9G "\"}", 10, ids, 64);
    cr_assert_eq(n, 0, "an unknown location: nothing");
    /* no query at all: everything, the default limit */
    t_resp r = call(HTTP_POST, "/query", NULL, "{}");
    cr_assert_eq(jget(r.json, "inventoryItems")->u.array.len, 5, "%s", r.text);
    t_free(&r);
}

Test(http_wix, query_refuses_what_it_cannot_do_exactly)
{
    const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"query\":", "body"},
        {"{\"query\":[]}", "query"},
        {"{\"query\":{\"filter\":{\"variantId\":{\"$in\":[\"" VAR1 "\"]}}}}", "query.filter"},
        {"{\"query\":{\"filter\":{\"quantity\":5}}}", "query.filter"},
        {"{\"query\":{\"filter\":{\"quantity\":\"5\"}}}", "query.filter.quantity"},
        {"{\"query\":{\"filter\":{\"variantId\":\"x\"}}}", "query.filter.variantId"},
        {"{\"query\":{\"filter\":{\"locationId\":\"" VAR1 "\"}}}", "query.filter.locationId"},
        {"{\"query\":{\"filter\":{\"variantId\":\"" VAR1 "\",\"productId\":\"" PROD1 "\"}}}",
         "query.filter.productId"},
        {"{\"query\":{\"filter\":{\"_id\":\"" LOC1G "\",\"locationId\":\"" LOC1G "\"}}}",
         "query.filter"},
        {"{\"query\":{\"filter\":[]}}", "query.filter"},
        {"{\"query\":{\"sort\":[{\"fieldName\":\"quantity\"}]}}", "query.sort"},
        {"{\"query\":{\"paging\":{\"offset\":10}}}", "query.paging"},
        {"{\"query\":{\"cursorPaging\":{\"limit\":0}}}", "query.cursorPaging.limit"},
        {"{\"query\":{\"cursorPaging\":{\"limit\":1001}}}", "query.cursorPaging.limit"},
        {"{\"query\":{\"cursorPaging\":{\"limit\":\"5\"}}}", "query.cursorPaging.limit"},
        {"{\"query\":{\"cursorPaging\":7}}", "query.cursorPaging"},
        {"{\"query\":{\"cursorPaging\":{\"cursor\":\"zz\"}}}", "query.cursorPaging.cursor"},
        {"{\"query\":{\"cursorPaging\":{\"cursor\":5}}}", "query.cursorPaging.cursor"},
        /* well-formed hex, but mode 'I' (never paged) and a bad version */
        {"{\"query\":{\"cursorPaging\":{\"cursor\":\"0149000000000000000000000000000000000000000"
         "00000000000000000000000000000\"}}}",
         "query.cursorPaging.cursor"},
        {"{\"query\":{\"cursorPaging\":{\"cursor\":\"0241000000000000000000000000000000000000000"
         "00000000000000000000000000000\"}}}",
         "query.cursorPaging.cursor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t_resp r = call(HTTP_POST, "/query", NULL, bad[i].body);
        cr_assert_eq(r.status, 400, "case %zu %s: %d %s", i, bad[i].body, r.status, r.text);
        expect_wix_error(&r, 400, bad[i].field);
    }
    /* the cursor of mode 'A' at position 0 is a valid one: the first page */
    t_resp r = call(HTTP_POST, "/query", NULL,
                    "{\"query\":{\"cursorPaging\":{\"cursor\":\"014100000000000000000000000000"
                    "000000000000000000000000000000000000000000\"}}}");
    cr_assert_eq(r.status, 200, "%s", r.text);
    t_free(&r);
}

/* ---- durability and the seed ------------------------------------------------ */

Test(http_wix, writes_name_their_journal_position_and_refusals_none)
{
    char dir[128], id[37], body[256];
    tu_tmpdir(dir, sizeof dir, "http-wix");
    inv_config cfg = {
        .data_dir = dir, .fsync_policy = INV_FSYNC_INTERVAL, .defer_durability = true};
    inv_engine *d = tu_open_config(&cfg);
    cr_assert_eq(inv_location_put(d, 1, &(inv_location_fields){.active = true}), INV_OK);
    t_resp r = call_on(d, HTTP_POST, "", NULL, IT(V1 ",\"quantity\":3"));
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_gt(r.durable_at, 0);
    cr_assert_eq(r.durable_at, inv_last_write_position());
    uint64_t first = r.durable_at;
    snprintf(id, sizeof id, "%s", jstr(jitem(&r), "_id"));
    unsigned long long rev = jrev(jitem(&r));
    t_free(&r);
    snprintf(body, sizeof body, "{\"inventoryItem\":{\"revision\":\"%llu\",\"quantity\":4}}", rev);
    r = call_on(d, HTTP_PATCH, "/{id}", id, body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_gt(r.durable_at, first);
    first = r.durable_at;
    t_free(&r);
    snprintf(body, sizeof body,
             "{\"decrementData\":[{\"inventoryItemId\":\"%s\",\"decrementBy\":1}]}", id);
    r = call_on(d, HTTP_POST, "/decrement", NULL, body);
    cr_assert_eq(r.status, 200, "%s", r.text);
    cr_assert_gt(r.durable_at, first);
    t_free(&r);
    r = call_on(d, HTTP_GET, "/{id}", id, NULL);
    cr_assert_eq(r.durable_at, 0, "a read waits for nothing");
    t_free(&r);
    r = call_on(d, HTTP_PATCH, "/{id}", id, body);
    expect_wix_error(&r, 400, "inventoryItem");
    inv_close(d);
    tu_remove_tree(dir);
}

/* The seed's object (004) as a client writes it: every field, with realistic
 * values; read-only ones (revision, _id, dates, trackQuantity,
 * availabilityStatus, product) and extendedFields are ignored on input. */
#define SEED_CREATE                                                                                \
    "{\"inventoryItem\":{\"_id\":\"00000000-0000-0000-0000-000000000000\",\"revision\":\"42\","    \
    "\"_createdDate\":\"2024-05-01T10:00:00.000Z\",\"_updatedDate\":\"2024-05-01T10:00:00.000Z\"," \
    "\"variantId\":\"" VAR1 "\",\"locationId\":\"" LOC2G "\",\"productId\":\"" PROD1 "\","         \
    "\"trackQuantity\":false,\"availabilityStatus\":\"OUT_OF_STOCK\","                             \
    "\"preorderInfo\":{\"enabled\":true,\"message\":\"Ships in 2 weeks\",\"limit\":10},"           \
    "\"product\":{\"name\":\"Linen shirt\"},"                                                      \
    "\"extendedFields\":{\"namespaces\":{\"@acme/stock\":{\"bin\":\"A-12\"}}},"                    \
    "\"quantity\":25}}"

/* The writable and derived fields of the seed's object, as answered. */
static void expect_seed_item(yajl_val it)
{
    char id[37];
    t_guid(t_variant_id(VAR1, 0), 2, id);
    cr_assert_str_eq(jstr(it, "_id"), id);
    cr_assert_gt(jrev(it), 0);
    cr_assert_str_eq(jstr(it, "variantId"), VAR1);
    cr_assert_str_eq(jstr(it, "locationId"), LOC2G);
    cr_assert_str_eq(jstr(it, "productId"), PROD1);
    cr_assert(jbool(it, "trackQuantity"));
    cr_assert_eq(jint(it, "quantity"), 25);
    cr_assert_null(jget(it, "inStock"));
    cr_assert_str_eq(jstr(it, "availabilityStatus"), "IN_STOCK");
    yajl_val p = jget(it, "preorderInfo");
    cr_assert(jbool(p, "enabled"));
    cr_assert_eq(jint(p, "limit"), 10);
    cr_assert_null(jget(p, "message"), "not stored (documented)");
    cr_assert_str_eq(jstr(jget(it, "product"), "productId"), PROD1);
    cr_assert_str_eq(jstr(jget(it, "product"), "variantId"), VAR1);
    cr_assert_null(jget(it, "extendedFields"), "not stored (documented)");
    const char *dates[] = {"_createdDate", "_updatedDate"};
    for (size_t i = 0; i < 2; i++) {
        const char *d = jstr(it, dates[i]);
        cr_assert_eq(strlen(d), 24, "%s", d); /* 2026-12-06T20:30:41.000Z */
        cr_assert(d[4] == '-' && d[10] == 'T' && d[19] == '.' && d[23] == 'Z', "%s", d);
        cr_assert_neq(strncmp(d, "2024-05-01", 10), 0, "the engine's time, not the input's");
    }
}

Test(http_wix, the_seed_object_round_trips_field_for_field)
{
    t_resp r = call(HTTP_POST, "", NULL, SEED_CREATE);
    yajl_val it = jitem(&r);
    expect_seed_item(it);
    char created[T_TEXT_MAX];
    snprintf(created, sizeof created, "%s", r.text);
    char id[37];
    snprintf(id, sizeof id, "%s", jstr(it, "_id"));
    t_free(&r);
    r = call(HTTP_GET, "/{id}", id, NULL);
    expect_seed_item(jitem(&r));
    cr_assert_str_eq(r.text, created, "GET answers what the create answered");
    t_free(&r);
    /* the object read back, sent back as an update with its revision */
    char body[T_TEXT_MAX];
    snprintf(body, sizeof body, "%s", created);
    r = call(HTTP_PATCH, "/{id}", id, body);
    expect_seed_item(jitem(&r));
    t_free(&r);
}

/* ---- layer 2: libcurl through a real invcored ------------------------------- */

#include "test_http_client.h"
#include "test_server_harness.h"

#define HTTP_SALE_CLIENTS 32 /* keep-alive connections of the flash sale */
#define HTTP_SALE_STOCK 300
_Static_assert(HTTP_SALE_STOCK < SALE_TRIES_MAX, "a buyer alone can sell out, then be refused");
#define HTTP_BIG_BODY (2u << 20) /* over invcored's default body limit (1 MiB) */

static int http_port;

/* extra: invcored's flags; pass: its --requirepass (NULL: none). */
static void srv_wix_start(const char *const *extra, const char *pass)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    srv_suite_start(extra);
    http_port = srv_http_port(&S);
    if (pass)
        expect_status(C, "OK", "AUTH %s", pass);
    expect_status(C, "OK", "LOC.SET 1 name Main");
    expect_status(C, "OK", "LOC.SET 2 name Second");
}

static void srv_wix_stop(void)
{
    srv_suite_stop();
    curl_global_cleanup();
}

/* One exchange; with INVCORE_WIX_DOC set it is printed for the docs. */
static long wdo(CURL *c, const char *method, const char *path, const char *body, hc_resp *r)
{
    long st = hc_do(c, http_port, method, path, NULL, body, r);
    if (getenv("INVCORE_WIX_DOC"))
        fprintf(stderr, "\n#### %s %s\n%s%s\n-> %ld\n%s\n", method, path, body ? body : "",
                body ? "" : "(no body)", st, r->body);
    return st;
}

/* An answer's inventoryItem (r parsed), asserting the status. */
static yajl_val http_item(hc_resp *r, long want)
{
    cr_assert_eq(r->status, want, "%ld: %s", r->status, r->body);
    yajl_val it = hc_get(r->json, "inventoryItem");
    cr_assert_not_null(it, "%s", r->body);
    return it;
}

static void http_expect_error(hc_resp *r, long status, const char *needle)
{
    cr_assert_eq(r->status, status, "want %ld: %ld %s", status, r->status, r->body);
    cr_assert_not_null(hc_get(r->json, "message"), "%s", r->body);
    cr_assert_not_null(hc_get(r->json, "details"), "%s", r->body);
    cr_assert(strstr(r->body, needle) != NULL, "no %s in %s", needle, r->body);
    hc_free(r);
}

TestSuite(wix_server, .fini = srv_wix_stop);

Test(wix_server, every_route_with_the_seed_object)
{
    srv_wix_start(NULL, NULL);
    CURL *c = curl_easy_init();
    hc_resp *r = calloc(1, sizeof *r);
    cr_assert(c && r);
    cr_assert_eq(wdo(c, "POST", T_BASE, SEED_CREATE, r), 200, "%s", r->body);
    cr_assert_str_eq(r->content_type, "application/json; charset=utf-8");
    expect_seed_item(http_item(r, 200));
    char id[37], path[128], body[512];
    snprintf(id, sizeof id, "%s", hc_get(hc_get(r->json, "inventoryItem"), "_id")->u.string);
    hc_free(r);
    snprintf(path, sizeof path, T_BASE "/%s", id);
    wdo(c, "GET", path, NULL, r);
    expect_seed_item(http_item(r, 200));
    unsigned long long rev = jrev(http_item(r, 200));
    hc_free(r);
    snprintf(body, sizeof body,
             "{\"inventoryItem\":{\"revision\":\"%llu\",\"quantity\":30,"
             "\"preorderInfo\":{\"enabled\":true,\"limit\":5}}}",
             rev);
    wdo(c, "PATCH", path, body, r);
    yajl_val it = http_item(r, 200);
    cr_assert_eq(jint(it, "quantity"), 30);
    cr_assert_eq(jint(jget(it, "preorderInfo"), "limit"), 5);
    cr_assert_gt(jrev(it), rev);
    hc_free(r);
    /* stale revision: 409 */
    wdo(c, "PATCH", path, body, r);
    http_expect_error(r, 409, "REVISION_MISMATCH");
    snprintf(body, sizeof body,
             "{\"decrementData\":[{\"inventoryItemId\":\"%s\",\"decrementBy\":32}]}", id);
    wdo(c, "POST", T_BASE "/decrement", body, r);
    cr_assert_eq(r->status, 200, "%s", r->body);
    it = hc_get(r->json, "inventoryItems")->u.array.values[0];
    cr_assert_eq(jint(it, "quantity"), -2);
    cr_assert_str_eq(jstr(it, "availabilityStatus"), "PREORDER");
    hc_free(r);
    wdo(c, "POST", T_BASE "/decrement", body, r);
    http_expect_error(r, 422, "INSUFFICIENT_INVENTORY");
    snprintf(body, sizeof body,
             "{\"incrementData\":[{\"inventoryItemId\":\"%s\",\"incrementBy\":12}]}", id);
    wdo(c, "POST", T_BASE "/increment", body, r);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_eq(jint(hc_get(r->json, "inventoryItems")->u.array.values[0], "quantity"), 10);
    hc_free(r);
    /* the variant at a second location, then its levels a page at a time */
    wdo(c, "POST", T_BASE, IT(V1 ",\"locationId\":\"" LOC1G "\",\"inStock\":true"), r);
    cr_assert(!jbool(http_item(r, 200), "trackQuantity"), "inStock: the item is untracked");
    hc_free(r);
    wdo(c, "POST", T_BASE "/query",
        "{\"query\":{\"filter\":{\"variantId\":\"" VAR1 "\"},\"cursorPaging\":{\"limit\":1}}}", r);
    cr_assert_eq(r->status, 200, "%s", r->body);
    yajl_val pm = hc_get(r->json, "pagingMetadata");
    cr_assert_str_eq(jstr(hc_get(r->json, "inventoryItems")->u.array.values[0], "locationId"),
                     LOC1G, "by location");
    cr_assert(jbool(pm, "hasNext"));
    snprintf(body, sizeof body, "{\"query\":{\"cursorPaging\":{\"limit\":1,\"cursor\":\"%s\"}}}",
             jstr(jget(pm, "cursors"), "next"));
    hc_free(r);
    wdo(c, "POST", T_BASE "/query", body, r);
    cr_assert_eq(r->status, 200, "%s", r->body);
    it = hc_get(r->json, "inventoryItems")->u.array.values[0];
    cr_assert_str_eq(jstr(it, "_id"), id);
    cr_assert(!jbool(it, "trackQuantity"), "tracking is the item's: both locations switched");
    cr_assert(jbool(it, "inStock"));
    cr_assert_null(jget(it, "quantity"));
    cr_assert(!jbool(hc_get(r->json, "pagingMetadata"), "hasNext"));
    hc_free(r);
    wdo(c, "DELETE", path, NULL, r);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(r->body, "{}");
    hc_free(r);
    wdo(c, "GET", path, NULL, r);
    http_expect_error(r, 404, "INVENTORY_ITEM_NOT_FOUND");
    free(r);
    curl_easy_cleanup(c);
}

Test(wix_server, bad_input_is_refused_in_the_wix_shape)
{
    srv_wix_start(NULL, NULL);
    CURL *c = curl_easy_init();
    hc_resp *r = calloc(1, sizeof *r);
    cr_assert(c && r);
    const struct {
        const char *body, *needle;
    } bad[] = {
        {"{\"inventoryItem\":", "invalid JSON"},
        {IT("\"variantId\":7,\"quantity\":1"), "inventoryItem.variantId"},
        {IT("\"variantId\":\"3c8a2fe5-0b4a-4b2e-9d1e-7f6b1c2d3e4\",\"quantity\":1"),
         "inventoryItem.variantId"},
        {IT(V1 ",\"locationId\":\"6d3c1f0e-2b4a-4c8d-9e7f-1a2b3c4d5e6f\",\"quantity\":1"),
         "494e5643-4f52-4500-XXXX-XXXXXXXXXXXX"},
        {IT(V1 ",\"quantity\":100000"), "inventoryItem.quantity"},
        {IT(V1 ",\"quantity\":-100000"), "inventoryItem.quantity"},
        {IT(V1 ",\"quantity\":1,\"inStock\":true"), "ONE_OF"},
        {IT(V1 ",\"inStock\":1"), "inventoryItem.inStock"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wdo(c, "POST", T_BASE, bad[i].body, r);
        http_expect_error(r, 400, bad[i].needle);
    }
    wdo(c, "POST", T_BASE, IT(V1 ",\"quantity\":1"), r);
    char id[37], path[128];
    snprintf(id, sizeof id, "%s", jstr(http_item(r, 200), "_id"));
    hc_free(r);
    snprintf(path, sizeof path, T_BASE "/%s", id);
    wdo(c, "PATCH", path, IT("\"quantity\":2"), r);
    http_expect_error(r, 400, "inventoryItem.revision");
    wdo(c, "PATCH", path, IT("\"revision\":\"999999999\",\"quantity\":2"), r);
    http_expect_error(r, 409, "REVISION_MISMATCH");
    /* a change over RESP between the read and the update: the update is
     * refused, never overwrites it */
    wdo(c, "GET", path, NULL, r);
    unsigned long long rev = jrev(http_item(r, 200));
    hc_free(r);
    redisReply *rep = cmd(C, "LEVEL.ADJUST %llu 1 4", (unsigned long long)item_of(id));
    cr_assert(rep->type != REDIS_REPLY_ERROR, "LEVEL.ADJUST: %s", rep->str);
    freeReplyObject(rep);
    char body[256];
    snprintf(body, sizeof body, IT("\"revision\":\"%llu\",\"quantity\":2"), rev);
    wdo(c, "PATCH", path, body, r);
    http_expect_error(r, 409, "REVISION_MISMATCH");
    wdo(c, "GET", path, NULL, r);
    cr_assert_eq(jint(http_item(r, 200), "quantity"), 5, "the RESP change stands");
    hc_free(r);
    wdo(c, "GET", T_BASE "/not-a-guid", NULL, r);
    http_expect_error(r, 400, "inventoryItemId");
    /* a body over the listener's limit: 413 before any handler */
    char *big = malloc(HTTP_BIG_BODY + 1);
    cr_assert_not_null(big);
    memset(big, ' ', HTTP_BIG_BODY);
    memcpy(big, "{\"inventoryItem\":{", 18);
    big[HTTP_BIG_BODY - 2] = '}';
    big[HTTP_BIG_BODY - 1] = '}';
    big[HTTP_BIG_BODY] = '\0';
    long st = hc_do(c, http_port, "POST", T_BASE, NULL, big, r);
    cr_assert_eq(st, 413, "%ld %s", st, r->body);
    hc_free(r);
    free(big);
    /* methods: HEAD and OPTIONS answered, others 405 with Allow */
    st = hc_do(c, http_port, "HEAD", path, NULL, NULL, r);
    cr_assert_eq(st, 200);
    cr_assert_eq(r->len, 0, "HEAD has no body");
    st = hc_do(c, http_port, "OPTIONS", path, NULL, NULL, r);
    cr_assert_eq(st, 204);
    cr_assert_str_eq(r->allow, "GET, HEAD, PATCH, DELETE, OPTIONS");
    const struct {
        const char *method, *path, *allow;
    } no[] = {
        {"PUT", path, "GET, HEAD, PATCH, DELETE, OPTIONS"},
        {"POST", path, "GET, HEAD, PATCH, DELETE, OPTIONS"},
        {"GET", T_BASE, "POST, OPTIONS"},
        {"DELETE", T_BASE, "POST, OPTIONS"},
        {"PUT", T_BASE "/decrement", "GET, HEAD, POST, PATCH, DELETE, OPTIONS"},
        {"TRACE", path, "GET, HEAD, PATCH, DELETE, OPTIONS"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        st = hc_do(c, http_port, no[i].method, no[i].path, NULL, NULL, r);
        cr_assert_eq(st, 405, "%s %s: %ld %s", no[i].method, no[i].path, st, r->body);
        cr_assert_str_eq(r->allow, no[i].allow, "%s %s", no[i].method, no[i].path);
        hc_free(r);
    }
    free(r);
    curl_easy_cleanup(c);
}

Test(wix_server, a_token_is_required_when_a_password_is_set)
{
    const char *const extra[] = {"--requirepass", "s3cret", NULL};
    srv_wix_start(extra, "s3cret");
    CURL *c = curl_easy_init();
    hc_resp *r = calloc(1, sizeof *r);
    cr_assert(c && r);
    long st = hc_do(c, http_port, "POST", T_BASE "/query", NULL, "{}", r);
    cr_assert_eq(st, 401, "%ld %s", st, r->body);
    hc_free(r);
    const char *const wrong[] = {"Authorization: Bearer nope", NULL};
    st = hc_do(c, http_port, "POST", T_BASE "/query", wrong, "{}", r);
    cr_assert_eq(st, 401, "%ld %s", st, r->body);
    hc_free(r);
    const char *const good[] = {"Authorization: Bearer s3cret", NULL};
    st = hc_do(c, http_port, "POST", T_BASE "/query", good, "{}", r);
    cr_assert_eq(st, 200, "%ld %s", st, r->body);
    hc_free(r);
    free(r);
    curl_easy_cleanup(c);
}

static char http_sale_id[37];
static _Atomic long http_sale_ok;
static sale_tally http_sale;

typedef struct {
    CURL *c;
    hc_resp *r;
} http_conn_t;

static long send_over_http(void *conn, const char *body)
{
    http_conn_t *h = conn;
    long st = hc_do(h->c, http_port, "POST", T_BASE "/decrement", NULL, body, h->r);
    hc_free(h->r);
    return st;
}

/* One buyer: its own keep-alive connection, decrement 1 until refused. */
static void http_sale_buyer(void *arg, size_t index)
{
    (void)arg;
    char body[256];
    http_conn_t h = {curl_easy_init(), calloc(1, sizeof(hc_resp))};
    TU_CHECK(h.c != NULL && h.r != NULL, "client %zu: no memory", index);
    snprintf(body, sizeof body,
             "{\"decrementData\":[{\"inventoryItemId\":\"%s\",\"decrementBy\":1}]}", http_sale_id);
    if (h.c != NULL && h.r != NULL)
        buy_until_refused(send_over_http, &h, body, &http_sale_ok, &http_sale, index);
    free(h.r);
    if (h.c)
        curl_easy_cleanup(h.c);
}

Test(wix_server, a_flash_sale_of_keep_alive_clients_never_oversells)
{
    srv_wix_start(NULL, NULL);
    CURL *c = curl_easy_init();
    hc_resp *r = calloc(1, sizeof *r);
    char body[256], path[128];
    cr_assert(c && r);
    snprintf(body, sizeof body, IT(V1 ",\"quantity\":%d"), HTTP_SALE_STOCK);
    hc_do(c, http_port, "POST", T_BASE, NULL, body, r);
    snprintf(http_sale_id, sizeof http_sale_id, "%s", jstr(http_item(r, 200), "_id"));
    hc_free(r);
    tu_run_threads(HTTP_SALE_CLIENTS, http_sale_buyer, NULL);
    tu_assert_no_failures();
    cr_assert_eq(atomic_load_explicit(&http_sale_ok, memory_order_relaxed), HTTP_SALE_STOCK,
                 "exactly the stock was sold");
    cr_assert_eq(atomic_load_explicit(&http_sale.refused, memory_order_relaxed), HTTP_SALE_CLIENTS,
                 "every client was refused once, at the end");
    cr_assert_eq(atomic_load_explicit(&http_sale.other, memory_order_relaxed), 0);
    snprintf(path, sizeof path, T_BASE "/%s", http_sale_id);
    hc_do(c, http_port, "GET", path, NULL, NULL, r);
    yajl_val it = http_item(r, 200);
    cr_assert_eq(jint(it, "quantity"), 0, "sold out, not below");
    cr_assert_str_eq(jstr(it, "availabilityStatus"), "OUT_OF_STOCK");
    hc_free(r);
    free(r);
    curl_easy_cleanup(c);
}
