/*
 * idem.c — the idempotency store (see idem.h for the contract).
 *
 * The life of an entry:
 *   claim:   a PENDING entry (id, digest, an IDEM_OUTCOME_MAX scratch
 *            buffer) is CASed into the table in place of nothing, a
 *            tombstone or a decided entry past retention.
 *   decide:  its owner writes rc, the outcome (the scratch, shrunk to fit),
 *            the decision time and ack_pos; one release store makes it
 *            DECIDED, immutable from then on; it is pushed on the FIFO.
 *   abandon: its owner turns its slot into a tombstone, then stores
 *            ABANDONED (release) and retires it; it never reaches the FIFO.
 *   forget:  idem_expire takes the oldest decided entry off the FIFO (or
 *            off the list recovery installed), turns its slot into a
 *            tombstone if the slot still holds it, and retires it.
 * Invariants:
 *  - Only a table CAS takes a decided entry out of the table (idem_expire's,
 *    a claim's that replaces it past retention, an install's): its winner
 *    alone counts it forgotten. So `remembered` is the number of decided
 *    entries in the table.
 *  - Every decided entry is on exactly one of the FIFO (or in `front`) and
 *    the recovered list until idem_expire takes it off and retires it: each
 *    is freed exactly once, whether or not it is still in the table.
 *  - A PENDING entry is in the table and on no list; only its owner ends
 *    it, and nothing else takes it out of the table.
 */
#include "alloc.h"
#include "idem.h"

#include "clock.h"
#include "epoch.h"
#include "table.h"

#include <assert.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

enum { IDEM_PENDING = 0, IDEM_DECIDED = 1, IDEM_ABANDONED = 2 };

struct idem_entry {
    /* First member: the link of the FIFO, and of the recovered list. */
    idem_fifo_node node;
    _Atomic int state; /* IDEM_PENDING, IDEM_DECIDED or IDEM_ABANDONED */
    /* Written by the owner before the release store of DECIDED; read only
     * after an acquire load sees DECIDED. */
    int rc;
    int64_t decided_at_ms;
    uint64_t ack_pos;
    uint8_t *outcome; /* PENDING: IDEM_OUTCOME_MAX bytes of scratch */
    uint32_t outcome_len;
    /* Fixed from the claim on (published by the table CAS). */
    uint8_t id_len;
    uint8_t digest[IDEM_DIGEST_LEN];
    char id[]; /* id_len bytes */
};

_Static_assert(offsetof(idem_entry, node) == 0, "an entry is reached from its FIFO node");
_Static_assert(INV_REQUEST_ID_MAX <= UINT8_MAX, "id_len is one byte");
_Static_assert(IDEM_OUTCOME_MAX <= UINT32_MAX, "outcome_len is four bytes");

/* ---- entries ------------------------------------------------------------- */

static int load_state(const idem_entry *e)
{
    assert(e != NULL);
    /* acquire: a DECIDED entry comes with the fields stored before it. */
    return atomic_load_explicit(&e->state, memory_order_acquire);
}

static void id_key(const char *id, size_t len, uint64_t *a, uint64_t *b)
{
    assert(id != NULL && len >= 1 && len <= INV_REQUEST_ID_MAX);
    assert(a != NULL && b != NULL);
    XXH128_hash_t h = XXH3_128bits(id, len);
    *a = h.low64;
    *b = h.high64;
}

static bool id_ok(const char *id, size_t len)
{
    return id != NULL && len >= 1 && len <= INV_REQUEST_ID_MAX;
}

static bool same_id(const idem_entry *e, const char *id, size_t len)
{
    assert(e != NULL && id != NULL);
    return e->id_len == len && memcmp(e->id, id, len) == 0;
}

/* Retention ends retention_ms after the decision (in 128 bits: a decision
 * time read from disk may be anything). */
static bool past_retention(const idem_store *s, int64_t decided_at_ms, int64_t now_ms)
{
    assert(s != NULL);
    return (__int128)now_ms - decided_at_ms >= (__int128)s->retention_ms;
}

