/*
 * powerloss.h — a simulated power loss for the engine's files (issue 17,
 * build item 4), used by tests/test_powerloss.c.
 *
 * Role: a child process that runs the engine records, through core/sysio.h's
 * observer, every successful create, mkdir, write (with its bytes), sync,
 * truncate, rename and unlink under one root directory into a log in
 * MAP_SHARED memory made before fork (pl_log). After the parent SIGKILLed
 * the child, pl_disk_build() constructs in a fresh directory "the disk after
 * a power loss" from that log:
 *  - a file's data: every write and truncate done before the last sync of
 *    that file started; of the later ones, by mode, all (PL_KEEP_ALL), none
 *    (PL_KEEP_NONE), those before a random cut in the global order
 *    (PL_KEEP_PREFIX), or a random subset of their 4 KiB pages, a kept page
 *    sometimes torn into a random subset of its 512-byte sectors
 *    (PL_KEEP_PAGES: an earlier page can be missing while a later one
 *    reached the disk, as on real storage);
 *  - a name (create, mkdir, rename into place, unlink): only if done before
 *    the last sync of its directory started, or before the random cut
 *    (PL_KEEP_ALL: always, PL_KEEP_NONE: never). A directory whose own name
 *    did not survive vanishes with everything in it, whatever was synced
 *    inside it (a file system without metadata journaling).
 *
 * "Done before a sync started": a fault hook on every sysio site (fault.h)
 * notes, per thread, how many events were logged just before the call;
 * events are logged after their call returned, so an event with a smaller
 * index had completed before the sync began. The model is never optimistic
 * about ordering.
 *
 * Crash points: the kill (the log's end), or an earlier entry
 * (pl_crash_after_multipage_write: just after a write that spans pages).
 * Any prefix of the log is a real history; a change the child acknowledged
 * when the log held E entries (pl_log_now) had its sync logged below E, so
 * it is due on every disk built from a prefix of E or more entries.
 *
 * Identity: files and directories are named by inode; a create or mkdir
 * starts a new generation of its inode (a removed snapshot's inode can come
 * back as a new temp file while the removal is not yet durable).
 *
 * Scope: the calls that go through core/sysio.h (every create, write, sync,
 * rename and removal of the journal, snapshots, recovery and tenants);
 * directories the test makes before the child starts are durable. A write
 * to a file whose creation the log never saw fails the build of the image.
 *
 * Invariants: the log is append-only; an entry is used only once whole
 * (ready, release/acquire); a log that ran out of room stops the child at
 * once (_exit in the observer), so nothing the engine relied on lies past
 * the log's end (a call done but not logged had no sync covering it). Pre-existing directories the test
 * declares (pl_log_durable_dir) count as durable. Only the child arms the
 * seam; the parent reads the log after reaping the child.
 */
#ifndef INVCORE_TESTS_POWERLOSS_H
#define INVCORE_TESTS_POWERLOSS_H

#include "fault.h"
#include "sysio.h"
#include "test_util.h"

#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PL_EVENTS_MAX (1u << 18) /* log entries per trial (lazily touched) */
#define PL_DATA_BYTES (256ull << 20) /* bytes of written data per trial (lazily touched) */
#define PL_NAME_MAX 64 /* a file name in the data directory (segments, snapshots) */
#define PL_PATH_MAX 512
#define PL_PAGE_BYTES 4096u /* what storage writes whole or not at all ... */
#define PL_SECTOR_BYTES 512u /* ... unless torn, at this granularity */
#define PL_OBJS_MAX 4096 /* files and directories (all generations) in one trial */
#define PL_PREDECLARED_MAX 8 /* durable directories a test may declare */
#define PL_OVERFLOW_EXIT 7 /* the child's exit status when the log is full */

