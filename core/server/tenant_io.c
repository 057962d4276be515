/*
 * tenant_io.c — one engine's data as JSON lines (tenant_io.h has the
 * format): export to a file, import from one into an empty engine.
 *
 * One description of every line kind (kinds[], members[]: each member's
 * key, JSON type, place in a tio_rec and range) drives the writer, the
 * reader and the checks both share, so what export writes and what import
 * accepts cannot drift apart: export checks every record with the same
 * rec_check as import, and refuses (INV_EINVALID) a record import would
 * refuse (a string that is not UTF-8, a quantity the engine cannot set),
 * so an export file always imports.
 *
 * Import runs in two passes over the file's lines, which it keeps in
 * memory (an arena as large as the file, TENANT_IO_LINES_MAX lines at
 * most): the first parses and checks every line (JSON, members, types,
 * ranges, order, ids ascending and unique, references) and creates each
 * location and item in a scratch in-memory engine, so the engine's own
 * rules (SKU and variant uniqueness, cost and HS code syntax, items per
 * product) refuse a bad catalog before anything changes; the second
 * applies the lines to the engine. Invariant: the target engine is not
 * touched before the first pass has accepted the whole file.
 *
 * What import cannot set is not in the file: timestamps, revisions, holds
 * (a level's reserved units: holds are not moved, so a level imported from
 * a shop with live holds has reserved 0 and on_hand lower by them), and
 * the derived quantities (on_hand, and reserved). Each named quantity that
 * can be set is set to exactly the file's value and read back.
 *
 * JSON: lines are parsed by http_json_parse (yajl's parser, with the
 * depth bound and the "\u0000" refusal) and written by http_json's writer;
 * 64-bit ids are exact integers both ways, never through a double.
 */
#include "alloc.h"
#include "server/tenant_io.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "server/http_json.h"
#include "vec.h"

/* Bytes of a reason before "line N: " is put in front of it. */
#define TIO_WHY_MAX 512u
/* The members of one line kind at most (a bit each in a uint32_t). */
#define TIO_MEMBERS_MAX 16u
/* The suffix of the file export writes before renaming it. */
#define TIO_TMP_SUFFIX ".tmp"
/* "2026-12-06T17:20:55Z": the header's time, as http_json_time_iso writes. */
#define TIO_TIME_BYTES 20u

/* ---- the format, described once ---------------------------------------- */

/* The line kinds, in the order a file holds them (a kind may follow only
 * itself or an earlier one's successor: see order_check). */
typedef enum { K_HEADER, K_LOCATION, K_DEFAULT, K_ITEM, K_LEVEL, K_END, K_COUNT } line_kind;

static const char *const kind_names[K_COUNT] = {
    "invcore-tenant", "location", "default_location", "item", "level", "end",
};

/* A level's settable quantities and rules. */
typedef struct {
    uint64_t item, location;
    int64_t qty[INV_QTY_NAMES]; /* reserved is never set: 0 */
    inv_oversell_policy policy;
    int64_t preorder_limit;
} tio_level;

/* One line's values, whatever its kind (members[] points into it). */
typedef struct {
    uint64_t version; /* header */
    char tenant[INV_TENANT_NAME_MAX + 1];
    int64_t exported_at_ms;
    uint64_t id; /* location, default_location, item */
    inv_location_fields loc;
    inv_item_fields item;
    tio_level level;
    uint64_t lines; /* end */
} tio_rec;

typedef enum { M_U64, M_I64, M_I32, M_BOOL, M_STR, M_TIME, M_POLICY } member_type;

typedef struct {
    const char *key;
    member_type type;
    size_t off; /* in tio_rec */
    size_t cap; /* M_STR: the array's bytes, its NUL included */
    int64_t lo, hi; /* M_I64: the range */
} member;

#define U64(k, f)                               \
    {                                           \
        k, M_U64, offsetof(tio_rec, f), 0, 0, 0 \
    }
#define STR(k, f)                                                       \
    {                                                                   \
        k, M_STR, offsetof(tio_rec, f), sizeof(((tio_rec *)0)->f), 0, 0 \
    }
#define BOOL(k, f)                               \
    {                                            \
        k, M_BOOL, offsetof(tio_rec, f), 0, 0, 0 \
    }
#define I64(k, f, lo, hi)                         \
    {                                             \
        k, M_I64, offsetof(tio_rec, f), 0, lo, hi \
    }
#define QTY(k, q, lo) I64(k, level.qty[q], lo, INV_QTY_MAX)

static const member header_members[] = {
    U64("version", version),
    STR("tenant", tenant),
    {"exported_at", M_TIME, offsetof(tio_rec, exported_at_ms), 0, 0, 0},
};

static const member location_members[] = {
    U64("id", id),
    STR("name", loc.name),
    STR("address1", loc.address1),
    STR("address2", loc.address2),
    STR("city", loc.city),
    STR("province", loc.province),
    STR("province_code", loc.province_code),
    STR("country", loc.country),
    STR("country_code", loc.country_code),
    STR("zip", loc.zip),
    STR("phone", loc.phone),
    BOOL("active", loc.active),
    {"priority", M_I32, offsetof(tio_rec, loc.priority), 0, INT32_MIN, INT32_MAX},
};

static const member default_members[] = {
    U64("id", id),
};

static const member item_members[] = {
    U64("id", id),
    STR("sku", item.sku),
    BOOL("tracked", item.tracked),
    STR("cost", item.cost),
    BOOL("requires_shipping", item.requires_shipping),
    STR("country_code_of_origin", item.country_code_of_origin),
    STR("province_code_of_origin", item.province_code_of_origin),
    STR("harmonized_system_code", item.harmonized_system_code),
    STR("variant", item.variant),
    STR("product", item.product),
    STR("country_hs_codes", item.country_hs_codes),
};

static const member level_members[] = {
    U64("item", level.item),
    U64("location", level.location),
    /* inv_qty_name_str's words (tests/test_tenant_io.c checks them) */
    QTY("available", INV_QTY_AVAILABLE, -INV_QTY_MAX),
    QTY("committed", INV_QTY_COMMITTED, 0),
    QTY("incoming", INV_QTY_INCOMING, 0),
    QTY("damaged", INV_QTY_DAMAGED, 0),
    QTY("safety_stock", INV_QTY_SAFETY_STOCK, 0),
    QTY("quality_control", INV_QTY_QUALITY_CONTROL, 0),
    {"policy", M_POLICY, offsetof(tio_rec, level.policy), 0, 0, 0},
    I64("preorder_limit", level.preorder_limit, INV_NO_PREORDER_LIMIT, INV_QTY_MAX),
};

