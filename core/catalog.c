/*
 * catalog.c — locations, inventory items and their SKU / variant / product
 * indexes.
 *
 * Records. A location or an item is an immutable record (catalog_record.h:
 * its format, fields and payloads) held by pointer in w0 of its table
 * value; w1 is the version, bumped by every CAS. A change builds a new
 * record and swaps it in with one CAS; the replaced record goes to
 * epoch_retire. A deleted item is a tombstone (TABLE_TOMB, w0 = 0) whose
 * version goes on counting if the id is created again.
 *
 * Changes. Every change of a table value is one table_update with a step
 * per operation (claim_step, put_step, ...). A step may run several
 * times (after lost races), so what it prepares (a record, index claims, a
 * journal reservation) lives in its ctx, and each call first undoes what
 * the previous call prepared; what must happen once (note_created, retiring
 * the old record, publishing) happens after table_update, from what the
 * winning call stored in ctx. The default location is a slot in no table:
 * lone_update, the same loop without growth, changes it.
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
 * Levels sit above the catalog: it reaches them only through the hooks
 * engine.c registers (catalog_level_hooks in catalog.h).
 *
 * Durability (catalog.h). With a journal, a change reserves its position
 * before its CAS and uses it as the new version (w1), re-reserving if the
 * slot already holds a higher one (and after every lost race); after the
 * CAS it publishes the whole record, and the public call acknowledges it
 * outside the epoch section and the stripe. Replay installs a record only
 * above the loaded version and leaves the indexes to
 * catalog_rebuild_indexes.
 */
#include "alloc.h"
#include "catalog.h"

#include "catalog_record.h"
#include "clock.h"
#include "engine_state.h"
#include "epoch.h"
#include "persist.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static const str_view EMPTY = {"", 0};

/* A product: its name (to tell a hash collision) and its items, sorted. */
typedef struct {
    uint32_t n;
    uint8_t name_len;
    char name[INV_VARIANT_MAX];
    uint64_t ids[];
} product_rec;

/* A product's id list, for asserts only (O(1)): a name within its limit,
 * its ids within the item limit and in order at both ends. */
static bool product_ok(const product_rec *p)
{
    return p != NULL && p->name_len <= INV_VARIANT_MAX && p->n <= INV_PRODUCT_ITEMS_MAX &&
           (p->n < 2 || p->ids[0] < p->ids[p->n - 1]);
}

static str_view product_name(const product_rec *p)
{
    assert(product_ok(p));
    return (str_view){p->name, p->name_len};
}

/* ---- table words -------------------------------------------------------- */

static void *word_rec(table_word v)
{
    assert(v.w0 != 0 || !table_is_live(v)); /* a live word holds a record */
    return (void *)(uintptr_t)v.w0;
}

/* v's record when v is live, else NULL. */
static void *live_rec(table_word v)
{
    return table_is_live(v) ? word_rec(v) : NULL;
}

/* The w0 that holds rec. */
static uint64_t rec_w0(const void *rec)
{
    return (uint64_t)(uintptr_t)rec;
}

/* The next live value after prev (any state): the version goes on. */
static table_word live_word(uint64_t w0, table_word prev)
{
    assert(table_version(prev) < TABLE_VERSION_MAX); /* the version goes on */
    return (table_word){w0, table_version(prev) + 1};
}

static table_word tomb_word(table_word prev)
{
    return (table_word){0, (table_version(prev) + 1) | TABLE_TOMB};
}

/* The live record of (id, 0) in t, or NULL. Inside an epoch section; a
 * frozen value is still the latest, so a read needs no settling. */
static void *rec_get(table *t, uint64_t id)
{
    assert(t != NULL);
    table_slot *s = table_find(t, id, 0);
    if (!s)
        return NULL;
    return live_rec(table_load(s));
}

/* A change that swaps a record for one it builds (a put, a product's id
 * list): its step may run several times (after lost races), so each call
 * first frees what the previous call built (swap_begin), and the caller
 * frees the last one when no write landed (swap_drop). */
typedef struct {
    void *old; /* the live record the deciding call found (NULL: none) */
    void *built; /* the record it built (NULL: none, or a tombstone) */
} rec_swap;

static void swap_drop(rec_swap *sw)
{
    assert(sw != NULL);
    free(sw->built);
    sw->built = NULL;
}

/* A step call's first move: frees the previous call's record, reads cur's. */
static void swap_begin(rec_swap *sw, table_word cur)
{
    assert(sw != NULL);
    swap_drop(sw);
    sw->old = live_rec(cur);
    assert(sw->built == NULL);
}

/* The one loop for the default location, a slot in no table: it never
 * freezes, so table_update's growth protocol does not apply; otherwise the
 * same contract (step as table_step_fn, returns its answer). */
static int lone_update(table_slot *s, table_step_fn step, void *ctx)
{
    assert(s != NULL && step != NULL);
    table_word v = table_load(s);
    for (;;) {
        table_word next = v;
        int rc = step(ctx, v, &next);
        if (rc != TABLE_STEP_WRITE)
            return rc;
        assert((next.w1 & (TABLE_FROZEN | TABLE_MOVED)) == 0);
        if (table_cas(s, &v, next)) /* on failure v is the fresh value */
            return rc;
    }
}

/* Replay's step: writes want unless the value is as new or newer; seen:
 * the value the deciding call saw. */
typedef struct {
    table_word want, seen;
} newer_ctx;

static int newer_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    newer_ctx *x = ctx;
    x->seen = cur;
    if (table_version(cur) >= table_version(x->want))
        return TABLE_STEP_KEEP; /* what is loaded is as new or newer */
    *next = x->want;
    return TABLE_STEP_WRITE;
}

/* ---- journal stamps ------------------------------------------------------
 * A change's version: in memory its value's plus one; with a journal, the
 * position its record will be published at, reserved before the CAS. A
 * step reserves; a step called again (its CAS lost) first gives the
 * previous reservation back, and so does the caller when no write landed. */

typedef struct {
    inv_engine *e;
    uint64_t pos; /* reserved and not published yet (0: none) */
    uint32_t len; /* the reserved record's length */
} stamp;

/* A stamp, for asserts only (O(1)): an engine, and a reservation only with
 * a journal, at a position, for a record within the journal's limit. */
static bool stamp_ok(const stamp *st)
{
    return st != NULL && st->e != NULL &&
           (st->pos == 0 || (st->e->jr != NULL && st->pos >= JOURNAL_POSITION_FIRST &&
                             st->len <= JOURNAL_PAYLOAD_MAX));
}

static void stamp_abandon(stamp *st)
{
    assert(stamp_ok(st));
    if (st->pos)
        persist_abandon(st->e, st->pos, st->len);
    st->pos = 0;
    assert(st->pos == 0);
}

