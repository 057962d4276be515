/*
 * table.h — the lock-free open-addressing hash table every index uses.
 *
 * Keys are 128-bit pairs (a, b): (item, location) for levels, (id, 0) for
 * catalog ids, a string's 128-bit hash for string indexes. Values are
 * 128-bit words (w0, w1) changed only by a 16-byte compare-and-swap
 * (inline cmpxchg16b). The table owns the top three bits of w1:
 *
 *   TABLE_FROZEN  the slot is being migrated; its value is final here
 *   TABLE_MOVED   the value now lives in the next array (implies FROZEN)
 *   TABLE_TOMB    deleted: the value is absent, w1's low bits keep its
 *                 version so a re-created entry continues counting
 *   TABLE_DESC    a multi-word change (table_mcas) is in flight: w0 is
 *                 the value before it, w1's low 60 bits its descriptor;
 *                 readers see the value it decided (table_load_key), and
 *                 writers finish it or abort it first (table_update_at)
 *
 * and requires of its users: w1's low 60 bits (the version) are >= 1 for a
 * live value and change on every CAS, so a value word never repeats. That
 * makes the two-load snapshot read in table_load() exact. A multi-word
 * change keeps it so: while its descriptor is in a word, w0 stays the
 * value before it, and an aborted change puts back exactly that word, so
 * every w1 a reader can read twice still names one w0 (a descriptor's
 * address is not reused while a reader is in its epoch section).
 *
 * Who may do what: any thread, inside an epoch critical section (epoch.h),
 * may find, insert and CAS at once; nothing blocks. Slots never return to
 * empty: a key, once claimed, stays until growth drops it (a tombstone or
 * an absent value is not copied, unless the user's keep_unlive says its
 * extra bytes hold it). Growth publishes a new array by pointer;
 * every thread that inserts helps migrate, a slot at a time by freezing it;
 * the old array is retired through the epoch once every slot moved.
 *
 * Capacity is not a power of two: home = (hash * capacity) >> 64 (the
 * multiply-shift reduction), so a capacity hint lands exactly at the
 * maximum load factor instead of up to twice above it. This keeps a level
 * at about 43 bytes. Because home() is monotonic in the hash, cursors are
 * hash positions, and a scan stays exact across growth.
 */
#ifndef INV_TABLE_H
#define INV_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "invcore.h"

#define TABLE_FROZEN (1ULL << 63)
#define TABLE_MOVED (1ULL << 62)
#define TABLE_TOMB (1ULL << 61)
/* A multi-word change is in flight (table_mcas, below): w0 is still the
 * value before it, w1's low bits are the descriptor's address. */
#define TABLE_DESC (1ULL << 60)
#define TABLE_FLAGS (TABLE_FROZEN | TABLE_MOVED | TABLE_TOMB | TABLE_DESC)
#define TABLE_VERSION_MAX (TABLE_DESC - 1)
#define TABLE_DESC_ADDR (TABLE_DESC - 1) /* a descriptor's address bits */

/* Growth starts when claimed keys exceed this share of the capacity. */
#define TABLE_LOAD_NUM 3
#define TABLE_LOAD_DEN 4
#define TABLE_CAPACITY_MIN 16
/* Claims that may land in an array after growth was decided (threads that
 * looked before the successor was published). */
#define TABLE_CLAIM_SLACK 1024
/* A hint or a growth beyond this many slots is refused (NOMEM). */
#define TABLE_CAPACITY_MAX (1ULL << 34)

typedef struct {
    uint64_t w0, w1;
} table_word;

/* 16 bytes seen whole by cmpxchg16b or as two halves by 8-byte loads. */
typedef union {
    unsigned __int128 whole;
    uint64_t half[2]; /* [0] low (w0 / key a), [1] high (w1 / key b) */
} table_pair;

typedef struct table_slot {
    /* The key is claimed by one 16-byte CAS from the empty key (0, 0). */
    _Alignas(32) table_pair key;
    /* The value, changed only by 16-byte CAS. */
    table_pair value;
} table_slot;

typedef struct table_array table_array;

/* A table may keep extra bytes after each slot (table_init_extra): the
 * levels keep their cold quantities there, in the slot's cache line. A
 * slot with its extra bytes is at most this large. */
#define TABLE_SLOT_BYTES_MAX 64u
#define TABLE_EXTRA_MAX (TABLE_SLOT_BYTES_MAX - sizeof(table_slot))