static const member end_members[] = {
    U64("lines", lines),
};

typedef struct {
    const member *m;
    size_t n;
} kind_desc;

#define KIND(a)                 \
    {                           \
        a, sizeof a / sizeof *a \
    }
static const kind_desc kinds[K_COUNT] = {
    [K_HEADER] = KIND(header_members),   [K_LOCATION] = KIND(location_members),
    [K_DEFAULT] = KIND(default_members), [K_ITEM] = KIND(item_members),
    [K_LEVEL] = KIND(level_members),     [K_END] = KIND(end_members),
};

_Static_assert(sizeof location_members / sizeof *location_members <= TIO_MEMBERS_MAX,
               "a member is a bit of a uint32_t");
_Static_assert(sizeof level_members / sizeof *level_members <= TIO_MEMBERS_MAX,
               "a member is a bit of a uint32_t");
_Static_assert(sizeof item_members / sizeof *item_members <= TIO_MEMBERS_MAX,
               "a member is a bit of a uint32_t");

/* The quantities import sets by moving units out of available, in the
 * order it sets them. */
static const inv_qty_name moved_qtys[] = {INV_QTY_COMMITTED, INV_QTY_INCOMING, INV_QTY_DAMAGED,
                                          INV_QTY_SAFETY_STOCK, INV_QTY_QUALITY_CONTROL};

/* Invariant predicates (used only in asserts; each O(1)). */
/* A vector as vec.h keeps it: entries within what is allocated. */
static bool vec_ok(const vec *v)
{
    return v != NULL && v->n <= v->cap && v->size > 0 && (v->items != NULL || v->cap == 0);
}

static void *at(tio_rec *r, const member *m)
{
    assert(r != NULL && m != NULL && m->key != NULL);
    return (char *)r + m->off;
}

static const void *at_c(const tio_rec *r, const member *m)
{
    assert(r != NULL && m != NULL && m->key != NULL);
    return (const char *)r + m->off;
}

/* ---- checks both directions share --------------------------------------- */

/* One member's value in r against its range and, for a string, its array
 * and UTF-8: false with why. */
static bool member_check(const tio_rec *r, const member *m, char *why, size_t cap)
{
    assert(r != NULL && m != NULL && m->key != NULL && why != NULL);
    int64_t v;
    switch (m->type) {
    case M_STR: {
        const char *s = at_c(r, m);
        const char *nul = memchr(s, '\0', m->cap);
        if (nul == NULL) {
            snprintf(why, cap, "member \"%s\": longer than %zu bytes", m->key, m->cap - 1);
            return false;
        }
        if (!http_json_utf8_ok(s, (size_t)(nul - s))) {
            snprintf(why, cap, "member \"%s\": not UTF-8", m->key);
            return false;
        }
        return true;
    }
    case M_I64:
        memcpy(&v, at_c(r, m), sizeof v);
        break;
    case M_I32: {
        int32_t v32;
        memcpy(&v32, at_c(r, m), sizeof v32);
        v = v32;
        break;
    }
    default:
        return true; /* u64, bool, time, policy: every value is in range */
    }
    if (v < m->lo || v > m->hi) {
        snprintf(why, cap, "member \"%s\": %lld is outside %lld..%lld", m->key, (long long)v,
                 (long long)m->lo, (long long)m->hi);
        return false;
    }
    return true;
}

/* A whole record of kind k: every member, then the rules between them. */
static bool rec_check(const tio_rec *r, line_kind k, char *why, size_t cap)
{
    assert(r != NULL && (unsigned)k < K_COUNT && why != NULL);
    assert(k < K_COUNT);
    for (size_t i = 0; i < kinds[k].n; i++)
        if (!member_check(r, &kinds[k].m[i], why, cap))
            return false;
    if (k == K_HEADER && r->version != TENANT_IO_FORMAT_VERSION) {
        snprintf(why, cap, "version %llu: this build reads version %u",
                 (unsigned long long)r->version, TENANT_IO_FORMAT_VERSION);
        return false;
    }
    if (k == K_HEADER && inv_tenant_name_check(r->tenant, strlen(r->tenant)) != INV_OK) {
        snprintf(why, cap, "member \"tenant\": not a tenant name");
        return false;
    }
    if (k == K_LEVEL && r->level.policy == INV_POLICY_DENY &&
        r->level.preorder_limit != INV_NO_PREORDER_LIMIT) {
        snprintf(why, cap, "member \"preorder_limit\": must be -1 with policy \"deny\"");
        return false;
    }
    return true;
}

/* ---- writing ------------------------------------------------------------- */

static void member_write(http_body *b, const tio_rec *r, const member *m)
{
    assert(b != NULL && r != NULL && m != NULL && m->key != NULL);
    int64_t v;
    bool flag;
    switch (m->type) {
    case M_U64: {
        uint64_t u;
        memcpy(&u, at_c(r, m), sizeof u);
        http_json_kv_u64(b, m->key, u);
        return;
    }
    case M_I64:
        memcpy(&v, at_c(r, m), sizeof v);
        http_json_key(b, m->key);
        http_json_i64(b, v);
        return;
    case M_I32: {
        int32_t v32;
        memcpy(&v32, at_c(r, m), sizeof v32);
        http_json_key(b, m->key);
        http_json_i64(b, v32);
        return;
    }
    case M_BOOL:
        memcpy(&flag, at_c(r, m), sizeof flag);
        http_json_kv_bool(b, m->key, flag);
        return;
    case M_STR:
        http_json_kv_str(b, m->key, at_c(r, m));
        return;
    case M_TIME:
        memcpy(&v, at_c(r, m), sizeof v);
        http_json_kv_time(b, m->key, v);
        return;
    case M_POLICY: {
        inv_oversell_policy p;
        memcpy(&p, at_c(r, m), sizeof p);
        http_json_kv_str(b, m->key, p == INV_POLICY_CONTINUE ? "continue" : "deny");
        return;
    }
    }
}