/* The version of a change replacing cur with a record of len payload
 * bytes: cur's plus one in memory; with a journal, a freshly reserved
 * position above cur's version (st->pos). 0: the journal failed. */
static uint64_t stamp_version(stamp *st, table_word cur, uint32_t len)
{
    assert(stamp_ok(st));
    assert(st->pos == 0); /* the previous reservation was given back */
    st->len = len;
    if (!st->e->jr)
        return table_version(cur) + 1;
    for (;;) {
        st->pos = persist_reserve(st->e, len);
        if (st->pos == 0)
            return 0;
        if (st->pos > table_version(cur))
            return st->pos;
        persist_abandon(st->e, st->pos, len); /* a later change came first */
    }
}

/* A stamped step's last move: *next = (w0, a fresh *version | tomb), the
 * version stamped for a record of len bytes. INV_EIO: the journal failed. */
static int stamp_write(stamp *st, table_word cur, uint32_t len, uint64_t w0, uint64_t tomb,
                       uint64_t *version, table_word *next)
{
    assert(stamp_ok(st) && version != NULL && next != NULL);
    assert(tomb == 0 || tomb == TABLE_TOMB);
    *version = stamp_version(st, cur, len);
    if (!*version)
        return INV_EIO;
    *next = (table_word){w0, *version | tomb};
    /* the new version is above cur's (a CAS that lands moves it forward) */
    assert(*version > table_version(cur) && stamp_ok(st));
    return TABLE_STEP_WRITE;
}

static int publish_item(inv_engine *e, uint64_t pos, uint64_t id, uint64_t version,
                        const item_rec *r)
{
    assert(e != NULL && pos >= JOURNAL_POSITION_FIRST); /* r NULL: a delete */
    uint8_t buf[RECORD_PAYLOAD_MAX];
    uint32_t len = record_item_encode(buf, id, version, r);
    assert(len <= sizeof buf);
    return persist_publish(e, pos, PERSIST_ITEM, buf, len);
}

static int publish_location(inv_engine *e, uint64_t pos, uint64_t id, uint64_t version,
                            const loc_rec *r)
{
    assert(e != NULL && pos >= JOURNAL_POSITION_FIRST); /* r NULL: a delete */
    uint8_t buf[RECORD_PAYLOAD_MAX];
    uint32_t len = record_loc_encode(buf, id, version, r);
    assert(len <= sizeof buf);
    return persist_publish(e, pos, PERSIST_LOCATION, buf, len);
}

static int publish_default(inv_engine *e, uint64_t pos, uint64_t id, uint64_t version)
{
    assert(e != NULL && pos >= JOURNAL_POSITION_FIRST);
    uint8_t buf[RECORD_DEFAULT_LEN];
    uint32_t len = record_default_encode(buf, id, version, clock_wall_ms());
    assert(len == RECORD_DEFAULT_LEN);
    return persist_publish(e, pos, PERSIST_DEFAULT, buf, len);
}

/* ---- sorted id arrays --------------------------------------------------- */

static size_t ids_lower_bound(const uint64_t *ids, size_t n, uint64_t id)
{
    assert(ids != NULL || n == 0);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert(lo <= n && (lo == n || ids[lo] >= id) && (lo == 0 || ids[lo - 1] < id));
    return lo;
}

static bool ids_has(const uint64_t *ids, size_t n, uint64_t id)
{
    assert(ids != NULL || n == 0);
    size_t i = ids_lower_bound(ids, n, id);
    return i < n && ids[i] == id;
}

/* dst (room for n + 1) = src (n ids) with id inserted in order. */
static void ids_insert(uint64_t *dst, const uint64_t *src, size_t n, uint64_t id)
{
    assert(dst != NULL && (src != NULL || n == 0));
    size_t i = ids_lower_bound(src, n, id);
    if (i)
        memcpy(dst, src, i * sizeof *dst);
    dst[i] = id;
    assert(i == 0 || src[i - 1] < id); /* kept strictly increasing */
    if (n > i)
        memcpy(dst + i + 1, src + i, (n - i) * sizeof *dst);
}

/* ---- string indexes (SKU, variant): hash -> item id --------------------- */

static void str_hash(const catalog *c, str_view v, uint64_t *a, uint64_t *b)
{
    assert(c != NULL && a != NULL && b != NULL);
    assert(v.p != NULL || v.len == 0);
    XXH128_hash_t h = XXH3_128bits_withSeed(v.p, v.len, c->index_seed);
    *a = h.low64;
    *b = h.high64;
}

/* key's entry names owner, another item: a duplicate, or a collision. */
static int index_conflict(catalog *c, int field, str_view key, uint64_t owner)
{
    assert(c != NULL);
    const item_rec *r = rec_get(&c->items, owner);
    if (!r)
        return INV_EEXISTS; /* the owner is being created: in flight */
    str_view have = record_item_str(r, field);
    if (have.len == 0 || str_view_eq(have, key))
        return INV_EEXISTS;
    uint64_t a1, b1, a2, b2;
    str_hash(c, have, &a1, &b1);
    str_hash(c, key, &a2, &b2);
    return a1 == a2 && b1 == b2 ? INV_ELIMIT : INV_EEXISTS;
}

/* A claim's answer: *claimed when the entry is now the item's (written, or
 * kept as a leftover of ours); a refusal as is. */
static int claim_answer(int rc, bool *claimed)
{
    assert(claimed != NULL);
    assert(rc < 0 || rc == TABLE_STEP_WRITE || rc == TABLE_STEP_KEEP);
    *claimed = rc == TABLE_STEP_WRITE || rc == TABLE_STEP_KEEP;
    return *claimed ? INV_OK : rc;
}

typedef struct {
    catalog *c;
    int field;
    str_view key;
    uint64_t item;
} claim_ctx;

/* absent -> item; already the item's (a leftover of ours): adopt it; held
 * by another item: its conflict. */
static int claim_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    const claim_ctx *x = ctx;
    if (table_is_live(cur))
        return cur.w0 == x->item ? TABLE_STEP_KEEP : index_conflict(x->c, x->field, x->key, cur.w0);
    *next = live_word(x->item, cur);
    return TABLE_STEP_WRITE;
}

/* Claims key for item (absent -> item). *claimed: the entry is now ours
 * and must be released if the change is not published. */
static int index_claim(catalog *c, table *t, int field, str_view key, uint64_t item, bool *claimed)
{
    assert(c != NULL && t != NULL && claimed != NULL);
    assert(key.len > 0);
    uint64_t a, b;
    str_hash(c, key, &a, &b);
    claim_ctx x = {c, field, key, item};
    int rc = table_update(t, a, b, true, NULL, claim_step, &x, NULL);
    if (rc == TABLE_STEP_WRITE)
        table_note_created(t);
    return claim_answer(rc, claimed);
}

