/*
 * http_wix.c — the Wix dialect of the HTTP face (docs/HTTP.md "Wix"): the seed's
 * Inventory Item object (Wix Stores Inventory Items v3) under
 * /stores/v3/inventory-items — create, get, update (revision checked), delete,
 * query with cursor paging, and the bulk decrement / increment of the
 * flash-sale path — served from the engine, in Wix's shapes and its error
 * body {"message": ..., "details": {...}}.
 *
 * Model: a Wix inventory item is one invcore level (item x location). Ids are
 * GUIDs, mapped exactly (docs/HTTP.md "Wix" "Ids"):
 *   - variantId -> the invcore item whose `variant` field holds the GUID (lower
 *     case); a new variant's item gets the id SHA-256(GUID)[0..8) big-endian,
 *     or of GUID "#1", "#2", ... while an item of another variant holds it, at
 *     most WIX_ID_PROBES_MAX candidates (deterministic, collision-checked);
 *   - locationId <-> location N: the GUID of "494e56434f524500" ("INVCORE\0")
 *     followed by N in 16 hex digits; any other GUID is refused;
 *   - the inventory item's _id <-> item id (16 hex) then location id (16 hex).
 * So every GUID this dialect writes reads back to the same ids, and no id is
 * ever truncated.
 *
 * Invariants: every handler validates the whole body before its first engine
 * write, answers bad input with 400 in the Wix error shape, maps engine
 * refusals through http_status_for(), and writes exactly one body (a body
 * begun and then refused is reset first). A write sets res->durable_at to its
 * journal position; a refusal sets 0. An update is the engine's compare-and-
 * set on the level's revision (a batch whose first line carries if_revision),
 * so a concurrent change makes it fail with 409, never be overwritten. A
 * decrement never takes a tracked level below its oversell policy's floor
 * (0 unless preorder allows): its lines are one inv_batch, all or nothing.
 * No handler blocks or takes a lock. Allocation: yajl's request tree, the
 * create's SHA-256 context (libcrypto's EVP_Digest), the query's scratch
 * (bounded by named limits); the decrement's lines live in per-thread
 * arrays.
 */
#include <assert.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "server/http_json.h"
#include "server/http_route.h"

/* ---- limits ------------------------------------------------------------- */

#define WIX_QTY_MAX 99999 /* |quantity| (the seed's bounds), decrementBy, incrementBy */
#define WIX_PREORDER_LIMIT_MAX 100000 /* preorderInfo.limit: a bound of ours, above any quantity */
#define WIX_PREORDER_MESSAGE_MAX 250 /* preorderInfo.message bytes (checked, not stored) */
#define WIX_PRODUCT_ID_MAX 36 /* productId bytes (the seed's maxLength) */
/* Candidate item ids tried for a new variant: a 64-bit collision is already
 * rare (about n^2 / 2^65 over n items); eight in a row means a store built
 * to collide, refused rather than searched. */
#define WIX_ID_PROBES_MAX 8
#define WIX_BULK_LINES_MAX 100 /* lines in one decrement / increment */
#define WIX_QUERY_LIMIT_DEFAULT 100 /* cursorPaging.limit when absent */
#define WIX_QUERY_LIMIT_MAX 1000 /* cursorPaging.limit at most */
/* Engine pages one query walks at most before answering with a cursor:
 * bounds one request's work when few levels match its filter. */
#define WIX_SCAN_ROUNDS_MAX 64
#define WIX_GUID_LEN 36 /* 8-4-4-4-12 */
#define WIX_MSG_MAX 320 /* an error message */
/* The location namespace: "INVCORE\0" in ASCII, the GUID's first 16 digits. */
#define WIX_LOC_NAMESPACE 0x494e56434f524500ULL
#define WIX_LOC_SCHEME "494e5643-4f52-4500-XXXX-XXXXXXXXXXXX (X: the location id in hex)"
/* A query cursor: version, mode, flags, four u64, the product's length and
 * bytes, written as lower-case hex. */
#define WIX_TOKEN_BYTES_MAX (3 + 4 * 8 + 1 + INV_VARIANT_MAX)
#define WIX_TOKEN_TEXT_MAX (2 * WIX_TOKEN_BYTES_MAX + 1)
#define WIX_TOKEN_VERSION 1

_Static_assert(WIX_BULK_LINES_MAX <= INV_BATCH_LINES_MAX, "a bulk change is one batch");
_Static_assert(WIX_QTY_MAX <= INV_QTY_MAX, "Wix quantities fit the engine's");
_Static_assert(WIX_PREORDER_LIMIT_MAX <= INV_QTY_MAX, "a preorder limit fits the engine's");
_Static_assert(WIX_PRODUCT_ID_MAX <= INV_VARIANT_MAX, "a productId fits the item's product");
_Static_assert(WIX_GUID_LEN <= INV_VARIANT_MAX, "a variant GUID fits the item's variant");
_Static_assert(WIX_QUERY_LIMIT_MAX <= INV_LIST_COUNT_MAX, "a page is one engine page at most");

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors: {"message": m, "details": {...}} ----------------------------- */

/* One value of an application error's data: a string, or a number. */
typedef struct {
    const char *key;
    const char *str; /* NULL: num */
    int64_t num;
} wix_datum;

/* {"message": msg, "details": {"applicationError": {"code": code,
 * "description": msg, "data": {data...}}}} with status. Resets a body
 * already begun; a refused request is durable at nothing. */
static void reply_app_error(http_response *res, int status, const char *code, const char *msg,
                            const wix_datum *data, size_t n_data)
{
    assert(http_response_ok(res));
    assert(status >= 400 && status < 600 && code != NULL && msg != NULL);
    http_body *b = res->body;
    http_body_reset(b);
    res->status = status;
    res->durable_at = 0;
    http_json_obj_open(b);
    http_json_key(b, "message");
    http_json_cstr(b, msg);
    http_json_key(b, "details");
    http_json_obj_open(b);
    http_json_key(b, "applicationError");
    http_json_obj_open(b);
    http_json_key(b, "code");
    http_json_cstr(b, code);
    http_json_key(b, "description");
    http_json_cstr(b, msg);
    http_json_key(b, "data");
    http_json_obj_open(b);
    for (size_t i = 0; i < n_data; i++) {
        http_json_key(b, data[i].key);
        if (data[i].str)
            http_json_cstr(b, data[i].str);
        else
            http_json_i64(b, data[i].num);
    }
    http_json_obj_close(b);
    http_json_obj_close(b);
    http_json_obj_close(b);
    http_json_obj_close(b);
}

/* 400 {"message": "<field>: <msg>", "details": {"validationError":
 * {"fieldViolations": [{"field", "description", "violatedRule"}]}}}. */
static void reply_bad_field(http_response *res, const char *field, const char *rule,
                            const char *msg)
{
    assert(http_response_ok(res));
    assert(field != NULL && rule != NULL && msg != NULL);
    char full[WIX_MSG_MAX];
    snprintf(full, sizeof full, "%s: %s", field, msg);
    http_body *b = res->body;
    http_body_reset(b);
    res->status = 400;
    res->durable_at = 0;
    http_json_obj_open(b);
    http_json_key(b, "message");
    http_json_cstr(b, full);
    http_json_key(b, "details");
    http_json_obj_open(b);
    http_json_key(b, "validationError");
    http_json_obj_open(b);
    http_json_key(b, "fieldViolations");
    http_json_arr_open(b);
    http_json_obj_open(b);
    http_json_key(b, "field");
    http_json_cstr(b, field);
    http_json_key(b, "description");
    http_json_cstr(b, msg);
    http_json_key(b, "violatedRule");
    http_json_cstr(b, rule);
    http_json_obj_close(b);
    http_json_arr_close(b);
    http_json_obj_close(b);
    http_json_obj_close(b);
    http_json_obj_close(b);
}

/* An engine refusal the caller did not word itself: its status from the one
 * error table, the engine's code ("NOTFOUND", ...) as the Wix code. */
static void reply_engine_error(http_response *res, int rc, const char *what)
{
    assert(http_response_ok(res));
    assert(rc != INV_OK && what != NULL);
    char msg[WIX_MSG_MAX];
    snprintf(msg, sizeof msg, "%s: %s", what, inv_strerror(rc));
    reply_app_error(res, http_status_for(rc), inv_errcode(rc), msg, NULL, 0);
}