typedef struct {
    inv_engine *e;
    FILE *f;
    http_body body;
    uint64_t lines;
    char *err;
    size_t errlen;
} tio_export;

/* Writes r as a line of kind k, after the checks import makes. */
static int line_write(tio_export *x, line_kind k, const tio_rec *r, const char *what, uint64_t id)
{
    assert(x != NULL && x->e != NULL && (unsigned)k < K_COUNT && r != NULL);
    assert(k < K_COUNT && x->f != NULL);
    char why[TIO_WHY_MAX];
    if (!rec_check(r, k, why, sizeof why)) {
        fileio_errmsg(x->err, x->errlen, "%s %llu cannot be imported back: %s", what,
                      (unsigned long long)id, why);
        return INV_EINVALID;
    }
    http_body *b = &x->body;
    http_body_reset(b);
    http_json_obj_open(b);
    http_json_kv_str(b, "type", kind_names[k]);
    for (size_t i = 0; i < kinds[k].n; i++)
        member_write(b, r, &kinds[k].m[i]);
    http_json_obj_close(b);
    if (b->failed)
        return INV_ENOMEM; /* over HTTP_BODY_OUT_MAX is out of reach: ~16 KiB a line */
    assert(b->len <= TENANT_IO_LINE_BYTES_MAX); /* 13 members of <= 6 * 255 bytes */
    if (fwrite(b->p, 1, b->len, x->f) != b->len || fputc('\n', x->f) == EOF)
        return INV_EIO;
    x->lines++;
    return INV_OK;
}

/* ---- collecting what to export ------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_level_row(const void *a, const void *b)
{
    const inv_level_full_row *x = a, *y = b;
    if (x->item != y->item)
        return (x->item > y->item) - (x->item < y->item);
    return (x->location > y->location) - (x->location < y->location);
}

/* Sorts v (entries compared by cmp) and drops repeats: a listing returns an
 * entry at least once (one that moved during the scan may come twice). */
static void sort_unique(vec *v, int (*cmp)(const void *, const void *))
{
    assert(vec_ok(v) && cmp != NULL);
    if (v->n == 0)
        return;
    qsort(v->items, v->n, v->size, cmp);
    size_t kept = 1;
    char *base = v->items;
    for (size_t i = 1; i < v->n; i++) {
        if (cmp(base + (kept - 1) * v->size, base + i * v->size) == 0)
            continue;
        memmove(base + kept * v->size, base + i * v->size, v->size);
        kept++;
    }
    assert(kept >= 1 && kept <= v->n); /* repeats dropped, one of each kept */
    v->n = kept;
}

typedef int (*id_list_fn)(inv_engine *, uint64_t, size_t, uint64_t *, size_t, size_t *, uint64_t *);

/* Every id a cursor listing returns, sorted, each once; the scan stops
 * early once it has at least enough. */
static int ids_collect(inv_engine *e, id_list_fn list, size_t enough, vec *out)
{
    assert(e != NULL && vec_ok(out));
    uint64_t ids[INV_LIST_COUNT_MAX];
    uint64_t cursor = 0;
    do {
        size_t n = 0;
        int rc = list(e, cursor, INV_LIST_COUNT_MAX, ids, INV_LIST_COUNT_MAX, &n, &cursor);
        if (rc != INV_OK)
            return rc;
        assert(n <= INV_LIST_COUNT_MAX);
        for (size_t i = 0; i < n; i++)
            if (vec_push(out, &ids[i]) != INV_OK)
                return INV_ENOMEM;
    } while (cursor != 0 && out->n < enough);
    sort_unique(out, cmp_u64);
    return INV_OK;
}

/* Every level with all its quantities, sorted by (item, location). */
static int levels_collect(inv_engine *e, vec *out)
{
    assert(e != NULL && vec_ok(out));
    inv_level_full_row *rows = inv_malloc(INV_LIST_COUNT_MAX * sizeof *rows);
    if (rows == NULL)
        return INV_ENOMEM;
    uint64_t cursor = 0;
    int rc = INV_OK;
    do {
        size_t n = 0;
        rc = inv_level_list_page(e, NULL, cursor, INV_LIST_COUNT_MAX, rows, INV_LIST_COUNT_MAX, &n,
                                 &cursor);
        for (size_t i = 0; rc == INV_OK && i < n; i++)
            rc = vec_push(out, &rows[i]);
    } while (rc == INV_OK && cursor != 0);
    free(rows);
    if (rc == INV_OK)
        sort_unique(out, cmp_level_row);
    return rc;
}

static bool ids_has(const vec *ids, uint64_t id)
{
    assert(vec_ok(ids));
    return bsearch(&id, ids->items, ids->n, sizeof id, cmp_u64) != NULL;
}

/* ---- export --------------------------------------------------------------- */

/* Catalog record id of kind k (a location or an item) into r: INV_OK,
 * INV_ENOTFOUND (gone since the listing), or the engine's error. */
static int catalog_read(inv_engine *e, line_kind k, uint64_t id, tio_rec *r)
{
    assert(e != NULL && (unsigned)k < K_COUNT && r != NULL);
    assert(k == K_LOCATION || k == K_ITEM);
    memset(r, 0, sizeof *r);
    r->id = id;
    int rc;
    if (k == K_LOCATION) {
        inv_location loc;
        rc = inv_location_get(e, id, &loc);
        r->loc = rc == INV_OK ? loc.fields : r->loc;
    } else {
        inv_item it;
        rc = inv_item_get(e, id, &it);
        r->item = rc == INV_OK ? it.fields : r->item;
    }
    return rc;
}

/* The locations or items of ids that still exist, kept in *kept
 * (ascending, as ids). */
static int export_catalog(tio_export *x, line_kind k, const vec *ids, vec *kept)
{
    assert(x != NULL && x->e != NULL && (unsigned)k < K_COUNT && vec_ok(ids) && vec_ok(kept));
    const uint64_t *id = ids->items;
    tio_rec r;
    for (size_t i = 0; i < ids->n; i++) {
        int rc = catalog_read(x->e, k, id[i], &r);
        if (rc == INV_ENOTFOUND)
            continue; /* an item deleted since the listing */
        if (rc == INV_OK)
            rc = line_write(x, k, &r, kind_names[k], id[i]);
        if (rc == INV_OK)
            rc = vec_push(kept, &id[i]);
        if (rc != INV_OK)
            return rc;
    }
    return INV_OK;
}

