/*
 * test_table.c — the lock-free hash table (core/table.c) through its
 * private API: keys that look like sentinels, values by 16-byte CAS,
 * tombstones, growth from a tiny capacity, capacity hints, cursor scans
 * (also across growth between pages), foreach, and a concurrent run of
 * inserts, finds and CAS increments while the table grows several times.
 *
 * Values follow the table's contract: w1's version is >= 1 for a live value
 * and changes on every CAS; the tests keep the payload in w0. Every table
 * access runs inside an epoch section, as the contract requires.
 */
#include "test_util.h"

#include "epoch.h"
#include "table.h"

static const char table_owner_tag = 't';
#define OWNER ((const void *)&table_owner_tag)

/* ---- helpers (each call is one epoch section) ---------------------- */

/* The helpers that write go through table_update, so every test here
 * (the concurrent growth tests included) exercises the one update loop. */
typedef struct {
    uint64_t val; /* put: the payload; inc: the amount */
    bool was_live; /* the value the winning step saw was live */
} upd_ctx;

static int put_step(void *p, table_word cur, table_word *next)
{
    upd_ctx *c = p;
    c->was_live = table_is_live(cur);
    *next = (table_word){c->val, table_version(cur) + 1};
    return TABLE_STEP_WRITE;
}

/* Creates or replaces (a, b) -> val; true when the key was absent. */
static bool tput(table *t, uint64_t a, uint64_t b, uint64_t val)
{
    upd_ctx c = {val, false};
    epoch_enter();
    int rc = table_update(t, a, b, true, NULL, put_step, &c, NULL);
    cr_assert_eq(rc, TABLE_STEP_WRITE, "table_update(%llu, %llu): %d", (unsigned long long)a,
                 (unsigned long long)b, rc);
    if (!c.was_live)
        table_note_created(t);
    epoch_exit();
    return !c.was_live;
}

static int inc_step(void *p, table_word cur, table_word *next)
{
    upd_ctx *c = p;
    c->was_live = table_is_live(cur);
    *next = (table_word){(c->was_live ? cur.w0 : 0) + c->val, table_version(cur) + 1};
    return TABLE_STEP_WRITE;
}

/* Adds by to (a, b)'s payload (absent counts as 0). Usable from any thread:
 * reports problems with TU_CHECK. Returns the new payload. */
static uint64_t tinc(table *t, uint64_t a, uint64_t b, uint64_t by)
{
    upd_ctx c = {by, false};
    table_word out = {0, 0};
    epoch_enter();
    int rc = table_update(t, a, b, true, NULL, inc_step, &c, &out);
    TU_CHECK(rc == TABLE_STEP_WRITE, "table_update(%llu, %llu): %d", (unsigned long long)a,
             (unsigned long long)b, rc);
    if (rc == TABLE_STEP_WRITE && !c.was_live)
        table_note_created(t);
    epoch_exit();
    return out.w0;
}

/* The payload of a live (a, b). */
static bool tget(table *t, uint64_t a, uint64_t b, uint64_t *val)
{
    epoch_enter();
    bool found = false;
    table_slot *s = table_find(t, a, b);
    if (s) {
        table_word v = table_load(s); /* a frozen value is still the latest */
        if (table_is_live(v)) {
            found = true;
            if (val)
                *val = v.w0;
        }
    }
    epoch_exit();
    return found;
}

/* The raw value word of (a, b)'s slot; false when no slot holds the key. */
static bool tword(table *t, uint64_t a, uint64_t b, table_word *out)
{
    epoch_enter();
    table_slot *s = table_find(t, a, b);
    if (s)
        *out = table_load(s);
    epoch_exit();
    return s != NULL;
}

static int del_step(void *p, table_word cur, table_word *next)
{
    (void)p;
    if (!table_is_live(cur))
        return INV_ENOTFOUND;
    *next = (table_word){0, (table_version(cur) + 1) | TABLE_TOMB};
    return TABLE_STEP_WRITE;
}

/* Deletes (a, b): live -> tombstone keeping the version. */
static bool tdel(table *t, uint64_t a, uint64_t b)
{
    epoch_enter();
    int rc = table_update(t, a, b, false, NULL, del_step, NULL, NULL);
    if (rc == TABLE_STEP_WRITE)
        table_note_deleted(t);
    epoch_exit();
    return rc == TABLE_STEP_WRITE;
}

static uint64_t tresizes(table *t)
{
    /* relaxed: a statistic, read with no writer running. */
    return atomic_load_explicit(&t->resizes, memory_order_relaxed);
}

static void tinit(table *t, size_t hint)
{
    cr_assert_eq(table_init(t, hint, OWNER), INV_OK);
}

static void tfree(table *t)
{
    table_destroy(t);
    epoch_drain_owner(OWNER); /* arrays retired by growth */
}

/* A key spread over the whole 128-bit space, distinct for distinct i. */
static void key_of(uint64_t i, uint64_t *a, uint64_t *b)
{
    *a = i * 0x9e3779b97f4a7c15ull + 2; /* odd multiplier: a bijection */
    *b = ~i;
}