/* Growth copies a live slot's extra bytes with this hook, after freezing
 * its value and before publishing the value in the next array (so whoever
 * finds the copy finds its extra bytes too). It may run for one slot in
 * several threads at once, and must return in each only once the copy is
 * whole, whichever thread made it: any of them may publish the value next.
 * to_extra (in the next array) is not yet visible to any other user of
 * the table. */
typedef void (*table_move_extra_fn)(void *from_extra, void *to_extra);
/* Does a slot that holds no live value (never written, or a tombstone)
 * stay through growth? Asked of its extra bytes after the slot froze, by
 * every thread that settles it; the user decides once per slot (in its
 * extra bytes): true only in the thread that must copy it (the one that
 * holds it, level_cold.h: a lock set's claimed level), which then copies
 * its key and extra bytes (and a tombstone's value) like a live slot's;
 * false once it is decided otherwise (dropped, or copied by its holder).
 * It may wait for the holder. */
typedef bool (*table_keep_unlive_fn)(void *extra);

/* One array of slots. Defined here only so that table_find_memo's hit path
 * inlines; everything else about it belongs to table.c. */
struct table_array {
    void *raw; /* what calloc returned (the array is aligned up) */
    size_t capacity;
    size_t stride; /* bytes from one slot to the next (32 or 64) */
    const char *slots_end; /* one past the last slot (table_array_has) */
    size_t grow_at; /* claimed keys that start growth */
    /* While this array is the successor of one still migrating, fresh
     * inserts stop here, leaving room for every copy still to come. */
    size_t fresh_limit;
    _Atomic size_t claimed;
    _Atomic(table_array *) next;
    _Atomic size_t copy_cursor; /* next chunk to migrate */
    _Atomic size_t copy_done; /* slots migrated */
    /* Cache-line aligned (the header is padded to 128 bytes): with a
     * 64-byte stride every slot is one line, so a lookup that finds its
     * key at home reads one line for the key, the hot word and the cold
     * part (issue 15: at byte 32 each level spanned two lines, one miss
     * more per change than the layout needs). */
    _Alignas(64) table_slot slots[];
};

typedef struct table {
    _Atomic(table_array *) current;
    uint64_t seed;
    const void *owner; /* tag for epoch_retire */
    size_t stride; /* sizeof(table_slot) + the extra bytes per slot */
    table_move_extra_fn move_extra; /* NULL: no extra bytes */
    table_keep_unlive_fn keep_unlive; /* NULL: growth drops every unlive slot */
    /* Keys (0,0) and (0,1) are the empty and moved-empty sentinels; their
     * entries live here (a slot and its extra bytes each), outside the
     * arrays, and are never migrated. */
    _Alignas(64) unsigned char special[2][TABLE_SLOT_BYTES_MAX];
    _Atomic int64_t live; /* live values, maintained by table_note_* */
    /* The highest version of a tombstone that growth dropped: an entry
     * created in a never-written slot starts above it, so versions of a
     * key never go back. */
    _Atomic uint64_t version_floor;
    _Atomic uint64_t resizes;
} table;

int table_init(table *t, size_t capacity_hint, const void *owner);
/* As table_init, with extra_bytes (a multiple of 16, at most
 * TABLE_EXTRA_MAX; zeroed) after every slot, moved by move_extra. */
int table_init_extra(table *t, size_t capacity_hint, const void *owner, size_t extra_bytes,
                     table_move_extra_fn move_extra);
/* Growth keeps the unlive slots keep says are held (set before any other
 * thread uses t; needs extra bytes). */
void table_keep_unlive(table *t, table_keep_unlive_fn keep);

/* Slot i of arr. */
static inline table_slot *table_array_slot(const table_array *arr, size_t i)
{
    return (table_slot *)((char *)arr->slots + i * arr->stride);
}
/* Is s one of arr's slots? */
static inline bool table_array_has(const table_array *arr, const table_slot *s)
{
    const char *p = (const char *)s;
    return p >= (const char *)arr->slots && p < arr->slots_end;
}
/* The extra bytes of a slot (table_init_extra). */
static inline void *table_slot_extra(table_slot *s)
{
    return (char *)s + sizeof(table_slot);
}
/* Only when no other thread uses t. */
void table_destroy(table *t);

/* The slot holding key (a, b), or NULL when no array holds it. The value
 * may be absent, frozen or moved: callers check with the helpers below. */