/* The default location, when it is one of the file's. */
static int export_default(tio_export *x, const vec *locs)
{
    assert(x != NULL && x->e != NULL && vec_ok(locs));
    uint64_t def;
    if (inv_location_default(x->e, &def) != INV_OK || !ids_has(locs, def))
        return INV_OK; /* none, or one created after the listing */
    tio_rec r;
    memset(&r, 0, sizeof r);
    r.id = def;
    return line_write(x, K_DEFAULT, &r, kind_names[K_DEFAULT], def);
}

/* The levels of exported items and locations only, so the file never
 * names what it lacks (an item deleted or created during the export). */
static int export_levels(tio_export *x, const vec *rows, const vec *items, const vec *locs,
                         uint64_t *n_out)
{
    assert(x != NULL && x->e != NULL && vec_ok(rows) && vec_ok(items) && vec_ok(locs));
    const inv_level_full_row *row = rows->items;
    tio_rec r;
    *n_out = 0;
    for (size_t i = 0; i < rows->n; i++) {
        if (!ids_has(items, row[i].item) || !ids_has(locs, row[i].location))
            continue;
        memset(&r, 0, sizeof r);
        r.level.item = row[i].item;
        r.level.location = row[i].location;
        memcpy(r.level.qty, row[i].level.qty, sizeof r.level.qty);
        r.level.qty[INV_QTY_RESERVED] = 0; /* holds are not exported */
        r.level.policy = row[i].level.policy;
        r.level.preorder_limit = row[i].level.preorder_limit;
        char what[64];
        snprintf(what, sizeof what, "level of item %llu at location",
                 (unsigned long long)row[i].item);
        int rc = line_write(x, K_LEVEL, &r, what, row[i].location);
        if (rc != INV_OK)
            return rc;
        ++*n_out;
    }
    return INV_OK;
}

/* Writes every line to x->f (the header first, the end last). */
static int export_lines(tio_export *x, const char *tenant, tenant_io_counts *counts)
{
    assert(x != NULL && x->e != NULL);
    vec loc_ids = VEC_OF(uint64_t), item_ids = VEC_OF(uint64_t), rows = VEC_OF(inv_level_full_row);
    vec locs = VEC_OF(uint64_t), items = VEC_OF(uint64_t);
    /* Catalog before levels: a level listed later than its item is only
     * exported with it (export_levels). */
    int rc = ids_collect(x->e, inv_location_list, SIZE_MAX, &loc_ids);
    if (rc == INV_OK)
        rc = ids_collect(x->e, inv_item_list, SIZE_MAX, &item_ids);
    if (rc == INV_OK)
        rc = levels_collect(x->e, &rows);
    tio_rec r;
    memset(&r, 0, sizeof r);
    r.version = TENANT_IO_FORMAT_VERSION;
    snprintf(r.tenant, sizeof r.tenant, "%s", tenant);
    r.exported_at_ms = clock_wall_ms();
    if (rc == INV_OK)
        rc = line_write(x, K_HEADER, &r, "tenant", 0);
    if (rc == INV_OK)
        rc = export_catalog(x, K_LOCATION, &loc_ids, &locs);
    if (rc == INV_OK)
        rc = export_default(x, &locs);
    if (rc == INV_OK)
        rc = export_catalog(x, K_ITEM, &item_ids, &items);
    uint64_t n_levels = 0;
    if (rc == INV_OK)
        rc = export_levels(x, &rows, &items, &locs, &n_levels);
    memset(&r, 0, sizeof r);
    r.lines = x->lines;
    if (rc == INV_OK)
        rc = line_write(x, K_END, &r, "end", 0);
    if (rc == INV_OK)
        *counts = (tenant_io_counts){locs.n, items.n, n_levels, x->lines};
    vec_free(&loc_ids);
    vec_free(&item_ids);
    vec_free(&rows);
    vec_free(&locs);
    vec_free(&items);
    return rc;
}

/* The directory of path (".": none named), for its fsync after a rename. */
static void dir_of(const char *path, char *dir, size_t cap)
{
    assert(path != NULL && dir != NULL && cap >= 2); /* "." or "/" at least */
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* Makes tmp durable as path: flush, fsync, close, rename, parent fsync.
 * Closes x->f whatever happens. */
static int export_commit(tio_export *x, const char *tmp, const char *path)
{
    assert(x != NULL && x->e != NULL);
    assert(x->f != NULL && tmp != NULL && path != NULL);
    const char *step = "write";
    bool ok = fflush(x->f) == 0;
    if (ok) {
        step = "fsync";
        ok = fsync(fileno(x->f)) == 0;
    }
    int saved = errno;
    if (fclose(x->f) != 0 && ok) {
        ok = false;
        step = "close";
        saved = errno;
    }
    x->f = NULL;
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        step = "rename";
        saved = errno;
    }
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    if (ok && fileio_fsync_dir(dir) != 0) {
        /* renamed but not durable: the file must not stay as if whole */
        saved = errno;
        (void)unlink(path);
        fileio_errmsg(x->err, x->errlen, "%s: fsync of its directory: %s", path, strerror(saved));
        return INV_EIO;
    }
    if (!ok) {
        fileio_errmsg(x->err, x->errlen, "%s: %s: %s", tmp, step, strerror(saved));
        return INV_EIO;
    }
    return INV_OK;
}