/* A PENDING entry with room for an outcome of outcome_cap bytes. */
static idem_entry *entry_new(const char *id, size_t len, const uint8_t *digest, size_t outcome_cap)
{
    assert(id_ok(id, len) && outcome_cap <= IDEM_OUTCOME_MAX);
    idem_entry *e = inv_malloc(sizeof *e + len);
    if (!e)
        return NULL;
    e->outcome = NULL;
    if (outcome_cap && !(e->outcome = inv_malloc(outcome_cap))) {
        free(e);
        return NULL;
    }
    atomic_init(&e->node.next, NULL);
    atomic_init(&e->state, IDEM_PENDING);
    e->rc = 0;
    e->decided_at_ms = 0;
    e->ack_pos = 0;
    e->outcome_len = 0;
    e->id_len = (uint8_t)len;
    memcpy(e->digest, digest, IDEM_DIGEST_LEN);
    memcpy(e->id, id, len);
    return e;
}

/* epoch_retire's free function (and idem_destroy's); NULL is a no-op. */
static void entry_free(void *p)
{
    idem_entry *e = p;
    if (!e)
        return;
    free(e->outcome);
    free(e);
}

/* The outcome copied into the scratch, which is then shrunk to fit. A
 * failed shrink keeps the scratch (too big, still right): deciding never
 * fails for want of memory. */
static uint8_t *outcome_fit(uint8_t *scratch, const void *bytes, size_t len)
{
    assert(scratch != NULL && len <= IDEM_OUTCOME_MAX);
    if (len == 0) {
        free(scratch);
        return NULL;
    }
    memcpy(scratch, bytes, len);
    uint8_t *fit = inv_realloc(scratch, len);
    return fit ? fit : scratch;
}

/* ---- the FIFO of decided entries (Vyukov's intrusive MPSC queue) ---------- */

static void fifo_init(idem_fifo *q)
{
    assert(q != NULL);
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->in, &q->stub);
    q->out = &q->stub;
}

