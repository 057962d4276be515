/*
 * test_crash.c — crash safety of the journal, through the public engine.
 *
 * Every crash test forks a child that opens an engine on a fresh directory
 * under /tmp (fsync ALWAYS, no deferred durability) and works; after each
 * acknowledged change (the call returned INV_OK, so the change is durable)
 * it writes one fixed-size record to a pipe. The parent SIGKILLs the child
 * at a random moment, reaps it, drains the pipe (a record is smaller than
 * PIPE_BUF, so each one arrived whole or not at all), opens the same
 * directory in this process and checks that nothing acknowledged was lost
 * and that the recovered state is one that really existed.
 *
 *  1. levels: random set / adjust / adjust-with-floor from 6 threads over
 *     30 levels (3 hot); every level's recovered revision >= the last
 *     acknowledged one, with the acknowledged state when equal and the
 *     logged state of that revision when later.
 *  2. holds: hold create / commit / release (long and short TTLs) mixed
 *     with adjusts on the same levels; every acknowledged hold and end is
 *     there, reserved == sum of live holds, and units are conserved
 *     exactly (see holds_verify for how uncertain adjusts are handled).
 *  3. ordering (DESIGN.md "Journal"): a hold stalled between its level
 *     CASes and its record's publication, an adjust on top of it: the
 *     adjust's acknowledgement waits for the hold, and recovery never shows
 *     one line of the hold without the hold. The same scenario with
 *     tu_late_reserve (the rule switched off) DOES show the
 *     broken state, so the first test can fail.
 *  4. recovery edge cases: clean reopen, torn tail, a corrupt middle record
 *     (refused, then repaired), snapshot + more changes + SIGKILL, and the
 *     crash tests of 1 and 2 with a thread taking snapshots meanwhile.
 *  5. batches (inv_batch): transfers between hot levels, a per-thread
 *     counter, hold creates and ends, some with a planted failing last
 *     line, from 4 threads, with and without snapshots: after the kill
 *     units are conserved exactly, every acknowledged batch is there whole,
 *     the one in flight per thread is there whole or not at all (its
 *     counter, its hold and its transfer agree), no failed batch left a
 *     trace, and reserved equals the held lines.
 *
 * Trials: INVCORE_CRASH_TRIALS (default 50) per crash test, divided by
 * INVCORE_STRESS_SCALE (sanitizer builds), at least 5.
 *
 * Fork safety: the test process never has an engine open when it forks
 * (every engine it opens is closed first, which joins its threads), so the
 * child starts single-threaded and may use anything. A child never returns
 * into Criterion: it ends with _exit, dies with its parent
 * (PR_SET_PDEATHSIG) and stops working after a few seconds by itself.
 * Only the children's own pids are ever signalled.
 */
#include "test_util.h"

#include "hold.h"
#include "persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- parameters ---------------------------------------------------------- */

#define CRASH_TRIALS_DEFAULT 50
#define CRASH_TRIALS_MIN 5
#define CHILD_WORK_MS 4000 /* a child stops working by itself after this */
#define CHILD_READY_TIMEOUT_MS 15000
#define CHILD_DRAIN_TIMEOUT_MS 15000
#define KILL_DELAY_MIN_MS 5 /* kill this long after the child is ready ... */
#define KILL_DELAY_MAX_MS 80 /* ... up to this */
#define EARLY_KILL_MAX_MS 40 /* some trials: kill this soon after fork */
#define SHORT_HOLD_SETTLE_MS 5000

/* Test 1: levels. */
#define LV_ITEMS 6
#define LV_LOCS 5
#define LV_LEVELS (LV_ITEMS * LV_LOCS)
#define LV_HOT 3
#define LV_THREADS 6

/* Test 2: holds. */
#define HD_ITEMS 4
#define HD_LOCS 4
#define HD_LEVELS (HD_ITEMS * HD_LOCS)
#define HD_HOT 2
#define HD_THREADS 4
#define HD_STOCK 1000
#define HD_LINES_MAX 3
#define HD_TTL_LONG_MS 600000
#define HD_TTL_SHORT_MIN_MS 20
#define HD_TTL_SHORT_MAX_MS 60
#define HD_OWN_MAX 4096 /* holds one child thread keeps track of */

/* ---- the pipe records ---------------------------------------------------- */

enum {
    REC_READY = 1, /* setup done (acknowledged), the random load starts */
    REC_FAIL, /* the child saw something wrong: rc, line in seq */
    REC_ITEM, /* item put acknowledged: level = item index */
    REC_LOC, /* location put acknowledged: level = location index */
    REC_LEVEL, /* set / adjust acknowledged with the returned level */
    REC_ADJ_TRY, /* an adjust is about to be called: level, arg = delta */
    REC_ADJ_DONE, /* ... it returned rc (with the level on INV_OK) */
    REC_HOLD_TRY, /* a hold create is about to be called: lines, arg = ttl */
    REC_HOLD_DONE, /* ... it returned rc; time_ms = expires_at_ms on INV_OK */
    REC_END_TRY, /* a commit / release (op) is about to be called */
    REC_END_DONE, /* ... it returned rc */
    REC_ORDER_HOOK, /* test 3: the hold thread sleeps in the publish hook */
    REC_ORDER_ADJ, /* test 3: the adjust returned; arg = hook had ended */
    REC_ORDER_HOLD, /* test 3: the hold create returned */
    REC_FINAL_LEVEL, /* test 4: the child's final level (level index) */
    REC_FINAL_HOLD, /* test 4: the child's final hold (seq = hold index) */
    REC_DONE, /* test 4: the script is over */
    REC_BATCH_TRY, /* test 5: a batch is about to run (see bt_worker) */
    REC_BATCH_DONE, /* test 5: ... it returned rc */
    REC_IDEM_TRY, /* test 6: an adjust with request id (thread, seq) is about to run */
    REC_IDEM_DONE, /* test 6: ... it returned rc with the level */
    REC_TENANT_TRY, /* test 7: a tenant create (op 1) / drop (op 2) of (thread, seq) starts */
    REC_TENANT_DONE, /* test 7: ... it returned rc */
    REC_TENANT_LEVEL /* test 7: the tenant's level set to seq was acknowledged */
};

typedef struct {
    uint8_t kind, thread, n_lines, op;
    int32_t rc;
    uint32_t seq;
    uint32_t level;
    uint32_t line_level[HD_LINES_MAX];
    uint32_t line_qty[HD_LINES_MAX];
    int64_t arg;
    int64_t available, reserved;
    uint64_t revision;
    int64_t time_ms;
} crash_rec;

_Static_assert(sizeof(crash_rec) <= PIPE_BUF, "a record must be written atomically");

/* ---- small helpers --------------------------------------------------------- */

static uint64_t crash_trials(uint64_t dflt)
{
    uint64_t n = dflt;
    const char *s = getenv("INVCORE_CRASH_TRIALS");
    if (s && *s) {
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (end != s && *end == '\0' && v > 0)
            n = v;
    }
    return tu_iters_min(n, CRASH_TRIALS_MIN);
}

/* Opens dir with fsync ALWAYS; the engine's messages on stderr are captured
 * into msg (callers put it in their assertion messages). */
static int open_dir(const char *dir, bool repair, inv_engine **out, char *msg, size_t cap)
{
    inv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_ALWAYS;
    cfg.repair = repair;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int mfd = memfd_create("invcore-test-stderr", MFD_CLOEXEC);
    bool redirected = saved >= 0 && mfd >= 0 && dup2(mfd, STDERR_FILENO) >= 0;
    int rc = inv_open(out, &cfg);
    fflush(stderr);
    if (redirected)
        (void)dup2(saved, STDERR_FILENO);
    if (saved >= 0)
        close(saved);
    msg[0] = '\0';
    if (mfd >= 0) {
        ssize_t n = pread(mfd, msg, cap - 1, 0);
        msg[n > 0 ? (size_t)n : 0] = '\0';
        close(mfd);
    }
    return rc;
}

static uint64_t lv_item(uint32_t idx)
{
    return tu_item_id(idx / LV_LOCS);
}
static uint64_t lv_loc(uint32_t idx)
{
    return tu_loc_id(idx % LV_LOCS);
}
static uint64_t hd_item(uint32_t idx)
{
    return tu_item_id(idx / HD_LOCS);
}
static uint64_t hd_loc(uint32_t idx)
{
    return tu_loc_id(idx % HD_LOCS);
}

/* Hot-biased level choice: half the picks go to the first `hot` levels. */
static uint32_t pick_level(tu_rng *r, uint32_t n, uint32_t hot)
{
    if (tu_rng_below(r, 2) == 0)
        return (uint32_t)tu_rng_below(r, hot);
    return (uint32_t)tu_rng_below(r, n);
}

static void hold_id(char *out, size_t cap, unsigned thread, uint32_t seq)
{
    snprintf(out, cap, "h%02u-%08" PRIu32, thread, seq);
}

/* ---- the child side -------------------------------------------------------- */

/* Writes one record (atomically: it is smaller than PIPE_BUF). A write
 * that fails means the parent is gone: stop. */
static void rec_send(int fd, const crash_rec *r)
{
    for (;;) {
        ssize_t n = write(fd, r, sizeof *r);
        if (n == (ssize_t)sizeof *r)
            return;
        if (n < 0 && errno == EINTR)
            continue;
        _exit(4);
    }
}

static void send_simple(int fd, uint8_t kind, unsigned thread, uint32_t level)
{
    crash_rec r = {.kind = kind, .thread = (uint8_t)thread, .level = level};
    rec_send(fd, &r);
}

static void send_fail(int fd, int line, int rc)
{
    crash_rec r = {.kind = REC_FAIL, .rc = rc, .seq = (uint32_t)line};
    rec_send(fd, &r);
}

#define CHILD_CHECK(fd, cond, rc)            \
    do {                                     \
        if (!(cond))                         \
            send_fail((fd), __LINE__, (rc)); \
    } while (0)

static void send_level(int fd, uint8_t kind, unsigned thread, uint32_t seq, uint32_t level,
                       int64_t arg, int rc, const inv_level *lv)
{
    crash_rec r = {
        .kind = kind, .thread = (uint8_t)thread, .seq = seq, .level = level, .arg = arg, .rc = rc};
    if (lv) {
        r.available = lv->available;
        r.reserved = lv->reserved;
        r.revision = lv->revision;
    }
    rec_send(fd, &r);
}

/* In the child, right after fork: die with the parent, keep SIGPIPE from
 * killing silently (a failed write ends the child anyway). */
static void child_prologue(void)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
}

static inv_engine *child_open(const char *dir, int fd)
{
    inv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_ALWAYS;
    cfg.defer_durability = false;
    inv_engine *e = NULL;
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK) {
        send_fail(fd, __LINE__, rc);
        _exit(3);
    }
    return e;
}

/* Items 0..n_items-1 and locations 0..n_locs-1 (tu_item_id / tu_loc_id). */
static void child_catalog(inv_engine *e, int fd, size_t n_items, size_t n_locs)
{
    for (size_t j = 0; j < n_locs; j++) {
        int rc = inv_location_put(e, tu_loc_id(j), NULL);
        if (rc != INV_OK) {
            send_fail(fd, __LINE__, rc);
            _exit(3);
        }
        send_simple(fd, REC_LOC, 255, (uint32_t)j);
    }
    for (size_t i = 0; i < n_items; i++) {
        int rc = inv_item_put(e, tu_item_id(i), NULL);
        if (rc != INV_OK) {
            send_fail(fd, __LINE__, rc);
            _exit(3);
        }
        send_simple(fd, REC_ITEM, 255, (uint32_t)i);
    }
}

typedef struct child_ctx child_ctx;
typedef void (*child_worker_fn)(child_ctx *c, unsigned t);

struct child_ctx {
    inv_engine *e;
    int fd;
    uint64_t seed;
    uint64_t stop_ns;
    unsigned n_workers;
    child_worker_fn worker;
    pthread_barrier_t setup_done; /* workers + main */
    _Atomic int stop; /* the snapshot thread's stop flag */
};

typedef struct {
    child_ctx *c;
    unsigned t;
} child_thread_arg;

static void *child_worker_main(void *p)
{
    child_thread_arg *a = p;
    a->c->worker(a->c, a->t);
    return NULL;
}

/* Takes a snapshot every 3..15 ms while the workers run. */
static void *child_snapshot_main(void *p)
{
    child_ctx *c = p;
    tu_rng r = tu_rng_seed(c->seed ^ 0x5a5a5a5aull);
    /* relaxed: a stop flag; nothing is published through it. */
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed) && tu_now_ns() < c->stop_ns) {
        tu_sleep_ms((unsigned)tu_rng_range(&r, 3, 15));
        int rc = inv_snapshot(c->e);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
    }
    return NULL;
}

/* Runs the workers (each does its share of the setup, waits at the
 * barrier, then the random load) and, optionally, a snapshot thread;
 * sends READY once every worker finished its setup. Never returns. */
static void child_run(child_ctx *c, bool snapshots)
{
    pthread_t tids[TU_THREADS_MAX];
    child_thread_arg args[TU_THREADS_MAX];
    if (pthread_barrier_init(&c->setup_done, NULL, c->n_workers + 1) != 0)
        _exit(3);
    for (unsigned t = 0; t < c->n_workers; t++) {
        args[t] = (child_thread_arg){c, t};
        if (pthread_create(&tids[t], NULL, child_worker_main, &args[t]) != 0) {
            send_fail(c->fd, __LINE__, -errno);
            _exit(3);
        }
    }
    pthread_barrier_wait(&c->setup_done);
    send_simple(c->fd, REC_READY, 255, 0);
    pthread_t snap;
    bool snap_started = snapshots && pthread_create(&snap, NULL, child_snapshot_main, c) == 0;
    for (unsigned t = 0; t < c->n_workers; t++)
        pthread_join(tids[t], NULL);
    /* relaxed: a stop flag. */
    atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
    if (snap_started)
        pthread_join(snap, NULL);
    _exit(0); /* the parent normally kills us long before */
}

/* ---- the parent side: running a child, reading its log --------------------- */

typedef struct {
    crash_rec *v;
    size_t n, cap;
    uint8_t part[sizeof(crash_rec)];
    size_t part_n;
} rec_log;

static void log_push(rec_log *l, const crash_rec *r)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        crash_rec *v = realloc(l->v, cap * sizeof *v);
        cr_assert_not_null(v, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *r;
}

/* Feeds raw pipe bytes (reads may split records). */
static void log_feed(rec_log *l, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        size_t take = sizeof(crash_rec) - l->part_n;
        if (take > n)
            take = n;
        memcpy(l->part + l->part_n, buf, take);
        l->part_n += take;
        buf += take;
        n -= take;
        if (l->part_n == sizeof(crash_rec)) {
            crash_rec r;
            memcpy(&r, l->part, sizeof r);
            log_push(l, &r);
            l->part_n = 0;
        }
    }
}

static void log_free(rec_log *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool log_has(const rec_log *l, uint8_t kind, size_t *index)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].kind == kind) {
            if (index)
                *index = i;
            return true;
        }
    return false;
}

/* When to kill the child. */
typedef struct {
    uint8_t after_kind; /* start the clock when a record of this kind arrives */
    unsigned delay_ms; /* ... and kill this long after it */
    bool from_fork; /* instead: kill delay_ms after the fork */
} kill_plan;

typedef struct {
    pid_t pid;
    int fd;
} child_proc;

typedef void (*child_main_fn)(const char *dir, int fd, uint64_t seed, const void *arg);

static child_proc spawn_child(child_main_fn fn, const char *dir, uint64_t seed, const void *arg)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        child_prologue();
        fn(dir, p[1], seed, arg);
        _exit(0);
    }
    close(p[1]);
    return (child_proc){pid, p[0]};
}