int tenant_export(inv_engine *e, const char *tenant, const char *path, tenant_io_counts *counts,
                  char *err, size_t errlen)
{
    assert(e != NULL);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (e == NULL || tenant == NULL || path == NULL || counts == NULL)
        return INV_EINVALID;
    size_t tlen = strnlen(tenant, INV_TENANT_NAME_MAX + 1);
    if (tlen == 0 || tlen > INV_TENANT_NAME_MAX) {
        fileio_errmsg(err, errlen, "tenant name of 1..%d bytes expected", INV_TENANT_NAME_MAX);
        return INV_EINVALID;
    }
    char tmp[PATH_MAX];
    if (path[0] == '\0' ||
        (size_t)snprintf(tmp, sizeof tmp, "%s%s", path, TIO_TMP_SUFFIX) >= sizeof tmp) {
        fileio_errmsg(err, errlen, "export path empty or longer than %d bytes", PATH_MAX - 5);
        return INV_EINVALID;
    }
    tio_export x = {.e = e, .err = err, .errlen = errlen};
    if (http_body_init(&x.body) != INV_OK)
        return INV_ENOMEM;
    /* 0600: one shop's whole catalog and stock, for its operator */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (x.f = fdopen(fd, "w")) == NULL) {
        int saved = errno;
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        http_body_free(&x.body);
        fileio_errmsg(err, errlen, "%s: open: %s", tmp, strerror(saved));
        return INV_EIO;
    }
    tenant_io_counts c;
    int rc = export_lines(&x, tenant, &c);
    if (rc == INV_EIO)
        fileio_errmsg(err, errlen, "%s: write: %s", tmp, strerror(errno));
    if (rc != INV_OK)
        fclose(x.f);
    else
        rc = export_commit(&x, tmp, path);
    if (rc != INV_OK)
        (void)unlink(tmp); /* nothing is left at path.tmp (nor at path) */
    else
        *counts = c;
    http_body_free(&x.body);
    return rc;
}

/* ---- reading lines --------------------------------------------------------- */

/* A bounded line reader over a file descriptor: it never holds more than
 * one line of TENANT_IO_LINE_BYTES_MAX bytes and its '\n'. */
typedef struct {
    int fd;
    char *buf;
    size_t start, end; /* buf[start..end) not yet returned */
    bool eof;
} line_reader;

#define READER_CAP ((size_t)TENANT_IO_LINE_BYTES_MAX + 1)

typedef enum { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_NO_NEWLINE, LINE_IO } line_status;

/* The next line (without its '\n') in *p, *n. */
static line_status line_next(line_reader *r, const char **p, size_t *n)
{
    assert(r != NULL && r->buf != NULL);
    for (;;) {
        assert(r->start <= r->end && r->end <= READER_CAP);
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl != NULL) {
            *p = r->buf + r->start;
            *n = (size_t)(nl - *p);
            r->start += *n + 1;
            return LINE_OK;
        }
        if (r->eof)
            return r->start == r->end ? LINE_EOF : LINE_NO_NEWLINE;
        if (r->end - r->start == READER_CAP)
            return LINE_TOO_LONG;
        if (r->start > 0) { /* keep the partial line at the front */
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        ssize_t got = read(r->fd, r->buf + r->end, READER_CAP - r->end);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return LINE_IO;
        r->eof = got == 0;
        r->end += (size_t)got;
    }
}

/* ---- import ------------------------------------------------------------------ */

/* Where one kept line lies in the arena. */
typedef struct {
    size_t off, len;
} line_span;

typedef struct {
    inv_engine *e;
    inv_engine *scratch; /* the catalog's dry run */
    char *arena; /* every line's bytes, one after the other */
    size_t arena_len, arena_cap;
    vec spans; /* line_span per line, line N at N - 1 */
    vec loc_ids, item_ids; /* ascending, as the file must list them */
    uint64_t last_item, last_loc; /* a level's key, to check levels ascend */
    line_kind last_kind;
    bool has_level, ended;
    tenant_io_counts counts;
    char *err;
    size_t errlen;
} tio_import;

/* An import in progress: its engine, the arena's bytes within it, the
 * kinds seen within K_COUNT, its line spans a sound vector. */
static bool import_ok(const tio_import *im)
{
    return im != NULL && im->e != NULL && im->arena_len <= im->arena_cap &&
           (im->arena != NULL || im->arena_cap == 0) && (unsigned)im->last_kind < K_COUNT &&
           vec_ok(&im->spans);
}

