/*
 * test_powerloss.c — nothing acknowledged is lost to a power loss, and
 * recovery never refuses to open (issue 17, build item 4; defects 4 and 6).
 *
 * Each trial forks a child that runs the engine on root/data (fsync ALWAYS,
 * no deferred durability): PL_THREADS workers set, adjust (with and without
 * a floor), create holds and commit or release them on a few hot levels,
 * and a thread takes snapshots every few ms. The child records every file
 * system call of the engine into a shared log (powerloss.h) and, after each
 * call that returned INV_OK, the change it acknowledged into shared memory
 * (pl_shared), with how far the file-system log was at that moment. The
 * parent SIGKILLs it at a random moment (in one trial of four, before the
 * setup was acknowledged), then builds PL_IMAGES "disks after a power loss"
 * from the log, each in a fresh directory (powerloss.h): at the kill, with
 * every unsynced write kept, none, an in-order prefix, or random 4 KiB pages
 * with torn sectors (names not covered by a sync of their directory lost
 * likewise); and random pages at an earlier crash point, just after
 * a write that spans pages (the history up to there is real: acknowledged
 * changes after it are not looked for). Each image is opened with inv_open
 * and checked:
 *  - inv_open succeeds (a refusal counts, with its message);
 *  - every acknowledged location and item exists; every level's revision
 *    is at least its last acknowledged one, with the acknowledged state when
 *    equal; every acknowledged hold exists, every acknowledged commit or
 *    release shows; reserved on each level equals the units of the live
 *    holds on it (units conserved).
 * Failures are counted over all images, and the test fails at the end with
 * the counts (trials, acknowledged changes, images, lost, refused, by mode)
 * and the first messages, so one run measures the whole picture.
 *
 * Two tests: a data directory made (and synced) before the engine starts,
 * and a fresh one the engine creates itself (defect 6: unless the engine
 * syncs its parent, the whole directory can vanish).
 *
 * Trials: INVCORE_POWERLOSS_TRIALS (default PL_TRIALS_DEFAULT; make
 * crash-test uses 1000), half of it for the fresh directory, divided by
 * INVCORE_STRESS_SCALE, at least PL_TRIALS_MIN; images per trial divided by
 * it too (at least PL_IMAGES_MIN). INVCORE_POWERLOSS_KEEP=dir keeps every
 * failed image there, with the log and the acknowledgements as text
 * (keep_failed_image). Fork safety as in test_crash.c: the test process never has
 * an engine open when it forks; a child dies with its parent and stops by
 * itself after PL_CHILD_WORK_MS.
 */
#include "powerloss.h"

#include <assert.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* ---- parameters ---------------------------------------------------------- */

#define PL_TRIALS_DEFAULT 50
#define PL_TRIALS_MIN 8 /* under sanitizers */
#define PL_FRESH_DIVISOR 2 /* the fresh-directory test runs half as many */
#define PL_ITEMS 3
#define PL_LOCS 3
#define PL_LEVELS (PL_ITEMS * PL_LOCS)
#define PL_HOT 3 /* half the picks go to the first PL_HOT levels */
#define PL_THREADS 8
#define PL_STOCK 1000 /* every level starts with this many available */
#define PL_HOLD_QTY_MAX 3
#define PL_HOLD_LINES 4 /* lines of a hold, at most */
#define PL_HOLD_TTL_MS 600000 /* no hold expires during a trial */
#define PL_OWN_HOLDS_MAX 256 /* live holds one worker keeps to end later */
#define PL_HOLDS_PER_THREAD_MAX (1u << 20) /* hold ids a worker may use */
#define PL_ACKS_MAX (1u << 18) /* acknowledged changes one trial may report */
#define PL_CHILD_WORK_MS 3000 /* a child stops working by itself after this */
#define PL_READY_TIMEOUT_MS 15000
#define PL_KILL_MS_MAX 60 /* kill 1 .. this ms after the setup was acknowledged */
#define PL_EARLY_KILL_MS_MAX 25 /* early trials: kill this soon after fork */
#define PL_SNAPSHOT_MS_MIN 3
#define PL_SNAPSHOT_MS_MAX 12
#define PL_IMAGES 5 /* disks after the power loss checked per trial: 4 modes, 1 cut */
#define PL_IMAGES_MIN 2 /* under sanitizers (an image's recovery costs ~0.3 s under TSan) */
#define PL_IMAGE_DIR "/dev/shm" /* where disk images go when it is a tmpfs */
#define PL_MSGS 4 /* failure messages kept for the report */
#define PL_MSG_MAX 600
#define PL_OPEN_MSG_MAX 4096

/* ---- what the child acknowledged (shared memory) --------------------------- */

enum {
    ACK_LOC = 1, /* index: location */
    ACK_ITEM, /* index: item */
    ACK_LEVEL, /* index: level; the level the call returned */
    ACK_HOLD, /* thread, seq: hold created */
    ACK_COMMIT, /* thread, seq: hold committed */
    ACK_RELEASE, /* thread, seq: hold released */
};

