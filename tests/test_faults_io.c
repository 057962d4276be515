/*
 * test_faults_io.c — I/O error and ENOSPC loops (issue 17, build 2; the
 * approach of SQLite's I/O error tests): for every file-system fault site
 * of core/fault.h, a representative run of the engine is repeated with the
 * site's Nth call failing, for N = 1, 2, ... until a run completes without
 * reaching the fault. Two modes: one call fails with EIO (a transient
 * error), or every call from the Nth on fails with ENOSPC (a full disk).
 *
 * After each run, with no fault armed: the engine reopens (it recovers
 * after a restart), and every level write it acknowledged holds its value
 * (or the value of a later write that failed: a refused write may still
 * have reached the disk). During the run, every call answers INV_OK or a
 * typed error (INV_EIO; INV_ENOTFOUND only for a level whose item or
 * location was refused before), and the run goes on after a failure: the
 * engine either keeps serving or refuses writes cleanly. A crash fails the
 * suite by itself.
 *
 * The runs: "engine" — open a fresh data dir (small segments: rotation;
 * history retention of one byte: a snapshot drops segments and writes
 * history.start), catalog and level writes under fsync always, a snapshot,
 * more writes, close, a torn tail left as a crash would, reopen (replay
 * cuts it), more writes, a second snapshot, close, reopen (from the
 * snapshot: the segments below it are gone), more writes, close.
 * "tenants" — open a registry, create a tenant and write to it, create a
 * second one, write, drop it (and write again if the drop failed), close,
 * reopen. The data lives on tmpfs
 * (/dev/shm) when there is one: fsync is free there and the fault sites
 * are counted the same, so the loops stay within seconds.
 *
 * Each test prints a summary line: sites, runs (sites × N tried), failures
 * injected, sites the runs never reached (no code path of these runs takes
 * them: REPLAY_RENAME is repair's; REPLAY_OPEN, REPLAY_READ and FILE_READ
 * have no caller while replay and snapshots are read through mmap).
 * INVCORE_FAULTS_VERBOSE=1 prints each site's N range.
 *
 * Found and fixed by these loops: the newest snapshot failing to open (an
 * I/O error, FILE_OPEN) was taken as invalid and skipped, so recovery fell
 * back to the journal from its start, whose first segments the snapshot
 * had let retention delete: the engine refused to open with "missing
 * segment" (INV_EINVALID, a corruption message) instead of INV_EIO
 * (core/snapshot.c load_file). And a tenant drop whose directory fsync
 * failed after the rename aside answered INV_EIO but left the tenant live
 * in a directory the next open removes: writes it acknowledged after the
 * failed drop vanished on restart (core/tenants.c rename_aside: the
 * rename is undone, or the drop completes).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "engine.h"
#include "fault.h"
#include "fileio.h"
#include "journal.h"
#include "test_util.h"

/* Locations (one level each) the runs write. */
#define FI_LOCS 4
/* Level writes per phase of a run (three phases). */
#define FI_WRITES 6
/* Failed writes remembered per level (a run makes far fewer). */
#define FI_FAILED_MAX 64
/* N beyond which a run that still reaches the fault is a defect (the
 * longest run makes a few hundred calls of its busiest site). */
#define FI_N_MAX 2000
#define FI_SEGMENT_BYTES 4096
/* Bytes of the torn record left after a close (tear_tail). */
#define FI_TORN_BYTES 24
/* Large location records written per phase (rotation), and their ids. */
#define FI_FILLERS 2
#define FI_FILLER_LOC 900000
#define FI_PATH_MAX 256
#define FI_ITEM 7
#define FI_TENANT "t1"
#define FI_TENANT_DROPPED "t2"

/* ---- the model of what was acknowledged ----------------------------------- */

typedef struct {
    bool acked; /* a write of this level was acknowledged */
    int64_t value; /* the last acknowledged value */
    int64_t failed[FI_FAILED_MAX]; /* values refused since */
    size_t n_failed;
} fi_level;

typedef struct {
    fi_level lv[FI_LOCS];
    int64_t next_value; /* every write sets a value never used before */
    bool catalog_acked; /* the item and every location */
    bool must_serve; /* a snapshot failed on its own site: writes go on */
    size_t acks; /* level writes acknowledged */
    bool tenant_acked, dropped_acked; /* tenants run: t1 created, t2 dropped */
    size_t bad_rc; /* untyped errors seen */
    char bad_msg[256];
} fi_model;

