/*
 * fault.c — the fault-injection seam's state (fault.h).
 *
 * Role: per-site counters, failure windows and hooks, armed by tests. The
 * fast path (fault_check) lives in the header; everything here runs only
 * while fault_armed is set.
 *
 * Invariants: a call's number is unique (one fetch_add); it fails iff its
 * number lies in [fail_at, fail_at + fail_times); the hook runs first, and
 * its errno wins.
 */
#include "fault.h"

#include <assert.h>
#include <errno.h>

typedef struct {
    _Atomic uint64_t calls;
    _Atomic uint64_t failures;
    _Atomic uint64_t fail_at; /* 0: never */
    _Atomic uint64_t fail_times;
    _Atomic int err;
    _Atomic(fault_hook_fn) hook;
    _Atomic(void *) hook_ctx;
} fault_state;

static fault_state sites[FAULT_SITE_COUNT];

atomic_bool fault_armed;

static const char *const site_names[FAULT_SITE_COUNT] = {
#define FAULT_NAME_(name, what) #name,
    FAULT_SITES(FAULT_NAME_)
#undef FAULT_NAME_
};
static const char *const site_whats[FAULT_SITE_COUNT] = {
#define FAULT_WHAT_(name, what) what,
    FAULT_SITES(FAULT_WHAT_)
#undef FAULT_WHAT_
};

int fault_slow(fault_site site, uint64_t arg, uint64_t arg2)
{
    assert(site >= 0 && site < FAULT_SITE_COUNT);
    fault_state *s = &sites[site];
    /* relaxed: the number only has to be unique; the test reads the counts
     * after the work it probes has finished (a join or a reply). */
    uint64_t call = atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed) + 1;
    /* acquire: pairs with fault_hook's release, so the hook's context is
     * seen whole. */
    fault_hook_fn fn = atomic_load_explicit(&s->hook, memory_order_acquire);
    if (fn) {
        int err =
            fn(atomic_load_explicit(&s->hook_ctx, memory_order_relaxed), site, call, arg, arg2);
        if (err) {
            atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
            return err;
        }
    }
    /* relaxed: fail_at, fail_times and err are set before the test starts
     * the work (see fault_check); a stale read can only miss a window the
     * test has not yet opened. */
    uint64_t at = atomic_load_explicit(&s->fail_at, memory_order_relaxed);
    uint64_t times = atomic_load_explicit(&s->fail_times, memory_order_relaxed);
    if (at == 0 || call < at || call - at >= times)
        return 0;
    atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
    int err = atomic_load_explicit(&s->err, memory_order_relaxed);
    assert(err > 0);
    return err;
}

void fault_reset(void)
{
    /* relaxed here and below: the test thread arms and reads; the work it
     * probes is started (and joined) after, which orders these stores. */
    atomic_store_explicit(&fault_armed, false, memory_order_relaxed);
    for (int i = 0; i < FAULT_SITE_COUNT; i++) {
        fault_state *s = &sites[i];
        atomic_store_explicit(&s->hook, NULL, memory_order_relaxed);
        atomic_store_explicit(&s->hook_ctx, NULL, memory_order_relaxed);
        atomic_store_explicit(&s->fail_at, 0, memory_order_relaxed);
        atomic_store_explicit(&s->fail_times, 0, memory_order_relaxed);
        atomic_store_explicit(&s->err, 0, memory_order_relaxed);
        atomic_store_explicit(&s->calls, 0, memory_order_relaxed);
        atomic_store_explicit(&s->failures, 0, memory_order_relaxed);
    }
    /* seq_cst: every store above is visible before anything armed later. */
    atomic_thread_fence(memory_order_seq_cst);
}

void fault_count_all(void)
{
    /* release: the resets before are visible to a thread that sees armed. */
    atomic_store_explicit(&fault_armed, true, memory_order_release);
    assert(atomic_load_explicit(&fault_armed, memory_order_relaxed)); /* relaxed: ours */
}

void fault_fail(fault_site site, uint64_t fail_at, uint64_t fail_times, int err)
{
    assert(site >= 0 && site < FAULT_SITE_COUNT);
    assert(fail_at >= 1 && err > 0);
    fault_state *s = &sites[site];
    uint64_t base = atomic_load_explicit(&s->calls, memory_order_relaxed);
    atomic_store_explicit(&s->err, err, memory_order_relaxed);
    atomic_store_explicit(&s->fail_times, fail_times, memory_order_relaxed);
    atomic_store_explicit(&s->fail_at, base + fail_at, memory_order_relaxed);
    /* release: the window is set before any thread sees the site armed. */
    atomic_store_explicit(&fault_armed, true, memory_order_release);
}

void fault_hook(fault_site site, fault_hook_fn fn, void *ctx)
{
    assert(site >= 0 && site < FAULT_SITE_COUNT);
    fault_state *s = &sites[site];
    atomic_store_explicit(&s->hook_ctx, ctx, memory_order_relaxed);
    /* release: pairs with fault_slow's acquire of the hook. */
    atomic_store_explicit(&s->hook, fn, memory_order_release);
    if (fn)
        atomic_store_explicit(&fault_armed, true, memory_order_release);
}

uint64_t fault_calls(fault_site site)
{
    assert(site >= 0 && site < FAULT_SITE_COUNT);
    return atomic_load_explicit(&sites[site].calls, memory_order_relaxed);
}

uint64_t fault_failures(fault_site site)
{
    assert(site >= 0 && site < FAULT_SITE_COUNT);
    return atomic_load_explicit(&sites[site].failures, memory_order_relaxed);
}

const char *fault_site_name(fault_site site)
{
    assert(site_names[0] != NULL && site_names[FAULT_SITE_COUNT - 1] != NULL);
    return site >= 0 && site < FAULT_SITE_COUNT ? site_names[site] : "?";
}

const char *fault_site_what(fault_site site)
{
    assert(site_whats[0] != NULL && site_whats[FAULT_SITE_COUNT - 1] != NULL);
    return site >= 0 && site < FAULT_SITE_COUNT ? site_whats[site] : "?";
}