table_slot *table_find(table *t, uint64_t a, uint64_t b);
/* As table_find, claiming the key when absent. NULL only when out of
 * memory. */
table_slot *table_insert(table *t, uint64_t a, uint64_t b);

/* A one-entry memo of the last lookup, per thread and caller: a hot key
 * (a flash sale's SKU) skips the hash and the probe. Valid only while the
 * array it was found in is still the current one, which callers inside an
 * epoch section can check with one load. */
typedef struct {
    const table *t;
    const table_array *arr;
    uint64_t a, b;
    table_slot *slot;
} table_memo;

/* The memo missed: table_find, then remember the answer (arr: the current
 * array as the caller read it). */
table_slot *table_find_memo_miss(table *t, table_array *arr, uint64_t a, uint64_t b, table_memo *m);

/* As table_find, through the memo. The hit path is inline: a hot key costs
 * a few compares and the two loads that re-check the slot's key. */
static inline table_slot *table_find_memo(table *t, uint64_t a, uint64_t b, table_memo *m)
{
    /* acquire: as table_find. An array that is still current is not
     * retired, so a memoised slot in it is safe to touch in this section. */
    table_array *arr = atomic_load_explicit(&t->current, memory_order_acquire);
    table_slot *s = m->slot;
    /* The memo's addresses may name memory reused by another array or
     * engine since: trust the slot only inside the current array and only
     * if it holds the key. A claimed key never changes within an array,
     * and its low half is then non-zero unless a is 0 (left to the miss
     * path, which reads both halves consistently). */
    if (m->t == t && m->arr == arr && m->a == a && m->b == b && a != 0 && table_array_has(arr, s) &&
        /* acquire (both): the slot's value is read after its key. */
        __atomic_load_n(&s->key.half[0], __ATOMIC_ACQUIRE) == a &&
        __atomic_load_n(&s->key.half[1], __ATOMIC_ACQUIRE) == b)
        return s;
    return table_find_memo_miss(t, arr, a, b, m);
}
/* After meeting a frozen or moved value: the memo must not answer again. */
static inline void table_memo_forget(table_memo *m)
{
    m->t = NULL;
}

/* A consistent snapshot of a slot's value (two 8-byte acquire loads of w1
 * around w0; retried until w1 did not change). */
static inline table_word table_load(const table_slot *s)
{
    const uint64_t *w = s->value.half;
    for (;;) {
        /* acquire: the w0 read below is not older than this w1. */
        uint64_t w1 = __atomic_load_n(&w[1], __ATOMIC_ACQUIRE);
        /* acquire: keeps the second w1 read after this one. */
        uint64_t w0 = __atomic_load_n(&w[0], __ATOMIC_ACQUIRE);
        /* relaxed is enough after the acquire above; w1 never repeats, so
         * an unchanged w1 means no CAS happened in between. */
        if (__atomic_load_n(&w[1], __ATOMIC_RELAXED) == w1)
            return (table_word){w0, w1};
    }
}

/* 16-byte CAS (lock cmpxchg16b, a full barrier). On failure *expected gets
 * the current value. */
static inline bool table_cas(table_slot *s, table_word *expected, table_word desired)
{
    unsigned __int128 exp = ((unsigned __int128)expected->w1 << 64) | expected->w0;
    unsigned __int128 des = ((unsigned __int128)desired.w1 << 64) | desired.w0;
    unsigned __int128 old = __sync_val_compare_and_swap(&s->value.whole, exp, des);
    if (old == exp)
        return true;
    expected->w0 = (uint64_t)old;
    expected->w1 = (uint64_t)(old >> 64);
    return false;
}

static inline bool table_is_frozen(table_word v)
{
    return (v.w1 & TABLE_FROZEN) != 0;
}
static inline bool table_is_live(table_word v)
{
    return (v.w1 & TABLE_TOMB) == 0 && (v.w1 & TABLE_VERSION_MAX) != 0;
}
static inline uint64_t table_version(table_word v)
{
    return v.w1 & TABLE_VERSION_MAX;
}

/* The key of a slot returned by find/insert (stable once claimed). */
static inline void table_slot_key(const table_slot *s, uint64_t *a, uint64_t *b)
{
    const uint64_t *k = s->key.half;
    /* relaxed: the key was published before the slot was handed out. */
    *a = __atomic_load_n(&k[0], __ATOMIC_RELAXED);
    *b = __atomic_load_n(&k[1], __ATOMIC_RELAXED);
}

