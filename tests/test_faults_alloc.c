/*
 * test_faults_alloc.c — allocation failure loops (issue 17, build 3;
 * SQLite's approach): for every operation a request can make, fail the
 * Nth allocation (FAULT_ALLOC, core/alloc.h) of the calling thread for
 * N = 1, 2, ... until the operation completes without reaching a failure.
 * After each run:
 *  - the answer is INV_OK (the failure was absorbed) or INV_ENOMEM, never
 *    anything else, and never an abort;
 *  - the state is whole: INV_ENOMEM left it exactly as before, INV_OK as a
 *    run without faults leaves it (levels' every quantity, items,
 *    locations and the default, holds' states), and hold_verify_reserved /
 *    hold_verify_buyers hold;
 *  - after INV_ENOMEM the same operation without faults succeeds and
 *    leaves the state a run without faults leaves;
 *  - a reopen of the data directory finds the same state.
 * Leaks: the ASan/LSan build of this suite checks every run's frees.
 *
 * Only the calling thread's allocations count (a hook on the seam, not
 * fault_fail): the engine's background threads (journal writer, sweeper)
 * allocate at times of their own, and the loop must be the same every
 * run. Their allocations are the I/O loops' concern.
 *
 * The server's command layer runs in-process too (a session without a
 * connection, as fuzz/fuzz_resp.c drives it): its replies to the same
 * kinds of requests are a NOMEM error or the reply a run without faults
 * gives.
 *
 * The engine loop runs twice: on a data directory (the journal's paths)
 * and in memory (no journal; the operations that need one left out).
 *
 * Each suite prints a summary: operations, runs (operations × N) and the
 * runs that failed a check. What the loops found when written (fixed):
 * a batch's request id remembered its INV_ENOMEM outcome, so every retry
 * answered NOMEM (idem.c); a snapshot answered EIO when listing segments
 * ran out of memory (journal.c).
 */
#include "test_util.h"

#include "fault.h"
#include "hold.h"
#include "invcore.h"
#include "server/command.h"
#include "server/config.h"
#include "server/resp.h"
#include "server/stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
    LOC_A = 10,
    LOC_B = 11,
    LOC_C = 12,
    ITEM_1 = 1,
    ITEM_2 = 2,
    ITEM_3 = 3,
    LONG_TTL_MS = 600000, /* never expires during a test */
    N_MAX = 400, /* a bound on the loop: no operation allocates this often */
    DIGEST_MAX = 4096,
};

/* ---- failing the calling thread's Nth allocation ---------------------- */

typedef struct {
    pthread_t owner; /* only this thread's calls count */
    uint64_t calls; /* the owner's calls so far (the owner alone writes it) */
    uint64_t fail_at; /* 0: count only */
    uint64_t failed; /* the owner's calls failed */
} nth_alloc;

static int nth_alloc_hook(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    (void)site, (void)call, (void)arg, (void)arg2;
    nth_alloc *n = ctx;
    if (!pthread_equal(pthread_self(), n->owner))
        return 0;
    if (++n->calls != n->fail_at)
        return 0;
    n->failed++;
    return ENOMEM;
}

static void nth_arm(nth_alloc *n, uint64_t fail_at)
{
    *n = (nth_alloc){pthread_self(), 0, fail_at, 0};
    fault_hook(FAULT_ALLOC, nth_alloc_hook, n);
}

static void nth_disarm(void)
{
    fault_reset();
}

/* ---- the state every operation starts from ------------------------------ */

/* fsync none (fast) unless an operation reads the journal's files (the
 * feed reads only what is durable). */
/* The engine loop's mode: a data directory (the journal's paths too), or
 * in memory (no journal: the paths a memory engine takes instead). */
static bool in_memory;

/* A scratch directory for a run; "" in memory. */
static void scratch_dir(char *dir, size_t cap, const char *name)
{
    if (in_memory)
        dir[0] = '\0';
    else
        tu_tmpdir(dir, cap, name);
}

static void scratch_remove(const char *dir)
{
    if (dir[0])
        cr_assert_eq(tu_remove_tree(dir), 0);
}

