/*
 * http_shoplazza.c — the Shoplazza dialect of the HTTP face (issue #13,
 * docs/HTTP.md "Shoplazza"): OpenAPI 2026-01 inventory routes under
 * /openapi/2026-01/, and the 2022-01 "List product inventory" route.
 *
 * Model: a Shoplazza variant is an invcore item's `variant` field, its
 * product the item's `product` field, its inventory item the item itself;
 * an inventory level is an invcore level and its `stock` the level's
 * available quantity.
 *
 * Shapes: 2026-01 answers {"code":"Success","data":{...}}; its errors are
 * {"code":"<Name>","message":"...","errors":["..."]} with the status the
 * seeds name (400 bad input, 404 unknown resource, 422 a well-formed request
 * the state refuses, 500 the engine failed; 401/403/405 come from the
 * listener and router). 64-bit ids travel as JSON strings (the guide's
 * rule) and are read as strings or numbers. The 2022-01 route answers its
 * seed's bare object, location_id as an exact JSON integer, errors as
 * {"errors":["..."]}. Unknown request fields and query keys are ignored
 * (as the platform does); a known one with a wrong type or range is a 400.
 *
 * Invariants: every handler validates all of its input before its one
 * engine write, so a request is applied whole or not at all; a write sets
 * res->durable_at to its journal position; handlers never block, and
 * allocate only for listing pages and products with many rows.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "server/http_json.h"
#include "server/http_route.h"

/* Rows in one listing page: default and most (Shopify's and Shoplazza's
 * 250). A query string longer than this many bytes is refused, so every
 * decoded value fits in a buffer of that size. */
#define SLZ_LIMIT_DEFAULT 50
#define SLZ_LIMIT_MAX 250
#define SLZ_QUERY_BYTES_MAX 8192
/* Variant ids in one inventory_items/variant lookup (ITEM.BYVARIANT's). */
#define SLZ_VARIANT_IDS_MAX INV_MGET_MAX
/* Product inventory rows answered from the stack, and at most (then 422). */
#define SLZ_STOCK_ROWS_STACK 256u
#define SLZ_STOCK_ROWS_MAX (1u << 18)
/* Conditional retries of an update racing other writers of its level. */
#define SLZ_UPDATE_RETRIES_MAX 8
/* Rows beyond limit in a level page's buffer: the scan answers LIMIT only
 * when more levels than its buffer share one hash position. */
#define SLZ_PAGE_SLACK 64
/* Bytes of an error message we write (with the value quoted, truncated). */
#define SLZ_MSG_MAX 256
#define SLZ_ECHO_MAX 64

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- response envelope and errors -------------------------------------- */

/* The 2026-01 success envelope: {"code":"Success","data":{ ... }}. */
static void ok_open(http_response *res)
{
    assert(http_response_ok(res));
    assert(res != NULL && res->body != NULL);
    res->status = 200;
    http_json_obj_open(res->body);
    http_json_key(res->body, "code");
    http_json_cstr(res->body, "Success");
    http_json_key(res->body, "data");
    http_json_obj_open(res->body);
}

static void ok_close(http_response *res)
{
    assert(http_response_ok(res));
    http_json_obj_close(res->body);
    http_json_obj_close(res->body);
}

/* The statuses the seeds name for Shoplazza, each with its error code.
 * Engine results are mapped by the one table (http_status_for), then
 * narrowed to this set: the platform answers no 409 or 503, so a
 * conflict is its 422 and an engine failure its 500. */
static const struct {
    int status;
    const char *code;
} slz_statuses[] = {
    {400, "InvalidParameter"},
    {404, "NotFound"},
    {422, "Unprocessable"},
    {500, "InternalError"},
};

static int slz_status(int status)
{
    if (status == 409)
        return 422;
    return status >= 500 ? 500 : status;
}

static const char *slz_code(int status)
{
    for (size_t i = 0; i < NELEMS(slz_statuses); i++)
        if (slz_statuses[i].status == status)
            return slz_statuses[i].code;
    return "InternalError"; /* defended: a status outside the set */
}

/* An error in the dialect's shape. legacy: the 2022-01 {"errors":[...]}.
 * Whatever the handler had written is dropped first. */
static void fail(http_response *res, bool legacy, int status, const char *code, const char *msg)
{
    assert(http_response_ok(res));
    assert(status >= 400 && status <= 599);
    assert(code != NULL && msg != NULL);
    http_body_reset(res->body);
    res->status = status; /* durable_at stays: a write before a failed read still counts */
    http_json_obj_open(res->body);
    if (!legacy) {
        http_json_key(res->body, "code");
        http_json_cstr(res->body, code);
        http_json_key(res->body, "message");
        http_json_cstr(res->body, msg);
    }
    http_json_key(res->body, "errors");
    http_json_arr_open(res->body);
    http_json_cstr(res->body, msg);
    http_json_arr_close(res->body);
    http_json_obj_close(res->body);
}

/* 400 for input we refuse before the engine sees it; the value is quoted
 * (truncated to SLZ_ECHO_MAX bytes; the writer escapes it). */
static void bad(http_response *res, bool legacy, const char *what, const char *why, http_str val)
{
    assert(http_response_ok(res));
    char msg[SLZ_MSG_MAX];
    int n = (int)(val.len < SLZ_ECHO_MAX ? val.len : SLZ_ECHO_MAX);
    if (val.p != NULL)
        snprintf(msg, sizeof msg, "%s: %s: '%.*s'", what, why, n, val.p);
    else
        snprintf(msg, sizeof msg, "%s: %s", what, why);
    fail(res, legacy, 400, slz_code(400), msg);
}

static const http_str NO_VAL = {NULL, 0};

/* what: the resource a NOTFOUND is about ("Location", ...), NULL: the
 * engine's message. */