typedef struct {
    char dir[FI_PATH_MAX + 32];
    fi_model m;
    fi_model t2; /* tenants run: the tenant dropped (FI_TENANT_DROPPED) */
    bool t2_served; /* its drop failed, and it acknowledged writes after */
    fault_site site; /* the site armed, or FAULT_SITE_COUNT: none */
} fi_run;

static void model_bad(fi_model *m, const char *what, int rc)
{
    if (m->bad_rc++ == 0)
        snprintf(m->bad_msg, sizeof m->bad_msg, "%s answered %d (%s)", what, rc, inv_strerror(rc));
}

/* rc of an I/O-backed call: INV_OK, or INV_EIO (also allowed: extra). */
static bool check_rc(fi_model *m, const char *what, int rc, int extra)
{
    if (rc != INV_OK && rc != INV_EIO && rc != extra)
        model_bad(m, what, rc);
    return rc == INV_OK;
}

/* One level write with a fresh value, recorded. */
static void write_level(fi_model *m, inv_engine *e, size_t k)
{
    fi_level *l = &m->lv[k];
    int64_t v = ++m->next_value;
    int rc = inv_level_set(e, FI_ITEM, tu_loc_id(k), v, 0, NULL);
    if (m->must_serve && m->catalog_acked && rc != INV_OK)
        model_bad(m, "a level set after a failed snapshot (the journal is fine)", rc);
    if (check_rc(m, "level set", rc, m->catalog_acked ? INV_EIO : INV_ENOTFOUND)) {
        l->acked = true;
        m->acks++;
        l->value = v;
        l->n_failed = 0;
    } else if (l->n_failed < FI_FAILED_MAX) {
        l->failed[l->n_failed++] = v;
    }
}

/* Two locations with every text field full (about 1.6 KB of record
 * each): the journal rotates its 4 KiB segments about once a phase. */
static void write_fillers(fi_model *m, inv_engine *e)
{
    static inv_location_fields f;
    if (f.name[0] == '\0') {
        char *fields[] = {f.name, f.address1, f.address2, f.city, f.province, f.country};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            memset(fields[i], 'a' + (int)i, INV_STR_MAX);
        f.mask = INV_LOC_ALL;
        f.active = true;
    }
    for (size_t i = 0; i < FI_FILLERS; i++)
        check_rc(m, "filler put", inv_location_put(e, FI_FILLER_LOC + i, &f), INV_EIO);
}

static void write_phase(fi_model *m, inv_engine *e)
{
    write_fillers(m, e);
    for (size_t i = 0; i < FI_WRITES; i++)
        write_level(m, e, i % FI_LOCS);
}

static void write_catalog(fi_model *m, inv_engine *e)
{
    bool ok = check_rc(m, "item put", inv_item_put(e, FI_ITEM, NULL), INV_EIO);
    for (size_t k = 0; k < FI_LOCS; k++)
        ok &= check_rc(m, "location put", inv_location_put(e, tu_loc_id(k), NULL), INV_EIO);
    m->catalog_acked |= ok;
}

/* Every acknowledged level holds its value or a later refused one. */
static void verify_levels(const fi_run *r, const fi_model *m, inv_engine *e)
{
    for (size_t k = 0; k < FI_LOCS; k++) {
        const fi_level *l = &m->lv[k];
        inv_level lv;
        int rc = inv_level_get(e, FI_ITEM, tu_loc_id(k), &lv);
        if (!l->acked)
            continue;
        cr_assert_eq(rc, INV_OK, "site %s: acknowledged level %zu lost (%s)",
                     fault_site_name(r->site), k, inv_strerror(rc));
        bool later = false;
        for (size_t i = 0; i < l->n_failed; i++)
            later |= l->failed[i] == lv.available;
        cr_assert(lv.available == l->value || later,
                  "site %s: level %zu holds %" PRId64 ", acknowledged %" PRId64,
                  fault_site_name(r->site), k, lv.available, l->value);
    }
}

/* ---- the runs --------------------------------------------------------------- */

static inv_config run_config(const fi_run *r)
{
    return (inv_config){.data_dir = r->dir,
                        .fsync_policy = INV_FSYNC_ALWAYS,
                        .snapshot_journal_bytes = UINT64_MAX / 2, /* only ours */
                        .history_retention_bytes = 1};
}

static int open_engine(const fi_run *r, inv_engine **e)
{
    inv_config cfg = run_config(r);
    engine_tuning tuning = {.journal_segment_bytes = FI_SEGMENT_BYTES};
    *e = NULL;
    return engine_open_tuned(e, &cfg, &tuning);
}

