/*
 * feed.c — the change feed: readers over the journal (inv_feed_open on a
 * running engine, inv_feed_open_dir on a data directory no engine owns),
 * a level's history (inv_level_history), and the retention that keeps
 * journal segments for them (feed_retention_drop, history.start).
 *
 * No second log: a reader reads the segment files themselves (feed_scan.h)
 * and decodes each record (feed_decode.h). A running engine's reader sees
 * records below the journal's durable end only, so never a change that a
 * crash could take back; an offline reader sees every whole record.
 *
 * Concurrency: the engine's feed state (one per engine) has one mutex for
 * its boundary index and for retention; readers take it only to open.
 * inv_feed_next takes no lock: it reads the durable end (the journal's
 * acquire) and the oldest kept position (an acquire, below). A reader is
 * used by one thread at a time.
 *
 * Retention: R, the first kept position, only grows. It is stored in
 * history.start (durable) and then published here before any segment is
 * deleted, so a reader that checked its position against R never reads a
 * deleted segment it needs without being told (INV_ELIMIT).
 *
 * History (inv_level_history) is a bounded scan back, not an index of
 * levels: the boundary index knows a record start every FEED_MARK_BYTES,
 * so the scan walks the journal backwards in chunks of that size from
 * `before`, each chunk forward, keeping the level's records, until the
 * page is full or FEED_HISTORY_SCAN_BYTES_MAX were walked. Cost: O(bytes
 * walked), i.e. proportional to how far back the level's previous changes
 * lie, not to the number of levels; nothing is kept in memory per level
 * and nothing slows the write path.
 */
#include "sysio.h"
#include "alloc.h"
#include "feed.h"

#include "clock.h"
#include "feed_decode.h"
#include "feed_scan.h"
#include "fileio.h"
#include "journal.h"
#include "persist.h"
#include "vec.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define FEED_PATH_MAX (JOURNAL_PATH_MAX + FILEIO_NAME_MAX)

/* history.start: the fileio header (magic, version, R as its position),
 * then u64 L and the XXH3_64 of everything before it. */
#define FEED_HISTORY_MAGIC "INVHIST1"
#define FEED_HISTORY_VERSION 1u
#define FEED_HISTORY_LEN (FILEIO_HEADER_BYTES + 16u)

static const fileio_format history_format = {FEED_HISTORY_MAGIC, FEED_HISTORY_VERSION};

struct feed_state {
    pthread_mutex_t lock; /* the index and retention */
    feed_index index; /* boundaries of the live journal */
    /* R and L (feed.h). Stored with release after history.start is
     * durable and before any segment goes; readers load R with acquire. */
    _Atomic uint64_t oldest;
    _Atomic uint64_t before_oldest; /* 0: not known (nothing dropped by us) */
};

/* The retention bounds, for asserts only (under st->lock, which orders
 * them: R at or past the first position, L before it or not known). */
static bool feed_state_ok(feed_state *st)
{
    /* relaxed (both): under the lock that retention stores them under. */
    uint64_t r = atomic_load_explicit(&st->oldest, memory_order_relaxed);
    uint64_t l = atomic_load_explicit(&st->before_oldest, memory_order_relaxed);
    return r >= JOURNAL_POSITION_FIRST && (l == 0 || l < r);
}

/* ---- history.start -------------------------------------------------------- */

static void history_path(char *out, size_t cap, const char *dir, const char *suffix)
{
    assert(out != NULL && dir != NULL && suffix != NULL);
    snprintf(out, cap, "%s/%s%s", dir, FEED_HISTORY_FILE, suffix);
}

