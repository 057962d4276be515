/*
 * http_connector.c — the connector dialect of the HTTP face
 * (docs/HTTP.md "Connector", seed 001): a Shopify connector's inventory
 * endpoints under /api/ — inventory items, inventory levels and inventory
 * locations, each with create (POST), update (PUT), find (GET), a bulk
 * create of up to CONNECTOR_BULK_ROWS_MAX rows, and DELETE for items and
 * levels — served from the engine in the seed's flat JSON shapes.
 *
 * Invariants: every handler first checks the X-TWC-Tenant header (400
 * without a usable one), then validates every id and body field before it
 * calls the engine, and writes exactly one body: the object, a bulk's
 * per-row report, or {"error":"<message>"} (a body begun and then refused
 * is reset first). A request is applied whole or not at all; a bulk's rows
 * are independent creates, each applied whole or not at all on its own.
 * POST never overwrites (the engine's create-only calls decide, so of two
 * concurrent creators exactly one gets 201); PUT never creates an item,
 * level or location that did not exist when it was read (a level's update
 * is a compare-and-set on its revision). Unknown fields and read-only
 * fields are ignored. A write sets res->durable_at to its journal
 * position, so the listener answers only once it is durable. No handler
 * blocks or takes a lock; nothing here allocates but the JSON tree of the
 * request.
 *
 * Tenants: until the tenants issue lands every tenant name selects the one
 * namespace of the engine (the header is required and checked, not used).
 */
#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "server/http_fields.h"
#include "server/http_json.h"
#include "server/http_route.h"

/* ---- limits ------------------------------------------------------------- */

/* Rows in one bulk create (/api/inventoryitems, ...levels, ...locations). */
#define CONNECTOR_BULK_ROWS_MAX 250
/* Bytes of an X-TWC-Tenant value: a tenant's name, not a document. */
#define CONNECTOR_TENANT_BYTES_MAX 64
/* Bytes of one error message (a field, its rule and a quoted value). */
#define CONNECTOR_MSG_MAX 256
/* Bytes of a client value quoted back in an error message. */
#define CONNECTOR_QUOTE_MAX 64
/* A level update's compare-and-set attempts before it answers 409: other
 * writers changed the level between each read and write this many times. */
#define CONNECTOR_LEVEL_SET_TRIES_MAX 8
/* A cost's decimal text, normalised for JSON (a sign, digits, a point). */
#define CONNECTOR_COST_TEXT_MAX (INV_COST_MAX + 2)

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- results: one per object created, updated or refused ---------------- */

/* An inventory level as the dialect shows it. */
typedef struct {
    uint64_t item, loc;
    inv_level_full full;
    bool tracked; /* the item's: an untracked item's available is null */
} level_view;

/* The outcome of one create or update: an HTTP status and either the
 * object to answer (2xx) or a message (4xx/5xx). */
typedef struct {
    int status;
    bool deleted; /* an item answered as deleted (its last state) */
    bool wrote; /* an engine write succeeded: the answer waits for it */
    char msg[CONNECTOR_MSG_MAX];
    union {
        inv_item item;
        inv_location loc;
        level_view level;
    } u;
} conn_result;

/* A zeroed result of the calling thread: a location's is large, so it
 * lives off the event loop's stack. One request uses one at a time. */
static conn_result *result_fresh(void)
{
    static _Thread_local conn_result r;
    memset(&r, 0, sizeof r);
    assert(r.status == 0 && !r.wrote); /* nothing decided yet */
    return &r;
}

/* Sets r to a refusal with a printf message; returns false (for
 * `return refuse(...)` in the readers below). */