static void engine_fail(http_response *res, bool legacy, int rc, const char *what)
{
    assert(http_response_ok(res));
    assert(rc < 0);
    int status = slz_status(http_status_for(rc));
    assert(status >= 400);
    char msg[SLZ_MSG_MAX];
    if (rc == INV_ENOTFOUND && what != NULL)
        snprintf(msg, sizeof msg, "%s not found", what);
    else
        snprintf(msg, sizeof msg, "%s", inv_strerror(rc));
    fail(res, legacy, status, slz_code(status), msg);
}

/* A level call's NOTFOUND names what was missing (the guide's "Location
 * not found"): the location when it does not exist, else the item. */
static const char *level_missing(inv_engine *e, uint64_t loc)
{
    assert(e != NULL);
    inv_location l;
    return inv_location_get(e, loc, &l) == INV_ENOTFOUND ? "Location" : "Inventory item";
}

/* ---- reading input ----------------------------------------------------- */

static bool path_id_or_fail(const http_request *req, http_response *res, size_t i, const char *name,
                            uint64_t *out)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(i < req->n_params);
    if (http_parse_id(req->params[i], out))
        return true;
    bad(res, false, name, "not a decimal id (1 .. 2^64-1, no sign)", req->params[i]);
    return false;
}

/* A product or variant id: 1 .. INV_VARIANT_MAX bytes, no NUL, copied
 * NUL-terminated into out. The path's bytes are taken as they are (UUIDs
 * and other unreserved characters; no percent-decoding). */
static bool text_id(http_str s, char out[INV_VARIANT_MAX + 1])
{
    assert(out != NULL && (s.p != NULL || s.len == 0));
    if (s.len == 0 || s.len > INV_VARIANT_MAX || memchr(s.p, '\0', s.len) != NULL)
        return false;
    memcpy(out, s.p, s.len);
    out[s.len] = '\0';
    assert(s.len >= 1 && s.len <= INV_VARIANT_MAX);
    return true;
}

/* Every query value fits buf once the query is at most SLZ_QUERY_BYTES_MAX
 * (percent-decoding only shrinks), so http_query_get's false means absent. */
typedef struct {
    char buf[SLZ_QUERY_BYTES_MAX + 1];
    size_t len;
} qval;

static bool query_ok_or_fail(const http_request *req, http_response *res, bool legacy)
{
    assert(http_request_ok(req) && http_response_ok(res));
    if (req->query.len <= SLZ_QUERY_BYTES_MAX)
        return true;
    bad(res, legacy, "query", "longer than 8192 bytes", NO_VAL);
    return false;
}

/* How many pairs of the raw query have this key as sent (not decoded):
 * http_query_get answers false both for an absent key and for a value
 * with a bad %-escape, and a bad filter must not read as no filter. */
static size_t query_key_count(http_str q, const char *name)
{
    size_t n = 0, name_len = strlen(name);
    assert(name_len > 0);
    for (size_t at = 0; at < q.len;) {
        const char *pair = q.p + at;
        const char *amp = memchr(pair, '&', q.len - at);
        size_t len = amp ? (size_t)(amp - pair) : q.len - at;
        if (len >= name_len && memcmp(pair, name, name_len) == 0 &&
            (len == name_len || pair[name_len] == '='))
            n++;
        at += len + 1;
    }
    assert(n <= q.len); /* each pair holds the name's bytes at least */
    return n;
}

typedef enum { QV_ABSENT, QV_OK, QV_BAD } qv_state;

static qv_state query_get(const http_request *req, const char *name, qval *v)
{
    assert(http_request_ok(req));
    assert(req->query.len <= SLZ_QUERY_BYTES_MAX);
    if (http_query_get(req->query, name, v->buf, sizeof v->buf, &v->len)) {
        assert(v->len < sizeof v->buf); /* percent-decoding only shrinks */
        return QV_OK;
    }
    return query_key_count(req->query, name) > 0 ? QV_BAD : QV_ABSENT;
}

/* An optional id in the query: *has false when absent; 400 when malformed. */
static bool query_id_or_fail(const http_request *req, http_response *res, bool legacy,
                             const char *name, uint64_t *out, bool *has)
{
    assert(http_request_ok(req) && http_response_ok(res));
    qval v;
    qv_state st = query_get(req, name, &v);
    *has = st != QV_ABSENT;
    if (!*has)
        return true;
    http_str s = {v.buf, st == QV_OK ? v.len : 0};
    if (st == QV_OK && http_parse_id(s, out))
        return true;
    bad(res, legacy, name, "not a decimal id (1 .. 2^64-1, no sign)", s);
    return false;
}

/* limit (1 .. SLZ_LIMIT_MAX, default SLZ_LIMIT_DEFAULT) and cursor (an
 * opaque id from a previous page; absent: the first page). */
static bool page_or_fail(const http_request *req, http_response *res, size_t *limit,
                         uint64_t *cursor)
{
    assert(http_request_ok(req) && http_response_ok(res));
    uint64_t l = SLZ_LIMIT_DEFAULT;
    qval v;
    qv_state st = query_get(req, "limit", &v);
    if (st == QV_BAD ||
        (st == QV_OK && (!http_parse_id((http_str){v.buf, v.len}, &l) || l > SLZ_LIMIT_MAX))) {
        bad(res, false, "limit", "must be 1 .. 250", (http_str){v.buf, st == QV_OK ? v.len : 0});
        return false;
    }
    *limit = (size_t)l;
    *cursor = 0;
    assert(*limit >= 1 && *limit <= SLZ_LIMIT_MAX); /* http_parse_id refuses 0 */
    bool has;
    return query_id_or_fail(req, res, false, "cursor", cursor, &has);
}