typedef struct {
    _Atomic uint32_t ready; /* 1 once whole */
    uint8_t kind, thread;
    uint16_t index;
    uint32_t seq;
    int64_t available, reserved;
    uint64_t revision;
    uint64_t events; /* pl_log_now after the call returned */
} pl_ack;

typedef struct {
    _Atomic int setup_done;
    _Atomic uint32_t hold_tries[PL_THREADS]; /* hold ids seq < this may exist */
    _Atomic uint64_t n_acks;
    _Atomic int child_failed; /* an unexpected return code: line, rc */
    int fail_line, fail_rc;
    pl_ack acks[PL_ACKS_MAX];
} pl_shared;

static uint64_t pl_item(uint32_t level)
{
    return tu_item_id(level / PL_LOCS);
}
static uint64_t pl_loc(uint32_t level)
{
    return tu_loc_id(level % PL_LOCS);
}

static void pl_hold_id(char *out, size_t cap, unsigned thread, uint32_t seq)
{
    snprintf(out, cap, "pl%u-%08" PRIu32, thread, seq);
}

/* ---- the child --------------------------------------------------------------- */

static pl_log *child_log; /* the child's log (set before its threads start) */

static void child_ack(pl_shared *sh, uint8_t kind, unsigned thread, uint32_t index, uint32_t seq,
                      const inv_level *lv)
{
    uint64_t events = pl_log_now(child_log);
    /* relaxed: a unique slot; the entry's ready flag publishes it. */
    uint64_t i = atomic_fetch_add_explicit(&sh->n_acks, 1, memory_order_relaxed);
    if (i >= PL_ACKS_MAX)
        _exit(0); /* the parent treats it as a crash at this point */
    pl_ack *a = &sh->acks[i];
    assert(kind >= ACK_LOC && kind <= ACK_RELEASE && thread < PL_THREADS);
    a->kind = kind;
    a->thread = (uint8_t)thread;
    a->index = (uint16_t)index;
    a->seq = seq;
    a->events = events;
    if (lv) {
        a->available = lv->available;
        a->reserved = lv->reserved;
        a->revision = lv->revision;
    }
    /* release: the entry is whole before the flag (the parent reads after
     * the child died; a kill mid-entry leaves the flag 0). */
    atomic_store_explicit(&a->ready, 1, memory_order_release);
}

static void child_fail(pl_shared *sh, int line, int rc)
{
    int expected = 0;
    /* relaxed: the parent reads after reaping the child. */
    if (atomic_compare_exchange_strong_explicit(&sh->child_failed, &expected, 1,
                                                memory_order_relaxed, memory_order_relaxed)) {
        sh->fail_line = line;
        sh->fail_rc = rc;
    }
    _exit(3);
}

#define CHILD_EXPECT(sh, cond, rc)                 \
    do {                                           \
        if (!(cond))                               \
            child_fail((sh), __LINE__, (int)(rc)); \
    } while (0)

typedef struct {
    inv_engine *e;
    pl_shared *sh;
    uint64_t seed, stop_ns;
    _Atomic int stop;
} child_ctx;

typedef struct {
    uint32_t seq[PL_OWN_HOLDS_MAX];
    size_t n;
} own_holds;

static uint32_t pick_level(tu_rng *r)
{
    _Static_assert(PL_HOT <= PL_LEVELS, "hot levels are levels");
    return (uint32_t)(tu_rng_below(r, 2) ? tu_rng_below(r, PL_HOT) : tu_rng_below(r, PL_LEVELS));
}

static void child_hold_create(child_ctx *c, unsigned t, tu_rng *r, own_holds *own)
{
    inv_hold_line lines[PL_HOLD_LINES];
    size_t n = 1 + (size_t)tu_rng_below(r, PL_HOLD_LINES);
    uint32_t first = pick_level(r);
    for (size_t k = 0; k < n; k++) {
        uint32_t lv = (uint32_t)((first + k * 2) % PL_LEVELS); /* distinct levels */
        lines[k] = (inv_hold_line){pl_item(lv), pl_loc(lv), tu_rng_range(r, 1, PL_HOLD_QTY_MAX)};
    }
    /* relaxed: the parent reads it after reaping the child; bumped before
     * the call so any hold that may exist has seq below it. */
    uint32_t seq = atomic_fetch_add_explicit(&c->sh->hold_tries[t], 1, memory_order_relaxed);
    if (seq >= PL_HOLDS_PER_THREAD_MAX)
        _exit(0);
    char id[32];
    pl_hold_id(id, sizeof id, t, seq);
    int rc = inv_hold_create(c->e, id, strlen(id), PL_HOLD_TTL_MS, lines, n, NULL);
    CHILD_EXPECT(c->sh, rc == INV_OK || rc == INV_EINSUFFICIENT, rc);
    if (rc != INV_OK)
        return;
    child_ack(c->sh, ACK_HOLD, t, 0, seq, NULL);
    if (own->n < PL_OWN_HOLDS_MAX)
        own->seq[own->n++] = seq;
}