/* ---- basic keys and values ------------------------------------------ */

static const uint64_t odd_keys[][2] = {
    {0, 0},
    {0, 1},
    {0, 2},
    {1, 0},
    {1, 1},
    {UINT64_MAX, UINT64_MAX},
    {UINT64_MAX, 0},
    {0, UINT64_MAX},
    {UINT64_MAX, 1},
    {1, UINT64_MAX},
    {UINT64_MAX - 1, UINT64_MAX},
};
#define N_ODD_KEYS (sizeof odd_keys / sizeof odd_keys[0])

Test(table, sentinel_like_keys_work_like_any_key)
{
    table t;
    tinit(&t, 0);
    for (size_t i = 0; i < N_ODD_KEYS; i++)
        cr_expect(!tget(&t, odd_keys[i][0], odd_keys[i][1], NULL), "key %zu found before insert",
                  i);
    for (size_t i = 0; i < N_ODD_KEYS; i++)
        cr_expect(tput(&t, odd_keys[i][0], odd_keys[i][1], 100 + i), "key %zu not created", i);
    for (size_t i = 0; i < N_ODD_KEYS; i++) {
        uint64_t v = 0;
        cr_expect(tget(&t, odd_keys[i][0], odd_keys[i][1], &v), "key %zu missing", i);
        cr_expect_eq(v, 100 + i, "key %zu holds %llu", i, (unsigned long long)v);
    }
    cr_expect_eq(table_live(&t), (int64_t)N_ODD_KEYS);
    /* Replacing is not creating. */
    for (size_t i = 0; i < N_ODD_KEYS; i++)
        cr_expect(!tput(&t, odd_keys[i][0], odd_keys[i][1], 200 + i));
    for (size_t i = 0; i < N_ODD_KEYS; i++) {
        uint64_t v = 0;
        cr_expect(tget(&t, odd_keys[i][0], odd_keys[i][1], &v));
        cr_expect_eq(v, 200 + i);
    }
    tfree(&t);
}

Test(table, slot_key_reports_the_key_it_holds)
{
    table t;
    tinit(&t, 0);
    for (size_t i = 0; i < N_ODD_KEYS; i++) {
        (void)tput(&t, odd_keys[i][0], odd_keys[i][1], i + 1);
        epoch_enter();
        table_slot *s = table_find(&t, odd_keys[i][0], odd_keys[i][1]);
        uint64_t a = 7, b = 7;
        if (s)
            table_slot_key(s, &a, &b);
        epoch_exit();
        cr_assert_not_null(s);
        cr_expect(a == odd_keys[i][0] && b == odd_keys[i][1], "key %zu reads back as (%llu, %llu)",
                  i, (unsigned long long)a, (unsigned long long)b);
    }
    tfree(&t);
}

/* A 64-byte slot (16 key + 16 value + 32 extra, the level table's) is one
 * cache line only if it starts one: the array's slots are line-aligned,
 * in the first array and in every array growth makes. */
#define WIDE_EXTRA_BYTES 32
#define WIDE_KEYS 5000 /* from a tiny capacity: several growths */

static void move_wide_extra(void *from_extra, void *to_extra)
{
    memcpy(to_extra, from_extra, WIDE_EXTRA_BYTES);
}

Test(table, every_slot_of_a_64_byte_stride_starts_a_cache_line)
{
    table t;
    cr_assert_eq(table_init_extra(&t, 0, OWNER, WIDE_EXTRA_BYTES, move_wide_extra), INV_OK);
    for (uint64_t i = 0; i < WIDE_KEYS; i++) {
        uint64_t a, b;
        key_of(i, &a, &b);
        cr_assert(tput(&t, a, b, i + 1));
        epoch_enter();
        table_slot *slot = table_find(&t, a, b);
        uintptr_t at = (uintptr_t)slot;
        epoch_exit();
        cr_assert_not_null(slot);
        cr_assert_eq(at % 64, 0, "key %llu's slot starts at byte %llu of its line",
                     (unsigned long long)i, (unsigned long long)(at % 64));
    }
    tfree(&t);
}

Test(table, cas_with_a_stale_expected_fails_and_reports_the_current_value)
{
    table t;
    tinit(&t, 0);
    for (size_t i = 0; i < N_ODD_KEYS; i++) {
        epoch_enter();
        table_slot *s = table_insert(&t, odd_keys[i][0], odd_keys[i][1]);
        cr_assert_not_null(s);
        table_word absent = table_load(s);
        cr_expect(!table_is_live(absent), "key %zu live before any CAS", i);
        table_word first = {41, table_version(absent) + 1};
        table_word exp = absent;
        cr_expect(table_cas(s, &exp, first));
        /* A CAS from the old word fails and hands back the current one. */
        exp = absent;
        cr_expect(!table_cas(s, &exp, (table_word){99, table_version(absent) + 2}));
        cr_expect(exp.w0 == first.w0 && exp.w1 == first.w1, "key %zu: expected refreshed", i);
        /* With the refreshed word it succeeds. */
        table_word second = {42, table_version(exp) + 1};
        cr_expect(table_cas(s, &exp, second));
        table_word now = table_load(s);
        cr_expect(now.w0 == 42 && table_version(now) == table_version(first) + 1);
        cr_expect(table_is_live(now) && !table_is_frozen(now));
        epoch_exit();
    }
    tfree(&t);
}