/* The request body as a JSON object (NULL after a 400). */
static yajl_val body_or_fail(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char err[128] = "";
    yajl_val v = http_json_parse(&req->body, err, sizeof err);
    if (v == NULL) {
        bad(res, false, "body", err[0] ? err : "malformed JSON", NO_VAL);
        assert(res->status == 400);
        return NULL;
    }
    if (!YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        bad(res, false, "body", "must be a JSON object", NO_VAL);
        return NULL;
    }
    return v;
}

/* An id field (a decimal string or an integer; not 0). required: absent
 * is a 400 too. */
static bool json_id_or_fail(yajl_val o, http_response *res, const char *key, uint64_t *out)
{
    assert(http_response_ok(res));
    bool badv = false;
    if (!http_json_get_u64(o, key, out, &badv)) {
        bad(res, false, key, "is required", NO_VAL);
        return false;
    }
    if (badv || *out == 0) { /* *out is not written when badv */
        bad(res, false, key, "not a decimal id (1 .. 2^64-1, no sign)", NO_VAL);
        return false;
    }
    assert(*out != 0);
    return true;
}

/* A stock quantity: an integer within +-INV_QTY_MAX. *has false when
 * absent (the caller decides whether that is allowed). */
static bool json_stock_or_fail(yajl_val o, http_response *res, int64_t *out, bool *has)
{
    assert(http_response_ok(res));
    bool badv = false;
    *has = http_json_get_i64(o, "stock", out, &badv);
    if (badv || (*has && (*out > INV_QTY_MAX || *out < -INV_QTY_MAX))) {
        bad(res, false, "stock", "must be an integer within +-1000000000", NO_VAL);
        return false;
    }
    return true;
}

/* ---- writing resources ------------------------------------------------- */

static void json_text_or_null(http_body *b, const char *s)
{
    assert(b != NULL && b->len <= b->cap);
    if (s[0] == '\0')
        http_json_null(b);
    else
        http_json_cstr(b, s);
}

static void write_location(http_body *b, const inv_location *l)
{
    assert(b != NULL && b->len <= b->cap);
    const inv_location_fields *f = &l->fields;
    http_json_obj_open(b);
    http_json_key(b, "id");
    http_json_id(b, l->id);
    http_json_key(b, "name");
    http_json_cstr(b, f->name);
    http_json_key(b, "active");
    http_json_bool(b, f->active);
    http_json_key(b, "default");
    http_json_bool(b, l->is_default);
    http_json_key(b, "priority");
    http_json_i64(b, f->priority);
    static const struct {
        const char *key;
        size_t off;
    } text[] = {
        {"address1", offsetof(inv_location_fields, address1)},
        {"address2", offsetof(inv_location_fields, address2)},
        {"city", offsetof(inv_location_fields, city)},
        {"province", offsetof(inv_location_fields, province)},
        {"province_code", offsetof(inv_location_fields, province_code)},
        {"country", offsetof(inv_location_fields, country)},
        {"country_code", offsetof(inv_location_fields, country_code)},
        {"zip", offsetof(inv_location_fields, zip)},
        {"phone", offsetof(inv_location_fields, phone)},
    };
    for (size_t i = 0; i < NELEMS(text); i++) {
        http_json_key(b, text[i].key);
        http_json_cstr(b, (const char *)f + text[i].off);
    }
    http_json_key(b, "created_at");
    http_json_time_iso(b, l->created_at_ms);
    http_json_key(b, "updated_at");
    http_json_time_iso(b, l->updated_at_ms);
    http_json_obj_close(b);
}

static void write_item(http_body *b, const inv_item *it)
{
    assert(b != NULL && b->len <= b->cap);
    const inv_item_fields *f = &it->fields;
    http_json_obj_open(b);
    http_json_key(b, "id");
    http_json_id(b, it->id);
    http_json_key(b, "variant_id");
    json_text_or_null(b, f->variant);
    http_json_key(b, "product_id");
    json_text_or_null(b, f->product);
    http_json_key(b, "sku");
    http_json_cstr(b, f->sku);
    http_json_key(b, "tracked");
    http_json_bool(b, f->tracked);
    http_json_key(b, "cost");
    http_json_cstr(b, f->cost);
    http_json_key(b, "requires_shipping");
    http_json_bool(b, f->requires_shipping);
    http_json_key(b, "country_code_of_origin");
    http_json_cstr(b, f->country_code_of_origin);
    http_json_key(b, "province_code_of_origin");
    http_json_cstr(b, f->province_code_of_origin);
    http_json_key(b, "harmonized_system_code");
    http_json_cstr(b, f->harmonized_system_code);
    http_json_key(b, "created_at");
    http_json_time_iso(b, it->created_at_ms);
    http_json_key(b, "updated_at");
    http_json_time_iso(b, it->updated_at_ms);
    http_json_obj_close(b);
}

static void write_level(http_body *b, uint64_t item, uint64_t loc, int64_t stock,
                        int64_t updated_at_ms)
{
    assert(b != NULL && b->len <= b->cap);
    http_json_obj_open(b);
    http_json_key(b, "inventory_item_id");
    http_json_id(b, item);
    http_json_key(b, "location_id");
    http_json_id(b, loc);
    http_json_key(b, "stock");
    http_json_i64(b, stock);
    http_json_key(b, "updated_at");
    http_json_time_iso(b, updated_at_ms);
    http_json_obj_close(b);
}

/* {"code":"Success","data":{"<key>":<location>}} after re-reading loc. */
static void reply_location(http_response *res, inv_engine *e, uint64_t loc)
{
    assert(http_response_ok(res) && e != NULL);
    inv_location l;
    int rc = inv_location_get(e, loc, &l);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Location");
        return;
    }
    ok_open(res);
    http_json_key(res->body, "location");
    write_location(res->body, &l);
    ok_close(res);
}