typedef enum {
    PL_EV_CREATE = 1, /* ino created as name in dir_ino */
    PL_EV_MKDIR, /* directory ino created as name in dir_ino */
    PL_EV_WRITE, /* len bytes at off of ino (data in the arena, or zero) */
    PL_EV_SYNC, /* ino synced; begin: events before it were done when it started */
    PL_EV_TRUNCATE, /* ino cut (or extended) to len */
    PL_EV_RENAME, /* ino moved from name in dir_ino to name2 in dir2_ino */
    PL_EV_UNLINK, /* name removed from dir_ino */
} pl_kind;

typedef struct {
    _Atomic uint32_t ready; /* 1 once every field below is written */
    uint8_t kind;
    uint8_t zero; /* WRITE: the bytes were all zero (none stored) */
    uint64_t begin; /* SYNC */
    uint64_t ino, dir_ino, dir2_ino;
    uint64_t off, len, data;
    char name[PL_NAME_MAX], name2[PL_NAME_MAX];
} pl_event;

typedef struct {
    char root[PL_PATH_MAX]; /* everything outside it is ignored */
    size_t root_len;
    uint64_t root_ino;
    size_t n_pre;
    uint64_t pre_ino[PL_PREDECLARED_MAX]; /* durable directories in root */
    char pre_name[PL_PREDECLARED_MAX][PL_NAME_MAX];
    _Atomic uint64_t n_events; /* entries reserved */
    _Atomic uint64_t data_used; /* arena bytes reserved */
    _Atomic uint32_t bad; /* a name too long, a stat that failed: the trial is void */
    pl_event *events;
    uint8_t *data;
} pl_log;

/* ---- the log (both sides) ------------------------------------------------- */

static inline void *pl_map_shared(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    cr_assert(p != MAP_FAILED, "mmap %zu: %s", bytes, strerror(errno));
    return p;
}

/* Made once per test, before any fork; reset per trial by pl_log_reset. */
static inline pl_log *pl_log_create(void)
{
    pl_log *l = pl_map_shared(sizeof *l);
    l->events = pl_map_shared(sizeof(pl_event) * PL_EVENTS_MAX);
    l->data = pl_map_shared(PL_DATA_BYTES);
    return l;
}

static inline void pl_log_destroy(pl_log *l)
{
    munmap(l->events, sizeof(pl_event) * PL_EVENTS_MAX);
    munmap(l->data, PL_DATA_BYTES);
    munmap(l, sizeof *l);
}

/* Empties the log and points it at root (an existing, durable directory).
 * Drops the pages the last trial touched, so trials do not add up. */
static inline void pl_log_reset(pl_log *l, const char *root)
{
    uint64_t n = atomic_load_explicit(&l->n_events, memory_order_relaxed);
    uint64_t d = atomic_load_explicit(&l->data_used, memory_order_relaxed);
    size_t ev_bytes = sizeof(pl_event) * (n < PL_EVENTS_MAX ? n : PL_EVENTS_MAX);
    if (n && madvise(l->events, ev_bytes, MADV_REMOVE) != 0)
        memset(l->events, 0, ev_bytes); /* the entries must read as not ready */
    if (d)
        (void)madvise(l->data, d < PL_DATA_BYTES ? d : PL_DATA_BYTES, MADV_REMOVE);
    struct stat st;
    cr_assert_eq(stat(root, &st), 0, "stat %s: %s", root, strerror(errno));
    size_t len = strlen(root);
    cr_assert(len + PL_NAME_MAX * 4 < PL_PATH_MAX, "root %s too long", root);
    memcpy(l->root, root, len + 1);
    l->root_len = len;
    l->root_ino = (uint64_t)st.st_ino;
    l->n_pre = 0;
    /* relaxed: no child runs yet; fork orders these stores before it. */
    atomic_store_explicit(&l->n_events, 0, memory_order_relaxed);
    atomic_store_explicit(&l->data_used, 0, memory_order_relaxed);
    atomic_store_explicit(&l->bad, 0, memory_order_relaxed);
}

/* root/name exists now and counts as durable (made and synced before the
 * trial, as an operator's data directory would be). */
