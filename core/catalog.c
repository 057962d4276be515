/*
 * catalog.c — locations, inventory items and their SKU / variant / product
 * indexes.
 *
 * Records. A location or an item is an immutable record (a few scalars, then
 * its strings packed as one length byte each plus the bytes, no NULs; an
 * item is about 32 bytes plus its strings) held by pointer in w0 of its
 * table value; w1 is the version, bumped by every CAS. A change builds a
 * new record and swaps it in with one CAS; the replaced record goes to
 * epoch_retire. A deleted item is a tombstone (TABLE_TOMB, w0 = 0) whose
 * version goes on counting if the id is created again.
 *
 * Indexes. skus and variants map the seeded XXH3-128 of the string to the
 * item id (w0); products map the hash of the product string to a product
 * record (its name and a sorted array of item ids). Invariants, true
 * whenever no writer of the item is inside its stripe (below):
 *  - a live item whose record has SKU s (non-empty) is the value of s's
 *    entry, and an entry names only an item whose record has its string
 *    (same for variants); so two live items never share a SKU or variant;
 *  - an item with product p is listed in p's record, which lists only items
 *    that have p; a product record with no item is deleted.
 * Readers never trust an entry alone: they check that the item's record has
 * the string, so a lookup racing a change sees the old or the new state.
 *
 * Why writers of one item are serialised (the striped mutex, taken outside
 * the epoch section). The entry of a new SKU is claimed by CAS (absent ->
 * this item) before the record swap; the old SKU's entry is removed after
 * it. With two unserialised writers of one item this interleaving breaks
 * the invariant: A claims s; B, needing s too, finds it already names the
 * item; A publishes; B fails and releases s: the record has s and no entry,
 * and a third item can take s. The stripe removes that interleaving, while
 * different items still meet only through CAS on shared entries, so exactly
 * one of them can claim a given SKU. An entry held by another item whose
 * record lacks the string (a writer in flight there) answers EXISTS.
 *
 * A 128-bit collision between two different strings would look like a
 * duplicate, so a claim compares strings: an entry whose owner holds a
 * different string with the same hash answers INV_ELIMIT (the same for a
 * product whose record carries another name).
 *
 * Locations. Never deleted. Besides the table, location_ids is a sorted COW
 * array of every id, swapped by pointer CAS: catalog_foreach_location (level
 * list, item delete, tracked changes, product inventory) reads one pointer
 * and walks an array in id order instead of scanning a table. An id enters
 * the array before its record is published, so an item delete's sweep sees
 * every location a level can have been created at. The array's length
 * bounds the count (INV_LOCATIONS_MAX). The first location published
 * becomes the default by one CAS from "none".
 *
 * Durability (catalog.h). With a journal, a change reserves its position
 * before its CAS and uses it as the new version (w1), re-reserving if the
 * slot already holds a higher one; after the CAS it publishes the whole
 * record (payloads below), and the public call acknowledges it outside the
 * epoch section and the stripe. Replay installs a record only above the
 * loaded version and leaves the indexes to catalog_rebuild_indexes.
 */
#include "catalog.h"

#include "clock.h"
#include "engine.h"
#include "epoch.h"
#include "level.h"
#include "persist.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct {
    const char *p;
    size_t len;
} str_view;

static const str_view EMPTY = {"", 0};

/* ---- packed strings: lens[i] bytes each, one after the other ---------- */

static str_view packed_get(const uint8_t *lens, const char *bytes, int i)
{
    size_t off = 0;
    for (int k = 0; k < i; k++)
        off += lens[k];
    return (str_view){bytes + off, lens[i]};
}

static size_t packed_total(const str_view *s, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += s[i].len;
    return total;
}

static void packed_put(uint8_t *lens, char *bytes, const str_view *s, int n)
{
    for (int i = 0; i < n; i++) {
        lens[i] = (uint8_t)s[i].len; /* every limit is <= 255 */
        if (s[i].len)
            memcpy(bytes, s[i].p, s[i].len);
        bytes += s[i].len;
    }
}

