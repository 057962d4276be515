/*
 * table.c — lock-free open-addressing hash table with cooperative growth.
 * The contract is in table.h; this file keeps these invariants:
 *
 *  - A slot's key goes EMPTY -> key, or EMPTY -> MOVED_EMPTY, once, by CAS.
 *    So probing that meets an empty (or moved-empty) slot proves the key is
 *    not further along: keys are placed at the first empty slot they meet.
 *  - A slot's value changes only by CAS. Once FROZEN, nothing but the
 *    migration (setting MOVED) changes it, so a frozen value is the latest.
 *  - Only the current array (t->current) can start growing, and an array's
 *    next array starts growing only after it became current. A value is
 *    copied into the next array by CAS from the never-written word (0, 0),
 *    so the first copy wins and a late helper cannot overwrite newer data.
 *  - Writers move to the next array for a key only after its old slot is
 *    MOVED (or was proven absent by killing an empty slot), so no write is
 *    ever lost in an array that is being abandoned.
 *  - An array is retired exactly once: by the thread whose CAS of
 *    t->current from it to its successor succeeds.
 */
#include "alloc.h"
#include "table.h"

#include "epoch.h"
#include "invcore.h"
#include "vec.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Arrays at least this large ask for transparent huge pages. */
#define TABLE_HUGE_PAGE_BYTES (2u << 20)

/* Slots migrated per claimed chunk: bounds the extra work one insert does. */
#define TABLE_MIGRATE_CHUNK 1024

#define KEY_EMPTY ((unsigned __int128)0)
#define KEY_MOVED_EMPTY ((unsigned __int128)1 << 64)

static inline unsigned __int128 key_pack(uint64_t a, uint64_t b)
{
    return ((unsigned __int128)b << 64) | a;
}

static inline bool key_is_special(uint64_t a, uint64_t b)
{
    return a == 0 && b <= 1;
}

/* The slot of special key (0, b), b <= 1. */
static inline table_slot *special_slot(table *t, uint64_t b)
{
    assert(b <= 1);
    return (table_slot *)(void *)t->special[b];
}

/* Asserts only: t as table_init_extra set it up. The stride is a slot and
 * its extra bytes (a multiple of 16 within TABLE_SLOT_BYTES_MAX), extra
 * bytes exactly when there is a hook to move them, and the moved-empty
 * sentinel's entry keyed (0, 1) aside. Reads only fields written before t
 * was shared (plain reads: nobody writes them after init). */
static bool table_ok(const table *t)
{
    const table_slot *moved_empty = (const table_slot *)(const void *)t->special[1];
    return t != NULL && t->stride >= sizeof(table_slot) && t->stride <= TABLE_SLOT_BYTES_MAX &&
           t->stride % 16 == 0 && (t->stride == sizeof(table_slot)) == (t->move_extra == NULL) &&
           moved_empty->key.half[1] == 1;
}

/* Asserts only: arr's header as array_new built it for slots of stride
 * bytes: 64-byte aligned inside its allocation, a capacity within the
 * table's limits, slots_end one past the last slot, growth starting
 * before the array is full and fresh inserts of a successor stopping no
 * later than that. Reads only fields fixed before arr was published. */
static bool array_ok(const table_array *arr, size_t stride)
{
    return arr != NULL && ((uintptr_t)arr & 63) == 0 && ((uintptr_t)arr->slots & 63) == 0 &&
           (const char *)arr >= (const char *)arr->raw &&
           (const char *)arr - (const char *)arr->raw < 64 && arr->capacity >= TABLE_CAPACITY_MIN &&
           arr->capacity <= TABLE_CAPACITY_MAX && arr->stride == stride &&
           arr->slots_end == (const char *)arr->slots + arr->capacity * arr->stride &&
           arr->grow_at < arr->capacity && arr->fresh_limit <= arr->grow_at;
}

static inline uint64_t hash_key(const table *t, uint64_t a, uint64_t b)
{
    uint64_t k[2] = {a, b};
    return XXH3_64bits_withSeed(k, sizeof k, t->seed);
}

/* The multiply-shift reduction: monotonic in h. */
static inline size_t home_of(uint64_t h, size_t capacity)
{
    size_t home = (size_t)(((unsigned __int128)h * capacity) >> 64);
    /* Hot (every probe): one compare; h < 2^64 keeps it in range. */
    assert(home < capacity);
    return home;
}

/* A consistent key read: the key changes at most once, from (0, 0) whose
 * low half is 0, so an unchanged low half around the high half read proves
 * both halves belong to one state. */
static inline unsigned __int128 key_load(const table_slot *s)
{
    for (;;) {
        /* acquire: later reads of this slot see what the claimer wrote. */
        uint64_t a = __atomic_load_n(&s->key.half[0], __ATOMIC_ACQUIRE);
        /* acquire: keeps the re-read of the low half after this read. */
        uint64_t b = __atomic_load_n(&s->key.half[1], __ATOMIC_ACQUIRE);
        /* relaxed: ordered by the acquire above. */
        if (__atomic_load_n(&s->key.half[0], __ATOMIC_RELAXED) == a)
            return key_pack(a, b);
    }
}

static inline bool key_cas(table_slot *s, unsigned __int128 expected, unsigned __int128 desired)
{
    /* A key goes EMPTY -> key or EMPTY -> MOVED_EMPTY, once (file comment). */
    assert(expected == KEY_EMPTY && desired != KEY_EMPTY);
    /* lock cmpxchg16b: a full barrier; publishes the key whole. */
    return __sync_bool_compare_and_swap(&s->key.whole, expected, desired);
}

/* Slots for entries at the load factor; above TABLE_CAPACITY_MAX it stays
 * above it (never wraps), so array_new refuses it. */
static size_t capacity_for(size_t entries)
{
    unsigned __int128 cap =
        ((unsigned __int128)entries * TABLE_LOAD_DEN + TABLE_LOAD_NUM - 1) / TABLE_LOAD_NUM;
    if (cap > TABLE_CAPACITY_MAX)
        return TABLE_CAPACITY_MAX + 1;
    size_t slots = cap < TABLE_CAPACITY_MIN ? TABLE_CAPACITY_MIN : (size_t)cap;
    /* entries fit below the load factor (array_new's grow_at) */
    assert(slots >= TABLE_CAPACITY_MIN &&
           (unsigned __int128)slots * TABLE_LOAD_NUM / TABLE_LOAD_DEN >= entries);
    return slots;
}