static inv_engine *open_at(const char *dir, bool durable)
{
    inv_config cfg = {0};
    cfg.data_dir = dir && dir[0] ? dir : NULL;
    cfg.fsync_policy = durable ? INV_FSYNC_ALWAYS : INV_FSYNC_NONE;
    /* tiny tables: operations grow them (growth allocates) */
    cfg.items_capacity = 1;
    cfg.locations_capacity = 1;
    cfg.levels_capacity = 1;
    cfg.holds_capacity = 1;
    return tu_open_config(&cfg);
}

static void put_sku(inv_engine *e, uint64_t item, const char *sku)
{
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_ITEM_SKU | INV_ITEM_TRACKED;
    f.tracked = true;
    snprintf(f.sku, sizeof f.sku, "%s", sku);
    cr_assert_eq(inv_item_put(e, item, &f), INV_OK, "item %" PRIu64, item);
}

static const inv_hold_opts buyer_b = {"b", 1, 5, "order-1", 7};

static const inv_batch_line base_batch[] = {
    {.op = INV_BATCH_LEVEL_ADJUST,
     .item = ITEM_1,
     .location = LOC_B,
     .qty = 1,
     .floor = INV_NO_FLOOR},
};
static const inv_batch_opts base_batch_id = {"r0", 2};

/* Locations A (the default) and B; items 1 and 2; levels (1, A) 10,
 * (2, A) 10, (1, B) 5; holds h1 (2 of (1, A), buyer b) and h2 (1 of (2, A)
 * and 1 of (1, B)); a batch remembered under request id r0. */
static void base_state(inv_engine *e)
{
    cr_assert_eq(inv_location_put(e, LOC_A, NULL), INV_OK);
    cr_assert_eq(inv_location_put(e, LOC_B, NULL), INV_OK);
    put_sku(e, ITEM_1, "s1");
    put_sku(e, ITEM_2, "s2");
    tu_set_level(e, ITEM_1, LOC_A, 10);
    tu_set_level(e, ITEM_2, LOC_A, 10);
    tu_set_level(e, ITEM_1, LOC_B, 5);
    inv_hold_line h1 = {ITEM_1, LOC_A, 2};
    cr_assert_eq(inv_hold_create_ex(e, "h1", 2, LONG_TTL_MS, &h1, 1, &buyer_b, NULL), INV_OK);
    inv_hold_line h2[] = {{ITEM_2, LOC_A, 1}, {ITEM_1, LOC_B, 1}};
    cr_assert_eq(inv_hold_create(e, "h2", 2, LONG_TTL_MS, h2, 2, NULL), INV_OK);
    inv_batch_result res[1];
    size_t failed = 0;
    cr_assert_eq(inv_batch_ex(e, base_batch, 1, &base_batch_id, res, &failed), INV_OK);
}

/* ---- the state, as text ------------------------------------------------- */

typedef struct {
    char s[DIGEST_MAX];
    size_t len;
} digest;

static void dg_add(digest *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dg_add(digest *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->s + d->len, sizeof d->s - d->len, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof d->s - d->len, "digest overflow");
    d->len += (size_t)n;
}

static const char *const hold_ids[] = {"h1", "h2", "h3", "hb", "hi"};

/* Everything the operations change, without times and revisions (a
 * failed attempt may have used journal positions). */
static void digest_of(inv_engine *e, digest *d)
{
    d->len = 0;
    d->s[0] = '\0';
    for (uint64_t item = ITEM_1; item <= ITEM_3; item++) {
        inv_item it;
        int rc = inv_item_get(e, item, &it);
        dg_add(d, "item %" PRIu64 ": %d %s\n", item, rc, rc == INV_OK ? it.fields.sku : "-");
        for (uint64_t loc = LOC_A; loc <= LOC_C; loc++) {
            inv_level_full f;
            rc = inv_level_get_full(e, item, loc, &f);
            dg_add(d, "level %" PRIu64 "/%" PRIu64 ": %d", item, loc, rc);
            for (int q = 0; rc == INV_OK && q < INV_QTY_NAMES; q++)
                dg_add(d, " %" PRId64, f.qty[q]);
            if (rc == INV_OK)
                dg_add(d, " policy %d/%" PRId64, (int)f.policy, f.preorder_limit);
            dg_add(d, "\n");
        }
    }
    for (uint64_t loc = LOC_A; loc <= LOC_C; loc++) {
        inv_location l;
        int rc = inv_location_get(e, loc, &l);
        dg_add(d, "location %" PRIu64 ": %d %d\n", loc, rc, rc == INV_OK && l.is_default);
    }
    for (size_t i = 0; i < sizeof hold_ids / sizeof hold_ids[0]; i++) {
        inv_hold_info h;
        int rc = inv_hold_get(e, hold_ids[i], strlen(hold_ids[i]), &h);
        dg_add(d, "hold %s: %d %d", hold_ids[i], rc, rc == INV_OK ? (int)h.state : -1);
        for (size_t k = 0; rc == INV_OK && k < h.n_lines; k++)
            dg_add(d, " %" PRId64 "/%" PRId64, h.lines[k].qty, h.committed[k]);
        dg_add(d, "\n");
    }
}