/* Reads R and L (INV_ENOTFOUND: no file; INV_EINVALID: a bad one). */
static int history_read(const char *dir, uint64_t *r, uint64_t *l)
{
    assert(dir != NULL && r != NULL && l != NULL);
    char path[FEED_PATH_MAX];
    history_path(path, sizeof path, dir, "");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? INV_ENOTFOUND : INV_EIO;
    uint8_t b[FEED_HISTORY_LEN + 1];
    ssize_t n = pread(fd, b, sizeof b, 0);
    close(fd);
    if (n != (ssize_t)FEED_HISTORY_LEN)
        return INV_EINVALID;
    *r = fileio_load_u64(b + 16);
    *l = fileio_load_u64(b + FILEIO_HEADER_BYTES);
    if (fileio_header_check(b, FEED_HISTORY_LEN, &history_format, *r) ||
        fileio_load_u64(b + FILEIO_HEADER_BYTES + 8) != XXH3_64bits(b, FILEIO_HEADER_BYTES + 8) ||
        *l >= *r || *r < JOURNAL_POSITION_FIRST)
        return INV_EINVALID;
    return INV_OK;
}

/* Makes (R, L) durable: a temporary file synced, renamed over the old
 * one, the directory synced. */
static int history_write(const char *dir, uint64_t r, uint64_t l)
{
    assert(dir != NULL && r >= JOURNAL_POSITION_FIRST);
    assert(l < r);
    uint8_t b[FEED_HISTORY_LEN];
    fileio_header_encode(b, &history_format, r);
    memcpy(b + FILEIO_HEADER_BYTES, &l, sizeof l);
    uint64_t sum = XXH3_64bits(b, FILEIO_HEADER_BYTES + 8);
    memcpy(b + FILEIO_HEADER_BYTES + 8, &sum, sizeof sum);
    char tmp[FEED_PATH_MAX], path[FEED_PATH_MAX];
    history_path(tmp, sizeof tmp, dir, ".tmp");
    history_path(path, sizeof path, dir, "");
    int fd =
        sysio_open(FAULT_FEED_CURSOR_WRITE, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return INV_EIO;
    bool ok = sysio_write(FAULT_FEED_CURSOR_WRITE, fd, b, sizeof b) == (ssize_t)sizeof b &&
              sysio_fsync(FAULT_FEED_CURSOR_WRITE, fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || sysio_rename(FAULT_FEED_CURSOR_WRITE, tmp, path) != 0 ||
        fileio_fsync_dir(dir) != 0) {
        unlink(tmp);
        return INV_EIO;
    }
    return INV_OK;
}

/* R and L of a directory: history.start's, unless the segments start
 * later (then L is not known); JOURNAL_POSITION_FIRST when nothing was
 * ever dropped. */
static void history_bounds(const char *dir, uint64_t first_segment, uint64_t *r, uint64_t *l)
{
    assert(dir != NULL && r != NULL && l != NULL);
    uint64_t fr = 0, fl = 0;
    int rc = history_read(dir, &fr, &fl);
    if (rc == INV_EINVALID || rc == INV_EIO)
        fprintf(stderr,
                "invcore: feed: %s/%s is unreadable (%s); history starts at the first "
                "segment\n",
                dir, FEED_HISTORY_FILE, inv_strerror(rc));
    if (rc != INV_OK)
        fr = fl = 0;
    *r = first_segment ? first_segment : JOURNAL_POSITION_FIRST;
    *l = 0;
    if (fr >= *r) {
        *r = fr;
        *l = fl;
    }
    assert(*r >= JOURNAL_POSITION_FIRST && (*l == 0 || *l < *r));
}

/* ---- the engine's state --------------------------------------------------- */

int feed_init(inv_engine *e)
{
    assert(e != NULL && e->feed == NULL);
    if (!e->jr)
        return INV_OK; /* in memory: no feed */
    feed_state *st = inv_calloc(1, sizeof *st);
    if (!st)
        return INV_ENOMEM;
    int rc = feed_index_init(&st->index, e->data_dir, false);
    if (rc == INV_OK)
        rc = feed_index_sync(&st->index, 0);
    if (rc != INV_OK) {
        feed_index_free(&st->index);
        free(st);
        return rc;
    }
    uint64_t r, l;
    history_bounds(e->data_dir, feed_index_first(&st->index), &r, &l);
    pthread_mutex_init(&st->lock, NULL);
    atomic_init(&st->oldest, r);
    atomic_init(&st->before_oldest, l);
    assert(feed_state_ok(st));
    e->feed = st;
    return INV_OK;
}

void feed_destroy(inv_engine *e)
{
    assert(e != NULL);
    feed_state *st = e->feed;
    if (!st)
        return;
    feed_index_free(&st->index);
    pthread_mutex_destroy(&st->lock);
    free(st);
    e->feed = NULL;
    assert(e->feed == NULL);
}

static uint64_t oldest_of(const feed_state *st)
{
    assert(st != NULL);
    /* acquire: pairs with retention's release; R only grows. */
    return atomic_load_explicit(&st->oldest, memory_order_acquire);
}

static uint64_t before_oldest_of(const feed_state *st)
{
    assert(st != NULL);
    /* relaxed: read under the lock that retention stores it under. */
    return atomic_load_explicit(&st->before_oldest, memory_order_relaxed);
}

/* ---- readers --------------------------------------------------------------- */

struct inv_feed {
    feed_state *st; /* NULL: offline */
    journal *jr; /* the engine's (NULL: offline) */
    inv_engine *e; /* the engine (NULL: offline): its acknowledged end */
    char *dir_owned; /* offline: the directory's path */
    feed_cursor cur;
    feed_decoder dec;
    uint64_t position; /* the last record returned, or the open's start */
    /* FROM_END: records below it (made before the open) are passed over */
    uint64_t skip_below;
};

/* Where a reader starts: the cursor's first record and the position it
 * reports before any. */
typedef struct {
    uint64_t start, seg_first, position;
} feed_start;

/* Resolves `after` against the index (kept positions from r; l the record
 * before r, 0 if not known; end: the end of readable records).
 * *resolved gets the start, or INV_ELIMIT / INV_EINVALID. */
static int resolve_after(feed_index *ix, uint64_t r, uint64_t l, uint64_t end, uint64_t after,
                         feed_start *out)
{
    assert(ix != NULL && out != NULL);
    assert(r >= JOURNAL_POSITION_FIRST && (l == 0 || l < r));
    *out = (feed_start){r, feed_index_segment(ix, r), after};
    if (after == 0)
        return INV_OK;
    if (after == INV_FEED_FROM_END) {
        uint64_t last;
        int rc = feed_index_last_before(ix, end, end, &last);
        *out = (feed_start){end, feed_index_segment(ix, end), last ? last : l};
        return rc;
    }
    if (after == l)
        return INV_OK; /* the record just before history: from R */
    if (after < (l ? l : r))
        return INV_ELIMIT;
    if (after >= end)
        return INV_EINVALID; /* beyond the readable end */
    bool is = false;
    uint64_t seg = 0;
    int rc = feed_index_boundary(ix, after, end, &is, &seg);
    if (rc != INV_OK || !is)
        return rc != INV_OK ? rc : INV_EINVALID;
    /* Start at the record after it. */
    feed_raw raw;
    feed_cursor_seek(&ix->cur, after, seg);
    rc = feed_cursor_next(&ix->cur, end, &raw);
    if (rc != INV_OK)
        return rc == INV_ENOTFOUND ? INV_EINVALID : rc;
    *out = (feed_start){ix->cur.pos, feed_index_segment(ix, ix->cur.pos), after};
    return INV_OK;
}

static int reader_new(const char *dir, bool offline, const feed_start *s, inv_feed **out)
{
    assert(dir != NULL && s != NULL && out != NULL);
    inv_feed *f = inv_calloc(1, sizeof *f);
    if (!f)
        return INV_ENOMEM;
    int rc = feed_cursor_init(&f->cur, dir, offline);
    if (rc != INV_OK) {
        free(f);
        return rc;
    }
    feed_decoder_init(&f->dec);
    /* A start with no segment yet (a fresh journal): the first one. */
    feed_cursor_seek(&f->cur, s->start, s->seg_first ? s->seg_first : s->start);
    f->position = s->position;
    assert(f->position == s->position && f->skip_below == 0);
    *out = f;
    return INV_OK;
}

int inv_feed_open(inv_engine *e, uint64_t after, inv_feed **out)
{
    if (!out)
        return INV_EINVALID;
    *out = NULL;
    if (!e || !e->feed)
        return INV_EINVALID; /* in memory: no feed */
    feed_state *st = e->feed;
    pthread_mutex_lock(&st->lock);
    assert(feed_state_ok(st));
    uint64_t r = oldest_of(st), l = before_oldest_of(st);
    int rc = feed_index_sync(&st->index, r);
    feed_start s;
    if (rc == INV_OK)
        rc = resolve_after(&st->index, r, l, persist_visible_end(e), after, &s);
    pthread_mutex_unlock(&st->lock);
    if (rc == INV_OK)
        rc = reader_new(e->data_dir, false, &s, out);
    if (rc == INV_OK) {
        (*out)->st = st;
        (*out)->jr = e->jr;
        (*out)->e = e;
        /* Read after resolving: every position reserved before the call
         * is below it (journal_tail reads the reservation counter). */
        if (after == INV_FEED_FROM_END)
            (*out)->skip_below = journal_tail(e->jr);
    }
    return rc;
}

int inv_feed_open_dir(const char *data_dir, uint64_t after, inv_feed **out)
{
    if (!out || !data_dir || strlen(data_dir) >= JOURNAL_PATH_MAX)
        return INV_EINVALID;
    *out = NULL;
    char *dir = strdup(data_dir);
    if (!dir)
        return INV_ENOMEM;
    feed_index ix;
    int rc = feed_index_init(&ix, dir, true);
    if (rc == INV_OK)
        rc = feed_index_sync(&ix, 0);
    uint64_t r = 0, l = 0, end = 0;
    if (rc == INV_OK) {
        history_bounds(dir, feed_index_first(&ix), &r, &l);
        rc = feed_index_sync(&ix, r);
    }
    if (rc == INV_OK)
        rc = feed_index_data_end(&ix, &end);
    feed_start s;
    if (rc == INV_OK)
        rc = resolve_after(&ix, r, l, end ? end : r, after, &s);
    feed_index_free(&ix);
    if (rc == INV_OK)
        rc = reader_new(dir, true, &s, out);
    if (rc != INV_OK) {
        free(dir);
        return rc;
    }
    assert(*out != NULL && (*out)->st == NULL && (*out)->jr == NULL);
    (*out)->dir_owned = dir;
    return INV_OK;
}

int inv_feed_next(inv_feed *f, inv_feed_record *rec)
{
    if (!f || !rec)
        return INV_EINVALID;
    for (;;) {
        /* Records below R may be gone: say so rather than read a hole. */
        if (f->st && f->cur.pos < oldest_of(f->st))
            return INV_ELIMIT;
        uint64_t limit = f->jr ? persist_visible_end(f->e) : FEED_NO_LIMIT;
        feed_raw raw;
        int rc = feed_cursor_next(&f->cur, limit, &raw);
        if (rc == FEED_SEGMENT_END) {
            rc = feed_cursor_switch(&f->cur);
            if (rc != INV_OK)
                return rc;
            continue;
        }
        if (rc != INV_OK)
            return rc;
        if (!feed_type_shown(raw.type))
            continue;
        rc = feed_decode(&f->dec, raw.pos, raw.type, raw.payload, raw.len, rec);
        if (rc == FEED_SKIP)
            continue;
        if (rc != INV_OK)
            return rc;
        f->position = raw.pos;
        if (raw.pos < f->skip_below)
            continue; /* made before a FROM_END open: not new */
        return INV_OK;
    }
}

bool inv_feed_started(const inv_feed *f)
{
    return f && f->cur.pos >= f->skip_below;
}

uint64_t inv_feed_position(const inv_feed *f)
{
    return f ? f->position : 0;
}

void inv_feed_close(inv_feed *f)
{
    if (!f)
        return;
    feed_cursor_free(&f->cur);
    feed_decoder_free(&f->dec);
    free(f->dir_owned);
    free(f);
}

uint64_t inv_feed_oldest_position(inv_engine *e)
{
    return e && e->feed ? oldest_of(e->feed) : 0;
}

uint64_t inv_feed_end_position(inv_engine *e)
{
    if (!e || !e->feed)
        return 0;
    feed_state *st = e->feed;
    pthread_mutex_lock(&st->lock);
    assert(feed_state_ok(st));
    uint64_t end = persist_visible_end(e), last = 0;
    int rc = feed_index_sync(&st->index, oldest_of(st));
    if (rc == INV_OK)
        rc = feed_index_last_before(&st->index, end, end, &last);
    if (last == 0)
        last = before_oldest_of(st); /* nothing kept before the end */
    pthread_mutex_unlock(&st->lock);
    return rc == INV_OK ? last : 0;
}

static const char *const kind_names[INV_FEED_KINDS] = {
    [INV_FEED_LEVEL_SET] = "level.set",
    [INV_FEED_LEVEL_ADJUST] = "level.adjust",
    [INV_FEED_LEVEL_DELETE] = "level.delete",
    [INV_FEED_LEVEL_TRACKING] = "level.tracking",
    [INV_FEED_LEVEL_MOVE] = "level.move",
    [INV_FEED_LEVEL_TRANSFER] = "level.transfer",
    [INV_FEED_LEVEL_FULFIL] = "level.fulfil",
    [INV_FEED_LEVEL_RETURN] = "level.return",
    [INV_FEED_LEVEL_POLICY] = "level.policy",
    [INV_FEED_LEVEL_ACTIVITY] = "level.activity",
    [INV_FEED_LEVEL_SETTLE] = "level.settle",
    [INV_FEED_HOLD_CREATE] = "hold.create",
    [INV_FEED_HOLD_COMMIT] = "hold.commit",
    [INV_FEED_HOLD_RELEASE] = "hold.release",
    [INV_FEED_HOLD_EXPIRE] = "hold.expire",
    [INV_FEED_HOLD_EXTEND] = "hold.extend",
    [INV_FEED_HOLD_ABORT] = "hold.abort",
    [INV_FEED_ITEM] = "item",
    [INV_FEED_LOCATION] = "location",
    [INV_FEED_DEFAULT_LOCATION] = "default_location",
    [INV_FEED_BATCH] = "batch",
};

const char *inv_feed_kind_str(inv_feed_kind k)
{
    return (unsigned)k < INV_FEED_KINDS ? kind_names[k] : NULL;
}

/* ---- a level's history ------------------------------------------------------ */

/* A page: each record copied whole into one allocation (the record, the
 * level's changes, then every string it points to). */
struct inv_feed_page {
    vec records; /* inv_feed_record * */
};

static size_t strings_len(const inv_feed_record *r, const inv_feed_change *c, size_t n)
{
    assert(r != NULL && (c != NULL || n == 0));
    size_t len = r->hold_id_len + r->request_id_len + r->actor_len;
    for (size_t i = 0; i < n; i++)
        len += c[i].hold_id_len + c[i].ref_len;
    return len;
}

static const char *copy_str(char **to, const char *s, size_t len)
{
    assert(to != NULL && *to != NULL);
    if (!s)
        return NULL;
    const char *at = *to;
    memcpy(*to, s, len);
    *to += len;
    return at;
}

static bool level_change_of(const inv_feed_change *c, uint64_t item, uint64_t loc)
{
    assert(c != NULL);
    return c->item == item && c->location == loc;
}

/* A copy of r holding only (item, loc)'s changes (NULL: none, or out of
 * memory: *rc). */
static inv_feed_record *record_copy(const inv_feed_record *r, uint64_t item, uint64_t loc, int *rc)
{
    assert(r != NULL && rc != NULL);
    size_t n = 0;
    for (size_t i = 0; i < r->n_changes; i++)
        n += level_change_of(&r->changes[i], item, loc);
    if (n == 0)
        return NULL;
    size_t bytes = sizeof *r + n * sizeof *r->changes;
    size_t strs = strings_len(r, r->changes, r->n_changes);
    inv_feed_record *copy = inv_malloc(bytes + strs);
    if (!copy) {
        *rc = INV_ENOMEM;
        return NULL;
    }
    *copy = *r;
    inv_feed_change *c = (inv_feed_change *)(copy + 1);
    char *to = (char *)copy + bytes;
    copy->hold_id = copy_str(&to, r->hold_id, r->hold_id_len);
    copy->request_id = copy_str(&to, r->request_id, r->request_id_len);
    copy->actor = copy_str(&to, r->actor, r->actor_len);
    size_t k = 0;
    for (size_t i = 0; i < r->n_changes; i++) {
        if (!level_change_of(&r->changes[i], item, loc))
            continue;
        c[k] = r->changes[i];
        c[k].hold_id = copy_str(&to, c[k].hold_id, c[k].hold_id_len);
        c[k].ref = copy_str(&to, c[k].ref, c[k].ref_len);
        k++;
    }
    /* every string fits the allocation exactly as counted */
    assert(k == n && to <= (char *)copy + bytes + strs);
    copy->changes = c;
    copy->n_changes = n;
    return copy;
}

void inv_feed_page_free(inv_feed_page *page)
{
    if (!page)
        return;
    inv_feed_record **v = page->records.items;
    for (size_t i = 0; i < page->records.n; i++)
        free(v[i]);
    vec_free(&page->records);
    free(page);
}

/* One history walk: the level, the page being filled, its reader. */
typedef struct {
    uint64_t item, location;
    size_t count; /* records wanted */
    inv_feed_page *page;
    vec chunk; /* inv_feed_record *: the current chunk's matches, oldest first */
    feed_cursor cur;
    feed_decoder dec;
} history_walk;

/* A walk's state, for asserts only (O(1)): a page, a count within its
 * limit, and the page never past it. */
static bool history_walk_ok(const history_walk *w)
{
    return w != NULL && w->page != NULL && w->count > 0 && w->count <= INV_FEED_COUNT_MAX &&
           w->page->records.n <= w->count;
}

/* A one-level record (LEVEL, LEVEL_COLD: item and location first) of
 * another level: history skips it without decoding it. */
static bool other_level(const feed_raw *raw, uint64_t item, uint64_t loc)
{
    assert(raw != NULL && (raw->payload != NULL || raw->len == 0));
    if ((raw->type != PERSIST_LEVEL && raw->type != PERSIST_LEVEL_COLD) || raw->len < 16)
        return false;
    return fileio_load_u64(raw->payload) != item || fileio_load_u64(raw->payload + 8) != loc;
}

/* The level's records in [lo, hi) of the segment at seg_first, oldest
 * first, into w->chunk. */
static int history_chunk(history_walk *w, uint64_t seg_first, uint64_t lo, uint64_t hi,
                         uint64_t limit)
{
    assert(history_walk_ok(w));
    assert(lo <= hi);
    feed_cursor_seek(&w->cur, lo, seg_first);
    while (w->cur.pos < hi) {
        feed_raw raw;
        int rc = feed_cursor_next(&w->cur, limit, &raw);
        if (rc == FEED_SEGMENT_END || rc == INV_ENOTFOUND)
            return INV_OK;
        if (rc != INV_OK)
            return rc;
        inv_feed_record rec;
        if (!feed_type_shown(raw.type) || other_level(&raw, w->item, w->location))
            continue;
        rc = feed_decode(&w->dec, raw.pos, raw.type, raw.payload, raw.len, &rec);
        if (rc == FEED_SKIP)
            continue;
        if (rc != INV_OK)
            return rc;
        rc = INV_OK;
        inv_feed_record *copy = record_copy(&rec, w->item, w->location, &rc);
        if (copy && vec_push(&w->chunk, &copy) != INV_OK) {
            free(copy);
            rc = INV_ENOMEM;
        }
        if (rc != INV_OK)
            return rc;
    }
    return INV_OK;
}

/* Frees what the chunk still holds (after a failure). */
static void chunk_free(history_walk *w)
{
    assert(w != NULL);
    inv_feed_record **v = w->chunk.items;
    for (size_t i = 0; i < w->chunk.n; i++)
        free(v[i]);
    vec_free(&w->chunk);
}

/* Moves the newest of the chunk's records to the page, up to count; frees
 * the rest. *oldest: the oldest moved (0: none). */
static int history_take(history_walk *w, uint64_t *oldest)
{
    assert(history_walk_ok(w) && oldest != NULL);
    inv_feed_record **v = w->chunk.items;
    size_t i = w->chunk.n;
    int rc = INV_OK;
    *oldest = 0;
    while (i > 0 && w->page->records.n < w->count && rc == INV_OK) {
        rc = vec_push(&w->page->records, &v[--i]);
        if (rc == INV_OK)
            *oldest = v[i]->position;
        else
            i++;
    }
    for (size_t k = 0; k < i; k++)
        free(v[k]);
    assert(history_walk_ok(w));
    w->chunk.n = 0;
    return rc;
}

/* Walks back from before (a position, or the end) chunk by chunk. */
static int history_walk_back(feed_state *st, history_walk *w, uint64_t before, uint64_t limit,
                             uint64_t *next_before)
{
    assert(st != NULL && history_walk_ok(w));
    assert(next_before != NULL && before <= limit);
    uint64_t hi = before, walked = 0;
    *next_before = 0;
    while (w->page->records.n < w->count) {
        uint64_t lo, seg = 0;
        pthread_mutex_lock(&st->lock);
        int rc = feed_index_sync(&st->index, oldest_of(st));
        if (rc == INV_OK)
            rc = feed_index_chunk_before(&st->index, hi, limit, &lo, &seg);
        pthread_mutex_unlock(&st->lock);
        if (rc != INV_OK)
            return rc;
        if (lo >= hi)
            return INV_OK; /* the oldest kept record is behind us */
        rc = history_chunk(w, seg, lo, hi, limit);
        uint64_t oldest;
        if (rc == INV_OK)
            rc = history_take(w, &oldest);
        if (rc != INV_OK)
            return rc;
        walked += hi - lo;
        hi = lo;
        if (w->page->records.n == w->count) {
            *next_before = oldest;
            return INV_OK;
        }
        if (walked >= FEED_HISTORY_SCAN_BYTES_MAX) {
            *next_before = hi; /* more may lie below: the caller goes on */
            return INV_OK;
        }
    }
    return INV_OK;
}

int inv_level_history(inv_engine *e, uint64_t item, uint64_t location, uint64_t before,
                      size_t count, inv_feed_page **page, const inv_feed_record *const **recs_out,
                      size_t *n_out, uint64_t *next_before)
{
    if (!e || !page || !recs_out || !n_out || !next_before || count == 0 ||
        count > INV_FEED_COUNT_MAX)
        return INV_EINVALID;
    *page = NULL;
    *n_out = 0;
    *next_before = 0;
    if (!e->feed)
        return INV_EINVALID;
    feed_state *st = e->feed;
    uint64_t limit = persist_visible_end(e);
    uint64_t l = before_oldest_of(st), r = oldest_of(st);
    if (before != 0 && before <= (l ? l : r) && before != r)
        return INV_ELIMIT; /* older than history */
    if (before == 0 || before > limit)
        before = limit;
    history_walk w = {item, location, count, NULL, VEC_OF(inv_feed_record *), {0}, {0}};
    w.page = inv_calloc(1, sizeof *w.page);
    int rc = w.page ? feed_cursor_init(&w.cur, e->data_dir, false) : INV_ENOMEM;
    if (rc != INV_OK) {
        free(w.page);
        return rc;
    }
    w.page->records = VEC_OF(inv_feed_record *);
    feed_decoder_init(&w.dec);
    rc = history_walk_back(st, &w, before, limit, next_before);
    chunk_free(&w);
    feed_cursor_free(&w.cur);
    feed_decoder_free(&w.dec);
    if (rc != INV_OK) {
        inv_feed_page_free(w.page);
        return rc;
    }
    assert(history_walk_ok(&w) && w.chunk.n == 0);
    *page = w.page;
    *n_out = w.page->records.n;
    *recs_out = (const inv_feed_record *const *)w.page->records.items;
    return INV_OK;
}

/* ---- retention -------------------------------------------------------------- */

/* Segments 0 .. i (not the last) are all below pos and outside retention:
 * how many may go. */
static size_t droppable(const inv_engine *e, const journal_segment *segs, size_t n, uint64_t pos)
{
    assert(e != NULL && e->data_dir != NULL);
    assert(segs != NULL || n == 0);
    int64_t now_ms = clock_wall_ms();
    uint64_t keep_ms = e->cfg.history_retention_ms, keep_bytes = e->cfg.history_retention_bytes;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += segs[i].size;
    size_t k = 0;
    for (; k + 1 < n && segs[k + 1].first <= pos; k++) {
        char path[FEED_PATH_MAX];
        struct stat sb;
        fileio_path(path, sizeof path, e->data_dir, segs[k].first, JOURNAL_SEGMENT_SUFFIX);
        bool old =
            stat(path, &sb) == 0 &&
            (int64_t)sb.st_mtime * 1000 + sb.st_mtim.tv_nsec / 1000000 + (int64_t)keep_ms < now_ms;
        /* total: the bytes of segments k.. (the newest counted first) */
        bool over = keep_bytes && total > keep_bytes;
        if (!old && !over)
            break;
        total -= segs[k].size;
    }
    assert(k == 0 || k < n); /* never the last segment */
    return k;
}

int feed_retention_drop(inv_engine *e, uint64_t snapshot_pos)
{
    assert(e != NULL);
    feed_state *st = e->feed;
    if (!st)
        return INV_OK;
    journal_segment *segs;
    size_t n;
    pthread_mutex_lock(&st->lock);
    assert(feed_state_ok(st));
    int rc = journal_segments_list(e->data_dir, &segs, &n, NULL, 0);
    size_t k = rc == INV_OK ? droppable(e, segs, n, snapshot_pos) : 0;
    uint64_t r = k ? segs[k].first : 0, l = 0;
    if (k && r > oldest_of(st)) {
        /* L: the last record before R, walked in the last dropped one. */
        rc = feed_index_sync(&st->index, 0);
        if (rc == INV_OK)
            rc = feed_index_last_before(&st->index, r, persist_visible_end(e), &l);
        if (rc == INV_OK && l == 0)
            l = before_oldest_of(st); /* an empty segment: the one before */
        if (rc == INV_OK && l)
            rc = history_write(e->data_dir, r, l);
        if (rc == INV_OK) {
            /* relaxed: published by the release store of R below. */
            atomic_store_explicit(&st->before_oldest, l, memory_order_relaxed);
            /* release: R after L and after history.start is durable; a
             * reader that sees R sees L too. */
            atomic_store_explicit(&st->oldest, r, memory_order_release);
        }
    }
    bool removed = false;
    for (size_t i = 0; rc == INV_OK && i < k; i++) {
        char path[FEED_PATH_MAX];
        fileio_path(path, sizeof path, e->data_dir, segs[i].first, JOURNAL_SEGMENT_SUFFIX);
        if (sysio_unlink(FAULT_REPLAY_UNLINK, path) != 0 && errno != ENOENT)
            rc = INV_EIO;
        removed = true;
    }
    if (removed && fileio_fsync_dir(e->data_dir) != 0 && rc == INV_OK)
        rc = INV_EIO;
    if (rc == INV_OK && k)
        rc = feed_index_sync(&st->index, oldest_of(st));
    assert(rc != INV_OK || feed_state_ok(st));
    pthread_mutex_unlock(&st->lock);
    free(segs);
    return rc;
}

void feed_stats(inv_engine *e, inv_stats *out)
{
    assert(e != NULL && out != NULL);
    feed_state *st = e->feed;
    if (!st)
        return;
    uint64_t r = oldest_of(st);
    out->history_oldest_position = r;
    journal_segment *segs;
    size_t n;
    if (journal_segments_list(e->data_dir, &segs, &n, NULL, 0) != INV_OK)
        return;
    for (size_t i = 0; i < n; i++)
        if (segs[i].first >= r)
            out->history_bytes += segs[i].size;
    free(segs);
}