/* "line N: " and the reason, in err; returns rc. */
static int line_fail(tio_import *im, uint64_t line, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int line_fail(tio_import *im, uint64_t line, int rc, const char *fmt, ...)
{
    assert(import_ok(im));
    char why[TIO_WHY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fileio_errmsg(im->err, im->errlen, "line %llu: %s", (unsigned long long)line, why);
    return rc;
}

static int arena_put(tio_import *im, const char *p, size_t n)
{
    assert(import_ok(im));
    assert(n <= TENANT_IO_LINE_BYTES_MAX && im->arena_len <= im->arena_cap);
    if (n > im->arena_cap - im->arena_len) {
        size_t cap = im->arena_cap ? im->arena_cap : READER_CAP;
        while (cap - im->arena_len < n) {
            if (cap > SIZE_MAX / 2)
                return INV_ENOMEM;
            cap *= 2;
        }
        char *a = inv_realloc(im->arena, cap);
        if (a == NULL)
            return INV_ENOMEM;
        im->arena = a;
        im->arena_cap = cap;
    }
    memcpy(im->arena + im->arena_len, p, n);
    line_span s = {im->arena_len, n};
    im->arena_len += n;
    return vec_push(&im->spans, &s);
}

/* One member's JSON value into r: false with why for a wrong type. */
static bool member_read(yajl_val obj, yajl_val v, const member *m, tio_rec *r, char *why,
                        size_t cap)
{
    assert(m != NULL && m->key != NULL && r != NULL && why != NULL);
    bool bad = false;
    switch (m->type) {
    case M_U64: {
        uint64_t u = 0;
        /* a JSON integer only (http_json_get_u64 takes decimal strings too) */
        if (!YAJL_IS_NUMBER(v))
            break;
        http_json_get_u64(obj, m->key, &u, &bad);
        if (bad)
            break;
        memcpy(at(r, m), &u, sizeof u);
        return true;
    }
    case M_I64:
    case M_I32: {
        int64_t i = 0;
        http_json_get_i64(obj, m->key, &i, &bad);
        if (bad || i < m->lo || i > m->hi) {
            snprintf(why, cap, "member \"%s\": an integer in %lld..%lld expected", m->key,
                     (long long)m->lo, (long long)m->hi);
            return false;
        }
        if (m->type == M_I64) {
            memcpy(at(r, m), &i, sizeof i);
        } else {
            int32_t i32 = (int32_t)i;
            memcpy(at(r, m), &i32, sizeof i32);
        }
        return true;
    }
    case M_BOOL: {
        bool b = false;
        http_json_get_bool(obj, m->key, &b, &bad);
        if (bad)
            break;
        memcpy(at(r, m), &b, sizeof b);
        return true;
    }
    case M_STR: {
        if (!YAJL_IS_STRING(v))
            break;
        size_t len = strlen(v->u.string); /* no NUL inside: http_json_parse */
        if (len >= m->cap) {
            snprintf(why, cap, "member \"%s\": longer than %zu bytes", m->key, m->cap - 1);
            return false;
        }
        memcpy(at(r, m), v->u.string, len + 1);
        return true;
    }
    case M_TIME: {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *s = YAJL_IS_STRING(v) ? v->u.string : NULL;
        const char *end =
            s && strlen(s) == TIO_TIME_BYTES ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
        if (end == NULL || *end != '\0') {
            snprintf(why, cap, "member \"%s\": a time \"YYYY-MM-DDTHH:MM:SSZ\" expected", m->key);
            return false;
        }
        int64_t ms = (int64_t)timegm(&tm) * 1000;
        memcpy(at(r, m), &ms, sizeof ms);
        return true;
    }
    case M_POLICY: {
        const char *s = YAJL_IS_STRING(v) ? v->u.string : "";
        inv_oversell_policy p = INV_POLICY_DENY;
        if (strcmp(s, "continue") == 0)
            p = INV_POLICY_CONTINUE;
        else if (strcmp(s, "deny") != 0) {
            snprintf(why, cap, "member \"%s\": \"deny\" or \"continue\" expected", m->key);
            return false;
        }
        memcpy(at(r, m), &p, sizeof p);
        return true;
    }
    }
    static const char *const type_words[] = {
        [M_U64] = "an integer in 0..18446744073709551615",
        [M_BOOL] = "true or false",
        [M_STR] = "a string",
    };
    snprintf(why, cap, "member \"%s\": %s expected", m->key, type_words[m->type]);
    return false;
}

/* The kind named by obj's "type" member, or K_COUNT with why. */
static line_kind kind_of(yajl_val obj, char *why, size_t cap)
{
    assert(why != NULL);
    yajl_val t = http_json_get(obj, "type");
    if (t == NULL || !YAJL_IS_STRING(t)) {
        snprintf(why, cap, "member \"type\": a string expected");
        return K_COUNT;
    }
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(t->u.string, kind_names[k]) == 0)
            return (line_kind)k;
    snprintf(why, cap, "unknown type \"%.64s\"", t->u.string);
    return K_COUNT;
}

/* obj's members into r: each once, each known, none missing. */
static bool members_read(yajl_val obj, line_kind k, tio_rec *r, char *why, size_t cap)
{
    assert((unsigned)k < K_COUNT && r != NULL && why != NULL);
    const kind_desc *d = &kinds[k];
    uint32_t seen = 0;
    bool type_seen = false;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[i];
        if (strcmp(key, "type") == 0) {
            if (type_seen) {
                snprintf(why, cap, "member \"type\" twice");
                return false;
            }
            type_seen = true;
            continue;
        }
        size_t m = 0;
        while (m < d->n && strcmp(key, d->m[m].key) != 0)
            m++;
        if (m == d->n) {
            snprintf(why, cap, "unknown member \"%.64s\" in a %s line", key, kind_names[k]);
            return false;
        }
        if (seen & (1u << m)) {
            snprintf(why, cap, "member \"%s\" twice", d->m[m].key);
            return false;
        }
        seen |= 1u << m;
        if (!member_read(obj, obj->u.object.values[i], &d->m[m], r, why, cap))
            return false;
    }
    for (size_t m = 0; m < d->n; m++)
        if (!(seen & (1u << m))) {
            snprintf(why, cap, "member \"%s\" missing", d->m[m].key);
            return false;
        }
    return true;
}

/* Parses and checks one line into r and *kind: INV_OK, or INV_EINVALID /
 * INV_ENOMEM with why. */
static int line_decode(const char *p, size_t n, tio_rec *r, line_kind *kind, char *why, size_t cap)
{
    assert(r != NULL && why != NULL);
    if (n == 0) {
        snprintf(why, cap, "empty line");
        return INV_EINVALID;
    }
    if (memchr(p, '\0', n) != NULL) {
        snprintf(why, cap, "a NUL byte");
        return INV_EINVALID;
    }
    yajl_val obj = http_json_parse(&(http_str){p, n}, why, cap);
    if (obj == NULL)
        return strcmp(why, "out of memory") == 0 ? INV_ENOMEM : INV_EINVALID;
    int rc = INV_EINVALID;
    memset(r, 0, sizeof *r);
    if (!YAJL_IS_OBJECT(obj))
        snprintf(why, cap, "not a JSON object");
    else if ((*kind = kind_of(obj, why, cap)) != K_COUNT && members_read(obj, *kind, r, why, cap) &&
             rec_check(r, *kind, why, cap))
        rc = INV_OK;
    yajl_tree_free(obj);
    return rc;
}

/* The line's place in the file: kinds in order, the header only first,
 * one default_location at most, ids ascending (so each once), levels
 * naming a location and an item of the file. */
static bool order_check(tio_import *im, uint64_t line, line_kind k, const tio_rec *r, char *why,
                        size_t cap)
{
    assert(import_ok(im) && (unsigned)k < K_COUNT && r != NULL && why != NULL);
    if ((line == 1) != (k == K_HEADER)) {
        snprintf(why, cap,
                 line == 1 ? "the header line (type \"invcore-tenant\") must come first"
                           : "a second header line");
        return false;
    }
    if (line > 1 && (k < im->last_kind || (k == K_DEFAULT && im->last_kind == K_DEFAULT))) {
        snprintf(why, cap,
                 "type \"%s\" after type \"%s\" (the order: locations, default_location, "
                 "items, levels)",
                 kind_names[k], kind_names[im->last_kind]);
        return false;
    }
    vec *ids = k == K_LOCATION ? &im->loc_ids : k == K_ITEM ? &im->item_ids : NULL;
    if (ids != NULL && ids->n > 0) {
        uint64_t last = ((const uint64_t *)ids->items)[ids->n - 1];
        if (r->id <= last) {
            snprintf(why, cap, "%s %llu %s", kind_names[k], (unsigned long long)r->id,
                     r->id == last ? "twice" : "after a higher id (ids ascend)");
            return false;
        }
    }
    if (k == K_LOCATION && im->loc_ids.n >= INV_LOCATIONS_MAX) {
        snprintf(why, cap, "more than %d locations", INV_LOCATIONS_MAX);
        return false;
    }
    if (k == K_DEFAULT && !ids_has(&im->loc_ids, r->id)) {
        snprintf(why, cap, "default location %llu is not in the file", (unsigned long long)r->id);
        return false;
    }
    if (k != K_LEVEL)
        return true;
    const tio_level *l = &r->level;
    if (!ids_has(&im->item_ids, l->item) || !ids_has(&im->loc_ids, l->location)) {
        bool item = !ids_has(&im->item_ids, l->item);
        snprintf(why, cap, "level of %s %llu, which is not in the file", item ? "item" : "location",
                 (unsigned long long)(item ? l->item : l->location));
        return false;
    }
    if (im->has_level &&
        (l->item < im->last_item || (l->item == im->last_item && l->location <= im->last_loc))) {
        bool same = l->item == im->last_item && l->location == im->last_loc;
        snprintf(why, cap, "level (item %llu, location %llu) %s", (unsigned long long)l->item,
                 (unsigned long long)l->location,
                 same ? "twice" : "after a higher one (levels ascend by item, then location)");
        return false;
    }
    return true;
}