/* s's value is frozen: finish moving it to the next array. The caller then
 * repeats its find or insert, which lands in the new array. */
void table_settle(table *t, table_slot *s);

/* Callers that turn a value live (absent -> live) or absent call these so
 * growth can size the next array from the live count. */
void table_note_created(table *t);
void table_note_deleted(table *t);
int64_t table_live(table *t);
/* Versions of entries created in a never-written slot start above this. */
uint64_t table_version_floor(table *t);

/* Recovery only (no other thread may use t): writes a slot's value with
 * plain stores, sparing the locked CAS so loads can overlap. */
static inline void table_store_exclusive(table_slot *s, table_word v)
{
    /* relaxed, then release: nobody races us; the release publishes the
     * value to the threads started after recovery. */
    __atomic_store_n(&s->value.half[0], v.w0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->value.half[1], v.w1, __ATOMIC_RELEASE);
}

/* Recovery only: as table_insert, claiming with plain stores (no locked
 * instruction: consecutive inserts overlap their cache misses). Falls back
 * to table_insert when the table must grow. */
table_slot *table_insert_exclusive(table *t, uint64_t a, uint64_t b);
/* Starts loading the home slot of key (a, b) into the cache: a batch of
 * lookups issued ahead overlaps their misses (recovery replays this way). */
void table_prefetch(table *t, uint64_t a, uint64_t b);
/* Recovery only: table_note_created / _deleted without a locked add. */
void table_note_exclusive(table *t, int64_t delta);

/* Recovery only: sizes an empty table for n entries up front, so a load
 * of a known size never grows. */
int table_reserve(table *t, size_t n);

/* Helps any migration in progress to its end (not on a hot path). */
void table_finish_growth(table *t);

/* Calls fn for each live entry with hash position in [cursor, *next),
 * at most max_entries of them; *next is 0 when the scan is complete.
 * Entries present for the whole scan are visited exactly once. fn gets a
 * consistent value; it returns nonzero to abort (returned as is). */
typedef int (*table_visit_fn)(void *ctx, uint64_t a, uint64_t b, table_word v);
int table_scan(table *t, uint64_t cursor, size_t max_entries, table_visit_fn fn, void *ctx,
               uint64_t *next);

/* One page of a public cursor listing (SCAN style, inv_item_list): checks
 * the listing's arguments (1 <= count <= INV_LIST_COUNT_MAX, out holding
 * cap >= 1 entries: else INV_EINVALID), then runs table_scan for at most
 * min(count, cap) entries, put writing entry i of out from each. *n_out:
 * the entries written; *next_cursor as table_scan (INV_ELIMIT likewise). */
typedef void (*table_put_fn)(void *out, size_t i, uint64_t a, uint64_t b, table_word v);
int table_scan_page(table *t, uint64_t cursor, size_t count, void *out, size_t cap,
                    table_put_fn put, size_t *n_out, uint64_t *next_cursor);

/* Every live entry, in no order (snapshots, counts). */
int table_foreach(table *t, table_visit_fn fn, void *ctx);
/* As table_foreach, also passing the slot the value was read from (for
 * its extra bytes; a slot moved meanwhile keeps the bytes it had). */
typedef int (*table_visit_slot_fn)(void *ctx, uint64_t a, uint64_t b, table_word v, table_slot *s);
int table_foreach_slot(table *t, table_visit_slot_fn fn, void *ctx);
/* As table_scan_page, the slot passed to put as well. */
typedef void (*table_put_slot_fn)(void *out, size_t i, uint64_t a, uint64_t b, table_word v,
                                  table_slot *s);
int table_scan_page_slot(table *t, uint64_t cursor, size_t count, void *out, size_t cap,
                         table_put_slot_fn put, size_t *n_out, uint64_t *next_cursor);

size_t table_bytes(table *t);

/* ---- the one update loop ------------------------------------------------
 *
 * Every read-modify-write of a value goes through table_update: find (or
 * insert) the key, load the value, let a step decide, CAS, and on a lost
 * race ask the step again with the fresh value. The growth protocol (a
 * frozen value is settled into the next array and the lookup repeated
 * there) lives here once. A step is a pure decision on (cur -> *next):
 *   TABLE_STEP_WRITE  *next is to be CASed in (the table's flag bits of
 *                     next.w1 other than TABLE_TOMB must be clear);
 *   TABLE_STEP_KEEP   nothing to write: done;
 *   a negative INV_E* code: refused, done.
 * It may be called several times (after every lost race), so it keeps no
 * effect outside ctx that a later call would not redo. A key absent from
 * every array is shown to the step as the empty word {0, 0} when insert is
 * false (nothing was claimed: a WRITE then answers TABLE_UPDATE_NO_KEY). */