static inline void pl_log_durable_dir(pl_log *l, const char *name)
{
    cr_assert(l->n_pre < PL_PREDECLARED_MAX && strlen(name) < PL_NAME_MAX);
    char path[PL_PATH_MAX + PL_NAME_MAX];
    snprintf(path, sizeof path, "%s/%s", l->root, name);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    cr_assert(S_ISDIR(st.st_mode), "%s is not a directory", path);
    l->pre_ino[l->n_pre] = (uint64_t)st.st_ino;
    snprintf(l->pre_name[l->n_pre], PL_NAME_MAX, "%s", name);
    l->n_pre++;
}

/* ---- the child side: recording --------------------------------------------- */

/* Per thread: events logged just before this thread's latest sysio call. */
static __thread uint64_t pl_tl_begin;

static inline void pl_mark_bad(pl_log *l)
{
    /* relaxed: read by the parent after reaping the child. */
    atomic_store_explicit(&l->bad, 1, memory_order_relaxed);
}

/* A new entry (kind set, ready not yet); a full log ends the child here: the
 * call that could not be recorded is the last thing the disk saw. */
static inline pl_event *pl_reserve(pl_log *l, pl_kind kind)
{
    /* seq_cst: orders this reservation (after the call it records returned)
     * against the loads in pl_hook (before another thread's call started). */
    uint64_t i = atomic_fetch_add_explicit(&l->n_events, 1, memory_order_seq_cst);
    if (i >= PL_EVENTS_MAX)
        _exit(PL_OVERFLOW_EXIT);
    pl_event *e = &l->events[i];
    assert(kind >= PL_EV_CREATE && kind <= PL_EV_UNLINK);
    /* relaxed: the child never reuses an entry; a reset is before fork. */
    assert(!atomic_load_explicit(&e->ready, memory_order_relaxed));
    e->kind = (uint8_t)kind;
    return e;
}

static inline void pl_publish(pl_event *e)
{
    /* release: the fields are complete before the parent may use the entry
     * (it reads after the child died; the flag tells a whole entry from one
     * the kill interrupted). */
    atomic_store_explicit(&e->ready, 1, memory_order_release);
}

static inline int pl_hook(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    (void)site;
    (void)call;
    (void)arg;
    (void)arg2;
    pl_log *l = ctx;
    /* seq_cst: see pl_reserve. */
    pl_tl_begin = atomic_load_explicit(&l->n_events, memory_order_seq_cst);
    return 0; /* never fails the call */
}

static inline uint64_t pl_fd_ino(pl_log *l, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        pl_mark_bad(l);
        return 0;
    }
    return (uint64_t)st.st_ino;
}

/* The absolute path of (dirfd, path) into out; false if it is not under
 * the root (or cannot be resolved). */
static inline bool pl_full_path(pl_log *l, int dirfd, const char *path, char *out, size_t cap)
{
    char base[PL_PATH_MAX];
    if (path[0] == '/') {
        base[0] = '\0';
    } else if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return false;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n <= 0)
            return false;
        base[n] = '\0';
    }
    int n =
        path[0] == '/' ? snprintf(out, cap, "%s", path) : snprintf(out, cap, "%s/%s", base, path);
    if (n < 0 || (size_t)n >= cap)
        return false;
    return strncmp(out, l->root, l->root_len) == 0 &&
           (out[l->root_len] == '/' || out[l->root_len] == '\0');
}

/* Splits full into its directory's inode and its last name; false if the
 * directory is gone or the name too long (then the trial is void). */
static inline bool pl_parent(pl_log *l, const char *full, uint64_t *dir_ino, char *name)
{
    const char *slash = strrchr(full, '/');
    if (!slash || strlen(slash + 1) >= PL_NAME_MAX) {
        pl_mark_bad(l);
        return false;
    }
    char dir[PL_PATH_MAX];
    size_t dl = (size_t)(slash - full);
    memcpy(dir, full, dl);
    dir[dl ? dl : 1] = '\0';
    if (!dl)
        dir[0] = '/';
    struct stat st;
    if (stat(dir, &st) != 0) {
        pl_mark_bad(l);
        return false;
    }
    *dir_ino = (uint64_t)st.st_ino;
    snprintf(name, PL_NAME_MAX, "%s", slash + 1);
    return true;
}

