/*
 * test_epoch.c — epoch reclamation (core/epoch.c): a retired node is freed
 * only after every reader that could see it left its section, it is freed
 * once they did (after a few reclaims), epoch_drain_owner frees exactly
 * one owner's nodes at once, and a concurrent run of readers and a writer
 * that swaps and retires a shared node never frees a node under a reader.
 * With every allocation failing (issue 17), retiring and registering a
 * thread still work: nothing aborts, nothing is freed early or leaked.
 */
#include "test_util.h"

#include "epoch.h"
#include "fault.h"

#define NODES_MAX 4096

/* A node records its freeing instead of being freed, so a use after
 * reclamation is visible (and ASan stays quiet). */
typedef struct {
    _Atomic int freed; /* times free_fn ran on it */
    _Atomic uint64_t value;
} node;

static node nodes[NODES_MAX];
static _Atomic uint64_t frees_total;

static void record_free(void *p)
{
    node *n = p;
    /* relaxed: read by the test thread after the reclaim that ran us, or
     * by readers that check it in their own section (the race we test). */
    atomic_fetch_add_explicit(&n->freed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&frees_total, 1, memory_order_relaxed);
}

static int freed(size_t i)
{
    /* relaxed: see record_free. */
    return atomic_load_explicit(&nodes[i].freed, memory_order_relaxed);
}

static const char owner_a = 'a', owner_b = 'b';

/* ---- one reader blocks one free -------------------------------------- */

typedef struct {
    _Atomic int inside; /* 1: the reader entered */
    _Atomic int leave; /* 1: the reader may exit */
    _Atomic int left; /* 1: the reader exited */
    node *seen;
} reader_ctx;

static void *reader_main(void *p)
{
    reader_ctx *c = p;
    epoch_enter();
    c->seen = &nodes[0]; /* "holds a pointer" to the node about to retire */
    /* release: the test thread may retire once we are announced. */
    atomic_store_explicit(&c->inside, 1, memory_order_release);
    (void)tu_wait_at_least(&c->leave, 1, 20000);
    int was_freed = freed(0);
    epoch_exit();
    /* release: publishes was_freed through left. */
    atomic_store_explicit(&c->left, was_freed ? 2 : 1, memory_order_release);
    return NULL;
}

Test(epoch, a_retired_node_is_freed_only_after_its_readers_leave)
{
    reader_ctx c = {0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &c), 0);
    cr_assert(tu_wait_at_least(&c.inside, 1, 10000), "reader never entered");
    epoch_retire(&nodes[0], record_free, &owner_a);
    for (int i = 0; i < 10; i++) {
        epoch_reclaim();
        cr_assert_eq(freed(0), 0, "freed under a reader after %d reclaims", i + 1);
    }
    /* release: lets the reader go. */
    atomic_store_explicit(&c.leave, 1, memory_order_release);
    cr_assert(tu_wait_at_least(&c.left, 1, 10000), "reader never left");
    pthread_join(th, NULL);
    /* acquire: pairs with the reader's release. */
    cr_expect_eq(atomic_load_explicit(&c.left, memory_order_acquire), 1,
                 "the node was freed while the reader was still inside");
    for (int i = 0; i < 3 && !freed(0); i++)
        epoch_reclaim();
    cr_expect_eq(freed(0), 1, "not freed (exactly once) after the reader left");
    for (int i = 0; i < 5; i++)
        epoch_reclaim();
    cr_expect_eq(freed(0), 1, "freed twice");
}

Test(epoch, with_no_reader_a_few_reclaims_free_everything_retired)
{
    for (size_t i = 0; i < 200; i++)
        epoch_retire(&nodes[i], record_free, &owner_a);
    for (int i = 0; i < 3; i++)
        epoch_reclaim();
    for (size_t i = 0; i < 200; i++)
        cr_assert_eq(freed(i), 1, "node %zu freed %d times", i, freed(i));
}