/* A checked line's effect on the file's state, and the catalog's dry run
 * in the scratch engine (the engine's own field and uniqueness rules). */
static int line_note(tio_import *im, uint64_t line, line_kind k, const tio_rec *r)
{
    assert(import_ok(im) && (unsigned)k < K_COUNT && r != NULL);
    int rc = INV_OK;
    if (k == K_LOCATION) {
        rc = inv_location_create(im->scratch, r->id, &r->loc);
        if (rc == INV_OK)
            rc = vec_push(&im->loc_ids, &r->id);
    } else if (k == K_ITEM) {
        rc = inv_item_create(im->scratch, r->id, &r->item);
        if (rc == INV_OK)
            rc = vec_push(&im->item_ids, &r->id);
    } else if (k == K_LEVEL) {
        im->has_level = true;
        im->last_item = r->level.item;
        im->last_loc = r->level.location;
    }
    if (rc == INV_ENOMEM)
        return line_fail(im, line, rc, "out of memory");
    if (rc != INV_OK)
        return line_fail(im, line, INV_EINVALID, "%s %llu refused: %s %s", kind_names[k],
                         (unsigned long long)r->id, inv_errcode(rc), inv_strerror(rc));
    im->last_kind = k;
    return INV_OK;
}

/* Pass 1: every line read, checked and kept; nothing changes e. */
static int import_check(tio_import *im, int fd)
{
    assert(import_ok(im));
    line_reader rd = {.fd = fd, .buf = inv_malloc(READER_CAP)};
    if (rd.buf == NULL)
        return INV_ENOMEM;
    char why[TIO_WHY_MAX];
    tio_rec *r = inv_malloc(sizeof *r);
    uint64_t line = 0;
    int rc = r ? INV_OK : INV_ENOMEM;
    while (rc == INV_OK) {
        const char *p = NULL;
        size_t n = 0;
        line_status st = line_next(&rd, &p, &n);
        if (st == LINE_EOF)
            break;
        if (++line > TENANT_IO_LINES_MAX) {
            rc = line_fail(im, line, INV_EINVALID, "more than %llu lines", TENANT_IO_LINES_MAX);
        } else if (st == LINE_IO) {
            rc = line_fail(im, line, INV_EIO, "read: %s", strerror(errno));
        } else if (im->ended) {
            rc = line_fail(im, line, INV_EINVALID, "bytes after the end line");
        } else if (st == LINE_TOO_LONG) {
            rc =
                line_fail(im, line, INV_EINVALID, "longer than %u bytes", TENANT_IO_LINE_BYTES_MAX);
        } else if (st == LINE_NO_NEWLINE) {
            rc = line_fail(im, line, INV_EINVALID, "no newline at the end of the file");
        } else {
            line_kind k = K_COUNT;
            rc = line_decode(p, n, r, &k, why, sizeof why);
            if (rc == INV_OK && !order_check(im, line, k, r, why, sizeof why))
                rc = INV_EINVALID;
            if (rc == INV_OK && k == K_END && r->lines != line - 1) {
                snprintf(why, sizeof why, "the end line counts %llu lines; %llu come before it",
                         (unsigned long long)r->lines, (unsigned long long)(line - 1));
                rc = INV_EINVALID;
            }
            if (rc != INV_OK)
                rc = line_fail(im, line, rc, "%s", why);
            else
                rc = line_note(im, line, k, r);
            if (rc == INV_OK && (rc = arena_put(im, p, n)) != INV_OK)
                rc = line_fail(im, line, rc, "out of memory");
            im->ended = rc == INV_OK && k == K_END;
        }
    }
    if (rc == INV_OK && line == 0)
        rc = line_fail(im, 1, INV_EINVALID, "empty file (no header line)");
    else if (rc == INV_OK && !im->ended)
        rc = line_fail(im, line + 1, INV_EINVALID, "no end line: the file is truncated");
    free(r);
    free(rd.buf);
    return rc;
}

/* Sets every quantity of a new level to the file's values: available
 * carries each other quantity's units in and moves them out (moves are
 * the only way in), then takes its own value; the policy last. */
static int level_apply(inv_engine *e, const tio_level *l, const char **step)
{
    assert(e != NULL);
    assert(l->qty[INV_QTY_RESERVED] == 0); /* never in a file */
    *step = "create";
    int rc = inv_level_create(e, l->item, l->location, 0, NULL);
    for (size_t i = 0; rc == INV_OK && i < sizeof moved_qtys / sizeof *moved_qtys; i++) {
        int64_t v = l->qty[moved_qtys[i]];
        if (v == 0)
            continue;
        *step = inv_qty_name_str(moved_qtys[i]);
        rc = inv_level_set(e, l->item, l->location, v, 0, NULL);
        if (rc == INV_OK)
            rc = inv_level_move(e, l->item, l->location, v, INV_QTY_AVAILABLE, moved_qtys[i],
                                INV_NO_FLOOR, NULL);
    }
    if (rc == INV_OK && l->qty[INV_QTY_AVAILABLE] != 0) {
        *step = "available";
        rc = inv_level_set(e, l->item, l->location, l->qty[INV_QTY_AVAILABLE], 0, NULL);
    }
    if (rc == INV_OK && l->policy != INV_POLICY_DENY) {
        *step = "policy";
        rc = inv_level_set_policy(e, l->item, l->location, l->policy, l->preorder_limit);
    }
    if (rc != INV_OK)
        return rc;
    /* read back: another writer on e, or a rule this file did not foresee */
    inv_level_full got;
    *step = "read back";
    rc = inv_level_get_full(e, l->item, l->location, &got);
    if (rc != INV_OK)
        return rc;
    for (int q = 0; q < INV_QTY_NAMES; q++)
        if (q != INV_QTY_RESERVED && got.qty[q] != l->qty[q]) {
            *step = inv_qty_name_str((inv_qty_name)q);
            return INV_ECONFLICT;
        }
    if (got.policy != l->policy || got.preorder_limit != l->preorder_limit) {
        *step = "policy";
        return INV_ECONFLICT;
    }
    return INV_OK;
}

