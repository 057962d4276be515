/*
 * catalog_record.c — the catalog's record format and field codec: fields
 * described once as tables (string fields: offset, size, syntax; bools;
 * a row per kind of record, kinds[]), and one validation, build, output,
 * encoding and decoding of the public fields structs, records and journal
 * / snapshot payloads (layouts in catalog_record.h) for both kinds.
 *
 * Invariant kept here: every string a record packs is shorter than its
 * field's array (limits <= 255, so a length fits its byte), whether the
 * record was built from validated fields or decoded from a payload.
 * Nothing here touches a table, the journal or a lock.
 */
#include "alloc.h"
#include "catalog_record.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const str_view EMPTY = {"", 0};

void str_view_copy(char *dst, size_t cap, str_view v)
{
    assert(dst != NULL && (v.p != NULL || v.len == 0));
    assert(cap > 0);
    size_t n = v.len < cap ? v.len : cap - 1;
    if (n)
        memcpy(dst, v.p, n);
    dst[n] = '\0';
}

/* ---- packed strings: lens[i] bytes each, one after the other ---------- */

static size_t packed_total(const str_view *s, int n)
{
    assert(n >= 0 && (s != NULL || n == 0));
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += s[i].len;
    return total;
}

static void packed_put(uint8_t *lens, char *bytes, const str_view *s, int n)
{
    assert(lens != NULL && bytes != NULL && (s != NULL || n == 0));
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
    assert(n >= 0 && (lens != NULL || n == 0));
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += lens[i];
    return total;
}

/* ---- field descriptions and validation -------------------------------- */

enum field_kind { FK_TEXT, FK_COUNTRY, FK_COST, FK_HS, FK_COUNTRY_HS };

typedef struct {
    unsigned mask;
    size_t offset, cap; /* cap: the array's size, NUL included */
    enum field_kind kind;
} str_field;

#define LOC_STR(m, f, k)                                                              \
    {                                                                                 \
        m, offsetof(inv_location_fields, f), sizeof(((inv_location_fields *)0)->f), k \
    }
#define ITEM_STR(m, f, k)                                                     \
    {                                                                         \
        m, offsetof(inv_item_fields, f), sizeof(((inv_item_fields *)0)->f), k \
    }

/* The string fields of both kinds of record, each kind's in its packing
 * order: a location's (LS_*), then an item's (IS_*). */
static const str_field str_fields[LS_COUNT + IS_COUNT] = {
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
    ITEM_STR(INV_ITEM_SKU, sku, FK_TEXT),
    ITEM_STR(INV_ITEM_COST, cost, FK_COST),
    ITEM_STR(INV_ITEM_COUNTRY_OF_ORIGIN, country_code_of_origin, FK_COUNTRY),
    ITEM_STR(INV_ITEM_PROVINCE_OF_ORIGIN, province_code_of_origin, FK_TEXT),
    ITEM_STR(INV_ITEM_HS_CODE, harmonized_system_code, FK_HS),
    ITEM_STR(INV_ITEM_VARIANT, variant, FK_TEXT),
    ITEM_STR(INV_ITEM_PRODUCT, product, FK_TEXT),
    ITEM_STR(INV_ITEM_COUNTRY_HS_CODES, country_hs_codes, FK_COUNTRY_HS),
};

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}
static bool is_upper(char ch)
{
    return ch >= 'A' && ch <= 'Z';
}

static size_t skip_digits(str_view v, size_t i)
{
    assert(i <= v.len && (v.p != NULL || v.len == 0));
    while (i < v.len && is_digit(v.p[i]))
        i++;
    return i;
}