/* The engine's own invariants: reserved units are the held lines', and
 * buyer counters are what their holds count. */
static bool invariants_hold(inv_engine *e)
{
    return hold_verify_reserved(e) == INV_OK && hold_verify_buyers(e) == INV_OK;
}

/* ---- the operations ------------------------------------------------------ */

static int op_level_set(inv_engine *e)
{
    return inv_level_set(e, ITEM_1, LOC_A, 20, 0, NULL);
}

static int op_level_create(inv_engine *e)
{
    return inv_level_set(e, ITEM_2, LOC_B, 7, 0, NULL);
}

static int op_level_adjust(inv_engine *e)
{
    return inv_level_adjust(e, ITEM_1, LOC_A, -3, 0, NULL);
}

static int op_level_cas(inv_engine *e)
{
    inv_level l;
    int rc = inv_level_get(e, ITEM_2, LOC_A, &l);
    return rc == INV_OK ? inv_level_adjust_if(e, ITEM_2, LOC_A, 4, 0, l.revision, NULL) : rc;
}

static int op_level_transfer(inv_engine *e)
{
    return inv_level_transfer(e, ITEM_2, LOC_A, LOC_B, 2, INV_QTY_AVAILABLE, INV_QTY_AVAILABLE);
}

/* Writes only the SKU of item (creating it when absent). */
static int put_sku_only(inv_engine *e, uint64_t item, const char *sku)
{
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_ITEM_SKU;
    snprintf(f.sku, sizeof f.sku, "%s", sku);
    return inv_item_put(e, item, &f);
}

static int op_level_move(inv_engine *e)
{
    return inv_level_move(e, ITEM_1, LOC_A, 3, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, 0, NULL);
}

static int op_level_policy(inv_engine *e)
{
    return inv_level_set_policy(e, ITEM_2, LOC_A, INV_POLICY_CONTINUE, 5);
}

static int op_item_create(inv_engine *e)
{
    return put_sku_only(e, ITEM_3, "s3");
}

static int op_item_update(inv_engine *e)
{
    return put_sku_only(e, ITEM_1, "s1-new");
}

static int op_location_create(inv_engine *e)
{
    return inv_location_put(e, LOC_C, NULL);
}

static int op_location_set_default(inv_engine *e)
{
    return inv_location_set_default(e, LOC_B);
}

static int op_hold_create(inv_engine *e)
{
    inv_hold_line lines[] = {{ITEM_1, LOC_A, 1}, {ITEM_2, LOC_A, 2}};
    return inv_hold_create_ex(e, "h3", 2, LONG_TTL_MS, lines, 2, &buyer_b, NULL);
}

static int op_hold_commit(inv_engine *e)
{
    return inv_hold_commit(e, "h1", 2);
}

static int op_hold_commit_partial(inv_engine *e)
{
    inv_hold_line sold = {ITEM_2, LOC_A, 1};
    return inv_hold_commit_partial(e, "h2", 2, &sold, 1);
}

static int op_hold_release(inv_engine *e)
{
    return inv_hold_release(e, "h2", 2);
}

static int op_hold_extend(inv_engine *e)
{
    return inv_hold_extend(e, "h1", 2, LONG_TTL_MS * 2);
}

static const inv_hold_line batch_hold_line = {ITEM_2, LOC_A, 3};