Test(table, missing_keys_are_not_found)
{
    table t;
    tinit(&t, 0);
    for (uint64_t i = 0; i < 1000; i++)
        (void)tput(&t, i + 10, i, i);
    for (uint64_t i = 0; i < 1000; i++) {
        cr_expect(!tget(&t, i + 10, i + 1, NULL));
        cr_expect(!tget(&t, i + 5000, i, NULL));
    }
    tfree(&t);
}

/* ---- growth and capacity hints -------------------------------------- */

Test(table, grows_from_a_tiny_capacity_and_keeps_every_key)
{
    table t;
    tinit(&t, 0);
    uint64_t n = tu_iters_min(200000, 20000);
    size_t bytes0 = table_bytes(&t);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a, b;
        key_of(i, &a, &b);
        cr_assert(tput(&t, a, b, i * 3 + 1), "key %llu created twice", (unsigned long long)i);
    }
    cr_expect_geq(tresizes(&t), 3, "only %llu resizes", (unsigned long long)tresizes(&t));
    cr_expect_eq(table_live(&t), (int64_t)n);
    cr_expect_gt(table_bytes(&t), bytes0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a, b, v = 0;
        key_of(i, &a, &b);
        cr_assert(tget(&t, a, b, &v), "key %llu lost in growth", (unsigned long long)i);
        cr_assert_eq(v, i * 3 + 1, "key %llu holds %llu", (unsigned long long)i,
                     (unsigned long long)v);
    }
    for (uint64_t i = n; i < n + 1000; i++) {
        uint64_t a, b;
        key_of(i, &a, &b);
        cr_expect(!tget(&t, a, b, NULL));
    }
    tfree(&t);
}

Test(table, a_capacity_hint_of_n_absorbs_n_keys_without_resizing)
{
    static const size_t hints[] = {1,  2,  3,   11,   12,   13,    14,   15,
                                   16, 17, 100, 1000, 4097, 12345, 50000};
    for (size_t h = 0; h < sizeof hints / sizeof hints[0]; h++) {
        table t;
        tinit(&t, hints[h]);
        for (uint64_t i = 0; i < hints[h]; i++) {
            uint64_t a, b;
            key_of(i, &a, &b);
            (void)tput(&t, a, b, i + 1);
        }
        cr_expect_eq(tresizes(&t), 0, "hint %zu: %llu resizes", hints[h],
                     (unsigned long long)tresizes(&t));
        /* The sentinel-like keys live aside and never count. */
        (void)tput(&t, 0, 0, 1);
        (void)tput(&t, 0, 1, 1);
        cr_expect_eq(tresizes(&t), 0, "hint %zu: sentinel keys caused a resize", hints[h]);
        /* Far beyond the hint, the table grows. */
        for (uint64_t i = hints[h]; i < 2 * hints[h] + 64; i++) {
            uint64_t a, b;
            key_of(i, &a, &b);
            (void)tput(&t, a, b, i + 1);
        }
        cr_expect_gt(tresizes(&t), 0, "hint %zu: no growth past twice the hint", hints[h]);
        for (uint64_t i = 0; i < 2 * hints[h] + 64; i++) {
            uint64_t a, b, v = 0;
            key_of(i, &a, &b);
            cr_expect(tget(&t, a, b, &v) && v == i + 1, "hint %zu: key %llu lost", hints[h],
                      (unsigned long long)i);
        }
        tfree(&t);
    }
}

Test(table, a_capacity_hint_beyond_the_maximum_is_refused)
{
    table t;
    cr_expect_eq(table_init(&t, (size_t)TABLE_CAPACITY_MAX, OWNER), INV_ENOMEM);
    /* hints whose slot count overflows 64 bits must not wrap to a small
     * table (an engine config or a snapshot's counts can carry them) */
    cr_expect_eq(table_init(&t, SIZE_MAX, OWNER), INV_ENOMEM);
    cr_expect_eq(table_init(&t, SIZE_MAX / 4 * 3 + 7, OWNER), INV_ENOMEM);
}

/* ---- tombstones ------------------------------------------------------ */