/* Reads the child's records, kills it by plan, reaps it and reads what is
 * left. Returns the child's wait status; *killed tells whether our SIGKILL
 * ended it (false: it exited first). Bounded in time. */
static int drive_child(child_proc cp, rec_log *log, kill_plan plan, bool *killed)
{
    uint64_t start = tu_now_ns();
    uint64_t deadline = plan.from_fork ? start + (uint64_t)plan.delay_ms * 1000000ull : 0;
    uint64_t give_up = start + (uint64_t)CHILD_READY_TIMEOUT_MS * 1000000ull;
    bool eof = false;
    *killed = false;
    uint8_t buf[16384];
    while (!eof) {
        uint64_t now = tu_now_ns();
        if ((deadline && now >= deadline) || now >= give_up)
            break;
        uint64_t until = deadline ? deadline : give_up;
        int wait_ms = (int)((until - now + 999999ull) / 1000000ull);
        if (wait_ms > 50)
            wait_ms = 50;
        struct pollfd pfd = {cp.fd, POLLIN, 0};
        int pr = poll(&pfd, 1, wait_ms);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        ssize_t n = read(cp.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            eof = true;
            break;
        }
        size_t before = log->n;
        log_feed(log, buf, (size_t)n);
        if (!deadline)
            for (size_t i = before; i < log->n; i++)
                if (log->v[i].kind == plan.after_kind) {
                    deadline = tu_now_ns() + (uint64_t)plan.delay_ms * 1000000ull;
                    break;
                }
    }
    if (!eof) {
        /* Only our own child, by its pid. */
        kill(cp.pid, SIGKILL);
        *killed = true;
    }
    int status = 0;
    while (waitpid(cp.pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (*killed && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        *killed = false; /* it exited on its own just before the signal */
    /* The child is gone: every record it wrote is in the pipe, then EOF. */
    uint64_t drain_end = tu_now_ns() + (uint64_t)CHILD_DRAIN_TIMEOUT_MS * 1000000ull;
    while (tu_now_ns() < drain_end) {
        struct pollfd pfd = {cp.fd, POLLIN, 0};
        int pr = poll(&pfd, 1, 100);
        if (pr <= 0)
            continue;
        ssize_t n = read(cp.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        log_feed(log, buf, (size_t)n);
    }
    close(cp.fd);
    return status;
}

/* Common checks on a finished child: it reported no failure, and it either
 * was killed by us or exited cleanly. */
static void check_child_end(const rec_log *log, int status, bool killed, const char *what,
                            size_t trial, uint64_t seed, const char *dir)
{
    size_t fi;
    if (log_has(log, REC_FAIL, &fi))
        cr_assert_fail("%s trial %zu (seed %" PRIu64 ", dir %s): the child failed a check at "
                       "test_crash.c:%" PRIu32 " (rc %d: %s)",
                       what, trial, seed, dir, log->v[fi].seq, log->v[fi].rc,
                       inv_strerror(log->v[fi].rc));
    if (!killed)
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s trial %zu (seed %" PRIu64 ", dir %s): the child ended with status %#x", what,
                  trial, seed, dir, (unsigned)status);
}

/* ---- 1. levels -------------------------------------------------------------- */

static bool lv_preset(uint32_t idx)
{
    return idx % LV_LOCS != LV_LOCS - 1;
}

static void lv_worker(child_ctx *c, unsigned t)
{
    tu_rng r = tu_rng_seed(c->seed * 1315423911ull + t);
    inv_level lv;
    /* Setup share: most levels start at 100 + idx; the rest are created by
     * random sets during the load. */
    for (uint32_t idx = t; idx < LV_LEVELS; idx += c->n_workers) {
        if (!lv_preset(idx))
            continue;
        int rc = inv_level_set(c->e, lv_item(idx), lv_loc(idx), 100 + idx, 0, &lv);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
        if (rc == INV_OK)
            send_level(c->fd, REC_LEVEL, t, 0, idx, 0, rc, &lv);
    }
    pthread_barrier_wait(&c->setup_done);
    for (uint32_t seq = 1; tu_now_ns() < c->stop_ns; seq++) {
        uint32_t idx = pick_level(&r, LV_LEVELS, LV_HOT);
        uint64_t kind = tu_rng_below(&r, 10);
        int rc;
        if (kind < 2) {
            rc = inv_level_set(c->e, lv_item(idx), lv_loc(idx), tu_rng_range(&r, 0, 1000), 0, &lv);
            CHILD_CHECK(c->fd, rc == INV_OK, rc);
        } else if (kind < 6) {
            int64_t d = tu_rng_range(&r, -50, 50);
            /* floor-less: the level's policy (deny, the default) applies */
            rc = inv_level_adjust(c->e, lv_item(idx), lv_loc(idx), d ? d : 1, INV_NO_FLOOR, &lv);
            CHILD_CHECK(c->fd, rc == INV_OK || rc == INV_ENOTFOUND || rc == INV_EINSUFFICIENT, rc);
        } else {
            int64_t d = tu_rng_range(&r, -30, 20);
            rc = inv_level_adjust(c->e, lv_item(idx), lv_loc(idx), d ? d : -1, 0, &lv);
            CHILD_CHECK(c->fd, rc == INV_OK || rc == INV_ENOTFOUND || rc == INV_EINSUFFICIENT, rc);
        }
        if (rc == INV_OK)
            send_level(c->fd, REC_LEVEL, t, seq, idx, (int64_t)kind, rc, &lv);
    }
}

static void lv_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    bool snapshots = *(const bool *)arg;
    inv_engine *e = child_open(dir, fd);
    child_catalog(e, fd, LV_ITEMS, LV_LOCS);
    static child_ctx c;
    c = (child_ctx){.e = e,
                    .fd = fd,
                    .seed = seed,
                    .stop_ns = tu_now_ns() + CHILD_WORK_MS * 1000000ull,
                    .n_workers = LV_THREADS,
                    .worker = lv_worker};
    child_run(&c, snapshots);
}

static int cmp_rec_level_rev(const void *x, const void *y)
{
    const crash_rec *a = x, *b = y;
    if (a->level != b->level)
        return a->level < b->level ? -1 : 1;
    return a->revision < b->revision ? -1 : a->revision > b->revision;
}

/* The logged state of level idx at revision rev (records sorted by level,
 * revision), or NULL. */
static const crash_rec *find_logged(const crash_rec *v, size_t n, uint32_t idx, uint64_t rev)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].level < idx || (v[mid].level == idx && v[mid].revision < rev))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].level == idx && v[lo].revision == rev ? &v[lo] : NULL;
}

typedef struct {
    const char *what;
    size_t trial;
    uint64_t seed;
    const char *dir;
} trial_id;

#define TRIAL_FMT "%s trial %zu (seed %" PRIu64 ", dir %s): "
#define TRIAL_ARGS(id) (id)->what, (id)->trial, (id)->seed, (id)->dir

/* Checks acknowledged level records (kind REC_LEVEL or REC_ADJ_DONE with
 * rc OK) against the recovered levels: revision >= the last acknowledged,
 * the acknowledged state when equal, the logged state of the recovered
 * revision when that revision was logged. present[idx] says whether the
 * level exists after recovery, rec[idx] its state. */
static void check_level_acks(const trial_id *id, const rec_log *log, uint8_t kind,
                             uint32_t n_levels, const bool *present, const inv_level *rec)
{
    crash_rec *acks = calloc(log->n + 1, sizeof *acks);
    cr_assert_not_null(acks);
    size_t n = 0;
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == kind && log->v[i].rc == INV_OK)
            acks[n++] = log->v[i];
    qsort(acks, n, sizeof *acks, cmp_rec_level_rev);
    for (size_t i = 1; i < n; i++)
        if (acks[i].level == acks[i - 1].level && acks[i].revision == acks[i - 1].revision)
            cr_assert(acks[i].available == acks[i - 1].available &&
                          acks[i].reserved == acks[i - 1].reserved,
                      TRIAL_FMT "level %" PRIu32 ": two acknowledged states at revision %" PRIu64,
                      TRIAL_ARGS(id), acks[i].level, acks[i].revision);
    for (uint32_t idx = 0; idx < n_levels; idx++) {
        const crash_rec *last = NULL;
        for (size_t i = 0; i < n; i++)
            if (acks[i].level == idx)
                last = &acks[i]; /* sorted: the highest revision */
        if (last) {
            cr_assert(present[idx],
                      TRIAL_FMT "level %" PRIu32 " lost: acknowledged at revision %" PRIu64
                                " (available %" PRId64 "), absent after recovery",
                      TRIAL_ARGS(id), idx, last->revision, last->available);
            cr_assert_geq(rec[idx].revision, last->revision,
                          TRIAL_FMT "level %" PRIu32 ": recovered revision %" PRIu64
                                    " < acknowledged %" PRIu64 " (a lost write)",
                          TRIAL_ARGS(id), idx, rec[idx].revision, last->revision);
        }
        if (!present[idx])
            continue;
        const crash_rec *at = find_logged(acks, n, idx, rec[idx].revision);
        if (at)
            cr_assert(at->available == rec[idx].available && at->reserved == rec[idx].reserved,
                      TRIAL_FMT "level %" PRIu32 " at revision %" PRIu64 ": recovered (%" PRId64
                                ", %" PRId64 "), acknowledged (%" PRId64 ", %" PRId64 ")",
                      TRIAL_ARGS(id), idx, rec[idx].revision, rec[idx].available, rec[idx].reserved,
                      at->available, at->reserved);
    }
    free(acks);
}

static void lv_verify(const trial_id *id, const rec_log *log)
{
    char msg[4096];
    inv_engine *e = NULL;
    int rc = open_dir(id->dir, false, &e, msg, sizeof msg);
    cr_assert_eq(rc, INV_OK, TRIAL_FMT "recovery failed: %s: %s", TRIAL_ARGS(id), inv_strerror(rc),
                 msg);
    bool item_acked[LV_ITEMS] = {0}, loc_acked[LV_LOCS] = {0};
    for (size_t i = 0; i < log->n; i++) {
        if (log->v[i].kind == REC_ITEM && log->v[i].level < LV_ITEMS)
            item_acked[log->v[i].level] = true;
        if (log->v[i].kind == REC_LOC && log->v[i].level < LV_LOCS)
            loc_acked[log->v[i].level] = true;
    }
    bool item_there[LV_ITEMS], loc_there[LV_LOCS];
    uint64_t n_items = 0, n_locs = 0, n_levels = 0;
    for (uint32_t i = 0; i < LV_ITEMS; i++) {
        inv_item it;
        item_there[i] = inv_item_get(e, tu_item_id(i), &it) == INV_OK;
        n_items += item_there[i];
        cr_assert(item_there[i] || !item_acked[i], TRIAL_FMT "item %u lost", TRIAL_ARGS(id), i);
    }
    for (uint32_t j = 0; j < LV_LOCS; j++) {
        inv_location lo;
        loc_there[j] = inv_location_get(e, tu_loc_id(j), &lo) == INV_OK;
        n_locs += loc_there[j];
        cr_assert(loc_there[j] || !loc_acked[j], TRIAL_FMT "location %u lost", TRIAL_ARGS(id), j);
    }
    bool present[LV_LEVELS];
    inv_level rec[LV_LEVELS];
    for (uint32_t idx = 0; idx < LV_LEVELS; idx++) {
        rc = inv_level_get(e, lv_item(idx), lv_loc(idx), &rec[idx]);
        cr_assert(rc == INV_OK || rc == INV_ENOTFOUND, TRIAL_FMT "level_get: %s", TRIAL_ARGS(id),
                  inv_strerror(rc));
        present[idx] = rc == INV_OK;
        if (!present[idx])
            continue;
        n_levels++;
        cr_assert(item_there[idx / LV_LOCS] && loc_there[idx % LV_LOCS],
                  TRIAL_FMT "level %u exists without its item or location", TRIAL_ARGS(id), idx);
        cr_assert(rec[idx].available >= -INV_QTY_MAX && rec[idx].available <= INV_QTY_MAX,
                  TRIAL_FMT "level %u: available %" PRId64 " out of range", TRIAL_ARGS(id), idx,
                  rec[idx].available);
        cr_assert_eq(rec[idx].reserved, 0, TRIAL_FMT "level %u: reserved %" PRId64 " without holds",
                     TRIAL_ARGS(id), idx, rec[idx].reserved);
        cr_assert_geq(rec[idx].revision, 1, TRIAL_FMT "level %u: revision 0", TRIAL_ARGS(id), idx);
    }
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.items, n_items, TRIAL_FMT "%" PRIu64 " items, expected %" PRIu64,
                 TRIAL_ARGS(id), st.items, n_items);
    cr_assert_eq(st.locations, n_locs, TRIAL_FMT "%" PRIu64 " locations, expected %" PRIu64,
                 TRIAL_ARGS(id), st.locations, n_locs);
    cr_assert_eq(st.levels, n_levels, TRIAL_FMT "%" PRIu64 " levels, expected %" PRIu64,
                 TRIAL_ARGS(id), st.levels, n_levels);
    check_level_acks(id, log, REC_LEVEL, LV_LEVELS, present, rec);
    inv_close(e);
}

typedef struct {
    uint64_t trials, acked, killed, early;
} crash_totals;

static void lv_crash_trials(const char *what, uint64_t trials, bool snapshots)
{
    crash_totals tot = {0};
    uint64_t t0 = tu_now_ns();
    uint64_t base_seed = (uint64_t)time(NULL) * 2654435761ull ^ (uint64_t)getpid();
    for (size_t trial = 0; trial < trials; trial++) {
        uint64_t seed = base_seed + trial;
        tu_rng r = tu_rng_seed(seed);
        char dir[64];
        tu_tmpdir(dir, sizeof dir, "crash");
        kill_plan plan = {REC_READY,
                          (unsigned)tu_rng_range(&r, KILL_DELAY_MIN_MS, KILL_DELAY_MAX_MS), false};
        if (tu_rng_below(&r, 8) == 0) { /* sometimes during open / setup */
            plan.from_fork = true;
            plan.delay_ms = (unsigned)tu_rng_range(&r, 0, EARLY_KILL_MAX_MS);
            tot.early++;
        }
        rec_log log = {0};
        child_proc cp = spawn_child(lv_child, dir, seed, &snapshots);
        bool killed;
        int status = drive_child(cp, &log, plan, &killed);
        trial_id id = {what, trial, seed, dir};
        check_child_end(&log, status, killed, what, trial, seed, dir);
        cr_assert(plan.from_fork || log_has(&log, REC_READY, NULL),
                  TRIAL_FMT "the child never got ready", TRIAL_ARGS(&id));
        lv_verify(&id, &log);
        for (size_t i = 0; i < log.n; i++)
            tot.acked += log.v[i].kind == REC_LEVEL;
        tot.killed += killed;
        tot.trials++;
        log_free(&log);
        (void)tu_remove_tree(dir);
    }
    cr_log_info("%s: %" PRIu64 " trials (%" PRIu64 " killed, %" PRIu64 " early), %" PRIu64
                " acknowledged changes checked, 0 lost, %.1f s",
                what, tot.trials, tot.killed, tot.early, tot.acked,
                (double)(tu_now_ns() - t0) / 1e9);
}

Test(crash, levels_sigkill_loses_no_acknowledged_change)
{
    lv_crash_trials("levels", crash_trials(CRASH_TRIALS_DEFAULT), false);
}

/* ---- 2. holds ----------------------------------------------------------------- */