/* Pass 2: the kept lines applied to e, in order; inactive locations are
 * created active and deactivated after their levels (an inactive location
 * takes no new level). */
static int import_apply(tio_import *im)
{
    assert(import_ok(im));
    const line_span *span = im->spans.items;
    assert(im->spans.n >= 2 && im->scratch == NULL); /* a header and an end, checked */
    vec inactive = VEC_OF(uint64_t[2]); /* id, line */
    char why[TIO_WHY_MAX];
    tio_rec *r = inv_malloc(sizeof *r);
    int rc = r ? INV_OK : INV_ENOMEM;
    for (size_t i = 0; rc == INV_OK && i < im->spans.n; i++) {
        uint64_t line = i + 1;
        line_kind k = K_COUNT;
        rc = line_decode(im->arena + span[i].off, span[i].len, r, &k, why, sizeof why);
        if (rc != INV_OK) { /* checked in pass 1: only memory can fail */
            rc = line_fail(im, line, rc, "%s", why);
            break;
        }
        const char *step = "create";
        if (k == K_LOCATION) {
            inv_location_fields f = r->loc;
            f.mask = 0;
            f.active = true;
            rc = inv_location_create(im->e, r->id, &f);
            if (rc == INV_OK && !r->loc.active)
                rc = vec_push(&inactive, &(uint64_t[2]){r->id, line});
            im->counts.locations += rc == INV_OK;
        } else if (k == K_DEFAULT) {
            step = "make default";
            rc = inv_location_set_default(im->e, r->id);
        } else if (k == K_ITEM) {
            r->item.mask = 0;
            rc = inv_item_create(im->e, r->id, &r->item);
            im->counts.items += rc == INV_OK;
        } else if (k == K_LEVEL) {
            rc = level_apply(im->e, &r->level, &step);
            im->counts.levels += rc == INV_OK;
            if (rc != INV_OK)
                rc = line_fail(im, line, rc, "level (item %llu, location %llu): %s: %s %s",
                               (unsigned long long)r->level.item,
                               (unsigned long long)r->level.location, step, inv_errcode(rc),
                               inv_strerror(rc));
            continue;
        }
        if (rc != INV_OK)
            rc = line_fail(im, line, rc, "%s %llu: %s: %s %s", kind_names[k],
                           (unsigned long long)r->id, step, inv_errcode(rc), inv_strerror(rc));
    }
    const uint64_t(*loc)[2] = inactive.items;
    for (size_t i = 0; rc == INV_OK && i < inactive.n; i++) {
        inv_location_fields f = {.mask = INV_LOC_ACTIVE, .active = false};
        rc = inv_location_put(im->e, loc[i][0], &f);
        if (rc != INV_OK)
            rc = line_fail(im, loc[i][1], rc, "location %llu: deactivate: %s %s",
                           (unsigned long long)loc[i][0], inv_errcode(rc), inv_strerror(rc));
    }
    vec_free(&inactive);
    free(r);
    return rc;
}

/* Whether list returns any id (a cursor scan until one is found). */
static int engine_has(inv_engine *e, id_list_fn list, bool *any)
{
    assert(e != NULL);
    vec ids = VEC_OF(uint64_t);
    int rc = ids_collect(e, list, 1, &ids);
    *any = ids.n > 0;
    vec_free(&ids);
    return rc;
}

int tenant_import(inv_engine *e, const char *path, tenant_io_counts *counts, char *err,
                  size_t errlen)
{
    assert(e != NULL);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (e == NULL || path == NULL || counts == NULL)
        return INV_EINVALID;
    bool locs = false, items = false;
    int rc = engine_has(e, inv_location_list, &locs);
    if (rc == INV_OK)
        rc = engine_has(e, inv_item_list, &items);
    if (rc != INV_OK)
        return rc;
    if (locs || items) {
        fileio_errmsg(err, errlen, "import needs an empty engine: it has %s",
                      locs ? "locations" : "items");
        return INV_EEXISTS;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fileio_errmsg(err, errlen, "%s: open: %s", path, strerror(errno));
        return INV_EIO;
    }
    tio_import im = {.e = e,
                     .spans = VEC_OF(line_span),
                     .loc_ids = VEC_OF(uint64_t),
                     .item_ids = VEC_OF(uint64_t),
                     .err = err,
                     .errlen = errlen};
    rc = inv_open(&im.scratch, NULL);
    if (rc != INV_OK)
        fileio_errmsg(err, errlen, "opening the scratch engine: %s", inv_strerror(rc));
    else
        rc = import_check(&im, fd);
    close(fd);
    inv_close(im.scratch); /* before pass 2: its memory is the catalog's again */
    im.scratch = NULL;
    if (rc == INV_OK)
        rc = import_apply(&im);
    if (rc == INV_OK && im.counts.locations + im.counts.items > 0) {
        /* returns once the import is durable under e's policy; only after
         * a write on e is the thread's last position one of e's */
        rc = inv_wait_durable(e, inv_last_write_position());
        if (rc != INV_OK)
            fileio_errmsg(err, errlen, "%s: waiting for the journal: %s", path, inv_strerror(rc));
    }
    if (rc == INV_OK) {
        im.counts.lines = im.spans.n;
        *counts = im.counts;
    }
    free(im.arena);
    vec_free(&im.spans);
    vec_free(&im.loc_ids);
    vec_free(&im.item_ids);
    return rc;
}