/* item's entry -> tombstone; anything else stays. */
static int release_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    const uint64_t *item = ctx;
    if (!table_is_live(cur) || cur.w0 != *item)
        return TABLE_STEP_KEEP;
    *next = tomb_word(cur);
    return TABLE_STEP_WRITE;
}

/* Removes key's entry if it still names item. */
static void index_release(catalog *c, table *t, str_view key, uint64_t item)
{
    assert(c != NULL && t != NULL);
    uint64_t a, b;
    if (key.len == 0)
        return;
    str_hash(c, key, &a, &b);
    if (table_update(t, a, b, false, NULL, release_step, &item, NULL) == TABLE_STEP_WRITE)
        table_note_deleted(t);
}

static int index_lookup(catalog *c, table *t, int field, str_view key, uint64_t *out)
{
    assert(c != NULL && t != NULL && out != NULL);
    uint64_t a, b;
    str_hash(c, key, &a, &b);
    table_slot *s = table_find(t, a, b);
    if (!s)
        return INV_ENOTFOUND;
    table_word v = table_load(s);
    if (!table_is_live(v))
        return INV_ENOTFOUND;
    const item_rec *r = rec_get(&c->items, v.w0);
    if (!r || !str_view_eq(record_item_str(r, field), key))
        return INV_ENOTFOUND; /* a change in flight, or a collision */
    *out = v.w0;
    return INV_OK;
}

/* ---- products: hash -> product record ----------------------------------- */

/* A product record named name with room for n + extra ids, the first n
 * copied from ids. */
static product_rec *product_new(str_view name, const uint64_t *ids, size_t n, size_t extra)
{
    assert(ids != NULL || n == 0);
    assert(name.len <= INV_VARIANT_MAX);
    product_rec *p = inv_malloc(sizeof *p + (n + extra) * sizeof(uint64_t));
    if (!p)
        return NULL;
    memset(p->name, 0, sizeof p->name);
    memcpy(p->name, name.p, name.len);
    p->name_len = (uint8_t)name.len;
    p->n = (uint32_t)n;
    if (n)
        memcpy(p->ids, ids, n * sizeof(uint64_t));
    assert(product_ok(p));
    return p;
}

static product_rec *product_get(catalog *c, str_view name)
{
    assert(c != NULL && name.len > 0);
    uint64_t a, b;
    str_hash(c, name, &a, &b);
    table_slot *s = table_find(&c->products, a, b);
    if (!s)
        return NULL;
    table_word v = table_load(s);
    if (!table_is_live(v))
        return NULL;
    product_rec *p = word_rec(v);
    return str_view_eq(product_name(p), name) ? p : NULL;
}

/* A copy of old (NULL: none) with item added. */
static product_rec *product_plus(const product_rec *old, str_view name, uint64_t item)
{
    assert(old == NULL || product_ok(old));
    size_t n = old ? old->n : 0;
    product_rec *p = product_new(name, NULL, 0, n + 1);
    if (!p)
        return NULL;
    ids_insert(p->ids, old ? old->ids : NULL, n, item);
    p->n = (uint32_t)(n + 1);
    return p;
}

/* The next value of a product record without item: a copy, or a tombstone
 * when it was the last one (*p NULL). false: out of memory. */
static bool product_minus(const product_rec *old, uint64_t item, table_word v, table_word *next,
                          product_rec **p)
{
    assert(product_ok(old) && next != NULL && p != NULL);
    *p = NULL;
    if (old->n == 1) {
        *next = tomb_word(v);
        return true;
    }
    *p = product_new(product_name(old), old->ids, old->n, 0);
    if (!*p)
        return false;
    size_t i = ids_lower_bound((*p)->ids, (*p)->n, item);
    assert(i < (*p)->n && (*p)->ids[i] == item);
    memmove((*p)->ids + i, (*p)->ids + i + 1, ((*p)->n - i - 1) * sizeof(uint64_t));
    (*p)->n--;
    *next = live_word(rec_w0(*p), v);
    return true;
}

/* A product change: the product records it swaps (sw.built NULL after a
 * write: a tombstone). */
typedef struct {
    str_view name;
    uint64_t item;
    rec_swap sw;
} product_ctx;

static int product_add_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    product_ctx *x = ctx;
    swap_begin(&x->sw, cur);
    const product_rec *old = x->sw.old;
    if (old && !str_view_eq(product_name(old), x->name))
        return INV_ELIMIT; /* a 128-bit collision */
    if (old && ids_has(old->ids, old->n, x->item))
        return TABLE_STEP_KEEP; /* a leftover of ours: adopt it */
    if (old && old->n >= INV_PRODUCT_ITEMS_MAX)
        return INV_ELIMIT;
    product_rec *p = product_plus(old, x->name, x->item);
    if (!p)
        return INV_ENOMEM;
    x->sw.built = p;
    *next = live_word(rec_w0(p), cur);
    return TABLE_STEP_WRITE;
}

/* Adds item to product name. *claimed as for index_claim. */
static int product_add(catalog *c, str_view name, uint64_t item, bool *claimed)
{
    assert(c != NULL && claimed != NULL && name.len > 0);
    uint64_t a, b;
    str_hash(c, name, &a, &b);
    product_ctx x = {name, item, {NULL, NULL}};
    int rc = table_update(&c->products, a, b, true, NULL, product_add_step, &x, NULL);
    if (rc != TABLE_STEP_WRITE)
        swap_drop(&x.sw);
    else if (x.sw.old)
        epoch_retire(x.sw.old, free, c->owner);
    else
        table_note_created(&c->products);
    return claim_answer(rc, claimed);
}

static int product_remove_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    product_ctx *x = ctx;
    swap_begin(&x->sw, cur);
    const product_rec *old = x->sw.old;
    if (!old || !str_view_eq(product_name(old), x->name) || !ids_has(old->ids, old->n, x->item))
        return TABLE_STEP_KEEP;
    product_rec *p;
    bool built = product_minus(old, x->item, cur, next, &p);
    x->sw.built = p;
    return built ? TABLE_STEP_WRITE : INV_ENOMEM;
}

/* Removes item from product name (out of memory leaves a stale id, which
 * every reader filters by the item's own record). */
static void product_remove(catalog *c, str_view name, uint64_t item)
{
    assert(c != NULL);
    uint64_t a, b;
    if (name.len == 0)
        return;
    str_hash(c, name, &a, &b);
    product_ctx x = {name, item, {NULL, NULL}};
    int rc = table_update(&c->products, a, b, false, NULL, product_remove_step, &x, NULL);
    if (rc != TABLE_STEP_WRITE) {
        swap_drop(&x.sw);
        return;
    }
    if (!x.sw.built)
        table_note_deleted(&c->products);
    epoch_retire(x.sw.old, free, c->owner);
}

