/*
 * tenants.c — the tenant registry (inv_tenants_* of include/invcore.h):
 * named engines, one per tenant, above engine.c. The default tenant is
 * the engine inv_open would open on cfg; tenant NAME's engine lives in
 * data_dir/tenants/NAME/ (or in memory). docs/TENANTS.md says why one
 * engine per tenant: no shared table, so no code path crosses tenants.
 *
 * Lookup is lock-free: by_name maps the seeded XXH3-128 of a name to the
 * tenant pointer (w0); readers find it inside an epoch section, compare the
 * full name and take a reference only while the count is non-zero, so a
 * concurrent drop never frees a tenant under a lookup (its struct is
 * retired through the epoch) and a tenant whose count reached zero is
 * never resurrected. Create, drop, list and the shared background pass
 * take the one admin mutex.
 *
 * Invariants:
 *  - A tenant is in by_name and in live[] (sorted by name) exactly while
 *    the set holds its own reference (from create/open until drop/close),
 *    and both change only under admin.
 *  - The background pass ticks only tenants in live[], under admin, so it
 *    never touches an engine whose last reference went (that reference
 *    is put only after the tenant left live[]).
 *  - On disk, tenants/NAME/ exists exactly for the durable tenants; a drop
 *    renames it to tenants/.dropped.NAME.N first (one durable rename), so
 *    a crash leaves the tenant whole or gone; names never start with '.'.
 *  - A tenant engine knows its directory only as /proc/self/fd/N of a
 *    descriptor the tenant holds, so after a drop renamed it aside, a
 *    holder's engine still reads and writes its own files, never those of
 *    a tenant re-created under the same name.
 */
#include "sysio.h"
#include "alloc.h"
#include "engine.h"
#include "epoch.h"
#include "fileio.h"
#include "table.h"

#include "clock.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* The subdirectory of data_dir that holds the other tenants. */
#define TENANTS_DIR "tenants"
/* A dropped tenant's directory is renamed to this prefix + name + ".N". */
#define TENANTS_DROPPED_PREFIX ".dropped."
/* Open file descriptors nftw may use while removing a dropped directory. */
#define TENANTS_RM_FDS 16
/* Bytes of "/proc/self/fd/N", the name a tenant engine knows its
 * directory by (struct inv_tenant: dir_fd). */
#define TENANTS_FD_PATH_MAX 32
/* Slots the name index starts with (it grows lock-free). */
#define TENANTS_INDEX_CAPACITY 64

struct inv_tenant {
    inv_tenants *set;
    inv_engine *engine;
    /* References: the set's own (while live) plus every holder's. */
    _Atomic uint64_t refs;
    /* Set once by a drop (or briefly by a refused one: tenant_drop_busy). */
    _Atomic bool dropped;
    char *dropped_dir; /* the renamed-aside directory to remove, or NULL */
    /* A durable non-default tenant's directory, held open: its engine
     * names it /proc/self/fd/N, which follows the directory when a drop
     * renames it aside, so the engine's path-based files (snapshots, the
     * feed's history, the lock) never land in a tenant re-created under
     * the same name while a holder still uses the dropped one. -1: none. */
    int dir_fd;
    size_t name_len;
    char name[INV_TENANT_NAME_MAX + 1];
};

struct inv_tenants {
    table by_name; /* XXH3-128(name) -> (inv_tenant *, version) */
    uint64_t seed;
    pthread_mutex_t admin; /* create, drop, list, the background pass */
    inv_tenant **live; /* sorted by name; under admin */
    size_t n_live, cap_live;
    _Atomic size_t count; /* n_live, readable without admin */
    inv_tenant *dflt;
    inv_config cfg; /* data_dir points to data_dir below */
    char *data_dir; /* NULL: memory mode */
    char *tenants_dir; /* data_dir/tenants, or NULL */
    inv_tenant_hooks hooks;
    uint64_t drop_seq; /* under admin: makes renamed-aside names unique */
    pthread_t background;
    bool background_started;
    _Atomic bool stopping;
};