/* {"code":"Success","data":{"inventory_level":{...}}}: the level as it is
 * now (stock and updated_at read together). */
static void reply_level(http_response *res, inv_engine *e, uint64_t item, uint64_t loc)
{
    assert(http_response_ok(res) && e != NULL);
    inv_level_full f;
    int rc = inv_level_get_full(e, item, loc, &f);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Inventory level");
        return;
    }
    ok_open(res);
    http_json_key(res->body, "inventory_level");
    write_level(res->body, item, loc, f.qty[INV_QTY_AVAILABLE], f.updated_at_ms);
    ok_close(res);
}

/* "cursor" and "has_more" closing a listing's data. */
static void write_page_end(http_body *b, uint64_t next_cursor)
{
    assert(b != NULL && b->len <= b->cap);
    http_json_key(b, "cursor");
    if (next_cursor == 0)
        http_json_null(b);
    else
        http_json_id(b, next_cursor);
    http_json_key(b, "has_more");
    http_json_bool(b, next_cursor != 0);
}

/* ---- products ----------------------------------------------------------- */

/* GET /openapi/2026-01/products/{product_id}: the product's variants from
 * its items (data.product.variants[].id is the variant id). */
static void h_product_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    char product[INV_VARIANT_MAX + 1];
    if (!text_id(req->params[0], product)) {
        bad(res, false, "product_id", "must be 1 .. 64 bytes", req->params[0]);
        return;
    }
    uint64_t items[INV_PRODUCT_ITEMS_MAX];
    size_t n = 0;
    int rc = inv_product_items(req->e, product, items, NELEMS(items), &n);
    if (rc == INV_OK && n == 0)
        rc = INV_ENOTFOUND; /* a product exists while an item names it */
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Product");
        return;
    }
    assert(n <= NELEMS(items));
    ok_open(res);
    http_body *b = res->body;
    http_json_key(b, "product");
    http_json_obj_open(b);
    http_json_key(b, "id");
    http_json_cstr(b, product);
    http_json_key(b, "variants");
    http_json_arr_open(b);
    for (size_t i = 0; i < n; i++) {
        inv_item it;
        if (inv_item_get(req->e, items[i], &it) != INV_OK)
            continue; /* deleted since: not a variant any more */
        http_json_obj_open(b);
        http_json_key(b, "id");
        json_text_or_null(b, it.fields.variant);
        http_json_key(b, "product_id");
        http_json_cstr(b, product);
        http_json_key(b, "inventory_item_id");
        http_json_id(b, it.id);
        http_json_key(b, "sku");
        http_json_cstr(b, it.fields.sku);
        http_json_key(b, "inventory_tracking");
        http_json_bool(b, it.fields.tracked);
        http_json_key(b, "created_at");
        http_json_time_iso(b, it.created_at_ms);
        http_json_key(b, "updated_at");
        http_json_time_iso(b, it.updated_at_ms);
        http_json_obj_close(b);
    }
    http_json_arr_close(b);
    http_json_obj_close(b);
    ok_close(res);
}

/* Rows of inv_product_inventory: from the stack, or (a product with more
 * rows, bounded by SLZ_STOCK_ROWS_MAX) from one allocation. *heap is what
 * to free. */
static int stock_rows(inv_engine *e, const char *product, const uint64_t *only,
                      inv_stock_row *stack, inv_stock_row **rows, inv_stock_row **heap, size_t *n,
                      int64_t *total)
{
    assert(e != NULL);
    size_t cap = SLZ_STOCK_ROWS_STACK;
    *rows = stack;
    *heap = NULL;
    int rc = inv_product_inventory(e, product, only, stack, cap, n, total);
    if (rc == INV_ELIMIT && *n > cap && *n <= SLZ_STOCK_ROWS_MAX) {
        cap = *n + 64; /* room for rows added since */
        *heap = inv_malloc(cap * sizeof **heap);
        if (*heap == NULL)
            return INV_ENOMEM;
        *rows = *heap;
        rc = inv_product_inventory(e, product, only, *heap, cap, n, total);
    }
    if (rc == INV_OK && *n == 0)
        rc = INV_ENOTFOUND; /* every item appears: no row, no product */
    return rc;
}

/* The variants array of a product inventory: one element per item, its
 * levels as location_items (rows come grouped by item). legacy: exactly
 * the 2022-01 seed's fields, location_id an exact JSON integer. */
static void write_stock_variants(http_body *b, const inv_stock_row *rows, size_t n, bool legacy)
{
    assert(b != NULL && b->len <= b->cap);
    http_json_key(b, "variants");
    http_json_arr_open(b);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        http_json_obj_open(b);
        http_json_key(b, "variant_id");
        json_text_or_null(b, rows[i].variant);
        if (!legacy) {
            http_json_key(b, "inventory_item_id");
            http_json_id(b, rows[i].item);
        }
        http_json_key(b, "location_items");
        http_json_arr_open(b);
        for (; j < n && rows[j].item == rows[i].item; j++) {
            if (!rows[j].has_level)
                continue;
            http_json_obj_open(b);
            http_json_key(b, "location_id");
            if (legacy)
                http_json_u64(b, rows[j].location);
            else
                http_json_id(b, rows[j].location);
            http_json_key(b, "stock");
            http_json_i64(b, rows[j].available);
            http_json_obj_close(b);
        }
        http_json_arr_close(b);
        http_json_obj_close(b);
        assert(j > i);
        i = j;
    }
    http_json_arr_close(b);
}