Test(epoch, the_retiring_thread_inside_a_section_does_not_block_itself_forever)
{
    /* Retire inside a section (as growth does), leave, then reclaim. */
    epoch_enter();
    epoch_retire(&nodes[1], record_free, &owner_a);
    epoch_exit();
    for (int i = 0; i < 3 && !freed(1); i++)
        epoch_reclaim();
    cr_expect_eq(freed(1), 1);
}

Test(epoch, a_node_retired_before_a_reader_entered_is_freed_once_it_leaves)
{
    epoch_retire(&nodes[2], record_free, &owner_a);
    reader_ctx c = {0};
    pthread_t th;
    /* The reader enters after the retire: it cannot have seen the node,
     * but it still holds the epoch back, so only its exit lets it go. */
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &c), 0);
    cr_assert(tu_wait_at_least(&c.inside, 1, 10000));
    for (int i = 0; i < 5; i++)
        epoch_reclaim();
    /* release: lets the reader go. */
    atomic_store_explicit(&c.leave, 1, memory_order_release);
    pthread_join(th, NULL);
    for (int i = 0; i < 3 && !freed(2); i++)
        epoch_reclaim();
    cr_expect_eq(freed(2), 1);
}

/* Starts a reader that stays inside its section (pinning the epoch), then
 * fails every allocation from now on; returns epoch_leaked as it was. */
static uint64_t pin_and_fail_allocations(reader_ctx *c, pthread_t *th)
{
    cr_assert_eq(pthread_create(th, NULL, reader_main, c), 0);
    cr_assert(tu_wait_at_least(&c->inside, 1, 10000), "reader never entered");
    fault_fail(FAULT_ALLOC, 1, UINT64_MAX, ENOMEM);
    /* relaxed: only retires on this thread change it meanwhile. */
    return atomic_load_explicit(&epoch_leaked, memory_order_relaxed);
}

Test(epoch, retire_with_every_allocation_failing_defers_the_free_and_never_aborts)
{
    reader_ctx c = {0};
    pthread_t th;
    uint64_t leaked = pin_and_fail_allocations(&c, &th);
    enum { N = 300 };
    for (size_t i = 0; i < N; i++)
        epoch_retire(&nodes[1000 + i], record_free, &owner_a);
    uint64_t failed = fault_failures(FAULT_ALLOC);
    for (int i = 0; i < 5; i++)
        epoch_reclaim();
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(freed(1000 + i), 0, "node %zu freed under a reader", i);
    /* release: lets the reader go. */
    atomic_store_explicit(&c.leave, 1, memory_order_release);
    pthread_join(th, NULL);
    for (int i = 0; i < 5; i++)
        epoch_reclaim();
    fault_reset();
    cr_assert_geq(failed, N, "the allocations did not fail (%" PRIu64 ")", failed);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(freed(1000 + i), 1, "node %zu freed %d times", i, freed(1000 + i));
    /* relaxed: every retire returned. */
    cr_expect_eq(atomic_load_explicit(&epoch_leaked, memory_order_relaxed), leaked,
                 "a node was kept for want of a reserve node");
}

/* Beyond the reserve (every node of it in use under a pinned reader, no
 * memory): the block is kept, counted, and never freed; the others are
 * freed once the reader leaves. */
enum { BEYOND = 8, EXHAUST_N = EPOCH_RESERVE_NODES + BEYOND };
static node exhaust_nodes[EXHAUST_N];

static void exhaust_free(void *p)
{
    node *n = p;
    /* relaxed: read by this thread after the reclaims that ran us. */
    atomic_fetch_add_explicit(&n->freed, 1, memory_order_relaxed);
}