static void child_hold_end(child_ctx *c, unsigned t, tu_rng *r, own_holds *own)
{
    if (own->n == 0)
        return;
    size_t k = (size_t)tu_rng_below(r, own->n);
    uint32_t seq = own->seq[k];
    own->seq[k] = own->seq[--own->n];
    char id[32];
    pl_hold_id(id, sizeof id, t, seq);
    bool commit = tu_rng_below(r, 2) == 0;
    int rc =
        commit ? inv_hold_commit(c->e, id, strlen(id)) : inv_hold_release(c->e, id, strlen(id));
    CHILD_EXPECT(c->sh, rc == INV_OK, rc);
    child_ack(c->sh, commit ? ACK_COMMIT : ACK_RELEASE, t, 0, seq, NULL);
}

typedef struct {
    child_ctx *c;
    unsigned t; /* the worker's number: its hold ids and random stream */
} worker_arg;

static void *child_worker(void *p)
{
    child_ctx *c = ((worker_arg *)p)->c;
    unsigned t = ((worker_arg *)p)->t;
    assert(t < PL_THREADS);
    tu_rng r = tu_rng_seed(c->seed * 31 + t);
    own_holds own = {.n = 0};
    while (tu_now_ns() < c->stop_ns) {
        uint32_t lv = pick_level(&r);
        uint64_t op = tu_rng_below(&r, 10);
        inv_level out;
        int rc;
        if (op < 3) {
            rc = inv_level_set(c->e, pl_item(lv), pl_loc(lv), tu_rng_range(&r, 0, PL_STOCK), 0,
                               &out);
            CHILD_EXPECT(c->sh, rc == INV_OK, rc);
        } else if (op < 6) {
            int64_t d = tu_rng_range(&r, -3, 3);
            bool floored = tu_rng_below(&r, 2) == 0;
            rc = inv_level_adjust(c->e, pl_item(lv), pl_loc(lv), d ? d : 1,
                                  floored ? 0 : INV_NO_FLOOR, &out);
            CHILD_EXPECT(c->sh, rc == INV_OK || rc == INV_EINSUFFICIENT, rc);
        } else if (op < 8) {
            child_hold_create(c, t, &r, &own);
            continue;
        } else {
            child_hold_end(c, t, &r, &own);
            continue;
        }
        if (rc == INV_OK)
            child_ack(c->sh, ACK_LEVEL, t, lv, 0, &out);
    }
    return NULL;
}

static void *child_snapshots(void *p)
{
    child_ctx *c = p;
    tu_rng r = tu_rng_seed(c->seed ^ 0x5a5a5a5aull);
    /* relaxed: a stop flag; nothing is published through it. */
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed) && tu_now_ns() < c->stop_ns) {
        tu_sleep_ms((unsigned)tu_rng_range(&r, PL_SNAPSHOT_MS_MIN, PL_SNAPSHOT_MS_MAX));
        int rc = inv_snapshot(c->e);
        CHILD_EXPECT(c->sh, rc == INV_OK, rc);
    }
    return NULL;
}

/* The catalog and every level at PL_STOCK, each acknowledged as it returns. */
static void child_setup(inv_engine *e, pl_shared *sh)
{
    for (uint32_t j = 0; j < PL_LOCS; j++) {
        int rc = inv_location_put(e, tu_loc_id(j), NULL);
        CHILD_EXPECT(sh, rc == INV_OK, rc);
        child_ack(sh, ACK_LOC, 0, j, 0, NULL);
    }
    for (uint32_t i = 0; i < PL_ITEMS; i++) {
        int rc = inv_item_put(e, tu_item_id(i), NULL);
        CHILD_EXPECT(sh, rc == INV_OK, rc);
        child_ack(sh, ACK_ITEM, 0, i, 0, NULL);
    }
    for (uint32_t lv = 0; lv < PL_LEVELS; lv++) {
        inv_level out;
        int rc = inv_level_set(e, pl_item(lv), pl_loc(lv), PL_STOCK, 0, &out);
        CHILD_EXPECT(sh, rc == INV_OK, rc);
        child_ack(sh, ACK_LEVEL, 0, lv, 0, &out);
    }
    /* release: the parent may start its kill timer (it reads nothing else
     * through the flag). */
    atomic_store_explicit(&sh->setup_done, 1, memory_order_release);
}

/* Never returns. */
static void child_main(pl_log *log, pl_shared *sh, const char *data_dir, uint64_t seed)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    child_log = log;
    pl_child_arm(log);
    inv_config cfg = {.data_dir = data_dir, .fsync_policy = INV_FSYNC_ALWAYS};
    inv_engine *e = NULL;
    int rc = inv_open(&e, &cfg);
    CHILD_EXPECT(sh, rc == INV_OK, rc);
    child_setup(e, sh);
    child_ctx c = {.e = e, .sh = sh, .seed = seed, .stop_ns = tu_deadline_ms(PL_CHILD_WORK_MS)};
    pthread_t tids[PL_THREADS], snap;
    worker_arg args[PL_THREADS];
    for (unsigned t = 0; t < PL_THREADS; t++) {
        args[t] = (worker_arg){&c, t};
        CHILD_EXPECT(sh, pthread_create(&tids[t], NULL, child_worker, &args[t]) == 0, -errno);
    }
    CHILD_EXPECT(sh, pthread_create(&snap, NULL, child_snapshots, &c) == 0, -errno);
    for (unsigned t = 0; t < PL_THREADS; t++)
        pthread_join(tids[t], NULL);
    /* relaxed: a stop flag. */
    atomic_store_explicit(&c.stop, 1, memory_order_relaxed);
    pthread_join(snap, NULL);
    _exit(0); /* the parent normally kills us long before */
}