/* ---- puts: a location's or an item's record, built over the current one -- */

/* The index entries an item's new record claimed that the old one did not
 * hold (SKU, variant, product). */
typedef struct {
    bool sku, variant, product;
} item_claims;

typedef struct put_ctx put_ctx;

/* What differs between putting a location and an item (a row per kind:
 * loc_put, item_put). */
typedef struct {
    /* The public fields struct's check (record_*_validate). */
    int (*validate)(const void *f, unsigned *wmask);
    /* The table of the records. */
    table *(*table)(catalog *c);
    /* The writers of one id are serialised under this (NULL: none). */
    pthread_mutex_t *(*stripe)(catalog *c, uint64_t id);
    /* Builds p->sw.built over p->sw.old (*len: its payload size) and takes
     * what it needs beside; INV_OK or a refusal. */
    int (*prepare)(put_ctx *p, uint32_t *len);
    /* Gives back what prepare took beside the record (NULL: nothing). */
    void (*release)(put_ctx *p);
    /* What must happen once, after the write landed at *pos (retiring or
     * noting, publishing); may raise *pos to a later change of its own. */
    int (*done)(put_ctx *p, uint64_t *pos);
} put_kind;

/* A put's step context: what the deciding step call replaced and built,
 * and its journal reservation. */
struct put_ctx {
    inv_engine *e;
    const put_kind *kind;
    uint64_t id;
    const void *f; /* inv_location_fields or inv_item_fields, validated */
    unsigned wmask;
    rec_swap sw; /* the record replaced (old) and the one built */
    uint64_t version;
    stamp st;
    bool listed; /* a location: its id is in location_ids */
    item_claims cl; /* an item: the entries sw.built holds, sw.old not */
    bool create_only; /* a live record refuses the put (EXISTS) */
};

/* A put, for asserts only (O(1)): its engine and kind, its stamp
 * sound and of the same engine. */
static bool put_ok(const put_ctx *p)
{
    return p != NULL && p->e != NULL && p->kind != NULL && stamp_ok(&p->st) && p->st.e == p->e;
}

/* Gives back what the previous step call prepared (its CAS lost, or no
 * write): its reservation, what prepare took, its record. */
static void put_undo(put_ctx *p)
{
    assert(put_ok(p));
    stamp_abandon(&p->st);
    if (p->sw.built && p->kind->release)
        p->kind->release(p);
    swap_drop(&p->sw);
    assert(p->st.pos == 0 && p->sw.built == NULL);
}

static int put_step(void *ctx, table_word cur, table_word *next)
{
    assert(put_ok(ctx) && next != NULL);
    put_ctx *p = ctx;
    put_undo(p);
    swap_begin(&p->sw, cur);
    /* Create-only: decided on the very value the CAS replaces, so the
     * existence check and the creation are one decision. */
    if (p->create_only && p->sw.old)
        return INV_EEXISTS;
    uint32_t len;
    int rc = p->kind->prepare(p, &len);
    if (rc != INV_OK)
        return rc;
    return stamp_write(&p->st, cur, len, rec_w0(p->sw.built), 0, &p->version, next);
}

/* Puts p's record (inside an epoch section); *pos: the position to
 * acknowledge. */
static int put_run(put_ctx *p, uint64_t *pos)
{
    assert(put_ok(p) && pos != NULL);
    table *t = p->kind->table(&p->e->cat);
    int rc = table_update(t, p->id, 0, true, NULL, put_step, p, NULL);
    if (rc != TABLE_STEP_WRITE) {
        assert(rc < 0); /* the step never keeps */
        put_undo(p);
        return rc;
    }
    *pos = p->st.pos;
    return p->kind->done(p, pos);
}

/* inv_location_put and inv_item_put (create_only: the _create calls):
 * validates f, runs the kind's put in an epoch section (under its stripe,
 * taken outside the section: waiting may block) and acknowledges the
 * change's position. */
static int put_call(inv_engine *e, const put_kind *kind, uint64_t id, const void *f,
                    bool create_only)
{
    assert(kind != NULL && kind->validate != NULL && kind->prepare != NULL);
    if (!e)
        return INV_EINVALID;
    put_ctx x = {
        .e = e, .kind = kind, .id = id, .f = f, .st = {e, 0, 0}, .create_only = create_only};
    int rc = kind->validate(f, &x.wmask);
    if (rc != INV_OK)
        return rc;
    uint64_t pos = 0;
    pthread_mutex_t *m = kind->stripe ? kind->stripe(&e->cat, id) : NULL;
    if (m)
        pthread_mutex_lock(m);
    epoch_enter();
    rc = put_run(&x, &pos);
    epoch_exit();
    if (m)
        pthread_mutex_unlock(m);
    return rc == INV_OK && pos ? persist_ack(e, pos) : rc;
}

/* ---- locations ---------------------------------------------------------- */

/* Adds loc to the sorted id array (a no-op when present). */
static int locs_add(catalog *c, uint64_t loc)
{
    assert(c != NULL);
    for (;;) {
        /* acquire: the array's ids as its publisher wrote them. */
        catalog_locs *cur = atomic_load_explicit(&c->location_ids, memory_order_acquire);
        size_t n = cur ? cur->n : 0;
        if (cur && ids_has(cur->ids, n, loc))
            return INV_OK;
        if (n >= INV_LOCATIONS_MAX)
            return INV_ELIMIT;
        catalog_locs *next = inv_malloc(sizeof *next + (n + 1) * sizeof(uint64_t));
        if (!next)
            return INV_ENOMEM;
        ids_insert(next->ids, cur ? cur->ids : NULL, n, loc);
        next->n = n + 1;
        /* acq_rel: release publishes the filled array to acquire loads;
         * acquire on failure: the winner's array, for the retry. */
        if (atomic_compare_exchange_strong_explicit(&c->location_ids, &cur, next,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            if (cur)
                epoch_retire(cur, free, c->owner);
            return INV_OK;
        }
        free(next);
    }
}

/* "none" -> the word in ctx; a default already set stays. */
static int offer_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    if (cur.w0 != 0 || cur.w1 != 0)
        return TABLE_STEP_KEEP;
    *next = *(const table_word *)ctx;
    return TABLE_STEP_WRITE;
}

/* The first location published becomes the default (once, from "none");
 * version: the location's. */
static bool default_offer(catalog *c, uint64_t loc, uint64_t version)
{
    assert(c != NULL);
    assert(version != 0); /* version 0 means "none" */
    table_word w = {loc, version};
    return lone_update(&c->default_location, offer_step, &w) == TABLE_STEP_WRITE;
}

typedef struct {
    uint64_t loc, version;
    const table_word *only_over; /* NULL, or write only while this is the value */
    stamp st;
} default_ctx;