static bool refuse(conn_result *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool refuse(conn_result *r, int status, const char *fmt, ...)
{
    assert(r != NULL && status >= 400 && status < 600);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    assert(n > 0); /* a message is never empty; a long one is cut */
    r->status = status;
    return false;
}

/* The engine's refusal rc not handled by the caller: its status from the
 * one error table, its message from the engine. */
static void refuse_engine(conn_result *r, int rc, const char *what)
{
    assert(rc != INV_OK && what != NULL);
    refuse(r, http_status_for(rc), "%s: %s", what, inv_strerror(rc));
}

/* ---- replies -------------------------------------------------------------- */

/* {"error":"<msg>"} with status; resets a body already begun. A refused
 * request is durable at nothing. */
static void reply_error(http_response *res, int status, const char *msg)
{
    assert(http_response_ok(res));
    assert(status >= 400 && status < 600 && msg != NULL);
    http_body_reset(res->body);
    res->status = status;
    res->durable_at = 0;
    http_json_obj_open(res->body);
    http_json_key(res->body, "error");
    http_json_cstr(res->body, msg);
    http_json_obj_close(res->body);
}

/* ---- shapes ----------------------------------------------------------------- */

/* A cost as a JSON number (the seed's type). The engine keeps decimal
 * text (-?digits(.digits)?), which may carry leading zeros that JSON
 * forbids ("007.50" written over RESP): they are dropped. null when unset. */
static void kv_cost(http_body *b, const char *cost)
{
    assert(b != NULL && b->len <= b->cap);
    char num[CONNECTOR_COST_TEXT_MAX];
    size_t n = 0, i = 0, len = strlen(cost);
    assert(len <= INV_COST_MAX);
    http_json_key(b, "cost");
    if (len == 0) {
        http_json_null(b);
        return;
    }
    if (cost[0] == '-')
        num[n++] = cost[i++];
    while (i + 1 < len && cost[i] == '0' && cost[i + 1] != '.')
        i++;
    memcpy(num + n, cost + i, len - i);
    n += len - i;
    assert(n < sizeof num);
    if (yajl_gen_number(http_json_gen(b), num, n) != yajl_gen_status_ok)
        b->failed = true; /* the listener answers 500, never half a body */
}

/* The seed's inventory item, every field, in the seed's (alphabetical)
 * order. */
static void write_item(http_body *b, const conn_result *r)
{
    assert(b != NULL && b->len <= b->cap);
    const inv_item *it = &r->u.item;
    const inv_item_fields *f = &it->fields;
    assert(b != NULL && it->id != 0);
    http_json_obj_open(b);
    http_gid_write(b, "InventoryItem", it->id);
    kv_cost(b, f->cost);
    http_json_kv_str_or_null(b, "country_code_of_origin", f->country_code_of_origin);
    http_country_hs_write(b, f->country_hs_codes);
    http_json_kv_time_ms(b, "created_at", it->created_at_ms);
    http_json_kv_bool(b, "deleted", r->deleted);
    http_json_kv_str_or_null(b, "harmonized_system_code", f->harmonized_system_code);
    http_json_kv_id(b, "id", it->id);
    http_json_kv_str_or_null(b, "province_code_of_origin", f->province_code_of_origin);
    http_json_kv_bool(b, "requires_shipping", f->requires_shipping);
    http_json_kv_str_or_null(b, "sku", f->sku);
    http_json_kv_bool(b, "tracked", f->tracked);
    http_json_kv_time_ms(b, "updated_at", it->updated_at_ms);
    http_json_obj_close(b);
}

/* The seed's inventory level. admin_graphql_api_id is Shopify's form for a
 * level (as the Shopify dialect writes it). */
static void write_level(http_body *b, const conn_result *r)
{
    assert(b != NULL && b->len <= b->cap);
    const level_view *v = &r->u.level;
    assert(b != NULL && v->item != 0 && v->loc != 0);
    http_json_obj_open(b);
    http_level_gid_write(b, v->item, v->loc);
    http_json_key(b, "available");
    if (v->tracked)
        http_json_i64(b, v->full.qty[INV_QTY_AVAILABLE]);
    else
        http_json_null(b); /* the seed: null when the item is not tracked */
    http_json_kv_time_ms(b, "created_at", v->full.created_at_ms);
    http_json_kv_id(b, "inventory_item_id", v->item);
    http_json_kv_id(b, "location_id", v->loc);
    http_json_kv_time_ms(b, "updated_at", v->full.updated_at_ms);
    http_json_obj_close(b);
}

/* The seed's inventory location, every field, in the seed's order; the
 * derived ones (country_name, localized_*, legacy, the gid) from the
 * stored ones. */
static void write_location(http_body *b, const conn_result *r)
{
    assert(b != NULL && b->len <= b->cap);
    const inv_location *l = &r->u.loc;
    const inv_location_fields *f = &l->fields;
    assert(b != NULL && l->id != 0);
    http_json_obj_open(b);
    http_json_kv_bool(b, "active", f->active);
    http_json_kv_str_or_null(b, "address1", f->address1);
    http_json_kv_str_or_null(b, "address2", f->address2);
    http_gid_write(b, "Location", l->id);
    http_json_kv_str_or_null(b, "city", f->city);
    http_json_kv_str_or_null(b, "country", f->country);
    http_json_kv_str_or_null(b, "country_code", f->country_code);
    http_json_kv_str_or_null(b, "country_name", f->country);
    http_json_kv_time_ms(b, "created_at", l->created_at_ms);
    http_json_kv_id(b, "id", l->id);
    http_json_kv_bool(b, "legacy", false);
    http_json_kv_str_or_null(b, "localized_country_name", f->country);
    http_json_kv_str_or_null(b, "localized_province_name", f->province);
    http_json_kv_str_or_null(b, "name", f->name);
    http_json_kv_str_or_null(b, "phone", f->phone);
    http_json_kv_str_or_null(b, "province", f->province);
    http_json_kv_str_or_null(b, "province_code", f->province_code);
    http_json_kv_time_ms(b, "updated_at", l->updated_at_ms);
    http_json_kv_str_or_null(b, "zip", f->zip);
    http_json_obj_close(b);
}

/* ---- reading requests ----------------------------------------------------- */

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ISO 3166-1 alpha-2 as the engine keeps it: two upper-case letters. */
static bool country_code_ok(const char *s, size_t len)
{
    assert(s != NULL || len == 0);
    return len == INV_COUNTRY_CODE_MAX && is_upper(s[0]) && is_upper(s[1]);
}

/* A harmonized system code: 6 to INV_HS_CODE_MAX digits. */
static bool hs_code_ok(const char *s, size_t len)
{
    size_t i = 0;
    assert(s != NULL || len == 0);
    while (i < len && is_digit(s[i]))
        i++;
    assert(i <= len);
    return i == len && len >= 6 && len <= INV_HS_CODE_MAX;
}

/* A cost: -?digits(.digits{1,6})?, the engine's rule. */
static bool cost_ok(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '-', j = i;
    assert(s != NULL || len == 0);
    while (j < len && is_digit(s[j]))
        j++;
    if (j == i)
        return false;
    if (j == len)
        return true;
    size_t k = j + 1;
    assert(j < len && k <= len); /* a byte follows the whole digits */
    while (k < len && is_digit(s[k]))
        k++;
    return s[j] == '.' && k == len && k - (j + 1) >= 1 && k - (j + 1) <= 6;
}

/* The X-TWC-Tenant header: required, 1..CONNECTOR_TENANT_BYTES_MAX
 * printable ASCII bytes. Until the tenants issue lands every name maps to
 * the one namespace. */
static bool tenant_ok_or_reply(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    http_str t = {NULL, 0};
    bool ok = req->header != NULL && req->header(req, "X-TWC-Tenant", &t) && t.len > 0 &&
              t.len <= CONNECTOR_TENANT_BYTES_MAX;
    for (size_t i = 0; ok && i < t.len; i++)
        ok = t.p[i] >= 0x20 && t.p[i] <= 0x7e;
    if (!ok)
        reply_error(res, 400, "X-TWC-Tenant header is required");
    return ok;
}

/* An id in the path ({inventoryRef}, {id}, {item}, {loc}): 400 unless a
 * decimal u64 from 1, without sign. */
static bool path_id_or_reply(const http_request *req, size_t i, const char *name, uint64_t *id,
                             http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(i < req->n_params && name != NULL);
    if (http_parse_id(req->params[i], id))
        return true;
    char msg[CONNECTOR_MSG_MAX];
    snprintf(
        msg, sizeof msg, "%s must be a decimal id from 1 to 18446744073709551615: got \"%.*s\"",
        name,
        (int)(req->params[i].len < CONNECTOR_QUOTE_MAX ? req->params[i].len : CONNECTOR_QUOTE_MAX),
        req->params[i].p);
    reply_error(res, 400, msg);
    return false;
}

/* A required id field of a row: a decimal string (the seed's type) or a
 * JSON integer, 1..2^64-1. */
static bool row_id(yajl_val row, const char *key, uint64_t *id, conn_result *r)
{
    bool bad = false;
    assert(row != NULL && key != NULL && id != NULL && r != NULL);
    if (!http_json_get_u64(row, key, id, &bad))
        return refuse(r, 400, "%s is required", key);
    if (bad || *id == 0)
        return refuse(r, 400,
                      "%s must be a decimal id from 1 to 18446744073709551615 (a string or an "
                      "integer)",
                      key);
    return true;
}

/* An optional bool field: *present false when absent. */
static bool row_bool(yajl_val row, const char *key, bool *out, bool *present, conn_result *r)
{
    bool bad = false;
    assert(row != NULL && key != NULL && out != NULL && present != NULL && r != NULL);
    *present = http_json_get_bool(row, key, out, &bad);
    if (bad)
        return refuse(r, 400, "%s must be true or false", key);
    return true;
}

/* What a string field's value must look like. */
typedef enum {
    FIELD_TEXT = 0, /* any text that fits */
    FIELD_COUNTRY = 1, /* "" or two upper-case letters */
    FIELD_HS = 2, /* "" or 6..16 digits */
    FIELD_COST = 3 /* a JSON number or decimal text, -?digits(.digits{1,6})? */
} field_rule;

/* One writable string field of an item or a location: its JSON name, its
 * mask bit and place in the fields struct (either kind: both start with
 * their mask). */
typedef struct {
    const char *name;
    unsigned mask;
    size_t off, cap; /* cap: the array's size, NUL included */
    field_rule rule;
} str_field;

#define STR_FIELD(T, n, m, rule)                         \
    {                                                    \
#n, m, offsetof(T, n), sizeof(((T *)0)->n), rule \
    }

static const str_field item_str_fields[] = {
    STR_FIELD(inv_item_fields, sku, INV_ITEM_SKU, FIELD_TEXT),
    STR_FIELD(inv_item_fields, cost, INV_ITEM_COST, FIELD_COST),
    STR_FIELD(inv_item_fields, country_code_of_origin, INV_ITEM_COUNTRY_OF_ORIGIN, FIELD_COUNTRY),
    STR_FIELD(inv_item_fields, province_code_of_origin, INV_ITEM_PROVINCE_OF_ORIGIN, FIELD_TEXT),
    STR_FIELD(inv_item_fields, harmonized_system_code, INV_ITEM_HS_CODE, FIELD_HS),
};

static const str_field loc_str_fields[] = {
    STR_FIELD(inv_location_fields, name, INV_LOC_NAME, FIELD_TEXT),
    STR_FIELD(inv_location_fields, address1, INV_LOC_ADDRESS1, FIELD_TEXT),
    STR_FIELD(inv_location_fields, address2, INV_LOC_ADDRESS2, FIELD_TEXT),
    STR_FIELD(inv_location_fields, city, INV_LOC_CITY, FIELD_TEXT),
    STR_FIELD(inv_location_fields, province, INV_LOC_PROVINCE, FIELD_TEXT),
    STR_FIELD(inv_location_fields, province_code, INV_LOC_PROVINCE_CODE, FIELD_TEXT),
    STR_FIELD(inv_location_fields, country, INV_LOC_COUNTRY, FIELD_TEXT),
    STR_FIELD(inv_location_fields, country_code, INV_LOC_COUNTRY_CODE, FIELD_COUNTRY),
    STR_FIELD(inv_location_fields, zip, INV_LOC_ZIP, FIELD_TEXT),
    STR_FIELD(inv_location_fields, phone, INV_LOC_PHONE, FIELD_TEXT),
};
#undef STR_FIELD

static const char *const field_rule_text[] = {
    [FIELD_TEXT] = "a string or null",
    [FIELD_COUNTRY] = "two upper-case letters (ISO 3166-1 alpha-2), \"\" or null",
    [FIELD_HS] = "6 to 16 digits as a string, \"\" or null",
    [FIELD_COST] = "a decimal number with at most 6 fraction digits (or its text), or null",
};

/* Whether text s (len bytes) follows rule. */
static bool field_rule_ok(field_rule rule, const char *s, size_t len)
{
    assert(s != NULL && s[len] == '\0'); /* a string of the JSON tree, whole */
    switch (rule) {
    case FIELD_COUNTRY:
        return len == 0 || country_code_ok(s, len);
    case FIELD_HS:
        return len == 0 || hs_code_ok(s, len);
    case FIELD_COST:
        return len == 0 || cost_ok(s, len);
    default:
        return true;
    }
}

/* Reads string field d of row into fields (an inv_item_fields or an
 * inv_location_fields): absent leaves it; null and "" clear it. */
static bool row_str(yajl_val row, const str_field *d, void *fields, conn_result *r)
{
    assert(row != NULL && d != NULL && d->name != NULL && d->cap >= 1 && fields != NULL);
    yajl_val v = http_json_get(row, d->name);
    if (v == NULL)
        return true;
    const char *s = YAJL_IS_NULL(v)                              ? ""
                    : YAJL_IS_STRING(v)                          ? v->u.string
                    : YAJL_IS_NUMBER(v) && d->rule == FIELD_COST ? v->u.number.r
                                                                 : NULL;
    if (s == NULL)
        return refuse(r, 400, "%s must be %s", d->name, field_rule_text[d->rule]);
    size_t len = strlen(s);
    /* the rule first: it says more than a length ("Canada" for a code) */
    if (!field_rule_ok(d->rule, s, len))
        return refuse(r, 400, "%s must be %s: got \"%.*s\"", d->name, field_rule_text[d->rule],
                      CONNECTOR_QUOTE_MAX, s);
    if (len >= d->cap)
        return refuse(r, 400, "%s is too long: %zu bytes, at most %zu", d->name, len, d->cap - 1);
    memcpy((char *)fields + d->off, s, len + 1);
    *(unsigned *)fields |= d->mask; /* both structs start with their mask */
    return true;
}

static bool row_strs(yajl_val row, const str_field *fields_desc, size_t n, void *fields,
                     conn_result *r)
{
    assert(fields_desc != NULL && n >= 1 && r != NULL);
    for (size_t i = 0; i < n; i++)
        if (!row_str(row, &fields_desc[i], fields, r))
            return false;
    return true;
}

/* country_harmonized_system_codes (absent: untouched; null or []: none)
 * into the engine's text (http_fields.h): 400 naming the entry when bad. */
static bool row_country_hs_codes(yajl_val row, inv_item_fields *f, conn_result *r)
{
    yajl_val v = http_json_get(row, HTTP_COUNTRY_HS_KEY);
    char why[HTTP_FIELD_WHY_MAX];
    assert(f != NULL && r != NULL);
    if (v == NULL)
        return true;
    if (!http_country_hs_read(v, f->country_hs_codes, why, sizeof why))
        return refuse(r, 400, "%s", why);
    f->mask |= INV_ITEM_COUNTRY_HS_CODES;
    return true;
}

/* The writable fields of an item row into f (f->mask: those present). id,
 * created_at, updated_at, admin_graphql_api_id and unknown fields are
 * ignored; *deleted gets "deleted" (false when absent). */
static bool item_fields(yajl_val row, inv_item_fields *f, bool *deleted, conn_result *r)
{
    bool present;
    assert(row != NULL && f != NULL && deleted != NULL && r != NULL);
    *deleted = false;
    if (!row_strs(row, item_str_fields, NELEMS(item_str_fields), f, r) ||
        !row_country_hs_codes(row, f, r))
        return false;
    if (!row_bool(row, "tracked", &f->tracked, &present, r))
        return false;
    f->mask |= present ? INV_ITEM_TRACKED : 0;
    if (!row_bool(row, "requires_shipping", &f->requires_shipping, &present, r))
        return false;
    f->mask |= present ? INV_ITEM_REQUIRES_SHIPPING : 0;
    return row_bool(row, "deleted", deleted, &present, r);
}

/* The writable fields of a location row into f. legacy must be false or
 * absent (invcore has no fulfillment-service locations); the derived
 * fields (country_name, localized_*), id, times, the gid and unknown
 * fields are ignored. */
static bool loc_fields(yajl_val row, inv_location_fields *f, conn_result *r)
{
    bool present, legacy = false;
    assert(row != NULL && f != NULL && r != NULL);
    if (!row_strs(row, loc_str_fields, NELEMS(loc_str_fields), f, r))
        return false;
    if (!row_bool(row, "active", &f->active, &present, r))
        return false;
    f->mask |= present ? INV_LOC_ACTIVE : 0;
    if (!row_bool(row, "legacy", &legacy, &present, r))
        return false;
    if (legacy)
        return refuse(r, 400, "legacy must be false: invcore has no fulfillment-service locations");
    return true;
}

/* available: an integer within INV_QTY_MAX; absent or null leaves *qty. */
static bool row_available(yajl_val row, int64_t *qty, bool *present, conn_result *r)
{
    bool bad = false;
    assert(row != NULL && qty != NULL && present != NULL && r != NULL);
    yajl_val v = http_json_get(row, "available");
    *present = v != NULL && !YAJL_IS_NULL(v);
    if (*present && (!http_json_get_i64(row, "available", qty, &bad) || bad || *qty > INV_QTY_MAX ||
                     *qty < -INV_QTY_MAX))
        return refuse(r, 400, "available must be an integer from -%lld to %lld", INV_QTY_MAX,
                      INV_QTY_MAX);
    assert(!*present || (*qty >= -INV_QTY_MAX && *qty <= INV_QTY_MAX));
    return true;
}

/* ---- items ------------------------------------------------------------------ */

/* The item as it is now into r (201 or 200 given as status). */
static void item_answer(inv_engine *e, uint64_t id, int status, conn_result *r)
{
    assert(e != NULL);
    int rc = inv_item_get(e, id, &r->u.item);
    if (rc != INV_OK) { /* deleted by another client since our write */
        refuse(r, http_status_for(rc), "inventory item %llu was deleted meanwhile",
               (unsigned long long)id);
        return;
    }
    r->status = status;
}

/* An item write's EEXISTS: the id (create) or the SKU (another item's). */
static void item_exists(inv_engine *e, uint64_t id, const inv_item_fields *f, bool creating,
                        conn_result *r)
{
    assert(e != NULL);
    inv_item it;
    if (creating && inv_item_get(e, id, &it) == INV_OK)
        refuse(r, 409, "inventory item %llu already exists", (unsigned long long)id);
    else
        refuse(r, 409, "sku \"%.*s\" belongs to another inventory item", CONNECTOR_QUOTE_MAX,
               f->sku);
}

/* One item create (POST /api/inventoryitem, a row of /api/inventoryitems).
 * New items are tracked and require shipping unless the row says not. */
static void item_create(inv_engine *e, yajl_val row, conn_result *r)
{
    assert(e != NULL);
    inv_item_fields f;
    uint64_t id;
    bool deleted;
    memset(&f, 0, sizeof f);
    f.tracked = f.requires_shipping = true;
    f.mask = INV_ITEM_TRACKED | INV_ITEM_REQUIRES_SHIPPING; /* never 0: that means all */
    if (!row_id(row, "id", &id, r) || !item_fields(row, &f, &deleted, r))
        return;
    if (deleted) {
        refuse(r, 400, "deleted must be false on create: a deleted item cannot be created");
        return;
    }
    int rc = inv_item_create(e, id, &f);
    r->wrote = rc == INV_OK;
    if (rc == INV_OK)
        item_answer(e, id, 201, r);
    else if (rc == INV_EEXISTS)
        item_exists(e, id, &f, true, r);
    else
        refuse_engine(r, rc, "inventory item not created");
}

/* Deletes item id, answering its last state with deleted true. */
static void item_delete(inv_engine *e, uint64_t id, conn_result *r)
{
    assert(e != NULL);
    int rc = inv_item_get(e, id, &r->u.item);
    if (rc == INV_OK)
        rc = inv_item_del(e, id);
    r->wrote = rc == INV_OK;
    if (rc == INV_OK) {
        r->status = 200;
        r->deleted = true;
    } else if (rc == INV_ENOTFOUND) {
        refuse(r, 404, "inventory item %llu not found", (unsigned long long)id);
    } else if (rc == INV_ECONFLICT) {
        refuse(r, 409,
               "inventory item %llu has units reserved by live holds: it cannot be deleted now",
               (unsigned long long)id);
    } else {
        refuse_engine(r, rc, "inventory item not deleted");
    }
}

/* PUT /api/inventoryitem: updates the fields present of an existing item
 * (404 else); "deleted": true deletes it instead (its other fields are
 * checked, not written). */
static void item_update(inv_engine *e, yajl_val row, conn_result *r)
{
    assert(e != NULL);
    inv_item_fields f;
    uint64_t id;
    bool deleted;
    memset(&f, 0, sizeof f);
    if (!row_id(row, "id", &id, r) || !item_fields(row, &f, &deleted, r))
        return;
    if (deleted) {
        item_delete(e, id, r);
        return;
    }
    int rc = inv_item_get(e, id, &r->u.item);
    if (rc == INV_OK && f.mask != 0) { /* nothing writable given: answered as is */
        rc = inv_item_put(e, id, &f);
        r->wrote = rc == INV_OK;
    }
    if (rc == INV_OK)
        item_answer(e, id, 200, r);
    else if (rc == INV_ENOTFOUND)
        refuse(r, 404, "inventory item %llu not found", (unsigned long long)id);
    else if (rc == INV_EEXISTS)
        item_exists(e, id, &f, false, r);
    else
        refuse_engine(r, rc, "inventory item not updated");
}

/* ---- levels ----------------------------------------------------------------- */

/* The level (item, loc) as it is now into r, with status. */
static void level_answer(inv_engine *e, uint64_t item, uint64_t loc, int status, conn_result *r)
{
    assert(e != NULL);
    level_view *v = &r->u.level;
    inv_item it;
    v->item = item;
    v->loc = loc;
    int rc = inv_level_get_full(e, item, loc, &v->full);
    if (rc != INV_OK) {
        refuse(r, 404, "no inventory level for inventory item %llu at location %llu",
               (unsigned long long)item, (unsigned long long)loc);
        return;
    }
    v->tracked = inv_item_get(e, item, &it) != INV_OK || it.fields.tracked;
    r->status = status;
}

/* A level write's ENOTFOUND or EINVALID in words: which of item, location
 * and level is missing, or that the location is inactive. */
static void level_refused(inv_engine *e, int rc, uint64_t item, uint64_t loc, conn_result *r)
{
    assert(e != NULL);
    inv_item it;
    inv_location l;
    unsigned long long i = (unsigned long long)item, lo = (unsigned long long)loc;
    bool item_ok = inv_item_get(e, item, &it) == INV_OK;
    bool loc_ok = inv_location_get(e, loc, &l) == INV_OK;
    if (!item_ok)
        refuse(r, 404, "inventory item %llu not found", i);
    else if (!loc_ok)
        refuse(r, 404, "location %llu not found", lo);
    else if (rc == INV_ENOTFOUND)
        refuse(r, 404, "no inventory level for inventory item %llu at location %llu", i, lo);
    else if (rc == INV_EINVALID && !l.fields.active)
        refuse(r, 422, "location %llu is inactive: its levels refuse stock changes", lo);
    else
        refuse_engine(r, rc, "inventory level not written");
}

/* One level create (POST /api/inventorylevel, a row of
 * /api/inventorylevels): available defaults to 0; an existing level: 409,
 * unchanged (the engine's create-only call, LEVEL.SET ... NX's). */
static void level_create(inv_engine *e, yajl_val row, conn_result *r)
{
    assert(e != NULL);
    uint64_t item, loc;
    int64_t qty = 0;
    bool present;
    inv_level out;
    if (!row_id(row, "inventory_item_id", &item, r) || !row_id(row, "location_id", &loc, r) ||
        !row_available(row, &qty, &present, r))
        return;
    int rc = inv_level_create(e, item, loc, qty, &out);
    r->wrote = rc == INV_OK;
    if (rc == INV_OK)
        level_answer(e, item, loc, 201, r);
    else if (rc == INV_EEXISTS)
        refuse(r, 409, "inventory level for inventory item %llu at location %llu already exists",
               (unsigned long long)item, (unsigned long long)loc);
    else
        level_refused(e, rc, item, loc, r);
}

/* PUT /api/inventorylevel: sets available of an existing level (404 when
 * there is none). A compare-and-set on the revision just read, so a level
 * deleted meanwhile is never created again; retried while other writers
 * change it, at most CONNECTOR_LEVEL_SET_TRIES_MAX times (then 409). */
static void level_update(inv_engine *e, yajl_val row, conn_result *r)
{
    assert(e != NULL);
    uint64_t item, loc;
    int64_t qty = 0;
    bool present;
    if (!row_id(row, "inventory_item_id", &item, r) || !row_id(row, "location_id", &loc, r) ||
        !row_available(row, &qty, &present, r))
        return;
    if (!present) {
        refuse(r, 400, "available is required");
        return;
    }
    int rc = INV_ECONFLICT;
    for (size_t tries = 0; tries < CONNECTOR_LEVEL_SET_TRIES_MAX && rc == INV_ECONFLICT; tries++) {
        inv_level now, out;
        rc = inv_level_get(e, item, loc, &now);
        if (rc == INV_OK) {
            assert(now.revision >= 1); /* an existing level's revision */
            rc = inv_level_set(e, item, loc, qty, now.revision, &out);
        }
    }
    r->wrote = rc == INV_OK;
    if (rc == INV_OK)
        level_answer(e, item, loc, 200, r);
    else if (rc == INV_ECONFLICT)
        refuse(r, 409, "inventory level kept changing under %d attempts to set it: retry",
               CONNECTOR_LEVEL_SET_TRIES_MAX);
    else
        level_refused(e, rc, item, loc, r);
}

/* ---- locations -------------------------------------------------------------- */

static void loc_answer(inv_engine *e, uint64_t id, int status, conn_result *r)
{
    assert(e != NULL);
    int rc = inv_location_get(e, id, &r->u.loc);
    if (rc != INV_OK) {
        refuse_engine(r, rc, "location not read");
        return;
    }
    r->status = status;
}

/* One location create (POST /api/inventorylocation, a row of
 * /api/inventorylocations): active unless the row says not. */
static void loc_create(inv_engine *e, yajl_val row, conn_result *r)
{
    assert(e != NULL);
    inv_location_fields f;
    uint64_t id;
    memset(&f, 0, sizeof f);
    f.active = true;
    f.mask = INV_LOC_ACTIVE; /* never 0: that means all */
    if (!row_id(row, "id", &id, r) || !loc_fields(row, &f, r))
        return;
    int rc = inv_location_create(e, id, &f);
    r->wrote = rc == INV_OK;
    if (rc == INV_OK)
        loc_answer(e, id, 201, r);
    else if (rc == INV_EEXISTS)
        refuse(r, 409, "location %llu already exists", (unsigned long long)id);
    else
        refuse_engine(r, rc, "location not created");
}

/* PUT /api/inventorylocation: the fields present of an existing location. */
static void loc_update(inv_engine *e, yajl_val row, conn_result *r)
{
    assert(e != NULL);
    inv_location_fields f;
    uint64_t id;
    memset(&f, 0, sizeof f);
    if (!row_id(row, "id", &id, r) || !loc_fields(row, &f, r))
        return;
    int rc = inv_location_get(e, id, &r->u.loc);
    if (rc == INV_OK && f.mask != 0) {
        rc = inv_location_put(e, id, &f);
        r->wrote = rc == INV_OK;
    }
    if (rc == INV_OK)
        loc_answer(e, id, 200, r);
    else if (rc == INV_ENOTFOUND)
        refuse(r, 404, "location %llu not found", (unsigned long long)id);
    else
        refuse_engine(r, rc, "location not updated");
}

/* ---- handlers: one shape for each kind of route ----------------------------- */

/* A kind of object: how a row is created or updated, how it is written. */
typedef struct {
    void (*create)(inv_engine *e, yajl_val row, conn_result *r);
    void (*update)(inv_engine *e, yajl_val row, conn_result *r);
    void (*write)(http_body *b, const conn_result *r);
} conn_kind;

static const conn_kind kind_item = {item_create, item_update, write_item};
static const conn_kind kind_level = {level_create, level_update, write_level};
static const conn_kind kind_loc = {loc_create, loc_update, write_location};

/* The body parsed: NULL (and a 400) unless JSON whose root is an array
 * (want_array) or an object. Free with yajl_tree_free. */
static yajl_val body_or_reply(const http_request *req, bool want_array, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char err[128] = "", msg[CONNECTOR_MSG_MAX];
    yajl_val root = http_json_parse(&req->body, err, sizeof err);
    if (root != NULL && (want_array ? YAJL_IS_ARRAY(root) : YAJL_IS_OBJECT(root)))
        return root;
    snprintf(msg, sizeof msg, "malformed request body: %s",
             root == NULL ? (err[0] ? err : "invalid JSON")
             : want_array ? "it must be a JSON array of rows"
                          : "it must be a JSON object");
    yajl_tree_free(root);
    reply_error(res, 400, msg);
    return NULL;
}

/* r into res: the object with r's status (and its journal position when
 * it wrote), or {"error":...}. */
static void reply_result(const conn_kind *k, const conn_result *r, http_response *res)
{
    assert(http_response_ok(res));
    assert(r->status >= 200 && r->status < 600);
    if (r->status >= 300) {
        reply_error(res, r->status, r->msg);
        return;
    }
    res->status = r->status;
    res->durable_at = r->wrote ? inv_last_write_position() : 0;
    k->write(res->body, r);
}

/* POST (update false) or PUT (update true) of one object. */
static void write_one(const http_request *req, http_response *res, const conn_kind *k, bool update)
{
    assert(http_request_ok(req) && http_response_ok(res));
    if (!tenant_ok_or_reply(req, res))
        return;
    yajl_val root = body_or_reply(req, false, res);
    if (root == NULL)
        return;
    conn_result *r = result_fresh();
    (update ? k->update : k->create)(req->e, root, r);
    reply_result(k, r, res);
    yajl_tree_free(root);
}

/* POST of a bulk: 1..CONNECTOR_BULK_ROWS_MAX rows, each created on its own
 * (rows are independent, not one transaction); 201 when every row was
 * created, 207 else, with [{"index","status","data"|"error"}, ...] in
 * row order. */
static void write_bulk(const http_request *req, http_response *res, const conn_kind *k)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char msg[CONNECTOR_MSG_MAX];
    if (!tenant_ok_or_reply(req, res))
        return;
    yajl_val root = body_or_reply(req, true, res);
    if (root == NULL)
        return;
    size_t n = root->u.array.len;
    if (n == 0 || n > CONNECTOR_BULK_ROWS_MAX) {
        snprintf(msg, sizeof msg, "a bulk create takes 1 to %d rows: got %zu",
                 CONNECTOR_BULK_ROWS_MAX, n);
        reply_error(res, 400, msg);
        yajl_tree_free(root);
        return;
    }
    uint64_t durable_at = 0; /* the last created row's position */
    bool all_created = true;
    http_json_arr_open(res->body);
    for (size_t i = 0; i < n; i++) {
        yajl_val row = root->u.array.values[i];
        conn_result *r = result_fresh();
        if (YAJL_IS_OBJECT(row))
            k->create(req->e, row, r);
        else
            refuse(r, 400, "row %zu must be a JSON object", i);
        assert(r->status >= 200 && r->status < 600);
        all_created &= r->status == 201;
        if (r->wrote)
            durable_at = inv_last_write_position();
        http_json_obj_open(res->body);
        http_json_key(res->body, "index");
        http_json_u64(res->body, i);
        http_json_key(res->body, "status");
        http_json_u64(res->body, (uint64_t)r->status);
        http_json_key(res->body, r->status < 300 ? "data" : "error");
        if (r->status < 300)
            k->write(res->body, r);
        else
            http_json_cstr(res->body, r->msg);
        http_json_obj_close(res->body);
    }
    http_json_arr_close(res->body);
    res->status = all_created ? 201 : 207;
    /* the rows created are durable once the last one is */
    res->durable_at = durable_at;
    yajl_tree_free(root);
}