static int run_batch(inv_engine *e, const char *hb, const inv_batch_opts *opts)
{
    const inv_batch_line lines[] = {
        {.op = INV_BATCH_LEVEL_SET, .item = ITEM_2, .location = LOC_A, .qty = 12},
        {.op = INV_BATCH_LEVEL_ADJUST,
         .item = ITEM_1,
         .location = LOC_B,
         .qty = 1,
         .floor = INV_NO_FLOOR},
        {.op = INV_BATCH_HOLD_CREATE,
         .hold_id = hb,
         .hold_id_len = strlen(hb),
         .ttl_ms = LONG_TTL_MS,
         .hold_lines = &batch_hold_line,
         .n_hold_lines = 1},
        {.op = INV_BATCH_HOLD_COMMIT, .hold_id = "h1", .hold_id_len = 2},
        {.op = INV_BATCH_LEVEL_TRANSFER,
         .item = ITEM_1,
         .location = LOC_A,
         .to_location = LOC_B,
         .qty = 1},
    };
    inv_batch_result res[5];
    size_t failed = 0;
    return inv_batch_ex(e, lines, 5, opts, res, &failed);
}

static int op_batch(inv_engine *e)
{
    return run_batch(e, "hb", NULL);
}

static int op_batch_request_id(inv_engine *e)
{
    static const inv_batch_opts id = {"r1", 2};
    return run_batch(e, "hi", &id);
}

static int op_batch_retried_request_id(inv_engine *e)
{
    inv_batch_result res[1];
    size_t failed = 0;
    return inv_batch_ex(e, base_batch, 1, &base_batch_id, res, &failed);
}

static int op_feed_read(inv_engine *e)
{
    inv_feed *f = NULL;
    int rc = inv_feed_open(e, 0, &f);
    if (rc != INV_OK)
        return rc;
    inv_feed_record rec;
    size_t n = 0;
    while ((rc = inv_feed_next(f, &rec)) == INV_OK && n < 10000)
        n++;
    inv_feed_close(f);
    if (rc == INV_ENOTFOUND)
        return n > 0 ? INV_OK : INV_EINVALID; /* read to the end */
    return rc;
}

static int op_level_history(inv_engine *e)
{
    inv_feed_page *page = NULL;
    const inv_feed_record *const *recs = NULL;
    size_t n = 0;
    uint64_t next = 0;
    int rc = inv_level_history(e, ITEM_1, LOC_A, 0, 10, &page, &recs, &n, &next);
    if (rc == INV_OK && n == 0)
        rc = INV_EINVALID; /* the level has records */
    inv_feed_page_free(page);
    return rc;
}

static int op_snapshot(inv_engine *e)
{
    return inv_snapshot(e);
}

typedef struct {
    const char *name;
    int (*run)(inv_engine *e);
    bool durable; /* reads the journal's files: fsync always */
} op_case;

static const op_case engine_ops[] = {
    {"level set", op_level_set, false},
    {"level set (creates)", op_level_create, false},
    {"level adjust", op_level_adjust, false},
    {"level adjust IFREV", op_level_cas, false},
    {"level transfer", op_level_transfer, false},
    {"level move", op_level_move, false},
    {"level policy", op_level_policy, false},
    {"item create", op_item_create, false},
    {"item update", op_item_update, false},
    {"location create", op_location_create, false},
    {"location set default", op_location_set_default, false},
    {"hold create", op_hold_create, false},
    {"hold commit", op_hold_commit, false},
    {"hold commit partial", op_hold_commit_partial, false},
    {"hold release", op_hold_release, false},
    {"hold extend", op_hold_extend, false},
    {"batch", op_batch, false},
    {"batch with request id", op_batch_request_id, false},
    {"batch retried request id", op_batch_retried_request_id, false},
    {"feed read", op_feed_read, true},
    {"level history", op_level_history, true},
    {"snapshot", op_snapshot, false},
};

/* ---- the loop ------------------------------------------------------------ */

typedef struct {
    size_t ops, runs, absorbed, nomem, bad;
    uint64_t n_max; /* the most allocations one operation made */
} loop_stats;

/* One case in a fresh directory: the state after a run without faults. */
static void reference_run(const op_case *c, digest *before, digest *after)
{
    char dir[64];
    scratch_dir(dir, sizeof dir, "allocref");
    inv_engine *e = open_at(dir, c->durable);
    base_state(e);
    digest_of(e, before);
    int rc = c->run(e);
    cr_assert_eq(rc, INV_OK, "%s without faults: %s", c->name, inv_strerror(rc));
    digest_of(e, after);
    inv_close(e);
    scratch_remove(dir);
}

