/*
 * test_dirsync.c — every name the engine creates is made durable before it
 * acknowledges anything that depends on it (issue 17, fix 6): a file or
 * directory created, or a file renamed, exists after a power loss only if
 * its parent directory was fsynced after the change. The sysio observer
 * (core/sysio.h) sees every successful create, mkdir, rename and sync; a
 * change is "pending" from its event until a SYNC of its parent directory,
 * and no change may be pending when a write under --fsync always returns.
 *
 * Paths are compared after resolving them (realpath, /proc/self/fd), so a
 * tenant's directory reached as /proc/self/fd/N counts as its real path.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "engine.h"
#include "sysio.h"
#include "test_util.h"

/* Changes one test may leave pending at once (far more than it makes). */
#define DS_PENDING_MAX 256
/* Level writes per test: enough to rotate 4 KiB segments several times. */
#define DS_WRITES 200
/* The smallest segment the journal accepts: rotation on nearly every batch. */
#define DS_SEGMENT_BYTES 4096

typedef struct {
    char parent[PATH_MAX]; /* the directory whose fsync makes it durable */
    char what[PATH_MAX + 16];
} ds_pending;

typedef struct {
    pthread_mutex_t lock;
    ds_pending pending[DS_PENDING_MAX];
    size_t n_pending;
    size_t creates, mkdirs, renames, dir_syncs; /* events seen */
    bool overflow;
} ds_log;

static ds_log g_log = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The real path of an open descriptor (empty if unknown). */
static void fd_path(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    out[n > 0 ? (size_t)n : 0] = '\0';
}

/* The real path of the directory holding path (relative to dirfd). */
static void parent_of(int dirfd, const char *path, char *out, size_t cap)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    if (dirfd != AT_FDCWD && strchr(path, '/') == NULL) {
        fd_path(dirfd, out, cap);
        return;
    }
    char *dir = dirname(copy);
    if (realpath(dir, out) == NULL)
        snprintf(out, cap, "%s", dir);
}

static void pending_add(ds_log *l, int dirfd, const char *path, const char *kind)
{
    if (l->n_pending == DS_PENDING_MAX) {
        l->overflow = true;
        return;
    }
    ds_pending *p = &l->pending[l->n_pending++];
    parent_of(dirfd, path, p->parent, sizeof p->parent);
    snprintf(p->what, sizeof p->what, "%s %s", kind, path);
}

/* A directory's fsync makes every change pending in it durable. */
static void pending_synced(ds_log *l, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    l->dir_syncs++;
    char dir[PATH_MAX];
    fd_path(fd, dir, sizeof dir);
    size_t k = 0;
    for (size_t i = 0; i < l->n_pending; i++)
        if (strcmp(l->pending[i].parent, dir) != 0)
            l->pending[k++] = l->pending[i];
    l->n_pending = k;
}

static void observe(void *ctx, const sysio_event *ev)
{
    ds_log *l = ctx;
    pthread_mutex_lock(&l->lock);
    switch (ev->op) {
    case SYSIO_CREATE:
        l->creates++;
        pending_add(l, ev->dirfd, ev->path, "create");
        break;
    case SYSIO_MKDIR:
        l->mkdirs++;
        pending_add(l, ev->dirfd, ev->path, "mkdir");
        break;
    case SYSIO_RENAME:
        l->renames++;
        pending_add(l, ev->dirfd, ev->path2, "rename to");
        break;
    case SYSIO_SYNC:
        pending_synced(l, ev->fd);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&l->lock);
}

static char g_tmp[128];

static void setup(void)
{
    tu_tmpdir(g_tmp, sizeof g_tmp, "dirsync");
    memset(g_log.pending, 0, sizeof g_log.pending);
    g_log.n_pending = g_log.creates = g_log.mkdirs = g_log.renames = g_log.dir_syncs = 0;
    g_log.overflow = false;
    fault_reset();
    sysio_observe(observe, &g_log);
}

static void teardown(void)
{
    sysio_observe(NULL, NULL);
    fault_reset();
    tu_remove_tree(g_tmp);
}

TestSuite(dirsync, .init = setup, .fini = teardown);

