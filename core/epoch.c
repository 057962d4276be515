/*
 * epoch.c — epoch-based reclamation (see epoch.h for the contract).
 *
 * Invariants:
 *  - epoch_global only grows, by one, and only when every thread inside a
 *    critical section has announced the current epoch.
 *  - A node retired while the global epoch was E is freed only once the
 *    global epoch is >= E + 2: by then every section that could have seen
 *    it (announced <= E) has ended.
 *  - Thread records are never freed while the process runs; a record is
 *    reused by a later thread once its owner exited (in_use 0).
 *  - Nothing here aborts on an allocation failure (issue 17): the first
 *    EPOCH_RECORDS_STATIC thread records and a reserve of
 *    EPOCH_RESERVE_NODES retirement nodes live in static storage. A retire
 *    whose malloc fails takes a reserve node (given back when its memory is
 *    freed); only when the reserve is empty too, after a few reclaims, is
 *    the memory leaked and counted (epoch_leaked): never freed early.
 */
#include "alloc.h"
#include "epoch.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <assert.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Retire this many nodes between automatic reclamation attempts. */
#define EPOCH_RECLAIM_BATCH 64

/* Thread records in static storage, used before any is allocated: every
 * server configuration (a loop per core and a few background threads)
 * fits, so registering a thread allocates nothing there. */
#define EPOCH_RECORDS_STATIC 256

/* Reclaims a retire tries, yielding between them, before it leaks a node
 * for want of a reserve node (every reader is pinned, memory is gone). */
#define EPOCH_RESERVE_TRIES 64

typedef struct retired {
    struct retired *next;
    void *p;
    void (*free_fn)(void *);
    const void *owner;
    uint64_t epoch;
    bool reserved; /* a reserve node: back to the reserve, not free() */
} retired;

_Atomic uint64_t epoch_global = 1;
int epoch_asymmetric;
__thread epoch_record *epoch_tls_record __attribute__((tls_model("initial-exec")));

static _Atomic(epoch_record *) records_head;
static _Atomic(retired *) retired_head;
static _Atomic uint64_t retired_since_reclaim;
static pthread_key_t thread_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static epoch_record records_static[EPOCH_RECORDS_STATIC];
static _Atomic uint32_t records_static_used; /* handed out, never given back */

/* The reserve: nodes [0, reserve_bump) were handed out at least once; the
 * given-back ones form a stack whose head is (generation << 32) | (index +
 * 1), 0 in the low half: empty. The generation defeats ABA in pop. */
static retired reserve_nodes[EPOCH_RESERVE_NODES];
static _Atomic uint32_t reserve_next[EPOCH_RESERVE_NODES]; /* index + 1 below; 0: none */
static _Atomic uint64_t reserve_head;
static _Atomic uint32_t reserve_bump;
_Atomic uint64_t epoch_leaked;

_Static_assert(EPOCH_RESERVE_NODES < UINT32_MAX, "reserve indices fit the head's low half");

static void thread_exit(void *arg)
{
    assert(arg != NULL);
    epoch_record *r = arg;
    /* relaxed: our own slot; nobody else writes in_use while it is 1. */
    assert(atomic_load_explicit(&r->in_use, memory_order_relaxed) == 1);
    /* release: our last section's reads are done before the slot is free. */
    atomic_store_explicit(&r->local, 0, memory_order_release);
    /* release: the cleared local is visible to whoever takes the slot over.
     * From here on the record is not ours: another thread may reuse it at
     * once and enter a section, so nothing below may read it (an assertion
     * on local here once saw the next owner's odd count). */
    atomic_store_explicit(&r->in_use, 0, memory_order_release);
}

static void init_once(void)
{
    assert(epoch_asymmetric == 0); /* once: nothing set it before */
    (void)pthread_key_create(&thread_key, thread_exit);
#if !defined(INV_TSAN)
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        epoch_asymmetric = 1;
#endif
    assert(epoch_asymmetric == 0 || epoch_asymmetric == 1);
}