/*
 * Conservation, exactly. Every level starts at HD_STOCK (set during setup,
 * acknowledged before the load starts). After that, units move only by
 * holds (available <-> reserved, reserved -> sold on commit) and by adjusts.
 * From the recovered state alone, per level:
 *     available + reserved + (qty of the level's lines over every hold
 *     recovered COMMITTED) == HD_STOCK + (deltas of the adjusts applied).
 * Holds need no bookkeeping: whichever hold operations did or did not
 * survive, the recovered holds themselves say what was sold. Adjusts do:
 * the child writes a TRY record before each adjust and a DONE record (with
 * rc) after. An adjust with a DONE is certain (applied iff rc == INV_OK: a
 * refused change changes nothing); one without is uncertain. Each thread
 * runs one call at a time, so at most one adjust per thread is uncertain
 * (the parent checks this), and the check is exact: some subset of the
 * uncertain deltas on the level must make the equation hold — at most
 * 2^HD_THREADS candidates. This keeps adjusts on the very levels the holds
 * use (which is where ordering bugs live) instead of moving them to
 * separate levels.
 */

typedef struct {
    uint32_t seq;
    bool live;
} own_hold;

static void hd_worker(child_ctx *c, unsigned t)
{
    tu_rng r = tu_rng_seed(c->seed * 2246822519ull + t);
    inv_level lv;
    for (uint32_t idx = t; idx < HD_LEVELS; idx += c->n_workers) {
        int rc = inv_level_set(c->e, hd_item(idx), hd_loc(idx), HD_STOCK, 0, &lv);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
        if (rc == INV_OK)
            send_level(c->fd, REC_LEVEL, t, 0, idx, 0, rc, &lv);
    }
    pthread_barrier_wait(&c->setup_done);
    static __thread own_hold own[HD_OWN_MAX];
    size_t n_own = 0;
    for (uint32_t seq = 1; tu_now_ns() < c->stop_ns; seq++) {
        uint64_t kind = tu_rng_below(&r, 20);
        size_t live_i = SIZE_MAX;
        if (kind >= 7 && kind < 15 && n_own > 0) {
            /* commit (7..10) or release (11..14) one of our live holds */
            for (int tries = 0; tries < 8 && live_i == SIZE_MAX; tries++) {
                size_t i = (size_t)tu_rng_below(&r, n_own);
                if (own[i].live)
                    live_i = i;
            }
        }
        char id[32];
        if (live_i != SIZE_MAX) {
            uint8_t op = kind < 11 ? INV_HOLD_COMMITTED : INV_HOLD_RELEASED;
            crash_rec tr = {
                .kind = REC_END_TRY, .thread = (uint8_t)t, .op = op, .seq = own[live_i].seq};
            rec_send(c->fd, &tr);
            hold_id(id, sizeof id, t, own[live_i].seq);
            int rc = op == INV_HOLD_COMMITTED ? inv_hold_commit(c->e, id, strlen(id))
                                              : inv_hold_release(c->e, id, strlen(id));
            /* A short hold may have expired: commit answers NOTFOUND. */
            CHILD_CHECK(c->fd, rc == INV_OK || (op == INV_HOLD_COMMITTED && rc == INV_ENOTFOUND),
                        rc);
            tr.kind = REC_END_DONE;
            tr.rc = rc;
            rec_send(c->fd, &tr);
            own[live_i].live = false;
        } else if (kind < 11 && n_own < HD_OWN_MAX) {
            /* create */
            crash_rec tr = {.kind = REC_HOLD_TRY, .thread = (uint8_t)t, .seq = seq};
            inv_hold_line lines[HD_LINES_MAX];
            size_t n = (size_t)tu_rng_range(&r, 1, HD_LINES_MAX);
            for (size_t i = 0; i < n; i++) {
                uint32_t idx;
                bool dup;
                do {
                    idx = pick_level(&r, HD_LEVELS, HD_HOT);
                    dup = false;
                    for (size_t k = 0; k < i; k++)
                        dup |= tr.line_level[k] == idx;
                } while (dup);
                tr.line_level[i] = idx;
                tr.line_qty[i] = (uint32_t)tu_rng_range(&r, 1, 3);
                lines[i] = (inv_hold_line){hd_item(idx), hd_loc(idx), tr.line_qty[i]};
            }
            tr.n_lines = (uint8_t)n;
            tr.arg = tu_rng_below(&r, 7) == 0
                         ? tu_rng_range(&r, HD_TTL_SHORT_MIN_MS, HD_TTL_SHORT_MAX_MS)
                         : HD_TTL_LONG_MS;
            tr.time_ms = clock_wall_ms();
            rec_send(c->fd, &tr);
            hold_id(id, sizeof id, t, seq);
            int rc = inv_hold_create(c->e, id, strlen(id), (uint64_t)tr.arg, lines, n, NULL);
            CHILD_CHECK(c->fd, rc == INV_OK || rc == INV_EINSUFFICIENT, rc);
            tr.kind = REC_HOLD_DONE;
            tr.rc = rc;
            if (rc == INV_OK) {
                inv_hold_info info;
                int grc = inv_hold_get(c->e, id, strlen(id), &info);
                CHILD_CHECK(c->fd, grc == INV_OK && info.n_lines == n, grc);
                tr.time_ms = grc == INV_OK ? info.expires_at_ms : 0;
                own[n_own++] = (own_hold){seq, true};
            }
            rec_send(c->fd, &tr);
        } else {
            /* adjust: down with a floor of 0, up without */
            uint32_t idx = pick_level(&r, HD_LEVELS, HD_HOT);
            int64_t d = tu_rng_range(&r, -5, 4);
            if (d >= 0)
                d++;
            send_level(c->fd, REC_ADJ_TRY, t, seq, idx, d, 0, NULL);
            int rc =
                inv_level_adjust(c->e, hd_item(idx), hd_loc(idx), d, d < 0 ? 0 : INV_NO_FLOOR, &lv);
            CHILD_CHECK(c->fd, rc == INV_OK || rc == INV_EINSUFFICIENT, rc);
            send_level(c->fd, REC_ADJ_DONE, t, seq, idx, d, rc, rc == INV_OK ? &lv : NULL);
        }
    }
}

static void hd_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    bool snapshots = *(const bool *)arg;
    inv_engine *e = child_open(dir, fd);
    child_catalog(e, fd, HD_ITEMS, HD_LOCS);
    static child_ctx c;
    c = (child_ctx){.e = e,
                    .fd = fd,
                    .seed = seed,
                    .stop_ns = tu_now_ns() + CHILD_WORK_MS * 1000000ull,
                    .n_workers = HD_THREADS,
                    .worker = hd_worker};
    child_run(&c, snapshots);
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* The record of kind `kind` for (thread, seq), or NULL. */
static const crash_rec *find_rec(const rec_log *log, uint8_t kind, uint8_t thread, uint32_t seq)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == kind && log->v[i].thread == thread && log->v[i].seq == seq)
            return &log->v[i];
    return NULL;
}

typedef struct {
    const crash_rec *try_rec, *done; /* create */
    const crash_rec *end_try, *end_done;
    int rc; /* inv_hold_get after recovery */
    inv_hold_info info;
} hd_hold;

static void hd_check_lines(const trial_id *id, const char *hid, const crash_rec *tr,
                           const inv_hold_info *info)
{
    cr_assert_eq(info->n_lines, tr->n_lines, TRIAL_FMT "hold %s: %zu lines, created with %u",
                 TRIAL_ARGS(id), hid, info->n_lines, tr->n_lines);
    /* inv_hold_get answers lines in (item, location) order, which is the
     * order of level indexes here. */
    uint32_t order[HD_LINES_MAX];
    memcpy(order, tr->line_level, sizeof order);
    qsort(order, tr->n_lines, sizeof order[0], cmp_u32);
    for (size_t i = 0; i < tr->n_lines; i++) {
        uint32_t qty = 0;
        for (size_t k = 0; k < tr->n_lines; k++)
            if (tr->line_level[k] == order[i])
                qty = tr->line_qty[k];
        cr_assert(info->lines[i].item == hd_item(order[i]) &&
                      info->lines[i].location == hd_loc(order[i]) &&
                      info->lines[i].qty == (int64_t)qty,
                  TRIAL_FMT "hold %s line %zu: (%" PRIu64 ", %" PRIu64 ", %" PRId64
                            ") recovered, (%" PRIu64 ", %" PRIu64 ", %" PRIu32 ") created",
                  TRIAL_ARGS(id), hid, i, info->lines[i].item, info->lines[i].location,
                  info->lines[i].qty, hd_item(order[i]), hd_loc(order[i]), qty);
    }
}

typedef struct {
    uint64_t holds_acked, ends_acked, adjusts_acked, uncertain;
} hd_counts;

static void hd_verify(const trial_id *id, const rec_log *log, hd_counts *cnt)
{
    char msg[4096];
    inv_engine *e = NULL;
    int rc = open_dir(id->dir, false, &e, msg, sizeof msg);
    cr_assert_eq(rc, INV_OK, TRIAL_FMT "recovery failed: %s: %s", TRIAL_ARGS(id), inv_strerror(rc),
                 msg);
    bool ready = log_has(log, REC_READY, NULL);
    cr_assert(ready, TRIAL_FMT "the child never got ready", TRIAL_ARGS(id));

    /* Every attempted hold, with what was acknowledged about it. */
    size_t n_holds = 0;
    for (size_t i = 0; i < log->n; i++)
        n_holds += log->v[i].kind == REC_HOLD_TRY;
    hd_hold *holds = calloc(n_holds + 1, sizeof *holds);
    cr_assert_not_null(holds);
    n_holds = 0;
    for (size_t i = 0; i < log->n; i++) {
        const crash_rec *tr = &log->v[i];
        if (tr->kind != REC_HOLD_TRY)
            continue;
        hd_hold *h = &holds[n_holds++];
        h->try_rec = tr;
        h->done = find_rec(log, REC_HOLD_DONE, tr->thread, tr->seq);
        h->end_try = find_rec(log, REC_END_TRY, tr->thread, tr->seq);
        h->end_done = find_rec(log, REC_END_DONE, tr->thread, tr->seq);
        cr_assert(!h->end_try || (h->done && h->done->rc == INV_OK),
                  TRIAL_FMT "log: an end of a hold never acknowledged", TRIAL_ARGS(id));
    }

    /* Let the sweeper expire the short holds first, so that nothing moves
     * while we check (hold_verify_reserved needs no hold call in flight). */
    uint64_t settle = tu_deadline_ms(SHORT_HOLD_SETTLE_MS);
    for (size_t i = 0; i < n_holds; i++) {
        char hid[32];
        hold_id(hid, sizeof hid, holds[i].try_rec->thread, holds[i].try_rec->seq);
        if (holds[i].try_rec->arg >= HD_TTL_LONG_MS)
            continue;
        inv_hold_info info;
        while (inv_hold_get(e, hid, strlen(hid), &info) == INV_OK && info.state == INV_HOLD_HELD &&
               !tu_past(settle))
            tu_sleep_ms(2);
    }
    int64_t now = clock_wall_ms();

    for (size_t i = 0; i < n_holds; i++) {
        hd_hold *h = &holds[i];
        const crash_rec *tr = h->try_rec;
        char hid[32];
        hold_id(hid, sizeof hid, tr->thread, tr->seq);
        h->rc = inv_hold_get(e, hid, strlen(hid), &h->info);
        cr_assert(h->rc == INV_OK || h->rc == INV_ENOTFOUND, TRIAL_FMT "hold_get %s: %s",
                  TRIAL_ARGS(id), hid, inv_strerror(h->rc));
        bool acked = h->done && h->done->rc == INV_OK;
        if (acked) {
            cnt->holds_acked++;
            cr_assert_eq(h->rc, INV_OK, TRIAL_FMT "acknowledged hold %s lost", TRIAL_ARGS(id), hid);
            cr_assert_eq(h->info.expires_at_ms, h->done->time_ms,
                         TRIAL_FMT "hold %s: expires_at %" PRId64 ", acknowledged %" PRId64,
                         TRIAL_ARGS(id), hid, h->info.expires_at_ms, h->done->time_ms);
        } else if (h->done) {
            cr_assert_eq(h->rc, INV_ENOTFOUND, TRIAL_FMT "refused hold %s (%s) exists",
                         TRIAL_ARGS(id), hid, inv_strerror(h->done->rc));
        }
        if (h->rc != INV_OK)
            continue;
        hd_check_lines(id, hid, tr, &h->info);
        cr_assert(h->info.expires_at_ms >= tr->time_ms + tr->arg &&
                      h->info.expires_at_ms <= now + tr->arg,
                  TRIAL_FMT "hold %s: expires_at %" PRId64 " out of [%" PRId64 ", %" PRId64 "]",
                  TRIAL_ARGS(id), hid, h->info.expires_at_ms, tr->time_ms + tr->arg, now + tr->arg);
        int st = h->info.state;
        bool end_acked = h->end_done && h->end_done->rc == INV_OK;
        bool expired_ok = h->info.expires_at_ms <= now;
        if (end_acked)
            cnt->ends_acked++;
        switch (st) {
        case INV_HOLD_HELD:
            cr_assert(!end_acked, TRIAL_FMT "hold %s: acknowledged %s lost (still HELD)",
                      TRIAL_ARGS(id), hid,
                      h->end_try->op == INV_HOLD_COMMITTED ? "commit" : "release");
            cr_assert(tr->arg >= HD_TTL_LONG_MS,
                      TRIAL_FMT "short hold %s still HELD %" PRId64 " ms after its expiry",
                      TRIAL_ARGS(id), hid, now - h->info.expires_at_ms);
            break;
        case INV_HOLD_COMMITTED:
            cr_assert(h->end_try && h->end_try->op == INV_HOLD_COMMITTED,
                      TRIAL_FMT "hold %s COMMITTED but never committed", TRIAL_ARGS(id), hid);
            break;
        case INV_HOLD_RELEASED:
            cr_assert(h->end_try && h->end_try->op == INV_HOLD_RELEASED,
                      TRIAL_FMT "hold %s RELEASED but never released", TRIAL_ARGS(id), hid);
            break;
        case INV_HOLD_EXPIRED:
            cr_assert(expired_ok, TRIAL_FMT "hold %s EXPIRED %" PRId64 " ms before its expiry",
                      TRIAL_ARGS(id), hid, h->info.expires_at_ms - now);
            cr_assert(!end_acked || h->end_try->op == INV_HOLD_RELEASED,
                      TRIAL_FMT "hold %s: acknowledged commit lost (EXPIRED)", TRIAL_ARGS(id), hid);
            break;
        default:
            cr_assert_fail(TRIAL_FMT "hold %s: state %d", TRIAL_ARGS(id), hid, st);
        }
    }

    rc = hold_verify_reserved(e);
    cr_assert_eq(rc, INV_OK, TRIAL_FMT "reserved != sum of the live holds' lines after recovery",
                 TRIAL_ARGS(id));

    /* Levels and conservation. */
    bool present[HD_LEVELS];
    inv_level rec[HD_LEVELS];
    int64_t sold[HD_LEVELS] = {0}, acked_delta[HD_LEVELS] = {0};
    for (size_t i = 0; i < n_holds; i++)
        if (holds[i].rc == INV_OK && holds[i].info.state == INV_HOLD_COMMITTED)
            for (size_t k = 0; k < holds[i].try_rec->n_lines; k++)
                sold[holds[i].try_rec->line_level[k]] += holds[i].try_rec->line_qty[k];
    const crash_rec *uncertain[HD_THREADS * 2 + 1];
    size_t n_unc = 0;
    unsigned unc_per_thread[256] = {0};
    for (size_t i = 0; i < log->n; i++) {
        const crash_rec *tr = &log->v[i];
        if (tr->kind != REC_ADJ_TRY)
            continue;
        const crash_rec *d = find_rec(log, REC_ADJ_DONE, tr->thread, tr->seq);
        if (d) {
            if (d->rc == INV_OK) {
                acked_delta[tr->level] += tr->arg;
                cnt->adjusts_acked++;
            }
            continue;
        }
        cr_assert(++unc_per_thread[tr->thread] <= 1 && n_unc < HD_THREADS * 2,
                  TRIAL_FMT "log: thread %u has more than one adjust without an answer",
                  TRIAL_ARGS(id), tr->thread);
        uncertain[n_unc++] = tr;
    }
    cnt->uncertain += n_unc;
    for (uint32_t idx = 0; idx < HD_LEVELS; idx++) {
        rc = inv_level_get(e, hd_item(idx), hd_loc(idx), &rec[idx]);
        cr_assert_eq(rc, INV_OK, TRIAL_FMT "level %u lost: %s", TRIAL_ARGS(id), idx,
                     inv_strerror(rc));
        present[idx] = true;
        cr_assert(rec[idx].available >= -INV_QTY_MAX && rec[idx].available <= INV_QTY_MAX &&
                      rec[idx].reserved >= 0 && rec[idx].reserved <= INV_QTY_MAX,
                  TRIAL_FMT "level %u out of range (%" PRId64 ", %" PRId64 ")", TRIAL_ARGS(id), idx,
                  rec[idx].available, rec[idx].reserved);
        int64_t gap =
            rec[idx].available + rec[idx].reserved + sold[idx] - HD_STOCK - acked_delta[idx];
        const crash_rec *mine[HD_THREADS * 2 + 1];
        size_t n_mine = 0;
        for (size_t u = 0; u < n_unc; u++)
            if (uncertain[u]->level == idx)
                mine[n_mine++] = uncertain[u];
        bool explained = false;
        for (uint64_t mask = 0; mask < (1ull << n_mine) && !explained; mask++) {
            int64_t s = 0;
            for (size_t k = 0; k < n_mine; k++)
                if (mask >> k & 1)
                    s += mine[k]->arg;
            explained = s == gap;
        }
        cr_assert(explained,
                  TRIAL_FMT "level %u: units not conserved: available %" PRId64
                            " + reserved %" PRId64 " + sold %" PRId64
                            " - stock %d - adjusts %" PRId64 " = %" PRId64
                            " (uncertain adjusts here: %zu)",
                  TRIAL_ARGS(id), idx, rec[idx].available, rec[idx].reserved, sold[idx], HD_STOCK,
                  acked_delta[idx], gap, n_mine);
    }
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.levels, HD_LEVELS, TRIAL_FMT "%" PRIu64 " levels", TRIAL_ARGS(id), st.levels);
    check_level_acks(id, log, REC_LEVEL, HD_LEVELS, present, rec);
    check_level_acks(id, log, REC_ADJ_DONE, HD_LEVELS, present, rec);
    free(holds);
    inv_close(e);
}

