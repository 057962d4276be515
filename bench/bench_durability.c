/*
 * bench_durability.c — the engine's durability figures, measured through the
 * public API only (include/invcore.h), in a temp dir under /tmp that is
 * removed at the end:
 *
 *   1. acknowledged adjusts per second: inv_level_adjust with a data dir and
 *      defer_durability false, so with fsync ALWAYS a call returns only once
 *      its record is durable. 1, 2 and 64 writer threads, each adjusting its
 *      own levels (round robin over LEVELS_PER_THREAD levels), and one row
 *      where 64 threads all adjust one hot level; for ALWAYS, INTERVAL
 *      (10 ms) and NONE. Records per fsync = delta of inv_stats
 *      records_written / delta of fsyncs over the row. For ALWAYS every
 *      returned adjust is also checked to be durable
 *      (inv_durable_position >= inv_last_write_position).
 *  1b. the yardstick for part 1, in the same run: the same number of
      threads, each "appending" and then sleeping on a futex until one
      coordinator wakes them all, with no journal and no engine; once with
      no pause, once pausing each round for one write + fdatasync (measured
      first on this disk). What the scheduler allows blocking writers.
   2. replay: a journal of >= 5M level records (BENCH_REPLAY_LEVELS levels
 *      set once and adjusted BENCH_REPLAY_ROUNDS times, policy NONE), closed,
 *      then inv_open timed: records/s (from the engine's recovery line) and
 *      MB/s (journal files on disk / open time).
 *   3. restart: BENCH_RESTART_LEVELS levels (policy NONE, capacity hints),
 *      closed and reopened from the journal alone (timed), then
 *      inv_snapshot, closed, and reopened from the snapshot (timed).
 *
 * Prints one table per part and a PASS/MISS line per target:
 *   ALWAYS, 64 writers on their own levels  >= 200k acknowledged adjusts/s
 *   replay                                  >= 5M records/s
 *   restart of 10M levels from a snapshot   <= 3 s
 * Knobs (env): BENCH_SECONDS per row (default 1), BENCH_REPLAY_LEVELS
 * (1000000), BENCH_REPLAY_ROUNDS (5), BENCH_RESTART_LEVELS (10000000),
 * BENCH_RESTART_JOURNAL (1: also time the journal-only reopen; 0: skip it,
 * the levels are then snapshotted straight after the load).
 * Bounded: about 1 minute with the defaults on 2 cores; ~1.5 GB peak RSS.
 */
#include "bench_util.h"

#include <invcore.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define ITEM_BASE 10000000000ull /* sparse, large ids as in real catalogs */
#define LOC_BASE 70000000000ull
#define HOT_ITEM 9999999999ull /* outside every other range */
#define LEVELS_PER_THREAD 64 /* a writer's own levels */
#define WRITERS_MAX 64
#define STOCK_START 1000000
#define CHECK_EVERY 8 /* ops between two clock reads */
#define LOCATIONS 256 /* replay / restart layout: items x 256 */
#define NO_AUTO_SNAPSHOT (1ull << 62) /* snapshot_journal_bytes: never */
#define LOAD_THREADS_MAX 8

#define TARGET_ALWAYS_64 200000.0 /* acknowledged adjusts/s */
#define TARGET_REPLAY 5e6 /* records/s */
#define TARGET_RESTART_S 3.0 /* seconds, 10M levels */
#define TARGET_RESTART_LEVELS 10000000ull

static char base_dir[] = "/tmp/invcore-bench-durability-XXXXXX";
static bool failed;

/* ---- files ------------------------------------------------------------ */

/* Removes dir and everything below it (the engine's dirs are flat, but a
 * subdirectory is handled too). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    char path[1024];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Bytes of the regular files in dir (journal segments, snapshots). */