Test(table, delete_leaves_a_tombstone_and_a_recreated_key_continues_its_version)
{
    table t;
    tinit(&t, 0);
    for (size_t i = 0; i < N_ODD_KEYS; i++) {
        uint64_t a = odd_keys[i][0], b = odd_keys[i][1];
        (void)tput(&t, a, b, 1);
        (void)tput(&t, a, b, 2);
        (void)tput(&t, a, b, 3);
        table_word w;
        cr_assert(tword(&t, a, b, &w));
        uint64_t ver = table_version(w);
        cr_expect_eq(ver, 3, "key %zu version %llu after 3 writes", i, (unsigned long long)ver);
        cr_expect(tdel(&t, a, b));
        cr_expect(!tdel(&t, a, b), "key %zu deleted twice", i);
        cr_expect(!tget(&t, a, b, NULL), "key %zu found after delete", i);
        cr_assert(tword(&t, a, b, &w));
        cr_expect(w.w1 & TABLE_TOMB, "key %zu: no tombstone", i);
        cr_expect(!table_is_live(w));
        cr_expect_gt(table_version(w), ver, "key %zu: tombstone lost the version", i);
        cr_expect(tput(&t, a, b, 7), "key %zu: re-create is not a creation", i);
        uint64_t v = 0;
        cr_expect(tget(&t, a, b, &v) && v == 7);
        cr_assert(tword(&t, a, b, &w));
        cr_expect_gt(table_version(w), ver + 1, "key %zu: re-created version %llu", i,
                     (unsigned long long)table_version(w));
    }
    cr_expect_eq(table_live(&t), (int64_t)N_ODD_KEYS);
    tfree(&t);
}

Test(table, growth_drops_tombstones_and_keeps_live_keys)
{
    table t;
    tinit(&t, 0);
    uint64_t n = tu_iters_min(20000, 4000);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a, b;
        key_of(i, &a, &b);
        (void)tput(&t, a, b, i + 1);
    }
    for (uint64_t i = 0; i < n; i += 2) {
        uint64_t a, b;
        key_of(i, &a, &b);
        cr_assert(tdel(&t, a, b));
    }
    cr_expect_eq(table_live(&t), (int64_t)(n / 2));
    uint64_t r0 = tresizes(&t);
    for (uint64_t i = n; i < 4 * n; i++) {
        uint64_t a, b;
        key_of(i, &a, &b);
        (void)tput(&t, a, b, i + 1);
    }
    cr_expect_gt(tresizes(&t), r0);
    for (uint64_t i = 0; i < 4 * n; i++) {
        uint64_t a, b, v = 0;
        key_of(i, &a, &b);
        bool deleted = i < n && i % 2 == 0;
        bool found = tget(&t, a, b, &v);
        cr_assert_eq(found, !deleted, "key %llu: found %d", (unsigned long long)i, found);
        if (found)
            cr_assert_eq(v, i + 1);
    }
    /* Deleted keys can come back after growth dropped their tombstones. */
    for (uint64_t i = 0; i < n; i += 2) {
        uint64_t a, b, v = 0;
        key_of(i, &a, &b);
        cr_expect(tput(&t, a, b, 5));
        cr_expect(tget(&t, a, b, &v) && v == 5);
    }
    cr_expect_eq(table_live(&t), (int64_t)(4 * n));
    tfree(&t);
}

/* ---- scans ------------------------------------------------------------ */

/* Keys of the scan tests: index i <-> (i + 2, i ^ 0x5a5a), plus the two
 * sentinel-like keys (0, 0) and (0, 1) at indexes n and n + 1. */
typedef struct {
    uint32_t *seen; /* visits per index */
    uint64_t n; /* indexes >= n + 2 are foreign */
    uint64_t foreign, bad_value;
} visit_ctx;

static void scan_key(uint64_t i, uint64_t n, uint64_t *a, uint64_t *b)
{
    if (i < n) {
        *a = i + 2;
        *b = i ^ 0x5a5a;
    } else {
        *a = 0;
        *b = i - n;
    }
}

static int visit(void *p, uint64_t a, uint64_t b, table_word v)
{
    visit_ctx *c = p;
    uint64_t i;
    if (a == 0 && b <= 1)
        i = c->n + b;
    else if (a >= 2 && a - 2 < c->n && b == ((a - 2) ^ 0x5a5a))
        i = a - 2;
    else {
        c->foreign++;
        return 0;
    }
    if (v.w0 != i + 1 || !table_is_live(v))
        c->bad_value++;
    c->seen[i]++;
    return 0;
}

static void scan_all(table *t, size_t page, visit_ctx *c, size_t *pages)
{
    uint64_t cursor = 0;
    *pages = 0;
    do {
        uint64_t next = 0;
        epoch_enter();
        int rc = table_scan(t, cursor, page, visit, c, &next);
        epoch_exit();
        cr_assert_eq(rc, INV_OK, "table_scan: %d", rc);
        cr_assert(next == 0 || next > cursor, "cursor went back: %llu -> %llu",
                  (unsigned long long)cursor, (unsigned long long)next);
        cursor = next;
        cr_assert_lt(++*pages, 10000000, "scan does not end");
    } while (cursor != 0);
}