/* ---- GUIDs ------------------------------------------------------------- */

static int hex_digit(char c)
{
    static const char digits[] = "0123456789abcdef";
    const char *at = c ? strchr(digits, tolower((unsigned char)c)) : NULL;
    assert(at == NULL || (at >= digits && at < digits + 16)); /* one of the 16 */
    return at ? (int)(at - digits) : -1;
}

/* A GUID's 128 bits as two halves: exactly 8-4-4-4-12 hex digits, either
 * case, nothing around them. */
static bool guid_parse(const char *p, size_t len, uint64_t *hi, uint64_t *lo)
{
    assert(hi != NULL && lo != NULL);
    uint64_t half[2] = {0, 0};
    size_t digits = 0;
    if (p == NULL || len != WIX_GUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (p[i] != '-')
                return false;
            continue;
        }
        int d = hex_digit(p[i]);
        if (d < 0)
            return false;
        half[digits / 16] = half[digits / 16] << 4 | (uint64_t)d;
        digits++;
    }
    assert(digits == 32);
    *hi = half[0];
    *lo = half[1];
    return true;
}

/* The canonical (lower-case) GUID of hi:lo into out[WIX_GUID_LEN + 1]. */
static void guid_format(uint64_t hi, uint64_t lo, char *out)
{
    int n = snprintf(out, WIX_GUID_LEN + 1, "%08llx-%04llx-%04llx-%04llx-%012llx",
                     (unsigned long long)(hi >> 32), (unsigned long long)(hi >> 16 & 0xffff),
                     (unsigned long long)(hi & 0xffff), (unsigned long long)(lo >> 48),
                     (unsigned long long)(lo & 0xffffffffffffULL));
    assert(n == WIX_GUID_LEN);
    (void)n;
}

/* The i-th candidate item id of a variant (its canonical GUID): the first 8
 * bytes, big-endian, of SHA-256 of the GUID (i 0) or of "<GUID>#<i>". */
static bool variant_candidate(const char *guid, unsigned i, uint64_t *id)
{
    char text[WIX_GUID_LEN + 16];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    assert(strlen(guid) == WIX_GUID_LEN && i < WIX_ID_PROBES_MAX);
    int n = i == 0 ? snprintf(text, sizeof text, "%s", guid)
                   : snprintf(text, sizeof text, "%s#%u", guid, i);
    assert(n > 0 && (size_t)n < sizeof text);
    if (EVP_Digest(text, (size_t)n, md, &md_len, EVP_sha256(), NULL) != 1 || md_len < 8)
        return false; /* libcrypto out of memory */
    uint64_t v = 0;
    for (size_t k = 0; k < 8; k++)
        v = v << 8 | md[k];
    *id = v;
    return true;
}

/* ---- request reading ---------------------------------------------------- */

/* Parses the body as a JSON object: NULL (and a 400) on malformed JSON or a
 * root that is not an object. Free with yajl_tree_free. */
static yajl_val body_or_reply(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char err[128] = "";
    yajl_val root = http_json_parse(&req->body, err, sizeof err);
    if (root != NULL && YAJL_IS_OBJECT(root))
        return root;
    reply_bad_field(res, "body", "FORMAT",
                    root == NULL ? (err[0] ? err : "malformed JSON")
                                 : "the body must be a JSON object");
    yajl_tree_free(root);
    return NULL;
}

/* obj[key] as an object: NULL (and a 400 naming field) when absent or not one. */
static yajl_val object_or_reply(yajl_val obj, const char *key, const char *field,
                                http_response *res)
{
    assert(http_response_ok(res));
    yajl_val v = http_json_get(obj, key);
    if (v != NULL && YAJL_IS_OBJECT(v))
        return v;
    reply_bad_field(res, field, v == NULL ? "REQUIRED_FIELD" : "FORMAT",
                    v == NULL ? "is required" : "must be a JSON object");
    return NULL;
}

/* A GUID field: absent (false), or *ok false (and a 400) when not a GUID. */
static bool guid_field(yajl_val obj, const char *key, const char *field, uint64_t *hi, uint64_t *lo,
                       bool *ok, http_response *res)
{
    assert(http_response_ok(res));
    yajl_val v = http_json_get(obj, key);
    if (v == NULL)
        return false;
    if (!YAJL_IS_STRING(v) || !guid_parse(v->u.string, strlen(v->u.string), hi, lo)) {
        reply_bad_field(res, field, "FORMAT", "must be a GUID string (8-4-4-4-12 hex digits)");
        *ok = false;
    }
    return true;
}

/* A location GUID's id: false (and a 400 naming the scheme) outside the
 * INVCORE namespace. */
static bool location_in_namespace_or_reply(uint64_t hi, const char *field, http_response *res)
{
    assert(http_response_ok(res));
    if (hi == WIX_LOC_NAMESPACE)
        return true;
    reply_bad_field(res, field, "FORMAT",
                    "is not an invcore location GUID: locations are " WIX_LOC_SCHEME);
    return false;
}

/* An integer field within [lo, hi]: absent (false), or *ok false (and a 400). */
static bool int_field(yajl_val obj, const char *key, const char *field, int64_t lo, int64_t hi,
                      int64_t *out, bool *ok, http_response *res)
{
    assert(http_response_ok(res));
    bool bad = false;
    if (!http_json_get_i64(obj, key, out, &bad))
        return false;
    if (bad || *out < lo || *out > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an integer between %lld and %lld", (long long)lo,
                 (long long)hi);
        reply_bad_field(res, field, bad ? "FORMAT" : *out < lo ? "MIN" : "MAX", msg);
        *ok = false;
    }
    return true;
}

/* A boolean field: absent (false), or *ok false (and a 400). */
static bool bool_field(yajl_val obj, const char *key, const char *field, bool *out, bool *ok,
                       http_response *res)
{
    assert(http_response_ok(res));
    bool bad = false;
    if (!http_json_get_bool(obj, key, out, &bad))
        return false;
    if (bad) {
        reply_bad_field(res, field, "FORMAT", "must be true or false");
        *ok = false;
    }
    return true;
}

/* A string field of min..max bytes: absent (false), or *ok false (and a 400). */
static bool str_field(yajl_val obj, const char *key, const char *field, size_t min, size_t max,
                      http_str *out, bool *ok, http_response *res)
{
    assert(http_response_ok(res));
    bool bad = false;
    if (!http_json_get_str(obj, key, out, &bad))
        return false;
    if (bad || out->len < min || out->len > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be a string of %zu to %zu bytes", min, max);
        reply_bad_field(res, field,
                        bad              ? "FORMAT"
                        : out->len < min ? "MIN_LENGTH"
                                         : "MAX_LENGTH",
                        msg);
        *ok = false;
    }
    return true;
}

/* What a create or update body says (inventoryItem's writable fields and the
 * immutable ones it may repeat). */
typedef struct {
    bool has_id, has_variant, has_location, has_product, has_quantity, has_in_stock;
    bool has_revision, has_preorder, has_enabled, has_limit;
    uint64_t id_hi, id_lo; /* _id */
    uint64_t variant_hi, variant_lo;
    uint64_t loc;
    char product[WIX_PRODUCT_ID_MAX + 1];
    int64_t quantity;
    bool in_stock;
    uint64_t revision;
    bool enabled;
    int64_t limit;
} wix_input;

/* revision: a decimal string (Wix's int64 format) or number, not 0. */
static bool revision_field(yajl_val obj, wix_input *in, bool *ok, http_response *res)
{
    assert(http_response_ok(res));
    bool bad = false;
    if (!http_json_get_u64(obj, "revision", &in->revision, &bad))
        return false;
    if (bad || in->revision == 0 || in->revision > INT64_MAX) {
        reply_bad_field(res, "inventoryItem.revision", "FORMAT",
                        "must be a positive decimal integer string, as read");
        *ok = false;
    }
    return true;
}