/* Any thread. Wait-free: one exchange, one store. */
static void fifo_push(idem_fifo *q, idem_fifo_node *n)
{
    assert(q != NULL && n != NULL);
    /* relaxed: published by the release operations below. */
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: release hands n (its NULL link) to the pusher that links
     * behind it; acquire orders our link store after the previous pusher's
     * reset of prev's link. */
    idem_fifo_node *prev = atomic_exchange_explicit(&q->in, n, memory_order_acq_rel);
    /* release: the consumer that reads this link (acquire) sees n, and
     * everything its decider wrote before pushing it, complete. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Consumer only: the oldest node, or NULL when the queue is empty or its
 * oldest push is between its exchange and its link (it shows next time). */
static idem_fifo_node *fifo_pop(idem_fifo *q)
{
    assert(q != NULL && q->out != NULL);
    idem_fifo_node *out = q->out;
    /* acquire (every link load here): pairs with fifo_push's link store. */
    idem_fifo_node *next = atomic_load_explicit(&out->next, memory_order_acquire);
    if (out == &q->stub) {
        if (!next)
            return NULL;
        q->out = out = next;
        next = atomic_load_explicit(&out->next, memory_order_acquire);
    }
    if (next) {
        q->out = next;
        return out;
    }
    /* acquire: only compared; a newer node than out means a push is
     * linking behind out right now. */
    if (out != atomic_load_explicit(&q->in, memory_order_acquire))
        return NULL;
    fifo_push(q, &q->stub); /* out is the last node: the stub goes behind */
    next = atomic_load_explicit(&out->next, memory_order_acquire);
    if (!next)
        return NULL;
    q->out = next;
    return out;
}

/* ---- the recovered list (single thread: recovery, then the consumer) ------ */

static idem_entry *link_of(const idem_entry *e)
{
    assert(e != NULL);
    /* relaxed: the list is used by one thread at a time. */
    return (idem_entry *)atomic_load_explicit(&e->node.next, memory_order_relaxed);
}

static void link_set(idem_entry *e, idem_entry *next)
{
    assert(e != NULL && e != next);
    /* relaxed: as link_of. The node is an entry's first member. */
    atomic_store_explicit(&e->node.next, (idem_fifo_node *)next, memory_order_relaxed);
}

/* Appends e to the list being built at *head .. *tail. */
static void list_append(idem_entry **head, idem_entry **tail, idem_entry *e)
{
    assert(head != NULL && tail != NULL && e != NULL);
    if (*tail)
        link_set(*tail, e);
    else
        *head = e;
    *tail = e;
}

/* Stable bottom-up merge sort by decision time (S. Tatham's list sort):
 * O(n log n), no allocation, no recursion. Passes double the run length,
 * so there are at most 64 of them. */
static idem_entry *sort_by_decision(idem_entry *list)
{
    for (size_t run = 1; list; run *= 2) {
        idem_entry *p = list, *head = NULL, *tail = NULL;
        size_t merges = 0;
        while (p) {
            merges++;
            idem_entry *q = p;
            size_t p_len = 0, q_len = run;
            while (p_len < run && q) {
                p_len++;
                q = link_of(q);
            }
            while (p_len > 0 || (q_len > 0 && q)) {
                bool take_p =
                    p_len > 0 && (q_len == 0 || !q || p->decided_at_ms <= q->decided_at_ms);
                idem_entry *e = take_p ? p : q;
                if (take_p) {
                    p = link_of(p);
                    p_len--;
                } else {
                    q = link_of(q);
                    q_len--;
                }
                list_append(&head, &tail, e);
            }
            p = q;
        }
        link_set(tail, NULL);
        list = head;
        if (merges <= 1)
            break;
    }
    return list;
}

/* ---- store ---------------------------------------------------------------- */

int idem_init(idem_store *s, size_t capacity_hint, uint64_t retention_ms, size_t max_ids,
              const void *owner)
{
    assert(s != NULL);
    memset(s, 0, sizeof *s);
    fifo_init(&s->decided);
    s->owner = owner;
    s->retention_ms = retention_ms ? retention_ms : INV_REQUEST_ID_RETENTION_MS_DEFAULT;
    s->max_ids = max_ids ? max_ids : INV_REQUEST_IDS_MAX_DEFAULT;
    s->recovered_sorted = true;
    int rc = table_init(&s->by_id, capacity_hint, owner);
    assert(rc == INV_OK || rc == INV_ENOMEM);
    return rc;
}

static int free_pending(void *ctx, uint64_t a, uint64_t b, table_word v)
{
    assert(v.w0 != 0); /* a live entry's word holds it */
    idem_entry *e = (idem_entry *)(uintptr_t)v.w0;
    if (load_state(e) == IDEM_PENDING)
        entry_free(e); /* its owner never ended it: nobody else will */
    return 0;
}

void idem_destroy(idem_store *s)
{
    assert(s != NULL);
    /* relaxed: no other thread uses s now. */
    if (!atomic_load_explicit(&s->by_id.current, memory_order_relaxed))
        return; /* never initialised, or destroyed already */
    /* Pending entries first: they are read through the table, which still
     * points at decided entries the lists below free. */
    (void)table_foreach(&s->by_id, free_pending, NULL);
    entry_free(s->front);
    s->front = NULL;
    for (idem_fifo_node *n; (n = fifo_pop(&s->decided));)
        if (n != &s->decided.stub)
            entry_free(n);
    for (idem_entry *e = s->recovered, *next; e; e = next) {
        next = link_of(e);
        entry_free(e);
    }
    s->recovered = NULL;
    table_destroy(&s->by_id);
}

void idem_digest(const void *canonical_args, size_t len, uint8_t out[IDEM_DIGEST_LEN])
{
    assert(out != NULL && (canonical_args != NULL || len == 0));
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(canonical_args, len));
    _Static_assert(sizeof c.digest == IDEM_DIGEST_LEN, "XXH3-128 is 16 bytes");
    memcpy(out, c.digest, IDEM_DIGEST_LEN);
}