/* Both versions' product inventory; legacy: 2022-01's bare object. */
static void product_inventory(const http_request *req, http_response *res, bool legacy)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char product[INV_VARIANT_MAX + 1];
    if (!text_id(req->params[0], product)) {
        bad(res, legacy, "product_id", "must be 1 .. 64 bytes", req->params[0]);
        return;
    }
    if (!query_ok_or_fail(req, res, legacy))
        return;
    uint64_t loc = 0;
    bool has_loc = false;
    if (!query_id_or_fail(req, res, legacy, "location_id", &loc, &has_loc))
        return;
    inv_stock_row stack[SLZ_STOCK_ROWS_STACK], *rows, *heap;
    size_t n = 0;
    int64_t total = 0;
    int rc = stock_rows(req->e, product, has_loc ? &loc : NULL, stack, &rows, &heap, &n, &total);
    if (rc != INV_OK) {
        engine_fail(res, legacy, rc, "Product");
        free(heap);
        return;
    }
    http_body *b = res->body;
    if (legacy) {
        res->status = 200;
        http_json_obj_open(b);
    } else {
        ok_open(res);
    }
    http_json_key(b, "product_id");
    http_json_cstr(b, product);
    if (!legacy) {
        http_json_key(b, "Stock"); /* sic: the guide's capital S */
        http_json_i64(b, total);
    }
    write_stock_variants(b, rows, n, legacy);
    if (legacy)
        http_json_obj_close(b);
    else
        ok_close(res);
    free(heap);
}

/* GET /openapi/2026-01/products/{product_id}/inventory[?location_id=] */
static void h_product_inventory(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    product_inventory(req, res, false);
}

/* GET /openapi/2022-01/products/{product_id}/inventory[?location_id=] */
static void h_product_inventory_2022(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    product_inventory(req, res, true);
}

/* ---- inventory items ---------------------------------------------------- */

/* GET /openapi/2026-01/inventory_items/variant?variant_ids=a&variant_ids=b:
 * the items of known variants, in request order (unknown ones are left
 * out, as a lookup does). */
static void h_items_by_variant(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    if (!query_ok_or_fail(req, res, false))
        return;
    /* check every id before answering any */
    qval v;
    size_t at = 0, count = 0;
    while (http_query_next(req->query, "variant_ids", &at, v.buf, sizeof v.buf, &v.len)) {
        char variant[INV_VARIANT_MAX + 1];
        http_str s = {v.buf, v.len};
        if (!text_id(s, variant)) {
            bad(res, false, "variant_ids", "each must be 1 .. 64 bytes", s);
            return;
        }
        if (++count > SLZ_VARIANT_IDS_MAX) {
            bad(res, false, "variant_ids", "at most 250", NO_VAL);
            return;
        }
    }
    if (count != query_key_count(req->query, "variant_ids")) {
        bad(res, false, "variant_ids", "a value is not valid %-encoding", NO_VAL);
        return;
    }
    if (count == 0) {
        bad(res, false, "variant_ids", "is required", NO_VAL);
        return;
    }
    ok_open(res);
    http_json_key(res->body, "variant_inventory_items");
    http_json_arr_open(res->body);
    at = 0;
    while (http_query_next(req->query, "variant_ids", &at, v.buf, sizeof v.buf, &v.len)) {
        char variant[INV_VARIANT_MAX + 1];
        uint64_t item;
        bool ok = text_id((http_str){v.buf, v.len}, variant);
        assert(ok);
        if (!ok || inv_item_by_variant(req->e, variant, &item) != INV_OK)
            continue;
        http_json_obj_open(res->body);
        http_json_key(res->body, "inventory_item_id");
        http_json_id(res->body, item);
        http_json_key(res->body, "variant_id");
        http_json_cstr(res->body, variant);
        http_json_obj_close(res->body);
    }
    http_json_arr_close(res->body);
    ok_close(res);
}

/* A listing of ids (items or locations), one page: each id is read and
 * written by write_one (false: gone since, left out). */
typedef int (*id_lister)(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids,
                         size_t ids_cap, size_t *n_out, uint64_t *next_cursor);
typedef bool (*id_writer)(inv_engine *e, http_body *b, uint64_t id);

static void id_page(const http_request *req, http_response *res, id_lister list,
                    id_writer write_one, const char *key)
{
    assert(http_request_ok(req) && http_response_ok(res));
    size_t limit;
    uint64_t cursor, next = 0;
    if (!query_ok_or_fail(req, res, false) || !page_or_fail(req, res, &limit, &cursor))
        return;
    uint64_t ids[2 * SLZ_LIMIT_MAX]; /* a page may hold a few more than count */
    size_t n = 0;
    int rc = list(req->e, cursor, limit, ids, NELEMS(ids), &n, &next);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, NULL);
        return;
    }
    assert(n <= NELEMS(ids));
    ok_open(res);
    http_json_key(res->body, key);
    http_json_arr_open(res->body);
    for (size_t i = 0; i < n; i++)
        (void)write_one(req->e, res->body, ids[i]);
    http_json_arr_close(res->body);
    write_page_end(res->body, next);
    ok_close(res);
}

static bool write_item_id(inv_engine *e, http_body *b, uint64_t id)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    inv_item it;
    if (inv_item_get(e, id, &it) != INV_OK)
        return false;
    write_item(b, &it);
    return true;
}

static bool write_location_id(inv_engine *e, http_body *b, uint64_t id)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    inv_location l;
    if (inv_location_get(e, id, &l) != INV_OK)
        return false;
    write_location(b, &l);
    return true;
}

/* GET /openapi/2026-01/inventory_items[?limit=&cursor=] */
static void h_items_list(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    id_page(req, res, inv_item_list, write_item_id, "inventory_items");
}

/* GET /openapi/2026-01/inventory_items/{id} */
static void h_item_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t id;
    if (!path_id_or_fail(req, res, 0, "inventory_item_id", &id))
        return;
    inv_item it;
    int rc = inv_item_get(req->e, id, &it);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Inventory item");
        return;
    }
    ok_open(res);
    http_json_key(res->body, "inventory_item");
    write_item(res->body, &it);
    ok_close(res);
}