/* Runs trials of one child kind: each on a fresh directory, killed at a
 * random moment after READY, checked by verify (ctx: its counts). Returns
 * how many trials our SIGKILL ended. seed_mix makes each kind's seeds its
 * own. */
typedef void (*trial_verify_fn)(const trial_id *id, const rec_log *log, void *ctx);

static uint64_t run_kill_trials(const char *what, uint64_t trials, uint64_t seed_mix,
                                child_main_fn child, const void *arg, trial_verify_fn verify,
                                void *ctx)
{
    uint64_t killed_n = 0;
    uint64_t base_seed = (uint64_t)time(NULL) * seed_mix ^ ((uint64_t)getpid() << 20);
    for (size_t trial = 0; trial < trials; trial++) {
        uint64_t seed = base_seed + trial;
        tu_rng r = tu_rng_seed(seed);
        char dir[64];
        tu_tmpdir(dir, sizeof dir, "crash");
        kill_plan plan = {REC_READY,
                          (unsigned)tu_rng_range(&r, KILL_DELAY_MIN_MS, KILL_DELAY_MAX_MS), false};
        rec_log log = {0};
        child_proc cp = spawn_child(child, dir, seed, arg);
        bool killed;
        int status = drive_child(cp, &log, plan, &killed);
        trial_id id = {what, trial, seed, dir};
        check_child_end(&log, status, killed, what, trial, seed, dir);
        verify(&id, &log, ctx);
        killed_n += killed;
        log_free(&log);
        (void)tu_remove_tree(dir);
    }
    return killed_n;
}

static void hd_verify_trial(const trial_id *id, const rec_log *log, void *ctx)
{
    hd_verify(id, log, ctx);
}

static void hd_crash_trials(const char *what, uint64_t trials, bool snapshots)
{
    hd_counts cnt = {0};
    uint64_t t0 = tu_now_ns();
    uint64_t killed_n =
        run_kill_trials(what, trials, 0x9e3779b1ull, hd_child, &snapshots, hd_verify_trial, &cnt);
    cr_log_info("%s: %" PRIu64 " trials (%" PRIu64 " killed), acknowledged: %" PRIu64
                " creates, %" PRIu64 " ends, %" PRIu64 " adjusts (%" PRIu64
                " uncertain adjusts resolved), 0 lost, %.1f s",
                what, (uint64_t)trials, killed_n, cnt.holds_acked, cnt.ends_acked,
                cnt.adjusts_acked, cnt.uncertain, (double)(tu_now_ns() - t0) / 1e9);
}

Test(crash, holds_sigkill_keeps_acknowledged_holds_and_conserves_units)
{
    hd_crash_trials("holds", crash_trials(CRASH_TRIALS_DEFAULT), false);
}

/* ---- 3. ordering ------------------------------------------------------------------ */

#define ORD_HOLD_ID "ordering-H"
#define ORD_Q1 2
#define ORD_Q2 3
#define ORD_STOCK 10
#define ORD_HOOK_SLEEP_MS 300 /* rule on: the hold's publication is held back */
#define ORD_HOOK_MAX_MS \
    2000 /* rule off: held back until we are killed (ms after the
                                   adjust's report) */
#define ORD_WAIT_MS 10000

/* The hook's state (child only). */
static _Atomic int ord_armed;
static _Atomic int ord_entered, ord_left;
static pthread_t ord_hold_thread;
static int ord_fd = -1;
static unsigned ord_sleep_ms;

/* A FAULT_PERSIST_BEFORE_PUBLISH point: holds back the first PERSIST_HOLD record of
 * the hold thread, i.e. after the hold's level CASes and before its record
 * is published. */
static void ord_hook(uint8_t type)
{
    if (type != PERSIST_HOLD || !pthread_equal(pthread_self(), ord_hold_thread))
        return;
    /* acq_rel: only the first publication of the hold thread is delayed. */
    if (!atomic_exchange_explicit(&ord_armed, 0, memory_order_acq_rel))
        return;
    /* release: the adjust thread waits for this before it starts. */
    atomic_store_explicit(&ord_entered, 1, memory_order_release);
    send_simple(ord_fd, REC_ORDER_HOOK, 1, 0);
    tu_sleep_ms(ord_sleep_ms);
    /* release: the adjust thread reads it when its call returns. */
    atomic_store_explicit(&ord_left, 1, memory_order_release);
}

typedef struct {
    inv_engine *e;
    int fd;
} ord_ctx;

static void *ord_hold_main(void *p)
{
    ord_ctx *c = p;
    /* Only this thread publishes hold records, and the hook reads the id
     * only for those: no other thread reads it. */
    ord_hold_thread = pthread_self();
    /* release: the id is set before the hook can fire. */
    atomic_store_explicit(&ord_armed, 1, memory_order_release);
    inv_hold_line lines[2] = {{tu_item_id(0), tu_loc_id(0), ORD_Q1},
                              {tu_item_id(1), tu_loc_id(0), ORD_Q2}};
    int rc =
        inv_hold_create(c->e, ORD_HOLD_ID, strlen(ORD_HOLD_ID), HD_TTL_LONG_MS, lines, 2, NULL);
    crash_rec r = {.kind = REC_ORDER_HOLD, .thread = 1, .rc = rc};
    rec_send(c->fd, &r);
    return NULL;
}

static void *ord_adjust_main(void *p)
{
    ord_ctx *c = p;
    if (!tu_wait_at_least(&ord_entered, 1, ORD_WAIT_MS)) {
        send_fail(c->fd, __LINE__, 0);
        return NULL;
    }
    inv_level lv = {0, 0, 0};
    int rc = inv_level_adjust(c->e, tu_item_id(0), tu_loc_id(0), -1, INV_NO_FLOOR, &lv);
    /* acquire: pairs with the hook's release. */
    int left = atomic_load_explicit(&ord_left, memory_order_acquire);
    send_level(c->fd, REC_ORDER_ADJ, 2, 0, 0, left, rc, rc == INV_OK ? &lv : NULL);
    return NULL;
}

static void ord_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    (void)seed;
    bool late = *(const bool *)arg;
    /* Set before the engine's threads exist. */
    tu_late_reserve(late);
    ord_fd = fd;
    ord_sleep_ms = late ? ORD_HOOK_MAX_MS : ORD_HOOK_SLEEP_MS;
    inv_engine *e = child_open(dir, fd);
    child_catalog(e, fd, 2, 1);
    inv_level lv;
    for (uint32_t i = 0; i < 2; i++) {
        int rc = inv_level_set(e, tu_item_id(i), tu_loc_id(0), ORD_STOCK, 0, &lv);
        if (rc != INV_OK) {
            send_fail(fd, __LINE__, rc);
            _exit(3);
        }
        send_level(fd, REC_LEVEL, 0, 0, i, 0, rc, &lv);
    }
    tu_before_publish(ord_hook);
    static ord_ctx c;
    c = (ord_ctx){e, fd};
    pthread_t t1, t2;
    if (pthread_create(&t2, NULL, ord_adjust_main, &c) != 0 ||
        pthread_create(&t1, NULL, ord_hold_main, &c) != 0) {
        send_fail(fd, __LINE__, 0);
        _exit(3);
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    tu_sleep_ms(ORD_WAIT_MS); /* the parent kills us (a crash, never a close) */
    _exit(0);
}

typedef struct {
    crash_rec adj; /* the adjust's report */
    bool hold_returned; /* the hold create had returned before the kill */
    int hold_rc; /* inv_hold_get after recovery */
    inv_hold_info info;
    inv_level l1, l2;
    int64_t l1_committed; /* L1's committed units after recovery */
    int verify; /* hold_verify_reserved after recovery */
} ord_result;

static void ord_run(bool late, ord_result *res)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "crash");
    rec_log log = {0};
    child_proc cp = spawn_child(ord_child, dir, 0, &late);
    /* Kill right after the adjust's report. */
    kill_plan plan = {REC_ORDER_ADJ, 0, false};
    bool killed;
    int status = drive_child(cp, &log, plan, &killed);
    const char *what = late ? "ordering (rule off)" : "ordering";
    check_child_end(&log, status, killed, what, 0, 0, dir);
    cr_assert(killed, "%s: the child was not killed (status %#x)", what, (unsigned)status);
    size_t ai;
    cr_assert(log_has(&log, REC_ORDER_HOOK, NULL), "%s: the hold never reached the hook", what);
    cr_assert(log_has(&log, REC_ORDER_ADJ, &ai), "%s: the adjust never returned", what);
    res->adj = log.v[ai];
    res->hold_returned = log_has(&log, REC_ORDER_HOLD, NULL);
    cr_assert_eq(res->adj.rc, INV_OK, "%s: adjust: %s", what, inv_strerror(res->adj.rc));

    char msg[4096];
    inv_engine *e = NULL;
    int rc = open_dir(dir, false, &e, msg, sizeof msg);
    cr_assert_eq(rc, INV_OK, "%s: recovery failed: %s: %s", what, inv_strerror(rc), msg);
    res->hold_rc = inv_hold_get(e, ORD_HOLD_ID, strlen(ORD_HOLD_ID), &res->info);
    cr_assert_eq(inv_level_get(e, tu_item_id(0), tu_loc_id(0), &res->l1), INV_OK);
    inv_level_full full;
    cr_assert_eq(inv_level_get_full(e, tu_item_id(0), tu_loc_id(0), &full), INV_OK);
    res->l1_committed = full.qty[INV_QTY_COMMITTED];
    cr_assert_eq(inv_level_get(e, tu_item_id(1), tu_loc_id(0), &res->l2), INV_OK);
    res->verify = hold_verify_reserved(e);
    inv_close(e);
    log_free(&log);
    (void)tu_remove_tree(dir);
}

#define ORD_STATE_FMT                                                                   \
    "hold %s, L1 (%" PRId64 ", %" PRId64 ") rev %" PRIu64 ", L2 (%" PRId64 ", %" PRId64 \
    ") rev %" PRIu64
#define ORD_STATE_ARGS(r)                                                               \
    (r)->hold_rc == INV_OK ? "present" : "absent", (r)->l1.available, (r)->l1.reserved, \
        (r)->l1.revision, (r)->l2.available, (r)->l2.reserved, (r)->l2.revision

Test(crash, ordering_adjust_on_top_of_a_stalled_hold_never_leaves_half_a_hold)
{
    ord_result res;
    ord_run(false, &res);
    /* The adjust's record stands after H's (its position was reserved
     * after H's stamp on L1), and durability is a prefix: its ack waits. */
    cr_assert_eq(res.adj.arg, 1,
                 "the adjust on L1 was acknowledged while the hold it builds on was still "
                 "unpublished (the ack did not wait for the durable prefix)");
    bool whole = res.hold_rc == INV_OK && res.info.state == INV_HOLD_HELD &&
                 res.l1.reserved == ORD_Q1 && res.l2.reserved == ORD_Q2;
    bool absent = res.hold_rc == INV_ENOTFOUND && res.l1.reserved == 0 && res.l2.reserved == 0;
    cr_assert(whole || absent, "half a hold after recovery: " ORD_STATE_FMT, ORD_STATE_ARGS(&res));
    /* Stronger: the adjust was acknowledged, so everything before it in
     * the journal — H included — is durable: H must be whole. */
    cr_assert(whole, "hold lost although an acknowledged change builds on it: " ORD_STATE_FMT,
              ORD_STATE_ARGS(&res));
    cr_assert_geq(res.l1.revision, res.adj.revision);
    cr_assert_eq(res.l1.available, ORD_STOCK - ORD_Q1 - 1, "L1 available %" PRId64,
                 res.l1.available);
    cr_assert_eq(res.l2.available, ORD_STOCK - ORD_Q2, "L2 available %" PRId64, res.l2.available);
    cr_assert_eq(res.verify, INV_OK, "reserved != sum of live holds after recovery");
    cr_log_info(
        "ordering: adjust acknowledged after the hold's publication; recovered: " ORD_STATE_FMT,
        ORD_STATE_ARGS(&res));
}

Test(crash, ordering_rule_switched_off_shows_the_leak)
{
    ord_result res;
    ord_run(true, &res);
    /* With positions taken at publish time, the adjust appends first and
     * is acknowledged while H is still unpublished; the crash then leaves
     * L1 with H's reservation inside the adjust's image, L2 untouched and
     * no hold to give the units back: the leak DESIGN.md describes. This
     * test passing proves the previous one can fail. */
    /* KNOWN FAILURE (test hook defect in core/, see the report): with
     * late_reserve, hold.c op_publish (and level.c level_published) take
     * the position BEFORE persist_publish reaches FAULT_PERSIST_BEFORE_PUBLISH,
     * so the hook stalls the hold after its reservation, never between its
     * level CASes and its reservation. The hold's position is then below
     * the adjust's, the durable prefix makes the adjust wait, and the
     * broken state cannot be produced deterministically. */
    cr_assert_eq(res.adj.arg, 0,
                 "rule off: the adjust's ack still waited for the stalled hold: the publish "
                 "hook runs after the late reservation (hold.c op_publish reserves, then "
                 "persist_publish reaches its test point), so it cannot stall the "
                 "hold between its CASes and its journal position");
    cr_assert_not(res.hold_returned, "rule off: the hold returned before the kill");
    /* Recovery counts units held by no live hold as committed (level.h):
     * the leak shows as units sold by no order. */
    cr_assert(res.hold_rc == INV_ENOTFOUND && res.l1.reserved == 0 && res.l1_committed == ORD_Q1 &&
                  res.l2.reserved == 0,
              "rule off: expected the broken state (L1 committed %d, no hold), got " ORD_STATE_FMT
              " committed %lld",
              ORD_Q1, ORD_STATE_ARGS(&res), (long long)res.l1_committed);
    cr_log_info("ordering, rule off: recovered the broken state as expected: " ORD_STATE_FMT,
                ORD_STATE_ARGS(&res));
}