/* A snapshot; when it fails on a site only snapshots use, the engine must
 * keep serving: the next phase's writes must all be acknowledged. */
static void snapshot_step(fi_run *r, inv_engine *e, const char *what)
{
    bool ok = check_rc(&r->m, what, inv_snapshot(e), INV_EIO);
    inv_stats st;
    bool journal_ok = inv_stats_get(e, &st) == INV_OK && !st.journal_failed;
    r->m.must_serve =
        !ok && r->site >= FAULT_SNAPSHOT_MKDIR && r->site <= FAULT_SNAPSHOT_UNLINK && journal_ok;
}

/* A crash's torn tail: bytes of a record that never reached the disk whole
 * after the last segment's records, so the next replay cuts it. Plain
 * calls: the test's own writes are not the engine's I/O sites. */
static void tear_tail(const fi_run *r)
{
    journal_segment *segs;
    size_t n;
    if (journal_segments_list(r->dir, &segs, &n, NULL, 0) != INV_OK || n == 0)
        return; /* nothing written (an open refused) */
    char path[FI_PATH_MAX + 64];
    fileio_path(path, sizeof path, r->dir, segs[n - 1].first, JOURNAL_SEGMENT_SUFFIX);
    free(segs);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    static const uint8_t torn[FI_TORN_BYTES] = {0xab, 0xab, 0xab, 0xab, 0x7f, 0x01};
    cr_assert_eq(write(fd, torn, sizeof torn), (ssize_t)sizeof torn);
    close(fd);
}

/* The engine run (see the top); faults stay armed throughout. */
static void run_engine(fi_run *r)
{
    inv_engine *e;
    if (!check_rc(&r->m, "open", open_engine(r, &e), INV_EIO))
        return;
    write_catalog(&r->m, e);
    write_phase(&r->m, e);
    snapshot_step(r, e, "snapshot");
    write_phase(&r->m, e);
    inv_close(e);
    tear_tail(r);
    if (!check_rc(&r->m, "reopen", open_engine(r, &e), INV_EIO))
        return;
    write_catalog(&r->m, e); /* again: the first may have been refused */
    write_phase(&r->m, e);
    snapshot_step(r, e, "second snapshot");
    inv_close(e);
    /* Segments below the snapshot are gone now (retention): a reopen
     * needs the snapshot itself. */
    if (!check_rc(&r->m, "third open", open_engine(r, &e), INV_EIO))
        return;
    write_phase(&r->m, e);
    inv_close(e);
}

/* After the run, no fault: the engine opens and holds what was acked. */
static void check_engine(fi_run *r)
{
    inv_engine *e;
    int rc = open_engine(r, &e);
    cr_assert_eq(rc, INV_OK, "site %s: no reopen after the fault: %s", fault_site_name(r->site),
                 inv_strerror(rc));
    verify_levels(r, &r->m, e);
    /* and it takes writes again */
    inv_close(e);
}

static int tenants_open(const fi_run *r, inv_tenants **ts)
{
    inv_config cfg = run_config(r);
    *ts = NULL;
    return inv_tenants_open(ts, &cfg, NULL);
}

static void tenant_writes(fi_model *m, inv_tenants *ts, const char *name)
{
    inv_tenant *t = NULL;
    if (inv_tenant_get(ts, name, strlen(name), &t) != INV_OK)
        return;
    write_catalog(m, inv_tenant_engine(t));
    write_phase(m, inv_tenant_engine(t));
    inv_tenant_put(t);
}

/* The tenants run (see the top). */
static void run_tenants(fi_run *r)
{
    inv_tenants *ts;
    if (!check_rc(&r->m, "tenants open", tenants_open(r, &ts), INV_EIO))
        return;
    int rc = inv_tenant_create(ts, FI_TENANT, strlen(FI_TENANT));
    r->m.tenant_acked = check_rc(&r->m, "tenant create", rc, INV_EIO);
    tenant_writes(&r->m, ts, FI_TENANT);
    rc = inv_tenant_create(ts, FI_TENANT_DROPPED, strlen(FI_TENANT_DROPPED));
    if (check_rc(&r->m, "second tenant create", rc, INV_EIO)) {
        tenant_writes(&r->t2, ts, FI_TENANT_DROPPED);
        rc = inv_tenant_drop(ts, FI_TENANT_DROPPED, strlen(FI_TENANT_DROPPED), true);
        r->m.dropped_acked = check_rc(&r->m, "tenant drop", rc, INV_EIO);
        /* A refused drop leaves a live tenant: what it acknowledges now
         * must outlive a restart. */
        size_t acks = r->t2.acks;
        if (!r->m.dropped_acked)
            tenant_writes(&r->t2, ts, FI_TENANT_DROPPED);
        r->t2_served = r->t2.acks > acks;
    }
    inv_tenants_close(ts);
    if (!check_rc(&r->m, "tenants reopen", tenants_open(r, &ts), INV_EIO))
        return;
    tenant_writes(&r->m, ts, FI_TENANT);
    inv_tenants_close(ts);
}

