/*
 * catalog_record.c — the catalog's record format and field codec: string
 * fields described once as tables (offset, size, syntax), validation of
 * the public fields structs, building records copy-on-write, and the
 * journal / snapshot payloads (layouts in catalog_record.h).
 *
 * Invariant kept here: every string a record packs is shorter than its
 * field's array (limits <= 255, so a length fits its byte), whether the
 * record was built from validated fields or decoded from a payload.
 * Nothing here touches a table, the journal or a lock.
 */
#include "catalog_record.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const str_view EMPTY = {"", 0};

void str_view_copy(char *dst, size_t cap, str_view v)
{
    assert(cap > 0);
    size_t n = v.len < cap ? v.len : cap - 1;
    if (n)
        memcpy(dst, v.p, n);
    dst[n] = '\0';
}

/* ---- packed strings: lens[i] bytes each, one after the other ---------- */

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
        assert(s[i].len <= UINT8_MAX); /* every field's limit is <= 255 */
        lens[i] = (uint8_t)s[i].len;
        if (s[i].len)
            memcpy(bytes, s[i].p, s[i].len);
        bytes += s[i].len;
    }
}

static size_t lens_total(const uint8_t *lens, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += lens[i];
    return total;
}

/* ---- field descriptions and validation -------------------------------- */

enum field_kind { FK_TEXT, FK_COUNTRY, FK_COST, FK_HS };

typedef struct {
    unsigned mask;
    size_t offset, cap; /* cap: the array's size, NUL included */
    enum field_kind kind;
} str_field;

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

/* The fields to write (f NULL: none, mask 0: all; unknown bits are
 * INVALID), each of them checked. */
static int fields_validate(const void *f, unsigned mask, unsigned all, const str_field *d,
                           int n, unsigned *wmask)
{
    *wmask = 0;
    if (!f)
        return INV_OK;
    if (mask & ~all)
        return INV_EINVALID;
    *wmask = mask ? mask : all;
    str_view v;
    for (int i = 0; i < n; i++)
        if ((*wmask & d[i].mask) && !field_read(f, &d[i], &v))
            return INV_EINVALID;
    return INV_OK;
}

int record_loc_validate(const inv_location_fields *f, unsigned *wmask)
{
    assert(wmask);
    int rc = fields_validate(f, f ? f->mask : 0, INV_LOC_ALL, loc_fields, LS_COUNT, wmask);
    if (rc == INV_OK && (*wmask & INV_LOC_ACTIVE) && !bool_ok(&f->active))
        rc = INV_EINVALID;
    return rc;
}

int record_item_validate(const inv_item_fields *f, unsigned *wmask)
{
    assert(wmask);
    int rc = fields_validate(f, f ? f->mask : 0, INV_ITEM_ALL, item_fields, IS_COUNT, wmask);
    if (rc == INV_OK && (*wmask & INV_ITEM_TRACKED) && !bool_ok(&f->tracked))
        rc = INV_EINVALID;
    if (rc == INV_OK && (*wmask & INV_ITEM_REQUIRES_SHIPPING) &&
        !bool_ok(&f->requires_shipping))
        rc = INV_EINVALID;
    return rc;
}

int record_str_arg(const char *p, size_t max, str_view *out)
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

/* s[i]: the old record's string (empty without one), or f's when masked
 * (already validated). Returns the bytes they take together. */
static size_t strings_merge(const str_field *d, int n, const uint8_t *old_lens,
                            const char *old_bytes, const void *f, unsigned wmask, str_view *s)
{
    for (int i = 0; i < n; i++) {
        s[i] = old_lens ? record_packed_get(old_lens, old_bytes, i) : EMPTY;
        if (wmask & d[i].mask) {
            bool ok = field_read(f, &d[i], &s[i]);
            assert(ok); /* validated by the caller */
            (void)ok;
        }
    }
    return packed_total(s, n);
}

/* Copies each packed string into its field of a public fields struct. */
static void strings_out(const str_field *d, int n, const uint8_t *lens, const char *bytes,
                        void *fields)
{
    for (int i = 0; i < n; i++)
        str_view_copy((char *)fields + d[i].offset, d[i].cap,
                      record_packed_get(lens, bytes, i));
}

loc_rec *record_loc_build(const loc_rec *old, const inv_location_fields *f, unsigned wmask,
                          int64_t now_ms)
{
    assert(f || wmask == 0);
    str_view s[LS_COUNT];
    size_t total = strings_merge(loc_fields, LS_COUNT, old ? old->lens : NULL,
                                 old ? old->bytes : NULL, f, wmask, s);
    loc_rec *r = malloc(sizeof *r + total);
    if (!r)
        return NULL;
    r->created_at_ms = old ? old->created_at_ms : now_ms;
    r->updated_at_ms = now_ms;
    r->active = (wmask & INV_LOC_ACTIVE) ? f->active : old ? old->active : true;
    r->priority = (wmask & INV_LOC_PRIORITY) ? f->priority : old ? old->priority : 0;
    packed_put(r->lens, r->bytes, s, LS_COUNT);
    return r;
}