/* preorderInfo {enabled, limit, message}: message is checked, not stored. */
static bool preorder_or_reply(yajl_val obj, wix_input *in, http_response *res)
{
    assert(http_response_ok(res));
    yajl_val p = http_json_get(obj, "preorderInfo");
    bool ok = true;
    http_str msg;
    if (p == NULL || YAJL_IS_NULL(p))
        return true;
    if (!YAJL_IS_OBJECT(p)) {
        reply_bad_field(res, "inventoryItem.preorderInfo", "FORMAT", "must be a JSON object");
        return false;
    }
    in->has_preorder = true;
    in->has_enabled =
        bool_field(p, "enabled", "inventoryItem.preorderInfo.enabled", &in->enabled, &ok, res);
    if (ok)
        in->has_limit = int_field(p, "limit", "inventoryItem.preorderInfo.limit", 0,
                                  WIX_PREORDER_LIMIT_MAX, &in->limit, &ok, res);
    if (ok)
        (void)str_field(p, "message", "inventoryItem.preorderInfo.message", 0,
                        WIX_PREORDER_MESSAGE_MAX, &msg, &ok, res);
    return ok;
}

/* The ids a body may carry: _id (read on update only: read-only, ignored
 * on create), variantId, locationId (in the namespace). */
static bool input_ids_or_reply(yajl_val obj, bool update, wix_input *in, http_response *res)
{
    assert(http_response_ok(res));
    bool ok = true;
    uint64_t loc_hi = 0;
    if (update)
        in->has_id = guid_field(obj, "_id", "inventoryItem._id", &in->id_hi, &in->id_lo, &ok, res);
    if (ok)
        in->has_variant = guid_field(obj, "variantId", "inventoryItem.variantId", &in->variant_hi,
                                     &in->variant_lo, &ok, res);
    if (ok)
        in->has_location =
            guid_field(obj, "locationId", "inventoryItem.locationId", &loc_hi, &in->loc, &ok, res);
    if (ok && in->has_location)
        ok = location_in_namespace_or_reply(loc_hi, "inventoryItem.locationId", res);
    return ok;
}

/* Reads the body's inventoryItem into in: false (and a 400) on any field of
 * the wrong type or range, or both quantity and inStock. Read-only fields
 * (trackQuantity, availabilityStatus, dates, product; on create also _id
 * and revision) and unknown ones, extendedFields included, are ignored. */
static bool input_or_reply(yajl_val obj, bool update, wix_input *in, http_response *res)
{
    assert(http_response_ok(res));
    bool ok = true;
    http_str product;
    memset(in, 0, sizeof *in);
    if (!input_ids_or_reply(obj, update, in, res))
        return false;
    if (update)
        in->has_revision = revision_field(obj, in, &ok, res);
    if (!ok)
        return false;
    if (str_field(obj, "productId", "inventoryItem.productId", 1, WIX_PRODUCT_ID_MAX, &product, &ok,
                  res) &&
        ok) {
        in->has_product = true;
        memcpy(in->product, product.p, product.len);
        in->product[product.len] = '\0';
    }
    if (ok)
        in->has_quantity = int_field(obj, "quantity", "inventoryItem.quantity", -WIX_QTY_MAX,
                                     WIX_QTY_MAX, &in->quantity, &ok, res);
    if (ok)
        in->has_in_stock =
            bool_field(obj, "inStock", "inventoryItem.inStock", &in->in_stock, &ok, res);
    if (!ok || !preorder_or_reply(obj, in, res))
        return false;
    if (in->has_quantity && in->has_in_stock) {
        reply_bad_field(res, "inventoryItem.quantity", "ONE_OF",
                        "quantity and inStock are one of: give one, not both");
        return false;
    }
    return true;
}

/* A create or update body, {"inventoryItem": {...}}, read whole into in:
 * false (and a 400) when it is not. Nothing of the tree is kept. */
static bool item_body_or_reply(const http_request *req, bool update, wix_input *in,
                               http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    yajl_val root = body_or_reply(req, res);
    if (root == NULL)
        return false;
    yajl_val obj = object_or_reply(root, "inventoryItem", "inventoryItem", res);
    bool ok = obj != NULL && input_or_reply(obj, update, in, res);
    yajl_tree_free(root);
    return ok;
}

/* The path's {id}: an inventory item _id (item then location). */
static bool path_id_or_reply(const http_request *req, uint64_t *item, uint64_t *loc,
                             http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->n_params == 1);
    if (guid_parse(req->params[0].p, req->params[0].len, item, loc))
        return true;
    reply_bad_field(res, "inventoryItemId", "FORMAT",
                    "must be an inventory item GUID (8-4-4-4-12 hex digits)");
    return false;
}

/* ---- the inventory item shape -------------------------------------------- */

static void kv_guid(http_body *b, const char *key, uint64_t hi, uint64_t lo)
{
    assert(b != NULL && b->len <= b->cap);
    char g[WIX_GUID_LEN + 1];
    guid_format(hi, lo, g);
    http_json_key(b, key);
    http_json_str(b, g, WIX_GUID_LEN);
}

/* The derived availabilityStatus (docs/HTTP.md "Wix"). */
static const char *availability(bool tracked, const inv_level_full *lv)
{
    assert(lv != NULL);
    int64_t available = lv->qty[INV_QTY_AVAILABLE];
    if (available > 0)
        return "IN_STOCK";
    bool room = lv->policy == INV_POLICY_CONTINUE &&
                (lv->preorder_limit == INV_NO_PREORDER_LIMIT || available > -lv->preorder_limit);
    return tracked && room ? "PREORDER" : "OUT_OF_STOCK";
}

static void write_preorder(http_body *b, const inv_level_full *lv)
{
    assert(b != NULL && b->len <= b->cap);
    http_json_key(b, "preorderInfo");
    http_json_obj_open(b);
    http_json_key(b, "enabled");
    http_json_bool(b, lv->policy == INV_POLICY_CONTINUE);
    if (lv->policy == INV_POLICY_CONTINUE && lv->preorder_limit != INV_NO_PREORDER_LIMIT) {
        http_json_key(b, "limit");
        http_json_i64(b, lv->preorder_limit);
    }
    http_json_obj_close(b);
}

/* One inventory item (the seed's object, in its order): the level lv of item
 * it at location loc. */
static void write_inventory_item(http_body *b, const inv_item *it, uint64_t loc,
                                 const inv_level_full *lv)
{
    assert(b != NULL && b->len <= b->cap);
    const inv_item_fields *f = &it->fields;
    assert(b != NULL && it != NULL && lv != NULL);
    http_json_obj_open(b);
    kv_guid(b, "_id", it->id, loc);
    http_json_key(b, "revision");
    http_json_id(b, lv->revision);
    http_json_kv_time_ms(b, "_createdDate", lv->created_at_ms);
    http_json_kv_time_ms(b, "_updatedDate", lv->updated_at_ms);
    if (f->variant[0])
        http_json_kv_str(b, "variantId", f->variant);
    kv_guid(b, "locationId", WIX_LOC_NAMESPACE, loc);
    if (f->product[0])
        http_json_kv_str(b, "productId", f->product);
    http_json_key(b, "trackQuantity");
    http_json_bool(b, f->tracked);
    if (f->tracked) {
        http_json_key(b, "quantity");
        http_json_i64(b, lv->qty[INV_QTY_AVAILABLE]);
    } else {
        http_json_key(b, "inStock");
        http_json_bool(b, lv->qty[INV_QTY_AVAILABLE] > 0);
    }
    http_json_kv_str(b, "availabilityStatus", availability(f->tracked, lv));
    write_preorder(b, lv);
    http_json_key(b, "product"); /* read-only, derived from the item */
    http_json_obj_open(b);
    if (f->product[0])
        http_json_kv_str(b, "productId", f->product);
    if (f->variant[0])
        http_json_kv_str(b, "variantId", f->variant);
    if (f->sku[0])
        http_json_kv_str(b, "variantSku", f->sku);
    http_json_obj_close(b);
    http_json_obj_close(b);
}

/* Reads (item, loc) whole: false when the item or the level is gone. */
static bool read_inventory_item(inv_engine *e, uint64_t item, uint64_t loc, inv_item *it,
                                inv_level_full *lv)
{
    assert(e != NULL);
    return inv_item_get(e, item, it) == INV_OK && inv_level_get_full(e, item, loc, lv) == INV_OK;
}

static void reply_not_found(http_response *res, uint64_t item, uint64_t loc)
{
    assert(http_response_ok(res));
    char id[WIX_GUID_LEN + 1], msg[WIX_MSG_MAX];
    guid_format(item, loc, id);
    snprintf(msg, sizeof msg, "inventory item %s not found", id);
    wix_datum d = {"inventoryItemId", id, 0};
    reply_app_error(res, 404, "INVENTORY_ITEM_NOT_FOUND", msg, &d, 1);
}