static void check_tenants(fi_run *r)
{
    inv_tenants *ts;
    int rc = tenants_open(r, &ts);
    cr_assert_eq(rc, INV_OK, "site %s: tenants do not reopen after the fault: %s",
                 fault_site_name(r->site), inv_strerror(rc));
    inv_tenant *t = NULL;
    rc = inv_tenant_get(ts, FI_TENANT, strlen(FI_TENANT), &t);
    if (r->m.tenant_acked)
        cr_assert_eq(rc, INV_OK, "site %s: an acknowledged tenant is gone",
                     fault_site_name(r->site));
    if (t) {
        verify_levels(r, &r->m, inv_tenant_engine(t));
        inv_tenant_put(t);
    }
    rc = inv_tenant_get(ts, FI_TENANT_DROPPED, strlen(FI_TENANT_DROPPED), &t);
    if (r->m.dropped_acked)
        cr_assert_eq(rc, INV_ENOTFOUND, "site %s: a dropped tenant came back",
                     fault_site_name(r->site));
    else if (r->t2_served)
        cr_assert_eq(rc, INV_OK,
                     "site %s: a tenant whose drop failed served writes, then vanished on restart",
                     fault_site_name(r->site));
    if (rc == INV_OK) {
        verify_levels(r, &r->t2, inv_tenant_engine(t));
        inv_tenant_put(t);
    }
    inv_tenants_close(ts);
}

/* ---- the loops -------------------------------------------------------------- */

typedef struct {
    void (*run)(fi_run *);
    void (*check)(fi_run *);
} fi_scenario;

typedef struct {
    uint64_t times; /* calls failed from the Nth on */
    int err;
} fi_mode;

typedef struct {
    size_t sites, runs, injected, unreached;
    char unreached_names[512];
} fi_summary;

static char g_base[FI_PATH_MAX];
static int g_saved_stderr = -1; /* quiet(): stderr while the runs print */

/* A fresh scratch directory on tmpfs when there is one (fsync is free). */
static void setup(void)
{
    struct stat st;
    bool shm = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0;
    int n =
        snprintf(g_base, sizeof g_base, "%s/invcore-faults-io-XXXXXX", shm ? "/dev/shm" : "/tmp");
    cr_assert(n > 0 && (size_t)n < sizeof g_base);
    cr_assert_not_null(mkdtemp(g_base), "mkdtemp: %s", strerror(errno));
    fault_reset();
}

static void teardown(void)
{
    fault_reset();
    tu_remove_tree(g_base);
}

TestSuite(faults_io, .init = setup, .fini = teardown);

/* The runs' warnings (one per injected failure) go nowhere. */
static void quiet(bool on)
{
    fflush(stderr);
    if (on) {
        g_saved_stderr = dup(STDERR_FILENO);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDERR_FILENO);
            close(null);
        }
    } else if (g_saved_stderr >= 0) {
        dup2(g_saved_stderr, STDERR_FILENO);
        close(g_saved_stderr);
        g_saved_stderr = -1;
    }
}

/* One run with site's call n failing (mode), then the check; true if the
 * run reached the fault. */
static bool one_run(const fi_scenario *sc, fault_site site, uint64_t n, fi_mode mode, size_t serial,
                    fi_summary *sum)
{
    fi_run r;
    memset(&r, 0, sizeof r);
    r.site = site;
    snprintf(r.dir, sizeof r.dir, "%s/run-%zu", g_base, serial);
    fault_reset();
    fault_fail(site, n, mode.times, mode.err);
    quiet(true);
    sc->run(&r);
    uint64_t failures = fault_failures(site);
    fault_reset();
    sc->check(&r);
    quiet(false);
    cr_assert_eq(r.m.bad_rc, 0, "site %s, call %" PRIu64 " failing (%s): %s", fault_site_name(site),
                 n, strerror(mode.err), r.m.bad_msg);
    sum->runs++;
    sum->injected += failures;
    tu_remove_tree(r.dir);
    return failures > 0;
}