Test(table, scan_with_cursors_visits_every_live_key_exactly_once)
{
    static const size_t pages[] = {1, 2, 7, 64, 1000, 100000};
    uint64_t n = tu_iters_min(20000, 3000);
    table t;
    tinit(&t, 0);
    for (uint64_t i = 0; i < n + 2; i++) {
        uint64_t a, b;
        scan_key(i, n, &a, &b);
        (void)tput(&t, a, b, i + 1);
    }
    /* A few deleted keys must not show. */
    for (uint64_t i = 0; i < n; i += 97) {
        uint64_t a, b;
        scan_key(i, n, &a, &b);
        cr_assert(tdel(&t, a, b));
    }
    uint32_t *seen = calloc(n + 2, sizeof *seen);
    cr_assert_not_null(seen);
    for (size_t p = 0; p < sizeof pages / sizeof pages[0]; p++) {
        memset(seen, 0, (n + 2) * sizeof *seen);
        visit_ctx c = {seen, n, 0, 0};
        size_t n_pages;
        scan_all(&t, pages[p], &c, &n_pages);
        cr_expect_eq(c.foreign, 0);
        cr_expect_eq(c.bad_value, 0);
        for (uint64_t i = 0; i < n + 2; i++) {
            uint32_t want = i < n && i % 97 == 0 ? 0 : 1;
            cr_assert_eq(seen[i], want, "page %zu: key %llu visited %u times", pages[p],
                         (unsigned long long)i, seen[i]);
        }
        if (pages[p] >= 64)
            cr_expect_geq(n_pages, (n - n / 97) / pages[p], "page %zu: %zu pages", pages[p],
                          n_pages);
    }
    free(seen);
    tfree(&t);
}

Test(table, scan_of_an_empty_table_ends_at_once)
{
    table t;
    tinit(&t, 0);
    uint64_t next = 1;
    visit_ctx c = {NULL, 0, 0, 0};
    epoch_enter();
    int rc = table_scan(&t, 0, 10, visit, &c, &next);
    epoch_exit();
    cr_expect_eq(rc, INV_OK);
    cr_expect_eq(next, 0);
    cr_expect_eq(c.foreign, 0);
    tfree(&t);
}

Test(table, scan_refuses_zero_entries_per_page)
{
    table t;
    tinit(&t, 0);
    (void)tput(&t, 5, 5, 1);
    uint64_t next = 0;
    visit_ctx c = {NULL, 0, 0, 0};
    epoch_enter();
    int rc = table_scan(&t, 0, 0, visit, &c, &next);
    epoch_exit();
    cr_expect_eq(rc, INV_EINVALID);
    tfree(&t);
}

static int stop_at_third(void *p, uint64_t a, uint64_t b, table_word v)
{
    (void)a, (void)b, (void)v;
    return ++*(int *)p == 3 ? 42 : 0;
}

Test(table, scan_and_foreach_stop_when_the_visitor_says_so)
{
    table t;
    tinit(&t, 0);
    for (uint64_t i = 0; i < 100; i++)
        (void)tput(&t, i + 2, i, i + 1);
    int calls = 0;
    uint64_t next = 0;
    epoch_enter();
    int rc = table_scan(&t, 0, 50, stop_at_third, &calls, &next);
    epoch_exit();
    cr_expect_eq(rc, 42);
    cr_expect_eq(calls, 3);
    calls = 0;
    epoch_enter();
    rc = table_foreach(&t, stop_at_third, &calls);
    epoch_exit();
    cr_expect_eq(rc, 42);
    cr_expect_eq(calls, 3);
    tfree(&t);
}

Test(table, scan_stays_exact_when_the_table_grows_between_pages)
{
    /* Keys 0..n-1 exist for the whole scan; keys n+2.. are added between
     * pages (the "foreign" range of the visitor is widened to see them). */
    uint64_t n = tu_iters_min(4000, 1000);
    uint64_t extra_max = 40 * n;
    table t;
    tinit(&t, 0);
    for (uint64_t i = 0; i < n + 2; i++) {
        uint64_t a, b;
        scan_key(i, n, &a, &b);
        (void)tput(&t, a, b, i + 1);
    }
    uint64_t total = n + 2 + extra_max;
    uint32_t *seen = calloc(total, sizeof *seen);
    cr_assert_not_null(seen);
    uint64_t r0 = tresizes(&t), added = 0, cursor = 0;
    size_t pages = 0;
    do {
        /* Added keys are foreign to the visitor: only the n + 2 keys
         * present for the whole scan are counted. */
        visit_ctx c = {seen, n, 0, 0};
        uint64_t next = 0;
        epoch_enter();
        int rc = table_scan(&t, cursor, 50, visit, &c, &next);
        epoch_exit();
        cr_assert_eq(rc, INV_OK);
        cr_expect_eq(c.bad_value, 0);
        cursor = next;
        /* Grow: add keys outside the visitor's range between pages. */
        for (uint64_t k = 0; k < n / 8 && added < extra_max; k++, added++)
            (void)tput(&t, 1ull << 40 | added, added, 1);
        cr_assert_lt(++pages, 1000000);
    } while (cursor != 0);
    cr_expect_gt(tresizes(&t), r0 + 1, "the table grew only %llu times during the scan",
                 (unsigned long long)(tresizes(&t) - r0));
    for (uint64_t i = 0; i < n + 2; i++)
        cr_assert_eq(seen[i], 1, "key %llu visited %u times", (unsigned long long)i, seen[i]);
    free(seen);
    tfree(&t);
}