static bool view_eq(str_view a, str_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void view_copy(char *dst, size_t cap, str_view v)
{
    size_t n = v.len < cap ? v.len : cap - 1;
    if (n)
        memcpy(dst, v.p, n);
    dst[n] = '\0';
}

/* ---- field descriptions and validation -------------------------------- */

enum field_kind { FK_TEXT, FK_COUNTRY, FK_COST, FK_HS };

typedef struct {
    unsigned mask;
    size_t offset, cap; /* cap: the array's size, NUL included */
    enum field_kind kind;
} str_field;

enum { LS_NAME, LS_ADDRESS1, LS_ADDRESS2, LS_CITY, LS_PROVINCE, LS_PROVINCE_CODE,
       LS_COUNTRY, LS_COUNTRY_CODE, LS_ZIP, LS_PHONE, LS_COUNT };

#define LOC_STR(m, f, k) \
    {m, offsetof(inv_location_fields, f), sizeof(((inv_location_fields *)0)->f), k}

static const str_field loc_fields[LS_COUNT] = {
    LOC_STR(INV_LOC_NAME, name, FK_TEXT),
    LOC_STR(INV_LOC_ADDRESS1, address1, FK_TEXT),
    LOC_STR(INV_LOC_ADDRESS2, address2, FK_TEXT),
    LOC_STR(INV_LOC_CITY, city, FK_TEXT),
    LOC_STR(INV_LOC_PROVINCE, province, FK_TEXT),
    LOC_STR(INV_LOC_PROVINCE_CODE, province_code, FK_TEXT),
    LOC_STR(INV_LOC_COUNTRY, country, FK_TEXT),
    LOC_STR(INV_LOC_COUNTRY_CODE, country_code, FK_COUNTRY),
    LOC_STR(INV_LOC_ZIP, zip, FK_TEXT),
    LOC_STR(INV_LOC_PHONE, phone, FK_TEXT),
};

enum { IS_SKU, IS_COST, IS_COUNTRY, IS_PROVINCE, IS_HS, IS_VARIANT, IS_PRODUCT, IS_COUNT };

#define ITEM_STR(m, f, k) \
    {m, offsetof(inv_item_fields, f), sizeof(((inv_item_fields *)0)->f), k}

static const str_field item_fields[IS_COUNT] = {
    ITEM_STR(INV_ITEM_SKU, sku, FK_TEXT),
    ITEM_STR(INV_ITEM_COST, cost, FK_COST),
    ITEM_STR(INV_ITEM_COUNTRY_OF_ORIGIN, country_code_of_origin, FK_COUNTRY),
    ITEM_STR(INV_ITEM_PROVINCE_OF_ORIGIN, province_code_of_origin, FK_TEXT),
    ITEM_STR(INV_ITEM_HS_CODE, harmonized_system_code, FK_HS),
    ITEM_STR(INV_ITEM_VARIANT, variant, FK_TEXT),
    ITEM_STR(INV_ITEM_PRODUCT, product, FK_TEXT),
};

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_upper(char ch) { return ch >= 'A' && ch <= 'Z'; }

static size_t skip_digits(str_view v, size_t i)
{
    while (i < v.len && is_digit(v.p[i]))
        i++;
    return i;
}

/* -?digits(.digits{1,6})? or empty. */
static bool cost_ok(str_view v)
{
    if (v.len == 0)
        return true;
    size_t i = v.p[0] == '-' ? 1 : 0;
    size_t j = skip_digits(v, i);
    if (j == i)
        return false;
    if (j == v.len)
        return true;
    if (v.p[j] != '.')
        return false;
    size_t k = skip_digits(v, j + 1);
    size_t frac = k - (j + 1);
    return k == v.len && frac >= 1 && frac <= 6;
}

static bool kind_ok(enum field_kind kind, str_view v)
{
    switch (kind) {
    case FK_COUNTRY:
        return v.len == 0 || (v.len == 2 && is_upper(v.p[0]) && is_upper(v.p[1]));
    case FK_COST:
        return cost_ok(v);
    case FK_HS:
        return v.len == 0 || (v.len >= 6 && v.len <= INV_HS_CODE_MAX && skip_digits(v, 0) == v.len);
    default:
        return true;
    }
}

/* Reads string field d of a fields struct: false when it is not
 * NUL-terminated within its array or breaks its kind's syntax. */
static bool field_read(const void *fields, const str_field *d, str_view *out)
{
    const char *p = (const char *)fields + d->offset;
    const char *nul = memchr(p, 0, d->cap);
    if (!nul)
        return false;
    *out = (str_view){p, (size_t)(nul - p)};
    return kind_ok(d->kind, *out);
}

/* A bool read as its byte: anything but 0 or 1 is garbage, not true. */
static bool bool_ok(const bool *b)
{
    unsigned char byte;
    memcpy(&byte, b, 1);
    return byte <= 1;
}

/* The fields to write: f NULL writes none (a new record keeps the
 * defaults), mask 0 writes all; unknown bits are INVALID. */
static int write_mask(const void *f, unsigned mask, unsigned all, unsigned *out)
{
    if (!f) {
        *out = 0;
        return INV_OK;
    }
    if (mask & ~all)
        return INV_EINVALID;
    *out = mask ? mask : all;
    return INV_OK;
}

static int strings_validate(const void *f, const str_field *d, int n, unsigned wmask)
{
    str_view v;
    for (int i = 0; i < n; i++)
        if ((wmask & d[i].mask) && !field_read(f, &d[i], &v))
            return INV_EINVALID;
    return INV_OK;
}

/* s[i]: the old record's string (empty without one), or f's when masked
 * (already validated). */
static void strings_merge(const str_field *d, int n, const uint8_t *old_lens,
                          const char *old_bytes, const void *f, unsigned wmask, str_view *s)
{
    for (int i = 0; i < n; i++) {
        s[i] = old_lens ? packed_get(old_lens, old_bytes, i) : EMPTY;
        if (wmask & d[i].mask)
            (void)field_read(f, &d[i], &s[i]);
    }
}

/* A string argument of a lookup: 1..max bytes. */
static int str_arg(const char *p, size_t max, str_view *out)
{
    if (!p)
        return INV_EINVALID;
    size_t len = strnlen(p, max + 1);
    if (len == 0 || len > max)
        return INV_EINVALID;
    *out = (str_view){p, len};
    return INV_OK;
}

/* ---- records ------------------------------------------------------------ */

typedef struct {
    int64_t created_at_ms, updated_at_ms;
    int32_t priority;
    bool active;
    uint8_t lens[LS_COUNT];
    char bytes[];
} loc_rec;

typedef struct {
    int64_t created_at_ms, updated_at_ms;
    bool tracked, requires_shipping;
    uint8_t lens[IS_COUNT];
    char bytes[];
} item_rec;

/* A product: its name (to tell a hash collision) and its items, sorted. */
typedef struct {
    uint32_t n;
    uint8_t name_len;
    char name[INV_VARIANT_MAX];
    uint64_t ids[];
} product_rec;

static str_view item_str(const item_rec *r, int i) { return packed_get(r->lens, r->bytes, i); }
static str_view product_name(const product_rec *p) { return (str_view){p->name, p->name_len}; }

static void *word_rec(table_word v) { return (void *)(uintptr_t)v.w0; }

/* The next live value after prev (any state): the version goes on. */
static table_word live_word(uint64_t w0, table_word prev)
{
    return (table_word){w0, table_version(prev) + 1};
}

static table_word tomb_word(table_word prev)
{
    return (table_word){0, (table_version(prev) + 1) | TABLE_TOMB};
}

/* The live record of (id, 0) in t, or NULL. Inside an epoch section; a
 * frozen value is still the latest, so a read needs no settling. */
static void *record_get(table *t, uint64_t id)
{
    table_slot *s = table_find(t, id, 0);
    if (!s)
        return NULL;
    table_word v = table_load(s);
    return table_is_live(v) ? word_rec(v) : NULL;
}

static loc_rec *loc_build(const loc_rec *old, const inv_location_fields *f, unsigned wmask,
                          int64_t now_ms)
{
    str_view s[LS_COUNT];
    strings_merge(loc_fields, LS_COUNT, old ? old->lens : NULL, old ? old->bytes : NULL, f,
                  wmask, s);
    loc_rec *r = malloc(sizeof *r + packed_total(s, LS_COUNT));
    if (!r)
        return NULL;
    r->created_at_ms = old ? old->created_at_ms : now_ms;
    r->updated_at_ms = now_ms;
    r->active = (wmask & INV_LOC_ACTIVE) ? f->active : old ? old->active : true;
    r->priority = (wmask & INV_LOC_PRIORITY) ? f->priority : old ? old->priority : 0;
    packed_put(r->lens, r->bytes, s, LS_COUNT);
    return r;
}

static item_rec *item_build(const item_rec *old, const inv_item_fields *f, unsigned wmask,
                            int64_t now_ms)
{
    str_view s[IS_COUNT];
    strings_merge(item_fields, IS_COUNT, old ? old->lens : NULL, old ? old->bytes : NULL, f,
                  wmask, s);
    item_rec *r = malloc(sizeof *r + packed_total(s, IS_COUNT));
    if (!r)
        return NULL;
    r->created_at_ms = old ? old->created_at_ms : now_ms;
    r->updated_at_ms = now_ms;
    r->tracked = (wmask & INV_ITEM_TRACKED) ? f->tracked : old ? old->tracked : true;
    r->requires_shipping = (wmask & INV_ITEM_REQUIRES_SHIPPING) ? f->requires_shipping
                           : old                                ? old->requires_shipping
                                                                : true;
    packed_put(r->lens, r->bytes, s, IS_COUNT);
    return r;
}

/* ---- journal and snapshot payloads ---------------------------------------
 * Host byte order, fields packed one after the other:
 *   PERSIST_ITEM      u64 id, u64 version, u8 flags (1 deleted, 2 tracked,
 *                     4 requires_shipping), i64 created_at_ms,
 *                     i64 updated_at_ms, u8 lens[7], the strings' bytes
 *                     (sku, cost, country, province, hs code, variant,
 *                     product); a deletion stops after the flags.
 *   PERSIST_LOCATION  u64 id, u64 version, u8 flags (2 active), i32
 *                     priority, i64 created, i64 updated, u8 lens[10],
 *                     bytes (name .. phone, in inv_location_fields order)
 *   PERSIST_DEFAULT   u64 id, u64 version
 * version: the journal position of the change (a record is installed on
 * replay only above the version loaded). */

#define ITEM_HEAD_LEN (8 + 8 + 1)
#define ITEM_BODY_LEN (8 + 8 + IS_COUNT)
#define LOC_HEAD_LEN (8 + 8 + 1 + 4 + 8 + 8 + LS_COUNT)
#define DEFAULT_PAYLOAD_LEN 16u
/* The largest payload: a location with every string at its maximum. */
#define CATALOG_PAYLOAD_MAX (LOC_HEAD_LEN + LS_COUNT * INV_STR_MAX)

enum { PF_DELETED = 1, PF_TRACKED = 2, PF_SHIPPING = 4, PF_ACTIVE = 2 };

static uint8_t *put_raw(uint8_t *p, const void *src, size_t n)
{
    if (n)
        memcpy(p, src, n);
    return p + n;
}

static const uint8_t *get_raw(const uint8_t *p, void *dst, size_t n)
{
    if (n)
        memcpy(dst, p, n);
    return p + n;
}

static size_t lens_total(const uint8_t *lens, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += lens[i];
    return total;
}

static uint32_t item_payload_len(const item_rec *r)
{
    return r ? (uint32_t)(ITEM_HEAD_LEN + ITEM_BODY_LEN + lens_total(r->lens, IS_COUNT))
             : ITEM_HEAD_LEN;
}

static uint32_t loc_payload_len(const loc_rec *r)
{
    return (uint32_t)(LOC_HEAD_LEN + lens_total(r->lens, LS_COUNT));
}

/* r NULL: the item's deletion. */
static uint32_t item_encode(uint8_t *buf, uint64_t id, uint64_t version, const item_rec *r)
{
    uint8_t flags = r ? (uint8_t)((r->tracked ? PF_TRACKED : 0) |
                                  (r->requires_shipping ? PF_SHIPPING : 0))
                      : PF_DELETED;
    uint8_t *p = put_raw(buf, &id, 8);
    p = put_raw(p, &version, 8);
    p = put_raw(p, &flags, 1);
    if (r) {
        p = put_raw(p, &r->created_at_ms, 8);
        p = put_raw(p, &r->updated_at_ms, 8);
        p = put_raw(p, r->lens, IS_COUNT);
        p = put_raw(p, r->bytes, lens_total(r->lens, IS_COUNT));
    }
    return (uint32_t)(p - buf);
}

static uint32_t loc_encode(uint8_t *buf, uint64_t id, uint64_t version, const loc_rec *r)
{
    uint8_t flags = r->active ? PF_ACTIVE : 0;
    uint8_t *p = put_raw(buf, &id, 8);
    p = put_raw(p, &version, 8);
    p = put_raw(p, &flags, 1);
    p = put_raw(p, &r->priority, 4);
    p = put_raw(p, &r->created_at_ms, 8);
    p = put_raw(p, &r->updated_at_ms, 8);
    p = put_raw(p, r->lens, LS_COUNT);
    p = put_raw(p, r->bytes, lens_total(r->lens, LS_COUNT));
    return (uint32_t)(p - buf);
}

static int publish_item(inv_engine *e, uint64_t pos, uint64_t id, uint64_t version,
                        const item_rec *r)
{
    uint8_t buf[CATALOG_PAYLOAD_MAX];
    uint32_t len = item_encode(buf, id, version, r);
    return persist_publish(e, pos, PERSIST_ITEM, buf, len);
}

static int publish_location(inv_engine *e, uint64_t pos, uint64_t id, uint64_t version,
                            const loc_rec *r)
{
    uint8_t buf[CATALOG_PAYLOAD_MAX];
    uint32_t len = loc_encode(buf, id, version, r);
    return persist_publish(e, pos, PERSIST_LOCATION, buf, len);
}

static int publish_default(inv_engine *e, uint64_t pos, uint64_t id, uint64_t version)
{
    uint64_t p[2] = {id, version};
    return persist_publish(e, pos, PERSIST_DEFAULT, p, DEFAULT_PAYLOAD_LEN);
}

/* Checks packed string lengths against each field's limit and the bytes
 * left: false if they do not fit. */
static bool lens_ok(const uint8_t *lens, const str_field *d, int n, size_t bytes_left)
{
    for (int i = 0; i < n; i++)
        if (lens[i] >= d[i].cap)
            return false;
    return lens_total(lens, n) == bytes_left;
}

/* A decoded item record (NULL with *deleted for a deletion). */
static int item_decode(const uint8_t *p, uint32_t len, uint64_t *id, uint64_t *version,
                       item_rec **out)
{
    uint8_t flags;
    *out = NULL;
    if (len < ITEM_HEAD_LEN)
        return INV_EINVALID;
    p = get_raw(get_raw(get_raw(p, id, 8), version, 8), &flags, 1);
    if (flags & ~(PF_DELETED | PF_TRACKED | PF_SHIPPING))
        return INV_EINVALID;
    if (flags & PF_DELETED)
        return len == ITEM_HEAD_LEN ? INV_OK : INV_EINVALID;
    if (len < ITEM_HEAD_LEN + ITEM_BODY_LEN)
        return INV_EINVALID;
    size_t bytes = len - ITEM_HEAD_LEN - ITEM_BODY_LEN;
    item_rec *r = malloc(sizeof *r + bytes);
    if (!r)
        return INV_ENOMEM;
    p = get_raw(get_raw(get_raw(p, &r->created_at_ms, 8), &r->updated_at_ms, 8), r->lens,
                IS_COUNT);
    (void)get_raw(p, r->bytes, bytes);
    r->tracked = flags & PF_TRACKED;
    r->requires_shipping = flags & PF_SHIPPING;
    if (!lens_ok(r->lens, item_fields, IS_COUNT, bytes)) {
        free(r);
        return INV_EINVALID;
    }
    *out = r;
    return INV_OK;
}

static int loc_decode(const uint8_t *p, uint32_t len, uint64_t *id, uint64_t *version,
                      loc_rec **out)
{
    uint8_t flags;
    *out = NULL;
    if (len < LOC_HEAD_LEN)
        return INV_EINVALID;
    size_t bytes = len - LOC_HEAD_LEN;
    loc_rec *r = malloc(sizeof *r + bytes);
    if (!r)
        return INV_ENOMEM;
    p = get_raw(get_raw(get_raw(p, id, 8), version, 8), &flags, 1);
    p = get_raw(get_raw(p, &r->priority, 4), &r->created_at_ms, 8);
    p = get_raw(get_raw(p, &r->updated_at_ms, 8), r->lens, LS_COUNT);
    (void)get_raw(p, r->bytes, bytes);
    r->active = flags & PF_ACTIVE;
    if ((flags & ~PF_ACTIVE) || !lens_ok(r->lens, loc_fields, LS_COUNT, bytes)) {
        free(r);
        return INV_EINVALID;
    }
    *out = r;
    return INV_OK;
}

/* ---- sorted id arrays --------------------------------------------------- */

static size_t ids_lower_bound(const uint64_t *ids, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool ids_has(const uint64_t *ids, size_t n, uint64_t id)
{
    size_t i = ids_lower_bound(ids, n, id);
    return i < n && ids[i] == id;
}

/* dst (room for n + 1) = src (n ids) with id inserted in order. */
static void ids_insert(uint64_t *dst, const uint64_t *src, size_t n, uint64_t id)
{
    size_t i = ids_lower_bound(src, n, id);
    if (i)
        memcpy(dst, src, i * sizeof *dst);
    dst[i] = id;
    if (n > i)
        memcpy(dst + i + 1, src + i, (n - i) * sizeof *dst);
}

/* ---- string indexes (SKU, variant): hash -> item id --------------------- */

static void str_hash(const catalog *c, str_view v, uint64_t *a, uint64_t *b)
{
    XXH128_hash_t h = XXH3_128bits_withSeed(v.p, v.len, c->index_seed);
    *a = h.low64;
    *b = h.high64;
}

/* key's entry names owner, another item: a duplicate, or a collision. */
static int index_conflict(catalog *c, int field, str_view key, uint64_t owner)
{
    const item_rec *r = record_get(&c->items, owner);
    if (!r)
        return INV_EEXISTS; /* the owner is being created: in flight */
    str_view have = item_str(r, field);
    if (have.len == 0 || view_eq(have, key))
        return INV_EEXISTS;
    uint64_t a1, b1, a2, b2;
    str_hash(c, have, &a1, &b1);
    str_hash(c, key, &a2, &b2);
    return a1 == a2 && b1 == b2 ? INV_ELIMIT : INV_EEXISTS;
}

/* Claims key for item (absent -> item). *claimed: the entry is now ours
 * and must be released if the change is not published. */
static int index_claim(catalog *c, table *t, int field, str_view key, uint64_t item,
                       bool *claimed)
{
    uint64_t a, b;
    str_hash(c, key, &a, &b);
    *claimed = false;
    for (;;) {
        table_slot *s = table_insert(t, a, b);
        if (!s)
            return INV_ENOMEM;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(t, s); /* growth: redo in the new array */
            continue;
        }
        if (table_is_live(v)) {
            if (v.w0 != item)
                return index_conflict(c, field, key, v.w0);
            *claimed = true; /* a leftover of ours: adopt it */
            return INV_OK;
        }
        if (table_cas(s, &v, live_word(item, v))) {
            table_note_created(t);
            *claimed = true;
            return INV_OK;
        }
    }
}

/* Removes key's entry if it still names item. */
static void index_release(catalog *c, table *t, str_view key, uint64_t item)
{
    uint64_t a, b;
    if (key.len == 0)
        return;
    str_hash(c, key, &a, &b);
    for (;;) {
        table_slot *s = table_find(t, a, b);
        if (!s)
            return;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(t, s);
            continue;
        }
        if (!table_is_live(v) || v.w0 != item)
            return;
        if (table_cas(s, &v, tomb_word(v))) {
            table_note_deleted(t);
            return;
        }
    }
}

