/*
 * bench_journal.c — the journal on its own: acknowledged appends per second
 * (reserve, publish a 64-byte record, journal_wait) for 1, 2 and 64 threads
 * under each fsync policy, with records per fsync (group commit); then
 * replay speed over a journal of BENCH_JOURNAL_REPLAY_RECORDS records.
 * Everything lives in a temp dir under /tmp, deleted at the end.
 * Knobs: BENCH_JOURNAL_SECONDS (per row, default 1),
 * BENCH_JOURNAL_REPLAY_RECORDS (default 5000000). Bounded: < 2 min.
 */
#include "journal.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_BYTES 64u
#define THREADS_MAX 64u
#define RUN_SECONDS_MAX 10.0

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double env_double(const char *name, double dflt)
{
    const char *v = getenv(name);
    double d = v ? strtod(v, NULL) : 0;
    return d > 0 ? d : dflt;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

typedef struct {
    journal *j;
    uint64_t deadline_ns;
    uint64_t ops;
    int errors;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    uint8_t payload[PAYLOAD_BYTES];
    memset(payload, 0xab, sizeof payload);
    while (now_ns() < w->deadline_ns) {
        for (int k = 0; k < 16; k++) {
            uint64_t pos = journal_reserve(w->j, PAYLOAD_BYTES);
            if (pos == 0 || journal_publish(w->j, pos, 16, payload, PAYLOAD_BYTES) ||
                journal_wait(w->j, pos)) {
                w->errors++;
                return NULL;
            }
            w->ops++;
        }
    }
    return NULL;
}

static const char *policy_name(inv_fsync_policy p)
{
    return p == INV_FSYNC_ALWAYS ? "always" : p == INV_FSYNC_INTERVAL ? "interval" : "none";
}

static void run_appends(const char *base, inv_fsync_policy policy, unsigned threads, double seconds)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/append-%s-%u", base, policy_name(policy), threads);
    journal_config cfg = {.dir = dir, .policy = policy};
    journal *j;
    char err[256] = "";
    if (journal_open(&j, &cfg, err, sizeof err) != INV_OK) {
        fprintf(stderr, "bench_journal: %s\n", err);
        exit(1);
    }
    static worker ws[THREADS_MAX];
    pthread_t th[THREADS_MAX];
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
    for (unsigned i = 0; i < threads; i++) {
        ws[i] = (worker){j, deadline, 0, 0};
        pthread_create(&th[i], NULL, worker_main, &ws[i]);
    }
    uint64_t ops = 0;
    int errors = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += ws[i].ops;
        errors += ws[i].errors;
    }
    double dt = (double)(now_ns() - t0) / 1e9;
    journal_stats st;
    journal_stats_get(j, &st);
    journal_close(j);
    rm_dir(dir);
    printf("%-9s %7u %14.0f %9llu %12.1f %12llu %7s\n", policy_name(policy), threads,
           (double)ops / dt, (unsigned long long)st.fsyncs, st.records_per_fsync_avg,
           (unsigned long long)st.records_per_fsync_max, errors ? "ERRORS" : "ok");
    fflush(stdout);
}

typedef struct {
    uint64_t records, bytes;
} tally;

static int count_cb(void *ctx, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    tally *t = ctx;
    t->records++;
    t->bytes += len;
    return INV_OK;
}

static void run_replay(const char *base, uint64_t n)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/replay", base);
    journal_config cfg = {.dir = dir, .policy = INV_FSYNC_NONE};
    journal *j;
    if (journal_open(&j, &cfg, NULL, 0) != INV_OK)
        exit(1);
    uint8_t payload[PAYLOAD_BYTES];
    memset(payload, 0x5a, sizeof payload);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        memcpy(payload, &i, sizeof i);
        uint64_t pos = journal_reserve(j, PAYLOAD_BYTES);
        if (pos == 0 || journal_publish(j, pos, 16, payload, PAYLOAD_BYTES))
            exit(1);
    }
    journal_close(j);
    double wt = (double)(now_ns() - t0) / 1e9;
    tally t = {0, 0};
    uint64_t end;
    char err[512] = "";
    t0 = now_ns();
    int rc = journal_replay(dir, 0, false, count_cb, &t, &end, err, sizeof err);
    double rt = (double)(now_ns() - t0) / 1e9;
    uint64_t disk = end - JOURNAL_POSITION_FIRST;
    printf("\nreplay: %llu records of %u bytes (%.0f MB on disk), written in "
           "%.2f s (%.0f records/s, one thread, policy none)\n",
           (unsigned long long)t.records, PAYLOAD_BYTES, (double)disk / 1e6, wt, (double)n / wt);
    printf("replay: %.3f s  %.2f M records/s  %.0f MB/s  %s\n", rt, (double)t.records / rt / 1e6,
           (double)disk / rt / 1e6, rc == INV_OK && t.records == n ? "ok" : err);
    rm_dir(dir);
}

int main(void)
{
    double seconds = env_double("BENCH_JOURNAL_SECONDS", 1.0);
    if (seconds > RUN_SECONDS_MAX)
        seconds = RUN_SECONDS_MAX;
    uint64_t n = (uint64_t)env_double("BENCH_JOURNAL_REPLAY_RECORDS", 5e6);
    char base[] = "/tmp/invcore-bench-journal-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_journal: acknowledged appends (reserve, publish %u B, "
           "wait durable), %.1f s per row\n",
           PAYLOAD_BYTES, seconds);
    printf("%-9s %7s %14s %9s %12s %12s %7s\n", "policy", "threads", "acked ops/s", "fsyncs",
           "recs/fsync", "max/fsync", "check");
    const inv_fsync_policy pols[] = {INV_FSYNC_ALWAYS, INV_FSYNC_INTERVAL, INV_FSYNC_NONE};
    const unsigned threads[] = {1, 2, 64};
    for (size_t p = 0; p < 3; p++)
        for (size_t t = 0; t < 3; t++)
            run_appends(base, pols[p], threads[t], seconds);
    run_replay(base, n);
    rm_dir(base);
    return 0;
}