/* Counts visits to added keys too, to check "at most once" for them. */
typedef struct {
    uint32_t *seen_old, *seen_new;
    uint64_t n_old, n_new, foreign;
} mixed_ctx;

static int visit_mixed(void *p, uint64_t a, uint64_t b, table_word v)
{
    mixed_ctx *c = p;
    (void)v;
    if (a >= 2 && a - 2 < c->n_old && b == ((a - 2) ^ 0x5a5a))
        c->seen_old[a - 2]++;
    else if ((a >> 40) == 1 && (a & ((1ull << 40) - 1)) == b && b < c->n_new)
        c->seen_new[b]++;
    else
        c->foreign++;
    return 0;
}

Test(table, scan_across_growth_returns_keys_added_meanwhile_at_most_once)
{
    uint64_t n = tu_iters_min(3000, 800), n_new = 30 * n;
    table t;
    tinit(&t, 0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a, b;
        scan_key(i, n, &a, &b);
        (void)tput(&t, a, b, i + 1);
    }
    mixed_ctx c = {calloc(n, sizeof(uint32_t)), calloc(n_new, sizeof(uint32_t)), n, n_new, 0};
    cr_assert(c.seen_old && c.seen_new);
    uint64_t cursor = 0, added = 0;
    size_t pages = 0;
    do {
        uint64_t next = 0;
        epoch_enter();
        int rc = table_scan(&t, cursor, 33, visit_mixed, &c, &next);
        epoch_exit();
        cr_assert_eq(rc, INV_OK);
        cursor = next;
        for (uint64_t k = 0; k < n / 4 && added < n_new; k++, added++)
            (void)tput(&t, 1ull << 40 | added, added, 1);
        cr_assert_lt(++pages, 1000000);
    } while (cursor != 0);
    cr_expect_eq(c.foreign, 0);
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(c.seen_old[i], 1, "old key %llu visited %u times", (unsigned long long)i,
                     c.seen_old[i]);
    for (uint64_t i = 0; i < n_new; i++)
        cr_assert_leq(c.seen_new[i], 1, "added key %llu visited %u times", (unsigned long long)i,
                      c.seen_new[i]);
    free(c.seen_old);
    free(c.seen_new);
    tfree(&t);
}

Test(table, foreach_visits_every_live_key_once)
{
    uint64_t n = tu_iters_min(30000, 3000);
    table t;
    tinit(&t, 0);
    for (uint64_t i = 0; i < n + 2; i++) {
        uint64_t a, b;
        scan_key(i, n, &a, &b);
        (void)tput(&t, a, b, i + 1);
    }
    for (uint64_t i = 1; i < n; i += 13) {
        uint64_t a, b;
        scan_key(i, n, &a, &b);
        cr_assert(tdel(&t, a, b));
    }
    uint32_t *seen = calloc(n + 2, sizeof *seen);
    cr_assert_not_null(seen);
    visit_ctx c = {seen, n, 0, 0};
    epoch_enter();
    int rc = table_foreach(&t, visit, &c);
    epoch_exit();
    cr_expect_eq(rc, INV_OK);
    cr_expect_eq(c.foreign, 0);
    cr_expect_eq(c.bad_value, 0);
    for (uint64_t i = 0; i < n + 2; i++) {
        uint32_t want = i < n && i % 13 == 1 ? 0 : 1;
        cr_assert_eq(seen[i], want, "key %llu visited %u times", (unsigned long long)i, seen[i]);
    }
    free(seen);
    tfree(&t);
}

/* ---- concurrency ------------------------------------------------------ */

#define CT_WRITERS 4
#define CT_READERS 2
#define CT_SHARED 257 /* counters every writer increments */
#define CT_SHARED_A (1ull << 50)

typedef struct {
    table t;
    uint64_t own_keys; /* keys per writer */
    uint64_t shared_incs; /* shared increments per writer */
    uint64_t rounds; /* increments per own key */
    uint64_t shared_count[CT_WRITERS][CT_SHARED]; /* per writer, its own tally */
    _Atomic int writers_done;
} ct_ctx;