static int default_set_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    default_ctx *x = ctx;
    stamp_abandon(&x->st); /* the previous call's CAS lost */
    if (x->only_over && (cur.w0 != x->only_over->w0 || cur.w1 != x->only_over->w1))
        return TABLE_STEP_KEEP; /* someone set the default since: theirs stands */
    return stamp_write(&x->st, cur, RECORD_DEFAULT_LEN, x->loc, 0, &x->version, next);
}

/* Makes loc the default, journaled (*pos: its position, 0: none).
 * only_over: NULL, or the value the default must still have (else nothing
 * is written, INV_OK with *pos 0). */
static int default_set(inv_engine *e, uint64_t loc, const table_word *only_over, uint64_t *pos)
{
    assert(e != NULL && pos != NULL);
    default_ctx x = {loc, 0, only_over, {e, 0, 0}};
    int rc = lone_update(&e->cat.default_location, default_set_step, &x);
    if (rc != TABLE_STEP_WRITE) {
        assert(rc < 0 || (rc == TABLE_STEP_KEEP && only_over));
        stamp_abandon(&x.st);
        *pos = 0;
        return rc == TABLE_STEP_KEEP ? INV_OK : rc;
    }
    *pos = x.st.pos;
    return *pos ? publish_default(e, *pos, loc, x.version) : INV_OK;
}

bool catalog_default_location(catalog *c, uint64_t *loc)
{
    assert(c != NULL && loc != NULL);
    table_word v = table_load(&c->default_location);
    if (table_version(v) == 0)
        return false;
    *loc = v.w0;
    return true;
}

static int loc_validate(const void *f, unsigned *wmask)
{
    assert(wmask != NULL);
    return record_loc_validate(f, wmask);
}

static int loc_prepare(put_ctx *p, uint32_t *len)
{
    assert(put_ok(p) && len != NULL);
    if (!p->sw.old && !p->listed) {
        /* Listed before published: see the file comment. The listing is
         * idempotent and never undone. */
        int rc = locs_add(&p->e->cat, p->id);
        if (rc != INV_OK)
            return rc;
        p->listed = true;
    }
    loc_rec *r = record_loc_build(p->sw.old, p->f, p->wmask, clock_wall_ms());
    if (!r)
        return INV_ENOMEM;
    p->sw.built = r;
    *len = record_loc_len(r);
    return INV_OK;
}

static const catalog_level_hooks *levels(catalog *c);

static int loc_done(put_ctx *p, uint64_t *pos)
{
    assert(put_ok(p) && pos != NULL);
    inv_engine *e = p->e;
    catalog *c = &e->cat;
    bool made_default = false;
    if (p->sw.old) {
        epoch_retire(p->sw.old, free, c->owner);
    } else {
        table_note_created(&c->locations);
        made_default = default_offer(c, p->id, p->version);
    }
    int rc = *pos ? publish_location(e, *pos, p->id, p->version, p->sw.built) : INV_OK;
    const loc_rec *was = p->sw.old, *now = p->sw.built;
    if (rc == INV_OK && was && was->active != now->active) {
        uint64_t marked = levels(c)->mark_location(e, p->id);
        if (marked > *pos)
            *pos = marked; /* acknowledge once those are durable too */
    }
    if (rc == INV_OK && made_default && *pos) {
        /* Replay would make the first location in journal order the
         * default, which may be another concurrent first one: say which
         * one won, in a record of its own. Only over our own offer: a
         * LOC.DEFAULT set (and acknowledged) since then stands (issue 17). */
        uint64_t pos_default = 0;
        const table_word offered = {p->id, p->version};
        rc = default_set(e, p->id, &offered, &pos_default);
        if (pos_default > *pos)
            *pos = pos_default;
    }
    return rc;
}

static table *loc_table(catalog *c)
{
    assert(c != NULL);
    return &c->locations;
}

static const put_kind loc_put = {loc_validate, loc_table, NULL, loc_prepare, NULL, loc_done};

int inv_location_put(inv_engine *e, uint64_t loc, const inv_location_fields *f)
{
    int rc = put_call(e, &loc_put, loc, f, false);
    assert(rc <= INV_OK); /* INV_OK or a negative INV_E* code */
    return rc;
}

int inv_location_create(inv_engine *e, uint64_t loc, const inv_location_fields *f)
{
    int rc = put_call(e, &loc_put, loc, f, true);
    assert(rc <= INV_OK);
    return rc;
}

int inv_location_get(inv_engine *e, uint64_t loc, inv_location *out)
{
    if (!e || !out)
        return INV_EINVALID;
    epoch_enter();
    const loc_rec *r = rec_get(&e->cat.locations, loc);
    uint64_t def = 0;
    bool is_default = catalog_default_location(&e->cat, &def) && def == loc;
    if (r)
        record_loc_out(loc, r, is_default, out);
    epoch_exit();
    assert(!r || out->id == loc);
    return r ? INV_OK : INV_ENOTFOUND;
}

int inv_location_default(inv_engine *e, uint64_t *loc_out)
{
    if (!e || !loc_out)
        return INV_EINVALID;
    epoch_enter();
    bool found = catalog_default_location(&e->cat, loc_out);
    /* the default names a location, and locations are never deleted */
    assert(!found || catalog_location_exists(&e->cat, *loc_out));
    epoch_exit();
    return found ? INV_OK : INV_ENOTFOUND;
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
        rc = default_set(e, loc, NULL, &pos);
    epoch_exit();
    assert(rc <= INV_OK && (pos == 0 || e->jr != NULL)); /* a position only with a journal */
    return rc == INV_OK && pos ? persist_ack(e, pos) : rc;
}

bool catalog_location_exists(catalog *c, uint64_t loc)
{
    assert(c != NULL);
    return rec_get(&c->locations, loc) != NULL;
}

bool catalog_location_active(catalog *c, uint64_t loc)
{
    assert(c != NULL);
    const loc_rec *r = rec_get(&c->locations, loc);
    return r && r->active;
}

typedef struct {
    int (*fn)(void *ctx, uint64_t item);
    void *ctx;
} item_visit;

static int foreach_item_visit(void *p, uint64_t a, uint64_t b, table_word v)
{
    assert(p != NULL);
    (void)b;
    const item_visit *iv = p;
    return table_is_live(v) ? iv->fn(iv->ctx, a) : 0;
}

int catalog_foreach_item(catalog *c, int (*fn)(void *ctx, uint64_t item), void *ctx)
{
    assert(c != NULL && fn != NULL);
    item_visit iv = {fn, ctx};
    return table_foreach(&c->items, foreach_item_visit, &iv);
}