/* ---- the parent: counting what survived ---------------------------------------- */

typedef struct {
    uint64_t trials, acks; /* children killed, changes they acknowledged */
    uint64_t images, checked, lost, refused, unconserved, failed_images; /* disks checked */
    uint64_t events, writes_unsynced, pieces_dropped, pieces_torn, names_dropped;
    uint64_t refused_by_mode[PL_KEEP_MODES], lost_images_by_mode[PL_KEEP_MODES];
    uint64_t images_by_mode[PL_KEEP_MODES];
    uint64_t refused_zero_hole, refused_checksum; /* refusals naming either */
    uint64_t data_dir_gone; /* images whose data directory vanished */
    uint64_t lost_with_dir_gone; /* images that lost changes and the data directory */
    uint64_t early_crash_points; /* images cut just after a write spanning pages */
    uint64_t child_ms, images_ms; /* time running children, building and checking images */
    size_t n_msgs[2]; /* [0] refusals, [1] everything else */
    char msgs[2][PL_MSGS][PL_MSG_MAX];
    unsigned last_noted_trial[2]; /* one message per trial and kind: the first */
} pl_totals;

/* Keeps the first message of a trial per kind (0: refusals, 1: the rest),
 * PL_MSGS of each at most. */
static void note_kind(pl_totals *tot, int kind, unsigned trial, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note_kind(pl_totals *tot, int kind, unsigned trial, const char *fmt, ...)
{
    assert(kind == 0 || kind == 1);
    if (tot->n_msgs[kind] >= PL_MSGS ||
        (tot->n_msgs[kind] > 0 && tot->last_noted_trial[kind] == trial))
        return;
    tot->last_noted_trial[kind] = trial;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tot->msgs[kind][tot->n_msgs[kind]++], PL_MSG_MAX, fmt, ap);
    va_end(ap);
}

/* The engine's messages during the checks (a refusal names the file and
 * offset on stderr) go to one memory file, emptied before each open; the
 * test's own stderr comes back at the end. */
typedef struct {
    int saved; /* the real stderr */
    int mfd;
} stderr_capture;

static stderr_capture capture_begin(void)
{
    fflush(stderr);
    stderr_capture c = {.saved = dup(STDERR_FILENO),
                        .mfd = memfd_create("invcore-powerloss-stderr", MFD_CLOEXEC)};
    cr_assert(c.saved >= 0 && c.mfd >= 0, "capturing stderr: %s", strerror(errno));
    cr_assert(dup2(c.mfd, STDERR_FILENO) >= 0, "dup2: %s", strerror(errno));
    return c;
}

/* Empties the capture (before an open). */
static void capture_clear(stderr_capture *c)
{
    fflush(stderr);
    cr_assert(ftruncate(c->mfd, 0) == 0 && lseek(STDERR_FILENO, 0, SEEK_SET) == 0,
              "resetting the captured stderr: %s", strerror(errno));
}

/* The last non-empty line written since capture_clear (the error a refusal
 * ends with; warnings about unfinished snapshots come before it). */
static void capture_last_line(stderr_capture *c, char *msg, size_t cap)
{
    char buf[PL_OPEN_MSG_MAX];
    fflush(stderr);
    ssize_t n = pread(c->mfd, buf, sizeof buf - 1, 0);
    size_t len = n > 0 ? (size_t)n : 0;
    while (len > 0 && buf[len - 1] == '\n')
        len--;
    buf[len] = '\0';
    const char *line = strrchr(buf, '\n');
    snprintf(msg, cap, "%s", line ? line + 1 : buf);
}

static void capture_end(stderr_capture *c)
{
    fflush(stderr);
    (void)dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    close(c->mfd);
}

typedef struct {
    unsigned trial;
    pl_keep keep;
    uint64_t seed;
    uint64_t end; /* the crash point: log entries that happened */
    uint64_t lost, unconserved, checked; /* checked: acknowledged changes looked for */
} trial_result;

/* Whether ack a is one the disk at crash point end must show: whole, and
 * acknowledged before the crash point (its sync lies below end). */
static bool ack_counts(const pl_ack *a, uint64_t end)
{
    /* acquire: pairs with child_ack's release. */
    return atomic_load_explicit(&a->ready, memory_order_acquire) && a->events <= end;
}

#define TRIAL_FMT "trial %u (keep %s, seed %#" PRIx64 "): "
#define TRIAL_ARGS(r) (r)->trial, pl_keep_name((r)->keep), (r)->seed