static uint64_t dir_bytes(const char *dir, const char *only_prefix)
{
    DIR *d = opendir(dir);
    uint64_t sum = 0;
    if (d == NULL)
        return 0;
    struct dirent *de;
    char path[1024];
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (only_prefix != NULL && strncmp(de->d_name, only_prefix, strlen(only_prefix)) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            sum += (uint64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

static void list_dir(const char *dir, char *buf, size_t cap)
{
    DIR *d = opendir(dir);
    size_t used = 0;
    buf[0] = '\0';
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && used + 1 < cap) {
        if (de->d_name[0] == '.')
            continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? " " : "", de->d_name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    closedir(d);
}

/* ---- opening with the recovery line captured -------------------------- */

typedef struct {
    double open_s;
    bool have_line; /* the engine printed its recovery line */
    unsigned long long snap_records, journal_records;
    double mb, engine_s;
} open_result;

/* inv_open with fd 2 sent to a file for the duration, so the engine's
 * "invcore: recovered ..." line can be parsed; the captured text is then
 * echoed to the real stderr. */
static int open_timed(inv_engine **e, const inv_config *cfg, open_result *r)
{
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.capture", base_dir);
    memset(r, 0, sizeof *r);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (saved >= 0 && fd >= 0)
        dup2(fd, 2);
    uint64_t t0 = bench_now_ns();
    int rc = inv_open(e, cfg);
    r->open_s = (double)(bench_now_ns() - t0) / 1e9;
    fflush(stderr);
    if (saved >= 0 && fd >= 0) {
        dup2(saved, 2);
        close(saved);
    }
    if (fd >= 0) {
        char text[4096];
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        close(fd);
        unlink(path);
        if (n > 0) {
            text[n] = '\0';
            fputs(text, stderr);
            const char *p = strstr(text, "recovered ");
            if (p != NULL &&
                sscanf(p,
                       "recovered %llu snapshot records and %llu journal "
                       "records (%lf MB) in %lf s",
                       &r->snap_records, &r->journal_records, &r->mb, &r->engine_s) == 4)
                r->have_line = true;
        }
    }
    return rc;
}

/* ---- catalog ---------------------------------------------------------- */

static int put_location(inv_engine *e, uint64_t id)
{
    inv_location_fields lf;
    memset(&lf, 0, sizeof lf);
    lf.mask = INV_LOC_NAME;
    snprintf(lf.name, sizeof lf.name, "bench location %" PRIu64, id);
    return inv_location_put(e, id, &lf);
}

static int put_item(inv_engine *e, uint64_t id)
{
    inv_item_fields itf;
    memset(&itf, 0, sizeof itf);
    itf.mask = INV_ITEM_TRACKED;
    itf.tracked = true;
    return inv_item_put(e, id, &itf);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_durability: %s: %s\n", what, inv_strerror(rc));
    rm_tree(base_dir);
    exit(1);
}

/* ---- part 1: acknowledged adjusts ------------------------------------- */

typedef struct {
    alignas(64) inv_engine *e;
    unsigned tid;
    bool hot, check_durable;
    bench_clock clk;
    uint64_t ops, errors, not_durable, elapsed_ns;
    int first_error;
    int64_t net;
} writer;

static void writer_main(void *arg)
{
    writer *w = arg;
    uint64_t ops = 0, errors = 0, not_durable = 0, k = 0;
    int64_t net = 0;
    int first_error = 0;
    const uint64_t item0 = ITEM_BASE + (uint64_t)w->tid * LEVELS_PER_THREAD;
    uint64_t t0 = bench_start(&w->clk);
    for (;;) {
        if (bench_now_ns() >= w->clk.deadline_ns)
            break;
        for (int i = 0; i < CHECK_EVERY; i++, k++) {
            uint64_t item = w->hot ? HOT_ITEM : item0 + k % LEVELS_PER_THREAD;
            /* +1 on even passes over the thread's levels, -1 on odd ones:
             * every level stays near its start. */
            int64_t delta = ((k / LEVELS_PER_THREAD) & 1) ? -1 : 1;
            if (w->hot)
                delta = (k & 1) ? -1 : 1;
            int rc = inv_level_adjust(w->e, item, LOC_BASE, delta, INV_NO_FLOOR, NULL);
            if (rc != INV_OK) {
                if (errors++ == 0)
                    first_error = rc;
                continue;
            }
            ops++;
            net += delta;
            if (w->check_durable && inv_durable_position(w->e) < inv_last_write_position())
                not_durable++;
        }
    }
    w->elapsed_ns = bench_now_ns() - t0;
    w->ops = ops;
    w->errors = errors;
    w->not_durable = not_durable;
    w->first_error = first_error;
    w->net = net;
}

typedef struct {
    const char *policy;
    unsigned threads;
    bool hot;
    double rate;
    uint64_t fsyncs, records;
    uint64_t errors, not_durable;
} ack_row;

static ack_row ack_rows[32];
static size_t n_ack_rows;

static const char *policy_name(inv_fsync_policy p)
{
    return p == INV_FSYNC_ALWAYS ? "always" : p == INV_FSYNC_INTERVAL ? "interval(10ms)" : "none";
}

static int64_t sum_available(inv_engine *e, unsigned writers, int64_t *hot)
{
    int64_t sum = 0;
    inv_level lv;
    for (uint64_t i = 0; i < (uint64_t)writers * LEVELS_PER_THREAD; i++)
        if (inv_level_get(e, ITEM_BASE + i, LOC_BASE, &lv) == INV_OK)
            sum += lv.available;
    *hot = inv_level_get(e, HOT_ITEM, LOC_BASE, &lv) == INV_OK ? lv.available : -1;
    return sum;
}

/* Longest wait for the journal to write what it holds. */
#define SETTLE_WAIT_MS 10000

/* The engine's statistics once every record reserved so far is written
 * (durable_position, the written end under NONE, reaches the tail): the
 * counters count work that is done, so records_written is then exact (an
 * adjust under INTERVAL or NONE returns before its record is written, and
 * inv_wait_durable does not wait under them). */
static void stats_settled(inv_engine *e, inv_stats *st)
{
    for (unsigned i = 0; i < SETTLE_WAIT_MS; i++) {
        inv_stats_get(e, st);
        if (st->durable_position >= st->journal_position)
            return;
        usleep(1000);
    }
    fprintf(stderr, "ODD: the journal did not write up to %" PRIu64 " in %u ms\n",
            st->journal_position, SETTLE_WAIT_MS);
}

static void ack_measure(inv_engine *e, inv_fsync_policy pol, unsigned n, bool hot, double seconds)
{
    static writer w[WRITERS_MAX];
    pthread_barrier_t barrier;
    inv_stats s0, s1;
    int64_t hot0, hot1;
    int64_t sum0 = sum_available(e, WRITERS_MAX, &hot0);
    inv_stats_get(e, &s0);
    pthread_barrier_init(&barrier, NULL, n);
    for (unsigned t = 0; t < n; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].e = e;
        w[t].tid = t;
        w[t].hot = hot;
        w[t].check_durable = pol == INV_FSYNC_ALWAYS;
        w[t].clk.seconds = seconds;
        w[t].clk.start = &barrier;
    }
    /* Writers that block on the disk need no core of their own; pinning
     * 64 of them round robin is harmless and keeps the rows comparable. */
    if (bench_spawn(n, writer_main, w, sizeof w[0]) < 0)
        die("cannot start writer threads", INV_ENOMEM);
    pthread_barrier_destroy(&barrier);
    stats_settled(e, &s1);

    ack_row *r = &ack_rows[n_ack_rows++];
    memset(r, 0, sizeof *r);
    r->policy = policy_name(pol);
    r->threads = n;
    r->hot = hot;
    uint64_t ops = 0, max_ns = 0;
    int64_t net = 0;
    int first_error = 0;
    for (unsigned t = 0; t < n; t++) {
        ops += w[t].ops;
        r->errors += w[t].errors;
        r->not_durable += w[t].not_durable;
        net += w[t].net;
        if (w[t].elapsed_ns > max_ns)
            max_ns = w[t].elapsed_ns;
        if (first_error == 0)
            first_error = w[t].first_error;
    }
    r->rate = max_ns ? (double)ops * 1e9 / (double)max_ns : 0;
    r->fsyncs = s1.fsyncs - s0.fsyncs;
    r->records = s1.records_written - s0.records_written;
    if (r->errors != 0) {
        fprintf(stderr,
                "ODD %s %u thr%s: %" PRIu64 " adjusts failed, first: "
                "%s\n",
                r->policy, n, hot ? " hot" : "", r->errors, inv_strerror(first_error));
        failed = true;
    }
    if (r->not_durable != 0) {
        fprintf(stderr,
                "CHECK FAILED %s %u thr%s: %" PRIu64 " adjusts "
                "returned before their record was durable\n",
                r->policy, n, hot ? " hot" : "", r->not_durable);
        failed = true;
    }
    if (r->records < ops)
        fprintf(stderr,
                "ODD %s %u thr%s: %" PRIu64 " records written for "
                "%" PRIu64 " successful adjusts\n",
                r->policy, n, hot ? " hot" : "", r->records, ops);
    int64_t sum1 = sum_available(e, WRITERS_MAX, &hot1);
    if ((hot ? hot1 - hot0 : sum1 - sum0) != net) {
        fprintf(stderr,
                "CHECK FAILED %s %u thr%s: available moved %" PRId64
                ", successful deltas sum to %" PRId64 "\n",
                r->policy, n, hot ? " hot" : "", hot ? hot1 - hot0 : sum1 - sum0, net);
        failed = true;
    }
}

static void print_ack_row(const ack_row *r)
{
    char rate[24], per[32];
    bench_fmt_rate(rate, sizeof rate, r->rate);
    if (r->fsyncs)
        snprintf(per, sizeof per, "%.1f", (double)r->records / (double)r->fsyncs);
    else
        snprintf(per, sizeof per, "-");
    printf("%-15s %-9s %4u %12.0f %8s %9" PRIu64 " %11" PRIu64 " %12s\n", r->policy,
           r->hot ? "hot 1" : "own 64", r->threads, r->rate, rate, r->fsyncs, r->records, per);
    fflush(stdout);
}

static void part_acknowledged(double seconds)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ack", base_dir);
    inv_config cfg;
    inv_engine *e;
    memset(&cfg, 0, sizeof cfg);
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_NONE;
    cfg.levels_capacity = WRITERS_MAX * LEVELS_PER_THREAD + 1;
    cfg.items_capacity = cfg.levels_capacity;
    cfg.snapshot_journal_bytes = NO_AUTO_SNAPSHOT;
    /* The catalog is built under NONE (thousands of one-at-a-time
     * changes would each wait for an fsync under ALWAYS), then the same
     * dir is reopened under each policy. */
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK)
        die("inv_open (ack setup)", rc);
    if ((rc = put_location(e, LOC_BASE)) != INV_OK)
        die("inv_location_put", rc);
    for (uint64_t i = 0; i < cfg.levels_capacity; i++) {
        uint64_t item = i + 1 == cfg.levels_capacity ? HOT_ITEM : ITEM_BASE + i;
        if ((rc = put_item(e, item)) != INV_OK)
            die("inv_item_put", rc);
        if ((rc = inv_level_set(e, item, LOC_BASE, STOCK_START, 0, NULL)) != INV_OK)
            die("inv_level_set", rc);
    }
    inv_close(e);

    printf("1. acknowledged adjusts (inv_level_adjust, defer_durability "
           "false), %.2f s per row\n",
           seconds);
    printf("   own 64: each writer adjusts its own 64 levels round robin; "
           "hot 1: every writer adjusts one level\n");
    printf("%-15s %-9s %4s %12s %8s %9s %11s %12s\n", "policy", "levels", "thr", "acked ops/s", "",
           "fsyncs", "records", "recs/fsync");
    const inv_fsync_policy pols[] = {INV_FSYNC_ALWAYS, INV_FSYNC_INTERVAL, INV_FSYNC_NONE};
    const unsigned threads[] = {1, 2, 64};
    for (size_t p = 0; p < 3; p++) {
        cfg.fsync_policy = pols[p];
        cfg.fsync_interval_ms = 10;
        cfg.defer_durability = false;
        rc = inv_open(&e, &cfg);
        if (rc != INV_OK)
            die("inv_open (ack)", rc);
        for (size_t t = 0; t < 3; t++) {
            ack_measure(e, pols[p], threads[t], false, seconds);
            print_ack_row(&ack_rows[n_ack_rows - 1]);
        }
        ack_measure(e, pols[p], WRITERS_MAX, true, seconds);
        print_ack_row(&ack_rows[n_ack_rows - 1]);
        inv_close(e);
    }
    rm_tree(dir);
}