int catalog_foreach_location(catalog *c, int (*fn)(void *ctx, uint64_t loc), void *ctx)
{
    assert(c != NULL && fn != NULL);
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

static void id_put(void *ids, size_t i, uint64_t id, uint64_t b, table_word v)
{
    assert(ids != NULL);
    ((uint64_t *)ids)[i] = id;
}

/* One page of the ids of t. More entries than ids_cap can only come from
 * ids sharing one 64-bit hash position (LIMIT then). */
static int id_list(table *t, uint64_t cursor, size_t count, uint64_t *ids, size_t ids_cap,
                   size_t *n_out, uint64_t *next_cursor)
{
    assert(t != NULL);
    epoch_enter();
    int rc = table_scan_page(t, cursor, count, ids, ids_cap, id_put, n_out, next_cursor);
    epoch_exit();
    return rc;
}

int inv_location_list(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids, size_t ids_cap,
                      size_t *n_out, uint64_t *next_cursor)
{
    if (!e)
        return INV_EINVALID;
    int rc = id_list(&e->cat.locations, cursor, count, ids, ids_cap, n_out, next_cursor);
    assert(rc != INV_OK || *n_out <= ids_cap); /* a page within the caller's array */
    return rc;
}

int inv_item_list(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids, size_t ids_cap,
                  size_t *n_out, uint64_t *next_cursor)
{
    if (!e)
        return INV_EINVALID;
    int rc = id_list(&e->cat.items, cursor, count, ids, ids_cap, n_out, next_cursor);
    assert(rc != INV_OK || *n_out <= ids_cap);
    return rc;
}

/* ---- items -------------------------------------------------------------- */

static pthread_mutex_t *item_stripe(catalog *c, uint64_t item)
{
    assert(c != NULL);
    uint64_t h = (item ^ (item >> 31)) * 0x9e3779b97f4a7c15ULL;
    return &c->write_locks[(h >> 32) & (CATALOG_WRITE_STRIPES - 1)];
}

/* The level hooks, registered by engine.c before any item change. */
static const catalog_level_hooks *levels(catalog *c)
{
    assert(c != NULL);
    assert(c->level.drop_item && c->level.mark_tracked && c->level.item_reserved &&
           c->level.read_level && c->level.mark_location);
    return &c->level;
}

/* Releases the claims cl of r's strings (none left afterwards). */
static void item_release_claims(catalog *c, uint64_t item, const item_rec *r, item_claims *cl)
{
    assert(c != NULL && r != NULL && cl != NULL);
    if (cl->sku)
        index_release(c, &c->skus, record_item_str(r, IS_SKU), item);
    if (cl->variant)
        index_release(c, &c->variants, record_item_str(r, IS_VARIANT), item);
    if (cl->product)
        product_remove(c, record_item_str(r, IS_PRODUCT), item);
    *cl = (item_claims){false, false, false};
}

/* Claims the index entries r needs that old (NULL: none) did not have.
 * On failure nothing stays claimed. */
static int item_claim_keys(catalog *c, uint64_t item, const item_rec *old, const item_rec *r,
                           item_claims *cl)
{
    assert(c != NULL && r != NULL && cl != NULL);
    *cl = (item_claims){false, false, false};
    str_view sku = record_item_str(r, IS_SKU), var = record_item_str(r, IS_VARIANT);
    str_view prod = record_item_str(r, IS_PRODUCT);
    int rc = INV_OK;
    if (sku.len && !(old && str_view_eq(sku, record_item_str(old, IS_SKU))))
        rc = index_claim(c, &c->skus, IS_SKU, sku, item, &cl->sku);
    if (rc == INV_OK && var.len && !(old && str_view_eq(var, record_item_str(old, IS_VARIANT))))
        rc = index_claim(c, &c->variants, IS_VARIANT, var, item, &cl->variant);
    if (rc == INV_OK && prod.len && !(old && str_view_eq(prod, record_item_str(old, IS_PRODUCT))))
        rc = product_add(c, prod, item, &cl->product);
    if (rc != INV_OK)
        item_release_claims(c, item, r, cl);
    return rc;
}

/* After a swap from old to r (NULL: deleted): drops the entries of old's
 * strings that r no longer has. */
static void item_drop_keys(catalog *c, uint64_t item, const item_rec *old, const item_rec *r)
{
    assert(c != NULL && old != NULL);
    static const int keyed[3] = {IS_SKU, IS_VARIANT, IS_PRODUCT};
    for (int k = 0; k < 3; k++) {
        str_view was = record_item_str(old, keyed[k]);
        str_view now = r ? record_item_str(r, keyed[k]) : EMPTY;
        if (was.len == 0 || str_view_eq(was, now))
            continue;
        if (keyed[k] == IS_PRODUCT)
            product_remove(c, was, item);
        else
            index_release(c, keyed[k] == IS_SKU ? &c->skus : &c->variants, was, item);
    }
}

static int item_validate(const void *f, unsigned *wmask)
{
    assert(wmask != NULL);
    return record_item_validate(f, wmask);
}

/* Under the stripe only a growth freeze can make the CAS lose: the next
 * step call starts over from the value in the new array. */
static int item_prepare(put_ctx *p, uint32_t *len)
{
    assert(put_ok(p) && len != NULL);
    item_rec *r = record_item_build(p->sw.old, p->f, p->wmask, clock_wall_ms());
    if (!r)
        return INV_ENOMEM;
    p->sw.built = r;
    *len = record_item_len(r);
    return item_claim_keys(&p->e->cat, p->id, p->sw.old, r, &p->cl);
}

static void item_release(put_ctx *p)
{
    assert(put_ok(p) && p->sw.built != NULL);
    item_release_claims(&p->e->cat, p->id, p->sw.built, &p->cl);
}

/* Inside the item's stripe and an epoch section. */
static int item_done(put_ctx *p, uint64_t *pos)
{
    assert(put_ok(p) && pos != NULL);
    inv_engine *e = p->e;
    catalog *c = &e->cat;
    const item_rec *old = p->sw.old, *r = p->sw.built;
    /* Publish before anything else reserves a position: a thread
     * publishes its reservations in order (journal.h). */
    int rc = *pos ? publish_item(e, *pos, p->id, p->version, r) : INV_OK;
    if (old) {
        item_drop_keys(c, p->id, old, r);
        if (old->tracked != r->tracked) {
            uint64_t marked = levels(c)->mark_tracked(e, p->id, r->tracked);
            if (marked > *pos)
                *pos = marked; /* acknowledge once those are durable too */
        }
        epoch_retire(p->sw.old, free, c->owner);
    } else {
        table_note_created(&c->items); /* a new item has no levels to mark */
    }
    return rc;
}

static table *item_table(catalog *c)
{
    assert(c != NULL);
    return &c->items;
}

static const put_kind item_put = {item_validate, item_table,   item_stripe,
                                  item_prepare,  item_release, item_done};

int inv_item_put(inv_engine *e, uint64_t item, const inv_item_fields *f)
{
    int rc = put_call(e, &item_put, item, f, false);
    assert(rc <= INV_OK);
    return rc;
}

int inv_item_create(inv_engine *e, uint64_t item, const inv_item_fields *f)
{
    int rc = put_call(e, &item_put, item, f, true);
    assert(rc <= INV_OK);
    return rc;
}

/* A journaled whole-record change of an item under its stripe (a delete,
 * or the undoing of one): rec is the record the deciding step call
 * replaced (delete) or puts back (restore). */
typedef struct {
    item_rec *rec;
    uint64_t version;
    stamp st;
} item_stamp_ctx;

static int item_del_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    item_stamp_ctx *x = ctx;
    stamp_abandon(&x->st); /* the previous call's CAS lost */
    if (!table_is_live(cur))
        return INV_ENOTFOUND;
    x->rec = word_rec(cur);
    return stamp_write(&x->st, cur, record_item_len(NULL), 0, TABLE_TOMB, &x->version, next);
}

