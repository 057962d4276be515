/*
 * cmd_inventory.c — LOC.*, ITEM.*, LEVEL.*, PRODUCT.INVENTORY (HOLD.* is
 * cmd_hold.c), and the batch lines' dispatch.
 *
 * Each handler parses its arguments (ids: decimal u64, leading zeros
 * allowed; quantities: decimal i64), calls one engine function, and writes
 * one reply: ids as bulk strings, quantities and revisions as integers.
 * Argument counts were already checked by command_exec from the table.
 * Nothing here allocates, except PRODUCT.INVENTORY and LEVEL.LIST item ALL
 * beyond their scratch rows.
 *
 * The commands that are batch lines (LEVEL.SET / ADJUST / GET, HOLD.CREATE
 * / COMMIT / RELEASE / EXTEND) parse with one function each into an
 * inv_batch_line (the hold ones live in cmd_hold.c);
 * the same parser checks them when MULTI queues them, and the same reply
 * writer answers them alone and inside EXEC's array (cmd_multi.c).
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "server/cmd_internal.h"

/* ---- field tables ------------------------------------------------------ */

typedef struct {
    const char *name;
    unsigned mask;
    size_t off, cap; /* cap 0: a non-string field */
} field_def;

#define LOCF(n, m)                                                                     \
    {                                                                                  \
#n, m, offsetof(inv_location_fields, n), sizeof(((inv_location_fields *)0)->n) \
    }
static const field_def loc_fields[] = {
    LOCF(name, INV_LOC_NAME),         LOCF(address1, INV_LOC_ADDRESS1),
    LOCF(address2, INV_LOC_ADDRESS2), LOCF(city, INV_LOC_CITY),
    LOCF(province, INV_LOC_PROVINCE), LOCF(province_code, INV_LOC_PROVINCE_CODE),
    LOCF(country, INV_LOC_COUNTRY),   LOCF(country_code, INV_LOC_COUNTRY_CODE),
    LOCF(zip, INV_LOC_ZIP),           LOCF(phone, INV_LOC_PHONE),
    {"active", INV_LOC_ACTIVE, 0, 0}, {"priority", INV_LOC_PRIORITY, 0, 0},
};
#undef LOCF

#define ITEMF(n, m)                                                            \
    {                                                                          \
#n, m, offsetof(inv_item_fields, n), sizeof(((inv_item_fields *)0)->n) \
    }
static const field_def item_fields[] = {
    ITEMF(sku, INV_ITEM_SKU),
    {"tracked", INV_ITEM_TRACKED, 0, 0},
    ITEMF(cost, INV_ITEM_COST),
    {"requires_shipping", INV_ITEM_REQUIRES_SHIPPING, 0, 0},
    ITEMF(country_code_of_origin, INV_ITEM_COUNTRY_OF_ORIGIN),
    ITEMF(province_code_of_origin, INV_ITEM_PROVINCE_OF_ORIGIN),
    ITEMF(harmonized_system_code, INV_ITEM_HS_CODE),
    ITEMF(variant, INV_ITEM_VARIANT),
    ITEMF(product, INV_ITEM_PRODUCT),
    ITEMF(country_hs_codes, INV_ITEM_COUNTRY_HS_CODES),
};
#undef ITEMF

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const field_def *find_field(const field_def *defs, size_t n, const resp_arg *a)
{
    assert((defs == loc_fields && n == NFIELDS(loc_fields)) ||
           (defs == item_fields && n == NFIELDS(item_fields)));
    assert(a != NULL);
    for (size_t i = 0; i < n; i++)
        if (arg_eq(a, defs[i].name))
            return &defs[i];
    return NULL;
}

static int bool_or_reply(resp_out *o, const resp_arg *a, const char *what, bool *v)
{
    assert(reply_buf_ok(o) && a != NULL && what != NULL && v != NULL);
    if (arg_eq(a, "1") || arg_eq(a, "true") || arg_eq(a, "yes")) {
        *v = true;
        return 0;
    }
    if (arg_eq(a, "0") || arg_eq(a, "false") || arg_eq(a, "no")) {
        *v = false;
        return 0;
    }
    resp_w_errorf(o, "INVALID %s must be 1 or 0", what);
    return -1;
}

/* Parses "field value ..." pairs into the struct at base; sets *mask. */
static int fields_or_reply(resp_out *o, const field_def *defs, size_t ndefs, const resp_arg *v,
                           size_t n, void *base, unsigned *mask)
{
    assert(reply_buf_ok(o) && defs != NULL && base != NULL && mask != NULL);
    assert(v != NULL && n % 2 == 0); /* whole pairs: set_record took NX off */
    *mask = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        const field_def *f = find_field(defs, ndefs, &v[i]);
        if (f == NULL) {
            resp_w_errorf(o, "INVALID unknown field '%.*s'", echo_len(&v[i], CMD_NAME_ECHO_MAX),
                          v[i].ptr);
            return -1;
        }
        if (f->cap) {
            /* the string lies inside the fields struct */
            assert(f->off + f->cap <=
                   (defs == loc_fields ? sizeof(inv_location_fields) : sizeof(inv_item_fields)));
            if (arg_str_or_reply(o, &v[i + 1], f->name, (char *)base + f->off, f->cap) != 0)
                return -1;
        } else if (f->mask == INV_LOC_PRIORITY && defs == loc_fields) {
            int64_t p;
            if (arg_i64_or_reply(o, &v[i + 1], "priority", &p) != 0)
                return -1;
            if (p < INT32_MIN || p > INT32_MAX) {
                resp_w_error(o, "INVALID", "priority out of range");
                return -1;
            }
            ((inv_location_fields *)base)->priority = (int32_t)p;
        } else {
            bool b;
            if (bool_or_reply(o, &v[i + 1], f->name, &b) != 0)
                return -1;
            if (defs == loc_fields)
                ((inv_location_fields *)base)->active = b;
            else if (f->mask == INV_ITEM_TRACKED)
                ((inv_item_fields *)base)->tracked = b;
            else
                ((inv_item_fields *)base)->requires_shipping = b;
        }
        *mask |= f->mask;
    }
    assert(n == 0 || *mask != 0); /* every pair named a field with a bit */
    return 0;
}

/* ---- LOC.SET and ITEM.SET: one handler, a row per record ------------------- */

/* The fields struct LOC.SET or ITEM.SET fills. */
typedef union {
    inv_location_fields loc;
    inv_item_fields item;
} record_fields;

/* What LOC.SET and ITEM.SET differ in. */
typedef struct {
    const char *name; /* the command, as in its row */
    const char *noun; /* the record, in errors */
    const char *what; /* the id's name in errors */
    const field_def *defs;
    size_t ndefs;
    size_t mask_off; /* offsetof the fields struct's mask */
    int (*put)(inv_engine *e, uint64_t id, const record_fields *f);
    int (*create)(inv_engine *e, uint64_t id, const record_fields *f); /* NX */
    bool (*exists)(inv_engine *e, uint64_t id);
} record_def;

static int put_location(inv_engine *e, uint64_t id, const record_fields *f)
{
    assert(e != NULL && f != NULL);
    return inv_location_put(e, id, &f->loc);
}

static int create_location(inv_engine *e, uint64_t id, const record_fields *f)
{
    assert(e != NULL && f != NULL);
    return inv_location_create(e, id, &f->loc);
}

static bool location_exists(inv_engine *e, uint64_t id)
{
    inv_location l;
    assert(e != NULL);
    return inv_location_get(e, id, &l) == INV_OK;
}

static int put_item(inv_engine *e, uint64_t id, const record_fields *f)
{
    assert(e != NULL && f != NULL);
    return inv_item_put(e, id, &f->item);
}