static int index_lookup(catalog *c, table *t, int field, str_view key, uint64_t *out)
{
    uint64_t a, b;
    str_hash(c, key, &a, &b);
    table_slot *s = table_find(t, a, b);
    if (!s)
        return INV_ENOTFOUND;
    table_word v = table_load(s);
    if (!table_is_live(v))
        return INV_ENOTFOUND;
    const item_rec *r = record_get(&c->items, v.w0);
    if (!r || !view_eq(item_str(r, field), key))
        return INV_ENOTFOUND; /* a change in flight, or a collision */
    *out = v.w0;
    return INV_OK;
}

/* ---- products: hash -> product record ----------------------------------- */

/* A product record named name with room for n + extra ids, the first n
 * copied from ids. */
static product_rec *product_new(str_view name, const uint64_t *ids, size_t n, size_t extra)
{
    product_rec *p = malloc(sizeof *p + (n + extra) * sizeof(uint64_t));
    if (!p)
        return NULL;
    memset(p->name, 0, sizeof p->name);
    memcpy(p->name, name.p, name.len);
    p->name_len = (uint8_t)name.len;
    p->n = (uint32_t)n;
    if (n)
        memcpy(p->ids, ids, n * sizeof(uint64_t));
    return p;
}

static product_rec *product_get(catalog *c, str_view name)
{
    uint64_t a, b;
    str_hash(c, name, &a, &b);
    table_slot *s = table_find(&c->products, a, b);
    if (!s)
        return NULL;
    table_word v = table_load(s);
    if (!table_is_live(v))
        return NULL;
    product_rec *p = word_rec(v);
    return view_eq(product_name(p), name) ? p : NULL;
}