/* {"inventoryItem": {...}} with status, read now; 404 when it is gone. */
static void reply_item(const http_request *req, http_response *res, int status, uint64_t item,
                       uint64_t loc)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(status == 200 && res->status == 0); /* the body is still empty */
    inv_item it;
    inv_level_full lv;
    if (!read_inventory_item(req->e, item, loc, &it, &lv)) {
        reply_not_found(res, item, loc);
        return;
    }
    res->status = status;
    http_json_obj_open(res->body);
    http_json_key(res->body, "inventoryItem");
    write_inventory_item(res->body, &it, loc, &lv);
    http_json_obj_close(res->body);
}

/* ---- create ---------------------------------------------------------------- */

/* The location a create names, or the default: false (and a 404 or 422)
 * unless it exists and is active. */
static bool location_or_reply(inv_engine *e, const wix_input *in, uint64_t *loc, http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    assert(e != NULL && loc != NULL);
    inv_location l;
    char msg[WIX_MSG_MAX];
    if (in->has_location)
        *loc = in->loc;
    else if (inv_location_default(e, loc) != INV_OK) {
        reply_app_error(res, 404, "LOCATION_NOT_FOUND",
                        "no locationId given and the store has no default location", NULL, 0);
        return false;
    }
    if (inv_location_get(e, *loc, &l) != INV_OK) {
        snprintf(msg, sizeof msg, "location %llu not found", (unsigned long long)*loc);
        reply_app_error(res, 404, "LOCATION_NOT_FOUND", msg, NULL, 0);
        return false;
    }
    if (!l.fields.active) {
        snprintf(msg, sizeof msg, "location %llu is inactive", (unsigned long long)*loc);
        reply_app_error(res, 422, "LOCATION_INACTIVE", msg, NULL, 0);
        return false;
    }
    return true;
}

/* The item of a variant (guid, canonical): the stored mapping, or a new item
 * (fields f) at the first candidate id no other variant's item holds.
 * *created says which. INV_ELIMIT: WIX_ID_PROBES_MAX candidates all taken. */
static int variant_item(inv_engine *e, const char *guid, const inv_item_fields *f, uint64_t *item,
                        bool *created)
{
    assert(e != NULL);
    assert(strlen(guid) == WIX_GUID_LEN && strcmp(f->variant, guid) == 0);
    *created = false;
    if (inv_item_by_variant(e, guid, item) == INV_OK)
        return INV_OK;
    for (unsigned i = 0; i < WIX_ID_PROBES_MAX; i++) {
        uint64_t id;
        if (!variant_candidate(guid, i, &id))
            return INV_ENOMEM;
        int rc = inv_item_create(e, id, f);
        if (rc == INV_OK) {
            *item = id;
            *created = true;
            return INV_OK;
        }
        if (rc != INV_EEXISTS)
            return rc;
        /* the id or the variant is taken: by this variant (a concurrent
         * create won), or the id by another variant's item (probe on) */
        if (inv_item_by_variant(e, guid, item) == INV_OK)
            return INV_OK;
    }
    return INV_ELIMIT;
}

/* The item fields a create of in writes on a new item. */
static void new_item_fields(const wix_input *in, const char *guid, inv_item_fields *f)
{
    assert(in != NULL && guid != NULL && f != NULL);
    assert(guid[WIX_GUID_LEN] == '\0' && WIX_GUID_LEN + 1 <= sizeof f->variant);
    memset(f, 0, sizeof *f);
    f->mask = INV_ITEM_VARIANT | INV_ITEM_TRACKED;
    memcpy(f->variant, guid, WIX_GUID_LEN + 1);
    f->tracked = in->has_quantity;
    if (in->has_product) {
        f->mask |= INV_ITEM_PRODUCT;
        memcpy(f->product, in->product, sizeof in->product);
    }
}

/* What a create changes on an existing item: its tracking (Wix's oneOf) and
 * its product when it had none. False (and a 400) when the body names
 * another product than the item's (productId is immutable). */
static bool existing_item_change_or_reply(inv_engine *e, uint64_t item, const wix_input *in,
                                          inv_item_fields *f, http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    inv_item it;
    memset(f, 0, sizeof *f);
    int rc = inv_item_get(e, item, &it);
    if (rc != INV_OK) {
        reply_engine_error(res, rc, "the variant's item");
        return false;
    }
    if (in->has_product && it.fields.product[0] && strcmp(it.fields.product, in->product) != 0) {
        reply_bad_field(res, "inventoryItem.productId", "IMMUTABLE",
                        "the variant belongs to another product");
        return false;
    }
    if (it.fields.tracked != in->has_quantity) {
        f->mask |= INV_ITEM_TRACKED;
        f->tracked = in->has_quantity;
    }
    if (in->has_product && !it.fields.product[0]) {
        f->mask |= INV_ITEM_PRODUCT;
        memcpy(f->product, in->product, sizeof in->product);
    }
    return true;
}

/* The oversell policy a preorderInfo asks for, from the current one. */
static void preorder_policy(const wix_input *in, inv_oversell_policy cur, int64_t cur_limit,
                            inv_oversell_policy *policy, int64_t *limit)
{
    assert(in->has_preorder && policy != NULL && limit != NULL);
    bool enabled = in->has_enabled ? in->enabled : cur == INV_POLICY_CONTINUE;
    *policy = enabled ? INV_POLICY_CONTINUE : INV_POLICY_DENY;
    *limit = in->has_limit                ? in->limit
             : cur == INV_POLICY_CONTINUE ? cur_limit
                                          : INV_NO_PREORDER_LIMIT;
    if (!enabled)
        *limit = INV_NO_PREORDER_LIMIT; /* DENY keeps no limit (invcore.h) */
}

/* A level create's refusal, in Wix's words. */
static void reply_create_refused(http_response *res, int rc, uint64_t item, uint64_t loc)
{
    assert(http_response_ok(res));
    char id[WIX_GUID_LEN + 1], msg[WIX_MSG_MAX];
    guid_format(item, loc, id);
    wix_datum d = {"inventoryItemId", id, 0};
    if (rc == INV_EEXISTS) {
        snprintf(msg, sizeof msg,
                 "an inventory item for this variant at this location exists already (%s)", id);
        reply_app_error(res, 409, "INVENTORY_ITEM_ALREADY_EXISTS", msg, &d, 1);
    } else if (rc == INV_ELIMIT) {
        reply_app_error(res, 422, "ITEM_ID_PROBES_EXHAUSTED",
                        "every candidate item id of this variant is held by another variant's "
                        "item",
                        NULL, 0);
    } else {
        reply_engine_error(res, rc, "creating the inventory item");
    }
}

/* Writes a validated create: the item (found or made), the level
 * (create-only), the item's tracking and product, the preorder policy. A
 * step failing after the level was made deletes the level again; an item
 * made for a new variant stays (the variant's mapping, shared with
 * concurrent creates). */
static int create_write(inv_engine *e, const wix_input *in, uint64_t loc, uint64_t *item_out,
                        http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    assert(in->has_variant && in->has_quantity != in->has_in_stock);
    char guid[WIX_GUID_LEN + 1];
    inv_item_fields f, change;
    bool created;
    guid_format(in->variant_hi, in->variant_lo, guid);
    new_item_fields(in, guid, &f);
    *item_out = 0;
    int rc = variant_item(e, guid, &f, item_out, &created);
    uint64_t item = *item_out;
    memset(&change, 0, sizeof change);
    if (rc == INV_OK && !created && !existing_item_change_or_reply(e, item, in, &change, res))
        return INV_EINVALID; /* replied */
    int64_t qty = in->has_quantity ? in->quantity : in->in_stock ? 1 : 0;
    if (rc == INV_OK)
        rc = inv_level_create(e, item, loc, qty, NULL);
    if (rc != INV_OK) {
        reply_create_refused(res, rc, item, loc);
        return rc;
    }
    if (change.mask)
        rc = inv_item_put(e, item, &change);
    if (rc == INV_OK && in->has_preorder && in->has_enabled && in->enabled)
        rc = inv_level_set_policy(e, item, loc, INV_POLICY_CONTINUE,
                                  in->has_limit ? in->limit : INV_NO_PREORDER_LIMIT);
    if (rc != INV_OK) {
        (void)inv_level_del(e, item, loc); /* made above: whole or not at all */
        reply_engine_error(res, rc, "creating the inventory item");
    }
    return rc;
}