static inline bool pl_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static inline void pl_record_write(pl_log *l, const sysio_event *ev)
{
    uint64_t ino = pl_fd_ino(l, ev->fd);
    uint64_t off = (uint64_t)ev->off, left = ev->len;
    for (int i = 0; i < ev->iovcnt && left > 0; i++) {
        size_t n = ev->iov[i].iov_len < left ? ev->iov[i].iov_len : (size_t)left;
        const uint8_t *src = ev->iov[i].iov_base;
        pl_event *e = pl_reserve(l, PL_EV_WRITE);
        e->ino = ino;
        e->off = off;
        e->len = n;
        e->zero = pl_all_zero(src, n);
        if (!e->zero) {
            /* relaxed: a disjoint range; the entry's ready flag publishes it. */
            uint64_t at = atomic_fetch_add_explicit(&l->data_used, n, memory_order_relaxed);
            if (at + n > PL_DATA_BYTES)
                _exit(PL_OVERFLOW_EXIT);
            memcpy(l->data + at, src, n);
            e->data = at;
        }
        pl_publish(e);
        off += n;
        left -= n;
    }
}

/* A create, mkdir or unlink of (dirfd, path): its parent and name. */
static inline void pl_record_name(pl_log *l, pl_kind kind, const sysio_event *ev)
{
    char full[PL_PATH_MAX];
    if (!pl_full_path(l, ev->dirfd, ev->path, full, sizeof full))
        return;
    uint64_t dir_ino = 0, ino = 0;
    char name[PL_NAME_MAX];
    if (!pl_parent(l, full, &dir_ino, name))
        return;
    struct stat st;
    if (kind == PL_EV_CREATE)
        ino = pl_fd_ino(l, ev->fd);
    else if (kind == PL_EV_MKDIR)
        ino = stat(full, &st) == 0 ? (uint64_t)st.st_ino : (pl_mark_bad(l), 0);
    pl_event *e = pl_reserve(l, kind);
    e->ino = ino;
    e->dir_ino = dir_ino;
    memcpy(e->name, name, sizeof name);
    pl_publish(e);
}

static inline void pl_record_rename(pl_log *l, const sysio_event *ev)
{
    char from[PL_PATH_MAX], to[PL_PATH_MAX];
    bool in_from = pl_full_path(l, ev->dirfd, ev->path, from, sizeof from);
    bool in_to = pl_full_path(l, ev->dirfd, ev->path2, to, sizeof to);
    if (!in_from && !in_to)
        return;
    struct stat st;
    pl_event *e = pl_reserve(l, PL_EV_RENAME);
    if (!in_from || !in_to || stat(to, &st) != 0 || !pl_parent(l, from, &e->dir_ino, e->name) ||
        !pl_parent(l, to, &e->dir2_ino, e->name2))
        pl_mark_bad(l); /* into or out of the root: the model cannot follow */
    else
        e->ino = (uint64_t)st.st_ino;
    pl_publish(e);
}

/* The sysio observer (runs on the engine's threads, after each call). */
static inline void pl_observe(void *ctx, const sysio_event *ev)
{
    pl_log *l = ctx;
    pl_event *e;
    switch (ev->op) {
    case SYSIO_CREATE:
        pl_record_name(l, PL_EV_CREATE, ev);
        break;
    case SYSIO_MKDIR:
        pl_record_name(l, PL_EV_MKDIR, ev);
        break;
    case SYSIO_UNLINK:
        pl_record_name(l, PL_EV_UNLINK, ev);
        break;
    case SYSIO_WRITE:
        pl_record_write(l, ev);
        break;
    case SYSIO_SYNC:
        e = pl_reserve(l, PL_EV_SYNC);
        e->ino = pl_fd_ino(l, ev->fd);
        e->begin = pl_tl_begin;
        pl_publish(e);
        break;
    case SYSIO_TRUNCATE:
        e = pl_reserve(l, PL_EV_TRUNCATE);
        e->ino = pl_fd_ino(l, ev->fd);
        e->len = ev->len;
        pl_publish(e);
        break;
    case SYSIO_RENAME:
        pl_record_rename(l, ev);
        break;
    default:
        pl_mark_bad(l);
    }
}

