/*
 * catalog_record.h — the catalog's records and their codec (private): the
 * immutable item and location records, the string fields they pack, the
 * validation of the public fields structs, and the journal / snapshot
 * payloads of items, locations and the default location.
 *
 * Invariants:
 *  - a record is immutable once built or decoded; it packs its strings as
 *    one length byte each plus the bytes (no NULs), in the order of its
 *    field list (LS_* for locations, IS_* for items);
 *  - every packed string is shorter than its field's array in the public
 *    struct (so it fits with its NUL): built records hold only validated
 *    fields, and decode refuses a length over its field's limit or a
 *    total that is not the payload's size;
 *  - a payload holds one record with its id and version (the journal
 *    position of its change); decode accepts only what this layout allows.
 *
 * Pure: no tables, no journal, no locks; it depends on invcore.h alone.
 * The catalog (catalog.c) decides where records live and when they change;
 * this module never calls it.
 */
#ifndef INV_CATALOG_RECORD_H
#define INV_CATALOG_RECORD_H

#include "invcore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A string that is not NUL-terminated: a packed field, a lookup key. */
typedef struct {
    const char *p;
    size_t len;
} str_view;

static inline bool str_view_eq(str_view a, str_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* dst (cap bytes, NUL included) gets v, cut to fit. */
void str_view_copy(char *dst, size_t cap, str_view v);

/* The string fields of a location and of an item, in packing order. */
enum {
    LS_NAME,
    LS_ADDRESS1,
    LS_ADDRESS2,
    LS_CITY,
    LS_PROVINCE,
    LS_PROVINCE_CODE,
    LS_COUNTRY,
    LS_COUNTRY_CODE,
    LS_ZIP,
    LS_PHONE,
    LS_COUNT
};
enum {
    IS_SKU,
    IS_COST,
    IS_COUNTRY,
    IS_PROVINCE,
    IS_HS,
    IS_VARIANT,
    IS_PRODUCT,
    IS_COUNTRY_HS, /* added after the first format: a payload flag says it is there */
    IS_COUNT
};
/* The item strings of the first payload format (before IS_COUNTRY_HS). */
#define IS_COUNT_V1 IS_COUNTRY_HS

/* How every record starts (the codec reads both kinds through it). */
typedef struct {
    int64_t created_at_ms, updated_at_ms;
} record_times;

typedef struct {
    record_times t;
    int32_t priority;
    bool active;
    uint8_t lens[LS_COUNT];
    char bytes[];
} loc_rec;

typedef struct {
    record_times t;
    bool tracked, requires_shipping;
    uint8_t lens[IS_COUNT];
    char bytes[];
} item_rec;

/* String i of a record packed as lens[] and bytes. */
static inline str_view record_packed_get(const uint8_t *lens, const char *bytes, int i)
{
    size_t off = 0;
    for (int k = 0; k < i; k++)
        off += lens[k];
    return (str_view){bytes + off, lens[i]};
}

/* String i (IS_*) of an item record. */
static inline str_view record_item_str(const item_rec *r, int i)
{
    return record_packed_get(r->lens, r->bytes, i);
}

/* ---- validation of what a caller sent ------------------------------------ */

/* Checks f (NULL: no fields, a new record keeps the defaults) and sets
 * *wmask to the fields to write (f's mask; 0 means all). INV_EINVALID for
 * an unknown mask bit, a string without its NUL or breaking its syntax
 * (country codes, cost, HS code), or a bool that is not 0 or 1. */
int record_loc_validate(const inv_location_fields *f, unsigned *wmask);
int record_item_validate(const inv_item_fields *f, unsigned *wmask);

/* A string argument of a lookup: 1..max bytes (INV_EINVALID otherwise). */
int record_str_arg(const char *p, size_t max, str_view *out);

/* ---- building and reading records ---------------------------------------- */

/* A new record: old's values (NULL: the defaults, created now) with the
 * fields of wmask taken from f (validated). NULL when out of memory. */
loc_rec *record_loc_build(const loc_rec *old, const inv_location_fields *f, unsigned wmask,
                          int64_t now_ms);
item_rec *record_item_build(const item_rec *old, const inv_item_fields *f, unsigned wmask,
                            int64_t now_ms);

/* The public view of a record (every field, mask ALL). */
void record_loc_out(uint64_t loc, const loc_rec *r, bool is_default, inv_location *out);
void record_item_out(uint64_t item, const item_rec *r, inv_item *out);

/* ---- journal and snapshot payloads ----------------------------------------
 * Host byte order, fields packed one after the other:
 *   item      u64 id, u64 version, u8 flags (1 deleted, 2 tracked,
 *             4 requires_shipping, 8 extended), i64 created_at_ms,
 *             i64 updated_at_ms, u8 lens[7] (lens[8] when extended), the
 *             strings' bytes (sku, cost, country, province, hs code,
 *             variant, product, then country HS codes when extended); a
 *             deletion stops after the flags. Only an item with country
 *             HS codes is written extended, so every other item's payload
 *             is the first format's, byte for byte, and old journals read.
 *   location  u64 id, u64 version, u8 flags (2 active), i32 priority,
 *             i64 created, i64 updated, u8 lens[10], bytes (name .. phone,
 *             in inv_location_fields order)
 *   default   u64 id, u64 version, i64 time_ms (Unix ms of the change; 0 in
 *             a snapshot: unknown); 16 bytes before the feed (no time),
 *             still read
 * version: the journal position of the change (a record is installed on
 * replay only above the version loaded). */

/* Bytes of the default location's payload, and of its first format. */
#define RECORD_DEFAULT_LEN 24u
#define RECORD_DEFAULT_LEN_V1 16u
/* The largest payload: a location with every string at its maximum. */
#define RECORD_PAYLOAD_MAX (8 + 8 + 1 + 4 + 8 + 8 + LS_COUNT + LS_COUNT * INV_STR_MAX)

/* Payload sizes; an item r NULL: its deletion. */
uint32_t record_item_len(const item_rec *r);
uint32_t record_loc_len(const loc_rec *r);

/* Write the payload into buf (RECORD_PAYLOAD_MAX bytes); return its size. */
uint32_t record_item_encode(uint8_t *buf, uint64_t id, uint64_t version, const item_rec *r);
uint32_t record_loc_encode(uint8_t *buf, uint64_t id, uint64_t version, const loc_rec *r);
uint32_t record_default_encode(uint8_t *buf, uint64_t id, uint64_t version, int64_t time_ms);

/* Read a payload: INV_OK with a fresh record the caller owns (an item's
 * deletion: *out NULL), INV_EINVALID for a malformed one, INV_ENOMEM. */
int record_item_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                       item_rec **out);
int record_loc_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                      loc_rec **out);
/* *time_ms (may be NULL): 0 for the first format. */
int record_default_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                          int64_t *time_ms);

#endif /* INV_CATALOG_RECORD_H */
