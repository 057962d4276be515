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
 */
#include "alloc.h"
#include "epoch.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Retire this many nodes between automatic reclamation attempts. */
#define EPOCH_RECLAIM_BATCH 64

typedef struct retired {
    struct retired *next;
    void *p;
    void (*free_fn)(void *);
    const void *owner;
    uint64_t epoch;
} retired;

_Atomic uint64_t epoch_global = 1;
int epoch_asymmetric;
__thread epoch_record *epoch_tls_record __attribute__((tls_model("initial-exec")));

static _Atomic(epoch_record *) records_head;
static _Atomic(retired *) retired_head;
static _Atomic uint64_t retired_since_reclaim;
static pthread_key_t thread_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg)
{
    epoch_record *r = arg;
    /* release: our last section's reads are done before the slot is free. */
    atomic_store_explicit(&r->local, 0, memory_order_release);
    atomic_store_explicit(&r->in_use, 0, memory_order_release);
}

static void init_once(void)
{
    (void)pthread_key_create(&thread_key, thread_exit);
#if !defined(INV_TSAN)
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        epoch_asymmetric = 1;
#endif
}

epoch_record *epoch_register_thread(void)
{
    (void)pthread_once(&once, init_once);
    epoch_record *r;
    /* acquire: see the fields of records published by other threads. */
    for (r = atomic_load_explicit(&records_head, memory_order_acquire); r; r = r->next) {
        int free_slot = 0;
        /* acq_rel: take over a slot whose previous owner released it. */
        if (atomic_compare_exchange_strong_explicit(&r->in_use, &free_slot, 1, memory_order_acq_rel,
                                                    memory_order_relaxed))
            break;
    }
    if (!r) {
        r = aligned_alloc(64, sizeof *r);
        if (!r)
            abort(); /* a few bytes per thread, once: nothing to recover to */
        atomic_init(&r->local, 0);
        atomic_init(&r->in_use, 1);
        epoch_record *head = atomic_load_explicit(&records_head, memory_order_relaxed);
        do
            r->next = head;
        /* release: publish the initialised record. */
        while (!atomic_compare_exchange_weak_explicit(&records_head, &head, r, memory_order_release,
                                                      memory_order_relaxed));
    }
    epoch_tls_record = r;
    (void)pthread_setspecific(thread_key, r);
    return r;
}

static void push_chain(retired *first, retired *last)
{
    retired *head = atomic_load_explicit(&retired_head, memory_order_relaxed);
    do
        last->next = head;
    /* release: the nodes' fields are visible to whoever pops them. */
    while (!atomic_compare_exchange_weak_explicit(&retired_head, &head, first, memory_order_release,
                                                  memory_order_relaxed));
}

void epoch_retire(void *p, void (*free_fn)(void *), const void *owner)
{
    retired *n = inv_malloc(sizeof *n);
    if (!n)
        abort(); /* cannot defer the free, and freeing now is unsafe */
    n->p = p;
    n->free_fn = free_fn;
    n->owner = owner;
    /* seq_cst: the unlink that preceded this call is ordered before our
     * reading of the epoch, so the stamp is not older than any reader that
     * could still see p. */
    atomic_thread_fence(memory_order_seq_cst);
    n->epoch = atomic_load_explicit(&epoch_global, memory_order_relaxed);
    push_chain(n, n);
    /* relaxed: a heuristic counter. */
    if (atomic_fetch_add_explicit(&retired_since_reclaim, 1, memory_order_relaxed) %
            EPOCH_RECLAIM_BATCH ==
        EPOCH_RECLAIM_BATCH - 1)
        epoch_reclaim();
}

static bool all_threads_at(uint64_t e)
{
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
    if (all_threads_at(e))
        /* acq_rel: a single step; losing the race means someone advanced. */
        (void)atomic_compare_exchange_strong_explicit(&epoch_global, &e, e + 1,
                                                      memory_order_acq_rel, memory_order_relaxed);
}

/* Frees the nodes of the detached list that pass keep_fn's test; puts the
 * rest back. */
static void sweep(bool (*freeable)(const retired *, uint64_t, const void *), const void *owner)
{
    /* acquire: take the whole list with the nodes' fields. */
    retired *n = atomic_exchange_explicit(&retired_head, NULL, memory_order_acquire);
    uint64_t now = atomic_load_explicit(&epoch_global, memory_order_acquire);
    retired *keep_first = NULL, *keep_last = NULL;
    while (n) {
        retired *next = n->next;
        if (freeable(n, now, owner)) {
            n->free_fn(n->p);
            free(n);
        } else {
            n->next = keep_first;
            keep_first = n;
            if (!keep_last)
                keep_last = n;
        }
        n = next;
    }
    if (keep_first)
        push_chain(keep_first, keep_last);
}

static bool old_enough(const retired *n, uint64_t now, const void *owner)
{
    (void)owner;
    return n->epoch + 2 <= now;
}

static bool owned_by(const retired *n, uint64_t now, const void *owner)
{
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
    sweep(old_enough, NULL);
}

void epoch_drain_owner(const void *owner)
{
    sweep(owned_by, owner);
}