/* ---- parallel loading ------------------------------------------------- */

typedef struct {
    alignas(64) inv_engine *e;
    unsigned tid, nthreads;
    uint64_t n; /* levels */
    int64_t delta; /* 0: set STOCK_START; else adjust by delta */
    int rc;
} loader;

static void loader_main(void *arg)
{
    loader *ld = arg;
    ld->rc = INV_OK;
    for (uint64_t i = ld->tid; i < ld->n; i += ld->nthreads) {
        uint64_t item = ITEM_BASE + i / LOCATIONS;
        uint64_t loc = LOC_BASE + i % LOCATIONS;
        int rc = ld->delta == 0 ? inv_level_set(ld->e, item, loc, STOCK_START, 0, NULL)
                                : inv_level_adjust(ld->e, item, loc, ld->delta, INV_NO_FLOOR, NULL);
        if (rc != INV_OK) {
            ld->rc = rc;
            return;
        }
    }
}

static unsigned load_threads(void)
{
    int cpus[CPU_SETSIZE];
    size_t n = bench_cpus(cpus, CPU_SETSIZE);
    return n == 0 ? 1 : n > LOAD_THREADS_MAX ? LOAD_THREADS_MAX : (unsigned)n;
}

static void load_levels(inv_engine *e, uint64_t n, int64_t delta)
{
    loader ld[LOAD_THREADS_MAX];
    unsigned nt = load_threads();
    for (unsigned t = 0; t < nt; t++)
        ld[t] = (loader){e, t, nt, n, delta, INV_OK};
    if (bench_spawn(nt, loader_main, ld, sizeof ld[0]) < 0)
        die("cannot start loader threads", INV_ENOMEM);
    for (unsigned t = 0; t < nt; t++)
        if (ld[t].rc != INV_OK)
            die(delta ? "inv_level_adjust (load)" : "inv_level_set (load)", ld[t].rc);
}