/* A copy of old (NULL: none) with item added. */
static product_rec *product_plus(const product_rec *old, str_view name, uint64_t item)
{
    size_t n = old ? old->n : 0;
    product_rec *p = product_new(name, NULL, 0, n + 1);
    if (!p)
        return NULL;
    ids_insert(p->ids, old ? old->ids : NULL, n, item);
    p->n = (uint32_t)(n + 1);
    return p;
}

/* Adds item to product name. *claimed as for index_claim. */
static int product_add(catalog *c, str_view name, uint64_t item, bool *claimed)
{
    uint64_t a, b;
    str_hash(c, name, &a, &b);
    *claimed = false;
    for (;;) {
        table_slot *s = table_insert(&c->products, a, b);
        if (!s)
            return INV_ENOMEM;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(&c->products, s);
            continue;
        }
        product_rec *old = table_is_live(v) ? word_rec(v) : NULL;
        if (old && !view_eq(product_name(old), name))
            return INV_ELIMIT; /* a 128-bit collision */
        if (old && ids_has(old->ids, old->n, item)) {
            *claimed = true; /* a leftover of ours: adopt it */
            return INV_OK;
        }
        if (old && old->n >= INV_PRODUCT_ITEMS_MAX)
            return INV_ELIMIT;
        product_rec *p = product_plus(old, name, item);
        if (!p)
            return INV_ENOMEM;
        if (table_cas(s, &v, live_word((uint64_t)(uintptr_t)p, v))) {
            if (old)
                epoch_retire(old, free, c->owner);
            else
                table_note_created(&c->products);
            *claimed = true;
            return INV_OK;
        }
        free(p);
    }
}

/* The next value of a product record without item: a copy, or a tombstone
 * when it was the last one (*p NULL). false: out of memory. */
static bool product_minus(const product_rec *old, uint64_t item, table_word v,
                          table_word *next, product_rec **p)
{
    *p = NULL;
    if (old->n == 1) {
        *next = tomb_word(v);
        return true;
    }
    *p = product_new(product_name(old), old->ids, old->n, 0);
    if (!*p)
        return false;
    size_t i = ids_lower_bound((*p)->ids, (*p)->n, item);
    memmove((*p)->ids + i, (*p)->ids + i + 1, ((*p)->n - i - 1) * sizeof(uint64_t));
    (*p)->n--;
    *next = live_word((uint64_t)(uintptr_t)*p, v);
    return true;
}

/* Removes item from product name (out of memory leaves a stale id, which
 * every reader filters by the item's own record). */
static void product_remove(catalog *c, str_view name, uint64_t item)
{
    uint64_t a, b;
    if (name.len == 0)
        return;
    str_hash(c, name, &a, &b);
    for (;;) {
        table_slot *s = table_find(&c->products, a, b);
        if (!s)
            return;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(&c->products, s);
            continue;
        }
        product_rec *old = table_is_live(v) ? word_rec(v) : NULL;
        if (!old || !view_eq(product_name(old), name) || !ids_has(old->ids, old->n, item))
            return;
        table_word next;
        product_rec *p;
        if (!product_minus(old, item, v, &next, &p))
            return;
        if (table_cas(s, &v, next)) {
            if (!p)
                table_note_deleted(&c->products);
            epoch_retire(old, free, c->owner);
            return;
        }
        free(p);
    }
}

/* ---- locations ---------------------------------------------------------- */

/* Adds loc to the sorted id array (a no-op when present). */
static int locs_add(catalog *c, uint64_t loc)
{
    for (;;) {
        /* acquire: the array's ids as its publisher wrote them. */
        catalog_locs *cur = atomic_load_explicit(&c->location_ids, memory_order_acquire);
        size_t n = cur ? cur->n : 0;
        if (cur && ids_has(cur->ids, n, loc))
            return INV_OK;
        if (n >= INV_LOCATIONS_MAX)
            return INV_ELIMIT;
        catalog_locs *next = malloc(sizeof *next + (n + 1) * sizeof(uint64_t));
        if (!next)
            return INV_ENOMEM;
        ids_insert(next->ids, cur ? cur->ids : NULL, n, loc);
        next->n = n + 1;
        /* acq_rel: release publishes the filled array to acquire loads;
         * acquire on failure: the winner's array, for the retry. */
        if (atomic_compare_exchange_strong_explicit(&c->location_ids, &cur, next,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire)) {
            if (cur)
                epoch_retire(cur, free, c->owner);
            return INV_OK;
        }
        free(next);
    }
}