/* POST /stores/v3/inventory-items {"inventoryItem": {variantId, locationId?,
 * productId?, quantity | inStock, preorderInfo?}}: 200 {"inventoryItem"}. */
static void h_create(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    wix_input in;
    uint64_t loc, item;
    if (!item_body_or_reply(req, false, &in, res))
        return;
    if (!in.has_variant) {
        reply_bad_field(res, "inventoryItem.variantId", "REQUIRED_FIELD", "is required");
    } else if (!in.has_quantity && !in.has_in_stock) {
        reply_bad_field(res, "inventoryItem.quantity", "ONE_OF",
                        "one of quantity (tracked) or inStock (untracked) is required");
    } else if (in.has_in_stock && in.has_limit) {
        reply_bad_field(res, "inventoryItem.preorderInfo.limit", "NOT_SUPPORTED",
                        "preorder limits need quantity tracking, not inStock");
    } else if (location_or_reply(req->e, &in, &loc, res) &&
               create_write(req->e, &in, loc, &item, res) == INV_OK) {
        res->durable_at = inv_last_write_position();
        reply_item(req, res, 200, item, loc);
    }
}

/* ---- get, update, delete ------------------------------------------------- */

/* GET /stores/v3/inventory-items/{id}: 200 {"inventoryItem"}, 404. */
static void h_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t item, loc;
    if (path_id_or_reply(req, &item, &loc, res))
        reply_item(req, res, 200, item, loc);
}

/* An update's immutable fields, when repeated, must equal the item's. */
static bool immutables_or_reply(const wix_input *in, const inv_item *it, uint64_t loc,
                                http_response *res)
{
    assert(http_response_ok(res));
    char guid[WIX_GUID_LEN + 1];
    if (in->has_id && (in->id_hi != it->id || in->id_lo != loc)) {
        reply_bad_field(res, "inventoryItem._id", "IMMUTABLE", "differs from the path's id");
        return false;
    }
    guid_format(in->variant_hi, in->variant_lo, guid);
    if (in->has_variant && strcmp(guid, it->fields.variant) != 0) {
        reply_bad_field(res, "inventoryItem.variantId", "IMMUTABLE", "cannot change");
        return false;
    }
    if (in->has_location && in->loc != loc) {
        reply_bad_field(res, "inventoryItem.locationId", "IMMUTABLE", "cannot change");
        return false;
    }
    if (in->has_product && strcmp(in->product, it->fields.product) != 0) {
        reply_bad_field(res, "inventoryItem.productId", "IMMUTABLE", "cannot change");
        return false;
    }
    return true;
}

static void reply_revision_mismatch(http_response *res, uint64_t given, uint64_t current)
{
    assert(http_response_ok(res));
    char cur[24], msg[WIX_MSG_MAX];
    snprintf(cur, sizeof cur, "%llu", (unsigned long long)current);
    snprintf(msg, sizeof msg,
             "revision %llu is not the current revision %s: read the inventory item again",
             (unsigned long long)given, cur);
    wix_datum d = {"currentRevision", cur, 0};
    reply_app_error(res, 409, "REVISION_MISMATCH", msg, &d, 1);
}

/* The update's level lines: the new available (or an adjust by 0) under the
 * revision given, then the policy. Returns the line count. */
static size_t update_lines(const wix_input *in, uint64_t item, uint64_t loc,
                           const inv_level_full *lv, inv_batch_line *lines)
{
    assert(in->has_revision && in->revision != 0 && lines != NULL);
    assert(!(in->has_quantity && in->has_in_stock)); /* the oneOf, checked on input */
    memset(lines, 0, 2 * sizeof *lines);
    lines[0].item = lines[1].item = item;
    lines[0].location = lines[1].location = loc;
    lines[0].if_revision = in->revision;
    lines[0].floor = INV_NO_FLOOR;
    lines[0].op =
        in->has_quantity || in->has_in_stock ? INV_BATCH_LEVEL_SET : INV_BATCH_LEVEL_ADJUST;
    lines[0].qty = in->has_quantity ? in->quantity : in->has_in_stock && in->in_stock ? 1 : 0;
    if (!in->has_preorder)
        return 1;
    lines[1].op = INV_BATCH_LEVEL_POLICY;
    preorder_policy(in, lv->policy, lv->preorder_limit, &lines[1].policy, &lines[1].preorder_limit);
    return 2;
}

/* Applies a validated update: the level lines as one compare-and-set batch,
 * then the item's tracking when the oneOf changed it (after: a tracking
 * change moves the level's revision, which the batch checks). */
static int update_write(const http_request *req, const wix_input *in, const inv_item *it,
                        uint64_t loc, const inv_level_full *lv, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    inv_batch_line lines[2];
    inv_batch_result results[2];
    size_t failed = 0, n = update_lines(in, it->id, loc, lv, lines);
    assert(n >= 1 && n <= NELEMS(lines));
    int rc = inv_batch(req->e, lines, n, results, &failed);
    if (rc == INV_ECONFLICT) {
        inv_level now;
        uint64_t cur = inv_level_get(req->e, it->id, loc, &now) == INV_OK ? now.revision : 0;
        reply_revision_mismatch(res, in->revision, cur);
        return rc;
    }
    if (rc == INV_ENOTFOUND) {
        reply_not_found(res, it->id, loc);
        return rc;
    }
    bool tracked = in->has_quantity ? true : in->has_in_stock ? false : it->fields.tracked;
    if (rc == INV_OK && tracked != it->fields.tracked) {
        inv_item_fields f = {.mask = INV_ITEM_TRACKED, .tracked = tracked};
        rc = inv_item_put(req->e, it->id, &f);
    }
    if (rc != INV_OK)
        reply_engine_error(res, rc, "updating the inventory item");
    return rc;
}

/* PATCH /stores/v3/inventory-items/{id} {"inventoryItem": {"revision": "N",
 * quantity | inStock?, preorderInfo?}}: 200 {"inventoryItem"}; revision
 * absent 400, stale 409 REVISION_MISMATCH. */
static void h_update(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t item, loc;
    inv_item it;
    inv_level_full lv;
    wix_input in;
    if (!path_id_or_reply(req, &item, &loc, res) || !item_body_or_reply(req, true, &in, res))
        return;
    if (!in.has_revision) {
        reply_bad_field(res, "inventoryItem.revision", "REQUIRED_FIELD",
                        "is required: the revision the update was based on");
    } else if (!read_inventory_item(req->e, item, loc, &it, &lv)) {
        reply_not_found(res, item, loc);
    } else if (!immutables_or_reply(&in, &it, loc, res)) {
        /* replied */
    } else if (in.has_limit && (in.has_in_stock || (!in.has_quantity && !it.fields.tracked))) {
        reply_bad_field(res, "inventoryItem.preorderInfo.limit", "NOT_SUPPORTED",
                        "preorder limits need quantity tracking, not inStock");
    } else if (update_write(req, &in, &it, loc, &lv, res) == INV_OK) {
        res->durable_at = inv_last_write_position();
        reply_item(req, res, 200, item, loc);
    }
}

/* DELETE /stores/v3/inventory-items/{id}: 200 {} (the level goes; the
 * variant's item stays); 404; 409 while holds have units there. */
static void h_delete(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t item, loc;
    if (!path_id_or_reply(req, &item, &loc, res))
        return;
    int rc = inv_level_del(req->e, item, loc);
    if (rc == INV_ENOTFOUND) {
        reply_not_found(res, item, loc);
    } else if (rc == INV_ECONFLICT) {
        reply_app_error(res, 409, "INVENTORY_ITEM_IN_USE",
                        "the inventory item has units reserved or committed by holds", NULL, 0);
    } else if (rc != INV_OK) {
        reply_engine_error(res, rc, "deleting the inventory item");
    } else {
        res->status = 200;
        res->durable_at = inv_last_write_position();
        http_json_obj_open(res->body);
        http_json_obj_close(res->body);
    }
}

/* ---- decrement / increment ---------------------------------------------- */

/* One line of a bulk change, read and checked. */
typedef struct {
    uint64_t item, loc;
    int64_t by;
    bool tracked;
} bulk_line;