/* ---- 4. recovery edge cases ------------------------------------------------------------ */

#define EC_ITEMS 4
#define EC_LOCS 3
#define EC_HOLDS 4

typedef struct {
    int item_rc[EC_ITEMS];
    char sku[EC_ITEMS][INV_SKU_MAX + 1];
    int loc_rc[EC_LOCS];
    char name[EC_LOCS][INV_STR_MAX + 1];
    int def_rc;
    uint64_t def;
    int level_rc[EC_ITEMS][EC_LOCS];
    inv_level level[EC_ITEMS][EC_LOCS];
    int hold_rc[EC_HOLDS];
    inv_hold_info hold[EC_HOLDS];
} ec_state;

static const char *ec_hold_id(size_t i)
{
    static const char *ids[EC_HOLDS] = {"ec-held", "ec-committed", "ec-released", "ec-two"};
    return ids[i];
}

static void ec_capture(inv_engine *e, ec_state *s)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < EC_ITEMS; i++) {
        inv_item it;
        s->item_rc[i] = inv_item_get(e, tu_item_id(i), &it);
        if (s->item_rc[i] == INV_OK)
            memcpy(s->sku[i], it.fields.sku, sizeof s->sku[i]);
        for (size_t j = 0; j < EC_LOCS; j++)
            s->level_rc[i][j] = inv_level_get(e, tu_item_id(i), tu_loc_id(j), &s->level[i][j]);
    }
    for (size_t j = 0; j < EC_LOCS; j++) {
        inv_location lo;
        s->loc_rc[j] = inv_location_get(e, tu_loc_id(j), &lo);
        if (s->loc_rc[j] == INV_OK)
            memcpy(s->name[j], lo.fields.name, sizeof s->name[j]);
    }
    s->def_rc = inv_location_default(e, &s->def);
    for (size_t h = 0; h < EC_HOLDS; h++) {
        s->hold_rc[h] = inv_hold_get(e, ec_hold_id(h), strlen(ec_hold_id(h)), &s->hold[h]);
        if (s->hold_rc[h] != INV_OK)
            memset(&s->hold[h], 0, sizeof s->hold[h]);
    }
}

static void ec_assert_same(const ec_state *a, const ec_state *b, const char *what)
{
    for (size_t i = 0; i < EC_ITEMS; i++) {
        cr_assert_eq(a->item_rc[i], b->item_rc[i], "%s: item %zu", what, i);
        cr_assert_str_eq(a->sku[i], b->sku[i], "%s: item %zu sku", what, i);
        for (size_t j = 0; j < EC_LOCS; j++) {
            cr_assert_eq(a->level_rc[i][j], b->level_rc[i][j], "%s: level (%zu, %zu) rc %d vs %d",
                         what, i, j, a->level_rc[i][j], b->level_rc[i][j]);
            if (a->level_rc[i][j] != INV_OK)
                continue;
            const inv_level *x = &a->level[i][j], *y = &b->level[i][j];
            cr_assert(x->available == y->available && x->reserved == y->reserved &&
                          x->revision == y->revision,
                      "%s: level (%zu, %zu): (%" PRId64 ", %" PRId64 ", rev %" PRIu64
                      ") vs (%" PRId64 ", %" PRId64 ", rev %" PRIu64 ")",
                      what, i, j, x->available, x->reserved, x->revision, y->available, y->reserved,
                      y->revision);
        }
    }
    for (size_t j = 0; j < EC_LOCS; j++) {
        cr_assert_eq(a->loc_rc[j], b->loc_rc[j], "%s: location %zu", what, j);
        cr_assert_str_eq(a->name[j], b->name[j], "%s: location %zu name", what, j);
    }
    cr_assert_eq(a->def_rc, b->def_rc, "%s: default location", what);
    cr_assert_eq(a->def, b->def, "%s: default location", what);
    for (size_t h = 0; h < EC_HOLDS; h++) {
        cr_assert_eq(a->hold_rc[h], b->hold_rc[h], "%s: hold %s rc", what, ec_hold_id(h));
        const inv_hold_info *x = &a->hold[h], *y = &b->hold[h];
        cr_assert(x->state == y->state && x->expires_at_ms == y->expires_at_ms &&
                      x->n_lines == y->n_lines,
                  "%s: hold %s: state %d/%d, expires %" PRId64 "/%" PRId64, what, ec_hold_id(h),
                  x->state, y->state, x->expires_at_ms, y->expires_at_ms);
        for (size_t k = 0; k < x->n_lines; k++)
            cr_assert(x->lines[k].item == y->lines[k].item &&
                          x->lines[k].location == y->lines[k].location &&
                          x->lines[k].qty == y->lines[k].qty,
                      "%s: hold %s line %zu", what, ec_hold_id(h), k);
    }
}

static inv_engine *ec_open(const char *dir, bool repair)
{
    char msg[4096];
    inv_engine *e = NULL;
    int rc = open_dir(dir, repair, &e, msg, sizeof msg);
    cr_assert_eq(rc, INV_OK, "open %s: %s: %s", dir, inv_strerror(rc), msg);
    return e;
}

/* A catalog with names and SKUs, levels, holds in every state, an item
 * deleted with its levels, a level deleted, a new default location. */
static void ec_populate(inv_engine *e)
{
    for (size_t j = 0; j < EC_LOCS; j++) {
        inv_location_fields f;
        memset(&f, 0, sizeof f);
        f.mask = INV_LOC_NAME;
        snprintf(f.name, sizeof f.name, "warehouse %zu", j);
        cr_assert_eq(inv_location_put(e, tu_loc_id(j), &f), INV_OK);
    }
    cr_assert_eq(inv_location_set_default(e, tu_loc_id(1)), INV_OK);
    for (size_t i = 0; i < EC_ITEMS; i++) {
        inv_item_fields f;
        memset(&f, 0, sizeof f);
        f.mask = INV_ITEM_SKU;
        snprintf(f.sku, sizeof f.sku, "SKU-%zu", i);
        cr_assert_eq(inv_item_put(e, tu_item_id(i), &f), INV_OK);
        for (size_t j = 0; j < EC_LOCS; j++)
            cr_assert_eq(
                inv_level_set(e, tu_item_id(i), tu_loc_id(j), (int64_t)(10 * i + j + 20), 0, NULL),
                INV_OK);
    }
    cr_assert_eq(inv_level_adjust(e, tu_item_id(0), tu_loc_id(0), 7, INV_NO_FLOOR, NULL), INV_OK);
    cr_assert_eq(inv_level_adjust(e, tu_item_id(1), tu_loc_id(2), -3, 0, NULL), INV_OK);
    inv_hold_line two[2] = {{tu_item_id(0), tu_loc_id(0), 4}, {tu_item_id(1), tu_loc_id(1), 2}};
    inv_hold_line one[1] = {{tu_item_id(2), tu_loc_id(0), 5}};
    cr_assert_eq(inv_hold_create(e, "ec-held", 7, HD_TTL_LONG_MS, two, 2, NULL), INV_OK);
    cr_assert_eq(inv_hold_create(e, "ec-committed", 12, HD_TTL_LONG_MS, one, 1, NULL), INV_OK);
    cr_assert_eq(inv_hold_commit(e, "ec-committed", 12), INV_OK);
    cr_assert_eq(inv_hold_create(e, "ec-released", 11, HD_TTL_LONG_MS, two, 2, NULL), INV_OK);
    cr_assert_eq(inv_hold_release(e, "ec-released", 11), INV_OK);
    cr_assert_eq(inv_hold_create(e, "ec-two", 6, HD_TTL_LONG_MS, one, 1, NULL), INV_OK);
    cr_assert_eq(inv_item_del(e, tu_item_id(3)), INV_OK);
    cr_assert_eq(inv_level_del(e, tu_item_id(1), tu_loc_id(2)), INV_OK);
}

Test(crash, recovery_clean_close_reopen_equals_the_state_before)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "crash");
    inv_engine *e = ec_open(dir, false);
    ec_populate(e);
    ec_state before, after;
    ec_capture(e, &before);
    inv_close(e);
    for (int round = 0; round < 2; round++) { /* and again: recovery is idempotent */
        e = ec_open(dir, false);
        ec_capture(e, &after);
        ec_assert_same(&before, &after, round ? "second reopen" : "reopen");
        cr_assert_eq(hold_verify_reserved(e), INV_OK);
        inv_close(e);
    }
    /* The same through a snapshot. */
    e = ec_open(dir, false);
    cr_assert_eq(inv_snapshot(e), INV_OK);
    inv_close(e);
    e = ec_open(dir, false);
    ec_capture(e, &after);
    ec_assert_same(&before, &after, "reopen after a snapshot");
    inv_close(e);
    (void)tu_remove_tree(dir);
}

/* The newest segment file of dir (by name: they sort by position). */
static void last_segment(const char *dir, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s", dir);
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".jnl") == 0 && n < sizeof best &&
            strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    }
    closedir(d);
    cr_assert(best[0], "no journal segment in %s", dir);
    snprintf(path, cap, "%s/%s", dir, best);
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_size;
}

Test(crash, recovery_torn_tail_recovers_to_the_previous_record)
{
    /* The last record is a 32-byte level image: 48 bytes framed. Cut into
     * its checksum, its payload, and all but one byte of its header. */
    static const off_t cuts[] = {3, 20, 47};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        char dir[64];
        tu_tmpdir(dir, sizeof dir, "crash");
        inv_engine *e = ec_open(dir, false);
        ec_populate(e);
        ec_state before, after;
        ec_capture(e, &before);
        cr_assert_eq(inv_level_set(e, tu_item_id(2), tu_loc_id(2), 777, 0, NULL), INV_OK);
        inv_close(e);
        char seg[512];
        last_segment(dir, seg, sizeof seg);
        off_t size = file_size(seg);
        cr_assert_eq(truncate(seg, size - cuts[c]), 0, "truncate: %s", strerror(errno));
        char msg[4096];
        int rc = open_dir(dir, false, &e, msg, sizeof msg);
        cr_assert_eq(rc, INV_OK, "cut %lld: a torn tail must open: %s: %s", (long long)cuts[c],
                     inv_strerror(rc), msg);
        cr_expect(msg[0] != '\0', "cut %lld: no warning about the torn tail", (long long)cuts[c]);
        ec_capture(e, &after);
        ec_assert_same(&before, &after, "torn tail");
        /* The journal goes on after the cut. */
        inv_level lv;
        cr_assert_eq(inv_level_set(e, tu_item_id(2), tu_loc_id(2), 778, 0, &lv), INV_OK);
        inv_close(e);
        e = ec_open(dir, false);
        inv_level got;
        cr_assert_eq(inv_level_get(e, tu_item_id(2), tu_loc_id(2), &got), INV_OK);
        cr_assert(got.available == 778 && got.revision == lv.revision,
                  "after the cut: %" PRId64 " rev %" PRIu64, got.available, got.revision);
        inv_close(e);
        (void)tu_remove_tree(dir);
    }
}

typedef struct {
    off_t offset;
    uint32_t len;
    uint8_t type;
} seg_record;

/* The records of a segment file, walked by their framing (docs/JOURNAL.md). */
static size_t segment_records(const char *path, seg_record *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    off_t size = lseek(fd, 0, SEEK_END);
    size_t n = 0;
    off_t off = 32; /* the segment header */
    while (off + 16 <= size && n < cap) {
        uint8_t hdr[8];
        cr_assert_eq(pread(fd, hdr, sizeof hdr, off), (ssize_t)sizeof hdr);
        uint32_t len;
        memcpy(&len, hdr, 4);
        if (hdr[4] == 0)
            break;
        out[n++] = (seg_record){off, len, hdr[4]};
        off += 16 + (off_t)(((uint64_t)len + 7) & ~7ull);
    }
    close(fd);
    return n;
}

Test(crash, recovery_corrupt_middle_record_refuses_to_open_and_repair_cuts_it)
{
    enum { N = 20, BAD = 10 };
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "crash");
    inv_engine *e = ec_open(dir, false);
    cr_assert_eq(inv_location_put(e, tu_loc_id(0), NULL), INV_OK);
    cr_assert_eq(inv_item_put(e, tu_item_id(0), NULL), INV_OK);
    for (size_t k = 0; k < N; k++)
        cr_assert_eq(inv_location_put(e, tu_loc_id(k + 1), NULL), INV_OK);
    for (size_t k = 0; k < N; k++) /* one level record each, in order */
        cr_assert_eq(inv_level_set(e, tu_item_id(0), tu_loc_id(k + 1), (int64_t)(k + 1), 0, NULL),
                     INV_OK);
    inv_close(e);

    char seg[512];
    last_segment(dir, seg, sizeof seg);
    seg_record recs[256];
    size_t n = segment_records(seg, recs, 256);
    size_t level_seen = 0, bad = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (recs[i].type == PERSIST_LEVEL && level_seen++ == BAD)
            bad = i;
    cr_assert_neq(bad, SIZE_MAX, "level record %d not found among %zu records", BAD, n);
    cr_assert_lt(bad + 1, n, "the corrupt record must not be the last");
    /* Flip one payload byte (in the item id) of the middle level record. */
    int fd = open(seg, O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    uint8_t b;
    off_t at = recs[bad].offset + 8 + 3;
    cr_assert_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    cr_assert_eq(pwrite(fd, &b, 1, at), 1);
    cr_assert_eq(fsync(fd), 0);
    close(fd);

    char msg[4096];
    e = NULL;
    int rc = open_dir(dir, false, &e, msg, sizeof msg);
    cr_assert_neq(rc, INV_OK, "a corrupt record followed by good ones must refuse to open");
    cr_assert_null(e);
    cr_assert(strstr(msg, ".jnl") != NULL, "the message should name the file: %s", msg);
    /* Still refused on a second try: nothing was cut without repair. */
    rc = open_dir(dir, false, &e, msg, sizeof msg);
    cr_assert_neq(rc, INV_OK);

    e = ec_open(dir, true);
    for (size_t k = 0; k < N; k++) {
        inv_level lv;
        rc = inv_level_get(e, tu_item_id(0), tu_loc_id(k + 1), &lv);
        if (k < BAD)
            cr_assert(rc == INV_OK && lv.available == (int64_t)(k + 1),
                      "repair: level %zu before the cut: %s %" PRId64, k, inv_strerror(rc),
                      lv.available);
        else
            cr_assert_eq(rc, INV_ENOTFOUND, "repair: level %zu after the cut survived", k);
    }
    inv_location lo;
    cr_assert_eq(inv_location_get(e, tu_loc_id(N), &lo), INV_OK);
    cr_assert_eq(inv_level_set(e, tu_item_id(0), tu_loc_id(N), 5, 0, NULL), INV_OK);
    inv_close(e);
    /* Repaired for good: opens without repair, with the new change. */
    e = ec_open(dir, false);
    inv_level lv;
    cr_assert_eq(inv_level_get(e, tu_item_id(0), tu_loc_id(N), &lv), INV_OK);
    cr_assert_eq(lv.available, 5);
    inv_close(e);
    (void)tu_remove_tree(dir);
}