/* Catalog for n levels laid out as items x LOCATIONS. */
static void load_catalog(inv_engine *e, uint64_t n)
{
    int rc;
    uint64_t items = (n + LOCATIONS - 1) / LOCATIONS;
    for (uint64_t j = 0; j < LOCATIONS && j < n; j++)
        if ((rc = put_location(e, LOC_BASE + j)) != INV_OK)
            die("inv_location_put", rc);
    for (uint64_t i = 0; i < items; i++)
        if ((rc = put_item(e, ITEM_BASE + i)) != INV_OK)
            die("inv_item_put", rc);
}

static void layout_config(inv_config *cfg, const char *dir, uint64_t n)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->data_dir = dir;
    cfg->fsync_policy = INV_FSYNC_NONE;
    cfg->levels_capacity = n;
    cfg->items_capacity = (n + LOCATIONS - 1) / LOCATIONS;
    cfg->locations_capacity = LOCATIONS;
    cfg->snapshot_journal_bytes = NO_AUTO_SNAPSHOT;
}

/* Every level there with available == want (a full scan). */
static bool check_levels(inv_engine *e, uint64_t n, int64_t want, const char *what)
{
    inv_stats st;
    inv_level lv;
    uint64_t missing = 0, wrong = 0;
    inv_stats_get(e, &st);
    for (uint64_t i = 0; i < n; i++) {
        int rc = inv_level_get(e, ITEM_BASE + i / LOCATIONS, LOC_BASE + i % LOCATIONS, &lv);
        if (rc != INV_OK)
            missing++;
        else if (lv.available != want)
            wrong++;
    }
    if (st.levels != n || missing || wrong) {
        fprintf(stderr,
                "CHECK FAILED %s: stats.levels %" PRIu64 " (want %" PRIu64 "), %" PRIu64
                " missing, %" PRIu64 " with available "
                "!= %" PRId64 "\n",
                what, st.levels, n, missing, wrong, want);
        failed = true;
        return false;
    }
    return true;
}

