/*
 * stats.h — server counters and per-command latency histograms.
 *
 * Contract: each stats_thread has exactly one writer (its event loop), so
 * updates are a relaxed load + relaxed store (no locked instruction); any
 * thread may read them (INFO) with relaxed loads and sees each counter's
 * value at some recent moment. Counters in stats_global are shared by all
 * loops and use relaxed fetch_add: they are statistics, nothing is
 * published through them.
 */
#ifndef INV_SERVER_STATS_H
#define INV_SERVER_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_COMMANDS_MAX 64u    /* command table entries */
#define STATS_HIST_BUCKETS 312u   /* log-linear, 8 per power of two, ns */
#define STATS_THREADS_MAX 260u    /* event loops + embedders (tests, fuzz) */

typedef struct {
    _Atomic uint64_t calls[STATS_COMMANDS_MAX];
    _Atomic uint64_t errors[STATS_COMMANDS_MAX];
    _Atomic uint64_t hist[STATS_COMMANDS_MAX][STATS_HIST_BUCKETS];
} stats_thread;

typedef struct {
    _Atomic uint64_t connected;          /* open client connections */
    _Atomic uint64_t accepted;           /* connections ever accepted */
    _Atomic uint64_t rejected_maxclients;
    _Atomic uint64_t auth_failures;
    _Atomic uint64_t protocol_errors;    /* framing errors (then closed) */
    _Atomic uint64_t idle_closed;        /* closed by --timeout */
    _Atomic uint64_t reply_limit_closed; /* closed by --max-reply-buffer */
    _Atomic uint64_t held_replies;       /* replies that waited for fsync */
} stats_global;

/* Registers a new zeroed per-thread block (NULL when STATS_THREADS_MAX
 * blocks exist or memory is short). Blocks live until stats_reset_all. */
stats_thread *stats_thread_new(void);
void stats_thread_free(stats_thread *t);
/* Records one call of command cmd that took ns nanoseconds. Owner only. */
void stats_record(stats_thread *t, unsigned cmd, uint64_t ns, int failed);
void stats_add_global(_Atomic uint64_t *c, uint64_t n);
uint64_t stats_get(const _Atomic uint64_t *c);

/* Sums over every registered thread block. */
uint64_t stats_calls(unsigned cmd);
uint64_t stats_errors(unsigned cmd);
/* Latency at quantile q (0..1) in nanoseconds; 0 when no calls. */
uint64_t stats_quantile_ns(unsigned cmd, double q);

#endif /* INV_SERVER_STATS_H */