/* Snapshot + more changes + SIGKILL: a fixed script in the child, with two
 * snapshots in the middle; the child reports its final state and waits to
 * be killed; recovery must give exactly that state. */
#define SS_ITEMS 4
#define SS_LOCS 2
#define SS_LEVELS (SS_ITEMS * SS_LOCS)
#define SS_HOLDS 4

static uint64_t ss_item(uint32_t idx)
{
    return tu_item_id(idx / SS_LOCS);
}
static uint64_t ss_loc(uint32_t idx)
{
    return tu_loc_id(idx % SS_LOCS);
}
static const char *ss_hold(size_t i)
{
    static const char *ids[SS_HOLDS] = {"s-a", "s-b", "s-c", "s-d"};
    return ids[i];
}

#define SS_DO(fd, call)                     \
    do {                                    \
        int rc_ = (call);                   \
        if (rc_ != INV_OK) {                \
            send_fail((fd), __LINE__, rc_); \
            _exit(3);                       \
        }                                   \
    } while (0)

static void ss_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    (void)seed, (void)arg;
    inv_engine *e = child_open(dir, fd);
    child_catalog(e, fd, SS_ITEMS - 1, SS_LOCS);
    for (uint32_t i = 0; i < 6; i++)
        SS_DO(fd, inv_level_set(e, ss_item(i), ss_loc(i), 100 + i, 0, NULL));
    inv_hold_line a[2] = {{ss_item(0), ss_loc(0), 5}, {ss_item(1), ss_loc(1), 5}};
    inv_hold_line b[1] = {{ss_item(2), ss_loc(2), 7}};
    inv_hold_line c[1] = {{ss_item(3), ss_loc(3), 4}};
    inv_hold_line d[2] = {{ss_item(4), ss_loc(4), 5}, {ss_item(5), ss_loc(5), 6}};
    SS_DO(fd, inv_hold_create(e, "s-a", 3, HD_TTL_LONG_MS, a, 2, NULL));
    SS_DO(fd, inv_hold_create(e, "s-b", 3, HD_TTL_LONG_MS, b, 1, NULL));
    SS_DO(fd, inv_hold_commit(e, "s-b", 3));
    SS_DO(fd, inv_hold_create(e, "s-c", 3, HD_TTL_LONG_MS, c, 1, NULL));
    SS_DO(fd, inv_hold_release(e, "s-c", 3));
    SS_DO(fd, inv_snapshot(e));
    SS_DO(fd, inv_level_adjust(e, ss_item(0), ss_loc(0), 10, INV_NO_FLOOR, NULL));
    SS_DO(fd, inv_level_set(e, ss_item(4), ss_loc(4), 55, 0, NULL));
    SS_DO(fd, inv_hold_create(e, "s-d", 3, HD_TTL_LONG_MS, d, 2, NULL));
    SS_DO(fd, inv_hold_commit(e, "s-a", 3));
    SS_DO(fd, inv_snapshot(e));
    SS_DO(fd, inv_level_adjust(e, ss_item(1), ss_loc(1), -3, 0, NULL));
    SS_DO(fd, inv_item_put(e, ss_item(6), NULL));
    SS_DO(fd, inv_level_set(e, ss_item(6), ss_loc(6), 9, 0, NULL));
    SS_DO(fd, inv_level_del(e, ss_item(3), ss_loc(3)));
    SS_DO(fd, inv_hold_release(e, "s-d", 3));
    SS_DO(fd, inv_level_adjust(e, ss_item(5), ss_loc(5), 1, INV_NO_FLOOR, NULL));
    for (uint32_t i = 0; i < SS_LEVELS; i++) {
        inv_level lv = {0, 0, 0};
        int rc = inv_level_get(e, ss_item(i), ss_loc(i), &lv);
        send_level(fd, REC_FINAL_LEVEL, 0, 0, i, 0, rc, rc == INV_OK ? &lv : NULL);
    }
    for (uint32_t h = 0; h < SS_HOLDS; h++) {
        inv_hold_info info;
        int rc = inv_hold_get(e, ss_hold(h), strlen(ss_hold(h)), &info);
        crash_rec r = {.kind = REC_FINAL_HOLD, .seq = h, .rc = rc};
        if (rc == INV_OK) {
            r.op = (uint8_t)info.state;
            r.n_lines = (uint8_t)info.n_lines;
            r.time_ms = info.expires_at_ms;
        }
        rec_send(fd, &r);
    }
    int rc = hold_verify_reserved(e);
    CHILD_CHECK(fd, rc == INV_OK, rc);
    send_simple(fd, REC_DONE, 0, 0);
    tu_sleep_ms(ORD_WAIT_MS); /* the parent kills us */
    _exit(0);
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0, sl = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        n += len > sl && strcmp(de->d_name + len - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

Test(crash, snapshot_then_changes_then_sigkill_recovers_everything_acknowledged)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "crash");
    rec_log log = {0};
    child_proc cp = spawn_child(ss_child, dir, 0, NULL);
    kill_plan plan = {REC_DONE, 0, false};
    bool killed;
    int status = drive_child(cp, &log, plan, &killed);
    check_child_end(&log, status, killed, "snapshot", 0, 0, dir);
    cr_assert(killed, "the child was not killed (status %#x)", (unsigned)status);
    cr_assert(log_has(&log, REC_DONE, NULL), "the child's script did not finish");
    cr_assert_geq(count_files(dir, ".snap"), 1, "no snapshot file in %s", dir);

    inv_engine *e = ec_open(dir, false);
    size_t levels = 0, holds = 0;
    for (size_t i = 0; i < log.n; i++) {
        const crash_rec *r = &log.v[i];
        if (r->kind == REC_FINAL_LEVEL) {
            inv_level lv = {0, 0, 0};
            int rc = inv_level_get(e, ss_item(r->level), ss_loc(r->level), &lv);
            cr_assert_eq(rc, r->rc, "level %u: %s, before the kill %s", r->level, inv_strerror(rc),
                         inv_strerror(r->rc));
            if (rc == INV_OK)
                cr_assert(lv.available == r->available && lv.reserved == r->reserved &&
                              lv.revision == r->revision,
                          "level %u: recovered (%" PRId64 ", %" PRId64 ", rev %" PRIu64
                          "), before the kill (%" PRId64 ", %" PRId64 ", rev %" PRIu64 ")",
                          r->level, lv.available, lv.reserved, lv.revision, r->available,
                          r->reserved, r->revision);
            levels += rc == INV_OK;
        } else if (r->kind == REC_FINAL_HOLD) {
            inv_hold_info info;
            int rc = inv_hold_get(e, ss_hold(r->seq), strlen(ss_hold(r->seq)), &info);
            cr_assert_eq(rc, r->rc, "hold %s", ss_hold(r->seq));
            if (rc == INV_OK)
                cr_assert(info.state == (inv_hold_state)r->op && info.n_lines == r->n_lines &&
                              info.expires_at_ms == r->time_ms,
                          "hold %s: state %d (was %d), %zu lines (was %u)", ss_hold(r->seq),
                          info.state, r->op, info.n_lines, r->n_lines);
            holds++;
        }
    }
    cr_assert_eq(levels, 6, "expected 6 levels before the kill, got %zu", levels);
    cr_assert_eq(holds, SS_HOLDS);
    cr_assert_eq(hold_verify_reserved(e), INV_OK);
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    cr_assert_eq(st.levels, 6);
    cr_assert_eq(st.items, SS_ITEMS);
    inv_close(e);
    log_free(&log);
    (void)tu_remove_tree(dir);
}

/* The crash tests of 1 and 2 with a thread taking snapshots all along: a
 * snapshot taken while writers run, and a kill in the middle of one. A
 * quarter of the trials of the main tests (at least CRASH_TRIALS_MIN). */
static uint64_t snapshot_trials(void)
{
    uint64_t n = crash_trials(CRASH_TRIALS_DEFAULT) / 4;
    return n < CRASH_TRIALS_MIN ? CRASH_TRIALS_MIN : n;
}

Test(crash, levels_sigkill_during_concurrent_snapshots)
{
    lv_crash_trials("levels+snapshots", snapshot_trials(), true);
}

Test(crash, holds_sigkill_during_concurrent_snapshots)
{
    hd_crash_trials("holds+snapshots", snapshot_trials(), true);
}

/* ---- 5. batches --------------------------------------------------------------------- */

#define BT_BANKS 4 /* levels (bank item i, location 0) units move between */
#define BT_THREADS 4 /* each has a counter level (item BT_BANKS, location t) */
#define BT_STOCK 1000
#define BT_HOLD_STOCK 1000000
#define BT_ITEMS (BT_BANKS + 2) /* banks, counters, the hold level's item */
#define BT_LOCS BT_THREADS
#define BT_SEQ_MAX 65536 /* batches one thread runs at most (a bound on the log) */

/* REC_BATCH_TRY flags (op): */
enum { BT_CREATE = 1, BT_COMMIT = 2, BT_RELEASE = 4, BT_PLANTED = 8, BT_MOVES = 16 };

static uint64_t bt_bank(uint32_t i)
{
    return tu_item_id(i);
}
static uint64_t bt_counter_item(void)
{
    return tu_item_id(BT_BANKS);
}
static uint64_t bt_hold_item(void)
{
    return tu_item_id(BT_BANKS + 1);
}

static void bt_setup(child_ctx *c, unsigned t)
{
    inv_level lv;
    int rc = inv_level_set(c->e, bt_counter_item(), tu_loc_id(t), 0, 0, &lv);
    CHILD_CHECK(c->fd, rc == INV_OK, rc);
    if (t < BT_BANKS) {
        rc = inv_level_set(c->e, bt_bank(t), tu_loc_id(0), BT_STOCK, 0, &lv);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
    }
    if (t == 0) {
        rc = inv_level_set(c->e, bt_hold_item(), tu_loc_id(0), BT_HOLD_STOCK, 0, &lv);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
    }
}

static void bt_worker(child_ctx *c, unsigned t)
{
    tu_rng r = tu_rng_seed(c->seed * 0x2545f491ull + t);
    bt_setup(c, t);
    pthread_barrier_wait(&c->setup_done);
    uint32_t live = 0; /* the seq of this thread's newest live hold (0: none) */
    for (uint32_t seq = 1; seq < BT_SEQ_MAX && tu_now_ns() < c->stop_ns; seq++) {
        uint32_t a = (uint32_t)tu_rng_below(&r, BT_BANKS);
        uint32_t b = (a + 1 + (uint32_t)tu_rng_below(&r, BT_BANKS - 1)) % BT_BANKS;
        int64_t k = tu_rng_range(&r, 1, 60);
        uint8_t flags = tu_rng_below(&r, 2) ? BT_CREATE : 0;
        if (live && tu_rng_below(&r, 2))
            flags |= tu_rng_below(&r, 2) ? BT_COMMIT : BT_RELEASE;
        if (tu_rng_below(&r, 8) == 0)
            flags |= BT_PLANTED;
        if (tu_rng_below(&r, 2))
            flags |= BT_MOVES;
        int64_t j = tu_rng_range(&r, 1, 5);
        char id[32], end_id[32];
        hold_id(id, sizeof id, t, seq);
        hold_id(end_id, sizeof end_id, t, live);
        inv_hold_line hl = {bt_hold_item(), tu_loc_id(0), 1};
        inv_batch_line lines[9];
        size_t n = 0;
        lines[n++] = (inv_batch_line){.op = INV_BATCH_LEVEL_ADJUST,
                                      .item = bt_bank(a),
                                      .location = tu_loc_id(0),
                                      .qty = -k,
                                      .floor = 0};
        lines[n++] = (inv_batch_line){.op = INV_BATCH_LEVEL_ADJUST,
                                      .item = bt_bank(b),
                                      .location = tu_loc_id(0),
                                      .qty = k,
                                      .floor = INV_NO_FLOOR};
        lines[n++] = (inv_batch_line){.op = INV_BATCH_LEVEL_ADJUST,
                                      .item = bt_counter_item(),
                                      .location = tu_loc_id(t),
                                      .qty = 1,
                                      .floor = INV_NO_FLOOR};
        if (flags & BT_CREATE)
            lines[n++] = (inv_batch_line){.op = INV_BATCH_HOLD_CREATE,
                                          .hold_id = id,
                                          .hold_id_len = strlen(id),
                                          .ttl_ms = HD_TTL_LONG_MS,
                                          .hold_lines = &hl,
                                          .n_hold_lines = 1};
        if (flags & (BT_COMMIT | BT_RELEASE))
            lines[n++] = (inv_batch_line){.op = flags & BT_COMMIT ? INV_BATCH_HOLD_COMMIT
                                                                  : INV_BATCH_HOLD_RELEASE,
                                          .hold_id = end_id,
                                          .hold_id_len = strlen(end_id)};
        if (flags & BT_MOVES) {
            /* model 2: units change quantity (on_hand kept) and location */
            lines[n++] = (inv_batch_line){.op = INV_BATCH_LEVEL_MOVE,
                                          .item = bt_bank(b),
                                          .location = tu_loc_id(0),
                                          .qty = j,
                                          .floor = INV_NO_FLOOR,
                                          .from = INV_QTY_AVAILABLE,
                                          .to = INV_QTY_DAMAGED};
            lines[n++] = (inv_batch_line){.op = INV_BATCH_LEVEL_MOVE,
                                          .item = bt_bank(a),
                                          .location = tu_loc_id(0),
                                          .qty = 1,
                                          .floor = INV_NO_FLOOR,
                                          .from = INV_QTY_DAMAGED,
                                          .to = INV_QTY_QUALITY_CONTROL};
            lines[n++] = (inv_batch_line){.op = INV_BATCH_LEVEL_TRANSFER,
                                          .item = bt_bank(a),
                                          .location = tu_loc_id(0),
                                          .to_location = tu_loc_id(1),
                                          .qty = j,
                                          .floor = INV_NO_FLOOR,
                                          .from = INV_QTY_AVAILABLE,
                                          .to = INV_QTY_AVAILABLE};
        }
        if (flags & BT_PLANTED)
            lines[n++] = (inv_batch_line){.op = INV_BATCH_LEVEL_ADJUST,
                                          .item = bt_bank(b),
                                          .location = tu_loc_id(0),
                                          .qty = -INV_QTY_MAX,
                                          .floor = 0};
        crash_rec rec = {.kind = REC_BATCH_TRY,
                         .thread = (uint8_t)t,
                         .op = flags,
                         .seq = seq,
                         .level = a,
                         .arg = k,
                         .revision = live};
        rec.line_level[0] = b;
        rec_send(c->fd, &rec);
        size_t failed = 0;
        int rc = inv_batch(c->e, lines, n, NULL, &failed);
        CHILD_CHECK(c->fd, rc == INV_OK || rc == INV_EINSUFFICIENT, rc);
        CHILD_CHECK(c->fd, !(flags & BT_PLANTED) || rc == INV_EINSUFFICIENT, rc);
        rec.kind = REC_BATCH_DONE;
        rec.rc = rc;
        rec_send(c->fd, &rec);
        if (rc == INV_OK && (flags & (BT_COMMIT | BT_RELEASE)))
            live = 0;
        if (rc == INV_OK && (flags & BT_CREATE))
            live = seq;
    }
}

static void bt_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    bool snapshots = *(const bool *)arg;
    inv_engine *e = child_open(dir, fd);
    child_catalog(e, fd, BT_ITEMS, BT_LOCS);
    static child_ctx c;
    c = (child_ctx){.e = e,
                    .fd = fd,
                    .seed = seed,
                    .stop_ns = tu_now_ns() + CHILD_WORK_MS * 1000000ull,
                    .n_workers = BT_THREADS,
                    .worker = bt_worker};
    child_run(&c, snapshots);
}