/* A record never published yet, initialised and published in the list:
 * static storage first, then the heap; NULL when both are exhausted. */
static epoch_record *record_new(void)
{
    epoch_record *r = NULL;
    /* relaxed: a unique index is all we need; publication is by the list's
     * release CAS. Loaded first so the count stops at the limit. */
    if (atomic_load_explicit(&records_static_used, memory_order_relaxed) < EPOCH_RECORDS_STATIC) {
        uint32_t i = atomic_fetch_add_explicit(&records_static_used, 1, memory_order_relaxed);
        if (i < EPOCH_RECORDS_STATIC)
            r = &records_static[i];
    }
    if (!r && !fault_check(FAULT_ALLOC))
        r = aligned_alloc(64, sizeof *r);
    if (!r)
        return NULL;
    assert(((uintptr_t)r & 63) == 0);
    /* relaxed: nobody reads a record before it is published below. */
    atomic_store_explicit(&r->local, 0, memory_order_relaxed);
    atomic_store_explicit(&r->in_use, 1, memory_order_relaxed);
    epoch_record *head = atomic_load_explicit(&records_head, memory_order_relaxed);
    do
        r->next = head;
    /* release: publish the initialised record. */
    while (!atomic_compare_exchange_weak_explicit(&records_head, &head, r, memory_order_release,
                                                  memory_order_relaxed));
    /* The loop's postcondition: r heads the list, linked to what was
     * there (never to itself: a record is published once). Records are
     * never unlinked and next is written only before publication, so
     * this read races with nothing. */
    assert(r->next != r);
    return r;
}