/* Reads data[i] ({"inventoryItemId", "<by_key>"}) into l. */
static bool bulk_line_or_reply(yajl_val v, size_t i, const char *key, const char *by_key,
                               bulk_line *l, http_response *res)
{
    assert(http_response_ok(res));
    assert(i < WIX_BULK_LINES_MAX && v != NULL && l != NULL);
    char field[64];
    bool ok = true;
    uint64_t hi, lo;
    snprintf(field, sizeof field, "%s[%zu]", key, i);
    if (!YAJL_IS_OBJECT(v)) {
        reply_bad_field(res, field, "FORMAT", "must be a JSON object");
        return false;
    }
    snprintf(field, sizeof field, "%s[%zu].inventoryItemId", key, i);
    if (!guid_field(v, "inventoryItemId", field, &hi, &lo, &ok, res)) {
        reply_bad_field(res, field, "REQUIRED_FIELD", "is required");
        return false;
    }
    if (!ok)
        return false;
    l->item = hi;
    l->loc = lo;
    snprintf(field, sizeof field, "%s[%zu].%s", key, i, by_key);
    if (!int_field(v, by_key, field, 1, WIX_QTY_MAX, &l->by, &ok, res)) {
        reply_bad_field(res, field, "REQUIRED_FIELD", "is required");
        return false;
    }
    return ok;
}

/* Reads every line; then checks each names a live level (404 else) and
 * notes its item's tracking. Nothing is written. */
static bool bulk_lines_or_reply(inv_engine *e, yajl_val root, const char *key, const char *by_key,
                                bulk_line *lines, size_t *n_out, http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    yajl_val arr = http_json_get(root, key);
    if (arr == NULL || !YAJL_IS_ARRAY(arr) || arr->u.array.len == 0 ||
        arr->u.array.len > WIX_BULK_LINES_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an array of 1 to %d lines", WIX_BULK_LINES_MAX);
        reply_bad_field(res, key, arr == NULL ? "REQUIRED_FIELD" : "FORMAT", msg);
        return false;
    }
    size_t n = arr->u.array.len;
    for (size_t i = 0; i < n; i++)
        if (!bulk_line_or_reply(arr->u.array.values[i], i, key, by_key, &lines[i], res))
            return false;
    for (size_t i = 0; i < n; i++) {
        inv_item it;
        inv_level lv;
        if (inv_item_get(e, lines[i].item, &it) != INV_OK ||
            inv_level_get(e, lines[i].item, lines[i].loc, &lv) != INV_OK) {
            reply_not_found(res, lines[i].item, lines[i].loc);
            return false;
        }
        lines[i].tracked = it.fields.tracked;
    }
    *n_out = n;
    return true;
}

static void reply_insufficient(http_response *res, const bulk_line *l, int64_t available)
{
    assert(http_response_ok(res));
    char id[WIX_GUID_LEN + 1], msg[WIX_MSG_MAX];
    guid_format(l->item, l->loc, id);
    snprintf(msg, sizeof msg,
             "inventory item %s has %lld available, fewer than the %lld asked for (the "
             "preorder limit included): nothing was changed",
             id, (long long)available, (long long)l->by);
    wix_datum d[3] = {
        {"inventoryItemId", id, 0}, {"available", NULL, available}, {"decrementBy", NULL, l->by}};
    reply_app_error(res, http_status_for(INV_EINSUFFICIENT), "INSUFFICIENT_INVENTORY", msg, d, 3);
}

/* {"inventoryItems": [...]}: each level the lines named, once, in order. */
static void reply_bulk(const http_request *req, http_response *res, const bulk_line *lines,
                       size_t n)
{
    assert(http_request_ok(req) && http_response_ok(res));
    res->status = 200;
    http_json_obj_open(res->body);
    http_json_key(res->body, "inventoryItems");
    http_json_arr_open(res->body);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = lines[k].item == lines[i].item && lines[k].loc == lines[i].loc;
        inv_item it;
        inv_level_full lv;
        if (!seen && read_inventory_item(req->e, lines[i].item, lines[i].loc, &it, &lv))
            write_inventory_item(res->body, &it, lines[i].loc, &lv);
    }
    http_json_arr_close(res->body);
    http_json_obj_close(res->body);
}

/* The bulk change: every tracked line's adjust in one batch (all or
 * nothing); a decrement passes no floor, so each follows its level's
 * oversell policy (DENY: never below 0; preorder: down to -limit). Lines on
 * untracked (inStock) items change nothing: their stock is a status. */
static void bulk_change(const http_request *req, http_response *res, bool decrement)
{
    assert(http_request_ok(req) && http_response_ok(res));
    /* per event loop, not on its stack (about 50 KiB): a handler never
     * runs twice at once on one thread */
    static _Thread_local bulk_line lines[WIX_BULK_LINES_MAX];
    static _Thread_local inv_batch_line batch[WIX_BULK_LINES_MAX];
    static _Thread_local inv_batch_result results[WIX_BULK_LINES_MAX];
    static _Thread_local size_t line_of[WIX_BULK_LINES_MAX];
    const char *key = decrement ? "decrementData" : "incrementData";
    size_t n = 0, m = 0, failed = 0;
    yajl_val root = body_or_reply(req, res);
    if (root == NULL ||
        !bulk_lines_or_reply(req->e, root, key, decrement ? "decrementBy" : "incrementBy", lines,
                             &n, res))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!lines[i].tracked)
            continue;
        batch[m] = (inv_batch_line){.op = INV_BATCH_LEVEL_ADJUST,
                                    .item = lines[i].item,
                                    .location = lines[i].loc,
                                    .qty = decrement ? -lines[i].by : lines[i].by,
                                    .floor = INV_NO_FLOOR};
        line_of[m++] = i;
    }
    assert(m <= n && n <= WIX_BULK_LINES_MAX);
    int rc = m ? inv_batch(req->e, batch, m, results, &failed) : INV_OK;
    if (rc == INV_OK) {
        res->durable_at = m ? inv_last_write_position() : 0;
        reply_bulk(req, res, lines, n);
    } else if (rc == INV_EINSUFFICIENT && failed < m) {
        reply_insufficient(res, &lines[line_of[failed]], results[failed].level.available);
    } else if (rc == INV_ENOTFOUND && failed < m) {
        reply_not_found(res, batch[failed].item, batch[failed].location);
    } else {
        reply_engine_error(res, rc, decrement ? "decrementing" : "incrementing");
    }
out:
    yajl_tree_free(root);
}

/* POST /stores/v3/inventory-items/decrement {"decrementData": [{
 * "inventoryItemId", "decrementBy"}, ...]}: 200 {"inventoryItems"}. */
static void h_decrement(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    bulk_change(req, res, true);
}

/* POST /stores/v3/inventory-items/increment {"incrementData": [{
 * "inventoryItemId", "incrementBy"}, ...]}: 200 {"inventoryItems"}. */
static void h_increment(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    bulk_change(req, res, false);
}

/* ---- query ------------------------------------------------------------------ *
 *
 * What the engine lists exactly: every level (a cursor scan), the levels at
 * one location (the same scan, filtered), one variant's levels (by location),
 * one product's (its items by id, each by location), one _id. A cursor
 * carries the whole position and filter (a filter beside it is ignored). */

typedef enum {
    PAGE_ALL = 'A', /* every level: engine cursor */
    PAGE_LOCATION = 'L', /* at loc: engine cursor */
    PAGE_VARIANT = 'V', /* item's levels [at loc] after after_loc */
    PAGE_PRODUCT = 'P', /* product's items from item, [at loc] after after_loc */
    PAGE_ID = 'I', /* (item, loc): one level, no paging */
    PAGE_NONE = 'N' /* an unknown variant: nothing, no paging */
} page_mode;

enum { PAGE_HAS_LOC = 1, PAGE_HAS_AFTER = 2 };

typedef struct {
    uint8_t mode; /* page_mode */
    uint8_t flags; /* PAGE_HAS_* */
    uint64_t item, loc, after_loc, cursor;
    char product[INV_VARIANT_MAX + 1];
} wix_page;