/* Locations, items, levels: acknowledged ones present, states as acked. */
static void check_levels(inv_engine *e, const pl_shared *sh, uint64_t n_acks, trial_result *res,
                         pl_totals *tot)
{
    const pl_ack *last[PL_LEVELS] = {0};
    inv_level rec[PL_LEVELS];
    int rec_rc[PL_LEVELS];
    for (uint32_t lv = 0; lv < PL_LEVELS; lv++)
        rec_rc[lv] = inv_level_get(e, pl_item(lv), pl_loc(lv), &rec[lv]);
    for (uint64_t i = 0; i < n_acks; i++) {
        const pl_ack *a = &sh->acks[i];
        if (!ack_counts(a, res->end))
            continue;
        res->checked++;
        bool ok = true;
        if (a->kind == ACK_LOC) {
            inv_location loc;
            ok = inv_location_get(e, tu_loc_id(a->index), &loc) == INV_OK;
        } else if (a->kind == ACK_ITEM) {
            inv_item item;
            ok = inv_item_get(e, tu_item_id(a->index), &item) == INV_OK;
        } else if (a->kind == ACK_LEVEL) {
            ok = rec_rc[a->index] == INV_OK && rec[a->index].revision >= a->revision;
            if (!last[a->index] || last[a->index]->revision < a->revision)
                last[a->index] = a;
        } else {
            continue; /* holds: check_holds */
        }
        if (!ok) {
            res->lost++;
            bool lv = a->kind == ACK_LEVEL;
            note_kind(tot, 1, res->trial,
                      TRIAL_FMT "acknowledged change lost: kind %u index %u revision %" PRIu64
                                " (ack %" PRIu64 ", log entry %" PRIu64 " of %" PRIu64
                                "); recovered: rc %d, revision %" PRIu64,
                      TRIAL_ARGS(res), a->kind, a->index, a->revision, i, a->events, res->end,
                      lv ? rec_rc[a->index] : 0, lv ? rec[a->index].revision : 0);
        }
    }
    for (uint32_t lv = 0; lv < PL_LEVELS; lv++) {
        const pl_ack *a = last[lv];
        if (!a || rec_rc[lv] != INV_OK || rec[lv].revision != a->revision)
            continue;
        /* At one revision, the state recovered is the state acknowledged
         * (a commit's reply counts its sold units: issue 17 item 11). */
        if (rec[lv].available != a->available || rec[lv].reserved != a->reserved) {
            res->lost++;
            note_kind(tot, 1, res->trial,
                      TRIAL_FMT "level %u at acknowledged revision %" PRIu64 ": %" PRId64
                                "/%" PRId64 ", acknowledged %" PRId64 "/%" PRId64,
                      TRIAL_ARGS(res), lv, a->revision, rec[lv].available, rec[lv].reserved,
                      a->available, a->reserved);
        }
    }
}

static uint32_t level_of(uint64_t item, uint64_t loc)
{
    for (uint32_t lv = 0; lv < PL_LEVELS; lv++)
        if (pl_item(lv) == item && pl_loc(lv) == loc)
            return lv;
    return UINT32_MAX;
}

static bool hold_state(inv_engine *e, unsigned t, uint32_t seq, inv_hold_info *info)
{
    char id[32];
    pl_hold_id(id, sizeof id, t, seq);
    int rc = inv_hold_get(e, id, strlen(id), info);
    cr_assert(rc == INV_OK || rc == INV_ENOTFOUND, "hold_get %s: %s", id, inv_strerror(rc));
    return rc == INV_OK;
}

/* Acknowledged holds, commits and releases present; reserved == live holds. */
static void check_holds(inv_engine *e, const pl_shared *sh, uint64_t n_acks, trial_result *res,
                        pl_totals *tot)
{
    inv_hold_info info;
    for (uint64_t i = 0; i < n_acks; i++) {
        const pl_ack *a = &sh->acks[i];
        if (!ack_counts(a, res->end) || a->kind < ACK_HOLD)
            continue;
        res->checked++;
        bool found = hold_state(e, a->thread, a->seq, &info);
        inv_hold_state want = a->kind == ACK_COMMIT    ? INV_HOLD_COMMITTED
                              : a->kind == ACK_RELEASE ? INV_HOLD_RELEASED
                                                       : (inv_hold_state)0;
        bool ok = found && (want == 0 || info.state == want);
        if (!ok) {
            res->lost++;
            note_kind(tot, 1, res->trial,
                      TRIAL_FMT
                      "acknowledged hold change lost: kind %u hold pl%u-%08u (%s, state %d)",
                      TRIAL_ARGS(res), a->kind, a->thread, a->seq, found ? "found" : "missing",
                      found ? (int)info.state : 0);
        }
    }
    int64_t held[PL_LEVELS] = {0};
    for (unsigned t = 0; t < PL_THREADS; t++) {
        /* relaxed: the child is reaped. */
        uint32_t tries = atomic_load_explicit(&sh->hold_tries[t], memory_order_relaxed);
        for (uint32_t s = 0; s < tries; s++) {
            if (!hold_state(e, t, s, &info) || info.state != INV_HOLD_HELD)
                continue;
            for (size_t k = 0; k < info.n_lines; k++) {
                uint32_t lv = level_of(info.lines[k].item, info.lines[k].location);
                cr_assert(lv != UINT32_MAX, "hold pl%u-%08u: a line on an unknown level", t, s);
                held[lv] += info.lines[k].qty;
            }
        }
    }
    for (uint32_t lv = 0; lv < PL_LEVELS; lv++) {
        inv_level l;
        if (inv_level_get(e, pl_item(lv), pl_loc(lv), &l) != INV_OK)
            l.reserved = 0;
        if (l.reserved != held[lv]) {
            res->unconserved++;
            note_kind(tot, 1, res->trial,
                      TRIAL_FMT "level %u: reserved %" PRId64 ", live holds hold %" PRId64,
                      TRIAL_ARGS(res), lv, l.reserved, held[lv]);
        }
    }
}