static int create_item(inv_engine *e, uint64_t id, const record_fields *f)
{
    assert(e != NULL && f != NULL);
    return inv_item_create(e, id, &f->item);
}

static bool item_exists(inv_engine *e, uint64_t id)
{
    inv_item it;
    assert(e != NULL);
    return inv_item_get(e, id, &it) == INV_OK;
}

static const record_def loc_record = {
    .name = "loc.set",
    .noun = "location",
    .what = "location id",
    .defs = loc_fields,
    .ndefs = NFIELDS(loc_fields),
    .mask_off = offsetof(inv_location_fields, mask),
    .put = put_location,
    .create = create_location,
    .exists = location_exists,
};
static const record_def item_record = {
    .name = "item.set",
    .noun = "item",
    .what = "item id",
    .defs = item_fields,
    .ndefs = NFIELDS(item_fields),
    .mask_off = offsetof(inv_item_fields, mask),
    .put = put_item,
    .create = create_item,
    .exists = item_exists,
};

/* X.SET id field value [field value ...] [NX]: only the named fields are
 * written (the mask says which). NX (last, after at least one pair; the
 * argument count tells it from a value): create only, -EXISTS when id
 * exists. An odd pair count without NX: wrong number of arguments, as the
 * table's arity said before NX. */
static void set_record(session *s, resp_out *o, const resp_arg *v, size_t n, const record_def *r)
{
    assert(handler_call_ok(s, o, v, n, 4, 0) && s->e != NULL);
    assert(r == &loc_record || r == &item_record);
    bool nx = (n - 2) % 2 == 1;
    if (nx && !arg_eq(&v[n - 1], "nx")) {
        resp_w_errorf(o, "ERR wrong number of arguments for '%s' command", r->name);
        return;
    }
    record_fields f;
    memset(&f, 0, sizeof f);
    unsigned *mask = (unsigned *)(void *)((char *)&f + r->mask_off);
    uint64_t id;
    if (arg_u64_or_reply(o, &v[1], r->what, &id) != 0 ||
        fields_or_reply(o, r->defs, r->ndefs, v + 2, n - 2 - (nx ? 1 : 0), &f, mask) != 0)
        return;
    assert(*mask != 0); /* at least one pair (the row's arity) */
    int rc = nx ? r->create(s->e, id, &f) : r->put(s->e, id, &f);
    if (rc == INV_EEXISTS && nx && r->exists(s->e, id)) {
        resp_w_errorf(o, "EXISTS %s %llu exists", r->noun, (unsigned long long)id);
        return;
    }
    if (engine_or_reply(o, rc) == 0)
        resp_w_ok(o);
}

void cmd_loc_set(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(n >= 4); /* the row's arity: loc and one pair */
    set_record(s, o, v, n, &loc_record);
}

void cmd_item_set(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(n >= 4); /* the row's arity: item and one pair */
    set_record(s, o, v, n, &item_record);
}

/* ---- locations ---------------------------------------------------------- */

static void kv_str(resp_out *o, const char *k, const char *val)
{
    assert(reply_buf_ok(o) && k != NULL && val != NULL);
    resp_w_bulk_str(o, k);
    resp_w_bulk_str(o, val);
}

static void kv_int(resp_out *o, const char *k, int64_t val)
{
    assert(reply_buf_ok(o) && k != NULL);
    resp_w_bulk_str(o, k);
    resp_w_int(o, val);
}

void cmd_loc_get(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    uint64_t loc;
    inv_location l;
    if (arg_u64_or_reply(o, &v[1], "location id", &loc) != 0 ||
        engine_or_reply(o, inv_location_get(s->e, loc, &l)) != 0)
        return;
    resp_w_map(o, 16);
    resp_w_bulk_str(o, "id");
    resp_w_bulk_u64(o, l.id);
    for (size_t i = 0; i < NFIELDS(loc_fields); i++)
        if (loc_fields[i].cap) {
            /* the engine's strings are NUL-terminated within their field */
            assert(memchr((const char *)&l.fields + loc_fields[i].off, '\0', loc_fields[i].cap));
            kv_str(o, loc_fields[i].name, (const char *)&l.fields + loc_fields[i].off);
        }
    kv_int(o, "active", l.fields.active ? 1 : 0);
    kv_int(o, "priority", l.fields.priority);
    kv_int(o, "default", l.is_default ? 1 : 0);
    kv_int(o, "created_at_ms", l.created_at_ms);
    kv_int(o, "updated_at_ms", l.updated_at_ms);
}

/* [CURSOR c] [COUNT n] at v[1..n) */
static int list_opts_or_reply(resp_out *o, const resp_arg *v, size_t n, uint64_t *cursor,
                              size_t *count)
{
    assert(reply_buf_ok(o) && v != NULL && cursor != NULL && count != NULL);
    assert(n >= 1 && n <= 5 && (n - 1) % 2 == 0); /* the rows' arity: whole pairs */
    *cursor = 0;
    *count = CMD_LIST_COUNT_DEFAULT;
    for (size_t i = 1; i + 1 < n; i += 2) {
        int rc = page_option_or_reply(o, &v[i], &v[i + 1], cursor, count);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            resp_w_error(o, "INVALID", "expected CURSOR or COUNT");
            return -1;
        }
    }
    assert(*count >= 1 && *count <= INV_LIST_COUNT_MAX);
    return 0;
}

static void reply_page(resp_out *o, uint64_t next, const uint64_t *ids, size_t nids)
{
    assert(reply_buf_ok(o) && (ids != NULL || nids == 0));
    assert(nids <= 2 * INV_LIST_COUNT_MAX); /* at most the scratch's ids */
    resp_w_array(o, 2);
    resp_w_bulk_u64(o, next);
    resp_w_array(o, nids);
    for (size_t i = 0; i < nids; i++)
        resp_w_bulk_u64(o, ids[i]);
}

typedef int (*id_lister)(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids,
                         size_t ids_cap, size_t *n_out, uint64_t *next_cursor);

/* LOC.LIST and ITEM.LIST: [CURSOR c] [COUNT n] -> [next_cursor, [id ...]]. */
static void list_ids(session *s, resp_out *o, const resp_arg *v, size_t n, id_lister list)
{
    assert(handler_call_ok(s, o, v, n, 1, 5));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    assert(list == inv_location_list || list == inv_item_list);
    uint64_t cursor;
    size_t count;
    if (list_opts_or_reply(o, v, n, &cursor, &count) != 0)
        return;
    uint64_t next = 0;
    size_t got = 0;
    if (engine_or_reply(o, list(s->e, cursor, count, s->scratch->ids, NFIELDS(s->scratch->ids),
                                &got, &next)) != 0)
        return;
    if (got > NFIELDS(s->scratch->ids))
        got = NFIELDS(s->scratch->ids);
    reply_page(o, next, s->scratch->ids, got);
}

void cmd_loc_list(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(n >= 1 && n <= 5); /* the row's arity */
    list_ids(s, o, v, n, inv_location_list);
}

void cmd_loc_default(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 2));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    uint64_t loc;
    if (n == 1) {
        if (engine_or_reply(o, inv_location_default(s->e, &loc)) == 0)
            resp_w_bulk_u64(o, loc);
    } else if (arg_u64_or_reply(o, &v[1], "location id", &loc) == 0 &&
               engine_or_reply(o, inv_location_set_default(s->e, loc)) == 0) {
        resp_w_ok(o);
    }
}

/* ---- items --------------------------------------------------------------- */