/* ---- names ------------------------------------------------------------- */

/* A tenant's shape, for asserts only (O(1)): in a set, with a name within
 * its limit. */
static bool tenant_ok(const inv_tenant *t)
{
    return t != NULL && t->set != NULL && t->name_len > 0 && t->name_len <= INV_TENANT_NAME_MAX;
}

/* A set, for asserts only (O(1)): what any thread may check without admin
 * (tenants_dir is NULL in memory mode; the live list is live_ok's). */
static bool tenants_ok(const inv_tenants *ts)
{
    return ts != NULL;
}

/* A set's live list, for asserts only (O(1); under admin: the list
 * changes under it): within its allocation. */
static bool live_ok(const inv_tenants *ts)
{
    return tenants_ok(ts) && ts->n_live <= ts->cap_live && (ts->n_live == 0 || ts->live != NULL);
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int inv_tenant_name_check(const char *name, size_t len)
{
    if (!name || len == 0 || len > INV_TENANT_NAME_MAX)
        return INV_EINVALID;
    /* A leading dot rules out "." and ".." and keeps the renamed-aside
     * directories (".dropped.*") out of the tenant namespace. */
    if (name[0] == '.')
        return INV_EINVALID;
    for (size_t i = 0; i < len; i++)
        if (!name_char_ok(name[i]))
            return INV_EINVALID;
    return INV_OK;
}

static bool is_default_name(const char *name, size_t len)
{
    assert(name != NULL); /* any length: a drop asks before checking it */
    return len == strlen(INV_TENANT_DEFAULT) && memcmp(name, INV_TENANT_DEFAULT, len) == 0;
}

static bool tenant_name_eq(const inv_tenant *t, const char *name, size_t len)
{
    assert(tenant_ok(t) && name != NULL);
    return t->name_len == len && memcmp(t->name, name, len) == 0;
}

static void name_key(const inv_tenants *ts, const char *name, size_t len, uint64_t *a, uint64_t *b)
{
    assert(ts != NULL && name != NULL && len <= INV_TENANT_NAME_MAX);
    assert(a != NULL && b != NULL);
    XXH128_hash_t h = XXH3_128bits_withSeed(name, len, ts->seed);
    *a = h.low64;
    *b = h.high64;
}

/* ---- references -------------------------------------------------------- */

/* refs + 1 unless it is 0 (the tenant is being destroyed): a lookup must
 * never bring a tenant back to life. */
static bool ref_if_live(inv_tenant *t)
{
    assert(tenant_ok(t));
    /* relaxed: only the count itself matters; the CAS below orders. */
    uint64_t n = atomic_load_explicit(&t->refs, memory_order_relaxed);
    while (n != 0)
        /* acquire on success: our use of the engine comes after the
         * reference is counted. relaxed on failure: we retry with n. */
        if (atomic_compare_exchange_weak_explicit(&t->refs, &n, n + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

void inv_tenant_ref(inv_tenant *t)
{
    assert(t != NULL);
    /* relaxed: the caller already holds a reference, which orders. */
    uint64_t n = atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    assert(n > 0);
    (void)n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    assert(path != NULL);
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes dir and everything in it, best effort (a leftover is removed by
 * the next inv_tenants_open). */
static void rm_tree(const char *dir)
{
    assert(dir != NULL && dir[0] != '\0');
    if (nftw(dir, rm_entry, TENANTS_RM_FDS, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        FILEIO_WARN("invcore tenants: cannot remove %s: %s\n", dir, strerror(errno));
}

/* The last reference went: close the engine, remove a dropped tenant's
 * files, free the struct once no lookup can still see it. */
static void tenant_destroy(inv_tenant *t)
{
    assert(tenant_ok(t));
    inv_tenants *ts = t->set;
    assert(atomic_load_explicit(&t->refs, memory_order_relaxed) == 0);
    if (ts->hooks.on_close)
        ts->hooks.on_close(ts->hooks.arg, t);
    inv_close(t->engine);
    t->engine = NULL;
    if (t->dir_fd >= 0)
        close(t->dir_fd);
    t->dir_fd = -1;
    if (t->dropped_dir) {
        rm_tree(t->dropped_dir);
        free(t->dropped_dir);
        t->dropped_dir = NULL;
    }
    epoch_retire(t, free, ts);
}

void inv_tenant_put(inv_tenant *t)
{
    if (!t)
        return;
    assert(tenant_ok(t));
    /* acq_rel: release our uses of the engine; the last one (acquire) sees
     * every other holder's before it closes the engine. */
    uint64_t n = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);
    assert(n > 0);
    if (n == 1)
        tenant_destroy(t);
}

inv_engine *inv_tenant_engine(const inv_tenant *t)
{
    assert(t != NULL && t->engine != NULL);
    return t->engine;
}

const char *inv_tenant_name(const inv_tenant *t, size_t *len)
{
    assert(t != NULL);
    if (len)
        *len = t->name_len;
    return t->name;
}

bool inv_tenant_dropped(const inv_tenant *t)
{
    assert(t != NULL);
    /* acquire: pairs with the drop's store; a caller seeing false started
     * before the drop returned. */
    return atomic_load_explicit(&((inv_tenant *)t)->dropped, memory_order_acquire);
}

/* ---- the name index ---------------------------------------------------- */

/* absent -> the tenant in ctx; a live entry (the name, or a 128-bit
 * collision) refuses. */
static int index_add_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    if (table_is_live(cur))
        return INV_EEXISTS;
    *next = (table_word){(uint64_t)(uintptr_t)ctx, table_version(cur) + 1};
    return TABLE_STEP_WRITE;
}

/* The tenant in ctx -> tombstone; anything else stays. */
static int index_del_step(void *ctx, table_word cur, table_word *next)
{
    assert(ctx != NULL && next != NULL);
    if (!table_is_live(cur) || cur.w0 != (uint64_t)(uintptr_t)ctx)
        return TABLE_STEP_KEEP;
    *next = (table_word){0, (table_version(cur) + 1) | TABLE_TOMB};
    return TABLE_STEP_WRITE;
}

static int index_add(inv_tenants *ts, inv_tenant *t)
{
    assert(tenants_ok(ts) && tenant_ok(t));
    uint64_t a, b;
    name_key(ts, t->name, t->name_len, &a, &b);
    epoch_enter();
    int rc = table_update(&ts->by_name, a, b, true, NULL, index_add_step, t, NULL);
    if (rc == TABLE_STEP_WRITE)
        table_note_created(&ts->by_name);
    epoch_exit();
    return rc == TABLE_STEP_WRITE ? INV_OK : rc < 0 ? rc : INV_ENOMEM;
}

static void index_del(inv_tenants *ts, inv_tenant *t)
{
    assert(tenants_ok(ts) && tenant_ok(t));
    uint64_t a, b;
    name_key(ts, t->name, t->name_len, &a, &b);
    epoch_enter();
    if (table_update(&ts->by_name, a, b, false, NULL, index_del_step, t, NULL) == TABLE_STEP_WRITE)
        table_note_deleted(&ts->by_name);
    epoch_exit();
}

/* Hot path: no lock, no allocation; one hash, one probe, one CAS. */
int inv_tenant_get(inv_tenants *ts, const char *name, size_t len, inv_tenant **out)
{
    if (!ts || !out || !name)
        return INV_EINVALID;
    *out = NULL;
    if (len == 0 || len > INV_TENANT_NAME_MAX)
        return INV_ENOTFOUND;
    uint64_t a, b;
    name_key(ts, name, len, &a, &b);
    inv_tenant *t = NULL;
    epoch_enter();
    table_slot *s = table_find(&ts->by_name, a, b);
    if (s) {
        /* A frozen value is still the latest: a read needs no settling. */
        table_word v = table_load(s);
        if (table_is_live(v)) {
            t = (inv_tenant *)(uintptr_t)v.w0;
            if (!tenant_name_eq(t, name, len) || !ref_if_live(t))
                t = NULL;
        }
    }
    epoch_exit();
    if (t && inv_tenant_dropped(t)) {
        inv_tenant_put(t); /* outside the section: it may close the engine */
        t = NULL;
    }
    if (!t)
        return INV_ENOTFOUND;
    assert(tenant_ok(t) && tenant_name_eq(t, name, len));
    *out = t;
    return INV_OK;
}

inv_tenant *inv_tenant_default(inv_tenants *ts)
{
    assert(ts != NULL && ts->dflt != NULL);
    inv_tenant_ref(ts->dflt);
    return ts->dflt;
}

size_t inv_tenants_count(inv_tenants *ts)
{
    /* relaxed: a count, read on its own. */
    return ts ? atomic_load_explicit(&ts->count, memory_order_relaxed) : 0;
}

/* ---- the live list (under admin) ---------------------------------------- */

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    assert(a != NULL && b != NULL);
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* The index in live[] where name is or would go. */
static size_t live_pos(const inv_tenants *ts, const char *name, size_t len)
{
    assert(tenants_ok(ts) && name != NULL);
    size_t lo = 0, hi = ts->n_live;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const inv_tenant *m = ts->live[mid];
        if (name_cmp(m->name, m->name_len, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert(lo <= ts->n_live);
    return lo;
}

static inv_tenant *live_find(const inv_tenants *ts, const char *name, size_t len)
{
    assert(tenants_ok(ts));
    size_t i = live_pos(ts, name, len);
    return i < ts->n_live && tenant_name_eq(ts->live[i], name, len) ? ts->live[i] : NULL;
}

static int live_insert(inv_tenants *ts, inv_tenant *t)
{
    assert(live_ok(ts) && tenant_ok(t));
    if (ts->n_live == ts->cap_live) {
        size_t cap = ts->cap_live ? ts->cap_live * 2 : 16;
        inv_tenant **p = inv_realloc(ts->live, cap * sizeof *p);
        if (!p)
            return INV_ENOMEM;
        ts->live = p;
        ts->cap_live = cap;
    }
    size_t i = live_pos(ts, t->name, t->name_len);
    memmove(&ts->live[i + 1], &ts->live[i], (ts->n_live - i) * sizeof *ts->live);
    ts->live[i] = t;
    ts->n_live++;
    /* relaxed: a count (inv_tenants_count). */
    atomic_store_explicit(&ts->count, ts->n_live, memory_order_relaxed);
    assert(live_ok(ts) && ts->live[i] == t);
    return INV_OK;
}

static void live_remove(inv_tenants *ts, const inv_tenant *t)
{
    assert(live_ok(ts) && tenant_ok(t));
    size_t i = live_pos(ts, t->name, t->name_len);
    assert(i < ts->n_live && ts->live[i] == t);
    memmove(&ts->live[i], &ts->live[i + 1], (ts->n_live - i - 1) * sizeof *ts->live);
    ts->n_live--;
    assert(live_ok(ts));
    /* relaxed: a count (inv_tenants_count). */
    atomic_store_explicit(&ts->count, ts->n_live, memory_order_relaxed);
}

/* ---- opening one tenant ------------------------------------------------- */

/* data_dir/tenants/name (or /.dropped.name.N when seq is not 0) into buf;
 * false when it does not fit. */
static bool tenant_path(const inv_tenants *ts, char *buf, size_t cap, const char *name, size_t len,
                        uint64_t seq)
{
    assert(ts != NULL && ts->tenants_dir != NULL && buf != NULL);
    assert(name != NULL && len <= INV_TENANT_NAME_MAX);
    int n = seq ? snprintf(buf, cap, "%s/%s%.*s.%llu", ts->tenants_dir, TENANTS_DROPPED_PREFIX,
                           (int)len, name, (unsigned long long)seq)
                : snprintf(buf, cap, "%s/%.*s", ts->tenants_dir, (int)len, name);
    return n > 0 && (size_t)n < cap;
}

/* Opens tenant name's engine (dir: its data directory, NULL: the default
 * tenant's cfg or memory), calls on_open, and publishes it (live[] and the
 * index). Under admin, or before the set is shared. */
static int tenant_open(inv_tenants *ts, const char *name, size_t len, const char *dir,
                       inv_tenant **out)
{
    assert(tenants_ok(ts) && out != NULL);
    assert(name != NULL && len > 0 && len <= INV_TENANT_NAME_MAX);
    bool dflt = is_default_name(name, len);
    inv_tenant *t = inv_calloc(1, sizeof *t);
    if (!t)
        return INV_ENOMEM;
    t->set = ts;
    memcpy(t->name, name, len);
    t->name_len = len;
    atomic_init(&t->refs, 1); /* the set's own */
    atomic_init(&t->dropped, false);
    t->dir_fd = -1;
    inv_config c = ts->cfg;
    engine_tuning tuning = {0};
    char fd_path[TENANTS_FD_PATH_MAX];
    if (!dflt) {
        /* An empty tenant stays small; its tables grow as it fills. */
        c.levels_capacity = c.items_capacity = c.locations_capacity = c.holds_capacity = 0;
        c.data_dir = NULL;
        tuning.no_background = true; /* the set's thread ticks it */
    }
    if (!dflt && dir) {
        t->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t->dir_fd < 0) {
            free(t);
            return INV_EIO;
        }
        snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", t->dir_fd);
        c.data_dir = fd_path;
    }
    int rc = engine_open_tuned(&t->engine, &c, &tuning);
    if (rc != INV_OK) {
        if (t->dir_fd >= 0)
            close(t->dir_fd);
        free(t);
        return rc;
    }
    if (ts->hooks.on_open)
        ts->hooks.on_open(ts->hooks.arg, t);
    rc = live_insert(ts, t);
    if (rc == INV_OK) {
        rc = index_add(ts, t);
        if (rc != INV_OK)
            live_remove(ts, t);
    }
    if (rc != INV_OK) {
        /* relaxed: nobody else has seen t. */
        atomic_store_explicit(&t->refs, 0, memory_order_relaxed);
        tenant_destroy(t);
        return rc;
    }
    assert(tenant_ok(t) && t->engine != NULL);
    *out = t;
    return INV_OK;
}

/* ---- the shared background thread ---------------------------------------- */

/* One pass over every live non-default tenant, under admin (so drop and
 * close never race it). The default engine has its own thread. */
static void background_pass(inv_tenants *ts)
{
    assert(tenants_ok(ts));
    int64_t now_ms = clock_wall_ms();
    pthread_mutex_lock(&ts->admin);
    for (size_t i = 0; i < ts->n_live; i++)
        if (ts->live[i] != ts->dflt)
            engine_background_tick(ts->live[i]->engine, now_ms);
    pthread_mutex_unlock(&ts->admin);
    epoch_reclaim();
}

static void *background_main(void *arg)
{
    assert(tenants_ok(arg));
    inv_tenants *ts = arg;
    uint32_t period_ms = engine_background_period_ms(ts->dflt->engine);
    /* acquire: pairs with the release in inv_tenants_close. */
    while (!atomic_load_explicit(&ts->stopping, memory_order_acquire)) {
        background_pass(ts);
        clock_sleep_ms(period_ms);
    }
    return NULL;
}

/* ---- opening and closing the set ----------------------------------------- */

/* Opens every tenant directory under tenants/ and removes leftovers of
 * interrupted drops. */
static int open_existing(inv_tenants *ts)
{
    assert(tenants_ok(ts) && ts->tenants_dir != NULL);
    DIR *d = opendir(ts->tenants_dir);
    if (!d)
        return errno == ENOENT ? INV_OK : INV_EIO;
    int rc = INV_OK;
    struct dirent *de;
    char path[PATH_MAX];
    while (rc == INV_OK && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        bool aside = strncmp(nm, TENANTS_DROPPED_PREFIX, strlen(TENANTS_DROPPED_PREFIX)) == 0;
        if (!aside && inv_tenant_name_check(nm, len) != INV_OK)
            continue; /* ".", "..", or not ours */
        int n = snprintf(path, sizeof path, "%s/%s", ts->tenants_dir, nm);
        struct stat st;
        if (n <= 0 || (size_t)n >= sizeof path || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (aside) {
            rm_tree(path); /* a drop a crash interrupted: finish it */
            continue;
        }
        if (is_default_name(nm, len)) {
            FILEIO_WARN("invcore tenants: ignoring %s (the default tenant's name)\n", path);
            continue;
        }
        inv_tenant *t;
        rc = tenant_open(ts, nm, len, path, &t);
    }
    closedir(d);
    return rc;
}

static int set_paths(inv_tenants *ts, const char *data_dir)
{
    assert(ts != NULL && ts->data_dir == NULL);
    if (!data_dir)
        return INV_OK;
    size_t n = strlen(data_dir) + 1 + strlen(TENANTS_DIR) + 1;
    ts->data_dir = strdup(data_dir);
    ts->tenants_dir = inv_malloc(n);
    if (!ts->data_dir || !ts->tenants_dir)
        return INV_ENOMEM;
    snprintf(ts->tenants_dir, n, "%s/%s", data_dir, TENANTS_DIR);
    ts->cfg.data_dir = ts->data_dir;
    assert(ts->cfg.data_dir == ts->data_dir && ts->tenants_dir != NULL);
    return INV_OK;
}

int inv_tenants_open(inv_tenants **out, const inv_config *cfg, const inv_tenant_hooks *hooks)
{
    if (!out)
        return INV_EINVALID;
    *out = NULL;
    inv_tenants *ts = inv_calloc(1, sizeof *ts);
    if (!ts)
        return INV_ENOMEM;
    if (cfg)
        ts->cfg = *cfg;
    if (hooks)
        ts->hooks = *hooks;
    if (getrandom(&ts->seed, sizeof ts->seed, 0) != sizeof ts->seed)
        ts->seed = (uint64_t)(uintptr_t)ts ^ 0x9e3779b97f4a7c15ULL;
    pthread_mutex_init(&ts->admin, NULL);
    int rc = table_init(&ts->by_name, TENANTS_INDEX_CAPACITY, ts);
    if (rc != INV_OK) {
        pthread_mutex_destroy(&ts->admin);
        free(ts);
        return rc;
    }
    rc = set_paths(ts, cfg ? cfg->data_dir : NULL);
    if (rc == INV_OK)
        rc = tenant_open(ts, INV_TENANT_DEFAULT, strlen(INV_TENANT_DEFAULT), NULL, &ts->dflt);
    if (rc == INV_OK && ts->tenants_dir)
        rc = open_existing(ts);
    if (rc == INV_OK) {
        if (pthread_create(&ts->background, NULL, background_main, ts) == 0)
            ts->background_started = true;
        else
            rc = INV_ENOMEM;
    }
    if (rc != INV_OK) {
        inv_tenants_close(ts);
        return rc;
    }
    assert(tenants_ok(ts) && ts->dflt != NULL);
    *out = ts;
    return INV_OK;
}

void inv_tenants_close(inv_tenants *ts)
{
    if (!ts)
        return;
    assert(tenants_ok(ts));
    /* release: the background thread sees the stop after our last change. */
    atomic_store_explicit(&ts->stopping, true, memory_order_release);
    if (ts->background_started)
        pthread_join(ts->background, NULL);
    /* Every reference is back: the set's own is the last of each. */
    while (ts->n_live > 0) {
        inv_tenant *t = ts->live[ts->n_live - 1];
        assert(atomic_load_explicit(&t->refs, memory_order_relaxed) == 1);
        index_del(ts, t);
        live_remove(ts, t);
        inv_tenant_put(t);
    }
    table_destroy(&ts->by_name);
    epoch_drain_owner(ts);
    pthread_mutex_destroy(&ts->admin);
    free(ts->live);
    free(ts->data_dir);
    free(ts->tenants_dir);
    free(ts);
}

/* ---- create and drop ------------------------------------------------------ */

/* Makes tenants/NAME durably (tenants/ too, if missing); path gets it;
 * *made: this call created it (so a failure may remove it). */
static int create_dir(inv_tenants *ts, const char *name, size_t len, char *path, size_t cap,
                      bool *made)
{
    assert(tenants_ok(ts) && ts->tenants_dir != NULL);
    assert(path != NULL && made != NULL);
    *made = false;
    if (!tenant_path(ts, path, cap, name, len, 0))
        return INV_EINVALID;
    /* Found or made, tenants/ is synced into data_dir: one that an
     * earlier process made may not be on disk yet. */
    if (fileio_mkdir_durable(FAULT_TENANT_MKDIR, ts->tenants_dir, 0755) != 0)
        return INV_EIO;
    if (sysio_mkdir(FAULT_TENANT_MKDIR, path, 0755) == 0)
        *made = true;
    else if (errno != EEXIST) /* EEXIST: left by a crash right after a create */
        return INV_EIO;
    return fileio_fsync_dir(ts->tenants_dir) == 0 ? INV_OK : INV_EIO;
}

int inv_tenant_create(inv_tenants *ts, const char *name, size_t len)
{
    if (!ts || inv_tenant_name_check(name, len) != INV_OK)
        return INV_EINVALID;
    char path[PATH_MAX];
    bool made = false;
    pthread_mutex_lock(&ts->admin);
    assert(tenants_ok(ts));
    int rc = INV_OK;
    if (is_default_name(name, len) || live_find(ts, name, len))
        rc = INV_EEXISTS;
    else if (ts->n_live >= INV_TENANTS_MAX)
        rc = INV_ELIMIT;
    else if (ts->tenants_dir)
        rc = create_dir(ts, name, len, path, sizeof path, &made);
    if (rc == INV_OK) {
        inv_tenant *t;
        rc = tenant_open(ts, name, len, ts->tenants_dir ? path : NULL, &t);
    }
    if (rc != INV_OK && made)
        rm_tree(path); /* made here, nothing of it published */
    pthread_mutex_unlock(&ts->admin);
    return rc;
}

/* A drop without force refuses while t has live holds. It marks t dropped
 * first (seq_cst), then counts its holds, un-marking it when busy: a
 * request that checks inv_tenant_dropped after the mark stays out; one
 * whose check came just before the mark and whose hold lands after the
 * count is dropped with the tenant, as if it had come just before a FORCE
 * drop (docs/TENANTS.md). While marked, lookups answer NOTFOUND, also
 * for the moment a refused drop keeps the mark. Under admin. */
static bool tenant_drop_busy(inv_tenant *t)
{
    assert(tenant_ok(t) && t->engine != NULL);
    /* seq_cst: the mark is ordered before the hold count read below. */
    atomic_store_explicit(&t->dropped, true, memory_order_seq_cst);
    inv_stats st;
    bool busy = inv_stats_get(t->engine, &st) == INV_OK && st.holds_active > 0;
    if (busy)
        /* release: as the drop's own store. */
        atomic_store_explicit(&t->dropped, false, memory_order_release);
    return busy;
}

/* Renames t's directory aside durably: after this a crash loses t.
 * INV_EIO with *gone false: nothing changed (t stays live, its directory
 * in place). INV_EIO with *gone true: the directory may be aside for good
 * (the rename is done but could not be made durable, nor undone), so t
 * must be dropped anyway: a live t would acknowledge writes that the next
 * open removes with the renamed-aside directory (found by the I/O fault
 * loops, tests/test_faults_io.c). */
static int rename_aside(inv_tenants *ts, inv_tenant *t, bool *gone)
{
    assert(tenants_ok(ts) && tenant_ok(t));
    assert(gone != NULL && ts->tenants_dir != NULL);
    char from[PATH_MAX], to[PATH_MAX];
    *gone = false;
    /* Unique within this process; inv_tenants_open removes every earlier
     * process's leftovers before any drop, so none can be in the way. */
    uint64_t seq = ++ts->drop_seq;
    if (!tenant_path(ts, from, sizeof from, t->name, t->name_len, 0) ||
        !tenant_path(ts, to, sizeof to, t->name, t->name_len, seq))
        return INV_EIO;
    if (sysio_rename(FAULT_TENANT_RENAME, from, to) != 0)
        return INV_EIO;
    if (fileio_fsync_dir(ts->tenants_dir) != 0) {
        /* Put it back, durably, so t stays whole; else it is gone. */
        bool back = sysio_rename(FAULT_TENANT_RENAME, to, from) == 0;
        if (back && fileio_fsync_dir(ts->tenants_dir) == 0)
            return INV_EIO;
        *gone = true;
        if (back)
            return INV_EIO; /* under its own name: never removed by a path
                               a re-created tenant may own (an open after a
                               restart finds it, or finds it aside) */
    }
    t->dropped_dir = strdup(to); /* NULL: left for the next open to remove */
    return *gone ? INV_EIO : INV_OK;
}

int inv_tenant_drop(inv_tenants *ts, const char *name, size_t len, bool force)
{
    if (!ts || !name)
        return INV_EINVALID;
    if (is_default_name(name, len))
        return INV_EINVALID;
    pthread_mutex_lock(&ts->admin);
    assert(tenants_ok(ts));
    inv_tenant *t = live_find(ts, name, len);
    int rc = t ? INV_OK : INV_ENOTFOUND;
    if (rc == INV_OK && !force && tenant_drop_busy(t))
        rc = INV_EBUSY;
    bool gone = false;
    if (rc == INV_OK && ts->tenants_dir)
        rc = rename_aside(ts, t, &gone);
    if (rc == INV_OK || gone) {
        /* release: a holder that sees the mark sees the tenant gone. */
        atomic_store_explicit(&t->dropped, true, memory_order_release);
        index_del(ts, t);
        live_remove(ts, t);
    } else if (t) {
        /* release: the tenant stays (EBUSY already un-marked it). */
        atomic_store_explicit(&t->dropped, false, memory_order_release);
    }
    pthread_mutex_unlock(&ts->admin);
    if (rc == INV_OK || gone)
        inv_tenant_put(t); /* the set's own; the last one closes it */
    return rc;
}

int inv_tenants_each(inv_tenants *ts, int (*fn)(void *arg, inv_tenant *t), void *arg)
{
    if (!ts || !fn)
        return INV_EINVALID;
    pthread_mutex_lock(&ts->admin);
    assert(tenants_ok(ts));
    size_t n = ts->n_live;
    inv_tenant **v = inv_malloc((n ? n : 1) * sizeof *v);
    if (v)
        for (size_t i = 0; i < n; i++) {
            v[i] = ts->live[i];
            inv_tenant_ref(v[i]);
        }
    pthread_mutex_unlock(&ts->admin);
    if (!v)
        return INV_ENOMEM;
    /* fn runs without admin: it may create, drop or look up tenants. */
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && !inv_tenant_dropped(v[i]))
            rc = fn(arg, v[i]);
        inv_tenant_put(v[i]);
    }
    free(v);
    return rc;
}