typedef struct {
    uint64_t batches_acked, failed_acked, uncertain, uncertain_applied, cut;
} bt_counts;

/* One thread's batches from the log, in order: tries[i] is batch seq i+1;
 * done[i] says whether it returned (and rc). */
typedef struct {
    crash_rec try_rec[BT_SEQ_MAX];
    bool returned[BT_SEQ_MAX];
    int rc[BT_SEQ_MAX];
    uint32_t n;
} bt_thread_log;

static int bt_expected_state(const bt_thread_log *tl, const bool *applied, uint32_t seq)
{
    int st = INV_HOLD_HELD;
    for (uint32_t j = seq; j < tl->n; j++) /* later batches that ended it */
        if (applied[j] && tl->try_rec[j].revision == seq &&
            (tl->try_rec[j].op & (BT_COMMIT | BT_RELEASE)))
            st = tl->try_rec[j].op & BT_COMMIT ? INV_HOLD_COMMITTED : INV_HOLD_RELEASED;
    return st;
}

static void bt_verify_thread(const trial_id *id, inv_engine *e, unsigned t, const bt_thread_log *tl,
                             bt_counts *cnt, int64_t *committed)
{
    static bool applied[BT_SEQ_MAX];
    uint32_t ok = 0, uncertain = 0;
    for (uint32_t i = 0; i < tl->n; i++) {
        ok += tl->returned[i] && tl->rc[i] == INV_OK;
        uncertain += !tl->returned[i];
        cnt->failed_acked += tl->returned[i] && tl->rc[i] != INV_OK;
    }
    cr_assert_leq(uncertain, 1, TRIAL_FMT "thread %u: %u batches without an answer", TRIAL_ARGS(id),
                  t, uncertain);
    inv_level counter;
    cr_assert_eq(inv_level_get(e, bt_counter_item(), tu_loc_id(t), &counter), INV_OK,
                 TRIAL_FMT "thread %u's counter level is missing", TRIAL_ARGS(id), t);
    bool last_applied = counter.available == (int64_t)ok + 1;
    cr_assert(counter.available == (int64_t)ok || (uncertain && last_applied),
              TRIAL_FMT "thread %u: counter %" PRId64 " after %u acknowledged batches "
                        "(%u unanswered): a batch was lost or half applied",
              TRIAL_ARGS(id), t, counter.available, ok, uncertain);
    if (last_applied)
        cr_assert(!(tl->try_rec[tl->n - 1].op & BT_PLANTED),
                  TRIAL_FMT "thread %u: a batch with a failing line was applied", TRIAL_ARGS(id),
                  t);
    for (uint32_t i = 0; i < tl->n; i++)
        applied[i] = tl->returned[i] ? tl->rc[i] == INV_OK : last_applied;
    for (uint32_t i = 0; i < tl->n; i++) {
        const crash_rec *tr = &tl->try_rec[i];
        if (!(tr->op & BT_CREATE))
            continue;
        char hid[32];
        hold_id(hid, sizeof hid, t, tr->seq);
        inv_hold_info info;
        int rc = inv_hold_get(e, hid, strlen(hid), &info);
        if (!applied[i]) {
            cr_assert_eq(rc, INV_ENOTFOUND,
                         TRIAL_FMT "hold %s of a batch that did not apply exists (%s)",
                         TRIAL_ARGS(id), hid, inv_strerror(rc));
            continue;
        }
        cr_assert_eq(rc, INV_OK, TRIAL_FMT "hold %s of an applied batch is missing", TRIAL_ARGS(id),
                     hid);
        int want = bt_expected_state(tl, applied, tr->seq);
        cr_assert_eq((int)info.state, want, TRIAL_FMT "hold %s is in state %d, expected %d",
                     TRIAL_ARGS(id), hid, (int)info.state, want);
        *committed += info.state == INV_HOLD_COMMITTED;
    }
    cnt->batches_acked += ok;
    cnt->uncertain += uncertain;
    cnt->uncertain_applied += last_applied;
}

static void bt_verify(const trial_id *id, const rec_log *log, bt_counts *cnt)
{
    if (!log_has(log, REC_READY, NULL))
        return; /* killed during setup: nothing was promised yet */
    static bt_thread_log tl[BT_THREADS];
    for (unsigned t = 0; t < BT_THREADS; t++)
        tl[t].n = 0;
    for (size_t i = 0; i < log->n; i++) {
        const crash_rec *r = &log->v[i];
        if (r->kind != REC_BATCH_TRY && r->kind != REC_BATCH_DONE)
            continue;
        cr_assert_lt(r->thread, BT_THREADS);
        bt_thread_log *l = &tl[r->thread];
        uint32_t idx = r->seq - 1;
        cr_assert_lt(idx, BT_SEQ_MAX);
        if (r->kind == REC_BATCH_TRY) {
            cr_assert_eq(idx, l->n, TRIAL_FMT "thread %u: batches out of order", TRIAL_ARGS(id),
                         r->thread);
            l->try_rec[l->n] = *r;
            l->returned[l->n] = false;
            l->n++;
        } else {
            cr_assert_eq(idx + 1, l->n);
            l->returned[idx] = true;
            l->rc[idx] = r->rc;
        }
    }
    inv_engine *e = NULL;
    char msg[4096];
    int rc = open_dir(id->dir, false, &e, msg, sizeof msg);
    cr_assert_eq(rc, INV_OK, TRIAL_FMT "recovery failed: %s", TRIAL_ARGS(id), msg);
    cnt->cut += strstr(msg, "cut short by the crash") != NULL;
    int64_t units = 0;
    for (uint32_t i = 0; i < BT_BANKS; i++)
        for (size_t loc = 0; loc < 2; loc++) { /* transfers go to location 1 */
            inv_level_full f;
            int frc = inv_level_get_full(e, bt_bank(i), tu_loc_id(loc), &f);
            if (loc == 1 && frc == INV_ENOTFOUND)
                continue;
            cr_assert_eq(frc, INV_OK);
            for (int q = 0; q < INV_QTY_NAMES; q++)
                cr_assert_geq(f.qty[q], 0, TRIAL_FMT "bank %u: %s below its floor", TRIAL_ARGS(id),
                              i, inv_qty_name_str((inv_qty_name)q));
            cr_assert_eq(f.qty[INV_QTY_RESERVED], 0,
                         TRIAL_FMT "bank %u holds pending units after recovery", TRIAL_ARGS(id), i);
            units += f.on_hand;
        }
    cr_assert_eq(units, BT_BANKS * BT_STOCK,
                 TRIAL_FMT "transfers: %" PRId64 " units, expected %d (half a batch?)",
                 TRIAL_ARGS(id), units, BT_BANKS * BT_STOCK);
    int64_t committed = 0;
    for (unsigned t = 0; t < BT_THREADS; t++)
        bt_verify_thread(id, e, t, &tl[t], cnt, &committed);
    inv_level h;
    cr_assert_eq(inv_level_get(e, bt_hold_item(), tu_loc_id(0), &h), INV_OK);
    cr_assert_eq(h.available + h.reserved + committed, BT_HOLD_STOCK,
                 TRIAL_FMT "hold level: %" PRId64 " + %" PRId64 " + %" PRId64 " sold != %d",
                 TRIAL_ARGS(id), h.available, h.reserved, committed, BT_HOLD_STOCK);
    cr_assert_eq(hold_verify_reserved(e), INV_OK,
                 TRIAL_FMT "reserved disagrees with the held lines", TRIAL_ARGS(id));
    inv_close(e);
}

static void bt_verify_trial(const trial_id *id, const rec_log *log, void *ctx)
{
    bt_verify(id, log, ctx);
}

static void bt_crash_trials(const char *what, uint64_t trials, bool snapshots)
{
    bt_counts cnt = {0};
    uint64_t t0 = tu_now_ns();
    uint64_t killed_n =
        run_kill_trials(what, trials, 0x85ebca6bull, bt_child, &snapshots, bt_verify_trial, &cnt);
    cr_log_info("%s: %" PRIu64 " trials (%" PRIu64 " killed), %" PRIu64
                " acknowledged batches and %" PRIu64 " refused ones checked, %" PRIu64
                " in flight at the kill (%" PRIu64 " of them applied whole, the rest not at "
                "all; %" PRIu64 " recoveries took back a batch cut short), 0 lost, 0 half "
                "applied, %.1f s",
                what, (uint64_t)trials, killed_n, cnt.batches_acked, cnt.failed_acked,
                cnt.uncertain, cnt.uncertain_applied, cnt.cut, (double)(tu_now_ns() - t0) / 1e9);
}

Test(crash, batches_sigkill_are_all_or_nothing)
{
    bt_crash_trials("batches", crash_trials(CRASH_TRIALS_DEFAULT), false);
}

Test(crash, batches_sigkill_during_concurrent_snapshots)
{
    bt_crash_trials("batches+snapshots", snapshot_trials(), true);
}

/* ---- 6. idempotent retries ------------------------------------------------------------ */

/* Threads adjust one shared level with a request id each (thread, seq);
 * the child is killed at a random moment. Then every id it tried —
 * acknowledged, refused or in flight — is retried on the recovered engine,
 * as a client retries after a timeout: each must apply exactly once in
 * all (the level ends at the start plus every delta), and an acknowledged
 * one must answer its first reply (the same revision). */
#define ID_THREADS 4
#define ID_STOCK 1000000
#define ID_SEQ_MAX 1000000

static uint64_t id_item(void)
{
    return tu_item_id(0);
}

static void id_line(int64_t delta, inv_batch_line *l)
{
    *l = (inv_batch_line){.op = INV_BATCH_LEVEL_ADJUST,
                          .item = id_item(),
                          .location = tu_loc_id(0),
                          .qty = delta,
                          .floor = INV_NO_FLOOR,
                          .reason = INV_REASON_CORRECTION};
}

static size_t id_name(char *buf, size_t cap, unsigned t, uint32_t seq)
{
    return (size_t)snprintf(buf, cap, "req-%u-%u", t, seq);
}

static int64_t id_delta(unsigned t, uint32_t seq)
{
    return (int64_t)((seq * 7u + t) % 9) - 3; /* -3..5, deterministic per id */
}

static void id_worker(child_ctx *c, unsigned t)
{
    if (t == 0) {
        inv_level lv;
        int rc = inv_level_set(c->e, id_item(), tu_loc_id(0), ID_STOCK, 0, &lv);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
    }
    pthread_barrier_wait(&c->setup_done);
    for (uint32_t seq = 1; seq < ID_SEQ_MAX && tu_now_ns() < c->stop_ns; seq++) {
        char id[32];
        size_t len = id_name(id, sizeof id, t, seq);
        inv_batch_line l;
        id_line(id_delta(t, seq), &l);
        crash_rec rec = {.kind = REC_IDEM_TRY, .thread = (uint8_t)t, .seq = seq};
        rec_send(c->fd, &rec);
        inv_batch_opts o = {id, len};
        inv_batch_result res;
        int rc = inv_batch_ex(c->e, &l, 1, &o, &res, NULL);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
        rec.kind = REC_IDEM_DONE;
        rec.rc = rc;
        rec.available = res.level.available;
        rec.revision = res.level.revision;
        rec_send(c->fd, &rec);
    }
}

static void id_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    bool snapshots = *(const bool *)arg;
    inv_engine *e = child_open(dir, fd);
    child_catalog(e, fd, 1, 1);
    static child_ctx c;
    c = (child_ctx){.e = e,
                    .fd = fd,
                    .seed = seed,
                    .stop_ns = tu_now_ns() + CHILD_WORK_MS * 1000000ull,
                    .n_workers = ID_THREADS,
                    .worker = id_worker};
    child_run(&c, snapshots);
}

typedef struct {
    uint64_t tried, acked, in_flight;
} id_counts;

static void id_verify_trial(const trial_id *id, const rec_log *log, void *ctx)
{
    id_counts *cnt = ctx;
    if (!log_has(log, REC_READY, NULL))
        return;
    inv_engine *e = NULL;
    char msg[4096];
    int rc = open_dir(id->dir, false, &e, msg, sizeof msg);
    cr_assert_eq(rc, INV_OK, TRIAL_FMT "recovery failed: %s", TRIAL_ARGS(id), msg);
    int64_t want = ID_STOCK;
    for (size_t i = 0; i < log->n; i++) {
        const crash_rec *r = &log->v[i];
        if (r->kind != REC_IDEM_TRY)
            continue;
        const crash_rec *done = NULL;
        for (size_t k = i + 1; k < log->n && !done; k++)
            if (log->v[k].kind == REC_IDEM_DONE && log->v[k].thread == r->thread &&
                log->v[k].seq == r->seq)
                done = &log->v[k];
        char rid[32];
        size_t len = id_name(rid, sizeof rid, r->thread, r->seq);
        inv_batch_line l;
        id_line(id_delta(r->thread, r->seq), &l);
        inv_batch_opts o = {rid, len};
        inv_batch_result res;
        int rrc = inv_batch_ex(e, &l, 1, &o, &res, NULL);
        cr_assert_eq(rrc, INV_OK, TRIAL_FMT "retry of %s: %s", TRIAL_ARGS(id), rid,
                     inv_strerror(rrc));
        if (done) {
            cr_assert_eq(res.level.revision, done->revision,
                         TRIAL_FMT "the retry of acknowledged %s did not answer its first reply",
                         TRIAL_ARGS(id), rid);
            cnt->acked++;
        } else {
            cnt->in_flight++;
        }
        want += id_delta(r->thread, r->seq);
        cnt->tried++;
    }
    inv_level lv;
    cr_assert_eq(inv_level_get(e, id_item(), tu_loc_id(0), &lv), INV_OK);
    cr_assert_eq(lv.available, want,
                 TRIAL_FMT "after retrying every id: %" PRId64 ", every id applied once would be "
                           "%" PRId64,
                 TRIAL_ARGS(id), lv.available, want);
    inv_close(e);
}

static void id_crash_trials(const char *what, uint64_t trials, bool snapshots)
{
    id_counts cnt = {0};
    uint64_t t0 = tu_now_ns();
    uint64_t killed_n =
        run_kill_trials(what, trials, 0xc2b2ae35ull, id_child, &snapshots, id_verify_trial, &cnt);
    cr_log_info("%s: %" PRIu64 " trials (%" PRIu64 " killed), %" PRIu64 " request ids retried "
                "after recovery (%" PRIu64 " acknowledged, %" PRIu64 " in flight at the kill), "
                "each applied exactly once, %.1f s",
                what, (uint64_t)trials, killed_n, cnt.tried, cnt.acked, cnt.in_flight,
                (double)(tu_now_ns() - t0) / 1e9);
}

Test(crash, idempotent_retries_after_sigkill_apply_each_request_once)
{
    id_crash_trials("request ids", crash_trials(CRASH_TRIALS_DEFAULT), false);
}

Test(crash, idempotent_retries_after_sigkill_during_concurrent_snapshots)
{
    id_crash_trials("request ids+snapshots", snapshot_trials(), true);
}

/* ---- 7. tenants ------------------------------------------------------------------------ */

/* Threads create tenants, write a level in each (its quantity the
 * tenant's number) and drop half of them again, until the kill. After it,
 * on the reopened set: an acknowledged create whose drop never started is
 * there, with its acknowledged level; an acknowledged drop is gone; one in
 * flight at the kill is either; no tenant exists that was never tried; and
 * no dropped tenant's directory is left behind. */
#define TN_THREADS 3
#define TN_OP_CREATE 1
#define TN_OP_DROP 2
#define TN_SEQ_MAX 4096 /* tenants one thread tries, at most */
#define TN_TRIALS_DIVISOR 5 /* of the other scenarios' trials */
#define TN_SETUP 2 /* tenants per thread made (and every second dropped) before READY */