/* The writable fields of an inventory item: body key, mask, string field
 * (cap 0: a boolean). */
typedef struct {
    const char *key;
    unsigned mask;
    size_t off, cap;
} item_field;

#define ITEM_STR(k, m, f)                                                     \
    {                                                                         \
        k, m, offsetof(inv_item_fields, f), sizeof(((inv_item_fields *)0)->f) \
    }
static const item_field item_fields[] = {
    ITEM_STR("sku", INV_ITEM_SKU, sku),
    {"tracked", INV_ITEM_TRACKED, offsetof(inv_item_fields, tracked), 0},
    ITEM_STR("cost", INV_ITEM_COST, cost),
    {"requires_shipping", INV_ITEM_REQUIRES_SHIPPING, offsetof(inv_item_fields, requires_shipping),
     0},
    ITEM_STR("country_code_of_origin", INV_ITEM_COUNTRY_OF_ORIGIN, country_code_of_origin),
    ITEM_STR("province_code_of_origin", INV_ITEM_PROVINCE_OF_ORIGIN, province_code_of_origin),
    ITEM_STR("harmonized_system_code", INV_ITEM_HS_CODE, harmonized_system_code),
    ITEM_STR("variant_id", INV_ITEM_VARIANT, variant),
    ITEM_STR("product_id", INV_ITEM_PRODUCT, product),
};
#undef ITEM_STR

/* Reads the body's item fields into f (mask: the ones present). */
static bool item_fields_or_fail(yajl_val o, http_response *res, inv_item_fields *f)
{
    assert(http_response_ok(res));
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < NELEMS(item_fields); i++) {
        const item_field *d = &item_fields[i];
        bool badv = false, present;
        if (d->cap == 0) {
            bool v = false;
            present = http_json_get_bool(o, d->key, &v, &badv);
            if (present && !badv)
                *(bool *)((char *)f + d->off) = v;
        } else {
            http_str s = {NULL, 0};
            present = http_json_get_str(o, d->key, &s, &badv);
            if (present && !badv && (s.len >= d->cap || memchr(s.p, '\0', s.len) != NULL)) {
                bad(res, false, d->key, "too long, or holds a NUL byte", s);
                return false;
            }
            if (present && !badv) {
                memcpy((char *)f + d->off, s.p, s.len);
                ((char *)f + d->off)[s.len] = '\0';
            }
        }
        if (badv) {
            bad(res, false, d->key, d->cap == 0 ? "must be a boolean" : "must be a string", NO_VAL);
            return false;
        }
        if (present)
            f->mask |= d->mask;
    }
    return true;
}

/* PUT /openapi/2026-01/inventory_items/{id}: updates the fields present
 * (an unknown item: 404; items are created with their variants, here by
 * RESP ITEM.PUT). A body with no known field changes nothing. */
static void h_item_update(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t id;
    if (!path_id_or_fail(req, res, 0, "inventory_item_id", &id))
        return;
    yajl_val o = body_or_fail(req, res);
    if (o == NULL)
        return;
    inv_item_fields f;
    bool ok = item_fields_or_fail(o, res, &f);
    yajl_tree_free(o);
    if (!ok)
        return;
    inv_item cur;
    int rc = inv_item_get(req->e, id, &cur);
    if (rc == INV_OK && f.mask != 0) {
        rc = inv_item_put(req->e, id, &f);
        if (rc == INV_OK)
            res->durable_at = inv_last_write_position();
        if (rc == INV_EEXISTS) {
            fail(res, false, 422, slz_code(422), "sku or variant_id is taken by another item");
            return;
        }
        if (rc == INV_EINVALID) { /* the engine's field rules (cost, codes) */
            fail(res, false, 400, slz_code(400), "a field's value is not valid");
            return;
        }
    }
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Inventory item");
        return;
    }
    rc = inv_item_get(req->e, id, &cur);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Inventory item");
        return;
    }
    ok_open(res);
    http_json_key(res->body, "inventory_item");
    write_item(res->body, &cur);
    ok_close(res);
}

/* ---- inventory levels --------------------------------------------------- */

/* The (inventory_item_id, location_id) of a level body or query. */
typedef struct {
    uint64_t item, loc;
} level_key;

/* A level body {inventory_item_id, location_id, stock}: false after a
 * 400. stock_required false: *stock keeps its value when absent. */
static bool level_body_or_fail(const http_request *req, http_response *res, level_key *k,
                               int64_t *stock, bool stock_required)
{
    assert(http_request_ok(req) && http_response_ok(res));
    yajl_val o = body_or_fail(req, res);
    if (o == NULL)
        return false;
    bool has_stock = false;
    bool ok = json_id_or_fail(o, res, "inventory_item_id", &k->item) &&
              json_id_or_fail(o, res, "location_id", &k->loc) &&
              json_stock_or_fail(o, res, stock, &has_stock);
    yajl_tree_free(o);
    if (ok && !has_stock && stock_required) {
        bad(res, false, "stock", "is required", NO_VAL);
        return false;
    }
    return ok;
}

/* After a level write: its error, or durable_at and the level. */
static void level_written(const http_request *req, http_response *res, int rc, const level_key *k,
                          const char *missing)
{
    assert(http_request_ok(req) && http_response_ok(res));
    if (rc == INV_EINVALID) /* the engine's refusal of a well-formed level write */
        fail(res, false, 422, slz_code(422), "the location is not active");
    else if (rc == INV_EEXISTS)
        fail(res, false, 422, slz_code(422), "the inventory level already exists");
    else if (rc != INV_OK)
        engine_fail(res, false, rc, missing);
    if (rc != INV_OK)
        return;
    res->durable_at = inv_last_write_position();
    reply_level(res, req->e, k->item, k->loc);
}

