/*
 * level_cold.c — the cold part of a level (level.h): the named quantities
 * beside available and held, the oversell policy, the location's activity
 * and the timestamps. Their changes (moves, fulfilment, policy, activity,
 * deletion), full reads, the copy growth makes, and recovery's install.
 *
 * Invariants:
 *  - every change of the cold part, a commit's count (committed += n)
 *    included, holds the level's LOCK bit from before its CAS of the hot
 *    word until its cold stores are done: so an unlocked cold part is the
 *    cold part of the hot word there now, and a reader that saw the same
 *    hot word before and after reading an unlocked cold part read one
 *    state (level_read_full, level_read_at);
 *  - a single holder of LOCK never settles, inserts or takes a second LOCK
 *    (growth waits for LOCK to be free: it would wait for itself); a lock
 *    set (level_locks_take) takes its LOCKs in key order and settles only
 *    slots it holds, whose copy takes the LOCK along (level_move_cold);
 *  - once MOVED is set nothing changes the old cold part: a locker settles
 *    and goes on in the next array;
 *  - every named quantity stays >= 0 (available: above its floor), held =
 *    reserved + committed <= LEVEL_HELD_MAX, and the RULES bit of the hot
 *    word is set exactly when the cold word has INACTIVE or CONTINUE;
 *  - a cold change with its own position publishes one LEVEL_COLD record
 *    (format 2): the level after and before (both read under the LOCK),
 *    its feed kind (level_cold_op.feed_kind) and its time.
 */
#include "level_cold.h"

#include "catalog.h"
#include "epoch.h"
#include "persist.h"

#include <assert.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Spins on a held LOCK before yielding the CPU to its holder. */
#define LEVEL_LOCK_SPINS 64u

static void lock_wait(unsigned *spins)
{
    assert(spins != NULL);
    if (++*spins < LEVEL_LOCK_SPINS)
        cpu_relax();
    else
        sched_yield();
}

static inline uint64_t load_rules(level_cold *c)
{
    assert(c != NULL);
    /* acquire: the cold stores of the change that set these bits (and a
     * commit's count) are seen with them. */
    return atomic_load_explicit(&c->rules, memory_order_acquire);
}

static void unlock_cold(level_cold *c)
{
    assert(c != NULL);
    /* relaxed: we hold the lock, nobody else clears it */
    assert(atomic_load_explicit(&c->rules, memory_order_relaxed) & LEVEL_COLD_LOCK);
    /* release: the cold stores before it are seen by the next locker or
     * reader that sees LOCK clear. */
    atomic_fetch_and_explicit(&c->rules, ~LEVEL_COLD_LOCK, memory_order_release);
}

/* ---- the calling thread's lock set (level_cold.h) ---------------------- */

/* One LOCK of the calling thread's set: the cold part it is in now (growth
 * moves it, level_move_cold) and the units to count at the release. */
typedef struct {
    uint64_t item, loc;
    level_cold *cold;
    int64_t count;
} held_lock;

static __thread held_lock lock_set[LEVEL_LOCKS_MAX];
static __thread size_t lock_set_n;

bool level_locks_held(void)
{
    assert(lock_set_n <= LEVEL_LOCKS_MAX);
    return lock_set_n != 0;
}

static held_lock *lock_set_of_cold(const level_cold *c)
{
    assert(c != NULL && lock_set_n <= LEVEL_LOCKS_MAX);
    for (size_t i = 0; i < lock_set_n; i++)
        if (lock_set[i].cold == c)
            return &lock_set[i];
    return NULL;
}

bool level_locks_mine(const level_cold *c)
{
    return lock_set_n != 0 && lock_set_of_cold(c) != NULL;
}

/* Held by another thread: a reader or another change waits for it. */
static inline bool locked_by_other(const level_cold *c, uint64_t rules)
{
    return (rules & LEVEL_COLD_LOCK) && !level_locks_mine(c);
}

/* ---- the named quantities of a state ------------------------------------ */

void level_quantities(table_word v, uint64_t rules, uint64_t d_s, uint64_t q_i,
                      int64_t q[INV_QTY_NAMES])
{
    assert(q != NULL);
    int64_t committed = level_committed(rules), held = level_held(v);
    q[INV_QTY_AVAILABLE] = level_available(v);
    q[INV_QTY_RESERVED] = held > committed ? held - committed : 0;
    q[INV_QTY_COMMITTED] = committed;
    q[INV_QTY_DAMAGED] = (int64_t)(uint32_t)d_s;
    q[INV_QTY_SAFETY_STOCK] = (int64_t)(uint32_t)(d_s >> 32);
    q[INV_QTY_QUALITY_CONTROL] = (int64_t)(uint32_t)q_i;
    q[INV_QTY_INCOMING] = (int64_t)(uint32_t)(q_i >> 32);
}

static void fill_full(table_word v, uint64_t rules, uint64_t d_s, uint64_t q_i, uint32_t created_s,
                      uint32_t updated_s, inv_level_full *out)
{
    assert(out != NULL);
    level_quantities(v, rules, d_s, q_i, out->qty);
    out->on_hand = level_on_hand(out->qty);
    out->revision = table_version(v);
    out->created_at_ms = (int64_t)created_s * 1000;
    out->updated_at_ms = (int64_t)updated_s * 1000;
    out->policy = rules & LEVEL_COLD_CONTINUE ? INV_POLICY_CONTINUE : INV_POLICY_DENY;
    uint64_t limit = rules >> LEVEL_LIMIT_SHIFT;
    out->preorder_limit = limit == LEVEL_LIMIT_NONE || !(rules & LEVEL_COLD_CONTINUE)
                              ? INV_NO_PREORDER_LIMIT
                              : (int64_t)limit;
    out->location_active = !level_inactive(rules);
}

/* ---- reads ---------------------------------------------------------------- */

int level_rules_read(inv_engine *e, uint64_t item, uint64_t loc, level_rules *out)
{
    assert(e != NULL && out != NULL);
    unsigned spins = 0;
    for (;;) {
        table_slot *s = table_find(&e->levels, item, loc);
        if (!s)
            return INV_ENOTFOUND;
        table_word v = table_load_key(s, item, loc);
        if (v.w1 & TABLE_MOVED)
            continue; /* table_find now answers the next array */
        if (!table_is_live(v))
            return INV_ENOTFOUND;
        uint64_t r = load_rules(level_cold_of(s));
        if (locked_by_other(level_cold_of(s), r)) {
            lock_wait(&spins); /* a rules change is landing */
            continue;
        }
        table_word again = table_load_key(s, item, loc);
        if (again.w0 != v.w0 || again.w1 != v.w1)
            continue;
        out->rules = r;
        out->revision = table_version(v);
        return INV_OK;
    }
}