/* The three write routes of a kind (h_<kind>_post, _put, _bulk): the
 * router's handlers take no argument, so each kind gets its own three. */
#define KIND_HANDLERS(k)                                                  \
    static void h_##k##_post(const http_request *req, http_response *res) \
    {                                                                     \
        write_one(req, res, &kind_##k, false);                            \
    }                                                                     \
    static void h_##k##_put(const http_request *req, http_response *res)  \
    {                                                                     \
        write_one(req, res, &kind_##k, true);                             \
    }                                                                     \
    static void h_##k##_bulk(const http_request *req, http_response *res) \
    {                                                                     \
        write_bulk(req, res, &kind_##k);                                  \
    }

KIND_HANDLERS(item)
KIND_HANDLERS(level)
KIND_HANDLERS(loc)
#undef KIND_HANDLERS

/* GET or DELETE /api/inventoryitem/{inventoryRef}. DELETE answers the
 * item's last state with deleted true, as PUT with deleted true does. */
static void item_by_ref(const http_request *req, http_response *res, bool del)
{
    assert(http_request_ok(req) && http_response_ok(res));
    uint64_t id;
    if (!tenant_ok_or_reply(req, res) || !path_id_or_reply(req, 0, "inventoryRef", &id, res))
        return;
    conn_result *r = result_fresh();
    if (del)
        item_delete(req->e, id, r);
    else if (inv_item_get(req->e, id, &r->u.item) == INV_OK)
        r->status = 200;
    else
        refuse(r, 404, "inventory item %llu not found", (unsigned long long)id);
    reply_result(&kind_item, r, res);
}

static void h_item_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    item_by_ref(req, res, false);
}

static void h_item_delete(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    item_by_ref(req, res, true);
}

/* GET /api/inventorylevel/inventoryitem/{item}/location/{loc}. */
static void h_level_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 2); /* the route: a tenant, its pattern's params */
    uint64_t item, loc;
    if (!tenant_ok_or_reply(req, res) ||
        !path_id_or_reply(req, 0, "inventoryItemRef", &item, res) ||
        !path_id_or_reply(req, 1, "locationRef", &loc, res))
        return;
    conn_result *r = result_fresh();
    level_answer(req->e, item, loc, 200, r);
    reply_result(&kind_level, r, res);
}