Test(epoch, beyond_the_reserve_a_block_is_kept_and_counted_never_freed_early, .timeout = 60)
{
    reader_ctx c = {0};
    pthread_t th;
    uint64_t leaked = pin_and_fail_allocations(&c, &th);
    for (size_t i = 0; i < EXHAUST_N; i++)
        epoch_retire(&exhaust_nodes[i], exhaust_free, &owner_a);
    uint64_t kept = atomic_load_explicit(&epoch_leaked, memory_order_relaxed) - leaked;
    size_t freed_early = 0;
    for (size_t i = 0; i < EXHAUST_N; i++)
        freed_early += atomic_load_explicit(&exhaust_nodes[i].freed, memory_order_relaxed) != 0;
    /* release: lets the reader go. */
    atomic_store_explicit(&c.leave, 1, memory_order_release);
    pthread_join(th, NULL);
    for (int i = 0; i < 5; i++)
        epoch_reclaim();
    fault_reset();
    cr_assert_eq(freed_early, 0, "%zu freed under the reader", freed_early);
    cr_assert_geq(kept, BEYOND, "only %" PRIu64 " kept beyond the reserve", kept);
    size_t freed_once = 0;
    for (size_t i = 0; i < EXHAUST_N; i++) {
        int f = atomic_load_explicit(&exhaust_nodes[i].freed, memory_order_relaxed);
        cr_assert_leq(f, 1, "node %zu freed %d times", i, f);
        freed_once += (size_t)f;
    }
    cr_assert_eq(freed_once + kept, EXHAUST_N, "freed %zu + kept %" PRIu64 " != %d", freed_once,
                 kept, EXHAUST_N);
}

static void *enter_and_leave(void *p)
{
    (void)p;
    epoch_enter();
    epoch_exit();
    return p;
}

Test(epoch, a_thread_registers_with_every_allocation_failing)
{
    fault_fail(FAULT_ALLOC, 1, UINT64_MAX, ENOMEM);
    static int token;
    for (int i = 0; i < 8; i++) {
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, enter_and_leave, &token), 0);
        void *out = NULL;
        pthread_join(th, &out);
        cr_assert_eq(out, &token, "thread %d did not run through", i);
    }
    fault_reset();
}

Test(epoch, drain_owner_frees_that_owners_nodes_at_once_and_no_others)
{
    reader_ctx c = {0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &c), 0);
    cr_assert(tu_wait_at_least(&c.inside, 1, 10000));
    for (size_t i = 10; i < 20; i++)
        epoch_retire(&nodes[i], record_free, i % 2 ? &owner_a : &owner_b);
    epoch_reclaim();
    /* Drain ignores readers by contract (engine close: nobody reads). */
    epoch_drain_owner(&owner_a);
    for (size_t i = 10; i < 20; i++)
        cr_expect_eq(freed(i), i % 2 ? 1 : 0, "node %zu (owner %c): freed %d", i, i % 2 ? 'a' : 'b',
                     freed(i));
    epoch_drain_owner(&owner_a);
    for (size_t i = 11; i < 20; i += 2)
        cr_expect_eq(freed(i), 1, "node %zu drained twice", i);
    /* release: lets the reader go. */
    atomic_store_explicit(&c.leave, 1, memory_order_release);
    pthread_join(th, NULL);
    epoch_drain_owner(&owner_b);
    for (size_t i = 10; i < 20; i++)
        cr_expect_eq(freed(i), 1, "node %zu: freed %d", i, freed(i));
    for (int i = 0; i < 3; i++)
        epoch_reclaim();
    for (size_t i = 10; i < 20; i++)
        cr_expect_eq(freed(i), 1, "node %zu freed again by reclaim", i);
}

Test(epoch, many_short_lived_threads_reuse_records_and_do_not_block_reclaim)
{
    /* Threads that entered and exited, then ended, must not hold the
     * epoch back. */
    for (int round = 0; round < 50; round++) {
        reader_ctx c = {0};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, reader_main, &c), 0);
        cr_assert(tu_wait_at_least(&c.inside, 1, 10000));
        /* release: lets the reader go. */
        atomic_store_explicit(&c.leave, 1, memory_order_release);
        pthread_join(th, NULL);
    }
    epoch_retire(&nodes[3], record_free, &owner_a);
    for (int i = 0; i < 3 && !freed(3); i++)
        epoch_reclaim();
    cr_expect_eq(freed(3), 1);
}

/* ---- concurrent readers and a retiring writer ------------------------- */

#define CR_READERS 3

typedef struct {
    _Atomic(node *) shared;
    _Atomic int stop;
    uint64_t swaps;
} cr_ctx;