/* INVCORE_POWERLOSS_TRIALS (default PL_TRIALS_DEFAULT) divided by divisor
 * and by INVCORE_STRESS_SCALE, at least PL_TRIALS_MIN. */
static uint64_t trial_count(uint64_t divisor)
{
    uint64_t n = PL_TRIALS_DEFAULT;
    const char *s = getenv("INVCORE_POWERLOSS_TRIALS");
    if (s && *s) {
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (end != s && *end == '\0' && v > 0)
            n = v;
    }
    return tu_iters_min(n / divisor, PL_TRIALS_MIN);
}

/* Forks the child, kills it at a random moment, reaps it. */
static void run_child(pl_log *log, pl_shared *sh, const char *data_dir, uint64_t seed, tu_rng *r,
                      bool early)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        child_main(log, sh, data_dir, seed);
    if (early) {
        tu_sleep_ms((unsigned)tu_rng_range(r, 0, PL_EARLY_KILL_MS_MAX));
    } else {
        /* the ready flag, bounded; then a random moment of the load */
        uint64_t deadline = tu_deadline_ms(PL_READY_TIMEOUT_MS);
        /* acquire: pairs with child_setup's release. */
        while (!atomic_load_explicit(&sh->setup_done, memory_order_acquire) && !tu_past(deadline) &&
               waitpid(pid, NULL, WNOHANG) == 0)
            tu_sleep_ms(1);
        tu_sleep_ms((unsigned)tu_rng_range(r, 1, PL_KILL_MS_MAX));
    }
    kill(pid, SIGKILL);
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    /* relaxed: the child is reaped. */
    cr_assert_eq(atomic_load_explicit(&sh->child_failed, memory_order_relaxed), 0,
                 "child: unexpected rc %d at line %d", sh->fail_rc, sh->fail_line);
    cr_assert(w == pid && ((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
                           (WIFEXITED(status) &&
                            (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == PL_OVERFLOW_EXIT))),
              "child ended with status %#x", status);
}

/* A fresh directory for a disk image: in memory (/dev/shm) when there is
 * one, as an image is written, recovered once and thrown away (its syncs
 * cost nothing there; recovery reads the same bytes), else under /tmp. */
static void image_dir(char *out, size_t cap)
{
    struct statfs fs;
    const char *base =
        statfs(PL_IMAGE_DIR, &fs) == 0 && fs.f_type == TMPFS_MAGIC ? PL_IMAGE_DIR : "/tmp";
    int n = snprintf(out, cap, "%s/invcore-pl-disk-XXXXXX", base);
    cr_assert(n > 0 && (size_t)n < cap);
    cr_assert_not_null(mkdtemp(out), "mkdtemp %s: %s", out, strerror(errno));
}

/* INVCORE_POWERLOSS_KEEP=dir: a failed image is built again there (the
 * build is deterministic in its seed) before recovery touches it, with the
 * log and the acknowledgements as text beside it, for inspection. */
static void keep_failed_image(const pl_log *log, const pl_shared *sh, uint64_t n_acks,
                              const trial_result *res)
{
    const char *keep = getenv("INVCORE_POWERLOSS_KEEP");
    if (!keep || !*keep)
        return;
    char path[PL_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/trial-%u-%s", keep, res->trial, pl_keep_name(res->keep));
    (void)mkdir(keep, 0755);
    if (mkdir(path, 0755) != 0)
        return; /* kept already */
    pl_disk_build(log, res->end, res->keep, res->seed, path);
    snprintf(path, sizeof path, "%s/trial-%u-%s.txt", keep, res->trial, pl_keep_name(res->keep));
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "crash point %" PRIu64 " of %" PRIu64 " log entries\n", res->end,
            pl_log_events(log));
    for (uint64_t i = 0; i < pl_log_events(log); i++) {
        const pl_event *e = &log->events[i];
        fprintf(f,
                "ev %" PRIu64 " kind %u ino %" PRIu64 " dir %" PRIu64 " dir2 %" PRIu64
                " off %" PRIu64 " len %" PRIu64 " begin %" PRIu64 " zero %u name %s name2 %s\n",
                i, e->kind, e->ino, e->dir_ino, e->dir2_ino, e->off, e->len, e->begin, e->zero,
                e->name, e->name2);
    }
    for (uint64_t i = 0; i < n_acks; i++) {
        const pl_ack *a = &sh->acks[i];
        fprintf(f,
                "ack %" PRIu64 " ready %u kind %u thread %u index %u seq %u events %" PRIu64
                " revision %" PRIu64 " available %" PRId64 " reserved %" PRId64 "\n",
                i, (unsigned)atomic_load_explicit(&a->ready, memory_order_acquire), a->kind,
                a->thread, a->index, a->seq, a->events, a->revision, a->available, a->reserved);
    }
    fclose(f);
}