/* The first location published becomes the default (once, by CAS from
 * "none"); version: the location's. */
static bool default_offer(catalog *c, uint64_t loc, uint64_t version)
{
    table_word none = {0, 0};
    return table_cas(&c->default_location, &none, (table_word){loc, version});
}

static int default_set(inv_engine *e, uint64_t loc, uint64_t *pos);

/* ---- journal versions --------------------------------------------------- */

/* The version of a change replacing v with a record of len payload bytes:
 * v's plus one in memory; with a journal, a freshly reserved position
 * above v's version (*pos, to publish or abandon). 0: the journal failed. */
static uint64_t next_version(inv_engine *e, table_word v, uint32_t len, uint64_t *pos)
{
    *pos = 0;
    if (!e->jr)
        return table_version(v) + 1;
    for (;;) {
        *pos = persist_reserve(e, len);
        if (*pos == 0)
            return 0;
        if (*pos > table_version(v))
            return *pos;
        persist_abandon(e, *pos, len); /* a later change came first */
    }
}

static void abandon(inv_engine *e, uint64_t *pos, uint32_t len)
{
    if (*pos)
        persist_abandon(e, *pos, len);
    *pos = 0;
}

bool catalog_default_location(catalog *c, uint64_t *loc)
{
    table_word v = table_load(&c->default_location);
    if (table_version(v) == 0)
        return false;
    *loc = v.w0;
    return true;
}

static int location_put(inv_engine *e, uint64_t loc, const inv_location_fields *f,
                        unsigned wmask, uint64_t *pos)
{
    catalog *c = &e->cat;
    bool listed = false;
    for (;;) {
        table_slot *s = table_insert(&c->locations, loc, 0);
        if (!s)
            return INV_ENOMEM;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(&c->locations, s);
            continue;
        }
        loc_rec *old = table_is_live(v) ? word_rec(v) : NULL;
        if (!old && !listed) {
            /* Listed before published: see the file comment. */
            int rc = locs_add(c, loc);
            if (rc != INV_OK)
                return rc;
            listed = true;
        }
        loc_rec *r = loc_build(old, f, wmask, clock_wall_ms());
        if (!r)
            return INV_ENOMEM;
        uint32_t len = loc_payload_len(r);
        uint64_t version = next_version(e, v, len, pos);
        if (version && table_cas(s, &v, (table_word){(uint64_t)(uintptr_t)r, version})) {
            bool made_default = false;
            if (old) {
                epoch_retire(old, free, c->owner);
            } else {
                table_note_created(&c->locations);
                made_default = default_offer(c, loc, version);
            }
            int rc = *pos ? publish_location(e, *pos, loc, version, r) : INV_OK;
            if (rc == INV_OK && made_default && *pos) {
                /* Replay would make the first location in journal order the
                 * default, which may be another concurrent first one: say
                 * which one won, in a record of its own. */
                uint64_t pos_default = 0;
                rc = default_set(e, loc, &pos_default);
                if (pos_default > *pos)
                    *pos = pos_default;
            }
            return rc;
        }
        free(r);
        if (!version)
            return INV_EIO;
        abandon(e, pos, len);
    }
}

int inv_location_put(inv_engine *e, uint64_t loc, const inv_location_fields *f)
{
    unsigned wmask;
    if (!e)
        return INV_EINVALID;
    int rc = write_mask(f, f ? f->mask : 0, INV_LOC_ALL, &wmask);
    if (rc == INV_OK && f)
        rc = strings_validate(f, loc_fields, LS_COUNT, wmask);
    if (rc == INV_OK && (wmask & INV_LOC_ACTIVE) && !bool_ok(&f->active))
        rc = INV_EINVALID;
    if (rc != INV_OK)
        return rc;
    uint64_t pos = 0;
    epoch_enter();
    rc = location_put(e, loc, f, wmask, &pos);
    epoch_exit();
    return rc == INV_OK && pos ? persist_ack(e, pos) : rc;
}

static void location_out(uint64_t loc, const loc_rec *r, bool is_default,
                         inv_location *out)
{
    memset(out, 0, sizeof *out);
    out->id = loc;
    out->fields.mask = INV_LOC_ALL;
    for (int i = 0; i < LS_COUNT; i++)
        view_copy((char *)&out->fields + loc_fields[i].offset, loc_fields[i].cap,
                  packed_get(r->lens, r->bytes, i));
    out->fields.active = r->active;
    out->fields.priority = r->priority;
    out->is_default = is_default;
    out->created_at_ms = r->created_at_ms;
    out->updated_at_ms = r->updated_at_ms;
}

int inv_location_get(inv_engine *e, uint64_t loc, inv_location *out)
{
    if (!e || !out)
        return INV_EINVALID;
    epoch_enter();
    const loc_rec *r = record_get(&e->cat.locations, loc);
    uint64_t def = 0;
    bool is_default = catalog_default_location(&e->cat, &def) && def == loc;
    if (r)
        location_out(loc, r, is_default, out);
    epoch_exit();
    return r ? INV_OK : INV_ENOTFOUND;
}

int inv_location_default(inv_engine *e, uint64_t *loc_out)
{
    if (!e || !loc_out)
        return INV_EINVALID;
    epoch_enter();
    bool found = catalog_default_location(&e->cat, loc_out);
    epoch_exit();
    return found ? INV_OK : INV_ENOTFOUND;
}

static int default_set(inv_engine *e, uint64_t loc, uint64_t *pos)
{
    table_slot *s = &e->cat.default_location;
    table_word v = table_load(s);
    for (;;) {
        uint64_t version = next_version(e, v, DEFAULT_PAYLOAD_LEN, pos);
        if (!version)
            return INV_EIO;
        if (table_cas(s, &v, (table_word){loc, version}))
            return *pos ? publish_default(e, *pos, loc, version) : INV_OK;
        abandon(e, pos, DEFAULT_PAYLOAD_LEN); /* v is refreshed by the failed CAS */
    }
}

int inv_location_set_default(inv_engine *e, uint64_t loc)
{
    if (!e)
        return INV_EINVALID;
    int rc = INV_ENOTFOUND;
    uint64_t pos = 0;
    epoch_enter();
    /* Locations are never deleted: once seen, loc stays valid. */
    if (catalog_location_exists(&e->cat, loc))
        rc = default_set(e, loc, &pos);
    epoch_exit();
    return rc == INV_OK && pos ? persist_ack(e, pos) : rc;
}

bool catalog_location_exists(catalog *c, uint64_t loc)
{
    return record_get(&c->locations, loc) != NULL;
}

int catalog_foreach_location(catalog *c, int (*fn)(void *ctx, uint64_t loc), void *ctx)
{
    /* acquire: the ids of the array as published (release in locs_add). */
    const catalog_locs *l = atomic_load_explicit(&c->location_ids, memory_order_acquire);
    for (size_t i = 0; l && i < l->n; i++) {
        int rc = fn(ctx, l->ids[i]);
        if (rc)
            return rc;
    }
    return INV_OK;
}

/* ---- listing (cursor = hash position, table_scan) ----------------------- */

typedef struct {
    uint64_t *ids;
    size_t cap, n;
} id_page;

static int page_visit(void *p, uint64_t a, uint64_t b, table_word v)
{
    id_page *pg = p;
    if (pg->n < pg->cap)
        pg->ids[pg->n] = a;
    pg->n++;
    return 0;
}

/* One page of the ids of t. More entries than ids_cap can only come from
 * ids sharing one 64-bit hash position (LIMIT then). */