/* In the child, before the engine opens: record from now on. Every site but
 * the allocator's gets the hook (a sync's start; any site appended later is
 * covered too). */
static inline void pl_child_arm(pl_log *l)
{
    for (int s = 0; s < FAULT_SITE_COUNT; s++)
        if (s != FAULT_ALLOC)
            fault_hook((fault_site)s, pl_hook, l);
    sysio_observe(pl_observe, l);
}

/* ---- the parent side: the disk after the power loss ------------------------ */

typedef enum {
    PL_KEEP_ALL = 0, /* every unsynced write and name reached the disk */
    PL_KEEP_NONE, /* none did */
    PL_KEEP_PREFIX, /* those before a random point of the global order */
    PL_KEEP_PAGES, /* random 4 KiB pages of the writes, some torn; names: a prefix */
    PL_KEEP_MODES
} pl_keep;

static inline const char *pl_keep_name(pl_keep k)
{
    static const char *const names[PL_KEEP_MODES] = {"all", "none", "prefix", "pages"};
    return k < PL_KEEP_MODES ? names[k] : "?";
}

typedef struct {
    uint64_t events; /* whole entries in the log */
    uint64_t writes_unsynced; /* write entries no sync covered */
    uint64_t pieces_dropped, pieces_torn; /* PAGES: pages lost, pages torn */
    uint64_t names_dropped; /* name changes (create, rename, unlink, mkdir) lost */
    uint64_t files_built, dirs_built; /* what the fresh directory holds */
} pl_stats;

typedef struct {
    uint64_t ino;
    bool dir;
    uint64_t cover; /* events before this index are durable (its last sync's start) */
} pl_obj;

typedef struct {
    uint32_t dir, obj; /* obj: ADD only */
    bool add;
    uint64_t idx;
    const char *name;
} pl_effect;

typedef struct {
    uint32_t dir, obj;
    const char *name;
} pl_entry;

typedef struct {
    const pl_log *l;
    pl_keep keep;
    uint64_t cut; /* PREFIX / PAGES names: events before it reached the disk */
    tu_rng rng;
    pl_obj *objs;
    uint32_t n_objs;
    uint32_t *ev_obj; /* per event: its object, UINT32_MAX if ignored */
    pl_effect *fx;
    size_t n_fx;
    pl_entry *ents;
    size_t n_ents;
    pl_stats st;
} pl_model;

static inline uint32_t pl_obj_of(const pl_model *m, uint64_t ino)
{
    for (uint32_t i = m->n_objs; i-- > 0;)
        if (m->objs[i].ino == ino)
            return i; /* the newest generation of that inode */
    return UINT32_MAX;
}

static inline uint32_t pl_obj_new(pl_model *m, uint64_t ino, bool dir)
{
    assert(ino != 0 || m->n_objs == 0); /* only a failed stat gives 0 (then the log is bad) */
    cr_assert(m->n_objs < PL_OBJS_MAX, "more than %d files in one trial", PL_OBJS_MAX);
    m->objs[m->n_objs] = (pl_obj){.ino = ino, .dir = dir};
    return m->n_objs++;
}

static inline void pl_fx_push(pl_model *m, uint32_t dir, bool add, uint32_t obj, uint64_t idx,
                              const char *name)
{
    if (dir == UINT32_MAX || !m->objs[dir].dir || (add && obj == UINT32_MAX))
        return; /* outside what the model follows */
    assert(name && name[0] && !strchr(name, '/'));
    m->fx[m->n_fx++] = (pl_effect){.dir = dir, .obj = obj, .add = add, .idx = idx, .name = name};
}