/* N = 1, 2, ... (step: the stress scale) until a run misses the fault. */
static void loop_site(const fi_scenario *sc, fault_site site, fi_mode mode, fi_summary *sum)
{
    uint64_t step = tu_scale();
    size_t serial = sum->runs;
    uint64_t n = 1;
    for (; n <= FI_N_MAX; n += step)
        if (!one_run(sc, site, n, mode, serial++, sum))
            break;
    cr_assert_leq(n, FI_N_MAX, "site %s: still failing at call %d", fault_site_name(site),
                  FI_N_MAX);
    if (getenv("INVCORE_FAULTS_VERBOSE"))
        fprintf(stderr, "faults_io: %s %s: N = 1..%" PRIu64 "\n", fault_site_name(site),
                strerror(mode.err), n);
    if (n == 1) { /* never reached */
        sum->unreached++;
        size_t len = strlen(sum->unreached_names);
        snprintf(sum->unreached_names + len, sizeof sum->unreached_names - len, "%s%s",
                 len ? " " : "", fault_site_name(site));
    }
}

static void loop_sites(const char *name, const fi_scenario *sc, const fault_site *sites,
                       size_t n_sites)
{
    static const fi_mode modes[] = {{1, EIO}, {UINT64_MAX, ENOSPC}};
    /* Under a sanitizer (scale > 1) a run costs ~20 times more: the EIO
     * mode only, every scale-th N (loop_site). */
    size_t n_modes = tu_scale() > 1 ? 1 : sizeof modes / sizeof modes[0];
    fi_summary sum = {0};
    uint64_t t0 = tu_now_ns();
    for (size_t m = 0; m < n_modes; m++) {
        fi_summary per = {0};
        for (size_t i = 0; i < n_sites; i++)
            loop_site(sc, sites[i], modes[m], &per);
        sum.runs += per.runs;
        sum.injected += per.injected;
        if (m == 0) {
            sum.unreached = per.unreached;
            memcpy(sum.unreached_names, per.unreached_names, sizeof sum.unreached_names);
        }
    }
    fprintf(stderr,
            "faults_io %s: %zu sites x %zu mode(s) (EIO once, ENOSPC from then on), %zu runs "
            "(sites x N tried), %zu failures injected, every run checked; %.1f s; never reached: "
            "%s\n",
            name, n_sites, n_modes, sum.runs, sum.injected, (double)(tu_now_ns() - t0) / 1e9,
            sum.unreached ? sum.unreached_names : "none");
}

Test(faults_io, engine_survives_every_io_site_failing_at_every_call, .timeout = 600)
{
    static const fault_site sites[] = {
        FAULT_JOURNAL_MKDIR,     FAULT_JOURNAL_DIR_OPEN, FAULT_JOURNAL_SEG_CREATE,
        FAULT_JOURNAL_SEG_OPEN,  FAULT_JOURNAL_WRITE,    FAULT_JOURNAL_SYNC,
        FAULT_JOURNAL_DIR_SYNC,  FAULT_JOURNAL_TRIM,     FAULT_REPLAY_OPEN,
        FAULT_REPLAY_READ,       FAULT_REPLAY_CUT,       FAULT_REPLAY_RENAME,
        FAULT_REPLAY_UNLINK,     FAULT_SNAPSHOT_MKDIR,   FAULT_SNAPSHOT_OPEN,
        FAULT_SNAPSHOT_WRITE,    FAULT_SNAPSHOT_SYNC,    FAULT_SNAPSHOT_RENAME,
        FAULT_SNAPSHOT_UNLINK,   FAULT_FILE_OPEN,        FAULT_FILE_READ,
        FAULT_DIR_SYNC,          FAULT_RECOVERY_MKDIR,   FAULT_RECOVERY_LOCK,
        FAULT_FEED_CURSOR_WRITE,
    };
    fi_scenario sc = {run_engine, check_engine};
    loop_sites("engine", &sc, sites, sizeof sites / sizeof sites[0]);
}

Test(faults_io, tenants_survive_their_io_sites_failing_at_every_call, .timeout = 600)
{
    static const fault_site sites[] = {FAULT_TENANT_MKDIR, FAULT_TENANT_RENAME, FAULT_DIR_SYNC,
                                       FAULT_RECOVERY_MKDIR};
    fi_scenario sc = {run_tenants, check_tenants};
    loop_sites("tenants", &sc, sites, sizeof sites / sizeof sites[0]);
}