static int id_list(table *t, uint64_t cursor, size_t count, uint64_t *ids, size_t ids_cap,
                   size_t *n_out, uint64_t *next_cursor)
{
    if (count == 0 || count > INV_LIST_COUNT_MAX || !ids || ids_cap == 0 || !n_out ||
        !next_cursor)
        return INV_EINVALID;
    id_page pg = {ids, ids_cap, 0};
    uint64_t next = 0;
    epoch_enter();
    int rc = table_scan(t, cursor, count < ids_cap ? count : ids_cap, page_visit, &pg, &next);
    epoch_exit();
    if (rc != INV_OK)
        return rc;
    *n_out = pg.n;
    *next_cursor = next;
    return pg.n > ids_cap ? INV_ELIMIT : INV_OK;
}

int inv_location_list(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids,
                      size_t ids_cap, size_t *n_out, uint64_t *next_cursor)
{
    if (!e)
        return INV_EINVALID;
    return id_list(&e->cat.locations, cursor, count, ids, ids_cap, n_out, next_cursor);
}

int inv_item_list(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids,
                  size_t ids_cap, size_t *n_out, uint64_t *next_cursor)
{
    if (!e)
        return INV_EINVALID;
    return id_list(&e->cat.items, cursor, count, ids, ids_cap, n_out, next_cursor);
}

/* ---- items -------------------------------------------------------------- */

static pthread_mutex_t *item_stripe(catalog *c, uint64_t item)
{
    uint64_t h = (item ^ (item >> 31)) * 0x9e3779b97f4a7c15ULL;
    return &c->write_locks[(h >> 32) & (CATALOG_WRITE_STRIPES - 1)];
}

typedef struct {
    bool sku, variant, product;
} item_claims;

static void item_release_claims(catalog *c, uint64_t item, const item_rec *r,
                                const item_claims *cl)
{
    if (cl->sku)
        index_release(c, &c->skus, item_str(r, IS_SKU), item);
    if (cl->variant)
        index_release(c, &c->variants, item_str(r, IS_VARIANT), item);
    if (cl->product)
        product_remove(c, item_str(r, IS_PRODUCT), item);
}

/* Claims the index entries r needs that old (NULL: none) did not have.
 * On failure nothing stays claimed. */
static int item_claim_keys(catalog *c, uint64_t item, const item_rec *old, const item_rec *r,
                           item_claims *cl)
{
    *cl = (item_claims){false, false, false};
    str_view sku = item_str(r, IS_SKU), var = item_str(r, IS_VARIANT);
    str_view prod = item_str(r, IS_PRODUCT);
    int rc = INV_OK;
    if (sku.len && !(old && view_eq(sku, item_str(old, IS_SKU))))
        rc = index_claim(c, &c->skus, IS_SKU, sku, item, &cl->sku);
    if (rc == INV_OK && var.len && !(old && view_eq(var, item_str(old, IS_VARIANT))))
        rc = index_claim(c, &c->variants, IS_VARIANT, var, item, &cl->variant);
    if (rc == INV_OK && prod.len && !(old && view_eq(prod, item_str(old, IS_PRODUCT))))
        rc = product_add(c, prod, item, &cl->product);
    if (rc != INV_OK)
        item_release_claims(c, item, r, cl);
    return rc;
}

/* After a swap from old to r (NULL: deleted): drops the entries of old's
 * strings that r no longer has. */
static void item_drop_keys(catalog *c, uint64_t item, const item_rec *old, const item_rec *r)
{
    static const int keyed[3] = {IS_SKU, IS_VARIANT, IS_PRODUCT};
    for (int k = 0; k < 3; k++) {
        str_view was = item_str(old, keyed[k]), now = r ? item_str(r, keyed[k]) : EMPTY;
        if (was.len == 0 || view_eq(was, now))
            continue;
        if (keyed[k] == IS_PRODUCT)
            product_remove(c, was, item);
        else
            index_release(c, keyed[k] == IS_SKU ? &c->skus : &c->variants, was, item);
    }
}

/* Swaps s from *v to r (after the claims). *pos: the journal position to
 * publish at. INV_OK; 1 when another value came first (only a growth
 * freeze, under the stripe; *v is fresh); INV_EIO. */
static int item_swap(inv_engine *e, table_slot *s, table_word *v, item_rec *r,
                     uint64_t *version, uint64_t *pos)
{
    uint32_t len = item_payload_len(r);
    *version = next_version(e, *v, len, pos);
    if (!*version)
        return INV_EIO;
    if (table_cas(s, v, (table_word){(uint64_t)(uintptr_t)r, *version}))
        return INV_OK;
    abandon(e, pos, len);
    return 1;
}

/* Inside the item's stripe and an epoch section. */
static int item_put_locked(inv_engine *e, uint64_t item, const inv_item_fields *f,
                           unsigned wmask, uint64_t *pos)
{
    catalog *c = &e->cat;
    for (;;) {
        table_slot *s = table_insert(&c->items, item, 0);
        if (!s)
            return INV_ENOMEM;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(&c->items, s);
            continue;
        }
        item_rec *old = table_is_live(v) ? word_rec(v) : NULL;
        item_rec *r = item_build(old, f, wmask, clock_wall_ms());
        if (!r)
            return INV_ENOMEM;
        item_claims cl;
        uint64_t version = 0;
        int rc = item_claim_keys(c, item, old, r, &cl);
        if (rc == INV_OK && (rc = item_swap(e, s, &v, r, &version, pos)) != INV_OK)
            item_release_claims(c, item, r, &cl);
        if (rc == 1) {
            free(r); /* a growth froze the slot: start over in the new array */
            continue;
        }
        if (rc != INV_OK) {
            free(r);
            return rc;
        }
        /* Publish before anything else reserves a position: a thread
         * publishes its reservations in order (journal.h). */
        rc = *pos ? publish_item(e, *pos, item, version, r) : INV_OK;
        if (old) {
            item_drop_keys(c, item, old, r);
            if (old->tracked != r->tracked) {
                uint64_t marked = level_mark_tracked(e, item, r->tracked);
                if (marked > *pos)
                    *pos = marked; /* acknowledge once those are durable too */
            }
            epoch_retire(old, free, c->owner);
        } else {
            table_note_created(&c->items); /* a new item has no levels to mark */
        }
        return rc;
    }
}

static int item_validate(const inv_item_fields *f, unsigned *wmask)
{
    int rc = write_mask(f, f ? f->mask : 0, INV_ITEM_ALL, wmask);
    if (rc != INV_OK || !f)
        return rc;
    rc = strings_validate(f, item_fields, IS_COUNT, *wmask);
    if (rc == INV_OK && (*wmask & INV_ITEM_TRACKED) && !bool_ok(&f->tracked))
        rc = INV_EINVALID;
    if (rc == INV_OK && (*wmask & INV_ITEM_REQUIRES_SHIPPING) &&
        !bool_ok(&f->requires_shipping))
        rc = INV_EINVALID;
    return rc;
}

int inv_item_put(inv_engine *e, uint64_t item, const inv_item_fields *f)
{
    unsigned wmask;
    if (!e)
        return INV_EINVALID;
    int rc = item_validate(f, &wmask);
    if (rc != INV_OK)
        return rc;
    uint64_t pos = 0;
    pthread_mutex_t *m = item_stripe(&e->cat, item);
    pthread_mutex_lock(m); /* outside the epoch section: waiting may block */
    epoch_enter();
    rc = item_put_locked(e, item, f, wmask, &pos);
    epoch_exit();
    pthread_mutex_unlock(m);
    return rc == INV_OK && pos ? persist_ack(e, pos) : rc;
}

/* Undoes a deletion just made under the item's stripe: the tombstone goes
 * back to the old record (its index entries were not touched), journaled.
 * *pos becomes the restoring change's position. */