/* POST /openapi/2026-01/inventory_levels/set {inventory_item_id,
 * location_id, stock}: sets the level (creating it when absent). */
static void h_level_set(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    level_key k;
    int64_t stock = 0;
    if (!level_body_or_fail(req, res, &k, &stock, true))
        return;
    int rc = inv_level_set(req->e, k.item, k.loc, stock, 0, NULL);
    level_written(req, res, rc, &k, rc == INV_ENOTFOUND ? level_missing(req->e, k.loc) : NULL);
}

/* POST /openapi/2026-01/inventory_levels {inventory_item_id, location_id,
 * stock?}: creates the level (stock 0 when absent); an existing one: 422. */
static void h_level_create(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    level_key k;
    int64_t stock = 0; /* when absent */
    if (!level_body_or_fail(req, res, &k, &stock, false))
        return;
    int rc = inv_level_create(req->e, k.item, k.loc, stock, NULL);
    level_written(req, res, rc, &k, rc == INV_ENOTFOUND ? level_missing(req->e, k.loc) : NULL);
}

/* PUT /openapi/2026-01/inventory_levels {inventory_item_id, location_id,
 * stock}: sets an existing level only (absent: 404). The set is
 * conditional on the revision read, so a level deleted meanwhile is not
 * brought back; a writer racing it costs a bounded retry. */
static void h_level_update(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    level_key k;
    int64_t stock = 0;
    if (!level_body_or_fail(req, res, &k, &stock, true))
        return;
    int rc = INV_ECONFLICT;
    for (int i = 0; i < SLZ_UPDATE_RETRIES_MAX && rc == INV_ECONFLICT; i++) {
        inv_level cur;
        rc = inv_level_get(req->e, k.item, k.loc, &cur);
        if (rc == INV_OK)
            rc = inv_level_set(req->e, k.item, k.loc, stock, cur.revision, NULL);
    }
    level_written(req, res, rc, &k, "Inventory level");
}

/* DELETE /openapi/2026-01/inventory_levels?inventory_item_id=&location_id=
 * (a level with held or sold units: 422). */
static void h_level_delete(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    if (!query_ok_or_fail(req, res, false))
        return;
    level_key k;
    bool has_item, has_loc;
    if (!query_id_or_fail(req, res, false, "inventory_item_id", &k.item, &has_item) ||
        !query_id_or_fail(req, res, false, "location_id", &k.loc, &has_loc))
        return;
    if (!has_item || !has_loc) {
        bad(res, false, has_item ? "location_id" : "inventory_item_id", "is required", NO_VAL);
        return;
    }
    int rc = inv_level_del(req->e, k.item, k.loc);
    if (rc == INV_ECONFLICT) {
        fail(res, false, 422, slz_code(422), "the level has units held or sold");
        return;
    }
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Inventory level");
        return;
    }
    res->durable_at = inv_last_write_position();
    ok_open(res);
    ok_close(res);
}

/* The listing of levels under a filter (one page). */
static void levels_page(const http_request *req, http_response *res, inv_level_filter *flt)
{
    assert(http_request_ok(req) && http_response_ok(res));
    size_t limit;
    uint64_t cursor, next = 0;
    if (!page_or_fail(req, res, &limit, &cursor))
        return;
    size_t cap = limit + SLZ_PAGE_SLACK;
    inv_level_full_row *rows = inv_malloc(cap * sizeof *rows);
    if (rows == NULL) {
        engine_fail(res, false, INV_ENOMEM, NULL);
        return;
    }
    size_t n = 0;
    int rc = inv_level_list_page(req->e, flt, cursor, limit, rows, cap, &n, &next);
    if (rc != INV_OK) {
        free(rows);
        engine_fail(res, false, rc,
                    flt->has_location ? level_missing(req->e, flt->location) : "Inventory item");
        return;
    }
    assert(n <= cap);
    ok_open(res);
    http_json_key(res->body, "inventory_levels");
    http_json_arr_open(res->body);
    for (size_t i = 0; i < n; i++)
        write_level(res->body, rows[i].item, rows[i].location, rows[i].level.qty[INV_QTY_AVAILABLE],
                    rows[i].level.updated_at_ms);
    http_json_arr_close(res->body);
    write_page_end(res->body, next);
    ok_close(res);
    free(rows);
}

/* GET /openapi/2026-01/inventory_levels[?inventory_item_id=&location_id=
 * &limit=&cursor=]: a page may be short, even empty, while has_more. */
static void h_levels_list(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    if (!query_ok_or_fail(req, res, false))
        return;
    inv_level_filter flt;
    memset(&flt, 0, sizeof flt);
    if (!query_id_or_fail(req, res, false, "inventory_item_id", &flt.item, &flt.has_item) ||
        !query_id_or_fail(req, res, false, "location_id", &flt.location, &flt.has_location))
        return;
    levels_page(req, res, &flt);
}

/* GET /openapi/2026-01/locations/{location_id}/inventory_levels */
static void h_location_levels(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    inv_level_filter flt;
    memset(&flt, 0, sizeof flt);
    if (!path_id_or_fail(req, res, 0, "location_id", &flt.location) ||
        !query_ok_or_fail(req, res, false))
        return;
    flt.has_location = true;
    levels_page(req, res, &flt);
}

/* ---- locations ---------------------------------------------------------- */

/* GET /openapi/2026-01/locations[?limit=&cursor=] */
static void h_locations_list(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    id_page(req, res, inv_location_list, write_location_id, "locations");
}

/* GET /openapi/2026-01/locations/default */
static void h_location_default(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    uint64_t loc;
    int rc = inv_location_default(req->e, &loc);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Default location");
        return;
    }
    reply_location(res, req->e, loc);
}