/* ---- part 2: replay --------------------------------------------------- */

static double replay_rate; /* records/s, for the target line */

static void part_replay(uint64_t n, uint64_t rounds)
{
    char dir[600], files[512];
    snprintf(dir, sizeof dir, "%s/replay", base_dir);
    inv_config cfg;
    inv_engine *e;
    inv_stats st;
    layout_config(&cfg, dir, n);
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK)
        die("inv_open (replay build)", rc);
    uint64_t t0 = bench_now_ns();
    load_catalog(e, n);
    load_levels(e, n, 0);
    for (uint64_t r = 0; r < rounds; r++)
        load_levels(e, n, (r & 1) ? -1 : 1);
    double build_s = (double)(bench_now_ns() - t0) / 1e9;
    stats_settled(e, &st);
    uint64_t written = st.records_written;
    inv_close(e);
    uint64_t disk = dir_bytes(dir, NULL);
    list_dir(dir, files, sizeof files);

    open_result o;
    rc = open_timed(&e, &cfg, &o);
    if (rc != INV_OK)
        die("inv_open (replay)", rc);
    check_levels(e, n, STOCK_START + (int64_t)(rounds & 1), "replay");
    inv_close(e);
    rm_tree(dir);

    uint64_t recs = o.have_line ? o.journal_records : written;
    replay_rate = (double)recs / o.open_s;
    printf("\n2. replay: %" PRIu64 " levels set then adjusted %" PRIu64
           "x (policy none, %u load threads): %" PRIu64 " records written "
           "in %.2f s\n",
           n, rounds, load_threads(), written, build_s);
    printf("   on disk: %.1f MB (%s)\n", (double)disk / 1e6, files);
    printf("%-26s %10s %12s %9s %9s\n", "", "open s", "records", "M rec/s", "MB/s");
    printf("%-26s %10.3f %12" PRIu64 " %9.2f %9.0f\n", "inv_open (journal only)", o.open_s, recs,
           replay_rate / 1e6, (double)disk / 1e6 / o.open_s);
    if (o.have_line)
        printf("   engine's recovery line: %llu journal records, %.1f MB of "
               "payload in %.2f s\n",
               o.journal_records, o.mb, o.engine_s);
    else
        printf("   (no recovery line captured: records from stats)\n");
    if (o.have_line && o.journal_records != written)
        fprintf(stderr, "ODD replay: %llu records replayed, %" PRIu64 " written\n",
                o.journal_records, written);
    fflush(stdout);
}