/* DELETE /api/inventorylevel/inventoryitem/{item}/location/{loc}: 204; 409
 * while holds have units reserved or committed there. */
static void h_level_delete(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 2); /* the route: a tenant, its pattern's params */
    uint64_t item, loc;
    char msg[CONNECTOR_MSG_MAX];
    if (!tenant_ok_or_reply(req, res) ||
        !path_id_or_reply(req, 0, "inventoryItemRef", &item, res) ||
        !path_id_or_reply(req, 1, "locationRef", &loc, res))
        return;
    int rc = inv_level_del(req->e, item, loc);
    if (rc == INV_OK) {
        res->status = 204;
        res->durable_at = inv_last_write_position();
        return;
    }
    if (rc == INV_ENOTFOUND)
        snprintf(msg, sizeof msg, "no inventory level for inventory item %llu at location %llu",
                 (unsigned long long)item, (unsigned long long)loc);
    else if (rc == INV_ECONFLICT)
        snprintf(msg, sizeof msg,
                 "inventory level has units reserved or committed by holds: it cannot be "
                 "deleted now");
    else
        snprintf(msg, sizeof msg, "inventory level not deleted: %s", inv_strerror(rc));
    reply_error(res, http_status_for(rc), msg);
}

/* GET /api/inventorylocation/{id}. */
static void h_loc_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    uint64_t id;
    if (!tenant_ok_or_reply(req, res) || !path_id_or_reply(req, 0, "id", &id, res))
        return;
    conn_result *r = result_fresh();
    if (inv_location_get(req->e, id, &r->u.loc) == INV_OK)
        r->status = 200;
    else
        refuse(r, 404, "location %llu not found", (unsigned long long)id);
    reply_result(&kind_loc, r, res);
}