static int item_restore(inv_engine *e, uint64_t item, item_rec *old, uint64_t *pos)
{
    catalog *c = &e->cat;
    for (;;) {
        table_slot *s = table_find(&c->items, item, 0);
        if (!s)
            return INV_ENOTFOUND; /* cannot happen: the tombstone keeps the key */
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(&c->items, s);
            continue;
        }
        uint64_t version = next_version(e, v, item_payload_len(old), pos);
        if (!version)
            return INV_EIO;
        if (!table_cas(s, &v, (table_word){(uint64_t)(uintptr_t)old, version})) {
            abandon(e, pos, item_payload_len(old));
            continue;
        }
        table_note_created(&c->items);
        return *pos ? publish_item(e, *pos, item, version, old) : INV_OK;
    }
}

/* Marks the item deleted first (level creation re-checks it), then drops
 * its levels, then its index entries. */
static int item_del_locked(inv_engine *e, uint64_t item, uint64_t *pos)
{
    catalog *c = &e->cat;
    for (;;) {
        table_slot *s = table_find(&c->items, item, 0);
        if (!s)
            return INV_ENOTFOUND;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(&c->items, s);
            continue;
        }
        if (!table_is_live(v))
            return INV_ENOTFOUND;
        item_rec *old = word_rec(v);
        uint64_t version = next_version(e, v, ITEM_HEAD_LEN, pos);
        if (!version)
            return INV_EIO;
        if (!table_cas(s, &v, (table_word){0, version | TABLE_TOMB})) {
            abandon(e, pos, ITEM_HEAD_LEN);
            continue;
        }
        table_note_deleted(&c->items);
        /* Publish before the level deletions reserve theirs (in order). */
        int rc = *pos ? publish_item(e, *pos, item, version, NULL) : INV_OK;
        if (rc == INV_OK && level_item_reserved(e, item)) {
            /* Live holds count on its stock (checked after the tombstone:
             * a hold that reserves later sees the item gone and backs out).
             * Put the item back and refuse. */
            rc = item_restore(e, item, old, pos);
            return rc == INV_OK ? INV_ECONFLICT : rc;
        }
        uint64_t dropped = level_drop_item(e, item);
        if (dropped > *pos)
            *pos = dropped; /* acknowledge once the level deletions are durable */
        item_drop_keys(c, item, old, NULL);
        epoch_retire(old, free, c->owner);
        return rc;
    }
}

int inv_item_del(inv_engine *e, uint64_t item)
{
    if (!e)
        return INV_EINVALID;
    uint64_t pos = 0;
    pthread_mutex_t *m = item_stripe(&e->cat, item);
    pthread_mutex_lock(m);
    epoch_enter();
    int rc = item_del_locked(e, item, &pos);
    epoch_exit();
    pthread_mutex_unlock(m);
    /* A refused delete (CONFLICT) was published and then undone by a
     * second record: "nothing deleted" holds across a crash only once that
     * record is durable, so it is acknowledged like a success. */
    if (pos && (rc == INV_OK || rc == INV_ECONFLICT)) {
        int ack = persist_ack(e, pos);
        if (ack != INV_OK)
            return ack;
    }
    return rc;
}

static void item_out(uint64_t item, const item_rec *r, inv_item *out)
{
    memset(out, 0, sizeof *out);
    out->id = item;
    out->fields.mask = INV_ITEM_ALL;
    for (int i = 0; i < IS_COUNT; i++)
        view_copy((char *)&out->fields + item_fields[i].offset, item_fields[i].cap,
                  item_str(r, i));
    out->fields.tracked = r->tracked;
    out->fields.requires_shipping = r->requires_shipping;
    out->created_at_ms = r->created_at_ms;
    out->updated_at_ms = r->updated_at_ms;
}

int inv_item_get(inv_engine *e, uint64_t item, inv_item *out)
{
    if (!e || !out)
        return INV_EINVALID;
    epoch_enter();
    const item_rec *r = record_get(&e->cat.items, item);
    if (r)
        item_out(item, r, out);
    epoch_exit();
    return r ? INV_OK : INV_ENOTFOUND;
}

static int by_string(inv_engine *e, const char *s, size_t max, int field, uint64_t *item_out)
{
    str_view key;
    if (!e || !item_out || str_arg(s, max, &key) != INV_OK)
        return INV_EINVALID;
    table *t = field == IS_SKU ? &e->cat.skus : &e->cat.variants;
    epoch_enter();
    int rc = index_lookup(&e->cat, t, field, key, item_out);
    epoch_exit();
    return rc;
}

int inv_item_by_sku(inv_engine *e, const char *sku, uint64_t *item_out)
{
    return by_string(e, sku, INV_SKU_MAX, IS_SKU, item_out);
}

int inv_item_by_variant(inv_engine *e, const char *variant, uint64_t *item_out)
{
    return by_string(e, variant, INV_VARIANT_MAX, IS_VARIANT, item_out);
}

bool catalog_item_exists(catalog *c, uint64_t item, bool *tracked)
{
    const item_rec *r = record_get(&c->items, item);
    if (r && tracked)
        *tracked = r->tracked;
    return r != NULL;
}

/* ---- products ----------------------------------------------------------- */

/* The live record of item if it still belongs to product name (a product
 * record may briefly list an item whose change is in flight). */
static const item_rec *product_member(catalog *c, str_view name, uint64_t item)
{
    const item_rec *r = record_get(&c->items, item);
    return r && view_eq(item_str(r, IS_PRODUCT), name) ? r : NULL;
}

int inv_product_items(inv_engine *e, const char *product, uint64_t *items, size_t cap,
                      size_t *n_out)
{
    str_view name;
    if (!e || !n_out || (!items && cap) || str_arg(product, INV_VARIANT_MAX, &name) != INV_OK)
        return INV_EINVALID;
    size_t n = 0;
    epoch_enter();
    const product_rec *p = product_get(&e->cat, name);
    for (size_t i = 0; p && i < p->n; i++) {
        if (!product_member(&e->cat, name, p->ids[i]))
            continue;
        if (n < cap)
            items[n] = p->ids[i];
        n++;
    }
    epoch_exit();
    if (!p)
        return INV_ENOTFOUND;
    *n_out = n;
    return n > cap ? INV_ELIMIT : INV_OK;
}

typedef struct {
    inv_engine *e;
    uint64_t item;
    const item_rec *r;
    inv_stock_row *rows;
    size_t cap, n;
    int64_t total;
} stock_ctx;

static int stock_one(void *p, uint64_t loc)
{
    stock_ctx *x = p;
    table_slot *s = table_find(&x->e->levels, x->item, loc);
    if (!s)
        return 0;
    table_word v = table_load(s);
    if (!table_is_live(v))
        return 0;
    int64_t available = level_available(v);
    if (x->r->tracked)
        x->total += available;
    if (x->n < x->cap) {
        inv_stock_row *row = &x->rows[x->n];
        view_copy(row->variant, sizeof row->variant, item_str(x->r, IS_VARIANT));
        row->item = x->item;
        row->location = loc;
        row->available = available;
    }
    x->n++;
    return 0;
}

/* Rows of every member of p, items and locations in id order. */
static int stock_rows(stock_ctx *x, const product_rec *p, str_view name,
                      const uint64_t *only_loc)
{
    catalog *c = &x->e->cat;
    if (only_loc && !catalog_location_exists(c, *only_loc))
        return INV_ENOTFOUND;
    for (size_t i = 0; i < p->n; i++) {
        x->item = p->ids[i];
        x->r = product_member(c, name, x->item);
        if (!x->r)
            continue;
        if (only_loc)
            (void)stock_one(x, *only_loc);
        else
            (void)catalog_foreach_location(c, stock_one, x);
    }
    return INV_OK;
}