/* -?digits(.digits{1,6})? or empty. */
static bool cost_ok(str_view v)
{
    assert(v.p != NULL || v.len == 0);
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

static bool country_ok(str_view v)
{
    assert(v.p != NULL || v.len == 0);
    return v.len == 2 && is_upper(v.p[0]) && is_upper(v.p[1]);
}

static bool hs_code_ok(str_view v)
{
    assert(v.p != NULL || v.len == 0);
    return v.len >= 6 && v.len <= INV_HS_CODE_MAX && skip_digits(v, 0) == v.len;
}

/* "CC:code" pairs joined by ',' (invcore.h, INV_COUNTRY_HS_CODES_MAX): each
 * country once, at most INV_COUNTRY_HS_PAIRS_MAX pairs, or empty. */
static bool country_hs_ok(str_view v)
{
    assert(v.p != NULL || v.len == 0);
    char seen[INV_COUNTRY_HS_PAIRS_MAX][2];
    size_t n = 0, i = 0;
    while (i < v.len) {
        const char *comma = memchr(v.p + i, ',', v.len - i);
        size_t end = comma ? (size_t)(comma - v.p) : v.len;
        str_view pair = {v.p + i, end - i};
        if (n == INV_COUNTRY_HS_PAIRS_MAX || pair.len < 3 || pair.p[2] != ':' ||
            !country_ok((str_view){pair.p, 2}) || !hs_code_ok((str_view){pair.p + 3, pair.len - 3}))
            return false;
        for (size_t k = 0; k < n; k++)
            if (memcmp(seen[k], pair.p, 2) == 0)
                return false;
        memcpy(seen[n++], pair.p, 2);
        if (comma && end + 1 == v.len)
            return false; /* a trailing comma */
        i = end + 1;
    }
    return true;
}

static bool kind_ok(enum field_kind kind, str_view v)
{
    assert(v.p != NULL || v.len == 0);
    switch (kind) {
    case FK_COUNTRY:
        return v.len == 0 || country_ok(v);
    case FK_COST:
        return cost_ok(v);
    case FK_HS:
        return v.len == 0 || hs_code_ok(v);
    case FK_COUNTRY_HS:
        return country_hs_ok(v);
    default:
        return true;
    }
}

/* Reads string field d of a fields struct: false when it is not
 * NUL-terminated within its array or breaks its kind's syntax. */
static bool field_read(const void *fields, const str_field *d, str_view *out)
{
    assert(fields != NULL && d != NULL && out != NULL);
    assert(d->cap > 0);
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
    assert(b != NULL);
    unsigned char byte;
    memcpy(&byte, b, 1);
    return byte <= 1;
}

/* ---- the two kinds of record ------------------------------------------------
 * A location and an item differ only in their fields; the codec reads both
 * through a row of kinds[]. Both records start with record_times, both
 * public fields structs with their mask (asserted below). */

/* Payload head flags (layouts in catalog_record.h). */
enum { PF_DELETED = 1, PF_TRACKED = 2, PF_SHIPPING = 4, PF_EXTENDED = 8, PF_ACTIVE = 2 };

#define ITEM_HEAD_LEN (8 + 8 + 1)
#define ITEM_BODY_LEN (8 + 8 + IS_COUNT_V1)
#define LOC_HEAD_LEN (8 + 8 + 1 + 4 + 8 + 8 + LS_COUNT)

/* A bool field: its mask bit and place in the public fields struct, its
 * place in the record, its flag in a payload's head. New records take
 * true (active, tracked, requires_shipping). */
typedef struct {
    unsigned mask;
    size_t field_off, rec_off;
    uint8_t flag;
} bool_field;

static const bool_field loc_bools[] = {
    {INV_LOC_ACTIVE, offsetof(inv_location_fields, active), offsetof(loc_rec, active), PF_ACTIVE},
};

static const bool_field item_bools[] = {
    {INV_ITEM_TRACKED, offsetof(inv_item_fields, tracked), offsetof(item_rec, tracked), PF_TRACKED},
    {INV_ITEM_REQUIRES_SHIPPING, offsetof(inv_item_fields, requires_shipping),
     offsetof(item_rec, requires_shipping), PF_SHIPPING},
};

/* A kind of record: its public fields struct, its record struct, its
 * payload (head, fixed bytes, times, lens, strings). */
typedef struct {
    unsigned all; /* every mask bit of the public fields struct */
    const str_field *strs;
    int n_strs;
    const bool_field *bools;
    int n_bools;
    size_t rec_size, lens_off, bytes_off; /* the record struct */
    /* Bytes of the record a payload carries as they are, after its head
     * (a location's priority). */
    size_t fixed_off, fixed_len;
    uint8_t flags; /* every flag a payload's head may carry */
    uint32_t body_len; /* payload bytes before the strings, first format */
    /* Strings of the first format; the ones after them are written (with
     * ext_flag in the head, one more length byte each) only when one of
     * them is not empty. */
    int n_strs_v1;
    uint8_t ext_flag;
} rec_kind;

/* A record kind's table, for asserts only (O(1)): its strings and flags
 * there, the first format's strings a prefix of the rest, the lengths
 * before the bytes in the record struct. */
static bool rec_kind_ok(const rec_kind *k)
{
    return k != NULL && k->strs != NULL && k->n_strs > 0 && k->n_strs_v1 <= k->n_strs &&
           (k->bools != NULL || k->n_bools == 0) && k->lens_off < k->bytes_off &&
           k->bytes_off <= k->rec_size;
}

#define REC_KIND(T, all, strs, n, bools, fixed_off, fixed_len, flags, body_len, n_v1, ext) \
    {                                                                                      \
        all, strs, n, bools, sizeof bools / sizeof *bools, sizeof(T), offsetof(T, lens),   \
            offsetof(T, bytes), fixed_off, fixed_len, flags, body_len, n_v1, ext           \
    }

enum { REC_LOC, REC_ITEM };

static const rec_kind kinds[] = {
    [REC_LOC] = REC_KIND(loc_rec, INV_LOC_ALL, str_fields, LS_COUNT, loc_bools,
                         offsetof(loc_rec, priority), 4, PF_ACTIVE, LOC_HEAD_LEN, LS_COUNT, 0),
    [REC_ITEM] = REC_KIND(item_rec, INV_ITEM_ALL, str_fields + LS_COUNT, IS_COUNT, item_bools, 0, 0,
                          PF_DELETED | PF_TRACKED | PF_SHIPPING | PF_EXTENDED,
                          ITEM_HEAD_LEN + ITEM_BODY_LEN, IS_COUNT_V1, PF_EXTENDED),
};

_Static_assert(offsetof(loc_rec, t) == 0 && offsetof(item_rec, t) == 0,
               "a record starts with its times");
_Static_assert(offsetof(inv_location_fields, mask) == 0 && offsetof(inv_item_fields, mask) == 0,
               "a fields struct starts with its mask");
_Static_assert(sizeof(((loc_rec *)0)->priority) == 4, "a location's payload carries an i32");
/* The strings of either kind fit one merge buffer. */
#define STRS_MAX ((int)LS_COUNT > (int)IS_COUNT ? (int)LS_COUNT : (int)IS_COUNT)

static const bool *bool_at(const void *base, size_t off)
{
    assert(base != NULL);
    return (const bool *)((const char *)base + off);
}

static const uint8_t *rec_lens(const rec_kind *k, const void *r)
{
    assert(rec_kind_ok(k) && r != NULL);
    return (const uint8_t *)r + k->lens_off;
}

static const char *rec_bytes(const rec_kind *k, const void *r)
{
    assert(rec_kind_ok(k) && r != NULL);
    return (const char *)r + k->bytes_off;
}

/* The fields to write (f NULL: none, mask 0: all; unknown bits are
 * INVALID), each of them checked. */
static int kind_validate(const rec_kind *k, const void *f, unsigned *wmask)
{
    assert(rec_kind_ok(k));
    assert(wmask);
    *wmask = 0;
    if (!f)
        return INV_OK;
    unsigned mask = *(const unsigned *)f; /* the struct's first member */
    if (mask & ~k->all)
        return INV_EINVALID;
    *wmask = mask ? mask : k->all;
    str_view v;
    for (int i = 0; i < k->n_strs; i++)
        if ((*wmask & k->strs[i].mask) && !field_read(f, &k->strs[i], &v))
            return INV_EINVALID;
    for (int i = 0; i < k->n_bools; i++)
        if ((*wmask & k->bools[i].mask) && !bool_ok(bool_at(f, k->bools[i].field_off)))
            return INV_EINVALID;
    return INV_OK;
}

int record_loc_validate(const inv_location_fields *f, unsigned *wmask)
{
    assert(wmask != NULL);
    return kind_validate(&kinds[REC_LOC], f, wmask);
}

int record_item_validate(const inv_item_fields *f, unsigned *wmask)
{
    assert(wmask != NULL);
    return kind_validate(&kinds[REC_ITEM], f, wmask);
}

int record_str_arg(const char *p, size_t max, str_view *out)
{
    assert(out != NULL);
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
    assert(d != NULL && s != NULL && n >= 0);
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
    assert(d != NULL && lens != NULL && bytes != NULL && fields != NULL);
    for (int i = 0; i < n; i++)
        str_view_copy((char *)fields + d[i].offset, d[i].cap, record_packed_get(lens, bytes, i));
}

/* A new record of kind k: old's values (NULL: the defaults, created now)
 * with the fields of wmask taken from f (validated). The fixed bytes are
 * the caller's to fill. NULL when out of memory. */
static void *kind_build(const rec_kind *k, const void *old, const void *f, unsigned wmask,
                        int64_t now_ms)
{
    assert(rec_kind_ok(k));
    assert(f || wmask == 0);
    str_view s[STRS_MAX];
    size_t total = strings_merge(k->strs, k->n_strs, old ? rec_lens(k, old) : NULL,
                                 old ? rec_bytes(k, old) : NULL, f, wmask, s);
    char *r = inv_malloc(k->rec_size + total);
    if (!r)
        return NULL;
    const record_times *was = old;
    record_times *t = (record_times *)r;
    t->created_at_ms = old ? was->created_at_ms : now_ms;
    t->updated_at_ms = now_ms;
    for (int i = 0; i < k->n_bools; i++) {
        const bool_field *b = &k->bools[i];
        *(bool *)(r + b->rec_off) = (wmask & b->mask) ? *bool_at(f, b->field_off)
                                    : old             ? *bool_at(old, b->rec_off)
                                                      : true;
    }
    packed_put((uint8_t *)r + k->lens_off, r + k->bytes_off, s, k->n_strs);
    return r;
}

loc_rec *record_loc_build(const loc_rec *old, const inv_location_fields *f, unsigned wmask,
                          int64_t now_ms)
{
    loc_rec *r = kind_build(&kinds[REC_LOC], old, f, wmask, now_ms);
    if (r)
        r->priority = (wmask & INV_LOC_PRIORITY) ? f->priority : old ? old->priority : 0;
    return r;
}

item_rec *record_item_build(const item_rec *old, const inv_item_fields *f, unsigned wmask,
                            int64_t now_ms)
{
    return kind_build(&kinds[REC_ITEM], old, f, wmask, now_ms);
}

/* Fills a public fields struct from r: its strings and bools, mask ALL. */
static void kind_out(const rec_kind *k, const void *r, void *fields)
{
    assert(rec_kind_ok(k) && r != NULL && fields != NULL);
    *(unsigned *)fields = k->all; /* the struct's first member */
    strings_out(k->strs, k->n_strs, rec_lens(k, r), rec_bytes(k, r), fields);
    for (int i = 0; i < k->n_bools; i++)
        *(bool *)((char *)fields + k->bools[i].field_off) = *bool_at(r, k->bools[i].rec_off);
}

void record_loc_out(uint64_t loc, const loc_rec *r, bool is_default, inv_location *out)
{
    assert(r && out);
    memset(out, 0, sizeof *out);
    out->id = loc;
    kind_out(&kinds[REC_LOC], r, &out->fields);
    out->fields.priority = r->priority;
    out->is_default = is_default;
    out->created_at_ms = r->t.created_at_ms;
    out->updated_at_ms = r->t.updated_at_ms;
}

void record_item_out(uint64_t item, const item_rec *r, inv_item *out)
{
    assert(r && out);
    memset(out, 0, sizeof *out);
    out->id = item;
    kind_out(&kinds[REC_ITEM], r, &out->fields);
    out->created_at_ms = r->t.created_at_ms;
    out->updated_at_ms = r->t.updated_at_ms;
}

/* ---- journal and snapshot payloads (layouts in catalog_record.h) -------- */

/* The largest item payload fits the buffers sized for a location. */
_Static_assert(ITEM_HEAD_LEN + ITEM_BODY_LEN + (IS_COUNT - IS_COUNT_V1) + INV_SKU_MAX +
                       INV_COST_MAX + INV_COUNTRY_CODE_MAX + INV_PROVINCE_CODE_MAX +
                       INV_HS_CODE_MAX + 2 * INV_VARIANT_MAX + INV_COUNTRY_HS_CODES_MAX <=
                   RECORD_PAYLOAD_MAX,
               "an item payload must fit RECORD_PAYLOAD_MAX");
_Static_assert(LOC_HEAD_LEN + LS_COUNT * INV_STR_MAX == RECORD_PAYLOAD_MAX,
               "RECORD_PAYLOAD_MAX is the largest location payload");

static uint8_t *put_raw(uint8_t *p, const void *src, size_t n)
{
    assert(p != NULL && (src != NULL || n == 0));
    if (n)
        memcpy(p, src, n);
    return p + n;
}

static const uint8_t *get_raw(const uint8_t *p, void *dst, size_t n)
{
    assert(p != NULL && (dst != NULL || n == 0));
    if (n)
        memcpy(dst, p, n);
    return p + n;
}

/* id, version and flags: how every item and location payload starts. */
static uint8_t *put_head(uint8_t *p, uint64_t id, uint64_t version, uint8_t flags)
{
    assert(p != NULL);
    return put_raw(put_raw(put_raw(p, &id, 8), &version, 8), &flags, 1);
}

static const uint8_t *get_head(const uint8_t *p, uint64_t *id, uint64_t *version, uint8_t *flags)
{
    assert(p != NULL && id != NULL && version != NULL && flags != NULL);
    return get_raw(get_raw(get_raw(p, id, 8), version, 8), flags, 1);
}

/* Checks packed string lengths against each field's limit and the bytes
 * left: false if they do not fit. */
static bool lens_ok(const uint8_t *lens, const str_field *d, int n, size_t bytes_left)
{
    assert(lens != NULL && d != NULL && n >= 0);
    for (int i = 0; i < n; i++)
        if (lens[i] >= d[i].cap)
            return false;
    return lens_total(lens, n) == bytes_left;
}

/* A record's payload size. */
/* How many strings r's payload carries: the first format's, or all of
 * them when a later one is not empty (the payload is then extended). */
static int kind_strs_written(const rec_kind *k, const void *r)
{
    assert(rec_kind_ok(k) && r != NULL);
    const uint8_t *lens = rec_lens(k, r);
    for (int i = k->n_strs_v1; i < k->n_strs; i++)
        if (lens[i])
            return k->n_strs;
    return k->n_strs_v1;
}

/* Payload bytes before the strings when n strings are written. */
static uint32_t kind_body_len(const rec_kind *k, int n)
{
    assert(n >= k->n_strs_v1 && n <= k->n_strs);
    return k->body_len + (uint32_t)(n - k->n_strs_v1);
}

static uint32_t kind_len(const rec_kind *k, const void *r)
{
    assert(rec_kind_ok(k));
    return (uint32_t)(kind_body_len(k, kind_strs_written(k, r)) +
                      lens_total(rec_lens(k, r), k->n_strs));
}

uint32_t record_item_len(const item_rec *r)
{
    return r ? kind_len(&kinds[REC_ITEM], r) : ITEM_HEAD_LEN;
}

uint32_t record_loc_len(const loc_rec *r)
{
    assert(r);
    return kind_len(&kinds[REC_LOC], r);
}

static uint32_t kind_encode(const rec_kind *k, uint8_t *buf, uint64_t id, uint64_t version,
                            const void *r)
{
    assert(rec_kind_ok(k) && buf != NULL);
    const record_times *t = r;
    int n = kind_strs_written(k, r);
    uint8_t flags = n > k->n_strs_v1 ? k->ext_flag : 0;
    for (int i = 0; i < k->n_bools; i++)
        flags |= *bool_at(r, k->bools[i].rec_off) ? k->bools[i].flag : 0;
    uint8_t *p = put_head(buf, id, version, flags);
    p = put_raw(p, (const char *)r + k->fixed_off, k->fixed_len);
    p = put_raw(p, &t->created_at_ms, 8);
    p = put_raw(p, &t->updated_at_ms, 8);
    p = put_raw(p, rec_lens(k, r), (size_t)n);
    p = put_raw(p, rec_bytes(k, r), lens_total(rec_lens(k, r), k->n_strs));
    assert((uint32_t)(p - buf) == kind_len(k, r));
    return (uint32_t)(p - buf);
}

uint32_t record_item_encode(uint8_t *buf, uint64_t id, uint64_t version, const item_rec *r)
{
    assert(buf != NULL);
    if (r)
        return kind_encode(&kinds[REC_ITEM], buf, id, version, r);
    uint8_t *p = put_head(buf, id, version, PF_DELETED);
    assert((uint32_t)(p - buf) == record_item_len(NULL));
    return (uint32_t)(p - buf);
}

uint32_t record_loc_encode(uint8_t *buf, uint64_t id, uint64_t version, const loc_rec *r)
{
    assert(buf != NULL);
    assert(r);
    return kind_encode(&kinds[REC_LOC], buf, id, version, r);
}

uint32_t record_default_encode(uint8_t *buf, uint64_t id, uint64_t version, int64_t time_ms)
{
    assert(buf != NULL);
    assert(time_ms >= 0);
    uint8_t *p = put_raw(put_raw(put_raw(buf, &id, 8), &version, 8), &time_ms, 8);
    assert((uint32_t)(p - buf) == RECORD_DEFAULT_LEN);
    return RECORD_DEFAULT_LEN;
}

/* Reads a payload of kind k: a fresh record (NULL: an item's deletion, or
 * with *rc not INV_OK: INV_EINVALID for a malformed one, INV_ENOMEM). */
static void *kind_decode(const rec_kind *k, const void *payload, uint32_t len, uint64_t *id,
                         uint64_t *version, int *rc)
{
    assert(rec_kind_ok(k) && id != NULL && version != NULL && rc != NULL);
    assert(payload != NULL || len == 0);
    const uint8_t *p = payload;
    uint8_t flags;
    *rc = INV_EINVALID;
    /* Shorter than the kind's shortest payload (an item's deletion stops
     * after its head): refused unread. */
    if (len < ((k->flags & PF_DELETED) ? ITEM_HEAD_LEN : k->body_len))
        return NULL;
    p = get_head(p, id, version, &flags);
    if (flags & ~k->flags)
        return NULL;
    if (flags & PF_DELETED) {
        if (len == ITEM_HEAD_LEN)
            *rc = INV_OK;
        return NULL;
    }
    int n = (flags & k->ext_flag) ? k->n_strs : k->n_strs_v1;
    uint32_t body_len = kind_body_len(k, n);
    if (len < body_len)
        return NULL;
    size_t bytes = len - body_len;
    char *r = inv_malloc(k->rec_size + bytes);
    *rc = INV_ENOMEM;
    if (!r)
        return NULL;
    record_times *t = (record_times *)r;
    p = get_raw(p, r + k->fixed_off, k->fixed_len);
    p = get_raw(get_raw(p, &t->created_at_ms, 8), &t->updated_at_ms, 8);
    memset(r + k->lens_off, 0, (size_t)k->n_strs); /* strings a first-format payload lacks */
    p = get_raw(p, r + k->lens_off, (size_t)n);
    (void)get_raw(p, r + k->bytes_off, bytes);
    for (int i = 0; i < k->n_bools; i++)
        *(bool *)(r + k->bools[i].rec_off) = flags & k->bools[i].flag;
    *rc = INV_EINVALID;
    /* An extended payload whose later strings are all empty is not one the
     * encoder writes: refused, so every record has one encoding. */
    if (n > k->n_strs_v1 && kind_strs_written(k, r) == k->n_strs_v1) {
        free(r);
        return NULL;
    }
    if (!lens_ok(rec_lens(k, r), k->strs, k->n_strs, bytes)) {
        free(r);
        return NULL;
    }
    *rc = INV_OK;
    return r;
}

int record_item_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                       item_rec **out)
{
    assert(id != NULL && version != NULL && out != NULL);
    int rc;
    *out = kind_decode(&kinds[REC_ITEM], payload, len, id, version, &rc);
    return rc;
}

int record_loc_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                      loc_rec **out)
{
    assert(id != NULL && version != NULL && out != NULL);
    int rc;
    *out = kind_decode(&kinds[REC_LOC], payload, len, id, version, &rc);
    return rc;
}

int record_default_decode(const void *payload, uint32_t len, uint64_t *id, uint64_t *version,
                          int64_t *time_ms)
{
    assert(id != NULL && version != NULL); /* time_ms: optional */
    int64_t t = 0;
    if (len != RECORD_DEFAULT_LEN && len != RECORD_DEFAULT_LEN_V1)
        return INV_EINVALID;
    const uint8_t *p = get_raw(get_raw(payload, id, 8), version, 8);
    if (len == RECORD_DEFAULT_LEN)
        (void)get_raw(p, &t, 8);
    if (t < 0)
        return INV_EINVALID; /* before 1970: not a time this engine wrote */
    if (time_ms)
        *time_ms = t;
    return INV_OK;
}