#define CHECK(st, cond, ...)                   \
    do {                                       \
        if (!(cond)) {                         \
            (st)->bad++;                       \
            cr_log_error(__VA_ARGS__);         \
            cr_expect(0, "see the log above"); \
        }                                      \
    } while (0)

/* Whether run N checks a reopen: every run, but under a sanitizer
 * (INVCORE_STRESS_SCALE s > 1) every s-th only (a reopen is half a run's
 * time; every N still runs, so every allocation's failure path is checked
 * for leaks). */
static bool reopen_checked(uint64_t n)
{
    return (n - 1) % tu_scale() == 0;
}

/* Operations are run with this stride: 1, but under ThreadSanitizer
 * (INVCORE_STRESS_SCALE >= TSAN_SCALE) every (scale / 2)-th only: the
 * loops run on one thread, so TSan has little to find, and its runs are
 * several times slower. ASan runs every operation (leaks). */
#define TSAN_SCALE 8

static size_t op_stride(void)
{
    uint64_t scale = tu_scale();
    return scale >= TSAN_SCALE ? (size_t)(scale / 2) : 1;
}

/* Closes e, opens dir again and checks it finds the state was. */
static inv_engine *reopen_same(inv_engine *e, const char *dir, const digest *was, const op_case *c,
                               uint64_t n, loop_stats *st)
{
    inv_close(e);
    e = open_at(dir, c->durable);
    digest reopened;
    digest_of(e, &reopened);
    CHECK(st, strcmp(reopened.s, was->s) == 0, "%s, N=%" PRIu64 ": reopened as\n%s\nnot\n%s",
          c->name, n, reopened.s, was->s);
    CHECK(st, invariants_hold(e), "%s, N=%" PRIu64 ": invariants broken after a reopen", c->name,
          n);
    return e;
}

/* Runs c with its Nth allocation failed; true when a failure was reached
 * (so N+1 is worth trying). */
static bool faulted_run(const op_case *c, uint64_t n, const digest *before, const digest *after,
                        loop_stats *st)
{
    char dir[64];
    scratch_dir(dir, sizeof dir, "alloc");
    inv_engine *e = open_at(dir, c->durable);
    base_state(e);
    static nth_alloc nth;
    nth_arm(&nth, n);
    int rc = c->run(e);
    nth_disarm();
    bool reached = nth.failed > 0;
    if (nth.calls > st->n_max)
        st->n_max = nth.calls;
    st->runs++;
    digest now;
    digest_of(e, &now);
    CHECK(st, rc == INV_OK || rc == INV_ENOMEM, "%s, N=%" PRIu64 ": %s", c->name, n,
          inv_strerror(rc));
    CHECK(st, invariants_hold(e), "%s, N=%" PRIu64 ": invariants broken", c->name, n);
    if (rc == INV_OK) {
        st->absorbed += reached;
        CHECK(st, strcmp(now.s, after->s) == 0,
              "%s, N=%" PRIu64 ": OK but the state is\n%s\nnot\n%s", c->name, n, now.s, after->s);
    } else if (rc == INV_ENOMEM) {
        st->nomem++;
        CHECK(st, strcmp(now.s, before->s) == 0,
              "%s, N=%" PRIu64 ": NOMEM but the state changed:\n%s\nwas\n%s", c->name, n, now.s,
              before->s);
        /* the retry in the same engine (a server retries without a
         * restart); the reopen below replays what both journaled */
        int again = c->run(e);
        CHECK(st, again == INV_OK, "%s, N=%" PRIu64 ": the retry: %s", c->name, n,
              inv_strerror(again));
        digest_of(e, &now);
        CHECK(st, strcmp(now.s, after->s) == 0,
              "%s, N=%" PRIu64 ": after the retry the state is\n%s\nnot\n%s", c->name, n, now.s,
              after->s);
    }
    if (dir[0] && reopen_checked(n))
        e = reopen_same(e, dir, &now, c, n, st);
    inv_close(e);
    scratch_remove(dir);
    return reached;
}