int level_read_full(inv_engine *e, uint64_t item, uint64_t loc, inv_level_full *out)
{
    assert(e != NULL && out != NULL);
    unsigned spins = 0;
    for (;;) {
        table_slot *s = table_find(&e->levels, item, loc);
        if (!s)
            return INV_ENOTFOUND;
        level_cold *c = level_cold_of(s);
        table_word v = table_load_key(s, item, loc);
        if (v.w1 & TABLE_MOVED)
            continue;
        if (!table_is_live(v))
            return INV_ENOTFOUND;
        uint64_t r = load_rules(c);
        if (locked_by_other(c, r)) {
            lock_wait(&spins);
            continue;
        }
        /* relaxed (all four): ordered by the acquire of rules above and
         * checked by the re-reads below. */
        uint64_t d_s = atomic_load_explicit(&c->d_s, memory_order_relaxed);
        uint64_t q_i = atomic_load_explicit(&c->q_i, memory_order_relaxed);
        uint32_t created_s = atomic_load_explicit(&c->created_s, memory_order_relaxed);
        uint32_t updated_s = atomic_load_explicit(&c->updated_s, memory_order_relaxed);
        table_word again = table_load_key(s, item, loc);
        uint64_t r2 = load_rules(c);
        if (again.w0 != v.w0 || again.w1 != v.w1 || locked_by_other(c, r2) ||
            (r2 & ~LEVEL_COMMITTED_MASK) != (r & ~LEVEL_COMMITTED_MASK))
            continue; /* a cold change ran meanwhile: read again */
        fill_full(v, r2, d_s, q_i, created_s, updated_s, out);
        return INV_OK;
    }
}

uint64_t level_rules_now(inv_engine *e, uint64_t item, uint64_t loc)
{
    assert(e != NULL);
    table_slot *s = table_find(&e->levels, item, loc);
    return s ? load_rules(level_cold_of(s)) : 0;
}

int inv_level_get_full(inv_engine *e, uint64_t item, uint64_t loc, inv_level_full *out)
{
    if (!e || !out)
        return INV_EINVALID;
    epoch_enter();
    int rc = level_read_full(e, item, loc, out);
    epoch_exit();
    assert(rc != INV_OK || (out->revision >= 1 && out->qty[INV_QTY_COMMITTED] >= 0));
    return rc;
}

/* ---- commits' counts ------------------------------------------------------- */

void level_commit_units(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty)
{
    assert(e != NULL && qty > 0 && qty <= INV_QTY_MAX);
    if (level_locks_held()) {
        level_locks_count(item, loc, qty); /* a batch under its set: at its release */
        return;
    }
    level_key key = {item, loc, false};
    level_locks_take(e, &key, 1);
    level_locks_count(item, loc, qty);
    level_locks_release();
    assert(!level_locks_held()); /* counted and released */
}

/* ---- lock sets (level_cold.h) -------------------------------------------- */

bool level_locks_cover(inv_engine *e, const level_key *keys, size_t n)
{
    assert(e != NULL && keys != NULL);
    for (size_t i = 0; i < n; i++) {
        table_slot *s = table_find(&e->levels, keys[i].item, keys[i].loc);
        if (s ? !level_locks_mine(level_cold_of(s)) : keys[i].claimed)
            return false;
    }
    return true;
}

/* The one wait-then-decide loop on a cold part growth met (keep_unlive,
 * level_move_cold): waits while another thread holds its LOCK, then false
 * if it is MOVED (decided already), else sets bits by one CAS and answers
 * true with *r the rules it replaced. */
static bool growth_decide(level_cold *f, uint64_t bits, uint64_t *r)
{
    assert(f != NULL && r != NULL && bits != 0);
    unsigned spins = 0;
    *r = load_rules(f);
    for (;;) {
        if (*r & LEVEL_COLD_MOVED)
            return false; /* decided: copied, or dropped */
        if (*r & LEVEL_COLD_LOCK) {
            (void)fault_check_arg(FAULT_LEVEL_MOVE, (uint64_t)(uintptr_t)f, 1); /* a test point */
            lock_wait(&spins); /* a cold change, a set or a copier first */
            *r = load_rules(f);
            continue;
        }
        /* acq_rel: every cold store of f's last holder comes with it, and
         * the decision (MOVED, or the copier's LOCK) is one step a locker's
         * CAS after it fails on. */
        if (atomic_compare_exchange_weak_explicit(&f->rules, r, *r | bits, memory_order_acq_rel,
                                                  memory_order_acquire))
            return true;
    }
}

bool level_cold_keep_unlive(void *extra)
{
    level_cold *f = extra;
    assert(f != NULL);
    if (lock_set_of_cold(f))
        return true; /* ours: this settle copies it, the LOCK along */
    uint64_t r;
    (void)growth_decide(f, LEVEL_COLD_MOVED, &r); /* dropped by us, or decided before */
    return false;
}

static int key_cmp(const void *x, const void *y)
{
    const level_key *a = x, *b = y;
    if (a->item != b->item)
        return a->item < b->item ? -1 : 1;
    return a->loc < b->loc ? -1 : a->loc > b->loc;
}

/* One try at (item, loc)'s cold LOCK (the one CAS loop every locker
 * shares): COLD_TRY_LOCKED (ours now) or COLD_TRY_MINE (the calling
 * thread's set holds it), both with *slot; COLD_TRY_ABSENT (no slot); or
 * COLD_TRY_AGAIN after settling a moved part or waiting for a holder. */
enum { COLD_TRY_LOCKED, COLD_TRY_MINE, COLD_TRY_ABSENT, COLD_TRY_AGAIN };

static int cold_try_lock(inv_engine *e, uint64_t item, uint64_t loc, table_slot **slot,
                         unsigned *spins)
{
    assert(e != NULL && slot != NULL && spins != NULL);
    table_slot *s = table_find(&e->levels, item, loc);
    if (!s)
        return COLD_TRY_ABSENT;
    level_cold *c = level_cold_of(s);
    /* relaxed: the CAS below decides. */
    uint64_t r = atomic_load_explicit(&c->rules, memory_order_relaxed);
    if (r & LEVEL_COLD_MOVED) {
        table_settle(&e->levels, s); /* copied already, or ours: never waits */
        return COLD_TRY_AGAIN;
    }
    *slot = s;
    if (level_locks_mine(c))
        return COLD_TRY_MINE;
    if (r & LEVEL_COLD_LOCK) {
        lock_wait(spins); /* a holder never waits for a later key */
        return COLD_TRY_AGAIN;
    }
    /* acquire: the previous holder's cold stores. */
    if (!atomic_compare_exchange_weak_explicit(&c->rules, &r, r | LEVEL_COLD_LOCK,
                                               memory_order_acquire, memory_order_relaxed))
        return COLD_TRY_AGAIN;
    assert(atomic_load_explicit(&c->rules, memory_order_relaxed) & LEVEL_COLD_LOCK);
    return COLD_TRY_LOCKED;
}

/* Takes (item, loc)'s LOCK into the set (no slot: nothing to lock). A
 * frozen hot word is settled under the LOCK: the copy takes it along. */