static void put_u64(uint8_t *p, uint64_t v)
{
    assert(p != NULL);
    for (size_t i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    assert(p[7] == (uint8_t)v); /* big-endian: the low byte last */
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    assert(p != NULL);
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | p[i];
    assert((uint8_t)v == p[7]);
    return v;
}

/* The cursor of st into text (lower-case hex, NUL-terminated). */
static void page_encode(const wix_page *st, char *text, size_t cap)
{
    uint8_t raw[WIX_TOKEN_BYTES_MAX];
    size_t plen = strlen(st->product), n = 0;
    assert(cap >= WIX_TOKEN_TEXT_MAX && plen <= INV_VARIANT_MAX);
    raw[n++] = WIX_TOKEN_VERSION;
    raw[n++] = st->mode;
    raw[n++] = st->flags;
    const uint64_t words[4] = {st->item, st->loc, st->after_loc, st->cursor};
    for (size_t i = 0; i < 4; i++, n += 8)
        put_u64(raw + n, words[i]);
    raw[n++] = (uint8_t)plen;
    memcpy(raw + n, st->product, plen);
    n += plen;
    for (size_t i = 0; i < n; i++)
        snprintf(text + 2 * i, 3, "%02x", raw[i]);
}

/* false: not a cursor this server wrote. */
static bool page_decode(const char *text, size_t len, wix_page *st)
{
    assert(text != NULL && st != NULL);
    uint8_t raw[WIX_TOKEN_BYTES_MAX];
    size_t n = len / 2;
    if (len % 2 || n < 3 + 32 + 1 || n > sizeof raw)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    memset(st, 0, sizeof *st);
    st->mode = raw[1];
    st->flags = raw[2];
    st->item = get_u64(raw + 3);
    st->loc = get_u64(raw + 11);
    st->after_loc = get_u64(raw + 19);
    st->cursor = get_u64(raw + 27);
    size_t plen = raw[35];
    if (raw[0] != WIX_TOKEN_VERSION || plen != n - 36 || (st->flags & ~3u) != 0 ||
        memchr(raw + 36, '\0', plen) != NULL)
        return false;
    memcpy(st->product, raw + 36, plen);
    st->product[plen] = '\0';
    bool has_loc = st->flags & PAGE_HAS_LOC;
    switch (st->mode) {
    case PAGE_ALL:
        return !has_loc && plen == 0;
    case PAGE_LOCATION:
        return has_loc && plen == 0;
    case PAGE_VARIANT:
        return plen == 0;
    case PAGE_PRODUCT:
        return plen > 0;
    default:
        return false; /* PAGE_ID is never paged */
    }
}

/* A filter's value: "x" or {"$eq": "x"}; false (and a 400) otherwise. */
static bool filter_value_or_reply(yajl_val v, const char *field, const char **out,
                                  http_response *res)
{
    assert(http_response_ok(res));
    if (YAJL_IS_OBJECT(v) && v->u.object.len == 1 && strcmp(v->u.object.keys[0], "$eq") == 0)
        v = v->u.object.values[0];
    if (YAJL_IS_STRING(v)) {
        *out = v->u.string;
        return true;
    }
    reply_bad_field(res, field, "NOT_SUPPORTED",
                    "only a string or {\"$eq\": string} can be matched exactly");
    return false;
}

/* A filter GUID value: false (and a 400) when not a GUID. */
static bool filter_guid_or_reply(const char *s, const char *field, uint64_t *hi, uint64_t *lo,
                                 http_response *res)
{
    assert(http_response_ok(res));
    if (guid_parse(s, strlen(s), hi, lo))
        return true;
    reply_bad_field(res, field, "FORMAT", "must be a GUID string (8-4-4-4-12 hex digits)");
    return false;
}

/* The filter's one field key into st; false (and a 400) when refused. */
static bool filter_field_or_reply(inv_engine *e, const char *key, const char *s, wix_page *st,
                                  http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    uint64_t hi, lo;
    char field[80];
    snprintf(field, sizeof field, "query.filter.%.40s", key);
    if (strcmp(key, "locationId") == 0) {
        if (!filter_guid_or_reply(s, field, &hi, &st->loc, res) ||
            !location_in_namespace_or_reply(hi, field, res))
            return false;
        st->flags |= PAGE_HAS_LOC;
    } else if (strcmp(key, "variantId") == 0 && st->mode == PAGE_ALL) {
        char guid[WIX_GUID_LEN + 1];
        if (!filter_guid_or_reply(s, field, &hi, &lo, res))
            return false;
        guid_format(hi, lo, guid);
        st->mode = inv_item_by_variant(e, guid, &st->item) == INV_OK ? PAGE_VARIANT : PAGE_NONE;
    } else if (strcmp(key, "productId") == 0 && st->mode == PAGE_ALL) {
        size_t len = strlen(s);
        if (len == 0 || len > WIX_PRODUCT_ID_MAX) {
            reply_bad_field(res, field, "MAX_LENGTH", "must be a string of 1 to 36 bytes");
            return false;
        }
        st->mode = PAGE_PRODUCT;
        memcpy(st->product, s, len + 1);
    } else if (strcmp(key, "_id") == 0 && st->mode == PAGE_ALL) {
        if (!filter_guid_or_reply(s, field, &st->item, &st->loc, res))
            return false;
        st->mode = PAGE_ID;
    } else {
        reply_bad_field(res, field, "NOT_SUPPORTED",
                        "filters are variantId, productId or _id (one of them), and locationId");
        return false;
    }
    return true;
}

/* query.filter into st (mode PAGE_ALL when none). */
static bool filter_or_reply(inv_engine *e, yajl_val q, wix_page *st, http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    yajl_val f = http_json_get(q, "filter");
    memset(st, 0, sizeof *st);
    st->mode = PAGE_ALL;
    if (f == NULL || YAJL_IS_NULL(f))
        return true;
    if (!YAJL_IS_OBJECT(f)) {
        reply_bad_field(res, "query.filter", "FORMAT", "must be a JSON object");
        return false;
    }
    for (size_t i = 0; i < f->u.object.len; i++) {
        const char *s = NULL;
        if (!filter_value_or_reply(f->u.object.values[i], "query.filter", &s, res) ||
            !filter_field_or_reply(e, f->u.object.keys[i], s, st, res))
            return false;
    }
    if (st->mode == PAGE_ID && (st->flags & PAGE_HAS_LOC)) {
        reply_bad_field(res, "query.filter", "NOT_SUPPORTED", "_id stands alone");
        return false;
    }
    if (st->mode == PAGE_ALL && (st->flags & PAGE_HAS_LOC))
        st->mode = PAGE_LOCATION;
    return true;
}

/* query.cursorPaging (and the paging forms refused): the limit, and the
 * cursor decoded into st when one is given (*has_cursor). */
static bool paging_or_reply(yajl_val q, wix_page *st, bool *has_cursor, size_t *limit,
                            http_response *res)
{
    assert(http_response_ok(res));
    yajl_val p = http_json_get(q, "cursorPaging"), sort = http_json_get(q, "sort");
    yajl_val c = http_json_get(p, "cursor");
    bool ok = true;
    int64_t lim;
    *limit = WIX_QUERY_LIMIT_DEFAULT;
    *has_cursor = false;
    if (http_json_get(q, "paging") != NULL) {
        reply_bad_field(res, "query.paging", "NOT_SUPPORTED",
                        "offset paging is not supported: use cursorPaging");
        return false;
    }
    if (sort != NULL && !YAJL_IS_NULL(sort) && !(YAJL_IS_ARRAY(sort) && sort->u.array.len == 0)) {
        reply_bad_field(res, "query.sort", "NOT_SUPPORTED",
                        "sorting is not supported: the order is documented per filter");
        return false;
    }
    if (p == NULL || YAJL_IS_NULL(p))
        return true;
    if (!YAJL_IS_OBJECT(p)) {
        reply_bad_field(res, "query.cursorPaging", "FORMAT", "must be a JSON object");
        return false;
    }
    if (int_field(p, "limit", "query.cursorPaging.limit", 1, WIX_QUERY_LIMIT_MAX, &lim, &ok, res))
        *limit = (size_t)lim;
    if (!ok || c == NULL || YAJL_IS_NULL(c))
        return ok;
    if (!YAJL_IS_STRING(c) || !page_decode(c->u.string, strlen(c->u.string), st)) {
        reply_bad_field(res, "query.cursorPaging.cursor", "FORMAT",
                        "is not a cursor this server wrote");
        return false;
    }
    *has_cursor = true;
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    uint64_t x = ((const inv_level_entry *)a)->location;
    uint64_t y = ((const inv_level_entry *)b)->location;
    return (x > y) - (x < y);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The levels of one item it (by location), after st's position when st
 * names it, [at st->loc]: written up to limit rows in all (*shown counts
 * them); *more once a row past the limit exists. st follows the last row
 * written. */
static void list_item_levels(inv_engine *e, http_body *b, const inv_item *it, inv_level_entry *ent,
                             wix_page *st, size_t limit, size_t *shown, bool *more)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    size_t n = 0;
    bool resume = it->id == st->item && (st->flags & PAGE_HAS_AFTER);
    assert(*shown <= limit && !*more);
    if (inv_level_list(e, it->id, ent, INV_LOCATIONS_MAX, &n) != INV_OK)
        return; /* deleted meanwhile: nothing to list */
    n = n < INV_LOCATIONS_MAX ? n : INV_LOCATIONS_MAX;
    qsort(ent, n, sizeof *ent, entry_cmp);
    for (size_t k = 0; k < n; k++) {
        uint64_t loc = ent[k].location;
        inv_level_full lv;
        if ((resume && loc <= st->after_loc) || ((st->flags & PAGE_HAS_LOC) && loc != st->loc))
            continue;
        if (*shown == limit) {
            *more = true;
            return;
        }
        if (inv_level_get_full(e, it->id, loc, &lv) != INV_OK)
            continue; /* deleted since it was listed */
        write_inventory_item(b, it, loc, &lv);
        (*shown)++;
        st->item = it->id;
        st->after_loc = loc;
        st->flags |= PAGE_HAS_AFTER;
    }
}

/* The levels of items[0..n) (ascending) from st's position on. */
static int list_items(inv_engine *e, http_body *b, const uint64_t *items, size_t n, wix_page *st,
                      size_t limit, size_t *shown, bool *more)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    assert(limit >= 1 && limit <= WIX_QUERY_LIMIT_MAX);
    inv_level_entry *ent = inv_malloc(INV_LOCATIONS_MAX * sizeof *ent);
    if (ent == NULL)
        return INV_ENOMEM;
    for (size_t i = 0; i < n && !*more; i++) {
        inv_item it;
        if (items[i] >= st->item && inv_item_get(e, items[i], &it) == INV_OK)
            list_item_levels(e, b, &it, ent, st, limit, shown, more);
    }
    free(ent);
    return INV_OK;
}