static void tn_name(char *out, size_t cap, unsigned t, uint32_t seq)
{
    snprintf(out, cap, "t%u-%" PRIu32, t, seq);
}

typedef struct {
    inv_tenants *ts;
    int fd;
    uint64_t seed, stop_ns;
} tn_ctx;

typedef struct {
    tn_ctx *c;
    unsigned t;
} tn_arg;

static void tn_send(int fd, uint8_t kind, unsigned t, uint32_t seq, uint8_t op, int rc)
{
    crash_rec r = {.kind = kind, .thread = (uint8_t)t, .seq = seq, .op = op, .rc = rc};
    rec_send(fd, &r);
}

/* One tenant's life in the child: create, a level, a drop when drop. */
static void tn_one(tn_ctx *c, unsigned t, uint32_t seq, bool drop)
{
    char name[32];
    tn_name(name, sizeof name, t, seq);
    tn_send(c->fd, REC_TENANT_TRY, t, seq, TN_OP_CREATE, 0);
    int rc = inv_tenant_create(c->ts, name, strlen(name));
    tn_send(c->fd, REC_TENANT_DONE, t, seq, TN_OP_CREATE, rc);
    CHILD_CHECK(c->fd, rc == INV_OK, rc);
    if (rc != INV_OK)
        return;
    inv_tenant *tn = NULL;
    rc = inv_tenant_get(c->ts, name, strlen(name), &tn);
    CHILD_CHECK(c->fd, rc == INV_OK, rc);
    if (rc != INV_OK)
        return;
    inv_engine *e = inv_tenant_engine(tn);
    rc = inv_location_put(e, tu_loc_id(0), NULL);
    if (rc == INV_OK)
        rc = inv_item_put(e, tu_item_id(0), NULL);
    if (rc == INV_OK)
        rc = inv_level_set(e, tu_item_id(0), tu_loc_id(0), (int64_t)seq, 0, NULL);
    CHILD_CHECK(c->fd, rc == INV_OK, rc);
    if (rc == INV_OK)
        tn_send(c->fd, REC_TENANT_LEVEL, t, seq, 0, 0);
    inv_tenant_put(tn);
    if (drop) {
        tn_send(c->fd, REC_TENANT_TRY, t, seq, TN_OP_DROP, 0);
        rc = inv_tenant_drop(c->ts, name, strlen(name), false);
        tn_send(c->fd, REC_TENANT_DONE, t, seq, TN_OP_DROP, rc);
        CHILD_CHECK(c->fd, rc == INV_OK, rc);
    }
}

static void *tn_worker(void *p)
{
    tn_arg *a = p;
    tu_rng r = tu_rng_seed(a->c->seed * 2246822519ull + a->t);
    for (uint32_t seq = TN_SETUP + 1; seq <= TN_SEQ_MAX && tu_now_ns() < a->c->stop_ns; seq++)
        tn_one(a->c, a->t, seq, tu_rng_below(&r, 2) == 0);
    return NULL;
}

static int tn_open(const char *dir, inv_tenants **out)
{
    inv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_ALWAYS;
    return inv_tenants_open(out, &cfg, NULL);
}

static void tn_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    (void)arg;
    tn_ctx c = {NULL, fd, seed, tu_now_ns() + (uint64_t)CHILD_WORK_MS * 1000000ull};
    int rc = tn_open(dir, &c.ts);
    if (rc != INV_OK) {
        send_fail(fd, __LINE__, rc);
        _exit(3);
    }
    /* acknowledged before the kill can come: creates, levels and drops */
    for (unsigned t = 0; t < TN_THREADS; t++)
        for (uint32_t seq = 1; seq <= TN_SETUP; seq++)
            tn_one(&c, t, seq, seq % 2 == 0);
    send_simple(fd, REC_READY, 255, 0);
    pthread_t th[TN_THREADS];
    tn_arg args[TN_THREADS];
    for (unsigned t = 0; t < TN_THREADS; t++) {
        args[t] = (tn_arg){&c, t};
        if (pthread_create(&th[t], NULL, tn_worker, &args[t]) != 0)
            _exit(3);
    }
    for (unsigned t = 0; t < TN_THREADS; t++)
        pthread_join(th[t], NULL);
    inv_tenants_close(c.ts);
    _exit(0);
}

/* What the log says of one (thread, seq): each op tried / acknowledged. */
typedef struct {
    bool create_try, create_ok, level_ok, drop_try, drop_ok;
} tn_fate;

typedef struct {
    uint64_t tenants_tried, creates_acked, drops_acked, in_flight, levels_checked;
} tn_counts;

static int tn_count_one(void *arg, inv_tenant *t)
{
    (void)t;
    (*(size_t *)arg)++;
    return 0;
}

static void tn_verify(const trial_id *id, const rec_log *log, void *ctx)
{
    tn_counts *cnt = ctx;
    static tn_fate fate[TN_THREADS][TN_SEQ_MAX + 1];
    memset(fate, 0, sizeof fate);
    for (size_t i = 0; i < log->n; i++) {
        const crash_rec *r = &log->v[i];
        if (r->kind < REC_TENANT_TRY || r->kind > REC_TENANT_LEVEL)
            continue;
        cr_assert(r->thread < TN_THREADS && r->seq >= 1 && r->seq <= TN_SEQ_MAX,
                  TRIAL_FMT "bad record", TRIAL_ARGS(id));
        tn_fate *f = &fate[r->thread][r->seq];
        if (r->kind == REC_TENANT_LEVEL)
            f->level_ok = true;
        else if (r->op == TN_OP_CREATE)
            *(r->kind == REC_TENANT_TRY ? &f->create_try : &f->create_ok) |=
                r->kind == REC_TENANT_TRY || r->rc == INV_OK;
        else
            *(r->kind == REC_TENANT_TRY ? &f->drop_try : &f->drop_ok) |=
                r->kind == REC_TENANT_TRY || r->rc == INV_OK;
    }
    inv_tenants *ts = NULL;
    int rc = tn_open(id->dir, &ts);
    cr_assert_eq(rc, INV_OK, TRIAL_FMT "reopen: %s", TRIAL_ARGS(id), inv_strerror(rc));
    size_t expected_max = 1, live = 0; /* the default tenant */
    for (unsigned t = 0; t < TN_THREADS; t++) {
        for (uint32_t seq = 1; seq <= TN_SEQ_MAX; seq++) {
            const tn_fate *f = &fate[t][seq];
            if (!f->create_try)
                continue;
            char name[32];
            tn_name(name, sizeof name, t, seq);
            inv_tenant *tn = NULL;
            bool there = inv_tenant_get(ts, name, strlen(name), &tn) == INV_OK;
            cnt->tenants_tried++;
            cnt->creates_acked += f->create_ok;
            cnt->drops_acked += f->drop_ok;
            cnt->in_flight += (!f->create_ok) || (f->drop_try && !f->drop_ok);
            expected_max++;
            live += there;
            if (f->drop_ok)
                cr_assert(!there, TRIAL_FMT "%s: dropped (acknowledged) but back", TRIAL_ARGS(id),
                          name);
            else if (f->create_ok && !f->drop_try)
                cr_assert(there, TRIAL_FMT "%s: created (acknowledged) but lost", TRIAL_ARGS(id),
                          name);
            if (there && f->level_ok) {
                inv_level lv;
                rc = inv_level_get(inv_tenant_engine(tn), tu_item_id(0), tu_loc_id(0), &lv);
                cr_assert(rc == INV_OK && lv.available == (int64_t)seq,
                          TRIAL_FMT "%s: level lost (rc %d, available %" PRId64 ")", TRIAL_ARGS(id),
                          name, rc, rc == INV_OK ? lv.available : -1);
                cnt->levels_checked++;
            }
            inv_tenant_put(tn);
        }
    }
    size_t n = 0;
    (void)inv_tenants_each(ts, tn_count_one, &n);
    cr_assert_eq(n, live + 1, TRIAL_FMT "%zu tenants open, %zu expected (stray tenants)",
                 TRIAL_ARGS(id), n, live + 1);
    cr_assert_leq(n, expected_max);
    inv_tenants_close(ts);
    /* no dropped tenant's directory is left after an open */
    char tdir[128];
    snprintf(tdir, sizeof tdir, "%s/tenants", id->dir);
    DIR *d = opendir(tdir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            cr_assert(strncmp(de->d_name, ".dropped", 8) != 0, TRIAL_FMT "%s left in %s",
                      TRIAL_ARGS(id), de->d_name, tdir);
        closedir(d);
    }
}

Test(crash, tenants_sigkill_keeps_acknowledged_creates_and_drops)
{
    tn_counts cnt = {0};
    uint64_t t0 = tu_now_ns();
    /* a trial makes a few tenants (each a directory, a journal and their
     * fsyncs: tens of ms) before the kill can come: a fifth of the trials */
    uint64_t trials = crash_trials(CRASH_TRIALS_DEFAULT) / TN_TRIALS_DIVISOR;
    if (trials < CRASH_TRIALS_MIN)
        trials = CRASH_TRIALS_MIN;
    uint64_t killed_n =
        run_kill_trials("tenants", trials, 0xc2b2ae35ull, tn_child, NULL, tn_verify, &cnt);
    cr_log_info("tenants: %" PRIu64 " trials (%" PRIu64 " killed), %" PRIu64
                " tenants tried, %" PRIu64 " creates and %" PRIu64 " drops acknowledged, %" PRIu64
                " in flight at the kill, %" PRIu64 " acknowledged levels checked, 0 lost, %.1f s",
                trials, killed_n, cnt.tenants_tried, cnt.creates_acked, cnt.drops_acked,
                cnt.in_flight, cnt.levels_checked, (double)(tu_now_ns() - t0) / 1e9);
}

/* ---- 8. revisions never repeat across a crash (issue 17, #12) ---------------- */

/* A child sets and adjusts a few levels with deferred durability (a call
 * returns once applied, so many changes are in flight, not yet durable, at
 * the kill) and reports every revision it was given. After the restart
 * each level is changed once; then an IFREV write with any revision the
 * child read must be refused: a revision of a change lost in the crash,
 * handed out again, would let it overwrite the change made after the
 * restart (the lost update of the issue: 10 of 30 SIGKILLs before). */
#define RV_ITEMS 2
#define RV_LOCS 2
#define RV_LEVELS (RV_ITEMS * RV_LOCS)
#define RV_BUMP 1000

static void rv_child(const char *dir, int fd, uint64_t seed, const void *arg)
{
    (void)arg;
    inv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.data_dir = dir;
    cfg.fsync_policy = INV_FSYNC_ALWAYS;
    cfg.defer_durability = true; /* revisions are read before they are durable */
    inv_engine *e = NULL;
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK) {
        send_fail(fd, __LINE__, rc);
        _exit(3);
    }
    child_catalog(e, fd, RV_ITEMS, RV_LOCS);
    for (uint32_t l = 0; l < RV_LEVELS; l++) {
        inv_level lv;
        rc = inv_level_set(e, tu_item_id(l / RV_LOCS), tu_loc_id(l % RV_LOCS), 50, 0, &lv);
        CHILD_CHECK(fd, rc == INV_OK, rc);
    }
    send_simple(fd, REC_READY, 255, 0);
    tu_rng r = tu_rng_seed(seed);
    uint64_t stop = tu_now_ns() + (uint64_t)CHILD_WORK_MS * 1000000ull;
    for (uint32_t seq = 0; tu_now_ns() < stop; seq++) {
        uint32_t l = (uint32_t)tu_rng_below(&r, RV_LEVELS);
        uint64_t item = tu_item_id(l / RV_LOCS), loc = tu_loc_id(l % RV_LOCS);
        inv_level lv;
        if (tu_rng_below(&r, 4) == 0)
            rc = inv_level_set(e, item, loc, (int64_t)tu_rng_below(&r, 100), 0, &lv);
        else
            rc = inv_level_adjust(e, item, loc, 1, INV_NO_FLOOR, &lv);
        CHILD_CHECK(fd, rc == INV_OK, rc);
        if (rc == INV_OK)
            send_level(fd, REC_LEVEL, 0, seq, l, 0, rc, &lv);
    }
    _exit(0);
}

typedef struct {
    uint64_t revisions_checked, lost_revisions, trials_with_loss;
} rv_counts;

static void rv_verify(const trial_id *id, const rec_log *log, void *ctx)
{
    rv_counts *cnt = ctx;
    inv_engine *e;
    char msg[4096];
    int rc = open_dir(id->dir, false, &e, msg, sizeof msg);
    cr_assert_eq(rc, INV_OK, "%s trial %zu (seed %" PRIu64 "): open: %s\n%s", id->what, id->trial,
                 id->seed, inv_strerror(rc), msg);
    /* the child's catalog was not durable either (deferred durability):
     * put it again (a put of what exists changes nothing that matters) */
    for (size_t j = 0; j < RV_LOCS; j++)
        cr_assert_eq(inv_location_put(e, tu_loc_id(j), NULL), INV_OK);
    for (size_t i = 0; i < RV_ITEMS; i++)
        cr_assert_eq(inv_item_put(e, tu_item_id(i), NULL), INV_OK);
    bool lost = false;
    for (uint32_t l = 0; l < RV_LEVELS; l++) {
        uint64_t item = tu_item_id(l / RV_LOCS), loc = tu_loc_id(l % RV_LOCS);
        inv_level before, after;
        rc = inv_level_get(e, item, loc, &before);
        bool existed = rc == INV_OK;
        cr_assert(rc == INV_OK || rc == INV_ENOTFOUND, "get: %s", inv_strerror(rc));
        /* a change after the restart */
        rc = existed ? inv_level_adjust(e, item, loc, RV_BUMP, INV_NO_FLOOR, &after)
                     : inv_level_set(e, item, loc, RV_BUMP, 0, &after);
        cr_assert_eq(rc, INV_OK, "%s", inv_strerror(rc));
        for (size_t i = 0; i < log->n; i++) {
            const crash_rec *c = &log->v[i];
            if (c->kind != REC_LEVEL || c->level != l)
                continue;
            lost |= existed ? c->revision > before.revision : true;
            cr_assert_gt(after.revision, c->revision,
                         "%s trial %zu (seed %" PRIu64 ", dir %s): level %u changed after the "
                         "restart at revision %" PRIu64 ", not above %" PRIu64
                         " that the child read before the crash",
                         id->what, id->trial, id->seed, id->dir, l, after.revision, c->revision);
            inv_level out;
            rc = inv_level_set(e, item, loc, 7, c->revision, &out);
            cr_assert_eq(rc, INV_ECONFLICT,
                         "%s trial %zu (seed %" PRIu64 "): IFREV %" PRIu64
                         " read before the crash succeeded on level %u changed after it (%s)",
                         id->what, id->trial, id->seed, c->revision, l, inv_strerror(rc));
            cnt->revisions_checked++;
        }
    }
    cnt->trials_with_loss += lost;
    inv_close(e);
}

Test(crash, revisions_read_before_a_sigkill_never_match_after_the_restart)
{
    rv_counts cnt = {0};
    uint64_t t0 = tu_now_ns();
    uint64_t trials = crash_trials(CRASH_TRIALS_DEFAULT);
    uint64_t killed_n =
        run_kill_trials("revisions", trials, 0x27d4eb2full, rv_child, NULL, rv_verify, &cnt);
    cr_log_info("revisions: %" PRIu64 " trials (%" PRIu64 " killed, %" PRIu64
                " lost changes the child had read), %" PRIu64
                " pre-crash revisions refused by IFREV after the restart, %.1f s",
                trials, killed_n, cnt.trials_with_loss, cnt.revisions_checked,
                (double)(tu_now_ns() - t0) / 1e9);
}