static void loop_case(const op_case *c, loop_stats *st)
{
    digest before, after;
    reference_run(c, &before, &after);
    st->ops++;
    uint64_t n = 1;
    while (faulted_run(c, n, &before, &after, st)) {
        n++;
        cr_assert_leq(n, N_MAX, "%s: still allocating at N=%d", c->name, N_MAX);
    }
    cr_log_info("%-26s N = 1..%" PRIu64, c->name, n);
}

static void print_summary(const char *what, const loop_stats *st)
{
    printf("alloc failure loops (%s): %zu operations, %zu runs (operations x N), %zu absorbed "
           "(OK), %zu NOMEM, %zu checks failed; at most %" PRIu64 " allocations per operation\n",
           what, st->ops, st->runs, st->absorbed, st->nomem, st->bad, st->n_max);
    fflush(stdout);
}

Test(alloc_faults, every_engine_operation_answers_nomem_or_ok_and_keeps_its_state_whole,
     .timeout = 300)
{
    in_memory = false; /* the TSan runner runs every test in one process */
    loop_stats st = {0};
    for (size_t i = 0; i < sizeof engine_ops / sizeof engine_ops[0]; i += op_stride())
        loop_case(&engine_ops[i], &st);
    print_summary("engine", &st);
    cr_assert_eq(st.bad, 0);
}

Test(alloc_faults, the_same_operations_in_memory_answer_nomem_or_ok_and_keep_their_state_whole,
     .timeout = 300)
{
    in_memory = true;
    loop_stats st = {0};
    for (size_t i = 0; i < sizeof engine_ops / sizeof engine_ops[0]; i += op_stride()) {
        const op_case *c = &engine_ops[i];
        if (!c->durable && c->run != op_snapshot) /* they need a journal */
            loop_case(c, &st);
    }
    print_summary("engine in memory", &st);
    cr_assert_eq(st.bad, 0);
}

/* ---- tenants ------------------------------------------------------------- */

static inv_tenants *tenants_open_at(const char *dir, bool durable)
{
    inv_config cfg = {0};
    cfg.data_dir = dir;
    cfg.fsync_policy = durable ? INV_FSYNC_ALWAYS : INV_FSYNC_NONE;
    inv_tenants *ts = NULL;
    int rc = inv_tenants_open(&ts, &cfg, NULL);
    cr_assert_eq(rc, INV_OK, "inv_tenants_open(%s): %s", dir, inv_strerror(rc));
    return ts;
}

/* The default tenant's state and which tenants exist. */
static void tenants_digest(inv_tenants *ts, digest *d)
{
    inv_tenant *def = inv_tenant_default(ts);
    digest_of(inv_tenant_engine(def), d);
    cr_assert(invariants_hold(inv_tenant_engine(def)), "invariants broken");
    inv_tenant_put(def);
    dg_add(d, "tenants: %zu", inv_tenants_count(ts));
    static const char *const names[] = {"t1", "t2"};
    for (size_t i = 0; i < 2; i++) {
        inv_tenant *t = NULL;
        int rc = inv_tenant_get(ts, names[i], 2, &t);
        dg_add(d, " %s %d", names[i], rc);
        if (t)
            inv_tenant_put(t);
    }
    dg_add(d, "\n");
}

/* ---- the server's command layer, in-process ------------------------------ */

/* A request: commands (space-separated arguments) run in one session; the
 * faults are armed around the last one (EXEC for a transaction). */
typedef struct {
    const char *name;
    const char *cmds[5]; /* NULL-terminated */
    bool durable;
} cmd_case;