/* A product's items, by id, and their levels from st's position on. */
static int list_product(inv_engine *e, http_body *b, wix_page *st, size_t limit, size_t *shown,
                        bool *more)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    uint64_t *items = inv_malloc(INV_PRODUCT_ITEMS_MAX * sizeof *items);
    size_t n = 0;
    if (items == NULL)
        return INV_ENOMEM;
    int rc = inv_product_items(e, st->product, items, INV_PRODUCT_ITEMS_MAX, &n);
    if (rc == INV_ENOTFOUND) /* no item has this product */
        rc = INV_OK, n = 0;
    if (rc == INV_OK) {
        qsort(items, n, sizeof *items, u64_cmp);
        rc = list_items(e, b, items, n, st, limit, shown, more);
    }
    free(items);
    return rc;
}

/* Every level, or those at st->loc, over the engine's cursor scan: up to
 * limit rows and WIX_SCAN_ROUNDS_MAX engine pages; *more while the scan's
 * cursor is not 0 (the next page may then be empty). */
static int list_scan(inv_engine *e, http_body *b, wix_page *st, size_t limit, size_t *shown,
                     bool *more)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    assert(limit >= 1 && limit <= WIX_QUERY_LIMIT_MAX);
    inv_level_full_row *rows = inv_malloc(limit * sizeof *rows);
    inv_level_filter f = {.location = st->loc, .has_location = (st->flags & PAGE_HAS_LOC) != 0};
    int rc = INV_OK;
    if (rows == NULL)
        return INV_ENOMEM;
    for (size_t round = 0; round < WIX_SCAN_ROUNDS_MAX && *shown < limit; round++) {
        size_t n = 0, want = limit - *shown;
        uint64_t next = 0;
        rc = inv_level_list_page(e, &f, st->cursor, want, rows, want, &n, &next);
        if (rc != INV_OK)
            break;
        for (size_t i = 0; i < n && i < want; i++) {
            inv_item it;
            if (inv_item_get(e, rows[i].item, &it) != INV_OK)
                continue; /* deleted since it was listed */
            write_inventory_item(b, &it, rows[i].location, &rows[i].level);
            (*shown)++;
        }
        st->cursor = next;
        if (next == 0)
            break;
    }
    if (rc == INV_ENOTFOUND && f.has_location) /* no such location: no levels */
        rc = INV_OK, st->cursor = 0;
    *more = rc == INV_OK && st->cursor != 0;
    free(rows);
    return rc;
}

/* The page of st into b's open array: rows written, whether more follow. */
static int list_page(inv_engine *e, http_body *b, wix_page *st, size_t limit, size_t *shown,
                     bool *more)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    inv_item it;
    inv_level_full lv;
    *shown = 0;
    *more = false;
    switch (st->mode) {
    case PAGE_ALL:
    case PAGE_LOCATION:
        return list_scan(e, b, st, limit, shown, more);
    case PAGE_VARIANT:
        return list_items(e, b, &st->item, 1, st, limit, shown, more);
    case PAGE_PRODUCT:
        return list_product(e, b, st, limit, shown, more);
    case PAGE_ID:
        if (read_inventory_item(e, st->item, st->loc, &it, &lv)) {
            write_inventory_item(b, &it, st->loc, &lv);
            *shown = 1;
        }
        return INV_OK;
    default:
        assert(st->mode == PAGE_NONE);
        return INV_OK;
    }
}

/* "pagingMetadata": {"count", "cursors": {"next"?}, "hasNext"}. */
static void write_paging(http_body *b, const wix_page *st, size_t count, bool more)
{
    assert(b != NULL && b->len <= b->cap);
    static _Thread_local char token[WIX_TOKEN_TEXT_MAX];
    assert(count <= WIX_QUERY_LIMIT_MAX);
    assert(!more || st->mode != PAGE_ID); /* one _id is never paged */
    http_json_key(b, "pagingMetadata");
    http_json_obj_open(b);
    http_json_key(b, "count");
    http_json_u64(b, count);
    http_json_key(b, "cursors");
    http_json_obj_open(b);
    if (more) {
        page_encode(st, token, sizeof token);
        http_json_kv_str(b, "next", token);
    }
    http_json_obj_close(b);
    http_json_key(b, "hasNext");
    http_json_bool(b, more);
    http_json_obj_close(b);
}

/* POST /stores/v3/inventory-items/query {"query": {"filter": {...},
 * "cursorPaging": {"limit", "cursor"}}}: 200 {"inventoryItems",
 * "pagingMetadata"}. */
static void h_query(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 0); /* the route: a tenant, its pattern's params */
    wix_page st;
    size_t limit, shown = 0;
    bool has_cursor, more = false;
    yajl_val root = body_or_reply(req, res), q = NULL;
    if (root == NULL)
        return;
    q = http_json_get(root, "query");
    if (q != NULL && !YAJL_IS_OBJECT(q)) {
        reply_bad_field(res, "query", "FORMAT", "must be a JSON object");
        goto out;
    }
    if (!paging_or_reply(q, &st, &has_cursor, &limit, res) ||
        (!has_cursor && !filter_or_reply(req->e, q, &st, res)))
        goto out;
    res->status = 200;
    http_json_obj_open(res->body);
    http_json_key(res->body, "inventoryItems");
    http_json_arr_open(res->body);
    int rc = list_page(req->e, res->body, &st, limit, &shown, &more);
    http_json_arr_close(res->body);
    write_paging(res->body, &st, shown, more);
    http_json_obj_close(res->body);
    if (rc != INV_OK)
        reply_engine_error(res, rc, "querying inventory items");
out:
    yajl_tree_free(root);
}

/* ---- the routing table -------------------------------------------------- */

#define WIX(m, p, fn)                                           \
    {                                                           \
        m, "/stores/v3/inventory-items" p, HTTP_DIALECT_WIX, fn \
    }

const http_route http_wix_routes[] = {
    WIX(HTTP_POST, "", h_create),
    WIX(HTTP_POST, "/query", h_query),
    WIX(HTTP_POST, "/decrement", h_decrement),
    WIX(HTTP_POST, "/increment", h_increment),
    WIX(HTTP_GET, "/{id}", h_get),
    WIX(HTTP_PATCH, "/{id}", h_update),
    WIX(HTTP_DELETE, "/{id}", h_delete),
};

const size_t http_wix_routes_n = NELEMS(http_wix_routes);