enum {
    TABLE_STEP_WRITE = 0,
    TABLE_STEP_KEEP = 1,
    TABLE_UPDATE_NO_KEY = 2 /* table_update only: see above */
};

/* After a lost CAS, pause before the retry, twice as long each time up to
 * the cap: the winner keeps the cache line for its next changes instead of
 * both threads pulling it back and forth on every attempt (a hot key). */
#define TABLE_BACKOFF_MIN 4u
#define TABLE_BACKOFF_MAX 256u

static inline void table_backoff(unsigned *spins)
{
    for (unsigned i = 0; i < *spins; i++)
        cpu_relax();
    if (*spins < TABLE_BACKOFF_MAX)
        *spins *= 2;
}

typedef int (*table_step_fn)(void *ctx, table_word cur, table_word *next);

/* ---- multi-word changes (a descriptor-based MCAS) -------------------------
 *
 * One change of several keys of one table that everybody sees whole or not
 * at all (Harris, Fraser and Pratt's multi-word CAS, cut down: only the
 * owner installs, and anyone it blocks may abort it).
 *
 *   1. The owner allocates a descriptor holding every key (table_mcas_new),
 *      UNDECIDED.
 *   2. Key by key, it decides the key's new value from the current one and
 *      installs the descriptor by one CAS: {old w0, TABLE_DESC | address}
 *      (table_mcas_install). The old and new values are in the descriptor
 *      before the CAS publishes it.
 *   3. It decides by one CAS of the status: UNDECIDED -> SUCCEEDED is the
 *      change's linearization point (table_mcas_decide); a refusal on any
 *      key makes it ABORTED instead (table_mcas_abort).
 *   4. It replaces every installed word by its new value (succeeded) or
 *      puts back the old one exactly (aborted: no version moves), and
 *      retires the descriptor through the epoch (table_mcas_finish).
 *
 * Readers resolve a word carrying a descriptor to the value its status
 * decides (old unless SUCCEEDED), so nobody reads half a change, or any of
 * an aborted one. A writer that meets one (table_update_at) finishes it
 * when it is decided; an undecided one it waits for a moment
 * (TABLE_MCAS_PATIENCE) and then aborts, so a stalled owner never blocks
 * anyone: lock-free for everybody else, and the owner, finding itself
 * aborted, starts over. The descriptor's status is the only thing that
 * changes once it is published; its entries are written by the owner
 * before the CAS that installs them. */

enum { TABLE_MCAS_UNDECIDED = 0, TABLE_MCAS_SUCCEEDED = 1, TABLE_MCAS_ABORTED = 2 };

/* A writer meeting an undecided change waits this many pauses (with
 * table_backoff's growth) before aborting it: longer than an owner needs
 * to install a few words, far shorter than a scheduler's time slice. */
#define TABLE_MCAS_PATIENCE 4096u
/* The most keys one descriptor changes (a hold's lines, at most). */
#define TABLE_MCAS_KEYS_MAX 256u

typedef struct {
    uint64_t a, b; /* the key, written before the first install */
    table_word old, new; /* written before this key's install */
    /* The owner's own bookkeeping: installed, and the slot it went into
     * (a hint: growth may have moved the key since). */
    bool installed;
    table_slot *slot;
} table_mcas_entry;

typedef struct table_mcas {
    _Atomic int status; /* TABLE_MCAS_* */
    uint32_t n;
    uint32_t cap; /* entries allocated (n <= cap): a spare may serve fewer */
    table_mcas_entry entry[];
} table_mcas;

/* A descriptor for n keys (1 <= n <= TABLE_MCAS_KEYS_MAX), undecided;
 * NULL when out of memory. The caller fills entry[i].a and .b. */
table_mcas *table_mcas_new(size_t n);
/* The value a word carrying a descriptor stands for, for key (a, b): the
 * new value once SUCCEEDED, else the old one (FROZEN and MOVED kept). */
