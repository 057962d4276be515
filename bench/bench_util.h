/*
 * bench_util.h — small helpers shared by the benchmark programs in bench/:
 * a monotonic clock, env knobs, the machine line, a per-thread xorshift
 * generator, and a runner that starts N pinned threads behind one barrier
 * and lets each run either for a fixed time or for a fixed number of ops.
 *
 * Everything is static inline so that a benchmark that uses part of it
 * still builds with -Wall -Wextra -Werror -Wmissing-prototypes.
 * Contract of the runner: each thread calls bench_start() once (it waits on
 * the barrier and returns the thread's start time), then asks
 * bench_next_chunk() how many ops to run next until it answers 0.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_THREADS_MAX 64 /* threads one measurement may start */
#define BENCH_CHUNK_OPS 1024 /* ops between two clock reads */
#define BENCH_LIST_MAX 8 /* entries in a comma-separated env list */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- environment knobs ------------------------------------------------ */

static inline double bench_env_double(const char *name, double dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !(d > 0)) {
        fprintf(stderr, "bench: ignoring %s=%s (want a positive number)\n", name, v);
        return dflt;
    }
    return d;
}

static inline uint64_t bench_env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end = NULL;
    errno = 0;
    unsigned long long u = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0) {
        fprintf(stderr, "bench: ignoring %s=%s (want an integer)\n", name, v);
        return dflt;
    }
    return (uint64_t)u;
}

/* "a,b,c" -> out[0..n); entries outside [lo, hi] are refused. Returns n
 * (0 when the variable is unset or unusable: the caller keeps its default). */