/* One disk image after the power loss of trial res->trial: built from the
 * log up to res->end by res->keep, recovered and checked. */
static void check_image(const pl_log *log, const pl_shared *sh, trial_result *res, pl_totals *tot,
                        stderr_capture *cap)
{
    char disk[PL_PATH_MAX], data[PL_PATH_MAX + 8], msg[PL_OPEN_MSG_MAX];
    image_dir(disk, sizeof disk);
    pl_stats st = pl_disk_build(log, res->end, res->keep, res->seed, disk);
    tot->events += st.events;
    tot->writes_unsynced += st.writes_unsynced;
    tot->pieces_dropped += st.pieces_dropped;
    tot->pieces_torn += st.pieces_torn;
    tot->names_dropped += st.names_dropped;
    tot->images++;
    tot->images_by_mode[res->keep]++;
    snprintf(data, sizeof data, "%s/data", disk);
    struct stat dst;
    bool gone = stat(data, &dst) != 0;
    tot->data_dir_gone += gone;

    /* relaxed: the child is reaped. */
    uint64_t n_acks = atomic_load_explicit(&sh->n_acks, memory_order_relaxed);
    if (n_acks > PL_ACKS_MAX)
        n_acks = PL_ACKS_MAX;
    inv_engine *e = NULL;
    inv_config cfg = {.data_dir = data, .fsync_policy = INV_FSYNC_ALWAYS};
    capture_clear(cap);
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK) {
        capture_last_line(cap, msg, sizeof msg);
        /* the two shapes of defect 4: a hole of zeros, a torn sector */
        tot->refused_zero_hole += strstr(msg, "record type 0") != NULL;
        tot->refused_checksum += strstr(msg, "checksum mismatch") != NULL;
        tot->refused++;
        tot->refused_by_mode[res->keep]++;
        note_kind(tot, 0, res->trial, TRIAL_FMT "inv_open refused (%s): %s", TRIAL_ARGS(res),
                  inv_strerror(rc), msg);
    } else {
        check_levels(e, sh, n_acks, res, tot);
        check_holds(e, sh, n_acks, res, tot);
        inv_close(e);
    }
    tot->lost += res->lost;
    tot->checked += res->checked;
    tot->unconserved += res->unconserved;
    if (res->lost)
        tot->lost_images_by_mode[res->keep]++;
    if (res->lost && gone)
        tot->lost_with_dir_gone++;
    if (rc != INV_OK || res->lost || res->unconserved) {
        tot->failed_images++;
        keep_failed_image(log, sh, n_acks, res);
    }
    tu_remove_tree(disk);
}

/* One trial: a child killed at a random moment (early in one trial of
 * four), then PL_IMAGES disks after the power loss: every mode at the kill,
 * and page subsets at crash points just after writes spanning pages (the
 * case of issue 17's defect 4); fewer under sanitizers, the kinds rotating
 * over the trials. */
static void run_trial(unsigned trial, bool fresh_dir, pl_log *log, pl_shared *sh, tu_rng *r,
                      pl_totals *tot, stderr_capture *cap)
{
    char root[PL_PATH_MAX], data[PL_PATH_MAX + 8];
    tu_tmpdir(root, sizeof root, "pl");
    snprintf(data, sizeof data, "%s/data", root);
    if (!fresh_dir)
        cr_assert_eq(mkdir(data, 0755), 0, "mkdir %s: %s", data, strerror(errno));
    pl_log_reset(log, root);
    if (!fresh_dir)
        pl_log_durable_dir(log, "data");
    /* The last trial's entries are cleared before the header that counts
     * them (n_acks): a child killed between taking an entry and marking it
     * ready must leave ready 0, never a stale entry of an earlier trial
     * (which once read as an acknowledged change "lost"). relaxed: the
     * child is gone, nothing races. */
    uint64_t old = atomic_load_explicit(&sh->n_acks, memory_order_relaxed);
    memset(sh->acks, 0, sizeof(pl_ack) * (old < PL_ACKS_MAX ? old : PL_ACKS_MAX));
    memset(sh, 0, offsetof(pl_shared, acks));
    assert(atomic_load_explicit(&sh->n_acks, memory_order_relaxed) == 0);

    uint64_t t0 = tu_now_ns();
    run_child(log, sh, data, tu_rng_next(r), r, tu_rng_below(r, 4) == 0);
    uint64_t t1 = tu_now_ns();
    tot->child_ms += (t1 - t0) / 1000000;
    tot->trials++;
    uint64_t n_acks = atomic_load_explicit(&sh->n_acks, memory_order_relaxed);
    for (uint64_t i = 0; i < n_acks && i < PL_ACKS_MAX; i++)
        tot->acks += ack_counts(&sh->acks[i], UINT64_MAX);

    uint64_t n_images = tu_iters_min(PL_IMAGES, PL_IMAGES_MIN);
    for (uint64_t i = 0; i < n_images; i++) {
        /* kinds rotate over the trials when sanitizers make images fewer */
        unsigned kind = (unsigned)((trial * n_images + i) % PL_IMAGES);
        trial_result res = {.trial = trial, .seed = tu_rng_next(r), .end = pl_log_events(log)};
        res.keep = kind < PL_KEEP_MODES ? (pl_keep)kind : PL_KEEP_PAGES;
        if (kind >= PL_KEEP_MODES) {
            res.end = pl_crash_after_multipage_write(log, r);
            tot->early_crash_points += res.end < pl_log_events(log);
        }
        check_image(log, sh, &res, tot, cap);
    }
    tot->images_ms += (tu_now_ns() - t1) / 1000000;
    tu_remove_tree(root);
}

