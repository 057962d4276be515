/*
 * clock.h — the one place that reads a clock or sleeps. Every helper is
 * static inline: the hot paths that time themselves (command stats, the
 * journal's group commit) pay one clock_gettime, no call.
 *
 * Two clocks, never mixed in one computation:
 *  - wall (CLOCK_REALTIME): instants that outlive the process or that a
 *    client sees (hold expiry, created/updated fields, TIME, SLOWLOG, the
 *    server's start). It may jump; never measure a duration with it.
 *  - monotonic (CLOCK_MONOTONIC): durations, deadlines and timeouts. The
 *    coarse variant (a few ms of resolution, no syscall) is for the event
 *    loops' idle accounting only.
 * Units are in the names (_ns, _us, _ms, _s), as everywhere else.
 */
#ifndef INV_CLOCK_H
#define INV_CLOCK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define CLOCK_NS_PER_S 1000000000ULL
#define CLOCK_NS_PER_MS 1000000ULL

/* One reading of clock id. */
static inline struct timespec clock_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts;
}

static inline uint64_t clock_ns_of(struct timespec ts)
{
    return (uint64_t)ts.tv_sec * CLOCK_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline int64_t clock_ms_of(struct timespec ts)
{
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- wall clock (CLOCK_REALTIME) ----------------------------------------- */

/* Milliseconds since the Unix epoch. */
static inline int64_t clock_wall_ms(void)
{
    return clock_ms_of(clock_read(CLOCK_REALTIME));
}

/* Whole seconds since the Unix epoch. */
static inline int64_t clock_wall_s(void)
{
    return (int64_t)clock_read(CLOCK_REALTIME).tv_sec;
}

/* Microseconds since the Unix epoch (seconds and the microseconds within
 * them come from one reading: us / 1000000 and us % 1000000). */
static inline uint64_t clock_wall_us(void)
{
    return clock_ns_of(clock_read(CLOCK_REALTIME)) / 1000u;
}

/* ---- monotonic clock (CLOCK_MONOTONIC) ----------------------------------- */

static inline uint64_t clock_mono_ns(void)
{
    return clock_ns_of(clock_read(CLOCK_MONOTONIC));
}

static inline uint64_t clock_mono_us(void)
{
    return clock_mono_ns() / 1000u;
}

static inline int64_t clock_mono_ms(void)
{
    return clock_ms_of(clock_read(CLOCK_MONOTONIC));
}

/* Seconds as a double: for durations written in logs. */
static inline double clock_mono_s(void)
{
    struct timespec ts = clock_read(CLOCK_MONOTONIC);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CLOCK_MONOTONIC_COARSE: no syscall, resolution of a scheduler tick. */
static inline int64_t clock_mono_coarse_ms(void)
{
    return clock_ms_of(clock_read(CLOCK_MONOTONIC_COARSE));
}

/* ---- relative times and sleeping ----------------------------------------- */

/* A relative timeout of ns nanoseconds (futex, nanosleep). */
static inline struct timespec clock_timespec_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / CLOCK_NS_PER_S),
                          .tv_nsec = (long)(ns % CLOCK_NS_PER_S)};
    return ts;
}

/* Sleeps ms milliseconds, resuming after a signal. */
static inline void clock_sleep_ms(uint32_t ms)
{
    struct timespec ts = clock_timespec_ns((uint64_t)ms * CLOCK_NS_PER_MS);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#endif /* INV_CLOCK_H */
