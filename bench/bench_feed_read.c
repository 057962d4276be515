/*
 * bench_feed_read.c — the change feed's read side: records per second
 * that inv_feed_next decodes over a journal of BENCH_FEED_RECORDS records
 * (default 2M: level adjusts over 10k levels, a hold created and committed
 * every 100 changes, a batch every 1000), read from the page cache by one
 * reader; then the same through inv_feed_open_dir, and a level history
 * page. Context: the server must send >= 1M records/s over FEED.READ with
 * COUNT 1000, so decoding must cost well under a microsecond per record.
 * Knobs: BENCH_FEED_RECORDS. Everything lives in a temp dir under /tmp,
 * deleted at the end. Bounded: about 10 s here.
 */
#include "bench_util.h"

#include "engine.h"
#include "journal.h"

#include <ftw.h>
#include <inttypes.h>

#define BENCH_FEED_LEVELS 10000u
#define BENCH_FEED_LOCATIONS 10u
#define BENCH_FEED_HOLD_EVERY 100u
#define BENCH_FEED_BATCH_EVERY 1000u
#define BENCH_FEED_RECORDS_MAX (100ull * 1000 * 1000)

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_feed_read: %s: %s\n", what, inv_strerror(rc));
    exit(1);
}

/* Writes n changes; returns the records the feed will show. */
static uint64_t write_changes(inv_engine *e, uint64_t n)
{
    for (uint64_t l = 0; l < BENCH_FEED_LOCATIONS; l++)
        if (inv_location_put(e, l + 1, NULL) != INV_OK)
            die("location", INV_EIO);
    uint64_t items = BENCH_FEED_LEVELS / BENCH_FEED_LOCATIONS;
    for (uint64_t i = 0; i < items; i++) {
        if (inv_item_put(e, i + 1, NULL) != INV_OK)
            die("item", INV_EIO);
        for (uint64_t l = 0; l < BENCH_FEED_LOCATIONS; l++)
            (void)inv_level_set(e, i + 1, l + 1, 1000000, 0, NULL);
    }
    uint64_t rng = bench_rng_seed(1);
    char id[32];
    for (uint64_t k = 0; k < n; k++) {
        uint64_t item = 1 + bench_rng_below(&rng, items);
        uint64_t loc = 1 + bench_rng_below(&rng, BENCH_FEED_LOCATIONS);
        if (k % BENCH_FEED_HOLD_EVERY == 0) {
            inv_hold_line line = {item, loc, 1};
            snprintf(id, sizeof id, "h%" PRIu64, k);
            if (inv_hold_create(e, id, strlen(id), 60000, &line, 1, NULL) == INV_OK)
                (void)inv_hold_commit(e, id, strlen(id));
        } else if (k % BENCH_FEED_BATCH_EVERY == 1) {
            inv_batch_line b[2] = {
                {.op = INV_BATCH_LEVEL_ADJUST, .item = item, .location = loc, .qty = -1},
                {.op = INV_BATCH_LEVEL_ADJUST, .item = item, .location = loc, .qty = 1}};
            b[0].floor = b[1].floor = INV_NO_FLOOR;
            (void)inv_batch(e, b, 2, NULL, NULL);
        } else {
            (void)inv_level_adjust(e, item, loc, (k & 1) ? 1 : -1, INV_NO_FLOOR, NULL);
        }
    }
    return n;
}

/* Reads every record from f: records, changes, seconds. */
static void read_all(inv_feed *f, uint64_t *records, uint64_t *changes, double *secs)
{
    inv_feed_record r;
    int rc;
    uint64_t t0 = bench_now_ns();
    *records = *changes = 0;
    while ((rc = inv_feed_next(f, &r)) == INV_OK) {
        ++*records;
        *changes += r.n_changes;
    }
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    if (rc != INV_ENOTFOUND)
        die("inv_feed_next", rc);
}

static void report(const char *what, uint64_t records, uint64_t changes, double secs)
{
    char rate[32];
    printf("%-34s %10" PRIu64 " records %10" PRIu64 " changes  %8.3f s  %s records/s  "
           "%.0f ns/record\n",
           what, records, changes, secs, bench_fmt_rate(rate, sizeof rate, records / secs),
           secs * 1e9 / (double)(records ? records : 1));
}

int main(void)
{
    uint64_t n = bench_env_u64("BENCH_FEED_RECORDS", 2000000);
    if (n > BENCH_FEED_RECORDS_MAX)
        n = BENCH_FEED_RECORDS_MAX;
    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    printf("bench_feed_read: %s; %" PRIu64 " changes, %u levels\n", cpu, n, BENCH_FEED_LEVELS);
    char dir[] = "/tmp/invcore-bench-feed-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", INV_EIO);
    inv_config cfg = {.data_dir = dir, .fsync_policy = INV_FSYNC_NONE};
    inv_engine *e;
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK)
        die("inv_open", rc);
    uint64_t t0 = bench_now_ns();
    write_changes(e, n);
    if ((rc = journal_wait(e->jr, journal_tail(e->jr) - 1)) != INV_OK)
        die("journal_wait", rc);
    printf("%-34s %.2f s (%.1f MB of journal)\n", "written in", (double)(bench_now_ns() - t0) / 1e9,
           (double)journal_tail(e->jr) / 1e6);

    uint64_t records, changes;
    double secs;
    inv_feed *f;
    for (int pass = 0; pass < 2; pass++) { /* the first pass warms the page cache */
        if ((rc = inv_feed_open(e, 0, &f)) != INV_OK)
            die("inv_feed_open", rc);
        read_all(f, &records, &changes, &secs);
        inv_feed_close(f);
        report(pass ? "inv_feed_next (engine)" : "inv_feed_next (engine, cold)", records, changes,
               secs);
    }
    /* one level's history: the newest page of a level among 10k (the
     * first call also walks the last segment for the boundary index) */
    for (int pass = 0; pass < 2; pass++) {
        inv_feed_page *page;
        const inv_feed_record *const *recs;
        size_t got;
        uint64_t next;
        t0 = bench_now_ns();
        rc = inv_level_history(e, 1, 1, 0, 100, &page, &recs, &got, &next);
        if (rc != INV_OK)
            die("inv_level_history", rc);
        printf("%-34s %zu records in %.2f ms (next before %" PRIu64 ")\n",
               pass ? "inv_level_history (index built)" : "inv_level_history (first)", got,
               (double)(bench_now_ns() - t0) / 1e6, next);
        inv_feed_page_free(page);
    }
    inv_close(e);

    if ((rc = inv_feed_open_dir(dir, 0, &f)) != INV_OK)
        die("inv_feed_open_dir", rc);
    read_all(f, &records, &changes, &secs);
    inv_feed_close(f);
    report("inv_feed_next (open_dir)", records, changes, secs);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