static void count(_Atomic uint64_t *counter)
{
    assert(counter != NULL);
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* A decided entry left the table (the caller's CAS took it out). */
static void count_forgotten(idem_store *s, _Atomic uint64_t *counter)
{
    assert(s != NULL && counter != NULL);
    /* relaxed: a gauge. Its increment (idem_decide, before the release of
     * DECIDED that every remover acquired) precedes this in its order. */
    size_t was = atomic_fetch_sub_explicit(&s->remembered, 1, memory_order_relaxed);
    assert(was > 0);
    count(counter);
}

/* ---- claim ---------------------------------------------------------------- */

/* The state of e once it is not PENDING, or PENDING after
 * IDEM_PENDING_WAIT_MS: a bounded spin, then yields. */
static int wait_not_pending(const idem_entry *e)
{
    assert(e != NULL);
    int st;
    for (unsigned i = 0; i < IDEM_PENDING_SPINS; i++) {
        if ((st = load_state(e)) != IDEM_PENDING)
            return st;
        cpu_relax();
    }
    uint64_t t0_ns = clock_mono_ns();
    while ((st = load_state(e)) == IDEM_PENDING &&
           clock_mono_ns() - t0_ns < IDEM_PENDING_WAIT_MS * CLOCK_NS_PER_MS)
        sched_yield();
    return st;
}

/* claim_step's context: the claim's arguments, and what its step saw. */
typedef struct {
    idem_store *s;
    const char *id;
    size_t len;
    const uint8_t *digest;
    int64_t now_ms;
    idem_entry *mine; /* the PENDING entry, allocated on first need */
    idem_entry *old; /* the live entry with this id the step saw last */
    int verdict; /* KEEP: IDEM_DONE, INV_ECONFLICT or IDEM_BUSY */
} claim_ctx;

/* Puts a PENDING entry in place of nothing, a tombstone, an abandoned
 * entry or a decided one past retention (WRITE). Else KEEP with the
 * verdict on the decided (or still PENDING) old entry; LIMIT (two ids with
 * one 128-bit hash) or NOMEM. May wait (bounded) for a PENDING old entry. */
static int claim_step(void *p, table_word cur, table_word *next)
{
    assert(p != NULL && next != NULL);
    claim_ctx *c = p;
    c->old = table_is_live(cur) ? (idem_entry *)(uintptr_t)cur.w0 : NULL;
    if (c->old) {
        if (!same_id(c->old, c->id, c->len))
            return INV_ELIMIT;
        int st = wait_not_pending(c->old);
        if (st == IDEM_PENDING) {
            c->verdict = IDEM_BUSY;
            return TABLE_STEP_KEEP;
        }
        if (st == IDEM_DECIDED && !past_retention(c->s, c->old->decided_at_ms, c->now_ms)) {
            c->verdict =
                memcmp(c->old->digest, c->digest, IDEM_DIGEST_LEN) == 0 ? IDEM_DONE : INV_ECONFLICT;
            return TABLE_STEP_KEEP;
        }
        /* Abandoned: its owner made the slot a tombstone before saying so,
         * so the CAS below fails and we are asked again. Else past
         * retention: replaced. */
    }
    if (!c->mine && !(c->mine = entry_new(c->id, c->len, c->digest, IDEM_OUTCOME_MAX)))
        return INV_ENOMEM;
    *next = (table_word){(uintptr_t)c->mine, table_version(cur) + 1};
    return TABLE_STEP_WRITE;
}

/* Takes no lock. Allocates (an entry and its outcome scratch) only for a
 * claim that may turn out NEW: a retry answered DONE allocates nothing. */
int idem_claim(idem_store *s, const char *id, size_t len, const uint8_t digest[IDEM_DIGEST_LEN],
               int64_t now_ms, idem_entry **out)
{
    assert(s != NULL && digest != NULL && out != NULL);
    *out = NULL;
    if (!id_ok(id, len))
        return INV_EINVALID;
    uint64_t a, b;
    id_key(id, len, &a, &b);
    claim_ctx c = {s, id, len, digest, now_ms, NULL, NULL, 0};
    int rc = table_update(&s->by_id, a, b, true, NULL, claim_step, &c, NULL);
    if (rc == TABLE_STEP_WRITE) {
        assert(c.mine != NULL && (c.old == NULL || load_state(c.old) == IDEM_DECIDED));
        if (c.old)
            count_forgotten(s, &s->expired); /* replaced past retention */
        else
            table_note_created(&s->by_id);
        *out = c.mine;
        return IDEM_NEW;
    }
    entry_free(c.mine); /* never published */
    if (rc != TABLE_STEP_KEEP)
        return rc;
    assert(c.old != NULL);
    if (c.verdict == IDEM_DONE) {
        count(&s->hits);
        *out = c.old;
    } else
        count(c.verdict == INV_ECONFLICT ? &s->conflicts : &s->busy);
    return c.verdict;
}

/* ---- decide, abandon, forget ---------------------------------------------- */

/* Whether an outcome is remembered: not a lack of memory, which changed
 * nothing (a call that runs out of memory changes nothing) and is no
 * answer a retry should get again: the retry runs instead. */
static bool outcome_kept(int rc)
{
    return rc != INV_ENOMEM;
}

int idem_decide(idem_store *s, idem_entry *e, const idem_outcome *o, uint64_t ack_pos,
                int64_t now_ms)
{
    assert(s != NULL && e != NULL && o != NULL && (o->bytes != NULL || o->len == 0));
    /* relaxed: only the owner changes a PENDING entry. */
    assert(atomic_load_explicit(&e->state, memory_order_relaxed) == IDEM_PENDING);
    if (o->len > IDEM_OUTCOME_MAX)
        return INV_ELIMIT;
    if (!outcome_kept(o->rc)) {
        idem_abandon(s, e); /* nothing ran: a retry must run it (issue 17) */
        return INV_OK;
    }
    e->outcome = outcome_fit(e->outcome, o->bytes, o->len);
    e->outcome_len = (uint32_t)o->len;
    e->rc = o->rc;
    e->decided_at_ms = now_ms;
    e->ack_pos = ack_pos;
    /* relaxed: a gauge; counted before anyone can see DECIDED (and so
     * before anyone counts it forgotten). */
    atomic_fetch_add_explicit(&s->remembered, 1, memory_order_relaxed);
    /* release: the fields above are complete for whoever sees DECIDED. */
    atomic_store_explicit(&e->state, IDEM_DECIDED, memory_order_release);
    fifo_push(&s->decided, &e->node);
    return INV_OK;
}

static int remove_step(void *p, table_word cur, table_word *next)
{
    assert(p != NULL && next != NULL);
    if (!table_is_live(cur) || cur.w0 != (uintptr_t)p)
        return TABLE_STEP_KEEP; /* replaced by another entry already */
    *next = (table_word){0, (table_version(cur) + 1) | TABLE_TOMB};
    return TABLE_STEP_WRITE;
}

/* Makes e's slot a tombstone if it still holds e: true if this call did. */
static bool remove_from_table(idem_store *s, idem_entry *e)
{
    assert(s != NULL && e != NULL);
    uint64_t a, b;
    id_key(e->id, e->id_len, &a, &b);
    int rc = table_update(&s->by_id, a, b, false, NULL, remove_step, e, NULL);
    assert(rc == TABLE_STEP_WRITE || rc == TABLE_STEP_KEEP);
    if (rc != TABLE_STEP_WRITE)
        return false;
    table_note_deleted(&s->by_id);
    return true;
}

void idem_abandon(idem_store *s, idem_entry *e)
{
    assert(s != NULL && e != NULL);
    /* relaxed: only the owner changes a PENDING entry. */
    assert(atomic_load_explicit(&e->state, memory_order_relaxed) == IDEM_PENDING);
    bool removed = remove_from_table(s, e);
    assert(removed); /* nothing else takes a PENDING entry out */
    (void)removed;
    /* release: a waiter that reads ABANDONED finds the tombstone. */
    atomic_store_explicit(&e->state, IDEM_ABANDONED, memory_order_release);
    epoch_retire(e, entry_free, s->owner); /* waiters may still read it */
}

/* Consumer: e, taken off its list, leaves the table (unless it was
 * replaced there already) and is retired. */
static void forget(idem_store *s, idem_entry *e, _Atomic uint64_t *counter)
{
    assert(s != NULL && counter != NULL);
    assert(load_state(e) == IDEM_DECIDED);
    if (remove_from_table(s, e))
        count_forgotten(s, counter);
    epoch_retire(e, entry_free, s->owner);
}

/* Consumer: the oldest decided entry of the FIFO and the recovered list
 * (*from_fifo says which), without taking it off. */
static idem_entry *oldest(idem_store *s, bool *from_fifo)
{
    assert(s != NULL && from_fifo != NULL);
    if (!s->front) {
        idem_fifo_node *n = fifo_pop(&s->decided);
        s->front = (idem_entry *)n; /* the node is an entry's first member */
    }
    idem_entry *f = s->front, *r = s->recovered;
    *from_fifo = f != NULL && (r == NULL || f->decided_at_ms < r->decided_at_ms);
    return *from_fifo ? f : r;
}

size_t idem_expire(idem_store *s, int64_t now_ms)
{
    assert(s != NULL);
    if (!s->recovered_sorted) {
        s->recovered = sort_by_decision(s->recovered);
        s->recovered_sorted = true;
    }
    size_t n = 0;
    while (n < IDEM_EXPIRE_MAX) {
        bool from_fifo;
        idem_entry *e = oldest(s, &from_fifo);
        if (!e)
            break;
        bool due = past_retention(s, e->decided_at_ms, now_ms);
        /* relaxed: a gauge; a stale value only moves an eviction to the
         * next call. */
        if (!due && atomic_load_explicit(&s->remembered, memory_order_relaxed) <= s->max_ids)
            break;
        if (from_fifo)
            s->front = NULL;
        else
            s->recovered = link_of(e);
        forget(s, e, due ? &s->expired : &s->forgotten_early);
        n++;
    }
    assert(n <= IDEM_EXPIRE_MAX);
    return n;
}

void idem_stats(idem_store *s, idem_counters *out)
{
    assert(s != NULL && out != NULL);
    /* relaxed: statistics. */
    out->remembered = atomic_load_explicit(&s->remembered, memory_order_relaxed);
    out->expired = atomic_load_explicit(&s->expired, memory_order_relaxed);
    out->forgotten_early = atomic_load_explicit(&s->forgotten_early, memory_order_relaxed);
    out->conflicts = atomic_load_explicit(&s->conflicts, memory_order_relaxed);
    out->hits = atomic_load_explicit(&s->hits, memory_order_relaxed);
    out->busy = atomic_load_explicit(&s->busy, memory_order_relaxed);
}

/* ---- recovery and snapshots ---------------------------------------------- */

/* Puts e (decided) in the table as recovery does, alone: INV_OK, or
 * INV_ENOMEM, or INV_ELIMIT (another id with e's hash is there). */
static int install_in_table(idem_store *s, idem_entry *e)
{
    assert(s != NULL && e != NULL);
    uint64_t a, b;
    id_key(e->id, e->id_len, &a, &b);
    for (;;) {
        table_slot *slot = table_insert_exclusive(&s->by_id, a, b);
        if (!slot)
            return INV_ENOMEM;
        table_word cur = table_load(slot);
        if (table_is_frozen(cur)) {
            table_settle(&s->by_id, slot);
            continue;
        }
        idem_entry *old = table_is_live(cur) ? (idem_entry *)(uintptr_t)cur.w0 : NULL;
        if (old && !same_id(old, e->id, e->id_len))
            return INV_ELIMIT;
        table_store_exclusive(slot, (table_word){(uintptr_t)e, table_version(cur) + 1});
        /* A replaced entry stays on its list: idem_expire retires it there,
         * finding that the table no longer holds it. */
        if (!old) {
            table_note_exclusive(&s->by_id, 1);
            /* relaxed: recovery runs alone. */
            atomic_fetch_add_explicit(&s->remembered, 1, memory_order_relaxed);
        }
        return INV_OK;
    }
}

int idem_install(idem_store *s, const char *id, size_t len, const uint8_t digest[IDEM_DIGEST_LEN],
                 int64_t decided_at_ms, int rc, const void *outcome, size_t outcome_len,
                 int64_t now_ms)
{
    assert(s != NULL && digest != NULL);
    if (!id_ok(id, len) || outcome_len > IDEM_OUTCOME_MAX || (outcome_len && !outcome))
        return INV_EINVALID;
    if (past_retention(s, decided_at_ms, now_ms) || !outcome_kept(rc))
        return INV_OK; /* forgotten already, or never to be remembered */
    idem_entry *e = entry_new(id, len, digest, outcome_len);
    if (!e)
        return INV_ENOMEM;
    if (outcome_len)
        memcpy(e->outcome, outcome, outcome_len);
    e->outcome_len = (uint32_t)outcome_len;
    e->rc = rc;
    e->decided_at_ms = decided_at_ms;
    /* release: complete for the threads started after recovery. */
    atomic_store_explicit(&e->state, IDEM_DECIDED, memory_order_release);
    int result = install_in_table(s, e);
    if (result != INV_OK) {
        entry_free(e);
        return result;
    }
    link_set(e, s->recovered);
    s->recovered = e;
    s->recovered_sorted = false;
    return INV_OK;
}

typedef struct {
    int (*fn)(void *ctx, const idem_entry *e);
    void *ctx;
} foreach_ctx;

/* A PENDING entry is waited for: its call may have published its record
 * below the snapshot's start already (the entry is decided after the
 * record), and replay from that start would not bring it back. The call
 * decides or abandons it once its batch has run (no lock is held across
 * that, and nothing there waits for a snapshot); the entry's memory stays
 * ours in the epoch section. */
static int visit_decided(void *p, uint64_t a, uint64_t b, table_word v)
{
    assert(p != NULL && v.w0 != 0);
    foreach_ctx *c = p;
    const idem_entry *e = (const idem_entry *)(uintptr_t)v.w0;
    int st;
    while ((st = load_state(e)) == IDEM_PENDING)
        sched_yield();
    return st == IDEM_DECIDED ? c->fn(c->ctx, e) : 0;
}

int idem_foreach(idem_store *s, int (*fn)(void *ctx, const idem_entry *e), void *ctx)
{
    assert(s != NULL && fn != NULL);
    foreach_ctx c = {fn, ctx};
    return table_foreach(&s->by_id, visit_decided, &c);
}

/* ---- a decided entry's fields -------------------------------------------- */

static bool is_decided(const idem_entry *e)
{
    return e != NULL && load_state(e) == IDEM_DECIDED;
}

const char *idem_entry_id(const idem_entry *e, size_t *len)
{
    assert(e != NULL && len != NULL);
    *len = e->id_len;
    return e->id;
}

const uint8_t *idem_entry_digest(const idem_entry *e)
{
    assert(e != NULL);
    return e->digest;
}

int64_t idem_entry_decided_at_ms(const idem_entry *e)
{
    assert(is_decided(e));
    return e->decided_at_ms;
}

int idem_entry_rc(const idem_entry *e)
{
    assert(is_decided(e));
    return e->rc;
}

const uint8_t *idem_entry_outcome(const idem_entry *e, size_t *len)
{
    assert(is_decided(e) && len != NULL);
    *len = e->outcome_len;
    return e->outcome;
}

uint64_t idem_entry_ack_pos(const idem_entry *e)
{
    assert(is_decided(e));
    return e->ack_pos;
}

void idem_entry_view(const idem_entry *e, idem_record_view *out)
{
    assert(is_decided(e) && out != NULL);
    *out = (idem_record_view){e->id, e->id_len,  e->digest,     e->decided_at_ms,
                              e->rc, e->outcome, e->outcome_len};
}

/* ---- the record ----------------------------------------------------------- */

/* Byte offsets of the header's fields (idem.h gives the layout). */
enum {
    REC_ID_LEN = 0,
    REC_ZERO = 1, /* 3 bytes */
    REC_RC = 4,
    REC_DECIDED_AT = 8,
    REC_DIGEST = 16,
    REC_OUTCOME_LEN = 32,
    REC_HEADER_END = 36
};
_Static_assert(REC_HEADER_END == IDEM_RECORD_HEADER_LEN, "the header's layout");

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    assert(p != NULL && n <= sizeof v);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
    assert(p != NULL && n <= sizeof(uint64_t));
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

size_t idem_record_len_of(size_t id_len, size_t outcome_len)
{
    assert(id_len >= 1 && id_len <= INV_REQUEST_ID_MAX && outcome_len <= IDEM_OUTCOME_MAX);
    size_t len = IDEM_RECORD_HEADER_LEN + id_len + outcome_len;
    len = (len + IDEM_RECORD_ALIGN - 1) / IDEM_RECORD_ALIGN * IDEM_RECORD_ALIGN;
    assert(len <= IDEM_RECORD_LEN_MAX);
    return len;
}

void idem_record_encode_view(const idem_record_view *v, uint8_t *buf)
{
    assert(v != NULL && buf != NULL && v->digest != NULL);
    size_t len = idem_record_len_of(v->id_len, v->outcome_len);
    memset(buf, 0, len);
    buf[REC_ID_LEN] = (uint8_t)v->id_len;
    put_le(buf + REC_RC, (uint32_t)v->rc, 4);
    put_le(buf + REC_DECIDED_AT, (uint64_t)v->decided_at_ms, 8);
    memcpy(buf + REC_DIGEST, v->digest, IDEM_DIGEST_LEN);
    put_le(buf + REC_OUTCOME_LEN, v->outcome_len, 4);
    memcpy(buf + REC_HEADER_END, v->id, v->id_len);
    if (v->outcome_len)
        memcpy(buf + REC_HEADER_END + v->id_len, v->outcome, v->outcome_len);
}

size_t idem_record_len(const idem_entry *e)
{
    assert(is_decided(e));
    return idem_record_len_of(e->id_len, e->outcome_len);
}

void idem_record_encode(const idem_entry *e, uint8_t *buf)
{
    assert(is_decided(e) && buf != NULL);
    idem_record_view v;
    idem_entry_view(e, &v);
    idem_record_encode_view(&v, buf);
}

int idem_record_decode(const void *payload, uint32_t len, idem_record_view *out)
{
    assert(out != NULL && (payload != NULL || len == 0));
    const uint8_t *p = payload;
    if (len < IDEM_RECORD_HEADER_LEN)
        return INV_EINVALID;
    size_t id_len = p[REC_ID_LEN];
    uint64_t outcome_len = get_le(p + REC_OUTCOME_LEN, 4);
    if (id_len < 1 || id_len > INV_REQUEST_ID_MAX || outcome_len > IDEM_OUTCOME_MAX)
        return INV_EINVALID;
    if (get_le(p + REC_ZERO, 3) != 0)
        return INV_EINVALID;
    /* Both lengths are in range: the exact size follows from them. */
    size_t used = IDEM_RECORD_HEADER_LEN + id_len + (size_t)outcome_len;
    if (idem_record_len_of(id_len, (size_t)outcome_len) != len)
        return INV_EINVALID;
    for (size_t i = used; i < len; i++)
        if (p[i] != 0)
            return INV_EINVALID; /* padding */
    *out = (idem_record_view){(const char *)p + REC_HEADER_END,
                              id_len,
                              p + REC_DIGEST,
                              (int64_t)get_le(p + REC_DECIDED_AT, 8),
                              (int32_t)(uint32_t)get_le(p + REC_RC, 4),
                              outcome_len ? p + used - outcome_len : NULL,
                              (size_t)outcome_len};
    return INV_OK;
}