/* Own keys of writer w: (w + 2, j). Shared keys: (CT_SHARED_A, j). */
static void ct_writer(ct_ctx *c, size_t w)
{
    tu_rng r = tu_rng_seed(w * 31 + 7);
    for (uint64_t round = 0; round < c->rounds; round++) {
        for (uint64_t j = 0; j < c->own_keys; j++) {
            uint64_t now = tinc(&c->t, w + 2, j, 1);
            TU_CHECK(now == round + 1, "writer %zu key %llu: %llu after %llu increments", w,
                     (unsigned long long)j, (unsigned long long)now, (unsigned long long)round + 1);
            /* Interleave the shared counters with the inserts. */
            if (j % 4 == 0 && c->shared_incs) {
                uint64_t k = tu_rng_below(&r, CT_SHARED);
                (void)tinc(&c->t, CT_SHARED_A, k, 1);
                c->shared_count[w][k]++;
            }
            if (j % 1024 == 0)
                epoch_reclaim();
        }
    }
    /* acq_rel: publishes nothing the readers rely on; counts finishers. */
    atomic_fetch_add_explicit(&c->writers_done, 1, memory_order_acq_rel);
}

static void ct_reader(ct_ctx *c, size_t idx)
{
    tu_rng r = tu_rng_seed(idx * 1000 + 3);
    uint64_t probes = 0, max_probes = 50 * c->own_keys;
    /* acquire: pairs with the writers' count. */
    while (atomic_load_explicit(&c->writers_done, memory_order_acquire) < CT_WRITERS &&
           probes++ < max_probes) {
        uint64_t w = tu_rng_below(&r, CT_WRITERS), j = tu_rng_below(&r, c->own_keys);
        epoch_enter();
        table_slot *s = table_find(&c->t, w + 2, j);
        if (s) {
            uint64_t a, b;
            table_slot_key(s, &a, &b);
            TU_CHECK(a == w + 2 && b == j, "find(%llu, %llu) returned the slot of (%llu, %llu)",
                     (unsigned long long)(w + 2), (unsigned long long)j, (unsigned long long)a,
                     (unsigned long long)b);
            table_word v = table_load(s);
            if (table_is_live(v))
                TU_CHECK(v.w0 >= 1 && v.w0 <= c->rounds && table_version(v) >= 1,
                         "key (%llu, %llu): payload %llu version %llu", (unsigned long long)a,
                         (unsigned long long)b, (unsigned long long)v.w0,
                         (unsigned long long)table_version(v));
        }
        epoch_exit();
        if (probes % 4096 == 0)
            epoch_reclaim();
    }
}

static void ct_thread(void *arg, size_t i)
{
    ct_ctx *c = arg;
    if (i < CT_WRITERS)
        ct_writer(c, i);
    else
        ct_reader(c, i - CT_WRITERS);
}

static int ct_count(void *p, uint64_t a, uint64_t b, table_word v)
{
    uint64_t *counts = p; /* [0] own keys seen, [1] shared seen, [2] other */
    (void)b, (void)v;
    if (a >= 2 && a < 2 + CT_WRITERS)
        counts[0]++;
    else if (a == CT_SHARED_A)
        counts[1]++;
    else
        counts[2]++;
    return 0;
}

Test(table, concurrent_inserts_finds_and_cas_through_growth_lose_nothing, .timeout = 120)
{
    ct_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    tinit(&c->t, 0);
    c->own_keys = tu_iters_min(20000, 2000);
    c->rounds = 3;
    c->shared_incs = 1;
    tu_run_threads(CT_WRITERS + CT_READERS, ct_thread, c);
    tu_assert_no_failures();
    cr_expect_geq(tresizes(&c->t), 3, "only %llu resizes", (unsigned long long)tresizes(&c->t));
    /* Every own key once, with every increment. */
    for (size_t w = 0; w < CT_WRITERS; w++)
        for (uint64_t j = 0; j < c->own_keys; j++) {
            uint64_t v = 0;
            cr_assert(tget(&c->t, w + 2, j, &v), "key (%zu, %llu) lost", w + 2,
                      (unsigned long long)j);
            cr_assert_eq(v, c->rounds, "key (%zu, %llu): %llu of %llu increments", w + 2,
                         (unsigned long long)j, (unsigned long long)v,
                         (unsigned long long)c->rounds);
        }
    /* Shared counters: the sum of every writer's tally. */
    uint64_t shared_keys = 0;
    for (size_t k = 0; k < CT_SHARED; k++) {
        uint64_t want = 0, v = 0;
        for (size_t w = 0; w < CT_WRITERS; w++)
            want += c->shared_count[w][k];
        bool found = tget(&c->t, CT_SHARED_A, k, &v);
        if (want) {
            shared_keys++;
            cr_assert(found, "shared key %zu lost", k);
            cr_assert_eq(v, want, "shared key %zu: %llu of %llu increments", k,
                         (unsigned long long)v, (unsigned long long)want);
        } else
            cr_assert(!found, "shared key %zu appeared from nowhere", k);
    }
    /* Each key exactly once in the table. */
    uint64_t counts[3] = {0, 0, 0};
    epoch_enter();
    cr_expect_eq(table_foreach(&c->t, ct_count, counts), INV_OK);
    epoch_exit();
    cr_expect_eq(counts[0], CT_WRITERS * c->own_keys);
    cr_expect_eq(counts[1], shared_keys);
    cr_expect_eq(counts[2], 0);
    cr_expect_eq(table_live(&c->t), (int64_t)(CT_WRITERS * c->own_keys + shared_keys));
    tfree(&c->t);
    free(c);
}