table_word table_mcas_resolve(table_word raw, uint64_t a, uint64_t b);
/* A writer met raw (in *v, read from s) carrying a descriptor: finishes
 * the change if decided, else waits a moment and aborts it, and puts the
 * resolved value in the word. *v: the word as it is after. */
void table_mcas_help(table_slot *s, table_word *v, uint64_t a, uint64_t b);
/* Step 2 for entry i: runs step on the key's current value (helping
 * other changes out of the way); a WRITE or a KEEP installs d with that
 * value as the new one (a KEEP: unchanged, still protected until the
 * decision). Returns the step's answer (TABLE_STEP_WRITE / _KEEP once
 * installed), TABLE_UPDATE_NO_KEY for an absent key the step would
 * write, or the step's refusal (nothing installed). */
int table_mcas_install(table *t, table_mcas *d, size_t i, table_step_fn step, void *ctx);
/* Step 3: true when d is now SUCCEEDED (false: someone aborted it). */
bool table_mcas_decide(table_mcas *d);
/* Step 4, and the abort's: puts every installed word to its decided value
 * and retires d (d must not be used after). */
void table_mcas_finish(table *t, table_mcas *d);
/* Aborts d (if nobody decided it yet) and finishes it: every installed
 * word goes back to its old value unchanged. */
void table_mcas_abort(table *t, table_mcas *d);

/* table_load, resolving a multi-word change in flight for the slot's key
 * (a, b): what every reader of a table with such changes uses. */
static inline table_word table_load_key(const table_slot *s, uint64_t a, uint64_t b)
{
    table_word v = table_load(s);
    if (__builtin_expect((v.w1 & TABLE_DESC) != 0, 0))
        v = table_mcas_resolve(v, a, b);
    return v;
}

/* The slot of (a, b) through the memo, by insert, or by find. */
static inline table_slot *table_update_slot(table *t, uint64_t a, uint64_t b, bool insert,
                                            table_memo *memo)
{
    if (insert)
        return table_insert(t, a, b);
    return memo ? table_find_memo(t, a, b, memo) : table_find(t, a, b);
}

/* Runs step on (a, b)'s value until it refuses, keeps, or its write lands:
 * returns the step's answer (TABLE_STEP_WRITE once written). *out (may be
 * NULL) gets the value written, or the value the step kept or refused;
 * *where (may be NULL) the slot it was in (NULL: no key), set before
 * each step runs (a step given where's address may read the slot).
 * insert: claim the key when absent (NULL slot: INV_ENOMEM). memo: NULL,
 * or a per-thread lookup memo (forgotten when growth is met). Always
 * inline, so a step known at the call site inlines too (the hot paths). */
static inline __attribute__((always_inline)) int
table_update_at(table *t, uint64_t a, uint64_t b, bool insert, table_memo *memo, table_step_fn step,
                void *ctx, table_word *out, table_slot **where)
{
    unsigned backoff = TABLE_BACKOFF_MIN;
    for (;;) {
        table_slot *s = table_update_slot(t, a, b, insert, memo);
        table_word v = s ? table_load(s) : (table_word){0, 0};
        if (!s && insert)
            return INV_ENOMEM;
        if (where)
            *where = s; /* the step may look at the slot it decides on */
        for (;;) {
            if (table_is_frozen(v)) {
                if (memo)
                    table_memo_forget(memo);
                table_settle(t, s); /* growth: redo in the next array */
                break;
            }
            if (__builtin_expect((v.w1 & TABLE_DESC) != 0, 0)) {
                table_mcas_help(s, &v, a, b); /* v: the word after it */
                continue;
            }
            table_word next = v;
            int rc = step(ctx, v, &next);
            if (rc != TABLE_STEP_WRITE || !s) {
                if (out)
                    *out = v;
                if (where)
                    *where = s;
                return rc == TABLE_STEP_WRITE ? TABLE_UPDATE_NO_KEY : rc;
            }
            if (table_cas(s, &v, next)) {
                if (out)
                    *out = next;
                if (where)
                    *where = s;
                return TABLE_STEP_WRITE;
            }
            table_backoff(&backoff);
        }
    }
}

/* table_update_at without the slot. */
static inline __attribute__((always_inline)) int table_update(table *t, uint64_t a, uint64_t b,
                                                              bool insert, table_memo *memo,
                                                              table_step_fn step, void *ctx,
                                                              table_word *out)
{
    return table_update_at(t, a, b, insert, memo, step, ctx, out, NULL);
}

#endif /* INV_TABLE_H */