/* Pass 1: objects, which event is about which, sync coverage, name effects. */
static inline void pl_model_scan(pl_model *m, uint64_t n)
{
    const pl_log *l = m->l;
    uint32_t root = pl_obj_new(m, l->root_ino, true);
    /* the root itself is given (it is out_root); its entries need a sync
     * of it like any other directory's (cover 0 until one is seen). */
    assert(m->objs[root].cover == 0);
    for (size_t i = 0; i < l->n_pre; i++) {
        uint32_t d = pl_obj_new(m, l->pre_ino[i], true);
        m->ents[m->n_ents++] = (pl_entry){.dir = root, .obj = d, .name = l->pre_name[i]};
    }
    for (uint64_t i = 0; i < n; i++) {
        const pl_event *e = &l->events[i];
        m->ev_obj[i] = UINT32_MAX;
        /* acquire: pairs with pl_publish. */
        if (!atomic_load_explicit(&e->ready, memory_order_acquire))
            continue; /* interrupted by the kill: its call's caller never went on */
        uint32_t o;
        switch ((pl_kind)e->kind) {
        case PL_EV_CREATE:
        case PL_EV_MKDIR:
            o = pl_obj_new(m, e->ino, e->kind == PL_EV_MKDIR);
            m->ev_obj[i] = o;
            pl_fx_push(m, pl_obj_of(m, e->dir_ino), true, o, i, e->name);
            break;
        case PL_EV_WRITE:
        case PL_EV_TRUNCATE:
            m->ev_obj[i] = pl_obj_of(m, e->ino);
            /* every file of a trial is created in it, through the seam: a
             * write to one never seen created bypassed sysio's create */
            cr_assert(m->ev_obj[i] != UINT32_MAX,
                      "log entry %" PRIu64 ": a write to inode %" PRIu64
                      " whose creation was not seen (a create outside core/sysio.h?)",
                      i, e->ino);
            break;
        case PL_EV_SYNC:
            o = pl_obj_of(m, e->ino);
            if (o != UINT32_MAX && m->objs[o].cover < e->begin)
                m->objs[o].cover = e->begin;
            break;
        case PL_EV_RENAME:
            o = pl_obj_of(m, e->ino);
            pl_fx_push(m, pl_obj_of(m, e->dir_ino), false, UINT32_MAX, i, e->name);
            pl_fx_push(m, pl_obj_of(m, e->dir2_ino), true, o, i, e->name2);
            break;
        case PL_EV_UNLINK:
            pl_fx_push(m, pl_obj_of(m, e->dir_ino), false, UINT32_MAX, i, e->name);
            break;
        default:
            cr_assert_fail("log entry %" PRIu64 ": kind %u", i, e->kind);
        }
    }
}

static inline bool pl_unsynced_kept(const pl_model *m, uint64_t idx)
{
    return m->keep == PL_KEEP_ALL || (m->keep != PL_KEEP_NONE && idx < m->cut);
}

/* Pass 2: the names that reached the disk, in order. */
static inline void pl_model_names(pl_model *m)
{
    for (size_t k = 0; k < m->n_fx; k++) {
        const pl_effect *f = &m->fx[k];
        assert(k == 0 || m->fx[k - 1].idx <= f->idx); /* in the log's order */
        if (f->idx >= m->objs[f->dir].cover && !pl_unsynced_kept(m, f->idx)) {
            m->st.names_dropped++;
            continue;
        }
        size_t j = 0;
        while (j < m->n_ents &&
               !(m->ents[j].dir == f->dir && strcmp(m->ents[j].name, f->name) == 0))
            j++;
        if (f->add) {
            if (j == m->n_ents)
                m->n_ents++;
            m->ents[j] = (pl_entry){.dir = f->dir, .obj = f->obj, .name = f->name};
        } else if (j < m->n_ents) {
            m->ents[j] = m->ents[--m->n_ents];
        }
    }
}

typedef struct {
    uint8_t *p;
    uint64_t size, cap;
} pl_buf;

static inline void pl_buf_fit(pl_buf *b, uint64_t end)
{
    if (end > b->cap) {
        uint64_t cap = b->cap ? b->cap : 65536;
        while (cap < end)
            cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p, "out of memory (%" PRIu64 " bytes)", cap);
        memset(b->p + b->cap, 0, cap - b->cap);
        b->cap = cap;
    }
    if (end > b->size)
        b->size = end;
}