static const cmd_case server_cmds[] = {
    {"LEVEL.SET", {"LEVEL.SET 1 10 20"}, false},
    {"LEVEL.ADJUST ID", {"LEVEL.ADJUST 1 10 -3 FLOOR 0 ID a1"}, false},
    {"LEVEL.TRANSFER", {"LEVEL.TRANSFER 2 10 11 2"}, false},
    {"LEVEL.MOVE", {"LEVEL.MOVE 1 10 3 FROM available TO damaged"}, false},
    {"LEVEL.POLICY", {"LEVEL.POLICY 2 10 CONTINUE LIMIT 5"}, false},
    {"ITEM.SET", {"ITEM.SET 3 sku s3"}, false},
    {"LOC.SET", {"LOC.SET 12 name north"}, false},
    {"LOC.DEFAULT", {"LOC.DEFAULT 11"}, false},
    {"HOLD.CREATE", {"HOLD.CREATE h3 600000 1 10 1 2 10 2 BUYER b LIMIT 5"}, false},
    {"HOLD.COMMIT partial", {"HOLD.COMMIT h2 2 10 1"}, false},
    {"HOLD.RELEASE", {"HOLD.RELEASE h2"}, false},
    {"HOLD.EXTEND", {"HOLD.EXTEND h1 1200000"}, false},
    {"MULTI/EXEC", {"MULTI", "LEVEL.SET 2 10 12", "HOLD.COMMIT h1", "EXEC"}, false},
    {"FEED.READ", {"FEED.READ FROM 0 COUNT 100"}, true},
    {"LEVEL.HISTORY", {"LEVEL.HISTORY 1 10"}, true},
    {"LEVEL.SET ID (creates)", {"LEVEL.SET 2 11 7 ID s1"}, false},
    {"TENANT.CREATE", {"TENANT.CREATE t1"}, false},
    {"TENANT.DROP", {"TENANT.DROP t2"}, false},
};

enum { CMD_ARGS_MAX = 24 };

typedef struct {
    server_config cfg;
    token_registry tokens;
    stats_global g;
    server_ctx ctx;
    stats_thread *st;
    cmd_scratch *scratch;
} server_rig;

static void rig_init(server_rig *r, inv_tenants *ts)
{
    memset(r, 0, sizeof *r);
    config_defaults(&r->cfg);
    r->cfg.max_args = CMD_ARGS_MAX;
    char err[256];
    cr_assert_eq(token_registry_init(&r->tokens, NULL, err, sizeof err), INV_OK, "%s", err);
    r->ctx =
        (server_ctx){.tenants = ts, .tokens = &r->tokens, .cfg = &r->cfg, .g = &r->g, .threads = 1};
    r->st = stats_thread_new();
    r->scratch = command_scratch_new();
    cr_assert(r->st && r->scratch);
}

static void rig_free(server_rig *r)
{
    command_scratch_free(r->scratch);
    stats_thread_free(r->st);
    token_registry_destroy(&r->tokens);
}

/* Splits cmd at spaces into argv (pointing into cmd). */
static size_t split_args(const char *cmd, resp_arg *argv)
{
    size_t n = 0;
    for (const char *p = cmd; *p;) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        if (p > start) {
            cr_assert_lt(n, CMD_ARGS_MAX);
            argv[n++] = (resp_arg){start, (size_t)(p - start)};
        }
    }
    return n;
}

/* Runs c's commands; *last: the last one's reply (the caller frees it).
 * fail_at: the allocation of the last command to fail (0: none); *reached:
 * whether it was. */
static void run_request(server_rig *r, const cmd_case *c, uint64_t fail_at, resp_out *last,
                        bool *reached, uint64_t *calls)
{
    session s;
    session_init(&s, &r->ctx, r->st, r->scratch);
    static nth_alloc nth;
    *reached = false;
    for (size_t i = 0; c->cmds[i]; i++) {
        resp_arg argv[CMD_ARGS_MAX];
        size_t argc = split_args(c->cmds[i], argv);
        bool is_last = c->cmds[i + 1] == NULL;
        resp_out o;
        resp_out_init(&o, 2);
        if (is_last && fail_at)
            nth_arm(&nth, fail_at);
        (void)command_exec(&s, &o, argv, argc);
        if (is_last && fail_at) {
            nth_disarm();
            *reached = nth.failed > 0;
            *calls = nth.calls;
        }
        if (is_last)
            *last = o;
        else
            resp_out_free(&o);
    }
    session_free(&s);
}

static void state_of(inv_tenants *ts, digest *d)
{
    tenants_digest(ts, d);
}

/* The base state on the default tenant, and t2 created. */
static inv_tenants *server_base(const char *dir, bool durable)
{
    inv_tenants *ts = tenants_open_at(dir, durable);
    inv_tenant *def = inv_tenant_default(ts);
    base_state(inv_tenant_engine(def));
    inv_tenant_put(def);
    cr_assert_eq(inv_tenant_create(ts, "t2", 2), INV_OK);
    return ts;
}