static void cr_thread(void *arg, size_t idx)
{
    cr_ctx *c = arg;
    if (idx == 0) {
        /* The writer: publish a fresh node, retire the old one. */
        for (uint64_t i = 1; i <= c->swaps; i++) {
            node *fresh = &nodes[i % NODES_MAX];
            TU_CHECK(freed(i % NODES_MAX) == (int)(i / NODES_MAX),
                     "node %llu reused before it was freed", (unsigned long long)i);
            /* relaxed: the value is published by the release exchange. */
            atomic_store_explicit(&fresh->value, i, memory_order_relaxed);
            /* acq_rel: publishes the node; takes the old one to retire. */
            node *old = atomic_exchange_explicit(&c->shared, fresh, memory_order_acq_rel);
            epoch_retire(old, record_free, &owner_a);
            if (i % 16 == 0)
                epoch_reclaim();
            /* Wait until the node NODES_MAX/2 ahead is free again. */
            for (int tries = 0; tries < 100000 && freed((i + NODES_MAX / 2) % NODES_MAX) <
                                                      (int)((i + NODES_MAX / 2) / NODES_MAX);
                 tries++) {
                epoch_reclaim();
                sched_yield();
            }
        }
        /* release: readers stop after the last swap. */
        atomic_store_explicit(&c->stop, 1, memory_order_release);
        return;
    }
    uint64_t reads = 0;
    /* acquire: pairs with the writer's stop. */
    while (!atomic_load_explicit(&c->stop, memory_order_acquire) && reads < 50000000) {
        epoch_enter();
        /* acquire: the node's value as the writer published it. */
        node *n = atomic_load_explicit(&c->shared, memory_order_acquire);
        int f0 = atomic_load_explicit(&n->freed, memory_order_relaxed);
        for (int spin = 0; spin < 50; spin++)
            (void)atomic_load_explicit(&n->value, memory_order_relaxed);
        int f1 = atomic_load_explicit(&n->freed, memory_order_relaxed);
        epoch_exit();
        TU_CHECK(f1 == f0, "node %td freed while a reader held it", n - nodes);
        reads++;
    }
}

Test(epoch, concurrent_readers_never_see_their_node_freed, .timeout = 120)
{
    static cr_ctx c;
    atomic_init(&c.shared, &nodes[0]);
    atomic_init(&c.stop, 0);
    c.swaps = tu_iters_min(200000, 20000);
    tu_run_threads(1 + CR_READERS, cr_thread, &c);
    tu_assert_no_failures();
    for (int i = 0; i < 3; i++)
        epoch_reclaim();
    /* Every retired node (all but the one still published) was freed. */
    /* relaxed: all threads joined. */
    cr_expect_eq(atomic_load_explicit(&frees_total, memory_order_relaxed), c.swaps);
}

/* ---- threads ending while others take their records over ------------ */

#define CHURN_SPAWNERS 8
#define CHURN_THREADS_PER_SPAWNER 500
#define CHURN_SECTIONS 4

static void *churn_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < CHURN_SECTIONS; i++) {
        epoch_enter();
        epoch_exit();
    }
    return NULL;
}

static void churn_spawner(void *arg, size_t idx)
{
    (void)arg;
    (void)idx;
    for (int t = 0; t < CHURN_THREADS_PER_SPAWNER; t++) {
        pthread_t th;
        TU_CHECK(pthread_create(&th, NULL, churn_main, NULL) == 0, "pthread_create");
        pthread_join(th, NULL);
    }
}

Test(epoch, a_record_taken_over_the_moment_its_owner_ends_is_never_read_by_the_old_owner)
{
    /* Spawners start threads side by side, so one thread's record is
     * often reused by another the instant its owner marks it free. The
     * ending thread once asserted on the record after freeing it and saw
     * the next owner inside a section (a crash under TSan in CI). */
    tu_run_threads(CHURN_SPAWNERS, churn_spawner, NULL);
    epoch_retire(&nodes[5], record_free, &owner_a);
    for (int i = 0; i < 3 && !freed(5); i++)
        epoch_reclaim();
    cr_expect_eq(freed(5), 1, "the ended threads hold no epoch back");
}