/* Puts [from, to) of write e (file offsets) into b. */
static inline void pl_buf_put(const pl_log *l, pl_buf *b, const pl_event *e, uint64_t from,
                              uint64_t to)
{
    assert(e->kind == PL_EV_WRITE && from >= e->off && from <= to && to <= e->off + e->len);
    pl_buf_fit(b, to);
    assert(b->size >= to);
    if (e->zero)
        memset(b->p + from, 0, to - from);
    else
        memcpy(b->p + from, l->data + e->data + (from - e->off), to - from);
}

/* PAGES: each 4 KiB page of e on its own, kept or not; a kept page torn
 * (a random subset of its 512-byte sectors) one time in four. */
static inline void pl_buf_pages(pl_model *m, pl_buf *b, const pl_event *e)
{
    uint64_t end = e->off + e->len;
    for (uint64_t p = e->off; p < end;) {
        uint64_t pe = (p / PL_PAGE_BYTES + 1) * PL_PAGE_BYTES;
        if (pe > end)
            pe = end;
        if (tu_rng_below(&m->rng, 2) == 0) {
            m->st.pieces_dropped++;
        } else if (tu_rng_below(&m->rng, 4) != 0) {
            pl_buf_put(m->l, b, e, p, pe);
        } else {
            m->st.pieces_torn++;
            for (uint64_t s = p; s < pe;) {
                uint64_t se = (s / PL_SECTOR_BYTES + 1) * PL_SECTOR_BYTES;
                if (se > pe)
                    se = pe;
                if (tu_rng_below(&m->rng, 2))
                    pl_buf_put(m->l, b, e, s, se);
                s = se;
            }
        }
        p = pe;
    }
}

/* Pass 3 for one file: its bytes on the disk after the power loss. */
static inline void pl_model_file(pl_model *m, uint32_t o, uint64_t n, pl_buf *b)
{
    const pl_log *l = m->l;
    b->size = 0;
    if (b->p)
        memset(b->p, 0, b->cap);
    for (uint64_t i = 0; i < n; i++) {
        if (m->ev_obj[i] != o)
            continue;
        const pl_event *e = &l->events[i];
        bool synced = i < m->objs[o].cover;
        if (!synced && e->kind == PL_EV_WRITE)
            m->st.writes_unsynced++;
        if (!synced && m->keep == PL_KEEP_PAGES && e->kind == PL_EV_WRITE) {
            pl_buf_pages(m, b, e);
            continue;
        }
        bool keep = synced || (m->keep == PL_KEEP_PAGES ? tu_rng_below(&m->rng, 2) == 0
                                                        : pl_unsynced_kept(m, i));
        if (!keep)
            continue;
        if (e->kind == PL_EV_WRITE) {
            pl_buf_put(l, b, e, e->off, e->off + e->len);
        } else {
            pl_buf_fit(b, e->len);
            if (e->len < b->size)
                memset(b->p + e->len, 0, b->size - e->len);
            b->size = e->len;
        }
    }
}

static inline void pl_write_file(const char *path, const pl_buf *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    for (uint64_t off = 0; off < b->size;) {
        ssize_t w = pwrite(fd, b->p + off, (size_t)(b->size - off), (off_t)off);
        cr_assert(w > 0, "write %s: %s", path, strerror(errno));
        off += (uint64_t)w;
    }
    close(fd);
}