/* ---- the routing table ------------------------------------------------------ */

#define CONNECTOR(m, p, fn)                      \
    {                                            \
        m, "/api/" p, HTTP_DIALECT_CONNECTOR, fn \
    }

const http_route http_connector_routes[] = {
    CONNECTOR(HTTP_POST, "inventoryitem", h_item_post),
    CONNECTOR(HTTP_PUT, "inventoryitem", h_item_put),
    CONNECTOR(HTTP_GET, "inventoryitem/{inventoryRef}", h_item_get),
    CONNECTOR(HTTP_DELETE, "inventoryitem/{inventoryRef}", h_item_delete),
    CONNECTOR(HTTP_POST, "inventoryitems", h_item_bulk),
    CONNECTOR(HTTP_POST, "inventorylevel", h_level_post),
    CONNECTOR(HTTP_PUT, "inventorylevel", h_level_put),
    CONNECTOR(HTTP_GET, "inventorylevel/inventoryitem/{item}/location/{loc}", h_level_get),
    CONNECTOR(HTTP_DELETE, "inventorylevel/inventoryitem/{item}/location/{loc}", h_level_delete),
    CONNECTOR(HTTP_POST, "inventorylevels", h_level_bulk),
    CONNECTOR(HTTP_POST, "inventorylocation", h_loc_post),
    CONNECTOR(HTTP_PUT, "inventorylocation", h_loc_put),
    CONNECTOR(HTTP_GET, "inventorylocation/{id}", h_loc_get),
    CONNECTOR(HTTP_POST, "inventorylocations", h_loc_bulk),
};
#undef CONNECTOR

const size_t http_connector_routes_n = NELEMS(http_connector_routes);