static table_array *array_new(size_t capacity, size_t stride)
{
    assert(capacity >= TABLE_CAPACITY_MIN); /* capacity_for's floor */
    assert(stride >= sizeof(table_slot) && stride <= TABLE_SLOT_BYTES_MAX && stride % 16 == 0);
    if (capacity > TABLE_CAPACITY_MAX)
        return NULL;
    size_t bytes = sizeof(table_array) + capacity * stride + 64;
    /* calloc: jemalloc hands large zeroed runs straight from the kernel. */
    void *raw = inv_calloc(1, bytes);
    if (!raw)
        return NULL;
    table_array *arr = (table_array *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    if (bytes >= TABLE_HUGE_PAGE_BYTES) {
        /* Random probes over a large array miss the TLB on every lookup;
         * transparent huge pages cut that. Advice only: failure is fine. */
        uintptr_t lo =
            ((uintptr_t)raw + TABLE_HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(TABLE_HUGE_PAGE_BYTES - 1);
        uintptr_t hi = ((uintptr_t)raw + bytes) & ~(uintptr_t)(TABLE_HUGE_PAGE_BYTES - 1);
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
    arr->raw = raw;
    arr->capacity = capacity;
    arr->stride = stride;
    arr->slots_end = (const char *)arr->slots + capacity * stride;
    arr->grow_at = (size_t)(((unsigned __int128)capacity * TABLE_LOAD_NUM) / TABLE_LOAD_DEN);
    assert(array_ok(arr, stride));
    assert(arr->slots_end <= (const char *)raw + bytes); /* the slots fit the allocation */
    return arr;
}

static void array_free(void *p)
{
    table_array *arr = p;
    assert(arr != NULL && arr->raw != NULL && (const char *)arr - (const char *)arr->raw < 64);
    free(arr->raw);
}

int table_init_extra(table *t, size_t capacity_hint, const void *owner, size_t extra_bytes,
                     table_move_extra_fn move_extra)
{
    assert(extra_bytes % 16 == 0 && extra_bytes <= TABLE_EXTRA_MAX);
    assert((extra_bytes == 0) == (move_extra == NULL));
    memset(t, 0, sizeof *t);
    if (getrandom(&t->seed, sizeof t->seed, 0) != sizeof t->seed)
        t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ULL;
    t->owner = owner;
    t->stride = sizeof(table_slot) + extra_bytes;
    t->move_extra = move_extra;
    table_array *arr = array_new(capacity_for(capacity_hint), t->stride);
    if (!arr)
        return INV_ENOMEM;
    atomic_init(&t->current, arr);
    special_slot(t, 1)->key.half[1] = 1; /* the moved-empty key, kept aside */
    assert(table_ok(t) && array_ok(arr, t->stride));
    return INV_OK;
}

void table_keep_unlive(table *t, table_keep_unlive_fn keep)
{
    assert(table_ok(t) && t->move_extra != NULL); /* the extra bytes say so */
    t->keep_unlive = keep;
}

int table_init(table *t, size_t capacity_hint, const void *owner)
{
    int rc = table_init_extra(t, capacity_hint, owner, 0, NULL);
    assert(rc != INV_OK || t->stride == sizeof(table_slot)); /* no extra bytes */
    return rc;
}

int table_reserve(table *t, size_t n)
{
    assert(table_ok(t));
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    assert(array_ok(arr, t->stride));
    size_t cap = capacity_for(n);
    if (cap <= arr->capacity || atomic_load_explicit(&arr->claimed, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&arr->next, memory_order_acquire) != NULL)
        return INV_OK; /* big enough, or not empty: growth will do */
    table_array *bigger = array_new(cap, t->stride);
    if (!bigger)
        return INV_ENOMEM;
    assert(bigger->capacity >= cap && bigger->capacity > arr->capacity);
    /* release: the new (zeroed) array; nobody else uses t yet. */
    atomic_store_explicit(&t->current, bigger, memory_order_release);
    array_free(arr);
    return INV_OK;
}

void table_destroy(table *t)
{
    assert(t != NULL);
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    while (arr) {
        assert(array_ok(arr, t->stride));
        table_array *next = atomic_load_explicit(&arr->next, memory_order_acquire);
        array_free(arr);
        arr = next;
    }
    atomic_store_explicit(&t->current, NULL, memory_order_relaxed);
    /* relaxed (assert only): our own store; nobody else uses t. */
    assert(atomic_load_explicit(&t->current, memory_order_relaxed) == NULL);
}

/* ---- probing ------------------------------------------------------------ */

/* Does slot s hold key (a, b)? Fast path for the common case: a claimed
 * slot's low half is never 0 for a key whose low half is not 0, so one
 * acquire load of each half decides; low half 0 needs the consistent read
 * (an empty slot, or a key (0, b), being claimed under us). *empty: the
 * slot is empty or moved-empty (end of the probe). */
static inline bool slot_holds(const table_slot *s, uint64_t a, uint64_t b, bool *empty)
{
    /* acquire: a matching key's slot contents are read after it. */
    uint64_t la = __atomic_load_n(&s->key.half[0], __ATOMIC_ACQUIRE);
    if (la != 0) {
        *empty = false;
        /* acquire: the key was published whole by one CAS. */
        return la == a && __atomic_load_n(&s->key.half[1], __ATOMIC_ACQUIRE) == b;
    }
    unsigned __int128 k = key_load(s);
    *empty = k == KEY_EMPTY || k == KEY_MOVED_EMPTY;
    return k == key_pack(a, b);
}

/* Probes arr for key (a, b) from h's home: its slot, or NULL when absent,
 * *end then being the empty (or moved-empty) slot that ended the probe
 * (NULL: none, every slot was probed). Hot path of every lookup: no
 * allocation, no lock, no store. */
static inline table_slot *array_probe(table_array *arr, uint64_t h, uint64_t a, uint64_t b,
                                      table_slot **end)
{
    /* Hot: register compares only (special keys live outside arrays); the
     * array header check (array_ok) is left to the growth paths. */
    assert(!key_is_special(a, b));
    size_t cap = arr->capacity, i = home_of(h, cap);
    *end = NULL;
    for (size_t n = 0; n < cap; n++) {
        table_slot *s = table_array_slot(arr, i);
        bool empty;
        if (slot_holds(s, a, b, &empty))
            return s;
        if (empty) {
            *end = s;
            return NULL;
        }
        if (++i == cap)
            i = 0;
    }
    return NULL;
}

/* As array_probe in an array that is being migrated: an empty slot met on
 * the way is killed (made MOVED_EMPTY) so no late claimer can put the key
 * behind our back. */
static table_slot *array_find_killing(table_array *arr, uint64_t h, unsigned __int128 key)
{
    assert(key != KEY_EMPTY && key != KEY_MOVED_EMPTY);
    /* relaxed (assert only): the caller read the successor with acquire. */
    assert(atomic_load_explicit(&arr->next, memory_order_relaxed) != NULL);
    size_t cap = arr->capacity, i = home_of(h, cap);
    for (size_t n = 0; n < cap;) {
        table_slot *s = table_array_slot(arr, i);
        unsigned __int128 k = key_load(s);
        if (k == key)
            return s;
        if (k == KEY_MOVED_EMPTY)
            return NULL;
        if (k == KEY_EMPTY) {
            if (key_cas(s, KEY_EMPTY, KEY_MOVED_EMPTY))
                return NULL;
            continue; /* claimed meanwhile: look at it again */
        }
        n++;
        if (++i == cap)
            i = 0;
    }
    return NULL;
}

enum { CLAIM_OK, CLAIM_GROW, CLAIM_FULL };

/* Finds or claims key in arr. A fresh insert stops at limit (CLAIM_GROW);
 * a migration copy passes SIZE_MAX (its array was sized for it). */
static int array_claim(table_array *arr, uint64_t h, unsigned __int128 key, size_t limit,
                       table_slot **out)
{
    assert(key != KEY_EMPTY && key != KEY_MOVED_EMPTY && out != NULL);
    /* a fresh insert's limit is a share of this array; a copy passes none */
    assert(limit == SIZE_MAX || limit <= arr->grow_at);
    size_t cap = arr->capacity, i = home_of(h, cap);
    for (size_t n = 0; n < cap;) {
        table_slot *s = table_array_slot(arr, i);
        unsigned __int128 k = key_load(s);
        if (k == key) {
            *out = s;
            return CLAIM_OK;
        }
        if (k == KEY_MOVED_EMPTY)
            return CLAIM_GROW; /* a migration runs: go to the next array */
        if (k == KEY_EMPTY) {
            /* relaxed: the threshold is a heuristic; overshoot by a few
             * concurrent claims is harmless. */
            if (atomic_load_explicit(&arr->claimed, memory_order_relaxed) >= limit)
                return CLAIM_GROW;
            if (key_cas(s, KEY_EMPTY, key)) {
                /* relaxed: only the growth heuristic reads it. */
                atomic_fetch_add_explicit(&arr->claimed, 1, memory_order_relaxed);
                *out = s;
                return CLAIM_OK;
            }
            continue; /* lost the slot: look at it again */
        }
        n++;
        if (++i == cap)
            i = 0;
    }
    return CLAIM_FULL;
}

/* ---- migration ---------------------------------------------------------- */

static void publish_next(table *t, table_array *arr)
{
    table_array *next = atomic_load_explicit(&arr->next, memory_order_acquire);
    assert(next != NULL && next != arr && array_ok(next, t->stride));
    table_array *expected = arr;
    /* acq_rel: readers that load the new current see the copied slots; the
     * single successful CAS makes its thread the one that retires arr. */
    if (atomic_compare_exchange_strong_explicit(&t->current, &expected, next, memory_order_acq_rel,
                                                memory_order_acquire)) {
        /* relaxed: a statistic. */
        atomic_fetch_add_explicit(&t->resizes, 1, memory_order_relaxed);
        epoch_retire(arr, array_free, t->owner);
    }
    /* Ours or another's CAS moved current past arr (which stays allocated
     * while we are in our epoch section). relaxed (assert only): current
     * changes only forward. */
    assert(atomic_load_explicit(&t->current, memory_order_relaxed) != arr);
}

static void version_floor_raise(table *t, uint64_t version)
{
    /* relaxed: a monotonic maximum; creators read it before their CAS, and
     * the CAS of the slot they create orders nothing else. */
    assert(version <= TABLE_VERSION_MAX);
    uint64_t cur = atomic_load_explicit(&t->version_floor, memory_order_relaxed);
    while (cur < version &&
           !atomic_compare_exchange_weak_explicit(&t->version_floor, &cur, version,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    /* The loop's postcondition: the floor is at least version (it only
     * grows). relaxed (assert only): the same variable, read after our own
     * CAS or load, is never older than it. */
    assert(atomic_load_explicit(&t->version_floor, memory_order_relaxed) >= version);
}

uint64_t table_version_floor(table *t)
{
    /* relaxed: see version_floor_raise. */
    uint64_t floor = atomic_load_explicit(&t->version_floor, memory_order_relaxed);
    assert(floor <= TABLE_VERSION_MAX); /* a version, raised only by versions */
    return floor;
}

/* Freezes s (in arr, which is being migrated), copies a live value into the
 * next array, and marks s MOVED. Idempotent; any thread may do it. */
static void settle_in(table *t, table_array *arr, uint64_t h, table_slot *s)
{
    assert(table_array_has(arr, s));
    table_word v = table_load(s);
    while (!(v.w1 & TABLE_FROZEN)) {
        table_word frozen = {v.w0, v.w1 | TABLE_FROZEN};
        if (table_cas(s, &v, frozen)) {
            v = frozen;
            break;
        }
    }
    /* The loop's postcondition: v is the slot's final, frozen value (only
     * MOVED may still be set on it). */
    assert(table_is_frozen(v));
    if (v.w1 & TABLE_MOVED)
        return;
    bool live = table_is_live(v);
    if (live || (t->keep_unlive && t->keep_unlive(table_slot_extra(s)))) {
        /* acquire: the next array was published before any slot froze. */
        table_array *next = atomic_load_explicit(&arr->next, memory_order_acquire);
        assert(next != NULL);
        table_slot *ns = NULL;
        int claimed = array_claim(next, h, key_load(s), SIZE_MAX, &ns);
        /* The successor keeps room for every copy (fresh_limit: every key
         * claimed here, written or not), so a copy always finds a slot;
         * marking s MOVED without it would lose it. */
        assert(claimed == CLAIM_OK);
        if (claimed != CLAIM_OK)
            return;
        assert(table_array_has(next, ns));
        if (t->move_extra && !table_is_live(table_load(ns)))
            t->move_extra(table_slot_extra(s), table_slot_extra(ns));
        table_word never_written = {0, 0};
        /* First copy wins; a failure means the key was already copied (or
         * a kept slot's value written since: a creation in the copy). A
         * never-written slot copies its key and extra bytes only. */
        if (live || (v.w1 & TABLE_TOMB))
            (void)table_cas(ns, &never_written,
                            (table_word){v.w0, v.w1 & ~(TABLE_FROZEN | TABLE_MOVED)});
    } else if (v.w1 & TABLE_TOMB) {
        version_floor_raise(t, table_version(v)); /* growth drops the tombstone */
    }
    (void)table_cas(s, &v, (table_word){v.w0, v.w1 | TABLE_MOVED});
    /* Ours or another helper's CAS marked it: a frozen word can change
     * only that way. */
    assert(table_load(s).w1 & TABLE_MOVED);
}

static void migrate_slot(table *t, table_array *arr, size_t i)
{
    assert(i < arr->capacity);
    table_slot *s = table_array_slot(arr, i);
    for (;;) {
        unsigned __int128 k = key_load(s);
        if (k == KEY_MOVED_EMPTY)
            return;
        if (k != KEY_EMPTY) {
            /* a claimed key in an array is never a special key */
            assert(!key_is_special((uint64_t)k, (uint64_t)(k >> 64)));
            settle_in(t, arr, hash_key(t, (uint64_t)k, (uint64_t)(k >> 64)), s);
            return;
        }
        if (key_cas(s, KEY_EMPTY, KEY_MOVED_EMPTY))
            return;
    }
}

/* Migrates one chunk of arr, if any is left; publishes when all are done.
 * Returns false when no chunk was left to claim. */
static bool help_migrate(table *t, table_array *arr)
{
    assert(array_ok(arr, t->stride));
    size_t cap = arr->capacity;
    /* relaxed: the counter only hands out disjoint chunks. */
    size_t start =
        atomic_fetch_add_explicit(&arr->copy_cursor, TABLE_MIGRATE_CHUNK, memory_order_relaxed);
    if (start >= cap)
        return false;
    assert(start % TABLE_MIGRATE_CHUNK == 0); /* the cursor moves by whole chunks */
    size_t end = start + TABLE_MIGRATE_CHUNK < cap ? start + TABLE_MIGRATE_CHUNK : cap;
    assert(start < end && end <= cap);
    for (size_t i = start; i < end; i++)
        migrate_slot(t, arr, i);
    /* acq_rel: the thread that completes the count sees every chunk done. */
    size_t done = atomic_fetch_add_explicit(&arr->copy_done, end - start, memory_order_acq_rel) +
                  (end - start);
    /* chunks are disjoint, so the count never passes the capacity */
    assert(done <= cap);
    if (done == cap)
        publish_next(t, arr);
    return true;
}

static int start_growth(table *t, table_array *arr)
{
    assert(table_ok(t) && array_ok(arr, t->stride));
    /* acquire: see the current array's header. */
    if (atomic_load_explicit(&t->current, memory_order_acquire) != arr) {
        /* arr is the successor of an array still migrating: finish that
         * first; arr may grow once it is current. */
        table_finish_growth(t);
        return INV_OK;
    }
    /* acquire: another thread may have published the successor already. */
    if (atomic_load_explicit(&arr->next, memory_order_acquire))
        return INV_OK;
    int64_t live = atomic_load_explicit(&t->live, memory_order_relaxed);
    size_t live_entries = live > 0 ? (size_t)live : 0;
    /* Room for every entry of arr plus as many fresh ones before the
     * migration must finish: copies never find the successor full. */
    size_t copies = atomic_load_explicit(&arr->claimed, memory_order_relaxed) + TABLE_CLAIM_SLACK;
    if (copies < live_entries)
        copies = live_entries;
    table_array *next = array_new(capacity_for(2 * copies + TABLE_CAPACITY_MIN), t->stride);
    if (!next)
        return INV_ENOMEM;
    /* sized for 2 * copies, so the copies fit below its threshold */
    assert(next->grow_at >= copies);
    next->fresh_limit = next->grow_at - copies;
    table_array *expected = NULL;
    /* release: publishes the zeroed array; acquire on failure: use the
     * winner's. */
    if (!atomic_compare_exchange_strong_explicit(&arr->next, &expected, next, memory_order_acq_rel,
                                                 memory_order_acquire))
        array_free(next);
    /* Ours or the winner's successor is published. relaxed (assert only):
     * the variable our CAS just read or wrote. */
    assert(atomic_load_explicit(&arr->next, memory_order_relaxed) != NULL);
    return INV_OK;
}

void table_finish_growth(table *t)
{
    assert(table_ok(t));
    for (;;) {
        /* acquire: see the array and its successor. */
        table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
        assert(array_ok(arr, t->stride));
        if (!atomic_load_explicit(&arr->next, memory_order_acquire))
            return;
        while (help_migrate(t, arr))
            ;
        if (atomic_load_explicit(&t->current, memory_order_acquire) != arr)
            continue;
        /* Chunks are held by threads that may be stalled: settle every slot
         * ourselves (idempotent) so completion never waits on them. */
        for (size_t i = 0; i < arr->capacity; i++)
            migrate_slot(t, arr, i);
        publish_next(t, arr);
    }
}

void table_settle(table *t, table_slot *s)
{
    /* growth was met: not a hot path, the table's header is checked */
    assert(table_ok(t) && s != NULL);
    table_word v = table_load(s);
    if (v.w1 & TABLE_MOVED)
        return;
    /* A frozen, unmoved slot belongs to an array still migrating, which is
     * the current one (an array is published only when all moved). */
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    for (; arr; arr = atomic_load_explicit(&arr->next, memory_order_acquire)) {
        if (table_array_has(arr, s)) {
            uint64_t a, b;
            table_slot_key(s, &a, &b);
            settle_in(t, arr, hash_key(t, a, b), s);
            return;
        }
    }
}

/* ---- find / insert ------------------------------------------------------ */

table_slot *table_find(table *t, uint64_t a, uint64_t b)
{
    if (key_is_special(a, b))
        return special_slot(t, b);
    uint64_t h = hash_key(t, a, b);
    /* acquire: the array header and its slots as published. */
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    for (;;) {
        table_slot *end;
        table_slot *s = array_probe(arr, h, a, b, &end);
        /* acquire: the successor's slots as published. No successor: no
         * slot here is moved (callers still meet a freeze that starts now,
         * through the value's flags). */
        table_array *next = atomic_load_explicit(&arr->next, memory_order_acquire);
        /* Hot: no assert here (an answer-in-arr check cost 4 instructions
         * per lookup, measured); array_probe's precondition covers it. */
        if (!next)
            return s;
        /* acquire: the MOVED flag only ever gets set; one load decides. */
        if (s && !(__atomic_load_n(&s->value.half[1], __ATOMIC_ACQUIRE) & TABLE_MOVED))
            return s;
        arr = next;
    }
}

table_slot *table_find_memo_miss(table *t, table_array *arr, uint64_t a, uint64_t b, table_memo *m)
{
    /* Hot (every lookup of a cold key): no assert, as table_find. */
    table_slot *s = table_find(t, a, b);
    m->t = NULL;
    if (s && table_array_has(arr, s))
        *m = (table_memo){t, arr, a, b, s};
    return s;
}

table_slot *table_insert(table *t, uint64_t a, uint64_t b)
{
    if (key_is_special(a, b))
        return special_slot(t, b);
    uint64_t h = hash_key(t, a, b);
    unsigned __int128 key = key_pack(a, b);
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    for (;;) {
        table_array *next = atomic_load_explicit(&arr->next, memory_order_acquire);
        if (next) {
            assert(next != arr);
            (void)help_migrate(t, arr);
            table_slot *s = array_find_killing(arr, h, key);
            if (s)
                settle_in(t, arr, h, s);
            arr = next;
            continue;
        }
        table_slot *s = NULL;
        bool is_current = atomic_load_explicit(&t->current, memory_order_acquire) == arr;
        int r = array_claim(arr, h, key, is_current ? arr->grow_at : arr->fresh_limit, &s);
        if (r == CLAIM_OK) {
            assert(s != NULL && table_array_has(arr, s));
            return s;
        }
        /* At the limit: grow (or, for a successor, finish the migration
         * first), then look again from the current array. */
        if (start_growth(t, arr) != INV_OK)
            return NULL;
        arr = atomic_load_explicit(&t->current, memory_order_acquire);
    }
}

table_slot *table_insert_exclusive(table *t, uint64_t a, uint64_t b)
{
    if (key_is_special(a, b))
        return special_slot(t, b);
    /* relaxed: no other thread uses t during recovery. */
    table_array *arr = atomic_load_explicit(&t->current, memory_order_relaxed);
    assert(table_ok(t) && array_ok(arr, t->stride)); /* recovery: a few loads per insert */
    size_t claimed = atomic_load_explicit(&arr->claimed, memory_order_relaxed);
    if (atomic_load_explicit(&arr->next, memory_order_relaxed) || claimed >= arr->grow_at)
        return table_insert(t, a, b); /* growth: the shared path */
    table_slot *end;
    table_slot *s = array_probe(arr, hash_key(t, a, b), a, b, &end);
    if (s)
        return s;
    if (!end)
        return table_insert(t, a, b); /* no empty slot: the shared path */
    /* Alone: nobody migrates (no successor), so the probe ended at a
     * never-claimed slot, and it stays below the growth threshold. */
    assert(table_array_has(arr, end) && key_load(end) == KEY_EMPTY);
    assert(claimed + 1 <= arr->grow_at);
    /* relaxed: see above; the release on the low half orders the whole key
     * for threads started after recovery. */
    __atomic_store_n(&end->key.half[1], b, __ATOMIC_RELAXED);
    __atomic_store_n(&end->key.half[0], a, __ATOMIC_RELEASE);
    atomic_store_explicit(&arr->claimed, claimed + 1, memory_order_relaxed);
    return end;
}

void table_prefetch(table *t, uint64_t a, uint64_t b)
{
    /* acquire: as table_find. */
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    assert(arr != NULL); /* hot (batches): a compare; array_ok left out */
    __builtin_prefetch(table_array_slot(arr, home_of(hash_key(t, a, b), arr->capacity)), 1);
}

void table_note_exclusive(table *t, int64_t delta)
{
    /* relaxed: no other thread uses t during recovery. */
    int64_t live = atomic_load_explicit(&t->live, memory_order_relaxed) + delta;
    /* alone, the count is exact: never below none */
    assert(live >= 0);
    atomic_store_explicit(&t->live, live, memory_order_relaxed);
}

void table_note_created(table *t)
{
    assert(table_ok(t)); /* a few loads of a header in cache, per created entry */
    /* relaxed: a count for sizing and statistics. */
    atomic_fetch_add_explicit(&t->live, 1, memory_order_relaxed);
}

void table_note_deleted(table *t)
{
    assert(table_ok(t));
    /* relaxed: a count for sizing and statistics. */
    atomic_fetch_sub_explicit(&t->live, 1, memory_order_relaxed);
}

int64_t table_live(table *t)
{
    assert(table_ok(t));
    /* relaxed: a statistic. */
    return atomic_load_explicit(&t->live, memory_order_relaxed);
}

size_t table_bytes(table *t)
{
    assert(table_ok(t));
    size_t bytes = sizeof *t;
    for (table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire); arr;
         arr = atomic_load_explicit(&arr->next, memory_order_acquire)) {
        assert(array_ok(arr, t->stride));
        bytes += sizeof *arr + arr->capacity * arr->stride;
    }
    return bytes;
}

/* ---- scans -------------------------------------------------------------- */

typedef struct {
    uint64_t h, a, b;
    table_word v;
    table_slot *s; /* where v was read */
} scan_entry;

/* The current value of the key held by s: a slot moved by a growth that
 * started after we finished the last one is read from where it went. */
static bool current_value(table *t, table_slot **s, uint64_t a, uint64_t b, table_word *v)
{
    assert(s != NULL && *s != NULL);
    *v = table_load_key(*s, a, b);
    if (v->w1 & TABLE_MOVED) {
        table_slot *now = table_find(t, a, b);
        if (!now)
            return false;
        *s = now;
        *v = table_load_key(now, a, b);
    }
    /* table_load_key resolved any change in flight: a decided value */
    assert(!(v->w1 & TABLE_DESC));
    return table_is_live(*v);
}

/* Lowest hash whose home slot is i: ceil(i * 2^64 / capacity); 0 for i ==
 * capacity stands for 2^64 (the end). */
static uint64_t first_hash_of(size_t i, size_t capacity)
{
    if (i >= capacity)
        return 0;
    uint64_t h = (uint64_t)((((unsigned __int128)i << 64) + capacity - 1) / capacity);
    /* the lowest: h homes to i, h - 1 before it (cursors stay exact) */
    assert(home_of(h, capacity) == i);
    assert(i == 0 || home_of(h - 1, capacity) < i);
    return h;
}

/* Asserts only: a page's entries in hash order (scan_slots sorts them so
 * a cut between two hashes is a cursor). O(n) over at most a page. */
static bool scan_sorted_ok(const scan_entry *items, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (items[i - 1].h > items[i].h)
            return false;
    return true;
}

static int cmp_scan_entry(const void *x, const void *y)
{
    const scan_entry *p = x, *q = y;
    return p->h < q->h ? -1 : p->h > q->h;
}

/* Collects the entries of slot i with hash >= cursor (l: scan_entry). */
static int scan_slot(table *t, table_slot *s, uint64_t cursor, vec *l)
{
    assert(s != NULL && l != NULL && l->size == sizeof(scan_entry));
    unsigned __int128 k = key_load(s);
    if (k == KEY_EMPTY || k == KEY_MOVED_EMPTY)
        return 1; /* end of a cluster */
    uint64_t a = (uint64_t)k, b = (uint64_t)(k >> 64);
    assert(!key_is_special(a, b)); /* their entries live outside arrays */
    uint64_t h = hash_key(t, a, b);
    table_word v;
    if (h >= cursor && current_value(t, &s, a, b, &v))
        return vec_push(l, &(scan_entry){h, a, b, v, s});
    return INV_OK;
}

static int scan_slots(table *t, uint64_t cursor, size_t max_entries, table_visit_slot_fn fn,
                      void *ctx, uint64_t *next)
{
    assert(fn != NULL && next != NULL);
    if (max_entries == 0)
        return INV_EINVALID;
    table_finish_growth(t);
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    assert(array_ok(arr, t->stride));
    size_t cap = arr->capacity, start = home_of(cursor, cap), j = start;
    vec l = VEC_OF(scan_entry);
    int rc = INV_OK;
    /* Whole home slots from start on, until enough entries. */
    for (; j < cap && rc >= 0; j++) {
        rc = scan_slot(t, table_array_slot(arr, j), cursor, &l);
        if (l.n >= max_entries)
            break;
    }
    size_t last = j < cap ? j : cap - 1;
    assert(start <= last && last < cap);
    uint64_t end_hash = first_hash_of(last + 1, cap); /* 0: to the end */
    /* Keys homed at or before `last` may sit further on, up to the end of
     * their cluster (wrapping); stop before re-reading slot `start`. */
    for (size_t i = last + 1 == cap ? 0 : last + 1; i != start && rc >= 0;
         i = i + 1 == cap ? 0 : i + 1) {
        rc = scan_slot(t, table_array_slot(arr, i), cursor, &l);
        if (rc == 1)
            break;
    }
    for (int sp = 0; sp < 2 && rc >= 0; sp++) {
        uint64_t h = hash_key(t, 0, (uint64_t)sp);
        table_slot *s = special_slot(t, (uint64_t)sp);
        table_word v = table_load_key(s, 0, (uint64_t)sp);
        if (h >= cursor && table_is_live(v))
            rc = vec_push(&l, &(scan_entry){h, 0, (uint64_t)sp, v, s});
    }
    if (rc < 0) {
        vec_free(&l);
        return rc;
    }
    /* Keep exactly the hash range [cursor, end_hash). */
    scan_entry *items = l.items;
    size_t kept = 0;
    for (size_t i = 0; i < l.n; i++)
        if (end_hash == 0 || items[i].h < end_hash)
            items[kept++] = items[i];
    if (kept)
        qsort(items, kept, sizeof *items, cmp_scan_entry);
    assert(scan_sorted_ok(items, kept));
    if (kept > max_entries) {
        size_t cut = max_entries;
        while (cut > 0 && items[cut - 1].h == items[cut].h)
            cut--;
        if (cut == 0) {
            vec_free(&l);
            return INV_ELIMIT; /* more than max_entries share one hash */
        }
        /* the cut falls between two hashes, past the cursor */
        assert(cut < kept && items[cut - 1].h < items[cut].h);
        end_hash = items[cut].h;
        kept = cut;
    }
    /* A page of at most max_entries, and progress: the next cursor is past
     * this one (or 0, the end), so a scan always terminates. */
    assert(kept <= max_entries && (end_hash == 0 || end_hash > cursor));
    rc = INV_OK;
    for (size_t i = 0; i < kept && rc == INV_OK; i++)
        rc = fn(ctx, items[i].a, items[i].b, items[i].v, items[i].s);
    vec_free(&l);
    *next = end_hash;
    return rc;
}

/* Adapts a visitor without the slot (table_visit_fn) to scan_slots. */
typedef struct {
    table_visit_fn fn;
    void *ctx;
} visit_plain;

static int visit_plain_slot(void *p, uint64_t a, uint64_t b, table_word v, table_slot *s)
{
    (void)s;
    const visit_plain *vp = p;
    assert(vp != NULL && vp->fn != NULL);
    return vp->fn(vp->ctx, a, b, v);
}

int table_scan(table *t, uint64_t cursor, size_t max_entries, table_visit_fn fn, void *ctx,
               uint64_t *next)
{
    assert(fn != NULL);
    visit_plain vp = {fn, ctx};
    return scan_slots(t, cursor, max_entries, visit_plain_slot, &vp, next);
}

typedef struct {
    void *out;
    size_t cap, n;
    table_put_fn put; /* one of put and put_slot */
    table_put_slot_fn put_slot;
} scan_page;

static int page_visit(void *p, uint64_t a, uint64_t b, table_word v, table_slot *s)
{
    scan_page *pg = p;
    assert(pg->n < pg->cap); /* table_scan visits at most max_entries */
    assert((pg->put == NULL) != (pg->put_slot == NULL)); /* exactly one */
    if (pg->put_slot)
        pg->put_slot(pg->out, pg->n++, a, b, v, s);
    else
        pg->put(pg->out, pg->n++, a, b, v);
    return 0;
}

static int scan_page_run(table *t, uint64_t cursor, size_t count, scan_page *pg, size_t *n_out,
                         uint64_t *next_cursor)
{
    if (count == 0 || count > INV_LIST_COUNT_MAX || !pg->out || pg->cap == 0 || !n_out ||
        !next_cursor)
        return INV_EINVALID;
    uint64_t next = 0;
    int rc = scan_slots(t, cursor, count < pg->cap ? count : pg->cap, page_visit, pg, &next);
    if (rc != INV_OK)
        return rc;
    assert(pg->n <= count && pg->n <= pg->cap);
    *n_out = pg->n;
    *next_cursor = next;
    return INV_OK;
}

int table_scan_page(table *t, uint64_t cursor, size_t count, void *out, size_t cap,
                    table_put_fn put, size_t *n_out, uint64_t *next_cursor)
{
    assert(put != NULL);
    scan_page pg = {out, cap, 0, put, NULL};
    return scan_page_run(t, cursor, count, &pg, n_out, next_cursor);
}

int table_scan_page_slot(table *t, uint64_t cursor, size_t count, void *out, size_t cap,
                         table_put_slot_fn put, size_t *n_out, uint64_t *next_cursor)
{
    assert(put != NULL);
    scan_page pg = {out, cap, 0, NULL, put};
    return scan_page_run(t, cursor, count, &pg, n_out, next_cursor);
}

int table_foreach_slot(table *t, table_visit_slot_fn fn, void *ctx)
{
    assert(table_ok(t) && fn != NULL);
    table_finish_growth(t);
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    assert(array_ok(arr, t->stride));
    for (int sp = 0; sp < 2; sp++) {
        table_slot *s = special_slot(t, (uint64_t)sp);
        table_word v = table_load_key(s, 0, (uint64_t)sp);
        if (table_is_live(v)) {
            int rc = fn(ctx, 0, (uint64_t)sp, v, s);
            if (rc)
                return rc;
        }
    }
    for (size_t i = 0; i < arr->capacity; i++) {
        table_slot *s = table_array_slot(arr, i);
        unsigned __int128 k = key_load(s);
        if (k == KEY_EMPTY || k == KEY_MOVED_EMPTY)
            continue;
        uint64_t a = (uint64_t)k, b = (uint64_t)(k >> 64);
        assert(!key_is_special(a, b)); /* visited above, from outside the array */
        table_word v;
        if (current_value(t, &s, a, b, &v)) {
            int rc = fn(ctx, a, b, v, s);
            if (rc)
                return rc;
        }
    }
    return INV_OK;
}

int table_foreach(table *t, table_visit_fn fn, void *ctx)
{
    assert(fn != NULL);
    visit_plain vp = {fn, ctx};
    return table_foreach_slot(t, visit_plain_slot, &vp);
}

/* ---- multi-word changes (see table.h) ------------------------------------ */

/* Asserts only: d as table_mcas_new built it: between one key and its
 * capacity, within TABLE_MCAS_KEYS_MAX (fields fixed before any install
 * published d). */
static bool mcas_ok(const table_mcas *d)
{
    return d != NULL && d->n >= 1 && d->n <= d->cap && d->cap <= TABLE_MCAS_KEYS_MAX;
}

/* Asserts only: a decided status. */
static bool mcas_status_decided(int status)
{
    return status == TABLE_MCAS_SUCCEEDED || status == TABLE_MCAS_ABORTED;
}

static table_mcas *mcas_of(table_word raw)
{
    assert(raw.w1 & TABLE_DESC);
    table_mcas *d = (table_mcas *)(uintptr_t)(raw.w1 & TABLE_DESC_ADDR);
    assert(mcas_ok(d));
    return d;
}

static table_mcas_entry *mcas_entry(table_mcas *d, uint64_t a, uint64_t b)
{
    assert(mcas_ok(d));
    for (uint32_t i = 0; i < d->n; i++)
        if (d->entry[i].a == a && d->entry[i].b == b)
            return &d->entry[i];
    return NULL;
}

table_mcas *table_mcas_new(size_t n)
{
    assert(n >= 1 && n <= TABLE_MCAS_KEYS_MAX);
    table_mcas *d = inv_calloc(1, sizeof *d + n * sizeof(table_mcas_entry));
    if (!d)
        return NULL;
    /* The address must fit w1's low bits (user space: 47 or 56 bits). */
    assert(((uintptr_t)d & ~(uintptr_t)TABLE_DESC_ADDR) == 0);
    atomic_init(&d->status, TABLE_MCAS_UNDECIDED);
    d->n = (uint32_t)n;
    d->cap = (uint32_t)n;
    assert(mcas_ok(d));
    return d;
}

/* The decided value of entry x for a status (the table's FROZEN and MOVED
 * bits of raw kept: growth may have frozen the word meanwhile). */
static table_word mcas_value(const table_mcas_entry *x, int status, table_word raw)
{
    /* undecided (a reader's resolve) reads as the value before it */
    assert(x != NULL && status >= TABLE_MCAS_UNDECIDED && status <= TABLE_MCAS_ABORTED);
    table_word v = status == TABLE_MCAS_SUCCEEDED ? x->new : x->old;
    v.w1 |= raw.w1 & (TABLE_FROZEN | TABLE_MOVED);
    /* a decided value never names a descriptor (steps write plain words) */
    assert(!(v.w1 & TABLE_DESC));
    return v;
}

table_word table_mcas_resolve(table_word raw, uint64_t a, uint64_t b)
{
    table_mcas *d = mcas_of(raw);
    table_mcas_entry *x = mcas_entry(d, a, b);
    assert(x != NULL); /* only its own keys carry a descriptor */
    if (!x)
        return (table_word){raw.w0, 0};
    /* acquire: pairs with the decision's CAS; the entry itself was
     * published by the install CAS our load of raw read (acquire). */
    int status = atomic_load_explicit(&d->status, memory_order_acquire);
    return mcas_value(x, status, raw);
}

/* The status of d once decided: an undecided change is waited for a
 * moment, then aborted. */
static int mcas_settled_status(table_mcas *d)
{
    assert(mcas_ok(d));
    unsigned backoff = TABLE_BACKOFF_MIN, waited = 0;
    /* acquire: pairs with the decision's CAS (its new values are read). */
    int status = atomic_load_explicit(&d->status, memory_order_acquire);
    while (status == TABLE_MCAS_UNDECIDED && waited < TABLE_MCAS_PATIENCE) {
        waited += backoff;
        table_backoff(&backoff);
        status = atomic_load_explicit(&d->status, memory_order_acquire);
    }
    if (status == TABLE_MCAS_UNDECIDED) {
        int expected = TABLE_MCAS_UNDECIDED;
        /* acq_rel: the abort is ordered before our roll-back CAS; a lost
         * race reads the owner's decision (acquire). */
        if (atomic_compare_exchange_strong_explicit(&d->status, &expected, TABLE_MCAS_ABORTED,
                                                    memory_order_acq_rel, memory_order_acquire))
            status = TABLE_MCAS_ABORTED;
        else
            status = expected;
    }
    assert(status != TABLE_MCAS_UNDECIDED);
    return status;
}

void table_mcas_help(table_slot *s, table_word *v, uint64_t a, uint64_t b)
{
    assert(!table_is_frozen(*v));
    table_mcas *d = mcas_of(*v);
    table_mcas_entry *x = mcas_entry(d, a, b);
    assert(x != NULL);
    if (!x)
        return;
    table_word to = mcas_value(x, mcas_settled_status(d), *v);
    /* On failure *v is the fresh word (the owner or another helper came
     * first, or growth froze it): the caller looks at it again. */
    if (table_cas(s, v, to))
        *v = to;
}

typedef struct {
    table_mcas *d;
    table_mcas_entry *x;
    table_step_fn step;
    void *ctx;
} mcas_install_ctx;

/* Decides the key's new value with the caller's step, and writes the
 * descriptor in its place (the entry first: the CAS publishes it). */
static int mcas_install_step(void *p, table_word cur, table_word *next)
{
    mcas_install_ctx *c = p;
    /* table_update_at hands steps only a plain word: growth settled and
     * any other change in flight helped first */
    assert(!table_is_frozen(cur) && !(cur.w1 & TABLE_DESC));
    table_word decided = cur;
    int rc = c->step(c->ctx, cur, &decided);
    if (rc != TABLE_STEP_WRITE && rc != TABLE_STEP_KEEP)
        return rc;
    c->x->old = cur;
    c->x->new = rc == TABLE_STEP_WRITE ? decided : cur;
    /* table.h: a step's word carries no table flag but TABLE_TOMB */
    assert((c->x->new.w1 &TABLE_FLAGS & ~TABLE_TOMB) == 0);
    *next = (table_word){cur.w0, TABLE_DESC | (uint64_t)(uintptr_t)c->d};
    return TABLE_STEP_WRITE;
}

int table_mcas_install(table *t, table_mcas *d, size_t i, table_step_fn step, void *ctx)
{
    assert(mcas_ok(d) && i < d->n && !d->entry[i].installed);
    table_mcas_entry *x = &d->entry[i];
    mcas_install_ctx c = {d, x, step, ctx};
    table_word landed;
    int rc = table_update_at(t, x->a, x->b, false, NULL, mcas_install_step, &c, &landed, &x->slot);
    if (rc != TABLE_STEP_WRITE)
        return rc;
    assert(mcas_of(landed) == d);
    assert(x->slot != NULL); /* where it was installed (mcas_settle_key's hint) */
    x->installed = true;
    return x->new.w0 == x->old.w0 && x->new.w1 == x->old.w1 ? TABLE_STEP_KEEP : TABLE_STEP_WRITE;
}

bool table_mcas_decide(table_mcas *d)
{
    assert(mcas_ok(d));
    int expected = TABLE_MCAS_UNDECIDED;
    /* acq_rel: every install happened before; readers that acquire
     * SUCCEEDED read the new values. */
    bool won = atomic_compare_exchange_strong_explicit(&d->status, &expected, TABLE_MCAS_SUCCEEDED,
                                                       memory_order_acq_rel, memory_order_acquire);
    /* Only the owner decides success, once: a lost race is a helper's abort. */
    assert(won || expected == TABLE_MCAS_ABORTED);
    return won;
}

/* Puts key x's word to its decided value, wherever growth moved it. */
static void mcas_settle_key(table *t, table_mcas *d, const table_mcas_entry *x, int status)
{
    assert(x->installed && mcas_status_decided(status));
    /* The slot it was installed in first (no probe), then wherever the
     * table finds the key. */
    for (table_slot *hint = x->slot;; hint = NULL) {
        table_slot *s = hint ? hint : table_find(t, x->a, x->b);
        assert(s != NULL); /* a word carrying a descriptor is live: never dropped */
        if (!s)
            return;
        table_word v = table_load(s);
        while (!table_is_frozen(v)) {
            if (!(v.w1 & TABLE_DESC) || mcas_of(v) != d)
                return; /* a helper put it already */
            if (table_cas(s, &v, mcas_value(x, status, v)))
                return;
        }
        table_settle(t, s); /* growth: put it in the next array */
    }
}

void table_mcas_finish(table *t, table_mcas *d)
{
    /* acquire: the decision (ours, or a helper's abort). */
    assert(mcas_ok(d));
    int status = atomic_load_explicit(&d->status, memory_order_acquire);
    assert(status != TABLE_MCAS_UNDECIDED);
    for (uint32_t i = 0; i < d->n; i++)
        if (d->entry[i].installed)
            mcas_settle_key(t, d, &d->entry[i], status);
    /* No word names d any more; a reader that read one before is in its
     * epoch section, which the retirement waits for. */
    epoch_retire(d, free, t->owner);
}

void table_mcas_abort(table *t, table_mcas *d)
{
    assert(mcas_ok(d));
    int expected = TABLE_MCAS_UNDECIDED;
    /* acq_rel: as table_mcas_decide (a helper may have aborted it first). */
    (void)atomic_compare_exchange_strong_explicit(&d->status, &expected, TABLE_MCAS_ABORTED,
                                                  memory_order_acq_rel, memory_order_acquire);
    assert(atomic_load_explicit(&d->status, memory_order_relaxed) == TABLE_MCAS_ABORTED);
    table_mcas_finish(t, d);
}