/* Writes directory object d's durable entries below path (depth-first). */
static inline void pl_build_dir(pl_model *m, uint32_t d, const char *path, uint64_t n, pl_buf *b,
                                unsigned depth)
{
    cr_assert(depth < 16, "directories nested too deep under %s", path);
    for (size_t j = 0; j < m->n_ents; j++) {
        if (m->ents[j].dir != d)
            continue;
        char child[PL_PATH_MAX];
        int len = snprintf(child, sizeof child, "%s/%s", path, m->ents[j].name);
        cr_assert(len > 0 && (size_t)len < sizeof child, "path %s/%s too long", path,
                  m->ents[j].name);
        uint32_t o = m->ents[j].obj;
        if (m->objs[o].dir) {
            cr_assert(mkdir(child, 0755) == 0, "mkdir %s: %s", child, strerror(errno));
            m->st.dirs_built++;
            pl_build_dir(m, o, child, n, b, depth + 1);
        } else {
            pl_model_file(m, o, n, b);
            pl_write_file(child, b);
            m->st.files_built++;
        }
    }
}

/* Whole entries the log holds (after the child was reaped). */
static inline uint64_t pl_log_events(const pl_log *l)
{
    /* relaxed: the child is reaped. */
    uint64_t n = atomic_load_explicit(&l->n_events, memory_order_relaxed);
    return n < PL_EVENTS_MAX ? n : PL_EVENTS_MAX;
}

/* In the child: how far the log is now. A change acknowledged when this
 * was E had its sync logged below E, so a crash at any end >= E keeps it. */
static inline uint64_t pl_log_now(pl_log *l)
{
    /* seq_cst: see pl_reserve (the sync's entry is counted). */
    return atomic_load_explicit(&l->n_events, memory_order_seq_cst);
}

/* An earlier crash point: just after a random non-zero write that spans two
 * or more 4 KiB pages (no sync can cover it yet: a sync covers only what was
 * done before it started). Entries from there on never happened; the log's
 * prefix is a real history. The log's end if there is no such write. */
static inline uint64_t pl_crash_after_multipage_write(const pl_log *l, tu_rng *r)
{
    uint64_t n = pl_log_events(l), found = 0, pick = n;
    for (uint64_t i = 0; i < n; i++) {
        const pl_event *e = &l->events[i];
        /* acquire: pairs with pl_publish. */
        if (!atomic_load_explicit(&e->ready, memory_order_acquire) || e->kind != PL_EV_WRITE ||
            e->zero || e->len == 0 ||
            e->off / PL_PAGE_BYTES == (e->off + e->len - 1) / PL_PAGE_BYTES)
            continue;
        if (tu_rng_below(r, ++found) == 0)
            pick = i + 1; /* reservoir sampling: each such write equally likely */
    }
    return pick;
}

/* The disk after a power loss just after entry end - 1 of the log (end:
 * pl_log_events for the kill itself), by keep, built into out_root (an
 * existing empty directory standing for the log's root). seed drives the
 * random choices. */
static inline pl_stats pl_disk_build(const pl_log *l, uint64_t end, pl_keep keep, uint64_t seed,
                                     const char *out_root)
{
    cr_assert_eq(atomic_load_explicit(&l->bad, memory_order_relaxed), 0,
                 "the power-loss log could not follow a call (see powerloss.h)");
    uint64_t n = pl_log_events(l);
    cr_assert(end <= n, "crash point %" PRIu64 " past the log's %" PRIu64, end, n);
    n = end;
    pl_model m = {.l = l, .keep = keep, .rng = tu_rng_seed(seed)};
    m.objs = calloc(PL_OBJS_MAX, sizeof *m.objs);
    m.ev_obj = calloc(n ? n : 1, sizeof *m.ev_obj);
    m.fx = calloc(2 * n + 1, sizeof *m.fx);
    m.ents = calloc(2 * n + PL_PREDECLARED_MAX + 1, sizeof *m.ents);
    cr_assert(m.objs && m.ev_obj && m.fx && m.ents, "out of memory");
    m.cut = tu_rng_below(&m.rng, n + 1);
    pl_model_scan(&m, n);
    pl_model_names(&m);
    pl_buf b = {0};
    pl_build_dir(&m, 0, out_root, n, &b, 0);
    m.st.events = n;
    assert(m.st.files_built + m.st.dirs_built <= m.n_objs);
    free(b.p);
    free(m.objs);
    free(m.ev_obj);
    free(m.fx);
    free(m.ents);
    return m.st;
}

#endif