/* A record whose owner exited, taken over; or NULL. */
static epoch_record *record_reuse(void)
{
    /* acquire: see the fields of records published by other threads. */
    for (epoch_record *r = atomic_load_explicit(&records_head, memory_order_acquire); r;
         r = r->next) {
        int free_slot = 0;
        /* acq_rel: take over a slot whose previous owner released it. */
        if (atomic_compare_exchange_strong_explicit(&r->in_use, &free_slot, 1, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            /* Its owner left every section before giving it back
             * (thread_exit). relaxed (assert only): ordered by our CAS's
             * acquire. */
            assert((atomic_load_explicit(&r->local, memory_order_relaxed) & 1) == 0);
            return r;
        }
        assert(free_slot == 1); /* in_use is 0 or 1 */
    }
    return NULL;
}

epoch_record *epoch_register_thread(void)
{
    (void)pthread_once(&once, init_once);
    /* More than EPOCH_RECORDS_STATIC threads live and no memory: wait for
     * one to exit (its record is reused) rather than abort. */
    epoch_record *r;
    while (!(r = record_reuse()) && !(r = record_new()))
        sched_yield();
    assert(atomic_load_explicit(&r->in_use, memory_order_relaxed) == 1);
    epoch_tls_record = r;
    (void)pthread_setspecific(thread_key, r);
    assert(epoch_tls_record == r);
    return r;
}

static void push_chain(retired *first, retired *last)
{
    assert(first != NULL && last != NULL);
    retired *head = atomic_load_explicit(&retired_head, memory_order_relaxed);
    do {
        /* The chain is ours alone, not in the list yet. Checked before the
         * CAS: once it lands another reclaim may take the nodes, so
         * nothing of them is read after. */
        assert(head != first);
        last->next = head;
        /* release: the nodes' fields are visible to whoever pops them. */
    } while (!atomic_compare_exchange_weak_explicit(&retired_head, &head, first,
                                                    memory_order_release, memory_order_relaxed));
}

/* A node of the reserve, or NULL when every one is in use. */
static retired *reserve_pop(void)
{
    /* acquire: the node's next index, written before its push (release). */
    uint64_t head = atomic_load_explicit(&reserve_head, memory_order_acquire);
    while ((uint32_t)head != 0) {
        uint32_t i = (uint32_t)head - 1;
        assert(i < EPOCH_RESERVE_NODES); /* a pushed node's index + 1 */
        /* relaxed: a stale value fails the CAS below (the generation moved). */
        uint64_t next =
            ((head >> 32) + 1) << 32 | atomic_load_explicit(&reserve_next[i], memory_order_relaxed);
        /* acquire: as the load above, on a retry. */
        if (atomic_compare_exchange_weak_explicit(&reserve_head, &head, next, memory_order_acquire,
                                                  memory_order_acquire))
            return &reserve_nodes[i];
    }
    /* relaxed: a unique index; the node is ours alone. Loaded first so the
     * count stops at the limit. */
    if (atomic_load_explicit(&reserve_bump, memory_order_relaxed) >= EPOCH_RESERVE_NODES)
        return NULL;
    uint32_t i = atomic_fetch_add_explicit(&reserve_bump, 1, memory_order_relaxed);
    /* a node never handed out before: never retired anything yet */
    assert(i >= EPOCH_RESERVE_NODES || reserve_nodes[i].p == NULL);
    return i < EPOCH_RESERVE_NODES ? &reserve_nodes[i] : NULL;
}

static void reserve_push(retired *n)
{
    assert(n >= reserve_nodes && n < reserve_nodes + EPOCH_RESERVE_NODES);
    assert(n->reserved); /* only a reserve node goes back to the reserve */
    uint32_t i = (uint32_t)(n - reserve_nodes);
    uint64_t head = atomic_load_explicit(&reserve_head, memory_order_relaxed);
    do
        /* relaxed: published by the release CAS. */
        atomic_store_explicit(&reserve_next[i], (uint32_t)head, memory_order_relaxed);
    /* release: the next index before the node is poppable. */
    while (!atomic_compare_exchange_weak_explicit(&reserve_head, &head,
                                                  ((head >> 32) + 1) << 32 | (i + 1),
                                                  memory_order_release, memory_order_relaxed));
}

/* A node to retire with: the heap's, else the reserve's (reclaiming to
 * refill it, a bounded number of times); NULL: none to be had. */
static retired *node_get(void)
{
    retired *n = inv_malloc(sizeof *n);
    if (n) {
        n->reserved = false;
        return n;
    }
    for (int tries = 0; tries < EPOCH_RESERVE_TRIES; tries++) {
        if ((n = reserve_pop())) {
            assert(n >= reserve_nodes && n < reserve_nodes + EPOCH_RESERVE_NODES);
            n->reserved = true;
            return n;
        }
        epoch_reclaim();
        sched_yield();
    }
    assert(n == NULL);
    return NULL;
}

static void node_put(retired *n)
{
    assert(n != NULL && n->p != NULL);
    /* reserved exactly when it is one of the reserve's nodes */
    assert(n->reserved == (n >= reserve_nodes && n < reserve_nodes + EPOCH_RESERVE_NODES));
    if (n->reserved)
        reserve_push(n);
    else
        free(n);
}

void epoch_retire(void *p, void (*free_fn)(void *), const void *owner)
{
    assert(p != NULL && free_fn != NULL);
    retired *n = node_get();
    if (!n) {
        /* Freeing now is unsafe and nothing can defer it: keep the memory
         * (never freed is always safe) and count it. */
        /* relaxed: a statistic. */
        atomic_fetch_add_explicit(&epoch_leaked, 1, memory_order_relaxed);
        return;
    }
    n->p = p;
    n->free_fn = free_fn;
    n->owner = owner;
    /* seq_cst: the unlink that preceded this call is ordered before our
     * reading of the epoch, so the stamp is not older than any reader that
     * could still see p. */
    atomic_thread_fence(memory_order_seq_cst);
    n->epoch = atomic_load_explicit(&epoch_global, memory_order_relaxed);
    assert(n->epoch >= 1); /* the epoch starts at 1 and only grows */
    push_chain(n, n);
    /* relaxed: a heuristic counter. */
    if (atomic_fetch_add_explicit(&retired_since_reclaim, 1, memory_order_relaxed) %
            EPOCH_RECLAIM_BATCH ==
        EPOCH_RECLAIM_BATCH - 1)
        epoch_reclaim();
}

static bool all_threads_at(uint64_t e)
{
    assert(e >= 1);
    for (epoch_record *r = atomic_load_explicit(&records_head, memory_order_acquire); r;
         r = r->next) {
        /* acquire: pairs with the release in enter/exit so the sections we
         * see ended happen before we free. */
        uint64_t l = atomic_load_explicit(&r->local, memory_order_acquire);
        if ((l & 1) && (l >> 1) != e)
            return false;
    }
    return true;
}

static void try_advance(void)
{
    uint64_t e = atomic_load_explicit(&epoch_global, memory_order_acquire);
    if (epoch_asymmetric)
        /* Full barrier on every thread: their announcements are visible to
         * our scan, or our earlier unlinks are visible to their loads. */
        (void)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else
        atomic_thread_fence(memory_order_seq_cst);
    uint64_t seen = e;
    if (all_threads_at(e))
        /* acq_rel: a single step; losing the race means someone advanced. */
        (void)atomic_compare_exchange_strong_explicit(&epoch_global, &e, e + 1,
                                                      memory_order_acq_rel, memory_order_relaxed);
    /* It only grows (by one per step). relaxed (assert only): the same
     * variable, read after our own load or CAS of it. */
    assert(atomic_load_explicit(&epoch_global, memory_order_relaxed) >= seen);
}

/* Frees the nodes of the detached list that pass keep_fn's test; puts the
 * rest back. */
static void sweep(bool (*freeable)(const retired *, uint64_t, const void *), const void *owner)
{
    assert(freeable != NULL);
    /* acquire: take the whole list with the nodes' fields. */
    retired *n = atomic_exchange_explicit(&retired_head, NULL, memory_order_acquire);
    uint64_t now = atomic_load_explicit(&epoch_global, memory_order_acquire);
    retired *keep_first = NULL, *keep_last = NULL;
    while (n) {
        retired *next = n->next;
        if (freeable(n, now, owner)) {
            n->free_fn(n->p);
            node_put(n);
        } else {
            n->next = keep_first;
            keep_first = n;
            if (!keep_last)
                keep_last = n;
        }
        n = next;
    }
    assert((keep_first == NULL) == (keep_last == NULL));
    if (keep_first)
        push_chain(keep_first, keep_last);
}

static bool old_enough(const retired *n, uint64_t now, const void *owner)
{
    assert(n != NULL && n->epoch <= now); /* stamped with an epoch already reached */
    (void)owner;
    return n->epoch + 2 <= now;
}

static bool owned_by(const retired *n, uint64_t now, const void *owner)
{
    assert(n != NULL);
    (void)now;
    return n->owner == owner;
}

void epoch_reclaim(void)
{
    /* relaxed: a hint. Advancing only serves freeing, and costs a
     * membarrier (IPIs) per try: skip it when nothing waits. A node retired
     * meanwhile is freed by a later call (its retire or the engine's
     * background thread). */
    if (atomic_load_explicit(&retired_head, memory_order_relaxed) == NULL)
        return;
    /* A thread that never entered a section has not run init_once: it
     * must see epoch_asymmetric as the readers' sections do. */
    (void)pthread_once(&once, init_once);
    try_advance();
    try_advance();
    assert(epoch_asymmetric == 0 || epoch_asymmetric == 1);
    sweep(old_enough, NULL);
}

void epoch_drain_owner(const void *owner)
{
    assert(owner != NULL);
    sweep(owned_by, owner);
}