int inv_product_inventory(inv_engine *e, const char *product, const uint64_t *only_loc,
                          inv_stock_row *rows, size_t cap, size_t *n_out, int64_t *total_out)
{
    str_view name;
    if (!e || !n_out || !total_out || (!rows && cap) ||
        str_arg(product, INV_VARIANT_MAX, &name) != INV_OK)
        return INV_EINVALID;
    stock_ctx x = {e, 0, NULL, rows, cap, 0, 0};
    epoch_enter();
    const product_rec *p = product_get(&e->cat, name);
    int rc = p ? stock_rows(&x, p, name, only_loc) : INV_ENOTFOUND;
    epoch_exit();
    if (rc != INV_OK)
        return rc;
    *n_out = x.n;
    *total_out = x.total;
    return x.n > cap ? INV_ELIMIT : INV_OK;
}

/* ---- recovery and snapshots --------------------------------------------- */

/* Installs rec (NULL: a tombstone) as (id, 0) of t if version is above the
 * loaded one; rec is consumed either way. */
static int install(catalog *c, table *t, uint64_t id, uint64_t version, void *rec)
{
    if (version == 0 || version > TABLE_VERSION_MAX) {
        free(rec);
        return INV_EINVALID;
    }
    for (;;) {
        table_slot *s = table_insert(t, id, 0);
        if (!s) {
            free(rec);
            return INV_ENOMEM;
        }
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(t, s);
            continue;
        }
        if (table_version(v) >= version) {
            free(rec); /* what is loaded is as new or newer */
            return INV_OK;
        }
        table_word next = rec ? (table_word){(uint64_t)(uintptr_t)rec, version}
                              : (table_word){0, version | TABLE_TOMB};
        if (!table_cas(s, &v, next))
            continue;
        bool was_live = table_is_live(v);
        if (was_live)
            epoch_retire(word_rec(v), free, c->owner);
        if (!was_live && rec)
            table_note_created(t);
        if (was_live && !rec)
            table_note_deleted(t);
        return INV_OK;
    }
}

static int replay_default(catalog *c, const void *payload, uint32_t len)
{
    uint64_t p[2];
    if (len != DEFAULT_PAYLOAD_LEN)
        return INV_EINVALID;
    memcpy(p, payload, sizeof p);
    if (p[1] == 0 || p[1] > TABLE_VERSION_MAX)
        return INV_EINVALID;
    table_word v = table_load(&c->default_location);
    while (table_version(v) < p[1] &&
           !table_cas(&c->default_location, &v, (table_word){p[0], p[1]}))
        ; /* v is refreshed by the failed CAS */
    return INV_OK;
}

int catalog_replay(catalog *c, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    uint64_t id, version;
    int rc;
    if (type == PERSIST_ITEM) {
        item_rec *r;
        rc = item_decode(payload, len, &id, &version, &r);
        return rc == INV_OK ? install(c, &c->items, id, version, r) : rc;
    }
    if (type == PERSIST_LOCATION) {
        loc_rec *r;
        rc = loc_decode(payload, len, &id, &version, &r);
        if (rc == INV_OK && (rc = locs_add(c, id)) != INV_OK)
            free(r);
        if (rc == INV_OK)
            rc = install(c, &c->locations, id, version, r);
        /* Journal records come in change order: the first location
         * replayed was the first created. A snapshot carries its default. */
        if (rc == INV_OK && pos)
            default_offer(c, id, version);
        return rc;
    }
    return type == PERSIST_DEFAULT ? replay_default(c, payload, len) : INV_EINVALID;
}

static int rebuild_one(void *ctx, uint64_t item, uint64_t b, table_word v)
{
    catalog *c = ctx;
    const item_rec *r = word_rec(v);
    str_view sku = item_str(r, IS_SKU), var = item_str(r, IS_VARIANT);
    str_view prod = item_str(r, IS_PRODUCT);
    bool claimed;
    int rc = INV_OK;
    if (sku.len)
        rc = index_claim(c, &c->skus, IS_SKU, sku, item, &claimed);
    if (rc == INV_OK && var.len)
        rc = index_claim(c, &c->variants, IS_VARIANT, var, item, &claimed);
    if (rc == INV_OK && prod.len)
        rc = product_add(c, prod, item, &claimed);
    return rc;
}

int catalog_rebuild_indexes(catalog *c)
{
    return table_foreach(&c->items, rebuild_one, c);
}

static int snapshot_item(void *w, uint64_t item, uint64_t b, table_word v)
{
    uint8_t buf[CATALOG_PAYLOAD_MAX];
    uint32_t len = item_encode(buf, item, table_version(v), word_rec(v));
    return snapshot_add(w, PERSIST_ITEM, buf, len);
}

static int snapshot_location(void *w, uint64_t loc, uint64_t b, table_word v)
{
    uint8_t buf[CATALOG_PAYLOAD_MAX];
    uint32_t len = loc_encode(buf, loc, table_version(v), word_rec(v));
    return snapshot_add(w, PERSIST_LOCATION, buf, len);
}

int catalog_snapshot(catalog *c, snapshot_writer *w)
{
    int rc = table_foreach(&c->locations, snapshot_location, w);
    if (rc == INV_OK)
        rc = table_foreach(&c->items, snapshot_item, w);
    table_word v = table_load(&c->default_location);
    if (rc == INV_OK && table_version(v) != 0) {
        uint64_t p[2] = {v.w0, table_version(v)};
        rc = snapshot_add(w, PERSIST_DEFAULT, p, DEFAULT_PAYLOAD_LEN);
    }
    return rc;
}

/* ---- life cycle --------------------------------------------------------- */

static int free_record(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    free(word_rec(v));
    return 0;
}

int catalog_init(catalog *c, const inv_config *cfg, const void *owner)
{
    memset(c, 0, sizeof *c);
    c->owner = owner;
    if (getrandom(&c->index_seed, sizeof c->index_seed, 0) != sizeof c->index_seed)
        c->index_seed = (uint64_t)(uintptr_t)c ^ 0x51ed270b27a3d9c5ULL;
    size_t items = cfg ? cfg->items_capacity : 0;
    size_t locs = cfg ? cfg->locations_capacity : 0;
    table *tables[5] = {&c->items, &c->locations, &c->skus, &c->variants, &c->products};
    size_t hints[5] = {items, locs, items, items, items / 8};
    for (int i = 0; i < 5; i++) {
        if (table_init(tables[i], hints[i], owner) != INV_OK) {
            while (i-- > 0)
                table_destroy(tables[i]);
            return INV_ENOMEM;
        }
    }
    atomic_init(&c->location_ids, NULL);
    for (int i = 0; i < CATALOG_WRITE_STRIPES; i++)
        pthread_mutex_init(&c->write_locks[i], NULL);
    return INV_OK;
}

void catalog_destroy(catalog *c)
{
    (void)table_foreach(&c->items, free_record, NULL);
    (void)table_foreach(&c->locations, free_record, NULL);
    (void)table_foreach(&c->products, free_record, NULL);
    /* relaxed: no other thread uses the catalog any more. */
    free(atomic_load_explicit(&c->location_ids, memory_order_relaxed));
    atomic_store_explicit(&c->location_ids, NULL, memory_order_relaxed);
    table *tables[5] = {&c->items, &c->locations, &c->skus, &c->variants, &c->products};
    for (int i = 0; i < 5; i++)
        table_destroy(tables[i]);
    for (int i = 0; i < CATALOG_WRITE_STRIPES; i++)
        pthread_mutex_destroy(&c->write_locks[i]);
}