static void reply_item(resp_out *o, const inv_item *it)
{
    assert(reply_buf_ok(o) && it != NULL);
    /* the engine's strings are NUL-terminated within their field */
    assert(memchr(it->fields.sku, '\0', sizeof it->fields.sku) != NULL);
    resp_w_map(o, 13);
    resp_w_bulk_str(o, "id");
    resp_w_bulk_u64(o, it->id);
    kv_str(o, "sku", it->fields.sku);
    kv_int(o, "tracked", it->fields.tracked ? 1 : 0);
    kv_str(o, "cost", it->fields.cost);
    kv_int(o, "requires_shipping", it->fields.requires_shipping ? 1 : 0);
    kv_str(o, "country_code_of_origin", it->fields.country_code_of_origin);
    kv_str(o, "province_code_of_origin", it->fields.province_code_of_origin);
    kv_str(o, "harmonized_system_code", it->fields.harmonized_system_code);
    kv_str(o, "variant", it->fields.variant);
    kv_str(o, "product", it->fields.product);
    kv_str(o, "country_hs_codes", it->fields.country_hs_codes);
    kv_int(o, "created_at_ms", it->created_at_ms);
    kv_int(o, "updated_at_ms", it->updated_at_ms);
}

void cmd_item_get(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    uint64_t item;
    inv_item it;
    if (arg_u64_or_reply(o, &v[1], "item id", &item) == 0 &&
        engine_or_reply(o, inv_item_get(s->e, item, &it)) == 0)
        reply_item(o, &it);
}

void cmd_item_mget(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 0));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    uint64_t *ids = s->scratch->ids;
    size_t k = n - 1;
    if (k > INV_MGET_MAX) {
        resp_w_errorf(o, "LIMIT at most %u ids", (unsigned)INV_MGET_MAX);
        return;
    }
    assert(k >= 1 && k <= NFIELDS(s->scratch->ids));
    for (size_t i = 0; i < k; i++)
        if (arg_u64_or_reply(o, &v[i + 1], "item id", &ids[i]) != 0)
            return;
    resp_w_array(o, k);
    for (size_t i = 0; i < k; i++) {
        inv_item it;
        int rc = inv_item_get(s->e, ids[i], &it);
        if (rc == INV_OK)
            reply_item(o, &it);
        else
            resp_w_null(o);
    }
}

void cmd_item_bysku(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char sku[INV_SKU_MAX + 1];
    uint64_t item;
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    if (arg_str_or_reply(o, &v[1], "sku", sku, sizeof sku) == 0 &&
        engine_or_reply(o, inv_item_by_sku(s->e, sku, &item)) == 0)
        resp_w_bulk_u64(o, item);
}

void cmd_item_byvariant(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    uint64_t *ids = s->scratch->ids;
    unsigned char found[INV_MGET_MAX];
    size_t k = n - 1, hits = 0;
    assert(handler_call_ok(s, o, v, n, 2, 0));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    if (k > INV_MGET_MAX) {
        resp_w_errorf(o, "LIMIT at most %u variants", (unsigned)INV_MGET_MAX);
        return;
    }
    assert(k >= 1 && k <= NFIELDS(s->scratch->ids));
    for (size_t i = 0; i < k; i++) {
        char var[INV_VARIANT_MAX + 1];
        found[i] = 0;
        if (v[i + 1].len > INV_VARIANT_MAX || memchr(v[i + 1].ptr, '\0', v[i + 1].len) != NULL)
            continue; /* cannot exist */
        memcpy(var, v[i + 1].ptr, v[i + 1].len);
        var[v[i + 1].len] = '\0';
        if (inv_item_by_variant(s->e, var, &ids[i]) == INV_OK) {
            found[i] = 1;
            hits++;
        }
    }
    assert(hits <= k);
    resp_w_array(o, hits);
    for (size_t i = 0; i < k; i++) {
        if (!found[i])
            continue;
        resp_w_array(o, 2);
        resp_w_bulk(o, v[i + 1].ptr, v[i + 1].len);
        resp_w_bulk_u64(o, ids[i]);
    }
}

void cmd_item_list(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(n >= 1 && n <= 5); /* the row's arity */
    list_ids(s, o, v, n, inv_item_list);
}

void cmd_item_del(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    uint64_t item;
    if (arg_u64_or_reply(o, &v[1], "item id", &item) == 0 &&
        engine_or_reply(o, inv_item_del(s->e, item)) == 0)
        resp_w_ok(o);
}

/* ---- levels -------------------------------------------------------------- */

static int item_loc_or_reply(resp_out *o, const resp_arg *v, uint64_t *item, uint64_t *loc)
{
    /* v[1] and v[2] exist: every caller's row has min_args >= 3 */
    assert(reply_buf_ok(o) && v != NULL && item != NULL && loc != NULL);
    if (arg_u64_or_reply(o, &v[1], "item id", item) != 0)
        return -1;
    return arg_u64_or_reply(o, &v[2], "location id", loc);
}

/* A quantity, delta or floor: decimal, |q| <= INV_QTY_MAX (the engine's
 * bound, checked here too so that MULTI refuses it before EXEC). */
static int qty_or_reply(resp_out *o, const resp_arg *a, const char *what, int64_t *q)
{
    assert(reply_buf_ok(o) && a != NULL && what != NULL && q != NULL);
    if (arg_i64_or_reply(o, a, what, q) != 0)
        return -1;
    if (*q < -INV_QTY_MAX || *q > INV_QTY_MAX) {
        resp_w_errorf(o, "LIMIT %s must be within -%lld..%lld", what, (long long)INV_QTY_MAX,
                      (long long)INV_QTY_MAX);
        return -1;
    }
    assert(*q >= -INV_QTY_MAX && *q <= INV_QTY_MAX);
    return 0;
}

/* A line as a parser leaves it and the engine calls take it (used only in
 * asserts): a known op, hold lines exactly when counted, a hold id exactly
 * with a length, quantities and names within their bounds. */
static bool batch_line_ok(const inv_batch_line *l)
{
    return l != NULL && l->op >= INV_BATCH_LEVEL_SET && l->op <= INV_BATCH_LEVEL_GET_FULL &&
           (l->n_hold_lines == 0) == (l->hold_lines == NULL) &&
           l->n_hold_lines <= INV_HOLD_LINES_MAX && (l->hold_id == NULL) == (l->hold_id_len == 0) &&
           l->hold_id_len <= INV_HOLD_ID_MAX && l->qty >= -INV_QTY_MAX && l->qty <= INV_QTY_MAX &&
           (unsigned)l->from < INV_QTY_NAMES && (unsigned)l->to < INV_QTY_NAMES;
}

static void batch_line_init(inv_batch_line *l, inv_batch_op op)
{
    assert(l != NULL && op >= INV_BATCH_LEVEL_SET && op <= INV_BATCH_LEVEL_GET_FULL);
    memset(l, 0, sizeof *l);
    l->op = op;
    l->floor = INV_NO_FLOOR;
    assert(batch_line_ok(l));
}

/* Hot path: LEVEL.SET item loc qty [IFREV rev] and LEVEL.ADJUST item loc
 * delta [FLOOR min] [IFREV rev] (options in any order; the table's arity
 * leaves LEVEL.SET room for IFREV or NX alone). Allocates nothing. NX is
 * no batch line: it reaches this parser only inside MULTI or after other
 * options (cmd_level_set answers LEVEL.SET item loc qty NX itself). */