/* Threads delete and re-create their own keys while others insert new ones
 * (growth): every key ends in the state its owner left it. */
#define CD_THREADS 4

typedef struct {
    table t;
    uint64_t keys; /* per thread */
    uint64_t rounds;
} cd_ctx;

static void cd_thread(void *arg, size_t w)
{
    cd_ctx *c = arg;
    for (uint64_t round = 0; round < c->rounds; round++) {
        for (uint64_t j = 0; j < c->keys; j++) {
            uint64_t a = (w + 2) << 32 | round, b = j;
            (void)tinc(&c->t, a, b, 1); /* a new key: growth */
            /* The churned key (w + 2, j): created on even rounds, deleted
             * on odd ones. */
            if (round % 2 == 0)
                TU_CHECK(tinc(&c->t, w + 2, j, 1) == 1,
                         "thread %zu key %llu: a re-created key kept its old payload", w,
                         (unsigned long long)j);
            else {
                epoch_enter();
                table_slot *s = table_find(&c->t, w + 2, j);
                bool deleted = false;
                for (int tries = 0; s && tries < 1000 && !deleted; tries++) {
                    table_word v = table_load(s);
                    if (table_is_frozen(v)) {
                        table_settle(&c->t, s);
                        s = table_find(&c->t, w + 2, j);
                        continue;
                    }
                    TU_CHECK(table_is_live(v), "thread %zu key %llu not live before delete", w,
                             (unsigned long long)j);
                    if (!table_is_live(v))
                        break;
                    table_word tomb = {0, (table_version(v) + 1) | TABLE_TOMB};
                    if (table_cas(s, &v, tomb)) {
                        table_note_deleted(&c->t);
                        deleted = true;
                    }
                }
                epoch_exit();
                TU_CHECK(deleted, "thread %zu key %llu: delete failed", w, (unsigned long long)j);
            }
        }
        epoch_reclaim();
    }
}

Test(table, concurrent_deletes_and_recreates_through_growth_keep_each_owners_state, .timeout = 120)
{
    cd_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    tinit(&c->t, 0);
    c->keys = tu_iters_min(3000, 500);
    c->rounds = 5; /* odd: the churned keys end live */
    tu_run_threads(CD_THREADS, cd_thread, c);
    tu_assert_no_failures();
    cr_expect_gt(tresizes(&c->t), 0);
    for (size_t w = 0; w < CD_THREADS; w++)
        for (uint64_t j = 0; j < c->keys; j++) {
            uint64_t v = 0;
            cr_assert(tget(&c->t, w + 2, j, &v), "churned key (%zu, %llu) missing", w + 2,
                      (unsigned long long)j);
            cr_assert_eq(v, 1);
            for (uint64_t round = 0; round < c->rounds; round++)
                cr_assert(tget(&c->t, (w + 2) << 32 | round, j, &v) && v == 1,
                          "key round %llu (%zu, %llu) lost", (unsigned long long)round, w,
                          (unsigned long long)j);
        }
    cr_expect_eq(table_live(&c->t), (int64_t)(CD_THREADS * c->keys * (c->rounds + 1)));
    tfree(&c->t);
    free(c);
}

/* ---- table_update's answers ------------------------------------------------ */

static int keep_step(void *p, table_word cur, table_word *next)
{
    (void)p, (void)next;
    return table_is_live(cur) ? TABLE_STEP_KEEP : INV_ECONFLICT;
}

Test(table, update_answers_write_keep_refusal_and_no_key)
{
    table t;
    tinit(&t, 4);
    upd_ctx c = {7, false};
    table_word out;
    epoch_enter();
    cr_assert_eq(table_update(&t, 1, 2, false, NULL, put_step, &c, &out), TABLE_UPDATE_NO_KEY,
                 "find never claims a key");
    cr_assert_eq(table_update(&t, 1, 2, false, NULL, keep_step, NULL, &out), INV_ECONFLICT,
                 "an absent key is shown as the empty word");
    cr_assert(out.w0 == 0 && out.w1 == 0);
    cr_assert_eq(table_update(&t, 1, 2, true, NULL, put_step, &c, &out), TABLE_STEP_WRITE);
    cr_assert(out.w0 == 7 && table_version(out) == 1);
    cr_assert_eq(table_update(&t, 1, 2, false, NULL, keep_step, NULL, &out), TABLE_STEP_KEEP);
    cr_assert(out.w0 == 7 && table_version(out) == 1, "a kept value is reported unchanged");
    table_memo memo = {0};
    c.val = 9;
    cr_assert_eq(table_update(&t, 1, 2, false, &memo, put_step, &c, &out), TABLE_STEP_WRITE);
    cr_assert(out.w0 == 9 && table_version(out) == 2);
    epoch_exit();
    tfree(&t);
}