/* ---- part 3: restart -------------------------------------------------- */

static double restart_snapshot_s = -1;
static uint64_t restart_levels;

static void part_restart(uint64_t n, bool journal_row)
{
    char dir[600], files[512];
    snprintf(dir, sizeof dir, "%s/restart", base_dir);
    inv_config cfg;
    inv_engine *e;
    layout_config(&cfg, dir, n);
    restart_levels = n;
    uint64_t rss0 = bench_rss_bytes();
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK)
        die("inv_open (restart build)", rc);
    uint64_t t0 = bench_now_ns();
    load_catalog(e, n);
    load_levels(e, n, 0);
    double build_s = (double)(bench_now_ns() - t0) / 1e9;
    inv_stats st;
    inv_stats_get(e, &st);
    uint64_t table_bytes = st.table_bytes, rss = bench_rss_bytes() - rss0;

    printf("\n3. restart: %" PRIu64 " levels (%" PRIu64 " items x %d "
           "locations), loaded in %.2f s; table %.0f MB, rss +%.0f MB\n",
           n, (uint64_t)cfg.items_capacity, LOCATIONS, build_s, (double)table_bytes / 1e6,
           (double)rss / 1e6);
    printf("%-26s %10s %9s %12s %12s %9s\n", "", "open s", "disk MB", "snap recs", "journal recs",
           "levels ok");
    open_result o;
    if (journal_row) {
        inv_close(e);
        uint64_t disk = dir_bytes(dir, NULL);
        rc = open_timed(&e, &cfg, &o);
        if (rc != INV_OK)
            die("inv_open (restart, journal only)", rc);
        bool ok = check_levels(e, n, STOCK_START, "restart journal only");
        printf("%-26s %10.3f %9.1f %12llu %12llu %9s\n", "journal only (no snapshot)", o.open_s,
               (double)disk / 1e6, o.snap_records, o.journal_records, ok ? "yes" : "NO");
        fflush(stdout);
    }
    t0 = bench_now_ns();
    rc = inv_snapshot(e);
    double snap_s = (double)(bench_now_ns() - t0) / 1e9;
    if (rc != INV_OK)
        die("inv_snapshot", rc);
    inv_close(e);
    uint64_t disk = dir_bytes(dir, NULL);
    list_dir(dir, files, sizeof files);
    rc = open_timed(&e, &cfg, &o);
    if (rc != INV_OK)
        die("inv_open (restart, snapshot)", rc);
    restart_snapshot_s = o.open_s;
    bool ok = check_levels(e, n, STOCK_START, "restart from snapshot");
    inv_close(e);
    printf("%-26s %10.3f %9.1f %12llu %12llu %9s\n", "snapshot + replay", o.open_s,
           (double)disk / 1e6, o.snap_records, o.journal_records, ok ? "yes" : "NO");
    printf("   inv_snapshot took %.2f s; files after it: %s\n", snap_s, files);
    fflush(stdout);
    rm_tree(dir);
}

/* ---- the machine's ceiling for blocking writers ------------------------ */

/* A yardstick for the 64-writer ALWAYS row, measured in the same run: 64
 * threads that each "append" (one fetch_add) and then sleep on a futex
 * until a coordinator thread acknowledges them, exactly the wait an
 * acknowledged write needs; the coordinator takes what arrived, pauses as
 * long as one write + fdatasync takes on this disk (measured first, on a
 * file with its blocks written, as the journal's are) or not at all, then
 * wakes everyone. No journal, no engine: what the scheduler alone allows. */

#define CEILING_SYNC_SAMPLES 500 /* write + fdatasync timings averaged */
#define CEILING_SYNC_BYTES 3584 /* one batch of ~64 level records */

static _Atomic uint32_t ceiling_gen;
static _Atomic uint64_t ceiling_arrived, ceiling_acked;
static _Atomic bool ceiling_stop;