static int parse_level_write(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                             bool adjust)
{
    assert(v != NULL && n >= 4); /* the rows' arity: item loc qty */
    batch_line_init(l, adjust ? INV_BATCH_LEVEL_ADJUST : INV_BATCH_LEVEL_SET);
    if (item_loc_or_reply(o, v, &l->item, &l->location) != 0 ||
        qty_or_reply(o, &v[3], adjust ? "delta" : "quantity", &l->qty) != 0)
        return -1;
    for (size_t i = 4; i < n; i += 2) {
        if (!adjust && arg_eq(&v[i], "nx")) {
            resp_w_error(o, "INVALID",
                         "NX stands alone (LEVEL.SET item loc qty NX) and not inside MULTI");
            return -1;
        }
        if (i + 1 == n) { /* LEVEL.SET's odd count (room for NX) */
            resp_w_error(o, "INVALID", "expected IFREV rev or NX");
            return -1;
        }
        if (adjust && arg_eq(&v[i], "floor")) {
            if (qty_or_reply(o, &v[i + 1], "floor", &l->floor) != 0)
                return -1;
        } else if (arg_eq(&v[i], "ifrev")) {
            if (arg_u64_or_reply(o, &v[i + 1], "revision", &l->if_revision) != 0)
                return -1;
        } else {
            resp_w_error(o, "INVALID", adjust ? "expected FLOOR or IFREV" : "expected IFREV");
            return -1;
        }
    }
    assert(batch_line_ok(l) && (adjust || l->floor == INV_NO_FLOOR));
    return 0;
}

static int parse_level_set(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                           inv_hold_line *lines)
{
    assert(n >= 4 && n <= 6); /* the row's arity */
    return parse_level_write(o, v, n, l, false);
}

/* LEVEL.SET item loc qty NX: the only form with this many arguments. */
#define LEVEL_SET_NX_ARGC 5

/* LEVEL.SET item loc qty NX: creates the level only if it does not exist
 * (-EXISTS with its revision when it does). Not a batch line: inside
 * MULTI parse_level_write refuses NX. Every other LEVEL.SET is the batch
 * line alone (cmd_batch_line): the hot path pays one compare. */
void cmd_level_set(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 4, 6));
    if (n != LEVEL_SET_NX_ARGC) {
        cmd_batch_line(s, o, v, n);
        return;
    }
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */

    inv_batch_line l;
    batch_line_init(&l, INV_BATCH_LEVEL_SET);
    if (!arg_eq(&v[4], "nx")) {
        resp_w_error(o, "INVALID", "expected IFREV rev or NX");
        return;
    }
    if (s->meta.any) {
        /* a create-only set is its own retry guard: a second one answers
         * EXISTS; it is not journaled with a reason or reference */
        resp_w_error(o, "INVALID", "NX takes no ID, REASON or REF");
        return;
    }
    if (item_loc_or_reply(o, v, &l.item, &l.location) != 0 ||
        qty_or_reply(o, &v[3], "quantity", &l.qty) != 0)
        return;
    inv_batch_result r;
    memset(&r, 0, sizeof r);
    assert(batch_line_ok(&l) && l.if_revision == 0);
    r.rc = inv_level_create(s->e, l.item, l.location, l.qty, &r.level);
    if (r.rc == INV_EEXISTS) {
        resp_w_errorf(o, "EXISTS level exists (revision %llu)",
                      (unsigned long long)r.level.revision);
        return;
    }
    reply_batch_line(s, o, &l, &r); /* the level, or the error LEVEL.SET words */
}

static int parse_level_adjust(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                              inv_hold_line *lines)
{
    assert(n >= 4 && n <= 8 && n % 2 == 0); /* the row's arity: whole options */
    return parse_level_write(o, v, n, l, true);
}

/* LEVEL.GET item loc [ALL] */
static int parse_level_get(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                           inv_hold_line *lines)
{
    assert(reply_buf_ok(o) && v != NULL && l != NULL);
    assert(n == 3 || n == 4); /* the row's arity */
    if (n == 4 && !arg_eq(&v[3], "all")) {
        resp_w_error(o, "INVALID", "expected ALL");
        return -1;
    }
    batch_line_init(l, n == 4 ? INV_BATCH_LEVEL_GET_FULL : INV_BATCH_LEVEL_GET);
    return item_loc_or_reply(o, v, &l->item, &l->location);
}

/* ---- every named quantity (LEVEL.GET ... ALL, LEVEL.MOVE, ...) ------------- */

/* The fields of a full level reply, in this order (field names as
 * docs/PROTOCOL.md writes them). */
#define LEVEL_FULL_PAIRS (INV_QTY_NAMES + 7)

void reply_level_full(resp_out *o, const inv_level_full *f)
{
    assert(reply_buf_ok(o) && f != NULL);
    assert(f->policy == INV_POLICY_DENY || f->policy == INV_POLICY_CONTINUE);
    resp_w_map(o, LEVEL_FULL_PAIRS);
    for (int q = 0; q < INV_QTY_NAMES; q++) {
        resp_w_bulk_str(o, inv_qty_name_str((inv_qty_name)q));
        resp_w_int(o, f->qty[q]);
    }
    resp_w_bulk_str(o, "on_hand");
    resp_w_int(o, f->on_hand);
    resp_w_bulk_str(o, "revision");
    resp_w_int(o, (int64_t)f->revision);
    resp_w_bulk_str(o, "created_at_ms");
    resp_w_int(o, f->created_at_ms);
    resp_w_bulk_str(o, "updated_at_ms");
    resp_w_int(o, f->updated_at_ms);
    resp_w_bulk_str(o, "policy");
    resp_w_bulk_str(o, f->policy == INV_POLICY_CONTINUE ? "continue" : "deny");
    resp_w_bulk_str(o, "preorder_limit");
    resp_w_int(o, f->preorder_limit);
    resp_w_bulk_str(o, "location_active");
    resp_w_bool(o, f->location_active);
}

static int qty_name_or_reply(resp_out *o, const resp_arg *a, inv_qty_name *q)
{
    assert(reply_buf_ok(o) && a != NULL && q != NULL);
    if (inv_qty_name_parse(a->ptr, a->len, q) == INV_OK) {
        assert((unsigned)*q < INV_QTY_NAMES);
        return 0;
    }
    resp_w_errorf(o,
                  "INVALID unknown quantity '%.*s' (available, committed, incoming, damaged, "
                  "safety_stock, quality_control)",
                  echo_len(a, CMD_NAME_ECHO_MAX), a->ptr);
    return -1;
}

/* A positive unit count (a move, a fulfilment). */
static int units_or_reply(resp_out *o, const resp_arg *a, int64_t *q)
{
    assert(reply_buf_ok(o) && a != NULL && q != NULL);
    if (qty_or_reply(o, a, "quantity", q) != 0)
        return -1;
    if (*q < 1) {
        resp_w_error(o, "INVALID", "quantity must be at least 1");
        return -1;
    }
    assert(*q >= 1 && *q <= INV_QTY_MAX);
    return 0;
}

