/*
 * fault.h — the one fault-injection seam (issue 17).
 *
 * Role: every allocation a request can reach, every file-system call of
 * the journal, snapshots and recovery, and the few points where a test must
 * stall or kill a change go through a numbered *site* (FAULT_SITES below).
 * A test arms a site to fail its Nth call with an errno (SQLite's
 * sqlite3FaultSim idea: fail call N for N = 1, 2, ... until the operation
 * completes), or hooks it to run code there; nothing else may arm a site.
 *
 * Cost when off: one relaxed load of `fault_armed` and a predicted-not-taken
 * branch per check (no call, no counter), in every build. It is compiled in
 * everywhere so the tests exercise the release objects users link.
 *
 * Invariants: a site's call count only moves while fault_armed is set; a
 * site fails at most `fail_times` calls starting with call `fail_at`; hooks
 * and failures are only installed between fault_reset() calls by one test
 * thread (the checks may run on any thread).
 */
#ifndef INVCORE_FAULT_H
#define INVCORE_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, what the site is) — append only: a site's number is its index. */
#define FAULT_SITES(X)                                                                        \
    X(ALLOC, "any heap allocation (inv_malloc, inv_calloc, inv_realloc)")                     \
    X(JOURNAL_MKDIR, "journal: create the data directory")                                    \
    X(JOURNAL_DIR_OPEN, "journal: open the data directory")                                   \
    X(JOURNAL_SEG_CREATE, "journal: create a segment file")                                   \
    X(JOURNAL_SEG_OPEN, "journal: open the last segment to append")                           \
    X(JOURNAL_WRITE, "journal: pwritev of records, a header or zeros")                        \
    X(JOURNAL_SYNC, "journal: fdatasync of a segment")                                        \
    X(JOURNAL_DIR_SYNC, "journal: fsync of the directory")                                    \
    X(JOURNAL_TRIM, "journal: ftruncate of the zeros ahead at close or rotation")             \
    X(REPLAY_OPEN, "replay: open a segment")                                                  \
    X(REPLAY_READ, "replay: read a segment")                                                  \
    X(REPLAY_CUT, "replay: ftruncate + fsync of a torn tail")                                 \
    X(REPLAY_RENAME, "replay: rename a cut-off segment")                                      \
    X(REPLAY_UNLINK, "replay: remove a segment")                                              \
    X(SNAPSHOT_MKDIR, "snapshot: create the directory")                                       \
    X(SNAPSHOT_OPEN, "snapshot: create the temp file")                                        \
    X(SNAPSHOT_WRITE, "snapshot: write records")                                              \
    X(SNAPSHOT_SYNC, "snapshot: fsync the temp file")                                         \
    X(SNAPSHOT_RENAME, "snapshot: rename into place")                                         \
    X(SNAPSHOT_UNLINK, "snapshot: remove an old snapshot or temp file")                       \
    X(FILE_OPEN, "fileio: open a file to read (snapshot load, segment scan)")                 \
    X(FILE_READ, "fileio: read a file")                                                       \
    X(DIR_SYNC, "fileio: fsync a directory")                                                  \
    X(RECOVERY_MKDIR, "recovery: create the data directory")                                  \
    X(RECOVERY_LOCK, "recovery: open the lock file")                                          \
    X(FEED_CURSOR_WRITE, "feed: write + fsync + rename of a cursor file")                     \
    X(TENANT_MKDIR, "tenants: create a tenant directory")                                     \
    X(TENANT_RENAME, "tenants: rename a dropped tenant aside")                                \
    X(PERSIST_LATE_RESERVE, "test mode: reserve journal positions after the CAS")             \
    X(PERSIST_BEFORE_PUBLISH, "test point: a record is about to be published (arg type)")     \
    X(HOLD_POINT, "test point: a hold reached a hold_test_point (arg point, arg2 pos)")       \
    X(LEVEL_SOLD, "test point: a hold end's sale landed, its counts not yet stored")          \
    X(BATCH_CHANGE, "test point: a batch's cold change landed (arg its change index)")        \
    X(HOLD_SNAPSHOT, "test point: a hold snapshot vs an end's line statuses (see hold.c)")    \
    X(LEVEL_MOVE, "test point: growth copies a cold part (arg it; arg2 0 copier, 1 waiter)")  \
    X(LEVEL_WAIT, "test point: a change waits for another thread's LOCK (arg the cold part)") \
    X(IDEM_DECIDE, "test point: a batch with a request id ran; its entry is not yet decided")

typedef enum {
#define FAULT_ENUM_(name, what) FAULT_##name,
    FAULT_SITES(FAULT_ENUM_)
#undef FAULT_ENUM_
        FAULT_SITE_COUNT
} fault_site;

/* A hook runs on every call of its site while armed; it returns 0 to let
 * the call proceed, or a positive errno to fail it. call: the site's
 * 1-based call number; arg/arg2: what the site passes (0 for most). */
typedef int (*fault_hook_fn)(void *ctx, fault_site site, uint64_t call, uint64_t arg,
                             uint64_t arg2);

/* Non-zero while any test has armed, hooked or is counting a site. */
extern atomic_bool fault_armed;

int fault_slow(fault_site site, uint64_t arg, uint64_t arg2);

/* 0, or the positive errno this call of `site` must fail with. */
static inline int fault_check(fault_site site)
{
    /* relaxed: a test arms sites before it starts the work it probes, and
     * the work's own synchronisation (thread start, a request) orders it. */
    if (__builtin_expect(!atomic_load_explicit(&fault_armed, memory_order_relaxed), 1))
        return 0;
    return fault_slow(site, 0, 0);
}

/* A check that passes what the site is about (a test point). */
static inline int fault_check_arg(fault_site site, uint64_t arg, uint64_t arg2)
{
    /* relaxed: as in fault_check. */
    if (__builtin_expect(!atomic_load_explicit(&fault_armed, memory_order_relaxed), 1))
        return 0;
    return fault_slow(site, arg, arg2);
}

/* ---- test side (tests and benches only) ---------------------------------- */

/* Disarms every site, forgets hooks, zeroes the counts. */
void fault_reset(void);
/* Counts every site's calls from now on (no failure). */
void fault_count_all(void);
/* Fails calls fail_at, fail_at+1, ... (fail_times of them; UINT64_MAX: every
 * later call) of `site` with errno `err`; the count starts at this call. */
void fault_fail(fault_site site, uint64_t fail_at, uint64_t fail_times, int err);
/* Runs `fn` on every call of `site` (NULL removes it). */
void fault_hook(fault_site site, fault_hook_fn fn, void *ctx);
/* Calls of `site` since it was armed or counted; calls failed so far. */
uint64_t fault_calls(fault_site site);
uint64_t fault_failures(fault_site site);
/* The site's name ("JOURNAL_SYNC") and what it is. */
const char *fault_site_name(fault_site site);
const char *fault_site_what(fault_site site);

#endif