static void *ceiling_writer(void *arg)
{
    (void)arg;
    uint64_t n = 0;
    /* relaxed everywhere: counters and a generation number; the futex
     * syscall orders the sleep against the coordinator's wake. */
    while (!atomic_load_explicit(&ceiling_stop, memory_order_relaxed)) {
        uint32_t g = atomic_load_explicit(&ceiling_gen, memory_order_relaxed);
        atomic_fetch_add_explicit(&ceiling_arrived, 1, memory_order_relaxed);
        while (atomic_load_explicit(&ceiling_gen, memory_order_relaxed) == g &&
               !atomic_load_explicit(&ceiling_stop, memory_order_relaxed))
            syscall(SYS_futex, &ceiling_gen, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
        n++;
    }
    atomic_fetch_add_explicit(&ceiling_acked, n, memory_order_relaxed);
    return NULL;
}

static void ceiling_wake(void)
{
    /* relaxed: the futex word only has to change; FUTEX_WAKE orders it. */
    atomic_fetch_add_explicit(&ceiling_gen, 1, memory_order_relaxed);
    syscall(SYS_futex, &ceiling_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Acknowledgements per second of `threads` blocking writers when each
 * acknowledgement round pauses pause_ns. */
static double ceiling_rate(unsigned threads, uint64_t pause_ns, double seconds)
{
    pthread_t th[WRITERS_MAX];
    /* relaxed (both): set before the writers exist; pthread_create orders. */
    atomic_store_explicit(&ceiling_stop, false, memory_order_relaxed);
    atomic_store_explicit(&ceiling_acked, 0, memory_order_relaxed);
    unsigned started = 0;
    while (started < threads && pthread_create(&th[started], NULL, ceiling_writer, NULL) == 0)
        started++;
    uint64_t t0 = bench_now_ns(), stop_at = t0 + (uint64_t)(seconds * 1e9);
    while (bench_now_ns() < stop_at) {
        /* relaxed: takes the round's appends as a flusher would; the
         * count itself is not needed. */
        atomic_exchange_explicit(&ceiling_arrived, 0, memory_order_relaxed);
        if (pause_ns) {
            struct timespec ts = {(time_t)(pause_ns / 1000000000u), (long)(pause_ns % 1000000000u)};
            nanosleep(&ts, NULL);
        }
        ceiling_wake();
    }
    /* relaxed: a flag; the futex wake below and pthread_join order the rest. */
    atomic_store_explicit(&ceiling_stop, true, memory_order_relaxed);
    ceiling_wake();
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double elapsed = (double)(bench_now_ns() - t0) / 1e9;
    /* relaxed: every writer was joined, which orders its add before this. */
    return (double)atomic_load_explicit(&ceiling_acked, memory_order_relaxed) / elapsed;
}

/* Mean ns of one write + fdatasync over written blocks, or 0 on error. */
static uint64_t ceiling_sync_ns(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sync-probe", base_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return 0;
    static char buf[CEILING_SYNC_BYTES];
    memset(buf, 0x5a, sizeof buf);
    uint64_t total = 0;
    bool ok = true;
    for (int i = 0; i < CEILING_SYNC_SAMPLES && ok; i++)
        ok = pwrite(fd, buf, sizeof buf, (off_t)i * (off_t)sizeof buf) == (ssize_t)sizeof buf;
    ok = ok && fsync(fd) == 0;
    for (int i = 0; i < CEILING_SYNC_SAMPLES && ok; i++) {
        uint64_t t = bench_now_ns();
        ok = pwrite(fd, buf, sizeof buf, (off_t)i * (off_t)sizeof buf) == (ssize_t)sizeof buf &&
             fdatasync(fd) == 0;
        total += bench_now_ns() - t;
    }
    close(fd);
    unlink(path);
    return ok ? total / CEILING_SYNC_SAMPLES : 0;
}

static double ceiling_free, ceiling_synced;
static uint64_t ceiling_sync_mean_ns;

static void part_ceiling(double seconds)
{
    ceiling_sync_mean_ns = ceiling_sync_ns();
    ceiling_free = ceiling_rate(WRITERS_MAX, 0, seconds);
    ceiling_synced = ceiling_rate(WRITERS_MAX, ceiling_sync_mean_ns, seconds);
    printf("\n1b. the machine's ceiling for %d blocking writers (no journal, no "
           "engine): each appends, sleeps on a futex, is woken by one coordinator\n",
           WRITERS_MAX);
    printf("   write + fdatasync of %d bytes over written blocks: %.0f us (mean of %d)\n",
           CEILING_SYNC_BYTES, (double)ceiling_sync_mean_ns / 1e3, CEILING_SYNC_SAMPLES);
    printf("   acks/s with no pause: %.0f; with that pause per round: %.0f\n", ceiling_free,
           ceiling_synced);
    fflush(stdout);
}

/* ---- main ------------------------------------------------------------- */

int main(void)
{
    double seconds = bench_env_double("BENCH_SECONDS", 1.0);
    uint64_t replay_n = bench_env_u64("BENCH_REPLAY_LEVELS", 1000000);
    uint64_t replay_rounds = bench_env_u64("BENCH_REPLAY_ROUNDS", 5);
    uint64_t restart_n = bench_env_u64("BENCH_RESTART_LEVELS", 10000000);
    bool journal_row = bench_env_u64("BENCH_RESTART_JOURNAL", 1) != 0;
    char cpu[256];
    int cpus[CPU_SETSIZE];

    if (seconds > 30)
        seconds = 30;
    if (replay_n == 0)
        replay_n = 1000000;
    if (restart_n == 0)
        restart_n = 10000000;
    if (mkdtemp(base_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    bench_cpu_model(cpu, sizeof cpu);
    printf("cpu: %s; %ld cores online, %zu usable; invcore %s; data in %s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), bench_cpus(cpus, CPU_SETSIZE), INVCORE_VERSION, base_dir);
    fflush(stdout);

    part_acknowledged(seconds);
    part_ceiling(seconds);
    part_replay(replay_n, replay_rounds);
    part_restart(restart_n, journal_row);
    rm_tree(base_dir);

    printf("\ntargets:\n");
    for (size_t i = 0; i < n_ack_rows; i++) {
        const ack_row *r = &ack_rows[i];
        if (strcmp(r->policy, "always") == 0 && r->threads == 64 && !r->hot)
            printf("%s  fsync always, 64 writers, own levels: %.0f acked "
                   "adjusts/s (target >= %.0fk)\n",
                   r->rate >= TARGET_ALWAYS_64 ? "PASS" : "MISS", r->rate, TARGET_ALWAYS_64 / 1e3);
        if (strcmp(r->policy, "always") == 0 && r->threads == 64 && !r->hot)
            printf("info  each blocking writer has one adjust in flight, so "
                   "at most 64 records share an fsync: this row had %.1f per "
                   "fsync at %.0f fsyncs/s (%.0f us per fsync cycle); %.0fk/s "
                   "with 64 writers needs cycles <= %.0f us\n",
                   r->fsyncs ? (double)r->records / (double)r->fsyncs : 0,
                   (double)r->fsyncs / seconds, r->fsyncs ? 1e6 * seconds / (double)r->fsyncs : 0,
                   TARGET_ALWAYS_64 / 1e3, 64 * 1e6 / TARGET_ALWAYS_64);
        if (strcmp(r->policy, "always") == 0 && r->threads == 64 && !r->hot && ceiling_synced > 0)
            printf("info  the same 64 threads with no journal at all reach %.0f acks/s "
                   "when each round pauses one fdatasync (%.0f us), %.0f with no pause: "
                   "engine / ceiling %.2f and %.2f\n",
                   ceiling_synced, (double)ceiling_sync_mean_ns / 1e3, ceiling_free,
                   r->rate / ceiling_synced, r->rate / ceiling_free);
        if (strcmp(r->policy, "always") == 0 && r->threads == 64 && r->hot)
            printf("info  fsync always, 64 writers, one hot level: %.0f "
                   "acked adjusts/s (same target: %s)\n",
                   r->rate, r->rate >= TARGET_ALWAYS_64 ? "met" : "not met");
    }
    printf("%s  replay: %.2f M records/s (target >= %.0fM)\n",
           replay_rate >= TARGET_REPLAY ? "PASS" : "MISS", replay_rate / 1e6, TARGET_REPLAY / 1e6);
    if (restart_levels >= TARGET_RESTART_LEVELS)
        printf("%s  restart of %" PRIu64 " levels from a snapshot: %.2f s "
               "(target <= %.0f s)\n",
               restart_snapshot_s >= 0 && restart_snapshot_s <= TARGET_RESTART_S ? "PASS" : "MISS",
               restart_levels, restart_snapshot_s, TARGET_RESTART_S);
    else
        printf("info  restart of %" PRIu64 " levels from a snapshot: %.2f s "
               "(the target is for %" PRIu64 "M levels: not judged)\n",
               restart_levels, restart_snapshot_s, (uint64_t)(TARGET_RESTART_LEVELS / 1000000));
    if (failed)
        printf("FAIL  a correctness check failed (see stderr)\n");
    return failed ? 1 : 0;
}