static bool reply_is(const resp_out *o, const char *prefix)
{
    return o->len >= strlen(prefix) && memcmp(o->buf, prefix, strlen(prefix)) == 0;
}

static void cmd_reference(const cmd_case *c, digest *before, digest *after, char *first)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "allocsrvref");
    inv_tenants *ts = server_base(dir, c->durable);
    server_rig r;
    rig_init(&r, ts);
    state_of(ts, before);
    resp_out o;
    bool reached;
    uint64_t calls = 0;
    run_request(&r, c, 0, &o, &reached, &calls);
    cr_assert(o.len > 0 && o.buf[0] != '-', "%s without faults: %.*s", c->name, (int)o.len, o.buf);
    *first = o.buf[0];
    resp_out_free(&o);
    state_of(ts, after);
    rig_free(&r);
    inv_tenants_close(ts);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

static bool cmd_faulted(const cmd_case *c, uint64_t n, const digest *before, const digest *after,
                        char first, loop_stats *st)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "allocsrv");
    inv_tenants *ts = server_base(dir, c->durable);
    server_rig r;
    rig_init(&r, ts);
    resp_out o;
    bool reached;
    uint64_t calls = 0;
    run_request(&r, c, n, &o, &reached, &calls);
    st->runs++;
    if (calls > st->n_max)
        st->n_max = calls;
    digest now;
    state_of(ts, &now);
    bool nomem = reply_is(&o, "-NOMEM") || o.failed;
    bool ok = !o.failed && o.len > 0 && o.buf[0] == first;
    CHECK(st, nomem || ok, "%s, N=%" PRIu64 ": reply %.*s", c->name, n, (int)o.len, o.buf);
    if (ok) {
        st->absorbed += reached;
        CHECK(st, strcmp(now.s, after->s) == 0,
              "%s, N=%" PRIu64 ": OK but the state is\n%s\nnot\n%s", c->name, n, now.s, after->s);
    } else if (o.failed && strcmp(now.s, after->s) == 0) {
        /* the reply could not be written after the change: the client is
         * disconnected, as by a network failure (it retries with an ID) */
        st->nomem++;
    } else if (nomem) {
        st->nomem++;
        CHECK(st, strcmp(now.s, before->s) == 0,
              "%s, N=%" PRIu64 ": NOMEM but the state changed:\n%s\nwas\n%s", c->name, n, now.s,
              before->s);
        resp_out again;
        bool unused;
        run_request(&r, c, 0, &again, &unused, &calls);
        CHECK(st, again.len > 0 && again.buf[0] == first, "%s, N=%" PRIu64 ": the retry: %.*s",
              c->name, n, (int)again.len, again.buf);
        resp_out_free(&again);
        state_of(ts, &now);
        CHECK(st, strcmp(now.s, after->s) == 0,
              "%s, N=%" PRIu64 ": after the retry the state is\n%s\nnot\n%s", c->name, n, now.s,
              after->s);
    }
    resp_out_free(&o);
    rig_free(&r);
    inv_tenants_close(ts);
    if (reopen_checked(n)) {
        ts = tenants_open_at(dir, c->durable);
        digest reopened;
        state_of(ts, &reopened);
        CHECK(st, strcmp(reopened.s, now.s) == 0, "%s, N=%" PRIu64 ": reopened as\n%s\nnot\n%s",
              c->name, n, reopened.s, now.s);
        inv_tenants_close(ts);
    }
    cr_assert_eq(tu_remove_tree(dir), 0);
    return reached;
}

Test(alloc_faults, every_server_request_answers_nomem_or_its_reply_and_keeps_its_state_whole,
     .timeout = 300)
{
    loop_stats st = {0};
    for (size_t i = 0; i < sizeof server_cmds / sizeof server_cmds[0]; i += op_stride()) {
        const cmd_case *c = &server_cmds[i];
        digest before, after;
        char first;
        cmd_reference(c, &before, &after, &first);
        st.ops++;
        uint64_t n = 1;
        while (cmd_faulted(c, n, &before, &after, first, &st)) {
            n++;
            cr_assert_leq(n, N_MAX, "%s: still allocating at N=%d", c->name, N_MAX);
        }
    }
    print_summary("server commands", &st);
    cr_assert_eq(st.bad, 0);
}