static void lock_set_add(inv_engine *e, uint64_t item, uint64_t loc)
{
    assert(lock_set_n < LEVEL_LOCKS_MAX);
    unsigned spins = 0;
    table_slot *s = NULL;
    int got;
    while ((got = cold_try_lock(e, item, loc, &s, &spins)) == COLD_TRY_AGAIN)
        ;
    if (got == COLD_TRY_ABSENT)
        return;
    assert(got == COLD_TRY_LOCKED); /* keys are taken once each */
    lock_set[lock_set_n++] = (held_lock){item, loc, level_cold_of(s), 0};
    /* Frozen: settled by us, so the copy takes the LOCK along (an unlive
     * slot too: growth decides on it by its cold part, which we hold). */
    if (table_is_frozen(table_load(s)))
        table_settle(&e->levels, s);
    assert(atomic_load_explicit(&lock_set[lock_set_n - 1].cold->rules, memory_order_relaxed) &
           LEVEL_COLD_LOCK);
}

void level_locks_take(inv_engine *e, const level_key *keys, size_t n)
{
    assert(e != NULL && n <= LEVEL_LOCKS_MAX);
    assert(lock_set_n == 0); /* one set per thread at a time */
    level_key sorted[LEVEL_LOCKS_MAX];
    memcpy(sorted, keys, n * sizeof *keys);
    qsort(sorted, n, sizeof *sorted, key_cmp);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || key_cmp(&sorted[i - 1], &sorted[i]) != 0)
            lock_set_add(e, sorted[i].item, sorted[i].loc);
    /* taken in key order (no deadlock between sets), each key once */
    for (size_t i = 1; i < lock_set_n; i++)
        assert(key_cmp(&(level_key){lock_set[i - 1].item, lock_set[i - 1].loc, false},
                       &(level_key){lock_set[i].item, lock_set[i].loc, false}) < 0);
    assert(lock_set_n <= n);
}

void level_locks_count(uint64_t item, uint64_t loc, int64_t qty)
{
    assert(qty >= 0 && qty <= INV_QTY_MAX);
    assert(lock_set_n <= LEVEL_LOCKS_MAX); /* counts land at the set's release */
    for (size_t i = 0; i < lock_set_n; i++)
        if (lock_set[i].item == item && lock_set[i].loc == loc) {
            lock_set[i].count += qty;
            return;
        }
    /* Not in the set: the level had no slot when the set was taken (its
     * item was deleted), so there is nothing to count on. */
}

void level_locks_release(void)
{
    for (size_t i = 0; i < lock_set_n; i++) {
        level_cold *c = lock_set[i].cold;
        /* relaxed: we hold the LOCK; nobody else writes rules meanwhile. */
        uint64_t r = atomic_load_explicit(&c->rules, memory_order_relaxed);
        assert((r & LEVEL_COLD_LOCK) && !(r & LEVEL_COLD_MOVED));
        uint64_t committed = (r & LEVEL_COMMITTED_MASK) + (uint64_t)lock_set[i].count;
        assert(committed <= LEVEL_COMMITTED_MASK); /* within held */
        /* release: the count and the unlock in one store, after the hot
         * CAS that sold the units: a reader that sees LOCK clear sees the
         * count with it. */
        atomic_store_explicit(&c->rules,
                              (r & ~(LEVEL_COMMITTED_MASK | LEVEL_COLD_LOCK)) | committed,
                              memory_order_release);
    }
    lock_set_n = 0;
}

void level_cold_wait(table_slot *s)
{
    assert(s != NULL);
    unsigned spins = 0;
    level_cold *c = level_cold_of(s);
    /* A MOVED part is final: its LOCK (a set's, moved with the copy) is
     * never cleared here; the caller finds the level in the next array. */
    for (uint64_t r = load_rules(c); locked_by_other(c, r) && !(r & LEVEL_COLD_MOVED);
         r = load_rules(c)) {
        if (spins == 0)
            (void)fault_check_arg(FAULT_LEVEL_WAIT, (uint64_t)(uintptr_t)c, 0); /* a test point */
        lock_wait(&spins);
    }
}

static bool same_word(table_word x, table_word y)
{
    return x.w0 == y.w0 && x.w1 == y.w1;
}

int level_read_at(inv_engine *e, uint64_t item, uint64_t loc, table_slot *s, table_word v,
                  inv_level *out)
{
    assert(e != NULL && s != NULL);
    unsigned spins = 0;
    for (;;) {
        uint64_t r = 0;
        bool moved = (v.w1 & TABLE_MOVED) != 0;
        if (!moved && table_is_live(v)) {
            r = load_rules(level_cold_of(s));
            if (r & LEVEL_COLD_MOVED) {
                /* growth: settle, unless the thread's own set holds it (the
                 * settle would copy it: the copy takes the LOCK along) */
                table_settle(&e->levels, s);
                moved = true;
            } else if (locked_by_other(level_cold_of(s), r)) {
                lock_wait(&spins); /* a change is landing: read again */
                v = table_load_key(s, item, loc);
                continue;
            } else {
                table_word again = table_load_key(s, item, loc);
                if (!same_word(again, v)) {
                    v = again; /* a change came between: read again */
                    continue;
                }
            }
        }
        if (moved) {
            s = table_find(&e->levels, item, loc);
            if (!s)
                return INV_ENOTFOUND;
            v = table_load_key(s, item, loc);
            continue;
        }
        if (!table_is_live(v))
            return INV_ENOTFOUND;
        /* the count read for v's revision is within v's held */
        assert(level_held(v) == 0 || level_committed(r) <= level_held(v));
        level_out(v, level_held(v) != 0 ? r : 0, out);
        return INV_OK;
    }
}

void level_out_slot(table_word v, table_slot *s, inv_level *out)
{
    uint64_t rules = 0;
    if (out && s && level_held(v) != 0)
        /* acquire: pairs with the counting store (release). */
        rules = atomic_load_explicit(&level_cold_of(s)->rules, memory_order_acquire);
    level_out(v, rules, out);
}

/* ---- growth -------------------------------------------------------------- */