/* GET /openapi/2026-01/locations/{location_id} */
static void h_location_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t loc;
    if (path_id_or_fail(req, res, 0, "location_id", &loc))
        reply_location(res, req->e, loc);
}

/* The location of a path, read (404 when unknown). */
static bool location_or_fail(const http_request *req, http_response *res, uint64_t *loc,
                             inv_location *l)
{
    assert(http_request_ok(req) && http_response_ok(res));
    if (!path_id_or_fail(req, res, 0, "location_id", loc))
        return false;
    int rc = inv_location_get(req->e, *loc, l);
    if (rc == INV_OK)
        return true;
    engine_fail(res, false, rc, "Location");
    return false;
}

/* PUT /openapi/2026-01/locations/{location_id}/default: makes it the
 * default (an inactive location cannot be: 422). */
static void h_location_set_default(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t loc;
    inv_location l;
    if (!location_or_fail(req, res, &loc, &l))
        return;
    if (!l.fields.active) {
        fail(res, false, 422, slz_code(422), "an inactive location cannot be the default");
        return;
    }
    int rc = inv_location_set_default(req->e, loc);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Location");
        return;
    }
    res->durable_at = inv_last_write_position();
    reply_location(res, req->e, loc);
}

/* The one write of the active flag or the priority. */
static void location_put(const http_request *req, http_response *res, uint64_t loc,
                         const inv_location_fields *f)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(f->mask != 0); /* 0 would mean every field */
    int rc = inv_location_put(req->e, loc, f);
    if (rc != INV_OK) {
        engine_fail(res, false, rc, "Location");
        return;
    }
    res->durable_at = inv_last_write_position();
    reply_location(res, req->e, loc);
}

/* PUT /openapi/2026-01/locations/{location_id}/deactivate (the default
 * location cannot be: 422; its levels then refuse stock changes). */
static void h_location_deactivate(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t loc;
    inv_location l;
    if (!location_or_fail(req, res, &loc, &l))
        return;
    if (l.is_default) {
        fail(res, false, 422, slz_code(422), "the default location cannot be deactivated");
        return;
    }
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_LOC_ACTIVE;
    f.active = false;
    location_put(req, res, loc, &f);
}

/* PUT /openapi/2026-01/locations/{location_id}/activate */
static void h_location_activate(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t loc;
    inv_location l;
    if (!location_or_fail(req, res, &loc, &l))
        return;
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_LOC_ACTIVE;
    f.active = true;
    location_put(req, res, loc, &f);
}

/* PUT /openapi/2026-01/locations/{location_id}/priority {"priority": n}
 * (an int32; lower is picked first). */
static void h_location_priority(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t loc;
    inv_location l;
    if (!location_or_fail(req, res, &loc, &l))
        return;
    yajl_val o = body_or_fail(req, res);
    if (o == NULL)
        return;
    int64_t p = 0;
    bool badv = false;
    bool has = http_json_get_i64(o, "priority", &p, &badv);
    yajl_tree_free(o);
    if (badv || !has || p < INT32_MIN || p > INT32_MAX) {
        bad(res, false, "priority", has || badv ? "must be a 32-bit integer" : "is required",
            NO_VAL);
        return;
    }
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_LOC_PRIORITY;
    f.priority = (int32_t)p;
    location_put(req, res, loc, &f);
}

/* ---- the table ---------------------------------------------------------- */

#define V26 "/openapi/2026-01"
#define SLZ HTTP_DIALECT_SHOPLAZZA

/* Literal segments come before a {param} in the same place
 * (inventory_items/variant before inventory_items/{id}, locations/default
 * before locations/{id}) for a router that takes the first match. */
const http_route http_shoplazza_routes[] = {
    {HTTP_GET, V26 "/products/{product_id}", SLZ, h_product_get},
    {HTTP_GET, V26 "/products/{product_id}/inventory", SLZ, h_product_inventory},
    {HTTP_GET, "/openapi/2022-01/products/{product_id}/inventory", SLZ, h_product_inventory_2022},
    {HTTP_GET, V26 "/inventory_items/variant", SLZ, h_items_by_variant},
    {HTTP_GET, V26 "/inventory_items", SLZ, h_items_list},
    {HTTP_GET, V26 "/inventory_items/{inventory_item_id}", SLZ, h_item_get},
    {HTTP_PUT, V26 "/inventory_items/{inventory_item_id}", SLZ, h_item_update},
    {HTTP_POST, V26 "/inventory_levels/set", SLZ, h_level_set},
    {HTTP_GET, V26 "/inventory_levels", SLZ, h_levels_list},
    {HTTP_POST, V26 "/inventory_levels", SLZ, h_level_create},
    {HTTP_PUT, V26 "/inventory_levels", SLZ, h_level_update},
    {HTTP_DELETE, V26 "/inventory_levels", SLZ, h_level_delete},
    {HTTP_GET, V26 "/locations", SLZ, h_locations_list},
    {HTTP_GET, V26 "/locations/default", SLZ, h_location_default},
    {HTTP_GET, V26 "/locations/{location_id}", SLZ, h_location_get},
    {HTTP_GET, V26 "/locations/{location_id}/inventory_levels", SLZ, h_location_levels},
    {HTTP_PUT, V26 "/locations/{location_id}/default", SLZ, h_location_set_default},
    {HTTP_PUT, V26 "/locations/{location_id}/deactivate", SLZ, h_location_deactivate},
    {HTTP_PUT, V26 "/locations/{location_id}/activate", SLZ, h_location_activate},
    {HTTP_PUT, V26 "/locations/{location_id}/priority", SLZ, h_location_priority},
};
const size_t http_shoplazza_routes_n = NELEMS(http_shoplazza_routes);