static int item_restore_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    item_stamp_ctx *x = ctx;
    stamp_abandon(&x->st); /* the previous call's CAS lost */
    /* The empty word: no slot holds the key any more (a growth dropped the
     * tombstone); answered before reserving anything. */
    if (cur.w0 == 0 && cur.w1 == 0)
        return INV_ENOTFOUND;
    return stamp_write(&x->st, cur, record_item_len(x->rec), rec_w0(x->rec), 0, &x->version, next);
}

/* Runs an item_stamp_ctx step on item; *pos: the change's position. */
static int item_stamped(inv_engine *e, uint64_t item, table_step_fn step, item_stamp_ctx *x,
                        uint64_t *pos)
{
    assert(e != NULL && step != NULL && x != NULL && pos != NULL);
    int rc = table_update(&e->cat.items, item, 0, false, NULL, step, x, NULL);
    if (rc != TABLE_STEP_WRITE) {
        assert(rc < 0); /* neither step keeps, nor writes an absent key */
        stamp_abandon(&x->st);
        return rc;
    }
    *pos = x->st.pos;
    return INV_OK;
}

/* Undoes a deletion just made under the item's stripe: the tombstone goes
 * back to the old record (its index entries were not touched), journaled.
 * *pos becomes the restoring change's position. */
static int item_restore(inv_engine *e, uint64_t item, item_rec *old, uint64_t *pos)
{
    assert(e != NULL && old != NULL && pos != NULL);
    item_stamp_ctx x = {old, 0, {e, 0, 0}};
    int rc = item_stamped(e, item, item_restore_step, &x, pos);
    if (rc != INV_OK)
        return rc;
    table_note_created(&e->cat.items);
    return *pos ? publish_item(e, *pos, item, x.version, old) : INV_OK;
}

/* Marks the item deleted first (level creation re-checks it), then drops
 * its levels, then its index entries. */
