/*
 * epoch.h — epoch-based memory reclamation for the lock-free structures.
 *
 * Contract: a thread reads shared pointers (table arrays, catalog records,
 * holds) only between epoch_enter() and epoch_exit(). Memory unlinked from
 * every shared structure is handed to epoch_retire(); it is freed only once
 * every thread that was inside a critical section when it was retired has
 * left it. Critical sections do not nest; they must be short (no blocking).
 *
 * Cost on the hot path: enter is one relaxed store plus, when the kernel
 * offers membarrier(PRIVATE_EXPEDITED), only a compiler barrier — the
 * reclaimer pays for the fence instead (asymmetric fences, as urcu-memb
 * does). Without membarrier, or under ThreadSanitizer, enter carries a full
 * fence.
 */
#ifndef INV_EPOCH_H
#define INV_EPOCH_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct epoch_record epoch_record;

/* Retirement nodes in static storage for when malloc fails (epoch_retire).
 * A request retires a handful of nodes at most, and each comes back two
 * epochs later: 4096 (about 200 KB) outlasts any burst of failures while
 * threads make progress. */
#define EPOCH_RESERVE_NODES 4096

/* Per-thread record, registered on first use (static storage for the first
 * threads, so registering never fails for want of memory); slot reused
 * after the thread exits. */
struct epoch_record {
    _Alignas(64) _Atomic uint64_t local; /* 0: outside; else (epoch << 1) | 1 */
    _Atomic int in_use;
    epoch_record *next; /* immutable once published in the list */
};

extern _Atomic uint64_t epoch_global;
extern int epoch_asymmetric; /* membarrier registered: enter needs no fence */
/* Retired blocks kept forever because no node could be had (see
 * epoch_retire); 0 unless memory ran out with every reserve node in use. */
extern _Atomic uint64_t epoch_leaked;

epoch_record *epoch_register_thread(void);

static inline epoch_record *epoch_self(void)
{
    extern __thread epoch_record *epoch_tls_record __attribute__((tls_model("initial-exec")));
    epoch_record *r = epoch_tls_record;
    return r ? r : epoch_register_thread();
}

static inline void epoch_enter(void)
{
    epoch_record *r = epoch_self();
    /* relaxed: the reclaimer only needs some recent epoch; staleness only
     * delays reclamation. */
    uint64_t e = atomic_load_explicit(&epoch_global, memory_order_relaxed);
#if defined(INV_TSAN)
    /* seq_cst: TSan does not model fences; the store/load pair orders it. */
    atomic_store_explicit(&r->local, (e << 1) | 1, memory_order_seq_cst);
#else
    /* release: orders this thread's previous critical sections before the
     * announcement, so a reclaimer that reads it (acquire) sees them done. */
    atomic_store_explicit(&r->local, (e << 1) | 1, memory_order_release);
    if (epoch_asymmetric)
        /* The reclaimer's membarrier() serialises us: a compiler barrier
         * keeps the announcement before our loads of shared pointers. */
        atomic_signal_fence(memory_order_seq_cst);
    else
        /* Store-load ordering: the announcement must be visible before we
         * load any shared pointer. */
        atomic_thread_fence(memory_order_seq_cst);
#endif
}

static inline void epoch_exit(void)
{
    /* release: every read of shared memory in the section happens before
     * a reclaimer that observes 0 frees anything. */
    atomic_store_explicit(&epoch_self()->local, 0, memory_order_release);
}

/* Frees p with free_fn once no critical section can still see it. owner
 * tags it so epoch_drain_owner() can free it at shutdown. Never fails and
 * never aborts: when malloc fails it uses a static reserve, and when that
 * is exhausted too it keeps p forever (counted in epoch_leaked). */
void epoch_retire(void *p, void (*free_fn)(void *), const void *owner);

/* Tries to advance the epoch and frees what became safe. Never blocks. */
void epoch_reclaim(void);

/* Frees everything retired with this owner now. Only when no thread can be
 * using the owner's structures (engine close). */
void epoch_drain_owner(const void *owner);

#endif /* INV_EPOCH_H */