/* LEVEL.MOVE item loc qty FROM name TO name [FLOOR min] */
static int parse_level_move(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                            inv_hold_line *lines)
{
    assert(v != NULL && n >= 8 && n <= 10); /* the row's arity */
    batch_line_init(l, INV_BATCH_LEVEL_MOVE);
    l->from = l->to = INV_QTY_NAMES;
    if (item_loc_or_reply(o, v, &l->item, &l->location) != 0 ||
        units_or_reply(o, &v[3], &l->qty) != 0)
        return -1;
    for (size_t i = 4; i + 1 < n; i += 2) {
        int rc = 0;
        if (arg_eq(&v[i], "from"))
            rc = qty_name_or_reply(o, &v[i + 1], &l->from);
        else if (arg_eq(&v[i], "to"))
            rc = qty_name_or_reply(o, &v[i + 1], &l->to);
        else if (arg_eq(&v[i], "floor"))
            rc = qty_or_reply(o, &v[i + 1], "floor", &l->floor);
        else {
            resp_w_error(o, "INVALID", "expected FROM, TO or FLOOR");
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (l->from == INV_QTY_NAMES || l->to == INV_QTY_NAMES) {
        resp_w_error(o, "INVALID", "FROM and TO are required");
        return -1;
    }
    if (l->from == INV_QTY_RESERVED || l->to == INV_QTY_RESERVED || l->from == l->to) {
        resp_w_error(o, "INVALID",
                     l->from == l->to ? "FROM and TO must differ"
                                      : "reserved changes only by holds");
        return -1;
    }
    assert(batch_line_ok(l) && l->from != l->to);
    return 0;
}

/* LEVEL.TRANSFER item from_loc to_loc qty [FROM name] [TO name] (both
 * default to available) */
static int parse_level_transfer(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                                inv_hold_line *lines)
{
    assert(v != NULL && n >= 5 && n <= 9); /* the row's arity */
    batch_line_init(l, INV_BATCH_LEVEL_TRANSFER);
    if (item_loc_or_reply(o, v, &l->item, &l->location) != 0 ||
        arg_u64_or_reply(o, &v[3], "location id", &l->to_location) != 0 ||
        units_or_reply(o, &v[4], &l->qty) != 0)
        return -1;
    for (size_t i = 5; i + 1 < n; i += 2) {
        int rc = 0;
        if (arg_eq(&v[i], "from"))
            rc = qty_name_or_reply(o, &v[i + 1], &l->from);
        else if (arg_eq(&v[i], "to"))
            rc = qty_name_or_reply(o, &v[i + 1], &l->to);
        else {
            resp_w_error(o, "INVALID", "expected FROM or TO");
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (l->from == INV_QTY_RESERVED || l->to == INV_QTY_RESERVED) {
        resp_w_error(o, "INVALID", "reserved changes only by holds");
        return -1;
    }
    if (l->location == l->to_location) {
        resp_w_error(o, "INVALID", "a transfer goes to another location");
        return -1;
    }
    assert(batch_line_ok(l) && l->qty >= 1);
    return 0;
}

/* LEVEL.RETURN item loc qty: committed -> available (a cancel or return). */
static int parse_level_return(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                              inv_hold_line *lines)
{
    assert(v != NULL && n == 4); /* the row's arity */
    batch_line_init(l, INV_BATCH_LEVEL_MOVE);
    l->from = INV_QTY_COMMITTED;
    l->to = INV_QTY_AVAILABLE;
    if (item_loc_or_reply(o, v, &l->item, &l->location) != 0)
        return -1;
    return units_or_reply(o, &v[3], &l->qty);
}

/* LEVEL.FULFIL item loc qty: committed units ship (on_hand falls). */
static int parse_level_fulfil(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                              inv_hold_line *lines)
{
    assert(v != NULL && n == 4); /* the row's arity */
    batch_line_init(l, INV_BATCH_LEVEL_FULFIL);
    if (item_loc_or_reply(o, v, &l->item, &l->location) != 0)
        return -1;
    return units_or_reply(o, &v[3], &l->qty);
}

/* LEVEL.POLICY item loc DENY|CONTINUE [LIMIT n] */
static int parse_level_policy(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                              inv_hold_line *lines)
{
    assert(v != NULL && n >= 4 && n <= 6); /* the row's arity */
    batch_line_init(l, INV_BATCH_LEVEL_POLICY);
    if (item_loc_or_reply(o, v, &l->item, &l->location) != 0)
        return -1;
    if (arg_eq(&v[3], "deny"))
        l->policy = INV_POLICY_DENY;
    else if (arg_eq(&v[3], "continue"))
        l->policy = INV_POLICY_CONTINUE;
    else {
        resp_w_error(o, "INVALID", "expected DENY or CONTINUE");
        return -1;
    }
    l->preorder_limit = INV_NO_PREORDER_LIMIT;
    if (n == 6) {
        if (!arg_eq(&v[4], "limit") || l->policy != INV_POLICY_CONTINUE) {
            resp_w_error(o, "INVALID", "expected LIMIT n after CONTINUE");
            return -1;
        }
        if (qty_or_reply(o, &v[5], "limit", &l->preorder_limit) != 0)
            return -1;
        if (l->preorder_limit < 0) {
            resp_w_error(o, "INVALID", "limit must be at least 0");
            return -1;
        }
    } else if (n != 4) {
        resp_w_error(o, "INVALID", "expected LIMIT n");
        return -1;
    }
    assert(l->policy == INV_POLICY_CONTINUE || l->preorder_limit == INV_NO_PREORDER_LIMIT);
    return 0;
}

/* Current revision for a CONFLICT reply: out if the engine filled it. */
static uint64_t conflict_revision(session *s, uint64_t item, uint64_t loc, const inv_level *out)
{
    inv_level cur;
    assert(session_ok(s) && s->e != NULL && out != NULL);
    if (out->revision != 0)
        return out->revision;
    if (inv_level_get(s->e, item, loc, &cur) == INV_OK)
        return cur.revision;
    return 0;
}

/* ---- LEVEL.LIST ------------------------------------------------------------
 * LEVEL.LIST item [ALL]                      one item's levels, by location
 * LEVEL.LIST LOC loc [page options]          one location's levels, pages
 * LEVEL.LIST ALLLEVELS [page options]        every level, pages
 * page options, any order, each at most once: CURSOR c, COUNT n,
 * UPDATED-SINCE ms, ALL. The first argument tells the forms apart: LOC
 * and ALLLEVELS are not decimal ids. */

/* The level rows of LEVEL.LIST item ... ALL answered without malloc. */
#define LEVEL_LIST_FULL_SCRATCH NFIELDS(((cmd_scratch *)0)->full_rows)

/* LEVEL.LIST item [ALL]: [[loc, available, reserved, revision], ...], or
 * with ALL [[loc, {LEVEL.GET ... ALL's fields}], ...]; locations in id
 * order. A level deleted between the list and its full read is left out. */
static void level_list_item(session *s, resp_out *o, uint64_t item, bool all)
{
    inv_level_entry *rows = s->scratch->levels;
    size_t cap = NFIELDS(s->scratch->levels), got = 0;
    assert(session_ok(s) && reply_buf_ok(o) && s->e != NULL);
    if (engine_or_reply(o, inv_level_list(s->e, item, rows, cap, &got)) != 0)
        return;
    if (got > cap) { /* defended: INV_LOCATIONS_MAX bounds it */
        resp_w_errorf(o, "LIMIT more than %zu levels", cap);
        return;
    }
    if (!all) {
        resp_w_array(o, got);
        for (size_t i = 0; i < got; i++) {
            resp_w_array(o, 4);
            resp_w_bulk_u64(o, rows[i].location);
            resp_w_int(o, rows[i].level.available);
            resp_w_int(o, rows[i].level.reserved);
            resp_w_int(o, (int64_t)rows[i].level.revision);
        }
        return;
    }
    /* rare and bounded (INV_LOCATIONS_MAX): more levels than the scratch */
    inv_level_full_row *full = s->scratch->full_rows, *big = NULL;
    if (got > LEVEL_LIST_FULL_SCRATCH && (full = big = inv_malloc(got * sizeof *big)) == NULL) {
        reply_engine_error(o, INV_ENOMEM);
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < got; i++) {
        inv_level_full_row *r = &full[kept];
        if (inv_level_get_full(s->e, item, rows[i].location, &r->level) != INV_OK)
            continue; /* deleted since it was listed */
        r->item = item;
        r->location = rows[i].location;
        kept++;
    }
    /* full holds got rows: the scratch when they fit, else big */
    assert(kept <= got && (big != NULL || got <= LEVEL_LIST_FULL_SCRATCH));
    resp_w_array(o, kept);
    for (size_t i = 0; i < kept; i++) {
        resp_w_array(o, 2);
        resp_w_bulk_u64(o, full[i].location);
        reply_level_full(o, &full[i].level);
    }
    free(big);
}

enum { PAGE_CURSOR, PAGE_COUNT, PAGE_SINCE, PAGE_ALL, PAGE_OPTIONS };

typedef struct {
    uint64_t cursor;
    size_t count;
    int64_t since_ms; /* 0: none */
    bool all;
} level_page_opts;

static int page_count_or_reply(resp_out *o, const resp_arg *a, size_t *count)
{
    uint64_t c;
    assert(reply_buf_ok(o) && a != NULL && count != NULL);
    if (arg_u64_or_reply(o, a, "count", &c) != 0)
        return -1;
    if (c == 0 || c > INV_LIST_COUNT_MAX) {
        resp_w_errorf(o, "LIMIT count must be 1..%u", (unsigned)INV_LIST_COUNT_MAX);
        return -1;
    }
    *count = (size_t)c;
    assert(*count >= 1 && *count <= INV_LIST_COUNT_MAX);
    return 0;
}

static int page_since_or_reply(resp_out *o, const resp_arg *a, int64_t *since_ms)
{
    assert(reply_buf_ok(o) && a != NULL && since_ms != NULL);
    if (arg_i64_or_reply(o, a, "updated-since", since_ms) != 0)
        return -1;
    if (*since_ms < 0) {
        resp_w_error(o, "INVALID", "updated-since must be at least 0 (Unix ms)");
        return -1;
    }
    assert(*since_ms >= 0);
    return 0;
}

/* The page options at v[i..n): strict (each at most once, every value
 * checked); defaults: cursor 0, COUNT CMD_LIST_COUNT_DEFAULT, no time. */
static int level_page_opts_or_reply(resp_out *o, const resp_arg *v, size_t i, size_t n,
                                    level_page_opts *p)
{
    static const char *const names[PAGE_OPTIONS] = {"cursor", "count", "updated-since", "all"};
    bool seen[PAGE_OPTIONS] = {false, false, false, false};
    assert(reply_buf_ok(o) && v != NULL && p != NULL && i >= 2 && i <= n);
    *p = (level_page_opts){0, CMD_LIST_COUNT_DEFAULT, 0, false};
    for (; i < n; i++) {
        int k = 0;
        while (k < PAGE_OPTIONS && !arg_eq(&v[i], names[k]))
            k++;
        if (k == PAGE_OPTIONS) {
            resp_w_error(o, "INVALID", "expected CURSOR, COUNT, UPDATED-SINCE or ALL");
            return -1;
        }
        if (seen[k]) {
            resp_w_errorf(o, "INVALID %s given twice", names[k]);
            return -1;
        }
        seen[k] = true;
        if (k == PAGE_ALL) {
            p->all = true;
            continue;
        }
        if (++i == n) {
            resp_w_errorf(o, "INVALID %s needs a value", names[k]);
            return -1;
        }
        assert(i < n && k < PAGE_ALL); /* a value follows its name */
        int rc = k == PAGE_CURSOR  ? arg_u64_or_reply(o, &v[i], "cursor", &p->cursor)
                 : k == PAGE_COUNT ? page_count_or_reply(o, &v[i], &p->count)
                                   : page_since_or_reply(o, &v[i], &p->since_ms);
        if (rc != 0)
            return -1;
    }
    assert(p->count >= 1 && p->count <= INV_LIST_COUNT_MAX && p->since_ms >= 0);
    return 0;
}

/* [next_cursor, [row, ...]]: a row is [item, loc, available, reserved,
 * revision], or with ALL [item, loc, {LEVEL.GET ... ALL's fields}]. */
static void reply_level_page(resp_out *o, uint64_t next, const inv_level_full_row *rows,
                             size_t nrows, bool all)
{
    assert(reply_buf_ok(o) && (rows != NULL || nrows == 0));
    assert(nrows <= LEVEL_LIST_FULL_SCRATCH); /* the caller cut it to the scratch */
    resp_w_array(o, 2);
    resp_w_bulk_u64(o, next);
    resp_w_array(o, nrows);
    for (size_t i = 0; i < nrows; i++) {
        const inv_level_full *l = &rows[i].level;
        resp_w_array(o, all ? 3 : 5);
        resp_w_bulk_u64(o, rows[i].item);
        resp_w_bulk_u64(o, rows[i].location);
        if (all) {
            reply_level_full(o, l);
            continue;
        }
        resp_w_int(o, l->qty[INV_QTY_AVAILABLE]);
        resp_w_int(o, l->qty[INV_QTY_RESERVED]);
        resp_w_int(o, (int64_t)l->revision);
    }
}

void cmd_level_list(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    inv_level_filter f = {0, 0, false, false, 0};
    size_t first_opt = 2;
    assert(handler_call_ok(s, o, v, n, 2, 10));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */

    if (arg_eq(&v[1], "loc")) {
        if (n < 3) {
            resp_w_error(o, "INVALID", "expected LOC loc");
            return;
        }
        if (arg_u64_or_reply(o, &v[2], "location id", &f.location) != 0)
            return;
        f.has_location = true;
        first_opt = 3;
    } else if (!arg_eq(&v[1], "alllevels")) {
        uint64_t item;
        if (arg_u64_or_reply(o, &v[1], "item id", &item) != 0)
            return;
        if (n > 3 || (n == 3 && !arg_eq(&v[2], "all"))) {
            resp_w_error(
                o, "INVALID",
                "expected ALL (pages: LEVEL.LIST LOC loc ... or LEVEL.LIST ALLLEVELS ...)");
            return;
        }
        level_list_item(s, o, item, n == 3);
        return;
    }
    level_page_opts p;
    if (level_page_opts_or_reply(o, v, first_opt, n, &p) != 0)
        return;
    f.updated_since_ms = p.since_ms;
    inv_level_full_row *rows = s->scratch->full_rows;
    size_t got = 0;
    uint64_t next = 0;
    if (engine_or_reply(o, inv_level_list_page(s->e, &f, p.cursor, p.count, rows,
                                               LEVEL_LIST_FULL_SCRATCH, &got, &next)) != 0)
        return;
    reply_level_page(o, next, rows, got < LEVEL_LIST_FULL_SCRATCH ? got : LEVEL_LIST_FULL_SCRATCH,
                     p.all);
}

void cmd_level_del(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 3, 3));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    uint64_t item, loc;
    if (item_loc_or_reply(o, v, &item, &loc) == 0 &&
        engine_or_reply(o, inv_level_del(s->e, item, loc)) == 0)
        resp_w_ok(o);
}

/* ---- product inventory ---------------------------------------------------- */

static void reply_product(resp_out *o, int64_t total, const inv_stock_row *r, size_t nrows)
{
    size_t groups = 0;
    assert(reply_buf_ok(o) && (r != NULL || nrows == 0));
    for (size_t i = 0; i < nrows; i++)
        if (i == 0 || r[i].item != r[i - 1].item)
            groups++;
    assert(groups <= nrows);
    resp_w_array(o, 2);
    resp_w_int(o, total);
    resp_w_array(o, groups);
    for (size_t i = 0; i < nrows;) {
        size_t j = i;
        while (j < nrows && r[j].item == r[i].item)
            j++;
        assert(j > i && j <= nrows); /* a group has at least its first row */
        resp_w_array(o, 3);
        resp_w_bulk_str(o, r[i].variant);
        resp_w_bulk_u64(o, r[i].item);
        /* an item without a level has one row saying so: an empty list */
        size_t levels = 0;
        for (size_t k = i; k < j; k++)
            levels += r[k].has_level;
        resp_w_array(o, levels);
        for (size_t k = i; k < j; k++) {
            if (!r[k].has_level)
                continue;
            resp_w_array(o, 2);
            resp_w_bulk_u64(o, r[k].location);
            resp_w_int(o, r[k].available);
        }
        i = j;
    }
}

void cmd_product_inventory(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char product[INV_VARIANT_MAX + 1];
    assert(handler_call_ok(s, o, v, n, 2, 4));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    if (arg_str_or_reply(o, &v[1], "product", product, sizeof product) != 0)
        return;
    uint64_t only = 0;
    const uint64_t *only_p = NULL;
    if (n == 4) {
        if (!arg_eq(&v[2], "loc")) {
            resp_w_error(o, "INVALID", "expected LOC");
            return;
        }
        if (arg_u64_or_reply(o, &v[3], "location id", &only) != 0)
            return;
        only_p = &only;
    }
    inv_stock_row *rows = s->scratch->rows, *big = NULL;
    size_t cap = CMD_PRODUCT_ROWS_SCRATCH, got = 0;
    int64_t total = 0;
    int rc = inv_product_inventory(s->e, product, only_p, rows, cap, &got, &total);
    if (rc == INV_ELIMIT && got > cap && got <= CMD_PRODUCT_ROWS_MAX) {
        /* rare and bounded: a product with more rows than the scratch */
        cap = got + 64;
        big = inv_malloc(cap * sizeof *big);
        if (big == NULL) {
            reply_engine_error(o, INV_ENOMEM);
            return;
        }
        rows = big;
        rc = inv_product_inventory(s->e, product, only_p, rows, cap, &got, &total);
    }
    assert(rows == s->scratch->rows || (rows == big && cap > CMD_PRODUCT_ROWS_SCRATCH));
    if (engine_or_reply(o, rc) == 0)
        reply_product(o, total, rows, got < cap ? got : cap);
    free(big);
}

/* ---- batch lines: one parser per command, shared with MULTI --------------- */

typedef int (*line_parser)(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                           inv_hold_line *lines);

static const struct {
    const char *name; /* as in command.c's table (CMD_BATCH rows) */
    line_parser parse;
} batch_parsers[] = {
    {"level.set", parse_level_set},           {"level.adjust", parse_level_adjust},
    {"level.get", parse_level_get},           {"level.move", parse_level_move},
    {"level.transfer", parse_level_transfer}, {"level.return", parse_level_return},
    {"level.fulfil", parse_level_fulfil},     {"level.policy", parse_level_policy},
    {"hold.create", parse_hold_create},       {"hold.commit", parse_hold_commit},
    {"hold.release", parse_hold_release},     {"hold.extend", parse_hold_extend},
};

int batch_line_parse_or_reply(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                              inv_hold_line *lines)
{
    assert(reply_buf_ok(o) && v != NULL && n >= 2); /* every batch row takes >= 2 */
    assert(l != NULL && lines != NULL);
    for (size_t i = 0; i < NFIELDS(batch_parsers); i++)
        if (arg_eq(&v[0], batch_parsers[i].name)) {
            int rc = batch_parsers[i].parse(o, v, n, l, lines);
            assert(rc == -1 || (rc == 0 && batch_line_ok(l)));
            return rc;
        }
    /* defended: a CMD_BATCH row without a parser here */
    resp_w_errorf(o, "ERR '%.*s' cannot be a line of a batch", echo_len(&v[0], CMD_NAME_ECHO_MAX),
                  v[0].ptr);
    return -1;
}

/* One line alone, through its single engine call (a lone command needs no
 * batch and no undo). Hot path for LEVEL.ADJUST: no allocation, no lock. */
static void line_apply(inv_engine *e, const inv_batch_line *l, inv_batch_result *r)
{
    assert(e != NULL && r != NULL && batch_line_ok(l));
    memset(r, 0, sizeof *r);
    switch (l->op) {
    case INV_BATCH_LEVEL_SET:
        r->rc = inv_level_set(e, l->item, l->location, l->qty, l->if_revision, &r->level);
        break;
    case INV_BATCH_LEVEL_ADJUST:
        r->rc = l->if_revision != 0
                    ? inv_level_adjust_if(e, l->item, l->location, l->qty, l->floor, l->if_revision,
                                          &r->level)
                    : inv_level_adjust(e, l->item, l->location, l->qty, l->floor, &r->level);
        break;
    case INV_BATCH_LEVEL_GET:
        r->rc = inv_level_get(e, l->item, l->location, &r->level);
        break;
    case INV_BATCH_LEVEL_GET_FULL:
        r->rc = inv_level_get_full(e, l->item, l->location, &r->full);
        break;
    case INV_BATCH_LEVEL_MOVE:
        r->rc = inv_level_move(e, l->item, l->location, l->qty, l->from, l->to, l->floor, &r->full);
        break;
    case INV_BATCH_LEVEL_FULFIL:
        r->rc = inv_level_fulfil(e, l->item, l->location, l->qty);
        if (r->rc == INV_OK || r->rc == INV_EINSUFFICIENT)
            (void)inv_level_get_full(e, l->item, l->location, &r->full);
        break;
    case INV_BATCH_LEVEL_POLICY:
        r->rc = inv_level_set_policy(e, l->item, l->location, l->policy, l->preorder_limit);
        break;
    case INV_BATCH_LEVEL_TRANSFER:
        r->rc = inv_batch(e, l, 1, r, NULL); /* a transfer is a batch of one line */
        break;
    case INV_BATCH_HOLD_CREATE:
    case INV_BATCH_HOLD_COMMIT:
    case INV_BATCH_HOLD_RELEASE:
    case INV_BATCH_HOLD_EXTEND:
        hold_line_apply(e, l, r);
        break;
    default:
        r->rc = INV_EINVALID; /* defended: parsers set only the ops above */
    }
}

/* Did the line name an inactive location (the engine's INVALID for a
 * stock change there)? */
static bool line_location_inactive(session *s, const inv_batch_line *l)
{
    inv_location loc;
    assert(session_ok(s) && s->e != NULL && batch_line_ok(l));
    if (l->op == INV_BATCH_LEVEL_TRANSFER &&
        inv_location_get(s->e, l->to_location, &loc) == INV_OK && !loc.fields.active)
        return true;
    if (l->op != INV_BATCH_HOLD_CREATE)
        return inv_location_get(s->e, l->location, &loc) == INV_OK && !loc.fields.active;
    for (size_t i = 0; i < l->n_hold_lines; i++)
        if (inv_location_get(s->e, l->hold_lines[i].location, &loc) == INV_OK && !loc.fields.active)
            return true;
    return false;
}

const char *batch_line_error(session *s, const inv_batch_line *l, const inv_batch_result *r,
                             char *msg, size_t cap)
{
    bool level_write = l->op == INV_BATCH_LEVEL_SET || l->op == INV_BATCH_LEVEL_ADJUST;
    assert(session_ok(s) && batch_line_ok(l) && r != NULL && r->rc != INV_OK);
    assert(msg != NULL && cap >= 1);
    const char *hold_code = hold_line_error(l, r, msg, cap);
    if (hold_code)
        return hold_code;
    if (r->rc == INV_EINSUFFICIENT && l->op == INV_BATCH_LEVEL_ADJUST)
        snprintf(msg, cap, "available %lld", (long long)r->level.available);
    else if (r->rc == INV_ECONFLICT && level_write)
        snprintf(msg, cap, "revision %llu",
                 (unsigned long long)conflict_revision(s, l->item, l->location, &r->level));
    else if (r->rc == INV_EINSUFFICIENT &&
             (l->op == INV_BATCH_LEVEL_MOVE || l->op == INV_BATCH_LEVEL_TRANSFER))
        snprintf(msg, cap, "%s %lld", inv_qty_name_str(l->from), (long long)r->full.qty[l->from]);
    else if (r->rc == INV_EINSUFFICIENT && l->op == INV_BATCH_LEVEL_FULFIL)
        snprintf(msg, cap, "committed %lld", (long long)r->full.qty[INV_QTY_COMMITTED]);
    else if (r->rc == INV_EINVALID && line_location_inactive(s, l))
        snprintf(msg, cap, "location inactive");
    else
        snprintf(msg, cap, "%s", inv_strerror(r->rc));
    return inv_errcode(r->rc);
}

#define LINE_ERROR_MAX 160 /* bytes of a line's error message (a buyer's LIMIT) */

void reply_batch_line(session *s, resp_out *o, const inv_batch_line *l, const inv_batch_result *r)
{
    assert(session_ok(s) && reply_buf_ok(o));
    assert(batch_line_ok(l) && r != NULL);
    if (r->rc != INV_OK) {
        char msg[LINE_ERROR_MAX];
        const char *code = batch_line_error(s, l, r, msg, sizeof msg);
        resp_w_errorf(o, "%s %s", code, msg);
    } else if (l->op == INV_BATCH_LEVEL_SET || l->op == INV_BATCH_LEVEL_ADJUST ||
               l->op == INV_BATCH_LEVEL_GET) {
        reply_level(o, &r->level);
    } else if (l->op == INV_BATCH_LEVEL_GET_FULL || l->op == INV_BATCH_LEVEL_MOVE ||
               l->op == INV_BATCH_LEVEL_FULFIL) {
        reply_level_full(o, &r->full);
    } else if (l->op == INV_BATCH_LEVEL_TRANSFER) {
        resp_w_array(o, 2);
        reply_level_full(o, &r->full);
        reply_level_full(o, &r->to_full);
    } else {
        resp_w_ok(o);
    }
}

void reply_id_conflict(resp_out *o, const char *id, size_t len)
{
    assert(reply_buf_ok(o) && id != NULL);
    assert(len >= 1 && len <= INV_REQUEST_ID_MAX); /* peel_meta_or_reply checked it */
    resp_w_errorf(o, "CONFLICT request id '%.*s' was used with other arguments (or is running)",
                  (int)len, id);
}

/* A batch line's command alone: its parser (batch_parsers, by name), its
 * one engine call, its reply. Hot path for LEVEL.ADJUST: no allocation, no
 * lock; the parser is found in at most NFIELDS(batch_parsers) compares. */
void cmd_batch_line(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    inv_batch_line l;
    assert(handler_call_ok(s, o, v, n, 2, 0)); /* HOLD.RELEASE hold: the smallest row */
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    if (batch_line_parse_or_reply(o, v, n, &l, s->scratch->lines) != 0)
        return;
    inv_batch_result r;
    const request_meta *m = &s->meta;
    if (!m->any) {
        line_apply(s->e, &l, &r);
    } else {
        /* with an ID, a REASON or a REF: the journaled way, a batch of one
         * (a retried ID answers the first reply) */
        l.reason = m->reason;
        l.ref = m->ref, l.ref_len = m->ref_len;
        inv_batch_opts opts = {m->id, m->id_len};
        size_t failed = 0;
        memset(&r, 0, sizeof r);
        r.rc = inv_batch_ex(s->e, &l, 1, &opts, &r, &failed);
        if (r.rc == INV_ECONFLICT && failed == SIZE_MAX) {
            reply_id_conflict(o, m->id, m->id_len);
            return;
        }
    }
    reply_batch_line(s, o, &l, &r);
}

/* ---- the commands of this file (rows: cmd_internal.h) ---------------------- */

const cmd_def cmd_inventory_rows[] = {
    {"loc.set", 4, 0, 0, 0, CMD_WRITE, cmd_loc_set,
     "LOC.SET loc field value [field value ...] [NX]"},
    {"loc.get", 2, 2, 0, 0, CMD_FAST | CMD_READONLY, cmd_loc_get, "LOC.GET loc"},
    {"loc.list", 1, 5, 1, 2, CMD_READONLY, cmd_loc_list, "LOC.LIST [CURSOR c] [COUNT n]"},
    {"loc.default", 1, 2, 0, 0, CMD_WRITE, cmd_loc_default, "LOC.DEFAULT [loc]"},
    {"item.set", 4, 0, 0, 0, CMD_WRITE, cmd_item_set,
     "ITEM.SET item field value [field value ...] [NX]"},
    {"item.get", 2, 2, 0, 0, CMD_FAST | CMD_READONLY, cmd_item_get, "ITEM.GET item"},
    {"item.mget", 2, 0, 0, 0, CMD_READONLY, cmd_item_mget, "ITEM.MGET item [item ...]"},
    {"item.bysku", 2, 2, 0, 0, CMD_FAST | CMD_READONLY, cmd_item_bysku, "ITEM.BYSKU sku"},
    {"item.byvariant", 2, 0, 0, 0, CMD_READONLY, cmd_item_byvariant,
     "ITEM.BYVARIANT variant [variant ...]"},
    {"item.list", 1, 5, 1, 2, CMD_READONLY, cmd_item_list, "ITEM.LIST [CURSOR c] [COUNT n]"},
    {"item.del", 2, 2, 0, 0, CMD_WRITE, cmd_item_del, "ITEM.DEL item"},
    {"level.set", 4, 6, 0, 0, CMD_WRITE | CMD_FAST | CMD_BATCH, cmd_level_set,
     "LEVEL.SET item loc qty [IFREV rev | NX]"},
    {"level.adjust", 4, 8, 4, 2, CMD_WRITE | CMD_FAST | CMD_BATCH, cmd_batch_line,
     "LEVEL.ADJUST item loc delta [FLOOR min] [IFREV rev]"},
    {"level.get", 3, 4, 0, 0, CMD_FAST | CMD_BATCH, cmd_batch_line, "LEVEL.GET item loc [ALL]"},
    {"level.move", 8, 10, 4, 2, CMD_WRITE | CMD_BATCH, cmd_batch_line,
     "LEVEL.MOVE item loc qty FROM name TO name [FLOOR min]"},
    {"level.transfer", 5, 9, 5, 2, CMD_WRITE | CMD_BATCH, cmd_batch_line,
     "LEVEL.TRANSFER item from_loc to_loc qty [FROM name] [TO name]"},
    {"level.return", 4, 4, 0, 0, CMD_WRITE | CMD_BATCH, cmd_batch_line,
     "LEVEL.RETURN item loc qty"},
    {"level.fulfil", 4, 4, 0, 0, CMD_WRITE | CMD_BATCH, cmd_batch_line,
     "LEVEL.FULFIL item loc qty"},
    {"level.policy", 4, 6, 0, 0, CMD_WRITE | CMD_BATCH, cmd_batch_line,
     "LEVEL.POLICY item loc DENY|CONTINUE [LIMIT n]"},
    {"level.list", 2, 10, 0, 0, CMD_READONLY, cmd_level_list,
     "LEVEL.LIST item [ALL] | LEVEL.LIST LOC loc|ALLLEVELS [CURSOR c] [COUNT n] "
     "[UPDATED-SINCE ms] [ALL]"},
    {"level.del", 3, 3, 0, 0, CMD_WRITE, cmd_level_del, "LEVEL.DEL item loc"},
    {"product.inventory", 2, 4, 2, 2, CMD_READONLY, cmd_product_inventory,
     "PRODUCT.INVENTORY product [LOC loc]"},
};
const size_t cmd_inventory_rows_n = sizeof cmd_inventory_rows / sizeof cmd_inventory_rows[0];