item_rec *record_item_build(const item_rec *old, const inv_item_fields *f, unsigned wmask,
                            int64_t now_ms)
{
    assert(f || wmask == 0);
    str_view s[IS_COUNT];
    size_t total = strings_merge(item_fields, IS_COUNT, old ? old->lens : NULL,
                                 old ? old->bytes : NULL, f, wmask, s);
    item_rec *r = malloc(sizeof *r + total);
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

void record_loc_out(uint64_t loc, const loc_rec *r, bool is_default, inv_location *out)
{
    assert(r && out);
    memset(out, 0, sizeof *out);
    out->id = loc;
    out->fields.mask = INV_LOC_ALL;
    strings_out(loc_fields, LS_COUNT, r->lens, r->bytes, &out->fields);
    out->fields.active = r->active;
    out->fields.priority = r->priority;
    out->is_default = is_default;
    out->created_at_ms = r->created_at_ms;
    out->updated_at_ms = r->updated_at_ms;
}

void record_item_out(uint64_t item, const item_rec *r, inv_item *out)
{
    assert(r && out);
    memset(out, 0, sizeof *out);
    out->id = item;
    out->fields.mask = INV_ITEM_ALL;
    strings_out(item_fields, IS_COUNT, r->lens, r->bytes, &out->fields);
    out->fields.tracked = r->tracked;
    out->fields.requires_shipping = r->requires_shipping;
    out->created_at_ms = r->created_at_ms;
    out->updated_at_ms = r->updated_at_ms;
}

/* ---- journal and snapshot payloads (layouts in catalog_record.h) -------- */

#define ITEM_HEAD_LEN (8 + 8 + 1)
#define ITEM_BODY_LEN (8 + 8 + IS_COUNT)
#define LOC_HEAD_LEN (8 + 8 + 1 + 4 + 8 + 8 + LS_COUNT)

/* The largest item payload fits the buffers sized for a location. */
_Static_assert(ITEM_HEAD_LEN + ITEM_BODY_LEN + INV_SKU_MAX + INV_COST_MAX +
                       INV_COUNTRY_CODE_MAX + INV_PROVINCE_CODE_MAX + INV_HS_CODE_MAX +
                       2 * INV_VARIANT_MAX <=
                   RECORD_PAYLOAD_MAX,
               "an item payload must fit RECORD_PAYLOAD_MAX");
_Static_assert(LOC_HEAD_LEN + LS_COUNT * INV_STR_MAX == RECORD_PAYLOAD_MAX,
               "RECORD_PAYLOAD_MAX is the largest location payload");

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

/* id, version and flags: how every item and location payload starts. */
static uint8_t *put_head(uint8_t *p, uint64_t id, uint64_t version, uint8_t flags)
{
    return put_raw(put_raw(put_raw(p, &id, 8), &version, 8), &flags, 1);
}

static const uint8_t *get_head(const uint8_t *p, uint64_t *id, uint64_t *version,
                               uint8_t *flags)
{
    return get_raw(get_raw(get_raw(p, id, 8), version, 8), flags, 1);
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

uint32_t record_item_len(const item_rec *r)
{
    return r ? (uint32_t)(ITEM_HEAD_LEN + ITEM_BODY_LEN + lens_total(r->lens, IS_COUNT))
             : ITEM_HEAD_LEN;
}

uint32_t record_loc_len(const loc_rec *r)
{
    assert(r);
    return (uint32_t)(LOC_HEAD_LEN + lens_total(r->lens, LS_COUNT));
}

uint32_t record_item_encode(uint8_t *buf, uint64_t id, uint64_t version, const item_rec *r)
{
    uint8_t flags = r ? (uint8_t)((r->tracked ? PF_TRACKED : 0) |
                                  (r->requires_shipping ? PF_SHIPPING : 0))
                      : PF_DELETED;
    uint8_t *p = put_head(buf, id, version, flags);
    if (r) {
        p = put_raw(p, &r->created_at_ms, 8);
        p = put_raw(p, &r->updated_at_ms, 8);
        p = put_raw(p, r->lens, IS_COUNT);
        p = put_raw(p, r->bytes, lens_total(r->lens, IS_COUNT));
    }
    assert((uint32_t)(p - buf) == record_item_len(r));
    return (uint32_t)(p - buf);
}

uint32_t record_loc_encode(uint8_t *buf, uint64_t id, uint64_t version, const loc_rec *r)
{
    assert(r);
    uint8_t *p = put_head(buf, id, version, r->active ? PF_ACTIVE : 0);
    p = put_raw(p, &r->priority, 4);
    p = put_raw(p, &r->created_at_ms, 8);
    p = put_raw(p, &r->updated_at_ms, 8);
    p = put_raw(p, r->lens, LS_COUNT);
    p = put_raw(p, r->bytes, lens_total(r->lens, LS_COUNT));
    assert((uint32_t)(p - buf) == record_loc_len(r));
    return (uint32_t)(p - buf);
}

uint32_t record_default_encode(uint8_t *buf, uint64_t id, uint64_t version)
{
    uint8_t *p = put_raw(put_raw(buf, &id, 8), &version, 8);
    assert((uint32_t)(p - buf) == RECORD_DEFAULT_LEN);
    return RECORD_DEFAULT_LEN;
}

int record_item_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                       item_rec **out)
{
    const uint8_t *p = payload;
    uint8_t flags;
    *out = NULL;
    if (len < ITEM_HEAD_LEN)
        return INV_EINVALID;
    p = get_head(p, id, version, &flags);
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

int record_loc_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                      loc_rec **out)
{
    const uint8_t *p = payload;
    uint8_t flags;
    *out = NULL;
    if (len < LOC_HEAD_LEN)
        return INV_EINVALID;
    size_t bytes = len - LOC_HEAD_LEN;
    loc_rec *r = malloc(sizeof *r + bytes);
    if (!r)
        return INV_ENOMEM;
    p = get_head(p, id, version, &flags);
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

int record_default_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version)
{
    if (len != RECORD_DEFAULT_LEN)
        return INV_EINVALID;
    (void)get_raw(get_raw(payload, id, 8), version, 8);
    return INV_OK;
}