/* Asserts that nothing created or renamed so far waits for a sync. */
static void assert_nothing_pending(const char *when)
{
    pthread_mutex_lock(&g_log.lock);
    size_t n = g_log.n_pending;
    char first[sizeof g_log.pending[0].what + PATH_MAX + 16] = "";
    if (n > 0)
        snprintf(first, sizeof first, "%s (parent %s)", g_log.pending[0].what,
                 g_log.pending[0].parent);
    bool overflow = g_log.overflow;
    pthread_mutex_unlock(&g_log.lock);
    cr_assert(!overflow, "more than %d changes pending", DS_PENDING_MAX);
    cr_assert_eq(n, 0, "%s: %zu change(s) not yet durable, first: %s", when, n, first);
}

/* data_dir below the scratch dir (so the engine creates it) into out. */
static void data_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", g_tmp, name);
    cr_assert(n > 0 && (size_t)n < cap);
}

static inv_engine *open_small_segments(const char *dir)
{
    inv_config cfg = {.data_dir = dir, .fsync_policy = INV_FSYNC_ALWAYS};
    engine_tuning tuning = {.journal_segment_bytes = DS_SEGMENT_BYTES};
    inv_engine *e = NULL;
    int rc = engine_open_tuned(&e, &cfg, &tuning);
    cr_assert_eq(rc, INV_OK, "open %s: %s", dir, inv_strerror(rc));
    return e;
}

/* Writes under fsync always; every acknowledgement must find nothing
 * pending. */
static void write_and_check(inv_engine *e, size_t n)
{
    tu_put_item(e, tu_item_id(0), true);
    cr_assert_eq(inv_location_put(e, tu_loc_id(0), NULL), INV_OK);
    assert_nothing_pending("after the first acknowledged write");
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(inv_level_set(e, tu_item_id(0), tu_loc_id(0), (int64_t)i, 0, NULL), INV_OK);
        assert_nothing_pending("after an acknowledged level write");
    }
}

Test(dirsync, a_fresh_data_dir_is_durable_before_the_first_acknowledgement)
{
    char dir[PATH_MAX];
    data_path(dir, sizeof dir, "data");
    inv_engine *e = open_small_segments(dir);
    write_and_check(e, DS_WRITES);
    cr_assert_geq(g_log.mkdirs, 1, "the engine did not create the data directory");
    cr_assert_gt(g_log.creates, 2, "segments were created (rotation)");
    inv_close(e);
    /* A reopen of the existing directory creates nothing unsynced either. */
    e = open_small_segments(dir);
    write_and_check(e, DS_WRITES / 4);
    inv_close(e);
}

Test(dirsync, a_snapshot_is_durable_before_later_acknowledgements)
{
    char dir[PATH_MAX];
    data_path(dir, sizeof dir, "data");
    inv_engine *e = open_small_segments(dir);
    write_and_check(e, DS_WRITES / 4);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(inv_snapshot(e), INV_OK);
        assert_nothing_pending("after a snapshot");
        write_and_check(e, DS_WRITES / 4);
    }
    cr_assert_geq(g_log.renames, 3, "each snapshot is renamed into place");
    inv_close(e);
}

Test(dirsync, a_tenant_directory_is_durable_before_its_first_acknowledgement)
{
    char dir[PATH_MAX];
    data_path(dir, sizeof dir, "data");
    inv_tenants *ts = NULL;
    inv_config cfg = {.data_dir = dir, .fsync_policy = INV_FSYNC_ALWAYS};
    cr_assert_eq(inv_tenants_open(&ts, &cfg, NULL), INV_OK);
    cr_assert_eq(inv_tenant_create(ts, "shop-a", 6), INV_OK);
    inv_tenant *t = NULL;
    cr_assert_eq(inv_tenant_get(ts, "shop-a", 6, &t), INV_OK);
    write_and_check(inv_tenant_engine(t), DS_WRITES / 4);
    cr_assert_eq(inv_snapshot(inv_tenant_engine(t)), INV_OK);
    assert_nothing_pending("after a tenant's snapshot");
    inv_tenant_put(t);
    cr_assert_eq(inv_tenant_drop(ts, "shop-a", 6, true), INV_OK);
    assert_nothing_pending("after a tenant drop");
    inv_tenants_close(ts);
    cr_assert_geq(g_log.mkdirs, 3, "data, tenants/ and the tenant's directory");
}