static int item_del_locked(inv_engine *e, uint64_t item, uint64_t *pos)
{
    assert(e != NULL && pos != NULL);
    catalog *c = &e->cat;
    item_stamp_ctx x = {NULL, 0, {e, 0, 0}};
    int rc = item_stamped(e, item, item_del_step, &x, pos);
    if (rc != INV_OK)
        return rc;
    item_rec *old = x.rec;
    table_note_deleted(&c->items);
    /* Publish before the level deletions reserve theirs (in order). */
    rc = *pos ? publish_item(e, *pos, item, x.version, NULL) : INV_OK;
    if (rc == INV_OK && levels(c)->item_reserved(e, item)) {
        /* Live holds count on its stock (checked after the tombstone: a
         * hold that reserves later sees the item gone and backs out). Put
         * the item back and refuse. */
        rc = item_restore(e, item, old, pos);
        return rc == INV_OK ? INV_ECONFLICT : rc;
    }
    uint64_t dropped = levels(c)->drop_item(e, item);
    if (dropped > *pos)
        *pos = dropped; /* acknowledge once the level deletions are durable */
    item_drop_keys(c, item, old, NULL);
    epoch_retire(old, free, c->owner);
    return rc;
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
    assert(rc <= INV_OK && (pos == 0 || e->jr != NULL));
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

int inv_item_get(inv_engine *e, uint64_t item, inv_item *out)
{
    if (!e || !out)
        return INV_EINVALID;
    epoch_enter();
    const item_rec *r = rec_get(&e->cat.items, item);
    if (r)
        record_item_out(item, r, out);
    epoch_exit();
    assert(!r || out->id == item);
    return r ? INV_OK : INV_ENOTFOUND;
}

static int by_string(inv_engine *e, const char *s, size_t max, int field, uint64_t *item_out)
{
    assert(e != NULL); /* item_out: checked by the caller's API */
    str_view key;
    if (!e || !item_out || record_str_arg(s, max, &key) != INV_OK)
        return INV_EINVALID;
    table *t = field == IS_SKU ? &e->cat.skus : &e->cat.variants;
    epoch_enter();
    int rc = index_lookup(&e->cat, t, field, key, item_out);
    epoch_exit();
    return rc;
}

int inv_item_by_sku(inv_engine *e, const char *sku, uint64_t *item_out)
{
    int rc = by_string(e, sku, INV_SKU_MAX, IS_SKU, item_out);
    assert(rc <= INV_OK);
    return rc;
}

int inv_item_by_variant(inv_engine *e, const char *variant, uint64_t *item_out)
{
    int rc = by_string(e, variant, INV_VARIANT_MAX, IS_VARIANT, item_out);
    assert(rc <= INV_OK);
    return rc;
}

bool catalog_item_exists(catalog *c, uint64_t item, bool *tracked)
{
    assert(c != NULL);
    const item_rec *r = rec_get(&c->items, item);
    if (r && tracked)
        *tracked = r->tracked;
    return r != NULL;
}

/* ---- products ----------------------------------------------------------- */

/* The live record of item if it still belongs to product name (a product
 * record may briefly list an item whose change is in flight). */
static const item_rec *product_member(catalog *c, str_view name, uint64_t item)
{
    assert(c != NULL);
    const item_rec *r = rec_get(&c->items, item);
    return r && str_view_eq(record_item_str(r, IS_PRODUCT), name) ? r : NULL;
}

int inv_product_items(inv_engine *e, const char *product, uint64_t *items, size_t cap,
                      size_t *n_out)
{
    str_view name;
    if (!e || !n_out || (!items && cap) ||
        record_str_arg(product, INV_VARIANT_MAX, &name) != INV_OK)
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

/* Appends x->item's row (has_level false: the item has no level). */
static void stock_row(stock_ctx *x, uint64_t loc, int64_t available, bool has_level)
{
    assert(x != NULL && (x->rows != NULL || x->cap == 0)); /* n counts past cap */
    assert(x->r != NULL);
    if (x->n < x->cap) {
        inv_stock_row *row = &x->rows[x->n];
        str_view_copy(row->variant, sizeof row->variant, record_item_str(x->r, IS_VARIANT));
        row->item = x->item;
        row->location = loc;
        row->available = available;
        row->has_level = has_level;
    }
    x->n++;
}

static int stock_one(void *p, uint64_t loc)
{
    assert(p != NULL);
    stock_ctx *x = p;
    inv_level level;
    if (levels(&x->e->cat)->read_level(x->e, x->item, loc, &level) != INV_OK)
        return 0; /* no level of the item here */
    if (x->r->tracked)
        x->total += level.available;
    stock_row(x, loc, level.available, true);
    return 0;
}

/* Rows of every member of p, items and locations in id order; a member
 * without a level (at only_loc) gets one row saying so. */
static int stock_rows(stock_ctx *x, const product_rec *p, str_view name, const uint64_t *only_loc)
{
    assert(x != NULL && product_ok(p));
    catalog *c = &x->e->cat;
    if (only_loc && !catalog_location_exists(c, *only_loc))
        return INV_ENOTFOUND;
    for (size_t i = 0; i < p->n; i++) {
        x->item = p->ids[i];
        x->r = product_member(c, name, x->item);
        if (!x->r)
            continue;
        size_t before = x->n;
        if (only_loc)
            (void)stock_one(x, *only_loc);
        else
            (void)catalog_foreach_location(c, stock_one, x);
        if (x->n == before)
            stock_row(x, 0, 0, false);
        assert(x->n > before); /* every member appears */
    }
    return INV_OK;
}

int inv_product_inventory(inv_engine *e, const char *product, const uint64_t *only_loc,
                          inv_stock_row *rows, size_t cap, size_t *n_out, int64_t *total_out)
{
    str_view name;
    if (!e || !n_out || !total_out || (!rows && cap) ||
        record_str_arg(product, INV_VARIANT_MAX, &name) != INV_OK)
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

/* A version a payload may carry: a journal position the table can hold. */
static bool version_ok(uint64_t version)
{
    return version != 0 && version <= TABLE_VERSION_MAX;
}

/* Installs rec (NULL: a tombstone) as (id, 0) of t if version is above the
 * loaded one; rec is consumed either way. */
static int install(catalog *c, table *t, uint64_t id, uint64_t version, void *rec)
{
    assert(c != NULL && t != NULL); /* rec NULL: a tombstone */
    if (!version_ok(version)) {
        free(rec);
        return INV_EINVALID;
    }
    table_word want = {rec_w0(rec), rec ? version : version | TABLE_TOMB};
    newer_ctx x = {want, {0, 0}};
    int rc = table_update(t, id, 0, true, NULL, newer_step, &x, NULL);
    if (rc != TABLE_STEP_WRITE) {
        free(rec); /* kept: what is loaded is as new or newer */
        return rc == TABLE_STEP_KEEP ? INV_OK : rc;
    }
    bool was_live = table_is_live(x.seen);
    if (was_live)
        epoch_retire(word_rec(x.seen), free, c->owner);
    if (!was_live && rec)
        table_note_created(t);
    if (was_live && !rec)
        table_note_deleted(t);
    return INV_OK;
}

static int replay_default(catalog *c, const void *payload, uint32_t len)
{
    assert(c != NULL);
    uint64_t id, version;
    int rc = record_default_decode(payload, len, &id, &version, NULL);
    if (rc != INV_OK)
        return rc;
    if (!version_ok(version))
        return INV_EINVALID;
    newer_ctx x = {{id, version}, {0, 0}};
    (void)lone_update(&c->default_location, newer_step, &x);
    return INV_OK;
}

int catalog_replay(catalog *c, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    assert(c != NULL);
    uint64_t id, version;
    int rc;
    if (type == PERSIST_ITEM) {
        item_rec *r;
        rc = record_item_decode(payload, len, &id, &version, &r);
        return rc == INV_OK ? install(c, &c->items, id, version, r) : rc;
    }
    if (type == PERSIST_LOCATION) {
        loc_rec *r;
        rc = record_loc_decode(payload, len, &id, &version, &r);
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
    assert(ctx != NULL);
    catalog *c = ctx;
    const item_rec *r = word_rec(v);
    str_view sku = record_item_str(r, IS_SKU), var = record_item_str(r, IS_VARIANT);
    str_view prod = record_item_str(r, IS_PRODUCT);
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
    assert(c != NULL);
    return table_foreach(&c->items, rebuild_one, c);
}

static int snapshot_item(void *w, uint64_t item, uint64_t b, table_word v)
{
    assert(w != NULL);
    uint8_t buf[RECORD_PAYLOAD_MAX];
    uint32_t len = record_item_encode(buf, item, table_version(v), word_rec(v));
    return snapshot_add(w, PERSIST_ITEM, buf, len);
}

static int snapshot_location(void *w, uint64_t loc, uint64_t b, table_word v)
{
    assert(w != NULL);
    uint8_t buf[RECORD_PAYLOAD_MAX];
    uint32_t len = record_loc_encode(buf, loc, table_version(v), word_rec(v));
    return snapshot_add(w, PERSIST_LOCATION, buf, len);
}

int catalog_snapshot(catalog *c, snapshot_writer *w)
{
    assert(c != NULL && w != NULL);
    int rc = table_foreach(&c->locations, snapshot_location, w);
    if (rc == INV_OK)
        rc = table_foreach(&c->items, snapshot_item, w);
    table_word v = table_load(&c->default_location);
    if (rc == INV_OK && table_version(v) != 0) {
        uint8_t buf[RECORD_DEFAULT_LEN];
        /* time 0: a snapshot holds the state, not when it was changed */
        uint32_t len = record_default_encode(buf, v.w0, table_version(v), 0);
        rc = snapshot_add(w, PERSIST_DEFAULT, buf, len);
    }
    return rc;
}

/* ---- life cycle --------------------------------------------------------- */

static int free_record(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    assert(table_is_live(v)); /* table_foreach visits live entries only */
    free(word_rec(v));
    return 0;
}

int catalog_init(catalog *c, const inv_config *cfg, const void *owner)
{
    assert(c != NULL);
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

void catalog_set_level_hooks(catalog *c, const catalog_level_hooks *hooks)
{
    assert(c != NULL && hooks != NULL);
    assert(hooks && hooks->drop_item && hooks->mark_tracked && hooks->item_reserved &&
           hooks->read_level && hooks->mark_location);
    c->level = *hooks;
}

void catalog_destroy(catalog *c)
{
    assert(c != NULL);
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