static inline size_t bench_env_list(const char *name, uint64_t *out, size_t cap, uint64_t lo,
                                    uint64_t hi)
{
    const char *v = getenv(name);
    size_t n = 0;
    if (v == NULL || *v == '\0')
        return 0;
    while (*v != '\0' && n < cap) {
        char *end = NULL;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 10);
        if (end == v || errno != 0 || u < lo || u > hi || (*end != ',' && *end != '\0')) {
            fprintf(stderr,
                    "bench: ignoring %s=%s (want integers in "
                    "[%llu, %llu], comma-separated)\n",
                    name, getenv(name), (unsigned long long)lo, (unsigned long long)hi);
            return 0;
        }
        out[n++] = (uint64_t)u;
        v = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* ---- a server to measure ---------------------------------------------- */

#define BENCH_INVCORED_START_MS 10000 /* its start line must come by then */

/* Starts invcored (argv[0]: its path; argv NULL-terminated, with --port 0
 * --bind 127.0.0.1 among them) with its stderr in `log`, and waits for its
 * start line. Returns the port it listens on, or -1 when it exited or did
 * not start in time (then killed); *pid is its pid, 0 once reaped. */
static inline int bench_invcored_start(const char *const *argv, const char *log, pid_t *pid)
{
    const char *tag = "listening on 127.0.0.1:";
    *pid = fork();
    if (*pid < 0)
        return -1;
    if (*pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    uint64_t deadline = bench_now_ns() + BENCH_INVCORED_START_MS * 1000000ull;
    while (bench_now_ns() < deadline) {
        char buf[4096] = {0};
        FILE *f = fopen(log, "r");
        if (f != NULL) {
            size_t r = fread(buf, 1, sizeof buf - 1, f);
            buf[r] = 0;
            fclose(f);
            const char *p = strstr(buf, tag);
            if (p != NULL)
                return atoi(p + strlen(tag));
        }
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return -1;
        }
        usleep(10000);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
    return -1;
}

/* ---- machine ---------------------------------------------------------- */

/* The "model name" of /proc/cpuinfo, or "unknown". */
static inline void bench_cpu_model(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(buf, cap, "unknown");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *p = strchr(line, ':');
        if (p == NULL)
            break;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        snprintf(buf, cap, "%s", p);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
}

/* The CPUs this process may run on, in order; returns how many. */
static inline size_t bench_cpus(int *cpus, size_t cap)
{
    cpu_set_t set;
    size_t n = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int c = 0; c < CPU_SETSIZE && n < cap; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n;
}

/* Resident set size in bytes (0 if unknown). */
static inline uint64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- random keys ------------------------------------------------------ */

/* A distinct, non-zero xorshift64 state per thread (splitmix64 of the id),
 * so every implementation measured sees the same key sequence per thread. */
static inline uint64_t bench_rng_seed(unsigned tid)
{
    uint64_t z = 0x9e3779b97f4a7c15ull * (uint64_t)(tid + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

/* Marsaglia's xorshift64 (13, 7, 17). */
static inline uint64_t bench_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Uniform index in [0, n) for n <= 2^32: multiply-shift of the top bits
 * (no division on the hot path). */
static inline uint64_t bench_rng_below(uint64_t *s, uint64_t n)
{
    return ((bench_rng_next(s) >> 32) * n) >> 32;
}

/* ---- the thread runner ------------------------------------------------ */

typedef struct {
    double seconds; /* per measurement, when ops_fixed is 0 */
    uint64_t ops_fixed; /* BENCH_OPS: exactly this many ops per thread */
    uint64_t deadline_ns; /* per thread: start + seconds (set by bench_start) */
    pthread_barrier_t *start;
} bench_clock;

typedef void (*bench_thread_fn)(void *arg);

typedef struct {
    bench_thread_fn fn;
    void *arg;
    int cpu; /* -1: not pinned */
    bool pinned;
} bench_thread_start;

static inline void *bench_thread_main_(void *p)
{
    bench_thread_start *ts = p;
    if (ts->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(ts->cpu, &set);
        ts->pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
    }
    ts->fn(ts->arg);
    return NULL;
}

/* Runs fn on n threads, thread i getting (char *)args + i * stride and
 * pinned to the i-th allowed CPU (round robin). Returns how many threads
 * were pinned, or -1 if a thread could not be started (none is left
 * running). */
static inline int bench_spawn(unsigned n, bench_thread_fn fn, void *args, size_t stride)
{
    pthread_t tids[BENCH_THREADS_MAX];
    bench_thread_start ts[BENCH_THREADS_MAX];
    int cpus[CPU_SETSIZE];
    size_t ncpu = bench_cpus(cpus, CPU_SETSIZE);
    unsigned started = 0;
    int pinned = 0;
    if (n == 0 || n > BENCH_THREADS_MAX)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        ts[i].fn = fn;
        ts[i].arg = (char *)args + (size_t)i * stride;
        ts[i].cpu = ncpu > 0 ? cpus[i % ncpu] : -1;
        ts[i].pinned = false;
        if (pthread_create(&tids[i], NULL, bench_thread_main_, &ts[i]) != 0)
            break;
        started++;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        pinned += ts[i].pinned;
    }
    return started == n ? pinned : -1;
}

/* Waits for every thread of the measurement, then returns this thread's
 * start time and sets its deadline (clk must be the thread's own copy). */
static inline uint64_t bench_start(bench_clock *clk)
{
    pthread_barrier_wait(clk->start);
    uint64_t t0 = bench_now_ns();
    clk->deadline_ns = t0 + (uint64_t)(clk->seconds * 1e9);
    return t0;
}

/* How many ops to run next, given done so far; 0 when finished. */
static inline uint64_t bench_next_chunk(const bench_clock *clk, uint64_t done)
{
    if (clk->ops_fixed != 0) {
        uint64_t left = clk->ops_fixed - done;
        return left < BENCH_CHUNK_OPS ? left : BENCH_CHUNK_OPS;
    }
    return bench_now_ns() < clk->deadline_ns ? BENCH_CHUNK_OPS : 0;
}

/* "123.4M"-style rate into buf. */
static inline const char *bench_fmt_rate(char *buf, size_t cap, double r)
{
    if (r >= 1e9)
        snprintf(buf, cap, "%.2fG", r / 1e9);
    else if (r >= 1e6)
        snprintf(buf, cap, "%.2fM", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, cap, "%.1fk", r / 1e3);
    else
        snprintf(buf, cap, "%.0f", r);
    return buf;
}

#endif /* BENCH_UTIL_H */