static void run_trials(bool fresh_dir, uint64_t divisor, const char *what)
{
    pl_log *log = pl_log_create();
    pl_shared *sh = pl_map_shared(sizeof *sh);
    pl_totals *tot = calloc(1, sizeof *tot);
    cr_assert_not_null(tot);
    uint64_t n = trial_count(divisor);
    tu_rng r = tu_rng_seed(tu_now_ns());
    stderr_capture cap = capture_begin();
    for (unsigned t = 0; t < n; t++)
        run_trial(t, fresh_dir, log, sh, &r, tot, &cap);
    capture_end(&cap);
    char summary[1400];
    snprintf(summary, sizeof summary,
             "powerloss %s: %" PRIu64 " trials (SIGKILLs), %" PRIu64
             " acknowledged changes; %" PRIu64 " disk images after power loss: of %" PRIu64
             " acknowledged changes looked for, %" PRIu64 " lost, %" PRIu64
             " refused to open (%" PRIu64 " at a record of type 0, %" PRIu64
             " at a checksum mismatch), %" PRIu64 " levels with reserved != live holds, %" PRIu64
             " images failed, %" PRIu64 " without the data dir (%" PRIu64
             " of them lost changes); by mode (images/refused/lost): all %" PRIu64 "/%" PRIu64
             "/%" PRIu64 ", none %" PRIu64 "/%" PRIu64 "/%" PRIu64 ", prefix %" PRIu64 "/%" PRIu64
             "/%" PRIu64 ", pages %" PRIu64 "/%" PRIu64 "/%" PRIu64 " (%" PRIu64
             " cut just after a write spanning pages); log: %" PRIu64 " entries, %" PRIu64
             " unsynced writes, %" PRIu64 " pages dropped, %" PRIu64 " torn, %" PRIu64
             " names dropped; %" PRIu64 " ms in children, %" PRIu64 " ms on images",
             what, tot->trials, tot->acks, tot->images, tot->checked, tot->lost, tot->refused,
             tot->refused_zero_hole, tot->refused_checksum, tot->unconserved, tot->failed_images,
             tot->data_dir_gone, tot->lost_with_dir_gone, tot->images_by_mode[0],
             tot->refused_by_mode[0], tot->lost_images_by_mode[0], tot->images_by_mode[1],
             tot->refused_by_mode[1], tot->lost_images_by_mode[1], tot->images_by_mode[2],
             tot->refused_by_mode[2], tot->lost_images_by_mode[2], tot->images_by_mode[3],
             tot->refused_by_mode[3], tot->lost_images_by_mode[3], tot->early_crash_points,
             tot->events, tot->writes_unsynced, tot->pieces_dropped, tot->pieces_torn,
             tot->names_dropped, tot->child_ms, tot->images_ms);
    fprintf(stderr, "%s\n", summary);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < tot->n_msgs[k]; i++)
            fprintf(stderr, "  %s\n", tot->msgs[k][i]);
    bool ok = tot->failed_images == 0;
    char first[2 * PL_MSG_MAX + 64];
    snprintf(first, sizeof first, "first refusal: %s; first loss: %s",
             tot->n_msgs[0] ? tot->msgs[0][0] : "none", tot->n_msgs[1] ? tot->msgs[1][0] : "none");
    pl_log_destroy(log);
    munmap(sh, sizeof *sh);
    free(tot);
    cr_assert(ok, "%s; %s", summary, first);
}

Test(powerloss, acknowledged_changes_survive_power_loss_and_recovery_always_opens, .timeout = 600)
{
    run_trials(false, 1, "existing data dir");
}

Test(powerloss, fresh_data_directory_survives_power_loss, .timeout = 600)
{
    run_trials(true, PL_FRESH_DIVISOR, "fresh data dir");
}
