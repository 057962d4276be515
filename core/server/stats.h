/*
 * stats.h — server counters and per-command latency histograms.
 *
 * Contract: each stats_thread has exactly one writer (its event loop), so
 * updates are a relaxed load + relaxed store (no locked instruction); any
 * thread may read them (INFO) with relaxed loads and sees each counter's
 * value at some recent moment. Counters in stats_global are shared by all
 * loops and use relaxed fetch_add: they are statistics, nothing is
 * published through them.
 *
 * Operations per second: each thread notes, at its first command of every
 * window of 2^STATS_WINDOW_SHIFT ns, how many commands it had run before
 * (a "mark"); the count of the last complete window is the difference of
 * two marks, so the rate is a real per-window sample at no cost on the
 * request path but one compare.
 */
#ifndef INV_SERVER_STATS_H
#define INV_SERVER_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_COMMANDS_MAX 96u /* command table entries */
#define STATS_HIST_BUCKETS 312u /* log-linear, 8 per power of two, ns */
#define STATS_THREADS_MAX 260u /* event loops + embedders (tests, fuzz) */
#define STATS_WINDOW_SHIFT 30u /* ops/s window: 2^30 ns, about 1.07 s */

typedef struct {
    _Atomic uint64_t calls[STATS_COMMANDS_MAX]; /* ran (failed included) */
    _Atomic uint64_t errors[STATS_COMMANDS_MAX]; /* ran, answered an error */
    _Atomic uint64_t rejected[STATS_COMMANDS_MAX]; /* refused before running */
    _Atomic uint64_t ns[STATS_COMMANDS_MAX]; /* time spent running */
    _Atomic uint64_t hist[STATS_COMMANDS_MAX][STATS_HIST_BUCKETS];
    /* ops/s marks: window (mod 2^24) << 40 | commands before it (mod 2^40) */
    _Atomic uint64_t mark_cur, mark_prev;
    uint64_t window; /* owner only: the window of the last command */
} stats_thread;

/* Which per-command counter stats_sum adds up. */
typedef enum { STATS_CALLS, STATS_ERRORS, STATS_REJECTED, STATS_NS } stats_counter;

/* Process memory, in bytes (stats_memory). */
typedef struct {
    uint64_t used; /* allocated by the program (allocator's count) */
    uint64_t peak; /* the highest `used` any stats_memory call saw */
    uint64_t rss; /* resident set size */
    uint64_t active; /* allocator pages in use (= used without jemalloc) */
    uint64_t resident; /* allocator's resident bytes (= rss without jemalloc) */
    const char *allocator; /* "jemalloc-<version>" or "libc" */
} stats_memory_info;

typedef struct {
    /* Open client connections, and the maxclients admission gate: only
     * stats_admit raises it (never past maxclients), conn_close lowers it. */
    _Atomic uint64_t connected;
    _Atomic uint64_t accepted; /* connections ever accepted */
    _Atomic uint64_t rejected_maxclients;
    _Atomic uint64_t auth_failures;
    _Atomic uint64_t auth_throttled; /* AUTH refused unchecked (cmd_tenant.c) */
    _Atomic uint64_t scope_denied; /* NOPERM / HTTP 403 */
    _Atomic uint64_t rate_limited; /* BUSY / HTTP 429 */
    _Atomic uint64_t protocol_errors; /* framing errors (then closed) */
    _Atomic uint64_t idle_closed; /* closed by --timeout */
    _Atomic uint64_t reply_limit_closed; /* closed by --max-reply-buffer */
    _Atomic uint64_t held_replies; /* replies that waited for fsync */
    _Atomic uint64_t blocked; /* clients parked in FEED.READ BLOCK now */
    /* Bytes of client buffers (query + reply, held replies included) now:
     * the sum of every loop's charges (server.c, --maxmemory-clients). A
     * loop adds its deltas (two's complement: a release is a wrapping add),
     * so the sum is exact once every loop has published its changes. */
    _Atomic uint64_t clients_mem;
    _Atomic uint64_t evicted_memory; /* closed by --maxmemory-clients */
} stats_global;

/* Registers a new zeroed per-thread block (NULL when STATS_THREADS_MAX
 * blocks exist or memory is short). Blocks live until stats_reset_all. */
stats_thread *stats_thread_new(void);
void stats_thread_free(stats_thread *t);
/* Records one call of command cmd that ran from start_ns to end_ns
 * (CLOCK_MONOTONIC). Owner only. Hot path: no lock, no allocation. */
void stats_record(stats_thread *t, unsigned cmd, uint64_t start_ns, uint64_t end_ns, int failed);
/* Counts a call of cmd refused before it ran (arity, auth). Owner only. */
void stats_reject(stats_thread *t, unsigned cmd);
void stats_add_global(_Atomic uint64_t *c, uint64_t n);
void stats_sub_global(_Atomic uint64_t *c, uint64_t n);
/* Raises *c by one if it is below limit, atomically (a CAS loop, no lock):
 * true when raised. The gate of a bounded count shared by threads (the
 * maxclients admission): *c never exceeds limit, and a refusal means limit
 * was reached at that moment, so the bound is exact. */
bool stats_admit(_Atomic uint64_t *c, uint64_t limit);
uint64_t stats_get(const _Atomic uint64_t *c);

/* Sums over every registered thread block. */
uint64_t stats_sum(stats_counter which, unsigned cmd);
uint64_t stats_calls(unsigned cmd);
uint64_t stats_errors(unsigned cmd);
/* Commands run in the last complete window, per second (now_ns:
 * CLOCK_MONOTONIC). */
uint64_t stats_ops_per_sec(uint64_t now_ns);
/* Reads the allocator's statistics (jemalloc's, refreshed; the sanitizer
 * builds ask the sanitizer's allocator) and the RSS; updates the peak. */
void stats_memory(stats_memory_info *out);
/* Latency at quantile q (0..1) in nanoseconds; 0 when no calls. */
uint64_t stats_quantile_ns(unsigned cmd, double q);

#endif /* INV_SERVER_STATS_H */