/* The fields of a cold part (all but rules) into a fresh copy. */
static void copy_cold_fields(level_cold *f, level_cold *t)
{
    assert(f != NULL && t != NULL);
    /* relaxed (all): ordered by the capture of f's rules and published by
     * the release of t's LOCK. */
    atomic_store_explicit(&t->d_s, atomic_load_explicit(&f->d_s, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&t->q_i, atomic_load_explicit(&f->q_i, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&t->created_s, atomic_load_explicit(&f->created_s, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&t->updated_s, atomic_load_explicit(&f->updated_s, memory_order_relaxed),
                          memory_order_relaxed);
}

/* Growth's copy of a cold part has one copier, the thread that holds f's
 * LOCK while f is not yet MOVED (a lock set's owner settling its own
 * level, or a helper that takes the LOCK for the copy), and f becomes
 * MOVED only once the copy is whole. So MOVED means "copied": a helper
 * that finds f MOVED returns, and its settle may publish the copy's slot
 * at once. (Before, a helper that lost the race to copy returned while the
 * winner was still copying, published the slot, and the winner, finding
 * the slot live, skipped the copy: the level lost its cold quantities.) */

/* The copier's part: f is LOCKed by the calling thread and not MOVED. */
static void copy_cold_locked(level_cold *f, level_cold *t, uint64_t r)
{
    assert((r & LEVEL_COLD_LOCK) && !(r & LEVEL_COLD_MOVED));
    uint64_t fresh = 0;
    /* relaxed: t is in a slot nobody can find before its hot word is
     * published (after f is MOVED); the release below orders the copy. */
    bool ours = atomic_compare_exchange_strong_explicit(&t->rules, &fresh, r, memory_order_relaxed,
                                                        memory_order_relaxed);
    assert(ours); /* the only copier: t is a fresh slot's cold part */
    (void)ours;
    copy_cold_fields(f, t);
}

/* Growth copies a cold part this thread's lock set holds (its own settle):
 * the copy is made LOCKed (the set's LOCK moves into it), then MOVED marks
 * the old one, which keeps its LOCK (final). */
static void move_cold_held(level_cold *f, level_cold *t)
{
    /* relaxed: we hold f's LOCK; nobody else changes it. */
    uint64_t r = atomic_load_explicit(&f->rules, memory_order_relaxed);
    copy_cold_locked(f, t, r);
    /* release: the copy is whole before a waiting helper sees MOVED. */
    atomic_fetch_or_explicit(&f->rules, LEVEL_COLD_MOVED, memory_order_release);
}

void level_move_cold(void *from, void *to)
{
    assert(from != NULL && to != NULL);
    level_cold *f = from, *t = to;
    held_lock *mine = lock_set_of_cold(f);
    if (mine) {
        move_cold_held(f, t);
        mine->cold = t; /* the set's LOCK is in the copy now */
        return;
    }
    uint64_t r;
    if (!growth_decide(f, LEVEL_COLD_LOCK, &r))
        return; /* copied, whole */
    (void)fault_check_arg(FAULT_LEVEL_MOVE, (uint64_t)(uintptr_t)f, 0); /* a test point */
    copy_cold_locked(f, t, r | LEVEL_COLD_LOCK);
    unlock_cold(t);
    /* release: the copy is whole before a helper sees MOVED (and publishes
     * the copy's slot); f keeps no LOCK (nobody holds it now). */
    atomic_store_explicit(&f->rules, r | LEVEL_COLD_MOVED, memory_order_release);
    assert(load_rules(t) == r); /* the copy, unlocked */
}

/* ---- positions ------------------------------------------------------------ */

/* A level already stamped at or above pos cannot take it: abandon it (a
 * PAD record) and reserve again. A position reserved after the word was
 * loaded is above every revision on it, so the loop turns at most once
 * (positions only grow). 0: the journal failed. */
static uint64_t level_reposition(inv_engine *e, uint64_t pos, uint64_t version, uint32_t len)
{
    assert(pos != 0 && version >= pos);
    while (pos != 0 && version >= pos) {
        persist_abandon(e, pos, len);
        pos = persist_reserve(e, len);
    }
    return pos;
}

uint64_t level_position_for(inv_engine *e, uint64_t pos, uint64_t version, uint32_t len)
{
    assert(e != NULL && e->jr != NULL);
    if (pos == 0)
        pos = persist_reserve(e, len);
    if (pos != 0 && version >= pos)
        pos = level_reposition(e, pos, version, len);
    return pos;
}

/* ---- cold changes ------------------------------------------------------------ */

/* Locks (item, loc)'s cold part: *slot, and *v its hot word as read under
 * the lock (not frozen). NOTFOUND when the key has no slot. *owned: the
 * calling thread's lock set holds it already (nothing taken; the change
 * gives nothing back: unlock_level). */
static int lock_level(inv_engine *e, uint64_t item, uint64_t loc, table_slot **slot, table_word *v,
                      bool *owned)
{
    assert(e != NULL && slot != NULL && v != NULL);
    unsigned spins = 0;
    for (;;) {
        table_slot *s = NULL;
        int got = cold_try_lock(e, item, loc, &s, &spins);
        if (got == COLD_TRY_ABSENT)
            return INV_ENOTFOUND;
        if (got == COLD_TRY_AGAIN)
            continue;
        /* the set's LOCK stays the set's; one taken here is given back */
        *owned = got == COLD_TRY_MINE;
        assert(*owned || !level_locks_held()); /* a set holder locks only through its set */
        *v = level_load_helped(s, item, loc);
        if (table_is_frozen(*v)) {
            if (!*owned)
                unlock_cold(level_cold_of(s)); /* a single holder never settles */
            table_settle(&e->levels, s); /* the set's: the copy takes its LOCK */
            continue;
        }
        *slot = s;
        return INV_OK;
    }
}

/* The raw field a named quantity other than available, reserved and
 * committed lives in. */
/* Gives back a LOCK lock_level took (none when the set owns it). */
static void unlock_level(level_cold *c, bool owned)
{
    assert(c != NULL);
    assert(!owned || level_locks_mine(c)); /* the set's LOCK stays until its release */
    if (!owned)
        unlock_cold(c);
}

static int raw_of(int q)
{
    assert(q >= 0 && q < INV_QTY_NAMES);
    switch (q) {
    case INV_QTY_INCOMING:
        return LEVEL_RAW_INCOMING;
    case INV_QTY_DAMAGED:
        return LEVEL_RAW_DAMAGED;
    case INV_QTY_SAFETY_STOCK:
        return LEVEL_RAW_SAFETY;
    default:
        assert(q == INV_QTY_QUALITY_CONTROL);
        return LEVEL_RAW_QC;
    }
}

/* A move's raw deltas (op->raw) and, in a batch, its pending units
 * (op->pend_out): a decrease takes the batch's own pending units first
 * (they sit in held), then real ones; an increase of a tracked level in a
 * batch stays pending in held until the batch is decided (level.h), so no
 * other caller can take units the batch may still take back. */
static int plan_move(level_cold_op *op, table_word v, uint64_t rules, const int64_t *cur)
{
    assert(op != NULL && cur != NULL);
    bool pend = op->batch && !level_untracked(v);
    for (int x = 0; x < INV_QTY_NAMES; x++) {
        int64_t d = op->d[x];
        if (d == 0)
            continue;
        assert(x != INV_QTY_RESERVED); /* reserved changes only by holds */
        if (d > 0) {
            if (pend) {
                op->raw[LEVEL_RAW_HELD] += d;
                op->pend_out[x] += d;
            } else if (x == INV_QTY_AVAILABLE) {
                op->raw[LEVEL_RAW_AVAILABLE] += d;
            } else if (x == INV_QTY_COMMITTED) {
                op->raw[LEVEL_RAW_COMMITTED] += d;
                op->raw[LEVEL_RAW_HELD] += d;
            } else {
                op->raw[raw_of(x)] += d;
            }
            continue;
        }
        int64_t need = -d, pending = pend ? op->pend_in[x] : 0;
        int64_t from_pending = pending < need ? pending : need, real = need - from_pending;
        op->raw[LEVEL_RAW_HELD] -= from_pending;
        op->pend_out[x] -= from_pending;
        if (x == INV_QTY_AVAILABLE) {
            int64_t floor = op->floor;
            if (floor == INV_NO_FLOOR && !level_untracked(v))
                floor = level_policy_floor(rules);
            if (floor != INV_NO_FLOOR && cur[LEVEL_RAW_AVAILABLE] + pending - need < floor)
                return INV_EINSUFFICIENT;
            op->raw[LEVEL_RAW_AVAILABLE] -= real;
        } else if (x == INV_QTY_COMMITTED) {
            if (cur[LEVEL_RAW_COMMITTED] < real)
                return INV_EINSUFFICIENT;
            op->raw[LEVEL_RAW_COMMITTED] -= real;
            op->raw[LEVEL_RAW_HELD] -= real;
        } else {
            if (cur[raw_of(x)] < real)
                return INV_EINSUFFICIENT;
            op->raw[raw_of(x)] -= real;
        }
    }
    return INV_OK;
}

/* Is a cold part with these words one a change may leave beside a hot word
 * holding held units (asserts only)? Its four named quantities within
 * 0 .. INV_QTY_MAX (as level_cold_valid asks of a journaled one; every
 * cold part read from disk passed it), not MOVED (growth waits for our
 * LOCK), and committed <=
 * held. (Not the preorder limit: a batch undo in recovery restores
 * rules_before as its record has them.) */
static bool cold_ok(uint64_t rules, uint64_t d_s, uint64_t q_i, int64_t held)
{
    return (uint32_t)d_s <= INV_QTY_MAX && (uint32_t)(d_s >> 32) <= INV_QTY_MAX &&
           (uint32_t)q_i <= INV_QTY_MAX && (uint32_t)(q_i >> 32) <= INV_QTY_MAX &&
           !(rules & LEVEL_COLD_MOVED) && level_committed(rules) <= held;
}

/* Decides a cold change on (v, the locked cold part): the next hot w0 and
 * cold words, or a refusal; op's outputs (raw, pend_out, rules_before)
 * describe it. */
static int cold_decide(inv_engine *e, uint64_t loc, level_cold_op *op, table_word v, uint64_t rules,
                       uint64_t d_s, uint64_t q_i, uint64_t *w0, uint64_t *rules_out,
                       uint64_t *d_s_out, uint64_t *q_i_out)
{
    assert(e != NULL && op != NULL && w0 != NULL);
    assert(rules_out != NULL && d_s_out != NULL && q_i_out != NULL);
    memset(op->raw, 0, sizeof op->raw);
    memset(op->pend_out, 0, sizeof op->pend_out);
    if (!table_is_live(v))
        return INV_ENOTFOUND;
    if (op->kind == LEVEL_COLD_DELETE) {
        if (!op->force && level_held(v) > 0)
            return INV_ECONFLICT; /* holds or orders still count on it */
        *w0 = 0;
        *rules_out = *d_s_out = *q_i_out = 0;
        return TABLE_STEP_WRITE;
    }
    uint64_t new_rules = rules;
    op->rules_before = rules & op->rules_mask;
    if (op->kind == LEVEL_COLD_RULES) {
        uint64_t bits = op->rules_bits;
        if (op->follow_location)
            bits = catalog_location_active(&e->cat, loc) ? 0 : LEVEL_COLD_INACTIVE;
        new_rules = (rules & ~op->rules_mask) | (bits & op->rules_mask);
        if (new_rules == rules && !op->batch)
            return LEVEL_COLD_KEEP;
    } else if (op->stock_change && level_inactive(rules)) {
        return INV_EINVALID;
    }
    int64_t cur[LEVEL_RAW_N] = {level_available(v),     level_held(v),
                                level_committed(rules), (int64_t)(uint32_t)(q_i >> 32),
                                (int64_t)(uint32_t)d_s, (int64_t)(uint32_t)(d_s >> 32),
                                (int64_t)(uint32_t)q_i};
    bool saturate = op->kind == LEVEL_COLD_RAW;
    if (op->kind == LEVEL_COLD_MOVE) {
        int rc = plan_move(op, v, new_rules, cur);
        if (rc != INV_OK)
            return rc;
    } else if (saturate) {
        memcpy(op->raw, op->raw_in, sizeof op->raw);
    }
    int64_t next[LEVEL_RAW_N];
    for (int i = 0; i < LEVEL_RAW_N; i++)
        next[i] = cur[i] + op->raw[i];
    if (saturate) {
        /* An undo or a settle is never refused: beyond a field's range it
         * saturates (only when others moved a level by about INV_QTY_MAX
         * while a batch ran, as level_undo_at). */
        next[LEVEL_RAW_AVAILABLE] =
            level_clamp(next[LEVEL_RAW_AVAILABLE], -LEVEL_AVAILABLE_WIDE, LEVEL_AVAILABLE_WIDE);
        next[LEVEL_RAW_HELD] = level_clamp(next[LEVEL_RAW_HELD], 0, LEVEL_HELD_MAX);
        next[LEVEL_RAW_COMMITTED] = level_clamp(next[LEVEL_RAW_COMMITTED], 0, next[LEVEL_RAW_HELD]);
        for (int i = LEVEL_RAW_INCOMING; i < LEVEL_RAW_N; i++)
            next[i] = level_clamp(next[i], 0, INV_QTY_MAX);
    } else {
        if (next[LEVEL_RAW_HELD] > LEVEL_HELD_MAX)
            return INV_ELIMIT;
        for (int i = LEVEL_RAW_INCOMING; i < LEVEL_RAW_N; i++)
            if (next[i] > INV_QTY_MAX && op->raw[i] > 0)
                return INV_ELIMIT;
        if (!qty_in_range(next[LEVEL_RAW_AVAILABLE]) &&
            llabs(next[LEVEL_RAW_AVAILABLE]) > llabs(cur[LEVEL_RAW_AVAILABLE]))
            return INV_ELIMIT;
    }
    assert(next[LEVEL_RAW_HELD] >= next[LEVEL_RAW_COMMITTED] && next[LEVEL_RAW_COMMITTED] >= 0);
    bool has_rules = (new_rules & (LEVEL_COLD_INACTIVE | LEVEL_COLD_CONTINUE)) != 0;
    *w0 = level_pack(next[LEVEL_RAW_AVAILABLE], next[LEVEL_RAW_HELD], level_untracked(v)) |
          (has_rules ? LEVEL_RULES : 0);
    *rules_out = (new_rules & ~LEVEL_COMMITTED_MASK) | (uint64_t)next[LEVEL_RAW_COMMITTED];
    *d_s_out = (uint64_t)(uint32_t)next[LEVEL_RAW_DAMAGED] |
               (uint64_t)(uint32_t)next[LEVEL_RAW_SAFETY] << 32;
    *q_i_out = (uint64_t)(uint32_t)next[LEVEL_RAW_QC] | (uint64_t)(uint32_t)next[LEVEL_RAW_INCOMING]
                                                            << 32;
    assert(cold_ok(*rules_out, *d_s_out, *q_i_out, level_held((table_word){*w0, 0})));
    return TABLE_STEP_WRITE;
}

/* Stores the decided cold words under LOCK (nothing else changes them
 * while it is held: counts too are stored under LOCK). */
static void cold_store(level_cold *c, uint64_t rules_new, uint64_t d_s, uint64_t q_i,
                       bool clear_times, uint32_t now_s)
{
    assert(c != NULL);
    /* relaxed: we hold the cold lock */
    assert(atomic_load_explicit(&c->rules, memory_order_relaxed) & LEVEL_COLD_LOCK);
    assert(!(rules_new & LEVEL_COLD_MOVED)); /* growth waits for our LOCK */
    /* relaxed (d_s, q_i, times): published by the unlock's release. */
    atomic_store_explicit(&c->d_s, d_s, memory_order_relaxed);
    atomic_store_explicit(&c->q_i, q_i, memory_order_relaxed);
    if (clear_times)
        atomic_store_explicit(&c->created_s, 0, memory_order_relaxed);
    atomic_store_explicit(&c->updated_s, clear_times ? 0 : now_s, memory_order_relaxed);
    /* relaxed: LOCK stays set; the unlock (release) publishes. */
    atomic_store_explicit(&c->rules, rules_new | LEVEL_COLD_LOCK, memory_order_relaxed);
}

/* The journaled form of a cold part: committed, LOCK and MOVED left out
 * (recovery derives committed). */
static persist_cold cold_journaled(uint64_t rules, uint64_t d_s, uint64_t q_i, uint32_t created_s,
                                   uint32_t updated_s)
{
    return (persist_cold){rules & ~(LEVEL_COMMITTED_MASK | LEVEL_COLD_LOCK | LEVEL_COLD_MOVED), d_s,
                          q_i, created_s, updated_s};
}

/* The cold part of a locked level as it is before its change (the times
 * too: a hot change may store updated_s beside the lock, so it is the
 * second read, never a torn value). */
static persist_cold cold_before(level_cold *c, uint64_t rules, uint64_t d_s, uint64_t q_i)
{
    assert(c != NULL);
    /* relaxed: timestamps, ordered by our LOCK's acquire. */
    return cold_journaled(rules, d_s, q_i,
                          atomic_load_explicit(&c->created_s, memory_order_relaxed),
                          atomic_load_explicit(&c->updated_s, memory_order_relaxed));
}

/* Publishes a single change's LEVEL_COLD record (format 2) at pos: the
 * level after (*after), the level before (hot w0_before and *before) and
 * the meta. */
static int cold_publish(inv_engine *e, uint64_t pos, uint64_t item, uint64_t loc,
                        const level_image *after, uint64_t w0_before, const persist_cold *before,
                        uint64_t meta)
{
    assert(e != NULL && after != NULL && before != NULL);
    assert(pos >= JOURNAL_POSITION_FIRST);
    assert(pos != 0 && table_version(after->hot) == pos);
    /* A change with its own record names itself in it (a batch's undo in
     * memory, or after its journal failed, has no name and no record). */
    assert(persist_meta_kind(meta) != 0);
    persist_level_cold_change rec = {
        {item, loc, after->hot.w0, after->hot.w1, after->cold}, w0_before, *before, meta};
    return persist_level_cold(e, pos, &rec);
}

int level_cold_apply(inv_engine *e, uint64_t item, uint64_t loc, level_cold_op *op, uint64_t op_pos,
                     level_image *image, uint64_t *pos_out)
{
    assert(e != NULL && image != NULL && pos_out != NULL);
    assert(op->kind >= LEVEL_COLD_MOVE && op->kind <= LEVEL_COLD_RAW);
    bool own = op_pos == 0;
    uint64_t pos = own ? 0 : op_pos;
    *pos_out = 0;
    for (;;) {
        table_slot *s;
        table_word v;
        bool owned;
        int rc = lock_level(e, item, loc, &s, &v, &owned);
        if (rc != INV_OK) {
            if (own && pos && e->jr)
                persist_abandon(e, pos, PERSIST_LEVEL_COLD_LEN);
            return rc;
        }
        level_cold *c = level_cold_of(s);
        /* relaxed (all): our LOCK's acquire ordered them. */
        uint64_t rules = atomic_load_explicit(&c->rules, memory_order_relaxed);
        uint64_t d_s = atomic_load_explicit(&c->d_s, memory_order_relaxed);
        uint64_t q_i = atomic_load_explicit(&c->q_i, memory_order_relaxed);
        table_word next;
        uint64_t rules_new = 0, d_s_new = 0, q_i_new = 0;
        for (;;) {
            rc = cold_decide(e, loc, op, v, rules, d_s, q_i, &next.w0, &rules_new, &d_s_new,
                             &q_i_new);
            if (rc != TABLE_STEP_WRITE)
                break;
            uint64_t version = table_version(v);
            if (!e->jr) {
                next.w1 = version + 1;
            } else if (own) {
                pos = level_position_for(e, pos, version, PERSIST_LEVEL_COLD_LEN);
                if (pos == 0) {
                    rc = INV_EIO;
                    break;
                }
                next.w1 = pos;
            } else {
                if (version >= op_pos) {
                    rc = LEVEL_NEEDS_POSITION;
                    break;
                }
                next.w1 = op_pos;
            }
            if (op->kind == LEVEL_COLD_DELETE)
                next.w1 |= TABLE_TOMB;
            if (table_cas(s, &v, next))
                break;
            /* A multi-level change in flight on it: finish or abort it,
             * then decide on the word it leaves. */
            if (!table_is_frozen(v) && (v.w1 & TABLE_DESC))
                v = level_help_word(s, v, item, loc);
            if (table_is_frozen(v)) {
                rc = LEVEL_COLD_RETRY;
                break;
            }
            /* a hot change came first (no count: counts take LOCK too):
             * decide again on its word. */
        }
        if (rc == TABLE_STEP_WRITE) {
            /* One reading: the record's time and the updated_s stored. */
            level_time now = level_time_now(e);
            uint32_t now_s = now.s;
            bool deleted = op->kind == LEVEL_COLD_DELETE;
            persist_cold before = cold_before(c, rules, d_s, q_i);
            cold_store(c, rules_new, d_s_new, q_i_new, deleted, now_s);
            image->hot = next;
            image->cold = cold_journaled(rules_new, d_s_new, q_i_new,
                                         deleted ? 0 : before.created_s, deleted ? 0 : now_s);
            unlock_level(c, owned);
            if (deleted)
                table_note_deleted(&e->levels);
            if (own && e->jr) {
                *pos_out = pos;
                /* v: the word the CAS replaced (a failed CAS refreshed it) */
                return cold_publish(e, pos, item, loc, image, v.w0, &before,
                                    persist_meta(now.ms, op->feed_kind, false));
            }
            return INV_OK;
        }
        unlock_level(c, owned);
        if (rc == LEVEL_COLD_RETRY) {
            table_settle(&e->levels, s);
            continue;
        }
        bool kept = rc == LEVEL_COLD_KEEP;
        if (kept)
            rc = INV_OK; /* nothing to change */
        if (own && pos && e->jr)
            persist_abandon(e, pos, PERSIST_LEVEL_COLD_LEN);
        /* Nothing changed: acknowledged once the state it found (v's
         * revision) is durable, as level_rmw does. */
        if (own && kept && e->jr)
            *pos_out = table_version(v);
        image->hot = v;
        return rc;
    }
}

/* ---- recovery -------------------------------------------------------------- */

bool level_cold_valid(const persist_cold *cold)
{
    assert(cold != NULL);
    uint64_t limit = cold->rules >> LEVEL_LIMIT_SHIFT;
    uint64_t allowed = LEVEL_COLD_INACTIVE | LEVEL_COLD_CONTINUE | (~0ULL << LEVEL_LIMIT_SHIFT);
    return (cold->rules & ~allowed) == 0 && (limit == LEVEL_LIMIT_NONE || limit <= INV_QTY_MAX) &&
           (uint32_t)cold->d_s <= INV_QTY_MAX && (uint32_t)(cold->d_s >> 32) <= INV_QTY_MAX &&
           (uint32_t)cold->q_i <= INV_QTY_MAX && (uint32_t)(cold->q_i >> 32) <= INV_QTY_MAX;
}

void level_cold_install(table_slot *s, const persist_cold *cold, bool replace_times)
{
    assert(s != NULL && cold != NULL);
    level_cold *c = level_cold_of(s);
    /* relaxed (all): recovery runs alone; threads started after it see
     * them through the thread creation. committed is derived afterwards
     * (level_committed_derive), so the journaled rules leave it out. */
    uint64_t committed =
        atomic_load_explicit(&c->rules, memory_order_relaxed) & LEVEL_COMMITTED_MASK;
    uint64_t rules = cold->rules & ~(LEVEL_COMMITTED_MASK | LEVEL_COLD_LOCK | LEVEL_COLD_MOVED);
    atomic_store_explicit(&c->rules, rules | committed, memory_order_relaxed);
    atomic_store_explicit(&c->d_s, cold->d_s, memory_order_relaxed);
    atomic_store_explicit(&c->q_i, cold->q_i, memory_order_relaxed);
    if (replace_times || atomic_load_explicit(&c->created_s, memory_order_relaxed) == 0)
        atomic_store_explicit(&c->created_s, cold->created_s, memory_order_relaxed);
    atomic_store_explicit(&c->updated_s, cold->updated_s, memory_order_relaxed);
}

void level_cold_clear(table_slot *s)
{
    assert(s != NULL);
    level_cold *c = level_cold_of(s);
    /* relaxed (all): recovery runs alone. */
    atomic_store_explicit(&c->rules, 0, memory_order_relaxed);
    atomic_store_explicit(&c->d_s, 0, memory_order_relaxed);
    atomic_store_explicit(&c->q_i, 0, memory_order_relaxed);
    atomic_store_explicit(&c->created_s, 0, memory_order_relaxed);
    atomic_store_explicit(&c->updated_s, 0, memory_order_relaxed);
}

void level_cold_image(table_slot *s, persist_cold *out)
{
    assert(s != NULL && out != NULL);
    level_cold *c = level_cold_of(s);
    /* relaxed (all): a snapshot's image; replay from the snapshot's
     * position makes any change it raced with whole again. */
    *out = cold_journaled(atomic_load_explicit(&c->rules, memory_order_relaxed),
                          atomic_load_explicit(&c->d_s, memory_order_relaxed),
                          atomic_load_explicit(&c->q_i, memory_order_relaxed),
                          atomic_load_explicit(&c->created_s, memory_order_relaxed),
                          atomic_load_explicit(&c->updated_s, memory_order_relaxed));
}

static int committed_reset(void *ctx, uint64_t item, uint64_t loc, table_word v, table_slot *s)
{
    assert(s != NULL);
    (void)ctx, (void)item, (void)loc;
    level_cold *c = level_cold_of(s);
    /* relaxed: recovery runs alone. */
    uint64_t r = atomic_load_explicit(&c->rules, memory_order_relaxed);
    atomic_store_explicit(&c->rules, (r & ~LEVEL_COMMITTED_MASK) | (uint64_t)level_held(v),
                          memory_order_relaxed);
    return 0;
}

int level_committed_reset(inv_engine *e)
{
    assert(e != NULL);
    return table_foreach_slot(&e->levels, committed_reset, NULL);
}

int level_committed_less(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty)
{
    assert(e != NULL);
    table_slot *s = table_find(&e->levels, item, loc);
    if (!s || !table_is_live(table_load_key(s, item, loc)))
        return INV_ENOTFOUND;
    level_cold *c = level_cold_of(s);
    /* relaxed: recovery runs alone. */
    uint64_t r = atomic_load_explicit(&c->rules, memory_order_relaxed);
    int64_t committed = level_committed(r) - qty;
    if (committed < 0)
        return INV_ECONFLICT; /* the holds hold more than the level: corrupt */
    atomic_store_explicit(&c->rules, (r & ~LEVEL_COMMITTED_MASK) | (uint64_t)committed,
                          memory_order_relaxed);
    return INV_OK;
}

/* Replay and snapshot load: the install of a level image. */
int level_install_full(inv_engine *e, uint64_t item, uint64_t loc, table_word image,
                       uint32_t updated_s, const persist_cold *cold)
{
    assert(e != NULL);
    for (;;) {
        table_slot *s = table_insert_exclusive(&e->levels, item, loc);
        if (!s)
            return INV_ENOMEM;
        table_word v = table_load(s);
        if (table_is_frozen(v)) {
            table_settle(&e->levels, s);
            continue;
        }
        /* The cold part follows journal order (level_cold.c serialises its
         * changes); the hot word is newest-wins, as snapshots may hold
         * changes from after their position. */
        if (cold)
            level_cold_install(s, cold, true);
        if ((v.w1 != 0 || v.w0 != 0) && table_version(v) > table_version(image))
            return INV_OK;
        table_store_exclusive(s, image); /* recovery runs alone */
        if (!table_is_live(image)) {
            level_cold_clear(s);
        } else if (updated_s) {
            level_cold *c = level_cold_of(s);
            /* relaxed: recovery runs alone. */
            if (!table_is_live(v) && !cold)
                atomic_store_explicit(&c->created_s, updated_s, memory_order_relaxed);
            atomic_store_explicit(&c->updated_s, updated_s, memory_order_relaxed);
        }
        if (table_is_live(image) != table_is_live(v))
            table_note_exclusive(&e->levels, table_is_live(image) ? 1 : -1);
        return INV_OK;
    }
}

int level_install(inv_engine *e, uint64_t item, uint64_t loc, table_word image)
{
    assert(e != NULL);
    return level_install_full(e, item, loc, image, 0, NULL);
}

/* ---- names ------------------------------------------------------------------- */

static const char *const qty_names[INV_QTY_NAMES] = {
    "available", "reserved", "committed", "incoming", "damaged", "safety_stock", "quality_control",
};

const char *inv_qty_name_str(inv_qty_name q)
{
    return (unsigned)q < INV_QTY_NAMES ? qty_names[q] : NULL;
}

int inv_qty_name_parse(const char *s, size_t len, inv_qty_name *out)
{
    for (int i = 0; s && i < INV_QTY_NAMES; i++)
        if (strlen(qty_names[i]) == len && memcmp(qty_names[i], s, len) == 0) {
            *out = (inv_qty_name)i;
            assert(inv_qty_name_str(*out) == qty_names[i]); /* parse and str agree */
            return INV_OK;
        }
    return INV_EINVALID;
}

static const char *const reason_names[INV_REASONS] = {
    NULL,
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_canceled",
    "movement_created",
    "movement_received",
    "movement_updated",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
};

const char *inv_reason_str(inv_reason r)
{
    return (unsigned)r < INV_REASONS ? reason_names[r] : NULL;
}

int inv_reason_parse(const char *s, size_t len, inv_reason *out)
{
    for (int i = 1; s && i < INV_REASONS; i++)
        if (strlen(reason_names[i]) == len && memcmp(reason_names[i], s, len) == 0) {
            *out = (inv_reason)i;
            assert(inv_reason_str(*out) == reason_names[i]); /* parse and str agree */
            return INV_OK;
        }
    return INV_EINVALID;
}

/* ---- the public calls ---------------------------------------------------------- */

static bool movable(inv_qty_name q)
{
    return (unsigned)q < INV_QTY_NAMES && q != INV_QTY_RESERVED;
}

int level_move_op(level_cold_op *op, int64_t qty, inv_qty_name from, inv_qty_name to, int64_t floor)
{
    assert(op != NULL);
    if (!movable(from) || !movable(to) || from == to)
        return INV_EINVALID;
    if (qty < 1 || qty > INV_QTY_MAX || (floor != INV_NO_FLOOR && !qty_in_range(floor)))
        return qty < 1 ? INV_EINVALID : INV_ELIMIT;
    /* committed -> available takes a sale back: the feed's RETURN
     * (LEVEL.RETURN); any other move is a MOVE. */
    bool back = from == INV_QTY_COMMITTED && to == INV_QTY_AVAILABLE;
    *op = (level_cold_op){.kind = LEVEL_COLD_MOVE,
                          .feed_kind = back ? INV_FEED_LEVEL_RETURN : INV_FEED_LEVEL_MOVE,
                          .floor = floor,
                          .stock_change = true};
    op->d[from] = -qty;
    op->d[to] = qty;
    assert(op->d[INV_QTY_RESERVED] == 0);
    return INV_OK;
}

int level_delta_op(level_cold_op *op, inv_qty_name q, int64_t delta, int64_t floor)
{
    assert(op != NULL);
    if (!movable(q) || delta == 0)
        return INV_EINVALID;
    if (!qty_in_range(delta) || (floor != INV_NO_FLOOR && !qty_in_range(floor)))
        return INV_ELIMIT;
    *op = (level_cold_op){.kind = LEVEL_COLD_MOVE,
                          .feed_kind = INV_FEED_LEVEL_TRANSFER,
                          .floor = floor,
                          .stock_change = true};
    op->d[q] = delta;
    assert(op->d[INV_QTY_RESERVED] == 0); /* reserved changes only by holds */
    return INV_OK;
}

int level_fulfil_op(level_cold_op *op, int64_t qty)
{
    assert(op != NULL);
    if (qty < 1)
        return INV_EINVALID;
    if (qty > INV_QTY_MAX)
        return INV_ELIMIT;
    /* Shipping sold units is no new stock change: an inactive location
     * still ships what it sold. */
    *op = (level_cold_op){
        .kind = LEVEL_COLD_MOVE, .feed_kind = INV_FEED_LEVEL_FULFIL, .floor = INV_NO_FLOOR};
    op->d[INV_QTY_COMMITTED] = -qty;
    assert(!op->stock_change && op->d[INV_QTY_RESERVED] == 0);
    return INV_OK;
}

int level_location_inactive_check(inv_engine *e, uint64_t loc)
{
    assert(e != NULL);
    if (!catalog_location_exists(&e->cat, loc))
        return INV_ENOTFOUND;
    return catalog_location_active(&e->cat, loc) ? INV_OK : INV_EINVALID;
}

int level_policy_op(level_cold_op *op, inv_oversell_policy policy, int64_t preorder_limit)
{
    assert(op != NULL);
    if (policy != INV_POLICY_DENY && policy != INV_POLICY_CONTINUE)
        return INV_EINVALID;
    if (policy == INV_POLICY_CONTINUE && preorder_limit != INV_NO_PREORDER_LIMIT &&
        (preorder_limit < 0 || preorder_limit > INV_QTY_MAX))
        return INV_ELIMIT; /* DENY ignores the limit (invcore.h) */
    /* deny keeps the limit field 0, as a level that never had a policy */
    uint64_t limit = policy == INV_POLICY_DENY                 ? 0
                     : preorder_limit == INV_NO_PREORDER_LIMIT ? LEVEL_LIMIT_NONE
                                                               : (uint64_t)preorder_limit;
    *op = (level_cold_op){.kind = LEVEL_COLD_RULES,
                          .feed_kind = INV_FEED_LEVEL_POLICY,
                          .rules_mask = LEVEL_COLD_CONTINUE | (~0ULL << LEVEL_LIMIT_SHIFT),
                          .rules_bits = (policy == INV_POLICY_CONTINUE ? LEVEL_COLD_CONTINUE : 0) |
                                        limit << LEVEL_LIMIT_SHIFT};
    assert((op->rules_bits & ~op->rules_mask) == 0);
    return INV_OK;
}

uint64_t level_follow_active(inv_engine *e, uint64_t item, uint64_t loc)
{
    assert(e != NULL);
    level_cold_op op = {.kind = LEVEL_COLD_RULES,
                        .feed_kind = INV_FEED_LEVEL_ACTIVITY,
                        .rules_mask = LEVEL_COLD_INACTIVE,
                        .follow_location = true};
    level_image image;
    uint64_t pos = 0;
    (void)level_cold_apply(e, item, loc, &op, 0, &image, &pos);
    return pos;
}

/* One cold change with its own position, acknowledged; out (may be NULL)
 * gets the level after it (or as it was, on a refusal). */
static int cold_call(inv_engine *e, uint64_t item, uint64_t loc, level_cold_op *op,
                     inv_level_full *out)
{
    assert(e != NULL && op != NULL);
    level_image image;
    uint64_t pos = 0;
    epoch_enter();
    int rc = level_cold_apply(e, item, loc, op, 0, &image, &pos);
    assert(rc <= INV_OK && !level_locks_held()); /* answered, every LOCK given back */
    if (out && rc != INV_ENOTFOUND && rc != INV_EIO && level_read_full(e, item, loc, out) != INV_OK)
        memset(out, 0, sizeof *out);
    epoch_exit();
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

int inv_level_move(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, inv_qty_name from,
                   inv_qty_name to, int64_t floor, inv_level_full *out)
{
    level_cold_op op;
    if (!e)
        return INV_EINVALID;
    int rc = level_move_op(&op, qty, from, to, floor);
    return rc == INV_OK ? cold_call(e, item, loc, &op, out) : rc;
}

int inv_level_fulfil(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty)
{
    level_cold_op op;
    if (!e)
        return INV_EINVALID;
    int rc = level_fulfil_op(&op, qty);
    return rc == INV_OK ? cold_call(e, item, loc, &op, NULL) : rc;
}

int inv_level_set_policy(inv_engine *e, uint64_t item, uint64_t loc, inv_oversell_policy policy,
                         int64_t preorder_limit)
{
    level_cold_op op;
    if (!e)
        return INV_EINVALID;
    int rc = level_policy_op(&op, policy, preorder_limit);
    return rc == INV_OK ? cold_call(e, item, loc, &op, NULL) : rc;
}
